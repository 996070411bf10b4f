//! RSASSA-PSS beyond aws-lc-rs's fixed parameter sets, for the PKCS#11
//! module: SHA-1 and SHA-224 (CKM_SHA1_RSA_PKCS_PSS, CKM_SHA224_RSA_PKCS_PSS
//! and CKM_RSA_PKCS_PSS with those hashes) and any salt length up to the
//! largest the key allows (emLen - hLen - 2). EMSA-PSS encoding and
//! verification follow RFC 8017 section 9.1 with MGF1 of the same hash; the
//! hashes are aws-lc-rs's and the RSA operations those of
//! [`super::rsa_pkcs1`] (constant-time exponentiation, every signature
//! checked with the public exponent before it leaves).

use aws_lc_rs::digest;
use zeroize::Zeroizing;

use super::rsa_pkcs1::{modulus_bits, private_raw, public_raw};
use crate::error::{Error, Result};
use crate::types::KeySpec;

/// The hash of a PSS signature, by its digest length (20, 28, 32, 48, 64).
fn hash(hash_len: usize) -> Result<&'static digest::Algorithm> {
    Ok(match hash_len {
        20 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        28 => &digest::SHA224,
        32 => &digest::SHA256,
        48 => &digest::SHA384,
        64 => &digest::SHA512,
        _ => return Err(Error::validation("PSS needs SHA-1 or SHA-2")),
    })
}

/// MGF1 (RFC 8017 B.2.1) of `seed`, `len` bytes.
pub(super) fn mgf1(alg: &'static digest::Algorithm, seed: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(len + alg.output_len()));
    let mut counter: u32 = 0;
    while out.len() < len {
        let mut ctx = digest::Context::new(alg);
        ctx.update(seed);
        ctx.update(&counter.to_be_bytes());
        out.extend_from_slice(ctx.finish().as_ref());
        counter += 1;
    }
    out.truncate(len);
    out
}

/// H = Hash(00 00 00 00 00 00 00 00 || mHash || salt).
fn h_of(alg: &'static digest::Algorithm, m_hash: &[u8], salt: &[u8]) -> digest::Digest {
    let mut ctx = digest::Context::new(alg);
    ctx.update(&[0u8; 8]);
    ctx.update(m_hash);
    ctx.update(salt);
    ctx.finish()
}

/// Checks the digest and salt lengths against the key's encoded length.
fn check(
    alg: &'static digest::Algorithm,
    m_hash: &[u8],
    salt_len: usize,
    em_len: usize,
) -> Result<()> {
    let h_len = alg.output_len();
    if m_hash.len() != h_len {
        return Err(Error::Validation(format!(
            "a PSS digest of this hash is {h_len} bytes, got {}",
            m_hash.len()
        )));
    }
    if em_len < h_len + salt_len + 2 {
        return Err(Error::Validation(format!(
            "the PSS salt is at most {} bytes with this key and hash",
            em_len.saturating_sub(h_len + 2)
        )));
    }
    Ok(())
}

/// EMSA-PSS-ENCODE (RFC 8017 9.1.1) of a digest, emBits = modBits - 1.
fn encode(
    alg: &'static digest::Algorithm,
    m_hash: &[u8],
    salt_len: usize,
    em_bits: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    let em_len = em_bits.div_ceil(8);
    check(alg, m_hash, salt_len, em_len)?;
    let h_len = alg.output_len();
    let mut salt = vec![0u8; salt_len];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| Error::Internal("no randomness".into()))?;
    let h = h_of(alg, m_hash, &salt);
    let db_len = em_len - h_len - 1;
    let mut db = Zeroizing::new(vec![0u8; db_len]);
    db[db_len - salt_len - 1] = 0x01;
    db[db_len - salt_len..].copy_from_slice(&salt);
    let mask = mgf1(alg, h.as_ref(), db_len);
    for (b, m) in db.iter_mut().zip(mask.iter()) {
        *b ^= m;
    }
    db[0] &= 0xff >> (8 * em_len - em_bits);
    let mut em = Zeroizing::new(Vec::with_capacity(em_len));
    em.extend_from_slice(&db);
    em.extend_from_slice(h.as_ref());
    em.push(0xbc);
    Ok(em)
}

/// EMSA-PSS-VERIFY (RFC 8017 9.1.2) with a known salt length.
fn verify_encoding(
    alg: &'static digest::Algorithm,
    m_hash: &[u8],
    salt_len: usize,
    em: &[u8],
    em_bits: usize,
) -> bool {
    let em_len = em_bits.div_ceil(8);
    let h_len = alg.output_len();
    if em.len() != em_len || em_len < h_len + salt_len + 2 || em[em_len - 1] != 0xbc {
        return false;
    }
    let db_len = em_len - h_len - 1;
    let (masked, rest) = em.split_at(db_len);
    let h = &rest[..h_len];
    let top_mask = 0xffu8 >> (8 * em_len - em_bits);
    if masked[0] & !top_mask != 0 {
        return false;
    }
    let mask = mgf1(alg, h, db_len);
    let mut db: Vec<u8> = masked.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect();
    db[0] &= top_mask;
    let pad = db_len - salt_len - 1;
    if db[..pad].iter().any(|b| *b != 0) || db[pad] != 0x01 {
        return false;
    }
    let expected = h_of(alg, m_hash, &db[pad + 1..]);
    aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_ref(), h).is_ok()
}

/// An RSASSA-PSS signature of a digest of the hash named by `hash_len`,
/// MGF1 of the same hash, with `salt_len` bytes of salt.
pub(crate) fn sign(
    spec: KeySpec,
    private_pkcs8: &[u8],
    hash_len: usize,
    salt_len: usize,
    digest: &[u8],
) -> Result<Vec<u8>> {
    let alg = hash(hash_len)?;
    let em_bits = modulus_bits(spec, private_pkcs8)? - 1;
    let em = encode(alg, digest, salt_len, em_bits)?;
    private_raw(spec, private_pkcs8, &em)
}

/// Checks an RSASSA-PSS signature as [`sign`] makes it; `Ok(false)` when it
/// does not verify (malformed or out-of-range signatures included).
pub(crate) fn verify(
    spec: KeySpec,
    private_pkcs8: &[u8],
    hash_len: usize,
    salt_len: usize,
    digest: &[u8],
    signature: &[u8],
) -> Result<bool> {
    let alg = hash(hash_len)?;
    let mod_bits = modulus_bits(spec, private_pkcs8)?;
    let em_bits = mod_bits - 1;
    check(alg, digest, salt_len, em_bits.div_ceil(8))?;
    let k = mod_bits.div_ceil(8);
    if signature.len() != k {
        return Ok(false);
    }
    let m = match public_raw(spec, private_pkcs8, signature) {
        Ok(m) => m,
        Err(Error::Validation(_)) => return Ok(false),
        Err(e) => return Err(e),
    };
    let em_len = em_bits.div_ceil(8);
    let (lead, em) = m.split_at(k - em_len);
    if lead.iter().any(|b| *b != 0) {
        return Ok(false);
    }
    Ok(verify_encoding(alg, digest, salt_len, em, em_bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// aws-lc-rs verifies what this module signs (SHA-256, salt 32), and
    /// this module verifies what aws-lc-rs signs; a long salt and SHA-1 /
    /// SHA-224 round-trip; tampering fails.
    #[test]
    fn interoperates_with_the_library_and_refuses_tampering() {
        use aws_lc_rs::signature::{self, KeyPair as _};
        let spec = KeySpec::Rsa2048;
        let pkcs8 = super::super::rsa::generate(spec).unwrap();
        let digest = digest::digest(&digest::SHA256, b"abc");
        let ours = sign(spec, &pkcs8, 32, 32, digest.as_ref()).unwrap();
        let key = super::super::rsa::parse(spec, &pkcs8).unwrap();
        let public = signature::UnparsedPublicKey::new(
            &signature::RSA_PSS_2048_8192_SHA256,
            key.public_key().as_ref().to_vec(),
        );
        public
            .verify(b"abc", &ours)
            .expect("aws-lc-rs verifies ours");
        let mut theirs = vec![0u8; key.public_modulus_len()];
        key.sign(
            &signature::RSA_PSS_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            b"abc",
            &mut theirs,
        )
        .unwrap();
        assert!(verify(spec, &pkcs8, 32, 32, digest.as_ref(), &theirs).unwrap());
        for (hash_len, salt_len) in [(20, 0), (20, 20), (28, 28), (32, 222), (64, 190)] {
            let alg = hash(hash_len).unwrap();
            let d = digest::digest(alg, b"message");
            let sig = sign(spec, &pkcs8, hash_len, salt_len, d.as_ref()).unwrap();
            assert!(verify(spec, &pkcs8, hash_len, salt_len, d.as_ref(), &sig).unwrap());
            let other_salt = if salt_len > 0 { salt_len - 1 } else { 1 };
            assert!(!verify(spec, &pkcs8, hash_len, other_salt, d.as_ref(), &sig).unwrap());
            let mut bad = sig.clone();
            bad[7] ^= 1;
            assert!(!verify(spec, &pkcs8, hash_len, salt_len, d.as_ref(), &bad).unwrap());
            assert!(!verify(spec, &pkcs8, hash_len, salt_len, d.as_ref(), &sig[1..]).unwrap());
        }
        // emLen 256 - hLen 32 - 2: a salt of 223 bytes does not fit.
        assert!(matches!(
            sign(spec, &pkcs8, 32, 223, digest.as_ref()),
            Err(Error::Validation(_))
        ));
        assert!(matches!(
            sign(spec, &pkcs8, 32, 0, &[0u8; 20]),
            Err(Error::Validation(_))
        ));
    }
}
