//! CKM_EDDSA with CK_EDDSA_PARAMS phFlag true: Ed25519ph (RFC 8032
//! HashEdDSA, SHA-512 of the message, with an optional context of up to
//! 255 bytes) by ed25519-dalek on the key's stored seed (aws-lc-rs signs
//! pure Ed25519 only). Ed25519ctx (phFlag false with a context) is
//! [`crate::ed25519ctx`]'s, on input framed the same way.

use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::signature::Ed25519KeyPair;
use ed25519_dalek::{Signature, SigningKey};
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::types::KeySpec;

/// Splits the module's input, `len(ctx) || ctx || message` (Ed25519ph's
/// and Ed25519ctx's framing).
pub(super) fn split(input: &[u8]) -> Result<(&[u8], &[u8])> {
    let (&n, rest) = input
        .split_first()
        .ok_or_else(|| Error::validation("Ed25519ph input is empty"))?;
    if rest.len() < n as usize {
        return Err(Error::validation("Ed25519ph context cut short"));
    }
    Ok(rest.split_at(n as usize))
}

fn key(spec: KeySpec, pkcs8: &[u8]) -> Result<SigningKey> {
    if spec != KeySpec::EccEd25519 {
        return Err(Error::validation("Ed25519ph needs an Ed25519 key"));
    }
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
        .map_err(|_| Error::Internal("stored Ed25519 key does not parse".into()))?;
    let seed = pair
        .seed()
        .and_then(|s| s.as_be_bytes())
        .map_err(|_| Error::Internal("no Ed25519 seed".into()))?;
    let bytes: Zeroizing<[u8; 32]> = Zeroizing::new(
        seed.as_ref()
            .try_into()
            .map_err(|_| Error::Internal("Ed25519 seed of another length".into()))?,
    );
    Ok(SigningKey::from_bytes(&bytes))
}

/// Signs `len(ctx) || ctx || message` as Ed25519ph.
pub(crate) fn sign(spec: KeySpec, pkcs8: &[u8], input: &[u8]) -> Result<Vec<u8>> {
    let (ctx, message) = split(input)?;
    let key = key(spec, pkcs8)?;
    let signature = key
        .sign_prehashed(Sha512::new().chain_update(message), Some(ctx))
        .map_err(|_| Error::validation("Ed25519ph signing failed"))?;
    Ok(signature.to_bytes().to_vec())
}

/// Checks an Ed25519ph signature; `Ok(false)` when it does not verify.
pub(crate) fn verify(spec: KeySpec, pkcs8: &[u8], input: &[u8], signature: &[u8]) -> Result<bool> {
    let (ctx, message) = split(input)?;
    let Ok(signature) = Signature::from_slice(signature) else {
        return Ok(false);
    };
    let key = key(spec, pkcs8)?;
    Ok(key
        .verifying_key()
        .verify_prehashed(Sha512::new().chain_update(message), Some(ctx), &signature)
        .is_ok())
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

    /// RFC 8032 section 7.3, the Ed25519ph test vector (message "abc",
    /// no context), with the seed wrapped as a PKCS#8 v1 key.
    #[test]
    fn rfc8032_ed25519ph() {
        let seed = hex("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42");
        let pkcs8 = [hex("302e020100300506032b657004220420"), seed.clone()].concat();
        let want = hex(
            "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41
             31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406",
        );
        let input = [&[0u8][..], b"abc"].concat();
        assert_eq!(sign(KeySpec::EccEd25519, &pkcs8, &input).unwrap(), want);
        assert!(verify(KeySpec::EccEd25519, &pkcs8, &input, &want).unwrap());
        let other = [&[0u8][..], b"abd"].concat();
        assert!(!verify(KeySpec::EccEd25519, &pkcs8, &other, &want).unwrap());
        // A context changes the signature.
        let ctx = [&[3u8][..], b"foo", b"abc"].concat();
        assert_ne!(sign(KeySpec::EccEd25519, &pkcs8, &ctx).unwrap(), want);
        assert!(sign(KeySpec::EccEd25519, &pkcs8, &[5, 1]).is_err());
    }
}
