//! Grants read from the store when a key is used: the grants of the keys
//! used lately, each key's set indexed as [`Grants`] (by id, by grantee),
//! at most `capacity` keys held. Nothing is loaded at open. The store
//! answers what spans keys: a grant's key by grant id, and the grants a
//! principal may retire (an index on the retiring principal).
//!
//! Consistency: grants change only under the authorization state's write
//! lock (commit first, then [`GrantCache::insert`] / [`GrantCache::remove`]
//! update a cached set), and are read under its read lock, so a set read
//! from the store is never older than the cache's.

use std::sync::{Arc, Mutex, MutexGuard};

use uuid::Uuid;

use crate::cache::Lru;
use crate::error::Result;
use crate::grants::{Grant, Grants};
use crate::store::Reader;

/// The grants of recently used keys.
pub(crate) struct GrantCache {
    reader: Arc<Reader>,
    keys: Mutex<Lru<Uuid, Grants>>,
}

impl GrantCache {
    /// An empty cache of at most `capacity` keys' grants.
    pub fn new(reader: Arc<Reader>, capacity: usize) -> GrantCache {
        GrantCache {
            reader,
            keys: Mutex::new(Lru::new(capacity)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lru<Uuid, Grants>> {
        // The cache stays consistent even if a holder panicked.
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the grants of `key` (read from the store if not held).
    pub fn with_key<R>(&self, key: &Uuid, f: impl FnOnce(&Grants) -> R) -> Result<R> {
        if let Some(grants) = self.lock().get(key) {
            return Ok(f(grants));
        }
        let mut grants = Grants::default();
        for grant in self.reader.grants_of_key(key)? {
            grants.insert(grant);
        }
        let out = f(&grants);
        // With capacity 0 nothing is kept: the set is read again next time.
        self.lock().insert(*key, grants);
        Ok(out)
    }

    /// A grant by id, with its key's grants loaded.
    pub fn get(&self, grant_id: &str) -> Result<Option<Arc<Grant>>> {
        let Some(key) = self.reader.grant_key(grant_id)? else {
            return Ok(None);
        };
        self.with_key(&key, |g| g.get(grant_id).cloned())
    }

    /// Notes a committed new grant in its key's cached set.
    pub fn insert(&self, grant: Grant) {
        if let Some(grants) = self.lock().get_mut(&grant.key_id) {
            grants.insert(grant);
        }
    }

    /// Notes a committed deletion in its key's cached set.
    pub fn remove(&self, key: &Uuid, grant_id: &str) {
        if let Some(grants) = self.lock().get_mut(key) {
            grants.remove(grant_id);
        }
    }

    /// Forgets a destroyed key's grants (their rows went with it).
    pub fn forget_key(&self, key: &Uuid) {
        self.lock().remove(key);
    }

    /// Forgets every cached key's grants (another node changed them).
    pub fn forget_all(&self) {
        self.lock().remove_where(|_, _| true);
    }

    /// Up to `limit` grants `retiring` may retire, in grant id order,
    /// after the id `after`: one index range in the store.
    pub fn retirable_by(
        &self,
        retiring: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Arc<Grant>>> {
        Ok(self
            .reader
            .retirable_grants(retiring, after, limit)?
            .into_iter()
            .map(Arc::new)
            .collect())
    }
}
