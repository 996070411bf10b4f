//! The hash chain: every record names its sequence number and the hash of
//! the record before it, and carries its own hash.
//!
//! # Canonical form
//!
//! A record is a JSON object whose member `tinfoil` holds
//! `{"sequence": N, "previousHash": "<hex>", "hash": "<hex>"}`. Its hash is
//!
//! ```text
//! SHA-256( "tinfoil-audit-record-v1\n" || canonical(record without tinfoil.hash) )
//! ```
//!
//! where `canonical` is the JSON text with object members sorted by key
//! (Unicode code point order), no whitespace between tokens, strings
//! escaped minimally (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other
//! control characters as `\u00xx` in lower-case hex, everything else as
//! UTF-8) and integers in plain decimal (records hold no fractions). This
//! is what `serde_json` writes for a sorted map, and what Python's
//! `json.dumps(record, sort_keys=True, separators=(",", ":"),
//! ensure_ascii=False)` writes, so an auditor can recompute a hash without
//! Tinfoil. Hashes are written as 64 lower-case hex digits; the first
//! record's `previousHash` is 64 zeros.

use ring::digest::{digest, SHA256};
use serde_json::Value;

/// The domain separator in front of every record's canonical form.
pub const RECORD_HASH_PREFIX: &[u8] = b"tinfoil-audit-record-v1\n";

/// A SHA-256 value.
pub type Hash = [u8; 32];

/// The `previousHash` of the first record.
pub const ZERO_HASH: Hash = [0u8; 32];

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// A 32-byte hash from 64 hex digits (either case), or `None`.
pub fn hash_from_hex(text: &str) -> Option<Hash> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        out[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(out)
}

/// The hash of a record (a JSON object), ignoring any `tinfoil.hash` it
/// carries. `None` when `record` is not an object.
pub fn record_hash(record: &Value) -> Option<Hash> {
    let mut copy = record.clone();
    let chain = copy.as_object_mut()?.get_mut("tinfoil")?.as_object_mut()?;
    chain.remove("hash");
    let mut input = RECORD_HASH_PREFIX.to_vec();
    canonical(&copy, &mut input);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, &input).as_ref());
    Some(out)
}

/// Appends the canonical form of `value` to `out`. Members are sorted
/// here, not by the map type, so a `serde_json` built with
/// `preserve_order` (feature unification) cannot change a hash.
pub fn canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, member)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(&Value::String(key.clone()), out);
                out.push(b':');
                canonical(member, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(item, out);
            }
            out.push(b']');
        }
        // Scalars: serde_json's compact, minimal-escape form.
        scalar => out.extend_from_slice(
            serde_json::to_string(scalar)
                .unwrap_or_else(|_| "null".to_string())
                .as_bytes(),
        ),
    }
}

/// The chain fields a record carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The record's sequence number (the first record is 1).
    pub sequence: u64,
    /// The hash of record `sequence - 1` (zeros for the first).
    pub previous_hash: Hash,
    /// The record's own hash, as it claims.
    pub hash: Hash,
}

/// Reads a record's `tinfoil` member; `Err` says what is wrong.
pub fn link_of(record: &Value) -> std::result::Result<Link, String> {
    let chain = record
        .get("tinfoil")
        .and_then(Value::as_object)
        .ok_or("it has no tinfoil chain member")?;
    let sequence = chain
        .get("sequence")
        .and_then(Value::as_u64)
        .ok_or("its tinfoil.sequence is missing or not a number")?;
    let hash_field = |name: &str| {
        chain
            .get(name)
            .and_then(Value::as_str)
            .and_then(hash_from_hex)
            .ok_or(format!(
                "its tinfoil.{name} is missing or not 64 hex digits"
            ))
    };
    Ok(Link {
        sequence,
        previous_hash: hash_field("previousHash")?,
        hash: hash_field("hash")?,
    })
}

/// Stamps `record` (an object) with its sequence number, previous hash and
/// own hash; returns the hash.
pub fn seal_record(record: &mut Value, sequence: u64, previous: &Hash) -> Hash {
    let object = record.as_object_mut().expect("records are JSON objects");
    object.insert(
        "tinfoil".to_string(),
        serde_json::json!({ "sequence": sequence, "previousHash": to_hex(previous) }),
    );
    // No `hash` member yet: the canonical form is the record's own.
    let mut input = RECORD_HASH_PREFIX.to_vec();
    canonical(record, &mut input);
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest(&SHA256, &input).as_ref());
    record["tinfoil"]["hash"] = Value::String(to_hex(&hash));
    hash
}

/// A record's canonical form made ahead of sealing (on the caller's
/// thread, not under the store's lock), cut where its chain member goes:
/// sealing it then only writes that member and hashes, and sealing it
/// again on another head (another node appended first) costs no more.
#[derive(Debug, Clone)]
pub struct Unsealed {
    /// `{` and the members that sort before `tinfoil`, each followed by `,`.
    before: Vec<u8>,
    /// The members that sort after `tinfoil`, each preceded by `,`, and `}`.
    after: Vec<u8>,
}

impl Unsealed {
    /// The canonical form of `record` (an object; a `tinfoil` member it
    /// may carry is left out), ready to seal.
    pub fn of(record: &Value) -> Unsealed {
        let mut members: Vec<(&String, &Value)> = record
            .as_object()
            .map(|map| map.iter().filter(|(k, _)| *k != "tinfoil").collect())
            .unwrap_or_default();
        members.sort_by(|a, b| a.0.cmp(b.0));
        let (mut before, mut after) = (b"{".to_vec(), Vec::new());
        for (key, member) in members {
            let out = if key.as_str() < "tinfoil" {
                &mut before
            } else {
                after.push(b',');
                &mut after
            };
            canonical(&Value::String(key.clone()), out);
            out.push(b':');
            canonical(member, out);
            if key.as_str() < "tinfoil" {
                before.push(b',');
            }
        }
        after.push(b'}');
        Unsealed { before, after }
    }

    /// The canonical form before the chain member (`{` and the members
    /// that sort before it, each followed by `,`).
    pub fn before(&self) -> &[u8] {
        &self.before
    }

    /// The canonical form after the chain member (the members that sort
    /// after it, each preceded by `,`, and `}`).
    pub fn after(&self) -> &[u8] {
        &self.after
    }

    /// Seals the record as number `sequence` after `previous`: its text
    /// (canonical, with its chain member) and its hash, the same as
    /// [`seal_record`] gives.
    pub fn seal(&self, sequence: u64, previous: &Hash) -> (String, Hash) {
        let link = format!(
            "\"previousHash\":\"{}\",\"sequence\":{sequence}}}",
            to_hex(previous)
        );
        let mut input = Vec::with_capacity(
            RECORD_HASH_PREFIX.len() + self.before.len() + link.len() + self.after.len() + 12,
        );
        input.extend_from_slice(RECORD_HASH_PREFIX);
        input.extend_from_slice(&self.before);
        input.extend_from_slice(b"\"tinfoil\":{");
        input.extend_from_slice(link.as_bytes());
        input.extend_from_slice(&self.after);
        let mut hash = [0u8; 32];
        hash.copy_from_slice(digest(&SHA256, &input).as_ref());
        let mut text = Vec::with_capacity(input.len() + 80);
        text.extend_from_slice(&self.before);
        text.extend_from_slice(b"\"tinfoil\":{\"hash\":\"");
        text.extend_from_slice(to_hex(&hash).as_bytes());
        text.extend_from_slice(b"\",");
        text.extend_from_slice(link.as_bytes());
        text.extend_from_slice(&self.after);
        // Only JSON text went in: canonical() writes UTF-8.
        let text = String::from_utf8(text).unwrap_or_default();
        (text, hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_record_verifies_and_any_change_does_not() {
        let mut record = serde_json::json!({"eventName": "Encrypt", "b": [1, 2], "a": "x\ny"});
        let hash = seal_record(&mut record, 7, &ZERO_HASH);
        let link = link_of(&record).unwrap();
        assert_eq!(link.sequence, 7);
        assert_eq!(link.hash, hash);
        assert_eq!(record_hash(&record), Some(hash));
        let mut changed = record.clone();
        changed["eventName"] = Value::String("Decrypt".into());
        assert_ne!(record_hash(&changed), Some(hash));
        let mut renumbered = record.clone();
        renumbered["tinfoil"]["sequence"] = 8.into();
        assert_ne!(record_hash(&renumbered), Some(hash));
    }

    #[test]
    fn a_record_sealed_ahead_is_the_record_sealed_whole() {
        let records = [
            serde_json::json!({"eventName": "Encrypt", "b": [1, 2], "a": "x\ny", "zz": {"k": "é"}}),
            serde_json::json!({}),
            serde_json::json!({"a": 1}),
            serde_json::json!({"z": null}),
            serde_json::json!({"tinfoil": {"sequence": 9}, "userIdentity": {"arn": "a"}}),
        ];
        for (i, record) in records.into_iter().enumerate() {
            let previous = [i as u8; 32];
            let (text, hash) = Unsealed::of(&record).seal(41 + i as u64, &previous);
            let mut whole = record.clone();
            let whole_hash = seal_record(&mut whole, 41 + i as u64, &previous);
            assert_eq!(hash, whole_hash, "{record}");
            let parsed: Value = serde_json::from_str(&text).expect("the sealed text is JSON");
            assert_eq!(parsed, whole, "{text}");
            assert_eq!(record_hash(&parsed), Some(hash));
            let mut canonical_text = Vec::new();
            canonical(&parsed, &mut canonical_text);
            assert_eq!(text.as_bytes(), canonical_text, "the text is canonical");
        }
    }

    #[test]
    fn the_canonical_form_is_sorted_and_compact() {
        let record = serde_json::json!({"z": 1, "a": {"y": "é", "b": "\u{1}"}});
        let mut out = Vec::new();
        canonical(&record, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"a\":{\"b\":\"\\u0001\",\"y\":\"é\"},\"z\":1}"
        );
    }

    #[test]
    fn hex_round_trips() {
        let hash = [0xabu8; 32];
        assert_eq!(hash_from_hex(&to_hex(&hash)), Some(hash));
        assert_eq!(hash_from_hex("zz"), None);
        assert_eq!(hash_from_hex(&"g".repeat(64)), None);
    }
}
