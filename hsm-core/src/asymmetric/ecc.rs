//! Elliptic curves: ECDSA on NIST P-256, P-384 and P-521 (each with its
//! curve's hash, DER signatures as in KMS) and pure Ed25519.

use aws_lc_rs::digest::Digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, EcdsaVerificationAlgorithm, Ed25519KeyPair,
    KeyPair as _, UnparsedPublicKey,
};
use zeroize::Zeroizing;

use super::{crypto_failure, malformed_key};
use crate::error::{Error, Result};
use crate::types::KeySpec;

/// The DER-signature ECDSA algorithm of a NIST curve spec, with the curve's
/// hash (P-256/SHA-256, P-384/SHA-384, P-521/SHA-512).
fn asn1_signing(spec: KeySpec) -> Result<&'static EcdsaSigningAlgorithm> {
    match spec {
        KeySpec::EccNistP256 => Ok(&signature::ECDSA_P256_SHA256_ASN1_SIGNING),
        KeySpec::EccNistP384 => Ok(&signature::ECDSA_P384_SHA384_ASN1_SIGNING),
        KeySpec::EccNistP521 => Ok(&signature::ECDSA_P521_SHA512_ASN1_SIGNING),
        other => Err(Error::Internal(format!("{other} is not an ECDSA key spec"))),
    }
}

/// The DER-signature verification algorithm matching [`asn1_signing`].
pub(super) fn asn1_verification(spec: KeySpec) -> Result<&'static EcdsaVerificationAlgorithm> {
    match spec {
        KeySpec::EccNistP256 => Ok(&signature::ECDSA_P256_SHA256_ASN1),
        KeySpec::EccNistP384 => Ok(&signature::ECDSA_P384_SHA384_ASN1),
        KeySpec::EccNistP521 => Ok(&signature::ECDSA_P521_SHA512_ASN1),
        other => Err(Error::Internal(format!("{other} is not an ECDSA key spec"))),
    }
}

/// The fixed-size (r||s) ECDSA algorithm of a NIST curve spec, with the
/// curve's hash.
pub(super) fn fixed_signing(spec: KeySpec) -> Result<&'static EcdsaSigningAlgorithm> {
    match spec {
        KeySpec::EccNistP256 => Ok(&signature::ECDSA_P256_SHA256_FIXED_SIGNING),
        KeySpec::EccNistP384 => Ok(&signature::ECDSA_P384_SHA384_FIXED_SIGNING),
        KeySpec::EccNistP521 => Ok(&signature::ECDSA_P521_SHA512_FIXED_SIGNING),
        other => Err(Error::Validation(format!(
            "{other} is not an ECDSA key spec"
        ))),
    }
}

/// The fixed-size (r||s) verification algorithm matching [`fixed_signing`].
pub(super) fn fixed_verification(spec: KeySpec) -> Result<&'static EcdsaVerificationAlgorithm> {
    match spec {
        KeySpec::EccNistP256 => Ok(&signature::ECDSA_P256_SHA256_FIXED),
        KeySpec::EccNistP384 => Ok(&signature::ECDSA_P384_SHA384_FIXED),
        KeySpec::EccNistP521 => Ok(&signature::ECDSA_P521_SHA512_FIXED),
        other => Err(Error::Validation(format!(
            "{other} is not an ECDSA key spec"
        ))),
    }
}

/// Generates an ECDSA key on the spec's curve as PKCS#8 DER.
pub(super) fn generate_ecdsa(spec: KeySpec) -> Result<Zeroizing<Vec<u8>>> {
    let document = EcdsaKeyPair::generate_pkcs8(asn1_signing(spec)?, &SystemRandom::new())
        .map_err(|_| crypto_failure("ECDSA key generation"))?;
    Ok(Zeroizing::new(document.as_ref().to_vec()))
}

/// Parses a stored ECDSA key for DER signatures; the curve must be the
/// spec's.
pub(super) fn parse_ecdsa(spec: KeySpec, private_pkcs8: &[u8]) -> Result<EcdsaKeyPair> {
    parse_ecdsa_with(spec, asn1_signing(spec)?, private_pkcs8)
}

/// Parses a stored ECDSA key bound to `algorithm`.
pub(super) fn parse_ecdsa_with(
    spec: KeySpec,
    algorithm: &'static EcdsaSigningAlgorithm,
    private_pkcs8: &[u8],
) -> Result<EcdsaKeyPair> {
    EcdsaKeyPair::from_pkcs8(algorithm, private_pkcs8).map_err(|_| malformed_key(spec))
}

/// The DER SubjectPublicKeyInfo of an ECDSA key.
pub(super) fn ecdsa_public_key_der(key: &EcdsaKeyPair) -> Result<Vec<u8>> {
    let der = key
        .public_key()
        .as_der()
        .map_err(|_| crypto_failure("EC public key encoding"))?;
    Ok(der.as_ref().to_vec())
}

/// ECDSA signature of `digest` (the curve's hash) in the key's format.
pub(super) fn ecdsa_sign_digest(key: &EcdsaKeyPair, digest: &Digest) -> Result<Vec<u8>> {
    let signature = key
        .sign_digest(digest)
        .map_err(|_| crypto_failure("ECDSA signing"))?;
    Ok(signature.as_ref().to_vec())
}

/// Whether `signature` is a valid ECDSA signature of `digest` under
/// `algorithm` (DER or fixed, per the algorithm).
pub(super) fn ecdsa_verify_digest_with(
    key: &EcdsaKeyPair,
    algorithm: &'static EcdsaVerificationAlgorithm,
    digest: &Digest,
    signature: &[u8],
) -> bool {
    UnparsedPublicKey::new(algorithm, key.public_key().as_ref())
        .verify_digest(digest, signature)
        .is_ok()
}

/// Whether `signature` is a valid DER ECDSA signature of `digest`.
pub(super) fn ecdsa_verify_digest(
    spec: KeySpec,
    key: &EcdsaKeyPair,
    digest: &Digest,
    signature: &[u8],
) -> Result<bool> {
    Ok(ecdsa_verify_digest_with(
        key,
        asn1_verification(spec)?,
        digest,
        signature,
    ))
}

/// Generates an Ed25519 key as PKCS#8 v2 DER (RFC 5958, public key
/// included).
pub(super) fn generate_ed25519() -> Result<Zeroizing<Vec<u8>>> {
    let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| crypto_failure("Ed25519 key generation"))?;
    Ok(Zeroizing::new(document.as_ref().to_vec()))
}

/// Parses a stored Ed25519 key (PKCS#8 v1 or v2; a v2 public key must match
/// the seed).
pub(super) fn parse_ed25519(private_pkcs8: &[u8]) -> Result<Ed25519KeyPair> {
    Ed25519KeyPair::from_pkcs8(private_pkcs8).map_err(|_| malformed_key(KeySpec::EccEd25519))
}

/// The DER SubjectPublicKeyInfo of an Ed25519 key.
pub(super) fn ed25519_public_key_der(key: &Ed25519KeyPair) -> Result<Vec<u8>> {
    let der = key
        .public_key()
        .as_der()
        .map_err(|_| crypto_failure("Ed25519 public key encoding"))?;
    Ok(der.as_ref().to_vec())
}

/// Pure Ed25519 signature of `message`.
pub(super) fn ed25519_sign(key: &Ed25519KeyPair, message: &[u8]) -> Result<Vec<u8>> {
    let signature = key
        .try_sign(message)
        .map_err(|_| crypto_failure("Ed25519 signing"))?;
    Ok(signature.as_ref().to_vec())
}

/// Whether `signature` is a valid pure Ed25519 signature of `message`.
pub(super) fn ed25519_verify(key: &Ed25519KeyPair, message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&signature::ED25519, key.public_key().as_ref())
        .verify(message, signature)
        .is_ok()
}
