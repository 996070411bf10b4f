//! Key pairs and signatures, against our module (embedded backend) and
//! SoftHSM2; our signatures are also checked outside any module, with
//! ring and the public key the module exports.

mod common;

use common::{rv, user_session};

use common::{load, Which};
use cryptoki::error::RvError;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::Session;

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

fn pair(
    session: &Session,
    mech: &Mechanism,
    public_extra: Vec<Attribute>,
    label: &str,
) -> (ObjectHandle, ObjectHandle) {
    let mut public = vec![
        Attribute::Token(true),
        Attribute::Verify(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(label.as_bytes().to_vec()),
    ];
    public.extend(public_extra);
    let private = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Sign(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(label.as_bytes().to_vec()),
    ];
    session.generate_key_pair(mech, &public, &private).unwrap()
}

/// The uncompressed point inside CKA_EC_POINT (a DER OCTET STRING).
fn ec_point(session: &Session, public: ObjectHandle) -> Vec<u8> {
    let attrs = session
        .get_attributes(public, &[AttributeType::EcPoint])
        .unwrap();
    let Some(Attribute::EcPoint(der)) = attrs.into_iter().next() else {
        panic!("no CKA_EC_POINT");
    };
    assert_eq!(der[0], 0x04, "an OCTET STRING");
    der[2..].to_vec()
}

fn ecdsa_p256_and_p384(which: Which) {
    let m = load(which);
    let session = user_session(&m, "ecdsa");
    let (public, private) = pair(
        &session,
        &Mechanism::EccKeyPairGen,
        vec![Attribute::EcParams(P256.to_vec())],
        "p256",
    );
    let msg = b"the message to sign".to_vec();
    let point = ec_point(&session, public);
    assert_eq!(point.len(), 65);
    let verify_p256 = |sig: &[u8]| {
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &point)
            .verify(&msg, sig)
            .expect("ring verifies the module's signature")
    };
    // Raw CKM_ECDSA on a SHA-256 digest (SoftHSM 2.6 has only this form).
    let digest = ring::digest::digest(&ring::digest::SHA256, &msg);
    let raw = session
        .sign(&Mechanism::Ecdsa, private, digest.as_ref())
        .unwrap();
    assert_eq!(raw.len(), 64, "r || s");
    verify_p256(&raw);
    session
        .verify(&Mechanism::Ecdsa, public, digest.as_ref(), &raw)
        .unwrap();
    let mut bad = raw.clone();
    bad[10] ^= 1;
    assert_eq!(
        rv(session.verify(&Mechanism::Ecdsa, public, digest.as_ref(), &bad)),
        RvError::SignatureInvalid
    );
    assert_eq!(
        rv(session.verify(&Mechanism::Ecdsa, public, digest.as_ref(), &raw[..63])),
        RvError::SignatureLenRange
    );
    // A public key cannot sign; an RSA mechanism does not fit an EC key.
    assert!(session
        .sign(&Mechanism::Ecdsa, public, digest.as_ref())
        .is_err());
    if which == Which::SoftHsm {
        // SoftHSM 2.6 answers an RSA mechanism on an EC key with
        // CKR_GENERAL_ERROR and has no CKM_ECDSA_SHA256: ours only below.
        return;
    }
    assert_eq!(
        rv(session.sign(&Mechanism::RsaPkcs, private, digest.as_ref())),
        RvError::KeyTypeInconsistent
    );
    // Ours also hashes: CKM_ECDSA_SHA256/384, single and multi-part.
    let sig = session
        .sign(&Mechanism::EcdsaSha256, private, &msg)
        .unwrap();
    verify_p256(&sig);
    session
        .verify(&Mechanism::EcdsaSha256, public, &msg, &sig)
        .unwrap();
    session
        .verify(&Mechanism::EcdsaSha256, public, &msg, &raw)
        .unwrap();
    session.sign_init(&Mechanism::EcdsaSha256, private).unwrap();
    session.sign_update(&msg[..5]).unwrap();
    session.sign_update(&msg[5..]).unwrap();
    verify_p256(&session.sign_final().unwrap());
    let (public384, private384) = pair(
        &session,
        &Mechanism::EccKeyPairGen,
        vec![Attribute::EcParams(P384.to_vec())],
        "p384",
    );
    let sig = session
        .sign(&Mechanism::EcdsaSha384, private384, &msg)
        .unwrap();
    assert_eq!(sig.len(), 96);
    session
        .verify(&Mechanism::EcdsaSha384, public384, &msg, &sig)
        .unwrap();
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P384_SHA384_FIXED,
        ec_point(&session, public384),
    )
    .verify(&msg, &sig)
    .expect("ring verifies P-384");
}

fn rsa_pkcs1_and_pss(which: Which) {
    let m = load(which);
    let session = user_session(&m, "rsa");
    let (public, private) = pair(
        &session,
        &Mechanism::RsaPkcsKeyPairGen,
        vec![
            Attribute::ModulusBits(2048.into()),
            Attribute::PublicExponent(vec![1, 0, 1]),
        ],
        "rsa2048",
    );
    let msg = b"sign me with RSA".to_vec();
    let sig = session
        .sign(&Mechanism::Sha256RsaPkcs, private, &msg)
        .unwrap();
    assert_eq!(sig.len(), 256);
    session
        .verify(&Mechanism::Sha256RsaPkcs, public, &msg, &sig)
        .unwrap();
    let attrs = session
        .get_attributes(
            public,
            &[AttributeType::Modulus, AttributeType::PublicExponent],
        )
        .unwrap();
    let (mut n, mut e) = (Vec::new(), Vec::new());
    for a in attrs {
        match a {
            Attribute::Modulus(v) => n = v,
            Attribute::PublicExponent(v) => e = v,
            _ => {}
        }
    }
    assert_eq!(n.len(), 256);
    ring::signature::RsaPublicKeyComponents { n: &n, e: &e }
        .verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, &msg, &sig)
        .expect("ring verifies the PKCS#1 signature");
    let pss = PkcsPssParams {
        hash_alg: MechanismType::SHA256,
        mgf: PkcsMgfType::MGF1_SHA256,
        s_len: 32.into(),
    };
    let sig = session
        .sign(&Mechanism::Sha256RsaPkcsPss(pss), private, &msg)
        .unwrap();
    session
        .verify(&Mechanism::Sha256RsaPkcsPss(pss), public, &msg, &sig)
        .unwrap();
    ring::signature::RsaPublicKeyComponents { n: &n, e: &e }
        .verify(&ring::signature::RSA_PSS_2048_8192_SHA256, &msg, &sig)
        .expect("ring verifies the PSS signature");
    let wrong_mgf = PkcsPssParams {
        hash_alg: MechanismType::SHA256,
        mgf: PkcsMgfType::MGF1_SHA384,
        s_len: 32.into(),
    };
    // SoftHSM answers CKR_ARGUMENTS_BAD; the spec's code is ours.
    let refused = rv(session.sign(&Mechanism::Sha256RsaPkcsPss(wrong_mgf), private, &msg));
    if which != Which::SoftHsm {
        assert_eq!(refused, RvError::MechanismParamInvalid);
    }
    // Ours makes 1024 to 8192-bit keys (tests/rsa_sizes.rs); SoftHSM
    // accepts 512.
    if which != Which::SoftHsm {
        let small = session.generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[Attribute::Token(true), Attribute::ModulusBits(512.into())],
            &[Attribute::Token(true), Attribute::Sign(true)],
        );
        assert_eq!(rv(small), RvError::KeySizeRange);
    }
}

fn ed25519(which: Which) {
    let m = load(which);
    let session = user_session(&m, "eddsa");
    let ed_params = vec![0x06, 0x03, 0x2b, 0x65, 0x70];
    let (public, private) = pair(
        &session,
        &Mechanism::EccEdwardsKeyPairGen,
        vec![Attribute::EcParams(ed_params)],
        "ed",
    );
    let msg = b"pure EdDSA".to_vec();
    let mech = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
    let sig = session.sign(&mech, private, &msg).unwrap();
    assert_eq!(sig.len(), 64);
    session.verify(&mech, public, &msg, &sig).unwrap();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, ec_point(&session, public))
        .verify(&msg, &sig)
        .expect("ring verifies Ed25519");
}

fn rsa_oaep_round_trip(which: Which) {
    use cryptoki::mechanism::rsa::{PkcsOaepParams, PkcsOaepSource};
    let m = load(which);
    let session = user_session(&m, "oaep");
    let (public, private) = session
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::Encrypt(true),
                Attribute::Verify(false),
                Attribute::ModulusBits(2048.into()),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Decrypt(true),
                Attribute::Sign(false),
            ],
        )
        .unwrap();
    // SoftHSM 2.6 does OAEP with SHA-1 only.
    let hashes: &[(MechanismType, PkcsMgfType)] = if which == Which::SoftHsm {
        &[(MechanismType::SHA1, PkcsMgfType::MGF1_SHA1)]
    } else {
        &[
            (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
            (MechanismType::SHA1, PkcsMgfType::MGF1_SHA1),
        ]
    };
    for &(hash, mgf) in hashes {
        let oaep = Mechanism::RsaPkcsOaep(PkcsOaepParams::new(hash, mgf, PkcsOaepSource::empty()));
        let secret = b"a 32-byte data key, say........".to_vec();
        let sealed = session.encrypt(&oaep, public, &secret).unwrap();
        assert_eq!(sealed.len(), 256);
        assert_eq!(session.decrypt(&oaep, private, &sealed).unwrap(), secret);
        let mut bad = sealed.clone();
        bad[100] ^= 1;
        assert!(session.decrypt(&oaep, private, &bad).is_err());
    }
    // The pair was made for decryption: it does not sign.
    assert!(session
        .sign(&Mechanism::Sha256RsaPkcs, private, b"x")
        .is_err());
    // A hash and an MGF that differ are refused (labels: oaep_label.rs).
    if which != Which::SoftHsm {
        let mixed = Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
            MechanismType::SHA256,
            PkcsMgfType::MGF1_SHA1,
            PkcsOaepSource::empty(),
        ));
        assert_eq!(
            rv(session.encrypt(&mixed, public, b"x")),
            RvError::MechanismParamInvalid
        );
    }
}

/// Public keys imported with C_CreateObject verify signatures made
/// elsewhere (by ring, or by another key object's private half).
fn imported_public_keys_verify(which: Which) {
    use cryptoki::object::{KeyType, ObjectClass};
    use ring::signature::KeyPair;
    let m = load(which);
    let session = user_session(&m, "import-pub");
    let rng = ring::rand::SystemRandom::new();
    let msg = b"signed outside the token".to_vec();

    // Ed25519, signed by ring.
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let ed = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let mut point = vec![0x04, 0x20];
    point.extend_from_slice(ed.public_key().as_ref());
    let public = session
        .create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::EC_EDWARDS),
            Attribute::Token(false),
            Attribute::Verify(true),
            Attribute::EcParams(vec![0x06, 0x03, 0x2b, 0x65, 0x70]),
            Attribute::EcPoint(point),
        ])
        .unwrap();
    let mech = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
    let sig = ed.sign(&msg);
    session.verify(&mech, public, &msg, sig.as_ref()).unwrap();
    assert_eq!(
        rv(session.verify(&mech, public, b"another message", sig.as_ref())),
        RvError::SignatureInvalid
    );

    // ECDSA P-256, signed by ring (r || s over SHA-256).
    let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let ec = ring::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    let mut point = vec![0x04, 0x41];
    point.extend_from_slice(ec.public_key().as_ref());
    let ec_public = session
        .create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::EC),
            Attribute::Token(false),
            Attribute::Verify(true),
            Attribute::EcParams(P256.to_vec()),
            Attribute::EcPoint(point),
        ])
        .unwrap();
    let sig = ec.sign(&rng, &msg).unwrap();
    if which == Which::SoftHsm {
        let digest = ring::digest::digest(&ring::digest::SHA256, &msg);
        session
            .verify(&Mechanism::Ecdsa, ec_public, digest.as_ref(), sig.as_ref())
            .unwrap();
    } else {
        session
            .verify(&Mechanism::EcdsaSha256, ec_public, &msg, sig.as_ref())
            .unwrap();
    }

    // RSA: a module key pair signs; its modulus and exponent, imported as
    // a separate public key object, verify.
    let (public_rsa, private_rsa) = pair(
        &session,
        &Mechanism::RsaPkcsKeyPairGen,
        vec![Attribute::ModulusBits(2048.into())],
        "rsa-src",
    );
    let rsa_public = common::import_rsa_public(&session, public_rsa);
    let sig = session
        .sign(&Mechanism::Sha256RsaPkcs, private_rsa, &msg)
        .unwrap();
    session
        .verify(&Mechanism::Sha256RsaPkcs, rsa_public, &msg, &sig)
        .unwrap();
    assert_eq!(
        rv(session.verify(&Mechanism::Sha256RsaPkcs, rsa_public, b"tampered", &sig)),
        RvError::SignatureInvalid
    );
    // A malformed point is refused at import (ours; SoftHSM stores it).
    if which != Which::SoftHsm {
        let bad = session.create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::EC),
            Attribute::EcParams(P256.to_vec()),
            Attribute::EcPoint(vec![0x04, 0x03, 1, 2, 3]),
        ]);
        assert_eq!(rv(bad), RvError::AttributeValueInvalid);
    }
}

with_keys!(
    ecdsa_p256_and_p384,
    rsa_pkcs1_and_pss,
    ed25519,
    rsa_oaep_round_trip,
    imported_public_keys_verify,
);
