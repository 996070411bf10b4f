//! The authorization state of a store (every key's policy, every grant, the
//! account-level rule) and the one decision the gate asks for each call.
//!
//! Key policies are read from the store when a key is first used and
//! cached (bounded, least recently used first), and so are a key's grants
//! (see [`crate::grant_cache`]). Both are written through in the same store transaction as the change
//! they belong to. A key without a policy row (made before policies existed, or by the embedded PKCS#11
//! backend) has AWS's default policy: the account's administrators may do
//! everything with it.

use std::sync::{Arc, Mutex, MutexGuard, RwLockReadGuard, RwLockWriteGuard};

use crate::store::engine::{vals, Db};
use base64::Engine as _;
use ring::hmac;
use uuid::Uuid;

use super::{default_key_policy, ConditionContext, Decision, KeyPolicy, PolicyError, Request};
use crate::cache::Lru;
use crate::error::{Error, Result};
use crate::gate;
use crate::grant_cache::GrantCache;
use crate::grants::GrantOperation;
use crate::hsm::Hsm;
use crate::identity::{Account, Caller, Principal};
use crate::types::{EncryptionContext, KeySpec, KeyUsage};

/// The account-level actions users may call by default (administrators may
/// call every action).
pub const DEFAULT_USER_ACCOUNT_ACTIONS: [&str; 4] = [
    "kms:CreateKey",
    "kms:ListKeys",
    "kms:ListAliases",
    "kms:GenerateRandom",
];

/// A key policy as stored: the text as given, and its compiled form.
#[derive(Debug)]
pub(crate) struct StoredPolicy {
    pub text: String,
    pub compiled: KeyPolicy,
}

impl StoredPolicy {
    fn stored(text: String) -> Result<StoredPolicy> {
        let compiled = KeyPolicy::parse_stored(&text).map_err(|e| {
            Error::Internal(format!(
                "the store is corrupt: a stored key policy does not parse: {e}"
            ))
        })?;
        Ok(StoredPolicy { text, compiled })
    }
}

/// Policies, grants and the account-level rule of one store.
pub(crate) struct Authz {
    /// The policies of keys used lately (the default one for a key
    /// without a row); the store holds them all.
    policies: Mutex<Lru<Uuid, Arc<StoredPolicy>>>,
    reader: Arc<crate::store::Reader>,
    default_policy: Arc<StoredPolicy>,
    pub grants: GrantCache,
    /// Account-level actions users may call (`kms:CreateKey`, ...).
    user_account_actions: Vec<String>,
    /// Signs grant tokens (derived from the root key; never stored).
    token_key: hmac::Key,
}

impl std::fmt::Debug for Authz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authz").finish_non_exhaustive()
    }
}

/// Grant tokens: version byte, grant id (32 bytes), HMAC-SHA256 tag.
const TOKEN_VERSION: u8 = 1;
const TOKEN_LEN: usize = 1 + 32 + 32;
/// The longest grant token accepted before decoding (KMS: 8192).
const MAX_TOKEN_CHARS: usize = 8192;

impl Authz {
    /// The authorization state of a store: policies and grants are read
    /// through `reader` when a key is used (at most `capacity` keys' of
    /// each kept); the grant token key is derived from the store's root key.
    pub fn load(
        reader: Arc<crate::store::Reader>,
        capacity: usize,
        root_key: &[u8],
        account: &Account,
    ) -> Result<Authz> {
        let root = hmac::Key::new(hmac::HMAC_SHA256, root_key);
        let derived = hmac::sign(&root, b"tinfoil grant tokens v1");
        let grants = GrantCache::new(reader.clone(), capacity);
        Ok(Authz {
            policies: Mutex::new(Lru::new(capacity)),
            reader,
            default_policy: Arc::new(StoredPolicy::stored(default_key_policy(
                &account.account_id,
            ))?),
            grants,
            user_account_actions: DEFAULT_USER_ACCOUNT_ACTIONS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            token_key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
        })
    }

    fn cached(&self) -> MutexGuard<'_, Lru<Uuid, Arc<StoredPolicy>>> {
        // The cache stays consistent even if a holder panicked.
        self.policies.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The policy of a key (the default one when it has none stored).
    /// Changes are made under the write lock, so a reader holding the read
    /// lock never caches an old policy.
    pub fn policy(&self, key: &Uuid) -> Result<Arc<StoredPolicy>> {
        if let Some(policy) = self.cached().get(key) {
            return Ok(policy.clone());
        }
        let policy = match self.reader.policy(key)? {
            Some(text) => Arc::new(StoredPolicy::stored(text)?),
            None => self.default_policy.clone(),
        };
        self.cached().insert(*key, policy.clone());
        Ok(policy)
    }

    /// Replaces a key's policy in memory (after its row was committed).
    pub fn set_policy(&mut self, key: Uuid, policy: Arc<StoredPolicy>) {
        self.cached().insert(key, policy);
    }

    /// Forgets everything about a destroyed key.
    pub fn forget_key(&mut self, key: &Uuid) {
        self.cached().remove(key);
        self.grants.forget_key(key);
    }

    /// Forgets every cached policy and grant (another node changed them).
    pub fn forget_all(&mut self) {
        self.cached().remove_where(|_, _| true);
        self.grants.forget_all();
    }

    /// The token naming a grant.
    pub fn token_for(&self, grant_id: &str) -> String {
        let mut raw = Vec::with_capacity(TOKEN_LEN);
        raw.push(TOKEN_VERSION);
        raw.extend(hex_bytes(grant_id).unwrap_or_default());
        let tag = hmac::sign(&self.token_key, &raw);
        raw.extend_from_slice(tag.as_ref());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    /// The grant id a token names, if this store issued it.
    pub fn grant_id_of_token(&self, token: &str) -> Result<String> {
        let invalid = || Error::validation("the grant token is not valid (InvalidGrantToken)");
        if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
            return Err(invalid());
        }
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| invalid())?;
        if raw.len() != TOKEN_LEN || raw[0] != TOKEN_VERSION {
            return Err(invalid());
        }
        hmac::verify(&self.token_key, &raw[..33], &raw[33..]).map_err(|_| invalid())?;
        Ok(raw[1..33].iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Checks the grant tokens of a request: at most 10, each issued here.
    pub fn check_tokens(&self, tokens: &[String]) -> Result<()> {
        if tokens.len() > crate::grants::MAX_GRANT_TOKENS {
            return Err(Error::validation(format!(
                "at most {} grant tokens per request",
                crate::grants::MAX_GRANT_TOKENS
            )));
        }
        for token in tokens {
            self.grant_id_of_token(token)?;
        }
        Ok(())
    }

    fn user_may(&self, action: &str) -> bool {
        self.user_account_actions
            .iter()
            .any(|a| a.eq_ignore_ascii_case(action))
    }
}

fn hex_bytes(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Writes (or replaces) a key's policy row.
pub(crate) fn put_policy_row(tx: &Db<'_>, key: &Uuid, text: &str) -> Result<()> {
    let id = key.hyphenated().to_string();
    tx.execute(
        "INSERT INTO key_policies (key_id, policy) VALUES (?1, ?2)
         ON CONFLICT(key_id) DO UPDATE SET policy = excluded.policy",
        &vals![&id, text],
    )?;
    crate::store::pg::notify(tx, &id)?;
    Ok(())
}

impl From<PolicyError> for Error {
    fn from(e: PolicyError) -> Error {
        match e {
            PolicyError::Malformed(m) => Error::MalformedPolicyDocument(m),
            PolicyError::TooLarge(m) => Error::LimitExceeded(m),
        }
    }
}

/// The facts about the key a request acts on that the decision needs.
pub(crate) struct KeyFacts {
    pub id: Uuid,
    pub spec: KeySpec,
    pub usage: KeyUsage,
}

impl KeyFacts {
    /// The key's ARN.
    pub fn arn(&self) -> String {
        crate::model::key_arn(&self.id)
    }
}

/// `kms:EncryptionContext:<k>` and `kms:EncryptionContextKeys`.
fn add_context(ctx: &mut ConditionContext, context: &EncryptionContext) {
    // Distinct map keys; two differing only in case both stay, and a
    // condition on that key sees the first.
    for (k, v) in context {
        ctx.push(format!("kms:EncryptionContext:{k}"), vec![v.clone()]);
    }
    ctx.set_all(
        "kms:EncryptionContextKeys",
        context.keys().cloned().collect(),
    );
}

impl Hsm {
    pub(crate) fn read_authz(&self) -> RwLockReadGuard<'_, Authz> {
        // Memory is only changed after a commit: a poisoned lock still
        // guards consistent data.
        self.authz.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write_authz(&self) -> RwLockWriteGuard<'_, Authz> {
        self.authz.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the account-level actions users may call (the setting
    /// `user_account_actions`; default CreateKey, ListKeys, ListAliases,
    /// GenerateRandom). Names may be given with or without `kms:`.
    /// Administrators may always call every action.
    pub fn set_user_account_actions(&self, actions: &[String]) {
        self.write_authz().user_account_actions = actions
            .iter()
            .map(|a| {
                if a.contains(':') {
                    a.clone()
                } else {
                    format!("kms:{a}")
                }
            })
            .collect();
    }

    /// Whether `arn` names this account's root or one of its users (the
    /// principals a key policy or grant may name).
    pub(crate) fn known_principal(&self, arn: &str) -> bool {
        let account = &self.account().account_id;
        let Some(rest) = arn
            .strip_prefix("arn:aws:iam::")
            .and_then(|r| r.strip_prefix(account.as_str()))
            .and_then(|r| r.strip_prefix(':'))
        else {
            return false;
        };
        if rest == "root" {
            return true;
        }
        rest.strip_prefix("user/")
            .is_some_and(|name| self.read_identities().users.contains_key(name))
    }

    /// Parses and validates a policy document for a key of this store.
    pub(crate) fn parse_policy(&self, text: &str) -> Result<Arc<StoredPolicy>> {
        let compiled = KeyPolicy::parse(text, &|arn| self.known_principal(arn))?;
        Ok(Arc::new(StoredPolicy {
            text: text.to_string(),
            compiled,
        }))
    }

    /// The key a request names, with what the decision needs.
    pub(crate) fn key_facts(&self, key_ref: &str) -> Result<KeyFacts> {
        let state = self.read_state();
        let key = state.key(key_ref)?;
        Ok(KeyFacts {
            id: key.id,
            spec: key.spec,
            usage: key.usage,
        })
    }

    /// The condition values of a request on a key.
    pub(crate) fn condition_context(
        &self,
        principal_arn: &str,
        request: &gate::Request<'_>,
        key: Option<&KeyFacts>,
    ) -> ConditionContext {
        let mut ctx = ConditionContext::new();
        ctx.set("aws:PrincipalArn", principal_arn);
        ctx.set("kms:CallerAccount", self.account().account_id.clone());
        if let Some(key) = key {
            ctx.set("kms:KeySpec", key.spec.as_str());
            ctx.set("kms:KeyUsage", key.usage.as_str());
        }
        if let Some(key_ref) = request.key_ref {
            let prefix = &self.account().kms_arn_prefix();
            let bare = key_ref.strip_prefix(prefix.as_str()).unwrap_or(key_ref);
            if bare.starts_with("alias/") {
                ctx.set("kms:RequestAlias", bare);
            }
        }
        if let Some(context) = request.encryption_context {
            add_context(&mut ctx, context);
        }
        // Repeated names are the values of a multi-valued key.
        let mut multi: Vec<(&str, Vec<String>)> = Vec::new();
        for (name, value) in &request.conditions {
            match multi.iter_mut().find(|(n, _)| n == name) {
                Some((_, values)) => values.push(value.clone()),
                None => multi.push((name, vec![value.clone()])),
            }
        }
        for (name, values) in multi {
            ctx.set_all(name, values);
        }
        ctx
    }

    /// The gate's decision for one call: the account-level rule for
    /// actions without a key; for a key, its policy (an explicit Deny wins,
    /// an Allow permits) and then the caller's grants. Tinfoil itself (the
    /// service principal) is not subject to policies.
    pub(crate) fn authorize(&self, caller: &Caller, request: &gate::Request<'_>) -> Result<()> {
        let principal = &caller.principal;
        if *principal == Principal::Service {
            return Ok(());
        }
        let Some(key_ref) = request.key_ref else {
            return self.authorize_account(principal, request.action);
        };
        let key = match self.key_facts(key_ref) {
            Ok(key) => key,
            // A ciphertext naming a key that does not exist (never did, or
            // was destroyed): nothing to protect, and the operation itself
            // says what is wrong with the ciphertext. Only for key ids,
            // which can never come to exist later (an alias could).
            Err(Error::NotFound(_))
                if matches!(request.action, "kms:Decrypt" | "kms:ReEncryptFrom")
                    && names_key_id(key_ref) =>
            {
                return Ok(())
            }
            Err(e) => return Err(e),
        };
        let principal_arn = principal.arn_in(self.account());
        let authz = self.read_authz();
        let decision = self.policy_decision(&authz, &principal_arn, request, &key)?;
        let by_grant = || -> Result<bool> {
            match GrantOperation::for_action(request.action) {
                Some(op) => authz.grants.with_key(&key.id, |g| {
                    g.allows(&key.id, &principal_arn, op, request.encryption_context)
                }),
                None => Ok(false),
            }
        };
        match decision {
            Decision::Allow => Ok(()),
            Decision::ImplicitDeny if by_grant()? => Ok(()),
            other => Err(denied(&principal_arn, request.action, &key.arn(), other)),
        }
    }

    /// The key policy's verdict on a request (condition values are only
    /// built when the policy has conditions).
    pub(crate) fn policy_decision(
        &self,
        authz: &Authz,
        principal_arn: &str,
        request: &gate::Request<'_>,
        key: &KeyFacts,
    ) -> Result<Decision> {
        let policy = authz.policy(&key.id)?;
        let owned_ctx;
        let ctx = if policy.compiled.uses_conditions() {
            owned_ctx = self.condition_context(principal_arn, request, Some(key));
            &owned_ctx
        } else {
            &EMPTY_CONTEXT
        };
        // The key's ARN only when a statement names resources other than "*".
        let arn = if policy.compiled.needs_resource() {
            key.arn()
        } else {
            String::new()
        };
        Ok(policy.compiled.evaluate(&Request {
            principal: principal_arn,
            action: request.action,
            resource: &arn,
            context: ctx,
        }))
    }

    /// Account-level actions: administrators always, users for the
    /// actions of `user_account_actions`.
    pub(crate) fn authorize_account(&self, principal: &Principal, action: &str) -> Result<()> {
        match principal {
            Principal::Root | Principal::Service => Ok(()),
            Principal::User(_) if self.read_authz().user_may(action) => Ok(()),
            Principal::User(_) => Err(Error::AccessDenied(format!(
                "User: {} is not authorized to perform: {action} because no identity-based \
                 policy allows the {action} action (Tinfoil: the setting user_account_actions)",
                principal.arn_in(self.account())
            ))),
        }
    }
}

/// Whether a key reference is a key id or key ARN (not an alias).
fn names_key_id(key_ref: &str) -> bool {
    let bare = key_ref.rsplit_once(":key/").map_or(key_ref, |(_, id)| id);
    Uuid::try_parse(bare).is_ok()
}

/// The condition values of a request when the policy has no conditions.
static EMPTY_CONTEXT: ConditionContext = ConditionContext::new();

/// AccessDeniedException in AWS's words.
pub(crate) fn denied(
    principal_arn: &str,
    action: &str,
    key_arn: &str,
    decision: Decision,
) -> Error {
    let why = match decision {
        Decision::ExplicitDeny => "with an explicit deny in a resource-based policy".to_string(),
        _ => format!("because no resource-based policy allows the {action} action"),
    };
    Error::AccessDenied(format!(
        "User: {principal_arn} is not authorized to perform: {action} on resource: {key_arn} {why}"
    ))
}
