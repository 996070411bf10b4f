//! Key management operations: keys, rotation, deletion, aliases, tags
//! and key policies.

use hsm_core as core;
use serde::Deserialize;
use serde_json::json;

use super::{call, s, Call, KEY_ID_MAX};
use crate::kms_api::errors::{ApiError, Violations};
use crate::kms_api::shapes::{
    enum_member, key_metadata, number, page, paging, parse, required, tags, TagIn,
};
use crate::service::Lane;

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
    bypass_policy_lockout_safety_check: Option<bool>,
    tags: Option<Vec<TagIn>>,
    multi_region: Option<bool>,
    xks_key_id: Option<String>,
}

pub(super) fn create_key(body: &[u8]) -> Result<Call, ApiError> {
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
    let request = core::CreateKeyRequest {
        description: r.description.unwrap_or_default(),
        key_spec: spec.or(cmk_spec),
        key_usage: usage,
        tags,
        token: None,
    };
    let (policy, bypass) = (r.policy, r.bypass_policy_lockout_safety_check == Some(true));
    call("CreateKey", Lane::Slow, move |hsm, caller| {
        let m = hsm
            .gate(caller)
            .create_key_with_policy(request, policy.as_deref(), bypass)?;
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

pub(super) fn list_keys(body: &[u8]) -> Result<Call, ApiError> {
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

pub(super) fn list_key_rotations(body: &[u8]) -> Result<Call, ApiError> {
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

pub(super) fn list_aliases(body: &[u8]) -> Result<Call, ApiError> {
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

pub(super) fn list_resource_tags(body: &[u8]) -> Result<Call, ApiError> {
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

pub(super) fn update_key_description(body: &[u8]) -> Result<Call, ApiError> {
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

pub(super) fn schedule_key_deletion(body: &[u8]) -> Result<Call, ApiError> {
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

pub(super) fn enable_key_rotation(body: &[u8]) -> Result<Call, ApiError> {
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

pub(super) fn alias_target(body: &[u8], name: &'static str) -> Result<Call, ApiError> {
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

pub(super) fn delete_alias(body: &[u8]) -> Result<Call, ApiError> {
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

pub(super) fn tag_resource(body: &[u8]) -> Result<Call, ApiError> {
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

pub(super) fn untag_resource(body: &[u8]) -> Result<Call, ApiError> {
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
struct PolicyReq {
    key_id: Option<String>,
    policy_name: Option<String>,
    policy: Option<String>,
    bypass_policy_lockout_safety_check: Option<bool>,
    limit: Option<i64>,
    marker: Option<String>,
}

fn policy_checks(r: &PolicyReq, v: &mut Violations) {
    required(v, "keyId", &r.key_id, KEY_ID_MAX);
    if let Some(p) = &r.policy_name {
        v.length("policyName", Some(p), p.chars().count(), 1, 128);
    }
}

pub(super) fn get_key_policy(body: &[u8]) -> Result<Call, ApiError> {
    let r: PolicyReq = parse(body)?;
    let mut v = Violations::default();
    policy_checks(&r, &mut v);
    v.finish()?;
    call("GetKeyPolicy", Lane::Fast, move |hsm, caller| {
        let policy = hsm
            .gate(caller)
            .get_key_policy(s(&r.key_id), r.policy_name.as_deref())?;
        Ok(json!({
            "Policy": policy,
            "PolicyName": r.policy_name.as_deref().unwrap_or("default"),
        }))
    })
}

pub(super) fn put_key_policy(body: &[u8]) -> Result<Call, ApiError> {
    let r: PolicyReq = parse(body)?;
    let mut v = Violations::default();
    policy_checks(&r, &mut v);
    match &r.policy {
        None => v.null("policy"),
        Some(p) => v.length("policy", None, p.chars().count(), 1, 131_072),
    }
    v.finish()?;
    call("PutKeyPolicy", Lane::Fast, move |hsm, caller| {
        hsm.gate(caller).put_key_policy(
            s(&r.key_id),
            r.policy_name.as_deref(),
            s(&r.policy),
            r.bypass_policy_lockout_safety_check == Some(true),
        )?;
        Ok(json!({}))
    })
}

pub(super) fn list_key_policies(body: &[u8]) -> Result<Call, ApiError> {
    let r: PolicyReq = parse(body)?;
    let mut v = Violations::default();
    required(&mut v, "keyId", &r.key_id, KEY_ID_MAX);
    let limit = paging(&mut v, r.limit, &r.marker);
    v.finish()?;
    call("ListKeyPolicies", Lane::Fast, move |hsm, caller| {
        let p = hsm
            .gate(caller)
            .list_key_policies(s(&r.key_id), limit, r.marker.as_deref())?;
        Ok(page("PolicyNames", p, |name| json!(name)))
    })
}
