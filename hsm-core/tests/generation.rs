//! The store's change counter (`Hsm::generation`): it moves on every
//! change a cached view of keys or PKCS#11 objects must notice, and stays
//! put on reads and on refused changes, so readers reload only when needed.

mod common;

use common::{tag, TestHsm};
use hsm_core::token::ObjectRow;
use hsm_core::{Hsm, KeySpec, KeyUsage};

/// Runs `f` and says whether the counter moved.
fn moved(hsm: &Hsm, f: impl FnOnce(&Hsm)) -> bool {
    let before = hsm.generation();
    f(hsm);
    hsm.generation() != before
}

#[test]
fn every_key_and_object_change_moves_the_generation_and_reads_do_not() {
    let t = TestHsm::new();
    let h = &t.hsm;
    let mut key = String::new();
    assert!(moved(h, |_| key = t.symmetric_key("k").key_id));
    assert!(moved(h, |h| h.disable_key(&key).unwrap()));
    assert!(moved(h, |h| h.enable_key(&key).unwrap()));
    assert!(moved(h, |h| h
        .update_key_description(&key, "renamed")
        .unwrap()));
    assert!(moved(h, |h| h.create_alias("alias/gen", &key).unwrap()));
    assert!(moved(h, |h| h.delete_alias("alias/gen").unwrap()));
    assert!(moved(h, |h| h
        .tag_resource(&key, &[tag("a", "b")])
        .unwrap()));
    assert!(moved(h, |h| {
        h.schedule_key_deletion(&key, Some(7)).unwrap();
    }));
    assert!(moved(h, |h| {
        h.cancel_key_deletion(&key).unwrap();
    }));
    let mut serial = String::new();
    assert!(moved(h, |h| serial =
        h.token_init(None, "gen", b"12345678").unwrap()));
    let row = ObjectRow {
        object_id: "o1".into(),
        key_id: None,
        attrs: vec![1, 2, 3],
    };
    assert!(moved(h, |h| h.token_put_object(&serial, &row).unwrap()));
    assert!(moved(h, |h| h.token_delete_object("o1").unwrap()));
    assert!(moved(h, |h| {
        h.p11_create_key_pair(
            "gen",
            KeySpec::EccNistP256,
            hsm_core::token::PairUsages::single(KeyUsage::SignVerify),
            "p",
        )
        .unwrap();
    }));

    // Reads and refused changes leave it alone.
    assert!(!moved(h, |h| {
        h.describe_key(&key).unwrap();
        h.list_token_keys("gen").unwrap();
        h.token_objects(&serial).unwrap();
        h.token_list().unwrap();
    }));
    assert!(!moved(h, |h| {
        h.enable_key("00000000-0000-0000-0000-000000000000")
            .unwrap_err();
        h.delete_alias("alias/absent").unwrap_err();
    }));
}

#[test]
fn a_reopened_store_does_not_repeat_an_earlier_generation() {
    let t = TestHsm::new();
    t.symmetric_key("k");
    let seen = t.hsm.generation();
    let t = t.reopen();
    // As many changes as before the reopening: a counter that restarted
    // from the same origin would read the same again.
    t.symmetric_key("k2");
    assert_ne!(t.hsm.generation(), seen);
}

#[test]
fn changes_since_names_the_keys_and_objects_a_change_touched() {
    use hsm_core::changes::Change;
    let t = TestHsm::new();
    let h = &t.hsm;
    let serial = h.token_init(None, "gen", b"12345678").unwrap();
    let start = h.generation();
    assert_eq!(h.changes_since(start), Some((start, Vec::new())));
    let key = t.symmetric_key("k").key_id;
    h.disable_key(&key).unwrap();
    let row = ObjectRow {
        object_id: "o1".into(),
        key_id: Some(key.clone()),
        attrs: vec![1],
    };
    h.token_put_object(&serial, &row).unwrap();
    let (now, changes) = h.changes_since(start).unwrap();
    assert_eq!(now, h.generation());
    assert_eq!(
        changes,
        vec![Change::Key(key.clone()), Change::Object("o1".into())]
    );
    // An alias names no key (its target's label may change): reload all.
    h.create_alias("alias/gen2", &key).unwrap();
    assert_eq!(h.changes_since(start), None);
    assert_eq!(h.changes_since(h.generation()).unwrap().1, Vec::new());
}

#[test]
fn token_objects_touching_finds_a_keys_rows_and_named_rows_of_that_token_only() {
    let t = TestHsm::new();
    let h = &t.hsm;
    let a = h.token_init(None, "a", b"12345678").unwrap();
    let b = h.token_init(None, "b", b"12345678").unwrap();
    let key = t.symmetric_key("k").key_id;
    let row = |id: &str, key_id: Option<&str>| ObjectRow {
        object_id: id.into(),
        key_id: key_id.map(str::to_string),
        attrs: vec![0],
    };
    h.token_put_object(&a, &row("priv", Some(&key))).unwrap();
    h.token_put_object(&a, &row("pub", Some(&key))).unwrap();
    h.token_put_object(&a, &row("data", None)).unwrap();
    h.token_put_object(&a, &row("other", None)).unwrap();
    h.token_put_object(&b, &row("elsewhere", None)).unwrap();
    let ids = |rows: Vec<ObjectRow>| rows.into_iter().map(|r| r.object_id).collect::<Vec<_>>();
    assert_eq!(
        ids(h
            .token_objects_touching(
                &a,
                std::slice::from_ref(&key),
                &["data".into(), "priv".into()]
            )
            .unwrap()),
        vec!["priv", "pub", "data"]
    );
    assert!(h
        .token_objects_touching(&a, &[], &["elsewhere".into()])
        .unwrap()
        .is_empty());
    let too_many: Vec<String> = (0..=hsm_core::token::MAX_TOUCHED)
        .map(|i| i.to_string())
        .collect();
    assert!(h.token_objects_touching(&a, &too_many, &[]).is_err());
}
