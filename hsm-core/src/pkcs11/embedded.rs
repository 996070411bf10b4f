//! The embedded backend: hsm-core in this process (the module's `backend =
//! "embedded"`, and what tinfoild serves the module's `daemon` backend
//! with). Tokens, PINs and object attributes live in the store
//! ([`crate::token`]); keys are KMS keys in the token's namespace; all
//! cryptography runs inside hsm-core ([`crate::mechanisms`]), so key bytes
//! never reach the module.

use std::path::Path;
use std::sync::Arc;

use crate::mechanisms::{SecretKeyRef, SessionKeys};
use crate::token::{PinError, PinUser};
use crate::{Hsm, HsmOptions, SecretString};
use zeroize::Zeroizing;

use super::error::{ckr, Pkcs11Error, Result};
use super::pin::pin_flags;
use super::{
    AesMode, Attributes, Backend, KeyHandle, KeySpec, PairUsages, RawSign, StoredObject,
    TokenRecord, UserKind, WrapMode,
};

/// The deletion window for keys destroyed through PKCS#11 (the KMS minimum).
const DELETION_WINDOW_DAYS: u32 = 7;
/// Prefix of object ids synthesised for keys that have no object row.
const KMS_PREFIX: &str = "kms:";
/// Suffix of the public half's id among synthesised objects.
const PUBLIC_SUFFIX: &str = ":pub";

mod changes;
mod find;
#[cfg(test)]
pub(crate) mod find_tests;
mod objects;
mod synth;

/// The embedded backend.
pub struct EmbeddedBackend {
    hsm: Arc<Hsm>,
    session_keys: SessionKeys,
}

fn pin_error(e: PinError) -> Pkcs11Error {
    match e {
        PinError::Incorrect => ckr!(CKR_PIN_INCORRECT),
        PinError::Locked => ckr!(CKR_PIN_LOCKED),
        PinError::NotInitialized => ckr!(CKR_USER_PIN_NOT_INITIALIZED),
        PinError::LengthRange => ckr!(CKR_PIN_LEN_RANGE),
        PinError::Engine(e) => e.into(),
    }
}

/// Input the raw primitives refuse (a digest of the wrong length, a bad
/// DigestInfo) is the caller's data, not a bad argument.
fn sign_error(e: crate::Error) -> Pkcs11Error {
    match e {
        crate::Error::Validation(_) => {
            ckr!(CKR_DATA_LEN_RANGE, "input not valid for this mechanism")
        }
        other => other.into(),
    }
}

fn cmac_error(e: crate::Error) -> Pkcs11Error {
    match e {
        crate::Error::InvalidKeyUsage(_) => {
            ckr!(CKR_KEY_TYPE_INCONSISTENT, "CMAC needs an AES key")
        }
        crate::Error::Validation(_) => ckr!(CKR_MECHANISM_PARAM_INVALID),
        other => other.into(),
    }
}

/// Who calls through the embedded backend: the process holding the
/// passphrase, an administrator of its store, named by its OS user and
/// process (`unix:uid=N,pid=N`, as tinfoild names socket peers).
fn process_caller() -> crate::Caller {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self")
        .map_or_else(|_| "unknown".to_string(), |m| m.uid().to_string());
    crate::Caller::new(
        crate::Principal::Root,
        format!("unix:uid={uid},pid={}", std::process::id()),
    )
}

fn pin_user(user: UserKind) -> PinUser {
    match user {
        UserKind::So => PinUser::So,
        UserKind::User => PinUser::User,
    }
}

impl EmbeddedBackend {
    /// Opens the store in `data_dir` shared with other processes,
    /// initialising a missing or empty one with `passphrase`. (The module
    /// reads both from its configuration file.)
    pub fn open(
        data_dir: &Path,
        passphrase: &SecretString,
        options: HsmOptions,
    ) -> Result<EmbeddedBackend> {
        // Several processes may hold the store (shared lock); two that find
        // no store at once both try to init it: one does, the other then
        // opens what it made.
        let mut attempts = 0;
        let opened = loop {
            let initialized = Hsm::is_initialized(data_dir);
            let result = if initialized {
                Hsm::open_shared(data_dir, passphrase, options.clone())
            } else {
                Hsm::init_shared(data_dir, passphrase, options.clone())
            };
            match result {
                Err(crate::Error::AlreadyExists(_) | crate::Error::StoreUnavailable(_))
                    if !initialized && attempts < 100 =>
                {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => break other,
            }
        };
        let hsm = opened.map_err(|e| {
            Pkcs11Error::General(format!(
                "cannot open the store in {}: {e}",
                data_dir.display()
            ))
        })?;
        Ok(EmbeddedBackend::over_hsm(Arc::new(hsm)))
    }

    /// A backend over a store that is already open (tinfoild serves the
    /// `daemon` backend this way), with its own session keys.
    pub fn over_hsm(hsm: Arc<Hsm>) -> EmbeddedBackend {
        EmbeddedBackend {
            hsm,
            session_keys: SessionKeys::new(),
        }
    }

    /// A backend over an open store whose session key table shares
    /// `budget` (cap, count and ids) with other tables: tinfoild makes one
    /// per client connection.
    pub fn over_hsm_sharing(
        hsm: Arc<Hsm>,
        budget: Arc<crate::token::SessionKeyBudget>,
    ) -> EmbeddedBackend {
        EmbeddedBackend {
            hsm,
            session_keys: SessionKeys::with_budget(budget),
        }
    }

    /// The descriptor holding the store's directory lock; a forked child
    /// closes its copy (the module's `state`).
    pub fn lock_fd(&self) -> std::os::fd::RawFd {
        self.hsm.lock_fd()
    }

    fn label_of(&self, serial: &str) -> Result<String> {
        self.hsm
            .token_list()?
            .into_iter()
            .find(|t| t.serial == serial)
            .map(|t| t.label)
            .ok_or_else(super::unknown_token)
    }

    fn key_ref<'a>(&self, key: &'a KeyHandle) -> SecretKeyRef<'a> {
        match key {
            KeyHandle::Stored(id) => SecretKeyRef::Stored(id),
            KeyHandle::Session(id) => SecretKeyRef::Session(*id),
        }
    }
}

impl Backend for EmbeddedBackend {
    fn name(&self) -> &'static str {
        "embedded"
    }

    fn audited(
        &self,
        call: &super::audit::AuditedCall<'_>,
        body: &mut dyn FnMut() -> Result<()>,
    ) -> Result<()> {
        let mechanism = call.info.mechanism.map(super::audit::mechanism_name);
        let record = crate::audit::Pkcs11Call {
            function: call.info.function,
            mechanism: mechanism.as_deref(),
            key_id: call.key_id,
        };
        self.hsm
            .pkcs11_call(&process_caller(), &record, body, |e: &Pkcs11Error| {
                (super::audit::ckr_name(e.rv()), e.to_string())
            })
            .map_err(|e| {
                eprintln!("libtinfoil_pkcs11: {}: {e}", call.info.function);
                ckr!(CKR_DEVICE_ERROR, "the audit record cannot be written")
            })?
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>> {
        Ok(self
            .hsm
            .token_list()?
            .into_iter()
            .map(|t| TokenRecord {
                serial: t.serial,
                label: t.label,
                user_pin_initialized: t.user_pin_initialized,
                pin_flags: pin_flags(t.so_failures, false) | pin_flags(t.user_failures, true),
            })
            .collect())
    }

    fn init_token(&self, existing: Option<&str>, label: &str, so_pin: &[u8]) -> Result<String> {
        self.hsm
            .token_init(existing, label, so_pin)
            .map_err(pin_error)
    }

    fn login(&self, token: &str, user: UserKind, pin: &[u8]) -> Result<()> {
        self.hsm
            .token_check_pin(token, pin_user(user), pin)
            .map_err(pin_error)
    }

    fn init_pin(&self, token: &str, pin: &[u8]) -> Result<()> {
        self.hsm
            .token_set_pin(token, PinUser::User, pin)
            .map_err(pin_error)
    }

    fn set_pin(&self, token: &str, user: UserKind, old: &[u8], new: &[u8]) -> Result<()> {
        super::pin::check_pin_len(new)?;
        self.hsm
            .token_check_pin(token, pin_user(user), old)
            .map_err(pin_error)?;
        self.hsm
            .token_set_pin(token, pin_user(user), new)
            .map_err(pin_error)
    }

    fn load_objects(&self, token: &str) -> Result<Vec<StoredObject>> {
        self.objects_of(token)
    }

    fn store_object(
        &self,
        token: &str,
        attrs: &Attributes,
        key: Option<&KeyHandle>,
    ) -> Result<String> {
        self.put_object(token, attrs, key)
    }

    fn update_object(&self, token: &str, id: &str, attrs: &Attributes) -> Result<()> {
        self.replace_object(token, id, attrs)
    }

    fn destroy_object(&self, token: &str, id: &str) -> Result<()> {
        self.remove_object(token, id)
    }

    fn generate_random(&self, out: &mut [u8]) -> Result<()> {
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), out)
            .map_err(|_| ckr!(CKR_DEVICE_ERROR, "no randomness"))
    }

    fn supports_key_mechanisms(&self) -> bool {
        true
    }

    fn generate_secret_key(
        &self,
        token_label: Option<&str>,
        aes: bool,
        len: usize,
        extractable: bool,
    ) -> Result<KeyHandle> {
        match token_label {
            Some(label) if aes => {
                let meta =
                    self.hsm
                        .p11_create_aes_key(label, len, "PKCS#11 AES key", extractable)?;
                Ok(KeyHandle::Stored(meta.key_id))
            }
            Some(label) => {
                let meta = self
                    .hsm
                    .p11_create_hmac_key(label, len, "PKCS#11 HMAC key")?;
                Ok(KeyHandle::Stored(meta.key_id))
            }
            None => Ok(KeyHandle::Session(
                self.session_keys.generate(len, extractable)?,
            )),
        }
    }

    fn import_secret_key(
        &self,
        token_label: Option<&str>,
        aes: bool,
        value: &[u8],
        extractable: bool,
    ) -> Result<KeyHandle> {
        match token_label {
            Some(label) => {
                let meta = self.hsm.p11_import_secret(
                    label,
                    aes,
                    value,
                    "PKCS#11 imported key",
                    extractable,
                )?;
                Ok(KeyHandle::Stored(meta.key_id))
            }
            None => Ok(KeyHandle::Session(
                self.session_keys.import(value, extractable)?,
            )),
        }
    }

    fn hmac(&self, key: &KeyHandle, hash_len: usize, data: &[u8]) -> Result<Vec<u8>> {
        Ok(self
            .hsm
            .p11_hmac(&self.session_keys, self.key_ref(key), hash_len, data)?)
    }

    fn hmac_verify(
        &self,
        key: &KeyHandle,
        hash_len: usize,
        data: &[u8],
        mac: &[u8],
    ) -> Result<bool> {
        Ok(self
            .hsm
            .p11_hmac_verify(&self.session_keys, self.key_ref(key), hash_len, data, mac)?)
    }

    fn destroy_key(&self, key: &KeyHandle) -> Result<()> {
        match key {
            KeyHandle::Session(id) => {
                self.session_keys.destroy(*id);
                Ok(())
            }
            KeyHandle::Stored(id) => {
                self.hsm
                    .schedule_key_deletion(id, Some(DELETION_WINDOW_DAYS))?;
                Ok(())
            }
        }
    }

    fn secret_len(&self, key: &KeyHandle) -> Result<usize> {
        Ok(self
            .hsm
            .p11_secret_len(&self.session_keys, self.key_ref(key))?)
    }

    fn aes(
        &self,
        key: &KeyHandle,
        mode: &AesMode,
        encrypt: bool,
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        self.hsm
            .p11_aes(&self.session_keys, self.key_ref(key), mode, encrypt, data)
            .map_err(|e| match e {
                crate::Error::InvalidCiphertext(_) if !encrypt => {
                    ckr!(CKR_ENCRYPTED_DATA_INVALID)
                }
                crate::Error::Validation(_) => {
                    ckr!(CKR_DATA_LEN_RANGE, "input not valid for this mode")
                }
                other => other.into(),
            })
    }

    fn wrap(&self, wrapping: &KeyHandle, mode: WrapMode, target: &KeyHandle) -> Result<Vec<u8>> {
        self.hsm
            .p11_wrap(
                &self.session_keys,
                self.key_ref(wrapping),
                mode,
                self.key_ref(target),
            )
            .map_err(|e| match e {
                crate::Error::InvalidKeyUsage(_) => ckr!(CKR_KEY_UNEXTRACTABLE),
                // RFC 3394 of a length that is not a multiple of 8.
                crate::Error::Validation(_) => ckr!(CKR_KEY_SIZE_RANGE),
                other => other.into(),
            })
    }

    fn generate_rsa_key_pair(
        &self,
        token_label: &str,
        bits: u32,
        usages: PairUsages,
    ) -> Result<(KeyHandle, Vec<u8>)> {
        let token = (!token_label.is_empty()).then_some(token_label);
        let (made, spki) = self
            .hsm
            .p11_generate_rsa_pair(&self.session_keys, token, bits, usages, "PKCS#11 key pair")
            .map_err(|e| match e {
                crate::Error::Validation(_) => ckr!(
                    CKR_TEMPLATE_INCONSISTENT,
                    "a size or usages this key type cannot have"
                ),
                other => other.into(),
            })?;
        Ok(match made {
            crate::mechanisms::RsaPairId::Session(id) => (KeyHandle::Session(id), spki),
            crate::mechanisms::RsaPairId::Token(meta) => (KeyHandle::Stored(meta.key_id), spki),
        })
    }

    fn generate_key_pair(
        &self,
        token_label: &str,
        spec: KeySpec,
        usages: PairUsages,
    ) -> Result<(KeyHandle, Vec<u8>)> {
        let usage_error = |e| match e {
            crate::Error::Validation(_) => ckr!(
                CKR_TEMPLATE_INCONSISTENT,
                "usages this key type cannot have"
            ),
            other => other.into(),
        };
        if token_label.is_empty() {
            let (id, spki) = self
                .hsm
                .p11_generate_session_pair(&self.session_keys, spec, usages)
                .map_err(usage_error)?;
            return Ok((KeyHandle::Session(id), spki));
        }
        let (meta, spki) = self
            .hsm
            .p11_create_key_pair(token_label, spec, usages, "PKCS#11 key pair")
            .map_err(usage_error)?;
        Ok((KeyHandle::Stored(meta.key_id), spki))
    }

    fn rsa_oaep(
        &self,
        key: &KeyHandle,
        sha256: bool,
        encrypt: bool,
        data: &[u8],
        label: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        self.hsm
            .p11_rsa_oaep(
                &self.session_keys,
                self.key_ref(key),
                sha256,
                encrypt,
                data,
                label,
            )
            .map_err(|e| match e {
                crate::Error::InvalidCiphertext(_) => ckr!(CKR_ENCRYPTED_DATA_INVALID),
                crate::Error::Validation(_) => {
                    ckr!(CKR_DATA_LEN_RANGE, "input too long for this key")
                }
                other => other.into(),
            })
    }

    fn sign(&self, key: &KeyHandle, how: RawSign, input: &[u8]) -> Result<Vec<u8>> {
        self.hsm
            .p11_sign(&self.session_keys, self.key_ref(key), how, input)
            .map_err(sign_error)
    }

    fn verify(
        &self,
        key: &KeyHandle,
        how: RawSign,
        input: &[u8],
        signature: &[u8],
    ) -> Result<bool> {
        self.hsm
            .p11_verify(&self.session_keys, self.key_ref(key), how, input, signature)
            .map_err(sign_error)
    }

    fn unwrap(
        &self,
        unwrapping: &KeyHandle,
        mode: WrapMode,
        wrapped: &[u8],
        token_label: Option<&str>,
        extractable: bool,
    ) -> Result<(KeyHandle, usize)> {
        let invalid = |e: crate::Error| match e {
            crate::Error::InvalidCiphertext(_) => ckr!(CKR_WRAPPED_KEY_INVALID),
            other => other.into(),
        };
        let keys = &self.session_keys;
        let kek = self.key_ref(unwrapping);
        match token_label {
            None => {
                let (id, len) = self
                    .hsm
                    .p11_unwrap(keys, kek, mode, wrapped, extractable)
                    .map_err(invalid)?;
                Ok((KeyHandle::Session(id), len))
            }
            Some(label) => {
                let meta = self
                    .hsm
                    .p11_unwrap_to_token(keys, kek, mode, wrapped, label, extractable)
                    .map_err(invalid)?;
                let key = KeyHandle::Stored(meta.key_id);
                Ok((key.clone(), self.secret_len(&key)?))
            }
        }
    }

    fn generation(&self) -> Result<u64> {
        // Other processes may share the store: follow what they committed.
        self.hsm.sync()?;
        Ok(self.hsm.generation())
    }

    fn rsa_pkcs1_crypt(
        &self,
        key: &KeyHandle,
        encrypt: bool,
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        self.hsm
            .p11_rsa_pkcs1_crypt(&self.session_keys, self.key_ref(key), encrypt, data)
            .map_err(|e| match e {
                crate::Error::InvalidCiphertext(_) => ckr!(CKR_ENCRYPTED_DATA_INVALID),
                crate::Error::Validation(_) => {
                    ckr!(CKR_DATA_LEN_RANGE, "input too long for this key")
                }
                crate::Error::InvalidKeyUsage(_) => ckr!(CKR_KEY_FUNCTION_NOT_PERMITTED),
                other => other.into(),
            })
    }

    fn copy_key(
        &self,
        key: &KeyHandle,
        token_label: Option<&str>,
        aes: bool,
        extractable: bool,
    ) -> Result<KeyHandle> {
        // A session key pair copies to the token as a new KMS key.
        if let KeyHandle::Session(id) = key {
            if self
                .hsm
                .p11_session_pair_public(&self.session_keys, *id)
                .is_ok()
            {
                let label = token_label.ok_or(ckr!(
                    CKR_TEMPLATE_INCONSISTENT,
                    "a session key pair is copied to the token only"
                ))?;
                let meta = self.hsm.p11_copy_pair_to_token(
                    &self.session_keys,
                    self.key_ref(key),
                    label,
                    "PKCS#11 copied key pair",
                )?;
                return Ok(KeyHandle::Stored(meta.key_id));
            }
        }
        let copied = self
            .hsm
            .p11_copy_secret(
                &self.session_keys,
                self.key_ref(key),
                aes,
                token_label,
                extractable,
            )
            .map_err(|e| match e {
                crate::Error::InvalidKeyUsage(_) => ckr!(
                    CKR_ATTRIBUTE_READ_ONLY,
                    "CKA_EXTRACTABLE cannot be set again"
                ),
                crate::Error::Validation(_) => {
                    ckr!(CKR_TEMPLATE_INCONSISTENT, "this key cannot be a token key")
                }
                other => other.into(),
            })?;
        Ok(match copied {
            crate::token::CopiedKey::Session(id) => KeyHandle::Session(id),
            crate::token::CopiedKey::Stored(meta) => KeyHandle::Stored(meta.key_id),
        })
    }

    fn make_readable_secret(
        &self,
        token_label: Option<&str>,
        aes: bool,
        len: usize,
        value: Option<&[u8]>,
    ) -> Result<KeyHandle> {
        Ok(match (token_label, value) {
            (Some(label), value) => KeyHandle::Stored(
                self.hsm
                    .p11_create_readable_secret(label, aes, len, value, "PKCS#11 readable key")?
                    .key_id,
            ),
            (None, Some(v)) => KeyHandle::Session(self.session_keys.import_readable(v)?),
            (None, None) => KeyHandle::Session(self.session_keys.generate_readable(len)?),
        })
    }

    fn secret_value(&self, key: &KeyHandle) -> Result<Zeroizing<Vec<u8>>> {
        self.hsm
            .p11_secret_value(&self.session_keys, self.key_ref(key))
            .map_err(|e| match e {
                crate::Error::InvalidKeyUsage(_) => ckr!(CKR_ATTRIBUTE_SENSITIVE),
                other => other.into(),
            })
    }

    fn seal_secret(&self, key: &KeyHandle, unextractable: bool) -> Result<()> {
        Ok(self
            .hsm
            .p11_seal_secret(&self.session_keys, self.key_ref(key), unextractable)?)
    }

    fn copy_readable_key(
        &self,
        key: &KeyHandle,
        token_label: Option<&str>,
        aes: bool,
    ) -> Result<KeyHandle> {
        let copied = self
            .hsm
            .p11_copy_readable_secret(&self.session_keys, self.key_ref(key), aes, token_label)
            .map_err(|e| match e {
                crate::Error::InvalidKeyUsage(_) => {
                    ckr!(CKR_ATTRIBUTE_READ_ONLY, "CKA_SENSITIVE cannot be cleared")
                }
                other => other.into(),
            })?;
        Ok(match copied {
            crate::token::CopiedKey::Session(id) => KeyHandle::Session(id),
            crate::token::CopiedKey::Stored(meta) => KeyHandle::Stored(meta.key_id),
        })
    }

    fn cmac(&self, key: &KeyHandle, data: &[u8], mac_len: usize) -> Result<Vec<u8>> {
        self.hsm
            .p11_cmac(&self.session_keys, self.key_ref(key), data, mac_len)
            .map_err(cmac_error)
    }

    fn cmac_verify(&self, key: &KeyHandle, data: &[u8], mac: &[u8]) -> Result<bool> {
        self.hsm
            .p11_cmac_verify(&self.session_keys, self.key_ref(key), data, mac)
            .map_err(cmac_error)
    }

    fn ecdh_derive(
        &self,
        key: &KeyHandle,
        peer_point: &[u8],
        kdf: super::EcdhKdf,
        shared: &[u8],
        token_label: Option<&str>,
        aes: bool,
        len: usize,
        extractable: bool,
        readable: bool,
    ) -> Result<KeyHandle> {
        let new = crate::mechanisms::DerivedKeySpec {
            token: token_label,
            aes,
            len,
            extractable,
            readable,
        };
        let derived = self
            .hsm
            .p11_ecdh_derive(
                &self.session_keys,
                self.key_ref(key),
                peer_point,
                kdf,
                shared,
                new,
            )
            .map_err(|e| match e {
                crate::Error::InvalidKeyUsage(_) => ckr!(CKR_KEY_FUNCTION_NOT_PERMITTED),
                crate::Error::Validation(_) => ckr!(
                    CKR_MECHANISM_PARAM_INVALID,
                    "peer point, KDF or key length not valid"
                ),
                other => other.into(),
            })?;
        Ok(match derived {
            crate::token::CopiedKey::Session(id) => KeyHandle::Session(id),
            crate::token::CopiedKey::Stored(meta) => KeyHandle::Stored(meta.key_id),
        })
    }

    fn rsa_x509_crypt(
        &self,
        key: &KeyHandle,
        encrypt: bool,
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        self.hsm
            .p11_rsa_x509_crypt(&self.session_keys, self.key_ref(key), encrypt, data)
            .map_err(|e| match e {
                crate::Error::Validation(_) => {
                    ckr!(CKR_DATA_LEN_RANGE, "input not below the modulus")
                }
                crate::Error::InvalidKeyUsage(_) => ckr!(CKR_KEY_FUNCTION_NOT_PERMITTED),
                other => other.into(),
            })
    }

    fn import_private_key(
        &self,
        token_label: Option<&str>,
        kind: super::PrivateKind,
        pkcs8: &[u8],
        usages: PairUsages,
    ) -> Result<super::ImportedKey> {
        let made = self
            .hsm
            .p11_import_private(&self.session_keys, token_label, kind, pkcs8, usages)
            .map_err(import_error)?;
        Ok(imported(made))
    }

    fn unwrap_private_key(
        &self,
        unwrapping: &KeyHandle,
        transport: &super::KeyTransport,
        wrapped: &[u8],
        token_label: Option<&str>,
        kind: super::PrivateKind,
        usages: PairUsages,
    ) -> Result<super::ImportedKey> {
        let made = self
            .hsm
            .p11_unwrap_private(
                &self.session_keys,
                self.key_ref(unwrapping),
                transport,
                wrapped,
                token_label,
                kind,
                usages,
            )
            .map_err(unwrap_error)?;
        Ok(imported(made))
    }

    fn wrap_rsa(
        &self,
        wrapping: &KeyHandle,
        transport: &super::KeyTransport,
        target: &KeyHandle,
    ) -> Result<Vec<u8>> {
        self.hsm
            .p11_wrap_rsa(
                &self.session_keys,
                self.key_ref(wrapping),
                transport,
                self.key_ref(target),
            )
            .map_err(|e| match e {
                crate::Error::InvalidKeyUsage(m) if m.contains("extractable") => {
                    ckr!(CKR_KEY_UNEXTRACTABLE)
                }
                crate::Error::InvalidKeyUsage(_) => ckr!(CKR_KEY_FUNCTION_NOT_PERMITTED),
                crate::Error::Validation(_) => ckr!(CKR_KEY_SIZE_RANGE),
                other => other.into(),
            })
    }

    fn unwrap_secret(
        &self,
        unwrapping: &KeyHandle,
        transport: &super::KeyTransport,
        wrapped: &[u8],
        token_label: Option<&str>,
        aes: bool,
        extractable: bool,
    ) -> Result<(KeyHandle, usize)> {
        let (key, len) = self
            .hsm
            .p11_unwrap_secret(
                &self.session_keys,
                self.key_ref(unwrapping),
                transport,
                wrapped,
                token_label,
                aes,
                extractable,
            )
            .map_err(unwrap_error)?;
        Ok((copied(key), len))
    }

    fn derive(
        &self,
        base: &KeyHandle,
        other: Option<&KeyHandle>,
        op: &super::DeriveOp,
        new: &[super::NewSecret],
    ) -> Result<Vec<KeyHandle>> {
        let specs: Vec<crate::mechanisms::DerivedKeySpec<'_>> = new
            .iter()
            .map(|n| crate::mechanisms::DerivedKeySpec {
                token: n.token_label.as_deref(),
                aes: n.aes,
                len: n.len,
                extractable: n.extractable,
                readable: n.readable,
            })
            .collect();
        let made = self
            .hsm
            .p11_derive(
                &self.session_keys,
                self.key_ref(base),
                other.map(|o| self.key_ref(o)),
                op,
                &specs,
            )
            .map_err(derive_error)?;
        Ok(made
            .into_iter()
            .map(|k| match k {
                crate::token::CopiedKey::Session(id) => KeyHandle::Session(id),
                crate::token::CopiedKey::Stored(meta) => KeyHandle::Stored(meta.key_id),
            })
            .collect())
    }

    fn derive_data(
        &self,
        base: &KeyHandle,
        other: Option<&KeyHandle>,
        op: &super::DeriveOp,
        len: usize,
    ) -> Result<Zeroizing<Vec<u8>>> {
        self.hsm
            .p11_derive_data(
                &self.session_keys,
                self.key_ref(base),
                other.map(|o| self.key_ref(o)),
                op,
                len,
            )
            .map_err(derive_error)
    }

    fn ml_kem_encapsulate(
        &self,
        key: &KeyHandle,
        new: &super::NewSecret,
    ) -> Result<(Vec<u8>, KeyHandle)> {
        let (ciphertext, made) = self
            .hsm
            .p11_ml_kem_encapsulate(&self.session_keys, self.key_ref(key), new_key_spec(new))
            .map_err(kem_error)?;
        Ok((ciphertext, copied(made)))
    }

    fn ml_kem_decapsulate(
        &self,
        key: &KeyHandle,
        ciphertext: &[u8],
        new: &super::NewSecret,
    ) -> Result<KeyHandle> {
        self.hsm
            .p11_ml_kem_decapsulate(
                &self.session_keys,
                self.key_ref(key),
                ciphertext,
                new_key_spec(new),
            )
            .map(copied)
            .map_err(kem_error)
    }

    fn load_changes(&self, token: &str, since: Option<u64>) -> Result<super::ObjectChanges> {
        self.changes(token, since)
    }

    fn find_objects(
        &self,
        token: &str,
        template: &[(cryptoki_sys::CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Result<Vec<StoredObject>> {
        self.find(token, template)
    }

    fn refresh_objects(
        &self,
        token: &str,
        since: Option<u64>,
        held: &super::ChangeScope,
    ) -> Result<super::ObjectChanges> {
        self.refresh(token, since, held)
    }
}

/// What hsm-core makes a new secret key from (a derivation, a shared
/// secret).
fn new_key_spec(n: &super::NewSecret) -> crate::mechanisms::DerivedKeySpec<'_> {
    crate::mechanisms::DerivedKeySpec {
        token: n.token_label.as_deref(),
        aes: n.aes,
        len: n.len,
        extractable: n.extractable,
        readable: n.readable,
    }
}

/// The CK_RV of a failed ML-KEM call: a ciphertext of the wrong length,
/// or a key that is not an ML-KEM key.
fn kem_error(e: crate::Error) -> Pkcs11Error {
    match e {
        crate::Error::InvalidCiphertext(_) => ckr!(CKR_ENCRYPTED_DATA_LEN_RANGE),
        crate::Error::InvalidKeyUsage(_) => ckr!(CKR_KEY_TYPE_INCONSISTENT),
        crate::Error::Validation(_) => ckr!(CKR_TEMPLATE_INCONSISTENT),
        other => other.into(),
    }
}

/// The CK_RV of a failed secret-key derivation: a bad parameter or
/// length is the mechanism's parameter; a base key of the wrong kind, the
/// key's type.
fn derive_error(e: crate::Error) -> super::error::Pkcs11Error {
    match e {
        crate::Error::Validation(_) => ckr!(
            CKR_MECHANISM_PARAM_INVALID,
            "derivation parameter or length not valid"
        ),
        crate::Error::InvalidKeyUsage(_) => ckr!(
            CKR_KEY_TYPE_INCONSISTENT,
            "the base key cannot serve this derivation"
        ),
        other => other.into(),
    }
}

/// Material that is not a key of the template's type, or usages the type
/// cannot have, is the template's fault.
fn import_error(e: crate::Error) -> Pkcs11Error {
    match e {
        crate::Error::Validation(_) => ckr!(
            CKR_TEMPLATE_INCONSISTENT,
            "not a supported private key of this type, or usages it cannot have"
        ),
        other => other.into(),
    }
}

/// A wrapped key that does not unwrap, or is not of the template's type,
/// is CKR_WRAPPED_KEY_INVALID; an unwrapping key that may not decrypt,
/// CKR_KEY_FUNCTION_NOT_PERMITTED.
fn unwrap_error(e: crate::Error) -> Pkcs11Error {
    match e {
        crate::Error::InvalidCiphertext(_) => ckr!(CKR_WRAPPED_KEY_INVALID),
        crate::Error::InvalidKeyUsage(_) => ckr!(CKR_KEY_FUNCTION_NOT_PERMITTED),
        crate::Error::Validation(_) => ckr!(
            CKR_TEMPLATE_INCONSISTENT,
            "usages this key type cannot have"
        ),
        other => other.into(),
    }
}

fn copied(key: crate::token::CopiedKey) -> KeyHandle {
    match key {
        crate::token::CopiedKey::Session(id) => KeyHandle::Session(id),
        crate::token::CopiedKey::Stored(meta) => KeyHandle::Stored(meta.key_id),
    }
}

fn imported(made: crate::token::ImportedPair) -> super::ImportedKey {
    super::ImportedKey {
        key: copied(made.key),
        spec: made.spec,
        spki: made.public_key,
    }
}
