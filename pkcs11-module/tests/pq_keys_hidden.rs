//! Post-quantum keys (issue 16) are KMS-only for now: ML-DSA and ML-KEM
//! keys made in a token's namespace show no PKCS#11 objects (the module has
//! no CKK_ML_DSA / CKK_ML_KEM yet), and their presence breaks neither
//! C_FindObjects nor the token's other keys (embedded and daemon backends).

mod common;

use common::{configure, exclusive, Which, USER_PIN};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use hsm_core::{CreateKeyRequest, Hsm, HsmOptions, KeySpec, KeyUsage, SecretString};

fn init(path: &std::path::Path) -> Pkcs11 {
    let p11 = Pkcs11::new(path).unwrap();
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    p11
}

#[test]
fn ml_dsa_and_ml_kem_token_keys_show_no_objects_and_break_nothing() {
    let _g = exclusive();
    let (dir, path) = configure(Which::Embedded);
    let p11 = init(&path);
    let slot = p11.get_all_slots().unwrap()[0];
    p11.init_token(slot, &AuthPin::new(common::SO_PIN.into()), "pq")
        .unwrap();
    let session = p11.open_rw_session(slot).unwrap();
    session
        .login(UserType::So, Some(&AuthPin::new(common::SO_PIN.into())))
        .unwrap();
    session.init_pin(&AuthPin::new(USER_PIN.into())).unwrap();
    drop(session);
    p11.finalize().unwrap();

    let pass = SecretString::from("a passphrase for tests".to_string());
    let hsm = Hsm::open(&dir.path().join("data"), &pass, HsmOptions::default()).unwrap();
    let make = |spec, usage| {
        hsm.create_key(CreateKeyRequest {
            key_spec: Some(spec),
            key_usage: Some(usage),
            token: Some("pq".into()),
            ..Default::default()
        })
        .unwrap()
        .key_id
    };
    let pq: Vec<String> = [
        (KeySpec::MlDsa65, KeyUsage::SignVerify),
        (KeySpec::MlKem768, KeyUsage::EncapsulateDecapsulate),
    ]
    .into_iter()
    .map(|(s, u)| make(s, u))
    .collect();
    let ec = make(KeySpec::EccNistP256, KeyUsage::SignVerify);
    drop(hsm);

    let p11 = init(&path);
    let slot = p11.get_slots_with_initialized_token().unwrap()[0];
    let session = p11.open_rw_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    let all = session.find_objects(&[]).unwrap();
    assert_eq!(all.len(), 2, "the EC pair only");
    for key in &pq {
        assert!(session
            .find_objects(&[Attribute::Id(key.as_bytes().to_vec())])
            .unwrap()
            .is_empty());
    }
    let private = session
        .find_objects(&[
            Attribute::Id(ec.as_bytes().to_vec()),
            Attribute::Class(ObjectClass::PRIVATE_KEY),
        ])
        .unwrap()[0];
    let signature = session
        .sign(&Mechanism::EcdsaSha256, private, b"still works")
        .unwrap();
    assert_eq!(signature.len(), 64);
    // The module stays mapped between tests (-z nodelete): finalise it for
    // the next test of this file (cryptoki's drop does not).
    drop(session);
    p11.finalize().unwrap();
}

fn cli_key(args: &[&str]) -> String {
    let mut all = vec!["create-key", "--token", "pqd", "--output", "json"];
    all.extend(args);
    let out = common::daemon::cli(&all);
    assert!(
        out.status.success(),
        "tinfoil {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["KeyMetadata"]["KeyId"].as_str().unwrap().to_string()
}

#[test]
fn daemon_backend_ml_token_keys_show_no_objects_and_break_nothing() {
    let m = common::load(Which::Daemon);
    let session = common::user_session(&m, "pqd");
    let dsa = cli_key(&["--key-spec", "ML_DSA_87", "--key-usage", "SIGN_VERIFY"]);
    let kem = cli_key(&[
        "--key-spec",
        "ML_KEM_1024",
        "--key-usage",
        "ENCAPSULATE_DECAPSULATE",
    ]);
    let ec = cli_key(&["--key-spec", "ECC_NIST_P256", "--key-usage", "SIGN_VERIFY"]);
    assert_eq!(session.find_objects(&[]).unwrap().len(), 2, "the EC pair");
    for key in [&dsa, &kem] {
        assert!(session
            .find_objects(&[Attribute::Id(key.as_bytes().to_vec())])
            .unwrap()
            .is_empty());
    }
    let private = session
        .find_objects(&[
            Attribute::Id(ec.as_bytes().to_vec()),
            Attribute::Class(ObjectClass::PRIVATE_KEY),
        ])
        .unwrap()[0];
    let signature = session
        .sign(&Mechanism::EcdsaSha256, private, b"still works")
        .unwrap();
    assert_eq!(signature.len(), 64);
}
