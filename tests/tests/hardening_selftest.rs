//! Start-up self-tests (issue 13): a failing known-answer or pairwise test
//! refuses to start, in tinfoild (init and serve) and in the PKCS#11 module
//! (C_Initialize), with a message naming the test. The failure is forced
//! with the test-only TINFOIL_TEST_ONLY_BREAK_SELFTEST hook; without it the
//! same commands work (the control).

use std::process::{Command, Stdio};

use tinfoil_e2e_tests::daemon::{bin_dir, binary, stderr, write_file, Daemon, Store};

const HOOK: &str = "TINFOIL_TEST_ONLY_BREAK_SELFTEST";

#[test]
fn a_failing_self_test_stops_tinfoild() {
    let store = Store::init();
    for name in ["AES-GCM", "Argon2id", "ECDSA", "RSA"] {
        let out = store
            .serve_command()
            .env(HOOK, name)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("self-test {name} failed")) && err.contains("refusing to start"),
            "{name}: {err}"
        );
        assert!(!store.socket().exists(), "{name}: a socket was bound");
    }
    let dir = tempfile::tempdir().unwrap();
    let pass = dir.path().join("pass");
    write_file(&pass, b"selftest\n", 0o600);
    let out = Command::new(binary("tinfoild"))
        .args(["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--passphrase-file")
        .arg(&pass)
        .env(HOOK, "HKDF")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!dir.path().join("data").join("tinfoil.db").exists());
    // The control: the same store serves without the hook.
    let daemon = Daemon::start(&store, &[]);
    assert!(daemon.cli(&["list-keys"]).status.success());
}

#[test]
fn a_failing_self_test_fails_c_initialize() {
    let module = bin_dir().join("libtinfoil_pkcs11.so");
    assert!(module.exists(), "{} missing", module.display());
    let dir = tempfile::tempdir().unwrap();
    let pass = dir.path().join("pass");
    write_file(&pass, b"selftest\n", 0o600);
    let config = dir.path().join("p11.toml");
    std::fs::write(
        &config,
        format!(
            "backend = \"embedded\"\ndata_dir = \"{}\"\npassphrase_file = \"{}\"\nkdf_memory_kib = 8192\nkdf_iterations = 1\n",
            dir.path().join("p11").display(),
            pass.display()
        ),
    )
    .unwrap();
    let run = |hook: Option<&str>| {
        let mut cmd = Command::new("pkcs11-tool");
        cmd.arg("--module")
            .arg(&module)
            .arg("--show-info")
            .env("TINFOIL_PKCS11_CONFIG", &config)
            .stdin(Stdio::null());
        match hook {
            Some(name) => cmd.env(HOOK, name),
            None => cmd.env_remove(HOOK),
        };
        cmd.output().expect("run pkcs11-tool (opensc)")
    };
    let out = run(Some("SHA-256"));
    assert!(!out.status.success(), "C_Initialize succeeded");
    let err = stderr(&out);
    assert!(
        err.contains("self-test SHA-256 failed") && err.contains("C_Initialize"),
        "{err}"
    );
    // The control.
    let out = run(None);
    assert!(out.status.success(), "{}", stderr(&out));
}
