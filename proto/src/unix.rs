//! Connecting to tinfoild's Unix socket: one connector for the `tinfoil`
//! CLI and the PKCS#11 module's daemon backend.

use std::path::PathBuf;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

/// Opens a channel to the daemon listening on the Unix socket `path`.
/// Must run inside a tokio runtime; the connection is made at once, so a
/// missing socket or a daemon that is not running is an error here.
pub async fn connect(path: PathBuf) -> Result<Channel, tonic::transport::Error> {
    // The URI is a placeholder: the connector below ignores it.
    Endpoint::from_static("http://tinfoild.local")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
}
