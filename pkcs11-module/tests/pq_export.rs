//! ML-DSA private keys leave the token only wrapped, and come back the same
//! way (issue 16), on the embedded and daemon backends: a pair generated
//! with CKA_EXTRACTABLE true wraps under AES-KWP (and AES-KW) as its
//! seed-form PKCS#8 (RFC 9881), which OpenSSL's RFC 5649 unwrap reads back
//! and which unwraps into a CKK_ML_DSA key that signs as the original; a
//! PKCS#8 written by RustCrypto's ml-dsa unwraps into a key whose
//! signatures RustCrypto verifies; a wrong CKA_PARAMETER_SET, a tampered
//! blob, an unextractable key and CKA_SENSITIVE false are refused; the
//! wrap and the unwrap are audited.

mod common;

use std::path::Path;

use common::openssl::openssl;
use common::{load, rv, user_session, Which};
use cryptoki::error::RvError;
use cryptoki::mechanism::dsa::{HedgeType, SignAdditionalContext};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{
    Attribute, AttributeType, KeyType, MlDsaParameterSetType, ObjectClass, ObjectHandle,
};
use cryptoki::session::Session;
use ml_dsa::pkcs8::EncodePrivateKey as _;
use ml_dsa::{KeyExport as _, Keypair as _, MlDsa65};

const KEK: [u8; 32] = [0x42; 32];
const MESSAGE: &[u8] = b"signed by an ML-DSA key that left the token wrapped";
/// The seed-form PKCS#8 of an ML-DSA-65 key (RFC 9881): its 18-byte head
/// (ending in the OID's last byte, 0x12) and `04 22 80 20`, then the seed.
const SEED_FORM_LEN: usize = 18 + 4 + 32;

/// A session AES-256 key of value KEK that wraps and unwraps.
fn kek(session: &Session) -> ObjectHandle {
    session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
            Attribute::Value(KEK.to_vec()),
        ])
        .unwrap()
}

/// An ML-DSA-65 pair with the private template's extra attributes.
fn pair(session: &Session, token: bool, extra: &[Attribute]) -> (ObjectHandle, ObjectHandle) {
    let mut private = vec![Attribute::Token(token), Attribute::Sign(true)];
    private.extend_from_slice(extra);
    session
        .generate_key_pair(
            &Mechanism::MlDsaKeyPairGen,
            &[
                Attribute::Token(token),
                Attribute::Verify(true),
                Attribute::ParameterSet(MlDsaParameterSetType::ML_DSA_65.into()),
            ],
            &private,
        )
        .unwrap()
}

/// The template that unwraps an ML-DSA private key of `set`.
fn unwrap_template(set: MlDsaParameterSetType, token: bool) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::ML_DSA),
        Attribute::ParameterSet(set.into()),
        Attribute::Token(token),
        Attribute::Private(true),
        Attribute::Sign(true),
    ]
}

fn pure() -> Mechanism<'static> {
    Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::Preferred, None))
}

fn value(session: &Session, object: ObjectHandle, t: AttributeType) -> Attribute {
    session.get_attributes(object, &[t]).unwrap().pop().unwrap()
}

/// OpenSSL's RFC 5649 unwrap of `wrapped` under KEK.
fn openssl_unwrap(wrapped: &[u8], dir: &Path) -> Vec<u8> {
    let path = dir.join("wrapped");
    std::fs::write(&path, wrapped).unwrap();
    let hex: String = KEK.iter().map(|b| format!("{b:02x}")).collect();
    openssl(&[
        "enc",
        "-d",
        "-id-aes256-wrap-pad",
        "-K",
        &hex,
        "-iv",
        "A65959A6",
        "-in",
        path.to_str().unwrap(),
    ])
}

/// Generate extractable, wrap (KWP and KW), OpenSSL reads the seed form,
/// unwrap into a key that signs as the original; the unwrapped object
/// carries the same public key and parameter set.
fn extractable_pairs_wrap_and_come_back(which: Which) {
    let m = load(which);
    let session = user_session(&m, "pq-export");
    let dir = tempfile::tempdir().unwrap();
    let kek = kek(&session);
    for token in [true, false] {
        let (public, private) = pair(&session, token, &[Attribute::Extractable(true)]);
        assert_eq!(
            value(&session, private, AttributeType::Extractable),
            Attribute::Extractable(true)
        );
        assert_eq!(
            value(&session, private, AttributeType::Sensitive),
            Attribute::Sensitive(true)
        );
        let wrapped = session
            .wrap_key(&Mechanism::AesKeyWrapPad, kek, private)
            .unwrap();
        let pkcs8 = openssl_unwrap(&wrapped, dir.path());
        assert_eq!(pkcs8.len(), SEED_FORM_LEN, "the seed form");
        assert_eq!(&pkcs8[17..22], &[0x12, 0x04, 0x22, 0x80, 0x20]);
        // The seed is the key: RustCrypto's key from it has the public key.
        let seed: [u8; 32] = pkcs8[22..].try_into().unwrap();
        let theirs = ml_dsa::SigningKey::<MlDsa65>::from_seed(&seed.into());
        let Attribute::Value(pk) = value(&session, public, AttributeType::Value) else {
            panic!("no CKA_VALUE")
        };
        assert_eq!(&theirs.verifying_key().to_bytes()[..], &pk[..]);
        // 54 bytes: not a multiple of 8, so no RFC 3394 wrap.
        assert_eq!(
            rv(session.wrap_key(&Mechanism::AesKeyWrap, kek, private)),
            RvError::KeySizeRange
        );
        let back = session
            .unwrap_key(
                &Mechanism::AesKeyWrapPad,
                kek,
                &wrapped,
                &unwrap_template(MlDsaParameterSetType::ML_DSA_65, !token),
            )
            .unwrap();
        for t in [
            AttributeType::KeyType,
            AttributeType::ParameterSet,
            AttributeType::PublicKeyInfo,
        ] {
            assert_eq!(value(&session, back, t), value(&session, private, t), "{t}");
        }
        assert_eq!(
            value(&session, back, AttributeType::Extractable),
            Attribute::Extractable(false),
            "unextractable unless asked"
        );
        let sig = session.sign(&pure(), back, MESSAGE).unwrap();
        session.verify(&pure(), public, MESSAGE, &sig).unwrap();
        // The unwrapped key (unextractable by default) stays in.
        assert_eq!(
            rv(session.wrap_key(&Mechanism::AesKeyWrapPad, kek, back)),
            RvError::KeyUnextractable
        );
    }
    // Unextractable by default; never readable.
    let (_, sealed) = pair(&session, false, &[]);
    assert_eq!(
        rv(session.wrap_key(&Mechanism::AesKeyWrapPad, kek, sealed)),
        RvError::KeyUnextractable
    );
    let refused = session.generate_key_pair(
        &Mechanism::MlDsaKeyPairGen,
        &[Attribute::ParameterSet(
            MlDsaParameterSetType::ML_DSA_65.into(),
        )],
        &[Attribute::Extractable(true), Attribute::Sensitive(false)],
    );
    assert_eq!(rv(refused), RvError::TemplateInconsistent);
    // ML-KEM private keys stay unextractable.
    let refused = session.generate_key_pair(
        &Mechanism::MlKemKeyPairGen,
        &[Attribute::ParameterSet(
            cryptoki::object::MlKemParameterSetType::ML_KEM_768.into(),
        )],
        &[Attribute::Extractable(true)],
    );
    assert_eq!(rv(refused), RvError::TemplateInconsistent);
}

/// RFC 5649 (AES-KWP) of `plain` under KEK, by aws-lc-rs.
fn kwp(plain: &[u8]) -> Vec<u8> {
    use aws_lc_rs::key_wrap::{AesKek, KeyWrapPadded as _, AES_256};
    let kek = AesKek::new(&AES_256, &KEK).unwrap();
    let mut out = vec![0u8; plain.len() + 16];
    let n = kek.wrap_with_padding(plain, &mut out).unwrap().len();
    out.truncate(n);
    out
}

/// One DER element.
fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match body.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(body);
    out
}

/// A PKCS#8 PrivateKeyInfo (version 0) of an AlgorithmIdentifier and the
/// privateKey's content.
fn pkcs8_of(alg: &[u8], private_key: &[u8]) -> Vec<u8> {
    tlv(
        0x30,
        &[&[0x02, 0x01, 0x00][..], alg, &tlv(0x04, private_key)].concat(),
    )
}

/// A PKCS#8 written by RustCrypto's ml-dsa from a known seed unwraps; its
/// signatures verify under RustCrypto's public key. A parameter set that
/// is not the key's, a tampered blob and CKA_SENSITIVE false are refused.
#[allow(deprecated)] // to_expanded: the expanded key is what is under test
fn rustcrypto_keys_unwrap(which: Which) {
    let m = load(which);
    let session = user_session(&m, "pq-import");
    let kek = kek(&session);
    let theirs = ml_dsa::SigningKey::<MlDsa65>::from_seed(&[7u8; 32].into());
    let pkcs8 = theirs.to_pkcs8_der().unwrap();
    let wrapped = kwp(pkcs8.as_bytes());
    let template = unwrap_template(MlDsaParameterSetType::ML_DSA_65, false);
    let ours = session
        .unwrap_key(&Mechanism::AesKeyWrapPad, kek, &wrapped, &template)
        .unwrap();
    let sig = session.sign(&pure(), ours, MESSAGE).unwrap();
    let vk = theirs.verifying_key();
    let sig = ml_dsa::Signature::<MlDsa65>::try_from(&sig[..]).unwrap();
    assert!(vk.verify_with_context(MESSAGE, &[], &sig));
    // Wrapped again, it is the same PKCS#8 (when made extractable).
    let mut open = template.clone();
    open.push(Attribute::Extractable(true));
    let again = session
        .unwrap_key(&Mechanism::AesKeyWrapPad, kek, &wrapped, &open)
        .unwrap();
    let out = session
        .wrap_key(&Mechanism::AesKeyWrapPad, kek, again)
        .unwrap();
    assert_eq!(out, wrapped, "RFC 5649 is deterministic: the same PKCS#8");
    // The PKCS#8's OID names ML-DSA-65, the template ML-DSA-44.
    let wrong = session.unwrap_key(
        &Mechanism::AesKeyWrapPad,
        kek,
        &wrapped,
        &unwrap_template(MlDsaParameterSetType::ML_DSA_44, false),
    );
    assert_eq!(rv(wrong), RvError::WrappedKeyInvalid);
    let mut tampered = wrapped.clone();
    tampered[10] ^= 1;
    assert_eq!(
        rv(session.unwrap_key(&Mechanism::AesKeyWrapPad, kek, &tampered, &template)),
        RvError::WrappedKeyInvalid
    );
    let mut readable = template.clone();
    readable.extend([Attribute::Sensitive(false), Attribute::Extractable(true)]);
    assert_eq!(
        rv(session.unwrap_key(&Mechanism::AesKeyWrapPad, kek, &wrapped, &readable)),
        RvError::TemplateInconsistent
    );
    // The RFC 9881 "both" form (seed and expanded key) comes in as the
    // same key; the expanded key alone (no seed to keep) does not.
    let expanded = theirs.expanded_key().to_expanded();
    let alg = &pkcs8.as_bytes()[5..18];
    let both = tlv(
        0x30,
        &[&tlv(0x04, &[7u8; 32])[..], &tlv(0x04, &expanded)].concat(),
    );
    let ours_both = session
        .unwrap_key(
            &Mechanism::AesKeyWrapPad,
            kek,
            &kwp(&pkcs8_of(alg, &both)),
            &open,
        )
        .unwrap();
    let out = session
        .wrap_key(&Mechanism::AesKeyWrapPad, kek, ours_both)
        .unwrap();
    assert_eq!(out, wrapped, "stored in the seed form");
    let no_seed = kwp(&pkcs8_of(alg, &tlv(0x04, &expanded)));
    assert_eq!(
        rv(session.unwrap_key(&Mechanism::AesKeyWrapPad, kek, &no_seed, &template)),
        RvError::WrappedKeyInvalid
    );
    // CKA_PARAMETER_SET is required.
    let mut incomplete = template.clone();
    incomplete.retain(|a| a.attribute_type() != AttributeType::ParameterSet);
    assert_eq!(
        rv(session.unwrap_key(&Mechanism::AesKeyWrapPad, kek, &wrapped, &incomplete)),
        RvError::TemplateIncomplete
    );
}

/// Wrapping a token ML-DSA key out and unwrapping it onto the token each
/// leave a record naming the keys; the wrapped bytes are nowhere in the log.
fn wraps_and_unwraps_are_audited(which: Which) {
    let m = load(which);
    let session = user_session(&m, "pq-audited");
    let (_, key) = pair(&session, true, &[Attribute::Extractable(true)]);
    let kek = session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(true),
                Attribute::ValueLen(32.into()),
                Attribute::Wrap(true),
                Attribute::Unwrap(true),
            ],
        )
        .unwrap();
    let wrapped = session
        .wrap_key(&Mechanism::AesKeyWrapPad, kek, key)
        .unwrap();
    session
        .unwrap_key(
            &Mechanism::AesKeyWrapPad,
            kek,
            &wrapped,
            &unwrap_template(MlDsaParameterSetType::ML_DSA_65, true),
        )
        .unwrap();
    drop(session);
    let (records, text) = common::exported_pkcs11_records(&m);
    let names: Vec<&str> = records
        .iter()
        .map(|r| r["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "C_GenerateKeyPair",
            "C_GenerateKey",
            "C_WrapKey",
            "C_UnwrapKey"
        ],
        "{records:#?}"
    );
    let arn = |i: usize| records[i]["resources"][0]["ARN"].as_str().unwrap();
    assert_eq!(arn(2), arn(1), "the wrapping key");
    assert_eq!(arn(3), arn(1), "the unwrapping key");
    let hex: String = wrapped[..16].iter().map(|x| format!("{x:02x}")).collect();
    assert!(!text.to_lowercase().contains(&hex));
}

ours_only_embedded!(
    extractable_pairs_wrap_and_come_back,
    rustcrypto_keys_unwrap,
    wraps_and_unwraps_are_audited
);
