//! A small fixed pool of threads for the fast, CPU-bound hsm-core calls
//! (symmetric crypto, metadata): a tokio `spawn_blocking` per call costs a
//! thread hand-off and a futex sleep/wake, which measured as the largest
//! cost of an Encrypt RPC. Pool threads take queued jobs back to back and
//! only sleep when the queue stays empty. Slow calls (key generation) stay
//! on tokio's blocking pool so they never hold these threads for long.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// How often an idle thread yields and looks again before sleeping.
const YIELDS_BEFORE_SLEEP: u32 = 8;

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    sleeping: usize,
    shutdown: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A job never runs under the lock, so poisoning cannot happen;
        // recover the guard anyway rather than panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The job's thread ended without an answer (the job panicked).
#[derive(Debug, thiserror::Error)]
#[error("the pool job ended without a result")]
pub struct JobFailed;

/// A fixed set of worker threads running closures; joined on drop.
pub struct CryptoPool {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for CryptoPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptoPool")
            .field("threads", &self.threads.len())
            .finish()
    }
}

impl CryptoPool {
    /// Starts `threads` (at least 1) worker threads.
    pub fn new(threads: usize) -> std::io::Result<CryptoPool> {
        let shared = Arc::new(Shared::default());
        let mut handles = Vec::new();
        for n in 0..threads.max(1) {
            let shared = Arc::clone(&shared);
            handles.push(
                std::thread::Builder::new()
                    .name(format!("tinfoil-crypto-{n}"))
                    .spawn(move || worker(&shared))?,
            );
        }
        Ok(CryptoPool {
            shared,
            threads: handles,
        })
    }

    /// Runs `f` on a pool thread and waits (asynchronously) for its result.
    pub async fn run<T, F>(&self, f: F) -> Result<T, JobFailed>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        let wake = {
            let mut state = self.shared.lock();
            state.jobs.push_back(job);
            state.sleeping > 0
        };
        if wake {
            self.shared.wake.notify_one();
        }
        rx.await.map_err(|_| JobFailed)
    }
}

fn worker(shared: &Shared) {
    let mut yields = 0;
    loop {
        let job = {
            let mut state = shared.lock();
            match state.jobs.pop_front() {
                Some(job) => Some(job),
                None if state.shutdown => return,
                None if yields < YIELDS_BEFORE_SLEEP => None,
                None => {
                    state.sleeping += 1;
                    let mut state = shared
                        .wake
                        .wait_while(state, |s| s.jobs.is_empty() && !s.shutdown)
                        .unwrap_or_else(|e| e.into_inner());
                    state.sleeping -= 1;
                    yields = 0;
                    state.jobs.pop_front()
                }
            }
        };
        match job {
            Some(job) => {
                yields = 0;
                // A panicking job drops its sender: the caller gets JobFailed
                // and the thread keeps serving.
                let _ = catch_unwind(AssertUnwindSafe(job));
            }
            None => {
                yields += 1;
                std::thread::yield_now();
            }
        }
    }
}

impl Drop for CryptoPool {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.wake.notify_all();
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_and_survives_a_panic() {
        let pool = CryptoPool::new(2).unwrap();
        assert_eq!(pool.run(|| 2 + 2).await.unwrap(), 4);
        let failed = pool
            .run(|| -> u32 { panic!("job failure (expected by this test)") })
            .await;
        assert!(failed.is_err());
        let results: Vec<u32> = futures_lite(&pool).await;
        assert_eq!(results, (0..64).collect::<Vec<_>>());
    }

    async fn futures_lite(pool: &CryptoPool) -> Vec<u32> {
        let mut out = Vec::new();
        for i in 0..64u32 {
            out.push(pool.run(move || i).await.unwrap());
        }
        out
    }

    #[test]
    fn drop_joins_idle_threads() {
        let pool = CryptoPool::new(3).unwrap();
        drop(pool);
    }
}
