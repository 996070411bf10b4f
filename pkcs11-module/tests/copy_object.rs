//! C_CopyObject on secret keys, against our module (embedded and daemon
//! backends) and SoftHSM2 as the control: a copy is a new key with the same
//! material (it encrypts alike and outlives its source), it may move
//! between session and token, and the template may change only what the
//! spec lets a copy change.

mod common;

use common::{rv, user_session};

use common::{load, Which};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::types::Ulong;

fn aes_key(session: &Session, token: bool, sensitive: bool, extractable: bool) -> ObjectHandle {
    session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::ValueLen(32.into()),
                Attribute::Token(token),
                Attribute::Private(true),
                Attribute::Sensitive(sensitive),
                Attribute::Extractable(extractable),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Label(b"source".to_vec()),
            ],
        )
        .unwrap()
}

fn seal(session: &Session, key: ObjectHandle, data: &[u8]) -> Result<Vec<u8>, Error> {
    let mut iv = [9u8; 12];
    let mech = Mechanism::AesGcm(GcmParams::new(&mut iv, b"copy", Ulong::from(128)).unwrap());
    session.encrypt(&mech, key, data)
}

fn open(session: &Session, key: ObjectHandle, data: &[u8]) -> Result<Vec<u8>, Error> {
    let mut iv = [9u8; 12];
    let mech = Mechanism::AesGcm(GcmParams::new(&mut iv, b"copy", Ulong::from(128)).unwrap());
    session.decrypt(&mech, key, data)
}

fn bool_attr(session: &Session, key: ObjectHandle, t: AttributeType) -> bool {
    match session.get_attributes(key, &[t]).unwrap().as_slice() {
        [Attribute::Token(b)]
        | [Attribute::Sensitive(b)]
        | [Attribute::Extractable(b)]
        | [Attribute::Private(b)] => *b,
        other => panic!("unexpected {other:?}"),
    }
}

fn a_session_key_copies_to_a_token_key_that_outlives_it(which: Which) {
    let m = load(which);
    let session = user_session(&m, "copy");
    let source = aes_key(&session, false, true, false);
    let copy = session
        .copy_object(
            source,
            &[
                Attribute::Token(true),
                Attribute::Label(b"the-copy".to_vec()),
                Attribute::Id(b"c1".to_vec()),
            ],
        )
        .expect("C_CopyObject of a session AES key to the token");
    assert_ne!(copy, source);
    let sealed = seal(&session, source, b"same key, same ciphertext").unwrap();
    assert_eq!(
        seal(&session, copy, b"same key, same ciphertext").unwrap(),
        sealed
    );
    assert!(bool_attr(&session, copy, AttributeType::Token));
    assert!(!bool_attr(&session, source, AttributeType::Token));
    assert!(bool_attr(&session, copy, AttributeType::Sensitive));
    assert!(!bool_attr(&session, copy, AttributeType::Extractable));
    let attrs = session
        .get_attributes(
            copy,
            &[
                AttributeType::Label,
                AttributeType::Id,
                AttributeType::KeyType,
                AttributeType::ValueLen,
            ],
        )
        .unwrap();
    assert_eq!(
        attrs,
        vec![
            Attribute::Label(b"the-copy".to_vec()),
            Attribute::Id(b"c1".to_vec()),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(32.into()),
        ]
    );
    assert_eq!(
        session
            .find_objects(&[Attribute::Label(b"the-copy".to_vec())])
            .unwrap(),
        vec![copy]
    );

    // The source goes; the copy is a key of its own.
    session.destroy_object(source).unwrap();
    assert_eq!(
        rv(seal(&session, source, b"x")),
        RvError::ObjectHandleInvalid
    );
    assert_eq!(
        open(&session, copy, &sealed).unwrap(),
        b"same key, same ciphertext"
    );

    // And back from the token to a session key.
    let back = session
        .copy_object(copy, &[Attribute::Token(false)])
        .expect("copy of a token key to a session key");
    assert!(!bool_attr(&session, back, AttributeType::Token));
    assert_eq!(
        open(&session, back, &sealed).unwrap(),
        b"same key, same ciphertext"
    );
    session.destroy_object(copy).unwrap();
    assert_eq!(
        seal(&session, back, b"same key, same ciphertext").unwrap(),
        sealed
    );
}

fn a_copy_may_only_tighten_sensitivity_and_extractability(which: Which) {
    let m = load(which);
    let session = user_session(&m, "copy-rules");
    let locked = aes_key(&session, false, true, false);
    let open_key = aes_key(&session, false, false, true);
    let count = || session.find_objects(&[]).unwrap().len();
    let before = count();

    for (key, change) in [
        (locked, Attribute::Extractable(true)),
        (locked, Attribute::Sensitive(false)),
        (open_key, Attribute::ValueLen(16.into())),
        (open_key, Attribute::KeyType(KeyType::GENERIC_SECRET)),
        (open_key, Attribute::Class(ObjectClass::DATA)),
    ] {
        assert_eq!(
            rv(session.copy_object(key, std::slice::from_ref(&change))),
            RvError::AttributeReadOnly,
            "{change:?}"
        );
    }
    assert_eq!(count(), before, "a refused copy makes nothing");

    // Tightening is allowed, and the copy keeps the tighter rule.
    let tight = session
        .copy_object(
            open_key,
            &[Attribute::Sensitive(true), Attribute::Extractable(false)],
        )
        .unwrap();
    assert!(bool_attr(&session, tight, AttributeType::Sensitive));
    assert!(!bool_attr(&session, tight, AttributeType::Extractable));
    assert!(!bool_attr(&session, open_key, AttributeType::Sensitive));
    assert_eq!(
        rv(session.copy_object(tight, &[Attribute::Extractable(true)])),
        RvError::AttributeReadOnly
    );
    assert_eq!(
        seal(&session, tight, b"p").unwrap(),
        seal(&session, open_key, b"p").unwrap()
    );

    // A key made not copyable is refused outright.
    let fixed = session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::ValueLen(16.into()),
                Attribute::Token(false),
                Attribute::Copyable(false),
                Attribute::Encrypt(true),
            ],
        )
        .unwrap();
    assert_eq!(
        rv(session.copy_object(fixed, &[])),
        RvError::ActionProhibited
    );
    assert_eq!(count(), before + 2);
}

with_keys!(
    a_session_key_copies_to_a_token_key_that_outlives_it,
    a_copy_may_only_tighten_sensitivity_and_extractability,
);
