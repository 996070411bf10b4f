//! The `Hsm` façade: every KMS operation hsm-core offers.
#![allow(unused_variables)]

use std::path::Path;
use std::sync::Arc;

use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::outputs::*;
use crate::types::*;

/// Argon2id parameters for deriving the key-encryption key from the passphrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB (default 65536 = 64 MiB).
    pub memory_kib: u32,
    /// Iterations (default 3).
    pub iterations: u32,
    /// Lanes (default 1).
    pub parallelism: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }
}

/// How to open or initialise a store.
#[derive(Debug, Clone)]
pub struct HsmOptions {
    /// Argon2id parameters used by `init` and `change_passphrase`.
    pub kdf: KdfParams,
    /// Where time comes from.
    pub clock: Arc<dyn Clock>,
    /// How many unwrapped key versions to keep in memory.
    pub cache_capacity: usize,
}

impl Default for HsmOptions {
    fn default() -> Self {
        HsmOptions {
            kdf: KdfParams::default(),
            clock: Arc::new(SystemClock),
            cache_capacity: 1024,
        }
    }
}

/// An unsealed key store. `Send + Sync`; share it behind an `Arc`.
pub struct Hsm {}

fn pending() -> Error {
    Error::UnsupportedOperation("not yet implemented".into())
}

impl Hsm {
    /// Whether `data_dir` holds an initialised store.
    pub fn is_initialized(data_dir: &Path) -> bool {
        false
    }
    /// Creates a new store in `data_dir` (created 0700), sealed under `passphrase`.
    pub fn init(data_dir: &Path, passphrase: &SecretString, options: HsmOptions) -> Result<Hsm> {
        Err(pending())
    }
    /// Opens and unseals an existing store.
    pub fn open(data_dir: &Path, passphrase: &SecretString, options: HsmOptions) -> Result<Hsm> {
        Err(pending())
    }
    /// Rewraps the root key under a new passphrase.
    pub fn change_passphrase(&self, new_passphrase: &SecretString) -> Result<()> {
        Err(pending())
    }
    /// The current time on this store's clock.
    pub fn now(&self) -> UnixSeconds {
        0
    }
    /// Applies due deletions and rotations as of `now`.
    pub fn tick(&self, now: UnixSeconds) -> Result<TickReport> {
        Err(pending())
    }

    /// CreateKey.
    pub fn create_key(&self, request: CreateKeyRequest) -> Result<KeyMetadata> {
        Err(pending())
    }
    /// DescribeKey.
    pub fn describe_key(&self, key_id: &str) -> Result<KeyMetadata> {
        Err(pending())
    }
    /// ListKeys; `token` filters to one PKCS#11 namespace.
    pub fn list_keys(
        &self,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<KeyListEntry>> {
        Err(pending())
    }
    /// UpdateKeyDescription.
    pub fn update_key_description(&self, key_id: &str, description: &str) -> Result<()> {
        Err(pending())
    }
    /// EnableKey.
    pub fn enable_key(&self, key_id: &str) -> Result<()> {
        Err(pending())
    }
    /// DisableKey.
    pub fn disable_key(&self, key_id: &str) -> Result<()> {
        Err(pending())
    }
    /// ScheduleKeyDeletion (7 to 30 days, default 30).
    pub fn schedule_key_deletion(
        &self,
        key_id: &str,
        pending_window_in_days: Option<u32>,
    ) -> Result<ScheduledDeletion> {
        Err(pending())
    }
    /// CancelKeyDeletion; the key becomes Disabled.
    pub fn cancel_key_deletion(&self, key_id: &str) -> Result<String> {
        Err(pending())
    }
    /// EnableKeyRotation (90 to 2560 days, default 365).
    pub fn enable_key_rotation(
        &self,
        key_id: &str,
        rotation_period_in_days: Option<u32>,
    ) -> Result<()> {
        Err(pending())
    }
    /// DisableKeyRotation.
    pub fn disable_key_rotation(&self, key_id: &str) -> Result<()> {
        Err(pending())
    }
    /// GetKeyRotationStatus.
    pub fn get_key_rotation_status(&self, key_id: &str) -> Result<RotationStatus> {
        Err(pending())
    }
    /// RotateKeyOnDemand; returns the key's full resource name.
    pub fn rotate_key_on_demand(&self, key_id: &str) -> Result<String> {
        Err(pending())
    }
    /// ListKeyRotations.
    pub fn list_key_rotations(
        &self,
        key_id: &str,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<RotationEntry>> {
        Err(pending())
    }

    /// CreateAlias.
    pub fn create_alias(&self, alias_name: &str, target_key_id: &str) -> Result<()> {
        Err(pending())
    }
    /// UpdateAlias.
    pub fn update_alias(&self, alias_name: &str, target_key_id: &str) -> Result<()> {
        Err(pending())
    }
    /// DeleteAlias.
    pub fn delete_alias(&self, alias_name: &str) -> Result<()> {
        Err(pending())
    }
    /// ListAliases, optionally only those of one key.
    pub fn list_aliases(
        &self,
        key_id: Option<&str>,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<AliasEntry>> {
        Err(pending())
    }

    /// TagResource (adds or replaces).
    pub fn tag_resource(&self, key_id: &str, tags: &[Tag]) -> Result<()> {
        Err(pending())
    }
    /// UntagResource.
    pub fn untag_resource(&self, key_id: &str, tag_keys: &[String]) -> Result<()> {
        Err(pending())
    }
    /// ListResourceTags.
    pub fn list_resource_tags(
        &self,
        key_id: &str,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<Tag>> {
        Err(pending())
    }

    /// Encrypt.
    pub fn encrypt(
        &self,
        key_id: &str,
        plaintext: &[u8],
        context: &EncryptionContext,
        algorithm: Option<EncryptionAlgorithm>,
    ) -> Result<EncryptOutput> {
        Err(pending())
    }
    /// Decrypt. `key_id`, when given, must be the key the blob names.
    pub fn decrypt(
        &self,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
        key_id: Option<&str>,
        algorithm: Option<EncryptionAlgorithm>,
    ) -> Result<DecryptOutput> {
        Err(pending())
    }
    /// ReEncrypt; the plaintext never leaves the core.
    pub fn re_encrypt(
        &self,
        ciphertext_blob: &[u8],
        source_context: &EncryptionContext,
        source_key_id: Option<&str>,
        destination_key_id: &str,
        destination_context: &EncryptionContext,
    ) -> Result<ReEncryptOutput> {
        Err(pending())
    }
    /// GenerateDataKey: exactly one of `key_spec` and `number_of_bytes` (1 to 1024).
    pub fn generate_data_key(
        &self,
        key_id: &str,
        key_spec: Option<DataKeySpec>,
        number_of_bytes: Option<u32>,
        context: &EncryptionContext,
    ) -> Result<DataKey> {
        Err(pending())
    }
    /// GenerateDataKeyWithoutPlaintext.
    pub fn generate_data_key_without_plaintext(
        &self,
        key_id: &str,
        key_spec: Option<DataKeySpec>,
        number_of_bytes: Option<u32>,
        context: &EncryptionContext,
    ) -> Result<DataKey> {
        Err(pending())
    }
    /// GenerateRandom (1 to 1024 bytes).
    pub fn generate_random(&self, number_of_bytes: u32) -> Result<Zeroizing<Vec<u8>>> {
        Err(pending())
    }

    /// Sign.
    pub fn sign(
        &self,
        key_id: &str,
        message: &[u8],
        message_type: MessageType,
        algorithm: SigningAlgorithm,
    ) -> Result<SignOutput> {
        Err(pending())
    }
    /// Verify; an invalid signature is `Error::InvalidSignature`.
    pub fn verify(
        &self,
        key_id: &str,
        message: &[u8],
        message_type: MessageType,
        signature: &[u8],
        algorithm: SigningAlgorithm,
    ) -> Result<VerifyOutput> {
        Err(pending())
    }
    /// GetPublicKey.
    pub fn get_public_key(&self, key_id: &str) -> Result<PublicKeyOutput> {
        Err(pending())
    }
    /// GenerateMac.
    pub fn generate_mac(
        &self,
        key_id: &str,
        message: &[u8],
        algorithm: MacAlgorithm,
    ) -> Result<MacOutput> {
        Err(pending())
    }
    /// VerifyMac; a wrong MAC is `Error::InvalidMac`.
    pub fn verify_mac(
        &self,
        key_id: &str,
        message: &[u8],
        mac: &[u8],
        algorithm: MacAlgorithm,
    ) -> Result<String> {
        Err(pending())
    }
    /// GenerateDataKeyPair (`with_plaintext`) or GenerateDataKeyPairWithoutPlaintext.
    pub fn generate_data_key_pair(
        &self,
        key_id: &str,
        key_pair_spec: DataKeyPairSpec,
        context: &EncryptionContext,
        with_plaintext: bool,
    ) -> Result<DataKeyPair> {
        Err(pending())
    }
}
