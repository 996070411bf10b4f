//! Reflection that says when a request does not decode.
//!
//! tonic-reflection's stream handler stops at the first request message
//! that fails to decode and ends the response stream with status OK and no
//! message, so a client sending garbage learns nothing. [`CheckedReflection`]
//! wraps the reflection service (v1 or v1alpha, whose request messages have
//! the same wire form): it follows the gRPC framing of the request body,
//! decodes each message as a `ServerReflectionRequest`, and when one does
//! not decode (or a frame is compressed, oversized or cut short) it turns
//! the stream's final OK into INVALID_ARGUMENT with ErrorInfo
//! ValidationException naming the problem, like every other undecodable
//! request to the daemon.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::Frame;
use prost::Message;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::server::NamedService;
use tonic_reflection::pb::v1::ServerReflectionRequest;

/// The largest reflection request message accepted (tonic's default
/// decoding limit, which the wrapped service applies too).
const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// The first decoding problem seen in a request stream, if any.
type Problem = Arc<Mutex<Option<String>>>;

/// A reflection service whose undecodable requests end the stream with
/// INVALID_ARGUMENT (see the module documentation).
#[derive(Debug, Clone)]
pub struct CheckedReflection<S> {
    inner: S,
}

impl<S> CheckedReflection<S> {
    /// Wraps `inner` (a `ServerReflectionServer`).
    pub fn new(inner: S) -> Self {
        CheckedReflection { inner }
    }
}

impl<S: NamedService> NamedService for CheckedReflection<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> tower::Service<http::Request<Body>> for CheckedReflection<S>
where
    S: tower::Service<
        http::Request<WatchedRequest>,
        Response = http::Response<Body>,
        Error = std::convert::Infallible,
    >,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = std::convert::Infallible;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let problem = Problem::default();
        let request = request.map(|body| WatchedRequest {
            inner: body,
            pending: BytesMut::new(),
            problem: Arc::clone(&problem),
        });
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            Ok(response.map(|body| {
                Body::new(CheckedResponse {
                    inner: body,
                    problem,
                })
            }))
        })
    }
}

/// A request body passed through unchanged while its gRPC messages are
/// checked to decode.
pub struct WatchedRequest {
    inner: Body,
    pending: BytesMut,
    problem: Problem,
}

impl WatchedRequest {
    fn record(&self, what: String) {
        let mut slot = self.problem.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(what);
    }

    /// Checks every complete message in `pending`.
    fn check_messages(&mut self) {
        while self.pending.len() >= 5 {
            let compressed = self.pending[0];
            let len = u32::from_be_bytes([
                self.pending[1],
                self.pending[2],
                self.pending[3],
                self.pending[4],
            ]) as usize;
            if compressed != 0 {
                self.record("a compressed (or badly flagged) reflection request".into());
                self.pending.clear();
                return;
            }
            if len > MAX_MESSAGE {
                self.record(format!(
                    "a reflection request of {len} bytes (the limit is {MAX_MESSAGE})"
                ));
                self.pending.clear();
                return;
            }
            if self.pending.len() < 5 + len {
                return;
            }
            self.pending.advance(5);
            let message = self.pending.split_to(len);
            if let Err(err) = ServerReflectionRequest::decode(message.freeze()) {
                self.record(format!("the request message does not decode: {err}"));
            }
        }
    }
}

impl hyper::body::Body for WatchedRequest {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if this.problem.lock().map(|p| p.is_none()).unwrap_or(false) {
                        this.pending.extend_from_slice(data);
                        this.check_messages();
                    }
                }
            }
            Poll::Ready(None) if !this.pending.is_empty() => {
                this.record("the request stream ends inside a message".into());
                this.pending.clear();
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// The response body, whose final OK becomes INVALID_ARGUMENT when the
/// request stream held a problem.
struct CheckedResponse {
    inner: Body,
    problem: Problem,
}

impl hyper::body::Body for CheckedResponse {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = &mut *self;
        Pin::new(&mut this.inner).poll_frame(cx).map(|frame| {
            frame.map(|frame| {
                frame.map(|mut frame| {
                    if let Some(trailers) = frame.trailers_mut() {
                        let ok = trailers.get("grpc-status").map(|v| v.as_bytes()) == Some(b"0");
                        let problem = this.problem.lock().ok().and_then(|p| p.clone());
                        if let (true, Some(problem)) = (ok, problem) {
                            let status = crate::status::with_reason(
                                tonic::Code::InvalidArgument,
                                "ValidationException",
                                problem,
                            );
                            let mut headers = http::HeaderMap::new();
                            if status.add_header(&mut headers).is_ok() {
                                trailers.remove("grpc-message");
                                for (name, value) in &headers {
                                    trailers.insert(name.clone(), value.clone());
                                }
                            }
                        }
                    }
                    frame
                })
            })
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
