//! HMAC keys: generation (ring's system random) and HMAC-SHA-224/256/384/512
//! (aws-lc-rs: ring has no SHA-224), each spec with exactly its own
//! algorithm as in KMS.

use aws_lc_rs::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::{crypto_failure, mac_algorithms, malformed_key, MAX_MESSAGE_LEN};
use crate::error::{Error, Result};
use crate::types::{KeySpec, MacAlgorithm};

/// The key length in bytes of an HMAC spec (its bits / 8).
pub(super) fn key_len(spec: KeySpec) -> Result<usize> {
    match spec {
        KeySpec::Hmac224 => Ok(28),
        KeySpec::Hmac256 => Ok(32),
        KeySpec::Hmac384 => Ok(48),
        KeySpec::Hmac512 => Ok(64),
        other => Err(Error::Internal(format!("{other} is not an HMAC key spec"))),
    }
}

/// Generates an HMAC secret of the spec's length.
pub(super) fn generate(spec: KeySpec) -> Result<Zeroizing<Vec<u8>>> {
    let mut secret = Zeroizing::new(vec![0u8; key_len(spec)?]);
    SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| crypto_failure("random generation"))?;
    Ok(secret)
}

/// The keyed HMAC for `spec` and `algorithm`, after checking the pair fits,
/// the secret has the spec's length and the message is 1 to 4096 bytes.
fn mac_key(
    spec: KeySpec,
    secret: &[u8],
    algorithm: MacAlgorithm,
    message: &[u8],
) -> Result<hmac::Key> {
    if !spec.is_hmac() || !mac_algorithms(spec).contains(&algorithm) {
        return Err(Error::InvalidKeyUsage(format!(
            "MAC algorithm {algorithm} is not valid for a {spec} key"
        )));
    }
    if message.is_empty() || message.len() > MAX_MESSAGE_LEN {
        return Err(Error::Validation(format!(
            "a MAC message must be 1 to {MAX_MESSAGE_LEN} bytes, got {}",
            message.len()
        )));
    }
    if secret.len() != key_len(spec)? {
        // A PKCS#11 generic secret of another length (its tag
        // pkcs11:value_len says so): usable through PKCS#11 only.
        if (1..=512).contains(&secret.len()) {
            return Err(Error::InvalidKeyUsage(format!(
                "this {spec} key holds a PKCS#11 generic secret of {} bytes; \
                 it computes MACs through PKCS#11 only",
                secret.len()
            )));
        }
        return Err(malformed_key(spec));
    }
    let library_algorithm = match algorithm {
        MacAlgorithm::HmacSha224 => hmac::HMAC_SHA224,
        MacAlgorithm::HmacSha256 => hmac::HMAC_SHA256,
        MacAlgorithm::HmacSha384 => hmac::HMAC_SHA384,
        MacAlgorithm::HmacSha512 => hmac::HMAC_SHA512,
    };
    Ok(hmac::Key::new(library_algorithm, secret))
}

/// HMAC of `message`.
pub(super) fn generate_mac(
    spec: KeySpec,
    secret: &[u8],
    algorithm: MacAlgorithm,
    message: &[u8],
) -> Result<Vec<u8>> {
    let key = mac_key(spec, secret, algorithm, message)?;
    Ok(hmac::sign(&key, message).as_ref().to_vec())
}

/// Whether `mac` is the HMAC of `message`, compared in constant time
/// (`CRYPTO_memcmp` via `hmac::verify`); a MAC of the wrong length is
/// simply not valid.
pub(super) fn verify_mac(
    spec: KeySpec,
    secret: &[u8],
    algorithm: MacAlgorithm,
    message: &[u8],
    mac: &[u8],
) -> Result<bool> {
    let key = mac_key(spec, secret, algorithm, message)?;
    Ok(hmac::verify(&key, message, mac).is_ok())
}
