//! C_CopyObject for secret keys: a new key with the same material, made
//! inside the core, so the bytes never leave it.

use crate::error::{Error, Result};
use crate::hsm::Hsm;
use crate::mechanisms::SecretKeyRef;
use crate::token::{SessionKeys, EXTRACTABLE_TAG};
use crate::types::KeyMetadata;

/// The key a copy made.
#[derive(Debug, Clone)]
pub enum CopiedKey {
    /// A new session key in the caller's table.
    Session(u64),
    /// A new token key (a KMS key in the token's namespace).
    Stored(KeyMetadata),
}

impl Hsm {
    /// Copies a secret key (an Enabled token key or a session key) into a
    /// new key with the same material: a token key in the namespace
    /// `token` (origin EXTERNAL, like an import), or a session key in
    /// `keys` when `token` is `None`. `aes` says whether it is an AES key
    /// (else a generic secret, as an HMAC key). A copy may be extractable
    /// only if the source is (InvalidKeyUsage otherwise).
    pub fn p11_copy_secret(
        &self,
        keys: &SessionKeys,
        source: SecretKeyRef<'_>,
        aes: bool,
        token: Option<&str>,
        extractable: bool,
    ) -> Result<CopiedKey> {
        let source_extractable = match source {
            SecretKeyRef::Stored(id) => {
                self.read_state().key(id)?.tags.get(EXTRACTABLE_TAG) == Some(&"true".to_string())
            }
            SecretKeyRef::Session(id) => {
                keys.lock()
                    .get(&id)
                    .ok_or_else(|| Error::NotFound("session key".into()))?
                    .extractable
            }
        };
        if extractable && !source_extractable {
            return Err(Error::InvalidKeyUsage(
                "a copy of a key that is not extractable cannot be extractable".into(),
            ));
        }
        let bytes = self.with_secret(keys, source, |b| Ok(zeroize::Zeroizing::new(b.to_vec())))?;
        match token {
            Some(label) => Ok(CopiedKey::Stored(self.p11_import_secret(
                label,
                aes,
                &bytes,
                "PKCS#11 copied key",
                extractable,
            )?)),
            None => Ok(CopiedKey::Session(keys.insert(bytes, extractable)?)),
        }
    }
}
