//! A store held by several `Hsm`s at once (`Hsm::open_shared`, what the
//! PKCS#11 module's processes use): each follows the others' commits at
//! `sync`, a key disabled by one is refused by the other after it, both
//! extend one audit chain, and an exclusive open (tinfoild) is refused
//! while they hold the store — and they are refused while it does.

mod common;

use std::collections::BTreeMap;

use common::*;
use hsm_core::audit::export::ExportWriter;
use hsm_core::{Caller, CreateKeyRequest, Error, Hsm, KeyState, Principal};

fn root() -> Caller {
    Caller::new(Principal::Root, "shared-store test")
}

#[test]
fn two_shared_handles_follow_each_other_and_extend_one_chain() {
    let t = TestHsm::new();
    let dir = t.dir.clone();
    let clock = t.clock.clone();
    let _closed = t.close();
    let a = Hsm::open_shared(&dir, &passphrase(), options(&clock)).unwrap();
    let b = Hsm::open_shared(&dir, &passphrase(), options(&clock)).unwrap();
    assert!(a.is_shared() && b.is_shared());

    // tinfoild's exclusive open is refused while they hold it.
    let refused = Hsm::open(&dir, &passphrase(), options(&clock)).unwrap_err();
    assert!(
        matches!(&refused, Error::StoreUnavailable(m) if m.contains("in use by another process")),
        "{refused:?}"
    );

    let caller = root();
    let made = a
        .gate(&caller)
        .create_key(CreateKeyRequest::default())
        .unwrap();
    let before = b.generation();
    b.sync().unwrap();
    assert_ne!(b.generation(), before, "b's change counter moved");
    let seen = b.gate(&caller).describe_key(&made.key_id).unwrap();
    assert_eq!(seen.key_state, KeyState::Enabled);
    let context = BTreeMap::new();
    let sealed = b
        .gate(&caller)
        .encrypt(&made.key_id, b"shared", &context, None)
        .unwrap();

    // Nothing moved: sync changes nothing.
    let now = b.generation();
    b.sync().unwrap();
    assert_eq!(b.generation(), now);

    // Disabled through a: b refuses the key once it synced.
    a.gate(&caller).disable_key(&made.key_id).unwrap();
    b.sync().unwrap();
    let err = b
        .gate(&caller)
        .decrypt(&sealed.ciphertext_blob, &context, None, None)
        .unwrap_err();
    assert!(matches!(err, Error::Disabled(_)), "{err:?}");

    // Both appended records; one chain verifies.
    b.gate(&caller).describe_key(&made.key_id).unwrap();
    let export = tempfile::tempdir().unwrap();
    let out = export.path().join("audit");
    let mut writer = ExportWriter::create(&out).unwrap();
    let gate = a.gate(&caller);
    let (mut from, mut to) = (1, 0);
    let key = loop {
        let page = gate.export_audit_log(from, to).unwrap();
        to = page.to_sequence;
        for (size, note) in &page.checkpoints {
            writer.checkpoint(*size, note).unwrap();
        }
        for (sequence, record) in &page.records {
            writer.record(*sequence, record).unwrap();
        }
        match page.next_sequence {
            Some(next) => from = next,
            None => break page.public_key.clone(),
        }
    };
    let origin = key.split('+').next().unwrap().to_string();
    writer.finish(&key, &origin).unwrap();
    let report = hsm_core::audit::verify_dir(&out, &key).expect("one chain");
    assert!(report.records >= 5, "{report}");

    // Once both let go, an exclusive open works, and then shared ones wait
    // and give up.
    drop(a);
    drop(b);
    let alone = Hsm::open(&dir, &passphrase(), options(&clock)).unwrap();
    let err = Hsm::open_shared(&dir, &passphrase(), options(&clock)).unwrap_err();
    assert!(matches!(err, Error::StoreUnavailable(_)), "{err:?}");
    drop(alone);
}
