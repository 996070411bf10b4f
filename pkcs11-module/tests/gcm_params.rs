//! CKM_AES_GCM parameters beyond a 12-byte IV and a 128-bit tag, against
//! our module (embedded and daemon backends) and SoftHSM2 as the control:
//! IVs of 1 to 256 bytes (J0 through GHASH), tags of 96 to 128 bits in
//! 8-bit steps, checked with published known answers (McGrew & Viega test
//! cases 5 and 6) that SoftHSM must give too.

mod common;

use common::{rv, user_session};

use common::{load, Which};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::types::Ulong;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const KEY: &str = "feffe9928665731c6d6a8f9467308308";
const PT: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
const AAD: &str = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
/// Test case 5: a 64-bit IV.
const IV5: &str = "cafebabefacedbad";
const CT5: &str = "61353b4c2806934a777ff51fa22a4755699b2a714fcdc6f83766e5f97b6c742373806900e49f24b22b097544d4896b424989b5e1ebac0f07c23f4598";
const TAG5: &str = "3612d2e79e3b0785561be14aaca2fccb";
/// Test case 6: a 480-bit IV.
const IV6: &str = "9313225df88406e555909c5aff5269aa6a7a9538534f7da1e4c303d2a318a728c3c0c95156809539fcf0e2429a6b525416aedbf5a0de6a57a637b39b";
const CT6: &str = "8ce24998625615b603a033aca13fb894be9112a5c3a211a8ba262a3cca7e2ca701e4a9a4fba43c90ccdcb281d48c7c6fd62875d2aca417034c34aee5";
const TAG6: &str = "619cc5aefffe0bfa462af43c1699d050";

/// A session AES key with a known value.
fn known_key(session: &Session) -> ObjectHandle {
    session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(hex(KEY)),
            Attribute::Token(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
        ])
        .unwrap()
}

fn seal(
    session: &Session,
    key: ObjectHandle,
    iv: &[u8],
    aad: &[u8],
    tag_bits: u64,
    data: &[u8],
) -> Result<Vec<u8>, Error> {
    let mut iv = iv.to_vec();
    let params = GcmParams::new(&mut iv, aad, Ulong::from(tag_bits)).unwrap();
    session.encrypt(&Mechanism::AesGcm(params), key, data)
}

fn open(
    session: &Session,
    key: ObjectHandle,
    iv: &[u8],
    aad: &[u8],
    tag_bits: u64,
    data: &[u8],
) -> Result<Vec<u8>, Error> {
    let mut iv = iv.to_vec();
    let params = GcmParams::new(&mut iv, aad, Ulong::from(tag_bits)).unwrap();
    session.decrypt(&Mechanism::AesGcm(params), key, data)
}

fn known_answers_for_short_and_long_ivs_and_truncated_tags(which: Which) {
    let m = load(which);
    let session = user_session(&m, "gcm-kat");
    let key = known_key(&session);
    for (iv, ct, tag) in [(IV5, CT5, TAG5), (IV6, CT6, TAG6)] {
        for tag_bits in [96u64, 104, 112, 120, 128] {
            let tag_len = tag_bits as usize / 8;
            let mut expected = hex(ct);
            expected.extend_from_slice(&hex(tag)[..tag_len]);
            let sealed = seal(&session, key, &hex(iv), &hex(AAD), tag_bits, &hex(PT)).unwrap();
            assert_eq!(
                sealed,
                expected,
                "IV {} bytes, {tag_bits}-bit tag",
                iv.len() / 2
            );
            assert_eq!(
                open(&session, key, &hex(iv), &hex(AAD), tag_bits, &sealed).unwrap(),
                hex(PT)
            );
            let mut bad = sealed.clone();
            *bad.last_mut().unwrap() ^= 1;
            let refused = open(&session, key, &hex(iv), &hex(AAD), tag_bits, &bad);
            if which == Which::SoftHsm {
                assert!(refused.is_err(), "SoftHSM accepted a bad tag");
            } else {
                assert_eq!(rv(refused), RvError::EncryptedDataInvalid);
            }
        }
    }
}

fn every_iv_length_round_trips_and_the_iv_matters(which: Which) {
    let m = load(which);
    let session = user_session(&m, "gcm-ivs");
    let key = known_key(&session);
    let data = b"forty-two bytes of plaintext for GCM runs";
    for iv_len in [1usize, 2, 8, 11, 12, 13, 16, 60, 128, 255, 256] {
        let iv: Vec<u8> = (0..iv_len).map(|i| i as u8 ^ 0x5a).collect();
        let sealed = seal(&session, key, &iv, b"aad", 128, data).unwrap();
        assert_eq!(sealed.len(), data.len() + 16);
        assert_eq!(
            open(&session, key, &iv, b"aad", 128, &sealed).unwrap(),
            data
        );
        let mut other = iv.clone();
        other[0] ^= 1;
        assert!(
            open(&session, key, &other, b"aad", 128, &sealed).is_err(),
            "another IV of {iv_len} bytes opened it"
        );
    }
}

fn tags_outside_96_to_128_bits_and_ivs_over_256_bytes_are_refused(which: Which) {
    let m = load(which);
    let session = user_session(&m, "gcm-refused");
    let key = known_key(&session);
    let iv = [1u8; 12];
    // Over 128 bits, or not a whole number of bytes: nobody takes it.
    for tag_bits in [136u64, 100] {
        let refused = seal(&session, key, &iv, b"", tag_bits, b"x");
        if which == Which::SoftHsm {
            assert!(refused.is_err(), "SoftHSM took a {tag_bits}-bit tag");
        } else {
            assert_eq!(rv(refused), RvError::MechanismParamInvalid, "{tag_bits}");
        }
    }
    // Short tags SoftHSM takes (the spec allows 0 to 128 bits) are
    // forgeable: ours refuses them.
    if which != Which::SoftHsm {
        for tag_bits in [0u64, 32, 64, 88] {
            assert_eq!(
                rv(seal(&session, key, &iv, b"", tag_bits, b"x")),
                RvError::MechanismParamInvalid,
                "{tag_bits}"
            );
        }
        assert_eq!(
            rv(seal(&session, key, &[0u8; 257], b"", 128, b"x")),
            RvError::MechanismParamInvalid
        );
    }
    // After the refusals the session works as before.
    let sealed = seal(&session, key, &iv, b"", 96, b"still fine").unwrap();
    assert_eq!(sealed.len(), 10 + 12);
    assert_eq!(
        open(&session, key, &iv, b"", 96, &sealed).unwrap(),
        b"still fine"
    );
}

with_keys!(
    known_answers_for_short_and_long_ivs_and_truncated_tags,
    every_iv_length_round_trips_and_the_iv_matters,
    tags_outside_96_to_128_bits_and_ivs_over_256_bytes_are_refused,
);
