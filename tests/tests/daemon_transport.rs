//! How tinfoild listens: `--dev` on a fresh machine, socket permissions,
//! TLS on TCP (with an openssl-made certificate), plain TCP only on
//! loopback with --insecure-loopback, and the TOML config file.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use tinfoil_e2e_tests::daemon::{binary, cli, eventually, json, signal, stderr, KillOnDrop, Store};
use tinfoil_e2e_tests::pki::make_pki;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn dev_mode_prints_a_ready_to_paste_line_that_works() {
    let runtime = tempfile::tempdir().unwrap();
    let mut child = KillOnDrop(
        Command::new(binary("tinfoild"))
            .arg("--dev")
            .env("XDG_RUNTIME_DIR", runtime.path())
            .env_remove("TINFOIL_PASSPHRASE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tinfoild --dev"),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut store_dir = None;
    let mut command_line = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("tinfoild --dev: throwaway store in ") {
            store_dir = rest.split(' ').next().map(std::path::PathBuf::from);
        }
        if let Some(rest) = line.strip_prefix("try:") {
            command_line = Some(rest.trim().to_string());
            break;
        }
    }
    let command_line = command_line.expect("a ready-to-paste line");
    let store_dir = store_dir.expect("the store's directory");
    let words: Vec<&str> = command_line.split_whitespace().collect();
    assert_eq!(words[0], "tinfoil");
    assert_eq!(words.last(), Some(&"list-keys"));
    let endpoint = words[2].to_string();
    let socket = std::path::PathBuf::from(endpoint.strip_prefix("unix:").unwrap());
    assert!(socket.starts_with(runtime.path()), "{}", socket.display());
    assert!(eventually(Duration::from_secs(60), || socket.exists()));

    // The printed line works as printed.
    let run = || {
        Command::new(binary("tinfoil"))
            .args(&words[1..])
            .output()
            .unwrap()
    };
    assert!(eventually(Duration::from_secs(30), || run()
        .status
        .success()));
    // The socket is 0600 in a 0700 directory.
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(socket.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    // Without --endpoint, the CLI finds the dev socket.
    let out = Command::new(binary("tinfoil"))
        .args(["create-key", "--description", "dev"])
        .env("XDG_RUNTIME_DIR", runtime.path())
        .env_remove("TINFOIL_ENDPOINT")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    signal(child.0.id(), "TERM");
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!socket.exists(), "socket left behind");
    assert!(!store_dir.exists(), "throwaway store left behind");
}

#[test]
fn tls_on_tcp_with_openssl_certificates_and_client_auth() {
    let store = Store::init();
    let dir = store.dir.path();
    make_pki(dir);
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let port = free_port();
    let listen = format!("tcp:127.0.0.1:{port}");
    // The client certificate's SHA-256, as openssl prints it (AB:CD:...).
    let printed = std::process::Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-fingerprint",
            "-sha256",
            "-in",
            &path("client.pem"),
        ])
        .output()
        .unwrap();
    let printed = String::from_utf8(printed.stdout).unwrap();
    let fingerprint = printed
        .trim()
        .split('=')
        .nth(1)
        .expect("a fingerprint")
        .to_string();
    let serve = |admin: Option<&str>| {
        let mut cmd = store.serve_command();
        cmd.args(["--listen", &listen])
            .args(["--tls-cert-file", &path("server.pem")])
            .args(["--tls-key-file", &path("server.key")])
            .args(["--tls-client-ca-file", &path("ca.pem")])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(fp) = admin {
            cmd.args(["--tls-admin-cert-fingerprints", fp]);
        }
        KillOnDrop(cmd.spawn().unwrap())
    };
    let endpoint = format!("https://localhost:{port}");
    let (ca, cert, key) = (path("ca.pem"), path("client.pem"), path("client.key"));
    let with_client_cert = ["--ca-file", &ca, "--cert-file", &cert, "--key-file", &key];
    // A certificate the CA signed but bound to no one and not listed as an
    // administrator's is refused, and told how to fix it.
    let mut child = serve(None);
    let refused = eventually(Duration::from_secs(60), || {
        let mut args = with_client_cert.to_vec();
        args.push("list-keys");
        let out = cli(&endpoint, &args, &[]);
        stderr(&out).contains("(AccessDeniedException)")
    });
    assert!(
        refused,
        "an unbound client certificate was not refused on {endpoint}"
    );
    signal(child.0.id(), "TERM");
    assert!(child.0.wait().unwrap().success());
    // Listed as an administrator's, it may do everything.
    let mut child = serve(Some(&fingerprint));
    let ok = eventually(Duration::from_secs(60), || {
        let mut args = with_client_cert.to_vec();
        args.push("list-keys");
        cli(&endpoint, &args, &[]).status.success()
    });
    assert!(ok, "no TLS answer on {endpoint}");
    let mut args = with_client_cert.to_vec();
    args.extend(["create-key", "--output", "json"]);
    let created = json(&cli(&endpoint, &args, &[]));
    assert_eq!(created["KeyMetadata"]["KeyState"], "Enabled");
    // Without a client certificate the server refuses the call.
    let out = cli(&endpoint, &["--ca-file", &ca, "list-keys"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // Without the CA the server's certificate is not trusted.
    let out = cli(
        &endpoint,
        &["--cert-file", &cert, "--key-file", &key, "list-keys"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    // Plain http to the TLS port does not work either.
    let out = cli(&format!("http://127.0.0.1:{port}"), &["list-keys"], &[]);
    assert_eq!(out.status.code(), Some(1));
    signal(child.0.id(), "TERM");
    assert!(child.0.wait().unwrap().success());
}

#[test]
fn plain_tcp_only_on_loopback_with_the_explicit_flag() {
    let store = Store::init();
    let port = free_port();
    // Without --insecure-loopback: refused.
    let out = store
        .serve_command()
        .args(["--listen", &format!("tcp:127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("needs TLS"), "{}", stderr(&out));
    // On a non-loopback address: refused even with the flag.
    let out = store
        .serve_command()
        .args([
            "--listen",
            &format!("tcp:0.0.0.0:{port}"),
            "--insecure-loopback",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // On loopback with the flag: served.
    let mut child = KillOnDrop(
        store
            .serve_command()
            .args([
                "--listen",
                &format!("tcp:127.0.0.1:{port}"),
                "--insecure-loopback",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    assert!(eventually(Duration::from_secs(60), || cli(
        &endpoint,
        &["list-keys"],
        &[]
    )
    .status
    .success()));
    // The CLI refuses plain http to a non-loopback host.
    let out = cli(&format!("http://example.com:{port}"), &["list-keys"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("bad endpoint"), "{}", stderr(&out));
    signal(child.0.id(), "INT");
    assert!(child.0.wait().unwrap().success());
}

#[test]
fn config_file_settings_apply_and_flags_override_them() {
    let store = Store::init();
    let config = store.dir.path().join("tinfoild.toml");
    let socket = store.dir.path().join("from-config.sock");
    std::fs::write(
        &config,
        format!(
            "listen = \"unix:{}\"\nmax_message_bytes = 2048\nlog_level = \"debug\"\n",
            socket.display()
        ),
    )
    .unwrap();
    let mut child = KillOnDrop(
        store
            .serve_command()
            .arg("--config")
            .arg(&config)
            .args(["--max-message-bytes", "4096"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let endpoint = format!("unix:{}", socket.display());
    assert!(eventually(Duration::from_secs(60), || cli(
        &endpoint,
        &["list-keys"],
        &[]
    )
    .status
    .success()));
    let file = store.dir.path().join("3k");
    std::fs::write(&file, vec![b'x'; 3000]).unwrap();
    let key = json(&cli(&endpoint, &["create-key", "--output", "json"], &[]))["KeyMetadata"]
        ["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    // 3000 bytes fit the flag's 4096-byte limit (the file said 2048).
    let out = cli(
        &endpoint,
        &[
            "encrypt",
            "--key-id",
            &key,
            "--plaintext-file",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let big = store.dir.path().join("5k");
    std::fs::write(&big, vec![b'x'; 5000]).unwrap();
    let out = cli(
        &endpoint,
        &[
            "encrypt",
            "--key-id",
            &key,
            "--plaintext-file",
            big.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("(LimitExceededException)"),
        "{}",
        stderr(&out)
    );
    signal(child.0.id(), "TERM");
    assert!(child.0.wait().unwrap().success());

    // An unknown setting is refused by name.
    std::fs::write(&config, "max_inflight = 3\n").unwrap();
    let out = store
        .serve_command()
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("max_inflight"), "{}", stderr(&out));
}
