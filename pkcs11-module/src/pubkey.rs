//! Verification with an imported public key object, in this module
//! (public data only; the key never reaches the engine). The attributes
//! of public keys are hsm-core's ([`hsm_core::pkcs11::pubkey`]),
//! re-exported here.

use cryptoki_sys::*;
use hsm_core::KeySpec;

pub use hsm_core::pkcs11::pubkey::*;

use crate::backend::Attributes;
use crate::error::{ckr, Result};

/// Verification with an imported public key, in this module.
pub enum PublicVerifier {
    /// ECDSA (fixed r||s) or Ed25519 with ring.
    Point(&'static dyn ring::signature::VerificationAlgorithm, Vec<u8>),
    /// ECDSA P-521 (fixed r||s) with aws-lc-rs: ring has no P-521.
    P521(Vec<u8>),
    /// RSA PKCS#1 v1.5 or PSS with ring.
    Rsa(&'static ring::signature::RsaParameters, Vec<u8>, Vec<u8>),
    /// CKM_RSA_PKCS over raw input (modulus, exponent), checked by
    /// hsm-core's public-key function.
    RsaRaw(Vec<u8>, Vec<u8>),
    /// CKM_SHA*_RSA_PKCS with a key under 2048 bits (RSA-1024, which ring
    /// verifies for some hashes only): the message hashed here, framed as
    /// a DigestInfo and checked as [`PublicVerifier::RsaRaw`].
    RsaHashed {
        /// The digest length naming the hash.
        hash_len: usize,
        /// The DER DigestInfo prefix.
        info: &'static [u8],
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
    /// ML-DSA or HashML-DSA (framed input, see [`crate::pq_ops`]) with a
    /// raw public key, checked by hsm-core's public-key function.
    MlDsa {
        /// The parameter set.
        spec: KeySpec,
        /// The raw public key.
        key: Vec<u8>,
        /// The variant.
        how: crate::backend::RawSign,
    },
    /// CKM_EDDSA with CK_EDDSA_PARAMS{phFlag false, context}: Ed25519ctx
    /// (public key, context of 1 to 255 bytes), checked by hsm-core.
    Ed25519ctx(Vec<u8>, Vec<u8>),
}

impl PublicVerifier {
    /// The verifier for `mechanism` on an imported key; CKM_RSA_PKCS takes
    /// raw input (up to k-11 bytes, 1024 to 8192-bit keys), the other
    /// mechanisms that take a prepared digest (CKM_ECDSA,
    /// CKM_RSA_PKCS_PSS) need a key pair of this module and are
    /// CKR_MECHANISM_INVALID here.
    pub fn new(
        mechanism: CK_MECHANISM_TYPE,
        a: &Attributes,
        pss_salt: Option<usize>,
    ) -> Result<Self> {
        use ring::signature as s;
        let invalid = || ckr!(CKR_MECHANISM_INVALID, "not with an imported public key");
        let params = a.get(&CKA_EC_PARAMS).map(Vec::as_slice);
        Ok(match mechanism {
            CKM_ECDSA_SHA256 if params == Some(P256_OID) => {
                PublicVerifier::Point(&s::ECDSA_P256_SHA256_FIXED, ec_point_bytes(a)?)
            }
            CKM_ECDSA_SHA384 if params == Some(P384_OID) => {
                PublicVerifier::Point(&s::ECDSA_P384_SHA384_FIXED, ec_point_bytes(a)?)
            }
            CKM_ECDSA_SHA512 if params == Some(P521_OID) => {
                PublicVerifier::P521(ec_point_bytes(a)?)
            }
            CKM_EDDSA if params.is_some_and(|p| p == ED25519_OID || p == ED25519_NAME) => {
                PublicVerifier::Point(&s::ED25519, ec_point_bytes(a)?)
            }
            CKM_RSA_PKCS if a.contains_key(&CKA_MODULUS) && pss_salt.is_none() => {
                let n = strip_zero(a.get(&CKA_MODULUS).ok_or_else(invalid)?).to_vec();
                let e = strip_zero(a.get(&CKA_PUBLIC_EXPONENT).ok_or_else(invalid)?).to_vec();
                PublicVerifier::RsaRaw(n, e)
            }
            m if a.contains_key(&CKA_MODULUS)
                && pss_salt.is_none()
                && strip_zero(a.get(&CKA_MODULUS).ok_or_else(invalid)?).len() < 256 =>
            {
                let hash = match m {
                    CKM_SHA1_RSA_PKCS => CKM_SHA_1,
                    CKM_SHA224_RSA_PKCS => CKM_SHA224,
                    CKM_SHA256_RSA_PKCS => CKM_SHA256,
                    CKM_SHA384_RSA_PKCS => CKM_SHA384,
                    CKM_SHA512_RSA_PKCS => CKM_SHA512,
                    _ => return Err(invalid()),
                };
                let (hash_len, info) = crate::sign_ops::sha(hash)?;
                let n = strip_zero(a.get(&CKA_MODULUS).ok_or_else(invalid)?).to_vec();
                let e = strip_zero(a.get(&CKA_PUBLIC_EXPONENT).ok_or_else(invalid)?).to_vec();
                PublicVerifier::RsaHashed {
                    hash_len,
                    info,
                    n,
                    e,
                }
            }
            m if a.contains_key(&CKA_MODULUS) => {
                let parameters: &'static s::RsaParameters = match (m, pss_salt) {
                    (CKM_SHA256_RSA_PKCS, None) => &s::RSA_PKCS1_2048_8192_SHA256,
                    (CKM_SHA384_RSA_PKCS, None) => &s::RSA_PKCS1_2048_8192_SHA384,
                    (CKM_SHA512_RSA_PKCS, None) => &s::RSA_PKCS1_2048_8192_SHA512,
                    (CKM_SHA256_RSA_PKCS_PSS, Some(32)) => &s::RSA_PSS_2048_8192_SHA256,
                    (CKM_SHA384_RSA_PKCS_PSS, Some(48)) => &s::RSA_PSS_2048_8192_SHA384,
                    (CKM_SHA512_RSA_PKCS_PSS, Some(64)) => &s::RSA_PSS_2048_8192_SHA512,
                    _ => return Err(invalid()),
                };
                let n = strip_zero(a.get(&CKA_MODULUS).ok_or_else(invalid)?).to_vec();
                let e = strip_zero(a.get(&CKA_PUBLIC_EXPONENT).ok_or_else(invalid)?).to_vec();
                // PSS with an imported RSA-1024 key: ring takes 2048 bits up.
                if n.len() < 256 {
                    return Err(invalid());
                }
                PublicVerifier::Rsa(parameters, n, e)
            }
            _ => return Err(invalid()),
        })
    }

    /// This CKM_EDDSA (Ed25519) verifier under CK_EDDSA_PARAMS{phFlag false,
    /// `context`}: itself for an empty context (pure Ed25519), else
    /// Ed25519ctx.
    pub fn with_ed25519_context(self, context: &[u8]) -> Result<Self> {
        match self {
            verifier if context.is_empty() => Ok(verifier),
            // CKM_EDDSA's verifier is always an Ed25519 point.
            PublicVerifier::Point(_, key) => Ok(PublicVerifier::Ed25519ctx(key, context.to_vec())),
            _ => Err(ckr!(CKR_MECHANISM_PARAM_INVALID)),
        }
    }

    /// Whether `signature` is valid for `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            PublicVerifier::MlDsa { spec, key, how } => {
                hsm_core::mechanisms::ml_dsa_verify_public(*spec, key, *how, message, signature)
                    .unwrap_or(false)
            }
            PublicVerifier::Ed25519ctx(key, context) => {
                hsm_core::ed25519ctx::verify_public(key, context, message, signature)
                    .unwrap_or(false)
            }
            PublicVerifier::Point(alg, key) => ring::signature::UnparsedPublicKey::new(*alg, key)
                .verify(message, signature)
                .is_ok(),
            PublicVerifier::P521(key) => aws_lc_rs::signature::UnparsedPublicKey::new(
                &aws_lc_rs::signature::ECDSA_P521_SHA512_FIXED,
                key,
            )
            .verify(message, signature)
            .is_ok(),
            PublicVerifier::Rsa(parameters, n, e) => {
                ring::signature::RsaPublicKeyComponents { n, e }
                    .verify(parameters, message, signature)
                    .is_ok()
            }
            // Input too long or a key out of range: it does not verify.
            PublicVerifier::RsaRaw(n, e) => {
                hsm_core::mechanisms::rsa_pkcs1_verify_public(n, e, message, signature)
                    .unwrap_or(false)
            }
            PublicVerifier::RsaHashed {
                hash_len,
                info,
                n,
                e,
            } => {
                let Ok(digest) = hsm_core::mechanisms::digest(*hash_len, message) else {
                    return false;
                };
                let input = [*info, &digest[..]].concat();
                hsm_core::mechanisms::rsa_pkcs1_verify_public(n, e, &input, signature)
                    .unwrap_or(false)
            }
        }
    }
}
