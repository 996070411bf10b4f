//! C_Initialize with application mutex callbacks (PKCS#11 v2.40 5.4):
//! without CKF_OS_LOCKING_OK the module must use them. Counting callbacks
//! written here check that they are called, that every lock is unlocked
//! (on errors too), that the mutex is destroyed at C_Finalize, and that a
//! failing callback's code comes back with nothing done. SoftHSM2, which
//! uses supplied callbacks, is the control where it behaves per spec.

#[macro_use]
mod common;

use std::ffi::c_void;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Condvar, Mutex};

use common::raw::{raw, Raw};
use common::{exclusive, Which};
use cryptoki_sys::*;

static CREATED: AtomicUsize = AtomicUsize::new(0);
static DESTROYED: AtomicUsize = AtomicUsize::new(0);
static LOCKED: AtomicUsize = AtomicUsize::new(0);
static UNLOCKED: AtomicUsize = AtomicUsize::new(0);
/// Misuse seen by the callbacks: unlocking a mutex that is not locked,
/// destroying a locked one, a NULL mutex.
static MISUSED: AtomicUsize = AtomicUsize::new(0);
static FAIL_CREATE: AtomicBool = AtomicBool::new(false);
static FAIL_LOCK: AtomicBool = AtomicBool::new(false);

/// The application's mutex: a flag and a condition variable.
struct AppMutex {
    locked: Mutex<bool>,
    freed: Condvar,
}

unsafe extern "C" fn create(out: *mut *mut c_void) -> CK_RV {
    if FAIL_CREATE.load(SeqCst) {
        return CKR_HOST_MEMORY;
    }
    if out.is_null() {
        MISUSED.fetch_add(1, SeqCst);
        return CKR_ARGUMENTS_BAD;
    }
    let m = Box::new(AppMutex {
        locked: Mutex::new(false),
        freed: Condvar::new(),
    });
    unsafe { *out = Box::into_raw(m) as *mut c_void };
    CREATED.fetch_add(1, SeqCst);
    CKR_OK
}

unsafe extern "C" fn destroy(m: *mut c_void) -> CK_RV {
    if m.is_null() {
        MISUSED.fetch_add(1, SeqCst);
        return CKR_MUTEX_BAD;
    }
    let m = unsafe { Box::from_raw(m as *mut AppMutex) };
    if *m.locked.lock().unwrap() {
        MISUSED.fetch_add(1, SeqCst);
    }
    DESTROYED.fetch_add(1, SeqCst);
    CKR_OK
}

unsafe extern "C" fn lock(m: *mut c_void) -> CK_RV {
    if FAIL_LOCK.load(SeqCst) {
        return CKR_MUTEX_BAD;
    }
    let Some(m) = (unsafe { (m as *const AppMutex).as_ref() }) else {
        MISUSED.fetch_add(1, SeqCst);
        return CKR_MUTEX_BAD;
    };
    let mut locked = m.locked.lock().unwrap();
    while *locked {
        locked = m.freed.wait(locked).unwrap();
    }
    *locked = true;
    LOCKED.fetch_add(1, SeqCst);
    CKR_OK
}

unsafe extern "C" fn unlock(m: *mut c_void) -> CK_RV {
    let Some(m) = (unsafe { (m as *const AppMutex).as_ref() }) else {
        MISUSED.fetch_add(1, SeqCst);
        return CKR_MUTEX_BAD;
    };
    let mut locked = m.locked.lock().unwrap();
    if !*locked {
        MISUSED.fetch_add(1, SeqCst);
        return CKR_MUTEX_NOT_LOCKED;
    }
    *locked = false;
    UNLOCKED.fetch_add(1, SeqCst);
    m.freed.notify_one();
    CKR_OK
}

fn reset() {
    for c in [&CREATED, &DESTROYED, &LOCKED, &UNLOCKED, &MISUSED] {
        c.store(0, SeqCst);
    }
    FAIL_CREATE.store(false, SeqCst);
    FAIL_LOCK.store(false, SeqCst);
}

fn args(flags: CK_FLAGS) -> CK_C_INITIALIZE_ARGS {
    CK_C_INITIALIZE_ARGS {
        CreateMutex: Some(create),
        DestroyMutex: Some(destroy),
        LockMutex: Some(lock),
        UnlockMutex: Some(unlock),
        flags,
        pReserved: null_mut(),
    }
}

fn initialize(r: &Raw, a: &mut CK_C_INITIALIZE_ARGS) -> CK_RV {
    call!(r, C_Initialize(a as *mut CK_C_INITIALIZE_ARGS as *mut _))
}

fn slot_count(r: &Raw) -> CK_RV {
    let mut n = 0;
    call!(r, C_GetSlotList(CK_FALSE, null_mut(), &mut n))
}

#[track_caller]
fn assert_balanced() {
    assert_eq!(LOCKED.load(SeqCst), UNLOCKED.load(SeqCst), "lock/unlock");
    assert_eq!(MISUSED.load(SeqCst), 0, "callback misuse");
}

fn callbacks_are_used_balanced_and_destroyed(which: Which) {
    let _g = exclusive();
    reset();
    let r = raw(which);
    assert_eq!(initialize(&r, &mut args(0)), CKR_OK);
    assert!(CREATED.load(SeqCst) >= 1, "CreateMutex was not called");
    let slot = r.token("mutexes");
    assert!(LOCKED.load(SeqCst) > 0, "LockMutex was not called");
    assert_balanced();
    // Error paths unlock too.
    let mut h = 0;
    assert_eq!(
        call!(
            r,
            C_OpenSession(999, CKF_SERIAL_SESSION, null_mut(), None, &mut h)
        ),
        CKR_SLOT_ID_INVALID
    );
    assert_eq!(call!(r, C_CloseSession(12345)), CKR_SESSION_HANDLE_INVALID);
    assert_balanced();
    // Threads take turns on the application's mutex.
    let h = r.session(slot);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..50 {
                    let mut buf = [0u8; 16];
                    assert_eq!(call!(r, C_GenerateRandom(h, buf.as_mut_ptr(), 16)), CKR_OK);
                    assert_eq!(slot_count(&r), CKR_OK);
                }
            });
        }
    });
    assert!(LOCKED.load(SeqCst) >= 400);
    assert_balanced();
    r.finalize();
    assert_balanced();
    assert_eq!(
        DESTROYED.load(SeqCst),
        CREATED.load(SeqCst),
        "every mutex destroyed by C_Finalize"
    );
    if which != Which::SoftHsm {
        assert_eq!(CREATED.load(SeqCst), 1, "one application mutex");
    }
}

fn some_but_not_all_callbacks_are_arguments_bad(which: Which) {
    let _g = exclusive();
    reset();
    let r = raw(which);
    // (SoftHSM checks the set only when CreateMutex is given.)
    let mut partial = args(0);
    partial.UnlockMutex = None;
    assert_eq!(initialize(&r, &mut partial), CKR_ARGUMENTS_BAD);
    let mut partial = args(CKF_OS_LOCKING_OK);
    partial.DestroyMutex = None;
    assert_eq!(initialize(&r, &mut partial), CKR_ARGUMENTS_BAD);
    assert_eq!(CREATED.load(SeqCst), 0);
    assert_eq!(slot_count(&r), CKR_CRYPTOKI_NOT_INITIALIZED);
    // A correct call afterwards works.
    assert_eq!(initialize(&r, &mut args(0)), CKR_OK);
    assert_eq!(slot_count(&r), CKR_OK);
    r.finalize();
    assert_balanced();
}

fn a_failing_create_mutex_leaves_the_module_uninitialised(which: Which) {
    let _g = exclusive();
    reset();
    let r = raw(which);
    FAIL_CREATE.store(true, SeqCst);
    assert_eq!(initialize(&r, &mut args(0)), CKR_HOST_MEMORY);
    assert_eq!(slot_count(&r), CKR_CRYPTOKI_NOT_INITIALIZED);
    FAIL_CREATE.store(false, SeqCst);
    // C_Initialize failing after the mutex was made destroys it.
    let config = std::env::var_os("TINFOIL_PKCS11_CONFIG").unwrap();
    std::env::set_var("TINFOIL_PKCS11_CONFIG", "/nonexistent/tinfoil.toml");
    assert_eq!(initialize(&r, &mut args(0)), CKR_GENERAL_ERROR);
    std::env::set_var("TINFOIL_PKCS11_CONFIG", config);
    assert_eq!(CREATED.load(SeqCst), 1);
    assert_eq!(DESTROYED.load(SeqCst), 1);
    assert_eq!(slot_count(&r), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_eq!(initialize(&r, &mut args(0)), CKR_OK);
    assert_eq!(slot_count(&r), CKR_OK);
    r.finalize();
    assert_balanced();
    assert_eq!(DESTROYED.load(SeqCst), CREATED.load(SeqCst));
}

/// Ours only: SoftHSM does not lock around every call.
fn a_failing_lock_mutex_returns_its_code_and_does_nothing(which: Which) {
    let _g = exclusive();
    reset();
    let r = raw(which);
    assert_eq!(initialize(&r, &mut args(0)), CKR_OK);
    let slot = r.token("failing-lock");
    let h = r.session(slot);
    FAIL_LOCK.store(true, SeqCst);
    assert_eq!(call!(r, C_CloseSession(h)), CKR_MUTEX_BAD);
    let mut n: CK_ULONG = 77;
    assert_eq!(
        call!(r, C_GetSlotList(CK_FALSE, null_mut(), &mut n)),
        CKR_MUTEX_BAD
    );
    assert_eq!(n, 77, "nothing done");
    assert_eq!(call!(r, C_Finalize(null_mut())), CKR_MUTEX_BAD);
    FAIL_LOCK.store(false, SeqCst);
    // The session is still open and the module still initialised.
    let mut info: CK_SESSION_INFO = unsafe { std::mem::zeroed() };
    assert_eq!(call!(r, C_GetSessionInfo(h, &mut info)), CKR_OK);
    assert_eq!(DESTROYED.load(SeqCst), 0);
    r.finalize();
    assert_balanced();
    assert_eq!(DESTROYED.load(SeqCst), 1);
    // The next C_Initialize without callbacks uses none.
    r.init();
    let before = LOCKED.load(SeqCst);
    assert_eq!(slot_count(&r), CKR_OK);
    assert_eq!(LOCKED.load(SeqCst), before);
    r.finalize();
}

/// Ours only (the spec lets a library use either): with
/// CKF_OS_LOCKING_OK the module uses its own locks and calls nothing.
fn os_locking_ok_with_callbacks_uses_the_modules_own_locks(which: Which) {
    let _g = exclusive();
    reset();
    let r = raw(which);
    assert_eq!(initialize(&r, &mut args(CKF_OS_LOCKING_OK)), CKR_OK);
    r.token("os-locking");
    r.finalize();
    assert_eq!(CREATED.load(SeqCst), 0);
    assert_eq!(LOCKED.load(SeqCst), 0);
}

static NULL_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Callbacks of an application that needs no locking: a NULL mutex, and
/// lock/unlock that only count (as some language bindings pass).
unsafe extern "C" fn create_null(out: *mut *mut c_void) -> CK_RV {
    unsafe { *out = null_mut() };
    NULL_CALLS.fetch_add(1, SeqCst);
    CKR_OK
}

unsafe extern "C" fn null_op(m: *mut c_void) -> CK_RV {
    assert!(m.is_null(), "the module passes back the mutex it was given");
    NULL_CALLS.fetch_add(1, SeqCst);
    CKR_OK
}

/// A CreateMutex that answers CKR_OK with a NULL mutex is accepted: the
/// pointer is opaque (SoftHSM2, the control, accepts it too), and the
/// module passes it back to the other callbacks as it got it.
fn a_null_mutex_is_accepted(which: Which) {
    let _g = exclusive();
    NULL_CALLS.store(0, SeqCst);
    let r = raw(which);
    let mut a = CK_C_INITIALIZE_ARGS {
        CreateMutex: Some(create_null),
        DestroyMutex: Some(null_op),
        LockMutex: Some(null_op),
        UnlockMutex: Some(null_op),
        flags: 0,
        pReserved: null_mut(),
    };
    assert_eq!(initialize(&r, &mut a), CKR_OK);
    assert_eq!(slot_count(&r), CKR_OK);
    let slot = r.token("null-mutex");
    let h = r.session(slot);
    assert_eq!(call!(r, C_CloseSession(h)), CKR_OK);
    r.finalize();
    assert!(NULL_CALLS.load(SeqCst) >= 1);
}

matrix!([tinfoil_embedded => Embedded, tinfoil => Tinfoil, tinfoil_daemon => Daemon,
    softhsm_control => SoftHsm];
    a_null_mutex_is_accepted,
    callbacks_are_used_balanced_and_destroyed,
    some_but_not_all_callbacks_are_arguments_bad);

// SoftHSM 2.6 ignores a failing CreateMutex in C_Initialize (CKR_OK), so
// it cannot be the control of that case.
matrix!([tinfoil_embedded => Embedded, tinfoil => Tinfoil];
    a_failing_create_mutex_leaves_the_module_uninitialised,
    a_failing_lock_mutex_returns_its_code_and_does_nothing,
    os_locking_ok_with_callbacks_uses_the_modules_own_locks);
