//! A private key parsed once from its PKCS#8 DER, to sign and verify many
//! times without parsing (and re-validating) the key on every call.

use std::fmt;

use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair};

use super::mldsa::MlDsaKey;
use super::mlkem::MlKemKey;
use super::{check_message, check_signing_algorithm, ecc, message_digest, rsa};
use crate::error::{Error, Result};
use crate::types::{KeySpec, MessageType, SigningAlgorithm};

/// A parsed RSA, ECDSA, Ed25519, ML-DSA or ML-KEM private key of a known
/// spec.
///
/// The library objects hold the key in memory the library frees (and
/// clears) on drop; `Debug` prints the spec only.
pub(crate) enum PrivateKey {
    /// An RSA key of an RSA spec.
    Rsa(KeySpec, RsaKeyPair),
    /// An RSA key of a size aws-lc-rs refuses (RSA_1024): checked, its
    /// DER SubjectPublicKeyInfo kept; PKCS#11 operations use the stored
    /// bytes on the crypto-bigint path, and the KMS API does not sign with it.
    RsaSmall(KeySpec, Vec<u8>),
    /// An ECDSA key bound to its curve's hash, DER signatures.
    Ecdsa(KeySpec, EcdsaKeyPair),
    /// An Ed25519 key.
    Ed25519(Ed25519KeyPair),
    /// An X25519 key (key agreement only).
    X25519(aws_lc_rs::agreement::PrivateKey),
    /// An ML-DSA key (seed form).
    MlDsa(Box<MlDsaKey>),
    /// An ML-KEM decapsulation key.
    MlKem(Box<MlKemKey>),
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({} <redacted>)", self.spec())
    }
}

impl PrivateKey {
    /// Parses stored PKCS#8 DER as a key of `spec`; material that does not
    /// parse as that spec is a `KMSInternalException` naming the spec only.
    pub(crate) fn from_pkcs8(spec: KeySpec, private_pkcs8: &[u8]) -> Result<Self> {
        match spec {
            KeySpec::Rsa1024 | KeySpec::RsaOtherSize => {
                super::rsa_small::check(spec, private_pkcs8)?;
                Ok(PrivateKey::RsaSmall(
                    spec,
                    super::rsa_pkcs1::public_key_der(spec, private_pkcs8)?,
                ))
            }
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 | KeySpec::Rsa8192 => {
                Ok(PrivateKey::Rsa(spec, rsa::parse(spec, private_pkcs8)?))
            }
            KeySpec::EccNistP256 | KeySpec::EccNistP384 | KeySpec::EccNistP521 => Ok(
                PrivateKey::Ecdsa(spec, ecc::parse_ecdsa(spec, private_pkcs8)?),
            ),
            KeySpec::EccEd25519 => Ok(PrivateKey::Ed25519(ecc::parse_ed25519(private_pkcs8)?)),
            KeySpec::EccX25519 => Ok(PrivateKey::X25519(super::x25519::parse(private_pkcs8)?)),
            KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87 => Ok(PrivateKey::MlDsa(
                Box::new(MlDsaKey::parse(spec, private_pkcs8)?),
            )),
            KeySpec::MlKem512 | KeySpec::MlKem768 | KeySpec::MlKem1024 => Ok(PrivateKey::MlKem(
                Box::new(MlKemKey::parse(spec, private_pkcs8)?),
            )),
            other => Err(Error::InvalidKeyUsage(format!(
                "a {other} key has no public key and does not sign"
            ))),
        }
    }

    /// The key's spec.
    pub(crate) fn spec(&self) -> KeySpec {
        match self {
            PrivateKey::Rsa(spec, _)
            | PrivateKey::RsaSmall(spec, _)
            | PrivateKey::Ecdsa(spec, _) => *spec,
            PrivateKey::Ed25519(_) => KeySpec::EccEd25519,
            PrivateKey::X25519(_) => KeySpec::EccX25519,
            PrivateKey::MlDsa(key) => key.spec(),
            PrivateKey::MlKem(key) => key.spec(),
        }
    }

    /// The DER SubjectPublicKeyInfo.
    pub(crate) fn public_key_der(&self) -> Result<Vec<u8>> {
        match self {
            PrivateKey::Rsa(_, key) => rsa::public_key_der(key),
            PrivateKey::RsaSmall(_, spki) => Ok(spki.clone()),
            PrivateKey::Ecdsa(_, key) => ecc::ecdsa_public_key_der(key),
            PrivateKey::Ed25519(key) => ecc::ed25519_public_key_der(key),
            PrivateKey::X25519(key) => super::x25519::public_key_der(key),
            PrivateKey::MlDsa(key) => key.public_key_der(),
            PrivateKey::MlKem(key) => key.public_key_der(),
        }
    }

    /// Signs as [`super::sign`] does: the algorithm must fit the spec
    /// (`InvalidKeyUsageException`) and the message its type
    /// (`ValidationException`).
    pub(crate) fn sign(
        &self,
        algorithm: SigningAlgorithm,
        message: &[u8],
        message_type: MessageType,
    ) -> Result<Vec<u8>> {
        check_signing_algorithm(self.spec(), algorithm)?;
        check_message(algorithm, message, message_type)?;
        match self {
            PrivateKey::Rsa(_, key) => {
                let digest = message_digest(algorithm, message, message_type)?;
                rsa::sign_digest(key, algorithm, &digest)
            }
            PrivateKey::Ecdsa(_, key) => {
                let digest = message_digest(algorithm, message, message_type)?;
                ecc::ecdsa_sign_digest(key, &digest)
            }
            PrivateKey::Ed25519(key) => ecc::ed25519_sign(key, message),
            PrivateKey::MlDsa(key) => match message_type {
                MessageType::ExternalMu => key.sign_mu(message),
                _ => key.sign_raw(message),
            },
            PrivateKey::MlKem(_) | PrivateKey::X25519(_) | PrivateKey::RsaSmall(..) => {
                Err(no_signing(self.spec()))
            }
        }
    }

    /// Verifies as [`super::verify`] does: `Ok(false)` for any signature
    /// that does not verify, malformed bytes included.
    pub(crate) fn verify(
        &self,
        algorithm: SigningAlgorithm,
        message: &[u8],
        message_type: MessageType,
        signature: &[u8],
    ) -> Result<bool> {
        check_signing_algorithm(self.spec(), algorithm)?;
        check_message(algorithm, message, message_type)?;
        match self {
            PrivateKey::Rsa(_, key) => {
                let digest = message_digest(algorithm, message, message_type)?;
                rsa::verify_digest(key, algorithm, &digest, signature)
            }
            PrivateKey::Ecdsa(spec, key) => {
                let digest = message_digest(algorithm, message, message_type)?;
                ecc::ecdsa_verify_digest(*spec, key, &digest, signature)
            }
            PrivateKey::Ed25519(key) => Ok(ecc::ed25519_verify(key, message, signature)),
            PrivateKey::MlDsa(key) => match message_type {
                MessageType::ExternalMu => key.verify_mu(message, signature),
                _ => key.verify_raw(message, signature),
            },
            PrivateKey::MlKem(_) | PrivateKey::X25519(_) | PrivateKey::RsaSmall(..) => {
                Err(no_signing(self.spec()))
            }
        }
    }
}

/// The error for a signing call on a key that does not sign (reached only
/// if the algorithm table let it through).
fn no_signing(spec: KeySpec) -> Error {
    Error::InvalidKeyUsage(format!("a {spec} key does not sign"))
}
