//! The KMS lifecycle seen through PKCS#11 (embedded backend): keys made
//! with the engine's API (as the CLI does) appear as objects, a disabled
//! key cannot be used, and C_DestroyObject schedules deletion (7 days)
//! so it can still be cancelled.

mod common;

use common::{configure, exclusive, Which, USER_PIN};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use hsm_core::{CreateKeyRequest, Hsm, HsmOptions, KeySpec, KeyState, SecretString};

fn open_store(dir: &std::path::Path) -> Hsm {
    let pass = SecretString::from("a passphrase for tests".to_string());
    Hsm::open(&dir.join("data"), &pass, HsmOptions::default()).expect("open the store")
}

fn init(path: &std::path::Path) -> Pkcs11 {
    let p11 = Pkcs11::new(path).unwrap();
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    p11
}

#[test]
fn engine_keys_show_up_disabled_keys_refuse_destroy_schedules_deletion() {
    let _g = exclusive();
    let (dir, path) = configure(Which::Embedded);

    // 1. A token and a key made through PKCS#11.
    let p11 = init(&path);
    let slot = p11.get_all_slots().unwrap()[0];
    p11.init_token(slot, &AuthPin::new(common::SO_PIN.into()), "life")
        .unwrap();
    let session = p11.open_rw_session(slot).unwrap();
    session
        .login(UserType::So, Some(&AuthPin::new(common::SO_PIN.into())))
        .unwrap();
    session.init_pin(&AuthPin::new(USER_PIN.into())).unwrap();
    session.logout().unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(32.into()),
                Attribute::Token(true),
                Attribute::Label(b"p11-key".to_vec()),
                Attribute::Id(vec![0xaa, 0xbb]),
            ],
        )
        .unwrap();
    drop(session);
    p11.finalize().unwrap();

    // 2. The engine (as the CLI would) sees it in the token's namespace,
    //    disables it, and makes a second key with an alias there.
    let hsm = open_store(dir.path());
    let keys = hsm.list_token_keys("life").unwrap();
    assert_eq!(keys.len(), 1);
    let p11_key = keys[0].key_id.clone();
    hsm.disable_key(&p11_key).unwrap();
    let cli = hsm
        .create_key(CreateKeyRequest {
            description: "made by the CLI".into(),
            key_spec: Some(KeySpec::SymmetricDefault),
            token: Some("life".into()),
            ..Default::default()
        })
        .unwrap();
    hsm.create_alias("alias/cli-key", &cli.key_id).unwrap();
    let cli_ec = hsm
        .create_key(CreateKeyRequest {
            description: "cli-ec".into(),
            key_spec: Some(KeySpec::EccNistP256),
            key_usage: Some(hsm_core::KeyUsage::SignVerify),
            token: Some("life".into()),
            ..Default::default()
        })
        .unwrap();
    let cli_mac = hsm
        .create_key(CreateKeyRequest {
            description: "cli-mac".into(),
            key_spec: Some(KeySpec::Hmac256),
            key_usage: Some(hsm_core::KeyUsage::GenerateVerifyMac),
            token: Some("life".into()),
            ..Default::default()
        })
        .unwrap();
    drop(hsm);

    // 3. Through PKCS#11 again.
    let p11 = init(&path);
    let slot = p11.get_slots_with_initialized_token().unwrap()[0];
    let session = p11.open_rw_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    let mine = session
        .find_objects(&[Attribute::Id(vec![0xaa, 0xbb])])
        .unwrap();
    assert_eq!(mine.len(), 1, "the application's CKA_ID is kept");
    session
        .update_attributes(mine[0], &[Attribute::Label(b"renamed".to_vec())])
        .unwrap();
    let refused = session.encrypt(&Mechanism::AesEcb, mine[0], &[0u8; 16]);
    assert!(
        matches!(
            refused,
            Err(Error::Pkcs11(RvError::KeyFunctionNotPermitted, _))
        ),
        "a disabled key: {refused:?}"
    );
    let theirs = session
        .find_objects(&[Attribute::Id(cli.key_id.as_bytes().to_vec())])
        .unwrap();
    assert_eq!(theirs.len(), 1, "CKA_ID = the key id's bytes");
    let attrs = session
        .get_attributes(theirs[0], &[AttributeType::Label, AttributeType::Class])
        .unwrap();
    assert!(attrs.contains(&Attribute::Label(b"cli-key".to_vec())));
    assert!(attrs.contains(&Attribute::Class(ObjectClass::SECRET_KEY)));
    let block = session
        .encrypt(&Mechanism::AesEcb, theirs[0], &[1u8; 16])
        .unwrap();
    assert_eq!(
        session
            .decrypt(&Mechanism::AesEcb, theirs[0], &block)
            .unwrap(),
        vec![1u8; 16]
    );
    // The CLI's EC key is a private and a public object; the HMAC key one.
    let ec_objects = session
        .find_objects(&[Attribute::Id(cli_ec.key_id.as_bytes().to_vec())])
        .unwrap();
    assert_eq!(ec_objects.len(), 2);
    let private = session
        .find_objects(&[
            Attribute::Id(cli_ec.key_id.as_bytes().to_vec()),
            Attribute::Class(ObjectClass::PRIVATE_KEY),
        ])
        .unwrap()[0];
    let public = session
        .find_objects(&[
            Attribute::Id(cli_ec.key_id.as_bytes().to_vec()),
            Attribute::Class(ObjectClass::PUBLIC_KEY),
        ])
        .unwrap()[0];
    let sig = session
        .sign(&Mechanism::EcdsaSha256, private, b"hi")
        .unwrap();
    session
        .verify(&Mechanism::EcdsaSha256, public, b"hi", &sig)
        .unwrap();
    let refused = session.destroy_object(public);
    assert!(
        matches!(refused, Err(Error::Pkcs11(RvError::ActionProhibited, _))),
        "{refused:?}"
    );
    let mac_key = session
        .find_objects(&[Attribute::Id(cli_mac.key_id.as_bytes().to_vec())])
        .unwrap();
    assert_eq!(mac_key.len(), 1);
    assert_eq!(
        session
            .sign(&Mechanism::Sha256Hmac, mac_key[0], b"hi")
            .unwrap()
            .len(),
        32
    );
    session.destroy_object(theirs[0]).unwrap();
    assert!(session
        .find_objects(&[Attribute::Id(cli.key_id.as_bytes().to_vec())])
        .unwrap()
        .is_empty());
    drop(session);
    p11.finalize().unwrap();

    // 4. Destroying scheduled deletion with the minimum window; the CLI
    //    can still cancel it.
    let hsm = open_store(dir.path());
    let meta = hsm.describe_key(&cli.key_id).unwrap();
    assert_eq!(meta.key_state, KeyState::PendingDeletion);
    assert_eq!(meta.pending_deletion_window_in_days, Some(7));
    hsm.cancel_key_deletion(&cli.key_id).unwrap();
    drop(hsm);

    // 5. The label the application changed was kept in the store.
    let p11 = init(&path);
    let slot = p11.get_slots_with_initialized_token().unwrap()[0];
    let session = p11.open_ro_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    let renamed = session
        .find_objects(&[Attribute::Label(b"renamed".to_vec())])
        .unwrap();
    assert_eq!(renamed.len(), 1);
    assert!(session
        .find_objects(&[Attribute::Label(b"p11-key".to_vec())])
        .unwrap()
        .is_empty());
    drop(session);
    p11.finalize().unwrap();
}
