//! Raw PKCS#11 signatures (CKM_ECDSA, CKM_RSA_PKCS and its SHA-2 forms,
//! CKM_RSA_PKCS_PSS, CKM_EDDSA) with a token key pair, on input the module
//! hashed or framed.

use crate::error::{Error, Result};
use crate::hsm::Hsm;
use crate::mechanisms::SecretKeyRef;
use crate::token::SessionKeys;

/// A raw PKCS#11 signature mechanism, on input the module prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawSign {
    /// CKM_ECDSA: the input is a digest; the signature is r || s.
    EcdsaDigest,
    /// CKM_SHA*_RSA_PKCS: the input is the DER DigestInfo the module built.
    RsaPkcs1DigestInfo,
    /// CKM_RSA_PKCS: any input of at most k-11 bytes, padded (type 1).
    RsaPkcs1,
    /// CKM_RSA_PKCS_PSS: the input is a digest of `hash`, salt of `salt_len`.
    RsaPss {
        /// 32, 48 or 64: the digest length naming SHA-256/384/512.
        hash_len: usize,
        /// The salt length in bytes.
        salt_len: usize,
    },
    /// CKM_EDDSA: the input is the whole message (Ed25519).
    EdDsa,
}

/// CKM_RSA_PKCS verification with a public key the core does not hold (one
/// imported into PKCS#11): big-endian modulus (2048 to 4096 bits) and
/// exponent. `Ok(false)` when the signature does not verify; a malformed
/// key, or input longer than k-11 bytes, is a `ValidationException`.
pub fn rsa_pkcs1_verify_public(
    modulus: &[u8],
    exponent: &[u8],
    input: &[u8],
    signature: &[u8],
) -> Result<bool> {
    crate::asymmetric::rsa_pkcs1_verify_public(modulus, exponent, input, signature)
}

/// The hash a raw PSS call names by its digest length.
fn pss_hash(hash_len: usize) -> Result<crate::asymmetric::PssHash> {
    use crate::asymmetric::PssHash;
    match hash_len {
        32 => Ok(PssHash::Sha256),
        48 => Ok(PssHash::Sha384),
        64 => Ok(PssHash::Sha512),
        _ => Err(Error::validation("PSS needs SHA-256, SHA-384 or SHA-512")),
    }
}

impl Hsm {
    /// A raw signature (the caller hashed or built the input as `how` says).
    pub fn p11_sign(
        &self,
        keys: &SessionKeys,
        key: SecretKeyRef<'_>,
        how: RawSign,
        input: &[u8],
    ) -> Result<Vec<u8>> {
        use crate::asymmetric as a;
        self.with_private(keys, key, |spec, pkcs8| match how {
            RawSign::EcdsaDigest => a::ecdsa_sign_digest_raw(spec, pkcs8.private_key(spec)?, input),
            RawSign::RsaPkcs1DigestInfo => {
                a::rsa_pkcs1v15_sign_digest_info(spec, pkcs8.private_key(spec)?, input)
            }
            RawSign::RsaPkcs1 => {
                a::rsa_pkcs1v15_sign_any(spec, pkcs8.private_key(spec)?, pkcs8, input)
            }
            RawSign::RsaPss { hash_len, salt_len } => a::rsa_pss_sign_digest_raw(
                spec,
                pkcs8.private_key(spec)?,
                pss_hash(hash_len)?,
                salt_len,
                input,
            ),
            RawSign::EdDsa => a::eddsa_sign_raw(spec, pkcs8, input),
        })
    }

    /// Checks a raw signature; `Ok(false)` when it does not verify.
    pub fn p11_verify(
        &self,
        keys: &SessionKeys,
        key: SecretKeyRef<'_>,
        how: RawSign,
        input: &[u8],
        signature: &[u8],
    ) -> Result<bool> {
        use crate::asymmetric as a;
        self.with_private(keys, key, |spec, pkcs8| match how {
            RawSign::EcdsaDigest => a::ecdsa_verify_digest_raw(spec, pkcs8, input, signature),
            RawSign::RsaPkcs1DigestInfo => {
                a::rsa_pkcs1v15_verify_digest_info(spec, pkcs8.private_key(spec)?, input, signature)
            }
            RawSign::RsaPkcs1 => {
                a::rsa_pkcs1v15_verify_any(spec, pkcs8.private_key(spec)?, pkcs8, input, signature)
            }
            RawSign::RsaPss { hash_len, salt_len } => a::rsa_pss_verify_digest_raw(
                spec,
                pkcs8.private_key(spec)?,
                pss_hash(hash_len)?,
                salt_len,
                input,
                signature,
            ),
            RawSign::EdDsa => a::eddsa_verify_raw(spec, pkcs8, input, signature),
        })
    }
}
