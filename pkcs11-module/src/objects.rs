//! The object table of one module instance: the objects the application
//! holds handles to, token and session objects alike, with an index on
//! the attributes applications search on (class, id, label, key type).
//! Session objects live only here. Token objects live in the backend's
//! store: the table is a cache of those a search or a create returned
//! (an object keeps its handle while it exists), never the token's whole
//! set, so opening a session on a token of many keys holds none of them
//! and a search holds only what it matched.

use std::collections::{BTreeSet, HashMap, HashSet};

use cryptoki_sys::*;

use crate::attrs::{self, get_bool, get_ulong};
use crate::backend::{Attributes, ChangeScope, KeyHandle, StoredObject};

/// Attribute types kept in the search index.
const INDEXED: &[CK_ATTRIBUTE_TYPE] = &[CKA_CLASS, CKA_ID, CKA_LABEL, CKA_KEY_TYPE];

/// One object as the module holds it. Key material is never here: a key
/// object names its backend key through `backend_id`.
#[derive(Debug, Clone)]
pub struct Object {
    /// The token (serial) the object lives on.
    pub token: String,
    /// The backend id of a token object; `None` for a session object that
    /// holds no key.
    pub backend_id: Option<String>,
    /// The session that made a session object (it dies with it).
    pub session: Option<CK_SESSION_HANDLE>,
    /// The attributes visible through C_GetAttributeValue.
    pub attrs: Attributes,
    /// The backend key material a key object names.
    pub key: Option<crate::backend::KeyHandle>,
}

impl Object {
    /// CKA_CLASS.
    pub fn class(&self) -> CK_OBJECT_CLASS {
        get_ulong(&self.attrs, CKA_CLASS).unwrap_or(CKO_DATA)
    }
    /// CKA_PRIVATE (defaults to true, as for keys).
    pub fn is_private(&self) -> bool {
        get_bool(&self.attrs, CKA_PRIVATE, true)
    }
    /// CKA_TOKEN.
    pub fn is_token(&self) -> bool {
        get_bool(&self.attrs, CKA_TOKEN, false)
    }
    /// Whether every (type, value) of `template` matches this object.
    pub fn matches(&self, template: &attrs::Template) -> bool {
        template
            .iter()
            .all(|(t, v)| self.attrs.get(t).is_some_and(|mine| mine == v))
    }
}

/// The objects the module gave handles to, by handle, with a search index.
#[derive(Debug, Default)]
pub struct ObjectTable {
    objects: HashMap<CK_OBJECT_HANDLE, Object>,
    index: HashMap<(CK_ATTRIBUTE_TYPE, Vec<u8>), BTreeSet<CK_OBJECT_HANDLE>>,
    by_backend_id: HashMap<(String, String), CK_OBJECT_HANDLE>,
    /// Objects naming a token key, by KMS key id.
    by_key: HashMap<String, BTreeSet<CK_OBJECT_HANDLE>>,
    next_handle: CK_OBJECT_HANDLE,
}

impl ObjectTable {
    /// Adds an object and returns its new handle.
    pub fn insert(&mut self, object: Object) -> CK_OBJECT_HANDLE {
        self.next_handle += 1;
        let handle = self.next_handle;
        self.index_add(handle, &object);
        if let Some(id) = &object.backend_id {
            self.by_backend_id
                .insert((object.token.clone(), id.clone()), handle);
        }
        self.key_index(handle, object.key.as_ref(), true);
        self.objects.insert(handle, object);
        handle
    }

    /// Adds or removes `handle` in the by-key index.
    fn key_index(&mut self, handle: CK_OBJECT_HANDLE, key: Option<&KeyHandle>, add: bool) {
        let Some(KeyHandle::Stored(k)) = key else {
            return;
        };
        if add {
            self.by_key.entry(k.clone()).or_default().insert(handle);
        } else if let Some(set) = self.by_key.get_mut(k) {
            set.remove(&handle);
            if set.is_empty() {
                self.by_key.remove(k);
            }
        }
    }

    /// The handle of a token object already loaded, by backend id.
    pub fn handle_of(&self, token: &str, backend_id: &str) -> Option<CK_OBJECT_HANDLE> {
        self.by_backend_id
            .get(&(token.to_string(), backend_id.to_string()))
            .copied()
    }

    /// Looks an object up.
    pub fn get(&self, handle: CK_OBJECT_HANDLE) -> Option<&Object> {
        self.objects.get(&handle)
    }

    /// Whether an object other than `except` names `key`.
    pub fn names_key(&self, key: &KeyHandle, except: CK_OBJECT_HANDLE) -> bool {
        self.objects
            .iter()
            .any(|(h, o)| *h != except && o.key.as_ref() == Some(key))
    }

    /// Removes an object.
    pub fn remove(&mut self, handle: CK_OBJECT_HANDLE) -> Option<Object> {
        let object = self.objects.remove(&handle)?;
        self.index_remove(handle, &object);
        self.key_index(handle, object.key.as_ref(), false);
        if let Some(id) = &object.backend_id {
            self.by_backend_id
                .remove(&(object.token.clone(), id.clone()));
        }
        Some(object)
    }

    /// Replaces an object's attributes, keeping the index right.
    pub fn set_attrs(&mut self, handle: CK_OBJECT_HANDLE, attrs: Attributes) {
        if let Some(mut object) = self.objects.remove(&handle) {
            self.index_remove(handle, &object);
            object.attrs = attrs;
            self.index_add(handle, &object);
            self.objects.insert(handle, object);
        }
    }

    /// Removes every object matching `pred`; returns them.
    pub fn remove_where(&mut self, pred: impl Fn(&Object) -> bool) -> Vec<Object> {
        let doomed: Vec<_> = self
            .objects
            .iter()
            .filter(|(_, o)| pred(o))
            .map(|(h, _)| *h)
            .collect();
        doomed.iter().filter_map(|h| self.remove(*h)).collect()
    }

    /// Takes a search's matches on a token into the table: an object
    /// already there keeps its handle (its attributes and key follow the
    /// store), a new one gets a handle. Returns their handles, in the
    /// order of `stored`.
    pub fn merge(&mut self, token: &str, stored: Vec<StoredObject>) -> Vec<CK_OBJECT_HANDLE> {
        stored
            .into_iter()
            .map(|object| match self.handle_of(token, &object.id) {
                Some(h) => {
                    self.update(h, object);
                    h
                }
                None => self.insert(Object {
                    token: token.to_string(),
                    backend_id: Some(object.id),
                    session: None,
                    attrs: object.attrs,
                    key: object.key,
                }),
            })
            .collect()
    }

    /// What the table holds of a token's stored objects: their ids and
    /// the keys they name (for [`crate::backend::Backend::refresh_objects`]).
    pub fn held(&self, token: &str) -> ChangeScope {
        let mut keys = BTreeSet::new();
        let mut objects = Vec::new();
        for ((t, id), h) in &self.by_backend_id {
            if t != token {
                continue;
            }
            objects.push(id.clone());
            if let Some(KeyHandle::Stored(k)) = self.objects.get(h).and_then(|o| o.key.as_ref()) {
                keys.insert(k.clone());
            }
        }
        objects.sort();
        ChangeScope {
            keys: keys.into_iter().collect(),
            objects,
        }
    }

    /// How many objects the table holds (token and session objects).
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the table holds no object.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Brings the token's objects the table holds within `scope` in line
    /// with `stored`, the current objects of the token that name one of
    /// the scope's keys or are one of its objects: those still there keep
    /// their handles (attributes and key follow the store), vanished ones
    /// go. Objects the table does not hold are not added (a search finds
    /// them); the others stay as they are. Returns the number removed.
    pub fn reconcile_scope(
        &mut self,
        token: &str,
        scope: &ChangeScope,
        stored: Vec<StoredObject>,
    ) -> usize {
        // The scope's objects now in the table, through the indexes.
        let mut in_scope: BTreeSet<CK_OBJECT_HANDLE> = scope
            .objects
            .iter()
            .filter_map(|id| self.handle_of(token, id))
            .collect();
        for k in &scope.keys {
            if let Some(set) = self.by_key.get(k) {
                in_scope.extend(set.iter().copied().filter(|h| {
                    self.objects
                        .get(h)
                        .is_some_and(|o| o.token == token && o.backend_id.is_some())
                }));
            }
        }
        self.reconcile_among(token, in_scope.into_iter().collect(), stored)
    }

    /// Updates the object at `h` to what the store holds.
    fn update(&mut self, h: CK_OBJECT_HANDLE, object: StoredObject) {
        let same = self
            .objects
            .get(&h)
            .is_some_and(|o| o.attrs == object.attrs && o.key == object.key);
        if !same {
            let old = self.objects.get(&h).and_then(|o| o.key.clone());
            self.key_index(h, old.as_ref(), false);
            self.key_index(h, object.key.as_ref(), true);
            if let Some(o) = self.objects.get_mut(&h) {
                o.key = object.key;
            }
            self.set_attrs(h, object.attrs);
        }
    }

    /// Reconciles the token objects `candidates` (token objects with a
    /// backend id) with `stored`, the current set among them and others
    /// (which are left out). Returns the number removed.
    fn reconcile_among(
        &mut self,
        token: &str,
        candidates: Vec<CK_OBJECT_HANDLE>,
        stored: Vec<StoredObject>,
    ) -> usize {
        let ids: HashSet<&str> = stored.iter().map(|o| o.id.as_str()).collect();
        let gone: Vec<CK_OBJECT_HANDLE> = candidates
            .into_iter()
            .filter(|h| {
                self.objects
                    .get(h)
                    .and_then(|o| o.backend_id.as_deref())
                    .is_some_and(|id| !ids.contains(id))
            })
            .collect();
        for h in &gone {
            self.remove(*h);
        }
        for object in stored {
            if let Some(h) = self.handle_of(token, &object.id) {
                self.update(h, object);
            }
        }
        gone.len()
    }

    /// Handles of the objects matching `template` on which `visible` holds,
    /// in handle order. Uses the smallest index bucket the template names.
    pub fn find(
        &self,
        template: &attrs::Template,
        visible: impl Fn(&Object) -> bool,
    ) -> Vec<CK_OBJECT_HANDLE> {
        let mut best: Option<&BTreeSet<CK_OBJECT_HANDLE>> = None;
        for (t, v) in template {
            if INDEXED.contains(t) {
                match self.index.get(&(*t, v.clone())) {
                    None => return Vec::new(),
                    Some(set) if best.is_none_or(|b| set.len() < b.len()) => best = Some(set),
                    Some(_) => {}
                }
            }
        }
        let check = |h: &CK_OBJECT_HANDLE| {
            self.objects
                .get(h)
                .is_some_and(|o| visible(o) && o.matches(template))
        };
        match best {
            Some(set) => set.iter().copied().filter(check).collect(),
            None => {
                let mut all: Vec<_> = self.objects.keys().copied().filter(check).collect();
                all.sort_unstable();
                all
            }
        }
    }

    fn index_add(&mut self, handle: CK_OBJECT_HANDLE, object: &Object) {
        for t in INDEXED {
            if let Some(v) = object.attrs.get(t) {
                self.index
                    .entry((*t, v.clone()))
                    .or_default()
                    .insert(handle);
            }
        }
    }

    fn index_remove(&mut self, handle: CK_OBJECT_HANDLE, object: &Object) {
        for t in INDEXED {
            if let Some(v) = object.attrs.get(t) {
                let key = (*t, v.clone());
                if let Some(set) = self.index.get_mut(&key) {
                    set.remove(&handle);
                    if set.is_empty() {
                        self.index.remove(&key);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::ulong;

    fn data(label: &str) -> Object {
        let mut attrs = Attributes::new();
        attrs.insert(CKA_CLASS, ulong(CKO_DATA));
        attrs.insert(CKA_LABEL, label.as_bytes().to_vec());
        Object {
            token: "t".into(),
            backend_id: None,
            session: None,
            attrs,
            key: None,
        }
    }

    #[test]
    fn finds_through_the_index_and_forgets_removed_objects() {
        let mut table = ObjectTable::default();
        let handles: Vec<_> = (0..10_000)
            .map(|i| table.insert(data(&format!("k{i}"))))
            .collect();
        let want = vec![(CKA_LABEL, b"k4242".to_vec())];
        assert_eq!(table.find(&want, |_| true), vec![handles[4242]]);
        assert!(table.find(&want, |_| false).is_empty());
        table.remove(handles[4242]);
        assert!(table.find(&want, |_| true).is_empty());
        let none = vec![(CKA_LABEL, b"absent".to_vec())];
        assert!(table.find(&none, |_| true).is_empty());
        assert_eq!(table.find(&Vec::new(), |_| true).len(), 9_999);
    }

    fn stored(id: &str, label: &str) -> StoredObject {
        StoredObject {
            id: id.into(),
            attrs: data(label).attrs,
            key: None,
        }
    }

    #[test]
    fn merge_keeps_handles_follows_the_store_and_spares_other_objects() {
        let mut table = ObjectTable::default();
        let first = table.merge("t", vec![stored("a", "a"), stored("b", "b")]);
        assert_eq!(first.len(), 2);
        let label = |l: &str| vec![(CKA_LABEL, l.as_bytes().to_vec())];
        let session = table.insert(data("s"));
        let mut other = data("b");
        other.token = "u".into();
        other.backend_id = Some("b".into());
        let other = table.insert(other);

        // a was relabelled, c is new; b is not among the matches and stays.
        let second = table.merge("t", vec![stored("a", "a2"), stored("c", "c")]);
        assert_eq!(second[0], first[0], "a keeps its handle");
        assert!(!first.contains(&second[1]) && second[1] != session && second[1] != other);
        assert_eq!(table.find(&label("a2"), |_| true), vec![first[0]]);
        assert!(table.find(&label("a"), |_| true).is_empty());
        assert_eq!(table.find(&label("b"), |_| true), vec![first[1], other]);
        assert_eq!(table.find(&label("s"), |_| true), vec![session]);
        assert_eq!(table.len(), 5);
        let held = table.held("t");
        assert_eq!(held.objects, vec!["a", "b", "c"]);
        assert!(held.keys.is_empty());
    }

    #[test]
    fn reconcile_scope_touches_only_held_objects_of_the_scope() {
        let mut table = ObjectTable::default();
        let keyed = |id: &str, key: &str| StoredObject {
            key: Some(KeyHandle::Stored(key.into())),
            ..stored(id, id)
        };
        table.merge(
            "t",
            vec![
                keyed("a", "k1"),
                keyed("a-pub", "k1"),
                keyed("b", "k2"),
                stored("c", "c"),
            ],
        );
        assert_eq!(table.held("t").keys, vec!["k1", "k2"]);
        let handle =
            |t: &ObjectTable, l: &str| t.find(&vec![(CKA_LABEL, l.as_bytes().to_vec())], |_| true);
        let b = handle(&table, "b");
        let a = handle(&table, "a");
        // k1 lost its public object, object c is gone, d is new (not
        // held: left to a search); b (k2) is outside the scope and stays
        // although it is not in `stored`.
        let scope = ChangeScope {
            keys: vec!["k1".into()],
            objects: vec!["c".into(), "d".into()],
        };
        let removed = table.reconcile_scope("t", &scope, vec![keyed("a", "k1"), stored("d", "d")]);
        assert_eq!(removed, 2);
        assert_eq!(handle(&table, "a"), a);
        assert_eq!(handle(&table, "b"), b);
        assert!(handle(&table, "a-pub").is_empty());
        assert!(handle(&table, "c").is_empty());
        assert!(handle(&table, "d").is_empty());
    }

    #[test]
    fn set_attrs_reindexes() {
        let mut table = ObjectTable::default();
        let h = table.insert(data("old"));
        let mut attrs = table.get(h).unwrap().attrs.clone();
        attrs.insert(CKA_LABEL, b"new".to_vec());
        table.set_attrs(h, attrs);
        assert!(table
            .find(&vec![(CKA_LABEL, b"old".to_vec())], |_| true)
            .is_empty());
        assert_eq!(
            table.find(&vec![(CKA_LABEL, b"new".to_vec())], |_| true),
            vec![h]
        );
    }
}
