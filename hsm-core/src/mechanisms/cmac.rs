//! CKM_AES_CMAC and CKM_AES_CMAC_GENERAL (NIST SP 800-38B) with RustCrypto's
//! `cmac` over its AES block cipher, for AES keys of 16, 24 or 32 bytes.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use cmac::{Cmac, Mac};

use crate::error::{Error, Result};
use crate::hsm::Hsm;
use crate::mechanisms::SecretKeyRef;
use crate::token::SessionKeys;

/// The full CMAC of `data` under an AES key.
pub(super) fn cmac(key: &[u8], data: &[u8]) -> Result<[u8; 16]> {
    let bad = || Error::InvalidKeyUsage("CMAC needs an AES key of 16, 24 or 32 bytes".into());
    let tag = match key.len() {
        16 => {
            let mut m = <Cmac<aes::Aes128> as Mac>::new_from_slice(key).map_err(|_| bad())?;
            m.update(data);
            m.finalize().into_bytes()
        }
        24 => {
            let mut m = <Cmac<aes::Aes192> as Mac>::new_from_slice(key).map_err(|_| bad())?;
            m.update(data);
            m.finalize().into_bytes()
        }
        32 => {
            let mut m = <Cmac<aes::Aes256> as Mac>::new_from_slice(key).map_err(|_| bad())?;
            m.update(data);
            m.finalize().into_bytes()
        }
        _ => return Err(bad()),
    };
    Ok(tag.into())
}

impl Hsm {
    /// The AES-CMAC of `data`, its first `mac_len` (1 to 16) bytes.
    pub fn p11_cmac(
        &self,
        keys: &SessionKeys,
        key: SecretKeyRef<'_>,
        data: &[u8],
        mac_len: usize,
    ) -> Result<Vec<u8>> {
        if !(1..=16).contains(&mac_len) {
            return Err(Error::validation("a CMAC is 1 to 16 bytes"));
        }
        self.with_aes_secret(keys, key, |k| Ok(cmac(k, data)?[..mac_len].to_vec()))
    }

    /// Checks an AES-CMAC (of the given length) in constant time.
    pub fn p11_cmac_verify(
        &self,
        keys: &SessionKeys,
        key: SecretKeyRef<'_>,
        data: &[u8],
        mac: &[u8],
    ) -> Result<bool> {
        let want = self.p11_cmac(keys, key, data, mac.len())?;
        Ok(verify_slices_are_equal(&want, mac).is_ok())
    }

    /// Runs `f` on the bytes of an AES key (a token key of spec
    /// SYMMETRIC_DEFAULT, or a session key).
    fn with_aes_secret<T>(
        &self,
        keys: &SessionKeys,
        key: SecretKeyRef<'_>,
        f: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<T> {
        if let SecretKeyRef::Stored(id) = key {
            if !self.read_state().key(id)?.spec.is_symmetric() {
                return Err(Error::InvalidKeyUsage("not an AES key".into()));
            }
        }
        self.with_secret(keys, key, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// NIST SP 800-38B, Appendix D.1 (AES-128) and D.3 (AES-256), examples
    /// 1, 2 and 4 (empty, 16 and 64 bytes); D.2 (AES-192) example 3 (40 bytes).
    #[test]
    fn sp800_38b_vectors() {
        let msg = hex(
            "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
             30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710",
        );
        let k128 = hex("2b7e151628aed2a6abf7158809cf4f3c");
        let k192 = hex("8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b");
        let k256 = hex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
        let cases: [(&[u8], usize, &str); 6] = [
            (&k128, 0, "bb1d6929e95937287fa37d129b756746"),
            (&k128, 16, "070a16b46b4d4144f79bdd9dd04a287c"),
            (&k128, 64, "51f0bebf7e3b9d92fc49741779363cfe"),
            (&k192, 40, "8a1de5be2eb31aad089a82e6ee908b0e"),
            (&k256, 0, "028962f61b7bf89efc6b551f4667d983"),
            (&k256, 64, "e1992190549f6ed5696a2c056c315410"),
        ];
        for (key, len, tag) in cases {
            assert_eq!(cmac(key, &msg[..len]).unwrap().to_vec(), hex(tag), "{len}");
        }
        assert!(cmac(&[0u8; 20], b"x").is_err());
    }
}
