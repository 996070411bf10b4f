//! CKM_EDDSA with CK_EDDSA_PARAMS{phFlag = false, context} (Ed25519ctx,
//! RFC 8032) through the cryptoki crate: the four RFC 8032 section 7.2
//! vectors with the RFC's keys imported (sign, and verify with the
//! imported private key and with an imported public key), single and
//! multi-part; a wrong context, message or scheme is CKR_SIGNATURE_INVALID;
//! contexts of 1 and 255 bytes work, 256 is CKR_MECHANISM_PARAM_INVALID;
//! an empty context with phFlag false is pure Ed25519. A generated token
//! pair's Ed25519ctx signature is checked by an independent implementation
//! (pycryptodome, pinned in the tests' venv). Ed448 is refused and
//! C_GetMechanismInfo says 255-bit keys only. Embedded and daemon backends
//! (SoftHSM 2.6 has no Ed25519ctx).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{load, rv, user_session, Which};
use cryptoki::error::RvError;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

/// The DER of the Ed25519 curve's OID (CKA_EC_PARAMS).
const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// RFC 8032 section 7.2 (foo, bar, foo2, foo3): secret key, public key,
/// message, context, signature.
const RFC8032_7_2: [(&str, &str, &str, &str, &str); 4] = [
    (
        "0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6",
        "dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292",
        "f726936d19c800494e3fdaff20b276a8",
        "666f6f",
        "55a4cc2f70a54e04288c5f4cd1e45a7bb520b36292911876cada7323198dd87a
         8b36950b95130022907a7fb7c4e9b2d5f6cca685a587b4b21f4b888e4e7edb0d",
    ),
    (
        "0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6",
        "dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292",
        "f726936d19c800494e3fdaff20b276a8",
        "626172",
        "fc60d5872fc46b3aa69f8b5b4351d5808f92bcc044606db097abab6dbcb1aee3
         216c48e8b3b66431b5b186d1d28f8ee15a5ca2df6668346291c2043d4eb3e90d",
    ),
    (
        "0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6",
        "dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292",
        "508e9e6882b979fea900f62adceaca35",
        "666f6f",
        "8b70c1cc8310e1de20ac53ce28ae6e7207f33c3295e03bb5c0732a1d20dc6490
         8922a8b052cf99b7c4fe107a5abb5b2c4085ae75890d02df26269d8945f84b0b",
    ),
    (
        "ab9c2853ce297ddab85c993b3ae14bcad39b2c682beabc27d6d4eb20711d6560",
        "0f1d1274943b91415889152e893d80e93275a1fc0b65fd71b4b0dda10ad7d772",
        "f726936d19c800494e3fdaff20b276a8",
        "666f6f",
        "21655b5f1aa965996b3f97b3c849eafba922a0a62992f73b3d1b73106a84ad85
         e9b86a7b6005ea868337ff2d20a7f5fbd4cd10b0be49a68da2b2e0dc0ad8960f",
    ),
];

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ctx(context: &[u8]) -> Mechanism<'_> {
    Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Ed25519ctx(context)))
}

fn ph(context: &[u8]) -> Mechanism<'_> {
    Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Ed25519ph(context)))
}

fn import_private(session: &Session, secret: &[u8]) -> ObjectHandle {
    session
        .create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::EC_EDWARDS),
            Attribute::EcParams(ED25519.to_vec()),
            Attribute::Value(secret.to_vec()),
            Attribute::Token(false),
            Attribute::Sign(true),
        ])
        .unwrap()
}

fn import_public(session: &Session, public: &[u8]) -> ObjectHandle {
    let mut point = vec![0x04, public.len() as u8];
    point.extend_from_slice(public);
    session
        .create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::EC_EDWARDS),
            Attribute::EcParams(ED25519.to_vec()),
            Attribute::EcPoint(point),
            Attribute::Token(false),
            Attribute::Verify(true),
        ])
        .unwrap()
}

fn rfc8032_ed25519ctx(which: Which) {
    let m = load(which);
    let session = user_session(&m, "ed25519ctx");
    for (secret, public, message, context, signature) in RFC8032_7_2 {
        let (secret, public, message, context) =
            (hex(secret), hex(public), hex(message), hex(context));
        let want = hex(signature);
        let private = import_private(&session, &secret);
        let public_key = import_public(&session, &public);
        assert_eq!(
            session.sign(&ctx(&context), private, &message).unwrap(),
            want
        );
        // Multi-part gives the same.
        session.sign_init(&ctx(&context), private).unwrap();
        session.sign_update(&message[..5]).unwrap();
        session.sign_update(&message[5..]).unwrap();
        assert_eq!(session.sign_final().unwrap(), want);
        // The imported public key verifies it, single and multi-part.
        session
            .verify(&ctx(&context), public_key, &message, &want)
            .unwrap();
        session.verify_init(&ctx(&context), public_key).unwrap();
        session.verify_update(&message[..3]).unwrap();
        session.verify_update(&message[3..]).unwrap();
        session.verify_final(&want).unwrap();
        // Another context, message, or scheme does not verify.
        for key in [private, public_key] {
            assert_eq!(
                rv(session.verify(&ctx(b"baz"), key, &message, &want)),
                RvError::SignatureInvalid
            );
            assert_eq!(
                rv(session.verify(&ctx(&context), key, b"other message", &want)),
                RvError::SignatureInvalid
            );
            let pure = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
            assert_eq!(
                rv(session.verify(&pure, key, &message, &want)),
                RvError::SignatureInvalid
            );
        }
        assert_eq!(
            rv(session.verify(&ph(&context), private, &message, &want)),
            RvError::SignatureInvalid
        );
        let mut bad = want.clone();
        bad[40] ^= 0x10;
        assert_eq!(
            rv(session.verify(&ctx(&context), public_key, &message, &bad)),
            RvError::SignatureInvalid
        );
    }
}

fn context_lengths(which: Which) {
    let m = load(which);
    let session = user_session(&m, "ed25519ctx-lengths");
    let (public, private) = session
        .generate_key_pair(
            &Mechanism::EccEdwardsKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::EcParams(ED25519.to_vec()),
                Attribute::Verify(true),
            ],
            &[Attribute::Token(true), Attribute::Sign(true)],
        )
        .unwrap();
    for context in [&[1u8][..], &[0xa5; 255][..]] {
        let signature = session.sign(&ctx(context), private, b"message").unwrap();
        session
            .verify(&ctx(context), public, b"message", &signature)
            .unwrap();
        // An Ed25519ph signature under the same context is another one.
        let hashed = session.sign(&ph(context), private, b"message").unwrap();
        assert_ne!(hashed, signature);
    }
    // RFC 8032 contexts are at most 255 bytes.
    assert_eq!(
        rv(session.sign(&ctx(&[0; 256]), private, b"message")),
        RvError::MechanismParamInvalid
    );
    // phFlag false with no context is pure Ed25519.
    let empty = session.sign(&ctx(&[]), private, b"message").unwrap();
    let pure = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
    session.verify(&pure, public, b"message", &empty).unwrap();
    assert_eq!(
        rv(session.verify(&ctx(b"c"), public, b"message", &empty)),
        RvError::SignatureInvalid
    );
}

/// The tests' Python venv (scripts/test makes it).
fn venv_python() -> PathBuf {
    std::env::var_os("TINFOIL_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::target_dir().parent().unwrap().join("kms-venv"))
        .join("bin")
        .join("python")
}

/// pycryptodome's Ed25519 with a context (its Ed25519ctx) checks the
/// module's signature of a generated token pair, and refuses it under
/// another context.
fn independent_check(which: Which) {
    let python = venv_python();
    assert!(
        python.exists(),
        "{} is missing: run scripts/test, which makes the venv from tests/python/requirements.txt",
        python.display()
    );
    let m = load(which);
    let session = user_session(&m, "ed25519ctx-pycryptodome");
    let (public, private) = session
        .generate_key_pair(
            &Mechanism::EccEdwardsKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::EcParams(ED25519.to_vec()),
                Attribute::Verify(true),
            ],
            &[Attribute::Token(true), Attribute::Sign(true)],
        )
        .unwrap();
    let point = match session
        .get_attributes(public, &[AttributeType::EcPoint])
        .unwrap()
        .pop()
    {
        Some(Attribute::EcPoint(der)) => der[2..].to_vec(),
        other => panic!("no CKA_EC_POINT: {other:?}"),
    };
    let (message, context) = (b"a message to sign", b"tinfoil context");
    let signature = session.sign(&ctx(context), private, message).unwrap();
    let script = r#"
import sys
from Crypto.Signature import eddsa
pub, msg, ctx, sig = (bytes.fromhex(a) for a in sys.argv[1:5])
key = eddsa.import_public_key(pub)
eddsa.new(key, "rfc8032", context=ctx).verify(msg, sig)
try:
    eddsa.new(key, "rfc8032", context=b"another").verify(msg, sig)
    print("wrong context accepted")
    sys.exit(1)
except ValueError:
    pass
print("verified")
"#;
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(to_hex(&point))
        .arg(to_hex(message))
        .arg(to_hex(context))
        .arg(to_hex(&signature))
        .output()
        .expect("run the venv's python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("verified"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Ed448 is not offered, and C_GetMechanismInfo says so: CKM_EDDSA and
/// the Edwards key pair generation take 255-bit keys only; an Ed448 key
/// pair is CKR_CURVE_NOT_SUPPORTED. CKM_EDDSA signs and verifies.
fn ed448_not_offered(which: Which) {
    use cryptoki::mechanism::MechanismType;
    let m = load(which);
    let slot = m.token("ed448-info");
    for mechanism in [
        MechanismType::EDDSA,
        MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
    ] {
        let info = m.p11.get_mechanism_info(slot, mechanism).unwrap();
        assert_eq!((info.min_key_size(), info.max_key_size()), (255, 255));
    }
    let info = m
        .p11
        .get_mechanism_info(slot, MechanismType::EDDSA)
        .unwrap();
    assert!(info.sign() && info.verify());
    let session = user_session(&m, "ed448");
    const ED448: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x71];
    assert_eq!(
        rv(session.generate_key_pair(
            &Mechanism::EccEdwardsKeyPairGen,
            &[Attribute::Token(false), Attribute::EcParams(ED448.to_vec())],
            &[Attribute::Token(false), Attribute::Sign(true)],
        )),
        RvError::CurveNotSupported
    );
}

ours_only_embedded!(
    rfc8032_ed25519ctx,
    context_lengths,
    independent_check,
    ed448_not_offered
);
