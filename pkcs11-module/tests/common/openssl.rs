//! OpenSSL's command line as the reference: running it, and an RSA public
//! key object as a PEM file it reads.

use std::path::{Path, PathBuf};
use std::process::Command;

use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::Session;

/// Runs `openssl` with `args`; its standard output (it must succeed).
pub fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Whether `openssl` with `args` succeeds.
pub fn openssl_ok(args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .output()
        .unwrap()
        .status
        .success()
}

/// Bytes from hex.
pub fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Writes the public key of an RSA key object (its CKA_MODULUS and
/// CKA_PUBLIC_EXPONENT) to `dir/name.pem`; returns the path.
pub fn rsa_public_pem(session: &Session, key: ObjectHandle, dir: &Path, name: &str) -> PathBuf {
    let attrs = session
        .get_attributes(
            key,
            &[AttributeType::Modulus, AttributeType::PublicExponent],
        )
        .unwrap();
    let (mut n, mut e) = (Vec::new(), Vec::new());
    for a in attrs {
        match a {
            Attribute::Modulus(v) => n = v,
            Attribute::PublicExponent(v) => e = v,
            _ => {}
        }
    }
    let rsa_public = super::der(0x30, &[super::der_uint(&n), super::der_uint(&e)].concat());
    let algorithm = hex_bytes("300d06092a864886f70d0101010500");
    let mut bits = vec![0u8];
    bits.extend(rsa_public);
    let spki = super::der(0x30, &[algorithm, super::der(0x03, &bits)].concat());
    let der_path = dir.join(format!("{name}.der"));
    std::fs::write(&der_path, spki).unwrap();
    let pem = dir.join(format!("{name}.pem"));
    openssl(&[
        "pkey",
        "-pubin",
        "-inform",
        "DER",
        "-in",
        der_path.to_str().unwrap(),
        "-out",
        pem.to_str().unwrap(),
    ]);
    pem
}
