//! Object rows a set of changes touched, for a reader that reloads only
//! what changed (see [`crate::Hsm::changes_since`]).

use crate::error::Result;
use crate::hsm::Hsm;
use crate::store::engine::vals;
use crate::token::ObjectRow;

/// Most ids one call takes; a caller with more reloads everything.
pub const MAX_TOUCHED: usize = 256;

impl Hsm {
    /// The rows of token `serial` that belong to one of `key_ids` or are
    /// one of `object_ids` (at most [`MAX_TOUCHED`] ids in all).
    pub fn token_objects_touching(
        &self,
        serial: &str,
        key_ids: &[String],
        object_ids: &[String],
    ) -> Result<Vec<ObjectRow>> {
        if key_ids.len() + object_ids.len() > MAX_TOUCHED {
            return Err(crate::error::Error::validation("too many ids"));
        }
        // One indexed lookup per id (p11_objects_by_key, the primary key).
        let by_key = if self.is_postgres() {
            "SELECT object_id, key_id, attrs FROM p11_objects
             WHERE key_id = ?2 AND token = ?1 ORDER BY rowid"
        } else {
            // SQLite would rather walk the token's rows.
            "SELECT object_id, key_id, attrs
             FROM p11_objects INDEXED BY p11_objects_by_key
             WHERE key_id = ?2 AND token = ?1 ORDER BY rowid"
        };
        let by_id = "SELECT object_id, key_id, attrs FROM p11_objects
                     WHERE object_id = ?2 AND token = ?1";
        let mut out: Vec<ObjectRow> = Vec::new();
        let lookups = key_ids
            .iter()
            .map(|id| (by_key, id))
            .chain(object_ids.iter().map(|id| (by_id, id)));
        self.read_store(true, |db| {
            for (sql, id) in lookups {
                db.each(sql, &vals![serial, id.as_str()], |r| {
                    let row = crate::token::object_row(r)?;
                    if !out.iter().any(|o| o.object_id == row.object_id) {
                        out.push(row);
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })?;
        Ok(out)
    }
}
