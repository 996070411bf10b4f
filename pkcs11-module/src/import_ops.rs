//! Private keys brought in: C_CreateObject of CKO_PRIVATE_KEY (RSA with its
//! CRT parts, EC on P-256/384/521, Ed25519, X25519) and C_UnwrapKey of a PKCS#8
//! PrivateKeyInfo (those types, and ML-DSA with its seed); C_WrapKey / C_UnwrapKey of secret keys under RSA key
//! pairs (CKM_RSA_PKCS, CKM_RSA_PKCS_OAEP).
//!
//! The template's parts are encoded here as a PKCS#8 PrivateKeyInfo in
//! `Zeroizing` buffers and handed to the backend, which checks, re-encodes
//! and seals them like generated material; the object keeps only the
//! public parts and the flags.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use crate::attrs::{self, as_bool, as_ulong, bbool, get_bool, get_ulong, ulong, Template};
use crate::backend::{Attributes, ImportedKey, KeyHandle, KeyTransport, PairUsages, PrivateKind};
use crate::error::{ckr, Result};
use crate::mechanisms::Mechanism;
use crate::module::Module;
use crate::objects::Object;
use crate::pubkey;

/// Attributes a private-key template (C_CreateObject, C_UnwrapKey) may
/// carry besides the key's parts.
const PRIVATE_ATTRS: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_CLASS,
    CKA_KEY_TYPE,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_LABEL,
    CKA_ID,
    CKA_SUBJECT,
    CKA_SENSITIVE,
    CKA_EXTRACTABLE,
    CKA_SIGN,
    CKA_SIGN_RECOVER,
    CKA_DECRYPT,
    CKA_UNWRAP,
    CKA_DERIVE,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_ALLOWED_MECHANISMS,
    CKA_ALWAYS_AUTHENTICATE,
    CKA_WRAP_WITH_TRUSTED,
    CKA_PUBLIC_KEY_INFO,
];

/// The key's parts, per type (CKA_MODULUS and CKA_PUBLIC_EXPONENT are
/// public, the rest secret).
const RSA_PARTS: [CK_ATTRIBUTE_TYPE; 8] = [
    CKA_MODULUS,
    CKA_PUBLIC_EXPONENT,
    CKA_PRIVATE_EXPONENT,
    CKA_PRIME_1,
    CKA_PRIME_2,
    CKA_EXPONENT_1,
    CKA_EXPONENT_2,
    CKA_COEFFICIENT,
];

/// DER rsaEncryption AlgorithmIdentifier (OID 1.2.840.113549.1.1.1, NULL).
const RSA_ALGORITHM: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];
/// DER id-ecPublicKey OID (1.2.840.10045.2.1).
const EC_PUBLIC_KEY_OID: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// One DER element (definite length, any size).
fn tlv(tag: u8, body: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(body.len() + 6));
    out.push(tag);
    let len = body.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(body);
    out
}

/// A DER INTEGER of an unsigned big-endian magnitude.
fn der_uint(magnitude: &[u8]) -> Zeroizing<Vec<u8>> {
    let trimmed: &[u8] = match magnitude.iter().position(|b| *b != 0) {
        Some(i) => &magnitude[i..],
        None => &[0],
    };
    let mut body = Zeroizing::new(Vec::with_capacity(trimmed.len() + 1));
    if trimmed[0] & 0x80 != 0 {
        body.push(0);
    }
    body.extend_from_slice(trimmed);
    tlv(0x02, &body)
}

/// A PrivateKeyInfo (version 0) of an algorithm and its private key.
fn private_key_info(algorithm: &[u8], private_key: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut body = Zeroizing::new(vec![0x02, 0x01, 0x00]);
    body.extend_from_slice(algorithm);
    body.extend_from_slice(&tlv(0x04, private_key));
    tlv(0x30, &body)
}

/// The PKCS#8 of a key's parts given in a template.
fn pkcs8_of(kind: PrivateKind, template: &Template) -> Result<Zeroizing<Vec<u8>>> {
    let part = |t: CK_ATTRIBUTE_TYPE| {
        template
            .iter()
            .find(|(u, _)| *u == t)
            .map(|(_, v)| v.as_slice())
            .filter(|v| !v.is_empty())
            .ok_or(ckr!(
                CKR_TEMPLATE_INCOMPLETE,
                "a part of the private key is missing"
            ))
    };
    match kind {
        PrivateKind::Rsa => {
            // RSAPrivateKey (RFC 8017 A.1.2), version 0, all CRT parts.
            let mut body = Zeroizing::new(vec![0x02, 0x01, 0x00]);
            for t in RSA_PARTS {
                body.extend_from_slice(&der_uint(part(t)?));
            }
            Ok(private_key_info(RSA_ALGORITHM, &tlv(0x30, &body)))
        }
        PrivateKind::Ec => {
            let params = part(CKA_EC_PARAMS)?;
            let field = match pubkey::ec_spec(params, false)? {
                hsm_core::KeySpec::EccNistP256 => 32,
                hsm_core::KeySpec::EccNistP384 => 48,
                _ => 66,
            };
            let d = part(CKA_VALUE)?;
            let d = match d.iter().position(|b| *b != 0) {
                Some(i) => &d[i..],
                None => &[][..],
            };
            if d.is_empty() || d.len() > field {
                return Err(ckr!(CKR_ATTRIBUTE_VALUE_INVALID, "bad EC private value"));
            }
            // ECPrivateKey (RFC 5915), the scalar at the field's length.
            let mut scalar = Zeroizing::new(vec![0u8; field - d.len()]);
            scalar.extend_from_slice(d);
            let mut ec = Zeroizing::new(vec![0x02, 0x01, 0x01]);
            ec.extend_from_slice(&tlv(0x04, &scalar));
            let mut algorithm = EC_PUBLIC_KEY_OID.to_vec();
            algorithm.extend_from_slice(params);
            Ok(private_key_info(&tlv(0x30, &algorithm), &tlv(0x30, &ec)))
        }
        PrivateKind::Ed25519 => {
            pubkey::ec_spec(part(CKA_EC_PARAMS)?, true)?;
            let seed = part(CKA_VALUE)?;
            if seed.len() != 32 {
                return Err(ckr!(
                    CKR_ATTRIBUTE_VALUE_INVALID,
                    "an Ed25519 private key is 32 bytes"
                ));
            }
            // RFC 8410: the CurvePrivateKey is an OCTET STRING of the seed.
            Ok(private_key_info(
                &tlv(0x30, pubkey::ED25519_OID),
                &tlv(0x04, seed),
            ))
        }
        PrivateKind::X25519 => {
            pubkey::montgomery_spec(part(CKA_EC_PARAMS)?)?;
            let private = part(CKA_VALUE)?;
            if private.len() != 32 {
                return Err(ckr!(
                    CKR_ATTRIBUTE_VALUE_INVALID,
                    "an X25519 private key is 32 bytes"
                ));
            }
            Ok(private_key_info(
                &tlv(0x30, pubkey::X25519_OID),
                &tlv(0x04, private),
            ))
        }
        PrivateKind::MlDsa44 | PrivateKind::MlDsa65 | PrivateKind::MlDsa87 => Err(ckr!(
            CKR_TEMPLATE_INCONSISTENT,
            "ML-DSA private keys are brought in by C_UnwrapKey"
        )),
    }
}

/// The kind a CKA_KEY_TYPE names (with, for CKK_ML_DSA, the template's
/// CKA_PARAMETER_SET, which is required: the wrapped key must be of it).
fn kind_of(key_type: CK_KEY_TYPE, template: &Template) -> Result<PrivateKind> {
    match key_type {
        CKK_ML_DSA => {
            let set = find(template, CKA_PARAMETER_SET)
                .ok_or(ckr!(
                    CKR_TEMPLATE_INCOMPLETE,
                    "CKA_PARAMETER_SET is required"
                ))
                .and_then(as_ulong)?;
            Ok(match crate::pq_ops::spec_of(CKK_ML_DSA, set)? {
                hsm_core::KeySpec::MlDsa44 => PrivateKind::MlDsa44,
                hsm_core::KeySpec::MlDsa65 => PrivateKind::MlDsa65,
                _ => PrivateKind::MlDsa87,
            })
        }
        CKK_RSA => Ok(PrivateKind::Rsa),
        CKK_EC => Ok(PrivateKind::Ec),
        CKK_EC_EDWARDS => Ok(PrivateKind::Ed25519),
        CKK_EC_MONTGOMERY => Ok(PrivateKind::X25519),
        _ => Err(ckr!(
            CKR_ATTRIBUTE_VALUE_INVALID,
            "RSA, EC, EdDSA, X25519 or ML-DSA private keys only"
        )),
    }
}

fn find(template: &Template, t: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
    template
        .iter()
        .find(|(u, _)| *u == t)
        .map(|(_, v)| v.as_slice())
}

fn flag(template: &Template, t: CK_ATTRIBUTE_TYPE) -> Result<Option<bool>> {
    find(template, t).map(as_bool).transpose()
}

/// The usage flags of an imported private key: as the template says; a
/// template that names none gets what the type allows of SoftHSM's
/// defaults (RSA signs, decrypts and unwraps; EC and EdDSA sign). A usage
/// the type cannot have is CKR_TEMPLATE_INCONSISTENT.
fn private_flags(kind: PrivateKind, template: &Template) -> Result<(bool, bool, bool, bool)> {
    let (sign, decrypt, unwrap, derive) = (
        flag(template, CKA_SIGN)?,
        flag(template, CKA_DECRYPT)?,
        flag(template, CKA_UNWRAP)?,
        flag(template, CKA_DERIVE)?,
    );
    if flag(template, CKA_SIGN_RECOVER)? == Some(true) {
        return Err(ckr!(
            CKR_TEMPLATE_INCONSISTENT,
            "signature recovery is not offered"
        ));
    }
    let rsa = kind == PrivateKind::Rsa;
    let x25519 = kind == PrivateKind::X25519;
    if is_ml_dsa(kind) && flag(template, CKA_SENSITIVE)? == Some(false) {
        return Err(ckr!(
            CKR_TEMPLATE_INCONSISTENT,
            "ML-DSA private keys stay sensitive"
        ));
    }
    let named = sign.is_some() || decrypt.is_some() || unwrap.is_some() || derive.is_some();
    let flags = if named {
        (
            sign.unwrap_or(false),
            decrypt.unwrap_or(false),
            unwrap.unwrap_or(false),
            derive.unwrap_or(false),
        )
    } else {
        (!x25519, rsa, rsa, x25519)
    };
    if x25519 && flags.0 {
        return Err(ckr!(
            CKR_TEMPLATE_INCONSISTENT,
            "X25519 keys agree keys only"
        ));
    }
    if !rsa && (flags.1 || flags.2) {
        return Err(ckr!(
            CKR_TEMPLATE_INCONSISTENT,
            "only RSA keys decrypt or unwrap"
        ));
    }
    if !matches!(kind, PrivateKind::Ec | PrivateKind::X25519) && flags.3 {
        return Err(ckr!(
            CKR_TEMPLATE_INCONSISTENT,
            "only EC (NIST curve) and X25519 keys derive"
        ));
    }
    Ok(flags)
}

/// The object of an imported or unwrapped private key.
fn private_object(
    kind: PrivateKind,
    template: &Template,
    made: &ImportedKey,
    flags: (bool, bool, bool, bool),
) -> Result<Attributes> {
    let key_type = match kind {
        PrivateKind::Rsa => CKK_RSA,
        PrivateKind::Ec => CKK_EC,
        PrivateKind::Ed25519 => CKK_EC_EDWARDS,
        PrivateKind::X25519 => CKK_EC_MONTGOMERY,
        PrivateKind::MlDsa44 | PrivateKind::MlDsa65 | PrivateKind::MlDsa87 => CKK_ML_DSA,
    };
    let mut a = Attributes::new();
    a.insert(CKA_CLASS, ulong(CKO_PRIVATE_KEY));
    a.insert(CKA_KEY_TYPE, ulong(key_type));
    a.insert(CKA_TOKEN, bbool(false));
    a.insert(CKA_PRIVATE, bbool(true));
    a.insert(CKA_LABEL, Vec::new());
    a.insert(CKA_ID, Vec::new());
    a.insert(CKA_SUBJECT, Vec::new());
    for t in [CKA_MODIFIABLE, CKA_COPYABLE, CKA_DESTROYABLE] {
        a.insert(t, bbool(true));
    }
    // Made outside the token: never "always sensitive" nor "never
    // extractable" (PKCS#11 3.0 section 4.9).
    let (extractable, sensitive) = export_flags(template)?;
    a.insert(CKA_SENSITIVE, bbool(sensitive));
    a.insert(CKA_EXTRACTABLE, bbool(extractable));
    for t in [
        CKA_LOCAL,
        CKA_ALWAYS_SENSITIVE,
        CKA_NEVER_EXTRACTABLE,
        CKA_SIGN_RECOVER,
        CKA_ALWAYS_AUTHENTICATE,
        CKA_WRAP_WITH_TRUSTED,
    ] {
        a.insert(t, bbool(false));
    }
    a.insert(CKA_SIGN, bbool(flags.0));
    a.insert(CKA_DECRYPT, bbool(flags.1));
    a.insert(CKA_UNWRAP, bbool(flags.2));
    a.insert(CKA_DERIVE, bbool(flags.3));
    a.insert(CKA_PUBLIC_KEY_INFO, made.spki.clone());
    for (t, v) in pubkey::public_attrs(made.spec, &made.spki)? {
        if t != CKA_EC_POINT {
            a.insert(t, v);
        }
    }
    // The template named a curve in its older form: keep the caller's.
    if matches!(kind, PrivateKind::Ed25519 | PrivateKind::X25519) {
        if let Some(p) = find(template, CKA_EC_PARAMS) {
            a.insert(CKA_EC_PARAMS, p.to_vec());
        }
    }
    // CKA_PARAMETER_SET; no CKA_VALUE (the public key) on the private half.
    crate::pq_ops::finish_pair_attrs(
        made.spec,
        &Vec::new(),
        template,
        &mut Attributes::new(),
        &mut a,
    )?;
    for (t, v) in template {
        match *t {
            CKA_LABEL
            | CKA_ID
            | CKA_SUBJECT
            | CKA_PRIVATE
            | CKA_MODIFIABLE
            | CKA_COPYABLE
            | CKA_DESTROYABLE
            | CKA_TOKEN
            | CKA_WRAP_WITH_TRUSTED => {
                if attrs::is_bool_type(*t) {
                    as_bool(v)?;
                }
                a.insert(*t, v.clone());
            }
            CKA_START_DATE | CKA_END_DATE => {
                attrs::check_date(v)?;
                a.insert(*t, v.clone());
            }
            CKA_ALLOWED_MECHANISMS => {
                attrs::check_mechanism_list(v)?;
                a.insert(*t, v.clone());
            }
            _ => {}
        }
    }
    Ok(a)
}

/// A private-key template's CKA_EXTRACTABLE (default false) and
/// CKA_SENSITIVE (default true).
pub(crate) fn export_flags(template: &Template) -> Result<(bool, bool)> {
    Ok((
        flag(template, CKA_EXTRACTABLE)?.unwrap_or(false),
        flag(template, CKA_SENSITIVE)?.unwrap_or(true),
    ))
}

/// Checks a private-key template's attribute types and the flag this
/// token keeps fixed at import (no per-use login).
fn check_private_template(template: &Template, parts: &[CK_ATTRIBUTE_TYPE]) -> Result<()> {
    for (t, v) in template {
        if !(PRIVATE_ATTRS.contains(t) || parts.contains(t)) {
            return Err(ckr!(CKR_ATTRIBUTE_TYPE_INVALID));
        }
        let fixed = match *t {
            CKA_SENSITIVE | CKA_EXTRACTABLE | CKA_WRAP_WITH_TRUSTED => {
                as_bool(v)?;
                None
            }
            CKA_ALWAYS_AUTHENTICATE => Some(false),
            _ => None,
        };
        if fixed.is_some_and(|f| as_bool(v).map(|b| b != f).unwrap_or(true)) {
            return Err(ckr!(
                CKR_TEMPLATE_INCONSISTENT,
                "imported private keys have no per-use login"
            ));
        }
    }
    Ok(())
}

/// The parts a key type's template may carry.
fn parts_of(kind: PrivateKind) -> &'static [CK_ATTRIBUTE_TYPE] {
    match kind {
        PrivateKind::Rsa => &RSA_PARTS,
        PrivateKind::Ec | PrivateKind::Ed25519 | PrivateKind::X25519 => &[CKA_EC_PARAMS, CKA_VALUE],
        PrivateKind::MlDsa44 | PrivateKind::MlDsa65 | PrivateKind::MlDsa87 => &[CKA_PARAMETER_SET],
    }
}

fn is_ml_dsa(kind: PrivateKind) -> bool {
    matches!(
        kind,
        PrivateKind::MlDsa44 | PrivateKind::MlDsa65 | PrivateKind::MlDsa87
    )
}

fn usages_of(flags: (bool, bool, bool, bool), template: &Template) -> Result<PairUsages> {
    let (sign, decrypt, unwrap, derive) = flags;
    let (extractable, sensitive) = export_flags(template)?;
    Ok(PairUsages {
        sign: sign || !(decrypt || unwrap || derive),
        decrypt: decrypt || unwrap,
        derive,
        extractable,
        readable: !sensitive,
    })
}

/// The key transport a wrapping mechanism names: AES key wrap, or RSA
/// (PKCS#1 v1.5 or OAEP with its parameters).
pub(crate) fn transport(m: &Mechanism) -> Result<KeyTransport> {
    match m.mechanism {
        CKM_RSA_PKCS => {
            if !m.param.is_empty() {
                return Err(ckr!(
                    CKR_MECHANISM_PARAM_INVALID,
                    "CKM_RSA_PKCS takes no parameter"
                ));
            }
            Ok(KeyTransport::RsaPkcs1)
        }
        CKM_RSA_PKCS_OAEP => Ok(KeyTransport::RsaOaep {
            sha256: crate::key_ops::oaep_params(m)?,
            label: m.oaep_label.clone(),
        }),
        _ => Ok(KeyTransport::Aes(crate::mechanisms::wrap_mode(m)?)),
    }
}

/// Checks that `object` is an RSA key that may `usage` (CKA_WRAP on a
/// public or private key, CKA_UNWRAP on a private key); returns its handle
/// and modulus length.
pub(crate) fn usable_rsa_transport_key(
    object: &Object,
    usage: CK_ATTRIBUTE_TYPE,
) -> Result<(KeyHandle, usize)> {
    let class_ok = object.class() == CKO_PRIVATE_KEY
        || (usage == CKA_WRAP && object.class() == CKO_PUBLIC_KEY);
    let inconsistent = if usage == CKA_WRAP {
        CKR_WRAPPING_KEY_TYPE_INCONSISTENT
    } else {
        CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT
    };
    let inconsistent = crate::error::Pkcs11Error::rv_with(inconsistent, "an RSA key is needed");
    let key = object.key.clone().ok_or(inconsistent.clone())?;
    if !class_ok || get_ulong(&object.attrs, CKA_KEY_TYPE) != Some(CKK_RSA) {
        return Err(inconsistent);
    }
    if !get_bool(&object.attrs, usage, false) {
        return Err(ckr!(CKR_KEY_FUNCTION_NOT_PERMITTED));
    }
    Ok((key, pubkey::signature_len(&object.attrs)?))
}

impl Module {
    /// C_CreateObject of a private key: its parts are encoded as PKCS#8
    /// and sealed by the backend (a token key, or a session key pair).
    pub fn import_private_key(
        &self,
        h: CK_SESSION_HANDLE,
        template: &Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        let key_type = find(template, CKA_KEY_TYPE)
            .ok_or(ckr!(CKR_TEMPLATE_INCOMPLETE, "CKA_KEY_TYPE is required"))
            .and_then(as_ulong)?;
        let kind = kind_of(key_type, template)?;
        check_private_template(template, parts_of(kind))?;
        let flags = private_flags(kind, template)?;
        let (serial, rw, who) = self.session_view(h)?;
        let on_token = flag(template, CKA_TOKEN)?.unwrap_or(false);
        self.may_write(
            rw,
            who,
            on_token,
            flag(template, CKA_PRIVATE)?.unwrap_or(true),
        )?;
        let pkcs8 = pkcs8_of(kind, template)?;
        let label = if on_token {
            Some(self.token_record(&serial)?.label)
        } else {
            None
        };
        let made = self.backend.import_private_key(
            label.as_deref(),
            kind,
            &pkcs8,
            usages_of(flags, template)?,
        )?;
        drop(pkcs8);
        self.add_private(h, &serial, kind, template, made, flags)
    }

    fn add_private(
        &self,
        h: CK_SESSION_HANDLE,
        serial: &str,
        kind: PrivateKind,
        template: &Template,
        made: ImportedKey,
        flags: (bool, bool, bool, bool),
    ) -> Result<CK_OBJECT_HANDLE> {
        let result = private_object(kind, template, &made, flags)
            .and_then(|a| self.add_object(h, serial, a, Some(made.key.clone())));
        if result.is_err() {
            let _ = self.backend.destroy_key(&made.key);
        }
        result
    }

    /// C_UnwrapKey of a private key: `wrapped` is a PKCS#8 PrivateKeyInfo
    /// of the template's CKA_KEY_TYPE.
    pub(crate) fn unwrap_private_key(
        &self,
        h: CK_SESSION_HANDLE,
        unwrapping: &KeyHandle,
        transport: &KeyTransport,
        wrapped: &[u8],
        template: &Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        let key_type = find(template, CKA_KEY_TYPE)
            .ok_or(ckr!(CKR_TEMPLATE_INCOMPLETE, "CKA_KEY_TYPE is required"))
            .and_then(as_ulong)?;
        let kind = kind_of(key_type, template)?;
        let parts: &[CK_ATTRIBUTE_TYPE] = if is_ml_dsa(kind) {
            &[CKA_PARAMETER_SET]
        } else {
            &[]
        };
        check_private_template(template, parts)?;
        let flags = private_flags(kind, template)?;
        let (serial, rw, who) = self.session_view(h)?;
        let on_token = flag(template, CKA_TOKEN)?.unwrap_or(false);
        self.may_write(
            rw,
            who,
            on_token,
            flag(template, CKA_PRIVATE)?.unwrap_or(true),
        )?;
        let label = if on_token {
            Some(self.token_record(&serial)?.label)
        } else {
            None
        };
        let made = self.backend.unwrap_private_key(
            unwrapping,
            transport,
            wrapped,
            label.as_deref(),
            kind,
            usages_of(flags, template)?,
        )?;
        self.add_private(h, &serial, kind, template, made, flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_integers_are_minimal_and_unsigned() {
        assert_eq!(&der_uint(&[0, 0, 5])[..], &[2, 1, 5]);
        assert_eq!(&der_uint(&[0x80])[..], &[2, 2, 0, 0x80]);
        assert_eq!(&der_uint(&[])[..], &[2, 1, 0]);
        let long = tlv(0x04, &[7u8; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }
}
