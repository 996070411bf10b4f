//! Cryptographic operations: Encrypt, Decrypt, ReEncrypt, data keys,
//! random bytes, and the asymmetric and HMAC operations.

use uuid::Uuid;
use zeroize::Zeroizing;

use crate::asymmetric;
use crate::cache::Material;
use crate::envelope::{self, BlobHeader};
use crate::error::{Error, Result};
use crate::hsm::{require_enabled, Hsm};
use crate::model::KeyRecord;
use crate::outputs::*;
use crate::sealing::random_fill;
use crate::types::*;

/// The largest message Sign, Verify and GenerateMac take.
const MAX_MESSAGE: usize = 4096;
/// The largest signature Verify takes (as in KMS).
const MAX_SIGNATURE: usize = 6144;
/// The largest data key and random output.
const MAX_RANDOM: u32 = 1024;

fn require_usage(key: &KeyRecord, usage: KeyUsage, operation: &str) -> Result<()> {
    if key.usage != usage {
        return Err(Error::InvalidKeyUsage(format!(
            "{operation} needs a {usage} key; {} is {}",
            key.arn(),
            key.usage
        )));
    }
    Ok(())
}

fn check_message(message: &[u8]) -> Result<()> {
    if message.is_empty() || message.len() > MAX_MESSAGE {
        return Err(Error::validation(format!(
            "the message must be 1 to {MAX_MESSAGE} bytes"
        )));
    }
    Ok(())
}

/// The length of a data key: exactly one of a spec and a byte count.
fn data_key_len(key_spec: Option<DataKeySpec>, number_of_bytes: Option<u32>) -> Result<usize> {
    match (key_spec, number_of_bytes) {
        (Some(DataKeySpec::Aes128), None) => Ok(16),
        (Some(DataKeySpec::Aes256), None) => Ok(32),
        (None, Some(n)) if (1..=MAX_RANDOM).contains(&n) => Ok(n as usize),
        (None, Some(_)) => Err(Error::validation(format!(
            "NumberOfBytes must be 1 to {MAX_RANDOM}"
        ))),
        _ => Err(Error::validation(
            "give exactly one of KeySpec and NumberOfBytes",
        )),
    }
}

/// What an operation needs of an Enabled key: no copy of its metadata.
struct UsableKey {
    id: Uuid,
    spec: KeySpec,
    version: u32,
    material: Material,
}

impl UsableKey {
    fn arn(&self) -> String {
        Hsm::arn_of(&self.id)
    }
}

impl Hsm {
    /// Resolves a key, checks it is Enabled with `usage`, and takes the
    /// material of its newest version, under one state lock.
    fn usable_key(&self, key_ref: &str, usage: KeyUsage, operation: &str) -> Result<UsableKey> {
        let state = self.read_state();
        let key = state.key(key_ref)?;
        require_usage(&key, usage, operation)?;
        require_enabled(&key)?;
        let version = key.current_version();
        Ok(UsableKey {
            id: key.id,
            spec: key.spec,
            version,
            material: self.material(&key, version)?,
        })
    }

    /// An Enabled RSA ENCRYPT_DECRYPT key for an RSAES algorithm; RSA
    /// encryption binds no encryption context.
    fn rsa_key(
        &self,
        key_ref: &str,
        context: &EncryptionContext,
        algorithm: EncryptionAlgorithm,
        operation: &str,
    ) -> Result<UsableKey> {
        if !context.is_empty() {
            return Err(Error::validation(
                "an encryption context is not supported with RSA keys",
            ));
        }
        let key = self.usable_key(key_ref, KeyUsage::EncryptDecrypt, operation)?;
        if !key.spec.is_rsa() {
            return Err(Error::InvalidKeyUsage(format!(
                "{algorithm} needs an RSA key"
            )));
        }
        Ok(key)
    }

    /// Seals `plaintext` under the newest version of a symmetric key.
    fn seal_symmetric(
        &self,
        key_ref: &str,
        plaintext: &[u8],
        context: &EncryptionContext,
        operation: &str,
    ) -> Result<(Vec<u8>, String)> {
        let encoded_context = envelope::encode_context(context)?;
        let key = self.usable_key(key_ref, KeyUsage::EncryptDecrypt, operation)?;
        if !key.spec.is_symmetric() {
            return Err(Error::InvalidKeyUsage(format!(
                "{operation} with SYMMETRIC_DEFAULT needs a symmetric key; {} is {}",
                key.arn(),
                key.spec
            )));
        }
        let header = BlobHeader {
            key_id: *key.id.as_bytes(),
            version: key.version,
        };
        let blob = envelope::seal(header, &key.material, plaintext, &encoded_context)?;
        Ok((blob, key.arn()))
    }

    /// Opens a symmetric blob; `expected_key`, when given, must be its key.
    fn open_symmetric(
        &self,
        blob: &[u8],
        context: &EncryptionContext,
        expected_key: Option<&str>,
    ) -> Result<(Zeroizing<Vec<u8>>, String)> {
        let header = envelope::parse_header(blob)?;
        let encoded_context = envelope::encode_context(context)?;
        let id = Uuid::from_bytes(header.key_id);
        let (material, arn) = {
            let state = self.read_state();
            if let Some(expected) = expected_key {
                if state.resolve(expected)? != id {
                    return Err(Error::IncorrectKey(format!(
                        "the ciphertext was not made under {}",
                        crate::types::printable(expected)
                    )));
                }
            }
            let key = match state.get(&id)? {
                Some(key) => key,
                None if state.is_destroyed(&id)? => {
                    return Err(Error::NotFound(format!(
                        "key {} was destroyed: its ciphertexts can never be decrypted",
                        Self::arn_of(&id)
                    )))
                }
                None => {
                    return Err(Error::InvalidCiphertext(
                        "the ciphertext is not valid".into(),
                    ))
                }
            };
            if !key.spec.is_symmetric() {
                return Err(Error::InvalidCiphertext(
                    "the ciphertext is not valid".into(),
                ));
            }
            require_enabled(&key)?;
            if header.version == 0 || header.version > key.current_version() {
                return Err(Error::InvalidCiphertext(
                    "the ciphertext is not valid".into(),
                ));
            }
            (self.material(&key, header.version)?, key.arn())
        };
        let plaintext = envelope::open(blob, &material, &encoded_context)?;
        Ok((plaintext, arn))
    }

    /// Encrypt: SYMMETRIC_DEFAULT (the default) with a symmetric key, or
    /// RSAES_OAEP_SHA_1/256 with an RSA ENCRYPT_DECRYPT key.
    pub fn encrypt(
        &self,
        key_id: &str,
        plaintext: &[u8],
        context: &EncryptionContext,
        algorithm: Option<EncryptionAlgorithm>,
    ) -> Result<EncryptOutput> {
        if plaintext.is_empty() || plaintext.len() > envelope::MAX_PLAINTEXT {
            return Err(Error::validation(format!(
                "the plaintext must be 1 to {} bytes",
                envelope::MAX_PLAINTEXT
            )));
        }
        let algorithm = algorithm.unwrap_or(EncryptionAlgorithm::SymmetricDefault);
        if algorithm == EncryptionAlgorithm::SymmetricDefault {
            let (ciphertext_blob, key_id) =
                self.seal_symmetric(key_id, plaintext, context, "Encrypt")?;
            return Ok(EncryptOutput {
                ciphertext_blob,
                key_id,
                encryption_algorithm: algorithm,
            });
        }
        let key = self.rsa_key(key_id, context, algorithm, "Encrypt")?;
        let ciphertext_blob =
            asymmetric::rsa_encrypt(key.spec, &key.material, algorithm, plaintext)?;
        Ok(EncryptOutput {
            ciphertext_blob,
            key_id: key.arn(),
            encryption_algorithm: algorithm,
        })
    }

    /// Decrypt. Symmetric blobs name their key and version, so `key_id` is
    /// optional; when given and different, IncorrectKeyException. RSA
    /// ciphertexts need `key_id` and the algorithm.
    pub fn decrypt(
        &self,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
        key_id: Option<&str>,
        algorithm: Option<EncryptionAlgorithm>,
    ) -> Result<DecryptOutput> {
        let algorithm = algorithm.unwrap_or(EncryptionAlgorithm::SymmetricDefault);
        if algorithm == EncryptionAlgorithm::SymmetricDefault {
            let (plaintext, key_id) = self.open_symmetric(ciphertext_blob, context, key_id)?;
            return Ok(DecryptOutput {
                plaintext,
                key_id,
                encryption_algorithm: algorithm,
            });
        }
        let key_ref =
            key_id.ok_or_else(|| Error::validation("decrypting with an RSA key needs KeyId"))?;
        if ciphertext_blob.is_empty() || ciphertext_blob.len() > 1024 {
            return Err(Error::InvalidCiphertext(
                "the ciphertext is not valid".into(),
            ));
        }
        let key = self.rsa_key(key_ref, context, algorithm, "Decrypt")?;
        let plaintext =
            asymmetric::rsa_decrypt(key.spec, &key.material, algorithm, ciphertext_blob)?;
        Ok(DecryptOutput {
            plaintext,
            key_id: key.arn(),
            encryption_algorithm: algorithm,
        })
    }

    /// ReEncrypt: decrypts and encrypts again inside the core, to another
    /// key or to the newest version of the same one.
    pub fn re_encrypt(
        &self,
        ciphertext_blob: &[u8],
        source_context: &EncryptionContext,
        source_key_id: Option<&str>,
        destination_key_id: &str,
        destination_context: &EncryptionContext,
    ) -> Result<ReEncryptOutput> {
        let (plaintext, source_arn) =
            self.open_symmetric(ciphertext_blob, source_context, source_key_id)?;
        let (ciphertext_blob, key_id) = self.seal_symmetric(
            destination_key_id,
            &plaintext,
            destination_context,
            "ReEncrypt",
        )?;
        Ok(ReEncryptOutput {
            ciphertext_blob,
            source_key_id: source_arn,
            key_id,
            source_encryption_algorithm: EncryptionAlgorithm::SymmetricDefault,
            destination_encryption_algorithm: EncryptionAlgorithm::SymmetricDefault,
        })
    }

    fn data_key(
        &self,
        key_id: &str,
        key_spec: Option<DataKeySpec>,
        number_of_bytes: Option<u32>,
        context: &EncryptionContext,
        with_plaintext: bool,
    ) -> Result<DataKey> {
        let mut plaintext = Zeroizing::new(vec![0u8; data_key_len(key_spec, number_of_bytes)?]);
        random_fill(&mut plaintext)?;
        let (ciphertext_blob, key_id) =
            self.seal_symmetric(key_id, &plaintext, context, "GenerateDataKey")?;
        Ok(DataKey {
            plaintext: with_plaintext.then_some(plaintext),
            ciphertext_blob,
            key_id,
        })
    }

    /// GenerateDataKey: exactly one of `key_spec` and `number_of_bytes` (1 to 1024).
    pub fn generate_data_key(
        &self,
        key_id: &str,
        key_spec: Option<DataKeySpec>,
        number_of_bytes: Option<u32>,
        context: &EncryptionContext,
    ) -> Result<DataKey> {
        self.data_key(key_id, key_spec, number_of_bytes, context, true)
    }

    /// GenerateDataKeyWithoutPlaintext.
    pub fn generate_data_key_without_plaintext(
        &self,
        key_id: &str,
        key_spec: Option<DataKeySpec>,
        number_of_bytes: Option<u32>,
        context: &EncryptionContext,
    ) -> Result<DataKey> {
        self.data_key(key_id, key_spec, number_of_bytes, context, false)
    }

    /// GenerateRandom (1 to 1024 bytes).
    pub fn generate_random(&self, number_of_bytes: u32) -> Result<Zeroizing<Vec<u8>>> {
        if !(1..=MAX_RANDOM).contains(&number_of_bytes) {
            return Err(Error::validation(format!(
                "NumberOfBytes must be 1 to {MAX_RANDOM}"
            )));
        }
        let mut out = Zeroizing::new(vec![0u8; number_of_bytes as usize]);
        random_fill(&mut out)?;
        Ok(out)
    }

    /// Sign with a SIGN_VERIFY key.
    pub fn sign(
        &self,
        key_id: &str,
        message: &[u8],
        message_type: MessageType,
        algorithm: SigningAlgorithm,
    ) -> Result<SignOutput> {
        check_message(message)?;
        let key = self.usable_key(key_id, KeyUsage::SignVerify, "Sign")?;
        let signature =
            key.material
                .private_key(key.spec)?
                .sign(algorithm, message, message_type)?;
        Ok(SignOutput {
            key_id: key.arn(),
            signature,
            signing_algorithm: algorithm,
        })
    }

    /// Verify; a signature that does not verify is
    /// `Error::InvalidSignature` (KMSInvalidSignatureException), as in KMS.
    pub fn verify(
        &self,
        key_id: &str,
        message: &[u8],
        message_type: MessageType,
        signature: &[u8],
        algorithm: SigningAlgorithm,
    ) -> Result<VerifyOutput> {
        check_message(message)?;
        let key = self.usable_key(key_id, KeyUsage::SignVerify, "Verify")?;
        if signature.len() > MAX_SIGNATURE {
            return Err(Error::validation(format!(
                "the signature must be at most {MAX_SIGNATURE} bytes"
            )));
        }
        let private_key = key.material.private_key(key.spec)?;
        if !private_key.verify(algorithm, message, message_type, signature)? {
            return Err(Error::InvalidSignature("the signature is not valid".into()));
        }
        Ok(VerifyOutput {
            key_id: key.arn(),
            signature_valid: true,
            signing_algorithm: algorithm,
        })
    }

    /// GetPublicKey of an RSA, elliptic-curve, ML-DSA or ML-KEM key.
    pub fn get_public_key(&self, key_id: &str) -> Result<PublicKeyOutput> {
        let meta = self.describe_key(key_id)?;
        let key = self.usable_key(key_id, meta.key_usage, "GetPublicKey")?;
        if !key.spec.has_public_key() {
            return Err(Error::UnsupportedOperation(format!(
                "{} has no public key: it is {}",
                key.arn(),
                key.spec
            )));
        }
        Ok(PublicKeyOutput {
            key_id: key.arn(),
            public_key: key.material.private_key(key.spec)?.public_key_der()?,
            key_spec: key.spec,
            key_usage: meta.key_usage,
            encryption_algorithms: meta.encryption_algorithms,
            signing_algorithms: meta.signing_algorithms,
        })
    }

    /// Encapsulate with an ML-KEM key (ENCAPSULATE_DECAPSULATE): a fresh
    /// 32-byte shared secret and its ciphertext under the key's public key.
    pub fn encapsulate(
        &self,
        key_id: &str,
        algorithm: EncapsulationAlgorithm,
    ) -> Result<EncapsulateOutput> {
        let key = self.usable_key(key_id, KeyUsage::EncapsulateDecapsulate, "Encapsulate")?;
        let asymmetric::PrivateKey::MlKem(kem) = key.material.private_key(key.spec)? else {
            return Err(Error::InvalidKeyUsage(format!(
                "{algorithm} needs an ML-KEM key; {} is {}",
                key.arn(),
                key.spec
            )));
        };
        let (ciphertext, shared_secret) = kem.encapsulate()?;
        Ok(EncapsulateOutput {
            key_id: key.arn(),
            shared_secret,
            shared_secret_ciphertext_blob: ciphertext,
            encapsulation_algorithm: algorithm,
        })
    }

    /// Decapsulate with an ML-KEM key. A ciphertext of the wrong length
    /// is `InvalidCiphertextException`; any other gives 32 bytes (implicit
    /// rejection), as in KMS.
    pub fn decapsulate(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        algorithm: EncapsulationAlgorithm,
    ) -> Result<DecapsulateOutput> {
        let key = self.usable_key(key_id, KeyUsage::EncapsulateDecapsulate, "Decapsulate")?;
        let asymmetric::PrivateKey::MlKem(kem) = key.material.private_key(key.spec)? else {
            return Err(Error::InvalidKeyUsage(format!(
                "{algorithm} needs an ML-KEM key; {} is {}",
                key.arn(),
                key.spec
            )));
        };
        Ok(DecapsulateOutput {
            key_id: key.arn(),
            shared_secret: kem.decapsulate(ciphertext)?,
            encapsulation_algorithm: algorithm,
        })
    }

    /// GenerateMac with an HMAC key.
    pub fn generate_mac(
        &self,
        key_id: &str,
        message: &[u8],
        algorithm: MacAlgorithm,
    ) -> Result<MacOutput> {
        check_message(message)?;
        let key = self.usable_key(key_id, KeyUsage::GenerateVerifyMac, "GenerateMac")?;
        let mac = asymmetric::generate_mac(key.spec, &key.material, algorithm, message)?;
        Ok(MacOutput {
            key_id: key.arn(),
            mac,
            mac_algorithm: algorithm,
        })
    }

    /// VerifyMac; a MAC that does not match is `Error::InvalidMac`
    /// (KMSInvalidMacException). Returns the key's resource name.
    pub fn verify_mac(
        &self,
        key_id: &str,
        message: &[u8],
        mac: &[u8],
        algorithm: MacAlgorithm,
    ) -> Result<String> {
        check_message(message)?;
        let key = self.usable_key(key_id, KeyUsage::GenerateVerifyMac, "VerifyMac")?;
        if mac.is_empty()
            || mac.len() > 64
            || !asymmetric::verify_mac(key.spec, &key.material, algorithm, message, mac)?
        {
            return Err(Error::InvalidMac("the MAC is not valid".into()));
        }
        Ok(key.arn())
    }

    /// GenerateDataKeyPair (`with_plaintext`) or
    /// GenerateDataKeyPairWithoutPlaintext: the private key is returned
    /// encrypted under the symmetric key `key_id` (and in plaintext only
    /// in the first form).
    pub fn generate_data_key_pair(
        &self,
        key_id: &str,
        key_pair_spec: DataKeyPairSpec,
        context: &EncryptionContext,
        with_plaintext: bool,
    ) -> Result<DataKeyPair> {
        // Check the wrapping key before paying for key generation.
        self.usable_key(key_id, KeyUsage::EncryptDecrypt, "GenerateDataKeyPair")?;
        let (private_key, public_key) = asymmetric::generate_data_key_pair(key_pair_spec)?;
        let (private_key_ciphertext_blob, key_id) =
            self.seal_symmetric(key_id, &private_key, context, "GenerateDataKeyPair")?;
        Ok(DataKeyPair {
            private_key_plaintext: with_plaintext.then_some(private_key),
            private_key_ciphertext_blob,
            public_key,
            key_id,
            key_pair_spec,
        })
    }
}
