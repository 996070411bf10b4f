//! Private keys made through PKCS#11 with CKA_EXTRACTABLE true (wrappable
//! as a PKCS#8 PrivateKeyInfo under an AES key) or, with it, CKA_SENSITIVE
//! false (their parts readable, as PKCS#11 3.0 section 4.9 lets the
//! application read them). The rights are given only when the key is made
//! (generated, imported or unwrapped with such a template): a token key
//! carries them in the tags [`EXTRACTABLE_TAG`] and [`READABLE_TAG`], a
//! session key pair in its usages. They can be taken away
//! ([`Hsm::p11_seal_secret`]), never granted later, and KMS-made keys never
//! have them: the KMS API exports no private key.

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::hsm::Hsm;
use crate::mechanisms::SecretKeyRef;
use crate::token::{SessionKeys, EXTRACTABLE_TAG, READABLE_TAG};

/// What a private key may give out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExportRights {
    /// Wrapped (C_WrapKey).
    pub(crate) extractable: bool,
    /// Its parts read (C_GetAttributeValue).
    pub(crate) readable: bool,
}

impl Hsm {
    /// The export rights of `key` if it is a private key (a token key pair
    /// or a session key pair); `None` for a secret key.
    pub(crate) fn private_export_rights(
        &self,
        keys: &SessionKeys,
        key: SecretKeyRef<'_>,
    ) -> Result<Option<ExportRights>> {
        Ok(match key {
            SecretKeyRef::Stored(id) => {
                let state = self.read_state();
                let record = state.key(id)?;
                if !(record.spec.is_rsa() || record.spec.is_ecc() || record.spec.is_ml_dsa()) {
                    return Ok(None);
                }
                let tagged = |t: &str| record.tags.get(t).is_some_and(|v| v == "true");
                let extractable = tagged(EXTRACTABLE_TAG);
                Some(ExportRights {
                    extractable,
                    readable: extractable && tagged(READABLE_TAG),
                })
            }
            SecretKeyRef::Session(id) => keys.lock_pairs().get(&id).map(|p| ExportRights {
                extractable: p.usages.extractable,
                readable: p.usages.extractable && p.usages.readable,
            }),
        })
    }

    /// The PKCS#8 PrivateKeyInfo of `key` when it is a private key whose
    /// rights allow it to be read (`read`) or wrapped (else);
    /// `InvalidKeyUsage` when they do not; `None` for a secret key.
    pub(crate) fn exportable_private(
        &self,
        keys: &SessionKeys,
        key: SecretKeyRef<'_>,
        read: bool,
    ) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let Some(rights) = self.private_export_rights(keys, key)? else {
            return Ok(None);
        };
        let allowed = if read {
            rights.readable
        } else {
            rights.extractable
        };
        if !allowed {
            return Err(Error::InvalidKeyUsage(if read {
                "the private key is sensitive".into()
            } else {
                "the private key is not extractable".into()
            }));
        }
        self.with_private(keys, key, |spec, material| {
            if spec == crate::types::KeySpec::EccEd25519 {
                // The RFC 8410 form (version 1, no public key) that
                // OpenSSL 3.0 and SoftHSM read; stored is version 2.
                let pair =
                    aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(material)
                        .map_err(|_| Error::Internal("stored Ed25519 key unreadable".into()))?;
                let v1 = pair
                    .to_pkcs8v1()
                    .map_err(|_| Error::Internal("Ed25519 key not encodable".into()))?;
                return Ok(Some(Zeroizing::new(v1.as_ref().to_vec())));
            }
            Ok(Some(Zeroizing::new(material.to_vec())))
        })
    }

    /// Takes export rights away from a session key pair (`readable`
    /// always, `extractable` when `unextractable`); false when `id` is
    /// not a session key pair.
    pub(crate) fn seal_session_pair(
        &self,
        keys: &SessionKeys,
        id: u64,
        unextractable: bool,
    ) -> bool {
        match keys.lock_pairs().get_mut(&id) {
            Some(pair) => {
                pair.usages.readable = false;
                if unextractable {
                    pair.usages.extractable = false;
                }
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanisms::WrapMode;
    use crate::outputs::CreateKeyRequest;
    use crate::token::PairUsages;
    use crate::types::{KeySpec, KeyUsage};
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
        Hsm::init(dir, &SecretString::from("export"), options).unwrap()
    }

    /// Only a pair made through PKCS#11 with the rights gives its PKCS#8
    /// out (read or wrapped); a KMS-made key never does; sealing takes the
    /// rights away for good, on token keys and session pairs alike.
    #[test]
    fn only_pairs_made_open_give_their_material_out() {
        let dir = tempfile::tempdir().unwrap();
        let hsm = hsm(dir.path());
        let keys = SessionKeys::new();
        let kek = keys.import(&[9u8; 32], false).unwrap();
        let kek = SecretKeyRef::Session(kek);
        let kms = hsm
            .create_key(CreateKeyRequest {
                key_spec: Some(KeySpec::EccNistP256),
                key_usage: Some(KeyUsage::SignVerify),
                ..Default::default()
            })
            .unwrap();
        let kms = SecretKeyRef::Stored(&kms.key_id);
        assert!(matches!(
            hsm.p11_secret_value(&keys, kms),
            Err(Error::InvalidKeyUsage(_))
        ));
        assert!(matches!(
            hsm.p11_wrap(&keys, kek, WrapMode::Kwp, kms),
            Err(Error::InvalidKeyUsage(_))
        ));
        let open = PairUsages {
            sign: true,
            extractable: true,
            readable: true,
            ..Default::default()
        };
        let (meta, _) = hsm
            .p11_create_key_pair("tok", KeySpec::EccNistP256, open, "open")
            .unwrap();
        let (session_id, _) = hsm
            .p11_generate_session_pair(&keys, KeySpec::EccNistP256, open)
            .unwrap();
        for key in [
            SecretKeyRef::Stored(&meta.key_id),
            SecretKeyRef::Session(session_id),
        ] {
            let pkcs8 = hsm.p11_secret_value(&keys, key).unwrap();
            let wrapped = hsm.p11_wrap(&keys, kek, WrapMode::Kwp, key).unwrap();
            let plain = crate::mechanisms::aes_unwrap(&[9u8; 32], WrapMode::Kwp, &wrapped).unwrap();
            assert_eq!(plain, pkcs8);
            // Readability goes first, then extractability; neither returns.
            hsm.p11_seal_secret(&keys, key, false).unwrap();
            assert!(hsm.p11_secret_value(&keys, key).is_err());
            hsm.p11_wrap(&keys, kek, WrapMode::Kwp, key).unwrap();
            hsm.p11_seal_secret(&keys, key, true).unwrap();
            assert!(matches!(
                hsm.p11_wrap(&keys, kek, WrapMode::Kwp, key),
                Err(Error::InvalidKeyUsage(_))
            ));
        }
        // Readable without extractable is not readable.
        let readable_only = PairUsages {
            sign: true,
            readable: true,
            ..Default::default()
        };
        let (meta, _) = hsm
            .p11_create_key_pair("tok", KeySpec::EccNistP256, readable_only, "x")
            .unwrap();
        assert!(hsm
            .p11_secret_value(&keys, SecretKeyRef::Stored(&meta.key_id))
            .is_err());
    }
}
