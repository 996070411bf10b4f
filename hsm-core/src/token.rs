//! PKCS#11 tokens: key namespaces with a label, an SO PIN and a user PIN
//! (Argon2id hashes with failure counters), and the PKCS#11 attributes of
//! the objects on them, in the engine's own terms. The PKCS#11 vocabulary
//! over it (CK_* attributes, CK_RV errors, the backend trait) is
//! [`crate::pkcs11`], whose embedded backend libtinfoil_pkcs11 runs
//! in-process and tinfoild serves the module's daemon backend with.
//!
//! A token's keys are ordinary KMS keys whose `token` is the token's label,
//! so they show in ListKeys and obey the KMS lifecycle. The object rows
//! hold only attributes (CKA_ID, CKA_LABEL, ...) as the application set
//! them, never key material. Session (ephemeral) secret keys live in a
//! [`SessionKeys`] table the caller owns; the raw mechanisms that use them
//! are in [`crate::mechanisms`].

use aws_lc_rs::constant_time::verify_slices_are_equal;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::hsm::Hsm;
use crate::mechanisms::{check_aes_len, random_bytes};
use crate::outputs::CreateKeyRequest;
use crate::store::engine::{vals, Db, Row};
use crate::store::pg;
use crate::types::{KeyMetadata, KeySpec, KeyUsage, Origin};

mod copy;
mod import;
mod private_export;
mod readable;
mod rows;
pub(crate) mod search;
mod session_keys;
mod session_pairs;
pub use copy::CopiedKey;
pub use import::{ImportedPair, KeyTransport, PrivateKind};
pub use readable::READABLE_TAG;
pub use rows::MAX_TOUCHED;
pub use search::ObjectQuery;
pub use session_keys::{SessionKeyBudget, SessionKeys, MAX_SESSION_KEYS};

/// Wrong tries in a row that lock a PIN.
pub const MAX_PIN_FAILURES: u32 = 5;
/// Shortest PIN, in bytes.
pub const MIN_PIN_LEN: usize = 4;
/// Longest PIN, in bytes.
pub const MAX_PIN_LEN: usize = 64;
/// Longest token label, in bytes.
pub const MAX_LABEL_LEN: usize = 32;
/// Largest attribute blob of one object, in bytes.
pub const MAX_ATTRS_LEN: usize = 256 * 1024;
/// Longest object id, in bytes (the module's are 24 hex digits or
/// `kms:` and a key id with a suffix).
pub const MAX_OBJECT_ID_LEN: usize = 256;

const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;

/// A token as PKCS#11 shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The token's serial number (16 hex digits).
    pub serial: String,
    /// The label given at C_InitToken; also the namespace of its keys.
    pub label: String,
    /// Whether a user PIN is set.
    pub user_pin_initialized: bool,
    /// Consecutive wrong SO PINs.
    pub so_failures: u32,
    /// Consecutive wrong user PINs.
    pub user_failures: u32,
}

/// Why a PIN operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The PIN is wrong (the counter went up).
    #[error("PIN incorrect")]
    Incorrect,
    /// Too many wrong PINs: locked.
    #[error("PIN locked")]
    Locked,
    /// No user PIN was set yet.
    #[error("user PIN not initialised")]
    NotInitialized,
    /// The PIN is shorter or longer than allowed.
    #[error("PIN length out of range")]
    LengthRange,
    /// Anything else.
    #[error(transparent)]
    Engine(#[from] Error),
}

/// One object row of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRow {
    /// The object's id.
    pub object_id: String,
    /// The KMS key the object is, if it is a key.
    pub key_id: Option<String>,
    /// Its PKCS#11 attributes, encoded by the caller.
    pub attrs: Vec<u8>,
}

/// Which PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinUser {
    /// The security officer.
    So,
    /// The normal user.
    User,
}

fn pin_hash(pin: &[u8], salt: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let params = argon2::Params::new(8 * 1024, 2, 1, Some(HASH_LEN))
        .map_err(|_| Error::Internal("bad Argon2 parameters".into()))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new(vec![0u8; HASH_LEN]);
    argon
        .hash_password_into(pin, salt, &mut out)
        .map_err(|_| Error::Internal("PIN hashing failed".into()))?;
    Ok(out)
}

/// A fresh salt || Argon2id(PIN) record.
fn new_pin_record(pin: &[u8]) -> std::result::Result<Vec<u8>, PinError> {
    if pin.len() < MIN_PIN_LEN || pin.len() > MAX_PIN_LEN {
        return Err(PinError::LengthRange);
    }
    let mut record = vec![0u8; SALT_LEN];
    aws_lc_rs::rand::fill(&mut record).map_err(|_| Error::Internal("no randomness".into()))?;
    let hash = pin_hash(pin, &record)?;
    record.extend_from_slice(&hash);
    Ok(record)
}

fn pin_matches(pin: &[u8], record: &[u8]) -> Result<bool> {
    if record.len() != SALT_LEN + HASH_LEN {
        return Err(Error::Internal("stored PIN record is malformed".into()));
    }
    let hash = pin_hash(pin, &record[..SALT_LEN])?;
    Ok(verify_slices_are_equal(&hash, &record[SALT_LEN..]).is_ok())
}

fn label_taken(label: &str) -> Error {
    Error::AlreadyExists(format!("a token labelled {label:?} exists"))
}

/// Refuses `label` if a token other than `serial` has it, as committed.
fn require_label_free(tx: &Db<'_>, label: &str, serial: &str) -> Result<()> {
    let taken = tx.first(
        "SELECT serial FROM p11_tokens WHERE label = ?1 AND serial <> ?2",
        &vals![label, serial],
        |_| Ok(()),
    )?;
    match taken {
        Some(()) => Err(label_taken(label)),
        None => Ok(()),
    }
}

/// An object row (object_id, key_id, attrs).
pub(crate) fn object_row(r: &Row<'_>) -> Result<ObjectRow> {
    Ok(ObjectRow {
        object_id: r.get(0)?,
        key_id: r.get(1)?,
        attrs: r.get(2)?,
    })
}

fn check_label(label: &str) -> Result<()> {
    if label.is_empty()
        || label.len() > MAX_LABEL_LEN
        || !label.chars().all(|c| c.is_ascii_graphic() || c == ' ')
    {
        return Err(Error::validation(
            "a token label must be 1 to 32 printable ASCII characters",
        ));
    }
    Ok(())
}

impl Hsm {
    /// The initialised tokens, oldest first.
    pub fn token_list(&self) -> Result<Vec<TokenInfo>> {
        self.read_store(false, |db| {
            db.all(
                "SELECT serial, label, CASE WHEN user_pin IS NULL THEN 0 ELSE 1 END,
                        so_failures, user_failures
                 FROM p11_tokens ORDER BY created, serial",
                &[],
                |r| {
                    Ok(TokenInfo {
                        serial: r.get(0)?,
                        label: r.get(1)?,
                        user_pin_initialized: r.get::<i64>(2)? != 0,
                        so_failures: r.get(3)?,
                        user_failures: r.get(4)?,
                    })
                },
            )
        })
    }

    /// Creates a token, or re-initialises `existing` after checking its SO
    /// PIN: its objects go and its keys are scheduled for deletion (7 days).
    /// Returns the serial. The label must be free (checked again inside
    /// the write, so two nodes cannot take one label at once).
    pub fn token_init(
        &self,
        existing: Option<&str>,
        label: &str,
        so_pin: &[u8],
    ) -> std::result::Result<String, PinError> {
        check_label(label)?;
        let taken = self.token_list()?;
        if taken
            .iter()
            .any(|t| t.label == label && Some(t.serial.as_str()) != existing)
        {
            return Err(label_taken(label).into());
        }
        if let Some(serial) = existing {
            self.token_check_pin(serial, PinUser::So, so_pin)?;
            let old = taken
                .iter()
                .find(|t| t.serial == serial)
                .ok_or_else(|| Error::NotFound(format!("token {serial}")))?;
            for key in self.list_token_keys(&old.label)? {
                if key.key_state != crate::types::KeyState::PendingDeletion {
                    self.schedule_key_deletion(&key.key_id, Some(7))?;
                }
            }
            let record = new_pin_record(so_pin)?;
            self.lock_store().write(|tx| {
                require_label_free(tx, label, serial)?;
                pg::notify(tx, pg::TOKENS)?;
                tx.execute("DELETE FROM p11_objects WHERE token = ?1", &vals![serial])?;
                tx.execute(
                    "UPDATE p11_tokens SET label = ?2, so_pin = ?3, so_failures = 0,
                     user_pin = NULL, user_failures = 0 WHERE serial = ?1",
                    &vals![serial, label, &record],
                )?;
                Ok(())
            })?;
            self.bump_generation(crate::changes::Change::All);
            return Ok(serial.to_string());
        }
        let record = new_pin_record(so_pin)?;
        let mut raw = [0u8; 8];
        aws_lc_rs::rand::fill(&mut raw).map_err(|_| Error::Internal("no randomness".into()))?;
        let serial: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let now = self.now();
        self.lock_store().write(|tx| {
            require_label_free(tx, label, &serial)?;
            pg::notify(tx, pg::TOKENS)?;
            tx.execute(
                "INSERT INTO p11_tokens (serial, label, created, so_pin, so_failures, user_pin, user_failures)
                 VALUES (?1, ?2, ?3, ?4, 0, NULL, 0)",
                &vals![&serial, label, now, &record],
            )?;
            Ok(())
        })?;
        self.bump_generation(crate::changes::Change::All);
        Ok(serial)
    }

    /// Checks a PIN, counting failures; a locked PIN is refused unchecked.
    /// The counter moves inside the write (`failures + 1`, or 0), so wrong
    /// PINs tried at once, on one node or several, all count. PIN rows are
    /// read on every use (never cached), so they need no notification.
    pub fn token_check_pin(
        &self,
        serial: &str,
        who: PinUser,
        pin: &[u8],
    ) -> std::result::Result<(), PinError> {
        let (pin_col, fail_col) = match who {
            PinUser::So => ("so_pin", "so_failures"),
            PinUser::User => ("user_pin", "user_failures"),
        };
        let read = format!("SELECT {pin_col}, {fail_col} FROM p11_tokens WHERE serial = ?1");
        let row = |db: &Db<'_>| -> Result<Option<(Option<Vec<u8>>, u32)>> {
            db.first(&read, &vals![serial], |r| Ok((r.get(0)?, r.get(1)?)))
        };
        let (record, failures) = self
            .read_store(false, row)?
            .ok_or_else(|| Error::NotFound(format!("token {serial}")))?;
        let record = record.ok_or(PinError::NotInitialized)?;
        if failures >= MAX_PIN_FAILURES {
            return Err(PinError::Locked);
        }
        let ok = pin_matches(pin, &record)?;
        self.lock_store().write(|tx| {
            // As committed, under the write lock: the PIN checked against
            // must still be the PIN, and the counter is what it is now.
            let Some((Some(current), failures)) = row(tx)? else {
                return Ok(Err(PinError::NotInitialized));
            };
            if failures >= MAX_PIN_FAILURES {
                return Ok(Err(PinError::Locked));
            }
            if current != record {
                // Changed since it was read: the PIN given is not it.
                return Ok(Err(PinError::Incorrect));
            }
            let failures = if ok { 0 } else { failures + 1 };
            tx.execute(
                &format!("UPDATE p11_tokens SET {fail_col} = ?2 WHERE serial = ?1"),
                &vals![serial, failures],
            )?;
            Ok(match (ok, failures >= MAX_PIN_FAILURES) {
                (true, _) => Ok(()),
                (false, true) => Err(PinError::Locked),
                (false, false) => Err(PinError::Incorrect),
            })
        })?
    }

    /// Sets a PIN (C_InitPIN for the user, or after C_SetPIN checked the
    /// old one) and clears its counter.
    pub fn token_set_pin(
        &self,
        serial: &str,
        who: PinUser,
        pin: &[u8],
    ) -> std::result::Result<(), PinError> {
        let record = new_pin_record(pin)?;
        let sql = match who {
            PinUser::So => "UPDATE p11_tokens SET so_pin = ?2, so_failures = 0 WHERE serial = ?1",
            PinUser::User => {
                "UPDATE p11_tokens SET user_pin = ?2, user_failures = 0 WHERE serial = ?1"
            }
        };
        let changed = self
            .lock_store()
            .write(|tx| tx.execute(sql, &vals![serial, &record]))?;
        if changed == 0 {
            return Err(Error::NotFound(format!("token {serial}")).into());
        }
        Ok(())
    }

    /// The object rows of a token, in the order they were stored.
    pub fn token_objects(&self, serial: &str) -> Result<Vec<ObjectRow>> {
        self.read_store(false, |db| {
            db.all(
                "SELECT object_id, key_id, attrs FROM p11_objects WHERE token = ?1 ORDER BY rowid",
                &vals![serial],
                object_row,
            )
        })
    }

    /// Stores an object row, replacing the row of the same id (which then
    /// comes last in [`Hsm::token_objects`]' order, as a new row).
    pub fn token_put_object(&self, serial: &str, row: &ObjectRow) -> Result<()> {
        if row.attrs.len() > MAX_ATTRS_LEN {
            return Err(Error::validation("object attributes too large"));
        }
        if row.object_id.len() > MAX_OBJECT_ID_LEN {
            return Err(Error::validation("object id too long"));
        }
        let [class, id, label, key_type] = search::columns(&row.attrs);
        self.lock_store().write(|tx| {
            pg::notify(tx, &pg::object(&row.object_id))?;
            tx.execute(
                "DELETE FROM p11_objects WHERE object_id = ?1",
                &vals![&row.object_id],
            )?;
            tx.execute(
                "INSERT INTO p11_objects (object_id, token, key_id, attrs,
                     a_class, a_id, a_label, a_key_type, searchable)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1)",
                &vals![
                    &row.object_id,
                    serial,
                    row.key_id.as_deref(),
                    &row.attrs,
                    class.as_ref(),
                    id.as_ref(),
                    label.as_ref(),
                    key_type.as_ref()
                ],
            )?;
            Ok(())
        })?;
        self.bump_generation(crate::changes::Change::Object(row.object_id.clone()));
        Ok(())
    }

    /// Removes an object row.
    pub fn token_delete_object(&self, object_id: &str) -> Result<()> {
        if object_id.len() > MAX_OBJECT_ID_LEN {
            return Err(Error::NotFound("no such object".into()));
        }
        self.lock_store().write(|tx| {
            pg::notify(tx, &pg::object(object_id))?;
            tx.execute(
                "DELETE FROM p11_objects WHERE object_id = ?1",
                &vals![object_id],
            )?;
            Ok(())
        })?;
        self.bump_generation(crate::changes::Change::Object(object_id.to_string()));
        Ok(())
    }

    /// Creates a token AES key of `len` bytes in the namespace `token`
    /// (32 bytes: an ordinary KMS key; 16 or 24: generated here).
    pub fn p11_create_aes_key(
        &self,
        token: &str,
        len: usize,
        description: &str,
        extractable: bool,
    ) -> Result<KeyMetadata> {
        check_aes_len(len)?;
        // `..Default::default()` keeps this right if CreateKeyRequest grows.
        #[allow(clippy::needless_update)]
        let request = CreateKeyRequest {
            description: description.to_string(),
            key_spec: Some(KeySpec::SymmetricDefault),
            key_usage: Some(KeyUsage::EncryptDecrypt),
            token: Some(token.to_string()),
            ..Default::default()
        };
        let system_tags = extractable_tag(extractable);
        if len == 32 {
            return self.create_key_with_material(request, Origin::AwsKms, None, &system_tags);
        }
        let bytes = random_bytes(len)?;
        self.create_key_with_material(request, Origin::AwsKms, Some(&bytes), &system_tags)
    }

    /// Creates a token key pair of `spec` in the namespace `token` with
    /// one or more usages; returns its metadata and the DER
    /// SubjectPublicKeyInfo. The KMS key's `KeyUsage` is the first of
    /// SIGN_VERIFY, ENCRYPT_DECRYPT it has (SIGN_VERIFY for a key-agreement
    /// pair: KMS here has no KEY_AGREEMENT usage); a pair with more than
    /// one usage, or a key-agreement pair, carries every one in the tag
    /// [`USAGES_TAG`], which the PKCS#11 mechanisms honour.
    pub fn p11_create_key_pair(
        &self,
        token: &str,
        spec: KeySpec,
        usages: PairUsages,
        description: &str,
    ) -> Result<(KeyMetadata, Vec<u8>)> {
        if !spec.has_public_key() {
            return Err(Error::validation("not an asymmetric key spec"));
        }
        // An ML-KEM pair encapsulates and decapsulates, nothing else.
        let usage = if spec.is_ml_kem() {
            KeyUsage::EncapsulateDecapsulate
        } else {
            usages.check(spec)?;
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
        let meta = self.create_key_with_material(request, Origin::AwsKms, None, &tags)?;
        let public = self.get_public_key(&meta.key_id)?.public_key;
        Ok((meta, public))
    }

    /// Creates a token generic secret (HMAC) key of 1 to 512 bytes in the
    /// namespace `token`: 28, 32, 48 or 64 bytes are HMAC_224 to HMAC_512
    /// keys; other lengths carry the HMAC spec [`hmac_spec`] names and the
    /// tag [`VALUE_LEN_TAG`].
    pub fn p11_create_hmac_key(
        &self,
        token: &str,
        len: usize,
        description: &str,
    ) -> Result<KeyMetadata> {
        let request = CreateKeyRequest {
            description: description.to_string(),
            key_spec: Some(hmac_spec(len)?),
            key_usage: Some(KeyUsage::GenerateVerifyMac),
            token: Some(token.to_string()),
            ..Default::default()
        };
        match value_len_tag(len) {
            None => self.create_key(request),
            Some(tag) => {
                let bytes = random_bytes(len)?;
                self.create_key_with_material(request, Origin::AwsKms, Some(&bytes), &[tag])
            }
        }
    }

    /// Imports a secret key the application supplied (origin EXTERNAL):
    /// AES of 16, 24 or 32 bytes, or a generic secret (HMAC) key of 1 to
    /// 512 (see [`Hsm::p11_create_hmac_key`]).
    pub fn p11_import_secret(
        &self,
        token: &str,
        aes: bool,
        bytes: &[u8],
        description: &str,
        extractable: bool,
    ) -> Result<KeyMetadata> {
        let (spec, usage) = if aes {
            check_aes_len(bytes.len())?;
            (KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt)
        } else {
            (hmac_spec(bytes.len())?, KeyUsage::GenerateVerifyMac)
        };
        #[allow(clippy::needless_update)]
        let request = CreateKeyRequest {
            description: description.to_string(),
            key_spec: Some(spec),
            key_usage: Some(usage),
            token: Some(token.to_string()),
            ..Default::default()
        };
        let mut system_tags = extractable_tag(extractable && aes);
        if !aes {
            system_tags.extend(value_len_tag(bytes.len()));
        }
        self.create_key_with_material(request, Origin::External, Some(bytes), &system_tags)
    }
}

/// The tag listing every usage of a PKCS#11 key pair that has more than
/// its KMS `KeyUsage` (comma-separated: SIGN_VERIFY, ENCRYPT_DECRYPT,
/// KEY_AGREEMENT).
pub const USAGES_TAG: &str = "pkcs11:usages";

/// The usages of a PKCS#11 key pair (at least one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PairUsages {
    /// SIGN_VERIFY (CKA_SIGN / CKA_VERIFY).
    pub sign: bool,
    /// ENCRYPT_DECRYPT (CKA_DECRYPT / CKA_ENCRYPT, CKA_UNWRAP / CKA_WRAP).
    pub decrypt: bool,
    /// KEY_AGREEMENT (CKA_DERIVE).
    pub derive: bool,
    /// CKA_EXTRACTABLE true: the private key may leave wrapped (PKCS#8
    /// under an AES key). Kept in the tag [`EXTRACTABLE_TAG`].
    pub extractable: bool,
    /// CKA_SENSITIVE false: with `extractable`, the private key's parts
    /// may be read. Kept in the tag [`READABLE_TAG`].
    pub readable: bool,
}

impl PairUsages {
    /// One KMS usage.
    pub fn single(usage: KeyUsage) -> PairUsages {
        PairUsages {
            sign: usage == KeyUsage::SignVerify,
            decrypt: usage == KeyUsage::EncryptDecrypt,
            ..PairUsages::default()
        }
    }

    /// The comma-separated names of the usages and export rights (the
    /// wire form): the usages, then EXTRACTABLE and READABLE when set.
    pub fn as_str(&self) -> String {
        let mut names = vec![self.usages_str()];
        if self.extractable {
            names.push("EXTRACTABLE".to_string());
        }
        if self.readable {
            names.push("READABLE".to_string());
        }
        names.retain(|n| !n.is_empty());
        names.join(",")
    }

    /// The usages alone (the [`USAGES_TAG`] value).
    fn usages_str(&self) -> String {
        let mut names = Vec::new();
        if self.sign {
            names.push("SIGN_VERIFY");
        }
        if self.decrypt {
            names.push("ENCRYPT_DECRYPT");
        }
        if self.derive {
            names.push("KEY_AGREEMENT");
        }
        names.join(",")
    }

    /// Parses [`PairUsages::as_str`]; anything else (or nothing) is a
    /// ValidationException.
    pub fn parse(text: &str) -> Result<PairUsages> {
        let mut u = PairUsages::default();
        for name in text.split(',') {
            match name {
                "SIGN_VERIFY" => u.sign = true,
                "ENCRYPT_DECRYPT" => u.decrypt = true,
                "KEY_AGREEMENT" => u.derive = true,
                "EXTRACTABLE" => u.extractable = true,
                "READABLE" => u.readable = true,
                _ => return Err(Error::validation("unknown key pair usage")),
            }
        }
        Ok(u)
    }

    /// Whether these usages allow `usage`.
    pub fn allows(&self, usage: KeyUsage) -> bool {
        match usage {
            KeyUsage::SignVerify => self.sign,
            KeyUsage::EncryptDecrypt => self.decrypt,
            _ => false,
        }
    }

    /// The KMS `KeyUsage` the key gets.
    fn primary(&self) -> KeyUsage {
        if !self.sign && self.decrypt {
            KeyUsage::EncryptDecrypt
        } else {
            KeyUsage::SignVerify
        }
    }

    /// Whether `primary` alone says everything.
    fn is_single(&self, primary: KeyUsage) -> bool {
        PairUsages {
            extractable: false,
            readable: false,
            ..*self
        } == PairUsages::single(primary)
    }

    /// The tags a token key pair with these usages carries: the
    /// [`USAGES_TAG`] when its KMS usage `primary` does not say everything,
    /// [`EXTRACTABLE_TAG`] when extractable, [`READABLE_TAG`] when
    /// extractable and readable.
    pub(crate) fn pair_tags(&self, primary: KeyUsage) -> Vec<crate::types::Tag> {
        let mut tags = Vec::new();
        if !self.is_single(primary) {
            tags.push(crate::types::Tag {
                tag_key: USAGES_TAG.to_string(),
                tag_value: self.usages_str(),
            });
        }
        tags.extend(extractable_tag(self.extractable));
        if self.extractable && self.readable {
            tags.push(crate::types::Tag {
                tag_key: READABLE_TAG.to_string(),
                tag_value: "true".to_string(),
            });
        }
        tags
    }

    /// Checks the usages against the key type: RSA signs and decrypts, a
    /// NIST curve signs and agrees keys, Ed25519 only signs, X25519 only
    /// agrees keys, ML-DSA only signs and is never readable (ML-KEM pairs
    /// carry no usages here).
    fn check(&self, spec: KeySpec) -> Result<()> {
        let ok = (self.sign || self.decrypt || self.derive)
            && !spec.is_ml_kem()
            && (spec.is_rsa() || !self.decrypt)
            && (!self.derive || (spec.is_ecc() && spec != KeySpec::EccEd25519))
            && (spec != KeySpec::EccX25519 || !self.sign)
            // An ML-DSA key's seed is never readable (wrapped only).
            && !(spec.is_ml_dsa() && self.readable);
        if ok {
            Ok(())
        } else {
            Err(Error::validation(format!(
                "a {spec} key pair cannot have the usages {}",
                self.as_str()
            )))
        }
    }
}

impl crate::model::KeyRecord {
    /// Whether a token key pair may be used for `usage` through PKCS#11:
    /// its KMS usage, or one its [`USAGES_TAG`] names.
    pub(crate) fn p11_allows(&self, usage: KeyUsage) -> bool {
        self.usage == usage
            || self
                .tags
                .get(USAGES_TAG)
                .and_then(|t| PairUsages::parse(t).ok())
                .is_some_and(|u| u.allows(usage))
    }
}

/// The tag that marks a token AES key as extractable (CKA_EXTRACTABLE):
/// only such keys may be wrapped. Set at creation by the PKCS#11 layer.
pub const EXTRACTABLE_TAG: &str = "pkcs11:extractable";

fn extractable_tag(extractable: bool) -> Vec<crate::types::Tag> {
    if extractable {
        vec![crate::types::Tag {
            tag_key: EXTRACTABLE_TAG.to_string(),
            tag_value: "true".to_string(),
        }]
    } else {
        Vec::new()
    }
}

/// The tag a token generic secret whose length is not its HMAC spec's
/// carries: its length in bytes. The KMS API names such a key by the spec
/// [`hmac_spec`] gives and refuses to MAC with it (its material is not the
/// spec's size); PKCS#11 uses it with any HMAC.
pub const VALUE_LEN_TAG: &str = "pkcs11:value_len";

/// The KMS spec of a generic secret (HMAC) key of `len` bytes (1 to 512):
/// HMAC_224/256/384/512 for 28/32/48/64 bytes, otherwise the largest
/// whose key length does not exceed `len` (HMAC_224 below 28).
fn hmac_spec(len: usize) -> Result<KeySpec> {
    Ok(match len {
        0 | 513.. => return Err(Error::validation("a generic secret key is 1 to 512 bytes")),
        ..32 => KeySpec::Hmac224,
        32..48 => KeySpec::Hmac256,
        48..64 => KeySpec::Hmac384,
        _ => KeySpec::Hmac512,
    })
}

/// The [`VALUE_LEN_TAG`] of a generic secret of `len` bytes, when its
/// length is not its spec's.
fn value_len_tag(len: usize) -> Option<crate::types::Tag> {
    (!matches!(len, 28 | 32 | 48 | 64)).then(|| crate::types::Tag {
        tag_key: VALUE_LEN_TAG.to_string(),
        tag_value: len.to_string(),
    })
}
