//! Conversions between tinfoil.v1 messages and hsm-core types. Enumerated
//! values travel as their KMS names and are parsed by hsm-core, so a bad
//! name is a ValidationException like any other bad parameter.

use hsm_core as core;
use tinfoil_proto::v1 as pb;

/// Parses an optional KMS name with `parse`.
pub(crate) fn opt<T>(
    value: Option<&str>,
    parse: fn(&str) -> core::Result<T>,
) -> core::Result<Option<T>> {
    value.map(parse).transpose()
}

/// The KMS names of a list of values.
pub(crate) fn names<T: std::fmt::Display>(values: &[T]) -> Vec<String> {
    values.iter().map(ToString::to_string).collect()
}

pub(crate) fn key_metadata(m: core::KeyMetadata) -> pb::KeyMetadata {
    pb::KeyMetadata {
        enabled: m.key_state == core::KeyState::Enabled,
        key_id: m.key_id,
        arn: m.arn,
        description: m.description,
        key_spec: m.key_spec.to_string(),
        key_usage: m.key_usage.to_string(),
        origin: m.origin.to_string(),
        creation_date: m.creation_date,
        key_state: m.key_state.to_string(),
        deletion_date: m.deletion_date,
        pending_deletion_window_in_days: m.pending_deletion_window_in_days,
        current_key_version: m.current_key_version,
        token: m.token,
        encryption_algorithms: names(&m.encryption_algorithms),
        signing_algorithms: names(&m.signing_algorithms),
        mac_algorithms: names(&m.mac_algorithms),
        encapsulation_algorithms: names(&m.key_usage.encapsulation_algorithms()),
    }
}

pub(crate) fn tag_to_core(t: pb::Tag) -> core::Tag {
    core::Tag {
        tag_key: t.tag_key,
        tag_value: t.tag_value,
    }
}

pub(crate) fn tag_from_core(t: core::Tag) -> pb::Tag {
    pb::Tag {
        tag_key: t.tag_key,
        tag_value: t.tag_value,
    }
}

pub(crate) fn key_entry(e: core::KeyListEntry) -> pb::KeyListEntry {
    pb::KeyListEntry {
        key_id: e.key_id,
        key_arn: e.arn,
    }
}

pub(crate) fn alias_entry(e: core::AliasEntry) -> pb::AliasListEntry {
    pb::AliasListEntry {
        alias_name: e.alias_name,
        alias_arn: e.alias_arn,
        target_key_id: e.target_key_id,
        creation_date: e.creation_date,
        last_updated_date: e.last_updated_date,
    }
}

pub(crate) fn rotation_entry(e: core::RotationEntry) -> pb::RotationsListEntry {
    pb::RotationsListEntry {
        key_id: e.key_id,
        key_version: e.key_version,
        rotation_date: e.rotation_date,
        rotation_type: e.rotation_type.to_string(),
    }
}

/// A page's items mapped with `f`, its next marker and truncated flag.
pub(crate) fn page<T, U>(p: core::Page<T>, f: fn(T) -> U) -> (Vec<U>, Option<String>, bool) {
    let truncated = p.truncated();
    (
        p.items.into_iter().map(f).collect(),
        p.next_marker,
        truncated,
    )
}
