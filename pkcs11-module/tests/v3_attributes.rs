//! Attributes of PKCS#11 3.0 objects: CKA_SENSITIVE false means the value
//! is readable (with CKA_EXTRACTABLE true), CKA_ALWAYS_SENSITIVE and
//! CKA_NEVER_EXTRACTABLE are tracked, C_SetAttributeValue of an attribute
//! the object lacks is CKR_ATTRIBUTE_TYPE_INVALID, CKA_UNIQUE_ID,
//! CKA_START_DATE/END_DATE, CKA_ALLOWED_MECHANISMS (enforced),
//! CKA_KEY_GEN_MECHANISM and CKA_PUBLIC_KEY_INFO. Against SoftHSM2 (the
//! control) where it has the attribute.

mod common;

use common::{load, rv, user_session, Which};
use cryptoki::error::RvError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{
    Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::Session;
use cryptoki::types::Date;

fn aes(session: &Session, token: bool, sensitive: bool, extractable: bool) -> ObjectHandle {
    session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::ValueLen(32.into()),
                Attribute::Token(token),
                Attribute::Sensitive(sensitive),
                Attribute::Extractable(extractable),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
            ],
        )
        .unwrap()
}

fn value(session: &Session, key: ObjectHandle) -> Option<Vec<u8>> {
    match session
        .get_attribute_info(key, &[AttributeType::Value])
        .unwrap()
        .as_slice()
    {
        [AttributeInfo::Sensitive] => None,
        [AttributeInfo::Available(_)] => match session
            .get_attributes(key, &[AttributeType::Value])
            .unwrap()
            .pop()
        {
            Some(Attribute::Value(v)) => Some(v),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

fn flag(session: &Session, key: ObjectHandle, t: AttributeType) -> bool {
    match session.get_attributes(key, &[t]).unwrap().pop() {
        Some(Attribute::AlwaysSensitive(b))
        | Some(Attribute::NeverExtractable(b))
        | Some(Attribute::Sensitive(b))
        | Some(Attribute::Extractable(b)) => b,
        other => panic!("{other:?}"),
    }
}

fn ecb(session: &Session, key: ObjectHandle) -> Vec<u8> {
    session
        .encrypt(&Mechanism::AesEcb, key, &[0x5a; 32])
        .unwrap()
}

fn a_non_sensitive_key_gives_its_value(which: Which) {
    let m = load(which);
    let session = user_session(&m, "v3");
    for token in [false, true] {
        let open = aes(&session, token, false, true);
        let v = value(&session, open).expect("readable");
        assert_eq!(v.len(), 32);
        assert!(!flag(&session, open, AttributeType::AlwaysSensitive));
        assert!(!flag(&session, open, AttributeType::NeverExtractable));
        // It is the key: an import of the value encrypts alike.
        let twin = session
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Token(false),
                Attribute::Value(v.clone()),
                Attribute::Encrypt(true),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ])
            .unwrap();
        assert_eq!(ecb(&session, open), ecb(&session, twin));
        assert_eq!(value(&session, twin), Some(v));
        // Made sensitive, it stays so; CKA_ALWAYS_SENSITIVE stays false.
        session
            .update_attributes(open, &[Attribute::Sensitive(true)])
            .unwrap();
        assert_eq!(value(&session, open), None);
        assert!(!flag(&session, open, AttributeType::AlwaysSensitive));
        assert_eq!(
            rv(session.update_attributes(open, &[Attribute::Sensitive(false)])),
            RvError::AttributeReadOnly
        );
        // Not extractable: not readable either, even when not sensitive.
        let stuck = aes(&session, token, false, false);
        assert_eq!(value(&session, stuck), None);
        assert!(flag(&session, stuck, AttributeType::NeverExtractable));
        // The defaults stay sealed.
        let sealed = aes(&session, token, true, false);
        assert_eq!(value(&session, sealed), None);
        assert!(flag(&session, sealed, AttributeType::AlwaysSensitive));
        assert!(flag(&session, sealed, AttributeType::NeverExtractable));
        // A readable key that is made unextractable is sealed too.
        let open2 = aes(&session, token, false, true);
        session
            .update_attributes(open2, &[Attribute::Extractable(false)])
            .unwrap();
        assert_eq!(value(&session, open2), None);
        assert!(!flag(&session, open2, AttributeType::NeverExtractable));
        // A copy of a readable key may stay readable.
        let open3 = aes(&session, token, false, true);
        let copy = session.copy_object(open3, &[]).unwrap();
        assert_eq!(value(&session, copy), value(&session, open3));
    }
}

fn setting_an_attribute_the_object_lacks_is_type_invalid(which: Which) {
    let m = load(which);
    let session = user_session(&m, "v3");
    let key = aes(&session, false, true, false);
    assert_eq!(
        rv(session.update_attributes(key, &[Attribute::Modulus(vec![1, 2, 3])])),
        RvError::AttributeTypeInvalid
    );
    assert_eq!(
        rv(session.update_attributes(key, &[Attribute::EcPoint(vec![4])])),
        RvError::AttributeTypeInvalid
    );
    let data = session
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(false),
            Attribute::Value(b"d".to_vec()),
        ])
        .unwrap();
    assert_eq!(
        rv(session.update_attributes(data, &[Attribute::Sign(true)])),
        RvError::AttributeTypeInvalid
    );
}

fn dates_allowed_mechanisms_and_key_gen_mechanism(which: Which) {
    let m = load(which);
    let session = user_session(&m, "v3");
    let key = session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::ValueLen(16.into()),
                Attribute::Token(true),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::AllowedMechanisms(vec![MechanismType::AES_CBC_PAD]),
            ],
        )
        .unwrap();
    // Only CBC-PAD: ECB is refused before anything runs.
    assert_eq!(
        rv(session.encrypt(&Mechanism::AesEcb, key, &[0u8; 16])),
        RvError::MechanismInvalid
    );
    session
        .encrypt(&Mechanism::AesCbcPad([7u8; 16]), key, b"allowed")
        .unwrap();
    match session
        .get_attributes(key, &[AttributeType::KeyGenMechanism])
        .unwrap()
        .as_slice()
    {
        [Attribute::KeyGenMechanism(mt)] => assert_eq!(*mt, MechanismType::AES_KEY_GEN),
        other => panic!("{other:?}"),
    }
    // Dates: empty by default, settable, checked.
    match session
        .get_attributes(key, &[AttributeType::StartDate])
        .unwrap()
        .as_slice()
    {
        [Attribute::StartDate(d)] => assert!(d.is_empty()),
        other => panic!("{other:?}"),
    }
    let start = Date::new_from_str_slice("2026", "01", "31").unwrap();
    session
        .update_attributes(key, &[Attribute::StartDate(start)])
        .unwrap();
    // SoftHSM 2.6 answers CKR_GENERAL_ERROR reading a date it stored.
    if which != Which::SoftHsm {
        match session
            .get_attributes(key, &[AttributeType::StartDate])
            .unwrap()
            .as_slice()
        {
            [Attribute::StartDate(d)] => assert_eq!(*d, start),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            rv(session
                .update_attributes(key, &[Attribute::EndDate(Date::new_empty())])
                .and_then(|_| session.update_attributes(
                    key,
                    &[Attribute::EndDate(
                        Date::new_from_str_slice("2026", "13", "01").unwrap()
                    )]
                ))),
            RvError::AttributeValueInvalid
        );
    }
    // An EC pair's private key answers CKA_PUBLIC_KEY_INFO and its
    // allowed mechanisms hold for signing.
    let (public, private) = session
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::EcParams(vec![
                    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
                ]),
                Attribute::Verify(true),
            ],
            &[
                Attribute::Token(true),
                Attribute::Sign(true),
                Attribute::AllowedMechanisms(vec![MechanismType::ECDSA]),
            ],
        )
        .unwrap();
    assert_eq!(
        rv(session.sign(&Mechanism::EcdsaSha256, private, b"not allowed")),
        RvError::MechanismInvalid
    );
    session
        .sign(&Mechanism::Ecdsa, private, &[1u8; 32])
        .unwrap();
    if which != Which::SoftHsm {
        for h in [public, private] {
            match session
                .get_attributes(h, &[AttributeType::PublicKeyInfo])
                .unwrap()
                .as_slice()
            {
                [Attribute::PublicKeyInfo(spki)] => assert_eq!(spki[0], 0x30),
                other => panic!("{other:?}"),
            }
        }
    }
}

/// SoftHSM 2.6 has no CKA_UNIQUE_ID.
fn unique_ids_are_stable_distinct_and_read_only(which: Which) {
    let m = load(which);
    let session = user_session(&m, "v3");
    let make = |token: bool| {
        session
            .create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(token),
                Attribute::Label(b"u".to_vec()),
            ])
            .unwrap()
    };
    let id = |h| match session
        .get_attributes(h, &[AttributeType::UniqueId])
        .unwrap()
        .as_slice()
    {
        [Attribute::UniqueId(v)] => v.clone(),
        other => panic!("{other:?}"),
    };
    let (a, b, c) = (make(true), make(true), make(false));
    let (ia, ib, ic) = (id(a), id(b), id(c));
    assert!(!ia.is_empty());
    assert!(ia != ib && ib != ic && ia != ic);
    assert_eq!(
        rv(session.update_attributes(a, &[Attribute::UniqueId(b"mine".to_vec())])),
        RvError::AttributeReadOnly
    );
    let copy = session.copy_object(a, &[]).unwrap();
    assert_ne!(id(copy), ia, "a copy is another object");
    // Stable across a new session (a reload of the token's objects).
    let label = b"u".to_vec();
    drop(session);
    let slot = m.p11.get_slots_with_initialized_token().unwrap()[0];
    let s2 = m.p11.open_ro_session(slot).unwrap();
    s2.login(
        cryptoki::session::UserType::User,
        Some(&cryptoki::types::AuthPin::new(common::USER_PIN.into())),
    )
    .unwrap();
    let ids: Vec<Vec<u8>> = s2
        .find_objects(&[Attribute::Label(label), Attribute::Token(true)])
        .unwrap()
        .into_iter()
        .map(|h| {
            match s2
                .get_attributes(h, &[AttributeType::UniqueId])
                .unwrap()
                .as_slice()
            {
                [Attribute::UniqueId(v)] => v.clone(),
                other => panic!("{other:?}"),
            }
        })
        .collect();
    assert!(ids.contains(&ia) && ids.contains(&ib), "{ids:?}");
}

with_keys!(
    a_non_sensitive_key_gives_its_value,
    setting_an_attribute_the_object_lacks_is_type_invalid,
    dates_allowed_mechanisms_and_key_gen_mechanism,
);
ours_only!(unique_ids_are_stable_distinct_and_read_only);
