//! fork() without exec: the child must not keep the parent's store lock.
//!
//! The embedded store's directory lock is a shared `flock` (tinfoild
//! holds it exclusively), which a forked child inherits with the
//! descriptor: while the child lives, the lock would outlast the parent's
//! C_Finalize and keep tinfoild or an init out. A `pthread_atfork` child
//! handler closes the child's copy of that one descriptor. The child never drops the parent's instance (see
//! `crate::state`), so nothing closes the same number twice.

use std::ffi::c_int;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::Once;

extern "C" {
    fn pthread_atfork(
        prepare: Option<unsafe extern "C" fn()>,
        parent: Option<unsafe extern "C" fn()>,
        child: Option<unsafe extern "C" fn()>,
    ) -> c_int;
    fn close(fd: c_int) -> c_int;
}

/// The descriptor holding this process's store lock, or -1.
static LOCK_FD: AtomicI32 = AtomicI32::new(-1);
static REGISTER: Once = Once::new();

/// This process's id once read (0: not yet); cleared in a forked child.
static PID: AtomicU32 = AtomicU32::new(0);

/// Runs in the child right after fork(): only async-signal-safe calls.
unsafe extern "C" fn in_child() {
    PID.store(0, Ordering::SeqCst);
    let fd = LOCK_FD.swap(-1, Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: `fd` is the inherited copy of the parent's lock file
        // descriptor; its owner (the parent's store) is leaked in the
        // child and never closes it.
        unsafe { close(fd) };
    }
}

/// Records the descriptor of a lock this process now holds (`None`:
/// nothing to hand over), registering the fork handler on first use. The
/// module is linked with `-z nodelete`, so the handler stays mapped.
pub(crate) fn hold_lock(fd: Option<RawFd>) {
    register();
    LOCK_FD.store(fd.unwrap_or(-1), Ordering::SeqCst);
}

fn register() {
    REGISTER.call_once(|| {
        // SAFETY: registers a handler that lives as long as the process.
        unsafe { pthread_atfork(None, None, Some(in_child)) };
    });
}

/// The calling process's id, read once (every entry point asks, and
/// getpid is a system call): the fork handler clears the cache in a
/// child, so a fork()ed child sees its own id. (A child made without
/// fork's handlers, by vfork or posix_spawn, runs exec before any call.)
pub(crate) fn current_pid() -> u32 {
    let cached = PID.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    register();
    let pid = std::process::id();
    PID.store(pid, Ordering::Relaxed);
    pid
}

/// Forgets the lock descriptor before its owner closes it.
pub(crate) fn release_lock() {
    LOCK_FD.store(-1, Ordering::SeqCst);
}
