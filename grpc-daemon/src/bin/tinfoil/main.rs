//! `tinfoil`: the command-line client of tinfoild, shaped like `aws kms`.
//!
//! Exit codes: 0 on success, 1 on errors (the KMS exception name and
//! message on standard error), 2 on usage errors.

#![forbid(unsafe_code)]

mod args;
mod audit;
mod file_crypt;
mod io;
mod policies;
mod run;

use std::process::ExitCode;

use clap::Parser;
use prost_reflect::Value;
use tinfoil_daemon::client::{self, ClientTls};
use tinfoil_daemon::{render, status};
use tinfoil_proto::v1::key_management_client::KeyManagementClient;

use args::{Cli, Output};
use run::{Failure, Outcome};

/// The largest response accepted.
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

fn fail(text: impl std::fmt::Display) -> ExitCode {
    eprintln!("tinfoil: {text}");
    ExitCode::FAILURE
}

/// Writes the raw outputs, then prints what is left of the response
/// (unless a raw output went to standard output).
fn emit(outcome: Outcome, output: Output) -> Result<(), String> {
    let Outcome { mut message, files } = outcome;
    let mut stdout_taken = false;
    for (field, path) in &files {
        let value = message.get_field_by_name(field);
        let bytes = match value.as_deref() {
            Some(Value::Bytes(b)) => zeroize::Zeroizing::new(b.to_vec()),
            _ => zeroize::Zeroizing::new(Vec::new()),
        };
        io::write_output(path, &bytes)?;
        message.clear_field_by_name(field);
        stdout_taken |= path.as_os_str() == "-";
    }
    if !stdout_taken {
        match output {
            Output::Json => println!("{}", render::json(&message)),
            Output::Text => print!("{}", render::text(&message)),
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    tinfoil_daemon::install_crypto_provider();
    let cli = Cli::parse();
    let endpoint = client::default_endpoint(cli.endpoint.clone());
    let tls = ClientTls {
        ca_file: cli.ca_file.clone(),
        cert_file: cli.cert_file.clone(),
        key_file: cli.key_file.clone(),
    };
    let operation = run::operation_name(&cli.command);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    let command = match audit::AuditCommand::split(cli.command) {
        Ok(audit) => return audit::run(&runtime, &endpoint, &tls, cli.output, MAX_RESPONSE, audit),
        Err(other) => other,
    };
    let command = match file_crypt::FileCommand::split(command) {
        Ok(file) => return file_crypt::run(&runtime, &endpoint, &tls, file),
        Err(other) => *other,
    };
    let result = runtime.block_on(async {
        let channel = client::connect(&endpoint, &tls)
            .await
            .map_err(|e| Failure::Local(e.to_string()))?;
        let mut client = KeyManagementClient::new(channel).max_decoding_message_size(MAX_RESPONSE);
        run::run(&mut client, command).await
    });
    match result {
        Ok(outcome) => match emit(outcome, cli.output) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e),
        },
        Err(Failure::Local(e)) => fail(e),
        Err(Failure::Rpc(s)) => {
            let reason = status::reason_of(&s).unwrap_or_else(|| format!("{:?}", s.code()));
            eprintln!(
                "An error occurred ({reason}) when calling the {operation} operation: {}",
                s.message()
            );
            ExitCode::FAILURE
        }
    }
}
