//! The JSON shapes of the KMS operations, as botocore's model
//! (`kms/2014-11-01/service-2.json`) names them: PascalCase members, blobs
//! in standard base64, timestamps as epoch seconds, booleans always
//! present. Requests are parsed strictly (a wrong type is a
//! SerializationException); unknown members are ignored, as KMS does.
//! Every member is optional here and required ones are checked by the
//! operation, so a missing one is KMS's "Member must not be null"
//! ValidationException rather than a parse error.

use std::collections::BTreeMap;

use base64::Engine as _;
use hsm_core as core;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use super::errors::{ApiError, Violations};

/// A base64 blob of a request, wiped on drop.
#[derive(Default)]
pub struct Blob(pub Zeroizing<Vec<u8>>);

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Blob(<{} bytes>)", self.0.len())
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(|bytes| Blob(Zeroizing::new(bytes)))
            .map_err(|_| serde::de::Error::custom("a blob member is not valid base64"))
    }
}

/// Standard base64 of `bytes`.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Parses a request body: anything but a JSON object of the right member
/// types is a SerializationException. An empty body is `{}`, as botocore
/// sends for operations without input.
pub fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        // serde_json's messages name the member type and position; values
        // are echoed only for wrong-type scalars, never for blobs.
        ApiError::serialization(format!("the request body is not valid: {e}"))
    })
}

/// A tag as KMS sends it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagIn {
    /// 1 to 128 characters.
    pub tag_key: Option<String>,
    /// 0 to 256 characters.
    pub tag_value: Option<String>,
}

/// Tags of a request, checked and converted.
pub fn tags(tags: Option<Vec<TagIn>>, v: &mut Violations) -> Vec<core::Tag> {
    let tags = tags.unwrap_or_default();
    let mut out = Vec::with_capacity(tags.len());
    for (i, t) in tags.into_iter().enumerate() {
        let (Some(tag_key), Some(tag_value)) = (t.tag_key, t.tag_value) else {
            v.null(&format!("tags.{}.member.tagKey", i + 1));
            continue;
        };
        out.push(core::Tag { tag_key, tag_value });
    }
    out
}

/// The encryption context of a request (absent: empty).
pub type Context = Option<BTreeMap<String, String>>;

/// A required string member.
pub fn required<'a>(
    v: &mut Violations,
    member: &str,
    value: &'a Option<String>,
    max: usize,
) -> &'a str {
    match value {
        None => {
            v.null(member);
            ""
        }
        Some(s) => {
            v.length(member, Some(s), s.chars().count(), 1, max);
            s
        }
    }
}

/// A required blob member of `min..=max` bytes; never echoed.
pub fn required_blob<'a>(
    v: &mut Violations,
    member: &str,
    value: &'a Option<Blob>,
    max: usize,
) -> &'a [u8] {
    match value {
        None => {
            v.null(member);
            &[]
        }
        Some(b) => {
            v.length(member, None, b.0.len(), 1, max);
            &b.0
        }
    }
}

/// An optional KMS enum member, checked against its value set.
pub fn enum_member<T: Copy + std::fmt::Display>(
    v: &mut Violations,
    member: &str,
    value: &Option<String>,
    all: &[T],
    parse: fn(&str) -> core::Result<T>,
) -> Option<T> {
    let text = value.as_deref()?;
    match parse(text) {
        Ok(x) => Some(x),
        Err(_) => {
            let set: Vec<String> = all.iter().map(ToString::to_string).collect();
            v.add(
                member,
                Some(text),
                &format!("satisfy enum value set: [{}]", set.join(", ")),
            );
            None
        }
    }
}

/// An optional number member in `min..=max`, as u32.
pub fn number(
    v: &mut Violations,
    member: &str,
    value: Option<i64>,
    min: i64,
    max: i64,
) -> Option<u32> {
    let n = value?;
    v.range(member, n, min, max);
    u32::try_from(n).ok()
}

/// Limit (1 to 1000) and Marker (1 to 1024 characters) of a list call.
pub fn paging(v: &mut Violations, limit: Option<i64>, marker: &Option<String>) -> Option<u32> {
    if let Some(m) = marker {
        v.length("marker", Some(m), m.chars().count(), 1, 1024);
    }
    number(v, "limit", limit, 1, 1000)
}

/// The account id of a KMS ARN (`arn:aws:kms:REGION:ACCOUNT:key/ID`).
fn account_of(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or_default()
}

/// `KeyMetadata`, with every member KMS sends for a key of this kind.
pub fn key_metadata(m: &core::KeyMetadata) -> Value {
    let mut o = Map::new();
    o.insert("AWSAccountId".into(), json!(account_of(&m.arn)));
    o.insert("KeyId".into(), json!(m.key_id));
    o.insert("Arn".into(), json!(m.arn));
    o.insert("CreationDate".into(), json!(m.creation_date));
    o.insert(
        "Enabled".into(),
        json!(m.key_state == core::KeyState::Enabled),
    );
    o.insert("Description".into(), json!(m.description));
    o.insert("KeyUsage".into(), json!(m.key_usage.as_str()));
    o.insert("KeyState".into(), json!(m.key_state.as_str()));
    if let Some(date) = m.deletion_date {
        o.insert("DeletionDate".into(), json!(date));
    }
    if let Some(days) = m.pending_deletion_window_in_days {
        o.insert("PendingDeletionWindowInDays".into(), json!(days));
    }
    o.insert("Origin".into(), json!(m.origin.as_str()));
    if m.origin == core::Origin::External {
        o.insert(
            "ExpirationModel".into(),
            json!("KEY_MATERIAL_DOES_NOT_EXPIRE"),
        );
    }
    o.insert("KeyManager".into(), json!("CUSTOMER"));
    o.insert("CustomerMasterKeySpec".into(), json!(m.key_spec.as_str()));
    o.insert("KeySpec".into(), json!(m.key_spec.as_str()));
    if !m.encryption_algorithms.is_empty() {
        o.insert(
            "EncryptionAlgorithms".into(),
            names(&m.encryption_algorithms),
        );
    }
    if !m.signing_algorithms.is_empty() {
        o.insert("SigningAlgorithms".into(), names(&m.signing_algorithms));
    }
    if !m.mac_algorithms.is_empty() {
        o.insert("MacAlgorithms".into(), names(&m.mac_algorithms));
    }
    let encapsulation = m.key_usage.encapsulation_algorithms();
    if !encapsulation.is_empty() {
        o.insert("EncapsulationAlgorithms".into(), names(&encapsulation));
    }
    o.insert("MultiRegion".into(), json!(false));
    Value::Object(o)
}

/// A JSON list of KMS names.
pub fn names<T: std::fmt::Display>(items: &[T]) -> Value {
    Value::Array(items.iter().map(|x| json!(x.to_string())).collect())
}

/// A list page: `<member>: [...]`, `Truncated`, and `NextMarker` when truncated.
pub fn page<T>(member: &str, page: core::Page<T>, item: impl Fn(T) -> Value) -> Value {
    let mut o = Map::new();
    let truncated = page.truncated();
    o.insert(
        member.into(),
        Value::Array(page.items.into_iter().map(item).collect()),
    );
    if let Some(marker) = page.next_marker {
        o.insert("NextMarker".into(), json!(marker));
    }
    o.insert("Truncated".into(), json!(truncated));
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Sample {
        plaintext: Option<Blob>,
        limit: Option<i64>,
    }

    #[test]
    fn parse_errors_are_serialization_exceptions() {
        let ok: Sample = parse(br#"{"Plaintext":"aGk=","Limit":3,"Other":1}"#).unwrap();
        assert_eq!(&ok.plaintext.unwrap().0[..], b"hi");
        assert_eq!(ok.limit, Some(3));
        let empty: Sample = parse(b"").unwrap();
        assert!(empty.plaintext.is_none());
        for bad in [
            &br#"{"Plaintext":"***"}"#[..],
            br#"{"Limit":"3"}"#,
            br#"{"Limit":1.5}"#,
            br#"[1]"#,
            br#"{"Plaintext":"aGk="#,
            br#"{"Limit":1,"Limit":2}"#,
        ] {
            let err = parse::<Sample>(bad).unwrap_err();
            assert_eq!(
                err.kind,
                "SerializationException",
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn enum_members_list_the_value_set() {
        let mut v = Violations::default();
        let x = enum_member(
            &mut v,
            "keyUsage",
            &Some("NOPE".into()),
            core::KeyUsage::ALL,
            core::KeyUsage::parse,
        );
        assert!(x.is_none());
        let msg = v.finish().unwrap_err().message;
        assert!(msg.contains("Value 'NOPE' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum value set: [ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC, ENCAPSULATE_DECAPSULATE]"), "{msg}");
    }
}
