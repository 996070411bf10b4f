//! CKM_SHA_1_HMAC and CKM_SHA224_HMAC agree with OpenSSL's HMAC, against
//! SoftHSM2 (the control), our embedded and daemon backends. (The _GENERAL
//! variants are listed too; the cryptoki crate can neither call nor list
//! them.)

#[macro_use]
mod common;

use std::process::Command;

use common::{load, rv, user_session, Which};
use cryptoki::error::RvError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass};

fn openssl_hmac(digest: &str, key: &[u8], data: &[u8], dir: &std::path::Path) -> Vec<u8> {
    let hexkey: String = key.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(dir.join("hmac.in"), data).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", digest, "-binary", "-mac", "HMAC", "-macopt"])
        .arg(format!("hexkey:{hexkey}"))
        .arg(dir.join("hmac.in"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    out.stdout
}

fn sha1_and_sha224_hmac_match_openssl(which: Which) {
    let m = load(which);
    let session = user_session(&m, "hmac");
    let value: Vec<u8> = (0u8..32).collect();
    let key = session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Token(false),
            Attribute::Value(value.clone()),
            Attribute::Sign(true),
            Attribute::Verify(true),
        ])
        .unwrap();
    let data = b"what do ya want for nothing?";
    for (mech, digest, len) in [
        (Mechanism::Sha1Hmac, "-sha1", 20),
        (Mechanism::Sha224Hmac, "-sha224", 28),
    ] {
        let mac = session.sign(&mech, key, data).unwrap();
        assert_eq!(mac.len(), len);
        assert_eq!(mac, openssl_hmac(digest, &value, data, m.dir.path()));
        session.verify(&mech, key, data, &mac).unwrap();
        let mut bad = mac.clone();
        bad[0] ^= 1;
        assert_eq!(
            rv(session.verify(&mech, key, data, &bad)),
            RvError::SignatureInvalid
        );
    }
    if which != Which::SoftHsm {
        let slot = session.get_session_info().unwrap().slot_id();
        let listed = m.p11.get_mechanism_list(slot).unwrap();
        assert!(listed.contains(&MechanismType::SHA224_HMAC));
    }
}

with_keys!(sha1_and_sha224_hmac_match_openssl);

/// The _GENERAL MACs through the raw function list (embedded backend):
/// each is the full MAC's first bytes, verifies, and a length out of range
/// is CKR_MECHANISM_PARAM_INVALID.
#[test]
fn general_macs_truncate_tinfoil_embedded() {
    use cryptoki_sys::*;
    use std::ptr::null_mut;
    let _g = common::exclusive();
    let r = common::raw::raw(Which::Embedded);
    r.init();
    let slot = r.token("general");
    let h = r.session(slot);
    let mut pin = common::USER_PIN.as_bytes().to_vec();
    assert_eq!(
        call!(
            r,
            C_Login(h, CKU_USER, pin.as_mut_ptr(), pin.len() as CK_ULONG)
        ),
        CKR_OK
    );
    let make = |key_type: CK_KEY_TYPE, value: &mut Vec<u8>| -> CK_OBJECT_HANDLE {
        let mut class = CKO_SECRET_KEY;
        let mut kt = key_type;
        let mut yes: CK_BBOOL = CK_TRUE;
        let mut no: CK_BBOOL = CK_FALSE;
        let attr = |t, p: *mut std::ffi::c_void, n: usize| CK_ATTRIBUTE {
            type_: t,
            pValue: p,
            ulValueLen: n as CK_ULONG,
        };
        let mut template = [
            attr(
                CKA_CLASS,
                &mut class as *mut _ as *mut _,
                std::mem::size_of::<CK_ULONG>(),
            ),
            attr(
                CKA_KEY_TYPE,
                &mut kt as *mut _ as *mut _,
                std::mem::size_of::<CK_ULONG>(),
            ),
            attr(CKA_TOKEN, &mut no as *mut _ as *mut _, 1),
            attr(CKA_SIGN, &mut yes as *mut _ as *mut _, 1),
            attr(CKA_VERIFY, &mut yes as *mut _ as *mut _, 1),
            attr(CKA_VALUE, value.as_mut_ptr() as *mut _, value.len()),
        ];
        let mut key = 0;
        assert_eq!(
            call!(
                r,
                C_CreateObject(
                    h,
                    template.as_mut_ptr(),
                    template.len() as CK_ULONG,
                    &mut key
                )
            ),
            CKR_OK
        );
        key
    };
    let sign = |mech: CK_MECHANISM_TYPE, param: Option<CK_ULONG>, key, data: &[u8]| {
        let mut p = param.unwrap_or(0);
        let mut m = CK_MECHANISM {
            mechanism: mech,
            pParameter: if param.is_some() {
                &mut p as *mut _ as *mut _
            } else {
                null_mut()
            },
            ulParameterLen: if param.is_some() {
                std::mem::size_of::<CK_ULONG>() as CK_ULONG
            } else {
                0
            },
        };
        let rv = call!(r, C_SignInit(h, &mut m, key));
        if rv != CKR_OK {
            return Err(rv);
        }
        let mut out = [0u8; 64];
        let mut n = out.len() as CK_ULONG;
        let mut d = data.to_vec();
        let rv = call!(
            r,
            C_Sign(
                h,
                d.as_mut_ptr(),
                d.len() as CK_ULONG,
                out.as_mut_ptr(),
                &mut n
            )
        );
        assert_eq!(rv, CKR_OK);
        Ok(out[..n as usize].to_vec())
    };
    let hmac_key = make(CKK_GENERIC_SECRET, &mut (0u8..32).collect());
    let aes_key = make(CKK_AES, &mut vec![7u8; 16]);
    for (full, general, key, max) in [
        (CKM_SHA_1_HMAC, CKM_SHA_1_HMAC_GENERAL, hmac_key, 20),
        (CKM_SHA224_HMAC, CKM_SHA224_HMAC_GENERAL, hmac_key, 28),
        (CKM_SHA256_HMAC, CKM_SHA256_HMAC_GENERAL, hmac_key, 32),
        (CKM_SHA512_HMAC, CKM_SHA512_HMAC_GENERAL, hmac_key, 64),
        (CKM_AES_CMAC, CKM_AES_CMAC_GENERAL, aes_key, 16),
    ] {
        let whole = sign(full, None, key, b"general").unwrap();
        assert_eq!(whole.len(), max);
        let short = sign(general, Some(10), key, b"general").unwrap();
        assert_eq!(short, whole[..10].to_vec(), "{general:#x}");
        assert_eq!(
            sign(general, Some(max as CK_ULONG), key, b"general").unwrap(),
            whole
        );
        assert_eq!(
            sign(general, Some(max as CK_ULONG + 1), key, b"general"),
            Err(CKR_MECHANISM_PARAM_INVALID)
        );
        assert_eq!(
            sign(general, Some(0), key, b"general"),
            Err(CKR_MECHANISM_PARAM_INVALID)
        );
        // Verify the truncated MAC, and refuse a changed one.
        let mut p: CK_ULONG = 10;
        let mut m = CK_MECHANISM {
            mechanism: general,
            pParameter: &mut p as *mut _ as *mut _,
            ulParameterLen: std::mem::size_of::<CK_ULONG>() as CK_ULONG,
        };
        let mut d = b"general".to_vec();
        for (mac, want) in [
            (short.clone(), CKR_OK),
            (
                {
                    let mut b = short.clone();
                    b[0] ^= 1;
                    b
                },
                CKR_SIGNATURE_INVALID,
            ),
        ] {
            let mut mac = mac;
            assert_eq!(call!(r, C_VerifyInit(h, &mut m, key)), CKR_OK);
            assert_eq!(
                call!(
                    r,
                    C_Verify(
                        h,
                        d.as_mut_ptr(),
                        d.len() as CK_ULONG,
                        mac.as_mut_ptr(),
                        mac.len() as CK_ULONG
                    )
                ),
                want
            );
        }
    }
}
