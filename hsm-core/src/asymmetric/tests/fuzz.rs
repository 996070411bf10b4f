//! Property tests: arbitrary signatures, ciphertexts, MACs, messages and
//! key material never panic and never pass as valid.

use proptest::prelude::*;

use super::*;
use crate::types::EncryptionAlgorithm;

/// A signing spec and one of its algorithms, by index.
fn spec_and_algorithm(index: usize) -> (KeySpec, SigningAlgorithm) {
    let pairs: Vec<(KeySpec, SigningAlgorithm)> = SIGNING_SPECS
        .iter()
        .flat_map(|&spec| signing_algorithms(spec).iter().map(move |&a| (spec, a)))
        .collect();
    pairs[index % pairs.len()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_signatures_never_verify(
        index in 0usize..64,
        message in proptest::collection::vec(any::<u8>(), 1..300),
        signature in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let (spec, algorithm) = spec_and_algorithm(index);
        let valid = verify(spec, key(spec), algorithm, &message, MessageType::Raw, &signature);
        prop_assert!(!valid.unwrap());
    }

    #[test]
    fn arbitrary_digests_either_sign_or_are_validation(
        index in 0usize..64,
        digest in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let (spec, algorithm) = spec_and_algorithm(index);
        match sign(spec, key(spec), algorithm, &digest, MessageType::Digest) {
            Ok(signature) => {
                let ok = verify(spec, key(spec), algorithm, &digest, MessageType::Digest, &signature);
                prop_assert!(ok.unwrap());
            }
            Err(error) => prop_assert_eq!(error.kms_name(), "ValidationException"),
        }
    }

    #[test]
    fn arbitrary_ciphertexts_are_invalid_ciphertext(
        ciphertext in proptest::collection::vec(any::<u8>(), 0..600),
        sha256 in any::<bool>(),
    ) {
        let algorithm = if sha256 {
            EncryptionAlgorithm::RsaesOaepSha256
        } else {
            EncryptionAlgorithm::RsaesOaepSha1
        };
        let spec = KeySpec::Rsa2048;
        let result = rsa_decrypt(spec, key(spec), algorithm, &ciphertext);
        prop_assert_eq!(kind(result), "InvalidCiphertextException");
    }

    #[test]
    fn arbitrary_macs_never_verify(
        mac in proptest::collection::vec(any::<u8>(), 0..100),
        message in proptest::collection::vec(any::<u8>(), 1..100),
    ) {
        let (spec, algorithm) = (KeySpec::Hmac512, MacAlgorithm::HmacSha512);
        prop_assert!(!verify_mac(spec, &[0x11; 64], algorithm, &message, &mac).unwrap());
    }

    #[test]
    fn arbitrary_key_material_is_an_internal_error(
        index in 0usize..64,
        material in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let (spec, algorithm) = spec_and_algorithm(index);
        let result = sign(spec, &material, algorithm, b"m", MessageType::Raw);
        prop_assert_eq!(kind(result), "KMSInternalException");
        prop_assert_eq!(kind(public_key_der(spec, &material)), "KMSInternalException");
    }
}
