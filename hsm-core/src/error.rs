//! The one error type of hsm-core, named after the AWS KMS exceptions.
//!
//! Messages never carry key material, plaintext or passphrases: they name
//! keys by id and say what was wrong with the request.

/// Everything an hsm-core operation can fail with.
///
/// Each variant maps to one AWS KMS exception name ([`Error::kms_name`]); the
/// daemon maps it once to a gRPC status and the PKCS#11 module once to a
/// `CKR_*` code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key, alias or resource does not exist (`NotFoundException`).
    #[error("{0}")]
    NotFound(String),
    /// The key is disabled (`DisabledException`).
    #[error("{0}")]
    Disabled(String),
    /// The key's state does not allow the operation (`KMSInvalidStateException`).
    #[error("{0}")]
    InvalidState(String),
    /// A parameter is out of range or malformed (`ValidationException`).
    #[error("{0}")]
    Validation(String),
    /// The alias or resource already exists (`AlreadyExistsException`).
    #[error("{0}")]
    AlreadyExists(String),
    /// The ciphertext is malformed, tampered with, or its context does not
    /// match (`InvalidCiphertextException`).
    #[error("{0}")]
    InvalidCiphertext(String),
    /// The ciphertext was made under another key than the one named
    /// (`IncorrectKeyException`).
    #[error("{0}")]
    IncorrectKey(String),
    /// The key's usage does not allow the operation (`InvalidKeyUsageException`).
    #[error("{0}")]
    InvalidKeyUsage(String),
    /// The signature did not verify (`KMSInvalidSignatureException`).
    #[error("{0}")]
    InvalidSignature(String),
    /// The MAC did not verify (`KMSInvalidMacException`).
    #[error("{0}")]
    InvalidMac(String),
    /// The operation is not supported for this key (`UnsupportedOperationException`).
    #[error("{0}")]
    UnsupportedOperation(String),
    /// A quota was reached (`LimitExceededException`).
    #[error("{0}")]
    LimitExceeded(String),
    /// The passphrase does not unseal the store (`IncorrectPassphraseException`).
    #[error("the passphrase does not unseal this store")]
    IncorrectPassphrase,
    /// The store cannot be opened: held by another process, made by a newer
    /// version, missing or unreadable (`StoreUnavailableException`).
    #[error("{0}")]
    StoreUnavailable(String),
    /// The caller may not do this (`AccessDeniedException`).
    #[error("{0}")]
    AccessDenied(String),
    /// The request's access key is unknown or inactive (`UnrecognizedClientException`).
    #[error("{0}")]
    UnrecognizedClient(String),
    /// The request's SigV4 signature does not match or has expired
    /// (`InvalidSignatureException`; not a signature made by a key, which
    /// is [`Error::InvalidSignature`]).
    #[error("{0}")]
    SignatureDoesNotMatch(String),
    /// The checks passed, and the request asked not to be carried out
    /// (`DryRunOperationException`).
    #[error("{0}")]
    DryRun(String),
    /// A key policy is not valid (`MalformedPolicyDocumentException`).
    #[error("{0}")]
    MalformedPolicyDocument(String),
    /// An internal failure: storage I/O or a broken invariant (`KMSInternalException`).
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The AWS KMS exception name of this error, e.g. `"DisabledException"`.
    pub fn kms_name(&self) -> &'static str {
        match self {
            Error::NotFound(_) => "NotFoundException",
            Error::Disabled(_) => "DisabledException",
            Error::InvalidState(_) => "KMSInvalidStateException",
            Error::Validation(_) => "ValidationException",
            Error::AlreadyExists(_) => "AlreadyExistsException",
            Error::InvalidCiphertext(_) => "InvalidCiphertextException",
            Error::IncorrectKey(_) => "IncorrectKeyException",
            Error::InvalidKeyUsage(_) => "InvalidKeyUsageException",
            Error::InvalidSignature(_) => "KMSInvalidSignatureException",
            Error::InvalidMac(_) => "KMSInvalidMacException",
            Error::UnsupportedOperation(_) => "UnsupportedOperationException",
            Error::LimitExceeded(_) => "LimitExceededException",
            Error::IncorrectPassphrase => "IncorrectPassphraseException",
            Error::StoreUnavailable(_) => "StoreUnavailableException",
            Error::AccessDenied(_) => "AccessDeniedException",
            Error::UnrecognizedClient(_) => "UnrecognizedClientException",
            Error::SignatureDoesNotMatch(_) => "InvalidSignatureException",
            Error::DryRun(_) => "DryRunOperationException",
            Error::MalformedPolicyDocument(_) => "MalformedPolicyDocumentException",
            Error::Internal(_) => "KMSInternalException",
        }
    }

    pub(crate) fn validation(msg: impl Into<String>) -> Self {
        Error::Validation(msg.into())
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        // SQLite errors name tables and constraints, never bound values.
        Error::Internal(format!("storage error: {e}"))
    }
}

/// The start of the message of a PostgreSQL serialization failure or
/// deadlock: the transaction may be run again.
pub(crate) const PG_RETRY: &str = "storage conflict (retryable): ";

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        // Only the SQLSTATE and the server's primary message: its DETAIL
        // may quote bound values.
        match e.as_db_error() {
            Some(db) if crate::store::engine::retryable(&e) => Error::StoreUnavailable(format!(
                "{PG_RETRY}SQLSTATE {}: {}",
                db.code().code(),
                db.message()
            )),
            // Connection exceptions, the server shutting down or starting.
            Some(db)
                if db.code().code().starts_with("08")
                    || matches!(db.code().code(), "57P01" | "57P02" | "57P03") =>
            {
                Error::StoreUnavailable(format!(
                    "PostgreSQL: SQLSTATE {}: {}",
                    db.code().code(),
                    db.message()
                ))
            }
            Some(db) => Error::Internal(format!(
                "storage error: SQLSTATE {}: {}",
                db.code().code(),
                db.message()
            )),
            None if e.is_closed() => {
                Error::StoreUnavailable("the PostgreSQL connection was closed".into())
            }
            None => Error::StoreUnavailable(format!("PostgreSQL: {e}")),
        }
    }
}

impl From<r2d2::Error> for Error {
    fn from(e: r2d2::Error) -> Self {
        Error::StoreUnavailable(format!("no PostgreSQL connection: {e}"))
    }
}

/// The result type of every hsm-core operation.
pub type Result<T> = std::result::Result<T, Error>;
