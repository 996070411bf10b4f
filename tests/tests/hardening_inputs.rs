//! Operator input that used to misbehave (issue 13): KDF parameters
//! without bounds (abort, endless run), a FIFO as passphrase file (blocked
//! for ever), `--listen` under a missing directory (created it), the
//! passphrase of `TINFOIL_PASSPHRASE` left in /proc/PID/environ, KDF
//! memory the process cannot have (aborted), a /proc file as passphrase
//! file (read the daemon's environment).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tinfoil_e2e_tests::daemon::{binary, json, stderr, unix_now, write_file, Store};

/// Runs `tinfoild ARGS` with no passphrase in the environment, killed if
/// it runs longer than `limit` (returns None then).
fn tinfoild_within(args: &[&str], limit: Duration) -> Option<Output> {
    let mut child = Command::new(binary("tinfoild"))
        .args(args)
        .env_remove("TINFOIL_PASSPHRASE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tinfoild");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(child.wait_with_output().expect("output"))
}

fn scratch() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").display().to_string();
    let pass = dir.path().join("pass");
    write_file(&pass, b"bounded passphrase\n", 0o600);
    let pass = pass.display().to_string();
    (dir, data, pass)
}

#[test]
fn kdf_parameters_out_of_bounds_are_refused_at_once() {
    let (_dir, data, pass) = scratch();
    for (flag, value) in [
        ("--kdf-memory-kib", "4294967295"),
        ("--kdf-memory-kib", "1024"),
        ("--kdf-iterations", "4294967295"),
        ("--kdf-iterations", "0"),
        ("--kdf-parallelism", "65"),
        ("--kdf-parallelism", "0"),
    ] {
        let out = tinfoild_within(
            &[
                "init",
                "--data-dir",
                &data,
                "--passphrase-file",
                &pass,
                flag,
                value,
            ],
            Duration::from_secs(30),
        )
        .unwrap_or_else(|| panic!("init {flag} {value} ran without end"));
        assert_eq!(out.status.code(), Some(1), "{flag} {value}: {out:?}");
        let err = stderr(&out);
        assert!(
            err.contains("ValidationException") && err.contains(&flag[2..].replace('-', "_")),
            "{flag} {value}: {err}"
        );
        assert!(!Path::new(&data).join("tinfoil.db").exists());
    }
}

/// --kdf-memory-kib within bounds (up to 4 GiB) but beyond what the
/// process may have: a clear ValidationException naming the memory, not
/// an abort (it was SIGABRT) or the OOM killer. The limit is an
/// address-space limit (`ulimit -v`, 2 GiB); on a machine with less free
/// memory than asked, the same message says how much is available.
#[test]
fn kdf_memory_the_process_cannot_have_is_refused_clearly() {
    let (_dir, data, pass) = scratch();
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 2097152 && exec \"$0\" \"$@\"")
        .arg(binary("tinfoild"))
        .args(["init", "--data-dir", &data, "--passphrase-file", &pass])
        .args(["--kdf-memory-kib", "4194304", "--kdf-iterations", "1"])
        .env_remove("TINFOIL_PASSPHRASE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains("ValidationException")
            && err.contains("kdf_memory_kib=4194304 needs 4096 MiB"),
        "{err}"
    );
    assert!(!Path::new(&data).join("tinfoil.db").exists());
}

/// A kernel pseudo-file is "regular" but holds no passphrase:
/// /proc/self/environ (mode 0400) used to hand the daemon its own
/// environment as the passphrase.
#[test]
fn a_proc_file_as_passphrase_file_is_refused() {
    let (_dir, data, _pass) = scratch();
    let out = tinfoild_within(
        &[
            "init",
            "--data-dir",
            &data,
            "--passphrase-file",
            "/proc/self/environ",
        ],
        Duration::from_secs(30),
    )
    .expect("init with a /proc file blocked");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr(&out).contains("kernel pseudo-file"),
        "{}",
        stderr(&out)
    );
    assert!(!Path::new(&data).join("tinfoil.db").exists());
}

#[test]
fn a_fifo_or_directory_as_passphrase_file_is_refused_without_blocking() {
    let store = Store::init();
    let dir = &store.dir;
    let data = store.data_dir.display().to_string();
    let fifo = dir.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    for (file, kind) in [
        (fifo.display().to_string(), "a FIFO"),
        (dir.path().display().to_string(), "a directory"),
        ("/dev/null".to_string(), "a device"),
    ] {
        for command in ["init", "serve"] {
            // init on a new directory, serve on the store.
            let data = match command {
                "init" => dir.path().join("fresh").display().to_string(),
                _ => data.clone(),
            };
            let out = tinfoild_within(
                &[command, "--data-dir", &data, "--passphrase-file", &file],
                Duration::from_secs(30),
            )
            .unwrap_or_else(|| panic!("{command} with {kind} blocked"));
            assert_eq!(out.status.code(), Some(1));
            let err = stderr(&out);
            assert!(
                err.contains(kind) && err.contains("must be a regular file"),
                "{command} {kind}: {err}"
            );
        }
    }
}

#[test]
fn listen_under_a_missing_directory_is_refused_and_nothing_is_created() {
    let store = Store::init();
    let missing = store.dir.path().join("no").join("such");
    let socket = missing.join("tinfoil.sock");
    let out = store
        .serve_command()
        .arg("--listen")
        .arg(format!("unix:{}", socket.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    assert!(
        !store.dir.path().join("no").exists(),
        "a directory was created"
    );
}

fn proc_file(pid: u32, name: &str) -> Vec<u8> {
    std::fs::read(format!("/proc/{pid}/{name}")).unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The daemon's environment block (/proc/PID/environ) and command line hold
/// neither the variable nor the passphrase once it started, and the
/// daemon (same process id) serves with it.
#[test]
fn the_environment_passphrase_is_gone_from_the_running_daemon() {
    const SECRET: &str = "env-secret-6d1f0c2b-visible-nowhere";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let init = Command::new(binary("tinfoild"))
        .args(["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"])
        .arg("--data-dir")
        .arg(&data)
        .env("TINFOIL_PASSPHRASE", SECRET)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", stderr(&init));

    let clock = dir.path().join("clock");
    std::fs::write(&clock, unix_now().to_string()).unwrap();
    let log = dir.path().join("log");
    let socket = data.join("tinfoil.sock");
    let child = Command::new(binary("tinfoild"))
        .arg("serve")
        .arg("--data-dir")
        .arg(&data)
        .env("TINFOIL_PASSPHRASE", SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut child = tinfoil_e2e_tests::daemon::KillOnDrop(child);
    let pid = child.0.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "tinfoild exited: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(Instant::now() < deadline, "tinfoild did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let environ = proc_file(pid, "environ");
    assert!(
        !contains(&environ, b"TINFOIL_PASSPHRASE="),
        "variable in environ"
    );
    assert!(
        !contains(&environ, SECRET.as_bytes()),
        "passphrase in environ"
    );
    assert!(!contains(&proc_file(pid, "cmdline"), SECRET.as_bytes()));

    // The same process serves the store unsealed with that passphrase.
    let out = tinfoil_e2e_tests::daemon::cli(
        &format!("unix:{}", socket.display()),
        &["create-key", "--output", "json"],
        b"",
    );
    json(&out);
    drop(child);

    // A wrong passphrase through the same path still exits 3.
    let out = Command::new(binary("tinfoild"))
        .arg("serve")
        .arg("--data-dir")
        .arg(&data)
        .env("TINFOIL_PASSPHRASE", "not the passphrase")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}
