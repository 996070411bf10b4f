//! X25519 key pairs (RFC 7748) for PKCS#11 key agreement (CKK_EC_MONTGOMERY,
//! CKM_ECDH1_DERIVE): generation, the PKCS#8 form they are stored in (RFC
//! 8410: id-X25519 with the 32-byte private key), and the public key. The
//! primitives are aws-lc-rs's (`agreement::X25519`); this module only
//! frames the bytes. X25519 keys agree keys; they never sign.

use aws_lc_rs::agreement::{self, PrivateKey as AgreementKey};
use aws_lc_rs::encoding::{AsBigEndian, Curve25519SeedBin};
use zeroize::Zeroizing;

use super::{crypto_failure, malformed_key};
use crate::error::Result;
use crate::types::KeySpec;

/// PrivateKeyInfo up to the private key: version 0, id-X25519
/// (1.3.101.110), OCTET STRING (OCTET STRING of 32 bytes).
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
];
/// SubjectPublicKeyInfo up to the public key: id-X25519, BIT STRING of 32
/// bytes.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00,
];

/// The PKCS#8 of a 32-byte X25519 private key.
pub(crate) fn pkcs8_of(private: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(48));
    out.extend_from_slice(&PKCS8_PREFIX);
    out.extend_from_slice(private);
    out
}

/// A new X25519 key as PKCS#8.
pub(super) fn generate() -> Result<Zeroizing<Vec<u8>>> {
    let key = AgreementKey::generate(&agreement::X25519)
        .map_err(|_| crypto_failure("X25519 key generation"))?;
    let seed: Curve25519SeedBin<'static> = key
        .as_be_bytes()
        .map_err(|_| crypto_failure("X25519 key encoding"))?;
    Ok(pkcs8_of(seed.as_ref()))
}

/// Parses a stored (or imported) X25519 PKCS#8; anything else is a
/// malformed key naming the spec only.
pub(crate) fn parse(private_pkcs8: &[u8]) -> Result<AgreementKey> {
    let bad = || malformed_key(KeySpec::EccX25519);
    let raw = private_pkcs8
        .strip_prefix(&PKCS8_PREFIX[..])
        .filter(|raw| raw.len() == 32)
        .ok_or_else(bad)?;
    AgreementKey::from_private_key(&agreement::X25519, raw).map_err(|_| bad())
}

/// The DER SubjectPublicKeyInfo of an X25519 key.
pub(super) fn public_key_der(key: &AgreementKey) -> Result<Vec<u8>> {
    let public = key
        .compute_public_key()
        .map_err(|_| crypto_failure("X25519 public key"))?;
    let mut out = SPKI_PREFIX.to_vec();
    out.extend_from_slice(public.as_ref());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7748 section 6.1: Alice's private key gives her public key, and
    /// the stored form parses back to the same key.
    #[test]
    fn rfc7748_public_key_and_round_trip() {
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let alice = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let key = parse(&pkcs8_of(&alice)).unwrap();
        let spki = public_key_der(&key).unwrap();
        assert_eq!(
            spki[12..],
            hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")[..]
        );
        let fresh = generate().unwrap();
        assert!(parse(&fresh).is_ok());
        assert!(parse(&fresh[..47]).is_err());
        assert!(parse(&[0u8; 48]).is_err());
    }
}
