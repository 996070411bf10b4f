//! Per-session state: which token, read-write or not, and the operation
//! in progress of each kind (find, digest, and the key operations).

use cryptoki_sys::*;

use crate::backend::{AesMode, KeyHandle};
use crate::error::{ckr, Pkcs11Error, Result};
use crate::mechanisms::DigestOp;

/// A search started by C_FindObjectsInit: the matching handles, taken at
/// init time, and how many were returned.
#[derive(Debug, Default)]
pub struct FindState {
    /// The matches, in handle order.
    pub handles: Vec<CK_OBJECT_HANDLE>,
    /// How many C_FindObjects has returned so far.
    pub cursor: usize,
}

/// One open session.
pub struct Session {
    /// The slot it was opened on.
    pub slot: CK_SLOT_ID,
    /// The token (serial) on that slot.
    pub token: String,
    /// CKF_RW_SESSION.
    pub read_write: bool,
    /// An active C_FindObjects search.
    pub find: Option<FindState>,
    /// An active digest.
    pub digest: Option<DigestOp>,
    /// An active encryption.
    pub encrypt: Option<CipherOp>,
    /// An active decryption.
    pub decrypt: Option<CipherOp>,
    /// An active signature.
    pub sign: Option<crate::sign_ops::SignOp>,
    /// An active verification.
    pub verify: Option<crate::sign_ops::SignOp>,
    /// The operation (C_SignInit or C_DecryptInit on a key with
    /// CKA_ALWAYS_AUTHENTICATE) that waits for C_Login(CKU_CONTEXT_SPECIFIC).
    pub reauth: Option<crate::crypto_ops::OpKind>,
    /// An active message-based encryption (C_MessageEncryptInit).
    pub message_encrypt: Option<crate::message_ops::MessageOp>,
    /// An active message-based decryption (C_MessageDecryptInit).
    pub message_decrypt: Option<crate::message_ops::MessageOp>,
}

/// What a cipher operation does.
#[derive(Debug, Clone)]
pub enum CipherMode {
    /// An AES mode.
    Aes(AesMode),
    /// RSA-OAEP with SHA-256 (or SHA-1) and a label; the modulus length.
    Oaep {
        /// SHA-256 rather than SHA-1.
        sha256: bool,
        /// Bytes of the key's modulus (the ciphertext length).
        modulus_len: usize,
        /// The OAEP label (empty: none).
        label: Vec<u8>,
    },
    /// CKM_RSA_PKCS (RSAES-PKCS1-v1_5).
    RsaPkcs1 {
        /// Bytes of the key's modulus (the ciphertext length).
        modulus_len: usize,
    },
    /// CKM_RSA_X_509 (raw RSA, no padding).
    RsaX509 {
        /// Bytes of the key's modulus (the output length).
        modulus_len: usize,
    },
}

impl CipherMode {
    /// The output size bound on `n` input bytes.
    pub fn output_len(&self, encrypt: bool, n: usize) -> usize {
        match self {
            CipherMode::Aes(mode) => crate::mechanisms::aes_output_len(mode, encrypt, n),
            CipherMode::Oaep { modulus_len, .. } => *modulus_len,
            CipherMode::RsaPkcs1 { modulus_len } => *modulus_len,
            CipherMode::RsaX509 { modulus_len } => *modulus_len,
        }
    }
}

/// An encryption or decryption in progress. Multi-part input is
/// gathered and processed at C_*Final (Update returns no output).
pub struct CipherOp {
    /// The key.
    pub key: KeyHandle,
    /// The mode and its parameters.
    pub mode: CipherMode,
    /// The mechanism, for the audit record.
    pub mechanism: CK_MECHANISM_TYPE,
    /// Input gathered by C_*Update.
    pub buf: zeroize::Zeroizing<Vec<u8>>,
    /// Whether C_*Update was called.
    pub multipart: bool,
}

impl Session {
    /// A new session with nothing in progress.
    pub fn new(slot: CK_SLOT_ID, token: String, read_write: bool) -> Session {
        Session {
            slot,
            token,
            read_write,
            find: None,
            digest: None,
            encrypt: None,
            decrypt: None,
            sign: None,
            verify: None,
            reauth: None,
            message_encrypt: None,
            message_decrypt: None,
        }
    }
}

/// What an operation producing output returns: the size the caller must
/// provide (length query), or the output itself.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// The caller passed no buffer: the size the output needs.
    Len(usize),
    /// The output bytes.
    Data(Vec<u8>),
}

/// Runs the last step of an operation under the spec's output rules: with
/// no buffer the size is returned and the operation stays; a buffer that
/// is too small is CKR_BUFFER_TOO_SMALL and the operation stays;
/// otherwise the operation ends, whether `run` succeeds or fails.
pub fn finish<T>(
    slot: &mut Option<T>,
    need: impl FnOnce(&T) -> usize,
    cap: Option<usize>,
    run: impl FnOnce(T) -> Result<Vec<u8>>,
) -> Result<Output> {
    let op = slot.as_ref().ok_or(ckr!(CKR_OPERATION_NOT_INITIALIZED))?;
    let need = need(op);
    match cap {
        None => Ok(Output::Len(need)),
        Some(cap) if cap < need => Err(Pkcs11Error::BufferTooSmall(need)),
        Some(_) => {
            let op = slot.take().ok_or(ckr!(CKR_OPERATION_NOT_INITIALIZED))?;
            run(op).map(Output::Data)
        }
    }
}

/// Runs a middle step (an Update): any failure ends the operation.
pub fn update<T>(slot: &mut Option<T>, step: impl FnOnce(&mut T) -> Result<()>) -> Result<()> {
    let op = slot.as_mut().ok_or(ckr!(CKR_OPERATION_NOT_INITIALIZED))?;
    let result = step(op);
    if result.is_err() {
        *slot = None;
    }
    result
}
