//! Attribute values: encoding of CK_ULONG and CK_BBOOL, templates, and the
//! rules on which attributes an object class accepts.

use cryptoki_sys::*;

use super::error::{ckr, Result};
use super::Attributes;

/// Longest single attribute value accepted, in bytes.
pub const MAX_ATTR_LEN: usize = 64 * 1024;
/// Most attributes accepted in one template.
pub const MAX_TEMPLATE_LEN: usize = 256;

/// A template as the application passed it: (type, value) in order.
pub type Template = Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>;

/// Encodes a CK_ULONG value.
pub fn ulong(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// Encodes a CK_BBOOL value.
pub fn bbool(v: bool) -> Vec<u8> {
    vec![if v { CK_TRUE } else { CK_FALSE }]
}

/// Decodes a CK_ULONG value; a wrong size is CKR_ATTRIBUTE_VALUE_INVALID.
pub fn as_ulong(raw: &[u8]) -> Result<CK_ULONG> {
    let bytes: [u8; std::mem::size_of::<CK_ULONG>()] = raw.try_into().map_err(|_| {
        ckr!(
            CKR_ATTRIBUTE_VALUE_INVALID,
            "CK_ULONG attribute of wrong size"
        )
    })?;
    Ok(CK_ULONG::from_ne_bytes(bytes))
}

/// Decodes a CK_BBOOL value; a wrong size is CKR_ATTRIBUTE_VALUE_INVALID.
pub fn as_bool(raw: &[u8]) -> Result<bool> {
    match raw {
        [b] => Ok(*b != CK_FALSE),
        _ => Err(ckr!(
            CKR_ATTRIBUTE_VALUE_INVALID,
            "CK_BBOOL attribute of wrong size"
        )),
    }
}

/// Reads a CK_ULONG attribute of stored attributes.
pub fn get_ulong(attrs: &Attributes, t: CK_ATTRIBUTE_TYPE) -> Option<CK_ULONG> {
    attrs.get(&t).and_then(|v| as_ulong(v).ok())
}

/// Reads a CK_BBOOL attribute, with a default when absent.
pub fn get_bool(attrs: &Attributes, t: CK_ATTRIBUTE_TYPE, default: bool) -> bool {
    attrs
        .get(&t)
        .and_then(|v| as_bool(v).ok())
        .unwrap_or(default)
}

/// Whether an attribute type holds a CK_BBOOL.
pub fn is_bool_type(t: CK_ATTRIBUTE_TYPE) -> bool {
    matches!(
        t,
        CKA_TOKEN
            | CKA_PRIVATE
            | CKA_MODIFIABLE
            | CKA_COPYABLE
            | CKA_DESTROYABLE
            | CKA_SENSITIVE
            | CKA_EXTRACTABLE
            | CKA_ENCRYPT
            | CKA_DECRYPT
            | CKA_SIGN
            | CKA_VERIFY
            | CKA_WRAP
            | CKA_UNWRAP
            | CKA_DERIVE
            | CKA_LOCAL
            | CKA_ALWAYS_SENSITIVE
            | CKA_NEVER_EXTRACTABLE
            | CKA_TRUSTED
            | CKA_WRAP_WITH_TRUSTED
            | CKA_ALWAYS_AUTHENTICATE
            | CKA_SIGN_RECOVER
            | CKA_VERIFY_RECOVER
    )
}

/// Whether an attribute type holds a CK_ULONG.
pub fn is_ulong_type(t: CK_ATTRIBUTE_TYPE) -> bool {
    matches!(
        t,
        CKA_CLASS
            | CKA_KEY_TYPE
            | CKA_VALUE_LEN
            | CKA_MODULUS_BITS
            | CKA_CERTIFICATE_TYPE
            | CKA_KEY_GEN_MECHANISM
            | CKA_CERTIFICATE_CATEGORY
            | CKA_JAVA_MIDP_SECURITY_DOMAIN
            | CKA_NAME_HASH_ALGORITHM
    )
}

/// Checks a template's values against their types and for duplicates.
pub fn check_template(template: &Template) -> Result<()> {
    if template.len() > MAX_TEMPLATE_LEN {
        return Err(ckr!(CKR_TEMPLATE_INCONSISTENT, "template too long"));
    }
    for (i, (t, v)) in template.iter().enumerate() {
        if is_bool_type(*t) {
            as_bool(v)?;
        } else if is_ulong_type(*t) {
            as_ulong(v)?;
        }
        if template[..i].iter().any(|(u, w)| u == t && w != v) {
            return Err(ckr!(CKR_TEMPLATE_INCONSISTENT, "attribute given twice"));
        }
    }
    Ok(())
}

/// The attributes a data object (CKO_DATA) may carry.
const DATA_ATTRS: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_CLASS,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_LABEL,
    CKA_APPLICATION,
    CKA_OBJECT_ID,
    CKA_VALUE,
];

/// Attributes no application may set once an object exists.
pub fn read_only_after_create(t: CK_ATTRIBUTE_TYPE) -> bool {
    matches!(
        t,
        CKA_CLASS
            | CKA_KEY_TYPE
            | CKA_LOCAL
            | CKA_ALWAYS_SENSITIVE
            | CKA_NEVER_EXTRACTABLE
            | CKA_KEY_GEN_MECHANISM
            | CKA_UNIQUE_ID
            | CKA_VALUE_LEN
            | CKA_MODULUS
            | CKA_MODULUS_BITS
            | CKA_PUBLIC_EXPONENT
            | CKA_EC_PARAMS
            | CKA_EC_POINT
            | CKA_MODIFIABLE
            | CKA_COPYABLE
            | CKA_DESTROYABLE
    )
}

/// Builds the attributes of a new data object from a template, with the
/// spec's defaults. Unknown attributes are CKR_ATTRIBUTE_TYPE_INVALID.
pub fn new_data_object(template: &Template) -> Result<Attributes> {
    let mut attrs = Attributes::new();
    attrs.insert(CKA_TOKEN, bbool(false));
    attrs.insert(CKA_PRIVATE, bbool(true));
    attrs.insert(CKA_MODIFIABLE, bbool(true));
    attrs.insert(CKA_COPYABLE, bbool(true));
    attrs.insert(CKA_DESTROYABLE, bbool(true));
    attrs.insert(CKA_LABEL, Vec::new());
    attrs.insert(CKA_APPLICATION, Vec::new());
    attrs.insert(CKA_OBJECT_ID, Vec::new());
    attrs.insert(CKA_VALUE, Vec::new());
    for (t, v) in template {
        if !DATA_ATTRS.contains(t) {
            return Err(ckr!(
                CKR_ATTRIBUTE_TYPE_INVALID,
                "attribute not valid for a data object"
            ));
        }
        attrs.insert(*t, v.clone());
    }
    Ok(attrs)
}

/// Checks a CKA_ALLOWED_MECHANISMS value: an array of CK_MECHANISM_TYPE.
pub fn check_mechanism_list(v: &[u8]) -> Result<()> {
    if !v
        .len()
        .is_multiple_of(std::mem::size_of::<CK_MECHANISM_TYPE>())
    {
        return Err(ckr!(
            CKR_ATTRIBUTE_VALUE_INVALID,
            "CKA_ALLOWED_MECHANISMS is an array of CK_MECHANISM_TYPE"
        ));
    }
    Ok(())
}

/// Whether a key's CKA_ALLOWED_MECHANISMS (absent or empty: any) lets it
/// be used with `mechanism`.
pub fn mechanism_allowed(a: &Attributes, mechanism: CK_MECHANISM_TYPE) -> bool {
    match a.get(&CKA_ALLOWED_MECHANISMS) {
        None => true,
        Some(list) if list.is_empty() => true,
        Some(list) => list
            .chunks_exact(std::mem::size_of::<CK_MECHANISM_TYPE>())
            .any(|c| as_ulong(c).ok() == Some(mechanism)),
    }
}

/// Key attributes that describe key material (never set after creation).
pub fn key_value_part(t: CK_ATTRIBUTE_TYPE) -> bool {
    is_secret_part(t) || matches!(t, CKA_PUBLIC_KEY_INFO | CKA_CHECK_VALUE)
}

/// Fills in the attributes every object of its class has, where absent:
/// for keys CKA_START_DATE / CKA_END_DATE (empty), CKA_ALLOWED_MECHANISMS
/// (empty: any), CKA_DERIVE (false), CKA_LOCAL (false) and
/// CKA_KEY_GEN_MECHANISM (CK_UNAVAILABLE_INFORMATION).
pub fn fill_defaults(a: &mut Attributes) {
    let class = get_ulong(a, CKA_CLASS);
    if matches!(
        class,
        Some(CKO_SECRET_KEY | CKO_PRIVATE_KEY | CKO_PUBLIC_KEY)
    ) {
        for t in [CKA_START_DATE, CKA_END_DATE, CKA_ALLOWED_MECHANISMS] {
            a.entry(t).or_default();
        }
        a.entry(CKA_DERIVE).or_insert_with(|| bbool(false));
        a.entry(CKA_LOCAL).or_insert_with(|| bbool(false));
        a.entry(CKA_KEY_GEN_MECHANISM)
            .or_insert_with(|| ulong(CK_UNAVAILABLE_INFORMATION));
    }
}

/// Checks a CK_DATE value: empty, or eight ASCII digits YYYYMMDD.
pub fn check_date(v: &[u8]) -> Result<()> {
    let ok = v.is_empty()
        || (v.len() == 8 && v.iter().all(u8::is_ascii_digit) && {
            let month = (v[4] - b'0') * 10 + (v[5] - b'0');
            let day = (v[6] - b'0') * 10 + (v[7] - b'0');
            (1..=12).contains(&month) && (1..=31).contains(&day)
        });
    if ok {
        Ok(())
    } else {
        Err(ckr!(
            CKR_ATTRIBUTE_VALUE_INVALID,
            "a CK_DATE is empty or YYYYMMDD"
        ))
    }
}

/// Attribute types whose value is secret material.
pub fn is_secret_part(t: CK_ATTRIBUTE_TYPE) -> bool {
    matches!(
        t,
        CKA_VALUE
            | CKA_PRIVATE_EXPONENT
            | CKA_PRIME_1
            | CKA_PRIME_2
            | CKA_EXPONENT_1
            | CKA_EXPONENT_2
            | CKA_COEFFICIENT
    )
}

/// Encodes attributes for storage: per attribute, the type (u64 LE), the
/// length (u32 LE) and the value.
// CK_ULONG is u64 here but u32 on other targets: keep the conversion.
#[allow(clippy::useless_conversion)]
pub fn encode(attrs: &Attributes) -> Vec<u8> {
    let mut out = Vec::new();
    for (t, v) in attrs {
        out.extend_from_slice(&u64::from(*t).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

/// Decodes what [`encode`] wrote; anything malformed is a device error.
#[allow(clippy::useless_conversion)]
pub fn decode(mut raw: &[u8]) -> Result<Attributes> {
    let bad = || ckr!(CKR_DEVICE_ERROR, "stored attributes are malformed");
    let mut attrs = Attributes::new();
    while !raw.is_empty() {
        if raw.len() < 12 {
            return Err(bad());
        }
        let t = u64::from_le_bytes(raw[..8].try_into().map_err(|_| bad())?);
        let len = u32::from_le_bytes(raw[8..12].try_into().map_err(|_| bad())?) as usize;
        let value = raw.get(12..12 + len).ok_or_else(bad)?;
        let t = CK_ATTRIBUTE_TYPE::try_from(t).map_err(|_| bad())?;
        attrs.insert(t, value.to_vec());
        raw = &raw[12 + len..];
    }
    Ok(attrs)
}
