//! Searching a token's objects without loading them all: object rows
//! through the store's indexes on CKA_CLASS, CKA_ID, CKA_LABEL and
//! CKA_KEY_TYPE, and objects for KMS keys no row describes through the
//! key they must be (CKA_ID: the key id; CKA_LABEL: the alias of that
//! name, or keys of that description), the token's keys only when the
//! template names neither. Every object found is completed and matched
//! exactly as [`EmbeddedBackend::objects_of`] gives them, with the same
//! rules: rows of a key pending deletion or outside the token are not
//! shown, keys a row describes are not synthesised.

use std::collections::{HashMap, HashSet};

use cryptoki_sys::*;

use super::objects::complete;
use super::EmbeddedBackend;
use crate::pkcs11::attrs::{decode, ulong};
use crate::pkcs11::error::Result;
use crate::pkcs11::{ChangeScope, KeyHandle, ObjectChanges, StoredObject};
use crate::token::{ObjectQuery, MAX_TOUCHED};
use crate::{KeyMetadata, KeyState};

/// Whether every (type, value) of `template` is among `attrs`.
fn matches(attrs: &crate::pkcs11::Attributes, template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> bool {
    template.iter().all(|(t, v)| attrs.get(t) == Some(v))
}

/// Whether an object of class `class` (raw CKA_CLASS) may be one made
/// for a KMS key (secret, private and public keys only).
fn key_class(class: &[u8]) -> bool {
    [CKO_SECRET_KEY, CKO_PRIVATE_KEY, CKO_PUBLIC_KEY]
        .into_iter()
        .any(|c| ulong(c) == class)
}

impl EmbeddedBackend {
    /// The key `key_ref` names (an id, or `alias/NAME`) if it is in the
    /// namespace `label`.
    fn key_in(&self, label: &str, key_ref: &str) -> Result<Option<KeyMetadata>> {
        match self.hsm.describe_key(key_ref) {
            Ok(meta) if meta.token.as_deref() == Some(label) => Ok(Some(meta)),
            Ok(_) | Err(crate::Error::NotFound(_) | crate::Error::Validation(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// [`crate::pkcs11::Backend::find_objects`].
    pub(super) fn find(
        &self,
        token: &str,
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Result<Vec<StoredObject>> {
        let label = self.label_of(token)?;
        #[allow(clippy::useless_conversion)]
        let query = ObjectQuery::of(template.iter().map(|(t, v)| (u64::from(*t), v.as_slice())));
        let rows = self.hsm.token_find_objects(token, &query)?;
        let mut out = Vec::new();
        let mut live: HashMap<String, bool> = HashMap::new();
        for row in rows {
            if let Some(id) = &row.key_id {
                let alive = match live.get(id) {
                    Some(alive) => *alive,
                    None => {
                        let alive = self
                            .key_in(&label, id)?
                            .is_some_and(|m| m.key_state != KeyState::PendingDeletion);
                        live.insert(id.clone(), alive);
                        alive
                    }
                };
                if !alive {
                    continue;
                }
            }
            let mut object = StoredObject {
                id: row.object_id,
                attrs: decode(&row.attrs)?,
                key: row.key_id.map(KeyHandle::Stored),
            };
            complete(std::slice::from_mut(&mut object));
            if matches(&object.attrs, template) {
                out.push(object);
            }
        }
        // The keys that may give a match, and (for the token's whole set)
        // the keys rows describe, read at once.
        let (keys, described): (Vec<KeyMetadata>, Option<HashSet<String>>) =
            if let Some(id) = query.id {
                let key = match std::str::from_utf8(id) {
                    Ok(id) if uuid::Uuid::parse_str(id).is_ok() => self.key_in(&label, id)?,
                    _ => None,
                };
                (key.into_iter().collect(), None)
            } else if let Some(wanted) = query.label {
                let mut keys: Vec<KeyMetadata> = Vec::new();
                if let Ok(wanted) = std::str::from_utf8(wanted) {
                    if !wanted.is_empty() {
                        keys.extend(self.key_in(&label, &format!("alias/{wanted}"))?);
                    }
                    for id in self.hsm.token_keys_described(&label, wanted)? {
                        if !keys.iter().any(|k| k.key_id == id) {
                            keys.extend(self.key_in(&label, &id)?);
                        }
                    }
                }
                (keys, None)
            } else if query.class.is_some_and(|c| !key_class(c)) {
                (Vec::new(), None)
            } else {
                (
                    self.hsm.list_token_keys(&label)?,
                    Some(self.hsm.token_described_keys(token)?),
                )
            };
        for meta in &keys {
            if meta.key_state == KeyState::PendingDeletion {
                continue;
            }
            let is_described = match &described {
                Some(set) => set.contains(&meta.key_id),
                None => self.hsm.token_key_described(token, &meta.key_id)?,
            };
            if is_described {
                continue;
            }
            for (id, attrs) in self.synthesise(meta)? {
                let mut object = StoredObject {
                    id,
                    attrs,
                    key: Some(KeyHandle::Stored(meta.key_id.clone())),
                };
                complete(std::slice::from_mut(&mut object));
                if matches(&object.attrs, template) {
                    out.push(object);
                }
            }
        }
        Ok(out)
    }

    /// [`crate::pkcs11::Backend::refresh_objects`]: what the journal says
    /// changed since `since` when it can say (and not too much), else the
    /// current state of the objects `held` names, read by their ids and
    /// keys (never the token's whole set).
    pub(super) fn refresh(
        &self,
        token: &str,
        since: Option<u64>,
        held: &ChangeScope,
    ) -> Result<ObjectChanges> {
        if let Some(changes) = self.changes_named(token, since)? {
            return Ok(changes);
        }
        // Read before loading: a change meanwhile shows next time.
        let generation = self.hsm.generation();
        let mut objects = Vec::new();
        let mut seen = HashSet::new();
        let mut keys = held.keys.iter();
        let mut ids = held.objects.iter();
        loop {
            let part = ChangeScope {
                keys: keys.by_ref().take(MAX_TOUCHED / 2).cloned().collect(),
                objects: ids.by_ref().take(MAX_TOUCHED / 2).cloned().collect(),
            };
            if part == ChangeScope::default() {
                break;
            }
            for object in self.load_scoped(token, &part)? {
                // A row may come through its key and its id in two parts.
                if seen.insert(object.id.clone()) {
                    objects.push(object);
                }
            }
        }
        Ok(ObjectChanges {
            generation,
            scope: None,
            objects,
        })
    }
}
