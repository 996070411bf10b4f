//! OpenSC's pkcs11-tool on our module, with the configuration a test wrote
//! into its directory.

use std::path::Path;
use std::process::{Command, Output};

use super::tinfoil_path;

/// Runs pkcs11-tool on our module with the configuration in `dir`.
pub fn tool(dir: &Path, args: &[&str]) -> Output {
    Command::new("pkcs11-tool")
        .arg("--module")
        .arg(tinfoil_path())
        .args(args)
        .env("TINFOIL_PKCS11_CONFIG", dir.join("tinfoil.toml"))
        .output()
        .expect("pkcs11-tool (Debian package opensc) must be installed")
}

/// Runs pkcs11-tool and requires success; returns stdout and stderr.
#[track_caller]
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = tool(dir, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "pkcs11-tool {args:?} failed:\n{text}");
    text
}

/// The keys a token holds for `pkcs11-tool --test`: an RSA-2048 signing
/// pair, an EC P-256 pair, an AES-256 key and an RSA-2048 pair made to
/// decrypt (`--usage-decrypt`), each as pkcs11-tool arguments after
/// `--login --pin PIN`.
pub const TEST_SUITE_KEYS: &[&[&str]] = &[
    &[
        "--keypairgen",
        "--key-type",
        "rsa:2048",
        "--id",
        "a1",
        "--label",
        "rsa-sign",
    ],
    &[
        "--keypairgen",
        "--key-type",
        "EC:prime256v1",
        "--id",
        "a2",
        "--label",
        "ec-p256",
    ],
    &[
        "--keygen",
        "--key-type",
        "AES:32",
        "--id",
        "a3",
        "--label",
        "aes-256",
    ],
    &[
        "--keypairgen",
        "--key-type",
        "rsa:2048",
        "--id",
        "a4",
        "--label",
        "rsa-decrypt",
        "--usage-decrypt",
    ],
];

/// Checks what `pkcs11-tool --test` printed for a token holding
/// [`TEST_SUITE_KEYS`]: no errors, and the RSA checks really ran (a raw
/// RSA sign/verify of arbitrary data, and a CKM_RSA_PKCS
/// decryption of what OpenSSL encrypted with the exported public key).
#[track_caller]
pub fn assert_test_suite_passed(out: &str) {
    assert!(out.contains("No errors"), "{out}");
    let (verify, decrypt) = out
        .split_once("Decryption")
        .unwrap_or_else(|| panic!("no decryption section:\n{out}"));
    // The sign/verify check takes the first raw RSA mechanism the token
    // lists: CKM_RSA_X_509 since the token offers it, else CKM_RSA_PKCS.
    assert!(
        verify.contains("RSA-PKCS: OK") || verify.contains("RSA-X-509: OK"),
        "no RSA sign/verify check:\n{out}"
    );
    assert!(
        decrypt.contains("RSA-PKCS: OK"),
        "no RSA decryption check:\n{out}"
    );
}

/// An embedded-backend fixture directory (configuration written, the
/// environment pointed at it) with a token "ci-token" whose SO PIN is `so`
/// and user PIN `pin`.
pub fn embedded_fixture(so: &str, pin: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let _g = super::exclusive();
    super::write_embedded_config(dir.path());
    let d = dir.path();
    let listed = ok(d, &["-L"]);
    assert!(listed.contains("uninitialized"), "{listed}");
    ok(d, &["--init-token", "--label", "ci-token", "--so-pin", so]);
    ok(
        d,
        &[
            "--login",
            "--login-type",
            "so",
            "--so-pin",
            so,
            "--init-pin",
            "--pin",
            pin,
        ],
    );
    dir
}

/// `pkcs11-tool --test-threads` with four racing threads (C_Initialize,
/// slots, tokens, sessions, login, object listing) passes with no errors.
pub fn assert_test_threads_pass(dir: &Path) {
    let out = ok(
        dir,
        &[
            "--test-threads",
            "INGISLT0",
            "--test-threads",
            "INGISLT0",
            "--test-threads",
            "ILGISLT0",
            "--test-threads",
            "INGISL",
        ],
    );
    assert!(!out.contains("some errors"), "{out}");
    assert!(out.contains("C_GetInfo returned CKR_OK"), "{out}");
}
