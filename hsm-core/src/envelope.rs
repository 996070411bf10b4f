//! The symmetric ciphertext blob and its cryptography.
//!
//! # Ciphertext format, version 1
//!
//! All integers are big-endian.
//!
//! | offset | length | field |
//! |-------:|-------:|-------|
//! | 0      | 1      | format version, `0x01` |
//! | 1      | 1      | algorithm, `0x01` = AES-256-GCM under an HKDF-SHA-256 per-message key |
//! | 2      | 16     | key id (the UUID's bytes) |
//! | 18     | 4      | key version |
//! | 22     | 32     | salt, random per message |
//! | 54     | n      | ciphertext (n = plaintext length, 1 to 4096) |
//! | 54 + n | 16     | GCM tag |
//!
//! # Cryptography
//!
//! For each message a fresh 32-byte salt is drawn from the OS CSPRNG and a
//! single-use key is derived: `K_msg = HKDF-Expand-SHA-256(PRK = version key,
//! info = "tinfoil/v1/message-key" ‖ salt, 32)`. The message is sealed with
//! AES-256-GCM under `K_msg` with an all-zero nonce; the nonce may be fixed
//! because no key is used twice (salts repeat with probability about
//! 2^-256 per pair). This is the per-message-key design of AWS KMS and
//! removes the 2^32-messages-per-key bound of random GCM nonces.
//!
//! The associated data is the 54-byte header followed by the canonical
//! encoding of the encryption context, so any change to the header, the
//! ciphertext, the tag or the context fails authentication.
//!
//! # Encryption context encoding
//!
//! `count:u32` then, for each entry sorted by key bytes, `len(key):u32 ‖ key
//! ‖ len(value):u32 ‖ value`. Every field is length-prefixed, so `{"a":"bc"}`
//! and `{"ab":"c"}` encode differently; sorting makes key order irrelevant.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::sealing::{random_fill, KEY_LEN};
use crate::types::EncryptionContext;

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// The only algorithm of format version 1.
pub const ALGORITHM_AES256GCM_HKDF: u8 = 1;
/// Length of the per-message salt.
pub const SALT_LEN: usize = 32;
/// Length of the header (everything before the ciphertext).
pub const HEADER_LEN: usize = 2 + 16 + 4 + SALT_LEN;
/// Length of the GCM tag.
pub const TAG_LEN: usize = 16;
/// The largest plaintext a blob may carry.
pub const MAX_PLAINTEXT: usize = 4096;
/// The largest encoded encryption context accepted.
pub const MAX_CONTEXT_BYTES: usize = 8192;

const MESSAGE_KEY_INFO: &[u8] = b"tinfoil/v1/message-key";

/// The parsed header of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlobHeader {
    /// The key id's bytes.
    pub key_id: [u8; 16],
    /// The key version.
    pub version: u32,
}

fn invalid(msg: &str) -> Error {
    Error::InvalidCiphertext(format!("the ciphertext is not valid: {msg}"))
}

/// Reads the header of `blob` without authenticating anything.
pub(crate) fn parse_header(blob: &[u8]) -> Result<BlobHeader> {
    if blob.len() < HEADER_LEN + 1 + TAG_LEN || blob.len() > HEADER_LEN + MAX_PLAINTEXT + TAG_LEN {
        return Err(invalid("wrong length"));
    }
    if blob[0] != FORMAT_VERSION {
        return Err(invalid("unknown format version"));
    }
    if blob[1] != ALGORITHM_AES256GCM_HKDF {
        return Err(invalid("unknown algorithm"));
    }
    let key_id: [u8; 16] = blob[2..18].try_into().expect("16 bytes");
    let version = u32::from_be_bytes(blob[18..22].try_into().expect("4 bytes"));
    Ok(BlobHeader { key_id, version })
}

/// An encryption context in its canonical encoding (see the module docs),
/// and whether it may seal a new ciphertext.
///
/// A NUL character in a context key is refused for new ciphertexts (it
/// makes no sense there and C clients would cut the key short), but a
/// ciphertext made before that rule, with such a key, still opens: the
/// encoding is length-prefixed, so a NUL is no ambiguity, and refusing it
/// at decryption would strand data. [`seal`] refuses, [`open`] does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EncodedContext {
    bytes: Vec<u8>,
    /// Whether a context key holds a NUL character.
    nul_key: bool,
}

impl std::ops::Deref for EncodedContext {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// The canonical encoding of an encryption context (see the module docs).
/// Refuses a context over [`MAX_CONTEXT_BYTES`].
pub(crate) fn encode_context(context: &EncryptionContext) -> Result<EncodedContext> {
    let mut out = Vec::with_capacity(4 + context.len() * 16);
    out.extend_from_slice(&(context.len() as u32).to_be_bytes());
    // BTreeMap iterates in key order: the sort is built in.
    for (key, value) in context {
        for field in [key.as_bytes(), value.as_bytes()] {
            out.extend_from_slice(&(field.len() as u32).to_be_bytes());
            out.extend_from_slice(field);
        }
    }
    if out.len() > MAX_CONTEXT_BYTES {
        return Err(Error::validation(format!(
            "the encryption context is larger than {MAX_CONTEXT_BYTES} bytes"
        )));
    }
    Ok(EncodedContext {
        bytes: out,
        nul_key: context.keys().any(|key| key.contains('\0')),
    })
}

struct MessageKeyLen;

impl hkdf::KeyType for MessageKeyLen {
    fn len(&self) -> usize {
        KEY_LEN
    }
}

/// The single-use AES-256-GCM key for one message.
fn message_key(version_key: &[u8], salt: &[u8]) -> Result<LessSafeKey> {
    let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, version_key);
    let info = [MESSAGE_KEY_INFO, salt];
    let okm = prk
        .expand(&info, MessageKeyLen)
        .map_err(|_| Error::Internal("key derivation failed".into()))?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    okm.fill(key.as_mut())
        .map_err(|_| Error::Internal("key derivation failed".into()))?;
    let unbound = UnboundKey::new(&AES_256_GCM, key.as_ref())
        .map_err(|_| Error::Internal("key derivation failed".into()))?;
    Ok(LessSafeKey::new(unbound))
}

fn aad(header: &[u8], encoded_context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + encoded_context.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(encoded_context);
    aad
}

/// Seals `plaintext` into a version-1 blob under one key version.
pub(crate) fn seal(
    header: BlobHeader,
    version_key: &[u8],
    plaintext: &[u8],
    encoded_context: &EncodedContext,
) -> Result<Vec<u8>> {
    if encoded_context.nul_key {
        return Err(Error::validation(
            "an encryption context key must not contain a NUL character",
        ));
    }
    if plaintext.is_empty() || plaintext.len() > MAX_PLAINTEXT {
        return Err(Error::validation(format!(
            "the plaintext must be 1 to {MAX_PLAINTEXT} bytes"
        )));
    }
    let mut blob = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    blob.push(FORMAT_VERSION);
    blob.push(ALGORITHM_AES256GCM_HKDF);
    blob.extend_from_slice(&header.key_id);
    blob.extend_from_slice(&header.version.to_be_bytes());
    let mut salt = [0u8; SALT_LEN];
    random_fill(&mut salt)?;
    blob.extend_from_slice(&salt);
    let key = message_key(version_key, &salt)?;
    let aad = aad(&blob[..HEADER_LEN], encoded_context);
    blob.extend_from_slice(plaintext);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key([0u8; NONCE_LEN]),
            Aad::from(aad),
            &mut blob[HEADER_LEN..],
        )
        .map_err(|_| Error::Internal("encryption failed".into()))?;
    blob.extend_from_slice(tag.as_ref());
    Ok(blob)
}

/// Opens a blob whose header was parsed with [`parse_header`].
pub(crate) fn open(
    blob: &[u8],
    version_key: &[u8],
    encoded_context: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    parse_header(blob)?;
    let key = message_key(version_key, &blob[HEADER_LEN - SALT_LEN..HEADER_LEN])?;
    let aad = aad(&blob[..HEADER_LEN], encoded_context);
    let mut buffer = Zeroizing::new(blob[HEADER_LEN..].to_vec());
    let len = key
        .open_in_place(
            Nonce::assume_unique_for_key([0u8; NONCE_LEN]),
            Aad::from(aad),
            buffer.as_mut_slice(),
        )
        .map_err(|_| {
            invalid(
                "authentication failed (tampered, wrong key version, or wrong encryption context)",
            )
        })?
        .len();
    buffer.truncate(len);
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const HEADER: BlobHeader = BlobHeader {
        key_id: [7; 16],
        version: 3,
    };

    #[test]
    fn layout_matches_the_documented_format() {
        let blob = seal(
            HEADER,
            &[9; 32],
            b"hello",
            &encode_context(&ctx(&[])).unwrap(),
        )
        .unwrap();
        assert_eq!(blob.len(), HEADER_LEN + 5 + TAG_LEN);
        assert_eq!(blob[0], 1);
        assert_eq!(blob[1], 1);
        assert_eq!(&blob[2..18], &[7; 16]);
        assert_eq!(&blob[18..22], &3u32.to_be_bytes());
        assert_eq!(parse_header(&blob).unwrap(), HEADER);
    }

    #[test]
    fn context_encoding_is_unambiguous_and_order_free() {
        let a = encode_context(&ctx(&[("a", "bc")])).unwrap();
        let b = encode_context(&ctx(&[("ab", "c")])).unwrap();
        assert_ne!(a, b);
        let x = encode_context(&ctx(&[("k1", "v1"), ("k2", "v2")])).unwrap();
        let y = encode_context(&ctx(&[("k2", "v2"), ("k1", "v1")])).unwrap();
        assert_eq!(x, y);
    }

    #[test]
    fn open_rejects_wrong_context_key_and_every_bit_flip() {
        let context = encode_context(&ctx(&[("purpose", "test")])).unwrap();
        let blob = seal(HEADER, &[9; 32], b"secret", &context).unwrap();
        assert_eq!(
            open(&blob, &[9; 32], &context).unwrap().as_slice(),
            b"secret"
        );
        assert!(open(&blob, &[8; 32], &context).is_err());
        assert!(open(&blob, &[9; 32], &encode_context(&ctx(&[])).unwrap()).is_err());
        for bit in 0..blob.len() * 8 {
            let mut flipped = blob.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let err = open(&flipped, &[9; 32], &context).unwrap_err();
            assert!(
                matches!(err, Error::InvalidCiphertext(_)),
                "bit {bit}: {err:?}"
            );
        }
    }

    #[test]
    fn a_nul_context_key_seals_nothing_new_but_an_old_ciphertext_opens() {
        let context = encode_context(&ctx(&[("de\0pt", "hr")])).unwrap();
        let err = seal(HEADER, &[9; 32], b"secret", &context).unwrap_err();
        assert_eq!(err.kms_name(), "ValidationException");
        assert!(err.to_string().contains("NUL"), "{err}");
        // A ciphertext made before the rule (sealed here without it).
        let allowed = EncodedContext {
            nul_key: false,
            ..context.clone()
        };
        let old = seal(HEADER, &[9; 32], b"secret", &allowed).unwrap();
        assert_eq!(
            open(&old, &[9; 32], &context).unwrap().as_slice(),
            b"secret"
        );
        let other = encode_context(&ctx(&[("de\0pt", "it")])).unwrap();
        assert!(open(&old, &[9; 32], &other).is_err());
    }

    #[test]
    fn salts_differ_between_messages() {
        let context = encode_context(&ctx(&[])).unwrap();
        let a = seal(HEADER, &[9; 32], b"same", &context).unwrap();
        let b = seal(HEADER, &[9; 32], b"same", &context).unwrap();
        assert_ne!(a[22..54], b[22..54]);
        assert_ne!(a, b);
    }
}
