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
