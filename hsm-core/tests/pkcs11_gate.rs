//! The PKCS#11 daemon backend's questions to the gate: may this socket
//! principal use this token key for this function, may it make keys, and
//! the creator policy a user's new key gets.

mod common;

use common::*;
use hsm_core::audit::Pkcs11Call;
use hsm_core::grants::{CreateGrantRequest, GrantOperation};
use hsm_core::{Caller, Principal};

fn root() -> Caller {
    Caller::new(Principal::Root, "test")
}

/// A PKCS#11 call on `key` through the gate that does nothing once allowed.
fn key_use(
    t: &TestHsm,
    caller: &Caller,
    function: &str,
    action: &'static str,
    key: &str,
) -> hsm_core::Result<()> {
    let call = Pkcs11Call {
        function,
        mechanism: None,
        key_id: Some(key),
    };
    t.hsm
        .gate(caller)
        .pkcs11_call(
            &call,
            action,
            || Ok::<(), String>(()),
            |e| (e.clone(), e.clone()),
        )?
        .map_err(hsm_core::Error::Internal)
}

fn alice() -> Caller {
    Caller::new(Principal::User("alice".into()), "unix:uid=2002")
}

#[test]
fn a_user_uses_a_token_key_only_when_a_policy_or_grant_allows() {
    let t = TestHsm::new();
    let admin = root();
    t.hsm
        .gate(&admin)
        .create_user("alice", Some(2002), None)
        .unwrap();
    let key = t.symmetric_key("token key").key_id;
    let user = alice();

    // Administrators: the default policy allows them.
    key_use(&t, &admin, "C_Encrypt", "kms:Encrypt", &key).unwrap();
    // Alice: nothing allows her; the message names her, the action and the key.
    let err = key_use(&t, &user, "C_Encrypt", "kms:Encrypt", &key).unwrap_err();
    assert_eq!(err.kms_name(), "AccessDeniedException");
    let text = err.to_string();
    assert!(
        text.contains("user/alice") && text.contains("kms:Encrypt") && text.contains(&key),
        "{text}"
    );

    // A grant for Encrypt allows C_Encrypt, not C_Decrypt.
    t.hsm
        .gate(&admin)
        .create_grant(CreateGrantRequest {
            key_id: key.clone(),
            grantee_principal: "arn:aws:iam::111122223333:user/alice".into(),
            operations: vec![GrantOperation::Encrypt],
            ..Default::default()
        })
        .unwrap();
    key_use(&t, &user, "C_Encrypt", "kms:Encrypt", &key).unwrap();
    let err = key_use(&t, &user, "C_Decrypt", "kms:Decrypt", &key).unwrap_err();
    assert_eq!(err.kms_name(), "AccessDeniedException");
}

#[test]
fn a_key_a_user_makes_through_pkcs11_is_that_users() {
    let t = TestHsm::new();
    let admin = root();
    t.hsm
        .gate(&admin)
        .create_user("alice", Some(2002), None)
        .unwrap();
    let user = alice();
    // Users may make keys (kms:CreateKey is in user_account_actions by default).
    t.hsm.gate(&user).pkcs11_may_create_key().unwrap();
    let key = t.symmetric_key("made by alice through PKCS#11").key_id;
    assert_eq!(
        key_use(&t, &user, "C_Encrypt", "kms:Encrypt", &key)
            .unwrap_err()
            .kms_name(),
        "AccessDeniedException"
    );
    t.hsm.gate(&user).pkcs11_key_created(&key).unwrap();
    for (function, action) in [("C_Encrypt", "kms:Encrypt"), ("C_Decrypt", "kms:Decrypt")] {
        key_use(&t, &user, function, action, &key).unwrap();
    }
    let policy = t.hsm.gate(&admin).get_key_policy(&key, None).unwrap();
    assert!(policy.contains("user/alice"), "{policy}");
    // The administrators keep their access (the default statement stays).
    key_use(&t, &admin, "C_Encrypt", "kms:Encrypt", &key).unwrap();
    // An administrator's key gets no creator statement.
    let other = t.symmetric_key("made by root").key_id;
    t.hsm.gate(&admin).pkcs11_key_created(&other).unwrap();
    let policy = t.hsm.gate(&admin).get_key_policy(&other, None).unwrap();
    assert!(!policy.contains("user/"), "{policy}");
}
