//! Triple DES for legacy fixtures: CKM_DES3_KEY_GEN, C_CreateObject of a
//! CKK_DES3 key (24 bytes), and the key check of CKM_DES3_ECB / _CBC /
//! _CBC_PAD (the cipher itself runs in hsm-core like AES). DES3 keys are
//! session objects only: the KMS key store has no triple-DES key spec, and
//! new token keys of a retired cipher are not worth one.

use cryptoki_sys::*;

use crate::attrs::{as_ulong, bbool, get_bool, get_ulong, ulong, Template};
use crate::backend::KeyHandle;
use crate::error::{ckr, Result};
use crate::key_ops::{readable, secret_key_attrs};
use crate::mechanisms::Mechanism;
use crate::module::Module;
use crate::objects::Object;

/// A DES3 key's length in bytes.
const DES3_LEN: usize = 24;

/// Whether a mechanism is one of the DES3 ciphers.
pub fn is_des3(mechanism: CK_MECHANISM_TYPE) -> bool {
    matches!(mechanism, CKM_DES3_ECB | CKM_DES3_CBC | CKM_DES3_CBC_PAD)
}

/// The key of a cipher operation: a DES3 key for the DES3 mechanisms, an
/// AES key otherwise; a secret key whose `usage` attribute is true.
pub(crate) fn usable_cipher_key(
    object: &Object,
    usage: CK_ATTRIBUTE_TYPE,
    m: &Mechanism,
) -> Result<KeyHandle> {
    let want = if is_des3(m.mechanism) {
        CKK_DES3
    } else {
        CKK_AES
    };
    let key = object
        .key
        .clone()
        .ok_or(ckr!(CKR_KEY_TYPE_INCONSISTENT, "not a key"))?;
    if object.class() != CKO_SECRET_KEY || get_ulong(&object.attrs, CKA_KEY_TYPE) != Some(want) {
        return Err(ckr!(
            CKR_KEY_TYPE_INCONSISTENT,
            "the mechanism needs a key of another type"
        ));
    }
    if !get_bool(&object.attrs, usage, false) {
        return Err(ckr!(CKR_KEY_FUNCTION_NOT_PERMITTED));
    }
    Ok(key)
}

/// A DES3 key's attributes: a secret key's, with the cipher usages on by
/// default (as for AES); CKA_VALUE_LEN is 24.
fn des3_attrs(template: &Template, local: bool) -> Result<crate::backend::Attributes> {
    if template
        .iter()
        .any(|(t, v)| *t == CKA_TOKEN && v.first().is_some_and(|b| *b != 0))
    {
        return Err(ckr!(
            CKR_TEMPLATE_INCONSISTENT,
            "DES3 keys are session objects only"
        ));
    }
    if let Some((_, v)) = template.iter().find(|(t, _)| *t == CKA_VALUE_LEN) {
        if as_ulong(v)? as usize != DES3_LEN {
            return Err(ckr!(CKR_ATTRIBUTE_VALUE_INVALID, "a DES3 key is 24 bytes"));
        }
    }
    let given = |t| template.iter().any(|(u, _)| *u == t);
    let mut a = secret_key_attrs(template, CKK_DES3, DES3_LEN, local)?;
    for (t, v) in [
        (CKA_ENCRYPT, true),
        (CKA_DECRYPT, true),
        (CKA_WRAP, true),
        (CKA_UNWRAP, true),
        (CKA_SIGN, false),
        (CKA_VERIFY, false),
    ] {
        if !given(t) {
            a.insert(t, bbool(v));
        }
    }
    if local {
        a.insert(CKA_KEY_GEN_MECHANISM, ulong(CKM_DES3_KEY_GEN));
    }
    Ok(a)
}

impl Module {
    /// C_GenerateKey with CKM_DES3_KEY_GEN (the caller checked the
    /// mechanism is offered).
    pub(crate) fn generate_des3(
        &self,
        h: CK_SESSION_HANDLE,
        m: &Mechanism,
        template: &Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        if !m.param.is_empty() {
            return Err(ckr!(CKR_MECHANISM_PARAM_INVALID));
        }
        crate::attrs::check_template(template)?;
        let a = des3_attrs(template, true)?;
        let (serial, rw, who) = self.session_view(h)?;
        self.may_write(rw, who, false, get_bool(&a, CKA_PRIVATE, true))?;
        let key = if readable(&a) {
            self.backend
                .make_readable_secret(None, false, DES3_LEN, None)?
        } else {
            self.backend.generate_secret_key(
                None,
                false,
                DES3_LEN,
                get_bool(&a, CKA_EXTRACTABLE, false),
            )?
        };
        self.add_object(h, &serial, a, Some(key.clone()))
            .inspect_err(|_| {
                let _ = self.backend.destroy_key(&key);
            })
    }

    /// C_CreateObject of a CKK_DES3 secret key (CKA_VALUE of 24 bytes).
    pub(crate) fn import_des3(
        &self,
        h: CK_SESSION_HANDLE,
        template: &Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        let value = template
            .iter()
            .find(|(t, _)| *t == CKA_VALUE)
            .map(|(_, v)| zeroize::Zeroizing::new(v.clone()))
            .ok_or(ckr!(CKR_TEMPLATE_INCOMPLETE, "CKA_VALUE is required"))?;
        if value.len() != DES3_LEN {
            return Err(ckr!(CKR_ATTRIBUTE_VALUE_INVALID, "a DES3 key is 24 bytes"));
        }
        let rest: Template = template
            .iter()
            .filter(|(t, _)| *t != CKA_VALUE)
            .cloned()
            .collect();
        let a = des3_attrs(&rest, false)?;
        let (serial, rw, who) = self.session_view(h)?;
        self.may_write(rw, who, false, get_bool(&a, CKA_PRIVATE, true))?;
        let key = if readable(&a) {
            self.backend
                .make_readable_secret(None, false, DES3_LEN, Some(&value))?
        } else {
            self.backend.import_secret_key(
                None,
                false,
                &value,
                get_bool(&a, CKA_EXTRACTABLE, false),
            )?
        };
        self.add_object(h, &serial, a, Some(key.clone()))
            .inspect_err(|_| {
                let _ = self.backend.destroy_key(&key);
            })
    }
}
