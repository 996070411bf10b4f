//! Key policy evaluation: a 10-statement policy (wildcards, a Deny, a
//! condition) evaluated for an allowed, a denied and an unmatched request.
//! The target is well under 1 us per evaluation.
//!
//! Then Encrypt of 4 KiB through the gate: on a key with the default policy
//! (the administrator), beside a key with the 10-statement policy and 100
//! grants (a user the policy allows, and a user only a grant allows). Audit
//! fsync is off so that the policy's cost is not hidden behind the disk.
//!
//! Run: `cargo bench -p hsm-core --bench policy`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hsm_core::grants::{CreateGrantRequest, GrantOperation};
use hsm_core::policy::{ConditionContext, Decision, KeyPolicy, Request};
use hsm_core::{
    Caller, CreateKeyRequest, EncryptionContext, Hsm, HsmOptions, KdfParams, Principal,
    SecretString, SystemClock,
};

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

/// Every user the 10-statement policy names.
const POLICY_USERS: [&str; 11] = [
    "mary", "mark", "bob", "carol", "alice", "svc", "hr", "snape", "signer", "mac", "auditor",
];

fn gate_encrypt(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let options = HsmOptions {
        kdf: KdfParams {
            memory_kib: 8192,
            iterations: 1,
            parallelism: 1,
        },
        clock: Arc::new(SystemClock),
        ..Default::default()
    };
    let hsm = Hsm::init(dir.path(), &SecretString::from("bench passphrase"), options).unwrap();
    hsm.set_audit_fsync(false);
    let root = Caller::new(Principal::Root, "bench");
    let admin = hsm.gate(&root);
    for name in POLICY_USERS {
        admin.create_user(name, None, None).unwrap();
    }
    let plain_key = admin
        .create_key(CreateKeyRequest::default())
        .unwrap()
        .key_id;
    let policy_key = admin
        .create_key_with_policy(CreateKeyRequest::default(), Some(&ten_statements()), false)
        .unwrap()
        .key_id;
    for i in 0..100 {
        let name = format!("g{i:03}");
        admin.create_user(&name, None, None).unwrap();
        admin
            .create_grant(CreateGrantRequest {
                key_id: policy_key.clone(),
                grantee_principal: format!("arn:aws:iam::111122223333:user/{name}"),
                operations: vec![GrantOperation::Encrypt, GrantOperation::Decrypt],
                ..Default::default()
            })
            .unwrap();
    }
    let context: EncryptionContext = [("purpose".to_string(), "bench".to_string())]
        .into_iter()
        .collect();
    let plaintext = vec![0x5au8; 4096];
    let alice = Caller::new(Principal::User("alice".into()), "bench");
    let grantee = Caller::new(Principal::User("g042".into()), "bench");
    let mut group = c.benchmark_group("gate Encrypt 4 KiB");
    group.throughput(Throughput::Bytes(4096));
    group.bench_function("default policy (administrator)", |b| {
        let gate = hsm.gate(&root);
        b.iter(|| {
            gate.encrypt(&plain_key, black_box(&plaintext), &context, None)
                .unwrap()
        })
    });
    group.bench_function("10 statements + 100 grants (allowed by policy)", |b| {
        let gate = hsm.gate(&alice);
        b.iter(|| {
            gate.encrypt(&policy_key, black_box(&plaintext), &context, None)
                .unwrap()
        })
    });
    group.bench_function("10 statements + 100 grants (allowed by grant)", |b| {
        let gate = hsm.gate(&grantee);
        b.iter(|| {
            gate.encrypt(&policy_key, black_box(&plaintext), &context, None)
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench, gate_encrypt);
criterion_main!(benches);
