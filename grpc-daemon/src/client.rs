//! Connecting to tinfoild: `unix:PATH`, `https://HOST:PORT` (with an
//! optional CA bundle and client certificate) or `http://` on loopback.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Uri};

/// The environment variable naming the default endpoint.
pub const ENDPOINT_ENV: &str = "TINFOIL_ENDPOINT";

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint is not `unix:PATH`, `https://...` or loopback `http://...`.
    #[error("bad endpoint {0:?}: use unix:PATH or https://HOST:PORT")]
    BadEndpoint(String),
    /// A TLS file could not be read.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The transport failed to connect.
    #[error("cannot connect to {endpoint}: {}", chain(source))]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// The error.
        source: tonic::transport::Error,
    },
}

/// An error and its sources, `: `-separated.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// TLS options for `https://` endpoints.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// PEM CA bundle that signed the server's certificate.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, when the server requires one.
    pub cert_file: Option<PathBuf>,
    /// PEM key of the client certificate.
    pub key_file: Option<PathBuf>,
}

/// The Unix socket `tinfoild --dev` listens on when not told otherwise:
/// `$XDG_RUNTIME_DIR/tinfoil-dev/tinfoil.sock`, else
/// `$TMPDIR/tinfoil-dev-$USER/tinfoil.sock`.
pub fn dev_socket_path() -> PathBuf {
    dev_dir().join("tinfoil.sock")
}

/// The directory of the dev socket (see [`dev_socket_path`]).
pub fn dev_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("tinfoil-dev"),
        None => {
            let user = std::env::var("USER").unwrap_or_else(|_| "user".into());
            std::env::temp_dir().join(format!("tinfoil-dev-{user}"))
        }
    }
}

/// The endpoint to use: the given one, else `TINFOIL_ENDPOINT`, else the dev socket.
pub fn default_endpoint(given: Option<String>) -> String {
    given
        .or_else(|| std::env::var(ENDPOINT_ENV).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| format!("unix:{}", dev_socket_path().display()))
}

fn read(path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::File {
        path: path.to_path_buf(),
        source,
    })
}

fn is_loopback_http(uri: &Uri) -> bool {
    uri.scheme_str() == Some("http")
        && matches!(
            uri.host(),
            Some("localhost") | Some("127.0.0.1") | Some("[::1]") | Some("::1")
        )
}

/// Connects to `endpoint`.
pub async fn connect(endpoint: &str, tls: &ClientTls) -> Result<Channel, ClientError> {
    crate::install_crypto_provider();
    let connect_err = |source| ClientError::Connect {
        endpoint: endpoint.to_string(),
        source,
    };
    if let Some(path) = endpoint.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(ClientError::BadEndpoint(endpoint.into()));
        }
        return tinfoil_proto::unix::connect(PathBuf::from(path))
            .await
            .map_err(connect_err);
    }
    let uri: Uri = endpoint
        .parse()
        .map_err(|_| ClientError::BadEndpoint(endpoint.into()))?;
    let mut ep = Endpoint::from(uri.clone());
    if uri.scheme_str() == Some("https") {
        let mut config = ClientTlsConfig::new();
        if let Some(ca) = &tls.ca_file {
            config = config.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
            config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        ep = ep.tls_config(config).map_err(connect_err)?;
    } else if !is_loopback_http(&uri) {
        return Err(ClientError::BadEndpoint(endpoint.into()));
    }
    ep.connect().await.map_err(connect_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn plain_http_only_on_loopback() {
        let err = connect("http://example.com:80", &ClientTls::default())
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::BadEndpoint(_)));
        let err = connect("ftp:nowhere", &ClientTls::default())
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::BadEndpoint(_)));
    }

    #[tokio::test]
    async fn missing_socket_is_a_connect_error() {
        let err = connect("unix:/nonexistent/tinfoil.sock", &ClientTls::default())
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Connect { .. }), "{err}");
    }
}
