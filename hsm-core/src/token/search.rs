//! Searching a token's object rows in the store: the raw values of the
//! attributes applications search on (CKA_CLASS, CKA_ID, CKA_LABEL,
//! CKA_KEY_TYPE) are columns of `p11_objects`, written with each row and
//! indexed per token, so a search reads only the rows it may match
//! instead of every object of the token.

use cryptoki_sys::{CKA_CLASS, CKA_ID, CKA_KEY_TYPE, CKA_LABEL};

use crate::error::Result;
use crate::hsm::Hsm;
use crate::store::engine::{vals, Val};
use crate::store::Store;
use crate::token::ObjectRow;

/// Rows backfilled per transaction when an older store is opened.
const BACKFILL_BATCH: i64 = 512;

/// What a search of a token's rows asks: the raw value each named
/// attribute must have (`None`: any). A row without the attribute never
/// matches a value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObjectQuery<'a> {
    /// CKA_CLASS.
    pub class: Option<&'a [u8]>,
    /// CKA_ID.
    pub id: Option<&'a [u8]>,
    /// CKA_LABEL.
    pub label: Option<&'a [u8]>,
    /// CKA_KEY_TYPE.
    pub key_type: Option<&'a [u8]>,
}

impl<'a> ObjectQuery<'a> {
    /// The searchable part of a template given as (type, value) pairs;
    /// other attributes are left to the caller's exact match. A type
    /// named twice with different values matches nothing: the last wins
    /// here, and the caller's exact match rejects every row.
    pub fn of<'t: 'a>(template: impl IntoIterator<Item = (u64, &'t [u8])>) -> Self {
        let mut q = ObjectQuery::default();
        for (t, v) in template {
            #[allow(clippy::useless_conversion)]
            match t {
                t if t == u64::from(CKA_CLASS) => q.class = Some(v),
                t if t == u64::from(CKA_ID) => q.id = Some(v),
                t if t == u64::from(CKA_LABEL) => q.label = Some(v),
                t if t == u64::from(CKA_KEY_TYPE) => q.key_type = Some(v),
                _ => {}
            }
        }
        q
    }

    /// Whether the query names no searchable attribute (it then matches
    /// every row of the token).
    pub fn is_empty(&self) -> bool {
        *self == ObjectQuery::default()
    }
}

/// The search columns of an encoded attribute blob, in the order
/// class, id, label, key type (all `None` for a blob that does not
/// decode: such a row fails when loaded anyway).
pub(crate) fn columns(attrs: &[u8]) -> [Option<Vec<u8>>; 4] {
    let Ok(mut a) = crate::pkcs11::attrs::decode(attrs) else {
        return [None, None, None, None];
    };
    [
        a.remove(&CKA_CLASS),
        a.remove(&CKA_ID),
        a.remove(&CKA_LABEL),
        a.remove(&CKA_KEY_TYPE),
    ]
}

/// The statement of a search: the index it goes through (SQLite would
/// otherwise rather walk the token's rows in `rowid` order) and the
/// conditions, `?1` the token and `?2`.. the query's values in the order
/// class, id, label, key type.
pub(crate) fn search_sql(q: &ObjectQuery<'_>, postgres: bool) -> String {
    let index = if q.label.is_some() {
        "p11_objects_by_label"
    } else if q.id.is_some() {
        "p11_objects_by_ckaid"
    } else if q.class.is_some() {
        "p11_objects_by_class"
    } else if q.key_type.is_some() {
        "p11_objects_by_key_type"
    } else {
        "p11_objects_by_token"
    };
    let mut sql = String::from("SELECT object_id, key_id, attrs FROM p11_objects");
    if !postgres {
        sql.push_str(" INDEXED BY ");
        sql.push_str(index);
    }
    sql.push_str(" WHERE token = ?1");
    let mut n = 1;
    for (column, value) in [
        ("a_class", q.class),
        ("a_id", q.id),
        ("a_label", q.label),
        ("a_key_type", q.key_type),
    ] {
        if value.is_some() {
            n += 1;
            sql.push_str(&format!(" AND {column} = ?{n}"));
        }
    }
    sql.push_str(" ORDER BY rowid");
    sql
}

impl Hsm {
    /// The object rows of token `serial` whose searchable attributes have
    /// the values `query` names, in the order they were stored: one
    /// indexed lookup when the query names one (every row of the token
    /// only when it names none). The caller matches the rest of its
    /// template exactly.
    pub fn token_find_objects(
        &self,
        serial: &str,
        query: &ObjectQuery<'_>,
    ) -> Result<Vec<ObjectRow>> {
        let sql = search_sql(query, self.is_postgres());
        let mut params: Vec<Val<'_>> = vec![Val::Text(serial)];
        params.extend(
            [query.class, query.id, query.label, query.key_type]
                .into_iter()
                .flatten()
                .map(Val::Blob),
        );
        self.read_store(false, |db| db.all(&sql, &params, crate::token::object_row))
    }

    /// Whether a row of token `serial` describes key `key_id` (index
    /// `p11_objects_by_key`).
    pub fn token_key_described(&self, serial: &str, key_id: &str) -> Result<bool> {
        let sql = if self.is_postgres() {
            "SELECT 1 FROM p11_objects WHERE key_id = ?2 AND token = ?1 LIMIT 1"
        } else {
            "SELECT 1 FROM p11_objects INDEXED BY p11_objects_by_key
             WHERE key_id = ?2 AND token = ?1 LIMIT 1"
        };
        self.read_store(false, |db| {
            Ok(db.first(sql, &vals![serial, key_id], |_| Ok(()))?.is_some())
        })
    }

    /// The keys some row of token `serial` describes.
    pub fn token_described_keys(&self, serial: &str) -> Result<std::collections::HashSet<String>> {
        self.read_store(false, |db| {
            let mut out = std::collections::HashSet::new();
            db.each(
                "SELECT DISTINCT key_id FROM p11_objects WHERE token = ?1 AND key_id IS NOT NULL",
                &vals![serial],
                |r| {
                    out.insert(r.get(0)?);
                    Ok(())
                },
            )?;
            Ok(out)
        })
    }

    /// The ids of the keys in namespace `namespace` (a token's label)
    /// whose description is `description` (index
    /// `keys_by_token_description`).
    pub fn token_keys_described(&self, namespace: &str, description: &str) -> Result<Vec<String>> {
        let sql = if self.is_postgres() {
            "SELECT key_id FROM keys WHERE token = ?1 AND description = ?2 ORDER BY key_id"
        } else {
            // SQLite would rather walk the namespace in key id order.
            "SELECT key_id FROM keys INDEXED BY keys_by_token_description
             WHERE token = ?1 AND description = ?2 ORDER BY key_id"
        };
        self.read_store(false, |db| {
            db.all(sql, &vals![namespace, description], |r| r.get(0))
        })
    }
}

/// Fills in the search columns of rows written before they existed
/// (schema 9 on SQLite, 5 on PostgreSQL), a batch per transaction. Runs
/// when a store opens; finding nothing to do is one indexed lookup. Safe
/// with several processes or nodes at once: a row is only written while
/// still unsearchable.
pub(crate) fn backfill(store: &mut Store) -> Result<()> {
    loop {
        let batch: Vec<(String, Vec<u8>)> = store.read(|db| {
            db.all(
                "SELECT object_id, attrs FROM p11_objects WHERE searchable = 0
                 ORDER BY object_id LIMIT ?1",
                &vals![BACKFILL_BATCH],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })?;
        if batch.is_empty() {
            return Ok(());
        }
        store.write_unaudited(|db| {
            for (object_id, attrs) in &batch {
                let [class, id, label, key_type] = columns(attrs);
                db.execute(
                    "UPDATE p11_objects SET a_class = ?2, a_id = ?3, a_label = ?4,
                         a_key_type = ?5, searchable = 1
                     WHERE object_id = ?1 AND searchable = 0",
                    &vals![
                        object_id.as_str(),
                        class.as_ref(),
                        id.as_ref(),
                        label.as_ref(),
                        key_type.as_ref()
                    ],
                )?;
            }
            Ok(())
        })?;
    }
}
