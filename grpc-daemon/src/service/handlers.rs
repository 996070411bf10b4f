//! The RPC handlers: unpack the request, call hsm-core on the blocking
//! pool through [`KmsService::run`], pack the response.

use hsm_core as core;
use tinfoil_proto::v1 as pb;
use tinfoil_proto::v1::key_management_server::KeyManagement;
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use super::{message_type, KmsService};
use crate::convert::{self, opt};

#[tonic::async_trait]
impl KeyManagement for KmsService {
    async fn create_key(
        &self,
        request: Request<pb::CreateKeyRequest>,
    ) -> Result<Response<pb::CreateKeyResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_slow_as("CreateKey", caller, move |hsm| {
            let req = core::CreateKeyRequest {
                description: r.description,
                key_spec: opt(r.key_spec.as_deref(), core::KeySpec::parse)?,
                key_usage: opt(r.key_usage.as_deref(), core::KeyUsage::parse)?,
                tags: r.tags.into_iter().map(convert::tag_to_core).collect(),
                token: r.token,
            };
            let m = hsm.create_key_with_policy(
                req,
                r.policy.as_deref(),
                r.bypass_policy_lockout_safety_check,
            )?;
            Ok(pb::CreateKeyResponse {
                key_metadata: Some(convert::key_metadata(m)),
            })
        })
        .await
    }

    async fn describe_key(
        &self,
        request: Request<pb::DescribeKeyRequest>,
    ) -> Result<Response<pb::DescribeKeyResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("DescribeKey", caller, move |hsm| {
            Ok(pb::DescribeKeyResponse {
                key_metadata: Some(convert::key_metadata(hsm.describe_key(&r.key_id)?)),
            })
        })
        .await
    }

    async fn list_keys(
        &self,
        request: Request<pb::ListKeysRequest>,
    ) -> Result<Response<pb::ListKeysResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("ListKeys", caller, move |hsm| {
            let page = hsm.list_keys(r.limit, r.marker.as_deref())?;
            let (keys, next_marker, truncated) = convert::page(page, convert::key_entry);
            Ok(pb::ListKeysResponse {
                keys,
                next_marker,
                truncated,
            })
        })
        .await
    }

    async fn update_key_description(
        &self,
        request: Request<pb::UpdateKeyDescriptionRequest>,
    ) -> Result<Response<pb::UpdateKeyDescriptionResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("UpdateKeyDescription", caller, move |hsm| {
            hsm.update_key_description(&r.key_id, &r.description)?;
            Ok(pb::UpdateKeyDescriptionResponse {})
        })
        .await
    }

    async fn enable_key(
        &self,
        request: Request<pb::EnableKeyRequest>,
    ) -> Result<Response<pb::EnableKeyResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("EnableKey", caller, move |hsm| {
            hsm.enable_key(&r.key_id)?;
            Ok(pb::EnableKeyResponse {})
        })
        .await
    }

    async fn disable_key(
        &self,
        request: Request<pb::DisableKeyRequest>,
    ) -> Result<Response<pb::DisableKeyResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("DisableKey", caller, move |hsm| {
            hsm.disable_key(&r.key_id)?;
            Ok(pb::DisableKeyResponse {})
        })
        .await
    }

    async fn schedule_key_deletion(
        &self,
        request: Request<pb::ScheduleKeyDeletionRequest>,
    ) -> Result<Response<pb::ScheduleKeyDeletionResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("ScheduleKeyDeletion", caller, move |hsm| {
            let d = hsm.schedule_key_deletion(&r.key_id, r.pending_window_in_days)?;
            Ok(pb::ScheduleKeyDeletionResponse {
                key_id: d.key_id,
                deletion_date: d.deletion_date,
                key_state: d.key_state.to_string(),
                pending_window_in_days: d.pending_window_in_days,
            })
        })
        .await
    }

    async fn cancel_key_deletion(
        &self,
        request: Request<pb::CancelKeyDeletionRequest>,
    ) -> Result<Response<pb::CancelKeyDeletionResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("CancelKeyDeletion", caller, move |hsm| {
            Ok(pb::CancelKeyDeletionResponse {
                key_id: hsm.cancel_key_deletion(&r.key_id)?,
            })
        })
        .await
    }

    async fn enable_key_rotation(
        &self,
        request: Request<pb::EnableKeyRotationRequest>,
    ) -> Result<Response<pb::EnableKeyRotationResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("EnableKeyRotation", caller, move |hsm| {
            hsm.enable_key_rotation(&r.key_id, r.rotation_period_in_days)?;
            Ok(pb::EnableKeyRotationResponse {})
        })
        .await
    }

    async fn disable_key_rotation(
        &self,
        request: Request<pb::DisableKeyRotationRequest>,
    ) -> Result<Response<pb::DisableKeyRotationResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("DisableKeyRotation", caller, move |hsm| {
            hsm.disable_key_rotation(&r.key_id)?;
            Ok(pb::DisableKeyRotationResponse {})
        })
        .await
    }

    async fn get_key_rotation_status(
        &self,
        request: Request<pb::GetKeyRotationStatusRequest>,
    ) -> Result<Response<pb::GetKeyRotationStatusResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("GetKeyRotationStatus", caller, move |hsm| {
            let s = hsm.get_key_rotation_status(&r.key_id)?;
            Ok(pb::GetKeyRotationStatusResponse {
                key_id: s.key_id,
                key_rotation_enabled: s.key_rotation_enabled,
                rotation_period_in_days: s.rotation_period_in_days,
                next_rotation_date: s.next_rotation_date,
                on_demand_rotation_start_date: s.on_demand_rotation_start_date,
            })
        })
        .await
    }

    async fn rotate_key_on_demand(
        &self,
        request: Request<pb::RotateKeyOnDemandRequest>,
    ) -> Result<Response<pb::RotateKeyOnDemandResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("RotateKeyOnDemand", caller, move |hsm| {
            Ok(pb::RotateKeyOnDemandResponse {
                key_id: hsm.rotate_key_on_demand(&r.key_id)?,
            })
        })
        .await
    }

    async fn list_key_rotations(
        &self,
        request: Request<pb::ListKeyRotationsRequest>,
    ) -> Result<Response<pb::ListKeyRotationsResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("ListKeyRotations", caller, move |hsm| {
            let page = hsm.list_key_rotations(&r.key_id, r.limit, r.marker.as_deref())?;
            let (rotations, next_marker, truncated) = convert::page(page, convert::rotation_entry);
            Ok(pb::ListKeyRotationsResponse {
                rotations,
                next_marker,
                truncated,
            })
        })
        .await
    }

    async fn create_alias(
        &self,
        request: Request<pb::CreateAliasRequest>,
    ) -> Result<Response<pb::CreateAliasResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("CreateAlias", caller, move |hsm| {
            hsm.create_alias(&r.alias_name, &r.target_key_id)?;
            Ok(pb::CreateAliasResponse {})
        })
        .await
    }

    async fn update_alias(
        &self,
        request: Request<pb::UpdateAliasRequest>,
    ) -> Result<Response<pb::UpdateAliasResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("UpdateAlias", caller, move |hsm| {
            hsm.update_alias(&r.alias_name, &r.target_key_id)?;
            Ok(pb::UpdateAliasResponse {})
        })
        .await
    }

    async fn delete_alias(
        &self,
        request: Request<pb::DeleteAliasRequest>,
    ) -> Result<Response<pb::DeleteAliasResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("DeleteAlias", caller, move |hsm| {
            hsm.delete_alias(&r.alias_name)?;
            Ok(pb::DeleteAliasResponse {})
        })
        .await
    }

    async fn list_aliases(
        &self,
        request: Request<pb::ListAliasesRequest>,
    ) -> Result<Response<pb::ListAliasesResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("ListAliases", caller, move |hsm| {
            let page = hsm.list_aliases(r.key_id.as_deref(), r.limit, r.marker.as_deref())?;
            let (aliases, next_marker, truncated) = convert::page(page, convert::alias_entry);
            Ok(pb::ListAliasesResponse {
                aliases,
                next_marker,
                truncated,
            })
        })
        .await
    }

    async fn tag_resource(
        &self,
        request: Request<pb::TagResourceRequest>,
    ) -> Result<Response<pb::TagResourceResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("TagResource", caller, move |hsm| {
            let tags: Vec<core::Tag> = r.tags.into_iter().map(convert::tag_to_core).collect();
            hsm.tag_resource(&r.key_id, &tags)?;
            Ok(pb::TagResourceResponse {})
        })
        .await
    }

    async fn untag_resource(
        &self,
        request: Request<pb::UntagResourceRequest>,
    ) -> Result<Response<pb::UntagResourceResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("UntagResource", caller, move |hsm| {
            hsm.untag_resource(&r.key_id, &r.tag_keys)?;
            Ok(pb::UntagResourceResponse {})
        })
        .await
    }

    async fn list_resource_tags(
        &self,
        request: Request<pb::ListResourceTagsRequest>,
    ) -> Result<Response<pb::ListResourceTagsResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("ListResourceTags", caller, move |hsm| {
            let page = hsm.list_resource_tags(&r.key_id, r.limit, r.marker.as_deref())?;
            let (tags, next_marker, truncated) = convert::page(page, convert::tag_from_core);
            Ok(pb::ListResourceTagsResponse {
                tags,
                next_marker,
                truncated,
            })
        })
        .await
    }

    async fn encrypt(
        &self,
        request: Request<pb::EncryptRequest>,
    ) -> Result<Response<pb::EncryptResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        let plaintext = Zeroizing::new(r.plaintext);
        self.run_as("Encrypt", caller, move |hsm| {
            let algorithm = opt(
                r.encryption_algorithm.as_deref(),
                core::EncryptionAlgorithm::parse,
            )?;
            let out = hsm.encrypt(&r.key_id, &plaintext, &r.encryption_context, algorithm)?;
            Ok(pb::EncryptResponse {
                ciphertext_blob: out.ciphertext_blob,
                key_id: out.key_id,
                encryption_algorithm: out.encryption_algorithm.to_string(),
            })
        })
        .await
    }

    async fn decrypt(
        &self,
        request: Request<pb::DecryptRequest>,
    ) -> Result<Response<pb::DecryptResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("Decrypt", caller, move |hsm| {
            let algorithm = opt(
                r.encryption_algorithm.as_deref(),
                core::EncryptionAlgorithm::parse,
            )?;
            let out = hsm.decrypt(
                &r.ciphertext_blob,
                &r.encryption_context,
                r.key_id.as_deref(),
                algorithm,
            )?;
            Ok(pb::DecryptResponse {
                key_id: out.key_id.clone(),
                plaintext: out.plaintext.to_vec(),
                encryption_algorithm: out.encryption_algorithm.to_string(),
            })
        })
        .await
    }

    async fn re_encrypt(
        &self,
        request: Request<pb::ReEncryptRequest>,
    ) -> Result<Response<pb::ReEncryptResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("ReEncrypt", caller, move |hsm| {
            let out = hsm.re_encrypt(
                &r.ciphertext_blob,
                &r.source_encryption_context,
                r.source_key_id.as_deref(),
                &r.destination_key_id,
                &r.destination_encryption_context,
            )?;
            Ok(pb::ReEncryptResponse {
                ciphertext_blob: out.ciphertext_blob,
                source_key_id: out.source_key_id,
                key_id: out.key_id,
                source_encryption_algorithm: out.source_encryption_algorithm.to_string(),
                destination_encryption_algorithm: out.destination_encryption_algorithm.to_string(),
            })
        })
        .await
    }

    async fn generate_data_key(
        &self,
        request: Request<pb::GenerateDataKeyRequest>,
    ) -> Result<Response<pb::GenerateDataKeyResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("GenerateDataKey", caller, move |hsm| {
            let spec = opt(r.key_spec.as_deref(), core::DataKeySpec::parse)?;
            let key =
                hsm.generate_data_key(&r.key_id, spec, r.number_of_bytes, &r.encryption_context)?;
            Ok(pb::GenerateDataKeyResponse {
                plaintext: key
                    .plaintext
                    .as_ref()
                    .map(|p| p.to_vec())
                    .unwrap_or_default(),
                ciphertext_blob: key.ciphertext_blob.clone(),
                key_id: key.key_id.clone(),
            })
        })
        .await
    }

    async fn generate_data_key_without_plaintext(
        &self,
        request: Request<pb::GenerateDataKeyWithoutPlaintextRequest>,
    ) -> Result<Response<pb::GenerateDataKeyWithoutPlaintextResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("GenerateDataKeyWithoutPlaintext", caller, move |hsm| {
            let spec = opt(r.key_spec.as_deref(), core::DataKeySpec::parse)?;
            let key = hsm.generate_data_key_without_plaintext(
                &r.key_id,
                spec,
                r.number_of_bytes,
                &r.encryption_context,
            )?;
            Ok(pb::GenerateDataKeyWithoutPlaintextResponse {
                ciphertext_blob: key.ciphertext_blob.clone(),
                key_id: key.key_id.clone(),
            })
        })
        .await
    }

    async fn generate_random(
        &self,
        request: Request<pb::GenerateRandomRequest>,
    ) -> Result<Response<pb::GenerateRandomResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("GenerateRandom", caller, move |hsm| {
            let bytes = hsm.generate_random(r.number_of_bytes)?;
            Ok(pb::GenerateRandomResponse {
                plaintext: bytes.to_vec(),
            })
        })
        .await
    }

    async fn sign(
        &self,
        request: Request<pb::SignRequest>,
    ) -> Result<Response<pb::SignResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        let message = Zeroizing::new(r.message);
        self.run_as("Sign", caller, move |hsm| {
            let kind = message_type(r.message_type.as_deref())?;
            let algorithm = core::SigningAlgorithm::parse(&r.signing_algorithm)?;
            let out = hsm.sign(&r.key_id, &message, kind, algorithm)?;
            Ok(pb::SignResponse {
                key_id: out.key_id,
                signature: out.signature,
                signing_algorithm: out.signing_algorithm.to_string(),
            })
        })
        .await
    }

    async fn verify(
        &self,
        request: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        let message = Zeroizing::new(r.message);
        self.run_as("Verify", caller, move |hsm| {
            let kind = message_type(r.message_type.as_deref())?;
            let algorithm = core::SigningAlgorithm::parse(&r.signing_algorithm)?;
            let out = hsm.verify(&r.key_id, &message, kind, &r.signature, algorithm)?;
            Ok(pb::VerifyResponse {
                key_id: out.key_id,
                signature_valid: out.signature_valid,
                signing_algorithm: out.signing_algorithm.to_string(),
            })
        })
        .await
    }

    async fn get_public_key(
        &self,
        request: Request<pb::GetPublicKeyRequest>,
    ) -> Result<Response<pb::GetPublicKeyResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("GetPublicKey", caller, move |hsm| {
            let out = hsm.get_public_key(&r.key_id)?;
            Ok(pb::GetPublicKeyResponse {
                key_id: out.key_id,
                public_key: out.public_key,
                key_spec: out.key_spec.to_string(),
                key_usage: out.key_usage.to_string(),
                encryption_algorithms: convert::names(&out.encryption_algorithms),
                signing_algorithms: convert::names(&out.signing_algorithms),
                encapsulation_algorithms: convert::names(&out.key_usage.encapsulation_algorithms()),
            })
        })
        .await
    }

    async fn encapsulate(
        &self,
        request: Request<pb::EncapsulateRequest>,
    ) -> Result<Response<pb::EncapsulateResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("Encapsulate", caller, move |hsm| {
            let algorithm = core::EncapsulationAlgorithm::parse(&r.encapsulation_algorithm)?;
            let out = hsm.encapsulate(&r.key_id, algorithm)?;
            Ok(pb::EncapsulateResponse {
                key_id: out.key_id.clone(),
                shared_secret: out.shared_secret.to_vec(),
                shared_secret_ciphertext_blob: out.shared_secret_ciphertext_blob.clone(),
                encapsulation_algorithm: out.encapsulation_algorithm.to_string(),
            })
        })
        .await
    }

    async fn decapsulate(
        &self,
        request: Request<pb::DecapsulateRequest>,
    ) -> Result<Response<pb::DecapsulateResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("Decapsulate", caller, move |hsm| {
            let algorithm = core::EncapsulationAlgorithm::parse(&r.encapsulation_algorithm)?;
            let out = hsm.decapsulate(&r.key_id, &r.shared_secret_ciphertext_blob, algorithm)?;
            Ok(pb::DecapsulateResponse {
                key_id: out.key_id.clone(),
                shared_secret: out.shared_secret.to_vec(),
                encapsulation_algorithm: out.encapsulation_algorithm.to_string(),
            })
        })
        .await
    }

    async fn generate_mac(
        &self,
        request: Request<pb::GenerateMacRequest>,
    ) -> Result<Response<pb::GenerateMacResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        let message = Zeroizing::new(r.message);
        self.run_as("GenerateMac", caller, move |hsm| {
            let algorithm = core::MacAlgorithm::parse(&r.mac_algorithm)?;
            let out = hsm.generate_mac(&r.key_id, &message, algorithm)?;
            Ok(pb::GenerateMacResponse {
                key_id: out.key_id,
                mac: out.mac,
                mac_algorithm: out.mac_algorithm.to_string(),
            })
        })
        .await
    }

    async fn verify_mac(
        &self,
        request: Request<pb::VerifyMacRequest>,
    ) -> Result<Response<pb::VerifyMacResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        let message = Zeroizing::new(r.message);
        self.run_as("VerifyMac", caller, move |hsm| {
            let algorithm = core::MacAlgorithm::parse(&r.mac_algorithm)?;
            let key_id = hsm.verify_mac(&r.key_id, &message, &r.mac, algorithm)?;
            Ok(pb::VerifyMacResponse {
                key_id,
                mac_valid: true,
                mac_algorithm: algorithm.to_string(),
            })
        })
        .await
    }

    async fn generate_data_key_pair(
        &self,
        request: Request<pb::GenerateDataKeyPairRequest>,
    ) -> Result<Response<pb::GenerateDataKeyPairResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_slow_as("GenerateDataKeyPair", caller, move |hsm| {
            let spec = core::DataKeyPairSpec::parse(&r.key_pair_spec)?;
            let pair = hsm.generate_data_key_pair(&r.key_id, spec, &r.encryption_context, true)?;
            Ok(pb::GenerateDataKeyPairResponse {
                private_key_ciphertext_blob: pair.private_key_ciphertext_blob.clone(),
                private_key_plaintext: pair
                    .private_key_plaintext
                    .as_ref()
                    .map(|p| p.to_vec())
                    .unwrap_or_default(),
                public_key: pair.public_key.clone(),
                key_id: pair.key_id.clone(),
                key_pair_spec: pair.key_pair_spec.to_string(),
            })
        })
        .await
    }

    async fn generate_data_key_pair_without_plaintext(
        &self,
        request: Request<pb::GenerateDataKeyPairWithoutPlaintextRequest>,
    ) -> Result<Response<pb::GenerateDataKeyPairWithoutPlaintextResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_slow_as("GenerateDataKeyPairWithoutPlaintext", caller, move |hsm| {
            let spec = core::DataKeyPairSpec::parse(&r.key_pair_spec)?;
            let pair = hsm.generate_data_key_pair(&r.key_id, spec, &r.encryption_context, false)?;
            Ok(pb::GenerateDataKeyPairWithoutPlaintextResponse {
                private_key_ciphertext_blob: pair.private_key_ciphertext_blob.clone(),
                public_key: pair.public_key.clone(),
                key_id: pair.key_id.clone(),
                key_pair_spec: pair.key_pair_spec.to_string(),
            })
        })
        .await
    }
    async fn lookup_events(
        &self,
        request: Request<pb::LookupEventsRequest>,
    ) -> Result<Response<pb::LookupEventsResponse>, Status> {
        self.lookup_events_rpc(request).await
    }

    async fn get_audit_public_key(
        &self,
        request: Request<pb::GetAuditPublicKeyRequest>,
    ) -> Result<Response<pb::GetAuditPublicKeyResponse>, Status> {
        self.get_audit_public_key_rpc(request).await
    }

    async fn export_audit_log(
        &self,
        request: Request<pb::ExportAuditLogRequest>,
    ) -> Result<Response<pb::ExportAuditLogResponse>, Status> {
        self.export_audit_log_rpc(request).await
    }

    async fn confirm_audit_export(
        &self,
        request: Request<pb::ConfirmAuditExportRequest>,
    ) -> Result<Response<pb::ConfirmAuditExportResponse>, Status> {
        self.confirm_audit_export_rpc(request).await
    }

    async fn prune_audit_log(
        &self,
        request: Request<pb::PruneAuditLogRequest>,
    ) -> Result<Response<pb::PruneAuditLogResponse>, Status> {
        self.prune_audit_log_rpc(request).await
    }

    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        self.create_user_rpc(request).await
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        self.delete_user_rpc(request).await
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        self.list_users_rpc(request).await
    }

    async fn create_access_key(
        &self,
        request: Request<pb::CreateAccessKeyRequest>,
    ) -> Result<Response<pb::CreateAccessKeyResponse>, Status> {
        self.create_access_key_rpc(request).await
    }

    async fn list_access_keys(
        &self,
        request: Request<pb::ListAccessKeysRequest>,
    ) -> Result<Response<pb::ListAccessKeysResponse>, Status> {
        self.list_access_keys_rpc(request).await
    }

    async fn delete_access_key(
        &self,
        request: Request<pb::DeleteAccessKeyRequest>,
    ) -> Result<Response<pb::DeleteAccessKeyResponse>, Status> {
        self.delete_access_key_rpc(request).await
    }
    async fn get_key_policy(
        &self,
        request: Request<pb::GetKeyPolicyRequest>,
    ) -> Result<Response<pb::GetKeyPolicyResponse>, Status> {
        self.get_key_policy_rpc(request).await
    }

    async fn put_key_policy(
        &self,
        request: Request<pb::PutKeyPolicyRequest>,
    ) -> Result<Response<pb::PutKeyPolicyResponse>, Status> {
        self.put_key_policy_rpc(request).await
    }

    async fn list_key_policies(
        &self,
        request: Request<pb::ListKeyPoliciesRequest>,
    ) -> Result<Response<pb::ListKeyPoliciesResponse>, Status> {
        self.list_key_policies_rpc(request).await
    }

    async fn create_grant(
        &self,
        request: Request<pb::CreateGrantRequest>,
    ) -> Result<Response<pb::CreateGrantResponse>, Status> {
        self.create_grant_rpc(request).await
    }

    async fn list_grants(
        &self,
        request: Request<pb::ListGrantsRequest>,
    ) -> Result<Response<pb::ListGrantsResponse>, Status> {
        self.list_grants_rpc(request).await
    }

    async fn list_retirable_grants(
        &self,
        request: Request<pb::ListRetirableGrantsRequest>,
    ) -> Result<Response<pb::ListGrantsResponse>, Status> {
        self.list_retirable_grants_rpc(request).await
    }

    async fn retire_grant(
        &self,
        request: Request<pb::RetireGrantRequest>,
    ) -> Result<Response<pb::RetireGrantResponse>, Status> {
        self.retire_grant_rpc(request).await
    }

    async fn revoke_grant(
        &self,
        request: Request<pb::RevokeGrantRequest>,
    ) -> Result<Response<pb::RevokeGrantResponse>, Status> {
        self.revoke_grant_rpc(request).await
    }
}
