//! Request messages that do not decode (issue 13): invalid UTF-8 in a
//! string field, a truncated varint, a wrong wire type, random bytes. Each
//! gets INVALID_ARGUMENT with ErrorInfo ValidationException (tonic's own
//! answer is INTERNAL, which clients retry as a server fault), naming the
//! field when the decoder knows it; the daemon keeps serving.

use prost::Message;
use tinfoil_e2e_tests::daemon::{Daemon, Store};
use tinfoil_e2e_tests::raw_grpc::{call, call_with, reason, stream};
use tonic::{Code, Status};

/// Asserts INVALID_ARGUMENT / ValidationException whose message contains
/// every one of `words`.
fn assert_validation(result: Result<Vec<u8>, Status>, words: &[&str], what: &str) {
    let status = result.expect_err(what);
    assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
    assert_eq!(reason(&status), "ValidationException", "{what}: {status:?}");
    for word in words {
        assert!(
            status.message().contains(word),
            "{what}: {:?} does not name {word}",
            status.message()
        );
    }
}

const KMS: &str = "/tinfoil.v1.KeyManagement/";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_requests_are_validation_errors_naming_the_field() {
    let store = Store::init();
    let daemon = Daemon::start(&store, &[]);
    let channel = daemon.channel().await;

    // Field 1 (key_id, a string) holding bytes that are not UTF-8.
    assert_validation(
        call(
            &channel,
            &format!("{KMS}Encrypt"),
            vec![0x0a, 2, 0xff, 0xfe],
        )
        .await,
        &["EncryptRequest.key_id", "UTF-8"],
        "invalid UTF-8 in key_id",
    );
    // The same in a map entry (the encryption context's key).
    let mut context_entry = vec![0x0a, 2, 0xc3, 0x28, 0x12, 1, b'v'];
    let mut body = vec![0x0a, 1, b'k', 0x1a, context_entry.len() as u8];
    body.append(&mut context_entry);
    let result = call(&channel, &format!("{KMS}Encrypt"), body).await;
    assert_validation(result, &["EncryptRequest.encryption_context"], "context");
    // number_of_bytes (a varint) cut short.
    assert_validation(
        call(
            &channel,
            &format!("{KMS}GenerateRandom"),
            vec![0x08, 0xff, 0xff],
        )
        .await,
        &[],
        "truncated varint",
    );
    // number_of_bytes sent as a length-delimited field.
    assert_validation(
        call(&channel, &format!("{KMS}GenerateRandom"), vec![0x0a, 1, 0]).await,
        &["GenerateRandomRequest.number_of_bytes", "wire type"],
        "wrong wire type",
    );
    // Wire type 7 does not exist; field number 0 neither.
    for body in [vec![0x0f], vec![0x00, 0x01], vec![0x0a, 0x80]] {
        assert_validation(
            call(&channel, &format!("{KMS}DescribeKey"), body.clone()).await,
            &[],
            &format!("{body:?}"),
        );
    }
    // A length past the end of the message.
    assert_validation(
        call(&channel, &format!("{KMS}DescribeKey"), vec![0x0a, 50, b'a']).await,
        &[],
        "overlong length",
    );
    // The health service goes through the same rewrite.
    assert_validation(
        call(
            &channel,
            "/grpc.health.v1.Health/Check",
            vec![0x0a, 1, 0xff],
        )
        .await,
        &["service"],
        "health check",
    );

    // A handler's own INTERNAL-free answer is untouched, and the daemon serves.
    let ok = call(&channel, &format!("{KMS}GenerateRandom"), vec![0x08, 16])
        .await
        .expect("a well-formed request");
    assert!(!ok.is_empty());
}

/// Random bytes to every unary KeyManagement method: never INTERNAL or
/// UNKNOWN (a message that happens to decode gets the handler's own
/// answer), always an ErrorInfo on errors; the daemon stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_to_every_method_never_get_internal() {
    let store = Store::init();
    let mut daemon = Daemon::start(&store, &[]);
    let channel = daemon.channel().await;
    let pool = prost_reflect::DescriptorPool::decode(tinfoil_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set");
    let service = pool
        .get_service_by_name("tinfoil.v1.KeyManagement")
        .expect("service");
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut calls = 0;
    let mut rejected_as_undecodable = 0;
    for method in service.methods() {
        if method.is_client_streaming() || method.is_server_streaming() {
            continue;
        }
        let path = format!("{KMS}{}", method.name());
        for _ in 0..12 {
            let len = (next() % 64) as usize;
            let body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            calls += 1;
            match call(&channel, &path, body.clone()).await {
                Ok(_) => {}
                Err(status) => {
                    assert!(
                        !matches!(status.code(), Code::Internal | Code::Unknown),
                        "{path} {body:?}: {status:?}"
                    );
                    assert!(!reason(&status).is_empty(), "{path} {body:?}: {status:?}");
                    if status.message().contains("does not decode") {
                        rejected_as_undecodable += 1;
                    }
                }
            }
        }
    }
    assert!(
        rejected_as_undecodable > calls / 4,
        "{rejected_as_undecodable} of {calls}"
    );
    assert!(daemon.is_running());
    let random = call(&channel, &format!("{KMS}GenerateRandom"), vec![0x08, 8])
        .await
        .expect("still serving");
    let decoded =
        tinfoil_proto::v1::GenerateRandomResponse::decode(random.as_slice()).expect("decodes");
    assert_eq!(decoded.plaintext.len(), 8);
}

/// A message that fails to decode in the middle of a stream (the PKCS#11
/// pipe, a bidirectional stream) ends it with INVALID_ARGUMENT /
/// ValidationException in the trailers, not INTERNAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_message_in_a_stream_is_a_validation_error() {
    let store = Store::init();
    let daemon = Daemon::start(&store, &[]);
    let channel = daemon.channel().await;
    let status = stream(
        &channel,
        "/tinfoil.v1.Pkcs11Backend/Pipe",
        vec![vec![0x0f, 0x0f, 0x0f]],
    )
    .await
    .expect_err("the stream ended without an error");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(reason(&status), "ValidationException", "{status:?}");
    assert!(status.message().contains("does not decode"), "{status:?}");
    // The daemon still serves.
    call(&channel, &format!("{KMS}GenerateRandom"), vec![0x08, 8])
        .await
        .expect("still serving");
}

/// A method the daemon does not offer, or a request compressed with gzip
/// (not offered either), keeps gRPC's prescribed UNIMPLEMENTED but carries
/// the ErrorInfo every tinfoil status has (it had none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_methods_and_compressed_requests_are_unimplemented_with_a_reason() {
    let store = Store::init();
    let daemon = Daemon::start(&store, &[]);
    let channel = daemon.channel().await;
    for path in [
        format!("{KMS}NoSuchMethod"),
        "/no.such.Service/Call".to_string(),
    ] {
        let status = call(&channel, &path, vec![]).await.expect_err(&path);
        assert_eq!(status.code(), Code::Unimplemented, "{path}: {status:?}");
        assert_eq!(
            reason(&status),
            "UnsupportedOperationException",
            "{path}: {status:?}"
        );
    }
    let mut request = tonic::Request::new(vec![0x08, 8]);
    request
        .metadata_mut()
        .insert("grpc-encoding", "gzip".parse().unwrap());
    let status = call_with(&channel, &format!("{KMS}GenerateRandom"), request)
        .await
        .expect_err("a gzip request was served");
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert_eq!(
        reason(&status),
        "UnsupportedOperationException",
        "{status:?}"
    );
    assert!(status.message().contains("gzip"), "{status:?}");
    // Our own statuses keep their reason (not rewritten).
    let status = call(
        &channel,
        &format!("{KMS}GenerateRandom"),
        vec![0x08, 0x88, 0x27],
    )
    .await
    .expect_err("10,000 random bytes were served");
    assert_eq!(reason(&status), "ValidationException", "{status:?}");
}

/// Garbage on the reflection stream (v1 and v1alpha) used to end the
/// stream OK with no answer; it ends with INVALID_ARGUMENT /
/// ValidationException, after the answers to the good requests before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_reflection_stream_is_a_validation_error() {
    let store = Store::init();
    let daemon = Daemon::start(&store, &[]);
    let channel = daemon.channel().await;
    // ServerReflectionRequest { list_services: "" } (field 7).
    let list_services = vec![0x3a, 0x00];
    for path in [
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ] {
        let answers = stream(&channel, path, vec![list_services.clone()])
            .await
            .expect(path);
        assert_eq!(answers.len(), 1, "{path}");
        for garbage in [
            vec![0x0f, 0x0f, 0x0f],
            vec![0x3a, 0x05, b'a'],
            vec![0xff; 7],
        ] {
            let status = stream(&channel, path, vec![list_services.clone(), garbage.clone()])
                .await
                .expect_err(path);
            assert_eq!(
                status.code(),
                Code::InvalidArgument,
                "{path} {garbage:?}: {status:?}"
            );
            assert_eq!(reason(&status), "ValidationException", "{status:?}");
            assert!(status.message().contains("does not decode"), "{status:?}");
        }
    }
    call(&channel, &format!("{KMS}GenerateRandom"), vec![0x08, 8])
        .await
        .expect("still serving");
}
