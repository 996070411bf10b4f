//! ML-DSA (FIPS 204) key pairs: ML-DSA-44, ML-DSA-65 and ML-DSA-87.
//!
//! Key material is stored in seed form: the PKCS#8 v1 `OneAsymmetricKey`
//! whose private key is the 32-byte seed xi (`seed [0] OCTET STRING`, as
//! aws-lc-rs writes it and RFC 9881 defines it). Both libraries expand the
//! same seed, so one stored key serves every mode.
//!
//! * aws-lc-rs (stable `signature::PqdsaKeyPair` API since 1.18, no
//!   `unstable` feature): key generation, the public key
//!   (SubjectPublicKeyInfo with the FIPS 204 OIDs), hedged signing of a RAW
//!   message with the empty context (what KMS's `ML_DSA_SHAKE_256` with
//!   `MessageType` `RAW` is) and verification of it.
//! * RustCrypto `ml-dsa`: what aws-lc-rs 1.19 does not expose — signing and
//!   verifying a caller's 64-byte mu (KMS `EXTERNAL_MU`, FIPS 204 section
//!   6.2), context strings and the deterministic variant (PKCS#11
//!   `CKM_ML_DSA` with `CK_SIGN_ADDITIONAL_CONTEXT`). Its signing key is
//!   expanded from the seed on first use and wiped on drop.

use std::sync::OnceLock;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    self as lc, KeyPair as _, ParsedPublicKey, PqdsaKeyPair, PqdsaSigningAlgorithm,
    PqdsaVerificationAlgorithm, UnparsedPublicKey,
};
use ml_dsa::common::array::Array;
use ml_dsa::{MlDsa44, MlDsa65, MlDsa87, MlDsaParams, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use super::{crypto_failure, malformed_key};
use crate::error::{Error, Result};
use crate::types::KeySpec;

/// The length of the ML-DSA seed xi.
pub(crate) const SEED_LEN: usize = 32;
/// The length of the message representative mu.
pub(crate) const MU_LEN: usize = 64;
/// The longest context string FIPS 204 allows.
pub(crate) const MAX_CONTEXT_LEN: usize = 255;

/// The DER of a seed-form PKCS#8 ML-DSA key up to the parameter set's last
/// OID byte: SEQUENCE, version 0, AlgorithmIdentifier { id-ml-dsa-* }.
const SEED_PKCS8_HEAD: [u8; 17] = [
    0x30, 0x34, 0x02, 0x01, 0x00, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
    0x03,
];

/// The last byte of the parameter set's OID (2.16.840.1.101.3.4.3.17-19).
fn oid_last(spec: KeySpec) -> Result<u8> {
    match spec {
        KeySpec::MlDsa44 => Ok(0x11),
        KeySpec::MlDsa65 => Ok(0x12),
        KeySpec::MlDsa87 => Ok(0x13),
        other => Err(Error::Internal(format!(
            "{other} is not an ML-DSA key spec"
        ))),
    }
}

fn signing_alg(spec: KeySpec) -> Result<&'static PqdsaSigningAlgorithm> {
    match spec {
        KeySpec::MlDsa44 => Ok(&lc::ML_DSA_44_SIGNING),
        KeySpec::MlDsa65 => Ok(&lc::ML_DSA_65_SIGNING),
        KeySpec::MlDsa87 => Ok(&lc::ML_DSA_87_SIGNING),
        other => Err(Error::Internal(format!(
            "{other} is not an ML-DSA key spec"
        ))),
    }
}

/// The aws-lc-rs verification algorithm of an ML-DSA spec.
pub(crate) fn verification_alg(spec: KeySpec) -> Result<&'static PqdsaVerificationAlgorithm> {
    match spec {
        KeySpec::MlDsa44 => Ok(&lc::ML_DSA_44),
        KeySpec::MlDsa65 => Ok(&lc::ML_DSA_65),
        KeySpec::MlDsa87 => Ok(&lc::ML_DSA_87),
        other => Err(Error::Internal(format!(
            "{other} is not an ML-DSA key spec"
        ))),
    }
}

/// The signature length of an ML-DSA spec (2420, 3309, 4627 bytes).
pub(crate) fn signature_len(spec: KeySpec) -> Result<usize> {
    Ok(signing_alg(spec)?.signature_len())
}

/// The DER SubjectPublicKeyInfo of a raw ML-DSA public key of `spec`
/// (what aws-lc-rs writes for its own keys).
pub(crate) fn public_key_der_of(spec: KeySpec, public_key: &[u8]) -> Result<Vec<u8>> {
    let bit_string_len = public_key.len() + 1;
    let inner_len = 13 + 4 + bit_string_len;
    let mut der = Vec::with_capacity(4 + inner_len);
    der.extend_from_slice(&[0x30, 0x82, (inner_len >> 8) as u8, inner_len as u8]);
    der.extend_from_slice(&SEED_PKCS8_HEAD[5..]);
    der.push(oid_last(spec)?);
    der.extend_from_slice(&[
        0x03,
        0x82,
        (bit_string_len >> 8) as u8,
        bit_string_len as u8,
        0x00,
    ]);
    der.extend_from_slice(public_key);
    Ok(der)
}

#[cfg_attr(not(test), allow(dead_code))] // the tests (imports take a whole PKCS#8)
/// The seed-form PKCS#8 DER of `seed` for `spec`.
pub(crate) fn seed_pkcs8(spec: KeySpec, seed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if seed.len() != SEED_LEN {
        return Err(Error::Validation(format!(
            "an ML-DSA seed is {SEED_LEN} bytes, got {}",
            seed.len()
        )));
    }
    let mut der = Zeroizing::new(Vec::with_capacity(SEED_PKCS8_HEAD.len() + 5 + SEED_LEN));
    der.extend_from_slice(&SEED_PKCS8_HEAD);
    der.push(oid_last(spec)?);
    // privateKey OCTET STRING { seed [0] IMPLICIT OCTET STRING (32) }
    der.extend_from_slice(&[0x04, 0x22, 0x80, 0x20]);
    der.extend_from_slice(seed);
    Ok(der)
}

/// The seed of a seed-form PKCS#8 key of `spec`; `None` for any other
/// encoding (or another parameter set).
fn seed_of(spec: KeySpec, der: &[u8]) -> Option<Zeroizing<[u8; SEED_LEN]>> {
    let head = SEED_PKCS8_HEAD.len();
    if der.len() != head + 5 + SEED_LEN
        || der[..head] != SEED_PKCS8_HEAD
        || der[head] != oid_last(spec).ok()?
        || der[head + 1..head + 5] != [0x04, 0x22, 0x80, 0x20]
    {
        return None;
    }
    let mut seed = Zeroizing::new([0u8; SEED_LEN]);
    seed.copy_from_slice(&der[head + 5..]);
    Some(seed)
}

/// Generates a key of `spec` in seed-form PKCS#8 (aws-lc-rs's DRBG).
pub(crate) fn generate(spec: KeySpec) -> Result<Zeroizing<Vec<u8>>> {
    let pair = PqdsaKeyPair::generate(signing_alg(spec)?)
        .map_err(|_| crypto_failure("ML-DSA key generation"))?;
    let doc = pair
        .to_pkcs8v1()
        .map_err(|_| crypto_failure("ML-DSA key encoding"))?;
    let der = Zeroizing::new(doc.as_ref().to_vec());
    // What is stored must be the seed form this module reads back.
    seed_of(spec, &der).ok_or_else(|| crypto_failure("ML-DSA seed-form encoding"))?;
    Ok(der)
}

/// Re-encodes any PKCS#8 ML-DSA key aws-lc-rs reads (seed, expanded with
/// seed, or both) to the seed form; a key without its seed is refused,
/// since the seed is what is stored and exported.
pub(crate) fn normalize_pkcs8(spec: KeySpec, der: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let pair = PqdsaKeyPair::from_pkcs8(signing_alg(spec)?, der)
        .map_err(|_| Error::Validation(format!("the key is not a PKCS#8 {spec} private key")))?;
    let doc = pair.to_pkcs8v1().map_err(|_| {
        Error::Validation(format!(
            "the {spec} private key has no seed; only keys with their seed are accepted"
        ))
    })?;
    let der = Zeroizing::new(doc.as_ref().to_vec());
    seed_of(spec, &der).ok_or_else(|| crypto_failure("ML-DSA seed-form encoding"))?;
    Ok(der)
}

/// An ML-DSA key pair parsed from its stored seed form.
pub(crate) struct MlDsaKey {
    spec: KeySpec,
    pair: PqdsaKeyPair,
    /// The public key, parsed once for verification.
    public: ParsedPublicKey,
    seed: Zeroizing<[u8; SEED_LEN]>,
    /// The RustCrypto key, expanded on the first mu / context /
    /// deterministic operation.
    expanded: OnceLock<Expanded>,
}

/// The RustCrypto signing key of one parameter set (zeroized on drop).
enum Expanded {
    P44(Box<SigningKey<MlDsa44>>),
    P65(Box<SigningKey<MlDsa65>>),
    P87(Box<SigningKey<MlDsa87>>),
}

/// How an ML-DSA signature is made beyond the KMS default (hedged, empty
/// context, message hashed inside): the PKCS#11 `CK_SIGN_ADDITIONAL_CONTEXT`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SignOptions<'a> {
    /// The context string (at most 255 bytes).
    pub context: &'a [u8],
    /// The deterministic variant (rnd = 0) instead of hedged.
    pub deterministic: bool,
}

impl MlDsaKey {
    /// Parses stored seed-form PKCS#8 of `spec`.
    pub(crate) fn parse(spec: KeySpec, der: &[u8]) -> Result<Self> {
        let seed = seed_of(spec, der).ok_or_else(|| malformed_key(spec))?;
        let pair = PqdsaKeyPair::from_seed(signing_alg(spec)?, seed.as_ref())
            .map_err(|_| malformed_key(spec))?;
        let public = ParsedPublicKey::new(verification_alg(spec)?, pair.public_key().as_ref())
            .map_err(|_| malformed_key(spec))?;
        Ok(MlDsaKey {
            spec,
            pair,
            public,
            seed,
            expanded: OnceLock::new(),
        })
    }

    /// The key's spec.
    pub(crate) fn spec(&self) -> KeySpec {
        self.spec
    }

    #[cfg_attr(not(test), allow(dead_code))] // the tests
    /// The raw public key (FIPS 204 pkEncode).
    pub(crate) fn public_key_raw(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// The DER SubjectPublicKeyInfo (id-ml-dsa-44/65/87).
    pub(crate) fn public_key_der(&self) -> Result<Vec<u8>> {
        let der = self
            .pair
            .public_key()
            .as_der()
            .map_err(|_| crypto_failure("ML-DSA public key encoding"))?;
        Ok(der.as_ref().to_vec())
    }

    /// Hedged ML-DSA.Sign of `message` with the empty context (aws-lc-rs).
    pub(crate) fn sign_raw(&self, message: &[u8]) -> Result<Vec<u8>> {
        let mut signature = vec![0u8; self.pair.algorithm().signature_len()];
        let len = self
            .pair
            .sign(message, &mut signature)
            .map_err(|_| crypto_failure("ML-DSA signing"))?;
        signature.truncate(len);
        Ok(signature)
    }

    /// ML-DSA.Verify of `message` with the empty context (aws-lc-rs).
    pub(crate) fn verify_raw(&self, message: &[u8], signature: &[u8]) -> Result<bool> {
        Ok(self.public.verify_sig(message, signature).is_ok())
    }

    fn expanded(&self) -> &Expanded {
        self.expanded.get_or_init(|| {
            let seed = Array::from(*self.seed);
            match self.spec {
                KeySpec::MlDsa44 => Expanded::P44(Box::new(SigningKey::from_seed(&seed))),
                KeySpec::MlDsa65 => Expanded::P65(Box::new(SigningKey::from_seed(&seed))),
                _ => Expanded::P87(Box::new(SigningKey::from_seed(&seed))),
            }
        })
    }

    /// Signs a caller's 64-byte mu (hedged), as KMS `EXTERNAL_MU`.
    pub(crate) fn sign_mu(&self, mu: &[u8]) -> Result<Vec<u8>> {
        let mu = mu_array(mu)?;
        match self.expanded() {
            Expanded::P44(k) => sign_mu_with(k, &mu),
            Expanded::P65(k) => sign_mu_with(k, &mu),
            Expanded::P87(k) => sign_mu_with(k, &mu),
        }
    }

    /// Verifies a signature of a caller's 64-byte mu.
    pub(crate) fn verify_mu(&self, mu: &[u8], signature: &[u8]) -> Result<bool> {
        let mu = mu_array(mu)?;
        Ok(match self.expanded() {
            Expanded::P44(k) => verify_mu_with(k, &mu, signature),
            Expanded::P65(k) => verify_mu_with(k, &mu, signature),
            Expanded::P87(k) => verify_mu_with(k, &mu, signature),
        })
    }

    /// ML-DSA.Sign with a context string, hedged or deterministic (the
    /// empty context and hedged is [`Self::sign_raw`]'s signature scheme).
    pub(crate) fn sign_with(&self, message: &[u8], options: SignOptions<'_>) -> Result<Vec<u8>> {
        check_context(options.context)?;
        if options.context.is_empty() && !options.deterministic {
            return self.sign_raw(message);
        }
        match self.expanded() {
            Expanded::P44(k) => sign_ctx_with(k, message, options),
            Expanded::P65(k) => sign_ctx_with(k, message, options),
            Expanded::P87(k) => sign_ctx_with(k, message, options),
        }
    }

    /// ML-DSA.Verify with a context string.
    pub(crate) fn verify_with(
        &self,
        message: &[u8],
        context: &[u8],
        signature: &[u8],
    ) -> Result<bool> {
        check_context(context)?;
        if context.is_empty() {
            return self.verify_raw(message, signature);
        }
        Ok(match self.expanded() {
            Expanded::P44(k) => verify_ctx_with(k, message, context, signature),
            Expanded::P65(k) => verify_ctx_with(k, message, context, signature),
            Expanded::P87(k) => verify_ctx_with(k, message, context, signature),
        })
    }
}

impl MlDsaKey {
    /// ML-DSA.Sign_internal of a caller-built M' (FIPS 204 Algorithm 7;
    /// HashML-DSA's `0x01 || len(ctx) || ctx || OID || PH(M)`), hedged or
    /// deterministic (rnd = 0).
    pub(crate) fn sign_internal(&self, m_prime: &[u8], deterministic: bool) -> Result<Vec<u8>> {
        let mut rnd = ml_dsa::B32::default();
        if !deterministic {
            aws_lc_rs::rand::fill(&mut rnd).map_err(|_| crypto_failure("ML-DSA randomness"))?;
        }
        Ok(match self.expanded() {
            Expanded::P44(k) => k
                .expanded_key()
                .sign_internal(&[m_prime], &rnd)
                .encode()
                .to_vec(),
            Expanded::P65(k) => k
                .expanded_key()
                .sign_internal(&[m_prime], &rnd)
                .encode()
                .to_vec(),
            Expanded::P87(k) => k
                .expanded_key()
                .sign_internal(&[m_prime], &rnd)
                .encode()
                .to_vec(),
        })
    }

    /// ML-DSA.Verify_internal of a caller-built M'.
    pub(crate) fn verify_internal(&self, m_prime: &[u8], signature: &[u8]) -> bool {
        fn with<P: MlDsaParams>(key: &SigningKey<P>, m: &[u8], signature: &[u8]) -> bool {
            let Ok(signature) = ml_dsa::Signature::<P>::try_from(signature) else {
                return false;
            };
            verifying_key(key).verify_internal(m, &signature)
        }
        match self.expanded() {
            Expanded::P44(k) => with(k, m_prime, signature),
            Expanded::P65(k) => with(k, m_prime, signature),
            Expanded::P87(k) => with(k, m_prime, signature),
        }
    }
}

/// ML-DSA.Verify_internal of a caller-built M' with a raw public key the
/// store does not holds (PKCS#11 public key objects); `false` for a
/// malformed key or signature.
pub(crate) fn verify_internal_with_public_key(
    spec: KeySpec,
    public_key: &[u8],
    m_prime: &[u8],
    signature: &[u8],
) -> Result<bool> {
    fn with<P: MlDsaParams>(public_key: &[u8], m: &[u8], signature: &[u8]) -> bool {
        let Ok(encoded) = ml_dsa::EncodedVerifyingKey::<P>::try_from(public_key) else {
            return false;
        };
        let Ok(signature) = ml_dsa::Signature::<P>::try_from(signature) else {
            return false;
        };
        VerifyingKey::<P>::decode(&encoded).verify_internal(m, &signature)
    }
    Ok(match spec {
        KeySpec::MlDsa44 => with::<MlDsa44>(public_key, m_prime, signature),
        KeySpec::MlDsa65 => with::<MlDsa65>(public_key, m_prime, signature),
        KeySpec::MlDsa87 => with::<MlDsa87>(public_key, m_prime, signature),
        other => {
            return Err(Error::Internal(format!(
                "{other} is not an ML-DSA key spec"
            )))
        }
    })
}

/// `ValidationException` for a context string over 255 bytes.
fn check_context(context: &[u8]) -> Result<()> {
    if context.len() > MAX_CONTEXT_LEN {
        return Err(Error::Validation(format!(
            "an ML-DSA context string is at most {MAX_CONTEXT_LEN} bytes, got {}",
            context.len()
        )));
    }
    Ok(())
}

type Mu = Array<u8, ml_dsa::common::typenum::U64>;

fn mu_array(mu: &[u8]) -> Result<Mu> {
    Mu::try_from(mu).map_err(|_| {
        Error::Validation(format!(
            "an EXTERNAL_MU message must be {MU_LEN} bytes, got {}",
            mu.len()
        ))
    })
}

/// aws-lc-rs's DRBG as the random source of hedged RustCrypto signing.
struct LcRng;

impl ml_dsa::signature::rand_core::TryRng for LcRng {
    type Error = aws_lc_rs::error::Unspecified;

    fn try_next_u32(&mut self) -> std::result::Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        aws_lc_rs::rand::fill(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> std::result::Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        aws_lc_rs::rand::fill(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> std::result::Result<(), Self::Error> {
        aws_lc_rs::rand::fill(dst)
    }
}

impl ml_dsa::signature::rand_core::TryCryptoRng for LcRng {}

fn sign_mu_with<P: MlDsaParams>(key: &SigningKey<P>, mu: &Mu) -> Result<Vec<u8>> {
    let signature = key
        .expanded_key()
        .sign_mu_randomized(mu, &mut LcRng)
        .map_err(|_| crypto_failure("ML-DSA signing"))?;
    Ok(signature.encode().to_vec())
}

fn verify_mu_with<P: MlDsaParams>(key: &SigningKey<P>, mu: &Mu, signature: &[u8]) -> bool {
    let Ok(signature) = ml_dsa::Signature::<P>::try_from(signature) else {
        return false;
    };
    verifying_key(key).verify_mu(mu, &signature)
}

fn sign_ctx_with<P: MlDsaParams>(
    key: &SigningKey<P>,
    message: &[u8],
    options: SignOptions<'_>,
) -> Result<Vec<u8>> {
    let expanded = key.expanded_key();
    let signature = if options.deterministic {
        expanded.sign_deterministic(message, options.context)
    } else {
        expanded.sign_randomized(message, options.context, &mut LcRng)
    }
    .map_err(|_| crypto_failure("ML-DSA signing"))?;
    Ok(signature.encode().to_vec())
}

fn verify_ctx_with<P: MlDsaParams>(
    key: &SigningKey<P>,
    message: &[u8],
    context: &[u8],
    signature: &[u8],
) -> bool {
    let Ok(signature) = ml_dsa::Signature::<P>::try_from(signature) else {
        return false;
    };
    verifying_key(key).verify_with_context(message, context, &signature)
}

fn verifying_key<P: MlDsaParams>(key: &SigningKey<P>) -> VerifyingKey<P> {
    use ml_dsa::Keypair as _;
    key.verifying_key()
}

/// Verifies with a raw public key the store does not hold (PKCS#11 public
/// key objects, the vector tests): `mu` selects an external mu, otherwise
/// `message` is signed under `context`. `Ok(false)` for any signature or
/// public key that does not verify.
pub(crate) fn verify_with_public_key(
    spec: KeySpec,
    public_key: &[u8],
    message: &[u8],
    context: &[u8],
    external_mu: bool,
    signature: &[u8],
) -> Result<bool> {
    check_context(context)?;
    if !external_mu && context.is_empty() {
        return Ok(UnparsedPublicKey::new(verification_alg(spec)?, public_key)
            .verify(message, signature)
            .is_ok());
    }
    fn with<P: MlDsaParams>(
        public_key: &[u8],
        message: &[u8],
        context: &[u8],
        external_mu: bool,
        signature: &[u8],
    ) -> Result<bool> {
        let Ok(encoded) = ml_dsa::EncodedVerifyingKey::<P>::try_from(public_key) else {
            return Ok(false);
        };
        let key = VerifyingKey::<P>::decode(&encoded);
        let Ok(signature) = ml_dsa::Signature::<P>::try_from(signature) else {
            return Ok(false);
        };
        if external_mu {
            return Ok(key.verify_mu(&mu_array(message)?, &signature));
        }
        Ok(key.verify_with_context(message, context, &signature))
    }
    match spec {
        KeySpec::MlDsa44 => with::<MlDsa44>(public_key, message, context, external_mu, signature),
        KeySpec::MlDsa65 => with::<MlDsa65>(public_key, message, context, external_mu, signature),
        KeySpec::MlDsa87 => with::<MlDsa87>(public_key, message, context, external_mu, signature),
        other => Err(Error::Internal(format!(
            "{other} is not an ML-DSA key spec"
        ))),
    }
}
