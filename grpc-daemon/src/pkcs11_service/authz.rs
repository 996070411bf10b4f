//! Who may use which token key through the daemon backend: the socket
//! peer's principal (as for KeyManagement), decided by the gate as the KMS
//! action each call amounts to. Session keys belong to their connection and
//! are not subject to key policies. A refusal is CKR_KEY_FUNCTION_NOT_PERMITTED
//! with the gate's AccessDeniedException message; the module reports it from
//! the call that uses the key (C_Sign, C_Encrypt, ...: the daemon backend's
//! C_SignInit / C_EncryptInit make no round trip).

use std::collections::HashMap;
use std::sync::Arc;

use cryptoki_sys::CK_MECHANISM_TYPE;
use hsm_core::audit::Pkcs11Call;
use hsm_core::pkcs11::embedded::EmbeddedBackend;
use hsm_core::pkcs11::Pkcs11Error;
use hsm_core::Caller;
use tinfoil_proto::v1 as pb;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::Pkcs11Service;
use crate::service::Lane;
use crate::status;

/// A backend call the audit log records as a PKCS#11 call.
#[derive(Debug, Clone)]
pub(super) struct KeyCall {
    /// Who calls.
    pub caller: Caller,
    /// The function (C_Sign ...).
    pub function: &'static str,
    /// The mechanism the module named, if any.
    pub mechanism: Option<CK_MECHANISM_TYPE>,
    /// The KMS action the call is authorized as; `None`: recorded only
    /// (calls the daemon backend never authorized per key: copies,
    /// destruction, reading a readable key's value, sealing).
    pub action: Option<&'static str>,
    /// The token key it uses.
    pub key_id: Option<String>,
}

/// The token key (KMS key id) a handle names, if it names one.
pub(super) fn stored(key: Option<&pb::P11KeyHandle>) -> Option<&str> {
    match key {
        Some(pb::P11KeyHandle {
            kind: Some(pb::p11_key_handle::Kind::Stored(key_id)),
        }) => Some(key_id),
        _ => None,
    }
}

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

    /// Refuses a caller who may not make keys (`kms:CreateKey`), for a
    /// session key (token keys are made through
    /// [`Pkcs11Service::run_recorded`], which records the call).
    pub(super) fn check_key_creation(
        &self,
        caller: &Caller,
        _function: &'static str,
    ) -> Result<(), Status> {
        self.kms
            .hsm()
            .gate(caller)
            .pkcs11_may_create_key()
            .map_err(|e| denied(&e.to_string()))
    }

    /// Runs a backend call; with `call`, as the PKCS#11 call the audit log
    /// records (issue 11): one record with the function, mechanism, key,
    /// the authorization decision when `call.action` is set, and the
    /// outcome, durable before the answer leaves (group-committed with
    /// other calls). Without `call` (session keys only) it runs
    /// unrecorded.
    pub(super) async fn run_recorded<T, F>(
        &self,
        lane: Lane,
        op: &'static str,
        call: Option<KeyCall>,
        f: F,
    ) -> Result<Response<T>, Status>
    where
        F: FnOnce(&EmbeddedBackend) -> hsm_core::pkcs11::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let Some(call) = call else {
            return self.run(lane, op, f).await;
        };
        let backend = self.backend()?;
        let hsm = Arc::clone(self.kms.hsm());
        let job = move || {
            let mechanism = call.mechanism.map(hsm_core::pkcs11::audit::mechanism_name);
            let record = Pkcs11Call {
                function: call.function,
                mechanism: mechanism.as_deref(),
                key_id: call.key_id.as_deref(),
            };
            let failure =
                |e: &Pkcs11Error| (hsm_core::pkcs11::audit::ckr_name(e.rv()), e.to_string());
            let outcome = match call.action {
                Some(action) => {
                    hsm.gate(&call.caller)
                        .pkcs11_call(&record, action, || f(&backend), failure)
                }
                None => hsm.pkcs11_call(&call.caller, &record, || f(&backend), failure),
            };
            match outcome {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(e)) => Err(status::from_pkcs11(e)),
                Err(e @ hsm_core::Error::AccessDenied(_)) => Err(denied(&e.to_string())),
                Err(e) => Err(status::from_core(e)),
            }
        };
        self.kms.run_job(lane, op, job, |s| s).await
    }

    /// The recorded call of a request that uses `key` as `action` (none
    /// when `key` is a session key).
    pub(super) fn use_call<R>(
        &self,
        caller: &Caller,
        request: &Request<R>,
        key: Option<&pb::P11KeyHandle>,
        default: &'static str,
        action: &'static str,
    ) -> Option<KeyCall> {
        stored(key)
            .map(|key_id| self.key_call(caller, request, default, Some(action), Some(key_id)))
    }

    /// The recorded call of an encryption or decryption with `key`.
    pub(super) fn crypt_call<R>(
        &self,
        caller: &Caller,
        request: &Request<R>,
        key: Option<&pb::P11KeyHandle>,
        encrypt: bool,
    ) -> Option<KeyCall> {
        let (function, action) = if encrypt {
            ("C_Encrypt", "kms:Encrypt")
        } else {
            ("C_Decrypt", "kms:Decrypt")
        };
        self.use_call(caller, request, key, function, action)
    }

    /// The recorded call of a C_UnwrapKey: the use of a stored unwrapping
    /// key (`kms:Decrypt`), or else the creation of the unwrapped key.
    pub(super) fn unwrap_call<R>(
        &self,
        caller: &Caller,
        request: &Request<R>,
        unwrapping: Option<&pb::P11KeyHandle>,
        to_token: bool,
    ) -> Result<Option<KeyCall>, Status> {
        match self.use_call(caller, request, unwrapping, "C_UnwrapKey", "kms:Decrypt") {
            Some(call) => Ok(Some(call)),
            None => self.creation_call(caller, request, to_token, "C_UnwrapKey"),
        }
    }

    /// The recorded call of a request that makes a key: a token key is
    /// authorized as `kms:CreateKey` and recorded; a session key is only
    /// authorized (it lives in the connection).
    pub(super) fn creation_call<R>(
        &self,
        caller: &Caller,
        request: &Request<R>,
        to_token: bool,
        default: &'static str,
    ) -> Result<Option<KeyCall>, Status> {
        if to_token {
            return Ok(Some(self.key_call(
                caller,
                request,
                default,
                Some("kms:CreateKey"),
                None,
            )));
        }
        self.check_key_creation(caller, default)?;
        Ok(None)
    }

    /// The PKCS#11 call a request serves, for its record: the function and
    /// mechanism the module sent (a function tinfoild does not accept is
    /// replaced by `default`).
    pub(super) fn key_call<R>(
        &self,
        caller: &Caller,
        request: &Request<R>,
        default: &'static str,
        action: Option<&'static str>,
        key_id: Option<&str>,
    ) -> KeyCall {
        let metadata = request.metadata();
        let function = metadata
            .get(hsm_core::pkcs11::audit::FUNCTION_METADATA)
            .and_then(|v| v.to_str().ok())
            .and_then(|f| {
                hsm_core::pkcs11::audit::FUNCTIONS
                    .iter()
                    .copied()
                    .find(|known| *known == f)
            })
            .unwrap_or(default);
        let mechanism = metadata
            .get(hsm_core::pkcs11::audit::MECHANISM_METADATA)
            .and_then(|v| v.to_str().ok())
            .and_then(|m| m.parse::<CK_MECHANISM_TYPE>().ok());
        KeyCall {
            caller: caller.clone(),
            function,
            mechanism,
            action,
            key_id: key_id.map(str::to_string),
        }
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

impl CreatedKey for pb::P11ImportPrivateKeyResponse {
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
