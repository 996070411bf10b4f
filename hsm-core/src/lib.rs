//! hsm-core
