//! PIN records of the memory backend: Argon2id hashes, constant-time
//! checks, failure counters (the embedded store keeps its own, in
//! hsm-core's token module).
//!
//! A PIN is never stored or logged; only its salted Argon2id hash. After
//! [`MAX_PIN_FAILURES`] wrong tries in a row the PIN locks: the user PIN
//! until the SO sets a new one with C_InitPIN, the SO PIN for good.

use argon2::{Algorithm, Argon2, Params, Version};
use cryptoki_sys::*;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{ckr, Pkcs11Error, Result};

pub use hsm_core::pkcs11::pin::{check_pin_len, pin_flags};
/// The store's limits, which this module's memory backend shares.
pub use hsm_core::token::{MAX_PIN_FAILURES, MAX_PIN_LEN, MIN_PIN_LEN};

/// Argon2id cost for PIN hashes: 8 MiB, 2 passes, one lane.
const M_COST_KIB: u32 = 8 * 1024;
const T_COST: u32 = 2;

/// A stored PIN: salt, hash and the count of consecutive failures.
#[derive(Clone)]
pub struct PinRecord {
    salt: [u8; 16],
    hash: Zeroizing<[u8; 32]>,
    failures: u32,
}

impl std::fmt::Debug for PinRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinRecord")
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

fn derive(pin: &[u8], salt: &[u8; 16]) -> Result<Zeroizing<[u8; 32]>> {
    let params = Params::new(M_COST_KIB, T_COST, 1, Some(32))
        .map_err(|_| Pkcs11Error::General("bad Argon2 parameters".into()))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(pin, salt, out.as_mut())
        .map_err(|_| Pkcs11Error::General("PIN hashing failed".into()))?;
    Ok(out)
}

impl PinRecord {
    /// Hashes a new PIN under a fresh random salt.
    pub fn new(pin: &[u8]) -> Result<Self> {
        check_pin_len(pin)?;
        let mut salt = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
            .map_err(|_| ckr!(CKR_DEVICE_ERROR, "no randomness"))?;
        let hash = derive(pin, &salt)?;
        Ok(PinRecord {
            salt,
            hash,
            failures: 0,
        })
    }

    /// Whether too many wrong tries have locked this PIN.
    pub fn locked(&self) -> bool {
        self.failures >= MAX_PIN_FAILURES
    }

    /// Checks `pin` in constant time. A wrong PIN counts a failure
    /// (CKR_PIN_INCORRECT, or CKR_PIN_LOCKED on the last try); a right one
    /// resets the count. A locked PIN is refused without hashing.
    pub fn check(&mut self, pin: &[u8]) -> Result<()> {
        if self.locked() {
            return Err(ckr!(CKR_PIN_LOCKED, "PIN is locked"));
        }
        let candidate = derive(pin, &self.salt)?;
        if bool::from(candidate.as_ref().ct_eq(self.hash.as_ref())) {
            self.failures = 0;
            Ok(())
        } else {
            self.failures += 1;
            if self.locked() {
                Err(ckr!(CKR_PIN_LOCKED, "PIN is now locked"))
            } else {
                Err(ckr!(CKR_PIN_INCORRECT, "PIN incorrect"))
            }
        }
    }

    /// The CK_TOKEN_INFO flags describing this PIN's counter; `user`
    /// selects the CKF_USER_PIN_* or CKF_SO_PIN_* family.
    pub fn flags(&self, user: bool) -> CK_FLAGS {
        pin_flags(self.failures, user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_failures_then_locks_and_a_right_pin_resets() {
        let mut rec = PinRecord::new(b"1234").unwrap();
        assert_eq!(rec.check(b"9999").unwrap_err().rv(), CKR_PIN_INCORRECT);
        assert_eq!(rec.flags(true), CKF_USER_PIN_COUNT_LOW);
        rec.check(b"1234").unwrap();
        assert_eq!(rec.flags(true), 0);
        for _ in 0..MAX_PIN_FAILURES - 1 {
            assert_eq!(rec.check(b"0000").unwrap_err().rv(), CKR_PIN_INCORRECT);
        }
        assert_ne!(rec.flags(true) & CKF_USER_PIN_FINAL_TRY, 0);
        assert_eq!(rec.check(b"0000").unwrap_err().rv(), CKR_PIN_LOCKED);
        assert_eq!(rec.check(b"1234").unwrap_err().rv(), CKR_PIN_LOCKED);
        assert_ne!(rec.flags(false) & CKF_SO_PIN_LOCKED, 0);
    }

    #[test]
    fn rejects_short_and_long_pins_and_hides_them_in_debug() {
        assert_eq!(PinRecord::new(b"123").unwrap_err().rv(), CKR_PIN_LEN_RANGE);
        assert_eq!(
            PinRecord::new(&[b'1'; MAX_PIN_LEN + 1]).unwrap_err().rv(),
            CKR_PIN_LEN_RANGE
        );
        let rec = PinRecord::new(b"secret-pin").unwrap();
        assert!(!format!("{rec:?}").contains("secret"));
    }
}
