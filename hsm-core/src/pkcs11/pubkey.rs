//! Public-key attributes from a DER SubjectPublicKeyInfo, and the curve
//! and size facts sign/verify need. Only public data passes here. (The
//! module verifies with imported public keys itself: its `pubkey`.)

use cryptoki_sys::*;

use super::attrs::ulong;
use super::error::{ckr, Result};
use super::Attributes;
use crate::KeySpec;

/// DER of the P-256 curve OID (CKA_EC_PARAMS).
pub const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of the P-384 curve OID.
pub const P384_OID: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// DER of the P-521 curve OID (secp521r1).
pub const P521_OID: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
/// DER of the Ed25519 OID (id-Ed25519, RFC 8410).
pub const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// DER PrintableString "edwards25519", the older CKA_EC_PARAMS form.
pub const ED25519_NAME: &[u8] = b"\x13\x0cedwards25519";
/// DER of the X25519 OID (id-X25519, RFC 8410).
pub const X25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x6e];
/// DER PrintableString "curve25519", the older CKA_EC_PARAMS form.
pub const X25519_NAME: &[u8] = b"\x13\x0acurve25519";

fn bad() -> super::Pkcs11Error {
    ckr!(CKR_DEVICE_ERROR, "malformed public key from the engine")
}

/// Splits one DER element off `input`: (tag, contents, rest).
pub fn der(input: &[u8]) -> Result<(u8, &[u8], &[u8])> {
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

/// A DER INTEGER's magnitude without its leading sign byte.
pub fn strip_zero(int: &[u8]) -> &[u8] {
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
        KeySpec::EccNistP256
        | KeySpec::EccNistP384
        | KeySpec::EccNistP521
        | KeySpec::EccEd25519
        | KeySpec::EccX25519 => {
            let params = match spec {
                KeySpec::EccNistP256 => P256_OID,
                KeySpec::EccNistP384 => P384_OID,
                KeySpec::EccNistP521 => P521_OID,
                KeySpec::EccX25519 => X25519_OID,
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
            a.insert(CKA_MODULUS_BITS, ulong(modulus_bits(n)));
            a.insert(CKA_MODULUS, n.to_vec());
            a.insert(CKA_PUBLIC_EXPONENT, strip_zero(e).to_vec());
        }
        s => {
            return super::pq::public_attrs(s, key)
                .ok_or(ckr!(CKR_KEY_TYPE_INCONSISTENT, "unsupported key spec"))
        }
    }
    Ok(a)
}

/// The key spec a CKA_EC_PARAMS names, for C_GenerateKeyPair.
pub fn ec_spec(params: &[u8], edwards: bool) -> Result<KeySpec> {
    match params {
        p if !edwards && p == P256_OID => Ok(KeySpec::EccNistP256),
        p if !edwards && p == P384_OID => Ok(KeySpec::EccNistP384),
        p if !edwards && p == P521_OID => Ok(KeySpec::EccNistP521),
        p if edwards && (p == ED25519_OID || p == ED25519_NAME) => Ok(KeySpec::EccEd25519),
        _ => Err(ckr!(CKR_CURVE_NOT_SUPPORTED)),
    }
}

/// The key spec a CKA_EC_PARAMS of a CKK_EC_MONTGOMERY key names.
pub fn montgomery_spec(params: &[u8]) -> Result<KeySpec> {
    match params {
        p if p == X25519_OID || p == X25519_NAME => Ok(KeySpec::EccX25519),
        _ => Err(ckr!(CKR_CURVE_NOT_SUPPORTED)),
    }
}

/// The signature length of a key, from its stored attributes.
pub fn signature_len(attrs: &Attributes) -> Result<usize> {
    if let Some(n) = super::pq::signature_len(attrs) {
        return Ok(n);
    }
    if let Some(n) = attrs.get(&CKA_MODULUS) {
        // A modulus given as a DER INTEGER's bytes keeps its sign byte.
        return Ok(strip_zero(n).len());
    }
    match attrs.get(&CKA_EC_PARAMS).map(Vec::as_slice) {
        Some(p) if p == P256_OID => Ok(64),
        Some(p) if p == P384_OID => Ok(96),
        Some(p) if p == P521_OID => Ok(132),
        Some(p) if p == ED25519_OID || p == ED25519_NAME => Ok(64),
        _ => Err(ckr!(CKR_KEY_TYPE_INCONSISTENT, "not a signing key")),
    }
}

/// Attributes an imported public key (C_CreateObject) may carry.
const PUBLIC_ATTRS: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_CLASS,
    CKA_KEY_TYPE,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_LABEL,
    CKA_ID,
    CKA_SUBJECT,
    CKA_VERIFY,
    CKA_ENCRYPT,
    CKA_WRAP,
    CKA_VERIFY_RECOVER,
    CKA_DERIVE,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_TRUSTED,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_EC_PARAMS,
    CKA_EC_POINT,
    CKA_MODULUS,
    CKA_PUBLIC_EXPONENT,
    CKA_PARAMETER_SET,
    CKA_VALUE,
    CKA_ENCAPSULATE,
];

/// Builds an imported public key's attributes (EC P-256/384/521, Ed25519 or
/// RSA 1024-8192), checking the key material's shape. Such a key verifies
/// in this module (it is public data); it never reaches the engine.
pub fn import_public(template: &super::attrs::Template) -> Result<Attributes> {
    use super::attrs::{as_ulong, bbool};
    let mut a = Attributes::new();
    for (t, v) in [
        (CKA_TOKEN, false),
        (CKA_PRIVATE, false),
        (CKA_VERIFY, true),
        (CKA_ENCRYPT, false),
    ] {
        a.insert(t, bbool(v));
    }
    for (t, v) in [
        (CKA_WRAP, false),
        (CKA_DERIVE, false),
        (CKA_LOCAL, false),
        (CKA_TRUSTED, false),
    ] {
        a.insert(t, bbool(v));
    }
    for (t, v) in [
        (CKA_MODIFIABLE, true),
        (CKA_COPYABLE, false),
        (CKA_DESTROYABLE, true),
    ] {
        a.insert(t, bbool(v));
    }
    a.insert(CKA_LABEL, Vec::new());
    a.insert(CKA_ID, Vec::new());
    for (t, v) in template {
        if !PUBLIC_ATTRS.contains(t) {
            return Err(ckr!(CKR_ATTRIBUTE_TYPE_INVALID));
        }
        a.insert(*t, v.clone());
    }
    let key_type = a
        .get(&CKA_KEY_TYPE)
        .ok_or(ckr!(CKR_TEMPLATE_INCOMPLETE, "CKA_KEY_TYPE is required"))
        .and_then(|v| as_ulong(v))?;
    let bad = || ckr!(CKR_ATTRIBUTE_VALUE_INVALID, "malformed public key");
    match key_type {
        CKK_EC | CKK_EC_EDWARDS => {
            let params = a.get(&CKA_EC_PARAMS).ok_or(ckr!(CKR_TEMPLATE_INCOMPLETE))?;
            let spec = ec_spec(params, key_type == CKK_EC_EDWARDS)?;
            let point = ec_point_bytes(&a)?;
            let want = match spec {
                KeySpec::EccNistP256 => 65,
                KeySpec::EccNistP384 => 97,
                KeySpec::EccNistP521 => 133,
                _ => 32,
            };
            if point.len() != want {
                return Err(bad());
            }
        }
        CKK_RSA => {
            let n = a.get(&CKA_MODULUS).ok_or(ckr!(CKR_TEMPLATE_INCOMPLETE))?;
            let n = strip_zero(n);
            if !(128..=1024).contains(&n.len()) || !a.contains_key(&CKA_PUBLIC_EXPONENT) {
                return Err(bad());
            }
            a.insert(CKA_MODULUS_BITS, ulong(modulus_bits(n)));
        }
        CKK_ML_DSA | CKK_ML_KEM => super::pq::import_public(key_type, &mut a)?,
        _ => return Err(ckr!(CKR_ATTRIBUTE_VALUE_INVALID, "unsupported key type")),
    }
    Ok(a)
}

/// The size in bits of a modulus given without leading zeros (2049 for a
/// 257-byte modulus whose top byte is 1).
fn modulus_bits(n: &[u8]) -> CK_ULONG {
    let top = n.first().map_or(0, |b| 8 - b.leading_zeros());
    (n.len().saturating_sub(1) * 8) as CK_ULONG + CK_ULONG::from(top)
}

/// The raw point inside CKA_EC_POINT (a DER OCTET STRING).
pub fn ec_point_bytes(a: &Attributes) -> Result<Vec<u8>> {
    let encoded = a.get(&CKA_EC_POINT).ok_or(ckr!(CKR_TEMPLATE_INCOMPLETE))?;
    let (tag, body, rest) = der(encoded).map_err(|_| ckr!(CKR_ATTRIBUTE_VALUE_INVALID))?;
    if tag != 0x04 || !rest.is_empty() {
        return Err(ckr!(
            CKR_ATTRIBUTE_VALUE_INVALID,
            "CKA_EC_POINT is a DER OCTET STRING"
        ));
    }
    Ok(body.to_vec())
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
