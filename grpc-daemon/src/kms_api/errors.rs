//! The one mapping of everything the KMS endpoint can refuse with to the
//! AWS JSON 1.1 error shape: an HTTP status and
//! `{"__type": "<ExceptionName>", "message": "..."}`.
//!
//! hsm-core errors keep their KMS exception name ([`hsm_core::Error::kms_name`]);
//! every answer is HTTP 400 except `KMSInternalException` (500), as KMS.
//! Messages are the core's or this module's, which never carry key
//! material, plaintext or secrets.

use http::StatusCode;

use super::sigv4::AuthError;

/// An error answer of the KMS endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The AWS exception name, the `__type` of the body.
    pub kind: &'static str,
    /// The human-readable message.
    pub message: String,
    /// Whether the connection must close after this answer (the request
    /// body was not read to its end).
    pub close: bool,
}

impl ApiError {
    /// An HTTP 400 answer named `kind`.
    pub fn new(kind: &'static str, message: impl Into<String>) -> ApiError {
        let status = if kind == "KMSInternalException" {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError {
            status,
            kind,
            message: message.into(),
            close: false,
        }
    }

    /// The body could not be parsed: bad JSON, bad base64, wrong types.
    pub fn serialization(message: impl Into<String>) -> ApiError {
        ApiError::new("SerializationException", message)
    }

    /// An operation this endpoint does not know.
    pub fn unknown_operation(message: impl Into<String>) -> ApiError {
        ApiError::new("UnknownOperationException", message)
    }

    /// A known KMS operation Tinfoil does not offer (custom key stores,
    /// multi-Region keys, imported key material).
    pub fn unsupported(op: &str) -> ApiError {
        ApiError::new(
            "UnsupportedOperationException",
            format!("{op} is not supported by Tinfoil"),
        )
    }

    /// A request over the size limit; the rest of its body is not read.
    pub fn too_large(limit: usize) -> ApiError {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            close: true,
            ..ApiError::new(
                "LimitExceededException",
                format!("the request body is larger than the endpoint's limit of {limit} bytes"),
            )
        }
    }

    /// The JSON body of this error.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "__type": self.kind,
            "message": self.message,
        }))
        .unwrap_or_else(|_| br#"{"__type":"KMSInternalException"}"#.to_vec())
    }
}

impl From<hsm_core::Error> for ApiError {
    fn from(err: hsm_core::Error) -> ApiError {
        ApiError::new(err.kms_name(), err.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> ApiError {
        ApiError::new(err.kms_name(), err.to_string())
    }
}

/// The daemon's own limits, which the shared call machinery reports as
/// gRPC statuses carrying the KMS exception name (see [`crate::status`]).
impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> ApiError {
        let kind = match crate::status::reason_of(&status).as_deref() {
            Some("LimitExceededException") => "LimitExceededException",
            Some("DependencyTimeoutException") => "DependencyTimeoutException",
            _ => "KMSInternalException",
        };
        ApiError::new(kind, status.message().to_string())
    }
}

/// Collects model constraint violations and reports them as KMS does:
/// `2 validation errors detected: Value 'x' at 'keyId' failed to satisfy
/// constraint: Member must ...; Value ...`.
#[derive(Debug, Default)]
pub struct Violations(Vec<String>);

impl Violations {
    /// Records that `member` (lower camel case, as KMS names it) with
    /// `value` (None: sensitive or absent, not echoed) breaks `constraint`.
    pub fn add(&mut self, member: &str, value: Option<&str>, constraint: &str) {
        let value = match value {
            Some(v) => format!("Value '{}' ", v.chars().take(256).collect::<String>()),
            None => "Value ".to_string(),
        };
        self.0.push(format!(
            "{value}at '{member}' failed to satisfy constraint: Member must {constraint}"
        ));
    }

    /// A required member that is absent.
    pub fn null(&mut self, member: &str) {
        self.0.push(format!(
            "Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ));
    }

    /// Checks a length in `min..=max` (characters for strings, bytes for blobs).
    pub fn length(
        &mut self,
        member: &str,
        shown: Option<&str>,
        len: usize,
        min: usize,
        max: usize,
    ) {
        if len < min {
            self.add(
                member,
                shown,
                &format!("have length greater than or equal to {min}"),
            );
        } else if len > max {
            self.add(
                member,
                shown,
                &format!("have length less than or equal to {max}"),
            );
        }
    }

    /// Checks a number in `min..=max`.
    pub fn range(&mut self, member: &str, value: i64, min: i64, max: i64) {
        let shown = value.to_string();
        if value < min {
            self.add(
                member,
                Some(&shown),
                &format!("have value greater than or equal to {min}"),
            );
        } else if value > max {
            self.add(
                member,
                Some(&shown),
                &format!("have value less than or equal to {max}"),
            );
        }
    }

    /// `Ok` when nothing was recorded, else the ValidationException.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(ApiError::new(
                "ValidationException",
                format!(
                    "{n} validation error{} detected: {}",
                    if n == 1 { "" } else { "s" },
                    self.0.join("; ")
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_keep_their_names_and_only_internal_is_500() {
        let e = ApiError::from(hsm_core::Error::Disabled("k is disabled".into()));
        assert_eq!(
            (e.status, e.kind),
            (StatusCode::BAD_REQUEST, "DisabledException")
        );
        let e = ApiError::from(hsm_core::Error::Internal("x".into()));
        assert_eq!(
            (e.status, e.kind),
            (StatusCode::INTERNAL_SERVER_ERROR, "KMSInternalException")
        );
        let body: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(body["__type"], "KMSInternalException");
        assert_eq!(body["message"], "x");
    }

    #[test]
    fn daemon_limits_keep_their_names() {
        let e = ApiError::from(crate::status::overloaded(3));
        assert_eq!(e.kind, "LimitExceededException");
        let e = ApiError::from(crate::status::deadline_exceeded(3));
        assert_eq!(e.kind, "DependencyTimeoutException");
        let e = ApiError::from(crate::status::internal_task_failure());
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn violations_read_like_kms() {
        let mut v = Violations::default();
        v.length("plaintext", None, 4097, 1, 4096);
        assert_eq!(
            v.finish().unwrap_err().message,
            "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: \
             Member must have length less than or equal to 4096"
        );
        let mut v = Violations::default();
        v.null("keyId");
        v.range("limit", 0, 1, 1000);
        let e = v.finish().unwrap_err();
        assert_eq!(e.kind, "ValidationException");
        assert_eq!(
            e.message,
            "2 validation errors detected: Value null at 'keyId' failed to satisfy constraint: \
             Member must not be null; Value '0' at 'limit' failed to satisfy constraint: Member \
             must have value greater than or equal to 1"
        );
        assert!(Violations::default().finish().is_ok());
    }
}
