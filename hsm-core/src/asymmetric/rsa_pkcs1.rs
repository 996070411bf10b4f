//! PKCS#1 v1.5 on RSA keys beyond what aws-lc-rs's digest-signing API
//! offers, for the PKCS#11 module:
//!
//! * CKM_RSA_PKCS signatures of arbitrary input (type-1 padding over the
//!   caller's bytes, at most k-11 of them). aws-lc-rs exposes no raw RSA
//!   private operation, so the exponentiation m^d mod n runs here on
//!   crypto-bigint, whose Montgomery exponentiation is constant-time in the
//!   exponent. It works modulo the public n (no CRT): the primes never enter
//!   a big-integer object, and the library's parameter objects, which are
//!   not wiped on drop, hold only public values. Every signature is checked
//!   with the public exponent (s^e mod n == m) before it leaves, so a
//!   computation fault cannot hand out a wrong signature.
//! * CKM_RSA_PKCS verification of such signatures (s^e mod n compared with
//!   the expected encoding in constant time).
//! * CKM_RSA_PKCS encryption and decryption (type-2 padding) through
//!   aws-lc-rs; every decryption failure is the same error.
//!
//! The private exponent is read from the stored PKCS#8 (itself in
//! `Zeroizing` memory) into a `Zeroizing<BoxedUint>`; errors name the key
//! spec only.

use aws_lc_rs::rsa::{Pkcs1PrivateDecryptingKey, Pkcs1PublicEncryptingKey, PrivateDecryptingKey};
use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, Odd};
use zeroize::Zeroizing;

use super::{crypto_failure, malformed_key, rsa_small};
use crate::error::{Error, Result};
use crate::types::KeySpec;

/// PKCS#1 v1.5 padding takes 11 bytes of the modulus: 00 || BT || PS (at
/// least 8 bytes) || 00.
const PKCS1_OVERHEAD: usize = 11;

/// The modulus length in bytes of an RSA spec of one size; `None` for
/// RSA_OTHER_SIZE, whose keys have their own ([`key_len`]).
fn fixed_len(spec: KeySpec) -> Result<Option<usize>> {
    if spec == KeySpec::RsaOtherSize {
        return Ok(None);
    }
    modulus_len(spec).map(Some)
}

/// The modulus length in bytes of a stored key of `spec`.
fn key_len(spec: KeySpec, private_pkcs8: &[u8]) -> Result<usize> {
    match fixed_len(spec)? {
        Some(k) => Ok(k),
        None => Ok(RsaParts::parse(spec, private_pkcs8, false)?.k),
    }
}

/// The modulus length in bytes of an RSA spec of one size.
fn modulus_len(spec: KeySpec) -> Result<usize> {
    match spec {
        KeySpec::Rsa2048 => Ok(256),
        KeySpec::Rsa3072 => Ok(384),
        KeySpec::Rsa4096 => Ok(512),
        KeySpec::Rsa8192 => Ok(1024),
        KeySpec::Rsa1024 => Ok(128),
        other => Err(Error::Validation(format!("{other} is not an RSA key spec"))),
    }
}

/// The EMSA-PKCS1-v1_5 block of `input` for a `k`-byte modulus:
/// 00 01 FF..FF 00 || input. Input longer than k-11 is a
/// `ValidationException`.
fn type1_block(k: usize, input: &[u8]) -> Result<Vec<u8>> {
    let max = k - PKCS1_OVERHEAD;
    if input.len() > max {
        return Err(Error::Validation(format!(
            "CKM_RSA_PKCS takes at most {max} bytes with this key, got {}",
            input.len()
        )));
    }
    let mut block = vec![0xff; k];
    block[0] = 0x00;
    block[1] = 0x01;
    block[k - input.len() - 1] = 0x00;
    block[k - input.len()..].copy_from_slice(input);
    Ok(block)
}

/// One DER element: (tag, contents, the bytes after it). Definite lengths
/// of up to three length bytes only (RSA-4096 keys need two).
pub(super) fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0x00..=0x7f => (usize::from(first), rest),
        0x81..=0x83 => {
            let n = usize::from(first & 0x7f);
            let bytes = rest.get(..n)?;
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| acc << 8 | usize::from(*b));
            (len, &rest[n..])
        }
        _ => return None,
    };
    let contents = rest.get(..len)?;
    Some((tag, contents, &rest[len..]))
}

/// The magnitude bytes of a DER INTEGER (its sign byte dropped); negative
/// integers are refused.
pub(super) fn der_unsigned(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (tag, value, rest) = der_element(input)?;
    if tag != 0x02 || value.is_empty() || value[0] & 0x80 != 0 {
        return None;
    }
    let value = value.strip_prefix(&[0]).unwrap_or(value);
    Some((value, rest))
}

/// The public half and private exponent of an RSA key.
struct RsaParts {
    /// Modulus length in bytes.
    k: usize,
    /// Montgomery parameters of the (public) modulus.
    params: BoxedMontyParams,
    /// The public exponent.
    e: BoxedUint,
    /// The private exponent, when parsed.
    d: Option<Zeroizing<BoxedUint>>,
}

impl RsaParts {
    /// Reads n, e and (when `private`) d from a PKCS#8 PrivateKeyInfo whose
    /// privateKey is an RSAPrivateKey (RFC 8017 A.1.2). Anything else is a
    /// malformed stored key naming the spec only.
    fn parse(spec: KeySpec, pkcs8: &[u8], private: bool) -> Result<Self> {
        let fixed = fixed_len(spec)?;
        let bad = || malformed_key(spec);
        let (n, e, d) = (|| {
            let (0x30, info, _) = der_element(pkcs8)? else {
                return None;
            };
            let (_version, rest) = der_unsigned(info)?;
            let (0x30, _algorithm, rest) = der_element(rest)? else {
                return None;
            };
            let (0x04, key, _) = der_element(rest)? else {
                return None;
            };
            let (0x30, key, _) = der_element(key)? else {
                return None;
            };
            let (_version, rest) = der_unsigned(key)?;
            let (n, rest) = der_unsigned(rest)?;
            let (e, rest) = der_unsigned(rest)?;
            let (d, _) = der_unsigned(rest)?;
            Some((n, e, d))
        })()
        .ok_or_else(bad)?;
        let k = match fixed {
            Some(k) => k,
            // RSA_OTHER_SIZE: 1024 to 8192 bits, whatever the key has.
            None if rsa_small::OTHER_BITS.contains(&bit_len(n)) => n.len(),
            None => return Err(bad()),
        };
        Self::from_parts(k, n, e, private.then_some(d)).ok_or_else(bad)
    }

    /// A key from big-endian magnitudes: n exactly `k` bytes with its top
    /// byte not zero (the spec's size; DER integers are minimal), e of 1
    /// to 8 bytes, d (when given) of at most k bytes.
    fn from_parts(k: usize, n: &[u8], e: &[u8], d: Option<&[u8]>) -> Option<Self> {
        if n.len() != k
            || n.first() == Some(&0)
            || e.is_empty()
            || e.len() > 8
            || d.is_some_and(|d| d.len() > k)
        {
            return None;
        }
        let bits = u32::try_from(8 * k).ok()?;
        let n = BoxedUint::from_be_slice(n, bits).ok()?;
        let n = Option::<Odd<BoxedUint>>::from(Odd::new(n))?;
        let e = BoxedUint::from_be_slice(e, bits).ok()?;
        let d = match d {
            Some(d) => Some(Zeroizing::new(BoxedUint::from_be_slice(d, bits).ok()?)),
            None => None,
        };
        Some(RsaParts {
            k,
            params: BoxedMontyParams::new_vartime(n),
            e,
            d,
        })
    }

    /// The width of integers modulo n.
    fn bits(&self) -> u32 {
        self.params.bits_precision()
    }

    /// x^e mod n (public: variable time in e is fine).
    fn public_op(&self, x: &BoxedUint) -> BoxedUint {
        let e_bits = self.e.bits_vartime();
        BoxedMontyForm::new(x.clone(), &self.params)
            .pow_bounded_exp(&self.e, e_bits)
            .retrieve()
    }

    /// Whether `x` is below the modulus (an integer RSA can take).
    fn in_range(&self, x: &BoxedUint) -> bool {
        x.cmp_vartime(self.params.modulus().as_ref()) == std::cmp::Ordering::Less
    }
}

/// The size in bits of a big-endian magnitude without leading zeros.
fn bit_len(magnitude: &[u8]) -> u32 {
    let top = magnitude.first().map_or(0, |b| 8 - b.leading_zeros());
    (magnitude.len().saturating_sub(1) * 8) as u32 + top
}

/// The modulus length in bytes of a stored RSA key (any size).
pub(crate) fn stored_len(spec: KeySpec, private_pkcs8: &[u8]) -> Result<usize> {
    key_len(spec, private_pkcs8)
}

/// Whether two equal-width integers are equal, compared in constant time.
fn same(a: &BoxedUint, b: &BoxedUint) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(&a.to_be_bytes(), &b.to_be_bytes()).is_ok()
}

/// CKM_RSA_PKCS signature of any input of at most k-11 bytes: the type-1
/// block raised to d modulo n, checked with e before it is returned.
pub(crate) fn sign_any(spec: KeySpec, private_pkcs8: &[u8], input: &[u8]) -> Result<Vec<u8>> {
    let key = RsaParts::parse(spec, private_pkcs8, true)?;
    let block = type1_block(key.k, input)?;
    let d = key.d.as_ref().ok_or_else(|| malformed_key(spec))?;
    let m = BoxedUint::from_be_slice(&block, key.bits())
        .map_err(|_| crypto_failure("RSA block encoding"))?;
    // The block starts 00 01 and n's top byte is not zero: m < n.
    let s = BoxedMontyForm::new(m.clone(), &key.params)
        .pow(d)
        .retrieve();
    if !same(&key.public_op(&s), &m) {
        return Err(crypto_failure("RSA signature self-check"));
    }
    let out = s.to_be_bytes();
    Ok(out[out.len() - key.k..].to_vec())
}

/// The raw RSA private operation (CKM_RSA_X_509 signing and decryption,
/// and the PSS signatures aws-lc-rs does not make): `block` (at most k
/// bytes, left-padded with zeros) to the power d modulo n, checked with the
/// public exponent before it leaves. A block not below n is a
/// `ValidationException`.
pub(crate) fn private_raw(spec: KeySpec, private_pkcs8: &[u8], block: &[u8]) -> Result<Vec<u8>> {
    Ok(private_block(spec, private_pkcs8, block)?.to_vec())
}

/// [`private_raw`] into wiped memory (the decryption path: its output is
/// the padded plaintext).
fn private_block(spec: KeySpec, private_pkcs8: &[u8], block: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let key = RsaParts::parse(spec, private_pkcs8, true)?;
    let d = key.d.as_ref().ok_or_else(|| malformed_key(spec))?;
    if block.len() > key.k {
        return Err(Error::Validation(format!(
            "raw RSA takes at most {} bytes with this key, got {}",
            key.k,
            block.len()
        )));
    }
    let m = BoxedUint::from_be_slice(block, key.bits())
        .map_err(|_| crypto_failure("RSA block encoding"))?;
    if !key.in_range(&m) {
        return Err(Error::Validation(
            "the input is not below the modulus".into(),
        ));
    }
    let m = Zeroizing::new(m);
    let s = Zeroizing::new(
        BoxedMontyForm::new((*m).clone(), &key.params)
            .pow(d)
            .retrieve(),
    );
    if !same(&key.public_op(&s), &m) {
        return Err(crypto_failure("RSA private operation self-check"));
    }
    let out = Zeroizing::new(s.to_be_bytes().to_vec());
    Ok(Zeroizing::new(out[out.len() - key.k..].to_vec()))
}

/// The raw RSA public operation (CKM_RSA_X_509 encryption and
/// verification): `input` (at most k bytes) to the power e modulo n, k
/// bytes. Input not below n is a `ValidationException`.
pub(crate) fn public_raw(spec: KeySpec, private_pkcs8: &[u8], input: &[u8]) -> Result<Vec<u8>> {
    let key = RsaParts::parse(spec, private_pkcs8, false)?;
    if input.len() > key.k {
        return Err(Error::Validation(format!(
            "raw RSA takes at most {} bytes with this key, got {}",
            key.k,
            input.len()
        )));
    }
    let x = BoxedUint::from_be_slice(input, key.bits())
        .map_err(|_| crypto_failure("RSA block encoding"))?;
    if !key.in_range(&x) {
        return Err(Error::Validation(
            "the input is not below the modulus".into(),
        ));
    }
    let out = key.public_op(&x).to_be_bytes();
    Ok(out[out.len() - key.k..].to_vec())
}

/// The DER SubjectPublicKeyInfo of a stored RSA key (any size).
pub(crate) fn public_key_der(spec: KeySpec, private_pkcs8: &[u8]) -> Result<Vec<u8>> {
    let key = RsaParts::parse(spec, private_pkcs8, false)?;
    let n = key.params.modulus().as_ref().to_be_bytes();
    let e = key.e.to_be_bytes();
    Ok(rsa_small::spki(&n, &e))
}

/// The modulus size in bits of a stored RSA key.
pub(crate) fn modulus_bits(spec: KeySpec, private_pkcs8: &[u8]) -> Result<usize> {
    let key = RsaParts::parse(spec, private_pkcs8, false)?;
    Ok(key.params.modulus().as_ref().bits_vartime() as usize)
}

/// Checks a CKM_RSA_PKCS signature of any input; `Ok(false)` when it does
/// not verify (wrong length or out of range included). Input longer than
/// k-11 is a `ValidationException`, as when signing.
pub(crate) fn verify_any(
    spec: KeySpec,
    private_pkcs8: &[u8],
    input: &[u8],
    signature: &[u8],
) -> Result<bool> {
    let key = RsaParts::parse(spec, private_pkcs8, false)?;
    let block = type1_block(key.k, input)?;
    if signature.len() != key.k {
        return Ok(false);
    }
    verify_block(&key, &block, signature)
}

/// Whether `signature` (k bytes) raised to e modulo n is `block`.
fn verify_block(key: &RsaParts, block: &[u8], signature: &[u8]) -> Result<bool> {
    if signature.len() != key.k {
        return Ok(false);
    }
    let s = BoxedUint::from_be_slice(signature, key.bits())
        .map_err(|_| crypto_failure("RSA signature decoding"))?;
    if !key.in_range(&s) {
        return Ok(false);
    }
    let expected = BoxedUint::from_be_slice(block, key.bits())
        .map_err(|_| crypto_failure("RSA block encoding"))?;
    Ok(same(&key.public_op(&s), &expected))
}

/// The modulus sizes, in bytes, [`verify_public`] takes: 1024 to 8192 bits
/// (1024 for legacy PKCS#11 fixtures).
const PUBLIC_MODULUS_BYTES: std::ops::RangeInclusive<usize> = 128..=1024;

/// CKM_RSA_PKCS verification with a bare public key the core does not
/// hold (one imported into PKCS#11): big-endian modulus (1024 to 8192
/// bits) and exponent, leading zeros allowed. `Ok(false)` when the
/// signature does not verify; a malformed key, or input longer than k-11,
/// is a `ValidationException`.
pub(crate) fn verify_public(n: &[u8], e: &[u8], input: &[u8], signature: &[u8]) -> Result<bool> {
    let trim = |x: &[u8]| -> usize { x.iter().take_while(|b| **b == 0).count() };
    let (n, e) = (&n[trim(n)..], &e[trim(e)..]);
    let malformed = || Error::Validation("not an RSA public key of 1024 to 8192 bits".into());
    if !PUBLIC_MODULUS_BYTES.contains(&n.len()) {
        return Err(malformed());
    }
    let key = RsaParts::from_parts(n.len(), n, e, None).ok_or_else(malformed)?;
    let block = type1_block(key.k, input)?;
    verify_block(&key, &block, signature)
}

/// Parses a stored RSA key for PKCS#1 v1.5 encryption and checks its size.
fn decrypting_key(spec: KeySpec, private_pkcs8: &[u8]) -> Result<PrivateDecryptingKey> {
    let k = modulus_len(spec)?;
    let key = PrivateDecryptingKey::from_pkcs8(private_pkcs8).map_err(|_| malformed_key(spec))?;
    if key.key_size_bytes() != k {
        return Err(malformed_key(spec));
    }
    Ok(key)
}

/// CKM_RSA_PKCS encryption (RSAES-PKCS1-v1_5) of 0 to k-11 bytes with the
/// public half of the key; longer input is a `ValidationException`.
pub(crate) fn encrypt(spec: KeySpec, private_pkcs8: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    if rsa_small::is_small(spec) {
        let block = rsa_small::pkcs1_pad(key_len(spec, private_pkcs8)?, plaintext)?;
        return public_raw(spec, private_pkcs8, &block);
    }
    let max = modulus_len(spec)? - PKCS1_OVERHEAD;
    if plaintext.len() > max {
        return Err(Error::Validation(format!(
            "CKM_RSA_PKCS encrypts at most {max} bytes with a {spec} key, got {}",
            plaintext.len()
        )));
    }
    let private = decrypting_key(spec, private_pkcs8)?;
    let public = Pkcs1PublicEncryptingKey::new(private.public_key())
        .map_err(|_| crypto_failure("RSA public key setup"))?;
    let mut out = vec![0u8; public.ciphertext_size()];
    let len = public
        .encrypt(plaintext, &mut out)
        .map_err(|_| crypto_failure("RSA PKCS#1 v1.5 encryption"))?
        .len();
    out.truncate(len);
    Ok(out)
}

/// CKM_RSA_PKCS decryption. A ciphertext of the wrong length and one whose
/// padding does not check out are the same `InvalidCiphertextException`,
/// raised on one path after the library's constant-time padding check.
pub(crate) fn decrypt(
    spec: KeySpec,
    private_pkcs8: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    if rsa_small::is_small(spec) {
        let block = small_decrypt_block(spec, private_pkcs8, ciphertext, "CKM_RSA_PKCS")?;
        return rsa_small::pkcs1_unpad(&block)
            .ok_or_else(|| rsa_small::invalid_ciphertext("CKM_RSA_PKCS"));
    }
    let private = decrypting_key(spec, private_pkcs8)?;
    let private =
        Pkcs1PrivateDecryptingKey::new(private).map_err(|_| crypto_failure("RSA key setup"))?;
    let mut out = Zeroizing::new(vec![0u8; private.min_output_size()]);
    let len = if ciphertext.len() == private.key_size_bytes() {
        private.decrypt(ciphertext, &mut out).map(|p| p.len()).ok()
    } else {
        None
    };
    let len = len.ok_or_else(|| {
        Error::InvalidCiphertext(
            "the ciphertext is not a valid CKM_RSA_PKCS ciphertext for this key".into(),
        )
    })?;
    out.truncate(len);
    Ok(out)
}

/// The private operation on a ciphertext for a key of a size aws-lc-rs
/// refuses: a ciphertext of the wrong length or not below n is the same
/// `InvalidCiphertextException` as a bad padding.
fn small_decrypt_block(
    spec: KeySpec,
    private_pkcs8: &[u8],
    ciphertext: &[u8],
    mechanism: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    rsa_small::check(spec, private_pkcs8)?;
    if ciphertext.len() != key_len(spec, private_pkcs8)? {
        return Err(rsa_small::invalid_ciphertext(mechanism));
    }
    match private_block(spec, private_pkcs8, ciphertext) {
        Err(Error::Validation(_)) => Err(rsa_small::invalid_ciphertext(mechanism)),
        other => other,
    }
}

/// RSA-OAEP encryption (SHA-1 or SHA-256 by `hash_len`, MGF1 of the same
/// hash, `label` as pSourceData) with a key of a size aws-lc-rs refuses.
pub(crate) fn oaep_encrypt_small(
    spec: KeySpec,
    private_pkcs8: &[u8],
    hash_len: usize,
    plaintext: &[u8],
    label: &[u8],
) -> Result<Vec<u8>> {
    rsa_small::check(spec, private_pkcs8)?;
    let block = rsa_small::oaep_pad(hash_len, key_len(spec, private_pkcs8)?, plaintext, label)?;
    public_raw(spec, private_pkcs8, &block)
}

/// RSA-OAEP decryption with a key of a size aws-lc-rs refuses; every
/// failure (length, range, padding, label) is one `InvalidCiphertextException`.
pub(crate) fn oaep_decrypt_small(
    spec: KeySpec,
    private_pkcs8: &[u8],
    hash_len: usize,
    ciphertext: &[u8],
    label: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let block = small_decrypt_block(spec, private_pkcs8, ciphertext, "RSA-OAEP")?;
    rsa_small::oaep_unpad(hash_len, &block, label)?
        .ok_or_else(|| rsa_small::invalid_ciphertext("RSA-OAEP"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type1_block_layout_and_bounds() {
        let block = type1_block(256, b"abc").unwrap();
        assert_eq!(&block[..3], &[0x00, 0x01, 0xff]);
        assert_eq!(&block[252..], &[0x00, b'a', b'b', b'c']);
        assert!(block[2..252].iter().all(|b| *b == 0xff));
        assert_eq!(type1_block(256, &[7; 245]).unwrap()[10], 0x00);
        assert!(matches!(
            type1_block(256, &[7; 246]),
            Err(Error::Validation(_))
        ));
        let empty = type1_block(256, b"").unwrap();
        assert_eq!(empty[255], 0x00);
    }

    #[test]
    fn der_lengths_and_integers() {
        assert_eq!(
            der_element(&[0x02, 0x01, 0x05, 0xaa]),
            Some((2, &[5u8][..], &[0xaa][..]))
        );
        let mut long = vec![0x04, 0x82, 0x01, 0x00];
        long.extend([9u8; 256]);
        assert_eq!(der_element(&long).map(|(_, v, _)| v.len()), Some(256));
        assert_eq!(der_element(&[0x04, 0x82, 0x01]), None, "truncated length");
        assert_eq!(der_element(&[0x04, 0x05, 1, 2]), None, "truncated contents");
        assert_eq!(der_element(&[0x04, 0x80]), None, "indefinite length");
        assert_eq!(
            der_unsigned(&[0x02, 0x02, 0x00, 0x80]).map(|x| x.0),
            Some(&[0x80u8][..])
        );
        assert_eq!(der_unsigned(&[0x02, 0x01, 0x80]), None, "negative");
        assert_eq!(der_unsigned(&[0x04, 0x01, 0x01]), None, "not an INTEGER");
    }

    /// The DER DigestInfo of SHA-256("abc").
    fn sha256_info() -> Vec<u8> {
        let mut info = vec![
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ];
        info.extend_from_slice(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"abc").as_ref(),
        );
        info
    }

    #[test]
    fn big_integer_signature_equals_the_library_signature() {
        for spec in [KeySpec::Rsa2048, KeySpec::Rsa3072, KeySpec::Rsa4096] {
            let key = super::super::rsa::generate(spec).unwrap();
            let info = sha256_info();
            let ours = sign_any(spec, &key, &info).unwrap();
            let library =
                super::super::raw::rsa_pkcs1v15_sign_digest_info(spec, &key[..], &info).unwrap();
            assert_eq!(ours, library, "{spec}: PKCS#1 v1.5 is deterministic");
            assert_eq!(ours.len(), modulus_len(spec).unwrap());
            assert!(verify_any(spec, &key, &info, &ours).unwrap());
        }
    }

    #[test]
    fn any_input_signs_and_verifies_and_nothing_else_verifies() {
        let spec = KeySpec::Rsa2048;
        let key = super::super::rsa::generate(spec).unwrap();
        for input in [&b""[..], b"raw bytes", &[0u8; 36], &[0xab; 245]] {
            let sig = sign_any(spec, &key, input).unwrap();
            assert!(verify_any(spec, &key, input, &sig).unwrap());
            let mut bad = sig.clone();
            bad[100] ^= 1;
            assert!(!verify_any(spec, &key, input, &bad).unwrap());
            assert!(!verify_any(spec, &key, b"other", &sig).unwrap());
            assert!(!verify_any(spec, &key, input, &sig[1..]).unwrap());
            assert!(
                !verify_any(spec, &key, input, &[0xff; 256]).unwrap(),
                "s >= n"
            );
        }
        assert!(matches!(
            sign_any(spec, &key, &[1; 246]),
            Err(Error::Validation(_))
        ));
        assert!(matches!(
            verify_any(spec, &key, &[1; 246], &[0; 256]),
            Err(Error::Validation(_))
        ));
        // A key of another size is malformed for this spec.
        assert!(matches!(
            sign_any(KeySpec::Rsa3072, &key, b"x"),
            Err(Error::Internal(_))
        ));
    }

    /// n and e of a stored key, from its DER SubjectPublicKeyInfo.
    fn public_parts(spec: KeySpec, pkcs8: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let key = RsaParts::parse(spec, pkcs8, false).unwrap();
        let n = key.params.modulus().as_ref().to_be_bytes().to_vec();
        let e = key.e.to_be_bytes().to_vec();
        (n, e)
    }

    #[test]
    fn a_bare_public_key_verifies_what_the_private_key_signed() {
        let spec = KeySpec::Rsa2048;
        let key = super::super::rsa::generate(spec).unwrap();
        let (n, e) = public_parts(spec, &key);
        let sig = sign_any(spec, &key, b"imported").unwrap();
        assert!(verify_public(&n, &e, b"imported", &sig).unwrap());
        // Leading zeros on n (a 4096-bit width here) change nothing.
        let padded = [vec![0u8; 256], n.clone()].concat();
        assert!(verify_public(&padded, &e, b"imported", &sig).unwrap());
        assert!(!verify_public(&n, &e, b"imported!", &sig).unwrap());
        assert!(!verify_public(&n, &e, b"imported", &sig[1..]).unwrap());
        assert!(matches!(
            verify_public(&n, &e, &[1; 246], &sig),
            Err(Error::Validation(_))
        ));
        for (bad_n, bad_e) in [
            (&n[..127], &e[..]),
            (&n[..], &[][..]),
            (&[0xff; 1025][..], &e[..]),
        ] {
            assert!(
                matches!(
                    verify_public(bad_n, bad_e, b"x", &sig),
                    Err(Error::Validation(_))
                ),
                "{} / {}",
                bad_n.len(),
                bad_e.len()
            );
        }
        // An even modulus is no RSA key.
        let mut even = n.clone();
        *even.last_mut().unwrap() &= 0xfe;
        assert!(verify_public(&even, &e, b"x", &sig).is_err());
    }

    #[test]
    fn encryption_round_trips_and_every_failure_is_one_error() {
        let spec = KeySpec::Rsa2048;
        let key = super::super::rsa::generate(spec).unwrap();
        for plain in [&b""[..], b"secret", &[7u8; 245]] {
            let ct = encrypt(spec, &key, plain).unwrap();
            assert_eq!(ct.len(), 256);
            assert_eq!(&decrypt(spec, &key, &ct).unwrap()[..], plain);
            assert_ne!(encrypt(spec, &key, plain).unwrap(), ct, "random padding");
        }
        assert!(matches!(
            encrypt(spec, &key, &[7; 246]),
            Err(Error::Validation(_))
        ));
        let ct = encrypt(spec, &key, b"secret").unwrap();
        let mut tampered = ct.clone();
        tampered[0] ^= 0x40;
        let other = super::super::rsa::generate(spec).unwrap();
        let failures = [
            decrypt(spec, &key, &tampered).unwrap_err(),
            decrypt(spec, &key, &ct[1..]).unwrap_err(),
            decrypt(spec, &key, &[ct.clone(), vec![0]].concat()).unwrap_err(),
            decrypt(spec, &other, &ct).unwrap_err(),
            decrypt(spec, &key, &[0u8; 256]).unwrap_err(),
        ];
        let texts: Vec<String> = failures.iter().map(|e| format!("{e:?}")).collect();
        for (e, text) in failures.iter().zip(&texts) {
            assert!(matches!(e, Error::InvalidCiphertext(_)), "{text}");
            assert_eq!(text, &texts[0], "one error for every failure");
        }
    }

    #[test]
    fn malformed_keys_name_the_spec_only() {
        for bytes in [&b""[..], &[0x30, 0x00], &[0x30, 0x03, 0x02, 0x01, 0x00]] {
            let err = sign_any(KeySpec::Rsa2048, bytes, b"x").unwrap_err();
            assert!(
                matches!(err, Error::Internal(ref m) if m.contains("RSA_2048")),
                "{err:?}"
            );
        }
    }
}
