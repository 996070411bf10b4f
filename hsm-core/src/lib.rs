//! hsm-core: Tinfoil's engine as a plain, synchronous library.
//!
//! A store of master keys sealed at rest under the operator's passphrase,
//! with AWS KMS semantics. No async, no gRPC and no FFI live here; the daemon
//! and the PKCS#11 module are thin front ends over [`Hsm`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod api_stub;
mod asymmetric;
pub mod clock;
pub mod error;
pub mod outputs;
pub mod types;

pub use api_stub::{Hsm, HsmOptions, KdfParams};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Result};
pub use outputs::*;
pub use secrecy::SecretString;
pub use types::*;
