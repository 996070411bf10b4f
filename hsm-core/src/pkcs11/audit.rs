//! The names the audit log gives PKCS#11 calls: the function and
//! mechanism of a recorded call, the functions tinfoild accepts, the
//! `CKM_*` / `CKR_*` names records carry, and the gRPC metadata keys a
//! call's names travel in. Which calls are recorded, and by whom, is the
//! module's to say (libtinfoil_pkcs11's `audit` module); the embedded
//! backend writes the records ([`super::Backend::audited`]).

use cryptoki_sys::*;

/// The PKCS#11 call being made on this thread, as the audit log names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallInfo {
    /// The entry point, e.g. `C_Sign`.
    pub function: &'static str,
    /// Its mechanism, when it has one.
    pub mechanism: Option<CK_MECHANISM_TYPE>,
}

/// One recorded call as a backend sees it.
#[derive(Debug, Clone, Copy)]
pub struct AuditedCall<'a> {
    /// The function and mechanism.
    pub info: CallInfo,
    /// The token key it uses (KMS key id), if any.
    pub key_id: Option<&'a str>,
}

/// The gRPC metadata key a unary call's function travels in.
pub const FUNCTION_METADATA: &str = "tinfoil-p11-function";
/// The gRPC metadata key a unary call's mechanism (decimal) travels in.
pub const MECHANISM_METADATA: &str = "tinfoil-p11-mechanism";

/// The functions tinfoild accepts as a call's name (anything else a
/// client sends is replaced by the name the request implies).
pub const FUNCTIONS: &[&str] = &[
    "C_Encrypt",
    "C_EncryptUpdate",
    "C_EncryptFinal",
    "C_Decrypt",
    "C_DecryptUpdate",
    "C_DecryptFinal",
    "C_Sign",
    "C_SignFinal",
    "C_Verify",
    "C_VerifyFinal",
    "C_GenerateKey",
    "C_GenerateKeyPair",
    "C_CreateObject",
    "C_CopyObject",
    "C_DestroyObject",
    "C_WrapKey",
    "C_UnwrapKey",
    "C_DeriveKey",
    "C_GetAttributeValue",
    "C_SetAttributeValue",
    "C_DigestKey",
    "C_EncapsulateKey",
    "C_DecapsulateKey",
];

/// The `CKM_*` name of a mechanism (`CKM_0x...` for one the module does
/// not know).
pub fn mechanism_name(mechanism: CK_MECHANISM_TYPE) -> String {
    super::registry::MECHANISMS
        .iter()
        .find(|m| m.mechanism == mechanism)
        .map_or_else(|| format!("CKM_0x{mechanism:08x}"), |m| m.name.to_string())
}

macro_rules! ckr_names {
    ($($name:ident),* $(,)?) => {
        /// The `CKR_*` name of a return value (`CKR_0x...` for others).
        pub fn ckr_name(rv: CK_RV) -> String {
            $(if rv == $name {
                return stringify!($name).to_string();
            })*
            format!("CKR_0x{rv:08x}")
        }
    };
}

ckr_names!(
    CKR_OK,
    CKR_HOST_MEMORY,
    CKR_GENERAL_ERROR,
    CKR_FUNCTION_FAILED,
    CKR_ARGUMENTS_BAD,
    CKR_ATTRIBUTE_READ_ONLY,
    CKR_ATTRIBUTE_SENSITIVE,
    CKR_ATTRIBUTE_TYPE_INVALID,
    CKR_ATTRIBUTE_VALUE_INVALID,
    CKR_DATA_INVALID,
    CKR_DATA_LEN_RANGE,
    CKR_DEVICE_ERROR,
    CKR_DEVICE_MEMORY,
    CKR_ENCRYPTED_DATA_INVALID,
    CKR_ENCRYPTED_DATA_LEN_RANGE,
    CKR_FUNCTION_NOT_SUPPORTED,
    CKR_KEY_HANDLE_INVALID,
    CKR_KEY_SIZE_RANGE,
    CKR_KEY_TYPE_INCONSISTENT,
    CKR_KEY_FUNCTION_NOT_PERMITTED,
    CKR_KEY_NOT_WRAPPABLE,
    CKR_KEY_UNEXTRACTABLE,
    CKR_MECHANISM_INVALID,
    CKR_MECHANISM_PARAM_INVALID,
    CKR_OBJECT_HANDLE_INVALID,
    CKR_OPERATION_ACTIVE,
    CKR_OPERATION_NOT_INITIALIZED,
    CKR_SESSION_HANDLE_INVALID,
    CKR_SESSION_READ_ONLY,
    CKR_SIGNATURE_INVALID,
    CKR_SIGNATURE_LEN_RANGE,
    CKR_TEMPLATE_INCOMPLETE,
    CKR_TEMPLATE_INCONSISTENT,
    CKR_TOKEN_NOT_RECOGNIZED,
    CKR_UNWRAPPING_KEY_HANDLE_INVALID,
    CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
    CKR_USER_NOT_LOGGED_IN,
    CKR_WRAPPED_KEY_INVALID,
    CKR_WRAPPED_KEY_LEN_RANGE,
    CKR_WRAPPING_KEY_HANDLE_INVALID,
    CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
    CKR_BUFFER_TOO_SMALL,
    CKR_CRYPTOKI_NOT_INITIALIZED,
    CKR_PARAMETER_SET_NOT_SUPPORTED,
);
