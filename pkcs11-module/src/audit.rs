//! The PKCS#11 calls the audit log records (issue 11).
//!
//! Every entry point that touches a *token* key leaves exactly one record
//! in the store's audit chain, named by the function, with the mechanism,
//! the key and the outcome (the `CKR_*` name on failure):
//!
//! | Function | When |
//! |---|---|
//! | C_Encrypt, C_EncryptFinal, C_Decrypt, C_DecryptFinal | the call that runs the cipher on a token key |
//! | C_Sign, C_SignFinal, C_Verify, C_VerifyFinal | the call that runs the MAC or signature on a token key (not a verification with a public key object, which the module does itself) |
//! | C_GenerateKey, C_GenerateKeyPair, C_CreateObject (a secret key value), C_UnwrapKey, C_DeriveKey, C_CopyObject | the call that makes a token key, or uses one (the unwrapping, base or copied key) |
//! | C_WrapKey | the call that wraps (not a length query) with or of a token key |
//! | C_DestroyObject | a token key or token object destroyed (a key's deletion is scheduled) |
//! | C_GetAttributeValue | CKA_VALUE read from a readable token key |
//! | C_SetAttributeValue | a readable token key sealed (CKA_SENSITIVE / CKA_EXTRACTABLE) |
//! | C_DigestKey | a readable token key's value digested |
//! | C_EncapsulateKey, C_DecapsulateKey | the call that uses a token ML-KEM key (not a length query) or makes a token key from the shared secret |
//!
//! A C_EncryptUpdate / C_DecryptUpdate of a streaming mode (ECB, CBC,
//! CBC-PAD, CTR) runs the cipher with the key on the blocks it returns, so
//! it is recorded under its own name, like the final call after it.
//! A failed check (C_Verify / C_VerifyFinal) fails inside its recorded
//! call: its record carries `CKR_SIGNATURE_INVALID`.
//!
//! Not recorded: the `*Init` calls and the `*Update` calls of modes that
//! gather (GCM, signatures, MACs: the call that finishes the operation
//! is), length queries, C_FindObjects* and attribute reads
//! other than CKA_VALUE (they read the object table, not key material),
//! and calls on session keys only (they live in one process or connection
//! and leave nothing in the store).
//!
//! Who records: the embedded backend records in this process, around the
//! whole entry point ([`Module::audited`] → [`crate::backend::Backend::audited`]); the
//! daemon backend sends the function and mechanism with each call
//! ([`current`]) and tinfoild records the call it serves, with the
//! socket's principal and its authorization decision (a client cannot
//! skip it). Records hold names only: never data, a signature input, a
//! PIN or key material.

use std::cell::Cell;

use cryptoki_sys::*;

pub use hsm_core::pkcs11::audit::{
    ckr_name, mechanism_name, AuditedCall, CallInfo, FUNCTIONS, FUNCTION_METADATA,
    MECHANISM_METADATA,
};

use crate::backend::KeyHandle;
use crate::error::Result;
use crate::module::Module;

thread_local! {
    static CURRENT: Cell<Option<CallInfo>> = const { Cell::new(None) };
}

/// The call this thread is making, for a backend that forwards it (the
/// daemon backend sends it with its requests).
pub fn current() -> Option<CallInfo> {
    CURRENT.with(Cell::get)
}

/// [`current`] as the daemon backend sends it in a pipe call.
pub fn current_wire() -> Option<tinfoil_proto::v1::P11CallInfo> {
    current().map(|info| tinfoil_proto::v1::P11CallInfo {
        function: info.function.to_string(),
        // CK_MECHANISM_TYPE is a C unsigned long: u64 here.
        #[allow(clippy::unnecessary_cast)]
        mechanism: info.mechanism.map(|m| m as u64),
    })
}

/// While alive, `info` is this thread's current call.
struct Scope(Option<CallInfo>);

impl Scope {
    fn enter(info: CallInfo) -> Scope {
        Scope(CURRENT.with(|c| c.replace(Some(info))))
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

impl Module {
    /// Runs `body`, one entry point's work, as the call the audit log
    /// records when it touches a token key: `key` is the key it uses,
    /// `makes_token_key` whether it makes (or destroys) a token key or
    /// object. Calls on session keys only run unrecorded. A record that
    /// cannot be written fails the call (`CKR_DEVICE_ERROR`) and its
    /// result is dropped.
    pub(crate) fn audited<T>(
        &self,
        function: &'static str,
        mechanism: Option<CK_MECHANISM_TYPE>,
        key: Option<&KeyHandle>,
        makes_token_key: bool,
        body: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let key_id = match key {
            Some(KeyHandle::Stored(id)) => Some(id.as_str()),
            _ => None,
        };
        if key_id.is_none() && !makes_token_key {
            return body();
        }
        let info = CallInfo {
            function,
            mechanism,
        };
        let _scope = Scope::enter(info);
        let mut body = Some(body);
        let mut out = None;
        self.backend
            .audited(&AuditedCall { info, key_id }, &mut || {
                let body = body
                    .take()
                    .ok_or_else(|| crate::error::Pkcs11Error::General("a call ran twice".into()))?;
                out = Some(body()?);
                Ok(())
            })?;
        out.ok_or_else(|| crate::error::Pkcs11Error::General("a call did not run".into()))
    }
}

/// Whether a template asks for a token object.
pub(crate) fn template_on_token(template: &crate::attrs::Template) -> bool {
    template
        .iter()
        .find(|(t, _)| *t == CKA_TOKEN)
        .is_some_and(|(_, v)| crate::attrs::as_bool(v).unwrap_or(false))
}

/// Whether a template asks for a key object.
pub(crate) fn template_is_key(template: &crate::attrs::Template) -> bool {
    template
        .iter()
        .find(|(t, _)| *t == CKA_CLASS)
        .and_then(|(_, v)| crate::attrs::as_ulong(v).ok())
        .is_some_and(|c| matches!(c, CKO_SECRET_KEY | CKO_PRIVATE_KEY))
}

/// What the audit record of a call on an object needs to know of it.
#[derive(Debug, Clone, Default)]
pub(crate) struct ObjectFacts {
    /// The key behind it, if it is a key object.
    pub key: Option<KeyHandle>,
    /// Whether it is a token object.
    pub on_token: bool,
    /// Whether it is a secret or private key whose value may be read
    /// (CKA_SENSITIVE false and CKA_EXTRACTABLE true, as the module
    /// decides).
    pub readable: bool,
    /// Whether it is a private key (its secret parts have no length
    /// attribute: a length query reads them).
    pub private: bool,
}

impl Module {
    /// The facts of an object the session sees (empty when it does not:
    /// the call then fails on its own, unrecorded unless a token key is
    /// involved).
    pub(crate) fn object_facts(
        &self,
        h: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
    ) -> ObjectFacts {
        use crate::attrs::{get_bool, get_ulong};
        self.with_visible_object(h, object, |o| {
            Ok(ObjectFacts {
                key: o.key.clone(),
                on_token: get_bool(&o.attrs, CKA_TOKEN, false),
                readable: matches!(
                    get_ulong(&o.attrs, CKA_CLASS),
                    Some(CKO_SECRET_KEY | CKO_PRIVATE_KEY)
                ) && crate::key_ops::readable(&o.attrs),
                private: get_ulong(&o.attrs, CKA_CLASS) == Some(CKO_PRIVATE_KEY),
            })
        })
        .unwrap_or_default()
    }
}
