//! CKM_DES3_ECB, CKM_DES3_CBC and CKM_DES3_CBC_PAD (three-key triple DES,
//! NIST SP 800-67) for legacy fixtures, with RustCrypto's `des` block
//! cipher and its `ecb` and `cbc` modes. Keys are 24 bytes (parity bits
//! ignored, as the cipher does).

use cbc::cipher::block_padding::{NoPadding, Pkcs7};
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyInit, KeyIvInit};
use des::TdesEde3;
use zeroize::Zeroizing;

use super::AesMode;
use crate::error::{Error, Result};

/// The DES3 block size in bytes.
pub const DES3_BLOCK: usize = 8;

fn bad_key() -> Error {
    Error::validation("a DES3 key is 24 bytes")
}

fn failed(what: &str) -> Error {
    Error::InvalidCiphertext(format!("{what} failed"))
}

/// Runs a DES3 mode; `None` when `mode` is not a DES3 mode.
pub(super) fn run(
    key: &[u8],
    mode: &AesMode,
    encrypt: bool,
    data: &[u8],
) -> Option<Result<Zeroizing<Vec<u8>>>> {
    let run = |f: &dyn Fn() -> Result<Vec<u8>>| Some(f().map(Zeroizing::new));
    let whole = || {
        if data.len().is_multiple_of(DES3_BLOCK) {
            Ok(())
        } else {
            Err(Error::validation("input is not a whole number of blocks"))
        }
    };
    match mode {
        AesMode::Des3Ecb => run(&|| {
            whole()?;
            if encrypt {
                let c = ecb::Encryptor::<TdesEde3>::new_from_slice(key).map_err(|_| bad_key())?;
                Ok(c.encrypt_padded_vec_mut::<NoPadding>(data))
            } else {
                let c = ecb::Decryptor::<TdesEde3>::new_from_slice(key).map_err(|_| bad_key())?;
                c.decrypt_padded_vec_mut::<NoPadding>(data)
                    .map_err(|_| failed("DES3 decryption"))
            }
        }),
        AesMode::Des3Cbc(iv) | AesMode::Des3CbcPad(iv) => {
            let pad = matches!(mode, AesMode::Des3CbcPad(_));
            run(&|| {
                if !(encrypt && pad) {
                    whole()?;
                }
                if key.len() != 24 {
                    return Err(bad_key());
                }
                if encrypt {
                    let c = cbc::Encryptor::<TdesEde3>::new_from_slices(key, iv)
                        .map_err(|_| bad_key())?;
                    Ok(if pad {
                        c.encrypt_padded_vec_mut::<Pkcs7>(data)
                    } else {
                        c.encrypt_padded_vec_mut::<NoPadding>(data)
                    })
                } else {
                    let c = cbc::Decryptor::<TdesEde3>::new_from_slices(key, iv)
                        .map_err(|_| bad_key())?;
                    if pad {
                        c.decrypt_padded_vec_mut::<Pkcs7>(data)
                            .map_err(|_| failed("DES3-CBC-PAD decryption"))
                    } else {
                        c.decrypt_padded_vec_mut::<NoPadding>(data)
                            .map_err(|_| failed("DES3 decryption"))
                    }
                }
            })
        }
        _ => None,
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

    /// NIST SP 800-67 Rev. 2, the TDEA example (ECB, three keys); CBC with
    /// an IV, checked against OpenSSL's des-ede3-cbc; CBC-PAD round trip.
    #[test]
    fn sp800_67_vector() {
        let key = hex("0123456789ABCDEF 23456789ABCDEF01 456789ABCDEF0123");
        let pt = b"The qufck brown fox jump";
        let ct = hex("A826FD8CE53B855F CCE21C8112256FE6 68D5C05DD9B6B900");
        let enc = |mode: &AesMode, data: &[u8]| run(&key, mode, true, data).unwrap().unwrap();
        let dec = |mode: &AesMode, data: &[u8]| run(&key, mode, false, data).unwrap().unwrap();
        assert_eq!(enc(&AesMode::Des3Ecb, pt).to_vec(), ct);
        assert_eq!(dec(&AesMode::Des3Ecb, &ct).to_vec(), pt.to_vec());
        let iv: [u8; 8] = hex("F69F2445DF4F9B17").try_into().unwrap();
        let cbc_ct = hex("a5c282bad0de3774becd2e04386b589fb5057d8552fc4336");
        assert_eq!(enc(&AesMode::Des3Cbc(iv), pt).to_vec(), cbc_ct);
        assert_eq!(dec(&AesMode::Des3Cbc(iv), &cbc_ct).to_vec(), pt.to_vec());
        let padded = enc(&AesMode::Des3CbcPad(iv), b"seven b");
        assert_eq!(padded.len(), 8);
        assert_eq!(
            dec(&AesMode::Des3CbcPad(iv), &padded).to_vec(),
            b"seven b".to_vec()
        );
        assert_eq!(enc(&AesMode::Des3CbcPad(iv), pt).len(), 32);
        assert!(run(&key, &AesMode::Des3Ecb, true, &[0; 7])
            .unwrap()
            .is_err());
        assert!(run(&key[..16], &AesMode::Des3Ecb, true, &[0; 8])
            .unwrap()
            .is_err());
        assert!(run(&key, &AesMode::Ecb, true, &[0; 16]).is_none());
    }
}
