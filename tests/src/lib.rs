//! Helpers for the end-to-end tests in tests/tests/: locating the built
//! binaries and running a real `tinfoild` on a temporary store, and the
//! real AWS clients against its KMS endpoint.

#![warn(missing_docs)]

pub mod audit;
pub mod daemon;
pub mod kms;
pub mod pg_nodes;
pub mod pki;
pub mod raw_grpc;
pub mod unix_users;
