//! Who may use which token key through the daemon backend: the socket
//! peer's principal (as for KeyManagement), decided by the gate as the KMS
//! action each call amounts to. Session keys belong to their connection and
//! are not subject to key policies. A refusal is CKR_KEY_FUNCTION_NOT_PERMITTED
//! with the gate's AccessDeniedException message; the module reports it from
//! the call that uses the key (C_Sign, C_Encrypt, ...: the daemon backend's
//! C_SignInit / C_EncryptInit make no round trip).

use std::collections::HashMap;

use hsm_core::Caller;
use tinfoil_proto::v1 as pb;
use tonic::{Code, Request, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::Pkcs11Service;

/// CKR_KEY_FUNCTION_NOT_PERMITTED.
const KEY_FUNCTION_NOT_PERMITTED: u64 = 0x68;

/// The status of a refused key use: the module maps it to
/// CKR_KEY_FUNCTION_NOT_PERMITTED and keeps the message.
fn denied(message: &str) -> Status {
    let metadata = HashMap::from([(
        tinfoil_proto::CKR_METADATA_KEY.to_string(),
        KEY_FUNCTION_NOT_PERMITTED.to_string(),
    )]);
    let details = ErrorDetails::with_error_info(
        tinfoil_proto::PKCS11_ERROR_REASON,
        tinfoil_proto::ERROR_DOMAIN,
        metadata,
    );
    Status::with_error_details(Code::PermissionDenied, message.to_string(), details)
}

impl Pkcs11Service {
    /// The caller of a PKCS#11 request (the socket peer's principal); a
    /// peer that stands for no principal may use no token key.
    pub(super) fn caller_of<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        self.kms.caller(request).map_err(|s| denied(s.message()))
    }

    /// Refuses a token key the caller may not use for `function`
    /// (decided as `action`). Keys that do not resolve are left to the
    /// backend, which answers CKR_KEY_HANDLE_INVALID. The gate records the
    /// use (issue 11); the record is made durable on the blocking pool
    /// (group commit with other calls), never on the runtime's thread, and
    /// a record that cannot be written refuses the call.
    pub(super) async fn check_key_use(
        &self,
        caller: &Caller,
        key: Option<&pb::P11KeyHandle>,
        function: &'static str,
        action: &'static str,
    ) -> Result<(), Status> {
        let Some(pb::P11KeyHandle {
            kind: Some(pb::p11_key_handle::Kind::Stored(key_id)),
        }) = key
        else {
            return Ok(());
        };
        let (decision, durability) = hsm_core::audit::defer_durability(|| {
            self.kms
                .hsm()
                .gate(caller)
                .pkcs11_key_use(function, action, key_id)
        });
        if let Some(durability) = durability {
            let hsm = std::sync::Arc::clone(self.kms.hsm());
            match tokio::task::spawn_blocking(move || durability.wait(&hsm)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(crate::status::from_core(e)),
                Err(_) => return Err(Status::internal("the audit writer task failed")),
            }
        }
        match decision {
            Err(e @ hsm_core::Error::AccessDenied(_)) => Err(denied(&e.to_string())),
            _ => Ok(()),
        }
    }

    /// Refuses a caller who may not make keys (`kms:CreateKey`).
    pub(super) fn check_key_creation(
        &self,
        caller: &Caller,
        function: &'static str,
    ) -> Result<(), Status> {
        self.kms
            .hsm()
            .gate(caller)
            .pkcs11_may_create_key(function)
            .map_err(|e| denied(&e.to_string()))
    }

    /// Gives a token key a user just made the creator policy, so the user
    /// can use it (administrators are allowed by the default policy).
    pub(super) fn adopt_key(&self, caller: &Caller, key: &pb::P11KeyHandle) -> Result<(), Status> {
        if let Some(pb::p11_key_handle::Kind::Stored(key_id)) = &key.kind {
            self.kms
                .hsm()
                .gate(caller)
                .pkcs11_key_created(key_id)
                .map_err(crate::status::from_core)?;
        }
        Ok(())
    }
}

/// An answer that carries a key the call made.
pub(super) trait CreatedKey {
    /// The key the call made, if any.
    fn created_key(&self) -> Option<&pb::P11KeyHandle>;
}

impl CreatedKey for pb::P11KeyHandle {
    fn created_key(&self) -> Option<&pb::P11KeyHandle> {
        Some(self)
    }
}

impl CreatedKey for pb::P11UnwrapResponse {
    fn created_key(&self) -> Option<&pb::P11KeyHandle> {
        self.key.as_ref()
    }
}

impl CreatedKey for pb::P11GenerateKeyPairResponse {
    fn created_key(&self) -> Option<&pb::P11KeyHandle> {
        self.key.as_ref()
    }
}

impl Pkcs11Service {
    /// [`Pkcs11Service::adopt_key`] for the key an answer carries.
    pub(super) fn adopt_created<T: CreatedKey>(
        &self,
        caller: &Caller,
        response: &tonic::Response<T>,
    ) -> Result<(), Status> {
        match response.get_ref().created_key() {
            Some(key) => self.adopt_key(caller, key),
            None => Ok(()),
        }
    }
}
