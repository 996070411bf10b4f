//! Generic secret and HMAC keys of 1 to 512 bytes (generated, imported,
//! token and session), the PKCS#11 3.0 HMAC key generators
//! (CKM_SHA_1/SHA224/SHA256/SHA384/SHA512_KEY_GEN, key types
//! CKK_SHA*_HMAC) and C_DigestKey; every MAC is checked against ring's
//! HMAC over the key's value. SoftHSM2 is the control where it has the
//! case.

mod common;

use common::{load, rv, user_session, Which};
use cryptoki::error::RvError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

const MESSAGE: &[u8] = b"a message to MAC";

fn value(session: &Session, key: ObjectHandle) -> Vec<u8> {
    match session
        .get_attributes(key, &[AttributeType::Value])
        .unwrap()
        .pop()
    {
        Some(Attribute::Value(v)) => v,
        other => panic!("{other:?}"),
    }
}

fn ring_hmac(key: &[u8]) -> Vec<u8> {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&k, MESSAGE).as_ref().to_vec()
}

/// Generated keys of 1 to 512 bytes, readable, on the token and in the
/// session: their MAC is ring's over the value they show.
fn generated_any_length(which: Which) {
    let m = load(which);
    let session = user_session(&m, "generic");
    for len in [1u64, 5, 27, 33, 100, 512] {
        if which == Which::SoftHsm && len < 32 {
            // SoftHSM wants an HMAC key at least as long as the digest.
            continue;
        }
        for token in [true, false] {
            let key = session
                .generate_key(
                    &Mechanism::GenericSecretKeyGen,
                    &[
                        Attribute::ValueLen(len.into()),
                        Attribute::Token(token),
                        Attribute::Sign(true),
                        Attribute::Verify(true),
                        Attribute::Sensitive(false),
                        Attribute::Extractable(true),
                    ],
                )
                .unwrap_or_else(|e| panic!("{len} {token}: {e}"));
            let v = value(&session, key);
            assert_eq!(v.len() as u64, len);
            let mac = session.sign(&Mechanism::Sha256Hmac, key, MESSAGE).unwrap();
            assert_eq!(mac, ring_hmac(&v), "{len} {token}");
            session
                .verify(&Mechanism::Sha256Hmac, key, MESSAGE, &mac)
                .unwrap();
        }
    }
    if which != Which::SoftHsm {
        for len in [0u64, 513] {
            let r = session.generate_key(
                &Mechanism::GenericSecretKeyGen,
                &[Attribute::ValueLen(len.into()), Attribute::Token(true)],
            );
            assert_eq!(rv(r), RvError::AttributeValueInvalid, "{len}");
        }
    }
}

/// Imported keys of odd lengths, sealed (token) and not: the MAC is ring's
/// over the imported value.
fn imported_any_length(which: Which) {
    let m = load(which);
    let session = user_session(&m, "generic-import");
    for len in [1usize, 7, 31, 65, 300, 512] {
        if which == Which::SoftHsm && len < 32 {
            continue;
        }
        let v: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        for token in [true, false] {
            let key = session
                .create_object(&[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::GENERIC_SECRET),
                    Attribute::Token(token),
                    Attribute::Sign(true),
                    Attribute::Value(v.clone()),
                ])
                .unwrap_or_else(|e| panic!("{len} {token}: {e}"));
            let mac = session.sign(&Mechanism::Sha256Hmac, key, MESSAGE).unwrap();
            assert_eq!(mac, ring_hmac(&v), "{len} {token}");
            let attrs = session
                .get_attributes(key, &[AttributeType::ValueLen])
                .unwrap();
            assert_eq!(attrs, vec![Attribute::ValueLen((len as u64).into())]);
        }
    }
}

/// CKM_SHA*_KEY_GEN make CKK_SHA*_HMAC keys (of the digest's length by
/// default) that MAC with their own hash only (SoftHSM 2.6 lacks them).
fn hmac_key_generators(which: Which) {
    let m = load(which);
    let session = user_session(&m, "hmac-keygen");
    let cases = [
        (Mechanism::Sha1KeyGen, 20u64, Mechanism::Sha1Hmac),
        (Mechanism::Sha224KeyGen, 28, Mechanism::Sha224Hmac),
        (Mechanism::Sha256KeyGen, 32, Mechanism::Sha256Hmac),
        (Mechanism::Sha384KeyGen, 48, Mechanism::Sha384Hmac),
        (Mechanism::Sha512KeyGen, 64, Mechanism::Sha512Hmac),
    ];
    for (gen, len, mac) in cases {
        let key = session
            .generate_key(
                &gen,
                &[
                    Attribute::Token(true),
                    Attribute::Sign(true),
                    Attribute::Verify(true),
                ],
            )
            .unwrap_or_else(|e| panic!("{gen:?}: {e}"));
        let attrs = session
            .get_attributes(
                key,
                &[
                    AttributeType::ValueLen,
                    AttributeType::KeyGenMechanism,
                    AttributeType::Local,
                ],
            )
            .unwrap();
        assert!(
            attrs.contains(&Attribute::ValueLen(len.into()))
                && attrs.contains(&Attribute::KeyGenMechanism(gen.mechanism_type()))
                && attrs.contains(&Attribute::Local(true)),
            "{attrs:?}"
        );
        let tag = session.sign(&mac, key, MESSAGE).unwrap();
        session.verify(&mac, key, MESSAGE, &tag).unwrap();
        let other = if len == 32 {
            Mechanism::Sha384Hmac
        } else {
            Mechanism::Sha256Hmac
        };
        assert_eq!(
            rv(session.sign(&other, key, MESSAGE)),
            RvError::KeyTypeInconsistent
        );
    }
    // An explicit length wins over the default.
    let key = session
        .generate_key(
            &Mechanism::Sha256KeyGen,
            &[
                Attribute::Token(false),
                Attribute::ValueLen(100.into()),
                Attribute::Sign(true),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ],
        )
        .unwrap();
    let v = value(&session, key);
    assert_eq!(v.len(), 100);
    assert_eq!(
        session.sign(&Mechanism::Sha256Hmac, key, MESSAGE).unwrap(),
        ring_hmac(&v)
    );
    let slot = session.get_session_info().unwrap().slot_id();
    for mech in [
        MechanismType::SHA256_KEY_GEN,
        MechanismType::GENERIC_SECRET_KEY_GEN,
    ] {
        let info = m.p11.get_mechanism_info(slot, mech).unwrap();
        assert!(info.generate(), "{mech}");
        assert_eq!((info.min_key_size(), info.max_key_size()), (1, 512));
    }
}

/// C_DigestKey digests a readable key's value; a sensitive key is
/// CKR_KEY_INDIGESTIBLE.
fn digest_key(which: Which) {
    let m = load(which);
    let session = user_session(&m, "digest-key");
    let v: Vec<u8> = (0u8..40).collect();
    let open = session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Token(false),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
            Attribute::Value(v.clone()),
        ])
        .unwrap();
    session.digest_init(&Mechanism::Sha256).unwrap();
    session.digest_update(b"prefix").unwrap();
    session.digest_key(open).unwrap();
    let got = session.digest_final().unwrap();
    let mut both = b"prefix".to_vec();
    both.extend_from_slice(&v);
    assert_eq!(
        got,
        ring::digest::digest(&ring::digest::SHA256, &both)
            .as_ref()
            .to_vec()
    );
    let sealed = session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Token(false),
            Attribute::Sensitive(true),
            Attribute::Value(v),
        ])
        .unwrap();
    session.digest_init(&Mechanism::Sha256).unwrap();
    if which == Which::SoftHsm {
        // SoftHSM 2.6 digests a sensitive key's value.
        session.digest_key(sealed).unwrap();
        session.digest_final().unwrap();
        return;
    }
    assert_eq!(rv(session.digest_key(sealed)), RvError::KeyIndigestible);
    // Without C_DigestInit.
    assert_eq!(
        rv(session.digest_key(open)),
        RvError::OperationNotInitialized
    );
}

with_keys!(generated_any_length, imported_any_length, digest_key);
ours_only_embedded!(hmac_key_generators);
