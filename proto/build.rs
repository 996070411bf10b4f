//! Compiles proto/tinfoil/v1/kms.proto with protox (pure Rust, no system
//! protoc) and generates the prost messages and tonic client and server.

use std::path::PathBuf;

/// Messages that carry plaintext, key material or messages to sign/MAC:
/// their `Debug` is written by hand in src/redact.rs and never shows bytes.
const REDACTED: &[&str] = &[
    ".tinfoil.v1.EncryptRequest",
    ".tinfoil.v1.DecryptResponse",
    ".tinfoil.v1.GenerateDataKeyResponse",
    ".tinfoil.v1.GenerateRandomResponse",
    ".tinfoil.v1.SignRequest",
    ".tinfoil.v1.VerifyRequest",
    ".tinfoil.v1.GenerateMacRequest",
    ".tinfoil.v1.VerifyMacRequest",
    ".tinfoil.v1.GenerateDataKeyPairResponse",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/tinfoil/v1/kms.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("tinfoil_v1_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    // Type names (`prost::Name`) let clients render any message as proto3 JSON.
    let mut config = prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_transport(false)
        .btree_map(".")
        .skip_debug(REDACTED.iter().copied())
        .compile_fds_with_config(fds, config)?;
    Ok(())
}
