//! The daemon backend's small tokio runtime (tonic's blocking-client
//! pattern).
//!
//! It is a current-thread runtime: the application thread that makes a
//! call drives it (and the shared connection) with `block_on`, so a call
//! costs no thread hand-off in this process (measured: about three times
//! the rate of a worker thread waking the caller). Several application
//! threads take turns driving. While the application is idle nobody would
//! drive the connection, and tinfoild drops connections that leave its
//! HTTP/2 keep-alive pings unanswered, so a keep-alive thread drives the
//! runtime briefly every [`KEEPALIVE_TICK`].
//!
//! On a thread of the host application's own tokio runtime, where
//! `block_on` would panic, a short-lived thread outside any runtime drives
//! the call instead.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::task::Poll;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use crate::error::{Pkcs11Error, Result};

/// How often the keep-alive thread lets the connection answer pings
/// (tinfoild pings idle connections every 30 s and waits 10 s).
const KEEPALIVE_TICK: Duration = Duration::from_secs(2);
/// How long one keep-alive turn drives the runtime.
const KEEPALIVE_TURN: Duration = Duration::from_millis(5);

/// The runtime and its keep-alive thread; both stop on drop.
pub(super) struct Rpc {
    spin: SpinRecord,
    keepalive: Option<(Sender<()>, JoinHandle<()>)>,
    runtime: Option<Arc<Runtime>>,
}

impl Rpc {
    /// Starts the runtime and the keep-alive thread.
    pub(super) fn start() -> Result<Rpc> {
        let runtime = Arc::new(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Pkcs11Error::General(format!("cannot start the RPC runtime: {e}")))?,
        );
        let (stop, stopped) = channel::<()>();
        let driven = Arc::clone(&runtime);
        let thread = std::thread::Builder::new()
            .name("tinfoil-pkcs11-keepalive".into())
            .spawn(move || loop {
                match stopped.recv_timeout(KEEPALIVE_TICK) {
                    Err(RecvTimeoutError::Timeout) => {
                        // The timer is made inside the runtime (it needs its context).
                        driven.block_on(async { tokio::time::sleep(KEEPALIVE_TURN).await });
                    }
                    _ => return,
                }
            })
            .map_err(|e| Pkcs11Error::General(format!("cannot start the RPC thread: {e}")))?;
        Ok(Rpc {
            spin: SpinRecord::default(),
            keepalive: Some((stop, thread)),
            runtime: Some(runtime),
        })
    }

    /// Runs `fut` to completion for the calling thread.
    pub(super) fn run<T, F>(&self, fut: F) -> Result<T>
    where
        F: Future<Output = T> + Send,
        T: Send,
    {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| Pkcs11Error::General("the RPC runtime is gone".into()))?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Ok(runtime.block_on(answer_soon(&self.spin, fut)));
        }
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("tinfoil-pkcs11-rpc".into())
                .spawn_scoped(scope, || runtime.block_on(fut))
                .map_err(|e| Pkcs11Error::General(format!("cannot start an RPC thread: {e}")))?
                .join()
                .map_err(|_| Pkcs11Error::General("the RPC thread failed".into()))
        })
    }
}

/// How long a caller polls for its answer before it sleeps.
const SPIN: Duration = Duration::from_micros(150);
/// Calls in a row whose answer came too late for the window, after which
/// callers sleep at once (and poll again on one call in [`PROBE_EVERY`]).
const MISSES_BEFORE_SLEEPING: u32 = 3;
/// How often a caller that sleeps at once tries the window again.
const PROBE_EVERY: u32 = 16;

/// Whether answers have been arriving within [`SPIN`].
#[derive(Debug, Default)]
struct SpinRecord {
    misses: AtomicU32,
    calls: AtomicU32,
}

impl SpinRecord {
    fn worth_spinning(&self) -> bool {
        let calls = self.calls.fetch_add(1, Ordering::Relaxed);
        self.misses.load(Ordering::Relaxed) < MISSES_BEFORE_SLEEPING
            || calls.is_multiple_of(PROBE_EVERY)
    }

    fn record(&self, answered_in_window: bool) {
        if answered_in_window {
            self.misses.store(0, Ordering::Relaxed);
        } else {
            let _ = self
                .misses
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
                    Some(m.saturating_add(1))
                });
        }
    }
}

/// Drives `fut`, polling the socket without sleeping for up to [`SPIN`],
/// then waits normally.
///
/// A call that sleeps in `epoll_wait` must be woken by the kernel when
/// its answer arrives, and on a virtual machine waking a halted CPU costs
/// tens of microseconds, more than tinfoild's work on a 4 KiB AES-GCM
/// call. Each `yield_now` lets the runtime poll the socket with a zero
/// timeout (and gives the CPU to other runnable threads), so an answer
/// that comes within the window is picked up at once. The window is only
/// used while a call is outstanding, so an idle application burns no
/// CPU; and when answers keep coming later than the window (a loaded
/// machine, slow operations), callers stop polling and sleep at once.
async fn answer_soon<F: Future>(record: &SpinRecord, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    if !record.worth_spinning() {
        return fut.await;
    }
    let until = Instant::now() + SPIN;
    loop {
        let polled = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
        if let Poll::Ready(output) = polled {
            record.record(true);
            return output;
        }
        if Instant::now() >= until {
            record.record(false);
            return fut.await;
        }
        std::thread::yield_now();
        tokio::task::yield_now().await;
    }
}

impl Drop for Rpc {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.keepalive.take() {
            drop(stop);
            let _ = thread.join();
        }
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        let Ok(runtime) = Arc::try_unwrap(runtime) else {
            return;
        };
        // Dropping a runtime blocks, which tokio forbids on a thread of
        // another runtime (C_Finalize from an async host): then let it
        // wind down in the background.
        if tokio::runtime::Handle::try_current().is_ok() {
            runtime.shutdown_background();
        } else {
            drop(runtime);
        }
    }
}
