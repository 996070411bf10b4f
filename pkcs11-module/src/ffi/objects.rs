//! Object functions.

use cryptoki_sys::*;

use super::{out_ref, read_template, with_module};
use crate::error::{ckr, Pkcs11Error};
use crate::object_ops::AttrAnswer;

pub(super) unsafe extern "C" fn C_CreateObject(
    h: CK_SESSION_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    object: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    with_module(|m| {
        m.session_first(h)?;
        let object = unsafe { out_ref(object) }?;
        let mut template = unsafe { read_template(template, count) }?;
        let key_on_token =
            crate::audit::template_on_token(&template) && crate::audit::template_is_key(&template);
        let created = m.read_only_first(h, &[&template]).and_then(|()| {
            m.audited("C_CreateObject", None, None, key_on_token, || {
                m.create_object(h, &template)
            })
        });
        // The copy may hold a secret key's CKA_VALUE: wipe it.
        for (_, value) in template.iter_mut() {
            zeroize::Zeroize::zeroize(value);
        }
        *object = created?;
        Ok(())
    })
}

pub(super) unsafe extern "C" fn C_CopyObject(
    h: CK_SESSION_HANDLE,
    source: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    object: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    with_module(|m| {
        m.session_first(h)?;
        let object = unsafe { out_ref(object) }?;
        let template = unsafe { read_template(template, count) }?;
        m.read_only_first(h, &[&template])?;
        let facts = m.object_facts(h, source);
        let makes = facts.key.is_some() && crate::audit::template_on_token(&template);
        *object = m.audited("C_CopyObject", None, facts.key.as_ref(), makes, || {
            m.copy_object(h, source, &template)
        })?;
        Ok(())
    })
}

pub(super) unsafe extern "C" fn C_DestroyObject(
    h: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
) -> CK_RV {
    with_module(|m| {
        let facts = m.object_facts(h, object);
        m.audited(
            "C_DestroyObject",
            None,
            facts.key.as_ref(),
            facts.on_token,
            || m.destroy_object(h, object),
        )
    })
}

pub(super) unsafe extern "C" fn C_GetObjectSize(
    h: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    size: *mut CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        let size = unsafe { out_ref(size) }?;
        *size = m.object_size(h, object)? as CK_ULONG;
        Ok(())
    })
}

pub(super) unsafe extern "C" fn C_GetAttributeValue(
    h: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        if count > 0 && template.is_null() {
            return Err(Pkcs11Error::ArgumentsBad("NULL template"));
        }
        if count as usize > crate::attrs::MAX_TEMPLATE_LEN {
            return Err(ckr!(CKR_TEMPLATE_INCONSISTENT, "template too long"));
        }
        let attrs: &mut [CK_ATTRIBUTE] = if count == 0 {
            &mut []
        } else {
            // SAFETY: non-NULL, and the caller promises `count` attributes.
            unsafe { std::slice::from_raw_parts_mut(template, count as usize) }
        };
        // Reading a readable token key's value is a use of the key, and
        // recorded. A length query (no buffer for CKA_VALUE) is answered
        // from CKA_VALUE_LEN, without reading the value: only the read
        // leaves a record, on either backend.
        let facts = m.object_facts(h, object);
        let length_only: Vec<bool> = attrs
            .iter()
            .map(|a| facts.readable && !facts.private && a.type_ == CKA_VALUE && a.pValue.is_null())
            .collect();
        let types: Vec<_> = attrs
            .iter()
            .zip(&length_only)
            .map(|(a, len)| if *len { CKA_VALUE_LEN } else { a.type_ })
            .collect();
        // A private key's parts are read even for a length query.
        let reads_value = attrs.iter().any(|a| {
            if facts.private {
                crate::attrs::is_secret_part(a.type_)
            } else {
                a.type_ == CKA_VALUE && !a.pValue.is_null()
            }
        });
        let key = (facts.readable && reads_value)
            .then_some(facts.key)
            .flatten();
        let answers = m.audited("C_GetAttributeValue", None, key.as_ref(), false, || {
            m.get_attributes(h, object, &types)
        })?;
        let mut result = Ok(());
        for ((attr, answer), len) in attrs.iter_mut().zip(answers).zip(length_only) {
            if let (true, AttrAnswer::Value(v)) = (len, &answer) {
                attr.ulValueLen = crate::attrs::as_ulong(v)?;
                continue;
            }
            match answer {
                AttrAnswer::Value(v) if attr.pValue.is_null() => {
                    attr.ulValueLen = v.len() as CK_ULONG
                }
                AttrAnswer::Value(v) if (attr.ulValueLen as usize) < v.len() => {
                    attr.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    result = Err(ckr!(CKR_BUFFER_TOO_SMALL));
                }
                AttrAnswer::Value(v) => {
                    // SAFETY: the caller gave ulValueLen ≥ v.len() bytes.
                    unsafe {
                        std::ptr::copy_nonoverlapping(v.as_ptr(), attr.pValue as *mut u8, v.len())
                    };
                    attr.ulValueLen = v.len() as CK_ULONG;
                }
                AttrAnswer::Sensitive => {
                    attr.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    result = Err(ckr!(CKR_ATTRIBUTE_SENSITIVE));
                }
                AttrAnswer::Invalid => {
                    attr.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    result = Err(ckr!(CKR_ATTRIBUTE_TYPE_INVALID));
                }
            }
        }
        result
    })
}

pub(super) unsafe extern "C" fn C_SetAttributeValue(
    h: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        let template = unsafe { read_template(template, count) }?;
        // Sealing a readable token key (CKA_SENSITIVE, CKA_EXTRACTABLE).
        let facts = m.object_facts(h, object);
        let seals = facts.readable
            && template
                .iter()
                .any(|(t, _)| matches!(*t, CKA_SENSITIVE | CKA_EXTRACTABLE));
        let key = seals.then_some(facts.key).flatten();
        m.audited("C_SetAttributeValue", None, key.as_ref(), false, || {
            m.set_attributes(h, object, &template)
        })
    })
}

pub(super) unsafe extern "C" fn C_FindObjectsInit(
    h: CK_SESSION_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        let template = unsafe { read_template(template, count) }?;
        m.find_init(h, &template)
    })
}

pub(super) unsafe extern "C" fn C_FindObjects(
    h: CK_SESSION_HANDLE,
    objects: *mut CK_OBJECT_HANDLE,
    max: CK_ULONG,
    count: *mut CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        let count = unsafe { out_ref(count) }?;
        if objects.is_null() && max > 0 {
            return Err(Pkcs11Error::ArgumentsBad("NULL handle array"));
        }
        let found = m.find_next(h, max as usize)?;
        if !found.is_empty() {
            // SAFETY: the caller gave room for `max` handles; found.len() ≤ max.
            unsafe { std::ptr::copy_nonoverlapping(found.as_ptr(), objects, found.len()) };
        }
        *count = found.len() as CK_ULONG;
        Ok(())
    })
}

pub(super) unsafe extern "C" fn C_FindObjectsFinal(h: CK_SESSION_HANDLE) -> CK_RV {
    with_module(|m| m.find_final(h))
}
