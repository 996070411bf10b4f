//! Evaluation of a compiled key policy against one request, as AWS
//! documents it for a key policy alone: an explicit Deny wins, else an Allow
//! permits, else the request is denied by default. Grants are combined with
//! the result by the caller ([`Decision::permits_with_grant`]).

use super::conditions::ConditionContext;
use super::document::{Effect, KeyPolicy, Statement};

/// What a request asks: who, what action, on which key, with which values.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The caller's principal ARN (`arn:aws:iam::<account>:user/alice`).
    pub principal: &'a str,
    /// The action, `kms:Encrypt` (compared case-insensitively).
    pub action: &'a str,
    /// The key's ARN.
    pub resource: &'a str,
    /// The condition key values of the request.
    pub context: &'a ConditionContext,
}

/// The key policy's verdict on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A statement allows it and none denies it.
    Allow,
    /// A Deny statement applies: nothing, not even a grant, permits it.
    ExplicitDeny,
    /// No statement applies: only a grant can permit it.
    ImplicitDeny,
}

impl Decision {
    /// Whether the request goes ahead, given whether a grant allows it.
    pub fn permits_with_grant(self, grant_allows: bool) -> bool {
        match self {
            Decision::Allow => true,
            Decision::ExplicitDeny => false,
            Decision::ImplicitDeny => grant_allows,
        }
    }
}

impl Statement {
    /// Whether the statement applies to the request (its effect aside).
    fn applies(&self, r: &Request<'_>) -> bool {
        self.principals.contains(r.principal) != self.not_principal
            && self
                .actions
                .patterns
                .iter()
                .any(|p| p.matches_folded(r.action))
                != self.actions.negated
            && self
                .resources
                .patterns
                .iter()
                .any(|p| p.matches(r.resource))
                != self.resources.negated
            && self.conditions.iter().all(|c| c.holds(r.context))
    }
}

impl KeyPolicy {
    /// Evaluates the policy for one request.
    pub fn evaluate(&self, r: &Request<'_>) -> Decision {
        let mut allowed = false;
        for s in &self.statements {
            if s.effect == Effect::Allow && allowed {
                continue;
            }
            if s.applies(r) {
                match s.effect {
                    Effect::Deny => return Decision::ExplicitDeny,
                    Effect::Allow if !self.has_deny => return Decision::Allow,
                    Effect::Allow => allowed = true,
                }
            }
        }
        if allowed {
            Decision::Allow
        } else {
            Decision::ImplicitDeny
        }
    }
}
