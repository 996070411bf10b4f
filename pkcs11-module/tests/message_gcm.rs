//! PKCS#11 3.0 message-based AES-GCM through the cryptoki crate, on the
//! embedded and the daemon backend (SoftHSM 2.6 has no message-based
//! functions): one-shot messages against the known answer cryptoki's own
//! tests use (GCM test case with AAD) and against single-part CKM_AES_GCM,
//! several messages under one init, a message in parts (Begin/Next), a
//! random IV with fixed leading bits, a wrong tag, and C_SeedRandom
//! accepted.

mod common;

use common::{load, rv, user_session, Which};
use cryptoki::error::RvError;
use cryptoki::mechanism::aead::{GcmMessageParams, GcmParams, GeneratorFunction};
use cryptoki::mechanism::{Mechanism, MessageParam};
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

fn key(session: &Session) -> ObjectHandle {
    session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Value(vec![0; 16]),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
        ])
        .unwrap()
}

fn messages(which: Which) {
    let m = load(which);
    let session = user_session(&m, "message");
    let k = key(&session);
    let (mut iv, mut tag) = ([0u8; 12], [0u8; 12]);
    let aad = [0u8; 16];
    let plain = [0u8; 16];
    let param =
        GcmMessageParams::new(&mut iv, 96.into(), GeneratorFunction::NoGenerate, &mut tag).unwrap();
    session
        .message_encrypt_init(&Mechanism::AesGcmMessage(param), k)
        .unwrap();
    let sealed = session
        .encrypt_message(&MessageParam::AesGcmMessage(param), &aad, &plain)
        .unwrap();
    assert_eq!(
        sealed,
        [
            0x03, 0x88, 0xda, 0xce, 0x60, 0xb6, 0xa3, 0x92, 0xf3, 0x28, 0xc2, 0xb9, 0x71, 0xb2,
            0xfe, 0x78
        ]
    );
    assert_eq!(
        tag,
        [0xd2, 0x4e, 0x50, 0x3a, 0x1b, 0xb0, 0x37, 0x07, 0x1c, 0x71, 0xb3, 0x5d]
    );
    // A second message under the same init, and the same through
    // single-part CKM_AES_GCM: ciphertext || tag.
    let (mut iv2, mut tag2) = ([9u8; 12], [0u8; 16]);
    let data = b"a second message, longer than a block".to_vec();
    let p2 = GcmMessageParams::new(&mut iv2, 0.into(), GeneratorFunction::NoGenerate, &mut tag2)
        .unwrap();
    let sealed2 = session
        .encrypt_message(&MessageParam::AesGcmMessage(p2), b"aad", &data)
        .unwrap();
    let mut iv_single = [9u8; 12];
    let single = session
        .encrypt(
            &Mechanism::AesGcm(GcmParams::new(&mut iv_single, b"aad", 128.into()).unwrap()),
            k,
            &data,
        )
        .unwrap();
    assert_eq!([sealed2.as_slice(), &tag2].concat(), single);
    // The same message in parts.
    let (mut iv3, mut tag3) = ([9u8; 12], [0u8; 16]);
    let p3 = GcmMessageParams::new(&mut iv3, 0.into(), GeneratorFunction::NoGenerate, &mut tag3)
        .unwrap();
    session
        .encrypt_message_begin(MessageParam::AesGcmMessage(p3), b"aad")
        .unwrap();
    let mut parts = session
        .encrypt_message_next(MessageParam::AesGcmMessage(p3), &data[..10], false)
        .unwrap();
    parts.extend(
        session
            .encrypt_message_next(MessageParam::AesGcmMessage(p3), &data[10..], true)
            .unwrap(),
    );
    assert_eq!(parts, sealed2);
    assert_eq!(tag3, tag2);
    // A random IV keeping its first 32 bits.
    let (mut iv4, mut tag4) = ([0xabu8; 12], [0u8; 16]);
    let p4 = GcmMessageParams::new(
        &mut iv4,
        32.into(),
        GeneratorFunction::GenerateRandom,
        &mut tag4,
    )
    .unwrap();
    let sealed4 = session
        .encrypt_message(&MessageParam::AesGcmMessage(p4), &[], &data)
        .unwrap();
    assert_eq!(iv4[..4], [0xab; 4]);
    assert_ne!(iv4[4..], [0xab; 8], "the rest was generated");
    session.message_encrypt_final().unwrap();

    // Decryption: each message opens with its IV and tag; a wrong tag
    // does not.
    let mut iv = [0u8; 12];
    let param =
        GcmMessageParams::new(&mut iv, 96.into(), GeneratorFunction::NoGenerate, &mut tag).unwrap();
    session
        .message_decrypt_init(&Mechanism::AesGcmMessage(param), k)
        .unwrap();
    let opened = session
        .decrypt_message(&MessageParam::AesGcmMessage(param), &aad, &sealed)
        .unwrap();
    assert_eq!(opened, plain);
    let p4 = GcmMessageParams::new(&mut iv4, 0.into(), GeneratorFunction::NoGenerate, &mut tag4)
        .unwrap();
    assert_eq!(
        session
            .decrypt_message(&MessageParam::AesGcmMessage(p4), &[], &sealed4)
            .unwrap(),
        data
    );
    let (mut iv3, mut tag3) = ([9u8; 12], tag2);
    let p3 = GcmMessageParams::new(&mut iv3, 0.into(), GeneratorFunction::NoGenerate, &mut tag3)
        .unwrap();
    session
        .decrypt_message_begin(MessageParam::AesGcmMessage(p3), b"aad")
        .unwrap();
    let mut opened = session
        .decrypt_message_next(MessageParam::AesGcmMessage(p3), &sealed2[..7], false)
        .unwrap();
    assert!(opened.is_empty(), "no plaintext before the tag is checked");
    opened.extend(
        session
            .decrypt_message_next(MessageParam::AesGcmMessage(p3), &sealed2[7..], true)
            .unwrap(),
    );
    assert_eq!(opened, data);
    tag2[0] ^= 1;
    let p2 = GcmMessageParams::new(&mut iv2, 0.into(), GeneratorFunction::NoGenerate, &mut tag2)
        .unwrap();
    assert_eq!(
        rv(session.decrypt_message(&MessageParam::AesGcmMessage(p2), b"aad", &sealed2)),
        RvError::EncryptedDataInvalid
    );
    session.message_decrypt_final().unwrap();
    assert_eq!(
        rv(session.message_decrypt_final()),
        RvError::OperationNotInitialized
    );
    // C_SeedRandom is accepted (and ignored).
    session.seed_random(b"some application entropy").unwrap();
}

ours_only_embedded!(messages);
