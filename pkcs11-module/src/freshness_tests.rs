//! The object table follows a shared store (`Module::ensure_loaded`): a
//! search reloads only when the backend's generation moved, keeps the
//! handles of objects that remain, and an unshared store never reloads.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cryptoki_sys::*;

use crate::attrs::{bbool, ulong};
use crate::backend::{Attributes, Backend, KeyHandle, StoredObject, TokenRecord, UserKind};
use crate::error::Result;
use crate::module::Module;

/// What the fake store holds and how often it was read.
#[derive(Default)]
struct Store {
    objects: Mutex<Vec<StoredObject>>,
    generation: AtomicU64,
    loads: AtomicUsize,
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
        Ok(self.1.generation.load(Ordering::SeqCst))
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

fn find(module: &Module, h: CK_SESSION_HANDLE) -> Vec<CK_OBJECT_HANDLE> {
    module.find_init(h, &Vec::new()).unwrap();
    let found = module.find_next(h, 100).unwrap();
    module.find_final(h).unwrap();
    found
}

#[test]
fn a_shared_store_reloads_when_its_generation_moves_and_keeps_handles() {
    let store = Arc::new(Store::default());
    change(&store, &["a", "b"]);
    let module = Module::new(Box::new(Fake("daemon", store.clone()))).unwrap();
    let h = module.open_session(0, CKF_SERIAL_SESSION).unwrap();
    let first = find(&module, h);
    assert_eq!(first.len(), 2);
    let loads = store.loads.load(Ordering::SeqCst);
    assert_eq!(find(&module, h), first, "nothing moved: the same handles");
    assert_eq!(store.loads.load(Ordering::SeqCst), loads, "and no reload");

    change(&store, &["b", "c"]);
    let second = find(&module, h);
    assert_eq!(store.loads.load(Ordering::SeqCst), loads + 1);
    assert_eq!(second.len(), 2);
    assert!(second.contains(&first[1]), "b keeps its handle");
    assert!(!second.contains(&first[0]), "a is gone");
    assert_eq!(
        module
            .get_attributes(h, first[0], &[CKA_LABEL])
            .unwrap_err()
            .rv(),
        CKR_OBJECT_HANDLE_INVALID
    );
}

#[test]
fn an_unshared_store_is_loaded_once() {
    let store = Arc::new(Store::default());
    change(&store, &["a"]);
    let module = Module::new(Box::new(Fake("memory", store.clone()))).unwrap();
    let h = module.open_session(0, CKF_SERIAL_SESSION).unwrap();
    let first = find(&module, h);
    change(&store, &["b", "c"]);
    assert_eq!(find(&module, h), first);
    assert_eq!(store.loads.load(Ordering::SeqCst), 1);
}
