//! Links libtinfoil_pkcs11.so with `-z nodelete`: the engine's crypto
//! library (AWS-LC) and Rust's thread-locals register per-thread
//! destructors, which would run after the code is gone if an application
//! dlclose()d the module while its threads live on. With nodelete the
//! module stays mapped after dlclose, as OpenSSL's libcrypto does.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    println!("cargo:rerun-if-changed=build.rs");
}
