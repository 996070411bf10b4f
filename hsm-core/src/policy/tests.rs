//! Parsing, validation and evaluation of key policies.

use super::*;
use proptest::prelude::*;

const ACCOUNT: &str = "111122223333";
const ROOT: &str = "arn:aws:iam::111122223333:root";
const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const MARY: &str = "arn:aws:iam::111122223333:user/mary";
const SNAPE: &str = "arn:aws:iam::111122223333:user/snape";
const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn known(arn: &str) -> bool {
    [ROOT, ALICE, MARY, SNAPE].contains(&arn)
}

fn parse(text: &str) -> KeyPolicy {
    KeyPolicy::parse(text, &known).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn malformed(text: &str) -> String {
    match KeyPolicy::parse(text, &known) {
        Err(PolicyError::Malformed(m)) => m,
        other => panic!("expected Malformed for {text}, got {other:?}"),
    }
}

fn decide(policy: &KeyPolicy, principal: &str, action: &str, ctx: &ConditionContext) -> Decision {
    policy.evaluate(&Request {
        principal,
        action,
        resource: KEY,
        context: ctx,
    })
}

fn none() -> ConditionContext {
    ConditionContext::new()
}

/// The seed story's policy: Mary administers, Alice uses, Snape is denied.
fn story_policy() -> String {
    format!(
        r#"{{
  "Version": "2012-10-17",
  "Id": "key-consolepolicy-3",
  "Statement": [
    {{"Sid": "Enable IAM User Permissions", "Effect": "Allow",
      "Principal": {{"AWS": "{ROOT}"}}, "Action": "kms:*", "Resource": "*"}},
    {{"Sid": "Allow access for Key Administrators", "Effect": "Allow",
      "Principal": {{"AWS": ["{MARY}"]}},
      "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*",
                 "kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*",
                 "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion",
                 "kms:CancelKeyDeletion"],
      "Resource": "*"}},
    {{"Sid": "Allow use of the key", "Effect": "Allow",
      "Principal": {{"AWS": "{ALICE}"}},
      "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                 "kms:DescribeKey"],
      "Resource": "*"}},
    {{"Sid": "No Snape", "Effect": "Deny", "Principal": {{"AWS": "{SNAPE}"}},
      "Action": "kms:*", "Resource": "*"}},
    {{"Sid": "Everyone may describe", "Effect": "Allow", "Principal": "*",
      "Action": "kms:DescribeKey", "Resource": "*"}}
  ]
}}"#
    )
}

#[test]
fn the_story_policy_decides_per_principal_and_action() {
    let p = parse(&story_policy());
    assert_eq!(p.statement_count(), 5);
    let c = none();
    for action in ["kms:Encrypt", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion"] {
        assert_eq!(decide(&p, ROOT, action, &c), Decision::Allow, "{action}");
    }
    for action in [
        "kms:DisableKey",
        "kms:EnableKey",
        "kms:ScheduleKeyDeletion",
        "kms:GetKeyPolicy",
    ] {
        assert_eq!(
            decide(&p, MARY, action, &c),
            Decision::Allow,
            "mary {action}"
        );
    }
    for action in ["kms:Encrypt", "kms:Decrypt", "kms:Sign"] {
        assert_eq!(
            decide(&p, MARY, action, &c),
            Decision::ImplicitDeny,
            "mary {action}"
        );
    }
    for action in [
        "kms:encrypt",
        "KMS:DECRYPT",
        "kms:ReEncryptFrom",
        "kms:GenerateDataKeyPairWithoutPlaintext",
    ] {
        assert_eq!(
            decide(&p, ALICE, action, &c),
            Decision::Allow,
            "alice {action}"
        );
    }
    for action in [
        "kms:DisableKey",
        "kms:ScheduleKeyDeletion",
        "kms:PutKeyPolicy",
    ] {
        assert_eq!(
            decide(&p, ALICE, action, &c),
            Decision::ImplicitDeny,
            "alice {action}"
        );
    }
    // Everyone may describe, but the explicit Deny beats that Allow for Snape.
    assert_eq!(
        decide(&p, SNAPE, "kms:DescribeKey", &c),
        Decision::ExplicitDeny
    );
    assert_eq!(decide(&p, SNAPE, "kms:Decrypt", &c), Decision::ExplicitDeny);
    assert_eq!(
        decide(
            &p,
            "arn:aws:iam::111122223333:user/other",
            "kms:DescribeKey",
            &c
        ),
        Decision::Allow
    );
    assert!(!Decision::ExplicitDeny.permits_with_grant(true));
    assert!(Decision::ImplicitDeny.permits_with_grant(true));
    assert!(!Decision::ImplicitDeny.permits_with_grant(false));
    assert!(Decision::Allow.permits_with_grant(false));
}

#[test]
fn default_policies() {
    let p = parse(&default_key_policy(ACCOUNT));
    assert_eq!(
        p.sids().collect::<Vec<_>>(),
        vec![Some("Enable IAM User Permissions")]
    );
    assert_eq!(
        decide(&p, ROOT, "kms:PutKeyPolicy", &none()),
        Decision::Allow
    );
    assert_eq!(
        decide(&p, ALICE, "kms:Encrypt", &none()),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&p, "arn:aws:iam::999999999999:root", "kms:Encrypt", &none()),
        Decision::ImplicitDeny
    );
    let c = parse(&creator_key_policy(ACCOUNT, ALICE));
    assert_eq!(
        decide(&c, ALICE, "kms:ScheduleKeyDeletion", &none()),
        Decision::Allow
    );
    assert_eq!(decide(&c, ROOT, "kms:Encrypt", &none()), Decision::Allow);
    assert_eq!(
        decide(&c, MARY, "kms:Encrypt", &none()),
        Decision::ImplicitDeny
    );
    let v: serde_json::Value = serde_json::from_str(&default_key_policy(ACCOUNT)).unwrap();
    assert_eq!(v["Statement"][0]["Principal"]["AWS"], ROOT);
}

#[test]
fn grammar_variants_are_accepted() {
    // A single statement object, a bare account id, NotAction, a key ARN
    // resource, no Version.
    let p = parse(&format!(
        r#"{{"Statement": {{"Effect": "Allow", "Principal": {{"AWS": "{ACCOUNT}"}},
             "NotAction": ["kms:ScheduleKeyDeletion", "kms:Put*"], "Resource": "{KEY}"}}}}"#
    ));
    assert_eq!(decide(&p, ROOT, "kms:Encrypt", &none()), Decision::Allow);
    assert_eq!(
        decide(&p, ROOT, "kms:PutKeyPolicy", &none()),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&p, ROOT, "kms:ScheduleKeyDeletion", &none()),
        Decision::ImplicitDeny
    );
    let other_key = p.evaluate(&Request {
        principal: ROOT,
        action: "kms:Encrypt",
        resource: "arn:aws:kms:us-east-1:111122223333:key/other",
        context: &none(),
    });
    assert_eq!(other_key, Decision::ImplicitDeny);

    // NotPrincipal with Deny: everybody but Mary is denied.
    let p = parse(&format!(
        r#"{{"Version": "2012-10-17", "Statement": [
            {{"Effect": "Allow", "Principal": {{"AWS": "*"}}, "Action": "*", "Resource": "*"}},
            {{"Effect": "Deny", "NotPrincipal": {{"AWS": ["{MARY}"]}}, "Action": "kms:Disable*",
              "Resource": "arn:aws:kms:*:111122223333:key/*"}}]}}"#
    ));
    assert_eq!(decide(&p, MARY, "kms:DisableKey", &none()), Decision::Allow);
    assert_eq!(
        decide(&p, ALICE, "kms:DisableKey", &none()),
        Decision::ExplicitDeny
    );
    assert_eq!(decide(&p, ALICE, "kms:EnableKey", &none()), Decision::Allow);
    assert!(p.needs_resource(), "a key ARN resource");
    assert!(!parse(&default_key_policy(ACCOUNT)).needs_resource());
    // NotResource excluding this key.
    let p = parse(&format!(
        r#"{{"Statement": [{{"Effect": "Allow", "Principal": "*", "Action": "kms:*",
             "NotResource": "{KEY}"}}]}}"#
    ));
    assert_eq!(
        decide(&p, ALICE, "kms:Encrypt", &none()),
        Decision::ImplicitDeny
    );
}

#[test]
fn conditions_in_statements() {
    let p = parse(&format!(
        r#"{{"Version": "2012-10-17", "Statement": [
        {{"Sid": "hr only", "Effect": "Allow", "Principal": {{"AWS": "{ALICE}"}},
          "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*",
          "Condition": {{"StringEquals": {{"kms:EncryptionContext:dept": "hr"}},
                         "ForAllValues:StringEquals": {{"kms:EncryptionContextKeys": ["dept", "case"]}} }} }}]}}"#
    ));
    assert!(p.uses_conditions());
    let mut hr = ConditionContext::new();
    hr.set("kms:EncryptionContext:dept", "hr");
    hr.set_all("kms:EncryptionContextKeys", vec!["dept".into()]);
    assert_eq!(decide(&p, ALICE, "kms:Encrypt", &hr), Decision::Allow);
    let mut extra = hr.clone();
    extra.set_all(
        "kms:EncryptionContextKeys",
        vec!["dept".into(), "other".into()],
    );
    assert_eq!(
        decide(&p, ALICE, "kms:Encrypt", &extra),
        Decision::ImplicitDeny
    );
    let mut it = ConditionContext::new();
    it.set("kms:EncryptionContext:dept", "it");
    assert_eq!(
        decide(&p, ALICE, "kms:Encrypt", &it),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&p, ALICE, "kms:Encrypt", &none()),
        Decision::ImplicitDeny
    );

    let p = parse(&format!(
        r#"{{"Statement": [{{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*",
            "Condition": {{"StringEquals": {{"kms:CallerAccount": "{ACCOUNT}"}},
                           "NumericGreaterThanEquals": {{"kms:ScheduleKeyDeletionPendingWindowInDays": 20}},
                           "Bool": {{"kms:GrantIsForAWSResource": false}}}}}}]}}"#
    ));
    let mut ok = ConditionContext::new();
    ok.set("kms:calleraccount", ACCOUNT);
    ok.set("kms:ScheduleKeyDeletionPendingWindowInDays", "30");
    ok.set("kms:GrantIsForAWSResource", "false");
    assert_eq!(
        decide(&p, ALICE, "kms:ScheduleKeyDeletion", &ok),
        Decision::Allow
    );
    let mut short = ok.clone();
    short.set("kms:ScheduleKeyDeletionPendingWindowInDays", "7");
    assert_eq!(
        decide(&p, ALICE, "kms:ScheduleKeyDeletion", &short),
        Decision::ImplicitDeny
    );
    let mut foreign = ok.clone();
    foreign.set("kms:CallerAccount", "999999999999");
    assert_eq!(
        decide(&p, ALICE, "kms:ScheduleKeyDeletion", &foreign),
        Decision::ImplicitDeny
    );
}

#[test]
fn malformed_documents_say_what_is_wrong() {
    let ok_stmt = |extra: &str| {
        format!(
            r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Principal": {{"AWS": "{ROOT}"}},
                "Action": "kms:*", "Resource": "*"{extra}}}]}}"#
        )
    };
    parse(&ok_stmt(""));
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "not a valid policy document"),
        ("[]".into(), "not a valid policy document"),
        ("".into(), "not a valid policy document"),
        (
            r#"{"Version": "2012-10-17"}"#.into(),
            "missing field `Statement`",
        ),
        (
            r#"{"Statement": [], "Foo": 1}"#.into(),
            "unknown field `Foo`",
        ),
        (r#"{"Statement": []}"#.into(), "no statements"),
        (
            r#"{"Statement": "x"}"#.into(),
            "expected a statement object or a list",
        ),
        (r#"{"Statement": [1]}"#.into(), "invalid type: integer `1`"),
        (
            r#"{"Version": "2020-01-01", "Statement": []}"#.into(),
            "unknown policy Version",
        ),
        (ok_stmt(r#", "Bogus": 1"#), "unknown field `Bogus`"),
        (
            ok_stmt(r#", "Effect": "Allow""#),
            "duplicate field `Effect`",
        ),
        (
            ok_stmt("").replace("\"Allow\"", "\"allow\""),
            "unknown Effect",
        ),
        (
            ok_stmt("").replace("\"Allow\"", "\"Permit\""),
            "unknown Effect",
        ),
        (
            ok_stmt(r#", "Condition": {"StringEqualz": {"k": "v"}}"#),
            "unknown condition operator",
        ),
        (
            ok_stmt(r#", "Condition": {"StringEquals": {"k": {"a": 1}}}"#),
            "must be a string, number or boolean",
        ),
        (
            ok_stmt(r#", "Condition": {"StringEquals": "v"}"#),
            "must map condition keys",
        ),
        (
            ok_stmt(r#", "Condition": {"NumericLessThan": {"k": "soon"}}"#),
            "is not a number",
        ),
        (
            ok_stmt(r#", "NotAction": "kms:Encrypt""#),
            "both Action and NotAction",
        ),
        (
            ok_stmt("").replace("\"Resource\": \"*\"", "\"Sid\": \"x\""),
            "must have Resource or NotResource",
        ),
        (
            ok_stmt("").replace("\"kms:*\"", "\"Encrypt\""),
            "is not an action",
        ),
        (ok_stmt("").replace("\"kms:*\"", "[]"), "must not be empty"),
        (
            ok_stmt("").replace("\"kms:*\"", "[\"kms:Encrypt\", 3]"),
            "only strings",
        ),
        (
            ok_stmt("").replace("\"Resource\": \"*\"", "\"Resource\": \"key/*\""),
            "must be \"*\" or an ARN",
        ),
        (
            ok_stmt("").replace(ROOT, "arn:aws:iam::111122223333:user/voldemort"),
            "invalid principals",
        ),
        (
            ok_stmt("").replace(ROOT, "arn:aws:iam::999999999999:root"),
            "invalid principals",
        ),
        (
            ok_stmt("").replace(ROOT, "arn:aws:iam:123456789123:root"),
            "invalid principals",
        ),
        (
            ok_stmt("").replace(ROOT, "arn:aws:iam::111122223333:role/admin"),
            "invalid principals",
        ),
        (
            ok_stmt("").replace(ROOT, "arn:aws:iam::111122223333:user/*"),
            "invalid principals",
        ),
        (
            ok_stmt("").replace(
                r#"{"AWS": "arn:aws:iam::111122223333:root"}"#,
                r#"{"Service": "logs.amazonaws.com"}"#,
            ),
            "not supported",
        ),
        (
            ok_stmt("").replace(r#"{"AWS": "arn:aws:iam::111122223333:root"}"#, r#""alice""#),
            "Principal must be",
        ),
        (
            ok_stmt("").replace(r#"{"AWS": "arn:aws:iam::111122223333:root"}"#, "{}"),
            "must name \"AWS\"",
        ),
    ];
    for (text, expected) in cases {
        let m = malformed(&text);
        assert!(
            m.contains(expected),
            "{text}\n=> {m}\n(expected {expected:?})"
        );
    }
    // The statement number is named.
    let two = r#"{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"},
            {"Effect": "Maybe", "Principal": "*", "Action": "kms:*", "Resource": "*"}]}"#;
    assert!(
        malformed(two).starts_with("statement 2:"),
        "{}",
        malformed(two)
    );
}

#[test]
fn size_limit_is_32_kib() {
    let base = default_key_policy(ACCOUNT);
    let pad = |total: usize| {
        let mut t = base.clone();
        t.push_str(&" ".repeat(total - base.len()));
        t
    };
    parse(&pad(MAX_POLICY_BYTES));
    match KeyPolicy::parse(&pad(MAX_POLICY_BYTES + 1), &known) {
        Err(PolicyError::TooLarge(m)) => assert!(m.contains("32768"), "{m}"),
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn deep_nesting_is_refused_not_a_crash() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(
        KeyPolicy::parse(&deep, &known),
        Err(PolicyError::TooLarge(_))
    ));
    let deep = format!(
        r#"{{"Statement": {}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert!(matches!(
        KeyPolicy::parse(&deep, &known),
        Err(PolicyError::Malformed(_))
    ));
}

// ---- properties ----

/// Arbitrary JSON-ish text built from policy vocabulary.
fn policyish() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("\"Version\"".to_string()),
        Just("\"2012-10-17\"".to_string()),
        Just("\"Statement\"".to_string()),
        Just("\"Effect\"".to_string()),
        Just("\"Allow\"".to_string()),
        Just("\"Deny\"".to_string()),
        Just("\"Principal\"".to_string()),
        Just("\"AWS\"".to_string()),
        Just(format!("\"{ROOT}\"")),
        Just("\"*\"".to_string()),
        Just("\"Action\"".to_string()),
        Just("\"kms:*\"".to_string()),
        Just("\"Resource\"".to_string()),
        Just("\"Condition\"".to_string()),
        Just("\"ForAllValues:StringLikeIfExists\"".to_string()),
        Just("\"Null\"".to_string()),
        Just("true".to_string()),
        Just("12".to_string()),
        Just("null".to_string()),
        "[{}\\[\\]:,\"]".prop_map(|s| s),
        "\\PC{0,4}".prop_map(|s| s),
    ];
    prop::collection::vec(atom, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn parse_never_panics_on_any_text(text in "\\PC{0,300}") {
        let _ = KeyPolicy::parse(&text, &known);
    }

    #[test]
    fn parse_never_panics_on_policy_vocabulary(text in policyish()) {
        if let Ok(p) = KeyPolicy::parse(&text, &known) {
            let _ = decide(&p, ALICE, "kms:Encrypt", &none());
        }
    }
}

/// A statement of the model: effect, principals, action patterns.
#[derive(Debug, Clone)]
struct ModelStatement {
    deny: bool,
    principals: Vec<&'static str>,
    actions: Vec<&'static str>,
    not_action: bool,
}

const PRINCIPALS: [&str; 4] = [ROOT, ALICE, MARY, "*"];
const ACTION_PATTERNS: [&str; 7] = [
    "kms:*",
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:Gen?rateDataKey",
    "kms:*Key",
    "KMS:DESCRIBEKEY",
];
const ACTIONS: [&str; 6] = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:GenerateDataKey",
    "kms:DescribeKey",
    "kms:DisableKey",
];

/// The model's pattern matching: explicit per-pattern lists.
fn model_action_matches(pattern: &str, action: &str) -> bool {
    let covered: &[&str] = match pattern {
        "kms:*" => &ACTIONS,
        "kms:Encrypt" => &["kms:Encrypt"],
        "kms:Decrypt" => &["kms:Decrypt"],
        "kms:ReEncrypt*" => &["kms:ReEncryptFrom"],
        "kms:Gen?rateDataKey" => &["kms:GenerateDataKey"],
        "kms:*Key" => &["kms:GenerateDataKey", "kms:DescribeKey", "kms:DisableKey"],
        "KMS:DESCRIBEKEY" => &["kms:DescribeKey"],
        _ => unreachable!(),
    };
    covered.contains(&action)
}

fn model_statement() -> impl Strategy<Value = ModelStatement> {
    (
        any::<bool>(),
        prop::sample::subsequence(PRINCIPALS.to_vec(), 1..=2),
        prop::sample::subsequence(ACTION_PATTERNS.to_vec(), 1..=3),
        any::<bool>(),
    )
        .prop_map(|(deny, principals, actions, not_action)| ModelStatement {
            deny,
            principals,
            actions,
            not_action,
        })
}

fn render(statements: &[ModelStatement]) -> String {
    let parts: Vec<String> = statements
        .iter()
        .map(|s| {
            let principal = if s.principals.contains(&"*") {
                "\"*\"".to_string()
            } else {
                serde_json::json!({ "AWS": s.principals }).to_string()
            };
            format!(
                r#"{{"Effect": "{}", "Principal": {principal}, "{}": {}, "Resource": "*"}}"#,
                if s.deny { "Deny" } else { "Allow" },
                if s.not_action { "NotAction" } else { "Action" },
                serde_json::json!(s.actions)
            )
        })
        .collect();
    format!(
        r#"{{"Version": "2012-10-17", "Statement": [{}]}}"#,
        parts.join(",")
    )
}

proptest! {
    #[test]
    fn evaluation_matches_the_model(statements in prop::collection::vec(model_statement(), 1..8)) {
        let policy = parse(&render(&statements));
        for principal in [ROOT, ALICE, MARY, SNAPE] {
            for action in ACTIONS {
                let applies = |s: &ModelStatement| {
                    (s.principals.contains(&"*") || s.principals.contains(&principal))
                        && s.actions.iter().any(|p| model_action_matches(p, action)) != s.not_action
                };
                let expected = if statements.iter().any(|s| s.deny && applies(s)) {
                    Decision::ExplicitDeny
                } else if statements.iter().any(|s| !s.deny && applies(s)) {
                    Decision::Allow
                } else {
                    Decision::ImplicitDeny
                };
                prop_assert_eq!(decide(&policy, principal, action, &none()), expected,
                    "{} {}", principal, action);
            }
        }
    }
}
