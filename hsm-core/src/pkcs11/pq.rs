//! The attributes of PKCS#11 3.2 post-quantum key objects (CKK_ML_DSA,
//! CKK_ML_KEM): CKA_PARAMETER_SET and the key spec it names, the
//! attributes a generated or imported key carries, the signature length.
//! The mechanisms themselves are the module's (its `pq_ops`).

use cryptoki_sys::*;

use super::attrs::{as_bool, as_ulong, bbool, get_bool, get_ulong, ulong, Template};
use super::error::{ckr, Result};
use super::{Attributes, KeySpec};

/// The ML-DSA or ML-KEM spec a CKA_PARAMETER_SET names for a key type.
pub fn spec_of(key_type: CK_KEY_TYPE, parameter_set: CK_ULONG) -> Result<KeySpec> {
    Ok(match (key_type, parameter_set) {
        (CKK_ML_DSA, CKP_ML_DSA_44) => KeySpec::MlDsa44,
        (CKK_ML_DSA, CKP_ML_DSA_65) => KeySpec::MlDsa65,
        (CKK_ML_DSA, CKP_ML_DSA_87) => KeySpec::MlDsa87,
        (CKK_ML_KEM, CKP_ML_KEM_512) => KeySpec::MlKem512,
        (CKK_ML_KEM, CKP_ML_KEM_768) => KeySpec::MlKem768,
        (CKK_ML_KEM, CKP_ML_KEM_1024) => KeySpec::MlKem1024,
        _ => {
            return Err(ckr!(
                CKR_PARAMETER_SET_NOT_SUPPORTED,
                "unknown parameter set for this key type"
            ))
        }
    })
}

/// The key type and CKA_PARAMETER_SET of an ML-DSA or ML-KEM spec.
pub fn parameter_set(spec: KeySpec) -> Option<(CK_KEY_TYPE, CK_ULONG)> {
    Some(match spec {
        KeySpec::MlDsa44 => (CKK_ML_DSA, CKP_ML_DSA_44),
        KeySpec::MlDsa65 => (CKK_ML_DSA, CKP_ML_DSA_65),
        KeySpec::MlDsa87 => (CKK_ML_DSA, CKP_ML_DSA_87),
        KeySpec::MlKem512 => (CKK_ML_KEM, CKP_ML_KEM_512),
        KeySpec::MlKem768 => (CKK_ML_KEM, CKP_ML_KEM_768),
        KeySpec::MlKem1024 => (CKK_ML_KEM, CKP_ML_KEM_1024),
        _ => return None,
    })
}

/// The spec of an ML-DSA or ML-KEM key object (`None` for any other).
pub fn object_spec(a: &Attributes) -> Option<KeySpec> {
    let key_type = get_ulong(a, CKA_KEY_TYPE)?;
    if key_type != CKK_ML_DSA && key_type != CKK_ML_KEM {
        return None;
    }
    spec_of(key_type, get_ulong(a, CKA_PARAMETER_SET)?).ok()
}

/// Adds what a post-quantum key pair's objects carry beyond the common
/// key-pair attributes: CKA_PARAMETER_SET on both halves and, on ML-KEM
/// pairs, CKA_ENCAPSULATE (public) and CKA_DECAPSULATE (private), true
/// unless the template says false. CKA_VALUE (the public key) is on the
/// public half only; the private half's CKA_VALUE and CKA_SEED are never
/// readable (they are not in the object at all).
pub fn finish_pair_attrs(
    spec: KeySpec,
    public_tpl: &Template,
    private_tpl: &Template,
    public: &mut Attributes,
    private: &mut Attributes,
) -> Result<()> {
    let Some((key_type, set)) = parameter_set(spec) else {
        return Ok(());
    };
    let flag = |tpl: &Template, t| -> Result<bool> {
        tpl.iter()
            .find(|(u, _)| *u == t)
            .map_or(Ok(true), |(_, v)| as_bool(v))
    };
    for a in [&mut *public, &mut *private] {
        a.insert(CKA_PARAMETER_SET, ulong(set));
        a.insert(CKA_ENCAPSULATE, bbool(false));
        a.insert(CKA_DECAPSULATE, bbool(false));
    }
    private.remove(&CKA_VALUE);
    if key_type == CKK_ML_KEM {
        public.insert(CKA_ENCAPSULATE, bbool(flag(public_tpl, CKA_ENCAPSULATE)?));
        private.insert(CKA_DECAPSULATE, bbool(flag(private_tpl, CKA_DECAPSULATE)?));
    }
    Ok(())
}

/// The public attributes of a post-quantum key from its DER
/// SubjectPublicKeyInfo: CKA_VALUE (the raw public key) and
/// CKA_PARAMETER_SET; `None` for other specs.
pub fn public_attrs(spec: KeySpec, raw_public: &[u8]) -> Option<Attributes> {
    let (_, set) = parameter_set(spec)?;
    let mut a = Attributes::new();
    a.insert(CKA_VALUE, raw_public.to_vec());
    a.insert(CKA_PARAMETER_SET, ulong(set));
    Some(a)
}

/// The signature length of an ML-DSA key object.
pub fn signature_len(a: &Attributes) -> Option<usize> {
    let spec = object_spec(a)?;
    spec.is_ml_dsa()
        .then(|| crate::mechanisms::ml_dsa_signature_len(spec).ok())
        .flatten()
}

/// Builds an imported ML-DSA or ML-KEM public key's attributes (called
/// by [`super::pubkey::import_public`] with the template's attributes):
/// CKA_PARAMETER_SET and a CKA_VALUE of the set's length are required;
/// CKA_PUBLIC_KEY_INFO is derived. ML-KEM keys encapsulate (CKA_ENCAPSULATE
/// defaults to true) and do not verify.
pub fn import_public(key_type: CK_KEY_TYPE, a: &mut Attributes) -> Result<()> {
    let set = a
        .get(&CKA_PARAMETER_SET)
        .ok_or(ckr!(
            CKR_TEMPLATE_INCOMPLETE,
            "CKA_PARAMETER_SET is required"
        ))
        .and_then(|v| as_ulong(v))?;
    let spec = spec_of(key_type, set)?;
    let value = a
        .get(&CKA_VALUE)
        .ok_or(ckr!(CKR_TEMPLATE_INCOMPLETE, "CKA_VALUE is required"))?;
    let spki = crate::mechanisms::ml_public_key_der(spec, value).map_err(|_| {
        ckr!(
            CKR_ATTRIBUTE_VALUE_INVALID,
            "CKA_VALUE is not a public key of this parameter set"
        )
    })?;
    a.insert(CKA_PUBLIC_KEY_INFO, spki);
    let kem = key_type == CKK_ML_KEM;
    // import_public defaults CKA_VERIFY to true: an ML-KEM key never
    // verifies.
    a.insert(CKA_VERIFY, bbool(!kem && get_bool(a, CKA_VERIFY, true)));
    let encapsulate = kem && get_bool(a, CKA_ENCAPSULATE, true);
    a.insert(CKA_ENCAPSULATE, bbool(encapsulate));
    a.insert(CKA_DECAPSULATE, bbool(false));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_sets_round_trip_and_refuse_the_unknown() {
        for spec in [
            KeySpec::MlDsa44,
            KeySpec::MlDsa65,
            KeySpec::MlDsa87,
            KeySpec::MlKem512,
            KeySpec::MlKem768,
            KeySpec::MlKem1024,
        ] {
            let (t, set) = parameter_set(spec).unwrap();
            assert_eq!(spec_of(t, set).unwrap(), spec);
        }
        assert_eq!(
            spec_of(CKK_ML_DSA, 4).unwrap_err().rv(),
            CKR_PARAMETER_SET_NOT_SUPPORTED
        );
        assert_eq!(parameter_set(KeySpec::EccNistP256), None);
        // The OASIS 3.2 values.
        assert_eq!((CKK_ML_KEM, CKK_ML_DSA), (0x49, 0x4a));
        assert_eq!(
            (CKM_ML_KEM, CKM_ML_DSA, CKM_HASH_ML_DSA),
            (0x17, 0x1d, 0x1f)
        );
        assert_eq!(
            (CKM_ML_KEM_KEY_PAIR_GEN, CKM_ML_DSA_KEY_PAIR_GEN),
            (0x0f, 0x1c)
        );
        assert_eq!(CKA_PARAMETER_SET, 0x61d);
    }
}
