//! Private keys brought in through PKCS#11: C_CreateObject with a key's
//! parts (the module encodes them as a PKCS#8 PrivateKeyInfo) and
//! C_UnwrapKey of a PKCS#8 PrivateKeyInfo under an AES key (RFC 3394 /
//! RFC 5649) or an RSA key pair (RSAES-OAEP, RSAES-PKCS1-v1_5); also the
//! RSA key transport of secret keys (C_WrapKey / C_UnwrapKey with
//! CKM_RSA_PKCS and CKM_RSA_PKCS_OAEP).
//!
//! Imported material is parsed and checked by aws-lc-rs (an RSA key's CRT
//! parts must match its modulus, an EC key's scalar must be on its curve),
//! re-encoded in the form generated keys have, and sealed like them: a
//! token key (a KMS key of origin EXTERNAL) or a session key pair. The
//! plaintext stays in `Zeroizing` buffers; errors name the key type only.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::hsm::Hsm;
use crate::mechanisms::{SecretKeyRef, WrapMode};
use crate::outputs::CreateKeyRequest;
use crate::token::session_keys::SessionPair;
use crate::token::{CopiedKey, PairUsages, SessionKeys};
use crate::types::{KeySpec, Origin};

/// Largest wrapped private key accepted (an RSA-4096 PKCS#8 with CRT parts
/// is about 2.4 KB).
const MAX_WRAPPED_PRIVATE: usize = 8 * 1024;

/// The family of a private key, as the PKCS#11 template names it
/// (CKA_KEY_TYPE); the material must be of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivateKind {
    /// CKK_RSA (2048, 3072 or 4096 bits).
    Rsa,
    /// CKK_EC on NIST P-256, P-384 or P-521.
    Ec,
    /// CKK_EC_EDWARDS (Ed25519).
    Ed25519,
    /// CKK_EC_MONTGOMERY (X25519).
    X25519,
    /// CKK_ML_DSA with CKP_ML_DSA_44 (a PKCS#8 with its seed).
    MlDsa44,
    /// CKK_ML_DSA with CKP_ML_DSA_65.
    MlDsa65,
    /// CKK_ML_DSA with CKP_ML_DSA_87.
    MlDsa87,
}

impl PrivateKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PrivateKind::Rsa => "RSA",
            PrivateKind::Ec => "EC",
            PrivateKind::Ed25519 => "ED25519",
            PrivateKind::X25519 => "X25519",
            PrivateKind::MlDsa44 => "ML_DSA_44",
            PrivateKind::MlDsa65 => "ML_DSA_65",
            PrivateKind::MlDsa87 => "ML_DSA_87",
        }
    }

    /// Parses [`PrivateKind::as_str`].
    pub fn parse(text: &str) -> Result<PrivateKind> {
        Ok(match text {
            "RSA" => PrivateKind::Rsa,
            "EC" => PrivateKind::Ec,
            "ED25519" => PrivateKind::Ed25519,
            "X25519" => PrivateKind::X25519,
            "ML_DSA_44" => PrivateKind::MlDsa44,
            "ML_DSA_65" => PrivateKind::MlDsa65,
            "ML_DSA_87" => PrivateKind::MlDsa87,
            _ => return Err(Error::validation("unknown private key kind")),
        })
    }
}

/// How a key is wrapped for transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyTransport {
    /// Under an AES key: RFC 3394 or RFC 5649.
    Aes(WrapMode),
    /// Under an RSA key pair, RSAES-PKCS1-v1_5 (CKM_RSA_PKCS).
    RsaPkcs1,
    /// Under an RSA key pair, RSAES-OAEP (CKM_RSA_PKCS_OAEP) with SHA-1 or
    /// SHA-256 and a label (empty: none).
    RsaOaep {
        /// SHA-256 (else SHA-1), MGF1 with the same hash.
        sha256: bool,
        /// The OAEP label (pSourceData).
        label: Vec<u8>,
    },
}

/// A private key a call made: where it is, its spec and its DER
/// SubjectPublicKeyInfo.
#[derive(Debug, Clone)]
pub struct ImportedPair {
    /// The new key.
    pub key: CopiedKey,
    /// Its spec (the module's CKA_KEY_TYPE, curve and modulus size).
    pub spec: KeySpec,
    /// The DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
}

fn not_of_kind(kind: PrivateKind) -> Error {
    Error::validation(format!(
        "the key material is not a supported {} private key",
        kind.as_str()
    ))
}

/// Parses a PKCS#8 PrivateKeyInfo of `kind` and re-encodes it as generated
/// keys are stored; returns the spec and the material.
fn normalize(kind: PrivateKind, pkcs8: &[u8]) -> Result<(KeySpec, Zeroizing<Vec<u8>>)> {
    let bad = || not_of_kind(kind);
    match kind {
        PrivateKind::Rsa => {
            // RSA_1024 (legacy, PKCS#11 only): aws-lc-rs refuses the size.
            if let Some(small) = crate::asymmetric::rsa_small::normalize(pkcs8) {
                return Ok(small);
            }
            let key = aws_lc_rs::rsa::KeyPair::from_pkcs8(pkcs8).map_err(|_| bad())?;
            let spec = match key.public_modulus_len() {
                256 => KeySpec::Rsa2048,
                384 => KeySpec::Rsa3072,
                512 => KeySpec::Rsa4096,
                1024 => KeySpec::Rsa8192,
                _ => {
                    return Err(Error::validation(
                        "RSA keys of 1024, 2048, 3072, 4096 or 8192 bits are imported",
                    ))
                }
            };
            let der = key.as_der().map_err(|_| bad())?;
            Ok((spec, Zeroizing::new(der.as_ref().to_vec())))
        }
        PrivateKind::Ec => {
            for (spec, alg) in [
                (
                    KeySpec::EccNistP256,
                    &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                ),
                (
                    KeySpec::EccNistP384,
                    &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                ),
                (
                    KeySpec::EccNistP521,
                    &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
                ),
            ] {
                if let Ok(key) = EcdsaKeyPair::from_pkcs8(alg, pkcs8) {
                    let der = key.to_pkcs8v1().map_err(|_| bad())?;
                    return Ok((spec, Zeroizing::new(der.as_ref().to_vec())));
                }
            }
            Err(bad())
        }
        PrivateKind::Ed25519 => {
            let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(|_| bad())?;
            let der = key.to_pkcs8().map_err(|_| bad())?;
            Ok((KeySpec::EccEd25519, Zeroizing::new(der.as_ref().to_vec())))
        }
        PrivateKind::X25519 => {
            // RFC 8410 form only (what the module and OpenSSL write).
            crate::asymmetric::x25519::parse(pkcs8).map_err(|_| bad())?;
            Ok((KeySpec::EccX25519, Zeroizing::new(pkcs8.to_vec())))
        }
        PrivateKind::MlDsa44 | PrivateKind::MlDsa65 | PrivateKind::MlDsa87 => {
            // Seed, expanded-with-seed or both forms of this parameter set
            // (its OID), stored in the seed form generated keys have.
            let spec = match kind {
                PrivateKind::MlDsa44 => KeySpec::MlDsa44,
                PrivateKind::MlDsa65 => KeySpec::MlDsa65,
                _ => KeySpec::MlDsa87,
            };
            let der = crate::asymmetric::mldsa::normalize_pkcs8(spec, pkcs8).map_err(|_| bad())?;
            Ok((spec, der))
        }
    }
}

impl Hsm {
    /// Imports a private key (PKCS#8 PrivateKeyInfo of `kind`) with
    /// `usages`: a token key in the namespace `token` (origin EXTERNAL),
    /// or a session key pair in `keys` when `token` is `None`. Material
    /// that does not parse as `kind`, or usages the type cannot have, are
    /// a `ValidationException`.
    pub fn p11_import_private(
        &self,
        keys: &SessionKeys,
        token: Option<&str>,
        kind: PrivateKind,
        pkcs8: &[u8],
        usages: PairUsages,
    ) -> Result<ImportedPair> {
        let (spec, material) = normalize(kind, pkcs8)?;
        usages.check(spec)?;
        let public_key = crate::asymmetric::public_key_der(spec, &material)?;
        let key = match token {
            None => {
                let material = std::sync::Arc::new(crate::cache::VersionMaterial::new(material));
                CopiedKey::Session(keys.insert_pair(SessionPair {
                    spec,
                    material,
                    usages,
                })?)
            }
            Some(label) => {
                let usage = usages.primary();
                let request = CreateKeyRequest {
                    description: "PKCS#11 imported key pair".to_string(),
                    key_spec: Some(spec),
                    key_usage: Some(usage),
                    token: Some(label.to_string()),
                    ..Default::default()
                };
                let tags = usages.pair_tags(usage);
                CopiedKey::Stored(self.create_key_with_material(
                    request,
                    Origin::External,
                    Some(&material),
                    &tags,
                )?)
            }
        };
        Ok(ImportedPair {
            key,
            spec,
            public_key,
        })
    }

    /// Unwraps a PKCS#8 PrivateKeyInfo of `kind` with `unwrapping` (an AES
    /// key, or an RSA key pair that may decrypt) and imports it as
    /// [`Hsm::p11_import_private`] does. A wrapped key that does not
    /// unwrap or parse is an `InvalidCiphertextException`.
    #[allow(clippy::too_many_arguments)]
    pub fn p11_unwrap_private(
        &self,
        keys: &SessionKeys,
        unwrapping: SecretKeyRef<'_>,
        transport: &KeyTransport,
        wrapped: &[u8],
        token: Option<&str>,
        kind: PrivateKind,
        usages: PairUsages,
    ) -> Result<ImportedPair> {
        if wrapped.len() > MAX_WRAPPED_PRIVATE {
            return Err(Error::InvalidCiphertext("wrapped key too large".into()));
        }
        let plain = self.p11_unwrap_transport(keys, unwrapping, transport, wrapped)?;
        match normalize(kind, &plain) {
            Ok(_) => self.p11_import_private(keys, token, kind, &plain, usages),
            Err(_) => Err(Error::InvalidCiphertext(format!(
                "the unwrapped key is not a {} private key",
                kind.as_str()
            ))),
        }
    }

    /// The plaintext of a wrapped key.
    pub(crate) fn p11_unwrap_transport(
        &self,
        keys: &SessionKeys,
        unwrapping: SecretKeyRef<'_>,
        transport: &KeyTransport,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let failed = || Error::InvalidCiphertext("unwrap failed".into());
        match transport {
            KeyTransport::Aes(mode) => {
                if wrapped.len() < 16 || wrapped.len() > MAX_WRAPPED_PRIVATE {
                    return Err(failed());
                }
                self.with_secret(keys, unwrapping, |kek_bytes| {
                    crate::mechanisms::aes_unwrap(kek_bytes, *mode, wrapped)
                })
            }
            KeyTransport::RsaPkcs1 => self
                .p11_rsa_pkcs1_crypt(keys, unwrapping, false, wrapped)
                .map_err(|e| match e {
                    Error::InvalidKeyUsage(m) => Error::InvalidKeyUsage(m),
                    _ => failed(),
                }),
            KeyTransport::RsaOaep { sha256, label } => self
                .p11_rsa_oaep_checked(keys, unwrapping, *sha256, false, wrapped, label)
                .map_err(|e| match e {
                    Error::InvalidKeyUsage(m) => Error::InvalidKeyUsage(m),
                    _ => failed(),
                }),
        }
    }

    /// Wraps an extractable secret key (a session key, or a token key
    /// tagged extractable) for transport under an RSA key pair that may
    /// encrypt. AES transports are [`Hsm::p11_wrap`].
    pub fn p11_wrap_rsa(
        &self,
        keys: &SessionKeys,
        wrapping: SecretKeyRef<'_>,
        transport: &KeyTransport,
        target: SecretKeyRef<'_>,
    ) -> Result<Vec<u8>> {
        let plain = self.extractable_secret(keys, target)?;
        let out = match transport {
            KeyTransport::Aes(_) => {
                return Err(Error::validation("an AES transport is not an RSA one"))
            }
            KeyTransport::RsaPkcs1 => self.p11_rsa_pkcs1_crypt(keys, wrapping, true, &plain)?,
            KeyTransport::RsaOaep { sha256, label } => {
                self.p11_rsa_oaep_checked(keys, wrapping, *sha256, true, &plain, label)?
            }
        };
        Ok(out.to_vec())
    }

    /// Unwraps a secret key wrapped for transport (under an AES key or an
    /// RSA key pair) into a new key: a token key in the namespace `token` (`aes`: AES of
    /// 16, 24 or 32 bytes, else an HMAC key of 28, 32, 48 or 64) or a
    /// session key of 1 to 512 bytes. Returns it and its length.
    #[allow(clippy::too_many_arguments)]
    pub fn p11_unwrap_secret(
        &self,
        keys: &SessionKeys,
        unwrapping: SecretKeyRef<'_>,
        transport: &KeyTransport,
        wrapped: &[u8],
        token: Option<&str>,
        aes: bool,
        extractable: bool,
    ) -> Result<(CopiedKey, usize)> {
        let plain = self.p11_unwrap_transport(keys, unwrapping, transport, wrapped)?;
        let len = plain.len();
        let shape_ok = if aes {
            matches!(len, 16 | 24 | 32)
        } else {
            (1..=512).contains(&len)
        };
        if !shape_ok {
            return Err(Error::InvalidCiphertext(
                "the unwrapped key has a length its type cannot have".into(),
            ));
        }
        let key = match token {
            Some(label) => CopiedKey::Stored(self.p11_import_secret(
                label,
                aes,
                &plain,
                "PKCS#11 unwrapped key",
                extractable,
            )?),
            None => CopiedKey::Session(keys.insert(plain, extractable)?),
        };
        Ok((key, len))
    }

    /// RSA-OAEP on a key pair whose usages include ENCRYPT_DECRYPT (a
    /// signing-only key never decrypts).
    fn p11_rsa_oaep_checked(
        &self,
        keys: &SessionKeys,
        key: SecretKeyRef<'_>,
        sha256: bool,
        encrypt: bool,
        data: &[u8],
        label: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        self.check_rsa_decrypt_usage(keys, key)?;
        self.p11_rsa_oaep(keys, key, sha256, encrypt, data, label)
    }

    fn check_rsa_decrypt_usage(&self, keys: &SessionKeys, key: SecretKeyRef<'_>) -> Result<()> {
        let ok = match key {
            SecretKeyRef::Stored(id) => {
                let state = self.read_state();
                let record = state.key(id)?;
                record.spec.is_rsa() && record.p11_allows(crate::types::KeyUsage::EncryptDecrypt)
            }
            SecretKeyRef::Session(id) => keys
                .lock_pairs()
                .get(&id)
                .is_some_and(|p| p.spec.is_rsa() && p.usages.decrypt),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidKeyUsage(
                "not an RSA key pair that may encrypt and decrypt".into(),
            ))
        }
    }

    /// The bytes of an extractable secret key.
    pub(crate) fn extractable_secret(
        &self,
        keys: &SessionKeys,
        target: SecretKeyRef<'_>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let unextractable = || Error::InvalidKeyUsage("the key is not extractable".into());
        match target {
            SecretKeyRef::Session(id) => {
                let table = keys.lock();
                let entry = table
                    .get(&id)
                    .ok_or_else(|| Error::NotFound("session key".into()))?;
                if !entry.extractable {
                    return Err(unextractable());
                }
                Ok(entry.bytes.clone())
            }
            SecretKeyRef::Stored(id) => {
                let tagged = self
                    .read_state()
                    .key(id)?
                    .tags
                    .get(crate::token::EXTRACTABLE_TAG)
                    .is_some_and(|v| v == "true");
                if !tagged {
                    return Err(unextractable());
                }
                self.with_secret(keys, target, |bytes| Ok(Zeroizing::new(bytes.to_vec())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HsmOptions, KdfParams, SecretString};

    fn hsm(dir: &std::path::Path) -> Hsm {
        let options = HsmOptions {
            kdf: KdfParams {
                memory_kib: 8192,
                iterations: 1,
                parallelism: 1,
            },
            ..HsmOptions::default()
        };
        Hsm::init(dir, &SecretString::from("import"), options).unwrap()
    }

    /// X25519 keys are PKCS#11 keys: the KMS API does not make them, a
    /// token pair agrees keys only and shows its public key; imported
    /// material must be of the kind the template names.
    #[test]
    fn x25519_is_pkcs11_only_and_kinds_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let hsm = hsm(dir.path());
        let refused = hsm.create_key(CreateKeyRequest {
            key_spec: Some(KeySpec::EccX25519),
            ..Default::default()
        });
        assert!(matches!(refused, Err(Error::Validation(_))), "{refused:?}");
        let derive = PairUsages {
            derive: true,
            ..Default::default()
        };
        let signing = PairUsages {
            sign: true,
            ..Default::default()
        };
        let (meta, spki) = hsm
            .p11_create_key_pair("tok", KeySpec::EccX25519, derive, "x")
            .unwrap();
        assert_eq!(spki.len(), 44);
        assert_eq!(
            &spki[..12],
            &[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00]
        );
        assert_eq!(hsm.get_public_key(&meta.key_id).unwrap().public_key, spki);
        assert!(matches!(
            hsm.p11_create_key_pair("tok", KeySpec::EccX25519, signing, "x"),
            Err(Error::Validation(_))
        ));
        let keys = SessionKeys::new();
        let x25519 = crate::asymmetric::x25519::pkcs8_of(&[7u8; 32]);
        let made = hsm
            .p11_import_private(&keys, None, PrivateKind::X25519, &x25519, derive)
            .unwrap();
        assert_eq!(made.spec, KeySpec::EccX25519);
        for kind in [PrivateKind::Rsa, PrivateKind::Ec, PrivateKind::Ed25519] {
            assert!(matches!(
                hsm.p11_import_private(&keys, None, kind, &x25519, signing),
                Err(Error::Validation(_))
            ));
        }
    }
}
