//! Serving: the KeyManagement and Pkcs11Backend services with health and reflection, on a Unix
//! socket (mode 0600) or TCP (TLS, or plain on loopback when explicitly
//! allowed), with request limits, background ticks and graceful shutdown.

use std::future::Future;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hsm_core::Hsm;
use tinfoil_proto::v1::key_management_server::KeyManagementServer;
use tinfoil_proto::v1::pkcs11_backend_server::Pkcs11BackendServer;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::codegen::http;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::config::{Listen, Settings};
use crate::connection::{track, PerConnection};
use crate::kms_api::{EndpointSettings, KmsListener};
use crate::pkcs11_service::{ClientConnections, Pkcs11Service};
use crate::pool::CryptoPool;
use crate::reflection::CheckedReflection;
use crate::service::{CallLimits, KmsService};
use crate::DaemonError;

/// The largest response the daemon sends (list pages of 1000 entries fit).
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// The status headers of an oversized request: tonic refuses one with
/// OUT_OF_RANGE (and no details); gRPC's convention, and the contract, is
/// RESOURCE_EXHAUSTED with the ErrorInfo every tinfoil error carries.
fn oversize_headers(max_message_bytes: usize) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    let status = crate::status::with_reason(
        tonic::Code::ResourceExhausted,
        "LimitExceededException",
        format!("the request is larger than the daemon's limit of {max_message_bytes} bytes"),
    );
    if status.add_header(&mut headers).is_err() {
        // Unreachable in practice (the message is ASCII); the code alone still applies.
        headers.insert("grpc-status", http::HeaderValue::from_static("8"));
    }
    headers
}

/// The prefix of prost's decode errors, which tonic answers as INTERNAL.
const DECODE_ERROR_PREFIX: &str = "failed to decode Protobuf message: ";

/// The status headers for a request message that does not decode (invalid
/// UTF-8 in a string, a truncated varint, a wrong wire type, random
/// bytes): INVALID_ARGUMENT with ValidationException, naming the message
/// and field when prost says which (`EncryptRequest.key_id: ...`). tonic
/// answers these INTERNAL, which clients take for a server fault and retry.
fn decode_error_headers(internal: &http::HeaderMap) -> Option<http::HeaderMap> {
    let status = tonic::Status::from_header_map(internal)?;
    let detail = status.message().strip_prefix(DECODE_ERROR_PREFIX)?;
    let mut headers = http::HeaderMap::new();
    crate::status::with_reason(
        tonic::Code::InvalidArgument,
        "ValidationException",
        format!("the request message does not decode: {detail}"),
    )
    .add_header(&mut headers)
    .ok()?;
    Some(headers)
}

/// The status headers for UNIMPLEMENTED made by tonic (an unknown method
/// or service, a compressed request: gzip is not offered): the same code,
/// which gRPC prescribes for both, with the ErrorInfo every tinfoil status
/// carries (reason UnsupportedOperationException) and tonic's message.
/// A status that already has details (one of ours) is left alone.
fn unimplemented_headers(headers: &http::HeaderMap) -> Option<http::HeaderMap> {
    if headers.contains_key("grpc-status-details-bin") {
        return None;
    }
    let status = tonic::Status::from_header_map(headers)?;
    let message = match status.message() {
        "" => "this method is not offered by tinfoild (see reflection for the methods)",
        message => message,
    };
    let mut replacement = http::HeaderMap::new();
    crate::status::with_reason(
        tonic::Code::Unimplemented,
        "UnsupportedOperationException",
        message,
    )
    .add_header(&mut replacement)
    .ok()?;
    Some(replacement)
}

/// Replaces the status in `headers` (response headers or trailers) when
/// it is one tonic made before a handler ran: OUT_OF_RANGE (oversize),
/// INTERNAL with a decode error's message, or UNIMPLEMENTED without details.
fn rewrite_status(headers: &mut http::HeaderMap, oversize: &http::HeaderMap) {
    let replacement = match headers.get("grpc-status").map(|v| v.as_bytes()) {
        Some(b"11") => Some(oversize.clone()),
        Some(b"12") => unimplemented_headers(headers),
        Some(b"13") => decode_error_headers(headers),
        _ => None,
    };
    if let Some(replacement) = replacement {
        for name in ["grpc-message", "grpc-status-details-bin"] {
            headers.remove(name);
        }
        for (name, value) in &replacement {
            headers.insert(name.clone(), value.clone());
        }
    }
}

/// A response body whose trailers go through [`rewrite_status`]: a
/// message that fails to decode in the middle of a stream (the PKCS#11
/// pipe) ends the stream with its status in the trailers.
pub struct RewriteTrailers<B> {
    inner: B,
    oversize: Arc<http::HeaderMap>,
}

impl<B> tonic::codegen::Body for RewriteTrailers<B>
where
    B: tonic::codegen::Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = std::pin::Pin::new(&mut this.inner).poll_frame(cx);
        polled.map(|frame| {
            frame.map(|frame| {
                frame.map(|mut frame| {
                    if let Some(trailers) = frame.trailers_mut() {
                        rewrite_status(trailers, &this.oversize);
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

/// Rewrites the statuses tonic makes before a handler runs (it never
/// returns OUT_OF_RANGE, nor INTERNAL with a decode error's message):
/// an oversized request becomes RESOURCE_EXHAUSTED (LimitExceededException),
/// an undecodable one INVALID_ARGUMENT (ValidationException), and an
/// unknown method or compressed request keeps UNIMPLEMENTED but gains an
/// ErrorInfo (UnsupportedOperationException). Unary calls
/// get them as the status headers of a trailers-only response; a stream
/// whose later message fails to decode gets them in its trailers.
fn status_rewriter<B>(
    max_message_bytes: usize,
) -> impl Fn(http::Response<B>) -> http::Response<RewriteTrailers<B>> + Clone {
    let oversize = Arc::new(oversize_headers(max_message_bytes));
    move |mut response: http::Response<B>| {
        rewrite_status(response.headers_mut(), &oversize);
        let oversize = Arc::clone(&oversize);
        response.map(|inner| RewriteTrailers { inner, oversize })
    }
}

/// Applies due rotations and deletions now, off the async runtime.
pub async fn tick_once(hsm: &Arc<Hsm>) {
    let hsm = Arc::clone(hsm);
    let result = tokio::task::spawn_blocking(move || {
        let now = hsm.now();
        hsm.tick(now)
    })
    .await;
    match result {
        Ok(Ok(report)) => {
            for key_id in &report.destroyed {
                tracing::info!(%key_id, "key destroyed: its deletion date passed");
            }
            for key_id in &report.rotated {
                tracing::info!(%key_id, "key rotated by its schedule");
            }
        }
        Ok(Err(err)) => tracing::warn!(reason = err.kms_name(), error = %err, "tick failed"),
        Err(_) => tracing::error!("tick task failed"),
    }
}

/// Ticks at start-up and then every `every`, forever.
async fn tick_loop(hsm: Arc<Hsm>, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        tick_once(&hsm).await;
    }
}

/// Binds a Unix socket at `path`: a stale socket file is replaced, a live
/// one (another daemon) is an error; the socket is made 0600. The socket's
/// directory must exist (it is never created: a typo in `--listen` must
/// not make directories with default permissions).
pub fn bind_unix(path: &Path) -> Result<UnixListener, DaemonError> {
    bind_unix_for(path, None)
}

/// Binds a Unix socket as [`bind_unix`] does; with `group`, the socket is
/// 0660 and belongs to that group, so its members can connect.
pub fn bind_unix_for(path: &Path, group: Option<u32>) -> Result<UnixListener, DaemonError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            return Err(DaemonError::Config(format!(
                "listen: the socket's directory {} does not exist or is not a directory; \
                 create it first (mode 0700): tinfoild does not create it",
                parent.display()
            )));
        }
        if let Ok(meta) = std::fs::metadata(parent) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    dir = %parent.display(),
                    "the socket's directory is accessible to group or others; prefer 0700"
                );
            }
        }
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(DaemonError::Config(format!(
                "{} exists and is not a socket",
                path.display()
            )));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(DaemonError::Config(format!(
                "another daemon is listening on {}",
                path.display()
            )));
        }
        std::fs::remove_file(path)
            .map_err(|e| DaemonError::io(format!("removing stale {}", path.display()), e))?;
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| DaemonError::io(format!("binding {}", path.display()), e))?;
    let mode = if let Some(gid) = group {
        std::os::unix::fs::chown(path, None, Some(gid))
            .map_err(|e| DaemonError::io(format!("chgrp {gid} {}", path.display()), e))?;
        0o660
    } else {
        0o600
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| DaemonError::io(format!("chmod {}", path.display()), e))?;
    Ok(listener)
}

fn read_pem(path: &Path) -> Result<Vec<u8>, DaemonError> {
    std::fs::read(path).map_err(|e| DaemonError::io(format!("reading {}", path.display()), e))
}

/// Serves `hsm` with `settings` until `shutdown` completes, then stops
/// accepting, lets in-flight calls finish and returns. The KMS endpoint
/// listens too when `settings.kms_listen` is set.
pub async fn serve(
    hsm: Arc<Hsm>,
    settings: &Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    crate::install_crypto_provider();
    let kms = match settings.kms_listen {
        Some(addr) => Some(KmsListener::bind(addr, settings.tls.as_ref())?),
        None => None,
    };
    serve_with_kms(hsm, settings, kms, shutdown).await
}

/// [`serve`] with an already bound KMS listener (`tinfoild --dev` binds
/// a free port first to print it).
pub async fn serve_with_kms(
    hsm: Arc<Hsm>,
    settings: &Settings,
    kms_listener: Option<KmsListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    crate::install_crypto_provider();
    let listen = settings.listen()?;
    let limits = CallLimits {
        max_in_flight: settings.max_in_flight,
        call_timeout: settings.call_timeout,
        busy_poll: settings.busy_poll,
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    let pool = Arc::new(
        CryptoPool::new(threads).map_err(|e| DaemonError::io("starting the crypto pool", e))?,
    );
    let kms_service = KmsService::new(Arc::clone(&hsm), limits, pool)
        .with_anonymous_uids(settings.socket_anonymous_uids)
        .with_admin_certificates(settings.tls_admin_cert_fingerprints.clone());
    // PKCS#11 session keys live per client connection (crate::connection).
    let connections: Arc<ClientConnections> = Arc::default();
    let pkcs11 = Pkcs11BackendServer::new(Pkcs11Service::with_connections(
        kms_service.clone(),
        Arc::clone(&connections),
    ))
    .max_decoding_message_size(settings.max_message_bytes)
    .max_encoding_message_size(MAX_RESPONSE_BYTES.max(settings.max_message_bytes));
    let (kms_stop, kms_stopped) = tokio::sync::watch::channel(false);
    let kms_endpoint = kms_listener.map(|listener| {
        if let Ok(addr) = listener.local_addr() {
            let tls = listener.is_tls();
            tracing::info!(endpoint = %format!("tcp:{addr}"), tls, "KMS endpoint listening");
        }
        tokio::spawn(crate::kms_api::serve(
            listener,
            kms_service.clone(),
            EndpointSettings::from_settings(settings),
            settings.kms_read_timeout + settings.call_timeout,
            kms_stopped,
        ))
    });
    let kms = KeyManagementServer::new(kms_service)
        .max_decoding_message_size(settings.max_message_bytes)
        .max_encoding_message_size(MAX_RESPONSE_BYTES.max(settings.max_message_bytes));

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<KeyManagementServer<KmsService>>()
        .await;
    health
        .set_serving::<Pkcs11BackendServer<Pkcs11Service>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tinfoil_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| DaemonError::Config(format!("reflection: {e}")))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tinfoil_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| DaemonError::Config(format!("reflection: {e}")))?;

    let mut builder = Server::builder()
        .max_concurrent_streams(settings.max_concurrent_streams)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)));
    if let (Listen::Tcp(_), Some(tls)) = (listen, &settings.tls) {
        let mut config = ServerTlsConfig::new().identity(Identity::from_pem(
            read_pem(&tls.cert)?,
            read_pem(&tls.key)?,
        ));
        if let Some(ca) = &tls.client_ca {
            config = config.client_ca_root(Certificate::from_pem(read_pem(ca)?));
        }
        builder = builder.tls_config(config)?;
    }
    let router = builder
        .layer(tower::util::MapResponseLayer::new(status_rewriter(
            settings.max_message_bytes,
        )))
        .add_service(health_service)
        .add_service(CheckedReflection::new(reflection_v1))
        .add_service(CheckedReflection::new(reflection_v1alpha))
        .add_service(kms)
        .add_service(PerConnection::new(pkcs11));

    let ticker = tokio::spawn(tick_loop(Arc::clone(&hsm), settings.tick_interval));
    let stop = {
        let health = health.clone();
        async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight calls");
            let _ = kms_stop.send(true);
            health
                .set_not_serving::<KeyManagementServer<KmsService>>()
                .await;
            health
                .set_not_serving::<Pkcs11BackendServer<Pkcs11Service>>()
                .await;
        }
    };
    let result = match listen {
        Listen::Unix(path) => {
            let listener = bind_unix_for(path, settings.socket_group)?;
            tracing::info!(endpoint = %format!("unix:{}", path.display()), "listening");
            let served = router
                .serve_with_incoming_shutdown(
                    track(UnixListenerStream::new(listener), connections),
                    stop,
                )
                .await;
            let _ = std::fs::remove_file(path);
            served
        }
        Listen::Tcp(addr) => {
            let tls = settings.tls.is_some();
            tracing::info!(endpoint = %format!("tcp:{addr}"), tls, "listening");
            router.serve_with_shutdown(*addr, stop).await
        }
    };
    ticker.abort();
    if let Some(task) = kms_endpoint {
        match task.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "KMS endpoint failed"),
            Err(_) => tracing::error!("KMS endpoint task failed"),
            Ok(Ok(())) => {}
        }
    }
    result.map_err(DaemonError::from)
}

/// Completes on SIGTERM or SIGINT.
pub async fn termination_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}
