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

fn bad() -> crate::error::Pkcs11Error {
    ckr!(CKR_DEVICE_ERROR, "malformed public key from the engine")
}

/// Splits one DER element off `input`: (tag, contents, rest).
pub(crate) fn der(input: &[u8]) -> Result<(u8, &[u8], &[u8])> {
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
            return crate::pq_ops::public_attrs(s, key)
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
    if let Some(n) = crate::pq_ops::signature_len(attrs) {
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
pub fn import_public(template: &crate::attrs::Template) -> Result<Attributes> {
    use crate::attrs::{as_ulong, bbool};
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
        CKK_ML_DSA | CKK_ML_KEM => crate::pq_ops::import_public(key_type, &mut a)?,
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
fn ec_point_bytes(a: &Attributes) -> Result<Vec<u8>> {
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

/// Verification with an imported public key, in this module.
pub enum PublicVerifier {
    /// ECDSA (fixed r||s) or Ed25519 with ring.
    Point(&'static dyn ring::signature::VerificationAlgorithm, Vec<u8>),
    /// ECDSA P-521 (fixed r||s) with aws-lc-rs: ring has no P-521.
    P521(Vec<u8>),
    /// RSA PKCS#1 v1.5 or PSS with ring.
    Rsa(&'static ring::signature::RsaParameters, Vec<u8>, Vec<u8>),
    /// CKM_RSA_PKCS over raw input (modulus, exponent), checked by
    /// hsm-core's public-key function.
    RsaRaw(Vec<u8>, Vec<u8>),
    /// CKM_SHA*_RSA_PKCS with a key under 2048 bits (RSA-1024, which ring
    /// verifies for some hashes only): the message hashed here, framed as
    /// a DigestInfo and checked as [`PublicVerifier::RsaRaw`].
    RsaHashed {
        /// The digest length naming the hash.
        hash_len: usize,
        /// The DER DigestInfo prefix.
        info: &'static [u8],
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
    /// ML-DSA or HashML-DSA (framed input, see [`crate::pq_ops`]) with a
    /// raw public key, checked by hsm-core's public-key function.
    MlDsa {
        /// The parameter set.
        spec: KeySpec,
        /// The raw public key.
        key: Vec<u8>,
        /// The variant.
        how: crate::backend::RawSign,
    },
    /// CKM_EDDSA with CK_EDDSA_PARAMS{phFlag false, context}: Ed25519ctx
    /// (public key, context of 1 to 255 bytes), checked by hsm-core.
    Ed25519ctx(Vec<u8>, Vec<u8>),
}

impl PublicVerifier {
    /// The verifier for `mechanism` on an imported key; CKM_RSA_PKCS takes
    /// raw input (up to k-11 bytes, 1024 to 8192-bit keys), the other
    /// mechanisms that take a prepared digest (CKM_ECDSA,
    /// CKM_RSA_PKCS_PSS) need a key pair of this module and are
    /// CKR_MECHANISM_INVALID here.
    pub fn new(
        mechanism: CK_MECHANISM_TYPE,
        a: &Attributes,
        pss_salt: Option<usize>,
    ) -> Result<Self> {
        use ring::signature as s;
        let invalid = || ckr!(CKR_MECHANISM_INVALID, "not with an imported public key");
        let params = a.get(&CKA_EC_PARAMS).map(Vec::as_slice);
        Ok(match mechanism {
            CKM_ECDSA_SHA256 if params == Some(P256_OID) => {
                PublicVerifier::Point(&s::ECDSA_P256_SHA256_FIXED, ec_point_bytes(a)?)
            }
            CKM_ECDSA_SHA384 if params == Some(P384_OID) => {
                PublicVerifier::Point(&s::ECDSA_P384_SHA384_FIXED, ec_point_bytes(a)?)
            }
            CKM_ECDSA_SHA512 if params == Some(P521_OID) => {
                PublicVerifier::P521(ec_point_bytes(a)?)
            }
            CKM_EDDSA if params.is_some_and(|p| p == ED25519_OID || p == ED25519_NAME) => {
                PublicVerifier::Point(&s::ED25519, ec_point_bytes(a)?)
            }
            CKM_RSA_PKCS if a.contains_key(&CKA_MODULUS) && pss_salt.is_none() => {
                let n = strip_zero(a.get(&CKA_MODULUS).ok_or_else(invalid)?).to_vec();
                let e = strip_zero(a.get(&CKA_PUBLIC_EXPONENT).ok_or_else(invalid)?).to_vec();
                PublicVerifier::RsaRaw(n, e)
            }
            m if a.contains_key(&CKA_MODULUS)
                && pss_salt.is_none()
                && strip_zero(a.get(&CKA_MODULUS).ok_or_else(invalid)?).len() < 256 =>
            {
                let hash = match m {
                    CKM_SHA1_RSA_PKCS => CKM_SHA_1,
                    CKM_SHA224_RSA_PKCS => CKM_SHA224,
                    CKM_SHA256_RSA_PKCS => CKM_SHA256,
                    CKM_SHA384_RSA_PKCS => CKM_SHA384,
                    CKM_SHA512_RSA_PKCS => CKM_SHA512,
                    _ => return Err(invalid()),
                };
                let (hash_len, info) = crate::sign_ops::sha(hash)?;
                let n = strip_zero(a.get(&CKA_MODULUS).ok_or_else(invalid)?).to_vec();
                let e = strip_zero(a.get(&CKA_PUBLIC_EXPONENT).ok_or_else(invalid)?).to_vec();
                PublicVerifier::RsaHashed {
                    hash_len,
                    info,
                    n,
                    e,
                }
            }
            m if a.contains_key(&CKA_MODULUS) => {
                let parameters: &'static s::RsaParameters = match (m, pss_salt) {
                    (CKM_SHA256_RSA_PKCS, None) => &s::RSA_PKCS1_2048_8192_SHA256,
                    (CKM_SHA384_RSA_PKCS, None) => &s::RSA_PKCS1_2048_8192_SHA384,
                    (CKM_SHA512_RSA_PKCS, None) => &s::RSA_PKCS1_2048_8192_SHA512,
                    (CKM_SHA256_RSA_PKCS_PSS, Some(32)) => &s::RSA_PSS_2048_8192_SHA256,
                    (CKM_SHA384_RSA_PKCS_PSS, Some(48)) => &s::RSA_PSS_2048_8192_SHA384,
                    (CKM_SHA512_RSA_PKCS_PSS, Some(64)) => &s::RSA_PSS_2048_8192_SHA512,
                    _ => return Err(invalid()),
                };
                let n = strip_zero(a.get(&CKA_MODULUS).ok_or_else(invalid)?).to_vec();
                let e = strip_zero(a.get(&CKA_PUBLIC_EXPONENT).ok_or_else(invalid)?).to_vec();
                // PSS with an imported RSA-1024 key: ring takes 2048 bits up.
                if n.len() < 256 {
                    return Err(invalid());
                }
                PublicVerifier::Rsa(parameters, n, e)
            }
            _ => return Err(invalid()),
        })
    }

    /// This CKM_EDDSA (Ed25519) verifier under CK_EDDSA_PARAMS{phFlag false,
    /// `context`}: itself for an empty context (pure Ed25519), else
    /// Ed25519ctx.
    pub fn with_ed25519_context(self, context: &[u8]) -> Result<Self> {
        match self {
            verifier if context.is_empty() => Ok(verifier),
            // CKM_EDDSA's verifier is always an Ed25519 point.
            PublicVerifier::Point(_, key) => Ok(PublicVerifier::Ed25519ctx(key, context.to_vec())),
            _ => Err(ckr!(CKR_MECHANISM_PARAM_INVALID)),
        }
    }

    /// Whether `signature` is valid for `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            PublicVerifier::MlDsa { spec, key, how } => {
                hsm_core::mechanisms::ml_dsa_verify_public(*spec, key, *how, message, signature)
                    .unwrap_or(false)
            }
            PublicVerifier::Ed25519ctx(key, context) => {
                hsm_core::ed25519ctx::verify_public(key, context, message, signature)
                    .unwrap_or(false)
            }
            PublicVerifier::Point(alg, key) => ring::signature::UnparsedPublicKey::new(*alg, key)
                .verify(message, signature)
                .is_ok(),
            PublicVerifier::P521(key) => aws_lc_rs::signature::UnparsedPublicKey::new(
                &aws_lc_rs::signature::ECDSA_P521_SHA512_FIXED,
                key,
            )
            .verify(message, signature)
            .is_ok(),
            PublicVerifier::Rsa(parameters, n, e) => {
                ring::signature::RsaPublicKeyComponents { n, e }
                    .verify(parameters, message, signature)
                    .is_ok()
            }
            // Input too long or a key out of range: it does not verify.
            PublicVerifier::RsaRaw(n, e) => {
                hsm_core::mechanisms::rsa_pkcs1_verify_public(n, e, message, signature)
                    .unwrap_or(false)
            }
            PublicVerifier::RsaHashed {
                hash_len,
                info,
                n,
                e,
            } => {
                let Ok(digest) = hsm_core::mechanisms::digest(*hash_len, message) else {
                    return false;
                };
                let input = [*info, &digest[..]].concat();
                hsm_core::mechanisms::rsa_pkcs1_verify_public(n, e, &input, signature)
                    .unwrap_or(false)
            }
        }
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
