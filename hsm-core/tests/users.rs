//! Users, access keys and SigV4 verification through the core: who may
//! manage them, what is stored, and every way a signature check fails.

mod common;

use common::*;
use hsm_core::{Caller, Error, Principal, SigV4Check, MAX_ACCESS_KEYS_PER_PRINCIPAL};
use ring::hmac;
use secrecy::ExposeSecret;

fn root() -> Caller {
    Caller::new(Principal::Root, "test")
}

static ROOT: std::sync::LazyLock<Caller> = std::sync::LazyLock::new(root);

fn user(name: &str) -> Caller {
    Caller::new(Principal::User(name.to_string()), "test")
}

/// SigV4's signing-key derivation and signature, computed here
/// independently of the core's code path.
fn sign(secret: &str, date: &str, region: &str, string_to_sign: &str) -> String {
    let step = |key: &[u8], data: &[u8]| -> Vec<u8> {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
            .as_ref()
            .to_vec()
    };
    let k_date = step(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = step(&k_date, region.as_bytes());
    let k_service = step(&k_region, b"kms");
    let k_signing = step(&k_service, b"aws4_request");
    step(&k_signing, string_to_sign.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn check<'a>(akid: &'a str, string_to_sign: &'a str, signature: &'a str) -> SigV4Check<'a> {
    SigV4Check {
        access_key_id: akid,
        date: "20261206",
        region: "us-east-1",
        service: "kms",
        string_to_sign,
        signature_hex: signature,
    }
}

const STS: &str = "AWS4-HMAC-SHA256\n20261206T101010Z\n20261206/us-east-1/kms/aws4_request\nabc";

#[test]
fn users_are_created_listed_and_deleted_by_administrators() {
    let t = TestHsm::new();
    let admin = root();
    let gate = t.hsm.gate(&admin);
    let alice = gate.create_user("alice", Some(1001), None).unwrap();
    assert_eq!(alice.arn, "arn:aws:iam::111122223333:user/alice");
    assert_eq!(alice.unix_uid, Some(1001));
    gate.create_user("bob", None, Some(&"AB".repeat(32)))
        .unwrap();
    let names: Vec<String> = gate
        .list_users()
        .unwrap()
        .into_iter()
        .map(|u| u.user_name)
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(
        t.hsm.principal_for_uid(1001, 4242),
        Some(Principal::User("alice".into()))
    );
    assert_eq!(t.hsm.principal_for_uid(0, 4242), Some(Principal::Root));
    assert_eq!(t.hsm.principal_for_uid(4242, 4242), Some(Principal::Root));
    assert_eq!(t.hsm.principal_for_uid(1002, 4242), None);
    assert_eq!(
        t.hsm.principal_for_certificate(&"ab".repeat(32)),
        Some(Principal::User("bob".into()))
    );
    assert_eq!(t.hsm.principal_for_certificate(&"cd".repeat(32)), None);

    gate.delete_user("alice").unwrap();
    assert_eq!(t.hsm.principal_for_uid(1001, 4242), None);
    assert!(matches!(gate.delete_user("alice"), Err(Error::NotFound(_))));
}

#[test]
fn bad_user_requests_are_refused_and_change_nothing() {
    let t = TestHsm::new();
    let admin = root();
    let gate = t.hsm.gate(&admin);
    gate.create_user("alice", Some(1001), None).unwrap();
    for (result, name) in [
        (
            gate.create_user("alice", None, None),
            "AlreadyExistsException",
        ),
        (
            gate.create_user("carol", Some(1001), None),
            "AlreadyExistsException",
        ),
        (gate.create_user("root", None, None), "ValidationException"),
        (gate.create_user("", None, None), "ValidationException"),
        (gate.create_user("a b", None, None), "ValidationException"),
        (gate.create_user("a\0b", None, None), "ValidationException"),
        (
            gate.create_user(&"x".repeat(65), None, None),
            "ValidationException",
        ),
        (
            gate.create_user("dave", None, Some("not hex")),
            "ValidationException",
        ),
    ] {
        assert_eq!(result.unwrap_err().kms_name(), name);
    }
    assert_eq!(gate.list_users().unwrap().len(), 1);
}

#[test]
fn only_administrators_manage_users_and_access_keys() {
    let t = TestHsm::new();
    t.hsm
        .gate(&root())
        .create_user("alice", None, None)
        .unwrap();
    let alice = user("alice");
    let gate = t.hsm.gate(&alice);
    let denied = [
        gate.create_user("mallory", None, None).map(|_| ()),
        gate.delete_user("alice"),
        gate.list_users().map(|_| ()),
        gate.create_access_key("alice").map(|_| ()),
        gate.create_access_key("root").map(|_| ()),
        gate.list_access_keys("alice").map(|_| ()),
        gate.delete_access_key("alice", "AKIAAAAAAAAAAAAAAAAA"),
    ];
    for result in denied {
        let err = result.unwrap_err();
        assert_eq!(err.kms_name(), "AccessDeniedException");
        assert!(err.to_string().contains("user/alice"), "{err}");
    }
    assert_eq!(t.hsm.gate(&ROOT).list_users().unwrap().len(), 1);
    assert!(t
        .hsm
        .gate(&root())
        .list_access_keys("alice")
        .unwrap()
        .is_empty());
}

#[test]
fn an_access_key_verifies_signatures_made_with_its_secret_only() {
    let t = TestHsm::new();
    let admin = root();
    let gate = t.hsm.gate(&admin);
    gate.create_user("alice", None, None).unwrap();
    let key = gate.create_access_key("alice").unwrap();
    let akid = key.info.access_key_id.clone();
    let secret = key.secret_access_key.expose_secret().to_string();
    assert!(akid.starts_with("AKIA") && akid.len() == 20, "{akid}");
    assert_eq!(secret.len(), 40);
    assert!(
        !format!("{key:?}").contains(&secret),
        "Debug shows the secret"
    );

    let good = sign(&secret, "20261206", "us-east-1", STS);
    assert_eq!(
        t.hsm.verify_sigv4(&check(&akid, STS, &good)).unwrap(),
        Principal::User("alice".into())
    );
    // Another string to sign, secret, date, region, or a malformed signature.
    let wrong = [
        sign(&secret, "20261206", "us-east-1", &format!("{STS}x")),
        sign(&format!("{secret}x"), "20261206", "us-east-1", STS),
        sign(&secret, "20261205", "us-east-1", STS),
        sign(&secret, "20261206", "eu-west-1", STS),
        good.to_uppercase(),
        good[..62].to_string(),
        format!("{good}00"),
        "zz".repeat(32),
        String::new(),
    ];
    for signature in &wrong {
        let err = t
            .hsm
            .verify_sigv4(&check(&akid, STS, signature))
            .unwrap_err();
        assert_eq!(err.kms_name(), "InvalidSignatureException", "{signature}");
    }
    let err = t
        .hsm
        .verify_sigv4(&check("AKIAUNKNOWNUNKNOWN00", STS, &good))
        .unwrap_err();
    assert_eq!(err.kms_name(), "UnrecognizedClientException");
}

#[test]
fn root_access_keys_act_for_the_administrators() {
    let t = TestHsm::new();
    let key = t.hsm.gate(&ROOT).create_access_key("root").unwrap();
    let secret = key.secret_access_key.expose_secret().to_string();
    let signature = sign(&secret, "20261206", "us-east-1", STS);
    assert_eq!(
        t.hsm
            .verify_sigv4(&check(&key.info.access_key_id, STS, &signature))
            .unwrap(),
        Principal::Root
    );
}

#[test]
fn deleted_access_keys_and_deleted_users_stop_verifying_at_once() {
    let t = TestHsm::new();
    let admin = root();
    let gate = t.hsm.gate(&admin);
    gate.create_user("alice", None, None).unwrap();
    let first = gate.create_access_key("alice").unwrap();
    let second = gate.create_access_key("alice").unwrap();
    let sig = |k: &hsm_core::NewAccessKey| {
        sign(
            k.secret_access_key.expose_secret(),
            "20261206",
            "us-east-1",
            STS,
        )
    };

    // Deleting needs the right owner.
    assert!(matches!(
        gate.delete_access_key("root", &first.info.access_key_id),
        Err(Error::NotFound(_))
    ));
    gate.delete_access_key("alice", &first.info.access_key_id)
        .unwrap();
    let err = t
        .hsm
        .verify_sigv4(&check(&first.info.access_key_id, STS, &sig(&first)))
        .unwrap_err();
    assert_eq!(err.kms_name(), "UnrecognizedClientException");
    t.hsm
        .verify_sigv4(&check(&second.info.access_key_id, STS, &sig(&second)))
        .unwrap();

    gate.delete_user("alice").unwrap();
    let err = t
        .hsm
        .verify_sigv4(&check(&second.info.access_key_id, STS, &sig(&second)))
        .unwrap_err();
    assert_eq!(err.kms_name(), "UnrecognizedClientException");
    assert!(gate.list_access_keys("root").unwrap().is_empty());
}

#[test]
fn a_principal_holds_a_bounded_number_of_access_keys() {
    let t = TestHsm::new();
    let admin = root();
    let gate = t.hsm.gate(&admin);
    for _ in 0..MAX_ACCESS_KEYS_PER_PRINCIPAL {
        gate.create_access_key("root").unwrap();
    }
    let err = gate.create_access_key("root").unwrap_err();
    assert_eq!(err.kms_name(), "LimitExceededException");
    assert_eq!(
        gate.list_access_keys("root").unwrap().len(),
        MAX_ACCESS_KEYS_PER_PRINCIPAL
    );
    assert!(matches!(
        gate.create_access_key("nobody"),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn users_and_access_keys_survive_a_restart_and_secrets_never_reach_the_disk() {
    let t = TestHsm::new();
    let admin = root();
    let gate = t.hsm.gate(&admin);
    gate.create_user("alice", Some(1001), None).unwrap();
    let key = gate.create_access_key("alice").unwrap();
    let akid = key.info.access_key_id.clone();
    let secret = key.secret_access_key.expose_secret().to_string();
    drop(key);

    let t = t.reopen();
    assert_eq!(
        t.hsm.principal_for_uid(1001, 4242),
        Some(Principal::User("alice".into()))
    );
    let signature = sign(&secret, "20261206", "us-east-1", STS);
    t.hsm.verify_sigv4(&check(&akid, STS, &signature)).unwrap();
    let listed = t.hsm.gate(&ROOT).list_access_keys("alice").unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].access_key_id, akid);

    let mut found_id = false;
    for entry in std::fs::read_dir(&t.dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let window = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(!window(secret.as_bytes()), "the secret is on disk");
        found_id |= window(akid.as_bytes());
    }
    // Control: the scan finds what is there (the access key id is stored).
    assert!(found_id, "the scan did not find the access key id");
}
