//! The log itself: the chain head, appending records (inside a state
//! change's transaction or group-committed), checkpoints.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::store::engine::Db;
use crate::store::NewKey;

use super::chain::{Hash, Unsealed, ZERO_HASH};
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

/// How long a group-commit leader waits, at most, for the records of
/// calls already running (see [`OnTheWay`]) before it writes its batch.
/// Under load the batches grow (one commit, one fsync, on PostgreSQL one
/// statement, for more records: less CPU per call for the node and the
/// database); a caller alone never waits, since nothing is on its way.
/// Measured on the 2-core benchmark machine: 300 us lifted Encrypt at
/// concurrency 64 on both stores and cut PostgreSQL's CPU per Encrypt
/// from 46-50 us to 24-37 us; 800 us and 1 ms were no better.
pub const LINGER: Duration = Duration::from_micros(300);

/// A leader stops waiting once this many records are queued.
const FULL_BATCH: usize = 128;

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
    /// Batches taken so far: the number of the batch a queued entry will
    /// be written in (a leader takes the whole queue).
    taken: u64,
    /// Whether some caller is writing a batch.
    leader: bool,
    /// Whether the leader waits for records on their way (see
    /// [`AuditLog::linger`]).
    lingering: bool,
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
    /// Wakes the callers of a written batch, by the batch's number's
    /// parity: the callers queued for the next batch sleep on the other,
    /// and only one of them is woken (to lead it).
    done: [Condvar; 2],
    /// Records on their way: counted by [`OnTheWay`].
    coming: AtomicUsize,
    /// Wakes a lingering leader: every record on its way arrived, or the
    /// batch is full.
    arrived: Condvar,
    /// [`LINGER`], in microseconds (tests lengthen it).
    linger_micros: AtomicU64,
    fsync: AtomicBool,
    appended: AtomicU64,
    batches: AtomicU64,
    /// Batches appended in one round trip on the known head (PostgreSQL).
    fast_appends: AtomicU64,
    /// Batches the database sealed on the head it held (PostgreSQL).
    sealed_appends: AtomicU64,
    /// Whether another node moved the head since this node's last append
    /// (PostgreSQL): the next batch is then sealed by the database.
    others_appending: AtomicBool,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").finish_non_exhaustive()
    }
}

/// Which of [`AuditLog`]'s `done` condition variables batch `n` uses.
fn parity(n: u64) -> usize {
    (n % 2) as usize
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

/// One record on its way to the group commit, from the start of its call
/// until it is queued ([`AuditLog::commit_grouped`]), written in the
/// call's own transaction, or dropped with a failed call: a leader waits
/// a little for such records (see [`LINGER`]). Dropping it ends the count.
pub(crate) struct OnTheWay(Option<Arc<AuditLog>>);

impl std::fmt::Debug for OnTheWay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnTheWay")
    }
}

impl OnTheWay {
    /// Ends this value without its drop: its log, whose count the caller
    /// takes down itself.
    fn disarm(mut self) -> Option<Arc<AuditLog>> {
        self.0.take()
    }
}

impl Drop for OnTheWay {
    fn drop(&mut self) {
        let Some(log) = self.0.take() else { return };
        if log.coming.fetch_sub(1, Ordering::SeqCst) == 1 {
            // The last one: a leader waiting for it may go.
            if lock(&log.group).lingering {
                log.arrived.notify_one();
            }
        }
    }
}

impl AuditLog {
    pub fn new(account: Account, signer: Signer, chain: ChainState) -> AuditLog {
        AuditLog {
            account,
            signer,
            chain: Mutex::new(chain),
            group: Mutex::new(Group::default()),
            done: [Condvar::new(), Condvar::new()],
            coming: AtomicUsize::new(0),
            arrived: Condvar::new(),
            linger_micros: AtomicU64::new(LINGER.as_micros() as u64),
            fsync: AtomicBool::new(true),
            appended: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            fast_appends: AtomicU64::new(0),
            sealed_appends: AtomicU64::new(0),
            others_appending: AtomicBool::new(false),
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
        let mut drafts: Vec<&mut Draft> = drafts.into_iter().collect();
        let taken: Vec<Unsealed> = drafts
            .iter_mut()
            .map(|d| d.take_unsealed(&self.account))
            .collect();
        Self::seal_unsealed(state, taken.iter().zip(drafts.iter().map(|d| &**d)))
    }

    /// Seals records whose forms are made as the records after `state`'s
    /// head, moving it.
    fn seal_unsealed<'d>(
        state: &mut ChainState,
        drafts: impl Iterator<Item = (&'d Unsealed, &'d Draft)>,
    ) -> Vec<db::RecordRow> {
        let mut rows = Vec::new();
        for (unsealed, draft) in drafts {
            let sequence = state.head_sequence + 1;
            let (text, hash) = unsealed.seal(sequence, &state.head_hash);
            rows.push(db::RecordRow::new(sequence, draft, text, &hash));
            state.head_sequence = sequence;
            state.head_hash = hash;
        }
        rows
    }

    /// PostgreSQL: appends the batch's records (`records` of them) in one
    /// round trip and one transaction of its own when no checkpoint falls
    /// due: sealed here when the head this node last knew is still the
    /// chain's head (see `audit::db::append_if_head`), else by the
    /// database on the head it holds (`audit::db::append_sealing`; a
    /// second round trip when this node learns of another's appends only
    /// then). The new state, or `None` when the caller must append in a
    /// write transaction (a checkpoint is due).
    fn append_on_known_head(
        &self,
        store: &crate::store::Store,
        batch: &mut [Entry],
        records: usize,
        now: UnixSeconds,
    ) -> Result<Option<ChainState>> {
        // Made once (or ahead, by the callers): sealing again on the head
        // another node moved costs only the hashes.
        let taken: Vec<Unsealed> = batch
            .iter_mut()
            .filter_map(|e| e.draft.as_mut())
            .map(|d| d.take_unsealed(&self.account))
            .collect();
        let outcome = self.append_sealed_on_known_head(store, batch, &taken, records, now);
        if !matches!(outcome, Ok(Some(_))) {
            // Left to the write transaction: what was made stays made.
            let drafts = batch.iter_mut().filter_map(|e| e.draft.as_mut());
            for (draft, unsealed) in drafts.zip(taken) {
                draft.prepared = Some(unsealed);
            }
        }
        outcome
    }

    /// [`AuditLog::append_on_known_head`] with the records' forms made.
    /// Sealed here on the known head while this node appears to be the
    /// only one appending; once another node moved the head, sealed by the
    /// database on the head it holds (one statement that cannot find the
    /// head moved: otherwise, with nodes appending in turn, nearly every
    /// batch would take a second round trip), until a batch shows nobody
    /// else appended since this node's last one.
    fn append_sealed_on_known_head(
        &self,
        store: &crate::store::Store,
        batch: &[Entry],
        taken: &[Unsealed],
        records: usize,
        now: UnixSeconds,
    ) -> Result<Option<ChainState>> {
        let known = self.state();
        let drafts = || {
            taken
                .iter()
                .zip(batch.iter().filter_map(|e| e.draft.as_ref()))
        };
        if !self.others_appending.load(Ordering::Relaxed) {
            let unsigned =
                (known.head_sequence + records as u64).saturating_sub(known.checkpoint_size);
            if known.head_sequence == 0
                || unsigned >= CHECKPOINT_EVERY_RECORDS
                || now.saturating_sub(known.checkpoint_time) >= CHECKPOINT_EVERY_SECS
            {
                return Ok(None);
            }
            let mut state = known;
            let rows = Self::seal_unsealed(&mut state, drafts());
            let head = (known.head_sequence, &known.head_hash);
            match store.read(|conn| db::append_if_head(conn, head, &rows))? {
                None => {
                    self.fast_appends.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(state));
                }
                Some(Some(_)) => self.others_appending.store(true, Ordering::Relaxed),
                Some(None) => return Ok(None),
            }
        }
        let Some(state) = store.read(|conn| db::append_sealing(conn, drafts(), now))? else {
            return Ok(None);
        };
        self.sealed_appends.fetch_add(1, Ordering::Relaxed);
        if state.head_sequence == known.head_sequence + records as u64 {
            // Nobody else appended since this node's last batch.
            self.others_appending.store(false, Ordering::Relaxed);
        }
        Ok(Some(state))
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
    /// `on_the_way` is the record's count among the records coming (see
    /// [`OnTheWay`]), ended once it is queued.
    pub fn append_durable(
        &self,
        hsm: &Hsm,
        draft: Draft,
        on_the_way: Option<OnTheWay>,
    ) -> Result<()> {
        self.commit_grouped(hsm, None, Some(draft), on_the_way)
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
        on_the_way: Option<OnTheWay>,
    ) -> Result<()> {
        // The JSON is made here, in parallel, not by the leader under the lock.
        if let Some(draft) = &mut draft {
            draft.prepare(&self.account);
        }
        let storing = new_key.is_some();
        let mut group = lock(&self.group);
        let mine = group.next_ticket;
        group.next_ticket += 1;
        let my_batch = group.taken;
        group.queue.push(Entry {
            ticket: mine,
            new_key,
            draft,
        });
        if let Some(log) = on_the_way.and_then(OnTheWay::disarm) {
            // Arrived (under the group's lock: no second lock in its drop).
            let left = log.coming.fetch_sub(1, Ordering::SeqCst) - 1;
            if group.lingering && (left == 0 || group.queue.len() >= FULL_BATCH) {
                self.arrived.notify_one();
            }
        }
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
                group = self.linger(group);
                let mut batch = std::mem::take(&mut group.queue);
                let written = group.taken;
                group.taken += 1;
                drop(group);
                let outcomes = self.write_batch_or_each(hsm, &mut batch);
                group = lock(&self.group);
                group.leader = false;
                group.results.extend(outcomes);
                // This batch's callers, and one caller queued since to
                // lead the next (the others sleep on).
                self.done[parity(written)].notify_all();
                if !group.queue.is_empty() {
                    self.done[parity(written + 1)].notify_one();
                }
                continue;
            }
            group = self.done[parity(my_batch)]
                .wait(group)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The new leader waits, at most the linger bound, while records are
    /// on their way and the batch is not full, so that they join it.
    fn linger<'g>(&self, mut group: MutexGuard<'g, Group>) -> MutexGuard<'g, Group> {
        if self.coming.load(Ordering::SeqCst) == 0 {
            return group;
        }
        let deadline =
            Instant::now() + Duration::from_micros(self.linger_micros.load(Ordering::Relaxed));
        while self.coming.load(Ordering::SeqCst) > 0 && group.queue.len() < FULL_BATCH {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            group.lingering = true;
            group = self
                .arrived
                .wait_timeout(group, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            group.lingering = false;
        }
        group
    }

    /// Counts a record on its way: its call started and will queue it
    /// (or write it in a transaction of its own, or fail) soon.
    pub fn on_the_way(self: &Arc<Self>) -> OnTheWay {
        self.coming.fetch_add(1, Ordering::SeqCst);
        OnTheWay(Some(Arc::clone(self)))
    }

    /// How many records are on their way (tests: none may be left behind).
    #[cfg(test)]
    pub fn coming(&self) -> usize {
        self.coming.load(Ordering::SeqCst)
    }

    /// Sets how long a leader waits for records on their way (tests).
    #[cfg(test)]
    pub fn set_linger(&self, bound: Duration) {
        self.linger_micros
            .store(bound.as_micros() as u64, Ordering::Relaxed);
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

    /// Batches the database sealed on the head it held (see
    /// [`AuditLog::append_sealed_on_known_head`]) since open.
    #[cfg(test)]
    pub fn sealed_appends(&self) -> u64 {
        self.sealed_appends.load(Ordering::Relaxed)
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
