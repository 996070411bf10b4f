//! The PostgreSQL engine: a pool of connections to one database that
//! several nodes share (see [`super::engine`] for the design).
//!
//! The database holds exactly what the SQLite file holds: wrapped key
//! material and the root key sealed under the passphrase, never plaintext.
//! Connections come from an r2d2 pool; a connection found closed (the
//! server restarted) is dropped from the pool and the call fails with
//! `StoreUnavailable`; the next call connects again. A connection the
//! network dropped silently is bounded too: by the sockets
//! ([`TCP_USER_TIMEOUT`], keepalive on both sides) and by the change
//! feed's watchdog ([`watch`]), which counts the node down within
//! [`SILENCE`] (see the engine's notes, "Silent network drops").

use postgres::IsolationLevel;
use r2d2_postgres::PostgresConnectionManager;
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::engine::{ChainEnds, Db, PgClient, Statements};
use crate::error::{Error, Result, PG_RETRY};

mod conn;
#[cfg(test)]
pub(crate) use conn::{unanswered as unanswered_connects, CONNECT_BOUND};
pub use conn::{SslMode, StoreUrl};

/// Forward migrations of a PostgreSQL store; entry `i` moves the schema
/// from version `i` to `i + 1` (numbered on their own: a PostgreSQL store
/// starts at SQLite's schema 8). Integers are BIGINT, bytes BYTEA.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: SQLite's schema 8, and the table whose lock serializes writers.
    "CREATE TABLE store_write_lock (id INTEGER PRIMARY KEY);
     CREATE TABLE meta (name TEXT PRIMARY KEY, value BYTEA NOT NULL);
     CREATE TABLE keys (
        key_id TEXT PRIMARY KEY,
        description TEXT NOT NULL,
        key_spec TEXT NOT NULL,
        key_usage TEXT NOT NULL,
        origin TEXT NOT NULL,
        creation_date BIGINT NOT NULL,
        key_state TEXT NOT NULL,
        deletion_date BIGINT,
        pending_window_days BIGINT,
        rotation_period_days BIGINT,
        next_rotation_date BIGINT,
        on_demand_rotation_date BIGINT,
        token TEXT
     );
     CREATE TABLE key_versions (
        key_id TEXT NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,
        version BIGINT NOT NULL,
        created BIGINT NOT NULL,
        rotation_type TEXT,
        wrapped_material BYTEA NOT NULL,
        PRIMARY KEY (key_id, version)
     );
     CREATE TABLE aliases (
        alias_name TEXT PRIMARY KEY,
        key_id TEXT NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,
        creation_date BIGINT NOT NULL,
        last_updated_date BIGINT NOT NULL
     );
     CREATE INDEX aliases_by_key_name ON aliases(key_id, alias_name);
     CREATE TABLE tags (
        key_id TEXT NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,
        tag_key TEXT NOT NULL,
        tag_value TEXT NOT NULL,
        PRIMARY KEY (key_id, tag_key)
     );
     CREATE TABLE destroyed_keys (key_id TEXT PRIMARY KEY, destroyed_date BIGINT NOT NULL);
     CREATE TABLE p11_tokens (
        serial TEXT PRIMARY KEY,
        label TEXT NOT NULL,
        created BIGINT NOT NULL,
        so_pin BYTEA NOT NULL,
        so_failures BIGINT NOT NULL,
        user_pin BYTEA,
        user_failures BIGINT NOT NULL
     );
     CREATE TABLE p11_objects (
        object_id TEXT PRIMARY KEY,
        token TEXT NOT NULL REFERENCES p11_tokens(serial) ON DELETE CASCADE,
        key_id TEXT REFERENCES keys(key_id) ON DELETE CASCADE,
        attrs BYTEA NOT NULL
     );
     CREATE INDEX p11_objects_by_token ON p11_objects(token);
     CREATE INDEX p11_objects_by_key ON p11_objects(key_id);
     CREATE TABLE users (
        user_name TEXT PRIMARY KEY,
        created BIGINT NOT NULL,
        unix_uid BIGINT UNIQUE,
        cert_fingerprint TEXT UNIQUE
     );
     CREATE TABLE access_keys (
        access_key_id TEXT PRIMARY KEY,
        principal TEXT NOT NULL,
        created BIGINT NOT NULL,
        status TEXT NOT NULL,
        wrapped_secret BYTEA NOT NULL
     );
     CREATE INDEX access_keys_by_principal ON access_keys(principal);
     CREATE TABLE key_policies (
        key_id TEXT PRIMARY KEY REFERENCES keys(key_id) ON DELETE CASCADE,
        policy TEXT NOT NULL
     );
     CREATE TABLE grants (
        grant_id TEXT PRIMARY KEY,
        key_id TEXT NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,
        name TEXT,
        grantee TEXT NOT NULL,
        retiring TEXT,
        operations TEXT NOT NULL,
        context_equals TEXT,
        context_subset TEXT,
        issuing TEXT NOT NULL,
        created BIGINT NOT NULL
     );
     CREATE INDEX grants_by_key ON grants(key_id);
     CREATE INDEX grants_by_retiring ON grants(retiring, grant_id) WHERE retiring IS NOT NULL;
     CREATE TABLE audit_records (
        sequence BIGINT PRIMARY KEY,
        event_time BIGINT NOT NULL,
        event_name TEXT NOT NULL,
        username TEXT NOT NULL,
        access_key_id TEXT,
        resource_arn TEXT,
        resource_id TEXT,
        record TEXT NOT NULL,
        hash BYTEA NOT NULL
     );
     CREATE INDEX audit_records_by_time ON audit_records(event_time);
     CREATE TABLE audit_checkpoints (
        tree_size BIGINT PRIMARY KEY,
        created BIGINT NOT NULL,
        root BYTEA NOT NULL,
        note TEXT NOT NULL
     );
     CREATE INDEX keys_by_deletion_date ON keys(deletion_date) WHERE deletion_date IS NOT NULL;
     CREATE INDEX keys_by_rotation_date ON keys(key_state, next_rotation_date)
        WHERE next_rotation_date IS NOT NULL;
     CREATE INDEX keys_by_token ON keys(token, key_id) WHERE token IS NOT NULL;",
    // 2: text that pages, orders or is unique compares by bytes, as
    // SQLite's BINARY does, whatever the database's collation (under
    // en_US 'a' < 'B', so a page marker compared by it would skip or
    // repeat rows); PKCS#11 object rows keep SQLite's `rowid` order.
    r#"ALTER TABLE key_versions ALTER COLUMN key_id TYPE TEXT COLLATE "C";
     ALTER TABLE aliases ALTER COLUMN key_id TYPE TEXT COLLATE "C",
         ALTER COLUMN alias_name TYPE TEXT COLLATE "C";
     ALTER TABLE tags ALTER COLUMN key_id TYPE TEXT COLLATE "C",
         ALTER COLUMN tag_key TYPE TEXT COLLATE "C";
     ALTER TABLE p11_objects ALTER COLUMN key_id TYPE TEXT COLLATE "C",
         ALTER COLUMN object_id TYPE TEXT COLLATE "C",
         ALTER COLUMN token TYPE TEXT COLLATE "C";
     ALTER TABLE key_policies ALTER COLUMN key_id TYPE TEXT COLLATE "C";
     ALTER TABLE grants ALTER COLUMN key_id TYPE TEXT COLLATE "C",
         ALTER COLUMN grant_id TYPE TEXT COLLATE "C",
         ALTER COLUMN retiring TYPE TEXT COLLATE "C";
     ALTER TABLE keys ALTER COLUMN key_id TYPE TEXT COLLATE "C",
         ALTER COLUMN token TYPE TEXT COLLATE "C";
     ALTER TABLE destroyed_keys ALTER COLUMN key_id TYPE TEXT COLLATE "C";
     ALTER TABLE p11_tokens ALTER COLUMN serial TYPE TEXT COLLATE "C",
         ALTER COLUMN label TYPE TEXT COLLATE "C";
     ALTER TABLE users ALTER COLUMN user_name TYPE TEXT COLLATE "C",
         ALTER COLUMN cert_fingerprint TYPE TEXT COLLATE "C";
     ALTER TABLE access_keys ALTER COLUMN access_key_id TYPE TEXT COLLATE "C",
         ALTER COLUMN principal TYPE TEXT COLLATE "C";
     ALTER TABLE meta ALTER COLUMN name TYPE TEXT COLLATE "C";
     ALTER TABLE p11_objects ADD COLUMN rowid BIGINT GENERATED ALWAYS AS IDENTITY;
     CREATE INDEX p11_objects_by_token_order ON p11_objects(token, rowid);
     DROP INDEX p11_objects_by_token;"#,
    // 4: a batch of audit records appended in one round trip and one
    // transaction (a statement of its own), when the node's last known
    // chain head is still the head (see `crate::audit::log`): the write
    // lock, the head check and the insert. Returns whether it appended,
    // and the head it found (nothing written when it was not the
    // expected one: another node appended since; NULLs when no record is
    // left to compare with).
    r#"CREATE FUNCTION tinfoil_append_audit(
        expected_sequence BIGINT, expected_hash BYTEA,
        sequences BIGINT[], event_times BIGINT[], event_names TEXT[], usernames TEXT[],
        access_key_ids TEXT[], resource_arns TEXT[], resource_ids TEXT[], records TEXT[],
        hashes BYTEA[], OUT appended BOOLEAN, OUT head_sequence BIGINT, OUT head_hash BYTEA)
        LANGUAGE plpgsql AS $append$
     BEGIN
        LOCK TABLE store_write_lock IN EXCLUSIVE MODE;
        -- READ COMMITTED: this statement's snapshot follows the lock.
        SELECT sequence, hash INTO head_sequence, head_hash
            FROM audit_records ORDER BY sequence DESC LIMIT 1;
        appended := head_sequence IS NOT NULL AND head_sequence = expected_sequence
                    AND head_hash = expected_hash;
        IF appended THEN
            INSERT INTO audit_records (sequence, event_time, event_name, username, access_key_id,
                                       resource_arn, resource_id, record, hash)
                SELECT * FROM unnest(sequences, event_times, event_names, usernames,
                                     access_key_ids, resource_arns, resource_ids, records, hashes);
        END IF;
     END
     $append$;"#,
    // 5: SQLite's schema 9: PKCS#11 objects searched through indexes on
    // the raw values of CKA_CLASS, CKA_ID, CKA_LABEL and CKA_KEY_TYPE, and
    // a token's keys by description.
    "ALTER TABLE p11_objects ADD COLUMN a_class BYTEA,
         ADD COLUMN a_id BYTEA,
         ADD COLUMN a_label BYTEA,
         ADD COLUMN a_key_type BYTEA,
         ADD COLUMN searchable BIGINT NOT NULL DEFAULT 0;
     CREATE INDEX p11_objects_by_label ON p11_objects(token, a_label);
     CREATE INDEX p11_objects_by_ckaid ON p11_objects(token, a_id);
     CREATE INDEX p11_objects_by_class ON p11_objects(token, a_class, a_key_type);
     CREATE INDEX p11_objects_by_key_type ON p11_objects(token, a_key_type);
     CREATE INDEX p11_objects_unsearchable ON p11_objects(object_id) WHERE searchable = 0;
     CREATE INDEX keys_by_token_description ON keys(token, description) WHERE token IS NOT NULL;",
    // 6: a batch of audit records sealed by the database on the head it
    // holds, for a node whose known head another node moved (several
    // nodes appending at once): the write lock, the head and the newest
    // checkpoint, then each record's hash as `crate::audit::chain` defines
    // it (SHA-256 of the prefix and the canonical form, the chain member
    // written between the parts the node made), and the insert, in one
    // round trip and one transaction that cannot find the head moved.
    // Nothing is written when a checkpoint falls due (the node then
    // appends and signs in a write transaction) or no record is left to
    // chain on. Returns the chain's state after it.
    r#"CREATE FUNCTION tinfoil_append_audit_sealing(
        prefix BYTEA, now_secs BIGINT, every_records BIGINT, every_secs BIGINT,
        event_times BIGINT[], event_names TEXT[], usernames TEXT[], access_key_ids TEXT[],
        resource_arns TEXT[], resource_ids TEXT[], befores BYTEA[], afters BYTEA[],
        OUT appended BOOLEAN, OUT head_sequence BIGINT, OUT head_hash BYTEA,
        OUT checkpoint_size BIGINT, OUT checkpoint_time BIGINT)
        LANGUAGE plpgsql AS $sealing$
     DECLARE
        n INT := coalesce(array_length(befores, 1), 0);
        link BYTEA;
        sequences BIGINT[] := '{}';
        hashes BYTEA[] := '{}';
        records TEXT[] := '{}';
     BEGIN
        LOCK TABLE store_write_lock IN EXCLUSIVE MODE;
        -- READ COMMITTED: these statements' snapshots follow the lock.
        SELECT sequence, hash INTO head_sequence, head_hash
            FROM audit_records ORDER BY sequence DESC LIMIT 1;
        SELECT tree_size, created INTO checkpoint_size, checkpoint_time
            FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1;
        appended := n > 0 AND head_sequence IS NOT NULL AND checkpoint_size IS NOT NULL
                    AND head_sequence + n - checkpoint_size < every_records
                    AND now_secs - checkpoint_time < every_secs;
        IF NOT appended THEN
            RETURN;
        END IF;
        FOR i IN 1..n LOOP
            head_sequence := head_sequence + 1;
            link := convert_to('"previousHash":"' || encode(head_hash, 'hex')
                               || '","sequence":' || head_sequence || '}', 'UTF8');
            head_hash := sha256(prefix || befores[i] || convert_to('"tinfoil":{', 'UTF8')
                                || link || afters[i]);
            sequences := sequences || head_sequence;
            hashes := hashes || head_hash;
            records := records || convert_from(befores[i]
                || convert_to('"tinfoil":{"hash":"' || encode(head_hash, 'hex') || '",', 'UTF8')
                || link || afters[i], 'UTF8');
        END LOOP;
        INSERT INTO audit_records (sequence, event_time, event_name, username, access_key_id,
                                   resource_arn, resource_id, record, hash)
            SELECT * FROM unnest(sequences, event_times, event_names, usernames,
                                 access_key_ids, resource_arns, resource_ids, records, hashes);
     END
     $sealing$;"#,
];

/// The schema version this build writes on PostgreSQL.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The advisory lock key migrations take ("tinfoil" in ASCII).
const MIGRATION_LOCK: i64 = 0x74_69_6e_66_6f_69_6c;

/// How many times a write is run again after a serialization failure.
const RETRIES: usize = 5;

/// How many connections a node keeps at most.
const POOL_SIZE: u32 = 16;

type Pool = r2d2::Pool<Prepared<PostgresConnectionManager<MakeRustlsConnect>>>;

/// Begins a write transaction (REPEATABLE READ: see engine's design
/// notes for why not SERIALIZABLE), takes `store_write_lock`
/// and reads the audit chain's ends, in one round trip (a BEGIN in a
/// multi-statement query keeps its block open after it). The read is the
/// transaction's first snapshot, taken after the lock: it sees every
/// write committed before (see engine's design notes). Appending a record
/// needs the ends; other writes pay only the (indexed) read's server time.
fn begin_write(
    client: &mut postgres::Client,
) -> std::result::Result<ChainEnds, Box<dyn std::error::Error + Send + Sync>> {
    let begin =
        "BEGIN ISOLATION LEVEL REPEATABLE READ; LOCK TABLE store_write_lock IN EXCLUSIVE MODE;";
    #[cfg(test)]
    let begin = if super::engine::SEPARATE_LOCK.load(std::sync::atomic::Ordering::Relaxed) {
        // The reference of `pg_read_rate`: three round trips.
        client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")?;
        client.batch_execute("LOCK TABLE store_write_lock IN EXCLUSIVE MODE")?;
        ""
    } else {
        begin
    };
    let messages = client.simple_query(&format!("{begin} {CHAIN_ENDS}"))?;
    let row = messages.iter().find_map(|m| match m {
        postgres::SimpleQueryMessage::Row(row) => Some(row),
        _ => None,
    });
    let Some(row) = row else {
        return Ok((None, None));
    };
    let int =
        |i: usize| -> std::result::Result<Option<i64>, Box<dyn std::error::Error + Send + Sync>> {
            Ok(row.try_get(i)?.map(str::parse).transpose()?)
        };
    let hash = |i: usize| -> std::result::Result<
        Option<[u8; 32]>,
        Box<dyn std::error::Error + Send + Sync>,
    > { Ok(row.try_get(i)?.map(hex32).transpose()?) };
    let record = match (int(0)?, hash(1)?) {
        (Some(s), Some(h)) => Some((s as u64, h)),
        _ => None,
    };
    let checkpoint = match (int(2)?, int(3)?, hash(4)?) {
        (Some(s), Some(c), Some(h)) => Some((s as u64, c, h)),
        _ => None,
    };
    Ok((record, checkpoint))
}

/// `crate::audit::db::chain_ends`'s query, in text (the simple protocol
/// returns text): hashes as hex.
const CHAIN_ENDS: &str = "SELECT r.sequence, encode(r.hash, 'hex'), c.tree_size, c.created,
        encode(c.root, 'hex')
     FROM (SELECT 1 AS one) o
     LEFT JOIN (SELECT sequence, hash FROM audit_records ORDER BY sequence DESC LIMIT 1) r ON 1 = 1
     LEFT JOIN (SELECT tree_size, created, root FROM audit_checkpoints
                ORDER BY tree_size DESC LIMIT 1) c ON 1 = 1";

/// 64 hex digits to 32 bytes.
fn hex32(text: &str) -> std::result::Result<[u8; 32], String> {
    let digits = text.as_bytes();
    let mut out = [0u8; 32];
    if digits.len() != 64 {
        return Err("an audit hash is not 32 bytes".into());
    }
    let nibble = |d: u8| -> std::result::Result<u8, String> {
        (d as char)
            .to_digit(16)
            .map(|v| v as u8)
            .ok_or_else(|| "an audit hash is not hex".into())
    };
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Ok(out)
}

/// Commits, sending `notes` in the same round trip: payloads made only of
/// characters that need no quoting are written into the statement (the
/// store's payloads: key ids, fixed words, object ids); any other is sent
/// first as a parameter, in a round trip of its own.
fn commit_write(client: &mut postgres::Client, notes: &[String]) -> Result<()> {
    let plain = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.' | b'*'))
    };
    let mut sql = String::new();
    for note in notes {
        if plain(note) {
            sql.push_str(&format!("SELECT pg_notify('{CHANNEL}', '{note}'); "));
        } else {
            client.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, note])?;
        }
    }
    sql.push_str("COMMIT");
    client.batch_execute(&sql)?;
    Ok(())
}

/// A failed [`begin_write`]: the database's error as every statement's,
/// or a reply that could not be read (corrupt).
fn begin_failed(e: Box<dyn std::error::Error + Send + Sync>) -> Error {
    match e.downcast::<postgres::Error>() {
        Ok(e) => Error::from(*e),
        Err(e) => Error::Internal(format!("the store is corrupt: {e}")),
    }
}

/// A connection manager that gives each pooled connection a cache of
/// prepared statements (see [`super::engine::Statements`]), wrapping the
/// manager that connects (`M`: r2d2_postgres's, whatever its TLS).
///
/// A connection is checked with a round trip before it is handed out only
/// when it may have gone stale: it sat idle longer than [`IDLE_PROBE`], or
/// another connection was found closed since it was last checked (the
/// database restarted or the network dropped: every connection opened
/// before is dead, and would fail the call it is given). Busy connections
/// cost nothing. A connection last checked before the change feed went
/// silent (see [`watch`]) is dropped unchecked: a probe of it would only
/// wait out [`PROBE_TIMEOUT`].
#[derive(Debug)]
pub(crate) struct Prepared<M> {
    /// The manager that connects (shared with the thread of each bounded
    /// attempt, see [`conn::connect_bounded`]).
    pub connector: std::sync::Arc<M>,
    /// How many connections were found closed, ever (pooled ones, and
    /// the change feed's, which hears of a shutdown first).
    pub losses: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// `losses` as the change feed's watchdog last found its connection
    /// silent (0: never).
    pub silenced: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The store's connection attempts given up on (see
    /// [`conn::connect_bounded`]).
    pub unanswered: conn::Unanswered,
}

/// A pooled connection idle longer than this is checked before use.
const IDLE_PROBE: std::time::Duration = std::time::Duration::from_secs(1);

/// How long that check may take: a connection that does not answer an
/// empty query within this is dropped (the call gets another).
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

impl<M> Prepared<M> {
    /// Wraps `connector`, counting lost connections in `losses` and
    /// connection attempts given up on in `unanswered`.
    pub fn new(
        connector: M,
        losses: std::sync::Arc<std::sync::atomic::AtomicU64>,
        unanswered: conn::Unanswered,
    ) -> Prepared<M> {
        Prepared {
            connector: std::sync::Arc::new(connector),
            losses,
            silenced: Default::default(),
            unanswered,
        }
    }
}

impl<M> r2d2::ManageConnection for Prepared<M>
where
    M: r2d2::ManageConnection<Connection = postgres::Client, Error = postgres::Error>,
{
    type Connection = PgClient;
    type Error = std::io::Error;

    fn connect(&self) -> std::result::Result<PgClient, std::io::Error> {
        let connector = self.connector.clone();
        let mut client = conn::connect_bounded(&self.unanswered, move || connector.connect())
            .map_err(std::io::Error::other)?;
        // Best effort: a server that refuses (a pooler) still serves.
        client.batch_execute(SERVER_KEEPALIVES).ok();
        client.batch_execute(&idle_write_bound()).ok();
        Ok(PgClient {
            client,
            statements: Statements::default(),
            in_write: false,
            checked_at: std::time::Instant::now(),
            losses_seen: self.losses.load(std::sync::atomic::Ordering::Acquire),
        })
    }

    fn is_valid(&self, conn: &mut PgClient) -> std::result::Result<(), std::io::Error> {
        let losses = self.losses.load(std::sync::atomic::Ordering::Acquire);
        if conn.losses_seen < self.silenced.load(std::sync::atomic::Ordering::Acquire) {
            return Err(std::io::Error::other(
                "the connection predates a silent network drop",
            ));
        }
        if conn.losses_seen != losses || conn.checked_at.elapsed() > IDLE_PROBE {
            // Bounded: a connection the network dropped silently would
            // otherwise hold the call until the socket's own bound.
            if let Err(e) = conn.client.is_valid(PROBE_TIMEOUT) {
                self.losses
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                return Err(std::io::Error::other(e));
            }
            conn.losses_seen = losses;
        }
        conn.checked_at = std::time::Instant::now();
        Ok(())
    }

    fn has_broken(&self, conn: &mut PgClient) -> bool {
        if self.connector.has_broken(&mut conn.client) {
            // Closed under a call: the others may be stale too.
            self.losses
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            return true;
        }
        // A write left open is never handed out again (closing the
        // connection rolls it back on the server).
        conn.in_write
    }
}

/// Closes the connections the pool lets go (found closed or silent,
/// broken, or surplus) on a thread of their own (see [`close_aside`]).
#[derive(Debug)]
struct Closer;

impl r2d2::CustomizeConnection<PgClient, std::io::Error> for Closer {
    fn on_release(&self, conn: PgClient) {
        close_aside(conn);
    }
}

/// Drops a connection on a thread of its own: closing one waits for the
/// server's replies to what was sent on it, which never come over a
/// connection gone silent (not before the socket's bounds fail it, see
/// [`TCP_USER_TIMEOUT`]; never, past a hung middlebox that still
/// acknowledges), and no call or heartbeat may wait for that.
fn close_aside<T: Send + 'static>(conn: T) {
    // If no thread can be made, the closure (and the connection) is
    // dropped here.
    std::thread::Builder::new()
        .name("tinfoil-pg-close".into())
        .spawn(move || drop(conn))
        .ok();
}

/// A PostgreSQL store: a pool of connections to one database. Cloning
/// shares the pool.
#[derive(Clone)]
pub(crate) struct PgStore {
    pool: Pool,
    /// How to open the change feed's own connection.
    config: Box<postgres::Config>,
    /// TLS as the URL's `sslmode` asks (every connection, the feed's too).
    tls: MakeRustlsConnect,
    /// Set when the pool could not hand out a connection and held none:
    /// the database is away, and calls then wait [`AWAY_WAIT`] for a
    /// connection, not the pool's 3 s (a call reads and writes several
    /// times; each would wait in full). Cleared by the next connection.
    away: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The pool's count of lost connections (see [`Prepared`]).
    losses: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// [`Prepared::silenced`].
    silenced: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// [`Prepared::unanswered`].
    unanswered: conn::Unanswered,
}

/// How long a call waits for a connection from a busy pool: a call fails
/// with StoreUnavailable within this when the database cannot be reached.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The longest pause between the pool's attempts to reconnect to a
/// database that is away (r2d2 backs off from 200 ms up to half its
/// connection timeout).
const RECONNECT_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

/// How long a call waits for a connection while the database is away.
const AWAY_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// The channel write transactions notify (see [`notify`]).
const CHANNEL: &str = "tinfoil_changes";
/// A notification payload: everything may have changed.
pub(crate) const ALL: &str = "*";
/// A notification payload: some alias changed.
pub(crate) const ALIASES: &str = "aliases";
/// A notification payload: a user or access key changed.
pub(crate) const USERS: &str = "users";
/// A notification payload: a PKCS#11 token row (label, made or
/// re-initialised with its objects) changed.
pub(crate) const TOKENS: &str = "tokens";
/// The start of a notification payload naming a PKCS#11 object row.
const OBJECT: &str = "object:";

/// The payload naming PKCS#11 object row `id` (at most
/// `token::MAX_OBJECT_ID_LEN` bytes, well within a payload's 8000).
pub(crate) fn object(id: &str) -> String {
    format!("{OBJECT}{id}")
}

/// Tells every node, when `tx` commits, that `what` changed: a key id (its
/// record, versions, tags, policy or grants), [`ALIASES`], [`USERS`],
/// [`TOKENS`], an [`object`] or [`ALL`].
/// Nothing on SQLite (one process writes; shared opens follow the file's
/// data version).
/// In a write the notification is sent with the COMMIT (one round trip
/// for both).
pub(crate) fn notify(tx: &Db<'_>, what: &str) -> Result<()> {
    tx.notify(CHANNEL, what)
}

/// How often the feed's connection is checked when no notification came,
/// and how often everything is forgotten while it is down.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_millis(250);

/// What a node must forget because another node changed it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Forget {
    /// A key id (text) whose record, versions, tags, policy or grants
    /// changed.
    pub key: Option<String>,
    /// Every alias.
    pub aliases: bool,
    /// Users and access keys.
    pub users: bool,
    /// PKCS#11 tokens (readers of token objects reload everything).
    pub tokens: bool,
    /// A PKCS#11 object row, by object id.
    pub object: Option<String>,
    /// Everything mutable.
    pub all: bool,
}

impl Forget {
    /// What a notification's payload names.
    fn of(payload: &str) -> Forget {
        let mut forget = Forget::default();
        match payload {
            ALL => forget.all = true,
            ALIASES => forget.aliases = true,
            USERS => forget.users = true,
            TOKENS => forget.tokens = true,
            other => match other.strip_prefix(OBJECT) {
                Some(id) => forget.object = Some(id.to_string()),
                None => forget.key = Some(other.to_string()),
            },
        }
        forget
    }
}

/// Where the change feed delivers: the node's caches.
pub(crate) trait Sink: Send + Sync + 'static {
    /// Forgets what changed; false when the node is gone (the listener
    /// then ends).
    fn forget(&self, forget: &Forget) -> bool;
    /// The feed's connection went down (`true`: nothing mutable may be
    /// served from memory until it is back) or is back.
    fn set_down(&self, down: bool);
}

/// The handle of a running change feed; [`Feed::stop`] ends its listener.
#[derive(Default)]
pub(crate) struct Feed {
    stop: std::sync::atomic::AtomicBool,
}

impl Feed {
    /// Asks the listener to end (within a heartbeat).
    pub fn stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
    }

    fn stopped(&self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// How long the change feed may go without a completed round trip on its
/// connection before the node counts it down (see [`watch`]): three
/// heartbeats. A connection the network dropped silently (no FIN, no RST:
/// a cable, a firewall's state, a hung middlebox) returns no error for
/// minutes; the node must not serve cached mutable state meanwhile.
pub(crate) const SILENCE: std::time::Duration = std::time::Duration::from_millis(750);

/// How long a heartbeat's round trip may take before the feed gives its
/// connection up and connects again (the rest of [`SILENCE`]).
const ROUND_TRIP: std::time::Duration = std::time::Duration::from_millis(500);

/// How the feed's connection is doing, shared by the listener ([`listen`])
/// and its watchdog ([`watch`]). Every change of the node's down flag
/// happens under this lock, so the two never undo each other's.
struct Pulse {
    state: std::sync::Mutex<PulseState>,
    sink: std::sync::Arc<dyn Sink>,
    losses: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// [`Prepared::silenced`].
    silenced: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// [`Prepared::unanswered`].
    unanswered: conn::Unanswered,
}

struct PulseState {
    /// Listening (the node is up unless `silent`).
    listening: bool,
    /// When the last heartbeat round trip completed (or listening began).
    last: std::time::Instant,
    /// The watchdog found the connection silent: the node is down until
    /// the listener has connected again.
    silent: bool,
}

impl Pulse {
    fn lock(&self) -> std::sync::MutexGuard<'_, PulseState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Listening from now on (everything was forgotten after LISTEN): the
    /// node is up.
    fn up(&self) {
        let mut state = self.lock();
        state.listening = true;
        state.silent = false;
        state.last = std::time::Instant::now();
        self.sink.set_down(false);
    }

    /// A heartbeat round trip completed; false when the watchdog counted
    /// the connection silent meanwhile (the listener then connects again,
    /// and forgets everything once more before the node is up).
    fn beat(&self) -> bool {
        let mut state = self.lock();
        if state.silent {
            return false;
        }
        state.last = std::time::Instant::now();
        true
    }

    /// The connection failed, or was given up (`silent`: a round trip
    /// took longer than [`ROUND_TRIP`]; see [`Pulse::silence`]): the node is
    /// down, and the pool's connections are checked before their next use.
    fn down(&self, silent: bool) {
        let mut state = self.lock();
        if silent && !state.silent {
            self.silence();
        } else {
            self.losses
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        state.listening = false;
        state.silent = false;
        self.sink.set_down(true);
    }

    /// The feed's connection went silent. Whatever path it took, the
    /// pool's connections likely take too: idle ones are dropped unchecked
    /// (busy ones fail at the socket's bounds) and calls get new ones.
    /// While none can be made, a call fails after [`BUSY_WAIT`] (the
    /// first) or [`AWAY_WAIT`] (the next ones, the pool then empty). Not
    /// [`AWAY_WAIT`] at once: a feed merely slow (a starved machine) must
    /// not fail calls that a new connection would serve.
    fn silence(&self) {
        let losses = self
            .losses
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel)
            + 1;
        self.silenced
            .store(losses, std::sync::atomic::Ordering::Release);
    }

    /// The watchdog's look: whether the node is down now (counting the
    /// connection silent, and the node down, when its last round trip is
    /// older than [`SILENCE`]), and when to look again.
    fn check(&self) -> (bool, std::time::Duration) {
        let mut state = self.lock();
        if !state.listening || state.silent {
            return (true, HEARTBEAT);
        }
        let age = state.last.elapsed();
        if age < SILENCE {
            return (false, SILENCE - age + std::time::Duration::from_millis(5));
        }
        state.silent = true;
        self.silence();
        self.sink.set_down(true);
        (true, HEARTBEAT)
    }
}

/// The feed's watchdog, on a thread of its own: counts the node down
/// within [`SILENCE`] of its feed's last round trip, whatever the listener
/// is blocked in (a reply that never comes over a silently dropped
/// connection, a connection attempt), and while the node is down forgets
/// everything every [`HEARTBEAT`] (policies and grants, which a call may
/// have read meanwhile, are not served older than that). Ends with the
/// feed or the node.
fn watch(feed: std::sync::Arc<Feed>, pulse: std::sync::Arc<Pulse>) {
    let all = all_of();
    while !feed.stopped() {
        let (down, next) = pulse.check();
        if down && !pulse.sink.forget(&all) {
            return;
        }
        std::thread::sleep(next);
    }
}

/// Follows the channel on a connection of its own until `feed` is
/// stopped or the sink's node is gone, reconnecting after a failure.
/// Down (before the first connection, and after a failure until it is
/// listening again), the sink is told so (and [`watch`] makes it forget
/// everything every heartbeat); once listening, it forgets everything
/// once (what it missed) and then what each notification names. A round
/// trip (bounded by [`ROUND_TRIP`]) at least every [`HEARTBEAT`] proves
/// the connection alive, even while notifications stream in.
fn listen(
    config: postgres::Config,
    tls: MakeRustlsConnect,
    feed: std::sync::Arc<Feed>,
    pulse: std::sync::Arc<Pulse>,
) {
    use postgres::fallible_iterator::FallibleIterator;
    let all = all_of();
    let sink = &*pulse.sink;
    while !feed.stopped() {
        let mut client = match conn::connect_config_bounded(&pulse.unanswered, &config, &tls) {
            Ok(client) => client,
            Err(_) => {
                std::thread::sleep(HEARTBEAT);
                continue;
            }
        };
        if client.batch_execute(&format!("LISTEN {CHANNEL}")).is_err() {
            std::thread::sleep(HEARTBEAT);
            continue;
        }
        // Listening from here on: forget what was missed before.
        if !sink.forget(&all) {
            return;
        }
        pulse.up();
        let mut silent = false;
        'connected: while !feed.stopped() {
            let beat_at = std::time::Instant::now() + HEARTBEAT;
            {
                let mut notes = client.notifications();
                loop {
                    let left = beat_at.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    let forget = match notes.timeout_iter(left).next() {
                        Ok(Some(n)) => Forget::of(n.payload()),
                        Ok(None) => break,
                        Err(_) => break 'connected,
                    };
                    if !sink.forget(&forget) {
                        return;
                    }
                }
            }
            if client.is_closed() {
                break;
            }
            if client.is_valid(ROUND_TRIP).is_err() {
                // No reply in time, the connection still open: silent.
                silent = !client.is_closed();
                break;
            }
            if !pulse.beat() {
                break;
            }
        }
        // The database went away, the network dropped, or the connection
        // went silent: the pool's connections are checked before their
        // next use.
        pulse.down(silent);
        close_aside(client);
    }
}

fn all_of() -> Forget {
    Forget {
        all: true,
        ..Forget::default()
    }
}

/// How long data sent on a connection to PostgreSQL may stay
/// unacknowledged by the server's host before the connection fails
/// (`TCP_USER_TIMEOUT`, Linux): a network that drops packets silently
/// then fails the call with StoreUnavailable in seconds, not after the
/// kernel's ~15 minutes of retransmissions, and within the daemon's
/// per-call deadline (10 s by default). It counts only unacknowledged
/// data: a long query the server is still working on (its host
/// acknowledged the query at once) is never cut short by it.
const TCP_USER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(4);

/// TCP keepalive on every connection: after this long without traffic
/// the kernel probes the server's host (every [`KEEPALIVE_INTERVAL`],
/// [`KEEPALIVE_RETRIES`] times, and no longer than [`TCP_USER_TIMEOUT`]
/// unanswered), so a connection waiting for a reply (a query that runs,
/// or waits for a lock) over a network that went silent fails in about
/// 5 s. The server's host answers probes whatever the backend is doing:
/// a long query is never cut short by them. An empty segment per
/// connection per second is the whole cost.
const KEEPALIVE_IDLE: std::time::Duration = std::time::Duration::from_secs(1);
/// See [`KEEPALIVE_IDLE`].
const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
/// See [`KEEPALIVE_IDLE`].
const KEEPALIVE_RETRIES: u32 = 3;

/// The same keepalive on the server's side of each pooled connection (set
/// for the session when it is made): a node whose network dropped
/// silently in the middle of a write transaction would otherwise keep its
/// session, and the write lock every node's writers wait for, until the
/// server's host notices (by default after two hours of idle and nine
/// probes): every node's writes would hang meanwhile. With it the server
/// ends the session (rolling the transaction back) about 4 s after the
/// node's host stops answering. A live node's host answers the probes
/// whatever the node is doing, so no working session is ended.
const SERVER_KEEPALIVES: &str =
    "SET tcp_keepalives_idle = 1; SET tcp_keepalives_interval = 1; SET tcp_keepalives_count = 3";

/// How long the server lets a pooled session sit idle inside a
/// transaction before it ends the session (rolling back; the write lock
/// every node's writers wait for goes with it). A node that stops in the
/// middle of a write while its host still answers TCP keepalives (a
/// frozen or stopped process, a paused VM, a debugger) would otherwise
/// hold every node's writes until it runs again; with it they wait at
/// most this long, and the stopped node's write fails when it resumes
/// (its connection is gone) and changes nothing. A write never pauses
/// between its statements: everything it stores is computed before it
/// begins (key material, audit records), so no working write is ended.
#[cfg(not(test))]
const IDLE_WRITE_BOUND: std::time::Duration = std::time::Duration::from_secs(10);
/// Shorter in tests, so the frozen-writer case runs in seconds.
#[cfg(test)]
const IDLE_WRITE_BOUND: std::time::Duration = std::time::Duration::from_secs(1);

/// The session setting for [`IDLE_WRITE_BOUND`].
fn idle_write_bound() -> String {
    format!(
        "SET idle_in_transaction_session_timeout = {}",
        IDLE_WRITE_BOUND.as_millis()
    )
}

/// Gives `config`'s TCP connections (pool and change feed) the bounds
/// above, unless the store URL sets its own (`tcp_user_timeout`,
/// `keepalives_idle`, `keepalives_interval`, `keepalives_retries`; with
/// `keepalives=0` none). Unix-socket connections need none.
fn bound_sockets(config: &mut postgres::Config) {
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(TCP_USER_TIMEOUT);
    }
    if !config.get_keepalives() {
        return;
    }
    // tokio-postgres' default idle time (2 hours): not set in the URL.
    if config.get_keepalives_idle() == std::time::Duration::from_secs(2 * 60 * 60) {
        config.keepalives_idle(KEEPALIVE_IDLE);
    }
    if config.get_keepalives_interval().is_none() {
        config.keepalives_interval(KEEPALIVE_INTERVAL);
    }
    if config.get_keepalives_retries().is_none() {
        config.keepalives_retries(KEEPALIVE_RETRIES);
    }
}

impl PgStore {
    /// A pooled connection, waiting at most `wait`, else [`BUSY_WAIT`],
    /// or [`AWAY_WAIT`] while the database is away.
    fn connection(
        &self,
        wait: Option<std::time::Duration>,
    ) -> Result<r2d2::PooledConnection<Prepared<PostgresConnectionManager<MakeRustlsConnect>>>>
    {
        use std::sync::atomic::Ordering;
        let away = self.away.load(Ordering::Relaxed);
        let wait = match (wait, away) {
            (Some(wait), true) => Some(wait.min(AWAY_WAIT)),
            (None, true) => Some(AWAY_WAIT),
            (wait, false) => wait,
        };
        let got = self.pool.get_timeout(wait.unwrap_or(BUSY_WAIT));
        match got {
            Ok(conn) => {
                if away {
                    self.away.store(false, Ordering::Relaxed);
                }
                Ok(conn)
            }
            Err(e) => {
                // None held: not a busy pool, an unreachable database.
                if self.pool.state().connections == 0 {
                    self.away.store(true, Ordering::Relaxed);
                }
                Err(e.into())
            }
        }
    }

    /// Connects to the database `url` names (see [`StoreUrl`]) and applies
    /// the missing migrations. The password is `password`, or libpq's
    /// `PGPASSWORD`. Errors name the database as [`StoreUrl`] shows it.
    pub fn connect(url: &str, password: Option<&SecretString>) -> Result<PgStore> {
        let url = StoreUrl::parse(url)?;
        let tls = url.connector()?;
        let mut config = url.config().clone();
        if let Some(password) = password {
            config.password(password.expose_secret());
        } else if let Ok(password) = std::env::var("PGPASSWORD") {
            config.password(password);
        }
        config.connect_timeout(std::time::Duration::from_secs(10));
        bound_sockets(&mut config);
        // One connection first, for the whole reason when it fails (the
        // pool keeps only the outermost message: "error performing TLS
        // handshake", without why).
        let unanswered = conn::Unanswered::default();
        conn::connect_config_bounded(&unanswered, &config, &tls)
            .map_err(|e| {
                Error::StoreUnavailable(format!("cannot connect to PostgreSQL at {url}: {e}"))
            })?
            .close()
            .ok();
        let manager = PostgresConnectionManager::new(config.clone(), tls.clone());
        let losses = std::sync::Arc::<std::sync::atomic::AtomicU64>::default();
        let prepared = Prepared::new(manager, losses.clone(), unanswered.clone());
        let silenced = prepared.silenced.clone();
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            // Only connections that may be stale are checked (see
            // Prepared): a database restart fails no call once it is up.
            .test_on_check_out(true)
            // Also the longest pause between the pool's attempts to
            // reconnect (twice this): a node serves again within about
            // half a second of the database coming back.
            .connection_timeout(RECONNECT_PAUSE * 2)
            .connection_customizer(Box::new(Closer))
            .build(prepared)
            .map_err(|e| {
                Error::StoreUnavailable(format!("cannot connect to PostgreSQL at {url}: {e}"))
            })?;
        let store = PgStore {
            pool,
            config: Box::new(config),
            tls,
            away: Default::default(),
            losses,
            silenced,
            unanswered,
        };
        store.migrate().map_err(|e| match e {
            Error::StoreUnavailable(m) => {
                Error::StoreUnavailable(format!("PostgreSQL at {url}: {m}"))
            }
            other => other,
        })?;
        Ok(store)
    }

    /// Applies the missing migrations in one transaction under an
    /// advisory lock, so nodes opening an older store together apply
    /// each once.
    fn migrate(&self) -> Result<()> {
        let mut client = self.connection(None)?;
        let mut tx = client.client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
        let current: i64 = match tx.query_opt("SELECT version FROM schema_version", &[])? {
            Some(row) => row.try_get(0)?,
            None => {
                tx.execute("INSERT INTO schema_version (version) VALUES (0)", &[])?;
                0
            }
        };
        if current > SCHEMA_VERSION {
            return Err(Error::StoreUnavailable(format!(
                "the store has schema version {current}, newer than this build's {SCHEMA_VERSION}; upgrade Tinfoil"
            )));
        }
        for sql in &MIGRATIONS[current as usize..] {
            tx.batch_execute(sql)?;
        }
        tx.execute("UPDATE schema_version SET version = $1", &[&SCHEMA_VERSION])?;
        tx.commit()?;
        Ok(())
    }

    /// Starts following other nodes' changes: a thread with a connection
    /// of its own delivers them to `sink` (see [`Sink`]), and a watchdog
    /// counts the node down when that connection goes silent (see
    /// [`watch`]). Stop both with [`Feed::stop`].
    pub fn follow(&self, sink: Box<dyn Sink>) -> Result<std::sync::Arc<Feed>> {
        sink.set_down(true);
        let feed = std::sync::Arc::new(Feed::default());
        let pulse = std::sync::Arc::new(Pulse {
            state: std::sync::Mutex::new(PulseState {
                listening: false,
                last: std::time::Instant::now(),
                silent: false,
            }),
            sink: std::sync::Arc::from(sink),
            losses: self.losses.clone(),
            silenced: self.silenced.clone(),
            unanswered: self.unanswered.clone(),
        });
        let config = (*self.config).clone();
        let tls = self.tls.clone();
        let (listener, watcher) = (feed.clone(), feed.clone());
        let watched = pulse.clone();
        std::thread::Builder::new()
            .name("tinfoil-pg-watch".into())
            .spawn(move || watch(watcher, watched))
            .map_err(|e| Error::Internal(format!("cannot start the change feed: {e}")))?;
        std::thread::Builder::new()
            .name("tinfoil-pg-feed".into())
            .spawn(move || listen(config, tls, listener, pulse))
            .map_err(|e| {
                feed.stop();
                Error::Internal(format!("cannot start the change feed: {e}"))
            })?;
        Ok(feed)
    }

    /// Runs `f` in one write transaction (REPEATABLE READ, holding
    /// `store_write_lock` from its first statement), appending the pending
    /// audit record when `audited`; a serialization failure runs it again.
    pub fn write<T>(&self, audited: bool, f: &mut dyn FnMut(&Db<'_>) -> Result<T>) -> Result<T> {
        let mut attempt = 0;
        loop {
            let mut pooled = self.connection(None)?;
            let outcome = (|| {
                // The transaction and its lock in one round trip (a BEGIN
                // in a multi-statement query keeps its block open after
                // it). No snapshot before the lock: see engine's design
                // notes.
                pooled.in_write = true;
                let chain_ends = begin_write(&mut pooled.client).map_err(begin_failed)?;
                let db = Db::pg_write(&mut pooled, Some(chain_ends));
                let value = f(&db)?;
                let appended = if audited {
                    crate::audit::pending::before_commit(&db)?
                } else {
                    None
                };
                let notes = db.take_notes();
                drop(db);
                commit_write(&mut pooled.client, &notes)?;
                pooled.in_write = false;
                Ok((value, appended))
            })();
            if outcome.is_err() && pooled.client.batch_execute("ROLLBACK").is_ok() {
                // Also after a failed COMMIT, which ended the transaction
                // (ROLLBACK then only warns).
                pooled.in_write = false;
            }
            match outcome {
                Ok((value, appended)) => {
                    crate::audit::pending::after_commit(appended);
                    return Ok(value);
                }
                Err(Error::StoreUnavailable(m)) if m.starts_with(PG_RETRY) && attempt < RETRIES => {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs `f` on a pooled connection; `snapshot`: in one read-only
    /// REPEATABLE READ transaction.
    pub fn read<T>(&self, snapshot: bool, f: impl FnOnce(&Db<'_>) -> Result<T>) -> Result<T> {
        self.read_within(None, snapshot, f)
    }

    /// [`PgStore::read`], waiting at most `wait` for a connection (else
    /// the pool's 3 s): for the change feed's own reads, which must not
    /// hold up its heartbeat while the database is away.
    pub fn read_within<T>(
        &self,
        wait: Option<std::time::Duration>,
        snapshot: bool,
        f: impl FnOnce(&Db<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut pooled = self.connection(wait)?;
        if snapshot {
            let PgClient {
                client, statements, ..
            } = &mut *pooled;
            let tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let db = Db::pg_tx(tx, statements);
            let value = f(&db)?;
            db.commit()?;
            Ok(value)
        } else {
            f(&Db::pg_client(&mut pooled))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::time::Duration;

    /// Every TCP connection gets the socket bounds, unless its URL sets
    /// its own.
    #[test]
    fn sockets_are_bounded_unless_the_url_says_otherwise() {
        let mut config = postgres::Config::from_str("postgres://u@db.example/tinfoil").unwrap();
        super::bound_sockets(&mut config);
        assert_eq!(config.get_tcp_user_timeout(), Some(&Duration::from_secs(4)));
        assert!(config.get_keepalives());
        assert_eq!(config.get_keepalives_idle(), Duration::from_secs(1));
        assert_eq!(
            config.get_keepalives_interval(),
            Some(Duration::from_secs(1))
        );
        assert_eq!(config.get_keepalives_retries(), Some(3));

        let mut config = postgres::Config::from_str(
            "postgres://u@db.example/tinfoil?tcp_user_timeout=9&keepalives_idle=30&keepalives_interval=5&keepalives_retries=7",
        )
        .unwrap();
        super::bound_sockets(&mut config);
        assert_eq!(config.get_tcp_user_timeout(), Some(&Duration::from_secs(9)));
        assert_eq!(config.get_keepalives_idle(), Duration::from_secs(30));
        assert_eq!(
            config.get_keepalives_interval(),
            Some(Duration::from_secs(5))
        );
        assert_eq!(config.get_keepalives_retries(), Some(7));

        let mut config =
            postgres::Config::from_str("postgres://u@db.example/tinfoil?keepalives=0").unwrap();
        super::bound_sockets(&mut config);
        assert!(!config.get_keepalives());
        assert_eq!(config.get_tcp_user_timeout(), Some(&Duration::from_secs(4)));
    }
}
