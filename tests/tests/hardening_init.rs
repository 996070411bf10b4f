//! `tinfoild init` is atomic (issue 13): killed with SIGKILL at any moment,
//! it leaves either no store (a new init succeeds) or a complete one (init
//! refuses it and serve opens it), never one that both refuse.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tinfoil_e2e_tests::daemon::{binary, json, stderr, unix_now, write_file, Daemon, Store};

/// How many kill points are tried (bounded: each costs one init, one
/// re-init and one daemon start).
const KILL_POINTS: u32 = 16;

fn init_command(data_dir: &Path, passphrase_file: &Path) -> Command {
    let mut cmd = Command::new(binary("tinfoild"));
    cmd.arg("init")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--passphrase-file")
        .arg(passphrase_file)
        .args(["--kdf-memory-kib", "8192", "--kdf-iterations", "1"])
        .env_remove("TINFOIL_PASSPHRASE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn fresh_store() -> Store {
    let dir = tempfile::Builder::new()
        .prefix("tinfoil-init-kill-")
        .tempdir()
        .expect("tempdir");
    let data_dir = dir.path().join("data");
    let passphrase_file = dir.path().join("passphrase");
    write_file(&passphrase_file, b"kill me softly\n", 0o600);
    let clock_file = dir.path().join("clock");
    std::fs::write(&clock_file, unix_now().to_string()).expect("clock");
    Store {
        dir,
        data_dir,
        passphrase_file,
        clock_file,
    }
}

fn run(mut cmd: Command) -> Output {
    cmd.output().expect("run tinfoild")
}

/// After a kill: init again either makes the store or says one is there;
/// either way serve then opens it and it answers.
fn assert_recoverable(store: &Store, killed_after: Duration) {
    let again = run(init_command(&store.data_dir, &store.passphrase_file));
    let err = stderr(&again);
    assert!(
        again.status.success() || err.contains("already holds a store"),
        "init after a kill at {killed_after:?} failed: {err}"
    );
    assert!(
        !err.contains("in use") && !err.contains("never fully"),
        "init after a kill at {killed_after:?}: {err}"
    );
    let daemon = Daemon::start(store, &[]);
    let listed = json(&daemon.cli(&["list-keys", "--output", "json"]));
    assert!(listed.get("keys").is_some() || listed.as_object().is_some());
    let created = daemon.cli(&["create-key", "--output", "json"]);
    assert!(created.status.success(), "{}", stderr(&created));
}

#[test]
fn init_killed_at_any_moment_leaves_no_store_or_a_complete_one() {
    // How long an uninterrupted init takes here.
    let probe = fresh_store();
    let started = Instant::now();
    let out = run(init_command(&probe.data_dir, &probe.passphrase_file));
    let full = started.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));

    let mut outcomes = (0u32, 0u32); // (no store after the kill, complete store)
    for point in 0..KILL_POINTS {
        let store = fresh_store();
        // Spread the kill points over the whole run and a little past it.
        let at = full * point / (KILL_POINTS - 2);
        let mut child = init_command(&store.data_dir, &store.passphrase_file)
            .spawn()
            .expect("spawn init");
        std::thread::sleep(at);
        let _ = child.kill();
        let status = child.wait().expect("wait");
        let db = store.data_dir.join("tinfoil.db");
        if db.exists() {
            outcomes.1 += 1;
        } else {
            outcomes.0 += 1;
        }
        let leftovers: Vec<String> = std::fs::read_dir(&store.data_dir)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        eprintln!("kill at {at:?} (status {status}): files {leftovers:?}");
        assert_recoverable(&store, at);
    }
    eprintln!(
        "full init {full:?}; {} kills left no store, {} a complete one",
        outcomes.0, outcomes.1
    );
}
