//! libtinfoil_pkcs11.so: Tinfoil's PKCS#11 module.
//!
//! Applications load the shared library and reach it through
//! `C_GetFunctionList` (v2.40) or `C_GetInterfaceList`/`C_GetInterface`
//! (v3.0). The configuration file named by `TINFOIL_PKCS11_CONFIG` picks
//! the backend (see [`config`]).
//!
//! Layout: [`ffi`] is the only module with `unsafe` code: it checks the
//! caller's pointers and calls the safe [`module::Module`] methods, which
//! keep slots, sessions, login state and the object table (a cache of the
//! objects handed out: token objects are searched in the backend) and ask the
//! [`backend::Backend`] for storage and cryptography. The FFI-free token
//! logic both this module and tinfoild run (the backend trait, the
//! embedded backend over hsm-core, attributes, the mechanism registry,
//! the error type, the audit names) is hsm-core's [`hsm_core::pkcs11`];
//! [`attrs`] and [`error`] are that module's, re-exported. This crate
//! keeps the C ABI, the session logic, the daemon backend (a gRPC
//! client) and the memory backend.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub use hsm_core::pkcs11::attrs;
pub mod audit;
pub mod backend;
pub mod cert;
pub mod check_order;
pub mod config;
pub mod crypto_ops;
pub mod derive_ops;
pub mod des3_ops;
pub use hsm_core::pkcs11::error;
pub mod ffi;
pub mod import_ops;
pub mod key_ops;
pub mod mechanisms;
pub mod message_ops;
pub mod module;
pub mod object_ops;
pub mod objects;
pub mod pin;
pub mod pq_ops;
pub mod private_parts;
pub mod pubkey;
pub mod reauth;
pub mod session;
pub mod sign_ops;
mod state;
pub mod stream_ops;

#[cfg(test)]
mod freshness_tests;

pub use error::{Pkcs11Error, Result};
