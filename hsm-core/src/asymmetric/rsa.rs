//! RSA: key generation, RSASSA-PKCS1-v1_5 and RSASSA-PSS signatures over a
//! digest, and RSAES-OAEP with SHA-1 or SHA-256 (MGF1 with the same hash).

use aws_lc_rs::digest::Digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeyPair, KeySize, OaepAlgorithm, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    PrivateDecryptingKey, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256,
};
use aws_lc_rs::signature::{self, KeyPair as _, RsaEncoding, RsaParameters, UnparsedPublicKey};
use zeroize::Zeroizing;

use super::{crypto_failure, malformed_key};
use crate::error::{Error, Result};
use crate::types::{EncryptionAlgorithm, KeySpec, SigningAlgorithm};

/// The library's key size for an RSA spec.
fn key_size(spec: KeySpec) -> Result<KeySize> {
    match spec {
        KeySpec::Rsa2048 => Ok(KeySize::Rsa2048),
        KeySpec::Rsa3072 => Ok(KeySize::Rsa3072),
        KeySpec::Rsa4096 => Ok(KeySize::Rsa4096),
        KeySpec::Rsa8192 => Ok(KeySize::Rsa8192),
        other => Err(Error::Internal(format!("{other} is not an RSA key spec"))),
    }
}

/// Generates an RSA key of `spec` (public exponent 65537) as PKCS#8 DER.
pub(super) fn generate(spec: KeySpec) -> Result<Zeroizing<Vec<u8>>> {
    if let Some(bits) = super::rsa_small::spec_bits(spec) {
        return super::rsa_small::generate(bits);
    }
    let key =
        KeyPair::generate(key_size(spec)?).map_err(|_| crypto_failure("RSA key generation"))?;
    let der = key
        .as_der()
        .map_err(|_| crypto_failure("RSA key encoding"))?;
    Ok(Zeroizing::new(der.as_ref().to_vec()))
}

/// Parses a stored RSA private key and checks its modulus has the spec's
/// size.
pub(super) fn parse(spec: KeySpec, private_pkcs8: &[u8]) -> Result<KeyPair> {
    let bytes = key_size(spec)?.len();
    let key = KeyPair::from_pkcs8(private_pkcs8).map_err(|_| malformed_key(spec))?;
    if key.public_modulus_len() != bytes {
        return Err(malformed_key(spec));
    }
    Ok(key)
}

/// The DER SubjectPublicKeyInfo of `key`.
pub(super) fn public_key_der(key: &KeyPair) -> Result<Vec<u8>> {
    let der = key
        .public_key()
        .as_der()
        .map_err(|_| crypto_failure("RSA public key encoding"))?;
    Ok(der.as_ref().to_vec())
}

/// The signing encoding of an RSA signing algorithm.
fn encoding(algorithm: SigningAlgorithm) -> Result<&'static dyn RsaEncoding> {
    use SigningAlgorithm as S;
    Ok(match algorithm {
        S::RsassaPkcs1V15Sha256 => &signature::RSA_PKCS1_SHA256,
        S::RsassaPkcs1V15Sha384 => &signature::RSA_PKCS1_SHA384,
        S::RsassaPkcs1V15Sha512 => &signature::RSA_PKCS1_SHA512,
        S::RsassaPssSha256 => &signature::RSA_PSS_SHA256,
        S::RsassaPssSha384 => &signature::RSA_PSS_SHA384,
        S::RsassaPssSha512 => &signature::RSA_PSS_SHA512,
        other => {
            return Err(Error::InvalidKeyUsage(format!(
                "{other} is not an RSA algorithm"
            )))
        }
    })
}

/// The verification parameters of an RSA signing algorithm (PSS salt =
/// hash length, as in KMS).
pub(super) fn parameters(algorithm: SigningAlgorithm) -> Result<&'static RsaParameters> {
    use SigningAlgorithm as S;
    Ok(match algorithm {
        S::RsassaPkcs1V15Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        S::RsassaPkcs1V15Sha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        S::RsassaPkcs1V15Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        S::RsassaPssSha256 => &signature::RSA_PSS_2048_8192_SHA256,
        S::RsassaPssSha384 => &signature::RSA_PSS_2048_8192_SHA384,
        S::RsassaPssSha512 => &signature::RSA_PSS_2048_8192_SHA512,
        other => {
            return Err(Error::InvalidKeyUsage(format!(
                "{other} is not an RSA algorithm"
            )))
        }
    })
}

/// Signs `digest` with `encoding` (whose hash must be the digest's).
pub(super) fn sign_digest_with(
    key: &KeyPair,
    encoding: &'static dyn RsaEncoding,
    digest: &Digest,
) -> Result<Vec<u8>> {
    let mut signature = vec![0u8; key.public_modulus_len()];
    key.sign_digest(encoding, digest, &mut signature)
        .map_err(|_| crypto_failure("RSA signing"))?;
    Ok(signature)
}

/// Signs `digest` with an RSA signing algorithm.
pub(super) fn sign_digest(
    key: &KeyPair,
    algorithm: SigningAlgorithm,
    digest: &Digest,
) -> Result<Vec<u8>> {
    sign_digest_with(key, encoding(algorithm)?, digest)
}

/// Whether `signature` is a valid signature of `digest` under `parameters`.
pub(super) fn verify_digest_with(
    key: &KeyPair,
    parameters: &'static RsaParameters,
    digest: &Digest,
    signature: &[u8],
) -> bool {
    if signature.len() != key.public_modulus_len() {
        return false;
    }
    UnparsedPublicKey::new(parameters, key.public_key().as_ref())
        .verify_digest(digest, signature)
        .is_ok()
}

/// Whether `signature` is a valid signature of `digest` with an RSA signing
/// algorithm.
pub(super) fn verify_digest(
    key: &KeyPair,
    algorithm: SigningAlgorithm,
    digest: &Digest,
    signature: &[u8],
) -> Result<bool> {
    Ok(verify_digest_with(
        key,
        parameters(algorithm)?,
        digest,
        signature,
    ))
}

/// The library's OAEP algorithm and its hash length for a KMS algorithm.
fn oaep(algorithm: EncryptionAlgorithm) -> Result<(&'static OaepAlgorithm, usize)> {
    match algorithm {
        EncryptionAlgorithm::RsaesOaepSha1 => Ok((&OAEP_SHA1_MGF1SHA1, 20)),
        EncryptionAlgorithm::RsaesOaepSha256 => Ok((&OAEP_SHA256_MGF1SHA256, 32)),
        EncryptionAlgorithm::SymmetricDefault => Err(Error::InvalidKeyUsage(
            "SYMMETRIC_DEFAULT is not valid for an RSA key".into(),
        )),
    }
}

/// Parses a stored RSA key for OAEP and checks its size.
fn parse_decrypting(spec: KeySpec, private_pkcs8: &[u8]) -> Result<PrivateDecryptingKey> {
    let bytes = key_size(spec)?.len();
    let key = PrivateDecryptingKey::from_pkcs8(private_pkcs8).map_err(|_| malformed_key(spec))?;
    if key.key_size_bytes() != bytes {
        return Err(malformed_key(spec));
    }
    Ok(key)
}

/// The largest plaintext RSA-OAEP takes for a modulus of `modulus_bytes`
/// and a hash of `hash_len`: k - 2·hLen - 2 (k-42 for SHA-1, k-66 for
/// SHA-256).
pub(super) fn oaep_max_plaintext(modulus_bytes: usize, hash_len: usize) -> usize {
    modulus_bytes.saturating_sub(2 * hash_len + 2)
}

/// RSA-OAEP encryption of 1 to k-2·hLen-2 bytes, with an optional label
/// (PKCS#11's pSourceData; KMS uses none).
pub(super) fn encrypt(
    spec: KeySpec,
    private_pkcs8: &[u8],
    algorithm: EncryptionAlgorithm,
    plaintext: &[u8],
    label: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let (oaep_algorithm, hash_len) = oaep(algorithm)?;
    if super::rsa_small::is_small(spec) {
        let k = super::rsa_pkcs1::stored_len(spec, private_pkcs8)?;
        let max = oaep_max_plaintext(k, hash_len);
        if plaintext.is_empty() || plaintext.len() > max {
            return Err(Error::Validation(format!(
                "{algorithm} with a {spec} key takes 1 to {max} bytes of plaintext, got {}",
                plaintext.len()
            )));
        }
        return super::rsa_pkcs1::oaep_encrypt_small(
            spec,
            private_pkcs8,
            hash_len,
            plaintext,
            label.unwrap_or_default(),
        );
    }
    let private = parse_decrypting(spec, private_pkcs8)?;
    let max = oaep_max_plaintext(private.key_size_bytes(), hash_len);
    if plaintext.is_empty() || plaintext.len() > max {
        return Err(Error::Validation(format!(
            "{algorithm} with a {spec} key takes 1 to {max} bytes of plaintext, got {}",
            plaintext.len()
        )));
    }
    let public = OaepPublicEncryptingKey::new(private.public_key())
        .map_err(|_| crypto_failure("RSA public key setup"))?;
    let mut out = vec![0u8; public.ciphertext_size()];
    let len = public
        .encrypt(oaep_algorithm, plaintext, &mut out, label)
        .map_err(|_| crypto_failure("RSA-OAEP encryption"))?
        .len();
    out.truncate(len);
    Ok(out)
}

/// RSA-OAEP decryption; every failure (wrong length, bad padding, wrong
/// hash) is the same `InvalidCiphertextException`.
pub(super) fn decrypt(
    spec: KeySpec,
    private_pkcs8: &[u8],
    algorithm: EncryptionAlgorithm,
    ciphertext: &[u8],
    label: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>> {
    let (oaep_algorithm, hash_len) = oaep(algorithm)?;
    if super::rsa_small::is_small(spec) {
        return super::rsa_pkcs1::oaep_decrypt_small(
            spec,
            private_pkcs8,
            hash_len,
            ciphertext,
            label.unwrap_or_default(),
        );
    }
    let private = parse_decrypting(spec, private_pkcs8)?;
    let invalid = || {
        Error::InvalidCiphertext(format!(
            "the ciphertext is not a valid {algorithm} ciphertext for this key"
        ))
    };
    if ciphertext.len() != private.key_size_bytes() {
        return Err(invalid());
    }
    let private =
        OaepPrivateDecryptingKey::new(private).map_err(|_| crypto_failure("RSA key setup"))?;
    let mut out = Zeroizing::new(vec![0u8; private.min_output_size()]);
    let len = private
        .decrypt(oaep_algorithm, ciphertext, &mut out, label)
        .map_err(|_| invalid())?
        .len();
    out.truncate(len);
    Ok(out)
}
