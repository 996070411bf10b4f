//! Session (ephemeral) secret keys of PKCS#11 sessions: tables the
//! caller owns, sharing an optional budget, wiped when dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::mechanisms::random_bytes;

pub(crate) struct SessionKey {
    pub(crate) bytes: Zeroizing<Vec<u8>>,
    pub(crate) extractable: bool,
    /// Made with CKA_SENSITIVE false and CKA_EXTRACTABLE true: its value
    /// may be read (see [`crate::Hsm::p11_secret_value`]).
    pub(crate) readable: bool,
}

/// The most session keys that exist at once in one table, or in all the
/// tables sharing one [`SessionKeyBudget`].
pub const MAX_SESSION_KEYS: usize = 16_384;

/// What several session key tables share: the cap of [`MAX_SESSION_KEYS`]
/// live keys in all of them together, the count of live keys, and the id
/// counter, so that no two tables ever hold the same id (a handle from one
/// table names nothing in another). tinfoild gives each client connection
/// its own table over one budget.
#[derive(Debug, Default)]
pub struct SessionKeyBudget {
    live: AtomicUsize,
    next: AtomicU64,
}

impl SessionKeyBudget {
    /// A budget with no live keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many session keys exist now in the tables on this budget.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }
}

/// A session key pair: its private key's material (PKCS#8, on locked
/// pages) and what it may do.
pub(crate) struct SessionPair {
    pub(crate) spec: crate::types::KeySpec,
    pub(crate) material: crate::cache::Material,
    pub(crate) usages: super::PairUsages,
}

/// Session keys: secret keys (generated, imported or unwrapped) and key
/// pairs, kept in memory only, gone (wiped) when destroyed or when the
/// table is dropped. Both kinds share one id space and one budget.
#[derive(Default)]
pub struct SessionKeys {
    keys: Mutex<HashMap<u64, SessionKey>>,
    pairs: Mutex<HashMap<u64, SessionPair>>,
    budget: Arc<SessionKeyBudget>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys")
    }
}

impl Drop for SessionKeys {
    fn drop(&mut self) {
        let n = self.lock().len() + self.lock_pairs().len();
        self.budget.live.fetch_sub(n, Ordering::AcqRel);
    }
}

impl SessionKeys {
    /// An empty table with a budget of its own.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty table that shares `budget` with other tables.
    pub fn with_budget(budget: Arc<SessionKeyBudget>) -> Self {
        SessionKeys {
            keys: Mutex::default(),
            pairs: Mutex::default(),
            budget,
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, SessionKey>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn lock_pairs(&self) -> std::sync::MutexGuard<'_, HashMap<u64, SessionPair>> {
        self.pairs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one place of the budget and a fresh id.
    fn reserve(&self) -> Result<u64> {
        self.budget
            .live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_SESSION_KEYS).then_some(n + 1)
            })
            .map_err(|_| {
                Error::LimitExceeded(format!(
                    "at most {MAX_SESSION_KEYS} session keys may exist at once"
                ))
            })?;
        Ok(self.budget.next.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// Adds a session key pair (within the budget).
    pub(crate) fn insert_pair(&self, pair: SessionPair) -> Result<u64> {
        let mut pairs = self.lock_pairs();
        let id = self.reserve()?;
        pairs.insert(id, pair);
        Ok(id)
    }

    /// Adds a key; refused (LimitExceededException) beyond
    /// [`MAX_SESSION_KEYS`] in the budget, so that clients that never
    /// destroy their session keys cannot grow a shared daemon's memory
    /// without bound.
    pub(crate) fn insert(&self, bytes: Zeroizing<Vec<u8>>, extractable: bool) -> Result<u64> {
        self.insert_with(bytes, extractable, false)
    }

    /// Like `insert`, saying whether the value may be read.
    pub(crate) fn insert_with(
        &self,
        bytes: Zeroizing<Vec<u8>>,
        extractable: bool,
        readable: bool,
    ) -> Result<u64> {
        let mut keys = self.lock();
        let id = self.reserve()?;
        keys.insert(
            id,
            SessionKey {
                bytes,
                extractable: extractable || readable,
                readable,
            },
        );
        Ok(id)
    }

    /// Generates a session AES (16/24/32 bytes) or generic secret key.
    pub fn generate(&self, len: usize, extractable: bool) -> Result<u64> {
        if len == 0 || len > 512 {
            return Err(Error::validation("a session key is 1 to 512 bytes"));
        }
        self.insert(random_bytes(len)?, extractable)
    }

    /// Takes a secret key the application supplied (C_CreateObject).
    pub fn import(&self, bytes: &[u8], extractable: bool) -> Result<u64> {
        if bytes.is_empty() || bytes.len() > 512 {
            return Err(Error::validation("a session key is 1 to 512 bytes"));
        }
        self.insert(Zeroizing::new(bytes.to_vec()), extractable)
    }

    /// Generates a session key whose value may be read (CKA_SENSITIVE
    /// false, CKA_EXTRACTABLE true).
    pub fn generate_readable(&self, len: usize) -> Result<u64> {
        if len == 0 || len > 512 {
            return Err(Error::validation("a session key is 1 to 512 bytes"));
        }
        self.insert_with(random_bytes(len)?, true, true)
    }

    /// Takes a secret key value whose value may be read back.
    pub fn import_readable(&self, bytes: &[u8]) -> Result<u64> {
        if bytes.is_empty() || bytes.len() > 512 {
            return Err(Error::validation("a session key is 1 to 512 bytes"));
        }
        self.insert_with(Zeroizing::new(bytes.to_vec()), true, true)
    }

    /// Forgets (and wipes) a session key.
    pub fn destroy(&self, id: u64) {
        let gone = self.lock().remove(&id).is_some() || self.lock_pairs().remove(&id).is_some();
        if gone {
            self.budget.live.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The length of a session key, if it exists.
    pub fn key_len(&self, id: u64) -> Option<usize> {
        self.lock().get(&id).map(|k| k.bytes.len())
    }

    /// How many keys (secret keys and key pairs) this table holds.
    pub fn len(&self) -> usize {
        self.lock().len() + self.lock_pairs().len()
    }

    /// Whether this table holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod session_key_tests {
    use super::*;

    #[test]
    fn the_session_key_table_is_bounded_and_frees_room_on_destroy() {
        let keys = SessionKeys::new();
        let ids: Vec<u64> = (0..MAX_SESSION_KEYS)
            .map(|_| keys.generate(16, false).unwrap())
            .collect();
        let err = keys.generate(16, false).unwrap_err();
        assert!(matches!(err, Error::LimitExceeded(_)), "{err:?}");
        assert!(matches!(
            keys.import(&[1u8; 16], false),
            Err(Error::LimitExceeded(_))
        ));
        keys.destroy(ids[0]);
        assert_eq!(keys.key_len(keys.generate(32, false).unwrap()), Some(32));
    }

    #[test]
    fn tables_on_one_budget_share_the_cap_the_count_and_never_an_id() {
        let budget = Arc::new(SessionKeyBudget::new());
        let a = SessionKeys::with_budget(Arc::clone(&budget));
        let b = SessionKeys::with_budget(Arc::clone(&budget));
        let in_a = a.generate(16, false).unwrap();
        let in_b = b.import(&[7u8; 32], false).unwrap();
        assert_ne!(in_a, in_b);
        assert_eq!(
            b.key_len(in_a),
            None,
            "a handle of one table names nothing in another"
        );
        assert_eq!(a.key_len(in_b), None);
        assert_eq!(budget.live(), 2);
        b.destroy(in_a); // not b's: nothing changes
        assert_eq!(budget.live(), 2);
        for _ in 2..MAX_SESSION_KEYS {
            a.generate(16, false).unwrap();
        }
        assert_eq!(budget.live(), MAX_SESSION_KEYS);
        assert!(matches!(
            b.generate(16, false),
            Err(Error::LimitExceeded(_))
        ));
        drop(a);
        assert_eq!(budget.live(), 1, "dropping a table frees its keys");
        assert_eq!(b.len(), 1);
        b.generate(16, false).unwrap();
        b.destroy(in_b);
        assert_eq!(budget.live(), 1);
    }
}
