//! `Pipe`: the module's fast calls as messages on one long-lived stream.
//!
//! A unary gRPC call sets up an HTTP/2 stream, sends and parses headers
//! and trailers and, in tinfoild, spawns a task: some microseconds on each
//! side, a good part of a PKCS#11 AES-GCM call on 4 KiB. On the pipe each
//! call is one message each way. Every call is answered by the unary
//! handler of the same name (same lanes, limits, deadline and per-connection
//! session keys), and its error travels as the status that handler
//! returned, so the module maps it exactly as for a unary call.

use std::pin::Pin;

use tinfoil_proto::v1 as pb;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::Pkcs11Service;
use crate::connection::{ConnectionInfo, CONNECTION};
use tinfoil_proto::v1::pkcs11_backend_server::Pkcs11Backend;

/// The stream of replies.
pub type PipeReplies = Pin<Box<dyn Stream<Item = Result<pb::P11PipeReply, Status>> + Send>>;

/// The reply carrying a handler's status.
fn error_reply(status: Status) -> pb::P11PipeReply {
    pb::P11PipeReply {
        reply: Some(pb::p11_pipe_reply::Reply::Error(pb::P11PipeError {
            code: status.code() as i32,
            message: status.message().to_string(),
            details: status.details().to_vec(),
        })),
    }
}

fn bytes_reply(answer: Result<Response<pb::P11BytesResponse>, Status>) -> pb::P11PipeReply {
    match answer {
        Ok(response) => pb::P11PipeReply {
            reply: Some(pb::p11_pipe_reply::Reply::Bytes(response.into_inner())),
        },
        Err(status) => error_reply(status),
    }
}

fn bool_reply(answer: Result<Response<pb::P11BoolResponse>, Status>) -> pb::P11PipeReply {
    match answer {
        Ok(response) => pb::P11PipeReply {
            reply: Some(pb::p11_pipe_reply::Reply::Ok(response.into_inner())),
        },
        Err(status) => error_reply(status),
    }
}

/// A request carrying the pipe's connection, so the handler finds the
/// same caller as for a unary call on that connection, and the PKCS#11
/// call it serves as a unary call's metadata would (for its audit record).
fn with_peer<T>(
    message: T,
    peer: Option<&ConnectionInfo>,
    audit: Option<&pb::P11CallInfo>,
) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(info) = peer {
        request.extensions_mut().insert(info.clone());
    }
    if let Some(audit) = audit {
        let metadata = request.metadata_mut();
        if let Ok(function) = audit.function.parse() {
            metadata.insert(hsm_core::pkcs11::audit::FUNCTION_METADATA, function);
        }
        if let Some(Ok(mechanism)) = audit.mechanism.map(|m| m.to_string().parse()) {
            metadata.insert(hsm_core::pkcs11::audit::MECHANISM_METADATA, mechanism);
        }
    }
    request
}

impl Pkcs11Service {
    /// Answers one call with the unary handler of the same name.
    pub(super) async fn pipe_call(
        &self,
        call: pb::P11PipeCall,
        peer: Option<&ConnectionInfo>,
    ) -> pb::P11PipeReply {
        use pb::p11_pipe_call::Call;
        let audit = call.audit.as_ref();
        match call.call {
            Some(Call::Aes(r)) => bytes_reply(self.aes(with_peer(r, peer, audit)).await),
            Some(Call::Sign(r)) => bytes_reply(self.sign(with_peer(r, peer, audit)).await),
            Some(Call::Verify(r)) => bool_reply(self.verify(with_peer(r, peer, audit)).await),
            Some(Call::Hmac(r)) => bytes_reply(self.hmac(with_peer(r, peer, audit)).await),
            Some(Call::HmacVerify(r)) => {
                bool_reply(self.hmac_verify(with_peer(r, peer, audit)).await)
            }
            Some(Call::GenerateRandom(r)) => {
                bytes_reply(self.generate_random(with_peer(r, peer, audit)).await)
            }
            None => error_reply(Status::invalid_argument("an empty pipe call")),
        }
    }

    /// The Pipe RPC: replies to the calls in order, each in the context of
    /// the connection the pipe came over.
    pub(super) fn open_pipe(
        &self,
        request: Request<Streaming<pb::P11PipeCall>>,
    ) -> Result<Response<PipeReplies>, Status> {
        let connection = crate::connection::current();
        let peer = request.extensions().get::<ConnectionInfo>().cloned();
        let service = self.clone();
        let replies = request.into_inner().then(move |call| {
            let service = service.clone();
            let peer = peer.clone();
            async move {
                let call = call?;
                let answer = service.pipe_call(call, peer.as_ref());
                Ok(match connection {
                    Some(id) => CONNECTION.scope(id, answer).await,
                    None => answer.await,
                })
            }
        });
        Ok(Response::new(Box::pin(replies)))
    }
}
