//! TLS servers and clients whose RSA key and certificate live on the
//! token (issue 12, tool tests): an RSA pair from `pkcs11-tool
//! --keypairgen` with default flags, a self-signed certificate made with
//! it through the OpenSSL pkcs11 engine and written to the token, then
//!
//! - `openssl s_server` and `s_client` through pkcs11-provider (the
//!   OpenSSL 3 provider, Debian 12 backports; scripts/test installs it),
//!   key AND certificate by pkcs11: URI: TLS 1.2 with RSA key exchange
//!   (the token decrypts the premaster secret) and TLS 1.3 with RSA-PSS;
//!   `openssl pkeyutl -decrypt` by URI gets back what `pkeyutl -encrypt`
//!   made with the token's public key;
//! - `openssl s_server` through the pkcs11 engine (key by pkcs11: URI) and
//!   `s_client`: TLS 1.3 with RSA-PSS and TLS 1.2 with ECDHE-RSA;
//! - gnutls-serv and gnutls-cli, key AND certificate by pkcs11: URI on
//!   both sides (the client authenticates with the token's pair too): TLS
//!   1.2 with RSA key exchange (the server decrypts the premaster secret
//!   on the token) and TLS 1.3 with RSA-PSS.
//!
//! Every case runs on our module (embedded backend; the server and the
//! client are two processes on one store) and on SoftHSM2, the control;
//! the provider cases also on the daemon backend (a real tinfoild).
//!
//! Two limits of the engine (libp11 0.4.12), the same with SoftHSM and
//! checked here: it registers no pkcs11: OSSL_STORE scheme, so OpenSSL
//! 3.0's `s_server -cert pkcs11:...` fails with "unregistered scheme"
//! (and `-certform` takes only PEM or DER), hence its certificate is
//! exported from the token by URI with `p11tool --export`; and OpenSSL 3.0
//! cannot do TLS 1.2 RSA key exchange with an engine key (its legacy RSA
//! method refuses the TLS padding mode, "illegal or unsupported padding
//! mode"). The provider has neither limit.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{tinfoil_path, Which};

const ENGINE: &str = "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so";
/// pkcs11-provider (Debian package pkcs11-provider, bookworm-backports).
const PROVIDER: &str = "/usr/lib/x86_64-linux-gnu/ossl-modules/pkcs11.so";
const PIN: &str = "1234";
const KEY: &str = "pkcs11:token=tls;object=tlskey;type=private;pin-value=1234";
const CERT: &str = "pkcs11:token=tls;object=tlskey;type=cert";

/// A token "tls" with the pair and its certificate, and the environment
/// that points the tools at the module.
struct Fixture {
    dir: tempfile::TempDir,
    module: PathBuf,
    env: Vec<(String, PathBuf)>,
}

impl Fixture {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A tool run to its end, under a deadline: a hung handshake fails the
    /// test instead of blocking it.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new("timeout");
        c.arg("60").arg(program);
        self.environment(&mut c);
        c
    }

    /// A server, stopped by the test (by its own PID).
    fn server(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        self.environment(&mut c);
        c
    }

    fn environment(&self, c: &mut Command) {
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.env("OPENSSL_CONF", self.path("openssl.cnf"));
        c.current_dir(self.dir.path());
    }

    fn tool(&self) -> Command {
        let mut c = self.command("pkcs11-tool");
        c.arg("--module").arg(&self.module);
        c
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[track_caller]
fn ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .expect("the tool is installed (see scripts/test)");
    let all = text(&out);
    assert!(out.status.success(), "{cmd:?} failed:\n{all}");
    all
}

fn fixture(which: Which) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (module, env) = match which {
        Which::SoftHsm => {
            std::fs::create_dir(d.join("tokens")).unwrap();
            let conf = d.join("softhsm2.conf");
            std::fs::write(
                &conf,
                format!(
                    "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                    d.join("tokens").display()
                ),
            )
            .unwrap();
            (
                PathBuf::from(common::SOFTHSM),
                vec![("SOFTHSM2_CONF".to_string(), conf)],
            )
        }
        // The caller holds common::exclusive() (one daemon at a time).
        Which::Daemon => {
            let endpoint = common::daemon::start(d);
            std::fs::write(
                d.join("tinfoil.toml"),
                format!("backend = \"daemon\"\nendpoint = \"{endpoint}\"\n"),
            )
            .unwrap();
            (
                tinfoil_path(),
                vec![("TINFOIL_PKCS11_CONFIG".to_string(), d.join("tinfoil.toml"))],
            )
        }
        _ => {
            {
                let _g = common::exclusive();
                common::write_embedded_config(d);
            }
            (
                tinfoil_path(),
                vec![("TINFOIL_PKCS11_CONFIG".to_string(), d.join("tinfoil.toml"))],
            )
        }
    };
    std::fs::write(
        d.join("openssl.cnf"),
        format!(
            "openssl_conf = openssl_init\n[openssl_init]\nengines = engine_section\n\
             [engine_section]\npkcs11 = pkcs11_section\n[pkcs11_section]\n\
             engine_id = pkcs11\ndynamic_path = {ENGINE}\nMODULE_PATH = {}\ninit = 0\n",
            module.display()
        ),
    )
    .unwrap();
    // The same module through pkcs11-provider (OPENSSL_CONF=provider.cnf).
    std::fs::write(
        d.join("provider.cnf"),
        format!(
            "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_section\n\
             [provider_section]\ndefault = default_section\npkcs11 = pkcs11_section\n\
             [default_section]\nactivate = 1\n[pkcs11_section]\nmodule = {PROVIDER}\n\
             pkcs11-module-path = {}\nactivate = 1\n",
            module.display()
        ),
    )
    .unwrap();
    let f = Fixture { dir, module, env };
    ok(f.tool()
        .args(["--init-token", "--label", "tls", "--so-pin", "12345678"]));
    ok(f.tool().args([
        "--token-label",
        "tls",
        "--login",
        "--login-type",
        "so",
        "--so-pin",
        "12345678",
        "--init-pin",
        "--pin",
        PIN,
    ]));
    // Default flags: no --usage-* option.
    ok(f.tool().args([
        "--token-label",
        "tls",
        "--login",
        "--pin",
        PIN,
        "--keypairgen",
        "--key-type",
        "rsa:2048",
        "--label",
        "tlskey",
        "--id",
        "01",
    ]));
    ok(f.command("openssl").args([
        "req",
        "-new",
        "-x509",
        "-engine",
        "pkcs11",
        "-keyform",
        "engine",
        "-key",
        KEY,
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost",
        "-days",
        "2",
        "-out",
        "cert.pem",
    ]));
    ok(f.command("openssl").args([
        "x509", "-in", "cert.pem", "-outform", "der", "-out", "cert.der",
    ]));
    ok(f.tool().args([
        "--token-label",
        "tls",
        "--login",
        "--pin",
        PIN,
        "--write-object",
        "cert.der",
        "--type",
        "cert",
        "--id",
        "01",
        "--label",
        "tlskey",
    ]));
    // The certificate OpenSSL's server gets: taken from the token by URI.
    let exported = ok(f
        .command("p11tool")
        .arg("--provider")
        .arg(&f.module)
        .args(["--export", CERT]));
    let pem_start = exported
        .find("-----BEGIN CERTIFICATE-----")
        .expect(&exported);
    std::fs::write(f.path("from-token.pem"), &exported[pem_start..]).unwrap();
    let der = |name: &str| {
        ok(f.command("openssl")
            .args(["x509", "-in", name, "-outform", "der", "-out"])
            .arg(format!("{name}.der")));
        std::fs::read(f.path(&format!("{name}.der"))).unwrap()
    };
    assert_eq!(
        der("from-token.pem"),
        der("cert.pem"),
        "the token's certificate"
    );
    f
}

/// A server process, killed (by its own PID) when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Everything the server printed (after it was stopped).
    fn output(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut all = String::new();
        if let Some(out) = self.child.stdout.take() {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                all.push_str(&line);
                all.push('\n');
            }
        }
        if let Some(err) = self.child.stderr.take() {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                all.push_str(&line);
                all.push('\n');
            }
        }
        all
    }
}

/// `openssl s_server` on a free port with the token's key (engine, by
/// URI) and the certificate taken from the token; one connection.
fn s_server(f: &Fixture, version: &str) -> Server {
    let mut server = f.server("openssl");
    server.args([
        "s_server",
        "-engine",
        "pkcs11",
        "-keyform",
        "engine",
        "-key",
        KEY,
        "-cert",
        "from-token.pem",
    ]);
    start_s_server(server, version)
}

/// `openssl s_server` through pkcs11-provider: key AND certificate by
/// pkcs11: URI (OSSL_STORE); one connection.
fn s_server_provider(f: &Fixture, version: &str) -> Server {
    let mut server = f.server("openssl");
    server
        .env("OPENSSL_CONF", f.path("provider.cnf"))
        .args(["s_server", "-key", KEY, "-cert", CERT]);
    start_s_server(server, version)
}

fn start_s_server(mut server: Command, version: &str) -> Server {
    let mut child = server
        .args(["-accept", "0", "-naccept", "1", version])
        // Kept open: s_server stops at the end of its standard input.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    let port = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(rest) = line.strip_prefix("ACCEPT ") {
                    break rest.rsplit(':').next().unwrap().parse().unwrap();
                }
                seen.push_str(&line);
                seen.push('\n');
            }
            _ => {
                let mut err = String::new();
                if let Some(e) = child.stderr.take() {
                    for l in BufReader::new(e).lines().map_while(Result::ok) {
                        err.push_str(&l);
                        err.push('\n');
                    }
                }
                panic!("s_server did not start:\n{seen}{err}");
            }
        }
    };
    // The rest of its output is read when it is stopped.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    Server { child, port }
}

fn s_client(f: &Fixture, port: u16, args: &[&str]) -> (bool, String) {
    let out = f
        .command("openssl")
        .args(["s_client", "-connect"])
        .arg(format!("localhost:{port}"))
        .args([
            "-CAfile",
            "cert.pem",
            "-verify_return_error",
            "-servername",
            "localhost",
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (out.status.success(), text(&out))
}

fn openssl_engine_tls13_rsa_pss(which: Which) {
    let f = fixture(which);
    let server = s_server(&f, "-tls1_3");
    let (done, client) = s_client(
        &f,
        server.port,
        &["-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256"],
    );
    let server = server.output();
    assert!(done, "{client}\nserver:\n{server}");
    assert!(client.contains("New, TLSv1.3, Cipher is"), "{client}");
    assert!(client.contains("Peer signature type: RSA-PSS"), "{client}");
    assert!(client.contains("Verify return code: 0 (ok)"), "{client}");
}

fn openssl_engine_tls12(which: Which) {
    let f = fixture(which);
    // ECDHE-RSA: the token signs the key exchange (PKCS#1 v1.5).
    let server = s_server(&f, "-tls1_2");
    let (done, client) = s_client(
        &f,
        server.port,
        &["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
    );
    let server = server.output();
    assert!(done, "{client}\nserver:\n{server}");
    assert!(
        client.contains("New, TLSv1.2, Cipher is ECDHE-RSA-AES128-GCM-SHA256"),
        "{client}"
    );
    assert!(client.contains("Verify return code: 0 (ok)"), "{client}");
    // RSA key exchange: OpenSSL 3.0 refuses it for any engine key, before
    // the token is asked (SoftHSM alike); GnuTLS does it below.
    let server = s_server(&f, "-tls1_2");
    let (done, client) = s_client(
        &f,
        server.port,
        &["-tls1_2", "-cipher", "AES128-GCM-SHA256"],
    );
    let server = server.output();
    if !done {
        assert!(
            server.contains("illegal or unsupported padding mode"),
            "{client}\nserver:\n{server}"
        );
    }
}

/// The provider is installed (scripts/test does it).
fn provider_installed() {
    assert!(
        std::path::Path::new(PROVIDER).exists(),
        "{PROVIDER} is missing: install pkcs11-provider from bookworm-backports (scripts/test does)"
    );
}

/// pkcs11-provider: TLS 1.2 with RSA key exchange and TLS 1.3 with
/// RSA-PSS, the server's key and certificate both by pkcs11: URI.
fn openssl_provider_key_and_certificate_by_uri(which: Which) {
    provider_installed();
    let f = fixture(which);
    for (version, args, expect) in [
        (
            "-tls1_2",
            ["-tls1_2", "-cipher", "AES128-GCM-SHA256"],
            "New, TLSv1.2, Cipher is AES128-GCM-SHA256",
        ),
        (
            "-tls1_3",
            ["-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256"],
            "New, TLSv1.3, Cipher is",
        ),
    ] {
        let server = s_server_provider(&f, version);
        let (done, client) = s_client(&f, server.port, &args);
        let server = server.output();
        assert!(done, "{client}\nserver:\n{server}");
        assert!(client.contains(expect), "{client}");
        assert!(client.contains("Verify return code: 0 (ok)"), "{client}");
        if version == "-tls1_3" {
            assert!(client.contains("Peer signature type: RSA-PSS"), "{client}");
        }
    }
}

/// pkcs11-provider: the default-flags pair decrypts what `openssl pkeyutl
/// -encrypt` made with its public key (PKCS#1 v1.5 and OAEP), by URI.
fn openssl_provider_pkeyutl_decrypt(which: Which) {
    provider_installed();
    let f = fixture(which);
    std::fs::write(f.path("secret.txt"), b"a premaster-sized secret").unwrap();
    ok(f.command("openssl").args([
        "x509", "-in", "cert.pem", "-pubkey", "-noout", "-out", "pub.pem",
    ]));
    // OAEP's digests named on both sides: pkcs11-provider 1.0 refuses
    // OAEP without them ("illegal or unsupported padding mode", SoftHSM
    // alike). SoftHSM 2.6.1 does OAEP with SHA-1 only.
    let oaep = |md: &'static str| -> Vec<String> {
        vec![
            "rsa_padding_mode:oaep".into(),
            format!("rsa_oaep_md:{md}"),
            format!("rsa_mgf1_md:{md}"),
        ]
    };
    let mut cases = vec![
        ("pkcs1", vec!["rsa_padding_mode:pkcs1".to_string()]),
        ("oaep-sha1", oaep("sha1")),
    ];
    if which != Which::SoftHsm {
        cases.push(("oaep-sha256", oaep("sha256")));
    }
    for (name, options) in cases {
        let encrypted = format!("secret.{name}");
        let decrypted = format!("secret.{name}.out");
        let pkeyopts: Vec<&str> = options
            .iter()
            .flat_map(|o| ["-pkeyopt", o.as_str()])
            .collect();
        ok(f.command("openssl")
            .args(["pkeyutl", "-encrypt", "-pubin", "-inkey", "pub.pem"])
            .args(&pkeyopts)
            .args(["-in", "secret.txt", "-out", &encrypted]));
        // SoftHSM 2.6.1 (the control) crashes in C_CloseSession at exit
        // under the provider (after the output is written): its status is
        // not checked, ours must be 0.
        let out = f
            .command("openssl")
            .env("OPENSSL_CONF", f.path("provider.cnf"))
            .args(["pkeyutl", "-decrypt", "-inkey", KEY])
            .args(&pkeyopts)
            .args(["-in", &encrypted, "-out", &decrypted])
            .output()
            .unwrap();
        if which != Which::SoftHsm {
            assert!(out.status.success(), "{}", text(&out));
        }
        assert_eq!(
            std::fs::read(f.path(&decrypted)).unwrap_or_default(),
            b"a premaster-sized secret",
            "{name}: {}",
            text(&out)
        );
    }
}

/// The engine cannot hand `s_server` a certificate by URI: libp11 0.4.12
/// registers no pkcs11: store scheme (the same with SoftHSM: OpenSSL
/// refuses before any module call).
fn openssl_engine_certificate_by_uri_refused(which: Which) {
    let f = fixture(which);
    let out = f
        .command("openssl")
        .args([
            "s_server", "-engine", "pkcs11", "-keyform", "engine", "-key", KEY, "-cert", CERT,
            "-accept", "0", "-naccept", "1",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("unregistered scheme:"), "{all}");
    assert!(all.contains("scheme=pkcs11"), "{all}");
}

/// A free TCP port (bound and let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// gnutls-serv with key and certificate by URI, asking the client for a
/// certificate signed by (here: equal to) the token's.
fn gnutls_serv(f: &Fixture, priority: &str) -> Server {
    // The free port may be taken meanwhile (by a test running beside this
    // one): a server that exits at once gets another.
    let mut failures = String::new();
    for _ in 0..3 {
        match try_gnutls_serv(f, priority) {
            Ok(server) => return server,
            Err(why) => failures.push_str(&why),
        }
    }
    panic!("gnutls-serv did not start:\n{failures}");
}

fn try_gnutls_serv(f: &Fixture, priority: &str) -> Result<Server, String> {
    let port = free_port();
    let child = f
        .server("gnutls-serv")
        .arg("--provider")
        .arg(&f.module)
        .args([
            "--x509keyfile",
            KEY,
            "--x509certfile",
            CERT,
            "--x509cafile",
            "cert.pem",
            "--require-client-cert",
            "--priority",
            priority,
            "-p",
        ])
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server { child, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = server.child.try_wait().unwrap() {
            return Err(format!("exited with {status}:\n{}", server.output()));
        }
        assert!(Instant::now() < deadline, "gnutls-serv did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(server)
}

fn gnutls_cli(f: &Fixture, port: u16, priority: &str) -> String {
    ok(f.command("gnutls-cli")
        .arg("--provider")
        .arg(&f.module)
        .args([
            "--x509cafile",
            "cert.pem",
            "--x509keyfile",
            KEY,
            "--x509certfile",
            CERT,
            "--priority",
            priority,
            "-p",
        ])
        .arg(port.to_string())
        .arg("localhost")
        .stdin(Stdio::null()))
}

fn gnutls_key_and_certificate_by_uri(which: Which) {
    let f = fixture(which);
    for (priority, description) in [
        (
            "NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+RSA",
            "(TLS1.2-X.509)-(RSA)-",
        ),
        (
            "NORMAL:-VERS-ALL:+VERS-TLS1.3:-SIGN-ALL:+SIGN-RSA-PSS-RSAE-SHA256",
            "(TLS1.3-X.509)-(ECDHE-SECP256R1)-(RSA-PSS-RSAE-SHA256)-",
        ),
    ] {
        let server = gnutls_serv(&f, priority);
        let client = gnutls_cli(&f, server.port, priority);
        let server = server.output();
        assert!(
            client.contains("Handshake was completed"),
            "{client}\n{server}"
        );
        assert!(client.contains(description), "{priority}: {client}");
        // The server saw the client's certificate (from the token).
        assert!(
            server.contains("CN=localhost") || client.contains("Certificate type: X.509"),
            "{server}"
        );
    }
}

matrix!([tinfoil_embedded => Embedded, softhsm_control => SoftHsm];
    openssl_engine_tls13_rsa_pss,
    openssl_engine_tls12,
    gnutls_key_and_certificate_by_uri,
    openssl_provider_key_and_certificate_by_uri,
    openssl_provider_pkeyutl_decrypt,
    openssl_engine_certificate_by_uri_refused,
);

/// The provider cases on the daemon backend (a real tinfoild; one at a
/// time, so under the tests' lock).
#[test]
fn openssl_provider_on_the_daemon_backend() {
    struct StopDaemon;
    impl Drop for StopDaemon {
        fn drop(&mut self) {
            common::daemon::stop();
        }
    }
    let _g = common::exclusive();
    let _stop = StopDaemon;
    openssl_provider_key_and_certificate_by_uri(Which::Daemon);
    openssl_provider_pkeyutl_decrypt(Which::Daemon);
}
