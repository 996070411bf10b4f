//! Cryptographic functions: digests, random, and the key operations.

use cryptoki_sys::*;

use super::{capacity, deliver, in_bytes, out_ref, read_mechanism, read_template, with_module};
use crate::crypto_ops::OpKind;
use crate::error::{ckr, Pkcs11Error};

pub(super) unsafe extern "C" fn C_DigestInit(
    h: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
) -> CK_RV {
    with_module(|m| {
        m.session_first(h)?;
        let mech = unsafe { read_mechanism(mechanism) }?;
        m.digest_init(h, mech.mechanism, mech.param.len())
    })
}

pub(super) unsafe extern "C" fn C_Digest(
    h: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        let cap = unsafe { capacity(out, out_len) }?;
        let data = unsafe { in_bytes(data, len) }?;
        unsafe { deliver(out, out_len, m.digest(h, data, cap)) }
    })
}

pub(super) unsafe extern "C" fn C_DigestUpdate(
    h: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        let data = unsafe { in_bytes(data, len) };
        match data {
            Ok(data) => m.digest_update(h, data),
            Err(e) => {
                // A failed update ends the operation.
                m.digest_abort(h);
                Err(e)
            }
        }
    })
}

pub(super) unsafe extern "C" fn C_DigestKey(h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> CK_RV {
    with_module(|m| m.digest_key(h, key))
}

pub(super) unsafe extern "C" fn C_DigestFinal(
    h: CK_SESSION_HANDLE,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        let cap = unsafe { capacity(out, out_len) }?;
        unsafe { deliver(out, out_len, m.digest_final(h, cap)) }
    })
}

pub(super) unsafe extern "C" fn C_SeedRandom(
    h: CK_SESSION_HANDLE,
    seed: *mut CK_BYTE,
    len: CK_ULONG,
) -> CK_RV {
    // Accepted and ignored: the module's randomness is AWS-LC's DRBG,
    // seeded by the operating system; an application's seed adds nothing
    // to it and must not be able to steer it (README, PKCS#11 known limits).
    with_module(|m| {
        m.session_first(h)?;
        unsafe { in_bytes(seed, len) }?;
        Ok(())
    })
}

pub(super) unsafe extern "C" fn C_GenerateRandom(
    h: CK_SESSION_HANDLE,
    out: *mut CK_BYTE,
    len: CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        if out.is_null() {
            return Err(Pkcs11Error::ArgumentsBad("NULL random buffer"));
        }
        let len = usize::try_from(len).map_err(|_| Pkcs11Error::ArgumentsBad("length"))?;
        // SAFETY: non-NULL, and the caller promises `len` writable bytes.
        let buf = unsafe { std::slice::from_raw_parts_mut(out, len) };
        m.generate_random(h, buf)
    })
}

macro_rules! cipher_fns {
    ($init:ident, $single:ident, $update:ident, $final:ident, $kind:expr) => {
        pub(super) unsafe extern "C" fn $init(
            h: CK_SESSION_HANDLE,
            mechanism: *mut CK_MECHANISM,
            key: CK_OBJECT_HANDLE,
        ) -> CK_RV {
            with_module(|m| {
                m.session_first(h)?;
                let mech = unsafe { read_mechanism(mechanism) }?;
                m.cipher_init(h, $kind, &mech, key)?;
                m.note_reauth(h, $kind, key)
            })
        }

        pub(super) unsafe extern "C" fn $single(
            h: CK_SESSION_HANDLE,
            data: *mut CK_BYTE,
            len: CK_ULONG,
            out: *mut CK_BYTE,
            out_len: *mut CK_ULONG,
        ) -> CK_RV {
            with_module(|m| {
                m.reauth_done(h, $kind)?;
                let cap = unsafe { capacity(out, out_len) }?;
                let data = unsafe { in_bytes(data, len) }?;
                unsafe { deliver(out, out_len, m.cipher(h, $kind, data, cap)) }
            })
        }

        pub(super) unsafe extern "C" fn $update(
            h: CK_SESSION_HANDLE,
            data: *mut CK_BYTE,
            len: CK_ULONG,
            out: *mut CK_BYTE,
            out_len: *mut CK_ULONG,
        ) -> CK_RV {
            with_module(|m| {
                m.reauth_done(h, $kind)?;
                // Bad arguments still end the operation, inside cipher_update.
                let cap = unsafe { capacity(out, out_len) };
                let data = unsafe { in_bytes(data, len) };
                let result = match cap {
                    Ok(cap) => m.cipher_update(h, $kind, data, cap),
                    Err(e) => m.cipher_update(h, $kind, Err(e), None),
                };
                unsafe { deliver(out, out_len, result) }
            })
        }

        pub(super) unsafe extern "C" fn $final(
            h: CK_SESSION_HANDLE,
            out: *mut CK_BYTE,
            out_len: *mut CK_ULONG,
        ) -> CK_RV {
            with_module(|m| {
                m.reauth_done(h, $kind)?;
                let cap = unsafe { capacity(out, out_len) }?;
                unsafe { deliver(out, out_len, m.cipher_final(h, $kind, cap)) }
            })
        }
    };
}
cipher_fns!(
    C_EncryptInit,
    C_Encrypt,
    C_EncryptUpdate,
    C_EncryptFinal,
    OpKind::Encrypt
);
cipher_fns!(
    C_DecryptInit,
    C_Decrypt,
    C_DecryptUpdate,
    C_DecryptFinal,
    OpKind::Decrypt
);

pub(super) unsafe extern "C" fn C_SignInit(
    h: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    with_module(|m| {
        m.session_first(h)?;
        let mech = unsafe { read_mechanism(mechanism) }?;
        m.sign_init(h, OpKind::Sign, &mech, key)?;
        m.note_reauth(h, OpKind::Sign, key)
    })
}

pub(super) unsafe extern "C" fn C_VerifyInit(
    h: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    with_module(|m| {
        m.session_first(h)?;
        let mech = unsafe { read_mechanism(mechanism) }?;
        m.sign_init(h, OpKind::Verify, &mech, key)
    })
}

pub(super) unsafe extern "C" fn C_Sign(
    h: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        m.reauth_done(h, OpKind::Sign)?;
        let cap = unsafe { capacity(out, out_len) }?;
        let data = unsafe { in_bytes(data, len) }?;
        unsafe { deliver(out, out_len, m.sign(h, data, cap)) }
    })
}

pub(super) unsafe extern "C" fn C_SignUpdate(
    h: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        m.reauth_done(h, OpKind::Sign)?;
        m.sign_update(h, OpKind::Sign, unsafe { in_bytes(data, len) })
    })
}

pub(super) unsafe extern "C" fn C_SignFinal(
    h: CK_SESSION_HANDLE,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        m.reauth_done(h, OpKind::Sign)?;
        let cap = unsafe { capacity(out, out_len) }?;
        unsafe { deliver(out, out_len, m.sign_final(h, cap)) }
    })
}

pub(super) unsafe extern "C" fn C_Verify(
    h: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
    sig: *mut CK_BYTE,
    sig_len: CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        let data = unsafe { in_bytes(data, len) };
        let sig = unsafe { in_bytes(sig, sig_len) };
        match (data, sig) {
            (Ok(data), Ok(sig)) => m.verify(h, Some(data), sig),
            (Err(e), _) | (_, Err(e)) => {
                // Bad arguments end the operation too.
                let _ = m.sign_update(h, OpKind::Verify, Err(e.clone()));
                Err(e)
            }
        }
    })
}

pub(super) unsafe extern "C" fn C_VerifyUpdate(
    h: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
) -> CK_RV {
    with_module(|m| m.sign_update(h, OpKind::Verify, unsafe { in_bytes(data, len) }))
}

pub(super) unsafe extern "C" fn C_VerifyFinal(
    h: CK_SESSION_HANDLE,
    sig: *mut CK_BYTE,
    sig_len: CK_ULONG,
) -> CK_RV {
    with_module(|m| match unsafe { in_bytes(sig, sig_len) } {
        Ok(sig) => m.verify(h, None, sig),
        Err(e) => {
            let _ = m.sign_update(h, OpKind::Verify, Err(e.clone()));
            Err(e)
        }
    })
}

pub(super) unsafe extern "C" fn C_GenerateKey(
    h: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    with_module(|m| {
        m.session_first(h)?;
        let key = unsafe { out_ref(key) }?;
        let template = unsafe { read_template(template, count) }?;
        m.read_only_first(h, &[&template])?;
        let mech = unsafe { read_mechanism(mechanism) }?;
        let on_token = crate::audit::template_on_token(&template);
        *key = m.audited(
            "C_GenerateKey",
            Some(mech.mechanism),
            None,
            on_token,
            || m.generate_key(h, &mech, &template),
        )?;
        Ok(())
    })
}

#[allow(clippy::too_many_arguments)]
pub(super) unsafe extern "C" fn C_GenerateKeyPair(
    h: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    public: *mut CK_ATTRIBUTE,
    public_count: CK_ULONG,
    private: *mut CK_ATTRIBUTE,
    private_count: CK_ULONG,
    public_key: *mut CK_OBJECT_HANDLE,
    private_key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    with_module(|m| {
        m.session_first(h)?;
        let public_key = unsafe { out_ref(public_key) }?;
        let private_key = unsafe { out_ref(private_key) }?;
        let public = unsafe { read_template(public, public_count) }?;
        let private = unsafe { read_template(private, private_count) }?;
        m.read_only_first(h, &[&public, &private])?;
        let mech = unsafe { read_mechanism(mechanism) }?;
        let on_token =
            crate::audit::template_on_token(&public) || crate::audit::template_on_token(&private);
        let (pub_h, priv_h) = m.audited(
            "C_GenerateKeyPair",
            Some(mech.mechanism),
            None,
            on_token,
            || m.generate_key_pair(h, &mech, &public, &private),
        )?;
        *public_key = pub_h;
        *private_key = priv_h;
        Ok(())
    })
}

pub(super) unsafe extern "C" fn C_WrapKey(
    h: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    wrapping: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        m.session_first(h)?;
        let cap = unsafe { capacity(out, out_len) }?;
        let mech = unsafe { read_mechanism(mechanism) }?;
        // Recorded when it wraps (not for a length query).
        let used = cap.and_then(|_| {
            [wrapping, key]
                .into_iter()
                .filter_map(|o| m.object_facts(h, o).key)
                .find(|k| matches!(k, crate::backend::KeyHandle::Stored(_)))
        });
        let wrapped = m.audited(
            "C_WrapKey",
            Some(mech.mechanism),
            used.as_ref(),
            false,
            || m.wrap_key(h, &mech, wrapping, key, cap),
        );
        unsafe { deliver(out, out_len, wrapped) }
    })
}

#[allow(clippy::too_many_arguments)]
pub(super) unsafe extern "C" fn C_DeriveKey(
    h: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    base: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    with_module(|m| {
        m.session_first(h)?;
        let key = unsafe { out_ref(key) }?;
        let template = unsafe { read_template(template, count) }?;
        m.read_only_first(h, &[&template])?;
        let mech = unsafe { read_mechanism(mechanism) }?;
        let used = m.object_facts(h, base).key;
        let on_token = crate::audit::template_on_token(&template);
        let handles = m.audited(
            "C_DeriveKey",
            Some(mech.mechanism),
            used.as_ref(),
            on_token,
            || match mech.derive {
                None => m.derive_key(h, &mech, base, &template).map(|k| vec![k]),
                Some(_) => m.derive_secret(h, &mech, base, &template),
            },
        )?;
        *key = *handles.first().ok_or(ckr!(CKR_GENERAL_ERROR))?;
        // SAFETY: read_mechanism read this CK_MECHANISM and its array of
        // additional keys (SP 800-108), whose handles go back there.
        unsafe { super::derive_params::write_additional(&*mechanism, &handles[1..]) };
        Ok(())
    })
}

pub(super) unsafe extern "C" fn C_UnwrapKey(
    h: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    unwrapping: CK_OBJECT_HANDLE,
    wrapped: *mut CK_BYTE,
    wrapped_len: CK_ULONG,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    with_module(|m| {
        m.session_first(h)?;
        let key = unsafe { out_ref(key) }?;
        let template = unsafe { read_template(template, count) }?;
        m.read_only_first(h, &[&template])?;
        let mech = unsafe { read_mechanism(mechanism) }?;
        let wrapped = unsafe { in_bytes(wrapped, wrapped_len) }?;
        let used = m.object_facts(h, unwrapping).key;
        let on_token = crate::audit::template_on_token(&template);
        *key = m.audited(
            "C_UnwrapKey",
            Some(mech.mechanism),
            used.as_ref(),
            on_token,
            || m.unwrap_key(h, &mech, unwrapping, wrapped, &template),
        )?;
        Ok(())
    })
}
