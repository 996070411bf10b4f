//! Helpers shared by hsm-core's acceptance tests (issue 3).
//!
//! Every test file includes this module with `mod common;`; not every file
//! uses every helper.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hsm_core::clock::DAY;
use hsm_core::{
    AliasEntry, CreateKeyRequest, EncryptionContext, Error, Hsm, HsmOptions, KdfParams,
    KeyListEntry, KeyMetadata, KeySpec, KeyState, KeyUsage, ManualClock, Page, Result,
    RotationEntry, RotationStatus, SecretString, Tag, TickReport,
};
use tempfile::TempDir;

/// Where every test clock starts.
pub const T0: i64 = 1_700_000_000;
/// The resource-name prefix of every key and alias.
pub const ARN_PREFIX: &str = "arn:aws:kms:us-east-1:111122223333:";

/// The passphrase every test store is sealed under.
pub const PASSPHRASE: &str = "correct horse battery staple";

pub fn passphrase() -> SecretString {
    SecretString::from(PASSPHRASE)
}

pub fn secret(text: &str) -> SecretString {
    SecretString::from(text)
}

/// Options with cheap Argon2 parameters and the given manual clock.
pub fn options(clock: &Arc<ManualClock>) -> HsmOptions {
    HsmOptions {
        kdf: KdfParams {
            memory_kib: 8192,
            iterations: 1,
            parallelism: 1,
        },
        clock: clock.clone(),
        ..Default::default()
    }
}

/// A store in a fresh temporary directory, with a clock tests can move.
pub struct TestHsm {
    pub hsm: Hsm,
    pub clock: Arc<ManualClock>,
    /// The data directory (inside `_tmp`; not created before `init`).
    pub dir: PathBuf,
    _tmp: TempDir,
}

impl TestHsm {
    /// Initialises a new store.
    pub fn new() -> TestHsm {
        TestHsm::with_options(|_| {})
    }

    /// Initialises a new store with adjusted options.
    pub fn with_options(adjust: impl FnOnce(&mut HsmOptions)) -> TestHsm {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("store");
        let clock = Arc::new(ManualClock::new(T0));
        let mut opts = options(&clock);
        adjust(&mut opts);
        let hsm = Hsm::init(&dir, &passphrase(), opts).expect("Hsm::init");
        TestHsm {
            hsm,
            clock,
            dir,
            _tmp: tmp,
        }
    }

    /// Closes the store and opens it again with the same passphrase and clock.
    pub fn reopen(self) -> TestHsm {
        self.reopen_with(&passphrase())
    }

    /// Closes the store and opens it again with `passphrase`.
    pub fn reopen_with(self, passphrase: &SecretString) -> TestHsm {
        self.close().open(passphrase)
    }

    /// Closes the store, keeping its directory and clock.
    pub fn close(self) -> ClosedStore {
        let TestHsm {
            hsm,
            clock,
            dir,
            _tmp,
        } = self;
        drop(hsm);
        ClosedStore { clock, dir, _tmp }
    }

    /// Tries to open a second instance of this store.
    pub fn open_again(&self, passphrase: &SecretString) -> Result<Hsm> {
        Hsm::open(&self.dir, passphrase, options(&self.clock))
    }

    pub fn now(&self) -> i64 {
        use hsm_core::Clock;
        self.clock.now()
    }

    pub fn advance_days(&self, days: i64) {
        self.clock.advance(days * DAY);
    }

    pub fn advance_seconds(&self, seconds: i64) {
        self.clock.advance(seconds);
    }

    /// Runs `tick` at the clock's current time.
    pub fn tick(&self) -> TickReport {
        self.hsm.tick(self.now()).expect("tick")
    }

    /// Creates a SYMMETRIC_DEFAULT key and returns its metadata.
    pub fn symmetric_key(&self, description: &str) -> KeyMetadata {
        self.hsm
            .create_key(CreateKeyRequest {
                description: description.to_string(),
                ..Default::default()
            })
            .expect("create_key SYMMETRIC_DEFAULT")
    }

    /// Creates a key of `spec` with `usage`.
    pub fn key_of(&self, spec: KeySpec, usage: KeyUsage) -> KeyMetadata {
        self.hsm
            .create_key(CreateKeyRequest {
                description: format!("{spec} {usage}"),
                key_spec: Some(spec),
                key_usage: Some(usage),
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("create_key {spec}/{usage}: {} {e}", e.kms_name()))
    }

    pub fn state(&self, key_id: &str) -> KeyState {
        self.hsm
            .describe_key(key_id)
            .expect("describe_key")
            .key_state
    }

    /// Every key id ListKeys returns, following markers.
    pub fn all_key_ids(&self) -> Vec<String> {
        collect_pages(|marker| self.hsm.list_keys(Some(2), marker))
            .into_iter()
            .map(|entry: KeyListEntry| entry.key_id)
            .collect()
    }

    /// Every alias ListAliases returns (optionally of one key), following markers.
    pub fn all_aliases(&self, key_id: Option<&str>) -> Vec<AliasEntry> {
        collect_pages(|marker| self.hsm.list_aliases(key_id, Some(3), marker))
    }

    /// Every tag of a key, following markers.
    pub fn all_tags(&self, key_id: &str) -> Vec<Tag> {
        collect_pages(|marker| self.hsm.list_resource_tags(key_id, Some(7), marker))
    }

    /// Every rotation of a key, following markers.
    pub fn all_rotations(&self, key_id: &str) -> Vec<RotationEntry> {
        collect_pages(|marker| self.hsm.list_key_rotations(key_id, Some(2), marker))
    }

    /// Everything observable about one key and the store's listings.
    pub fn snapshot(&self, key_id: &str) -> Snapshot {
        Snapshot {
            metadata: self.hsm.describe_key(key_id).map_err(|e| e.kms_name()),
            rotation_status: self
                .hsm
                .get_key_rotation_status(key_id)
                .map_err(|e| e.kms_name()),
            rotations: self
                .hsm
                .list_key_rotations(key_id, Some(1000), None)
                .map(|p| p.items)
                .map_err(|e| e.kms_name()),
            tags: self
                .hsm
                .list_resource_tags(key_id, Some(1000), None)
                .map(|p| p.items)
                .map_err(|e| e.kms_name()),
            aliases: self.all_aliases(None),
            keys: self.all_key_ids().into_iter().collect(),
        }
    }
}

/// A closed store: its directory and clock.
pub struct ClosedStore {
    pub clock: Arc<ManualClock>,
    pub dir: PathBuf,
    _tmp: TempDir,
}

impl ClosedStore {
    /// Tries to open the store with `passphrase`.
    pub fn try_open(&self, passphrase: &SecretString) -> Result<Hsm> {
        Hsm::open(&self.dir, passphrase, options(&self.clock))
    }

    /// Opens the store with `passphrase`, which must work.
    pub fn open(self, passphrase: &SecretString) -> TestHsm {
        let hsm = ok(self.try_open(passphrase), "Hsm::open");
        TestHsm {
            hsm,
            clock: self.clock,
            dir: self.dir,
            _tmp: self._tmp,
        }
    }
}

/// Follows `next_marker` until the last page; checks that pages are not empty
/// while truncated and that no item repeats the previous page's marker forever.
pub fn collect_pages<T, F>(mut fetch: F) -> Vec<T>
where
    F: FnMut(Option<&str>) -> Result<Page<T>>,
{
    let mut items = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..10_000 {
        let page = fetch(marker.as_deref()).expect("list call");
        let truncated = page.truncated();
        assert!(
            !(truncated && page.items.is_empty()),
            "a truncated page must not be empty"
        );
        items.extend(page.items);
        if !truncated {
            return items;
        }
        assert_ne!(
            marker, page.next_marker,
            "next_marker must move forward between pages"
        );
        marker = page.next_marker;
    }
    panic!("paging did not end");
}

/// Everything a failed operation must leave unchanged.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub metadata: std::result::Result<KeyMetadata, &'static str>,
    pub rotation_status: std::result::Result<RotationStatus, &'static str>,
    pub rotations: std::result::Result<Vec<RotationEntry>, &'static str>,
    pub tags: std::result::Result<Vec<Tag>, &'static str>,
    pub aliases: Vec<AliasEntry>,
    pub keys: BTreeSet<String>,
}

/// An encryption context from pairs.
pub fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The empty encryption context.
pub fn no_ctx() -> EncryptionContext {
    EncryptionContext::new()
}

pub fn tag(key: &str, value: &str) -> Tag {
    Tag {
        tag_key: key.to_string(),
        tag_value: value.to_string(),
    }
}

/// The key ARN of a key id.
pub fn key_arn(key_id: &str) -> String {
    format!("{ARN_PREFIX}key/{key_id}")
}

/// The alias ARN of `alias/name`.
pub fn alias_arn(alias_name: &str) -> String {
    format!("{ARN_PREFIX}{alias_name}")
}

/// Asserts that `result` failed with the KMS exception `expected`
/// (e.g. "DisabledException") and returns the error.
#[track_caller]
pub fn expect_err<T>(result: Result<T>, expected: &str) -> Error {
    match result {
        Ok(_) => panic!("expected {expected}, got Ok"),
        Err(e) => {
            assert_eq!(
                e.kms_name(),
                expected,
                "expected {expected}, got {}: {e}",
                e.kms_name()
            );
            e
        }
    }
}

/// Asserts that `result` failed with one of the KMS exceptions `allowed`.
#[track_caller]
pub fn expect_err_in<T>(result: Result<T>, allowed: &[&str]) -> Error {
    match result {
        Ok(_) => panic!("expected one of {allowed:?}, got Ok"),
        Err(e) => {
            assert!(
                allowed.contains(&e.kms_name()),
                "expected one of {allowed:?}, got {}: {e}",
                e.kms_name()
            );
            e
        }
    }
}

/// Unwraps `result`, naming the KMS exception on failure.
#[track_caller]
pub fn ok<T>(result: Result<T>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{what}: unexpected {}: {e}", e.kms_name()),
    }
}

/// Decrypts and returns the plaintext, panicking with the KMS name on error.
#[track_caller]
pub fn decrypt_ok(hsm: &Hsm, blob: &[u8], context: &EncryptionContext) -> Vec<u8> {
    ok(hsm.decrypt(blob, context, None, None), "decrypt")
        .plaintext
        .to_vec()
}

/// Every regular file in `dir` (the store: database, -wal, -shm, lock files).
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Whether `needle` occurs in the bytes of any file in `dir`.
pub fn bytes_occur_in_dir(dir: &Path, needle: &[u8]) -> bool {
    files_in(dir).iter().any(|path| {
        let haystack = std::fs::read(path).unwrap_or_default();
        !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
    })
}

/// Every BLOB value of at least `min_len` bytes in every table of every
/// SQLite database file in `dir`, read without knowing the schema.
/// Call only while no `Hsm` holds the store.
pub fn sqlite_blobs(dir: &Path, min_len: usize) -> BTreeSet<Vec<u8>> {
    use rusqlite::types::ValueRef;
    let mut blobs = BTreeSet::new();
    for path in files_in(dir) {
        let header = std::fs::read(&path).unwrap_or_default();
        if !header.starts_with(b"SQLite format 3\0") {
            continue;
        }
        let conn = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open sqlite read-only");
        let tables: Vec<String> = {
            let mut stmt = conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
                .expect("list tables");
            let rows = stmt
                .query_map([], |row| row.get::<_, String>(0))
                .expect("query tables");
            rows.map(|r| r.expect("table name")).collect()
        };
        for table in tables {
            let sql = format!("SELECT * FROM \"{}\"", table.replace('"', "\"\""));
            let mut stmt = conn.prepare(&sql).expect("select *");
            let columns = stmt.column_count();
            let mut rows = stmt.query([]).expect("query");
            while let Some(row) = rows.next().expect("row") {
                for i in 0..columns {
                    if let ValueRef::Blob(b) = row.get_ref(i).expect("value") {
                        if b.len() >= min_len {
                            blobs.insert(b.to_vec());
                        }
                    }
                }
            }
        }
    }
    blobs
}

/// The key version a ciphertext blob names, read per the documented blob
/// format version 1 (hsm-core/src/envelope.rs: version byte `0x01`, algorithm
/// byte, 16-byte key id, then the key version as a big-endian u32).
#[track_caller]
pub fn blob_key_version(blob: &[u8]) -> u32 {
    assert!(blob.len() > 22, "blob too short for the v1 header");
    assert_eq!(blob[0], 1, "blob format version");
    u32::from_be_bytes(blob[18..22].try_into().expect("4 bytes"))
}

/// The key id a ciphertext blob names (format version 1).
#[track_caller]
pub fn blob_key_id(blob: &[u8]) -> String {
    assert!(blob.len() > 22, "blob too short for the v1 header");
    uuid::Uuid::from_slice(&blob[2..18])
        .expect("16-byte key id")
        .to_string()
}

/// Replaces every BLOB cell equal to `from` with `to`, in every table of
/// every SQLite database in `dir`, without knowing the schema. Returns how
/// many cells changed. Call only while no `Hsm` holds the store.
pub fn replace_blob(dir: &Path, from: &[u8], to: &[u8]) -> usize {
    let mut changed = 0;
    for path in files_in(dir) {
        let header = std::fs::read(&path).unwrap_or_default();
        if !header.starts_with(b"SQLite format 3\0") {
            continue;
        }
        let conn = rusqlite::Connection::open(&path).expect("open sqlite");
        let tables: Vec<String> = {
            let mut stmt = conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
                .expect("list tables");
            let rows = stmt
                .query_map([], |row| row.get::<_, String>(0))
                .expect("query tables");
            rows.map(|r| r.expect("table name")).collect()
        };
        for table in tables {
            let quoted = table.replace('"', "\"\"");
            let columns: Vec<String> = {
                let mut stmt = conn
                    .prepare(&format!("PRAGMA table_info(\"{quoted}\")"))
                    .expect("table_info");
                let rows = stmt
                    .query_map([], |row| row.get::<_, String>(1))
                    .expect("columns");
                rows.map(|r| r.expect("column name")).collect()
            };
            for column in columns {
                let column = column.replace('"', "\"\"");
                let sql =
                    format!("UPDATE \"{quoted}\" SET \"{column}\" = ?1 WHERE \"{column}\" = ?2");
                changed += conn.execute(&sql, (to, from)).expect("update");
            }
        }
    }
    changed
}
