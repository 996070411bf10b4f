//! python-pkcs11 (PyPI, pinned in tests/python/requirements.txt, in the
//! tests' venv) as a client of the module: tests/python/pkcs11_client.py
//! opens sessions, generates token and session keys, encrypts and
//! decrypts (AES CBC-PAD and GCM, RSA-OAEP), signs and verifies (HMAC,
//! RSA PKCS#1 and PSS, ECDSA; checked again with `cryptography`), derives
//! one AES key on both sides of an ECDH between two token pairs, wraps and
//! unwraps a key (AES key wrap, a tampered blob refused), finds and
//! destroys objects, and checks the errors of a wrong PIN and a missing
//! key. Our module on the embedded backend (while this test's own
//! instance holds the same store) and the daemon backend; SoftHSM2 runs
//! the same script as the control (without the steps it lacks).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{load, Which, USER_PIN};

/// The tests' Python venv (scripts/test makes it).
fn venv() -> PathBuf {
    std::env::var_os("TINFOIL_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::target_dir().parent().unwrap().join("kms-venv"))
}

fn python_client(which: Which) {
    let m = load(which);
    m.token("py");
    let python = venv().join("bin").join("python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test, which makes the venv from tests/python/requirements.txt \
         (or point TINFOIL_TEST_VENV at one)",
        python.display()
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/python/pkcs11_client.py");
    let module = match which {
        Which::SoftHsm => PathBuf::from(common::SOFTHSM),
        _ => common::tinfoil_path(),
    };
    let mut cmd = Command::new(&python);
    cmd.arg(&script).arg(&module).arg("py").arg(USER_PIN);
    if which != Which::SoftHsm {
        cmd.arg("ours");
    }
    let out = cmd.output().expect("run the venv's python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "token",
        "wrong pin refused",
        "aes",
        "session key",
        "hmac",
        "rsa",
        "ecdsa",
        "ecdh",
        "wrap",
        "find",
        "destroy",
        "random",
        "persisted",
    ] {
        assert!(
            stdout.lines().any(|l| l == format!("ok {step}")),
            "{step}: {stdout}"
        );
    }
}

with_keys!(python_client);
