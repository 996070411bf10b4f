//! Issue 5, point 6, end to end on the embedded backend: wrap an
//! extractable session data key under a non-extractable token key with
//! CKM_AES_KEY_WRAP_PAD, encrypt with AES-GCM, destroy the data key; later
//! unwrap and decrypt. Disabling the wrapping key (as the CLI does) makes
//! the unwrap fail; after its deletion is purged the data is gone for good.

mod common;

use common::{configure, exclusive, Which, SO_PIN, USER_PIN};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::types::{AuthPin, Ulong};
use hsm_core::{Hsm, HsmOptions, SecretString, DAY};

fn open_store(dir: &std::path::Path) -> Hsm {
    let pass = SecretString::from("a passphrase for tests".to_string());
    Hsm::open(&dir.join("data"), &pass, HsmOptions::default()).expect("open the store")
}

fn start(path: &std::path::Path) -> (Pkcs11, Session) {
    let p11 = Pkcs11::new(path).unwrap();
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = p11.get_slots_with_initialized_token().unwrap()[0];
    let session = p11.open_rw_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    (p11, session)
}

fn unwrap_template() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(false),
        Attribute::Decrypt(true),
    ]
}

fn kek(session: &Session) -> cryptoki::object::ObjectHandle {
    let found = session
        .find_objects(&[Attribute::Label(b"kek".to_vec())])
        .unwrap();
    assert!(found.len() <= 1);
    *found.first().expect("the wrapping key")
}

#[test]
fn wrap_encrypt_destroy_then_unwrap_decrypt_until_the_kek_is_disabled_or_purged() {
    let _g = exclusive();
    let (dir, path) = configure(Which::Embedded);
    let p11 = Pkcs11::new(&path).unwrap();
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = p11.get_all_slots().unwrap()[0];
    p11.init_token(slot, &AuthPin::new(SO_PIN.into()), "vault")
        .unwrap();
    let so = p11.open_rw_session(slot).unwrap();
    so.login(UserType::So, Some(&AuthPin::new(SO_PIN.into())))
        .unwrap();
    so.init_pin(&AuthPin::new(USER_PIN.into())).unwrap();
    drop(so);
    p11.finalize().unwrap();

    // Encrypt: a token KEK, a session data key, wrap, seal, destroy.
    let (p11, session) = start(&path);
    session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(32.into()),
                Attribute::Token(true),
                Attribute::Extractable(false),
                Attribute::Label(b"kek".to_vec()),
            ],
        )
        .unwrap();
    let data_key = session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(32.into()),
                Attribute::Token(false),
                Attribute::Extractable(true),
            ],
        )
        .unwrap();
    let wrapped = session
        .wrap_key(&Mechanism::AesKeyWrapPad, kek(&session), data_key)
        .unwrap();
    let mut iv = [9u8; 12];
    let record = b"card 4111-1111-1111-1111".to_vec();
    let sealed = session
        .encrypt(
            &Mechanism::AesGcm(GcmParams::new(&mut iv, b"rec-1", Ulong::from(128)).unwrap()),
            data_key,
            &record,
        )
        .unwrap();
    session.destroy_object(data_key).unwrap();
    drop(session);
    p11.finalize().unwrap();

    // Later: unwrap and decrypt.
    let (p11, session) = start(&path);
    let restored = session
        .unwrap_key(
            &Mechanism::AesKeyWrapPad,
            kek(&session),
            &wrapped,
            &unwrap_template(),
        )
        .unwrap();
    let opened = session
        .decrypt(
            &Mechanism::AesGcm(GcmParams::new(&mut iv, b"rec-1", Ulong::from(128)).unwrap()),
            restored,
            &sealed,
        )
        .unwrap();
    assert_eq!(opened, record);
    drop(session);
    p11.finalize().unwrap();

    // The CLI disables the KEK: the unwrap fails.
    let hsm = open_store(dir.path());
    let kek_id = hsm.list_token_keys("vault").unwrap()[0].key_id.clone();
    hsm.disable_key(&kek_id).unwrap();
    drop(hsm);
    let (p11, session) = start(&path);
    let refused = session.unwrap_key(
        &Mechanism::AesKeyWrapPad,
        kek(&session),
        &wrapped,
        &unwrap_template(),
    );
    assert!(
        matches!(
            refused,
            Err(Error::Pkcs11(RvError::KeyFunctionNotPermitted, _))
        ),
        "{refused:?}"
    );
    drop(session);
    p11.finalize().unwrap();

    // Scheduled for deletion and purged: the KEK is gone, and with it the data.
    let hsm = open_store(dir.path());
    hsm.schedule_key_deletion(&kek_id, Some(7)).unwrap();
    let report = hsm.tick(hsm.now() + 8 * DAY).unwrap();
    assert_eq!(report.destroyed.len(), 1);
    drop(hsm);
    let (p11, session) = start(&path);
    assert!(session
        .find_objects(&[Attribute::Label(b"kek".to_vec())])
        .unwrap()
        .is_empty());
    assert!(session
        .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])
        .unwrap()
        .is_empty());
    drop(session);
    p11.finalize().unwrap();
}
