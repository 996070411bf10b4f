//! The AWS KMS vocabulary: key specs, usages, states, algorithms and the
//! metadata and listing records the operations return.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::{Error, Result};

/// Declares an enum whose variants have fixed AWS KMS names, with
/// `as_str`, `parse` (exact KMS name, else ValidationException) and `ALL`.
macro_rules! kms_names {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The AWS KMS name of this value.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses an AWS KMS name; anything else is a ValidationException.
            pub fn parse(text: &str) -> Result<Self> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(Error::Validation(format!(
                        "{} is not a valid {}; expected one of: {}",
                        crate::types::printable(other),
                        stringify!($name),
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// Quotes user input for an error message, cut to 64 characters.
pub(crate) fn printable(text: &str) -> String {
    let cut: String = text.chars().take(64).collect();
    format!("{cut:?}")
}

kms_names!(
    /// The kind of key material (`KeySpec`).
    KeySpec {
        /// AES-256-GCM, the default symmetric key.
        SymmetricDefault => "SYMMETRIC_DEFAULT",
        /// RSA with a 2048-bit modulus.
        Rsa2048 => "RSA_2048",
        /// RSA with a 3072-bit modulus.
        Rsa3072 => "RSA_3072",
        /// RSA with a 4096-bit modulus.
        Rsa4096 => "RSA_4096",
        /// RSA with an 8192-bit modulus: made through PKCS#11 only; not an
        /// AWS KMS key spec.
        Rsa8192 => "RSA_8192",
        /// ECDSA on NIST P-256.
        EccNistP256 => "ECC_NIST_P256",
        /// ECDSA on NIST P-384.
        EccNistP384 => "ECC_NIST_P384",
        /// ECDSA on NIST P-521.
        EccNistP521 => "ECC_NIST_P521",
        /// Ed25519 (EdDSA on Curve25519).
        EccEd25519 => "ECC_NIST_EDWARDS25519",
        /// X25519 (RFC 7748) key agreement: made through PKCS#11 only
        /// (CKK_EC_MONTGOMERY); not an AWS KMS key spec.
        EccX25519 => "ECC_X25519",
        /// HMAC with a 224-bit key.
        Hmac224 => "HMAC_224",
        /// HMAC with a 256-bit key.
        Hmac256 => "HMAC_256",
        /// HMAC with a 384-bit key.
        Hmac384 => "HMAC_384",
        /// HMAC with a 512-bit key.
        Hmac512 => "HMAC_512",
        /// ML-DSA-44 (FIPS 204), NIST security category 2.
        MlDsa44 => "ML_DSA_44",
        /// ML-DSA-65 (FIPS 204), NIST security category 3.
        MlDsa65 => "ML_DSA_65",
        /// ML-DSA-87 (FIPS 204), NIST security category 5.
        MlDsa87 => "ML_DSA_87",
        /// ML-KEM-512 (FIPS 203), NIST security category 1.
        MlKem512 => "ML_KEM_512",
        /// ML-KEM-768 (FIPS 203), NIST security category 3.
        MlKem768 => "ML_KEM_768",
        /// ML-KEM-1024 (FIPS 203), NIST security category 5.
        MlKem1024 => "ML_KEM_1024",
        /// RSA with a 1024-bit modulus, for legacy PKCS#11 fixtures only:
        /// below NIST's 112-bit minimum, not an AWS KMS key spec, made and
        /// used through PKCS#11 only (the KMS API creates none and offers
        /// no algorithm for it).
        Rsa1024 => "RSA_1024",
        /// RSA with a modulus of any other size from 1024 to 8192 bits
        /// (e.g. 1536 or 2560; the key's CKA_MODULUS_BITS says which): made
        /// and used through PKCS#11 only, like `RSA_1024`.
        RsaOtherSize => "RSA_OTHER_SIZE",
    }
);

impl KeySpec {
    /// Whether this is the symmetric encryption key spec.
    pub fn is_symmetric(self) -> bool {
        self == KeySpec::SymmetricDefault
    }
    /// Whether this is an RSA key spec.
    pub fn is_rsa(self) -> bool {
        matches!(
            self,
            KeySpec::Rsa1024
                | KeySpec::RsaOtherSize
                | KeySpec::Rsa2048
                | KeySpec::Rsa3072
                | KeySpec::Rsa4096
                | KeySpec::Rsa8192
        )
    }
    /// Whether this is an elliptic-curve key spec (Ed25519 and X25519
    /// included).
    pub fn is_ecc(self) -> bool {
        matches!(
            self,
            KeySpec::EccNistP256
                | KeySpec::EccNistP384
                | KeySpec::EccNistP521
                | KeySpec::EccEd25519
                | KeySpec::EccX25519
        )
    }
    /// Whether this is an HMAC key spec.
    pub fn is_hmac(self) -> bool {
        matches!(
            self,
            KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512
        )
    }
    /// Whether this is an ML-DSA (FIPS 204) key spec.
    pub fn is_ml_dsa(self) -> bool {
        matches!(self, KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87)
    }
    /// Whether this is an ML-KEM (FIPS 203) key spec.
    pub fn is_ml_kem(self) -> bool {
        matches!(
            self,
            KeySpec::MlKem512 | KeySpec::MlKem768 | KeySpec::MlKem1024
        )
    }
    /// Whether keys of this spec have a public key (GetPublicKey).
    pub fn has_public_key(self) -> bool {
        self.is_rsa() || self.is_ecc() || self.is_ml_dsa() || self.is_ml_kem()
    }
    /// The key usages this spec allows, as in KMS.
    pub fn allowed_usages(self) -> &'static [KeyUsage] {
        if self.is_ml_dsa() {
            return &[KeyUsage::SignVerify];
        }
        if self.is_ml_kem() {
            return &[KeyUsage::EncapsulateDecapsulate];
        }
        if self.is_symmetric() {
            &[KeyUsage::EncryptDecrypt]
        } else if self.is_rsa() {
            &[KeyUsage::SignVerify, KeyUsage::EncryptDecrypt]
        } else if self.is_ecc() {
            &[KeyUsage::SignVerify]
        } else {
            &[KeyUsage::GenerateVerifyMac]
        }
    }
    /// The default usage when CreateKey names none.
    pub fn default_usage(self) -> KeyUsage {
        self.allowed_usages()[0]
    }
}

kms_names!(
    /// What a key may be used for (`KeyUsage`).
    KeyUsage {
        /// Encrypt and Decrypt.
        EncryptDecrypt => "ENCRYPT_DECRYPT",
        /// Sign and Verify.
        SignVerify => "SIGN_VERIFY",
        /// GenerateMac and VerifyMac.
        GenerateVerifyMac => "GENERATE_VERIFY_MAC",
        /// Encapsulate and Decapsulate (ML-KEM keys).
        EncapsulateDecapsulate => "ENCAPSULATE_DECAPSULATE",
    }
);

impl KeyUsage {
    /// The key encapsulation algorithms a key of this usage supports
    /// (`EncapsulationAlgorithms` of DescribeKey and GetPublicKey): ML_KEM
    /// for ENCAPSULATE_DECAPSULATE keys, none otherwise.
    pub fn encapsulation_algorithms(self) -> Vec<EncapsulationAlgorithm> {
        match self {
            KeyUsage::EncapsulateDecapsulate => vec![EncapsulationAlgorithm::MlKem],
            _ => Vec::new(),
        }
    }
}

kms_names!(
    /// The lifecycle state of a key (`KeyState`).
    KeyState {
        /// Usable for cryptographic operations.
        Enabled => "Enabled",
        /// Kept, but refused for cryptographic operations.
        Disabled => "Disabled",
        /// Scheduled for deletion; destroyed when the deletion date passes.
        PendingDeletion => "PendingDeletion",
    }
);

kms_names!(
    /// Where the key material came from (`Origin`).
    Origin {
        /// Generated inside Tinfoil.
        AwsKms => "AWS_KMS",
        /// Imported by the caller (PKCS#11 C_CreateObject / C_UnwrapKey).
        External => "EXTERNAL",
    }
);

kms_names!(
    /// Encryption algorithms (`EncryptionAlgorithmSpec`).
    EncryptionAlgorithm {
        /// AES-256-GCM under a per-message derived key.
        SymmetricDefault => "SYMMETRIC_DEFAULT",
        /// RSA-OAEP with SHA-1.
        RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
        /// RSA-OAEP with SHA-256.
        RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
    }
);

kms_names!(
    /// Signing algorithms (`SigningAlgorithmSpec`).
    SigningAlgorithm {
        /// RSASSA-PKCS1-v1_5 with SHA-256.
        RsassaPkcs1V15Sha256 => "RSASSA_PKCS1_V1_5_SHA_256",
        /// RSASSA-PKCS1-v1_5 with SHA-384.
        RsassaPkcs1V15Sha384 => "RSASSA_PKCS1_V1_5_SHA_384",
        /// RSASSA-PKCS1-v1_5 with SHA-512.
        RsassaPkcs1V15Sha512 => "RSASSA_PKCS1_V1_5_SHA_512",
        /// RSASSA-PSS with SHA-256.
        RsassaPssSha256 => "RSASSA_PSS_SHA_256",
        /// RSASSA-PSS with SHA-384.
        RsassaPssSha384 => "RSASSA_PSS_SHA_384",
        /// RSASSA-PSS with SHA-512.
        RsassaPssSha512 => "RSASSA_PSS_SHA_512",
        /// ECDSA with SHA-256.
        EcdsaSha256 => "ECDSA_SHA_256",
        /// ECDSA with SHA-384.
        EcdsaSha384 => "ECDSA_SHA_384",
        /// ECDSA with SHA-512.
        EcdsaSha512 => "ECDSA_SHA_512",
        /// Pure Ed25519 (EdDSA) over the raw message.
        Ed25519Sha512 => "ED25519_SHA_512",
        /// ML-DSA (FIPS 204), hedged, empty context; RAW messages or an
        /// EXTERNAL_MU.
        MlDsaShake256 => "ML_DSA_SHAKE_256",
    }
);

kms_names!(
    /// Key encapsulation algorithms (`EncapsulationAlgorithmSpec`).
    EncapsulationAlgorithm {
        /// ML-KEM (FIPS 203) with the key's parameter set.
        MlKem => "ML_KEM",
    }
);

kms_names!(
    /// Whether Sign/Verify get the message or its digest (`MessageType`).
    MessageType {
        /// The message itself (up to 4096 bytes); hashed inside.
        Raw => "RAW",
        /// A digest of the algorithm's length.
        Digest => "DIGEST",
        /// The 64-byte ML-DSA message representative mu (FIPS 204
        /// section 6.2), ML_DSA_SHAKE_256 only.
        ExternalMu => "EXTERNAL_MU",
    }
);

kms_names!(
    /// MAC algorithms (`MacAlgorithmSpec`).
    MacAlgorithm {
        /// HMAC-SHA-224.
        HmacSha224 => "HMAC_SHA_224",
        /// HMAC-SHA-256.
        HmacSha256 => "HMAC_SHA_256",
        /// HMAC-SHA-384.
        HmacSha384 => "HMAC_SHA_384",
        /// HMAC-SHA-512.
        HmacSha512 => "HMAC_SHA_512",
    }
);

kms_names!(
    /// Data key lengths for GenerateDataKey (`KeySpec` of that call).
    DataKeySpec {
        /// 16 bytes.
        Aes128 => "AES_128",
        /// 32 bytes.
        Aes256 => "AES_256",
    }
);

kms_names!(
    /// Data key pair specs for GenerateDataKeyPair (`KeyPairSpec`).
    DataKeyPairSpec {
        /// RSA 2048.
        Rsa2048 => "RSA_2048",
        /// RSA 3072.
        Rsa3072 => "RSA_3072",
        /// RSA 4096.
        Rsa4096 => "RSA_4096",
        /// NIST P-256.
        EccNistP256 => "ECC_NIST_P256",
        /// NIST P-384.
        EccNistP384 => "ECC_NIST_P384",
        /// NIST P-521.
        EccNistP521 => "ECC_NIST_P521",
    }
);

kms_names!(
    /// How a key version came to be (`RotationType`).
    RotationType {
        /// Made by the rotation schedule.
        Automatic => "AUTOMATIC",
        /// Made by RotateKeyOnDemand.
        OnDemand => "ON_DEMAND",
    }
);

/// An encryption context: a map of strings bound to a ciphertext as
/// associated data. Order does not matter; the encoding is canonical.
pub type EncryptionContext = BTreeMap<String, String>;

/// Seconds since the Unix epoch, the unit of every date hsm-core returns.
pub type UnixSeconds = i64;

/// A key's metadata (`KeyMetadata`). Holds no key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMetadata {
    /// The key id, a UUID.
    pub key_id: String,
    /// The key's full resource name.
    pub arn: String,
    /// The description set at creation or by UpdateKeyDescription.
    pub description: String,
    /// The kind of key material.
    pub key_spec: KeySpec,
    /// What the key may be used for.
    pub key_usage: KeyUsage,
    /// Where the material came from.
    pub origin: Origin,
    /// When the key was created.
    pub creation_date: UnixSeconds,
    /// The lifecycle state.
    pub key_state: KeyState,
    /// When the key will be destroyed, while PendingDeletion.
    pub deletion_date: Option<UnixSeconds>,
    /// The waiting period chosen at ScheduleKeyDeletion, while PendingDeletion.
    pub pending_deletion_window_in_days: Option<u32>,
    /// The newest version number (1 for a key never rotated).
    pub current_key_version: u32,
    /// The PKCS#11 token (key namespace) the key belongs to, if any.
    pub token: Option<String>,
    /// The encryption algorithms the key supports.
    pub encryption_algorithms: Vec<EncryptionAlgorithm>,
    /// The signing algorithms the key supports.
    pub signing_algorithms: Vec<SigningAlgorithm>,
    /// The MAC algorithms the key supports.
    pub mac_algorithms: Vec<MacAlgorithm>,
}

/// One entry of ListKeys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyListEntry {
    /// The key id.
    pub key_id: String,
    /// The key's full resource name.
    pub arn: String,
}

/// One entry of ListAliases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasEntry {
    /// `alias/<name>`.
    pub alias_name: String,
    /// The alias's full resource name.
    pub alias_arn: String,
    /// The key the alias points at.
    pub target_key_id: String,
    /// When the alias was created.
    pub creation_date: UnixSeconds,
    /// When the alias was last pointed at a key.
    pub last_updated_date: UnixSeconds,
}

/// A tag on a key (`Tag`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// 1 to 128 characters.
    pub tag_key: String,
    /// 0 to 256 characters.
    pub tag_value: String,
}

/// One entry of ListKeyRotations: a version made by a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationEntry {
    /// The key id.
    pub key_id: String,
    /// The version this rotation made.
    pub key_version: u32,
    /// When it was made.
    pub rotation_date: UnixSeconds,
    /// Scheduled or on demand.
    pub rotation_type: RotationType,
}

/// The answer of GetKeyRotationStatus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationStatus {
    /// The key id.
    pub key_id: String,
    /// Whether scheduled rotation is on.
    pub key_rotation_enabled: bool,
    /// The schedule's period, when on.
    pub rotation_period_in_days: Option<u32>,
    /// When the next scheduled rotation is due, when on.
    pub next_rotation_date: Option<UnixSeconds>,
    /// When the last on-demand rotation happened, if any.
    pub on_demand_rotation_start_date: Option<UnixSeconds>,
}

/// One page of a list call: the items and, when more remain, the marker to
/// pass for the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next_marker: Option<String>,
}

impl<T> Page<T> {
    /// Whether more pages follow (`Truncated` in KMS).
    pub fn truncated(&self) -> bool {
        self.next_marker.is_some()
    }
}

/// The largest page a list call returns, and its default (as in KMS).
pub const MAX_PAGE_LIMIT: u32 = 1000;
/// The page size when the caller names none.
pub const DEFAULT_PAGE_LIMIT: u32 = 100;
