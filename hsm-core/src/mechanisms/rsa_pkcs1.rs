//! CKM_RSA_PKCS encryption and decryption (RSAES-PKCS1-v1_5) with a token
//! key pair of usage ENCRYPT_DECRYPT.

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::hsm::{require_enabled, Hsm};
use crate::types::KeyUsage;

impl Hsm {
    /// CKM_RSA_PKCS encryption (0 to k-11 bytes; more is a
    /// `ValidationException`) or decryption (any failure is one
    /// `InvalidCiphertextException`) with an Enabled RSA key of usage
    /// ENCRYPT_DECRYPT: a signing key never decrypts, so a decryption
    /// request cannot become a signature.
    pub fn p11_rsa_pkcs1_crypt(
        &self,
        key_id: &str,
        encrypt: bool,
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let state = self.read_state();
        let record = state.key(key_id)?;
        require_enabled(record)?;
        if !record.spec.is_rsa() || !record.p11_allows(KeyUsage::EncryptDecrypt) {
            return Err(Error::InvalidKeyUsage(format!(
                "{} is not an RSA key that may decrypt",
                record.arn()
            )));
        }
        let spec = record.spec;
        let material = self.material(record, record.current_version())?;
        drop(state);
        if encrypt {
            crate::asymmetric::rsa_pkcs1_encrypt(spec, &material, data).map(Zeroizing::new)
        } else {
            crate::asymmetric::rsa_pkcs1_decrypt(spec, &material, data)
        }
    }
}
