//! Compiles proto/tinfoil/v1/kms.proto and pkcs11.proto with protox (pure
//! Rust, no system protoc) and generates the prost messages and tonic
//! clients and servers.

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
    ".tinfoil.v1.EncapsulateResponse",
    ".tinfoil.v1.DecapsulateResponse",
    ".tinfoil.v1.P11InitTokenRequest",
    ".tinfoil.v1.P11LoginRequest",
    ".tinfoil.v1.P11InitPinRequest",
    ".tinfoil.v1.P11SetPinRequest",
    ".tinfoil.v1.P11BytesResponse",
    ".tinfoil.v1.P11ImportSecretKeyRequest",
    ".tinfoil.v1.P11HmacRequest",
    ".tinfoil.v1.P11HmacVerifyRequest",
    ".tinfoil.v1.P11AesRequest",
    ".tinfoil.v1.P11RsaOaepRequest",
    ".tinfoil.v1.P11SignRequest",
    ".tinfoil.v1.P11VerifyRequest",
    ".tinfoil.v1.P11RsaPkcs1CryptRequest",
    ".tinfoil.v1.P11DeriveRequest",
    ".tinfoil.v1.P11DeriveResponse",
    ".tinfoil.v1.P11ImportPrivateKeyRequest",
    ".tinfoil.v1.P11CmacRequest",
    ".tinfoil.v1.P11CmacVerifyRequest",
    ".tinfoil.v1.P11EcdhDeriveRequest",
    ".tinfoil.v1.P11Chunk",
    ".tinfoil.v1.AccessKey",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/tinfoil/v1/kms.proto",
        "proto/tinfoil/v1/pkcs11.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(protos, ["proto"])?;
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
