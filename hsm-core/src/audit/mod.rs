//! The tamper-evident audit log: one CloudTrail-shaped record per call
//! through the gate (allowed or denied, successful or failed) and per
//! background event, chained by hashes and signed in checkpoints.
//!
//! - [`record`]: the record's JSON (CloudTrail's KMS shape; never a secret).
//! - [`chain`]: sequence numbers, previous hash, own hash, the canonical form.
//! - [`checkpoint`]: C2SP tlog-checkpoint signed notes (Ed25519), at least
//!   every 1,000 records or every minute.
//! - [`verify`]: the offline verifier of an export (no store, no passphrase).
//! - [`export`]: the export directory's layout.
//!
//! # Where records are written, and when they are durable
//!
//! The gate's `run` sets the call's draft as this thread's *pending record*
//! ([`pending`]) and runs the operation. Operations commit through
//! `Store::write`, which appends the pending record inside the same
//! transaction just before committing: a state change and its record
//! commit together or not at all, and a record that cannot be written fails
//! the transaction, so the call fails and changes nothing. This needed no
//! change to any operation (only the transaction helper and `put_key`,
//! which names the key it wrote, know about it): the alternative, passing
//! a record through every operation's signature, would touch them all, and
//! a record written before or after the change in its own transaction
//! would need a compensating rule for the crash in between.
//!
//! A call that committed nothing (every cryptographic and read call, a
//! failed or denied call) is recorded after it ran by group commit
//! ([`log::AuditLog::append_durable`]): the call waits until its record is
//! committed with `synchronous=FULL` (fsynced) before it returns, and
//! concurrent calls share one transaction and one fsync (leader/follower
//! under a mutex and a condition variable: the first waiting caller writes
//! everything queued, the others wait for their batch's outcome). If that
//! write fails the call fails, and its result (a ciphertext, a plaintext)
//! is never returned.
//!
//! CreateKey, whose change only inserts rows nothing else can conflict
//! with, joins the same group commit with its new key
//! ([`log::AuditLog::commit_grouped`]): the key and its record still
//! commit in one transaction, shared with other callers' keys and records.
//!
//! All appends run with the store's lock held, so the chain has one order;
//! the in-memory head moves only after a commit.

mod api;
pub mod chain;
pub mod checkpoint;
pub(crate) mod db;
pub mod export;
pub(crate) mod log;
pub(crate) mod pending;
pub mod record;
pub mod verify;

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gate::Request;
use crate::hsm::Hsm;
use crate::identity::{Account, Caller};
use crate::sealing::{self, KEY_LEN};
use crate::store::{self, Store};

pub use crate::gate::Pkcs11Call;
pub use api::{
    AuditExportPage, LookupEvent, LookupEventsRequest, LookupEventsResponse, PruneOutcome,
};
pub use db::LookupAttribute;
pub use log::{CHECKPOINT_EVERY_RECORDS, CHECKPOINT_EVERY_SECS};
pub use verify::{verify_dir, VerifyReport};

use log::{AuditLog, OnTheWay};
use pending::PendingGuard;
use record::Draft;

const SIGNING_KEY_AAD: &[u8] = b"tinfoil audit signing key v1";

/// Opens the log of a store: makes its signing key and name at the first
/// open (a new store, or one made before the audit log existed) in one
/// transaction, unseals the key and reads the chain head.
pub(crate) fn open_log(
    store: &mut Store,
    root_key: &[u8; KEY_LEN],
    account: &Account,
) -> Result<Arc<AuditLog>> {
    if store.meta(db::META_SIGNING_KEY)?.is_none() {
        let pkcs8 = checkpoint::generate_pkcs8()
            .ok_or_else(|| Error::Internal("cannot generate the audit signing key".into()))?;
        let wrapped = sealing::wrap(root_key, SIGNING_KEY_AAD, &pkcs8)?;
        let origin = format!(
            "tinfoil.local/audit/{}/{}",
            account.account_id,
            uuid::Uuid::new_v4().simple()
        );
        store.write(|tx| {
            // Another process opening the same older store may have made
            // one meanwhile: the first one made stays.
            let made = tx.first(
                "SELECT name FROM meta WHERE name = ?1",
                &crate::store::engine::vals![db::META_SIGNING_KEY],
                |_| Ok(()),
            )?;
            if made.is_some() {
                return Ok(());
            }
            store::put_meta(tx, db::META_SIGNING_KEY, &wrapped)?;
            store::put_meta(tx, db::META_ORIGIN, origin.as_bytes())
        })?;
    }
    let corrupt = |what: &str| Error::Internal(format!("the store's audit {what} is corrupt"));
    let wrapped = store
        .meta(db::META_SIGNING_KEY)?
        .ok_or_else(|| corrupt("signing key"))?;
    let origin = String::from_utf8(
        store
            .meta(db::META_ORIGIN)?
            .ok_or_else(|| corrupt("name"))?,
    )
    .map_err(|_| corrupt("name"))?;
    let pkcs8 = sealing::unwrap(root_key, SIGNING_KEY_AAD, &wrapped)
        .ok_or_else(|| corrupt("signing key"))?;
    let signer =
        checkpoint::Signer::from_pkcs8(&pkcs8, &origin).ok_or_else(|| corrupt("signing key"))?;
    let state = store.read(AuditLog::load_state)?;
    Ok(Arc::new(AuditLog::new(account.clone(), signer, state)))
}

/// The draft of a gate request, before it runs.
fn draft_of(hsm: &Hsm, caller: &Caller, request: &Request<'_>) -> Draft {
    let mut draft = Draft::api_call(caller, request.action, hsm.now());
    if let Some(key_ref) = request.key_ref {
        let name = match draft.event_name.as_str() {
            "DeleteAlias" => "aliasName",
            "CreateAlias" | "UpdateAlias" => "targetKeyId",
            _ => "keyId",
        };
        draft.param(name, key_ref.into());
        if let Ok(id) = hsm.read_state().resolve(key_ref) {
            draft.resources.push(crate::model::key_arn(&id));
        }
    }
    if let Some(context) = request.encryption_context {
        let map: serde_json::Map<String, serde_json::Value> = context
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        draft.param("encryptionContext", map.into());
    }
    for (name, value) in &request.conditions {
        draft.condition(name, value);
    }
    for (name, value) in &request.params {
        draft.param(name, value.clone());
    }
    draft
}

/// Runs a gate call and records it: inside the call's own transaction when
/// it commits one, otherwise group-committed after it (see the module
/// docs). A record that cannot be written fails the call.
pub(crate) fn record_call<T>(
    hsm: &Hsm,
    caller: &Caller,
    request: &Request<'_>,
    call: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let (result, recorded) = record_with(hsm, draft_of(hsm, caller, request), call, |r| {
        r.as_ref()
            .err()
            .map(|e| (e.kms_name().to_string(), e.to_string()))
    });
    recorded?;
    result
}

/// Runs `call` with `draft` as this thread's pending record: the first
/// transaction the call commits carries it; if it commits none, the record
/// is group-committed after it with the error `failure` finds in the
/// outcome (`(errorCode, errorMessage)`), made durable before this returns
/// (or handed to [`defer_durability`]'s caller). The second value is the
/// record's own outcome: an error there means the call must fail and its
/// result must not be returned.
pub(crate) fn record_with<R>(
    hsm: &Hsm,
    draft: Draft,
    call: impl FnOnce() -> R,
    failure: impl FnOnce(&R) -> Option<(String, String)>,
) -> (R, Result<()>) {
    let log = Arc::clone(hsm.audit_log());
    let guard = PendingGuard::set(Arc::clone(&log), draft, true);
    let result = call();
    let (mut draft, written, mut on_the_way) = guard.take();
    if written {
        return (result, Ok(()));
    }
    if let Some(error) = failure(&result) {
        draft.error = Some(error);
        draft.response_elements = serde_json::Value::Null;
    }
    let deferred = DEFERRED.with(|d| match d.borrow_mut().as_mut() {
        Some(list) => {
            list.push((Arc::clone(&log), draft.clone(), on_the_way.take()));
            true
        }
        None => false,
    });
    if deferred {
        return (result, Ok(()));
    }
    let recorded = log.append_durable(hsm, draft, on_the_way);
    (result, recorded)
}

/// A record still to be made durable, with its log and its count on the
/// way to the group commit (still coming while it waits here).
type DeferredRecord = (Arc<AuditLog>, Draft, Option<OnTheWay>);

thread_local! {
    /// Set by [`defer_durability`]: records to be made durable by the caller.
    static DEFERRED: std::cell::RefCell<Option<Vec<DeferredRecord>>> =
        const { std::cell::RefCell::new(None) };
}

/// Records that a call made through [`defer_durability`] still has to make
/// durable: its result must not be returned before [`Durability::wait`]
/// succeeded.
#[derive(Debug)]
#[must_use = "a call's result must not be returned before its record is durable"]
pub struct Durability {
    records: Vec<DeferredRecord>,
}

impl Durability {
    /// Group-commits the records (with other waiting callers) and returns
    /// once they are durable; an error means the call must fail.
    pub fn wait(self, hsm: &Hsm) -> Result<()> {
        let mut records = self.records;
        // The second and later records are counted no longer: this thread
        // leading the first one's batch must not wait for its own next.
        for (_, _, on_the_way) in records.iter_mut().skip(1) {
            drop(on_the_way.take());
        }
        for (log, draft, on_the_way) in records {
            log.append_durable(hsm, draft, on_the_way)?;
        }
        Ok(())
    }
}

/// Runs `f` (gate calls) without waiting for the records of calls that
/// changed nothing: they are handed back to be made durable with
/// [`Durability::wait`], on a thread that may block. A daemon runs its
/// crypto on a few CPU threads and waits for durability on many others, so
/// that many calls share one group commit. State changes still commit
/// their record inside their own transaction, within `f`.
pub fn defer_durability<T>(f: impl FnOnce() -> T) -> (T, Option<Durability>) {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            DEFERRED.with(|d| d.borrow_mut().take());
        }
    }
    DEFERRED.with(|d| *d.borrow_mut() = Some(Vec::new()));
    let reset = Reset;
    let out = f();
    let records = DEFERRED.with(|d| d.borrow_mut().take()).unwrap_or_default();
    drop(reset);
    let durability = (!records.is_empty()).then_some(Durability { records });
    (out, durability)
}

/// Makes a service event (`RotateKey`, `DeleteKey` of background work) the
/// record of the next transaction this thread commits; drop the guard
/// after it.
pub(crate) fn service_event(hsm: &Hsm, name: &str, key: &uuid::Uuid) -> PendingGuard {
    let draft = Draft::service_event(name, crate::model::key_arn(key), hsm.now());
    PendingGuard::set(Arc::clone(hsm.audit_log()), draft, false)
}

impl Hsm {
    /// The audit log's public key as a signed-note verifier key
    /// (`name+keyid+base64 key`): what `verify-audit-log` checks
    /// checkpoints with. Not a secret.
    pub fn audit_public_key(&self) -> String {
        self.audit_log().signer.verifier_key()
    }

    /// Whether group-committed audit records are fsynced before their call
    /// returns (on by default). Off only for benchmarks comparing the cost.
    pub fn set_audit_fsync(&self, on: bool) {
        self.audit_log().set_fsync(on);
    }

    /// Records appended and commits used for them since the store was
    /// opened: how well group commit batches.
    pub fn audit_counters(&self) -> (u64, u64) {
        self.audit_log().counters()
    }

    /// Signs a checkpoint when records are unsigned and the last one is a
    /// minute old (called by the background tick).
    pub(crate) fn audit_checkpoint_if_due(&self) -> Result<()> {
        self.audit_log().checkpoint_if_due(self, false)
    }
}
