//! Connecting to PostgreSQL: the store's URL (checked: never a password
//! in it), libpq's `sslmode` and `sslrootcert`, and the TLS connector
//! (rustls, with ring as its crypto provider) every connection of a node
//! uses, the change feed's included.
//!
//! `sslmode` as libpq defines it:
//! - `disable`: no TLS.
//! - `prefer` (the default): TLS when the server offers it, else plain;
//!   the server's certificate is not checked.
//! - `require`: TLS or no connection; the certificate is not checked,
//!   unless a root certificate file is there (`sslrootcert`, else
//!   `~/.postgresql/root.crt`), and then as `verify-ca`.
//! - `verify-ca`: TLS, and the server's certificate must chain to a
//!   certificate of the root file.
//! - `verify-full`: `verify-ca`, and the certificate must name the host
//!   connected to (DNS name or IP address).
//!
//! `allow` is refused (it prefers plain connections; use `prefer`), and
//! so is `sslrootcert=system` (give the CA file).
//!
//! Every connection is bounded as a whole (see [`connect_bounded`]):
//! tokio-postgres' `connect_timeout` bounds only the TCP connect, not the
//! TLS handshake, start-up and authentication after it.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{Error, Result};

/// How the connection to PostgreSQL is protected: libpq's `sslmode` (see
/// the module's notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// The default. With a root file: TLS when the server offers it, the
    /// certificate chained to the root file (as `VerifyCa`); without one:
    /// no TLS (libpq would accept any certificate; Tinfoil never does).
    Prefer,
    /// TLS required, checked as `VerifyCa`; a root file is required (libpq
    /// would accept any certificate without one; Tinfoil refuses to start).
    Require,
    /// TLS required, certificate chained to the root file.
    VerifyCa,
    /// `VerifyCa`, and the certificate names the host.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => {
                return Err(Error::validation(
                    "sslmode=allow is not supported (it prefers plain connections): use prefer, \
                     require, verify-ca or verify-full",
                ))
            }
            _ => {
                return Err(Error::validation(
                    "sslmode must be disable, prefer, require, verify-ca or verify-full",
                ))
            }
        })
    }

    /// The name libpq gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// The address of a PostgreSQL store, checked: `postgres://USER@HOST:PORT/DB`
/// (or libpq's `key=value` form), with `sslmode` and `sslrootcert` among
/// its parameters if wanted, never holding a password (it would show in
/// process listings and logs). Shown (Display, Debug) as
/// `USER@HOST:PORT/DB`, which is safe to log.
#[derive(Clone)]
pub struct StoreUrl {
    url: String,
    config: postgres::Config,
    ssl_mode: SslMode,
    root_cert: Option<PathBuf>,
}

impl StoreUrl {
    /// Parses and checks `url`: refused (`ValidationException`) when
    /// malformed or holding a password. Error messages never quote it.
    /// Reads no file (the root certificates are read when connecting; for
    /// `prefer`, whether the default root file exists decides whether TLS
    /// is tried at all).
    pub fn parse(url: &str) -> Result<StoreUrl> {
        let (rest, params) = take_tls_params(url)?;
        let config = postgres::Config::from_str(&rest)
            .map_err(|e| Error::validation(format!("malformed store URL: {e}")))?;
        if config.get_password().is_some() {
            return Err(Error::validation(
                "the store URL must not hold a password (it would be visible in process \
                 listings and logs): give it in a file (store_password_file) or PGPASSWORD",
            ));
        }
        if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
            return Err(Error::validation(
                "the store URL names no host: postgres://USER@HOST:PORT/DB",
            ));
        }
        let mut ssl_mode = SslMode::Prefer;
        let mut root_cert = None;
        for (key, value) in params {
            match key {
                TlsParam::Mode => ssl_mode = SslMode::parse(&value)?,
                TlsParam::RootCert if value == "system" => {
                    return Err(Error::validation(
                        "sslrootcert=system is not supported: give the path of a PEM file of \
                         the CA certificates to trust",
                    ))
                }
                TlsParam::RootCert => root_cert = Some(PathBuf::from(value)),
            }
        }
        let mut store_url = StoreUrl {
            url: url.to_owned(),
            config,
            ssl_mode,
            root_cert,
        };
        // `prefer` tries TLS only when there is a root file to check the
        // server's certificate against: Tinfoil never accepts an unchecked
        // certificate (an attacker's would do), so without one it is plain.
        let tls = match ssl_mode {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer if store_url.root_file().is_none() => {
                postgres::config::SslMode::Disable
            }
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            _ => postgres::config::SslMode::Require,
        };
        store_url.config.ssl_mode(tls);
        Ok(store_url)
    }

    /// The URL as given (it holds no password).
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// Its `sslmode`.
    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// The connection settings (without a password).
    pub(crate) fn config(&self) -> &postgres::Config {
        &self.config
    }

    /// The root certificate file `sslmode` checks against, if any: the
    /// `sslrootcert` given, else libpq's `~/.postgresql/root.crt` when it
    /// exists.
    fn root_file(&self) -> Option<PathBuf> {
        self.root_cert.clone().or_else(|| {
            let home = std::env::var_os("HOME")?;
            let default = Path::new(&home).join(".postgresql/root.crt");
            default.is_file().then_some(default)
        })
    }

    /// The TLS connector of this URL's `sslmode` (reads the root
    /// certificate file; refused for `require`, `verify-ca` and
    /// `verify-full` without one).
    pub(crate) fn connector(&self) -> Result<MakeRustlsConnect> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Internal(format!("TLS to PostgreSQL: {e}")))?;
        let root = match self.ssl_mode {
            SslMode::Disable => None,
            SslMode::Prefer => self.root_file(),
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                Some(self.root_file().ok_or_else(|| {
                    Error::validation(format!(
                        "sslmode={} needs sslrootcert=PATH (a PEM file of the CA certificates \
                         to trust) or ~/.postgresql/root.crt: Tinfoil does not accept a \
                         server certificate it cannot check",
                        self.ssl_mode.as_str()
                    ))
                })?)
            }
        };
        let verifier: Arc<dyn ServerCertVerifier> = match root {
            None => Arc::new(NoTls(provider)),
            Some(path) => {
                let webpki = webpki_verifier(&path, provider)?;
                if self.ssl_mode == SslMode::VerifyFull {
                    webpki
                } else {
                    Arc::new(ChainOnly(webpki))
                }
            }
        };
        Ok(MakeRustlsConnect::new(
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth(),
        ))
    }
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.config;
        if let Some(user) = c.get_user() {
            write!(f, "{user}@")?;
        }
        let hosts = c.get_hosts().len().max(c.get_hostaddrs().len());
        for i in 0..hosts {
            if i > 0 {
                f.write_str(",")?;
            }
            match (c.get_hosts().get(i), c.get_hostaddrs().get(i)) {
                (Some(postgres::config::Host::Tcp(name)), _) => f.write_str(name)?,
                (Some(postgres::config::Host::Unix(path)), _) => write!(f, "{}", path.display())?,
                (None, Some(addr)) => write!(f, "{addr}")?,
                (None, None) => {}
            }
            if let (Some(postgres::config::Host::Tcp(_)), Some(addr)) =
                (c.get_hosts().get(i), c.get_hostaddrs().get(i))
            {
                write!(f, " ({addr})")?;
            }
            let ports = c.get_ports();
            match ports.get(i).or(ports.first()) {
                Some(port) => write!(f, ":{port}")?,
                None => f.write_str(":5432")?,
            }
        }
        if let Some(db) = c.get_dbname() {
            write!(f, "/{db}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreUrl({self}, sslmode={})", self.ssl_mode.as_str())
    }
}

/// How long one connection may take, TCP connect, TLS handshake,
/// start-up and authentication together.
pub(crate) const CONNECT_BOUND: std::time::Duration = std::time::Duration::from_secs(10);

/// At most this many of a store's connection attempts may still wait
/// for an answer after their callers gave up on them (each holds a thread
/// and a socket until the socket fails or the answer comes); past it, the
/// store's new attempts fail at once, as unanswered too.
const UNANSWERED_MAX: usize = 4;

/// A store's connection attempts given up on and still waiting (see
/// [`connect_bounded`]), shared by its pool, its change feed and the
/// attempts' threads.
pub(crate) type Unanswered = Arc<std::sync::atomic::AtomicUsize>;

/// Every store's attempts given up on and still waiting (tests).
#[cfg(test)]
static UNANSWERED_EVERYWHERE: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// How many attempts given up on are still waiting, every store's (tests).
#[cfg(test)]
pub(crate) fn unanswered() -> usize {
    UNANSWERED_EVERYWHERE.load(std::sync::atomic::Ordering::Acquire)
}

/// Counts an attempt given up on in (`up`) or out.
fn count_unanswered(unanswered: &Unanswered, up: bool) {
    use std::sync::atomic::Ordering;
    if up {
        unanswered.fetch_add(1, Ordering::AcqRel);
        #[cfg(test)]
        UNANSWERED_EVERYWHERE.fetch_add(1, Ordering::AcqRel);
    } else {
        unanswered.fetch_sub(1, Ordering::AcqRel);
        #[cfg(test)]
        UNANSWERED_EVERYWHERE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection attempt that failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    /// The database (or the network) said no.
    #[error("{}", error_chain(.0))]
    Refused(postgres::Error),
    /// Nothing came back in time: a server or something between (a proxy,
    /// a hung middlebox) took the connection and did not answer it.
    #[error(
        "no answer within {} s (the connection was accepted, its start-up not answered)",
        CONNECT_BOUND.as_secs()
    )]
    Unanswered,
    /// Not tried: [`UNANSWERED_MAX`] earlier attempts of the store were
    /// given up on and still wait.
    #[error(
        "not tried: {UNANSWERED_MAX} earlier connection attempts got no answer within {} s and \
         still wait",
        CONNECT_BOUND.as_secs()
    )]
    TooManyUnanswered,
    /// No thread could be started for the attempt (the process is out of
    /// threads or memory).
    #[error("cannot start a thread to connect: {0}")]
    NoThread(std::io::Error),
    /// The attempt's thread ended without an outcome.
    #[error("the connection attempt ended without an outcome")]
    Lost,
}

/// Makes one connection with `connect` (e.g. `config.connect(tls)`) on a
/// thread of its own, waiting at most [`CONNECT_BOUND`] for it: a server
/// or middlebox that accepts the TCP connection and then never answers
/// would otherwise hold the caller (a pool's connector thread, the change
/// feed, a node starting) until the socket fails, which an acknowledging
/// peer never makes it do. The attempt given up on goes on by itself and
/// closes whatever it gets; while [`UNANSWERED_MAX`] such attempts of the
/// store (counted in `unanswered`) wait, its new ones fail at once.
pub(crate) fn connect_bounded<F>(
    unanswered: &Unanswered,
    connect: F,
) -> std::result::Result<postgres::Client, ConnectError>
where
    F: FnOnce() -> std::result::Result<postgres::Client, postgres::Error> + Send + 'static,
{
    connect_within(CONNECT_BOUND, unanswered, connect)
}

/// [`connect_bounded`] with `config` and `tls` (a node starting, the
/// change feed).
pub(crate) fn connect_config_bounded(
    unanswered: &Unanswered,
    config: &postgres::Config,
    tls: &MakeRustlsConnect,
) -> std::result::Result<postgres::Client, ConnectError> {
    let (config, tls) = (config.clone(), tls.clone());
    connect_bounded(unanswered, move || config.connect(tls))
}

/// [`connect_bounded`] with `bound` for [`CONNECT_BOUND`] (tests).
fn connect_within<F>(
    bound: std::time::Duration,
    unanswered: &Unanswered,
    connect: F,
) -> std::result::Result<postgres::Client, ConnectError>
where
    F: FnOnce() -> std::result::Result<postgres::Client, postgres::Error> + Send + 'static,
{
    use std::sync::atomic::Ordering;
    use std::sync::mpsc::RecvTimeoutError;
    if unanswered.load(Ordering::Acquire) >= UNANSWERED_MAX {
        return Err(ConnectError::TooManyUnanswered);
    }
    // The attempt's state, under one lock.
    #[derive(Default)]
    struct Attempt {
        ended: bool,
        /// Its caller gave up: the attempt counts itself out of
        /// `unanswered` when it ends.
        given_up: bool,
    }
    let state = Arc::new(std::sync::Mutex::new(Attempt::default()));
    let (send, receive) = std::sync::mpsc::sync_channel(1);
    let attempt_state = state.clone();
    let attempt_unanswered = unanswered.clone();
    let spawned = std::thread::Builder::new()
        .name("tinfoil-pg-connect".into())
        .spawn(move || {
            let outcome = connect();
            let mut state = attempt_state.lock().unwrap_or_else(|e| e.into_inner());
            state.ended = true;
            if state.given_up {
                count_unanswered(&attempt_unanswered, false);
                // Nobody takes it: a connection made closes here.
                return;
            }
            // Capacity 1, one message: never blocks.
            send.send(outcome).ok();
        });
    if let Err(e) = spawned {
        return Err(ConnectError::NoThread(e));
    }
    match receive.recv_timeout(bound) {
        Ok(outcome) => outcome.map_err(ConnectError::Refused),
        Err(RecvTimeoutError::Timeout) => {
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            if state.ended {
                // It ended just now: its outcome is in the channel.
                drop(state);
                return match receive.try_recv() {
                    Ok(outcome) => outcome.map_err(ConnectError::Refused),
                    Err(_) => Err(ConnectError::Lost),
                };
            }
            state.given_up = true;
            count_unanswered(unanswered, true);
            Err(ConnectError::Unanswered)
        }
        // The attempt's thread ended without an outcome (it panicked).
        Err(RecvTimeoutError::Disconnected) => Err(ConnectError::Lost),
    }
}

/// `e` and its sources, `: `-separated (each once): what a connection
/// failure says, e.g. `error performing TLS handshake: invalid peer
/// certificate: UnknownIssuer`. The server's messages name no password.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// The parameters tokio-postgres does not know (`verify-ca` and
/// `verify-full` are not among its `sslmode`s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsParam {
    Mode,
    RootCert,
}

fn tls_param(key: &str) -> Option<TlsParam> {
    match key {
        "sslmode" => Some(TlsParam::Mode),
        "sslrootcert" => Some(TlsParam::RootCert),
        _ => None,
    }
}

/// `url` without its `sslmode` and `sslrootcert` parameters, and their
/// values, in either form: the URL's query (`?sslmode=verify-full&...`,
/// percent-encoded) or libpq's `key=value` pairs (values in single quotes
/// with backslash escapes, as tokio-postgres reads them).
fn take_tls_params(url: &str) -> Result<(String, Vec<(TlsParam, String)>)> {
    let mut taken = Vec::new();
    let prefix = ["postgres://", "postgresql://"]
        .into_iter()
        .find(|p| url.starts_with(p));
    if let Some(prefix) = prefix {
        // As tokio-postgres reads it: credentials up to the first '@',
        // then the host, then the path up to the first '?'.
        let rest = &url[prefix.len()..];
        let after_credentials = rest.find('@').map_or(0, |i| i + 1);
        let Some(q) = rest[after_credentials..].find('?') else {
            return Ok((url.to_owned(), taken));
        };
        let query_at = prefix.len() + after_credentials + q;
        let mut kept = Vec::new();
        for pair in url[query_at + 1..].split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match tls_param(&percent_decode(key)?) {
                Some(param) => taken.push((param, percent_decode(value)?)),
                None => kept.push(pair),
            }
        }
        let mut rebuilt = url[..query_at].to_owned();
        if !kept.is_empty() {
            rebuilt.push('?');
            rebuilt.push_str(&kept.join("&"));
        }
        return Ok((rebuilt, taken));
    }
    // key=value pairs.
    let mut rebuilt = String::new();
    let mut chars = url.char_indices().peekable();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if chars.next_if(|(_, c)| *c == '=').is_none() {
            return Err(Error::validation(
                "malformed store URL: expected key=value pairs",
            ));
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        let quoted = chars.next_if(|(_, c)| *c == '\'').is_some();
        loop {
            match chars.next() {
                None if quoted => {
                    return Err(Error::validation(
                        "malformed store URL: unterminated quoted value",
                    ))
                }
                None => break,
                Some((_, '\\')) => match chars.next() {
                    Some((_, c)) => value.push(c),
                    None => {
                        return Err(Error::validation(
                            "malformed store URL: a value ends in a backslash",
                        ))
                    }
                },
                Some((_, '\'')) if quoted => break,
                Some((_, c)) if !quoted && c.is_whitespace() => break,
                Some((_, c)) => value.push(c),
            }
        }
        let end = chars.peek().map_or(url.len(), |&(i, _)| i);
        match tls_param(&key) {
            Some(param) => taken.push((param, value)),
            None => {
                rebuilt.push_str(url[start..end].trim_end());
                rebuilt.push(' ');
            }
        }
    }
    Ok((rebuilt.trim_end().to_owned(), taken))
}

/// Decodes a URL's `%XX` escapes.
fn percent_decode(text: &str) -> Result<String> {
    let bad = || Error::validation("malformed store URL: bad %-escape");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or_else(bad)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// A verifier of chains to the certificates of the PEM file `path`, and
/// of the host's name.
fn webpki_verifier(
    path: &Path,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>> {
    let what = || format!("sslrootcert {}", path.display());
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| Error::validation(format!("{}: {e}", what())))?;
    for cert in certs {
        let cert = cert.map_err(|e| Error::validation(format!("{}: {e}", what())))?;
        roots
            .add(cert)
            .map_err(|e| Error::validation(format!("{}: {e}", what())))?;
    }
    if roots.is_empty() {
        return Err(Error::validation(format!(
            "{}: no certificate in it",
            what()
        )));
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| Error::validation(format!("{}: {e}", what())))
}

/// `sslmode=verify-ca`: the chain is checked (webpki checks it before the
/// name), the name is not.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The verifier of a URL whose connections never use TLS (`disable`, or
/// `prefer` without a root file): refuses every certificate, so a
/// handshake it is somehow asked to check fails rather than trusting an
/// unchecked server.
#[derive(Debug)]
struct NoTls(Arc<CryptoProvider>);

impl ServerCertVerifier for NoTls {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Err(rustls::Error::General(
            "TLS is off for this store URL (sslmode=disable, or prefer without a root file)".into(),
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_of_either_form() {
        let (rest, taken) = take_tls_params(
            "postgres://u@h:5/db?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u@h:5/db?application_name=x");
        assert_eq!(
            taken,
            [
                (TlsParam::Mode, "verify-full".to_string()),
                (TlsParam::RootCert, "/etc/ca.pem".to_string())
            ]
        );
        let (rest, taken) =
            take_tls_params("host=h sslmode = 'verify-ca' user=u sslrootcert=/a\\ b.pem dbname=d")
                .unwrap();
        assert_eq!(rest, "host=h user=u dbname=d");
        assert_eq!(
            taken,
            [
                (TlsParam::Mode, "verify-ca".to_string()),
                (TlsParam::RootCert, "/a b.pem".to_string())
            ]
        );
        let (rest, taken) = take_tls_params("postgres://u@h/db").unwrap();
        assert_eq!((rest.as_str(), taken.len()), ("postgres://u@h/db", 0));
    }

    #[test]
    fn urls_are_checked_and_shown_without_secrets() {
        let url =
            StoreUrl::parse("postgres://tinfoil@db.example:5433/kms?sslmode=verify-full").unwrap();
        assert_eq!(url.to_string(), "tinfoil@db.example:5433/kms");
        assert_eq!(url.ssl_mode(), SslMode::VerifyFull);
        assert_eq!(
            StoreUrl::parse("postgres://t@h/d").unwrap().ssl_mode(),
            SslMode::Prefer
        );
        for bad in [
            "postgres://t:hunter2@h/d",
            "postgres://t:hun?ter2@h/d?sslmode=require",
            "postgres://t@h/d?password=hunter2",
            "host=h password='hunter2' sslmode=require",
        ] {
            let err = StoreUrl::parse(bad).unwrap_err().to_string();
            assert!(err.contains("must not hold a password"), "{bad}: {err}");
            assert!(!err.contains("hunter2"));
        }
        for (bad, says) in [
            ("postgres://t@h/d?sslmode=allow", "allow is not supported"),
            ("postgres://t@h/d?sslmode=verify", "sslmode must be"),
            ("postgres://t@h/d?sslrootcert=system", "system"),
            ("postgres://t@h/d?sslrootcert=%zz", "%-escape"),
            ("postgres:///d", "no host"),
        ] {
            let err = StoreUrl::parse(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
        let url = StoreUrl::parse("postgres://t@h/d?sslmode=verify-full&sslrootcert=/nonexistent")
            .unwrap();
        let err = url.connector().err().unwrap().to_string();
        assert!(err.contains("sslrootcert /nonexistent"), "{err}");
    }

    /// A refused connection attempt's error (nothing listens on port 1).
    fn refused() -> std::result::Result<postgres::Client, postgres::Error> {
        postgres::Config::new()
            .host("127.0.0.1")
            .port(1)
            .user("nobody")
            .connect(postgres::NoTls)
    }

    /// A connection attempt that waits until `release` says so, then is
    /// refused.
    fn held(
        release: std::sync::mpsc::Receiver<()>,
    ) -> impl FnOnce() -> std::result::Result<postgres::Client, postgres::Error> + Send + 'static
    {
        move || {
            release.recv().ok();
            refused()
        }
    }

    #[test]
    fn a_connection_attempt_is_bounded_and_given_up_attempts_are_capped() {
        use std::sync::atomic::Ordering;
        use std::time::{Duration, Instant};
        let bound = Duration::from_millis(100);
        let unanswered = Unanswered::default();
        // Refused: the database's own error, at once.
        let err = connect_within(bound, &unanswered, refused).err().unwrap();
        assert!(matches!(err, ConnectError::Refused(_)), "{err}");
        assert_eq!(unanswered.load(Ordering::Acquire), 0);
        // An attempt that panics: said so, not counted.
        let err = connect_within(bound, &unanswered, || panic!("an attempt that panics"))
            .err()
            .unwrap();
        assert!(matches!(err, ConnectError::Lost), "{err}");
        assert_eq!(unanswered.load(Ordering::Acquire), 0);
        // Unanswered: given up after the bound, counted while it waits.
        let mut releases = Vec::new();
        for n in 1..=UNANSWERED_MAX {
            let (release, wait) = std::sync::mpsc::channel();
            releases.push(release);
            // Returns while the attempt is still held (not released yet).
            let err = connect_within(bound, &unanswered, held(wait))
                .err()
                .unwrap();
            assert!(matches!(err, ConnectError::Unanswered), "{err}");
            assert!(err.to_string().contains("no answer within"), "{err}");
            assert_eq!(unanswered.load(Ordering::Acquire), n);
        }
        // The cap: the next attempt fails at once, without trying.
        let tried = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = tried.clone();
        let err = connect_within(bound, &unanswered, move || {
            flag.store(true, Ordering::Release);
            refused()
        })
        .err()
        .unwrap();
        assert!(matches!(err, ConnectError::TooManyUnanswered), "{err}");
        assert!(err.to_string().contains("not tried"), "{err}");
        assert!(
            !tried.load(Ordering::Acquire),
            "the attempt past the cap was made"
        );
        // Another store's attempts are not held by this one's.
        let other = Unanswered::default();
        let err = connect_within(bound, &other, refused).err().unwrap();
        assert!(matches!(err, ConnectError::Refused(_)), "{err}");
        // Answered at last: each attempt counts itself out.
        drop(releases);
        let deadline = Instant::now() + Duration::from_secs(10);
        while unanswered.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(unanswered.load(Ordering::Acquire), 0);
        let err = connect_within(bound, &unanswered, refused).err().unwrap();
        assert!(matches!(err, ConnectError::Refused(_)), "{err}");
    }
}
