//! The symmetric key derivations of PKCS#11 (C_DeriveKey on a secret base
//! key): HKDF (RFC 5869; CKM_HKDF_DERIVE / CKM_HKDF_DATA), the SP 800-108
//! counter and feedback KDFs over HMAC or AES-CMAC (with several keys from
//! one call), AES-ECB/CBC encryption of data (CKM_AES_*_ENCRYPT_DATA), and
//! the simple ones: concatenation of the base key with another key or with
//! data, XOR with data, and extraction of a bit string.
//!
//! The base key's bytes (and the other key's) never leave the core: the
//! result becomes new keys made here, except for CKM_HKDF_DATA, whose
//! output is data by definition.

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::hsm::Hsm;
use crate::mechanisms::{DerivedKeySpec, SecretKeyRef};
use crate::token::{CopiedKey, SessionKeys};

/// Largest output of one derivation, in bytes (all keys together).
pub const MAX_DERIVED: usize = 4096;

/// The PRF of an SP 800-108 KDF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prf {
    /// HMAC with SHA-1 or SHA-2, named by the digest length (20, 28, 32,
    /// 48, 64).
    Hmac(usize),
    /// AES-CMAC (the base key is an AES key).
    AesCmac,
}

impl Prf {
    /// The PRF's output length in bytes.
    pub fn len(self) -> usize {
        match self {
            Prf::Hmac(n) => n,
            Prf::AesCmac => 16,
        }
    }

    /// Never empty.
    pub fn is_empty(self) -> bool {
        false
    }
}

/// One field of the SP 800-108 PRF input, in the caller's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KbkdfField {
    /// The counter i (from 1): the iteration variable of the counter mode,
    /// or the optional counter of the feedback mode.
    Counter {
        /// Little-endian encoding.
        little_endian: bool,
        /// Its width in bits (8, 16, 24 or 32).
        bits: u32,
    },
    /// The feedback mode's iteration variable: K(i-1) (K(0) = the IV).
    Chain,
    /// The length L of the derived keying material, in bits.
    DkmLength {
        /// L counts whole PRF outputs (SUM_OF_SEGMENTS) rather than the
        /// keys' lengths (SUM_OF_KEYS).
        segments: bool,
        /// Little-endian encoding.
        little_endian: bool,
        /// Its width in bits (8 to 64, whole bytes).
        bits: u32,
    },
    /// Bytes given by the caller (label, separator, context, ...).
    Bytes(Vec<u8>),
}

/// The salt of an HKDF extraction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HkdfSalt {
    /// CKF_HKDF_SALT_NULL: HashLen zero bytes.
    Null,
    /// CKF_HKDF_SALT_DATA.
    Data(Vec<u8>),
    /// CKF_HKDF_SALT_KEY: the value of the derivation's other key.
    Key,
}

/// A derivation from a secret base key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeriveOp {
    /// HKDF (RFC 5869): extract, expand, or both.
    Hkdf {
        /// The digest length (32, 48, 64; 20 and 28 for SHA-1/224).
        hash_len: usize,
        /// Run HKDF-Extract (the base key is the IKM).
        extract: bool,
        /// Run HKDF-Expand (on the PRK, or on the base key itself).
        expand: bool,
        /// The extraction's salt.
        salt: HkdfSalt,
        /// The expansion's info.
        info: Vec<u8>,
    },
    /// SP 800-108 KDF in counter mode (`feedback_iv` `None`) or feedback
    /// mode (with its IV, possibly empty).
    Kbkdf {
        /// The PRF.
        prf: Prf,
        /// The feedback mode's IV.
        feedback_iv: Option<Vec<u8>>,
        /// The PRF input's fields.
        fields: Vec<KbkdfField>,
    },
    /// CKM_AES_ECB_ENCRYPT_DATA (`iv` `None`) / CKM_AES_CBC_ENCRYPT_DATA:
    /// the key is the encryption of `data` (whole blocks) under the base.
    AesEncryptData {
        /// The CBC IV.
        iv: Option<[u8; 16]>,
        /// The data.
        data: Vec<u8>,
    },
    /// CKM_CONCATENATE_BASE_AND_KEY: base || other key.
    ConcatBaseAndKey,
    /// CKM_CONCATENATE_BASE_AND_DATA: base || data.
    ConcatBaseAndData(Vec<u8>),
    /// CKM_CONCATENATE_DATA_AND_BASE: data || base.
    ConcatDataAndBase(Vec<u8>),
    /// CKM_XOR_BASE_AND_DATA: base XOR data (the shorter length).
    XorBaseAndData(Vec<u8>),
    /// CKM_EXTRACT_KEY_FROM_KEY: bits of the base from this bit on (bit 0
    /// is the first byte's most significant bit), wrapping around.
    ExtractKeyFromKey(u64),
}

impl DeriveOp {
    /// Whether the result reveals the base key's bits (concatenation, XOR,
    /// extraction): such a key is sensitive and unextractable when its base
    /// is (PKCS#11 3.0 section 2.43).
    pub fn reversible(&self) -> bool {
        matches!(
            self,
            DeriveOp::ConcatBaseAndKey
                | DeriveOp::ConcatBaseAndData(_)
                | DeriveOp::ConcatDataAndBase(_)
                | DeriveOp::XorBaseAndData(_)
                | DeriveOp::ExtractKeyFromKey(_)
        )
    }

    /// Whether the derivation reads a second key.
    pub fn uses_other_key(&self) -> bool {
        matches!(
            self,
            DeriveOp::ConcatBaseAndKey
                | DeriveOp::Hkdf {
                    extract: true,
                    salt: HkdfSalt::Key,
                    ..
                }
        )
    }
}

fn bad(why: &str) -> Error {
    Error::validation(why)
}

fn hmac_alg(len: usize) -> Result<aws_lc_rs::hmac::Algorithm> {
    use aws_lc_rs::hmac;
    Ok(match len {
        20 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        28 => hmac::HMAC_SHA224,
        32 => hmac::HMAC_SHA256,
        48 => hmac::HMAC_SHA384,
        64 => hmac::HMAC_SHA512,
        _ => return Err(bad("unsupported hash")),
    })
}

fn hkdf_alg(len: usize) -> Result<aws_lc_rs::hkdf::Algorithm> {
    use aws_lc_rs::hkdf;
    Ok(match len {
        20 => hkdf::HKDF_SHA1_FOR_LEGACY_USE_ONLY,
        32 => hkdf::HKDF_SHA256,
        48 => hkdf::HKDF_SHA384,
        64 => hkdf::HKDF_SHA512,
        _ => return Err(bad("HKDF needs SHA-1, SHA-256, SHA-384 or SHA-512")),
    })
}

/// The output length aws-lc-rs's HKDF-Expand is asked for.
struct OutLen(usize);

impl aws_lc_rs::hkdf::KeyType for OutLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF as PKCS#11 runs it: the derived bytes of length `len`.
#[allow(clippy::too_many_arguments)]
fn hkdf(
    base: &[u8],
    other: Option<&[u8]>,
    hash_len: usize,
    extract: bool,
    expand: bool,
    salt: &HkdfSalt,
    info: &[u8],
    len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    if !extract && !expand {
        return Err(bad("HKDF must extract, expand or both"));
    }
    let prk: Zeroizing<Vec<u8>> = if extract {
        let salt: Zeroizing<Vec<u8>> = match salt {
            HkdfSalt::Null => Zeroizing::new(vec![0u8; hash_len]),
            HkdfSalt::Data(d) => Zeroizing::new(d.clone()),
            HkdfSalt::Key => Zeroizing::new(
                other
                    .ok_or_else(|| bad("the salt key is missing"))?
                    .to_vec(),
            ),
        };
        // PRK = HMAC-Hash(salt, IKM), as RFC 5869 section 2.2 defines it.
        let k = aws_lc_rs::hmac::Key::new(hmac_alg(hash_len)?, &salt);
        Zeroizing::new(aws_lc_rs::hmac::sign(&k, base).as_ref().to_vec())
    } else {
        Zeroizing::new(base.to_vec())
    };
    if !expand {
        if len > prk.len() {
            return Err(bad("an extracted key is at most the hash length"));
        }
        return Ok(Zeroizing::new(prk[..len].to_vec()));
    }
    if len > 255 * hash_len {
        return Err(bad("HKDF-Expand gives at most 255 hash lengths"));
    }
    let prk = aws_lc_rs::hkdf::Prk::new_less_safe(hkdf_alg(hash_len)?, &prk);
    let info = [info];
    let okm = prk
        .expand(&info, OutLen(len))
        .map_err(|_| bad("HKDF-Expand failed"))?;
    let mut out = Zeroizing::new(vec![0u8; len]);
    okm.fill(&mut out).map_err(|_| bad("HKDF-Expand failed"))?;
    Ok(out)
}

/// One PRF output.
fn prf_run(prf: Prf, key: &[u8], input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    match prf {
        Prf::Hmac(n) => {
            let k = aws_lc_rs::hmac::Key::new(hmac_alg(n)?, key);
            Ok(Zeroizing::new(
                aws_lc_rs::hmac::sign(&k, input).as_ref().to_vec(),
            ))
        }
        Prf::AesCmac => Ok(Zeroizing::new(super::cmac::cmac(key, input)?.to_vec())),
    }
}

/// An unsigned value in `bits` (whole bytes) in either byte order.
fn encode(value: u64, bits: u32, little_endian: bool) -> Result<Vec<u8>> {
    if bits == 0 || bits > 64 || !bits.is_multiple_of(8) {
        return Err(bad(
            "a counter or length field is 8 to 64 bits, whole bytes",
        ));
    }
    let n = (bits / 8) as usize;
    if bits < 64 && value >> bits != 0 {
        return Err(bad("the value does not fit its field"));
    }
    let be = value.to_be_bytes();
    let mut out = be[8 - n..].to_vec();
    if little_endian {
        out.reverse();
    }
    Ok(out)
}

/// The SP 800-108 KDF: one byte string per key of `lens`, each from its
/// own PRF outputs (PKCS#11: keys never share a segment).
fn kbkdf(
    base: &[u8],
    prf: Prf,
    feedback_iv: Option<&[u8]>,
    fields: &[KbkdfField],
    lens: &[usize],
) -> Result<Vec<Zeroizing<Vec<u8>>>> {
    let h = prf.len();
    let feedback = feedback_iv.is_some();
    let count = |f: fn(&KbkdfField) -> bool| fields.iter().filter(|x| f(x)).count();
    let counters = count(|f| matches!(f, KbkdfField::Counter { .. }));
    let chains = count(|f| matches!(f, KbkdfField::Chain));
    let lengths = count(|f| matches!(f, KbkdfField::DkmLength { .. }));
    if feedback {
        if chains != 1 || counters > 1 {
            return Err(bad(
                "the feedback mode takes one iteration variable and at most one counter",
            ));
        }
    } else if counters != 1 || chains != 0 {
        return Err(bad("the counter mode takes exactly one counter"));
    }
    if lengths > 1 {
        return Err(bad("at most one DKM length field"));
    }
    if prf == Prf::AesCmac && !matches!(base.len(), 16 | 24 | 32) {
        return Err(Error::InvalidKeyUsage(
            "an AES-CMAC PRF needs an AES key".into(),
        ));
    }
    let segments: Vec<usize> = lens.iter().map(|l| l.div_ceil(h)).collect();
    let total_segments: usize = segments.iter().sum();
    let total_keys: usize = lens.iter().sum();
    if total_keys == 0 || lens.contains(&0) || total_keys > MAX_DERIVED {
        return Err(bad("derived keys are 1 byte or more, 4096 in all at most"));
    }
    let mut out = Vec::with_capacity(lens.len());
    let mut chain: Zeroizing<Vec<u8>> = Zeroizing::new(feedback_iv.unwrap_or_default().to_vec());
    let mut i: u64 = 0;
    let mut input = Zeroizing::new(Vec::new());
    for (key, &len) in lens.iter().enumerate() {
        let mut bytes = Zeroizing::new(Vec::with_capacity(segments[key] * h));
        for _ in 0..segments[key] {
            i += 1;
            input.clear();
            for f in fields {
                match f {
                    KbkdfField::Counter {
                        little_endian,
                        bits,
                    } => {
                        if *bits > 32 {
                            return Err(bad("a counter is 8 to 32 bits"));
                        }
                        input.extend_from_slice(&encode(i, *bits, *little_endian)?);
                    }
                    KbkdfField::Chain => input.extend_from_slice(&chain),
                    KbkdfField::DkmLength {
                        segments: by_segments,
                        little_endian,
                        bits,
                    } => {
                        let bytes = if *by_segments {
                            total_segments * h
                        } else {
                            total_keys
                        };
                        input.extend_from_slice(&encode(bytes as u64 * 8, *bits, *little_endian)?);
                    }
                    KbkdfField::Bytes(b) => input.extend_from_slice(b),
                }
            }
            let k = prf_run(prf, base, &input)?;
            bytes.extend_from_slice(&k);
            chain = k;
        }
        bytes.truncate(len);
        out.push(bytes);
    }
    Ok(out)
}

/// Bits of `base` from bit `start` on (bit 0: the first byte's most
/// significant bit), `len` bytes of them, wrapping around.
fn extract_bits(base: &[u8], start: u64, len: usize) -> Result<Zeroizing<Vec<u8>>> {
    if base.is_empty() || len > base.len() {
        return Err(bad("the derived key is longer than the base key"));
    }
    let nbits = base.len() as u64 * 8;
    let mut out = Zeroizing::new(vec![0u8; len]);
    for (j, byte) in out.iter_mut().enumerate() {
        for b in 0..8u64 {
            let pos = (start + j as u64 * 8 + b) % nbits;
            let bit = (base[(pos / 8) as usize] >> (7 - pos % 8)) & 1;
            *byte |= bit << (7 - b);
        }
    }
    Ok(out)
}

/// The prefix of `natural` of length `len` (at most its length).
fn take(natural: Zeroizing<Vec<u8>>, len: usize) -> Result<Zeroizing<Vec<u8>>> {
    if len > natural.len() {
        return Err(bad(
            "the derived key is longer than the derivation's output",
        ));
    }
    Ok(Zeroizing::new(natural[..len].to_vec()))
}

/// Runs a derivation on key bytes: one byte string per length of `lens`
/// (several only for the SP 800-108 KDFs).
pub(crate) fn derive_bytes(
    base: &[u8],
    other: Option<&[u8]>,
    op: &DeriveOp,
    lens: &[usize],
) -> Result<Vec<Zeroizing<Vec<u8>>>> {
    if lens.is_empty() || lens.iter().sum::<usize>() > MAX_DERIVED {
        return Err(bad("too much keying material asked for"));
    }
    if let DeriveOp::Kbkdf {
        prf,
        feedback_iv,
        fields,
    } = op
    {
        return kbkdf(base, *prf, feedback_iv.as_deref(), fields, lens);
    }
    let [len] = lens else {
        return Err(bad("this derivation makes one key"));
    };
    let len = *len;
    let value = match op {
        DeriveOp::Hkdf {
            hash_len,
            extract,
            expand,
            salt,
            info,
        } => hkdf(base, other, *hash_len, *extract, *expand, salt, info, len)?,
        DeriveOp::AesEncryptData { iv, data } => {
            if data.is_empty() || !data.len().is_multiple_of(16) {
                return Err(bad("the data is a whole number of AES blocks"));
            }
            let mode = match iv {
                Some(iv) => super::AesMode::Cbc(*iv),
                None => super::AesMode::Ecb,
            };
            take(super::aes_run(base, &mode, true, data)?, len)?
        }
        DeriveOp::ConcatBaseAndKey => {
            let other = other.ok_or_else(|| bad("the other key is missing"))?;
            take(Zeroizing::new([base, other].concat()), len)?
        }
        DeriveOp::ConcatBaseAndData(d) => take(Zeroizing::new([base, d].concat()), len)?,
        DeriveOp::ConcatDataAndBase(d) => take(Zeroizing::new([d, base].concat()), len)?,
        DeriveOp::XorBaseAndData(d) => take(
            Zeroizing::new(base.iter().zip(d).map(|(a, b)| a ^ b).collect()),
            len,
        )?,
        DeriveOp::ExtractKeyFromKey(start) => extract_bits(base, *start, len)?,
        DeriveOp::Kbkdf { .. } => return Err(Error::Internal("handled above".into())),
    };
    Ok(vec![value])
}

impl Hsm {
    /// Runs `f` on the bytes of the base key and of the other key (if any).
    fn with_two_secrets<T>(
        &self,
        keys: &SessionKeys,
        base: SecretKeyRef<'_>,
        other: Option<SecretKeyRef<'_>>,
        f: impl FnOnce(&[u8], Option<&[u8]>) -> Result<T>,
    ) -> Result<T> {
        // The other key's bytes first: with_secret holds the session
        // key table (or the state) while it runs, so the calls never nest.
        let other = match other {
            Some(o) => Some(self.with_secret(keys, o, |o| Ok(Zeroizing::new(o.to_vec())))?),
            None => None,
        };
        self.with_secret(keys, base, |b| f(b, other.as_ref().map(|o| o.as_slice())))
    }

    /// Derives new secret keys (one per spec of `new`; several only for
    /// the SP 800-108 KDFs) from a secret base key and, for
    /// CKM_CONCATENATE_BASE_AND_KEY or an HKDF salt key, a second one.
    /// The caller has checked that the keys may derive. A bad parameter
    /// or length is a ValidationException; nothing is made on failure.
    pub fn p11_derive(
        &self,
        keys: &SessionKeys,
        base: SecretKeyRef<'_>,
        other: Option<SecretKeyRef<'_>>,
        op: &DeriveOp,
        new: &[DerivedKeySpec<'_>],
    ) -> Result<Vec<CopiedKey>> {
        let lens: Vec<usize> = new.iter().map(|n| n.len).collect();
        let values =
            self.with_two_secrets(keys, base, other, |b, o| derive_bytes(b, o, op, &lens))?;
        let mut made: Vec<CopiedKey> = Vec::with_capacity(values.len());
        for (value, spec) in values.iter().zip(new) {
            match self.p11_store_derived(keys, value, *spec) {
                Ok(k) => made.push(k),
                Err(e) => {
                    // All or nothing: the keys made so far go again.
                    for k in made {
                        let _ = self.p11_forget_derived(keys, k);
                    }
                    return Err(e);
                }
            }
        }
        Ok(made)
    }

    /// CKM_HKDF_DATA: the derived bytes themselves (they become a data
    /// object, readable by definition).
    pub fn p11_derive_data(
        &self,
        keys: &SessionKeys,
        base: SecretKeyRef<'_>,
        other: Option<SecretKeyRef<'_>>,
        op: &DeriveOp,
        len: usize,
    ) -> Result<Zeroizing<Vec<u8>>> {
        if !matches!(op, DeriveOp::Hkdf { .. }) {
            return Err(bad("only HKDF derives data"));
        }
        let mut values =
            self.with_two_secrets(keys, base, other, |b, o| derive_bytes(b, o, op, &[len]))?;
        values
            .pop()
            .ok_or_else(|| Error::Internal("no output".into()))
    }

    /// Undoes a key a failed multi-key derivation made.
    fn p11_forget_derived(&self, keys: &SessionKeys, key: CopiedKey) -> Result<()> {
        match key {
            CopiedKey::Session(id) => {
                keys.destroy(id);
                Ok(())
            }
            CopiedKey::Stored(meta) => self
                .schedule_key_deletion(&meta.key_id, Some(7))
                .map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn one(base: &[u8], op: DeriveOp, len: usize) -> Vec<u8> {
        derive_bytes(base, None, &op, &[len]).unwrap()[0].to_vec()
    }

    /// RFC 5869 appendix A, test cases 1 (SHA-256) and 3 (empty salt and
    /// info), both steps and each step alone.
    #[test]
    fn hkdf_rfc5869() {
        let ikm = vec![0x0b; 22];
        let salt = hex("000102030405060708090a0b0c");
        let info = hex("f0f1f2f3f4f5f6f7f8f9");
        let prk = hex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
        let okm = hex(
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        );
        let op = |extract, expand, salt: HkdfSalt| DeriveOp::Hkdf {
            hash_len: 32,
            extract,
            expand,
            salt,
            info: info.clone(),
        };
        assert_eq!(
            one(&ikm, op(true, true, HkdfSalt::Data(salt.clone())), 42),
            okm
        );
        assert_eq!(
            one(&ikm, op(true, false, HkdfSalt::Data(salt.clone())), 32),
            prk
        );
        assert_eq!(one(&prk, op(false, true, HkdfSalt::Null), 42), okm);
        // Test case 3: no salt (HashLen zeros), no info.
        let okm3 = hex(
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
        );
        let op3 = DeriveOp::Hkdf {
            hash_len: 32,
            extract: true,
            expand: true,
            salt: HkdfSalt::Null,
            info: vec![],
        };
        assert_eq!(one(&ikm, op3, 42), okm3);
        assert!(derive_bytes(&ikm, None, &op(false, false, HkdfSalt::Null), &[16]).is_err());
        assert!(
            derive_bytes(&ikm, None, &op(true, true, HkdfSalt::Null), &[255 * 32 + 1]).is_err()
        );
    }

    /// NIST CAVP KBKDF (SP 800-108) vectors: counter mode with the counter
    /// before the fixed input (HMAC-SHA-256 and AES-CMAC-128, RLEN=32) and
    /// feedback mode with the counter after the iteration variable.
    #[test]
    fn kbkdf_cavp() {
        let counter = |prf, ki: &str, fixed: &str, len| {
            let op = DeriveOp::Kbkdf {
                prf,
                feedback_iv: None,
                fields: vec![
                    KbkdfField::Counter {
                        little_endian: false,
                        bits: 32,
                    },
                    KbkdfField::Bytes(hex(fixed)),
                ],
            };
            one(&hex(ki), op, len)
        };
        assert_eq!(
            counter(
                Prf::Hmac(32),
                "dd1d91b7d90b2bd3138533ce92b272fbf8a369316aefe242e659cc0ae238afe0",
                "01322b96b30acd197979444e468e1c5c6859bf1b1cf951b7e725303e237e46b8
                 64a145fab25e517b08f8683d0315bb2911d80a0e8aba17f3b413faac",
                16
            ),
            hex("10621342bfb0fd40046c0e29f2cfdbf0")
        );
        assert_eq!(
            counter(
                Prf::AesCmac,
                "695f1b1a16c949cea51cdf2554ec9d42",
                "4fce5942832a390aa1cbe8a0bf9d202cb799e986c9d6b51f45e4d597a6b57f06
                 a4ebfec6467335d116b7f5f9c5b954062f661820f5db2a5bbb3e0625",
                32
            ),
            hex("d34b601ec18c34dfa0f9e0b7523e218bdddb9befe8d08b6c0202d75ace0dba89")
        );
        // FeedbackModeNOzeroiv, [PRF=HMAC_SHA256][CTRLOCATION=AFTER_ITER]
        // [RLEN=32_BITS], L = 512.
        let op = DeriveOp::Kbkdf {
            prf: Prf::Hmac(32),
            feedback_iv: Some(hex(
                "9f575d9059d3e0c0803f08112f8a806de3c3471912cdf42b095388b14b33508e",
            )),
            fields: vec![
                KbkdfField::Chain,
                KbkdfField::Counter {
                    little_endian: false,
                    bits: 32,
                },
                KbkdfField::Bytes(hex(
                    "53b89c18690e2057a1d167822e636de50be0018532c431f7f5e37f77139220d5
                     e042599ebe266af5767ee18cd2c5c19a1f0f80",
                )),
            ],
        };
        let ki = hex("93f698e842eed75394d629d957e2e89c6e741f810b623c8b901e38376d068e7b");
        let ko = hex(
            "bd1476f43a4e315747cf5918e0ea5bc0d98769457477c3ab18b742def0e079a9
             33b756365afb5541f253fee43c6fd788a44041038509e9eeb68f7d65ffbb5f95",
        );
        assert_eq!(one(&ki, op.clone(), 64), ko);
        // Two keys of 32 bytes: each its own segment, so the same stream.
        let two = derive_bytes(&ki, None, &op, &[32, 32]).unwrap();
        assert_eq!([two[0].as_slice(), two[1].as_slice()].concat(), ko);
        // Keys of 16 and 16: the second starts at the second segment.
        let split = derive_bytes(&ki, None, &op, &[16, 16]).unwrap();
        assert_eq!(split[0].as_slice(), &ko[..16]);
        assert_eq!(split[1].as_slice(), &ko[32..48]);
    }

    #[test]
    fn kbkdf_refuses_bad_layouts() {
        let op = |fields| DeriveOp::Kbkdf {
            prf: Prf::Hmac(32),
            feedback_iv: None,
            fields,
        };
        let no_counter = op(vec![KbkdfField::Bytes(vec![1])]);
        assert!(derive_bytes(&[1; 32], None, &no_counter, &[16]).is_err());
        let wide = op(vec![KbkdfField::Counter {
            little_endian: false,
            bits: 12,
        }]);
        assert!(derive_bytes(&[1; 32], None, &wide, &[16]).is_err());
        let cmac = DeriveOp::Kbkdf {
            prf: Prf::AesCmac,
            feedback_iv: None,
            fields: vec![KbkdfField::Counter {
                little_endian: false,
                bits: 8,
            }],
        };
        assert!(derive_bytes(&[1; 20], None, &cmac, &[16]).is_err());
    }

    /// The examples of PKCS#11 3.0 section 2.43.
    #[test]
    fn simple_derivations() {
        let base = hex("01234567");
        let data = hex("89abcdef");
        assert_eq!(
            one(&base, DeriveOp::ConcatBaseAndData(data.clone()), 8),
            hex("0123456789abcdef")
        );
        assert_eq!(
            one(&base, DeriveOp::ConcatDataAndBase(data.clone()), 8),
            hex("89abcdef01234567")
        );
        assert_eq!(
            derive_bytes(&base, Some(&data), &DeriveOp::ConcatBaseAndKey, &[8]).unwrap()[0]
                .to_vec(),
            hex("0123456789abcdef")
        );
        assert_eq!(
            one(&base, DeriveOp::XorBaseAndData(data.clone()), 4),
            hex("88888888")
        );
        assert_eq!(
            one(&hex("329f84a9"), DeriveOp::ExtractKeyFromKey(21), 2),
            hex("9526")
        );
        assert!(derive_bytes(&base, None, &DeriveOp::XorBaseAndData(data), &[5]).is_err());
        assert!(derive_bytes(&base, None, &DeriveOp::ExtractKeyFromKey(0), &[5]).is_err());
    }

    /// FIPS-197 C.1 through CKM_AES_ECB_ENCRYPT_DATA; CBC with a zero IV
    /// of one block is the same.
    #[test]
    fn aes_encrypt_data() {
        let key: Vec<u8> = (0u8..16).collect();
        let pt: Vec<u8> = (0u8..16).map(|i| i * 0x11).collect();
        let ct = hex("69c4e0d86a7b0430d8cdb78070b4c55a");
        let ecb = DeriveOp::AesEncryptData {
            iv: None,
            data: pt.clone(),
        };
        assert_eq!(one(&key, ecb, 16), ct);
        let cbc = DeriveOp::AesEncryptData {
            iv: Some([0; 16]),
            data: pt,
        };
        assert_eq!(one(&key, cbc, 16), ct);
        let partial = DeriveOp::AesEncryptData {
            iv: None,
            data: vec![1; 15],
        };
        assert!(derive_bytes(&key, None, &partial, &[15]).is_err());
    }
}
