//! Raw signature primitives for the PKCS#11 module, whose mechanisms differ
//! from KMS: CKM_RSA_PKCS pads and signs the caller's bytes (a DigestInfo
//! or anything else up to k-11 bytes, see [`super::rsa_pkcs1`]), CKM_ECDSA signs
//! a bare digest of any common length and returns fixed-size r||s,
//! CKM_RSA_PKCS_PSS names its hash and salt length, CKM_EDDSA signs a whole
//! message. RSA-OAEP (CKM_RSA_PKCS_OAEP with SHA-1/SHA-256) is
//! [`super::rsa_encrypt`] / [`super::rsa_decrypt`].
//!
//! Like the KMS functions, verification answers `Ok(false)` for a
//! signature that does not verify, and errors never carry key bytes.

use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::signature::{
    self, RsaEncoding, RsaParameters, RsaPssSaltLength, RsaSignatureEncoding,
};

use super::{crypto_failure, ecc, rsa};
use crate::error::{Error, Result};
use crate::types::KeySpec;

/// The largest message [`eddsa_sign_raw`] and [`eddsa_verify_raw`] take
/// (CKM_EDDSA has no pre-hash, so the whole message passes through).
pub(crate) const MAX_EDDSA_MESSAGE_LEN: usize = 1 << 20;

/// The largest PSS salt, in bytes, the raw PSS functions accept (salts past
/// the hash length add nothing; 64 covers every hash here).
pub(crate) const MAX_PSS_SALT_LEN: usize = 64;

/// The largest digest CKM_ECDSA takes here: SHA-512's.
const MAX_ECDSA_DIGEST_LEN: usize = 64;

/// An RSA private key to sign or verify with: stored PKCS#8 (parsed on
/// each call) or a key parsed once (the material cache keeps one, so the
/// PKCS#11 hot path does not re-parse and re-validate RSA keys).
pub(crate) trait RsaKeySource {
    /// Runs `f` on the key, which must be of `spec`.
    fn with_rsa<T>(
        &self,
        spec: KeySpec,
        f: impl FnOnce(&aws_lc_rs::rsa::KeyPair) -> Result<T>,
    ) -> Result<T>;
}

impl RsaKeySource for [u8] {
    fn with_rsa<T>(
        &self,
        spec: KeySpec,
        f: impl FnOnce(&aws_lc_rs::rsa::KeyPair) -> Result<T>,
    ) -> Result<T> {
        f(&rsa::parse(spec, self)?)
    }
}

impl RsaKeySource for super::PrivateKey {
    fn with_rsa<T>(
        &self,
        spec: KeySpec,
        f: impl FnOnce(&aws_lc_rs::rsa::KeyPair) -> Result<T>,
    ) -> Result<T> {
        match self {
            super::PrivateKey::Rsa(own, key) if *own == spec => f(key),
            _ => Err(super::malformed_key(spec)),
        }
    }
}

/// The hash of an RSA-PSS signature (MGF1 uses the same hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PssHash {
    /// SHA-256 (CKM_SHA256 / CKG_MGF1_SHA256).
    Sha256,
    /// SHA-384 (CKM_SHA384 / CKG_MGF1_SHA384).
    Sha384,
    /// SHA-512 (CKM_SHA512 / CKG_MGF1_SHA512).
    Sha512,
}

impl PssHash {
    /// The library's digest algorithm.
    fn algorithm(self) -> &'static digest::Algorithm {
        match self {
            PssHash::Sha256 => &digest::SHA256,
            PssHash::Sha384 => &digest::SHA384,
            PssHash::Sha512 => &digest::SHA512,
        }
    }
}

/// Builds, at compile time, one `'static` PSS parameter set per salt length
/// 0..=MAX_PSS_SALT_LEN (the library takes PSS parameters by `'static`
/// reference only).
macro_rules! pss_table {
    ($base:path) => {{
        let mut table = [$base; MAX_PSS_SALT_LEN + 1];
        let mut salt = 0;
        while salt <= MAX_PSS_SALT_LEN {
            table[salt] = $base.with_pss_salt_length(RsaPssSaltLength::Custom(salt as u16));
            salt += 1;
        }
        table
    }};
}

static PSS_SIGN_SHA256: [RsaSignatureEncoding; MAX_PSS_SALT_LEN + 1] =
    pss_table!(signature::RSA_PSS_SHA256);
static PSS_SIGN_SHA384: [RsaSignatureEncoding; MAX_PSS_SALT_LEN + 1] =
    pss_table!(signature::RSA_PSS_SHA384);
static PSS_SIGN_SHA512: [RsaSignatureEncoding; MAX_PSS_SALT_LEN + 1] =
    pss_table!(signature::RSA_PSS_SHA512);
static PSS_VERIFY_SHA256: [RsaParameters; MAX_PSS_SALT_LEN + 1] =
    pss_table!(signature::RSA_PSS_2048_8192_SHA256);
static PSS_VERIFY_SHA384: [RsaParameters; MAX_PSS_SALT_LEN + 1] =
    pss_table!(signature::RSA_PSS_2048_8192_SHA384);
static PSS_VERIFY_SHA512: [RsaParameters; MAX_PSS_SALT_LEN + 1] =
    pss_table!(signature::RSA_PSS_2048_8192_SHA512);

/// The DER prefix of a DigestInfo (RFC 8017 §9.2, NULL parameters) for the
/// hashes CKM_RSA_PKCS signs here, with the digest length that follows.
const DIGEST_INFO_PREFIXES: [(&[u8], &digest::Algorithm); 3] = [
    (
        &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        &digest::SHA256,
    ),
    (
        &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        &digest::SHA384,
    ),
    (
        &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
        &digest::SHA512,
    ),
];

/// Splits a DigestInfo into its digest; only the canonical SHA-256/384/512
/// encodings are accepted (anything else is a `ValidationException`).
fn parse_digest_info(digest_info: &[u8]) -> Result<Digest> {
    for (prefix, algorithm) in DIGEST_INFO_PREFIXES {
        if let Some(value) = digest_info.strip_prefix(prefix) {
            if value.len() == algorithm.output_len() {
                return Digest::import_less_safe(value, algorithm)
                    .map_err(|_| crypto_failure("digest import"));
            }
        }
    }
    Err(Error::Validation(
        "CKM_RSA_PKCS takes a DER DigestInfo of SHA-256, SHA-384 or SHA-512 only".into(),
    ))
}

/// The PKCS#1 v1.5 encoding matching a digest's hash.
fn pkcs1_encoding(digest: &Digest) -> Result<(&'static dyn RsaEncoding, &'static RsaParameters)> {
    let id = digest.algorithm();
    if id == &digest::SHA256 {
        Ok((
            &signature::RSA_PKCS1_SHA256,
            &signature::RSA_PKCS1_2048_8192_SHA256,
        ))
    } else if id == &digest::SHA384 {
        Ok((
            &signature::RSA_PKCS1_SHA384,
            &signature::RSA_PKCS1_2048_8192_SHA384,
        ))
    } else if id == &digest::SHA512 {
        Ok((
            &signature::RSA_PKCS1_SHA512,
            &signature::RSA_PKCS1_2048_8192_SHA512,
        ))
    } else {
        Err(crypto_failure("DigestInfo hash selection"))
    }
}

/// CKM_RSA_PKCS signature: PKCS#1 v1.5 (type 1) padding of a caller-supplied
/// DER DigestInfo (SHA-256, SHA-384 or SHA-512), then the private-key
/// operation.
pub(crate) fn rsa_pkcs1v15_sign_digest_info<K: RsaKeySource + ?Sized>(
    spec: KeySpec,
    private: &K,
    digest_info: &[u8],
) -> Result<Vec<u8>> {
    private.with_rsa(spec, |key| {
        let digest = parse_digest_info(digest_info)?;
        let (encoding, _) = pkcs1_encoding(&digest)?;
        rsa::sign_digest_with(key, encoding, &digest)
    })
}

/// Checks a CKM_RSA_PKCS signature over a DigestInfo; `Ok(false)` when it
/// does not verify.
pub(crate) fn rsa_pkcs1v15_verify_digest_info<K: RsaKeySource + ?Sized>(
    spec: KeySpec,
    private: &K,
    digest_info: &[u8],
    signature: &[u8],
) -> Result<bool> {
    private.with_rsa(spec, |key| {
        let digest = parse_digest_info(digest_info)?;
        let (_, parameters) = pkcs1_encoding(&digest)?;
        Ok(rsa::verify_digest_with(key, parameters, &digest, signature))
    })
}

/// Whether `input` is a DigestInfo [`rsa_pkcs1v15_sign_digest_info`] takes
/// (the fast path through the library's digest signing).
fn is_sha2_digest_info(input: &[u8]) -> bool {
    DIGEST_INFO_PREFIXES.iter().any(|(prefix, algorithm)| {
        input
            .strip_prefix(*prefix)
            .is_some_and(|value| value.len() == algorithm.output_len())
    })
}

/// CKM_RSA_PKCS signature of any input of at most k-11 bytes: a SHA-2
/// DigestInfo goes through the library's digest signing, anything else
/// through [`super::rsa_pkcs1::sign_any`]. Both give the same
/// (deterministic) signature.
pub(crate) fn rsa_pkcs1v15_sign_any<K: RsaKeySource + ?Sized>(
    spec: KeySpec,
    private: &K,
    private_pkcs8: &[u8],
    input: &[u8],
) -> Result<Vec<u8>> {
    if is_sha2_digest_info(input) {
        rsa_pkcs1v15_sign_digest_info(spec, private, input)
    } else {
        super::rsa_pkcs1::sign_any(spec, private_pkcs8, input)
    }
}

/// Checks a CKM_RSA_PKCS signature of any input; `Ok(false)` when it does
/// not verify.
pub(crate) fn rsa_pkcs1v15_verify_any<K: RsaKeySource + ?Sized>(
    spec: KeySpec,
    private: &K,
    private_pkcs8: &[u8],
    input: &[u8],
    signature: &[u8],
) -> Result<bool> {
    if is_sha2_digest_info(input) {
        rsa_pkcs1v15_verify_digest_info(spec, private, input, signature)
    } else {
        super::rsa_pkcs1::verify_any(spec, private_pkcs8, input, signature)
    }
}

/// The digest of `hash` for a raw PSS call, and the table index of the salt.
fn pss_input(hash: PssHash, salt_len: usize, digest: &[u8]) -> Result<Digest> {
    if salt_len > MAX_PSS_SALT_LEN {
        return Err(Error::Validation(format!(
            "the PSS salt length must be 0 to {MAX_PSS_SALT_LEN} bytes, got {salt_len}"
        )));
    }
    Digest::import_less_safe(digest, hash.algorithm()).map_err(|_| {
        Error::Validation(format!(
            "a {hash:?} digest must be {} bytes, got {}",
            hash.algorithm().output_len(),
            digest.len()
        ))
    })
}

/// CKM_RSA_PKCS_PSS signature of a digest of `hash`, with MGF1 of the same
/// hash and a salt of `salt_len` bytes (0 to [`MAX_PSS_SALT_LEN`]).
pub(crate) fn rsa_pss_sign_digest_raw<K: RsaKeySource + ?Sized>(
    spec: KeySpec,
    private: &K,
    hash: PssHash,
    salt_len: usize,
    digest: &[u8],
) -> Result<Vec<u8>> {
    let digest = pss_input(hash, salt_len, digest)?;
    let encoding: &'static RsaSignatureEncoding = match hash {
        PssHash::Sha256 => &PSS_SIGN_SHA256[salt_len],
        PssHash::Sha384 => &PSS_SIGN_SHA384[salt_len],
        PssHash::Sha512 => &PSS_SIGN_SHA512[salt_len],
    };
    private.with_rsa(spec, |key| rsa::sign_digest_with(key, encoding, &digest))
}

/// Checks a CKM_RSA_PKCS_PSS signature (exactly `salt_len` bytes of salt);
/// `Ok(false)` when it does not verify.
pub(crate) fn rsa_pss_verify_digest_raw<K: RsaKeySource + ?Sized>(
    spec: KeySpec,
    private: &K,
    hash: PssHash,
    salt_len: usize,
    digest: &[u8],
    signature: &[u8],
) -> Result<bool> {
    let digest = pss_input(hash, salt_len, digest)?;
    let parameters: &'static RsaParameters = match hash {
        PssHash::Sha256 => &PSS_VERIFY_SHA256[salt_len],
        PssHash::Sha384 => &PSS_VERIFY_SHA384[salt_len],
        PssHash::Sha512 => &PSS_VERIFY_SHA512[salt_len],
    };
    private.with_rsa(spec, |key| {
        Ok(rsa::verify_digest_with(key, parameters, &digest, signature))
    })
}

/// Brings a CKM_ECDSA digest (1 to 64 bytes, any hash) to the curve's hash
/// length without changing the integer ECDSA derives from it: longer
/// digests keep their leftmost bytes (ECDSA's own truncation, exact for
/// P-256/P-384 whose orders are whole bytes), shorter ones are left-padded
/// with zeros (the same big-endian value). P-521 takes up to 64 bytes,
/// which it never truncates.
fn ecdsa_digest(spec: KeySpec, digest: &[u8]) -> Result<Digest> {
    let hash: &'static digest::Algorithm = match spec {
        KeySpec::EccNistP256 => &digest::SHA256,
        KeySpec::EccNistP384 => &digest::SHA384,
        KeySpec::EccNistP521 => &digest::SHA512,
        other => {
            return Err(Error::Validation(format!(
                "{other} is not an ECDSA key spec"
            )))
        }
    };
    if digest.is_empty() || digest.len() > MAX_ECDSA_DIGEST_LEN {
        return Err(Error::Validation(format!(
            "a CKM_ECDSA digest must be 1 to {MAX_ECDSA_DIGEST_LEN} bytes, got {}",
            digest.len()
        )));
    }
    let len = hash.output_len();
    let mut normalized = [0u8; MAX_ECDSA_DIGEST_LEN];
    if digest.len() >= len {
        normalized[..len].copy_from_slice(&digest[..len]);
    } else {
        normalized[len - digest.len()..len].copy_from_slice(digest);
    }
    Digest::import_less_safe(&normalized[..len], hash).map_err(|_| crypto_failure("digest import"))
}

/// An ECDSA private key to sign with: stored PKCS#8 (parsed on each call)
/// or the key the material cache parsed once (ASN.1-bound; its DER
/// signature is converted to r || s).
pub(crate) trait EcKeySource {
    /// A fixed-size (r || s) signature of a digest of the curve's hash.
    fn sign_fixed(&self, spec: KeySpec, digest: &Digest) -> Result<Vec<u8>>;
}

impl EcKeySource for [u8] {
    fn sign_fixed(&self, spec: KeySpec, digest: &Digest) -> Result<Vec<u8>> {
        let key = ecc::parse_ecdsa_with(spec, ecc::fixed_signing(spec)?, self)?;
        ecc::ecdsa_sign_digest(&key, digest)
    }
}

impl EcKeySource for super::PrivateKey {
    fn sign_fixed(&self, spec: KeySpec, digest: &Digest) -> Result<Vec<u8>> {
        match self {
            super::PrivateKey::Ecdsa(own, key) if *own == spec => {
                der_to_fixed(spec, &ecc::ecdsa_sign_digest(key, digest)?)
            }
            _ => Err(super::malformed_key(spec)),
        }
    }
}

/// Converts a DER ECDSA signature (SEQUENCE of two INTEGERs) to r || s,
/// each left-padded to the curve's field size.
fn der_to_fixed(spec: KeySpec, der: &[u8]) -> Result<Vec<u8>> {
    let size = match spec {
        KeySpec::EccNistP256 => 32,
        KeySpec::EccNistP384 => 48,
        _ => 66,
    };
    let bad = || crypto_failure("ECDSA signature encoding");
    let body = match der {
        [0x30, len, rest @ ..] if usize::from(*len) == rest.len() && *len < 0x80 => rest,
        [0x30, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
        _ => return Err(bad()),
    };
    let mut out = Vec::with_capacity(2 * size);
    let mut rest = body;
    for _ in 0..2 {
        let [0x02, len, tail @ ..] = rest else {
            return Err(bad());
        };
        let len = usize::from(*len);
        let int = tail.get(..len).ok_or_else(bad)?;
        let int = int.strip_prefix(&[0]).unwrap_or(int);
        if int.len() > size {
            return Err(bad());
        }
        out.extend(std::iter::repeat_n(0u8, size - int.len()));
        out.extend_from_slice(int);
        rest = &tail[len..];
    }
    Ok(out)
}

/// CKM_ECDSA signature of a caller-supplied digest, as fixed-size r || s.
pub(crate) fn ecdsa_sign_digest_raw<K: EcKeySource + ?Sized>(
    spec: KeySpec,
    private: &K,
    digest: &[u8],
) -> Result<Vec<u8>> {
    let digest = ecdsa_digest(spec, digest)?;
    private.sign_fixed(spec, &digest)
}

/// Checks a CKM_ECDSA r||s signature of a raw digest; `Ok(false)` when it
/// does not verify (a wrong-length signature included).
pub(crate) fn ecdsa_verify_digest_raw(
    spec: KeySpec,
    private_pkcs8: &[u8],
    digest: &[u8],
    signature: &[u8],
) -> Result<bool> {
    let digest = ecdsa_digest(spec, digest)?;
    let key = ecc::parse_ecdsa_with(spec, ecc::fixed_signing(spec)?, private_pkcs8)?;
    Ok(ecc::ecdsa_verify_digest_with(
        &key,
        ecc::fixed_verification(spec)?,
        &digest,
        signature,
    ))
}

/// Refuses a non-Ed25519 spec or an oversized CKM_EDDSA message.
fn check_eddsa(spec: KeySpec, message: &[u8]) -> Result<()> {
    if spec != KeySpec::EccEd25519 {
        return Err(Error::Validation(format!(
            "CKM_EDDSA needs an Ed25519 key, not {spec}"
        )));
    }
    if message.len() > MAX_EDDSA_MESSAGE_LEN {
        return Err(Error::Validation(format!(
            "a CKM_EDDSA message may be at most {MAX_EDDSA_MESSAGE_LEN} bytes, got {}",
            message.len()
        )));
    }
    Ok(())
}

/// CKM_EDDSA (pure Ed25519) signature of a whole message, up to
/// [`MAX_EDDSA_MESSAGE_LEN`] bytes (empty allowed).
pub(crate) fn eddsa_sign_raw(
    spec: KeySpec,
    private_pkcs8: &[u8],
    message: &[u8],
) -> Result<Vec<u8>> {
    check_eddsa(spec, message)?;
    let key = ecc::parse_ed25519(private_pkcs8)?;
    ecc::ed25519_sign(&key, message)
}

/// Checks a CKM_EDDSA signature; `Ok(false)` when it does not verify.
pub(crate) fn eddsa_verify_raw(
    spec: KeySpec,
    private_pkcs8: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<bool> {
    check_eddsa(spec, message)?;
    let key = ecc::parse_ed25519(private_pkcs8)?;
    Ok(ecc::ed25519_verify(&key, message, signature))
}

#[cfg(test)]
mod der_to_fixed_tests {
    use super::*;

    #[test]
    fn pads_short_integers_and_drops_sign_bytes() {
        // r: 31 bytes; s: 33 bytes with a leading zero (high bit set).
        let mut der = vec![0x30, 2 + 31 + 2 + 33, 0x02, 31];
        der.extend([0x11; 31]);
        der.extend([0x02, 33, 0x00]);
        der.extend([0x99; 32]);
        let fixed = der_to_fixed(KeySpec::EccNistP256, &der).unwrap();
        assert_eq!(fixed.len(), 64);
        assert_eq!(fixed[0], 0);
        assert_eq!(&fixed[1..32], &[0x11; 31]);
        assert_eq!(&fixed[32..], &[0x99; 32]);
        assert!(der_to_fixed(KeySpec::EccNistP256, &der[..10]).is_err());
        assert!(der_to_fixed(KeySpec::EccNistP256, &[0x31, 0x00]).is_err());
    }
}
