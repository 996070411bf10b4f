//! The mechanism registry: one table says which mechanisms exist, their
//! true key sizes and flags (for C_GetMechanismList/Info), and whether
//! they need the backend's key operations. Anything not in the table is
//! CKR_MECHANISM_INVALID everywhere.

use cryptoki_sys::*;

use crate::backend::{AesMode, WrapMode};
use crate::error::{ckr, Result};

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
pub fn offered(
    backend: &dyn crate::backend::Backend,
) -> impl Iterator<Item = &'static MechanismEntry> + '_ {
    available(backend.supports_key_mechanisms()).filter(|m| !backend.lacks(m.mechanism))
}

/// Looks a mechanism up among those a backend offers.
pub fn lookup_for(
    backend: &dyn crate::backend::Backend,
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

/// The parameters of CKM_AES_GCM (CK_GCM_PARAMS), copied out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcmParams {
    /// The IV.
    pub iv: Vec<u8>,
    /// Additional authenticated data.
    pub aad: Vec<u8>,
    /// Tag length in bits.
    pub tag_bits: CK_ULONG,
}

/// A mechanism as the caller passed it, with its parameter copied out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mechanism {
    /// CKM_*.
    pub mechanism: CK_MECHANISM_TYPE,
    /// The raw parameter bytes (for flat parameters).
    pub param: Vec<u8>,
    /// The decoded CK_GCM_PARAMS, for CKM_AES_GCM.
    pub gcm: Option<GcmParams>,
    /// The OAEP label (pSourceData) of CKM_RSA_PKCS_OAEP, copied out.
    pub oaep_label: Vec<u8>,
    /// CK_ECDH1_DERIVE_PARAMS of CKM_ECDH1_(COFACTOR_)DERIVE, copied out.
    pub ecdh: Option<EcdhParams>,
    /// The parameter of a secret-key derivation (HKDF, SP 800-108,
    /// ENCRYPT_DATA, concatenation, XOR, extraction), copied out.
    pub derive: Option<DeriveParams>,
    /// CK_EDDSA_PARAMS of CKM_EDDSA, copied out: phFlag and the context.
    pub eddsa: Option<(bool, Vec<u8>)>,
    /// CK_(HASH_)SIGN_ADDITIONAL_CONTEXT of the ML-DSA mechanisms, copied
    /// out (the default when absent).
    pub ml_dsa: Option<crate::pq_ops::SignContext>,
}

/// A secret-key derivation's parameter, copied out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeriveParams {
    /// The derivation.
    pub op: crate::backend::DeriveOp,
    /// The other key's handle (CKM_CONCATENATE_BASE_AND_KEY's key, or an
    /// HKDF salt key).
    pub other: Option<CK_OBJECT_HANDLE>,
    /// The templates of SP 800-108's additional keys, in order.
    pub additional: Vec<crate::attrs::Template>,
}

/// CK_ECDH1_DERIVE_PARAMS, copied out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcdhParams {
    /// CKD_*.
    pub kdf: CK_ULONG,
    /// pSharedData.
    pub shared: Vec<u8>,
    /// pPublicData: the peer's public point.
    pub public: Vec<u8>,
}

/// The AES mode a cipher mechanism names, checking its parameter.
/// GCM takes an IV of 1 to 256 bytes and a tag of 96 to 128 bits.
pub fn aes_mode(m: &Mechanism) -> Result<AesMode> {
    let bad = |why| ckr!(CKR_MECHANISM_PARAM_INVALID, why);
    let iv =
        |p: &[u8]| -> Result<[u8; 16]> { p.try_into().map_err(|_| bad("the IV must be 16 bytes")) };
    Ok(match m.mechanism {
        CKM_DES3_ECB if m.param.is_empty() => AesMode::Des3Ecb,
        CKM_DES3_ECB => return Err(bad("CKM_DES3_ECB takes no parameter")),
        CKM_DES3_CBC | CKM_DES3_CBC_PAD => {
            let iv: [u8; 8] = m
                .param
                .as_slice()
                .try_into()
                .map_err(|_| bad("the DES3 IV must be 8 bytes"))?;
            if m.mechanism == CKM_DES3_CBC {
                AesMode::Des3Cbc(iv)
            } else {
                AesMode::Des3CbcPad(iv)
            }
        }
        CKM_AES_ECB if m.param.is_empty() => AesMode::Ecb,
        CKM_AES_ECB => return Err(bad("CKM_AES_ECB takes no parameter")),
        CKM_AES_CBC => AesMode::Cbc(iv(&m.param)?),
        CKM_AES_CBC_PAD => AesMode::CbcPad(iv(&m.param)?),
        CKM_AES_CTR => {
            // CK_AES_CTR_PARAMS: CK_ULONG ulCounterBits, CK_BYTE cb[16].
            const N: usize = std::mem::size_of::<CK_ULONG>();
            if m.param.len() != N + 16 {
                return Err(bad("CK_AES_CTR_PARAMS expected"));
            }
            let bits =
                CK_ULONG::from_ne_bytes(m.param[..N].try_into().map_err(|_| bad("counter bits"))?);
            if bits == 0 || bits > 128 {
                return Err(bad("ulCounterBits must be 1 to 128"));
            }
            AesMode::Ctr {
                block: iv(&m.param[N..])?,
                counter_bits: bits as u32,
            }
        }
        CKM_AES_GCM => {
            // ulIvBits is ignored, as the spec allows.
            let g = m.gcm.as_ref().ok_or(bad("CK_GCM_PARAMS expected"))?;
            if g.iv.is_empty() || g.iv.len() > 256 {
                return Err(bad("the GCM IV must be 1 to 256 bytes"));
            }
            if !(96..=128).contains(&g.tag_bits) || g.tag_bits % 8 != 0 {
                return Err(bad("the GCM tag must be 96 to 128 bits, in steps of 8"));
            }
            AesMode::Gcm {
                iv: g.iv.clone(),
                aad: g.aad.clone(),
                tag_len: g.tag_bits as usize / 8,
            }
        }
        _ => return Err(ckr!(CKR_MECHANISM_INVALID)),
    })
}

/// The output size bound of an AES operation on `n` input bytes.
pub fn aes_output_len(mode: &AesMode, encrypt: bool, n: usize) -> usize {
    match (mode, encrypt) {
        (AesMode::Gcm { tag_len, .. }, true) => n + tag_len,
        (AesMode::Gcm { tag_len, .. }, false) => n.saturating_sub(*tag_len),
        (AesMode::CbcPad(_), true) => (n / 16 + 1) * 16,
        (AesMode::Des3CbcPad(_), true) => (n / 8 + 1) * 8,
        _ => n,
    }
}

/// The key wrap a mechanism names (it takes no parameter here).
pub fn wrap_mode(m: &Mechanism) -> Result<WrapMode> {
    if !m.param.is_empty() || m.gcm.is_some() {
        return Err(ckr!(
            CKR_MECHANISM_PARAM_INVALID,
            "key wrap takes the default IV only"
        ));
    }
    match m.mechanism {
        CKM_AES_KEY_WRAP => Ok(WrapMode::Kw),
        CKM_AES_KEY_WRAP_PAD | CKM_AES_KEY_WRAP_KWP => Ok(WrapMode::Kwp),
        _ => Err(ckr!(CKR_MECHANISM_INVALID)),
    }
}

/// The size of a wrapped key of `n` bytes.
pub fn wrapped_len(mode: WrapMode, n: usize) -> usize {
    match mode {
        WrapMode::Kw => n + 8,
        WrapMode::Kwp => n.div_ceil(8) * 8 + 8,
    }
}

/// A digest in progress.
pub struct DigestOp {
    ctx: ring::digest::Context,
    /// Whether C_DigestUpdate has been called (then C_Digest is refused).
    pub multipart: bool,
}

impl DigestOp {
    /// Starts a digest; the mechanism takes no parameter.
    pub fn new(mechanism: CK_MECHANISM_TYPE, param_len: usize) -> Result<DigestOp> {
        let alg = match mechanism {
            CKM_SHA256 => &ring::digest::SHA256,
            CKM_SHA384 => &ring::digest::SHA384,
            CKM_SHA512 => &ring::digest::SHA512,
            _ => return Err(ckr!(CKR_MECHANISM_INVALID)),
        };
        if param_len != 0 {
            return Err(ckr!(
                CKR_MECHANISM_PARAM_INVALID,
                "digests take no parameter"
            ));
        }
        Ok(DigestOp {
            ctx: ring::digest::Context::new(alg),
            multipart: false,
        })
    }
    /// The digest's size in bytes.
    pub fn len(&self) -> usize {
        self.ctx.algorithm().output_len()
    }
    /// Whether the output would be empty (never, for these digests).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Feeds data.
    pub fn update(&mut self, data: &[u8]) {
        self.ctx.update(data);
    }
    /// Finishes.
    pub fn finish(self) -> Vec<u8> {
        self.ctx.finish().as_ref().to_vec()
    }
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

    #[test]
    fn digest_known_answer() {
        let mut op = DigestOp::new(CKM_SHA256, 0).unwrap();
        op.update(b"abc");
        assert_eq!(
            op.finish()[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256(\"abc\") starts ba7816bf"
        );
        assert_eq!(
            DigestOp::new(CKM_SHA256, 1).err().unwrap().rv(),
            CKR_MECHANISM_PARAM_INVALID
        );
    }
}
