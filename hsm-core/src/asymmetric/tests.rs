//! Unit tests of the asymmetric module: round trips, KMS error semantics,
//! malformed input. Cross-checks with the openssl binary live in
//! `tests/openssl.rs`, the PKCS#11 raw variants in `tests/raw.rs`.

use std::sync::OnceLock;

use aws_lc_rs::digest;
use zeroize::Zeroizing;

use super::*;
use crate::types::{DataKeyPairSpec, KeySpec, MacAlgorithm, MessageType, SigningAlgorithm};

mod fuzz;
mod mac;
mod oaep;
mod openssl;
mod raw;

/// Every spec with a public key.
pub(super) const SIGNING_SPECS: [KeySpec; 7] = [
    KeySpec::Rsa2048,
    KeySpec::Rsa3072,
    KeySpec::Rsa4096,
    KeySpec::EccNistP256,
    KeySpec::EccNistP384,
    KeySpec::EccNistP521,
    KeySpec::EccEd25519,
];

/// Every HMAC spec.
const HMAC_SPECS: [KeySpec; 4] = [
    KeySpec::Hmac224,
    KeySpec::Hmac256,
    KeySpec::Hmac384,
    KeySpec::Hmac512,
];

/// One generated key per spec, shared by the tests (RSA generation is slow).
pub(super) fn key(spec: KeySpec) -> &'static [u8] {
    static KEYS: [OnceLock<Zeroizing<Vec<u8>>>; 12] = [const { OnceLock::new() }; 12];
    let index = KeySpec::ALL.iter().position(|s| *s == spec).unwrap();
    KEYS[index].get_or_init(|| generate(spec).unwrap())
}

/// The hash a DIGEST message for `algorithm` must be made with.
pub(super) fn hash_of(algorithm: SigningAlgorithm) -> &'static digest::Algorithm {
    signing_hash(algorithm).unwrap()
}

/// The message types `algorithm` accepts.
pub(super) fn message_types(algorithm: SigningAlgorithm) -> &'static [MessageType] {
    if algorithm == SigningAlgorithm::Ed25519Sha512 {
        &[MessageType::Raw]
    } else {
        &[MessageType::Raw, MessageType::Digest]
    }
}

/// The message to sign for a message type: the text itself, or its digest.
pub(super) fn input(
    algorithm: SigningAlgorithm,
    message_type: MessageType,
    text: &[u8],
) -> Vec<u8> {
    match message_type {
        MessageType::Raw => text.to_vec(),
        MessageType::Digest => digest::digest(hash_of(algorithm), text).as_ref().to_vec(),
        MessageType::ExternalMu => unreachable!("ML-DSA has its own tests (src/pq_tests.rs)"),
    }
}

#[test]
fn sign_verify_round_trip_for_every_spec_algorithm_and_message_type() {
    let mut checked = 0;
    for spec in SIGNING_SPECS {
        for &algorithm in signing_algorithms(spec) {
            for &message_type in message_types(algorithm) {
                let message = input(algorithm, message_type, b"attack at dawn");
                let other = input(algorithm, message_type, b"attack at dusk");
                let signature = sign(spec, key(spec), algorithm, &message, message_type).unwrap();
                assert!(
                    verify(
                        spec,
                        key(spec),
                        algorithm,
                        &message,
                        message_type,
                        &signature
                    )
                    .unwrap(),
                    "{spec} {algorithm} {message_type}"
                );
                assert!(
                    !verify(spec, key(spec), algorithm, &other, message_type, &signature).unwrap(),
                    "{spec} {algorithm} {message_type} verified another message"
                );
                checked += 1;
            }
        }
    }
    // 3 RSA specs x 6 algorithms x 2 types, 3 curves x 2 types, Ed25519 RAW.
    assert_eq!(checked, 36 + 6 + 1);
}

#[test]
fn a_digest_signature_verifies_as_a_raw_one_and_back() {
    for spec in [KeySpec::Rsa2048, KeySpec::EccNistP384, KeySpec::EccNistP521] {
        for &algorithm in signing_algorithms(spec) {
            let raw = b"the message itself".as_slice();
            let digest = input(algorithm, MessageType::Digest, raw);
            let by_digest = sign(spec, key(spec), algorithm, &digest, MessageType::Digest).unwrap();
            assert!(verify(
                spec,
                key(spec),
                algorithm,
                raw,
                MessageType::Raw,
                &by_digest
            )
            .unwrap());
            let by_raw = sign(spec, key(spec), algorithm, raw, MessageType::Raw).unwrap();
            assert!(verify(
                spec,
                key(spec),
                algorithm,
                &digest,
                MessageType::Digest,
                &by_raw
            )
            .unwrap());
        }
    }
}

#[test]
fn signing_algorithms_follow_kms() {
    use SigningAlgorithm as S;
    for spec in [KeySpec::Rsa2048, KeySpec::Rsa3072, KeySpec::Rsa4096] {
        let mut algorithms = signing_algorithms(spec).to_vec();
        algorithms.sort();
        assert_eq!(algorithms, S::ALL[..6].to_vec());
    }
    assert_eq!(signing_algorithms(KeySpec::EccNistP256), &[S::EcdsaSha256]);
    assert_eq!(signing_algorithms(KeySpec::EccNistP384), &[S::EcdsaSha384]);
    assert_eq!(signing_algorithms(KeySpec::EccNistP521), &[S::EcdsaSha512]);
    assert_eq!(signing_algorithms(KeySpec::EccEd25519), &[S::Ed25519Sha512]);
    for spec in HMAC_SPECS.into_iter().chain([KeySpec::SymmetricDefault]) {
        assert!(signing_algorithms(spec).is_empty(), "{spec}");
    }
}

#[test]
fn an_algorithm_that_does_not_fit_the_key_is_invalid_key_usage() {
    use SigningAlgorithm as S;
    let cases = [
        (KeySpec::Rsa2048, S::EcdsaSha256),
        (KeySpec::Rsa3072, S::Ed25519Sha512),
        (KeySpec::EccNistP256, S::EcdsaSha384),
        (KeySpec::EccNistP256, S::EcdsaSha512),
        (KeySpec::EccNistP384, S::EcdsaSha256),
        (KeySpec::EccNistP521, S::EcdsaSha384),
        (KeySpec::EccNistP256, S::RsassaPssSha256),
        (KeySpec::EccNistP384, S::Ed25519Sha512),
        (KeySpec::EccEd25519, S::EcdsaSha512),
        (KeySpec::EccEd25519, S::RsassaPkcs1V15Sha512),
    ];
    for (spec, algorithm) in cases {
        let message = b"message";
        let signed = sign(spec, key(spec), algorithm, message, MessageType::Raw);
        assert_eq!(
            kind(signed),
            "InvalidKeyUsageException",
            "{spec} {algorithm}"
        );
        let verified = verify(
            spec,
            key(spec),
            algorithm,
            message,
            MessageType::Raw,
            &[0; 64],
        );
        assert_eq!(
            kind(verified),
            "InvalidKeyUsageException",
            "{spec} {algorithm}"
        );
    }
}

#[test]
fn hmac_and_symmetric_specs_do_not_sign() {
    for spec in [KeySpec::Hmac256, KeySpec::SymmetricDefault] {
        let result = sign(
            spec,
            &[7; 32],
            SigningAlgorithm::EcdsaSha256,
            b"m",
            MessageType::Raw,
        );
        assert_eq!(kind(result), "InvalidKeyUsageException");
        assert_eq!(
            kind(public_key_der(spec, &[7; 32])),
            "InvalidKeyUsageException"
        );
    }
    assert_eq!(
        kind(generate(KeySpec::SymmetricDefault)),
        "UnsupportedOperationException"
    );
}

#[test]
fn raw_messages_are_one_to_4096_bytes() {
    for spec in [KeySpec::Rsa2048, KeySpec::EccNistP256, KeySpec::EccEd25519] {
        let algorithm = signing_algorithms(spec)[0];
        let largest = vec![0x5a; MAX_MESSAGE_LEN];
        let signature = sign(spec, key(spec), algorithm, &largest, MessageType::Raw).unwrap();
        assert!(verify(
            spec,
            key(spec),
            algorithm,
            &largest,
            MessageType::Raw,
            &signature
        )
        .unwrap());
        for bad in [vec![], vec![0x5a; MAX_MESSAGE_LEN + 1], vec![0; 1 << 20]] {
            let signed = sign(spec, key(spec), algorithm, &bad, MessageType::Raw);
            assert_eq!(
                kind(signed),
                "ValidationException",
                "{spec} {} bytes",
                bad.len()
            );
            let verified = verify(
                spec,
                key(spec),
                algorithm,
                &bad,
                MessageType::Raw,
                &signature,
            );
            assert_eq!(
                kind(verified),
                "ValidationException",
                "{spec} {} bytes",
                bad.len()
            );
        }
    }
}

#[test]
fn a_digest_of_the_wrong_length_is_validation() {
    for spec in SIGNING_SPECS {
        for &algorithm in signing_algorithms(spec) {
            if algorithm == SigningAlgorithm::Ed25519Sha512 {
                continue;
            }
            let len = hash_of(algorithm).output_len();
            for bad_len in [0, 1, 20, len - 1, len + 1, 4096] {
                let digest = vec![1u8; bad_len];
                let signed = sign(spec, key(spec), algorithm, &digest, MessageType::Digest);
                assert_eq!(kind(signed), "ValidationException", "{algorithm} {bad_len}");
                let verified = verify(
                    spec,
                    key(spec),
                    algorithm,
                    &digest,
                    MessageType::Digest,
                    &[1; 64],
                );
                assert_eq!(
                    kind(verified),
                    "ValidationException",
                    "{algorithm} {bad_len}"
                );
            }
        }
    }
}

#[test]
fn ed25519_refuses_digest_messages() {
    let spec = KeySpec::EccEd25519;
    let algorithm = SigningAlgorithm::Ed25519Sha512;
    let digest = digest::digest(&digest::SHA512, b"m");
    let signed = sign(
        spec,
        key(spec),
        algorithm,
        digest.as_ref(),
        MessageType::Digest,
    );
    assert_eq!(kind(signed), "ValidationException");
    let verified = verify(
        spec,
        key(spec),
        algorithm,
        digest.as_ref(),
        MessageType::Digest,
        &[0; 64],
    );
    assert_eq!(kind(verified), "ValidationException");
}

#[test]
fn a_tampered_signature_does_not_verify() {
    for spec in SIGNING_SPECS {
        for &algorithm in signing_algorithms(spec) {
            let signature = sign(spec, key(spec), algorithm, b"payload", MessageType::Raw).unwrap();
            for position in [0, signature.len() / 2, signature.len() - 1] {
                let mut tampered = signature.clone();
                tampered[position] ^= 0x01;
                let valid = verify(
                    spec,
                    key(spec),
                    algorithm,
                    b"payload",
                    MessageType::Raw,
                    &tampered,
                );
                assert!(!valid.unwrap(), "{spec} {algorithm} byte {position}");
            }
        }
    }
}

#[test]
fn truncated_extended_and_garbage_signatures_do_not_verify() {
    for spec in SIGNING_SPECS {
        for &algorithm in signing_algorithms(spec) {
            let signature = sign(spec, key(spec), algorithm, b"payload", MessageType::Raw).unwrap();
            let mut extended = signature.clone();
            extended.push(0);
            let garbage: Vec<Vec<u8>> = vec![
                vec![],
                signature[..signature.len() - 1].to_vec(),
                signature[..1].to_vec(),
                extended,
                vec![0; signature.len()],
                vec![0xff; signature.len()],
                vec![0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01],
                vec![0x30, 0x81, 0xff, 0x02],
                (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect(),
            ];
            for bad in garbage {
                let valid = verify(
                    spec,
                    key(spec),
                    algorithm,
                    b"payload",
                    MessageType::Raw,
                    &bad,
                );
                assert!(!valid.unwrap(), "{spec} {algorithm} {} bytes", bad.len());
            }
        }
    }
}

#[test]
fn a_signature_by_another_key_does_not_verify() {
    for spec in [KeySpec::Rsa2048, KeySpec::EccNistP256, KeySpec::EccEd25519] {
        let other = generate(spec).unwrap();
        let algorithm = signing_algorithms(spec)[0];
        let signature = sign(spec, &other, algorithm, b"m", MessageType::Raw).unwrap();
        assert!(verify(spec, &other, algorithm, b"m", MessageType::Raw, &signature).unwrap());
        assert!(!verify(
            spec,
            key(spec),
            algorithm,
            b"m",
            MessageType::Raw,
            &signature
        )
        .unwrap());
    }
}

#[test]
fn ecdsa_signatures_are_der_and_others_have_fixed_sizes() {
    for (spec, size) in [
        (KeySpec::Rsa2048, 256),
        (KeySpec::Rsa3072, 384),
        (KeySpec::Rsa4096, 512),
        (KeySpec::EccEd25519, 64),
    ] {
        for &algorithm in signing_algorithms(spec) {
            let signature = sign(spec, key(spec), algorithm, b"m", MessageType::Raw).unwrap();
            assert_eq!(signature.len(), size, "{spec} {algorithm}");
        }
    }
    for (spec, max) in [
        (KeySpec::EccNistP256, 72),
        (KeySpec::EccNistP384, 104),
        (KeySpec::EccNistP521, 139),
    ] {
        let algorithm = signing_algorithms(spec)[0];
        let signature = sign(spec, key(spec), algorithm, b"m", MessageType::Raw).unwrap();
        // SEQUENCE { INTEGER r, INTEGER s }
        assert_eq!(signature[0], 0x30, "{spec}");
        assert!(signature.len() <= max, "{spec}: {} bytes", signature.len());
    }
}

#[test]
fn public_keys_are_der_spki_of_the_spec() {
    // The AlgorithmIdentifier OIDs: rsaEncryption, id-ecPublicKey + curve, id-Ed25519.
    let rsa: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    let cases: [(KeySpec, &[u8]); 5] = [
        (KeySpec::Rsa2048, rsa),
        (
            KeySpec::EccNistP256,
            &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
        ),
        (KeySpec::EccNistP384, &[0x2b, 0x81, 0x04, 0x00, 0x22]),
        (KeySpec::EccNistP521, &[0x2b, 0x81, 0x04, 0x00, 0x23]),
        (KeySpec::EccEd25519, &[0x06, 0x03, 0x2b, 0x65, 0x70]),
    ];
    for (spec, oid) in cases {
        let der = public_key_der(spec, key(spec)).unwrap();
        assert_eq!(der[0], 0x30, "{spec}");
        assert!(
            der.windows(oid.len()).any(|w| w == oid),
            "{spec} lacks its OID"
        );
        assert_eq!(der, public_key_der(spec, key(spec)).unwrap());
        assert_ne!(der, public_key_der(spec, &generate(spec).unwrap()).unwrap());
    }
    // RSA public exponent 65537: the SPKI ends with INTEGER 0x010001.
    for spec in [KeySpec::Rsa2048, KeySpec::Rsa3072, KeySpec::Rsa4096] {
        let der = public_key_der(spec, key(spec)).unwrap();
        assert!(der.ends_with(&[0x02, 0x03, 0x01, 0x00, 0x01]), "{spec}");
    }
    assert_eq!(
        public_key_der(KeySpec::EccEd25519, key(KeySpec::EccEd25519))
            .unwrap()
            .len(),
        44
    );
}

#[test]
fn malformed_or_mismatched_key_material_is_internal_and_names_no_bytes() {
    let p256 = key(KeySpec::EccNistP256);
    let cases: [(KeySpec, &[u8]); 6] = [
        (KeySpec::Rsa2048, &[0xde, 0xad, 0xbe, 0xef]),
        (KeySpec::Rsa3072, key(KeySpec::Rsa2048)),
        (KeySpec::Rsa2048, p256),
        (KeySpec::EccNistP384, p256),
        (KeySpec::EccEd25519, p256),
        (KeySpec::EccNistP521, &p256[..p256.len() - 3]),
    ];
    for (spec, material) in cases {
        let algorithm = signing_algorithms(spec)[0];
        let error = sign(spec, material, algorithm, b"m", MessageType::Raw).unwrap_err();
        assert_eq!(error.kms_name(), "KMSInternalException", "{spec}");
        let text = format!("{error} {error:?}");
        assert!(
            !text.contains("dead") && !text.contains("222, 173"),
            "{text}"
        );
        assert!(!text.contains(&format!("{:?}", &material[..4])), "{text}");
        assert_eq!(kind(public_key_der(spec, material)), "KMSInternalException");
    }
}

#[test]
fn parsed_private_key_debug_is_redacted() {
    let parsed = PrivateKey::from_pkcs8(KeySpec::EccNistP256, key(KeySpec::EccNistP256)).unwrap();
    let text = format!("{parsed:?}");
    assert_eq!(text, "PrivateKey(ECC_NIST_P256 <redacted>)");
    assert_eq!(parsed.spec(), KeySpec::EccNistP256);
}

#[test]
fn parsed_private_keys_sign_like_the_free_functions_and_are_send_sync() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    for spec in SIGNING_SPECS {
        let parsed = PrivateKey::from_pkcs8(spec, key(spec)).unwrap();
        send_sync(&parsed);
        assert_eq!(
            parsed.public_key_der().unwrap(),
            public_key_der(spec, key(spec)).unwrap()
        );
        let algorithm = signing_algorithms(spec)[0];
        let signature = parsed.sign(algorithm, b"m", MessageType::Raw).unwrap();
        assert!(verify(
            spec,
            key(spec),
            algorithm,
            b"m",
            MessageType::Raw,
            &signature
        )
        .unwrap());
        assert!(!parsed
            .verify(algorithm, b"n", MessageType::Raw, &signature)
            .unwrap());
        let misfit = if spec == KeySpec::EccNistP384 {
            SigningAlgorithm::EcdsaSha256
        } else {
            SigningAlgorithm::EcdsaSha384
        };
        let wrong = parsed.sign(misfit, b"m", MessageType::Raw);
        assert_eq!(kind(wrong), "InvalidKeyUsageException", "{spec}");
        let empty = parsed.sign(algorithm, b"", MessageType::Raw);
        assert_eq!(kind(empty), "ValidationException", "{spec}");
    }
}

#[test]
fn generated_keys_are_distinct() {
    for spec in [KeySpec::EccNistP256, KeySpec::EccEd25519, KeySpec::Hmac384] {
        assert_ne!(*generate(spec).unwrap(), *generate(spec).unwrap(), "{spec}");
    }
}

#[test]
fn data_key_pairs_parse_as_their_spec_and_sign() {
    for &spec in DataKeyPairSpec::ALL {
        let key_spec = KeySpec::parse(spec.as_str()).unwrap();
        let (private, public) = generate_data_key_pair(spec).unwrap();
        assert_eq!(
            public,
            public_key_der(key_spec, &private).unwrap(),
            "{spec}"
        );
        let algorithm = signing_algorithms(key_spec)[0];
        let signature = sign(key_spec, &private, algorithm, b"m", MessageType::Raw).unwrap();
        assert!(verify(
            key_spec,
            &private,
            algorithm,
            b"m",
            MessageType::Raw,
            &signature
        )
        .unwrap());
        // Only the RSA pair parses as RSA, only the P-256 pair as P-256, ...
        let wrong = if key_spec.is_rsa() {
            KeySpec::EccNistP256
        } else {
            KeySpec::Rsa2048
        };
        assert_eq!(
            kind(public_key_der(wrong, &private)),
            "KMSInternalException"
        );
    }
}

/// The KMS exception name of a failed call; panics if the call succeeded.
pub(super) fn kind<T>(result: crate::error::Result<T>) -> &'static str {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(error) => error.kms_name(),
    }
}
