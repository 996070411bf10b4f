//! A throwaway PostgreSQL cluster for tests: `initdb` in a temporary
//! directory, `pg_ctl start` on a Unix socket in that directory and a free
//! loopback port, `pg_ctl stop` on drop. Run as root, the cluster runs as
//! `nobody` (`runuser`), since PostgreSQL refuses to run as root. No
//! system-wide server is used or needed.
//!
//! The binaries are `$TINFOIL_PG_BIN`, else the newest
//! `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package, which
//! scripts/test installs). Without them [`Cluster::start`] prints why the
//! test is skipped and returns `None`, unless `TINFOIL_REQUIRE_POSTGRES`
//! is set (scripts/test sets it): then it panics, so a run that should
//! cover PostgreSQL cannot pass without it.
//!
//! Other crates' tests and benchmarks reach it as `hsm_core::test_cluster`
//! with hsm-core's `test-cluster` feature (tests/ enables it).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A running cluster; stopped (and its directory removed) on drop.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    run_as: Option<&'static str>,
    databases: AtomicU32,
    fsync: bool,
}

fn find_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TINFOIL_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<(f64, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version: f64 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort_by(|a, b| a.0.total_cmp(&b.0));
    found.pop().map(|(_, bin)| bin)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Cluster {
    /// Starts a cluster, or says why not (see the module's notes). It
    /// runs with `fsync=off` (tests do not survive power loss).
    pub fn start() -> Option<Cluster> {
        Cluster::start_with_fsync(false)
    }

    /// Like [`Cluster::start`], but with `fsync=on` (PostgreSQL's default):
    /// for benchmarks of durable writes.
    // Used by tests/ (feature `test-cluster`), not by hsm-core's own tests.
    #[cfg_attr(test, allow(dead_code))]
    pub fn start_durable() -> Option<Cluster> {
        Cluster::start_with_fsync(true)
    }

    fn start_with_fsync(fsync: bool) -> Option<Cluster> {
        let Some(bin) = find_bin() else {
            if std::env::var_os("TINFOIL_REQUIRE_POSTGRES").is_some() {
                panic!("PostgreSQL binaries not found and TINFOIL_REQUIRE_POSTGRES is set");
            }
            eprintln!(
                "SKIPPED: PostgreSQL tests need initdb/pg_ctl (Debian's postgresql package, \
                 /usr/lib/postgresql/*/bin, or TINFOIL_PG_BIN); scripts/test installs them"
            );
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("tinfoil-pg-")
            .tempdir()
            .expect("a temporary directory");
        let root = std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(1)
            == 0;
        let run_as = root.then_some("nobody");
        if root {
            let nobody = Command::new("id")
                .args(["-u", "nobody"])
                .output()
                .ok()
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .and_then(|s| s.trim().parse::<u32>().ok())
                .expect("the user nobody");
            std::os::unix::fs::chown(dir.path(), Some(nobody), None).expect("chown to nobody");
        }
        let cluster = Cluster {
            dir,
            bin,
            port: free_port(),
            run_as,
            databases: AtomicU32::new(0),
            fsync,
        };
        let data = cluster.data_dir();
        let mut args = vec![
            "-D",
            data.to_str().expect("a UTF-8 path"),
            "-U",
            "tinfoil",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ];
        // Text compared by a real language's rules (en-US: 'a' < 'B'),
        // not bytes, as on most production servers, so the store proves it
        // does not depend on the database's collation. Debian's glibc
        // has no en_US locale without the locales package, so ICU's
        // (PostgreSQL 15 and later); older servers stay on C.
        if cluster.supports_icu() {
            args.extend(["--locale-provider=icu", "--icu-locale=en-US"]);
        }
        cluster.run("initdb", &args);
        cluster.start_server();
        Some(cluster)
    }

    /// Starts the server (again).
    pub fn start_server(&self) {
        let data = self.data_dir();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync={} -c max_connections=200",
            self.port,
            self.dir.path().display(),
            if self.fsync { "on" } else { "off" }
        );
        let log = self.dir.path().join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("a UTF-8 path"),
                "-l",
                log.to_str().expect("a UTF-8 path"),
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
    }

    /// Stops the server (fast shutdown: sessions are ended).
    pub fn stop_server(&self) {
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("a UTF-8 path"),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
    }

    /// Whether this initdb can make an ICU cluster (PostgreSQL 15+).
    fn supports_icu(&self) -> bool {
        self.command("initdb")
            .arg("--help")
            .current_dir(Path::new("/"))
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--locale-provider"))
    }

    /// Whether the cluster's databases collate text by ICU's en-US rules
    /// (else by bytes, as C).
    pub fn collates_by_language(&self) -> bool {
        self.supports_icu()
    }

    /// The running server's process id (the postmaster's, from its pid
    /// file), if it runs (multinode_bench's `--database-cpu`).
    #[cfg_attr(test, allow(dead_code))]
    pub fn server_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data_dir().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .current_dir(Path::new("/"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A new empty database; its URL (loopback TCP, user `tinfoil`).
    pub fn new_database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("t{n}");
        let mut admin = postgres::Client::connect(
            &format!(
                "host=127.0.0.1 port={} user=tinfoil dbname=postgres",
                self.port
            ),
            postgres::NoTls,
        )
        .expect("connect to the test cluster");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create a test database");
        format!("postgres://tinfoil@127.0.0.1:{}/{name}", self.port)
    }

    /// The `pg_dump` of a database (`url` from [`Cluster::new_database`]),
    /// as text.
    pub fn dump(&self, url: &str) -> Vec<u8> {
        let out = Command::new(self.bin.join("pg_dump"))
            .arg(url)
            .output()
            .expect("run pg_dump");
        assert!(out.status.success(), "pg_dump failed");
        out.stdout
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = self
            .command("pg_ctl")
            .args([
                "-D",
                &data.to_string_lossy(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .current_dir(Path::new("/"))
            .output();
    }
}
