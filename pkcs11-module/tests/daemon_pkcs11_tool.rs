//! OpenSC's pkcs11-tool on the daemon backend (a real tinfoild): token
//! set-up, key generation, sign and verify, `--test` (no errors, RSA
//! checks included), and its stress modes: threads
//! racing C_Initialize, and a fork()ed child that initialises the module
//! again (each process has its own connection to the daemon).

mod common;

use std::path::Path;

use common::daemon;
use common::tool::{assert_test_suite_passed, assert_test_threads_pass, ok, tool, TEST_SUITE_KEYS};

const SO: &str = "so-pin-1";
const PIN: &str = "user-pin-1";

/// Starts tinfoild, points a configuration at it and initialises a token.
fn fixture(dir: &Path) {
    let endpoint = daemon::start(dir);
    std::fs::write(
        dir.join("tinfoil.toml"),
        format!("backend = \"daemon\"\nendpoint = \"{endpoint}\"\n"),
    )
    .unwrap();
    ok(
        dir,
        &["--init-token", "--label", "tool-token", "--so-pin", SO],
    );
    ok(
        dir,
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
    );
}

/// Stops the case's daemon even when an assertion fails.
struct StopDaemon;

impl Drop for StopDaemon {
    fn drop(&mut self) {
        daemon::stop();
    }
}

#[test]
fn pkcs11_tool_on_the_daemon_backend() {
    let _g = common::exclusive();
    let _stop = StopDaemon;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fixture(d);
    let slots = ok(d, &["-L"]);
    assert!(slots.contains("tool-token"), "{slots}");

    ok(
        d,
        &[
            "--login",
            "--pin",
            PIN,
            "--keygen",
            "--key-type",
            "AES:32",
            "--id",
            "01",
        ],
    );
    ok(
        d,
        &[
            "--login",
            "--pin",
            PIN,
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--id",
            "02",
        ],
    );
    let p = |name: &str| d.join(name).display().to_string();
    std::fs::write(d.join("msg.txt"), b"data to sign\n").unwrap();
    ok(
        d,
        &[
            "--login",
            "--pin",
            PIN,
            "--sign",
            "--id",
            "02",
            "-m",
            "ECDSA-SHA256",
            "-i",
            &p("msg.txt"),
            "-o",
            &p("sig.bin"),
        ],
    );
    ok(
        d,
        &[
            "--login",
            "--pin",
            PIN,
            "--verify",
            "--id",
            "02",
            "-m",
            "ECDSA-SHA256",
            "-i",
            &p("msg.txt"),
            "--signature-file",
            &p("sig.bin"),
        ],
    );
    let objects = ok(d, &["--login", "--pin", PIN, "-O"]);
    assert!(objects.contains("Secret Key Object") && objects.contains("Private Key Object"));

    // The keys are KMS keys of the daemon's store.
    let listed = daemon::cli(&["list-keys", "--output", "json"]);
    assert!(listed.status.success());
    let keys: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(keys["Keys"].as_array().map(Vec::len), Some(2), "{keys}");

    // With an RSA signing pair and an RSA decryption pair besides the AES
    // and EC P-256 keys, --test runs its RSA checks too.
    for args in [TEST_SUITE_KEYS[0], TEST_SUITE_KEYS[3]] {
        ok(d, &[&["--login", "--pin", PIN][..], args].concat());
    }
    assert_test_suite_passed(&ok(d, &["--login", "--pin", PIN, "--test"]));

    // Wrong PIN: a clear failure, no crash.
    let out = tool(d, &["--login", "--pin", "wrong-pin", "-O"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CKR_PIN_INCORRECT"));
}

#[test]
fn stress_modes_threads_and_fork() {
    let _g = common::exclusive();
    let _stop = StopDaemon;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fixture(d);
    assert_test_threads_pass(d);
    // Unlike the embedded backend (the store is the parent's), the forked
    // child connects to the daemon on its own.
    let out = ok(d, &["--test-fork"]);
    assert!(out.contains("forked child"), "{out}");
}
