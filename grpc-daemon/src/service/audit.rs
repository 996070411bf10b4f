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

#[cfg(test)]
mod tests {
    use tinfoil_proto::v1 as pb;
    use tinfoil_proto::v1::key_management_server::KeyManagement;
    use tonic::{Code, Request};

    use crate::service::tests::service;
    use crate::service::CallLimits;
    use crate::status::reason_of;

    async fn key(svc: &crate::service::KmsService) -> String {
        svc.create_key(Request::new(pb::CreateKeyRequest::default()))
            .await
            .unwrap()
            .into_inner()
            .key_metadata
            .unwrap()
            .key_id
    }

    fn encrypt(key_id: &str) -> Request<pb::EncryptRequest> {
        Request::new(pb::EncryptRequest {
            key_id: key_id.to_string(),
            plaintext: b"audited".to_vec(),
            ..Default::default()
        })
    }

    #[tokio::test]
    async fn a_crypto_call_answers_after_its_record_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(&dir, CallLimits::default());
        let key_id = key(&svc).await;
        svc.encrypt(encrypt(&key_id)).await.unwrap();
        let page = svc
            .lookup_events(Request::new(pb::LookupEventsRequest {
                lookup_attributes: vec![pb::LookupAttribute {
                    attribute_key: "EventName".into(),
                    attribute_value: "Encrypt".into(),
                }],
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.events.len(), 1);
        assert!(page.events[0].cloud_trail_event.contains(&key_id));
        let err = svc
            .lookup_events(Request::new(pb::LookupEventsRequest {
                lookup_attributes: vec![pb::LookupAttribute {
                    attribute_key: "Colour".into(),
                    attribute_value: "red".into(),
                }],
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }

    #[tokio::test]
    async fn a_record_that_cannot_be_written_fails_the_call() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(&dir, CallLimits::default());
        let key_id = key(&svc).await;
        // The audit table refuses every insert, as a full disk would.
        let conn = rusqlite::Connection::open(dir.path().join("store").join("tinfoil.db")).unwrap();
        conn.execute_batch(
            "CREATE TRIGGER audit_full BEFORE INSERT ON audit_records
             BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
        )
        .unwrap();
        drop(conn);
        let err = svc.encrypt(encrypt(&key_id)).await.unwrap_err();
        assert_eq!(err.code(), Code::Internal, "{err:?}");
        assert_eq!(reason_of(&err).as_deref(), Some("KMSInternalException"));
        assert!(
            err.message().contains("audit log cannot be written"),
            "{}",
            err.message()
        );
        let err = svc
            .disable_key(Request::new(pb::DisableKeyRequest {
                key_id: key_id.clone(),
            }))
            .await
            .unwrap_err();
        assert!(
            err.message().contains("audit log cannot be written"),
            "{}",
            err.message()
        );
        // Nothing changed.
        assert_eq!(
            svc.hsm().describe_key(&key_id).unwrap().key_state,
            hsm_core::KeyState::Enabled
        );
    }
}
