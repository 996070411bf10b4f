//! The gate: the one place every front door's call passes through.
//!
//! A front door (gRPC, the KMS JSON endpoint, the PKCS#11 daemon backend)
//! proves who is calling, builds a [`Caller`] and calls
//! `hsm.gate(&caller).operation(...)`. The gate then
//! 1. decides whether the caller may do it ([`Gate::authorize`]: key
//!    policies, grants and the account-level rules),
//! 2. stops there for a dry run,
//! 3. runs the operation.
//!
//! Front doors never decide authorization themselves, so they cannot
//! drift apart.

use zeroize::Zeroizing;

mod pkcs11;
mod policies_grants;

pub use pkcs11::Pkcs11Call;

use crate::error::{Error, Result};
use crate::hsm::Hsm;
use crate::identity::Caller;
use crate::outputs::*;
use crate::types::*;
use crate::users::{AccessKeyInfo, NewAccessKey, UserInfo};

/// What an authorization decision looks at: the action, the key it acts
/// on (as the caller named it) and the request's condition values.
#[derive(Debug, Clone)]
pub(crate) struct Request<'r> {
    /// The KMS action, e.g. `kms:Encrypt`.
    pub action: &'static str,
    /// The key reference as given (id, ARN, alias), for key operations.
    pub key_ref: Option<&'r str>,
    /// The request's encryption context, where the operation has one.
    pub encryption_context: Option<&'r EncryptionContext>,
    /// Further condition keys and values (`kms:KeySpec`, ...).
    pub conditions: Vec<(&'static str, String)>,
    /// Further request parameters the audit record logs (never a secret).
    pub params: Vec<(&'static str, serde_json::Value)>,
}

impl<'r> Request<'r> {
    /// An account-level action (no key).
    pub(crate) fn account(action: &'static str) -> Self {
        Request {
            action,
            key_ref: None,
            encryption_context: None,
            conditions: Vec::new(),
            params: Vec::new(),
        }
    }

    /// An action on a key.
    fn key(action: &'static str, key_ref: &'r str) -> Self {
        Request {
            key_ref: Some(key_ref),
            ..Request::account(action)
        }
    }

    fn context(mut self, context: &'r EncryptionContext) -> Self {
        self.encryption_context = Some(context);
        self
    }

    fn condition(mut self, name: &'static str, value: impl ToString) -> Self {
        self.conditions.push((name, value.to_string()));
        self
    }

    /// A request parameter for the audit record only.
    pub(crate) fn param(mut self, name: &'static str, value: impl Into<serde_json::Value>) -> Self {
        self.params.push((name, value.into()));
        self
    }
}

/// Operations on behalf of one caller. Obtained from [`Hsm::gate`].
#[derive(Debug, Clone, Copy)]
pub struct Gate<'a> {
    hsm: &'a Hsm,
    caller: &'a Caller,
    dry_run: bool,
}

impl Hsm {
    /// The gate for `caller`: every front door runs its calls through it.
    pub fn gate<'a>(&'a self, caller: &'a Caller) -> Gate<'a> {
        Gate {
            hsm: self,
            caller,
            dry_run: false,
        }
    }
}

impl<'a> Gate<'a> {
    /// The same gate, but calls stop after their checks with
    /// `DryRunOperationException` (KMS's `DryRun`).
    pub fn dry_run(self, dry_run: bool) -> Gate<'a> {
        Gate { dry_run, ..self }
    }

    /// The caller this gate acts for.
    pub fn caller(&self) -> &Caller {
        self.caller
    }

    /// The store this gate runs calls on.
    pub(crate) fn hsm(&self) -> &'a Hsm {
        self.hsm
    }

    /// The one path of every key operation: decide whether the caller may
    /// make `request`, stop there for a dry run, else run `operation`; and
    /// record the call, allowed or not, succeeded or not (see
    /// [`crate::audit`]: in the operation's own transaction when it changes
    /// state, else group-committed before the call returns).
    fn run<T>(&self, request: Request<'_>, operation: impl FnOnce() -> Result<T>) -> Result<T> {
        self.run_checked(request, operation, false)
    }

    /// `run` for an operation that changes nothing (the crypto calls). A
    /// dry run of one goes through the operation itself, after the
    /// authorization, and drops its result: it answers what the real call
    /// would (a disabled key, a wrong key usage, a ciphertext that does
    /// not open), and `DryRunOperationException` only when that call would
    /// have succeeded, as KMS does. Every front door gets this from the
    /// gate.
    fn run_read_only<T>(
        &self,
        request: Request<'_>,
        operation: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        self.run_checked(request, operation, true)
    }

    fn run_checked<T>(
        &self,
        request: Request<'_>,
        operation: impl FnOnce() -> Result<T>,
        read_only: bool,
    ) -> Result<T> {
        crate::audit::record_call(self.hsm, self.caller, &request, || {
            self.authorize(&request)?;
            if self.dry_run {
                if read_only {
                    drop(operation()?);
                }
                return Err(Error::DryRun(
                    "The request would have succeeded, but the DryRun option is set.".to_string(),
                ));
            }
            operation()
        })
    }

    /// Records a call that decides on its own (not through `run`): the
    /// same recording as `run`, around `call`.
    pub(crate) fn record<T>(
        &self,
        request: &Request<'_>,
        call: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        crate::audit::record_call(self.hsm, self.caller, request, call)
    }

    /// Records an administrator-only call (users, access keys) like `run`.
    fn run_admin<T>(
        &self,
        request: Request<'_>,
        operation: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        crate::audit::record_call(self.hsm, self.caller, &request, || {
            self.require_administrator(request.action)?;
            operation()
        })
    }

    /// The authorization decision (key policies, grants and the
    /// account-level rule): see `Hsm::authorize` in `policy/authz.rs`.
    fn authorize(&self, request: &Request<'_>) -> Result<()> {
        self.hsm.authorize(self.caller, request)
    }

    /// Refuses anyone but the account's administrators.
    fn require_administrator(&self, action: &str) -> Result<()> {
        if self.caller.principal.is_administrator() {
            return Ok(());
        }
        Err(Error::AccessDenied(format!(
            "User: {} is not authorized to perform: {action} because only the account's administrators may",
            self.caller.principal.arn()
        )))
    }

    // ----- users and access keys: administrators only -----

    /// Creates a user (administrators only).
    pub fn create_user(
        &self,
        name: &str,
        unix_uid: Option<u32>,
        cert_fingerprint: Option<&str>,
    ) -> Result<UserInfo> {
        self.run_admin(
            Request::account("iam:CreateUser").param("userName", name),
            || self.hsm.create_user(name, unix_uid, cert_fingerprint),
        )
    }

    /// Deletes a user and its access keys (administrators only).
    pub fn delete_user(&self, name: &str) -> Result<()> {
        self.run_admin(
            Request::account("iam:DeleteUser").param("userName", name),
            || self.hsm.delete_user(name),
        )
    }

    /// Lists users (administrators only).
    pub fn list_users(&self) -> Result<Vec<UserInfo>> {
        self.run_admin(Request::account("iam:ListUsers"), || {
            Ok(self.hsm.list_users())
        })
    }

    /// Creates an access key for a user or for `root` (administrators only).
    pub fn create_access_key(&self, user_name: &str) -> Result<NewAccessKey> {
        self.run_admin(
            Request::account("iam:CreateAccessKey").param("userName", user_name),
            || self.hsm.create_access_key(user_name),
        )
    }

    /// Lists a user's access keys (administrators only).
    pub fn list_access_keys(&self, user_name: &str) -> Result<Vec<AccessKeyInfo>> {
        self.run_admin(
            Request::account("iam:ListAccessKeys").param("userName", user_name),
            || self.hsm.list_access_keys(user_name),
        )
    }

    /// Deletes an access key (administrators only).
    pub fn delete_access_key(&self, user_name: &str, access_key_id: &str) -> Result<()> {
        self.run_admin(
            Request::account("iam:DeleteAccessKey")
                .param("userName", user_name)
                .param("accessKeyId", access_key_id),
            || self.hsm.delete_access_key(user_name, access_key_id),
        )
    }

    // ----- keys -----

    /// CreateKey (the default key policy; see
    /// [`Gate::create_key_with_policy`]).
    pub fn create_key(&self, request: CreateKeyRequest) -> Result<KeyMetadata> {
        self.create_key_with_policy(request, None, false)
    }

    /// DescribeKey.
    pub fn describe_key(&self, key_id: &str) -> Result<KeyMetadata> {
        self.run(Request::key("kms:DescribeKey", key_id), || {
            self.hsm.describe_key(key_id)
        })
    }

    /// ListKeys.
    pub fn list_keys(
        &self,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<KeyListEntry>> {
        self.run(Request::account("kms:ListKeys"), || {
            self.hsm.list_keys(limit, marker)
        })
    }

    /// UpdateKeyDescription.
    pub fn update_key_description(&self, key_id: &str, description: &str) -> Result<()> {
        self.run(Request::key("kms:UpdateKeyDescription", key_id), || {
            self.hsm.update_key_description(key_id, description)
        })
    }

    /// EnableKey.
    pub fn enable_key(&self, key_id: &str) -> Result<()> {
        self.run(Request::key("kms:EnableKey", key_id), || {
            self.hsm.enable_key(key_id)
        })
    }

    /// DisableKey.
    pub fn disable_key(&self, key_id: &str) -> Result<()> {
        self.run(Request::key("kms:DisableKey", key_id), || {
            self.hsm.disable_key(key_id)
        })
    }

    /// ScheduleKeyDeletion.
    pub fn schedule_key_deletion(
        &self,
        key_id: &str,
        pending_window_in_days: Option<u32>,
    ) -> Result<ScheduledDeletion> {
        let mut check = Request::key("kms:ScheduleKeyDeletion", key_id);
        if let Some(days) = pending_window_in_days {
            check = check.condition("kms:ScheduleKeyDeletionPendingWindowInDays", days);
        }
        self.run(check, || {
            self.hsm
                .schedule_key_deletion(key_id, pending_window_in_days)
        })
    }

    /// CancelKeyDeletion.
    pub fn cancel_key_deletion(&self, key_id: &str) -> Result<String> {
        self.run(Request::key("kms:CancelKeyDeletion", key_id), || {
            self.hsm.cancel_key_deletion(key_id)
        })
    }

    /// EnableKeyRotation.
    pub fn enable_key_rotation(
        &self,
        key_id: &str,
        rotation_period_in_days: Option<u32>,
    ) -> Result<()> {
        self.run(Request::key("kms:EnableKeyRotation", key_id), || {
            self.hsm
                .enable_key_rotation(key_id, rotation_period_in_days)
        })
    }

    /// DisableKeyRotation.
    pub fn disable_key_rotation(&self, key_id: &str) -> Result<()> {
        self.run(Request::key("kms:DisableKeyRotation", key_id), || {
            self.hsm.disable_key_rotation(key_id)
        })
    }

    /// GetKeyRotationStatus.
    pub fn get_key_rotation_status(&self, key_id: &str) -> Result<RotationStatus> {
        self.run(Request::key("kms:GetKeyRotationStatus", key_id), || {
            self.hsm.get_key_rotation_status(key_id)
        })
    }

    /// RotateKeyOnDemand.
    pub fn rotate_key_on_demand(&self, key_id: &str) -> Result<String> {
        self.run(Request::key("kms:RotateKeyOnDemand", key_id), || {
            self.hsm.rotate_key_on_demand(key_id)
        })
    }

    /// ListKeyRotations.
    pub fn list_key_rotations(
        &self,
        key_id: &str,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<RotationEntry>> {
        self.run(Request::key("kms:ListKeyRotations", key_id), || {
            self.hsm.list_key_rotations(key_id, limit, marker)
        })
    }

    // ----- aliases and tags -----

    /// CreateAlias: needs kms:CreateAlias on the alias's key.
    pub fn create_alias(&self, alias_name: &str, target_key_id: &str) -> Result<()> {
        self.run(
            Request::key("kms:CreateAlias", target_key_id)
                .condition("kms:RequestAlias", alias_name),
            || self.hsm.create_alias(alias_name, target_key_id),
        )
    }

    /// UpdateAlias: needs kms:UpdateAlias on the new target key.
    pub fn update_alias(&self, alias_name: &str, target_key_id: &str) -> Result<()> {
        self.run(
            Request::key("kms:UpdateAlias", target_key_id)
                .condition("kms:RequestAlias", alias_name),
            || self.hsm.update_alias(alias_name, target_key_id),
        )
    }

    /// DeleteAlias: needs kms:DeleteAlias on the alias's key.
    pub fn delete_alias(&self, alias_name: &str) -> Result<()> {
        self.run(Request::key("kms:DeleteAlias", alias_name), || {
            self.hsm.delete_alias(alias_name)
        })
    }

    /// ListAliases (all, or a key's).
    pub fn list_aliases(
        &self,
        key_id: Option<&str>,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<AliasEntry>> {
        self.run(Request::account("kms:ListAliases"), || {
            self.hsm.list_aliases(key_id, limit, marker)
        })
    }

    /// TagResource.
    pub fn tag_resource(&self, key_id: &str, tags: &[Tag]) -> Result<()> {
        self.run(Request::key("kms:TagResource", key_id), || {
            self.hsm.tag_resource(key_id, tags)
        })
    }

    /// UntagResource.
    pub fn untag_resource(&self, key_id: &str, tag_keys: &[String]) -> Result<()> {
        self.run(Request::key("kms:UntagResource", key_id), || {
            self.hsm.untag_resource(key_id, tag_keys)
        })
    }

    /// ListResourceTags.
    pub fn list_resource_tags(
        &self,
        key_id: &str,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<Tag>> {
        self.run(Request::key("kms:ListResourceTags", key_id), || {
            self.hsm.list_resource_tags(key_id, limit, marker)
        })
    }

    // ----- cryptography -----

    /// Encrypt.
    pub fn encrypt(
        &self,
        key_id: &str,
        plaintext: &[u8],
        context: &EncryptionContext,
        algorithm: Option<EncryptionAlgorithm>,
    ) -> Result<EncryptOutput> {
        self.run_read_only(
            Request::key("kms:Encrypt", key_id)
                .context(context)
                .condition(
                    "kms:EncryptionAlgorithm",
                    algorithm.unwrap_or(EncryptionAlgorithm::SymmetricDefault),
                ),
            || self.hsm.encrypt(key_id, plaintext, context, algorithm),
        )
    }

    /// Decrypt: the key is the one named, else the one the blob names.
    pub fn decrypt(
        &self,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
        key_id: Option<&str>,
        algorithm: Option<EncryptionAlgorithm>,
    ) -> Result<DecryptOutput> {
        let blob_key = blob_key_ref(ciphertext_blob, key_id)?;
        self.run_read_only(
            Request::key("kms:Decrypt", &blob_key)
                .context(context)
                .condition(
                    "kms:EncryptionAlgorithm",
                    algorithm.unwrap_or(EncryptionAlgorithm::SymmetricDefault),
                ),
            || {
                self.hsm
                    .decrypt(ciphertext_blob, context, key_id, algorithm)
            },
        )
    }

    /// ReEncrypt: kms:ReEncryptFrom on the source key, kms:ReEncryptTo on
    /// the destination key.
    pub fn re_encrypt(
        &self,
        ciphertext_blob: &[u8],
        source_context: &EncryptionContext,
        source_key_id: Option<&str>,
        destination_key_id: &str,
        destination_context: &EncryptionContext,
    ) -> Result<ReEncryptOutput> {
        let source = blob_key_ref(ciphertext_blob, source_key_id)?;
        self.authorize(&Request::key("kms:ReEncryptFrom", &source).context(source_context))?;
        self.run_read_only(
            Request::key("kms:ReEncryptTo", destination_key_id).context(destination_context),
            || {
                self.hsm.re_encrypt(
                    ciphertext_blob,
                    source_context,
                    source_key_id,
                    destination_key_id,
                    destination_context,
                )
            },
        )
    }

    /// GenerateDataKey.
    pub fn generate_data_key(
        &self,
        key_id: &str,
        key_spec: Option<DataKeySpec>,
        number_of_bytes: Option<u32>,
        context: &EncryptionContext,
    ) -> Result<DataKey> {
        self.run_read_only(
            Request::key("kms:GenerateDataKey", key_id).context(context),
            || {
                self.hsm
                    .generate_data_key(key_id, key_spec, number_of_bytes, context)
            },
        )
    }

    /// GenerateDataKeyWithoutPlaintext.
    pub fn generate_data_key_without_plaintext(
        &self,
        key_id: &str,
        key_spec: Option<DataKeySpec>,
        number_of_bytes: Option<u32>,
        context: &EncryptionContext,
    ) -> Result<DataKey> {
        self.run_read_only(
            Request::key("kms:GenerateDataKeyWithoutPlaintext", key_id).context(context),
            || {
                self.hsm.generate_data_key_without_plaintext(
                    key_id,
                    key_spec,
                    number_of_bytes,
                    context,
                )
            },
        )
    }

    /// GenerateDataKeyPair / GenerateDataKeyPairWithoutPlaintext.
    pub fn generate_data_key_pair(
        &self,
        key_id: &str,
        key_pair_spec: DataKeyPairSpec,
        context: &EncryptionContext,
        with_plaintext: bool,
    ) -> Result<DataKeyPair> {
        let action = if with_plaintext {
            "kms:GenerateDataKeyPair"
        } else {
            "kms:GenerateDataKeyPairWithoutPlaintext"
        };
        self.run_read_only(Request::key(action, key_id).context(context), || {
            self.hsm
                .generate_data_key_pair(key_id, key_pair_spec, context, with_plaintext)
        })
    }

    /// GenerateRandom.
    pub fn generate_random(&self, number_of_bytes: u32) -> Result<Zeroizing<Vec<u8>>> {
        self.run(Request::account("kms:GenerateRandom"), || {
            self.hsm.generate_random(number_of_bytes)
        })
    }

    /// Sign.
    pub fn sign(
        &self,
        key_id: &str,
        message: &[u8],
        message_type: MessageType,
        algorithm: SigningAlgorithm,
    ) -> Result<SignOutput> {
        self.run_read_only(
            Request::key("kms:Sign", key_id).condition("kms:SigningAlgorithm", algorithm),
            || self.hsm.sign(key_id, message, message_type, algorithm),
        )
    }

    /// Verify.
    pub fn verify(
        &self,
        key_id: &str,
        message: &[u8],
        message_type: MessageType,
        signature: &[u8],
        algorithm: SigningAlgorithm,
    ) -> Result<VerifyOutput> {
        self.run_read_only(
            Request::key("kms:Verify", key_id).condition("kms:SigningAlgorithm", algorithm),
            || {
                self.hsm
                    .verify(key_id, message, message_type, signature, algorithm)
            },
        )
    }

    /// GetPublicKey.
    pub fn get_public_key(&self, key_id: &str) -> Result<PublicKeyOutput> {
        self.run(Request::key("kms:GetPublicKey", key_id), || {
            self.hsm.get_public_key(key_id)
        })
    }

    /// Encapsulate (ML-KEM keys).
    pub fn encapsulate(
        &self,
        key_id: &str,
        algorithm: EncapsulationAlgorithm,
    ) -> Result<EncapsulateOutput> {
        self.run_read_only(Request::key("kms:Encapsulate", key_id), || {
            self.hsm.encapsulate(key_id, algorithm)
        })
    }

    /// Decapsulate (ML-KEM keys).
    pub fn decapsulate(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        algorithm: EncapsulationAlgorithm,
    ) -> Result<DecapsulateOutput> {
        self.run_read_only(Request::key("kms:Decapsulate", key_id), || {
            self.hsm.decapsulate(key_id, ciphertext, algorithm)
        })
    }

    /// GenerateMac.
    pub fn generate_mac(
        &self,
        key_id: &str,
        message: &[u8],
        algorithm: MacAlgorithm,
    ) -> Result<MacOutput> {
        self.run_read_only(
            Request::key("kms:GenerateMac", key_id).condition("kms:MacAlgorithm", algorithm),
            || self.hsm.generate_mac(key_id, message, algorithm),
        )
    }

    /// VerifyMac.
    pub fn verify_mac(
        &self,
        key_id: &str,
        message: &[u8],
        mac: &[u8],
        algorithm: MacAlgorithm,
    ) -> Result<String> {
        self.run_read_only(
            Request::key("kms:VerifyMac", key_id).condition("kms:MacAlgorithm", algorithm),
            || self.hsm.verify_mac(key_id, message, mac, algorithm),
        )
    }
}

/// The key a Decrypt acts on for authorization: the one named, else the
/// one the blob's header names (unauthenticated at this point; the
/// operation itself then authenticates the blob under that very key).
/// A blob whose header does not parse is refused as malformed
/// (`InvalidCiphertextException`), as the operation itself would.
fn blob_key_ref(ciphertext_blob: &[u8], key_id: Option<&str>) -> Result<String> {
    if let Some(key_id) = key_id {
        return Ok(key_id.to_string());
    }
    let header = crate::envelope::parse_header(ciphertext_blob)?;
    Ok(uuid::Uuid::from_bytes(header.key_id)
        .hyphenated()
        .to_string())
}
