//! The object table is a cache of the handles a search gave: opening a
//! session loads nothing, a search asks the backend for its matches only
//! (never the token's whole set), objects another process made are found
//! by the next search, and the held objects follow the store (a destroyed
//! object's handle goes invalid) when its generation moves.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cryptoki_sys::*;

use crate::attrs::{bbool, ulong};
use crate::backend::{
    Attributes, Backend, ChangeScope, KeyHandle, ObjectChanges, StoredObject, TokenRecord, UserKind,
};
use crate::error::Result;
use crate::module::Module;

/// What the fake store holds and how it was read.
#[derive(Default)]
struct Store {
    objects: Mutex<Vec<StoredObject>>,
    generation: AtomicU64,
    /// Whole-token loads (there must be none).
    loads: AtomicUsize,
    /// Searches.
    finds: AtomicUsize,
    /// Generation reads.
    generations: AtomicUsize,
    /// The ids each refresh asked for.
    refreshed: Mutex<Vec<Vec<String>>>,
}

/// A backend over `Store` that says it is `name`.
struct Fake(&'static str, Arc<Store>);

impl Backend for Fake {
    fn name(&self) -> &'static str {
        self.0
    }
    fn tokens(&self) -> Result<Vec<TokenRecord>> {
        Ok(vec![TokenRecord {
            serial: "t".into(),
            label: "t".into(),
            user_pin_initialized: true,
            pin_flags: 0,
        }])
    }
    fn init_token(&self, _: Option<&str>, _: &str, _: &[u8]) -> Result<String> {
        unreachable!()
    }
    fn login(&self, _: &str, _: UserKind, _: &[u8]) -> Result<()> {
        Ok(())
    }
    fn init_pin(&self, _: &str, _: &[u8]) -> Result<()> {
        unreachable!()
    }
    fn set_pin(&self, _: &str, _: UserKind, _: &[u8], _: &[u8]) -> Result<()> {
        unreachable!()
    }
    fn load_objects(&self, _: &str) -> Result<Vec<StoredObject>> {
        self.1.loads.fetch_add(1, Ordering::SeqCst);
        Ok(self.1.objects.lock().unwrap().clone())
    }
    fn store_object(&self, _: &str, _: &Attributes, _: Option<&KeyHandle>) -> Result<String> {
        unreachable!()
    }
    fn update_object(&self, _: &str, _: &str, _: &Attributes) -> Result<()> {
        unreachable!()
    }
    fn destroy_object(&self, _: &str, _: &str) -> Result<()> {
        unreachable!()
    }
    fn generate_random(&self, _: &mut [u8]) -> Result<()> {
        unreachable!()
    }
    fn generation(&self) -> Result<u64> {
        self.1.generations.fetch_add(1, Ordering::SeqCst);
        Ok(self.1.generation.load(Ordering::SeqCst))
    }
    fn find_objects(
        &self,
        _: &str,
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Result<Vec<StoredObject>> {
        self.1.finds.fetch_add(1, Ordering::SeqCst);
        let objects = self.1.objects.lock().unwrap();
        Ok(objects
            .iter()
            .filter(|o| template.iter().all(|(t, v)| o.attrs.get(t) == Some(v)))
            .cloned()
            .collect())
    }
    fn refresh_objects(
        &self,
        _: &str,
        _since: Option<u64>,
        held: &ChangeScope,
    ) -> Result<ObjectChanges> {
        // A store whose journal cannot say what changed: the held ones.
        self.1.refreshed.lock().unwrap().push(held.objects.clone());
        let generation = self.1.generation.load(Ordering::SeqCst);
        let objects = self.1.objects.lock().unwrap();
        Ok(ObjectChanges {
            generation,
            scope: None,
            objects: objects
                .iter()
                .filter(|o| held.objects.contains(&o.id))
                .cloned()
                .collect(),
        })
    }
}

fn public_data(id: &str) -> StoredObject {
    let mut attrs = Attributes::new();
    attrs.insert(CKA_CLASS, ulong(CKO_DATA));
    attrs.insert(CKA_TOKEN, bbool(true));
    attrs.insert(CKA_PRIVATE, bbool(false));
    attrs.insert(CKA_LABEL, id.as_bytes().to_vec());
    StoredObject {
        id: id.into(),
        attrs,
        key: None,
    }
}

/// Store `set` as the store's objects and move its generation.
fn change(store: &Store, set: &[&str]) {
    *store.objects.lock().unwrap() = set.iter().map(|id| public_data(id)).collect();
    store.generation.fetch_add(1, Ordering::SeqCst);
}

fn find_by(
    module: &Module,
    h: CK_SESSION_HANDLE,
    template: Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>,
) -> Vec<CK_OBJECT_HANDLE> {
    module.find_init(h, &template).unwrap();
    let found = module.find_next(h, 100_000).unwrap();
    module.find_final(h).unwrap();
    found
}

fn find(module: &Module, h: CK_SESSION_HANDLE) -> Vec<CK_OBJECT_HANDLE> {
    find_by(module, h, Vec::new())
}

fn label(l: &str) -> Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)> {
    vec![(CKA_LABEL, l.as_bytes().to_vec())]
}

fn invalid(module: &Module, h: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> bool {
    module
        .get_attributes(h, object, &[CKA_LABEL])
        .is_err_and(|e| e.rv() == CKR_OBJECT_HANDLE_INVALID)
}

#[test]
fn a_session_holds_nothing_and_a_search_only_its_matches() {
    let store = Arc::new(Store::default());
    let names: Vec<String> = (0..10_000).map(|i| format!("k{i}")).collect();
    change(
        &store,
        &names.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let module = Module::new(Box::new(Fake("daemon", store.clone()))).unwrap();
    let h = module.open_session(0, CKF_SERIAL_SESSION).unwrap();
    assert_eq!(module.held_objects().unwrap(), 0, "opening loads nothing");
    assert_eq!(store.finds.load(Ordering::SeqCst), 0);
    let one = find_by(&module, h, label("k4242"));
    assert_eq!(one.len(), 1);
    assert_eq!(
        module.held_objects().unwrap(),
        1,
        "a search holds its match"
    );
    assert_eq!(find_by(&module, h, label("k4242")), one, "the same handle");
    assert!(find_by(&module, h, label("absent")).is_empty());
    assert_eq!(module.held_objects().unwrap(), 1);
    assert_eq!(
        store.loads.load(Ordering::SeqCst),
        0,
        "never the whole token"
    );
}

#[test]
fn another_processs_objects_show_at_the_next_search_and_destroyed_handles_go() {
    let store = Arc::new(Store::default());
    change(&store, &["a", "b"]);
    let module = Module::new(Box::new(Fake("daemon", store.clone()))).unwrap();
    let h = module.open_session(0, CKF_SERIAL_SESSION).unwrap();
    let first = find(&module, h);
    assert_eq!(first.len(), 2);
    assert_eq!(find(&module, h), first, "nothing moved: the same handles");
    assert!(
        store.refreshed.lock().unwrap().is_empty(),
        "nothing to refresh"
    );

    // Elsewhere: a destroyed, c made.
    change(&store, &["b", "c"]);
    let c = find_by(&module, h, label("c"));
    assert_eq!(c.len(), 1, "the new object is found");
    assert!(!first.contains(&c[0]));
    assert!(invalid(&module, h, first[0]), "a's handle went");
    assert!(!invalid(&module, h, first[1]), "b's stays");
    // Only the held objects were asked for, by id.
    assert_eq!(
        *store.refreshed.lock().unwrap(),
        vec![vec!["a".to_string(), "b".to_string()]]
    );
    let second = find(&module, h);
    assert_eq!(second, vec![first[1], c[0]], "b keeps its handle");
    assert_eq!(store.loads.load(Ordering::SeqCst), 0);
}

#[test]
fn an_unshared_store_is_searched_but_never_refreshed() {
    let store = Arc::new(Store::default());
    change(&store, &["a"]);
    let module = Module::new(Box::new(Fake("memory", store.clone()))).unwrap();
    let h = module.open_session(0, CKF_SERIAL_SESSION).unwrap();
    let first = find(&module, h);
    assert_eq!(first.len(), 1);
    assert_eq!(find(&module, h), first);
    assert_eq!(store.generations.load(Ordering::SeqCst), 0);
    assert!(store.refreshed.lock().unwrap().is_empty());
    assert_eq!(store.loads.load(Ordering::SeqCst), 0);
}

/// With a real store: opening a session on a token of many keys holds
/// none of them, a label search holds just its match, a key made
/// elsewhere is found by the next search and a key deleted elsewhere
/// loses its handle.
#[test]
fn an_embedded_token_of_many_keys_is_searched_not_loaded() {
    use hsm_core::pkcs11::embedded::EmbeddedBackend;
    use hsm_core::{CreateKeyRequest, Hsm, HsmOptions, KdfParams, SecretString};
    let dir = tempfile::tempdir().unwrap();
    let options = HsmOptions {
        kdf: KdfParams::MINIMUM,
        ..Default::default()
    };
    let hsm = Arc::new(Hsm::init(dir.path(), &SecretString::from("pass"), options).unwrap());
    let backend = EmbeddedBackend::over_hsm(hsm.clone());
    let serial = backend.init_token(None, "tok", b"so-pin-1").unwrap();
    backend.init_pin(&serial, b"user-pin").unwrap();
    let key = |description: &str| {
        hsm.create_key(CreateKeyRequest {
            token: Some("tok".into()),
            description: description.into(),
            ..Default::default()
        })
        .unwrap()
        .key_id
    };
    let ids: Vec<String> = (0..200).map(|i| key(&format!("k{i}"))).collect();
    let module = Module::new(Box::new(backend)).unwrap();
    let h = module.open_session(0, CKF_SERIAL_SESSION).unwrap();
    module.login(h, CKU_USER, b"user-pin").unwrap();
    assert_eq!(module.held_objects().unwrap(), 0, "opening loads nothing");
    let k123 = find_by(&module, h, label("k123"));
    assert_eq!(k123.len(), 1);
    assert_eq!(
        module.held_objects().unwrap(),
        1,
        "a search holds its match"
    );
    let id = module.get_attributes(h, k123[0], &[CKA_ID]).unwrap();
    assert_eq!(
        id,
        vec![crate::object_ops::AttrAnswer::Value(
            ids[123].as_bytes().to_vec()
        )]
    );
    let by_id = find_by(&module, h, vec![(CKA_ID, ids[123].as_bytes().to_vec())]);
    assert_eq!(
        by_id, k123,
        "the same object by its CKA_ID: the same handle"
    );

    // Another process: a key made, and k123 deleted.
    key("new");
    hsm.schedule_key_deletion(&ids[123], Some(7)).unwrap();
    assert_eq!(find_by(&module, h, label("new")).len(), 1);
    assert!(
        invalid(&module, h, k123[0]),
        "the deleted key's handle went"
    );
    assert!(find_by(&module, h, label("k123")).is_empty());
    assert_eq!(module.held_objects().unwrap(), 1);

    // An alias names no key in the journal: the held objects are read
    // again by their ids, and the handle shows the new label.
    let k5 = find_by(&module, h, label("k5"));
    hsm.create_alias("alias/renamed", &ids[5]).unwrap();
    assert_eq!(find_by(&module, h, label("new")).len(), 1);
    assert_eq!(
        module.get_attributes(h, k5[0], &[CKA_LABEL]).unwrap(),
        vec![crate::object_ops::AttrAnswer::Value(b"renamed".to_vec())]
    );
    assert_eq!(find_by(&module, h, label("renamed")), k5);
    assert_eq!(module.held_objects().unwrap(), 2);
}
