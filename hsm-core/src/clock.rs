//! Time, from a clock that tests can move.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::types::UnixSeconds;

/// A source of the current time in Unix seconds.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> UnixSeconds;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixSeconds {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as UnixSeconds)
            .unwrap_or(0)
    }
}

/// A clock that stands still until moved; for tests and test-only daemon flags.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicI64,
}

impl ManualClock {
    /// A clock showing `now`.
    pub fn new(now: UnixSeconds) -> Self {
        ManualClock {
            now: AtomicI64::new(now),
        }
    }
    /// Moves the clock forward (or back) by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.now.fetch_add(seconds, Ordering::SeqCst);
    }
    /// Sets the clock to `now`.
    pub fn set(&self, now: UnixSeconds) {
        self.now.store(now, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixSeconds {
        self.now.load(Ordering::SeqCst)
    }
}

/// Seconds in a day.
pub const DAY: i64 = 86_400;
