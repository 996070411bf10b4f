//! Dispatch: `X-Amz-Target: TrentService.<Operation>` to one operation,
//! which parses and checks its JSON request on the async worker and
//! returns the job that calls hsm-core through the gate on the pool.
//! Every operation hsm-core has is here with botocore's names; custom key
//! stores, multi-Region keys and imported key material answer
//! UnsupportedOperationException.

use hsm_core::{self as core, Caller, Hsm};
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::{ApiError, Violations};
use super::shapes::{key_metadata, parse, required, Blob, Context};
use crate::service::Lane;

mod crypto;
mod grants;
mod keys;

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
        "CreateKey" => keys::create_key(body),
        "DescribeKey" => key_only(body, "DescribeKey", |g, k| {
            Ok(json!({"KeyMetadata": key_metadata(&g.describe_key(k)?)}))
        }),
        "ListKeys" => keys::list_keys(body),
        "UpdateKeyDescription" => keys::update_key_description(body),
        "EnableKey" => key_only(body, "EnableKey", |g, k| {
            g.enable_key(k)?;
            Ok(json!({}))
        }),
        "DisableKey" => key_only(body, "DisableKey", |g, k| {
            g.disable_key(k)?;
            Ok(json!({}))
        }),
        "ScheduleKeyDeletion" => keys::schedule_key_deletion(body),
        "CancelKeyDeletion" => key_only(body, "CancelKeyDeletion", |g, k| {
            Ok(json!({"KeyId": g.cancel_key_deletion(k)?}))
        }),
        "EnableKeyRotation" => keys::enable_key_rotation(body),
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
        "ListKeyRotations" => keys::list_key_rotations(body),
        "CreateAlias" => keys::alias_target(body, "CreateAlias"),
        "UpdateAlias" => keys::alias_target(body, "UpdateAlias"),
        "DeleteAlias" => keys::delete_alias(body),
        "ListAliases" => keys::list_aliases(body),
        "TagResource" => keys::tag_resource(body),
        "UntagResource" => keys::untag_resource(body),
        "ListResourceTags" => keys::list_resource_tags(body),
        "Encrypt" => crypto::encrypt(body),
        "Decrypt" => crypto::decrypt(body),
        "ReEncrypt" => crypto::re_encrypt(body),
        "GenerateDataKey" => crypto::generate_data_key(body, true),
        "GenerateDataKeyWithoutPlaintext" => crypto::generate_data_key(body, false),
        "GenerateDataKeyPair" => crypto::generate_data_key_pair(body, true),
        "GenerateDataKeyPairWithoutPlaintext" => crypto::generate_data_key_pair(body, false),
        "GenerateRandom" => crypto::generate_random(body),
        "Sign" => crypto::sign(body),
        "Verify" => crypto::verify(body),
        "GetPublicKey" => crypto::get_public_key(body),
        "Encapsulate" => crypto::encapsulate(body),
        "Decapsulate" => crypto::decapsulate(body),
        "GenerateMac" => crypto::generate_mac(body),
        "VerifyMac" => crypto::verify_mac(body),
        "GetKeyPolicy" => keys::get_key_policy(body),
        "ListKeyPolicies" => keys::list_key_policies(body),
        "PutKeyPolicy" => keys::put_key_policy(body),
        "CreateGrant" => grants::create_grant(body),
        "ListGrants" => grants::list_grants(body),
        "ListRetirableGrants" => grants::list_retirable_grants(body),
        "RetireGrant" => grants::retire_grant(body),
        "RevokeGrant" => grants::revoke_grant(body),
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

/// GrantTokens: at most 10 (the model's limit).
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
        Ok(op(
            tokened(hsm.gate(caller), &r.grant_tokens)?,
            s(&r.key_id),
        )?)
    })
}

/// The gate after checking the request's grant tokens: each must name a
/// live grant (grants take effect at once here, so a token adds no rights).
fn tokened<'a>(gate: core::Gate<'a>, tokens: &Option<Vec<String>>) -> core::Result<core::Gate<'a>> {
    if let Some(tokens) = tokens.as_deref().filter(|t| !t.is_empty()) {
        gate.check_grant_tokens(tokens)?;
    }
    Ok(gate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kms_api::shapes::b64;

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
