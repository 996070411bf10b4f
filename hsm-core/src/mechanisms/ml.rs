//! PKCS#11 3.2 post-quantum mechanisms on token and session key pairs:
//! ML-DSA signatures (`CKM_ML_DSA`, `CKM_HASH_ML_DSA`,
//! `CKM_HASH_ML_DSA_SHA*`: a context string, hedged or deterministic) and
//! ML-KEM encapsulation and decapsulation into a new secret key
//! (`C_EncapsulateKey` / `C_DecapsulateKey` with `CKM_ML_KEM`).
//!
//! The module frames a signature's input as `len(ctx) || ctx || data`
//! (as for Ed25519ph); `data` is the message, or for HashML-DSA the
//! message or its digest. Everything else — hashing, M', signing — happens
//! here, on the key's stored seed.

use zeroize::Zeroizing;

use crate::asymmetric::{mldsa, mlkem, PrivateKey};
use crate::error::{Error, Result};
use crate::hsm::Hsm;
use crate::mechanisms::{DerivedKeySpec, RawSign, SecretKeyRef};
use crate::token::{CopiedKey, SessionKeys};
use crate::types::KeySpec;

/// The hash of a HashML-DSA signature (FIPS 204 section 5.4), from the
/// hashes aws-lc-rs offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PreHash {
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// SHA3-256.
    Sha3_256,
    /// SHA3-384.
    Sha3_384,
    /// SHA3-512.
    Sha3_512,
}

impl PreHash {
    /// Every hash, in wire order (see [`PreHash::wire`]).
    pub const ALL: [PreHash; 7] = [
        PreHash::Sha224,
        PreHash::Sha256,
        PreHash::Sha384,
        PreHash::Sha512,
        PreHash::Sha3_256,
        PreHash::Sha3_384,
        PreHash::Sha3_512,
    ];

    fn algorithm(self) -> &'static aws_lc_rs::digest::Algorithm {
        use aws_lc_rs::digest as d;
        match self {
            PreHash::Sha224 => &d::SHA224,
            PreHash::Sha256 => &d::SHA256,
            PreHash::Sha384 => &d::SHA384,
            PreHash::Sha512 => &d::SHA512,
            PreHash::Sha3_256 => &d::SHA3_256,
            PreHash::Sha3_384 => &d::SHA3_384,
            PreHash::Sha3_512 => &d::SHA3_512,
        }
    }

    /// The digest length in bytes.
    pub fn digest_len(self) -> usize {
        self.algorithm().output_len()
    }

    /// The last arc of the hash's OID, 2.16.840.1.101.3.4.2.x.
    fn oid_last(self) -> u8 {
        match self {
            PreHash::Sha256 => 1,
            PreHash::Sha384 => 2,
            PreHash::Sha512 => 3,
            PreHash::Sha224 => 4,
            PreHash::Sha3_256 => 8,
            PreHash::Sha3_384 => 9,
            PreHash::Sha3_512 => 10,
        }
    }

    /// A small stable number for the wire (1 to 7).
    pub fn wire(self) -> u32 {
        PreHash::ALL.iter().position(|h| *h == self).unwrap_or(0) as u32 + 1
    }

    /// The hash [`PreHash::wire`] names.
    pub fn from_wire(n: u32) -> Option<PreHash> {
        PreHash::ALL.get((n as usize).checked_sub(1)?).copied()
    }
}

/// Splits `len(ctx) || ctx || data`.
fn split(input: &[u8]) -> Result<(&[u8], &[u8])> {
    let (&n, rest) = input
        .split_first()
        .ok_or_else(|| Error::validation("the input lacks its context length"))?;
    if rest.len() < n as usize {
        return Err(Error::validation("the context is longer than the input"));
    }
    Ok(rest.split_at(n as usize))
}

/// HashML-DSA's M' = `0x01 || len(ctx) || ctx || OID(hash) || PH(M)`
/// from framed input (`data` the message, or its digest when
/// `prehashed`; a digest of the wrong length is a ValidationException).
fn hash_m_prime(hash: PreHash, prehashed: bool, input: &[u8]) -> Result<Vec<u8>> {
    let (context, data) = split(input)?;
    let digest = if prehashed {
        if data.len() != hash.digest_len() {
            return Err(Error::validation(format!(
                "a {hash:?} digest is {} bytes, got {}",
                hash.digest_len(),
                data.len()
            )));
        }
        data.to_vec()
    } else {
        aws_lc_rs::digest::digest(hash.algorithm(), data)
            .as_ref()
            .to_vec()
    };
    let mut m = Vec::with_capacity(2 + context.len() + 11 + digest.len());
    m.extend_from_slice(&[0x01, context.len() as u8]);
    m.extend_from_slice(context);
    m.extend_from_slice(&[
        0x06,
        0x09,
        0x60,
        0x86,
        0x48,
        0x01,
        0x65,
        0x03,
        0x04,
        0x02,
        hash.oid_last(),
    ]);
    m.extend_from_slice(&digest);
    Ok(m)
}

fn not_ml_dsa(spec: KeySpec) -> Error {
    Error::InvalidKeyUsage(format!("{spec} is not an ML-DSA key"))
}

/// Signs framed input with a parsed private key (the raw signature path).
pub(crate) fn sign(spec: KeySpec, key: &PrivateKey, how: RawSign, input: &[u8]) -> Result<Vec<u8>> {
    let PrivateKey::MlDsa(key) = key else {
        return Err(not_ml_dsa(spec));
    };
    match how {
        RawSign::MlDsa { deterministic } => {
            let (context, message) = split(input)?;
            key.sign_with(
                message,
                mldsa::SignOptions {
                    context,
                    deterministic,
                },
            )
        }
        RawSign::HashMlDsa {
            deterministic,
            hash,
            prehashed,
        } => key.sign_internal(&hash_m_prime(hash, prehashed, input)?, deterministic),
        _ => Err(Error::Internal("not an ML-DSA mechanism".into())),
    }
}

/// Verifies framed input with a parsed private key's public half.
pub(crate) fn verify(
    spec: KeySpec,
    key: &PrivateKey,
    how: RawSign,
    input: &[u8],
    signature: &[u8],
) -> Result<bool> {
    let PrivateKey::MlDsa(key) = key else {
        return Err(not_ml_dsa(spec));
    };
    match how {
        RawSign::MlDsa { .. } => {
            let (context, message) = split(input)?;
            key.verify_with(message, context, signature)
        }
        RawSign::HashMlDsa {
            hash, prehashed, ..
        } => Ok(key.verify_internal(&hash_m_prime(hash, prehashed, input)?, signature)),
        _ => Err(Error::Internal("not an ML-DSA mechanism".into())),
    }
}

/// Checks an ML-DSA signature (`how` [`RawSign::MlDsa`] or
/// [`RawSign::HashMlDsa`], framed input) with a raw public key (FIPS 204
/// pkEncode) the core does not hold: PKCS#11 public key objects.
/// `Ok(false)` for a malformed key or a signature that does not verify.
pub fn ml_dsa_verify_public(
    spec: KeySpec,
    public_key: &[u8],
    how: RawSign,
    input: &[u8],
    signature: &[u8],
) -> Result<bool> {
    match how {
        RawSign::MlDsa { .. } => {
            let (context, message) = split(input)?;
            mldsa::verify_with_public_key(spec, public_key, message, context, false, signature)
        }
        RawSign::HashMlDsa {
            hash, prehashed, ..
        } => mldsa::verify_internal_with_public_key(
            spec,
            public_key,
            &hash_m_prime(hash, prehashed, input)?,
            signature,
        ),
        _ => Err(Error::validation("not an ML-DSA mechanism")),
    }
}

/// The length of an ML-DSA signature of `spec` (2420, 3309, 4627 bytes).
pub fn ml_dsa_signature_len(spec: KeySpec) -> Result<usize> {
    mldsa::signature_len(spec)
}

/// The length of a raw public key of an ML-DSA or ML-KEM `spec`.
pub fn ml_public_key_len(spec: KeySpec) -> Result<usize> {
    match spec {
        KeySpec::MlDsa44 => Ok(1312),
        KeySpec::MlDsa65 => Ok(1952),
        KeySpec::MlDsa87 => Ok(2592),
        s if s.is_ml_kem() => mlkem::public_key_len(s),
        other => Err(Error::validation(format!(
            "{other} is not an ML-DSA or ML-KEM key spec"
        ))),
    }
}

/// The DER SubjectPublicKeyInfo (FIPS 203/204 OIDs) of a raw ML-DSA or
/// ML-KEM public key; a key of the wrong length is a ValidationException.
pub fn ml_public_key_der(spec: KeySpec, public_key: &[u8]) -> Result<Vec<u8>> {
    if public_key.len() != ml_public_key_len(spec)? {
        return Err(Error::validation(format!(
            "a {spec} public key is {} bytes",
            ml_public_key_len(spec)?
        )));
    }
    if spec.is_ml_dsa() {
        mldsa::public_key_der_of(spec, public_key)
    } else {
        mlkem::public_key_der(spec, public_key)
    }
}

/// The ciphertext length of an ML-KEM `spec` (768, 1088, 1568 bytes).
pub fn ml_kem_ciphertext_len(spec: KeySpec) -> Result<usize> {
    mlkem::ciphertext_len(spec)
}

/// ML-KEM.Encaps to a raw encapsulation key the core does not hold (a
/// PKCS#11 public key object): (ciphertext, 32-byte shared secret). A
/// malformed key is a ValidationException.
pub fn ml_kem_encapsulate_public(
    spec: KeySpec,
    public_key: &[u8],
) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    mlkem::encapsulate(spec, public_key)
}

impl Hsm {
    fn with_ml_kem<T>(
        &self,
        keys: &SessionKeys,
        key: SecretKeyRef<'_>,
        f: impl FnOnce(&mlkem::MlKemKey) -> Result<T>,
    ) -> Result<T> {
        self.with_private(keys, key, |spec, material| {
            match material.private_key(spec)? {
                PrivateKey::MlKem(kem) => f(kem),
                _ => Err(Error::InvalidKeyUsage(format!(
                    "{spec} is not an ML-KEM key"
                ))),
            }
        })
    }

    /// C_EncapsulateKey with an ML-KEM key pair (an Enabled token key or a
    /// session pair): a fresh shared secret stored as the secret key `new`
    /// describes, and its ciphertext. The secret never leaves the core.
    pub fn p11_ml_kem_encapsulate(
        &self,
        keys: &SessionKeys,
        key: SecretKeyRef<'_>,
        new: DerivedKeySpec<'_>,
    ) -> Result<(Vec<u8>, CopiedKey)> {
        let (ciphertext, secret) = self.with_ml_kem(keys, key, |kem| kem.encapsulate())?;
        let made = self.p11_store_derived(keys, &truncated(&secret, new.len)?, new)?;
        Ok((ciphertext, made))
    }

    /// C_DecapsulateKey with an ML-KEM key pair: the shared secret of
    /// `ciphertext`, stored as the secret key `new` describes. A
    /// ciphertext of the wrong length is `InvalidCiphertextException`; any
    /// other gives a key (implicit rejection, FIPS 203).
    pub fn p11_ml_kem_decapsulate(
        &self,
        keys: &SessionKeys,
        key: SecretKeyRef<'_>,
        ciphertext: &[u8],
        new: DerivedKeySpec<'_>,
    ) -> Result<CopiedKey> {
        let secret = self.with_ml_kem(keys, key, |kem| kem.decapsulate(ciphertext))?;
        self.p11_store_derived(keys, &truncated(&secret, new.len)?, new)
    }
}

/// The first `len` bytes (1 to 32) of a shared secret.
fn truncated(secret: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>> {
    if len == 0 || len > secret.len() {
        return Err(Error::validation(format!(
            "a key from an ML-KEM shared secret is 1 to {} bytes",
            secret.len()
        )));
    }
    Ok(Zeroizing::new(secret[..len].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_and_m_prime() {
        assert!(split(&[]).is_err());
        assert!(split(&[3, 1, 2]).is_err());
        let (c, m) = split(&[2, 9, 9, 7]).unwrap();
        assert_eq!((c, m), (&[9u8, 9][..], &[7u8][..]));
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"abc");
        let mut framed = vec![1, 0xaa];
        framed.extend_from_slice(digest.as_ref());
        let m = hash_m_prime(PreHash::Sha256, true, &framed).unwrap();
        assert_eq!(&m[..3], &[1, 1, 0xaa]);
        assert_eq!(m[3..14], [6, 9, 0x60, 0x86, 0x48, 1, 0x65, 3, 4, 2, 1]);
        assert_eq!(
            hash_m_prime(PreHash::Sha256, false, &[1, 0xaa, b'a', b'b', b'c']).unwrap(),
            m
        );
        assert!(hash_m_prime(PreHash::Sha384, true, &framed).is_err());
        for h in PreHash::ALL {
            assert_eq!(PreHash::from_wire(h.wire()), Some(h));
        }
        assert_eq!(PreHash::from_wire(0), None);
    }
}
