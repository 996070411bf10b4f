//! X25519 (CKK_EC_MONTGOMERY): key pairs made with
//! CKM_EC_MONTGOMERY_KEY_PAIR_GEN (token and session), private keys
//! imported with C_CreateObject, and CKM_ECDH1_DERIVE with them, checked
//! against OpenSSL (`openssl pkeyutl -derive`) and between two token keys,
//! on both backends. SoftHSM 2.6 has no CKK_EC_MONTGOMERY, so there is no
//! control.

mod common;

use std::path::Path;

use common::openssl::openssl;
use common::{load, rv, user_session, Which};
use cryptoki::error::RvError;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

/// DER of id-X25519 (1.3.101.110), CKA_EC_PARAMS.
const X25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x6e];

fn montgomery_gen() -> Mechanism<'static> {
    Mechanism::EccMontgomeryKeyPairGen
}

fn pair(session: &Session, token: bool) -> (ObjectHandle, ObjectHandle) {
    session
        .generate_key_pair(
            &montgomery_gen(),
            &[
                Attribute::Token(token),
                Attribute::EcParams(X25519.to_vec()),
            ],
            &[
                Attribute::Token(token),
                Attribute::Private(true),
                Attribute::Derive(true),
            ],
        )
        .unwrap()
}

/// The 32 bytes of an X25519 public key object (CKA_EC_POINT is a DER
/// OCTET STRING around them).
fn public_bytes(session: &Session, public: ObjectHandle) -> Vec<u8> {
    match session
        .get_attributes(public, &[AttributeType::EcPoint])
        .unwrap()
        .pop()
    {
        Some(Attribute::EcPoint(p)) => {
            assert_eq!(&p[..2], &[0x04, 0x20]);
            p[2..].to_vec()
        }
        other => panic!("{other:?}"),
    }
}

/// Z as a readable generic secret of 32 bytes (KDF NULL).
fn derive_z(
    session: &Session,
    base: ObjectHandle,
    peer: &[u8],
) -> cryptoki::error::Result<Vec<u8>> {
    let key = session.derive_key(
        &Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), peer)),
        base,
        &[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::ValueLen(32.into()),
            Attribute::Token(false),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
        ],
    )?;
    match session.get_attributes(key, &[AttributeType::Value])?.pop() {
        Some(Attribute::Value(v)) => Ok(v),
        other => panic!("{other:?}"),
    }
}

/// An OpenSSL X25519 key in `dir`: (private PEM path, raw public, raw
/// private).
fn openssl_key(dir: &Path, name: &str) -> (String, Vec<u8>, Vec<u8>) {
    let pem = dir.join(format!("{name}.pem"));
    let pem = pem.to_str().unwrap().to_string();
    openssl(&["genpkey", "-algorithm", "X25519", "-out", &pem]);
    let public = openssl(&["pkey", "-in", &pem, "-pubout", "-outform", "DER"]);
    let private = openssl(&["pkey", "-in", &pem, "-outform", "DER"]);
    (
        pem,
        public[public.len() - 32..].to_vec(),
        private[private.len() - 32..].to_vec(),
    )
}

/// OpenSSL's Z between its private key and a raw X25519 public key.
fn openssl_z(dir: &Path, private_pem: &str, peer_public: &[u8]) -> Vec<u8> {
    let mut spki = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00,
    ];
    spki.extend_from_slice(peer_public);
    let peer = dir.join("peer.der");
    std::fs::write(&peer, spki).unwrap();
    openssl(&[
        "pkeyutl",
        "-derive",
        "-inkey",
        private_pem,
        "-peerkey",
        peer.to_str().unwrap(),
        "-peerform",
        "DER",
    ])
}

fn pairs_agree_with_each_other_and_openssl(which: Which) {
    let m = load(which);
    let session = user_session(&m, "x25519");
    let dir = tempfile::tempdir().unwrap();
    let (a_pub, a_priv) = pair(&session, true);
    let (b_pub, b_priv) = pair(&session, false);
    let (a_raw, b_raw) = (public_bytes(&session, a_pub), public_bytes(&session, b_pub));
    let ab = derive_z(&session, a_priv, &b_raw).unwrap();
    let ba = derive_z(&session, b_priv, &a_raw).unwrap();
    assert_eq!(ab, ba);
    assert_ne!(ab, vec![0u8; 32]);
    // The peer's key also as a DER OCTET STRING.
    let mut wrapped = vec![0x04, 0x20];
    wrapped.extend_from_slice(&b_raw);
    assert_eq!(derive_z(&session, a_priv, &wrapped).unwrap(), ab);
    // Against OpenSSL, both ways.
    let (o_pem, o_pub, _) = openssl_key(dir.path(), "peer");
    let ours = derive_z(&session, a_priv, &o_pub).unwrap();
    assert_eq!(ours, openssl_z(dir.path(), &o_pem, &a_raw));
    // The public half carries its SubjectPublicKeyInfo.
    let spki = match session
        .get_attributes(a_pub, &[AttributeType::PublicKeyInfo])
        .unwrap()
        .pop()
    {
        Some(Attribute::PublicKeyInfo(v)) => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(&spki[12..], &a_raw[..]);
    let attrs = session
        .get_attributes(
            a_priv,
            &[
                AttributeType::KeyType,
                AttributeType::Sign,
                AttributeType::Derive,
            ],
        )
        .unwrap();
    assert_eq!(
        attrs,
        vec![
            Attribute::KeyType(KeyType::EC_MONTGOMERY),
            Attribute::Sign(false),
            Attribute::Derive(true)
        ]
    );
}

fn imported_private_key_agrees(which: Which) {
    let m = load(which);
    let session = user_session(&m, "x25519-import");
    let dir = tempfile::tempdir().unwrap();
    let (_, mine_pub, mine_priv) = openssl_key(dir.path(), "mine");
    let (peer_pem, peer_pub, _) = openssl_key(dir.path(), "peer");
    for token in [true, false] {
        let key = session
            .create_object(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::EC_MONTGOMERY),
                Attribute::Token(token),
                Attribute::Private(true),
                Attribute::Derive(true),
                Attribute::EcParams(X25519.to_vec()),
                Attribute::Value(mine_priv.clone()),
            ])
            .unwrap();
        let ours = derive_z(&session, key, &peer_pub).unwrap();
        assert_eq!(ours, openssl_z(dir.path(), &peer_pem, &mine_pub), "{token}");
    }
    // Its PKCS#8, wrapped by `openssl enc -id-aes256-wrap-pad`, unwraps.
    let kek_value: Vec<u8> = (0u8..32).collect();
    let kek = session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Unwrap(true),
            Attribute::Value(kek_value.clone()),
        ])
        .unwrap();
    let der = dir.path().join("mine.p8");
    openssl(&[
        "pkey",
        "-in",
        dir.path().join("mine.pem").to_str().unwrap(),
        "-outform",
        "DER",
        "-out",
        der.to_str().unwrap(),
    ]);
    let hex: String = kek_value.iter().map(|b| format!("{b:02x}")).collect();
    let wrapped = openssl(&[
        "enc",
        "-id-aes256-wrap-pad",
        "-K",
        &hex,
        "-iv",
        "A65959A6",
        "-in",
        der.to_str().unwrap(),
    ]);
    let unwrapped = session
        .unwrap_key(
            &Mechanism::AesKeyWrapPad,
            kek,
            &wrapped,
            &[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::EC_MONTGOMERY),
                Attribute::Token(true),
                Attribute::Derive(true),
            ],
        )
        .unwrap();
    assert_eq!(
        derive_z(&session, unwrapped, &peer_pub).unwrap(),
        openssl_z(dir.path(), &peer_pem, &mine_pub)
    );
    // An X25519 key that asks to sign, or of the wrong size, is refused.
    let signing = session.create_object(&[
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::EC_MONTGOMERY),
        Attribute::Token(false),
        Attribute::Sign(true),
        Attribute::EcParams(X25519.to_vec()),
        Attribute::Value(mine_priv.clone()),
    ]);
    assert_eq!(rv(signing), RvError::TemplateInconsistent);
    let short = session.create_object(&[
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::EC_MONTGOMERY),
        Attribute::Token(false),
        Attribute::EcParams(X25519.to_vec()),
        Attribute::Value(mine_priv[..31].to_vec()),
    ]);
    assert_eq!(rv(short), RvError::AttributeValueInvalid);
}

fn refusals_and_mechanism_info(which: Which) {
    let m = load(which);
    let session = user_session(&m, "x25519-no");
    // X25519 pairs do not sign (CKA_SIGN is false on their private half).
    let signing = session.generate_key_pair(
        &montgomery_gen(),
        &[Attribute::Token(false), Attribute::Verify(true)],
        &[Attribute::Token(false), Attribute::Sign(true)],
    );
    assert_eq!(rv(signing), RvError::TemplateInconsistent);
    let (_, private) = pair(&session, false);
    assert_eq!(
        rv(session.sign(
            &Mechanism::Eddsa(cryptoki::mechanism::eddsa::EddsaParams::new(
                cryptoki::mechanism::eddsa::EddsaSignatureScheme::Pure
            )),
            private,
            b"x"
        )),
        RvError::KeyFunctionNotPermitted
    );
    // A peer key of the wrong length.
    assert_eq!(
        rv(derive_z(&session, private, &[9u8; 31])),
        RvError::MechanismParamInvalid
    );
    // The other curve's name is not X25519's.
    let bad = session.generate_key_pair(
        &montgomery_gen(),
        &[
            Attribute::Token(false),
            Attribute::EcParams(vec![0x06, 0x03, 0x2b, 0x65, 0x6f]),
        ],
        &[Attribute::Token(false)],
    );
    assert_eq!(rv(bad), RvError::CurveNotSupported);
    let slot = session.get_session_info().unwrap().slot_id();
    let info = m
        .p11
        .get_mechanism_info(slot, MechanismType::ECC_MONTGOMERY_KEY_PAIR_GEN)
        .unwrap();
    assert!(info.generate_key_pair());
    assert_eq!((info.min_key_size(), info.max_key_size()), (255, 255));
}

ours_only_embedded!(
    pairs_agree_with_each_other_and_openssl,
    imported_private_key_agrees,
    refusals_and_mechanism_info
);
