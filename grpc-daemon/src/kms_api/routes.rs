//! Dispatch: `X-Amz-Target: TrentService.<Operation>` to one operation,
//! which parses and checks its JSON request on the async worker and
//! returns the job that calls hsm-core through the gate on the pool.
//! Every operation hsm-core has is here with botocore's names; custom key
//! stores, multi-Region keys, imported key material and (until key
//! policies land) grants and PutKeyPolicy answer UnsupportedOperationException.

use hsm_core::{self as core, Caller, Hsm};
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::{ApiError, Violations};
use super::shapes::{
    b64, default_key_policy, enum_member, key_metadata, names, number, page, paging, parse,
    required, required_blob, tags, Blob, Context, TagIn,
};
use crate::service::Lane;

/// The work of one request, run on the pool once the caller is known.
pub(crate) type Job = Box<dyn FnOnce(&Hsm, &Caller) -> Result<Value, ApiError> + Send + 'static>;

/// A parsed, checked request.
pub(crate) struct Call {
    /// The operation's name, for logs.
    pub name: &'static str,
    /// Where it runs.
    pub lane: Lane,
    /// What it does.
    pub job: Job,
}

fn call(
    name: &'static str,
    lane: Lane,
    job: impl FnOnce(&Hsm, &Caller) -> Result<Value, ApiError> + Send + 'static,
) -> Result<Call, ApiError> {
    Ok(Call {
        name,
        lane,
        job: Box::new(job),
    })
}

/// KMS operations Tinfoil answers with UnsupportedOperationException.
const UNSUPPORTED: &[&str] = &[
    "ConnectCustomKeyStore",
    "CreateCustomKeyStore",
    "DeleteCustomKeyStore",
    "DescribeCustomKeyStores",
    "DisconnectCustomKeyStore",
    "UpdateCustomKeyStore",
    "ReplicateKey",
    "UpdatePrimaryRegion",
    "GetParametersForImport",
    "ImportKeyMaterial",
    "DeleteImportedKeyMaterial",
    "DeriveSharedSecret",
    "PutKeyPolicy",
    "CreateGrant",
    "ListGrants",
    "ListRetirableGrants",
    "RetireGrant",
    "RevokeGrant",
];

/// The operation of `target` (`TrentService.<Op>`) over `body`.
pub(crate) fn route(target: Option<&str>, body: &[u8]) -> Result<Call, ApiError> {
    let Some(target) = target else {
        return Err(ApiError::unknown_operation(
            "the request has no X-Amz-Target header",
        ));
    };
    let op = target.strip_prefix("TrentService.").unwrap_or("");
    match op {
        "CreateKey" => create_key(body),
        "DescribeKey" => key_only(body, "DescribeKey", |g, k| {
            Ok(json!({"KeyMetadata": key_metadata(&g.describe_key(k)?)}))
        }),
        "ListKeys" => list_keys(body),
        "UpdateKeyDescription" => update_key_description(body),
        "EnableKey" => key_only(body, "EnableKey", |g, k| {
            g.enable_key(k)?;
            Ok(json!({}))
        }),
        "DisableKey" => key_only(body, "DisableKey", |g, k| {
            g.disable_key(k)?;
            Ok(json!({}))
        }),
        "ScheduleKeyDeletion" => schedule_key_deletion(body),
        "CancelKeyDeletion" => key_only(body, "CancelKeyDeletion", |g, k| {
            Ok(json!({"KeyId": g.cancel_key_deletion(k)?}))
        }),
        "EnableKeyRotation" => enable_key_rotation(body),
        "DisableKeyRotation" => key_only(body, "DisableKeyRotation", |g, k| {
            g.disable_key_rotation(k)?;
            Ok(json!({}))
        }),
        "GetKeyRotationStatus" => key_only(body, "GetKeyRotationStatus", |g, k| {
            let s = g.get_key_rotation_status(k)?;
            let mut out = json!({"KeyId": s.key_id, "KeyRotationEnabled": s.key_rotation_enabled});
            if let Some(days) = s.rotation_period_in_days {
                out["RotationPeriodInDays"] = json!(days);
            }
            if let Some(date) = s.next_rotation_date {
                out["NextRotationDate"] = json!(date);
            }
            if let Some(date) = s.on_demand_rotation_start_date {
                out["OnDemandRotationStartDate"] = json!(date);
            }
            Ok(out)
        }),
        "RotateKeyOnDemand" => key_only(body, "RotateKeyOnDemand", |g, k| {
            Ok(json!({"KeyId": g.rotate_key_on_demand(k)?}))
        }),
        "ListKeyRotations" => list_key_rotations(body),
        "CreateAlias" => alias_target(body, "CreateAlias"),
        "UpdateAlias" => alias_target(body, "UpdateAlias"),
        "DeleteAlias" => delete_alias(body),
        "ListAliases" => list_aliases(body),
        "TagResource" => tag_resource(body),
        "UntagResource" => untag_resource(body),
        "ListResourceTags" => list_resource_tags(body),
        "Encrypt" => encrypt(body),
        "Decrypt" => decrypt(body),
        "ReEncrypt" => re_encrypt(body),
        "GenerateDataKey" => generate_data_key(body, true),
        "GenerateDataKeyWithoutPlaintext" => generate_data_key(body, false),
        "GenerateDataKeyPair" => generate_data_key_pair(body, true),
        "GenerateDataKeyPairWithoutPlaintext" => generate_data_key_pair(body, false),
        "GenerateRandom" => generate_random(body),
        "Sign" => sign(body),
        "Verify" => verify(body),
        "GetPublicKey" => get_public_key(body),
        "GenerateMac" => generate_mac(body),
        "VerifyMac" => verify_mac(body),
        "GetKeyPolicy" => get_key_policy(body),
        "ListKeyPolicies" => list_key_policies(body),
        op if UNSUPPORTED.contains(&op) => Err(ApiError::unsupported(op)),
        _ => Err(ApiError::unknown_operation(format!(
            "{} is not an operation of this service",
            target.chars().take(128).collect::<String>()
        ))),
    }
}

/// The longest key reference KMS accepts.
const KEY_ID_MAX: usize = 2048;

/// A member checked present by the request's Violations.
fn s(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or_default()
}

fn blob(value: &Option<Blob>) -> &[u8] {
    value.as_ref().map(|b| &b.0[..]).unwrap_or_default()
}

fn ctx(context: Context) -> core::EncryptionContext {
    context.unwrap_or_default()
}

/// GrantTokens: at most 10 of 1 to 8192 characters; Tinfoil has no grants
/// yet, so they are checked and ignored, as KMS ignores unknown tokens.
fn grant_tokens(v: &mut Violations, tokens: &Option<Vec<String>>) {
    if let Some(tokens) = tokens {
        if tokens.len() > 10 {
            v.add("grantTokens", None, "have length less than or equal to 10");
        }
    }
}

/// A request with only `KeyId` (and GrantTokens).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyIdOnly {
    key_id: Option<String>,
    grant_tokens: Option<Vec<String>>,
}

fn key_only(
    body: &[u8],
    name: &'static str,
    op: impl FnOnce(core::Gate<'_>, &str) -> core::Result<Value> + Send + 'static,
) -> Result<Call, ApiError> {
    let r: KeyIdOnly = parse(body)?;
    let mut v = Violations::default();
    required(&mut v, "keyId", &r.key_id, KEY_ID_MAX);
    grant_tokens(&mut v, &r.grant_tokens);
    v.finish()?;
    call(name, Lane::Fast, move |hsm, caller| {
        Ok(op(hsm.gate(caller), s(&r.key_id))?)
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateKeyReq {
    policy: Option<String>,
    description: Option<String>,
    key_usage: Option<String>,
    customer_master_key_spec: Option<String>,
    key_spec: Option<String>,
    origin: Option<String>,
    custom_key_store_id: Option<String>,
    #[allow(dead_code)]
    bypass_policy_lockout_safety_check: Option<bool>,
    tags: Option<Vec<TagIn>>,
    multi_region: Option<bool>,
    xks_key_id: Option<String>,
}

fn create_key(body: &[u8]) -> Result<Call, ApiError> {
    let r: CreateKeyReq = parse(body)?;
    let mut v = Violations::default();
    if let Some(d) = &r.description {
        v.length("description", Some(d), d.chars().count(), 0, 8192);
    }
    if let Some(p) = &r.policy {
        v.length("policy", None, p.chars().count(), 1, 131_072);
    }
    let usage = enum_member(
        &mut v,
        "keyUsage",
        &r.key_usage,
        core::KeyUsage::ALL,
        core::KeyUsage::parse,
    );
    let spec = enum_member(
        &mut v,
        "keySpec",
        &r.key_spec,
        core::KeySpec::ALL,
        core::KeySpec::parse,
    );
    let cmk_spec = enum_member(
        &mut v,
        "customerMasterKeySpec",
        &r.customer_master_key_spec,
        core::KeySpec::ALL,
        core::KeySpec::parse,
    );
    let tags = tags(r.tags, &mut v);
    v.finish()?;
    if r.key_spec.is_some() && r.customer_master_key_spec.is_some() {
        return Err(ApiError::new(
            "ValidationException",
            "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. \
             CustomerMasterKeySpec is deprecated.",
        ));
    }
    if r.origin.as_deref().is_some_and(|o| o != "AWS_KMS") {
        return Err(ApiError::new(
            "UnsupportedOperationException",
            "Tinfoil creates keys with Origin AWS_KMS only",
        ));
    }
    if r.custom_key_store_id.is_some() || r.xks_key_id.is_some() {
        return Err(ApiError::unsupported("a custom key store"));
    }
    if r.multi_region == Some(true) {
        return Err(ApiError::unsupported("a multi-Region key"));
    }
    if r.policy.is_some() {
        return Err(ApiError::new(
            "UnsupportedOperationException",
            "key policies are not supported yet: create the key without Policy \
             (it gets the default key policy)",
        ));
    }
    let request = core::CreateKeyRequest {
        description: r.description.unwrap_or_default(),
        key_spec: spec.or(cmk_spec),
        key_usage: usage,
        tags,
        token: None,
    };
    call("CreateKey", Lane::Slow, move |hsm, caller| {
        let m = hsm.gate(caller).create_key(request)?;
        Ok(json!({"KeyMetadata": key_metadata(&m)}))
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListReq {
    key_id: Option<String>,
    limit: Option<i64>,
    marker: Option<String>,
}

fn list_keys(body: &[u8]) -> Result<Call, ApiError> {
    let r: ListReq = parse(body)?;
    let mut v = Violations::default();
    let limit = paging(&mut v, r.limit, &r.marker);
    v.finish()?;
    call("ListKeys", Lane::Fast, move |hsm, caller| {
        let p = hsm.gate(caller).list_keys(limit, r.marker.as_deref())?;
        Ok(page(
            "Keys",
            p,
            |k| json!({"KeyId": k.key_id, "KeyArn": k.arn}),
        ))
    })
}

fn list_key_rotations(body: &[u8]) -> Result<Call, ApiError> {
    let r: ListReq = parse(body)?;
    let mut v = Violations::default();
    required(&mut v, "keyId", &r.key_id, KEY_ID_MAX);
    let limit = paging(&mut v, r.limit, &r.marker);
    v.finish()?;
    call("ListKeyRotations", Lane::Fast, move |hsm, caller| {
        let p = hsm
            .gate(caller)
            .list_key_rotations(s(&r.key_id), limit, r.marker.as_deref())?;
        Ok(page("Rotations", p, |e| {
            json!({
                "KeyId": e.key_id,
                "RotationDate": e.rotation_date,
                "RotationType": e.rotation_type.as_str(),
            })
        }))
    })
}

fn list_aliases(body: &[u8]) -> Result<Call, ApiError> {
    let r: ListReq = parse(body)?;
    let mut v = Violations::default();
    if let Some(k) = &r.key_id {
        v.length("keyId", Some(k), k.chars().count(), 1, KEY_ID_MAX);
    }
    let limit = paging(&mut v, r.limit, &r.marker);
    v.finish()?;
    call("ListAliases", Lane::Fast, move |hsm, caller| {
        let p = hsm
            .gate(caller)
            .list_aliases(r.key_id.as_deref(), limit, r.marker.as_deref())?;
        Ok(page("Aliases", p, |a| {
            json!({
                "AliasName": a.alias_name,
                "AliasArn": a.alias_arn,
                "TargetKeyId": a.target_key_id,
                "CreationDate": a.creation_date,
                "LastUpdatedDate": a.last_updated_date,
            })
        }))
    })
}

fn list_resource_tags(body: &[u8]) -> Result<Call, ApiError> {
    let r: ListReq = parse(body)?;
    let mut v = Violations::default();
    required(&mut v, "keyId", &r.key_id, KEY_ID_MAX);
    if let Some(m) = &r.marker {
        v.length("marker", Some(m), m.chars().count(), 1, 1024);
    }
    let limit = number(&mut v, "limit", r.limit, 1, 50);
    v.finish()?;
    call("ListResourceTags", Lane::Fast, move |hsm, caller| {
        let p = hsm
            .gate(caller)
            .list_resource_tags(s(&r.key_id), limit, r.marker.as_deref())?;
        Ok(page(
            "Tags",
            p,
            |t| json!({"TagKey": t.tag_key, "TagValue": t.tag_value}),
        ))
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateDescriptionReq {
    key_id: Option<String>,
    description: Option<String>,
}

fn update_key_description(body: &[u8]) -> Result<Call, ApiError> {
    let r: UpdateDescriptionReq = parse(body)?;
    let mut v = Violations::default();
    required(&mut v, "keyId", &r.key_id, KEY_ID_MAX);
    match &r.description {
        None => v.null("description"),
        Some(d) => v.length("description", Some(d), d.chars().count(), 0, 8192),
    }
    v.finish()?;
    call("UpdateKeyDescription", Lane::Fast, move |hsm, caller| {
        hsm.gate(caller)
            .update_key_description(s(&r.key_id), s(&r.description))?;
        Ok(json!({}))
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ScheduleReq {
    key_id: Option<String>,
    pending_window_in_days: Option<i64>,
}

fn schedule_key_deletion(body: &[u8]) -> Result<Call, ApiError> {
    let r: ScheduleReq = parse(body)?;
    let mut v = Violations::default();
    required(&mut v, "keyId", &r.key_id, KEY_ID_MAX);
    let days = number(
        &mut v,
        "pendingWindowInDays",
        r.pending_window_in_days,
        1,
        365,
    );
    v.finish()?;
    call("ScheduleKeyDeletion", Lane::Fast, move |hsm, caller| {
        let d = hsm.gate(caller).schedule_key_deletion(s(&r.key_id), days)?;
        Ok(json!({
            "KeyId": d.key_id,
            "DeletionDate": d.deletion_date,
            "KeyState": d.key_state.as_str(),
            "PendingWindowInDays": d.pending_window_in_days,
        }))
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EnableRotationReq {
    key_id: Option<String>,
    rotation_period_in_days: Option<i64>,
}

fn enable_key_rotation(body: &[u8]) -> Result<Call, ApiError> {
    let r: EnableRotationReq = parse(body)?;
    let mut v = Violations::default();
    required(&mut v, "keyId", &r.key_id, KEY_ID_MAX);
    let days = number(
        &mut v,
        "rotationPeriodInDays",
        r.rotation_period_in_days,
        90,
        2560,
    );
    v.finish()?;
    call("EnableKeyRotation", Lane::Fast, move |hsm, caller| {
        hsm.gate(caller).enable_key_rotation(s(&r.key_id), days)?;
        Ok(json!({}))
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AliasReq {
    alias_name: Option<String>,
    target_key_id: Option<String>,
}

fn alias_target(body: &[u8], name: &'static str) -> Result<Call, ApiError> {
    let r: AliasReq = parse(body)?;
    let mut v = Violations::default();
    required(&mut v, "aliasName", &r.alias_name, 256);
    required(&mut v, "targetKeyId", &r.target_key_id, KEY_ID_MAX);
    v.finish()?;
    call(name, Lane::Fast, move |hsm, caller| {
        let gate = hsm.gate(caller);
        if name == "CreateAlias" {
            gate.create_alias(s(&r.alias_name), s(&r.target_key_id))?;
        } else {
            gate.update_alias(s(&r.alias_name), s(&r.target_key_id))?;
        }
        Ok(json!({}))
    })
}

fn delete_alias(body: &[u8]) -> Result<Call, ApiError> {
    let r: AliasReq = parse(body)?;
    let mut v = Violations::default();
    required(&mut v, "aliasName", &r.alias_name, 256);
    v.finish()?;
    call("DeleteAlias", Lane::Fast, move |hsm, caller| {
        hsm.gate(caller).delete_alias(s(&r.alias_name))?;
        Ok(json!({}))
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagReq {
    key_id: Option<String>,
    tags: Option<Vec<TagIn>>,
    tag_keys: Option<Vec<String>>,
}

fn tag_resource(body: &[u8]) -> Result<Call, ApiError> {
    let r: TagReq = parse(body)?;
    let mut v = Violations::default();
    required(&mut v, "keyId", &r.key_id, KEY_ID_MAX);
    if r.tags.is_none() {
        v.null("tags");
    }
    let key_id = r.key_id.clone();
    let tags = tags(r.tags, &mut v);
    v.finish()?;
    call("TagResource", Lane::Fast, move |hsm, caller| {
        hsm.gate(caller).tag_resource(s(&key_id), &tags)?;
        Ok(json!({}))
    })
}

fn untag_resource(body: &[u8]) -> Result<Call, ApiError> {
    let r: TagReq = parse(body)?;
    let mut v = Violations::default();
    required(&mut v, "keyId", &r.key_id, KEY_ID_MAX);
    if r.tag_keys.is_none() {
        v.null("tagKeys");
    }
    v.finish()?;
    call("UntagResource", Lane::Fast, move |hsm, caller| {
        let keys = r.tag_keys.unwrap_or_default();
        hsm.gate(caller).untag_resource(s(&r.key_id), &keys)?;
        Ok(json!({}))
    })
}

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

fn encrypt(body: &[u8]) -> Result<Call, ApiError> {
    let r: EncryptReq = parse(body)?;
    let mut v = Violations::default();
    required(&mut v, "keyId", &r.key_id, KEY_ID_MAX);
    required_blob(&mut v, "plaintext", &r.plaintext, 4096);
    grant_tokens(&mut v, &r.grant_tokens);
    let algorithm = encryption_algorithm(&mut v, "encryptionAlgorithm", &r.encryption_algorithm);
    v.finish()?;
    call("Encrypt", Lane::Fast, move |hsm, caller| {
        let out = hsm.gate(caller).dry_run(r.dry_run == Some(true)).encrypt(
            s(&r.key_id),
            blob(&r.plaintext),
            &ctx(r.encryption_context),
            algorithm,
        )?;
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

fn decrypt(body: &[u8]) -> Result<Call, ApiError> {
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
        let out = hsm.gate(caller).dry_run(r.dry_run == Some(true)).decrypt(
            blob(&r.ciphertext_blob),
            &ctx(r.encryption_context),
            r.key_id.as_deref(),
            algorithm,
        )?;
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

fn re_encrypt(body: &[u8]) -> Result<Call, ApiError> {
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
        let out = hsm
            .gate(caller)
            .dry_run(r.dry_run == Some(true))
            .re_encrypt(
                blob(&r.ciphertext_blob),
                &ctx(r.source_encryption_context),
                r.source_key_id.as_deref(),
                s(&r.destination_key_id),
                &ctx(r.destination_encryption_context),
            )?;
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

fn generate_data_key(body: &[u8], with_plaintext: bool) -> Result<Call, ApiError> {
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
        let gate = hsm.gate(caller).dry_run(r.dry_run == Some(true));
        let context = ctx(r.encryption_context);
        let out = if with_plaintext {
            gate.generate_data_key(s(&r.key_id), spec, bytes, &context)?
        } else {
            gate.generate_data_key_without_plaintext(s(&r.key_id), spec, bytes, &context)?
        };
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

fn generate_data_key_pair(body: &[u8], with_plaintext: bool) -> Result<Call, ApiError> {
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
        let out = hsm
            .gate(caller)
            .dry_run(r.dry_run == Some(true))
            .generate_data_key_pair(
                s(&r.key_id),
                spec,
                &ctx(r.encryption_context),
                with_plaintext,
            )?;
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

fn generate_random(body: &[u8]) -> Result<Call, ApiError> {
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

fn sign(body: &[u8]) -> Result<Call, ApiError> {
    let r: SignReq = parse(body)?;
    let (message_type, algorithm) = sign_checks(&r, false)?;
    call("Sign", Lane::Fast, move |hsm, caller| {
        let out = hsm.gate(caller).dry_run(r.dry_run == Some(true)).sign(
            s(&r.key_id),
            blob(&r.message),
            message_type,
            algorithm,
        )?;
        Ok(json!({
            "KeyId": out.key_id,
            "Signature": b64(&out.signature),
            "SigningAlgorithm": out.signing_algorithm.as_str(),
        }))
    })
}

fn verify(body: &[u8]) -> Result<Call, ApiError> {
    let r: SignReq = parse(body)?;
    let (message_type, algorithm) = sign_checks(&r, true)?;
    call("Verify", Lane::Fast, move |hsm, caller| {
        let out = hsm.gate(caller).dry_run(r.dry_run == Some(true)).verify(
            s(&r.key_id),
            blob(&r.message),
            message_type,
            blob(&r.signature),
            algorithm,
        )?;
        Ok(json!({
            "KeyId": out.key_id,
            "SignatureValid": out.signature_valid,
            "SigningAlgorithm": out.signing_algorithm.as_str(),
        }))
    })
}

fn get_public_key(body: &[u8]) -> Result<Call, ApiError> {
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

fn generate_mac(body: &[u8]) -> Result<Call, ApiError> {
    let r: MacReq = parse(body)?;
    let algorithm = mac_checks(&r, false)?;
    call("GenerateMac", Lane::Fast, move |hsm, caller| {
        let out = hsm
            .gate(caller)
            .dry_run(r.dry_run == Some(true))
            .generate_mac(s(&r.key_id), blob(&r.message), algorithm)?;
        Ok(json!({
            "Mac": b64(&out.mac),
            "MacAlgorithm": out.mac_algorithm.as_str(),
            "KeyId": out.key_id,
        }))
    })
}

fn verify_mac(body: &[u8]) -> Result<Call, ApiError> {
    let r: MacReq = parse(body)?;
    let algorithm = mac_checks(&r, true)?;
    call("VerifyMac", Lane::Fast, move |hsm, caller| {
        let key_id = hsm
            .gate(caller)
            .dry_run(r.dry_run == Some(true))
            .verify_mac(s(&r.key_id), blob(&r.message), blob(&r.mac), algorithm)?;
        Ok(json!({
            "KeyId": key_id,
            "MacValid": true,
            "MacAlgorithm": algorithm.as_str(),
        }))
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PolicyReq {
    key_id: Option<String>,
    policy_name: Option<String>,
    limit: Option<i64>,
    marker: Option<String>,
}

/// Until key policies land every key has AWS's default policy, named `default`.
fn get_key_policy(body: &[u8]) -> Result<Call, ApiError> {
    let r: PolicyReq = parse(body)?;
    let mut v = Violations::default();
    required(&mut v, "keyId", &r.key_id, KEY_ID_MAX);
    if let Some(p) = &r.policy_name {
        v.length("policyName", Some(p), p.chars().count(), 1, 128);
    }
    v.finish()?;
    call("GetKeyPolicy", Lane::Fast, move |hsm, caller| {
        let m = hsm.gate(caller).describe_key(s(&r.key_id))?;
        if r.policy_name.as_deref().is_some_and(|p| p != "default") {
            return Err(ApiError::new(
                "NotFoundException",
                "the key has one policy, named default",
            ));
        }
        let account = m.arn.split(':').nth(4).unwrap_or_default();
        Ok(json!({"Policy": default_key_policy(account), "PolicyName": "default"}))
    })
}

fn list_key_policies(body: &[u8]) -> Result<Call, ApiError> {
    let r: PolicyReq = parse(body)?;
    let mut v = Violations::default();
    required(&mut v, "keyId", &r.key_id, KEY_ID_MAX);
    paging(&mut v, r.limit, &r.marker);
    v.finish()?;
    call("ListKeyPolicies", Lane::Fast, move |hsm, caller| {
        hsm.gate(caller).describe_key(s(&r.key_id))?;
        Ok(json!({"PolicyNames": ["default"], "Truncated": false}))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(target: &str, body: &str) -> ApiError {
        match route(Some(target), body.as_bytes()) {
            Ok(_) => panic!("{target} {body} was accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn targets() {
        assert_eq!(
            err("TrentService.Nope", "{}").kind,
            "UnknownOperationException"
        );
        assert_eq!(err("Other.Encrypt", "{}").kind, "UnknownOperationException");
        assert!(route(None, b"{}").is_err());
        assert_eq!(
            err("TrentService.ReplicateKey", "{}").kind,
            "UnsupportedOperationException"
        );
        assert_eq!(
            err("TrentService.CreateCustomKeyStore", "{}").kind,
            "UnsupportedOperationException"
        );
        assert!(route(Some("TrentService.ListKeys"), b"").is_ok());
        assert!(route(
            Some("TrentService.Encrypt"),
            br#"{"KeyId":"k","Plaintext":"aGk="}"#
        )
        .is_ok());
    }

    #[test]
    fn model_constraints_are_validation_exceptions() {
        let big = b64(&[0u8; 4097]);
        let e = err(
            "TrentService.Encrypt",
            &format!(r#"{{"KeyId":"k","Plaintext":"{big}"}}"#),
        );
        assert_eq!(e.kind, "ValidationException");
        assert_eq!(
            e.message,
            "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: \
             Member must have length less than or equal to 4096"
        );
        let e = err("TrentService.Encrypt", r#"{"Plaintext":"aGk="}"#);
        assert!(e.message.contains("Value null at 'keyId'"), "{}", e.message);
        let e = err("TrentService.ListKeys", r#"{"Limit":1001}"#);
        assert!(e.message.contains("at 'limit'"), "{}", e.message);
        let e = err(
            "TrentService.GenerateDataKey",
            r#"{"KeyId":"k","KeySpec":"AES_512"}"#,
        );
        assert!(
            e.message.contains("enum value set: [AES_128, AES_256]"),
            "{}",
            e.message
        );
        let e = err("TrentService.Sign", r#"{"KeyId":"k","Message":"aGk="}"#);
        assert!(e.message.contains("at 'signingAlgorithm'"), "{}", e.message);
    }

    #[test]
    fn bad_bodies_are_serialization_exceptions() {
        for body in [
            "{",
            r#"{"KeyId":5,"Plaintext":"aGk="}"#,
            r#"{"KeyId":"k","Plaintext":"not base64!"}"#,
            r#"{"KeyId":"k","Plaintext":"aGk=","EncryptionContext":{"a":1}}"#,
            r#"{"KeyId":"k","Plaintext":"aGk=","DryRun":"yes"}"#,
        ] {
            assert_eq!(
                err("TrentService.Encrypt", body).kind,
                "SerializationException",
                "{body}"
            );
        }
    }

    #[test]
    fn unsupported_create_key_options() {
        for body in [
            r#"{"Origin":"EXTERNAL"}"#,
            r#"{"MultiRegion":true}"#,
            r#"{"CustomKeyStoreId":"cks-1"}"#,
        ] {
            assert_eq!(
                err("TrentService.CreateKey", body).kind,
                "UnsupportedOperationException",
                "{body}"
            );
        }
        assert_eq!(
            err(
                "TrentService.CreateKey",
                r#"{"KeySpec":"RSA_2048","CustomerMasterKeySpec":"RSA_2048"}"#
            )
            .kind,
            "ValidationException"
        );
    }
}
