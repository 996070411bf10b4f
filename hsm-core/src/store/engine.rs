//! The engine seam: one way for the store's code to run SQL on either
//! engine, SQLite (embedded, the default) or PostgreSQL (several nodes on
//! one database, issue 15).
//!
//! # Design
//!
//! *What is shared.* The schema concepts (tables, columns, indexes), every
//! statement's text and every row's parsing. Store code is written once
//! against [`Db`] (a connection or transaction of either engine), binding
//! [`Val`]s and reading [`Row`]s. Statements are written in SQLite's
//! dialect with numbered placeholders (`?1`, `?2`, ...); for PostgreSQL
//! [`Db`] rewrites them to `$1`, `$2`. Both engines understand the rest of
//! what the store uses (`INSERT ... ON CONFLICT (...) DO UPDATE SET x =
//! excluded.x`, partial indexes, `LIMIT`); where they differ (DDL types,
//! overwriting a blob with zeros) the code asks [`Db::is_postgres`]. The
//! schema is kept twice (`store::MIGRATIONS` and `postgres::MIGRATIONS`,
//! each numbered on its own: PostgreSQL stores start at the current
//! schema), in BIGINT/TEXT/BYTEA for PostgreSQL.
//!
//! *Transactions.* Every change is one transaction on either engine
//! (`Store::write`), and the audit record of the gated call is
//! appended inside it, as before.
//! - SQLite: `BEGIN IMMEDIATE` (the write lock taken when the transaction
//!   begins; one writer at a time per database file), `synchronous=FULL`.
//! - PostgreSQL: `BEGIN ISOLATION LEVEL REPEATABLE READ`, then, as the
//!   transaction's first statement (sent with the BEGIN: one round
//!   trip), `LOCK TABLE store_write_lock IN EXCLUSIVE MODE`: the same
//!   one-writer-at-a-time rule across every node (reads never wait for
//!   it), and because `LOCK TABLE` takes no snapshot, the transaction's
//!   snapshot is taken after the lock, so it sees every write committed
//!   before it (what SQLite's immediate transaction sees). Writers run one
//!   after another, each on the state the previous one committed: a
//!   serial schedule, so REPEATABLE READ is as strong as SERIALIZABLE
//!   here. Not SERIALIZABLE: PostgreSQL releases a committing
//!   transaction's lock before it marks it done for its conflict checks
//!   (SSI), so a writer whose snapshot is taken right after the lock counts
//!   as concurrent with the one before and, a few writers in, fails with
//!   SQLSTATE 40001 though nothing conflicted (seen under the three-node
//!   load; test `writers_of_three_nodes_never_conflict`). A serialization
//!   failure or deadlock (SQLSTATE 40001, 40P01: only possible against a
//!   writer outside Tinfoil) rolls back and reruns the whole transaction,
//!   a few times, before failing with `StoreUnavailable`. Commit is durable
//!   with the server's `synchronous_commit` (on by default).
//! - Reads: SQLite reads on its own read-only connection (`Reader`);
//!   PostgreSQL reads take a pooled connection, one read-only REPEATABLE
//!   READ transaction where several statements must agree (a key with its
//!   versions and tags), autocommit statements otherwise.
//!
//! *The audit sequence.* Appending reads the chain head inside the write
//! transaction and inserts `head + 1`: on SQLite under the write lock, on
//! PostgreSQL under `store_write_lock`, so nodes appending at once extend
//! one chain in commit order, and the sequence's primary key refuses a fork.
//!
//! *Migrations.* SQLite keeps its version in `PRAGMA user_version`;
//! PostgreSQL in the one-row table `schema_version`. Each step runs in one
//! transaction that first takes the write lock and reads the version
//! again, so several processes (nodes) opening an older store apply each
//! step once.
//!
//! *The change counter / journal and the due-key queries* are engine
//! neutral: the counter lives in memory (`crate::changes`), the due-key
//! queries are ordinary indexed statements run through [`Db`]; the tick
//! reads each due key from the store, not the cache.
//!
//! *Freshness across nodes (PostgreSQL).* Key versions are immutable;
//! everything mutable a node caches (key records, aliases, policies,
//! grants) is forgotten when another node changes it: every write
//! transaction `pg_notify`s what it changed (a key id, `aliases`, or `*`;
//! delivered at commit), and each node's change feed (`pg::listen`, a
//! thread with a connection of its own that `LISTEN`s) forgets it under
//! the state's write lock, so a call that read the old row before the
//! commit has cached it by then and it is forgotten too. Chosen over a
//! per-call version check (a round trip per Encrypt) and a TTL (stale for
//! the whole TTL). While the feed's connection is down (and until it is
//! listening again, when it forgets everything once more), key records
//! and aliases are read from the database on every call and never cached,
//! and policies and grants are forgotten every 250 ms.
//!
//! *Silent network drops.* A connection whose packets are dropped (no
//! FIN, no RST) returns no error for the kernel's ~15 minutes of
//! retransmissions, so "down" cannot wait for an error. The feed makes a
//! round trip at least every 250 ms (bounded to 500 ms, even while
//! notifications stream in); a watchdog thread (`pg::watch`) counts the
//! node down when none has completed for 750 ms (`pg::SILENCE`), whatever
//! the feed's thread is blocked in, and forgets everything every 250 ms
//! while it is down; the feed gives the connection up and the node is up
//! again only on a new one, after forgetting everything once. The silence
//! also drops the pool's idle connections unchecked (a probe would wait
//! out its bound), pool probes are bounded (1 s), and connections let go
//! are closed on a thread of their own (closing waits for replies). Calls
//! are bounded at the sockets: every connection has `TCP_USER_TIMEOUT`
//! 4 s and keepalive (1 s idle, 1 s apart), so one already sending fails
//! in ~4.5 s and the next ones wait at most the pool's 3 s / 250 ms: all
//! within the daemon's per-call deadline. Each pooled session sets the
//! same keepalive on the server's side, so a node lost in the middle of a
//! write does not hold the write lock (and every node's writers) for the
//! server's default two hours: its session ends within ~4 s. Encrypt with a cached key pays
//! nothing for this (the watchdog is a thread of its own; calls read the
//! same down flag as before). Limits: a call holding a cache's lock
//! across a database read (to cache what it read) makes the forgetting,
//! and the calls behind it, wait until that read fails (bounded by the
//! sockets' bounds; past a middlebox that still acknowledges, until it
//! recovers); nothing stale is served meanwhile. A feed merely late (a
//! starved machine) costs only a reconnection and a moment of uncached
//! reads.
//!
//! *No lost updates.* A change starts from the node's cached record; the
//! write transaction (holding the write lock) first reads the key as
//! committed and refuses the change (`InvalidState`, retry) unless it
//! equals the record the change was made from (`store::check_base`), and
//! the node forgets its copy. CreateAlias inserts only if the name is
//! free in the database. So a change another node made within the feed's
//! lag is never overwritten, and two rotations cannot make one version
//! twice.
//!
//! *Background work across nodes.* Every node may tick; each due key is
//! read from the store and purged or rotated in a transaction that first
//! checks it is still as read (`check_base`), so exactly one node purges
//! or rotates it and records it once; the others skip it. No lease is
//! needed for correctness (a lease would only save the others' reads).
//!
//! *Users, PKCS#11 tokens, the audit log.* Users and access keys are held
//! in memory (every call resolves its caller); each change notifies
//! `users` and every node's feed reads them again (read first, then put
//! in place unless the node changed them meanwhile); creating a user,
//! an access key or deleting one checks the database inside the write,
//! so a node that has not yet heard of another's change refuses, not
//! overwrites. PKCS#11 token and object rows are read from the store on
//! every use (the module caches objects, keyed by the change counter):
//! storing or deleting an object notifies `object:<id>`, a token made or
//! re-initialised `tokens`, and the feed moves the counter and names them
//! in the change journal (`crate::changes`), so a PKCS#11 module behind
//! another node reloads that object (or everything, for a token). PIN
//! counters move inside the write (`+ 1` as committed). Audit lookups and
//! exports read the shared tables (an export in one snapshot); confirming
//! an export and pruning decide from the committed head and confirmation,
//! under the write lock; the benchmark's bulk path writes through [`Db`]
//! too.
//!
//! *Text compares by bytes.* SQLite compares TEXT by bytes (BINARY);
//! PostgreSQL by the database's collation (under en_US `'a' < 'B'`), so
//! a page marker compared one way and ordered the other would skip or
//! repeat rows. Every text column that is paged, ordered or unique has
//! `COLLATE "C"` on PostgreSQL (its migration 2), so statement text
//! stays shared and both engines order and page alike.
//!
//! *Connecting.* The store's URL never holds a password (refused); TLS
//! is libpq's `sslmode`/`sslrootcert` over rustls, on every connection of
//! a node, the change feed's included (`pg::conn`).
//!
//! *Not yet:* destroyed material is overwritten with zeros in a new row
//! version, but PostgreSQL keeps the old version until VACUUM (wrapped
//! under the root key, so useless without the passphrase).
//!
//! *Round trips under the write lock (PostgreSQL).* Every writer holds
//! `store_write_lock` from its first round trip to the end of its COMMIT
//! (the WAL flush included), so each round trip in between delays every
//! node's next write; writes use as few as they can: BEGIN, the lock and
//! the audit chain's ends in one (a simple query, the ends as text);
//! a group-committed batch of audit records in one multi-row INSERT
//! (arrays unnested); the transaction's `pg_notify`s with the COMMIT. A
//! group-committed batch of Encrypt records is thus three round trips
//! whatever its size (was one per record plus three), a CreateKey five
//! (was eight: BEGIN+LOCK, head, notify, key, tags, version, record,
//! COMMIT). Measured with `multinode_bench --profile`.
//!
//! *Group commit of new keys, and appends on a known head (session 8).*
//! A new key's rows conflict with nothing, so concurrent CreateKeys are
//! queued with the audit group commit (`audit::log::commit_grouped`): one
//! transaction, one INSERT per table for the whole batch
//! (`store::put_new_keys`), one WAL flush; a batch that fails with the
//! database up is written again entry by entry, so a failing key fails
//! its caller only. A batch of records alone (Encrypt and every call that
//! changes nothing) is one statement when the node's last known chain
//! head is still the head: `tinfoil_append_audit` (PostgreSQL migration 4)
//! takes the lock, compares the head and inserts, in autocommit (READ
//! COMMITTED: its snapshot follows the lock, as the write transaction's
//! does), and answers the head it found, on which a node another node
//! overtook appends once more; a due checkpoint falls back to the write
//! transaction. One round trip per batch instead of three.
//!
//! *Performance.* The cached key path (Encrypt with a cached key) touches
//! no engine at all. A SQLite statement costs one enum match more than
//! before and binds [`Val`]s without allocating; statements stay prepared
//! and cached per connection (`prepare_cached`). On PostgreSQL too: each
//! pooled connection prepares a statement the first time it runs it
//! ([`Statements`]), so every later run is one round trip (bind and
//! execute), not two (parse, then bind and execute).

use std::cell::RefCell;

use postgres::types::{IsNull, ToSql, Type};
use rusqlite::types::{ToSqlOutput, ValueRef};

use crate::error::{Error, Result};

/// A value bound to a statement's placeholder, on either engine.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val<'a> {
    /// SQL NULL.
    Null,
    /// An integer (BIGINT on PostgreSQL).
    Int(i64),
    /// Text.
    Text(&'a str),
    /// Bytes (BLOB, BYTEA).
    Blob(&'a [u8]),
}

impl From<i64> for Val<'_> {
    fn from(v: i64) -> Self {
        Val::Int(v)
    }
}
impl From<u32> for Val<'_> {
    fn from(v: u32) -> Self {
        Val::Int(i64::from(v))
    }
}
impl<'a> From<&'a str> for Val<'a> {
    fn from(v: &'a str) -> Self {
        Val::Text(v)
    }
}
impl<'a> From<&'a String> for Val<'a> {
    fn from(v: &'a String) -> Self {
        Val::Text(v)
    }
}
impl<'a> From<&'a [u8]> for Val<'a> {
    fn from(v: &'a [u8]) -> Self {
        Val::Blob(v)
    }
}
impl<'a> From<&'a Vec<u8>> for Val<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Val::Blob(v)
    }
}
impl<'a, T: Into<Val<'a>>> From<Option<T>> for Val<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Val::Null, Into::into)
    }
}

/// Binds values: `vals![a, b, c]` is a `[Val; 3]`.
macro_rules! vals {
    ($($v:expr),* $(,)?) => {
        [$($crate::store::engine::Val::from($v)),*]
    };
}
pub(crate) use vals;

impl rusqlite::ToSql for Val<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Val::Null => ValueRef::Null,
            Val::Int(v) => ValueRef::Integer(v),
            Val::Text(s) => ValueRef::Text(s.as_bytes()),
            Val::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

impl ToSql for Val<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match *self {
            Val::Null => Ok(IsNull::Yes),
            Val::Int(v) => match *ty {
                Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Val::Text(s) => s.to_sql(ty, out),
            Val::Blob(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked per value in to_sql (the wrapped Rust type's own checks).
        true
    }

    postgres::types::to_sql_checked!();
}

/// A column value read from a [`Row`] of either engine.
pub(crate) trait Column: Sized {
    /// Reads column `i` of a SQLite row.
    fn sqlite(row: &rusqlite::Row<'_>, i: usize) -> Result<Self>;
    /// Reads column `i` of a PostgreSQL row.
    fn postgres(row: &postgres::Row, i: usize) -> Result<Self>;
}

/// Any PostgreSQL integer, widened.
struct AnyInt(i64);

impl<'a> postgres::types::FromSql<'a> for AnyInt {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(AnyInt(match *ty {
            Type::INT2 => i64::from(i16::from_sql(ty, raw)?),
            Type::INT4 => i64::from(i32::from_sql(ty, raw)?),
            _ => i64::from_sql(ty, raw)?,
        }))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::INT2 | Type::INT4 | Type::INT8)
    }
}

fn pg_get<'a, T: postgres::types::FromSql<'a>>(row: &'a postgres::Row, i: usize) -> Result<T> {
    row.try_get(i).map_err(Error::from)
}

fn narrow<T: TryFrom<i64>>(v: i64) -> Result<T> {
    T::try_from(v)
        .map_err(|_| Error::Internal("the store is corrupt: an integer out of range".into()))
}

impl Column for i64 {
    fn sqlite(row: &rusqlite::Row<'_>, i: usize) -> Result<Self> {
        Ok(row.get(i)?)
    }
    fn postgres(row: &postgres::Row, i: usize) -> Result<Self> {
        Ok(pg_get::<AnyInt>(row, i)?.0)
    }
}
impl Column for Option<i64> {
    fn sqlite(row: &rusqlite::Row<'_>, i: usize) -> Result<Self> {
        Ok(row.get(i)?)
    }
    fn postgres(row: &postgres::Row, i: usize) -> Result<Self> {
        Ok(pg_get::<Option<AnyInt>>(row, i)?.map(|v| v.0))
    }
}
impl Column for u32 {
    fn sqlite(row: &rusqlite::Row<'_>, i: usize) -> Result<Self> {
        Ok(row.get(i)?)
    }
    fn postgres(row: &postgres::Row, i: usize) -> Result<Self> {
        narrow(i64::postgres(row, i)?)
    }
}
impl Column for Option<u32> {
    fn sqlite(row: &rusqlite::Row<'_>, i: usize) -> Result<Self> {
        Ok(row.get(i)?)
    }
    fn postgres(row: &postgres::Row, i: usize) -> Result<Self> {
        Option::<i64>::postgres(row, i)?.map(narrow).transpose()
    }
}
impl Column for String {
    fn sqlite(row: &rusqlite::Row<'_>, i: usize) -> Result<Self> {
        Ok(row.get(i)?)
    }
    fn postgres(row: &postgres::Row, i: usize) -> Result<Self> {
        pg_get(row, i)
    }
}
impl Column for Option<String> {
    fn sqlite(row: &rusqlite::Row<'_>, i: usize) -> Result<Self> {
        Ok(row.get(i)?)
    }
    fn postgres(row: &postgres::Row, i: usize) -> Result<Self> {
        pg_get(row, i)
    }
}
impl Column for Vec<u8> {
    fn sqlite(row: &rusqlite::Row<'_>, i: usize) -> Result<Self> {
        Ok(row.get(i)?)
    }
    fn postgres(row: &postgres::Row, i: usize) -> Result<Self> {
        pg_get(row, i)
    }
}

impl Column for Option<Vec<u8>> {
    fn sqlite(row: &rusqlite::Row<'_>, i: usize) -> Result<Self> {
        Ok(row.get(i)?)
    }
    fn postgres(row: &postgres::Row, i: usize) -> Result<Self> {
        pg_get(row, i)
    }
}

/// One result row of either engine.
pub(crate) enum Row<'r> {
    /// A SQLite row.
    Sqlite(&'r rusqlite::Row<'r>),
    /// A PostgreSQL row.
    Postgres(&'r postgres::Row),
}

impl Row<'_> {
    /// Column `i` (from 0).
    pub fn get<T: Column>(&self, i: usize) -> Result<T> {
        match self {
            Row::Sqlite(row) => T::sqlite(row, i),
            Row::Postgres(row) => T::postgres(row, i),
        }
    }
}

/// The statements prepared on one PostgreSQL connection, by their text
/// as the store writes it (`?N` placeholders): each is parsed by the
/// server once per connection, then only bound and executed (one round
/// trip per statement instead of two). Bounded: past [`MAX_STATEMENTS`]
/// the cache starts again (the server's copies go with their `Statement`).
#[derive(Default)]
pub(crate) struct Statements(std::collections::HashMap<String, postgres::Statement>);

/// Test builds: prepare every statement on every run, as without the
/// cache (the reference `pg_read_rate` measures against).
#[cfg(test)]
pub(crate) static UNCACHED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Test builds: begin a write, take its lock and read the audit chain's
/// ends in three round trips, as before they were sent together (the
/// reference of `pg_read_rate`).
#[cfg(test)]
pub(crate) static SEPARATE_LOCK: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Most statements kept per connection (the store has well under 200
/// distinct texts; more means generated text, which is not worth keeping).
const MAX_STATEMENTS: usize = 512;

impl Statements {
    /// The prepared statement for `sql`, preparing it on `client` the
    /// first time.
    fn get(
        &mut self,
        client: &mut impl postgres::GenericClient,
        sql: &str,
    ) -> Result<postgres::Statement> {
        #[cfg(test)]
        if UNCACHED.load(std::sync::atomic::Ordering::Relaxed) {
            // The reference of the benchmark: parse on every run.
            return Ok(client.prepare(&pg_sql(sql))?);
        }
        if let Some(statement) = self.0.get(sql) {
            return Ok(statement.clone());
        }
        let statement = client.prepare(&pg_sql(sql))?;
        if self.0.len() >= MAX_STATEMENTS {
            self.0.clear();
        }
        self.0.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// Forgets `sql` after an error that may mean its plan is stale (the
    /// schema changed under it: "cached plan must not change result
    /// type"), so the next call prepares it again.
    fn failed(&mut self, sql: &str, e: &postgres::Error) {
        if e.code() == Some(&postgres::error::SqlState::FEATURE_NOT_SUPPORTED) {
            self.0.remove(sql);
        }
    }
}

/// A pooled PostgreSQL connection with its prepared statements.
pub(crate) struct PgClient {
    /// The connection.
    pub client: postgres::Client,
    /// What was prepared on it.
    pub statements: Statements,
    /// A write transaction begun on it is neither committed nor rolled
    /// back (a panic in the middle, or a ROLLBACK that failed): the pool
    /// then discards the connection instead of handing it out again.
    pub in_write: bool,
    /// When the pool last handed it out or found it alive.
    pub checked_at: std::time::Instant,
    /// The pool's count of lost connections when it was last checked
    /// (see `Prepared::is_valid`).
    pub losses_seen: u64,
}

/// A PostgreSQL connection or transaction, with the connection's
/// prepared statements.
pub(crate) enum PgConn<'c> {
    /// A pooled connection, each statement its own transaction.
    Client(&'c mut postgres::Client, &'c mut Statements),
    /// An open transaction.
    Tx(postgres::Transaction<'c>, &'c mut Statements),
}

impl PgConn<'_> {
    /// Runs a statement (prepared once per connection).
    fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let (outcome, statements) = match self {
            PgConn::Client(c, s) => {
                let statement = s.get(&mut **c, sql)?;
                (c.execute(&statement, params), s)
            }
            PgConn::Tx(t, s) => {
                let statement = s.get(t, sql)?;
                (t.execute(&statement, params), s)
            }
        };
        outcome.map_err(|e| {
            statements.failed(sql, &e);
            Error::from(e)
        })
    }

    /// Runs a query (prepared once per connection); its rows.
    fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<postgres::Row>> {
        let (outcome, statements) = match self {
            PgConn::Client(c, s) => {
                let statement = s.get(&mut **c, sql)?;
                (c.query(&statement, params), s)
            }
            PgConn::Tx(t, s) => {
                let statement = s.get(t, sql)?;
                (t.query(&statement, params), s)
            }
        };
        outcome.map_err(|e| {
            statements.failed(sql, &e);
            Error::from(e)
        })
    }
}

/// The audit chain's ends as [`crate::audit`] reads them: the newest
/// record (sequence, hash) and the newest checkpoint (size, creation time,
/// root).
pub(crate) type ChainEnds = (
    Option<(u64, [u8; 32])>,
    Option<(u64, crate::types::UnixSeconds, [u8; 32])>,
);

/// What a PostgreSQL write transaction carries besides its connection, to
/// save round trips while it holds the write lock: the audit chain's ends,
/// read in the round trip that began the transaction and took the lock,
/// and the notifications to send in the round trip that commits.
#[derive(Default)]
pub(crate) struct WriteExtras {
    /// The chain's ends as read right after the lock, until the
    /// transaction reads them (once) or writes an audit table (boxed:
    /// every `Db` carries these extras).
    pub chain_ends: Option<Box<ChainEnds>>,
    /// Whether notifications wait for the COMMIT (a write transaction)
    /// or are sent at once.
    pub defer_notes: bool,
    /// The payloads to notify, each once, in order.
    pub notes: Vec<String>,
}

/// A connection or transaction of either engine: what store code runs
/// its statements on.
pub(crate) enum Db<'c> {
    /// SQLite (a `Transaction` derefs to its `Connection`).
    Sqlite(&'c rusqlite::Connection),
    /// PostgreSQL; statements need `&mut`, hence the cells.
    Postgres(RefCell<PgConn<'c>>, RefCell<WriteExtras>),
}

/// `?N` placeholders to PostgreSQL's `$N`.
pub(crate) fn pg_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(|n| n.is_ascii_digit()) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

fn pg_params<'v>(params: &'v [Val<'_>]) -> Vec<&'v (dyn ToSql + Sync)> {
    params.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

impl<'c> Db<'c> {
    /// A PostgreSQL transaction as a `Db`, with its connection's prepared
    /// statements.
    pub fn pg_tx(tx: postgres::Transaction<'c>, statements: &'c mut Statements) -> Db<'c> {
        Db::Postgres(RefCell::new(PgConn::Tx(tx, statements)), RefCell::default())
    }

    /// A PostgreSQL connection (autocommit) as a `Db`.
    pub fn pg_client(client: &'c mut PgClient) -> Db<'c> {
        Db::Postgres(
            RefCell::new(PgConn::Client(&mut client.client, &mut client.statements)),
            RefCell::default(),
        )
    }

    /// A PostgreSQL connection on which a write transaction was begun
    /// (by `pg::PgStore::write`), with what that round trip read.
    pub fn pg_write(client: &'c mut PgClient, chain_ends: Option<ChainEnds>) -> Db<'c> {
        Db::Postgres(
            RefCell::new(PgConn::Client(&mut client.client, &mut client.statements)),
            RefCell::new(WriteExtras {
                chain_ends: chain_ends.map(Box::new),
                defer_notes: true,
                notes: Vec::new(),
            }),
        )
    }

    /// Whether this is PostgreSQL (for the few statements whose text
    /// differs).
    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(..))
    }

    /// Commits a PostgreSQL transaction (SQLite's are committed by their
    /// owner).
    pub fn commit(self) -> Result<()> {
        match self {
            Db::Postgres(cell, _) => match cell.into_inner() {
                PgConn::Tx(tx, _) => Ok(tx.commit()?),
                PgConn::Client(..) => Ok(()),
            },
            Db::Sqlite(_) => Ok(()),
        }
    }

    /// The audit chain's ends read with this write's BEGIN, once (`None`:
    /// read them now). Audit writes forget them ([`Db::chain_changed`]).
    pub fn take_chain_ends(&self) -> Option<ChainEnds> {
        match self {
            Db::Postgres(_, extras) => extras.borrow_mut().chain_ends.take().map(|e| *e),
            Db::Sqlite(_) => None,
        }
    }

    /// An audit table was written: the chain's ends read before are stale.
    pub fn chain_changed(&self) {
        if let Db::Postgres(_, extras) = self {
            extras.borrow_mut().chain_ends = None;
        }
    }

    /// PostgreSQL: notifies `payload` on `channel` when the transaction
    /// commits: in a write, sent with its COMMIT (each payload once);
    /// otherwise at once. Nothing on SQLite.
    pub fn notify(&self, channel: &str, payload: &str) -> Result<()> {
        let Db::Postgres(_, extras) = self else {
            return Ok(());
        };
        {
            let mut extras = extras.borrow_mut();
            if extras.defer_notes {
                if !extras.notes.iter().any(|n| n == payload) {
                    extras.notes.push(payload.to_owned());
                }
                return Ok(());
            }
        }
        self.execute("SELECT pg_notify(?1, ?2)", &vals![channel, payload])?;
        Ok(())
    }

    /// The notifications a write deferred to its COMMIT.
    pub fn take_notes(&self) -> Vec<String> {
        match self {
            Db::Postgres(_, extras) => std::mem::take(&mut extras.borrow_mut().notes),
            Db::Sqlite(_) => Vec::new(),
        }
    }

    /// PostgreSQL only: runs a statement of PostgreSQL's own dialect
    /// (`?N` placeholders, typed parameters such as arrays), prepared once
    /// per connection; the number of rows it changed.
    pub fn pg_execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        match self {
            Db::Postgres(cell, _) => cell.borrow_mut().execute(sql, params),
            Db::Sqlite(_) => Err(Error::Internal(
                "a PostgreSQL statement run on SQLite".into(),
            )),
        }
    }

    /// PostgreSQL only: runs a query of PostgreSQL's own dialect (as
    /// [`Db::pg_execute`]) that returns one row; that row.
    pub fn pg_query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<postgres::Row> {
        match self {
            Db::Postgres(cell, _) => cell
                .borrow_mut()
                .query(sql, params)?
                .into_iter()
                .next()
                .ok_or_else(|| Error::Internal("a query returned no row".into())),
            Db::Sqlite(_) => Err(Error::Internal(
                "a PostgreSQL statement run on SQLite".into(),
            )),
        }
    }

    /// Runs a statement; the number of rows it changed.
    pub fn execute(&self, sql: &str, params: &[Val<'_>]) -> Result<usize> {
        match self {
            Db::Sqlite(conn) => Ok(conn
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(params))?),
            Db::Postgres(cell, _) => {
                let n = cell.borrow_mut().execute(sql, &pg_params(params))?;
                Ok(n as usize)
            }
        }
    }

    /// Runs statements without parameters (DDL).
    pub fn batch(&self, sql: &str) -> Result<()> {
        match self {
            Db::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Db::Postgres(cell, _) => {
                match &mut *cell.borrow_mut() {
                    PgConn::Client(c, _) => c.batch_execute(sql)?,
                    PgConn::Tx(t, _) => t.batch_execute(sql)?,
                }
                Ok(())
            }
        }
    }

    /// Runs a query, calling `f` on each row in order.
    pub fn each(
        &self,
        sql: &str,
        params: &[Val<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<()>,
    ) -> Result<()> {
        match self {
            Db::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
                while let Some(row) = rows.next()? {
                    f(&Row::Sqlite(row))?;
                }
                Ok(())
            }
            Db::Postgres(cell, _) => {
                let rows = cell.borrow_mut().query(sql, &pg_params(params))?;
                for row in &rows {
                    f(&Row::Postgres(row))?;
                }
                Ok(())
            }
        }
    }

    /// Every row, each mapped by `f`.
    pub fn all<T>(
        &self,
        sql: &str,
        params: &[Val<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.each(sql, params, |row| {
            out.push(f(row)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row (if any), mapped by `f`.
    pub fn first<T>(
        &self,
        sql: &str,
        params: &[Val<'_>],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        let mut f = Some(f);
        let mut out = None;
        self.each(sql, params, |row| {
            if let Some(f) = f.take() {
                out = Some(f(row)?);
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// Whether a PostgreSQL error is a serialization failure or deadlock,
/// after which the whole transaction may be run again.
pub(crate) fn retryable(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}
