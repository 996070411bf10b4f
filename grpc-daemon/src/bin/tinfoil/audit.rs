//! The audit log subcommands: `lookup-events` (shaped like `aws cloudtrail
//! lookup-events`), `get-audit-public-key`, `export-audit-log`,
//! `prune-audit-log` (daemon, administrators only) and `verify-audit-log`
//! (offline: no daemon, no passphrase; only the export and the public key).
//! `get-audit-public-key` and `export-audit-log` also take `--data-dir` and
//! `--passphrase-file` for a store no daemon serves (the PKCS#11 module's
//! embedded store).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use hsm_core::audit::export::ExportWriter;
use hsm_core::audit::record::parse_time;
use hsm_core::audit::verify_dir;
use tinfoil_daemon::client::{self, ClientTls};
use tinfoil_daemon::{render, status};
use tinfoil_proto::v1 as pb;
use tinfoil_proto::v1::key_management_client::KeyManagementClient;
use tonic::transport::Channel;

use crate::args::{Command, Output};

/// Audit log operations.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Look up audit events, newest first (administrators only).
    LookupEvents {
        /// Events at or after this time (Unix seconds or RFC 3339).
        #[arg(long, value_parser = time_arg)]
        start_time: Option<i64>,
        /// Events at or before this time (Unix seconds or RFC 3339).
        #[arg(long, value_parser = time_arg)]
        end_time: Option<i64>,
        /// AttributeKey=EventName|Username|ResourceName|AccessKeyId,AttributeValue=...
        #[arg(long, value_parser = lookup_attribute)]
        lookup_attributes: Vec<pb::LookupAttribute>,
        /// 1 to 50 (default 50).
        #[arg(long)]
        max_results: Option<u32>,
        /// The NextToken of the previous page.
        #[arg(long)]
        next_token: Option<String>,
    },
    /// Write the audit log's public key (a signed-note verifier key) to a file.
    GetAuditPublicKey {
        /// Where to write it (`-`: standard output).
        #[arg(long)]
        output_file: PathBuf,
        #[command(flatten)]
        store: LocalStore,
    },
    /// Export the audit log: JSON Lines record files, signed checkpoints,
    /// the public key and a manifest, into a new directory.
    ExportAuditLog {
        /// A directory that does not exist or is empty.
        #[arg(long)]
        output_dir: PathBuf,
        /// Start at this record (moved back to the record after the
        /// checkpoint before it, so the export is anchored).
        #[arg(long, default_value_t = 1)]
        from_sequence: u64,
        #[command(flatten)]
        store: LocalStore,
    },
    /// Verify an export offline: sequence, hashes, links, checkpoint
    /// signatures. Exit 0 and a summary, else exit 1 naming the first
    /// bad record or checkpoint.
    VerifyAuditLog {
        /// The export directory.
        #[arg(long)]
        input_dir: PathBuf,
        /// The public key file (from get-audit-public-key or tinfoild init).
        #[arg(long)]
        public_key_file: PathBuf,
    },
    /// Delete exported records before a sequence number (administrators
    /// only); the first kept record stays anchored on a signed checkpoint.
    PruneAuditLog {
        /// Delete records before this one.
        #[arg(long)]
        before_sequence: u64,
    },
}

/// A store opened in this process instead of asking tinfoild: an embedded
/// PKCS#11 store (`backend = "embedded"`), whose log no daemon serves. The
/// store must not be open elsewhere (close the application using it).
#[derive(Debug, Clone, clap::Args)]
pub struct LocalStore {
    /// The store's data directory (the module's `data_dir`).
    #[arg(long, requires = "passphrase_file")]
    data_dir: Option<PathBuf>,
    /// A file holding the store's passphrase (the module's
    /// `passphrase_file`).
    #[arg(long, requires = "data_dir")]
    passphrase_file: Option<PathBuf>,
}

impl LocalStore {
    /// The store, opened, when one was named.
    fn open(&self) -> Result<Option<hsm_core::Hsm>, Failure> {
        let (Some(data_dir), Some(passphrase_file)) = (&self.data_dir, &self.passphrase_file)
        else {
            return Ok(None);
        };
        let passphrase = tinfoil_daemon::passphrase::from_file(passphrase_file)
            .map_err(|e| Failure::Local(e.to_string()))?;
        hsm_core::Hsm::open(data_dir, &passphrase, hsm_core::HsmOptions::default())
            .map(Some)
            .map_err(|e| Failure::Local(format!("{}: {e}", data_dir.display())))
    }
}

/// The operator opening a store with its passphrase: an administrator.
fn local_caller() -> hsm_core::Caller {
    hsm_core::Caller::new(hsm_core::Principal::Root, "tinfoil (local store)")
}

/// The audit commands on a store opened here (`--data-dir`); `None` when
/// the command names no store (it goes to tinfoild).
fn local(command: &AuditCommand) -> Option<Result<(), Failure>> {
    let run = |store: &LocalStore, f: &dyn Fn(&hsm_core::Hsm) -> Result<(), Failure>| {
        store.open().transpose().map(|hsm| f(&hsm?))
    };
    match command {
        AuditCommand::GetAuditPublicKey { output_file, store } => run(store, &|hsm| {
            let key = hsm
                .gate(&local_caller())
                .get_audit_public_key()
                .map_err(|e| Failure::Local(e.to_string()))?;
            write_key(output_file, &key)
        }),
        AuditCommand::ExportAuditLog {
            output_dir,
            from_sequence,
            store,
        } => run(store, &|hsm| {
            let (records, checkpoints, to) = hsm
                .export_audit_log_to_dir(&local_caller(), output_dir, *from_sequence)
                .map_err(|e| Failure::Local(e.to_string()))?;
            println!(
                "exported {records} records and {checkpoints} checkpoints (through record {to}) to {}",
                output_dir.display()
            );
            Ok(())
        }),
        _ => None,
    }
}

/// Writes a public key to a file (`-`: standard output).
fn write_key(output_file: &std::path::Path, key: &str) -> Result<(), Failure> {
    let text = format!("{key}\n");
    if output_file.as_os_str() == "-" {
        print!("{text}");
        Ok(())
    } else {
        std::fs::write(output_file, text)
            .map_err(|e| Failure::Local(format!("{}: {e}", output_file.display())))
    }
}

fn time_arg(text: &str) -> Result<i64, String> {
    parse_time(text).ok_or_else(|| format!("{text:?} is neither Unix seconds nor an RFC 3339 time"))
}

/// `AttributeKey=K,AttributeValue=V` (the aws CLI's shorthand).
fn lookup_attribute(text: &str) -> Result<pb::LookupAttribute, String> {
    let mut key = None;
    let mut value = None;
    for part in text.splitn(2, ',') {
        match part.split_once('=') {
            Some(("AttributeKey", k)) => key = Some(k.to_string()),
            Some(("AttributeValue", v)) => value = Some(v.to_string()),
            _ => {}
        }
    }
    match (key, value) {
        (Some(attribute_key), Some(attribute_value)) => Ok(pb::LookupAttribute {
            attribute_key,
            attribute_value,
        }),
        _ => Err("expected AttributeKey=NAME,AttributeValue=VALUE".to_string()),
    }
}

impl AuditCommand {
    /// The audit command, or the command given back when it is another one.
    // Called once per process: the size of the command given back costs nothing.
    #[allow(clippy::result_large_err)]
    pub fn split(command: Command) -> Result<AuditCommand, Command> {
        match command {
            Command::Audit(a) => Ok(a),
            other => Err(other),
        }
    }
}

enum Failure {
    Local(String),
    Rpc(tonic::Status, &'static str),
}

fn rpc(op: &'static str) -> impl Fn(tonic::Status) -> Failure {
    move |s| Failure::Rpc(s, op)
}

/// Runs an audit command; prints errors like the other commands.
pub fn run(
    rt: &tokio::runtime::Runtime,
    endpoint: &str,
    tls: &ClientTls,
    output: Output,
    max_response: usize,
    command: AuditCommand,
) -> ExitCode {
    if let AuditCommand::VerifyAuditLog {
        input_dir,
        public_key_file,
    } = &command
    {
        return verify(input_dir, public_key_file);
    }
    let result = match local(&command) {
        Some(result) => result,
        None => rt.block_on(async {
            let channel = client::connect(endpoint, tls)
                .await
                .map_err(|e| Failure::Local(e.to_string()))?;
            let mut client =
                KeyManagementClient::new(channel).max_decoding_message_size(max_response);
            online(&mut client, output, command).await
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Local(e)) => {
            eprintln!("tinfoil: {e}");
            ExitCode::FAILURE
        }
        Err(Failure::Rpc(s, op)) => {
            let reason = status::reason_of(&s).unwrap_or_else(|| format!("{:?}", s.code()));
            eprintln!(
                "An error occurred ({reason}) when calling the {op} operation: {}",
                s.message()
            );
            ExitCode::FAILURE
        }
    }
}

fn verify(input_dir: &std::path::Path, public_key_file: &std::path::Path) -> ExitCode {
    let key = match std::fs::read_to_string(public_key_file) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("tinfoil: {}: {e}", public_key_file.display());
            return ExitCode::FAILURE;
        }
    };
    match verify_dir(input_dir, &key) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("verification failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print<M: prost::Message + prost::Name>(output: Output, message: &M) {
    let message = render::dynamic(message);
    match output {
        Output::Json => println!("{}", render::json(&message)),
        Output::Text => print!("{}", render::text(&message)),
    }
}

async fn online(
    client: &mut KeyManagementClient<Channel>,
    output: Output,
    command: AuditCommand,
) -> Result<(), Failure> {
    match command {
        AuditCommand::LookupEvents {
            start_time,
            end_time,
            lookup_attributes,
            max_results,
            next_token,
        } => {
            let page = client
                .lookup_events(pb::LookupEventsRequest {
                    start_time,
                    end_time,
                    lookup_attributes,
                    max_results,
                    next_token,
                })
                .await
                .map_err(rpc("LookupEvents"))?
                .into_inner();
            print(output, &page);
        }
        AuditCommand::GetAuditPublicKey { output_file, .. } => {
            let key = client
                .get_audit_public_key(pb::GetAuditPublicKeyRequest {})
                .await
                .map_err(rpc("GetAuditPublicKey"))?
                .into_inner()
                .public_key;
            write_key(&output_file, &key)?;
        }
        AuditCommand::ExportAuditLog {
            output_dir,
            from_sequence,
            ..
        } => {
            let mut writer = ExportWriter::create(&output_dir).map_err(Failure::Local)?;
            let mut from = from_sequence;
            let mut to = 0;
            let mut public_key;
            loop {
                let page = client
                    .export_audit_log(pb::ExportAuditLogRequest {
                        from_sequence: from,
                        to_sequence: to,
                    })
                    .await
                    .map_err(rpc("ExportAuditLog"))?
                    .into_inner();
                to = page.to_sequence;
                public_key = page.public_key;
                for c in &page.checkpoints {
                    writer
                        .checkpoint(c.tree_size, &c.note)
                        .map_err(Failure::Local)?;
                }
                for r in &page.records {
                    writer
                        .record(r.sequence, &r.record)
                        .map_err(Failure::Local)?;
                }
                match page.next_sequence {
                    Some(next) if next > from => from = next,
                    _ => break,
                }
            }
            let origin = public_key.split('+').next().unwrap_or_default().to_string();
            let (records, checkpoints) = writer
                .finish(&public_key, &origin)
                .map_err(Failure::Local)?;
            client
                .confirm_audit_export(pb::ConfirmAuditExportRequest {
                    through_sequence: to,
                })
                .await
                .map_err(rpc("ConfirmAuditExport"))?;
            println!(
                "exported {records} records and {checkpoints} checkpoints (through record {to}) to {}",
                output_dir.display()
            );
        }
        AuditCommand::PruneAuditLog { before_sequence } => {
            let outcome = client
                .prune_audit_log(pb::PruneAuditLogRequest { before_sequence })
                .await
                .map_err(rpc("PruneAuditLog"))?
                .into_inner();
            print(output, &outcome);
        }
        AuditCommand::VerifyAuditLog { .. } => unreachable!("handled offline above"),
    }
    Ok(())
}
