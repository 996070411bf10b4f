//! Asymmetric and HMAC key material: generation, public keys, signatures,
//! RSA-OAEP and MACs, as pure functions over plaintext key bytes.
//!
//! Key material arrives here already unwrapped by the store and leaves only
//! as signatures, public keys, MACs or ciphertexts. Private keys are PKCS#8
//! DER (RSA, ECC, Ed25519); HMAC keys are raw bytes.
#![allow(unused_variables, dead_code)]

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::types::{
    DataKeyPairSpec, EncryptionAlgorithm, KeySpec, KeyUsage, MacAlgorithm, MessageType,
    SigningAlgorithm,
};

fn pending() -> Error {
    Error::UnsupportedOperation("not yet implemented".into())
}

/// Generates private material for a non-symmetric spec: PKCS#8 DER for
/// RSA/ECC/Ed25519, random bytes of the spec's length for HMAC.
pub(crate) fn generate(spec: KeySpec) -> Result<Zeroizing<Vec<u8>>> {
    Err(pending())
}

/// The DER SubjectPublicKeyInfo of an RSA/ECC/Ed25519 private key.
pub(crate) fn public_key_der(spec: KeySpec, private_pkcs8: &[u8]) -> Result<Vec<u8>> {
    Err(pending())
}

/// The signing algorithms a SIGN_VERIFY key of `spec` supports.
pub(crate) fn signing_algorithms(spec: KeySpec) -> &'static [SigningAlgorithm] {
    &[]
}

/// The encryption algorithms a key of `spec` and `usage` supports.
pub(crate) fn encryption_algorithms(
    spec: KeySpec,
    usage: KeyUsage,
) -> &'static [EncryptionAlgorithm] {
    &[]
}

/// The MAC algorithms an HMAC key of `spec` supports.
pub(crate) fn mac_algorithms(spec: KeySpec) -> &'static [MacAlgorithm] {
    &[]
}

/// Signs `message` (RAW, up to 4096 bytes, hashed here) or a digest (DIGEST,
/// of the algorithm's hash length). ECDSA signatures are DER, as in KMS.
pub(crate) fn sign(
    spec: KeySpec,
    private_pkcs8: &[u8],
    algorithm: SigningAlgorithm,
    message: &[u8],
    message_type: MessageType,
) -> Result<Vec<u8>> {
    Err(pending())
}

/// Verifies a signature; `Ok(false)` when it does not verify.
pub(crate) fn verify(
    spec: KeySpec,
    private_pkcs8: &[u8],
    algorithm: SigningAlgorithm,
    message: &[u8],
    message_type: MessageType,
    signature: &[u8],
) -> Result<bool> {
    Err(pending())
}

/// RSA-OAEP encryption with the public half of `private_pkcs8`.
pub(crate) fn rsa_encrypt(
    spec: KeySpec,
    private_pkcs8: &[u8],
    algorithm: EncryptionAlgorithm,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    Err(pending())
}

/// RSA-OAEP decryption; any failure is `Error::InvalidCiphertext`.
pub(crate) fn rsa_decrypt(
    spec: KeySpec,
    private_pkcs8: &[u8],
    algorithm: EncryptionAlgorithm,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    Err(pending())
}

/// HMAC of `message` (up to 4096 bytes).
pub(crate) fn generate_mac(
    spec: KeySpec,
    secret: &[u8],
    algorithm: MacAlgorithm,
    message: &[u8],
) -> Result<Vec<u8>> {
    Err(pending())
}

/// Checks an HMAC in constant time; `Ok(false)` when it does not match.
pub(crate) fn verify_mac(
    spec: KeySpec,
    secret: &[u8],
    algorithm: MacAlgorithm,
    message: &[u8],
    mac: &[u8],
) -> Result<bool> {
    Err(pending())
}

/// Generates a data key pair: (PKCS#8 DER private key, DER SPKI public key).
pub(crate) fn generate_data_key_pair(
    spec: DataKeyPairSpec,
) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>)> {
    Err(pending())
}
