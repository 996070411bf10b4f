//! CKM_EDDSA with CK_EDDSA_PARAMS through the cryptoki crate: Ed25519ph
//! (phFlag true) against the RFC 8032 section 7.3 vector with the RFC's
//! key imported, with and without a context, single and multi-part, on a
//! generated token pair too; Ed25519ctx (phFlag false with a context,
//! tests/ed25519ctx.rs) is another signature. Embedded and daemon backends
//! (SoftHSM 2.6 has no Ed25519ph).

mod common;

use common::{load, rv, user_session, Which};
use cryptoki::error::RvError;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass};

/// The DER of the Ed25519 curve's OID (CKA_EC_PARAMS).
const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn ph(context: &[u8]) -> Mechanism<'_> {
    Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Ed25519ph(context)))
}

fn rfc8032_ed25519ph(which: Which) {
    let m = load(which);
    let session = user_session(&m, "ed25519ph");
    let private = session
        .create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::EC_EDWARDS),
            Attribute::EcParams(ED25519.to_vec()),
            Attribute::Value(hex(
                "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
            )),
            Attribute::Token(false),
            Attribute::Sign(true),
        ])
        .unwrap();
    let want = hex(
        "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41
         31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406",
    );
    assert_eq!(session.sign(&ph(&[]), private, b"abc").unwrap(), want);
    // Multi-part gives the same.
    session.sign_init(&ph(&[]), private).unwrap();
    session.sign_update(b"a").unwrap();
    session.sign_update(b"bc").unwrap();
    assert_eq!(session.sign_final().unwrap(), want);
    // A context is part of the signature; pure Ed25519 differs too.
    let with_ctx = session.sign(&ph(b"foo"), private, b"abc").unwrap();
    assert_ne!(with_ctx, want);
    let pure = session
        .sign(
            &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            private,
            b"abc",
        )
        .unwrap();
    assert_ne!(pure, want);

    // A generated token pair signs and verifies Ed25519ph with a context.
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
    let signature = session.sign(&ph(b"ctx"), private, b"message").unwrap();
    session
        .verify(&ph(b"ctx"), public, b"message", &signature)
        .unwrap();
    assert_eq!(
        rv(session.verify(&ph(b"other"), public, b"message", &signature)),
        RvError::SignatureInvalid
    );
    // Ed25519ctx under the same context is another scheme: it signs, and
    // its signature is not an Ed25519ph one.
    let ctx = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Ed25519ctx(b"ctx")));
    let ctx_signature = session.sign(&ctx, private, b"message").unwrap();
    assert_ne!(ctx_signature, signature);
    assert_eq!(
        rv(session.verify(&ph(b"ctx"), public, b"message", &ctx_signature)),
        RvError::SignatureInvalid
    );
}

ours_only_embedded!(rfc8032_ed25519ph);
