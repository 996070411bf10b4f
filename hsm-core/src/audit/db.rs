//! The audit tables (migration 5): `audit_records` (one row per record,
//! the record's JSON as written plus the columns lookups filter on) and
//! `audit_checkpoints` (one signed note per checkpoint). The signing key
//! and the log's name live in `meta`.

use super::chain::{Hash, Unsealed, RECORD_HASH_PREFIX, ZERO_HASH};
use super::log::{ChainState, CHECKPOINT_EVERY_RECORDS, CHECKPOINT_EVERY_SECS};
use super::record::Draft;
use crate::error::{Error, Result};
use crate::store::engine::{vals, Db};
use crate::types::UnixSeconds;
use postgres::types::ToSql;

/// The wrapped PKCS#8 Ed25519 signing key.
pub(crate) const META_SIGNING_KEY: &str = "audit_signing_key";
/// The log's name (checkpoint origin).
pub(crate) const META_ORIGIN: &str = "audit_origin";
/// The last sequence number an export confirmed it wrote.
pub(crate) const META_EXPORTED: &str = "audit_exported_through";

/// The schema of the audit tables (the store's migration 5).
pub(crate) const MIGRATION: &str = "CREATE TABLE audit_records (
        sequence INTEGER PRIMARY KEY,
        event_time INTEGER NOT NULL,
        event_name TEXT NOT NULL,
        username TEXT NOT NULL,
        access_key_id TEXT,
        resource_arn TEXT,
        resource_id TEXT,
        record TEXT NOT NULL,
        hash BLOB NOT NULL
     );
     CREATE INDEX audit_records_by_time ON audit_records(event_time);
     CREATE TABLE audit_checkpoints (
        tree_size INTEGER PRIMARY KEY,
        created INTEGER NOT NULL,
        root BLOB NOT NULL,
        note TEXT NOT NULL
     );";

/// One sealed record's row.
pub(crate) struct RecordRow {
    sequence: i64,
    event_time: UnixSeconds,
    event_name: String,
    username: String,
    access_key_id: Option<String>,
    resource_arn: Option<String>,
    resource_id: Option<String>,
    record: String,
    hash: Hash,
}

impl RecordRow {
    /// The row of `record`, sealed as `sequence` with `hash`, from `draft`.
    pub fn new(sequence: u64, draft: &Draft, record: String, hash: &Hash) -> RecordRow {
        let resource_arn = draft.resources.first().cloned();
        let resource_id = resource_arn
            .as_deref()
            .and_then(|arn| arn.rsplit('/').next())
            .map(str::to_owned);
        RecordRow {
            sequence: sequence as i64,
            event_time: draft.event_time,
            event_name: draft.event_name.clone(),
            username: draft.username(),
            access_key_id: draft.caller.access_key_id.clone(),
            resource_arn,
            resource_id,
            record,
            hash: *hash,
        }
    }
}

/// Inserts sealed records: on PostgreSQL all in one statement (one round
/// trip, arrays unnested), on SQLite one statement each (no round trips).
pub(crate) fn insert_records(tx: &Db<'_>, rows: &[RecordRow]) -> Result<()> {
    tx.chain_changed();
    if !tx.is_postgres() {
        for row in rows {
            insert_row(tx, row)?;
        }
        return Ok(());
    }
    if rows.is_empty() {
        return Ok(());
    }
    let columns = Columns::of(rows);
    let inserted = tx.pg_execute(
        "INSERT INTO audit_records (sequence, event_time, event_name, username, access_key_id,
                                    resource_arn, resource_id, record, hash)
         SELECT * FROM unnest(?1::bigint[], ?2::bigint[], ?3::text[], ?4::text[], ?5::text[],
                              ?6::text[], ?7::text[], ?8::text[], ?9::bytea[])",
        &columns.params(),
    )?;
    if inserted != rows.len() as u64 {
        return Err(Error::Internal(format!(
            "{inserted} audit records written of {}",
            rows.len()
        )));
    }
    Ok(())
}

/// PostgreSQL only: appends sealed records in one statement of their own
/// (its own transaction: one round trip, one commit) if the chain's head
/// is still `head` (sequence, hash), under the write lock (the function
/// of migration 4 of `store::pg`). `Ok(None)` once appended; else the
/// head found (nothing written: another node appended since), `None`
/// inside when no record is left to compare with.
pub(crate) fn append_if_head(
    conn: &Db<'_>,
    head: (u64, &Hash),
    rows: &[RecordRow],
) -> Result<Option<Option<(u64, Hash)>>> {
    let columns = Columns::of(rows);
    let head_sequence = head.0 as i64;
    let head_hash = &head.1[..];
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&head_sequence, &head_hash];
    params.extend(columns.params());
    let row = conn.pg_query_one(
        "SELECT appended, head_sequence, head_hash FROM tinfoil_append_audit(?1, ?2,
             ?3::bigint[], ?4::bigint[], ?5::text[], ?6::text[], ?7::text[], ?8::text[],
             ?9::text[], ?10::text[], ?11::bytea[])",
        &params,
    )?;
    let corrupt = |e: postgres::Error| Error::Internal(format!("the store is corrupt: {e}"));
    if row.try_get::<_, bool>(0).map_err(corrupt)? {
        return Ok(None);
    }
    let sequence: Option<i64> = row.try_get(1).map_err(corrupt)?;
    let hash: Option<&[u8]> = row.try_get(2).map_err(corrupt)?;
    Ok(Some(match (sequence, hash) {
        (Some(sequence), Some(hash)) => Some((
            u64::try_from(sequence)
                .map_err(|_| Error::Internal("the store is corrupt: a negative sequence".into()))?,
            Hash::try_from(hash).map_err(|_| {
                Error::Internal("the store is corrupt: an audit hash is not 32 bytes".into())
            })?,
        )),
        _ => None,
    }))
}

/// PostgreSQL only: appends records whose canonical forms are made
/// (`records`: each record's form and draft) in one statement of their
/// own, sealed by the database on the head it holds under the write lock
/// (the function of migration 6 of `store::pg`): for a node whose known
/// head another node moved. The chain's state after it, or `None` when
/// nothing was written (a checkpoint is due, or no record is left to
/// chain on): the caller then appends in a write transaction.
pub(crate) fn append_sealing<'d>(
    conn: &Db<'_>,
    records: impl Iterator<Item = (&'d Unsealed, &'d Draft)>,
    now: UnixSeconds,
) -> Result<Option<ChainState>> {
    // Rows for their lookup columns only: the database numbers, seals
    // and writes the records.
    let (forms, rows): (Vec<&Unsealed>, Vec<RecordRow>) = records
        .map(|(form, draft)| (form, RecordRow::new(0, draft, String::new(), &ZERO_HASH)))
        .unzip();
    let columns = Columns::of(&rows);
    let befores: Vec<&[u8]> = forms.iter().map(|f| f.before()).collect();
    let afters: Vec<&[u8]> = forms.iter().map(|f| f.after()).collect();
    let every_records = CHECKPOINT_EVERY_RECORDS as i64;
    let row = conn.pg_query_one(
        "SELECT appended, head_sequence, head_hash, checkpoint_size, checkpoint_time
         FROM tinfoil_append_audit_sealing(?1, ?2, ?3, ?4, ?5::bigint[], ?6::text[], ?7::text[],
             ?8::text[], ?9::text[], ?10::text[], ?11::bytea[], ?12::bytea[])",
        &[
            &RECORD_HASH_PREFIX,
            &now,
            &every_records,
            &CHECKPOINT_EVERY_SECS,
            &columns.event_time,
            &columns.event_name,
            &columns.username,
            &columns.access_key_id,
            &columns.resource_arn,
            &columns.resource_id,
            &befores,
            &afters,
        ],
    )?;
    let corrupt = |e: postgres::Error| Error::Internal(format!("the store is corrupt: {e}"));
    if !row.try_get::<_, bool>(0).map_err(corrupt)? {
        return Ok(None);
    }
    let number = |i: usize| -> Result<u64> {
        let n: i64 = row.try_get(i).map_err(corrupt)?;
        u64::try_from(n)
            .map_err(|_| Error::Internal("the store is corrupt: a negative sequence".into()))
    };
    let hash: &[u8] = row.try_get(2).map_err(corrupt)?;
    Ok(Some(ChainState {
        head_sequence: number(1)?,
        head_hash: Hash::try_from(hash).map_err(|_| {
            Error::Internal("the store is corrupt: an audit hash is not 32 bytes".into())
        })?,
        checkpoint_size: number(3)?,
        checkpoint_time: row.try_get(4).map_err(corrupt)?,
    }))
}

/// Records' columns as arrays (PostgreSQL's multi-row statements).
struct Columns<'r> {
    sequence: Vec<i64>,
    event_time: Vec<i64>,
    event_name: Vec<&'r str>,
    username: Vec<&'r str>,
    access_key_id: Vec<Option<&'r str>>,
    resource_arn: Vec<Option<&'r str>>,
    resource_id: Vec<Option<&'r str>>,
    record: Vec<&'r str>,
    hash: Vec<&'r [u8]>,
}

impl<'r> Columns<'r> {
    fn of(rows: &'r [RecordRow]) -> Columns<'r> {
        Columns {
            sequence: rows.iter().map(|r| r.sequence).collect(),
            event_time: rows.iter().map(|r| r.event_time).collect(),
            event_name: rows.iter().map(|r| r.event_name.as_str()).collect(),
            username: rows.iter().map(|r| r.username.as_str()).collect(),
            access_key_id: rows.iter().map(|r| r.access_key_id.as_deref()).collect(),
            resource_arn: rows.iter().map(|r| r.resource_arn.as_deref()).collect(),
            resource_id: rows.iter().map(|r| r.resource_id.as_deref()).collect(),
            record: rows.iter().map(|r| r.record.as_str()).collect(),
            hash: rows.iter().map(|r| &r.hash[..]).collect(),
        }
    }

    /// The columns in the table's order, as statement parameters.
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.sequence,
            &self.event_time,
            &self.event_name,
            &self.username,
            &self.access_key_id,
            &self.resource_arn,
            &self.resource_id,
            &self.record,
            &self.hash,
        ]
    }
}

fn insert_row(tx: &Db<'_>, row: &RecordRow) -> Result<()> {
    tx.execute(
        "INSERT INTO audit_records (sequence, event_time, event_name, username, access_key_id,
                                    resource_arn, resource_id, record, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        &vals![
            row.sequence,
            row.event_time,
            &row.event_name,
            &row.username,
            row.access_key_id.as_deref(),
            row.resource_arn.as_deref(),
            row.resource_id.as_deref(),
            &row.record,
            &row.hash[..],
        ],
    )?;
    Ok(())
}

/// Inserts one signed checkpoint.
pub(crate) fn insert_checkpoint(
    tx: &Db<'_>,
    size: u64,
    created: UnixSeconds,
    root: &Hash,
    note: &str,
) -> Result<()> {
    tx.chain_changed();
    tx.execute(
        "INSERT INTO audit_checkpoints (tree_size, created, root, note) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(tree_size) DO UPDATE SET created = excluded.created, root = excluded.root,
            note = excluded.note",
        &vals![size as i64, created, &root[..], note],
    )?;
    Ok(())
}

fn hash_of(bytes: Vec<u8>) -> Result<Hash> {
    Hash::try_from(bytes.as_slice())
        .map_err(|_| Error::Internal("the store is corrupt: an audit hash is not 32 bytes".into()))
}

/// The newest record (sequence number, hash) and the newest checkpoint
/// (size, creation time, root), in one statement (one round trip on
/// PostgreSQL, where every write reads them).
#[allow(clippy::type_complexity)]
pub(crate) fn chain_ends(
    conn: &Db<'_>,
) -> Result<(Option<(u64, Hash)>, Option<(u64, UnixSeconds, Hash)>)> {
    // A PostgreSQL write read them in the round trip that began it.
    if let Some(ends) = conn.take_chain_ends() {
        return Ok(ends);
    }
    let row = conn.first(
        "SELECT r.sequence, r.hash, c.tree_size, c.created, c.root
         FROM (SELECT 1 AS one) o
         LEFT JOIN (SELECT sequence, hash FROM audit_records ORDER BY sequence DESC LIMIT 1) r
            ON 1 = 1
         LEFT JOIN (SELECT tree_size, created, root FROM audit_checkpoints
                    ORDER BY tree_size DESC LIMIT 1) c
            ON 1 = 1",
        &[],
        |r| {
            let record = match (r.get::<Option<i64>>(0)?, r.get::<Option<Vec<u8>>>(1)?) {
                (Some(s), Some(h)) => Some((s as u64, hash_of(h)?)),
                _ => None,
            };
            let checkpoint = match (
                r.get::<Option<i64>>(2)?,
                r.get::<Option<i64>>(3)?,
                r.get::<Option<Vec<u8>>>(4)?,
            ) {
                (Some(s), Some(c), Some(h)) => Some((s as u64, c, hash_of(h)?)),
                _ => None,
            };
            Ok((record, checkpoint))
        },
    )?;
    Ok(row.unwrap_or((None, None)))
}

/// The first record still kept (after pruning), if any.
pub(crate) fn first_sequence(conn: &Db<'_>) -> Result<Option<u64>> {
    let first: Option<i64> = conn
        .first("SELECT min(sequence) FROM audit_records", &[], |r| r.get(0))?
        .flatten();
    Ok(first.map(|s| s as u64))
}

/// A lookup filter (CloudTrail's lookup attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupAttribute {
    /// The operation, e.g. `Encrypt`.
    EventName(String),
    /// `root`, a user name, or `kms.amazonaws.com` for service events.
    Username(String),
    /// A key's ARN or id.
    ResourceName(String),
    /// The SigV4 access key id the call was signed with.
    AccessKeyId(String),
}

/// One record row a lookup found.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// The record's sequence number.
    pub sequence: u64,
    /// The record's JSON text.
    pub record: String,
}

/// Records newest first, filtered, starting below `before` (exclusive).
pub(crate) fn lookup(
    conn: &Db<'_>,
    start: Option<UnixSeconds>,
    end: Option<UnixSeconds>,
    attribute: Option<&LookupAttribute>,
    before: Option<u64>,
    limit: usize,
) -> Result<Vec<StoredEvent>> {
    let (filter, value) = match attribute {
        None => ("", ""),
        Some(LookupAttribute::EventName(v)) => ("AND event_name = ?5", v.as_str()),
        Some(LookupAttribute::Username(v)) => ("AND username = ?5", v.as_str()),
        Some(LookupAttribute::AccessKeyId(v)) => ("AND access_key_id = ?5", v.as_str()),
        Some(LookupAttribute::ResourceName(v)) => {
            ("AND (resource_arn = ?5 OR resource_id = ?5)", v.as_str())
        }
    };
    let sql = format!(
        "SELECT sequence, record FROM audit_records
         WHERE sequence < ?1 AND event_time >= ?2 AND event_time <= ?3 {filter}
         ORDER BY sequence DESC LIMIT ?4"
    );
    let before = before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
    let (start, end, limit) = (
        start.unwrap_or(i64::MIN),
        end.unwrap_or(i64::MAX),
        limit as i64,
    );
    if attribute.is_some() {
        conn.all(&sql, &vals![before, start, end, limit, value], stored_event)
    } else {
        conn.all(&sql, &vals![before, start, end, limit], stored_event)
    }
}

fn stored_event(r: &crate::store::engine::Row<'_>) -> Result<StoredEvent> {
    Ok(StoredEvent {
        sequence: r.get::<i64>(0)? as u64,
        record: r.get(1)?,
    })
}

/// Records with sequence `from..` in order, at most `limit`.
pub(crate) fn records_from(conn: &Db<'_>, from: u64, limit: usize) -> Result<Vec<StoredEvent>> {
    conn.all(
        "SELECT sequence, record FROM audit_records WHERE sequence >= ?1 ORDER BY sequence LIMIT ?2",
        &vals![from as i64, limit as i64],
        stored_event,
    )
}

/// Checkpoints with size in `from..=to`, in order: (size, note).
pub(crate) fn checkpoints_between(conn: &Db<'_>, from: u64, to: u64) -> Result<Vec<(u64, String)>> {
    conn.all(
        "SELECT tree_size, note FROM audit_checkpoints WHERE tree_size >= ?1 AND tree_size <= ?2
         ORDER BY tree_size",
        &vals![from as i64, to as i64],
        |r| Ok((r.get::<i64>(0)? as u64, r.get(1)?)),
    )
}

/// The largest checkpoint size at most `at_most`.
pub(crate) fn checkpoint_at_or_below(conn: &Db<'_>, at_most: u64) -> Result<Option<u64>> {
    let size: Option<i64> = conn
        .first(
            "SELECT max(tree_size) FROM audit_checkpoints WHERE tree_size <= ?1",
            &vals![at_most as i64],
            |r| r.get(0),
        )?
        .flatten();
    Ok(size.map(|s| s as u64))
}

/// Deletes records before `before` and checkpoints that no longer anchor
/// anything (smaller than `before - 1`).
pub(crate) fn prune(tx: &Db<'_>, before: u64) -> Result<usize> {
    tx.chain_changed();
    let removed = tx.execute(
        "DELETE FROM audit_records WHERE sequence < ?1",
        &vals![before as i64],
    )?;
    tx.execute(
        "DELETE FROM audit_checkpoints WHERE tree_size < ?1",
        &vals![before.saturating_sub(1) as i64],
    )?;
    Ok(removed)
}
