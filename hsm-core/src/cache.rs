//! Bounded least-recently-used caches: [`Lru`], and on it the cache of
//! unwrapped key versions.
//!
//! Material entries are shared [`VersionMaterial`]s: the bytes are wiped
//! (and a parsed private key freed) when the last user drops them, whether
//! the entry was evicted (least recently used first when full) or removed
//! because its key was disabled, scheduled for deletion or destroyed.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use uuid::Uuid;
use zeroize::Zeroizing;

use crate::asymmetric::PrivateKey;
use crate::error::Result;
use crate::secmem::LockedBytes;
use crate::types::KeySpec;

/// Plaintext material of one key version, wiped on drop, plus (for RSA and
/// elliptic-curve keys) the private key parsed once on first use, so that
/// signing does not parse and re-validate PKCS#8 on every call.
///
/// The bytes live on pages of their own, left out of core dumps and locked
/// in memory when the limit allows ([`crate::secmem`]); a parsed private
/// key lives in AWS-LC's own allocations, which are not.
pub(crate) struct VersionMaterial {
    bytes: LockedBytes,
    parsed: OnceLock<PrivateKey>,
}

impl VersionMaterial {
    /// Moves unwrapped bytes onto locked pages (the given copy is wiped).
    pub fn new(bytes: Zeroizing<Vec<u8>>) -> Self {
        VersionMaterial {
            bytes: LockedBytes::copy_of(&bytes),
            parsed: OnceLock::new(),
        }
    }

    /// The private key of an RSA or elliptic-curve version, parsed once.
    pub fn private_key(&self, spec: KeySpec) -> Result<&PrivateKey> {
        if let Some(parsed) = self.parsed.get() {
            return Ok(parsed);
        }
        let parsed = PrivateKey::from_pkcs8(spec, &self.bytes)?;
        // Another thread may have won the race; either parse is the same key.
        Ok(self.parsed.get_or_init(|| parsed))
    }
}

impl Deref for VersionMaterial {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// A shared handle on one version's material.
pub(crate) type Material = Arc<VersionMaterial>;

/// A map holding at most `capacity` entries; inserting beyond it evicts
/// the least recently used (read or written) entry. Capacity 0 holds
/// nothing. Each access costs O(log n).
pub(crate) struct Lru<K, V> {
    capacity: usize,
    map: HashMap<K, (V, u64)>,
    /// Last use -> key, oldest first.
    order: BTreeMap<u64, K>,
    clock: u64,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    /// An empty cache of at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Lru {
            capacity,
            map: HashMap::new(),
            order: BTreeMap::new(),
            clock: 0,
        }
    }

    fn touch(&mut self, key: &K) -> Option<&mut (V, u64)> {
        self.clock += 1;
        let now = self.clock;
        let entry = self.map.get_mut(key)?;
        if let Some(k) = self.order.remove(&entry.1) {
            self.order.insert(now, k);
        }
        entry.1 = now;
        Some(entry)
    }

    /// The entry of `key`, now the most recently used.
    pub fn get(&mut self, key: &K) -> Option<&V> {
        self.touch(key).map(|(v, _)| &*v)
    }

    /// The entry of `key` to change in place, now the most recently used.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.touch(key).map(|(v, _)| v)
    }

    /// Inserts or replaces `key`'s entry, evicting beyond capacity.
    pub fn insert(&mut self, key: K, value: V) {
        if self.capacity == 0 {
            return;
        }
        if let Some(entry) = self.touch(&key) {
            entry.0 = value;
            return;
        }
        self.map.insert(key.clone(), (value, self.clock));
        self.order.insert(self.clock, key);
        while self.map.len() > self.capacity {
            match self.order.pop_first() {
                Some((_, oldest)) => {
                    self.map.remove(&oldest);
                }
                None => break,
            }
        }
    }

    /// Removes `key`'s entry.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let (value, used) = self.map.remove(key)?;
        self.order.remove(&used);
        Some(value)
    }

    /// Removes every entry for which `drop` is true.
    pub fn remove_where(&mut self, drop: impl Fn(&K, &V) -> bool) {
        let doomed: Vec<K> = self
            .map
            .iter()
            .filter(|(k, (v, _))| drop(k, v))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.remove(&k);
        }
    }

    /// How many entries are held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

/// The cache of unwrapped versions; `capacity` 0 disables caching.
pub(crate) struct MaterialCache {
    entries: Mutex<Lru<(Uuid, u32), Material>>,
}

impl MaterialCache {
    /// An empty cache holding at most `capacity` versions.
    pub fn new(capacity: usize) -> Self {
        MaterialCache {
            entries: Mutex::new(Lru::new(capacity)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lru<(Uuid, u32), Material>> {
        // The entries stay consistent even if a holder panicked.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached material of one version.
    pub fn get(&self, id: &Uuid, version: u32) -> Option<Material> {
        self.lock().get(&(*id, version)).cloned()
    }

    /// Caches one version, evicting the least recently used beyond capacity.
    pub fn insert(&self, id: Uuid, version: u32, material: Material) {
        self.lock().insert((id, version), material);
    }

    /// Drops every version of one key.
    pub fn remove_key(&self, id: &Uuid) {
        self.lock().remove_where(|(key, _), _| key == id);
    }

    /// Drops every version.
    pub fn clear(&self) {
        self.lock().remove_where(|_, _| true);
    }

    /// How many versions are cached.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn material(byte: u8) -> Material {
        Arc::new(VersionMaterial::new(Zeroizing::new(vec![byte; 32])))
    }

    #[test]
    fn evicts_oldest_beyond_capacity_and_removes_by_key() {
        let cache = MaterialCache::new(2);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        cache.insert(a, 1, material(1));
        cache.insert(a, 2, material(2));
        cache.insert(b, 1, material(3));
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&a, 1).is_none());
        assert_eq!(cache.get(&a, 2).unwrap()[0], 2);
        cache.remove_key(&a);
        assert!(cache.get(&a, 2).is_none());
        assert_eq!(cache.get(&b, 1).unwrap()[0], 3);
    }

    #[test]
    fn evicts_the_least_recently_used() {
        let mut lru = Lru::new(2);
        lru.insert("a", 1);
        lru.insert("b", 2);
        assert_eq!(lru.get(&"a"), Some(&1));
        lru.insert("c", 3);
        assert_eq!(lru.get(&"b"), None, "b was the least recently used");
        assert_eq!(lru.get(&"a"), Some(&1));
        lru.insert("a", 10);
        lru.insert("d", 4);
        assert_eq!(lru.get(&"c"), None);
        assert_eq!(lru.get(&"a"), Some(&10));
        assert_eq!(lru.len(), 2);
        lru.remove_where(|k, _| *k == "a");
        assert_eq!(lru.len(), 1);
        assert_eq!(lru.remove(&"d"), Some(4));
        assert_eq!(lru.len(), 0);
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let cache = MaterialCache::new(0);
        let id = Uuid::new_v4();
        cache.insert(id, 1, material(1));
        assert!(cache.get(&id, 1).is_none());
    }
}
