//! The AWS KMS JSON 1.1 endpoint ("TrentService") over HTTP/1.1: what the
//! `aws` CLI, boto3, the AWS SDKs and the AWS Encryption SDK speak.
//!
//! `POST /` with `X-Amz-Target: TrentService.<Operation>` and a JSON body;
//! every request is SigV4-signed by an access key held in the sealed store.
//! The endpoint only translates: [`sigv4`] rebuilds what the client signed
//! and hsm-core checks the signature; [`routes`] turns the JSON into a call
//! through the gate (`hsm.gate(&caller)`), run on the daemon's crypto pool
//! under the same in-flight limit and per-call deadline as gRPC
//! ([`KmsService`]); [`errors`] is the one mapping to AWS error bodies.
//!
//! Bounds: bodies up to [`body_limit`] bytes, headers within hyper's 100
//! and [`MAX_HEADER_BYTES`], the header and body reads each within the
//! read timeout, at most [`MAX_CONNECTIONS`] connections; a client that
//! sends half a request and stalls, or stops reading its answers, is
//! dropped when the read timeout passes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

use crate::config::{Settings, TlsFiles};
use crate::service::{KmsService, Lane};
use crate::DaemonError;

pub mod errors;
#[doc(hidden)]
pub mod fuzzing;
mod routes;
pub mod shapes;
pub mod sigv4;
mod stall;

use errors::ApiError;

/// The content type of every request and answer.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// The smallest body limit: every legal KMS request fits (a 4096-byte
/// plaintext is about 5.5 KB of JSON; a 6144-byte ciphertext about 8.2 KB
/// plus a context).
pub const MIN_BODY_LIMIT: usize = 64 * 1024;
/// The most bytes of request line and headers read before answering 431.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 1024;

/// The body limit for a daemon whose gRPC message limit is `max_message_bytes`.
pub fn body_limit(max_message_bytes: usize) -> usize {
    max_message_bytes.max(MIN_BODY_LIMIT)
}

/// The endpoint's settings.
#[derive(Debug, Clone)]
pub struct EndpointSettings {
    /// The region SigV4 scopes must name.
    pub region: String,
    /// The largest clock skew of X-Amz-Date, seconds.
    pub max_skew_secs: i64,
    /// The largest request body, bytes.
    pub max_body_bytes: usize,
    /// How long the headers, and then the body, of a request may take.
    pub read_timeout: Duration,
}

impl EndpointSettings {
    /// The endpoint settings of the daemon's settings.
    pub fn from_settings(settings: &Settings) -> EndpointSettings {
        EndpointSettings {
            region: settings.region.clone(),
            max_skew_secs: settings.sigv4_max_skew.as_secs() as i64,
            max_body_bytes: body_limit(settings.max_message_bytes),
            read_timeout: settings.kms_read_timeout,
        }
    }
}

/// A bound KMS listener (bound before the runtime starts, so `--dev` can
/// print its port), with its TLS configuration when it has one.
pub struct KmsListener {
    listener: std::net::TcpListener,
    tls: Option<TlsAcceptor>,
}

impl std::fmt::Debug for KmsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsListener")
            .field("addr", &self.listener.local_addr().ok())
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl KmsListener {
    /// Binds `addr`; with `tls`, connections are TLS (client certificates
    /// required when `tls.client_ca` is set, as for gRPC).
    pub fn bind(addr: SocketAddr, tls: Option<&TlsFiles>) -> Result<KmsListener, DaemonError> {
        let tls = tls.map(tls_acceptor).transpose()?;
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| DaemonError::io(format!("binding the KMS endpoint on {addr}"), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| DaemonError::io("configuring the KMS listener", e))?;
        Ok(KmsListener { listener, tls })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, DaemonError> {
        self.listener
            .local_addr()
            .map_err(|e| DaemonError::io("reading the KMS listener's address", e))
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
}

fn tls_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, DaemonError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
        DaemonError::Config(format!("{what} {}: {e}", path.display()))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect())
        .map_err(|e| bad("TLS certificate", &files.cert, &e))?;
    let key =
        PrivateKeyDer::from_pem_file(&files.key).map_err(|e| bad("TLS key", &files.key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| DaemonError::Config(format!("TLS: {e}")))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in
                CertificateDer::pem_file_iter(ca).map_err(|e| bad("TLS client CA", ca, &e))?
            {
                roots
                    .add(cert.map_err(|e| bad("TLS client CA", ca, &e))?)
                    .map_err(|e| bad("TLS client CA", ca, &e))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| bad("TLS client CA", ca, &e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| DaemonError::Config(format!("TLS certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

struct Endpoint {
    service: KmsService,
    settings: EndpointSettings,
}

/// Serves the KMS endpoint on `listener` until `stop` turns true, then
/// stops accepting and lets open requests finish (bounded by the read
/// timeout plus the per-call deadline).
pub async fn serve(
    listener: KmsListener,
    service: KmsService,
    settings: EndpointSettings,
    grace: Duration,
    mut stop: watch::Receiver<bool>,
) -> Result<(), DaemonError> {
    let KmsListener { listener, tls } = listener;
    let listener = tokio::net::TcpListener::from_std(listener)
        .map_err(|e| DaemonError::io("registering the KMS listener", e))?;
    let endpoint = Arc::new(Endpoint { service, settings });
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = stopped(&mut stop) => break,
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "KMS endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let endpoint = Arc::clone(&endpoint);
        let tls = tls.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            let _permit = permit;
            let read_timeout = endpoint.settings.read_timeout;
            match tls {
                None => connection(stream, peer, endpoint, stop).await,
                Some(acceptor) => {
                    match tokio::time::timeout(read_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => connection(stream, peer, endpoint, stop).await,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "KMS endpoint: TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "KMS endpoint: TLS handshake timed out"),
                    }
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drain).await.is_err() {
        tracing::warn!("KMS endpoint: connections still open after the grace period; closing them");
        connections.abort_all();
    }
    Ok(())
}

/// Completes once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Serves one connection's requests, one at a time (HTTP/1.1 keep-alive).
async fn connection<S>(
    stream: S,
    peer: SocketAddr,
    endpoint: Arc<Endpoint>,
    mut stop: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let read_timeout = endpoint.settings.read_timeout;
    let service = hyper::service::service_fn(move |request| {
        let endpoint = Arc::clone(&endpoint);
        async move { Ok::<_, Infallible>(handle(request, &endpoint, peer).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Some(read_timeout))
        .max_buf_size(MAX_HEADER_BYTES);
    let stream = stall::WriteStall::new(stream, read_timeout);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "KMS endpoint: connection ended");
            }
        }
        _ = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Answers one request: never fails, every answer has a request id.
/// A copy of a request body that is wiped on drop; the body itself is
/// wiped too when this code holds its only reference (several frames
/// collected into a new buffer). A body still sharing hyper's read buffer
/// is hyper's (see the README's memory section).
fn owned_wiping(body: Bytes) -> zeroize::Zeroizing<Vec<u8>> {
    let copy = zeroize::Zeroizing::new(body.to_vec());
    if let Ok(mut unique) = body.try_into_mut() {
        zeroize::Zeroize::zeroize(unique.as_mut());
    }
    copy
}

/// A `Write` into a buffer that wipes every buffer it outgrows.
struct WipingWriter(zeroize::Zeroizing<Vec<u8>>);

impl std::io::Write for WipingWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        tinfoil_proto::wipe::append_wiping(&mut self.0, data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A response body (it may carry a plaintext or a data key, base64)
/// wiped when hyper drops its last reference to it.
fn wiped_on_drop(body: Vec<u8>) -> Bytes {
    Bytes::from_owner(zeroize::Zeroizing::new(body))
}

async fn handle(
    request: Request<Incoming>,
    endpoint: &Endpoint,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (status, body, close) = match answer(request, endpoint, peer).await {
        Ok((op, body)) => {
            tracing::debug!(op, %request_id, "KMS call ok");
            (StatusCode::OK, body, false)
        }
        Err(e) => {
            tracing::debug!(%request_id, kind = e.kind, status = %e.status, "KMS call refused");
            (e.status, e.body(), e.close)
        }
    };
    let mut response = Response::new(Full::new(wiped_on_drop(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE),
    );
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    if close {
        headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The request's source as the audit records it: the peer's IP address.
fn source_of(peer: SocketAddr) -> String {
    match peer {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    }
}

async fn answer(
    request: Request<Incoming>,
    endpoint: &Endpoint,
    peer: SocketAddr,
) -> Result<(&'static str, Vec<u8>), ApiError> {
    let (parts, body) = request.into_parts();
    if parts.method != Method::POST || parts.uri.path() != "/" {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            ..ApiError::unknown_operation(
                "the KMS endpoint answers POST / with an X-Amz-Target header",
            )
        });
    }
    let limit = endpoint.settings.max_body_bytes;
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    let body = match tokio::time::timeout(
        endpoint.settings.read_timeout,
        Limited::new(body, limit).collect(),
    )
    .await
    {
        Err(_) => {
            return Err(ApiError {
                status: StatusCode::REQUEST_TIMEOUT,
                close: true,
                ..ApiError::new(
                    "RequestTimeoutException",
                    "the request body did not arrive within the endpoint's read timeout",
                )
            })
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(ApiError::too_large(limit))
        }
        Ok(Err(_)) => {
            return Err(ApiError {
                close: true,
                ..ApiError::serialization("the request body could not be read")
            })
        }
        // Owned, so the request's base64 plaintext can be wiped once parsed.
        Ok(Ok(collected)) => owned_wiping(collected.to_bytes()),
    };
    let hsm = Arc::clone(endpoint.service.hsm());
    let payload = sigv4::sha256_hex(&body);
    let prepared = sigv4::prepare(
        &sigv4::RequestParts {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or_default(),
            headers: &parts.headers,
            payload_sha256: &payload,
        },
        &sigv4::Expect {
            region: &endpoint.settings.region,
            now: hsm.now(),
            max_skew_secs: endpoint.settings.max_skew_secs,
        },
    )?;
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    let routed = routes::route(target, &body);
    drop(body);
    let (lane, name) = match &routed {
        Ok(call) => (call.lane, call.name),
        Err(_) => (Lane::Fast, "KmsRefused"),
    };
    let user_agent = parts
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(256).collect::<String>());
    let source = source_of(peer);
    let job = move || -> Result<Result<Vec<u8>, ApiError>, Infallible> {
        Ok(run(&hsm, &prepared, source, user_agent, routed))
    };
    match endpoint
        .service
        .run_job(lane, name, job, |never: Infallible| match never {})
        .await
    {
        Err(status) => Err(ApiError::from(status)),
        Ok(response) => response.into_inner().map(|body| (name, body)),
    }
}

/// On the pool: the signature check, then the operation as the verified caller.
fn run(
    hsm: &hsm_core::Hsm,
    prepared: &sigv4::Prepared,
    source: String,
    user_agent: Option<String>,
    routed: Result<routes::Call, ApiError>,
) -> Result<Vec<u8>, ApiError> {
    let auth = &prepared.authorization;
    let principal = hsm.verify_sigv4(&hsm_core::SigV4Check {
        access_key_id: &auth.access_key_id,
        date: &auth.date,
        region: &auth.region,
        service: &auth.service,
        string_to_sign: &prepared.string_to_sign,
        signature_hex: &auth.signature,
    })?;
    let caller = hsm_core::Caller {
        principal,
        access_key_id: Some(auth.access_key_id.clone()),
        source,
        user_agent,
    };
    let call = routed?;
    let mut value = (call.job)(hsm, &caller)?;
    // Encoded into a buffer that wipes what it outgrows (`to_vec` would
    // free partial copies of a base64 plaintext as it grows).
    let mut out = WipingWriter(zeroize::Zeroizing::new(Vec::with_capacity(512)));
    let body = serde_json::to_writer(&mut out, &value)
        .map(|()| std::mem::take(&mut *out.0))
        .map_err(|e| ApiError::new("KMSInternalException", format!("encoding the answer: {e}")));
    // Wipe the plaintext members of the answer's tree; the encoded body
    // itself goes to the client (wiped once sent, see `wiped_on_drop`).
    for member in ["Plaintext", "PrivateKeyPlaintext"] {
        if let Some(serde_json::Value::String(text)) = value.get_mut(member) {
            zeroize::Zeroize::zeroize(text);
        }
    }
    body
}

#[cfg(test)]
mod wipe_tests {
    use super::*;

    #[test]
    fn bodies_keep_their_bytes_while_in_use() {
        let body = wiped_on_drop(br#"{"Plaintext":"c2VjcmV0"}"#.to_vec());
        assert_eq!(&body[..], br#"{"Plaintext":"c2VjcmV0"}"#);
        let shared = Bytes::from(b"shared".to_vec());
        let other = shared.clone();
        assert_eq!(&owned_wiping(shared)[..], b"shared");
        // Not unique: left as it is for its other holder.
        assert_eq!(&other[..], b"shared");
        assert_eq!(
            &owned_wiping(Bytes::from(b"unique".to_vec()))[..],
            b"unique"
        );
    }

    #[test]
    fn the_wiping_writer_encodes_like_to_vec() {
        let value = serde_json::json!({"Plaintext": "A".repeat(5000), "KeyId": "k"});
        let mut out = WipingWriter(zeroize::Zeroizing::new(Vec::with_capacity(512)));
        serde_json::to_writer(&mut out, &value).unwrap();
        assert_eq!(*out.0, serde_json::to_vec(&value).unwrap());
    }
}
