//! Raw PKCS#11 mechanisms on key material that never leaves the core:
//! AES-ECB/CBC/CBC-PAD/CTR/GCM with caller-chosen IVs, AES key wrap
//! (RFC 3394) and padded wrap (RFC 5649), session (ephemeral) secret keys
//! and token AES keys of 128, 192 or 256 bits.
//!
//! Token keys are KMS keys; the raw mechanisms use a key's first version,
//! so ciphertext made through PKCS#11 stays decryptable after a KMS
//! rotation. Session keys live in a [`SessionKeys`] table owned by the
//! caller; their bytes are only reachable through these functions.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{
    DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, PaddedBlockDecryptingKey,
    PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::key_wrap::{KeyEncryptionKey, KeyWrap, KeyWrapPadded};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::hsm::{require_enabled, Hsm};
pub use crate::token::SessionKeys;
use crate::types::{KeyMetadata, KeySpec};

mod cmac;
mod derive;
mod des3;
mod ecdh;
mod ed25519ph;
mod gcm;
mod ml;
mod raw_sign;
mod rsa_pkcs1;

pub use derive::{DeriveOp, HkdfSalt, KbkdfField, Prf, MAX_DERIVED};
pub use ecdh::{DerivedKeySpec, EcdhKdf};
pub use ml::{
    ml_dsa_signature_len, ml_dsa_verify_public, ml_kem_ciphertext_len, ml_kem_encapsulate_public,
    ml_public_key_der, ml_public_key_len, PreHash,
};
pub use raw_sign::{digest, rsa_pkcs1_verify_public, RawSign};

/// Largest input of one raw AES operation, in bytes.
pub const MAX_AES_INPUT: usize = 64 << 20;

/// What [`Hsm::p11_generate_rsa_pair`] made.
#[derive(Debug)]
pub enum RsaPairId {
    /// A session key pair's id in the caller's session keys.
    Session(u64),
    /// A token key pair: the KMS key's metadata.
    Token(crate::types::KeyMetadata),
}

/// A secret key the raw mechanisms can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKeyRef<'a> {
    /// A token (KMS) key, by id.
    Stored(&'a str),
    /// A session key of a [`SessionKeys`] table.
    Session(u64),
}

/// An AES mode with its parameters, as the PKCS#11 mechanism gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AesMode {
    /// CKM_AES_ECB (whole blocks).
    Ecb,
    /// CKM_AES_CBC (whole blocks) with its IV.
    Cbc([u8; 16]),
    /// CKM_AES_CBC_PAD (PKCS#7) with its IV.
    CbcPad([u8; 16]),
    /// CKM_AES_CTR: the initial counter block and how many of its low
    /// bits count.
    Ctr {
        /// The counter block.
        block: [u8; 16],
        /// ulCounterBits (1 to 128).
        counter_bits: u32,
    },
    /// CKM_DES3_ECB (whole 8-byte blocks, a 24-byte key).
    Des3Ecb,
    /// CKM_DES3_CBC (whole blocks) with its 8-byte IV.
    Des3Cbc([u8; 8]),
    /// CKM_DES3_CBC_PAD (PKCS#7) with its 8-byte IV.
    Des3CbcPad([u8; 8]),
    /// CKM_AES_GCM: IV, associated data, tag appended to the ciphertext.
    Gcm {
        /// The IV (1 to 256 bytes; 12 is the fast path).
        iv: Vec<u8>,
        /// Additional authenticated data.
        aad: Vec<u8>,
        /// The tag length in bytes (12 to 16).
        tag_len: usize,
    },
}

/// Which key wrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrapMode {
    /// RFC 3394 (CKM_AES_KEY_WRAP): keys of a multiple of 8 bytes.
    Kw,
    /// RFC 5649 (CKM_AES_KEY_WRAP_PAD / CKM_AES_KEY_WRAP_KWP).
    Kwp,
}

fn crypto_failed(what: &str) -> Error {
    Error::InvalidCiphertext(format!("{what} failed"))
}

pub(crate) fn check_aes_len(len: usize) -> Result<()> {
    if matches!(len, 16 | 24 | 32) {
        Ok(())
    } else {
        Err(Error::validation("an AES key is 16, 24 or 32 bytes"))
    }
}

pub(crate) fn random_bytes(len: usize) -> Result<Zeroizing<Vec<u8>>> {
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| Error::Internal("no randomness".into()))?;
    Ok(bytes)
}

fn aes_cipher(len: usize) -> Result<&'static aws_lc_rs::cipher::Algorithm> {
    Ok(match len {
        16 => &aws_lc_rs::cipher::AES_128,
        24 => &aws_lc_rs::cipher::AES_192,
        32 => &aws_lc_rs::cipher::AES_256,
        _ => return Err(Error::validation("an AES key is 16, 24 or 32 bytes")),
    })
}

fn unbound(key: &[u8]) -> Result<UnboundCipherKey> {
    UnboundCipherKey::new(aes_cipher(key.len())?, key).map_err(|_| crypto_failed("AES key setup"))
}

/// Checks that a CTR run of `len` bytes does not wrap the counter part.
fn check_ctr(block: &[u8; 16], counter_bits: u32, len: usize) -> Result<()> {
    if !(1..=128).contains(&counter_bits) {
        return Err(Error::validation("CTR counter bits must be 1 to 128"));
    }
    if counter_bits == 128 {
        return Ok(());
    }
    let value = u128::from_be_bytes(*block) & ((1u128 << counter_bits) - 1);
    let room = (1u128 << counter_bits) - value;
    if (len as u128).div_ceil(16) > room {
        return Err(Error::validation("CTR counter would wrap"));
    }
    Ok(())
}

fn aes_run(key: &[u8], mode: &AesMode, encrypt: bool, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if data.len() > MAX_AES_INPUT {
        return Err(Error::validation("input too large"));
    }
    if let Some(result) = des3::run(key, mode, encrypt, data) {
        return result;
    }
    if let AesMode::Gcm { iv, aad, tag_len } = mode {
        return match (iv.len() == 12 && *tag_len == 16, encrypt) {
            // The hot path: seal straight into the output, no plaintext copy.
            (true, true) => gcm_seal(key, iv, aad, data),
            (true, false) => gcm_open(key, iv, aad, data),
            (false, true) => gcm::seal(key, iv, aad, data, *tag_len).map(Zeroizing::new),
            (false, false) => gcm::open(key, iv, aad, data, *tag_len),
        };
    }
    let mut buf = Zeroizing::new(data.to_vec());
    let block_multiple = || {
        if data.len() & 0xf == 0 {
            Ok(())
        } else {
            Err(Error::validation("input is not a whole number of blocks"))
        }
    };
    match mode {
        AesMode::Ecb | AesMode::Cbc(_) => {
            block_multiple()?;
            let iv = match mode {
                AesMode::Cbc(iv) => Some(*iv),
                _ => None,
            };
            if encrypt {
                let k = match iv {
                    Some(_) => EncryptingKey::cbc(unbound(key)?),
                    None => EncryptingKey::ecb(unbound(key)?),
                }
                .map_err(|_| crypto_failed("AES setup"))?;
                let ctx = iv.map_or(EncryptionContext::None, |iv| {
                    EncryptionContext::Iv128(FixedLength::from(iv))
                });
                k.less_safe_encrypt(&mut buf, ctx)
                    .map_err(|_| crypto_failed("AES encryption"))?;
            } else {
                let k = match iv {
                    Some(_) => DecryptingKey::cbc(unbound(key)?),
                    None => DecryptingKey::ecb(unbound(key)?),
                }
                .map_err(|_| crypto_failed("AES setup"))?;
                let ctx = iv.map_or(DecryptionContext::None, |iv| {
                    DecryptionContext::Iv128(FixedLength::from(iv))
                });
                k.decrypt(&mut buf, ctx)
                    .map_err(|_| crypto_failed("AES decryption"))?;
            }
            Ok(buf)
        }
        AesMode::CbcPad(iv) => {
            if encrypt {
                let k = PaddedBlockEncryptingKey::cbc_pkcs7(unbound(key)?)
                    .map_err(|_| crypto_failed("AES setup"))?;
                let mut out: Vec<u8> = data.to_vec();
                k.less_safe_encrypt(&mut out, EncryptionContext::Iv128(FixedLength::from(*iv)))
                    .map_err(|_| crypto_failed("AES encryption"))?;
                Ok(Zeroizing::new(out))
            } else {
                block_multiple()?;
                let k = PaddedBlockDecryptingKey::cbc_pkcs7(unbound(key)?)
                    .map_err(|_| crypto_failed("AES setup"))?;
                let len = k
                    .decrypt(&mut buf, DecryptionContext::Iv128(FixedLength::from(*iv)))
                    .map_err(|_| crypto_failed("AES-CBC-PAD decryption"))?
                    .len();
                buf.truncate(len);
                Ok(buf)
            }
        }
        AesMode::Ctr {
            block,
            counter_bits,
        } => {
            check_ctr(block, *counter_bits, data.len())?;
            let k = EncryptingKey::ctr(unbound(key)?).map_err(|_| crypto_failed("AES setup"))?;
            k.less_safe_encrypt(
                &mut buf,
                EncryptionContext::Iv128(FixedLength::from(*block)),
            )
            .map_err(|_| crypto_failed("AES-CTR"))?;
            Ok(buf)
        }
        AesMode::Gcm { .. } | AesMode::Des3Ecb | AesMode::Des3Cbc(_) | AesMode::Des3CbcPad(_) => {
            Err(Error::Internal("GCM and DES3 are handled above".into()))
        }
    }
}

fn gcm_key(key: &[u8], iv: &[u8]) -> Result<(LessSafeKey, Nonce)> {
    let alg = match key.len() {
        16 => &aead::AES_128_GCM,
        24 => &aead::AES_192_GCM,
        32 => &aead::AES_256_GCM,
        _ => return Err(Error::validation("an AES key is 16, 24 or 32 bytes")),
    };
    let k =
        LessSafeKey::new(UnboundKey::new(alg, key).map_err(|_| crypto_failed("AES-GCM setup"))?);
    let nonce = Nonce::try_assume_unique_for_key(iv)
        .map_err(|_| Error::validation("the GCM IV must be 12 bytes"))?;
    Ok((k, nonce))
}

/// AES-GCM decryption with a 12-byte IV and a 16-byte tag.
fn gcm_open(key: &[u8], iv: &[u8], aad: &[u8], data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let (k, nonce) = gcm_key(key, iv)?;
    let mut buf = Zeroizing::new(data.to_vec());
    let len = k
        .open_in_place(nonce, Aad::from(aad), &mut buf)
        .map_err(|_| crypto_failed("AES-GCM decryption"))?
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// AES-GCM encryption; the output (ciphertext || tag) holds no secret.
fn gcm_seal(key: &[u8], iv: &[u8], aad: &[u8], data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let (k, nonce) = gcm_key(key, iv)?;
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(data);
    k.seal_in_place_append_tag(nonce, Aad::from(aad), &mut out)
        .map_err(|_| crypto_failed("AES-GCM encryption"))?;
    Ok(Zeroizing::new(out))
}

fn kek(key: &[u8]) -> Result<KeyEncryptionKey<aws_lc_rs::key_wrap::AesBlockCipher>> {
    let cipher = match key.len() {
        16 => &aws_lc_rs::key_wrap::AES_128,
        32 => &aws_lc_rs::key_wrap::AES_256,
        _ => return Err(Error::validation("a wrapping key is 16 or 32 bytes")),
    };
    KeyEncryptionKey::new(cipher, key).map_err(|_| crypto_failed("key wrap setup"))
}

impl Hsm {
    /// Runs `f` on the bytes of a secret key: a token key must be an
    /// Enabled symmetric key (first version); a session key must exist.
    pub(crate) fn with_secret<T>(
        &self,
        keys: &SessionKeys,
        key: SecretKeyRef<'_>,
        f: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<T> {
        match key {
            SecretKeyRef::Stored(id) => {
                let state = self.read_state();
                let record = state.key(id)?;
                require_enabled(&record)?;
                if !(record.spec.is_symmetric() || record.spec.is_hmac()) {
                    return Err(Error::InvalidKeyUsage(format!(
                        "{} is not a secret key",
                        record.arn()
                    )));
                }
                let material = self.material(&record, 1)?;
                f(&material)
            }
            SecretKeyRef::Session(id) => {
                let table = keys.lock();
                let entry = table
                    .get(&id)
                    .ok_or_else(|| Error::NotFound("session key".into()))?;
                f(&entry.bytes)
            }
        }
    }

    /// The length in bytes of a secret key's material, or of the PKCS#8
    /// PrivateKeyInfo an extractable private key wraps as.
    pub fn p11_secret_len(&self, keys: &SessionKeys, key: SecretKeyRef<'_>) -> Result<usize> {
        if let Ok(Some(pkcs8)) = self.exportable_private(keys, key, false) {
            return Ok(pkcs8.len());
        }
        self.with_secret(keys, key, |bytes| Ok(bytes.len()))
    }

    /// One raw AES operation (single part).
    pub fn p11_aes(
        &self,
        keys: &SessionKeys,
        key: SecretKeyRef<'_>,
        mode: &AesMode,
        encrypt: bool,
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        self.with_secret(keys, key, |bytes| aes_run(bytes, mode, encrypt, data))
    }

    /// HMAC with SHA-256/384/512 (named by the digest length 32/48/64).
    pub fn p11_hmac(
        &self,
        keys: &SessionKeys,
        key: SecretKeyRef<'_>,
        hash_len: usize,
        data: &[u8],
    ) -> Result<Vec<u8>> {
        let alg = match hash_len {
            20 => aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            28 => aws_lc_rs::hmac::HMAC_SHA224,
            32 => aws_lc_rs::hmac::HMAC_SHA256,
            48 => aws_lc_rs::hmac::HMAC_SHA384,
            64 => aws_lc_rs::hmac::HMAC_SHA512,
            _ => return Err(Error::validation("HMAC needs SHA-1 or SHA-2")),
        };
        self.with_secret(keys, key, |bytes| {
            let k = aws_lc_rs::hmac::Key::new(alg, bytes);
            Ok(aws_lc_rs::hmac::sign(&k, data).as_ref().to_vec())
        })
    }

    /// Checks an HMAC in constant time.
    pub fn p11_hmac_verify(
        &self,
        keys: &SessionKeys,
        key: SecretKeyRef<'_>,
        hash_len: usize,
        data: &[u8],
        mac: &[u8],
    ) -> Result<bool> {
        let expected = self.p11_hmac(keys, key, hash_len, data)?;
        Ok(aws_lc_rs::constant_time::verify_slices_are_equal(&expected, mac).is_ok())
    }

    /// Wraps an extractable key under `wrapping`: a secret key's value, or
    /// an extractable private key's PKCS#8 PrivateKeyInfo (RFC 3394 needs
    /// a length that is a multiple of 8: a `ValidationException` else).
    pub fn p11_wrap(
        &self,
        keys: &SessionKeys,
        wrapping: SecretKeyRef<'_>,
        mode: WrapMode,
        target: SecretKeyRef<'_>,
    ) -> Result<Vec<u8>> {
        let unextractable = || Error::InvalidKeyUsage("the key is not extractable".into());
        let private = self.exportable_private(keys, target, false)?;
        let plain = match target {
            _ if private.is_some() => private.unwrap_or_default(),
            SecretKeyRef::Session(id) => {
                let table = keys.lock();
                let entry = table
                    .get(&id)
                    .ok_or_else(|| Error::NotFound("session key".into()))?;
                if !entry.extractable {
                    return Err(unextractable());
                }
                entry.bytes.clone()
            }
            SecretKeyRef::Stored(id) => {
                let tagged = self
                    .read_state()
                    .key(id)?
                    .tags
                    .get(crate::token::EXTRACTABLE_TAG)
                    == Some(&"true".to_string());
                if !tagged {
                    return Err(unextractable());
                }
                self.with_secret(keys, target, |bytes| Ok(Zeroizing::new(bytes.to_vec())))?
            }
        };
        self.with_secret(keys, wrapping, |kek_bytes| {
            let kek = kek(kek_bytes)?;
            let mut out = vec![0u8; plain.len() + 16];
            let len = match mode {
                WrapMode::Kw => kek.wrap(&plain, &mut out),
                WrapMode::Kwp => kek.wrap_with_padding(&plain, &mut out),
            }
            .map_err(|_| Error::validation("this key cannot be wrapped with this mechanism"))?
            .len();
            out.truncate(len);
            Ok(out)
        })
    }

    /// Unwraps into a new session key; returns its id and length.
    pub fn p11_unwrap(
        &self,
        keys: &SessionKeys,
        unwrapping: SecretKeyRef<'_>,
        mode: WrapMode,
        wrapped: &[u8],
        extractable: bool,
    ) -> Result<(u64, usize)> {
        let plain = self.unwrap_bytes(keys, unwrapping, mode, wrapped)?;
        let len = plain.len();
        Ok((keys.insert(plain, extractable)?, len))
    }

    /// Unwraps an AES key into a new token key (origin EXTERNAL) in the
    /// namespace `token`.
    pub fn p11_unwrap_to_token(
        &self,
        keys: &SessionKeys,
        unwrapping: SecretKeyRef<'_>,
        mode: WrapMode,
        wrapped: &[u8],
        token: &str,
        extractable: bool,
    ) -> Result<KeyMetadata> {
        let plain = self.unwrap_bytes(keys, unwrapping, mode, wrapped)?;
        self.p11_import_secret(token, true, &plain, "PKCS#11 unwrapped key", extractable)
    }

    fn unwrap_bytes(
        &self,
        keys: &SessionKeys,
        unwrapping: SecretKeyRef<'_>,
        mode: WrapMode,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        if wrapped.len() < 16 || wrapped.len() > 1024 {
            return Err(crypto_failed("unwrap"));
        }
        self.with_secret(keys, unwrapping, |kek_bytes| {
            aes_unwrap(kek_bytes, mode, wrapped)
        })
    }
}

/// RFC 3394 / RFC 5649 unwrap of `wrapped` under the AES key `kek_bytes`;
/// any failure is one `InvalidCiphertextException`.
pub(crate) fn aes_unwrap(
    kek_bytes: &[u8],
    mode: WrapMode,
    wrapped: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let kek = kek(kek_bytes)?;
    let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
    let len = match mode {
        WrapMode::Kw => kek.unwrap(wrapped, &mut out),
        WrapMode::Kwp => kek.unwrap_with_padding(wrapped, &mut out),
    }
    .map_err(|_| crypto_failed("unwrap"))?
    .len();
    out.truncate(len);
    Ok(out)
}

impl Hsm {
    /// Runs `f` on an asymmetric key's spec and its material (PKCS#8
    /// bytes, and the key parsed once): an Enabled token key, or a session
    /// key pair of `keys`.
    pub(crate) fn with_private<T>(
        &self,
        keys: &SessionKeys,
        key: SecretKeyRef<'_>,
        f: impl FnOnce(KeySpec, &crate::cache::VersionMaterial) -> Result<T>,
    ) -> Result<T> {
        let key_id = match key {
            SecretKeyRef::Stored(id) => id,
            SecretKeyRef::Session(id) => {
                let (spec, material) = keys
                    .lock_pairs()
                    .get(&id)
                    .map(|p| (p.spec, std::sync::Arc::clone(&p.material)))
                    .ok_or_else(|| Error::NotFound("session key pair".into()))?;
                return f(spec, &material);
            }
        };
        let state = self.read_state();
        let record = state.key(key_id)?;
        require_enabled(&record)?;
        if !record.spec.has_public_key() {
            return Err(Error::InvalidKeyUsage(format!(
                "{} is not an asymmetric key",
                record.arn()
            )));
        }
        let material = self.material(&record, record.current_version())?;
        f(record.spec, material.as_ref())
    }

    /// RSA-OAEP (SHA-1 or SHA-256, MGF1 of the same hash) with a label
    /// (empty: none).
    pub fn p11_rsa_oaep(
        &self,
        keys: &SessionKeys,
        key: SecretKeyRef<'_>,
        sha256: bool,
        encrypt: bool,
        data: &[u8],
        label: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        use crate::types::EncryptionAlgorithm as A;
        let alg = if sha256 {
            A::RsaesOaepSha256
        } else {
            A::RsaesOaepSha1
        };
        // An empty label and no label are the same to OAEP (lHash of "").
        let label = (!label.is_empty()).then_some(label);
        self.with_private(keys, key, |spec, pkcs8| {
            if encrypt {
                crate::asymmetric::rsa_encrypt_labelled(spec, pkcs8, alg, data, label)
                    .map(Zeroizing::new)
            } else {
                crate::asymmetric::rsa_decrypt_labelled(spec, pkcs8, alg, data, label)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_modes_round_trip_and_known_answer() {
        // FIPS-197 C.1: AES-128 of 00112233..ff under 000102..0f.
        let key: Vec<u8> = (0u8..16).collect();
        let pt: Vec<u8> = (0u8..16).map(|i| i * 0x11).collect();
        let ct = aes_run(&key, &AesMode::Ecb, true, &pt).unwrap();
        assert_eq!(ct[..4], [0x69, 0xc4, 0xe0, 0xd8]);
        let modes = [
            AesMode::Cbc([7; 16]),
            AesMode::CbcPad([7; 16]),
            AesMode::Ctr {
                block: [1; 16],
                counter_bits: 32,
            },
            AesMode::Gcm {
                iv: vec![3; 12],
                aad: b"aad".to_vec(),
                tag_len: 16,
            },
            AesMode::Gcm {
                iv: vec![3; 16],
                aad: b"aad".to_vec(),
                tag_len: 12,
            },
        ];
        for mode in modes {
            let data = if matches!(mode, AesMode::Cbc(_)) {
                vec![9u8; 32]
            } else {
                vec![9u8; 37]
            };
            let ct = aes_run(&key, &mode, true, &data).unwrap();
            assert_ne!(&ct[..], &data[..]);
            assert_eq!(
                &aes_run(&key, &mode, false, &ct).unwrap()[..],
                &data[..],
                "{mode:?}"
            );
        }
        // Refusals (partial blocks, bad tags, short IVs, CTR wrap) are
        // tested through the module in pkcs11-module/tests.
        assert!(aes_run(&key, &AesMode::Cbc([0; 16]), true, &[1; 15]).is_err());
    }
}
