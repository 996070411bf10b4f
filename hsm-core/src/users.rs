//! Users and their access keys, and SigV4 signature verification.
//!
//! A user is a name (`arn:aws:iam::<account>:user/<name>`), optionally
//! bound to a Unix uid (callers on the socket) and a client certificate
//! fingerprint (callers over mutual TLS). An access key is an id and a
//! secret belonging to a user or to the account's administrators (`root`).
//! The secret is shown once, at creation, and otherwise lives only wrapped
//! under the root key: SigV4 signatures are verified here, so the secret
//! never leaves hsm-core, even towards the front door that received the
//! request.

use std::collections::BTreeMap;

use crate::store::engine::{vals, Db};
use crate::store::pg;
use base64::Engine as _;
use ring::hmac;
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::hsm::Hsm;
use crate::identity::{validate_user_name, Principal};
use crate::sealing;
use crate::types::{printable, UnixSeconds};

/// How many access keys one principal may hold (IAM allows two; Tinfoil
/// allows a few more for rotation in CI).
pub const MAX_ACCESS_KEYS_PER_PRINCIPAL: usize = 4;
/// The principal column value of the administrators' access keys.
const ROOT: &str = "root";

/// A user as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The user's name.
    pub user_name: String,
    /// `arn:aws:iam::<account>:user/<name>`.
    pub arn: String,
    /// When the user was created.
    pub create_date: UnixSeconds,
    /// The Unix uid bound to this user, if any.
    pub unix_uid: Option<u32>,
    /// The SHA-256 fingerprint (lowercase hex) of the client certificate
    /// bound to this user, if any.
    pub cert_fingerprint: Option<String>,
}

/// An access key as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyInfo {
    /// `root` or the user's name.
    pub user_name: String,
    /// The access key id (`AKIA...`).
    pub access_key_id: String,
    /// `Active`.
    pub status: String,
    /// When it was created.
    pub create_date: UnixSeconds,
}

/// A new access key: the only time its secret is seen. The secret is
/// wiped on drop and never printed by `Debug`.
#[derive(Debug)]
pub struct NewAccessKey {
    /// The key's public facts.
    pub info: AccessKeyInfo,
    /// The secret access key (40 characters).
    pub secret_access_key: SecretString,
}

/// What a SigV4 request asks the core to verify. Everything here is
/// public: the front door canonicalised the request and built the string
/// to sign; the core derives the signing key from the sealed secret.
#[derive(Debug, Clone, Copy)]
pub struct SigV4Check<'a> {
    /// The access key id of the request's credential scope.
    pub access_key_id: &'a str,
    /// The scope's date, `YYYYMMDD`.
    pub date: &'a str,
    /// The scope's region.
    pub region: &'a str,
    /// The scope's service (`kms`).
    pub service: &'a str,
    /// The string to sign, exactly as SigV4 defines it.
    pub string_to_sign: &'a str,
    /// The request's `Signature=` value (64 lowercase hex digits).
    pub signature_hex: &'a str,
}

/// A user's row.
#[derive(Debug, Clone)]
pub(crate) struct UserRecord {
    pub created: UnixSeconds,
    pub unix_uid: Option<u32>,
    pub cert_fingerprint: Option<String>,
}

/// An access key's row; the secret stays wrapped.
#[derive(Clone)]
pub(crate) struct AccessKeyRecord {
    pub principal: String,
    pub created: UnixSeconds,
    pub status: String,
    pub wrapped_secret: Vec<u8>,
}

/// Users and access keys, as committed to the store. On PostgreSQL every
/// change notifies the other nodes (`pg::USERS`), whose change feed reads
/// them again.
#[derive(Default)]
pub(crate) struct Identities {
    pub users: BTreeMap<String, UserRecord>,
    pub access_keys: BTreeMap<String, AccessKeyRecord>,
    /// Moves with every change made to this copy (a write here, a reload),
    /// so a reload read before a write here is not put over it.
    pub version: u64,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identities")
            .field("users", &self.users.len())
            .field("access_keys", &self.access_keys.len())
            .finish()
    }
}

/// Reads every user and access key.
pub(crate) fn load(conn: &Db<'_>) -> Result<Identities> {
    let mut identities = Identities::default();
    conn.each(
        "SELECT user_name, created, unix_uid, cert_fingerprint FROM users",
        &[],
        |r| {
            let record = UserRecord {
                created: r.get(1)?,
                unix_uid: r.get(2)?,
                cert_fingerprint: r.get(3)?,
            };
            identities.users.insert(r.get(0)?, record);
            Ok(())
        },
    )?;
    conn.each(
        "SELECT access_key_id, principal, created, status, wrapped_secret FROM access_keys",
        &[],
        |r| {
            let record = AccessKeyRecord {
                principal: r.get(1)?,
                created: r.get(2)?,
                status: r.get(3)?,
                wrapped_secret: r.get(4)?,
            };
            identities.access_keys.insert(r.get(0)?, record);
            Ok(())
        },
    )?;
    Ok(identities)
}

fn put_user(tx: &Db<'_>, name: &str, user: &UserRecord) -> Result<()> {
    // As committed (another node may have taken the name, uid or
    // certificate since this node last heard).
    let taken = tx.first(
        "SELECT user_name FROM users
         WHERE user_name = ?1 OR unix_uid = ?2 OR cert_fingerprint = ?3",
        &vals![name, user.unix_uid, user.cert_fingerprint.as_deref()],
        |r| r.get::<String>(0),
    )?;
    if let Some(other) = taken {
        return Err(Error::AlreadyExists(if other == name {
            format!("user {name} already exists")
        } else {
            format!("user {other} already has that uid or certificate")
        }));
    }
    pg::notify(tx, pg::USERS)?;
    tx.execute(
        "INSERT INTO users (user_name, created, unix_uid, cert_fingerprint) VALUES (?1, ?2, ?3, ?4)",
        &vals![name, user.created, user.unix_uid, user.cert_fingerprint.as_deref()],
    )?;
    Ok(())
}

fn put_access_key(tx: &Db<'_>, id: &str, key: &AccessKeyRecord) -> Result<()> {
    // As committed: the user still exists, and holds fewer than the most.
    if key.principal != ROOT {
        let exists = tx.first(
            "SELECT user_name FROM users WHERE user_name = ?1",
            &vals![&key.principal],
            |_| Ok(()),
        )?;
        if exists.is_none() {
            return Err(Error::NotFound(format!(
                "user {} does not exist",
                key.principal
            )));
        }
    }
    let held: i64 = tx
        .first(
            "SELECT count(*) FROM access_keys WHERE principal = ?1",
            &vals![&key.principal],
            |r| r.get(0),
        )?
        .unwrap_or(0);
    if held >= MAX_ACCESS_KEYS_PER_PRINCIPAL as i64 {
        return Err(Error::LimitExceeded(format!(
            "{} already has {held} access keys, the most allowed; delete one first",
            key.principal
        )));
    }
    pg::notify(tx, pg::USERS)?;
    tx.execute(
        "INSERT INTO access_keys (access_key_id, principal, created, status, wrapped_secret)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        &vals![
            id,
            &key.principal,
            key.created,
            &key.status,
            &key.wrapped_secret
        ],
    )?;
    Ok(())
}

/// The associated data that binds a wrapped secret to its access key id.
fn secret_aad(access_key_id: &str) -> Vec<u8> {
    let mut aad = b"tinfoil/v1/access-key-secret".to_vec();
    aad.extend_from_slice(access_key_id.as_bytes());
    aad
}

/// `AKIA` and 16 characters of the base32 alphabet, as AWS access key ids.
fn new_access_key_id() -> Result<String> {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut random = [0u8; 16];
    sealing::random_fill(&mut random)?;
    let tail: String = random
        .iter()
        .map(|b| ALPHABET[usize::from(b & 31)] as char)
        .collect();
    Ok(format!("AKIA{tail}"))
}

fn check_fingerprint(fingerprint: &str) -> Result<String> {
    let normalised: String = fingerprint
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    if normalised.len() != 64 || !normalised.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::validation(format!(
            "certificate fingerprint {} must be 64 hex digits (SHA-256)",
            printable(fingerprint)
        )));
    }
    Ok(normalised)
}

fn principal_column(user_name: &str) -> &str {
    if user_name.eq_ignore_ascii_case(ROOT) {
        ROOT
    } else {
        user_name
    }
}

fn principal_of_column(column: &str) -> Principal {
    if column == ROOT {
        Principal::Root
    } else {
        Principal::User(column.to_string())
    }
}

impl Hsm {
    /// Creates a user, optionally bound to a Unix uid and a client
    /// certificate (SHA-256 fingerprint in hex, colons allowed).
    pub(crate) fn create_user(
        &self,
        name: &str,
        unix_uid: Option<u32>,
        cert_fingerprint: Option<&str>,
    ) -> Result<UserInfo> {
        validate_user_name(name)?;
        let cert_fingerprint = cert_fingerprint.map(check_fingerprint).transpose()?;
        let mut identities = self.write_identities();
        if identities.users.contains_key(name) {
            return Err(Error::AlreadyExists(format!("user {name} already exists")));
        }
        if let Some(uid) = unix_uid {
            if let Some((other, _)) = identities
                .users
                .iter()
                .find(|(_, u)| u.unix_uid == Some(uid))
            {
                return Err(Error::AlreadyExists(format!(
                    "uid {uid} is already bound to user {other}"
                )));
            }
        }
        if let Some(fp) = &cert_fingerprint {
            if let Some((other, _)) = identities
                .users
                .iter()
                .find(|(_, u)| u.cert_fingerprint.as_ref() == Some(fp))
            {
                return Err(Error::AlreadyExists(format!(
                    "that certificate is already bound to user {other}"
                )));
            }
        }
        let record = UserRecord {
            created: self.now(),
            unix_uid,
            cert_fingerprint,
        };
        self.lock_store().write(|tx| put_user(tx, name, &record))?;
        identities.users.insert(name.to_string(), record.clone());
        identities.version += 1;
        Ok(user_info(name, &record))
    }

    /// Deletes a user and, in the same transaction, its access keys.
    pub(crate) fn delete_user(&self, name: &str) -> Result<()> {
        validate_user_name(name)?;
        let mut identities = self.write_identities();
        if !identities.users.contains_key(name) {
            return Err(Error::NotFound(format!("user {name} does not exist")));
        }
        self.lock_store().write(|tx| {
            pg::notify(tx, pg::USERS)?;
            tx.execute("DELETE FROM access_keys WHERE principal = ?1", &vals![name])?;
            let deleted = tx.execute("DELETE FROM users WHERE user_name = ?1", &vals![name])?;
            if deleted == 0 {
                // Deleted by another node meanwhile.
                return Err(Error::NotFound(format!("user {name} does not exist")));
            }
            Ok(())
        })?;
        identities.users.remove(name);
        identities.access_keys.retain(|_, k| k.principal != name);
        identities.version += 1;
        Ok(())
    }

    /// Every user, by name.
    pub(crate) fn list_users(&self) -> Vec<UserInfo> {
        self.read_identities()
            .users
            .iter()
            .map(|(name, record)| user_info(name, record))
            .collect()
    }

    /// Creates an access key for a user, or for the administrators when
    /// `user_name` is `root`.
    pub(crate) fn create_access_key(&self, user_name: &str) -> Result<NewAccessKey> {
        let principal = principal_column(user_name).to_string();
        let mut identities = self.write_identities();
        if principal != ROOT && !identities.users.contains_key(&principal) {
            return Err(Error::NotFound(format!("user {user_name} does not exist")));
        }
        let held = identities
            .access_keys
            .values()
            .filter(|k| k.principal == principal)
            .count();
        if held >= MAX_ACCESS_KEYS_PER_PRINCIPAL {
            return Err(Error::LimitExceeded(format!(
                "{principal} already has {held} access keys, the most allowed; delete one first"
            )));
        }
        let access_key_id = new_access_key_id()?;
        let mut random = Zeroizing::new([0u8; 30]);
        sealing::random_fill(random.as_mut())?;
        let secret = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(*random));
        let wrapped_secret = sealing::wrap(
            self.root_key(),
            &secret_aad(&access_key_id),
            secret.as_bytes(),
        )?;
        let record = AccessKeyRecord {
            principal: principal.clone(),
            created: self.now(),
            status: "Active".to_string(),
            wrapped_secret,
        };
        self.lock_store()
            .write(|tx| put_access_key(tx, &access_key_id, &record))?;
        let info = AccessKeyInfo {
            user_name: principal,
            access_key_id: access_key_id.clone(),
            status: record.status.clone(),
            create_date: record.created,
        };
        identities.access_keys.insert(access_key_id, record);
        identities.version += 1;
        Ok(NewAccessKey {
            info,
            secret_access_key: SecretString::from(secret.to_string()),
        })
    }

    /// The access keys of a user (or of `root`).
    pub(crate) fn list_access_keys(&self, user_name: &str) -> Result<Vec<AccessKeyInfo>> {
        let principal = principal_column(user_name);
        let identities = self.read_identities();
        if principal != ROOT && !identities.users.contains_key(principal) {
            return Err(Error::NotFound(format!("user {user_name} does not exist")));
        }
        Ok(identities
            .access_keys
            .iter()
            .filter(|(_, k)| k.principal == principal)
            .map(|(id, k)| AccessKeyInfo {
                user_name: k.principal.clone(),
                access_key_id: id.clone(),
                status: k.status.clone(),
                create_date: k.created,
            })
            .collect())
    }

    /// Deletes an access key of a user (or of `root`): requests signed
    /// with it are refused from the next call on.
    pub(crate) fn delete_access_key(&self, user_name: &str, access_key_id: &str) -> Result<()> {
        let principal = principal_column(user_name);
        let mut identities = self.write_identities();
        let owned = identities
            .access_keys
            .get(access_key_id)
            .is_some_and(|k| k.principal == principal);
        if !owned {
            return Err(Error::NotFound(format!(
                "access key {} of {} does not exist",
                printable(access_key_id),
                printable(user_name)
            )));
        }
        self.lock_store().write(|tx| {
            pg::notify(tx, pg::USERS)?;
            tx.execute(
                "DELETE FROM access_keys WHERE access_key_id = ?1",
                &vals![access_key_id],
            )?;
            Ok(())
        })?;
        identities.access_keys.remove(access_key_id);
        identities.version += 1;
        Ok(())
    }

    /// Verifies a SigV4 signature with the access key's sealed secret and
    /// returns the key's principal. Unknown or inactive key:
    /// `UnrecognizedClient`; wrong signature: `SignatureDoesNotMatch`.
    /// The comparison is constant-time (ring's HMAC verification).
    pub fn verify_sigv4(&self, check: &SigV4Check<'_>) -> Result<Principal> {
        let unrecognized = || {
            Error::UnrecognizedClient(
                "The security token included in the request is invalid.".to_string(),
            )
        };
        let (principal, wrapped) = {
            let identities = self.read_identities();
            let key = identities
                .access_keys
                .get(check.access_key_id)
                .ok_or_else(unrecognized)?;
            if key.status != "Active" {
                return Err(unrecognized());
            }
            (key.principal.clone(), key.wrapped_secret.clone())
        };
        let secret = sealing::unwrap(self.root_key(), &secret_aad(check.access_key_id), &wrapped)
            .ok_or_else(|| {
            Error::Internal(format!(
                "the secret of access key {} does not unwrap: the store was tampered with",
                check.access_key_id
            ))
        })?;
        let mut k_secret = Zeroizing::new(b"AWS4".to_vec());
        k_secret.extend_from_slice(&secret);
        let k_date = hmac_step(&k_secret, check.date.as_bytes());
        let k_region = hmac_step(&k_date[..], check.region.as_bytes());
        let k_service = hmac_step(&k_region[..], check.service.as_bytes());
        let k_signing = hmac_step(&k_service[..], b"aws4_request");
        let mismatch = || {
            Error::SignatureDoesNotMatch(
                "The request signature we calculated does not match the signature you provided. \
                 Check your AWS Secret Access Key and signing method."
                    .to_string(),
            )
        };
        let signature = decode_hex(check.signature_hex).ok_or_else(mismatch)?;
        hmac::verify(
            &hmac::Key::new(hmac::HMAC_SHA256, &k_signing[..]),
            check.string_to_sign.as_bytes(),
            &signature,
        )
        .map_err(|_| mismatch())?;
        Ok(principal_of_column(&principal))
    }

    /// The principal a Unix peer stands for: the administrators for root
    /// and for the daemon's own uid, the user bound to `uid`, else `None`.
    pub fn principal_for_uid(&self, uid: u32, daemon_uid: u32) -> Option<Principal> {
        if uid == 0 || uid == daemon_uid {
            return Some(Principal::Root);
        }
        self.read_identities()
            .users
            .iter()
            .find(|(_, u)| u.unix_uid == Some(uid))
            .map(|(name, _)| Principal::User(name.clone()))
    }

    /// The user bound to a client certificate's SHA-256 fingerprint (hex).
    pub fn principal_for_certificate(&self, fingerprint_hex: &str) -> Option<Principal> {
        let fingerprint = check_fingerprint(fingerprint_hex).ok()?;
        self.read_identities()
            .users
            .iter()
            .find(|(_, u)| u.cert_fingerprint.as_deref() == Some(fingerprint.as_str()))
            .map(|(name, _)| Principal::User(name.clone()))
    }
}

fn user_info(name: &str, record: &UserRecord) -> UserInfo {
    UserInfo {
        user_name: name.to_string(),
        arn: Principal::User(name.to_string()).arn(),
        create_date: record.created,
        unix_uid: record.unix_uid,
        cert_fingerprint: record.cert_fingerprint.clone(),
    }
}

fn hmac_step(key: &[u8], data: &[u8]) -> Zeroizing<[u8; 32]> {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(tag.as_ref());
    out
}

/// Decodes a SigV4 signature: exactly 64 lowercase hex digits, as AWS
/// writes them (AWS compares the text, so uppercase never matches there).
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
