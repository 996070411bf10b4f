//! Signing, MAC and data-key-pair operations through the `tinfoil` CLI:
//! sign/verify (exit 0 only when valid), get-public-key (DER, checked
//! with openssl), generate-mac/verify-mac, generate-data-key-pair, and
//! the usage errors between key kinds.

use std::path::Path;
use std::process::Command;

use tinfoil_e2e_tests::daemon::{assert_kms_error, json, stderr, Daemon, Store};

fn create(daemon: &Daemon, spec: &str, usage: &str) -> String {
    json(&daemon.cli(&[
        "create-key",
        "--key-spec",
        spec,
        "--key-usage",
        usage,
        "--output",
        "json",
    ]))["KeyMetadata"]["KeyId"]
        .as_str()
        .expect("keyId")
        .to_string()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn sign_verify_and_public_key_cross_checked_with_openssl() {
    let store = Store::init();
    let daemon = Daemon::start(&store, &[]);
    let dir = store.dir.path();
    let message = dir.join("message");
    let signature = dir.join("signature");
    let public = dir.join("public.der");
    std::fs::write(&message, b"release v1.2.3 artifacts digest list\n").unwrap();

    for (spec, algorithm, digest) in [
        ("ECC_NIST_P256", "ECDSA_SHA_256", "-sha256"),
        ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256", "-sha256"),
    ] {
        let key = create(&daemon, spec, "SIGN_VERIFY");
        let out = daemon.cli(&[
            "sign",
            "--key-id",
            &key,
            "--message-file",
            p(&message),
            "--message-type",
            "RAW",
            "--signing-algorithm",
            algorithm,
            "--output-file",
            p(&signature),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let verify = |message: &Path| {
            daemon.cli(&[
                "verify",
                "--key-id",
                &key,
                "--message-file",
                p(message),
                "--message-type",
                "RAW",
                "--signature-file",
                p(&signature),
                "--signing-algorithm",
                algorithm,
            ])
        };
        let out = verify(&message);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let other = dir.join("other");
        std::fs::write(&other, b"release v6.6.6 artifacts digest list\n").unwrap();
        assert_kms_error(&verify(&other), "KMSInvalidSignatureException");

        // The public key is DER SubjectPublicKeyInfo that openssl accepts,
        // and openssl verifies the signature with it.
        let out = daemon.cli(&[
            "get-public-key",
            "--key-id",
            &key,
            "--output-file",
            p(&public),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let der = std::fs::read(&public).unwrap();
        assert_eq!(der[0], 0x30, "DER SEQUENCE");
        let pem = dir.join("public.pem");
        let conv = Command::new("openssl")
            .args([
                "pkey",
                "-pubin",
                "-inform",
                "DER",
                "-in",
                p(&public),
                "-out",
                p(&pem),
            ])
            .output()
            .expect("openssl");
        assert!(conv.status.success(), "{}", stderr(&conv));
        let check = Command::new("openssl")
            .args([
                "dgst",
                digest,
                "-verify",
                p(&pem),
                "-signature",
                p(&signature),
                p(&message),
            ])
            .output()
            .expect("openssl");
        assert!(
            check.status.success(),
            "openssl rejects the {spec} signature: {}",
            stderr(&check)
        );

        // A signing key cannot encrypt.
        let out = daemon.cli(&["encrypt", "--key-id", &key, "--plaintext-file", p(&message)]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    }
}

#[test]
fn generate_and_verify_mac() {
    let store = Store::init();
    let daemon = Daemon::start(&store, &[]);
    let dir = store.dir.path();
    let key = create(&daemon, "HMAC_256", "GENERATE_VERIFY_MAC");
    let message = dir.join("message");
    let mac = dir.join("mac");
    std::fs::write(&message, b"webhook payload").unwrap();
    let out = daemon.cli(&[
        "generate-mac",
        "--key-id",
        &key,
        "--message-file",
        p(&message),
        "--mac-algorithm",
        "HMAC_SHA_256",
        "--output-file",
        p(&mac),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&mac).unwrap().len(), 32);
    let verify = |algorithm: &str| {
        daemon.cli(&[
            "verify-mac",
            "--key-id",
            &key,
            "--message-file",
            p(&message),
            "--mac-file",
            p(&mac),
            "--mac-algorithm",
            algorithm,
        ])
    };
    assert_eq!(verify("HMAC_SHA_256").status.code(), Some(0));
    let mut bad = std::fs::read(&mac).unwrap();
    bad[0] ^= 0x80;
    std::fs::write(&mac, bad).unwrap();
    assert_kms_error(&verify("HMAC_SHA_256"), "KMSInvalidMacException");
    let out = verify("HMAC_SHA_999");
    assert_kms_error(&out, "ValidationException");
}

#[test]
fn data_key_pairs() {
    let store = Store::init();
    let daemon = Daemon::start(&store, &[]);
    let dir = store.dir.path();
    let wrapping = json(&daemon.cli(&["create-key", "--output", "json"]))["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let private = dir.join("private.der");
    let wrapped = dir.join("private.enc");
    let public = dir.join("public.der");
    let out = daemon.cli(&[
        "generate-data-key-pair",
        "--key-id",
        &wrapping,
        "--key-pair-spec",
        "ECC_NIST_P256",
        "--encryption-context",
        "purpose=pair",
        "--private-key-plaintext-output-file",
        p(&private),
        "--private-key-ciphertext-output-file",
        p(&wrapped),
        "--public-key-output-file",
        p(&public),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The plaintext private key file is private to its owner.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&private).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The encrypted private key decrypts (with its context) to the plaintext one.
    let out = daemon.cli(&[
        "decrypt",
        "--ciphertext-file",
        p(&wrapped),
        "--encryption-context",
        "purpose=pair",
        "--output-file",
        "-",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, std::fs::read(&private).unwrap());
    // openssl reads the PKCS#8 private key.
    let check = Command::new("openssl")
        .args(["pkey", "-inform", "DER", "-in", p(&private), "-noout"])
        .output()
        .expect("openssl");
    assert!(check.status.success(), "{}", stderr(&check));

    let out = daemon.cli(&[
        "generate-data-key-pair-without-plaintext",
        "--key-id",
        &wrapping,
        "--key-pair-spec",
        "RSA_2048",
        "--output",
        "json",
    ]);
    let answer = json(&out);
    assert!(answer.get("PrivateKeyPlaintext").is_none(), "{answer}");
    assert!(answer["PrivateKeyCiphertextBlob"].as_str().is_some());
    assert_eq!(answer["KeyPairSpec"], "RSA_2048");

    // An asymmetric key cannot wrap data key pairs.
    let signing = create(&daemon, "ECC_NIST_P256", "SIGN_VERIFY");
    let out = daemon.cli(&[
        "generate-data-key-pair",
        "--key-id",
        &signing,
        "--key-pair-spec",
        "ECC_NIST_P256",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}
