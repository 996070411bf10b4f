//! The store test matrix: every case runs on both engines, SQLite (a
//! temporary directory) and PostgreSQL (a new database of a throwaway
//! cluster, see `test_cluster`). Each case is a function taking the
//! [`Engine`]; `on_sqlite` and `on_postgres` run the whole list.

use std::sync::Arc;

use secrecy::SecretString;

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
    let key = hsm
        .gate(&caller)
        .create_key(CreateKeyRequest::default())
        .unwrap()
        .key_id;
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

/// One case of the matrix.
type Case = fn(&Engine<'_>);

/// Every case, by name.
const CASES: &[(&str, Case)] = &[
    ("key_lifecycle", key_lifecycle),
    ("aliases_and_tags", aliases_and_tags),
    ("reopen_and_pages", reopen_and_pages),
    ("automatic_rotation", automatic_rotation),
    ("audit_chain", audit_chain),
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
    let fresh = ga.create_key(CreateKeyRequest::default()).unwrap().key_id;
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

/// The database stops under a node that has a key cached: calls fail
/// with StoreUnavailable (no hang, nothing served from the cache while the
/// change feed is down); once it is back, the node serves again without
/// a restart.
fn database_restart(cluster: &Cluster) {
    let bound = std::time::Duration::from_secs(20);
    let url = cluster.new_database();
    let clock = Arc::new(ManualClock::new(T0));
    let hsm = Hsm::init_postgres(&url, None, &pass(), options(clock)).unwrap();
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
    eprintln!("store matrix on PostgreSQL: dump_holds_no_plaintext");
    dump_holds_no_plaintext(&cluster);
    eprintln!("store matrix on PostgreSQL: database_restart");
    database_restart(&cluster);
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

/// Not a test: the PostgreSQL engine's read rate (one node, one thread),
/// for the statement cache's figure. Run with
/// `cargo test -p hsm-core --lib pg_read_rate -- --ignored --nocapture`.
#[test]
#[ignore]
fn pg_read_rate() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.new_database();
    let clock = Arc::new(ManualClock::new(T0));
    let hsm = Hsm::init_postgres(&url, None, &pass(), options(clock)).unwrap();
    let caller = root();
    let gate = hsm.gate(&caller);
    let key = gate.create_key(CreateKeyRequest::default()).unwrap().key_id;
    gate.create_alias("alias/rate", &key).unwrap();
    let id = uuid::Uuid::parse_str(&key).unwrap();
    let reader = hsm.lock_store().reader().unwrap();
    for _ in 0..100 {
        reader.key(&id).unwrap();
    }
    let key_reads = rate(3.0, || {
        reader.key(&id).unwrap().unwrap();
    });
    let alias_reads = rate(3.0, || {
        reader.alias("alias/rate").unwrap().unwrap();
    });
    let encrypts = rate(3.0, || {
        gate.encrypt(&key, b"rate", &ctx(), None).unwrap();
    });
    eprintln!(
        "PostgreSQL, one thread: key record read (3 statements in a snapshot) {key_reads:.0}/s, \
         alias read {alias_reads:.0}/s, cached Encrypt (audited) {encrypts:.0}/s"
    );
}
