//! PKCS#11 3.0 message-based encryption and decryption (AES-GCM): the C
//! side of [`crate::message_ops`]. CK_GCM_MESSAGE_PARAMS is read per call;
//! the tag (and a generated IV) is written back into it on encryption.

use std::ffi::c_void;

use cryptoki_sys::*;

use super::{capacity, deliver, in_bytes, with_module};
use crate::error::{ckr, Pkcs11Error, Result};
use crate::message_ops::{GcmMessage, IvSource, MessageOut};
use crate::session::Output;

/// The caller's CK_GCM_MESSAGE_PARAMS, copied out; on decryption the tag
/// is read too.
unsafe fn params<'a>(
    p: *mut c_void,
    len: CK_ULONG,
    encrypt: bool,
) -> Result<(GcmMessage, &'a mut CK_GCM_MESSAGE_PARAMS)> {
    let bad = |why| ckr!(CKR_MECHANISM_PARAM_INVALID, why);
    if p.is_null() || len as usize != std::mem::size_of::<CK_GCM_MESSAGE_PARAMS>() {
        return Err(bad("CK_GCM_MESSAGE_PARAMS expected"));
    }
    // SAFETY: non-NULL and of the right size, as checked; the caller
    // promises the structure (and that it may be written: it is output).
    let g = unsafe { &mut *(p as *mut CK_GCM_MESSAGE_PARAMS) };
    if g.ulIvLen as usize > 256 || g.ulTagBits % 8 != 0 || g.ulTagBits > 128 {
        return Err(bad("GCM IV or tag length not valid"));
    }
    // SAFETY: the caller promises pIv holds ulIvLen bytes.
    let iv = unsafe { in_bytes(g.pIv, g.ulIvLen) }?.to_vec();
    let tag_len = g.ulTagBits as usize / 8;
    let source = match g.ivGenerator {
        CKG_NO_GENERATE => IvSource::Given,
        CKG_GENERATE | CKG_GENERATE_RANDOM => IvSource::Random {
            fixed_bits: g.ulIvFixedBits as usize,
        },
        _ => {
            return Err(bad(
                "IV generators: CKG_NO_GENERATE and CKG_GENERATE_RANDOM",
            ))
        }
    };
    if g.pTag.is_null() {
        return Err(bad("pTag is NULL"));
    }
    let tag = if encrypt {
        Vec::new()
    } else {
        // SAFETY: the caller promises pTag holds ulTagBits / 8 bytes.
        unsafe { in_bytes(g.pTag, tag_len as CK_ULONG) }?.to_vec()
    };
    Ok((
        GcmMessage {
            iv,
            source,
            tag_len,
            tag,
        },
        g,
    ))
}

/// Turns a message answer into the C output, writing the tag and a
/// generated IV into the caller's parameters.
fn output(
    out: Result<MessageOut>,
    g: &mut CK_GCM_MESSAGE_PARAMS,
    p: &GcmMessage,
) -> Result<Output> {
    match out? {
        MessageOut::Len(n) => Ok(Output::Len(n)),
        MessageOut::Done(sealed) => {
            if !sealed.tag.is_empty() {
                // SAFETY: checked non-NULL; the caller promises room for
                // ulTagBits / 8 bytes, which is the tag's length.
                unsafe {
                    std::ptr::copy_nonoverlapping(sealed.tag.as_ptr(), g.pTag, sealed.tag.len())
                };
            }
            if p.source != IvSource::Given && sealed.iv.len() == p.iv.len() && !g.pIv.is_null() {
                // SAFETY: pIv holds ulIvLen bytes, the IV's length.
                unsafe {
                    std::ptr::copy_nonoverlapping(sealed.iv.as_ptr(), g.pIv, sealed.iv.len())
                };
            }
            Ok(Output::Data(sealed.data))
        }
    }
}

macro_rules! message_fns {
    ($init:ident, $once:ident, $begin:ident, $next:ident, $final:ident, $encrypt:expr) => {
        pub(super) unsafe extern "C" fn $init(
            h: CK_SESSION_HANDLE,
            mechanism: *mut CK_MECHANISM,
            key: CK_OBJECT_HANDLE,
        ) -> CK_RV {
            with_module(|m| {
                m.session_first(h)?;
                // SAFETY: non-NULL checked; only the type is read (each
                // message brings its own parameter).
                let mech = unsafe { mechanism.as_ref() }
                    .ok_or(Pkcs11Error::ArgumentsBad("NULL mechanism"))?
                    .mechanism;
                m.message_init(h, $encrypt, mech, key)
            })
        }

        #[allow(clippy::too_many_arguments)]
        pub(super) unsafe extern "C" fn $once(
            h: CK_SESSION_HANDLE,
            param: *mut c_void,
            param_len: CK_ULONG,
            aad: *mut CK_BYTE,
            aad_len: CK_ULONG,
            data: *mut CK_BYTE,
            data_len: CK_ULONG,
            out: *mut CK_BYTE,
            out_len: *mut CK_ULONG,
        ) -> CK_RV {
            with_module(|m| {
                m.session_first(h)?;
                let cap = unsafe { capacity(out, out_len) }?;
                let (p, g) = unsafe { params(param, param_len, $encrypt) }?;
                let aad = unsafe { in_bytes(aad, aad_len) }?;
                let data = unsafe { in_bytes(data, data_len) }?;
                let result = output(m.message_once(h, $encrypt, &p, aad, data, cap), g, &p);
                unsafe { deliver(out, out_len, result) }
            })
        }

        pub(super) unsafe extern "C" fn $begin(
            h: CK_SESSION_HANDLE,
            param: *mut c_void,
            param_len: CK_ULONG,
            aad: *mut CK_BYTE,
            aad_len: CK_ULONG,
        ) -> CK_RV {
            with_module(|m| {
                m.session_first(h)?;
                let (p, g) = unsafe { params(param, param_len, $encrypt) }?;
                let aad = unsafe { in_bytes(aad, aad_len) }?;
                let iv = m.message_begin(h, $encrypt, &p, aad)?;
                if p.source != IvSource::Given && iv.len() == p.iv.len() && !g.pIv.is_null() {
                    // SAFETY: pIv holds ulIvLen bytes, the IV's length.
                    unsafe { std::ptr::copy_nonoverlapping(iv.as_ptr(), g.pIv, iv.len()) };
                }
                Ok(())
            })
        }

        #[allow(clippy::too_many_arguments)]
        pub(super) unsafe extern "C" fn $next(
            h: CK_SESSION_HANDLE,
            param: *mut c_void,
            param_len: CK_ULONG,
            data: *mut CK_BYTE,
            data_len: CK_ULONG,
            out: *mut CK_BYTE,
            out_len: *mut CK_ULONG,
            flags: CK_FLAGS,
        ) -> CK_RV {
            with_module(|m| {
                m.session_first(h)?;
                let cap = unsafe { capacity(out, out_len) }?;
                let (p, g) = unsafe { params(param, param_len, $encrypt) }?;
                let data = unsafe { in_bytes(data, data_len) }?;
                let end = flags & CKF_END_OF_MESSAGE != 0;
                let result = output(m.message_next(h, $encrypt, &p, data, end, cap), g, &p);
                unsafe { deliver(out, out_len, result) }
            })
        }

        pub(super) unsafe extern "C" fn $final(h: CK_SESSION_HANDLE) -> CK_RV {
            with_module(|m| m.message_final(h, $encrypt))
        }
    };
}

message_fns!(
    C_MessageEncryptInit,
    C_EncryptMessage,
    C_EncryptMessageBegin,
    C_EncryptMessageNext,
    C_MessageEncryptFinal,
    true
);
message_fns!(
    C_MessageDecryptInit,
    C_DecryptMessage,
    C_DecryptMessageBegin,
    C_DecryptMessageNext,
    C_MessageDecryptFinal,
    false
);
