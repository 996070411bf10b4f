//! The order of checks the specification lists: an invalid session handle
//! is CKR_SESSION_HANDLE_INVALID whatever else is wrong with the call
//! (mechanism, parameter, template), SoftHSM2 the control; a read-only
//! session asked for a token object is CKR_SESSION_READ_ONLY before the
//! mechanism and the template are looked at (ours: SoftHSM 2.6 checks
//! the mechanism first).

#[macro_use]
mod common;

use std::ptr::null_mut;

use common::raw::raw;
use common::{exclusive, Which};
use cryptoki_sys::*;

/// A mechanism no module knows, with a parameter of the wrong size.
fn bogus_mechanism(param: &mut [u8; 3]) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: 0x7fff_fff0,
        pParameter: param.as_mut_ptr() as *mut _,
        ulParameterLen: 3,
    }
}

/// A template with an attribute of a wrong size for its type and, when
/// `token`, CKA_TOKEN true.
fn template(token: &mut CK_BBOOL, class: &mut [u8; 1]) -> [CK_ATTRIBUTE; 2] {
    [
        CK_ATTRIBUTE {
            type_: CKA_TOKEN,
            pValue: token as *mut CK_BBOOL as *mut _,
            ulValueLen: 1,
        },
        CK_ATTRIBUTE {
            type_: CKA_CLASS,
            pValue: class.as_mut_ptr() as *mut _,
            ulValueLen: 1,
        },
    ]
}

fn session_handle_first(which: Which) {
    let _g = exclusive();
    let r = raw(which);
    r.init();
    r.token("order");
    let bad: CK_SESSION_HANDLE = 0xdead_beef;
    let mut param = [1u8; 3];
    let mut mech = bogus_mechanism(&mut param);
    let (mut token, mut class) = (CK_TRUE, [9u8]);
    let mut t = template(&mut token, &mut class);
    let mut t2 = template(&mut token, &mut class);
    let (mut a, mut b) = (0, 0);
    let mut buf = [0u8; 64];
    let mut len: CK_ULONG = 64;
    let want = CKR_SESSION_HANDLE_INVALID;
    assert_eq!(
        call!(r, C_GenerateKey(bad, &mut mech, t.as_mut_ptr(), 2, &mut a)),
        want,
        "C_GenerateKey"
    );
    assert_eq!(
        call!(
            r,
            C_GenerateKeyPair(
                bad,
                &mut mech,
                t.as_mut_ptr(),
                2,
                t2.as_mut_ptr(),
                2,
                &mut a,
                &mut b
            )
        ),
        want,
        "C_GenerateKeyPair"
    );
    assert_eq!(
        call!(r, C_DeriveKey(bad, &mut mech, 1, t.as_mut_ptr(), 2, &mut a)),
        want,
        "C_DeriveKey"
    );
    assert_eq!(
        call!(
            r,
            C_UnwrapKey(
                bad,
                &mut mech,
                1,
                buf.as_mut_ptr(),
                24,
                t.as_mut_ptr(),
                2,
                &mut a
            )
        ),
        want,
        "C_UnwrapKey"
    );
    assert_eq!(
        call!(
            r,
            C_WrapKey(bad, &mut mech, 1, 2, buf.as_mut_ptr(), &mut len)
        ),
        want,
        "C_WrapKey"
    );
    assert_eq!(
        call!(r, C_EncryptInit(bad, &mut mech, 1)),
        want,
        "C_EncryptInit"
    );
    assert_eq!(
        call!(r, C_DecryptInit(bad, &mut mech, 1)),
        want,
        "C_DecryptInit"
    );
    assert_eq!(call!(r, C_SignInit(bad, &mut mech, 1)), want, "C_SignInit");
    assert_eq!(
        call!(r, C_VerifyInit(bad, &mut mech, 1)),
        want,
        "C_VerifyInit"
    );
    assert_eq!(call!(r, C_DigestInit(bad, &mut mech)), want, "C_DigestInit");
    assert_eq!(
        call!(r, C_CreateObject(bad, t.as_mut_ptr(), 2, &mut a)),
        want,
        "C_CreateObject"
    );
    assert_eq!(
        call!(r, C_CopyObject(bad, 1, t.as_mut_ptr(), 2, &mut a)),
        want,
        "C_CopyObject"
    );
}

fn read_only_before_mechanism_and_template(which: Which) {
    let _g = exclusive();
    let r = raw(which);
    r.init();
    let slot = r.token("read-only");
    let mut ro = 0;
    assert_eq!(
        call!(
            r,
            C_OpenSession(slot, CKF_SERIAL_SESSION, null_mut(), None, &mut ro)
        ),
        CKR_OK
    );
    let mut param = [1u8; 3];
    let mut mech = bogus_mechanism(&mut param);
    let (mut token, mut class) = (CK_TRUE, [9u8]);
    let mut t = template(&mut token, &mut class);
    let mut a = 0;
    assert_eq!(
        call!(r, C_GenerateKey(ro, &mut mech, t.as_mut_ptr(), 2, &mut a)),
        CKR_SESSION_READ_ONLY
    );
    assert_eq!(
        call!(r, C_DeriveKey(ro, &mut mech, 1, t.as_mut_ptr(), 2, &mut a)),
        CKR_SESSION_READ_ONLY
    );
    assert_eq!(
        call!(r, C_CreateObject(ro, t.as_mut_ptr(), 2, &mut a)),
        CKR_SESSION_READ_ONLY
    );
    // A session object: the mechanism is the first thing wrong.
    let mut session_only = CK_FALSE;
    let mut t = template(&mut session_only, &mut class);
    assert_eq!(
        call!(r, C_GenerateKey(ro, &mut mech, t.as_mut_ptr(), 2, &mut a)),
        CKR_MECHANISM_INVALID
    );
}

against_both!(session_handle_first);
ours_only!(read_only_before_mechanism_and_template);
