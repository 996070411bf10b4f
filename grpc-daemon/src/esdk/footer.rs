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

use super::EsdkError;

/// The longest signature accepted in a footer (DER P-384 is at most 104 bytes).
pub const MAX_SIGNATURE_LEN: usize = 512;

/// A fresh per-message signing key and the running digest of the message.
pub struct Signer {
    key: EcdsaKeyPair,
    digest: digest::Context,
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
            digest: digest::Context::new(&digest::SHA384),
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
        let digest = self.digest.finish();
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
    digest: digest::Context,
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
            digest: digest::Context::new(&digest::SHA384),
        })
    }

    /// Adds message bytes to the digest.
    pub fn update(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
    }

    /// Checks a DER signature over everything added.
    pub fn verify(self, signature: &[u8]) -> Result<(), EsdkError> {
        let digest = self.digest.finish();
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, &self.public_key)
            .verify_digest(&digest, signature)
            .map_err(|_| EsdkError::Signature)
    }
}
