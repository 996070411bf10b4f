//! Post-quantum keys (issue 16) made through the KMS side (the engine's
//! API, as the CLI does, or the CLI against tinfoild) in a token's
//! namespace show as PKCS#11 3.2 objects (CKK_ML_DSA / CKK_ML_KEM with
//! CKA_PARAMETER_SET, a private and a public object each) and work through
//! the module: the KMS API verifies a C_Sign signature and decapsulates a
//! C_EncapsulateKey ciphertext to the same secret; the token's other keys
//! are unaffected (embedded and daemon backends).

mod common;

use common::{configure, exclusive, Which, USER_PIN};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::dsa::{HedgeType, SignAdditionalContext};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{
    Attribute, AttributeType, KeyType, MlDsaParameterSetType, MlKemParameterSetType, ObjectClass,
    ObjectHandle,
};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use hsm_core::{
    CreateKeyRequest, EncapsulationAlgorithm, Hsm, HsmOptions, KeySpec, KeyUsage, MessageType,
    SecretString, SigningAlgorithm,
};

const MESSAGE: &[u8] = b"signed through PKCS#11, verified by the KMS API";

fn init(path: &std::path::Path) -> Pkcs11 {
    let p11 = Pkcs11::new(path).unwrap();
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    p11
}

/// The private and public objects of a KMS key (CKA_ID = its key id).
fn pair(session: &Session, key_id: &str) -> (ObjectHandle, ObjectHandle) {
    let find = |class| {
        let found = session
            .find_objects(&[
                Attribute::Id(key_id.as_bytes().to_vec()),
                Attribute::Class(class),
            ])
            .unwrap();
        assert_eq!(found.len(), 1, "{key_id}");
        found[0]
    };
    (
        find(ObjectClass::PRIVATE_KEY),
        find(ObjectClass::PUBLIC_KEY),
    )
}

/// What the module does with the KMS keys: signs with the ML-DSA-65 key,
/// encapsulates to the ML-KEM-768 key (a readable session secret), checks
/// the objects' attributes; returns the signature, ciphertext and secret.
fn use_through_pkcs11(session: &Session, dsa: &str, kem: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (dsa_private, dsa_public) = pair(session, dsa);
    let (kem_private, kem_public) = pair(session, kem);
    assert_eq!(
        session
            .get_attributes(
                dsa_public,
                &[AttributeType::KeyType, AttributeType::ParameterSet]
            )
            .unwrap(),
        vec![
            Attribute::KeyType(KeyType::ML_DSA),
            Attribute::ParameterSet(MlDsaParameterSetType::ML_DSA_65.into()),
        ]
    );
    assert_eq!(
        session
            .get_attributes(
                kem_private,
                &[AttributeType::KeyType, AttributeType::ParameterSet]
            )
            .unwrap(),
        vec![
            Attribute::KeyType(KeyType::ML_KEM),
            Attribute::ParameterSet(MlKemParameterSetType::ML_KEM_768.into()),
        ]
    );
    let found = session
        .find_objects(&[Attribute::ParameterSet(
            MlKemParameterSetType::ML_KEM_768.into(),
        )])
        .unwrap();
    // CKP_ML_KEM_768 = CKP_ML_DSA_65 = 2: both pairs.
    assert_eq!(found.len(), 4);
    let mech = Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::Preferred, None));
    let signature = session.sign(&mech, dsa_private, MESSAGE).unwrap();
    session
        .verify(&mech, dsa_public, MESSAGE, &signature)
        .unwrap();
    // The ML-KEM key neither signs nor verifies.
    assert!(session.sign(&mech, kem_private, MESSAGE).is_err());
    let (ciphertext, key) = session
        .encapsulate_key(
            &Mechanism::MlKem,
            kem_public,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ],
        )
        .unwrap();
    let secret = match &session
        .get_attributes(key, &[AttributeType::Value])
        .unwrap()[..]
    {
        [Attribute::Value(v)] => v.clone(),
        other => panic!("{other:?}"),
    };
    (signature, ciphertext, secret)
}

#[test]
fn kms_made_ml_keys_are_pkcs11_objects_embedded() {
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

    let open = || {
        let pass = SecretString::from("a passphrase for tests".to_string());
        Hsm::open(&dir.path().join("data"), &pass, HsmOptions::default()).unwrap()
    };
    let hsm = open();
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
    let dsa = make(KeySpec::MlDsa65, KeyUsage::SignVerify);
    let kem = make(KeySpec::MlKem768, KeyUsage::EncapsulateDecapsulate);
    let ec = make(KeySpec::EccNistP256, KeyUsage::SignVerify);
    drop(hsm);

    let p11 = init(&path);
    let slot = p11.get_slots_with_initialized_token().unwrap()[0];
    let session = p11.open_rw_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    assert_eq!(session.find_objects(&[]).unwrap().len(), 6, "three pairs");
    let (signature, ciphertext, secret) = use_through_pkcs11(&session, &dsa, &kem);
    let (ec_private, _) = pair(&session, &ec);
    let ec_signature = session
        .sign(&Mechanism::EcdsaSha256, ec_private, b"still works")
        .unwrap();
    assert_eq!(ec_signature.len(), 64);
    // The module stays mapped between tests (-z nodelete): finalise it so
    // the store can be opened here.
    drop(session);
    p11.finalize().unwrap();

    // The KMS API agrees with what the module did.
    let hsm = open();
    let verified = hsm
        .verify(
            &dsa,
            MESSAGE,
            MessageType::Raw,
            &signature,
            SigningAlgorithm::MlDsaShake256,
        )
        .unwrap();
    assert!(verified.signature_valid);
    let decapsulated = hsm
        .decapsulate(&kem, &ciphertext, EncapsulationAlgorithm::MlKem)
        .unwrap();
    assert_eq!(decapsulated.shared_secret.to_vec(), secret);
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
fn kms_made_ml_keys_are_pkcs11_objects_daemon() {
    let m = common::load(Which::Daemon);
    let session = common::user_session(&m, "pqd");
    let dsa = cli_key(&["--key-spec", "ML_DSA_65", "--key-usage", "SIGN_VERIFY"]);
    let kem = cli_key(&[
        "--key-spec",
        "ML_KEM_768",
        "--key-usage",
        "ENCAPSULATE_DECAPSULATE",
    ]);
    let ec = cli_key(&["--key-spec", "ECC_NIST_P256", "--key-usage", "SIGN_VERIFY"]);
    assert_eq!(session.find_objects(&[]).unwrap().len(), 6, "three pairs");
    let (_, ciphertext, secret) = use_through_pkcs11(&session, &dsa, &kem);
    // The token decapsulates what it encapsulated to the KMS key.
    let (kem_private, _) = pair(&session, &kem);
    let key = session
        .decapsulate_key(
            &Mechanism::MlKem,
            kem_private,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ],
            &ciphertext,
        )
        .unwrap();
    assert_eq!(
        session
            .get_attributes(key, &[AttributeType::Value])
            .unwrap(),
        vec![Attribute::Value(secret)]
    );
    let (ec_private, _) = pair(&session, &ec);
    let signature = session
        .sign(&Mechanism::EcdsaSha256, ec_private, b"still works")
        .unwrap();
    assert_eq!(signature.len(), 64);
}
