//! The gate's key policy and grant operations: CreateKey with a Policy,
//! PutKeyPolicy, GetKeyPolicy, ListKeyPolicies, CreateGrant, ListGrants,
//! ListRetirableGrants, RetireGrant, RevokeGrant, and the grant-token check
//! of the operations that accept GrantTokens.

use std::sync::Arc;

use super::{Gate, Request};
use crate::error::{Error, Result};
use crate::grants::{
    self, CreateGrantOutput, CreateGrantRequest, Grant, GrantListEntry, GrantOperation,
    MAX_GRANTS_PER_KEY,
};
use crate::hsm::{require_not_pending, Hsm};
use crate::identity::Principal;
use crate::outputs::CreateKeyRequest;
use crate::policy::authz::{denied, put_policy_row, StoredPolicy};
use crate::policy::{creator_key_policy, principal_arn, Decision, DEFAULT_POLICY_NAME};
use crate::types::{printable, KeyMetadata, Page};

/// What AWS answers when a new policy would lock its caller out.
const LOCKOUT: &str = "The new key policy will not allow you to update the key policy in the \
                       future (the lockout safety check; set BypassPolicyLockoutSafetyCheck to \
                       override)";

impl<'a> Gate<'a> {
    /// The dry-run stop of a call that decides on its own (inside its
    /// `record`).
    fn stop_if_dry_run(&self) -> Result<()> {
        if self.dry_run {
            return Err(Error::DryRun(
                "The request would have succeeded, but the DryRun option is set.".to_string(),
            ));
        }
        Ok(())
    }

    fn principal_arn(&self) -> String {
        self.caller.principal.arn_in(self.hsm.account())
    }

    /// Refuses a policy that would not let the caller call PutKeyPolicy
    /// on `key_arn` again (unless the caller bypasses the check).
    fn lockout_check(&self, policy: &StoredPolicy, key_arn: &str) -> Result<()> {
        if self.caller.principal == Principal::Service {
            return Ok(());
        }
        let principal = self.principal_arn();
        let request = Request::key("kms:PutKeyPolicy", key_arn);
        let ctx = self.hsm.condition_context(&principal, &request, None);
        let decision = policy.compiled.evaluate(&crate::policy::Request {
            principal: &principal,
            action: "kms:PutKeyPolicy",
            resource: key_arn,
            context: &ctx,
        });
        if decision != Decision::Allow {
            return Err(Error::MalformedPolicyDocument(LOCKOUT.to_string()));
        }
        Ok(())
    }

    /// CreateKey with a key policy (`Policy`) and
    /// `BypassPolicyLockoutSafetyCheck`. Without a policy, the key gets
    /// AWS's default policy; a key a user creates also gets a statement
    /// giving that user `kms:*` on it (Tinfoil's rule).
    pub fn create_key_with_policy(
        &self,
        request: CreateKeyRequest,
        policy: Option<&str>,
        bypass_policy_lockout_safety_check: bool,
    ) -> Result<KeyMetadata> {
        let mut check = Request::account("kms:CreateKey");
        if let Some(spec) = request.key_spec {
            check = check.condition("kms:KeySpec", spec);
        }
        if let Some(usage) = request.key_usage {
            check = check.condition("kms:KeyUsage", usage);
        }
        let check = check.param(
            "bypassPolicyLockoutSafetyCheck",
            bypass_policy_lockout_safety_check,
        );
        self.record(&check, || {
            self.authorize(&check)?;
            let account = self.hsm.account().clone();
            let policy = match (policy, &self.caller.principal) {
                (Some(text), _) => {
                    let parsed = self.hsm.parse_policy(text)?;
                    if !bypass_policy_lockout_safety_check {
                        // The new key's id is not known yet: policies name it "*".
                        let any_key = format!("{}key/*", account.kms_arn_prefix());
                        self.lockout_check(&parsed, &any_key)?;
                    }
                    Some(parsed)
                }
                (None, Principal::User(_)) => Some(self.hsm.parse_policy(&creator_key_policy(
                    &account.account_id,
                    &self.principal_arn(),
                ))?),
                (None, _) => None,
            };
            self.stop_if_dry_run()?;
            self.hsm.create_key_with_policy(request, policy)
        })
    }

    /// PutKeyPolicy: replaces the key's policy (name `default`).
    pub fn put_key_policy(
        &self,
        key_id: &str,
        policy_name: Option<&str>,
        policy: &str,
        bypass_policy_lockout_safety_check: bool,
    ) -> Result<()> {
        let request = Request::key("kms:PutKeyPolicy", key_id)
            .param("policyName", policy_name.unwrap_or(DEFAULT_POLICY_NAME))
            .param(
                "bypassPolicyLockoutSafetyCheck",
                bypass_policy_lockout_safety_check,
            );
        self.record(&request, || {
            self.authorize(&request)?;
            check_policy_name(policy_name, false)?;
            let parsed = self.hsm.parse_policy(policy)?;
            let key = self.hsm.key_facts(key_id)?;
            if !bypass_policy_lockout_safety_check {
                self.lockout_check(&parsed, &key.arn())?;
            }
            self.stop_if_dry_run()?;
            self.hsm.put_key_policy(&key.id, parsed)
        })
    }

    /// GetKeyPolicy: the key's policy text (the default policy for a key
    /// that never had another).
    pub fn get_key_policy(&self, key_id: &str, policy_name: Option<&str>) -> Result<String> {
        self.run(Request::key("kms:GetKeyPolicy", key_id), || {
            check_policy_name(policy_name, true)?;
            let key = self.hsm.key_facts(key_id)?;
            Ok(self.hsm.read_authz().policy(&key.id)?.text.clone())
        })
    }

    /// ListKeyPolicies: `default`, the only policy a key has.
    pub fn list_key_policies(
        &self,
        key_id: &str,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<String>> {
        self.run(Request::key("kms:ListKeyPolicies", key_id), || {
            self.hsm.key_facts(key_id)?;
            crate::ops_keys::paginate(
                [(
                    DEFAULT_POLICY_NAME.to_string(),
                    DEFAULT_POLICY_NAME.to_string(),
                )],
                limit,
                marker,
                |m| m == DEFAULT_POLICY_NAME,
            )
        })
    }

    /// Checks the GrantTokens of a request: at most 10, each one this store
    /// issued. Grants take effect at once here, so tokens are never needed.
    pub fn check_grant_tokens(&self, grant_tokens: &[String]) -> Result<()> {
        self.hsm.read_authz().check_tokens(grant_tokens)
    }

    /// CreateGrant. Allowed by the key policy (kms:CreateGrant, with the
    /// conditions kms:GrantOperations, kms:GranteePrincipal,
    /// kms:RetiringPrincipal, kms:GrantConstraintType,
    /// kms:GrantIsForAWSResource), or by a grant of the caller's with
    /// CreateGrant that covers the new grant's operations under equal or
    /// looser constraints. An identical repeat with the same Name returns
    /// the same grant.
    pub fn create_grant(&self, request: CreateGrantRequest) -> Result<CreateGrantOutput> {
        let operations: Vec<&str> = request.operations.iter().map(|o| o.as_str()).collect();
        let recorded = Request::key("kms:CreateGrant", &request.key_id)
            .param("granteePrincipal", request.grantee_principal.as_str())
            .param("operations", operations)
            .param("name", request.name.as_deref());
        self.record(&recorded, || {
            let key = self.hsm.key_facts(&request.key_id)?;
            grants::validate_request(&request, key.spec, key.usage)?;
            self.check_grant_tokens(&request.grant_tokens)?;
            let grantee = self.grant_principal("GranteePrincipal", &request.grantee_principal)?;
            let retiring = match &request.retiring_principal {
                Some(r) => Some(self.grant_principal("RetiringPrincipal", r)?),
                None => None,
            };
            let mut check = Request::key("kms:CreateGrant", &request.key_id)
                .condition("kms:GranteePrincipal", &grantee)
                .condition("kms:GrantIsForAWSResource", false);
            for op in &request.operations {
                check = check.condition("kms:GrantOperations", op);
            }
            if let Some(r) = &retiring {
                check = check.condition("kms:RetiringPrincipal", r);
            }
            if let Some(c) = &request.constraints {
                for t in c.types() {
                    check = check.condition("kms:GrantConstraintType", t);
                }
            }
            self.authorize_create_grant(&check, &key, &request)?;
            self.stop_if_dry_run()?;
            let issuing = self.principal_arn();
            self.hsm
                .create_grant(&key.id, &request, grantee, retiring, issuing)
        })
    }

    /// The CreateGrant decision: policy, else a grant that may pass on.
    fn authorize_create_grant(
        &self,
        check: &Request<'_>,
        key: &crate::policy::authz::KeyFacts,
        request: &CreateGrantRequest,
    ) -> Result<()> {
        if self.caller.principal == Principal::Service {
            return Ok(());
        }
        let principal = self.principal_arn();
        let authz = self.hsm.read_authz();
        let decision = self.hsm.policy_decision(&authz, &principal, check, key)?;
        let by_grant = || {
            authz.grants.with_key(&key.id, |g| {
                g.of_grantee(&key.id, &principal)
                    .iter()
                    .any(|g| g.may_pass_on(&request.operations, request.constraints.as_ref()))
            })
        };
        match decision {
            Decision::Allow => Ok(()),
            Decision::ImplicitDeny if by_grant()? => Ok(()),
            other => Err(denied(&principal, "kms:CreateGrant", &key.arn(), other)),
        }
    }

    /// A grantee or retiring principal: this account's root (ARN or bare
    /// account id) or one of its users.
    fn grant_principal(&self, what: &str, text: &str) -> Result<String> {
        principal_arn(text)
            .filter(|arn| self.hsm.known_principal(arn))
            .ok_or_else(|| {
                Error::validation(format!(
                    "{what} {} is not this account's root or one of its users",
                    printable(text)
                ))
            })
    }

    /// ListGrants: the key's grants, optionally one grant or one grantee's.
    pub fn list_grants(
        &self,
        key_id: &str,
        grant_id: Option<&str>,
        grantee_principal: Option<&str>,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<GrantListEntry>> {
        self.run(
            Request::key("kms:ListGrants", key_id).condition("kms:GrantIsForAWSResource", false),
            || {
                let key = self.hsm.key_facts(key_id)?;
                if let Some(id) = grant_id {
                    check_grant_id(id)?;
                }
                let grantee = grantee_principal.map(|g| principal_arn(g).unwrap_or(g.to_string()));
                let authz = self.hsm.read_authz();
                let issuing = self.hsm.account().root_arn();
                authz.grants.with_key(&key.id, |all| {
                    grants::page(
                        all.of_key(&key.id, marker).filter(|g| {
                            grant_id.is_none_or(|id| g.grant_id == id)
                                && grantee.as_deref().is_none_or(|p| g.grantee == p)
                        }),
                        |g| g.entry(key.arn(), issuing.clone()),
                        limit,
                        marker,
                    )
                })?
            },
        )
    }

    /// ListRetirableGrants: the grants whose retiring principal is
    /// `retiring_principal`. Administrators may list anyone's; a user only
    /// their own.
    pub fn list_retirable_grants(
        &self,
        retiring_principal: &str,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<GrantListEntry>> {
        let request = Request::account("kms:ListRetirableGrants")
            .param("retiringPrincipal", retiring_principal);
        self.record(&request, || {
            let retiring = principal_arn(retiring_principal).ok_or_else(|| {
                Error::validation(format!(
                    "RetiringPrincipal {} is not a principal ARN",
                    printable(retiring_principal)
                ))
            })?;
            let caller = self.principal_arn();
            match &self.caller.principal {
                Principal::Root | Principal::Service => {}
                Principal::User(_) if caller == retiring => {}
                Principal::User(_) => {
                    return Err(Error::AccessDenied(format!(
                        "User: {caller} is not authorized to perform: kms:ListRetirableGrants \
                         because a user may list only the grants it may retire"
                    )))
                }
            }
            self.stop_if_dry_run()?;
            let size = crate::ops_keys::page_size(limit, marker, grants::is_grant_id)?;
            let authz = self.hsm.read_authz();
            let issuing = self.hsm.account().root_arn();
            let retirable = authz.grants.retirable_by(&retiring, marker, size + 1)?;
            grants::page(
                retirable.iter(),
                |g| g.entry(crate::model::key_arn(&g.key_id), issuing.clone()),
                limit,
                marker,
            )
        })
    }

    /// RetireGrant, naming the grant by its token or by key and grant id.
    /// Allowed to the grant's retiring principal, to its grantee when the
    /// grant allows RetireGrant, to the account's administrators, and to
    /// whom the key policy allows kms:RetireGrant; an explicit Deny of
    /// kms:RetireGrant in the key policy beats all of these.
    pub fn retire_grant(
        &self,
        grant_token: Option<&str>,
        key_id: Option<&str>,
        grant_id: Option<&str>,
    ) -> Result<()> {
        let recorded = match key_id {
            Some(k) => Request::key("kms:RetireGrant", k),
            None => Request::account("kms:RetireGrant"),
        }
        .param("grantId", grant_id);
        self.record(&recorded, || {
            let grant = self.find_grant(grant_token, key_id, grant_id)?;
            if self.caller.principal != Principal::Service {
                let caller = self.principal_arn();
                let key_arn = crate::model::key_arn(&grant.key_id);
                let key = self.hsm.key_facts(&key_arn)?;
                let request = Request::key("kms:RetireGrant", &key_arn);
                let authz = self.hsm.read_authz();
                let decision = self.hsm.policy_decision(&authz, &caller, &request, &key)?;
                let by_grant = grant.retiring.as_deref() == Some(caller.as_str())
                    || (grant.grantee == caller && grant.allows(GrantOperation::RetireGrant, None))
                    || self.caller.principal.is_administrator();
                match decision {
                    Decision::Allow => {}
                    Decision::ImplicitDeny if by_grant => {}
                    other => return Err(denied(&caller, "kms:RetireGrant", &key_arn, other)),
                }
            }
            self.stop_if_dry_run()?;
            self.hsm.remove_grant(&grant.grant_id)
        })
    }

    /// RevokeGrant: needs kms:RevokeGrant in the key policy.
    pub fn revoke_grant(&self, key_id: &str, grant_id: &str) -> Result<()> {
        self.run(
            Request::key("kms:RevokeGrant", key_id)
                .condition("kms:GrantIsForAWSResource", false)
                .param("grantId", grant_id),
            || {
                let key = self.hsm.key_facts(key_id)?;
                check_grant_id(grant_id)?;
                let found = self
                    .hsm
                    .read_authz()
                    .grants
                    .get(grant_id)?
                    .is_some_and(|g| g.key_id == key.id);
                if !found {
                    return Err(grant_not_found(grant_id, &key.arn()));
                }
                self.hsm.remove_grant(grant_id)
            },
        )
    }

    fn find_grant(
        &self,
        grant_token: Option<&str>,
        key_id: Option<&str>,
        grant_id: Option<&str>,
    ) -> Result<Arc<Grant>> {
        let (id, key) = match (grant_token, key_id, grant_id) {
            (Some(token), _, _) => {
                let id = self.hsm.read_authz().grant_id_of_token(token)?;
                let key = match key_id {
                    Some(k) => Some(self.hsm.key_facts(k)?),
                    None => None,
                };
                (id, key)
            }
            (None, Some(k), Some(id)) => {
                let key = self.hsm.key_facts(k)?;
                check_grant_id(id)?;
                (id.to_string(), Some(key))
            }
            _ => {
                return Err(Error::validation(
                    "RetireGrant needs a GrantToken, or a KeyId and a GrantId",
                ))
            }
        };
        let authz = self.hsm.read_authz();
        match authz.grants.get(&id)? {
            Some(g) if key.as_ref().is_none_or(|k| k.id == g.key_id) => Ok(g.clone()),
            _ => Err(grant_not_found(
                &id,
                &key.map_or_else(|| "any key".to_string(), |k| k.arn()),
            )),
        }
    }
}

fn check_policy_name(name: Option<&str>, reading: bool) -> Result<()> {
    match name {
        None => Ok(()),
        Some(n) if n == DEFAULT_POLICY_NAME => Ok(()),
        Some(n) if reading => Err(Error::NotFound(format!(
            "key policy {} does not exist: a key's only policy is named default",
            printable(n)
        ))),
        Some(n) => Err(Error::validation(format!(
            "policy name {} is not valid: a key's only policy is named default",
            printable(n)
        ))),
    }
}

fn check_grant_id(id: &str) -> Result<()> {
    if !grants::is_grant_id(id) {
        return Err(Error::validation(format!(
            "grant id {} is not valid (InvalidGrantId): 64 hex digits",
            printable(id)
        )));
    }
    Ok(())
}

fn grant_not_found(id: &str, key_arn: &str) -> Error {
    Error::NotFound(format!("grant {id} does not exist on {key_arn}"))
}

impl Hsm {
    /// CreateKey that stores `policy` (None: the default policy) in the
    /// key's own transaction.
    pub(crate) fn create_key_with_policy(
        &self,
        request: CreateKeyRequest,
        policy: Option<Arc<StoredPolicy>>,
    ) -> Result<KeyMetadata> {
        self.create_key_inner(request, crate::types::Origin::AwsKms, None, &[], policy)
    }

    /// Replaces a key's policy: committed, then in memory.
    pub(crate) fn put_key_policy(&self, key: &uuid::Uuid, policy: Arc<StoredPolicy>) -> Result<()> {
        // The state lock keeps the key from being destroyed meanwhile.
        let state = self.read_state();
        if state.get(key)?.is_none() {
            return Err(Error::NotFound(format!(
                "key {} does not exist",
                crate::model::key_arn(key)
            )));
        }
        let mut authz = self.write_authz();
        self.lock_store()
            .write(|tx| put_policy_row(tx, key, &policy.text))?;
        authz.set_policy(*key, policy);
        drop(authz);
        drop(state);
        Ok(())
    }

    /// Stores a new grant (or finds the identical named one).
    fn create_grant(
        &self,
        key_id: &uuid::Uuid,
        request: &CreateGrantRequest,
        grantee: String,
        retiring: Option<String>,
        issuing: String,
    ) -> Result<CreateGrantOutput> {
        let state = self.read_state();
        let key = state.get(key_id)?.ok_or_else(|| {
            Error::NotFound(format!(
                "key {} does not exist",
                crate::model::key_arn(key_id)
            ))
        })?;
        require_not_pending(&key)?;
        let authz = self.write_authz();
        if let Some(name) = &request.name {
            let same = authz.grants.with_key(key_id, |g| {
                g.of_grantee(key_id, &grantee)
                    .iter()
                    .find(|g| {
                        g.same_as(
                            name,
                            &grantee,
                            retiring.as_deref(),
                            &request.operations,
                            request.constraints.as_ref(),
                        )
                    })
                    .map(|g| g.grant_id.clone())
            })?;
            if let Some(grant_id) = same {
                return Ok(CreateGrantOutput {
                    grant_token: authz.token_for(&grant_id),
                    grant_id,
                });
            }
        }
        if authz.grants.with_key(key_id, |g| g.count(key_id))? >= MAX_GRANTS_PER_KEY {
            return Err(Error::LimitExceeded(format!(
                "{} already has {MAX_GRANTS_PER_KEY} grants, the most a key may have",
                key.arn()
            )));
        }
        let grant = Grant::new(
            grants::new_grant_id()?,
            *key_id,
            request.name.clone(),
            grantee,
            retiring,
            &request.operations,
            request.constraints.clone(),
            issuing,
            self.now(),
        );
        self.lock_store()
            .write(|tx| grants::put_grant(tx, &grant))?;
        let output = CreateGrantOutput {
            grant_token: authz.token_for(&grant.grant_id),
            grant_id: grant.grant_id.clone(),
        };
        authz.grants.insert(grant);
        drop(authz);
        drop(state);
        Ok(output)
    }

    /// Deletes a grant: committed, then gone from memory (the very next
    /// call no longer sees it).
    fn remove_grant(&self, grant_id: &str) -> Result<()> {
        let state = self.read_state();
        let authz = self.write_authz();
        let Some(grant) = authz.grants.get(grant_id)? else {
            return Err(Error::NotFound(format!("grant {grant_id} does not exist")));
        };
        self.lock_store()
            .write(|tx| grants::delete_grant(tx, grant_id))?;
        authz.grants.remove(&grant.key_id, grant_id);
        drop(authz);
        drop(state);
        Ok(())
    }
}
