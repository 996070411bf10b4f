//! Grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant,
//! RevokeGrant, with KMS's `GrantListEntry` shape.

use std::collections::BTreeMap;

use hsm_core::grants::{CreateGrantRequest, GrantConstraints, GrantListEntry, GrantOperation};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{call, grant_tokens, s, Call, KEY_ID_MAX};
use crate::kms_api::errors::{ApiError, Violations};
use crate::kms_api::shapes::{page, paging, parse, required};
use crate::service::Lane;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConstraintsIn {
    encryption_context_subset: Option<BTreeMap<String, String>>,
    encryption_context_equals: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateGrantReq {
    key_id: Option<String>,
    grantee_principal: Option<String>,
    retiring_principal: Option<String>,
    operations: Option<Vec<String>>,
    constraints: Option<ConstraintsIn>,
    grant_tokens: Option<Vec<String>>,
    name: Option<String>,
    dry_run: Option<bool>,
}

pub(super) fn create_grant(body: &[u8]) -> Result<Call, ApiError> {
    let r: CreateGrantReq = parse(body)?;
    let mut v = Violations::default();
    required(&mut v, "keyId", &r.key_id, KEY_ID_MAX);
    required(&mut v, "granteePrincipal", &r.grantee_principal, 256);
    if let Some(p) = &r.retiring_principal {
        v.length("retiringPrincipal", Some(p), p.chars().count(), 1, 256);
    }
    if let Some(n) = &r.name {
        v.length("name", Some(n), n.chars().count(), 1, 256);
    }
    grant_tokens(&mut v, &r.grant_tokens);
    let mut operations = Vec::new();
    match &r.operations {
        None => v.null("operations"),
        Some(names) => {
            for (i, name) in names.iter().enumerate() {
                match GrantOperation::parse(name) {
                    Ok(op) => operations.push(op),
                    Err(_) => {
                        let set: Vec<&str> =
                            GrantOperation::ALL.iter().map(|o| o.as_str()).collect();
                        v.add(
                            &format!("operations.{}.member", i + 1),
                            Some(name),
                            &format!("satisfy enum value set: [{}]", set.join(", ")),
                        );
                    }
                }
            }
        }
    }
    v.finish()?;
    let request = CreateGrantRequest {
        key_id: s(&r.key_id).to_string(),
        grantee_principal: s(&r.grantee_principal).to_string(),
        retiring_principal: r.retiring_principal,
        operations,
        constraints: r.constraints.map(|c| GrantConstraints {
            encryption_context_equals: c.encryption_context_equals,
            encryption_context_subset: c.encryption_context_subset,
        }),
        name: r.name,
        grant_tokens: r.grant_tokens.unwrap_or_default(),
    };
    call("CreateGrant", Lane::Fast, move |hsm, caller| {
        let out = hsm
            .gate(caller)
            .dry_run(r.dry_run == Some(true))
            .create_grant(request)?;
        Ok(json!({"GrantToken": out.grant_token, "GrantId": out.grant_id}))
    })
}

/// A `GrantListEntry`.
fn entry(g: GrantListEntry) -> Value {
    let mut o = Map::new();
    o.insert("KeyId".into(), json!(g.key_id));
    o.insert("GrantId".into(), json!(g.grant_id));
    if let Some(name) = g.name {
        o.insert("Name".into(), json!(name));
    }
    o.insert("CreationDate".into(), json!(g.creation_date));
    o.insert("GranteePrincipal".into(), json!(g.grantee_principal));
    if let Some(r) = g.retiring_principal {
        o.insert("RetiringPrincipal".into(), json!(r));
    }
    o.insert("IssuingAccount".into(), json!(g.issuing_account));
    o.insert(
        "Operations".into(),
        Value::Array(g.operations.iter().map(|op| json!(op.as_str())).collect()),
    );
    if let Some(c) = g.constraints {
        let mut m = Map::new();
        if let Some(x) = c.encryption_context_subset {
            m.insert("EncryptionContextSubset".into(), json!(x));
        }
        if let Some(x) = c.encryption_context_equals {
            m.insert("EncryptionContextEquals".into(), json!(x));
        }
        o.insert("Constraints".into(), Value::Object(m));
    }
    Value::Object(o)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListGrantsReq {
    key_id: Option<String>,
    grant_id: Option<String>,
    grantee_principal: Option<String>,
    retiring_principal: Option<String>,
    limit: Option<i64>,
    marker: Option<String>,
}

pub(super) fn list_grants(body: &[u8]) -> Result<Call, ApiError> {
    let r: ListGrantsReq = parse(body)?;
    let mut v = Violations::default();
    required(&mut v, "keyId", &r.key_id, KEY_ID_MAX);
    if let Some(g) = &r.grant_id {
        v.length("grantId", Some(g), g.chars().count(), 1, 128);
    }
    if let Some(p) = &r.grantee_principal {
        v.length("granteePrincipal", Some(p), p.chars().count(), 1, 256);
    }
    let limit = paging(&mut v, r.limit, &r.marker);
    v.finish()?;
    call("ListGrants", Lane::Fast, move |hsm, caller| {
        let p = hsm.gate(caller).list_grants(
            s(&r.key_id),
            r.grant_id.as_deref(),
            r.grantee_principal.as_deref(),
            limit,
            r.marker.as_deref(),
        )?;
        Ok(page("Grants", p, entry))
    })
}

pub(super) fn list_retirable_grants(body: &[u8]) -> Result<Call, ApiError> {
    let r: ListGrantsReq = parse(body)?;
    let mut v = Violations::default();
    required(&mut v, "retiringPrincipal", &r.retiring_principal, 256);
    let limit = paging(&mut v, r.limit, &r.marker);
    v.finish()?;
    call("ListRetirableGrants", Lane::Fast, move |hsm, caller| {
        let p = hsm.gate(caller).list_retirable_grants(
            s(&r.retiring_principal),
            limit,
            r.marker.as_deref(),
        )?;
        Ok(page("Grants", p, entry))
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RetireReq {
    grant_token: Option<String>,
    key_id: Option<String>,
    grant_id: Option<String>,
    dry_run: Option<bool>,
}

pub(super) fn retire_grant(body: &[u8]) -> Result<Call, ApiError> {
    let r: RetireReq = parse(body)?;
    let mut v = Violations::default();
    if let Some(t) = &r.grant_token {
        v.length("grantToken", None, t.chars().count(), 1, 8192);
    }
    if let Some(k) = &r.key_id {
        v.length("keyId", Some(k), k.chars().count(), 1, KEY_ID_MAX);
    }
    if let Some(g) = &r.grant_id {
        v.length("grantId", Some(g), g.chars().count(), 1, 128);
    }
    v.finish()?;
    call("RetireGrant", Lane::Fast, move |hsm, caller| {
        hsm.gate(caller)
            .dry_run(r.dry_run == Some(true))
            .retire_grant(
                r.grant_token.as_deref(),
                r.key_id.as_deref(),
                r.grant_id.as_deref(),
            )?;
        Ok(json!({}))
    })
}

pub(super) fn revoke_grant(body: &[u8]) -> Result<Call, ApiError> {
    let r: RetireReq = parse(body)?;
    let mut v = Violations::default();
    required(&mut v, "keyId", &r.key_id, KEY_ID_MAX);
    required(&mut v, "grantId", &r.grant_id, 128);
    v.finish()?;
    call("RevokeGrant", Lane::Fast, move |hsm, caller| {
        hsm.gate(caller)
            .dry_run(r.dry_run == Some(true))
            .revoke_grant(s(&r.key_id), s(&r.grant_id))?;
        Ok(json!({}))
    })
}
