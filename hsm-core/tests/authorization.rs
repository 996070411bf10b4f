//! Who may do what, through the gate (issue 10): every key operation x
//! (allowed by the key policy, allowed by a grant, denied by default,
//! denied explicitly), each giving success or AccessDeniedException, and a
//! denied call changing nothing. Then the account-level rule, CreateKey and
//! PutKeyPolicy with policies, conditions, and grants.

mod common;

use common::TestHsm;
use hsm_core::grants::{CreateGrantRequest, GrantConstraints, GrantOperation};
use hsm_core::{
    Caller, CreateKeyRequest, DataKeyPairSpec, EncryptionContext, Error, Gate, KeySpec, KeyState,
    KeyUsage, MacAlgorithm, MessageType, Principal, SigningAlgorithm, Tag,
};

const ACCOUNT: &str = "111122223333";
const ROOT: &str = "arn:aws:iam::111122223333:root";

fn arn(user: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:user/{user}")
}

fn root() -> Caller {
    Caller::new(Principal::Root, "test")
}

fn user(name: &str) -> Caller {
    Caller::new(Principal::User(name.to_string()), "test")
}

/// A store with the users of the seed story.
fn story() -> TestHsm {
    let t = TestHsm::new();
    let admin = root();
    for name in ["alice", "bob", "mary", "snape"] {
        t.hsm
            .gate(&admin)
            .create_user(name, None, None)
            .expect("create user");
    }
    t
}

fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn statement(effect: &str, principal: &str, actions: &[&str]) -> String {
    format!(
        r#"{{"Effect": "{effect}", "Principal": {{"AWS": "{principal}"}}, "Action": {}, "Resource": "*"}}"#,
        serde_json::json!(actions)
    )
}

/// A policy: the root may do everything, plus `more` statements.
fn policy(more: &[String]) -> String {
    let mut all = vec![statement("Allow", ROOT, &["kms:*"])];
    all.extend(more.iter().cloned());
    format!(
        r#"{{"Version": "2012-10-17", "Statement": [{}]}}"#,
        all.join(",")
    )
}

fn is_access_denied<T: std::fmt::Debug>(r: &hsm_core::Result<T>) -> bool {
    matches!(r, Err(Error::AccessDenied(_)))
}

// ---------------------------------------------------------------- the table

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Symmetric,
    Signing,
    Mac,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    AllowedByPolicy,
    AllowedByGrant,
    DeniedByDefault,
    DeniedExplicitly,
}

/// What an operation's call needs, prepared as the root.
#[derive(Default)]
struct Prep {
    key: String,
    other_key: String,
    blob: Vec<u8>,
    signature: Vec<u8>,
    mac: Vec<u8>,
    alias: String,
    /// The grant a RetireGrant / RevokeGrant acts on.
    target_grant: String,
}

type Setup = fn(&Gate<'_>, &mut Prep);
type Call = fn(&Gate<'_>, &Prep) -> hsm_core::Result<()>;

struct Op {
    action: &'static str,
    kind: Kind,
    /// The grant operations that allow it (empty: a grant cannot).
    grant_ops: &'static [GrantOperation],
    setup: Setup,
    call: Call,
}

fn no_setup(_: &Gate<'_>, _: &mut Prep) {}

fn hr() -> EncryptionContext {
    ctx(&[("dept", "hr")])
}

fn grant_to(gate: &Gate<'_>, key: &str, grantee: &str, ops: &[GrantOperation]) -> String {
    gate.create_grant(CreateGrantRequest {
        key_id: key.to_string(),
        grantee_principal: grantee.to_string(),
        operations: ops.to_vec(),
        ..Default::default()
    })
    .expect("create grant")
    .grant_id
}

fn ops() -> Vec<Op> {
    use GrantOperation as G;
    use Kind::*;
    vec![
        Op {
            action: "kms:DescribeKey",
            kind: Symmetric,
            grant_ops: &[G::DescribeKey],
            setup: no_setup,
            call: |g, p| g.describe_key(&p.key).map(drop),
        },
        Op {
            action: "kms:UpdateKeyDescription",
            kind: Symmetric,
            grant_ops: &[],
            setup: no_setup,
            call: |g, p| g.update_key_description(&p.key, "changed"),
        },
        Op {
            action: "kms:EnableKey",
            kind: Symmetric,
            grant_ops: &[],
            setup: |g, p| g.disable_key(&p.key).unwrap(),
            call: |g, p| g.enable_key(&p.key),
        },
        Op {
            action: "kms:DisableKey",
            kind: Symmetric,
            grant_ops: &[],
            setup: no_setup,
            call: |g, p| g.disable_key(&p.key),
        },
        Op {
            action: "kms:ScheduleKeyDeletion",
            kind: Symmetric,
            grant_ops: &[],
            setup: no_setup,
            call: |g, p| g.schedule_key_deletion(&p.key, Some(7)).map(drop),
        },
        Op {
            action: "kms:CancelKeyDeletion",
            kind: Symmetric,
            grant_ops: &[],
            setup: |g, p| {
                g.schedule_key_deletion(&p.key, Some(7)).unwrap();
            },
            call: |g, p| g.cancel_key_deletion(&p.key).map(drop),
        },
        Op {
            action: "kms:EnableKeyRotation",
            kind: Symmetric,
            grant_ops: &[],
            setup: no_setup,
            call: |g, p| g.enable_key_rotation(&p.key, None),
        },
        Op {
            action: "kms:DisableKeyRotation",
            kind: Symmetric,
            grant_ops: &[],
            setup: |g, p| g.enable_key_rotation(&p.key, None).unwrap(),
            call: |g, p| g.disable_key_rotation(&p.key),
        },
        Op {
            action: "kms:GetKeyRotationStatus",
            kind: Symmetric,
            grant_ops: &[],
            setup: no_setup,
            call: |g, p| g.get_key_rotation_status(&p.key).map(drop),
        },
        Op {
            action: "kms:RotateKeyOnDemand",
            kind: Symmetric,
            grant_ops: &[],
            setup: no_setup,
            call: |g, p| g.rotate_key_on_demand(&p.key).map(drop),
        },
        Op {
            action: "kms:ListKeyRotations",
            kind: Symmetric,
            grant_ops: &[],
            setup: no_setup,
            call: |g, p| g.list_key_rotations(&p.key, None, None).map(drop),
        },
        Op {
            action: "kms:CreateAlias",
            kind: Symmetric,
            grant_ops: &[],
            setup: no_setup,
            call: |g, p| g.create_alias(&p.alias, &p.key),
        },
        Op {
            action: "kms:UpdateAlias",
            kind: Symmetric,
            grant_ops: &[],
            setup: |g, p| g.create_alias(&p.alias, &p.other_key).unwrap(),
            call: |g, p| g.update_alias(&p.alias, &p.key),
        },
        Op {
            action: "kms:DeleteAlias",
            kind: Symmetric,
            grant_ops: &[],
            setup: |g, p| g.create_alias(&p.alias, &p.key).unwrap(),
            call: |g, p| g.delete_alias(&p.alias),
        },
        Op {
            action: "kms:TagResource",
            kind: Symmetric,
            grant_ops: &[],
            setup: no_setup,
            call: |g, p| {
                g.tag_resource(
                    &p.key,
                    &[Tag {
                        tag_key: "k".into(),
                        tag_value: "v".into(),
                    }],
                )
            },
        },
        Op {
            action: "kms:UntagResource",
            kind: Symmetric,
            grant_ops: &[],
            setup: |g, p| {
                g.tag_resource(
                    &p.key,
                    &[Tag {
                        tag_key: "k".into(),
                        tag_value: "v".into(),
                    }],
                )
                .unwrap()
            },
            call: |g, p| g.untag_resource(&p.key, &["k".to_string()]),
        },
        Op {
            action: "kms:ListResourceTags",
            kind: Symmetric,
            grant_ops: &[],
            setup: no_setup,
            call: |g, p| g.list_resource_tags(&p.key, None, None).map(drop),
        },
        Op {
            action: "kms:Encrypt",
            kind: Symmetric,
            grant_ops: &[G::Encrypt],
            setup: no_setup,
            call: |g, p| g.encrypt(&p.key, b"secret", &hr(), None).map(drop),
        },
        Op {
            action: "kms:Decrypt",
            kind: Symmetric,
            grant_ops: &[G::Decrypt],
            setup: no_setup,
            call: |g, p| g.decrypt(&p.blob, &hr(), None, None).map(drop),
        },
        Op {
            action: "kms:ReEncrypt*",
            kind: Symmetric,
            grant_ops: &[G::ReEncryptFrom, G::ReEncryptTo],
            setup: no_setup,
            call: |g, p| g.re_encrypt(&p.blob, &hr(), None, &p.key, &hr()).map(drop),
        },
        Op {
            action: "kms:GenerateDataKey",
            kind: Symmetric,
            grant_ops: &[G::GenerateDataKey],
            setup: no_setup,
            call: |g, p| g.generate_data_key(&p.key, None, Some(32), &hr()).map(drop),
        },
        Op {
            action: "kms:GenerateDataKeyWithoutPlaintext",
            kind: Symmetric,
            grant_ops: &[G::GenerateDataKeyWithoutPlaintext],
            setup: no_setup,
            call: |g, p| {
                g.generate_data_key_without_plaintext(&p.key, None, Some(32), &hr())
                    .map(drop)
            },
        },
        Op {
            action: "kms:GenerateDataKeyPair",
            kind: Symmetric,
            grant_ops: &[G::GenerateDataKeyPair],
            setup: no_setup,
            call: |g, p| {
                g.generate_data_key_pair(&p.key, DataKeyPairSpec::EccNistP256, &hr(), true)
                    .map(drop)
            },
        },
        Op {
            action: "kms:GenerateDataKeyPairWithoutPlaintext",
            kind: Symmetric,
            grant_ops: &[G::GenerateDataKeyPairWithoutPlaintext],
            setup: no_setup,
            call: |g, p| {
                g.generate_data_key_pair(&p.key, DataKeyPairSpec::EccNistP256, &hr(), false)
                    .map(drop)
            },
        },
        Op {
            action: "kms:Sign",
            kind: Signing,
            grant_ops: &[G::Sign],
            setup: no_setup,
            call: |g, p| {
                g.sign(
                    &p.key,
                    b"message",
                    MessageType::Raw,
                    SigningAlgorithm::EcdsaSha256,
                )
                .map(drop)
            },
        },
        Op {
            action: "kms:Verify",
            kind: Signing,
            grant_ops: &[G::Verify],
            setup: no_setup,
            call: |g, p| {
                g.verify(
                    &p.key,
                    b"message",
                    MessageType::Raw,
                    &p.signature,
                    SigningAlgorithm::EcdsaSha256,
                )
                .map(drop)
            },
        },
        Op {
            action: "kms:GetPublicKey",
            kind: Signing,
            grant_ops: &[G::GetPublicKey],
            setup: no_setup,
            call: |g, p| g.get_public_key(&p.key).map(drop),
        },
        Op {
            action: "kms:GenerateMac",
            kind: Mac,
            grant_ops: &[G::GenerateMac],
            setup: no_setup,
            call: |g, p| {
                g.generate_mac(&p.key, b"message", MacAlgorithm::HmacSha256)
                    .map(drop)
            },
        },
        Op {
            action: "kms:VerifyMac",
            kind: Mac,
            grant_ops: &[G::VerifyMac],
            setup: no_setup,
            call: |g, p| {
                g.verify_mac(&p.key, b"message", &p.mac, MacAlgorithm::HmacSha256)
                    .map(drop)
            },
        },
        Op {
            action: "kms:GetKeyPolicy",
            kind: Symmetric,
            grant_ops: &[],
            setup: no_setup,
            call: |g, p| g.get_key_policy(&p.key, None).map(drop),
        },
        Op {
            action: "kms:ListKeyPolicies",
            kind: Symmetric,
            grant_ops: &[],
            setup: no_setup,
            call: |g, p| g.list_key_policies(&p.key, None, None).map(drop),
        },
        Op {
            action: "kms:PutKeyPolicy",
            kind: Symmetric,
            grant_ops: &[],
            setup: no_setup,
            call: |g, p| {
                g.put_key_policy(
                    &p.key,
                    None,
                    &policy(&[statement(
                        "Allow",
                        &arn("alice"),
                        &["kms:PutKeyPolicy", "kms:Encrypt"],
                    )]),
                    false,
                )
            },
        },
        Op {
            action: "kms:CreateGrant",
            kind: Symmetric,
            grant_ops: &[G::CreateGrant, G::Decrypt],
            setup: no_setup,
            call: |g, p| {
                g.create_grant(CreateGrantRequest {
                    key_id: p.key.clone(),
                    grantee_principal: arn("bob"),
                    operations: vec![GrantOperation::Decrypt],
                    ..Default::default()
                })
                .map(drop)
            },
        },
        Op {
            action: "kms:ListGrants",
            kind: Symmetric,
            grant_ops: &[],
            setup: no_setup,
            call: |g, p| g.list_grants(&p.key, None, None, None, None).map(drop),
        },
        Op {
            action: "kms:RevokeGrant",
            kind: Symmetric,
            grant_ops: &[],
            setup: |g, p| {
                p.target_grant = grant_to(g, &p.key, &arn("bob"), &[GrantOperation::Decrypt])
            },
            call: |g, p| g.revoke_grant(&p.key, &p.target_grant),
        },
        Op {
            action: "kms:RetireGrant",
            kind: Symmetric,
            grant_ops: &[G::RetireGrant, G::Decrypt],
            setup: |g, p| {
                if p.target_grant.is_empty() {
                    p.target_grant = grant_to(g, &p.key, &arn("bob"), &[GrantOperation::Decrypt]);
                }
            },
            call: |g, p| g.retire_grant(None, Some(&p.key), Some(&p.target_grant)),
        },
    ]
}

fn new_key(gate: &Gate<'_>, kind: Kind, policy: Option<&str>) -> String {
    let (spec, usage) = match kind {
        Kind::Symmetric => (KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt),
        Kind::Signing => (KeySpec::EccNistP256, KeyUsage::SignVerify),
        Kind::Mac => (KeySpec::Hmac256, KeyUsage::GenerateVerifyMac),
    };
    gate.create_key_with_policy(
        CreateKeyRequest {
            key_spec: Some(spec),
            key_usage: Some(usage),
            ..Default::default()
        },
        policy,
        false,
    )
    .expect("create key")
    .key_id
}

/// Everything about a key an operation could change, read as the root.
fn snapshot(t: &TestHsm, key: &str) -> String {
    let admin = root();
    let g = t.hsm.gate(&admin);
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        g.describe_key(key),
        g.list_resource_tags(key, None, None),
        g.list_aliases(Some(key), None, None),
        g.get_key_rotation_status(key),
        g.list_key_rotations(key, None, None),
        g.get_key_policy(key, None),
        g.list_grants(key, None, None, None, None),
    )
}

/// The policy pattern of an action ("kms:ReEncrypt*" stays a pattern).
fn denied_action(op: &Op) -> &'static str {
    if op.action == "kms:ReEncrypt*" {
        "kms:ReEncryptFrom"
    } else {
        op.action
    }
}

#[test]
fn every_operation_by_policy_by_grant_by_default_and_explicitly() {
    let t = story();
    let admin = root();
    let alice = user("alice");
    let mut n = 0;
    let mut rows = Vec::new();
    for op in ops() {
        for case in [
            Case::AllowedByPolicy,
            Case::AllowedByGrant,
            Case::DeniedByDefault,
            Case::DeniedExplicitly,
        ] {
            n += 1;
            let as_root = t.hsm.gate(&admin);
            let alice_allow = statement("Allow", &arn("alice"), &[op.action]);
            let alice_all = statement("Allow", &arn("alice"), &["kms:*"]);
            let alice_deny = statement("Deny", &arn("alice"), &[op.action]);
            let key_policy = match case {
                Case::AllowedByPolicy => Some(policy(&[alice_allow])),
                Case::DeniedExplicitly => Some(policy(&[alice_all, alice_deny])),
                _ => None,
            };
            let key = new_key(&as_root, op.kind, key_policy.as_deref());
            let mut prep = Prep {
                key: key.clone(),
                other_key: new_key(&as_root, op.kind, None),
                alias: format!("alias/table-{n}"),
                ..Default::default()
            };
            match op.kind {
                Kind::Symmetric => {
                    prep.blob = as_root
                        .encrypt(&key, b"data", &hr(), None)
                        .unwrap()
                        .ciphertext_blob
                }
                Kind::Signing => {
                    prep.signature = as_root
                        .sign(
                            &key,
                            b"message",
                            MessageType::Raw,
                            SigningAlgorithm::EcdsaSha256,
                        )
                        .unwrap()
                        .signature
                }
                Kind::Mac => {
                    prep.mac = as_root
                        .generate_mac(&key, b"message", MacAlgorithm::HmacSha256)
                        .unwrap()
                        .mac
                }
            }
            // A grant to alice in the grant case, and in the explicit-deny
            // case too: the Deny must beat it.
            let grantable = !op.grant_ops.is_empty();
            if grantable && matches!(case, Case::AllowedByGrant | Case::DeniedExplicitly) {
                prep.target_grant = grant_to(&as_root, &key, &arn("alice"), op.grant_ops);
            }
            (op.setup)(&as_root, &mut prep);
            let before = snapshot(&t, &key);
            let result = (op.call)(&t.hsm.gate(&alice), &prep);
            let expect_ok = match case {
                Case::AllowedByPolicy => true,
                Case::AllowedByGrant => grantable,
                Case::DeniedByDefault | Case::DeniedExplicitly => false,
            };
            rows.push(format!(
                "{:45} {case:?}: {}",
                op.action,
                if result.is_ok() { "ok" } else { "denied" }
            ));
            if expect_ok {
                assert!(result.is_ok(), "{} {case:?}: {result:?}", op.action);
            } else {
                assert!(
                    is_access_denied(&result),
                    "{} {case:?}: {result:?}",
                    op.action
                );
                let Err(Error::AccessDenied(message)) = &result else {
                    unreachable!()
                };
                let key_arn = format!("{}key/{key}", common::ARN_PREFIX);
                let action = denied_action(&op);
                let why = if case == Case::DeniedExplicitly {
                    "with an explicit deny in a resource-based policy".to_string()
                } else {
                    format!("because no resource-based policy allows the {action} action")
                };
                assert_eq!(
                    message,
                    &format!(
                        "User: {} is not authorized to perform: {action} on resource: {key_arn} {why}",
                        arn("alice")
                    ),
                    "{} {case:?}",
                    op.action
                );
                assert_eq!(
                    before,
                    snapshot(&t, &key),
                    "{} {case:?}: a denied call changed something",
                    op.action
                );
            }
        }
    }
    assert_eq!(rows.len(), 36 * 4, "the table covers every operation");
}

// ------------------------------------------------------- account level

#[test]
fn account_level_actions_follow_the_setting() {
    let t = story();
    let alice = user("alice");
    let g = t.hsm.gate(&alice);
    assert!(g.create_key(CreateKeyRequest::default()).is_ok());
    assert!(g.list_keys(None, None).is_ok());
    assert!(g.list_aliases(None, None, None).is_ok());
    assert!(g.generate_random(16).is_ok());
    t.hsm.set_user_account_actions(&["ListKeys".to_string()]);
    let keys_before = t
        .hsm
        .gate(&root())
        .list_keys(None, None)
        .unwrap()
        .items
        .len();
    let denied = g.create_key(CreateKeyRequest::default());
    let Err(Error::AccessDenied(m)) = &denied else {
        panic!("{denied:?}")
    };
    assert!(m.starts_with("User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:CreateKey"), "{m}");
    assert_eq!(
        t.hsm
            .gate(&root())
            .list_keys(None, None)
            .unwrap()
            .items
            .len(),
        keys_before
    );
    assert!(is_access_denied(&g.generate_random(16)));
    assert!(is_access_denied(&g.list_aliases(None, None, None)));
    assert!(g.list_keys(None, None).is_ok());
    // Administrators always.
    let admin = root();
    let r = t.hsm.gate(&admin);
    assert!(r.create_key(CreateKeyRequest::default()).is_ok());
    assert!(r.generate_random(16).is_ok());
}

#[test]
fn a_users_key_is_usable_by_its_creator_and_the_administrators_only() {
    let t = story();
    let (alice, bob, admin) = (user("alice"), user("bob"), root());
    let key = t
        .hsm
        .gate(&alice)
        .create_key(CreateKeyRequest::default())
        .unwrap()
        .key_id;
    let blob = t
        .hsm
        .gate(&alice)
        .encrypt(&key, b"x", &hr(), None)
        .unwrap()
        .ciphertext_blob;
    assert!(t
        .hsm
        .gate(&alice)
        .schedule_key_deletion(&key, Some(7))
        .is_ok());
    assert!(t.hsm.gate(&alice).cancel_key_deletion(&key).is_ok());
    assert!(t.hsm.gate(&alice).enable_key(&key).is_ok());
    assert!(is_access_denied(&t.hsm.gate(&bob).decrypt(
        &blob,
        &hr(),
        None,
        None
    )));
    assert!(is_access_denied(&t.hsm.gate(&bob).describe_key(&key)));
    assert!(t.hsm.gate(&admin).decrypt(&blob, &hr(), None, None).is_ok());
    let text = t.hsm.gate(&admin).get_key_policy(&key, None).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["Statement"][0]["Principal"]["AWS"], ROOT);
    assert_eq!(doc["Statement"][1]["Principal"]["AWS"], arn("alice"));
    // A root key without a Policy has AWS's default policy only.
    let rk = t
        .hsm
        .gate(&admin)
        .create_key(CreateKeyRequest::default())
        .unwrap()
        .key_id;
    let doc: serde_json::Value = serde_json::from_str(
        &t.hsm
            .gate(&admin)
            .get_key_policy(&rk, Some("default"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(doc["Statement"].as_array().unwrap().len(), 1);
    assert_eq!(doc["Statement"][0]["Sid"], "Enable IAM User Permissions");
    assert_eq!(
        t.hsm
            .gate(&admin)
            .list_key_policies(&rk, None, None)
            .unwrap()
            .items,
        vec!["default".to_string()]
    );
    assert!(matches!(
        t.hsm.gate(&admin).get_key_policy(&rk, Some("other")),
        Err(Error::NotFound(_))
    ));
}

// ------------------------------------------------------- policies

#[test]
fn create_key_with_a_bad_policy_creates_nothing() {
    let t = story();
    let admin = root();
    let g = t.hsm.gate(&admin);
    let count = || {
        t.hsm
            .gate(&root())
            .list_keys(None, None)
            .unwrap()
            .items
            .len()
    };
    let before = count();
    let create = |text: &str, bypass: bool| {
        g.create_key_with_policy(CreateKeyRequest::default(), Some(text), bypass)
    };
    let malformed = [
        "{not json".to_string(),
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Perhaps", "Principal": "*", "Action": "kms:*", "Resource": "*"}]}"#.to_string(),
        policy(&[r#"{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*", "Condition": {"StringSometimes": {"a": "b"}}}"#.to_string()]),
        policy(&[statement("Allow", &arn("voldemort"), &["kms:Decrypt"])]),
        policy(&[statement("Allow", "arn:aws:iam::999999999999:root", &["kms:Decrypt"])]),
        r#"{"Version": "2012-10-17", "Statement": [], "Extra": true}"#.to_string(),
    ];
    for text in &malformed {
        let r = create(text, false);
        assert!(
            matches!(r, Err(Error::MalformedPolicyDocument(_))),
            "{text}: {r:?}"
        );
    }
    let mut big = policy(&[]);
    big.push_str(&" ".repeat(32 * 1024));
    assert!(matches!(create(&big, false), Err(Error::LimitExceeded(_))));
    // The lockout check: a policy without PutKeyPolicy for the caller.
    let locked = format!(
        r#"{{"Version": "2012-10-17", "Statement": [{}]}}"#,
        statement("Allow", ROOT, &["kms:Encrypt", "kms:Decrypt"])
    );
    let r = create(&locked, false);
    let Err(Error::MalformedPolicyDocument(m)) = &r else {
        panic!("{r:?}")
    };
    assert!(
        m.contains("will not allow you to update the key policy"),
        "{m}"
    );
    assert_eq!(count(), before, "nothing was created");
    // Bypassed, it is accepted, and then even the root cannot change it.
    let key = create(&locked, true).unwrap().key_id;
    assert_eq!(count(), before + 1);
    assert!(is_access_denied(&g.put_key_policy(
        &key,
        None,
        &policy(&[]),
        false
    )));
    assert!(is_access_denied(&g.describe_key(&key)));
    assert!(g.encrypt(&key, b"x", &hr(), None).is_ok());
}

#[test]
fn put_key_policy_validates_and_changes_nothing_when_refused() {
    let t = story();
    let (admin, alice) = (root(), user("alice"));
    let g = t.hsm.gate(&admin);
    let key = g.create_key(CreateKeyRequest::default()).unwrap().key_id;
    let original = g.get_key_policy(&key, None).unwrap();
    for bad in ["", "[]", r#"{"Statement": {"Effect": "Allow"}}"#] {
        assert!(
            matches!(
                g.put_key_policy(&key, None, bad, false),
                Err(Error::MalformedPolicyDocument(_))
            ),
            "{bad}"
        );
    }
    let alice_only = format!(
        r#"{{"Version": "2012-10-17", "Statement": [{}]}}"#,
        statement("Allow", &arn("alice"), &["kms:*"])
    );
    assert!(matches!(
        g.put_key_policy(&key, None, &alice_only, false),
        Err(Error::MalformedPolicyDocument(_))
    ));
    assert!(matches!(
        g.put_key_policy(&key, Some("custom"), &policy(&[]), false),
        Err(Error::Validation(_))
    ));
    assert_eq!(g.get_key_policy(&key, None).unwrap(), original);
    assert!(is_access_denied(&t.hsm.gate(&alice).encrypt(
        &key,
        b"x",
        &hr(),
        None
    )));
    // Accepted: takes effect on the very next call, and the text is kept as given.
    let with_alice = policy(&[statement("Allow", &arn("alice"), &["kms:Encrypt"])]);
    g.put_key_policy(&key, Some("default"), &with_alice, false)
        .unwrap();
    assert_eq!(g.get_key_policy(&key, None).unwrap(), with_alice);
    assert!(t.hsm.gate(&alice).encrypt(&key, b"x", &hr(), None).is_ok());
    // A deleted user's statements match nobody any more.
    g.delete_user("alice").unwrap();
    g.create_user("alice", None, None).unwrap();
    assert!(
        t.hsm.gate(&alice).encrypt(&key, b"x", &hr(), None).is_ok(),
        "same name, same ARN"
    );
}

#[test]
fn conditions_on_encryption_context_and_caller_account() {
    let t = story();
    let (admin, alice) = (root(), user("alice"));
    let g = t.hsm.gate(&admin);
    let text = policy(&[format!(
        r#"{{"Effect": "Allow", "Principal": {{"AWS": "{}"}}, "Action": ["kms:Encrypt", "kms:Decrypt"],
            "Resource": "*",
            "Condition": {{"StringEquals": {{"kms:EncryptionContext:dept": "hr", "kms:CallerAccount": "{ACCOUNT}"}},
                           "ForAllValues:StringEquals": {{"kms:EncryptionContextKeys": ["dept", "case"]}}}}}}"#,
        arn("alice")
    )]);
    let key = g
        .create_key_with_policy(CreateKeyRequest::default(), Some(&text), false)
        .unwrap()
        .key_id;
    let a = t.hsm.gate(&alice);
    let blob = a.encrypt(&key, b"x", &hr(), None).unwrap().ciphertext_blob;
    assert!(a.decrypt(&blob, &hr(), None, None).is_ok());
    assert!(a
        .encrypt(&key, b"x", &ctx(&[("dept", "hr"), ("case", "7")]), None)
        .is_ok());
    assert!(is_access_denied(&a.encrypt(
        &key,
        b"x",
        &ctx(&[("dept", "it")]),
        None
    )));
    assert!(is_access_denied(&a.encrypt(
        &key,
        b"x",
        &ctx(&[("dept", "hr"), ("other", "1")]),
        None
    )));
    assert!(is_access_denied(&a.encrypt(
        &key,
        b"x",
        &EncryptionContext::new(),
        None
    )));
    // kms:CallerAccount of another account never matches.
    let other = policy(&[format!(
        r#"{{"Effect": "Allow", "Principal": {{"AWS": "{}"}}, "Action": "kms:Encrypt", "Resource": "*",
            "Condition": {{"StringEquals": {{"kms:CallerAccount": "999999999999"}}}}}}"#,
        arn("alice")
    )]);
    g.put_key_policy(&key, None, &other, false).unwrap();
    assert!(is_access_denied(&a.encrypt(&key, b"x", &hr(), None)));
    // kms:ScheduleKeyDeletionPendingWindowInDays and kms:RequestAlias.
    let windows = policy(&[
        format!(
            r#"{{"Effect": "Allow", "Principal": {{"AWS": "{}"}}, "Action": "kms:ScheduleKeyDeletion", "Resource": "*",
                "Condition": {{"NumericGreaterThanEquals": {{"kms:ScheduleKeyDeletionPendingWindowInDays": 20}}}}}}"#,
            arn("alice")
        ),
        format!(
            r#"{{"Effect": "Allow", "Principal": {{"AWS": "{}"}}, "Action": "kms:Encrypt", "Resource": "*",
                "Condition": {{"StringLikeIfExists": {{"kms:RequestAlias": "alias/hr-*"}}}}}}"#,
            arn("alice")
        ),
    ]);
    g.put_key_policy(&key, None, &windows, false).unwrap();
    assert!(is_access_denied(&a.schedule_key_deletion(&key, Some(7))));
    assert_eq!(g.describe_key(&key).unwrap().key_state, KeyState::Enabled);
    g.create_alias("alias/hr-main", &key).unwrap();
    g.create_alias("alias/it-main", &key).unwrap();
    assert!(a.encrypt("alias/hr-main", b"x", &hr(), None).is_ok());
    assert!(is_access_denied(&a.encrypt(
        "alias/it-main",
        b"x",
        &hr(),
        None
    )));
    assert!(
        a.encrypt(&key, b"x", &hr(), None).is_ok(),
        "no alias: IfExists holds"
    );
    assert!(a.schedule_key_deletion(&key, Some(30)).is_ok());
}

// ------------------------------------------------------- grants

fn decrypt_grant(
    key: &str,
    grantee: &str,
    constraints: Option<GrantConstraints>,
) -> CreateGrantRequest {
    CreateGrantRequest {
        key_id: key.to_string(),
        grantee_principal: grantee.to_string(),
        operations: vec![GrantOperation::Decrypt],
        constraints,
        ..Default::default()
    }
}

fn subset(pairs: &[(&str, &str)]) -> Option<GrantConstraints> {
    Some(GrantConstraints {
        encryption_context_subset: Some(ctx(pairs)),
        ..Default::default()
    })
}

#[test]
fn snape_decrypts_through_a_constrained_grant_until_it_is_revoked() {
    let t = story();
    let (admin, snape) = (root(), user("snape"));
    let g = t.hsm.gate(&admin);
    let key = g.create_key(CreateKeyRequest::default()).unwrap().key_id;
    let hr_blob = g
        .encrypt(
            &key,
            b"hr data",
            &ctx(&[("dept", "hr"), ("year", "2024")]),
            None,
        )
        .unwrap()
        .ciphertext_blob;
    let it_blob = g
        .encrypt(&key, b"it data", &ctx(&[("dept", "it")]), None)
        .unwrap()
        .ciphertext_blob;
    let s = t.hsm.gate(&snape);
    assert!(is_access_denied(&s.decrypt(
        &hr_blob,
        &ctx(&[("dept", "hr"), ("year", "2024")]),
        None,
        None
    )));
    let grant = g
        .create_grant(decrypt_grant(
            &key,
            &arn("snape"),
            subset(&[("Dept", "hr")]),
        ))
        .unwrap();
    assert_eq!(grant.grant_id.len(), 64);
    let out = s
        .decrypt(
            &hr_blob,
            &ctx(&[("dept", "hr"), ("year", "2024")]),
            None,
            None,
        )
        .unwrap();
    assert_eq!(&out.plaintext[..], b"hr data");
    assert!(is_access_denied(&s.decrypt(
        &it_blob,
        &ctx(&[("dept", "it")]),
        None,
        None
    )));
    assert!(
        is_access_denied(&s.encrypt(&key, b"x", &hr(), None)),
        "only Decrypt was granted"
    );
    assert!(is_access_denied(&s.describe_key(&key)));
    // Revoked: the very next call is denied.
    assert!(
        is_access_denied(&s.revoke_grant(&key, &grant.grant_id)),
        "RevokeGrant needs the key policy"
    );
    g.revoke_grant(&key, &grant.grant_id).unwrap();
    assert!(is_access_denied(&s.decrypt(
        &hr_blob,
        &ctx(&[("dept", "hr"), ("year", "2024")]),
        None,
        None
    )));
    assert!(matches!(
        g.revoke_grant(&key, &grant.grant_id),
        Err(Error::NotFound(_))
    ));
    // An explicit Deny for Snape beats his grant.
    g.create_grant(decrypt_grant(&key, &arn("snape"), None))
        .unwrap();
    assert!(s
        .decrypt(&it_blob, &ctx(&[("dept", "it")]), None, None)
        .is_ok());
    g.put_key_policy(
        &key,
        None,
        &policy(&[statement("Deny", &arn("snape"), &["kms:*"])]),
        false,
    )
    .unwrap();
    assert!(is_access_denied(&s.decrypt(
        &it_blob,
        &ctx(&[("dept", "it")]),
        None,
        None
    )));
}

#[test]
fn grant_holders_pass_on_only_a_subset_under_stricter_constraints() {
    let t = story();
    let (admin, alice) = (root(), user("alice"));
    let g = t.hsm.gate(&admin);
    let key = g.create_key(CreateKeyRequest::default()).unwrap().key_id;
    g.create_grant(CreateGrantRequest {
        key_id: key.clone(),
        grantee_principal: arn("alice"),
        operations: vec![
            GrantOperation::Decrypt,
            GrantOperation::Encrypt,
            GrantOperation::CreateGrant,
        ],
        constraints: subset(&[("dept", "hr")]),
        ..Default::default()
    })
    .unwrap();
    let a = t.hsm.gate(&alice);
    let count = || {
        g.list_grants(&key, None, None, None, None)
            .unwrap()
            .items
            .len()
    };
    assert_eq!(count(), 1);
    assert!(a
        .create_grant(decrypt_grant(
            &key,
            &arn("bob"),
            subset(&[("dept", "hr"), ("case", "1")])
        ))
        .is_ok());
    for (what, request) in [
        ("no constraint", decrypt_grant(&key, &arn("bob"), None)),
        (
            "another pair",
            decrypt_grant(&key, &arn("bob"), subset(&[("case", "1")])),
        ),
        (
            "more operations",
            CreateGrantRequest {
                operations: vec![GrantOperation::Decrypt, GrantOperation::DescribeKey],
                ..decrypt_grant(&key, &arn("bob"), subset(&[("dept", "hr")]))
            },
        ),
    ] {
        assert!(is_access_denied(&a.create_grant(request)), "{what}");
    }
    assert_eq!(count(), 2);
    // Only grants of known principals.
    let r = g.create_grant(decrypt_grant(&key, &arn("voldemort"), None));
    assert!(matches!(r, Err(Error::Validation(_))), "{r:?}");
    let r = g.create_grant(decrypt_grant(&key, "arn:aws:iam::999999999999:root", None));
    assert!(matches!(r, Err(Error::Validation(_))), "{r:?}");
    assert!(
        g.create_grant(decrypt_grant(&key, ACCOUNT, None)).is_ok(),
        "a bare account id is its root"
    );
    assert_eq!(count(), 3);
}

#[test]
fn a_named_grant_repeated_returns_the_same_grant() {
    let t = story();
    let admin = root();
    let g = t.hsm.gate(&admin);
    let key = g.create_key(CreateKeyRequest::default()).unwrap().key_id;
    let named = CreateGrantRequest {
        name: Some("nightly-backup".into()),
        ..decrypt_grant(&key, &arn("bob"), None)
    };
    let first = g.create_grant(named.clone()).unwrap();
    let again = g.create_grant(named.clone()).unwrap();
    assert_eq!(first.grant_id, again.grant_id);
    let different = g
        .create_grant(CreateGrantRequest {
            operations: vec![GrantOperation::Encrypt],
            ..named.clone()
        })
        .unwrap();
    assert_ne!(first.grant_id, different.grant_id);
    let unnamed = decrypt_grant(&key, &arn("bob"), None);
    assert_ne!(
        g.create_grant(unnamed.clone()).unwrap().grant_id,
        g.create_grant(unnamed).unwrap().grant_id
    );
    let page = g
        .list_grants(&key, Some(&first.grant_id), None, None, None)
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].name.as_deref(), Some("nightly-backup"));
    assert_eq!(page.items[0].grantee_principal, arn("bob"));
    assert_eq!(page.items[0].operations, vec![GrantOperation::Decrypt]);
    assert_eq!(
        g.list_grants(&key, None, Some(&arn("bob")), None, None)
            .unwrap()
            .items
            .len(),
        4
    );
    assert_eq!(
        g.list_grants(&key, None, Some(&arn("alice")), None, None)
            .unwrap()
            .items
            .len(),
        0
    );
    // Paging by Limit/Marker covers every grant once.
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = g
            .list_grants(&key, None, None, Some(1), marker.as_deref())
            .unwrap();
        seen.extend(page.items.into_iter().map(|e| e.grant_id));
        match page.next_marker {
            Some(m) => marker = Some(m),
            None => break,
        }
    }
    seen.dedup();
    assert_eq!(seen.len(), 4);
    assert!(matches!(
        g.list_grants(&key, None, None, None, Some("bogus")),
        Err(Error::Validation(_))
    ));
}

#[test]
fn retiring_a_grant_by_token_or_id_and_who_may() {
    let t = story();
    let (admin, alice, bob, mary) = (root(), user("alice"), user("bob"), user("mary"));
    let g = t.hsm.gate(&admin);
    let key = g.create_key(CreateKeyRequest::default()).unwrap().key_id;
    let with_retiring = CreateGrantRequest {
        retiring_principal: Some(arn("mary")),
        ..decrypt_grant(&key, &arn("alice"), None)
    };
    let grant = g.create_grant(with_retiring.clone()).unwrap();
    // Neither a stranger nor the grantee without RetireGrant.
    assert!(is_access_denied(&t.hsm.gate(&bob).retire_grant(
        Some(&grant.grant_token),
        None,
        None
    )));
    assert!(is_access_denied(&t.hsm.gate(&alice).retire_grant(
        None,
        Some(&key),
        Some(&grant.grant_id)
    )));
    assert_eq!(
        t.hsm
            .gate(&mary)
            .list_retirable_grants(&arn("mary"), None, None)
            .unwrap()
            .items
            .len(),
        1
    );
    assert!(is_access_denied(&t.hsm.gate(&bob).list_retirable_grants(
        &arn("mary"),
        None,
        None
    )));
    // The retiring principal, by token.
    t.hsm
        .gate(&mary)
        .retire_grant(Some(&grant.grant_token), None, None)
        .unwrap();
    assert!(matches!(
        t.hsm
            .gate(&mary)
            .retire_grant(Some(&grant.grant_token), None, None),
        Err(Error::NotFound(_))
    ));
    assert!(g
        .list_grants(&key, None, None, None, None)
        .unwrap()
        .items
        .is_empty());
    // The grantee, when the grant allows RetireGrant.
    let own = g
        .create_grant(CreateGrantRequest {
            operations: vec![GrantOperation::Decrypt, GrantOperation::RetireGrant],
            ..decrypt_grant(&key, &arn("alice"), None)
        })
        .unwrap();
    t.hsm
        .gate(&alice)
        .retire_grant(None, Some(&key), Some(&own.grant_id))
        .unwrap();
    // Malformed tokens and ids.
    let forged = {
        let mut tok = own.grant_token.clone().into_bytes();
        let last = tok.len() - 2;
        tok[last] = if tok[last] == b'A' { b'B' } else { b'A' };
        String::from_utf8(tok).unwrap()
    };
    for bad in ["", "not a token", forged.as_str()] {
        let r = g.retire_grant(Some(bad), None, None);
        assert!(matches!(r, Err(Error::Validation(_))), "{bad:?}: {r:?}");
    }
    assert!(matches!(
        g.retire_grant(None, Some(&key), Some("xyz")),
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        g.retire_grant(None, None, Some(&own.grant_id)),
        Err(Error::Validation(_))
    ));
}

#[test]
fn grant_tokens_are_checked_never_needed() {
    let t = story();
    let admin = root();
    let g = t.hsm.gate(&admin);
    let key = g.create_key(CreateKeyRequest::default()).unwrap().key_id;
    let token = g
        .create_grant(decrypt_grant(&key, &arn("bob"), None))
        .unwrap()
        .grant_token;
    assert!(g.check_grant_tokens(&[]).is_ok());
    assert!(g.check_grant_tokens(&vec![token.clone(); 10]).is_ok());
    assert!(matches!(
        g.check_grant_tokens(&vec![token.clone(); 11]),
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        g.check_grant_tokens(&[token.clone(), "forged".into()]),
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        g.check_grant_tokens(&["x".repeat(9000)]),
        Err(Error::Validation(_))
    ));
    let mut too_many = decrypt_grant(&key, &arn("bob"), None);
    too_many.grant_tokens = vec![token; 11];
    assert!(matches!(
        g.create_grant(too_many),
        Err(Error::Validation(_))
    ));
}

#[test]
fn policies_and_grants_survive_a_restart_and_vanish_with_their_key() {
    let t = story();
    let admin = root();
    let alice = user("alice");
    let (key, gone, text) = {
        let g = t.hsm.gate(&admin);
        let text = policy(&[statement("Allow", &arn("alice"), &["kms:Encrypt"])]);
        let key = g
            .create_key_with_policy(CreateKeyRequest::default(), Some(&text), false)
            .unwrap()
            .key_id;
        g.create_grant(decrypt_grant(&key, &arn("alice"), None))
            .unwrap();
        let gone = g.create_key(CreateKeyRequest::default()).unwrap().key_id;
        g.create_grant(decrypt_grant(&gone, &arn("alice"), None))
            .unwrap();
        g.schedule_key_deletion(&gone, Some(7)).unwrap();
        (key, gone, text)
    };
    let t = t.reopen();
    let g = t.hsm.gate(&admin);
    assert_eq!(g.get_key_policy(&key, None).unwrap(), text);
    let blob = t
        .hsm
        .gate(&alice)
        .encrypt(&key, b"x", &hr(), None)
        .unwrap()
        .ciphertext_blob;
    assert!(
        t.hsm.gate(&alice).decrypt(&blob, &hr(), None, None).is_ok(),
        "the grant survived"
    );
    assert_eq!(
        g.list_grants(&gone, None, None, None, None)
            .unwrap()
            .items
            .len(),
        1
    );
    t.clock.advance(8 * hsm_core::DAY);
    t.hsm.tick(t.hsm.now()).unwrap();
    assert!(matches!(
        g.list_grants(&gone, None, None, None, None),
        Err(Error::NotFound(_))
    ));
    let t = t.reopen();
    assert_eq!(
        t.hsm
            .gate(&admin)
            .list_retirable_grants(ROOT, None, None)
            .unwrap()
            .items
            .len(),
        0
    );
    let db = rusqlite::Connection::open(t.dir.join("tinfoil.db")).unwrap();
    let rows: i64 = db
        .query_row(
            "SELECT count(*) FROM grants WHERE key_id = ?1",
            [&gone],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 0, "the grant rows went with the key");
    let rows: i64 = db
        .query_row("SELECT count(*) FROM grants", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);
}

#[test]
fn the_50001st_grant_on_a_key_is_refused() {
    let t = story();
    let admin = root();
    let key = t
        .hsm
        .gate(&admin)
        .create_key(CreateKeyRequest::default())
        .unwrap()
        .key_id;
    // 49,999 rows written straight into the store, then reopened: the
    // 50,000th grant is created through the gate, the 50,001st refused.
    let closed = t.close();
    {
        let mut db = rusqlite::Connection::open(closed.dir.join("tinfoil.db")).unwrap();
        let tx = db.transaction().unwrap();
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO grants (grant_id, key_id, grantee, operations, issuing, created)
                     VALUES (?1, ?2, ?3, 'Decrypt', ?4, 0)",
                )
                .unwrap();
            for i in 0..49_999u32 {
                insert
                    .execute(rusqlite::params![
                        format!("{i:064x}"),
                        key,
                        arn("bob"),
                        ROOT
                    ])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let t = closed.open(&common::passphrase());
    let g = t.hsm.gate(&admin);
    g.create_grant(decrypt_grant(&key, &arn("alice"), None))
        .unwrap();
    let r = g.create_grant(decrypt_grant(&key, &arn("alice"), None));
    assert!(matches!(r, Err(Error::LimitExceeded(_))), "{r:?}");
    assert!(
        t.hsm.gate(&user("alice")).describe_key(&key).is_err(),
        "still only Decrypt"
    );
    let blob = g.encrypt(&key, b"x", &hr(), None).unwrap().ciphertext_blob;
    assert!(t
        .hsm
        .gate(&user("alice"))
        .decrypt(&blob, &hr(), None, None)
        .is_ok());
}

#[test]
fn the_service_principal_is_not_subject_to_policies() {
    let t = story();
    let admin = root();
    let g = t.hsm.gate(&admin);
    let locked = format!(
        r#"{{"Version": "2012-10-17", "Statement": [{}]}}"#,
        statement("Allow", &arn("alice"), &["kms:Encrypt"])
    );
    let key = g
        .create_key_with_policy(CreateKeyRequest::default(), Some(&locked), true)
        .unwrap()
        .key_id;
    assert!(is_access_denied(&g.describe_key(&key)));
    let service = Caller::service();
    assert!(t.hsm.gate(&service).describe_key(&key).is_ok());
}

#[test]
fn a_ciphertext_of_a_destroyed_key_says_so_to_anyone() {
    let t = story();
    let (admin, alice) = (root(), user("alice"));
    let g = t.hsm.gate(&admin);
    let key = g.create_key(CreateKeyRequest::default()).unwrap().key_id;
    let blob = g.encrypt(&key, b"x", &hr(), None).unwrap().ciphertext_blob;
    assert!(is_access_denied(&t.hsm.gate(&alice).decrypt(
        &blob,
        &hr(),
        None,
        None
    )));
    g.schedule_key_deletion(&key, Some(7)).unwrap();
    t.clock.advance(8 * hsm_core::DAY);
    t.hsm.tick(t.hsm.now()).unwrap();
    for caller in [&admin, &alice] {
        let r = t.hsm.gate(caller).decrypt(&blob, &hr(), None, None);
        let Err(Error::NotFound(m)) = &r else {
            panic!("{r:?}")
        };
        assert!(m.contains("was destroyed"), "{m}");
    }
    // An alias that does not exist is NotFound before anything else.
    let r = t.hsm.gate(&alice).encrypt("alias/none", b"x", &hr(), None);
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");
}

#[test]
fn grant_conditions_operations_grantee_and_aws_resource() {
    let t = story();
    let (admin, alice) = (root(), user("alice"));
    let g = t.hsm.gate(&admin);
    // The seed article's statement: grants only for AWS services, which
    // Tinfoil never is.
    let for_aws = policy(&[format!(
        r#"{{"Effect": "Allow", "Principal": {{"AWS": "{}"}}, "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
            "Resource": "*", "Condition": {{"Bool": {{"kms:GrantIsForAWSResource": true}}}}}}"#,
        arn("alice")
    )]);
    let key = g
        .create_key_with_policy(CreateKeyRequest::default(), Some(&for_aws), false)
        .unwrap()
        .key_id;
    let a = t.hsm.gate(&alice);
    assert!(is_access_denied(&a.create_grant(decrypt_grant(
        &key,
        &arn("bob"),
        None
    ))));
    assert!(is_access_denied(
        &a.list_grants(&key, None, None, None, None)
    ));
    // Only Decrypt grants, only to bob.
    let narrow = policy(&[format!(
        r#"{{"Effect": "Allow", "Principal": {{"AWS": "{}"}}, "Action": "kms:CreateGrant", "Resource": "*",
            "Condition": {{"ForAllValues:StringEquals": {{"kms:GrantOperations": ["Decrypt", "DescribeKey"]}},
                           "StringEquals": {{"kms:GranteePrincipal": "{}"}},
                           "Bool": {{"kms:GrantIsForAWSResource": "false"}}}}}}"#,
        arn("alice"),
        arn("bob")
    )]);
    g.put_key_policy(&key, None, &narrow, false).unwrap();
    assert!(a
        .create_grant(decrypt_grant(&key, &arn("bob"), None))
        .is_ok());
    assert!(is_access_denied(&a.create_grant(decrypt_grant(
        &key,
        &arn("mary"),
        None
    ))));
    let encrypt = CreateGrantRequest {
        operations: vec![GrantOperation::Encrypt],
        ..decrypt_grant(&key, &arn("bob"), None)
    };
    assert!(is_access_denied(&a.create_grant(encrypt)));
    assert_eq!(
        g.list_grants(&key, None, None, None, None)
            .unwrap()
            .items
            .len(),
        1
    );
}

#[test]
fn statements_naming_a_resource_apply_to_that_key_only() {
    let t = story();
    let (admin, alice) = (root(), user("alice"));
    let g = t.hsm.gate(&admin);
    let key = g.create_key(CreateKeyRequest::default()).unwrap().key_id;
    let other = g.create_key(CreateKeyRequest::default()).unwrap().key_id;
    let named = |resource: &str| {
        policy(&[format!(
            r#"{{"Effect": "Allow", "Principal": {{"AWS": "{}"}}, "Action": "kms:Encrypt", "Resource": "{resource}"}}"#,
            arn("alice")
        )])
    };
    let key_arn = format!("{}key/{key}", common::ARN_PREFIX);
    let other_arn = format!("{}key/{other}", common::ARN_PREFIX);
    g.put_key_policy(&key, None, &named(&other_arn), false)
        .unwrap();
    assert!(is_access_denied(&t.hsm.gate(&alice).encrypt(
        &key,
        b"x",
        &hr(),
        None
    )));
    g.put_key_policy(&key, None, &named(&key_arn), false)
        .unwrap();
    assert!(t.hsm.gate(&alice).encrypt(&key, b"x", &hr(), None).is_ok());
    g.put_key_policy(
        &key,
        None,
        &named("arn:aws:kms:*:111122223333:key/*"),
        false,
    )
    .unwrap();
    assert!(t.hsm.gate(&alice).encrypt(&key, b"x", &hr(), None).is_ok());
}

/// KMS's DryRun through the gate, for every front door: a crypto call
/// that would succeed answers DryRunOperationException (and does
/// nothing); one that would fail answers that failure (the gate runs the
/// read-only operation after the authorization and drops its result); an
/// unauthorized caller gets AccessDenied first.
#[test]
fn dry_runs_answer_what_the_real_call_would() {
    let t = TestHsm::new();
    let key = t.symmetric_key("dry").key_id;
    let admin = root();
    let gate = t.hsm.gate(&admin).dry_run(true);
    let none = EncryptionContext::new();
    let name = |r: Result<(), Error>| r.unwrap_err().kms_name();
    assert_eq!(
        name(gate.encrypt(&key, b"x", &none, None).map(drop)),
        "DryRunOperationException"
    );
    assert_eq!(
        name(
            gate.generate_data_key(&key, None, Some(32), &none)
                .map(drop)
        ),
        "DryRunOperationException"
    );
    let blob = t
        .hsm
        .gate(&admin)
        .encrypt(&key, b"x", &none, None)
        .unwrap()
        .ciphertext_blob;
    assert_eq!(
        name(gate.decrypt(&blob, &none, None, None).map(drop)),
        "DryRunOperationException"
    );
    let mut damaged = blob.clone();
    *damaged.last_mut().unwrap() ^= 1;
    assert_eq!(
        name(gate.decrypt(&damaged, &none, None, None).map(drop)),
        "InvalidCiphertextException"
    );
    let mac = t
        .key_of(KeySpec::Hmac256, KeyUsage::GenerateVerifyMac)
        .key_id;
    assert_eq!(
        name(gate.encrypt(&mac, b"x", &none, None).map(drop)),
        "InvalidKeyUsageException"
    );
    assert_eq!(
        name(
            gate.generate_mac(&mac, b"m", MacAlgorithm::HmacSha256)
                .map(drop)
        ),
        "DryRunOperationException"
    );
    t.hsm.gate(&admin).disable_key(&key).unwrap();
    assert_eq!(
        name(gate.encrypt(&key, b"x", &none, None).map(drop)),
        "DisabledException"
    );
    let stranger = user("stranger");
    assert_eq!(
        name(
            t.hsm
                .gate(&stranger)
                .dry_run(true)
                .encrypt(&key, b"x", &none, None)
                .map(drop)
        ),
        "AccessDeniedException"
    );
}
