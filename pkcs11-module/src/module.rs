//! One initialised instance of the module: slots, tokens, login state,
//! sessions and the object table. Everything here is safe Rust; the C
//! layer in `ffi` only converts pointers and calls these methods.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use cryptoki_sys::*;

use crate::backend::{Backend, TokenRecord, UserKind};
use crate::error::{ckr, Pkcs11Error, Result};
use crate::objects::{Object, ObjectTable};
use crate::session::Session;

/// Most sessions open at once in one module instance.
pub const MAX_SESSIONS: usize = 4096;

/// A slot: either holds an initialised token or is the free slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The token's serial, or `None` for the free slot.
    pub token: Option<String>,
}

/// The module instance between C_Initialize and C_Finalize.
pub struct Module {
    pub(crate) backend: Box<dyn Backend>,
    slots: Mutex<Vec<Slot>>,
    pub(crate) sessions: RwLock<HashMap<CK_SESSION_HANDLE, Arc<Mutex<Session>>>>,
    logins: Mutex<HashMap<String, UserKind>>,
    pub(crate) objects: RwLock<ObjectTable>,
    /// Per token, the backend generation the table's objects of it were
    /// last brought up to date at. Held while they are, while a search's
    /// matches go into the table, and while a token object is written to
    /// the backend and the table, so none of these interleave.
    loaded: Mutex<HashMap<String, u64>>,
    /// Moves when a write of a token object starts and when it ends (odd
    /// while one is under way): a search made without holding `loaded`
    /// goes into the table only if it did not move meanwhile.
    writes: AtomicU64,
    /// Whether others change the backend's store too: the daemon's, and
    /// an embedded store (other processes may hold it too); only the
    /// memory backend's changes all go through this module and its table.
    shared_store: bool,
    next_session: AtomicU64,
    /// Session key pairs copied to the token: the token key each became,
    /// so the copies of both halves name one key.
    pub(crate) pair_copies: Mutex<HashMap<u64, crate::backend::KeyHandle>>,
}

/// A write of a token object under way (see [`Module::hold_reloads`]).
pub(crate) struct WriteHold<'a> {
    _guard: MutexGuard<'a, HashMap<String, u64>>,
    writes: &'a AtomicU64,
}

impl Drop for WriteHold<'_> {
    fn drop(&mut self) {
        self.writes.fetch_add(1, Ordering::AcqRel);
    }
}

/// Locks a mutex, treating poison as an internal error (a panic was
/// already caught at the C boundary).
pub(crate) fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| Pkcs11Error::General("internal lock poisoned".into()))
}
pub(crate) fn read<T>(m: &RwLock<T>) -> Result<RwLockReadGuard<'_, T>> {
    m.read()
        .map_err(|_| Pkcs11Error::General("internal lock poisoned".into()))
}
pub(crate) fn write<T>(m: &RwLock<T>) -> Result<RwLockWriteGuard<'_, T>> {
    m.write()
        .map_err(|_| Pkcs11Error::General("internal lock poisoned".into()))
}

impl Module {
    /// A module instance over `backend`.
    pub fn new(backend: Box<dyn Backend>) -> Result<Module> {
        let shared_store = backend.name() != "memory";
        let module = Module {
            backend,
            slots: Mutex::new(Vec::new()),
            sessions: RwLock::new(HashMap::new()),
            logins: Mutex::new(HashMap::new()),
            objects: RwLock::new(ObjectTable::default()),
            loaded: Mutex::new(HashMap::new()),
            writes: AtomicU64::new(0),
            shared_store,
            next_session: AtomicU64::new(1),
            pair_copies: Mutex::new(HashMap::new()),
        };
        module.refresh_slots()?;
        Ok(module)
    }

    /// Brings the slot table in line with the backend's tokens. Slot ids
    /// stay stable; exactly one free slot is always last.
    pub fn refresh_slots(&self) -> Result<Vec<Slot>> {
        let tokens = self.backend.tokens()?;
        let mut slots = lock(&self.slots)?;
        slots.retain(|s| {
            s.token
                .as_ref()
                .is_none_or(|t| tokens.iter().any(|r| &r.serial == t))
        });
        // Keep positions: a vanished token leaves its id unused only if
        // it was last; ids are indexes, so rebuild in order.
        for record in &tokens {
            if !slots
                .iter()
                .any(|s| s.token.as_ref() == Some(&record.serial))
            {
                match slots.iter_mut().find(|s| s.token.is_none()) {
                    Some(free) => free.token = Some(record.serial.clone()),
                    None => slots.push(Slot {
                        token: Some(record.serial.clone()),
                    }),
                }
            }
        }
        slots.retain(|s| s.token.is_some());
        slots.push(Slot { token: None });
        Ok(slots.clone())
    }

    /// The slot with id `slot`.
    pub fn slot(&self, slot: CK_SLOT_ID) -> Result<Slot> {
        let slots = lock(&self.slots)?;
        usize::try_from(slot)
            .ok()
            .and_then(|i| slots.get(i).cloned())
            .ok_or(ckr!(CKR_SLOT_ID_INVALID))
    }

    /// The backend's record of a token.
    pub fn token_record(&self, serial: &str) -> Result<TokenRecord> {
        self.backend
            .tokens()?
            .into_iter()
            .find(|r| r.serial == serial)
            .ok_or(ckr!(CKR_TOKEN_NOT_PRESENT))
    }

    /// Who is logged in to a token, if anyone.
    pub fn login_state(&self, serial: &str) -> Result<Option<UserKind>> {
        Ok(lock(&self.logins)?.get(serial).copied())
    }

    /// Counts (all, read-write) sessions open on a token.
    pub fn session_counts(&self, serial: &str) -> Result<(usize, usize)> {
        let sessions = read(&self.sessions)?;
        let mut all = 0;
        let mut rw = 0;
        for s in sessions.values() {
            let s = lock(s)?;
            if s.token == serial {
                all += 1;
                rw += usize::from(s.read_write);
            }
        }
        Ok((all, rw))
    }

    /// C_InitToken: creates a token on the free slot or re-initialises
    /// the one on `slot`. Fails with CKR_SESSION_EXISTS while sessions
    /// are open on it.
    pub fn init_token(&self, slot: CK_SLOT_ID, so_pin: &[u8], label: &str) -> Result<()> {
        let slot = self.slot(slot)?;
        match slot.token {
            Some(serial) => {
                if self.session_counts(&serial)?.0 > 0 {
                    return Err(ckr!(CKR_SESSION_EXISTS));
                }
                self.backend.init_token(Some(&serial), label, so_pin)?;
                write(&self.objects)?.remove_where(|o| o.token == serial);
                lock(&self.loaded)?.remove(&serial);
                lock(&self.logins)?.remove(&serial);
            }
            None => {
                self.backend.init_token(None, label, so_pin)?;
            }
        }
        self.refresh_slots()?;
        Ok(())
    }

    /// C_OpenSession.
    pub fn open_session(&self, slot: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE> {
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(ckr!(CKR_SESSION_PARALLEL_NOT_SUPPORTED));
        }
        let serial = self
            .slot(slot)?
            .token
            .ok_or(ckr!(CKR_TOKEN_NOT_RECOGNIZED, "token not initialised"))?;
        let read_write = flags & CKF_RW_SESSION != 0;
        if !read_write && self.login_state(&serial)? == Some(UserKind::So) {
            return Err(ckr!(CKR_SESSION_READ_WRITE_SO_EXISTS));
        }
        // No object is loaded: a search asks the backend for its matches.
        let mut sessions = write(&self.sessions)?;
        if sessions.len() >= MAX_SESSIONS {
            return Err(ckr!(CKR_SESSION_COUNT));
        }
        let handle = self.next_session.fetch_add(1, Ordering::Relaxed);
        sessions.insert(
            handle,
            Arc::new(Mutex::new(Session::new(slot, serial, read_write))),
        );
        Ok(handle)
    }

    /// The session with this handle.
    pub fn session(&self, handle: CK_SESSION_HANDLE) -> Result<Arc<Mutex<Session>>> {
        read(&self.sessions)?
            .get(&handle)
            .cloned()
            .ok_or(ckr!(CKR_SESSION_HANDLE_INVALID))
    }

    /// The token (serial) of a session.
    pub fn session_token(&self, handle: CK_SESSION_HANDLE) -> Result<String> {
        let session = self.session(handle)?;
        let token = lock(&session)?.token.clone();
        Ok(token)
    }

    /// C_CloseSession: its session objects go; the last session on a
    /// token logs the token out.
    pub fn close_session(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        let session = write(&self.sessions)?
            .remove(&handle)
            .ok_or(ckr!(CKR_SESSION_HANDLE_INVALID))?;
        let serial = lock(&session)?.token.clone();
        let gone = write(&self.objects)?.remove_where(|o| o.session == Some(handle));
        for object in gone {
            if let Some(key @ crate::backend::KeyHandle::Session(_)) = &object.key {
                // Best effort: the key is unreachable either way.
                let _ = self.backend.destroy_key(key);
            }
        }
        if self.session_counts(&serial)?.0 == 0 {
            lock(&self.logins)?.remove(&serial);
        }
        Ok(())
    }

    /// C_CloseAllSessions for one slot.
    pub fn close_all_sessions(&self, slot: CK_SLOT_ID) -> Result<()> {
        self.slot(slot)?;
        let handles: Vec<CK_SESSION_HANDLE> = {
            let sessions = read(&self.sessions)?;
            let mut v = Vec::new();
            for (h, s) in sessions.iter() {
                if lock(s)?.slot == slot {
                    v.push(*h);
                }
            }
            v
        };
        for h in handles {
            // A racing C_CloseSession may have closed it already.
            let _ = self.close_session(h);
        }
        Ok(())
    }

    /// The CKS_* state of a session.
    pub fn session_state(&self, session: &Session) -> Result<CK_STATE> {
        Ok(
            match (self.login_state(&session.token)?, session.read_write) {
                (None, false) => CKS_RO_PUBLIC_SESSION,
                (None, true) => CKS_RW_PUBLIC_SESSION,
                (Some(UserKind::User), false) => CKS_RO_USER_FUNCTIONS,
                (Some(UserKind::User), true) => CKS_RW_USER_FUNCTIONS,
                (Some(UserKind::So), _) => CKS_RW_SO_FUNCTIONS,
            },
        )
    }

    /// C_Login.
    pub fn login(&self, handle: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: &[u8]) -> Result<()> {
        let serial = self.session_token(handle)?;
        let kind = match user {
            CKU_SO => UserKind::So,
            CKU_USER => UserKind::User,
            CKU_CONTEXT_SPECIFIC => return self.context_login(handle, pin),
            _ => return Err(ckr!(CKR_USER_TYPE_INVALID)),
        };
        let check_free = |logins: &HashMap<String, UserKind>| match logins.get(&serial) {
            Some(k) if *k == kind => Err(ckr!(CKR_USER_ALREADY_LOGGED_IN)),
            Some(_) => Err(ckr!(CKR_USER_ANOTHER_ALREADY_LOGGED_IN)),
            None => Ok(()),
        };
        check_free(&*lock(&self.logins)?)?;
        if kind == UserKind::So {
            let (all, rw) = self.session_counts(&serial)?;
            if all > rw {
                return Err(ckr!(CKR_SESSION_READ_ONLY_EXISTS));
            }
        }
        // The PIN hash is checked without holding the login table, so
        // other sessions keep working meanwhile.
        self.backend.login(&serial, kind, pin)?;
        let mut logins = lock(&self.logins)?;
        check_free(&logins)?;
        logins.insert(serial, kind);
        Ok(())
    }

    /// C_Logout.
    pub fn logout(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        let serial = self.session_token(handle)?;
        lock(&self.logins)?
            .remove(&serial)
            .map(|_| ())
            .ok_or(ckr!(CKR_USER_NOT_LOGGED_IN))
    }

    /// C_InitPIN: the SO sets the user PIN (and unlocks it).
    pub fn init_pin(&self, handle: CK_SESSION_HANDLE, pin: &[u8]) -> Result<()> {
        let session = self.session(handle)?;
        let serial = {
            let s = lock(&session)?;
            if !s.read_write {
                return Err(ckr!(CKR_SESSION_READ_ONLY));
            }
            s.token.clone()
        };
        if self.login_state(&serial)? != Some(UserKind::So) {
            return Err(ckr!(CKR_USER_NOT_LOGGED_IN, "C_InitPIN needs the SO"));
        }
        self.backend.init_pin(&serial, pin)
    }

    /// C_SetPIN: changes the PIN of whoever is logged in (the user when
    /// nobody is).
    pub fn set_pin(&self, handle: CK_SESSION_HANDLE, old: &[u8], new: &[u8]) -> Result<()> {
        let session = self.session(handle)?;
        let serial = {
            let s = lock(&session)?;
            if !s.read_write {
                return Err(ckr!(CKR_SESSION_READ_ONLY));
            }
            s.token.clone()
        };
        let who = self.login_state(&serial)?.unwrap_or(UserKind::User);
        self.backend.set_pin(&serial, who, old, new)
    }

    /// The token objects matching `template` (exactly), as handles: the
    /// backend's matches taken into the table (an object already there
    /// keeps its handle, its attributes follow the store), then, when the
    /// backend's generation (read with the search: one call with the
    /// daemon backend) moved since the last time, the objects held before
    /// brought up to date: what the change journal names since then, or
    /// when it cannot say, the held objects by their ids and keys. Never
    /// the token's whole set: an object the table does not hold is found
    /// by a search. So keys changed or deleted by the CLI or another
    /// process show at the next search (a deleted one's handle goes), and
    /// nothing is refreshed with the memory backend, whose changes all go
    /// through this module. The backend is searched without holding
    /// `loaded` unless a write of a token object by this module overlapped
    /// the search.
    pub(crate) fn find_token_objects(
        &self,
        serial: &str,
        template: &crate::attrs::Template,
    ) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let search = || -> Result<(u64, Vec<crate::backend::StoredObject>)> {
            if self.shared_store {
                self.backend.find_objects_now(serial, template)
            } else {
                Ok((0, self.backend.find_objects(serial, template)?))
            }
        };
        let before = self.writes.load(Ordering::Acquire);
        let found = if before.is_multiple_of(2) {
            Some(search()?)
        } else {
            None
        };
        let mut loaded = lock(&self.loaded)?;
        let (generation, matches) = match found {
            Some(found) if self.writes.load(Ordering::Acquire) == before => found,
            _ => search()?,
        };
        let seen = loaded.get(serial).copied();
        let stale = self.shared_store && seen != Some(generation);
        // What was held before the matches came: those may be stale.
        let held = match stale {
            true => Some(read(&self.objects)?.held(serial)),
            false => None,
        };
        let handles = write(&self.objects)?.merge(serial, matches);
        let Some(held) = held else {
            return Ok(handles);
        };
        if held.objects.is_empty() {
            loaded.insert(serial.to_string(), generation);
            return Ok(handles);
        }
        let changes = self.backend.refresh_objects(serial, seen, &held)?;
        // A journal answer covers every object up to its generation; the
        // held objects read again cover only those (the matches are
        // current as of `generation`).
        let current = match changes.scope {
            Some(_) => changes.generation,
            None => generation,
        };
        let scope = changes.scope.unwrap_or(held);
        write(&self.objects)?.reconcile_scope(serial, &scope, changes.objects);
        loaded.insert(serial.to_string(), current);
        Ok(handles)
    }

    /// Holds off refreshes and searches while a token object is written
    /// to the backend and then to the table (see `loaded`, `writes`).
    pub(crate) fn hold_reloads(&self) -> Result<WriteHold<'_>> {
        let guard = lock(&self.loaded)?;
        self.writes.fetch_add(1, Ordering::AcqRel);
        Ok(WriteHold {
            _guard: guard,
            writes: &self.writes,
        })
    }

    /// How many objects the table holds (for tests: a session opened or a
    /// search made holds only what it should).
    pub fn held_objects(&self) -> Result<usize> {
        Ok(read(&self.objects)?.len())
    }

    /// Whether a session may see an object: same token, and private
    /// objects only while the user is logged in.
    pub fn visible(&self, session: &Session, object: &Object, user_in: bool) -> bool {
        object.token == session.token && (!object.is_private() || user_in)
    }

    /// Whether the normal user is logged in to a session's token.
    pub fn user_logged_in(&self, session: &Session) -> Result<bool> {
        Ok(self.login_state(&session.token)? == Some(UserKind::User))
    }
}
