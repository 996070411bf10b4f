//! Loading only what changed: the objects of the keys and rows that
//! hsm-core's change journal names since a generation.

use std::collections::{HashMap, HashSet};

use crate::changes::Change;
use crate::{KeyMetadata, KeyState};

use super::EmbeddedBackend;
use crate::pkcs11::attrs::decode;
use crate::pkcs11::error::Result;
use crate::pkcs11::{Backend, ChangeScope, KeyHandle, ObjectChanges, StoredObject};

impl EmbeddedBackend {
    /// [`Backend::load_changes`]: a scoped load when the journal names
    /// what changed (and not too much), else the whole set.
    pub(super) fn changes(&self, token: &str, since: Option<u64>) -> Result<ObjectChanges> {
        if let Some(changes) = self.changes_named(token, since)? {
            return Ok(changes);
        }
        // Read before loading: a change meanwhile shows next time.
        let generation = self.hsm.generation();
        Ok(ObjectChanges {
            generation,
            scope: None,
            objects: self.load_objects(token)?,
        })
    }

    /// The objects of what the journal names as changed since `since`,
    /// or `None` when it cannot say (or names too much).
    pub(super) fn changes_named(
        &self,
        token: &str,
        since: Option<u64>,
    ) -> Result<Option<ObjectChanges>> {
        let Some((generation, changes)) = since.and_then(|g| self.hsm.changes_since(g)) else {
            return Ok(None);
        };
        let mut scope = ChangeScope::default();
        for change in changes {
            match change {
                Change::Key(id) => scope.keys.push(id),
                Change::Object(id) => scope.objects.push(id),
                Change::All => {}
            }
        }
        if scope.keys.len() + scope.objects.len() > crate::token::MAX_TOUCHED {
            return Ok(None);
        }
        let objects = self.load_scoped(token, &scope)?;
        Ok(Some(ObjectChanges {
            generation,
            scope: Some(scope),
            objects,
        }))
    }

    /// The token's current objects within `scope`: rows of its keys and
    /// the named rows (whose key is not pending deletion), and objects
    /// synthesised for its keys that have no row.
    pub(super) fn load_scoped(
        &self,
        token: &str,
        scope: &ChangeScope,
    ) -> Result<Vec<StoredObject>> {
        let label = self.label_of(token)?;
        let rows = self
            .hsm
            .token_objects_touching(token, &scope.keys, &scope.objects)?;
        let mut metas: HashMap<String, Option<KeyMetadata>> = HashMap::new();
        let wanted = scope
            .keys
            .iter()
            .chain(rows.iter().filter_map(|r| r.key_id.as_ref()));
        for id in wanted {
            if metas.contains_key(id) {
                continue;
            }
            let meta = match self.hsm.describe_key(id) {
                Ok(meta) if meta.token.as_deref() == Some(label.as_str()) => Some(meta),
                Ok(_) | Err(crate::Error::NotFound(_)) => None,
                Err(e) => return Err(e.into()),
            };
            metas.insert(id.clone(), meta);
        }
        let live = |id: &str| {
            metas
                .get(id)
                .and_then(Option::as_ref)
                .is_some_and(|m| m.key_state != KeyState::PendingDeletion)
        };
        let mut out = Vec::new();
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
        let described: HashSet<&str> = rows.iter().filter_map(|r| r.key_id.as_deref()).collect();
        for id in &scope.keys {
            let Some(meta) = metas.get(id).and_then(Option::as_ref) else {
                continue;
            };
            if described.contains(id.as_str()) || meta.key_state == KeyState::PendingDeletion {
                continue;
            }
            for (object_id, attrs) in self.synthesise(meta)? {
                out.push(StoredObject {
                    id: object_id,
                    attrs,
                    key: Some(KeyHandle::Stored(meta.key_id.clone())),
                });
            }
        }
        super::objects::complete(&mut out);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::{CreateKeyRequest, Hsm, HsmOptions, KdfParams, KeySpec, SecretString};

    use super::*;

    fn store(dir: &std::path::Path) -> Arc<Hsm> {
        let options = HsmOptions {
            kdf: KdfParams::MINIMUM,
            ..Default::default()
        };
        Arc::new(Hsm::init(dir, &SecretString::from("pass"), options).unwrap())
    }

    #[test]
    fn changes_made_elsewhere_load_as_a_scope_and_unnamed_ones_in_full() {
        let dir = tempfile::tempdir().unwrap();
        let hsm = store(&dir.path().join("s"));
        let backend = EmbeddedBackend::over_hsm(hsm.clone());
        let token = backend.init_token(None, "tok", b"12345678").unwrap();
        let first = backend.load_changes(&token, None).unwrap();
        assert!(first.scope.is_none() && first.objects.is_empty());

        // A key made in the token's namespace (as the CLI does).
        let meta = hsm
            .create_key(CreateKeyRequest {
                key_spec: Some(KeySpec::EccNistP256),
                key_usage: Some(crate::KeyUsage::SignVerify),
                token: Some("tok".into()),
                ..Default::default()
            })
            .unwrap();
        // And one elsewhere, which this token must not show.
        hsm.create_key(CreateKeyRequest::default()).unwrap();
        let next = backend
            .load_changes(&token, Some(first.generation))
            .unwrap();
        let scope = next.scope.expect("a scoped load");
        assert_eq!(scope.keys.len(), 2);
        assert!(scope.keys.contains(&meta.key_id));
        let mut ids: Vec<_> = next.objects.iter().map(|o| o.id.clone()).collect();
        ids.sort();
        assert_eq!(
            ids,
            vec![
                format!("kms:{}", meta.key_id),
                format!("kms:{}:pub", meta.key_id)
            ]
        );

        // Deletion scheduled: the scope names the key, with no objects.
        hsm.schedule_key_deletion(&meta.key_id, Some(7)).unwrap();
        let gone = backend.load_changes(&token, Some(next.generation)).unwrap();
        assert_eq!(gone.scope.unwrap().keys, vec![meta.key_id.clone()]);
        assert!(gone.objects.is_empty());

        // Nothing moved: an empty scope. An alias names no key: all.
        let same = backend.load_changes(&token, Some(gone.generation)).unwrap();
        assert_eq!(same.scope, Some(ChangeScope::default()));
        let other = hsm.create_key(CreateKeyRequest::default()).unwrap();
        hsm.create_alias("alias/x", &other.key_id).unwrap();
        let all = backend.load_changes(&token, Some(gone.generation)).unwrap();
        assert!(all.scope.is_none());
        assert!(
            all.objects.is_empty(),
            "the deleted key's objects stay gone"
        );
    }
}
