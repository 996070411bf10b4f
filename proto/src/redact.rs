//! Hand-written `Debug` for messages that carry secrets: lengths only, never bytes.

use std::fmt;

use crate::v1::*;

/// Writes `<N bytes redacted>`.
struct Redacted(usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes redacted>", self.0)
    }
}

impl fmt::Debug for EncryptRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptRequest")
            .field("key_id", &self.key_id)
            .field("plaintext", &Redacted(self.plaintext.len()))
            .field("encryption_context_keys", &self.encryption_context.keys())
            .field("encryption_algorithm", &self.encryption_algorithm)
            .finish()
    }
}

impl fmt::Debug for DecryptResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptResponse")
            .field("key_id", &self.key_id)
            .field("plaintext", &Redacted(self.plaintext.len()))
            .field("encryption_algorithm", &self.encryption_algorithm)
            .finish()
    }
}

impl fmt::Debug for GenerateDataKeyResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerateDataKeyResponse")
            .field("ciphertext_blob_len", &self.ciphertext_blob.len())
            .field("plaintext", &Redacted(self.plaintext.len()))
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl fmt::Debug for GenerateRandomResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerateRandomResponse")
            .field("plaintext", &Redacted(self.plaintext.len()))
            .finish()
    }
}

impl fmt::Debug for EncapsulateResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncapsulateResponse")
            .field("key_id", &self.key_id)
            .field("shared_secret", &Redacted(self.shared_secret.len()))
            .field(
                "shared_secret_ciphertext_blob_len",
                &self.shared_secret_ciphertext_blob.len(),
            )
            .field("encapsulation_algorithm", &self.encapsulation_algorithm)
            .finish()
    }
}

impl fmt::Debug for DecapsulateResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecapsulateResponse")
            .field("key_id", &self.key_id)
            .field("shared_secret", &Redacted(self.shared_secret.len()))
            .field("encapsulation_algorithm", &self.encapsulation_algorithm)
            .finish()
    }
}

impl fmt::Debug for SignRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignRequest")
            .field("key_id", &self.key_id)
            .field("message", &Redacted(self.message.len()))
            .field("message_type", &self.message_type)
            .field("signing_algorithm", &self.signing_algorithm)
            .finish()
    }
}

impl fmt::Debug for VerifyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyRequest")
            .field("key_id", &self.key_id)
            .field("message", &Redacted(self.message.len()))
            .field("message_type", &self.message_type)
            .field("signature_len", &self.signature.len())
            .field("signing_algorithm", &self.signing_algorithm)
            .finish()
    }
}

impl fmt::Debug for GenerateMacRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerateMacRequest")
            .field("key_id", &self.key_id)
            .field("message", &Redacted(self.message.len()))
            .field("mac_algorithm", &self.mac_algorithm)
            .finish()
    }
}

impl fmt::Debug for VerifyMacRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyMacRequest")
            .field("key_id", &self.key_id)
            .field("message", &Redacted(self.message.len()))
            .field("mac_len", &self.mac.len())
            .field("mac_algorithm", &self.mac_algorithm)
            .finish()
    }
}

impl fmt::Debug for GenerateDataKeyPairResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerateDataKeyPairResponse")
            .field(
                "private_key_ciphertext_blob_len",
                &self.private_key_ciphertext_blob.len(),
            )
            .field(
                "private_key_plaintext",
                &Redacted(self.private_key_plaintext.len()),
            )
            .field("public_key_len", &self.public_key.len())
            .field("key_id", &self.key_id)
            .field("key_pair_spec", &self.key_pair_spec)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_secret_messages_shows_no_bytes() {
        let req = EncryptRequest {
            key_id: "k".into(),
            plaintext: b"top secret words".to_vec(),
            ..Default::default()
        };
        let text = format!("{req:?}");
        assert!(text.contains("<16 bytes redacted>"), "{text}");
        assert!(!text.contains("116"), "{text}");
        let resp = DecryptResponse {
            plaintext: vec![0xAB; 3],
            ..Default::default()
        };
        let text = format!("{resp:?}");
        assert!(!text.contains("171"), "{text}");
    }
}

/// `Debug` for PKCS#11 backend messages that carry PINs, key values, data
/// or signatures: the type name only.
macro_rules! opaque_debug {
    ($($name:ident),+ $(,)?) => {$(
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    )+};
}

opaque_debug!(
    P11InitTokenRequest,
    P11LoginRequest,
    P11InitPinRequest,
    P11SetPinRequest,
    P11BytesResponse,
    P11ImportSecretKeyRequest,
    P11HmacRequest,
    P11HmacVerifyRequest,
    P11AesRequest,
    P11RsaOaepRequest,
    P11SignRequest,
    P11VerifyRequest,
    P11RsaPkcs1CryptRequest,
    P11ImportPrivateKeyRequest,
    P11CmacRequest,
    P11CmacVerifyRequest,
    P11EcdhDeriveRequest,
    P11DeriveRequest,
    P11DeriveResponse,
    P11Chunk,
);

#[cfg(test)]
mod p11_tests {
    use super::*;

    #[test]
    fn debug_of_pkcs11_messages_shows_no_pin_or_data() {
        let login = P11LoginRequest {
            token: "t".into(),
            user: 0,
            pin: b"pin-4711".to_vec(),
        };
        let text = format!("{login:?}");
        assert!(text.starts_with("P11LoginRequest"), "{text}");
        assert!(!text.contains("112"), "{text}");
        let out = P11BytesResponse {
            data: vec![0xAB; 4],
        };
        assert!(!format!("{out:?}").contains("171"));
        let crypt = P11RsaPkcs1CryptRequest {
            key: None,
            encrypt: false,
            data: vec![0xCD; 4],
            ..Default::default()
        };
        let text = format!("{crypt:?}");
        assert!(text.starts_with("P11RsaPkcs1CryptRequest"), "{text}");
        assert!(!text.contains("205"), "{text}");
    }
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("user_name", &self.user_name)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &Redacted(self.secret_access_key.len()))
            .field("status", &self.status)
            .field("create_date", &self.create_date)
            .finish()
    }
}

#[cfg(test)]
mod pq_tests {
    use super::*;

    #[test]
    fn debug_of_encapsulate_and_decapsulate_shows_no_shared_secret() {
        let enc = EncapsulateResponse {
            key_id: "k".into(),
            shared_secret: vec![0xC3; 32],
            shared_secret_ciphertext_blob: vec![1; 1088],
            encapsulation_algorithm: "ML_KEM".into(),
        };
        let text = format!("{enc:?}");
        assert!(text.contains("<32 bytes redacted>"), "{text}");
        assert!(text.contains("1088") && !text.contains("195"), "{text}");
        let dec = DecapsulateResponse {
            key_id: "k".into(),
            shared_secret: vec![0xC3; 32],
            encapsulation_algorithm: "ML_KEM".into(),
        };
        let text = format!("{dec:?}");
        assert!(
            text.contains("<32 bytes redacted>") && !text.contains("195"),
            "{text}"
        );
    }
}
