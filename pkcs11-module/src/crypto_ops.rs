//! Cryptographic functions of a module instance that need no key:
//! digests and random numbers.

use cryptoki_sys::*;

use crate::error::{ckr, Result};
use crate::mechanisms::DigestOp;
use crate::module::{lock, Module};
use crate::session::{finish, update, Output};

/// Largest buffer C_GenerateRandom fills in one call.
pub const MAX_RANDOM_LEN: usize = 1 << 20;

impl Module {
    /// C_DigestInit.
    pub fn digest_init(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: CK_MECHANISM_TYPE,
        param_len: usize,
    ) -> Result<()> {
        let session = self.session(h)?;
        let mut s = lock(&session)?;
        if s.digest.is_some() {
            return Err(ckr!(CKR_OPERATION_ACTIVE));
        }
        crate::mechanisms::lookup_for(self.backend.as_ref(), mechanism)?;
        s.digest = Some(DigestOp::new(mechanism, param_len)?);
        Ok(())
    }

    /// C_Digest (single part).
    pub fn digest(&self, h: CK_SESSION_HANDLE, data: &[u8], cap: Option<usize>) -> Result<Output> {
        let session = self.session(h)?;
        let mut s = lock(&session)?;
        if s.digest.as_ref().is_some_and(|d| d.multipart) {
            s.digest = None;
            return Err(ckr!(CKR_OPERATION_ACTIVE, "C_Digest after C_DigestUpdate"));
        }
        finish(&mut s.digest, DigestOp::len, cap, |mut op| {
            op.update(data);
            Ok(op.finish())
        })
    }

    /// C_DigestUpdate.
    pub fn digest_update(&self, h: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        let session = self.session(h)?;
        let mut s = lock(&session)?;
        update(&mut s.digest, |op| {
            op.multipart = true;
            op.update(data);
            Ok(())
        })
    }

    /// Ends a digest after a failed step.
    pub fn digest_abort(&self, h: CK_SESSION_HANDLE) {
        if let Ok(session) = self.session(h) {
            if let Ok(mut s) = lock(&session) {
                s.digest = None;
            }
        }
    }

    /// C_DigestKey: the value of a secret key whose value may be read
    /// (CKA_SENSITIVE false, CKA_EXTRACTABLE true) goes into the digest;
    /// any other key is CKR_KEY_INDIGESTIBLE.
    pub fn digest_key(&self, h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> Result<()> {
        let session = self.session(h)?;
        let active = lock(&session)?.digest.is_some();
        let value = if active {
            self.visible_object(h, key).and_then(|object| {
                let readable =
                    object.class() == CKO_SECRET_KEY && crate::key_ops::readable(&object.attrs);
                match (&object.key, readable) {
                    (Some(k), true) => self.audited("C_DigestKey", None, Some(k), false, || {
                        self.backend.secret_value(k)
                    }),
                    _ => Err(ckr!(CKR_KEY_INDIGESTIBLE)),
                }
            })
        } else {
            Err(ckr!(CKR_OPERATION_NOT_INITIALIZED))
        };
        let mut s = lock(&session)?;
        update(&mut s.digest, |op| {
            let value = value?;
            op.multipart = true;
            op.update(&value);
            Ok(())
        })
    }

    /// C_DigestFinal.
    pub fn digest_final(&self, h: CK_SESSION_HANDLE, cap: Option<usize>) -> Result<Output> {
        let session = self.session(h)?;
        let mut s = lock(&session)?;
        finish(&mut s.digest, DigestOp::len, cap, |op| Ok(op.finish()))
    }

    /// C_GenerateRandom.
    pub fn generate_random(&self, h: CK_SESSION_HANDLE, out: &mut [u8]) -> Result<()> {
        self.session(h)?;
        for chunk in out.chunks_mut(MAX_RANDOM_LEN) {
            self.backend.generate_random(chunk)?;
        }
        Ok(())
    }
}

/// The kinds of key operation a session can have in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// C_Encrypt*.
    Encrypt,
    /// C_Decrypt*.
    Decrypt,
    /// C_Sign*.
    Sign,
    /// C_Verify*.
    Verify,
}

impl OpKind {
    fn flag(self) -> CK_FLAGS {
        match self {
            OpKind::Encrypt => CKF_ENCRYPT,
            OpKind::Decrypt => CKF_DECRYPT,
            OpKind::Sign => CKF_SIGN,
            OpKind::Verify => CKF_VERIFY,
        }
    }
}

impl Module {
    /// C_EncryptInit, C_DecryptInit, C_SignInit, C_VerifyInit: checks the
    /// session, mechanism and key; the operation itself is the backend's.
    pub fn key_op_init(
        &self,
        h: CK_SESSION_HANDLE,
        kind: OpKind,
        mechanism: CK_MECHANISM_TYPE,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.session(h)?;
        let entry = crate::mechanisms::lookup_for(self.backend.as_ref(), mechanism)?;
        if entry.flags & kind.flag() == 0 {
            return Err(ckr!(CKR_MECHANISM_INVALID, "mechanism cannot do this"));
        }
        self.visible_object(h, key)?;
        Err(ckr!(
            CKR_KEY_TYPE_INCONSISTENT,
            "this backend holds no keys"
        ))
    }

    /// A key operation step with no operation in progress.
    pub fn key_op_step(&self, h: CK_SESSION_HANDLE, _kind: OpKind) -> Result<Output> {
        self.session(h)?;
        Err(ckr!(CKR_OPERATION_NOT_INITIALIZED))
    }

    /// C_GenerateKey, C_GenerateKeyPair, C_WrapKey, C_UnwrapKey: checks the
    /// session and mechanism (`flag` is what it must be able to do).
    pub fn key_management(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: CK_MECHANISM_TYPE,
        flag: CK_FLAGS,
    ) -> Result<CK_OBJECT_HANDLE> {
        self.session(h)?;
        let entry = crate::mechanisms::lookup_for(self.backend.as_ref(), mechanism)?;
        if entry.flags & flag == 0 {
            return Err(ckr!(CKR_MECHANISM_INVALID, "mechanism cannot do this"));
        }
        Err(ckr!(
            CKR_FUNCTION_NOT_SUPPORTED,
            "this backend holds no keys"
        ))
    }
}
