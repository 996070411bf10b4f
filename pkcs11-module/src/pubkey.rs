//! Public-key attributes from a DER SubjectPublicKeyInfo, and the curve
//! and size facts sign/verify need. Only public data passes here.

use cryptoki_sys::*;
use hsm_core::KeySpec;

use crate::attrs::ulong;
use crate::backend::Attributes;
use crate::error::{ckr, Result};

/// DER of the P-256 curve OID (CKA_EC_PARAMS).
pub const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of the P-384 curve OID.
pub const P384_OID: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// DER of the Ed25519 OID (id-Ed25519, RFC 8410).
pub const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// DER PrintableString "edwards25519", the older CKA_EC_PARAMS form.
pub const ED25519_NAME: &[u8] = b"\x13\x0cedwards25519";

fn bad() -> crate::error::Pkcs11Error {
    ckr!(CKR_DEVICE_ERROR, "malformed public key from the engine")
}

/// Splits one DER element off `input`: (tag, contents, rest).
fn der(input: &[u8]) -> Result<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first().ok_or_else(bad)?;
    let (&first, rest) = rest.split_first().ok_or_else(bad)?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 3 || rest.len() < n {
            return Err(bad());
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(bad());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// Wraps bytes in a DER OCTET STRING.
fn octet_string(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0x04];
    if bytes.len() < 0x80 {
        out.push(bytes.len() as u8);
    } else {
        out.extend_from_slice(&[0x81, bytes.len() as u8]);
    }
    out.extend_from_slice(bytes);
    out
}

fn strip_zero(int: &[u8]) -> &[u8] {
    match int {
        [0, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    }
}

/// The public attributes of a key: CKA_EC_PARAMS and CKA_EC_POINT, or
/// CKA_MODULUS, CKA_MODULUS_BITS and CKA_PUBLIC_EXPONENT.
pub fn public_attrs(spec: KeySpec, spki: &[u8]) -> Result<Attributes> {
    let (_, body, _) = der(spki)?;
    let (_, _algorithm, rest) = der(body)?;
    let (tag, bits, _) = der(rest)?;
    if tag != 0x03 || bits.first() != Some(&0) {
        return Err(bad());
    }
    let key = &bits[1..];
    let mut a = Attributes::new();
    match spec {
        KeySpec::EccNistP256 | KeySpec::EccNistP384 | KeySpec::EccEd25519 => {
            let params = match spec {
                KeySpec::EccNistP256 => P256_OID,
                KeySpec::EccNistP384 => P384_OID,
                _ => ED25519_OID,
            };
            a.insert(CKA_EC_PARAMS, params.to_vec());
            a.insert(CKA_EC_POINT, octet_string(key));
        }
        s if s.is_rsa() => {
            let (_, seq, _) = der(key)?;
            let (_, n, rest) = der(seq)?;
            let (_, e, _) = der(rest)?;
            let n = strip_zero(n);
            a.insert(CKA_MODULUS_BITS, ulong((n.len() * 8) as CK_ULONG));
            a.insert(CKA_MODULUS, n.to_vec());
            a.insert(CKA_PUBLIC_EXPONENT, strip_zero(e).to_vec());
        }
        _ => return Err(ckr!(CKR_KEY_TYPE_INCONSISTENT, "unsupported key spec")),
    }
    Ok(a)
}

/// The key spec a CKA_EC_PARAMS names, for C_GenerateKeyPair.
pub fn ec_spec(params: &[u8], edwards: bool) -> Result<KeySpec> {
    match params {
        p if !edwards && p == P256_OID => Ok(KeySpec::EccNistP256),
        p if !edwards && p == P384_OID => Ok(KeySpec::EccNistP384),
        p if edwards && (p == ED25519_OID || p == ED25519_NAME) => Ok(KeySpec::EccEd25519),
        _ => Err(ckr!(CKR_CURVE_NOT_SUPPORTED)),
    }
}

/// The signature length of a key, from its stored attributes.
pub fn signature_len(attrs: &Attributes) -> Result<usize> {
    if let Some(n) = attrs.get(&CKA_MODULUS) {
        return Ok(n.len());
    }
    match attrs.get(&CKA_EC_PARAMS).map(Vec::as_slice) {
        Some(p) if p == P256_OID => Ok(64),
        Some(p) if p == P384_OID => Ok(96),
        Some(p) if p == ED25519_OID || p == ED25519_NAME => Ok(64),
        _ => Err(ckr!(CKR_KEY_TYPE_INCONSISTENT, "not a signing key")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_reader_refuses_truncation_and_reads_long_lengths() {
        assert!(der(&[0x30]).is_err());
        assert!(der(&[0x30, 0x05, 1, 2]).is_err());
        let mut long = vec![0x04, 0x81, 0x90];
        long.extend(vec![7u8; 0x90]);
        let (tag, body, rest) = der(&long).unwrap();
        assert_eq!((tag, body.len(), rest.len()), (0x04, 0x90, 0));
        assert_eq!(octet_string(&[1, 2]), vec![0x04, 0x02, 1, 2]);
        assert_eq!(strip_zero(&[0, 0x80]), &[0x80]);
        assert_eq!(ec_spec(P384_OID, false).unwrap(), KeySpec::EccNistP384);
        assert_eq!(
            ec_spec(P384_OID, true).unwrap_err().rv(),
            CKR_CURVE_NOT_SUPPORTED
        );
    }
}
