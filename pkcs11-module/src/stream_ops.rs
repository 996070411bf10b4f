//! Multi-part ECB, CBC, CBC-PAD and CTR (AES and DES3) without gathering
//! the message: each C_EncryptUpdate / C_DecryptUpdate returns every
//! complete block it can, and the operation keeps only the chaining state
//! (the next IV, the next counter block) and the bytes of an unfinished
//! block. CBC-PAD decryption holds back the last whole block until
//! C_DecryptFinal, which strips the padding. GCM still gathers the message
//! (its tag covers all of it).

use crate::backend::AesMode;
use crate::error::{Pkcs11Error, Result};
use crate::module::Module;
use crate::session::{CipherMode, CipherOp, Output};

/// The block size of a mode that streams; `None` for GCM.
fn block_size(mode: &AesMode) -> Option<usize> {
    match mode {
        AesMode::Ecb | AesMode::Cbc(_) | AesMode::CbcPad(_) | AesMode::Ctr { .. } => Some(16),
        AesMode::Des3Ecb | AesMode::Des3Cbc(_) | AesMode::Des3CbcPad(_) => Some(8),
        AesMode::Gcm { .. } => None,
    }
}

/// How many of `total` gathered bytes an update processes now.
fn ready(mode: &AesMode, encrypt: bool, total: usize) -> Option<usize> {
    let b = block_size(mode)?;
    let mut n = total / b * b;
    let padded = matches!(mode, AesMode::CbcPad(_) | AesMode::Des3CbcPad(_));
    if padded && !encrypt && n == total && n > 0 {
        // The last whole block may carry the padding: kept for Final.
        n -= b;
    }
    Some(n)
}

/// The mode a middle part runs in: CBC-PAD pads only at the end.
fn middle(mode: &AesMode) -> AesMode {
    match mode {
        AesMode::CbcPad(iv) => AesMode::Cbc(*iv),
        AesMode::Des3CbcPad(iv) => AesMode::Des3Cbc(*iv),
        other => other.clone(),
    }
}

/// Moves the chaining state past `input` (which gave `output`).
fn advance(mode: &mut AesMode, encrypt: bool, input: &[u8], output: &[u8]) {
    let cipher = if encrypt { output } else { input };
    match mode {
        AesMode::Cbc(iv) | AesMode::CbcPad(iv) => {
            if let Some(last) = cipher.len().checked_sub(16) {
                iv.copy_from_slice(&cipher[last..]);
            }
        }
        AesMode::Des3Cbc(iv) | AesMode::Des3CbcPad(iv) => {
            if let Some(last) = cipher.len().checked_sub(8) {
                iv.copy_from_slice(&cipher[last..]);
            }
        }
        AesMode::Ctr {
            block,
            counter_bits,
        } => {
            let blocks = (input.len() / 16) as u128;
            let value = u128::from_be_bytes(*block);
            let mask = if *counter_bits >= 128 {
                u128::MAX
            } else {
                (1u128 << *counter_bits) - 1
            };
            let counter = (value & mask).wrapping_add(blocks) & mask;
            *block = ((value & !mask) | counter).to_be_bytes();
        }
        AesMode::Ecb | AesMode::Des3Ecb | AesMode::Gcm { .. } => {}
    }
}

impl Module {
    /// One C_EncryptUpdate / C_DecryptUpdate of a streaming mode: `None`
    /// when the operation's mode gathers instead. A length query (`cap`
    /// `None`) or a short buffer leaves the operation as it was; any other
    /// error is the caller's to end the operation with.
    pub(crate) fn stream_update(
        &self,
        op: &mut CipherOp,
        encrypt: bool,
        data: &[u8],
        cap: Option<usize>,
    ) -> Option<Result<Output>> {
        let CipherMode::Aes(mode) = &op.mode else {
            return None;
        };
        let total = op.buf.len().checked_add(data.len())?;
        let n = ready(mode, encrypt, total)?;
        Some((|| {
            if total > crate::ffi::MAX_INPUT_LEN {
                return Err(crate::error::ckr!(
                    CKR_DATA_LEN_RANGE,
                    "multi-part input too large"
                ));
            }
            match cap {
                None => return Ok(Output::Len(n)),
                Some(c) if c < n => return Err(Pkcs11Error::BufferTooSmall(n)),
                Some(_) => {}
            }
            op.multipart = true;
            op.buf.extend_from_slice(data);
            if n == 0 {
                return Ok(Output::Data(Vec::new()));
            }
            let chunk = zeroize::Zeroizing::new(op.buf[..n].to_vec());
            let CipherMode::Aes(mode) = &mut op.mode else {
                return Err(Pkcs11Error::General("mode changed".into()));
            };
            let run = middle(mode);
            let function = if encrypt {
                "C_EncryptUpdate"
            } else {
                "C_DecryptUpdate"
            };
            let (key, mechanism) = (&op.key, op.mechanism);
            let out = self.audited(function, Some(mechanism), Some(key), false, || {
                self.backend.aes(key, &run, encrypt, &chunk)
            })?;
            advance(mode, encrypt, &chunk, &out);
            op.buf.drain(..n);
            Ok(Output::Data(out.to_vec()))
        })())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_and_advance() {
        let cbc_pad = AesMode::CbcPad([0; 16]);
        assert_eq!(ready(&cbc_pad, true, 33), Some(32));
        assert_eq!(ready(&cbc_pad, false, 32), Some(16));
        assert_eq!(ready(&cbc_pad, false, 40), Some(32));
        assert_eq!(ready(&AesMode::Des3Ecb, true, 17), Some(16));
        let gcm = AesMode::Gcm {
            iv: vec![0; 12],
            aad: vec![],
            tag_len: 16,
        };
        assert_eq!(ready(&gcm, true, 64), None);
        // An 8-bit counter at 0xff wraps within its bits only.
        let mut ctr = AesMode::Ctr {
            block: [0xff; 16],
            counter_bits: 8,
        };
        advance(&mut ctr, true, &[0; 32], &[0; 32]);
        let AesMode::Ctr { block, .. } = ctr else {
            unreachable!()
        };
        assert_eq!(block[15], 0x01);
        assert_eq!(block[14], 0xff);
        let mut cbc = AesMode::Cbc([0; 16]);
        let out: Vec<u8> = (0u8..32).collect();
        advance(&mut cbc, true, &[0; 32], &out);
        assert_eq!(cbc, AesMode::Cbc(out[16..].try_into().unwrap()));
    }
}
