//! The message header (data-format/message-header.md): version, suite,
//! message id, the serialized encryption context, the encrypted data keys,
//! content type, frame length, the commit key (version 2) and the header
//! authentication tag.

use std::collections::BTreeMap;
use std::io::Read;

use super::suite::{Suite, KEY_LEN};
use super::{read_exact, EsdkError, Limits};

/// Framed content (the only content type written or read).
const CONTENT_TYPE_FRAMED: u8 = 0x02;
/// Non-framed content (version 1 only; refused).
const CONTENT_TYPE_NON_FRAMED: u8 = 0x01;
/// The version 1 "customer authenticated encrypted data" type byte.
const V1_TYPE: u8 = 0x80;
/// IV and tag lengths of every supported suite.
pub(crate) const IV_LEN: usize = 12;
/// See [`IV_LEN`].
pub(crate) const TAG_LEN: usize = 16;
/// The most header bytes read before the authentication tag: the context
/// is at most 64 KiB and the data keys are bounded by [`Limits`], but a
/// header is never larger than this.
const MAX_HEADER: usize = 1024 * 1024;

/// One encrypted data key: who can decrypt it and the ciphertext.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptedDataKey {
    /// `aws-kms` for KMS keys.
    pub provider_id: String,
    /// For KMS: the key ARN, UTF-8.
    pub provider_info: Vec<u8>,
    /// For KMS: the CiphertextBlob.
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for EncryptedDataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedDataKey")
            .field("provider_id", &self.provider_id)
            .field(
                "provider_info",
                &String::from_utf8_lossy(&self.provider_info),
            )
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// A message header without its authentication fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The algorithm suite.
    pub suite: Suite,
    /// 32 random bytes (16 in version 1).
    pub message_id: Vec<u8>,
    /// The encryption context as stored (including `aws-crypto-public-key`).
    pub context: BTreeMap<String, String>,
    /// At least one encrypted data key.
    pub encrypted_data_keys: Vec<EncryptedDataKey>,
    /// Plaintext bytes per regular frame.
    pub frame_length: u32,
    /// The commit key (version 2).
    pub commitment: Option<[u8; KEY_LEN]>,
}

/// A header read from a message, with the bytes it was read from.
#[derive(Debug, Clone)]
pub struct ParsedHeader {
    /// The fields.
    pub header: Header,
    /// The header bytes before the authentication fields, exactly as read
    /// (the header tag's additional data).
    pub body: Vec<u8>,
    /// The header IV (version 1; zeros in version 2, where it is not stored).
    pub iv: [u8; IV_LEN],
    /// The header authentication tag.
    pub tag: [u8; TAG_LEN],
}

impl ParsedHeader {
    /// Every header byte as read (body, version 1 IV, tag): what the
    /// footer signature covers first.
    pub fn raw(&self) -> Vec<u8> {
        let mut raw = self.body.clone();
        if self.header.suite.message_version() == 1 {
            raw.extend_from_slice(&self.iv);
        }
        raw.extend_from_slice(&self.tag);
        raw
    }
}

fn put_u16_bytes(out: &mut Vec<u8>, bytes: &[u8], what: &str) -> Result<(), EsdkError> {
    let len = u16::try_from(bytes.len())
        .map_err(|_| EsdkError::Invalid(format!("{what} longer than 65535 bytes")))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// Serializes an encryption context (framework/structures.md): nothing
/// when empty, else the pair count and the pairs sorted by key bytes.
pub fn serialize_context(context: &BTreeMap<String, String>) -> Result<Vec<u8>, EsdkError> {
    let mut out = Vec::new();
    if context.is_empty() {
        return Ok(out);
    }
    let count = u16::try_from(context.len())
        .map_err(|_| EsdkError::Invalid("more than 65535 encryption context pairs".into()))?;
    out.extend_from_slice(&count.to_be_bytes());
    // BTreeMap<String> orders by the UTF-8 bytes, as the format requires.
    for (k, v) in context {
        put_u16_bytes(&mut out, k.as_bytes(), "an encryption context key")?;
        put_u16_bytes(&mut out, v.as_bytes(), "an encryption context value")?;
    }
    if out.len() > usize::from(u16::MAX) {
        return Err(EsdkError::Invalid(
            "the serialized encryption context is longer than 65535 bytes".into(),
        ));
    }
    Ok(out)
}

impl Header {
    /// The version 2 header body (everything before the tag). Encryption
    /// writes only version 2.
    pub fn serialize_body(&self) -> Result<Vec<u8>, EsdkError> {
        if !self.suite.is_committing() {
            return Err(EsdkError::Invalid(format!(
                "suite {} is for decryption only",
                self.suite
            )));
        }
        if self.message_id.len() != self.suite.message_id_len() {
            return Err(EsdkError::Invalid("message id length".into()));
        }
        if self.encrypted_data_keys.is_empty() {
            return Err(EsdkError::Invalid("no encrypted data key".into()));
        }
        if self.frame_length == 0 {
            return Err(EsdkError::Invalid(
                "the frame length must be at least 1".into(),
            ));
        }
        let mut out = Vec::with_capacity(256);
        out.push(2);
        out.extend_from_slice(&self.suite.id().to_be_bytes());
        out.extend_from_slice(&self.message_id);
        let context = serialize_context(&self.context)?;
        put_u16_bytes(&mut out, &context, "the encryption context")?;
        let count = u16::try_from(self.encrypted_data_keys.len())
            .map_err(|_| EsdkError::Invalid("more than 65535 encrypted data keys".into()))?;
        out.extend_from_slice(&count.to_be_bytes());
        for edk in &self.encrypted_data_keys {
            put_u16_bytes(&mut out, edk.provider_id.as_bytes(), "a provider id")?;
            put_u16_bytes(&mut out, &edk.provider_info, "a provider info")?;
            put_u16_bytes(&mut out, &edk.ciphertext, "an encrypted data key")?;
        }
        out.push(CONTENT_TYPE_FRAMED);
        out.extend_from_slice(&self.frame_length.to_be_bytes());
        let commitment = self
            .commitment
            .ok_or_else(|| EsdkError::Invalid("no commit key".into()))?;
        out.extend_from_slice(&commitment);
        Ok(out)
    }
}

/// Reads from `inner`, keeping every byte read (bounded by [`MAX_HEADER`]).
struct Recorder<'a, R> {
    inner: &'a mut R,
    bytes: Vec<u8>,
}

impl<R: Read> Recorder<'_, R> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], EsdkError> {
        if self.bytes.len() + n > MAX_HEADER {
            return Err(EsdkError::Limit(format!(
                "the header is larger than {MAX_HEADER} bytes"
            )));
        }
        let start = self.bytes.len();
        self.bytes.resize(start + n, 0);
        read_exact(self.inner, &mut self.bytes[start..], what)?;
        Ok(&self.bytes[start..])
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, EsdkError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, EsdkError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, EsdkError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn vec16(&mut self, what: &'static str) -> Result<Vec<u8>, EsdkError> {
        let len = self.u16(what)?;
        Ok(self.take(usize::from(len), what)?.to_vec())
    }
}

fn malformed(text: impl Into<String>) -> EsdkError {
    EsdkError::Malformed(text.into())
}

/// Parses a serialized encryption context (the header's AAD field).
pub fn parse_context(bytes: &[u8]) -> Result<BTreeMap<String, String>, EsdkError> {
    let mut map = BTreeMap::new();
    if bytes.is_empty() {
        return Ok(map);
    }
    let mut rest = bytes;
    let mut next = |n: usize| -> Result<&[u8], EsdkError> {
        if rest.len() < n {
            return Err(malformed("the encryption context is cut short"));
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let count_bytes = next(2)?;
    let count = u16::from_be_bytes([count_bytes[0], count_bytes[1]]);
    if count == 0 {
        return Err(malformed("an encryption context with zero pairs"));
    }
    for _ in 0..count {
        let mut field = || -> Result<String, EsdkError> {
            let l = next(2)?;
            let len = usize::from(u16::from_be_bytes([l[0], l[1]]));
            String::from_utf8(next(len)?.to_vec())
                .map_err(|_| malformed("an encryption context entry is not UTF-8"))
        };
        let key = field()?;
        let value = field()?;
        if map.insert(key, value).is_some() {
            return Err(malformed("a key appears twice in the encryption context"));
        }
    }
    if !rest.is_empty() {
        return Err(malformed("bytes after the encryption context pairs"));
    }
    Ok(map)
}

/// Reads and checks a header (not yet authenticated: that needs the data
/// key, see [`super::decrypt`]). Refuses non-committing suites unless
/// `limits` allows them, before reading further.
pub fn read_header<R: Read>(input: &mut R, limits: &Limits) -> Result<ParsedHeader, EsdkError> {
    let mut r = Recorder {
        inner: input,
        bytes: Vec::with_capacity(512),
    };
    let version = r.u8("header")?;
    match version {
        2 => {}
        1 => {
            if r.u8("header")? != V1_TYPE {
                return Err(malformed("unknown version 1 message type"));
            }
        }
        v => {
            return Err(malformed(format!(
                "version {v} is not an AWS Encryption SDK message version (1 or 2)"
            )))
        }
    }
    let suite = Suite::from_id(r.u16("header")?)?;
    if suite.message_version() != version {
        return Err(malformed(format!(
            "suite {suite} in a version {version} header"
        )));
    }
    if !suite.is_committing() && !limits.allow_non_committing {
        return Err(EsdkError::NonCommitting(suite));
    }
    let message_id = r.take(suite.message_id_len(), "header")?.to_vec();
    let context = parse_context(&r.vec16("header")?)?;
    let count = usize::from(r.u16("header")?);
    if count == 0 {
        return Err(malformed("no encrypted data key"));
    }
    if count > limits.max_encrypted_data_keys {
        return Err(EsdkError::Limit(format!(
            "{count} encrypted data keys; at most {} accepted",
            limits.max_encrypted_data_keys
        )));
    }
    let mut encrypted_data_keys = Vec::with_capacity(count);
    for _ in 0..count {
        let provider_id = String::from_utf8(r.vec16("header")?)
            .map_err(|_| malformed("a provider id is not UTF-8"))?;
        let provider_info = r.vec16("header")?;
        let ciphertext = r.vec16("header")?;
        encrypted_data_keys.push(EncryptedDataKey {
            provider_id,
            provider_info,
            ciphertext,
        });
    }
    match r.u8("header")? {
        CONTENT_TYPE_FRAMED => {}
        CONTENT_TYPE_NON_FRAMED => return Err(malformed("non-framed content is not supported")),
        t => return Err(malformed(format!("unknown content type {t}"))),
    }
    if version == 1 {
        if r.u32("header")? != 0 {
            return Err(malformed("reserved header bytes are not zero"));
        }
        if usize::from(r.u8("header")?) != IV_LEN {
            return Err(malformed("IV length is not 12"));
        }
    }
    let frame_length = r.u32("header")?;
    if frame_length == 0 {
        return Err(malformed("frame length 0"));
    }
    if frame_length > limits.max_frame_length {
        return Err(EsdkError::Limit(format!(
            "frame length {frame_length}; at most {} accepted",
            limits.max_frame_length
        )));
    }
    let commitment = if version == 2 {
        let mut c = [0u8; KEY_LEN];
        c.copy_from_slice(r.take(KEY_LEN, "header")?);
        Some(c)
    } else {
        None
    };
    let body = std::mem::take(&mut r.bytes);
    let mut iv = [0u8; IV_LEN];
    if version == 1 {
        read_exact(r.inner, &mut iv, "header")?;
    }
    let mut tag = [0u8; TAG_LEN];
    read_exact(r.inner, &mut tag, "header")?;
    Ok(ParsedHeader {
        header: Header {
            suite,
            message_id,
            context,
            encrypted_data_keys,
            frame_length,
            commitment,
        },
        body,
        iv,
        tag,
    })
}
