//! The order in which functions that take a session, a mechanism and a
//! template report errors, as PKCS#11 lists them: the session handle
//! first (CKR_SESSION_HANDLE_INVALID), then a read-only session asked to
//! make a token object (CKR_SESSION_READ_ONLY), and only then the
//! mechanism and the template. The C layer calls these before it decodes
//! the mechanism.

use cryptoki_sys::*;

use crate::attrs::Template;
use crate::error::{ckr, Result};
use crate::module::{lock, Module};

impl Module {
    /// CKR_SESSION_HANDLE_INVALID (or CKR_CRYPTOKI_NOT_INITIALIZED) before
    /// anything else.
    pub fn session_first(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        self.session(h).map(|_| ())
    }

    /// CKR_SESSION_READ_ONLY when a template asks for a token object
    /// (CKA_TOKEN true) and the session is read-only.
    pub fn read_only_first(&self, h: CK_SESSION_HANDLE, templates: &[&Template]) -> Result<()> {
        let on_token = templates.iter().any(|t| {
            t.iter()
                .rev()
                .find(|(a, _)| *a == CKA_TOKEN)
                .is_some_and(|(_, v)| v.first().is_some_and(|b| *b != 0))
        });
        if !on_token {
            return Ok(());
        }
        let session = self.session(h)?;
        let read_write = lock(&session)?.read_write;
        if read_write {
            Ok(())
        } else {
            Err(ckr!(CKR_SESSION_READ_ONLY))
        }
    }
}
