//! Key policies: AWS's policy grammar, parsed once into a compiled form and
//! evaluated per request without allocating.
//!
//! - [`KeyPolicy::parse`] validates a document (32 KiB at most, known
//!   principals only) and compiles its wildcards and conditions.
//! - [`KeyPolicy::evaluate`] answers a [`Request`] (principal ARN, action,
//!   key ARN, [`ConditionContext`]) with a [`Decision`]: an explicit Deny
//!   wins, else an Allow permits, else denied by default (a grant may still
//!   permit, see [`Decision::permits_with_grant`]).
//! - [`default_key_policy`] is AWS's default policy for an account.
//!
//! Tinfoil has no IAM identity policies: a statement naming the account root
//! allows the account's administrators and nobody else.

pub(crate) mod authz;
mod conditions;
mod document;
mod eval;
mod pattern;

pub use authz::DEFAULT_USER_ACCOUNT_ACTIONS;
pub use conditions::ConditionContext;
pub(crate) use document::principal_arn;
pub use document::{Effect, KeyPolicy};
pub use eval::{Decision, Request};

/// The largest key policy accepted, in bytes (AWS: 32 KiB).
pub const MAX_POLICY_BYTES: usize = 32 * 1024;

/// The only policy name a key has (`ListKeyPolicies`).
pub const DEFAULT_POLICY_NAME: &str = "default";

/// Why a policy document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not a valid key policy (`MalformedPolicyDocumentException`).
    #[error("{0}")]
    Malformed(String),
    /// Over [`MAX_POLICY_BYTES`] (`LimitExceededException`).
    #[error("{0}")]
    TooLarge(String),
}

/// AWS's default key policy: the account root (the account's
/// administrators, in Tinfoil) may do everything with the key.
pub fn default_key_policy(account_id: &str) -> String {
    policy_text(account_id, None)
}

/// The policy of a key a user created without a Policy: the default policy
/// plus a statement giving the creator `kms:*` on the key (Tinfoil's rule,
/// standing in for the IAM policy that would let the creator use it in AWS).
pub fn creator_key_policy(account_id: &str, creator_arn: &str) -> String {
    policy_text(account_id, Some(creator_arn))
}

fn policy_text(account_id: &str, creator_arn: Option<&str>) -> String {
    let quote = |s: &str| serde_json::Value::from(s).to_string();
    let statement = |sid: &str, principal: &str| {
        format!(
            "  {{\n    \"Sid\" : {},\n    \"Effect\" : \"Allow\",\n    \"Principal\" : {{\n      \
             \"AWS\" : {}\n    }},\n    \"Action\" : \"kms:*\",\n    \"Resource\" : \"*\"\n  }}",
            quote(sid),
            quote(principal)
        )
    };
    let mut statements = vec![statement(
        "Enable IAM User Permissions",
        &format!("arn:aws:iam::{account_id}:root"),
    )];
    if let Some(arn) = creator_arn {
        statements.push(statement("Allow the key's creator", arn));
    }
    format!(
        "{{\n  \"Version\" : \"2012-10-17\",\n  \"Id\" : \"key-default-1\",\n  \"Statement\" : [ {} ]\n}}",
        statements.join(", ")
    )
}

#[cfg(test)]
mod tests;
