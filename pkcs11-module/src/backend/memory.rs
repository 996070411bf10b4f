//! `backend = "memory"`: a non-persistent store for the module's own tests.
//!
//! Tokens, PINs (as Argon2id hashes) and objects without key material live
//! in this process until C_Finalize. It offers no key mechanisms: it
//! exists so that slots, sessions, login, objects, find, digests and
//! random can be tested against SoftHSM without an engine.

use std::sync::Mutex;

use super::{unknown_token, Attributes, Backend, KeyHandle, StoredObject, TokenRecord, UserKind};
use crate::error::{ckr, Pkcs11Error, Result};
use crate::pin::PinRecord;

#[derive(Debug)]
struct MemToken {
    serial: String,
    label: String,
    so_pin: PinRecord,
    user_pin: Option<PinRecord>,
    objects: Vec<(String, Attributes)>,
}

/// The in-memory backend.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    tokens: Mutex<Vec<MemToken>>,
    next_id: std::sync::atomic::AtomicU64,
}

impl MemoryBackend {
    /// An empty store with no tokens.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_token<T>(&self, serial: &str, f: impl FnOnce(&mut MemToken) -> Result<T>) -> Result<T> {
        let mut tokens = self.tokens.lock().map_err(|_| poisoned())?;
        let token = tokens
            .iter_mut()
            .find(|t| t.serial == serial)
            .ok_or_else(unknown_token)?;
        f(token)
    }

    fn new_id(&self) -> String {
        let n = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("obj-{n}")
    }
}

fn poisoned() -> Pkcs11Error {
    Pkcs11Error::General("memory backend lock poisoned".into())
}

impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let tokens = self.tokens.lock().map_err(|_| poisoned())?;
        Ok(tokens
            .iter()
            .map(|t| TokenRecord {
                serial: t.serial.clone(),
                label: t.label.clone(),
                user_pin_initialized: t.user_pin.is_some(),
                pin_flags: t.so_pin.flags(false) | t.user_pin.as_ref().map_or(0, |p| p.flags(true)),
            })
            .collect())
    }

    fn init_token(&self, existing: Option<&str>, label: &str, so_pin: &[u8]) -> Result<String> {
        if let Some(serial) = existing {
            return self.with_token(serial, |t| {
                t.so_pin.check(so_pin)?;
                t.label = label.to_string();
                t.user_pin = None;
                t.objects.clear();
                Ok(t.serial.clone())
            });
        }
        let so_pin = PinRecord::new(so_pin)?;
        let mut tokens = self.tokens.lock().map_err(|_| poisoned())?;
        let mut raw = [0u8; 8];
        self.generate_random(&mut raw)?;
        let serial: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        tokens.push(MemToken {
            serial: serial.clone(),
            label: label.to_string(),
            so_pin,
            user_pin: None,
            objects: Vec::new(),
        });
        Ok(serial)
    }

    fn login(&self, token: &str, user: UserKind, pin: &[u8]) -> Result<()> {
        self.with_token(token, |t| match user {
            UserKind::So => t.so_pin.check(pin),
            UserKind::User => t
                .user_pin
                .as_mut()
                .ok_or(ckr!(CKR_USER_PIN_NOT_INITIALIZED))?
                .check(pin),
        })
    }

    fn init_pin(&self, token: &str, pin: &[u8]) -> Result<()> {
        let record = PinRecord::new(pin)?;
        self.with_token(token, |t| {
            t.user_pin = Some(record);
            Ok(())
        })
    }

    fn set_pin(&self, token: &str, user: UserKind, old: &[u8], new: &[u8]) -> Result<()> {
        let record = PinRecord::new(new)?;
        self.with_token(token, |t| {
            let slot = match user {
                UserKind::So => &mut t.so_pin,
                UserKind::User => t
                    .user_pin
                    .as_mut()
                    .ok_or(ckr!(CKR_USER_PIN_NOT_INITIALIZED))?,
            };
            slot.check(old)?;
            *slot = record;
            Ok(())
        })
    }

    fn load_objects(&self, token: &str) -> Result<Vec<StoredObject>> {
        self.with_token(token, |t| {
            Ok(t.objects
                .iter()
                .map(|(id, attrs)| StoredObject {
                    id: id.clone(),
                    attrs: attrs.clone(),
                    key: None,
                })
                .collect())
        })
    }

    fn store_object(
        &self,
        token: &str,
        attrs: &Attributes,
        key: Option<&KeyHandle>,
    ) -> Result<String> {
        if key.is_some() {
            return Err(ckr!(
                CKR_FUNCTION_NOT_SUPPORTED,
                "this backend holds no keys"
            ));
        }
        let id = self.new_id();
        self.with_token(token, |t| {
            t.objects.push((id.clone(), attrs.clone()));
            Ok(id)
        })
    }

    fn update_object(&self, token: &str, id: &str, attrs: &Attributes) -> Result<()> {
        self.with_token(token, |t| {
            let entry = t
                .objects
                .iter_mut()
                .find(|(i, _)| i == id)
                .ok_or(ckr!(CKR_OBJECT_HANDLE_INVALID))?;
            entry.1 = attrs.clone();
            Ok(())
        })
    }

    fn destroy_object(&self, token: &str, id: &str) -> Result<()> {
        self.with_token(token, |t| {
            let before = t.objects.len();
            t.objects.retain(|(i, _)| i != id);
            if t.objects.len() == before {
                return Err(ckr!(CKR_OBJECT_HANDLE_INVALID));
            }
            Ok(())
        })
    }

    fn generate_random(&self, out: &mut [u8]) -> Result<()> {
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), out)
            .map_err(|_| ckr!(CKR_DEVICE_ERROR, "no randomness"))
    }
}
