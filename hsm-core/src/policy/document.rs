//! Parsing and validation of a key policy document into its compiled form.
//!
//! The grammar is AWS's (IAM JSON policy language) as key policies use it:
//! `Version`, `Id`, `Statement` (one object or a list) whose statements have
//! `Sid`, `Effect`, `Principal` | `NotPrincipal`, `Action` | `NotAction`,
//! `Resource` | `NotResource` and `Condition`. Element names are
//! case-sensitive as in AWS; an unknown element is an error, never ignored.

use serde::Deserialize;
use serde_json::Value;

use super::conditions::{scalar_text, Condition};
use super::pattern::Pattern;
use super::{PolicyError, MAX_POLICY_BYTES};

/// The policy language versions AWS accepts.
const VERSIONS: [&str; 2] = ["2012-10-17", "2008-10-17"];

/// What a statement does when it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The statement permits.
    Allow,
    /// The statement forbids, whatever else permits.
    Deny,
}

/// The principals a statement names (`"*"` is `any`).
#[derive(Debug, Clone, Default)]
pub(crate) struct PrincipalSet {
    pub any: bool,
    pub arns: Vec<String>,
}

impl PrincipalSet {
    pub fn contains(&self, arn: &str) -> bool {
        self.any || self.arns.iter().any(|a| a == arn)
    }
}

/// A list of wildcard patterns, or its complement (`NotAction`, `NotResource`).
#[derive(Debug, Clone)]
pub(crate) struct PatternSet {
    pub negated: bool,
    pub patterns: Vec<Pattern>,
}

/// One compiled statement.
#[derive(Debug, Clone)]
pub(crate) struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    /// `true` for NotPrincipal.
    pub not_principal: bool,
    pub principals: PrincipalSet,
    /// Patterns compiled lower-case (action names are case-insensitive).
    pub actions: PatternSet,
    /// Case-sensitive ARN patterns.
    pub resources: PatternSet,
    pub conditions: Vec<Condition>,
}

/// A parsed, validated key policy, ready to evaluate.
#[derive(Debug, Clone)]
pub struct KeyPolicy {
    pub(crate) statements: Vec<Statement>,
    pub(crate) has_deny: bool,
    pub(crate) uses_conditions: bool,
    /// Some statement names resources other than "*" (or NotResource).
    pub(crate) needs_resource: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(rename = "Version")]
    version: Option<String>,
    #[serde(rename = "Id")]
    #[allow(dead_code)]
    id: Option<String>,
    #[serde(rename = "Statement")]
    statement: Statements,
}

/// `Statement`: one object or a list of them, deserialized straight from the
/// text so that duplicate and unknown elements are reported with their line.
struct Statements(Vec<RawStatement>);

impl<'de> Deserialize<'de> for Statements {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Statements;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a statement object or a list of statement objects")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Statements, A::Error> {
                let one =
                    RawStatement::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Statements(vec![one]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Statements, A::Error> {
                let mut all = Vec::new();
                while let Some(s) = seq.next_element::<RawStatement>()? {
                    all.push(s);
                }
                Ok(Statements(all))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatement {
    #[serde(rename = "Sid")]
    sid: Option<String>,
    #[serde(rename = "Effect")]
    effect: String,
    #[serde(rename = "Principal")]
    principal: Option<Value>,
    #[serde(rename = "NotPrincipal")]
    not_principal: Option<Value>,
    #[serde(rename = "Action")]
    action: Option<Value>,
    #[serde(rename = "NotAction")]
    not_action: Option<Value>,
    #[serde(rename = "Resource")]
    resource: Option<Value>,
    #[serde(rename = "NotResource")]
    not_resource: Option<Value>,
    #[serde(rename = "Condition")]
    condition: Option<serde_json::Map<String, Value>>,
}

fn malformed(msg: impl Into<String>) -> PolicyError {
    PolicyError::Malformed(msg.into())
}

/// A string or a non-empty list of strings.
fn strings(value: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    let list = match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(malformed(format!("{what} must contain only strings"))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => {
            return Err(malformed(format!(
                "{what} must be a string or a list of strings"
            )))
        }
    };
    if list.is_empty() {
        return Err(malformed(format!("{what} must not be empty")));
    }
    Ok(list)
}

/// The ARN a policy principal names, if it is a well-formed IAM root or user
/// principal: a bare 12-digit account id stands for that account's root.
pub(crate) fn principal_arn(text: &str) -> Option<String> {
    let is_account = |s: &str| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit());
    if is_account(text) {
        return Some(format!("arn:aws:iam::{text}:root"));
    }
    let rest = text.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    if !is_account(account) {
        return None;
    }
    if resource == "root" {
        return Some(text.to_owned());
    }
    let name = resource.strip_prefix("user/")?;
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    valid.then(|| text.to_owned())
}

fn principals(
    value: &Value,
    element: &str,
    known: &dyn Fn(&str) -> bool,
) -> Result<PrincipalSet, PolicyError> {
    let aws = match value {
        Value::String(s) if s == "*" => {
            return Ok(PrincipalSet {
                any: true,
                arns: vec![],
            })
        }
        Value::Object(map) => {
            if let Some(other) = map.keys().find(|k| *k != "AWS") {
                return Err(malformed(format!(
                    "{element} type {} is not supported: Tinfoil knows only \"AWS\" principals",
                    crate::types::printable(other)
                )));
            }
            map.get("AWS")
                .ok_or_else(|| malformed(format!("{element} must name \"AWS\" principals")))?
        }
        _ => {
            return Err(malformed(format!(
                "{element} must be \"*\" or {{\"AWS\": ARN or list of ARNs}}"
            )))
        }
    };
    let mut set = PrincipalSet::default();
    for p in strings(aws, element)? {
        if p == "*" {
            set.any = true;
            continue;
        }
        match principal_arn(&p) {
            Some(arn) if known(&arn) => set.arns.push(arn),
            _ => {
                return Err(malformed(format!(
                    "Policy contains a statement with one or more invalid principals: {} is not \
                     this account's root or one of its users",
                    crate::types::printable(&p)
                )))
            }
        }
    }
    Ok(set)
}

fn actions(value: &Value, element: &str) -> Result<PatternSet, PolicyError> {
    let list = strings(value, element)?;
    let mut patterns = Vec::with_capacity(list.len());
    for a in &list {
        let valid = a == "*"
            || a.split_once(':').is_some_and(|(service, name)| {
                !service.is_empty()
                    && service
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'*' || b == b'?')
            });
        if !valid {
            return Err(malformed(format!(
                "{element} {} is not an action: expected \"*\" or service:name such as \
                 \"kms:Encrypt\" or \"kms:Describe*\"",
                crate::types::printable(a)
            )));
        }
        patterns.push(Pattern::new(a, true));
    }
    Ok(PatternSet {
        negated: element == "NotAction",
        patterns,
    })
}

fn resources(value: &Value, element: &str) -> Result<PatternSet, PolicyError> {
    let list = strings(value, element)?;
    for r in &list {
        if r != "*" && !r.starts_with("arn:") {
            return Err(malformed(format!(
                "{element} {} must be \"*\" or an ARN",
                crate::types::printable(r)
            )));
        }
    }
    Ok(PatternSet {
        negated: element == "NotResource",
        patterns: list.iter().map(|r| Pattern::new(r, false)).collect(),
    })
}

fn conditions(block: &serde_json::Map<String, Value>) -> Result<Vec<Condition>, PolicyError> {
    let mut out = Vec::new();
    for (operator, entries) in block {
        let Value::Object(entries) = entries else {
            return Err(malformed(format!(
                "condition operator {} must map condition keys to values",
                crate::types::printable(operator)
            )));
        };
        if entries.is_empty() {
            return Err(malformed(format!(
                "condition operator {} names no condition key",
                crate::types::printable(operator)
            )));
        }
        for (key, values) in entries {
            let values = match values {
                Value::Array(items) => items
                    .iter()
                    .map(scalar_text)
                    .collect::<Result<Vec<_>, _>>()?,
                scalar => vec![scalar_text(scalar)?],
            };
            out.push(Condition::compile(operator, key, &values)?);
        }
    }
    Ok(out)
}

/// Exactly one of an element and its Not- form.
fn one_of<'v>(
    positive: &'v Option<Value>,
    negative: &'v Option<Value>,
    names: (&'static str, &'static str),
) -> Result<(&'v Value, &'static str), PolicyError> {
    match (positive, negative) {
        (Some(v), None) => Ok((v, names.0)),
        (None, Some(v)) => Ok((v, names.1)),
        (Some(_), Some(_)) => Err(malformed(format!(
            "a statement cannot have both {} and {}",
            names.0, names.1
        ))),
        (None, None) => Err(malformed(format!(
            "a key policy statement must have {} or {}",
            names.0, names.1
        ))),
    }
}

fn statement(raw: RawStatement, known: &dyn Fn(&str) -> bool) -> Result<Statement, PolicyError> {
    let effect = match raw.effect.as_str() {
        "Allow" => Effect::Allow,
        "Deny" => Effect::Deny,
        other => {
            return Err(malformed(format!(
                "unknown Effect {}: expected \"Allow\" or \"Deny\"",
                crate::types::printable(other)
            )))
        }
    };
    let (p, p_name) = one_of(
        &raw.principal,
        &raw.not_principal,
        ("Principal", "NotPrincipal"),
    )?;
    let (a, a_name) = one_of(&raw.action, &raw.not_action, ("Action", "NotAction"))?;
    let (r, r_name) = one_of(
        &raw.resource,
        &raw.not_resource,
        ("Resource", "NotResource"),
    )?;
    Ok(Statement {
        sid: raw.sid,
        effect,
        not_principal: p_name == "NotPrincipal",
        principals: principals(p, p_name, known)?,
        actions: actions(a, a_name)?,
        resources: resources(r, r_name)?,
        conditions: match &raw.condition {
            Some(block) => conditions(block)?,
            None => Vec::new(),
        },
    })
}

impl KeyPolicy {
    /// Parses and validates a key policy. `known` says whether a principal
    /// ARN (`arn:aws:iam::<account>:root` or `...:user/<name>`, bare account
    /// ids already expanded) is this account's root or one of its users.
    ///
    /// Errors: [`PolicyError::TooLarge`] over 32 KiB; otherwise
    /// [`PolicyError::Malformed`] naming what is wrong.
    pub fn parse(text: &str, known: &dyn Fn(&str) -> bool) -> Result<KeyPolicy, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge(format!(
                "the key policy is {} bytes; the limit is {MAX_POLICY_BYTES} bytes (32 KiB)",
                text.len()
            )));
        }
        let raw: RawPolicy = serde_json::from_str(text).map_err(|e| {
            malformed(format!(
                "the key policy is not a valid policy document: {e}"
            ))
        })?;
        if let Some(v) = &raw.version {
            if !VERSIONS.contains(&v.as_str()) {
                return Err(malformed(format!(
                    "unknown policy Version {}: expected \"2012-10-17\"",
                    crate::types::printable(v)
                )));
            }
        }
        let raw_statements = raw.statement.0;
        if raw_statements.is_empty() {
            return Err(malformed("the key policy has no statements"));
        }
        let mut statements = Vec::with_capacity(raw_statements.len());
        for (i, raw) in raw_statements.into_iter().enumerate() {
            statements.push(statement(raw, known).map_err(|e| match e {
                PolicyError::Malformed(m) => malformed(format!("statement {}: {m}", i + 1)),
                other => other,
            })?);
        }
        Ok(KeyPolicy {
            has_deny: statements.iter().any(|s| s.effect == Effect::Deny),
            uses_conditions: statements.iter().any(|s| !s.conditions.is_empty()),
            needs_resource: statements
                .iter()
                .any(|s| s.resources.negated || !s.resources.patterns.contains(&Pattern::Any)),
            statements,
        })
    }

    /// Parses a policy that was validated when it was stored; principals
    /// deleted since simply match no caller.
    pub fn parse_stored(text: &str) -> Result<KeyPolicy, PolicyError> {
        KeyPolicy::parse(text, &|_| true)
    }

    /// Whether any statement has a Condition (the caller can skip building
    /// condition values when none has).
    pub fn uses_conditions(&self) -> bool {
        self.uses_conditions
    }

    /// Whether evaluation looks at the resource (some statement names
    /// resources other than "*"); when not, any resource string will do.
    pub fn needs_resource(&self) -> bool {
        self.needs_resource
    }

    /// The number of statements.
    pub fn statement_count(&self) -> usize {
        self.statements.len()
    }

    /// The Sids of the statements, in order (None for a statement without).
    pub fn sids(&self) -> impl Iterator<Item = Option<&str>> {
        self.statements.iter().map(|s| s.sid.as_deref())
    }
}
