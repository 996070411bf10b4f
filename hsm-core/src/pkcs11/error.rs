//! The one error type of the PKCS#11 token (module and backends). Every
//! safe function returns `Result<_, Pkcs11Error>`; the module's C layer
//! turns the error into its `CK_RV`, tinfoild into a gRPC status carrying
//! it.
//!
//! Messages never carry key material, PINs or plaintext: only names, sizes
//! and codes.

use cryptoki_sys::*;

/// A PKCS#11 failure, carrying the `CK_RV` it maps to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Pkcs11Error {
    /// The module has not been initialised (or was finalised, or this is a
    /// forked child that has not called C_Initialize yet).
    #[error("C_Initialize has not been called")]
    NotInitialized,
    /// C_Initialize was called twice.
    #[error("C_Initialize was already called")]
    AlreadyInitialized,
    /// A pointer or argument combination is invalid.
    #[error("bad arguments: {0}")]
    ArgumentsBad(&'static str),
    /// The output buffer is too small; carries the size needed.
    #[error("output buffer too small: {0} bytes needed")]
    BufferTooSmall(usize),
    /// Configuration or backend failure that has no closer code.
    #[error("general error: {0}")]
    General(String),
    /// Any other PKCS#11 return value, with a short reason.
    #[error("{reason} (CKR 0x{rv:x})")]
    Rv {
        /// The return value.
        rv: CK_RV,
        /// A short, secret-free reason.
        reason: &'static str,
    },
}

/// Shorthand for results of the PKCS#11 token.
pub type Result<T> = std::result::Result<T, Pkcs11Error>;

impl Pkcs11Error {
    /// The `CK_RV` this error maps to.
    pub fn rv(&self) -> CK_RV {
        match self {
            Pkcs11Error::NotInitialized => CKR_CRYPTOKI_NOT_INITIALIZED,
            Pkcs11Error::AlreadyInitialized => CKR_CRYPTOKI_ALREADY_INITIALIZED,
            Pkcs11Error::ArgumentsBad(_) => CKR_ARGUMENTS_BAD,
            Pkcs11Error::BufferTooSmall(_) => CKR_BUFFER_TOO_SMALL,
            Pkcs11Error::General(_) => CKR_GENERAL_ERROR,
            Pkcs11Error::Rv { rv, .. } => *rv,
        }
    }

    /// Builds an error for a plain return value.
    pub const fn rv_with(rv: CK_RV, reason: &'static str) -> Self {
        Pkcs11Error::Rv { rv, reason }
    }
}

/// Builds a [`Pkcs11Error::Rv`] from a `CKR_` constant and a reason.
#[macro_export]
macro_rules! ckr {
    ($rv:ident, $reason:expr) => {
        $crate::pkcs11::error::Pkcs11Error::rv_with($crate::pkcs11::sys::$rv, $reason)
    };
    ($rv:ident) => {
        $crate::pkcs11::error::Pkcs11Error::rv_with($crate::pkcs11::sys::$rv, stringify!($rv))
    };
}
pub use crate::ckr;

impl From<crate::Error> for Pkcs11Error {
    fn from(err: crate::Error) -> Self {
        backend_error_to_pkcs11(&err)
    }
}

/// Maps an engine error to the closest PKCS#11 code. Only the kind is
/// kept: the engine's text may name a key id, which is fine, but never a
/// secret; it is still cut short.
///
/// Key states: Disabled → CKR_KEY_FUNCTION_NOT_PERMITTED; PendingDeletion
/// (an invalid state) → CKR_KEY_HANDLE_INVALID; gone → CKR_OBJECT_HANDLE_INVALID.
fn backend_error_to_pkcs11(err: &crate::Error) -> Pkcs11Error {
    use crate::Error as E;
    match err {
        E::NotFound(_) => ckr!(CKR_OBJECT_HANDLE_INVALID, "key not found"),
        E::Disabled(_) => ckr!(CKR_KEY_FUNCTION_NOT_PERMITTED, "key is disabled"),
        E::InvalidState(_) => ckr!(CKR_KEY_HANDLE_INVALID, "key is pending deletion"),
        E::Validation(_) => ckr!(CKR_ARGUMENTS_BAD, "rejected by the engine"),
        E::AlreadyExists(_) => ckr!(CKR_ATTRIBUTE_VALUE_INVALID, "already exists"),
        E::InvalidCiphertext(_) => ckr!(CKR_ENCRYPTED_DATA_INVALID),
        E::IncorrectKey(_) => ckr!(CKR_KEY_HANDLE_INVALID, "wrong key for this data"),
        E::InvalidKeyUsage(_) => ckr!(CKR_KEY_FUNCTION_NOT_PERMITTED, "key usage forbids this"),
        E::InvalidSignature(_) => ckr!(CKR_SIGNATURE_INVALID),
        E::InvalidMac(_) => ckr!(CKR_SIGNATURE_INVALID, "MAC does not verify"),
        E::UnsupportedOperation(_) => {
            ckr!(CKR_FUNCTION_NOT_SUPPORTED, "not supported by the engine")
        }
        E::LimitExceeded(_) => ckr!(CKR_DEVICE_MEMORY, "engine limit exceeded"),
        E::IncorrectPassphrase => Pkcs11Error::General("store passphrase is incorrect".into()),
        E::StoreUnavailable(_) => ckr!(CKR_DEVICE_ERROR, "store unavailable"),
        other => Pkcs11Error::General(format!(
            "engine error: {}",
            other.to_string().chars().take(120).collect::<String>()
        )),
    }
}
