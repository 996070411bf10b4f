//! Core dumps (issue 13): tinfoild makes itself not dumpable, so a crash
//! writes no core file holding its memory; `TINFOIL_ALLOW_CORE_DUMPS=1`
//! (debugging) lets it dump, which is also the control proving the test
//! can see a core file on this machine.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tinfoil_e2e_tests::daemon::{binary, signal, KillOnDrop, Store};

/// Starts `tinfoild serve` in `cwd` with an unlimited core size, waits
/// until it listens, aborts it with SIGABRT and returns whether a core
/// file appeared in `cwd`.
fn core_after_abort(store: &Store, cwd: &Path, allow: bool) -> bool {
    let serve = store.serve_command();
    let mut args: Vec<String> = vec![binary("tinfoild").display().to_string()];
    args.extend(serve.get_args().map(|a| a.to_string_lossy().into_owned()));
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -c unlimited 2>/dev/null; exec \"$@\"")
        .arg("sh")
        .args(&args)
        .current_dir(cwd)
        .env_remove("TINFOIL_PASSPHRASE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if allow {
        cmd.env("TINFOIL_ALLOW_CORE_DUMPS", "1");
    } else {
        cmd.env_remove("TINFOIL_ALLOW_CORE_DUMPS");
    }
    let mut child = KillOnDrop(cmd.spawn().expect("spawn"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::os::unix::net::UnixStream::connect(store.socket()).is_err() {
        assert!(child.0.try_wait().unwrap().is_none(), "tinfoild exited");
        assert!(Instant::now() < deadline, "tinfoild did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(child.0.id(), "ABRT");
    let _ = child.0.wait();
    let _ = std::fs::remove_file(store.socket());
    std::fs::read_dir(cwd)
        .unwrap()
        .any(|e| e.unwrap().file_name().to_string_lossy().starts_with("core"))
}

#[test]
fn a_crashed_daemon_leaves_no_core_file() {
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    if pattern.trim() != "core" && pattern.trim() != "core.%p" {
        eprintln!(
            "SKIPPED: core_pattern is {:?}; this test needs cores written to the working directory",
            pattern.trim()
        );
        return;
    }
    let store = Store::init();
    // The control: allowed dumps do leave a core file here.
    let allowed = tempfile::tempdir().unwrap();
    assert!(
        core_after_abort(&store, allowed.path(), true),
        "no core file even with TINFOIL_ALLOW_CORE_DUMPS=1: the check cannot see cores"
    );
    let forbidden = tempfile::tempdir().unwrap();
    assert!(
        !core_after_abort(&store, forbidden.path(), false),
        "tinfoild left a core file"
    );
}
