//! Fast calls too large for one gRPC message (a 4 MiB C_Encrypt): sent
//! over tinfoild's `Chunked` RPC in parts well under its message limit
//! (64 KiB unless the operator changed it), the reply reassembled, so
//! nobody has to raise `max_message_bytes`. Smaller calls take the pipe or
//! a unary call as before.

use prost::Message;
use tinfoil_proto::v1 as pb;
use zeroize::{Zeroize, Zeroizing};

use super::{pipe, DaemonBackend, CALL_TIMEOUT, MAX_MESSAGE};
use crate::error::{ckr, Pkcs11Error, Result};
use tinfoil_proto::pkcs11_wire as wire;

/// The largest part sent, and the largest call sent in one message. Any
/// `max_message_bytes` of tinfoild from 17 KiB up accepts it.
pub(super) const PART: usize = 16 * 1024;

/// The call encoded, when it is too large for one message.
pub(super) fn too_large(call: &pipe::Call) -> bool {
    call.encoded_len() > PART
}

impl DaemonBackend {
    /// Makes `call` over the Chunked RPC.
    pub(super) fn chunked(&self, op: &'static str, call: pipe::Call) -> Result<pipe::Reply> {
        let client = self
            .client
            .clone()
            .ok_or_else(|| Pkcs11Error::General("not connected".into()))?;
        let mut message = pb::P11PipeCall {
            call: Some(call),
            audit: crate::audit::current_wire(),
        };
        let encoded = Zeroizing::new(message.encode_to_vec());
        // The call carries the data to encrypt or sign: wiped once encoded
        // (the parts are wiped by the codec once sent).
        message.zeroize();
        let count = encoded.len().div_ceil(PART);
        let parts: Vec<pb::P11Chunk> = encoded
            .chunks(PART)
            .enumerate()
            .map(|(i, data)| pb::P11Chunk {
                data: data.to_vec(),
                last: i + 1 == count,
            })
            .collect();
        let answer = self.on_runtime(async move {
            let mut client = client;
            let mut request = tonic::Request::new(tokio_stream::iter(parts));
            request.set_timeout(CALL_TIMEOUT);
            let mut replies = client.chunked(request).await?.into_inner();
            let mut reply = Zeroizing::new(Vec::new());
            while let Some(part) = replies.message().await? {
                let mut part = Zeroizing::new(part);
                if reply.len() + part.data.len() > MAX_MESSAGE {
                    return Err(tonic::Status::out_of_range(
                        "the chunked reply is too large",
                    ));
                }
                tinfoil_proto::wipe::append_wiping(&mut reply, &part.data);
                part.data.zeroize();
                if part.last {
                    return Ok(Some(reply));
                }
            }
            Ok(None)
        })?;
        let reply = match answer {
            Ok(Some(reply)) => reply,
            Ok(None) => return Err(ckr!(CKR_DEVICE_ERROR, "tinfoild's reply ended early")),
            Err(status) => return Err(self.status_error(op, &status)),
        };
        let reply = pb::P11PipeReply::decode(reply.as_slice()).map_err(|_| {
            ckr!(
                CKR_DEVICE_ERROR,
                "tinfoild sent a reply that does not decode"
            )
        })?;
        match reply.reply {
            Some(pipe::Reply::Error(error)) => {
                Err(self.status_error(op, &wire::status_of_pipe_error(error)))
            }
            Some(other) => Ok(other),
            None => Err(ckr!(CKR_DEVICE_ERROR, "tinfoild sent an empty reply")),
        }
    }
}
