//! `tinfoild`: unseals a Tinfoil store and serves it over gRPC.
//!
//! - `tinfoild init --data-dir DIR` creates a store.
//! - `tinfoild serve --data-dir DIR` serves it (Unix socket by default).
//! - `tinfoild init --store-url postgres://USER@HOST:PORT/DB` and
//!   `tinfoild serve --store-url ... --listen unix:PATH`: the same on a
//!   PostgreSQL database that several nodes serve at once.
//! - `tinfoild --dev` serves a throwaway store for trying things out.
//!
//! Exit codes: 0 after a clean stop (SIGTERM/SIGINT), 1 on errors
//! (3 for a wrong passphrase), 2 on usage errors.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use hsm_core::{Account, Caller, Clock, Hsm, HsmOptions, Principal, SystemClock};
use secrecy::ExposeSecret;
use secrecy::SecretString;
use tinfoil_daemon::config::{Listen, Settings, SettingsInput, StoreLocation};
use tinfoil_daemon::kms_api::KmsListener;
use tinfoil_daemon::passphrase::EnvSecrets;
use tinfoil_daemon::{client, clock::FileClock, passphrase, server, DaemonError};

/// The exit code for a passphrase that does not unseal the store.
const EXIT_WRONG_PASSPHRASE: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "tinfoild",
    version,
    about = "Tinfoil key-management daemon (AWS KMS semantics over gRPC)",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Serve a throwaway store in a temporary directory, unsealed with a
    /// random passphrase, on the dev socket (or --listen), and the AWS KMS
    /// endpoint on 127.0.0.1 (a free port) with an administrator access key
    /// printed as `export` lines to paste.
    #[arg(long)]
    dev: bool,
    /// With --dev: where to listen (default: the dev socket).
    #[arg(long, requires = "dev")]
    listen: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a new store in --data-dir or the --store-url database.
    Init(CommonArgs),
    /// Unseal the store in --data-dir or the --store-url database and serve it.
    Serve(CommonArgs),
}

#[derive(Debug, clap::Args)]
struct CommonArgs {
    /// A TOML configuration file; flags override its settings.
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: SettingsInput,
    /// TEST ONLY: read the daemon's clock (Unix seconds) from this file on
    /// every use, so tests can move time. Never use in production.
    #[arg(long, hide = true)]
    test_only_clock_file: Option<PathBuf>,
}

impl CommonArgs {
    fn resolve(self) -> Result<(Settings, Option<PathBuf>), DaemonError> {
        let input = match &self.config {
            Some(path) => self.settings.over(SettingsInput::from_file(path)?),
            None => self.settings,
        };
        Ok((Settings::resolve(input)?, self.test_only_clock_file))
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn options(settings: &Settings, clock_file: Option<PathBuf>) -> Result<HsmOptions, DaemonError> {
    let clock: Arc<dyn Clock> = match clock_file {
        Some(path) => {
            tracing::warn!(path = %path.display(), "TEST-ONLY clock file in use: time comes from a file");
            Arc::new(FileClock::new(path))
        }
        None => Arc::new(SystemClock),
    };
    Ok(HsmOptions {
        kdf: settings.kdf,
        clock,
        cache_capacity: settings.cache_capacity,
        account: Account::new(&settings.region, &settings.account_id)?,
    })
}

fn runtime(settings: &Settings) -> Result<tokio::runtime::Runtime, DaemonError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.worker_threads)
        .enable_all()
        .build()
        .map_err(|e| DaemonError::io("starting the runtime", e))
}

/// The PostgreSQL store's password: its file when configured, else what
/// was taken from PGPASSWORD, else none.
fn store_password(
    file: Option<&std::path::Path>,
    from_env: Option<SecretString>,
) -> Result<Option<SecretString>, DaemonError> {
    match file {
        Some(path) => passphrase::store_password_from_file(path).map(Some),
        None => Ok(from_env),
    }
}

fn init(args: CommonArgs, env: EnvSecrets) -> Result<(), DaemonError> {
    let (settings, clock_file) = args.resolve()?;
    init_logging(&settings.log_level);
    let hsm = match &settings.store {
        StoreLocation::Dir(data_dir) => {
            if Hsm::is_initialized(data_dir) {
                return Err(DaemonError::Config(format!(
                    "{} already holds a store",
                    data_dir.display()
                )));
            }
            let secret =
                passphrase::resolve(settings.passphrase_file.as_deref(), env.passphrase, true)?;
            let options = options(&settings, clock_file)?;
            if Hsm::is_incomplete(data_dir) {
                eprintln!(
                    "tinfoild: {} holds an incomplete store (an earlier init was interrupted); \
                     removing it and creating a new one",
                    data_dir.display()
                );
            }
            Hsm::init(data_dir, &secret, options)?
        }
        StoreLocation::Postgres { url, password_file } => {
            let password = store_password(password_file.as_deref(), env.store_password)?;
            let secret =
                passphrase::resolve(settings.passphrase_file.as_deref(), env.passphrase, true)?;
            let options = options(&settings, clock_file)?;
            Hsm::init_postgres(url.as_str(), password.as_ref(), &secret, options).map_err(|e| {
                match e {
                    hsm_core::Error::AlreadyExists(_) => DaemonError::Config(format!(
                        "the PostgreSQL database {url} already holds a Tinfoil store: init \
                         refused (serve it with `tinfoild serve --store-url`)"
                    )),
                    other => other.into(),
                }
            })?
        }
    };
    tracing::info!(store = %settings.store, "store created");
    println!("tinfoild: store created in {}", settings.store);
    // What auditors verify exported audit logs with (tinfoil verify-audit-log).
    println!("tinfoild: audit log public key: {}", hsm.audit_public_key());
    Ok(())
}

/// Set to 1 to commit audit records of read and crypto calls without
/// fsync (for benchmarks measuring what the per-call fsync costs).
const AUDIT_NO_FSYNC_VAR: &str = "TINFOIL_AUDIT_NO_FSYNC";

fn serve(args: CommonArgs, env: EnvSecrets) -> Result<(), DaemonError> {
    let (settings, clock_file) = args.resolve()?;
    init_logging(&settings.log_level);
    settings.listen()?;
    let hsm = match &settings.store {
        StoreLocation::Dir(data_dir) => {
            if !Hsm::is_initialized(data_dir) {
                return Err(DaemonError::Config(format!(
                    "no store in {}: run `tinfoild init --data-dir {}` first",
                    data_dir.display(),
                    data_dir.display()
                )));
            }
            let secret =
                passphrase::resolve(settings.passphrase_file.as_deref(), env.passphrase, false)?;
            let options = options(&settings, clock_file)?;
            Hsm::open(data_dir, &secret, options)?
        }
        StoreLocation::Postgres { url, password_file } => {
            let password = store_password(password_file.as_deref(), env.store_password)?;
            let secret =
                passphrase::resolve(settings.passphrase_file.as_deref(), env.passphrase, false)?;
            let options = options(&settings, clock_file)?;
            Hsm::open_postgres(url.as_str(), password.as_ref(), &secret, options).map_err(|e| {
                match e {
                    hsm_core::Error::StoreUnavailable(m)
                        if m.contains("holds no Tinfoil store") =>
                    {
                        DaemonError::Config(format!(
                            "the PostgreSQL database {url} holds no Tinfoil store: run \
                             `tinfoild init --store-url` first"
                        ))
                    }
                    other => other.into(),
                }
            })?
        }
    };
    let hsm = Arc::new(hsm);
    self_tests_passed()?;
    if let Some(actions) = &settings.user_account_actions {
        hsm.set_user_account_actions(actions);
    }
    if std::env::var_os(AUDIT_NO_FSYNC_VAR).is_some_and(|v| v == "1") {
        // Benchmarks only: the cost of fsyncing each call's audit record.
        hsm.set_audit_fsync(false);
        eprintln!(
            "tinfoild: warning: {AUDIT_NO_FSYNC_VAR}=1: audit records of calls that change \
             nothing are committed without fsync (a crash may lose the newest ones)"
        );
    }
    tracing::info!(store = %settings.store, "store unsealed");
    runtime(&settings)?.block_on(server::serve(hsm, &settings, server::termination_signal()))?;
    tracing::info!("stopped");
    Ok(())
}

/// Creates (or checks) the dev socket's directory: ours, mode 0700.
fn dev_socket_dir(dir: &std::path::Path, owner_uid: u32) -> Result<(), DaemonError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(dir)
            .map_err(|e| DaemonError::io(format!("creating {}", dir.display()), e))?;
    }
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| DaemonError::io(format!("checking {}", dir.display()), e))?;
    if !meta.is_dir() || meta.uid() != owner_uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(DaemonError::Config(format!(
            "{} must be a directory owned by you with mode 0700",
            dir.display()
        )));
    }
    Ok(())
}

fn dev(listen: Option<String>) -> Result<(), DaemonError> {
    use std::os::unix::fs::MetadataExt;
    init_logging("info");
    let store = tempfile::Builder::new()
        .prefix("tinfoil-dev-store-")
        .tempdir()
        .map_err(|e| DaemonError::io("creating a temporary directory", e))?;
    let owner_uid = std::fs::metadata(store.path())
        .map_err(|e| DaemonError::io("checking the temporary directory", e))?
        .uid();
    let listen = match listen {
        Some(text) => Listen::parse(&text)?,
        None => {
            dev_socket_dir(&client::dev_dir(), owner_uid)?;
            Listen::Unix(client::dev_socket_path())
        }
    };
    let Listen::Unix(socket) = &listen else {
        return Err(DaemonError::Config(
            "--dev listens on a Unix socket only".into(),
        ));
    };
    let data_dir = store.path().join("store");
    // The passphrase is 256 random bits that never leave this process, so
    // Argon2id's cost buys nothing here: light parameters start instantly.
    let settings = Settings::resolve(SettingsInput {
        data_dir: Some(data_dir.clone()),
        listen: Some(format!("unix:{}", socket.display())),
        kdf_memory_kib: Some(8192),
        kdf_iterations: Some(1),
        insecure_loopback: Some(true),
        ..Default::default()
    })?;
    let secret = random_passphrase()?;
    let hsm = Arc::new(Hsm::init(&data_dir, &secret, options(&settings, None)?)?);
    drop(secret);
    self_tests_passed()?;
    // The KMS endpoint on a free loopback port, plain HTTP (loopback only),
    // with an access key of the account's administrators.
    let kms = KmsListener::bind(([127, 0, 0, 1], 0).into(), None)?;
    let kms_addr = kms.local_addr()?;
    let admin = Caller::new(Principal::Root, "tinfoild --dev");
    let access_key = hsm.gate(&admin).create_access_key("root")?;
    let endpoint = format!("unix:{}", socket.display());
    // The banner is written in one go, and a closed standard output (a
    // reader that took the lines and left) must not stop the daemon, so
    // write errors are ignored (println! would panic).
    let banner = format!(
        "tinfoild --dev: throwaway store in {store} (deleted on exit)\n\
         socket: {socket}\n\
         try:    tinfoil --endpoint {endpoint} list-keys\n\
         AWS KMS endpoint, for the aws CLI and SDKs (paste these lines):\n\
         export AWS_ENDPOINT_URL_KMS=http://{kms_addr}\n\
         export AWS_ACCESS_KEY_ID={akid}\n\
         export AWS_SECRET_ACCESS_KEY={secret}\n\
         export AWS_REGION={region}\n\
         export AWS_DEFAULT_REGION={region}\n\
         stop with Ctrl-C\n",
        store = store.path().display(),
        socket = socket.display(),
        akid = access_key.info.access_key_id,
        secret = access_key.secret_access_key.expose_secret(),
        region = settings.region,
    );
    // AWS_REGION is what the AWS SDKs (Rust, Go, Java, JavaScript) and
    // awscli v2 read; botocore (awscli v1, boto3) reads only
    // AWS_DEFAULT_REGION, so both are printed.
    drop(access_key);
    {
        use std::io::Write;
        let banner = zeroize::Zeroizing::new(banner);
        let mut out = std::io::stdout();
        let _ = out.write_all(banner.as_bytes());
        let _ = out.flush();
    }
    let result = runtime(&settings)?.block_on(server::serve_with_kms(
        hsm,
        &settings,
        Some(kms),
        server::termination_signal(),
    ));
    drop(store);
    result
}

/// The self-tests' outcome (they ran while the store was unsealed: the
/// KEK derivation waited for them), logged with their cost.
fn self_tests_passed() -> Result<(), DaemonError> {
    let report = hsm_core::selftest::run()?;
    tracing::info!(
        tests = report.tests,
        tests_ms = report.elapsed.as_secs_f64() * 1e3,
        aws_lc_rng_seeding_ms = report.rng_seeding.as_secs_f64() * 1e3,
        "start-up self-tests passed (run beside the passphrase KDF)"
    );
    Ok(())
}

/// 32 random bytes, hex: never shown, lives only as long as the process.
fn random_passphrase() -> Result<SecretString, DaemonError> {
    use ring::rand::SecureRandom;
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    ring::rand::SystemRandom::new()
        .fill(bytes.as_mut())
        .map_err(|_| DaemonError::Passphrase("no system randomness".into()))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(SecretString::from(hex))
}

/// No core dumps (unless TINFOIL_ALLOW_CORE_DUMPS=1), secrets on locked
/// pages; says so on standard error when either is not in force.
fn protect_process() {
    let protection = hsm_core::secmem::protect_process();
    if !protection.dumps_forbidden {
        eprintln!(
            "tinfoild: warning: core dumps are allowed ({}=1 or prctl failed): \
             a core file would hold what the daemon held in memory",
            hsm_core::secmem::ALLOW_CORE_DUMPS_VAR
        );
    }
    if !protection.memory_lockable {
        eprintln!(
            "tinfoild: warning: cannot lock memory (RLIMIT_MEMLOCK exhausted): key material \
             may be written to swap; raise the limit (systemd: LimitMEMLOCK=) or use \
             encrypted swap"
        );
    }
}

fn main() -> ExitCode {
    tinfoil_daemon::install_crypto_provider();
    let cli = Cli::parse();
    // Take the passphrase out of the environment before any thread starts.
    let env = match passphrase::take_from_env() {
        Ok(secrets) => secrets,
        Err(err) => {
            eprintln!("tinfoild: {err}");
            return ExitCode::FAILURE;
        }
    };
    protect_process();
    // The start-up self-tests run on a thread of their own while the
    // passphrase KDF runs here; the KEK derivation waits for their outcome
    // before any key is unsealed (a failure refuses to start).
    hsm_core::selftest::start();
    let result = match cli.command {
        Some(Command::Init(args)) => init(args, env),
        Some(Command::Serve(args)) => serve(args, env),
        None if cli.dev => dev(cli.listen),
        None => {
            eprintln!("tinfoild: give a subcommand (init, serve) or --dev; see tinfoild --help");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(DaemonError::Core(hsm_core::Error::IncorrectPassphrase)) => {
            eprintln!(
                "tinfoild: IncorrectPassphraseException: the passphrase does not unseal this store"
            );
            ExitCode::from(EXIT_WRONG_PASSPHRASE)
        }
        Err(err) => {
            eprintln!("tinfoild: {err}");
            ExitCode::FAILURE
        }
    }
}
