//! Key policy and grant subcommands, with `aws kms`'s flag names:
//! `--policy` takes the JSON text or `file://PATH`, `--operations` takes
//! several values, `--constraints` takes KMS's JSON shape
//! (`{"EncryptionContextSubset": {"dept": "hr"}}`).

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use prost_reflect::DynamicMessage;
use tinfoil_daemon::render;
use tinfoil_proto::v1 as pb;
use tinfoil_proto::v1::key_management_client::KeyManagementClient;
use tonic::transport::Channel;

use crate::args::{KeyId, Paging};
use crate::run::Failure;

/// Key policy and grant operations.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Show a key's policy.
    GetKeyPolicy {
        #[command(flatten)]
        key: KeyId,
        /// Always `default`.
        #[arg(long, default_value = "default")]
        policy_name: String,
    },
    /// Replace a key's policy (refused if it would lock the caller out,
    /// unless --bypass-policy-lockout-safety-check).
    PutKeyPolicy {
        #[command(flatten)]
        key: KeyId,
        /// Always `default`.
        #[arg(long, default_value = "default")]
        policy_name: String,
        /// The policy JSON, or file://PATH.
        #[arg(long)]
        policy: String,
        /// Skip the lockout safety check.
        #[arg(long)]
        bypass_policy_lockout_safety_check: bool,
    },
    /// List a key's policy names.
    ListKeyPolicies {
        #[command(flatten)]
        key: KeyId,
        #[command(flatten)]
        paging: Paging,
    },
    /// Give a principal some operations on a key.
    CreateGrant(CreateGrant),
    /// List a key's grants.
    ListGrants {
        #[command(flatten)]
        key: KeyId,
        /// Only this grant.
        #[arg(long)]
        grant_id: Option<String>,
        /// Only grants to this principal.
        #[arg(long)]
        grantee_principal: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// List the grants a principal may retire.
    ListRetirableGrants {
        /// The retiring principal's ARN.
        #[arg(long)]
        retiring_principal: String,
        #[command(flatten)]
        paging: Paging,
    },
    /// Retire a grant: by its token, or by key id and grant id.
    RetireGrant {
        /// The grant token CreateGrant returned.
        #[arg(long)]
        grant_token: Option<String>,
        /// The key (with --grant-id).
        #[arg(long)]
        key_id: Option<String>,
        /// The grant (with --key-id).
        #[arg(long)]
        grant_id: Option<String>,
    },
    /// Revoke a grant.
    RevokeGrant {
        #[command(flatten)]
        key: KeyId,
        /// The grant.
        #[arg(long)]
        grant_id: String,
    },
}

/// `create-grant`'s flags.
#[derive(Debug, Args)]
pub struct CreateGrant {
    #[command(flatten)]
    key: KeyId,
    /// Who receives the operations (a principal ARN).
    #[arg(long)]
    grantee_principal: String,
    /// Who may retire the grant.
    #[arg(long)]
    retiring_principal: Option<String>,
    /// Operations: Encrypt Decrypt GenerateDataKey ... (several values).
    #[arg(long, num_args = 1.., required = true)]
    operations: Vec<String>,
    /// JSON: {"EncryptionContextEquals": {...}} or {"EncryptionContextSubset": {...}}.
    #[arg(long)]
    constraints: Option<String>,
    /// A name; repeating the same request with it returns the same grant.
    #[arg(long)]
    name: Option<String>,
    /// Grant tokens (several values).
    #[arg(long, num_args = 1..)]
    grant_tokens: Vec<String>,
}

/// `--policy`: the text, or the contents of `file://PATH`.
pub fn policy_text(value: &str) -> Result<String, Failure> {
    match value.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| Failure::Local(format!("cannot read policy file {path}: {e}"))),
        None => Ok(value.to_string()),
    }
}

fn constraints(text: &str) -> Result<pb::GrantConstraints, Failure> {
    let bad = |why: String| Failure::Local(format!("--constraints: {why}"));
    let parsed: BTreeMap<String, BTreeMap<String, String>> =
        serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let mut out = pb::GrantConstraints::default();
    for (name, map) in parsed {
        match name.as_str() {
            "EncryptionContextEquals" => {
                out.encryption_context_equals = map.into_iter().collect();
            }
            "EncryptionContextSubset" => {
                out.encryption_context_subset = map.into_iter().collect();
            }
            other => {
                return Err(bad(format!(
                    "{other:?} is not EncryptionContextEquals or EncryptionContextSubset"
                )))
            }
        }
    }
    Ok(out)
}

fn rpc<T: prost::Message + prost::Name>(
    result: Result<tonic::Response<T>, tonic::Status>,
) -> Result<DynamicMessage, Failure> {
    result
        .map(|r| render::dynamic(&r.into_inner()))
        .map_err(Failure::Rpc)
}

/// Runs a policy or grant command.
pub async fn run(
    client: &mut KeyManagementClient<Channel>,
    command: PolicyCommand,
) -> Result<DynamicMessage, Failure> {
    match command {
        PolicyCommand::GetKeyPolicy { key, policy_name } => rpc(client
            .get_key_policy(pb::GetKeyPolicyRequest {
                key_id: key.key_id,
                policy_name,
            })
            .await),
        PolicyCommand::PutKeyPolicy {
            key,
            policy_name,
            policy,
            bypass_policy_lockout_safety_check,
        } => rpc(client
            .put_key_policy(pb::PutKeyPolicyRequest {
                key_id: key.key_id,
                policy_name,
                policy: policy_text(&policy)?,
                bypass_policy_lockout_safety_check,
            })
            .await),
        PolicyCommand::ListKeyPolicies { key, paging } => rpc(client
            .list_key_policies(pb::ListKeyPoliciesRequest {
                key_id: key.key_id,
                limit: paging.limit,
                marker: paging.marker,
            })
            .await),
        PolicyCommand::CreateGrant(g) => {
            let constraints = g.constraints.as_deref().map(constraints).transpose()?;
            rpc(client
                .create_grant(pb::CreateGrantRequest {
                    key_id: g.key.key_id,
                    grantee_principal: g.grantee_principal,
                    retiring_principal: g.retiring_principal,
                    operations: g.operations,
                    constraints,
                    grant_tokens: g.grant_tokens,
                    name: g.name,
                })
                .await)
        }
        PolicyCommand::ListGrants {
            key,
            grant_id,
            grantee_principal,
            paging,
        } => rpc(client
            .list_grants(pb::ListGrantsRequest {
                key_id: key.key_id,
                limit: paging.limit,
                marker: paging.marker,
                grant_id,
                grantee_principal,
            })
            .await),
        PolicyCommand::ListRetirableGrants {
            retiring_principal,
            paging,
        } => rpc(client
            .list_retirable_grants(pb::ListRetirableGrantsRequest {
                retiring_principal,
                limit: paging.limit,
                marker: paging.marker,
            })
            .await),
        PolicyCommand::RetireGrant {
            grant_token,
            key_id,
            grant_id,
        } => rpc(client
            .retire_grant(pb::RetireGrantRequest {
                grant_token,
                key_id,
                grant_id,
            })
            .await),
        PolicyCommand::RevokeGrant { key, grant_id } => rpc(client
            .revoke_grant(pb::RevokeGrantRequest {
                key_id: key.key_id,
                grant_id,
            })
            .await),
    }
}
