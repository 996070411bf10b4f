//! The signature footer (data-format/message-footer.md) of signed suites:
//! ECDSA P-384 with SHA-384 over every header and body byte, DER-encoded,
//! after a 2-byte length. The verification key travels compressed and
//! base64-encoded in the encryption context (`aws-crypto-public-key`).
//!
//! aws-lc-rs, not ring: the message is hashed as it streams and the digest
//! signed at the end (ring signs only whole messages), and the compressed
//! point must be read back (ring accepts only uncompressed points).

use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsBigEndian, EcPublicKeyCompressedBin};
use aws_lc_rs::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P384_SHA384_ASN1,
    ECDSA_P384_SHA384_ASN1_SIGNING,
};
use base64::Engine as _;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use super::EsdkError;

/// Bytes handed to the hashing thread at a time.
const HASH_CHUNK: usize = 64 * 1024;
/// Chunks queued for the hashing thread.
const HASH_QUEUE: usize = 4;

/// SHA-384 of a stream, computed on another thread so that it overlaps the
/// AES-GCM of the frames (it costs more than the AES-GCM itself). The
/// bytes hashed are the message's (ciphertext), never plaintext.
struct StreamDigest {
    current: Vec<u8>,
    to_worker: Option<SyncSender<Vec<u8>>>,
    recycled: Receiver<Vec<u8>>,
    worker: Option<JoinHandle<digest::Digest>>,
}

impl StreamDigest {
    fn new() -> StreamDigest {
        let (to_worker, work) = sync_channel::<Vec<u8>>(HASH_QUEUE);
        let (give_back, recycled) = sync_channel::<Vec<u8>>(HASH_QUEUE + 2);
        let worker = std::thread::spawn(move || {
            let mut ctx = digest::Context::new(&digest::SHA384);
            while let Ok(mut chunk) = work.recv() {
                ctx.update(&chunk);
                chunk.clear();
                let _ = give_back.try_send(chunk);
            }
            ctx.finish()
        });
        StreamDigest {
            current: Vec::with_capacity(HASH_CHUNK),
            to_worker: Some(to_worker),
            recycled,
            worker: Some(worker),
        }
    }

    fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let take = (HASH_CHUNK - self.current.len()).min(bytes.len());
            self.current.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.current.len() == HASH_CHUNK {
                self.send();
            }
        }
    }

    fn send(&mut self) {
        let next = self
            .recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(HASH_CHUNK));
        let full = std::mem::replace(&mut self.current, next);
        if let Some(tx) = &self.to_worker {
            // A dead worker shows at finish (no digest).
            let _ = tx.send(full);
        }
    }

    fn finish(mut self) -> Result<digest::Digest, EsdkError> {
        if !self.current.is_empty() {
            self.send();
        }
        drop(self.to_worker.take());
        self.worker
            .take()
            .and_then(|w| w.join().ok())
            .ok_or(EsdkError::Crypto("SHA-384 thread"))
    }
}

/// The longest signature accepted in a footer (DER P-384 is at most 104 bytes).
pub const MAX_SIGNATURE_LEN: usize = 512;

/// A fresh per-message signing key and the running digest of the message.
pub struct Signer {
    key: EcdsaKeyPair,
    digest: StreamDigest,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(ECDSA P-384)")
    }
}

impl Signer {
    /// Generates a P-384 key pair for one message.
    pub fn generate() -> Result<Signer, EsdkError> {
        let key = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_ASN1_SIGNING)
            .map_err(|_| EsdkError::Crypto("ECDSA P-384 key generation"))?;
        Ok(Signer {
            key,
            digest: StreamDigest::new(),
        })
    }

    /// The public key as the context stores it: base64 of the compressed point.
    pub fn public_key_base64(&self) -> Result<String, EsdkError> {
        let compressed: EcPublicKeyCompressedBin<'_> = self
            .key
            .public_key()
            .as_be_bytes()
            .map_err(|_| EsdkError::Crypto("P-384 point compression"))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(compressed.as_ref()))
    }

    /// Adds message bytes to the digest.
    pub fn update(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
    }

    /// The footer: the signature's length and its DER encoding.
    pub fn finish(self) -> Result<Vec<u8>, EsdkError> {
        let digest = self.digest.finish()?;
        let sig = self
            .key
            .sign_digest(&digest)
            .map_err(|_| EsdkError::Crypto("ECDSA P-384 signing"))?;
        let sig = sig.as_ref();
        let len = u16::try_from(sig.len()).map_err(|_| EsdkError::Crypto("signature length"))?;
        let mut out = Vec::with_capacity(2 + sig.len());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(sig);
        Ok(out)
    }
}

/// The running digest of a message being decrypted and the key that must
/// have signed it.
pub struct Verifier {
    public_key: Vec<u8>,
    digest: StreamDigest,
}

impl Verifier {
    /// From the context's base64 compressed point; a key that is not a
    /// P-384 point is refused here rather than at the end.
    pub fn from_context_value(value: &str) -> Result<Verifier, EsdkError> {
        let public_key = base64::engine::general_purpose::STANDARD
            .decode(value)
            .map_err(|_| EsdkError::Malformed("aws-crypto-public-key is not base64".into()))?;
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, &public_key)
            .parse()
            .map_err(|_| {
                EsdkError::Malformed("aws-crypto-public-key is not a P-384 point".into())
            })?;
        Ok(Verifier {
            public_key,
            digest: StreamDigest::new(),
        })
    }

    /// Adds message bytes to the digest.
    pub fn update(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
    }

    /// Checks a DER signature over everything added.
    pub fn verify(self, signature: &[u8]) -> Result<(), EsdkError> {
        let digest = self.digest.finish()?;
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, &self.public_key)
            .verify_digest(&digest, signature)
            .map_err(|_| EsdkError::Signature)
    }
}
