//! A bounded cache of unwrapped key versions.
//!
//! Entries are shared [`VersionMaterial`]s: the bytes are wiped (and a parsed
//! private key freed) when the last user drops them, whether the entry was
//! evicted (oldest first when full) or removed because its key was disabled,
//! scheduled for deletion or destroyed.

use std::collections::{HashMap, VecDeque};
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

type Slot = (Uuid, u32);

#[derive(Default)]
struct Entries {
    map: HashMap<Slot, Material>,
    order: VecDeque<Slot>,
}

/// The cache; `capacity` 0 disables caching.
pub(crate) struct MaterialCache {
    capacity: usize,
    entries: Mutex<Entries>,
}

impl MaterialCache {
    /// An empty cache holding at most `capacity` versions.
    pub fn new(capacity: usize) -> Self {
        MaterialCache {
            capacity,
            entries: Mutex::new(Entries::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // The entries stay consistent even if a holder panicked.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached material of one version.
    pub fn get(&self, id: &Uuid, version: u32) -> Option<Material> {
        self.lock().map.get(&(*id, version)).cloned()
    }

    /// Caches one version, evicting the oldest entries beyond capacity.
    pub fn insert(&self, id: Uuid, version: u32, material: Material) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.lock();
        if entries.map.insert((id, version), material).is_none() {
            entries.order.push_back((id, version));
        }
        while entries.map.len() > self.capacity {
            match entries.order.pop_front() {
                Some(oldest) => {
                    entries.map.remove(&oldest);
                }
                None => break,
            }
        }
    }

    /// Drops every version of one key.
    pub fn remove_key(&self, id: &Uuid) {
        let mut entries = self.lock();
        entries.map.retain(|(key, _), _| key != id);
        entries.order.retain(|(key, _)| key != id);
    }

    /// How many versions are cached.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().map.len()
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
    fn zero_capacity_caches_nothing() {
        let cache = MaterialCache::new(0);
        let id = Uuid::new_v4();
        cache.insert(id, 1, material(1));
        assert!(cache.get(&id, 1).is_none());
    }
}
