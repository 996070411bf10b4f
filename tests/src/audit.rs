//! The audit-log steps several tests share: fetch the public key, export
//! the log, verify the export offline, read its records.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::daemon::{binary, stderr, Daemon};

/// `tinfoil verify-audit-log` offline: no endpoint, no daemon, no
/// passphrase.
pub fn verify_offline(input: &Path, key: &Path) -> Output {
    Command::new(binary("tinfoil"))
        .args(["verify-audit-log", "--input-dir"])
        .arg(input)
        .arg("--public-key-file")
        .arg(key)
        .env_remove("TINFOIL_ENDPOINT")
        .env_remove("TINFOIL_PASSPHRASE")
        .stdin(Stdio::null())
        .output()
        .expect("run tinfoil verify-audit-log")
}

/// Writes the daemon's audit public key to `dir/audit.pub`, exports the
/// log to `dir/<name>` and verifies the export offline (exit 0). Returns
/// (export directory, public key file, the verifier's output).
pub fn export_and_verify(daemon: &Daemon, dir: &Path, name: &str) -> (PathBuf, PathBuf, Output) {
    let key = dir.join("audit.pub");
    let out = daemon.cli(&[
        "get-audit-public-key",
        "--output-file",
        key.to_str().expect("a UTF-8 path"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let export = dir.join(name);
    let out = daemon.cli(&[
        "export-audit-log",
        "--output-dir",
        export.to_str().expect("a UTF-8 path"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = verify_offline(&export, &key);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    (export, key, out)
}

/// Every record of an export, in file order.
pub fn records_in(dir: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("records"))
        .expect("records dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .expect("read records")
                .lines()
                .map(|l| serde_json::from_str(l).expect("record JSON"))
                .collect::<Vec<_>>()
        })
        .collect()
}
