//! The mechanism registry: one table says which mechanisms exist, their
//! true key sizes and flags (for C_GetMechanismList/Info), and whether
//! they need the backend's key operations. Anything not in the table is
//! CKR_MECHANISM_INVALID everywhere. The audit log names mechanisms as
//! the table does.

use cryptoki_sys::*;

use super::error::{ckr, Result};

/// One mechanism the module knows.
#[derive(Debug, Clone, Copy)]
pub struct MechanismEntry {
    /// CKM_*.
    pub mechanism: CK_MECHANISM_TYPE,
    /// Its `CKM_*` name (audit records name mechanisms so).
    pub name: &'static str,
    /// Smallest key size (bytes for AES/HMAC, bits for RSA/EC).
    pub min_key: CK_ULONG,
    /// Largest key size.
    pub max_key: CK_ULONG,
    /// CKF_* flags.
    pub flags: CK_FLAGS,
    /// Whether it needs key operations from the backend.
    pub needs_keys: bool,
    /// Whether this build implements it (only those are listed).
    pub ready: bool,
}

const EC_FLAGS: CK_FLAGS = CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
const ED: CK_FLAGS = CKF_SIGN | CKF_VERIFY;

macro_rules! m {
    ($mech:ident, $min:expr, $max:expr, $flags:expr, $keys:expr) => {
        m!($mech, $min, $max, $flags, $keys, true)
    };
    ($mech:ident, $min:expr, $max:expr, $flags:expr, $keys:expr, $ready:expr) => {
        MechanismEntry {
            mechanism: $mech,
            name: stringify!($mech),
            min_key: $min,
            max_key: $max,
            flags: $flags,
            needs_keys: $keys,
            ready: $ready,
        }
    };
}

/// Every mechanism, in the order C_GetMechanismList returns them.
pub const MECHANISMS: &[MechanismEntry] = &[
    m!(CKM_SHA256, 0, 0, CKF_DIGEST, false),
    m!(CKM_SHA384, 0, 0, CKF_DIGEST, false),
    m!(CKM_SHA512, 0, 0, CKF_DIGEST, false),
    m!(CKM_AES_KEY_GEN, 16, 32, CKF_GENERATE, true),
    m!(CKM_AES_GCM, 16, 32, CKF_ENCRYPT | CKF_DECRYPT, true),
    m!(CKM_AES_CBC, 16, 32, CKF_ENCRYPT | CKF_DECRYPT, true),
    m!(CKM_AES_CBC_PAD, 16, 32, CKF_ENCRYPT | CKF_DECRYPT, true),
    m!(CKM_AES_CTR, 16, 32, CKF_ENCRYPT | CKF_DECRYPT, true),
    m!(CKM_AES_ECB, 16, 32, CKF_ENCRYPT | CKF_DECRYPT, true),
    m!(CKM_AES_KEY_WRAP, 16, 32, CKF_WRAP | CKF_UNWRAP, true),
    // Legacy triple DES (24-byte keys, session objects only).
    m!(CKM_DES3_KEY_GEN, 24, 24, CKF_GENERATE, true),
    m!(CKM_DES3_ECB, 24, 24, CKF_ENCRYPT | CKF_DECRYPT, true),
    m!(CKM_DES3_CBC, 24, 24, CKF_ENCRYPT | CKF_DECRYPT, true),
    m!(CKM_DES3_CBC_PAD, 24, 24, CKF_ENCRYPT | CKF_DECRYPT, true),
    m!(CKM_AES_KEY_WRAP_PAD, 16, 32, CKF_WRAP | CKF_UNWRAP, true),
    m!(CKM_AES_KEY_WRAP_KWP, 16, 32, CKF_WRAP | CKF_UNWRAP, true),
    m!(
        CKM_RSA_PKCS_KEY_PAIR_GEN,
        1024,
        8192,
        CKF_GENERATE_KEY_PAIR,
        true
    ),
    m!(
        CKM_RSA_PKCS,
        1024,
        8192,
        CKF_SIGN | CKF_VERIFY | CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP,
        true
    ),
    m!(
        CKM_RSA_X_509,
        1024,
        8192,
        CKF_SIGN | CKF_VERIFY | CKF_ENCRYPT | CKF_DECRYPT,
        true
    ),
    m!(CKM_SHA1_RSA_PKCS, 1024, 8192, CKF_SIGN | CKF_VERIFY, true),
    m!(CKM_SHA224_RSA_PKCS, 1024, 8192, CKF_SIGN | CKF_VERIFY, true),
    m!(CKM_SHA256_RSA_PKCS, 1024, 8192, CKF_SIGN | CKF_VERIFY, true),
    m!(CKM_SHA384_RSA_PKCS, 1024, 8192, CKF_SIGN | CKF_VERIFY, true),
    m!(CKM_SHA512_RSA_PKCS, 1024, 8192, CKF_SIGN | CKF_VERIFY, true),
    m!(CKM_RSA_PKCS_PSS, 1024, 8192, CKF_SIGN | CKF_VERIFY, true),
    m!(
        CKM_SHA1_RSA_PKCS_PSS,
        1024,
        8192,
        CKF_SIGN | CKF_VERIFY,
        true
    ),
    m!(
        CKM_SHA224_RSA_PKCS_PSS,
        1024,
        8192,
        CKF_SIGN | CKF_VERIFY,
        true
    ),
    m!(
        CKM_SHA256_RSA_PKCS_PSS,
        1024,
        8192,
        CKF_SIGN | CKF_VERIFY,
        true
    ),
    m!(
        CKM_SHA384_RSA_PKCS_PSS,
        1024,
        8192,
        CKF_SIGN | CKF_VERIFY,
        true
    ),
    m!(
        CKM_SHA512_RSA_PKCS_PSS,
        1024,
        8192,
        CKF_SIGN | CKF_VERIFY,
        true
    ),
    m!(
        CKM_RSA_PKCS_OAEP,
        1024,
        8192,
        CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP,
        true
    ),
    m!(
        CKM_EC_KEY_PAIR_GEN,
        256,
        521,
        CKF_GENERATE_KEY_PAIR | EC_FLAGS,
        true
    ),
    m!(CKM_ECDSA, 256, 521, CKF_SIGN | CKF_VERIFY | EC_FLAGS, true),
    m!(
        CKM_ECDSA_SHA256,
        256,
        521,
        CKF_SIGN | CKF_VERIFY | EC_FLAGS,
        true
    ),
    m!(
        CKM_ECDSA_SHA384,
        256,
        521,
        CKF_SIGN | CKF_VERIFY | EC_FLAGS,
        true
    ),
    m!(
        CKM_ECDSA_SHA512,
        256,
        521,
        CKF_SIGN | CKF_VERIFY | EC_FLAGS,
        true
    ),
    m!(
        CKM_EC_EDWARDS_KEY_PAIR_GEN,
        255,
        255,
        CKF_GENERATE_KEY_PAIR,
        true
    ),
    m!(CKM_EDDSA, 255, 255, ED, true),
    m!(
        CKM_EC_MONTGOMERY_KEY_PAIR_GEN,
        255,
        255,
        CKF_GENERATE_KEY_PAIR,
        true
    ),
    m!(CKM_GENERIC_SECRET_KEY_GEN, 1, 512, CKF_GENERATE, true),
    m!(CKM_SHA_1_KEY_GEN, 1, 512, CKF_GENERATE, true),
    m!(CKM_SHA224_KEY_GEN, 1, 512, CKF_GENERATE, true),
    m!(CKM_SHA256_KEY_GEN, 1, 512, CKF_GENERATE, true),
    m!(CKM_SHA384_KEY_GEN, 1, 512, CKF_GENERATE, true),
    m!(CKM_SHA512_KEY_GEN, 1, 512, CKF_GENERATE, true),
    m!(CKM_SHA256_HMAC, 1, 512, CKF_SIGN | CKF_VERIFY, true),
    m!(CKM_SHA384_HMAC, 1, 512, CKF_SIGN | CKF_VERIFY, true),
    m!(CKM_SHA512_HMAC, 1, 512, CKF_SIGN | CKF_VERIFY, true),
    m!(CKM_SHA_1_HMAC, 1, 512, CKF_SIGN | CKF_VERIFY, true),
    m!(CKM_SHA224_HMAC, 1, 512, CKF_SIGN | CKF_VERIFY, true),
    m!(CKM_SHA_1_HMAC_GENERAL, 1, 512, CKF_SIGN | CKF_VERIFY, true),
    m!(CKM_SHA224_HMAC_GENERAL, 1, 512, CKF_SIGN | CKF_VERIFY, true),
    m!(CKM_SHA256_HMAC_GENERAL, 1, 512, CKF_SIGN | CKF_VERIFY, true),
    m!(CKM_SHA384_HMAC_GENERAL, 1, 512, CKF_SIGN | CKF_VERIFY, true),
    m!(CKM_SHA512_HMAC_GENERAL, 1, 512, CKF_SIGN | CKF_VERIFY, true),
    m!(CKM_AES_CMAC, 16, 32, CKF_SIGN | CKF_VERIFY, true),
    m!(CKM_AES_CMAC_GENERAL, 16, 32, CKF_SIGN | CKF_VERIFY, true),
    m!(CKM_ECDH1_DERIVE, 255, 521, CKF_DERIVE | EC_FLAGS, true),
    m!(
        CKM_ECDH1_COFACTOR_DERIVE,
        255,
        521,
        CKF_DERIVE | EC_FLAGS,
        true
    ),
    // Secret-key derivations: base key sizes in bytes (SP 800-108: bits,
    // as its section of the specification says).
    m!(CKM_HKDF_DERIVE, 1, 512, CKF_DERIVE, true),
    m!(CKM_HKDF_DATA, 1, 512, CKF_DERIVE, true),
    m!(CKM_SP800_108_COUNTER_KDF, 8, 4096, CKF_DERIVE, true),
    m!(CKM_SP800_108_FEEDBACK_KDF, 8, 4096, CKF_DERIVE, true),
    m!(CKM_AES_ECB_ENCRYPT_DATA, 16, 32, CKF_DERIVE, true),
    m!(CKM_AES_CBC_ENCRYPT_DATA, 16, 32, CKF_DERIVE, true),
    m!(CKM_CONCATENATE_BASE_AND_KEY, 1, 512, CKF_DERIVE, true),
    m!(CKM_CONCATENATE_BASE_AND_DATA, 1, 512, CKF_DERIVE, true),
    m!(CKM_CONCATENATE_DATA_AND_BASE, 1, 512, CKF_DERIVE, true),
    m!(CKM_XOR_BASE_AND_DATA, 1, 512, CKF_DERIVE, true),
    m!(CKM_EXTRACT_KEY_FROM_KEY, 1, 512, CKF_DERIVE, true),
    // PKCS#11 3.2 post-quantum (pq_ops): key sizes are the public key's
    // length in bytes, as the 3.2 specification says (ML-DSA-44 to -87,
    // ML-KEM-512 to -1024).
    m!(
        CKM_ML_DSA_KEY_PAIR_GEN,
        1312,
        2592,
        CKF_GENERATE_KEY_PAIR,
        true
    ),
    m!(CKM_ML_DSA, 1312, 2592, CKF_SIGN | CKF_VERIFY, true),
    m!(CKM_HASH_ML_DSA, 1312, 2592, CKF_SIGN | CKF_VERIFY, true),
    m!(
        CKM_HASH_ML_DSA_SHA224,
        1312,
        2592,
        CKF_SIGN | CKF_VERIFY,
        true
    ),
    m!(
        CKM_HASH_ML_DSA_SHA256,
        1312,
        2592,
        CKF_SIGN | CKF_VERIFY,
        true
    ),
    m!(
        CKM_HASH_ML_DSA_SHA384,
        1312,
        2592,
        CKF_SIGN | CKF_VERIFY,
        true
    ),
    m!(
        CKM_HASH_ML_DSA_SHA512,
        1312,
        2592,
        CKF_SIGN | CKF_VERIFY,
        true
    ),
    m!(
        CKM_HASH_ML_DSA_SHA3_256,
        1312,
        2592,
        CKF_SIGN | CKF_VERIFY,
        true
    ),
    m!(
        CKM_HASH_ML_DSA_SHA3_384,
        1312,
        2592,
        CKF_SIGN | CKF_VERIFY,
        true
    ),
    m!(
        CKM_HASH_ML_DSA_SHA3_512,
        1312,
        2592,
        CKF_SIGN | CKF_VERIFY,
        true
    ),
    m!(
        CKM_ML_KEM_KEY_PAIR_GEN,
        800,
        1568,
        CKF_GENERATE_KEY_PAIR,
        true
    ),
    m!(
        CKM_ML_KEM,
        800,
        1568,
        CKF_ENCAPSULATE | CKF_DECAPSULATE,
        true
    ),
];

/// The mechanisms available with or without backend key operations.
pub fn available(with_keys: bool) -> impl Iterator<Item = &'static MechanismEntry> {
    MECHANISMS
        .iter()
        .filter(move |m| m.ready && (with_keys || !m.needs_keys))
}

/// The mechanisms a backend offers.
pub fn offered(backend: &dyn super::Backend) -> impl Iterator<Item = &'static MechanismEntry> + '_ {
    available(backend.supports_key_mechanisms()).filter(|m| !backend.lacks(m.mechanism))
}

/// Looks a mechanism up among those a backend offers.
pub fn lookup_for(
    backend: &dyn super::Backend,
    mechanism: CK_MECHANISM_TYPE,
) -> Result<&'static MechanismEntry> {
    offered(backend)
        .find(|m| m.mechanism == mechanism)
        .ok_or(ckr!(CKR_MECHANISM_INVALID))
}

/// Looks a mechanism up; unknown or unavailable is CKR_MECHANISM_INVALID.
pub fn lookup(mechanism: CK_MECHANISM_TYPE, with_keys: bool) -> Result<&'static MechanismEntry> {
    available(with_keys)
        .find(|m| m.mechanism == mechanism)
        .ok_or(ckr!(CKR_MECHANISM_INVALID))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_answers_and_refuses() {
        assert_eq!(lookup(CKM_SHA256, false).unwrap().flags, CKF_DIGEST);
        assert_eq!(
            lookup(CKM_AES_GCM, false).unwrap_err().rv(),
            CKR_MECHANISM_INVALID
        );
        assert_eq!(lookup(CKM_AES_GCM, true).unwrap().max_key, 32);
        assert_eq!(lookup(CKM_DES3_CBC, true).unwrap().max_key, 24);
        assert_eq!(
            lookup(CKM_MD5, true).unwrap_err().rv(),
            CKR_MECHANISM_INVALID
        );
        assert_eq!(available(false).count(), 3);
    }
}
