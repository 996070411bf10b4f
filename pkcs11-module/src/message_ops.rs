//! PKCS#11 3.0 message-based encryption with CKM_AES_GCM
//! (C_MessageEncryptInit, C_EncryptMessage, C_EncryptMessageBegin/Next,
//! C_MessageEncryptFinal and the decrypt side). Each message carries its
//! own CK_GCM_MESSAGE_PARAMS: the IV (given, or generated at random past
//! its fixed bits with CKG_GENERATE_RANDOM) and the tag, written back on
//! encryption and read on decryption. A message given in parts
//! (Begin/Next) is gathered and sealed or opened by the part flagged
//! CKF_END_OF_MESSAGE, which returns the whole output: the tag covers the
//! whole message, and a decryption must not release plaintext before the
//! tag is checked.

use cryptoki_sys::*;

use crate::backend::{AesMode, KeyHandle};
use crate::error::{ckr, Pkcs11Error, Result};
use crate::key_ops::check_allowed;
use crate::mechanisms::{self, Mechanism};
use crate::module::{lock, Module};
use crate::session::Session;

/// How the IV of a message is made (CK_GCM_MESSAGE_PARAMS.ivGenerator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IvSource {
    /// CKG_NO_GENERATE: the caller's IV as it is.
    Given,
    /// CKG_GENERATE_RANDOM: random bits after the first `fixed_bits`.
    Random {
        /// The leading bits kept from the caller's IV.
        fixed_bits: usize,
    },
}

/// One message's GCM parameters, copied out of CK_GCM_MESSAGE_PARAMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcmMessage {
    /// The IV as the caller passed it.
    pub iv: Vec<u8>,
    /// Where the IV comes from (encryption only may generate).
    pub source: IvSource,
    /// The tag length in bytes (12 to 16).
    pub tag_len: usize,
    /// On decryption, the tag to check.
    pub tag: Vec<u8>,
}

/// A message being given in parts: its IV, its AAD and the input so far.
type Part = (Vec<u8>, Vec<u8>, zeroize::Zeroizing<Vec<u8>>);

/// A message-based operation in progress (no Debug: it may hold
/// plaintext).
pub struct MessageOp {
    key: KeyHandle,
    /// A message being given in parts.
    part: Option<Part>,
}

/// What C_EncryptMessage / C_EncryptMessageNext (at the end) return: the
/// output, and on encryption the IV used and the tag (no Debug: it may
/// hold plaintext).
pub struct Sealed {
    /// Ciphertext or plaintext.
    pub data: Vec<u8>,
    /// The IV used (generated or given).
    pub iv: Vec<u8>,
    /// The tag (encryption only).
    pub tag: Vec<u8>,
}

/// The answer of a message call: the output length (a length query) or
/// the output.
pub enum MessageOut {
    /// The caller passed no buffer: the size the output needs.
    Len(usize),
    /// The output (empty for a middle part).
    Done(Sealed),
}

fn slot(s: &mut Session, encrypt: bool) -> &mut Option<MessageOp> {
    if encrypt {
        &mut s.message_encrypt
    } else {
        &mut s.message_decrypt
    }
}

impl Module {
    /// C_MessageEncryptInit / C_MessageDecryptInit: CKM_AES_GCM with an
    /// AES key whose CKA_ENCRYPT / CKA_DECRYPT is true (the mechanism's
    /// own parameter is not used: each message brings its own).
    pub fn message_init(
        &self,
        h: CK_SESSION_HANDLE,
        encrypt: bool,
        mechanism: CK_MECHANISM_TYPE,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let session = self.session(h)?;
        let entry = mechanisms::lookup_for(self.backend.as_ref(), mechanism)?;
        let flag = if encrypt { CKF_ENCRYPT } else { CKF_DECRYPT };
        if mechanism != CKM_AES_GCM || entry.flags & flag == 0 {
            return Err(ckr!(
                CKR_MECHANISM_INVALID,
                "message-based encryption is AES-GCM"
            ));
        }
        let m = Mechanism {
            mechanism,
            ..Default::default()
        };
        let usage = if encrypt { CKA_ENCRYPT } else { CKA_DECRYPT };
        let key = self.with_visible_object(h, key, |object| {
            check_allowed(object, &m)?;
            crate::des3_ops::usable_cipher_key(object, usage, &m)
        })?;
        let mut s = lock(&session)?;
        let slot = slot(&mut s, encrypt);
        if slot.is_some() {
            return Err(ckr!(CKR_OPERATION_ACTIVE));
        }
        *slot = Some(MessageOp { key, part: None });
        Ok(())
    }

    /// The IV a message uses: the caller's, or random past its fixed bits.
    fn message_iv(&self, p: &GcmMessage, encrypt: bool) -> Result<Vec<u8>> {
        let bad = |why| ckr!(CKR_MECHANISM_PARAM_INVALID, why);
        if p.iv.is_empty() || p.iv.len() > 256 {
            return Err(bad("the GCM IV must be 1 to 256 bytes"));
        }
        if !(12..=16).contains(&p.tag_len) {
            return Err(bad("the GCM tag must be 96 to 128 bits"));
        }
        match p.source {
            IvSource::Given => Ok(p.iv.clone()),
            IvSource::Random { .. } if !encrypt => {
                Err(bad("a decryption takes the IV the encryption used"))
            }
            IvSource::Random { fixed_bits } => {
                if fixed_bits > p.iv.len() * 8 {
                    return Err(bad("more fixed IV bits than the IV has"));
                }
                let mut iv = vec![0u8; p.iv.len()];
                self.backend.generate_random(&mut iv)?;
                let (whole, rest) = (fixed_bits / 8, fixed_bits % 8);
                iv[..whole].copy_from_slice(&p.iv[..whole]);
                if rest != 0 {
                    let keep = 0xffu8 << (8 - rest);
                    iv[whole] = (p.iv[whole] & keep) | (iv[whole] & !keep);
                }
                Ok(iv)
            }
        }
    }

    /// Seals or opens one whole message.
    fn message_run(
        &self,
        key: &KeyHandle,
        encrypt: bool,
        iv: Vec<u8>,
        aad: Vec<u8>,
        p: &GcmMessage,
        data: &[u8],
    ) -> Result<Sealed> {
        let mode = AesMode::Gcm {
            iv: iv.clone(),
            aad,
            tag_len: p.tag_len,
        };
        if encrypt {
            let mut out = self.backend.aes(key, &mode, true, data)?;
            let split = out
                .len()
                .checked_sub(p.tag_len)
                .ok_or(ckr!(CKR_GENERAL_ERROR))?;
            let tag = out[split..].to_vec();
            out.truncate(split);
            Ok(Sealed {
                data: std::mem::take(&mut *out),
                iv,
                tag,
            })
        } else {
            if p.tag.len() != p.tag_len {
                return Err(ckr!(CKR_MECHANISM_PARAM_INVALID, "the tag is missing"));
            }
            let input = [data, &p.tag].concat();
            let out = self.backend.aes(key, &mode, false, &input)?;
            Ok(Sealed {
                data: out.to_vec(),
                iv,
                tag: Vec::new(),
            })
        }
    }

    /// C_EncryptMessage / C_DecryptMessage: one whole message. With no
    /// output buffer (`cap` `None`) only the length is answered.
    pub fn message_once(
        &self,
        h: CK_SESSION_HANDLE,
        encrypt: bool,
        p: &GcmMessage,
        aad: &[u8],
        data: &[u8],
        cap: Option<usize>,
    ) -> Result<MessageOut> {
        let session = self.session(h)?;
        let key = {
            let mut s = lock(&session)?;
            let op = slot(&mut s, encrypt)
                .as_ref()
                .ok_or(ckr!(CKR_OPERATION_NOT_INITIALIZED))?;
            if op.part.is_some() {
                return Err(ckr!(
                    CKR_OPERATION_ACTIVE,
                    "a message is being given in parts"
                ));
            }
            op.key.clone()
        };
        match cap {
            None => return Ok(MessageOut::Len(data.len())),
            Some(c) if c < data.len() => return Err(Pkcs11Error::BufferTooSmall(data.len())),
            Some(_) => {}
        }
        let iv = self.message_iv(p, encrypt)?;
        self.message_run(&key, encrypt, iv, aad.to_vec(), p, data)
            .map(MessageOut::Done)
    }

    /// C_EncryptMessageBegin / C_DecryptMessageBegin: a message in parts.
    /// Returns the IV it uses (generated ones go back to the caller).
    pub fn message_begin(
        &self,
        h: CK_SESSION_HANDLE,
        encrypt: bool,
        p: &GcmMessage,
        aad: &[u8],
    ) -> Result<Vec<u8>> {
        let session = self.session(h)?;
        let iv = self.message_iv(p, encrypt)?;
        let mut s = lock(&session)?;
        let op = slot(&mut s, encrypt)
            .as_mut()
            .ok_or(ckr!(CKR_OPERATION_NOT_INITIALIZED))?;
        if op.part.is_some() {
            return Err(ckr!(
                CKR_OPERATION_ACTIVE,
                "a message is being given in parts"
            ));
        }
        op.part = Some((iv.clone(), aad.to_vec(), Default::default()));
        Ok(iv)
    }

    /// C_EncryptMessageNext / C_DecryptMessageNext: gathers a part; the
    /// last one (`end`) seals or opens the message and returns all of it.
    /// A length query (`cap` `None`) or a short buffer leaves the message
    /// as it was; any other error ends the message.
    pub fn message_next(
        &self,
        h: CK_SESSION_HANDLE,
        encrypt: bool,
        p: &GcmMessage,
        data: &[u8],
        end: bool,
        cap: Option<usize>,
    ) -> Result<MessageOut> {
        let session = self.session(h)?;
        let mut s = lock(&session)?;
        let op = slot(&mut s, encrypt)
            .as_mut()
            .ok_or(ckr!(CKR_OPERATION_NOT_INITIALIZED))?;
        let (_, _, buf) = op
            .part
            .as_mut()
            .ok_or(ckr!(CKR_OPERATION_NOT_INITIALIZED, "no message begun"))?;
        let total = buf.len() + data.len();
        let need = if end { total } else { 0 };
        match cap {
            None => return Ok(MessageOut::Len(need)),
            Some(c) if c < need => return Err(Pkcs11Error::BufferTooSmall(need)),
            Some(_) => {}
        }
        if total > crate::ffi::MAX_INPUT_LEN {
            op.part = None;
            return Err(ckr!(CKR_DATA_LEN_RANGE, "message too large"));
        }
        buf.extend_from_slice(data);
        if !end {
            return Ok(MessageOut::Done(Sealed {
                data: Vec::new(),
                iv: Vec::new(),
                tag: Vec::new(),
            }));
        }
        let (iv, aad, buf) = op.part.take().ok_or(ckr!(CKR_GENERAL_ERROR))?;
        let key = op.key.clone();
        drop(s);
        self.message_run(&key, encrypt, iv, aad, p, &buf)
            .map(MessageOut::Done)
    }

    /// C_MessageEncryptFinal / C_MessageDecryptFinal.
    pub fn message_final(&self, h: CK_SESSION_HANDLE, encrypt: bool) -> Result<()> {
        let session = self.session(h)?;
        let mut s = lock(&session)?;
        slot(&mut s, encrypt)
            .take()
            .map(|_| ())
            .ok_or(ckr!(CKR_OPERATION_NOT_INITIALIZED))
    }
}
