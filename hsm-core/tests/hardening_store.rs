//! Hardening of the store's files (issue 13): init is atomic and clears
//! the leftovers of an interrupted one, every file is mode 0600, and bad
//! KDF parameters are refused before anything touches the disk.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use hsm_core::{Hsm, HsmOptions, KdfParams, ManualClock, SecretString};

fn options(kdf: KdfParams) -> HsmOptions {
    HsmOptions {
        kdf,
        clock: Arc::new(ManualClock::new(1_700_000_000)),
        ..Default::default()
    }
}

fn cheap() -> KdfParams {
    KdfParams {
        memory_kib: 8192,
        iterations: 1,
        parallelism: 1,
    }
}

fn pass() -> SecretString {
    SecretString::from("hardening passphrase")
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every regular file in the data directory is 0600.
fn assert_private(dir: &Path) {
    for name in names(dir) {
        let path = dir.join(&name);
        if std::fs::metadata(&path).unwrap().is_file() {
            assert_eq!(mode(&path), 0o600, "{name} is {:o}", mode(&path));
        }
    }
}

#[test]
fn the_store_files_are_0600_and_no_temporary_file_stays() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let hsm = Hsm::init(&dir, &pass(), options(cheap())).unwrap();
    hsm.create_key(Default::default()).unwrap();
    let files = names(&dir);
    assert!(files.contains(&"tinfoil.db".to_string()), "{files:?}");
    assert!(files.contains(&"tinfoil.db-wal".to_string()), "{files:?}");
    assert!(
        !files.iter().any(|f| f.contains("partial")),
        "a temporary file stayed: {files:?}"
    );
    assert_private(&dir);
    drop(hsm);

    // A store made before the rule (0644 files) is restricted when opened.
    for name in names(&dir) {
        std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o644)).ok();
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let hsm = Hsm::open(&dir, &pass(), options(cheap())).unwrap();
    assert_eq!(hsm.list_keys(None, None).unwrap().items.len(), 1);
    assert_private(&dir);
}

#[test]
fn leftovers_of_an_interrupted_init_are_not_a_store_and_init_clears_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    // What a kill -9 during init leaves: the lock and a half-built database.
    std::fs::write(dir.join("tinfoil.lock"), b"").unwrap();
    std::fs::write(dir.join("tinfoil.db.partial"), b"SQLite format 3\0half").unwrap();
    std::fs::write(dir.join("tinfoil.db.partial-journal"), b"junk").unwrap();
    assert!(!Hsm::is_initialized(&dir));
    let err = Hsm::open(&dir, &pass(), options(cheap())).unwrap_err();
    assert_eq!(err.kms_name(), "StoreUnavailableException");
    assert!(err.to_string().contains("run init first"), "{err}");

    let hsm = Hsm::init(&dir, &pass(), options(cheap())).unwrap();
    hsm.create_key(Default::default()).unwrap();
    drop(hsm);
    assert!(!names(&dir).iter().any(|f| f.contains("partial")));
    Hsm::open(&dir, &pass(), options(cheap())).unwrap();
}

/// An older version's interrupted init left `tinfoil.db` with the schema
/// but no sealed root key: open says what to do, init replaces it.
#[test]
fn an_incomplete_store_of_an_older_init_is_explained_and_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    std::fs::create_dir(&dir).unwrap();
    unsealed_database(&dir.join("tinfoil.db"));
    assert!(Hsm::is_incomplete(&dir));
    assert!(!Hsm::is_initialized(&dir));
    let err = Hsm::open(&dir, &pass(), options(cheap())).unwrap_err();
    assert_eq!(err.kms_name(), "StoreUnavailableException");
    let text = err.to_string();
    assert!(
        text.contains("never fully initialised") && text.contains("run init again"),
        "{text}"
    );
    let hsm = Hsm::init(&dir, &pass(), options(cheap())).unwrap();
    hsm.create_key(Default::default()).unwrap();
    drop(hsm);
    assert!(!Hsm::is_incomplete(&dir));
    assert!(Hsm::is_initialized(&dir));
    Hsm::open(&dir, &pass(), options(cheap())).unwrap();

    // An empty tinfoil.db (killed before SQLite wrote its header) too.
    let other = tmp.path().join("empty");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("tinfoil.db"), b"").unwrap();
    assert!(Hsm::is_incomplete(&other));
    Hsm::init(&other, &pass(), options(cheap())).unwrap();
}

/// A database that is not an incomplete store (unreadable, or holding
/// keys) is never removed: init refuses and leaves it as it was.
#[test]
fn init_never_removes_what_it_cannot_prove_incomplete() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("tinfoil.db"), b"not a database at all, 32 bytes+").unwrap();
    assert!(!Hsm::is_incomplete(&dir));
    let err = Hsm::init(&dir, &pass(), options(cheap())).unwrap_err();
    assert_eq!(err.kms_name(), "AlreadyExistsException", "{err}");
    assert_eq!(
        std::fs::read(dir.join("tinfoil.db")).unwrap(),
        b"not a database at all, 32 bytes+"
    );
}

/// The database an older version's init left when killed after the schema
/// and before sealing: a store's tables without a root key.
fn unsealed_database(db: &Path) {
    let dir = db.parent().unwrap();
    let scratch = dir.join("scratch");
    drop(Hsm::init(&scratch, &pass(), options(cheap())).unwrap());
    std::fs::copy(scratch.join("tinfoil.db"), db).unwrap();
    std::fs::remove_dir_all(&scratch).unwrap();
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute("DELETE FROM meta", []).unwrap();
}

#[test]
fn nul_characters_are_validation_errors_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let hsm = Hsm::init(&tmp.path().join("s"), &pass(), options(cheap())).unwrap();
    let key = hsm.create_key(Default::default()).unwrap().key_id;
    let mut context = hsm_core::EncryptionContext::new();
    context.insert("bucket\0".into(), "v".into());
    let err = hsm.encrypt(&key, b"p", &context, None).unwrap_err();
    assert_eq!(err.kms_name(), "ValidationException", "{err}");
    assert!(err.to_string().contains("NUL"), "{err}");
    let err = hsm
        .encrypt(&format!("{key}\0"), b"p", &Default::default(), None)
        .unwrap_err();
    assert_eq!(err.kms_name(), "ValidationException", "{err}");
    // A NUL in a context value is data, as in KMS.
    let mut context = hsm_core::EncryptionContext::new();
    context.insert("bucket".into(), "v\0".into());
    hsm.encrypt(&key, b"p", &context, None).unwrap();
}
