//! The parameters of the secret-key derivations (C_DeriveKey), copied out
//! of the caller's structures: CK_HKDF_PARAMS, CK_SP800_108_KDF_PARAMS,
//! CK_SP800_108_FEEDBACK_KDF_PARAMS (with their data fields and additional
//! keys' templates), CK_KEY_DERIVATION_STRING_DATA,
//! CK_AES_CBC_ENCRYPT_DATA_PARAMS, CK_EXTRACT_PARAMS and the other key's
//! CK_OBJECT_HANDLE.

use cryptoki_sys::*;

use super::{in_bytes, read_template};
use crate::backend::{DeriveOp, HkdfSalt, KbkdfField, Prf};
use crate::error::{ckr, Pkcs11Error, Result};
use crate::mechanisms::DeriveParams;

/// Most data fields of an SP 800-108 parameter.
const MAX_FIELDS: usize = 32;
/// Most additional keys of one SP 800-108 derivation.
pub(crate) const MAX_ADDITIONAL_KEYS: usize = 16;

fn bad(why: &'static str) -> Pkcs11Error {
    ckr!(CKR_MECHANISM_PARAM_INVALID, why)
}

/// The parameter as a `T`, which must be its exact size.
unsafe fn param<'a, T>(m: &CK_MECHANISM) -> Result<&'a T> {
    if m.pParameter.is_null() || m.ulParameterLen as usize != std::mem::size_of::<T>() {
        return Err(bad("the mechanism's parameter structure was expected"));
    }
    // SAFETY: non-NULL and of the right size, as checked; the caller
    // promises a structure of this type.
    Ok(unsafe { &*(m.pParameter as *const T) })
}

/// The bytes a CK_KEY_DERIVATION_STRING_DATA names.
unsafe fn string_data(m: &CK_MECHANISM) -> Result<Vec<u8>> {
    let s: &CK_KEY_DERIVATION_STRING_DATA = unsafe { param(m) }?;
    // SAFETY: the caller promises pData holds ulLen bytes.
    Ok(unsafe { in_bytes(s.pData, s.ulLen) }?.to_vec())
}

/// The digest length of an HMAC PRF or hash mechanism.
fn hash_len(mechanism: CK_MECHANISM_TYPE) -> Option<usize> {
    Some(match mechanism {
        CKM_SHA_1 | CKM_SHA_1_HMAC => 20,
        CKM_SHA224 | CKM_SHA224_HMAC => 28,
        CKM_SHA256 | CKM_SHA256_HMAC => 32,
        CKM_SHA384 | CKM_SHA384_HMAC => 48,
        CKM_SHA512 | CKM_SHA512_HMAC => 64,
        _ => return None,
    })
}

/// One SP 800-108 data field.
unsafe fn field(p: &CK_PRF_DATA_PARAM, feedback: bool) -> Result<KbkdfField> {
    let number = |bits: CK_ULONG| -> Result<u32> {
        u32::try_from(bits).map_err(|_| bad("a field width is too large"))
    };
    Ok(match p.type_ {
        CK_SP800_108_ITERATION_VARIABLE if feedback => {
            if !p.pValue.is_null() || p.ulValueLen != 0 {
                return Err(bad("the feedback iteration variable takes no value"));
            }
            KbkdfField::Chain
        }
        CK_SP800_108_ITERATION_VARIABLE | CK_SP800_108_COUNTER => {
            if p.type_ == CK_SP800_108_COUNTER && !feedback {
                return Err(bad("the counter mode takes no optional counter"));
            }
            if p.pValue.is_null()
                || p.ulValueLen as usize != std::mem::size_of::<CK_SP800_108_COUNTER_FORMAT>()
            {
                return Err(bad("CK_SP800_108_COUNTER_FORMAT expected"));
            }
            // SAFETY: non-NULL and of the right size, as checked.
            let f = unsafe { &*(p.pValue as *const CK_SP800_108_COUNTER_FORMAT) };
            KbkdfField::Counter {
                little_endian: f.bLittleEndian != 0,
                bits: number(f.ulWidthInBits)?,
            }
        }
        CK_SP800_108_DKM_LENGTH => {
            if p.pValue.is_null()
                || p.ulValueLen as usize != std::mem::size_of::<CK_SP800_108_DKM_LENGTH_FORMAT>()
            {
                return Err(bad("CK_SP800_108_DKM_LENGTH_FORMAT expected"));
            }
            // SAFETY: non-NULL and of the right size, as checked.
            let f = unsafe { &*(p.pValue as *const CK_SP800_108_DKM_LENGTH_FORMAT) };
            let segments = match f.dkmLengthMethod {
                CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS => false,
                CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS => true,
                _ => return Err(bad("unknown DKM length method")),
            };
            KbkdfField::DkmLength {
                segments,
                little_endian: f.bLittleEndian != 0,
                bits: number(f.ulWidthInBits)?,
            }
        }
        CK_SP800_108_BYTE_ARRAY => {
            if p.ulValueLen == 0 {
                return Err(bad("a byte array field is not empty"));
            }
            // SAFETY: the caller promises pValue holds ulValueLen bytes.
            KbkdfField::Bytes(unsafe { in_bytes(p.pValue as *const u8, p.ulValueLen) }?.to_vec())
        }
        _ => return Err(bad("unsupported SP 800-108 data field")),
    })
}

/// The data fields and additional keys' templates of an SP 800-108
/// parameter.
unsafe fn kbkdf_parts(
    fields: *const CK_PRF_DATA_PARAM,
    n_fields: CK_ULONG,
    keys: *const CK_DERIVED_KEY,
    n_keys: CK_ULONG,
    feedback: bool,
) -> Result<(Vec<KbkdfField>, Vec<crate::attrs::Template>)> {
    if fields.is_null() || n_fields == 0 || n_fields as usize > MAX_FIELDS {
        return Err(bad("1 to 32 SP 800-108 data fields expected"));
    }
    if n_keys as usize > MAX_ADDITIONAL_KEYS || (n_keys != 0 && keys.is_null()) {
        return Err(bad("at most 16 additional derived keys"));
    }
    // SAFETY: non-NULL, and the caller promises n_fields elements.
    let fields = unsafe { std::slice::from_raw_parts(fields, n_fields as usize) };
    let fields = fields
        .iter()
        .map(|f| unsafe { field(f, feedback) })
        .collect::<Result<Vec<_>>>()?;
    let keys = if n_keys == 0 {
        &[][..]
    } else {
        // SAFETY: non-NULL, and the caller promises n_keys elements.
        unsafe { std::slice::from_raw_parts(keys, n_keys as usize) }
    };
    let templates = keys
        .iter()
        .map(|k| {
            if k.phKey.is_null() {
                return Err(bad("an additional key has no handle to receive"));
            }
            // SAFETY: the caller promises the template's attributes.
            unsafe { read_template(k.pTemplate, k.ulAttributeCount) }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((fields, templates))
}

/// Copies out the parameter of a secret-key derivation mechanism; `None`
/// for any other mechanism.
pub(crate) unsafe fn read(m: &CK_MECHANISM) -> Result<Option<DeriveParams>> {
    let simple = |op| {
        Ok(Some(DeriveParams {
            op,
            other: None,
            additional: Vec::new(),
        }))
    };
    match m.mechanism {
        CKM_HKDF_DERIVE | CKM_HKDF_DATA => {
            let p: &CK_HKDF_PARAMS = unsafe { param(m) }?;
            let hash_len = hash_len(p.prfHashMechanism)
                .ok_or(bad("HKDF needs SHA-1, SHA-256, SHA-384 or SHA-512"))?;
            let extract = p.bExtract != 0;
            let (salt, other) = if !extract {
                (HkdfSalt::Null, None)
            } else {
                match p.ulSaltType {
                    CKF_HKDF_SALT_NULL => (HkdfSalt::Null, None),
                    CKF_HKDF_SALT_DATA => {
                        if p.ulSaltLen == 0 {
                            return Err(bad("CKF_HKDF_SALT_DATA with no salt"));
                        }
                        // SAFETY: the caller promises pSalt holds ulSaltLen bytes.
                        let salt = unsafe { in_bytes(p.pSalt, p.ulSaltLen) }?.to_vec();
                        (HkdfSalt::Data(salt), None)
                    }
                    CKF_HKDF_SALT_KEY => (HkdfSalt::Key, Some(p.hSaltKey)),
                    _ => return Err(bad("unknown HKDF salt type")),
                }
            };
            // SAFETY: the caller promises pInfo holds ulInfoLen bytes.
            let info = unsafe { in_bytes(p.pInfo, p.ulInfoLen) }?.to_vec();
            Ok(Some(DeriveParams {
                op: DeriveOp::Hkdf {
                    hash_len,
                    extract,
                    expand: p.bExpand != 0,
                    salt,
                    info,
                },
                other,
                additional: Vec::new(),
            }))
        }
        CKM_SP800_108_COUNTER_KDF | CKM_SP800_108_FEEDBACK_KDF => {
            let feedback = m.mechanism == CKM_SP800_108_FEEDBACK_KDF;
            let (prf_type, fields, additional, iv) = if feedback {
                let p: &CK_SP800_108_FEEDBACK_KDF_PARAMS = unsafe { param(m) }?;
                let (f, a) = unsafe {
                    kbkdf_parts(
                        p.pDataParams,
                        p.ulNumberOfDataParams,
                        p.pAdditionalDerivedKeys,
                        p.ulAdditionalDerivedKeys,
                        true,
                    )
                }?;
                // SAFETY: the caller promises pIV holds ulIVLen bytes.
                let iv = unsafe { in_bytes(p.pIV, p.ulIVLen) }?.to_vec();
                (p.prfType, f, a, Some(iv))
            } else {
                let p: &CK_SP800_108_KDF_PARAMS = unsafe { param(m) }?;
                let (f, a) = unsafe {
                    kbkdf_parts(
                        p.pDataParams,
                        p.ulNumberOfDataParams,
                        p.pAdditionalDerivedKeys,
                        p.ulAdditionalDerivedKeys,
                        false,
                    )
                }?;
                (p.prfType, f, a, None)
            };
            let prf = match prf_type {
                CKM_AES_CMAC => Prf::AesCmac,
                t => Prf::Hmac(hash_len(t).ok_or(bad("unsupported SP 800-108 PRF"))?),
            };
            Ok(Some(DeriveParams {
                op: DeriveOp::Kbkdf {
                    prf,
                    feedback_iv: iv,
                    fields,
                },
                other: None,
                additional,
            }))
        }
        CKM_AES_ECB_ENCRYPT_DATA => simple(DeriveOp::AesEncryptData {
            iv: None,
            data: unsafe { string_data(m) }?,
        }),
        CKM_AES_CBC_ENCRYPT_DATA => {
            let p: &CK_AES_CBC_ENCRYPT_DATA_PARAMS = unsafe { param(m) }?;
            // SAFETY: the caller promises pData holds length bytes.
            let data = unsafe { in_bytes(p.pData, p.length) }?.to_vec();
            simple(DeriveOp::AesEncryptData {
                iv: Some(p.iv),
                data,
            })
        }
        CKM_CONCATENATE_BASE_AND_KEY => {
            let h: &CK_OBJECT_HANDLE = unsafe { param(m) }?;
            Ok(Some(DeriveParams {
                op: DeriveOp::ConcatBaseAndKey,
                other: Some(*h),
                additional: Vec::new(),
            }))
        }
        CKM_CONCATENATE_BASE_AND_DATA => {
            simple(DeriveOp::ConcatBaseAndData(unsafe { string_data(m) }?))
        }
        CKM_CONCATENATE_DATA_AND_BASE => {
            simple(DeriveOp::ConcatDataAndBase(unsafe { string_data(m) }?))
        }
        CKM_XOR_BASE_AND_DATA => simple(DeriveOp::XorBaseAndData(unsafe { string_data(m) }?)),
        CKM_EXTRACT_KEY_FROM_KEY => {
            let bit: &CK_EXTRACT_PARAMS = unsafe { param(m) }?;
            simple(DeriveOp::ExtractKeyFromKey(*bit))
        }
        _ => Ok(None),
    }
}

/// Writes the handles of the additional keys an SP 800-108 derivation
/// made into the caller's CK_DERIVED_KEY array (`handles` in its order).
pub(crate) unsafe fn write_additional(m: &CK_MECHANISM, handles: &[CK_OBJECT_HANDLE]) {
    let (keys, n) = match m.mechanism {
        CKM_SP800_108_COUNTER_KDF => match unsafe { param::<CK_SP800_108_KDF_PARAMS>(m) } {
            Ok(p) => (p.pAdditionalDerivedKeys, p.ulAdditionalDerivedKeys),
            Err(_) => return,
        },
        CKM_SP800_108_FEEDBACK_KDF => {
            match unsafe { param::<CK_SP800_108_FEEDBACK_KDF_PARAMS>(m) } {
                Ok(p) => (p.pAdditionalDerivedKeys, p.ulAdditionalDerivedKeys),
                Err(_) => return,
            }
        }
        _ => return,
    };
    if keys.is_null() || n as usize != handles.len() {
        return;
    }
    // SAFETY: checked non-NULL; read() checked each phKey before the call.
    let keys = unsafe { std::slice::from_raw_parts(keys, n as usize) };
    for (k, h) in keys.iter().zip(handles) {
        if !k.phKey.is_null() {
            // SAFETY: the caller promises phKey points to a handle.
            unsafe { *k.phKey = *h };
        }
    }
}
