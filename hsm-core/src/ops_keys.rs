//! Key management operations: creation, description, listing, lifecycle,
//! rotation settings, aliases and tags.

use uuid::Uuid;

use crate::clock::DAY;
use crate::error::{Error, Result};
use crate::hsm::{require_enabled, require_not_pending, rotation_due, Hsm};
use crate::ids::{validate_alias_name, validate_tag, validate_token};
use crate::model::{key_arn, KeyRecord, VersionInfo};
use crate::outputs::{CreateKeyRequest, ScheduledDeletion};
use crate::store;
use crate::types::*;

/// Deletion waiting period bounds and default, in days.
const PENDING_WINDOW: (u32, u32, u32) = (7, 30, 30);
/// Rotation period bounds and default, in days.
const ROTATION_PERIOD: (u32, u32, u32) = (90, 2560, 365);
/// The most tags a key may carry.
pub const MAX_TAGS_PER_KEY: usize = 50;
/// The longest description accepted.
const MAX_DESCRIPTION: usize = 8192;

fn in_range(name: &str, value: Option<u32>, (low, high, default): (u32, u32, u32)) -> Result<u32> {
    let value = value.unwrap_or(default);
    if !(low..=high).contains(&value) {
        return Err(Error::validation(format!(
            "{name} must be {low} to {high}, not {value}"
        )));
    }
    Ok(value)
}

fn check_description(description: &str) -> Result<()> {
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(Error::validation(format!(
            "a description must be at most {MAX_DESCRIPTION} characters"
        )));
    }
    Ok(())
}

/// Checks a list's `Limit` and marker; the page size.
pub(crate) fn page_size(
    limit: Option<u32>,
    marker: Option<&str>,
    issued: fn(&str) -> bool,
) -> Result<usize> {
    let limit = in_range("Limit", limit, (1, MAX_PAGE_LIMIT, DEFAULT_PAGE_LIMIT))? as usize;
    if marker.is_some_and(|m| m.len() > 1024 || !issued(m)) {
        return Err(Error::validation(
            "the marker is not valid: pass the NextMarker of the previous page",
        ));
    }
    Ok(limit)
}

/// Splits items sorted by their marker into one page. Callers pass the
/// items from the marker on (an index seek); any before it are skipped.
///
/// `issued` tells whether a marker has the shape this list hands out; any
/// other marker is refused (KMS: InvalidMarkerException) rather than
/// silently giving a wrong page.
pub(crate) fn paginate<T>(
    items: impl IntoIterator<Item = (String, T)>,
    limit: Option<u32>,
    marker: Option<&str>,
    issued: fn(&str) -> bool,
) -> Result<Page<T>> {
    let limit = page_size(limit, marker, issued)?;
    let mut rest = items
        .into_iter()
        .filter(|(key, _)| marker.is_none_or(|m| key.as_str() > m))
        .peekable();
    let mut page = Vec::new();
    let mut last = None;
    while page.len() < limit {
        match rest.next() {
            Some((key, item)) => {
                last = Some(key);
                page.push(item);
            }
            None => break,
        }
    }
    let next_marker = if rest.peek().is_some() { last } else { None };
    Ok(Page {
        items: page,
        next_marker,
    })
}

fn key_marker(marker: &str) -> bool {
    Uuid::try_parse(marker).is_ok_and(|id| id.hyphenated().to_string() == marker)
}

fn version_marker(marker: &str) -> bool {
    marker.len() == 10 && marker.bytes().all(|b| b.is_ascii_digit())
}

pub(crate) fn alias_marker(marker: &str) -> bool {
    marker.starts_with("alias/") && validate_alias_name(marker).is_ok()
}

pub(crate) fn tag_marker(marker: &str) -> bool {
    validate_tag(marker, None).is_ok()
}

/// The public metadata of a record.
pub(crate) fn metadata(key: &KeyRecord) -> KeyMetadata {
    let encryption_algorithms = match (key.spec, key.usage) {
        (KeySpec::SymmetricDefault, _) => vec![EncryptionAlgorithm::SymmetricDefault],
        (spec, usage) => crate::asymmetric::encryption_algorithms(spec, usage).to_vec(),
    };
    let signing_algorithms = match key.usage {
        KeyUsage::SignVerify => crate::asymmetric::signing_algorithms(key.spec).to_vec(),
        _ => Vec::new(),
    };
    let mac_algorithms = match key.usage {
        KeyUsage::GenerateVerifyMac => crate::asymmetric::mac_algorithms(key.spec).to_vec(),
        _ => Vec::new(),
    };
    KeyMetadata {
        key_id: key.id.hyphenated().to_string(),
        arn: key.arn(),
        description: key.description.clone(),
        key_spec: key.spec,
        key_usage: key.usage,
        origin: key.origin,
        creation_date: key.creation_date,
        key_state: key.state,
        deletion_date: key.deletion_date,
        pending_deletion_window_in_days: key.pending_window_days,
        current_key_version: key.current_version(),
        token: key.token.clone(),
        encryption_algorithms,
        signing_algorithms,
        mac_algorithms,
    }
}

pub(crate) fn merge_tags(key: &mut KeyRecord, tags: &[Tag]) -> Result<()> {
    for tag in tags {
        validate_tag(&tag.tag_key, Some(&tag.tag_value))?;
        key.tags.insert(tag.tag_key.clone(), tag.tag_value.clone());
    }
    if key.tags.len() > MAX_TAGS_PER_KEY {
        return Err(Error::LimitExceeded(format!(
            "a key may carry at most {MAX_TAGS_PER_KEY} tags"
        )));
    }
    Ok(())
}

fn require_rotatable(key: &KeyRecord) -> Result<()> {
    if !key.spec.is_symmetric() || key.origin != Origin::AwsKms {
        return Err(Error::UnsupportedOperation(format!(
            "{} cannot rotate: only symmetric keys with generated material rotate",
            key.arn()
        )));
    }
    Ok(())
}

impl Hsm {
    /// Applies `change` to a copy of the key's record, commits it, and
    /// only then replaces the record in memory.
    pub(crate) fn update_key(
        &self,
        key_ref: &str,
        change: impl FnOnce(&mut KeyRecord, UnixSeconds) -> Result<()>,
    ) -> Result<KeyRecord> {
        let mut state = self.write_state();
        let mut record = (*state.key(key_ref)?).clone();
        change(&mut record, self.now())?;
        self.commit_key(&mut state, record)
    }

    /// CreateKey. The material is generated inside the core and stored only
    /// wrapped under the root key.
    pub fn create_key(&self, request: CreateKeyRequest) -> Result<KeyMetadata> {
        self.create_key_with_material(request, Origin::AwsKms, None, &[])
    }

    /// CreateKey with imported material (or generated when `None`) and
    /// `system_tags` that the service sets itself (reserved prefixes such as
    /// `pkcs11:` allowed there, never in the caller's `request.tags`).
    pub(crate) fn create_key_with_material(
        &self,
        request: CreateKeyRequest,
        origin: Origin,
        imported: Option<&[u8]>,
        system_tags: &[Tag],
    ) -> Result<KeyMetadata> {
        self.create_key_inner(request, origin, imported, system_tags, None)
    }

    /// CreateKey with its key policy (`None`: the default policy), written
    /// in the key's own transaction and in memory before the key is.
    pub(crate) fn create_key_inner(
        &self,
        request: CreateKeyRequest,
        origin: Origin,
        imported: Option<&[u8]>,
        system_tags: &[Tag],
        policy: Option<std::sync::Arc<crate::policy::authz::StoredPolicy>>,
    ) -> Result<KeyMetadata> {
        // X25519, RSA-8192, RSA-1024 and other RSA sizes are PKCS#11 keys,
        // not KMS key specs.
        if matches!(
            request.key_spec,
            Some(KeySpec::EccX25519 | KeySpec::Rsa8192 | KeySpec::Rsa1024 | KeySpec::RsaOtherSize)
        ) && request.token.is_none()
        {
            return Err(Error::validation(
                "ECC_X25519, RSA_8192, RSA_1024 and RSA_OTHER_SIZE keys are made through PKCS#11 only",
            ));
        }
        check_description(&request.description)?;
        let spec = request.key_spec.unwrap_or(KeySpec::SymmetricDefault);
        let usage = request.key_usage.unwrap_or_else(|| spec.default_usage());
        if !spec.allowed_usages().contains(&usage) {
            return Err(Error::validation(format!(
                "key usage {usage} is not valid for key spec {spec}"
            )));
        }
        if let Some(token) = &request.token {
            validate_token(token)?;
        }
        let now = self.now();
        let mut record = KeyRecord {
            id: Uuid::new_v4(),
            description: request.description,
            spec,
            usage,
            origin,
            creation_date: now,
            state: KeyState::Enabled,
            deletion_date: None,
            pending_window_days: None,
            rotation_period_days: None,
            next_rotation_date: None,
            on_demand_rotation_date: None,
            versions: vec![VersionInfo {
                version: 1,
                created: now,
                rotation_type: None,
            }],
            token: request.token,
            tags: Default::default(),
        };
        merge_tags(&mut record, &request.tags)?;
        for tag in system_tags {
            record
                .tags
                .insert(tag.tag_key.clone(), tag.tag_value.clone());
        }
        if record.tags.len() > MAX_TAGS_PER_KEY {
            return Err(Error::LimitExceeded(format!(
                "a key may carry at most {MAX_TAGS_PER_KEY} tags"
            )));
        }
        let wrapped = self.wrap_new_material(record.id, 1, spec, imported)?;
        // Its policy is in memory before the key can be read from the store
        // (the id is new: nothing else uses that entry meanwhile).
        if let Some(p) = &policy {
            self.write_authz().set_policy(record.id, p.clone());
        }
        // A new key's id is unknown until it is returned, so the durable
        // commit (an fsync) runs without the state lock: readers are not
        // stalled. Nothing can conflict with a new key's rows, so
        // concurrent CreateKeys (and other calls' records) share one
        // transaction and one fsync (group commit).
        let new_key = store::NewKey {
            record: record.clone(),
            wrapped,
            policy: policy.as_ref().map(|p| p.text.clone()),
        };
        let committed = crate::audit::pending::commit_new_key(self, new_key);
        match (committed, policy) {
            (Err(e), Some(_)) => {
                self.write_authz().forget_key(&record.id);
                return Err(e);
            }
            (Err(e), None) => return Err(e),
            // Again: the entry may have been evicted and read back (as the
            // default) before the commit.
            (Ok(()), Some(p)) => self.write_authz().set_policy(record.id, p),
            (Ok(()), None) => {}
        }
        let meta = metadata(&record);
        self.write_state().put_key(record);
        Ok(meta)
    }

    /// DescribeKey.
    pub fn describe_key(&self, key_id: &str) -> Result<KeyMetadata> {
        Ok(metadata(&*self.read_state().key(key_id)?))
    }

    /// ListKeys, ordered by key id; `marker` is the last key id of the
    /// previous page. One index seek from the marker: a page costs the
    /// same wherever it starts.
    pub fn list_keys(
        &self,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<KeyListEntry>> {
        let size = page_size(limit, marker, key_marker)?;
        let ids = self.read_state().reader().key_ids_after(marker, size + 1)?;
        paginate(
            ids.into_iter().map(|id| {
                let key_id = id.hyphenated().to_string();
                (
                    key_id.clone(),
                    KeyListEntry {
                        key_id,
                        arn: key_arn(&id),
                    },
                )
            }),
            limit,
            marker,
            key_marker,
        )
    }

    /// The metadata of every key in one PKCS#11 token, ordered by key id.
    pub fn list_token_keys(&self, token: &str) -> Result<Vec<KeyMetadata>> {
        let state = self.read_state();
        let keys = state.reader().token_keys(token)?;
        Ok(keys.iter().map(metadata).collect())
    }

    /// UpdateKeyDescription.
    pub fn update_key_description(&self, key_id: &str, description: &str) -> Result<()> {
        check_description(description)?;
        self.update_key(key_id, |key, _| {
            require_not_pending(key)?;
            key.description = description.to_string();
            Ok(())
        })?;
        Ok(())
    }

    /// EnableKey. A key whose scheduled rotation fell due while it was
    /// disabled rotates at once, as in KMS.
    pub fn enable_key(&self, key_id: &str) -> Result<()> {
        let mut state = self.write_state();
        let cached = state.key(key_id)?;
        let mut record = (*cached).clone();
        require_not_pending(&record)?;
        record.state = KeyState::Enabled;
        let now = self.now();
        if rotation_due(&record, now) {
            self.add_version(&cached, &mut record, RotationType::Automatic, now)?;
            state.put_key(record);
        } else {
            self.commit_key(&mut state, record)?;
        }
        Ok(())
    }

    /// DisableKey. The key's unwrapped versions are dropped from memory.
    pub fn disable_key(&self, key_id: &str) -> Result<()> {
        let record = self.update_key(key_id, |key, _| {
            require_not_pending(key)?;
            key.state = KeyState::Disabled;
            Ok(())
        })?;
        self.cache().remove_key(&record.id);
        Ok(())
    }

    /// ScheduleKeyDeletion: PendingDeletion for 7 to 30 days (default 30);
    /// `tick` destroys the key once the deletion date passes.
    pub fn schedule_key_deletion(
        &self,
        key_id: &str,
        pending_window_in_days: Option<u32>,
    ) -> Result<ScheduledDeletion> {
        let days = in_range(
            "PendingWindowInDays",
            pending_window_in_days,
            PENDING_WINDOW,
        )?;
        let record = self.update_key(key_id, |key, now| {
            require_not_pending(key)?;
            key.state = KeyState::PendingDeletion;
            key.deletion_date = Some(now + i64::from(days) * DAY);
            key.pending_window_days = Some(days);
            Ok(())
        })?;
        self.cache().remove_key(&record.id);
        Ok(ScheduledDeletion {
            key_id: record.arn(),
            deletion_date: record.deletion_date.unwrap_or_default(),
            key_state: record.state,
            pending_window_in_days: days,
        })
    }

    /// CancelKeyDeletion: the key returns as Disabled. Returns its resource name.
    pub fn cancel_key_deletion(&self, key_id: &str) -> Result<String> {
        let record = self.update_key(key_id, |key, now| {
            if key.state != KeyState::PendingDeletion {
                return Err(Error::InvalidState(format!(
                    "{} is not pending deletion",
                    key.arn()
                )));
            }
            // Past the deletion date the key is gone even before the purge runs.
            if key.deletion_date.is_some_and(|date| date <= now) {
                return Err(Error::InvalidState(format!(
                    "the waiting period of {} has ended: it is being destroyed",
                    key.arn()
                )));
            }
            key.state = KeyState::Disabled;
            key.deletion_date = None;
            key.pending_window_days = None;
            Ok(())
        })?;
        Ok(record.arn())
    }

    /// EnableKeyRotation, every 90 to 2560 days (default 365).
    pub fn enable_key_rotation(
        &self,
        key_id: &str,
        rotation_period_in_days: Option<u32>,
    ) -> Result<()> {
        let days = in_range(
            "RotationPeriodInDays",
            rotation_period_in_days,
            ROTATION_PERIOD,
        )?;
        self.update_key(key_id, |key, now| {
            require_rotatable(key)?;
            require_enabled(key)?;
            key.rotation_period_days = Some(days);
            key.next_rotation_date = Some(now + i64::from(days) * DAY);
            Ok(())
        })?;
        Ok(())
    }

    /// DisableKeyRotation.
    pub fn disable_key_rotation(&self, key_id: &str) -> Result<()> {
        self.update_key(key_id, |key, _| {
            require_rotatable(key)?;
            require_enabled(key)?;
            key.rotation_period_days = None;
            key.next_rotation_date = None;
            Ok(())
        })?;
        Ok(())
    }

    /// GetKeyRotationStatus (any key state). As in KMS, the status reads
    /// false while the key is pending deletion (the setting returns on
    /// cancel) and always false for keys that cannot rotate (asymmetric,
    /// HMAC, imported).
    pub fn get_key_rotation_status(&self, key_id: &str) -> Result<RotationStatus> {
        let state = self.read_state();
        let key = state.key(key_id)?;
        let reported = require_rotatable(&key).is_ok() && key.state != KeyState::PendingDeletion;
        let period = key.rotation_period_days.filter(|_| reported);
        Ok(RotationStatus {
            key_id: key.arn(),
            key_rotation_enabled: period.is_some(),
            rotation_period_in_days: period,
            next_rotation_date: key.next_rotation_date.filter(|_| period.is_some()),
            on_demand_rotation_start_date: key.on_demand_rotation_date,
        })
    }

    /// RotateKeyOnDemand: a new version now; the schedule is unchanged.
    /// Returns the key's resource name.
    pub fn rotate_key_on_demand(&self, key_id: &str) -> Result<String> {
        let mut state = self.write_state();
        let cached = state.key(key_id)?;
        let mut record = (*cached).clone();
        require_rotatable(&record)?;
        require_enabled(&record)?;
        self.add_version(&cached, &mut record, RotationType::OnDemand, self.now())?;
        let arn = record.arn();
        state.put_key(record);
        Ok(arn)
    }

    /// ListKeyRotations: the versions made by rotation, oldest first.
    pub fn list_key_rotations(
        &self,
        key_id: &str,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<RotationEntry>> {
        let key = self.read_state().key(key_id)?;
        require_rotatable(&key)?;
        let arn = key.arn();
        page_size(limit, marker, version_marker)?;
        // Version n is at index n - 1: the versions after the marker's
        // start at its number.
        let after = marker.map_or(0, |m| m.parse::<usize>().unwrap_or(usize::MAX));
        paginate(
            key.versions.iter().skip(after).filter_map(|v| {
                v.rotation_type.map(|rotation_type| {
                    (
                        format!("{:010}", v.version),
                        RotationEntry {
                            key_id: arn.clone(),
                            key_version: v.version,
                            rotation_date: v.created,
                            rotation_type,
                        },
                    )
                })
            }),
            limit,
            marker,
            version_marker,
        )
    }

    /// The resource name of a key id, for messages.
    pub(crate) fn arn_of(id: &Uuid) -> String {
        key_arn(id)
    }
}
