//! Several `tinfoild` nodes on one PostgreSQL database (issue 15).
//!
//! [`PgStore::init`] starts a throwaway cluster (hsm-core's
//! `test_cluster`: initdb/pg_ctl as an unprivileged user in a temporary
//! directory, a Unix socket and a loopback port), creates a database, runs
//! `tinfoild init --store-url postgres://tinfoil@127.0.0.1:PORT/DB` on it,
//! and [`PgStore::start_node`] starts `tinfoild serve --store-url ...
//! --listen unix:SOCK` nodes, each on its own socket, with the start, wait
//! and kill logic of [`crate::daemon::Daemon`]. Every node reads the same
//! test-only clock file, so a test moves time for all of them at once.
//!
//! Without PostgreSQL's binaries [`PgStore::init`] prints why the test is
//! skipped and returns `None`, unless `TINFOIL_REQUIRE_POSTGRES` is set
//! (scripts/test sets it): then it panics.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use hsm_core::test_cluster::Cluster;
use tempfile::TempDir;

use crate::daemon::{binary, stderr, unix_now, unix_now_nanos, write_file, Daemon};

/// A store in a PostgreSQL database, created by `tinfoild init
/// --store-url`, with a private passphrase file and a test-only clock file
/// every node reads.
pub struct PgStore {
    /// The cluster holding the database; stopped on drop (after the
    /// nodes, which are dropped first by whoever holds them).
    pub cluster: Cluster,
    /// The database's URL (no password: the test cluster trusts loopback).
    pub url: String,
    /// Sockets, logs, the passphrase and clock files; deleted on drop.
    pub dir: TempDir,
    /// The passphrase file (mode 0600).
    pub passphrase_file: PathBuf,
    /// The file the nodes read their clock from (Unix seconds).
    pub clock_file: PathBuf,
}

impl PgStore {
    /// Starts a cluster and initializes a store in a new database of it;
    /// `None` (with a SKIPPED message) without PostgreSQL's binaries.
    pub fn init() -> Option<PgStore> {
        Some(PgStore::init_on(Cluster::start()?))
    }

    /// Initializes a store in a new database of `cluster` (small Argon2
    /// parameters: fast tests).
    pub fn init_on(cluster: Cluster) -> PgStore {
        let url = cluster.new_database();
        let dir = tempfile::Builder::new()
            .prefix("tinfoil-nodes-")
            .tempdir()
            .expect("tempdir");
        let passphrase_file = dir.path().join("passphrase");
        write_file(&passphrase_file, b"correct horse battery staple\n", 0o600);
        let clock_file = dir.path().join("clock");
        let store = PgStore {
            cluster,
            url,
            passphrase_file,
            clock_file,
            dir,
        };
        store.set_clock(unix_now());
        let out = Command::new(binary("tinfoild"))
            .arg("init")
            .arg("--store-url")
            .arg(&store.url)
            .arg("--passphrase-file")
            .arg(&store.passphrase_file)
            .args(["--kdf-memory-kib", "8192", "--kdf-iterations", "1"])
            .env_remove("TINFOIL_PASSPHRASE")
            .env_remove("PGPASSWORD")
            .stdin(Stdio::null())
            .output()
            .expect("run tinfoild init");
        assert!(
            out.status.success(),
            "tinfoild init --store-url failed: {}",
            stderr(&out)
        );
        store
    }

    /// Sets the nodes' test-only clock.
    pub fn set_clock(&self, unix_seconds: i64) {
        std::fs::write(&self.clock_file, unix_seconds.to_string()).expect("write clock");
    }

    /// The socket node `n` listens on.
    pub fn socket(&self, n: usize) -> PathBuf {
        self.dir.path().join(format!("node-{n}.sock"))
    }

    /// A `tinfoild serve --store-url ... --listen unix:SOCKET` command (not
    /// started), ticking every second on the test clock.
    pub fn serve_command(&self, socket: &Path) -> Command {
        let mut cmd = Command::new(binary("tinfoild"));
        cmd.arg("serve")
            .arg("--store-url")
            .arg(&self.url)
            .arg("--passphrase-file")
            .arg(&self.passphrase_file)
            .arg("--listen")
            .arg(format!("unix:{}", socket.display()))
            .arg("--test-only-clock-file")
            .arg(&self.clock_file)
            .args(["--tick-interval-secs", "1"])
            .env_remove("TINFOIL_PASSPHRASE")
            .env_remove("PGPASSWORD")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        cmd
    }

    /// Starts node `n` (on [`PgStore::socket`]`(n)`, with `extra` flags)
    /// and waits until it listens. A node started again after a kill
    /// reuses its socket path (the daemon replaces a stale socket file).
    pub fn start_node(&self, n: usize, extra: &[&str]) -> Daemon {
        let socket = self.socket(n);
        let log = self
            .dir
            .path()
            .join(format!("node-{n}-{}.log", unix_now_nanos()));
        let mut cmd = self.serve_command(&socket);
        cmd.args(extra);
        Daemon::spawn(cmd, log, &socket)
    }

    /// Starts nodes `0..count`.
    pub fn start_nodes(&self, count: usize) -> Vec<Daemon> {
        (0..count).map(|n| self.start_node(n, &[])).collect()
    }

    /// A direct connection to the store's database (to read what the nodes
    /// wrote: audit rows, key versions).
    pub fn db(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).expect("connect to the store")
    }

    /// The `pg_dump` of the store's database, as text.
    pub fn dump(&self) -> Vec<u8> {
        self.cluster.dump(&self.url)
    }
}
