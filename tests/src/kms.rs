//! The AWS KMS endpoint under real, unmodified AWS clients: a `tinfoild`
//! serving `--kms-listen` on a loopback port, an access key made with the
//! `tinfoil` CLI, and the clients (awscli v1, boto3, the AWS Encryption SDK)
//! from the virtual environment scripts/test builds (`TINFOIL_TEST_VENV`,
//! else `target/kms-venv`).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::{bin_dir, json, stderr, stdout, Daemon, Store};

/// The region and account the tests' daemons use (the defaults).
pub const REGION: &str = "us-east-1";

/// The virtual environment holding the AWS clients. Panics with what to do
/// when it is missing: a test that needs a client never passes without it.
pub fn venv() -> PathBuf {
    let path = match std::env::var_os("TINFOIL_TEST_VENV") {
        Some(dir) => PathBuf::from(dir),
        // target/debug -> target/kms-venv
        None => bin_dir()
            .parent()
            .expect("target/<profile> has a parent")
            .join("kms-venv"),
    };
    assert!(
        path.join("bin/aws").exists() && path.join("bin/python").exists(),
        "the AWS clients' virtual environment is missing at {} (no bin/aws or bin/python): \
         run scripts/test, which creates target/kms-venv from tests/python/requirements.txt, \
         or point TINFOIL_TEST_VENV at such a venv",
        path.display()
    );
    path
}

/// The directory of the Python programs (tests/python).
pub fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python")
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free loopback port")
        .port()
}

/// An access key as `tinfoil create-access-key` printed it.
#[derive(Debug, Clone)]
pub struct AccessKey {
    /// AKIA...
    pub id: String,
    /// The secret (test stores only).
    pub secret: String,
}

/// A `tinfoild` with its KMS endpoint on, and an administrator's access key.
pub struct KmsDaemon {
    /// The daemon (its Unix socket serves the `tinfoil` CLI).
    pub daemon: Daemon,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// An access key of the account's administrators (`root`).
    pub admin: AccessKey,
    /// Where the clients' home and config files point (inside the store's
    /// temporary directory), so no user configuration leaks in.
    home: PathBuf,
}

impl KmsDaemon {
    /// Starts `tinfoild serve --kms-listen tcp:127.0.0.1:PORT
    /// --insecure-loopback` on `store` and makes an administrator access key.
    pub fn start(store: &Store, extra: &[&str]) -> KmsDaemon {
        let port = free_port();
        let listen = format!("tcp:127.0.0.1:{port}");
        let mut args = vec!["--kms-listen", &listen, "--insecure-loopback"];
        args.extend_from_slice(extra);
        let daemon = Daemon::start(store, &args);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the KMS endpoint did not listen on {addr}:\n{}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let admin = create_access_key(&daemon, "root");
        let home = store.dir.path().join("aws-home");
        std::fs::create_dir_all(&home).expect("create the clients' home");
        KmsDaemon {
            daemon,
            url: format!("http://{addr}"),
            admin,
            home,
        }
    }

    /// A command running `program` (a file in the venv's bin/) with the
    /// environment the four `tinfoild --dev` lines give, for `key`.
    pub fn client_command(&self, program: &str, key: &AccessKey) -> Command {
        let mut cmd = Command::new(venv().join("bin").join(program));
        // Nothing from the developer's own AWS setup.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(&name);
            }
        }
        cmd.env("HOME", &self.home)
            .env("AWS_CONFIG_FILE", self.home.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", self.home.join("credentials"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            // One attempt: an error is the endpoint's answer, not a retry's.
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("AWS_RETRY_MODE", "standard")
            .env("AWS_PAGER", "")
            .env("AWS_ENDPOINT_URL_KMS", &self.url)
            .env("AWS_ACCESS_KEY_ID", &key.id)
            .env("AWS_SECRET_ACCESS_KEY", &key.secret)
            .env("AWS_REGION", REGION)
            // awscli v1 and botocore read the region only from this one.
            .env("AWS_DEFAULT_REGION", REGION)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `aws kms ARGS...` as the administrator.
    pub fn aws(&self, args: &[&str]) -> Output {
        self.aws_as(&self.admin, args)
    }

    /// Runs `aws kms ARGS...` signed with `key`.
    pub fn aws_as(&self, key: &AccessKey, args: &[&str]) -> Output {
        self.client_command("aws", key)
            .arg("kms")
            .args(args)
            .output()
            .expect("run aws")
    }

    /// Runs `aws kms ARGS...` as the administrator and requires success
    /// (operations that answer nothing print nothing).
    #[track_caller]
    pub fn aws_ok(&self, args: &[&str]) -> Output {
        let out = self.aws(args);
        assert!(
            out.status.success(),
            "aws kms {args:?} failed ({}): {}",
            out.status,
            stderr(&out)
        );
        out
    }

    /// Runs `aws kms ARGS... --output json` as the administrator and
    /// parses the answer; panics (with the client's message) on failure.
    #[track_caller]
    pub fn aws_json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.aws(&[args, &["--output", "json"]].concat());
        assert!(
            out.status.success(),
            "aws kms {args:?} failed ({}): {}\n{}",
            out.status,
            stderr(&out),
            self.daemon.log()
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("aws kms {args:?} printed no JSON ({e}): {}", stdout(&out)))
    }

    /// Runs `tests/python/SCRIPT ARGS...` with the venv's Python as the
    /// administrator and requires exit 0; returns its standard output.
    pub fn python(&self, script: &str, args: &[&str]) -> String {
        let out = self
            .client_command("python", &self.admin)
            .arg(python_dir().join(script))
            .args(args)
            .output()
            .expect("run the venv's python");
        assert!(
            out.status.success(),
            "{script} {args:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}\n--- daemon log (tail)\n{}",
            out.status,
            stdout(&out),
            stderr(&out),
            tail(&self.daemon.log(), 40)
        );
        stdout(&out)
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Makes an access key for `user` (`root`: the administrators) with
/// `tinfoil create-access-key --output json` over the daemon's socket.
pub fn create_access_key(daemon: &Daemon, user: &str) -> AccessKey {
    let made = json(&daemon.cli(&["create-access-key", "--user-name", user, "--output", "json"]));
    let key = &made["AccessKey"];
    let secret = key
        .get("SecretAccessKey")
        .or_else(|| made.get("SecretAccessKey"))
        .and_then(|s| s.as_str())
        .unwrap_or_else(|| panic!("create-access-key printed no SecretAccessKey: {made}"));
    AccessKey {
        id: key["AccessKeyId"]
            .as_str()
            .unwrap_or_else(|| panic!("create-access-key printed no AccessKeyId: {made}"))
            .to_string(),
        secret: secret.to_string(),
    }
}

/// The `__type`-style exception name in an aws CLI error message
/// (`An error occurred (DisabledException) when calling ...`).
pub fn aws_error(out: &Output) -> Option<String> {
    let text = stderr(out);
    let start = text.find("An error occurred (")? + "An error occurred (".len();
    let end = text[start..].find(')')?;
    Some(text[start..start + end].to_string())
}

/// Asserts that `aws kms ...` failed with `exception`.
#[track_caller]
pub fn assert_aws_error(out: &Output, exception: &str) {
    assert!(
        !out.status.success(),
        "expected {exception}, but aws succeeded: {}",
        stdout(out)
    );
    assert_eq!(
        aws_error(out).as_deref(),
        Some(exception),
        "aws stderr: {}",
        stderr(out)
    );
}
