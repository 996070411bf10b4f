//! Certificate objects (CKO_CERTIFICATE of type CKC_X_509): their
//! attributes with the specification's defaults, and CKA_SUBJECT,
//! CKA_ISSUER, CKA_SERIAL_NUMBER and CKA_PUBLIC_KEY_INFO read from the DER
//! certificate (the `x509-cert` crate): filled in when the template leaves
//! them out, checked against it when given. Only public data passes here.

use cryptoki_sys::*;
use x509_cert::der::{Decode, Encode};

use crate::attrs::{as_bool, bbool, ulong, Template};
use crate::backend::Attributes;
use crate::error::{ckr, Result};

/// The attributes an X.509 certificate object may carry.
const CERT_ATTRS: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_CLASS,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_LABEL,
    CKA_UNIQUE_ID,
    CKA_CERTIFICATE_TYPE,
    CKA_TRUSTED,
    CKA_CERTIFICATE_CATEGORY,
    CKA_CHECK_VALUE,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_PUBLIC_KEY_INFO,
    CKA_SUBJECT,
    CKA_ID,
    CKA_ISSUER,
    CKA_SERIAL_NUMBER,
    CKA_VALUE,
    CKA_URL,
    CKA_HASH_OF_SUBJECT_PUBLIC_KEY,
    CKA_HASH_OF_ISSUER_PUBLIC_KEY,
    CKA_JAVA_MIDP_SECURITY_DOMAIN,
    CKA_NAME_HASH_ALGORITHM,
];

/// Attributes of a certificate no one may change once it exists: those
/// that come from (or must agree with) the DER value.
pub fn read_only(t: CK_ATTRIBUTE_TYPE) -> bool {
    matches!(
        t,
        CKA_CERTIFICATE_TYPE
            | CKA_VALUE
            | CKA_CHECK_VALUE
            | CKA_PUBLIC_KEY_INFO
            | CKA_SUBJECT
            | CKA_ISSUER
            | CKA_SERIAL_NUMBER
            | CKA_URL
    )
}

/// What the DER certificate says.
struct Parsed {
    subject: Vec<u8>,
    issuer: Vec<u8>,
    serial: Vec<u8>,
    spki: Vec<u8>,
}

fn parse(der: &[u8]) -> Result<Parsed> {
    let invalid = || {
        ckr!(
            CKR_ATTRIBUTE_VALUE_INVALID,
            "CKA_VALUE is not a DER X.509 certificate"
        )
    };
    let cert = x509_cert::Certificate::from_der(der).map_err(|_| invalid())?;
    let tbs = &cert.tbs_certificate;
    Ok(Parsed {
        subject: tbs.subject.to_der().map_err(|_| invalid())?,
        issuer: tbs.issuer.to_der().map_err(|_| invalid())?,
        serial: tbs.serial_number.to_der().map_err(|_| invalid())?,
        spki: tbs
            .subject_public_key_info
            .to_der()
            .map_err(|_| invalid())?,
    })
}

/// CKA_CHECK_VALUE of a certificate: the first three bytes of the SHA-1
/// of its value.
fn check_value(der: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref()[..3].to_vec()
}

/// Builds the attributes of a new X.509 certificate object from a
/// C_CreateObject template. `so` says whether the security officer is
/// logged in (only the SO may make a trusted certificate).
pub fn new_certificate(template: &Template, so: bool) -> Result<Attributes> {
    let get = |t: CK_ATTRIBUTE_TYPE| template.iter().find(|(u, _)| *u == t).map(|(_, v)| v);
    match get(CKA_CERTIFICATE_TYPE) {
        None => {
            return Err(ckr!(
                CKR_TEMPLATE_INCOMPLETE,
                "CKA_CERTIFICATE_TYPE is required"
            ))
        }
        Some(v) if crate::attrs::as_ulong(v)? != CKC_X_509 => {
            return Err(ckr!(
                CKR_ATTRIBUTE_VALUE_INVALID,
                "only X.509 certificates (CKC_X_509)"
            ))
        }
        Some(_) => {}
    }
    let value = get(CKA_VALUE).ok_or(ckr!(CKR_TEMPLATE_INCOMPLETE, "CKA_VALUE is required"))?;
    let parsed = parse(value)?;
    let mut a = Attributes::new();
    a.insert(CKA_CLASS, ulong(CKO_CERTIFICATE));
    a.insert(CKA_TOKEN, bbool(false));
    // Certificates are public unless the template says otherwise.
    a.insert(CKA_PRIVATE, bbool(false));
    for t in [CKA_MODIFIABLE, CKA_COPYABLE, CKA_DESTROYABLE] {
        a.insert(t, bbool(true));
    }
    a.insert(CKA_CERTIFICATE_TYPE, ulong(CKC_X_509));
    a.insert(CKA_TRUSTED, bbool(false));
    a.insert(CKA_CERTIFICATE_CATEGORY, ulong(0));
    a.insert(CKA_JAVA_MIDP_SECURITY_DOMAIN, ulong(0));
    a.insert(CKA_NAME_HASH_ALGORITHM, ulong(CKM_SHA_1));
    for t in [
        CKA_LABEL,
        CKA_ID,
        CKA_START_DATE,
        CKA_END_DATE,
        CKA_URL,
        CKA_HASH_OF_SUBJECT_PUBLIC_KEY,
        CKA_HASH_OF_ISSUER_PUBLIC_KEY,
    ] {
        a.insert(t, Vec::new());
    }
    a.insert(CKA_CHECK_VALUE, check_value(value));
    a.insert(CKA_SUBJECT, parsed.subject);
    a.insert(CKA_ISSUER, parsed.issuer);
    a.insert(CKA_SERIAL_NUMBER, parsed.serial);
    a.insert(CKA_PUBLIC_KEY_INFO, parsed.spki);
    a.insert(CKA_VALUE, value.clone());
    for (t, v) in template {
        if !CERT_ATTRS.contains(t) {
            return Err(ckr!(
                CKR_ATTRIBUTE_TYPE_INVALID,
                "attribute not valid for a certificate"
            ));
        }
        match *t {
            // Derived from the DER: a given value must agree with it.
            CKA_SUBJECT | CKA_ISSUER | CKA_SERIAL_NUMBER | CKA_CHECK_VALUE
            | CKA_PUBLIC_KEY_INFO
                if a.get(t) != Some(v) =>
            {
                return Err(ckr!(
                    CKR_ATTRIBUTE_VALUE_INVALID,
                    "attribute disagrees with the certificate's DER value"
                ));
            }
            CKA_UNIQUE_ID => {
                return Err(ckr!(
                    CKR_ATTRIBUTE_READ_ONLY,
                    "CKA_UNIQUE_ID is the token's"
                ))
            }
            CKA_TRUSTED if as_bool(v)? && !so => {
                return Err(ckr!(
                    CKR_ATTRIBUTE_READ_ONLY,
                    "only the security officer marks a certificate trusted"
                ));
            }
            CKA_CERTIFICATE_CATEGORY if !matches!(crate::attrs::as_ulong(v)?, 0..=3) => {
                return Err(ckr!(CKR_ATTRIBUTE_VALUE_INVALID, "category is 0 to 3"));
            }
            CKA_START_DATE | CKA_END_DATE => crate::attrs::check_date(v)?,
            _ => {}
        }
        a.insert(*t, v.clone());
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_and_nothing_is_invented() {
        let t: Template = vec![
            (CKA_CLASS, ulong(CKO_CERTIFICATE)),
            (CKA_CERTIFICATE_TYPE, ulong(CKC_X_509)),
            (CKA_VALUE, b"not a certificate".to_vec()),
        ];
        assert_eq!(
            new_certificate(&t, false).unwrap_err().rv(),
            CKR_ATTRIBUTE_VALUE_INVALID
        );
        let no_value: Template = t[..2].to_vec();
        assert_eq!(
            new_certificate(&no_value, false).unwrap_err().rv(),
            CKR_TEMPLATE_INCOMPLETE
        );
        let wrong_type: Template = vec![(CKA_CERTIFICATE_TYPE, ulong(CKC_WTLS))];
        assert_eq!(
            new_certificate(&wrong_type, false).unwrap_err().rv(),
            CKR_ATTRIBUTE_VALUE_INVALID
        );
    }
}
