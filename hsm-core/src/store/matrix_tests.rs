//! The store test matrix: every case runs on both engines, SQLite (a
//! temporary directory) and PostgreSQL (a new database of a throwaway
//! cluster, see `test_cluster`). Each case is a function taking the
//! [`Engine`]; `on_sqlite` and `on_postgres` run the whole list.

use std::sync::Arc;

use secrecy::SecretString;

use super::pg;
use super::test_cluster::Cluster;
use crate::clock::{Clock, ManualClock, DAY};
use crate::outputs::CreateKeyRequest;
use crate::{Caller, EncryptionContext, Error, Hsm, HsmOptions, KdfParams, Principal, Tag};

const T0: i64 = 1_700_000_000;

/// Where a case's stores live.
enum Engine<'a> {
    Sqlite,
    Postgres(&'a Cluster),
}

/// A new, empty place for one store.
enum Place {
    Dir(tempfile::TempDir),
    Url(String),
}

fn options(clock: Arc<ManualClock>) -> HsmOptions {
    HsmOptions {
        kdf: KdfParams {
            memory_kib: 8192,
            iterations: 1,
            parallelism: 1,
        },
        clock,
        cache_capacity: 16,
        account: Default::default(),
    }
}

fn pass() -> SecretString {
    SecretString::from("matrix passphrase")
}

impl Engine<'_> {
    fn place(&self) -> Place {
        match self {
            Engine::Sqlite => Place::Dir(tempfile::tempdir().unwrap()),
            Engine::Postgres(cluster) => Place::Url(cluster.new_database()),
        }
    }

    fn init(&self, place: &Place, clock: &Arc<ManualClock>) -> crate::Result<Hsm> {
        match place {
            Place::Dir(dir) => Hsm::init(dir.path(), &pass(), options(clock.clone())),
            Place::Url(url) => Hsm::init_postgres(url, None, &pass(), options(clock.clone())),
        }
    }

    fn open(
        &self,
        place: &Place,
        passphrase: &SecretString,
        clock: &Arc<ManualClock>,
    ) -> crate::Result<Hsm> {
        match place {
            Place::Dir(dir) => Hsm::open(dir.path(), passphrase, options(clock.clone())),
            Place::Url(url) => Hsm::open_postgres(url, None, passphrase, options(clock.clone())),
        }
    }

    /// A new store on this engine, its place and clock.
    fn fresh(&self) -> (Hsm, Place, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(T0));
        let place = self.place();
        let hsm = self.init(&place, &clock).unwrap();
        (hsm, place, clock)
    }
}

fn root() -> Caller {
    Caller::new(Principal::Root, "matrix-test")
}

fn ctx() -> EncryptionContext {
    [("purpose".to_string(), "matrix".to_string())].into()
}

/// Create, describe, disable (refused), enable, encrypt/decrypt, rotate
/// (old ciphertexts still decrypt), schedule and cancel deletion, purge.
fn key_lifecycle(engine: &Engine<'_>) {
    let (hsm, _place, clock) = engine.fresh();
    let caller = root();
    let gate = hsm.gate(&caller);
    let key = gate
        .create_key(CreateKeyRequest {
            description: "lifecycle".into(),
            ..Default::default()
        })
        .unwrap();
    let meta = gate.describe_key(&key.key_id).unwrap();
    assert_eq!(meta.description, "lifecycle");
    assert_eq!(meta.current_key_version, 1);
    let old = gate.encrypt(&key.key_id, b"hello", &ctx(), None).unwrap();

    gate.disable_key(&key.key_id).unwrap();
    assert!(matches!(
        gate.encrypt(&key.key_id, b"x", &ctx(), None),
        Err(Error::Disabled(_))
    ));
    gate.enable_key(&key.key_id).unwrap();

    gate.rotate_key_on_demand(&key.key_id).unwrap();
    assert_eq!(
        gate.describe_key(&key.key_id).unwrap().current_key_version,
        2
    );
    let new = gate.encrypt(&key.key_id, b"world", &ctx(), None).unwrap();
    for (blob, plain) in [(&old, &b"hello"[..]), (&new, &b"world"[..])] {
        let out = gate
            .decrypt(&blob.ciphertext_blob, &ctx(), None, None)
            .unwrap();
        assert_eq!(&out.plaintext[..], plain);
    }

    gate.schedule_key_deletion(&key.key_id, Some(7)).unwrap();
    assert!(matches!(
        gate.encrypt(&key.key_id, b"x", &ctx(), None),
        Err(Error::InvalidState(_))
    ));
    gate.cancel_key_deletion(&key.key_id).unwrap();
    gate.enable_key(&key.key_id).unwrap();
    let scheduled = gate.schedule_key_deletion(&key.key_id, Some(7)).unwrap();
    assert!(hsm
        .tick(scheduled.deletion_date - 1)
        .unwrap()
        .destroyed
        .is_empty());
    clock.set(scheduled.deletion_date);
    let report = hsm.tick(scheduled.deletion_date).unwrap();
    assert_eq!(report.destroyed.len(), 1);
    assert!(matches!(
        gate.describe_key(&key.key_id),
        Err(Error::NotFound(_))
    ));
    assert!(gate
        .decrypt(&old.ciphertext_blob, &ctx(), None, None)
        .is_err());
}

/// Aliases (create, resolve, page, update, delete) and tags.
fn aliases_and_tags(engine: &Engine<'_>) {
    let (hsm, _place, _clock) = engine.fresh();
    let caller = root();
    let gate = hsm.gate(&caller);
    let a = gate.create_key(CreateKeyRequest::default()).unwrap().key_id;
    let b = gate.create_key(CreateKeyRequest::default()).unwrap().key_id;
    for n in 0..5 {
        gate.create_alias(&format!("alias/m{n}"), &a).unwrap();
    }
    assert!(matches!(
        gate.create_alias("alias/m0", &b),
        Err(Error::AlreadyExists(_))
    ));
    let mut names = Vec::new();
    let mut marker = None;
    loop {
        let page = gate.list_aliases(None, Some(2), marker.as_deref()).unwrap();
        names.extend(page.items.iter().map(|e| e.alias_name.clone()));
        marker = page.next_marker;
        if marker.is_none() {
            break;
        }
    }
    let want: Vec<String> = (0..5).map(|n| format!("alias/m{n}")).collect();
    assert_eq!(names, want);
    let out = gate
        .encrypt("alias/m3", b"via alias", &ctx(), None)
        .unwrap();
    assert!(out.key_id.ends_with(&a));
    gate.update_alias("alias/m3", &b).unwrap();
    let out = gate
        .encrypt("alias/m3", b"via alias", &ctx(), None)
        .unwrap();
    assert!(out.key_id.ends_with(&b));
    gate.delete_alias("alias/m3").unwrap();
    assert!(matches!(
        gate.encrypt("alias/m3", b"x", &ctx(), None),
        Err(Error::NotFound(_))
    ));

    let tag = |k: &str, v: &str| Tag {
        tag_key: k.into(),
        tag_value: v.into(),
    };
    gate.tag_resource(&a, &[tag("team", "core"), tag("env", "test")])
        .unwrap();
    gate.untag_resource(&a, &["env".to_string()]).unwrap();
    let tags = gate.list_resource_tags(&a, None, None).unwrap().items;
    assert_eq!(tags, vec![tag("team", "core")]);
}

/// Keys page in order; everything is there after reopening; a wrong
/// passphrase and a second init are refused.
fn reopen_and_pages(engine: &Engine<'_>) {
    let (hsm, place, clock) = engine.fresh();
    let caller = root();
    let mut ids: Vec<String> = (0..5)
        .map(|_| {
            hsm.gate(&caller)
                .create_key(CreateKeyRequest::default())
                .unwrap()
                .key_id
        })
        .collect();
    ids.sort();
    let blob = hsm
        .gate(&caller)
        .encrypt(&ids[0], b"kept", &ctx(), None)
        .unwrap();
    drop(hsm);
    assert!(matches!(
        engine.open(&place, &SecretString::from("wrong"), &clock),
        Err(Error::IncorrectPassphrase)
    ));
    assert!(matches!(
        engine.init(&place, &clock),
        Err(Error::AlreadyExists(_))
    ));
    let hsm = engine.open(&place, &pass(), &clock).unwrap();
    let gate = hsm.gate(&caller);
    let mut seen = Vec::new();
    let mut marker = None;
    loop {
        let page = gate.list_keys(Some(2), marker.as_deref()).unwrap();
        seen.extend(page.items.iter().map(|k| k.key_id.clone()));
        marker = page.next_marker;
        if marker.is_none() {
            break;
        }
    }
    assert_eq!(seen, ids);
    let out = gate
        .decrypt(&blob.ciphertext_blob, &ctx(), None, None)
        .unwrap();
    assert_eq!(&out.plaintext[..], b"kept");
}

/// Scheduled rotation through the tick (the due-date index).
fn automatic_rotation(engine: &Engine<'_>) {
    let (hsm, _place, clock) = engine.fresh();
    let caller = root();
    let gate = hsm.gate(&caller);
    let key = gate.create_key(CreateKeyRequest::default()).unwrap().key_id;
    gate.enable_key_rotation(&key, Some(90)).unwrap();
    assert!(hsm.tick(T0 + 89 * DAY).unwrap().rotated.is_empty());
    clock.set(T0 + 90 * DAY);
    assert_eq!(hsm.tick(T0 + 90 * DAY).unwrap().rotated.len(), 1);
    assert_eq!(gate.describe_key(&key).unwrap().current_key_version, 2);
}

/// The audit chain: one record per gated call, consecutive sequences,
/// and the head survives reopening.
fn audit_chain(engine: &Engine<'_>) {
    let (hsm, place, clock) = engine.fresh();
    let caller = root();
    let before = hsm.audit_log().state().head_sequence;
    let key = new_key(&hsm, &caller);
    for _ in 0..3 {
        hsm.gate(&caller)
            .encrypt(&key, b"audited", &ctx(), None)
            .unwrap();
    }
    hsm.gate(&caller).disable_key(&key).unwrap();
    let head = hsm.audit_log().state().head_sequence;
    assert_eq!(head, before + 5);
    let sequences: Vec<i64> = hsm
        .lock_store()
        .read(|db| {
            db.all(
                "SELECT sequence FROM audit_records ORDER BY sequence",
                &[],
                |r| r.get(0),
            )
        })
        .unwrap();
    let want: Vec<i64> = (1..=head as i64).collect();
    assert_eq!(sequences, want);
    drop(hsm);
    let hsm = engine.open(&place, &pass(), &clock).unwrap();
    assert_eq!(hsm.audit_log().state().head_sequence, head);
}

/// Concurrent audited calls are group-committed (on PostgreSQL a batch's
/// records go in one multi-row statement): every record is written once,
/// in one gapless chain that verifies, and a reopened store has the same
/// head.
fn audit_group_commit(engine: &Engine<'_>) {
    let (hsm, place, clock) = engine.fresh();
    let caller = root();
    let key = new_key(&hsm, &caller);
    let before = hsm.audit_log().state().head_sequence;
    let (threads, calls) = (8, 16);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let gate = hsm.gate(&caller);
                for _ in 0..calls {
                    gate.encrypt(&key, b"grouped", &ctx(), None).unwrap();
                }
            });
        }
    });
    let head = hsm.audit_log().state().head_sequence;
    assert_eq!(head, before + threads * calls);
    let (sequences, encrypts, last) = checked_chain(&hsm, &caller);
    assert_eq!(sequences, (1..=head as i64).collect::<Vec<_>>());
    assert_eq!(encrypts, (threads * calls) as i64);
    assert!(last >= head, "{last} < {head}");
    drop(hsm);
    let hsm = engine.open(&place, &pass(), &clock).unwrap();
    assert!(hsm.audit_log().state().head_sequence >= head);
}

/// A group-commit leader waits for the records of calls already running
/// (on their way), so that they join its batch: with a call held inside
/// the gate, an Encrypt's record leads and waits (its own entry still
/// queued); once the held call ends, both records go in one transaction.
/// The wait is bounded: a record that does not come in time is left to
/// the next batch. No path leaves a record counted on its way (a state
/// change written in its own transaction, a deferred record, a failed
/// call, a panic), or every later leader would wait its whole bound.
fn audit_leader_waits_for_records_on_their_way(engine: &Engine<'_>) {
    let (hsm, _place, _clock) = engine.fresh();
    let caller = root();
    let key = new_key(&hsm, &caller);
    let log = Arc::clone(hsm.audit_log());
    assert_eq!(log.coming(), 0);
    let bound = std::time::Duration::from_secs(30);
    let held_call = |release: std::sync::mpsc::Receiver<()>| {
        hsm.gate(&caller)
            .record(&crate::gate::Request::account("kms:ListKeys"), || {
                release.recv().ok();
                Ok(())
            })
    };

    // Joined: a leader waits (up to 30 s here) for the held call's record.
    log.set_linger(bound);
    let (appended, batches) = log.counters();
    std::thread::scope(|s| {
        let (release, held) = std::sync::mpsc::channel();
        let on_its_way = s.spawn(|| held_call(held));
        wait_until(bound, || log.coming() == 1).expect("the held call is counted");
        let leader = s.spawn(|| hsm.gate(&caller).encrypt(&key, b"x", &ctx(), None));
        wait_until(bound, || log.group_state() == (true, 1))
            .expect("the leader waits with its own record still queued");
        release.send(()).unwrap();
        on_its_way.join().unwrap().unwrap();
        leader.join().unwrap().unwrap();
    });
    assert_eq!(
        log.counters(),
        (appended + 2, batches + 1),
        "both records in one transaction"
    );

    // Bounded: a record that is not coming in time is not waited for.
    log.set_linger(std::time::Duration::from_millis(20));
    std::thread::scope(|s| {
        let (release, held) = std::sync::mpsc::channel();
        let on_its_way = s.spawn(|| held_call(held));
        wait_until(bound, || log.coming() == 1).expect("the held call is counted");
        // Returns while the held call is still running.
        hsm.gate(&caller).encrypt(&key, b"x", &ctx(), None).unwrap();
        assert_eq!(log.coming(), 1, "the held call is still on its way");
        release.send(()).unwrap();
        on_its_way.join().unwrap().unwrap();
    });

    // Every path ends its count.
    hsm.gate(&caller)
        .create_key(CreateKeyRequest::default())
        .unwrap();
    hsm.gate(&caller).disable_key(&key).unwrap();
    hsm.gate(&caller)
        .encrypt(&key, b"x", &ctx(), None)
        .expect_err("the key is disabled");
    hsm.gate(&caller).enable_key(&key).unwrap();
    let (result, durability) = crate::audit::defer_durability(|| {
        let gate = hsm.gate(&caller);
        (
            gate.encrypt(&key, b"a", &ctx(), None),
            gate.encrypt(&key, b"b", &ctx(), None),
        )
    });
    assert_eq!(log.coming(), 2, "two deferred records are on their way");
    durability
        .expect("two records to wait for")
        .wait(&hsm)
        .unwrap();
    result.0.unwrap();
    result.1.unwrap();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        hsm.gate(&caller).record(
            &crate::gate::Request::account("kms:ListKeys"),
            || -> crate::Result<()> { panic!("a call that panics") },
        )
    }));
    assert!(panicked.is_err());
    assert_eq!(log.coming(), 0, "no record is left counted on its way");
}

/// CreateKeys are group-committed: with the store held, the first
/// CreateKey leads (waiting for the store) while three more queue; once
/// released, the three share one transaction (on PostgreSQL one INSERT
/// per table), each key's CreateKey record names its own key, and every
/// key is in the store after a reopen. An insert that fails inside a
/// shared batch (a key id already taken) fails its caller only: the
/// batch is rolled back and each entry written alone, so the others
/// commit and the failing one changes nothing.
fn create_key_group_commit(engine: &Engine<'_>) {
    let (hsm, place, clock) = engine.fresh();
    let caller = root();
    let log = Arc::clone(hsm.audit_log());
    let bound = std::time::Duration::from_secs(30);
    let wait_for = |what: &str, want: (bool, usize)| {
        wait_until(bound, || log.group_state() == want)
            .unwrap_or_else(|| panic!("{what}: group {:?}, not {want:?}", log.group_state()));
    };
    let create = || {
        hsm.gate(&caller)
            .create_key(CreateKeyRequest::default())
            .map(|m| m.key_id)
    };
    let (appended, batches) = log.counters();
    let ids: Vec<String> = std::thread::scope(|s| {
        let held = hsm.lock_store();
        let leader = s.spawn(create);
        wait_for("the leader", (true, 0));
        let queued: Vec<_> = (0..3).map(|_| s.spawn(create)).collect();
        wait_for("three queued", (true, 3));
        drop(held);
        std::iter::once(leader)
            .chain(queued)
            .map(|t| t.join().unwrap().expect("a grouped CreateKey"))
            .collect()
    });
    let (appended_now, batches_now) = log.counters();
    assert_eq!(
        (appended_now - appended, batches_now - batches),
        (4, 2),
        "four records in two transactions: the leader's, then the three queued"
    );
    let named: Vec<(String, String)> = hsm
        .lock_store()
        .read(|db| {
            db.all(
                "SELECT resource_id, record FROM audit_records WHERE event_name = 'CreateKey'",
                &[],
                |r| Ok((r.get::<Option<String>>(0)?.unwrap_or_default(), r.get(1)?)),
            )
        })
        .unwrap();
    for id in &ids {
        let records: Vec<_> = named.iter().filter(|(r, _)| r == id).collect();
        assert_eq!(
            records.len(),
            1,
            "one CreateKey record names {id}: {named:?}"
        );
        assert!(
            records[0].1.contains(&format!("\"keyId\":\"{id}\"")),
            "{}",
            records[0].1
        );
    }

    // A failing insert among good ones: a "new" key whose id is taken.
    let taken = hsm.read_state().key(&ids[0]).unwrap().as_ref().clone();
    let clash = || {
        let mut record = taken.clone();
        record.description = "not the original".into();
        crate::store::NewKey {
            record,
            wrapped: vec![0; 40],
            policy: None,
        }
    };
    let (outcomes, bad) = std::thread::scope(|s| {
        let held = hsm.lock_store();
        let leader = s.spawn(create);
        wait_for("the leader", (true, 0));
        let good = s.spawn(create);
        wait_for("one queued", (true, 1));
        let bad = s.spawn(|| log.commit_grouped(&hsm, Some(clash()), None, None));
        wait_for("two queued", (true, 2));
        drop(held);
        (
            [leader.join().unwrap(), good.join().unwrap()],
            bad.join().unwrap(),
        )
    });
    let bad = bad.expect_err("the clashing key fails its caller");
    assert!(
        bad.to_string().contains("the key could not be stored"),
        "{bad}"
    );
    let good: Vec<String> = outcomes
        .into_iter()
        .map(|o| o.expect("the others commit"))
        .collect();
    let description = |hsm: &Hsm| {
        hsm.lock_store()
            .read(|db| {
                db.first(
                    "SELECT description FROM keys WHERE key_id = ?1",
                    &crate::store::engine::vals![&ids[0]],
                    |r| r.get::<String>(0),
                )
            })
            .unwrap()
    };
    assert_eq!(description(&hsm), Some(taken.description.clone()));
    drop(hsm);
    let hsm = engine.open(&place, &pass(), &clock).unwrap();
    for id in ids.iter().chain(&good) {
        hsm.gate(&caller)
            .describe_key(id)
            .unwrap_or_else(|e| panic!("{id} after a reopen: {e}"));
    }
    assert_eq!(description(&hsm), Some(taken.description.clone()));
}

/// PKCS#11 token rows: a token made, its label kept unique, PINs counted
/// (wrong, right, locked), object rows stored, found (all, by key, by
/// id), replaced (then last, as a new row), deleted, and cleared by a
/// re-initialisation.
fn token_rows(engine: &Engine<'_>) {
    use crate::token::{ObjectRow, PinError, PinUser, MAX_PIN_FAILURES};
    let (hsm, _place, _clock) = engine.fresh();
    let serial = hsm.token_init(None, "tok", b"so-pin-1").unwrap();
    assert!(matches!(
        hsm.token_init(None, "tok", b"so-pin-2"),
        Err(PinError::Engine(Error::AlreadyExists(_)))
    ));
    let other = hsm.token_init(None, "other", b"so-pin-2").unwrap();
    let labels: Vec<String> = hsm
        .token_list()
        .unwrap()
        .into_iter()
        .map(|t| t.label)
        .collect();
    assert_eq!(labels.len(), 2);
    assert!(labels.contains(&"tok".to_string()) && labels.contains(&"other".to_string()));

    assert!(matches!(
        hsm.token_check_pin(&serial, PinUser::User, b"user-pin"),
        Err(PinError::NotInitialized)
    ));
    hsm.token_set_pin(&serial, PinUser::User, b"user-pin")
        .unwrap();
    assert!(matches!(
        hsm.token_check_pin(&serial, PinUser::User, b"wrong-pin"),
        Err(PinError::Incorrect)
    ));
    let info = |serial: &str| {
        hsm.token_list()
            .unwrap()
            .into_iter()
            .find(|t| t.serial == serial)
            .unwrap()
    };
    assert_eq!(info(&serial).user_failures, 1);
    assert!(info(&serial).user_pin_initialized);
    hsm.token_check_pin(&serial, PinUser::User, b"user-pin")
        .unwrap();
    assert_eq!(info(&serial).user_failures, 0);
    for _ in 1..MAX_PIN_FAILURES {
        assert!(matches!(
            hsm.token_check_pin(&serial, PinUser::So, b"wrong-pin"),
            Err(PinError::Incorrect)
        ));
    }
    assert!(matches!(
        hsm.token_check_pin(&serial, PinUser::So, b"wrong-pin"),
        Err(PinError::Locked)
    ));
    assert!(matches!(
        hsm.token_check_pin(&serial, PinUser::So, b"so-pin-1"),
        Err(PinError::Locked)
    ));
    hsm.token_set_pin(&serial, PinUser::So, b"so-pin-3")
        .unwrap();
    hsm.token_check_pin(&serial, PinUser::So, b"so-pin-3")
        .unwrap();
    assert!(matches!(
        hsm.token_set_pin("0000000000000000", PinUser::So, b"so-pin-3"),
        Err(PinError::Engine(Error::NotFound(_)))
    ));

    let key = hsm
        .p11_create_aes_key("tok", 32, "token key", false)
        .unwrap();
    let row = |id: &str, key_id: Option<&str>, attrs: &[u8]| ObjectRow {
        object_id: id.to_string(),
        key_id: key_id.map(str::to_string),
        attrs: attrs.to_vec(),
    };
    let generation = hsm.generation();
    hsm.token_put_object(&serial, &row("o1", Some(&key.key_id), b"first"))
        .unwrap();
    hsm.token_put_object(&serial, &row("o2", None, b"second"))
        .unwrap();
    hsm.token_put_object(&serial, &row("o3", None, b"third"))
        .unwrap();
    hsm.token_put_object(&other, &row("x1", None, b"elsewhere"))
        .unwrap();
    let (_, changed) = hsm.changes_since(generation).unwrap();
    assert!(changed.contains(&crate::changes::Change::Object("o2".into())));
    let ids = |serial: &str| -> Vec<String> {
        hsm.token_objects(serial)
            .unwrap()
            .into_iter()
            .map(|r| r.object_id)
            .collect()
    };
    assert_eq!(ids(&serial), ["o1", "o2", "o3"]);
    assert_eq!(ids(&other), ["x1"]);
    // Replaced: new attributes, and it comes last.
    hsm.token_put_object(&serial, &row("o2", None, b"second, changed"))
        .unwrap();
    let rows = hsm.token_objects(&serial).unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| r.object_id.as_str())
            .collect::<Vec<_>>(),
        ["o1", "o3", "o2"]
    );
    assert_eq!(rows[2].attrs, b"second, changed");
    assert_eq!(rows[0].key_id.as_deref(), Some(key.key_id.as_str()));
    let touching = hsm
        .token_objects_touching(
            &serial,
            std::slice::from_ref(&key.key_id),
            &["o3".into(), "x1".into()],
        )
        .unwrap();
    assert_eq!(
        touching
            .iter()
            .map(|r| r.object_id.as_str())
            .collect::<Vec<_>>(),
        ["o1", "o3"],
        "by key, by id, and never another token's row"
    );
    hsm.token_delete_object("o3").unwrap();
    assert_eq!(ids(&serial), ["o1", "o2"]);
    assert!(hsm
        .token_put_object("0000000000000000", &row("o9", None, b""))
        .is_err());
    // Re-initialised: its objects go, its label may change.
    hsm.token_init(Some(&serial), "renamed", b"so-pin-3")
        .unwrap();
    assert!(ids(&serial).is_empty());
    assert_eq!(info(&serial).label, "renamed");
    assert!(!info(&serial).user_pin_initialized);
    assert_eq!(ids(&other), ["x1"]);
}

/// The audit log read back: LookupEvents by attribute and newest first,
/// an export that the offline verifier accepts, pruning only what an
/// export confirmed, and an export of the pruned log that still verifies
/// from its anchoring checkpoint.
fn audit_export_and_prune(engine: &Engine<'_>) {
    use crate::audit::{verify_dir, LookupAttribute, LookupEventsRequest};
    let (hsm, _place, clock) = engine.fresh();
    let caller = root();
    let gate = hsm.gate(&caller);
    let key = gate.create_key(CreateKeyRequest::default()).unwrap().key_id;
    for i in 0..12 {
        gate.encrypt(&key, b"audited", &ctx(), None).unwrap();
        if i % 4 == 3 {
            clock.advance(61);
        }
    }
    gate.disable_key(&key).unwrap();
    let lookup = |attribute: Option<LookupAttribute>, max: u32, token: Option<String>| {
        gate.lookup_events(&LookupEventsRequest {
            attribute,
            max_results: Some(max),
            next_token: token,
            ..Default::default()
        })
        .unwrap()
    };
    let encrypts = lookup(Some(LookupAttribute::EventName("Encrypt".into())), 50, None);
    assert_eq!(encrypts.events.len(), 12);
    let by_key = lookup(Some(LookupAttribute::ResourceName(key.clone())), 50, None);
    assert_eq!(by_key.events[0].event_name, "DisableKey", "newest first");
    assert!(by_key.events.iter().any(|e| e.event_name == "CreateKey"));
    let first = lookup(None, 5, None);
    assert_eq!(first.events.len(), 5);
    let second = lookup(None, 5, first.next_token.clone());
    assert!(second.events[0].event_time <= first.events[4].event_time);
    assert_ne!(second.events[0].event_id, first.events[4].event_id);

    let tmp = tempfile::tempdir().unwrap();
    assert!(matches!(gate.prune_audit_log(5), Err(Error::Validation(_))));
    let (records, _, last) = hsm
        .export_audit_log_to_dir(&caller, &tmp.path().join("all"), 1)
        .unwrap();
    let public_key = hsm.audit_public_key();
    let report = verify_dir(&tmp.path().join("all"), &public_key).unwrap();
    assert_eq!(
        (report.records, report.first, report.last),
        (records, 1, last)
    );
    assert!(last >= 14);

    let outcome = gate.prune_audit_log(last).unwrap();
    assert!(outcome.pruned > 0 && outcome.first_kept > 1, "{outcome:?}");
    let kept = hsm
        .lock_store()
        .read(crate::audit::db::first_sequence)
        .unwrap();
    assert_eq!(kept, Some(outcome.first_kept));
    let (_, _, _) = hsm
        .export_audit_log_to_dir(&caller, &tmp.path().join("pruned"), 1)
        .unwrap();
    let report = verify_dir(&tmp.path().join("pruned"), &public_key).unwrap();
    assert_eq!(report.first, outcome.first_kept);
    // A prune beyond what was exported is refused.
    let head = hsm.audit_log().state().head_sequence;
    assert!(matches!(
        gate.prune_audit_log(head + 10),
        Err(Error::Validation(_))
    ));
}

/// Users and access keys: made, found by uid, unique name/uid, listed,
/// limited, deleted with their keys; all of it there after reopening.
fn users_and_access_keys(engine: &Engine<'_>) {
    let (hsm, place, clock) = engine.fresh();
    let fingerprint = "ab".repeat(32);
    hsm.create_user("alice", Some(5001), Some(&fingerprint))
        .unwrap();
    hsm.create_user("bob", None, None).unwrap();
    assert!(matches!(
        hsm.create_user("alice", None, None),
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(
        hsm.create_user("carol", Some(5001), None),
        Err(Error::AlreadyExists(_))
    ));
    assert_eq!(
        hsm.principal_for_uid(5001, 0),
        Some(Principal::User("alice".into()))
    );
    assert_eq!(
        hsm.principal_for_certificate(&fingerprint),
        Some(Principal::User("alice".into()))
    );
    let key = hsm.create_access_key("alice").unwrap();
    for _ in 1..crate::MAX_ACCESS_KEYS_PER_PRINCIPAL {
        hsm.create_access_key("alice").unwrap();
    }
    assert!(matches!(
        hsm.create_access_key("alice"),
        Err(Error::LimitExceeded(_))
    ));
    hsm.delete_access_key("alice", &key.info.access_key_id)
        .unwrap();
    assert_eq!(
        hsm.list_access_keys("alice").unwrap().len(),
        crate::MAX_ACCESS_KEYS_PER_PRINCIPAL - 1
    );
    drop(hsm);
    let hsm = engine.open(&place, &pass(), &clock).unwrap();
    let names: Vec<String> = hsm.list_users().into_iter().map(|u| u.user_name).collect();
    assert_eq!(names, ["alice", "bob"]);
    hsm.delete_user("alice").unwrap();
    assert_eq!(hsm.principal_for_uid(5001, 0), None);
    assert!(matches!(
        hsm.list_access_keys("alice"),
        Err(Error::NotFound(_))
    ));
    let left: i64 = hsm
        .lock_store()
        .read(|db| db.first("SELECT count(*) FROM access_keys", &[], |r| r.get(0)))
        .unwrap()
        .unwrap();
    assert_eq!(left, 0);
}

/// Paging and ordering compare text by bytes on both engines, whatever
/// the database's collation: mixed-case aliases page (ListAliases, all
/// and per key) in byte order, every one exactly once; mixed-case and
/// non-ASCII descriptions and tag keys come back as written, tags in byte
/// order; token labels are unique by bytes.
fn text_orders_by_bytes(engine: &Engine<'_>) {
    let (hsm, _place, _clock) = engine.fresh();
    // The database itself orders by language where the cluster can (so
    // this case proves something there): 'a' < 'B' in en-US, not in bytes.
    let by_language: i64 = hsm
        .lock_store()
        .read(|db| {
            db.first("SELECT CASE WHEN 'a' < 'B' THEN 1 ELSE 0 END", &[], |r| {
                r.get(0)
            })
        })
        .unwrap()
        .unwrap();
    let expected = match engine {
        Engine::Sqlite => false,
        Engine::Postgres(cluster) => cluster.collates_by_language(),
    };
    assert_eq!(by_language == 1, expected);
    let caller = root();
    let gate = hsm.gate(&caller);
    let description = "Schlüssel für Ärger — ключ 鍵 B a";
    let a = gate
        .create_key(CreateKeyRequest {
            description: description.into(),
            ..Default::default()
        })
        .unwrap()
        .key_id;
    let b = gate.create_key(CreateKeyRequest::default()).unwrap().key_id;
    let names = [
        "alias/a",
        "alias/B",
        "alias/_x",
        "alias/Z-1",
        "alias/z",
        "alias/a-b",
        "alias/ab",
        "alias/A",
        "alias/b",
        "alias/Ab",
        "alias/aB",
        "alias/9",
        "alias/a/b",
        "alias/-",
    ];
    for (i, name) in names.iter().enumerate() {
        gate.create_alias(name, if i % 2 == 0 { &a } else { &b })
            .unwrap();
    }
    let page_all = |key: Option<&str>| {
        let mut seen = Vec::new();
        let mut marker = None;
        loop {
            let page = gate.list_aliases(key, Some(3), marker.as_deref()).unwrap();
            seen.extend(page.items.iter().map(|e| e.alias_name.clone()));
            marker = page.next_marker;
            if marker.is_none() {
                break;
            }
        }
        seen
    };
    let mut want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    want.sort();
    assert_eq!(page_all(None), want, "every alias once, in byte order");
    let mut want_a: Vec<String> = names.iter().step_by(2).map(|n| n.to_string()).collect();
    want_a.sort();
    assert_eq!(page_all(Some(&a)), want_a);
    // The store's own order, read directly.
    let stored: Vec<String> = hsm
        .lock_store()
        .read(|db| {
            db.all(
                "SELECT alias_name FROM aliases WHERE alias_name > ?1 ORDER BY alias_name",
                &crate::store::engine::vals!["alias/Z-1"],
                |r| r.get(0),
            )
        })
        .unwrap();
    let after: Vec<String> = want
        .iter()
        .filter(|n| n.as_str() > "alias/Z-1")
        .cloned()
        .collect();
    assert_eq!(stored, after);

    let tag_keys = [
        "Team", "team", "éclair", "Zeta", "alpha", "_u", "Ärger", "b", "B", "鍵",
    ];
    let tags: Vec<Tag> = tag_keys
        .iter()
        .map(|k| Tag {
            tag_key: k.to_string(),
            tag_value: format!("Wert {k}"),
        })
        .collect();
    gate.tag_resource(&a, &tags).unwrap();
    hsm.write_state()
        .forget_key(&uuid::Uuid::parse_str(&a).unwrap());
    let mut seen = Vec::new();
    let mut marker = None;
    loop {
        let page = gate
            .list_resource_tags(&a, Some(3), marker.as_deref())
            .unwrap();
        seen.extend(page.items);
        marker = page.next_marker;
        if marker.is_none() {
            break;
        }
    }
    let mut want_tags = tags.clone();
    want_tags.sort_by(|x, y| x.tag_key.as_bytes().cmp(y.tag_key.as_bytes()));
    assert_eq!(seen, want_tags);
    assert_eq!(gate.describe_key(&a).unwrap().description, description);

    hsm.token_init(None, "Tok", b"so-pin-1").unwrap();
    hsm.token_init(None, "tok", b"so-pin-1").unwrap();
    assert!(hsm.token_init(None, "Tok", b"so-pin-1").is_err());
}

/// PKCS#11 objects searched through the store's indexes (see
/// `crate::pkcs11::embedded::find_tests`).
fn token_search(engine: &Engine<'_>) {
    let (hsm, place, clock) = engine.fresh();
    crate::pkcs11::embedded::find_tests::token_search(hsm, &|| {
        engine.open(&place, &pass(), &clock).unwrap()
    });
}

/// One case of the matrix.
type Case = fn(&Engine<'_>);

/// Every case, by name.
const CASES: &[(&str, Case)] = &[
    ("key_lifecycle", key_lifecycle),
    ("aliases_and_tags", aliases_and_tags),
    ("reopen_and_pages", reopen_and_pages),
    ("automatic_rotation", automatic_rotation),
    ("audit_chain", audit_chain),
    ("audit_group_commit", audit_group_commit),
    ("create_key_group_commit", create_key_group_commit),
    (
        "audit_leader_waits_for_records_on_their_way",
        audit_leader_waits_for_records_on_their_way,
    ),
    ("token_rows", token_rows),
    ("audit_export_and_prune", audit_export_and_prune),
    ("users_and_access_keys", users_and_access_keys),
    ("text_orders_by_bytes", text_orders_by_bytes),
    ("token_search", token_search),
];

fn run_all(engine: &Engine<'_>, name: &str) {
    for (case, f) in CASES {
        eprintln!("store matrix on {name}: {case}");
        f(engine);
    }
}

#[test]
fn on_sqlite() {
    run_all(&Engine::Sqlite, "SQLite");
}

/// A node on a new database of `cluster` (manual clock at T0).
fn pg_node(cluster: &Cluster) -> Hsm {
    let url = cluster.new_database();
    let clock = Arc::new(ManualClock::new(T0));
    Hsm::init_postgres(&url, None, &pass(), options(clock)).unwrap()
}

/// A new default key of `caller` (its id).
fn new_key(hsm: &Hsm, caller: &Caller) -> String {
    hsm.gate(caller)
        .create_key(CreateKeyRequest::default())
        .unwrap()
        .key_id
}

/// Polls `f` every 5 ms until it holds, for at most `bound`; how long it
/// took (`None`: never within the bound).
fn wait_until(
    bound: std::time::Duration,
    mut f: impl FnMut() -> bool,
) -> Option<std::time::Duration> {
    let start = std::time::Instant::now();
    while start.elapsed() < bound {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    None
}

/// Two nodes (two `Hsm`s) on one PostgreSQL database: a key created on
/// A is used on B; B, which cached the key, refuses it once A disabled it
/// (the change feed; the lag is printed), follows A's enable, rotation and
/// alias moves; a purge ticked on B is seen on A; both append to one
/// audit chain.
fn two_nodes(cluster: &Cluster) {
    let bound = std::time::Duration::from_secs(10);
    let url = cluster.new_database();
    let clock = Arc::new(ManualClock::new(T0));
    let a = Hsm::init_postgres(&url, None, &pass(), options(clock.clone())).unwrap();
    let b = Hsm::open_postgres(&url, None, &pass(), options(clock.clone())).unwrap();
    let caller = root();
    let (ga, gb) = (a.gate(&caller), b.gate(&caller));
    let key = ga.create_key(CreateKeyRequest::default()).unwrap().key_id;
    let other = ga.create_key(CreateKeyRequest::default()).unwrap().key_id;
    let blob = gb.encrypt(&key, b"from b", &ctx(), None).unwrap();
    let out = ga
        .decrypt(&blob.ciphertext_blob, &ctx(), None, None)
        .unwrap();
    assert_eq!(&out.plaintext[..], b"from b");

    ga.disable_key(&key).unwrap();
    assert!(matches!(
        ga.encrypt(&key, b"x", &ctx(), None),
        Err(Error::Disabled(_))
    ));
    let lag = wait_until(bound, || {
        matches!(
            gb.encrypt(&key, b"x", &ctx(), None),
            Err(Error::Disabled(_))
        )
    })
    .expect("node B refuses a key node A disabled");
    eprintln!("two nodes: DisableKey on A refused on B after {lag:?}");
    ga.enable_key(&key).unwrap();
    wait_until(bound, || gb.encrypt(&key, b"x", &ctx(), None).is_ok())
        .expect("node B follows EnableKey on A");

    ga.rotate_key_on_demand(&key).unwrap();
    wait_until(bound, || {
        gb.describe_key(&key).unwrap().current_key_version == 2
    })
    .expect("node B sees the rotation on A");

    ga.create_alias("alias/shared", &key).unwrap();
    assert!(gb
        .encrypt("alias/shared", b"x", &ctx(), None)
        .unwrap()
        .key_id
        .ends_with(&key));
    ga.update_alias("alias/shared", &other).unwrap();
    wait_until(bound, || {
        gb.encrypt("alias/shared", b"x", &ctx(), None)
            .is_ok_and(|o| o.key_id.ends_with(&other))
    })
    .expect("node B follows an alias moved on A");

    let scheduled = ga.schedule_key_deletion(&other, Some(7)).unwrap();
    clock.set(scheduled.deletion_date);
    assert_eq!(b.tick(scheduled.deletion_date).unwrap().destroyed.len(), 1);
    assert!(a
        .tick(scheduled.deletion_date)
        .unwrap()
        .destroyed
        .is_empty());
    wait_until(bound, || {
        matches!(ga.describe_key(&other), Err(Error::NotFound(_)))
    })
    .expect("node A sees the key node B purged");

    // A change committed without a notification (as if B had not yet
    // heard of it): B's write from its stale cached record is refused, not
    // applied over it, and B reads the key again afterwards.
    let since = b.generation();
    let fresh = ga.create_key(CreateKeyRequest::default()).unwrap().key_id;
    // B has heard of the creation (else that notification, arriving after
    // B cached the key, would make B read it afresh: no stale copy).
    wait_until(bound, || {
        b.changes_since(since)
            .is_none_or(|(_, c)| c.contains(&crate::changes::Change::Key(fresh.clone())))
    })
    .expect("node B hears of a key made on A");
    gb.describe_key(&fresh).unwrap();
    a.lock_store()
        .write(|tx| {
            tx.execute(
                "UPDATE keys SET description = 'changed behind' WHERE key_id = ?1",
                &crate::store::engine::vals![&fresh],
            )
        })
        .unwrap();
    assert!(matches!(
        gb.update_key_description(&fresh, "from b"),
        Err(Error::InvalidState(_))
    ));
    assert_eq!(
        gb.describe_key(&fresh).unwrap().description,
        "changed behind"
    );
    gb.update_key_description(&fresh, "from b").unwrap();
    assert!(matches!(
        gb.rotate_key_on_demand(&fresh).map(|_| ()),
        Ok(())
    ));
    // B believes alias/race free; A took it unannounced: B's CreateAlias
    // is AlreadyExists and A's alias keeps its target.
    assert!(matches!(
        gb.encrypt("alias/race", b"x", &ctx(), None),
        Err(Error::NotFound(_))
    ));
    a.lock_store()
        .write(|tx| {
            tx.execute(
                "INSERT INTO aliases (alias_name, key_id, creation_date, last_updated_date)
                 VALUES ('alias/race', ?1, 1, 1)",
                &crate::store::engine::vals![&key],
            )
        })
        .unwrap();
    assert!(matches!(
        gb.create_alias("alias/race", &fresh),
        Err(Error::AlreadyExists(_))
    ));
    assert!(gb
        .encrypt("alias/race", b"x", &ctx(), None)
        .unwrap()
        .key_id
        .ends_with(&key));

    // Both nodes tick at once: each due key is purged (rotated) by exactly
    // one of them, with one audit record.
    let purge = ga.create_key(CreateKeyRequest::default()).unwrap().key_id;
    let rotate = ga.create_key(CreateKeyRequest::default()).unwrap().key_id;
    let when = clock.now() + 90 * DAY;
    ga.enable_key_rotation(&rotate, Some(90)).unwrap();
    ga.schedule_key_deletion(&purge, Some(7)).unwrap();
    clock.set(when);
    let reports: Vec<crate::TickReport> = std::thread::scope(|s| {
        let ta = s.spawn(|| a.tick(when).unwrap());
        let tb = s.spawn(|| b.tick(when).unwrap());
        vec![ta.join().unwrap(), tb.join().unwrap()]
    });
    let destroyed: usize = reports.iter().map(|r| r.destroyed.len()).sum();
    let rotated: usize = reports.iter().map(|r| r.rotated.len()).sum();
    assert_eq!((destroyed, rotated), (1, 1));
    assert_eq!(ga.describe_key(&rotate).unwrap().current_key_version, 2);
    let events = |name: &str, key: &str| -> i64 {
        a.lock_store()
            .read(|db| {
                db.first(
                    "SELECT count(*) FROM audit_records WHERE event_name = ?1 AND resource_id = ?2",
                    &crate::store::engine::vals![name, key],
                    |r| r.get(0),
                )
            })
            .unwrap()
            .unwrap()
    };
    assert_eq!(events("DeleteKey", &purge), 1);
    assert_eq!(events("RotateKey", &rotate), 1);

    // One audit chain: both nodes' records, consecutive.
    let sequences: Vec<i64> = a
        .lock_store()
        .read(|db| {
            db.all(
                "SELECT sequence FROM audit_records ORDER BY sequence",
                &[],
                |r| r.get(0),
            )
        })
        .unwrap();
    let want: Vec<i64> = (1..=sequences.len() as i64).collect();
    assert_eq!(sequences, want);
    let head = a
        .audit_log()
        .state()
        .head_sequence
        .max(b.audit_log().state().head_sequence);
    assert_eq!(head, sequences.len() as u64);
}

/// Two nodes on one database share users, PKCS#11 tokens and the audit
/// log: a user made (deleted) on A is known (forgotten) on B without a
/// restart; a name another node took unannounced is refused; a token and
/// its object rows made on A are seen on B, whose change journal names
/// the object (what the PKCS#11 module's cache reloads); an export made
/// on B of the one chain both wrote verifies offline, and A prunes what B
/// exported.
fn two_nodes_share_users_tokens_and_audit(cluster: &Cluster) {
    use crate::changes::Change;
    use crate::token::ObjectRow;
    let bound = std::time::Duration::from_secs(10);
    let url = cluster.new_database();
    let clock = Arc::new(ManualClock::new(T0));
    let a = Hsm::init_postgres(&url, None, &pass(), options(clock.clone())).unwrap();
    let b = Hsm::open_postgres(&url, None, &pass(), options(clock.clone())).unwrap();

    assert_eq!(b.principal_for_uid(6001, 0), None);
    a.create_user("dave", Some(6001), None).unwrap();
    let lag = wait_until(bound, || {
        b.principal_for_uid(6001, 0) == Some(Principal::User("dave".into()))
    })
    .expect("node B knows a user made on A");
    eprintln!("two nodes: a user made on A known on B after {lag:?}");
    a.create_access_key("dave").unwrap();
    wait_until(bound, || {
        b.list_access_keys("dave").is_ok_and(|k| k.len() == 1)
    })
    .expect("node B knows an access key made on A");
    assert!(matches!(
        b.create_user("dave", None, None),
        Err(Error::AlreadyExists(_))
    ));
    // Taken unannounced (B has not heard): refused from the database.
    a.lock_store()
        .write(|tx| {
            tx.execute(
                "INSERT INTO users (user_name, created, unix_uid, cert_fingerprint)
                 VALUES ('erin', 1, 6002, NULL)",
                &[],
            )
        })
        .unwrap();
    assert!(matches!(
        b.create_user("erin", None, None),
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(
        b.create_user("frank", Some(6002), None),
        Err(Error::AlreadyExists(_))
    ));
    a.delete_user("dave").unwrap();
    wait_until(bound, || b.principal_for_uid(6001, 0).is_none())
        .expect("node B forgets a user deleted on A");
    assert!(matches!(
        b.list_access_keys("dave"),
        Err(Error::NotFound(_))
    ));

    let since = b.generation();
    let serial = a.token_init(None, "shared", b"so-pin-1").unwrap();
    wait_until(bound, || {
        b.token_list().unwrap().iter().any(|t| t.serial == serial)
            && b.changes_since(since).is_none()
    })
    .expect("node B sees a token made on A, and reloads everything");
    let key = a
        .p11_create_aes_key("shared", 32, "shared key", false)
        .unwrap();
    let since = b.generation();
    a.token_put_object(
        &serial,
        &ObjectRow {
            object_id: "obj1".into(),
            key_id: Some(key.key_id.clone()),
            attrs: b"attrs".to_vec(),
        },
    )
    .unwrap();
    let lag = wait_until(bound, || {
        b.changes_since(since)
            .is_some_and(|(_, c)| c.contains(&Change::Object("obj1".into())))
    })
    .expect("node B's change journal names an object row stored on A");
    eprintln!("two nodes: a token object stored on A named on B after {lag:?}");
    let on_b = b
        .token_objects_touching(&serial, &[], &["obj1".into()])
        .unwrap();
    assert_eq!(on_b.len(), 1);
    assert_eq!(on_b[0].key_id.as_deref(), Some(key.key_id.as_str()));
    assert_eq!(b.list_token_keys("shared").unwrap().len(), 1);
    let since = b.generation();
    a.token_delete_object("obj1").unwrap();
    wait_until(bound, || {
        b.changes_since(since)
            .is_some_and(|(_, c)| c.contains(&Change::Object("obj1".into())))
    })
    .expect("node B's journal names an object row deleted on A");
    assert!(b.token_objects(&serial).unwrap().is_empty());
    // Wrong PINs tried on both nodes at once both count.
    a.token_set_pin(&serial, crate::token::PinUser::User, b"user-pin")
        .unwrap();
    std::thread::scope(|s| {
        for node in [&a, &b] {
            let serial = &serial;
            s.spawn(move || {
                node.token_check_pin(serial, crate::token::PinUser::User, b"wrong-pin")
                    .unwrap_err();
            });
        }
    });
    let failures = b
        .token_list()
        .unwrap()
        .into_iter()
        .find(|t| t.serial == serial)
        .unwrap()
        .user_failures;
    assert_eq!(failures, 2);

    // One audit chain written by both nodes, checkpoints signed by both.
    let caller = root();
    let (ga, gb) = (a.gate(&caller), b.gate(&caller));
    let k = ga.create_key(CreateKeyRequest::default()).unwrap().key_id;
    for i in 0..6 {
        let gate = if i % 2 == 0 { &ga } else { &gb };
        gate.encrypt(&k, b"audited", &ctx(), None).unwrap();
        clock.advance(31);
    }
    gb.disable_key(&k).unwrap();
    // An export of both nodes' records through B verifies with A's key.
    let last = verified_export(&b, &caller, &a.audit_public_key());
    let tmp = tempfile::tempdir().unwrap();
    let count: i64 = a
        .lock_store()
        .read(|db| db.first("SELECT count(*) FROM audit_records", &[], |r| r.get(0)))
        .unwrap()
        .unwrap();
    assert!(last as i64 <= count && last >= 8, "{last} of {count}");
    // A prunes what B exported (the confirmation is shared).
    let outcome = ga.prune_audit_log(last).unwrap();
    assert!(outcome.pruned > 0, "{outcome:?}");
    let (_, _, _) = a
        .export_audit_log_to_dir(&caller, &tmp.path().join("a"), 1)
        .unwrap();
    let report = crate::audit::verify_dir(&tmp.path().join("a"), &b.audit_public_key()).unwrap();
    assert_eq!(report.first, outcome.first_kept);
}

/// Writers of three nodes at once (CreateKey and Encrypt on four threads
/// each) never fail: serialized by the write lock, no transaction can
/// conflict with another's (under SERIALIZABLE one beginning right after
/// another's COMMIT did, SQLSTATE 40001: PostgreSQL releases the lock
/// before it marks the committed transaction done for its conflict
/// checks), and every record lands in one gapless chain.
fn writers_of_three_nodes_never_conflict(cluster: &Cluster) {
    let url = cluster.new_database();
    let clock = Arc::new(ManualClock::new(T0));
    let a = Hsm::init_postgres(&url, None, &pass(), options(clock.clone())).unwrap();
    let b = Hsm::open_postgres(&url, None, &pass(), options(clock.clone())).unwrap();
    let c = Hsm::open_postgres(&url, None, &pass(), options(clock)).unwrap();
    let caller = root();
    let rounds = 15;
    let errors = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for node in [&a, &b, &c] {
            for _ in 0..4 {
                s.spawn(|| {
                    let gate = node.gate(&caller);
                    for _ in 0..rounds {
                        let outcome = gate
                            .create_key(CreateKeyRequest::default())
                            .and_then(|k| gate.encrypt(&k.key_id, b"x", &ctx(), None));
                        if let Err(e) = outcome {
                            errors.lock().unwrap().push(e.to_string());
                        }
                    }
                });
            }
        }
    });
    let errors = errors.into_inner().unwrap();
    assert!(
        errors.is_empty(),
        "{} failed, e.g. {:?}",
        errors.len(),
        errors.first()
    );
    let (count, max): (i64, i64) = a
        .lock_store()
        .read(|db| {
            db.first(
                "SELECT count(*), max(sequence) FROM audit_records",
                &[],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .unwrap()
        .unwrap();
    assert_eq!(count, max);
    assert!(count >= 3 * 4 * rounds * 2, "{count}");
}

/// A write's notifications are sent with its COMMIT, each payload once;
/// a payload that needs quoting is sent as a parameter; a write that
/// fails sends none.
fn notifications_sent_at_commit(cluster: &Cluster) {
    use postgres::fallible_iterator::FallibleIterator;
    let url = cluster.new_database();
    let clock = Arc::new(ManualClock::new(T0));
    let hsm = Hsm::init_postgres(&url, None, &pass(), options(clock)).unwrap();
    let mut listener = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    listener.batch_execute("LISTEN tinfoil_changes").unwrap();
    let quoted = "it's \"quoted\"; COMMIT; --";
    hsm.lock_store()
        .write(|tx| {
            pg::notify(tx, "plain-1")?;
            pg::notify(tx, quoted)?;
            pg::notify(tx, "plain-1")
        })
        .unwrap();
    let failed = hsm.lock_store().write(|tx| {
        pg::notify(tx, "rolled-back")?;
        Err::<(), _>(Error::validation("this write fails"))
    });
    assert!(failed.is_err());
    hsm.lock_store().write(|tx| pg::notify(tx, "last")).unwrap();
    let mut seen = Vec::new();
    let mut notes = listener.notifications();
    let mut iter = notes.timeout_iter(std::time::Duration::from_secs(10));
    while let Some(n) = iter.next().unwrap() {
        let payload = n.payload().to_string();
        let last = payload == "last";
        if ["plain-1", quoted, "rolled-back", "last"].contains(&payload.as_str()) {
            seen.push(payload);
        }
        if last {
            break;
        }
    }
    seen.sort();
    let mut want = vec![
        "plain-1".to_string(),
        quoted.to_string(),
        "last".to_string(),
    ];
    want.sort();
    assert_eq!(seen, want);
}

/// A write that panics half-way leaves no transaction open on a pooled
/// connection (its lock would stop every node's writes): the pool
/// discards the connection, and the next writes go through.
fn panicked_write_leaves_no_open_transaction(cluster: &Cluster) {
    let hsm = pg_node(cluster);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        hsm.lock_store().write(|tx| -> crate::Result<()> {
            tx.execute(
                "INSERT INTO meta (name, value) VALUES ('half', ?1)",
                &crate::store::engine::vals![&b"x"[..]],
            )?;
            panic!("in the middle of a write")
        })
    }));
    std::panic::set_hook(hook);
    assert!(outcome.is_err());
    // The discarded connection's socket is closed at once, but its server
    // process notices a moment later: poll (a generous bound, not a time
    // asserted) until no session of this database is mid-transaction.
    let open_transactions = || -> i64 {
        hsm.lock_store()
            .read(|db| {
                db.first(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
                    &[],
                    |r| r.get(0),
                )
            })
            .unwrap()
            .unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut open = open_transactions();
    while open != 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        open = open_transactions();
    }
    assert_eq!(open, 0, "no connection is left in a transaction");
    let caller = root();
    let gate = hsm.gate(&caller);
    gate.create_key(CreateKeyRequest::default()).unwrap();
    assert_eq!(hsm.lock_store().meta("half").unwrap(), None);
}

/// The database stops under a node that has a key cached: calls fail
/// with StoreUnavailable (no hang, nothing served from the cache while the
/// change feed is down); once it is back, the node serves again without
/// a restart.
fn database_restart(cluster: &Cluster) {
    let bound = std::time::Duration::from_secs(20);
    let hsm = pg_node(cluster);
    let caller = root();
    let gate = hsm.gate(&caller);
    let key = gate.create_key(CreateKeyRequest::default()).unwrap().key_id;
    wait_until(bound, || gate.encrypt(&key, b"x", &ctx(), None).is_ok()).unwrap();
    cluster.stop_server();
    let mut last = String::new();
    let failed = wait_until(bound, || {
        let outcome = gate.encrypt(&key, b"x", &ctx(), None);
        last = format!("{:?}", outcome.as_ref().map(|_| ()));
        matches!(outcome, Err(Error::StoreUnavailable(_)))
    });
    cluster.start_server();
    let failed = failed.unwrap_or_else(|| {
        panic!("calls fail with StoreUnavailable while the database is down; last: {last}")
    });
    eprintln!("database stopped: StoreUnavailable after {failed:?}");
    let back = wait_until(bound, || gate.encrypt(&key, b"x", &ctx(), None).is_ok())
        .expect("the node serves again once the database is back");
    eprintln!("database started: serving again after {back:?}");
}

/// Audit records appended by two nodes in turn (PostgreSQL): a node
/// whose known chain head is still the head appends a batch in one round
/// trip (`tinfoil_append_audit`); one whose head another node moved
/// appends again on the head the database answered (a second round trip).
/// Either way one gapless chain that verifies, every record once.
fn audit_appends_on_known_heads(cluster: &Cluster) {
    let url = cluster.new_database();
    let clock = Arc::new(ManualClock::new(T0));
    let a = Hsm::init_postgres(&url, None, &pass(), options(clock.clone())).unwrap();
    let b = Hsm::open_postgres(&url, None, &pass(), options(clock.clone())).unwrap();
    let caller = root();
    let key = new_key(&a, &caller);
    let encrypt = |hsm: &Hsm| hsm.gate(&caller).encrypt(&key, b"x", &ctx(), None).unwrap();
    let wait = std::time::Duration::from_secs(10);
    wait_until(wait, || {
        b.gate(&caller).encrypt(&key, b"x", &ctx(), None).is_ok()
    })
    .expect("B sees the key");
    let appends = |hsm: &Hsm| {
        let log = hsm.audit_log();
        (log.fast_appends(), log.sealed_appends())
    };
    let (before_a, before_b) = (appends(&a), appends(&b));
    for _ in 0..3 {
        // A twice in a row: the first finds the head B moved (sealed by
        // the database, which shows A that B appended), the second too
        // (A cannot know B stopped) and shows nobody appended since; then
        // B likewise.
        encrypt(&a);
        encrypt(&a);
        encrypt(&b);
        encrypt(&b);
    }
    // Every one of the twelve appends without a write transaction (only a
    // due checkpoint forces one: none here); after the first round, each
    // node's first append of its turn in the database's seal.
    let (after_a, after_b) = (appends(&a), appends(&b));
    let made = |before: (u64, u64), after: (u64, u64)| (after.0 - before.0, after.1 - before.1);
    let (made_a, made_b) = (made(before_a, after_a), made(before_b, after_b));
    assert_eq!(made_a.0 + made_a.1, 6, "A's appends: {made_a:?}");
    assert_eq!(made_b.0 + made_b.1, 6, "B's appends: {made_b:?}");
    assert!(
        made_a.1 >= 3 && made_b.1 >= 3,
        "sealed by the database: {made_a:?} {made_b:?}"
    );
    // A checkpoint falling due (a minute on) when the database would
    // seal: it writes nothing, and the node appends and signs in a write
    // transaction.
    encrypt(&a);
    let sealed_a = appends(&a);
    assert_eq!(
        sealed_a.1,
        after_a.1 + 1,
        "sealed by the database (B moved the head)"
    );
    clock.advance(crate::audit::log::CHECKPOINT_EVERY_SECS);
    encrypt(&a);
    assert_eq!(
        appends(&a),
        sealed_a,
        "A's last append in a write transaction"
    );
    let (head, signed): (Option<i64>, Option<i64>) = a
        .lock_store()
        .read(|db| {
            db.first(
                "SELECT (SELECT max(sequence) FROM audit_records),
                        (SELECT max(tree_size) FROM audit_checkpoints)",
                &[],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .unwrap()
        .unwrap();
    assert_eq!(signed, head, "the last append signed with it");
    let (sequences, encrypts, _) = checked_chain(&a, &caller);
    let head = *sequences.last().unwrap();
    assert_eq!(
        sequences,
        (1..=head).collect::<Vec<_>>(),
        "one gapless chain"
    );
    assert!(encrypts >= 14, "{encrypts} Encrypt records");
}

/// The audit chain as stored: every record's sequence in order and the
/// number of Encrypt records; and the last sequence of an export of the
/// whole chain, which must verify offline.
fn checked_chain(hsm: &Hsm, caller: &Caller) -> (Vec<i64>, i64, u64) {
    let (sequences, encrypts): (Vec<i64>, i64) = hsm
        .lock_store()
        .read(|db| {
            let sequences = db.all(
                "SELECT sequence FROM audit_records ORDER BY sequence",
                &[],
                |r| r.get(0),
            )?;
            let encrypts = db.first(
                "SELECT count(*) FROM audit_records WHERE event_name = 'Encrypt'",
                &[],
                |r| r.get(0),
            )?;
            Ok((sequences, encrypts.unwrap_or(0)))
        })
        .unwrap();
    let last = verified_export(hsm, caller, &hsm.audit_public_key());
    (sequences, encrypts, last)
}

/// Exports the whole chain through `hsm` and verifies the export offline
/// with `public_key` (any node's: they share the store's signing key):
/// every record from the first; the last sequence exported.
fn verified_export(hsm: &Hsm, caller: &Caller, public_key: &str) -> u64 {
    let tmp = tempfile::tempdir().unwrap();
    let (records, _, last) = hsm
        .export_audit_log_to_dir(caller, &tmp.path().join("all"), 1)
        .unwrap();
    let report = crate::audit::verify_dir(&tmp.path().join("all"), public_key)
        .expect("the exported chain verifies");
    assert_eq!(
        (report.first, report.last, report.records),
        (1, last, records)
    );
    last
}

/// The database restarts while a node is idle, its pool holding
/// connections opened before: the first calls after the restart succeed
/// (stale connections are found and replaced before a call gets one, not
/// by failing it), several in parallel too, and a quiet pool's
/// connections are checked after a pause.
fn database_restart_while_idle(cluster: &Cluster) {
    let hsm = pg_node(cluster);
    let caller = root();
    let gate = hsm.gate(&caller);
    let key = gate.create_key(CreateKeyRequest::default()).unwrap().key_id;
    // Several connections in the pool.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..20 {
                    gate.encrypt(&key, b"x", &ctx(), None).unwrap();
                }
            });
        }
    });
    for round in 0..2 {
        cluster.stop_server();
        // The node's feed sees the server end its session at once (a
        // real restart gives it that long); a loaded machine may take a
        // moment to run it.
        wait_until(std::time::Duration::from_secs(10), || hsm.feed_down())
            .expect("the change feed notices the database went away");
        cluster.start_server();
        if round == 1 {
            // Past the idle bound: checked because quiet, whatever the
            // feed saw.
            std::thread::sleep(std::time::Duration::from_millis(1200));
        }
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let created = gate.create_key(CreateKeyRequest::default());
                    assert!(
                        created.is_ok(),
                        "round {round}: the first CreateKey after a restart: {created:?}"
                    );
                    let sealed = gate.encrypt(&key, b"x", &ctx(), None);
                    assert!(
                        sealed.is_ok(),
                        "round {round}: Encrypt after a restart: {sealed:?}"
                    );
                });
            }
        });
    }
}

/// A `pg_dump` of a PostgreSQL store holds no plaintext key material and
/// no plaintext a caller encrypted, raw or hex-encoded (bytea's text form).
fn dump_holds_no_plaintext(cluster: &Cluster) {
    let url = cluster.new_database();
    let clock = Arc::new(ManualClock::new(T0));
    let hsm = Hsm::init_postgres(&url, None, &pass(), options(clock)).unwrap();
    let caller = root();
    let gate = hsm.gate(&caller);
    let mut secrets: Vec<Vec<u8>> = Vec::new();
    for _ in 0..3 {
        let key = gate.create_key(CreateKeyRequest::default()).unwrap().key_id;
        gate.rotate_key_on_demand(&key).unwrap();
        let record = hsm.read_state().key(&key).unwrap();
        for version in 1..=2 {
            secrets.push(hsm.material(&record, version).unwrap().to_vec());
        }
        let plaintext = crate::sealing::random_key().unwrap().to_vec();
        gate.encrypt(&key, &plaintext, &ctx(), None).unwrap();
        secrets.push(plaintext);
    }
    let dump = cluster.dump(&url);
    let contains = |needle: &[u8]| dump.windows(needle.len()).any(|w| w == needle);
    for secret in &secrets {
        assert_eq!(secret.len(), 32);
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!contains(secret), "plaintext bytes in the dump");
        assert!(!contains(hex.as_bytes()), "plaintext (hex) in the dump");
    }
    // The dump does hold the store (so the scan looked at real content).
    assert!(contains(b"wrapped_root_key"));
}

#[test]
fn on_postgres() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    run_all(&Engine::Postgres(&cluster), "PostgreSQL");
    eprintln!("store matrix on PostgreSQL: two_nodes");
    two_nodes(&cluster);
    eprintln!("store matrix on PostgreSQL: two_nodes_share_users_tokens_and_audit");
    two_nodes_share_users_tokens_and_audit(&cluster);
    eprintln!("store matrix on PostgreSQL: writers_of_three_nodes_never_conflict");
    writers_of_three_nodes_never_conflict(&cluster);
    eprintln!("store matrix on PostgreSQL: notifications_sent_at_commit");
    notifications_sent_at_commit(&cluster);
    eprintln!("store matrix on PostgreSQL: panicked_write_leaves_no_open_transaction");
    panicked_write_leaves_no_open_transaction(&cluster);
    eprintln!("store matrix on PostgreSQL: dump_holds_no_plaintext");
    dump_holds_no_plaintext(&cluster);
    eprintln!("store matrix on PostgreSQL: database_restart");
    database_restart(&cluster);
    eprintln!("store matrix on PostgreSQL: audit_appends_on_known_heads");
    audit_appends_on_known_heads(&cluster);
    eprintln!("store matrix on PostgreSQL: database_restart_while_idle");
    database_restart_while_idle(&cluster);
    eprintln!("store matrix on PostgreSQL: silent_network_drop");
    silent_network_drop(&cluster);
    eprintln!("store matrix on PostgreSQL: frozen_writer_releases_the_write_lock");
    frozen_writer_releases_the_write_lock(&cluster);
    eprintln!("store matrix on PostgreSQL: dropping_a_node_whose_network_froze");
    dropping_a_node_whose_network_froze(&cluster);
    eprintln!("store matrix on PostgreSQL: opening_a_node_whose_database_never_answers");
    opening_a_node_whose_database_never_answers(&cluster);
}

/// A TCP relay between a node and the test cluster that can be frozen:
/// it then stops forwarding in both directions and keeps every socket
/// open (no FIN, no RST), as a network that drops packets silently, or a
/// hung middlebox, looks to the node (except that the kernels still
/// acknowledge what is sent: the sockets' own bounds, `TCP_USER_TIMEOUT`
/// and keepalive, cannot fire here, so only the node's own bounds are
/// tested). Connections made while frozen are accepted and wait.
struct Freezer {
    port: u16,
    frozen: Arc<std::sync::atomic::AtomicBool>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Freezer {
    /// A relay to the database of `url` (a test cluster's), and the URL
    /// that reaches the database through it.
    fn in_front_of(url: &str) -> (Freezer, String) {
        let port: u16 = url
            .rsplit_once(':')
            .and_then(|(_, rest)| rest.split_once('/'))
            .and_then(|(port, _)| port.parse().ok())
            .expect("the test cluster's URL names a port");
        let proxy = Freezer::start(port);
        let proxied = url.replace(&format!(":{port}/"), &format!(":{}/", proxy.port));
        assert_ne!(proxied, url);
        (proxy, proxied)
    }

    /// Relays to 127.0.0.1:`upstream` from a port of its own.
    fn start(upstream: u16) -> Freezer {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (f, st) = (frozen.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((near, _)) => {
                        near.set_nonblocking(false).unwrap();
                        let Ok(far) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                            continue;
                        };
                        for (from, to) in [
                            (near.try_clone().unwrap(), far.try_clone().unwrap()),
                            (far, near),
                        ] {
                            let (f, st) = (f.clone(), st.clone());
                            std::thread::spawn(move || Freezer::pump(from, to, &f, &st));
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    Err(_) => return,
                }
            }
        });
        Freezer { port, frozen, stop }
    }

    /// Forwards `from` to `to` while not frozen, until either end closes
    /// or the relay stops (then closing both).
    fn pump(
        mut from: std::net::TcpStream,
        mut to: std::net::TcpStream,
        frozen: &std::sync::atomic::AtomicBool,
        stop: &std::sync::atomic::AtomicBool,
    ) {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let pause = std::time::Duration::from_millis(5);
        from.set_read_timeout(Some(pause * 4)).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if stop.load(Ordering::Acquire) {
                from.shutdown(std::net::Shutdown::Both).ok();
                to.shutdown(std::net::Shutdown::Both).ok();
                return;
            }
            if frozen.load(Ordering::Acquire) {
                std::thread::sleep(pause);
                continue;
            }
            match from.read(&mut buf) {
                Ok(0) => {
                    to.shutdown(std::net::Shutdown::Write).ok();
                    return;
                }
                Ok(n) => {
                    while frozen.load(Ordering::Acquire) && !stop.load(Ordering::Acquire) {
                        std::thread::sleep(pause);
                    }
                    if to.write_all(&buf[..n]).is_err() {
                        from.shutdown(std::net::Shutdown::Both).ok();
                        return;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => {
                    to.shutdown(std::net::Shutdown::Both).ok();
                    return;
                }
            }
        }
    }

    fn freeze(&self, frozen: bool) {
        self.frozen
            .store(frozen, std::sync::atomic::Ordering::Release);
    }
}

impl Drop for Freezer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// Thaws a [`Freezer`] when dropped: declared after the nodes behind it,
/// so a failing test thaws before they are dropped (closing a connection
/// waits for the replies a frozen relay holds back).
struct Thaw(Arc<std::sync::atomic::AtomicBool>);

impl Drop for Thaw {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Release);
    }
}

/// A node whose network to the database drops silently (node A, behind a
/// [`Freezer`]; node B connects directly): A had cached a key; once
/// frozen, A counts its change feed down (the detection lag is printed)
/// and refuses the key B disables meanwhile: every call on A fails
/// (StoreUnavailable), returning within a bound instead of hanging (the
/// time is printed). Thawed, A serves again: the key disabled as B left
/// it, then enabled again on B.
/// A node that stops in the middle of a write while its host still
/// answers (a frozen process: TCP keepalives cannot tell) holds the write
/// lock every node's writers wait for only until the server ends its idle
/// transaction (`IDLE_WRITE_BOUND`, 1 s in tests): node B's DisableKey
/// then goes through while A is still stopped; when A resumes its write
/// fails (its session is gone) and changes nothing, and A's next call
/// works on another connection.
fn frozen_writer_releases_the_write_lock(cluster: &Cluster) {
    let bound = std::time::Duration::from_secs(20);
    let url = cluster.new_database();
    let clock = Arc::new(ManualClock::new(T0));
    let b = Hsm::init_postgres(&url, None, &pass(), options(clock.clone())).unwrap();
    let a = Arc::new(Hsm::open_postgres(&url, None, &pass(), options(clock)).unwrap());
    let caller = root();
    let key = new_key(&b, &caller);
    let (began_tx, began_rx) = std::sync::mpsc::channel();
    let (resume_tx, resume_rx) = std::sync::mpsc::channel::<()>();
    let frozen = {
        let a = a.clone();
        let key = key.clone();
        std::thread::spawn(move || {
            a.lock_store().write_unaudited(|tx| {
                // Holds the write lock (taken by the write's BEGIN) ...
                tx.execute(
                    "UPDATE keys SET description = ?1 WHERE key_id = ?2",
                    &crate::store::engine::vals!["written by the frozen node", key.as_str()],
                )?;
                began_tx.send(()).ok();
                // ... and stops until told to go on.
                resume_rx
                    .recv_timeout(std::time::Duration::from_secs(60))
                    .ok();
                Ok(())
            })
        })
    };
    began_rx
        .recv_timeout(bound)
        .expect("node A began its write");
    let started = std::time::Instant::now();
    let gb = b.gate(&caller);
    let mut disabled = gb.disable_key(&key);
    while disabled.is_err() && started.elapsed() < bound {
        // A call may fail with StoreUnavailable while the lock is held.
        assert!(
            matches!(disabled, Err(Error::StoreUnavailable(_))),
            "{disabled:?}"
        );
        disabled = gb.disable_key(&key);
    }
    let waited = started.elapsed();
    disabled.expect("node B's write went through while node A is stopped");
    eprintln!("frozen writer: node B wrote after {waited:?}");
    resume_tx.send(()).unwrap();
    let outcome = frozen.join().unwrap();
    assert!(
        outcome.is_err(),
        "the stopped node's write must fail when it resumes: {outcome:?}"
    );
    let described = gb.describe_key(&key).unwrap();
    assert_eq!(
        described.description, "",
        "the stopped write changed nothing"
    );
    assert_eq!(described.key_state, crate::KeyState::Disabled);
    // A serves again (a fresh connection).
    let again = new_key(&a, &caller);
    assert!(a.gate(&caller).describe_key(&again).is_ok());
}

/// Two nodes on a new database of `cluster`: B connected directly, A
/// through a [`Freezer`] (returned too: keep it, and declare a [`Thaw`]
/// after the nodes).
fn nodes_direct_and_behind_a_relay(cluster: &Cluster) -> (Hsm, Hsm, Freezer) {
    let url = cluster.new_database();
    let (proxy, proxied) = Freezer::in_front_of(&url);
    let clock = Arc::new(ManualClock::new(T0));
    let b = Hsm::init_postgres(&url, None, &pass(), options(clock.clone())).unwrap();
    let a = Hsm::open_postgres(&proxied, None, &pass(), options(clock)).unwrap();
    (b, a, proxy)
}

fn silent_network_drop(cluster: &Cluster) {
    let bound = std::time::Duration::from_secs(10);
    let (b, a, proxy) = nodes_direct_and_behind_a_relay(cluster);
    let a = Arc::new(a);
    let _thaw = Thaw(proxy.frozen.clone());
    let caller = root();
    let gb = b.gate(&caller);
    let key = gb.create_key(CreateKeyRequest::default()).unwrap().key_id;
    wait_until(bound, || !a.feed_down()).expect("node A's change feed is up");
    // Cached on A.
    a.gate(&caller).encrypt(&key, b"x", &ctx(), None).unwrap();
    a.gate(&caller).encrypt(&key, b"x", &ctx(), None).unwrap();

    proxy.freeze(true);
    let frozen_at = std::time::Instant::now();
    gb.disable_key(&key).unwrap();
    wait_until(bound, || a.feed_down()).expect("node A counts its silent feed down");
    let detected = frozen_at.elapsed();
    // A call on A, on a thread of its own: it must return, not hang.
    let call = |a: &Arc<Hsm>, key: &str| {
        let (a, key) = (a.clone(), key.to_string());
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let outcome = a.gate(&root()).encrypt(&key, b"x", &ctx(), None);
            send.send(outcome.map(|_| ())).ok();
        });
        let start = std::time::Instant::now();
        let outcome = receive
            .recv_timeout(bound)
            .expect("a call on node A returns, not hangs");
        (outcome, start.elapsed())
    };
    let mut took = Vec::new();
    for _ in 0..3 {
        let (outcome, time) = call(&a, &key);
        assert!(
            matches!(
                outcome,
                Err(Error::StoreUnavailable(_) | Error::Disabled(_))
            ),
            "node A must not serve the key B disabled: {outcome:?}"
        );
        took.push(time);
    }
    eprintln!(
        "silent network drop: node A counted its feed down {detected:?} after the freeze; \
         its calls failed in {took:?}"
    );

    proxy.freeze(false);
    let lag = wait_until(bound, || {
        matches!(
            a.gate(&caller).encrypt(&key, b"x", &ctx(), None),
            Err(Error::Disabled(_))
        )
    })
    .expect("node A serves again, the key disabled as B left it");
    let up = wait_until(bound, || !a.feed_down()).expect("node A's change feed is up again");
    eprintln!(
        "silent network drop: node A served again {lag:?} after the thaw, its feed up {up:?} later"
    );
    gb.enable_key(&key).unwrap();
    wait_until(bound, || {
        a.gate(&caller).encrypt(&key, b"x", &ctx(), None).is_ok()
    })
    .expect("node A follows EnableKey on B");
    drop(a);
    drop(proxy);
}

/// Dropping a node (a daemon stopping) while its network to the database
/// drops packets silently returns within a bound: closing a pooled
/// connection (one of them used for a write) hands its goodbye to the
/// socket and does not wait for the server, which the frozen relay keeps
/// from answering. Its calls had worked and its cache was warm.
fn dropping_a_node_whose_network_froze(cluster: &Cluster) {
    let bound = std::time::Duration::from_secs(10);
    let (b, a, proxy) = nodes_direct_and_behind_a_relay(cluster);
    let _thaw = Thaw(proxy.frozen.clone());
    let caller = root();
    let key = new_key(&b, &caller);
    wait_until(bound, || !a.feed_down()).expect("node A's change feed is up");
    // Connections in A's pool, one of them used for a write.
    for _ in 0..3 {
        a.gate(&caller).encrypt(&key, b"x", &ctx(), None).unwrap();
    }
    a.gate(&caller)
        .tag_resource(
            &key,
            &[crate::Tag {
                tag_key: "dropped".into(),
                tag_value: "frozen".into(),
            }],
        )
        .unwrap();

    proxy.freeze(true);
    let (send, receive) = std::sync::mpsc::channel();
    let started = std::time::Instant::now();
    std::thread::spawn(move || {
        drop(a);
        send.send(()).ok();
    });
    let dropped = receive.recv_timeout(bound);
    let took = started.elapsed();
    proxy.freeze(false);
    dropped.expect("dropping node A returns while its network is frozen");
    eprintln!("dropping a node whose network froze took {took:?}");
    // B was never behind the relay: it serves on.
    assert!(b.gate(&caller).describe_key(&key).is_ok());
    drop(proxy);
}

/// A node starting while something between it and the database accepts
/// the connection and never answers (a frozen relay: TCP connects, the
/// start-up goes unanswered, no socket bound fires) fails with
/// StoreUnavailable saying so within the connection bound, instead of
/// hanging; once the path answers again the node opens, and the attempt
/// given up on has ended by itself.
fn opening_a_node_whose_database_never_answers(cluster: &Cluster) {
    let bound = super::pg::CONNECT_BOUND + std::time::Duration::from_secs(10);
    let url = cluster.new_database();
    let (proxy, proxied) = Freezer::in_front_of(&url);
    let clock = Arc::new(ManualClock::new(T0));
    let b = Hsm::init_postgres(&url, None, &pass(), options(clock.clone())).unwrap();
    proxy.freeze(true);
    let _thaw = Thaw(proxy.frozen.clone());
    let started = std::time::Instant::now();
    let (send, receive) = std::sync::mpsc::channel();
    {
        let (proxied, clock) = (proxied.clone(), clock.clone());
        std::thread::spawn(move || {
            let opened = Hsm::open_postgres(&proxied, None, &pass(), options(clock));
            send.send(opened.map(|_| ())).ok();
        });
    }
    let opened = receive
        .recv_timeout(bound)
        .expect("opening a node through a path that never answers returns, not hangs");
    let took = started.elapsed();
    eprintln!("opening a node whose database never answers failed after {took:?}: {opened:?}");
    match opened {
        Err(Error::StoreUnavailable(m)) => assert!(
            m.contains("cannot connect to PostgreSQL") && m.contains("no answer within"),
            "{m}"
        ),
        other => panic!("expected StoreUnavailable (no answer), got {other:?}"),
    }
    proxy.freeze(false);
    let a = Hsm::open_postgres(&proxied, None, &pass(), options(clock))
        .expect("the node opens once the path answers");
    let caller = root();
    let key = new_key(&b, &caller);
    assert!(a.gate(&caller).describe_key(&key).is_ok());
    wait_until(bound, || super::pg::unanswered_connects() == 0)
        .expect("the attempt given up on ended once answered");
    drop(a);
    drop(proxy);
}

/// A throwaway cluster with one new database (its URL), for the PostgreSQL
/// experiments below; `None` without PostgreSQL's binaries. The cluster
/// stops when dropped: keep it alive.
fn scratch_database() -> Option<(Cluster, String)> {
    let cluster = Cluster::start()?;
    let url = cluster.new_database();
    Some((cluster, url))
}

/// Runs `tc ARGS` (the blackhole experiments: root, in a network namespace
/// of its own).
fn tc(args: &str) {
    let ok = std::process::Command::new("tc")
        .args(args.split(' '))
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "tc {args} (root, in a network namespace of its own)");
}

/// Not a test: what a real blackhole does to a node (packets dropped by
/// the kernel, so the sockets' own bounds, `TCP_USER_TIMEOUT` and
/// keepalive, fire too; [`Freezer`] cannot show that): a call already
/// sending when the network goes (its audit record in flight), the feed's
/// detection lag, calls after it, and the recovery. The blackhole is
/// `tc qdisc add dev lo root blackhole` (drops every packet), so run it as root in a
/// network namespace of its own (nothing outside sees it):
/// `unshare -n sh -c 'ip link set lo up && cargo test -p hsm-core --lib
/// pg_blackhole -- --ignored --nocapture'` (build first: the namespace
/// has no network).
#[test]
#[ignore]
fn pg_blackhole() {
    let Some((_cluster, url)) = scratch_database() else {
        return;
    };
    let bound = std::time::Duration::from_secs(60);
    let clock = Arc::new(ManualClock::new(T0));
    let a = Arc::new(Hsm::init_postgres(&url, None, &pass(), options(clock)).unwrap());
    let caller = root();
    let key = new_key(&a, &caller);
    wait_until(bound, || !a.feed_down()).expect("the change feed is up");
    a.gate(&caller).encrypt(&key, b"x", &ctx(), None).unwrap();
    let timed = |a: &Arc<Hsm>, key: &str| {
        let (a, key) = (a.clone(), key.to_string());
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            let outcome = a.gate(&root()).encrypt(&key, b"x", &ctx(), None);
            (outcome.map(|_| ()), start.elapsed())
        })
    };
    tc("qdisc add dev lo root blackhole");
    let dropped_at = std::time::Instant::now();
    eprintln!("blackhole: on");
    let in_flight = timed(&a, &key);
    let detected = wait_until(bound, || a.feed_down()).expect("the feed counted down");
    eprintln!("blackhole: the feed counted down after {detected:?}");
    let (outcome, took) = in_flight.join().unwrap();
    eprintln!("blackhole: a call sent as the network went: {outcome:?} after {took:?}");
    for _ in 0..3 {
        let (outcome, took) = timed(&a, &key).join().unwrap();
        eprintln!("blackhole: a call after detection: {outcome:?} after {took:?}");
    }
    tc("qdisc del dev lo root");
    let back = wait_until(bound, || {
        a.gate(&caller).encrypt(&key, b"x", &ctx(), None).is_ok()
    });
    eprintln!(
        "blackhole: serving again {back:?} after the network came back ({:?} in all)",
        dropped_at.elapsed()
    );
}

/// Not a test: a node whose network drops silently in the middle of a
/// write transaction, holding the lock every node's writers take: how
/// long another node's write waits (the server must end the lost
/// session; its keepalive, set by each pooled connection, does). Node B
/// reaches the server over its Unix socket, which the blackhole leaves
/// alone. Run like [`pg_blackhole`].
#[test]
#[ignore]
fn pg_blackhole_mid_write() {
    let Some((_cluster, url)) = scratch_database() else {
        return;
    };
    let (rest, name) = url.rsplit_once('/').unwrap();
    let port: u16 = rest.rsplit_once(':').unwrap().1.parse().unwrap();
    let mut admin = postgres::Client::connect(
        &format!("host=127.0.0.1 port={port} user=tinfoil dbname=postgres"),
        postgres::NoTls,
    )
    .unwrap();
    let dirs: String = admin
        .query_one("SHOW unix_socket_directories", &[])
        .unwrap()
        .get(0);
    let dir = dirs.split(',').next().unwrap().trim().to_string();
    let clock = Arc::new(ManualClock::new(T0));
    let a = Arc::new(Hsm::init_postgres(&url, None, &pass(), options(clock.clone())).unwrap());
    let b_url = format!("host={dir} port={port} user=tinfoil dbname={name}");
    let b = Arc::new(Hsm::open_postgres(&b_url, None, &pass(), options(clock)).unwrap());
    let key = b
        .gate(&root())
        .create_key(CreateKeyRequest::default())
        .unwrap()
        .key_id;
    let (entered, in_tx) = std::sync::mpsc::channel();
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let writer = {
        let a = a.clone();
        std::thread::spawn(move || {
            let outcome = a.lock_store().write(|tx| {
                entered.send(()).ok();
                wait.recv().ok();
                tx.execute("SELECT 1", &[]).map(|_| ())
            });
            outcome
        })
    };
    in_tx.recv().unwrap();
    tc("qdisc add dev lo root blackhole");
    let dropped_at = std::time::Instant::now();
    go.send(()).unwrap();
    let (done, result) = std::sync::mpsc::channel();
    {
        let (b, key) = (b.clone(), key.clone());
        std::thread::spawn(move || {
            let outcome = b.gate(&root()).disable_key(&key).map(|_| ());
            done.send((outcome, dropped_at.elapsed())).ok();
        });
    }
    match result.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok((outcome, took)) => {
            eprintln!("blackhole mid-write: node B's write: {outcome:?} after {took:?}")
        }
        Err(_) => eprintln!("blackhole mid-write: node B's write still waits after 60 s"),
    }
    let outcome = writer.join().unwrap();
    eprintln!(
        "blackhole mid-write: node A's write: {outcome:?} after {:?}",
        dropped_at.elapsed()
    );
    tc("qdisc del dev lo root");
}

/// Calls per second of `f` over about `secs` seconds.
fn rate(secs: f64, mut f: impl FnMut()) -> f64 {
    let start = std::time::Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        f();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Not a test: the PostgreSQL engine's call rate (one node, one thread)
/// with each statement prepared once per connection, against the same
/// calls preparing every statement every time (the reference, measured
/// in the same run, rounds interleaved). Run with
/// `cargo test -p hsm-core --lib pg_read_rate -- --ignored --nocapture`.
#[test]
#[ignore]
fn pg_read_rate() {
    use std::sync::atomic::Ordering;
    let Some((_cluster, url)) = scratch_database() else {
        return;
    };
    let clock = Arc::new(ManualClock::new(T0));
    let hsm = Hsm::init_postgres(&url, None, &pass(), options(clock)).unwrap();
    let caller = root();
    let gate = hsm.gate(&caller);
    let key = gate.create_key(CreateKeyRequest::default()).unwrap().key_id;
    gate.create_alias("alias/rate", &key).unwrap();
    let id = uuid::Uuid::parse_str(&key).unwrap();
    let reader = hsm.lock_store().reader().unwrap();
    type Call<'a> = Box<dyn FnMut() + 'a>;
    let mut calls: Vec<(&str, Call<'_>)> = vec![
        (
            "key record read (3 statements, one snapshot)",
            Box::new(|| {
                reader.key(&id).unwrap().unwrap();
            }),
        ),
        (
            "alias read (1 statement)",
            Box::new(|| {
                reader.alias("alias/rate").unwrap().unwrap();
            }),
        ),
        (
            "Encrypt, cached key (its audit record's write)",
            Box::new(|| {
                gate.encrypt(&key, b"rate", &ctx(), None).unwrap();
            }),
        ),
    ];
    for (name, call) in &mut calls {
        let (mut cached, mut uncached) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            for (uncache, out) in [(false, &mut cached), (true, &mut uncached)] {
                super::engine::UNCACHED.store(uncache, Ordering::Relaxed);
                out.push(rate(1.0, &mut *call));
            }
        }
        super::engine::UNCACHED.store(false, Ordering::Relaxed);
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (c, u) = (median(&mut cached), median(&mut uncached));
        eprintln!(
            "PostgreSQL, one thread, {name}: {c:.0}/s prepared once, {u:.0}/s parsed every call \
             (x{:.2})",
            c / u
        );
    }
    // Writes: BEGIN, the write lock and the chain's ends in one round
    // trip, or three.
    let (mut together, mut apart) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        for (separate, out) in [(false, &mut together), (true, &mut apart)] {
            super::engine::SEPARATE_LOCK.store(separate, Ordering::Relaxed);
            out.push(rate(1.0, || {
                gate.encrypt(&key, b"rate", &ctx(), None).unwrap();
            }));
        }
    }
    super::engine::SEPARATE_LOCK.store(false, Ordering::Relaxed);
    together.sort_by(f64::total_cmp);
    apart.sort_by(f64::total_cmp);
    eprintln!(
        "PostgreSQL, one thread, Encrypt (its audit record's write): {:.0}/s with BEGIN and the \
         lock and the chain's ends in one round trip, {:.0}/s in three (x{:.2})",
        together[1],
        apart[1],
        together[1] / apart[1]
    );
}
