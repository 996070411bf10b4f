//! Rendering any tinfoil.v1 response for people and scripts: JSON in the
//! shapes `aws kms` prints (through the embedded descriptor set) or a
//! readable text table. Bytes are base64 in both; `*_date` fields are Unix
//! seconds in JSON and UTC timestamps in text.

use std::fmt::Write as _;
use std::sync::OnceLock;

use base64::Engine as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, Kind, MessageDescriptor, ReflectMessage, Value,
};

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(tinfoil_proto::FILE_DESCRIPTOR_SET)
            .expect("the embedded descriptor set is valid (checked by tests)")
    })
}

/// `message` as a reflective message.
pub fn dynamic<M: prost::Message + prost::Name>(message: &M) -> DynamicMessage {
    let descriptor: MessageDescriptor = pool()
        .get_message_by_name(&M::full_name())
        .expect("every tinfoil.v1 message is in the descriptor set");
    DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .expect("a message re-decodes under its own descriptor")
}

/// The response as `aws kms` prints it, pretty-printed: PascalCase names
/// (the model's spelling), bytes in standard base64, dates as epoch-second
/// numbers, booleans and numbers always present (`"Enabled": false`),
/// lists of records always present, unset optional fields and empty lists
/// of names left out. Bytes fields written to a file instead are left out.
pub fn json(message: &DynamicMessage) -> String {
    serde_json::to_string_pretty(&kms_value(message))
        .expect("serialising a JSON value to memory does not fail")
}

/// The KMS name of a proto field: PascalCase, with the model's few
/// irregular spellings.
fn kms_name(field: &str) -> String {
    match field {
        "aws_account_id" => "AWSAccountId".to_string(),
        other => pascal(other),
    }
}

fn kms_scalar(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Bool(b) => J::Bool(*b),
        Value::I32(v) => J::from(*v),
        Value::I64(v) => J::from(*v),
        Value::U32(v) => J::from(*v),
        Value::U64(v) => J::from(*v),
        Value::F32(v) => J::from(f64::from(*v)),
        Value::F64(v) => J::from(*v),
        Value::String(s) => J::String(s.clone()),
        Value::Bytes(b) => J::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::EnumNumber(n) => J::from(*n),
        Value::Message(m) => kms_value(m),
        Value::List(items) => J::Array(items.iter().map(kms_scalar).collect()),
        Value::Map(map) => J::Object(
            map.iter()
                .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), kms_scalar(v)))
                .collect(),
        ),
    }
}

/// `message` as a KMS-shaped JSON object (see [`json`]).
pub fn kms_value(message: &DynamicMessage) -> serde_json::Value {
    let mut object = serde_json::Map::new();
    for field in message.descriptor().fields() {
        if field.supports_presence() && !message.has_field(&field) {
            continue;
        }
        let value = message.get_field(&field);
        let keep = match &*value {
            // Record lists (Keys, Aliases, Tags) are always present, as KMS
            // sends them; lists of names (SigningAlgorithms) only when set.
            Value::List(items) => !items.is_empty() || matches!(field.kind(), Kind::Message(_)),
            Value::Map(map) => !map.is_empty(),
            // KMS never answers an empty blob: empty means "went to a file".
            Value::Bytes(b) => !b.is_empty(),
            _ => true,
        };
        if keep {
            object.insert(kms_name(field.name()), kms_scalar(&value));
        }
    }
    if message.descriptor().name() == "KeyMetadata" {
        add_key_metadata_constants(&mut object);
    }
    serde_json::Value::Object(object)
}

/// The KeyMetadata members `aws kms describe-key` always shows that
/// follow from the others: the account (from the ARN), the key manager,
/// the legacy key spec name and the single-region flag.
fn add_key_metadata_constants(object: &mut serde_json::Map<String, serde_json::Value>) {
    let account = object
        .get("Arn")
        .and_then(|a| a.as_str())
        .and_then(|arn| arn.split(':').nth(4))
        .map(str::to_string);
    if let Some(account) = account {
        object
            .entry("AWSAccountId")
            .or_insert(serde_json::Value::String(account));
    }
    object
        .entry("KeyManager")
        .or_insert(serde_json::Value::String("CUSTOMER".into()));
    if let Some(spec) = object.get("KeySpec").cloned() {
        object.entry("CustomerMasterKeySpec").or_insert(spec);
    }
    object
        .entry("MultiRegion")
        .or_insert(serde_json::Value::Bool(false));
}

/// `snake_case` as `PascalCase`, the KMS spelling.
fn pascal(name: &str) -> String {
    name.split('_')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect()
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let rem = seconds.rem_euclid(86_400);
    // Days to civil date (proleptic Gregorian), after H. Hinnant.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn scalar(field_name: &str, value: &Value) -> String {
    match value {
        Value::Bytes(b) => base64::engine::general_purpose::STANDARD.encode(b),
        Value::String(s) => s.clone(),
        Value::I64(v) if field_name.ends_with("_date") => utc(*v),
        Value::List(items) => items
            .iter()
            .map(|v| scalar(field_name, v))
            .collect::<Vec<_>>()
            .join(","),
        Value::Map(map) => {
            let mut pairs: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}={}", k.as_str().unwrap_or_default(), scalar("", v)))
                .collect();
            pairs.sort();
            pairs.join(",")
        }
        other => other.to_string(),
    }
}

fn table(out: &mut String, title: &str, rows: &[DynamicMessage]) {
    let Some(first) = rows.first() else {
        let _ = writeln!(out, "{title}\t(none)");
        return;
    };
    let columns: Vec<_> = first
        .descriptor()
        .fields()
        .filter(|f| rows.iter().any(|r| r.has_field(f)))
        .collect();
    let mut cells: Vec<Vec<String>> = vec![columns.iter().map(|c| pascal(c.name())).collect()];
    for row in rows {
        cells.push(
            columns
                .iter()
                .map(|c| scalar(c.name(), &row.get_field(c)))
                .collect(),
        );
    }
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in cells {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
}

fn text_into(out: &mut String, message: &DynamicMessage, prefix: &str) {
    // Set fields, and lists of records even when empty (shown as "(none)").
    let fields: Vec<_> = message
        .descriptor()
        .fields()
        .filter(|f| message.has_field(f) || (f.is_list() && matches!(f.kind(), Kind::Message(_))))
        .collect();
    let width = fields
        .iter()
        .map(|f| prefix.len() + pascal(f.name()).len())
        .max()
        .unwrap_or(0);
    for field in fields {
        let value = message.get_field(&field);
        let name = format!("{prefix}{}", pascal(field.name()));
        match (&*value, field.kind()) {
            (Value::Message(inner), _) => text_into(out, inner, &format!("{name}.")),
            (Value::List(items), Kind::Message(_)) => {
                let rows: Vec<DynamicMessage> = items
                    .iter()
                    .filter_map(|v| v.as_message().cloned())
                    .collect();
                table(out, &name, &rows);
            }
            (v, _) => {
                let _ = writeln!(out, "{name:<width$}  {}", scalar(field.name(), v));
            }
        }
    }
}

/// A readable table: one `Field  value` line per set field, lists of
/// records as aligned columns.
pub fn text(message: &DynamicMessage) -> String {
    let mut out = String::new();
    text_into(&mut out, message, "");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinfoil_proto::v1 as pb;

    #[test]
    fn descriptor_set_decodes_and_holds_the_service() {
        assert!(pool()
            .get_service_by_name(tinfoil_proto::SERVICE_NAME)
            .is_some());
    }

    #[test]
    fn json_uses_kms_names_and_base64() {
        let m = pb::EncryptResponse {
            ciphertext_blob: vec![1, 2, 3],
            key_id: "k".into(),
            encryption_algorithm: "SYMMETRIC_DEFAULT".into(),
        };
        let j: serde_json::Value = serde_json::from_str(&json(&dynamic(&m))).unwrap();
        assert_eq!(j["CiphertextBlob"], "AQID");
        assert_eq!(j["KeyId"], "k");
        assert_eq!(j["EncryptionAlgorithm"], "SYMMETRIC_DEFAULT");
        assert_eq!(j.as_object().unwrap().len(), 3, "{j}");
    }

    #[test]
    fn json_key_metadata_has_numbers_explicit_false_and_no_unset_fields() {
        let m = pb::DescribeKeyResponse {
            key_metadata: Some(pb::KeyMetadata {
                key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
                arn: "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                    .into(),
                key_spec: "SYMMETRIC_DEFAULT".into(),
                key_state: "Disabled".into(),
                enabled: false,
                creation_date: 1_700_000_000,
                encryption_algorithms: vec!["SYMMETRIC_DEFAULT".into()],
                ..Default::default()
            }),
        };
        let j: serde_json::Value = serde_json::from_str(&json(&dynamic(&m))).unwrap();
        let meta = &j["KeyMetadata"];
        assert_eq!(meta["Enabled"], false);
        assert_eq!(meta["CreationDate"], 1_700_000_000);
        assert_eq!(meta["Description"], "");
        assert_eq!(meta["AWSAccountId"], "111122223333");
        assert_eq!(meta["KeyManager"], "CUSTOMER");
        assert_eq!(meta["CustomerMasterKeySpec"], "SYMMETRIC_DEFAULT");
        assert_eq!(meta["MultiRegion"], false);
        assert_eq!(meta["EncryptionAlgorithms"][0], "SYMMETRIC_DEFAULT");
        assert!(meta.get("DeletionDate").is_none(), "{meta}");
        assert!(meta.get("SigningAlgorithms").is_none(), "{meta}");
    }

    #[test]
    fn json_record_lists_are_always_present() {
        let j: serde_json::Value =
            serde_json::from_str(&json(&dynamic(&pb::ListKeysResponse::default()))).unwrap();
        assert_eq!(j["Keys"], serde_json::json!([]));
        assert_eq!(j["Truncated"], false);
        assert!(j.get("NextMarker").is_none(), "{j}");
    }

    #[test]
    fn text_shows_tables_and_dates() {
        let m = pb::ListAliasesResponse {
            aliases: vec![pb::AliasListEntry {
                alias_name: "alias/a".into(),
                target_key_id: "k1".into(),
                creation_date: 86_400,
                ..Default::default()
            }],
            next_marker: None,
            truncated: false,
        };
        let t = text(&dynamic(&m));
        assert!(t.contains("AliasName"), "{t}");
        assert!(t.contains("alias/a"), "{t}");
        assert!(t.contains("1970-01-02T00:00:00Z"), "{t}");
    }

    #[test]
    fn empty_lists_say_none() {
        let t = text(&dynamic(&pb::ListKeyRotationsResponse::default()));
        assert!(t.contains("Rotations\t(none)"), "{t}");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
    }
}
