//! `tinfoil.v1.KeyManagement` over [`hsm_core::Hsm`].
//!
//! Every call runs off the async runtime (which only moves bytes): fast
//! calls on the fixed [`CryptoPool`], key generation on tokio's blocking
//! pool (RSA key generation takes up to seconds). Each call holds one of `max_in_flight` permits
//! (over the limit: RESOURCE_EXHAUSTED / LimitExceededException) and must
//! finish within the per-call deadline (DEADLINE_EXCEEDED /
//! DependencyTimeoutException). Plaintext received in requests is wiped
//! once the core has used it.

use std::sync::Arc;
use std::time::Duration;

use hsm_core::{self as core, Hsm};
use tokio::sync::Semaphore;
use tonic::{Response, Status};

use crate::convert::opt;
use crate::pool::CryptoPool;
use crate::spin::Spinner;
use crate::status;

mod audit;
pub mod caller;
mod handlers;
mod policies;
#[cfg(test)]
pub(crate) mod tests;
mod users;

/// Limits applied to every call.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// Calls allowed in flight at once, across all connections.
    pub max_in_flight: usize,
    /// How long one call may take before DEADLINE_EXCEEDED.
    pub call_timeout: Duration,
    /// How long the daemon keeps polling its sockets after a call answered
    /// on the async worker (see [`crate::spin`]); zero turns it off.
    pub busy_poll: Duration,
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits {
            max_in_flight: 1024,
            call_timeout: Duration::from_secs(10),
            busy_poll: crate::spin::DEFAULT_WINDOW,
        }
    }
}

/// Which threads run a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// The fixed crypto pool: symmetric crypto, HMAC, signing, metadata.
    Fast,
    /// tokio's blocking pool: key generation (RSA takes up to seconds).
    Slow,
    /// The async worker itself, for calls far shorter than the hop to a
    /// pool thread and back (PKCS#11 AES/HMAC on at most one request's
    /// bytes, ECDSA/EdDSA signatures: tens of microseconds at most).
    Inline,
}

/// The KeyManagement service: a cheap handle, clone freely.
#[derive(Clone)]
pub struct KmsService {
    hsm: Arc<Hsm>,
    limits: CallLimits,
    in_flight: Arc<Semaphore>,
    pool: Arc<CryptoPool>,
    spinner: Arc<Spinner>,
    /// The daemon's own uid: callers on the socket with it are administrators.
    daemon_uid: u32,
    /// Whether socket callers bound to no user act as `uid-N`.
    anonymous_uids: bool,
    /// TLS client certificates (SHA-256 hex) acting as administrators.
    admin_certificates: Arc<Vec<String>>,
}

impl std::fmt::Debug for KmsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsService")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl KmsService {
    /// A service over `hsm` with `limits`, running fast calls on `pool`.
    pub fn new(hsm: Arc<Hsm>, limits: CallLimits, pool: Arc<CryptoPool>) -> Self {
        KmsService {
            hsm,
            limits,
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
            pool,
            spinner: Spinner::new(limits.busy_poll),
            daemon_uid: caller::daemon_uid(),
            anonymous_uids: false,
            admin_certificates: Arc::default(),
        }
    }

    /// TLS client certificates (SHA-256, lowercase hex) that act as the
    /// account's administrators.
    pub fn with_admin_certificates(mut self, fingerprints: Vec<String>) -> Self {
        self.admin_certificates = Arc::new(fingerprints);
        self
    }

    /// Lets socket callers whose uid is bound to no user act as the user
    /// `uid-N` instead of being refused.
    pub fn with_anonymous_uids(mut self, anonymous_uids: bool) -> Self {
        self.anonymous_uids = anonymous_uids;
        self
    }

    /// The caller of a request, as its transport proved it (see [`caller`]).
    pub(crate) fn caller<R>(&self, request: &tonic::Request<R>) -> Result<core::Caller, Status> {
        caller::caller_of(
            &self.hsm,
            &caller::Rules {
                daemon_uid: self.daemon_uid,
                anonymous_uids: self.anonymous_uids,
                admin_certificates: &self.admin_certificates,
            },
            request,
        )
    }

    /// Runs `f` through the gate for `caller` on the crypto pool.
    pub(crate) async fn run_as<T, F>(
        &self,
        op: &'static str,
        caller: core::Caller,
        f: F,
    ) -> Result<Response<T>, Status>
    where
        F: FnOnce(core::Gate<'_>) -> core::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run_on(Lane::Fast, op, move |hsm| f(hsm.gate(&caller)))
            .await
    }

    /// Runs `f` through the gate for `caller` on tokio's blocking pool.
    pub(crate) async fn run_slow_as<T, F>(
        &self,
        op: &'static str,
        caller: core::Caller,
        f: F,
    ) -> Result<Response<T>, Status>
    where
        F: FnOnce(core::Gate<'_>) -> core::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run_on(Lane::Slow, op, move |hsm| f(hsm.gate(&caller)))
            .await
    }

    /// Runs `f` in `lane` under the call limits.
    async fn run_on<T, F>(&self, lane: Lane, op: &'static str, f: F) -> Result<Response<T>, Status>
    where
        F: FnOnce(&Hsm) -> core::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let hsm = Arc::clone(&self.hsm);
        self.run_job(lane, op, move || f(&hsm), status::from_core)
            .await
    }

    /// Runs `job` in `lane` under the call limits (permit, deadline); its
    /// error becomes a status through `to_status`, one of [`status`]'s
    /// mappings. Other services of the daemon share the machinery this way.
    pub(crate) async fn run_job<T, E, F>(
        &self,
        lane: Lane,
        op: &'static str,
        job: F,
        to_status: impl FnOnce(E) -> Status,
    ) -> Result<Response<T>, Status>
    where
        F: FnOnce() -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        let permit = Arc::clone(&self.in_flight)
            .try_acquire_owned()
            .map_err(|_| {
                tracing::warn!(op, "refused: too many calls in flight");
                status::overloaded(self.limits.max_in_flight)
            })?;
        let job = move || {
            let _permit = permit;
            job()
        };
        // A durable audit record that cannot be written fails the call.
        let mut audit_failure: Option<Status> = None;
        let task = async {
            match lane {
                Lane::Fast => {
                    // The call's audit record is made durable off the
                    // crypto pool, so many calls share one group commit;
                    // no answer leaves before it is durable.
                    let hsm = Arc::clone(&self.hsm);
                    match self
                        .pool
                        .run(move || core::audit::defer_durability(job))
                        .await
                    {
                        Err(_) => Err(()),
                        Ok((outcome, None)) => Ok(outcome),
                        Ok((outcome, Some(durability))) => {
                            match tokio::task::spawn_blocking(move || durability.wait(&hsm)).await {
                                Ok(Ok(())) => Ok(outcome),
                                Ok(Err(e)) => {
                                    audit_failure = Some(status::from_core(e));
                                    Err(())
                                }
                                Err(_) => Err(()),
                            }
                        }
                    }
                }
                Lane::Slow => tokio::task::spawn_blocking(job).await.map_err(|_| ()),
                Lane::Inline => {
                    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        core::audit::defer_durability(job)
                    })) {
                        Err(_) => Err(()),
                        Ok((outcome, None)) => Ok(outcome),
                        // A record to make durable: never on the runtime's
                        // thread (group commit waits on the blocking pool).
                        Ok((outcome, Some(durability))) => {
                            let hsm = Arc::clone(&self.hsm);
                            match tokio::task::spawn_blocking(move || durability.wait(&hsm)).await {
                                Ok(Ok(())) => Ok(outcome),
                                Ok(Err(e)) => {
                                    audit_failure = Some(status::from_core(e));
                                    Err(())
                                }
                                Err(_) => Err(()),
                            }
                        }
                    }
                }
            }
        };
        let outcome = tokio::time::timeout(self.limits.call_timeout, task).await;
        if lane == Lane::Inline {
            // The same client is likely to call again at once (PKCS#11).
            self.spinner.touch();
        }
        match outcome {
            Err(_) => {
                tracing::warn!(op, "call exceeded the per-call deadline");
                Err(status::deadline_exceeded(
                    self.limits.call_timeout.as_millis() as u64,
                ))
            }
            Ok(Err(())) if audit_failure.is_some() => {
                tracing::error!(op, "refused: the audit record cannot be written");
                Err(audit_failure.take().expect("checked"))
            }
            Ok(Err(())) => {
                tracing::error!(op, "blocking task failed");
                Err(status::internal_task_failure())
            }
            Ok(Ok(Err(err))) => {
                let status = to_status(err);
                tracing::debug!(op, reason = ?status::reason_of(&status), "refused");
                Err(status)
            }
            Ok(Ok(Ok(value))) => {
                tracing::debug!(op, "ok");
                Ok(Response::new(value))
            }
        }
    }

    /// The store this service serves.
    pub(crate) fn hsm(&self) -> &Arc<Hsm> {
        &self.hsm
    }
}

/// Message type, defaulting to RAW as in KMS.
pub(crate) fn message_type(value: Option<&str>) -> core::Result<core::MessageType> {
    Ok(opt(value, core::MessageType::parse)?.unwrap_or(core::MessageType::Raw))
}
