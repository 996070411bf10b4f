//! Token objects of the embedded backend: object rows for what PKCS#11
//! made, objects synthesised for KMS keys made elsewhere, and a key's
//! deletion scheduled when its object is destroyed.

use crate::KeyState;
use cryptoki_sys::*;

use super::{EmbeddedBackend, DELETION_WINDOW_DAYS, KMS_PREFIX, PUBLIC_SUFFIX};
use crate::pkcs11::attrs::{decode, encode};
use crate::pkcs11::error::{ckr, Result};
use crate::pkcs11::{Attributes, Backend, KeyHandle, StoredObject};

/// Gives every loaded object a stable CKA_UNIQUE_ID (rows written before
/// there was one, and objects of KMS keys, take their object id) and the
/// attributes every object of its class has.
pub(super) fn complete(objects: &mut [StoredObject]) {
    for object in objects {
        object
            .attrs
            .entry(CKA_UNIQUE_ID)
            .or_insert_with(|| object.id.as_bytes().to_vec());
        crate::pkcs11::attrs::fill_defaults(&mut object.attrs);
    }
}

impl EmbeddedBackend {
    pub(super) fn objects_of(&self, token: &str) -> Result<Vec<StoredObject>> {
        let label = self.label_of(token)?;
        let rows = self.hsm.token_objects(token)?;
        let keys = self.hsm.list_token_keys(&label)?;
        // Sets, not scans: a token may hold tens of thousands of keys.
        let live: std::collections::HashSet<&str> = keys
            .iter()
            .filter(|k| k.key_state != KeyState::PendingDeletion)
            .map(|k| k.key_id.as_str())
            .collect();
        let described: std::collections::HashSet<&str> =
            rows.iter().filter_map(|r| r.key_id.as_deref()).collect();
        let live = |id: &str| live.contains(id);
        let mut out: Vec<StoredObject> = Vec::with_capacity(rows.len());
        for row in &rows {
            match &row.key_id {
                Some(id) if !live(id) => continue,
                key_id => out.push(StoredObject {
                    id: row.object_id.clone(),
                    attrs: decode(&row.attrs)?,
                    key: key_id.clone().map(KeyHandle::Stored),
                }),
            }
        }
        for meta in &keys {
            if described.contains(meta.key_id.as_str())
                || meta.key_state == KeyState::PendingDeletion
            {
                continue;
            }
            for (id, attrs) in self.synthesise(meta)? {
                out.push(StoredObject {
                    id,
                    attrs,
                    key: Some(KeyHandle::Stored(meta.key_id.clone())),
                });
            }
        }
        complete(&mut out);
        Ok(out)
    }

    pub(super) fn put_object(
        &self,
        token: &str,
        attrs: &Attributes,
        key: Option<&KeyHandle>,
    ) -> Result<String> {
        let key_id = match key {
            None => None,
            Some(KeyHandle::Stored(id)) => Some(id.clone()),
            Some(KeyHandle::Session(_)) => {
                return Err(ckr!(
                    CKR_TEMPLATE_INCONSISTENT,
                    "a session key cannot be stored"
                ))
            }
        };
        let mut raw = [0u8; 12];
        self.generate_random(&mut raw)?;
        let object_id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        self.hsm.token_put_object(
            token,
            &crate::token::ObjectRow {
                object_id: object_id.clone(),
                key_id,
                attrs: encode(attrs),
            },
        )?;
        Ok(object_id)
    }

    pub(super) fn replace_object(&self, token: &str, id: &str, attrs: &Attributes) -> Result<()> {
        let key_id = match id.strip_prefix(KMS_PREFIX) {
            Some(key_id) => Some(key_id.to_string()),
            None => {
                self.hsm
                    .token_objects(token)?
                    .into_iter()
                    .find(|r| r.object_id == id)
                    .ok_or(ckr!(CKR_OBJECT_HANDLE_INVALID))?
                    .key_id
            }
        };
        self.hsm.token_put_object(
            token,
            &crate::token::ObjectRow {
                object_id: id.to_string(),
                key_id,
                attrs: encode(attrs),
            },
        )?;
        Ok(())
    }

    pub(super) fn remove_object(&self, token: &str, id: &str) -> Result<()> {
        if id.starts_with(KMS_PREFIX) && id.ends_with(PUBLIC_SUFFIX) {
            return Err(ckr!(
                CKR_ACTION_PROHIBITED,
                "destroy the private key instead"
            ));
        }
        let key_id = match id.strip_prefix(KMS_PREFIX) {
            Some(key_id) => Some(key_id.to_string()),
            None => {
                let row = self
                    .hsm
                    .token_objects(token)?
                    .into_iter()
                    .find(|r| r.object_id == id)
                    .ok_or(ckr!(CKR_OBJECT_HANDLE_INVALID))?;
                // A public key object goes alone; its private half holds the key.
                let class = crate::pkcs11::attrs::get_ulong(&decode(&row.attrs)?, CKA_CLASS);
                if class == Some(CKO_PUBLIC_KEY) {
                    None
                } else {
                    row.key_id
                }
            }
        };
        if let Some(key_id) = key_id {
            self.hsm
                .schedule_key_deletion(&key_id, Some(DELETION_WINDOW_DAYS))?;
        }
        self.hsm.token_delete_object(id)?;
        Ok(())
    }
}
