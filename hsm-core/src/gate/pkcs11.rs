//! The PKCS#11 daemon backend at the gate. The daemon's PKCS#11 service
//! works on tokens and objects through the module's backend; before a call
//! uses a stored key it asks here whether the socket's principal may, as
//! the KMS action the call amounts to (C_Sign on a signing key is
//! `kms:Sign`, C_Encrypt `kms:Encrypt`, ...). The decision is the same
//! policy and grant evaluation as every other call, and it is recorded in
//! the audit log like every other call: the daemon answers the PKCS#11
//! call only once that record is durable (a group commit shared by
//! concurrent calls; at concurrency 1 it costs about one fsync per call).
//! A key a user makes through PKCS#11 gets the same creator policy
//! CreateKey gives (the default policy plus `kms:*` for its creator), so
//! users can use the keys they make.
//!
//! The embedded backend (in-process, holding the passphrase) does not pass
//! here: it owns its store.

use crate::error::Result;
use crate::identity::Principal;
use crate::policy::creator_key_policy;

use super::{Gate, Request};

impl Gate<'_> {
    /// Whether the caller may use the stored key `key_id` for the PKCS#11
    /// `function` (e.g. `C_Sign`), decided as `action` (e.g. `kms:Sign`).
    /// Refused: AccessDeniedException naming the principal, action and key.
    pub fn pkcs11_key_use(
        &self,
        function: &'static str,
        action: &'static str,
        key_id: &str,
    ) -> Result<()> {
        self.run(
            Request::key(action, key_id).param("pkcs11Function", function),
            || Ok(()),
        )
    }

    /// Whether the caller may make keys through PKCS#11 (`kms:CreateKey`,
    /// an account-level action).
    pub fn pkcs11_may_create_key(&self, function: &'static str) -> Result<()> {
        self.authorize(&Request::account("kms:CreateKey").param("pkcs11Function", function))
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
