//! The daemon backend's calls: unary RPCs on the module's runtime, the
//! fast calls over the pipe when it is free, and the one mapping of a
//! daemon's status to the module's error.

use std::future::Future;

use cryptoki_sys::*;
use tinfoil_proto::v1 as pb;
use tinfoil_proto::v1::pkcs11_backend_client::Pkcs11BackendClient;
use tonic::transport::Channel;

use super::{pipe, DaemonBackend, CALL_TIMEOUT};
use crate::error::{ckr, Pkcs11Error, Result};
use tinfoil_proto::pkcs11_wire::{self as wire, error_from_status};

impl DaemonBackend {
    /// Runs `fut` on the module's runtime and waits for it on this thread.
    pub(super) fn on_runtime<T, F>(&self, fut: F) -> Result<T>
    where
        F: Future<Output = T> + Send,
        T: Send,
    {
        self.rpc.run(fut)
    }

    /// One unary call: `call` gets a client clone and the request.
    pub(super) fn call<Req, Resp, F, Fut>(
        &self,
        op: &'static str,
        request: Req,
        call: F,
    ) -> Result<Resp>
    where
        Req: Send + 'static,
        Resp: Send + 'static,
        F: FnOnce(Pkcs11BackendClient<Channel>, tonic::Request<Req>) -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<tonic::Response<Resp>, tonic::Status>> + Send,
    {
        let client = self
            .client
            .clone()
            .ok_or_else(|| Pkcs11Error::General("not connected".into()))?;
        let mut request = tonic::Request::new(request);
        request.set_timeout(CALL_TIMEOUT);
        if let Some(info) = crate::audit::current() {
            let metadata = request.metadata_mut();
            if let Ok(function) = info.function.parse() {
                metadata.insert(crate::audit::FUNCTION_METADATA, function);
            }
            if let Some(Ok(mechanism)) = info.mechanism.map(|m| m.to_string().parse()) {
                metadata.insert(crate::audit::MECHANISM_METADATA, mechanism);
            }
        }
        let answer = self.on_runtime(async move { call(client, request).await })?;
        answer
            .map(tonic::Response::into_inner)
            .map_err(|status| self.status_error(op, &status))
    }

    /// The module's error for a daemon's status; device and general errors
    /// are also printed, since the application only sees the code.
    pub(super) fn status_error(&self, op: &'static str, status: &tonic::Status) -> Pkcs11Error {
        let err = error_from_status(status);
        if matches!(
            err.rv(),
            CKR_DEVICE_ERROR | CKR_DEVICE_MEMORY | CKR_GENERAL_ERROR
        ) {
            eprintln!(
                "libtinfoil_pkcs11: {op} via {}: {} ({:?})",
                self.endpoint,
                status.message().chars().take(200).collect::<String>(),
                status.code()
            );
        }
        err
    }

    /// One fast call over the pipe when it is free (or broke and opens
    /// again): `None` tells the caller to make the unary call (another
    /// thread has the pipe, the daemon has none, or it broke just now).
    pub(super) fn via_pipe(
        &self,
        op: &'static str,
        call: pipe::Call,
    ) -> Option<Result<pipe::Reply>> {
        let taken = {
            let mut slot = lock_pipe(&self.pipe);
            match std::mem::replace(&mut *slot, pipe::Slot::InUse) {
                pipe::Slot::Free(open) => Some(*open),
                pipe::Slot::Broken => None,
                other => {
                    *slot = other;
                    return None;
                }
            }
        };
        let client = self.client.clone();
        let audit = crate::audit::current_wire();
        let outcome = self.on_runtime(async move {
            let mut open = match (taken, client) {
                (Some(open), _) => open,
                (None, Some(client)) => pipe::Pipe::open(client, CALL_TIMEOUT)
                    .await
                    .ok_or(pipe::Broken)?,
                (None, None) => return Err(pipe::Broken),
            };
            let reply = open.call(call, audit, CALL_TIMEOUT).await?;
            Ok((open, reply))
        });
        let mut slot = lock_pipe(&self.pipe);
        let Ok(Ok((open, reply))) = outcome else {
            *slot = pipe::Slot::Broken;
            return None;
        };
        *slot = pipe::Slot::Free(Box::new(open));
        drop(slot);
        Some(match reply {
            pipe::Reply::Error(error) => {
                Err(self.status_error(op, &wire::status_of_pipe_error(error)))
            }
            other => Ok(other),
        })
    }

    /// A fast call answered with bytes: over the pipe, else unary (too
    /// large for one message: in parts, see `chunked`).
    pub(super) fn bytes_call(
        &self,
        op: &'static str,
        call: pipe::Call,
        unary: impl FnOnce() -> Result<pb::P11BytesResponse>,
    ) -> Result<pb::P11BytesResponse> {
        let routed = if super::chunked::too_large(&call) {
            Some(self.chunked(op, call))
        } else {
            self.via_pipe(op, call)
        };
        match routed {
            Some(Ok(pipe::Reply::Bytes(answer))) => Ok(answer),
            Some(Ok(_)) => Err(ckr!(CKR_DEVICE_ERROR, "tinfoild sent a wrong reply")),
            Some(Err(err)) => Err(err),
            None => unary(),
        }
    }

    /// A fast call answered yes or no: over the pipe, else unary (too
    /// large for one message: in parts, see `chunked`).
    pub(super) fn bool_call(
        &self,
        op: &'static str,
        call: pipe::Call,
        unary: impl FnOnce() -> Result<pb::P11BoolResponse>,
    ) -> Result<pb::P11BoolResponse> {
        let routed = if super::chunked::too_large(&call) {
            Some(self.chunked(op, call))
        } else {
            self.via_pipe(op, call)
        };
        match routed {
            Some(Ok(pipe::Reply::Ok(answer))) => Ok(answer),
            Some(Ok(_)) => Err(ckr!(CKR_DEVICE_ERROR, "tinfoild sent a wrong reply")),
            Some(Err(err)) => Err(err),
            None => unary(),
        }
    }
}

/// The pipe's slot; a thread that panicked while holding the lock left
/// nothing half-done in it (an `Option` swap).
pub(super) fn lock_pipe(
    slot: &std::sync::Mutex<pipe::Slot>,
) -> std::sync::MutexGuard<'_, pipe::Slot> {
    slot.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
