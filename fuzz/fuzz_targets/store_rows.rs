//! The store's row decoders on bytes an attacker could write into the
//! store's file: KDF parameters, key ids, the enum names of a key row, a
//! grant's context constraint, wrapped key material, the blob header.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&kind, rest)) = data.split_first() {
        let _ = hsm_core::fuzzing::decode_store_row(kind, rest);
    }
});
