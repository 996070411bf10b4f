//! The AWS Encryption SDK message format (version 2, committing suites
//! 0x0578 and 0x0478; version 1 suites 0x0378, 0x0178 and 0x0078 for
//! decryption when allowed), streaming over any [`std::io::Read`] /
//! [`std::io::Write`] in constant memory: one frame buffer.
//!
//! Specification: awslabs/aws-encryption-sdk-specification,
//! data-format/message-header.md, message-body.md, message-body-aad.md,
//! message-footer.md and framework/algorithm-suites.md.
//!
//! This module knows nothing about KMS: the caller obtains the data key and
//! the encrypted data keys (`tinfoil encrypt-file` through tinfoild) and
//! hands them in. HKDF is ring's. AES-256-GCM is aws-lc-rs's: with the
//! AVX-512 VAES code it has and ring lacks, it seals 4 KiB frames about a
//! third faster than ring on such CPUs (12.1 against 8.9 GB/s of CPU time
//! on the AMD EPYC development VM; examples/esdk_bench.rs measures both).
//! The ECDSA P-384 footer is aws-lc-rs's too, because ring can neither
//! sign a precomputed digest (needed to sign a stream) nor read the
//! compressed public key the format stores in the encryption context.
//!
//! - [`suite`]: algorithm suites and key derivation.
//! - [`header`]: the header, encryption context and encrypted data keys.
//! - [`body`]: framed encryption and decryption, the whole-message drivers.
//! - [`footer`]: the signature footer.
//! - [`readahead`]: reading the input on another thread.

pub mod body;
pub mod footer;
pub mod header;
pub mod readahead;
pub mod suite;

#[cfg(test)]
mod tests;

pub use body::{decrypt, encrypt, EncryptRequest};
pub use footer::Signer;
pub use header::{read_header, EncryptedDataKey, Header, ParsedHeader};
pub use readahead::ReadAhead;
pub use suite::Suite;

/// The encryption context key holding the base64 compressed P-384 public
/// key of signed suites.
pub const PUBLIC_KEY_CONTEXT_KEY: &str = "aws-crypto-public-key";

/// The prefix of encryption context keys reserved to the format.
pub const RESERVED_CONTEXT_PREFIX: &str = "aws-crypto-";

/// The provider id of encrypted data keys made by (AWS or Tinfoil) KMS.
pub const KMS_PROVIDER_ID: &str = "aws-kms";

/// The AWS Encryption SDK's default frame length.
pub const DEFAULT_FRAME_LENGTH: u32 = 4096;

/// The size of the input chunks `tinfoil encrypt-file` / `decrypt-file`
/// read: small enough that a chunk (and the page-cache lines the kernel
/// copies it from) stays in a core's L2 cache while its frames are sealed
/// or opened in place, large enough that system calls are few.
pub const IO_CHUNK: usize = 256 * 1024;

/// How many chunks a reader thread ([`ReadAhead::new`]) may be ahead of
/// the cryptography.
pub const READ_AHEAD_DEPTH: usize = 4;

/// The chunk size of a file read on another thread
/// ([`ReadAhead::for_cores`]): the chunks arrive from the other core's cache
/// in any case, so they may be larger than [`IO_CHUNK`], and four times
/// fewer hand-overs between the threads cost less.
pub const READ_AHEAD_CHUNK: usize = 1024 * 1024;

/// Bounds on what a message being decrypted may ask for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The most encrypted data keys a header may carry.
    pub max_encrypted_data_keys: usize,
    /// The largest frame length accepted (the frame buffer's size).
    pub max_frame_length: u32,
    /// Whether the legacy non-committing suites are read.
    pub allow_non_committing: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_encrypted_data_keys: 16,
            max_frame_length: MAX_FRAME_LENGTH,
            allow_non_committing: false,
        }
    }
}

/// The largest frame length written or read by default (16 MiB): the frame
/// buffer is the only allocation that grows with the message.
pub const MAX_FRAME_LENGTH: u32 = 16 * 1024 * 1024;

/// Why a message could not be written or read. No variant carries key
/// material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum EsdkError {
    /// Reading the input or writing the output failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The message ended early.
    #[error("truncated message: it ends inside the {0}")]
    Truncated(&'static str),
    /// Bytes follow the end of the message.
    #[error("bytes after the end of the message")]
    TrailingData,
    /// The message is not in the format (or uses a part of it this
    /// implementation refuses, named in the text).
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The algorithm suite is not one this implementation supports.
    #[error("unsupported algorithm suite 0x{0:04X}")]
    UnsupportedSuite(u16),
    /// A legacy suite without key commitment, not allowed.
    #[error("algorithm suite {0} does not commit to its data key; refused (allow it with --allow-non-committing)")]
    NonCommitting(Suite),
    /// The message asks for more than [`Limits`] allows.
    #[error("limit exceeded: {0}")]
    Limit(String),
    /// The data key does not match the key commitment in the header.
    #[error("key commitment does not match: wrong data key or tampered header")]
    Commitment,
    /// The header's authentication tag is wrong.
    #[error("header authentication failed")]
    HeaderAuth,
    /// A frame's authentication tag is wrong (tampered, reordered or replaced).
    #[error("frame {0} authentication failed")]
    FrameAuth(u32),
    /// Frames out of order.
    #[error("frame {found} found where frame {expected} was expected")]
    FrameOrder {
        /// The sequence number expected.
        expected: u32,
        /// The sequence number read.
        found: u32,
    },
    /// The footer's signature does not verify.
    #[error("signature verification failed")]
    Signature,
    /// The caller's inputs are invalid (context, frame length, data keys).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A data key of the wrong length.
    #[error("the data key is {0} bytes; 32 expected")]
    DataKeyLength(usize),
    /// A cryptographic primitive failed unexpectedly.
    #[error("cryptographic failure in {0}")]
    Crypto(&'static str),
}

/// Reads exactly `buf.len()` bytes; an early end is [`EsdkError::Truncated`]
/// naming `what`.
pub(crate) fn read_exact(
    r: &mut impl std::io::Read,
    buf: &mut [u8],
    what: &'static str,
) -> Result<(), EsdkError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => EsdkError::Truncated(what),
        _ => EsdkError::Io(e),
    })
}
