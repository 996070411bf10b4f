//! The user and access-key RPCs (administrators only; the gate decides).

use hsm_core as core;
use secrecy::ExposeSecret;
use tinfoil_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::KmsService;

fn user(info: core::UserInfo) -> pb::User {
    pb::User {
        user_name: info.user_name,
        arn: info.arn,
        create_date: info.create_date,
        unix_uid: info.unix_uid,
        cert_fingerprint: info.cert_fingerprint,
    }
}

fn access_key(info: core::AccessKeyInfo) -> pb::AccessKeyMetadata {
    pb::AccessKeyMetadata {
        user_name: info.user_name,
        access_key_id: info.access_key_id,
        status: info.status,
        create_date: info.create_date,
    }
}

impl KmsService {
    pub(super) async fn create_user_rpc(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("CreateUser", caller, move |gate| {
            let info = gate.create_user(&r.user_name, r.unix_uid, r.cert_fingerprint.as_deref())?;
            Ok(pb::CreateUserResponse {
                user: Some(user(info)),
            })
        })
        .await
    }

    pub(super) async fn delete_user_rpc(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("DeleteUser", caller, move |gate| {
            gate.delete_user(&r.user_name)?;
            Ok(pb::DeleteUserResponse {})
        })
        .await
    }

    pub(super) async fn list_users_rpc(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let caller = self.caller(&request)?;
        self.run_as("ListUsers", caller, move |gate| {
            Ok(pb::ListUsersResponse {
                users: gate.list_users()?.into_iter().map(user).collect(),
            })
        })
        .await
    }

    pub(super) async fn create_access_key_rpc(
        &self,
        request: Request<pb::CreateAccessKeyRequest>,
    ) -> Result<Response<pb::CreateAccessKeyResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("CreateAccessKey", caller, move |gate| {
            let created = gate.create_access_key(&r.user_name)?;
            let info = created.info;
            Ok(pb::CreateAccessKeyResponse {
                access_key: Some(pb::AccessKey {
                    user_name: info.user_name,
                    access_key_id: info.access_key_id,
                    secret_access_key: created.secret_access_key.expose_secret().to_string(),
                    status: info.status,
                    create_date: info.create_date,
                }),
            })
        })
        .await
    }

    pub(super) async fn list_access_keys_rpc(
        &self,
        request: Request<pb::ListAccessKeysRequest>,
    ) -> Result<Response<pb::ListAccessKeysResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("ListAccessKeys", caller, move |gate| {
            Ok(pb::ListAccessKeysResponse {
                access_key_metadata: gate
                    .list_access_keys(&r.user_name)?
                    .into_iter()
                    .map(access_key)
                    .collect(),
            })
        })
        .await
    }

    pub(super) async fn delete_access_key_rpc(
        &self,
        request: Request<pb::DeleteAccessKeyRequest>,
    ) -> Result<Response<pb::DeleteAccessKeyResponse>, Status> {
        let caller = self.caller(&request)?;
        let r = request.into_inner();
        self.run_as("DeleteAccessKey", caller, move |gate| {
            gate.delete_access_key(&r.user_name, &r.access_key_id)?;
            Ok(pb::DeleteAccessKeyResponse {})
        })
        .await
    }
}
