//! Unit tests of the PKCS#11 backend service.

use cryptoki_sys::*;
use tinfoil_proto::pkcs11_wire::error_from_status;
use tinfoil_proto::v1::key_management_server::KeyManagement;
use tonic::Request;

use super::*;
use crate::service::tests::service;
use crate::service::CallLimits;

fn ckr(status: Status) -> CK_RV {
    assert_eq!(
        status::reason_of(&status).as_deref(),
        Some(tinfoil_proto::PKCS11_ERROR_REASON),
        "{status:?}"
    );
    error_from_status(&status).rv()
}

fn gcm(key: &pb::P11KeyHandle) -> pb::P11AesRequest {
    pb::P11AesRequest {
        key: Some(key.clone()),
        mode: Some(wire::aes_to_wire(&hsm_core::pkcs11::AesMode::Gcm {
            iv: vec![1; 12],
            aad: Vec::new(),
            tag_len: 16,
        })),
        encrypt: true,
        data: b"data".to_vec(),
    }
}

#[tokio::test]
async fn pins_keys_and_lifecycle_errors_keep_their_ckr_codes() {
    let dir = tempfile::tempdir().unwrap();
    let kms = service(&dir, CallLimits::default());
    let p11 = Pkcs11Service::new(kms.clone());
    let serial = p11
        .init_token(Request::new(pb::P11InitTokenRequest {
            existing: None,
            label: "svc".into(),
            so_pin: b"so-pin-1".to_vec(),
        }))
        .await
        .unwrap()
        .into_inner()
        .serial;
    let login = |pin: &[u8]| pb::P11LoginRequest {
        token: serial.clone(),
        user: wire::user_to_wire(hsm_core::pkcs11::UserKind::User),
        pin: pin.to_vec(),
    };
    let err = p11.login(Request::new(login(b"user-1"))).await.unwrap_err();
    assert_eq!(ckr(err), CKR_USER_PIN_NOT_INITIALIZED);
    p11.init_pin(Request::new(pb::P11InitPinRequest {
        token: serial.clone(),
        pin: b"user-1".to_vec(),
    }))
    .await
    .unwrap();
    let err = p11
        .login(Request::new(login(b"wrong-1")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    assert_eq!(ckr(err), CKR_PIN_INCORRECT);
    p11.login(Request::new(login(b"user-1"))).await.unwrap();

    let key = p11
        .generate_secret_key(Request::new(pb::P11GenerateSecretKeyRequest {
            token_label: Some("svc".into()),
            aes: true,
            len: 32,
            extractable: false,
            readable: false,
        }))
        .await
        .unwrap()
        .into_inner();
    let out = p11.aes(Request::new(gcm(&key))).await.unwrap().into_inner();
    assert_eq!(out.data.len(), 4 + 16);
    // Beyond the inline size the call runs on the crypto pool, alike.
    let mut big = gcm(&key);
    big.data = vec![0x5a; MAX_INLINE_INPUT + 1];
    let out = p11.aes(Request::new(big)).await.unwrap().into_inner();
    assert_eq!(out.data.len(), MAX_INLINE_INPUT + 1 + 16);
    assert_eq!(symmetric_lane(MAX_INLINE_INPUT), Lane::Inline);
    assert_eq!(symmetric_lane(MAX_INLINE_INPUT + 1), Lane::Fast);

    // Disabled over the KMS API: the PKCS#11 call gets its CKR code.
    let Some(pb::p11_key_handle::Kind::Stored(key_id)) = key.kind.clone() else {
        panic!("a token key has a KMS key id");
    };
    kms.disable_key(Request::new(pb::DisableKeyRequest { key_id }))
        .await
        .unwrap();
    let err = p11.aes(Request::new(gcm(&key))).await.unwrap_err();
    assert_eq!(ckr(err), CKR_KEY_FUNCTION_NOT_PERMITTED);

    // Malformed requests are the caller's error, not the daemon's.
    let mut no_key = gcm(&key);
    no_key.key = None;
    let err = p11.aes(Request::new(no_key)).await.unwrap_err();
    assert_eq!(ckr(err), CKR_ARGUMENTS_BAD);
    let err = p11
        .generate_random(Request::new(pb::P11GenerateRandomRequest { len: 2 << 20 }))
        .await
        .unwrap_err();
    assert_eq!(ckr(err), CKR_ARGUMENTS_BAD);
}

#[tokio::test]
async fn the_daemons_call_limit_applies_and_reads_as_device_memory() {
    let dir = tempfile::tempdir().unwrap();
    let limits = CallLimits {
        max_in_flight: 0,
        ..CallLimits::default()
    };
    let p11 = Pkcs11Service::new(service(&dir, limits));
    let err = p11
        .tokens(Request::new(pb::P11TokensRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted);
    assert_eq!(error_from_status(&err).rv(), CKR_DEVICE_MEMORY);
}
