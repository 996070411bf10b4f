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
    wipeable(&mut config, &fds);
    tonic_prost_build::configure()
        .build_transport(false)
        // Every generated client and server encodes through src/wipe.rs's
        // codec, which wipes each message once it is encoded.
        .codec_path("crate::wipe::WipingCodec")
        .btree_map(".")
        .skip_debug(REDACTED.iter().copied())
        .compile_fds_with_config(fds, config)?;
    Ok(())
}

/// `zeroize::Zeroize` for every message and oneof of the descriptor set:
/// `zeroize()` wipes every `bytes` and `string` field (contents first, then
/// cleared) and recurses into nested messages, repeated fields and oneofs.
/// Maps (encryption contexts, tag filters: never secret, and written to the
/// audit log anyway) are skipped; the derive has no impl for them.
fn wipeable(config: &mut prost_build::Config, fds: &prost_types::FileDescriptorSet) {
    const DERIVE: &str = "#[derive(::zeroize::Zeroize)]";
    fn visit(config: &mut prost_build::Config, path: &str, message: &prost_types::DescriptorProto) {
        for (index, oneof) in message.oneof_decl.iter().enumerate() {
            // proto3 `optional` fields sit in synthetic oneofs, generated
            // as plain `Option<T>` fields, not enums.
            let synthetic = message
                .field
                .iter()
                .any(|f| f.oneof_index == Some(index as i32) && f.proto3_optional.unwrap_or(false));
            if !synthetic {
                config.enum_attribute(format!("{path}.{}", oneof.name()), DERIVE);
            }
        }
        for field in &message.field {
            let is_map = field.type_name.as_deref().is_some_and(|type_name| {
                message.nested_type.iter().any(|nested| {
                    format!("{path}.{}", nested.name()) == type_name
                        && nested.options.as_ref().is_some_and(|o| o.map_entry())
                })
            });
            if is_map {
                config.field_attribute(format!("{path}.{}", field.name()), "#[zeroize(skip)]");
            }
        }
        for nested in &message.nested_type {
            if !nested.options.as_ref().is_some_and(|o| o.map_entry()) {
                visit(config, &format!("{path}.{}", nested.name()), nested);
            }
        }
    }
    // Every message (map entries are not generated as types).
    config.message_attribute(".", DERIVE);
    for file in &fds.file {
        for message in &file.message_type {
            visit(
                config,
                &format!(".{}.{}", file.package(), message.name()),
                message,
            );
        }
    }
}
