//! Reading the log through the gate (administrators only, and recorded
//! themselves): LookupEvents, the public key, export pages, pruning.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::Value;

use super::db::{self, LookupAttribute};
use crate::error::{Error, Result};
use crate::gate::{Gate, Request};
use crate::types::UnixSeconds;

/// The most events one LookupEvents page returns (CloudTrail's limit).
pub const MAX_LOOKUP_RESULTS: u32 = 50;
/// The most bytes of records one export page carries.
const EXPORT_PAGE_BYTES: usize = 2 << 20;
/// The most records one export page carries.
const EXPORT_PAGE_RECORDS: usize = 5000;

/// A LookupEvents request, as `aws cloudtrail lookup-events` takes it.
#[derive(Debug, Clone, Default)]
pub struct LookupEventsRequest {
    /// Events at or after this time.
    pub start_time: Option<UnixSeconds>,
    /// Events at or before this time.
    pub end_time: Option<UnixSeconds>,
    /// At most one attribute to match.
    pub attribute: Option<LookupAttribute>,
    /// 1 to 50 (default 50).
    pub max_results: Option<u32>,
    /// The previous page's `next_token`.
    pub next_token: Option<String>,
}

/// One event of a lookup, with CloudTrail's summary fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupEvent {
    /// The record's eventID.
    pub event_id: String,
    /// The operation.
    pub event_name: String,
    /// eventTime, Unix seconds.
    pub event_time: UnixSeconds,
    /// `root`, a user name, or `kms.amazonaws.com`.
    pub username: String,
    /// The access key the call was signed with.
    pub access_key_id: Option<String>,
    /// (type, ARN) of each resource.
    pub resources: Vec<(String, String)>,
    /// The whole record as JSON text.
    pub cloud_trail_event: String,
}

/// A LookupEvents page.
#[derive(Debug, Clone, Default)]
pub struct LookupEventsResponse {
    /// Newest first.
    pub events: Vec<LookupEvent>,
    /// Present when more events match.
    pub next_token: Option<String>,
}

/// One page of an export.
#[derive(Debug, Clone, Default)]
pub struct AuditExportPage {
    /// (sequence, record JSON), in order.
    pub records: Vec<(u64, String)>,
    /// (tree size, signed note) of the checkpoints the page's records need,
    /// including the one anchoring the first record.
    pub checkpoints: Vec<(u64, String)>,
    /// The log's public key (note verifier key).
    pub public_key: String,
    /// The export ends with this record (a checkpoint of this size exists);
    /// pass it back with every further page.
    pub to_sequence: u64,
    /// The next page's first sequence, or `None` at the end.
    pub next_sequence: Option<u64>,
}

/// What a prune did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneOutcome {
    /// Records deleted.
    pub pruned: u64,
    /// The first record kept (the first after the checkpoint that anchors it).
    pub first_kept: u64,
}

fn str_field(record: &Value, name: &str) -> String {
    record
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn summary(stored: &db::StoredEvent) -> LookupEvent {
    let record: Value = serde_json::from_str(&stored.record).unwrap_or(Value::Null);
    let identity = &record["userIdentity"];
    let username = match identity.get("type").and_then(Value::as_str) {
        Some("Root") => "root".to_string(),
        Some(_) => str_field(identity, "userName"),
        None => "kms.amazonaws.com".to_string(),
    };
    let event_time = time::OffsetDateTime::parse(
        &str_field(&record, "eventTime"),
        &time::format_description::well_known::Rfc3339,
    )
    .map(|t| t.unix_timestamp())
    .unwrap_or_default();
    let resources = record["resources"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|r| (str_field(r, "type"), str_field(r, "ARN")))
                .collect()
        })
        .unwrap_or_default();
    LookupEvent {
        event_id: str_field(&record, "eventID"),
        event_name: str_field(&record, "eventName"),
        event_time,
        username,
        access_key_id: identity
            .get("accessKeyId")
            .and_then(Value::as_str)
            .map(str::to_string),
        resources,
        cloud_trail_event: stored.record.clone(),
    }
}

fn token_of(sequence: u64) -> String {
    B64.encode(format!("tinfoil-lookup:{sequence}"))
}

fn sequence_of(token: &str) -> Result<u64> {
    B64.decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| t.strip_prefix("tinfoil-lookup:")?.parse().ok())
        .ok_or_else(|| Error::validation("the NextToken is not one this service returned"))
}

impl Gate<'_> {
    fn administrators_only(&self, action: &str) -> Result<()> {
        if self.caller().principal.is_administrator() {
            return Ok(());
        }
        Err(Error::AccessDenied(format!(
            "User: {} is not authorized to perform: {action} because only the account's administrators may",
            self.caller().principal.arn()
        )))
    }

    /// LookupEvents (CloudTrail's): the newest matching records first.
    pub fn lookup_events(&self, request: &LookupEventsRequest) -> Result<LookupEventsResponse> {
        let mut check = Request::account("cloudtrail:LookupEvents");
        if let Some(n) = request.max_results {
            check = check.param("maxResults", n);
        }
        self.record(&check, || {
            self.administrators_only("cloudtrail:LookupEvents")?;
            let limit = request.max_results.unwrap_or(MAX_LOOKUP_RESULTS);
            if !(1..=MAX_LOOKUP_RESULTS).contains(&limit) {
                return Err(Error::validation(format!(
                    "MaxResults must be 1 to {MAX_LOOKUP_RESULTS}"
                )));
            }
            if let (Some(start), Some(end)) = (request.start_time, request.end_time) {
                if start > end {
                    return Err(Error::validation("StartTime is after EndTime"));
                }
            }
            let before = request.next_token.as_deref().map(sequence_of).transpose()?;
            let mut rows = self.hsm().read_store(false, |conn| {
                db::lookup(
                    conn,
                    request.start_time,
                    request.end_time,
                    request.attribute.as_ref(),
                    before,
                    limit as usize + 1,
                )
            })?;
            let next_token = if rows.len() > limit as usize {
                rows.truncate(limit as usize);
                rows.last().map(|r| token_of(r.sequence))
            } else {
                None
            };
            Ok(LookupEventsResponse {
                events: rows.iter().map(summary).collect(),
                next_token,
            })
        })
    }

    /// The audit log's public key (administrators only through the gate;
    /// [`crate::Hsm::audit_public_key`] for the operator at init).
    pub fn get_audit_public_key(&self) -> Result<String> {
        self.record(&Request::account("tinfoil:GetAuditPublicKey"), || {
            self.administrators_only("tinfoil:GetAuditPublicKey")?;
            Ok(self.hsm().audit_public_key())
        })
    }

    /// One page of an export starting at `from_sequence` (1 for all).
    /// The first page (`to_sequence` 0) signs a checkpoint of the head, and
    /// the export ends there; the start moves back to the record after the
    /// newest checkpoint at or before `from_sequence - 1`, so the first
    /// record is anchored by a signed checkpoint.
    pub fn export_audit_log(
        &self,
        from_sequence: u64,
        to_sequence: u64,
    ) -> Result<AuditExportPage> {
        let check = Request::account("tinfoil:ExportAuditLog")
            .param("fromSequence", from_sequence)
            .param("toSequence", to_sequence);
        self.record(&check, || {
            self.administrators_only("tinfoil:ExportAuditLog")?;
            let hsm = self.hsm();
            let log = hsm.audit_log();
            let to = if to_sequence == 0 {
                log.checkpoint_if_due(hsm, true)?;
                log.state().checkpoint_size
            } else {
                to_sequence
            };
            // One snapshot: a prune on another node cannot fall between
            // the reads.
            let (start, records, checkpoints) = hsm.read_store(true, |conn| {
                let first_kept = db::first_sequence(conn)?.unwrap_or(to + 1);
                let mut start = from_sequence.max(first_kept).max(1);
                if to_sequence == 0 && start > first_kept {
                    // Anchor the first record on a checkpoint.
                    start = db::checkpoint_at_or_below(conn, start - 1)?
                        .map_or(first_kept, |size| size + 1)
                        .max(first_kept);
                }
                let mut records = Vec::new();
                let mut bytes = 0;
                if start <= to {
                    for row in db::records_from(conn, start, EXPORT_PAGE_RECORDS)? {
                        if row.sequence > to || (bytes > EXPORT_PAGE_BYTES && !records.is_empty()) {
                            break;
                        }
                        bytes += row.record.len();
                        records.push((row.sequence, row.record));
                    }
                }
                let last = records.last().map_or(start.saturating_sub(1), |r| r.0);
                let checkpoints = db::checkpoints_between(conn, start.saturating_sub(1), last)?;
                Ok((start, records, checkpoints))
            })?;
            let last = records.last().map_or(start.saturating_sub(1), |r| r.0);
            Ok(AuditExportPage {
                next_sequence: (last < to && !records.is_empty()).then_some(last + 1),
                records,
                checkpoints,
                public_key: log.signer.verifier_key(),
                to_sequence: to,
            })
        })
    }

    /// Confirms that an export wrote records through `through`; pruning is
    /// allowed only up to the confirmed point.
    pub fn confirm_audit_export(&self, through: u64) -> Result<()> {
        let check =
            Request::account("tinfoil:ConfirmAuditExport").param("throughSequence", through);
        self.record(&check, || {
            self.administrators_only("tinfoil:ConfirmAuditExport")?;
            // As committed (other nodes append to the same chain), under
            // the write lock.
            self.hsm().lock_store().write(|tx| {
                let head = super::log::AuditLog::load_state(tx)?.head_sequence;
                if through > head {
                    return Err(Error::validation(format!(
                        "the log has no record {through} yet"
                    )));
                }
                if through > exported_through(tx)? {
                    crate::store::put_meta(tx, db::META_EXPORTED, &through.to_be_bytes())?;
                }
                Ok(())
            })
        })
    }

    /// Deletes records before `before_sequence` (moved back to the record
    /// after the newest checkpoint below it, so the first kept record is
    /// anchored); only records an export confirmed.
    pub fn prune_audit_log(&self, before_sequence: u64) -> Result<PruneOutcome> {
        let check =
            Request::account("tinfoil:PruneAuditLog").param("beforeSequence", before_sequence);
        self.record(&check, || {
            self.administrators_only("tinfoil:PruneAuditLog")?;
            // Decided and done in one write, as committed (another node may
            // have exported or pruned meanwhile).
            self.hsm().lock_store().write(|tx| {
                let exported = exported_through(tx)?;
                if before_sequence > exported.saturating_add(1) {
                    return Err(Error::validation(format!(
                        "records from {} on were never exported (export-audit-log confirms what it wrote); \
                         prune before {} at most",
                        exported + 1,
                        exported + 1
                    )));
                }
                let first_kept = db::first_sequence(tx)?.unwrap_or(1);
                let anchor = match before_sequence {
                    0 | 1 => None,
                    n => db::checkpoint_at_or_below(tx, n - 1)?,
                };
                let keep_from = anchor.map_or(1, |size| size + 1);
                if keep_from <= first_kept {
                    return Ok(PruneOutcome {
                        pruned: 0,
                        first_kept,
                    });
                }
                let pruned = db::prune(tx, keep_from)?;
                Ok(PruneOutcome {
                    pruned: pruned as u64,
                    first_kept: keep_from,
                })
            })
        })
    }
}

/// The last sequence an export confirmed, as committed.
fn exported_through(tx: &crate::store::engine::Db<'_>) -> Result<u64> {
    let value: Option<Vec<u8>> = tx.first(
        "SELECT value FROM meta WHERE name = ?1",
        &crate::store::engine::vals![db::META_EXPORTED],
        |r| r.get(0),
    )?;
    Ok(value
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map_or(0, u64::from_be_bytes))
}
