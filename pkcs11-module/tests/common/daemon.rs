//! The real tinfoild for the `daemon` backend cases: a fresh store in a
//! temporary directory, served on a Unix socket, stopped by its PID when
//! the case ends (also when it fails: `Loaded` and `Raw` stop it on drop).
//!
//! The binary comes from target/debug: scripts/test runs
//! `cargo build --workspace --all-targets` first. When it is missing the
//! case fails (it never skips).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long tinfoild may take to start (debug build, loaded machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running tinfoild; killed and reaped on drop.
pub struct TestDaemon {
    child: Child,
    /// `unix:PATH` of its socket.
    pub endpoint: String,
    log: PathBuf,
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The daemon of the case now running (cases run one at a time).
static CURRENT: Mutex<Option<TestDaemon>> = Mutex::new(None);

/// A binary of the workspace in target/debug; fails loudly when missing.
pub fn binary(name: &str) -> PathBuf {
    let path = super::target_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: the daemon backend tests need it; run \
         `cargo build --workspace --all-targets` (scripts/test does) first",
        path.display()
    );
    path
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Creates a store in `dir/data`, starts tinfoild on `dir/data/tinfoil.sock`,
/// waits until it accepts connections and records it as the current
/// daemon (stopping any previous one). Returns its endpoint.
pub fn start(dir: &Path) -> String {
    start_with(dir, &[])
}

/// [`start`] with more `tinfoild serve` arguments.
pub fn start_with(dir: &Path, serve_args: &[&str]) -> String {
    stop();
    let data = dir.join("data");
    let pass = dir.join("daemon-passphrase");
    std::fs::write(&pass, "a passphrase for daemon tests\n").unwrap();
    super::restrict(&pass);
    run(
        Command::new(binary("tinfoild"))
            .arg("init")
            .arg("--data-dir")
            .arg(&data)
            .arg("--passphrase-file")
            .arg(&pass)
            .args(["--kdf-memory-kib", "8192", "--kdf-iterations", "1"])
            .env_remove("TINFOIL_PASSPHRASE"),
        "tinfoild init",
    );
    let socket = data.join("tinfoil.sock");
    let log = dir.join("tinfoild.log");
    let child = Command::new(binary("tinfoild"))
        .arg("serve")
        .arg("--data-dir")
        .arg(&data)
        .arg("--passphrase-file")
        .arg(&pass)
        // RSA-4096 generation in a debug build on a loaded 2-CPU machine
        // has a long tail; no test here relies on the default deadline.
        .args(["--call-timeout-ms", "120000"])
        .args(serve_args)
        .env_remove("TINFOIL_PASSPHRASE")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn tinfoild");
    let mut daemon = TestDaemon {
        child,
        endpoint: format!("unix:{}", socket.display()),
        log,
    };
    let deadline = Instant::now() + START_TIMEOUT;
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        let log = std::fs::read_to_string(&daemon.log).unwrap_or_default();
        if let Some(status) = daemon.child.try_wait().expect("try_wait") {
            panic!("tinfoild exited with {status} before serving:\n{log}");
        }
        assert!(Instant::now() < deadline, "tinfoild did not listen:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let endpoint = daemon.endpoint.clone();
    *lock() = Some(daemon);
    endpoint
}

fn lock() -> std::sync::MutexGuard<'static, Option<TestDaemon>> {
    CURRENT.lock().unwrap_or_else(|p| p.into_inner())
}

/// Stops the current daemon, if any.
pub fn stop() {
    lock().take();
}

/// The endpoint of the current daemon.
pub fn endpoint() -> String {
    lock()
        .as_ref()
        .map(|d| d.endpoint.clone())
        .expect("a daemon is running")
}

/// The process id of the current daemon.
pub fn pid() -> u32 {
    lock()
        .as_ref()
        .map(|d| d.child.id())
        .expect("a daemon is running")
}

/// Runs `tinfoil --endpoint <current daemon> ARGS...`; returns its output.
pub fn cli(args: &[&str]) -> std::process::Output {
    Command::new(binary("tinfoil"))
        .arg("--endpoint")
        .arg(endpoint())
        .args(args)
        .env_remove("TINFOIL_ENDPOINT")
        .stdin(Stdio::null())
        .output()
        .expect("run tinfoil")
}
