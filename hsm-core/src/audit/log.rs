//! The log itself: the chain head, appending records (inside a state
//! change's transaction or group-committed), checkpoints.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::store::engine::Db;

use super::chain::{seal_record, Hash, ZERO_HASH};
use super::checkpoint::Signer;
use super::db;
use super::record::Draft;
use crate::error::{Error, Result};
use crate::hsm::Hsm;
use crate::identity::Account;
use crate::types::UnixSeconds;

/// A checkpoint is signed at least every this many records ...
pub const CHECKPOINT_EVERY_RECORDS: u64 = 1000;
/// ... and at least this often (seconds) while records arrive; the
/// background tick signs one when the newest records are older.
pub const CHECKPOINT_EVERY_SECS: i64 = 60;

/// The chain's head and the newest checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChainState {
    pub head_sequence: u64,
    pub head_hash: Hash,
    pub checkpoint_size: u64,
    pub checkpoint_time: UnixSeconds,
}

/// A batch's outcome; on failure, whether the store was unavailable, and
/// why.
type BatchOutcome = std::result::Result<(), (bool, String)>;

/// The callers waiting on group commit.
#[derive(Default)]
struct Group {
    queue: Vec<Draft>,
    /// The batch a draft pushed now joins.
    open_batch: u64,
    /// Whether some caller is writing a batch.
    leader: bool,
    /// Finished batches: waiters still to read, outcome.
    results: HashMap<u64, (usize, BatchOutcome)>,
}

/// An open store's audit log.
pub(crate) struct AuditLog {
    pub account: Account,
    pub signer: Signer,
    /// Changed only with the store's lock held (every append runs in a
    /// store transaction), and only after that transaction committed.
    chain: Mutex<ChainState>,
    group: Mutex<Group>,
    done: Condvar,
    fsync: AtomicBool,
    appended: AtomicU64,
    batches: AtomicU64,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The error of a call whose record could not be written.
pub(crate) fn unwritable(reason: impl std::fmt::Display) -> Error {
    Error::Internal(format!(
        "the audit log cannot be written, so the call was refused and changed nothing: {reason}"
    ))
}

impl AuditLog {
    pub fn new(account: Account, signer: Signer, chain: ChainState) -> AuditLog {
        AuditLog {
            account,
            signer,
            chain: Mutex::new(chain),
            group: Mutex::new(Group::default()),
            done: Condvar::new(),
            fsync: AtomicBool::new(true),
            appended: AtomicU64::new(0),
            batches: AtomicU64::new(0),
        }
    }

    /// Reads the chain head and newest checkpoint from the store.
    pub fn load_state(conn: &Db<'_>) -> Result<ChainState> {
        let (record, checkpoint) = db::chain_ends(conn)?;
        let (head_sequence, head_hash) = match (record, checkpoint) {
            (Some(head), _) => head,
            // Everything pruned: the head is the newest checkpoint's.
            (None, Some((size, _, root))) => (size, root),
            (None, None) => (0, ZERO_HASH),
        };
        let (checkpoint_size, checkpoint_time) =
            checkpoint.map_or((0, i64::MIN), |(size, time, _)| (size, time));
        Ok(ChainState {
            head_sequence,
            head_hash,
            checkpoint_size,
            checkpoint_time,
        })
    }

    /// The chain as committed.
    pub fn state(&self) -> ChainState {
        *lock(&self.chain)
    }

    /// Whether group-committed records are fsynced before the call returns.
    pub fn set_fsync(&self, on: bool) {
        self.fsync.store(on, Ordering::Relaxed);
    }

    /// Records appended and transactions (batches) used since open.
    pub fn counters(&self) -> (u64, u64) {
        (
            self.appended.load(Ordering::Relaxed),
            self.batches.load(Ordering::Relaxed),
        )
    }

    /// Appends `drafts` inside `tx` (the store's lock held) and signs a
    /// checkpoint when one is due. Returns the chain state to
    /// [`AuditLog::apply`] once `tx` committed.
    pub fn append_in_tx<'d>(
        &self,
        tx: &Db<'_>,
        drafts: impl IntoIterator<Item = &'d mut Draft>,
        now: UnixSeconds,
    ) -> Result<ChainState> {
        // The head as committed, read inside the transaction (which holds
        // the write lock): another process sharing the store may have
        // appended since this one's last append.
        let mut state = Self::load_state(tx)?;
        let mut rows = Vec::new();
        for draft in drafts {
            let mut record = draft.take_json(&self.account);
            let sequence = state.head_sequence + 1;
            let hash = seal_record(&mut record, sequence, &state.head_hash);
            rows.push(db::RecordRow::new(sequence, draft, &record, &hash));
            state.head_sequence = sequence;
            state.head_hash = hash;
        }
        // A group-committed batch in one statement on PostgreSQL.
        db::insert_records(tx, &rows)?;
        let unsigned = state.head_sequence - state.checkpoint_size;
        if unsigned >= CHECKPOINT_EVERY_RECORDS
            || (unsigned > 0 && now.saturating_sub(state.checkpoint_time) >= CHECKPOINT_EVERY_SECS)
        {
            self.checkpoint_in_tx(tx, &mut state, now)?;
        }
        Ok(state)
    }

    /// Signs and inserts a checkpoint of the head in `state`.
    pub fn checkpoint_in_tx(
        &self,
        tx: &Db<'_>,
        state: &mut ChainState,
        now: UnixSeconds,
    ) -> Result<()> {
        let note = self.signer.sign(state.head_sequence, &state.head_hash);
        db::insert_checkpoint(tx, state.head_sequence, now, &state.head_hash, &note)?;
        state.checkpoint_size = state.head_sequence;
        state.checkpoint_time = now;
        Ok(())
    }

    /// Makes a committed append the chain's state.
    pub fn apply(&self, state: ChainState, records: usize) {
        *lock(&self.chain) = state;
        self.appended.fetch_add(records as u64, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
    }

    /// Appends `draft` and returns once it is committed, durably unless
    /// fsync was turned off. Concurrent callers share one transaction:
    /// the first becomes the leader and writes everything queued, the
    /// others wait on the condition variable for their batch's outcome.
    pub fn append_durable(&self, hsm: &Hsm, mut draft: Draft) -> Result<()> {
        // The JSON is made here, in parallel, not by the leader under the lock.
        draft.prepare(&self.account);
        let mut group = lock(&self.group);
        group.queue.push(draft);
        let mine = group.open_batch;
        loop {
            if let Some(entry) = group.results.get_mut(&mine) {
                entry.0 -= 1;
                let outcome = entry.1.clone();
                if entry.0 == 0 {
                    group.results.remove(&mine);
                }
                return outcome.map_err(|(unavailable, reason)| {
                    let e = unwritable(reason);
                    match e {
                        // The store is down (PostgreSQL): say so.
                        Error::Internal(m) if unavailable => Error::StoreUnavailable(m),
                        e => e,
                    }
                });
            }
            if !group.leader {
                group.leader = true;
                let mut batch = std::mem::take(&mut group.queue);
                let id = group.open_batch;
                group.open_batch += 1;
                drop(group);
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.write_batch(hsm, &mut batch)
                }))
                .unwrap_or_else(|_| Err(Error::Internal("the audit writer panicked".into())))
                .map_err(|e| (matches!(e, Error::StoreUnavailable(_)), e.to_string()));
                group = lock(&self.group);
                group.leader = false;
                group.results.insert(id, (batch.len(), outcome));
                self.done.notify_all();
                continue;
            }
            group = self.done.wait(group).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn write_batch(&self, hsm: &Hsm, batch: &mut [Draft]) -> Result<()> {
        let now = hsm.now();
        let mut store = hsm.lock_store();
        let fsync = self.fsync.load(Ordering::Relaxed);
        let sqlite = !store.is_postgres();
        if !fsync && sqlite {
            // WAL with synchronous=NORMAL: committed, not yet fsynced.
            store.conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        let outcome = store.write_unaudited(|tx| {
            if !fsync && tx.is_postgres() {
                tx.batch("SET LOCAL synchronous_commit = off")?;
            }
            self.append_in_tx(tx, batch.iter_mut(), now)
        });
        if !fsync && sqlite {
            store.conn.pragma_update(None, "synchronous", "FULL")?;
        }
        self.apply(outcome?, batch.len());
        Ok(())
    }

    /// Signs a checkpoint of the head now if records are unsigned and
    /// (unless `force`) the newest checkpoint is a minute old.
    pub fn checkpoint_if_due(&self, hsm: &Hsm, force: bool) -> Result<()> {
        let now = hsm.now();
        let mut store = hsm.lock_store();
        let state = store.write_unaudited(|tx| {
            let mut state = Self::load_state(tx)?;
            let unsigned = state.head_sequence > state.checkpoint_size;
            if unsigned
                && (force || now.saturating_sub(state.checkpoint_time) >= CHECKPOINT_EVERY_SECS)
            {
                self.checkpoint_in_tx(tx, &mut state, now)?;
            }
            Ok(state)
        })?;
        // The chain as committed, also when other nodes (PostgreSQL)
        // appended or signed since this one last did.
        *lock(&self.chain) = state;
        Ok(())
    }
}
