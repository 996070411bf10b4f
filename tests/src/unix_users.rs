//! Running clients as other Unix users (`setpriv`, util-linux), for the
//! tests of who a socket caller is. They need root, as scripts/test runs.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::daemon::binary;

/// Whether this process runs as root.
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A command running `program` as `uid`/`gid` with no supplementary groups.
pub fn command_as(uid: u32, gid: u32, program: impl AsRef<Path>) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .arg(program.as_ref())
        .stdin(Stdio::null());
    cmd
}

/// Runs `tinfoil --endpoint ENDPOINT ARGS...` as `uid`/`gid`.
pub fn tinfoil_as(uid: u32, gid: u32, endpoint: &str, args: &[&str]) -> Output {
    command_as(uid, gid, binary("tinfoil"))
        .arg("--endpoint")
        .arg(endpoint)
        .args(args)
        .env_remove("TINFOIL_ENDPOINT")
        .output()
        .expect("run setpriv (util-linux)")
}
