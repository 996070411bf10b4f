//! hsm-core: Tinfoil's engine as a plain, synchronous library.
//!
//! A store of master keys sealed at rest under the operator's passphrase,
//! with AWS KMS semantics: versioned rotation, Enabled / Disabled /
//! PendingDeletion states, scheduled deletion ending in crypto-shredding,
//! envelope encryption with an encryption context bound as associated data,
//! aliases and tags. No async, no gRPC and no FFI live here; the daemon and
//! the PKCS#11 module are thin front ends over [`Hsm`].
//!
//! The ciphertext format is documented in [`envelope`]; sealing in the
//! crate README.

// Denied everywhere but in two audited modules: `secmem` (locks secret
// pages, sets PR_SET_DUMPABLE) and `ed25519ctx` (AWS-LC's Ed25519ctx).
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod asymmetric;
pub mod audit;
mod bulk;
mod cache;
pub mod changes;
pub mod clock;
pub mod ed25519ctx;
pub mod envelope;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
mod gate;
mod grant_cache;
pub mod grants;
mod hsm;
mod identity;
mod ids;
pub mod mechanisms;
mod model;
mod ops_aliases;
mod ops_crypto;
mod ops_keys;
pub mod outputs;
pub mod pkcs11;
pub mod policy;
mod sealing;
pub mod secmem;
pub mod selftest;
mod store;
#[cfg(feature = "test-cluster")]
pub use store::test_cluster;
pub mod token;
pub mod types;
mod users;

#[cfg(test)]
mod disk_tests;
#[cfg(test)]
mod pq_tests;
#[cfg(test)]
mod scale_tests;

pub use clock::{Clock, ManualClock, SystemClock, DAY};
pub use error::{Error, Result};
pub use gate::Gate;
pub use hsm::{Hsm, HsmOptions};
pub use identity::{Account, Caller, Principal, DEFAULT_ACCOUNT_ID, DEFAULT_REGION};
pub use ops_keys::MAX_TAGS_PER_KEY;
pub use outputs::*;
pub use sealing::KdfParams;
pub use secrecy::SecretString;
pub use store::pg::{SslMode, StoreUrl};
pub use store::LockMode;
pub use types::*;
pub use users::{AccessKeyInfo, NewAccessKey, SigV4Check, UserInfo, MAX_ACCESS_KEYS_PER_PRINCIPAL};
