//! Secret keys made with CKA_SENSITIVE false and CKA_EXTRACTABLE true,
//! whose value PKCS#11 lets the application read (C_GetAttributeValue of
//! CKA_VALUE). Readability is decided when the key is made and can only be
//! taken away (CKA_SENSITIVE set true, CKA_EXTRACTABLE set false), never
//! granted later, so no caller can turn a sealed key into a readable one.

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::hsm::Hsm;
use crate::mechanisms::{check_aes_len, random_bytes, SecretKeyRef};
use crate::outputs::CreateKeyRequest;
use crate::token::{SessionKeys, EXTRACTABLE_TAG};
use crate::types::{KeyMetadata, KeySpec, KeyUsage, Origin, Tag};

/// The tag that marks a token secret key's value as readable.
pub const READABLE_TAG: &str = "pkcs11:readable";

fn not_readable() -> Error {
    Error::InvalidKeyUsage("the key's value is sensitive".into())
}

impl Hsm {
    /// Creates a readable (and extractable) token secret key in the
    /// namespace `token`: AES of 16, 24 or 32 bytes, or a generic secret
    /// (HMAC) key of 1 to 512; generated when `value` is `None`, else
    /// imported.
    pub fn p11_create_readable_secret(
        &self,
        token: &str,
        aes: bool,
        len: usize,
        value: Option<&[u8]>,
        description: &str,
    ) -> Result<KeyMetadata> {
        let spec = if aes {
            check_aes_len(len)?;
            KeySpec::SymmetricDefault
        } else {
            super::hmac_spec(len)?
        };
        let usage = if aes {
            KeyUsage::EncryptDecrypt
        } else {
            KeyUsage::GenerateVerifyMac
        };
        let request = CreateKeyRequest {
            description: description.to_string(),
            key_spec: Some(spec),
            key_usage: Some(usage),
            token: Some(token.to_string()),
            ..Default::default()
        };
        let mut tags = [EXTRACTABLE_TAG, READABLE_TAG]
            .map(|k| Tag {
                tag_key: k.to_string(),
                tag_value: "true".to_string(),
            })
            .to_vec();
        if !aes {
            tags.extend(super::value_len_tag(len));
        }
        match value {
            Some(bytes) if bytes.len() == len => {
                self.create_key_with_material(request, Origin::External, Some(bytes), &tags)
            }
            Some(_) => Err(Error::validation("key length mismatch")),
            None if (aes && len != 32) || (!aes && !matches!(len, 28 | 32 | 48 | 64)) => {
                let bytes = random_bytes(len)?;
                self.create_key_with_material(request, Origin::AwsKms, Some(&bytes), &tags)
            }
            None => self.create_key_with_material(request, Origin::AwsKms, None, &tags),
        }
    }

    /// The value of a readable secret key, or the PKCS#8 PrivateKeyInfo of
    /// a readable private key (made with CKA_SENSITIVE false and
    /// CKA_EXTRACTABLE true); InvalidKeyUsage for any other.
    pub fn p11_secret_value(
        &self,
        keys: &SessionKeys,
        key: SecretKeyRef<'_>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        if let Some(pkcs8) = self.exportable_private(keys, key, true)? {
            return Ok(pkcs8);
        }
        let readable = match key {
            SecretKeyRef::Stored(id) => {
                let state = self.read_state();
                let tags = &state.key(id)?.tags;
                tags.get(READABLE_TAG).map(String::as_str) == Some("true")
                    && tags.get(EXTRACTABLE_TAG).map(String::as_str) == Some("true")
            }
            SecretKeyRef::Session(id) => keys
                .lock()
                .get(&id)
                .is_some_and(|k| k.readable && k.extractable),
        };
        if !readable {
            return Err(not_readable());
        }
        self.with_secret(keys, key, |b| Ok(Zeroizing::new(b.to_vec())))
    }

    /// Takes readability away from a secret or private key
    /// (C_SetAttributeValue of CKA_SENSITIVE true); `unextractable` also
    /// takes extractability away (CKA_EXTRACTABLE false). Neither can be
    /// given back.
    pub fn p11_seal_secret(
        &self,
        keys: &SessionKeys,
        key: SecretKeyRef<'_>,
        unextractable: bool,
    ) -> Result<()> {
        match key {
            SecretKeyRef::Stored(id) => {
                self.update_key(id, |record, _| {
                    record.tags.remove(READABLE_TAG);
                    if unextractable {
                        record.tags.remove(EXTRACTABLE_TAG);
                    }
                    Ok(())
                })?;
            }
            SecretKeyRef::Session(id) if self.seal_session_pair(keys, id, unextractable) => {}
            SecretKeyRef::Session(id) => {
                let mut table = keys.lock();
                let entry = table
                    .get_mut(&id)
                    .ok_or_else(|| Error::NotFound("session key".into()))?;
                entry.readable = false;
                if unextractable {
                    entry.extractable = false;
                }
            }
        }
        Ok(())
    }
}

impl Hsm {
    /// Copies a readable secret key into a new readable key with the same
    /// material: a token key in the namespace `token`, or a session key in
    /// `keys`. InvalidKeyUsage when the source is not readable.
    pub fn p11_copy_readable_secret(
        &self,
        keys: &SessionKeys,
        source: SecretKeyRef<'_>,
        aes: bool,
        token: Option<&str>,
    ) -> Result<super::CopiedKey> {
        let bytes = self.p11_secret_value(keys, source)?;
        match token {
            Some(label) => Ok(super::CopiedKey::Stored(self.p11_create_readable_secret(
                label,
                aes,
                bytes.len(),
                Some(&bytes),
                "PKCS#11 copied key",
            )?)),
            None => Ok(super::CopiedKey::Session(keys.import_readable(&bytes)?)),
        }
    }
}
