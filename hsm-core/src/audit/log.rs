//! The log itself: the chain head, appending records (inside a state
//! change's transaction or group-committed), checkpoints.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::store::engine::Db;
use crate::store::NewKey;

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

/// One caller's part of a batch: its new key, if any, and its record.
struct Entry {
    ticket: u64,
    new_key: Option<NewKey>,
    draft: Option<Draft>,
}

/// The callers waiting on group commit.
#[derive(Default)]
struct Group {
    queue: Vec<Entry>,
    /// The ticket the next entry gets.
    next_ticket: u64,
    /// Whether some caller is writing a batch.
    leader: bool,
    /// Finished entries' outcomes, by ticket, until their callers read them.
    results: HashMap<u64, BatchOutcome>,
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
    /// Batches appended in one round trip on the known head (PostgreSQL).
    fast_appends: AtomicU64,
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
            fast_appends: AtomicU64::new(0),
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
        let rows = self.seal(&mut state, drafts);
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

    /// Seals `drafts` as the records after `state`'s head, moving it.
    fn seal<'d>(
        &self,
        state: &mut ChainState,
        drafts: impl IntoIterator<Item = &'d mut Draft>,
    ) -> Vec<db::RecordRow> {
        let mut rows = Vec::new();
        for draft in drafts {
            let mut record = draft.take_json(&self.account);
            let sequence = state.head_sequence + 1;
            let hash = seal_record(&mut record, sequence, &state.head_hash);
            rows.push(db::RecordRow::new(sequence, draft, &record, &hash));
            state.head_sequence = sequence;
            state.head_hash = hash;
        }
        rows
    }

    /// PostgreSQL: appends the batch's records (`records` of them) in one
    /// round trip and one transaction of its own when the head this node
    /// last committed is still the chain's head and no checkpoint falls
    /// due (see `audit::db::append_if_head`); when another node appended
    /// since, once more on the head it found (a second round trip). The new
    /// state, or `None` when the caller must append in a write transaction
    /// (a checkpoint is due, or the head moved again).
    fn append_on_known_head(
        &self,
        store: &crate::store::Store,
        batch: &mut [Entry],
        records: usize,
        now: UnixSeconds,
    ) -> Result<Option<ChainState>> {
        let mut known = self.state();
        for _ in 0..2 {
            let unsigned =
                (known.head_sequence + records as u64).saturating_sub(known.checkpoint_size);
            if known.head_sequence == 0
                || unsigned >= CHECKPOINT_EVERY_RECORDS
                || now.saturating_sub(known.checkpoint_time) >= CHECKPOINT_EVERY_SECS
            {
                return Ok(None);
            }
            let mut state = known;
            let rows = self.seal(
                &mut state,
                batch.iter_mut().filter_map(|e| e.draft.as_mut()),
            );
            let head = (known.head_sequence, &known.head_hash);
            match store.read(|conn| db::append_if_head(conn, head, &rows))? {
                None => {
                    self.fast_appends.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(state));
                }
                Some(Some((sequence, hash))) => {
                    known.head_sequence = sequence;
                    known.head_hash = hash;
                }
                Some(None) => return Ok(None),
            }
        }
        Ok(None)
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
    pub fn append_durable(&self, hsm: &Hsm, draft: Draft) -> Result<()> {
        self.commit_grouped(hsm, None, Some(draft))
    }

    /// Commits `new_key` (if any) and `draft` (if any) together, durably,
    /// group-committed with other callers' records and new keys: one
    /// transaction and one fsync for the batch (nothing can conflict with
    /// a new key's rows). A new key is always made durable, whatever
    /// [`AuditLog::set_fsync`] says. If the batch fails for any reason but
    /// the store being unavailable, each entry of it is written again in a
    /// transaction of its own, so one caller's failing insert fails that
    /// caller only; either way every failed entry changed nothing.
    pub fn commit_grouped(
        &self,
        hsm: &Hsm,
        new_key: Option<NewKey>,
        mut draft: Option<Draft>,
    ) -> Result<()> {
        // The JSON is made here, in parallel, not by the leader under the lock.
        if let Some(draft) = &mut draft {
            draft.prepare(&self.account);
        }
        let storing = new_key.is_some();
        let mut group = lock(&self.group);
        let mine = group.next_ticket;
        group.next_ticket += 1;
        group.queue.push(Entry {
            ticket: mine,
            new_key,
            draft,
        });
        loop {
            if let Some(outcome) = group.results.remove(&mine) {
                return outcome.map_err(|(unavailable, reason)| {
                    let e = if storing {
                        Error::Internal(format!(
                            "the key could not be stored with its audit record, so the call was \
                             refused and changed nothing: {reason}"
                        ))
                    } else {
                        unwritable(reason)
                    };
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
                drop(group);
                let outcomes = self.write_batch_or_each(hsm, &mut batch);
                group = lock(&self.group);
                group.leader = false;
                group.results.extend(outcomes);
                self.done.notify_all();
                continue;
            }
            group = self.done.wait(group).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Writes `batch` in one transaction; if that fails (the store
    /// available) and the batch holds changes, each entry alone. The
    /// outcome of every entry, by ticket.
    fn write_batch_or_each(&self, hsm: &Hsm, batch: &mut [Entry]) -> Vec<(u64, BatchOutcome)> {
        let outcome = self.write_caught(hsm, batch);
        let changes = batch.iter().filter(|e| e.new_key.is_some()).count();
        let alone = match &outcome {
            Err(Error::StoreUnavailable(_)) => false,
            Err(_) => changes > 0 && batch.len() > 1,
            Ok(()) => false,
        };
        if !alone {
            let outcome =
                outcome.map_err(|e| (matches!(e, Error::StoreUnavailable(_)), e.to_string()));
            return batch.iter().map(|e| (e.ticket, outcome.clone())).collect();
        }
        batch
            .iter_mut()
            .map(|entry| {
                let outcome = self
                    .write_caught(hsm, std::slice::from_mut(entry))
                    .map_err(|e| (matches!(e, Error::StoreUnavailable(_)), e.to_string()));
                (entry.ticket, outcome)
            })
            .collect()
    }

    /// [`AuditLog::write_batch`], a panic in it an error.
    fn write_caught(&self, hsm: &Hsm, batch: &mut [Entry]) -> Result<()> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.write_batch(hsm, batch)
        }))
        .unwrap_or_else(|_| Err(Error::Internal("the audit writer panicked".into())))
    }

    fn write_batch(&self, hsm: &Hsm, batch: &mut [Entry]) -> Result<()> {
        let now = hsm.now();
        let mut store = hsm.lock_store();
        // A state change is durable before its caller hears of it, always.
        let fsync = self.fsync.load(Ordering::Relaxed) || batch.iter().any(|e| e.new_key.is_some());
        let sqlite = !store.is_postgres();
        if !fsync && sqlite {
            // WAL with synchronous=NORMAL: committed, not yet fsynced.
            store.conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        let records = batch.iter().filter(|e| e.draft.is_some()).count();
        if !sqlite && fsync && records > 0 && batch.iter().all(|e| e.new_key.is_none()) {
            if let Some(state) = self.append_on_known_head(&store, batch, records, now)? {
                self.apply(state, records);
                return Ok(());
            }
        }
        let outcome = store.write_unaudited(|tx| {
            if !fsync && tx.is_postgres() {
                tx.batch("SET LOCAL synchronous_commit = off")?;
            }
            {
                // The keys are other callers': what is written names their
                // own records, not this thread's pending one.
                let _suspended = super::pending::suspend();
                let keys: Vec<&NewKey> = batch.iter().filter_map(|e| e.new_key.as_ref()).collect();
                crate::store::put_new_keys(tx, &keys)?;
            }
            if records == 0 {
                return Ok(None);
            }
            self.append_in_tx(tx, batch.iter_mut().filter_map(|e| e.draft.as_mut()), now)
                .map(Some)
        });
        if !fsync && sqlite {
            store.conn.pragma_update(None, "synchronous", "FULL")?;
        }
        if let Some(state) = outcome? {
            self.apply(state, records);
        }
        Ok(())
    }

    /// Batches appended in one round trip on the known head (see
    /// [`AuditLog::append_on_known_head`]) since open.
    #[cfg(test)]
    pub fn fast_appends(&self) -> u64 {
        self.fast_appends.load(Ordering::Relaxed)
    }

    /// Whether a caller is writing a batch, and how many entries wait for
    /// the next (tests force batches with it).
    #[cfg(test)]
    pub fn group_state(&self) -> (bool, usize) {
        let group = lock(&self.group);
        (group.leader, group.queue.len())
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
