//! Raw gRPC calls: message bytes sent and received untouched, for tests
//! that send what no generated client would (undecodable messages,
//! unknown methods, dynamic messages built from reflection).

use bytes::{Buf, BufMut};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::Status;
use tonic_types::StatusExt;

/// A codec passing message bytes through untouched.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut bytes = vec![0; src.remaining()];
        src.copy_to_slice(&mut bytes);
        Ok(Some(bytes))
    }
}

/// A unary call of `path` (`/package.Service/Method`) with `body` as the
/// request message's bytes.
pub async fn call(channel: &Channel, path: &str, body: Vec<u8>) -> Result<Vec<u8>, Status> {
    call_with(channel, path, tonic::Request::new(body)).await
}

/// [`call`] with a prepared request (to set metadata).
pub async fn call_with(
    channel: &Channel,
    path: &str,
    request: tonic::Request<Vec<u8>>,
) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("ready");
    grpc.unary(request, path.parse().expect("a gRPC path"), RawCodec)
        .await
        .map(tonic::Response::into_inner)
}

/// A bidirectional-streaming call of `path` sending `messages`; the
/// answers up to the end of the stream, or the status it ended with.
pub async fn stream(
    channel: &Channel,
    path: &str,
    messages: Vec<Vec<u8>>,
) -> Result<Vec<Vec<u8>>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("ready");
    let outbound = tokio_stream::iter(messages);
    let mut inbound = grpc
        .streaming(
            tonic::Request::new(outbound),
            path.parse().expect("a gRPC path"),
            RawCodec,
        )
        .await?
        .into_inner();
    let mut answers = Vec::new();
    while let Some(answer) = inbound.message().await? {
        answers.push(answer);
    }
    Ok(answers)
}

/// The ErrorInfo reason of `status` ("" without one).
pub fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}
