//! Shared by the kms_protocol* tests: a `tinfoild --dev` with its KMS
//! endpoint and printed root access key, SigV4 signing by the `aws-sigv4`
//! crate, and a raw HTTP/1.1 client for requests no SDK would send.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use tempfile::TempDir;
use tinfoil_e2e_tests::daemon::{binary, signal};

/// The region `tinfoild --dev` serves.
pub const REGION: &str = "us-east-1";

/// A running `tinfoild --dev`: stopped with SIGTERM on drop (so it deletes
/// its throwaway store, which lives under this test's temporary directory).
pub struct DevDaemon {
    child: Child,
    /// The KMS endpoint's address.
    pub addr: SocketAddr,
    /// The root access key id it printed.
    pub access_key_id: String,
    /// Its secret.
    pub secret: String,
    /// Holds the socket, the daemon's TMPDIR and its log.
    pub dir: TempDir,
}

impl DevDaemon {
    /// Starts `tinfoild --dev` and reads its export lines.
    pub fn start() -> DevDaemon {
        let dir = tempfile::Builder::new()
            .prefix("tinfoil-kms-")
            .tempdir()
            .expect("tempdir");
        let log = std::fs::File::create(dir.path().join("daemon.log")).expect("log");
        let mut child = Command::new(binary("tinfoild"))
            .arg("--dev")
            .arg("--listen")
            .arg(format!("unix:{}", dir.path().join("s.sock").display()))
            .env("TMPDIR", dir.path())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn tinfoild --dev");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let done = line.starts_with("stop with");
                lines.push(line);
                if done {
                    let _ = tx.send(lines.clone());
                }
            }
        });
        let lines = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(lines) => lines,
            Err(_) => {
                let _ = child.kill();
                let log =
                    std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();
                panic!("tinfoild --dev printed no export lines:\n{log}");
            }
        };
        let value = |name: &str| -> String {
            let prefix = format!("export {name}=");
            lines
                .iter()
                .find_map(|l| l.strip_prefix(&prefix))
                .unwrap_or_else(|| panic!("no {name} line in {lines:?}"))
                .to_string()
        };
        let names: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split('=').next())
            .collect();
        assert_eq!(
            names,
            [
                "AWS_ENDPOINT_URL_KMS",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_REGION",
                "AWS_DEFAULT_REGION"
            ],
            "the export lines: {lines:?}"
        );
        assert_eq!(value("AWS_REGION"), REGION);
        assert_eq!(value("AWS_DEFAULT_REGION"), REGION);
        let url = value("AWS_ENDPOINT_URL_KMS");
        let addr: SocketAddr = url
            .strip_prefix("http://")
            .expect("http:// endpoint")
            .parse()
            .expect("endpoint address");
        assert!(addr.ip().is_loopback(), "{addr}");
        // The exports come before the gRPC socket is bound: wait for it too.
        let socket = dir.path().join("s.sock");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "the dev socket never came up");
            std::thread::sleep(Duration::from_millis(20));
        }
        DevDaemon {
            child,
            addr,
            access_key_id: value("AWS_ACCESS_KEY_ID"),
            secret: value("AWS_SECRET_ACCESS_KEY"),
            dir,
        }
    }

    /// Runs the `tinfoil` CLI against this daemon's socket (as its owner,
    /// so as the account's administrators).
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let endpoint = format!("unix:{}", self.dir.path().join("s.sock").display());
        tinfoil_e2e_tests::daemon::cli(&endpoint, args, &[])
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// An aws-sdk-kms client for this endpoint with the root access key.
    pub fn sdk(&self) -> aws_sdk_kms::Client {
        self.sdk_with(&self.access_key_id, &self.secret)
    }

    /// An aws-sdk-kms client with other credentials.
    pub fn sdk_with(&self, access_key_id: &str, secret: &str) -> aws_sdk_kms::Client {
        let creds =
            aws_credential_types::Credentials::new(access_key_id, secret, None, None, "tests");
        let conf = aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new(REGION))
            .credentials_provider(creds)
            .endpoint_url(format!("http://{}", self.addr))
            .build();
        aws_sdk_kms::Client::from_conf(conf)
    }

    /// A signed request for `TrentService.<op>` with `body`, as raw bytes.
    pub fn signed(&self, op: &str, body: &str) -> Signed {
        self.signed_as(
            op,
            body,
            &self.access_key_id,
            &self.secret,
            SystemTime::now(),
        )
    }

    /// A request signed with any credentials at any time.
    pub fn signed_as(
        &self,
        op: &str,
        body: &str,
        access_key_id: &str,
        secret: &str,
        time: SystemTime,
    ) -> Signed {
        Signed::new(self.addr, op, body, access_key_id, secret, time)
    }

    /// Sends a correctly signed request and returns the answer.
    pub fn call(&self, op: &str, body: &str) -> RawResponse {
        send(self.addr, &self.signed(op, body).bytes()).expect("KMS call")
    }
}

impl Drop for DevDaemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            signal(self.child.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if self.child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A request signed by the `aws-sigv4` crate, kept as parts so a test can
/// change one after signing.
#[derive(Debug, Clone)]
pub struct Signed {
    /// Header lines, in order (names as sent).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Signed {
    fn new(
        addr: SocketAddr,
        op: &str,
        body: &str,
        access_key_id: &str,
        secret: &str,
        time: SystemTime,
    ) -> Signed {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        use aws_sigv4::sign::v4;
        let identity =
            aws_credential_types::Credentials::new(access_key_id, secret, None, None, "tests")
                .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(REGION)
            .name("kms")
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .expect("signing params")
            .into();
        let mut headers = vec![
            ("Host".to_string(), addr.to_string()),
            (
                "Content-Type".to_string(),
                "application/x-amz-json-1.1".to_string(),
            ),
            ("X-Amz-Target".to_string(), format!("TrentService.{op}")),
        ];
        let signable = SignableRequest::new(
            "POST",
            format!("http://{addr}/"),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(body.as_bytes()),
        )
        .expect("signable request");
        let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
        for (name, value) in instructions.headers() {
            headers.push((name.to_string(), value.to_string()));
        }
        Signed {
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    /// Replaces (or adds) a header.
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.to_string()));
    }

    /// Removes a header.
    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }

    /// The request as bytes on the wire.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = b"POST / HTTP/1.1\r\n".to_vec();
        for (k, v) in &self.headers {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(&self.body);
        out
    }
}

/// An HTTP response as read off the wire.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts an AWS JSON error named `kind` with `status`, content type
    /// and request id, and returns its message.
    pub fn assert_error(&self, status: u16, kind: &str) -> String {
        assert_eq!(
            self.status,
            status,
            "expected {status} {kind}, got {} {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/x-amz-json-1.1")
        );
        let body = self.json();
        assert_eq!(body["__type"], kind, "{body}");
        body["message"].as_str().expect("a message").to_string()
    }
}

/// Writes `request` on a new connection and reads one response. Asserts
/// that it carries an `x-amzn-RequestId` (every response does).
pub fn send(addr: SocketAddr, request: &[u8]) -> std::io::Result<RawResponse> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.write_all(request)?;
    read_response(&mut stream)
}

/// Reads one response from `stream`; it must carry a request id.
pub fn read_response(stream: &mut TcpStream) -> std::io::Result<RawResponse> {
    let response = read_any_response(stream)?;
    let id = response
        .header("x-amzn-requestid")
        .unwrap_or_else(|| panic!("no x-amzn-RequestId on {}", response.status));
    assert_eq!(id.len(), 36, "a UUID request id: {id}");
    Ok(response)
}

/// Reads one response from `stream`, also HTTP-level ones the server's
/// HTTP layer answers by itself (431, 400 for malformed HTTP).
pub fn read_any_response(stream: &mut TcpStream) -> std::io::Result<RawResponse> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed before a response",
            ));
        }
        buf.push(byte[0]);
        assert!(buf.len() < 64 * 1024, "response head too large");
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body)?;
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}
