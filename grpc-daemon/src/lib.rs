//! tinfoild, the gRPC front end of hsm-core, and the pieces the `tinfoil`
//! CLI and the benchmark share with it.
//!
//! - [`service`]: the `tinfoil.v1.KeyManagement` implementation over [`hsm_core::Hsm`],
//!   every call on the blocking pool.
//! - [`pkcs11_service`]: `tinfoil.v1.Pkcs11Backend`, the PKCS#11 module's
//!   `daemon` backend, over the same store and machinery.
//! - [`status`]: the one mapping of hsm-core errors to gRPC statuses.
//! - [`server`]: listeners (Unix socket, TLS or loopback TCP), health,
//!   reflection, request limits, background ticks and graceful shutdown.
//! - [`kms_api`]: the AWS KMS JSON 1.1 endpoint (HTTP/1.1, SigV4) over the same machinery.
//! - [`pool`]: the fixed thread pool for fast hsm-core calls.
//! - [`spin`]: busy polling between the calls of a busy client.
//! - [`config`], [`passphrase`], [`clock`]: daemon settings and secrets.
//! - [`client`]: connecting to an endpoint and reading error details.
//! - [`render`]: proto3 JSON and text rendering of any response.
//! - [`esdk`]: the AWS Encryption SDK message format (`tinfoil encrypt-file`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod clock;
pub mod config;
pub mod connection;
mod convert;
pub mod error;
pub mod esdk;
pub mod kms_api;
pub mod passphrase;
pub mod pkcs11_service;
pub mod pool;
pub mod reflection;
pub mod render;
pub mod server;
pub mod service;
pub mod spin;
pub mod status;

pub use error::DaemonError;

/// Makes ring rustls's process-wide crypto provider (the one Tinfoil's TLS
/// uses). rustls picks one by itself only when exactly one provider feature
/// is enabled in the build; a workspace build that also compiles the AWS
/// SDK test clients enables aws-lc-rs's too, and then TLS set-up panics
/// ("Could not automatically determine the process-level CryptoProvider").
/// Idempotent; every binary and TLS entry point calls it.
pub fn install_crypto_provider() {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
}
