//! RSA keys smaller than aws-lc-rs accepts (`RSA_1024`: PKCS#11 only, for
//! legacy fixtures). aws-lc-rs 1.19 refuses moduli under 2048 bits for
//! every private and encrypting operation, so such keys live entirely on
//! the constant-time crypto-bigint path of [`super::rsa_pkcs1`] (signing,
//! raw RSA, PSS through [`super::pss`]), plus what this module adds:
//!
//! * key generation: two primes from `crypto-primes` (sieve, then
//!   Miller-Rabin base 2 and a strong Lucas test: BPSW), each with its two
//!   top bits set so that n has exactly the requested size; e = 65537,
//!   d = e^-1 mod lcm(p-1, q-1) and the CRT parts, stored as PKCS#8 DER as
//!   aws-lc-rs stores its keys;
//! * import: a PKCS#8 RSA key of such a size is checked (n = p·q, a private
//!   operation checked with e) and re-encoded the same way;
//! * the encryption paddings aws-lc-rs would otherwise apply: RSAES-PKCS1-
//!   v1_5 (RFC 8017 7.2) and RSAES-OAEP (7.1, MGF1 of the same hash), the
//!   decoders branch-free over the decrypted block, so that every failure
//!   is one error raised at one place after the whole block was examined.
//!
//! Key bytes stay in `Zeroizing` buffers; errors name the spec only.

use std::convert::Infallible;

use aws_lc_rs::digest;
use crypto_bigint::{BoxedUint, ConcatenatingMul, Gcd, NonZero, Odd};
use crypto_primes::hazmat::{SetBits, SmallFactorsSieveFactory};
use crypto_primes::{is_prime, sieve_and_find, Flavor};
use zeroize::Zeroizing;

use super::{crypto_failure, malformed_key};
use crate::error::{Error, Result};
use crate::types::KeySpec;

/// The public exponent of every generated key.
const E: u32 = 65537;

/// The rsaEncryption AlgorithmIdentifier (OID 1.2.840.113549.1.1.1, NULL).
const RSA_ALGORITHM: [u8; 15] = [
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

/// The modulus sizes, in bits, PKCS#11 makes and takes: every one from
/// 1024 to 8192. 2048, 3072, 4096 and 8192 are aws-lc-rs's (their own
/// specs); 1024 is `RSA_1024`; the others are `RSA_OTHER_SIZE`.
pub(crate) const OTHER_BITS: std::ops::RangeInclusive<u32> = 1024..=8192;

/// The modulus size in bits of a spec of one size this module serves.
pub(crate) fn spec_bits(spec: KeySpec) -> Option<u32> {
    match spec {
        KeySpec::Rsa1024 => Some(1024),
        _ => None,
    }
}

/// Whether `spec` is an RSA spec aws-lc-rs does not serve (its keys go
/// through this module and the crypto-bigint path).
pub(crate) fn is_small(spec: KeySpec) -> bool {
    matches!(spec, KeySpec::Rsa1024 | KeySpec::RsaOtherSize)
}

/// The spec of an RSA modulus of `bits` this module serves (`None` for
/// aws-lc-rs's sizes and for sizes outside 1024 to 8192).
pub(crate) fn spec_of_bits(bits: u32) -> Option<KeySpec> {
    match bits {
        1024 => Some(KeySpec::Rsa1024),
        2048 | 3072 | 4096 | 8192 => None,
        b if OTHER_BITS.contains(&b) => Some(KeySpec::RsaOtherSize),
        _ => None,
    }
}

/// aws-lc-rs's generator as the RNG crypto-primes takes. A failure of the
/// system generator is remembered (the output is then zeros) and turns
/// the whole generation into an error; nothing panics.
#[derive(Default)]
struct LibraryRng {
    failed: bool,
}

impl rand_core::TryRng for LibraryRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> std::result::Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> std::result::Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> std::result::Result<(), Infallible> {
        if aws_lc_rs::rand::fill(dst).is_err() {
            self.failed = true;
            dst.fill(0);
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for LibraryRng {}

/// A random prime of exactly `bits` bits whose two top bits are set.
fn prime(rng: &mut LibraryRng, bits: u32) -> Result<Zeroizing<BoxedUint>> {
    let factory = SmallFactorsSieveFactory::<BoxedUint>::new(Flavor::Any, bits, SetBits::TwoMsb)
        .map_err(|_| crypto_failure("RSA prime generation"))?;
    let p = sieve_and_find(rng, factory, |_, c: &BoxedUint| is_prime(Flavor::Any, c))
        .ok()
        .flatten()
        .ok_or_else(|| crypto_failure("RSA prime generation"))?;
    Ok(Zeroizing::new(p))
}

/// `x` at `bits` of precision (its value must fit).
fn fit(x: &BoxedUint, bits: u32) -> Result<BoxedUint> {
    let bytes = Zeroizing::new(x.to_be_bytes());
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    BoxedUint::from_be_slice(&bytes[skip..], bits).map_err(|_| crypto_failure("RSA arithmetic"))
}

/// The big-endian magnitude of `x`, without leading zeros.
fn magnitude(x: &BoxedUint) -> Zeroizing<Vec<u8>> {
    let bytes = Zeroizing::new(x.to_be_bytes());
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    Zeroizing::new(bytes[skip..].to_vec())
}

/// Generates an RSA key of `bits` bits (public exponent 65537) as PKCS#8
/// DER.
pub(crate) fn generate(bits: u32) -> Result<Zeroizing<Vec<u8>>> {
    let mut rng = LibraryRng::default();
    let width = bits.div_ceil(64) * 64;
    let e = BoxedUint::from_be_slice(&E.to_be_bytes(), width)
        .map_err(|_| crypto_failure("RSA arithmetic"))?;
    let one = BoxedUint::one_with_precision(width);
    for _ in 0..100 {
        let a = prime(&mut rng, bits.div_ceil(2))?;
        let b = prime(&mut rng, bits / 2)?;
        if rng.failed {
            return Err(crypto_failure("random number generation"));
        }
        let (a, b) = (
            Zeroizing::new(fit(&a, width)?),
            Zeroizing::new(fit(&b, width)?),
        );
        // p > q (qInv = q^-1 mod p), and p and q far apart (FIPS 186-5
        // A.1.3: |p - q| > 2^(bits/2 - 100)).
        let (p, q) = if a.cmp_vartime(&*b) == std::cmp::Ordering::Greater {
            (a, b)
        } else {
            (b, a)
        };
        let gap = p.wrapping_sub(&*q);
        if gap.bits() <= (bits / 2).saturating_sub(100) {
            continue;
        }
        let p1 = Zeroizing::new(p.wrapping_sub(&one));
        let q1 = Zeroizing::new(q.wrapping_sub(&one));
        let n = fit(&p.concatenating_mul(&*q), width)?;
        if n.bits_vartime() != bits {
            continue;
        }
        let g = Zeroizing::new(p1.gcd(&*q1));
        let phi = Zeroizing::new(fit(&p1.concatenating_mul(&*q1), width)?);
        let g = Option::<NonZero<BoxedUint>>::from(NonZero::new((*g).clone()))
            .ok_or_else(|| crypto_failure("RSA arithmetic"))?;
        let lambda = Zeroizing::new(phi.div_rem(&g).0);
        let Some(lambda) = Option::<NonZero<BoxedUint>>::from(NonZero::new((*lambda).clone()))
        else {
            continue;
        };
        // e must be invertible modulo lambda (e prime: neither p-1 nor q-1
        // a multiple of it).
        let Some(d) = Option::<BoxedUint>::from(e.invert_mod(&lambda)) else {
            continue;
        };
        let d = Zeroizing::new(d);
        let dp = Zeroizing::new(d.rem(&nonzero(&p1)?));
        let dq = Zeroizing::new(d.rem(&nonzero(&q1)?));
        let p_odd = Option::<Odd<BoxedUint>>::from(Odd::new((*p).clone()))
            .ok_or_else(|| crypto_failure("RSA arithmetic"))?;
        let Some(q_inv) = Option::<BoxedUint>::from(q.invert_odd_mod(&p_odd)) else {
            continue;
        };
        let q_inv = Zeroizing::new(q_inv);
        let parts = [&n, &e, &d, &p, &q, &dp, &dq, &q_inv].map(magnitude);
        return Ok(pkcs8(&parts));
    }
    Err(crypto_failure("RSA key generation"))
}

fn nonzero(x: &BoxedUint) -> Result<NonZero<BoxedUint>> {
    Option::<NonZero<BoxedUint>>::from(NonZero::new(x.clone()))
        .ok_or_else(|| crypto_failure("RSA arithmetic"))
}

/// A DER length.
fn der_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// One DER element.
fn tlv(tag: u8, body: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(body.len() + 6));
    out.push(tag);
    der_len(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

/// A DER INTEGER of a big-endian magnitude (minimal, non-negative).
fn der_uint(magnitude: &[u8]) -> Zeroizing<Vec<u8>> {
    let skip = magnitude.iter().take_while(|b| **b == 0).count();
    let m = &magnitude[skip..];
    let mut body = Zeroizing::new(Vec::with_capacity(m.len() + 1));
    if m.first().is_none_or(|b| b & 0x80 != 0) {
        body.push(0);
    }
    body.extend_from_slice(m);
    tlv(0x02, &body)
}

/// PKCS#8 PrivateKeyInfo of an RSAPrivateKey (version 0) from n, e, d, p,
/// q, dP, dQ, qInv.
fn pkcs8(parts: &[Zeroizing<Vec<u8>>; 8]) -> Zeroizing<Vec<u8>> {
    let mut key = Zeroizing::new(der_uint(&[0]).to_vec());
    for part in parts {
        key.extend_from_slice(&der_uint(part));
    }
    let key = tlv(0x30, &key);
    let mut info = Zeroizing::new(der_uint(&[0]).to_vec());
    info.extend_from_slice(&RSA_ALGORITHM);
    info.extend_from_slice(&tlv(0x04, &key));
    tlv(0x30, &info)
}

/// The DER SubjectPublicKeyInfo of a modulus and public exponent.
pub(crate) fn spki(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut key = der_uint(n).to_vec();
    key.extend_from_slice(&der_uint(e));
    let key = tlv(0x30, &key);
    let mut bits = vec![0u8];
    bits.extend_from_slice(&key);
    let mut body = RSA_ALGORITHM.to_vec();
    body.extend_from_slice(&tlv(0x03, &bits));
    tlv(0x30, &body).to_vec()
}

/// The eight integers of a PKCS#8 RSAPrivateKey (two-prime, version 0),
/// as big-endian magnitudes; `None` when it is anything else.
fn parse_parts(pkcs8: &[u8]) -> Option<[Zeroizing<Vec<u8>>; 8]> {
    use super::rsa_pkcs1::{der_element, der_unsigned};
    let (0x30, info, _) = der_element(pkcs8)? else {
        return None;
    };
    let (_version, rest) = der_unsigned(info)?;
    let (0x30, algorithm, rest) = der_element(rest)? else {
        return None;
    };
    if algorithm != &RSA_ALGORITHM[2..] {
        return None;
    }
    let (0x04, key, _) = der_element(rest)? else {
        return None;
    };
    let (0x30, key, _) = der_element(key)? else {
        return None;
    };
    let (version, mut rest) = der_unsigned(key)?;
    if !version.is_empty() {
        return None;
    }
    let mut out: [Zeroizing<Vec<u8>>; 8] = Default::default();
    for slot in &mut out {
        let (value, tail) = der_unsigned(rest)?;
        *slot = Zeroizing::new(value.to_vec());
        rest = tail;
    }
    rest.is_empty().then_some(out)
}

/// Checks a PKCS#8 RSA private key of a size this module serves (n = p·q,
/// and a private operation that the public exponent undoes) and re-encodes
/// it as generated keys are stored; returns its spec. `None` for anything
/// else (other sizes included).
pub(crate) fn normalize(pkcs8_in: &[u8]) -> Option<(KeySpec, Zeroizing<Vec<u8>>)> {
    let parts = parse_parts(pkcs8_in)?;
    let n_len = parts[0].len();
    let bits = u32::try_from(8 * n_len - parts[0][0].leading_zeros() as usize).ok()?;
    let spec = spec_of_bits(bits)?;
    let width = bits.div_ceil(64) * 64;
    let int = |x: &[u8]| BoxedUint::from_be_slice(x, width).ok().map(Zeroizing::new);
    let (n, p, q) = (int(&parts[0])?, int(&parts[3])?, int(&parts[4])?);
    if fit(&p.concatenating_mul(&*q), 2 * width).ok()? != fit(&n, 2 * width).ok()? {
        return None;
    }
    let stored = pkcs8(&parts);
    // A random value below n through the private and public operations.
    let mut probe = vec![0u8; n_len];
    aws_lc_rs::rand::fill(&mut probe[1..]).ok()?;
    super::rsa_pkcs1::private_raw(spec, &stored, &probe).ok()?;
    Some((spec, stored))
}

/// The hash of an OAEP algorithm by its digest length (20: SHA-1, 32:
/// SHA-256).
fn oaep_hash(hash_len: usize) -> Result<&'static digest::Algorithm> {
    match hash_len {
        20 => Ok(&digest::SHA1_FOR_LEGACY_USE_ONLY),
        32 => Ok(&digest::SHA256),
        _ => Err(Error::validation("OAEP with SHA-1 or SHA-256 only")),
    }
}

/// Random non-zero bytes.
fn nonzero_random(out: &mut [u8]) -> Result<()> {
    let mut byte = [0u8; 1];
    for b in out.iter_mut() {
        while byte[0] == 0 {
            aws_lc_rs::rand::fill(&mut byte).map_err(|_| crypto_failure("randomness"))?;
        }
        *b = byte[0];
        byte[0] = 0;
    }
    Ok(())
}

/// EME-PKCS1-v1_5 encoding for a `k`-byte modulus: 00 02 PS 00 M, PS at
/// least 8 random non-zero bytes. Longer messages are a
/// `ValidationException`.
pub(crate) fn pkcs1_pad(k: usize, message: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if message.len() + 11 > k {
        return Err(Error::Validation(format!(
            "CKM_RSA_PKCS encrypts at most {} bytes with this key, got {}",
            k.saturating_sub(11),
            message.len()
        )));
    }
    let mut em = Zeroizing::new(vec![0u8; k]);
    em[1] = 0x02;
    let ps_end = k - message.len() - 1;
    nonzero_random(&mut em[2..ps_end])?;
    em[ps_end + 1..].copy_from_slice(message);
    Ok(em)
}

/// All ones when `a == b`, else zero (branch-free).
fn eq_mask(a: u8, b: u8) -> u8 {
    let x = u32::from(a ^ b);
    (((x.wrapping_sub(1)) >> 8) & 0xff) as u8
}

/// All ones when `a < b` (both below 2^31), else zero (branch-free).
fn lt_mask(a: usize, b: usize) -> usize {
    (a.wrapping_sub(b) >> (usize::BITS - 1)).wrapping_neg()
}

/// EME-PKCS1-v1_5 decoding of a decrypted block: the message, or `None`.
/// The block is scanned in full and without branches on its bytes; only
/// the final answer (and the message's length) depends on them.
pub(crate) fn pkcs1_unpad(em: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if em.len() < 11 {
        return None;
    }
    let mut good = eq_mask(em[0], 0) & eq_mask(em[1], 2);
    // Index of the first zero after the type byte (0: none yet).
    let mut zero_at = 0usize;
    for (i, b) in em.iter().enumerate().skip(2) {
        let not_found = usize::from(zero_at == 0).wrapping_neg();
        let is_zero = usize::from(eq_mask(*b, 0) & 1).wrapping_neg();
        let mask = not_found & is_zero;
        zero_at = (zero_at & !mask) | (i & mask);
    }
    // A zero found, after at least 8 bytes of padding.
    good &= ((!lt_mask(zero_at, 10)) & 0xff) as u8;
    (good == 0xff).then(|| Zeroizing::new(em[zero_at + 1..].to_vec()))
}

/// EME-OAEP encoding (RFC 8017 7.1.1) for a `k`-byte modulus.
pub(crate) fn oaep_pad(
    hash_len: usize,
    k: usize,
    message: &[u8],
    label: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let alg = oaep_hash(hash_len)?;
    let h = alg.output_len();
    let max = k.saturating_sub(2 * h + 2);
    if message.len() > max {
        return Err(Error::Validation(format!(
            "RSA-OAEP encrypts at most {max} bytes with this key and hash, got {}",
            message.len()
        )));
    }
    let db_len = k - h - 1;
    let mut db = Zeroizing::new(vec![0u8; db_len]);
    db[..h].copy_from_slice(digest::digest(alg, label).as_ref());
    db[db_len - message.len() - 1] = 0x01;
    db[db_len - message.len()..].copy_from_slice(message);
    let mut seed = Zeroizing::new(vec![0u8; h]);
    aws_lc_rs::rand::fill(&mut seed).map_err(|_| crypto_failure("randomness"))?;
    for (b, m) in db
        .iter_mut()
        .zip(super::pss::mgf1(alg, &seed, db_len).iter())
    {
        *b ^= m;
    }
    for (b, m) in seed.iter_mut().zip(super::pss::mgf1(alg, &db, h).iter()) {
        *b ^= m;
    }
    let mut em = Zeroizing::new(Vec::with_capacity(k));
    em.push(0);
    em.extend_from_slice(&seed);
    em.extend_from_slice(&db);
    Ok(em)
}

/// EME-OAEP decoding (RFC 8017 7.1.2 step 3) of a decrypted `k`-byte
/// block: the message, or `None`; branch-free over the block as
/// [`pkcs1_unpad`].
pub(crate) fn oaep_unpad(
    hash_len: usize,
    em: &[u8],
    label: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let alg = oaep_hash(hash_len)?;
    let h = alg.output_len();
    if em.len() < 2 * h + 2 {
        return Ok(None);
    }
    let (masked_seed, masked_db) = em[1..].split_at(h);
    let mut seed = Zeroizing::new(masked_seed.to_vec());
    for (b, m) in seed
        .iter_mut()
        .zip(super::pss::mgf1(alg, masked_db, h).iter())
    {
        *b ^= m;
    }
    let mut db = Zeroizing::new(masked_db.to_vec());
    for (b, m) in db
        .iter_mut()
        .zip(super::pss::mgf1(alg, &seed, masked_db.len()).iter())
    {
        *b ^= m;
    }
    let l_hash = digest::digest(alg, label);
    let mut good = eq_mask(em[0], 0);
    let mut hash_diff = 0u8;
    for (a, b) in db[..h].iter().zip(l_hash.as_ref()) {
        hash_diff |= a ^ b;
    }
    good &= eq_mask(hash_diff, 0);
    // Past the hash: zeros, then 01, then the message.
    let mut one_at = 0usize;
    let mut found = 0u8;
    let mut bad_byte = 0u8;
    for (i, b) in db.iter().enumerate().skip(h) {
        let is_one = eq_mask(*b, 1);
        let is_zero = eq_mask(*b, 0);
        let first = is_one & !found;
        let mask = usize::from(first & 1).wrapping_neg();
        one_at = (one_at & !mask) | (i & mask);
        // A byte other than 0 before the 01 is an error.
        bad_byte |= !found & !is_zero & !is_one;
        found |= is_one;
    }
    good &= found & !bad_byte;
    Ok((good == 0xff).then(|| Zeroizing::new(db[one_at + 1..].to_vec())))
}

/// The error every failed decryption of a small key raises.
pub(crate) fn invalid_ciphertext(mechanism: &str) -> Error {
    Error::InvalidCiphertext(format!(
        "the ciphertext is not a valid {mechanism} ciphertext for this key"
    ))
}

/// The stored key's spec check: material that is not a key of `spec`'s
/// size is malformed.
pub(crate) fn check(spec: KeySpec, pkcs8: &[u8]) -> Result<()> {
    let bits = super::rsa_pkcs1::modulus_bits(spec, pkcs8)?;
    let fits = match spec_bits(spec) {
        Some(want) => bits == want as usize,
        // RSA_OTHER_SIZE: the parse checked 1024 to 8192 bits.
        None => is_small(spec),
    };
    if !fits {
        return Err(malformed_key(spec));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::rsa_pkcs1;
    use super::*;
    use std::sync::OnceLock;

    const SPEC: KeySpec = KeySpec::Rsa1024;

    /// One generated RSA_1024 key for the tests.
    fn key() -> &'static [u8] {
        static KEY: OnceLock<Zeroizing<Vec<u8>>> = OnceLock::new();
        KEY.get_or_init(|| generate(1024).unwrap())
    }

    /// The PKCS#1 RSAPublicKey of the test key (what aws-lc-rs verifies with).
    fn rsa_public_key() -> Vec<u8> {
        let parts = parse_parts(key()).unwrap();
        let mut body = der_uint(&parts[0]).to_vec();
        body.extend_from_slice(&der_uint(&parts[1]));
        tlv(0x30, &body).to_vec()
    }

    #[test]
    fn generated_keys_are_consistent_and_the_library_verifies_their_signatures() {
        let parts = parse_parts(key()).expect("PKCS#8 RSAPrivateKey");
        assert_eq!(parts[0].len(), 128);
        assert!(parts[0][0] & 0x80 != 0, "exactly 1024 bits");
        assert_eq!(&parts[1][..], &[1, 0, 1]);
        assert_eq!(rsa_pkcs1::modulus_bits(SPEC, key()).unwrap(), 1024);
        check(SPEC, key()).unwrap();
        // Stored form is a fixed point of import.
        let (spec, again) = normalize(key()).unwrap();
        assert_eq!((spec, &again[..]), (SPEC, key()));
        // PKCS#1 v1.5 SHA-256 on the bigint path, verified by aws-lc-rs's
        // legacy 1024-bit verification.
        use aws_lc_rs::signature::{
            UnparsedPublicKey, RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY as LEGACY,
        };
        let mut info = vec![
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ];
        info.extend_from_slice(digest::digest(&digest::SHA256, b"legacy").as_ref());
        let sig = rsa_pkcs1::sign_any(SPEC, key(), &info).unwrap();
        assert_eq!(sig.len(), 128);
        let public = UnparsedPublicKey::new(&LEGACY, rsa_public_key());
        public.verify(b"legacy", &sig).expect("aws-lc-rs verifies");
        assert!(public.verify(b"legacy!", &sig).is_err());
        assert!(rsa_pkcs1::verify_any(SPEC, key(), &info, &sig).unwrap());
        // PSS (SHA-256, salt 32) round-trips; a flipped bit does not verify.
        let d = digest::digest(&digest::SHA256, b"pss");
        let pss = super::super::pss::sign(SPEC, key(), 32, 32, d.as_ref()).unwrap();
        assert!(super::super::pss::verify(SPEC, key(), 32, 32, d.as_ref(), &pss).unwrap());
        let mut bad = pss.clone();
        bad[5] ^= 1;
        assert!(!super::super::pss::verify(SPEC, key(), 32, 32, d.as_ref(), &bad).unwrap());
        // The SPKI matches n and e.
        let spki = rsa_pkcs1::public_key_der(SPEC, key()).unwrap();
        assert!(spki.ends_with(&rsa_public_key()));
    }

    #[test]
    fn both_paddings_round_trip_and_every_failure_is_one_error() {
        let k = 128;
        for plain in [&b""[..], b"secret", &[7u8; 117]] {
            let ct = rsa_pkcs1::encrypt(SPEC, key(), plain).unwrap();
            assert_eq!(ct.len(), k);
            assert_eq!(&rsa_pkcs1::decrypt(SPEC, key(), &ct).unwrap()[..], plain);
        }
        assert!(matches!(
            rsa_pkcs1::encrypt(SPEC, key(), &[7; 118]),
            Err(Error::Validation(_))
        ));
        for (hash_len, label) in [(20, &b""[..]), (32, b""), (32, b"label")] {
            let max = k - 2 * hash_len - 2;
            for plain in [&b"x"[..], &vec![9u8; max]] {
                let ct =
                    rsa_pkcs1::oaep_encrypt_small(SPEC, key(), hash_len, plain, label).unwrap();
                let back =
                    rsa_pkcs1::oaep_decrypt_small(SPEC, key(), hash_len, &ct, label).unwrap();
                assert_eq!(&back[..], plain);
                let wrong_label =
                    rsa_pkcs1::oaep_decrypt_small(SPEC, key(), hash_len, &ct, b"other");
                assert!(matches!(wrong_label, Err(Error::InvalidCiphertext(_))));
            }
            assert!(matches!(
                rsa_pkcs1::oaep_encrypt_small(SPEC, key(), hash_len, &vec![1; max + 1], label),
                Err(Error::Validation(_))
            ));
        }
        // PKCS#1 v1.5 failures: tampered, short, long, not below n, an
        // OAEP ciphertext.
        let ct = rsa_pkcs1::encrypt(SPEC, key(), b"secret").unwrap();
        let mut tampered = ct.clone();
        tampered[9] ^= 0x40;
        let oaep = rsa_pkcs1::oaep_encrypt_small(SPEC, key(), 32, b"secret", b"").unwrap();
        for bad in [
            tampered,
            ct[1..].to_vec(),
            [ct.clone(), vec![0]].concat(),
            vec![0xff; k],
            oaep.clone(),
        ] {
            let err = rsa_pkcs1::decrypt(SPEC, key(), &bad).unwrap_err();
            assert!(matches!(err, Error::InvalidCiphertext(_)), "{err:?}");
        }
        let err = rsa_pkcs1::oaep_decrypt_small(SPEC, key(), 32, &ct, b"").unwrap_err();
        assert!(matches!(err, Error::InvalidCiphertext(_)), "{err:?}");
        let err = rsa_pkcs1::oaep_decrypt_small(SPEC, key(), 20, &oaep, b"").unwrap_err();
        assert!(matches!(err, Error::InvalidCiphertext(_)), "{err:?}");
    }

    #[test]
    fn decoders_refuse_malformed_blocks() {
        let mut em = vec![0u8, 2];
        em.extend([0x55; 8]);
        em.push(0);
        em.extend(b"msg");
        assert_eq!(&pkcs1_unpad(&em).unwrap()[..], b"msg");
        let mut short_ps = em.clone();
        short_ps[9] = 0;
        assert!(pkcs1_unpad(&short_ps).is_none(), "7 bytes of padding");
        let mut wrong_type = em.clone();
        wrong_type[1] = 1;
        assert!(pkcs1_unpad(&wrong_type).is_none());
        let mut lead = em.clone();
        lead[0] = 1;
        assert!(pkcs1_unpad(&lead).is_none());
        let no_zero: Vec<u8> = [0u8, 2].into_iter().chain([0x55; 20]).collect();
        assert!(pkcs1_unpad(&no_zero).is_none());
        // An empty message after the separator.
        let mut empty = vec![0u8, 2];
        empty.extend([0x55; 8]);
        empty.push(0);
        assert_eq!(pkcs1_unpad(&empty).unwrap().len(), 0);
        // OAEP: a block made by oaep_pad decodes; a non-zero leading byte or
        // a stray byte in PS does not.
        let em = oaep_pad(32, 128, b"m", b"").unwrap();
        assert_eq!(&oaep_unpad(32, &em, b"").unwrap().unwrap()[..], b"m");
        let mut lead = em.to_vec();
        lead[0] = 1;
        assert!(oaep_unpad(32, &lead, b"").unwrap().is_none());
    }

    #[test]
    fn any_size_from_1024_to_8192_is_generated_and_used() {
        let other = KeySpec::RsaOtherSize;
        // 1100 bits: neither a whole number of 64-bit limbs nor of bytes
        // after the top one.
        let (spec, key) = super::super::generate_rsa(1100).unwrap();
        assert_eq!(spec, other);
        assert_eq!(rsa_pkcs1::modulus_bits(other, &key).unwrap(), 1100);
        check(other, &key).unwrap();
        assert_eq!(normalize(&key).unwrap().0, other);
        let sig = rsa_pkcs1::sign_any(other, &key, b"input").unwrap();
        assert_eq!(sig.len(), 138);
        assert!(rsa_pkcs1::verify_any(other, &key, b"input", &sig).unwrap());
        let d = digest::digest(&digest::SHA256, b"pss");
        let pss = super::super::pss::sign(other, &key, 32, 20, d.as_ref()).unwrap();
        assert!(super::super::pss::verify(other, &key, 32, 20, d.as_ref(), &pss).unwrap());
        let ct = rsa_pkcs1::oaep_encrypt_small(other, &key, 32, b"m", b"").unwrap();
        assert_eq!(
            &rsa_pkcs1::oaep_decrypt_small(other, &key, 32, &ct, b"").unwrap()[..],
            b"m"
        );
        // A key of one of the fixed sizes is not RSA_1024's.
        assert!(check(KeySpec::Rsa1024, &key).is_err());
        assert_eq!(
            super::super::generate_rsa(2048).unwrap().0,
            KeySpec::Rsa2048
        );
        for bits in [0, 512, 1023, 8193] {
            assert!(
                matches!(super::super::generate_rsa(bits), Err(Error::Validation(_))),
                "{bits}"
            );
        }
    }

    #[test]
    fn import_checks_the_key() {
        // A key whose p does not divide n is refused; other sizes are not
        // this module's.
        let mut parts = parse_parts(key()).unwrap();
        let last = parts[3].len() - 1;
        parts[3][last] ^= 2;
        assert!(normalize(&pkcs8(&parts)).is_none());
        let big = super::super::rsa::generate(KeySpec::Rsa2048).unwrap();
        assert!(normalize(&big).is_none());
        assert!(normalize(b"\x30\x00").is_none());
        assert_eq!(spec_of_bits(1024), Some(SPEC));
        assert_eq!(spec_of_bits(1023), None);
    }
}
