//! Client connections on the Unix socket, so that state a client makes
//! over its connection (PKCS#11 session keys) ends with the connection:
//! when the application exits, crashes or calls C_Finalize, its socket
//! closes, hyper drops the connection's IO object, and its drop tells the
//! registry to forget the connection (dropping its session keys, which
//! wipes them).
//!
//! Each accepted stream is wrapped in a [`TrackedStream`] whose tonic
//! `connect_info` carries a [`ConnectionInfo`] (a unique id and the
//! peer's credentials); [`PerConnection`] reads it from each request of
//! the service it wraps and runs the handler with the id in the task-local
//! [`CONNECTION`].

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;
use tokio_stream::{Stream, StreamExt};
use tonic::server::NamedService;
use tonic::transport::server::Connected;

tokio::task_local! {
    /// The connection of the request being handled, when it came over a
    /// tracked connection.
    pub static CONNECTION: u64;
}

/// The connection of the request being handled, if it is tracked.
pub fn current() -> Option<u64> {
    CONNECTION.try_with(|id| *id).ok()
}

/// What a handler learns about its request's connection.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// Unique for the daemon's lifetime.
    pub id: u64,
    /// The peer's uid, gid and pid, when the OS reports them.
    pub peer: Option<tokio::net::unix::UCred>,
}

/// Per-connection state of type `T`, created on first use and dropped
/// when the connection closes.
pub struct Connections<T> {
    next: AtomicU64,
    /// Open connections; `None` until something was stored for one. Read
    /// on every request, written on connect, first use and close.
    open: RwLock<HashMap<u64, Option<Arc<T>>>>,
}

impl<T> Default for Connections<T> {
    fn default() -> Self {
        Connections {
            next: AtomicU64::new(1),
            open: RwLock::new(HashMap::new()),
        }
    }
}

impl<T> std::fmt::Debug for Connections<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("open", &self.count())
            .finish()
    }
}

impl<T> Connections<T> {
    fn table(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<u64, Option<Arc<T>>>> {
        self.open.write().unwrap_or_else(|p| p.into_inner())
    }

    fn opened(&self) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.table().insert(id, None);
        id
    }

    fn closed(&self, id: u64) {
        // Dropped outside the lock: dropping the state may take a while.
        let state = self.table().remove(&id);
        drop(state);
    }

    /// How many connections are open.
    pub fn count(&self) -> usize {
        self.open.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The state of open connection `id`, made by `make` on first use;
    /// `None` when the connection is closed (or unknown).
    pub fn state(&self, id: u64, make: impl FnOnce() -> T) -> Option<Arc<T>> {
        if let Some(Some(state)) = self.open.read().unwrap_or_else(|p| p.into_inner()).get(&id) {
            return Some(Arc::clone(state));
        }
        let mut table = self.table();
        let slot = table.get_mut(&id)?;
        Some(Arc::clone(slot.get_or_insert_with(|| Arc::new(make()))))
    }
}

/// An accepted Unix stream that tells its registry when it is dropped.
pub struct TrackedStream<T: Send + Sync + 'static> {
    inner: UnixStream,
    info: ConnectionInfo,
    registry: Arc<Connections<T>>,
}

impl<T: Send + Sync + 'static> Drop for TrackedStream<T> {
    fn drop(&mut self) {
        self.registry.closed(self.info.id);
    }
}

impl<T: Send + Sync + 'static> Connected for TrackedStream<T> {
    type ConnectInfo = ConnectionInfo;
    fn connect_info(&self) -> ConnectionInfo {
        self.info.clone()
    }
}

impl<T: Send + Sync + 'static> AsyncRead for TrackedStream<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: Send + Sync + 'static> AsyncWrite for TrackedStream<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Wraps each accepted stream of `incoming` so that it is tracked in
/// `registry`.
pub fn track<T: Send + Sync + 'static>(
    incoming: impl Stream<Item = io::Result<UnixStream>>,
    registry: Arc<Connections<T>>,
) -> impl Stream<Item = io::Result<TrackedStream<T>>> {
    incoming.map(move |accepted| {
        accepted.map(|inner| TrackedStream {
            info: ConnectionInfo {
                id: registry.opened(),
                peer: inner.peer_cred().ok(),
            },
            inner,
            registry: Arc::clone(&registry),
        })
    })
}

/// A service whose handlers run with their connection's id in
/// [`CONNECTION`] (requests over untracked connections run without).
#[derive(Debug, Clone)]
pub struct PerConnection<S> {
    inner: S,
}

impl<S> PerConnection<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        PerConnection { inner }
    }
}

impl<S: NamedService> NamedService for PerConnection<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower::Service<tonic::codegen::http::Request<B>> for PerConnection<S>
where
    S: tower::Service<tonic::codegen::http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: tonic::codegen::http::Request<B>) -> Self::Future {
        let id = request
            .extensions()
            .get::<ConnectionInfo>()
            .map(|info| info.id);
        let future = self.inner.call(request);
        match id {
            Some(id) => Box::pin(CONNECTION.scope(id, future)),
            None => Box::pin(future),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_made_once_per_open_connection_and_dropped_at_close() {
        let registry: Connections<String> = Connections::default();
        let a = registry.opened();
        let b = registry.opened();
        assert_ne!(a, b);
        assert_eq!(registry.count(), 2);
        let first = registry.state(a, || "a".to_string()).unwrap();
        let again = registry.state(a, || unreachable!("made twice")).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        registry.closed(a);
        assert_eq!(registry.count(), 1);
        assert_eq!(Arc::strong_count(&first), 2, "the registry let go of it");
        assert!(registry.state(a, || "late".to_string()).is_none());
        assert!(registry.state(999, || "unknown".to_string()).is_none());
        assert_eq!(registry.count(), 1, "no entry made for a closed id");
    }
}
