//! The Condition element: operators, set qualifiers (`ForAnyValue:`,
//! `ForAllValues:`), the `IfExists` suffix, and the request values they test.
//!
//! Semantics follow the IAM documentation: several operators in a block, and
//! several keys under one operator, are ANDed; several policy values for one
//! key are ORed (NORed for a negated operator). A key absent from the request
//! makes a positive operator false and a negated one true, except with
//! `IfExists` (absent is true) and `Null` (tests presence). `ForAnyValue` is
//! false and `ForAllValues` true when the request has no value for the key.

use super::pattern::Pattern;
use super::PolicyError;

/// The condition key values of one request. Keys compare ASCII
/// case-insensitively (`kms:EncryptionContext:Dept` is
/// `kms:encryptioncontext:dept`); values are case-sensitive.
#[derive(Debug, Clone, Default)]
pub struct ConditionContext {
    entries: Vec<(String, Vec<String>)>,
}

impl ConditionContext {
    /// An empty context.
    pub const fn new() -> ConditionContext {
        ConditionContext {
            entries: Vec::new(),
        }
    }

    /// Sets a single-valued key, replacing any earlier value.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.set_all(key, vec![value.into()]);
    }

    /// Sets a multi-valued key (`kms:EncryptionContextKeys`,
    /// `kms:GrantOperations`). An empty list leaves the key absent.
    pub fn set_all(&mut self, key: &str, values: Vec<String>) {
        self.entries.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
        if !values.is_empty() {
            self.entries.push((key.to_owned(), values));
        }
    }

    /// Adds a key known not to be set yet (no search for an earlier value:
    /// linear in the number of keys when filling a context).
    pub(crate) fn push(&mut self, key: String, values: Vec<String>) {
        if !values.is_empty() {
            self.entries.push((key, values));
        }
    }

    /// The values of `key`, if the request has any.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_slice())
    }

    /// True when no key is set.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// How a set of request values is tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qualifier {
    /// No qualifier: a single value (or any of several) must satisfy the test.
    Single,
    /// `ForAnyValue:`: at least one request value satisfies the test.
    AnyValue,
    /// `ForAllValues:`: every request value satisfies the test.
    AllValues,
}

/// Numeric comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumCmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// The positive form of an operator, with its compiled policy values.
#[derive(Debug, Clone)]
enum Test {
    /// StringEquals (case-sensitive) or StringEqualsIgnoreCase (`fold`).
    StringEquals { fold: bool, values: Vec<String> },
    /// StringLike / ArnLike / ArnEquals: wildcard match.
    Like(Vec<Pattern>),
    /// Numeric comparison with the policy value on the right.
    Numeric(NumCmp, Vec<f64>),
    /// Bool.
    Bool(Vec<bool>),
    /// Null: `true` means the key must be absent.
    Null(bool),
}

/// One compiled `operator: { key: values }` entry.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    key: Box<str>,
    qualifier: Qualifier,
    negated: bool,
    if_exists: bool,
    test: Test,
}

/// A scalar policy value, as written: strings, numbers and booleans.
pub(crate) fn scalar_text(value: &serde_json::Value) -> Result<String, PolicyError> {
    match value {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(PolicyError::Malformed(format!(
            "a condition value must be a string, number or boolean, not {}",
            json_kind(other)
        ))),
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Parses a number the way numeric conditions accept it (integers and
/// decimals; no NaN or infinities).
fn number(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
    {
        return None;
    }
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn boolean(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Splits `ForAnyValue:StringLikeIfExists` into its parts; the names compare
/// case-insensitively.
fn split_operator(op: &str) -> (Qualifier, &str, bool) {
    let (qualifier, rest) = if let Some(rest) = strip_prefix_ci(op, "ForAnyValue:") {
        (Qualifier::AnyValue, rest)
    } else if let Some(rest) = strip_prefix_ci(op, "ForAllValues:") {
        (Qualifier::AllValues, rest)
    } else {
        (Qualifier::Single, op)
    };
    match strip_suffix_ci(rest, "IfExists") {
        Some(base) => (qualifier, base, true),
        None => (qualifier, rest, false),
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix))
    .then(|| &s[prefix.len()..])
}

fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    (s.is_char_boundary(cut) && s[cut..].eq_ignore_ascii_case(suffix)).then(|| &s[..cut])
}

impl Condition {
    /// Compiles one operator/key/values entry of a Condition block.
    pub fn compile(operator: &str, key: &str, values: &[String]) -> Result<Condition, PolicyError> {
        let malformed = |why: String| PolicyError::Malformed(why);
        let op = crate::types::printable(operator);
        if key.is_empty() || key.len() > 256 {
            return Err(malformed(format!(
                "condition key of operator {op} must be 1 to 256 characters"
            )));
        }
        let key_p = crate::types::printable(key);
        if values.is_empty() {
            return Err(malformed(format!(
                "condition {op} on {key_p} has no values"
            )));
        }
        let (qualifier, base, if_exists) = split_operator(operator);
        let lower = base.to_ascii_lowercase();
        let (negated, test) = match lower.as_str() {
            "stringequals"
            | "stringnotequals"
            | "stringequalsignorecase"
            | "stringnotequalsignorecase" => {
                let fold = lower.ends_with("ignorecase");
                let values = values
                    .iter()
                    .map(|v| if fold { v.to_lowercase() } else { v.clone() })
                    .collect();
                (lower.contains("not"), Test::StringEquals { fold, values })
            }
            "stringlike" | "stringnotlike" | "arnlike" | "arnnotlike" | "arnequals"
            | "arnnotequals" => (
                lower.contains("not"),
                Test::Like(values.iter().map(|v| Pattern::new(v, false)).collect()),
            ),
            "numericequals"
            | "numericnotequals"
            | "numericlessthan"
            | "numericlessthanequals"
            | "numericgreaterthan"
            | "numericgreaterthanequals" => {
                let cmp = match lower.as_str() {
                    "numericequals" | "numericnotequals" => NumCmp::Eq,
                    "numericlessthan" => NumCmp::Lt,
                    "numericlessthanequals" => NumCmp::Le,
                    "numericgreaterthan" => NumCmp::Gt,
                    _ => NumCmp::Ge,
                };
                let nums = values
                    .iter()
                    .map(|v| {
                        number(v).ok_or_else(|| {
                            malformed(format!(
                                "condition {op} on {key_p}: {} is not a number",
                                crate::types::printable(v)
                            ))
                        })
                    })
                    .collect::<Result<Vec<f64>, _>>()?;
                (lower == "numericnotequals", Test::Numeric(cmp, nums))
            }
            "bool" => {
                let bools = values
                    .iter()
                    .map(|v| {
                        boolean(v).ok_or_else(|| {
                            malformed(format!(
                                "condition Bool on {key_p}: {} is not true or false",
                                crate::types::printable(v)
                            ))
                        })
                    })
                    .collect::<Result<Vec<bool>, _>>()?;
                (false, Test::Bool(bools))
            }
            "null" => {
                if qualifier != Qualifier::Single || if_exists {
                    return Err(malformed(format!(
                        "condition operator {op} is not valid: Null takes no qualifier or IfExists"
                    )));
                }
                let [v] = values else {
                    return Err(malformed(format!(
                        "condition Null on {key_p} takes exactly one value"
                    )));
                };
                let b = boolean(v).ok_or_else(|| {
                    malformed(format!(
                        "condition Null on {key_p}: the value must be true or false"
                    ))
                })?;
                (false, Test::Null(b))
            }
            _ => {
                return Err(malformed(format!(
                    "unknown condition operator {}",
                    crate::types::printable(operator)
                )))
            }
        };
        Ok(Condition {
            key: key.into(),
            qualifier,
            negated,
            if_exists,
            test,
        })
    }

    /// Whether the condition holds for the request's values.
    pub fn holds(&self, ctx: &ConditionContext) -> bool {
        let values = ctx.get(&self.key);
        if let Test::Null(must_be_absent) = self.test {
            return values.is_none() == must_be_absent;
        }
        let Some(values) = values else {
            return match self.qualifier {
                Qualifier::AllValues => true,
                Qualifier::AnyValue => self.if_exists,
                Qualifier::Single => self.if_exists || self.negated,
            };
        };
        match self.qualifier {
            Qualifier::AnyValue => values.iter().any(|v| self.matches(v) != self.negated),
            Qualifier::AllValues => values.iter().all(|v| self.matches(v) != self.negated),
            // No qualifier: positive holds when some value matches; a negated
            // operator holds when none does.
            Qualifier::Single => values.iter().any(|v| self.matches(v)) != self.negated,
        }
    }

    /// Whether one request value matches any policy value (positive form).
    fn matches(&self, v: &str) -> bool {
        match &self.test {
            Test::StringEquals {
                fold: false,
                values,
            } => values.iter().any(|p| p == v),
            Test::StringEquals { fold: true, values } => {
                let lv = v.to_lowercase();
                values.contains(&lv)
            }
            Test::Like(patterns) => patterns.iter().any(|p| p.matches(v)),
            Test::Numeric(cmp, nums) => match number(v) {
                None => false,
                Some(x) => nums.iter().any(|&n| match cmp {
                    NumCmp::Eq => x == n,
                    NumCmp::Lt => x < n,
                    NumCmp::Le => x <= n,
                    NumCmp::Gt => x > n,
                    NumCmp::Ge => x >= n,
                }),
            },
            Test::Bool(bools) => boolean(v).is_some_and(|b| bools.contains(&b)),
            Test::Null(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(op: &str, key: &str, values: &[&str]) -> Condition {
        let values: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        Condition::compile(op, key, &values).expect("compiles")
    }

    fn ctx(pairs: &[(&str, &[&str])]) -> ConditionContext {
        let mut c = ConditionContext::new();
        for (k, vs) in pairs {
            c.set_all(k, vs.iter().map(|s| s.to_string()).collect());
        }
        c
    }

    #[test]
    fn string_operators_and_absent_keys() {
        let hr = ctx(&[("kms:EncryptionContext:dept", &["hr"])]);
        let it = ctx(&[("kms:encryptioncontext:DEPT", &["it"])]);
        let none = ConditionContext::new();
        let eq = cond(
            "StringEquals",
            "kms:EncryptionContext:Dept",
            &["hr", "legal"],
        );
        assert!(eq.holds(&hr));
        assert!(!eq.holds(&it));
        assert!(!eq.holds(&none), "absent key: positive operator is false");
        let ne = cond(
            "StringNotEquals",
            "kms:EncryptionContext:dept",
            &["hr", "legal"],
        );
        assert!(!ne.holds(&hr));
        assert!(ne.holds(&it));
        assert!(ne.holds(&none), "absent key: negated operator is true");
        let eq_ie = cond(
            "StringEqualsIfExists",
            "kms:EncryptionContext:dept",
            &["hr"],
        );
        assert!(eq_ie.holds(&none));
        assert!(!eq_ie.holds(&it));
        let ic = cond(
            "StringEqualsIgnoreCase",
            "kms:EncryptionContext:dept",
            &["HR"],
        );
        assert!(ic.holds(&hr));
        assert!(!cond("StringEquals", "kms:EncryptionContext:dept", &["HR"]).holds(&hr));
        let like = cond(
            "StringLike",
            "aws:PrincipalArn",
            &["arn:aws:iam::*:user/a*"],
        );
        assert!(like.holds(&ctx(&[(
            "aws:principalarn",
            &["arn:aws:iam::1:user/alice"]
        )])));
        assert!(!like.holds(&ctx(&[("aws:principalarn", &["arn:aws:iam::1:user/bob"])])));
        let nlike = cond("StringNotLike", "aws:PrincipalArn", &["*:user/a*"]);
        assert!(nlike.holds(&ctx(&[("aws:principalarn", &["arn:aws:iam::1:user/bob"])])));
        assert!(nlike.holds(&none));
    }

    #[test]
    fn set_qualifiers() {
        let keys = |ks: &[&str]| ctx(&[("kms:EncryptionContextKeys", ks)]);
        let all = cond(
            "ForAllValues:StringEquals",
            "kms:EncryptionContextKeys",
            &["dept", "project"],
        );
        assert!(all.holds(&keys(&["dept"])));
        assert!(all.holds(&keys(&["dept", "project"])));
        assert!(!all.holds(&keys(&["dept", "other"])));
        assert!(
            all.holds(&ConditionContext::new()),
            "ForAllValues on no values is true"
        );
        let any = cond(
            "ForAnyValue:StringEquals",
            "kms:EncryptionContextKeys",
            &["dept"],
        );
        assert!(any.holds(&keys(&["x", "dept"])));
        assert!(!any.holds(&keys(&["x"])));
        assert!(
            !any.holds(&ConditionContext::new()),
            "ForAnyValue on no values is false"
        );
        let any_not = cond(
            "ForAnyValue:StringNotLike",
            "kms:GrantOperations",
            &["Decrypt"],
        );
        assert!(any_not.holds(&ctx(&[("kms:GrantOperations", &["Decrypt", "Encrypt"])])));
        assert!(!any_not.holds(&ctx(&[("kms:GrantOperations", &["Decrypt"])])));
        let all_not = cond(
            "ForAllValues:StringNotEquals",
            "kms:GrantOperations",
            &["RetireGrant"],
        );
        assert!(all_not.holds(&ctx(&[("kms:GrantOperations", &["Decrypt"])])));
        assert!(!all_not.holds(&ctx(&[(
            "kms:GrantOperations",
            &["Decrypt", "RetireGrant"]
        )])));
    }

    #[test]
    fn numeric_bool_null() {
        let days = |d: &str| ctx(&[("kms:ScheduleKeyDeletionPendingWindowInDays", &[d])]);
        let le = cond(
            "NumericLessThanEquals",
            "kms:ScheduleKeyDeletionPendingWindowInDays",
            &["7"],
        );
        let ge = cond(
            "NumericGreaterThanEquals",
            "kms:schedulekeydeletionpendingwindowindays",
            &["20"],
        );
        assert!(le.holds(&days("7")) && !le.holds(&days("8")) && !le.holds(&days("x")));
        assert!(ge.holds(&days("30")) && !ge.holds(&days("19.5")));
        let ne = cond("NumericNotEquals", "k", &["1", "2"]);
        assert!(ne.holds(&ctx(&[("k", &["3"])])) && !ne.holds(&ctx(&[("k", &["2.0"])])));
        assert!(cond("NumericLessThan", "k", &["1.5"]).holds(&ctx(&[("k", &["1"])])));
        assert!(cond("NumericGreaterThan", "k", &["-1"]).holds(&ctx(&[("k", &["0"])])));
        assert!(cond("NumericEquals", "k", &["10"]).holds(&ctx(&[("k", &["1e1"])])));
        let b = cond("Bool", "kms:GrantIsForAWSResource", &["true"]);
        assert!(b.holds(&ctx(&[("kms:GrantIsForAWSResource", &["TRUE"])])));
        assert!(!b.holds(&ctx(&[("kms:GrantIsForAWSResource", &["false"])])));
        assert!(!b.holds(&ConditionContext::new()));
        let null = cond("Null", "kms:EncryptionContextKeys", &["true"]);
        assert!(null.holds(&ConditionContext::new()));
        assert!(!null.holds(&ctx(&[("kms:EncryptionContextKeys", &["a"])])));
        let not_null = cond("Null", "kms:EncryptionContextKeys", &["false"]);
        assert!(not_null.holds(&ctx(&[("kms:EncryptionContextKeys", &["a"])])));
    }

    use proptest::prelude::*;

    proptest! {
        /// The string operators, qualifiers and IfExists against a direct
        /// set-logic model, with request values absent, single or several.
        #[test]
        fn string_conditions_match_the_set_model(
            policy_values in prop::collection::vec("[abc]", 1..3),
            request in prop::option::of(prop::collection::vec("[abcd]", 1..4)),
            qualifier in 0usize..3,
            negated in any::<bool>(),
            if_exists in any::<bool>(),
        ) {
            let prefix = ["", "ForAnyValue:", "ForAllValues:"][qualifier];
            let op = format!(
                "{prefix}{}{}",
                if negated { "StringNotEquals" } else { "StringEquals" },
                if if_exists { "IfExists" } else { "" }
            );
            let values: Vec<&str> = policy_values.iter().map(String::as_str).collect();
            let c = cond(&op, "k", &values);
            let mut context = ConditionContext::new();
            if let Some(r) = &request {
                context.set_all("K", r.clone());
            }
            let hit = |v: &String| policy_values.contains(v) != negated;
            let expected = match &request {
                None => match qualifier {
                    0 => if_exists || negated,
                    1 => if_exists,
                    _ => true,
                },
                Some(r) => match qualifier {
                    0 => r.iter().any(|v| policy_values.contains(v)) != negated,
                    1 => r.iter().any(hit),
                    _ => r.iter().all(hit),
                },
            };
            prop_assert_eq!(c.holds(&context), expected, "{} {:?} {:?}", op, policy_values, request);
        }
    }

    #[test]
    fn operator_names() {
        assert!(Condition::compile("stringequals", "k", &["a".into()]).is_ok());
        assert!(Condition::compile("ForAnyValue:StringLikeIfExists", "k", &["a".into()]).is_ok());
        for bad in [
            "StringEqual",
            "DateEquals",
            "ForSomeValues:StringEquals",
            "",
            "IfExists",
        ] {
            let e = Condition::compile(bad, "k", &["a".into()]).unwrap_err();
            assert!(
                e.to_string().contains("unknown condition operator"),
                "{bad}: {e}"
            );
        }
        for (op, v) in [
            ("NumericEquals", "ten"),
            ("NumericEquals", "NaN"),
            ("Bool", "yes"),
            ("Null", "1"),
        ] {
            assert!(
                Condition::compile(op, "k", &[v.into()]).is_err(),
                "{op} {v}"
            );
        }
        assert!(Condition::compile("ForAllValues:Null", "k", &["true".into()]).is_err());
        assert!(Condition::compile("StringEquals", "k", &[]).is_err());
        assert!(Condition::compile("StringEquals", "", &["a".into()]).is_err());
    }
}
