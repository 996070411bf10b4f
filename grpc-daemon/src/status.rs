//! The one mapping of hsm-core errors (and the daemon's own limits) to gRPC
//! statuses. Every status carries a `google.rpc.ErrorInfo` whose `reason` is
//! the AWS KMS exception name and whose `domain` is `tinfoil.v1`.

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
    fn limit_statuses_carry_reasons() {
        let s = overloaded(3);
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert_eq!(reason_of(&s).as_deref(), Some("LimitExceededException"));
        let s = deadline_exceeded(5);
        assert_eq!(s.code(), Code::DeadlineExceeded);
        assert_eq!(reason_of(&s).as_deref(), Some("DependencyTimeoutException"));
    }
}
