//! The record of the call running on this thread, which the store's
//! transaction helper appends inside the call's own transaction.
//!
//! Operations commit through `Store::write`; that helper calls
//! [`before_commit`] after the operation's writes and [`after_commit`]
//! once committed. So the first transaction a gated call commits carries
//! its record (no state change without its record, and a record that
//! cannot be written rolls the change back), without any operation knowing
//! about auditing. `store::put_key` reports the key it wrote
//! ([`note_key`]) so the record of a CreateKey names the new key.

use std::cell::RefCell;
use std::sync::Arc;

use crate::store::engine::Db;

use super::log::{unwritable, AuditLog, ChainState, OnTheWay};
use super::record::Draft;
use crate::error::Result;
use crate::model::KeyRecord;

struct Pending {
    log: Arc<AuditLog>,
    draft: Draft,
    written: bool,
    /// The record's count among those on their way (see [`OnTheWay`]).
    on_the_way: Option<OnTheWay>,
}

thread_local! {
    static PENDING: RefCell<Option<Pending>> = const { RefCell::new(None) };
}

/// While alive, the thread's pending record; dropping it takes the record
/// away (also on panic), restoring whatever was pending before.
pub(crate) struct PendingGuard {
    previous: Option<Pending>,
    taken: bool,
}

impl PendingGuard {
    /// Makes `draft` this thread's pending record. A call's record (not a
    /// background event's) is counted on its way to the group commit,
    /// unless this thread already has one pending: a nested call's leader
    /// would otherwise wait for its own caller's record.
    pub fn set(log: Arc<AuditLog>, draft: Draft, call: bool) -> PendingGuard {
        let nested = PENDING.with(|p| p.borrow().is_some());
        let on_the_way = (call && !nested).then(|| log.on_the_way());
        let previous = PENDING.with(|p| {
            p.borrow_mut().replace(Pending {
                log,
                draft,
                written: false,
                on_the_way,
            })
        });
        PendingGuard {
            previous,
            taken: false,
        }
    }

    /// Takes the record back: the draft, whether it was committed with a
    /// transaction, and its count on the way (if still held).
    pub fn take(mut self) -> (Draft, bool, Option<OnTheWay>) {
        self.taken = true;
        let pending = PENDING.with(|p| {
            let mut slot = p.borrow_mut();
            let mine = slot.take();
            *slot = self.previous.take();
            mine
        });
        let pending = pending.expect("the pending record is set while its guard lives");
        (pending.draft, pending.written, pending.on_the_way)
    }
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        if !self.taken {
            let previous = self.previous.take();
            PENDING.with(|p| *p.borrow_mut() = previous);
        }
    }
}

/// What [`before_commit`] appended, for [`after_commit`].
pub(crate) struct Appended {
    log: Arc<AuditLog>,
    state: ChainState,
}

/// Appends the thread's pending record (if any, and not yet written)
/// inside `tx`.
pub(crate) fn before_commit(tx: &Db<'_>) -> Result<Option<Appended>> {
    PENDING.with(|p| {
        let mut slot = p.borrow_mut();
        let Some(pending) = slot.as_mut().filter(|p| !p.written) else {
            return Ok(None);
        };
        let now = pending.draft.event_time;
        let state = pending
            .log
            .append_in_tx(tx, [&mut pending.draft], now)
            .map_err(unwritable)?;
        Ok(Some(Appended {
            log: Arc::clone(&pending.log),
            state,
        }))
    })
}

/// Marks the pending record written and moves the chain head, once the
/// transaction that holds it committed.
pub(crate) fn after_commit(appended: Option<Appended>) {
    let Some(appended) = appended else { return };
    appended.log.apply(appended.state, 1);
    PENDING.with(|p| {
        if let Some(pending) = p.borrow_mut().as_mut() {
            pending.written = true;
        }
    });
}

/// While alive, this thread has no pending record (restored on drop):
/// the group-commit leader runs other callers' changes under it, so what
/// they write is not noted in the leader's own record.
pub(crate) struct Suspended(Option<Pending>);

/// Suspends this thread's pending record (see [`Suspended`]).
pub(crate) fn suspend() -> Suspended {
    Suspended(PENDING.with(|p| p.borrow_mut().take()))
}

impl Drop for Suspended {
    fn drop(&mut self) {
        let mine = self.0.take();
        PENDING.with(|p| *p.borrow_mut() = mine);
    }
}

/// Commits `key`, group-committed with other callers' new keys and
/// records (see [`AuditLog::commit_grouped`]): with this thread's pending
/// record, if any, naming the key and marked written once committed.
pub(crate) fn commit_new_key(hsm: &crate::hsm::Hsm, key: crate::store::NewKey) -> Result<()> {
    let (log, draft, on_the_way) =
        PENDING.with(|p| match p.borrow_mut().as_mut().filter(|p| !p.written) {
            Some(pending) => {
                let mut draft = pending.draft.clone();
                draft.written_key(&key.record);
                (
                    Arc::clone(&pending.log),
                    Some(draft),
                    pending.on_the_way.take(),
                )
            }
            None => (Arc::clone(hsm.audit_log()), None, None),
        });
    let recorded = draft.is_some();
    log.commit_grouped(hsm, Some(key), draft, on_the_way)?;
    if recorded {
        PENDING.with(|p| {
            if let Some(pending) = p.borrow_mut().as_mut() {
                pending.written = true;
            }
        });
    }
    Ok(())
}

/// Notes the key a transaction writes, for the pending record.
pub(crate) fn note_key(key: &KeyRecord) {
    PENDING.with(|p| {
        if let Some(pending) = p.borrow_mut().as_mut().filter(|p| !p.written) {
            pending.draft.written_key(key);
        }
    });
}
