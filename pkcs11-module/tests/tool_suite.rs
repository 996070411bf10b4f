//! `pkcs11-tool --test` on the embedded backend with RSA, EC and AES keys
//! (no errors), SoftHSM2 as the control, and CKM_RSA_PKCS signing and
//! decryption as a pkcs11-tool user types them.

mod common;

use common::tool::{assert_test_suite_passed, embedded_fixture, ok, tool, TEST_SUITE_KEYS};

const SO: &str = "12345678";
const PIN: &str = "1234";

/// An embedded-backend fixture directory with an initialised token.
fn fixture() -> tempfile::TempDir {
    embedded_fixture(SO, PIN)
}

#[test]
fn test_suite_reports_no_errors() {
    let dir = fixture();
    let d = dir.path();
    for args in TEST_SUITE_KEYS {
        ok(d, &[&["--login", "--pin", PIN][..], args].concat());
    }
    assert_test_suite_passed(&ok(d, &["--login", "--pin", PIN, "--test"]));
}

/// pkcs11-tool on SoftHSM2 with a configuration in `dir`.
fn softhsm_tool(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("pkcs11-tool")
        .args(["--module", common::SOFTHSM])
        .args(args)
        .env("SOFTHSM2_CONF", dir.join("softhsm2.conf"))
        .output()
        .expect("pkcs11-tool")
}

/// The control: SoftHSM2 passes the same RSA-PKCS sign/verify and
/// decryption checks of `--test` with the same keys, then fails on its
/// own: pkcs11-tool 0.23 goes on to RSA-OAEP with a label, which SoftHSM
/// 2.6 refuses with CKR_ARGUMENTS_BAD, and pkcs11-tool aborts. (Every
/// SoftHSM RSA private key may decrypt, `--usage-sign` or not, so no
/// SoftHSM token with an RSA key gets through `--test`.)
#[test]
fn test_suite_control_on_softhsm() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("tokens")).unwrap();
    std::fs::write(
        d.join("softhsm2.conf"),
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            d.join("tokens").display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = softhsm_tool(d, args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (made, text) = run(&["--init-token", "--label", "control", "--so-pin", SO]);
    assert!(made, "{text}");
    let token = ["--token-label", "control"];
    let (set, text) = run(&[
        &token[..],
        &[
            "--login",
            "--login-type",
            "so",
            "--so-pin",
            SO,
            "--init-pin",
            "--pin",
            PIN,
        ],
    ]
    .concat());
    assert!(set, "{text}");
    let login = [&token[..], &["--login", "--pin", PIN]].concat();
    for args in TEST_SUITE_KEYS {
        let (made, text) = run(&[&login[..], args].concat());
        assert!(made, "{text}");
    }
    let (passed, text) = run(&[&login[..], &["--test"]].concat());
    assert!(!passed, "{text}");
    let (checked, failure) = text
        .split_once("RSA-PKCS-OAEP")
        .unwrap_or_else(|| panic!("{text}"));
    assert!(failure.contains("CKR_ARGUMENTS_BAD"), "{text}");
    let (verify, decrypt) = checked.split_once("Decryption").unwrap();
    // SoftHSM lists objects in no fixed order; the first key checks every
    // mechanism, the others only the first (RSA-X-509 there).
    assert!(
        verify.contains("RSA-PKCS: OK") || verify.contains("RSA-X-509: OK"),
        "{text}"
    );
    assert!(decrypt.contains("RSA-PKCS: OK"), "{text}");
}

#[test]
fn rsa_pkcs_raw_sign_and_decrypt_with_the_tool() {
    let dir = fixture();
    let d = dir.path();
    let p = |name: &str| d.join(name).display().to_string();
    let login = ["--login", "--pin", PIN];
    for args in [TEST_SUITE_KEYS[0], TEST_SUITE_KEYS[3]] {
        ok(d, &[&login[..], args].concat());
    }
    // CKM_RSA_PKCS signs the file's bytes as they are (no DigestInfo).
    std::fs::write(d.join("msg.txt"), b"sign these very bytes\n").unwrap();
    let sign = ["--sign", "-m", "RSA-PKCS", "--id", "a1"];
    ok(
        d,
        &[
            &login[..],
            &sign,
            &["-i", &p("msg.txt"), "-o", &p("msg.sig")],
        ]
        .concat(),
    );
    let verify = [
        "--verify",
        "-m",
        "RSA-PKCS",
        "--id",
        "a1",
        "-i",
        &p("msg.txt"),
    ];
    let checked = ok(
        d,
        &[&verify[..], &["--signature-file", &p("msg.sig")]].concat(),
    );
    assert!(checked.contains("Signature is valid"), "{checked}");
    let mut sig = std::fs::read(d.join("msg.sig")).unwrap();
    assert_eq!(sig.len(), 256);
    sig[9] ^= 0x04;
    std::fs::write(d.join("bad.sig"), &sig).unwrap();
    let refused = tool(
        d,
        &[&verify[..], &["--signature-file", &p("bad.sig")]].concat(),
    );
    let text = String::from_utf8_lossy(&refused.stdout).to_string()
        + &String::from_utf8_lossy(&refused.stderr);
    assert!(
        text.contains("Invalid signature") || text.contains("CKR_SIGNATURE_INVALID"),
        "{text}"
    );

    // OpenSSL encrypts to the decryption pair's public key as the tool
    // reads it out; the module decrypts.
    ok(
        d,
        &[
            &login[..],
            &[
                "--read-object",
                "--type",
                "pubkey",
                "--id",
                "a4",
                "-o",
                &p("pub.der"),
            ],
        ]
        .concat(),
    );
    std::fs::write(d.join("plain.txt"), b"a secret for the token").unwrap();
    let sealed = std::process::Command::new("openssl")
        .args([
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-keyform",
            "DER",
            "-inkey",
            &p("pub.der"),
        ])
        .args(["-in", &p("plain.txt"), "-out", &p("sealed.bin")])
        .output()
        .unwrap();
    assert!(sealed.status.success(), "{sealed:?}");
    let decrypt = ["--decrypt", "-m", "RSA-PKCS", "--id", "a4"];
    ok(
        d,
        &[
            &login[..],
            &decrypt,
            &["-i", &p("sealed.bin"), "-o", &p("opened.txt")],
        ]
        .concat(),
    );
    assert_eq!(
        std::fs::read(d.join("opened.txt")).unwrap(),
        b"a secret for the token"
    );
    // A tampered ciphertext is refused, with the one decryption error.
    let mut bad = std::fs::read(d.join("sealed.bin")).unwrap();
    bad[17] ^= 0x01;
    std::fs::write(d.join("bad.bin"), &bad).unwrap();
    let refused = tool(
        d,
        &[
            &login[..],
            &decrypt,
            &["-i", &p("bad.bin"), "-o", &p("x.txt")],
        ]
        .concat(),
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("CKR_ENCRYPTED_DATA_INVALID"),
        "{refused:?}"
    );
    // A pair made to sign only (--usage-sign) does not decrypt (a pair
    // made with the tool's default flags signs and decrypts).
    ok(
        d,
        &[
            &login[..],
            &[
                "--keypairgen",
                "--key-type",
                "rsa:2048",
                "--id",
                "a9",
                "--usage-sign",
            ],
        ]
        .concat(),
    );
    let refused = tool(
        d,
        &[
            &login[..],
            &[
                "--decrypt",
                "-m",
                "RSA-PKCS",
                "--id",
                "a9",
                "-i",
                &p("sealed.bin"),
            ],
        ]
        .concat(),
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("CKR_KEY_FUNCTION_NOT_PERMITTED"),
        "{refused:?}"
    );
}
