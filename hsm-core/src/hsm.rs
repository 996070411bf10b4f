//! The `Hsm` façade: opening and unsealing a store, and the machinery every
//! operation shares (key resolution, state checks, material access, writes).
//! The operations themselves live in `ops_*.rs`.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::cache::{Lru, Material, MaterialCache, VersionMaterial};
use crate::changes::{Change, Changes};
use crate::clock::{Clock, SystemClock, DAY};
use crate::error::{Error, Result};
use crate::identity::Account;
use crate::ids::{parse_key_ref, KeyRef};
use crate::model::{key_arn, KeyRecord, VersionInfo};
use crate::outputs::TickReport;
use crate::sealing::{self, KdfParams, SecretKey, KEY_LEN};
use crate::store::{self, LockMode, Store};
use crate::types::{KeySpec, KeyState, RotationType, UnixSeconds};
use crate::users::{self, Identities};

/// How to open or initialise a store.
#[derive(Debug, Clone)]
pub struct HsmOptions {
    /// Argon2id parameters used by `init` and `change_passphrase`.
    pub kdf: KdfParams,
    /// Where time comes from.
    pub clock: Arc<dyn Clock>,
    /// How many entries each in-memory cache holds (least recently used
    /// evicted first): key records, aliases, key policies, unwrapped key
    /// versions. Keys are read from the store when used.
    pub cache_capacity: usize,
    /// The account and region every ARN names (one per process).
    pub account: Account,
}

impl Default for HsmOptions {
    fn default() -> Self {
        HsmOptions {
            kdf: KdfParams::default(),
            clock: Arc::new(SystemClock),
            cache_capacity: 1024,
            account: Account::default(),
        }
    }
}

/// Keys and aliases as committed to the store, read from it when used and
/// kept in bounded least-recently-used caches (the setting
/// `cache_capacity`); nothing is loaded at open.
///
/// Consistency: every change to a key or alias is made under the state's
/// write lock (its commit first, then the caches), and every read under
/// the read lock, so a reader never caches a record older than the store's.
/// The one exception, CreateKey, commits a new key without the lock: its
/// id is unknown to anyone until then.
pub(crate) struct State {
    reader: Arc<store::Reader>,
    keys: Mutex<Lru<Uuid, Arc<KeyRecord>>>,
    /// Alias name -> its target, or `None` when known not to exist.
    aliases: Mutex<Lru<String, Option<Uuid>>>,
    /// Set while a PostgreSQL store's change feed is down: key records and
    /// aliases are then read from the store on every use, never cached.
    feed_down: Arc<std::sync::atomic::AtomicBool>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The caches stay consistent even if a holder panicked.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    fn new(reader: Arc<store::Reader>, capacity: usize) -> State {
        State {
            reader,
            keys: Mutex::new(Lru::new(capacity)),
            aliases: Mutex::new(Lru::new(capacity)),
            feed_down: Arc::default(),
        }
    }

    /// Whether cached key records and aliases may be served (not while a
    /// PostgreSQL store's change feed is down).
    #[inline]
    fn cache_usable(&self) -> bool {
        !self.feed_down.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The store's reads (lists, due keys).
    pub fn reader(&self) -> &store::Reader {
        &self.reader
    }

    /// A key by id, if it exists.
    pub fn get(&self, id: &Uuid) -> Result<Option<Arc<KeyRecord>>> {
        let usable = self.cache_usable();
        if usable {
            if let Some(key) = locked(&self.keys).get(id) {
                return Ok(Some(key.clone()));
            }
        }
        let Some(key) = self.reader.key(id)? else {
            return Ok(None);
        };
        let key = Arc::new(key);
        if usable {
            locked(&self.keys).insert(*id, key.clone());
        }
        Ok(Some(key))
    }

    /// How many key records are cached.
    #[cfg(test)]
    pub fn cached_keys(&self) -> usize {
        locked(&self.keys).len()
    }

    /// Whether a key id names a destroyed key.
    pub fn is_destroyed(&self, id: &Uuid) -> Result<bool> {
        self.reader.is_destroyed(id)
    }

    /// The target of an alias, if it exists.
    pub fn alias_target(&self, name: &str) -> Result<Option<Uuid>> {
        let usable = self.cache_usable();
        if usable {
            if let Some(target) = locked(&self.aliases).get(&name.to_string()) {
                return Ok(*target);
            }
        }
        let target = self.reader.alias(name)?.map(|a| a.target);
        if usable {
            locked(&self.aliases).insert(name.to_string(), target);
        }
        Ok(target)
    }

    /// Resolves a key reference to a key that exists.
    pub fn resolve(&self, key_ref: &str) -> Result<Uuid> {
        match parse_key_ref(key_ref)? {
            KeyRef::Id(id) if self.get(&id)?.is_some() => Ok(id),
            KeyRef::Id(id) => Err(Error::NotFound(format!(
                "key {} does not exist",
                crate::model::key_arn(&id)
            ))),
            KeyRef::Alias(name) => match self.alias_target(&name)? {
                Some(target) if self.get(&target)?.is_some() => Ok(target),
                _ => Err(Error::NotFound(format!(
                    "alias {} does not exist",
                    crate::types::printable(&name)
                ))),
            },
        }
    }

    /// The record of a key reference.
    pub fn key(&self, key_ref: &str) -> Result<Arc<KeyRecord>> {
        let id = self.resolve(key_ref)?;
        self.get(&id)?
            .ok_or_else(|| Error::NotFound(format!("key {} does not exist", key_arn(&id))))
    }
}

/// An unsealed key store. `Send + Sync`; share it behind an `Arc`.
///
/// Keys are read from the store when used and cached (bounded); every
/// change is committed to SQLite in one transaction before the cache is
/// updated, so a failure changes nothing.
pub struct Hsm {
    state: Arc<RwLock<State>>,
    /// The store's reads, on their own connection (also the state's).
    reader: Arc<store::Reader>,
    root_key: SecretKey,
    cache: Arc<MaterialCache>,
    options: HsmOptions,
    changes: Arc<Changes>,
    identities: Arc<RwLock<Identities>>,
    audit: Arc<crate::audit::log::AuditLog>,
    /// Key policies, grants and the account-level rule (policy/authz.rs).
    pub(crate) authz: Arc<RwLock<crate::policy::authz::Authz>>,
    /// Whether other processes may change the store (see [`Hsm::sync`]).
    shared: bool,
    /// SQLite's `data_version` when memory was last brought up to date.
    seen_version: std::sync::atomic::AtomicU64,
    /// Follows other nodes' changes (PostgreSQL; `None` on SQLite).
    _feed: Option<FeedHandle>,
    /// Declared last, so dropped after everything holding the reader: its
    /// connection is the store's last to close, which checkpoints the WAL
    /// into the database (a read-only connection closing last cannot).
    store: Mutex<Store>,
}

/// The state's write lock. Dropping it after a change bumps the store's
/// generation while the lock is still held, so a reader that sees the new
/// generation also sees the change.
pub(crate) struct StateWrite<'a> {
    guard: RwLockWriteGuard<'a, State>,
    changes: &'a Changes,
    changed: bool,
    touched: Vec<Change>,
}

impl StateWrite<'_> {
    /// Notes a change another node made that names no cached record
    /// here (a PKCS#11 object row, a token), for the change journal.
    pub(crate) fn touch(&mut self, change: Change) {
        self.changed = true;
        self.touched.push(change);
    }

    /// Puts a key's (committed) record in the cache and notes the key as
    /// changed (the journal then names it).
    pub(crate) fn put_key(&mut self, record: KeyRecord) {
        self.changed = true;
        self.touched.push(Change::Key(record.id.to_string()));
        locked(&self.guard.keys).insert(record.id, Arc::new(record));
    }

    /// Forgets a destroyed key and every alias that named it.
    pub(crate) fn remove_key(&mut self, id: &Uuid) {
        self.changed = true;
        self.touched.push(Change::Key(id.to_string()));
        locked(&self.guard.keys).remove(id);
        locked(&self.guard.aliases).remove_where(|_, target| *target == Some(*id));
    }

    /// Forgets every cached key and alias (another process changed the
    /// store); the journal then says to reload everything.
    pub(crate) fn forget_all(&mut self) {
        self.changed = true;
        self.touched.push(Change::All);
        locked(&self.guard.keys).remove_where(|_, _| true);
        locked(&self.guard.aliases).remove_where(|_, _| true);
    }

    /// Forgets a key's cached record (another node changed it); the
    /// journal names it.
    pub(crate) fn forget_key(&mut self, id: &Uuid) {
        self.changed = true;
        self.touched.push(Change::Key(id.to_string()));
        locked(&self.guard.keys).remove(id);
    }

    /// Forgets every cached alias (another node changed one).
    pub(crate) fn forget_aliases(&mut self) {
        self.changed = true;
        self.touched.push(Change::All);
        locked(&self.guard.aliases).remove_where(|_, _| true);
    }

    /// Notes an alias's (committed) target, `None` once deleted. Aliases
    /// name no key in the journal: readers reload everything.
    pub(crate) fn put_alias(&mut self, name: &str, target: Option<Uuid>) {
        self.changed = true;
        self.touched.push(Change::All);
        locked(&self.guard.aliases).insert(name.to_string(), target);
    }
}

impl std::ops::Deref for StateWrite<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.guard
    }
}

impl Drop for StateWrite<'_> {
    fn drop(&mut self) {
        if self.changed {
            self.changes.record(&self.touched);
        }
    }
}

/// The change feed of a PostgreSQL store; stops its listener when the
/// `Hsm` is dropped.
struct FeedHandle {
    feed: Arc<store::pg::Feed>,
    /// The node's down flag (`State::feed_down`), for tests to read
    /// without the state's lock.
    #[cfg_attr(not(test), allow(dead_code))]
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for FeedHandle {
    fn drop(&mut self) {
        self.feed.stop();
    }
}

/// Where a PostgreSQL store's change feed forgets what other nodes
/// changed: on the feed's own thread, under the state's write lock (then
/// the policies'), the order every writer takes. A call that read a record
/// before the change committed held the state's read lock until it cached
/// it, so the write lock waits for it and the record is forgotten too.
struct FeedSink {
    state: std::sync::Weak<RwLock<State>>,
    authz: std::sync::Weak<RwLock<crate::policy::authz::Authz>>,
    cache: std::sync::Weak<MaterialCache>,
    changes: std::sync::Weak<Changes>,
    identities: std::sync::Weak<RwLock<Identities>>,
    reader: std::sync::Weak<store::Reader>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl FeedSink {
    /// Reads users and access keys again (another node changed them, or
    /// the feed was down). Read without the lock, then put in place
    /// unless this node changed them meanwhile (then read again), so a
    /// slow database never holds up callers' identity lookups. If the
    /// database cannot be read, memory is kept until the next try (the
    /// next notification, or the feed's next heartbeat while it is down).
    fn reload_users(&self) {
        let (Some(identities), Some(reader)) = (self.identities.upgrade(), self.reader.upgrade())
        else {
            return;
        };
        for _ in 0..3 {
            let seen = identities.read().unwrap_or_else(|e| e.into_inner()).version;
            let Ok(mut loaded) = reader.identities(std::time::Duration::from_millis(250)) else {
                return;
            };
            let mut current = identities.write().unwrap_or_else(|e| e.into_inner());
            if current.version == seen {
                loaded.version = seen + 1;
                *current = loaded;
                return;
            }
        }
    }
}

impl store::pg::Sink for FeedSink {
    fn forget(&self, forget: &store::pg::Forget) -> bool {
        let (Some(state), Some(authz), Some(cache), Some(changes)) = (
            self.state.upgrade(),
            self.authz.upgrade(),
            self.cache.upgrade(),
            self.changes.upgrade(),
        ) else {
            return false;
        };
        let mut state = StateWrite {
            guard: state.write().unwrap_or_else(|e| e.into_inner()),
            changes: &changes,
            changed: false,
            touched: Vec::new(),
        };
        let mut authz = authz.write().unwrap_or_else(|e| e.into_inner());
        if forget.all {
            state.forget_all();
            cache.clear();
            authz.forget_all();
            drop((state, authz));
            self.reload_users();
            return true;
        }
        if forget.aliases {
            state.forget_aliases();
        }
        if forget.tokens {
            state.touch(Change::All);
        }
        if let Some(object) = &forget.object {
            state.touch(Change::Object(object.clone()));
        }
        if let Some(id) = forget.key.as_deref().and_then(|k| Uuid::parse_str(k).ok()) {
            state.forget_key(&id);
            cache.remove_key(&id);
            authz.forget_key(&id);
        }
        if forget.users {
            // After the state's and policies' locks (code holding the
            // identities' lock may take them).
            drop((state, authz));
            self.reload_users();
        }
        true
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::Release);
    }
}

impl std::fmt::Debug for Hsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hsm")
            .field("root_key", &"<sealed>")
            .finish_non_exhaustive()
    }
}

const META_SALT: &str = "kdf_salt";
const META_PARAMS: &str = "kdf_params";
const META_ROOT: &str = "wrapped_root_key";

fn encode_params(params: &KdfParams) -> Vec<u8> {
    [params.memory_kib, params.iterations, params.parallelism]
        .iter()
        .flat_map(|n| n.to_be_bytes())
        .collect()
}

pub(crate) fn decode_params(bytes: &[u8]) -> Result<KdfParams> {
    let field = |i: usize| -> Result<u32> {
        bytes
            .get(i * 4..i * 4 + 4)
            .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
            .ok_or_else(|| Error::Internal("the store's KDF parameters are corrupt".into()))
    };
    Ok(KdfParams {
        memory_kib: field(0)?,
        iterations: field(1)?,
        parallelism: field(2)?,
    })
}

fn check_passphrase(passphrase: &SecretString) -> Result<()> {
    if passphrase.expose_secret().is_empty() {
        return Err(Error::validation("the passphrase must not be empty"));
    }
    Ok(())
}

/// Writes the sealing of `root_key` under `passphrase` into the store.
fn seal_root_key(
    store: &mut Store,
    root_key: &[u8; KEY_LEN],
    passphrase: &SecretString,
    params: &KdfParams,
    rewrap: bool,
) -> Result<()> {
    let mut salt = [0u8; sealing::SALT_LEN];
    sealing::random_fill(&mut salt)?;
    let kek = sealing::derive_kek(passphrase, &salt, params)?;
    let wrapped = sealing::wrap(&kek, &sealing::root_key_aad(params, &salt), root_key)?;
    store.write(|tx| {
        // An init of a shared database (PostgreSQL) racing another one:
        // the store's write lock makes this check and the writes atomic.
        if !rewrap
            && tx
                .first(
                    "SELECT name FROM meta WHERE name = ?1",
                    &store::engine::vals![META_ROOT],
                    |_| Ok(()),
                )?
                .is_some()
        {
            return Err(Error::AlreadyExists(
                "the store is already initialised".into(),
            ));
        }
        store::put_meta(tx, META_SALT, &salt)?;
        store::put_meta(tx, META_PARAMS, &encode_params(params))?;
        store::put_meta(tx, META_ROOT, &wrapped)
    })
}

impl Hsm {
    /// Whether `data_dir` holds a store. An incomplete one (left by an
    /// interrupted init of an older version) is not a store: `init`
    /// replaces it.
    pub fn is_initialized(data_dir: &Path) -> bool {
        store::exists(data_dir) && !store::incomplete(data_dir)
    }

    /// Whether `data_dir` holds an incomplete store (see
    /// [`Hsm::is_initialized`]) that `init` will remove.
    pub fn is_incomplete(data_dir: &Path) -> bool {
        store::incomplete(data_dir)
    }

    /// Creates a new store in `data_dir` (created with mode 0700), sealed
    /// under `passphrase`. Fails with AlreadyExists if one is there.
    pub fn init(data_dir: &Path, passphrase: &SecretString, options: HsmOptions) -> Result<Hsm> {
        Self::init_locked(data_dir, passphrase, options, LockMode::Exclusive)
    }

    /// [`Hsm::init`], then held like [`Hsm::open_shared`]: other
    /// processes may open the new store as soon as it is complete.
    pub fn init_shared(
        data_dir: &Path,
        passphrase: &SecretString,
        options: HsmOptions,
    ) -> Result<Hsm> {
        Self::init_locked(data_dir, passphrase, options, LockMode::Shared)
    }

    fn init_locked(
        data_dir: &Path,
        passphrase: &SecretString,
        options: HsmOptions,
        mode: LockMode,
    ) -> Result<Hsm> {
        check_passphrase(passphrase)?;
        crate::identity::install(&options.account)?;
        options.kdf.validate()?;
        // Derive once before touching the disk: bad parameters change nothing.
        sealing::derive_kek(passphrase, &[0u8; sealing::SALT_LEN], &options.kdf)?;
        store::prepare_dir(data_dir)?;
        let root_key = sealing::random_key()?;
        let store = Store::create(data_dir, mode, |store| {
            seal_root_key(store, &root_key, passphrase, &options.kdf, false)
        })?;
        Self::assemble(store, root_key, options)
    }

    /// Creates a new store in the PostgreSQL database `url` names
    /// (`postgres://USER@HOST:PORT/DB`; the schema is made there), sealed
    /// under `passphrase`. The database password is `password` or
    /// `PGPASSWORD`, never part of `url`. Fails with AlreadyExists if the
    /// database holds a store. Several nodes then [`Hsm::open_postgres`]
    /// the same database with the same passphrase.
    pub fn init_postgres(
        url: &str,
        password: Option<&SecretString>,
        passphrase: &SecretString,
        options: HsmOptions,
    ) -> Result<Hsm> {
        check_passphrase(passphrase)?;
        crate::identity::install(&options.account)?;
        options.kdf.validate()?;
        sealing::derive_kek(passphrase, &[0u8; sealing::SALT_LEN], &options.kdf)?;
        let mut store = Store::from_pg(store::pg::PgStore::connect(url, password)?)?;
        let root_key = sealing::random_key()?;
        seal_root_key(&mut store, &root_key, passphrase, &options.kdf, false)?;
        Self::assemble(store, root_key, options)
    }

    /// Opens and unseals a store in a PostgreSQL database (see
    /// [`Hsm::init_postgres`]). A wrong passphrase is
    /// `Error::IncorrectPassphrase` and changes nothing.
    pub fn open_postgres(
        url: &str,
        password: Option<&SecretString>,
        passphrase: &SecretString,
        options: HsmOptions,
    ) -> Result<Hsm> {
        check_passphrase(passphrase)?;
        crate::identity::install(&options.account)?;
        let store = Store::from_pg(store::pg::PgStore::connect(url, password)?)?;
        let missing = || {
            Error::StoreUnavailable(
                "the PostgreSQL database holds no Tinfoil store; run init first".into(),
            )
        };
        Self::unseal(store, passphrase, options, missing)
    }

    /// Opens and unseals an existing store. A wrong passphrase is
    /// `Error::IncorrectPassphrase` and changes nothing.
    pub fn open(data_dir: &Path, passphrase: &SecretString, options: HsmOptions) -> Result<Hsm> {
        Self::open_locked(data_dir, passphrase, options, LockMode::Exclusive)
    }

    /// Opens and unseals an existing store that other processes may hold
    /// open too (the PKCS#11 module's embedded backend; never together
    /// with tinfoild or the CLI, which hold it exclusively). Each process
    /// follows the others' changes when it calls [`Hsm::sync`]; every write
    /// is one SQLite transaction holding the write lock, and the audit
    /// chain's next sequence number is read inside it, so processes
    /// appending at once extend one chain.
    pub fn open_shared(
        data_dir: &Path,
        passphrase: &SecretString,
        options: HsmOptions,
    ) -> Result<Hsm> {
        Self::open_locked(data_dir, passphrase, options, LockMode::Shared)
    }

    fn open_locked(
        data_dir: &Path,
        passphrase: &SecretString,
        options: HsmOptions,
        mode: LockMode,
    ) -> Result<Hsm> {
        check_passphrase(passphrase)?;
        crate::identity::install(&options.account)?;
        if !store::exists(data_dir) {
            return Err(Error::StoreUnavailable(format!(
                "no Tinfoil store in {}; run init first",
                data_dir.display()
            )));
        }
        store::prepare_dir(data_dir)?;
        let store = Store::open(data_dir, mode)?;
        let missing = || {
            Error::StoreUnavailable(format!(
                "the store in {} was never fully initialised (an init was interrupted); \
                 run init again: it replaces an incomplete store",
                data_dir.display()
            ))
        };
        Self::unseal(store, passphrase, options, missing)
    }

    /// Unseals the root key of an opened store and assembles the `Hsm`.
    fn unseal(
        store: Store,
        passphrase: &SecretString,
        options: HsmOptions,
        missing: impl Fn() -> Error,
    ) -> Result<Hsm> {
        let salt = store.meta(META_SALT)?.ok_or_else(&missing)?;
        let params = decode_params(&store.meta(META_PARAMS)?.ok_or_else(&missing)?)?;
        let wrapped = store.meta(META_ROOT)?.ok_or_else(&missing)?;
        let kek = sealing::derive_kek(passphrase, &salt, &params)?;
        let root_key = sealing::unwrap_key(&kek, &sealing::root_key_aad(&params, &salt), &wrapped)
            .ok_or(Error::IncorrectPassphrase)?;
        Self::assemble(store, root_key, options)
    }

    fn assemble(mut store: Store, root_key: SecretKey, options: HsmOptions) -> Result<Hsm> {
        crate::token::search::backfill(&mut store)?;
        let audit = crate::audit::open_log(&mut store, &root_key, &options.account)?;
        let shared = store.lock_mode() == LockMode::Shared;
        // Read before loading: a change by another process meanwhile shows
        // at the first sync.
        let seen_version = store.data_version()?;
        let reader = Arc::new(store.reader()?);
        let identities = store.read(users::load)?;
        let authz = crate::policy::authz::Authz::load(
            reader.clone(),
            options.cache_capacity,
            &root_key[..],
            &options.account,
        )?;
        let state = State::new(reader.clone(), options.cache_capacity);
        let state_down = state.feed_down.clone();
        let state_down_flag = state_down.clone();
        let state = Arc::new(RwLock::new(state));
        let authz = Arc::new(RwLock::new(authz));
        let identities = Arc::new(RwLock::new(identities));
        let cache = Arc::new(MaterialCache::new(options.cache_capacity));
        // Not 0: a restarted daemon must not repeat a generation a client
        // saw before the restart.
        let changes = Arc::new(Changes::new(generation_origin()));
        let feed = store
            .follow(|| {
                Box::new(FeedSink {
                    state: Arc::downgrade(&state),
                    authz: Arc::downgrade(&authz),
                    cache: Arc::downgrade(&cache),
                    changes: Arc::downgrade(&changes),
                    identities: Arc::downgrade(&identities),
                    reader: Arc::downgrade(&reader),
                    down: state_down,
                })
            })?
            .map(|feed| FeedHandle {
                feed,
                down: state_down_flag,
            });
        Ok(Hsm {
            state,
            reader,
            store: Mutex::new(store),
            root_key,
            cache,
            options,
            changes,
            identities,
            audit,
            authz,
            shared,
            seen_version: std::sync::atomic::AtomicU64::new(seen_version),
            _feed: feed,
        })
    }

    /// Whether other processes may change this store (opened with
    /// [`Hsm::open_shared`] or [`Hsm::init_shared`]).
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Brings memory up to date with what other processes committed: when
    /// SQLite's `data_version` moved, forgets every cached key, alias and
    /// unwrapped version (they are read again from the store when next
    /// used), reloads users and policies in one read transaction, and moves
    /// the change counter (as an unattributed change: readers reload
    /// everything). One pragma read when nothing moved; nothing at all for
    /// a store held exclusively.
    pub fn sync(&self) -> Result<()> {
        use std::sync::atomic::Ordering;
        if !self.shared {
            return Ok(());
        }
        // The state's write lock first (the order every writer takes):
        // a write of this process commits and updates memory under it, so
        // none can fall between this load and its use.
        let mut state = self.write_state();
        let (version, identities, authz) = {
            let store = self.lock_store();
            let version = store.data_version()?;
            if version == self.seen_version.load(Ordering::Acquire) {
                return Ok(());
            }
            let identities = store.read_snapshot(users::load)?;
            let authz = crate::policy::authz::Authz::load(
                self.reader.clone(),
                self.options.cache_capacity,
                &self.root_key[..],
                &self.options.account,
            )?;
            (version, identities, authz)
        };
        state.forget_all();
        self.cache.clear();
        self.seen_version.store(version, Ordering::Release);
        // Dropping `state` records an unattributed change. Users and
        // policies are replaced after it (code holding their locks may take
        // the state's); the PKCS#11 module, the one shared user, changes
        // neither.
        drop(state);
        {
            let mut current = self.write_identities();
            let version = current.version + 1;
            *current = identities;
            current.version = version;
        }
        *self.write_authz() = authz;
        Ok(())
    }

    /// Rewraps the root key under a new passphrase (with this handle's KDF
    /// parameters). Key versions are untouched.
    pub fn change_passphrase(&self, new_passphrase: &SecretString) -> Result<()> {
        check_passphrase(new_passphrase)?;
        self.options.kdf.validate()?;
        let mut store = self.lock_store();
        seal_root_key(
            &mut store,
            &self.root_key,
            new_passphrase,
            &self.options.kdf,
            true,
        )
    }

    /// The current time on this store's clock.
    pub fn now(&self) -> UnixSeconds {
        self.options.clock.now()
    }

    /// Applies due work as of `now`: destroys keys whose deletion date has
    /// passed (crypto-shredding) and rotates enabled keys whose rotation is due.
    pub fn tick(&self, now: UnixSeconds) -> Result<TickReport> {
        let mut report = TickReport::default();
        let mut state = self.write_state();
        // Indexed on the due dates: the cost follows the due keys, not
        // the number of keys.
        // Due keys are read from the store, not the cache: on a shared
        // (PostgreSQL) store another node may have just changed them.
        for id in state.reader().due_deletions(now)? {
            let Some(key) = state.reader().key(&id)? else {
                continue;
            };
            if key.state != KeyState::PendingDeletion || key.deletion_date.is_none_or(|d| d > now) {
                continue;
            }
            let _record = crate::audit::service_event(self, "DeleteKey", &id);
            let destroyed = self.lock_store().write(|tx| {
                store::check_base(tx, &key)?;
                store::destroy_key(tx, &id, now)
            });
            match destroyed {
                Ok(()) => {}
                // Another node purged (or changed) it first: nothing
                // committed, no record; exactly one node purges a key.
                Err(Error::InvalidState(_)) => {
                    state.forget_key(&id);
                    continue;
                }
                Err(e) => return Err(e),
            }
            state.remove_key(&id);
            self.cache.remove_key(&id);
            self.write_authz().forget_key(&id);
            report.destroyed.push(crate::model::key_arn(&id));
        }
        if !report.destroyed.is_empty() {
            self.lock_store().checkpoint()?;
        }
        for id in state.reader().due_rotations(now)? {
            let Some(key) = state.reader().key(&id)? else {
                continue;
            };
            if key.state != KeyState::Enabled || !rotation_due(&key, now) {
                continue;
            }
            let mut record = key.clone();
            let _event = crate::audit::service_event(self, "RotateKey", &id);
            match self.add_version(&key, &mut record, RotationType::Automatic, now) {
                Ok(()) => {}
                // Another node rotated (or changed) it first.
                Err(Error::InvalidState(_)) => {
                    state.forget_key(&id);
                    continue;
                }
                Err(e) => return Err(e),
            }
            report.rotated.push(record.arn());
            state.put_key(record);
        }
        self.audit_checkpoint_if_due()?;
        Ok(report)
    }

    // ----- shared machinery for the operations -----

    pub(crate) fn read_state(&self) -> RwLockReadGuard<'_, State> {
        // Memory is only changed after a commit, so a poisoned lock still
        // guards consistent data.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write_state(&self) -> StateWrite<'_> {
        StateWrite {
            guard: self.state.write().unwrap_or_else(|e| e.into_inner()),
            changes: &self.changes,
            changed: false,
            touched: Vec::new(),
        }
    }

    /// The store's change counter: it moves after every change to a key
    /// (creation, state, description, tags, aliases, versions, deletion)
    /// and to a PKCS#11 token or object row. Readers that cached a view
    /// (the PKCS#11 module's object table) reload when it moved. Only
    /// equality with an earlier reading means anything.
    pub fn generation(&self) -> u64 {
        self.changes.current()
    }

    /// What changed after generation `since`: the current generation and
    /// the keys and PKCS#11 object rows touched (none when nothing moved),
    /// or `None` when that is not known (too far back, or a change such as
    /// an alias or a token's re-initialisation that names no key): then
    /// reload everything.
    pub fn changes_since(&self, since: u64) -> Option<(u64, Vec<Change>)> {
        self.changes.since(since)
    }

    /// Moves the change counter after a committed change outside `State`.
    pub(crate) fn bump_generation(&self, what: Change) {
        self.changes.record(&[what]);
    }

    pub(crate) fn audit_log(&self) -> &Arc<crate::audit::log::AuditLog> {
        &self.audit
    }

    pub(crate) fn lock_store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a PostgreSQL store's change feed is down (the node then
    /// serves no cached key record or alias). Read without the state's
    /// lock (calls may be waiting for it).
    #[cfg(test)]
    pub(crate) fn feed_down(&self) -> bool {
        self._feed
            .as_ref()
            .is_some_and(|f| f.down.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Runs reads on the store's reading connection (SQLite) or pool
    /// (PostgreSQL), without the store's lock; `snapshot`: in one read
    /// transaction (statements that must agree).
    pub(crate) fn read_store<T>(
        &self,
        snapshot: bool,
        f: impl FnOnce(&store::engine::Db<'_>) -> Result<T>,
    ) -> Result<T> {
        self.reader.with(snapshot, f)
    }

    /// Whether the store is a PostgreSQL database.
    pub(crate) fn is_postgres(&self) -> bool {
        self.reader.is_postgres()
    }

    /// The descriptor that holds the data directory's lock (a `flock` on
    /// `tinfoil.lock`, exclusive or shared: see [`crate::LockMode`]). A
    /// process that forks without exec shares that lock with its child; a
    /// library that leaks its `Hsm` in the child (it must never close the
    /// parent's SQLite connection there) closes the child's copy of this
    /// descriptor, so the lock ends when the parent drops the `Hsm`.
    pub fn lock_fd(&self) -> std::os::fd::RawFd {
        self.lock_store().lock_fd()
    }

    pub(crate) fn read_identities(&self) -> RwLockReadGuard<'_, Identities> {
        self.identities.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write_identities(&self) -> RwLockWriteGuard<'_, Identities> {
        self.identities.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The root key, for wrapping secrets other than key material.
    pub(crate) fn root_key(&self) -> &[u8; KEY_LEN] {
        &self.root_key
    }

    /// The account and region this store's ARNs name.
    pub fn account(&self) -> &Account {
        &self.options.account
    }

    pub(crate) fn cache(&self) -> &MaterialCache {
        &self.cache
    }

    /// The plaintext material of one version. Call with the state lock held,
    /// after the state checks, so a key being disabled cannot be re-cached.
    pub(crate) fn material(&self, key: &KeyRecord, version: u32) -> Result<Material> {
        if let Some(material) = self.cache.get(&key.id, version) {
            return Ok(material);
        }
        let wrapped = self
            .reader
            .wrapped_material(&key.id, version)?
            .ok_or_else(|| {
                Error::Internal(format!("{} version {version} has no material", key.arn()))
            })?;
        let aad = sealing::material_aad(key.id.as_bytes(), version, key.spec.as_str());
        let bytes = sealing::unwrap(&self.root_key, &aad, &wrapped).ok_or_else(|| {
            Error::Internal(format!(
                "the material of {} version {version} does not unwrap: the store was tampered with",
                key.arn()
            ))
        })?;
        let material: Material = Arc::new(VersionMaterial::new(bytes));
        self.cache.insert(key.id, version, material.clone());
        Ok(material)
    }

    /// Generates, wraps and commits a new version of `record` (which the
    /// caller then stores in memory), together with the record's own row.
    /// `base` is the record as read (cached) before the caller changed
    /// `record` (see `store::check_base`).
    pub(crate) fn add_version(
        &self,
        base: &KeyRecord,
        record: &mut KeyRecord,
        rotation_type: RotationType,
        now: UnixSeconds,
    ) -> Result<()> {
        let info = VersionInfo {
            version: record.current_version() + 1,
            created: now,
            rotation_type: Some(rotation_type),
        };
        let wrapped = self.wrap_new_material(record.id, info.version, record.spec, None)?;
        if rotation_type == RotationType::OnDemand {
            record.on_demand_rotation_date = Some(now);
        }
        if let Some(days) = record.rotation_period_days {
            if rotation_type == RotationType::Automatic || record.next_rotation_date.is_none() {
                record.next_rotation_date = Some(now + i64::from(days) * DAY);
            }
        }
        let mut updated = record.clone();
        updated.versions.push(info.clone());
        self.lock_store().write(|tx| {
            store::check_base(tx, base)?;
            store::put_version(tx, &record.id, &info, &wrapped)?;
            store::put_key(tx, &updated)
        })?;
        *record = updated;
        Ok(())
    }

    /// Makes material for a new version (or takes `imported`) and wraps it
    /// under the root key, bound to its key id, version and spec.
    pub(crate) fn wrap_new_material(
        &self,
        id: Uuid,
        version: u32,
        spec: KeySpec,
        imported: Option<&[u8]>,
    ) -> Result<Vec<u8>> {
        let material: Zeroizing<Vec<u8>> = match imported {
            Some(bytes) => Zeroizing::new(bytes.to_vec()),
            None if spec.is_symmetric() => Zeroizing::new(sealing::random_key()?.to_vec()),
            None => crate::asymmetric::generate(spec)?,
        };
        let aad = sealing::material_aad(id.as_bytes(), version, spec.as_str());
        sealing::wrap(&self.root_key, &aad, &material)
    }

    /// Commits `record`'s row and then replaces it in memory.
    pub(crate) fn commit_key(
        &self,
        state: &mut StateWrite<'_>,
        record: KeyRecord,
    ) -> Result<KeyRecord> {
        // The cached record the change was made from (under this write
        // lock nothing evicts or replaces it).
        let base = state.get(&record.id)?;
        let committed = self.lock_store().write(|tx| {
            if let Some(base) = &base {
                store::check_base(tx, base)?;
            }
            store::put_key(tx, &record)
        });
        if committed.is_err() {
            // Perhaps stale (changed by another node): read it again next time.
            state.forget_key(&record.id);
        }
        committed?;
        state.put_key(record.clone());
        Ok(record)
    }

    /// Reads a version's wrapped bytes; for tests of what lies on disk.
    #[cfg(test)]
    pub(crate) fn wrapped_for_test(&self, id: &Uuid, version: u32) -> Option<Vec<u8>> {
        self.reader.wrapped_material(id, version).unwrap()
    }
}

/// Where a store's change counter starts: the wall clock in nanoseconds,
/// so counters of successive openings of a store do not repeat.
fn generation_origin() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

/// Whether scheduled rotation of `key` is due at `now`.
pub(crate) fn rotation_due(key: &KeyRecord, now: UnixSeconds) -> bool {
    key.spec.is_symmetric()
        && key.rotation_period_days.is_some()
        && key.next_rotation_date.is_some_and(|d| d <= now)
}

/// Refuses a key that is not Enabled, with the KMS exception for its state.
pub(crate) fn require_enabled(key: &KeyRecord) -> Result<()> {
    match key.state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(Error::Disabled(format!("{} is disabled", key.arn()))),
        KeyState::PendingDeletion => Err(Error::InvalidState(format!(
            "{} is pending deletion",
            key.arn()
        ))),
    }
}

/// Refuses a key that is pending deletion.
pub(crate) fn require_not_pending(key: &KeyRecord) -> Result<()> {
    if key.state == KeyState::PendingDeletion {
        return Err(Error::InvalidState(format!(
            "{} is pending deletion",
            key.arn()
        )));
    }
    Ok(())
}
