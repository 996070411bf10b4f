//! ML-KEM (FIPS 203) key pairs: ML-KEM-512, ML-KEM-768 and ML-KEM-1024,
//! all from aws-lc-rs (`aws_lc_rs::kem`, stable API).
//!
//! aws-lc-rs 1.19 generates ML-KEM keys without exposing the seed (d, z)
//! and loads a decapsulation key only in its expanded FIPS 203 form, so
//! the stored material is the expanded decapsulation key
//! `dk = dk_pke || ek || H(ek) || z` (1632, 2400 or 3168 bytes). The
//! encapsulation key (public key) is read out of it.

use aws_lc_rs::kem::{
    Algorithm, AlgorithmId, Ciphertext, DecapsulationKey, EncapsulationKey, ML_KEM_1024,
    ML_KEM_512, ML_KEM_768,
};
use zeroize::Zeroizing;

use super::{crypto_failure, malformed_key};
use crate::error::{Error, Result};
use crate::types::KeySpec;

fn algorithm(spec: KeySpec) -> Result<&'static Algorithm<AlgorithmId>> {
    match spec {
        KeySpec::MlKem512 => Ok(&ML_KEM_512),
        KeySpec::MlKem768 => Ok(&ML_KEM_768),
        KeySpec::MlKem1024 => Ok(&ML_KEM_1024),
        other => Err(Error::Internal(format!(
            "{other} is not an ML-KEM key spec"
        ))),
    }
}

/// k, the module rank of the parameter set (2, 3, 4).
fn rank(spec: KeySpec) -> Result<usize> {
    match spec {
        KeySpec::MlKem512 => Ok(2),
        KeySpec::MlKem768 => Ok(3),
        KeySpec::MlKem1024 => Ok(4),
        other => Err(Error::Internal(format!(
            "{other} is not an ML-KEM key spec"
        ))),
    }
}

/// The encapsulation key length: 384k + 32 (800, 1184, 1568 bytes).
pub(crate) fn public_key_len(spec: KeySpec) -> Result<usize> {
    Ok(384 * rank(spec)? + 32)
}

/// The expanded decapsulation key length: 768k + 96.
pub(crate) fn private_key_len(spec: KeySpec) -> Result<usize> {
    Ok(768 * rank(spec)? + 96)
}

/// The ciphertext length (768, 1088, 1568 bytes).
pub(crate) fn ciphertext_len(spec: KeySpec) -> Result<usize> {
    Ok(match spec {
        KeySpec::MlKem512 => 768,
        KeySpec::MlKem768 => 1088,
        KeySpec::MlKem1024 => 1568,
        other => {
            return Err(Error::Internal(format!(
                "{other} is not an ML-KEM key spec"
            )))
        }
    })
}

/// The last byte of id-alg-ml-kem-* (2.16.840.1.101.3.4.4.1-3).
fn oid_last(spec: KeySpec) -> Result<u8> {
    match spec {
        KeySpec::MlKem512 => Ok(0x01),
        KeySpec::MlKem768 => Ok(0x02),
        KeySpec::MlKem1024 => Ok(0x03),
        other => Err(Error::Internal(format!(
            "{other} is not an ML-KEM key spec"
        ))),
    }
}

/// Generates a key of `spec`: the expanded decapsulation key.
pub(crate) fn generate(spec: KeySpec) -> Result<Zeroizing<Vec<u8>>> {
    let key = DecapsulationKey::generate(algorithm(spec)?)
        .map_err(|_| crypto_failure("ML-KEM key generation"))?;
    let bytes = key
        .key_bytes()
        .map_err(|_| crypto_failure("ML-KEM key encoding"))?;
    Ok(Zeroizing::new(bytes.as_ref().to_vec()))
}

/// An ML-KEM decapsulation key parsed from its stored expanded form.
pub(crate) struct MlKemKey {
    spec: KeySpec,
    key: DecapsulationKey<AlgorithmId>,
    public: Vec<u8>,
    /// The encapsulation key, parsed once.
    encapsulation: EncapsulationKey<AlgorithmId>,
}

impl MlKemKey {
    /// Parses a stored expanded decapsulation key of `spec`; the hash of
    /// the encapsulation key inside it must match (FIPS 203 section 7.3).
    pub(crate) fn parse(spec: KeySpec, dk: &[u8]) -> Result<Self> {
        if dk.len() != private_key_len(spec)? {
            return Err(malformed_key(spec));
        }
        let k = rank(spec)?;
        let public = dk[384 * k..768 * k + 32].to_vec();
        let hash = &dk[768 * k + 32..768 * k + 64];
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA3_256, &public);
        if aws_lc_rs::constant_time::verify_slices_are_equal(digest.as_ref(), hash).is_err() {
            return Err(malformed_key(spec));
        }
        let key = DecapsulationKey::new(algorithm(spec)?, dk).map_err(|_| malformed_key(spec))?;
        let encapsulation =
            EncapsulationKey::new(algorithm(spec)?, &public).map_err(|_| malformed_key(spec))?;
        Ok(MlKemKey {
            spec,
            key,
            public,
            encapsulation,
        })
    }

    /// The key's spec.
    pub(crate) fn spec(&self) -> KeySpec {
        self.spec
    }

    #[cfg_attr(not(test), allow(dead_code))] // the tests
    /// The raw encapsulation key (FIPS 203 ek).
    pub(crate) fn public_key_raw(&self) -> &[u8] {
        &self.public
    }

    /// The DER SubjectPublicKeyInfo (id-alg-ml-kem-512/768/1024).
    pub(crate) fn public_key_der(&self) -> Result<Vec<u8>> {
        public_key_der(self.spec, &self.public)
    }

    /// ML-KEM.Encaps to this key's public key: (ciphertext, shared secret).
    pub(crate) fn encapsulate(&self) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
        let (ciphertext, secret) = self
            .encapsulation
            .encapsulate()
            .map_err(|_| crypto_failure("ML-KEM encapsulation"))?;
        Ok((
            ciphertext.as_ref().to_vec(),
            Zeroizing::new(secret.as_ref().to_vec()),
        ))
    }

    /// ML-KEM.Decaps. A ciphertext of the wrong length is
    /// `InvalidCiphertextException`; any other yields 32 bytes (implicit
    /// rejection), as in KMS.
    pub(crate) fn decapsulate(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if ciphertext.len() != ciphertext_len(self.spec)? {
            return Err(Error::InvalidCiphertext(format!(
                "a {} ciphertext is {} bytes, got {}",
                self.spec,
                ciphertext_len(self.spec)?,
                ciphertext.len()
            )));
        }
        let secret = self
            .key
            .decapsulate(Ciphertext::from(ciphertext))
            .map_err(|_| crypto_failure("ML-KEM decapsulation"))?;
        Ok(Zeroizing::new(secret.as_ref().to_vec()))
    }
}

/// The DER SubjectPublicKeyInfo of a raw encapsulation key of `spec`.
pub(crate) fn public_key_der(spec: KeySpec, ek: &[u8]) -> Result<Vec<u8>> {
    let bit_string_len = ek.len() + 1;
    let inner_len = 13 + 4 + bit_string_len;
    let mut der = Vec::with_capacity(4 + inner_len);
    der.extend_from_slice(&[0x30, 0x82, (inner_len >> 8) as u8, inner_len as u8]);
    der.extend_from_slice(&[
        0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04,
    ]);
    der.push(oid_last(spec)?);
    der.extend_from_slice(&[
        0x03,
        0x82,
        (bit_string_len >> 8) as u8,
        bit_string_len as u8,
        0x00,
    ]);
    der.extend_from_slice(ek);
    Ok(der)
}

/// ML-KEM.Encaps to a raw encapsulation key of `spec` (for PKCS#11 public
/// key objects): (ciphertext, shared secret). A malformed key is a
/// `ValidationException`.
pub(crate) fn encapsulate(spec: KeySpec, ek: &[u8]) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    let key = EncapsulationKey::new(algorithm(spec)?, ek)
        .map_err(|_| Error::Validation(format!("not a valid {spec} encapsulation key")))?;
    let (ciphertext, secret) = key
        .encapsulate()
        .map_err(|_| crypto_failure("ML-KEM encapsulation"))?;
    Ok((
        ciphertext.as_ref().to_vec(),
        Zeroizing::new(secret.as_ref().to_vec()),
    ))
}
