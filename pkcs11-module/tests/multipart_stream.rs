//! Multi-part AES-ECB/CBC/CBC-PAD and DES3-CBC/CBC-PAD through the
//! cryptoki crate: each C_EncryptUpdate / C_DecryptUpdate returns every
//! complete block at once (CBC-PAD decryption holds back the last one for
//! C_DecryptFinal), and the parts put together equal the single-part
//! result. SoftHSM2, which streams these modes too, is the control.

mod common;

use common::{load, user_session, Which};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

fn key(session: &Session, kind: KeyType, len: usize) -> ObjectHandle {
    session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(kind),
            Attribute::Token(false),
            Attribute::Value((0..len as u8).map(|i| i.wrapping_mul(29)).collect()),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
        ])
        .unwrap()
}

/// Encrypts `data` in parts of the given sizes; returns each update's
/// output length and the whole ciphertext.
fn parts(
    session: &Session,
    mech: &Mechanism,
    key: ObjectHandle,
    data: &[u8],
    sizes: &[usize],
    encrypt: bool,
) -> (Vec<usize>, Vec<u8>) {
    if encrypt {
        session.encrypt_init(mech, key).unwrap();
    } else {
        session.decrypt_init(mech, key).unwrap();
    }
    let (mut lens, mut out, mut at) = (Vec::new(), Vec::new(), 0);
    for &n in sizes {
        let part = &data[at..at + n];
        at += n;
        let o = if encrypt {
            session.encrypt_update(part).unwrap()
        } else {
            session.decrypt_update(part).unwrap()
        };
        lens.push(o.len());
        out.extend(o);
    }
    assert_eq!(at, data.len());
    let last = if encrypt {
        session.encrypt_final().unwrap()
    } else {
        session.decrypt_final().unwrap()
    };
    lens.push(last.len());
    out.extend(last);
    (lens, out)
}

fn blocks_come_back_at_once(which: Which) {
    let m = load(which);
    let session = user_session(&m, "stream");
    let aes = key(&session, KeyType::AES, 16);
    let des3 = key(&session, KeyType::DES3, 24);
    let data: Vec<u8> = (0..100u8).collect();
    let sizes = [5, 20, 11, 40, 24];
    let iv16 = [7u8; 16];
    let iv8 = [7u8; 8];
    // (mechanism, key, block, data length, padded)
    let cases = [
        (Mechanism::AesEcb, aes, 16, 96, false),
        (Mechanism::AesCbc(iv16), aes, 16, 96, false),
        (Mechanism::AesCbcPad(iv16), aes, 16, 100, true),
        (Mechanism::Des3Cbc(iv8), des3, 8, 96, false),
        (Mechanism::Des3CbcPad(iv8), des3, 8, 100, true),
    ];
    for (mech, k, block, len, padded) in cases {
        let data = &data[..len];
        let mut cut = Vec::new();
        let mut left = len;
        for s in sizes {
            let n = s.min(left);
            left -= n;
            cut.push(n);
        }
        cut.push(left);
        let sizes: Vec<usize> = cut.into_iter().filter(|n| *n > 0).collect();
        let whole = session.encrypt(&mech, k, data).unwrap();
        let (lens, sealed) = parts(&session, &mech, k, data, &sizes, true);
        assert_eq!(sealed, whole, "{mech:?}");
        // Every update gave all the complete blocks it could.
        let mut fed = 0;
        let mut given = 0;
        for (i, n) in sizes.iter().enumerate() {
            fed += n;
            given += lens[i];
            assert_eq!(given, fed / block * block, "{mech:?} encrypt part {i}");
        }
        let (lens, opened) = parts(&session, &mech, k, &sealed, &[sealed.len() - 9, 9], false);
        assert_eq!(opened, data, "{mech:?}");
        let first = (sealed.len() - 9) / block * block;
        let held = if padded && first == sealed.len() - 9 {
            block
        } else {
            0
        };
        assert_eq!(lens[0], first - held, "{mech:?} decrypt part 0");
    }
}

with_keys!(blocks_come_back_at_once);
