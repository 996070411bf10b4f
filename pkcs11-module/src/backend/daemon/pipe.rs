//! The client end of tinfoild's `Pipe`: the fast calls (AES, signatures,
//! HMAC, random) as messages on one long-lived HTTP/2 stream, which saves
//! the per-call stream set-up, headers and trailers of a unary call.
//!
//! One thread at a time uses the pipe (it is taken out of its [`Slot`] for
//! the call); a thread that finds it taken makes the unary call instead,
//! so concurrency behaves as before. A pipe that broke (tinfoild
//! restarted, a message over its limit) is dropped, the call is made again
//! as a unary call, and the next call opens a new pipe.

use std::time::Duration;

use tinfoil_proto::v1 as pb;
use tinfoil_proto::v1::pkcs11_backend_client::Pkcs11BackendClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

/// The call a pipe carries.
pub(super) use pb::p11_pipe_call::Call;
/// The answer it brings back.
pub(super) use pb::p11_pipe_reply::Reply;

/// Where the pipe is.
pub(super) enum Slot {
    /// Open and free for the next call.
    Free(Box<Pipe>),
    /// A thread is using it.
    InUse,
    /// It broke: the next call that finds it so opens a new one.
    Broken,
    /// tinfoild has no pipe (an older daemon): every call is unary.
    Absent,
}

/// An open pipe: calls go out on `calls`, replies come back in order.
pub(super) struct Pipe {
    calls: mpsc::Sender<pb::P11PipeCall>,
    replies: tonic::Streaming<pb::P11PipeReply>,
}

/// Why a pipe call did not get its reply: the pipe is dropped and the call
/// made again as a unary call (every pipe call leaves the store as it was).
#[derive(Debug)]
pub(super) struct Broken;

impl Pipe {
    /// Opens the pipe (on the module's runtime).
    pub(super) async fn open(
        mut client: Pkcs11BackendClient<Channel>,
        timeout: Duration,
    ) -> Option<Pipe> {
        let (calls, outbound) = mpsc::channel(1);
        let mut request = tonic::Request::new(ReceiverStream::new(outbound));
        request.set_timeout(timeout);
        let opened = tokio::time::timeout(timeout, client.pipe(request)).await;
        let replies = opened.ok()?.ok()?.into_inner();
        Some(Pipe { calls, replies })
    }

    /// Sends `call` and waits up to `timeout` for its reply.
    pub(super) async fn call(
        &mut self,
        call: Call,
        audit: Option<pb::P11CallInfo>,
        timeout: Duration,
    ) -> Result<Reply, Broken> {
        let call = pb::P11PipeCall {
            call: Some(call),
            audit,
        };
        self.calls.send(call).await.map_err(|_| Broken)?;
        let reply = tokio::time::timeout(timeout, self.replies.message()).await;
        match reply {
            Ok(Ok(Some(pb::P11PipeReply { reply: Some(reply) }))) => Ok(reply),
            _ => Err(Broken),
        }
    }
}
