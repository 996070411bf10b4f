//! Ed25519ctx (RFC 8032 section 5.1: phFlag 0 with a context of 1 to 255
//! bytes), PKCS#11's CKM_EDDSA with CK_EDDSA_PARAMS{phFlag = false,
//! context}. No safe Rust API in the tree has it (aws-lc-rs signs pure
//! Ed25519 only, ed25519-dalek has a context for Ed25519ph only), so this
//! module calls AWS-LC's own `ED25519ctx_sign` / `ED25519ctx_verify`
//! through aws-lc-sys, the bindings aws-lc-rs itself is built on (same
//! library, same version, linked once).
//!
//! The second and last module of hsm-core with `unsafe` code (the other is
//! [`crate::secmem`]): exactly two foreign calls, each preceded by the
//! checks that make it sound (every pointer comes from a Rust slice or
//! array of the length the C prototype requires; the context length is
//! checked to be 1..=255, AWS-LC's and RFC 8032's rule, before the call).
//! The 64-byte AWS-LC private key (seed || public key) lives in a
//! [`Zeroizing`] buffer wiped when the call returns.
#![allow(unsafe_code)]

use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::types::KeySpec;

/// Largest Ed25519ctx context, in bytes (RFC 8032: at most 255).
pub const MAX_CONTEXT_LEN: usize = 255;

/// Largest message signed or verified in one call (the same bound as
/// pure CKM_EDDSA: the whole message is held in memory).
const MAX_MESSAGE_LEN: usize = 64 << 20;

/// Ed25519 signatures are 64 bytes.
const SIGNATURE_LEN: usize = 64;

fn check(spec: KeySpec, context: &[u8], message: &[u8]) -> Result<()> {
    if spec != KeySpec::EccEd25519 {
        return Err(Error::validation("Ed25519ctx needs an Ed25519 key"));
    }
    if context.is_empty() || context.len() > MAX_CONTEXT_LEN {
        return Err(Error::validation(
            "an Ed25519ctx context is 1 to 255 bytes (RFC 8032)",
        ));
    }
    if message.len() > MAX_MESSAGE_LEN {
        return Err(Error::validation("Ed25519ctx message too long"));
    }
    Ok(())
}

fn pair(pkcs8: &[u8]) -> Result<Ed25519KeyPair> {
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
        .map_err(|_| Error::Internal("stored Ed25519 key does not parse".into()))
}

fn public_key(pair: &Ed25519KeyPair) -> Result<[u8; 32]> {
    pair.public_key()
        .as_ref()
        .try_into()
        .map_err(|_| Error::Internal("Ed25519 public key of another length".into()))
}

/// AWS-LC's private key form: the RFC 8032 seed followed by the public key.
fn expanded_private(pair: &Ed25519KeyPair) -> Result<Zeroizing<[u8; 64]>> {
    let seed = pair
        .seed()
        .and_then(|s| s.as_be_bytes())
        .map_err(|_| Error::Internal("no Ed25519 seed".into()))?;
    let seed = seed.as_ref();
    if seed.len() != 32 {
        return Err(Error::Internal("Ed25519 seed of another length".into()));
    }
    let mut key = Zeroizing::new([0u8; 64]);
    key[..32].copy_from_slice(seed);
    key[32..].copy_from_slice(&public_key(pair)?);
    Ok(key)
}

/// Signs `message` with the stored Ed25519 key (PKCS#8) as Ed25519ctx
/// under `context` (1 to 255 bytes).
pub(crate) fn sign(spec: KeySpec, pkcs8: &[u8], context: &[u8], message: &[u8]) -> Result<Vec<u8>> {
    check(spec, context, message)?;
    let key = expanded_private(&pair(pkcs8)?)?;
    let mut signature = [0u8; SIGNATURE_LEN];
    // SAFETY: `signature` is 64 writable bytes (ED25519_SIGNATURE_LEN);
    // `message` and `context` are live slices whose pointers and lengths
    // are passed together (an empty message's dangling pointer is never
    // read: length 0); `key` is 64 readable bytes
    // (ED25519_PRIVATE_KEY_LEN); the context length is 1..=255 (checked
    // above). AWS-LC keeps no pointer past the call.
    let ok = unsafe {
        aws_lc_sys::ED25519ctx_sign(
            signature.as_mut_ptr(),
            message.as_ptr(),
            message.len(),
            key.as_ptr(),
            context.as_ptr(),
            context.len(),
        )
    };
    if ok != 1 {
        return Err(Error::Internal("Ed25519ctx signing failed".into()));
    }
    Ok(signature.to_vec())
}

/// Checks an Ed25519ctx signature by the stored key's public half;
/// `Ok(false)` when it does not verify (wrong context, message or
/// signature, or a signature that is not 64 bytes).
pub(crate) fn verify(
    spec: KeySpec,
    pkcs8: &[u8],
    context: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<bool> {
    check(spec, context, message)?;
    verify_public(&public_key(&pair(pkcs8)?)?, context, message, signature)
}

/// Checks an Ed25519ctx signature by a raw 32-byte Ed25519 public key
/// (one imported into PKCS#11 as a public key object); `Ok(false)` when it
/// does not verify. A public key that is not 32 bytes, or a context that
/// is not 1 to 255 bytes, is a `ValidationException`.
pub fn verify_public(
    public_key: &[u8],
    context: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<bool> {
    check(KeySpec::EccEd25519, context, message)?;
    let public_key: &[u8; 32] = public_key
        .try_into()
        .map_err(|_| Error::validation("an Ed25519 public key is 32 bytes"))?;
    let Ok(signature) = <&[u8; SIGNATURE_LEN]>::try_from(signature) else {
        return Ok(false);
    };
    // SAFETY: `signature` is 64 readable bytes and `public_key` 32
    // (ED25519_SIGNATURE_LEN, ED25519_PUBLIC_KEY_LEN, enforced by their
    // array types); `message` and `context` are live slices passed with
    // their lengths; the context length is 1..=255 (checked above).
    // AWS-LC only reads them and keeps no pointer past the call.
    let ok = unsafe {
        aws_lc_sys::ED25519ctx_verify(
            message.as_ptr(),
            message.len(),
            signature.as_ptr(),
            public_key.as_ptr(),
            context.as_ptr(),
            context.len(),
        )
    };
    Ok(ok == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn pkcs8(seed: &str) -> Vec<u8> {
        [hex("302e020100300506032b657004220420"), hex(seed)].concat()
    }

    /// RFC 8032 section 7.2: the four Ed25519ctx vectors (foo, bar, foo2,
    /// foo3): secret key, public key, message, context, signature.
    const RFC8032_7_2: [(&str, &str, &str, &str, &str); 4] = [
        (
            "0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6",
            "dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292",
            "f726936d19c800494e3fdaff20b276a8",
            "666f6f",
            "55a4cc2f70a54e04288c5f4cd1e45a7bb520b36292911876cada7323198dd87a
             8b36950b95130022907a7fb7c4e9b2d5f6cca685a587b4b21f4b888e4e7edb0d",
        ),
        (
            "0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6",
            "dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292",
            "f726936d19c800494e3fdaff20b276a8",
            "626172",
            "fc60d5872fc46b3aa69f8b5b4351d5808f92bcc044606db097abab6dbcb1aee3
             216c48e8b3b66431b5b186d1d28f8ee15a5ca2df6668346291c2043d4eb3e90d",
        ),
        (
            "0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6",
            "dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292",
            "508e9e6882b979fea900f62adceaca35",
            "666f6f",
            "8b70c1cc8310e1de20ac53ce28ae6e7207f33c3295e03bb5c0732a1d20dc6490
             8922a8b052cf99b7c4fe107a5abb5b2c4085ae75890d02df26269d8945f84b0b",
        ),
        (
            "ab9c2853ce297ddab85c993b3ae14bcad39b2c682beabc27d6d4eb20711d6560",
            "0f1d1274943b91415889152e893d80e93275a1fc0b65fd71b4b0dda10ad7d772",
            "f726936d19c800494e3fdaff20b276a8",
            "666f6f",
            "21655b5f1aa965996b3f97b3c849eafba922a0a62992f73b3d1b73106a84ad85
             e9b86a7b6005ea868337ff2d20a7f5fbd4cd10b0be49a68da2b2e0dc0ad8960f",
        ),
    ];

    #[test]
    fn rfc8032_ed25519ctx_vectors() {
        let spec = KeySpec::EccEd25519;
        for (secret, public, message, context, signature) in RFC8032_7_2 {
            let key = pkcs8(secret);
            let (public, message, context) = (hex(public), hex(message), hex(context));
            let want = hex(signature);
            assert_eq!(public_key(&pair(&key).unwrap()).unwrap().to_vec(), public);
            assert_eq!(sign(spec, &key, &context, &message).unwrap(), want);
            assert!(verify(spec, &key, &context, &message, &want).unwrap());
            assert!(verify_public(&public, &context, &message, &want).unwrap());
            // Another context, message or signature does not verify.
            assert!(!verify(spec, &key, b"fo0", &message, &want).unwrap());
            assert!(!verify(spec, &key, &context, b"other", &want).unwrap());
            let mut bad = want.clone();
            bad[10] ^= 1;
            assert!(!verify(spec, &key, &context, &message, &bad).unwrap());
            assert!(!verify(spec, &key, &context, &message, &want[..63]).unwrap());
        }
    }

    #[test]
    fn context_lengths_and_key_types() {
        let key = pkcs8(RFC8032_7_2[0].0);
        let spec = KeySpec::EccEd25519;
        // RFC 8032: Ed25519ctx with an empty context is not Ed25519ctx.
        assert!(sign(spec, &key, b"", b"m").is_err());
        assert!(verify(spec, &key, b"", b"m", &[0; 64]).is_err());
        let longest = [7u8; 255];
        let signature = sign(spec, &key, &longest, b"m").unwrap();
        assert!(verify(spec, &key, &longest, b"m", &signature).unwrap());
        assert!(sign(spec, &key, &[7u8; 256], b"m").is_err());
        // An empty message is fine.
        let empty = sign(spec, &key, b"c", b"").unwrap();
        assert!(verify(spec, &key, b"c", b"", &empty).unwrap());
        // Another key type is refused, a short public key too.
        assert!(sign(KeySpec::EccNistP256, &key, b"c", b"m").is_err());
        assert!(verify_public(&[0; 31], b"c", b"m", &empty).is_err());
    }
}
