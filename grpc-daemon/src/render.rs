//! Rendering any tinfoil.v1 response for people and scripts: proto3 JSON
//! (through the embedded descriptor set) or a readable text table. Bytes
//! are base64 in both; `*_date` fields are Unix seconds in JSON and UTC
//! timestamps in text.

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

/// Proto3 JSON, pretty-printed.
pub fn json(message: &DynamicMessage) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::pretty(&mut out);
    message
        .serialize_with_options(&mut ser, &prost_reflect::SerializeOptions::new())
        .expect("serialising to memory does not fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
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
    fn json_uses_proto3_names_and_base64() {
        let m = pb::EncryptResponse {
            ciphertext_blob: vec![1, 2, 3],
            key_id: "k".into(),
            encryption_algorithm: "SYMMETRIC_DEFAULT".into(),
        };
        let j: serde_json::Value = serde_json::from_str(&json(&dynamic(&m))).unwrap();
        assert_eq!(j["ciphertextBlob"], "AQID");
        assert_eq!(j["keyId"], "k");
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
