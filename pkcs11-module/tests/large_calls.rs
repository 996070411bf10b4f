//! PKCS#11 data calls larger than one gRPC message (issue 12): with
//! tinfoild's default settings (64 KiB messages), a 4 MiB C_Encrypt /
//! C_Decrypt (AES-GCM and AES-CBC-PAD, single and multi-part), a 4 MiB
//! C_Sign / C_Verify (HMAC-SHA256, RSA PKCS#1 SHA-256) and a 1 MiB
//! C_GenerateRandom work on the daemon backend, whose module sends such
//! calls in parts (tinfoild's Chunked RPC). The same cases on the embedded
//! backend and on SoftHSM2 prove the test.

mod common;

use common::{load, user_session, Which};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::types::Ulong;

const BIG: usize = 4 << 20;

/// 4 MiB that differ from block to block (not all zeros).
fn big_data() -> Vec<u8> {
    (0..BIG as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn aes_key(session: &Session) -> ObjectHandle {
    session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(32.into()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Label(b"big-aes".to_vec()),
            ],
        )
        .unwrap()
}

fn encrypt_and_decrypt_four_mebibytes(which: Which) {
    let m = load(which);
    let session = user_session(&m, "large");
    let key = aes_key(&session);
    let data = big_data();

    let mut iv = [7u8; 12];
    fn gcm(iv: &mut [u8; 12]) -> Mechanism<'_> {
        Mechanism::AesGcm(GcmParams::new(iv, b"header", Ulong::from(128)).unwrap())
    }
    let sealed = session.encrypt(&gcm(&mut iv), key, &data).unwrap();
    assert_eq!(sealed.len(), BIG + 16);
    let opened = session.decrypt(&gcm(&mut iv), key, &sealed).unwrap();
    assert!(opened == data, "GCM round trip");
    let mut tampered = sealed.clone();
    tampered[BIG / 2] ^= 1;
    assert!(session.decrypt(&gcm(&mut iv), key, &tampered).is_err());

    let cbc_iv = [3u8; 16];
    let sealed = session
        .encrypt(&Mechanism::AesCbcPad(cbc_iv), key, &data)
        .unwrap();
    assert_eq!(sealed.len(), BIG + 16);
    let opened = session
        .decrypt(&Mechanism::AesCbcPad(cbc_iv), key, &sealed)
        .unwrap();
    assert!(opened == data, "CBC-PAD round trip");

    // Multi-part, in two 2 MiB parts (each still larger than a message).
    session
        .encrypt_init(&Mechanism::AesCbcPad(cbc_iv), key)
        .unwrap();
    let mut parts = session.encrypt_update(&data[..BIG / 2]).unwrap();
    parts.extend(session.encrypt_update(&data[BIG / 2..]).unwrap());
    parts.extend(session.encrypt_final().unwrap());
    assert!(parts == sealed, "multi-part equals single-part");
    session
        .decrypt_init(&Mechanism::AesCbcPad(cbc_iv), key)
        .unwrap();
    let mut plain = session.decrypt_update(&sealed[..BIG / 2 + 5]).unwrap();
    plain.extend(session.decrypt_update(&sealed[BIG / 2 + 5..]).unwrap());
    plain.extend(session.decrypt_final().unwrap());
    assert!(plain == data, "multi-part decryption");
}

fn sign_and_verify_four_mebibytes(which: Which) {
    let m = load(which);
    let session = user_session(&m, "large-sign");
    let data = big_data();
    let hmac = session
        .generate_key(
            &Mechanism::GenericSecretKeyGen,
            &[
                Attribute::ValueLen(32.into()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sign(true),
                Attribute::Verify(true),
            ],
        )
        .unwrap();
    let mac = session.sign(&Mechanism::Sha256Hmac, hmac, &data).unwrap();
    assert_eq!(mac.len(), 32);
    session
        .verify(&Mechanism::Sha256Hmac, hmac, &data, &mac)
        .unwrap();
    let mut other = data.clone();
    other[BIG - 1] ^= 1;
    assert!(session
        .verify(&Mechanism::Sha256Hmac, hmac, &other, &mac)
        .is_err());

    let (public, private) = session
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::Verify(true),
                Attribute::ModulusBits(2048.into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Sign(true),
            ],
        )
        .unwrap();
    let signature = session
        .sign(&Mechanism::Sha256RsaPkcs, private, &data)
        .unwrap();
    session
        .verify(&Mechanism::Sha256RsaPkcs, public, &data, &signature)
        .unwrap();
    assert!(session
        .verify(&Mechanism::Sha256RsaPkcs, public, &other, &signature)
        .is_err());

    // A large answer: 1 MiB of random bytes.
    let mut random = vec![0u8; 1 << 20];
    session.generate_random_slice(&mut random).unwrap();
    assert!(random.iter().any(|&b| b != 0));
}

with_keys!(
    encrypt_and_decrypt_four_mebibytes,
    sign_and_verify_four_mebibytes
);
