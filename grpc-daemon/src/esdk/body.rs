//! The framed body (data-format/message-body.md, message-body-aad.md) and
//! the whole-message drivers [`encrypt`] and [`decrypt`]: header, frames,
//! footer, in constant memory (one frame buffer).

use std::collections::BTreeMap;
use std::io::{ErrorKind, IoSlice, Write};

use zeroize::Zeroizing;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::rand::{SecureRandom, SystemRandom};

use super::footer::{Signer, Verifier, MAX_SIGNATURE_LEN};
use super::header::{EncryptedDataKey, Header, ParsedHeader, IV_LEN, TAG_LEN};
use super::suite::Suite;
use super::{EsdkError, MAX_FRAME_LENGTH, PUBLIC_KEY_CONTEXT_KEY, RESERVED_CONTEXT_PREFIX};

/// The sequence number field of a final frame.
const FINAL_MARKER: [u8; 4] = [0xFF; 4];
const FRAME_LABEL: &[u8] = b"AWSKMSEncryptionClient Frame";
const FINAL_LABEL: &[u8] = b"AWSKMSEncryptionClient Final Frame";
/// The longest frame prefix (final frame: marker, sequence number, IV, length).
const PREFIX: usize = 4 + 4 + IV_LEN + 4;
/// Frames gathered into one vectored write when encrypting (3 slices each,
/// under the system's 1,024-slice limit).
const BATCH_FRAMES: usize = 320;
/// The chunk size of [`Chunks`] for a byte slice.
const SLICE_CHUNK: usize = 256 * 1024;

/// Plaintext for [`encrypt`], a chunk at a time: the frames are sealed in
/// place inside each chunk and written from there (vectored, with their
/// prefixes and tags), so the plaintext is never copied in user space
/// except for a frame that spans two chunks.
pub trait Chunks {
    /// The next chunk; empty at the end of the input, and only there.
    fn next_chunk(&mut self) -> std::io::Result<Zeroizing<Vec<u8>>>;
    /// Takes back a chunk `next_chunk` gave, for reuse.
    fn recycle(&mut self, _chunk: Zeroizing<Vec<u8>>) {}
}

impl Chunks for super::ReadAhead {
    fn next_chunk(&mut self) -> std::io::Result<Zeroizing<Vec<u8>>> {
        super::ReadAhead::next_chunk(self)
    }
    fn recycle(&mut self, chunk: Zeroizing<Vec<u8>>) {
        super::ReadAhead::recycle(self, chunk)
    }
}

/// Bytes in memory, copied out a chunk at a time (sealing works in place).
impl Chunks for &[u8] {
    fn next_chunk(&mut self) -> std::io::Result<Zeroizing<Vec<u8>>> {
        let n = self.len().min(SLICE_CHUNK);
        let (head, rest) = self.split_at(n);
        *self = rest;
        Ok(Zeroizing::new(head.to_vec()))
    }
}

/// The frame key of one message and its message id (part of every frame's
/// additional data).
struct FrameCipher {
    key: LessSafeKey,
    message_id: Vec<u8>,
}

impl FrameCipher {
    fn new(content_key: &[u8], message_id: &[u8]) -> Result<FrameCipher, EsdkError> {
        let key = UnboundKey::new(&AES_256_GCM, content_key)
            .map_err(|_| EsdkError::Crypto("AES-256-GCM key"))?;
        Ok(FrameCipher {
            key: LessSafeKey::new(key),
            message_id: message_id.to_vec(),
        })
    }

    /// message id || label || sequence number (u32) || content length (u64).
    fn aad(&self, last: bool, seq: u32, len: usize, out: &mut [u8; 96]) -> usize {
        let label = if last { FINAL_LABEL } else { FRAME_LABEL };
        let mut n = 0;
        for part in [
            &self.message_id[..],
            label,
            &seq.to_be_bytes(),
            &(len as u64).to_be_bytes(),
        ] {
            out[n..n + part.len()].copy_from_slice(part);
            n += part.len();
        }
        n
    }

    fn seal(
        &self,
        last: bool,
        seq: u32,
        iv: [u8; IV_LEN],
        content: &mut [u8],
    ) -> Result<[u8; TAG_LEN], EsdkError> {
        let mut aad = [0u8; 96];
        let n = self.aad(last, seq, content.len(), &mut aad);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(iv),
                Aad::from(&aad[..n]),
                content,
            )
            .map_err(|_| EsdkError::Crypto("AES-256-GCM seal"))?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Decrypts `content || tag` in place; returns the plaintext length.
    fn open(
        &self,
        last: bool,
        seq: u32,
        iv: [u8; IV_LEN],
        in_out: &mut [u8],
    ) -> Result<usize, EsdkError> {
        let mut aad = [0u8; 96];
        let n = self.aad(last, seq, in_out.len() - TAG_LEN, &mut aad);
        self.key
            .open_in_place(
                Nonce::assume_unique_for_key(iv),
                Aad::from(&aad[..n]),
                in_out,
            )
            .map(|p| p.len())
            .map_err(|_| EsdkError::FrameAuth(seq))
    }
}

/// The frame IV: the sequence number, big-endian, left-padded with zeros.
fn frame_iv(seq: u32) -> [u8; IV_LEN] {
    let mut iv = [0u8; IV_LEN];
    iv[IV_LEN - 4..].copy_from_slice(&seq.to_be_bytes());
    iv
}

/// The encryption context a message is made with: the caller's pairs
/// (none may use the reserved `aws-crypto-` prefix) and, for a signed
/// suite, the signer's public key. KMS must see exactly this context.
pub fn message_context(
    user: &BTreeMap<String, String>,
    signer: Option<&Signer>,
) -> Result<BTreeMap<String, String>, EsdkError> {
    if let Some(k) = user.keys().find(|k| k.starts_with(RESERVED_CONTEXT_PREFIX)) {
        return Err(EsdkError::Invalid(format!(
            "encryption context key {k:?} uses the reserved prefix {RESERVED_CONTEXT_PREFIX:?}"
        )));
    }
    let mut context = user.clone();
    if let Some(s) = signer {
        context.insert(PUBLIC_KEY_CONTEXT_KEY.to_string(), s.public_key_base64()?);
    }
    Ok(context)
}

/// What [`encrypt`] needs besides the streams.
pub struct EncryptRequest<'a> {
    /// A committing suite (0x0578 or 0x0478).
    pub suite: Suite,
    /// Plaintext bytes per frame (1 to [`MAX_FRAME_LENGTH`]).
    pub frame_length: u32,
    /// The context from [`message_context`] (the one KMS saw).
    pub context: BTreeMap<String, String>,
    /// One or more encrypted copies of `data_key`.
    pub encrypted_data_keys: Vec<EncryptedDataKey>,
    /// The 32-byte data key (the caller zeroizes it).
    pub data_key: &'a [u8],
    /// The signing key for signed suites (the one in `context`).
    pub signer: Option<Signer>,
}

/// Writes the message for everything `input` holds to `output`: header,
/// frames (the last one a final frame, full when the input is a multiple
/// of the frame length), footer for signed suites. `progress` is told the
/// plaintext bytes of each frame. Returns the message length.
pub fn encrypt<C: Chunks + ?Sized, W: Write>(
    input: &mut C,
    output: &mut W,
    request: EncryptRequest<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, EsdkError> {
    let EncryptRequest {
        suite,
        frame_length,
        context,
        encrypted_data_keys,
        data_key,
        mut signer,
    } = request;
    if !suite.is_committing() {
        return Err(EsdkError::Invalid(format!(
            "suite {suite} is for decryption only; encrypt with 0x0578 or 0x0478"
        )));
    }
    if frame_length == 0 || frame_length > MAX_FRAME_LENGTH {
        return Err(EsdkError::Invalid(format!(
            "frame length {frame_length}: 1 to {MAX_FRAME_LENGTH}"
        )));
    }
    match (&signer, context.get(PUBLIC_KEY_CONTEXT_KEY)) {
        (Some(s), Some(v)) if suite.is_signed() && *v == s.public_key_base64()? => {}
        (None, None) if !suite.is_signed() => {}
        _ => {
            return Err(EsdkError::Invalid(
                "the signing key, the suite and the context's public key disagree".into(),
            ))
        }
    }
    let mut message_id = vec![0u8; suite.message_id_len()];
    SystemRandom::new()
        .fill(&mut message_id)
        .map_err(|_| EsdkError::Crypto("random message id"))?;
    let keys = suite.derive(data_key, &message_id)?;
    let header = Header {
        suite,
        message_id,
        context,
        encrypted_data_keys,
        frame_length,
        commitment: keys.commit,
    };
    let mut head = header.serialize_body()?;
    let cipher = FrameCipher::new(&keys.content[..], &header.message_id)?;
    let tag = cipher
        .key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key([0u8; IV_LEN]),
            Aad::from(&head[..]),
            &mut [],
        )
        .map_err(|_| EsdkError::Crypto("AES-256-GCM seal"))?;
    head.extend_from_slice(tag.as_ref());
    drop(keys);

    let mut frames = FrameWriter {
        output,
        signer: &mut signer,
        cipher: &cipher,
        frame_length: frame_length as usize,
        written: 0,
        seq: 1,
    };
    frames.write_all(&[&head])?;
    let fl = frame_length as usize;
    // The last 1 to `fl` bytes read so far, unsealed: the final frame if
    // the input ends here. Each chunk's other frames are sealed in place
    // and written as soon as it is read (while it is still in this core's
    // cache), and the chunk goes back to the source before the next one
    // is read: no read-ahead of a whole chunk to find the end. Only this
    // tail (at most one frame per chunk) is copied. Wiped when dropped.
    let mut carry = Zeroizing::new(Vec::with_capacity(fl));
    loop {
        let mut chunk = input.next_chunk()?;
        if chunk.is_empty() {
            // The end: the final frame is the tail, possibly empty.
            input.recycle(chunk);
            frames.seal_batch(&mut carry, true, progress)?;
            break;
        }
        // Complete the tail from this chunk; it is a regular frame once
        // full and followed by more input.
        let off = (fl - carry.len()).min(chunk.len());
        carry.extend_from_slice(&chunk[..off]);
        if carry.len() == fl && off < chunk.len() {
            frames.seal_batch(&mut carry, false, progress)?;
            carry.clear();
        }
        let rest = chunk.len() - off;
        if rest > 0 {
            // `carry` is empty here. Keep the last 1..=fl bytes back.
            let whole = rest - ((rest - 1) % fl + 1);
            frames.seal_batch(&mut chunk[off..off + whole], false, progress)?;
            carry.extend_from_slice(&chunk[off + whole..]);
        }
        input.recycle(chunk);
    }
    let mut written = frames.written;
    if let Some(s) = signer.take() {
        let footer = s.finish()?;
        output.write_all(&footer)?;
        written += footer.len() as u64;
    }
    output.flush()?;
    Ok(written)
}

/// Seals frames in place and writes them, with their prefixes and tags,
/// in vectored writes; feeds the signer the same bytes in order.
struct FrameWriter<'a, W: Write> {
    output: &'a mut W,
    signer: &'a mut Option<Signer>,
    cipher: &'a FrameCipher,
    frame_length: usize,
    written: u64,
    seq: u32,
}

impl<W: Write> FrameWriter<'_, W> {
    /// Seals the frames of `content` in place and writes them. Without
    /// `last`, `content` is whole frames (possibly none); with `last`, its
    /// final frame is the tail: a full frame, a shorter one, or an empty
    /// one when `content` is empty.
    fn seal_batch(
        &mut self,
        content: &mut [u8],
        last: bool,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), EsdkError> {
        let fl = self.frame_length;
        let count = if last {
            content.len().div_ceil(fl).max(1)
        } else {
            content.len() / fl
        };
        let mut first = 0;
        while first < count {
            let group = (count - first).min(BATCH_FRAMES);
            let final_group = last && first + group == count;
            let start = first * fl;
            let end = if final_group {
                content.len()
            } else {
                (first + group) * fl
            };
            let region = &mut content[start..end];
            let region_len = region.len();
            let range = |i: usize| i * fl..((i + 1) * fl).min(region_len);
            let mut prefixes = [[0u8; PREFIX]; BATCH_FRAMES];
            let mut prefix_lens = [0usize; BATCH_FRAMES];
            let mut tags = [[0u8; TAG_LEN]; BATCH_FRAMES];
            for i in 0..group {
                let is_last = final_group && i == group - 1;
                let seq = self.seq;
                if !is_last && seq == u32::MAX - 1 {
                    return Err(EsdkError::Invalid("more than 2^32 - 2 frames".into()));
                }
                let iv = frame_iv(seq);
                let frame = &mut region[range(i)];
                let n = frame.len();
                let p = &mut prefixes[i];
                prefix_lens[i] = if is_last {
                    p[0..4].copy_from_slice(&FINAL_MARKER);
                    p[4..8].copy_from_slice(&seq.to_be_bytes());
                    p[8..20].copy_from_slice(&iv);
                    p[20..24].copy_from_slice(&(n as u32).to_be_bytes());
                    24
                } else {
                    p[0..4].copy_from_slice(&seq.to_be_bytes());
                    p[4..16].copy_from_slice(&iv);
                    16
                };
                tags[i] = self.cipher.seal(is_last, seq, iv, frame)?;
                progress(n as u64);
                self.seq = seq.wrapping_add(1);
            }
            let region = &*region;
            let mut parts: Vec<&[u8]> = Vec::with_capacity(3 * group);
            for i in 0..group {
                parts.push(&prefixes[i][..prefix_lens[i]]);
                parts.push(&region[range(i)]);
                parts.push(&tags[i]);
            }
            self.write_all(&parts)?;
            first += group;
        }
        Ok(())
    }

    /// Writes `parts` in order (vectored), feeding the signer.
    fn write_all(&mut self, parts: &[&[u8]]) -> Result<(), EsdkError> {
        if let Some(s) = self.signer.as_mut() {
            for part in parts {
                s.update(part);
            }
        }
        let mut slices: Vec<IoSlice<'_>> = parts
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| IoSlice::new(p))
            .collect();
        let mut slices = &mut slices[..];
        while !slices.is_empty() {
            match self.output.write_vectored(slices) {
                Ok(0) => {
                    return Err(std::io::Error::from(ErrorKind::WriteZero).into());
                }
                Ok(n) => {
                    self.written += n as u64;
                    IoSlice::advance_slices(&mut slices, n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// Slices gathered into one vectored write of plaintext when decrypting.
const MAX_SLICES: usize = 512;

/// Writes `chunk[range]` for every pending range, in order, and clears them.
fn write_ranges<W: Write>(
    output: &mut W,
    chunk: &[u8],
    pending: &mut Vec<std::ops::Range<usize>>,
) -> Result<(), EsdkError> {
    let mut slices: Vec<IoSlice<'_>> = pending
        .drain(..)
        .filter(|range| !range.is_empty())
        .map(|range| IoSlice::new(&chunk[range]))
        .collect();
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        match output.write_vectored(slices) {
            Ok(0) => return Err(std::io::Error::from(ErrorKind::WriteZero).into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A read position in the chunks of a message body.
struct ChunkCursor<'a, C: Chunks + ?Sized> {
    src: &'a mut C,
    /// The current chunk, from `src` once `held`.
    chunk: Zeroizing<Vec<u8>>,
    held: bool,
    pos: usize,
}

impl<C: Chunks + ?Sized> ChunkCursor<'_, C> {
    /// Unread bytes in the current chunk.
    fn available(&self) -> usize {
        self.chunk.len() - self.pos
    }

    /// Moves to the next chunk (the current one goes back to the source);
    /// false at the end of the input.
    fn advance(&mut self) -> Result<bool, EsdkError> {
        // Handed back first, so that an inline source reads the next chunk
        // into the same (cache-warm) buffer.
        let old = std::mem::take(&mut self.chunk);
        if std::mem::replace(&mut self.held, false) {
            self.src.recycle(old);
        }
        self.pos = 0;
        self.chunk = self.src.next_chunk()?;
        self.held = true;
        Ok(!self.chunk.is_empty())
    }

    /// Copies the next `out.len()` bytes, across chunks.
    fn read_exact(&mut self, out: &mut [u8], what: &'static str) -> Result<(), EsdkError> {
        let mut n = 0;
        while n < out.len() {
            if self.available() == 0 && !self.advance()? {
                return Err(EsdkError::Truncated(what));
            }
            let k = self.available().min(out.len() - n);
            out[n..n + k].copy_from_slice(&self.chunk[self.pos..self.pos + k]);
            self.pos += k;
            n += k;
        }
        Ok(())
    }

    /// Gives the current chunk back to the source.
    fn finish(self) {
        if self.held {
            self.src.recycle(self.chunk);
        }
    }
}

/// Authenticates the header with `data_key` (key commitment first, then the
/// header tag), then decrypts every frame of `input` to `output` in order,
/// checks the final frame, the footer signature of signed suites and that
/// nothing follows. Plaintext is written frame by frame as each frame
/// verifies, so with a signed suite it reaches `output` before the
/// signature is checked: a caller that must not release unauthenticated
/// plaintext writes to a temporary place and keeps it only on `Ok`.
/// Returns the plaintext length.
pub fn decrypt<C: Chunks + ?Sized, W: Write>(
    parsed: &ParsedHeader,
    data_key: &[u8],
    input: &mut C,
    output: &mut W,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, EsdkError> {
    let header = &parsed.header;
    let suite = header.suite;
    let keys = suite.derive(data_key, &header.message_id)?;
    if let (Some(expected), Some(found)) = (&keys.commit, &header.commitment) {
        aws_lc_rs::constant_time::verify_slices_are_equal(expected, found)
            .map_err(|_| EsdkError::Commitment)?;
    } else if suite.is_committing() {
        return Err(EsdkError::Commitment);
    }
    let cipher = FrameCipher::new(&keys.content[..], &header.message_id)?;
    drop(keys);
    let mut tag = parsed.tag;
    cipher
        .key
        .open_in_place(
            Nonce::assume_unique_for_key(parsed.iv),
            Aad::from(&parsed.body[..]),
            &mut tag,
        )
        .map_err(|_| EsdkError::HeaderAuth)?;

    let mut verifier = match (
        suite.is_signed(),
        header.context.get(PUBLIC_KEY_CONTEXT_KEY),
    ) {
        (true, Some(v)) => Some(Verifier::from_context_value(v)?),
        (true, None) => {
            return Err(EsdkError::Malformed(
                "a signed suite without aws-crypto-public-key in the context".into(),
            ))
        }
        (false, Some(_)) => {
            return Err(EsdkError::Malformed(
                "aws-crypto-public-key in the context of an unsigned suite".into(),
            ))
        }
        (false, None) => None,
    };
    let mut absorb = |bytes: &[u8]| {
        if let Some(v) = verifier.as_mut() {
            v.update(bytes);
        }
    };
    absorb(&parsed.raw());

    let fl = header.frame_length as usize;
    // A frame that lies within one input chunk is decrypted in place there
    // and its plaintext written from there (vectored, several frames at a
    // time); one that spans chunks is copied into `spill` first. Pending
    // writes refer to the current chunk, so they go out before the cursor
    // may move to the next one. Both hold plaintext: wiped when dropped.
    let mut cursor = ChunkCursor {
        src: input,
        chunk: Zeroizing::new(Vec::new()),
        held: false,
        pos: 0,
    };
    let mut spill = Zeroizing::new(Vec::with_capacity(fl + TAG_LEN));
    let mut pending: Vec<std::ops::Range<usize>> = Vec::new();
    let mut expected: u32 = 1;
    let mut total = 0u64;
    loop {
        if cursor.available() < PREFIX + fl + TAG_LEN || pending.len() >= MAX_SLICES {
            write_ranges(output, &cursor.chunk, &mut pending)?;
        }
        let mut first = [0u8; 4];
        cursor.read_exact(&mut first, "body")?;
        absorb(&first);
        let last = first == FINAL_MARKER;
        let seq = if last {
            let mut s = [0u8; 4];
            cursor.read_exact(&mut s, "final frame")?;
            absorb(&s);
            u32::from_be_bytes(s)
        } else {
            u32::from_be_bytes(first)
        };
        if seq != expected {
            return Err(EsdkError::FrameOrder {
                expected,
                found: seq,
            });
        }
        let what = if last { "final frame" } else { "body" };
        let mut iv = [0u8; IV_LEN];
        cursor.read_exact(&mut iv, what)?;
        absorb(&iv);
        let len = if last {
            let mut l = [0u8; 4];
            cursor.read_exact(&mut l, what)?;
            absorb(&l);
            let len = u32::from_be_bytes(l) as usize;
            if len > fl {
                return Err(EsdkError::Malformed(format!(
                    "final frame of {len} bytes in a message of {fl}-byte frames"
                )));
            }
            len
        } else {
            fl
        };
        if cursor.available() >= len + TAG_LEN {
            let at = cursor.pos;
            let frame = &mut cursor.chunk[at..at + len + TAG_LEN];
            absorb(frame);
            let n = cipher.open(last, seq, iv, frame)?;
            cursor.pos += len + TAG_LEN;
            pending.push(at..at + n);
            total += n as u64;
            progress(n as u64);
        } else {
            // Spans chunks (pending is empty: written above).
            spill.resize(len + TAG_LEN, 0);
            cursor.read_exact(&mut spill, what)?;
            absorb(&spill);
            let n = cipher.open(last, seq, iv, &mut spill)?;
            // Verified frames are released before the footer is checked.
            output.write_all(&spill[..n])?;
            total += n as u64;
            progress(n as u64);
        }
        if last {
            break;
        }
        if expected == u32::MAX - 1 {
            return Err(EsdkError::Malformed("more than 2^32 - 2 frames".into()));
        }
        expected += 1;
    }
    write_ranges(output, &cursor.chunk, &mut pending)?;
    drop(spill);
    if let Some(v) = verifier {
        let mut l = [0u8; 2];
        cursor.read_exact(&mut l, "footer")?;
        let len = usize::from(u16::from_be_bytes(l));
        if len > MAX_SIGNATURE_LEN {
            return Err(EsdkError::Malformed(format!("a {len}-byte signature")));
        }
        let mut sig = vec![0u8; len];
        cursor.read_exact(&mut sig, "footer")?;
        v.verify(&sig)?;
    }
    if cursor.available() > 0 || cursor.advance()? {
        return Err(EsdkError::TrailingData);
    }
    cursor.finish();
    output.flush()?;
    Ok(total)
}
