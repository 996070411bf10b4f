//! The storage and crypto side of the module, behind one trait.
//!
//! The C layer and the session logic never touch key material: they hold
//! object attributes and a backend key reference, and ask the backend for
//! every cryptographic operation. The trait, its types and the embedded
//! backend are hsm-core's ([`hsm_core::pkcs11`]: tinfoild serves the
//! daemon backend with the same embedded backend), re-exported here.
//! Three backends exist: `memory` (a non-persistent store for the
//! module's own tests, with no key mechanisms), `embedded` (hsm-core
//! in-process) and `daemon` (tinfoild over gRPC: every method is one
//! request).

pub mod daemon;
pub mod embedded;
pub mod memory;

pub use hsm_core::pkcs11::{
    unknown_token, Attributes, Backend, ChangeScope, ImportedKey, KeyHandle, NewSecret,
    ObjectChanges, StoredObject, TokenRecord, UserKind,
};
pub use hsm_core::pkcs11::{AesMode, EcdhKdf, RawSign, WrapMode};
pub use hsm_core::pkcs11::{DeriveOp, HkdfSalt, KbkdfField, Prf};
pub use hsm_core::pkcs11::{KeySpec, KeyTransport, KeyUsage, PairUsages, PrivateKind};

use crate::error::Result;

/// A backend as [`open`] returns it.
pub struct Opened {
    /// The backend.
    pub backend: Box<dyn Backend>,
    /// A descriptor that holds a process-exclusive lock (the embedded
    /// store's directory lock): a fork()ed child must close its copy.
    pub lock_fd: Option<std::os::fd::RawFd>,
}

/// Opens the backend a configuration names.
pub fn open(config: &crate::config::Config) -> Result<Opened> {
    let (backend, lock_fd): (Box<dyn Backend>, _) = match config {
        crate::config::Config::Memory {} => (Box::new(memory::MemoryBackend::new()), None),
        crate::config::Config::Embedded { .. } => {
            let backend = embedded::open(config)?;
            let fd = backend.lock_fd();
            (Box::new(backend), Some(fd))
        }
        crate::config::Config::Daemon { endpoint } => {
            (Box::new(daemon::DaemonBackend::connect(endpoint)?), None)
        }
    };
    Ok(Opened { backend, lock_fd })
}
