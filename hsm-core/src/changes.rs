//! The store's change counter and a bounded journal of what each change
//! touched, so a reader that cached a view of a token's objects (the
//! PKCS#11 module) can reload only what changed since it last looked.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Journal entries kept; a reader further behind reloads everything.
const JOURNAL_LEN: usize = 4096;

/// What one change touched.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Change {
    /// A key (its record, state, tags or description), by key id.
    Key(String),
    /// A PKCS#11 object row, by object id.
    Object(String),
    /// Anything: the reader reloads everything.
    All,
}

struct Journal {
    /// The journal holds every change after this generation.
    covers_after: u64,
    entries: VecDeque<(u64, Change)>,
}

/// The counter and its journal. Each change moves the counter by one,
/// under the journal's lock, so both always agree.
pub(crate) struct Changes {
    generation: AtomicU64,
    journal: Mutex<Journal>,
}

impl Changes {
    /// A counter starting at `origin`, with an empty journal.
    pub(crate) fn new(origin: u64) -> Self {
        Changes {
            generation: AtomicU64::new(origin),
            journal: Mutex::new(Journal {
                covers_after: origin,
                entries: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current generation.
    pub(crate) fn current(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Records one change that touched `what` (nothing named: `All`).
    pub(crate) fn record(&self, what: &[Change]) {
        let mut journal = self.lock();
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        if what.is_empty() {
            journal.entries.push_back((generation, Change::All));
        }
        for change in what {
            journal.entries.push_back((generation, change.clone()));
        }
        while journal.entries.len() > JOURNAL_LEN {
            if let Some((dropped, _)) = journal.entries.pop_front() {
                journal.covers_after = journal.covers_after.max(dropped);
            }
        }
        // Never keep half of one change.
        let after = journal.covers_after;
        while journal.entries.front().is_some_and(|(g, _)| *g <= after) {
            journal.entries.pop_front();
        }
    }

    /// What changed after generation `since`: the current generation and
    /// the keys and objects touched (none when nothing moved), or `None`
    /// when the journal does not reach back that far or a change was not
    /// attributed (reload everything).
    pub(crate) fn since(&self, since: u64) -> Option<(u64, Vec<Change>)> {
        let journal = self.lock();
        let current = self.current();
        if since == current {
            return Some((current, Vec::new()));
        }
        if since < journal.covers_after || since > current {
            return None;
        }
        let mut out: Vec<Change> = Vec::new();
        for (_, change) in journal.entries.iter().filter(|(g, _)| *g > since) {
            if *change == Change::All {
                return None;
            }
            if !out.contains(change) {
                out.push(change.clone());
            }
        }
        Some((current, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_names_what_changed_and_gives_up_when_it_cannot() {
        let c = Changes::new(100);
        assert_eq!(c.since(100), Some((100, Vec::new())));
        c.record(&[Change::Key("k".into())]);
        c.record(&[Change::Object("o".into()), Change::Key("k".into())]);
        assert_eq!(
            c.since(100),
            Some((
                102,
                vec![Change::Key("k".into()), Change::Object("o".into())]
            ))
        );
        assert_eq!(
            c.since(101),
            Some((
                102,
                vec![Change::Object("o".into()), Change::Key("k".into())]
            ))
        );
        assert_eq!(c.since(99), None, "before the journal");
        assert_eq!(c.since(103), None, "a generation never given out");
        c.record(&[]);
        assert_eq!(c.since(102), None, "an unattributed change");
        for _ in 0..JOURNAL_LEN {
            c.record(&[Change::Key("x".into())]);
        }
        assert_eq!(c.since(101), None, "fell off the journal");
        assert_eq!(
            c.since(103).map(|(_, changes)| changes),
            Some(vec![Change::Key("x".into())]),
            "the journal still covers everything after the unattributed change"
        );
        let now = c.current();
        assert_eq!(c.since(now - 1), Some((now, vec![Change::Key("x".into())])));
    }
}
