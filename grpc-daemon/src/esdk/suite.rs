//! Algorithm suites (framework/algorithm-suites.md) and their key
//! derivation: HKDF-SHA-512 with the message id as salt and key commitment
//! for the version 2 suites, HKDF-SHA-384/256 or the identity for the
//! legacy version 1 suites (decryption only, behind a flag).

use ring::hkdf;
use zeroize::Zeroizing;

use super::EsdkError;

/// The length of every supported suite's data key, derived key and commit key.
pub const KEY_LEN: usize = 32;

/// The AWS Encryption SDK algorithm suites this implementation reads
/// (all AES-256-GCM, 12-byte IVs, 16-byte tags). Encryption uses only the
/// committing ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    /// 0x0578: HKDF-SHA-512, key commitment, ECDSA P-384 footer (the default).
    CommitKeyEcdsaP384,
    /// 0x0478: HKDF-SHA-512, key commitment, no signature.
    CommitKey,
    /// 0x0378: legacy, HKDF-SHA-384 without commitment, ECDSA P-384 footer.
    LegacyHkdfSha384EcdsaP384,
    /// 0x0178: legacy, HKDF-SHA-256 without commitment, no signature.
    LegacyHkdfSha256,
    /// 0x0078: legacy, the data key used directly, no signature.
    LegacyNoKdf,
}

impl Suite {
    /// Every supported suite.
    pub const ALL: [Suite; 5] = [
        Suite::CommitKeyEcdsaP384,
        Suite::CommitKey,
        Suite::LegacyHkdfSha384EcdsaP384,
        Suite::LegacyHkdfSha256,
        Suite::LegacyNoKdf,
    ];

    /// The 2-byte suite id.
    pub fn id(self) -> u16 {
        match self {
            Suite::CommitKeyEcdsaP384 => 0x0578,
            Suite::CommitKey => 0x0478,
            Suite::LegacyHkdfSha384EcdsaP384 => 0x0378,
            Suite::LegacyHkdfSha256 => 0x0178,
            Suite::LegacyNoKdf => 0x0078,
        }
    }

    /// The suite with this id.
    pub fn from_id(id: u16) -> Result<Suite, EsdkError> {
        Suite::ALL
            .into_iter()
            .find(|s| s.id() == id)
            .ok_or(EsdkError::UnsupportedSuite(id))
    }

    /// Whether the suite commits to its data key (message format version 2).
    pub fn is_committing(self) -> bool {
        matches!(self, Suite::CommitKeyEcdsaP384 | Suite::CommitKey)
    }

    /// Whether messages end with an ECDSA P-384 signature footer.
    pub fn is_signed(self) -> bool {
        matches!(
            self,
            Suite::CommitKeyEcdsaP384 | Suite::LegacyHkdfSha384EcdsaP384
        )
    }

    /// The message format version the suite is used with (2 or 1).
    pub fn message_version(self) -> u8 {
        if self.is_committing() {
            2
        } else {
            1
        }
    }

    /// The length of the message id (32 bytes in version 2, 16 in version 1).
    pub fn message_id_len(self) -> usize {
        if self.is_committing() {
            32
        } else {
            16
        }
    }

    /// Derives the content key and, for committing suites, the commit key
    /// from the data key (framework/transitive-requirements.md).
    pub fn derive(self, data_key: &[u8], message_id: &[u8]) -> Result<DerivedKeys, EsdkError> {
        if data_key.len() != KEY_LEN {
            return Err(EsdkError::DataKeyLength(data_key.len()));
        }
        let id = self.id().to_be_bytes();
        let mut content = Zeroizing::new([0u8; KEY_LEN]);
        let mut commit = None;
        match self {
            Suite::CommitKeyEcdsaP384 | Suite::CommitKey => {
                let prk = hkdf::Salt::new(hkdf::HKDF_SHA512, message_id).extract(data_key);
                expand(&prk, &[&id, b"DERIVEKEY"], &mut content[..])?;
                let mut c = [0u8; KEY_LEN];
                expand(&prk, &[b"COMMITKEY"], &mut c)?;
                commit = Some(c);
            }
            Suite::LegacyHkdfSha384EcdsaP384 | Suite::LegacyHkdfSha256 => {
                let alg = if self == Suite::LegacyHkdfSha256 {
                    hkdf::HKDF_SHA256
                } else {
                    hkdf::HKDF_SHA384
                };
                // An empty salt is HMAC-equivalent to the hash length of zeros.
                let prk = hkdf::Salt::new(alg, &[]).extract(data_key);
                expand(&prk, &[&id, message_id], &mut content[..])?;
            }
            Suite::LegacyNoKdf => content.copy_from_slice(data_key),
        }
        Ok(DerivedKeys { content, commit })
    }
}

impl std::fmt::Display for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:04X}", self.id())
    }
}

impl std::str::FromStr for Suite {
    type Err = EsdkError;

    /// `0x0578`, `0578` or `1400` (decimal).
    fn from_str(text: &str) -> Result<Suite, EsdkError> {
        let t = text.trim();
        let id = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(hex) => u16::from_str_radix(hex, 16).ok(),
            None if t.len() == 4 => u16::from_str_radix(t, 16).ok(),
            None => t.parse().ok(),
        };
        id.map_or(Err(EsdkError::UnsupportedSuite(0)), Suite::from_id)
    }
}

/// The keys derived for one message; zeroized when dropped.
pub struct DerivedKeys {
    /// The AES-256-GCM key of the header tag and the frames.
    pub content: Zeroizing<[u8; KEY_LEN]>,
    /// The commit key stored in the version 2 header (not secret: it is in
    /// the message).
    pub commit: Option<[u8; KEY_LEN]>,
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(prk: &hkdf::Prk, info: &[&[u8]], out: &mut [u8]) -> Result<(), EsdkError> {
    prk.expand(info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| EsdkError::Crypto("HKDF expand"))
}
