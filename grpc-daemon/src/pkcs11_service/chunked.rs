//! `Chunked`: a fast call too large for one gRPC message (a 4 MiB
//! C_Encrypt with the default 64 KiB limit). The module sends the encoded
//! [`pb::P11PipeCall`] in parts, each under the message limit; the call is
//! reassembled (bounded), answered by the pipe's dispatcher, so by the
//! unary handler of the same name (same checks, lanes, audit and session
//! keys), and the encoded reply goes back in parts. The daemon's message
//! limit stays what the operator set.

use std::pin::Pin;

use prost::Message;
use tinfoil_proto::v1 as pb;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use zeroize::{Zeroize, Zeroizing};

use super::Pkcs11Service;
use crate::connection::{ConnectionInfo, CONNECTION};

/// The largest call reassembled: the largest AES input plus framing.
pub const MAX_CHUNKED_CALL: usize = hsm_core::mechanisms::MAX_AES_INPUT + (1 << 20);
/// The size of each part of a reply (the module accepts far larger
/// messages; the daemon sends up to its response limit).
const REPLY_PART: usize = 1 << 20;

/// The stream of reply parts.
pub type ChunkedReplies = Pin<Box<dyn Stream<Item = Result<pb::P11Chunk, Status>> + Send>>;

/// Reads the parts of one call, up to the one marked last. Each part is
/// wiped once copied, and so is every buffer the call outgrows.
async fn reassemble(mut parts: Streaming<pb::P11Chunk>) -> Result<Zeroizing<Vec<u8>>, Status> {
    let mut call = Zeroizing::new(Vec::new());
    while let Some(part) = parts.next().await {
        let mut part = Zeroizing::new(part?);
        if call.len() + part.data.len() > MAX_CHUNKED_CALL {
            return Err(Status::out_of_range(format!(
                "a chunked call is limited to {MAX_CHUNKED_CALL} bytes"
            )));
        }
        tinfoil_proto::wipe::append_wiping(&mut call, &part.data);
        part.data.zeroize();
        if part.last {
            return Ok(call);
        }
    }
    Err(Status::invalid_argument(
        "the chunked call ended before its last part",
    ))
}

/// Splits an encoded reply into parts, the last one marked.
fn split(reply: &[u8]) -> Vec<Result<pb::P11Chunk, Status>> {
    let mut parts: Vec<_> = reply
        .chunks(REPLY_PART)
        .map(|data| {
            Ok(pb::P11Chunk {
                data: data.to_vec(),
                last: false,
            })
        })
        .collect();
    match parts.last_mut() {
        Some(Ok(last)) => last.last = true,
        _ => parts.push(Ok(pb::P11Chunk {
            data: Vec::new(),
            last: true,
        })),
    }
    parts
}

impl Pkcs11Service {
    /// The Chunked RPC: one reassembled call, answered in parts.
    pub(super) async fn chunked_call(
        &self,
        request: Request<Streaming<pb::P11Chunk>>,
    ) -> Result<Response<ChunkedReplies>, Status> {
        let connection = crate::connection::current();
        let peer: Option<ConnectionInfo> = request.extensions().get::<ConnectionInfo>().cloned();
        let mut encoded = reassemble(request.into_inner()).await?;
        let call = pb::P11PipeCall::decode(encoded.as_slice()).map_err(|e| {
            Status::invalid_argument(format!("a chunked call does not decode: {e}"))
        })?;
        // The copy in `encoded` holds data to encrypt or sign: wiped now.
        encoded.zeroize();
        let answer = self.pipe_call(call, peer.as_ref());
        let mut reply = match connection {
            Some(id) => CONNECTION.scope(id, answer).await,
            None => answer.await,
        };
        let encoded_reply = Zeroizing::new(reply.encode_to_vec());
        reply.zeroize();
        // The parts are wiped by the codec once encoded.
        Ok(Response::new(Box::pin(tokio_stream::iter(split(
            &encoded_reply,
        )))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_split_into_parts_the_last_marked() {
        let parts = split(&vec![7u8; REPLY_PART * 2 + 1]);
        let parts: Vec<_> = parts.into_iter().map(Result::unwrap).collect();
        assert_eq!(parts.len(), 3);
        assert!(parts[..2]
            .iter()
            .all(|p| !p.last && p.data.len() == REPLY_PART));
        assert!(parts[2].last && parts[2].data.len() == 1);
        let empty: Vec<_> = split(&[]).into_iter().map(Result::unwrap).collect();
        assert_eq!(empty.len(), 1);
        assert!(empty[0].last && empty[0].data.is_empty());
    }
}
