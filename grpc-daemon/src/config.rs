//! tinfoild's settings: a TOML file (`--config`) with flags overriding it,
//! resolved once into [`Settings`] with documented defaults and bounds.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::DaemonError;

/// The settings of `tinfoild serve` (and `init` for the KDF), as read from
/// the TOML file or given as flags. Every field is optional; see
/// [`Settings`] for the defaults.
#[derive(Debug, Default, Clone, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct SettingsInput {
    /// The store's directory (created 0700 by `init`): a SQLite store.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// A PostgreSQL store instead of --data-dir (several nodes on one
    /// database): `postgres://USER@HOST:PORT/DB`, with `?sslmode=...` and
    /// `sslrootcert=PATH` for TLS. Never with a password in it: see
    /// --store-password-file and PGPASSWORD.
    #[arg(long)]
    pub store_url: Option<String>,
    /// A file holding the PostgreSQL store's password; group and others
    /// must have no access. Else PGPASSWORD is used, if set.
    #[arg(long)]
    pub store_password_file: Option<PathBuf>,
    /// Where to listen: `unix:PATH` (default DATA_DIR/tinfoil.sock; required
    /// with --store-url) or `tcp:HOST:PORT`.
    #[arg(long)]
    pub listen: Option<String>,
    /// A file holding the passphrase; group and others must have no access.
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// PEM certificate chain for TLS on TCP.
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for TLS on TCP.
    #[arg(long)]
    pub tls_key_file: Option<PathBuf>,
    /// PEM CA bundle: when set, clients must present a certificate it signed.
    #[arg(long)]
    pub tls_client_ca_file: Option<PathBuf>,
    /// Allows plain TCP without TLS, on a loopback address only.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub insecure_loopback: Option<bool>,
    /// Largest request message accepted, in bytes (default 65536).
    #[arg(long)]
    pub max_message_bytes: Option<usize>,
    /// HTTP/2 streams allowed at once per connection (default 128).
    #[arg(long)]
    pub max_concurrent_streams: Option<u32>,
    /// Calls allowed in flight at once across all connections (default 1024).
    #[arg(long)]
    pub max_in_flight: Option<usize>,
    /// Per-call deadline in milliseconds (default 10000).
    #[arg(long)]
    pub call_timeout_ms: Option<u64>,
    /// Seconds between rotation and deletion ticks, 1 to 60 (default 60).
    #[arg(long)]
    pub tick_interval_secs: Option<u64>,
    /// Entries of each in-memory cache: key records, aliases, key
    /// policies, unwrapped key versions (default 1024).
    #[arg(long)]
    pub cache_capacity: Option<usize>,
    /// Log filter when RUST_LOG is unset (default "info").
    #[arg(long)]
    pub log_level: Option<String>,
    /// Async worker threads (default: half the CPUs, at least 1).
    #[arg(long)]
    pub worker_threads: Option<usize>,
    /// Microseconds the daemon keeps polling its sockets after a PKCS#11
    /// call answered on the async worker, 0 to 1000 (default 200; 0 = off).
    #[arg(long)]
    pub busy_poll_micros: Option<u64>,
    /// Where the AWS KMS JSON endpoint listens, `tcp:HOST:PORT` (default: off).
    /// TLS as for gRPC; plain HTTP only on loopback with --insecure-loopback.
    #[arg(long)]
    pub kms_listen: Option<String>,
    /// The region in every ARN and SigV4 scope (default us-east-1).
    #[arg(long)]
    pub region: Option<String>,
    /// The 12-digit account id in every ARN (default 111122223333).
    #[arg(long)]
    pub account_id: Option<String>,
    /// How far a SigV4 request's X-Amz-Date may be from now, in seconds,
    /// 60 to 3600 (default 900, as AWS).
    #[arg(long)]
    pub sigv4_max_skew_secs: Option<u64>,
    /// How long the KMS endpoint waits for a request's headers, and then
    /// for its body, in milliseconds, 100 to 600000 (default 10000).
    #[arg(long)]
    pub kms_read_timeout_ms: Option<u64>,
    /// A group (name or number) whose members may connect to the Unix
    /// socket: the socket becomes 0660 with that group. Its members are
    /// then callers like any other: bound uids act as their users, others
    /// are refused (unless socket_anonymous_uids).
    #[arg(long)]
    pub socket_group: Option<String>,
    /// Lets socket callers whose uid is bound to no user act as the user
    /// `uid-N` (which key policies reach only through `"Principal": "*"`)
    /// instead of being refused (default false).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub socket_anonymous_uids: Option<bool>,
    /// Account-level actions users may call (administrators may call all):
    /// comma-separated KMS names, with or without `kms:` (default
    /// CreateKey,ListKeys,ListAliases,GenerateRandom; empty: none).
    #[arg(long, value_delimiter = ',')]
    pub user_account_actions: Option<Vec<String>>,
    /// SHA-256 fingerprints (hex, colons allowed) of TLS client
    /// certificates that act as the account's administrators; any other
    /// certificate must be bound to a user (`create-user --cert-fingerprint`).
    #[arg(long, value_delimiter = ',')]
    pub tls_admin_cert_fingerprints: Option<Vec<String>>,
    /// Argon2id memory in KiB for `init` (default 65536).
    #[arg(long)]
    pub kdf_memory_kib: Option<u32>,
    /// Argon2id iterations for `init` (default 3).
    #[arg(long)]
    pub kdf_iterations: Option<u32>,
    /// Argon2id lanes for `init` (default 1).
    #[arg(long)]
    pub kdf_parallelism: Option<u32>,
}

impl SettingsInput {
    /// Reads a TOML configuration file.
    pub fn from_file(path: &Path) -> Result<Self, DaemonError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DaemonError::io(format!("config file {}", path.display()), e))?;
        toml::from_str(&text).map_err(|e| DaemonError::Config(format!("{}: {e}", path.display())))
    }

    /// `self` with every unset field taken from `base`: flags over the file.
    pub fn over(self, base: SettingsInput) -> SettingsInput {
        SettingsInput {
            data_dir: self.data_dir.or(base.data_dir),
            store_url: self.store_url.or(base.store_url),
            store_password_file: self.store_password_file.or(base.store_password_file),
            listen: self.listen.or(base.listen),
            passphrase_file: self.passphrase_file.or(base.passphrase_file),
            tls_cert_file: self.tls_cert_file.or(base.tls_cert_file),
            tls_key_file: self.tls_key_file.or(base.tls_key_file),
            tls_client_ca_file: self.tls_client_ca_file.or(base.tls_client_ca_file),
            insecure_loopback: self.insecure_loopback.or(base.insecure_loopback),
            max_message_bytes: self.max_message_bytes.or(base.max_message_bytes),
            max_concurrent_streams: self.max_concurrent_streams.or(base.max_concurrent_streams),
            max_in_flight: self.max_in_flight.or(base.max_in_flight),
            call_timeout_ms: self.call_timeout_ms.or(base.call_timeout_ms),
            tick_interval_secs: self.tick_interval_secs.or(base.tick_interval_secs),
            cache_capacity: self.cache_capacity.or(base.cache_capacity),
            log_level: self.log_level.or(base.log_level),
            worker_threads: self.worker_threads.or(base.worker_threads),
            busy_poll_micros: self.busy_poll_micros.or(base.busy_poll_micros),
            kms_listen: self.kms_listen.or(base.kms_listen),
            region: self.region.or(base.region),
            account_id: self.account_id.or(base.account_id),
            sigv4_max_skew_secs: self.sigv4_max_skew_secs.or(base.sigv4_max_skew_secs),
            kms_read_timeout_ms: self.kms_read_timeout_ms.or(base.kms_read_timeout_ms),
            socket_group: self.socket_group.or(base.socket_group),
            socket_anonymous_uids: self.socket_anonymous_uids.or(base.socket_anonymous_uids),
            user_account_actions: self.user_account_actions.or(base.user_account_actions),
            tls_admin_cert_fingerprints: self
                .tls_admin_cert_fingerprints
                .or(base.tls_admin_cert_fingerprints),
            kdf_memory_kib: self.kdf_memory_kib.or(base.kdf_memory_kib),
            kdf_iterations: self.kdf_iterations.or(base.kdf_iterations),
            kdf_parallelism: self.kdf_parallelism.or(base.kdf_parallelism),
        }
    }
}

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A Unix socket at this path (mode 0600).
    Unix(PathBuf),
    /// TCP at this address: TLS, or plain on loopback with `insecure_loopback`.
    Tcp(SocketAddr),
}

impl Listen {
    /// Parses `unix:PATH` or `tcp:HOST:PORT`.
    pub fn parse(text: &str) -> Result<Listen, DaemonError> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(DaemonError::Config("listen: empty socket path".into()));
            }
            return Ok(Listen::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = text.strip_prefix("tcp:") {
            let resolved = addr
                .to_socket_addrs()
                .map_err(|e| DaemonError::Config(format!("listen: {addr}: {e}")))?
                .next()
                .ok_or_else(|| DaemonError::Config(format!("listen: {addr}: no address")))?;
            return Ok(Listen::Tcp(resolved));
        }
        Err(DaemonError::Config(format!(
            "listen: {text:?} must be unix:PATH or tcp:HOST:PORT"
        )))
    }
}

/// Where the store is.
#[derive(Debug, Clone)]
pub enum StoreLocation {
    /// A SQLite store in this directory (one node).
    Dir(PathBuf),
    /// A PostgreSQL database that several nodes share.
    Postgres {
        /// The database (checked: no password in it).
        url: Box<hsm_core::StoreUrl>,
        /// The file holding its password, if any (else PGPASSWORD).
        password_file: Option<PathBuf>,
    },
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Dir(dir) => write!(f, "{}", dir.display()),
            StoreLocation::Postgres { url, .. } => write!(f, "the PostgreSQL database {url}"),
        }
    }
}

/// TLS files for a TCP listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM CA bundle for client certificates, when they are required.
    pub client_ca: Option<PathBuf>,
}

/// Resolved settings with defaults applied and bounds checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the store is.
    pub store: StoreLocation,
    /// Where to listen; `None` only for a PostgreSQL store without
    /// `listen` (enough for `init`; see [`Settings::listen`]).
    pub listen: Option<Listen>,
    /// The passphrase file, if any.
    pub passphrase_file: Option<PathBuf>,
    /// TLS for TCP, if configured.
    pub tls: Option<TlsFiles>,
    /// Plain TCP allowed on loopback.
    pub insecure_loopback: bool,
    /// Largest request message, bytes (1 KiB to 16 MiB).
    pub max_message_bytes: usize,
    /// HTTP/2 streams per connection (at least 1).
    pub max_concurrent_streams: u32,
    /// Calls in flight across connections (at least 1).
    pub max_in_flight: usize,
    /// Per-call deadline (1 ms to 10 minutes).
    pub call_timeout: Duration,
    /// Interval of background ticks (1 to 60 s).
    pub tick_interval: Duration,
    /// Entries of each in-memory cache (keys, aliases, policies, versions).
    pub cache_capacity: usize,
    /// Log filter.
    pub log_level: String,
    /// Async worker threads (1 to 1024).
    pub worker_threads: usize,
    /// Busy polling after an inline PKCS#11 call (0 to 1 ms).
    pub busy_poll: Duration,
    /// Argon2id parameters for `init`.
    pub kdf: hsm_core::KdfParams,
    /// The AWS KMS JSON endpoint's address, when it is on.
    pub kms_listen: Option<SocketAddr>,
    /// The region of ARNs and SigV4 scopes.
    pub region: String,
    /// The account id of ARNs.
    pub account_id: String,
    /// The largest SigV4 clock skew accepted (1 to 60 minutes).
    pub sigv4_max_skew: Duration,
    /// The KMS endpoint's header and body read timeouts.
    pub kms_read_timeout: Duration,
    /// The group that may connect to the Unix socket (socket 0660), if any.
    pub socket_group: Option<u32>,
    /// Whether unbound socket uids act as `uid-N` instead of being refused.
    pub socket_anonymous_uids: bool,
    /// Account-level actions users may call, when configured (else the
    /// core's default).
    pub user_account_actions: Option<Vec<String>>,
    /// Client certificates (SHA-256, lowercase hex) acting as administrators.
    pub tls_admin_cert_fingerprints: Vec<String>,
}

/// A certificate fingerprint: 64 hex digits (colons allowed), lowercased.
fn fingerprint(text: &str) -> Result<String, DaemonError> {
    let hex: String = text
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(DaemonError::Config(format!(
            "tls_admin_cert_fingerprints: {text:?} is not a SHA-256 fingerprint (64 hex digits)"
        )));
    }
    Ok(hex)
}

/// A group's id from its number or its name in /etc/group.
fn group_id(group: &str) -> Result<u32, DaemonError> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    let groups = std::fs::read_to_string("/etc/group")
        .map_err(|e| DaemonError::io("reading /etc/group for socket_group", e))?;
    groups
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let gid = fields.nth(1)?.parse::<u32>().ok()?;
            (name == group).then_some(gid)
        })
        .next()
        .ok_or_else(|| DaemonError::Config(format!("socket_group: no group named {group:?}")))
}

fn bounded<T: PartialOrd + std::fmt::Display + Copy>(
    name: &str,
    value: T,
    min: T,
    max: T,
) -> Result<T, DaemonError> {
    if value < min || value > max {
        return Err(DaemonError::Config(format!(
            "{name} = {value} is outside {min} to {max}"
        )));
    }
    Ok(value)
}

/// Half the CPUs, at least one: the runtime only moves bytes (crypto runs
/// on the pools), and on a small machine one worker that owns the socket
/// answers a lone PKCS#11 client about twice as fast as two that hand it
/// back and forth (measured in README "Use as a PKCS#11 token").
fn default_worker_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| (n.get() / 2).max(1))
        .unwrap_or(1)
}

/// The Argon2id parameters, checked against hsm-core's bounds (memory
/// 8 MiB to 4 GiB, iterations 1 to 100, lanes 1 to 64) so a bad value is a
/// ValidationException before anything starts.
fn kdf_params(
    input: &SettingsInput,
    defaults: hsm_core::KdfParams,
) -> Result<hsm_core::KdfParams, DaemonError> {
    let kdf = hsm_core::KdfParams {
        memory_kib: input.kdf_memory_kib.unwrap_or(defaults.memory_kib),
        iterations: input.kdf_iterations.unwrap_or(defaults.iterations),
        parallelism: input.kdf_parallelism.unwrap_or(defaults.parallelism),
    };
    kdf.validate()?;
    Ok(kdf)
}

/// The store's location: `data_dir` or `store_url`, exactly one.
fn store_location(input: &SettingsInput) -> Result<StoreLocation, DaemonError> {
    match (&input.data_dir, &input.store_url) {
        (Some(_), Some(_)) => Err(DaemonError::Config(
            "--data-dir and --store-url (data_dir, store_url) exclude each other: the store is \
             either a SQLite directory or a PostgreSQL database"
                .into(),
        )),
        (Some(dir), None) => {
            if input.store_password_file.is_some() {
                return Err(DaemonError::Config(
                    "--store-password-file (store_password_file) needs --store-url".into(),
                ));
            }
            Ok(StoreLocation::Dir(dir.clone()))
        }
        (None, Some(url)) => Ok(StoreLocation::Postgres {
            url: Box::new(
                hsm_core::StoreUrl::parse(url)
                    .map_err(|e| DaemonError::Config(format!("store_url: {e}")))?,
            ),
            password_file: input.store_password_file.clone(),
        }),
        (None, None) => Err(DaemonError::Config(
            "--data-dir (data_dir) or --store-url (store_url) is required".into(),
        )),
    }
}

impl Settings {
    /// Where to listen: required with a PostgreSQL store (there is no data
    /// directory for the default socket).
    pub fn listen(&self) -> Result<&Listen, DaemonError> {
        self.listen.as_ref().ok_or_else(|| {
            DaemonError::Config(
                "--listen (listen) is required with --store-url: there is no data directory \
                 for the default socket (e.g. --listen unix:/run/tinfoil/tinfoil.sock)"
                    .into(),
            )
        })
    }

    /// Applies defaults and checks bounds. `data_dir` or `store_url` is
    /// required (not both).
    pub fn resolve(input: SettingsInput) -> Result<Settings, DaemonError> {
        let kdf = kdf_params(&input, hsm_core::KdfParams::default())?;
        let store = store_location(&input)?;
        let listen = match (input.listen, &store) {
            (Some(text), _) => Some(Listen::parse(&text)?),
            (None, StoreLocation::Dir(dir)) => Some(Listen::Unix(dir.join("tinfoil.sock"))),
            (None, StoreLocation::Postgres { .. }) => None,
        };
        let tls = match (input.tls_cert_file, input.tls_key_file) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert,
                key,
                client_ca: input.tls_client_ca_file,
            }),
            (None, None) if input.tls_client_ca_file.is_none() => None,
            _ => {
                return Err(DaemonError::Config(
                    "TLS needs both tls_cert_file and tls_key_file".into(),
                ))
            }
        };
        let insecure_loopback = input.insecure_loopback.unwrap_or(false);
        if let Some(Listen::Tcp(addr)) = &listen {
            if tls.is_none() && !(insecure_loopback && addr.ip().is_loopback()) {
                return Err(DaemonError::Config(format!(
                    "listening on tcp:{addr} needs TLS (tls_cert_file, tls_key_file); plain TCP \
                     is allowed only on a loopback address with --insecure-loopback"
                )));
            }
        }
        let kms_listen = match input.kms_listen {
            Some(text) => match Listen::parse(&text)? {
                Listen::Tcp(addr) => Some(addr),
                Listen::Unix(_) => {
                    return Err(DaemonError::Config(
                        "kms_listen must be tcp:HOST:PORT".into(),
                    ))
                }
            },
            None => None,
        };
        if let Some(addr) = &kms_listen {
            if tls.is_none() && !(insecure_loopback && addr.ip().is_loopback()) {
                return Err(DaemonError::Config(format!(
                    "kms_listen tcp:{addr} needs TLS (tls_cert_file, tls_key_file); plain HTTP \
                     is allowed only on a loopback address with --insecure-loopback"
                )));
            }
        }
        let region = input.region.unwrap_or_else(|| "us-east-1".into());
        let region_ok = !region.is_empty()
            && region.len() <= 32
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return Err(DaemonError::Config(format!(
                "region {region:?} must be 1 to 32 of a-z, 0-9 and -"
            )));
        }
        let account_id = input.account_id.unwrap_or_else(|| "111122223333".into());
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DaemonError::Config(format!(
                "account_id {account_id:?} must be 12 digits"
            )));
        }
        Ok(Settings {
            kms_listen,
            region,
            account_id,
            sigv4_max_skew: Duration::from_secs(bounded(
                "sigv4_max_skew_secs",
                input.sigv4_max_skew_secs.unwrap_or(900),
                60,
                3600,
            )?),
            kms_read_timeout: Duration::from_millis(bounded(
                "kms_read_timeout_ms",
                input.kms_read_timeout_ms.unwrap_or(10_000),
                100,
                600_000,
            )?),
            socket_group: input.socket_group.as_deref().map(group_id).transpose()?,
            socket_anonymous_uids: input.socket_anonymous_uids.unwrap_or(false),
            tls_admin_cert_fingerprints: input
                .tls_admin_cert_fingerprints
                .unwrap_or_default()
                .iter()
                .map(|fp| fingerprint(fp))
                .collect::<Result<_, _>>()?,
            user_account_actions: input.user_account_actions.map(|actions| {
                actions
                    .into_iter()
                    .filter(|a| !a.trim().is_empty())
                    .collect()
            }),
            store,
            listen,
            passphrase_file: input.passphrase_file,
            tls,
            insecure_loopback,
            max_message_bytes: bounded(
                "max_message_bytes",
                input.max_message_bytes.unwrap_or(64 * 1024),
                1024,
                16 * 1024 * 1024,
            )?,
            max_concurrent_streams: bounded(
                "max_concurrent_streams",
                input.max_concurrent_streams.unwrap_or(128),
                1,
                65_536,
            )?,
            max_in_flight: bounded(
                "max_in_flight",
                input.max_in_flight.unwrap_or(1024),
                1,
                1 << 20,
            )?,
            call_timeout: Duration::from_millis(bounded(
                "call_timeout_ms",
                input.call_timeout_ms.unwrap_or(10_000),
                1,
                600_000,
            )?),
            tick_interval: Duration::from_secs(bounded(
                "tick_interval_secs",
                input.tick_interval_secs.unwrap_or(60),
                1,
                60,
            )?),
            cache_capacity: input.cache_capacity.unwrap_or(1024),
            log_level: input.log_level.unwrap_or_else(|| "info".into()),
            worker_threads: bounded(
                "worker_threads",
                input.worker_threads.unwrap_or_else(default_worker_threads),
                1,
                1024,
            )?,
            busy_poll: Duration::from_micros(bounded(
                "busy_poll_micros",
                input.busy_poll_micros.unwrap_or(200),
                0,
                1000,
            )?),
            kdf,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_dir() -> SettingsInput {
        SettingsInput {
            data_dir: Some("/tmp/x".into()),
            ..Default::default()
        }
    }

    #[test]
    fn flags_override_the_file() {
        let file: SettingsInput =
            toml::from_str("data_dir = \"/a\"\nmax_in_flight = 7\ncall_timeout_ms = 5").unwrap();
        let flags = SettingsInput {
            max_in_flight: Some(9),
            ..Default::default()
        };
        let s = Settings::resolve(flags.over(file)).unwrap();
        assert!(matches!(&s.store, StoreLocation::Dir(d) if d == Path::new("/a")));
        assert_eq!(s.max_in_flight, 9);
        assert_eq!(s.call_timeout, Duration::from_millis(5));
        assert_eq!(s.listen, Some(Listen::Unix("/a/tinfoil.sock".into())));
    }

    #[test]
    fn store_url_settings() {
        let file: SettingsInput = toml::from_str(
            "store_url = \"postgres://tinfoil@db.example:5433/kms\"\n\
             store_password_file = \"/etc/tinfoil/pg-password\"",
        )
        .unwrap();
        let s = Settings::resolve(file.clone()).unwrap();
        let StoreLocation::Postgres { url, password_file } = &s.store else {
            panic!("not a PostgreSQL store");
        };
        assert_eq!(url.to_string(), "tinfoil@db.example:5433/kms");
        assert_eq!(
            password_file.as_deref(),
            Some(Path::new("/etc/tinfoil/pg-password"))
        );
        // No default socket without a data directory.
        assert_eq!(s.listen, None);
        let err = s.listen().unwrap_err().to_string();
        assert!(err.contains("--listen"), "{err}");
        let flags = SettingsInput {
            listen: Some("unix:/run/t.sock".into()),
            ..Default::default()
        };
        let s = Settings::resolve(flags.over(file.clone())).unwrap();
        assert_eq!(s.listen().unwrap(), &Listen::Unix("/run/t.sock".into()));
        // With a data directory too: refused.
        let flags = SettingsInput {
            data_dir: Some("/a".into()),
            ..Default::default()
        };
        let err = Settings::resolve(flags.over(file)).unwrap_err().to_string();
        assert!(err.contains("exclude each other"), "{err}");
        // A password file without a database.
        let mut input = with_dir();
        input.store_password_file = Some("/p".into());
        assert!(Settings::resolve(input).is_err());
        // Neither.
        let err = Settings::resolve(SettingsInput::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("--store-url"), "{err}");
    }

    #[test]
    fn a_password_in_the_store_url_is_refused_without_quoting_it() {
        for url in [
            "postgres://tinfoil:hunter2@127.0.0.1:5432/kms",
            "host=127.0.0.1 user=tinfoil password=hunter2 dbname=kms",
            "postgres://tinfoil@127.0.0.1:5432/kms?password=hunter2",
        ] {
            let input = SettingsInput {
                store_url: Some(url.into()),
                ..Default::default()
            };
            let err = Settings::resolve(input).unwrap_err().to_string();
            assert!(err.contains("must not hold a password"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<SettingsInput>("max_inflight = 3").is_err());
    }

    #[test]
    fn plain_tcp_needs_loopback_and_the_flag() {
        let mut input = with_dir();
        input.listen = Some("tcp:127.0.0.1:7000".into());
        assert!(Settings::resolve(input.clone()).is_err());
        input.insecure_loopback = Some(true);
        assert!(Settings::resolve(input.clone()).is_ok());
        input.listen = Some("tcp:0.0.0.0:7000".into());
        assert!(Settings::resolve(input).is_err());
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let mut input = with_dir();
        input.tick_interval_secs = Some(61);
        assert!(Settings::resolve(input).is_err());
        let mut input = with_dir();
        input.worker_threads = Some(0);
        assert!(Settings::resolve(input).is_err());
        let mut input = with_dir();
        input.busy_poll_micros = Some(1001);
        assert!(Settings::resolve(input).is_err());
        let mut input = with_dir();
        input.max_message_bytes = Some(10);
        assert!(Settings::resolve(input).is_err());
    }

    #[test]
    fn kms_settings() {
        let s = Settings::resolve(with_dir()).unwrap();
        assert_eq!(s.kms_listen, None);
        assert_eq!(
            (s.region.as_str(), s.account_id.as_str()),
            ("us-east-1", "111122223333")
        );
        assert_eq!(s.sigv4_max_skew, Duration::from_secs(900));
        let mut input = with_dir();
        input.kms_listen = Some("tcp:127.0.0.1:7001".into());
        assert!(
            Settings::resolve(input.clone()).is_err(),
            "plain HTTP needs the flag"
        );
        input.insecure_loopback = Some(true);
        let s = Settings::resolve(input.clone()).unwrap();
        assert_eq!(s.kms_listen, Some("127.0.0.1:7001".parse().unwrap()));
        input.kms_listen = Some("unix:/x".into());
        assert!(Settings::resolve(input).is_err());
        for (region, account) in [
            ("US", "111122223333"),
            ("us-east-1", "12"),
            ("", "111122223333"),
        ] {
            let mut input = with_dir();
            input.region = Some(region.into());
            input.account_id = Some(account.into());
            assert!(Settings::resolve(input).is_err(), "{region} {account}");
        }
        let mut input = with_dir();
        input.sigv4_max_skew_secs = Some(59);
        assert!(Settings::resolve(input).is_err());
    }

    #[test]
    fn kdf_parameters_outside_their_bounds_are_validation_errors() {
        for (memory, iterations, lanes) in [
            (Some(4_294_967_295), None, None),
            (Some(1024), None, None),
            (None, Some(4_294_967_295), None),
            (None, Some(0), None),
            (None, None, Some(65)),
            (None, None, Some(0)),
        ] {
            let mut input = with_dir();
            input.kdf_memory_kib = memory;
            input.kdf_iterations = iterations;
            input.kdf_parallelism = lanes;
            let err = Settings::resolve(input).unwrap_err().to_string();
            assert!(err.starts_with("ValidationException: kdf_"), "{err}");
        }
        let mut input = with_dir();
        input.kdf_memory_kib = Some(8192);
        input.kdf_iterations = Some(100);
        input.kdf_parallelism = Some(64);
        assert!(Settings::resolve(input).is_ok());
    }

    #[test]
    fn listen_syntax() {
        assert!(Listen::parse("unix:").is_err());
        assert!(Listen::parse("http://x").is_err());
        assert_eq!(
            Listen::parse("unix:/s").unwrap(),
            Listen::Unix(PathBuf::from("/s"))
        );
    }
}
