//! The SQLite store: schema, forward migrations, durability settings, the
//! single-process lock, and row reads and writes.
//!
//! Guarantees: WAL journal with `synchronous=FULL` (an acknowledged change
//! survives power loss), `secure_delete=ON` (deleted rows are overwritten
//! with zeros), one transaction per operation (taking SQLite's write lock
//! when it begins, so a transaction reads what it writes on), and a lock on
//! `tinfoil.lock`: exclusive for tinfoild and the CLI (one process per data
//! directory), shared for the PKCS#11 module's embedded backend, whose
//! processes may open one store together (see [`LockMode`]).
//!
//! Init is atomic: a new store is built under a temporary name
//! (`tinfoil.db.partial`, rollback journal) in the data directory, synced,
//! and renamed to `tinfoil.db` only when complete, so a crash at any point of
//! init leaves no store or a complete one. Every file of the store (the
//! database, its `-wal` and `-shm`, the lock) is mode 0600.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;

use rusqlite::{Connection, Transaction};
use uuid::Uuid;

pub(crate) mod engine;
pub(crate) mod pg;

use engine::{vals, Db, Row};

use crate::error::{Error, Result};
use crate::model::{AliasRecord, KeyRecord, VersionInfo};
use crate::types::{KeySpec, KeyState, KeyUsage, Origin, RotationType, UnixSeconds};

/// The database file's name inside the data directory.
pub(crate) const DB_FILE: &str = "tinfoil.db";
const LOCK_FILE: &str = "tinfoil.lock";
/// The name a new store is built under until it is complete.
const PARTIAL_FILE: &str = "tinfoil.db.partial";
/// SQLite's companions of a database file (`tinfoil.db-wal`, ...).
const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];
/// The mode of every file of the store.
const FILE_MODE: u32 = 0o600;

/// Forward migrations; entry `i` moves the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
     CREATE TABLE keys (
        key_id TEXT PRIMARY KEY,
        description TEXT NOT NULL,
        key_spec TEXT NOT NULL,
        key_usage TEXT NOT NULL,
        origin TEXT NOT NULL,
        creation_date INTEGER NOT NULL,
        key_state TEXT NOT NULL,
        deletion_date INTEGER,
        pending_window_days INTEGER,
        rotation_period_days INTEGER,
        next_rotation_date INTEGER,
        on_demand_rotation_date INTEGER,
        token TEXT
     );
     CREATE TABLE key_versions (
        key_id TEXT NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        created INTEGER NOT NULL,
        rotation_type TEXT,
        wrapped_material BLOB NOT NULL,
        PRIMARY KEY (key_id, version)
     );
     CREATE TABLE aliases (
        alias_name TEXT PRIMARY KEY,
        key_id TEXT NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,
        creation_date INTEGER NOT NULL,
        last_updated_date INTEGER NOT NULL
     );
     CREATE INDEX aliases_by_key ON aliases(key_id);
     CREATE TABLE tags (
        key_id TEXT NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,
        tag_key TEXT NOT NULL,
        tag_value TEXT NOT NULL,
        PRIMARY KEY (key_id, tag_key)
     );
     CREATE TABLE destroyed_keys (key_id TEXT PRIMARY KEY, destroyed_date INTEGER NOT NULL);",
    // 2: PKCS#11 tokens and objects. PIN columns hold salt || Argon2id hash;
    // attrs holds TLV-encoded PKCS#11 attributes, never key material.
    "CREATE TABLE p11_tokens (
        serial TEXT PRIMARY KEY,
        label TEXT NOT NULL,
        created INTEGER NOT NULL,
        so_pin BLOB NOT NULL,
        so_failures INTEGER NOT NULL,
        user_pin BLOB,
        user_failures INTEGER NOT NULL
     );
     CREATE TABLE p11_objects (
        object_id TEXT PRIMARY KEY,
        token TEXT NOT NULL REFERENCES p11_tokens(serial) ON DELETE CASCADE,
        key_id TEXT REFERENCES keys(key_id) ON DELETE CASCADE,
        attrs BLOB NOT NULL
     );
     CREATE INDEX p11_objects_by_token ON p11_objects(token);",
    // 3: a key's PKCS#11 objects by key id (reloading one changed key's
    // objects; the cascade when a key is destroyed).
    "CREATE INDEX p11_objects_by_key ON p11_objects(key_id);",
    // 4: users and their access keys. `principal` is a user name or
    // `root` (the account's administrators); the secret is wrapped under
    // the root key, bound to its access key id.
    "CREATE TABLE users (
        user_name TEXT PRIMARY KEY,
        created INTEGER NOT NULL,
        unix_uid INTEGER UNIQUE,
        cert_fingerprint TEXT UNIQUE
     );
     CREATE TABLE access_keys (
        access_key_id TEXT PRIMARY KEY,
        principal TEXT NOT NULL,
        created INTEGER NOT NULL,
        status TEXT NOT NULL,
        wrapped_secret BLOB NOT NULL
     );
     CREATE INDEX access_keys_by_principal ON access_keys(principal);",
    // 5: key policies (the JSON text as given; a key without a row has the
    // default policy) and grants; both vanish with their key.
    "CREATE TABLE key_policies (
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
        created INTEGER NOT NULL
     );
     CREATE INDEX grants_by_key ON grants(key_id);",
    // the audit log (records, signed checkpoints): see crate::audit::db.
    crate::audit::db::MIGRATION,
    // 7: keys are read when used, not loaded at open: the background tick
    // finds due keys through indexes on their due dates, PKCS#11 tokens
    // their keys by token, and ListAliases for one key seeks by name.
    "CREATE INDEX keys_by_deletion_date ON keys(deletion_date)
        WHERE deletion_date IS NOT NULL;
     CREATE INDEX keys_by_rotation_date ON keys(key_state, next_rotation_date)
        WHERE next_rotation_date IS NOT NULL;
     CREATE INDEX keys_by_token ON keys(token, key_id) WHERE token IS NOT NULL;
     CREATE INDEX aliases_by_key_name ON aliases(key_id, alias_name);
     DROP INDEX aliases_by_key;",
    // 8: grants are read per key when used, not loaded at open; the grants
    // a principal may retire are found through this index.
    "CREATE INDEX grants_by_retiring ON grants(retiring, grant_id) WHERE retiring IS NOT NULL;",
    // 9: PKCS#11 objects are searched in the store, not in a table each
    // module holds: the raw values of the attributes applications search
    // on (NULL when the object has none), indexed per token, and KMS keys
    // of a token by description (the CKA_LABEL of a key no row describes).
    // Rows written before carry `searchable` 0 until the store's next open
    // fills their columns in (see `crate::token::search`).
    "ALTER TABLE p11_objects ADD COLUMN a_class BLOB;
     ALTER TABLE p11_objects ADD COLUMN a_id BLOB;
     ALTER TABLE p11_objects ADD COLUMN a_label BLOB;
     ALTER TABLE p11_objects ADD COLUMN a_key_type BLOB;
     ALTER TABLE p11_objects ADD COLUMN searchable INTEGER NOT NULL DEFAULT 0;
     CREATE INDEX p11_objects_by_label ON p11_objects(token, a_label);
     CREATE INDEX p11_objects_by_ckaid ON p11_objects(token, a_id);
     CREATE INDEX p11_objects_by_class ON p11_objects(token, a_class, a_key_type);
     CREATE INDEX p11_objects_by_key_type ON p11_objects(token, a_key_type);
     CREATE INDEX p11_objects_unsearchable ON p11_objects(object_id) WHERE searchable = 0;
     CREATE INDEX keys_by_token_description ON keys(token, description) WHERE token IS NOT NULL;",
];

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// How long a write waits for another process's transaction (SQLite's
/// busy timeout) before failing.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a shared open waits for an init or an exclusive holder that
/// is about to let go, before saying the store is in use.
const SHARED_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// How a process holds the data directory's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// This process alone (tinfoild, the CLI, an init).
    Exclusive,
    /// Together with other processes holding it shared (the PKCS#11
    /// module's embedded backend); never together with an exclusive one.
    Shared,
}

/// An open store: a SQLite database plus the lock that keeps other
/// processes out, or a PostgreSQL database shared by several nodes (see
/// [`engine`] for what the two share).
pub(crate) struct Store {
    /// The SQLite connection. On a PostgreSQL store, an empty in-memory
    /// database that nothing uses (every statement goes through [`Db`]).
    pub conn: Connection,
    /// Held for the store's lifetime; the OS releases it on close or exit
    /// (SQLite only).
    _lock: Option<File>,
    /// How `_lock` is held.
    mode: LockMode,
    /// The PostgreSQL engine, if this store is one.
    pg: Option<pg::PgStore>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

fn unavailable(msg: impl Into<String>) -> Error {
    Error::StoreUnavailable(msg.into())
}

/// Creates the data directory with mode 0700 (or checks an existing one).
pub(crate) fn prepare_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| unavailable(format!("cannot create {}: {e}", dir.display())))?;
    }
    let meta = fs::metadata(dir)
        .map_err(|e| unavailable(format!("cannot read {}: {e}", dir.display())))?;
    if !meta.is_dir() {
        return Err(unavailable(format!("{} is not a directory", dir.display())));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| {
            unavailable(format!(
                "cannot restrict {} to mode 0700: {e}",
                dir.display()
            ))
        })?;
    }
    Ok(())
}

/// Whether `dir` holds a database file.
pub(crate) fn exists(dir: &Path) -> bool {
    dir.join(DB_FILE).is_file()
}

/// Whether `dir` holds a database file that is not a store: one left by an
/// init of an older Tinfoil that was interrupted (no sealed root key and no
/// keys; an empty file counts). A file SQLite cannot read is not incomplete
/// (it is never removed).
pub(crate) fn incomplete(dir: &Path) -> bool {
    let path = db_path(dir);
    match fs::metadata(&path) {
        Ok(meta) if meta.is_file() && meta.len() == 0 => return true,
        Ok(meta) if meta.is_file() => {}
        _ => return false,
    }
    let Ok(conn) = Connection::open_with_flags(
        &path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) else {
        return false;
    };
    let count = |sql: &str| -> Option<i64> { conn.query_row(sql, [], |r| r.get(0)).ok() };
    let tables = |name: &str| {
        count(&format!(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '{name}'"
        ))
    };
    let (Some(meta_tables), Some(key_tables)) = (tables("meta"), tables("keys")) else {
        return false;
    };
    let sealed = if meta_tables == 0 {
        Some(0)
    } else {
        count("SELECT count(*) FROM meta WHERE name = 'wrapped_root_key'")
    };
    let keys = if key_tables == 0 {
        Some(0)
    } else {
        count("SELECT count(*) FROM keys")
    };
    sealed == Some(0) && keys == Some(0)
}

/// Removes `file` and its SQLite companions; whether anything was there.
fn remove_with_companions(dir: &Path, file: &str) -> Result<bool> {
    let mut removed = false;
    for name in
        std::iter::once(file.to_owned()).chain(COMPANIONS.iter().map(|c| format!("{file}{c}")))
    {
        let path = dir.join(&name);
        match fs::remove_file(&path) {
            Ok(()) => removed = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(unavailable(format!(
                    "cannot remove {}: {e}",
                    path.display()
                )));
            }
        }
    }
    Ok(removed)
}

/// Makes the store's files (database, WAL, shared memory, lock) mode 0600;
/// stores made before this rule had 0644 files.
fn restrict_files(dir: &Path) -> Result<()> {
    let names = [
        DB_FILE.to_owned(),
        format!("{DB_FILE}-wal"),
        format!("{DB_FILE}-shm"),
        LOCK_FILE.to_owned(),
    ];
    for name in names {
        let path = dir.join(name);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_file() && meta.permissions().mode() & 0o777 != FILE_MODE {
            fs::set_permissions(&path, fs::Permissions::from_mode(FILE_MODE)).map_err(|e| {
                unavailable(format!(
                    "cannot restrict {} to mode 0600: {e}",
                    path.display()
                ))
            })?;
        }
    }
    Ok(())
}

/// Opens (creating, mode 0600) and takes the data directory's lock.
fn take_lock(dir: &Path, mode: LockMode) -> Result<File> {
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(FILE_MODE)
        .open(dir.join(LOCK_FILE))
        .map_err(|e| {
            unavailable(format!(
                "cannot open the lock file in {}: {e}",
                dir.display()
            ))
        })?;
    let in_use = || {
        unavailable(format!(
            "the store in {} is in use by another process",
            dir.display()
        ))
    };
    match mode {
        LockMode::Exclusive => lock.try_lock().map_err(|_| in_use())?,
        LockMode::Shared => {
            // An init (or a process about to exit) holds it exclusively
            // for a moment: wait a little before giving up.
            let deadline = std::time::Instant::now() + SHARED_WAIT;
            while lock.try_lock_shared().is_err() {
                if std::time::Instant::now() >= deadline {
                    return Err(in_use());
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
    Ok(lock)
}

/// Flushes a file or directory to stable storage.
fn sync_path(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| unavailable(format!("cannot sync {}: {e}", path.display())))
}

/// Applies the settings every connection to a store uses.
fn configure(conn: &mut Connection, journal_mode: &str) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Every transaction takes the write lock when it begins: one that read
    // an old snapshot could not write afterwards (SQLITE_BUSY_SNAPSHOT)
    // once another process committed; reads in one see the newest state.
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    conn.pragma_update(None, "journal_mode", journal_mode)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

fn db_path(dir: &Path) -> PathBuf {
    dir.join(DB_FILE)
}

impl Store {
    /// The descriptor of the data directory lock (see [`crate::Hsm::lock_fd`]).
    /// -1 for a PostgreSQL store (no lock file).
    pub fn lock_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self._lock.as_ref().map_or(-1, |f| f.as_raw_fd())
    }

    /// Whether this store is a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// A store on the PostgreSQL engine.
    pub(crate) fn from_pg(pg: pg::PgStore) -> Result<Store> {
        Ok(Store {
            conn: Connection::open_in_memory()?,
            _lock: None,
            mode: LockMode::Exclusive,
            pg: Some(pg),
        })
    }

    /// Opens the existing database in `dir`, takes the lock, applies the
    /// durability settings and forward migrations.
    pub fn open(dir: &Path, mode: LockMode) -> Result<Store> {
        if !exists(dir) {
            return Err(unavailable(format!(
                "no Tinfoil store in {}; run init first",
                dir.display()
            )));
        }
        let lock = take_lock(dir, mode)?;
        Self::open_locked(dir, lock, mode)
    }

    /// How this process holds the store.
    pub fn lock_mode(&self) -> LockMode {
        self.mode
    }

    /// SQLite's `data_version`: it moves when another connection (another
    /// process) committed since the last reading, never for this one's.
    /// Always 0 on PostgreSQL (other nodes' changes arrive through the
    /// change feed, [`Store::follow`]).
    pub fn data_version(&self) -> Result<u64> {
        if self.pg.is_some() {
            return Ok(0);
        }
        let version: i64 = self
            .conn
            .pragma_query_value(None, "data_version", |r| r.get(0))?;
        Ok(version as u64)
    }

    fn open_locked(dir: &Path, lock: File, mode: LockMode) -> Result<Store> {
        restrict_files(dir)?;
        let mut conn = Connection::open_with_flags(
            db_path(dir),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| {
            unavailable(format!(
                "cannot open the database in {}: {e}",
                dir.display()
            ))
        })?;
        configure(&mut conn, "WAL")?;
        restrict_files(dir)?;
        let mut store = Store {
            conn,
            _lock: Some(lock),
            mode,
            pg: None,
        };
        store.migrate()?;
        Ok(store)
    }

    /// Creates a store in `dir` atomically: under the lock, builds the
    /// database under a temporary name (schema, then `seal`'s writes in one
    /// transaction), syncs it and renames it into place, then opens it.
    /// Leftovers of an interrupted init (the temporary files, or an
    /// [`incomplete`] database of an older version) are removed first; a
    /// complete store is `AlreadyExists` and untouched.
    /// The store is then held in `mode` (an init itself always runs under
    /// the exclusive lock).
    pub fn create(
        dir: &Path,
        mode: LockMode,
        seal: impl FnOnce(&mut Store) -> Result<()>,
    ) -> Result<Store> {
        let lock = take_lock(dir, LockMode::Exclusive)?;
        if exists(dir) {
            if !incomplete(dir) {
                return Err(Error::AlreadyExists(format!(
                    "{} already holds a Tinfoil store",
                    dir.display()
                )));
            }
            remove_with_companions(dir, DB_FILE)?;
        }
        remove_with_companions(dir, PARTIAL_FILE)?;
        let partial = dir.join(PARTIAL_FILE);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&partial)
            .map_err(|e| unavailable(format!("cannot create {}: {e}", partial.display())))?;
        let mut conn = Connection::open(&partial).map_err(|e| {
            unavailable(format!(
                "cannot create the database in {}: {e}",
                dir.display()
            ))
        })?;
        // A rollback journal while building: nothing but the one file is
        // left to rename once the connection is closed.
        configure(&mut conn, "DELETE")?;
        let mut building = Store {
            conn,
            _lock: Some(lock),
            mode: LockMode::Exclusive,
            pg: None,
        };
        building.migrate()?;
        seal(&mut building)?;
        let Store {
            conn, _lock: lock, ..
        } = building;
        let lock = lock.expect("a SQLite store holds its lock");
        conn.close()
            .map_err(|(_, e)| unavailable(format!("cannot close {}: {e}", partial.display())))?;
        sync_path(&partial)?;
        fs::rename(&partial, db_path(dir)).map_err(|e| {
            unavailable(format!(
                "cannot rename {} into place: {e}",
                partial.display()
            ))
        })?;
        sync_path(dir)?;
        if mode == LockMode::Shared {
            // Converts the exclusive lock (flock); others may open now.
            lock.lock_shared()
                .map_err(|e| unavailable(format!("cannot share the store's lock: {e}")))?;
        }
        Self::open_locked(dir, lock, mode)
    }

    /// Applies the missing migrations, each once even when several
    /// processes open an older store together: the version is read again
    /// inside each step's transaction, which holds the write lock.
    fn migrate(&mut self) -> Result<()> {
        let version = |conn: &Connection| -> Result<u32> {
            let current: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if current > SCHEMA_VERSION {
                return Err(unavailable(format!(
                    "the store has schema version {current}, newer than this build's {SCHEMA_VERSION}; upgrade Tinfoil"
                )));
            }
            Ok(current)
        };
        if version(&self.conn)? == SCHEMA_VERSION {
            return Ok(());
        }
        loop {
            let tx = self.conn.transaction()?;
            let current = version(&tx)?;
            let Some(sql) = MIGRATIONS.get(current as usize) else {
                return Ok(());
            };
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", current + 1)?;
            tx.commit()?;
        }
    }

    /// Runs `f` in one transaction of either engine, committed only when
    /// it succeeds. The audit record of the gated call running on this
    /// thread, if any is pending, is appended in the same transaction (see
    /// `crate::audit`). On PostgreSQL a serialization failure runs `f`
    /// again (see [`engine`]).
    pub fn write<T>(&mut self, mut f: impl FnMut(&Db<'_>) -> Result<T>) -> Result<T> {
        self.write_with(true, &mut f)
    }

    /// [`Store::write`] without the pending audit record (the audit log's
    /// own writes).
    pub fn write_unaudited<T>(&mut self, mut f: impl FnMut(&Db<'_>) -> Result<T>) -> Result<T> {
        self.write_with(false, &mut f)
    }

    fn write_with<T>(
        &mut self,
        audited: bool,
        f: &mut dyn FnMut(&Db<'_>) -> Result<T>,
    ) -> Result<T> {
        if let Some(pg) = &self.pg {
            return pg.write(audited, f);
        }
        let tx = self.conn.transaction()?;
        let db = Db::Sqlite(&tx);
        let value = f(&db)?;
        let appended = if audited {
            crate::audit::pending::before_commit(&db)?
        } else {
            None
        };
        drop(db);
        tx.commit()?;
        crate::audit::pending::after_commit(appended);
        Ok(value)
    }

    /// Runs `f` on a connection of either engine, outside any write
    /// transaction (reads).
    pub fn read<T>(&self, f: impl FnOnce(&Db<'_>) -> Result<T>) -> Result<T> {
        match &self.pg {
            Some(pg) => pg.read(false, f),
            None => f(&Db::Sqlite(&self.conn)),
        }
    }

    /// Runs `f` in one read transaction of either engine (statements
    /// that must agree), outside any write.
    pub fn read_snapshot<T>(&self, f: impl FnOnce(&Db<'_>) -> Result<T>) -> Result<T> {
        match &self.pg {
            Some(pg) => pg.read(true, f),
            None => {
                // Deferred: a read takes no write lock.
                let tx = Transaction::new_unchecked(
                    &self.conn,
                    rusqlite::TransactionBehavior::Deferred,
                )?;
                let value = f(&Db::Sqlite(&tx))?;
                tx.finish()?;
                Ok(value)
            }
        }
    }

    /// Copies the WAL into the database and truncates it, so that overwritten
    /// pages no longer hold old content anywhere on disk. Nothing on
    /// PostgreSQL (see `pg`).
    pub fn checkpoint(&self) -> Result<()> {
        if self.pg.is_some() {
            return Ok(());
        }
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Reads a meta value.
    pub fn meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.read(|db| {
            db.first(
                "SELECT value FROM meta WHERE name = ?1",
                &vals![name],
                |r| r.get(0),
            )
        })
    }

    /// Follows other nodes' changes into `sink` (PostgreSQL; `None` on
    /// SQLite, where nothing else writes or shared opens follow the
    /// file's data version).
    pub fn follow(
        &self,
        sink: impl FnOnce() -> Box<dyn pg::Sink>,
    ) -> Result<Option<std::sync::Arc<pg::Feed>>> {
        self.pg.as_ref().map(|pg| pg.follow(sink())).transpose()
    }

    /// A second connection to the same database for reads (see
    /// [`Reader`]); reads through it never wait for a writer's fsync.
    /// On PostgreSQL, the engine's connection pool.
    pub fn reader(&self) -> Result<Reader> {
        if let Some(pg) = &self.pg {
            return Ok(Reader {
                engine: ReadEngine::Postgres(pg.clone()),
            });
        }
        let path = self
            .conn
            .path()
            .ok_or_else(|| unavailable("the store has no file to read"))?;
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| unavailable(format!("cannot open the database for reading: {e}")))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        Ok(Reader {
            engine: ReadEngine::Sqlite(Mutex::new(conn)),
        })
    }
}

/// The reads keys, aliases and lists need, each one indexed lookup or
/// one index range from a marker (keyset pagination), so that its cost
/// does not grow with the number of keys. This is the read side of the
/// store interface: its signatures name model types only, not SQLite's, so
/// that another engine can implement them.
pub(crate) struct Reader {
    engine: ReadEngine,
}

enum ReadEngine {
    /// A read-only connection of its own.
    Sqlite(Mutex<Connection>),
    /// The engine's pool.
    Postgres(pg::PgStore),
}

/// A page of key ids after a marker (the primary key's index).
pub(crate) const KEY_PAGE_SQL: &str =
    "SELECT key_id FROM keys WHERE key_id > ?1 ORDER BY key_id LIMIT ?2";
/// A page of aliases after a marker (the primary key's index).
pub(crate) const ALIAS_PAGE_SQL: &str =
    "SELECT alias_name, key_id, creation_date, last_updated_date FROM aliases
     WHERE alias_name > ?1 ORDER BY alias_name LIMIT ?2";
/// A page of one key's aliases after a marker (`aliases_by_key_name`).
pub(crate) const KEY_ALIAS_PAGE_SQL: &str =
    "SELECT alias_name, key_id, creation_date, last_updated_date FROM aliases
     WHERE key_id = ?1 AND alias_name > ?2 ORDER BY alias_name LIMIT ?3";
/// A token's keys (`keys_by_token`).
pub(crate) const TOKEN_KEYS_SQL: &str = concat!(
    "SELECT key_id, description, key_spec, key_usage, origin, creation_date, ",
    "key_state, deletion_date, pending_window_days, rotation_period_days, next_rotation_date, ",
    "on_demand_rotation_date, token FROM keys WHERE token = ?1 ORDER BY key_id"
);
/// Keys whose deletion date has come (`keys_by_deletion_date`).
pub(crate) const DUE_DELETIONS_SQL: &str =
    "SELECT key_id FROM keys WHERE deletion_date <= ?1 AND key_state = 'PendingDeletion'
     ORDER BY deletion_date";
/// Enabled keys whose rotation has come (`keys_by_rotation_date`).
pub(crate) const DUE_ROTATIONS_SQL: &str =
    "SELECT key_id FROM keys WHERE key_state = 'Enabled' AND next_rotation_date <= ?1
     ORDER BY next_rotation_date";

/// A page of the grants a principal may retire (`grants_by_retiring`).
pub(crate) const RETIRABLE_GRANTS_SQL: &str = concat!(
    "SELECT grant_id, key_id, name, grantee, retiring, operations, context_equals, ",
    "context_subset, issuing, created FROM grants ",
    "WHERE retiring = ?1 AND grant_id > ?2 ORDER BY grant_id LIMIT ?3"
);

/// The columns of a key row, in [`key_from_row`]'s order.
const KEY_COLUMNS: &str = "key_id, description, key_spec, key_usage, origin, creation_date, \
    key_state, deletion_date, pending_window_days, rotation_period_days, next_rotation_date, \
    on_demand_rotation_date, token";

fn key_from_row(row: &Row<'_>) -> Result<KeyRecord> {
    Ok(KeyRecord {
        id: parse_uuid(&row.get::<String>(0)?)?,
        description: row.get(1)?,
        spec: KeySpec::parse(&row.get::<String>(2)?).map_err(corrupt)?,
        usage: KeyUsage::parse(&row.get::<String>(3)?).map_err(corrupt)?,
        origin: Origin::parse(&row.get::<String>(4)?).map_err(corrupt)?,
        creation_date: row.get(5)?,
        state: KeyState::parse(&row.get::<String>(6)?).map_err(corrupt)?,
        deletion_date: row.get(7)?,
        pending_window_days: row.get(8)?,
        rotation_period_days: row.get(9)?,
        next_rotation_date: row.get(10)?,
        on_demand_rotation_date: row.get(11)?,
        versions: Vec::new(),
        token: row.get(12)?,
        tags: BTreeMap::new(),
    })
}

fn alias_from_row(row: &Row<'_>) -> Result<AliasRecord> {
    Ok(AliasRecord {
        name: row.get(0)?,
        target: parse_uuid(&row.get::<String>(1)?)?,
        creation_date: row.get(2)?,
        last_updated_date: row.get(3)?,
    })
}

/// A version row (version, created, rotation type from column `at`).
fn version_from_row(row: &Row<'_>, at: usize) -> Result<VersionInfo> {
    let rotation_type = match row.get::<Option<String>>(at + 2)? {
        Some(text) => Some(RotationType::parse(&text).map_err(corrupt)?),
        None => None,
    };
    Ok(VersionInfo {
        version: row.get(at)?,
        created: row.get(at + 1)?,
        rotation_type,
    })
}

/// Reads one key (row, versions, tags) through `db`.
fn read_key(db: &Db<'_>, id: &Uuid) -> Result<Option<KeyRecord>> {
    let id_text = id_text(id);
    let Some(mut key) = db.first(
        &format!("SELECT {KEY_COLUMNS} FROM keys WHERE key_id = ?1"),
        &vals![&id_text],
        key_from_row,
    )?
    else {
        return Ok(None);
    };
    db.each(
        "SELECT version, created, rotation_type FROM key_versions WHERE key_id = ?1 ORDER BY version",
        &vals![&id_text],
        |row| {
            let info = version_from_row(row, 0)?;
            if info.version != key.current_version() + 1 {
                return Err(corrupt("key versions are not consecutive"));
            }
            key.versions.push(info);
            Ok(())
        },
    )?;
    if key.versions.is_empty() {
        return Err(corrupt("a key without material"));
    }
    db.each(
        "SELECT tag_key, tag_value FROM tags WHERE key_id = ?1",
        &vals![&id_text],
        |row| {
            key.tags.insert(row.get(0)?, row.get(1)?);
            Ok(())
        },
    )?;
    Ok(Some(key))
}

fn ids(db: &Db<'_>, sql: &str, params: &[engine::Val<'_>]) -> Result<Vec<Uuid>> {
    db.all(sql, params, |row| parse_uuid(&row.get::<String>(0)?))
}

impl Reader {
    /// Runs `f` on the reading connection; `snapshot`: in one read
    /// transaction (several statements that must agree).
    pub(crate) fn with<T>(
        &self,
        snapshot: bool,
        f: impl FnOnce(&Db<'_>) -> Result<T>,
    ) -> Result<T> {
        match &self.engine {
            ReadEngine::Sqlite(conn) => {
                // A connection stays usable even if a holder panicked.
                let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
                if snapshot {
                    let tx = conn.unchecked_transaction()?;
                    let value = f(&Db::Sqlite(&tx))?;
                    tx.finish()?;
                    Ok(value)
                } else {
                    f(&Db::Sqlite(&conn))
                }
            }
            ReadEngine::Postgres(pg) => pg.read(snapshot, f),
        }
    }

    /// Users and access keys, in one snapshot; on PostgreSQL waiting at
    /// most `wait` for a connection (the change feed's reload).
    pub fn identities(&self, wait: std::time::Duration) -> Result<crate::users::Identities> {
        match &self.engine {
            ReadEngine::Postgres(pg) => pg.read_within(Some(wait), true, crate::users::load),
            ReadEngine::Sqlite(_) => self.with(true, crate::users::load),
        }
    }

    /// Whether this reads a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        matches!(self.engine, ReadEngine::Postgres(_))
    }

    /// One key with its versions and tags, read in one snapshot.
    pub fn key(&self, id: &Uuid) -> Result<Option<KeyRecord>> {
        self.with(true, |db| read_key(db, id))
    }

    /// An alias by name.
    pub fn alias(&self, name: &str) -> Result<Option<AliasRecord>> {
        self.with(false, |db| {
            db.first(
                "SELECT alias_name, key_id, creation_date, last_updated_date FROM aliases
                 WHERE alias_name = ?1",
                &vals![name],
                alias_from_row,
            )
        })
    }

    /// A key's policy text, if it has one stored (else the default).
    pub fn policy(&self, id: &Uuid) -> Result<Option<String>> {
        self.with(false, |db| {
            db.first(
                "SELECT policy FROM key_policies WHERE key_id = ?1",
                &vals![&id_text(id)],
                |r| r.get(0),
            )
        })
    }

    /// Every grant of a key (`grants_by_key`).
    pub fn grants_of_key(&self, key: &Uuid) -> Result<Vec<crate::grants::Grant>> {
        self.with(false, |db| {
            db.all(
                &format!(
                    "SELECT {} FROM grants WHERE key_id = ?1",
                    crate::grants::GRANT_COLUMNS
                ),
                &vals![&id_text(key)],
                crate::grants::from_row,
            )
        })
    }

    /// The key of a grant, by grant id.
    pub fn grant_key(&self, grant_id: &str) -> Result<Option<Uuid>> {
        self.with(false, |db| {
            db.first(
                "SELECT key_id FROM grants WHERE grant_id = ?1",
                &vals![grant_id],
                |r| parse_uuid(&r.get::<String>(0)?),
            )
        })
    }

    /// Up to `limit` grants whose retiring principal is `retiring`, in
    /// grant id order after `after` (`grants_by_retiring`).
    pub fn retirable_grants(
        &self,
        retiring: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<crate::grants::Grant>> {
        self.with(false, |db| {
            db.all(
                RETIRABLE_GRANTS_SQL,
                &vals![retiring, after.unwrap_or(""), limit as i64],
                crate::grants::from_row,
            )
        })
    }

    /// Whether a key was destroyed (its ciphertexts can never decrypt).
    pub fn is_destroyed(&self, id: &Uuid) -> Result<bool> {
        self.with(false, |db| {
            Ok(db
                .first(
                    "SELECT key_id FROM destroyed_keys WHERE key_id = ?1",
                    &vals![&id_text(id)],
                    |_| Ok(()),
                )?
                .is_some())
        })
    }

    /// The wrapped material of one version.
    pub fn wrapped_material(&self, id: &Uuid, version: u32) -> Result<Option<Vec<u8>>> {
        self.with(false, |db| {
            db.first(
                "SELECT wrapped_material FROM key_versions WHERE key_id = ?1 AND version = ?2",
                &vals![&id_text(id), version],
                |r| r.get(0),
            )
        })
    }

    /// Up to `limit` key ids after `after`, in order.
    pub fn key_ids_after(&self, after: Option<&str>, limit: usize) -> Result<Vec<Uuid>> {
        self.with(false, |db| {
            ids(db, KEY_PAGE_SQL, &vals![after.unwrap_or(""), limit as i64])
        })
    }

    /// Up to `limit` aliases after the name `after`, in name order, all or
    /// those of one key.
    pub fn aliases_after(
        &self,
        key: Option<&Uuid>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AliasRecord>> {
        let after = after.unwrap_or("");
        self.with(false, |db| match key {
            Some(id) => db.all(
                KEY_ALIAS_PAGE_SQL,
                &vals![&id_text(id), after, limit as i64],
                alias_from_row,
            ),
            None => db.all(ALIAS_PAGE_SQL, &vals![after, limit as i64], alias_from_row),
        })
    }

    /// Every key of a PKCS#11 token (with versions and tags), in id
    /// order: three indexed queries in one snapshot, whatever the size of
    /// the store.
    pub fn token_keys(&self, token: &str) -> Result<Vec<KeyRecord>> {
        let mut keys: BTreeMap<Uuid, KeyRecord> = BTreeMap::new();
        self.with(true, |db| {
            db.each(TOKEN_KEYS_SQL, &vals![token], |row| {
                let key = key_from_row(row)?;
                keys.insert(key.id, key);
                Ok(())
            })?;
            db.each(
                "SELECT v.key_id, v.version, v.created, v.rotation_type
                 FROM keys k JOIN key_versions v ON v.key_id = k.key_id
                 WHERE k.token = ?1 ORDER BY v.key_id, v.version",
                &vals![token],
                |row| {
                    let id = parse_uuid(&row.get::<String>(0)?)?;
                    let key = keys
                        .get_mut(&id)
                        .ok_or_else(|| corrupt("a version without its key"))?;
                    let info = version_from_row(row, 1)?;
                    if info.version != key.current_version() + 1 {
                        return Err(corrupt("key versions are not consecutive"));
                    }
                    key.versions.push(info);
                    Ok(())
                },
            )?;
            db.each(
                "SELECT t.key_id, t.tag_key, t.tag_value
                 FROM keys k JOIN tags t ON t.key_id = k.key_id WHERE k.token = ?1",
                &vals![token],
                |row| {
                    let id = parse_uuid(&row.get::<String>(0)?)?;
                    if let Some(key) = keys.get_mut(&id) {
                        key.tags.insert(row.get(1)?, row.get(2)?);
                    }
                    Ok(())
                },
            )
        })?;
        if keys.values().any(|k| k.versions.is_empty()) {
            return Err(corrupt("a key without material"));
        }
        Ok(keys.into_values().collect())
    }

    /// Keys pending deletion whose deletion date is at or before `now`.
    pub fn due_deletions(&self, now: UnixSeconds) -> Result<Vec<Uuid>> {
        self.with(false, |db| ids(db, DUE_DELETIONS_SQL, &vals![now]))
    }

    /// Enabled keys whose scheduled rotation is at or before `now`.
    pub fn due_rotations(&self, now: UnixSeconds) -> Result<Vec<Uuid>> {
        self.with(false, |db| ids(db, DUE_ROTATIONS_SQL, &vals![now]))
    }
}

fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::Internal(format!("the store is corrupt: {what}"))
}

fn parse_uuid(text: &str) -> Result<Uuid> {
    Uuid::from_str(text).map_err(|_| corrupt("a malformed key id"))
}

fn id_text(id: &Uuid) -> String {
    id.hyphenated().to_string()
}

/// Writes a meta value.
pub(crate) fn put_meta(tx: &Db<'_>, name: &str, value: &[u8]) -> Result<()> {
    tx.execute(
        "INSERT INTO meta (name, value) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        &vals![name, value],
    )?;
    Ok(())
}

/// Inserts or replaces a key's row and its tags (not its versions).
pub(crate) fn put_key(tx: &Db<'_>, key: &KeyRecord) -> Result<()> {
    write_key(tx, key, true)
}

/// A key CreateKey made, to be inserted with its first version and its
/// policy (see [`put_new_keys`]).
pub(crate) struct NewKey {
    /// The key's row and tags; its one version.
    pub record: KeyRecord,
    /// The first version's material, wrapped under the root key.
    pub wrapped: Vec<u8>,
    /// The key policy's text (`None`: the default policy, no row).
    pub policy: Option<String>,
}

/// Inserts new keys (ids nothing else holds) with their first version,
/// tags and policy. On PostgreSQL, under the one write lock, a table's
/// rows go in one statement (arrays unnested), so a group-committed batch
/// of CreateKeys costs the same few round trips whatever its size; on
/// SQLite row by row (no round trips).
pub(crate) fn put_new_keys(tx: &Db<'_>, keys: &[&NewKey]) -> Result<()> {
    if !tx.is_postgres() {
        for key in keys {
            write_key(tx, &key.record, false)?;
            put_version(tx, &key.record.id, &key.record.versions[0], &key.wrapped)?;
            if let Some(policy) = &key.policy {
                crate::policy::authz::put_policy_row(tx, &key.record.id, policy)?;
            }
        }
        return Ok(());
    }
    if keys.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = keys.iter().map(|k| id_text(&k.record.id)).collect();
    for (key, id) in keys.iter().zip(&ids) {
        crate::audit::pending::note_key(&key.record);
        pg::notify(tx, id)?;
    }
    let text =
        |f: fn(&KeyRecord) -> &str| -> Vec<&str> { keys.iter().map(|k| f(&k.record)).collect() };
    let number = |f: fn(&KeyRecord) -> Option<i64>| -> Vec<Option<i64>> {
        keys.iter().map(|k| f(&k.record)).collect()
    };
    let description = text(|r| &r.description);
    let spec = text(|r| r.spec.as_str());
    let usage = text(|r| r.usage.as_str());
    let origin = text(|r| r.origin.as_str());
    let state = text(|r| r.state.as_str());
    let created = number(|r| Some(r.creation_date));
    let deletion = number(|r| r.deletion_date);
    let window = number(|r| r.pending_window_days.map(i64::from));
    let period = number(|r| r.rotation_period_days.map(i64::from));
    let next = number(|r| r.next_rotation_date);
    let on_demand = number(|r| r.on_demand_rotation_date);
    let token: Vec<Option<&str>> = keys.iter().map(|k| k.record.token.as_deref()).collect();
    tx.pg_execute(
        "INSERT INTO keys (key_id, description, key_spec, key_usage, origin, creation_date, key_state,
                           deletion_date, pending_window_days, rotation_period_days, next_rotation_date,
                           on_demand_rotation_date, token)
         SELECT * FROM unnest(?1::text[], ?2::text[], ?3::text[], ?4::text[], ?5::text[],
                              ?6::bigint[], ?7::text[], ?8::bigint[], ?9::bigint[], ?10::bigint[],
                              ?11::bigint[], ?12::bigint[], ?13::text[])",
        &[
            &ids, &description, &spec, &usage, &origin, &created, &state, &deletion, &window,
            &period, &next, &on_demand, &token,
        ],
    )?;
    let version: Vec<i64> = keys
        .iter()
        .map(|k| i64::from(k.record.versions[0].version))
        .collect();
    let version_created: Vec<i64> = keys.iter().map(|k| k.record.versions[0].created).collect();
    let rotation: Vec<Option<&str>> = keys
        .iter()
        .map(|k| k.record.versions[0].rotation_type.map(|t| t.as_str()))
        .collect();
    let wrapped: Vec<&[u8]> = keys.iter().map(|k| &k.wrapped[..]).collect();
    tx.pg_execute(
        "INSERT INTO key_versions (key_id, version, created, rotation_type, wrapped_material)
         SELECT * FROM unnest(?1::text[], ?2::bigint[], ?3::bigint[], ?4::text[], ?5::bytea[])",
        &[&ids, &version, &version_created, &rotation, &wrapped],
    )?;
    let mut tag_ids = Vec::new();
    let (mut tag_keys, mut tag_values) = (Vec::new(), Vec::new());
    for (key, id) in keys.iter().zip(&ids) {
        for (tag_key, tag_value) in &key.record.tags {
            tag_ids.push(id.as_str());
            tag_keys.push(tag_key.as_str());
            tag_values.push(tag_value.as_str());
        }
    }
    if !tag_ids.is_empty() {
        tx.pg_execute(
            "INSERT INTO tags (key_id, tag_key, tag_value)
             SELECT * FROM unnest(?1::text[], ?2::text[], ?3::text[])",
            &[&tag_ids, &tag_keys, &tag_values],
        )?;
    }
    let (policy_ids, policies): (Vec<&str>, Vec<&str>) = keys
        .iter()
        .zip(&ids)
        .filter_map(|(k, id)| k.policy.as_deref().map(|p| (id.as_str(), p)))
        .unzip();
    if !policy_ids.is_empty() {
        tx.pg_execute(
            "INSERT INTO key_policies (key_id, policy)
             SELECT * FROM unnest(?1::text[], ?2::text[])",
            &[&policy_ids, &policies],
        )?;
    }
    Ok(())
}

fn write_key(tx: &Db<'_>, key: &KeyRecord, replace_tags: bool) -> Result<()> {
    crate::audit::pending::note_key(key);
    let id = id_text(&key.id);
    pg::notify(tx, &id)?;
    tx.execute(
        "INSERT INTO keys (key_id, description, key_spec, key_usage, origin, creation_date, key_state,
                           deletion_date, pending_window_days, rotation_period_days, next_rotation_date,
                           on_demand_rotation_date, token)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT(key_id) DO UPDATE SET
            description = excluded.description, key_state = excluded.key_state,
            deletion_date = excluded.deletion_date, pending_window_days = excluded.pending_window_days,
            rotation_period_days = excluded.rotation_period_days,
            next_rotation_date = excluded.next_rotation_date,
            on_demand_rotation_date = excluded.on_demand_rotation_date, token = excluded.token",
        &vals![
            &id,
            &key.description,
            key.spec.as_str(),
            key.usage.as_str(),
            key.origin.as_str(),
            key.creation_date,
            key.state.as_str(),
            key.deletion_date,
            key.pending_window_days,
            key.rotation_period_days,
            key.next_rotation_date,
            key.on_demand_rotation_date,
            key.token.as_deref(),
        ],
    )?;
    if replace_tags {
        tx.execute("DELETE FROM tags WHERE key_id = ?1", &vals![&id])?;
    }
    for (tag_key, tag_value) in &key.tags {
        tx.execute(
            "INSERT INTO tags (key_id, tag_key, tag_value) VALUES (?1, ?2, ?3)",
            &vals![&id, tag_key, tag_value],
        )?;
    }
    Ok(())
}

/// Refuses a change made from a stale cached record: on PostgreSQL, where
/// another node may have committed a change this node has not yet heard
/// of, the key as committed must still be `base`, the record the change
/// was made from (read under the write lock, so nothing can change it
/// before this transaction commits). Nothing on SQLite (this process's
/// cache is the store's state).
pub(crate) fn check_base(tx: &Db<'_>, base: &KeyRecord) -> Result<()> {
    if !tx.is_postgres() {
        return Ok(());
    }
    match read_key(tx, &base.id)? {
        Some(current) if current == *base => Ok(()),
        _ => Err(Error::InvalidState(format!(
            "{} was changed by another node at the same time; retry",
            base.arn()
        ))),
    }
}

/// Inserts a new alias; `AlreadyExists` if the name is taken (also by a
/// node whose creation this node has not yet heard of).
pub(crate) fn insert_alias(tx: &Db<'_>, alias: &AliasRecord) -> Result<()> {
    pg::notify(tx, pg::ALIASES)?;
    let taken = tx
        .first(
            "SELECT alias_name FROM aliases WHERE alias_name = ?1",
            &vals![&alias.name],
            |_| Ok(()),
        )?
        .is_some();
    if taken {
        return Err(Error::AlreadyExists(format!(
            "alias {} already exists",
            crate::types::printable(&alias.name)
        )));
    }
    put_alias(tx, alias)
}

/// Inserts one version's wrapped material.
pub(crate) fn put_version(
    tx: &Db<'_>,
    id: &Uuid,
    info: &VersionInfo,
    wrapped: &[u8],
) -> Result<()> {
    tx.execute(
        "INSERT INTO key_versions (key_id, version, created, rotation_type, wrapped_material)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        &vals![
            &id_text(id),
            info.version,
            info.created,
            info.rotation_type.map(|t| t.as_str()),
            wrapped
        ],
    )?;
    Ok(())
}

/// Destroys a key: overwrites then deletes every version's material, deletes
/// the key, its aliases and tags, and records the id as destroyed.
pub(crate) fn destroy_key(tx: &Db<'_>, id: &Uuid, now: UnixSeconds) -> Result<()> {
    let id = id_text(id);
    let zero = if tx.is_postgres() {
        "UPDATE key_versions SET wrapped_material = decode(repeat('00', length(wrapped_material)), 'hex')
         WHERE key_id = ?1"
    } else {
        "UPDATE key_versions SET wrapped_material = zeroblob(length(wrapped_material)) WHERE key_id = ?1"
    };
    tx.execute(zero, &vals![&id])?;
    tx.execute("DELETE FROM key_versions WHERE key_id = ?1", &vals![&id])?;
    tx.execute("DELETE FROM aliases WHERE key_id = ?1", &vals![&id])?;
    tx.execute("DELETE FROM tags WHERE key_id = ?1", &vals![&id])?;
    tx.execute("DELETE FROM keys WHERE key_id = ?1", &vals![&id])?;
    pg::notify(tx, &id)?;
    pg::notify(tx, pg::ALIASES)?;
    tx.execute(
        "INSERT INTO destroyed_keys (key_id, destroyed_date) VALUES (?1, ?2)
         ON CONFLICT(key_id) DO UPDATE SET destroyed_date = excluded.destroyed_date",
        &vals![&id, now],
    )?;
    Ok(())
}

/// Inserts or replaces an alias.
pub(crate) fn put_alias(tx: &Db<'_>, alias: &AliasRecord) -> Result<()> {
    pg::notify(tx, pg::ALIASES)?;
    tx.execute(
        "INSERT INTO aliases (alias_name, key_id, creation_date, last_updated_date) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(alias_name) DO UPDATE SET key_id = excluded.key_id,
            last_updated_date = excluded.last_updated_date",
        &vals![&alias.name, &id_text(&alias.target), alias.creation_date, alias.last_updated_date],
    )?;
    Ok(())
}

/// Deletes an alias.
pub(crate) fn delete_alias(tx: &Db<'_>, name: &str) -> Result<()> {
    pg::notify(tx, pg::ALIASES)?;
    tx.execute("DELETE FROM aliases WHERE alias_name = ?1", &vals![name])?;
    Ok(())
}

#[cfg(test)]
mod matrix_tests;
#[cfg(any(test, feature = "test-cluster"))]
pub mod test_cluster;
