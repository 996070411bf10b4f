//! RSA-OAEP: round trips, the KMS size limits and invalid ciphertexts.

use super::*;
use crate::types::{EncryptionAlgorithm as E, KeyUsage};

const RSA_SPECS: [(KeySpec, usize); 3] = [
    (KeySpec::Rsa2048, 256),
    (KeySpec::Rsa3072, 384),
    (KeySpec::Rsa4096, 512),
];

#[test]
fn encryption_algorithms_follow_kms() {
    let rsa = encryption_algorithms(KeySpec::Rsa2048, KeyUsage::EncryptDecrypt);
    assert_eq!(rsa, &[E::RsaesOaepSha1, E::RsaesOaepSha256]);
    assert!(encryption_algorithms(KeySpec::Rsa2048, KeyUsage::SignVerify).is_empty());
    assert!(encryption_algorithms(KeySpec::EccNistP256, KeyUsage::EncryptDecrypt).is_empty());
    let symmetric = encryption_algorithms(KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt);
    assert_eq!(symmetric, &[E::SymmetricDefault]);
}

#[test]
fn round_trip_up_to_the_oaep_limit_and_not_beyond() {
    for (spec, k) in RSA_SPECS {
        for (algorithm, overhead) in [(E::RsaesOaepSha1, 42), (E::RsaesOaepSha256, 66)] {
            for len in [1, 32, k - overhead] {
                let plaintext: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let ciphertext = rsa_encrypt(spec, key(spec), algorithm, &plaintext).unwrap();
                assert_eq!(ciphertext.len(), k);
                let decrypted = rsa_decrypt(spec, key(spec), algorithm, &ciphertext).unwrap();
                assert_eq!(*decrypted, plaintext, "{spec} {algorithm} {len}");
            }
            for len in [0, k - overhead + 1, k, 5000] {
                let result = rsa_encrypt(spec, key(spec), algorithm, &vec![1; len]);
                assert_eq!(
                    kind(result),
                    "ValidationException",
                    "{spec} {algorithm} {len}"
                );
            }
        }
    }
}

#[test]
fn oaep_is_randomised() {
    let spec = KeySpec::Rsa2048;
    let a = rsa_encrypt(spec, key(spec), E::RsaesOaepSha256, b"same").unwrap();
    let b = rsa_encrypt(spec, key(spec), E::RsaesOaepSha256, b"same").unwrap();
    assert_ne!(a, b);
}

#[test]
fn garbage_tampered_and_misdirected_ciphertexts_are_invalid_ciphertext() {
    let spec = KeySpec::Rsa2048;
    let ciphertext = rsa_encrypt(spec, key(spec), E::RsaesOaepSha256, b"secret").unwrap();
    let mut tampered = ciphertext.clone();
    tampered[100] ^= 0x80;
    let cases: Vec<(KeySpec, &[u8], E, Vec<u8>)> = vec![
        (spec, key(spec), E::RsaesOaepSha256, vec![]),
        (spec, key(spec), E::RsaesOaepSha256, vec![0; 256]),
        (spec, key(spec), E::RsaesOaepSha256, vec![0xff; 256]),
        (spec, key(spec), E::RsaesOaepSha256, vec![0x42; 255]),
        (spec, key(spec), E::RsaesOaepSha256, vec![0x42; 100_000]),
        (
            spec,
            key(spec),
            E::RsaesOaepSha256,
            ciphertext[1..].to_vec(),
        ),
        (spec, key(spec), E::RsaesOaepSha256, tampered),
        (spec, key(spec), E::RsaesOaepSha1, ciphertext.clone()),
        (spec, key(KeySpec::Rsa2048), E::RsaesOaepSha256, {
            let other = generate(spec).unwrap();
            rsa_encrypt(spec, &other, E::RsaesOaepSha256, b"secret").unwrap()
        }),
    ];
    for (spec, material, algorithm, bad) in cases {
        let result = rsa_decrypt(spec, material, algorithm, &bad);
        assert_eq!(
            kind(result),
            "InvalidCiphertextException",
            "{} bytes",
            bad.len()
        );
    }
    let decrypted = rsa_decrypt(spec, key(spec), E::RsaesOaepSha256, &ciphertext).unwrap();
    assert_eq!(&decrypted[..], b"secret");
}

#[test]
fn non_oaep_algorithms_and_non_rsa_keys_are_invalid_key_usage() {
    let spec = KeySpec::Rsa2048;
    let result = rsa_encrypt(spec, key(spec), E::SymmetricDefault, b"m");
    assert_eq!(kind(result), "InvalidKeyUsageException");
    let result = rsa_decrypt(spec, key(spec), E::SymmetricDefault, &[0; 256]);
    assert_eq!(kind(result), "InvalidKeyUsageException");
    let p256 = KeySpec::EccNistP256;
    let result = rsa_encrypt(p256, key(p256), E::RsaesOaepSha256, b"m");
    assert_eq!(kind(result), "InvalidKeyUsageException");
    let result = rsa_decrypt(p256, key(p256), E::RsaesOaepSha1, &[0; 64]);
    assert_eq!(kind(result), "InvalidKeyUsageException");
}
