//! Helpers for the end-to-end tests in tests/tests/: locating the built
//! binaries and running a real `tinfoild` on a temporary store.

#![warn(missing_docs)]

pub mod daemon;
