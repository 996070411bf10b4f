//! C_DeriveKey with CKM_ECDH1_DERIVE (KDF NULL and SHA-256 X9.63) between
//! two token keys, against an OpenSSL-made peer, and CKM_AES_CMAC with the
//! NIST SP 800-38B vectors; SoftHSM2 is the control where it has the
//! mechanism. Both backends: the daemon carries them as tinfoil.v1 RPCs
//! (Cmac, CmacVerify, EcdhDerive).

mod common;

use std::process::Command;

use common::{load, rv, user_session, Which};
use cryptoki::error::RvError;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// The DER SubjectPublicKeyInfo header of a P-256 key before its point.
const P256_SPKI: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn ec_pair(session: &Session, derive: bool) -> (ObjectHandle, ObjectHandle) {
    session
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::Token(true), Attribute::EcParams(P256.to_vec())],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Derive(derive),
            ],
        )
        .unwrap()
}

/// The raw uncompressed point of an EC public key object.
fn point(session: &Session, public: ObjectHandle) -> Vec<u8> {
    match session
        .get_attributes(public, &[AttributeType::EcPoint])
        .unwrap()
        .pop()
    {
        // A DER OCTET STRING around the point.
        Some(Attribute::EcPoint(p)) => p[2..].to_vec(),
        other => panic!("{other:?}"),
    }
}

fn derive(
    session: &Session,
    base: ObjectHandle,
    peer: &[u8],
    kdf: EcKdf,
    len: u64,
) -> cryptoki::error::Result<ObjectHandle> {
    session.derive_key(
        &Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(kdf, peer)),
        base,
        &[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::ValueLen(len.into()),
            Attribute::Token(false),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
        ],
    )
}

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

fn ecdh_between_two_token_keys_and_with_openssl(which: Which) {
    let m = load(which);
    let session = user_session(&m, "derive");
    let (a_pub, a) = ec_pair(&session, true);
    let (b_pub, b) = ec_pair(&session, true);
    let (pa, pb) = (point(&session, a_pub), point(&session, b_pub));
    let ab = derive(&session, a, &pb, EcKdf::null(), 32).unwrap();
    let ba = derive(&session, b, &pa, EcKdf::null(), 32).unwrap();
    let z = value(&session, ab);
    assert_eq!(z, value(&session, ba));
    // SHA-256 X9.63 KDF with shared data (SoftHSM 2.6 has only KDF
    // NULL): both sides agree, and it is SHA-256(Z || 00000001 || shared)
    // as OpenSSL computes it.
    let shared = b"tinfoil shared info";
    let dir = m.dir.path();
    if which != Which::SoftHsm {
        let k1 = derive(&session, a, &pb, EcKdf::sha256(shared), 16).unwrap();
        let k2 = derive(&session, b, &pa, EcKdf::sha256(shared), 16).unwrap();
        assert_eq!(value(&session, k1), value(&session, k2));
        let input = [z.as_slice(), &[0, 0, 0, 1], shared].concat();
        std::fs::write(dir.join("kdf.in"), &input).unwrap();
        let sha = Command::new("openssl")
            .args(["dgst", "-sha256", "-binary"])
            .arg(dir.join("kdf.in"))
            .output()
            .unwrap()
            .stdout;
        assert_eq!(value(&session, k1), sha[..16].to_vec());
    }

    // Against a peer key OpenSSL made.
    let peer_key = dir.join("peer.pem");
    let ok = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&peer_key)
        .status()
        .unwrap();
    assert!(ok.success());
    let peer_spki = Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&peer_key)
        .output()
        .unwrap()
        .stdout;
    let peer_point = &peer_spki[peer_spki.len() - 65..];
    let ours = derive(&session, a, peer_point, EcKdf::null(), 32).unwrap();
    let our_spki = [hex(P256_SPKI), pa.clone()].concat();
    std::fs::write(dir.join("ours.der"), our_spki).unwrap();
    let theirs = Command::new("openssl")
        .args(["pkeyutl", "-derive", "-inkey"])
        .arg(&peer_key)
        .args(["-peerform", "DER", "-peerkey"])
        .arg(dir.join("ours.der"))
        .output()
        .unwrap();
    assert!(theirs.status.success(), "{theirs:?}");
    assert_eq!(value(&session, ours), theirs.stdout);

    // A key made without CKA_DERIVE does not derive.
    let (_, no) = ec_pair(&session, false);
    assert_eq!(
        rv(derive(&session, no, &pb, EcKdf::null(), 32)),
        RvError::KeyFunctionNotPermitted
    );
}

/// Ours only: SoftHSM 2.6 answers other codes for these.
fn ecdh_refuses_bad_points_and_lengths(which: Which) {
    let m = load(which);
    let session = user_session(&m, "derive");
    let (_, a) = ec_pair(&session, true);
    let (b_pub, _) = ec_pair(&session, true);
    let mut bad = point(&session, b_pub);
    bad[40] ^= 1; // off the curve
    assert_eq!(
        rv(derive(&session, a, &bad, EcKdf::null(), 32)),
        RvError::MechanismParamInvalid
    );
    let good = point(&session, b_pub);
    assert_eq!(
        rv(derive(&session, a, &good, EcKdf::null(), 33)),
        RvError::MechanismParamInvalid,
        "KDF NULL gives at most the shared secret's 32 bytes"
    );
    let count = session.find_objects(&[]).unwrap().len();
    assert_eq!(count, 4, "refused derivations made nothing");
}

fn aes_key(session: &Session, value: Vec<u8>) -> ObjectHandle {
    session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Value(value),
            Attribute::Sign(true),
            Attribute::Verify(true),
        ])
        .unwrap()
}

fn aes_cmac_matches_sp800_38b(which: Which) {
    let m = load(which);
    let session = user_session(&m, "cmac");
    let msg = hex(
        "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
         30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710",
    );
    let cases = [
        (
            "2b7e151628aed2a6abf7158809cf4f3c",
            16,
            "070a16b46b4d4144f79bdd9dd04a287c",
        ),
        (
            "2b7e151628aed2a6abf7158809cf4f3c",
            64,
            "51f0bebf7e3b9d92fc49741779363cfe",
        ),
        (
            "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
            40,
            "8a1de5be2eb31aad089a82e6ee908b0e",
        ),
        (
            "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
            64,
            "e1992190549f6ed5696a2c056c315410",
        ),
    ];
    for (k, len, tag) in cases {
        let key = aes_key(&session, hex(k));
        let mac = session.sign(&Mechanism::AesCMac, key, &msg[..len]).unwrap();
        assert_eq!(mac, hex(tag), "{which:?} {len}");
        session
            .verify(&Mechanism::AesCMac, key, &msg[..len], &mac)
            .unwrap();
        let mut bad = mac.clone();
        bad[15] ^= 1;
        assert_eq!(
            rv(session.verify(&Mechanism::AesCMac, key, &msg[..len], &bad)),
            RvError::SignatureInvalid
        );
    }
    // A key not made to sign does not.
    let key = session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Value(vec![1u8; 16]),
            Attribute::Sign(false),
        ])
        .unwrap();
    assert_eq!(
        rv(session.sign(&Mechanism::AesCMac, key, b"x")),
        RvError::KeyFunctionNotPermitted
    );
}

/// Both are listed with their flags (CKM_AES_CMAC_GENERAL too; the
/// cryptoki crate cannot call it).
fn cmac_and_ecdh_are_listed(which: Which) {
    let m = load(which);
    let session = user_session(&m, "cmac");
    let listed = m
        .p11
        .get_mechanism_list(session.get_session_info().unwrap().slot_id())
        .unwrap();
    for t in [MechanismType::AES_CMAC, MechanismType::ECDH1_DERIVE] {
        assert!(listed.contains(&t), "{t:?} listed");
    }
    let slot = session.get_session_info().unwrap().slot_id();
    let info = m
        .p11
        .get_mechanism_info(slot, MechanismType::ECDH1_DERIVE)
        .unwrap();
    assert!(info.derive() && !info.sign());
    // 255: X25519 (CKK_EC_MONTGOMERY) derives too.
    assert_eq!((info.min_key_size(), info.max_key_size()), (255, 521));
}

with_keys!(
    ecdh_between_two_token_keys_and_with_openssl,
    aes_cmac_matches_sp800_38b
);
ours_only_embedded!(
    ecdh_refuses_bad_points_and_lengths,
    cmac_and_ecdh_are_listed
);
