//! Requests and results of the operations that carry more than one value.

use zeroize::Zeroizing;

use crate::types::{
    DataKeyPairSpec, EncryptionAlgorithm, KeySpec, KeyState, KeyUsage, MacAlgorithm,
    SigningAlgorithm, Tag, UnixSeconds,
};

/// What CreateKey takes (`CreateKeyRequest`).
#[derive(Debug, Clone, Default)]
pub struct CreateKeyRequest {
    /// Free text, up to 8192 characters.
    pub description: String,
    /// Defaults to SYMMETRIC_DEFAULT.
    pub key_spec: Option<KeySpec>,
    /// Defaults to the spec's first allowed usage.
    pub key_usage: Option<KeyUsage>,
    /// Up to 50 tags.
    pub tags: Vec<Tag>,
    /// The PKCS#11 token (key namespace) the key belongs to.
    pub token: Option<String>,
}

/// The result of Encrypt.
#[derive(Debug, Clone)]
pub struct EncryptOutput {
    /// The ciphertext blob; it names its key and version.
    pub ciphertext_blob: Vec<u8>,
    /// The full resource name of the key used.
    pub key_id: String,
    /// The algorithm used.
    pub encryption_algorithm: EncryptionAlgorithm,
}

/// The result of Decrypt. The plaintext is wiped on drop.
pub struct DecryptOutput {
    /// The decrypted bytes.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The full resource name of the key used.
    pub key_id: String,
    /// The algorithm used.
    pub encryption_algorithm: EncryptionAlgorithm,
}

impl std::fmt::Debug for DecryptOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptOutput")
            .field(
                "plaintext",
                &format_args!("<{} bytes redacted>", self.plaintext.len()),
            )
            .field("key_id", &self.key_id)
            .field("encryption_algorithm", &self.encryption_algorithm)
            .finish()
    }
}

/// The result of ReEncrypt.
#[derive(Debug, Clone)]
pub struct ReEncryptOutput {
    /// The new ciphertext blob.
    pub ciphertext_blob: Vec<u8>,
    /// The key the input was encrypted under.
    pub source_key_id: String,
    /// The key the output is encrypted under.
    pub key_id: String,
    /// The algorithm of the input.
    pub source_encryption_algorithm: EncryptionAlgorithm,
    /// The algorithm of the output.
    pub destination_encryption_algorithm: EncryptionAlgorithm,
}

/// The result of GenerateDataKey (plaintext present) or
/// GenerateDataKeyWithoutPlaintext (plaintext absent).
pub struct DataKey {
    /// The data key in plaintext, wiped on drop.
    pub plaintext: Option<Zeroizing<Vec<u8>>>,
    /// The data key encrypted under the KMS key.
    pub ciphertext_blob: Vec<u8>,
    /// The full resource name of the KMS key.
    pub key_id: String,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("plaintext", &self.plaintext.as_ref().map(|_| "<redacted>"))
            .field("ciphertext_blob_len", &self.ciphertext_blob.len())
            .field("key_id", &self.key_id)
            .finish()
    }
}

/// The result of ScheduleKeyDeletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledDeletion {
    /// The full resource name of the key.
    pub key_id: String,
    /// When the key will be destroyed.
    pub deletion_date: UnixSeconds,
    /// Always PendingDeletion.
    pub key_state: KeyState,
    /// The waiting period.
    pub pending_window_in_days: u32,
}

/// The result of Sign.
#[derive(Debug, Clone)]
pub struct SignOutput {
    /// The full resource name of the key.
    pub key_id: String,
    /// The signature (DER for ECDSA, as KMS returns it).
    pub signature: Vec<u8>,
    /// The algorithm used.
    pub signing_algorithm: SigningAlgorithm,
}

/// The result of a successful Verify. A signature that does not verify is
/// an error, `KMSInvalidSignatureException`, as in KMS.
#[derive(Debug, Clone)]
pub struct VerifyOutput {
    /// The full resource name of the key.
    pub key_id: String,
    /// Always true: an invalid signature is an error instead.
    pub signature_valid: bool,
    /// The algorithm used.
    pub signing_algorithm: SigningAlgorithm,
}

/// The result of GetPublicKey.
#[derive(Debug, Clone)]
pub struct PublicKeyOutput {
    /// The full resource name of the key.
    pub key_id: String,
    /// DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    /// The key's spec.
    pub key_spec: KeySpec,
    /// The key's usage.
    pub key_usage: KeyUsage,
    /// Usable encryption algorithms (RSA ENCRYPT_DECRYPT keys).
    pub encryption_algorithms: Vec<EncryptionAlgorithm>,
    /// Usable signing algorithms (SIGN_VERIFY keys).
    pub signing_algorithms: Vec<SigningAlgorithm>,
}

/// The result of GenerateMac.
#[derive(Debug, Clone)]
pub struct MacOutput {
    /// The full resource name of the key.
    pub key_id: String,
    /// The MAC.
    pub mac: Vec<u8>,
    /// The algorithm used.
    pub mac_algorithm: MacAlgorithm,
}

/// The result of GenerateDataKeyPair (plaintext private key present) or
/// GenerateDataKeyPairWithoutPlaintext (absent).
pub struct DataKeyPair {
    /// PKCS#8 DER private key in plaintext, wiped on drop.
    pub private_key_plaintext: Option<Zeroizing<Vec<u8>>>,
    /// The private key encrypted under the symmetric KMS key (a ciphertext blob).
    pub private_key_ciphertext_blob: Vec<u8>,
    /// DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    /// The full resource name of the symmetric KMS key.
    pub key_id: String,
    /// The pair's spec.
    pub key_pair_spec: DataKeyPairSpec,
}

impl std::fmt::Debug for DataKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKeyPair")
            .field(
                "private_key_plaintext",
                &self.private_key_plaintext.as_ref().map(|_| "<redacted>"),
            )
            .field("key_id", &self.key_id)
            .field("key_pair_spec", &self.key_pair_spec)
            .finish()
    }
}

/// What one `tick` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Keys destroyed because their deletion date passed.
    pub destroyed: Vec<String>,
    /// Keys rotated by their schedule.
    pub rotated: Vec<String>,
}

/// The result of Encapsulate. The shared secret is wiped on drop.
pub struct EncapsulateOutput {
    /// The full resource name of the ML-KEM key.
    pub key_id: String,
    /// The 32-byte shared secret.
    pub shared_secret: Zeroizing<Vec<u8>>,
    /// The ML-KEM ciphertext (768, 1088 or 1568 bytes).
    pub shared_secret_ciphertext_blob: Vec<u8>,
    /// The algorithm used.
    pub encapsulation_algorithm: crate::types::EncapsulationAlgorithm,
}

impl std::fmt::Debug for EncapsulateOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncapsulateOutput")
            .field("key_id", &self.key_id)
            .field("shared_secret", &format_args!("<redacted>"))
            .field(
                "shared_secret_ciphertext_blob",
                &format_args!("<{} bytes>", self.shared_secret_ciphertext_blob.len()),
            )
            .field("encapsulation_algorithm", &self.encapsulation_algorithm)
            .finish()
    }
}

/// The result of Decapsulate. The shared secret is wiped on drop.
pub struct DecapsulateOutput {
    /// The full resource name of the ML-KEM key.
    pub key_id: String,
    /// The 32-byte shared secret (a pseudo-random value for a ciphertext
    /// of another key or an altered one: implicit rejection).
    pub shared_secret: Zeroizing<Vec<u8>>,
    /// The algorithm used.
    pub encapsulation_algorithm: crate::types::EncapsulationAlgorithm,
}

impl std::fmt::Debug for DecapsulateOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecapsulateOutput")
            .field("key_id", &self.key_id)
            .field("shared_secret", &format_args!("<redacted>"))
            .field("encapsulation_algorithm", &self.encapsulation_algorithm)
            .finish()
    }
}
