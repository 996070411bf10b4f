//! The PKCS#11 3.2 entry points: C_EncapsulateKey and C_DecapsulateKey
//! (ML-KEM, [`crate::pq_ops`]), the ML-DSA mechanism parameters, the
//! per-list C_GetInfo, and the 3.2 functions the module does not offer
//! (CKR_FUNCTION_NOT_SUPPORTED after the not-initialised check, so no slot
//! of the 3.2 list is NULL).

use cryptoki_sys::*;

use super::{deliver, in_bytes, out_ref, read_mechanism, read_template, with_module};
use crate::error::{ckr, Result};
use crate::pq_ops::{is_ml_dsa_mechanism, SignContext};

/// CK_SIGN_ADDITIONAL_CONTEXT (CKM_ML_DSA, CKM_HASH_ML_DSA_SHA*) or
/// CK_HASH_SIGN_ADDITIONAL_CONTEXT (CKM_HASH_ML_DSA, where it is
/// required) of an ML-DSA mechanism, copied out; `None` for other
/// mechanisms. An absent optional parameter is the default context.
pub(super) unsafe fn sign_context(m: &CK_MECHANISM) -> Result<Option<SignContext>> {
    if !is_ml_dsa_mechanism(m.mechanism) {
        return Ok(None);
    }
    let bad = |why| ckr!(CKR_MECHANISM_PARAM_INVALID, why);
    let hashed = m.mechanism == CKM_HASH_ML_DSA;
    if m.pParameter.is_null() {
        if m.ulParameterLen != 0 || hashed {
            return Err(bad("CK_HASH_SIGN_ADDITIONAL_CONTEXT expected"));
        }
        return Ok(Some(SignContext::default()));
    }
    let (hedge, context, len, hash) = if hashed {
        if m.ulParameterLen as usize != std::mem::size_of::<CK_HASH_SIGN_ADDITIONAL_CONTEXT>() {
            return Err(bad("CK_HASH_SIGN_ADDITIONAL_CONTEXT expected"));
        }
        // SAFETY: non-NULL and of the right size, as checked.
        let p = unsafe { &*(m.pParameter as *const CK_HASH_SIGN_ADDITIONAL_CONTEXT) };
        (p.hedgeVariant, p.pContext, p.ulContextLen, Some(p.hash))
    } else {
        if m.ulParameterLen as usize != std::mem::size_of::<CK_SIGN_ADDITIONAL_CONTEXT>() {
            return Err(bad("CK_SIGN_ADDITIONAL_CONTEXT expected"));
        }
        // SAFETY: non-NULL and of the right size, as checked.
        let p = unsafe { &*(m.pParameter as *const CK_SIGN_ADDITIONAL_CONTEXT) };
        (p.hedgeVariant, p.pContext, p.ulContextLen, None)
    };
    if len > 255 {
        return Err(bad("an ML-DSA context is at most 255 bytes"));
    }
    // SAFETY: the caller promises pContext holds ulContextLen bytes.
    let context = unsafe { in_bytes(context, len) }?.to_vec();
    Ok(Some(SignContext {
        hedge,
        context,
        hash,
    }))
}

/// C_EncapsulateKey (PKCS#11 3.2): with a NULL ciphertext buffer, the
/// ciphertext's length only (no key is made).
#[allow(clippy::too_many_arguments)]
pub(super) unsafe extern "C" fn C_EncapsulateKey(
    h: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    public: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    ciphertext: *mut CK_BYTE,
    ciphertext_len: *mut CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    with_module(|m| {
        m.session_first(h)?;
        let cap = unsafe { super::capacity(ciphertext, ciphertext_len) }?;
        let template = unsafe { read_template(template, count) }?;
        let mech = unsafe { read_mechanism(mechanism) }?;
        if cap.is_none() {
            let result = m.encapsulate_key(h, &mech, public, &template, None);
            return unsafe { deliver(ciphertext, ciphertext_len, result.map(|(out, _)| out)) };
        }
        let key = unsafe { out_ref(key) }?;
        m.read_only_first(h, &[&template])?;
        // A buffer too small answers like a length query: nothing made,
        // nothing recorded.
        if let (Some(c), Ok((crate::session::Output::Len(need), _))) =
            (cap, m.encapsulate_key(h, &mech, public, &template, None))
        {
            if c < need {
                let small = Err(crate::error::Pkcs11Error::BufferTooSmall(need));
                return unsafe { deliver(ciphertext, ciphertext_len, small) };
            }
        }
        let used = m.object_facts(h, public).key;
        let on_token = crate::audit::template_on_token(&template);
        let mut made = None;
        let result = m.audited(
            "C_EncapsulateKey",
            Some(mech.mechanism),
            used.as_ref(),
            on_token,
            || {
                let (out, handle) = m.encapsulate_key(h, &mech, public, &template, cap)?;
                made = handle;
                Ok(out)
            },
        );
        unsafe { deliver(ciphertext, ciphertext_len, result) }?;
        if let Some(handle) = made {
            *key = handle;
        }
        Ok(())
    })
}

/// C_DecapsulateKey (PKCS#11 3.2).
#[allow(clippy::too_many_arguments)]
pub(super) unsafe extern "C" fn C_DecapsulateKey(
    h: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    private: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    ciphertext: *mut CK_BYTE,
    ciphertext_len: CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    with_module(|m| {
        m.session_first(h)?;
        let key = unsafe { out_ref(key) }?;
        let template = unsafe { read_template(template, count) }?;
        m.read_only_first(h, &[&template])?;
        let mech = unsafe { read_mechanism(mechanism) }?;
        let ciphertext = unsafe { in_bytes(ciphertext, ciphertext_len) }?;
        let used = m.object_facts(h, private).key;
        let on_token = crate::audit::template_on_token(&template);
        *key = m.audited(
            "C_DecapsulateKey",
            Some(mech.mechanism),
            used.as_ref(),
            on_token,
            || m.decapsulate_key(h, &mech, private, &template, ciphertext),
        )?;
        Ok(())
    })
}

/// C_GetInfo of the v3.2 list.
pub(super) unsafe extern "C" fn C_GetInfo_3_2(info: *mut CK_INFO) -> CK_RV {
    unsafe { super::general::get_info(info, CK_VERSION { major: 3, minor: 2 }) }
}

/// C_GetInfo of the v2.40 list.
pub(super) unsafe extern "C" fn C_GetInfo_2_40(info: *mut CK_INFO) -> CK_RV {
    unsafe {
        super::general::get_info(
            info,
            CK_VERSION {
                major: 2,
                minor: 40,
            },
        )
    }
}

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
type U = CK_ULONG;
type M = *mut CK_MECHANISM;
type K = CK_OBJECT_HANDLE;
type T = *mut CK_UTF8CHAR;

unsupported! {
    C_VerifySignatureInit(S, M, K, B, U);
    C_VerifySignature(S, B, U);
    C_VerifySignatureUpdate(S, B, U);
    C_VerifySignatureFinal(S);
    C_GetSessionValidationFlags(S, CK_SESSION_VALIDATION_FLAGS_TYPE, *mut CK_FLAGS);
    C_AsyncComplete(S, T, *mut CK_ASYNC_DATA);
    C_AsyncGetID(S, T, *mut CK_ULONG);
    C_AsyncJoin(S, T, U, B, U);
    C_WrapKeyAuthenticated(S, M, K, K, B, U, B, *mut CK_ULONG);
    C_UnwrapKeyAuthenticated(S, M, K, B, U, *mut CK_ATTRIBUTE, U, B, U, *mut CK_OBJECT_HANDLE);
}
