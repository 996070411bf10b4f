//! A module loaded through cryptoki-sys and called through its function
//! list: for tests that need exact pointers and return codes.
#![allow(dead_code)]

use std::ptr::null_mut;

use cryptoki_sys::*;

use super::Which;

/// A module loaded through cryptoki-sys, called through its function list.
pub struct Raw {
    _lib: cryptoki_sys::Pkcs11,
    /// The v2.40 function list.
    pub f: CK_FUNCTION_LIST,
    _dir: tempfile::TempDir,
}

/// Loads `which` with a fresh configuration (not initialised).
pub fn raw(which: Which) -> Raw {
    let (dir, path) = super::configure(which);
    let lib = unsafe { cryptoki_sys::Pkcs11::new(&path) }.expect("load");
    let mut list: *mut CK_FUNCTION_LIST = null_mut();
    assert_eq!(unsafe { lib.C_GetFunctionList(&mut list) }, CKR_OK);
    let f = unsafe { *list };
    Raw {
        _lib: lib,
        f,
        _dir: dir,
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // The module stays mapped (-z nodelete): leave it finalised for the
        // next test even when an assertion failed midway.
        if let Some(finalize) = self.f.C_Finalize {
            unsafe { finalize(null_mut()) };
        }
        super::daemon::stop();
    }
}

impl Raw {
    pub fn init(&self) {
        assert_eq!(call!(self, C_Initialize(null_mut())), CKR_OK);
    }
    pub fn finalize(&self) {
        assert_eq!(call!(self, C_Finalize(null_mut())), CKR_OK);
    }
    /// Initialises a token with SO PIN and user PIN on the free slot and
    /// returns its slot id.
    pub fn token(&self, label: &str) -> CK_SLOT_ID {
        let mut slots = [0 as CK_SLOT_ID; 16];
        let mut n = 16;
        assert_eq!(
            call!(self, C_GetSlotList(CK_FALSE, slots.as_mut_ptr(), &mut n)),
            CKR_OK
        );
        let slot = slots[n as usize - 1];
        let mut padded = [b' '; 32];
        padded[..label.len()].copy_from_slice(label.as_bytes());
        let so = super::SO_PIN.as_bytes();
        assert_eq!(
            call!(
                self,
                C_InitToken(
                    slot,
                    so.as_ptr() as *mut _,
                    so.len() as _,
                    padded.as_mut_ptr()
                )
            ),
            CKR_OK
        );
        let mut n = 16;
        assert_eq!(
            call!(self, C_GetSlotList(CK_TRUE, slots.as_mut_ptr(), &mut n)),
            CKR_OK
        );
        let slot = slots[..n as usize]
            .iter()
            .copied()
            .find(|s| {
                let mut info: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
                call!(self, C_GetTokenInfo(*s, &mut info)) == CKR_OK && info.label == padded
            })
            .expect("new token");
        let h = self.session(slot);
        assert_eq!(
            call!(
                self,
                C_Login(h, CKU_SO, so.as_ptr() as *mut _, so.len() as _)
            ),
            CKR_OK
        );
        let user = super::USER_PIN.as_bytes();
        assert_eq!(
            call!(self, C_InitPIN(h, user.as_ptr() as *mut _, user.len() as _)),
            CKR_OK
        );
        assert_eq!(call!(self, C_CloseSession(h)), CKR_OK);
        slot
    }
    pub fn session(&self, slot: CK_SLOT_ID) -> CK_SESSION_HANDLE {
        let mut h = 0;
        let flags = CKF_SERIAL_SESSION | CKF_RW_SESSION;
        assert_eq!(
            call!(self, C_OpenSession(slot, flags, null_mut(), None, &mut h)),
            CKR_OK
        );
        h
    }
    pub fn token_flags(&self, slot: CK_SLOT_ID) -> CK_FLAGS {
        let mut info: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
        assert_eq!(call!(self, C_GetTokenInfo(slot, &mut info)), CKR_OK);
        info.flags
    }
}
