//! CKM_RSA_PKCS encryption and decryption (RSAES-PKCS1-v1_5) with a token
//! key pair of usage ENCRYPT_DECRYPT.

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::hsm::{require_enabled, Hsm};
use crate::mechanisms::SecretKeyRef;
use crate::token::SessionKeys;
use crate::types::KeyUsage;

impl Hsm {
    /// CKM_RSA_PKCS encryption (0 to k-11 bytes; more is a
    /// `ValidationException`) or decryption (any failure is one
    /// `InvalidCiphertextException`) with an Enabled RSA key of usage
    /// ENCRYPT_DECRYPT: a signing key never decrypts, so a decryption
    /// request cannot become a signature.
    pub fn p11_rsa_pkcs1_crypt(
        &self,
        keys: &SessionKeys,
        key: SecretKeyRef<'_>,
        encrypt: bool,
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let refused = |what: String| {
            Error::InvalidKeyUsage(format!("{what} is not an RSA key that may decrypt"))
        };
        match key {
            SecretKeyRef::Stored(id) => {
                let state = self.read_state();
                let record = state.key(id)?;
                require_enabled(&record)?;
                if !record.spec.is_rsa() || !record.p11_allows(KeyUsage::EncryptDecrypt) {
                    return Err(refused(record.arn()));
                }
            }
            SecretKeyRef::Session(id) => {
                let ok = keys
                    .lock_pairs()
                    .get(&id)
                    .ok_or_else(|| Error::NotFound("session key pair".into()))
                    .map(|p| p.spec.is_rsa() && p.usages.decrypt)?;
                if !ok {
                    return Err(refused("the session key pair".into()));
                }
            }
        }
        self.with_private(keys, key, |spec, material| {
            if encrypt {
                crate::asymmetric::rsa_pkcs1_encrypt(spec, material, data).map(Zeroizing::new)
            } else {
                crate::asymmetric::rsa_pkcs1_decrypt(spec, material, data)
            }
        })
    }
}
