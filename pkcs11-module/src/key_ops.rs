//! Key functions of a module instance: AES key generation, encryption and
//! decryption (single and multi-part), key wrap and unwrap. The material
//! stays in the backend; objects carry only attributes and a handle.

use cryptoki_sys::*;

use crate::attrs::{self, as_bool, as_ulong, bbool, get_bool, get_ulong, ulong, Template};
use crate::backend::{Attributes, EcdhKdf, KeyHandle, KeyTransport};
use crate::crypto_ops::OpKind;
use crate::error::{ckr, Pkcs11Error, Result};
use crate::mechanisms::{self, aes_mode, wrapped_len, Mechanism};
use crate::module::{lock, Module};
use crate::objects::Object;
use crate::session::{finish, update, CipherMode, CipherOp, Output};

/// Attributes C_GenerateKey / C_UnwrapKey accept for an AES key.
const SECRET_KEY_ATTRS: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_CLASS,
    CKA_KEY_TYPE,
    CKA_VALUE_LEN,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_LABEL,
    CKA_ID,
    CKA_SENSITIVE,
    CKA_EXTRACTABLE,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_SIGN,
    CKA_VERIFY,
    CKA_DERIVE,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_ALLOWED_MECHANISMS,
];

/// Builds a secret key's attributes (`key_type` CKK_AES or
/// CKK_GENERIC_SECRET) from an application template.
pub(crate) fn secret_key_attrs(
    template: &Template,
    key_type: CK_KEY_TYPE,
    len: usize,
    local: bool,
) -> Result<Attributes> {
    let aes = key_type == CKK_AES;
    let mut a = Attributes::new();
    a.insert(CKA_CLASS, ulong(CKO_SECRET_KEY));
    a.insert(CKA_KEY_TYPE, ulong(key_type));
    for (t, v) in [
        (CKA_TOKEN, false),
        (CKA_PRIVATE, true),
        (CKA_SENSITIVE, true),
        (CKA_EXTRACTABLE, false),
        (CKA_ENCRYPT, aes),
        (CKA_DECRYPT, aes),
        (CKA_WRAP, aes),
        (CKA_UNWRAP, aes),
        (CKA_SIGN, !aes),
        (CKA_VERIFY, !aes),
        (CKA_DERIVE, false),
        (CKA_MODIFIABLE, true),
        (CKA_COPYABLE, true),
        (CKA_DESTROYABLE, true),
        (CKA_ALWAYS_AUTHENTICATE, false),
        (CKA_TRUSTED, false),
    ] {
        a.insert(t, bbool(v));
    }
    a.insert(CKA_LABEL, Vec::new());
    a.insert(CKA_ID, Vec::new());
    for (t, v) in template {
        if !SECRET_KEY_ATTRS.contains(t) {
            return Err(match *t {
                CKA_VALUE => ckr!(CKR_TEMPLATE_INCONSISTENT, "CKA_VALUE cannot be given here"),
                _ => ckr!(CKR_ATTRIBUTE_TYPE_INVALID),
            });
        }
        match *t {
            CKA_CLASS if as_ulong(v)? != CKO_SECRET_KEY => {
                return Err(ckr!(CKR_TEMPLATE_INCONSISTENT))
            }
            CKA_KEY_TYPE if as_ulong(v)? != key_type => {
                return Err(ckr!(CKR_TEMPLATE_INCONSISTENT))
            }
            CKA_ALLOWED_MECHANISMS => attrs::check_mechanism_list(v)?,
            CKA_START_DATE | CKA_END_DATE => attrs::check_date(v)?,
            CKA_VALUE_LEN if as_ulong(v)? as usize != len => {
                return Err(ckr!(
                    CKR_TEMPLATE_INCONSISTENT,
                    "CKA_VALUE_LEN does not match"
                ))
            }
            _ => {}
        }
        a.insert(*t, v.clone());
    }
    a.insert(CKA_VALUE_LEN, ulong(len as CK_ULONG));
    a.insert(CKA_LOCAL, bbool(local));
    let sensitive = get_bool(&a, CKA_SENSITIVE, true);
    let extractable = get_bool(&a, CKA_EXTRACTABLE, false);
    a.insert(CKA_ALWAYS_SENSITIVE, bbool(local && sensitive));
    a.insert(CKA_NEVER_EXTRACTABLE, bbool(local && !extractable));
    if local {
        let mech = if aes {
            CKM_AES_KEY_GEN
        } else {
            CKM_GENERIC_SECRET_KEY_GEN
        };
        a.insert(CKA_KEY_GEN_MECHANISM, ulong(mech));
    }
    Ok(a)
}

/// Whether a secret key's value may be read: CKA_SENSITIVE false and
/// CKA_EXTRACTABLE true (PKCS#11 3.0, C_GetAttributeValue).
pub(crate) fn readable(a: &Attributes) -> bool {
    !get_bool(a, CKA_SENSITIVE, true) && get_bool(a, CKA_EXTRACTABLE, false)
}

/// Whether `len` bytes is a valid key of this type: AES of 16, 24 or 32
/// bytes, generic secret and HMAC keys of 1 to 512.
pub(crate) fn valid_secret_len(key_type: CK_KEY_TYPE, len: usize) -> bool {
    if key_type == CKK_AES {
        matches!(len, 16 | 24 | 32)
    } else {
        (1..=512).contains(&len)
    }
}

/// The HMAC key types of PKCS#11 3.0 (CKK_SHA_1_HMAC ...) with the digest
/// length of their hash; a generic secret serves every HMAC.
pub(crate) fn hmac_key_type_len(key_type: CK_KEY_TYPE) -> Option<usize> {
    match key_type {
        CKK_SHA_1_HMAC => Some(20),
        CKK_SHA224_HMAC => Some(28),
        CKK_SHA256_HMAC => Some(32),
        CKK_SHA384_HMAC => Some(48),
        CKK_SHA512_HMAC => Some(64),
        _ => None,
    }
}

/// Whether a key type is a secret MAC key (generic secret or HMAC).
pub(crate) fn is_mac_key_type(key_type: CK_KEY_TYPE) -> bool {
    key_type == CKK_GENERIC_SECRET || hmac_key_type_len(key_type).is_some()
}

/// Decodes CK_RSA_PKCS_OAEP_PARAMS (hashAlg, mgf, source, pSourceData,
/// ulSourceDataLen): SHA-1 or SHA-256 with the same MGF1, and a label
/// only with CKZ_DATA_SPECIFIED (the C layer copied it into
/// `m.oaep_label`). Returns whether the hash is SHA-256.
pub(crate) fn oaep_params(m: &Mechanism) -> Result<bool> {
    const N: usize = std::mem::size_of::<CK_ULONG>();
    let bad = || {
        ckr!(
            CKR_MECHANISM_PARAM_INVALID,
            "CK_RSA_PKCS_OAEP_PARAMS: SHA-1 or SHA-256 with its MGF1"
        )
    };
    if m.param.len() != std::mem::size_of::<CK_RSA_PKCS_OAEP_PARAMS>() {
        return Err(bad());
    }
    let word = |i: usize| as_ulong(&m.param[i * N..(i + 1) * N]).map_err(|_| bad());
    let (hash, mgf, source, label_len) = (word(0)?, word(1)?, word(2)?, word(4)?);
    let labelled = label_len != 0;
    if labelled && (source != CKZ_DATA_SPECIFIED || label_len as usize != m.oaep_label.len()) {
        return Err(bad());
    }
    if !(source == 0 || source == CKZ_DATA_SPECIFIED) {
        return Err(bad());
    }
    match (hash, mgf) {
        (CKM_SHA_1, CKG_MGF1_SHA1) => Ok(false),
        (CKM_SHA256, CKG_MGF1_SHA256) => Ok(true),
        _ => Err(bad()),
    }
}

/// Checks a CKM_RSA_PKCS encryption (public or private key object) or
/// decryption (private key object) key: an RSA key whose CKA_ENCRYPT /
/// CKA_DECRYPT is true; the mechanism takes no parameter. Returns the key
/// and its modulus length.
fn usable_rsa_crypt_key(
    object: &Object,
    encrypt: bool,
    m: &Mechanism,
) -> Result<(KeyHandle, usize)> {
    if !m.param.is_empty() {
        return Err(ckr!(
            CKR_MECHANISM_PARAM_INVALID,
            "CKM_RSA_PKCS and CKM_RSA_X_509 take no parameter"
        ));
    }
    let key = object
        .key
        .clone()
        .ok_or(ckr!(CKR_KEY_TYPE_INCONSISTENT, "not a key"))?;
    let class_ok =
        object.class() == CKO_PRIVATE_KEY || (encrypt && object.class() == CKO_PUBLIC_KEY);
    if !class_ok || get_ulong(&object.attrs, CKA_KEY_TYPE) != Some(CKK_RSA) {
        return Err(ckr!(
            CKR_KEY_TYPE_INCONSISTENT,
            "CKM_RSA_PKCS needs an RSA key"
        ));
    }
    let usage = if encrypt { CKA_ENCRYPT } else { CKA_DECRYPT };
    if !get_bool(&object.attrs, usage, false) {
        return Err(ckr!(CKR_KEY_FUNCTION_NOT_PERMITTED));
    }
    Ok((key, crate::pubkey::signature_len(&object.attrs)?))
}

/// Refuses a mechanism the key's CKA_ALLOWED_MECHANISMS leaves out
/// (CKR_MECHANISM_INVALID, as SoftHSM answers).
pub(crate) fn check_allowed(object: &Object, m: &Mechanism) -> Result<()> {
    if attrs::mechanism_allowed(&object.attrs, m.mechanism) {
        Ok(())
    } else {
        Err(ckr!(
            CKR_MECHANISM_INVALID,
            "mechanism not among the key's CKA_ALLOWED_MECHANISMS"
        ))
    }
}

/// Checks that `object` is an AES key whose `usage` attribute is true.
fn usable_aes_key(object: &Object, usage: CK_ATTRIBUTE_TYPE) -> Result<KeyHandle> {
    let key = object
        .key
        .clone()
        .ok_or(ckr!(CKR_KEY_TYPE_INCONSISTENT, "not a key"))?;
    if object.class() != CKO_SECRET_KEY || get_ulong(&object.attrs, CKA_KEY_TYPE) != Some(CKK_AES) {
        return Err(ckr!(CKR_KEY_TYPE_INCONSISTENT, "an AES key is needed"));
    }
    if !get_bool(&object.attrs, usage, false) {
        return Err(ckr!(CKR_KEY_FUNCTION_NOT_PERMITTED));
    }
    Ok(key)
}

impl Module {
    fn needs_keys(&self, m: &Mechanism, flag: CK_FLAGS) -> Result<()> {
        let entry = mechanisms::lookup_for(self.backend.as_ref(), m.mechanism)?;
        if entry.flags & flag == 0 {
            return Err(ckr!(CKR_MECHANISM_INVALID, "mechanism cannot do this"));
        }
        Ok(())
    }

    /// C_GenerateKey (CKM_AES_KEY_GEN, CKM_GENERIC_SECRET_KEY_GEN).
    pub fn generate_key(
        &self,
        h: CK_SESSION_HANDLE,
        m: &Mechanism,
        template: &Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        self.needs_keys(m, CKF_GENERATE)?;
        if m.mechanism == CKM_DES3_KEY_GEN {
            return self.generate_des3(h, m, template);
        }
        // The key type each mechanism makes; the SHA key generators default
        // CKA_VALUE_LEN to their digest's length.
        let (key_type, default_len) = match m.mechanism {
            CKM_AES_KEY_GEN => (CKK_AES, None),
            CKM_GENERIC_SECRET_KEY_GEN => (CKK_GENERIC_SECRET, None),
            CKM_SHA_1_KEY_GEN => (CKK_SHA_1_HMAC, Some(20)),
            CKM_SHA224_KEY_GEN => (CKK_SHA224_HMAC, Some(28)),
            CKM_SHA256_KEY_GEN => (CKK_SHA256_HMAC, Some(32)),
            CKM_SHA384_KEY_GEN => (CKK_SHA384_HMAC, Some(48)),
            CKM_SHA512_KEY_GEN => (CKK_SHA512_HMAC, Some(64)),
            _ => return Err(ckr!(CKR_MECHANISM_INVALID)),
        };
        if !m.param.is_empty() {
            return Err(ckr!(CKR_MECHANISM_PARAM_INVALID));
        }
        attrs::check_template(template)?;
        let len = match template.iter().find(|(t, _)| *t == CKA_VALUE_LEN) {
            Some((_, v)) => as_ulong(v)? as usize,
            None => {
                default_len.ok_or(ckr!(CKR_TEMPLATE_INCOMPLETE, "CKA_VALUE_LEN is required"))?
            }
        };
        if !valid_secret_len(key_type, len) {
            return Err(ckr!(CKR_ATTRIBUTE_VALUE_INVALID, "unsupported key length"));
        }
        let mut a = secret_key_attrs(template, key_type, len, true)?;
        a.insert(CKA_KEY_GEN_MECHANISM, ulong(m.mechanism));
        let (serial, rw, who) = self.session_view(h)?;
        let on_token = get_bool(&a, CKA_TOKEN, false);
        self.may_write(rw, who, on_token, get_bool(&a, CKA_PRIVATE, true))?;
        let label = if on_token {
            Some(self.token_record(&serial)?.label)
        } else {
            None
        };
        let extractable = get_bool(&a, CKA_EXTRACTABLE, false);
        let key = if readable(&a) {
            self.backend
                .make_readable_secret(label.as_deref(), key_type == CKK_AES, len, None)?
        } else {
            self.backend.generate_secret_key(
                label.as_deref(),
                key_type == CKK_AES,
                len,
                extractable,
            )?
        };
        self.add_object(h, &serial, a, Some(key.clone()))
            .inspect_err(|_| {
                let _ = self.backend.destroy_key(&key);
            })
    }

    /// C_DeriveKey: CKM_ECDH1_DERIVE / CKM_ECDH1_COFACTOR_DERIVE (KDF NULL
    /// or the SHA-1/SHA-2 X9.63 KDFs) with an EC private key whose
    /// CKA_DERIVE is true, into a new AES or generic secret key.
    pub fn derive_key(
        &self,
        h: CK_SESSION_HANDLE,
        m: &Mechanism,
        base: CK_OBJECT_HANDLE,
        template: &Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        // Session first, then mechanism and template.
        let (serial, rw, who) = self.session_view(h)?;
        self.needs_keys(m, CKF_DERIVE)?;
        let p = m.ecdh.as_ref().ok_or(ckr!(CKR_MECHANISM_PARAM_INVALID))?;
        let kdf = match p.kdf {
            CKD_NULL => EcdhKdf::Null,
            CKD_SHA1_KDF => EcdhKdf::X963(20),
            CKD_SHA224_KDF => EcdhKdf::X963(28),
            CKD_SHA256_KDF => EcdhKdf::X963(32),
            CKD_SHA384_KDF => EcdhKdf::X963(48),
            CKD_SHA512_KDF => EcdhKdf::X963(64),
            _ => return Err(ckr!(CKR_MECHANISM_PARAM_INVALID, "unsupported KDF")),
        };
        attrs::check_template(template)?;
        let (key, base_attrs) = self.with_visible_object(h, base, |object| {
            check_allowed(object, m)?;
            if object.class() != CKO_PRIVATE_KEY
                || !matches!(
                    get_ulong(&object.attrs, CKA_KEY_TYPE),
                    Some(CKK_EC | CKK_EC_MONTGOMERY)
                )
            {
                return Err(ckr!(
                    CKR_KEY_TYPE_INCONSISTENT,
                    "ECDH needs an EC or X25519 private key"
                ));
            }
            if !get_bool(&object.attrs, CKA_DERIVE, false) {
                return Err(ckr!(CKR_KEY_FUNCTION_NOT_PERMITTED));
            }
            let key = object
                .key
                .clone()
                .ok_or(ckr!(CKR_KEY_HANDLE_INVALID, "not a key"))?;
            Ok((key, object.attrs.clone()))
        })?;
        // The peer's point, raw (04 || X || Y; X25519's 32 bytes) or as a
        // DER OCTET STRING.
        let point = match p.public.as_slice() {
            // The raw lengths on X25519, P-256, P-384 and P-521.
            raw if matches!(raw.len(), 32 | 65 | 97 | 133) => raw,
            [0x04, n, rest @ ..] if *n as usize == rest.len() => rest,
            [0x04, 0x81, n, rest @ ..] if *n as usize == rest.len() => rest,
            raw => raw,
        };
        let key_type = template
            .iter()
            .find(|(t, _)| *t == CKA_KEY_TYPE)
            .ok_or(ckr!(CKR_TEMPLATE_INCOMPLETE, "CKA_KEY_TYPE is required"))
            .and_then(|(_, v)| as_ulong(v))?;
        if !matches!(key_type, CKK_AES | CKK_GENERIC_SECRET) {
            return Err(ckr!(
                CKR_TEMPLATE_INCONSISTENT,
                "an AES or generic secret key is derived"
            ));
        }
        let len = template
            .iter()
            .find(|(t, _)| *t == CKA_VALUE_LEN)
            .ok_or(ckr!(CKR_TEMPLATE_INCOMPLETE, "CKA_VALUE_LEN is required"))
            .and_then(|(_, v)| as_ulong(v))? as usize;
        let mut a = secret_key_attrs(template, key_type, len, false)?;
        let on_token = get_bool(&a, CKA_TOKEN, false);
        let len_ok = if on_token || key_type == CKK_AES {
            valid_secret_len(key_type, len)
        } else {
            (1..=512).contains(&len)
        };
        if !len_ok {
            return Err(ckr!(CKR_ATTRIBUTE_VALUE_INVALID, "unsupported key length"));
        }
        // What the base key always was, the derived key inherits.
        let sensitive = get_bool(&a, CKA_SENSITIVE, true);
        let extractable = get_bool(&a, CKA_EXTRACTABLE, false);
        a.insert(
            CKA_ALWAYS_SENSITIVE,
            bbool(get_bool(&base_attrs, CKA_ALWAYS_SENSITIVE, false) && sensitive),
        );
        a.insert(
            CKA_NEVER_EXTRACTABLE,
            bbool(get_bool(&base_attrs, CKA_NEVER_EXTRACTABLE, false) && !extractable),
        );
        self.may_write(rw, who, on_token, get_bool(&a, CKA_PRIVATE, true))?;
        let label = if on_token {
            Some(self.token_record(&serial)?.label)
        } else {
            None
        };
        let derived = self.backend.ecdh_derive(
            &key,
            point,
            kdf,
            &p.shared,
            label.as_deref(),
            key_type == CKK_AES,
            len,
            extractable,
            readable(&a),
        )?;
        self.add_object(h, &serial, a, Some(derived.clone()))
            .inspect_err(|_| {
                let _ = self.backend.destroy_key(&derived);
            })
    }

    /// C_CreateObject for a secret key with CKA_VALUE: an import (origin
    /// EXTERNAL for token keys). The value goes straight to the backend.
    pub fn import_secret_key(
        &self,
        h: CK_SESSION_HANDLE,
        template: &Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        let value = template
            .iter()
            .find(|(t, _)| *t == CKA_VALUE)
            .map(|(_, v)| zeroize::Zeroizing::new(v.clone()))
            .ok_or(ckr!(CKR_TEMPLATE_INCOMPLETE, "CKA_VALUE is required"))?;
        let key_type = template
            .iter()
            .find(|(t, _)| *t == CKA_KEY_TYPE)
            .ok_or(ckr!(CKR_TEMPLATE_INCOMPLETE, "CKA_KEY_TYPE is required"))
            .and_then(|(_, v)| as_ulong(v))?;
        if key_type == CKK_DES3 {
            return self.import_des3(h, template);
        }
        if !(key_type == CKK_AES || is_mac_key_type(key_type)) {
            return Err(ckr!(
                CKR_ATTRIBUTE_VALUE_INVALID,
                "AES, generic secret or HMAC keys only"
            ));
        }
        if !valid_secret_len(key_type, value.len()) {
            return Err(ckr!(CKR_ATTRIBUTE_VALUE_INVALID, "unsupported key length"));
        }
        let rest: Template = template
            .iter()
            .filter(|(t, _)| *t != CKA_VALUE)
            .cloned()
            .collect();
        let a = secret_key_attrs(&rest, key_type, value.len(), false)?;
        let (serial, rw, who) = self.session_view(h)?;
        let on_token = get_bool(&a, CKA_TOKEN, false);
        self.may_write(rw, who, on_token, get_bool(&a, CKA_PRIVATE, true))?;
        let label = if on_token {
            Some(self.token_record(&serial)?.label)
        } else {
            None
        };
        let extractable = get_bool(&a, CKA_EXTRACTABLE, false);
        let key = if readable(&a) {
            self.backend.make_readable_secret(
                label.as_deref(),
                key_type == CKK_AES,
                value.len(),
                Some(&value),
            )?
        } else {
            self.backend.import_secret_key(
                label.as_deref(),
                key_type == CKK_AES,
                &value,
                extractable,
            )?
        };
        self.add_object(h, &serial, a, Some(key.clone()))
            .inspect_err(|_| {
                let _ = self.backend.destroy_key(&key);
            })
    }

    /// C_EncryptInit / C_DecryptInit.
    pub fn cipher_init(
        &self,
        h: CK_SESSION_HANDLE,
        kind: OpKind,
        m: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let encrypt = kind == OpKind::Encrypt;
        self.needs_keys(m, if encrypt { CKF_ENCRYPT } else { CKF_DECRYPT })?;
        let usage = if encrypt { CKA_ENCRYPT } else { CKA_DECRYPT };
        let (mode, key) = self.with_visible_object(h, key, |object| {
            check_allowed(object, m)?;
            Ok(if m.mechanism == CKM_RSA_PKCS {
                let (key, modulus_len) = usable_rsa_crypt_key(object, encrypt, m)?;
                (CipherMode::RsaPkcs1 { modulus_len }, key)
            } else if m.mechanism == CKM_RSA_X_509 {
                let (key, modulus_len) = usable_rsa_crypt_key(object, encrypt, m)?;
                (CipherMode::RsaX509 { modulus_len }, key)
            } else if m.mechanism == CKM_RSA_PKCS_OAEP {
                let sha256 = oaep_params(m)?;
                let key = object
                    .key
                    .clone()
                    .ok_or(ckr!(CKR_KEY_TYPE_INCONSISTENT, "not a key"))?;
                let class_ok = object.class() == CKO_PRIVATE_KEY
                    || (encrypt && object.class() == CKO_PUBLIC_KEY);
                if !class_ok || get_ulong(&object.attrs, CKA_KEY_TYPE) != Some(CKK_RSA) {
                    return Err(ckr!(CKR_KEY_TYPE_INCONSISTENT, "RSA-OAEP needs an RSA key"));
                }
                if !get_bool(&object.attrs, usage, false) {
                    return Err(ckr!(CKR_KEY_FUNCTION_NOT_PERMITTED));
                }
                let modulus_len = crate::pubkey::signature_len(&object.attrs)?;
                (
                    CipherMode::Oaep {
                        sha256,
                        modulus_len,
                        label: m.oaep_label.clone(),
                    },
                    key,
                )
            } else {
                (
                    CipherMode::Aes(aes_mode(m)?),
                    crate::des3_ops::usable_cipher_key(object, usage, m)?,
                )
            })
        })?;
        let session = self.session(h)?;
        let mut s = lock(&session)?;
        let slot = if encrypt {
            &mut s.encrypt
        } else {
            &mut s.decrypt
        };
        if slot.is_some() {
            return Err(ckr!(CKR_OPERATION_ACTIVE));
        }
        *slot = Some(CipherOp {
            key,
            mode,
            mechanism: m.mechanism,
            buf: Default::default(),
            multipart: false,
        });
        Ok(())
    }

    fn run_cipher(
        &self,
        function: &'static str,
        op: &CipherOp,
        encrypt: bool,
        data: &[u8],
    ) -> Result<Vec<u8>> {
        self.audited(function, Some(op.mechanism), Some(&op.key), false, || {
            self.run_cipher_unrecorded(op, encrypt, data)
        })
    }

    fn run_cipher_unrecorded(&self, op: &CipherOp, encrypt: bool, data: &[u8]) -> Result<Vec<u8>> {
        let mut out = match &op.mode {
            CipherMode::Aes(mode) => self.backend.aes(&op.key, mode, encrypt, data)?,
            CipherMode::Oaep { sha256, label, .. } => self
                .backend
                .rsa_oaep(&op.key, *sha256, encrypt, data, label)?,
            CipherMode::RsaPkcs1 { .. } => self.backend.rsa_pkcs1_crypt(&op.key, encrypt, data)?,
            CipherMode::RsaX509 { .. } => self.backend.rsa_x509_crypt(&op.key, encrypt, data)?,
        };
        if encrypt {
            // Ciphertext is no secret: hand the buffer over without a copy.
            Ok(std::mem::take(&mut *out))
        } else {
            Ok(out.to_vec())
        }
    }

    /// C_Encrypt / C_Decrypt (single part).
    pub fn cipher(
        &self,
        h: CK_SESSION_HANDLE,
        kind: OpKind,
        data: &[u8],
        cap: Option<usize>,
    ) -> Result<Output> {
        let encrypt = kind == OpKind::Encrypt;
        let session = self.session(h)?;
        let mut s = lock(&session)?;
        let slot = if encrypt {
            &mut s.encrypt
        } else {
            &mut s.decrypt
        };
        if slot.as_ref().is_some_and(|op| op.multipart) {
            *slot = None;
            return Err(ckr!(
                CKR_OPERATION_ACTIVE,
                "single-part call after an update"
            ));
        }
        finish(
            slot,
            |op| op.mode.output_len(encrypt, data.len()),
            cap,
            |op| {
                let function = if encrypt { "C_Encrypt" } else { "C_Decrypt" };
                self.run_cipher(function, &op, encrypt, data)
            },
        )
    }

    /// C_EncryptUpdate / C_DecryptUpdate: streams the block modes (every
    /// complete block comes back at once); the others gather input and
    /// return nothing.
    pub fn cipher_update(
        &self,
        h: CK_SESSION_HANDLE,
        kind: OpKind,
        data: Result<&[u8]>,
        cap: Option<usize>,
    ) -> Result<Output> {
        let session = self.session(h)?;
        let mut s = lock(&session)?;
        let slot = if kind == OpKind::Encrypt {
            &mut s.encrypt
        } else {
            &mut s.decrypt
        };
        // ECB, CBC and CTR: every complete block now (crate::stream_ops).
        if let (Some(op), Ok(bytes)) = (slot.as_mut(), data.as_ref()) {
            if let Some(result) = self.stream_update(op, kind == OpKind::Encrypt, bytes, cap) {
                if result
                    .as_ref()
                    .is_err_and(|e| !matches!(e, Pkcs11Error::BufferTooSmall(_)))
                {
                    *slot = None;
                }
                return result;
            }
        }
        let slot_ref = if kind == OpKind::Encrypt {
            &s.encrypt
        } else {
            &s.decrypt
        };
        if cap.is_none() && data.is_ok() && slot_ref.is_some() {
            // A length query: updates here return nothing, and the data
            // is taken by the call that comes with the buffer.
            return Ok(Output::Len(0));
        }
        let slot = if kind == OpKind::Encrypt {
            &mut s.encrypt
        } else {
            &mut s.decrypt
        };
        update(slot, |op| {
            let data = data?;
            if op.buf.len() + data.len() > crate::ffi::MAX_INPUT_LEN {
                return Err(ckr!(CKR_DATA_LEN_RANGE, "multi-part input too large"));
            }
            op.multipart = true;
            op.buf.extend_from_slice(data);
            Ok(())
        })?;
        Ok(match cap {
            None => Output::Len(0),
            Some(_) => Output::Data(Vec::new()),
        })
    }

    /// C_EncryptFinal / C_DecryptFinal.
    pub fn cipher_final(
        &self,
        h: CK_SESSION_HANDLE,
        kind: OpKind,
        cap: Option<usize>,
    ) -> Result<Output> {
        let encrypt = kind == OpKind::Encrypt;
        let session = self.session(h)?;
        let mut s = lock(&session)?;
        let slot = if encrypt {
            &mut s.encrypt
        } else {
            &mut s.decrypt
        };
        finish(
            slot,
            |op| op.mode.output_len(encrypt, op.buf.len()),
            cap,
            |op| {
                let function = if encrypt {
                    "C_EncryptFinal"
                } else {
                    "C_DecryptFinal"
                };
                self.run_cipher(function, &op, encrypt, &op.buf)
            },
        )
    }

    /// C_WrapKey: wraps an extractable secret key under an AES key (key
    /// wrap) or an RSA key pair (CKM_RSA_PKCS, CKM_RSA_PKCS_OAEP).
    pub fn wrap_key(
        &self,
        h: CK_SESSION_HANDLE,
        m: &Mechanism,
        wrapping: CK_OBJECT_HANDLE,
        target: CK_OBJECT_HANDLE,
        cap: Option<usize>,
    ) -> Result<Output> {
        self.needs_keys(m, CKF_WRAP)?;
        let transport = crate::import_ops::transport(m)?;
        let wrapping = self.visible_object(h, wrapping)?;
        check_allowed(&wrapping, m)?;
        let trusted = get_bool(&wrapping.attrs, CKA_TRUSTED, false);
        let (wrapping, rsa_len) = match transport {
            KeyTransport::Aes(_) => (
                usable_aes_key(&wrapping, CKA_WRAP).map_err(|e| {
                    if e.rv() == CKR_KEY_TYPE_INCONSISTENT {
                        ckr!(CKR_WRAPPING_KEY_TYPE_INCONSISTENT)
                    } else {
                        e
                    }
                })?,
                None,
            ),
            _ => {
                let (key, len) = crate::import_ops::usable_rsa_transport_key(&wrapping, CKA_WRAP)?;
                (key, Some(len))
            }
        };
        let target = self.visible_object(h, target)?;
        let key = target
            .key
            .clone()
            .ok_or(ckr!(CKR_KEY_HANDLE_INVALID, "not a key"))?;
        // A private key leaves as a PKCS#8 PrivateKeyInfo under an AES key.
        let private = target.class() == CKO_PRIVATE_KEY;
        if !(target.class() == CKO_SECRET_KEY
            || private && matches!(transport, KeyTransport::Aes(_)))
        {
            return Err(ckr!(CKR_KEY_NOT_WRAPPABLE));
        }
        if !get_bool(&target.attrs, CKA_EXTRACTABLE, false) {
            return Err(ckr!(CKR_KEY_UNEXTRACTABLE));
        }
        if get_bool(&target.attrs, CKA_WRAP_WITH_TRUSTED, false) && !trusted {
            return Err(ckr!(
                CKR_KEY_NOT_WRAPPABLE,
                "the key wraps only under a trusted key"
            ));
        }
        let need = match (&transport, rsa_len) {
            (KeyTransport::Aes(mode), _) => wrapped_len(*mode, self.backend.secret_len(&key)?),
            (_, len) => len.unwrap_or(0),
        };
        match cap {
            None => Ok(Output::Len(need)),
            Some(c) if c < need => Err(Pkcs11Error::BufferTooSmall(need)),
            Some(_) => Ok(Output::Data(match transport {
                KeyTransport::Aes(mode) => self.backend.wrap(&wrapping, mode, &key)?,
                _ => self.backend.wrap_rsa(&wrapping, &transport, &key)?,
            })),
        }
    }

    /// C_UnwrapKey: unwraps a secret key (AES or generic secret) or a
    /// private key (a PKCS#8 PrivateKeyInfo, CKA_CLASS CKO_PRIVATE_KEY)
    /// under an AES key or an RSA key pair into a new session or token
    /// object.
    pub fn unwrap_key(
        &self,
        h: CK_SESSION_HANDLE,
        m: &Mechanism,
        unwrapping: CK_OBJECT_HANDLE,
        wrapped: &[u8],
        template: &Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        self.needs_keys(m, CKF_UNWRAP)?;
        let transport = crate::import_ops::transport(m)?;
        attrs::check_template(template)?;
        let unwrapping = self.visible_object(h, unwrapping)?;
        check_allowed(&unwrapping, m)?;
        let unwrapping = match transport {
            KeyTransport::Aes(_) => usable_aes_key(&unwrapping, CKA_UNWRAP).map_err(|e| {
                if e.rv() == CKR_KEY_TYPE_INCONSISTENT {
                    ckr!(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT)
                } else {
                    e
                }
            })?,
            _ => crate::import_ops::usable_rsa_transport_key(&unwrapping, CKA_UNWRAP)?.0,
        };
        let ulong_of = |t| {
            template
                .iter()
                .find(|(u, _)| *u == t)
                .map(|(_, v)| as_ulong(v))
                .transpose()
        };
        match ulong_of(CKA_CLASS)?.unwrap_or(CKO_SECRET_KEY) {
            CKO_PRIVATE_KEY => {
                return self.unwrap_private_key(h, &unwrapping, &transport, wrapped, template)
            }
            CKO_SECRET_KEY => {}
            _ => {
                return Err(ckr!(
                    CKR_TEMPLATE_INCONSISTENT,
                    "secret or private keys are unwrapped"
                ))
            }
        }
        let key_type = ulong_of(CKA_KEY_TYPE)?.unwrap_or(CKK_AES);
        if !(key_type == CKK_AES || is_mac_key_type(key_type)) {
            return Err(ckr!(
                CKR_TEMPLATE_INCONSISTENT,
                "AES or generic secret keys are unwrapped"
            ));
        }
        let flag = |t, default| {
            template
                .iter()
                .find(|(u, _)| *u == t)
                .map_or(Ok(default), |(_, v)| as_bool(v))
        };
        let (serial, rw, who) = self.session_view(h)?;
        let on_token = flag(CKA_TOKEN, false)?;
        self.may_write(rw, who, on_token, flag(CKA_PRIVATE, true)?)?;
        let label = if on_token {
            Some(self.token_record(&serial)?.label)
        } else {
            None
        };
        let extractable = flag(CKA_EXTRACTABLE, false)?;
        let (key, len) = match transport {
            KeyTransport::Aes(mode) if key_type == CKK_AES => {
                self.backend
                    .unwrap(&unwrapping, mode, wrapped, label.as_deref(), extractable)?
            }
            _ => self.backend.unwrap_secret(
                &unwrapping,
                &transport,
                wrapped,
                label.as_deref(),
                key_type == CKK_AES,
                extractable,
            )?,
        };
        let built = if key_type != CKK_AES || matches!(len, 16 | 24 | 32) {
            secret_key_attrs(template, key_type, len, false)
        } else {
            Err(ckr!(CKR_WRAPPED_KEY_INVALID, "not an AES key"))
        };
        let result = built.and_then(|a| self.add_object(h, &serial, a, Some(key.clone())));
        if result.is_err() {
            let _ = self.backend.destroy_key(&key);
        }
        result
    }
}
