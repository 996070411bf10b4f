//! CKA_ALWAYS_AUTHENTICATE: a private key that has it may be used for one
//! operation per PIN. After C_SignInit or C_DecryptInit with such a key,
//! the application calls C_Login(CKU_CONTEXT_SPECIFIC) with the user PIN;
//! a C_Sign*/C_Decrypt* before it is CKR_USER_NOT_LOGGED_IN and, like any
//! error of those calls, ends the operation (PKCS#11 3.0 sections 4.9 and
//! 5.6; SoftHSM2 behaves so). The PIN is
//! checked by the backend like any login (failures count and lock).
//! C_Login(CKU_CONTEXT_SPECIFIC) with no operation waiting for it is
//! CKR_OPERATION_NOT_INITIALIZED.

use cryptoki_sys::*;

use crate::attrs::get_bool;
use crate::backend::UserKind;
use crate::crypto_ops::OpKind;
use crate::error::{ckr, Result};
use crate::module::{lock, Module};
use crate::session::Session;

/// Whether the operation of `kind` is still in progress.
fn active(s: &Session, kind: OpKind) -> bool {
    match kind {
        OpKind::Sign => s.sign.is_some(),
        OpKind::Decrypt => s.decrypt.is_some(),
        OpKind::Encrypt | OpKind::Verify => false,
    }
}

impl Module {
    /// After a successful C_SignInit / C_DecryptInit with `key`: the
    /// operation waits for a context-specific login when the key is a
    /// private key with CKA_ALWAYS_AUTHENTICATE.
    pub fn note_reauth(
        &self,
        h: CK_SESSION_HANDLE,
        kind: OpKind,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        if !matches!(kind, OpKind::Sign | OpKind::Decrypt) {
            return Ok(());
        }
        let needs = self.with_visible_object(h, key, |o| {
            Ok(o.class() == CKO_PRIVATE_KEY && get_bool(&o.attrs, CKA_ALWAYS_AUTHENTICATE, false))
        })?;
        let session = self.session(h)?;
        let mut s = lock(&session)?;
        if needs {
            s.reauth = Some(kind);
        } else if s.reauth == Some(kind) {
            s.reauth = None;
        }
        Ok(())
    }

    /// Before C_Sign* / C_Decrypt*: CKR_USER_NOT_LOGGED_IN while the
    /// operation of `kind` waits for its context-specific login.
    pub fn reauth_done(&self, h: CK_SESSION_HANDLE, kind: OpKind) -> Result<()> {
        let session = self.session(h)?;
        let mut s = lock(&session)?;
        if s.reauth != Some(kind) {
            return Ok(());
        }
        s.reauth = None;
        if !active(&s, kind) {
            return Ok(());
        }
        // An error of C_Sign* / C_Decrypt* ends the operation (as SoftHSM
        // does too): the application starts again with the login.
        match kind {
            OpKind::Sign => s.sign = None,
            _ => s.decrypt = None,
        }
        Err(ckr!(
            CKR_USER_NOT_LOGGED_IN,
            "the key needs C_Login(CKU_CONTEXT_SPECIFIC) before each use"
        ))
    }

    /// C_Login(CKU_CONTEXT_SPECIFIC): checks the user PIN for the
    /// operation waiting for it.
    pub fn context_login(&self, h: CK_SESSION_HANDLE, pin: &[u8]) -> Result<()> {
        let session = self.session(h)?;
        let (serial, kind) = {
            let s = lock(&session)?;
            match s.reauth {
                Some(kind) if active(&s, kind) => (s.token.clone(), kind),
                _ => {
                    return Err(ckr!(
                        CKR_OPERATION_NOT_INITIALIZED,
                        "no operation waits for a context-specific login"
                    ))
                }
            }
        };
        if self.login_state(&serial)? != Some(UserKind::User) {
            return Err(ckr!(CKR_USER_NOT_LOGGED_IN));
        }
        self.backend.login(&serial, UserKind::User, pin)?;
        let mut s = lock(&session)?;
        if s.reauth == Some(kind) {
            s.reauth = None;
        }
        Ok(())
    }
}
