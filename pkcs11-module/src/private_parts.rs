//! The secret attributes of a readable private key (made with
//! CKA_SENSITIVE false and CKA_EXTRACTABLE true), taken from the PKCS#8
//! PrivateKeyInfo the backend gives for such a key only: RSA's
//! CKA_PRIVATE_EXPONENT, CKA_PRIME_1/2, CKA_EXPONENT_1/2 and
//! CKA_COEFFICIENT (RFC 8017 RSAPrivateKey), an EC key's CKA_VALUE (the
//! scalar of RFC 5915 ECPrivateKey), an Ed25519 or X25519 key's CKA_VALUE
//! (the 32-byte private key of RFC 8410).

use cryptoki_sys::*;
use zeroize::Zeroizing;

use crate::error::{ckr, Pkcs11Error, Result};

fn bad() -> Pkcs11Error {
    ckr!(CKR_DEVICE_ERROR, "malformed private key from the engine")
}

/// Splits one DER element off `input`: (tag, contents, rest); the same
/// reader as public keys', with this module's error.
fn der(input: &[u8]) -> Result<(u8, &[u8], &[u8])> {
    crate::pubkey::der(input).map_err(|_| bad())
}

/// The privateKey OCTET STRING's contents of a PrivateKeyInfo.
fn private_key_field(pkcs8: &[u8]) -> Result<&[u8]> {
    let (tag, info, _) = der(pkcs8)?;
    let (t_version, _, rest) = der(info)?;
    let (t_algorithm, _, rest) = der(rest)?;
    let (t_key, key, _) = der(rest)?;
    if (tag, t_version, t_algorithm, t_key) != (0x30, 0x02, 0x30, 0x04) {
        return Err(bad());
    }
    Ok(key)
}

/// The big-endian magnitude of a DER INTEGER (no leading zero).
fn magnitude(int: &[u8]) -> &[u8] {
    let start = int
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(int.len().saturating_sub(1));
    &int[start..]
}

/// The value of the secret attribute `t` of a private key of type
/// `key_type` whose PKCS#8 is `pkcs8`; `None` when the type has no such
/// attribute.
pub fn secret_attr(
    key_type: CK_KEY_TYPE,
    pkcs8: &[u8],
    t: CK_ATTRIBUTE_TYPE,
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let key = private_key_field(pkcs8)?;
    match key_type {
        CKK_RSA => {
            // RSAPrivateKey: version, n, e, d, p, q, dP, dQ, qInv.
            let index = match t {
                CKA_PRIVATE_EXPONENT => 3,
                CKA_PRIME_1 => 4,
                CKA_PRIME_2 => 5,
                CKA_EXPONENT_1 => 6,
                CKA_EXPONENT_2 => 7,
                CKA_COEFFICIENT => 8,
                _ => return Ok(None),
            };
            let (tag, mut fields, _) = der(key)?;
            if tag != 0x30 {
                return Err(bad());
            }
            for i in 0..=index {
                let (tag, value, rest) = der(fields)?;
                if tag != 0x02 {
                    return Err(bad());
                }
                if i == index {
                    return Ok(Some(Zeroizing::new(magnitude(value).to_vec())));
                }
                fields = rest;
            }
            Err(bad())
        }
        CKK_EC if t == CKA_VALUE => {
            // ECPrivateKey: version 1, privateKey OCTET STRING, ...
            let (tag, fields, _) = der(key)?;
            let (t_version, _, rest) = der(fields)?;
            let (t_scalar, scalar, _) = der(rest)?;
            if (tag, t_version, t_scalar) != (0x30, 0x02, 0x04) {
                return Err(bad());
            }
            Ok(Some(Zeroizing::new(scalar.to_vec())))
        }
        CKK_EC_EDWARDS | CKK_EC_MONTGOMERY if t == CKA_VALUE => {
            // CurvePrivateKey: an OCTET STRING of the 32-byte key.
            let (tag, value, _) = der(key)?;
            if tag != 0x04 {
                return Err(bad());
            }
            Ok(Some(Zeroizing::new(value.to_vec())))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnitudes_drop_the_sign_byte_only() {
        assert_eq!(magnitude(&[0, 0x80, 1]), &[0x80, 1]);
        assert_eq!(magnitude(&[0]), &[0]);
        assert_eq!(magnitude(&[5]), &[5]);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        for len in 0..8 {
            let input = [0x30, 0x82, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30];
            assert!(secret_attr(CKK_RSA, &input[..len], CKA_PRIME_1).is_err());
        }
    }
}
