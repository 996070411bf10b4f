//! The KMS endpoint under requests no SDK sends: broken or missing SigV4,
//! tampering after signing, malformed JSON, oversized bodies and header
//! floods, clients that stall half-way. Each gets the AWS error (or, below
//! the HTTP layer, a closed connection) within bounded time, and the
//! daemon keeps serving.

mod kms_protocol_support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use kms_protocol_support::{read_any_response, read_response, send, DevDaemon};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The daemon still answers a signed call and is still running.
fn assert_serving(daemon: &mut DevDaemon) {
    let r = daemon.call("ListKeys", "{}");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(daemon.is_running(), "{}", daemon.log());
}

#[test]
fn sigv4_failures_name_the_aws_errors() {
    let mut daemon = DevDaemon::start();
    let addr = daemon.addr;

    // Unsigned.
    let mut unsigned = daemon.signed("ListKeys", "{}");
    unsigned.remove_header("Authorization");
    let r = send(addr, &unsigned.bytes()).unwrap();
    r.assert_error(400, "MissingAuthenticationTokenException");

    // Wrong secret.
    let r = send(
        addr,
        &daemon
            .signed_as(
                "ListKeys",
                "{}",
                &daemon.access_key_id,
                "wrongwrongwrongwrongwrongwrongwrongwrong",
                SystemTime::now(),
            )
            .bytes(),
    )
    .unwrap();
    let msg = r.assert_error(400, "InvalidSignatureException");
    assert!(msg.contains("does not match"), "{msg}");

    // Unknown access key id.
    let r = send(
        addr,
        &daemon
            .signed_as(
                "ListKeys",
                "{}",
                "AKIAUNKNOWNUNKNOWN00",
                &daemon.secret,
                SystemTime::now(),
            )
            .bytes(),
    )
    .unwrap();
    r.assert_error(400, "UnrecognizedClientException");

    // Signed 20 minutes ago (the limit is 15): expired.
    let old = SystemTime::now() - Duration::from_secs(20 * 60);
    let r = send(
        addr,
        &daemon
            .signed_as("ListKeys", "{}", &daemon.access_key_id, &daemon.secret, old)
            .bytes(),
    )
    .unwrap();
    let msg = r.assert_error(400, "InvalidSignatureException");
    assert!(msg.starts_with("Signature expired"), "{msg}");

    // The body changed after signing (same length, so only the hash differs).
    let mut changed = daemon.signed("ListKeys", r#"{"Limit":10}"#);
    changed.body = br#"{"Limit":99}"#.to_vec();
    let r = send(addr, &changed.bytes()).unwrap();
    r.assert_error(400, "InvalidSignatureException");

    // A signed header changed after signing: the target.
    let mut changed = daemon.signed("ListKeys", "{}");
    changed.set_header("X-Amz-Target", "TrentService.CreateKey");
    let r = send(addr, &changed.bytes()).unwrap();
    r.assert_error(400, "InvalidSignatureException");
    let r = daemon.call("ListKeys", "{}");
    assert_eq!(
        r.json()["Keys"].as_array().map(Vec::len),
        Some(0),
        "no key was created by the tampered request"
    );

    // A malformed Authorization header.
    let mut malformed = daemon.signed("ListKeys", "{}");
    malformed.set_header("Authorization", "AWS4-HMAC-SHA256 Credential=x");
    let r = send(addr, &malformed.bytes()).unwrap();
    r.assert_error(400, "IncompleteSignatureException");

    // A scope for another service.
    let good = daemon.signed("ListKeys", "{}");
    let auth = good
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .unwrap()
        .1
        .replace("/kms/", "/s3/");
    let mut other = good.clone();
    other.set_header("Authorization", &auth);
    let r = send(addr, &other.bytes()).unwrap();
    r.assert_error(400, "InvalidSignatureException");

    assert_serving(&mut daemon);
}

#[test]
fn bad_input_gets_clear_errors() {
    let mut daemon = DevDaemon::start();
    let r = daemon.call("CreateKey", "{}");
    assert_eq!(r.status, 200);
    let key = r.json()["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();

    daemon
        .call("Encrypt", "{not json")
        .assert_error(400, "SerializationException");
    daemon
        .call(
            "Encrypt",
            &format!(r#"{{"KeyId":"{key}","Plaintext":"%%%"}}"#),
        )
        .assert_error(400, "SerializationException");
    daemon
        .call("Encrypt", &format!(r#"{{"KeyId":"{key}","Plaintext":12}}"#))
        .assert_error(400, "SerializationException");
    daemon
        .call("ListKeys", r#"{"Limit":"ten"}"#)
        .assert_error(400, "SerializationException");
    let msg = daemon
        .call("Encrypt", r#"{"Plaintext":"aGk="}"#)
        .assert_error(400, "ValidationException");
    assert_eq!(
        msg,
        "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: \
         Member must not be null"
    );
    let msg = daemon
        .call(
            "Encrypt",
            &format!(r#"{{"KeyId":"{key}","Plaintext":"{}"}}"#, b64(&[7u8; 4097])),
        )
        .assert_error(400, "ValidationException");
    assert_eq!(
        msg,
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: \
         Member must have length less than or equal to 4096"
    );
    // The largest legal plaintext fits the body limit.
    let r = daemon.call(
        "Encrypt",
        &format!(r#"{{"KeyId":"{key}","Plaintext":"{}"}}"#, b64(&[7u8; 4096])),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    daemon
        .call("NoSuchOperation", "{}")
        .assert_error(400, "UnknownOperationException");
    daemon
        .call("ReplicateKey", "{}")
        .assert_error(400, "UnsupportedOperationException");
    let msg = daemon
        .call("Encrypt", r#"{"KeyId":"alias/none","Plaintext":"aGk="}"#)
        .assert_error(400, "NotFoundException");
    assert!(msg.contains("alias/none"), "{msg}");

    // DryRun: the checks pass, nothing is done.
    daemon
        .call(
            "Encrypt",
            &format!(r#"{{"KeyId":"{key}","Plaintext":"aGk=","DryRun":true}}"#),
        )
        .assert_error(400, "DryRunOperationException");
    // DryRun answers what the real call would when it would fail: a
    // disabled key, a wrong key usage, a ciphertext that does not open.
    let r = daemon.call("DisableKey", &format!(r#"{{"KeyId":"{key}"}}"#));
    assert_eq!(r.status, 200);
    daemon
        .call(
            "Encrypt",
            &format!(r#"{{"KeyId":"{key}","Plaintext":"aGk=","DryRun":true}}"#),
        )
        .assert_error(400, "DisabledException");
    let r = daemon.call("EnableKey", &format!(r#"{{"KeyId":"{key}"}}"#));
    assert_eq!(r.status, 200);
    let r = daemon.call(
        "CreateKey",
        r#"{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC"}"#,
    );
    let mac_key = r.json()["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    daemon
        .call(
            "Encrypt",
            &format!(r#"{{"KeyId":"{mac_key}","Plaintext":"aGk=","DryRun":true}}"#),
        )
        .assert_error(400, "InvalidKeyUsageException");
    daemon
        .call(
            "Decrypt",
            &format!(
                r#"{{"CiphertextBlob":"{}","DryRun":true}}"#,
                b64(&[1u8; 64])
            ),
        )
        .assert_error(400, "InvalidCiphertextException");

    assert_serving(&mut daemon);
}

#[test]
fn oversized_requests_are_refused_within_bounds() {
    let mut daemon = DevDaemon::start();
    let addr = daemon.addr;

    // A 10 MB body declared up front: refused before it is read.
    let mut big = daemon.signed("Encrypt", "{}");
    big.body = vec![b' '; 10 * 1024 * 1024];
    let head_len = big.bytes().len() - big.body.len();
    let bytes = big.bytes();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(&bytes[..head_len]).unwrap();
    let r = read_response(&mut stream).unwrap();
    r.assert_error(413, "LimitExceededException");
    assert_eq!(r.header("connection"), Some("close"));

    // A 10 MB body sent chunked (no length): cut off at the limit.
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut head = b"POST / HTTP/1.1\r\n".to_vec();
    for (k, v) in &daemon.signed("Encrypt", "{}").headers {
        head.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    head.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
    stream.write_all(&head).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let feeder = std::thread::spawn(move || {
        let chunk = vec![b' '; 64 * 1024];
        for _ in 0..160 {
            let mut piece = format!("{:x}\r\n", chunk.len()).into_bytes();
            piece.extend_from_slice(&chunk);
            piece.extend_from_slice(b"\r\n");
            if writer.write_all(&piece).is_err() {
                return; // the server closed the connection: refused
            }
        }
        let _ = writer.write_all(b"0\r\n\r\n");
    });
    match read_response(&mut stream) {
        Ok(r) => {
            r.assert_error(413, "LimitExceededException");
        }
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
            ),
            "{e}"
        ),
    }
    drop(stream);
    feeder.join().unwrap();

    // 10,000 headers: the HTTP layer refuses (431) or closes.
    let mut flood = b"POST / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..10_000 {
        flood.extend_from_slice(format!("X-Flood-{i}: {i}\r\n").as_bytes());
    }
    flood.extend_from_slice(b"Content-Length: 2\r\n\r\n{}");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let _ = stream.write_all(&flood);
    match read_any_response(&mut stream) {
        Ok(r) => assert_eq!(r.status, 431, "{r:?}"),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
            ),
            "{e}"
        ),
    }

    assert_serving(&mut daemon);
}

#[test]
fn stalled_clients_are_dropped_and_do_not_hold_the_daemon() {
    let mut daemon = DevDaemon::start();
    let addr = daemon.addr;
    let signed = daemon.signed("ListKeys", r#"{"Limit":10}"#);
    let full = signed.bytes();
    let head_len = full.len() - signed.body.len();

    // Half the headers, then nothing.
    let mut half_head = TcpStream::connect(addr).unwrap();
    half_head.write_all(&full[..head_len / 2]).unwrap();
    // All headers and half the body, then nothing.
    let mut half_body = TcpStream::connect(addr).unwrap();
    half_body.write_all(&full[..head_len + 3]).unwrap();
    // Many idle connections at once.
    let idle: Vec<TcpStream> = (0..50).map(|_| TcpStream::connect(addr).unwrap()).collect();

    // Meanwhile the daemon answers others at once.
    assert_serving(&mut daemon);

    // The stalled body gets 408 after the read timeout (10 s), then the close.
    half_body
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let r = read_response(&mut half_body).unwrap();
    r.assert_error(408, "RequestTimeoutException");
    // The stalled headers: the connection is closed.
    half_head
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    match read_any_response(&mut half_head) {
        Ok(r) => assert!(r.status >= 400, "{r:?}"),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
            ),
            "{e}"
        ),
    }
    // A connection that never sent a byte is closed too.
    let mut silent = idle.into_iter().next().unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut byte = [0u8; 1];
    match std::io::Read::read(&mut silent, &mut byte) {
        Ok(0) => {}
        Ok(_) => {} // an HTTP-level answer before the close is fine too
        Err(e) => assert!(
            matches!(e.kind(), std::io::ErrorKind::ConnectionReset),
            "the idle connection was not closed: {e}"
        ),
    }
    assert_serving(&mut daemon);
}

#[test]
fn wrong_method_or_path_and_keep_alive() {
    let mut daemon = DevDaemon::start();
    let r = send(daemon.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    r.assert_error(404, "UnknownOperationException");
    // Two signed requests on one connection (keep-alive), each answered.
    let mut stream = TcpStream::connect(daemon.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    for _ in 0..2 {
        stream
            .write_all(&daemon.signed("ListKeys", "{}").bytes())
            .unwrap();
        assert_eq!(read_response(&mut stream).unwrap().status, 200);
    }
    assert_serving(&mut daemon);
}
