//! Functions the module does not offer: each returns
//! CKR_FUNCTION_NOT_SUPPORTED (after the usual not-initialised check), so
//! no slot of either function list is NULL.

use std::ffi::c_void;

use cryptoki_sys::*;

use super::with_module;
use crate::error::ckr;

macro_rules! unsupported {
    ($($name:ident($($arg:ty),*);)*) => {
        $(
            #[allow(clippy::too_many_arguments)]
            pub(super) unsafe extern "C" fn $name($(_: $arg),*) -> CK_RV {
                with_module(|_| Err(ckr!(CKR_FUNCTION_NOT_SUPPORTED)))
            }
        )*
    };
}

type S = CK_SESSION_HANDLE;
type B = *mut CK_BYTE;
type L = *mut CK_ULONG;
type U = CK_ULONG;
type P = *mut c_void;
type M = *mut CK_MECHANISM;
type K = CK_OBJECT_HANDLE;

unsupported! {
    C_GetOperationState(S, B, L);
    C_SetOperationState(S, B, U, K, K);
    C_SignRecoverInit(S, M, K);
    C_SignRecover(S, B, U, B, L);
    C_VerifyRecoverInit(S, M, K);
    C_VerifyRecover(S, B, U, B, L);
    C_DigestEncryptUpdate(S, B, U, B, L);
    C_DecryptDigestUpdate(S, B, U, B, L);
    C_SignEncryptUpdate(S, B, U, B, L);
    C_DecryptVerifyUpdate(S, B, U, B, L);
    C_WaitForSlotEvent(CK_FLAGS, *mut CK_SLOT_ID, P);
    C_LoginUser(S, CK_USER_TYPE, *mut CK_UTF8CHAR, U, *mut CK_UTF8CHAR, U);
    C_SessionCancel(S, CK_FLAGS);
    C_MessageSignInit(S, M, K);
    C_SignMessage(S, P, U, B, U, B, L);
    C_SignMessageBegin(S, P, U);
    C_SignMessageNext(S, P, U, B, U, B, L);
    C_MessageSignFinal(S);
    C_MessageVerifyInit(S, M, K);
    C_VerifyMessage(S, P, U, B, U, B, U);
    C_VerifyMessageBegin(S, P, U);
    C_VerifyMessageNext(S, P, U, B, U, B, U);
    C_MessageVerifyFinal(S);
}
