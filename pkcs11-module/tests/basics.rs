//! The same cases against our module and SoftHSM2: token setup, login and
//! PINs, data objects, find, attributes, digests and random.

mod common;

use common::rv;

use common::{load, Which, SO_PIN, USER_PIN};
use cryptoki::context::{CInitializeArgs, CInitializeFlags};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::{SessionState, UserType};
use cryptoki::types::AuthPin;

fn pin(text: &str) -> AuthPin {
    AuthPin::new(text.into())
}

fn library_info_and_double_initialize(which: Which) {
    let m = load(which);
    let info = m.p11.get_library_info().unwrap();
    assert!(info.cryptoki_version().major() >= 2);
    let again = m
        .p11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
    assert_eq!(rv(again), RvError::CryptokiAlreadyInitialized);
}

fn init_token_login_and_pins(which: Which) {
    let m = load(which);
    let slot = m.token("alpha");
    let info = m.p11.get_token_info(slot).unwrap();
    assert_eq!(info.label(), "alpha");
    assert!(info.token_initialized() && info.user_pin_initialized());

    let session = m.p11.open_rw_session(slot).unwrap();
    assert_eq!(
        rv(session.login(UserType::User, Some(&pin("wrong-pin")))),
        RvError::PinIncorrect
    );
    session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    assert_eq!(
        session.get_session_info().unwrap().session_state(),
        SessionState::RwUser
    );
    assert_eq!(
        rv(session.login(UserType::User, Some(&pin(USER_PIN)))),
        RvError::UserAlreadyLoggedIn
    );
    session.set_pin(&pin(USER_PIN), &pin("next-pin-2")).unwrap();
    session.logout().unwrap();
    // (A second C_Logout is CKR_USER_NOT_LOGGED_IN in the spec and in our
    // module, but SoftHSM answers CKR_OK: tested in misuse.rs, ours only.)
    assert_eq!(
        rv(session.login(UserType::User, Some(&pin(USER_PIN)))),
        RvError::PinIncorrect
    );
    session
        .login(UserType::User, Some(&pin("next-pin-2")))
        .unwrap();
    session.logout().unwrap();

    // The SO may not log in while a read-only session is open.
    let ro = m.p11.open_ro_session(slot).unwrap();
    assert_eq!(
        rv(session.login(UserType::So, Some(&pin(SO_PIN)))),
        RvError::SessionReadOnlyExists
    );
    drop(ro);
    // C_InitPIN needs the SO.
    assert_eq!(
        rv(session.init_pin(&pin("other-pin"))),
        RvError::UserNotLoggedIn
    );
}

fn user_pin_not_initialised(which: Which) {
    let m = load(which);
    let slot = m.free_slot();
    m.p11.init_token(slot, &pin(SO_PIN), "bare").unwrap();
    let slot = m.p11.get_slots_with_initialized_token().unwrap()[0];
    let session = m.p11.open_rw_session(slot).unwrap();
    assert_eq!(
        rv(session.login(UserType::User, Some(&pin(USER_PIN)))),
        RvError::UserPinNotInitialized
    );
    assert_eq!(
        rv(session.login(UserType::So, Some(&pin("bad-so-pin")))),
        RvError::PinIncorrect
    );
    session.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    assert_eq!(rv(session.init_pin(&pin("12"))), RvError::PinLenRange);
}

fn data_objects_find_and_attributes(which: Which) {
    let m = load(which);
    let slot = m.token("objects");
    let session = m.p11.open_rw_session(slot).unwrap();
    session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    let template = [
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Label(b"note-1".to_vec()),
        Attribute::Application(b"tests".to_vec()),
        Attribute::Value(b"hello".to_vec()),
    ];
    let obj = session.create_object(&template).unwrap();
    let public = session
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Label(b"note-public".to_vec()),
        ])
        .unwrap();
    let found = session
        .find_objects(&[Attribute::Label(b"note-1".to_vec())])
        .unwrap();
    assert_eq!(found, vec![obj]);
    assert!(session
        .find_objects(&[Attribute::Label(b"absent".to_vec())])
        .unwrap()
        .is_empty());

    let attrs = session
        .get_attributes(obj, &[AttributeType::Value, AttributeType::Label])
        .unwrap();
    assert!(attrs.contains(&Attribute::Value(b"hello".to_vec())));

    session
        .update_attributes(obj, &[Attribute::Label(b"note-renamed".to_vec())])
        .unwrap();
    assert!(session
        .find_objects(&[Attribute::Label(b"note-1".to_vec())])
        .unwrap()
        .is_empty());
    assert_eq!(
        session
            .find_objects(&[Attribute::Label(b"note-renamed".to_vec())])
            .unwrap(),
        vec![obj]
    );
    assert_eq!(
        rv(session.update_attributes(obj, &[Attribute::Class(ObjectClass::SECRET_KEY)])),
        RvError::AttributeReadOnly
    );

    // Another session sees the token object; a logged-out one sees only
    // the public object.
    let other = m.p11.open_ro_session(slot).unwrap();
    assert_eq!(
        other
            .find_objects(&[Attribute::Class(ObjectClass::DATA)])
            .unwrap()
            .len(),
        2
    );
    session.logout().unwrap();
    assert_eq!(
        other
            .find_objects(&[Attribute::Class(ObjectClass::DATA)])
            .unwrap(),
        vec![public]
    );
    assert_eq!(
        rv(other.get_attributes(obj, &[AttributeType::Label])),
        RvError::ObjectHandleInvalid
    );
    // A read-only session cannot create token objects.
    assert_eq!(
        rv(other.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Private(false),
        ])),
        RvError::SessionReadOnly
    );
    session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    // Handles of private objects may change across a logout (SoftHSM
    // renews them), so look the object up again.
    let found = session
        .find_objects(&[Attribute::Label(b"note-renamed".to_vec())])
        .unwrap();
    assert_eq!(found.len(), 1);
    let obj = found[0];
    session.destroy_object(obj).unwrap();
    assert_eq!(
        rv(session.destroy_object(obj)),
        RvError::ObjectHandleInvalid
    );
}

fn session_objects_die_with_their_session(which: Which) {
    let m = load(which);
    let slot = m.token("ephemeral");
    let keeper = m.p11.open_ro_session(slot).unwrap();
    let session = m.p11.open_ro_session(slot).unwrap();
    let obj = session
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(false),
            Attribute::Private(false),
            Attribute::Label(b"temp".to_vec()),
        ])
        .unwrap();
    let copy = session
        .copy_object(obj, &[Attribute::Label(b"temp-copy".to_vec())])
        .unwrap();
    assert_eq!(
        keeper
            .find_objects(&[Attribute::Label(b"temp-copy".to_vec())])
            .unwrap(),
        vec![copy]
    );
    drop(session);
    assert!(keeper
        .find_objects(&[Attribute::Class(ObjectClass::DATA)])
        .unwrap()
        .is_empty());
}

fn digests_single_and_multi_part(which: Which) {
    let m = load(which);
    let slot = m.token("digest");
    let session = m.p11.open_ro_session(slot).unwrap();
    let one = session.digest(&Mechanism::Sha256, b"abc").unwrap();
    assert_eq!(&one[..4], &[0xba, 0x78, 0x16, 0xbf]);
    session.digest_init(&Mechanism::Sha256).unwrap();
    session.digest_update(b"a").unwrap();
    session.digest_update(b"bc").unwrap();
    assert_eq!(session.digest_final().unwrap(), one);
    assert_eq!(session.digest(&Mechanism::Sha384, b"").unwrap().len(), 48);
    assert_eq!(session.digest(&Mechanism::Sha512, b"x").unwrap().len(), 64);
    assert_eq!(rv(session.digest_final()), RvError::OperationNotInitialized);
    assert_eq!(
        rv(session.digest_update(b"x")),
        RvError::OperationNotInitialized
    );
}

fn random_bytes(which: Which) {
    let m = load(which);
    let slot = m.token("random");
    let session = m.p11.open_ro_session(slot).unwrap();
    let a = session.generate_random_vec(32).unwrap();
    let b = session.generate_random_vec(32).unwrap();
    assert_eq!(a.len(), 32);
    assert_ne!(a, b);
}

fn mechanism_info_for_digests(which: Which) {
    let m = load(which);
    let slot = m.token("mechs");
    let list = m.p11.get_mechanism_list(slot).unwrap();
    for mech in [
        cryptoki::mechanism::MechanismType::SHA256,
        cryptoki::mechanism::MechanismType::SHA384,
        cryptoki::mechanism::MechanismType::SHA512,
    ] {
        assert!(list.contains(&mech), "{mech} listed");
        assert!(m.p11.get_mechanism_info(slot, mech).unwrap().digest());
    }
    assert_eq!(
        rv(m.p11
            .get_mechanism_info(slot, cryptoki::mechanism::MechanismType::SLH_DSA)),
        RvError::MechanismInvalid
    );
}

against_both!(
    library_info_and_double_initialize,
    init_token_login_and_pins,
    user_pin_not_initialised,
    data_objects_find_and_attributes,
    session_objects_die_with_their_session,
    digests_single_and_multi_part,
    random_bytes,
    mechanism_info_for_digests,
);
