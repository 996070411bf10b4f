//! `tinfoild serve --kms-listen` with TLS (an openssl-made certificate),
//! called by curl's own SigV4 signer (`--aws-sigv4`, an implementation
//! independent of ours and of the AWS SDKs) with an access key made by
//! `tinfoil create-access-key`; plain HTTP on a non-loopback address is
//! refused at start-up.

use std::path::Path;
use std::process::{Command, Output};

use tinfoil_e2e_tests::daemon::{stderr, stdout, Daemon, Store};
use tinfoil_e2e_tests::kms::{create_access_key, free_port, AccessKey};
use tinfoil_e2e_tests::pki::make_pki;

/// `curl` POSTing a KMS call, SigV4-signed by curl with `key` (None: unsigned).
fn curl(url: &str, ca: &Path, key: Option<&AccessKey>, op: &str, body: &str) -> Output {
    curl_with(url, ca, &[], key, op, body)
}

/// [`curl`] with extra curl arguments (a client certificate).
fn curl_with(
    url: &str,
    ca: &Path,
    extra: &[&str],
    key: Option<&AccessKey>,
    op: &str,
    body: &str,
) -> Output {
    let mut cmd = Command::new("curl");
    cmd.args(extra);
    cmd.args(["-sS", "--max-time", "60", "-o", "-", "-w", "\n%{http_code}"])
        .arg("--cacert")
        .arg(ca)
        .args(["-H", "Content-Type: application/x-amz-json-1.1"])
        .args(["-H", &format!("X-Amz-Target: TrentService.{op}")])
        .args(["--data-binary", body]);
    if let Some(key) = key {
        cmd.args(["--aws-sigv4", "aws:amz:us-east-1:kms"])
            .args(["--user", &format!("{}:{}", key.id, key.secret)]);
    }
    cmd.arg(url).output().expect("run curl")
}

/// The HTTP status and JSON body curl printed.
fn answer(out: &Output) -> (u16, serde_json::Value) {
    assert!(out.status.success(), "curl failed: {}", stderr(out));
    let text = stdout(out);
    let (body, status) = text.rsplit_once('\n').expect("status line");
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (status.trim().parse().expect("status"), json)
}

#[test]
fn tls_endpoint_serves_curl_signed_requests() {
    let store = Store::init();
    let pki = store.dir.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    make_pki(&pki);
    let port = free_port();
    let listen = format!("tcp:127.0.0.1:{port}");
    let cert = pki.join("server.pem");
    let key = pki.join("server.key");
    let daemon = Daemon::start(
        &store,
        &[
            "--kms-listen",
            &listen,
            "--tls-cert-file",
            cert.to_str().unwrap(),
            "--tls-key-file",
            key.to_str().unwrap(),
        ],
    );
    let admin = create_access_key(&daemon, "root");
    let url = format!("https://127.0.0.1:{port}/");
    let ca = pki.join("ca.pem");

    let (status, created) = answer(&curl(
        &url,
        &ca,
        Some(&admin),
        "CreateKey",
        r#"{"Description":"tls"}"#,
    ));
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["KeyMetadata"]["Description"], "tls");
    assert_eq!(created["KeyMetadata"]["Enabled"], true);
    let key_id = created["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, encrypted) = answer(&curl(
        &url,
        &ca,
        Some(&admin),
        "Encrypt",
        &format!(
            r#"{{"KeyId":"{key_id}","Plaintext":"aGVsbG8=","EncryptionContext":{{"a":"b"}}}}"#
        ),
    ));
    assert_eq!(status, 200, "{encrypted}");
    let blob = encrypted["CiphertextBlob"].as_str().unwrap();
    let (status, decrypted) = answer(&curl(
        &url,
        &ca,
        Some(&admin),
        "Decrypt",
        &format!(r#"{{"CiphertextBlob":"{blob}","EncryptionContext":{{"a":"b"}}}}"#),
    ));
    assert_eq!(status, 200, "{decrypted}");
    assert_eq!(decrypted["Plaintext"], "aGVsbG8=");
    assert_eq!(
        decrypted["KeyId"],
        format!("arn:aws:kms:us-east-1:111122223333:key/{key_id}")
    );

    // Unsigned over TLS: the AWS error.
    let (status, refused) = answer(&curl(&url, &ca, None, "ListKeys", "{}"));
    assert_eq!(
        (status, refused["__type"].as_str()),
        (400, Some("MissingAuthenticationTokenException"))
    );

    // Plain HTTP to the TLS port gets no KMS answer.
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .unwrap();
    assert_ne!(stdout(&out).trim(), "200");

    // The daemon still serves.
    let (status, _) = answer(&curl(&url, &ca, Some(&admin), "ListKeys", "{}"));
    assert_eq!(status, 200);
    assert!(daemon.stop().success());
}

#[test]
fn plain_http_only_on_loopback_with_the_flag() {
    let store = Store::init();
    for (listen, flag) in [("tcp:127.0.0.1:1", false), ("tcp:0.0.0.0:1", true)] {
        let mut cmd = store.serve_command();
        cmd.args(["--kms-listen", listen]);
        if flag {
            cmd.arg("--insecure-loopback");
        }
        let out = cmd.output().expect("run tinfoild");
        assert!(!out.status.success(), "{listen} without TLS was accepted");
        assert!(
            stderr(&out).contains("kms_listen"),
            "the error names the setting: {}",
            stderr(&out)
        );
    }
}

#[test]
fn tls_client_ca_requires_a_client_certificate() {
    let store = Store::init();
    let pki = store.dir.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    make_pki(&pki);
    let port = free_port();
    let listen = format!("tcp:127.0.0.1:{port}");
    let file = |name: &str| pki.join(name).to_str().unwrap().to_string();
    let daemon = Daemon::start(
        &store,
        &[
            "--kms-listen",
            &listen,
            "--tls-cert-file",
            &file("server.pem"),
            "--tls-key-file",
            &file("server.key"),
            "--tls-client-ca-file",
            &file("ca.pem"),
        ],
    );
    let admin = create_access_key(&daemon, "root");
    let url = format!("https://127.0.0.1:{port}/");
    let ca = pki.join("ca.pem");
    // Without a client certificate the handshake fails: no answer at all.
    let out = curl(&url, &ca, Some(&admin), "ListKeys", "{}");
    assert!(
        !out.status.success(),
        "served without a client certificate: {}",
        stdout(&out)
    );
    // With one it is served.
    let (cert, key) = (file("client.pem"), file("client.key"));
    let out = curl_with(
        &url,
        &ca,
        &["--cert", &cert, "--key", &key],
        Some(&admin),
        "ListKeys",
        "{}",
    );
    let (status, body) = answer(&out);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Truncated"], false);
    assert!(daemon.stop().success());
}
