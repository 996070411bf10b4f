//! fork() without exec on the embedded backend: the child re-initialises
//! and uses the store beside its parent (several processes may hold an
//! embedded store), each seeing what the other made; no child keeps the
//! parent's store lock. Ours only: SoftHSM 2.6.1's child gets
//! CKR_CRYPTOKI_ALREADY_INITIALIZED from C_Initialize.
//!
//! The child only calls the module and async-signal-safe functions, and
//! leaves with `_exit`, reporting the first failed step as its status.

#[macro_use]
mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::ptr::null_mut;

use common::raw::{raw, Raw};
use common::{exclusive, Which};
use cryptoki_sys::*;

extern "C" {
    fn fork() -> i32;
    fn _exit(status: i32) -> !;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn dup2(from: i32, to: i32) -> i32;
}

/// In a child: sends its standard error to `path`.
fn stderr_to(path: &std::path::Path) -> bool {
    use std::os::fd::IntoRawFd;
    match std::fs::File::create(path) {
        Ok(f) => (unsafe { dup2(f.into_raw_fd(), 2) }) == 2,
        Err(_) => false,
    }
}

/// Forks; the child runs `child` and exits with its status.
fn spawn(child: impl FnOnce() -> i32) -> i32 {
    let pid = unsafe { fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let status = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(99);
        unsafe { _exit(status) };
    }
    pid
}

/// Waits for a child and returns its exit status.
fn exit_status(pid: i32) -> i32 {
    let mut status = 0;
    assert_eq!(unsafe { waitpid(pid, &mut status, 0) }, pid);
    assert_eq!(status & 0x7f, 0, "child killed by signal {}", status & 0x7f);
    (status >> 8) & 0xff
}

fn signal(s: &mut UnixStream) {
    s.write_all(b"x").unwrap();
}

/// Waits for the other side; in a child, the parent gone (a failed
/// assertion) ends the child.
fn wait(s: &mut UnixStream) {
    let mut b = [0u8; 1];
    if s.read_exact(&mut b).is_err() {
        unsafe { _exit(98) };
    }
}

fn slot_count(r: &Raw) -> Result<usize, CK_RV> {
    let mut n = 0;
    match call!(r, C_GetSlotList(CK_FALSE, null_mut(), &mut n)) {
        CKR_OK => Ok(n as usize),
        rv => Err(rv),
    }
}

/// Creates a public token data object labelled `label`.
fn create_data_object(r: &Raw, h: CK_SESSION_HANDLE, label: &[u8]) -> CK_RV {
    let class: CK_OBJECT_CLASS = CKO_DATA;
    let yes: CK_BBOOL = CK_TRUE;
    let value = b"made in the child";
    let mut template = [
        CK_ATTRIBUTE {
            type_: CKA_CLASS,
            pValue: &class as *const _ as *mut _,
            ulValueLen: std::mem::size_of::<CK_OBJECT_CLASS>() as _,
        },
        CK_ATTRIBUTE {
            type_: CKA_TOKEN,
            pValue: &yes as *const _ as *mut _,
            ulValueLen: 1,
        },
        CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: label.as_ptr() as *mut _,
            ulValueLen: label.len() as _,
        },
        CK_ATTRIBUTE {
            type_: CKA_VALUE,
            pValue: value.as_ptr() as *mut _,
            ulValueLen: value.len() as _,
        },
    ];
    let mut object = 0;
    call!(
        r,
        C_CreateObject(h, template.as_mut_ptr(), template.len() as _, &mut object)
    )
}

/// How many objects labelled `label` a session finds.
fn count_labelled(r: &Raw, h: CK_SESSION_HANDLE, label: &[u8]) -> usize {
    let mut template = [CK_ATTRIBUTE {
        type_: CKA_LABEL,
        pValue: label.as_ptr() as *mut _,
        ulValueLen: label.len() as _,
    }];
    assert_eq!(
        call!(r, C_FindObjectsInit(h, template.as_mut_ptr(), 1)),
        CKR_OK
    );
    let mut found = [0 as CK_OBJECT_HANDLE; 8];
    let mut n = 0;
    assert_eq!(
        call!(r, C_FindObjects(h, found.as_mut_ptr(), 8, &mut n)),
        CKR_OK
    );
    assert_eq!(call!(r, C_FindObjectsFinal(h)), CKR_OK);
    n as usize
}

#[test]
fn a_forked_child_reinitialises_and_uses_the_store_beside_its_parent() {
    let _g = exclusive();
    let r = raw(Which::Embedded);
    r.init();
    let slot = r.token("forked");
    let h = r.session(slot);
    let pin = common::USER_PIN.as_bytes();
    assert_eq!(
        call!(
            r,
            C_Login(h, CKU_USER, pin.as_ptr() as *mut _, pin.len() as _)
        ),
        CKR_OK
    );
    assert_eq!(create_data_object(&r, h, b"before-the-fork"), CKR_OK);
    let (mut parent, mut child) = UnixStream::pair().unwrap();
    let child_stderr = tempfile::NamedTempFile::new().unwrap();

    let pid = spawn(|| {
        if !stderr_to(child_stderr.path()) {
            return 9;
        }
        // The parent's instance is not this process's.
        if slot_count(&r) != Err(CKR_CRYPTOKI_NOT_INITIALIZED) {
            return 10;
        }
        if call!(r, C_Initialize(null_mut())) != CKR_OK {
            return 11;
        }
        // The parent still holds the store: the child opens it too.
        if slot_count(&r).is_err() {
            return 12;
        }
        let h = r.session(slot);
        if call!(
            r,
            C_Login(h, CKU_USER, pin.as_ptr() as *mut _, pin.len() as _)
        ) != CKR_OK
        {
            return 13;
        }
        if count_labelled(&r, h, b"before-the-fork") != 1 {
            return 14;
        }
        if create_data_object(&r, h, b"from-the-child") != CKR_OK {
            return 15;
        }
        signal(&mut child);
        wait(&mut child); // the parent made one after the fork
        if count_labelled(&r, h, b"from-the-parent") != 1 {
            return 16;
        }
        if call!(r, C_Finalize(null_mut())) != CKR_OK {
            return 17;
        }
        0
    });
    wait(&mut parent);
    // While the child holds the store too, the parent sees its object
    // and makes one of its own.
    assert_eq!(count_labelled(&r, h, b"from-the-child"), 1);
    assert_eq!(create_data_object(&r, h, b"from-the-parent"), CKR_OK);
    signal(&mut parent);
    assert_eq!(
        exit_status(pid),
        0,
        "the child failed at the step numbered; its standard error: {}",
        std::fs::read_to_string(child_stderr.path()).unwrap()
    );
    r.finalize();
    // Nothing of the child's holds the store.
    r.init();
    let h = r.session(slot);
    assert_eq!(
        call!(
            r,
            C_Login(h, CKU_USER, pin.as_ptr() as *mut _, pin.len() as _)
        ),
        CKR_OK
    );
    assert_eq!(count_labelled(&r, h, b"from-the-child"), 1);
    assert_eq!(count_labelled(&r, h, b"from-the-parent"), 1);
    r.finalize();
}

#[test]
fn a_child_that_never_initialises_does_not_keep_the_store_locked() {
    let _g = exclusive();
    let r = raw(Which::Embedded);
    r.init();
    r.token("idle-child");
    let (mut parent, mut child) = UnixStream::pair().unwrap();
    let pid = spawn(|| {
        signal(&mut child);
        wait(&mut child);
        0
    });
    // Until the child runs at all, it holds a copy of the lock (fork()
    // copies the descriptor; the child's fork handler closes it).
    wait(&mut parent);
    r.finalize();
    // With the child's inherited copy of the lock still open, this would
    // be "in use by another process".
    r.init();
    assert!(slot_count(&r).unwrap() >= 2);
    signal(&mut parent);
    assert_eq!(exit_status(pid), 0);
    r.finalize();
}

#[test]
fn the_parent_opens_the_store_while_its_child_holds_it() {
    let _g = exclusive();
    let r = raw(Which::Embedded);
    r.init();
    let slot = r.token("child-holds");
    r.finalize();
    let (mut parent, mut child) = UnixStream::pair().unwrap();
    // Initialised in the parent, finalised before fork: the child opens
    // the store at once and holds it.
    let pid = spawn(|| {
        if call!(r, C_Initialize(null_mut())) != CKR_OK {
            return 10;
        }
        let h = r.session(slot);
        signal(&mut child);
        wait(&mut child);
        if call!(r, C_CloseSession(h)) != CKR_OK {
            return 11;
        }
        0
    });
    wait(&mut parent);
    assert_eq!(call!(r, C_Initialize(null_mut())), CKR_OK);
    assert!(slot_count(&r).unwrap() >= 2);
    r.finalize();
    signal(&mut parent);
    assert_eq!(exit_status(pid), 0);
    // The child exited without C_Finalize: nothing of it is left.
    r.init();
    assert!(slot_count(&r).unwrap() >= 2);
    r.finalize();
}
