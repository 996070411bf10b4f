//! The daemon's own error type (start-up, configuration, transport).
//! Errors of RPCs are `tonic::Status`, built once in [`crate::status`].

use std::path::PathBuf;

/// Everything that can stop tinfoild from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration file or a flag is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// Reading or writing a file or socket failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The passphrase source is missing or unsafe.
    #[error("passphrase: {0}")]
    Passphrase(String),
    /// A passphrase file that group or others can access.
    #[error("passphrase file {} has mode {mode:04o}: group and others must have no access (chmod 600 it)", path.display())]
    UnsafePassphraseFile {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// hsm-core refused to create or open the store.
    #[error("{}: {}", .0.kms_name(), .0)]
    Core(#[from] hsm_core::Error),
    /// The gRPC transport failed (bind, TLS, serve).
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

impl DaemonError {
    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        DaemonError::Io {
            context: context.into(),
            source,
        }
    }
}
