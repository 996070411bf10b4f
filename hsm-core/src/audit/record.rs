//! One audit record in CloudTrail's shape for KMS events.
//!
//! A [`Draft`] is built from the [`Caller`] and the gate's request before
//! the call runs, completed with its outcome, and turned into JSON
//! ([`Draft::to_json`]) when it is appended to the chain.
//!
//! What goes in: identifiers (key ids and ARNs, alias names, user names,
//! access key ids), encryption contexts, algorithms, key specs, sizes and
//! the error code and message of a failure. What never goes in: plaintext,
//! data keys, private keys, messages that are signed or MACed, signatures,
//! PINs, passphrases, secret access keys. The gate's request carries none
//! of those, so nothing here can copy one by mistake.

use serde_json::{json, Map, Value};

use crate::error::Error;
use crate::identity::{Account, Caller, Principal};
use crate::model::KeyRecord;
use crate::types::UnixSeconds;

/// CloudTrail's record format version that these records follow.
pub const EVENT_VERSION: &str = "1.08";

/// The event names that change state (every other one is `readOnly`).
const MUTATING: &[&str] = &[
    "CreateKey",
    "UpdateKeyDescription",
    "EnableKey",
    "DisableKey",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
    "EnableKeyRotation",
    "DisableKeyRotation",
    "RotateKeyOnDemand",
    "CreateAlias",
    "UpdateAlias",
    "DeleteAlias",
    "TagResource",
    "UntagResource",
    "PutKeyPolicy",
    "CreateGrant",
    "RetireGrant",
    "RevokeGrant",
    "ImportKeyMaterial",
    "DeleteImportedKeyMaterial",
    "CreateUser",
    "DeleteUser",
    "CreateAccessKey",
    "DeleteAccessKey",
    "PruneAuditLog",
    "RotateKey",
    "DeleteKey",
    "C_GenerateKey",
    "C_GenerateKeyPair",
    "C_CreateObject",
    "C_CopyObject",
    "C_DestroyObject",
    "C_SetAttributeValue",
    "C_UnwrapKey",
    "C_DeriveKey",
];

/// `AwsApiCall` (a caller's request) or `AwsServiceEvent` (Tinfoil's own
/// background work).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// A call made by a caller through a front door.
    AwsApiCall,
    /// Background work: automatic rotation, the end of a deletion window.
    AwsServiceEvent,
}

/// A record before it is numbered and hashed.
#[derive(Debug, Clone)]
pub struct Draft {
    /// When the call was made.
    pub event_time: UnixSeconds,
    /// `kms.amazonaws.com`, `iam.amazonaws.com`, ...
    pub event_source: String,
    /// The operation, e.g. `Encrypt` or `C_Sign`.
    pub event_name: String,
    /// API call or service event.
    pub event_type: EventType,
    /// Who called.
    pub caller: Caller,
    /// What the call asked for (never a secret).
    pub request_parameters: Map<String, Value>,
    /// What it answered, where CloudTrail logs that.
    pub response_elements: Value,
    /// The KMS exception name and message of a failure.
    pub error: Option<(String, String)>,
    /// Whether the call cannot change state.
    pub read_only: bool,
    /// The ARNs of the keys it acted on.
    pub resources: Vec<String>,
    /// `serviceEventDetails` of a service event.
    pub service_event_details: Option<Value>,
    /// The record's canonical form made ahead (outside the store's
    /// lock), if it was.
    pub(crate) prepared: Option<super::chain::Unsealed>,
}

/// The event source and name of a gate action such as `kms:Encrypt`.
pub fn source_and_name(action: &str) -> (String, String) {
    let (service, name) = action.split_once(':').unwrap_or(("kms", action));
    let name = match name {
        "ReEncryptFrom" | "ReEncryptTo" => "ReEncrypt",
        other => other,
    };
    let source = match service {
        "kms" | "iam" | "cloudtrail" => format!("{service}.amazonaws.com"),
        other => format!("{other}.tinfoil.local"),
    };
    (source, name.to_string())
}

/// The request parameter a gate condition key is logged as.
fn parameter_name(condition: &str) -> String {
    let bare = condition.split_once(':').map_or(condition, |(_, n)| n);
    match bare {
        "RequestAlias" => "aliasName".to_string(),
        "ScheduleKeyDeletionPendingWindowInDays" => "pendingWindowInDays".to_string(),
        _ => {
            let mut chars = bare.chars();
            match chars.next() {
                Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        }
    }
}

impl Draft {
    /// An API call's draft: event name and source from `action`.
    pub fn api_call(caller: &Caller, action: &str, now: UnixSeconds) -> Draft {
        let (event_source, event_name) = source_and_name(action);
        Draft {
            event_time: now,
            read_only: !MUTATING.contains(&event_name.as_str()),
            event_source,
            event_name,
            event_type: EventType::AwsApiCall,
            caller: caller.clone(),
            request_parameters: Map::new(),
            response_elements: Value::Null,
            error: None,
            resources: Vec::new(),
            service_event_details: None,
            prepared: None,
        }
    }

    /// A service event on one key (`RotateKey`, `DeleteKey`).
    pub fn service_event(name: &str, key_arn: String, now: UnixSeconds) -> Draft {
        let mut draft = Draft::api_call(&Caller::service(), name, now);
        draft.event_type = EventType::AwsServiceEvent;
        draft.service_event_details = Some(json!({ "keyId": key_arn }));
        draft.resources.push(key_arn);
        draft
    }

    /// Adds one request parameter.
    pub fn param(&mut self, name: &str, value: Value) {
        self.request_parameters.insert(name.to_string(), value);
    }

    /// Adds a gate condition as its request parameter (numbers as numbers).
    pub fn condition(&mut self, condition: &str, value: &str) {
        let value = value
            .parse::<u64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(value.to_string()));
        self.param(&parameter_name(condition), value);
    }

    /// Notes a failure.
    pub fn fail(&mut self, error: &Error) {
        self.error = Some((error.kms_name().to_string(), error.to_string()));
        self.response_elements = Value::Null;
    }

    /// Notes the key a state change wrote: it is the resource when none was
    /// known, and the response elements CloudTrail logs come from it.
    pub(crate) fn written_key(&mut self, key: &KeyRecord) {
        let arn = key.arn();
        if self.resources.is_empty() {
            self.resources.push(arn.clone());
        }
        self.response_elements = match self.event_name.as_str() {
            "CreateKey" => json!({ "keyMetadata": key_metadata(key) }),
            "ScheduleKeyDeletion" => json!({
                "keyId": arn,
                "keyState": key.state.as_str(),
                "deletionDate": key.deletion_date.map(iso_time),
                "pendingWindowInDays": key.pending_window_days,
            }),
            "CancelKeyDeletion" | "RotateKeyOnDemand" => json!({ "keyId": arn }),
            _ => Value::Null,
        };
    }

    /// The user name CloudTrail's `Username` lookup attribute matches.
    pub fn username(&self) -> String {
        match &self.caller.principal {
            Principal::Root => "root".to_string(),
            Principal::User(name) => name.clone(),
            Principal::Service => "kms.amazonaws.com".to_string(),
        }
    }

    /// Makes the record's canonical form now (outside the store's lock),
    /// for [`Draft::take_unsealed`].
    pub(crate) fn prepare(&mut self, account: &Account) {
        self.prepared = Some(super::chain::Unsealed::of(&self.to_json(account)));
    }

    /// The record's canonical form: prepared ahead, else made now.
    pub(crate) fn take_unsealed(&mut self, account: &Account) -> super::chain::Unsealed {
        self.prepared
            .take()
            .unwrap_or_else(|| super::chain::Unsealed::of(&self.to_json(account)))
    }

    /// The record as JSON, without its chain member.
    pub fn to_json(&self, account: &Account) -> Value {
        let service = self.event_type == EventType::AwsServiceEvent;
        let user_identity = match &self.caller.principal {
            Principal::Service => json!({
                "accountId": account.account_id,
                "invokedBy": "kms.amazonaws.com",
            }),
            principal => {
                let mut identity = json!({
                    "type": if principal.is_administrator() { "Root" } else { "IAMUser" },
                    "principalId": match principal {
                        Principal::User(name) => format!("{}:user/{name}", account.account_id),
                        _ => account.account_id.clone(),
                    },
                    "arn": principal.arn_in(account),
                    "accountId": account.account_id,
                });
                if let Principal::User(name) = principal {
                    identity["userName"] = Value::String(name.clone());
                }
                if let Some(akid) = &self.caller.access_key_id {
                    identity["accessKeyId"] = Value::String(akid.clone());
                }
                identity
            }
        };
        let resources: Vec<Value> = self
            .resources
            .iter()
            .map(|arn| {
                json!({
                    "accountId": account.account_id,
                    "type": "AWS::KMS::Key",
                    "ARN": arn,
                })
            })
            .collect();
        let mut record = json!({
            "eventVersion": EVENT_VERSION,
            "userIdentity": user_identity,
            "eventTime": iso_time(self.event_time),
            "eventSource": self.event_source,
            "eventName": self.event_name,
            "awsRegion": account.region,
            "sourceIPAddress": if service { "kms.amazonaws.com".to_string() } else { self.caller.source.clone() },
            "userAgent": if service { Some("kms.amazonaws.com".to_string()) } else { self.caller.user_agent.clone() },
            "requestParameters": if self.request_parameters.is_empty() { Value::Null } else { Value::Object(self.request_parameters.clone()) },
            "responseElements": self.response_elements,
            "requestID": uuid::Uuid::new_v4().hyphenated().to_string(),
            "eventID": uuid::Uuid::new_v4().hyphenated().to_string(),
            "readOnly": self.read_only,
            "resources": resources,
            "eventType": if service { "AwsServiceEvent" } else { "AwsApiCall" },
            "managementEvent": true,
            "recipientAccountId": account.account_id,
            "eventCategory": "Management",
        });
        if let Some((code, message)) = &self.error {
            record["errorCode"] = Value::String(code.clone());
            record["errorMessage"] = Value::String(message.clone());
        }
        if let Some(details) = &self.service_event_details {
            record["serviceEventDetails"] = details.clone();
        }
        record
    }
}

/// `KeyMetadata` as CloudTrail logs it in CreateKey's response elements.
fn key_metadata(key: &KeyRecord) -> Value {
    let meta = crate::ops_keys::metadata(key);
    json!({
        "aWSAccountId": crate::identity::installed().account.account_id,
        "keyId": meta.key_id,
        "arn": meta.arn,
        "creationDate": iso_time(meta.creation_date),
        "enabled": meta.key_state == crate::types::KeyState::Enabled,
        "description": meta.description,
        "keyUsage": meta.key_usage.as_str(),
        "keyState": meta.key_state.as_str(),
        "origin": meta.origin.as_str(),
        "keyManager": "CUSTOMER",
        "customerMasterKeySpec": meta.key_spec.as_str(),
        "keySpec": meta.key_spec.as_str(),
        "encryptionAlgorithms": meta.encryption_algorithms.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "signingAlgorithms": meta.signing_algorithms.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "multiRegion": false,
    })
}

/// A Unix time as CloudTrail writes it: `2024-05-01T12:00:00Z`.
pub fn iso_time(t: UnixSeconds) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sources() {
        assert_eq!(
            source_and_name("kms:ReEncryptTo"),
            ("kms.amazonaws.com".into(), "ReEncrypt".into())
        );
        assert_eq!(
            source_and_name("pkcs11:C_Sign"),
            ("pkcs11.tinfoil.local".into(), "C_Sign".into())
        );
        assert_eq!(
            parameter_name("kms:EncryptionAlgorithm"),
            "encryptionAlgorithm"
        );
        assert_eq!(parameter_name("kms:RequestAlias"), "aliasName");
    }

    #[test]
    fn times_are_utc_iso() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_time(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn failures_carry_code_and_message() {
        let mut d = Draft::api_call(
            &Caller::new(Principal::User("bob".into()), "unix:uid=5,pid=6"),
            "kms:CreateKey",
            0,
        );
        d.fail(&Error::AccessDenied("no".into()));
        let v = d.to_json(&Account::default());
        assert_eq!(v["errorCode"], "AccessDeniedException");
        assert_eq!(v["readOnly"], false);
        assert_eq!(
            v["userIdentity"]["arn"],
            "arn:aws:iam::111122223333:user/bob"
        );
        assert_eq!(v["sourceIPAddress"], "unix:uid=5,pid=6");
    }
}

/// Parses a time as `lookup-events` takes it: Unix seconds, or RFC 3339
/// (`2024-05-01T12:00:00Z`, an offset, fractions ignored).
pub fn parse_time(text: &str) -> Option<UnixSeconds> {
    if let Ok(seconds) = text.trim().parse::<i64>() {
        return Some(seconds);
    }
    time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

#[cfg(test)]
mod time_tests {
    #[test]
    fn times_parse_both_ways() {
        assert_eq!(super::parse_time("1700000000"), Some(1_700_000_000));
        assert_eq!(
            super::parse_time("2023-11-14T22:13:20Z"),
            Some(1_700_000_000)
        );
        assert_eq!(
            super::parse_time("2023-11-14T23:13:20+01:00"),
            Some(1_700_000_000)
        );
        assert_eq!(super::parse_time("yesterday"), None);
    }
}
