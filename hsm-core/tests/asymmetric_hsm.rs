//! Asymmetric and HMAC keys through the public `Hsm` API (issue 2): every
//! spec in every key state, usage and algorithm mismatches, no rotation,
//! public keys that openssl accepts, and no private material in plaintext
//! in the data directory.

use std::process::Command;
use std::sync::Arc;

use hsm_core::{
    CreateKeyRequest, EncryptionAlgorithm, EncryptionContext, Hsm, HsmOptions, KdfParams, KeySpec,
    KeyState, KeyUsage, MacAlgorithm, ManualClock, MessageType, SecretString, SigningAlgorithm,
};
use tempfile::TempDir;

/// A fresh store with cheap Argon2 parameters.
struct Store {
    hsm: Hsm,
    _tmp: TempDir,
}

fn store() -> Store {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let options = HsmOptions {
        kdf: KdfParams {
            memory_kib: 8192,
            iterations: 1,
            parallelism: 1,
        },
        clock: Arc::new(ManualClock::new(1_700_000_000)),
        ..Default::default()
    };
    let hsm = Hsm::init(&dir, &SecretString::from("asymmetric tests"), options).unwrap();
    Store { hsm, _tmp: tmp }
}

fn create(hsm: &Hsm, spec: KeySpec, usage: KeyUsage) -> hsm_core::Result<String> {
    let request = CreateKeyRequest {
        key_spec: Some(spec),
        key_usage: Some(usage),
        ..Default::default()
    };
    hsm.create_key(request).map(|meta| meta.key_id)
}

/// The KMS exception name of a failed call; panics if it succeeded.
fn kind<T>(result: hsm_core::Result<T>) -> &'static str {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(error) => error.kms_name(),
    }
}

/// The one signing algorithm used per spec in the state tests.
fn first_algorithm(spec: KeySpec) -> SigningAlgorithm {
    match spec {
        KeySpec::EccNistP256 => SigningAlgorithm::EcdsaSha256,
        KeySpec::EccNistP384 => SigningAlgorithm::EcdsaSha384,
        KeySpec::EccNistP521 => SigningAlgorithm::EcdsaSha512,
        KeySpec::EccEd25519 => SigningAlgorithm::Ed25519Sha512,
        _ => SigningAlgorithm::RsassaPssSha256,
    }
}

fn mac_algorithm(spec: KeySpec) -> MacAlgorithm {
    match spec {
        KeySpec::Hmac224 => MacAlgorithm::HmacSha224,
        KeySpec::Hmac256 => MacAlgorithm::HmacSha256,
        KeySpec::Hmac384 => MacAlgorithm::HmacSha384,
        _ => MacAlgorithm::HmacSha512,
    }
}

const SIGNING_SPECS: [KeySpec; 7] = [
    KeySpec::Rsa2048,
    KeySpec::Rsa3072,
    KeySpec::Rsa4096,
    KeySpec::EccNistP256,
    KeySpec::EccNistP384,
    KeySpec::EccNistP521,
    KeySpec::EccEd25519,
];

const HMAC_SPECS: [KeySpec; 4] = [
    KeySpec::Hmac224,
    KeySpec::Hmac256,
    KeySpec::Hmac384,
    KeySpec::Hmac512,
];

#[test]
fn every_signing_spec_signs_and_verifies_with_each_algorithm() {
    let s = store();
    for spec in SIGNING_SPECS {
        let key = create(&s.hsm, spec, KeyUsage::SignVerify).unwrap();
        let meta = s.hsm.describe_key(&key).unwrap();
        assert_eq!(
            (meta.key_spec, meta.key_usage),
            (spec, KeyUsage::SignVerify)
        );
        assert!(meta.encryption_algorithms.is_empty() && meta.mac_algorithms.is_empty());
        let public = s.hsm.get_public_key(&key).unwrap();
        assert_eq!(public.signing_algorithms, meta.signing_algorithms, "{spec}");
        assert!(public.encryption_algorithms.is_empty());
        assert_eq!(public.public_key[0], 0x30, "{spec}: DER SPKI");
        assert!(meta.signing_algorithms.contains(&first_algorithm(spec)));
        for &algorithm in &meta.signing_algorithms {
            let out = s
                .hsm
                .sign(&key, b"message", MessageType::Raw, algorithm)
                .unwrap();
            assert_eq!(out.signing_algorithm, algorithm);
            assert_eq!(out.key_id, meta.arn);
            let ok = s.hsm.verify(
                &key,
                b"message",
                MessageType::Raw,
                &out.signature,
                algorithm,
            );
            assert!(ok.unwrap().signature_valid, "{spec} {algorithm}");
            let mut tampered = out.signature.clone();
            tampered[out.signature.len() / 2] ^= 0x01;
            let bad = s
                .hsm
                .verify(&key, b"message", MessageType::Raw, &tampered, algorithm);
            assert_eq!(
                kind(bad),
                "KMSInvalidSignatureException",
                "{spec} {algorithm}"
            );
            let other = s.hsm.verify(
                &key,
                b"massage",
                MessageType::Raw,
                &out.signature,
                algorithm,
            );
            assert_eq!(
                kind(other),
                "KMSInvalidSignatureException",
                "{spec} {algorithm}"
            );
        }
    }
}

#[test]
fn digests_wrong_algorithms_and_oversized_messages_are_refused() {
    let s = store();
    let p256 = create(&s.hsm, KeySpec::EccNistP256, KeyUsage::SignVerify).unwrap();
    let rsa = create(&s.hsm, KeySpec::Rsa2048, KeyUsage::SignVerify).unwrap();
    let sign = |key: &str, message: &[u8], message_type, algorithm| {
        s.hsm.sign(key, message, message_type, algorithm)
    };
    let digest = [7u8; 32];
    let signature = sign(
        &p256,
        &digest,
        MessageType::Digest,
        SigningAlgorithm::EcdsaSha256,
    )
    .unwrap()
    .signature;
    let verified = s.hsm.verify(
        &p256,
        &digest,
        MessageType::Digest,
        &signature,
        SigningAlgorithm::EcdsaSha256,
    );
    assert!(verified.unwrap().signature_valid);
    let cases = [
        (
            &p256,
            31,
            MessageType::Digest,
            SigningAlgorithm::EcdsaSha256,
            "ValidationException",
        ),
        (
            &rsa,
            33,
            MessageType::Digest,
            SigningAlgorithm::RsassaPssSha256,
            "ValidationException",
        ),
        (
            &p256,
            4097,
            MessageType::Raw,
            SigningAlgorithm::EcdsaSha256,
            "ValidationException",
        ),
        (
            &p256,
            0,
            MessageType::Raw,
            SigningAlgorithm::EcdsaSha256,
            "ValidationException",
        ),
        (
            &p256,
            10,
            MessageType::Raw,
            SigningAlgorithm::EcdsaSha384,
            "InvalidKeyUsageException",
        ),
        (
            &rsa,
            10,
            MessageType::Raw,
            SigningAlgorithm::EcdsaSha256,
            "InvalidKeyUsageException",
        ),
        (
            &p256,
            10,
            MessageType::Raw,
            SigningAlgorithm::RsassaPssSha256,
            "InvalidKeyUsageException",
        ),
    ];
    for (key, len, message_type, algorithm, expected) in cases {
        let message = vec![1u8; len];
        let result = sign(key, &message, message_type, algorithm);
        assert_eq!(kind(result), expected, "{algorithm} {message_type} {len}");
        let result = s
            .hsm
            .verify(key, &message, message_type, &signature, algorithm);
        assert_eq!(
            kind(result),
            expected,
            "verify {algorithm} {message_type} {len}"
        );
    }
    for garbage in [vec![], vec![0x30], vec![0; 72], vec![0xff; 5000]] {
        let result = s.hsm.verify(
            &p256,
            &digest,
            MessageType::Digest,
            &garbage,
            SigningAlgorithm::EcdsaSha256,
        );
        assert_eq!(
            kind(result),
            "KMSInvalidSignatureException",
            "{} bytes",
            garbage.len()
        );
    }
}

#[test]
fn openssl_verifies_a_signature_against_get_public_key() {
    let s = store();
    for (spec, algorithm) in [
        (KeySpec::Rsa2048, SigningAlgorithm::RsassaPkcs1V15Sha256),
        (KeySpec::EccNistP384, SigningAlgorithm::EcdsaSha384),
    ] {
        let key = create(&s.hsm, spec, KeyUsage::SignVerify).unwrap();
        let signature = s
            .hsm
            .sign(&key, b"openssl", MessageType::Raw, algorithm)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let public = s.hsm.get_public_key(&key).unwrap().public_key;
        std::fs::write(dir.path().join("pub.der"), public).unwrap();
        std::fs::write(dir.path().join("msg"), b"openssl").unwrap();
        std::fs::write(dir.path().join("sig"), &signature.signature).unwrap();
        let hash = if spec.is_rsa() { "-sha256" } else { "-sha384" };
        let status = Command::new("/usr/bin/openssl")
            .args(["dgst", hash, "-keyform", "DER", "-verify", "pub.der"])
            .args(["-signature", "sig", "msg"])
            .current_dir(dir.path())
            .output()
            .unwrap()
            .status;
        assert!(status.success(), "openssl rejected {spec} {algorithm}");
    }
}

#[test]
fn rsa_encrypt_decrypt_keys_use_oaep_only() {
    let s = store();
    let ctx = EncryptionContext::new();
    let key = create(&s.hsm, KeySpec::Rsa3072, KeyUsage::EncryptDecrypt).unwrap();
    let public = s.hsm.get_public_key(&key).unwrap();
    let oaep = [
        EncryptionAlgorithm::RsaesOaepSha1,
        EncryptionAlgorithm::RsaesOaepSha256,
    ];
    assert_eq!(public.encryption_algorithms, oaep);
    assert!(public.signing_algorithms.is_empty());
    for (algorithm, max) in [(oaep[0], 384 - 42), (oaep[1], 384 - 66)] {
        let plaintext = vec![0x42; max];
        let out = s
            .hsm
            .encrypt(&key, &plaintext, &ctx, Some(algorithm))
            .unwrap();
        let back = s
            .hsm
            .decrypt(&out.ciphertext_blob, &ctx, Some(&key), Some(algorithm))
            .unwrap();
        assert_eq!(*back.plaintext, plaintext);
        let too_big = s
            .hsm
            .encrypt(&key, &vec![1; max + 1], &ctx, Some(algorithm));
        assert_eq!(kind(too_big), "ValidationException", "{algorithm}");
        let garbage = s
            .hsm
            .decrypt(&[0x11; 384], &ctx, Some(&key), Some(algorithm));
        assert_eq!(kind(garbage), "InvalidCiphertextException");
    }
    let signed = s.hsm.sign(
        &key,
        b"m",
        MessageType::Raw,
        SigningAlgorithm::RsassaPssSha256,
    );
    assert_eq!(kind(signed), "InvalidKeyUsageException");
    let signer = create(&s.hsm, KeySpec::Rsa2048, KeyUsage::SignVerify).unwrap();
    let encrypted = s.hsm.encrypt(&signer, b"m", &ctx, Some(oaep[1]));
    assert_eq!(kind(encrypted), "InvalidKeyUsageException");
}

#[test]
fn hmac_keys_generate_and_verify_only_their_own_algorithm() {
    let s = store();
    for spec in HMAC_SPECS {
        let key = create(&s.hsm, spec, KeyUsage::GenerateVerifyMac).unwrap();
        let own = mac_algorithm(spec);
        assert_eq!(s.hsm.describe_key(&key).unwrap().mac_algorithms, [own]);
        let mac = s.hsm.generate_mac(&key, b"message", own).unwrap().mac;
        assert_eq!(mac.len() * 8, spec.as_str()[5..].parse::<usize>().unwrap());
        s.hsm.verify_mac(&key, b"message", &mac, own).unwrap();
        let mut tampered = mac.clone();
        tampered[0] ^= 0x80;
        for bad in [tampered, mac[1..].to_vec(), vec![0; 65]] {
            let result = s.hsm.verify_mac(&key, b"message", &bad, own);
            assert_eq!(kind(result), "KMSInvalidMacException", "{spec}");
        }
        for &other in MacAlgorithm::ALL.iter().filter(|a| **a != own) {
            let result = s.hsm.generate_mac(&key, b"message", other);
            assert_eq!(kind(result), "InvalidKeyUsageException", "{spec} {other}");
        }
        let long = s.hsm.generate_mac(&key, &[0; 4097], own);
        assert_eq!(kind(long), "ValidationException");
        let signed = s
            .hsm
            .sign(&key, b"m", MessageType::Raw, SigningAlgorithm::EcdsaSha256);
        assert_eq!(kind(signed), "InvalidKeyUsageException");
        assert_eq!(
            kind(s.hsm.get_public_key(&key)),
            "UnsupportedOperationException"
        );
    }
    let signer = create(&s.hsm, KeySpec::EccNistP256, KeyUsage::SignVerify).unwrap();
    let mac = s.hsm.generate_mac(&signer, b"m", MacAlgorithm::HmacSha256);
    assert_eq!(kind(mac), "InvalidKeyUsageException");
}

/// Runs each operation of a key's usage; the KMS names of the outcomes.
fn use_key(hsm: &Hsm, key: &str, spec: KeySpec, valid: &[u8]) -> Vec<&'static str> {
    let name = |result: hsm_core::Result<()>| match result {
        Ok(()) => "ok",
        Err(error) => error.kms_name(),
    };
    if spec.is_hmac() {
        let algorithm = mac_algorithm(spec);
        vec![
            name(hsm.generate_mac(key, b"m", algorithm).map(drop)),
            name(hsm.verify_mac(key, b"m", valid, algorithm).map(drop)),
        ]
    } else {
        let algorithm = first_algorithm(spec);
        vec![
            name(hsm.sign(key, b"m", MessageType::Raw, algorithm).map(drop)),
            name(
                hsm.verify(key, b"m", MessageType::Raw, valid, algorithm)
                    .map(drop),
            ),
            name(hsm.get_public_key(key).map(drop)),
        ]
    }
}

#[test]
fn every_spec_in_every_state() {
    let s = store();
    for spec in SIGNING_SPECS.into_iter().chain(HMAC_SPECS) {
        let usage = spec.default_usage();
        let usage = if spec.is_hmac() {
            usage
        } else {
            KeyUsage::SignVerify
        };
        let key = create(&s.hsm, spec, usage).unwrap();
        let valid = if spec.is_hmac() {
            s.hsm
                .generate_mac(&key, b"m", mac_algorithm(spec))
                .unwrap()
                .mac
        } else {
            let algorithm = first_algorithm(spec);
            s.hsm
                .sign(&key, b"m", MessageType::Raw, algorithm)
                .unwrap()
                .signature
        };
        let count = if spec.is_hmac() { 2 } else { 3 };
        assert_eq!(
            use_key(&s.hsm, &key, spec, &valid),
            vec!["ok"; count],
            "{spec} Enabled"
        );
        s.hsm.disable_key(&key).unwrap();
        let disabled = use_key(&s.hsm, &key, spec, &valid);
        assert_eq!(
            disabled,
            vec!["DisabledException"; count],
            "{spec} Disabled"
        );
        s.hsm.enable_key(&key).unwrap();
        assert_eq!(
            use_key(&s.hsm, &key, spec, &valid),
            vec!["ok"; count],
            "{spec} re-enabled"
        );
        s.hsm.schedule_key_deletion(&key, Some(7)).unwrap();
        assert_eq!(
            s.hsm.describe_key(&key).unwrap().key_state,
            KeyState::PendingDeletion
        );
        let pending = use_key(&s.hsm, &key, spec, &valid);
        assert_eq!(
            pending,
            vec!["KMSInvalidStateException"; count],
            "{spec} PendingDeletion"
        );
        s.hsm.cancel_key_deletion(&key).unwrap();
        s.hsm.enable_key(&key).unwrap();
        assert_eq!(
            use_key(&s.hsm, &key, spec, &valid),
            vec!["ok"; count],
            "{spec} restored"
        );
    }
}

#[test]
fn asymmetric_and_hmac_keys_do_not_rotate() {
    let s = store();
    for spec in [
        KeySpec::Rsa2048,
        KeySpec::EccNistP256,
        KeySpec::EccEd25519,
        KeySpec::Hmac256,
    ] {
        let usage = if spec.is_hmac() {
            KeyUsage::GenerateVerifyMac
        } else {
            KeyUsage::SignVerify
        };
        let key = create(&s.hsm, spec, usage).unwrap();
        let rotate = s.hsm.rotate_key_on_demand(&key);
        assert_eq!(kind(rotate), "UnsupportedOperationException", "{spec}");
        let enable = s.hsm.enable_key_rotation(&key, None);
        assert_eq!(kind(enable), "UnsupportedOperationException", "{spec}");
        assert_eq!(s.hsm.describe_key(&key).unwrap().current_key_version, 1);
    }
}

#[test]
fn a_spec_and_usage_that_do_not_fit_are_refused_at_create() {
    let s = store();
    let cases = [
        (KeySpec::EccNistP256, KeyUsage::EncryptDecrypt),
        (KeySpec::EccNistP521, KeyUsage::GenerateVerifyMac),
        (KeySpec::EccEd25519, KeyUsage::EncryptDecrypt),
        (KeySpec::Rsa2048, KeyUsage::GenerateVerifyMac),
        (KeySpec::Hmac256, KeyUsage::SignVerify),
        (KeySpec::Hmac512, KeyUsage::EncryptDecrypt),
        (KeySpec::SymmetricDefault, KeyUsage::SignVerify),
    ];
    for (spec, usage) in cases {
        assert_eq!(
            kind(create(&s.hsm, spec, usage)),
            "ValidationException",
            "{spec} {usage}"
        );
    }
    assert!(s.hsm.list_keys(None, None).unwrap().items.is_empty());
}
