//! The C ABI: the only place with `unsafe`. Every entry point runs its body
//! under `catch_unwind`, checks each pointer and length, and calls a safe
//! method that returns `Result<_, Pkcs11Error>`.
//!
//! Only C_GetFunctionList, C_GetInterfaceList and C_GetInterface are
//! exported; applications reach everything else through the lists.
#![allow(non_snake_case, clippy::missing_safety_doc)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use cryptoki_sys::*;

use crate::attrs::{Template, MAX_ATTR_LEN, MAX_TEMPLATE_LEN};
use crate::error::{ckr, Pkcs11Error, Result};
use crate::mechanisms::{GcmParams, Mechanism};
use crate::module::Module;
use crate::session::Output;

mod crypto;
mod derive_params;
pub(crate) mod fork;
mod general;
mod lists;
mod locking;
mod message;
mod objects;
mod pq;
mod unsupported;

/// Largest input buffer accepted by any function, in bytes.
pub const MAX_INPUT_LEN: usize = 64 << 20;

/// Runs an entry point's body: panics become CKR_GENERAL_ERROR, errors
/// their CK_RV. When the application asked for its own mutexes, the body
/// runs with the application mutex held (see `locking`); a failing
/// LockMutex returns its code and runs nothing, a failing UnlockMutex
/// turns a success into its code.
pub(crate) fn guard(body: impl FnOnce() -> Result<()>) -> CK_RV {
    let held = match locking::acquire() {
        Ok(held) => held,
        Err(rv) => return rv,
    };
    let rv = unlocked(body);
    match held.map(locking::Held::release) {
        Some(unlock_rv) if unlock_rv != CKR_OK && rv == CKR_OK => unlock_rv,
        _ => rv,
    }
}

/// [`guard`] without the application mutex (C_Initialize, which creates
/// it).
pub(crate) fn unlocked(body: impl FnOnce() -> Result<()>) -> CK_RV {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(e)) => e.rv(),
        Err(_) => CKR_GENERAL_ERROR,
    }
}

/// Runs a body that needs the initialised module.
pub(crate) fn with_module(body: impl FnOnce(&Arc<Module>) -> Result<()>) -> CK_RV {
    guard(|| {
        let module = crate::state::module()?;
        body(&module)
    })
}

/// Borrows an input buffer. NULL is accepted only for length zero.
pub(crate) unsafe fn in_bytes<'a>(p: *const u8, len: CK_ULONG) -> Result<&'a [u8]> {
    let len = usize::try_from(len).map_err(|_| Pkcs11Error::ArgumentsBad("length"))?;
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Pkcs11Error::ArgumentsBad(
            "NULL buffer with non-zero length",
        ));
    }
    if len > MAX_INPUT_LEN {
        return Err(ckr!(CKR_DATA_LEN_RANGE, "input too large"));
    }
    // SAFETY: the caller promises `p` points at `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Borrows an output pointer, refusing NULL.
pub(crate) unsafe fn out_ref<'a, T>(p: *mut T) -> Result<&'a mut T> {
    // SAFETY: non-NULL, and the caller promises it points at a T.
    unsafe { p.as_mut() }.ok_or(Pkcs11Error::ArgumentsBad("NULL output pointer"))
}

/// The capacity the caller offers: `None` when `out` is NULL (a length
/// query). `out_len` must have been checked non-NULL.
pub(crate) unsafe fn capacity(out: *mut u8, out_len: *mut CK_ULONG) -> Result<Option<usize>> {
    let len = *unsafe { out_ref(out_len) }?;
    if out.is_null() {
        Ok(None)
    } else {
        Ok(Some(usize::try_from(len).unwrap_or(usize::MAX)))
    }
}

/// Delivers an [`Output`] under the length-query and
/// CKR_BUFFER_TOO_SMALL conventions.
pub(crate) unsafe fn deliver(
    out: *mut u8,
    out_len: *mut CK_ULONG,
    result: Result<Output>,
) -> Result<()> {
    let len_ref = unsafe { out_ref(out_len) }?;
    match result {
        Ok(Output::Len(n)) => {
            *len_ref = n as CK_ULONG;
            Ok(())
        }
        Ok(Output::Data(data)) => {
            if !data.is_empty() {
                // SAFETY: the inner function checked the capacity the
                // caller gave in *out_len, and `out` is non-NULL then.
                unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), out, data.len()) };
            }
            *len_ref = data.len() as CK_ULONG;
            Ok(())
        }
        Err(Pkcs11Error::BufferTooSmall(n)) => {
            *len_ref = n as CK_ULONG;
            Err(Pkcs11Error::BufferTooSmall(n))
        }
        Err(e) => Err(e),
    }
}

/// Copies a list (slots, mechanisms, handles) out under the length-query
/// conventions.
pub(crate) unsafe fn deliver_list<T: Copy>(
    list: &[T],
    out: *mut T,
    count: *mut CK_ULONG,
) -> Result<()> {
    let count = unsafe { out_ref(count) }?;
    if out.is_null() {
        *count = list.len() as CK_ULONG;
        return Ok(());
    }
    if (*count as usize) < list.len() {
        *count = list.len() as CK_ULONG;
        return Err(Pkcs11Error::BufferTooSmall(list.len()));
    }
    // SAFETY: the caller promises room for *count items, checked above.
    unsafe { std::ptr::copy_nonoverlapping(list.as_ptr(), out, list.len()) };
    *count = list.len() as CK_ULONG;
    Ok(())
}

/// Reads a template (values copied out of the caller's memory).
pub(crate) unsafe fn read_template(p: *const CK_ATTRIBUTE, count: CK_ULONG) -> Result<Template> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        return Err(Pkcs11Error::ArgumentsBad(
            "NULL template with non-zero count",
        ));
    }
    if count as usize > MAX_TEMPLATE_LEN {
        return Err(ckr!(CKR_TEMPLATE_INCONSISTENT, "template too long"));
    }
    // SAFETY: the caller promises `count` attributes at `p`.
    let attrs = unsafe { std::slice::from_raw_parts(p, count as usize) };
    attrs
        .iter()
        .map(|a| {
            if a.ulValueLen as usize > MAX_ATTR_LEN {
                return Err(ckr!(CKR_ATTRIBUTE_VALUE_INVALID, "attribute too long"));
            }
            let value = unsafe { in_bytes(a.pValue as *const u8, a.ulValueLen) }?;
            Ok((a.type_, value.to_vec()))
        })
        .collect()
}

/// Reads a CK_MECHANISM, copying its parameter; CK_GCM_PARAMS (which
/// holds pointers) is decoded for CKM_AES_GCM, and the label that
/// CK_RSA_PKCS_OAEP_PARAMS points to is copied for CKM_RSA_PKCS_OAEP.
pub(crate) unsafe fn read_mechanism(p: *const CK_MECHANISM) -> Result<Mechanism> {
    // SAFETY: non-NULL checked by as_ref; the caller promises a CK_MECHANISM.
    let m = unsafe { p.as_ref() }.ok_or(Pkcs11Error::ArgumentsBad("NULL mechanism"))?;
    if m.ulParameterLen as usize > MAX_ATTR_LEN {
        return Err(ckr!(CKR_MECHANISM_PARAM_INVALID, "parameter too long"));
    }
    // SAFETY: the caller promises the parameter structure.
    if let Some(context) = unsafe { pq::sign_context(m) }? {
        return Ok(Mechanism {
            mechanism: m.mechanism,
            ml_dsa: Some(context),
            ..Default::default()
        });
    }
    if m.mechanism == CKM_AES_GCM {
        if m.pParameter.is_null()
            || m.ulParameterLen as usize != std::mem::size_of::<CK_GCM_PARAMS>()
        {
            return Err(ckr!(CKR_MECHANISM_PARAM_INVALID, "CK_GCM_PARAMS expected"));
        }
        // SAFETY: non-NULL and of the right size, as checked.
        let g = unsafe { &*(m.pParameter as *const CK_GCM_PARAMS) };
        if g.ulIvLen as usize > 256 || g.ulAADLen as usize > MAX_ATTR_LEN {
            return Err(ckr!(CKR_MECHANISM_PARAM_INVALID, "GCM IV or AAD too long"));
        }
        let iv = unsafe { in_bytes(g.pIv, g.ulIvLen) }?.to_vec();
        let aad = unsafe { in_bytes(g.pAAD, g.ulAADLen) }?.to_vec();
        return Ok(Mechanism {
            mechanism: m.mechanism,
            param: Vec::new(),
            gcm: Some(GcmParams {
                iv,
                aad,
                tag_bits: g.ulTagBits,
            }),
            oaep_label: Vec::new(),
            ..Default::default()
        });
    }
    let param = unsafe { in_bytes(m.pParameter as *const u8, m.ulParameterLen) }?.to_vec();
    let oaep_label = if m.mechanism == CKM_RSA_PKCS_OAEP
        && !m.pParameter.is_null()
        && m.ulParameterLen as usize == std::mem::size_of::<CK_RSA_PKCS_OAEP_PARAMS>()
    {
        // SAFETY: non-NULL and of the right size, as checked.
        let o = unsafe { &*(m.pParameter as *const CK_RSA_PKCS_OAEP_PARAMS) };
        if o.ulSourceDataLen as usize > MAX_ATTR_LEN {
            return Err(ckr!(CKR_MECHANISM_PARAM_INVALID, "OAEP label too long"));
        }
        // SAFETY: the caller promises pSourceData holds ulSourceDataLen bytes.
        unsafe { in_bytes(o.pSourceData as *const u8, o.ulSourceDataLen) }?.to_vec()
    } else {
        Vec::new()
    };
    let ecdh = if matches!(m.mechanism, CKM_ECDH1_DERIVE | CKM_ECDH1_COFACTOR_DERIVE) {
        if m.pParameter.is_null()
            || m.ulParameterLen as usize != std::mem::size_of::<CK_ECDH1_DERIVE_PARAMS>()
        {
            return Err(ckr!(
                CKR_MECHANISM_PARAM_INVALID,
                "CK_ECDH1_DERIVE_PARAMS expected"
            ));
        }
        // SAFETY: non-NULL and of the right size, as checked.
        let e = unsafe { &*(m.pParameter as *const CK_ECDH1_DERIVE_PARAMS) };
        if e.ulSharedDataLen as usize > MAX_ATTR_LEN || e.ulPublicDataLen as usize > MAX_ATTR_LEN {
            return Err(ckr!(CKR_MECHANISM_PARAM_INVALID, "ECDH data too long"));
        }
        // SAFETY: the caller promises the pointers hold the lengths given.
        let shared = unsafe { in_bytes(e.pSharedData, e.ulSharedDataLen) }?.to_vec();
        let public = unsafe { in_bytes(e.pPublicData, e.ulPublicDataLen) }?.to_vec();
        Some(crate::mechanisms::EcdhParams {
            kdf: e.kdf,
            shared,
            public,
        })
    } else {
        None
    };
    Ok(Mechanism {
        mechanism: m.mechanism,
        param,
        gcm: None,
        oaep_label,
        ecdh,
        // SAFETY: the caller promises the parameter structure.
        derive: unsafe { derive_params::read(m) }?,
        eddsa: unsafe { eddsa_params(m) }?,
        ml_dsa: None,
    })
}

/// CK_EDDSA_PARAMS of CKM_EDDSA (phFlag and a context of up to 255
/// bytes), copied out; `None` without a parameter.
unsafe fn eddsa_params(m: &CK_MECHANISM) -> Result<Option<(bool, Vec<u8>)>> {
    if m.mechanism != CKM_EDDSA || m.pParameter.is_null() {
        return Ok(None);
    }
    if m.ulParameterLen as usize != std::mem::size_of::<CK_EDDSA_PARAMS>() {
        return Err(ckr!(
            CKR_MECHANISM_PARAM_INVALID,
            "CK_EDDSA_PARAMS expected"
        ));
    }
    // SAFETY: non-NULL and of the right size, as checked.
    let p = unsafe { &*(m.pParameter as *const CK_EDDSA_PARAMS) };
    if p.ulContextDataLen > 255 {
        return Err(ckr!(
            CKR_MECHANISM_PARAM_INVALID,
            "an EdDSA context is at most 255 bytes"
        ));
    }
    // SAFETY: the caller promises pContextData holds ulContextDataLen bytes.
    let context = unsafe { in_bytes(p.pContextData, p.ulContextDataLen) }?.to_vec();
    Ok(Some((p.phFlag != 0, context)))
}

/// Fills a fixed-size, blank-padded PKCS#11 string field.
pub(crate) fn padded<const N: usize>(text: &str) -> [CK_UTF8CHAR; N] {
    let mut out = [b' '; N];
    let mut end = text.len().min(N);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out[..end].copy_from_slice(&text.as_bytes()[..end]);
    out
}

pub use lists::{C_GetFunctionList, C_GetInterface, C_GetInterfaceList};
