//! Standard gRPC clients on the Unix socket (issue 13): Python grpcio with
//! default channel options puts the percent-encoded socket path in
//! `:authority`, which h2 used to answer with RST_STREAM PROTOCOL_ERROR on
//! every call. tinfoild serves it (through the patched h2 in
//! third_party/h2): health check, reflection, CreateKey/Encrypt/Decrypt
//! built from reflected descriptors, and an error status with its code.

use std::process::Command;

use tinfoil_e2e_tests::daemon::{stderr, stdout, Daemon, Store};
use tinfoil_e2e_tests::kms::{python_dir, venv};

#[test]
fn python_grpcio_with_default_options_calls_over_the_unix_socket() {
    let python = venv().join("bin/python");
    let store = Store::init();
    let daemon = Daemon::start(&store, &[]);
    let out = Command::new(&python)
        .arg(python_dir().join("grpcio_unix.py"))
        .arg(store.socket())
        .env_remove("GRPC_DEFAULT_AUTHORITY")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "grpcio failed:\n{}\n{}\ndaemon log:\n{}",
        stdout(&out),
        stderr(&out),
        daemon.log()
    );
    let text = stdout(&out);
    for line in [
        "health: SERVING",
        "tinfoil.v1.KeyManagement",
        "decrypts",
        "error: INVALID_ARGUMENT",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}

/// HPACK "literal header field without indexing, new name", no Huffman.
fn literal(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0x00);
    for text in [name, value] {
        prefixed_length(out, text.len());
        out.extend_from_slice(text.as_bytes());
    }
}

/// An HPACK integer with a 7-bit prefix (H bit 0).
fn prefixed_length(out: &mut Vec<u8>, mut n: usize) {
    if n < 127 {
        out.push(n as u8);
        return;
    }
    out.push(127);
    n -= 127;
    while n >= 128 {
        out.push((n % 128 + 128) as u8);
        n /= 128;
    }
    out.push(n as u8);
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// One health check on a raw HTTP/2 connection with `authority` (or none):
/// whether the server answered with DATA (the response) rather than
/// RST_STREAM.
fn health_check_with_authority(socket: &std::path::Path, authority: Option<&str>) -> bool {
    use std::io::{Read, Write};
    let mut conn = std::os::unix::net::UnixStream::connect(socket).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(0x4, 0, 0, &[])); // SETTINGS
    let mut block = Vec::new();
    literal(&mut block, ":method", "POST");
    literal(&mut block, ":scheme", "http");
    literal(&mut block, ":path", "/grpc.health.v1.Health/Check");
    if let Some(authority) = authority {
        literal(&mut block, ":authority", authority);
    }
    literal(&mut block, "content-type", "application/grpc");
    literal(&mut block, "te", "trailers");
    out.extend(frame(0x1, 0x4, 1, &block)); // HEADERS, END_HEADERS
    out.extend(frame(0x0, 0x1, 1, &[0, 0, 0, 0, 0])); // DATA: empty message, END_STREAM
    conn.write_all(&out).unwrap();
    loop {
        let mut header = [0u8; 9];
        if conn.read_exact(&mut header).is_err() {
            return false;
        }
        let len = (header[0] as usize) << 16 | (header[1] as usize) << 8 | header[2] as usize;
        let mut payload = vec![0u8; len];
        conn.read_exact(&mut payload).unwrap();
        let stream = u32::from_be_bytes(header[5..9].try_into().unwrap()) & 0x7fff_ffff;
        match (header[3], stream) {
            (0x4, 0) if header[4] & 1 == 0 => {
                conn.write_all(&frame(0x4, 0x1, 0, &[])).unwrap(); // SETTINGS ACK
            }
            (0x0, 1) => return payload.ends_with(&[0x08, 0x01]), // SERVING
            (0x3, 1) | (0x7, _) => return false,                 // RST_STREAM, GOAWAY
            _ => {}
        }
    }
}

/// The authorities other clients send: the raw path (grpc-java, older
/// grpc-go), the percent-encoded path (grpcio), `localhost` (grpc-go),
/// none at all; over a raw HTTP/2 connection, so the test does not depend
/// on one client's choice.
#[test]
fn any_authority_or_none_is_served_on_the_unix_socket() {
    let store = Store::init();
    let _daemon = Daemon::start(&store, &[]);
    let socket = store.socket();
    let raw_path = socket.display().to_string();
    let encoded = raw_path.replace('/', "%2F");
    for authority in [
        Some(raw_path.as_str()),
        Some(encoded.as_str()),
        Some("localhost"),
        Some("bad authority with spaces"),
        None,
    ] {
        assert!(
            health_check_with_authority(&socket, authority),
            "authority {authority:?} was refused"
        );
    }
}
