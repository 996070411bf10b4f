//! Memory for secrets, and the process settings that keep them out of core
//! dumps. The only module of hsm-core with `unsafe` code: five calls into
//! the C library (`sysconf`, `madvise`, `mlock`, `munlock`, `prctl`) and
//! the raw allocation they need, each with its safety argument.
//!
//! [`LockedBytes`] holds a secret on pages of its own (page-aligned, a whole
//! number of pages, never shared with another allocation), marked
//! `MADV_DONTDUMP` (left out of core dumps even when dumps are allowed) and
//! locked with `mlock` (never written to swap) when the process's
//! `RLIMIT_MEMLOCK` allows. When it does not, the bytes stay usable but
//! swappable; [`stats`] counts such pages so the daemon can say so. The
//! pages are wiped before they are freed.
//!
//! [`forbid_core_dumps`] sets `PR_SET_DUMPABLE` to 0: no core file, and no
//! `ptrace` attach or /proc/PID/mem read by other processes of the same
//! user.
#![allow(unsafe_code)]

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use zeroize::Zeroize;

static LOCKED_PAGES: AtomicU64 = AtomicU64::new(0);
static UNLOCKED_PAGES: AtomicU64 = AtomicU64::new(0);

fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf reads a constant of the system; no memory is touched.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(size)
            .ok()
            .filter(|s| s.is_power_of_two())
            .unwrap_or(4096)
    })
}

/// Secret bytes on pages of their own: excluded from core dumps, locked
/// in memory when the limit allows, wiped on drop.
pub(crate) struct LockedBytes {
    ptr: NonNull<u8>,
    len: usize,
    layout: Layout,
    locked: bool,
}

// SAFETY: LockedBytes owns its allocation exclusively (like a Box<[u8]>)
// and offers only shared access through &self; moving or sharing it
// across threads is as safe as for a Box<[u8]>.
unsafe impl Send for LockedBytes {}
// SAFETY: as above: no interior mutability.
unsafe impl Sync for LockedBytes {}

impl LockedBytes {
    /// `len` zero bytes, filled by `fill` in place (so the secret is never
    /// anywhere else); `fill`'s error is returned after the pages are wiped.
    pub fn with<E>(len: usize, fill: impl FnOnce(&mut [u8]) -> Result<(), E>) -> Result<Self, E> {
        let page = page_size();
        let size = len.max(1).div_ceil(page) * page;
        // A page-size multiple with power-of-two alignment cannot fail
        // except on overflow, which `len` of a secret never reaches.
        let layout = Layout::from_size_align(size, page).expect("page layout");
        // SAFETY: the layout's size is at least one page, never zero.
        let raw = unsafe { alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout);
        };
        // SAFETY: [ptr, ptr + size) is our own allocation, page-aligned and
        // a whole number of pages, so the advice and the lock touch no
        // other allocation's pages. Failures leave the memory usable.
        let locked = unsafe {
            libc::madvise(ptr.as_ptr().cast(), size, libc::MADV_DONTDUMP);
            libc::mlock(ptr.as_ptr().cast(), size) == 0
        };
        let pages = (size / page) as u64;
        if locked {
            LOCKED_PAGES.fetch_add(pages, Ordering::Relaxed);
        } else {
            UNLOCKED_PAGES.fetch_add(pages, Ordering::Relaxed);
        }
        let mut bytes = LockedBytes {
            ptr,
            len,
            layout,
            locked,
        };
        fill(bytes.as_mut_slice())?;
        Ok(bytes)
    }

    /// A copy of `secret` (the caller wipes its own copy).
    pub fn copy_of(secret: &[u8]) -> Self {
        Self::with(secret.len(), |buf| {
            buf.copy_from_slice(secret);
            Ok::<(), std::convert::Infallible>(())
        })
        .unwrap_or_else(|never| match never {})
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: ptr is valid for `layout.size() >= len` bytes, initialised
        // (zeroed at allocation), and &mut self guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Deref for LockedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: ptr is valid and initialised for len bytes while self lives.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for LockedBytes {
    fn drop(&mut self) {
        let size = self.layout.size();
        // SAFETY: the whole allocation is ours and initialised; it is wiped
        // (zeroize: volatile writes the compiler keeps), unlocked when it
        // was locked, and freed with the layout it was allocated with.
        unsafe {
            std::slice::from_raw_parts_mut(self.ptr.as_ptr(), size).zeroize();
            if self.locked {
                libc::munlock(self.ptr.as_ptr().cast(), size);
            }
            dealloc(self.ptr.as_ptr(), self.layout);
        }
        let pages = (size / page_size()) as u64;
        let counter = if self.locked {
            &LOCKED_PAGES
        } else {
            &UNLOCKED_PAGES
        };
        counter.fetch_sub(pages, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for LockedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LockedBytes({} bytes, <secret>)", self.len)
    }
}

/// Pages of secrets in use now: locked in memory, and not locked (the
/// `RLIMIT_MEMLOCK` limit was reached: those may be swapped out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretPages {
    /// Pages locked in memory.
    pub locked: u64,
    /// Pages that could not be locked.
    pub unlocked: u64,
}

/// The current [`SecretPages`].
pub fn stats() -> SecretPages {
    SecretPages {
        locked: LOCKED_PAGES.load(Ordering::Relaxed),
        unlocked: UNLOCKED_PAGES.load(Ordering::Relaxed),
    }
}

/// Whether one page can be locked right now (`RLIMIT_MEMLOCK` allows it).
pub fn can_lock_memory() -> bool {
    let probe = LockedBytes::copy_of(&[0]);
    probe.locked
}

/// Marks the process not dumpable (`PR_SET_DUMPABLE` 0): a crash writes no
/// core file, and other processes of the same user cannot attach with
/// ptrace or read /proc/PID/mem. An `execve` resets it; call it in the
/// final image.
pub fn forbid_core_dumps() -> std::io::Result<()> {
    // SAFETY: PR_SET_DUMPABLE takes an integer argument and touches no memory
    // of ours; the unused arguments are zero as the man page asks.
    let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The environment variable that lets a process holding keys stay
/// dumpable (`TINFOIL_ALLOW_CORE_DUMPS=1`), for debugging only: a core
/// file then holds what the process held in memory outside [`LockedBytes`].
pub const ALLOW_CORE_DUMPS_VAR: &str = "TINFOIL_ALLOW_CORE_DUMPS";

/// What [`protect_process`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protection {
    /// The process was made not dumpable (false: allowed by
    /// [`ALLOW_CORE_DUMPS_VAR`], or the call failed).
    pub dumps_forbidden: bool,
    /// A page of secrets can be locked in memory now (false: the
    /// `RLIMIT_MEMLOCK` limit is exhausted, secrets may be swapped).
    pub memory_lockable: bool,
}

/// Forbids core dumps unless [`ALLOW_CORE_DUMPS_VAR`] is `1`, and probes
/// whether secrets can be locked in memory. Called by tinfoild before it
/// opens a store and by the PKCS#11 module before it opens an embedded one.
pub fn protect_process() -> Protection {
    let allowed = std::env::var_os(ALLOW_CORE_DUMPS_VAR).is_some_and(|v| v == "1");
    Protection {
        dumps_forbidden: !allowed && forbid_core_dumps().is_ok(),
        memory_lockable: can_lock_memory(),
    }
}

/// Whether the process is dumpable now (`PR_GET_DUMPABLE`).
pub fn core_dumps_allowed() -> bool {
    // SAFETY: PR_GET_DUMPABLE only returns a value.
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) == 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_secrets_on_their_own_pages() {
        let secret = LockedBytes::copy_of(b"sixteen byte key");
        assert_eq!(&*secret, b"sixteen byte key");
        assert_eq!(secret.ptr.as_ptr() as usize % page_size(), 0);
        let during = stats();
        assert!(during.locked + during.unlocked >= 1);
        assert!(!format!("{secret:?}").contains("sixteen"));
        drop(secret);

        let big = LockedBytes::with(page_size() + 1, |b| {
            b.fill(7);
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(big.len(), page_size() + 1);
        assert!(big.iter().all(|&b| b == 7));
        assert_eq!(
            LockedBytes::with(3, |_| Err::<(), _>("no")).unwrap_err(),
            "no"
        );
        let empty = LockedBytes::copy_of(&[]);
        assert!(empty.is_empty());
    }
}
