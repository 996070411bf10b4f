//! Cryptographic operations: encryption, data keys, random bytes,
//! signatures and MACs.

use hsm_core as core;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{blob, call, ctx, grant_tokens, key_only, s, tokened, Call, KEY_ID_MAX};
use crate::kms_api::errors::{ApiError, Violations};
use crate::kms_api::shapes::{
    b64, enum_member, names, number, parse, required, required_blob, Blob, Context,
};
use crate::service::Lane;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EncryptReq {
    key_id: Option<String>,
    plaintext: Option<Blob>,
    encryption_context: Context,
    grant_tokens: Option<Vec<String>>,
    encryption_algorithm: Option<String>,
    dry_run: Option<bool>,
}

fn encryption_algorithm(
    v: &mut Violations,
    member: &str,
    value: &Option<String>,
) -> Option<core::EncryptionAlgorithm> {
    enum_member(
        v,
        member,
        value,
        core::EncryptionAlgorithm::ALL,
        core::EncryptionAlgorithm::parse,
    )
}

pub(super) fn encrypt(body: &[u8]) -> Result<Call, ApiError> {
    let r: EncryptReq = parse(body)?;
    let mut v = Violations::default();
    required(&mut v, "keyId", &r.key_id, KEY_ID_MAX);
    required_blob(&mut v, "plaintext", &r.plaintext, 4096);
    grant_tokens(&mut v, &r.grant_tokens);
    let algorithm = encryption_algorithm(&mut v, "encryptionAlgorithm", &r.encryption_algorithm);
    v.finish()?;
    call("Encrypt", Lane::Fast, move |hsm, caller| {
        let context = ctx(r.encryption_context);
        let (key, plaintext) = (s(&r.key_id), blob(&r.plaintext));
        let out = tokened(
            hsm.gate(caller).dry_run(r.dry_run == Some(true)),
            &r.grant_tokens,
        )?
        .encrypt(key, plaintext, &context, algorithm)?;
        Ok(json!({
            "CiphertextBlob": b64(&out.ciphertext_blob),
            "KeyId": out.key_id,
            "EncryptionAlgorithm": out.encryption_algorithm.as_str(),
        }))
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DecryptReq {
    ciphertext_blob: Option<Blob>,
    encryption_context: Context,
    grant_tokens: Option<Vec<String>>,
    key_id: Option<String>,
    encryption_algorithm: Option<String>,
    recipient: Option<Value>,
    dry_run: Option<bool>,
}

/// Recipient (Nitro Enclaves attestation) is not supported.
fn no_recipient(recipient: &Option<Value>) -> Result<(), ApiError> {
    if recipient.is_some() {
        return Err(ApiError::unsupported("Recipient (attested enclaves)"));
    }
    Ok(())
}

pub(super) fn decrypt(body: &[u8]) -> Result<Call, ApiError> {
    let r: DecryptReq = parse(body)?;
    let mut v = Violations::default();
    required_blob(&mut v, "ciphertextBlob", &r.ciphertext_blob, 6144);
    if let Some(k) = &r.key_id {
        v.length("keyId", Some(k), k.chars().count(), 1, KEY_ID_MAX);
    }
    grant_tokens(&mut v, &r.grant_tokens);
    let algorithm = encryption_algorithm(&mut v, "encryptionAlgorithm", &r.encryption_algorithm);
    v.finish()?;
    no_recipient(&r.recipient)?;
    call("Decrypt", Lane::Fast, move |hsm, caller| {
        let context = ctx(r.encryption_context);
        let (blob, key) = (blob(&r.ciphertext_blob), r.key_id.as_deref());
        let out = tokened(
            hsm.gate(caller).dry_run(r.dry_run == Some(true)),
            &r.grant_tokens,
        )?
        .decrypt(blob, &context, key, algorithm)?;
        Ok(json!({
            "KeyId": out.key_id,
            "Plaintext": b64(&out.plaintext),
            "EncryptionAlgorithm": out.encryption_algorithm.as_str(),
        }))
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReEncryptReq {
    ciphertext_blob: Option<Blob>,
    source_encryption_context: Context,
    source_key_id: Option<String>,
    destination_key_id: Option<String>,
    destination_encryption_context: Context,
    source_encryption_algorithm: Option<String>,
    destination_encryption_algorithm: Option<String>,
    grant_tokens: Option<Vec<String>>,
    dry_run: Option<bool>,
}

pub(super) fn re_encrypt(body: &[u8]) -> Result<Call, ApiError> {
    let r: ReEncryptReq = parse(body)?;
    let mut v = Violations::default();
    required_blob(&mut v, "ciphertextBlob", &r.ciphertext_blob, 6144);
    if let Some(k) = &r.source_key_id {
        v.length("sourceKeyId", Some(k), k.chars().count(), 1, KEY_ID_MAX);
    }
    required(
        &mut v,
        "destinationKeyId",
        &r.destination_key_id,
        KEY_ID_MAX,
    );
    grant_tokens(&mut v, &r.grant_tokens);
    let source = encryption_algorithm(
        &mut v,
        "sourceEncryptionAlgorithm",
        &r.source_encryption_algorithm,
    );
    let destination = encryption_algorithm(
        &mut v,
        "destinationEncryptionAlgorithm",
        &r.destination_encryption_algorithm,
    );
    v.finish()?;
    for algorithm in [source, destination].into_iter().flatten() {
        if algorithm != core::EncryptionAlgorithm::SymmetricDefault {
            return Err(ApiError::new(
                "UnsupportedOperationException",
                "ReEncrypt supports SYMMETRIC_DEFAULT only",
            ));
        }
    }
    call("ReEncrypt", Lane::Fast, move |hsm, caller| {
        let (source, destination) = (
            ctx(r.source_encryption_context),
            ctx(r.destination_encryption_context),
        );
        let (blob, from, to) = (
            blob(&r.ciphertext_blob),
            r.source_key_id.as_deref(),
            s(&r.destination_key_id),
        );
        let out = tokened(
            hsm.gate(caller).dry_run(r.dry_run == Some(true)),
            &r.grant_tokens,
        )?
        .re_encrypt(blob, &source, from, to, &destination)?;
        Ok(json!({
            "CiphertextBlob": b64(&out.ciphertext_blob),
            "SourceKeyId": out.source_key_id,
            "KeyId": out.key_id,
            "SourceEncryptionAlgorithm": out.source_encryption_algorithm.as_str(),
            "DestinationEncryptionAlgorithm": out.destination_encryption_algorithm.as_str(),
        }))
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DataKeyReq {
    key_id: Option<String>,
    encryption_context: Context,
    number_of_bytes: Option<i64>,
    key_spec: Option<String>,
    key_pair_spec: Option<String>,
    grant_tokens: Option<Vec<String>>,
    recipient: Option<Value>,
    dry_run: Option<bool>,
}

pub(super) fn generate_data_key(body: &[u8], with_plaintext: bool) -> Result<Call, ApiError> {
    let r: DataKeyReq = parse(body)?;
    let mut v = Violations::default();
    required(&mut v, "keyId", &r.key_id, KEY_ID_MAX);
    let bytes = number(&mut v, "numberOfBytes", r.number_of_bytes, 1, 1024);
    let spec = enum_member(
        &mut v,
        "keySpec",
        &r.key_spec,
        core::DataKeySpec::ALL,
        core::DataKeySpec::parse,
    );
    grant_tokens(&mut v, &r.grant_tokens);
    v.finish()?;
    no_recipient(&r.recipient)?;
    let name = if with_plaintext {
        "GenerateDataKey"
    } else {
        "GenerateDataKeyWithoutPlaintext"
    };
    call(name, Lane::Fast, move |hsm, caller| {
        let gate = tokened(
            hsm.gate(caller).dry_run(r.dry_run == Some(true)),
            &r.grant_tokens,
        )?;
        let context = ctx(r.encryption_context);
        let key = s(&r.key_id);
        let out = if with_plaintext {
            gate.generate_data_key(key, spec, bytes, &context)
        } else {
            gate.generate_data_key_without_plaintext(key, spec, bytes, &context)
        }?;
        let mut o = json!({
            "CiphertextBlob": b64(&out.ciphertext_blob),
            "KeyId": out.key_id,
        });
        if let Some(p) = &out.plaintext {
            o["Plaintext"] = json!(b64(p));
        }
        Ok(o)
    })
}

pub(super) fn generate_data_key_pair(body: &[u8], with_plaintext: bool) -> Result<Call, ApiError> {
    let r: DataKeyReq = parse(body)?;
    let mut v = Violations::default();
    required(&mut v, "keyId", &r.key_id, KEY_ID_MAX);
    if r.key_pair_spec.is_none() {
        v.null("keyPairSpec");
    }
    let spec = enum_member(
        &mut v,
        "keyPairSpec",
        &r.key_pair_spec,
        core::DataKeyPairSpec::ALL,
        core::DataKeyPairSpec::parse,
    );
    grant_tokens(&mut v, &r.grant_tokens);
    v.finish()?;
    no_recipient(&r.recipient)?;
    let Some(spec) = spec else {
        return Err(ApiError::new(
            "ValidationException",
            "KeyPairSpec is required",
        ));
    };
    let name = if with_plaintext {
        "GenerateDataKeyPair"
    } else {
        "GenerateDataKeyPairWithoutPlaintext"
    };
    call(name, Lane::Slow, move |hsm, caller| {
        let (key, context) = (s(&r.key_id), ctx(r.encryption_context));
        let out = tokened(
            hsm.gate(caller).dry_run(r.dry_run == Some(true)),
            &r.grant_tokens,
        )?
        .generate_data_key_pair(key, spec, &context, with_plaintext)?;
        let mut o = json!({
            "PrivateKeyCiphertextBlob": b64(&out.private_key_ciphertext_blob),
            "PublicKey": b64(&out.public_key),
            "KeyId": out.key_id,
            "KeyPairSpec": out.key_pair_spec.as_str(),
        });
        if let Some(p) = &out.private_key_plaintext {
            o["PrivateKeyPlaintext"] = json!(b64(p));
        }
        Ok(o)
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RandomReq {
    number_of_bytes: Option<i64>,
    custom_key_store_id: Option<String>,
    recipient: Option<Value>,
}

pub(super) fn generate_random(body: &[u8]) -> Result<Call, ApiError> {
    let r: RandomReq = parse(body)?;
    let mut v = Violations::default();
    if r.number_of_bytes.is_none() {
        v.null("numberOfBytes");
    }
    let n = number(&mut v, "numberOfBytes", r.number_of_bytes, 1, 1024);
    v.finish()?;
    no_recipient(&r.recipient)?;
    if r.custom_key_store_id.is_some() {
        return Err(ApiError::unsupported("a custom key store"));
    }
    let n = n.unwrap_or_default();
    call("GenerateRandom", Lane::Fast, move |hsm, caller| {
        let bytes = hsm.gate(caller).generate_random(n)?;
        Ok(json!({"Plaintext": b64(&bytes)}))
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SignReq {
    key_id: Option<String>,
    message: Option<Blob>,
    message_type: Option<String>,
    signature: Option<Blob>,
    signing_algorithm: Option<String>,
    grant_tokens: Option<Vec<String>>,
    dry_run: Option<bool>,
}

/// The checked members of Sign and Verify.
fn sign_checks(
    r: &SignReq,
    verify: bool,
) -> Result<(core::MessageType, core::SigningAlgorithm), ApiError> {
    let mut v = Violations::default();
    required(&mut v, "keyId", &r.key_id, KEY_ID_MAX);
    required_blob(&mut v, "message", &r.message, 4096);
    if verify {
        required_blob(&mut v, "signature", &r.signature, 6144);
    }
    if r.signing_algorithm.is_none() {
        v.null("signingAlgorithm");
    }
    let algorithm = enum_member(
        &mut v,
        "signingAlgorithm",
        &r.signing_algorithm,
        core::SigningAlgorithm::ALL,
        core::SigningAlgorithm::parse,
    );
    let message_type = enum_member(
        &mut v,
        "messageType",
        &r.message_type,
        core::MessageType::ALL,
        core::MessageType::parse,
    );
    grant_tokens(&mut v, &r.grant_tokens);
    v.finish()?;
    let algorithm = algorithm
        .ok_or_else(|| ApiError::new("ValidationException", "SigningAlgorithm is required"))?;
    Ok((message_type.unwrap_or(core::MessageType::Raw), algorithm))
}

pub(super) fn sign(body: &[u8]) -> Result<Call, ApiError> {
    let r: SignReq = parse(body)?;
    let (message_type, algorithm) = sign_checks(&r, false)?;
    call("Sign", Lane::Fast, move |hsm, caller| {
        let (key, message) = (s(&r.key_id), blob(&r.message));
        let out = tokened(
            hsm.gate(caller).dry_run(r.dry_run == Some(true)),
            &r.grant_tokens,
        )?
        .sign(key, message, message_type, algorithm)?;
        Ok(json!({
            "KeyId": out.key_id,
            "Signature": b64(&out.signature),
            "SigningAlgorithm": out.signing_algorithm.as_str(),
        }))
    })
}

pub(super) fn verify(body: &[u8]) -> Result<Call, ApiError> {
    let r: SignReq = parse(body)?;
    let (message_type, algorithm) = sign_checks(&r, true)?;
    call("Verify", Lane::Fast, move |hsm, caller| {
        let (key, message, signature) = (s(&r.key_id), blob(&r.message), blob(&r.signature));
        let out = tokened(
            hsm.gate(caller).dry_run(r.dry_run == Some(true)),
            &r.grant_tokens,
        )?
        .verify(key, message, message_type, signature, algorithm)?;
        Ok(json!({
            "KeyId": out.key_id,
            "SignatureValid": out.signature_valid,
            "SigningAlgorithm": out.signing_algorithm.as_str(),
        }))
    })
}

pub(super) fn get_public_key(body: &[u8]) -> Result<Call, ApiError> {
    key_only(body, "GetPublicKey", |g, k| {
        let out = g.get_public_key(k)?;
        let mut o = json!({
            "KeyId": out.key_id,
            "PublicKey": b64(&out.public_key),
            "CustomerMasterKeySpec": out.key_spec.as_str(),
            "KeySpec": out.key_spec.as_str(),
            "KeyUsage": out.key_usage.as_str(),
        });
        if !out.encryption_algorithms.is_empty() {
            o["EncryptionAlgorithms"] = names(&out.encryption_algorithms);
        }
        if !out.signing_algorithms.is_empty() {
            o["SigningAlgorithms"] = names(&out.signing_algorithms);
        }
        let encapsulation = out.key_usage.encapsulation_algorithms();
        if !encapsulation.is_empty() {
            o["EncapsulationAlgorithms"] = names(&encapsulation);
        }
        Ok(o)
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MacReq {
    key_id: Option<String>,
    message: Option<Blob>,
    mac_algorithm: Option<String>,
    mac: Option<Blob>,
    grant_tokens: Option<Vec<String>>,
    dry_run: Option<bool>,
}

fn mac_checks(r: &MacReq, verify: bool) -> Result<core::MacAlgorithm, ApiError> {
    let mut v = Violations::default();
    required(&mut v, "keyId", &r.key_id, KEY_ID_MAX);
    required_blob(&mut v, "message", &r.message, 4096);
    if verify {
        required_blob(&mut v, "mac", &r.mac, 6144);
    }
    if r.mac_algorithm.is_none() {
        v.null("macAlgorithm");
    }
    let algorithm = enum_member(
        &mut v,
        "macAlgorithm",
        &r.mac_algorithm,
        core::MacAlgorithm::ALL,
        core::MacAlgorithm::parse,
    );
    grant_tokens(&mut v, &r.grant_tokens);
    v.finish()?;
    algorithm.ok_or_else(|| ApiError::new("ValidationException", "MacAlgorithm is required"))
}

pub(super) fn generate_mac(body: &[u8]) -> Result<Call, ApiError> {
    let r: MacReq = parse(body)?;
    let algorithm = mac_checks(&r, false)?;
    call("GenerateMac", Lane::Fast, move |hsm, caller| {
        let (key, message) = (s(&r.key_id), blob(&r.message));
        let out = tokened(
            hsm.gate(caller).dry_run(r.dry_run == Some(true)),
            &r.grant_tokens,
        )?
        .generate_mac(key, message, algorithm)?;
        Ok(json!({
            "Mac": b64(&out.mac),
            "MacAlgorithm": out.mac_algorithm.as_str(),
            "KeyId": out.key_id,
        }))
    })
}

pub(super) fn verify_mac(body: &[u8]) -> Result<Call, ApiError> {
    let r: MacReq = parse(body)?;
    let algorithm = mac_checks(&r, true)?;
    call("VerifyMac", Lane::Fast, move |hsm, caller| {
        let (key, message, mac) = (s(&r.key_id), blob(&r.message), blob(&r.mac));
        let key_id = tokened(
            hsm.gate(caller).dry_run(r.dry_run == Some(true)),
            &r.grant_tokens,
        )?
        .verify_mac(key, message, mac, algorithm)?;
        Ok(json!({
            "KeyId": key_id,
            "MacValid": true,
            "MacAlgorithm": algorithm.as_str(),
        }))
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KemReq {
    key_id: Option<String>,
    shared_secret_ciphertext_blob: Option<Blob>,
    encapsulation_algorithm: Option<String>,
    grant_tokens: Option<Vec<String>>,
    dry_run: Option<bool>,
}

/// The checked members of Encapsulate and Decapsulate.
fn kem_checks(r: &KemReq, decapsulate: bool) -> Result<core::EncapsulationAlgorithm, ApiError> {
    let mut v = Violations::default();
    required(&mut v, "keyId", &r.key_id, KEY_ID_MAX);
    if decapsulate {
        required_blob(
            &mut v,
            "sharedSecretCiphertextBlob",
            &r.shared_secret_ciphertext_blob,
            6144,
        );
    }
    if r.encapsulation_algorithm.is_none() {
        v.null("encapsulationAlgorithm");
    }
    let algorithm = enum_member(
        &mut v,
        "encapsulationAlgorithm",
        &r.encapsulation_algorithm,
        core::EncapsulationAlgorithm::ALL,
        core::EncapsulationAlgorithm::parse,
    );
    grant_tokens(&mut v, &r.grant_tokens);
    v.finish()?;
    algorithm
        .ok_or_else(|| ApiError::new("ValidationException", "EncapsulationAlgorithm is required"))
}

pub(super) fn encapsulate(body: &[u8]) -> Result<Call, ApiError> {
    let r: KemReq = parse(body)?;
    let algorithm = kem_checks(&r, false)?;
    call("Encapsulate", Lane::Fast, move |hsm, caller| {
        let key = s(&r.key_id);
        let out = tokened(
            hsm.gate(caller).dry_run(r.dry_run == Some(true)),
            &r.grant_tokens,
        )?
        .encapsulate(key, algorithm)?;
        Ok(json!({
            "KeyId": out.key_id,
            "SharedSecret": b64(&out.shared_secret),
            "SharedSecretCiphertextBlob": b64(&out.shared_secret_ciphertext_blob),
            "EncapsulationAlgorithm": out.encapsulation_algorithm.as_str(),
        }))
    })
}

pub(super) fn decapsulate(body: &[u8]) -> Result<Call, ApiError> {
    let r: KemReq = parse(body)?;
    let algorithm = kem_checks(&r, true)?;
    call("Decapsulate", Lane::Fast, move |hsm, caller| {
        let (key, ciphertext) = (s(&r.key_id), blob(&r.shared_secret_ciphertext_blob));
        let out = tokened(
            hsm.gate(caller).dry_run(r.dry_run == Some(true)),
            &r.grant_tokens,
        )?
        .decapsulate(key, ciphertext, algorithm)?;
        Ok(json!({
            "KeyId": out.key_id,
            "SharedSecret": b64(&out.shared_secret),
            "EncapsulationAlgorithm": out.encapsulation_algorithm.as_str(),
        }))
    })
}
