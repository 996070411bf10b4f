//! C_DeriveKey from a secret base key: CKM_HKDF_DERIVE / CKM_HKDF_DATA,
//! CKM_SP800_108_COUNTER_KDF / _FEEDBACK_KDF (with additional keys),
//! CKM_AES_ECB_ENCRYPT_DATA / CKM_AES_CBC_ENCRYPT_DATA, the three
//! concatenations, CKM_XOR_BASE_AND_DATA and CKM_EXTRACT_KEY_FROM_KEY.
//!
//! Attribute rules (PKCS#11 3.0 sections 2.42, 2.43, 2.62): CKA_SENSITIVE
//! and CKA_EXTRACTABLE left out of a template take the base key's values;
//! for the derivations whose result shows the base key's bits
//! (concatenation, XOR, extraction) a sensitive input makes the result
//! sensitive and an unextractable input makes it unextractable (a template
//! asking otherwise is CKR_TEMPLATE_INCONSISTENT); CKA_ALWAYS_SENSITIVE and
//! CKA_NEVER_EXTRACTABLE hold only when they held for every input key.

use cryptoki_sys::*;

use crate::attrs::{self, as_ulong, bbool, get_bool, get_ulong, Template};
use crate::backend::{Attributes, DeriveOp, KeyHandle, NewSecret};
use crate::error::{ckr, Result};
use crate::key_ops::{check_allowed, readable, secret_key_attrs, valid_secret_len};
use crate::mechanisms::{self, DeriveParams, Mechanism};
use crate::module::Module;
use crate::objects::Object;

/// An input key of a derivation: its handle and the attributes that
/// decide the derived keys' ones.
struct Input {
    key: KeyHandle,
    attrs: Attributes,
}

fn template_value(template: &Template, t: CK_ATTRIBUTE_TYPE) -> Result<Option<&[u8]>> {
    Ok(template
        .iter()
        .find(|(u, _)| *u == t)
        .map(|(_, v)| v.as_slice()))
}

fn template_bool(template: &Template, t: CK_ATTRIBUTE_TYPE) -> Result<Option<bool>> {
    template_value(template, t)?.map(attrs::as_bool).transpose()
}

/// A secret key the session may use as a derivation's input.
fn secret_input(object: &Object) -> Result<Input> {
    if object.class() != CKO_SECRET_KEY {
        return Err(ckr!(CKR_KEY_TYPE_INCONSISTENT, "a secret key is needed"));
    }
    let key = object
        .key
        .clone()
        .ok_or(ckr!(CKR_KEY_HANDLE_INVALID, "not a key"))?;
    Ok(Input {
        key,
        attrs: object.attrs.clone(),
    })
}

impl Module {
    /// The base key (checked: a secret key whose CKA_DERIVE is true, of
    /// the type the derivation needs, allowing the mechanism).
    fn derive_base(
        &self,
        h: CK_SESSION_HANDLE,
        m: &Mechanism,
        base: CK_OBJECT_HANDLE,
    ) -> Result<Input> {
        let p = m.derive.as_ref().ok_or(ckr!(CKR_MECHANISM_PARAM_INVALID))?;
        self.with_visible_object(h, base, |object| {
            check_allowed(object, m)?;
            let input = secret_input(object)?;
            let needs_aes = matches!(
                p.op,
                DeriveOp::AesEncryptData { .. }
                    | DeriveOp::Kbkdf {
                        prf: crate::backend::Prf::AesCmac,
                        ..
                    }
            );
            if needs_aes && get_ulong(&object.attrs, CKA_KEY_TYPE) != Some(CKK_AES) {
                return Err(ckr!(
                    CKR_KEY_TYPE_INCONSISTENT,
                    "this derivation needs an AES base key"
                ));
            }
            if !get_bool(&object.attrs, CKA_DERIVE, false) {
                return Err(ckr!(CKR_KEY_FUNCTION_NOT_PERMITTED));
            }
            Ok(input)
        })
    }

    /// The length a derivation gives when the template names none.
    fn natural_len(
        &self,
        p: &DeriveParams,
        base: &Input,
        other: Option<&Input>,
    ) -> Result<Option<usize>> {
        let base_len = || self.backend.secret_len(&base.key);
        Ok(match &p.op {
            DeriveOp::AesEncryptData { data, .. } => Some(data.len()),
            DeriveOp::ConcatBaseAndData(d) | DeriveOp::ConcatDataAndBase(d) => {
                Some(base_len()? + d.len())
            }
            DeriveOp::XorBaseAndData(d) => Some(base_len()?.min(d.len())),
            DeriveOp::ConcatBaseAndKey => match other {
                Some(o) => Some(base_len()? + self.backend.secret_len(&o.key)?),
                None => None,
            },
            _ => None,
        })
    }

    /// The attributes of one derived key from its template, and what the
    /// backend makes for it.
    fn derived_key(
        &self,
        template: &Template,
        p: &DeriveParams,
        inputs: &[&Input],
        natural: Option<usize>,
        token_label: impl Fn() -> Result<String>,
    ) -> Result<(Attributes, NewSecret)> {
        attrs::check_template(template)?;
        let given_type = template_value(template, CKA_KEY_TYPE)?
            .map(as_ulong)
            .transpose()?;
        let key_type = given_type.unwrap_or(CKK_GENERIC_SECRET);
        if !matches!(key_type, CKK_AES | CKK_GENERIC_SECRET) {
            return Err(ckr!(
                CKR_TEMPLATE_INCONSISTENT,
                "an AES or generic secret key is derived"
            ));
        }
        let len = match template_value(template, CKA_VALUE_LEN)? {
            Some(v) => as_ulong(v)? as usize,
            // Only a generic secret takes the derivation's natural length:
            // AES has no one length (section 2.43).
            None if key_type == CKK_GENERIC_SECRET => {
                natural.ok_or(ckr!(CKR_TEMPLATE_INCOMPLETE, "CKA_VALUE_LEN is required"))?
            }
            None => return Err(ckr!(CKR_TEMPLATE_INCOMPLETE, "CKA_VALUE_LEN is required")),
        };
        let on_token = template_bool(template, CKA_TOKEN)?.unwrap_or(false);
        let len_ok = if on_token || key_type == CKK_AES {
            valid_secret_len(key_type, len)
        } else {
            (1..=512).contains(&len)
        };
        if !len_ok {
            return Err(ckr!(CKR_ATTRIBUTE_VALUE_INVALID, "unsupported key length"));
        }
        // Sensitivity and extractability: the template's, else the base
        // key's; forced for the derivations that show the inputs' bits.
        let all = |t, default| inputs.iter().all(|i| get_bool(&i.attrs, t, default));
        let any_sensitive = inputs
            .iter()
            .any(|i| get_bool(&i.attrs, CKA_SENSITIVE, true));
        let any_unextractable = inputs
            .iter()
            .any(|i| !get_bool(&i.attrs, CKA_EXTRACTABLE, false));
        let base = inputs[0];
        let asked_sensitive = template_bool(template, CKA_SENSITIVE)?;
        let asked_extractable = template_bool(template, CKA_EXTRACTABLE)?;
        let (sensitive, extractable) = if p.op.reversible() {
            if asked_sensitive == Some(false) && any_sensitive {
                return Err(ckr!(
                    CKR_TEMPLATE_INCONSISTENT,
                    "a key made of a sensitive key's bits is sensitive"
                ));
            }
            if asked_extractable == Some(true) && any_unextractable {
                return Err(ckr!(
                    CKR_TEMPLATE_INCONSISTENT,
                    "a key made of an unextractable key's bits is unextractable"
                ));
            }
            (
                asked_sensitive.unwrap_or(any_sensitive) || any_sensitive,
                asked_extractable.unwrap_or(!any_unextractable) && !any_unextractable,
            )
        } else {
            (
                asked_sensitive.unwrap_or(get_bool(&base.attrs, CKA_SENSITIVE, true)),
                asked_extractable.unwrap_or(get_bool(&base.attrs, CKA_EXTRACTABLE, false)),
            )
        };
        let mut full: Template = template
            .iter()
            .filter(|(t, _)| !matches!(*t, CKA_SENSITIVE | CKA_EXTRACTABLE | CKA_VALUE_LEN))
            .cloned()
            .collect();
        full.push((CKA_SENSITIVE, bbool(sensitive)));
        full.push((CKA_EXTRACTABLE, bbool(extractable)));
        let mut a = secret_key_attrs(&full, key_type, len, false)?;
        a.insert(
            CKA_ALWAYS_SENSITIVE,
            bbool(all(CKA_ALWAYS_SENSITIVE, false) && sensitive),
        );
        a.insert(
            CKA_NEVER_EXTRACTABLE,
            bbool(all(CKA_NEVER_EXTRACTABLE, false) && !extractable),
        );
        let new = NewSecret {
            token_label: if on_token { Some(token_label()?) } else { None },
            aes: key_type == CKK_AES,
            len,
            extractable,
            readable: readable(&a),
        };
        Ok((a, new))
    }

    /// C_DeriveKey with a secret-key derivation: the handles of the keys
    /// made (the template's first, then SP 800-108's additional keys in
    /// order) or, for CKM_HKDF_DATA, of the data object made.
    pub fn derive_secret(
        &self,
        h: CK_SESSION_HANDLE,
        m: &Mechanism,
        base: CK_OBJECT_HANDLE,
        template: &Template,
    ) -> Result<Vec<CK_OBJECT_HANDLE>> {
        // Session first, then mechanism and template.
        let (serial, rw, who) = self.session_view(h)?;
        let entry = mechanisms::lookup_for(self.backend.as_ref(), m.mechanism)?;
        if entry.flags & CKF_DERIVE == 0 {
            return Err(ckr!(CKR_MECHANISM_INVALID));
        }
        let p = m.derive.as_ref().ok_or(ckr!(CKR_MECHANISM_PARAM_INVALID))?;
        attrs::check_template(template)?;
        let base = self.derive_base(h, m, base)?;
        let other = match p.other {
            Some(o) => Some(self.with_visible_object(h, o, secret_input).map_err(
                |e| match e.rv() {
                    CKR_OBJECT_HANDLE_INVALID => ckr!(
                        CKR_MECHANISM_PARAM_INVALID,
                        "the other key's handle is not valid"
                    ),
                    _ => e,
                },
            )?),
            None => None,
        };
        if m.mechanism == CKM_HKDF_DATA {
            return self.derive_data_object(h, p, &base, other.as_ref(), template);
        }
        let natural = self.natural_len(p, &base, other.as_ref())?;
        let inputs: Vec<&Input> = std::iter::once(&base).chain(other.as_ref()).collect();
        let label = || Ok(self.token_record(&serial)?.label);
        let mut made: Vec<(Attributes, NewSecret)> = Vec::new();
        for t in std::iter::once(template).chain(p.additional.iter()) {
            let (a, new) = self.derived_key(t, p, &inputs, natural, label)?;
            self.may_write(
                rw,
                who,
                get_bool(&a, CKA_TOKEN, false),
                get_bool(&a, CKA_PRIVATE, true),
            )?;
            made.push((a, new));
        }
        let news: Vec<NewSecret> = made.iter().map(|(_, n)| n.clone()).collect();
        let keys = self
            .backend
            .derive(&base.key, other.as_ref().map(|o| &o.key), &p.op, &news)?;
        let mut handles = Vec::with_capacity(keys.len());
        for ((a, _), key) in made.into_iter().zip(&keys) {
            match self.add_object(h, &serial, a, Some(key.clone())) {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    // All or nothing: undo the objects and keys made.
                    for handle in handles {
                        let _ = self.destroy_object(h, handle);
                    }
                    for key in &keys {
                        let _ = self.backend.destroy_key(key);
                    }
                    return Err(e);
                }
            }
        }
        Ok(handles)
    }

    /// CKM_HKDF_DATA: a data object holding the derived bytes.
    fn derive_data_object(
        &self,
        h: CK_SESSION_HANDLE,
        p: &DeriveParams,
        base: &Input,
        other: Option<&Input>,
        template: &Template,
    ) -> Result<Vec<CK_OBJECT_HANDLE>> {
        if template_value(template, CKA_CLASS)?
            .map(as_ulong)
            .transpose()?
            != Some(CKO_DATA)
        {
            return Err(ckr!(
                CKR_TEMPLATE_INCONSISTENT,
                "CKM_HKDF_DATA makes a CKO_DATA object"
            ));
        }
        let len = template_value(template, CKA_VALUE_LEN)?
            .map(as_ulong)
            .transpose()?
            .ok_or(ckr!(CKR_TEMPLATE_INCOMPLETE, "CKA_VALUE_LEN is required"))?
            as usize;
        if len == 0 || len > hsm_core::mechanisms::MAX_DERIVED {
            return Err(ckr!(CKR_ATTRIBUTE_VALUE_INVALID, "1 to 4096 bytes"));
        }
        let value = self
            .backend
            .derive_data(&base.key, other.map(|o| &o.key), &p.op, len)?;
        let mut data: Template = template
            .iter()
            .filter(|(t, _)| *t != CKA_VALUE_LEN)
            .cloned()
            .collect();
        data.push((CKA_VALUE, value.to_vec()));
        Ok(vec![self.create_object(h, &data)?])
    }
}
