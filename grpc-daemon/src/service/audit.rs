//! The audit log RPCs (administrators only; the gate decides and records
//! them): LookupEvents, GetAuditPublicKey, ExportAuditLog,
//! ConfirmAuditExport, PruneAuditLog.

use hsm_core::audit::{LookupAttribute, LookupEventsRequest};
use tinfoil_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::KmsService;

/// The lookup attribute of a request: at most one, of the four keys
/// CloudTrail's LookupEvents accepts here.
fn attribute(list: &[pb::LookupAttribute]) -> Result<Option<LookupAttribute>, Status> {
    let invalid = |msg: String| crate::status::from_core(hsm_core::Error::Validation(msg));
    match list {
        [] => Ok(None),
        [one] => {
            let value = one.attribute_value.clone();
            if value.is_empty() || value.len() > 2048 {
                return Err(invalid(
                    "AttributeValue must be 1 to 2048 characters".to_string(),
                ));
            }
            Ok(Some(match one.attribute_key.as_str() {
                "EventName" => LookupAttribute::EventName(value),
                "Username" => LookupAttribute::Username(value),
                "ResourceName" => LookupAttribute::ResourceName(value),
                "AccessKeyId" => LookupAttribute::AccessKeyId(value),
                other => {
                    return Err(invalid(format!(
                        "AttributeKey {:?} is not one of EventName, Username, ResourceName, AccessKeyId",
                        other.chars().take(64).collect::<String>()
                    )))
                }
            }))
        }
        _ => Err(invalid("LookupAttributes takes one attribute".to_string())),
    }
}

impl KmsService {
    pub(super) async fn lookup_events_rpc(
        &self,
        request: Request<pb::LookupEventsRequest>,
    ) -> Result<Response<pb::LookupEventsResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        let query = LookupEventsRequest {
            start_time: r.start_time,
            end_time: r.end_time,
            attribute: attribute(&r.lookup_attributes)?,
            max_results: r.max_results,
            next_token: r.next_token,
        };
        self.run_slow_as("LookupEvents", caller, move |gate| {
            let page = gate.lookup_events(&query)?;
            Ok(pb::LookupEventsResponse {
                events: page
                    .events
                    .into_iter()
                    .map(|e| pb::AuditEvent {
                        event_id: e.event_id,
                        event_name: e.event_name,
                        event_time: e.event_time,
                        username: e.username,
                        access_key_id: e.access_key_id,
                        resources: e
                            .resources
                            .into_iter()
                            .map(|(resource_type, resource_name)| pb::EventResource {
                                resource_type,
                                resource_name,
                            })
                            .collect(),
                        cloud_trail_event: e.cloud_trail_event,
                    })
                    .collect(),
                next_token: page.next_token,
            })
        })
        .await
    }

    pub(super) async fn get_audit_public_key_rpc(
        &self,
        request: Request<pb::GetAuditPublicKeyRequest>,
    ) -> Result<Response<pb::GetAuditPublicKeyResponse>, Status> {
        let caller = self.caller(&request)?;
        self.run_as("GetAuditPublicKey", caller, move |gate| {
            Ok(pb::GetAuditPublicKeyResponse {
                public_key: gate.get_audit_public_key()?,
            })
        })
        .await
    }

    pub(super) async fn export_audit_log_rpc(
        &self,
        request: Request<pb::ExportAuditLogRequest>,
    ) -> Result<Response<pb::ExportAuditLogResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_slow_as("ExportAuditLog", caller, move |gate| {
            let page = gate.export_audit_log(r.from_sequence, r.to_sequence)?;
            Ok(pb::ExportAuditLogResponse {
                records: page
                    .records
                    .into_iter()
                    .map(|(sequence, record)| pb::AuditRecord { sequence, record })
                    .collect(),
                checkpoints: page
                    .checkpoints
                    .into_iter()
                    .map(|(tree_size, note)| pb::AuditCheckpoint { tree_size, note })
                    .collect(),
                public_key: page.public_key,
                to_sequence: page.to_sequence,
                next_sequence: page.next_sequence,
            })
        })
        .await
    }

    pub(super) async fn confirm_audit_export_rpc(
        &self,
        request: Request<pb::ConfirmAuditExportRequest>,
    ) -> Result<Response<pb::ConfirmAuditExportResponse>, Status> {
        let caller = self.caller(&request)?;
        let through = request.into_inner().through_sequence;
        self.run_slow_as("ConfirmAuditExport", caller, move |gate| {
            gate.confirm_audit_export(through)?;
            Ok(pb::ConfirmAuditExportResponse {})
        })
        .await
    }

    pub(super) async fn prune_audit_log_rpc(
        &self,
        request: Request<pb::PruneAuditLogRequest>,
    ) -> Result<Response<pb::PruneAuditLogResponse>, Status> {
        let caller = self.caller(&request)?;
        let before = request.into_inner().before_sequence;
        self.run_slow_as("PruneAuditLog", caller, move |gate| {
            let outcome = gate.prune_audit_log(before)?;
            Ok(pb::PruneAuditLogResponse {
                pruned: outcome.pruned,
                first_kept: outcome.first_kept,
            })
        })
        .await
    }
}
