//! `tinfoild init/serve --store-url` (issue 15): what the flags refuse and
//! how a PostgreSQL store that cannot be used is reported. A password in
//! the URL (it would show in /proc/PID/cmdline), `--data-dir` with
//! `--store-url`, a store password file others can read or that is not a
//! regular file, `serve` without `--listen`; an unreachable database named
//! by host and port (never the password), a database holding no store,
//! `init` on a database that holds one; PGPASSWORD gone from the running
//! daemon's environment.
//!
//! The refusals need no database; the rest start a throwaway cluster
//! (hsm-core's test_cluster) and skip with a message without PostgreSQL's
//! binaries, unless TINFOIL_REQUIRE_POSTGRES is set.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tinfoil_e2e_tests::daemon::{binary, stderr, write_file};
use tinfoil_e2e_tests::pg_nodes::Cluster;

const DB_SECRET: &str = "pg-secret-3a91c7e5-visible-nowhere";

/// Runs `tinfoild ARGS` with neither secret in the environment unless
/// `env` sets it, killed after a minute.
fn tinfoild(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(binary("tinfoild"));
    cmd.args(args)
        .env_remove("TINFOIL_PASSPHRASE")
        .env_remove("PGPASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn tinfoild");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("tinfoild {args:?} ran for a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// A directory with a private passphrase file (its path as text).
fn scratch() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let pass = dir.path().join("pass");
    write_file(&pass, b"correct horse battery staple\n", 0o600);
    (dir, pass.display().to_string())
}

/// Fails unless `out` is a clean refusal (exit 1) whose message says
/// `expected` and never shows `secret`.
fn refused(out: &Output, expected: &str, secret: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(expected), "expected {expected:?} in: {err}");
    assert!(!err.contains(secret), "the secret was shown: {err}");
    assert!(!stdout_of(out).contains(secret));
}

fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const KDF: [&str; 4] = ["--kdf-memory-kib", "8192", "--kdf-iterations", "1"];

#[test]
fn a_password_in_the_store_url_is_refused_and_not_shown() {
    let (_dir, pass) = scratch();
    for url in [
        format!("postgres://tinfoil:{DB_SECRET}@127.0.0.1:5432/kms"),
        format!("postgres://tinfoil@127.0.0.1:5432/kms?password={DB_SECRET}"),
        format!("host=127.0.0.1 user=tinfoil password={DB_SECRET} dbname=kms"),
    ] {
        let out = tinfoild(
            &["init", "--store-url", &url, "--passphrase-file", &pass],
            &[],
        );
        refused(&out, "must not hold a password", DB_SECRET);
        let out = tinfoild(
            &[
                "serve",
                "--store-url",
                &url,
                "--passphrase-file",
                &pass,
                "--listen",
                "unix:/nonexistent/s",
            ],
            &[],
        );
        refused(&out, "must not hold a password", DB_SECRET);
    }
    // The same from a configuration file.
    let (dir, pass) = scratch();
    let config = dir.path().join("tinfoil.toml");
    write_file(
        &config,
        format!("store_url = \"postgres://tinfoil:{DB_SECRET}@127.0.0.1/kms\"\n").as_bytes(),
        0o600,
    );
    let out = tinfoild(
        &[
            "init",
            "--config",
            &config.display().to_string(),
            "--passphrase-file",
            &pass,
        ],
        &[],
    );
    refused(&out, "must not hold a password", DB_SECRET);
}

#[test]
fn data_dir_with_store_url_and_serve_without_listen_are_refused() {
    let (dir, pass) = scratch();
    let data = dir.path().join("data").display().to_string();
    let url = "postgres://tinfoil@127.0.0.1:5432/kms";
    for cmd in ["init", "serve"] {
        let out = tinfoild(
            &[
                cmd,
                "--data-dir",
                &data,
                "--store-url",
                url,
                "--passphrase-file",
                &pass,
            ],
            &[],
        );
        refused(&out, "exclude each other", DB_SECRET);
    }
    assert!(!Path::new(&data).exists(), "nothing was created");
    // No data directory, so no default socket: --listen is required.
    let out = tinfoild(
        &["serve", "--store-url", url, "--passphrase-file", &pass],
        &[],
    );
    refused(&out, "--listen", DB_SECRET);
    // A password file belongs to a PostgreSQL store.
    let pw = dir.path().join("pw");
    write_file(&pw, DB_SECRET.as_bytes(), 0o600);
    let out = tinfoild(
        &[
            "init",
            "--data-dir",
            &data,
            "--store-password-file",
            &pw.display().to_string(),
            "--passphrase-file",
            &pass,
        ],
        &[],
    );
    refused(&out, "needs --store-url", DB_SECRET);
}

#[test]
fn an_unsafe_store_password_file_is_refused() {
    let (dir, pass) = scratch();
    let url = "postgres://tinfoil@127.0.0.1:5432/kms";
    let readable = dir.path().join("readable");
    write_file(&readable, DB_SECRET.as_bytes(), 0o644);
    let fifo = dir.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let empty = dir.path().join("empty");
    write_file(&empty, b"", 0o600);
    for (file, expected) in [
        (readable.as_path(), "chmod 600"),
        (fifo.as_path(), "must be a regular file"),
        (Path::new("/proc/self/environ"), "kernel pseudo-file"),
        (empty.as_path(), "empty"),
        (dir.path(), "a directory"),
    ] {
        let out = tinfoild(
            &[
                "init",
                "--store-url",
                url,
                "--store-password-file",
                &file.display().to_string(),
                "--passphrase-file",
                &pass,
            ],
            &[],
        );
        refused(&out, expected, DB_SECRET);
        assert!(stderr(&out).contains("store password"), "{}", stderr(&out));
    }
}

/// A port nothing listens on: the message names host and port, the
/// password from PGPASSWORD or the file is not in it, the exit is 1.
#[test]
fn an_unreachable_database_is_named_without_its_password() {
    let (dir, pass) = scratch();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://tinfoil@127.0.0.1:{port}/kms");
    let pw = dir.path().join("pw");
    write_file(&pw, DB_SECRET.as_bytes(), 0o600);
    let pw = pw.display().to_string();
    let serve = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec![
            "serve",
            "--store-url",
            &url,
            "--passphrase-file",
            &pass,
            "--listen",
            "unix:/nonexistent/s",
        ];
        args.extend_from_slice(extra);
        tinfoild(&args, env)
    };
    let expected = format!("cannot connect to PostgreSQL at tinfoil@127.0.0.1:{port}/kms");
    refused(
        &serve(&[], &[("PGPASSWORD", DB_SECRET)]),
        &expected,
        DB_SECRET,
    );
    refused(
        &serve(&["--store-password-file", &pw], &[]),
        &expected,
        DB_SECRET,
    );
    let out = tinfoild(
        &["init", "--store-url", &url, "--passphrase-file", &pass],
        &[("PGPASSWORD", DB_SECRET)],
    );
    refused(&out, &expected, DB_SECRET);
    assert!(stderr(&out).contains("StoreUnavailableException"));
}

/// A database without a store: serve says to run init; init makes one;
/// init again refuses; a wrong passphrase exits 3; serve then runs, with PGPASSWORD (and the
/// passphrase from TINFOIL_PASSPHRASE) gone from its environment.
#[test]
fn init_and_serve_on_a_database_with_and_without_a_store() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.new_database();
    let (dir, pass) = scratch();
    let socket = dir.path().join("node.sock");
    let listen = format!("unix:{}", socket.display());
    let out = tinfoild(
        &[
            "serve",
            "--store-url",
            &url,
            "--passphrase-file",
            &pass,
            "--listen",
            &listen,
        ],
        &[],
    );
    refused(&out, "run `tinfoild init --store-url` first", DB_SECRET);
    assert!(stderr(&out).contains("holds no Tinfoil store"));

    let out = init_url(&url, &pass);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout_of(&out).contains("store created in the PostgreSQL database"));
    let out = init_url(&url, &pass);
    refused(&out, "already holds a Tinfoil store", DB_SECRET);
    // A wrong passphrase: exit 3, as for a SQLite store.
    let wrong = dir.path().join("wrong");
    write_file(&wrong, b"not the passphrase\n", 0o600);
    let out = tinfoild(
        &[
            "serve",
            "--store-url",
            &url,
            "--passphrase-file",
            &wrong.display().to_string(),
            "--listen",
            &listen,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("IncorrectPassphraseException"));

    // A node started with both secrets in its environment (the cluster
    // trusts loopback: the password is handed over, not checked).
    const PASSPHRASE: &str = "correct horse battery staple";
    let log = dir.path().join("node.log");
    let mut cmd = Command::new(binary("tinfoild"));
    cmd.args(["serve", "--store-url", &url, "--listen", &listen])
        .env("TINFOIL_PASSPHRASE", PASSPHRASE)
        .env("PGPASSWORD", DB_SECRET)
        .stdin(Stdio::null());
    let node = tinfoil_e2e_tests::daemon::Daemon::spawn(cmd, log, &socket);
    let environ = std::fs::read(format!("/proc/{}/environ", node.pid())).unwrap();
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", node.pid())).unwrap();
    for needle in [
        b"PGPASSWORD=".as_slice(),
        DB_SECRET.as_bytes(),
        b"TINFOIL_PASSPHRASE=",
        PASSPHRASE.as_bytes(),
    ] {
        assert!(
            !environ.windows(needle.len()).any(|w| w == needle),
            "{} in the daemon's environment",
            String::from_utf8_lossy(needle)
        );
        assert!(!cmdline.windows(needle.len()).any(|w| w == needle));
    }
    let out = node.cli(&["create-key", "--output", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!node.log().contains(DB_SECRET));
    drop(node);
}

/// Runs `tinfoild init` on a new database of `cluster` with `params`
/// appended to its URL.
fn init_with(cluster: &Cluster, url_suffix: &str, pass: &str) -> Output {
    init_url(&format!("{}{url_suffix}", cluster.new_database()), pass)
}

/// Runs `tinfoild init --store-url URL` (light Argon2id).
fn init_url(url: &str, pass: &str) -> Output {
    let mut args = vec!["init", "--store-url", url, "--passphrase-file", pass];
    args.extend_from_slice(&KDF);
    tinfoild(&args, &[])
}

/// TLS to the database with libpq's sslmode, never accepting an unchecked
/// certificate: require without a root file refuses to start, with one it
/// refuses a server without TLS; once the server has a certificate
/// (CA-signed, for localhost and 127.0.0.1), verify-full with the right
/// root connects, with another CA's root or under a host name the
/// certificate does not name it refuses, saying why; verify-ca ignores the
/// name; require and prefer with a root file check the chain.
#[test]
fn sslmode_and_sslrootcert() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (dir, pass) = scratch();
    // The server's certificate, readable by the server's user (nobody
    // when the tests run as root: see test_cluster).
    let pki = dir.path().join("pki");
    let other = dir.path().join("other");
    for d in [&pki, &other] {
        std::fs::create_dir(d).unwrap();
        tinfoil_e2e_tests::pki::make_pki(d);
    }
    let root = |d: &Path| d.join("ca.pem").display().to_string();
    // require never means "any certificate": without a root file it
    // refuses to start; with one, against a server without TLS, it
    // refuses to connect.
    let out = init_with(&cluster, "?sslmode=require", &pass);
    refused(&out, "sslmode=require needs sslrootcert", DB_SECRET);
    let out = init_with(
        &cluster,
        &format!("?sslmode=require&sslrootcert={}", root(&pki)),
        &pass,
    );
    refused(&out, "server does not support TLS", DB_SECRET);
    let out = init_with(&cluster, "?sslmode=disable", &pass);
    assert!(out.status.success(), "{}", stderr(&out));
    // prefer (the default) without a root file: plain, never unchecked TLS.
    let out = init_with(&cluster, "?sslmode=prefer", &pass);
    assert!(out.status.success(), "{}", stderr(&out));

    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for (path, mode) in [
        (dir.path(), 0o755),
        (pki.as_path(), 0o755),
        (&pki.join("server.pem"), 0o644),
        (&pki.join("server.key"), 0o600),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        let nobody = Command::new("id").args(["-u", "nobody"]).output().unwrap();
        let nobody: u32 = String::from_utf8_lossy(&nobody.stdout)
            .trim()
            .parse()
            .unwrap();
        std::os::unix::fs::chown(pki.join("server.key"), Some(nobody), None).unwrap();
    }
    let admin_url = cluster.new_database();
    let mut admin = postgres::Client::connect(&admin_url, postgres::NoTls).unwrap();
    for setting in [
        format!("ssl_cert_file = '{}'", pki.join("server.pem").display()),
        format!("ssl_key_file = '{}'", pki.join("server.key").display()),
        "ssl = on".to_string(),
    ] {
        admin
            .batch_execute(&format!("ALTER SYSTEM SET {setting}"))
            .unwrap();
    }
    admin.batch_execute("SELECT pg_reload_conf()").unwrap();
    // The reload is asynchronous: wait until new connections see it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut check = postgres::Client::connect(&admin_url, postgres::NoTls).unwrap();
        let on: String = check.query_one("SHOW ssl", &[]).unwrap().get(0);
        if on == "on" {
            break;
        }
        assert!(Instant::now() < deadline, "ssl stayed off");
        std::thread::sleep(Duration::from_millis(50));
    }

    // The right root, the host the certificate names.
    let out = init_with(
        &cluster,
        &format!("?sslmode=verify-full&sslrootcert={}", root(&pki)),
        &pass,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // Another CA's root (of the same name: its signature does not check).
    let out = init_with(
        &cluster,
        &format!("?sslmode=verify-full&sslrootcert={}", root(&other)),
        &pass,
    );
    refused(&out, "invalid peer certificate", DB_SECRET);
    let out = init_with(
        &cluster,
        &format!("?sslmode=verify-ca&sslrootcert={}", root(&other)),
        &pass,
    );
    refused(&out, "invalid peer certificate", DB_SECRET);
    // A host name the certificate does not name (connecting to
    // 127.0.0.1 all the same): verify-full refuses, verify-ca does not.
    let port = admin_url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap()
        .to_string();
    let renamed = |mode: &str| {
        let url = cluster.new_database();
        let db = url.rsplit('/').next().unwrap().to_string();
        format!(
            "postgres://tinfoil@db.invalid:{port}/{db}?hostaddr=127.0.0.1&sslmode={mode}&sslrootcert={}",
            root(&pki)
        )
    };
    let url = renamed("verify-full");
    let out = init_url(&url, &pass);
    refused(
        &out,
        "certificate not valid for name \"db.invalid\"",
        DB_SECRET,
    );
    assert!(stderr(&out).contains("db.invalid"), "{}", stderr(&out));
    let url = renamed("verify-ca");
    let out = init_url(&url, &pass);
    assert!(out.status.success(), "{}", stderr(&out));
    // require and prefer with a root file check the chain (as verify-ca).
    for mode in ["require", "prefer"] {
        let out = init_with(
            &cluster,
            &format!("?sslmode={mode}&sslrootcert={}", root(&pki)),
            &pass,
        );
        assert!(out.status.success(), "{mode}: {}", stderr(&out));
        let out = init_with(
            &cluster,
            &format!("?sslmode={mode}&sslrootcert={}", root(&other)),
            &pass,
        );
        refused(&out, "invalid peer certificate", DB_SECRET);
    }
    // A missing root file is named.
    let out = init_with(
        &cluster,
        "?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        &pass,
    );
    refused(&out, "sslrootcert /nonexistent/ca.pem", DB_SECRET);

    // The nodes' connections are encrypted: a node serving with
    // verify-full shows in pg_stat_ssl.
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        cluster.new_database(),
        root(&pki)
    );
    let out = init_url(&url, &pass);
    assert!(out.status.success(), "{}", stderr(&out));
    let socket = dir.path().join("tls-node.sock");
    let mut cmd = Command::new(binary("tinfoild"));
    cmd.args(["serve", "--store-url", &url, "--passphrase-file", &pass])
        .arg("--listen")
        .arg(format!("unix:{}", socket.display()))
        .env_remove("TINFOIL_PASSPHRASE")
        .env_remove("PGPASSWORD")
        .stdin(Stdio::null());
    let node =
        tinfoil_e2e_tests::daemon::Daemon::spawn(cmd, dir.path().join("tls-node.log"), &socket);
    let out = node.cli(&["create-key", "--output", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let db = url.split('?').next().unwrap().rsplit('/').next().unwrap();
    let plain: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.datname = $1 AND NOT s.ssl",
            &[&db],
        )
        .unwrap()
        .get(0);
    let encrypted: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.datname = $1 AND s.ssl",
            &[&db],
        )
        .unwrap()
        .get(0);
    assert_eq!(plain, 0, "a node connection without TLS");
    assert!(encrypted >= 2, "the pool and the change feed: {encrypted}");
    drop(node);
}
