//! The KMS endpoint under the real `aws-sdk-kms` (Rust AWS SDK, behavior
//! version latest) against a real `tinfoild --dev`: keys, envelope
//! encryption with a context, data keys, paging, and errors surfacing as
//! the SDK's typed errors.

mod kms_protocol_support;

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::operation::RequestId;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, KeyState};
use kms_protocol_support::DevDaemon;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_sdk_kms_round_trip() {
    let daemon = DevDaemon::start();
    let kms = daemon.sdk();

    let created = kms
        .create_key()
        .description("sdk test")
        .send()
        .await
        .expect("CreateKey");
    assert!(created.request_id().is_some_and(|id| id.len() == 36));
    let meta = created.key_metadata().expect("KeyMetadata");
    let key_id = meta.key_id().to_string();
    let arn = meta.arn().expect("Arn").to_string();
    assert_eq!(
        arn,
        format!("arn:aws:kms:us-east-1:111122223333:key/{key_id}")
    );
    assert_eq!(meta.aws_account_id(), Some("111122223333"));
    assert!(meta.enabled());
    assert_eq!(meta.key_state(), Some(&KeyState::Enabled));
    assert_eq!(meta.description(), Some("sdk test"));
    assert!(meta.creation_date().is_some());

    // Encrypt and decrypt with an encryption context; KeyId answers are ARNs.
    let encrypted = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"attack at dawn".to_vec()))
        .encryption_context("purpose", "test")
        .send()
        .await
        .expect("Encrypt");
    assert_eq!(encrypted.key_id(), Some(arn.as_str()));
    let blob = encrypted.ciphertext_blob().expect("CiphertextBlob").clone();
    let decrypted = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("purpose", "test")
        .send()
        .await
        .expect("Decrypt");
    assert_eq!(decrypted.plaintext().unwrap().as_ref(), b"attack at dawn");
    assert_eq!(decrypted.key_id(), Some(arn.as_str()));
    // The wrong context: InvalidCiphertextException, typed.
    let err = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("purpose", "other")
        .send()
        .await
        .expect_err("wrong context");
    assert!(err.into_service_error().is_invalid_ciphertext_exception());

    // GenerateDataKey: the plaintext decrypts from the ciphertext.
    let data_key = kms
        .generate_data_key()
        .key_id(&arn)
        .key_spec(DataKeySpec::Aes256)
        .encryption_context("file", "a.txt")
        .send()
        .await
        .expect("GenerateDataKey");
    let plain = data_key.plaintext().expect("Plaintext").as_ref().to_vec();
    assert_eq!(plain.len(), 32);
    let back = kms
        .decrypt()
        .ciphertext_blob(data_key.ciphertext_blob().unwrap().clone())
        .encryption_context("file", "a.txt")
        .send()
        .await
        .expect("Decrypt data key");
    assert_eq!(back.plaintext().unwrap().as_ref(), &plain[..]);

    // An alias names the key wherever a KeyId goes.
    kms.create_alias()
        .alias_name("alias/sdk")
        .target_key_id(&key_id)
        .send()
        .await
        .expect("CreateAlias");
    let by_alias = kms
        .describe_key()
        .key_id("alias/sdk")
        .send()
        .await
        .expect("DescribeKey by alias");
    assert_eq!(by_alias.key_metadata().unwrap().key_id(), key_id);
    let by_alias_arn = kms
        .encrypt()
        .key_id("arn:aws:kms:us-east-1:111122223333:alias/sdk")
        .plaintext(Blob::new(b"via alias ARN".to_vec()))
        .send()
        .await
        .expect("Encrypt by alias ARN");
    assert_eq!(by_alias_arn.key_id(), Some(arn.as_str()));
    // An ARN of another account or region names no key here.
    let err = kms
        .describe_key()
        .key_id(format!("arn:aws:kms:eu-west-1:111122223333:key/{key_id}"))
        .send()
        .await
        .expect_err("another region's ARN");
    assert!(err.into_service_error().is_not_found_exception());

    // Decrypt naming another key than the blob's: IncorrectKeyException.
    let other = kms.create_key().send().await.expect("CreateKey 2");
    let other_id = other.key_metadata().unwrap().key_id().to_string();
    let err = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("purpose", "test")
        .key_id(&other_id)
        .send()
        .await
        .expect_err("another key");
    assert_eq!(err.code(), Some("IncorrectKeyException"), "{err:?}");
    assert!(err.into_service_error().is_incorrect_key_exception());

    // Disabled: DisabledException as the SDK's typed error, until enabled.
    kms.disable_key()
        .key_id(&key_id)
        .send()
        .await
        .expect("DisableKey");
    let err = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .expect_err("disabled key");
    let err = err.into_service_error();
    assert!(err.is_disabled_exception(), "{err:?}");
    assert!(err.meta().request_id().is_some());
    kms.enable_key()
        .key_id(&key_id)
        .send()
        .await
        .expect("EnableKey");
    kms.encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .expect("Encrypt after EnableKey");

    // A key that does not exist: NotFoundException.
    let err = kms
        .describe_key()
        .key_id("00000000-0000-4000-8000-000000000000")
        .send()
        .await
        .expect_err("missing key");
    assert!(err.into_service_error().is_not_found_exception());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_sdk_kms_pages_list_keys() {
    let daemon = DevDaemon::start();
    let kms = daemon.sdk();
    let mut made = Vec::new();
    for _ in 0..7 {
        let k = kms.create_key().send().await.expect("CreateKey");
        made.push(k.key_metadata().unwrap().key_id().to_string());
    }
    // By hand: Limit 3 gives 3, 3, 1 with Truncated and NextMarker.
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = kms
            .list_keys()
            .limit(3)
            .set_marker(marker.clone())
            .send()
            .await
            .expect("ListKeys");
        pages += 1;
        let keys = page.keys();
        assert!(keys.len() <= 3);
        for k in keys {
            assert!(k.key_arn().unwrap().ends_with(k.key_id().unwrap()));
            seen.push(k.key_id().unwrap().to_string());
        }
        if !page.truncated() {
            assert!(page.next_marker().is_none());
            break;
        }
        marker = Some(
            page.next_marker()
                .expect("NextMarker when truncated")
                .to_string(),
        );
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 3);
    seen.sort();
    made.sort();
    assert_eq!(seen, made);
    // And through the SDK's own paginator.
    let all: Vec<_> = kms
        .list_keys()
        .limit(2)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("paginator");
    assert_eq!(all.len(), 7);
    // Limit outside 1..1000: ValidationException.
    let err = kms.list_keys().limit(1001).send().await.expect_err("limit");
    assert_eq!(err.code(), Some("ValidationException"));
    assert!(
        err.message()
            .unwrap_or_default()
            .contains("at 'limit' failed to satisfy constraint"),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_sdk_kms_refuses_bad_credentials_with_typed_errors() {
    let daemon = DevDaemon::start();
    let wrong_secret = daemon.sdk_with(
        &daemon.access_key_id,
        "not-the-secret-not-the-secret-0000000000",
    );
    let err = wrong_secret
        .list_keys()
        .send()
        .await
        .expect_err("wrong secret");
    assert_eq!(err.code(), Some("InvalidSignatureException"), "{err:?}");
    let unknown = daemon.sdk_with("AKIAUNKNOWNUNKNOWN00", &daemon.secret);
    let err = unknown
        .list_keys()
        .send()
        .await
        .expect_err("unknown key id");
    assert_eq!(err.code(), Some("UnrecognizedClientException"), "{err:?}");
    // The right credentials still work.
    daemon.sdk().list_keys().send().await.expect("ListKeys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signing_user_is_the_caller_the_key_policy_judges() {
    let daemon = DevDaemon::start();
    let admin = daemon.sdk();
    let out = daemon.cli(&["create-user", "--user-name", "alice"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = daemon.cli(&[
        "create-access-key",
        "--user-name",
        "alice",
        "--output",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let alice = daemon.sdk_with(
        made["AccessKey"]["AccessKeyId"].as_str().unwrap(),
        made["AccessKey"]["SecretAccessKey"].as_str().unwrap(),
    );

    // The administrators' key with the default policy: alice may not use it.
    let key = admin.create_key().send().await.unwrap();
    let key = key.key_metadata().unwrap().key_id().to_string();
    let err = alice
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .expect_err("alice is not in the key policy");
    assert_eq!(err.code(), Some("AccessDeniedException"), "{err:?}");
    assert!(
        err.message().unwrap_or_default().contains("user/alice"),
        "the refusal names the caller: {err:?}"
    );

    // A policy that lets alice encrypt (only): now she may, and still not decrypt.
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"},
             "Action": "kms:Encrypt", "Resource": "*"}
        ]
    })
    .to_string();
    admin
        .put_key_policy()
        .key_id(&key)
        .policy(policy)
        .send()
        .await
        .unwrap();
    let sealed = alice
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .expect("alice may encrypt");
    let err = alice
        .decrypt()
        .ciphertext_blob(sealed.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .expect_err("alice may not decrypt");
    assert_eq!(err.code(), Some("AccessDeniedException"), "{err:?}");
}
