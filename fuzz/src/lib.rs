//! Fixtures shared by the fuzz targets: a throwaway store on tmpfs with
//! cheap KDF parameters, replaced every few thousand runs so the audit log
//! of a long run does not fill memory.

use std::path::PathBuf;
use std::sync::Arc;

use hsm_core::{
    Caller, CreateKeyRequest, Hsm, HsmOptions, KdfParams, KeySpec, ManualClock, Principal,
    SecretString,
};

/// Runs on one store before it is replaced.
pub const RUNS_PER_STORE: u64 = 20_000;

/// A store in a temporary directory (removed on drop).
pub struct Store {
    /// The store.
    pub hsm: Arc<Hsm>,
    /// How many runs used it.
    pub runs: u64,
    _dir: tempfile::TempDir,
}

fn scratch() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    }
}

impl Store {
    /// A fresh store (Argon2id at 8 MiB, one pass; audit records not fsynced).
    pub fn new() -> Store {
        let dir = tempfile::Builder::new()
            .prefix("tinfoil-fuzz-")
            .tempdir_in(scratch())
            .expect("tempdir");
        let options = HsmOptions {
            kdf: KdfParams {
                memory_kib: 8192,
                iterations: 1,
                parallelism: 1,
            },
            clock: Arc::new(ManualClock::new(1_700_000_000)),
            cache_capacity: 16,
            account: Default::default(),
        };
        let secret = SecretString::from("fuzzing passphrase".to_string());
        let hsm = Hsm::init(&dir.path().join("store"), &secret, options).expect("init");
        hsm.set_audit_fsync(false);
        Store {
            hsm: Arc::new(hsm),
            runs: 0,
            _dir: dir,
        }
    }

    /// A fresh store holding three keys with well-known aliases, so
    /// requests that name `alias/fuzz` (AES), `alias/fuzz-ecc` (ECC P-256,
    /// signing) or `alias/fuzz-hmac` (HMAC-256) reach the operation itself.
    pub fn with_keys() -> Store {
        let store = Store::new();
        let caller = root();
        let gate = store.hsm.gate(&caller);
        for (alias, spec) in [
            ("alias/fuzz", None),
            ("alias/fuzz-ecc", Some(KeySpec::EccNistP256)),
            ("alias/fuzz-hmac", Some(KeySpec::Hmac256)),
            ("alias/fuzz-mldsa", Some(KeySpec::MlDsa44)),
            ("alias/fuzz-mlkem", Some(KeySpec::MlKem512)),
        ] {
            let key = gate
                .create_key(CreateKeyRequest {
                    key_spec: spec,
                    ..Default::default()
                })
                .expect("create key");
            gate.create_alias(alias, &key.key_id).expect("alias");
        }
        store
    }

    /// Counts a run; true when the store should be replaced.
    pub fn worn_out(&mut self) -> bool {
        self.runs += 1;
        self.runs > RUNS_PER_STORE
    }
}

/// The account's administrators, as the in-process caller.
pub fn root() -> Caller {
    Caller::new(Principal::Root, "fuzz")
}
