//! Key policy and grant RPCs: translated to the gate's calls, which
//! decide and record them like every other operation.

use hsm_core::grants::{CreateGrantRequest, GrantConstraints, GrantListEntry, GrantOperation};
use hsm_core::{self as core, Page};
use tinfoil_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::KmsService;

/// The policy name of a request: empty means `default`.
fn policy_name(name: &str) -> Option<&str> {
    (!name.is_empty()).then_some(name)
}

fn constraints_to_core(c: pb::GrantConstraints) -> GrantConstraints {
    GrantConstraints {
        encryption_context_equals: (!c.encryption_context_equals.is_empty())
            .then_some(c.encryption_context_equals),
        encryption_context_subset: (!c.encryption_context_subset.is_empty())
            .then_some(c.encryption_context_subset),
    }
}

fn constraints_to_pb(c: GrantConstraints) -> pb::GrantConstraints {
    pb::GrantConstraints {
        encryption_context_equals: c.encryption_context_equals.unwrap_or_default(),
        encryption_context_subset: c.encryption_context_subset.unwrap_or_default(),
    }
}

fn grant_entry(e: GrantListEntry) -> pb::GrantListEntry {
    pb::GrantListEntry {
        key_id: e.key_id,
        grant_id: e.grant_id,
        name: e.name,
        creation_date: e.creation_date,
        grantee_principal: e.grantee_principal,
        retiring_principal: e.retiring_principal,
        issuing_account: e.issuing_account,
        operations: e
            .operations
            .into_iter()
            .map(|op| op.as_str().to_string())
            .collect(),
        constraints: e.constraints.map(constraints_to_pb),
    }
}

fn grants_page(page: Page<GrantListEntry>) -> pb::ListGrantsResponse {
    let truncated = page.truncated();
    pb::ListGrantsResponse {
        grants: page.items.into_iter().map(grant_entry).collect(),
        next_marker: page.next_marker,
        truncated,
    }
}

impl KmsService {
    pub(super) async fn get_key_policy_rpc(
        &self,
        request: Request<pb::GetKeyPolicyRequest>,
    ) -> Result<Response<pb::GetKeyPolicyResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("GetKeyPolicy", caller, move |gate| {
            let policy = gate.get_key_policy(&r.key_id, policy_name(&r.policy_name))?;
            Ok(pb::GetKeyPolicyResponse {
                policy,
                policy_name: "default".to_string(),
            })
        })
        .await
    }

    pub(super) async fn put_key_policy_rpc(
        &self,
        request: Request<pb::PutKeyPolicyRequest>,
    ) -> Result<Response<pb::PutKeyPolicyResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("PutKeyPolicy", caller, move |gate| {
            gate.put_key_policy(
                &r.key_id,
                policy_name(&r.policy_name),
                &r.policy,
                r.bypass_policy_lockout_safety_check,
            )?;
            Ok(pb::PutKeyPolicyResponse {})
        })
        .await
    }

    pub(super) async fn list_key_policies_rpc(
        &self,
        request: Request<pb::ListKeyPoliciesRequest>,
    ) -> Result<Response<pb::ListKeyPoliciesResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("ListKeyPolicies", caller, move |gate| {
            let page = gate.list_key_policies(&r.key_id, r.limit, r.marker.as_deref())?;
            let truncated = page.truncated();
            Ok(pb::ListKeyPoliciesResponse {
                policy_names: page.items,
                next_marker: page.next_marker,
                truncated,
            })
        })
        .await
    }

    pub(super) async fn create_grant_rpc(
        &self,
        request: Request<pb::CreateGrantRequest>,
    ) -> Result<Response<pb::CreateGrantResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("CreateGrant", caller, move |gate| {
            let operations = r
                .operations
                .iter()
                .map(|op| GrantOperation::parse(op))
                .collect::<core::Result<Vec<_>>>()?;
            let created = gate.create_grant(CreateGrantRequest {
                key_id: r.key_id,
                grantee_principal: r.grantee_principal,
                retiring_principal: r.retiring_principal,
                operations,
                constraints: r.constraints.map(constraints_to_core),
                name: r.name,
                grant_tokens: r.grant_tokens,
            })?;
            Ok(pb::CreateGrantResponse {
                grant_token: created.grant_token,
                grant_id: created.grant_id,
            })
        })
        .await
    }

    pub(super) async fn list_grants_rpc(
        &self,
        request: Request<pb::ListGrantsRequest>,
    ) -> Result<Response<pb::ListGrantsResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("ListGrants", caller, move |gate| {
            let page = gate.list_grants(
                &r.key_id,
                r.grant_id.as_deref(),
                r.grantee_principal.as_deref(),
                r.limit,
                r.marker.as_deref(),
            )?;
            Ok(grants_page(page))
        })
        .await
    }

    pub(super) async fn list_retirable_grants_rpc(
        &self,
        request: Request<pb::ListRetirableGrantsRequest>,
    ) -> Result<Response<pb::ListGrantsResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("ListRetirableGrants", caller, move |gate| {
            let page =
                gate.list_retirable_grants(&r.retiring_principal, r.limit, r.marker.as_deref())?;
            Ok(grants_page(page))
        })
        .await
    }

    pub(super) async fn retire_grant_rpc(
        &self,
        request: Request<pb::RetireGrantRequest>,
    ) -> Result<Response<pb::RetireGrantResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("RetireGrant", caller, move |gate| {
            gate.retire_grant(
                r.grant_token.as_deref(),
                r.key_id.as_deref(),
                r.grant_id.as_deref(),
            )?;
            Ok(pb::RetireGrantResponse {})
        })
        .await
    }

    pub(super) async fn revoke_grant_rpc(
        &self,
        request: Request<pb::RevokeGrantRequest>,
    ) -> Result<Response<pb::RevokeGrantResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("RevokeGrant", caller, move |gate| {
            gate.revoke_grant(&r.key_id, &r.grant_id)?;
            Ok(pb::RevokeGrantResponse {})
        })
        .await
    }
}
