//! Objects for KMS keys made outside PKCS#11 (CLI, gRPC) in a token's
//! namespace.

use crate::mechanisms::SecretKeyRef;
use crate::KeyMetadata;
use cryptoki_sys::*;

use super::{EmbeddedBackend, KMS_PREFIX, PUBLIC_SUFFIX};
use crate::pkcs11::attrs::{bbool, ulong};
use crate::pkcs11::error::Result;
use crate::pkcs11::{Attributes, KeySpec, KeyUsage};

impl EmbeddedBackend {
    /// Objects for a KMS key that no PKCS#11 application described:
    /// CKA_ID = the key id's bytes, CKA_LABEL = first alias or description.
    /// AES and HMAC keys give one secret key object; RSA, P-256, P-384,
    /// P-521, Ed25519, ML-DSA and ML-KEM keys a private and a public key
    /// object (`:pub`).
    pub(super) fn synthesise(&self, meta: &KeyMetadata) -> Result<Vec<(String, Attributes)>> {
        let alias = self
            .hsm
            .list_aliases(Some(&meta.key_id), Some(1), None)
            .ok()
            .and_then(|page| page.items.into_iter().next())
            .map(|a| a.alias_name.trim_start_matches("alias/").to_string());
        let mut base = Attributes::new();
        base.insert(CKA_ID, meta.key_id.as_bytes().to_vec());
        let label = alias.unwrap_or_else(|| meta.description.clone());
        base.insert(CKA_LABEL, label.into_bytes());
        base.insert(CKA_TOKEN, bbool(true));
        base.insert(CKA_LOCAL, bbool(meta.origin == crate::Origin::AwsKms));
        base.insert(CKA_MODIFIABLE, bbool(false));
        base.insert(CKA_DESTROYABLE, bbool(true));
        for t in [CKA_DERIVE, CKA_COPYABLE, CKA_WRAP, CKA_UNWRAP, CKA_TRUSTED] {
            base.insert(t, bbool(false));
        }
        let secret_flags = |a: &mut Attributes| {
            for t in [
                CKA_PRIVATE,
                CKA_SENSITIVE,
                CKA_ALWAYS_SENSITIVE,
                CKA_NEVER_EXTRACTABLE,
            ] {
                a.insert(t, bbool(true));
            }
            a.insert(CKA_EXTRACTABLE, bbool(false));
            a.insert(CKA_ALWAYS_AUTHENTICATE, bbool(false));
        };
        let spec = meta.key_spec;
        let id = format!("{KMS_PREFIX}{}", meta.key_id);
        if spec.is_symmetric() || spec.is_hmac() {
            let aes = spec.is_symmetric();
            let len = self
                .hsm
                .p11_secret_len(&self.session_keys, SecretKeyRef::Stored(&meta.key_id))
                .unwrap_or(32);
            let mut a = base;
            secret_flags(&mut a);
            a.insert(CKA_CLASS, ulong(CKO_SECRET_KEY));
            a.insert(
                CKA_KEY_TYPE,
                ulong(if aes { CKK_AES } else { CKK_GENERIC_SECRET }),
            );
            a.insert(CKA_VALUE_LEN, ulong(len as CK_ULONG));
            for (t, v) in [
                (CKA_ENCRYPT, aes),
                (CKA_DECRYPT, aes),
                (CKA_SIGN, !aes),
                (CKA_VERIFY, !aes),
            ] {
                a.insert(t, bbool(v));
            }
            if aes {
                a.insert(CKA_WRAP, bbool(true));
                a.insert(CKA_UNWRAP, bbool(true));
            }
            return Ok(vec![(id, a)]);
        }
        let key_type = match spec {
            KeySpec::EccNistP256 | KeySpec::EccNistP384 | KeySpec::EccNistP521 => CKK_EC,
            KeySpec::EccEd25519 => CKK_EC_EDWARDS,
            s if s.is_rsa() => CKK_RSA,
            s => match crate::pkcs11::pq::parameter_set(s) {
                Some((key_type, _)) => key_type,
                None => return Ok(Vec::new()),
            },
        };
        // A disabled key has no readable public key: it shows no objects.
        let Ok(public) = self.hsm.get_public_key(&meta.key_id) else {
            return Ok(Vec::new());
        };
        let mut parts = crate::pkcs11::pubkey::public_attrs(spec, &public.public_key)?;
        parts.insert(CKA_PUBLIC_KEY_INFO, public.public_key.clone());
        let signs = meta.key_usage == KeyUsage::SignVerify;
        let mut private = base.clone();
        secret_flags(&mut private);
        private.insert(CKA_CLASS, ulong(CKO_PRIVATE_KEY));
        private.insert(CKA_KEY_TYPE, ulong(key_type));
        private.insert(CKA_SIGN, bbool(signs));
        private.insert(CKA_DECRYPT, bbool(!signs));
        private.extend(
            parts
                .iter()
                .filter(|(t, _)| **t != CKA_EC_POINT)
                .map(|(t, v)| (*t, v.clone())),
        );
        let mut public_obj = base;
        public_obj.insert(CKA_CLASS, ulong(CKO_PUBLIC_KEY));
        public_obj.insert(CKA_KEY_TYPE, ulong(key_type));
        public_obj.insert(CKA_PRIVATE, bbool(false));
        // Destroy the private half to delete the key; this one only mirrors it.
        public_obj.insert(CKA_DESTROYABLE, bbool(false));
        public_obj.insert(CKA_VERIFY, bbool(signs));
        public_obj.insert(CKA_ENCRYPT, bbool(!signs));
        public_obj.extend(parts);
        // ML-DSA / ML-KEM: CKA_PARAMETER_SET, no private CKA_VALUE; an
        // ML-KEM pair encapsulates and decapsulates only.
        let none = Vec::new();
        crate::pkcs11::pq::finish_pair_attrs(spec, &none, &none, &mut public_obj, &mut private)?;
        if key_type == CKK_ML_KEM {
            for t in [CKA_SIGN, CKA_DECRYPT] {
                private.insert(t, bbool(false));
            }
            for t in [CKA_VERIFY, CKA_ENCRYPT] {
                public_obj.insert(t, bbool(false));
            }
        }
        Ok(vec![
            (id.clone(), private),
            (format!("{id}{PUBLIC_SUFFIX}"), public_obj),
        ])
    }
}
