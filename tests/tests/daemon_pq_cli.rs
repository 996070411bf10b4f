//! Post-quantum keys (issue 16) through the `tinfoil` CLI and gRPC:
//! ML-DSA sign/verify (RAW and EXTERNAL_MU refusals), get-public-key with
//! the FIPS 204 / FIPS 203 OIDs, ML-KEM encapsulate/decapsulate (the secret
//! written 0600), DescribeKey's algorithm lists.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tinfoil_e2e_tests::daemon::{assert_kms_error, json, stderr, Daemon, Store};

fn create(daemon: &Daemon, spec: &str, usage: &str) -> serde_json::Value {
    json(&daemon.cli(&[
        "create-key",
        "--key-spec",
        spec,
        "--key-usage",
        usage,
        "--output",
        "json",
    ]))["KeyMetadata"]
        .clone()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn ml_dsa_and_ml_kem_through_the_cli() {
    let store = Store::init();
    let daemon = Daemon::start(&store, &[]);
    let dir = store.dir.path();
    let message = dir.join("message");
    let signature = dir.join("signature");
    let public = dir.join("public.der");
    std::fs::write(&message, b"post-quantum release manifest\n").unwrap();

    for (spec, oid_last) in [
        ("ML_DSA_44", 0x11),
        ("ML_DSA_65", 0x12),
        ("ML_DSA_87", 0x13),
    ] {
        let meta = create(&daemon, spec, "SIGN_VERIFY");
        assert_eq!(meta["SigningAlgorithms"][0], "ML_DSA_SHAKE_256", "{meta}");
        let key = meta["KeyId"].as_str().unwrap();
        let sign = |extra: &[&str]| {
            let mut args = vec![
                "sign",
                "--key-id",
                key,
                "--message-file",
                p(&message),
                "--signing-algorithm",
                "ML_DSA_SHAKE_256",
                "--output-file",
                p(&signature),
            ];
            args.extend_from_slice(extra);
            daemon.cli(&args)
        };
        let out = sign(&[]);
        assert!(out.status.success(), "{}", stderr(&out));
        let verify = || {
            daemon.cli(&[
                "verify",
                "--key-id",
                key,
                "--message-file",
                p(&message),
                "--signature-file",
                p(&signature),
                "--signing-algorithm",
                "ML_DSA_SHAKE_256",
            ])
        };
        assert!(verify().status.success(), "{}", stderr(&verify()));
        let mut sig = std::fs::read(&signature).unwrap();
        sig[7] ^= 0x01;
        std::fs::write(&signature, &sig).unwrap();
        assert_kms_error(&verify(), "KMSInvalidSignatureException");
        // The message is not a 64-byte mu.
        assert_kms_error(
            &sign(&["--message-type", "EXTERNAL_MU"]),
            "ValidationException",
        );
        assert_kms_error(&sign(&["--message-type", "DIGEST"]), "ValidationException");

        let out = daemon.cli(&[
            "get-public-key",
            "--key-id",
            key,
            "--output-file",
            p(&public),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let der = std::fs::read(&public).unwrap();
        let oid = [
            0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, oid_last,
        ];
        assert!(contains(&der, &oid), "{spec}: no id-ml-dsa OID");
    }

    let secret = dir.join("secret");
    let ciphertext = dir.join("ciphertext");
    let again = dir.join("again");
    for (spec, oid_last, ct_len) in [
        ("ML_KEM_512", 0x01, 768),
        ("ML_KEM_768", 0x02, 1088),
        ("ML_KEM_1024", 0x03, 1568),
    ] {
        let meta = create(&daemon, spec, "ENCAPSULATE_DECAPSULATE");
        assert_eq!(meta["EncapsulationAlgorithms"][0], "ML_KEM", "{meta}");
        let key = meta["KeyId"].as_str().unwrap();
        let out = daemon.cli(&[
            "encapsulate",
            "--key-id",
            key,
            "--shared-secret-output-file",
            p(&secret),
            "--ciphertext-output-file",
            p(&ciphertext),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            !contains(&out.stdout, b"SharedSecret\": \""),
            "secret printed"
        );
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read(&secret).unwrap().len(), 32);
        assert_eq!(std::fs::read(&ciphertext).unwrap().len(), ct_len);
        let out = daemon.cli(&[
            "decapsulate",
            "--key-id",
            key,
            "--ciphertext-file",
            p(&ciphertext),
            "--output-file",
            p(&again),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            std::fs::read(&again).unwrap(),
            std::fs::read(&secret).unwrap()
        );
        std::fs::write(&ciphertext, b"short").unwrap();
        let out = daemon.cli(&[
            "decapsulate",
            "--key-id",
            key,
            "--ciphertext-file",
            p(&ciphertext),
        ]);
        assert_kms_error(&out, "InvalidCiphertextException");

        let out = daemon.cli(&[
            "get-public-key",
            "--key-id",
            key,
            "--output-file",
            p(&public),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let der = std::fs::read(&public).unwrap();
        let oid = [
            0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04, oid_last,
        ];
        assert!(contains(&der, &oid), "{spec}: no id-alg-ml-kem OID");
        let described = json(&daemon.cli(&["describe-key", "--key-id", key, "--output", "json"]));
        assert_eq!(
            described["KeyMetadata"]["KeyUsage"],
            "ENCAPSULATE_DECAPSULATE"
        );
    }
    // Wrong usages.
    let dsa = create(&daemon, "ML_DSA_65", "SIGN_VERIFY");
    let out = daemon.cli(&["encapsulate", "--key-id", dsa["KeyId"].as_str().unwrap()]);
    assert_kms_error(&out, "InvalidKeyUsageException");
    let out = daemon.cli(&[
        "create-key",
        "--key-spec",
        "ML_KEM_768",
        "--key-usage",
        "SIGN_VERIFY",
    ]);
    assert_kms_error(&out, "ValidationException");
}
