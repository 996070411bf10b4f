//! Mechanisms as a session uses them: their parameters decoded from the
//! C structures' bytes, and what they mean for the backend's operations.
//! The registry (which mechanisms exist, their sizes and flags) is
//! hsm-core's ([`hsm_core::pkcs11::registry`]), re-exported here.

use cryptoki_sys::*;

use crate::backend::{AesMode, WrapMode};
use crate::error::{ckr, Result};

pub use hsm_core::pkcs11::registry::{
    available, lookup, lookup_for, offered, MechanismEntry, MECHANISMS,
};

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
