//! Running the real `tinfoild` and `tinfoil` binaries.
//!
//! The binaries are found next to the test executable's directory
//! (`target/debug/`); `cargo build --workspace --all-targets` (run by
//! scripts/test) builds them first.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;
use tinfoil_daemon::client::{connect, ClientTls};
use tinfoil_proto::v1::key_management_client::KeyManagementClient;
use tonic::transport::Channel;

/// How long a daemon may take to start (debug builds, loaded machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The directory holding the built binaries (`target/debug`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/debug/deps/<test> -> target/debug
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps")
        .to_path_buf()
}

/// The path of a built binary; panics with a hint when it is missing.
pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p grpc-daemon` (scripts/test does) first",
        path.display()
    );
    path
}

/// Now, in Unix seconds, from the system clock.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// A store created by `tinfoild init` in a temporary directory, with a
/// private passphrase file and a test-only clock file.
pub struct Store {
    /// Holds everything; deleted on drop.
    pub dir: TempDir,
    /// The store's directory.
    pub data_dir: PathBuf,
    /// The passphrase file (mode 0600).
    pub passphrase_file: PathBuf,
    /// The file the daemon reads its clock from (Unix seconds).
    pub clock_file: PathBuf,
}

/// Writes `text` to a new file with `mode`.
pub fn write_file(path: &Path, text: &[u8], mode: u32) {
    let mut f = std::fs::File::create(path).expect("create file");
    f.write_all(text).expect("write file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

impl Store {
    /// Creates a store with small Argon2 parameters (fast tests).
    pub fn init() -> Store {
        let dir = tempfile::Builder::new()
            .prefix("tinfoil-e2e-")
            .tempdir()
            .expect("tempdir");
        let data_dir = dir.path().join("data");
        let passphrase_file = dir.path().join("passphrase");
        write_file(&passphrase_file, b"correct horse battery staple\n", 0o600);
        let clock_file = dir.path().join("clock");
        let store = Store {
            data_dir,
            passphrase_file,
            clock_file,
            dir,
        };
        store.set_clock(unix_now());
        let out = Command::new(binary("tinfoild"))
            .arg("init")
            .arg("--data-dir")
            .arg(&store.data_dir)
            .arg("--passphrase-file")
            .arg(&store.passphrase_file)
            .args(["--kdf-memory-kib", "8192", "--kdf-iterations", "1"])
            .env_remove("TINFOIL_PASSPHRASE")
            .stdin(Stdio::null())
            .output()
            .expect("run tinfoild init");
        assert!(
            out.status.success(),
            "tinfoild init failed: {}",
            stderr(&out)
        );
        store
    }

    /// Sets the daemon's test-only clock.
    pub fn set_clock(&self, unix_seconds: i64) {
        std::fs::write(&self.clock_file, unix_seconds.to_string()).expect("write clock");
    }

    /// The socket path daemons of this store listen on.
    pub fn socket(&self) -> PathBuf {
        self.data_dir.join("tinfoil.sock")
    }

    /// A `tinfoild serve` command for this store (not started).
    pub fn serve_command(&self) -> Command {
        self.serve_command_with_passphrase(&self.passphrase_file)
    }

    /// A `tinfoild serve` command reading the passphrase from `file`.
    pub fn serve_command_with_passphrase(&self, file: &Path) -> Command {
        let mut cmd = Command::new(binary("tinfoild"));
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--passphrase-file")
            .arg(file)
            .arg("--test-only-clock-file")
            .arg(&self.clock_file)
            .args(["--tick-interval-secs", "1"])
            .env_remove("TINFOIL_PASSPHRASE")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        cmd
    }
}

/// Standard error of a finished process, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Standard output of a finished process, as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A running `tinfoild serve`; killed on drop if still running.
pub struct Daemon {
    child: Child,
    /// The endpoint, e.g. `unix:/tmp/.../tinfoil.sock`.
    pub endpoint: String,
    log: PathBuf,
}

impl Daemon {
    /// Starts `tinfoild serve` for `store` with extra flags and waits until
    /// its Unix socket accepts connections.
    pub fn start(store: &Store, extra: &[&str]) -> Daemon {
        Daemon::start_at(store, extra, &store.socket())
    }

    /// Starts `tinfoild serve` for `store` with extra flags (which move the
    /// socket to `socket`) and waits until `socket` accepts connections.
    pub fn start_at(store: &Store, extra: &[&str], socket: &Path) -> Daemon {
        let log = store
            .dir
            .path()
            .join(format!("daemon-{}.log", unix_now_nanos()));
        let mut cmd = store.serve_command();
        cmd.args(extra);
        Daemon::spawn(cmd, log, socket)
    }

    /// Starts `cmd` (a `tinfoild serve` command line, e.g. of a node on a
    /// PostgreSQL store) with its standard error in the file `log`, and
    /// waits until `socket` accepts connections.
    pub fn spawn(mut cmd: Command, log: PathBuf, socket: &Path) -> Daemon {
        cmd.stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"));
        let child = cmd.spawn().expect("spawn tinfoild");
        let mut daemon = Daemon {
            child,
            endpoint: format!("unix:{}", socket.display()),
            log,
        };
        daemon.wait_ready(socket);
        daemon
    }

    fn wait_ready(&mut self, socket: &Path) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if std::os::unix::net::UnixStream::connect(socket).is_ok() {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "tinfoild exited with {status} before serving:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "tinfoild did not listen in time:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The daemon's log (standard error) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Runs `tinfoil --endpoint <this daemon> ARGS...`.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_stdin(args, &[])
    }

    /// Runs the CLI with `input` on standard input.
    pub fn cli_with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        cli(&self.endpoint, args, input)
    }

    /// A gRPC client over a new connection.
    pub async fn client(&self) -> KeyManagementClient<Channel> {
        KeyManagementClient::new(self.channel().await)
    }

    /// A new connection.
    pub async fn channel(&self) -> Channel {
        connect(&self.endpoint, &ClientTls::default())
            .await
            .expect("connect to tinfoild")
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(self) -> ExitStatus {
        signal(self.child.id(), "TERM");
        self.stop_after_signal()
    }

    /// Waits for the exit status after a signal was sent.
    pub fn stop_after_signal(mut self) -> ExitStatus {
        self.child.wait().expect("wait for tinfoild")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Now, in nanoseconds since 1970 (unique log file names).
pub fn unix_now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos()
}

/// Sends a signal (`TERM`, `INT`) to a process with kill(1).
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// Runs `tinfoil --endpoint ENDPOINT ARGS...` with `input` on standard input.
pub fn cli(endpoint: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(binary("tinfoil"))
        .arg("--endpoint")
        .arg(endpoint)
        .args(args)
        .env_remove("TINFOIL_ENDPOINT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tinfoil");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write stdin");
    drop(stdin);
    child.wait_with_output().expect("wait for tinfoil")
}

/// Parses the CLI's `--output json` standard output.
pub fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "tinfoil failed ({}): {}",
        out.status,
        stderr(out)
    );
    serde_json::from_slice(&out.stdout).expect("tinfoil printed JSON")
}

/// Asserts that the CLI failed with exit code 1 and named `exception`.
pub fn assert_kms_error(out: &Output, exception: &str) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit 1 with {exception}; stdout: {} stderr: {}",
        stdout(out),
        stderr(out)
    );
    assert!(
        stderr(out).contains(&format!("({exception})")),
        "stderr does not name {exception}: {}",
        stderr(out)
    );
}

/// Polls `check` every 100 ms until it returns true or `limit` passes;
/// returns whether it became true.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process killed (and reaped) on drop, so a failing test never
/// leaves a daemon behind.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
