//! Session key pairs (CKA_TOKEN false): generated in memory, living in the
//! caller's [`SessionKeys`] table, and copied to a token as a new KMS key
//! with the same material (C_CopyObject), which is how keystore libraries
//! store a pair they generated.

use crate::error::{Error, Result};
use crate::hsm::Hsm;
use crate::mechanisms::RsaPairId;
use crate::mechanisms::SecretKeyRef;
use crate::outputs::CreateKeyRequest;
use crate::token::session_keys::SessionPair;
use crate::token::{PairUsages, SessionKeys};
use crate::types::{KeyMetadata, KeySpec, Origin};

impl Hsm {
    /// Generates a session key pair of `spec` with `usages` in `keys`;
    /// returns its id and DER SubjectPublicKeyInfo.
    pub fn p11_generate_session_pair(
        &self,
        keys: &SessionKeys,
        spec: KeySpec,
        usages: PairUsages,
    ) -> Result<(u64, Vec<u8>)> {
        if !spec.has_public_key() {
            return Err(Error::validation("not an asymmetric key spec"));
        }
        if !spec.is_ml_kem() {
            usages.check(spec)?;
        }
        let pkcs8 = crate::asymmetric::generate(spec)?;
        let public = crate::asymmetric::public_key_der(spec, &pkcs8)?;
        let material = std::sync::Arc::new(crate::cache::VersionMaterial::new(pkcs8));
        let id = keys.insert_pair(SessionPair {
            spec,
            material,
            usages,
        })?;
        Ok((id, public))
    }

    /// Generates an RSA key pair of `bits` (1024 to 8192 bits; sizes other
    /// than 2048, 3072, 4096 and 8192 are RSA_1024 or RSA_OTHER_SIZE keys,
    /// see [`crate::asymmetric::generate_rsa`]): a session pair in `keys`
    /// when `token` is `None` (its id), else a token key pair as
    /// [`Hsm::p11_create_key_pair`] makes one (its key id). Returns the id
    /// and the DER SubjectPublicKeyInfo.
    pub fn p11_generate_rsa_pair(
        &self,
        keys: &SessionKeys,
        token: Option<&str>,
        bits: u32,
        usages: PairUsages,
        description: &str,
    ) -> Result<(RsaPairId, Vec<u8>)> {
        let (spec, pkcs8) = crate::asymmetric::generate_rsa(bits)?;
        usages.check(spec)?;
        let Some(token) = token else {
            let public = crate::asymmetric::public_key_der(spec, &pkcs8)?;
            let material = std::sync::Arc::new(crate::cache::VersionMaterial::new(pkcs8));
            let id = keys.insert_pair(SessionPair {
                spec,
                material,
                usages,
            })?;
            return Ok((RsaPairId::Session(id), public));
        };
        let usage = usages.primary();
        let request = CreateKeyRequest {
            description: description.to_string(),
            key_spec: Some(spec),
            key_usage: Some(usage),
            token: Some(token.to_string()),
            ..Default::default()
        };
        let tags = usages.pair_tags(usage);
        let meta = self.create_key_with_material(request, Origin::AwsKms, Some(&pkcs8), &tags)?;
        let public = self.get_public_key(&meta.key_id)?.public_key;
        Ok((RsaPairId::Token(meta), public))
    }

    /// Copies a session key pair to the token namespace `token`: a new KMS
    /// key (origin EXTERNAL) with the same private key and usages.
    pub fn p11_copy_pair_to_token(
        &self,
        keys: &SessionKeys,
        source: SecretKeyRef<'_>,
        token: &str,
        description: &str,
    ) -> Result<KeyMetadata> {
        let SecretKeyRef::Session(id) = source else {
            return Err(Error::validation("only a session key pair is copied here"));
        };
        let (spec, material, usages) = keys
            .lock_pairs()
            .get(&id)
            .map(|p| (p.spec, std::sync::Arc::clone(&p.material), p.usages))
            .ok_or_else(|| Error::NotFound("session key pair".into()))?;
        let usage = if spec.is_ml_kem() {
            crate::types::KeyUsage::EncapsulateDecapsulate
        } else {
            usages.primary()
        };
        let request = CreateKeyRequest {
            description: description.to_string(),
            key_spec: Some(spec),
            key_usage: Some(usage),
            token: Some(token.to_string()),
            ..Default::default()
        };
        let tags = usages.pair_tags(usage);
        self.create_key_with_material(request, Origin::External, Some(&material), &tags)
    }

    /// The DER SubjectPublicKeyInfo and spec of a session key pair.
    pub fn p11_session_pair_public(
        &self,
        keys: &SessionKeys,
        id: u64,
    ) -> Result<(KeySpec, Vec<u8>)> {
        let (spec, material) = keys
            .lock_pairs()
            .get(&id)
            .map(|p| (p.spec, std::sync::Arc::clone(&p.material)))
            .ok_or_else(|| Error::NotFound("session key pair".into()))?;
        Ok((spec, crate::asymmetric::public_key_der(spec, &material)?))
    }
}
