//! Tests of what lies on disk, which need the core's internals: raw key
//! material never appears in the database or its WAL; destroyed material
//! is gone; a material row moved onto another key does not unwrap.

use std::path::Path;
use std::sync::Arc;

use secrecy::SecretString;
use uuid::Uuid;

use crate::clock::{Clock, ManualClock, DAY};
use crate::outputs::CreateKeyRequest;
use crate::{EncryptionContext, Error, Hsm, HsmOptions, KdfParams};

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

fn all_files_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn key_uuid(hsm: &Hsm, key_id: &str) -> Uuid {
    hsm.read_state().resolve(key_id).unwrap()
}

#[test]
fn raw_key_material_never_reaches_the_database_or_wal() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    let hsm = Hsm::init(dir.path(), &SecretString::from("pass"), options(clock)).unwrap();
    let mut secrets = Vec::new();
    for _ in 0..5 {
        let key = hsm.create_key(CreateKeyRequest::default()).unwrap();
        hsm.rotate_key_on_demand(&key.key_id).unwrap();
        let state = hsm.read_state();
        let record = state.key(&key.key_id).unwrap();
        for version in 1..=2 {
            secrets.push(hsm.material(&record, version).unwrap().to_vec());
        }
    }
    let files = all_files_bytes(dir.path());
    assert!(
        files.iter().any(|(name, _)| name.ends_with("-wal")),
        "the WAL should exist"
    );
    for secret in &secrets {
        assert_eq!(secret.len(), 32);
        for (name, bytes) in &files {
            assert!(!contains(bytes, secret), "raw key material found in {name}");
        }
    }
}

#[test]
fn destroyed_material_is_gone_from_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    let hsm = Hsm::init(
        dir.path(),
        &SecretString::from("pass"),
        options(clock.clone()),
    )
    .unwrap();
    let key = hsm.create_key(CreateKeyRequest::default()).unwrap();
    let keep = hsm.create_key(CreateKeyRequest::default()).unwrap();
    hsm.rotate_key_on_demand(&key.key_id).unwrap();
    let id = key_uuid(&hsm, &key.key_id);
    let wrapped: Vec<Vec<u8>> = (1..=2)
        .map(|v| hsm.wrapped_for_test(&id, v).unwrap())
        .collect();
    let blob = hsm
        .encrypt(&key.key_id, b"shred me", &EncryptionContext::new(), None)
        .unwrap()
        .ciphertext_blob;
    // Before the purge the wrapped rows are on disk (the test can fail).
    let before = all_files_bytes(dir.path());
    assert!(wrapped
        .iter()
        .all(|w| before.iter().any(|(_, bytes)| contains(bytes, w))));

    hsm.schedule_key_deletion(&key.key_id, Some(7)).unwrap();
    clock.advance(7 * DAY);
    let report = hsm.tick(clock.now()).unwrap();
    assert_eq!(report.destroyed, vec![key.arn.clone()]);
    for (name, bytes) in all_files_bytes(dir.path()) {
        for w in &wrapped {
            assert!(!contains(&bytes, w), "destroyed material still in {name}");
        }
    }
    assert!(matches!(
        hsm.describe_key(&key.key_id),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        hsm.decrypt(&blob, &EncryptionContext::new(), None, None),
        Err(Error::NotFound(_))
    ));
    // The other key is untouched.
    assert!(hsm
        .encrypt(&keep.key_id, b"x", &EncryptionContext::new(), None)
        .is_ok());
}

#[test]
fn a_material_row_moved_onto_another_key_does_not_unwrap() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    let pass = SecretString::from("pass");
    let (a, b) = {
        let hsm = Hsm::init(dir.path(), &pass, options(clock.clone())).unwrap();
        let a = hsm.create_key(CreateKeyRequest::default()).unwrap();
        let b = hsm.create_key(CreateKeyRequest::default()).unwrap();
        (a, b)
    };
    {
        let conn = rusqlite::Connection::open(dir.path().join(crate::store::DB_FILE)).unwrap();
        conn.execute(
            "UPDATE key_versions SET wrapped_material =
               (SELECT wrapped_material FROM key_versions WHERE key_id = ?1) WHERE key_id = ?2",
            [&a.key_id, &b.key_id],
        )
        .unwrap();
    }
    let hsm = Hsm::open(dir.path(), &pass, options(clock)).unwrap();
    let ctx = EncryptionContext::new();
    assert!(hsm.encrypt(&a.key_id, b"fine", &ctx, None).is_ok());
    let err = hsm.encrypt(&b.key_id, b"swapped", &ctx, None).unwrap_err();
    assert!(matches!(err, Error::Internal(_)), "{err:?}");
}
