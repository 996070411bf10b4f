//! Triple DES through the cryptoki crate: the NIST SP 800-67 TDEA example
//! with CKM_DES3_ECB, CBC against OpenSSL's des-ede3-cbc, CBC-PAD round
//! trips and multi-part, CKM_DES3_KEY_GEN, C_GetMechanismInfo, and the
//! refusals (token keys, wrong lengths, an AES key). SoftHSM2 is the
//! control where it answers the same.

mod common;

use std::process::Command;

use common::{load, rv, user_session, Which};
use cryptoki::error::RvError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const KEY: &str = "0123456789ABCDEF 23456789ABCDEF01 456789ABCDEF0123";

fn des3_key(session: &Session, value: Vec<u8>) -> cryptoki::error::Result<ObjectHandle> {
    session.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::DES3),
        Attribute::Token(false),
        Attribute::Value(value),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
    ])
}

fn sp800_67_and_openssl(which: Which) {
    let m = load(which);
    let session = user_session(&m, "des3");
    let key = des3_key(&session, hex(KEY)).unwrap();
    let pt = b"The qufck brown fox jump";
    let ct = hex("A826FD8CE53B855F CCE21C8112256FE6 68D5C05DD9B6B900");
    assert_eq!(session.encrypt(&Mechanism::Des3Ecb, key, pt).unwrap(), ct);
    assert_eq!(session.decrypt(&Mechanism::Des3Ecb, key, &ct).unwrap(), pt);

    // CBC and CBC-PAD against OpenSSL, on data of several lengths.
    let iv = hex("F69F2445DF4F9B17");
    let iv8: [u8; 8] = iv.clone().try_into().unwrap();
    let dir = m.dir.path();
    for len in [8usize, 24, 29, 1000] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        std::fs::write(dir.join("pt"), &data).unwrap();
        let openssl = |pad: bool| {
            let mut cmd = Command::new("openssl");
            cmd.args(["enc", "-des-ede3-cbc", "-K"])
                .arg(KEY.replace(' ', ""))
                .args(["-iv", "F69F2445DF4F9B17", "-in"])
                .arg(dir.join("pt"));
            if !pad {
                cmd.arg("-nopad");
            }
            let out = cmd.output().unwrap();
            assert!(out.status.success(), "{out:?}");
            out.stdout
        };
        let padded = session
            .encrypt(&Mechanism::Des3CbcPad(iv8), key, &data)
            .unwrap();
        assert_eq!(padded, openssl(true), "{len}");
        assert_eq!(
            session
                .decrypt(&Mechanism::Des3CbcPad(iv8), key, &padded)
                .unwrap(),
            data
        );
        if len % 8 == 0 {
            let c = session
                .encrypt(&Mechanism::Des3Cbc(iv8), key, &data)
                .unwrap();
            assert_eq!(c, openssl(false), "{len}");
            assert_eq!(
                session.decrypt(&Mechanism::Des3Cbc(iv8), key, &c).unwrap(),
                data
            );
        } else {
            assert_eq!(
                rv(session.encrypt(&Mechanism::Des3Cbc(iv8), key, &data)),
                RvError::DataLenRange
            );
        }
    }
}

fn key_generation_and_refusals(which: Which) {
    let m = load(which);
    let session = user_session(&m, "des3-gen");
    let key = session
        .generate_key(
            &Mechanism::Des3KeyGen,
            &[
                Attribute::Token(false),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ],
        )
        .unwrap();
    let attrs = session
        .get_attributes(
            key,
            &[
                AttributeType::KeyType,
                AttributeType::Value,
                AttributeType::Encrypt,
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::KeyGenMechanism,
            ],
        )
        .unwrap();
    assert!(attrs.contains(&Attribute::KeyType(KeyType::DES3)));
    assert!(attrs.contains(&Attribute::Encrypt(true)));
    assert!(
        attrs
            .iter()
            .any(|a| matches!(a, Attribute::Value(v) if v.len() == 24)),
        "{attrs:?}"
    );
    let data = [5u8; 16];
    let c = session.encrypt(&Mechanism::Des3Ecb, key, &data).unwrap();
    assert_eq!(session.decrypt(&Mechanism::Des3Ecb, key, &c).unwrap(), data);
    // A 16-byte value is not a three-key DES3 key (SoftHSM 2.6 takes it).
    if which != Which::SoftHsm {
        assert_eq!(
            rv(des3_key(&session, vec![1; 16])),
            RvError::AttributeValueInvalid
        );
    }
    // A DES3 mechanism with an AES key.
    let aes = session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Value(vec![1; 24]),
            Attribute::Encrypt(true),
        ])
        .unwrap();
    assert_eq!(
        rv(session.encrypt(&Mechanism::Des3Ecb, aes, &data)),
        RvError::KeyTypeInconsistent
    );
}

/// Ours: DES3 keys are session objects only; the mechanisms are listed
/// with the truth.
fn session_only_and_listed(which: Which) {
    let m = load(which);
    let slot = m.token("des3-info");
    for t in [
        MechanismType::DES3_KEY_GEN,
        MechanismType::DES3_ECB,
        MechanismType::DES3_CBC,
        MechanismType::DES3_CBC_PAD,
    ] {
        let info = m.p11.get_mechanism_info(slot, t).unwrap();
        assert_eq!((info.min_key_size(), info.max_key_size()), (24, 24), "{t}");
        if t == MechanismType::DES3_KEY_GEN {
            assert!(info.generate() && !info.encrypt());
        } else {
            assert!(info.encrypt() && info.decrypt() && !info.sign(), "{t}");
        }
    }
    let session = user_session(&m, "des3-token");
    assert_eq!(
        rv(session.generate_key(&Mechanism::Des3KeyGen, &[Attribute::Token(true)])),
        RvError::TemplateInconsistent
    );
}

with_keys!(sp800_67_and_openssl, key_generation_and_refusals);
ours_only_embedded!(session_only_and_listed);
