//! The `tinfoil.v1` gRPC contract: prost messages, the tonic clients and
//! servers of `KeyManagement` and `Pkcs11Backend`, and the encoded file
//! descriptor set (for server reflection and proto3 JSON rendering).
//! With the `unix-client` feature, [`unix::connect`] opens a channel to
//! tinfoild's Unix socket (the CLI and the PKCS#11 module share it). With
//! the `pkcs11` feature, [`pkcs11_wire`] converts the PKCS#11 backend's
//! types (hsm-core's) to and from the `Pkcs11Backend` messages.
//!
//! Messages that carry plaintext or key material print redacted `Debug`
//! output (see [`v1`] and `redact.rs`). Every message implements
//! `zeroize::Zeroize`, and every generated client and server encodes
//! through [`wipe::WipingCodec`], which wipes each message once encoded.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "pkcs11")]
pub mod pkcs11_wire;
mod redact;
#[cfg(feature = "unix-client")]
pub mod unix;
pub mod wipe;

/// Package `tinfoil.v1`, generated from `proto/tinfoil/v1/kms.proto` and
/// `pkcs11.proto`.
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

/// The fully qualified gRPC name of the PKCS#11 backend service.
pub const PKCS11_SERVICE_NAME: &str = "tinfoil.v1.Pkcs11Backend";

/// The `google.rpc.ErrorInfo` reason of errors of the PKCS#11 backend
/// service; its metadata [`CKR_METADATA_KEY`] holds the `CK_RV` in decimal.
pub const PKCS11_ERROR_REASON: &str = "Pkcs11Exception";

/// The ErrorInfo metadata key holding a PKCS#11 error's `CK_RV`.
pub const CKR_METADATA_KEY: &str = "ckr";

/// The `google.rpc.ErrorInfo` domain every tinfoil error carries.
pub const ERROR_DOMAIN: &str = "tinfoil.v1";
