//! What PKCS#11 shows of a PIN: its length limits and the CK_TOKEN_INFO
//! flags of its failure counter. The PINs themselves are checked by the
//! store ([`crate::token`]) or, for the module's memory backend, by the
//! module.

use cryptoki_sys::*;

use super::error::{ckr, Result};
use crate::token::{MAX_PIN_FAILURES, MAX_PIN_LEN, MIN_PIN_LEN};

/// Checks a PIN's length against the token's limits.
pub fn check_pin_len(pin: &[u8]) -> Result<()> {
    if pin.len() < MIN_PIN_LEN || pin.len() > MAX_PIN_LEN {
        return Err(ckr!(CKR_PIN_LEN_RANGE, "PIN length out of range"));
    }
    Ok(())
}

/// The CK_TOKEN_INFO flags for a PIN with `failures` wrong tries in a row;
/// `user` selects the CKF_USER_PIN_* or CKF_SO_PIN_* family.
pub fn pin_flags(failures: u32, user: bool) -> CK_FLAGS {
    let (low, last, locked) = if user {
        (
            CKF_USER_PIN_COUNT_LOW,
            CKF_USER_PIN_FINAL_TRY,
            CKF_USER_PIN_LOCKED,
        )
    } else {
        (
            CKF_SO_PIN_COUNT_LOW,
            CKF_SO_PIN_FINAL_TRY,
            CKF_SO_PIN_LOCKED,
        )
    };
    match failures {
        0 => 0,
        n if n >= MAX_PIN_FAILURES => locked | low,
        n if n + 1 == MAX_PIN_FAILURES => last | low,
        _ => low,
    }
}
