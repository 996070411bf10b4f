//! Shared test fixtures: load our module or SoftHSM2 (the control) with a
//! fresh, private configuration, one test at a time per process (a PKCS#11
//! library is process-global state).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

/// Calls a function of a [`Raw`] module's list. The arguments are raw
/// pointers the test built on purpose, some of them deliberately bad.
macro_rules! call {
    ($raw:expr, $name:ident($($arg:expr),*)) => {
        unsafe { ($raw.f.$name.expect(stringify!($name)))($($arg),*) }
    };
}

pub mod daemon;
pub mod openssl;
pub mod raw;
pub mod tool;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

/// SoftHSM2 as installed by the Debian package softhsm2.
pub const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// PINs used by the fixtures.
pub const SO_PIN: &str = "so-secret-1";
/// The user PIN.
pub const USER_PIN: &str = "user-pin-1";

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Which module a case runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// libtinfoil_pkcs11.so on the memory backend.
    Tinfoil,
    /// libtinfoil_pkcs11.so on the embedded backend (hsm-core in process).
    Embedded,
    /// SoftHSM2, the control.
    SoftHsm,
    /// libtinfoil_pkcs11.so on the daemon backend, with a real tinfoild.
    Daemon,
}

/// The directory holding the test binary's build outputs (target/debug).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target/debug")
        .to_path_buf()
}

/// Path of our module as cargo built it for these tests: `cargo test`
/// builds the cdylib into target/debug/deps (next to the test binary) and
/// does not always copy it up to target/debug.
pub fn tinfoil_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let path = exe.with_file_name("libtinfoil_pkcs11.so");
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A loaded, initialised module with its private state directory.
pub struct Loaded {
    /// The library.
    pub p11: Pkcs11,
    /// Which one.
    pub which: Which,
    /// Its state directory (removed on drop).
    pub dir: tempfile::TempDir,
    _guard: MutexGuard<'static, ()>,
}

/// Writes the configuration for `which` into a fresh directory and points
/// the environment at it. The caller must hold ONE_AT_A_TIME.
pub fn configure(which: Which) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = match which {
        Which::Tinfoil => {
            let conf = dir.path().join("tinfoil.toml");
            std::fs::write(&conf, "backend = \"memory\"\n").unwrap();
            std::env::set_var("TINFOIL_PKCS11_CONFIG", &conf);
            tinfoil_path()
        }
        Which::Embedded => {
            write_embedded_config(dir.path());
            tinfoil_path()
        }
        Which::Daemon => {
            let endpoint = daemon::start(dir.path());
            let conf = dir.path().join("tinfoil.toml");
            std::fs::write(
                &conf,
                format!("backend = \"daemon\"\nendpoint = \"{endpoint}\"\n"),
            )
            .unwrap();
            std::env::set_var("TINFOIL_PKCS11_CONFIG", &conf);
            tinfoil_path()
        }
        Which::SoftHsm => {
            let tokens = dir.path().join("tokens");
            std::fs::create_dir(&tokens).unwrap();
            let conf = dir.path().join("softhsm2.conf");
            std::fs::write(
                &conf,
                format!(
                    "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                    tokens.display()
                ),
            )
            .unwrap();
            std::env::set_var("SOFTHSM2_CONF", &conf);
            PathBuf::from(SOFTHSM)
        }
    };
    (dir, path)
}

/// Writes an embedded-backend configuration (store in `dir/data`, cheap
/// KDF for tests) and points TINFOIL_PKCS11_CONFIG at it.
pub fn write_embedded_config(dir: &std::path::Path) {
    let pass = dir.join("passphrase");
    std::fs::write(&pass, "a passphrase for tests\n").unwrap();
    restrict(&pass);
    let conf = dir.join("tinfoil.toml");
    std::fs::write(
        &conf,
        format!(
            "backend = \"embedded\"\ndata_dir = \"{}\"\npassphrase_file = \"{}\"\nkdf_memory_kib = 8192\nkdf_iterations = 1\n",
            dir.join("data").display(),
            pass.display()
        ),
    )
    .unwrap();
    std::env::set_var("TINFOIL_PKCS11_CONFIG", &conf);
}

/// Makes a file readable by its owner only (the module refuses a
/// passphrase file others can read).
pub fn restrict(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Takes the per-process lock (a panicking test must not wedge the rest).
pub fn exclusive() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// Our module on the daemon backend, its tinfoild started with
/// `serve_args` (e.g. a smaller `--max-message-bytes`).
pub fn load_daemon_with(serve_args: &[&str]) -> Loaded {
    let guard = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = daemon::start_with(dir.path(), serve_args);
    let conf = dir.path().join("tinfoil.toml");
    std::fs::write(
        &conf,
        format!("backend = \"daemon\"\nendpoint = \"{endpoint}\"\n"),
    )
    .unwrap();
    std::env::set_var("TINFOIL_PKCS11_CONFIG", &conf);
    let p11 = Pkcs11::new(tinfoil_path()).expect("load module");
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    Loaded {
        p11,
        which: Which::Daemon,
        dir,
        _guard: guard,
    }
}

/// Loads and initialises `which` with OS locking.
pub fn load(which: Which) -> Loaded {
    let guard = exclusive();
    let (dir, path) = configure(which);
    let p11 = Pkcs11::new(&path).expect("load module");
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    Loaded {
        p11,
        which,
        dir,
        _guard: guard,
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        // Our module stays mapped after dlclose (-z nodelete), so finalise
        // explicitly for the next test, even after a failed assertion.
        let _ = self.p11.clone().finalize();
        daemon::stop();
    }
}

impl Loaded {
    /// The first slot whose token is not initialised.
    pub fn free_slot(&self) -> Slot {
        self.p11
            .get_all_slots()
            .unwrap()
            .into_iter()
            .find(|s| !self.p11.get_token_info(*s).unwrap().token_initialized())
            .expect("a free slot")
    }

    /// Initialises a token labelled `label` with SO and user PINs set.
    pub fn token(&self, label: &str) -> Slot {
        let slot = self.free_slot();
        self.p11
            .init_token(slot, &AuthPin::new(SO_PIN.into()), label)
            .expect("C_InitToken");
        // SoftHSM moves a fresh token to a new slot id; find it by label.
        let slot = self
            .p11
            .get_slots_with_initialized_token()
            .unwrap()
            .into_iter()
            .find(|s| self.p11.get_token_info(*s).unwrap().label() == label)
            .expect("the new token");
        let session = self.p11.open_rw_session(slot).unwrap();
        session
            .login(UserType::So, Some(&AuthPin::new(SO_PIN.into())))
            .unwrap();
        session.init_pin(&AuthPin::new(USER_PIN.into())).unwrap();
        session.logout().unwrap();
        slot
    }
}

/// Expands each case `fn(Which)` into a module of #[test]s, one per
/// `test_name => Which` pair of the list.
#[macro_export]
macro_rules! matrix {
    ($variants:tt; $($case:ident),* $(,)?) => {
        $( $crate::matrix_case!($variants $case); )*
    };
}

/// One case of [`matrix!`].
#[macro_export]
macro_rules! matrix_case {
    ([$($test:ident => $which:ident),*] $case:ident) => {
        mod $case {
            $(
                #[test]
                fn $test() {
                    super::$case(super::common::Which::$which)
                }
            )*
        }
    };
}

/// Our module on the memory, the embedded and the daemon backend, and
/// SoftHSM2 as the control.
#[macro_export]
macro_rules! against_both {
    ($($case:ident),* $(,)?) => {
        $crate::matrix!([tinfoil => Tinfoil, tinfoil_embedded => Embedded,
            tinfoil_daemon => Daemon, softhsm_control => SoftHsm]; $($case),*);
    };
}

/// Like `against_both!`, for cases that need key mechanisms: our module
/// on the embedded and the daemon backend, and SoftHSM2.
#[macro_export]
macro_rules! with_keys {
    ($($case:ident),* $(,)?) => {
        $crate::matrix!([tinfoil_embedded => Embedded, tinfoil_daemon => Daemon,
            softhsm_control => SoftHsm]; $($case),*);
    };
}

/// For cases SoftHSM 2.6 cannot serve as a control (it lacks the feature
/// or crashes): our module on every backend.
#[macro_export]
macro_rules! ours_only {
    ($($case:ident),* $(,)?) => {
        $crate::matrix!([tinfoil => Tinfoil, tinfoil_embedded => Embedded,
            tinfoil_daemon => Daemon]; $($case),*);
    };
}

/// For cases of our module's key mechanisms that SoftHSM 2.6 lacks: the
/// embedded and the daemon backend.
#[macro_export]
macro_rules! ours_only_embedded {
    ($($case:ident),* $(,)?) => {
        $crate::matrix!([tinfoil_embedded => Embedded, tinfoil_daemon => Daemon]; $($case),*);
    };
}

/// The CK_RV of a call that had to fail.
#[track_caller]
pub fn rv<T: std::fmt::Debug>(
    result: Result<T, cryptoki::error::Error>,
) -> cryptoki::error::RvError {
    match result {
        Err(cryptoki::error::Error::Pkcs11(rv, _)) => rv,
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

/// A read-write session, logged in as the user, on a new token `label`.
pub fn user_session(m: &Loaded, label: &str) -> cryptoki::session::Session {
    let slot = m.token(label);
    let session = m.p11.open_rw_session(slot).unwrap();
    session
        .login(
            cryptoki::session::UserType::User,
            Some(&cryptoki::types::AuthPin::new(USER_PIN.into())),
        )
        .unwrap();
    session
}

/// A DER TLV (lengths up to 0xFFFF).
pub fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match body.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(body);
    out
}

/// A DER INTEGER of an unsigned big-endian magnitude.
pub fn der_uint(magnitude: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = magnitude.iter().copied().skip_while(|b| *b == 0).collect();
    let mut body = Vec::new();
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        body.push(0);
    }
    body.extend(trimmed);
    der(0x02, &body)
}

/// Imports the public half of an RSA key pair as a session public key
/// object that may verify (C_CreateObject with its modulus and exponent).
pub fn import_rsa_public(
    session: &cryptoki::session::Session,
    public: cryptoki::object::ObjectHandle,
) -> cryptoki::object::ObjectHandle {
    use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
    let attrs = session
        .get_attributes(
            public,
            &[AttributeType::Modulus, AttributeType::PublicExponent],
        )
        .unwrap();
    let mut template = vec![
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(KeyType::RSA),
        Attribute::Token(false),
        Attribute::Verify(true),
    ];
    template.extend(attrs);
    session.create_object(&template).unwrap()
}

/// The store's PKCS#11 audit records (exported as an administrator would:
/// the embedded store with the CLI once the module let it go, the daemon's
/// through it), verified; with the export's text.
pub fn exported_pkcs11_records(m: &Loaded) -> (Vec<serde_json::Value>, String) {
    let export = tempfile::tempdir().unwrap();
    let out_dir = export.path().join("export");
    let out = if m.which == Which::Embedded {
        let _ = m.p11.clone().finalize();
        std::process::Command::new(daemon::binary("tinfoil"))
            .args(["export-audit-log", "--output-dir"])
            .arg(&out_dir)
            .arg("--data-dir")
            .arg(m.dir.path().join("data"))
            .arg("--passphrase-file")
            .arg(m.dir.path().join("passphrase"))
            .env_remove("TINFOIL_ENDPOINT")
            .output()
            .unwrap()
    } else {
        daemon::cli(&[
            "export-audit-log",
            "--output-dir",
            out_dir.to_str().unwrap(),
        ])
    };
    assert!(out.status.success(), "{out:?}");
    let key = std::fs::read_to_string(out_dir.join("audit-public-key.txt")).unwrap();
    hsm_core::audit::verify_dir(&out_dir, key.trim()).expect("the chain verifies");
    let mut files: Vec<_> = std::fs::read_dir(out_dir.join("records"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let text: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let records = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["eventSource"] == "pkcs11.tinfoil.local")
        .collect();
    (records, text)
}
