//! Raw PKCS#11 signatures (CKM_ECDSA, CKM_RSA_PKCS and its SHA-2 forms,
//! CKM_RSA_PKCS_PSS, CKM_EDDSA) with a token key pair, on input the module
//! hashed or framed.

use crate::error::{Error, Result};
use crate::hsm::Hsm;
use crate::mechanisms::SecretKeyRef;
use crate::token::SessionKeys;
use crate::types::KeyUsage;

/// A raw PKCS#11 signature mechanism, on input the module prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawSign {
    /// CKM_ECDSA: the input is a digest; the signature is r || s.
    EcdsaDigest,
    /// CKM_SHA*_RSA_PKCS: the input is the DER DigestInfo the module built.
    RsaPkcs1DigestInfo,
    /// CKM_RSA_PKCS: any input of at most k-11 bytes, padded (type 1).
    RsaPkcs1,
    /// CKM_RSA_PKCS_PSS: the input is a digest of `hash`, salt of `salt_len`
    /// (up to the key's emLen - hLen - 2).
    RsaPss {
        /// 20, 28, 32, 48 or 64: the digest length naming SHA-1/224/256/384/512.
        hash_len: usize,
        /// The salt length in bytes.
        salt_len: usize,
    },
    /// CKM_EDDSA: the input is the whole message (Ed25519).
    EdDsa,
    /// CKM_EDDSA with CK_EDDSA_PARAMS phFlag (Ed25519ph): the input is
    /// `len(context) || context || message` (a context of 0 to 255 bytes).
    Ed25519ph,
    /// CKM_EDDSA with CK_EDDSA_PARAMS phFlag false and a context
    /// (Ed25519ctx, RFC 8032): the input is `len(context) || context ||
    /// message`, a context of 1 to 255 bytes ([`crate::ed25519ctx`]).
    Ed25519ctx,
    /// CKM_RSA_X_509: the raw private operation on input of at most k
    /// bytes below the modulus (left-padded with zeros); the key pair must
    /// sign.
    RsaX509,
    /// CKM_ML_DSA (FIPS 204 ML-DSA.Sign): the input is `len(context) ||
    /// context || message` ([`super::ml`]).
    MlDsa {
        /// The deterministic variant (else hedged).
        deterministic: bool,
    },
    /// CKM_HASH_ML_DSA and CKM_HASH_ML_DSA_SHA* (HashML-DSA): the input is
    /// `len(context) || context || data`, `data` the message (hashed
    /// here) or, when `prehashed`, its digest.
    HashMlDsa {
        /// The deterministic variant (else hedged).
        deterministic: bool,
        /// The pre-hash.
        hash: super::ml::PreHash,
        /// Whether the data is already the digest (CKM_HASH_ML_DSA).
        prehashed: bool,
    },
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

/// The SHA-1 or SHA-2 digest (named by its length: 20, 28, 32, 48 or 64)
/// of public data, for mechanisms the module hashes before the engine
/// signs (CKM_SHA*_RSA_PKCS*, CKM_ECDSA_SHA*).
pub fn digest(hash_len: usize, data: &[u8]) -> Result<Vec<u8>> {
    use aws_lc_rs::digest as d;
    let alg = match hash_len {
        20 => &d::SHA1_FOR_LEGACY_USE_ONLY,
        28 => &d::SHA224,
        32 => &d::SHA256,
        48 => &d::SHA384,
        64 => &d::SHA512,
        _ => return Err(Error::validation("SHA-1 or SHA-2 only")),
    };
    Ok(d::digest(alg, data).as_ref().to_vec())
}

/// Whether aws-lc-rs's PSS parameter sets serve this hash and salt.
fn library_pss(hash_len: usize, salt_len: usize) -> bool {
    matches!(hash_len, 32 | 48 | 64) && salt_len <= crate::asymmetric::MAX_PSS_SALT_LEN
}

fn rsa_only(spec: crate::types::KeySpec) -> Result<()> {
    if spec.is_rsa() {
        Ok(())
    } else {
        Err(Error::InvalidKeyUsage(format!("{spec} is not an RSA key")))
    }
}

impl Hsm {
    /// Refuses an RSA key pair whose usages leave out `usage` (the raw
    /// private operation signs only for a key that signs, and decrypts
    /// only for one that decrypts).
    pub(crate) fn check_rsa_usage(
        &self,
        keys: &SessionKeys,
        key: SecretKeyRef<'_>,
        usage: KeyUsage,
    ) -> Result<()> {
        let ok = match key {
            SecretKeyRef::Stored(id) => {
                let state = self.read_state();
                let record = state.key(id)?;
                record.spec.is_rsa() && record.p11_allows(usage)
            }
            SecretKeyRef::Session(id) => keys.lock_pairs().get(&id).is_some_and(|p| {
                p.spec.is_rsa()
                    && match usage {
                        KeyUsage::SignVerify => p.usages.sign,
                        KeyUsage::EncryptDecrypt => p.usages.decrypt,
                        _ => false,
                    }
            }),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidKeyUsage(format!(
                "not an RSA key pair of usage {usage}"
            )))
        }
    }

    /// CKM_RSA_X_509 encryption (the public operation) or decryption (the
    /// private operation, for a key pair that decrypts): input of at most
    /// k bytes below the modulus, output k bytes.
    pub fn p11_rsa_x509_crypt(
        &self,
        keys: &SessionKeys,
        key: SecretKeyRef<'_>,
        encrypt: bool,
        data: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        self.check_rsa_usage(keys, key, KeyUsage::EncryptDecrypt)?;
        self.with_private(keys, key, |spec, pkcs8| {
            rsa_only(spec)?;
            let out = if encrypt {
                crate::asymmetric::rsa_public_raw(spec, pkcs8, data)?
            } else {
                crate::asymmetric::rsa_private_raw(spec, pkcs8, data)?
            };
            Ok(zeroize::Zeroizing::new(out))
        })
    }

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
            // RSA sizes aws-lc-rs refuses (RSA_1024): PKCS#1 v1.5 on the
            // crypto-bigint path (same signature as the library's).
            RawSign::RsaPkcs1DigestInfo | RawSign::RsaPkcs1 if a::is_small_rsa(spec) => {
                a::rsa_pkcs1_sign_any_bigint(spec, pkcs8, input)
            }
            RawSign::EcdsaDigest => a::ecdsa_sign_digest_raw(spec, pkcs8.private_key(spec)?, input),
            RawSign::RsaPkcs1DigestInfo => {
                a::rsa_pkcs1v15_sign_digest_info(spec, pkcs8.private_key(spec)?, input)
            }
            RawSign::RsaPkcs1 => {
                a::rsa_pkcs1v15_sign_any(spec, pkcs8.private_key(spec)?, pkcs8, input)
            }
            RawSign::RsaPss { hash_len, salt_len }
                if library_pss(hash_len, salt_len) && !a::is_small_rsa(spec) =>
            {
                a::rsa_pss_sign_digest_raw(
                    spec,
                    pkcs8.private_key(spec)?,
                    pss_hash(hash_len)?,
                    salt_len,
                    input,
                )
            }
            RawSign::RsaPss { hash_len, salt_len } => {
                rsa_only(spec)?;
                a::rsa_pss_sign_any(spec, pkcs8, hash_len, salt_len, input)
            }
            RawSign::EdDsa => a::eddsa_sign_raw(spec, pkcs8, input),
            RawSign::Ed25519ph => super::ed25519ph::sign(spec, pkcs8, input),
            RawSign::Ed25519ctx => {
                let (context, message) = super::ed25519ph::split(input)?;
                crate::ed25519ctx::sign(spec, pkcs8, context, message)
            }
            RawSign::MlDsa { .. } | RawSign::HashMlDsa { .. } => {
                super::ml::sign(spec, pkcs8.private_key(spec)?, how, input)
            }
            RawSign::RsaX509 => {
                rsa_only(spec)?;
                self.check_rsa_usage(keys, key, KeyUsage::SignVerify)?;
                a::rsa_private_raw(spec, pkcs8, input)
            }
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
            RawSign::RsaPkcs1DigestInfo | RawSign::RsaPkcs1 if a::is_small_rsa(spec) => {
                a::rsa_pkcs1_verify_any_bigint(spec, pkcs8, input, signature)
            }
            RawSign::EcdsaDigest => a::ecdsa_verify_digest_raw(spec, pkcs8, input, signature),
            RawSign::RsaPkcs1DigestInfo => {
                a::rsa_pkcs1v15_verify_digest_info(spec, pkcs8.private_key(spec)?, input, signature)
            }
            RawSign::RsaPkcs1 => {
                a::rsa_pkcs1v15_verify_any(spec, pkcs8.private_key(spec)?, pkcs8, input, signature)
            }
            RawSign::RsaPss { hash_len, salt_len }
                if library_pss(hash_len, salt_len) && !a::is_small_rsa(spec) =>
            {
                a::rsa_pss_verify_digest_raw(
                    spec,
                    pkcs8.private_key(spec)?,
                    pss_hash(hash_len)?,
                    salt_len,
                    input,
                    signature,
                )
            }
            RawSign::RsaPss { hash_len, salt_len } => {
                rsa_only(spec)?;
                a::rsa_pss_verify_any(spec, pkcs8, hash_len, salt_len, input, signature)
            }
            RawSign::EdDsa => a::eddsa_verify_raw(spec, pkcs8, input, signature),
            RawSign::Ed25519ph => super::ed25519ph::verify(spec, pkcs8, input, signature),
            RawSign::Ed25519ctx => {
                let (context, message) = super::ed25519ph::split(input)?;
                crate::ed25519ctx::verify(spec, pkcs8, context, message, signature)
            }
            RawSign::MlDsa { .. } | RawSign::HashMlDsa { .. } => {
                super::ml::verify(spec, pkcs8.private_key(spec)?, how, input, signature)
            }
            RawSign::RsaX509 => {
                rsa_only(spec)?;
                if input.len() > signature.len() {
                    return Err(Error::validation("input longer than the modulus"));
                }
                let recovered = match a::rsa_public_raw(spec, pkcs8, signature) {
                    Ok(r) => r,
                    Err(Error::Validation(_)) => return Ok(false),
                    Err(e) => return Err(e),
                };
                let mut expected = vec![0u8; recovered.len().saturating_sub(input.len())];
                expected.extend_from_slice(input);
                Ok(signature.len() == recovered.len()
                    && aws_lc_rs::constant_time::verify_slices_are_equal(&expected, &recovered)
                        .is_ok())
            }
        })
    }
}
