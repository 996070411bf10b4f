//! The `tinfoil.v1` gRPC contract: prost messages, the tonic client and
//! server of `KeyManagement`, and the encoded file descriptor set (for
//! server reflection and proto3 JSON rendering).
//!
//! Messages that carry plaintext or key material print redacted `Debug`
//! output (see [`v1`] and `redact.rs`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod redact;

/// Package `tinfoil.v1`, generated from `proto/tinfoil/v1/kms.proto`.
#[allow(
    missing_docs,
    clippy::doc_lazy_continuation,
    clippy::large_enum_variant
)]
pub mod v1 {
    tonic::include_proto!("tinfoil.v1");
}

/// The encoded `FileDescriptorSet` of `tinfoil.v1`, for server reflection
/// and for rendering messages as proto3 JSON.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tinfoil_v1_descriptor.bin"));

/// The fully qualified gRPC service name.
pub const SERVICE_NAME: &str = "tinfoil.v1.KeyManagement";

/// The `google.rpc.ErrorInfo` domain every tinfoil error carries.
pub const ERROR_DOMAIN: &str = "tinfoil.v1";
