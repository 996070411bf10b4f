//! The in-memory form of keys and aliases, loaded at open and written
//! through on every committed change. Holds no key material.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::types::{KeySpec, KeyState, KeyUsage, Origin, RotationType, UnixSeconds};

/// The prefix of every resource name this process hands out:
/// `arn:aws:kms:<region>:<account>:` of the installed account.
pub(crate) fn arn_prefix() -> std::sync::Arc<crate::identity::InstalledAccount> {
    crate::identity::installed()
}

/// One key version's public facts (the material stays in the database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VersionInfo {
    pub version: u32,
    pub created: UnixSeconds,
    /// `None` for the version made at CreateKey.
    pub rotation_type: Option<RotationType>,
}

/// A key's metadata and settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyRecord {
    pub id: Uuid,
    pub description: String,
    pub spec: KeySpec,
    pub usage: KeyUsage,
    pub origin: Origin,
    pub creation_date: UnixSeconds,
    pub state: KeyState,
    pub deletion_date: Option<UnixSeconds>,
    pub pending_window_days: Option<u32>,
    /// `Some` while scheduled rotation is on.
    pub rotation_period_days: Option<u32>,
    pub next_rotation_date: Option<UnixSeconds>,
    pub on_demand_rotation_date: Option<UnixSeconds>,
    /// Versions in order; version `n` is at index `n - 1`.
    pub versions: Vec<VersionInfo>,
    pub token: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl KeyRecord {
    /// The newest version number.
    pub fn current_version(&self) -> u32 {
        self.versions.len() as u32
    }

    /// The key's full resource name.
    pub fn arn(&self) -> String {
        key_arn(&self.id)
    }
}

/// The resource name of a key id.
pub(crate) fn key_arn(id: &Uuid) -> String {
    format!("{}key/{}", arn_prefix().kms_prefix, id.hyphenated())
}

/// An alias and where it points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AliasRecord {
    pub name: String,
    pub target: Uuid,
    pub creation_date: UnixSeconds,
    pub last_updated_date: UnixSeconds,
}
