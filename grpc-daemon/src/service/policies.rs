//! Key policy and grant RPCs: translated to the gate's calls, which
//! decide and record them like every other operation.

use tinfoil_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::KmsService;

impl KmsService {
    pub(super) async fn get_key_policy_rpc(
        &self,
        request: Request<pb::GetKeyPolicyRequest>,
    ) -> Result<Response<pb::GetKeyPolicyResponse>, Status> {
        let _caller = self.caller(&request)?;
        Err(Status::unimplemented(
            "get_key_policy: key policies and grants are being wired in",
        ))
    }

    pub(super) async fn put_key_policy_rpc(
        &self,
        request: Request<pb::PutKeyPolicyRequest>,
    ) -> Result<Response<pb::PutKeyPolicyResponse>, Status> {
        let _caller = self.caller(&request)?;
        Err(Status::unimplemented(
            "put_key_policy: key policies and grants are being wired in",
        ))
    }

    pub(super) async fn list_key_policies_rpc(
        &self,
        request: Request<pb::ListKeyPoliciesRequest>,
    ) -> Result<Response<pb::ListKeyPoliciesResponse>, Status> {
        let _caller = self.caller(&request)?;
        Err(Status::unimplemented(
            "list_key_policies: key policies and grants are being wired in",
        ))
    }

    pub(super) async fn create_grant_rpc(
        &self,
        request: Request<pb::CreateGrantRequest>,
    ) -> Result<Response<pb::CreateGrantResponse>, Status> {
        let _caller = self.caller(&request)?;
        Err(Status::unimplemented(
            "create_grant: key policies and grants are being wired in",
        ))
    }

    pub(super) async fn list_grants_rpc(
        &self,
        request: Request<pb::ListGrantsRequest>,
    ) -> Result<Response<pb::ListGrantsResponse>, Status> {
        let _caller = self.caller(&request)?;
        Err(Status::unimplemented(
            "list_grants: key policies and grants are being wired in",
        ))
    }

    pub(super) async fn list_retirable_grants_rpc(
        &self,
        request: Request<pb::ListRetirableGrantsRequest>,
    ) -> Result<Response<pb::ListGrantsResponse>, Status> {
        let _caller = self.caller(&request)?;
        Err(Status::unimplemented(
            "list_retirable_grants: key policies and grants are being wired in",
        ))
    }

    pub(super) async fn retire_grant_rpc(
        &self,
        request: Request<pb::RetireGrantRequest>,
    ) -> Result<Response<pb::RetireGrantResponse>, Status> {
        let _caller = self.caller(&request)?;
        Err(Status::unimplemented(
            "retire_grant: key policies and grants are being wired in",
        ))
    }

    pub(super) async fn revoke_grant_rpc(
        &self,
        request: Request<pb::RevokeGrantRequest>,
    ) -> Result<Response<pb::RevokeGrantResponse>, Status> {
        let _caller = self.caller(&request)?;
        Err(Status::unimplemented(
            "revoke_grant: key policies and grants are being wired in",
        ))
    }
}
