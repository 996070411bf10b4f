//! The service in-process, without a transport: request/response mapping,
//! error statuses and the in-flight limit.

use std::sync::Arc;

use hsm_core::{Hsm, HsmOptions, KdfParams, ManualClock};
use tinfoil_proto::v1 as pb;
use tinfoil_proto::v1::key_management_server::KeyManagement;
use tonic::{Code, Request};

use super::{CallLimits, KmsService};
use crate::pool::CryptoPool;
use crate::status::reason_of;

/// A service over a fresh store in `dir` (cheap KDF, manual clock).
pub(crate) fn service(dir: &tempfile::TempDir, limits: CallLimits) -> KmsService {
    let options = HsmOptions {
        kdf: KdfParams {
            memory_kib: 8192,
            iterations: 1,
            parallelism: 1,
        },
        clock: Arc::new(ManualClock::new(1_700_000_000)),
        cache_capacity: 16,
        account: Default::default(),
    };
    let secret = hsm_core::SecretString::from("unit-test passphrase".to_string());
    let hsm = Hsm::init(&dir.path().join("store"), &secret, options).expect("init");
    KmsService::new(
        Arc::new(hsm),
        limits,
        Arc::new(CryptoPool::new(2).expect("pool")),
    )
}

#[tokio::test]
async fn encrypt_decrypt_and_disabled_key() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(&dir, CallLimits::default());
    let meta = svc
        .create_key(Request::new(pb::CreateKeyRequest {
            token: Some("t1".into()),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .key_metadata
        .unwrap();
    assert_eq!(meta.key_spec, "SYMMETRIC_DEFAULT");
    assert_eq!(meta.token.as_deref(), Some("t1"));
    assert!(meta.enabled);
    let blob = svc
        .encrypt(Request::new(pb::EncryptRequest {
            key_id: meta.key_id.clone(),
            plaintext: b"secret".to_vec(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .ciphertext_blob;
    let decrypt = || {
        svc.decrypt(Request::new(pb::DecryptRequest {
            ciphertext_blob: blob.clone(),
            ..Default::default()
        }))
    };
    assert_eq!(decrypt().await.unwrap().into_inner().plaintext, b"secret");
    svc.disable_key(Request::new(pb::DisableKeyRequest {
        key_id: meta.key_id.clone(),
    }))
    .await
    .unwrap();
    let status = decrypt().await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason_of(&status).as_deref(), Some("DisabledException"));
    // A bad algorithm name is a ValidationException before any crypto.
    let status = svc
        .encrypt(Request::new(pb::EncryptRequest {
            key_id: meta.key_id,
            plaintext: b"x".to_vec(),
            encryption_algorithm: Some("ROT13".into()),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason_of(&status).as_deref(), Some("ValidationException"));
}

#[tokio::test]
async fn no_permits_means_resource_exhausted() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(
        &dir,
        CallLimits {
            max_in_flight: 0,
            ..CallLimits::default()
        },
    );
    let status = svc
        .generate_random(Request::new(pb::GenerateRandomRequest {
            number_of_bytes: 8,
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(
        reason_of(&status).as_deref(),
        Some("LimitExceededException")
    );
}
