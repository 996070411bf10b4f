//! The PKCS#11 token over the engine, without FFI: the storage and crypto
//! side of libtinfoil_pkcs11 behind one trait ([`Backend`]), its error
//! ([`Pkcs11Error`], carrying the `CK_RV`), object attributes
//! ([`attrs`]), the mechanism registry ([`registry`]), the names the audit
//! log gives calls ([`audit`]), public-key and post-quantum attributes
//! ([`pubkey`], [`pq`]) and the embedded backend ([`embedded`]) that runs
//! it all over [`crate::Hsm`].
//!
//! Two front doors use it: the PKCS#11 module (libtinfoil_pkcs11, whose C
//! layer and session logic never touch key material: they hold object
//! attributes and a backend key reference, and ask the backend for every
//! cryptographic operation) and tinfoild, which serves the module's
//! `daemon` backend with an [`embedded::EmbeddedBackend`] per client
//! connection. The backends: `memory` (a non-persistent store for the
//! module's own tests, with no key mechanisms, in the module), `embedded`
//! (here: hsm-core in-process) and `daemon` (in the module: tinfoild over
//! gRPC, every method one request). Only plain data types and constants
//! of PKCS#11 (`cryptoki-sys`) are used here: no C entry point, no
//! `unsafe`.

use std::collections::BTreeMap;

use cryptoki_sys::*;

pub mod attrs;
pub mod audit;
pub mod embedded;
pub mod error;
pub mod pin;
pub mod pq;
pub mod pubkey;
pub mod registry;

pub use error::{ckr, Pkcs11Error, Result};

pub use crate::mechanisms::{AesMode, EcdhKdf, RawSign, WrapMode};
pub use crate::mechanisms::{DeriveOp, HkdfSalt, KbkdfField, Prf};
pub use crate::token::{KeyTransport, PairUsages, PrivateKind};
pub use crate::{KeySpec, KeyUsage};

/// The `cryptoki-sys` crate: the PKCS#11 types and constants this module
/// speaks in (for [`ckr!`], and for crates that convert its types).
pub use cryptoki_sys as sys;

/// PKCS#11 attributes as stored: type → raw value bytes.
pub type Attributes = BTreeMap<CK_ATTRIBUTE_TYPE, Vec<u8>>;

/// Who logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserKind {
    /// The security officer (CKU_SO).
    So,
    /// The normal user (CKU_USER).
    User,
}

/// What the backend knows about one initialised token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Stable identifier of the token (its serial number, ≤ 16 chars).
    pub serial: String,
    /// The label given at C_InitToken (≤ 32 bytes).
    pub label: String,
    /// Whether C_InitPIN has set a user PIN.
    pub user_pin_initialized: bool,
    /// PIN flags (CKF_USER_PIN_*, CKF_SO_PIN_*) for CK_TOKEN_INFO.
    pub pin_flags: CK_FLAGS,
}

/// The backend's handle on key material (the module never sees the bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyHandle {
    /// A token key: a KMS key id.
    Stored(String),
    /// A session key, alive until destroyed or C_Finalize.
    Session(u64),
}

/// An object persisted on a token, as the backend returns it.
#[derive(Debug, Clone)]
pub struct StoredObject {
    /// The backend's id of the object.
    pub id: String,
    /// Its attributes. Never holds CKA_VALUE of a secret or private key.
    pub attrs: Attributes,
    /// The key material it names, for key objects.
    pub key: Option<KeyHandle>,
}

/// A private key an import or unwrap made.
#[derive(Debug, Clone)]
pub struct ImportedKey {
    /// The key.
    pub key: KeyHandle,
    /// Its spec.
    pub spec: KeySpec,
    /// Its DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
}

/// A secret key a derivation makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSecret {
    /// The token's label for a token key; `None`: a session key.
    pub token_label: Option<String>,
    /// An AES key (else a generic secret).
    pub aes: bool,
    /// Its length in bytes.
    pub len: usize,
    /// CKA_EXTRACTABLE.
    pub extractable: bool,
    /// CKA_SENSITIVE false with CKA_EXTRACTABLE true: readable.
    pub readable: bool,
}

/// The part of a token's objects some changes touched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeScope {
    /// Keys (KMS key ids): every object naming one of them.
    pub keys: Vec<String>,
    /// Object ids.
    pub objects: Vec<String>,
}

/// A token's objects as they changed since a generation.
#[derive(Debug, Clone)]
pub struct ObjectChanges {
    /// The generation they are current at.
    pub generation: u64,
    /// `None`: `objects` is the token's whole set. `Some`: the current
    /// objects within the scope (nothing else changed).
    pub scope: Option<ChangeScope>,
    /// The objects.
    pub objects: Vec<StoredObject>,
}

/// Everything the module needs from a store. All methods are synchronous
/// and may be called from many threads at once.
pub trait Backend: Send + Sync {
    /// A short name for messages ("memory", "embedded", "daemon").
    fn name(&self) -> &'static str;

    /// The initialised tokens, in a stable order.
    fn tokens(&self) -> Result<Vec<TokenRecord>>;

    /// Creates a new token, or re-initialises `existing` (its objects are
    /// destroyed) after checking its SO PIN. Returns the token's serial.
    fn init_token(&self, existing: Option<&str>, label: &str, so_pin: &[u8]) -> Result<String>;

    /// Checks a PIN, counting failures and locking as the token's policy
    /// says. Errors: CKR_PIN_INCORRECT, CKR_PIN_LOCKED,
    /// CKR_USER_PIN_NOT_INITIALIZED.
    fn login(&self, token: &str, user: UserKind, pin: &[u8]) -> Result<()>;

    /// Sets (or resets and unlocks) the user PIN; the caller has checked
    /// that the SO is logged in.
    fn init_pin(&self, token: &str, pin: &[u8]) -> Result<()>;

    /// Changes a PIN after checking the old one (failures count).
    fn set_pin(&self, token: &str, user: UserKind, old: &[u8], new: &[u8]) -> Result<()>;

    /// The objects stored on a token.
    fn load_objects(&self, token: &str) -> Result<Vec<StoredObject>>;

    /// Stores a new object; `key` links a key object to its material.
    /// Returns the object's id.
    fn store_object(
        &self,
        token: &str,
        attrs: &Attributes,
        key: Option<&KeyHandle>,
    ) -> Result<String>;

    /// Replaces the stored attributes of an object.
    fn update_object(&self, token: &str, id: &str, attrs: &Attributes) -> Result<()>;

    /// Removes an object. For a key this schedules deletion (the KMS
    /// window) rather than destroying at once.
    fn destroy_object(&self, token: &str, id: &str) -> Result<()>;

    /// Fills `out` with random bytes.
    fn generate_random(&self, out: &mut [u8]) -> Result<()>;

    /// Whether key generation and key operations are available. The
    /// defaults below say the mechanism is not, so a backend only
    /// implements what it offers.
    fn supports_key_mechanisms(&self) -> bool {
        false
    }

    /// Generates a secret key (AES when `aes`, else an HMAC key) of `len`
    /// bytes: a token key in the namespace of the token labelled
    /// `token_label`, or a session key.
    fn generate_secret_key(
        &self,
        _token_label: Option<&str>,
        _aes: bool,
        _len: usize,
        _extractable: bool,
    ) -> Result<KeyHandle> {
        Err(no_keys())
    }

    /// Imports a secret key value the application supplied.
    fn import_secret_key(
        &self,
        _token_label: Option<&str>,
        _aes: bool,
        _value: &[u8],
        _extractable: bool,
    ) -> Result<KeyHandle> {
        Err(no_keys())
    }

    /// HMAC-SHA-2 (named by the digest length) of `data`.
    fn hmac(&self, _key: &KeyHandle, _hash_len: usize, _data: &[u8]) -> Result<Vec<u8>> {
        Err(no_keys())
    }

    /// Checks an HMAC in constant time.
    fn hmac_verify(
        &self,
        _key: &KeyHandle,
        _hash_len: usize,
        _data: &[u8],
        _mac: &[u8],
    ) -> Result<bool> {
        Err(no_keys())
    }

    /// Destroys a session key; for a token key, schedules its deletion.
    fn destroy_key(&self, _key: &KeyHandle) -> Result<()> {
        Err(no_keys())
    }

    /// Length in bytes of a secret key.
    fn secret_len(&self, _key: &KeyHandle) -> Result<usize> {
        Err(no_keys())
    }

    /// One raw AES operation.
    fn aes(
        &self,
        _key: &KeyHandle,
        _mode: &AesMode,
        _encrypt: bool,
        _data: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        Err(no_keys())
    }

    /// RSA-OAEP (SHA-256 or SHA-1) with a token key pair and a label
    /// (pSourceData; empty: none).
    fn rsa_oaep(
        &self,
        _key: &KeyHandle,
        _sha256: bool,
        _encrypt: bool,
        _data: &[u8],
        _label: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        Err(no_keys())
    }

    /// Wraps an extractable secret key.
    fn wrap(&self, _wrapping: &KeyHandle, _mode: WrapMode, _target: &KeyHandle) -> Result<Vec<u8>> {
        Err(no_keys())
    }

    /// Generates a token key pair with `usages` in the namespace of the
    /// token labelled `token_label`; returns the key and its DER
    /// SubjectPublicKeyInfo.
    fn generate_key_pair(
        &self,
        _token_label: &str,
        _spec: KeySpec,
        _usages: PairUsages,
    ) -> Result<(KeyHandle, Vec<u8>)> {
        Err(no_keys())
    }

    /// Generates an RSA key pair of `bits` (a size without a key spec of
    /// its own: RSA_OTHER_SIZE) with `usages`, on the token labelled
    /// `token_label` (empty: a session pair); returns the key and its DER
    /// SubjectPublicKeyInfo.
    fn generate_rsa_key_pair(
        &self,
        _token_label: &str,
        _bits: u32,
        _usages: PairUsages,
    ) -> Result<(KeyHandle, Vec<u8>)> {
        Err(no_keys())
    }

    /// A raw signature on input prepared as `how` says.
    fn sign(&self, _key: &KeyHandle, _how: RawSign, _input: &[u8]) -> Result<Vec<u8>> {
        Err(no_keys())
    }

    /// Checks a raw signature; `Ok(false)` when it does not verify.
    fn verify(
        &self,
        _key: &KeyHandle,
        _how: RawSign,
        _input: &[u8],
        _signature: &[u8],
    ) -> Result<bool> {
        Err(no_keys())
    }

    /// Unwraps an AES key into a new key: a token key in the namespace of
    /// the token labelled `token_label`, or a session key. Returns it and
    /// its length.
    fn unwrap(
        &self,
        _unwrapping: &KeyHandle,
        _mode: WrapMode,
        _wrapped: &[u8],
        _token_label: Option<&str>,
        _extractable: bool,
    ) -> Result<(KeyHandle, usize)> {
        Err(no_keys())
    }

    /// The store's change counter: it moves whenever a key or a stored
    /// object changes, by this module or anyone else (the CLI, the KMS
    /// API, another process on the same daemon). Before a search the
    /// module brings the objects it holds up to date
    /// ([`Backend::refresh_objects`]) when it moved since the last time.
    /// Only equality means anything. A store no one else changes may keep
    /// it constant.
    fn generation(&self) -> Result<u64> {
        Ok(0)
    }

    /// CKM_RSA_PKCS (RSAES-PKCS1-v1_5) encryption or decryption with a
    /// token key pair of usage ENCRYPT_DECRYPT. Input too long to encrypt
    /// is CKR_DATA_LEN_RANGE; every decryption failure is
    /// CKR_ENCRYPTED_DATA_INVALID.
    fn rsa_pkcs1_crypt(
        &self,
        _key: &KeyHandle,
        _encrypt: bool,
        _data: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        Err(no_keys())
    }

    /// CKM_RSA_X_509 (raw RSA, no padding) encryption (the public
    /// operation) or decryption (the private one) with a key pair of usage
    /// ENCRYPT_DECRYPT: input of at most k bytes below the modulus (else
    /// CKR_DATA_LEN_RANGE), output k bytes.
    fn rsa_x509_crypt(
        &self,
        _key: &KeyHandle,
        _encrypt: bool,
        _data: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        Err(no_keys())
    }

    /// Copies a secret key into a new key with the same material (made
    /// inside the backend): a token key in the namespace of the token
    /// labelled `token_label`, or a session key. The copy may be
    /// extractable only if the source is (CKR_ATTRIBUTE_READ_ONLY).
    fn copy_key(
        &self,
        _key: &KeyHandle,
        _token_label: Option<&str>,
        _aes: bool,
        _extractable: bool,
    ) -> Result<KeyHandle> {
        Err(no_keys())
    }

    /// Makes a secret key whose value may be read (CKA_SENSITIVE false,
    /// CKA_EXTRACTABLE true): generated (`value` `None`) or imported; a
    /// token key in the namespace of the token labelled `token_label`, or
    /// a session key.
    fn make_readable_secret(
        &self,
        _token_label: Option<&str>,
        _aes: bool,
        _len: usize,
        _value: Option<&[u8]>,
    ) -> Result<KeyHandle> {
        Err(no_keys())
    }

    /// The value of a key made readable (CKR_ATTRIBUTE_SENSITIVE for any
    /// other).
    fn secret_value(&self, _key: &KeyHandle) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        Err(no_keys())
    }

    /// Takes readability (and with `unextractable`, extractability) away
    /// from a secret key for good.
    fn seal_secret(&self, _key: &KeyHandle, _unextractable: bool) -> Result<()> {
        Err(no_keys())
    }

    /// Copies a readable secret key into a new readable key.
    fn copy_readable_key(
        &self,
        _key: &KeyHandle,
        _token_label: Option<&str>,
        _aes: bool,
    ) -> Result<KeyHandle> {
        Err(no_keys())
    }

    /// Whether this backend lacks a mechanism the registry lists (it is
    /// then neither listed nor accepted).
    fn lacks(&self, _mechanism: CK_MECHANISM_TYPE) -> bool {
        false
    }

    /// A derivation from a secret base key (and `other`: the second key of
    /// CKM_CONCATENATE_BASE_AND_KEY or an HKDF salt key) into new secret
    /// keys, one per entry of `new` (several only for SP 800-108), all or
    /// nothing.
    fn derive(
        &self,
        _base: &KeyHandle,
        _other: Option<&KeyHandle>,
        _op: &DeriveOp,
        _new: &[NewSecret],
    ) -> Result<Vec<KeyHandle>> {
        Err(no_keys())
    }

    /// CKM_HKDF_DATA: the `len` derived bytes themselves.
    fn derive_data(
        &self,
        _base: &KeyHandle,
        _other: Option<&KeyHandle>,
        _op: &DeriveOp,
        _len: usize,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        Err(no_keys())
    }

    /// AES-CMAC of `data`, its first `mac_len` bytes.
    fn cmac(&self, _key: &KeyHandle, _data: &[u8], _mac_len: usize) -> Result<Vec<u8>> {
        Err(no_keys())
    }

    /// Checks an AES-CMAC in constant time.
    fn cmac_verify(&self, _key: &KeyHandle, _data: &[u8], _mac: &[u8]) -> Result<bool> {
        Err(no_keys())
    }

    /// ECDH of a key pair that may derive with a peer's public point,
    /// through `kdf`, into a new secret key: a token key in the namespace
    /// of the token labelled `token_label`, or a session key.
    #[allow(clippy::too_many_arguments)]
    fn ecdh_derive(
        &self,
        _key: &KeyHandle,
        _peer_point: &[u8],
        _kdf: EcdhKdf,
        _shared: &[u8],
        _token_label: Option<&str>,
        _aes: bool,
        _len: usize,
        _extractable: bool,
        _readable: bool,
    ) -> Result<KeyHandle> {
        Err(no_keys())
    }

    /// C_EncapsulateKey with an ML-KEM key pair (token or session): a
    /// fresh shared secret made into the secret key `new` describes, and
    /// its ciphertext.
    fn ml_kem_encapsulate(
        &self,
        _key: &KeyHandle,
        _new: &NewSecret,
    ) -> Result<(Vec<u8>, KeyHandle)> {
        Err(no_keys())
    }

    /// C_DecapsulateKey with an ML-KEM key pair: the shared secret of
    /// `ciphertext` made into the secret key `new` describes.
    fn ml_kem_decapsulate(
        &self,
        _key: &KeyHandle,
        _ciphertext: &[u8],
        _new: &NewSecret,
    ) -> Result<KeyHandle> {
        Err(no_keys())
    }

    /// Imports a private key (a PKCS#8 PrivateKeyInfo of `kind`) with
    /// `usages`: a token key in the namespace of the token labelled
    /// `token_label`, or a session key pair. Returns it, its spec and its
    /// DER SubjectPublicKeyInfo.
    fn import_private_key(
        &self,
        _token_label: Option<&str>,
        _kind: PrivateKind,
        _pkcs8: &[u8],
        _usages: PairUsages,
    ) -> Result<ImportedKey> {
        Err(no_keys())
    }

    /// Unwraps a PKCS#8 PrivateKeyInfo of `kind` and imports it as
    /// [`Backend::import_private_key`] does.
    #[allow(clippy::too_many_arguments)]
    fn unwrap_private_key(
        &self,
        _unwrapping: &KeyHandle,
        _transport: &KeyTransport,
        _wrapped: &[u8],
        _token_label: Option<&str>,
        _kind: PrivateKind,
        _usages: PairUsages,
    ) -> Result<ImportedKey> {
        Err(no_keys())
    }

    /// Wraps an extractable secret key under an RSA key pair.
    fn wrap_rsa(
        &self,
        _wrapping: &KeyHandle,
        _transport: &KeyTransport,
        _target: &KeyHandle,
    ) -> Result<Vec<u8>> {
        Err(no_keys())
    }

    /// Unwraps a secret key wrapped under an AES key or an RSA key pair
    /// into a new key (AES when `aes`, else a generic secret): a token key
    /// in the namespace of the token labelled `token_label`, or a session
    /// key. Returns it and its length.
    #[allow(clippy::too_many_arguments)]
    fn unwrap_secret(
        &self,
        _unwrapping: &KeyHandle,
        _transport: &KeyTransport,
        _wrapped: &[u8],
        _token_label: Option<&str>,
        _aes: bool,
        _extractable: bool,
    ) -> Result<(KeyHandle, usize)> {
        Err(no_keys())
    }

    /// Runs `body`, one PKCS#11 entry point that touches a token key, as
    /// the call the audit log records (see [`audit`]): the embedded
    /// backend records it in its store's chain, durably before this
    /// returns, and fails the call when the record cannot be written. The
    /// default runs it unrecorded: the memory backend keeps no log and
    /// tinfoild records the daemon backend's calls itself.
    fn audited(
        &self,
        call: &audit::AuditedCall<'_>,
        body: &mut dyn FnMut() -> Result<()>,
    ) -> Result<()> {
        let _ = call;
        body()
    }

    /// The objects stored on a token that match `template` exactly (every
    /// (type, value) of it equal; an empty template matches them all), as
    /// [`Backend::load_objects`] gives them. The embedded backend reads
    /// only what the template may match, through the store's indexes;
    /// this default filters the whole set.
    fn find_objects(
        &self,
        token: &str,
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Result<Vec<StoredObject>> {
        Ok(self
            .load_objects(token)?
            .into_iter()
            .filter(|o| template.iter().all(|(t, v)| o.attrs.get(t) == Some(v)))
            .collect())
    }

    /// [`Backend::find_objects`] with the store's generation
    /// ([`Backend::generation`]) read before the search: one call.
    fn find_objects_now(
        &self,
        token: &str,
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Result<(u64, Vec<StoredObject>)> {
        let generation = self.generation()?;
        Ok((generation, self.find_objects(token, template)?))
    }

    /// The current state of objects a caller holds, `held` naming their
    /// ids and the keys they name: the objects of what changed since
    /// generation `since` when the store can tell (`scope` `Some`: what
    /// that covers; the caller updates only the objects it holds), else
    /// (`scope` `None`) the current objects of `held`. Never the token's
    /// whole set beyond what `held` names. This default filters the whole
    /// set.
    fn refresh_objects(
        &self,
        token: &str,
        since: Option<u64>,
        held: &ChangeScope,
    ) -> Result<ObjectChanges> {
        let _ = since;
        let generation = self.generation()?;
        let objects = self
            .load_objects(token)?
            .into_iter()
            .filter(|o| {
                held.objects.contains(&o.id)
                    || matches!(&o.key, Some(KeyHandle::Stored(k)) if held.keys.contains(k))
            })
            .collect();
        Ok(ObjectChanges {
            generation,
            scope: None,
            objects,
        })
    }

    /// A token's objects as they changed since generation `since` (`None`:
    /// all of them): only the objects of the keys and rows changed since
    /// then when the store can tell, else the whole set. The module no
    /// longer calls it (it searches, [`Backend::find_objects`], and
    /// refreshes what it holds, [`Backend::refresh_objects`]); tinfoild
    /// still serves it to older modules.
    fn load_changes(&self, token: &str, since: Option<u64>) -> Result<ObjectChanges> {
        let _ = since;
        let generation = self.generation()?;
        Ok(ObjectChanges {
            generation,
            scope: None,
            objects: self.load_objects(token)?,
        })
    }
}

fn no_keys() -> Pkcs11Error {
    ckr!(CKR_FUNCTION_NOT_SUPPORTED, "this backend holds no keys")
}

/// The error a backend returns for a token it does not know.
pub fn unknown_token() -> Pkcs11Error {
    ckr!(CKR_TOKEN_NOT_RECOGNIZED, "unknown token")
}
