//! CKA_ALWAYS_AUTHENTICATE through the cryptoki crate: after C_SignInit
//! with such a key, C_Sign* answers CKR_USER_NOT_LOGGED_IN (ending the
//! operation) unless C_Login(CKU_CONTEXT_SPECIFIC) with the user PIN came
//! first, once per operation;
//! a wrong PIN is CKR_PIN_INCORRECT; a context-specific login with no
//! operation waiting is CKR_OPERATION_NOT_INITIALIZED. SoftHSM2 is the
//! control.

mod common;

use common::{load, rv, user_session, Which, USER_PIN};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;

fn pair(session: &Session, always: bool) -> (ObjectHandle, ObjectHandle) {
    session
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::ModulusBits(2048.into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
                Attribute::Verify(true),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sign(true),
                Attribute::AlwaysAuthenticate(always),
            ],
        )
        .unwrap()
}

fn context_login(session: &Session, pin: &str) -> cryptoki::error::Result<()> {
    session.login(UserType::ContextSpecific, Some(&AuthPin::new(pin.into())))
}

fn each_use_needs_the_pin(which: Which) {
    let m = load(which);
    let session = user_session(&m, "always-auth");
    let (public, private) = pair(&session, true);
    match session
        .get_attributes(private, &[AttributeType::AlwaysAuthenticate])
        .unwrap()
        .pop()
    {
        Some(Attribute::AlwaysAuthenticate(true)) => {}
        other => panic!("{other:?}"),
    }
    let data = b"signed once per PIN";
    let mech = Mechanism::Sha256RsaPkcs;

    // No operation waits: a context-specific login has nothing to do.
    assert_eq!(
        rv(context_login(&session, USER_PIN)),
        RvError::OperationNotInitialized
    );

    // Without the login the call fails, and (like any C_Sign* error)
    // ends the operation.
    session.sign_init(&mech, private).unwrap();
    assert_eq!(rv(session.sign_update(data)), RvError::UserNotLoggedIn);
    assert_eq!(
        rv(context_login(&session, USER_PIN)),
        RvError::OperationNotInitialized
    );
    session.sign_init(&mech, private).unwrap();
    assert_eq!(
        rv(context_login(&session, "wrong-pin-1")),
        RvError::PinIncorrect
    );
    context_login(&session, USER_PIN).unwrap();
    session.sign_update(data).unwrap();
    let signature = session.sign_final().unwrap();
    session.verify(&mech, public, data, &signature).unwrap();

    // The next operation needs the PIN again.
    session.sign_init(&mech, private).unwrap();
    assert_eq!(rv(session.sign_final()), RvError::UserNotLoggedIn);
    session.sign_init(&mech, private).unwrap();
    context_login(&session, USER_PIN).unwrap();
    session.sign_update(data).unwrap();
    let signature = session.sign_final().unwrap();
    session.verify(&mech, public, data, &signature).unwrap();

    // A key without the attribute signs as before.
    let (public, plain) = pair(&session, false);
    let signature = session.sign(&mech, plain, data).unwrap();
    session.verify(&mech, public, data, &signature).unwrap();
}

with_keys!(each_use_needs_the_pin);
