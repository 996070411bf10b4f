//! Private keys' CKA_SENSITIVE and CKA_EXTRACTABLE as PKCS#11 3.0 says
//! (section 4.9): a pair generated or imported with CKA_SENSITIVE false
//! and CKA_EXTRACTABLE true shows its secret parts (OpenSSL checks the RSA
//! parts and derives the EC public point from the scalar read); an
//! extractable private key wraps as a PKCS#8 PrivateKeyInfo under AES-KWP
//! (and AES-KW when its length is a multiple of 8) that OpenSSL unwraps
//! and signs with, and that unwraps back into a key that signs; both flags
//! only tighten; CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE say what
//! happened and cannot be set. Sensitive and unextractable stay the
//! defaults. SoftHSM2 is the control.

mod common;

use std::path::Path;

use common::openssl::openssl;
use common::{load, rv, user_session, Which};
use cryptoki::error::RvError;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const X25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x6e];
const MESSAGE: &[u8] = b"signed by a key that left the token wrapped";
const KEK: [u8; 32] = [0x42; 32];

/// One attribute's bytes; empty when cryptoki reports it absent (as it
/// does for a sensitive attribute).
fn bytes(session: &Session, key: ObjectHandle, t: AttributeType) -> Vec<u8> {
    match session.get_attributes(key, &[t]).unwrap().pop() {
        None => Vec::new(),
        Some(
            Attribute::PrivateExponent(v)
            | Attribute::Prime1(v)
            | Attribute::Prime2(v)
            | Attribute::Exponent1(v)
            | Attribute::Exponent2(v)
            | Attribute::Coefficient(v)
            | Attribute::Modulus(v)
            | Attribute::PublicExponent(v)
            | Attribute::Value(v)
            | Attribute::EcPoint(v),
        ) => v,
        Some(other) => panic!("{other:?}"),
    }
}

fn flag(session: &Session, key: ObjectHandle, t: AttributeType) -> bool {
    match session.get_attributes(key, &[t]).unwrap().pop() {
        Some(
            Attribute::Sensitive(b)
            | Attribute::Extractable(b)
            | Attribute::AlwaysSensitive(b)
            | Attribute::NeverExtractable(b),
        ) => b,
        other => panic!("{other:?}"),
    }
}

/// A key pair of `kind` ("rsa", "p256", "ed25519", "x25519") with the
/// private template's extra attributes `extra`.
fn pair(
    session: &Session,
    kind: &str,
    token: bool,
    extra: &[Attribute],
) -> (ObjectHandle, ObjectHandle) {
    let (mechanism, mut public, mut private) = match kind {
        "rsa" => (
            Mechanism::RsaPkcsKeyPairGen,
            vec![Attribute::ModulusBits(2048.into()), Attribute::Verify(true)],
            vec![Attribute::Sign(true)],
        ),
        "p256" => (
            Mechanism::EccKeyPairGen,
            vec![Attribute::EcParams(P256.to_vec()), Attribute::Verify(true)],
            vec![Attribute::Sign(true)],
        ),
        "ed25519" => (
            Mechanism::EccEdwardsKeyPairGen,
            vec![
                Attribute::EcParams(ED25519.to_vec()),
                Attribute::Verify(true),
            ],
            vec![Attribute::Sign(true)],
        ),
        _ => (
            Mechanism::EccMontgomeryKeyPairGen,
            vec![Attribute::EcParams(X25519.to_vec())],
            vec![Attribute::Derive(true)],
        ),
    };
    public.push(Attribute::Token(token));
    private.extend([Attribute::Token(token), Attribute::Private(true)]);
    private.extend_from_slice(extra);
    session
        .generate_key_pair(&mechanism, &public, &private)
        .unwrap_or_else(|e| panic!("{kind}: {e}"))
}

/// The RSAPrivateKey DER of an RSA key whose parts are readable.
fn rsa_private_der(session: &Session, private: ObjectHandle) -> Vec<u8> {
    let mut ints = vec![common::der_uint(&[0])];
    for t in [
        AttributeType::Modulus,
        AttributeType::PublicExponent,
        AttributeType::PrivateExponent,
        AttributeType::Prime1,
        AttributeType::Prime2,
        AttributeType::Exponent1,
        AttributeType::Exponent2,
        AttributeType::Coefficient,
    ] {
        let v = bytes(session, private, t);
        assert!(!v.is_empty(), "{t} is readable");
        ints.push(common::der_uint(&v));
    }
    common::der(0x30, &ints.concat())
}

/// The uncompressed point OpenSSL derives from a P-256 scalar.
fn p256_point_of(scalar: &[u8], dir: &Path) -> Vec<u8> {
    let body = [
        common::der_uint(&[1]),
        common::der(0x04, scalar),
        common::der(0xa0, P256),
    ]
    .concat();
    let path = dir.join("ec.der");
    std::fs::write(&path, common::der(0x30, &body)).unwrap();
    let spki = openssl(&[
        "ec",
        "-inform",
        "DER",
        "-in",
        path.to_str().unwrap(),
        "-pubout",
        "-outform",
        "DER",
    ]);
    spki[spki.len() - 65..].to_vec()
}

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

/// OpenSSL's unwrap of `wrapped` under KEK (`pad`: RFC 5649, else 3394).
fn openssl_unwrap(wrapped: &[u8], pad: bool, dir: &Path) -> Vec<u8> {
    let path = dir.join("wrapped");
    std::fs::write(&path, wrapped).unwrap();
    let hex: String = KEK.iter().map(|b| format!("{b:02x}")).collect();
    let (cipher, iv) = if pad {
        ("-id-aes256-wrap-pad", "A65959A6")
    } else {
        ("-id-aes256-wrap", "A6A6A6A6A6A6A6A6")
    };
    openssl(&[
        "enc",
        "-d",
        cipher,
        "-K",
        &hex,
        "-iv",
        iv,
        "-in",
        path.to_str().unwrap(),
    ])
}

/// DER ECDSA-Sig-Value to r || s of `half` bytes each.
fn ecdsa_raw(der_sig: &[u8], half: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = &der_sig[2..];
    for _ in 0..2 {
        let len = rest[1] as usize;
        let int = &rest[2..2 + len];
        let int = &int[int.len().saturating_sub(half)..];
        out.extend(std::iter::repeat_n(0u8, half - int.len()));
        out.extend_from_slice(int);
        rest = &rest[2 + len..];
    }
    out
}

/// OpenSSL signs MESSAGE with the PKCS#8 `pkcs8`; the token's public key
/// object verifies it: the bytes that left the token are its key.
fn openssl_signs_token_verifies(
    session: &Session,
    public: ObjectHandle,
    kind: &str,
    pkcs8: &[u8],
    dir: &Path,
) {
    let key = dir.join("unwrapped.der");
    let msg = dir.join("msg");
    std::fs::write(&key, pkcs8).unwrap();
    std::fs::write(&msg, MESSAGE).unwrap();
    let (key, msg) = (key.to_str().unwrap(), msg.to_str().unwrap());
    let (mechanism, sig) = match kind {
        "rsa" => (
            Mechanism::Sha256RsaPkcs,
            openssl(&["dgst", "-sha256", "-keyform", "DER", "-sign", key, msg]),
        ),
        // CKM_ECDSA over a digest made here (SoftHSM has no CKM_ECDSA_SHA*).
        "p256" => {
            let sig = openssl(&["dgst", "-sha256", "-keyform", "DER", "-sign", key, msg]);
            let digest = ring::digest::digest(&ring::digest::SHA256, MESSAGE);
            session
                .verify(
                    &Mechanism::Ecdsa,
                    public,
                    digest.as_ref(),
                    &ecdsa_raw(&sig, 32),
                )
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            return;
        }
        _ => (
            Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            openssl(&[
                "pkeyutl", "-sign", "-keyform", "DER", "-inkey", key, "-rawin", "-in", msg,
            ]),
        ),
    };
    session
        .verify(&mechanism, public, MESSAGE, &sig)
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
}

/// A generated pair with CKA_SENSITIVE false and CKA_EXTRACTABLE true
/// shows its parts (right ones: OpenSSL checks them); a default pair is
/// sensitive, unextractable, always sensitive and never extractable.
fn generated_pairs_show_parts_when_asked(which: Which) {
    let m = load(which);
    let session = user_session(&m, "parts");
    let dir = tempfile::tempdir().unwrap();
    let open = [Attribute::Sensitive(false), Attribute::Extractable(true)];
    for token in [true, false] {
        let (_, rsa) = pair(&session, "rsa", token, &open);
        assert!(!flag(&session, rsa, AttributeType::Sensitive));
        assert!(!flag(&session, rsa, AttributeType::AlwaysSensitive));
        assert!(!flag(&session, rsa, AttributeType::NeverExtractable));
        let path = dir.path().join("rsa.der");
        std::fs::write(&path, rsa_private_der(&session, rsa)).unwrap();
        let check = openssl(&[
            "rsa",
            "-inform",
            "DER",
            "-in",
            path.to_str().unwrap(),
            "-check",
            "-noout",
        ]);
        assert!(String::from_utf8_lossy(&check).contains("RSA key ok"));

        let (public, ec) = pair(&session, "p256", token, &open);
        let scalar = bytes(&session, ec, AttributeType::Value);
        assert_eq!(scalar.len(), 32, "token {token}");
        let point = bytes(&session, public, AttributeType::EcPoint);
        assert_eq!(
            point[2..],
            p256_point_of(&scalar, dir.path()),
            "token {token}"
        );
    }
    // The defaults: nothing readable, and the history says so.
    // (SoftHSM's default CKA_SENSITIVE is false: it is given here.)
    let sensitive = if which == Which::SoftHsm {
        vec![Attribute::Sensitive(true)]
    } else {
        Vec::new()
    };
    let (_, sealed) = pair(&session, "rsa", true, &sensitive);
    assert!(bytes(&session, sealed, AttributeType::PrivateExponent).is_empty());
    assert!(flag(&session, sealed, AttributeType::Sensitive));
    assert!(!flag(&session, sealed, AttributeType::Extractable));
    assert!(flag(&session, sealed, AttributeType::AlwaysSensitive));
    assert!(flag(&session, sealed, AttributeType::NeverExtractable));
    // Sensitive but extractable: wrappable, never readable.
    let (_, wrappable) = pair(
        &session,
        "p256",
        true,
        &[Attribute::Extractable(true), Attribute::Sensitive(true)],
    );
    assert!(bytes(&session, wrappable, AttributeType::Value).is_empty());
    assert!(flag(&session, wrappable, AttributeType::AlwaysSensitive));
    assert!(!flag(&session, wrappable, AttributeType::NeverExtractable));
    // Not sensitive but not extractable: still unreadable (section 4.9).
    let (_, locked) = pair(&session, "p256", true, &[Attribute::Sensitive(false)]);
    assert!(bytes(&session, locked, AttributeType::Value).is_empty());
}

/// An extractable private key wraps as PKCS#8 under AES-KWP: OpenSSL
/// unwraps it and signs with it, the token's public key verifies; the
/// same bytes unwrap back into a key that signs. AES-KW wraps it when its
/// length is a multiple of 8 (CKR_KEY_SIZE_RANGE else). An unextractable
/// key does not wrap.
fn extractable_private_keys_wrap_as_pkcs8(which: Which) {
    let m = load(which);
    let session = user_session(&m, "wrap-out");
    let dir = tempfile::tempdir().unwrap();
    let kek = kek(&session);
    // SoftHSM 2.6 does not unwrap Ed25519 PKCS#8.
    let kinds: &[&str] = if which == Which::SoftHsm {
        &["rsa", "p256"]
    } else {
        &["rsa", "p256", "ed25519"]
    };
    for (i, kind) in kinds.iter().enumerate() {
        let token = i % 2 == 0;
        let (public, private) = pair(&session, kind, token, &[Attribute::Extractable(true)]);
        let wrapped = session
            .wrap_key(&Mechanism::AesKeyWrapPad, kek, private)
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let pkcs8 = openssl_unwrap(&wrapped, true, dir.path());
        openssl_signs_token_verifies(&session, public, kind, &pkcs8, dir.path());
        // Round trip: the wrapped key unwraps into a key that signs.
        let key_type = match *kind {
            "rsa" => KeyType::RSA,
            "p256" => KeyType::EC,
            _ => KeyType::EC_EDWARDS,
        };
        let back = session
            .unwrap_key(
                &Mechanism::AesKeyWrapPad,
                kek,
                &wrapped,
                &[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::KeyType(key_type),
                    Attribute::Token(false),
                    Attribute::Private(true),
                    Attribute::Sign(true),
                ],
            )
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let (mechanism, input) = match *kind {
            "rsa" => (Mechanism::Sha256RsaPkcs, MESSAGE.to_vec()),
            "p256" => (
                Mechanism::Ecdsa,
                ring::digest::digest(&ring::digest::SHA256, MESSAGE)
                    .as_ref()
                    .to_vec(),
            ),
            _ => (
                Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                MESSAGE.to_vec(),
            ),
        };
        let sig = session.sign(&mechanism, back, &input).unwrap();
        session.verify(&mechanism, public, &input, &sig).unwrap();
        // RFC 3394 needs a multiple of 8 bytes.
        let kw = session.wrap_key(&Mechanism::AesKeyWrap, kek, private);
        if pkcs8.len().is_multiple_of(8) {
            assert_eq!(openssl_unwrap(&kw.unwrap(), false, dir.path()), pkcs8);
        } else {
            assert_eq!(rv(kw), RvError::KeySizeRange, "{kind}");
        }
        // An unextractable key stays in.
        let (_, sealed) = pair(&session, kind, token, &[]);
        assert_eq!(
            rv(session.wrap_key(&Mechanism::AesKeyWrapPad, kek, sealed)),
            RvError::KeyUnextractable,
            "{kind}"
        );
    }
}

/// AES-KW of an X25519 key (its RFC 8410 PKCS#8 is 48 bytes), unwrapped
/// by OpenSSL into the same key (SoftHSM 2.6 has no X25519).
fn x25519_wraps_under_aes_kw(which: Which) {
    let m = load(which);
    let session = user_session(&m, "wrap-kw");
    let dir = tempfile::tempdir().unwrap();
    let kek = kek(&session);
    let (public, private) = pair(&session, "x25519", true, &[Attribute::Extractable(true)]);
    let wrapped = session
        .wrap_key(&Mechanism::AesKeyWrap, kek, private)
        .unwrap();
    let pkcs8 = openssl_unwrap(&wrapped, false, dir.path());
    assert_eq!(pkcs8.len(), 48);
    let path = dir.path().join("x.der");
    std::fs::write(&path, &pkcs8).unwrap();
    let spki = openssl(&[
        "pkey",
        "-inform",
        "DER",
        "-in",
        path.to_str().unwrap(),
        "-pubout",
        "-outform",
        "DER",
    ]);
    let point = bytes(&session, public, AttributeType::EcPoint);
    assert!(point.ends_with(&spki[spki.len() - 32..]));
    // Under an RSA key a private key does not wrap (too long).
    let (rsa_public, _) = session
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(false),
                Attribute::ModulusBits(2048.into()),
                Attribute::Wrap(true),
            ],
            &[Attribute::Token(false), Attribute::Unwrap(true)],
        )
        .unwrap();
    assert_eq!(
        rv(session.wrap_key(&Mechanism::RsaPkcs, rsa_public, private)),
        RvError::KeyNotWrappable
    );
}

/// CKA_SENSITIVE goes false to true only, CKA_EXTRACTABLE true to false
/// only; CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE cannot be set and
/// keep the key's history; a key sealed is sealed in the backend too.
fn flags_only_tighten(which: Which) {
    let m = load(which);
    let session = user_session(&m, "tighten");
    let kek = kek(&session);
    for token in [true, false] {
        let (_, key) = pair(
            &session,
            "p256",
            token,
            &[Attribute::Sensitive(false), Attribute::Extractable(true)],
        );
        assert_eq!(bytes(&session, key, AttributeType::Value).len(), 32);
        for read_only in [
            Attribute::AlwaysSensitive(true),
            Attribute::NeverExtractable(true),
        ] {
            assert_eq!(
                rv(session.update_attributes(key, std::slice::from_ref(&read_only))),
                RvError::AttributeReadOnly,
                "{read_only:?}"
            );
        }
        session
            .update_attributes(key, &[Attribute::Sensitive(true)])
            .unwrap();
        assert!(bytes(&session, key, AttributeType::Value).is_empty());
        assert!(!flag(&session, key, AttributeType::AlwaysSensitive));
        assert_eq!(
            rv(session.update_attributes(key, &[Attribute::Sensitive(false)])),
            RvError::AttributeReadOnly
        );
        // Still extractable: wraps.
        session
            .wrap_key(&Mechanism::AesKeyWrapPad, kek, key)
            .unwrap();
        session
            .update_attributes(key, &[Attribute::Extractable(false)])
            .unwrap();
        assert_eq!(
            rv(session.wrap_key(&Mechanism::AesKeyWrapPad, kek, key)),
            RvError::KeyUnextractable
        );
        assert_eq!(
            rv(session.update_attributes(key, &[Attribute::Extractable(true)])),
            RvError::AttributeReadOnly
        );
        assert!(!flag(&session, key, AttributeType::NeverExtractable));
    }
}

/// C_CreateObject of a private key with CKA_SENSITIVE false and
/// CKA_EXTRACTABLE true: its parts read back as given; never "always
/// sensitive" nor "never extractable".
fn imported_keys_show_parts_when_asked(which: Which) {
    let m = load(which);
    let session = user_session(&m, "import-open");
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("rsa.raw.der");
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-outform",
        "DER",
        "-out",
        raw.to_str().unwrap(),
    ]);
    // The traditional RSAPrivateKey: version, n, e, d, p, q, dP, dQ, qInv.
    let der = std::fs::read(&raw).unwrap();
    let mut ints = Vec::new();
    let mut rest = &der[4..];
    while !rest.is_empty() {
        let (len, skip) = match rest[1] {
            n if n < 0x80 => (n as usize, 2),
            0x81 => (rest[2] as usize, 3),
            _ => (((rest[2] as usize) << 8) | rest[3] as usize, 4),
        };
        let v = &rest[skip..skip + len];
        let v = if v.len() > 1 && v[0] == 0 { &v[1..] } else { v };
        ints.push(v.to_vec());
        rest = &rest[skip + len..];
    }
    let key = session
        .create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sign(true),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
            Attribute::Modulus(ints[1].clone()),
            Attribute::PublicExponent(ints[2].clone()),
            Attribute::PrivateExponent(ints[3].clone()),
            Attribute::Prime1(ints[4].clone()),
            Attribute::Prime2(ints[5].clone()),
            Attribute::Exponent1(ints[6].clone()),
            Attribute::Exponent2(ints[7].clone()),
            Attribute::Coefficient(ints[8].clone()),
        ])
        .unwrap();
    for (t, i) in [
        (AttributeType::PrivateExponent, 3),
        (AttributeType::Prime1, 4),
        (AttributeType::Prime2, 5),
        (AttributeType::Exponent1, 6),
        (AttributeType::Exponent2, 7),
        (AttributeType::Coefficient, 8),
    ] {
        assert_eq!(bytes(&session, key, t), ints[i], "{t}");
    }
    assert!(!flag(&session, key, AttributeType::AlwaysSensitive));
    assert!(!flag(&session, key, AttributeType::NeverExtractable));
}

/// A session pair made readable and extractable, copied to the token
/// with CKA_SENSITIVE true and CKA_EXTRACTABLE false: the copy shows
/// nothing and does not wrap; the session original still does both.
fn copies_keep_or_tighten_rights(which: Which) {
    let m = load(which);
    let session = user_session(&m, "copy-rights");
    let kek = kek(&session);
    let (_, original) = pair(
        &session,
        "p256",
        false,
        &[Attribute::Sensitive(false), Attribute::Extractable(true)],
    );
    let tight = session
        .copy_object(
            original,
            &[
                Attribute::Token(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
            ],
        )
        .unwrap();
    assert!(bytes(&session, tight, AttributeType::Value).is_empty());
    assert_eq!(
        rv(session.wrap_key(&Mechanism::AesKeyWrapPad, kek, tight)),
        RvError::KeyUnextractable
    );
    assert_eq!(bytes(&session, original, AttributeType::Value).len(), 32);
    session
        .wrap_key(&Mechanism::AesKeyWrapPad, kek, original)
        .unwrap();
    // A copy keeps the rights it is not asked to give up.
    let open = session
        .copy_object(original, &[Attribute::Token(false)])
        .unwrap();
    assert_eq!(bytes(&session, open, AttributeType::Value).len(), 32);
}

/// CKA_WRAP_WITH_TRUSTED: such a key wraps only under a key the SO marked
/// CKA_TRUSTED, and the flag cannot be cleared.
fn wrap_with_trusted_is_honoured(which: Which) {
    use cryptoki::session::UserType;
    use cryptoki::types::AuthPin;
    let m = load(which);
    let session = user_session(&m, "trusted");
    let kek = session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Wrap(true),
            Attribute::Value(KEK.to_vec()),
        ])
        .unwrap();
    let (_, key) = pair(
        &session,
        "p256",
        true,
        &[
            Attribute::Extractable(true),
            Attribute::Sensitive(true),
            Attribute::WrapWithTrusted(true),
        ],
    );
    assert_eq!(
        rv(session.wrap_key(&Mechanism::AesKeyWrapPad, kek, key)),
        RvError::KeyNotWrappable
    );
    assert_eq!(
        rv(session.update_attributes(key, &[Attribute::WrapWithTrusted(false)])),
        RvError::AttributeReadOnly
    );
    if which == Which::SoftHsm {
        // SoftHSM 2.6 refuses CKA_TRUSTED in C_SetAttributeValue, even
        // from the SO (CKR_ATTRIBUTE_READ_ONLY).
        return;
    }
    // The SO marks the wrapping key trusted.
    session.logout().unwrap();
    session
        .login(UserType::So, Some(&AuthPin::new(common::SO_PIN.into())))
        .unwrap();
    session
        .update_attributes(kek, &[Attribute::Trusted(true)])
        .unwrap();
    session.logout().unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(common::USER_PIN.into())))
        .unwrap();
    session
        .wrap_key(&Mechanism::AesKeyWrapPad, kek, key)
        .unwrap();
}

/// Reading a token private key's parts and wrapping it under a token key
/// each leave a record naming the key; the parts and the wrapped bytes are
/// nowhere in the log.
fn reads_and_wraps_are_audited(which: Which) {
    let m = load(which);
    let session = user_session(&m, "audited-export");
    let (_, key) = pair(
        &session,
        "rsa",
        true,
        &[Attribute::Sensitive(false), Attribute::Extractable(true)],
    );
    let kek = session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(true),
                Attribute::ValueLen(32.into()),
                Attribute::Wrap(true),
            ],
        )
        .unwrap();
    let d = bytes(&session, key, AttributeType::PrivateExponent);
    let p = bytes(&session, key, AttributeType::Prime1);
    let wrapped = session
        .wrap_key(&Mechanism::AesKeyWrapPad, kek, key)
        .unwrap();
    drop(session);
    let (records, text) = common::exported_pkcs11_records(&m);
    let names: Vec<&str> = records
        .iter()
        .map(|r| r["eventName"].as_str().unwrap())
        .collect();
    // cryptoki asks each part's length, then its value: a private key's
    // length query reads the part too, and is recorded like the read.
    assert_eq!(
        names,
        [
            "C_GenerateKeyPair",
            "C_GenerateKey",
            "C_GetAttributeValue",
            "C_GetAttributeValue",
            "C_GetAttributeValue",
            "C_GetAttributeValue",
            "C_WrapKey"
        ],
        "{records:#?}"
    );
    let arn = |i: usize| records[i]["resources"][0]["ARN"].as_str().unwrap();
    for i in 2..6 {
        assert_eq!(arn(i), arn(0));
    }
    assert_eq!(arn(6), arn(1), "the wrapping key");
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    for secret in [&d, &p, &wrapped] {
        assert!(!text.to_lowercase().contains(&hex(&secret[..16])));
    }
}

with_keys!(
    copies_keep_or_tighten_rights,
    wrap_with_trusted_is_honoured,
    generated_pairs_show_parts_when_asked,
    extractable_private_keys_wrap_as_pkcs8,
    flags_only_tighten,
    imported_keys_show_parts_when_asked,
);
ours_only_embedded!(x25519_wraps_under_aes_kw, reads_and_wraps_are_audited);
