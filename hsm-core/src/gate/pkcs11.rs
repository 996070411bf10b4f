//! PKCS#11 calls on the audit log, and the daemon backend at the gate.
//!
//! Both PKCS#11 backends record one CloudTrail-shaped record per entry
//! point that touches a token key (issue 11): `eventSource`
//! `pkcs11.tinfoil.local`, `eventName` the function (`C_Sign`),
//! `requestParameters.mechanism` the `CKM_*` name, `keyId` and
//! `resources` the key, `errorCode` the `CKR_*` name (or
//! `AccessDeniedException`) on failure. The record is the call's pending
//! record while it runs ([`crate::audit`]), so a call that commits a
//! state change (a key made, a deletion scheduled) commits its record in
//! the same transaction; any other call's record is group-committed and
//! durable before the call returns.
//!
//! - The embedded backend (in-process, holding the passphrase: an
//!   administrator of its own store) runs each call through
//!   [`Hsm::pkcs11_call`]: recorded, not authorized.
//! - The daemon's PKCS#11 service runs each call on a token key through
//!   [`Gate::pkcs11_call`]: the socket principal's permission is decided as
//!   the KMS action the call amounts to (C_Sign on a signing key is
//!   `kms:Sign`, C_Encrypt `kms:Encrypt`, making a token key
//!   `kms:CreateKey`), by the same policy and grant evaluation as every
//!   other call, and the one record holds the decision and the outcome. A
//!   key a user makes through PKCS#11 gets the same creator policy
//!   CreateKey gives (the default policy plus `kms:*` for its creator), so
//!   users can use the keys they make.

use crate::audit::record::Draft;
use crate::error::Result;
use crate::hsm::Hsm;
use crate::identity::{Caller, Principal};
use crate::policy::creator_key_policy;

use super::{Gate, Request};

/// One PKCS#11 call as its audit record names it. Never holds data, a PIN
/// or key material: names only.
#[derive(Debug, Clone, Copy)]
pub struct Pkcs11Call<'a> {
    /// The entry point, e.g. `C_Sign`.
    pub function: &'a str,
    /// The mechanism's `CKM_*` name, when the call has one.
    pub mechanism: Option<&'a str>,
    /// The token key (KMS key id) the call uses, if any. A key the call
    /// makes is named by the record when its transaction commits.
    pub key_id: Option<&'a str>,
}

/// The draft of a PKCS#11 call's record.
fn draft(hsm: &Hsm, caller: &Caller, call: &Pkcs11Call<'_>) -> Draft {
    let mut draft = Draft::api_call(caller, &format!("pkcs11:{}", call.function), hsm.now());
    if let Some(mechanism) = call.mechanism {
        draft.param("mechanism", mechanism.into());
    }
    if let Some(key_id) = call.key_id {
        draft.param("keyId", key_id.into());
        if let Ok(id) = hsm.read_state().resolve(key_id) {
            draft.resources.push(crate::model::key_arn(&id));
        }
    }
    draft
}

impl Hsm {
    /// Runs one PKCS#11 call of the embedded backend (`op`) and records it:
    /// the outcome's error is named by `failure` (`(CKR name, message)`;
    /// the message must hold no secret). The outer error means the record
    /// could not be written: the call must fail (`CKR_DEVICE_ERROR`) and
    /// its result must not be returned.
    pub fn pkcs11_call<T, E>(
        &self,
        caller: &Caller,
        call: &Pkcs11Call<'_>,
        op: impl FnOnce() -> std::result::Result<T, E>,
        failure: impl FnOnce(&E) -> (String, String),
    ) -> Result<std::result::Result<T, E>> {
        let (outcome, recorded) =
            crate::audit::record_with(self, draft(self, caller, call), op, |r| {
                r.as_ref().err().map(failure)
            });
        recorded?;
        Ok(outcome)
    }
}

impl Gate<'_> {
    /// Runs one PKCS#11 call of the daemon backend (`op`) if the caller may
    /// make it as the KMS `action` (on `call.key_id`, or account-level
    /// when the call names no key), and records it once: the decision and,
    /// when allowed, the outcome (`failure` names an error as in
    /// [`Hsm::pkcs11_call`]). A key that does not resolve is left to `op`
    /// (which answers that the handle is invalid). Outer errors:
    /// AccessDeniedException naming the principal, action and key, or a
    /// record that could not be written.
    pub fn pkcs11_call<T, E>(
        &self,
        call: &Pkcs11Call<'_>,
        action: &'static str,
        op: impl FnOnce() -> std::result::Result<T, E>,
        failure: impl FnOnce(&E) -> (String, String),
    ) -> Result<std::result::Result<T, E>> {
        let mut draft = draft(self.hsm, self.caller, call);
        draft.param("kmsAction", action.into());
        let request = match call.key_id {
            Some(key_id) => Request::key(action, key_id),
            None => Request::account(action),
        };
        let known = call
            .key_id
            .is_none_or(|key_id| self.hsm.read_state().resolve(key_id).is_ok());
        let (outcome, recorded) = crate::audit::record_with(
            self.hsm,
            draft,
            || {
                if known {
                    self.authorize(&request)?;
                }
                Ok(op())
            },
            |r: &Result<std::result::Result<T, E>>| match r {
                Err(e) => Some((e.kms_name().to_string(), e.to_string())),
                Ok(Err(e)) => Some(failure(e)),
                Ok(Ok(_)) => None,
            },
        );
        recorded?;
        outcome
    }

    /// Gives a key the caller just made through PKCS#11 the creator policy
    /// when the caller is a user (administrators need none: the default
    /// policy already allows them).
    pub fn pkcs11_key_created(&self, key_id: &str) -> Result<()> {
        if !matches!(self.caller.principal, Principal::User(_)) {
            return Ok(());
        }
        let account = self.hsm.account().clone();
        let policy = self.hsm.parse_policy(&creator_key_policy(
            &account.account_id,
            &self.caller.principal.arn_in(&account),
        ))?;
        let key = self.hsm.key_facts(key_id)?;
        self.hsm.put_key_policy(&key.id, policy)
    }
}

impl Gate<'_> {
    /// Whether the caller may make keys through PKCS#11 (`kms:CreateKey`,
    /// an account-level action), for a session key: it lives in the
    /// caller's connection only and is not recorded (token keys go through
    /// [`Gate::pkcs11_call`]).
    pub fn pkcs11_may_create_key(&self) -> Result<()> {
        self.authorize(&Request::account("kms:CreateKey"))
    }

    /// Whether the caller may use the token key `key_id` as `action`,
    /// without recording: for the second key of a call (a derivation's
    /// other key) that [`Gate::pkcs11_call`] then records once.
    pub fn pkcs11_may_use(&self, action: &'static str, key_id: &str) -> Result<()> {
        if self.hsm.read_state().resolve(key_id).is_err() {
            return Ok(());
        }
        self.authorize(&Request::key(action, key_id))
    }
}
