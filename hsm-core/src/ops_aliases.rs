//! Aliases and tags: CreateAlias, UpdateAlias, DeleteAlias, ListAliases,
//! TagResource, UntagResource, ListResourceTags.

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::hsm::{require_not_pending, Hsm, State};
use crate::ids::{validate_alias_name, validate_tag};
use crate::model::{arn_prefix, AliasRecord};
use crate::ops_keys::{alias_marker, merge_tags, paginate, tag_marker};
use crate::store;
use crate::types::{AliasEntry, Page, Tag};

impl Hsm {
    /// Resolves an alias target: a key id or key resource name (not an
    /// alias), of a key not pending deletion.
    fn alias_target(state: &State, target_key_id: &str) -> Result<Uuid> {
        if target_key_id.starts_with("alias/")
            || target_key_id.starts_with(&format!("{}alias/", arn_prefix().kms_prefix))
        {
            return Err(Error::validation(
                "an alias must point at a key id, not at another alias",
            ));
        }
        let key = state.key(target_key_id)?;
        require_not_pending(&key)?;
        Ok(key.id)
    }

    /// CreateAlias.
    pub fn create_alias(&self, alias_name: &str, target_key_id: &str) -> Result<()> {
        validate_alias_name(alias_name)?;
        let mut state = self.write_state();
        let target = Self::alias_target(&state, target_key_id)?;
        if state.alias_target(alias_name)?.is_some() {
            return Err(Error::AlreadyExists(format!(
                "alias {alias_name} already exists"
            )));
        }
        let now = self.now();
        let alias = AliasRecord {
            name: alias_name.to_string(),
            target,
            creation_date: now,
            last_updated_date: now,
        };
        let created = self
            .lock_store()
            .write(|tx| store::insert_alias(tx, &alias));
        if let Err(Error::AlreadyExists(_)) = &created {
            // Made by another node meanwhile: forget the cached absence.
            state.forget_aliases();
        }
        created?;
        state.put_alias(&alias.name, Some(alias.target));
        Ok(())
    }

    /// UpdateAlias: points an existing alias at another key of the same
    /// spec and usage.
    pub fn update_alias(&self, alias_name: &str, target_key_id: &str) -> Result<()> {
        validate_alias_name(alias_name)?;
        let mut state = self.write_state();
        let target = Self::alias_target(&state, target_key_id)?;
        let not_found = || Error::NotFound(format!("alias {alias_name} does not exist"));
        let mut alias = state.reader().alias(alias_name)?.ok_or_else(not_found)?;
        let old = state.get(&alias.target)?.ok_or_else(not_found)?;
        let new = state.key(target_key_id)?;
        if old.spec != new.spec || old.usage != new.usage {
            return Err(Error::validation(
                "an alias can only move to a key of the same key spec and key usage",
            ));
        }
        alias.target = target;
        alias.last_updated_date = self.now();
        self.lock_store().write(|tx| store::put_alias(tx, &alias))?;
        state.put_alias(&alias.name, Some(alias.target));
        Ok(())
    }

    /// DeleteAlias.
    pub fn delete_alias(&self, alias_name: &str) -> Result<()> {
        validate_alias_name(alias_name)?;
        let mut state = self.write_state();
        if state.alias_target(alias_name)?.is_none() {
            return Err(Error::NotFound(format!(
                "alias {alias_name} does not exist"
            )));
        }
        self.lock_store()
            .write(|tx| store::delete_alias(tx, alias_name))?;
        state.put_alias(alias_name, None);
        Ok(())
    }

    /// ListAliases, ordered by name, optionally only those of one key.
    pub fn list_aliases(
        &self,
        key_id: Option<&str>,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<AliasEntry>> {
        let state = self.read_state();
        let only = key_id.map(|k| state.resolve(k)).transpose()?;
        let size = crate::ops_keys::page_size(limit, marker, alias_marker)?;
        let aliases = state
            .reader()
            .aliases_after(only.as_ref(), marker, size + 1)?;
        drop(state);
        let prefix = &arn_prefix().kms_prefix;
        paginate(
            aliases.into_iter().map(|a| {
                (
                    a.name.clone(),
                    AliasEntry {
                        alias_arn: format!("{prefix}{}", a.name),
                        alias_name: a.name,
                        target_key_id: a.target.hyphenated().to_string(),
                        creation_date: a.creation_date,
                        last_updated_date: a.last_updated_date,
                    },
                )
            }),
            limit,
            marker,
            alias_marker,
        )
    }

    /// TagResource: adds or replaces tags (at most 50 per key).
    pub fn tag_resource(&self, key_id: &str, tags: &[Tag]) -> Result<()> {
        self.update_key(key_id, |key, _| {
            require_not_pending(key)?;
            merge_tags(key, tags)
        })?;
        Ok(())
    }

    /// UntagResource: removes tags; absent keys are ignored.
    pub fn untag_resource(&self, key_id: &str, tag_keys: &[String]) -> Result<()> {
        for tag_key in tag_keys {
            validate_tag(tag_key, None)?;
        }
        self.update_key(key_id, |key, _| {
            require_not_pending(key)?;
            for tag_key in tag_keys {
                key.tags.remove(tag_key);
            }
            Ok(())
        })?;
        Ok(())
    }

    /// ListResourceTags, ordered by tag key (any key state).
    pub fn list_resource_tags(
        &self,
        key_id: &str,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<Tag>> {
        let key = self.read_state().key(key_id)?;
        crate::ops_keys::page_size(limit, marker, tag_marker)?;
        // The tags after the marker: a seek in the key's ordered tags.
        let after = marker.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        paginate(
            key.tags
                .range::<str, _>((after, std::ops::Bound::Unbounded))
                .map(|(k, v)| {
                    (
                        k.clone(),
                        Tag {
                            tag_key: k.clone(),
                            tag_value: v.clone(),
                        },
                    )
                }),
            limit,
            marker,
            tag_marker,
        )
    }
}
