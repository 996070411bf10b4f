//! Key policy evaluation: a 10-statement policy (wildcards, a Deny, a
//! condition) evaluated for an allowed, a denied and an unmatched request.
//! The target is well under 1 us per evaluation.
//!
//! Run: `cargo bench -p hsm-core --bench policy`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use hsm_core::policy::{ConditionContext, Decision, KeyPolicy, Request};

const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// Ten statements in the shapes real key policies use.
fn ten_statements() -> String {
    let user = |n: &str| format!("arn:aws:iam::111122223333:user/{n}");
    let statements = [
        r#"{"Sid": "root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}"#.to_string(),
        format!(
            r#"{{"Sid": "admins", "Effect": "Allow", "Principal": {{"AWS": ["{}", "{}"]}}, "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"], "Resource": "*"}}"#,
            user("mary"),
            user("mark")
        ),
        format!(
            r#"{{"Sid": "users", "Effect": "Allow", "Principal": {{"AWS": ["{}", "{}", "{}"]}}, "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"], "Resource": "*"}}"#,
            user("bob"),
            user("carol"),
            user("alice")
        ),
        format!(
            r#"{{"Sid": "grants", "Effect": "Allow", "Principal": {{"AWS": "{}"}}, "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"], "Resource": "*", "Condition": {{"Bool": {{"kms:GrantIsForAWSResource": "true"}}}}}}"#,
            user("svc")
        ),
        format!(
            r#"{{"Sid": "hr", "Effect": "Allow", "Principal": {{"AWS": "{}"}}, "Action": "kms:Decrypt", "Resource": "*", "Condition": {{"StringEquals": {{"kms:EncryptionContext:dept": "hr"}}}}}}"#,
            user("hr")
        ),
        format!(
            r#"{{"Sid": "no snape", "Effect": "Deny", "Principal": {{"AWS": "{}"}}, "Action": "kms:*", "Resource": "*"}}"#,
            user("snape")
        ),
        format!(
            r#"{{"Sid": "sign", "Effect": "Allow", "Principal": {{"AWS": "{}"}}, "Action": ["kms:Sign", "kms:Verify", "kms:GetPublicKey"], "Resource": "*"}}"#,
            user("signer")
        ),
        format!(
            r#"{{"Sid": "mac", "Effect": "Allow", "Principal": {{"AWS": "{}"}}, "Action": ["kms:GenerateMac", "kms:VerifyMac"], "Resource": "{KEY}"}}"#,
            user("mac")
        ),
        r#"{"Sid": "no deletion", "Effect": "Deny", "Principal": "*", "Action": "kms:ScheduleKeyDeletion", "Resource": "*", "Condition": {"NumericLessThan": {"kms:ScheduleKeyDeletionPendingWindowInDays": 7}}}"#.to_string(),
        format!(
            r#"{{"Sid": "audit", "Effect": "Allow", "Principal": {{"AWS": "{}"}}, "Action": ["kms:Describe*", "kms:List*", "kms:Get*"], "Resource": "*"}}"#,
            user("auditor")
        ),
    ];
    format!(
        r#"{{"Version": "2012-10-17", "Statement": [{}]}}"#,
        statements.join(",")
    )
}

fn bench(c: &mut Criterion) {
    let policy = KeyPolicy::parse(&ten_statements(), &|_| true).expect("policy parses");
    assert_eq!(policy.statement_count(), 10);
    let mut ctx = ConditionContext::new();
    ctx.set("kms:EncryptionContext:purpose", "bench");
    ctx.set_all("kms:EncryptionContextKeys", vec!["purpose".into()]);
    ctx.set("kms:CallerAccount", "111122223333");
    ctx.set("aws:PrincipalArn", "arn:aws:iam::111122223333:user/alice");
    let request = |principal: &'static str, action: &'static str| Request {
        principal,
        action,
        resource: KEY,
        context: &ctx,
    };
    let alice = request("arn:aws:iam::111122223333:user/alice", "kms:Encrypt");
    let snape = request("arn:aws:iam::111122223333:user/snape", "kms:Decrypt");
    let nobody = request("arn:aws:iam::111122223333:user/nobody", "kms:Encrypt");
    assert_eq!(policy.evaluate(&alice), Decision::Allow);
    assert_eq!(policy.evaluate(&snape), Decision::ExplicitDeny);
    assert_eq!(policy.evaluate(&nobody), Decision::ImplicitDeny);

    let mut group = c.benchmark_group("key policy, 10 statements");
    group.bench_function("allowed (alice Encrypt)", |b| {
        b.iter(|| policy.evaluate(black_box(&alice)))
    });
    group.bench_function("explicit deny (snape Decrypt)", |b| {
        b.iter(|| policy.evaluate(black_box(&snape)))
    });
    group.bench_function("implicit deny (nobody Encrypt)", |b| {
        b.iter(|| policy.evaluate(black_box(&nobody)))
    });
    group.finish();
    c.bench_function("parse 10-statement policy", |b| {
        let text = ten_statements();
        b.iter(|| KeyPolicy::parse(black_box(&text), &|_| true).expect("parses"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
