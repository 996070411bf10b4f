//! Application locking (PKCS#11 v2.40 section 5.4): C_Initialize with the
//! four mutex callbacks and without CKF_OS_LOCKING_OK makes the module
//! use the application's mutexes. The module then creates one mutex in
//! C_Initialize and holds it around the body of every entry point (a big
//! lock: calls run one at a time), unlocking on every path, errors and
//! caught panics included; C_Finalize destroys it. With
//! CKF_OS_LOCKING_OK, or without callbacks, the module's own (OS) locks
//! suffice and no callback is called.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

use cryptoki_sys::*;

use crate::error::{Pkcs11Error, Result};

type MutexFn = unsafe extern "C" fn(CK_VOID_PTR) -> CK_RV;

/// The application's mutex and the functions that operate on it.
pub(crate) struct AppMutex {
    pid: u32,
    mutex: CK_VOID_PTR,
    destroy: MutexFn,
    lock: MutexFn,
    unlock: MutexFn,
}

// SAFETY: the handle is opaque to the module; the application made it
// for use from any of its threads (that is what the callbacks are for).
unsafe impl Send for AppMutex {}
unsafe impl Sync for AppMutex {}

/// The installed mutex; only used in the process that installed it (a
/// forked child leaks its parent's, never locking or destroying it).
static APP: RwLock<Option<AppMutex>> = RwLock::new(None);
/// Whether APP may hold a mutex: keeps the read lock off the fast path.
static ACTIVE: AtomicBool = AtomicBool::new(false);

fn app_error(rv: CK_RV) -> Pkcs11Error {
    Pkcs11Error::rv_with(rv, "an application mutex callback failed")
}

/// Reads the locking part of C_Initialize's arguments: `Ok(None)` when the
/// module uses its own locks; with the callbacks and without
/// CKF_OS_LOCKING_OK, creates the application mutex (its CreateMutex
/// error is returned as is; the mutex it makes, NULL included, is opaque).
pub(crate) fn from_args(args: &CK_C_INITIALIZE_ARGS) -> Result<Option<AppMutex>> {
    let (create, destroy, lock, unlock) = match (
        args.CreateMutex,
        args.DestroyMutex,
        args.LockMutex,
        args.UnlockMutex,
    ) {
        (None, None, None, None) => return Ok(None),
        (Some(c), Some(d), Some(l), Some(u)) => (c, d, l, u),
        _ => {
            return Err(Pkcs11Error::ArgumentsBad(
                "mutex callbacks: all four or none",
            ))
        }
    };
    if args.flags & CKF_OS_LOCKING_OK != 0 {
        // Either may be used (section 5.4): the module's own locks.
        return Ok(None);
    }
    let mut mutex: CK_VOID_PTR = std::ptr::null_mut();
    // SAFETY: the application supplied this function for this purpose.
    let rv = unsafe { create(&mut mutex) };
    if rv != CKR_OK {
        return Err(app_error(rv));
    }
    // The mutex is opaque to the module: NULL is a value like any other
    // (applications whose callbacks do nothing return it; SoftHSM accepts
    // it too).
    Ok(Some(AppMutex {
        pid: crate::ffi::fork::current_pid(),
        mutex,
        destroy,
        lock,
        unlock,
    }))
}

impl AppMutex {
    /// Destroys a mutex that was never installed (C_Initialize failed).
    pub(crate) fn discard(self) {
        // SAFETY: a mutex the application created, not locked, never
        // used again. Its error cannot change the outcome.
        unsafe { (self.destroy)(self.mutex) };
    }
}

/// Installs the application's mutex (or none) for this process. Any
/// mutex inherited from a parent process is leaked, never destroyed.
pub(crate) fn install(app: Option<AppMutex>) {
    let mut slot = APP.write().unwrap_or_else(|p| p.into_inner());
    ACTIVE.store(app.is_some(), Ordering::SeqCst);
    // Replacing does not destroy (AppMutex has no Drop): a mutex left from
    // a parent process is the parent's.
    *slot = app;
}

/// After C_Finalize: removes this process's mutex and destroys it. Its
/// error is ignored, the module being finalised already.
pub(crate) fn uninstall() {
    let mut slot = APP.write().unwrap_or_else(|p| p.into_inner());
    if slot
        .as_ref()
        .is_some_and(|a| a.pid == crate::ffi::fork::current_pid())
    {
        ACTIVE.store(false, Ordering::SeqCst);
        if let Some(app) = slot.take() {
            app.discard();
        }
    }
}

/// The application mutex, held until [`Held::release`].
pub(crate) struct Held {
    mutex: CK_VOID_PTR,
    unlock: MutexFn,
}

impl Held {
    /// Unlocks; returns the callback's code.
    pub(crate) fn release(self) -> CK_RV {
        // SAFETY: the mutex this thread locked in `acquire`.
        unsafe { (self.unlock)(self.mutex) }
    }
}

/// Locks the application mutex when one is installed in this process.
/// Fails with the LockMutex callback's code (nothing was locked then).
pub(crate) fn acquire() -> std::result::Result<Option<Held>, CK_RV> {
    if !ACTIVE.load(Ordering::Acquire) {
        return Ok(None);
    }
    let (mutex, lock, unlock) = {
        let slot = APP.read().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            Some(a) if a.pid == crate::ffi::fork::current_pid() => (a.mutex, a.lock, a.unlock),
            _ => return Ok(None),
        }
    };
    // SAFETY: the application's mutex and its LockMutex function.
    let rv = unsafe { lock(mutex) };
    if rv != CKR_OK {
        return Err(rv);
    }
    Ok(Some(Held { mutex, unlock }))
}
