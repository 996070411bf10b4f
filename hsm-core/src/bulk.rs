//! Building a large store quickly, for scale benchmarks only.
//!
//! CreateKey commits (and fsyncs) one key at a time with its audit record;
//! a million keys that way take hours. This path writes the same rows
//! (a SYMMETRIC_DEFAULT key, its first version's material generated and
//! wrapped here, never leaving the core) thousands to a transaction, with
//! no audit record and no authorization: it is not a front door and no
//! front door calls it. Both engines (on PostgreSQL each row is one
//! prepared statement's round trip; new keys need no notification, as no
//! node has them cached).

use uuid::Uuid;

use crate::error::Result;
use crate::hsm::Hsm;
use crate::store::engine::vals;
use crate::types::{KeySpec, KeyState, KeyUsage, Origin};

/// Keys per transaction.
const BATCH: usize = 10_000;

impl Hsm {
    /// Creates `count` enabled SYMMETRIC_DEFAULT keys, [`BATCH`] per
    /// transaction, and returns their ids. For benchmarks that need a
    /// store of a million keys in seconds: no audit record is written and
    /// no caller is authorised. Do not call it from a front door.
    #[doc(hidden)]
    pub fn bulk_create_keys_for_benchmark(&self, count: usize) -> Result<Vec<String>> {
        let now = self.now();
        let spec = KeySpec::SymmetricDefault;
        let mut ids = Vec::with_capacity(count);
        let mut done = 0;
        while done < count {
            let n = BATCH.min(count - done);
            let mut batch = Vec::with_capacity(n);
            for _ in 0..n {
                let id = Uuid::new_v4();
                let wrapped = self.wrap_new_material(id, 1, spec, None)?;
                batch.push((id, wrapped));
            }
            self.lock_store().write(|tx| {
                for (id, wrapped) in &batch {
                    let id = id.hyphenated().to_string();
                    tx.execute(
                        "INSERT INTO keys (key_id, description, key_spec, key_usage, origin,
                            creation_date, key_state)
                         VALUES (?1, '', ?2, ?3, ?4, ?5, ?6)",
                        &vals![
                            &id,
                            spec.as_str(),
                            KeyUsage::EncryptDecrypt.as_str(),
                            Origin::AwsKms.as_str(),
                            now,
                            KeyState::Enabled.as_str(),
                        ],
                    )?;
                    tx.execute(
                        "INSERT INTO key_versions (key_id, version, created, rotation_type,
                            wrapped_material)
                         VALUES (?1, 1, ?2, NULL, ?3)",
                        &vals![&id, now, wrapped],
                    )?;
                }
                Ok(())
            })?;
            ids.extend(batch.into_iter().map(|(id, _)| id.hyphenated().to_string()));
            done += n;
        }
        Ok(ids)
    }
}
