//! Bad requests get their documented status and KMS exception, and the
//! daemon keeps serving: oversized plaintext, unknown key, garbage and
//! truncated ciphertext, wrong context, an oversized gRPC message, too many
//! calls in flight, and connections dropped mid-call.

use std::collections::BTreeMap;
use std::time::Duration;

use tinfoil_e2e_tests::daemon::{Daemon, Store};
use tinfoil_proto::v1 as pb;
use tinfoil_proto::v1::key_management_client::KeyManagementClient;
use tokio::io::AsyncWriteExt;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

fn assert_refused(result: Result<impl std::fmt::Debug, Status>, code: Code, exception: &str) {
    let status = result.expect_err("the request was accepted");
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(reason(&status), exception, "{status:?}");
    let details = status.get_error_details();
    assert_eq!(
        details.error_info().map(|i| i.domain.as_str()),
        Some("tinfoil.v1")
    );
}

async fn still_serving(client: &mut KeyManagementClient<Channel>) {
    let random = client
        .generate_random(pb::GenerateRandomRequest {
            number_of_bytes: 32,
        })
        .await
        .expect("the daemon still serves")
        .into_inner();
    assert_eq!(random.plaintext.len(), 32);
}

async fn symmetric_key(client: &mut KeyManagementClient<Channel>) -> String {
    client
        .create_key(pb::CreateKeyRequest::default())
        .await
        .expect("create key")
        .into_inner()
        .key_metadata
        .expect("metadata")
        .key_id
}

fn context(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_documented_errors_and_the_daemon_keeps_serving() {
    let store = Store::init();
    let mut daemon = Daemon::start(&store, &[]);
    let mut client = daemon.client().await;
    let key_id = symmetric_key(&mut client).await;

    // 4097 bytes of plaintext: one over the KMS limit.
    assert_refused(
        client
            .encrypt(pb::EncryptRequest {
                key_id: key_id.clone(),
                plaintext: vec![7; 4097],
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "ValidationException",
    );
    // 4096 bytes are fine.
    let blob = client
        .encrypt(pb::EncryptRequest {
            key_id: key_id.clone(),
            plaintext: vec![7; 4096],
            encryption_context: context(&[("purpose", "test")]),
            ..Default::default()
        })
        .await
        .expect("4096 bytes encrypt")
        .into_inner()
        .ciphertext_blob;

    // An unknown key.
    assert_refused(
        client
            .encrypt(pb::EncryptRequest {
                key_id: "alias/does-not-exist".into(),
                plaintext: b"x".to_vec(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
        "NotFoundException",
    );
    assert_refused(
        client
            .describe_key(pb::DescribeKeyRequest {
                key_id: "00000000-0000-4000-8000-000000000000".into(),
            })
            .await,
        Code::NotFound,
        "NotFoundException",
    );

    // Garbage, truncated and tampered ciphertext; the wrong context.
    let decrypt = |blob: Vec<u8>, ctx: BTreeMap<String, String>| pb::DecryptRequest {
        ciphertext_blob: blob,
        encryption_context: ctx,
        ..Default::default()
    };
    let ctx = context(&[("purpose", "test")]);
    assert_refused(
        client
            .decrypt(decrypt(b"garbage, not a blob".to_vec(), ctx.clone()))
            .await,
        Code::InvalidArgument,
        "InvalidCiphertextException",
    );
    assert_refused(
        client.decrypt(decrypt(Vec::new(), ctx.clone())).await,
        Code::InvalidArgument,
        "InvalidCiphertextException",
    );
    for cut in [1, blob.len() / 2, blob.len() - 1] {
        let truncated = blob[..cut].to_vec();
        let status = client
            .decrypt(decrypt(truncated, ctx.clone()))
            .await
            .expect_err("truncated ciphertext decrypted");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }
    let mut tampered = blob.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert_refused(
        client.decrypt(decrypt(tampered, ctx.clone())).await,
        Code::InvalidArgument,
        "InvalidCiphertextException",
    );
    assert_refused(
        client
            .decrypt(decrypt(blob.clone(), context(&[("purpose", "other")])))
            .await,
        Code::InvalidArgument,
        "InvalidCiphertextException",
    );
    assert_refused(
        client.decrypt(decrypt(blob.clone(), BTreeMap::new())).await,
        Code::InvalidArgument,
        "InvalidCiphertextException",
    );
    // A bad enum name is a ValidationException.
    assert_refused(
        client
            .create_key(pb::CreateKeyRequest {
                key_spec: Some("AES_512".into()),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "ValidationException",
    );
    // The right context still decrypts.
    let plain = client
        .decrypt(decrypt(blob, ctx))
        .await
        .expect("decrypt")
        .into_inner()
        .plaintext;
    assert_eq!(plain, vec![7; 4096]);

    // A message over the daemon's size limit (64 KiB by default).
    let status = client
        .encrypt(pb::EncryptRequest {
            key_id: key_id.clone(),
            plaintext: vec![1; 200 * 1024],
            ..Default::default()
        })
        .await
        .expect_err("an oversized message was accepted");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(reason(&status), "LimitExceededException", "{status:?}");
    assert!(status.message().contains("65536"), "{status:?}");
    still_serving(&mut client).await;
    assert!(daemon.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_do_not_hurt_the_daemon() {
    let store = Store::init();
    let mut daemon = Daemon::start(&store, &[]);
    let socket = store.socket();

    // Not HTTP/2 at all.
    let mut raw = tokio::net::UnixStream::connect(&socket).await.unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff\xfe garbage")
        .await
        .unwrap();
    drop(raw);

    // An HTTP/2 preface, then a stream cut in the middle of a frame.
    let mut raw = tokio::net::UnixStream::connect(&socket).await.unwrap();
    raw.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    raw.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap(); // empty SETTINGS
    raw.write_all(&[0, 0x40, 0, 1, 4, 0, 0, 0, 1, 0x82])
        .await
        .unwrap(); // HEADERS cut short
    drop(raw);

    // A real call abandoned mid-flight: RSA-4096 generation is slow.
    let mut client = daemon.client().await;
    let call = tokio::spawn(async move {
        client
            .create_key(pb::CreateKeyRequest {
                key_spec: Some("RSA_4096".into()),
                key_usage: Some("SIGN_VERIFY".into()),
                ..Default::default()
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    call.abort();
    let _ = call.await;

    // Many calls started and dropped at once.
    for _ in 0..16 {
        let mut c = daemon.client().await;
        let pending = tokio::spawn(async move {
            c.generate_random(pb::GenerateRandomRequest {
                number_of_bytes: 1024,
            })
            .await
        });
        pending.abort();
    }

    let mut client = daemon.client().await;
    still_serving(&mut client).await;
    assert!(daemon.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_over_the_in_flight_limit_are_resource_exhausted() {
    let store = Store::init();
    // One call at a time; 16 slow RSA key generations arrive at once.
    let daemon = Daemon::start(&store, &["--max-in-flight", "1"]);
    let mut calls = Vec::new();
    for _ in 0..16 {
        let mut client = daemon.client().await;
        calls.push(tokio::spawn(async move {
            client
                .create_key(pb::CreateKeyRequest {
                    key_spec: Some("RSA_2048".into()),
                    key_usage: Some("SIGN_VERIFY".into()),
                    ..Default::default()
                })
                .await
        }));
    }
    let (mut ok, mut refused) = (0, 0);
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => ok += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert_eq!(reason(&status), "LimitExceededException");
                refused += 1;
            }
        }
    }
    assert!(ok >= 1, "no call succeeded");
    assert!(refused >= 1, "no call was refused over the limit");
    let mut client = daemon.client().await;
    still_serving(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_over_the_deadline_get_deadline_exceeded() {
    let store = Store::init();
    let daemon = Daemon::start(&store, &["--call-timeout-ms", "1"]);
    let mut client = daemon.client().await;
    let status = client
        .create_key(pb::CreateKeyRequest {
            key_spec: Some("RSA_4096".into()),
            key_usage: Some("SIGN_VERIFY".into()),
            ..Default::default()
        })
        .await
        .expect_err("RSA-4096 generation finished within 1 ms");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(reason(&status), "DependencyTimeoutException");
}
