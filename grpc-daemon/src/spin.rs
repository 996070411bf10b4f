//! Busy polling after a call, so the next call of a busy client is picked
//! up without a wake-up.
//!
//! A worker that sleeps in `epoll_wait` is woken by the kernel when a
//! request arrives; on a virtual machine waking a halted CPU costs tens of
//! microseconds on both sides, more than a PKCS#11 AES-GCM call on 4 KiB
//! or an ECDSA signature costs here. After each call answered on the async
//! worker the daemon keeps one task yielding for a short window: every
//! yield lets the runtime poll its sockets with a zero timeout, so a
//! request that follows within the window is read at once. The window
//! restarts with each such call and ends when they stop, so an idle daemon
//! burns no CPU; each turn also yields the CPU to other runnable threads.
//! The PKCS#11 module does the same while it waits for an answer.
//!
//! It pays with one async worker (the default on a 2-CPU machine): with
//! several, an idle worker blocked in `epoll_wait` still receives the
//! socket's events. Measured in README "Use as a PKCS#11 token".

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The default window (setting `busy_poll_micros`).
pub const DEFAULT_WINDOW: Duration = Duration::from_micros(200);

/// The busy-polling task's state: one per daemon.
#[derive(Debug)]
pub struct Spinner {
    window_micros: u64,
    epoch: Instant,
    /// Microseconds from `epoch` to the end of the last call.
    last_call: AtomicU64,
    running: AtomicBool,
}

impl Spinner {
    /// A spinner that polls for `window` after each call (zero: never).
    pub fn new(window: Duration) -> Arc<Spinner> {
        Arc::new(Spinner {
            window_micros: window.as_micros().min(u128::from(u64::MAX)) as u64,
            epoch: Instant::now(),
            last_call: AtomicU64::new(0),
            running: AtomicBool::new(false),
        })
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    fn idle_too_long(&self) -> bool {
        self.now()
            .saturating_sub(self.last_call.load(Ordering::Relaxed))
            > self.window_micros
    }

    /// Records a call's end and makes sure the polling task runs. Call it
    /// on a runtime thread.
    pub fn touch(self: &Arc<Self>) {
        if self.window_micros == 0 {
            return;
        }
        self.last_call.store(self.now(), Ordering::Relaxed);
        if !self.running.swap(true, Ordering::AcqRel) {
            let me = Arc::clone(self);
            tokio::spawn(async move { me.spin().await });
        }
    }

    async fn spin(&self) {
        loop {
            if self.idle_too_long() {
                self.running.store(false, Ordering::Release);
                // A call that ended just now may have seen `running` still
                // set: take the task back if so.
                if self.idle_too_long() || self.running.swap(true, Ordering::AcqRel) {
                    return;
                }
            }
            std::thread::yield_now();
            tokio::task::yield_now().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn the_task_stops_after_the_window_and_restarts_on_a_call() {
        let spinner = Spinner::new(Duration::from_micros(300));
        spinner.touch();
        assert!(spinner.running.load(Ordering::Acquire));
        // The task yields, so sleeping lets it run out; on a loaded machine
        // that may take a while, so wait (boundedly) rather than assume a time.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while spinner.running.load(Ordering::Acquire) {
            assert!(
                std::time::Instant::now() < deadline,
                "the spinning task never stopped"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        spinner.touch();
        assert!(spinner.running.load(Ordering::Acquire));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_zero_window_never_starts_the_task() {
        let spinner = Spinner::new(Duration::ZERO);
        spinner.touch();
        assert!(!spinner.running.load(Ordering::Acquire));
    }
}
