//! The store across restarts: everything persists, a wrong passphrase fails
//! cleanly and changes nothing, a passphrase change keeps every key, and a
//! store held by one instance cannot be opened by another.

mod common;

use std::path::Path;

use common::*;
use hsm_core::{Hsm, KeyState};

/// A store with keys in every state and every kind of setting.
struct Populated {
    enabled: String,
    disabled: String,
    pending: String,
    blobs: Vec<(String, Vec<u8>, Vec<u8>)>, // (key id, plaintext, blob)
}

fn populate(t: &TestHsm) -> Populated {
    let context = ctx(&[("tenant", "4711")]);
    let enabled = t.symmetric_key("enabled, rotated, tagged").key_id;
    let disabled = t.symmetric_key("disabled").key_id;
    let pending = t.symmetric_key("pending deletion").key_id;
    let mut blobs = Vec::new();
    for (key, text) in [
        (&enabled, &b"under v1"[..]),
        (&disabled, b"disabled"),
        (&pending, b"pending"),
    ] {
        let blob = ok(t.hsm.encrypt(key, text, &context, None), "encrypt").ciphertext_blob;
        blobs.push((key.clone(), text.to_vec(), blob));
    }
    ok(t.hsm.enable_key_rotation(&enabled, Some(180)), "rotation");
    t.advance_days(1);
    ok(t.hsm.rotate_key_on_demand(&enabled), "rotate");
    let blob = ok(
        t.hsm.encrypt(&enabled, b"under v2", &context, None),
        "encrypt",
    )
    .ciphertext_blob;
    blobs.push((enabled.clone(), b"under v2".to_vec(), blob));
    ok(t.hsm.create_alias("alias/app/main", &enabled), "alias");
    ok(t.hsm.create_alias("alias/app/second", &enabled), "alias");
    ok(t.hsm.create_alias("alias/old", &disabled), "alias");
    ok(
        t.hsm
            .tag_resource(&enabled, &[tag("team", "payments"), tag("empty", "")]),
        "tags",
    );
    ok(
        t.hsm.update_key_description(&disabled, "now disabled"),
        "describe",
    );
    ok(t.hsm.disable_key(&disabled), "disable");
    ok(t.hsm.schedule_key_deletion(&pending, Some(10)), "schedule");
    Populated {
        enabled,
        disabled,
        pending,
        blobs,
    }
}

fn snapshots(t: &TestHsm, p: &Populated) -> Vec<Snapshot> {
    [&p.enabled, &p.disabled, &p.pending]
        .iter()
        .map(|k| t.snapshot(k))
        .collect()
}

fn assert_blobs_decrypt(t: &TestHsm, p: &Populated) {
    let context = ctx(&[("tenant", "4711")]);
    for (key, text, blob) in &p.blobs {
        let r = t.hsm.decrypt(blob, &context, None, None);
        match t.state(key) {
            KeyState::Enabled => assert_eq!(&ok(r, "decrypt").plaintext[..], &text[..]),
            KeyState::Disabled => {
                expect_err(r, "DisabledException");
            }
            KeyState::PendingDeletion => {
                expect_err(r, "KMSInvalidStateException");
            }
        }
    }
}

/// The bytes of every SQLite database file in the store.
fn database_bytes(dir: &Path) -> Vec<Vec<u8>> {
    files_in(dir)
        .iter()
        .map(|f| std::fs::read(f).expect("read"))
        .filter(|b| b.starts_with(b"SQLite format 3\0"))
        .collect()
}

#[test]
fn everything_persists_across_reopen() {
    let t = TestHsm::new();
    let p = populate(&t);
    let before = snapshots(&t, &p);
    let keys_before = t.all_key_ids();
    assert_eq!(keys_before.len(), 3);
    assert_eq!(t.all_aliases(None).len(), 3);

    let t = t.reopen();
    assert_eq!(
        snapshots(&t, &p),
        before,
        "keys, states, versions, aliases, tags, rotation"
    );
    assert_eq!(t.all_key_ids(), keys_before);
    assert_blobs_decrypt(&t, &p);
    let meta = ok(t.hsm.describe_key("alias/app/main"), "alias survives");
    assert_eq!(meta.key_id, p.enabled);
    assert_eq!(meta.current_key_version, 2);
    // New work after a restart uses the newest version.
    let blob = ok(
        t.hsm.encrypt(&p.enabled, b"after", &no_ctx(), None),
        "encrypt",
    )
    .ciphertext_blob;
    assert_eq!(blob_key_version(&blob), 2);

    // The deletion schedule survives and fires on time after a restart.
    let deletion = before[2].metadata.as_ref().unwrap().deletion_date.unwrap();
    t.advance_seconds(deletion - t.now() - 1);
    assert!(t.tick().destroyed.is_empty());
    let t = t.reopen();
    t.advance_seconds(1);
    assert_eq!(t.tick().destroyed.len(), 1);
    expect_err(t.hsm.describe_key(&p.pending), "NotFoundException");

    // The destruction survives too, and so does the rotation schedule.
    let t = t.reopen();
    expect_err(t.hsm.describe_key(&p.pending), "NotFoundException");
    let (_, _, pending_blob) = &p.blobs[2];
    expect_err_in(
        t.hsm
            .decrypt(pending_blob, &ctx(&[("tenant", "4711")]), None, None),
        &["NotFoundException", "InvalidCiphertextException"],
    );
    assert_eq!(t.all_key_ids().len(), 2);
    t.advance_days(180);
    let report = t.tick();
    assert_eq!(report.rotated.len(), 1, "{report:?}");
    assert_eq!(
        ok(t.hsm.describe_key(&p.enabled), "describe").current_key_version,
        3
    );
    assert_eq!(t.state(&p.disabled), KeyState::Disabled);
}

#[test]
fn wrong_passphrase_fails_cleanly_and_changes_nothing() {
    let t = TestHsm::new();
    let p = populate(&t);
    let before = snapshots(&t, &p);
    let closed = t.close();
    let bytes_before = database_bytes(&closed.dir);
    assert!(!bytes_before.is_empty(), "found the database file");

    for wrong in [
        "wrong",
        "correct horse battery stapl",
        "correct horse battery staple ",
        "CORRECT HORSE BATTERY STAPLE",
    ] {
        expect_err(
            closed.try_open(&secret(wrong)),
            "IncorrectPassphraseException",
        );
    }
    assert_eq!(
        database_bytes(&closed.dir),
        bytes_before,
        "a failed open wrote to the store"
    );

    let t = closed.open(&passphrase());
    assert_eq!(snapshots(&t, &p), before);
    assert_blobs_decrypt(&t, &p);
}

#[test]
fn change_passphrase_keeps_every_key() {
    let t = TestHsm::new();
    let p = populate(&t);
    let before = snapshots(&t, &p);
    let new = secret("a much better passphrase, 2026");
    ok(t.hsm.change_passphrase(&new), "change_passphrase");
    // The open handle keeps working.
    assert_blobs_decrypt(&t, &p);
    ok(t.hsm.encrypt(&p.enabled, b"x", &no_ctx(), None), "encrypt");

    let closed = t.close();
    expect_err(
        closed.try_open(&passphrase()),
        "IncorrectPassphraseException",
    );
    let t = closed.open(&new);
    assert_eq!(snapshots(&t, &p), before);
    assert_blobs_decrypt(&t, &p);

    // And back again: the old passphrase works once it is set again.
    ok(t.hsm.change_passphrase(&passphrase()), "change back");
    let closed = t.close();
    expect_err(closed.try_open(&new), "IncorrectPassphraseException");
    let t = closed.open(&passphrase());
    assert_eq!(snapshots(&t, &p), before);
}

#[test]
fn a_second_instance_cannot_open_a_held_store() {
    let t = TestHsm::new();
    let key = t.symmetric_key("held").key_id;
    let blob = ok(t.hsm.encrypt(&key, b"held", &no_ctx(), None), "encrypt").ciphertext_blob;
    expect_err(t.open_again(&passphrase()), "StoreUnavailableException");
    // Nor can a second init take it over.
    expect_err_in(
        Hsm::init(&t.dir, &passphrase(), options(&t.clock)),
        &["AlreadyExistsException", "StoreUnavailableException"],
    );
    // The holder is unaffected.
    assert_eq!(decrypt_ok(&t.hsm, &blob, &no_ctx()), b"held");
    ok(t.hsm.create_key(Default::default()), "holder still writes");

    // Once it lets go, the store opens again.
    let t = t.reopen();
    assert_eq!(decrypt_ok(&t.hsm, &blob, &no_ctx()), b"held");
    assert_eq!(t.all_key_ids().len(), 2);
}

#[test]
fn init_never_overwrites_a_store_and_open_needs_one() {
    let t = TestHsm::new();
    let key = t.symmetric_key("precious").key_id;
    let blob = ok(t.hsm.encrypt(&key, b"precious", &no_ctx(), None), "encrypt").ciphertext_blob;
    assert!(Hsm::is_initialized(&t.dir));
    let closed = t.close();
    let clock = closed.clock.clone();

    expect_err(
        Hsm::init(&closed.dir, &secret("another passphrase"), options(&clock)),
        "AlreadyExistsException",
    );
    expect_err(
        closed.try_open(&secret("another passphrase")),
        "IncorrectPassphraseException",
    );
    let t = closed.open(&passphrase());
    assert_eq!(decrypt_ok(&t.hsm, &blob, &no_ctx()), b"precious");
    assert_eq!(t.all_key_ids(), [key]);

    let empty = tempfile::tempdir().unwrap();
    assert!(!Hsm::is_initialized(empty.path()));
    assert!(!Hsm::is_initialized(&empty.path().join("missing")));
    expect_err(
        Hsm::open(empty.path(), &passphrase(), options(&clock)),
        "StoreUnavailableException",
    );
    expect_err(
        Hsm::open(
            &empty.path().join("missing"),
            &passphrase(),
            options(&clock),
        ),
        "StoreUnavailableException",
    );
    assert!(
        !Hsm::is_initialized(empty.path()),
        "a failed open created a store"
    );
}

#[cfg(unix)]
#[test]
fn the_data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestHsm::new();
    let mode = std::fs::metadata(&t.dir).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o700,
        "data directory mode {:o}",
        mode & 0o777
    );
}

/// A store written by a newer Tinfoil is refused with a clear error, not
/// opened and not "migrated" backwards. (The schema version is SQLite's
/// `user_version`, the standard place for it.)
#[test]
fn a_newer_schema_is_refused() {
    let t = TestHsm::new();
    t.symmetric_key("from the future");
    let closed = t.close();
    let db = files_in(&closed.dir)
        .into_iter()
        .find(|f| {
            std::fs::read(f)
                .map(|b| b.starts_with(b"SQLite format 3\0"))
                .unwrap_or(false)
        })
        .expect("database file");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let version: u32 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert!(version >= 1, "the store records a schema version");
        conn.pragma_update(None, "user_version", version + 100)
            .unwrap();
    }
    let e = expect_err(closed.try_open(&passphrase()), "StoreUnavailableException");
    assert!(
        e.to_string().contains("newer") || e.to_string().contains("version"),
        "{e}"
    );
}

#[test]
fn init_with_an_empty_passphrase_leaves_no_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let clock = std::sync::Arc::new(hsm_core::ManualClock::new(T0));
    let r = Hsm::init(&dir, &secret(""), options(&clock));
    assert!(r.is_err(), "an empty passphrase sealed a store");
    assert!(!Hsm::is_initialized(&dir));
    ok(
        Hsm::init(&dir, &passphrase(), options(&clock)),
        "init after a refusal",
    );
}

/// Sealing binds each wrapped version to its key: B's wrapped row copied
/// over A's must not unwrap as A (found without knowing the schema).
#[test]
fn a_wrapped_row_copied_onto_another_key_does_not_unwrap() {
    let t = TestHsm::new();
    let closed = t.close();
    let s0 = sqlite_blobs(&closed.dir, 32);
    let t = closed.open(&passphrase());
    let a = t.symmetric_key("a").key_id;
    let a_blob = ok(t.hsm.encrypt(&a, b"under a", &no_ctx(), None), "encrypt").ciphertext_blob;
    let closed = t.close();
    let s1 = sqlite_blobs(&closed.dir, 32);
    let t = closed.open(&passphrase());
    let b = t.symmetric_key("b").key_id;
    let b_blob = ok(t.hsm.encrypt(&b, b"under b", &no_ctx(), None), "encrypt").ciphertext_blob;
    let closed = t.close();
    let s2 = sqlite_blobs(&closed.dir, 32);
    let a_rows: Vec<_> = s1.difference(&s0).collect();
    let b_rows: Vec<_> = s2.difference(&s1).collect();
    assert_eq!(a_rows.len(), 1, "one wrapped version for a");
    assert_eq!(b_rows.len(), 1, "one wrapped version for b");
    assert_eq!(replace_blob(&closed.dir, a_rows[0], b_rows[0]), 1);

    // Whether the store refuses to open or refuses to use key a, key a
    // must never work with b's material.
    let opened = closed.try_open(&passphrase());
    if let Err(e) = &opened {
        assert_ne!(e.kms_name(), "IncorrectPassphraseException", "{e}");
    }
    if let Ok(hsm) = opened {
        assert!(
            hsm.encrypt(&a, b"x", &no_ctx(), None).is_err(),
            "a used b's material"
        );
        assert!(hsm.decrypt(&a_blob, &no_ctx(), None, None).is_err());
        let out = ok(hsm.decrypt(&b_blob, &no_ctx(), None, None), "b is intact");
        assert_eq!(&out.plaintext[..], b"under b");
    }
}

/// Changing the passphrase rewraps only the root key: every key version's
/// wrapped material stays byte for byte as it was.
#[test]
fn change_passphrase_rewraps_only_the_root_key() {
    let t = TestHsm::new();
    let closed = t.close();
    let s0 = sqlite_blobs(&closed.dir, 32);
    let t = closed.open(&passphrase());
    let key = t.symmetric_key("k").key_id;
    ok(t.hsm.rotate_key_on_demand(&key), "rotate");
    let closed = t.close();
    let s1 = sqlite_blobs(&closed.dir, 32);
    let material: Vec<_> = s1.difference(&s0).cloned().collect();
    assert_eq!(material.len(), 2, "two wrapped versions");

    let t = closed.open(&passphrase());
    ok(
        t.hsm.change_passphrase(&secret("next passphrase")),
        "change",
    );
    let closed = t.close();
    let s2 = sqlite_blobs(&closed.dir, 32);
    for m in &material {
        assert!(s2.contains(m), "a key version was rewrapped");
    }
    assert_ne!(s1, s2, "the root key was not rewrapped");
    assert!(
        s1.difference(&s2).count() <= 3,
        "more than the root key changed"
    );
}

/// The KDF parameters are stored beside the wrapped root key: opening with
/// other parameters in the options still unseals the store.
#[test]
fn open_uses_the_stored_kdf_parameters() {
    let t = TestHsm::new();
    let key = t.symmetric_key("kdf").key_id;
    let blob = ok(t.hsm.encrypt(&key, b"kdf", &no_ctx(), None), "encrypt").ciphertext_blob;
    let closed = t.close();
    let mut other = options(&closed.clock);
    other.kdf = hsm_core::KdfParams {
        memory_kib: 16384,
        iterations: 2,
        parallelism: 1,
    };
    let hsm = ok(Hsm::open(&closed.dir, &passphrase(), other), "open");
    let out = ok(hsm.decrypt(&blob, &no_ctx(), None, None), "decrypt");
    assert_eq!(&out.plaintext[..], b"kdf");
}
