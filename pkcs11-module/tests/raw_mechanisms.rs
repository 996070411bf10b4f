//! Mechanisms the cryptoki crate has no constructor for, through the raw
//! C ABI: AES-CTR (checked against AES-ECB keystream, with SoftHSM as the
//! control) and RFC 5649 wrap under both numbers, 0x210A and 0x210B.

#[macro_use]
mod common;

use std::ffi::c_void;
use std::ptr::null_mut;

use common::raw::{raw, Raw};
use common::{exclusive, Which};
use cryptoki_sys::*;

fn user(r: &Raw, label: &str) -> CK_SESSION_HANDLE {
    let slot = r.token(label);
    let h = r.session(slot);
    let pin = common::USER_PIN.as_bytes();
    assert_eq!(
        call!(
            r,
            C_Login(h, CKU_USER, pin.as_ptr() as *mut _, pin.len() as _)
        ),
        CKR_OK
    );
    h
}

fn aes_key(r: &Raw, h: CK_SESSION_HANDLE, token: bool, extractable: bool) -> CK_OBJECT_HANDLE {
    let mut len: CK_ULONG = 16;
    let mut t: CK_BBOOL = token.into();
    let mut x: CK_BBOOL = extractable.into();
    let mut yes: CK_BBOOL = CK_TRUE;
    let attr = |type_, p: *mut c_void, n: usize| CK_ATTRIBUTE {
        type_,
        pValue: p,
        ulValueLen: n as CK_ULONG,
    };
    let mut template = [
        attr(
            CKA_VALUE_LEN,
            &mut len as *mut _ as *mut c_void,
            std::mem::size_of::<CK_ULONG>(),
        ),
        attr(CKA_TOKEN, &mut t as *mut _ as *mut c_void, 1),
        attr(CKA_EXTRACTABLE, &mut x as *mut _ as *mut c_void, 1),
        attr(CKA_ENCRYPT, &mut yes as *mut _ as *mut c_void, 1),
        attr(CKA_DECRYPT, &mut yes as *mut _ as *mut c_void, 1),
        attr(CKA_WRAP, &mut yes as *mut _ as *mut c_void, 1),
    ];
    let mut mech = CK_MECHANISM {
        mechanism: CKM_AES_KEY_GEN,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let mut key = 0;
    assert_eq!(
        call!(
            r,
            C_GenerateKey(
                h,
                &mut mech,
                template.as_mut_ptr(),
                template.len() as _,
                &mut key
            )
        ),
        CKR_OK
    );
    key
}

/// One-shot C_Encrypt (or C_Decrypt) with a mechanism; returns rv and output.
fn crypt(
    r: &Raw,
    h: CK_SESSION_HANDLE,
    encrypt: bool,
    mech: &mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    data: &[u8],
) -> (CK_RV, Vec<u8>) {
    let rv = if encrypt {
        call!(r, C_EncryptInit(h, mech, key))
    } else {
        call!(r, C_DecryptInit(h, mech, key))
    };
    if rv != CKR_OK {
        return (rv, Vec::new());
    }
    let mut out = vec![0u8; data.len() + 32];
    let mut len = out.len() as CK_ULONG;
    let input = data.as_ptr() as *mut u8;
    let rv = if encrypt {
        call!(
            r,
            C_Encrypt(h, input, data.len() as _, out.as_mut_ptr(), &mut len)
        )
    } else {
        call!(
            r,
            C_Decrypt(h, input, data.len() as _, out.as_mut_ptr(), &mut len)
        )
    };
    out.truncate(len as usize);
    (rv, out)
}

fn ctr_params(bits: CK_ULONG, block: [u8; 16]) -> CK_AES_CTR_PARAMS {
    CK_AES_CTR_PARAMS {
        ulCounterBits: bits,
        cb: block,
    }
}

fn aes_ctr_is_ecb_keystream(which: Which) {
    let _g = exclusive();
    let r = raw(which);
    r.init();
    let h = user(&r, "ctr");
    let key = aes_key(&r, h, false, false);
    let mut block = [0u8; 16];
    block[15] = 0xfe;
    let mut params = ctr_params(64, block);
    let mut ctr = CK_MECHANISM {
        mechanism: CKM_AES_CTR,
        pParameter: &mut params as *mut _ as *mut c_void,
        ulParameterLen: std::mem::size_of::<CK_AES_CTR_PARAMS>() as _,
    };
    let data: Vec<u8> = (0u8..40).collect();
    let (rv, sealed) = crypt(&r, h, true, &mut ctr, key, &data);
    assert_eq!((rv, sealed.len()), (CKR_OK, 40));
    // Keystream = ECB of the counter blocks fe, ff, 100 (a carry).
    let mut counters = Vec::new();
    for n in [0xfeu32, 0xff, 0x100] {
        let mut b = [0u8; 16];
        b[12..].copy_from_slice(&n.to_be_bytes());
        counters.extend_from_slice(&b);
    }
    let mut ecb = CK_MECHANISM {
        mechanism: CKM_AES_ECB,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let (rv, stream) = crypt(&r, h, true, &mut ecb, key, &counters);
    assert_eq!(rv, CKR_OK);
    let expected: Vec<u8> = data.iter().zip(&stream).map(|(d, k)| d ^ k).collect();
    assert_eq!(sealed, expected);
    let (rv, opened) = crypt(&r, h, false, &mut ctr, key, &sealed);
    assert_eq!((rv, opened), (CKR_OK, data));
    r.finalize();
}

/// Ours refuses a CTR run that would wrap its counter bits, and takes
/// RFC 5649 wrap under both numbers (SoftHSM knows only 0x210A).
fn kwp_under_both_numbers_and_ctr_wrap(which: Which) {
    let _g = exclusive();
    let r = raw(which);
    r.init();
    let h = user(&r, "kwp");
    let key = aes_key(&r, h, false, false);
    let mut params = ctr_params(8, [0xff; 16]);
    let mut ctr = CK_MECHANISM {
        mechanism: CKM_AES_CTR,
        pParameter: &mut params as *mut _ as *mut c_void,
        ulParameterLen: std::mem::size_of::<CK_AES_CTR_PARAMS>() as _,
    };
    let (rv, _) = crypt(&r, h, true, &mut ctr, key, &[0u8; 32]);
    assert_eq!(rv, CKR_DATA_LEN_RANGE);

    let kek = aes_key(&r, h, true, false);
    let target = aes_key(&r, h, false, true);
    let mut wrapped = Vec::new();
    for number in [CKM_AES_KEY_WRAP_PAD, CKM_AES_KEY_WRAP_KWP] {
        let mut mech = CK_MECHANISM {
            mechanism: number,
            pParameter: null_mut(),
            ulParameterLen: 0,
        };
        let mut len: CK_ULONG = 0;
        assert_eq!(
            call!(
                r,
                C_WrapKey(h, &mut mech, kek, target, null_mut(), &mut len)
            ),
            CKR_OK
        );
        assert_eq!(len, 24, "16 bytes wrap to 24");
        let mut small: CK_ULONG = 8;
        let mut out = vec![0u8; 24];
        assert_eq!(
            call!(
                r,
                C_WrapKey(h, &mut mech, kek, target, out.as_mut_ptr(), &mut small)
            ),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(small, 24);
        assert_eq!(
            call!(
                r,
                C_WrapKey(h, &mut mech, kek, target, out.as_mut_ptr(), &mut len)
            ),
            CKR_OK
        );
        wrapped.push(out);
    }
    assert_eq!(
        wrapped[0], wrapped[1],
        "RFC 5649 is deterministic: one algorithm, two numbers"
    );
    r.finalize();
}

/// A failed C_EncryptUpdate or C_SignUpdate ends its operation (the
/// spec's rule; SoftHSM 2.6 keeps the operation, so ours only).
fn failed_updates_end_key_operations(which: Which) {
    let _g = exclusive();
    let r = raw(which);
    r.init();
    let h = user(&r, "updates");
    let key = aes_key(&r, h, false, false);
    let mut ecb = CK_MECHANISM {
        mechanism: CKM_AES_ECB,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    assert_eq!(call!(r, C_EncryptInit(h, &mut ecb, key)), CKR_OK);
    let mut out = [0u8; 64];
    let mut len: CK_ULONG = 64;
    assert_eq!(
        call!(
            r,
            C_EncryptUpdate(h, null_mut(), 16, out.as_mut_ptr(), &mut len)
        ),
        CKR_ARGUMENTS_BAD
    );
    len = 64;
    assert_eq!(
        call!(r, C_EncryptFinal(h, out.as_mut_ptr(), &mut len)),
        CKR_OPERATION_NOT_INITIALIZED
    );
    // Same for a digest-then-sign mechanism.
    let mut len_attr: CK_ULONG = 32;
    let mut yes: CK_BBOOL = CK_TRUE;
    let attr = |type_, p: *mut c_void, n: usize| CK_ATTRIBUTE {
        type_,
        pValue: p,
        ulValueLen: n as CK_ULONG,
    };
    let mut template = [
        attr(
            CKA_VALUE_LEN,
            &mut len_attr as *mut _ as *mut c_void,
            std::mem::size_of::<CK_ULONG>(),
        ),
        attr(CKA_SIGN, &mut yes as *mut _ as *mut c_void, 1),
    ];
    let mut gen = CK_MECHANISM {
        mechanism: CKM_GENERIC_SECRET_KEY_GEN,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let mut mac_key = 0;
    assert_eq!(
        call!(
            r,
            C_GenerateKey(
                h,
                &mut gen,
                template.as_mut_ptr(),
                template.len() as _,
                &mut mac_key
            )
        ),
        CKR_OK
    );
    let mut hmac = CK_MECHANISM {
        mechanism: CKM_SHA256_HMAC,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    assert_eq!(call!(r, C_SignInit(h, &mut hmac, mac_key)), CKR_OK);
    assert_eq!(call!(r, C_SignUpdate(h, null_mut(), 3)), CKR_ARGUMENTS_BAD);
    len = 64;
    assert_eq!(
        call!(r, C_SignFinal(h, out.as_mut_ptr(), &mut len)),
        CKR_OPERATION_NOT_INITIALIZED
    );
    // A short buffer keeps it: the size comes back, then the signature.
    assert_eq!(call!(r, C_SignInit(h, &mut hmac, mac_key)), CKR_OK);
    len = 4;
    assert_eq!(
        call!(r, C_SignFinal(h, out.as_mut_ptr(), &mut len)),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(len, 32);
    assert_eq!(call!(r, C_SignFinal(h, out.as_mut_ptr(), &mut len)), CKR_OK);
    r.finalize();
}

with_keys!(aes_ctr_is_ecb_keystream);
ours_only_embedded!(
    kwp_under_both_numbers_and_ctr_wrap,
    failed_updates_end_key_operations
);
