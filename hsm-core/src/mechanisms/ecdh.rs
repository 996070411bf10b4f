//! CKM_ECDH1_DERIVE and CKM_ECDH1_COFACTOR_DERIVE (the same on the NIST
//! curves, whose cofactor is 1, and on X25519, whose scalars are already
//! multiples of its cofactor) with a key pair that may agree keys: the
//! shared secret Z (AWS-LC) goes through the KDF and becomes a new secret
//! key made here, so neither Z nor the derived value leaves the core
//! (unless the new key is made readable).

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::hsm::{require_enabled, Hsm};
use crate::mechanisms::SecretKeyRef;
use crate::token::{CopiedKey, SessionKeys, USAGES_TAG};
use crate::types::KeySpec;

/// The KDF of CK_ECDH1_DERIVE_PARAMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcdhKdf {
    /// CKD_NULL: the key is Z (its leftmost bytes); no shared data.
    Null,
    /// CKD_SHA1_KDF .. CKD_SHA512_KDF: the ANSI X9.63 KDF with this
    /// digest output length (20, 28, 32, 48, 64).
    X963(usize),
}

/// The new key a derivation makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DerivedKeySpec<'a> {
    /// The token namespace of a token key; `None`: a session key.
    pub token: Option<&'a str>,
    /// An AES key (16, 24 or 32 bytes), else a generic secret.
    pub aes: bool,
    /// Its length in bytes.
    pub len: usize,
    /// CKA_EXTRACTABLE.
    pub extractable: bool,
    /// CKA_SENSITIVE false (with CKA_EXTRACTABLE true): readable.
    pub readable: bool,
}

fn digest_alg(len: usize) -> Result<&'static aws_lc_rs::digest::Algorithm> {
    use aws_lc_rs::digest as d;
    Ok(match len {
        20 => &d::SHA1_FOR_LEGACY_USE_ONLY,
        28 => &d::SHA224,
        32 => &d::SHA256,
        48 => &d::SHA384,
        64 => &d::SHA512,
        _ => return Err(Error::validation("unsupported KDF")),
    })
}

/// ANSI X9.63 KDF: Hash(Z || counter || sharedInfo) for counter 1, 2, ...
fn x963(hash_len: usize, z: &[u8], shared: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>> {
    let alg = digest_alg(hash_len)?;
    let mut out = Zeroizing::new(Vec::with_capacity(len + hash_len));
    let mut counter: u32 = 1;
    while out.len() < len {
        let mut ctx = aws_lc_rs::digest::Context::new(alg);
        ctx.update(z);
        ctx.update(&counter.to_be_bytes());
        ctx.update(shared);
        out.extend_from_slice(ctx.finish().as_ref());
        counter += 1;
    }
    out.truncate(len);
    Ok(out)
}

fn agreement_alg(spec: KeySpec) -> Result<&'static aws_lc_rs::agreement::Algorithm> {
    use aws_lc_rs::agreement as a;
    Ok(match spec {
        KeySpec::EccNistP256 => &a::ECDH_P256,
        KeySpec::EccNistP384 => &a::ECDH_P384,
        KeySpec::EccNistP521 => &a::ECDH_P521,
        KeySpec::EccX25519 => &a::X25519,
        _ => {
            return Err(Error::InvalidKeyUsage(
                "not a NIST curve or X25519 key".into(),
            ))
        }
    })
}

impl Hsm {
    /// Derives a new secret key by ECDH of a key pair that may agree keys
    /// (made with CKA_DERIVE) with a peer's uncompressed public point.
    /// A bad point is a ValidationException; a key that may not derive,
    /// InvalidKeyUsage.
    pub fn p11_ecdh_derive(
        &self,
        keys: &SessionKeys,
        key: SecretKeyRef<'_>,
        peer_point: &[u8],
        kdf: EcdhKdf,
        shared: &[u8],
        new: DerivedKeySpec<'_>,
    ) -> Result<CopiedKey> {
        let may = match key {
            SecretKeyRef::Stored(id) => {
                let state = self.read_state();
                let record = state.key(id)?;
                require_enabled(&record)?;
                record
                    .tags
                    .get(USAGES_TAG)
                    .and_then(|t| crate::token::PairUsages::parse(t).ok())
                    .is_some_and(|u| u.derive)
            }
            SecretKeyRef::Session(id) => {
                keys.lock_pairs()
                    .get(&id)
                    .ok_or_else(|| Error::NotFound("session key pair".into()))?
                    .usages
                    .derive
            }
        };
        if !may {
            return Err(Error::InvalidKeyUsage("the key may not derive".into()));
        }
        if kdf == EcdhKdf::Null && !shared.is_empty() {
            return Err(Error::validation("CKD_NULL takes no shared data"));
        }
        if new.len == 0 || new.len > 512 {
            return Err(Error::validation("a derived key is 1 to 512 bytes"));
        }
        let value = self.with_private(keys, key, |spec, material| {
            let alg = agreement_alg(spec)?;
            let private = if spec == KeySpec::EccX25519 {
                crate::asymmetric::x25519::parse(material)?
            } else {
                aws_lc_rs::agreement::PrivateKey::from_private_key_der(alg, material)
                    .map_err(|_| Error::Internal("stored EC key does not parse".into()))?
            };
            let peer = aws_lc_rs::agreement::UnparsedPublicKey::new(alg, peer_point);
            aws_lc_rs::agreement::agree(
                &private,
                peer,
                Error::validation("the peer's public point is not on the key's curve"),
                |z| match kdf {
                    EcdhKdf::Null if new.len <= z.len() => {
                        Ok(Zeroizing::new(z[..new.len].to_vec()))
                    }
                    EcdhKdf::Null => Err(Error::validation("key longer than the shared secret")),
                    EcdhKdf::X963(h) => x963(h, z, shared, new.len),
                },
            )
        })?;
        self.p11_store_derived(keys, &value, new)
    }

    /// Keeps derived key material as a new session or token key.
    pub(crate) fn p11_store_derived(
        &self,
        keys: &SessionKeys,
        value: &[u8],
        new: DerivedKeySpec<'_>,
    ) -> Result<CopiedKey> {
        if new.aes {
            crate::mechanisms::check_aes_len(value.len())?;
        }
        match new.token {
            None => Ok(CopiedKey::Session(keys.insert_with(
                Zeroizing::new(value.to_vec()),
                new.extractable,
                new.readable,
            )?)),
            Some(label) if new.readable => Ok(CopiedKey::Stored(self.p11_create_readable_secret(
                label,
                new.aes,
                value.len(),
                Some(value),
                "PKCS#11 derived key",
            )?)),
            Some(label) => Ok(CopiedKey::Stored(self.p11_import_secret(
                label,
                new.aes,
                value,
                "PKCS#11 derived key",
                new.extractable,
            )?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ANSI X9.63 KDF with SHA-256, from NIST CAVS 12.0 (ansx963_2001.rsp,
    /// [SHA-256] [shared secret length = 192] [SharedInfo length = 0]
    /// [key data length = 128], COUNT = 0).
    #[test]
    fn x963_kdf_known_answer() {
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let z = hex("96c05619d56c328ab95fe84b18264b08725b85e33fd34f08");
        let key = x963(32, &z, &[], 16).unwrap();
        assert_eq!(
            key.as_slice(),
            hex("443024c3dae66b95e6f5670601558f71").as_slice()
        );
    }
}
