//! Object functions of a module instance: create, copy, destroy,
//! attributes and find.

use cryptoki_sys::*;

use crate::attrs::{self, as_bool, get_bool, Template};
use crate::backend::{KeyHandle, UserKind};
use crate::error::{ckr, Result};
use crate::module::{lock, read, write, Module};
use crate::objects::Object;
use crate::session::FindState;

/// Whether a C_CopyObject template may set `t` to `v` on a copy of a
/// secret key with attributes `source`: what C_SetAttributeValue may
/// change, plus CKA_TOKEN, CKA_PRIVATE, CKA_MODIFIABLE, CKA_COPYABLE and
/// CKA_DESTROYABLE; CKA_SENSITIVE only to true, CKA_EXTRACTABLE only to
/// false. Anything else is CKR_ATTRIBUTE_READ_ONLY.
fn copy_key_attr_allowed(
    source: &crate::backend::Attributes,
    t: CK_ATTRIBUTE_TYPE,
    v: &[u8],
) -> Result<()> {
    match t {
        CKA_LABEL | CKA_ID | CKA_START_DATE | CKA_END_DATE => Ok(()),
        CKA_TOKEN | CKA_PRIVATE | CKA_MODIFIABLE | CKA_COPYABLE | CKA_DESTROYABLE | CKA_ENCRYPT
        | CKA_DECRYPT | CKA_WRAP | CKA_UNWRAP | CKA_SIGN | CKA_VERIFY | CKA_DERIVE => {
            as_bool(v).map(|_| ())
        }
        CKA_SENSITIVE if !as_bool(v)? && get_bool(source, t, true) => Err(ckr!(
            CKR_ATTRIBUTE_READ_ONLY,
            "CKA_SENSITIVE cannot be cleared"
        )),
        CKA_EXTRACTABLE if as_bool(v)? && !get_bool(source, t, false) => Err(ckr!(
            CKR_ATTRIBUTE_READ_ONLY,
            "CKA_EXTRACTABLE cannot be set again"
        )),
        CKA_SENSITIVE | CKA_EXTRACTABLE => Ok(()),
        _ => Err(ckr!(CKR_ATTRIBUTE_READ_ONLY)),
    }
}

/// One attribute's answer for C_GetAttributeValue.
#[derive(Debug, PartialEq, Eq)]
pub enum AttrAnswer {
    /// The value.
    Value(Vec<u8>),
    /// The attribute is secret (CKR_ATTRIBUTE_SENSITIVE).
    Sensitive,
    /// The object has no such attribute (CKR_ATTRIBUTE_TYPE_INVALID).
    Invalid,
}

impl Module {
    /// The session's token, RW flag and whether the user is logged in.
    pub(crate) fn session_view(
        &self,
        h: CK_SESSION_HANDLE,
    ) -> Result<(String, bool, Option<UserKind>)> {
        let session = self.session(h)?;
        let s = lock(&session)?;
        Ok((s.token.clone(), s.read_write, self.login_state(&s.token)?))
    }

    /// A copy of an object the session can see.
    pub fn visible_object(&self, h: CK_SESSION_HANDLE, obj: CK_OBJECT_HANDLE) -> Result<Object> {
        self.with_visible_object(h, obj, |object| Ok(object.clone()))
    }

    /// Runs `f` on an object the session may see, without copying it (the
    /// object table stays read-locked meanwhile: `f` must not touch it).
    pub fn with_visible_object<T>(
        &self,
        h: CK_SESSION_HANDLE,
        obj: CK_OBJECT_HANDLE,
        f: impl FnOnce(&Object) -> Result<T>,
    ) -> Result<T> {
        let (token, _, who) = self.session_view(h)?;
        let table = read(&self.objects)?;
        let object = table.get(obj).ok_or(ckr!(CKR_OBJECT_HANDLE_INVALID))?;
        if object.token != token || (object.is_private() && who != Some(UserKind::User)) {
            return Err(ckr!(CKR_OBJECT_HANDLE_INVALID));
        }
        f(object)
    }

    /// Checks that the session may create or change an object with these
    /// token/private flags.
    pub(crate) fn may_write(
        &self,
        rw: bool,
        who: Option<UserKind>,
        token: bool,
        private: bool,
    ) -> Result<()> {
        if token && !rw {
            return Err(ckr!(CKR_SESSION_READ_ONLY));
        }
        if private && who != Some(UserKind::User) {
            return Err(ckr!(
                CKR_USER_NOT_LOGGED_IN,
                "private objects need the user"
            ));
        }
        Ok(())
    }

    /// Adds an object to the table (and to the backend when on the token).
    pub(crate) fn add_object(
        &self,
        h: CK_SESSION_HANDLE,
        token_serial: &str,
        attrs: crate::backend::Attributes,
        key: Option<KeyHandle>,
    ) -> Result<CK_OBJECT_HANDLE> {
        let mut attrs = attrs;
        if let std::collections::btree_map::Entry::Vacant(e) = attrs.entry(CKA_UNIQUE_ID) {
            let mut raw = [0u8; 12];
            self.backend.generate_random(&mut raw)?;
            let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            e.insert(id.into_bytes());
        }
        attrs::fill_defaults(&mut attrs);
        let on_token = get_bool(&attrs, CKA_TOKEN, false);
        let _no_reload = self.hold_reloads()?;
        let backend_id = if on_token {
            Some(
                self.backend
                    .store_object(token_serial, &attrs, key.as_ref())?,
            )
        } else {
            None
        };
        Ok(write(&self.objects)?.insert(Object {
            token: token_serial.to_string(),
            backend_id,
            session: (!on_token).then_some(h),
            attrs,
            key,
        }))
    }

    /// C_CreateObject. Data objects are supported here; keys go through
    /// the backend.
    pub fn create_object(
        &self,
        h: CK_SESSION_HANDLE,
        template: &Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        attrs::check_template(template)?;
        let (token, rw, who) = self.session_view(h)?;
        let class = template
            .iter()
            .find(|(t, _)| *t == CKA_CLASS)
            .map(|(_, v)| attrs::as_ulong(v))
            .transpose()?
            .ok_or(ckr!(CKR_TEMPLATE_INCOMPLETE, "CKA_CLASS is required"))?;
        let new = match class {
            CKO_DATA => attrs::new_data_object(template)?,
            CKO_CERTIFICATE => crate::cert::new_certificate(template, who == Some(UserKind::So))?,
            CKO_PUBLIC_KEY => crate::pubkey::import_public(template)?,
            CKO_SECRET_KEY if self.backend.supports_key_mechanisms() => {
                return self.import_secret_key(h, template)
            }
            CKO_PRIVATE_KEY if self.backend.supports_key_mechanisms() => {
                return self.import_private_key(h, template)
            }
            CKO_SECRET_KEY | CKO_PRIVATE_KEY => {
                return Err(ckr!(
                    CKR_TEMPLATE_INCONSISTENT,
                    "objects of this class cannot be imported here"
                ))
            }
            _ => {
                return Err(ckr!(
                    CKR_ATTRIBUTE_VALUE_INVALID,
                    "unsupported object class"
                ))
            }
        };
        self.may_write(
            rw,
            who,
            get_bool(&new, CKA_TOKEN, false),
            get_bool(&new, CKA_PRIVATE, true),
        )?;
        self.add_object(h, &token, new, None)
    }

    /// C_CopyObject: a new object with the template's changes. Data
    /// objects copy their attributes; a secret key copies into a new key
    /// with the same material, made inside the backend (a token key when
    /// the copy is a token object). Private and public key objects are
    /// not copied (CKR_ACTION_PROHIBITED).
    pub fn copy_object(
        &self,
        h: CK_SESSION_HANDLE,
        obj: CK_OBJECT_HANDLE,
        template: &Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        attrs::check_template(template)?;
        let (token, rw, who) = self.session_view(h)?;
        let source = self.visible_object(h, obj)?;
        if !get_bool(&source.attrs, CKA_COPYABLE, true) {
            return Err(ckr!(CKR_ACTION_PROHIBITED, "object is not copyable"));
        }
        let class = source.class();
        if matches!(class, CKO_PRIVATE_KEY | CKO_PUBLIC_KEY) {
            return self.copy_pair_object(h, source, template);
        }
        let key = match (class, &source.key) {
            (CKO_DATA | CKO_CERTIFICATE, _) => None,
            (CKO_SECRET_KEY, Some(key)) => Some(key.clone()),
            _ => {
                return Err(ckr!(
                    CKR_ACTION_PROHIBITED,
                    "only data objects and secret keys can be copied"
                ))
            }
        };
        let mut new = source.attrs.clone();
        // The copy is another object: it gets its own unique id.
        new.remove(&CKA_UNIQUE_ID);
        for (t, v) in template {
            if key.is_some() {
                copy_key_attr_allowed(&source.attrs, *t, v)?;
            } else if (attrs::read_only_after_create(*t)
                || (class == CKO_CERTIFICATE && crate::cert::read_only(*t)))
                && new.get(t) != Some(v)
            {
                return Err(ckr!(CKR_ATTRIBUTE_READ_ONLY));
            } else if *t == CKA_TRUSTED && as_bool(v)? && who != Some(UserKind::So) {
                return Err(ckr!(
                    CKR_ATTRIBUTE_READ_ONLY,
                    "only the SO sets CKA_TRUSTED"
                ));
            }
            if key.is_none() && !new.contains_key(t) {
                return Err(ckr!(CKR_ATTRIBUTE_TYPE_INVALID));
            }
            new.insert(*t, v.clone());
        }
        let on_token = get_bool(&new, CKA_TOKEN, false);
        self.may_write(rw, who, on_token, get_bool(&new, CKA_PRIVATE, true))?;
        let Some(key) = key else {
            return self.add_object(h, &token, new, None);
        };
        let label = if on_token {
            Some(self.token_record(&token)?.label)
        } else {
            None
        };
        let aes = attrs::get_ulong(&new, CKA_KEY_TYPE) == Some(CKK_AES);
        let copy = if crate::key_ops::readable(&new) {
            self.backend
                .copy_readable_key(&key, label.as_deref(), aes)?
        } else {
            self.backend.copy_key(
                &key,
                label.as_deref(),
                aes,
                get_bool(&new, CKA_EXTRACTABLE, false),
            )?
        };
        self.add_object(h, &token, new, Some(copy.clone()))
            .inspect_err(|_| {
                let _ = self.backend.destroy_key(&copy);
            })
    }

    /// C_CopyObject of a private or public key object. The copy names the
    /// same key, except that a session key pair copied to the token becomes
    /// a token key (a KMS key with the same material, made inside the
    /// backend; both halves copied from one session pair name the same new
    /// key). The template may change what a secret key copy may, and turn
    /// usages off, never on (CKR_ATTRIBUTE_READ_ONLY).
    fn copy_pair_object(
        &self,
        h: CK_SESSION_HANDLE,
        source: Object,
        template: &Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        let (token, rw, who) = self.session_view(h)?;
        let mut new = source.attrs.clone();
        new.remove(&CKA_UNIQUE_ID);
        for (t, v) in template {
            copy_key_attr_allowed(&source.attrs, *t, v)?;
            let usage = matches!(
                *t,
                CKA_SIGN
                    | CKA_VERIFY
                    | CKA_ENCRYPT
                    | CKA_DECRYPT
                    | CKA_WRAP
                    | CKA_UNWRAP
                    | CKA_DERIVE
            );
            if usage && as_bool(v)? && !get_bool(&source.attrs, *t, false) {
                return Err(ckr!(CKR_ATTRIBUTE_READ_ONLY, "a copy cannot gain a usage"));
            }
            if !new.contains_key(t) {
                return Err(ckr!(CKR_ATTRIBUTE_TYPE_INVALID));
            }
            new.insert(*t, v.clone());
        }
        let on_token = get_bool(&new, CKA_TOKEN, false);
        let private = get_bool(&new, CKA_PRIVATE, source.class() == CKO_PRIVATE_KEY);
        self.may_write(rw, who, on_token, private)?;
        let key = source.key.clone();
        let key = match (&key, on_token) {
            (Some(KeyHandle::Session(id)), true) => {
                let existing = lock(&self.pair_copies)?.get(id).cloned();
                match existing {
                    Some(stored) => Some(stored),
                    None => {
                        let label = self.token_record(&token)?.label;
                        let copy = self.backend.copy_key(
                            &KeyHandle::Session(*id),
                            Some(&label),
                            false,
                            false,
                        )?;
                        lock(&self.pair_copies)?.insert(*id, copy.clone());
                        Some(copy)
                    }
                }
            }
            _ => key,
        };
        // A private key copied to the token with fewer rights than its
        // source (CKA_SENSITIVE set, CKA_EXTRACTABLE cleared) gets them
        // taken away in the backend too.
        if let (Some(stored @ KeyHandle::Stored(_)), CKO_PRIVATE_KEY, true) =
            (&key, source.class(), source.key != key)
        {
            let unextractable = get_bool(&source.attrs, CKA_EXTRACTABLE, false)
                && !get_bool(&new, CKA_EXTRACTABLE, false);
            if (crate::key_ops::readable(&source.attrs) && !crate::key_ops::readable(&new))
                || unextractable
            {
                self.backend.seal_secret(stored, unextractable)?;
            }
        }
        self.add_object(h, &token, new, key)
    }

    /// C_DestroyObject.
    pub fn destroy_object(&self, h: CK_SESSION_HANDLE, obj: CK_OBJECT_HANDLE) -> Result<()> {
        let (_, rw, who) = self.session_view(h)?;
        let object = self.visible_object(h, obj)?;
        if object.is_token() && !rw {
            return Err(ckr!(CKR_SESSION_READ_ONLY));
        }
        if object.is_private() && who != Some(UserKind::User) {
            return Err(ckr!(CKR_USER_NOT_LOGGED_IN));
        }
        if !get_bool(&object.attrs, CKA_DESTROYABLE, true) {
            return Err(ckr!(CKR_ACTION_PROHIBITED, "object is not destroyable"));
        }
        let _no_reload = self.hold_reloads()?;
        match (&object.backend_id, &object.key) {
            (Some(id), _) => self.backend.destroy_object(&object.token, id)?,
            // A session object's session key goes with the last object
            // naming it (the two halves of a session key pair share one);
            // a session object naming a token key leaves the key alone.
            (None, Some(key @ KeyHandle::Session(_))) => {
                if !read(&self.objects)?.names_key(key, obj) {
                    self.backend.destroy_key(key)?
                }
            }
            (None, _) => {}
        }
        write(&self.objects)?.remove(obj);
        Ok(())
    }

    /// C_GetAttributeValue: one answer per requested type.
    pub fn get_attributes(
        &self,
        h: CK_SESSION_HANDLE,
        obj: CK_OBJECT_HANDLE,
        types: &[CK_ATTRIBUTE_TYPE],
    ) -> Result<Vec<AttrAnswer>> {
        let object = self.visible_object(h, obj)?;
        let secret_holder = matches!(object.class(), CKO_SECRET_KEY | CKO_PRIVATE_KEY);
        Ok(types
            .iter()
            .map(|t| {
                if secret_holder && attrs::is_secret_part(*t) {
                    // A secret key made readable gives its value; the
                    // backend checks again that it was made so.
                    if object.class() == CKO_PRIVATE_KEY {
                        return self.private_part(&object, *t);
                    }
                    let readable = object.class() == CKO_SECRET_KEY
                        && *t == CKA_VALUE
                        && crate::key_ops::readable(&object.attrs);
                    return match (&object.key, readable) {
                        (Some(key), true) => match self.backend.secret_value(key) {
                            Ok(v) => AttrAnswer::Value(v.to_vec()),
                            Err(_) => AttrAnswer::Sensitive,
                        },
                        _ => AttrAnswer::Sensitive,
                    };
                }
                match object.attrs.get(t) {
                    Some(v) => AttrAnswer::Value(v.clone()),
                    None => AttrAnswer::Invalid,
                }
            })
            .collect())
    }

    /// A secret part of a private key: its value when the key is readable
    /// (CKA_SENSITIVE false, CKA_EXTRACTABLE true; the backend checks
    /// again that it was made so), else sensitive.
    fn private_part(&self, object: &Object, t: CK_ATTRIBUTE_TYPE) -> AttrAnswer {
        let key_type = attrs::get_ulong(&object.attrs, CKA_KEY_TYPE);
        let (Some(key), Some(key_type), true) = (
            &object.key,
            key_type,
            crate::key_ops::readable(&object.attrs),
        ) else {
            return AttrAnswer::Sensitive;
        };
        let pkcs8 = match self.backend.secret_value(key) {
            Ok(v) => v,
            Err(_) => return AttrAnswer::Sensitive,
        };
        match crate::private_parts::secret_attr(key_type, &pkcs8, t) {
            Ok(Some(v)) => AttrAnswer::Value(v.to_vec()),
            Ok(None) => AttrAnswer::Invalid,
            Err(_) => AttrAnswer::Sensitive,
        }
    }

    /// C_SetAttributeValue, where the spec allows a change.
    pub fn set_attributes(
        &self,
        h: CK_SESSION_HANDLE,
        obj: CK_OBJECT_HANDLE,
        template: &Template,
    ) -> Result<()> {
        attrs::check_template(template)?;
        let (_, rw, who) = self.session_view(h)?;
        let object = self.visible_object(h, obj)?;
        self.may_write(rw, who, object.is_token(), object.is_private())?;
        if !get_bool(&object.attrs, CKA_MODIFIABLE, true) {
            return Err(ckr!(CKR_ACTION_PROHIBITED, "object is not modifiable"));
        }
        let mut new = object.attrs.clone();
        let class = object.class();
        let is_key = matches!(class, CKO_SECRET_KEY | CKO_PRIVATE_KEY | CKO_PUBLIC_KEY);
        for (t, v) in template {
            if !(new.contains_key(t) || is_key && attrs::key_value_part(*t)) {
                return Err(ckr!(
                    CKR_ATTRIBUTE_TYPE_INVALID,
                    "the object has no such attribute"
                ));
            }
            match *t {
                CKA_TOKEN | CKA_PRIVATE => return Err(ckr!(CKR_ATTRIBUTE_READ_ONLY)),
                CKA_SENSITIVE if !as_bool(v)? && get_bool(&new, *t, false) => {
                    return Err(ckr!(
                        CKR_ATTRIBUTE_READ_ONLY,
                        "CKA_SENSITIVE cannot be cleared"
                    ))
                }
                CKA_EXTRACTABLE if as_bool(v)? && !get_bool(&new, *t, true) => {
                    return Err(ckr!(
                        CKR_ATTRIBUTE_READ_ONLY,
                        "CKA_EXTRACTABLE cannot be set again"
                    ))
                }
                CKA_TRUSTED if as_bool(v)? && who != Some(UserKind::So) => {
                    return Err(ckr!(
                        CKR_ATTRIBUTE_READ_ONLY,
                        "only the SO sets CKA_TRUSTED"
                    ))
                }
                CKA_WRAP_WITH_TRUSTED if !as_bool(v)? && get_bool(&new, *t, false) => {
                    return Err(ckr!(
                        CKR_ATTRIBUTE_READ_ONLY,
                        "CKA_WRAP_WITH_TRUSTED cannot be cleared"
                    ))
                }
                CKA_START_DATE | CKA_END_DATE => attrs::check_date(v)?,
                CKA_ALLOWED_MECHANISMS => attrs::check_mechanism_list(v)?,
                t if attrs::read_only_after_create(t)
                    || attrs::key_value_part(t)
                    || (class == CKO_CERTIFICATE && crate::cert::read_only(t)) =>
                {
                    return Err(ckr!(CKR_ATTRIBUTE_READ_ONLY))
                }
                _ => {}
            }
            new.insert(*t, v.clone());
        }
        let _no_reload = self.hold_reloads()?;
        // A readable key that stops being so (CKA_SENSITIVE set, or
        // CKA_EXTRACTABLE cleared) is sealed in the backend for good.
        if let (Some(key), CKO_SECRET_KEY | CKO_PRIVATE_KEY) = (&object.key, class) {
            let was = crate::key_ops::readable(&object.attrs);
            let unextractable = get_bool(&object.attrs, CKA_EXTRACTABLE, false)
                && !get_bool(&new, CKA_EXTRACTABLE, false);
            if (was && !crate::key_ops::readable(&new)) || unextractable {
                self.backend.seal_secret(key, unextractable)?;
            }
        }
        if let Some(id) = &object.backend_id {
            self.backend.update_object(&object.token, id, &new)?;
        }
        write(&self.objects)?.set_attrs(obj, new);
        Ok(())
    }

    /// C_GetObjectSize: the bytes of its attributes.
    pub fn object_size(&self, h: CK_SESSION_HANDLE, obj: CK_OBJECT_HANDLE) -> Result<usize> {
        let object = self.visible_object(h, obj)?;
        Ok(object.attrs.values().map(|v| v.len() + 16).sum())
    }

    /// C_FindObjectsInit: asks the backend for the token objects that
    /// match (the store's current set: keys made or deleted elsewhere
    /// show), takes them into the table, adds the matching session
    /// objects, and keeps those the session may see, in handle order.
    pub fn find_init(&self, h: CK_SESSION_HANDLE, template: &Template) -> Result<()> {
        let session = self.session(h)?;
        let serial = {
            let s = lock(&session)?;
            if s.find.is_some() {
                return Err(ckr!(CKR_OPERATION_ACTIVE));
            }
            s.token.clone()
        };
        let stored = self.find_token_objects(&serial, template)?;
        let mut s = lock(&session)?;
        if s.find.is_some() {
            return Err(ckr!(CKR_OPERATION_ACTIVE));
        }
        let user_in = self.login_state(&s.token)? == Some(UserKind::User);
        let table = read(&self.objects)?;
        let mut handles: Vec<CK_OBJECT_HANDLE> = stored
            .into_iter()
            .filter(|h| {
                table
                    .get(*h)
                    .is_some_and(|o| o.matches(template) && self.visible(&s, o, user_in))
            })
            .collect();
        handles.extend(table.find(template, |o| {
            o.backend_id.is_none() && self.visible(&s, o, user_in)
        }));
        drop(table);
        handles.sort_unstable();
        handles.dedup();
        s.find = Some(FindState { handles, cursor: 0 });
        Ok(())
    }

    /// C_FindObjects: up to `max` further matches.
    pub fn find_next(&self, h: CK_SESSION_HANDLE, max: usize) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let session = self.session(h)?;
        let mut s = lock(&session)?;
        let find = s.find.as_mut().ok_or(ckr!(CKR_OPERATION_NOT_INITIALIZED))?;
        let end = find.handles.len().min(find.cursor.saturating_add(max));
        let out = find.handles[find.cursor..end].to_vec();
        find.cursor = end;
        Ok(out)
    }

    /// C_FindObjectsFinal.
    pub fn find_final(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        let session = self.session(h)?;
        let mut s = lock(&session)?;
        s.find
            .take()
            .map(|_| ())
            .ok_or(ckr!(CKR_OPERATION_NOT_INITIALIZED))
    }
}
