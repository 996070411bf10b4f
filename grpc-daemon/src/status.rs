//! The one mapping of hsm-core errors (and the daemon's own limits) to gRPC
//! statuses. Every status carries a `google.rpc.ErrorInfo` whose `reason` is
//! the AWS KMS exception name and whose `domain` is `tinfoil.v1`.
//!
//! The PKCS#11 backend service answers with the PKCS#11 module's own
//! errors (the embedded backend's code maps hsm-core errors to `CK_RV`s
//! once, for both backends): [`from_pkcs11`] carries the `CK_RV` in the
//! ErrorInfo metadata, and the module's daemon backend reads it back.

use std::collections::HashMap;

use tinfoil_proto::ERROR_DOMAIN;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The gRPC code of each hsm-core error.
pub fn code_of(err: &hsm_core::Error) -> Code {
    use hsm_core::Error as E;
    match err {
        E::NotFound(_) => Code::NotFound,
        E::Disabled(_) | E::InvalidState(_) => Code::FailedPrecondition,
        E::Validation(_)
        | E::InvalidCiphertext(_)
        | E::IncorrectKey(_)
        | E::InvalidSignature(_)
        | E::InvalidMac(_) => Code::InvalidArgument,
        E::InvalidKeyUsage(_) | E::UnsupportedOperation(_) => Code::FailedPrecondition,
        E::AlreadyExists(_) => Code::AlreadyExists,
        E::LimitExceeded(_) => Code::ResourceExhausted,
        E::IncorrectPassphrase => Code::PermissionDenied,
        E::StoreUnavailable(_) => Code::Unavailable,
        E::AccessDenied(_) => Code::PermissionDenied,
        E::UnrecognizedClient(_) | E::SignatureDoesNotMatch(_) => Code::Unauthenticated,
        E::DryRun(_) => Code::FailedPrecondition,
        E::MalformedPolicyDocument(_) => Code::InvalidArgument,
        E::Internal(_) => Code::Internal,
    }
}

/// A status with an ErrorInfo detail naming `reason`.
pub fn with_reason(code: Code, reason: &str, message: impl Into<String>) -> Status {
    let details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, HashMap::new());
    Status::with_error_details(code, message.into(), details)
}

/// The status of an hsm-core error. The message is the core's, which never
/// carries key material, plaintext or passphrases.
pub fn from_core(err: hsm_core::Error) -> Status {
    with_reason(code_of(&err), err.kms_name(), err.to_string())
}

/// The status of a PKCS#11 backend error: ErrorInfo reason
/// `Pkcs11Exception` with metadata `ckr` = the `CK_RV` in decimal. The
/// message is the module's, which never carries PINs or key material.
pub fn from_pkcs11(err: hsm_core::pkcs11::Pkcs11Error) -> Status {
    use cryptoki_sys::*;
    let (rv, message) = tinfoil_proto::pkcs11_wire::error_to_wire(&err);
    let code = match err.rv() {
        CKR_ARGUMENTS_BAD
        | CKR_DATA_LEN_RANGE
        | CKR_ENCRYPTED_DATA_INVALID
        | CKR_WRAPPED_KEY_INVALID
        | CKR_MECHANISM_INVALID
        | CKR_MECHANISM_PARAM_INVALID
        | CKR_TEMPLATE_INCONSISTENT
        | CKR_ATTRIBUTE_VALUE_INVALID
        | CKR_PIN_LEN_RANGE
        | CKR_USER_TYPE_INVALID
        | CKR_SIGNATURE_INVALID => Code::InvalidArgument,
        CKR_OBJECT_HANDLE_INVALID | CKR_TOKEN_NOT_RECOGNIZED => Code::NotFound,
        CKR_PIN_INCORRECT | CKR_PIN_LOCKED => Code::PermissionDenied,
        CKR_DEVICE_MEMORY => Code::ResourceExhausted,
        CKR_DEVICE_ERROR | CKR_GENERAL_ERROR => Code::Internal,
        CKR_FUNCTION_NOT_SUPPORTED => Code::Unimplemented,
        _ => Code::FailedPrecondition,
    };
    let metadata = HashMap::from([(tinfoil_proto::CKR_METADATA_KEY.to_string(), rv)]);
    let details =
        ErrorDetails::with_error_info(tinfoil_proto::PKCS11_ERROR_REASON, ERROR_DOMAIN, metadata);
    Status::with_error_details(code, message, details)
}

/// The call did not finish within the daemon's per-call deadline.
pub fn deadline_exceeded(limit_ms: u64) -> Status {
    with_reason(
        Code::DeadlineExceeded,
        "DependencyTimeoutException",
        format!("the call did not finish within the daemon's {limit_ms} ms limit"),
    )
}

/// Too many calls are in flight.
pub fn overloaded(max: usize) -> Status {
    with_reason(
        Code::ResourceExhausted,
        "LimitExceededException",
        format!("more than {max} calls in flight; retry later"),
    )
}

/// A blocking task panicked or was cancelled.
pub fn internal_task_failure() -> Status {
    with_reason(
        Code::Internal,
        "KMSInternalException",
        "the operation failed internally",
    )
}

/// The KMS exception name of a status, when it carries an ErrorInfo.
pub fn reason_of(status: &Status) -> Option<String> {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_map_to_codes_and_reasons() {
        let cases = [
            (
                hsm_core::Error::NotFound("k".into()),
                Code::NotFound,
                "NotFoundException",
            ),
            (
                hsm_core::Error::Disabled("k".into()),
                Code::FailedPrecondition,
                "DisabledException",
            ),
            (
                hsm_core::Error::InvalidState("k".into()),
                Code::FailedPrecondition,
                "KMSInvalidStateException",
            ),
            (
                hsm_core::Error::InvalidCiphertext("x".into()),
                Code::InvalidArgument,
                "InvalidCiphertextException",
            ),
            (
                hsm_core::Error::AlreadyExists("a".into()),
                Code::AlreadyExists,
                "AlreadyExistsException",
            ),
            (
                hsm_core::Error::LimitExceeded("l".into()),
                Code::ResourceExhausted,
                "LimitExceededException",
            ),
            (
                hsm_core::Error::IncorrectPassphrase,
                Code::PermissionDenied,
                "IncorrectPassphraseException",
            ),
            (
                hsm_core::Error::Internal("i".into()),
                Code::Internal,
                "KMSInternalException",
            ),
        ];
        for (err, code, reason) in cases {
            let status = from_core(err);
            assert_eq!(status.code(), code);
            assert_eq!(reason_of(&status).as_deref(), Some(reason));
        }
    }

    #[test]
    fn pkcs11_errors_keep_their_ckr_code_across_a_status() {
        use hsm_core::pkcs11::Pkcs11Error;
        use tinfoil_proto::pkcs11_wire::error_from_status;
        for rv in [
            cryptoki_sys::CKR_PIN_INCORRECT,
            cryptoki_sys::CKR_PIN_LOCKED,
            cryptoki_sys::CKR_KEY_FUNCTION_NOT_PERMITTED,
            cryptoki_sys::CKR_KEY_HANDLE_INVALID,
            cryptoki_sys::CKR_WRAPPED_KEY_INVALID,
        ] {
            let status = from_pkcs11(Pkcs11Error::rv_with(rv, "r"));
            assert_eq!(reason_of(&status).as_deref(), Some("Pkcs11Exception"));
            assert_eq!(error_from_status(&status).rv(), rv);
        }
        let status = from_pkcs11(Pkcs11Error::General("store unavailable".into()));
        let back = error_from_status(&status);
        assert_eq!(back.rv(), cryptoki_sys::CKR_GENERAL_ERROR);
        assert!(back.to_string().contains("store unavailable"), "{back}");
        // The daemon's own limits carry no CK_RV: the module sees a device error.
        assert_eq!(
            error_from_status(&overloaded(1)).rv(),
            cryptoki_sys::CKR_DEVICE_MEMORY
        );
        assert_eq!(
            error_from_status(&deadline_exceeded(1)).rv(),
            cryptoki_sys::CKR_DEVICE_ERROR
        );
    }

    #[test]
    fn limit_statuses_carry_reasons() {
        let s = overloaded(3);
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert_eq!(reason_of(&s).as_deref(), Some("LimitExceededException"));
        let s = deadline_exceeded(5);
        assert_eq!(s.code(), Code::DeadlineExceeded);
        assert_eq!(reason_of(&s).as_deref(), Some("DependencyTimeoutException"));
    }
}
