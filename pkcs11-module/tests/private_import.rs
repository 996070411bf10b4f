//! Private keys brought in from outside: C_CreateObject of RSA (with its
//! CRT parts), EC P-256/384/521 and Ed25519 private keys made by OpenSSL,
//! C_UnwrapKey of their PKCS#8 under AES-KWP (wrapped by `openssl enc
//! -id-aes256-wrap-pad`) and under RSA-OAEP / RSA PKCS#1 v1.5 (encrypted by
//! `openssl pkeyutl`), and C_WrapKey / C_UnwrapKey of secret keys under RSA
//! key pairs. Each imported key signs, and OpenSSL verifies the signature
//! with the public key of the very key it made. SoftHSM2 is the control
//! where it has the case.

mod common;

use std::path::Path;
use std::process::Command;

use common::{load, rv, user_session, Which};
use cryptoki::error::RvError;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const MESSAGE: &[u8] = b"a message signed by an imported key";

/// A key OpenSSL made: its kind, PKCS#8 DER and public PEM.
struct Made {
    kind: &'static str,
    pkcs8: Vec<u8>,
    public_pem: std::path::PathBuf,
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Makes a key with OpenSSL in `dir` ("rsa", "p256", "p384", "p521",
/// "ed25519").
fn make(dir: &Path, kind: &'static str) -> Made {
    let der = dir.join(format!("{kind}.der"));
    let raw = dir.join(format!("{kind}.raw.der"));
    let pem = dir.join(format!("{kind}.pub.pem"));
    let mut args = vec!["genpkey", "-outform", "DER", "-out", raw.to_str().unwrap()];
    match kind {
        "rsa" => args.extend(["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
        "p256" => args.extend(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
        "p384" => args.extend(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]),
        "p521" => args.extend(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"]),
        _ => args.extend(["-algorithm", "ED25519"]),
    }
    openssl(&args);
    // genpkey writes RSA and EC keys in their traditional form: PKCS#8.
    openssl(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-inform",
        "DER",
        "-outform",
        "DER",
        "-in",
        raw.to_str().unwrap(),
        "-out",
        der.to_str().unwrap(),
    ]);
    openssl(&[
        "pkey",
        "-inform",
        "DER",
        "-in",
        der.to_str().unwrap(),
        "-pubout",
        "-out",
        pem.to_str().unwrap(),
    ]);
    Made {
        kind,
        pkcs8: std::fs::read(&der).unwrap(),
        public_pem: pem,
    }
}

/// One DER element: (tag, contents, rest).
fn der(input: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = input[0];
    let (len, rest) = match input[1] {
        n if n < 0x80 => (n as usize, &input[2..]),
        n => {
            let k = (n & 0x7f) as usize;
            let len = input[2..2 + k]
                .iter()
                .fold(0usize, |a, b| (a << 8) | *b as usize);
            (len, &input[2 + k..])
        }
    };
    (tag, &rest[..len], &rest[len..])
}

/// The PKCS#8 privateKey OCTET STRING's contents.
fn private_key_field(pkcs8: &[u8]) -> &[u8] {
    let (_, info, _) = der(pkcs8);
    let (_, _version, rest) = der(info);
    let (_, _algorithm, rest) = der(rest);
    let (tag, key, _) = der(rest);
    assert_eq!(tag, 0x04);
    key
}

/// The C_CreateObject template of a key OpenSSL made.
fn template(made: &Made) -> Vec<Attribute> {
    let mut t = vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sign(true),
        // SoftHSM's default is false; this token's is true.
        Attribute::Sensitive(true),
        Attribute::Id(made.kind.as_bytes().to_vec()),
    ];
    let key = private_key_field(&made.pkcs8);
    match made.kind {
        "rsa" => {
            let (_, seq, _) = der(key);
            let mut ints = Vec::new();
            let mut rest = seq;
            while !rest.is_empty() {
                let (_, v, r) = der(rest);
                ints.push(v.to_vec());
                rest = r;
            }
            t.push(Attribute::KeyType(KeyType::RSA));
            t.push(Attribute::Modulus(ints[1].clone()));
            t.push(Attribute::PublicExponent(ints[2].clone()));
            t.push(Attribute::PrivateExponent(ints[3].clone()));
            t.push(Attribute::Prime1(ints[4].clone()));
            t.push(Attribute::Prime2(ints[5].clone()));
            t.push(Attribute::Exponent1(ints[6].clone()));
            t.push(Attribute::Exponent2(ints[7].clone()));
            t.push(Attribute::Coefficient(ints[8].clone()));
        }
        "ed25519" => {
            let (_, seed, _) = der(key);
            t.push(Attribute::KeyType(KeyType::EC_EDWARDS));
            t.push(Attribute::EcParams(ED25519.to_vec()));
            t.push(Attribute::Value(seed.to_vec()));
        }
        curve => {
            let (_, ec, _) = der(key);
            let (_, _version, rest) = der(ec);
            let (_, d, _) = der(rest);
            t.push(Attribute::KeyType(KeyType::EC));
            t.push(Attribute::EcParams(
                match curve {
                    "p256" => P256,
                    "p384" => P384,
                    _ => P521,
                }
                .to_vec(),
            ));
            t.push(Attribute::Value(d.to_vec()));
        }
    }
    t
}

/// Signs MESSAGE with `key` and has OpenSSL verify it with the public key
/// of the key it made.
fn signs_for_openssl(session: &Session, key: ObjectHandle, made: &Made, dir: &Path) {
    // CKM_ECDSA over a digest made here (SoftHSM has no CKM_ECDSA_SHA*).
    let (mechanism, digest, input) = match made.kind {
        "rsa" => (Mechanism::Sha256RsaPkcs, "-sha256", MESSAGE.to_vec()),
        "p256" => (Mechanism::Ecdsa, "-sha256", sha(&ring::digest::SHA256)),
        "p384" => (Mechanism::Ecdsa, "-sha384", sha(&ring::digest::SHA384)),
        "p521" => (Mechanism::Ecdsa, "-sha512", sha(&ring::digest::SHA512)),
        _ => (
            Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            "",
            MESSAGE.to_vec(),
        ),
    };
    let mut sig = session
        .sign(&mechanism, key, &input)
        .unwrap_or_else(|e| panic!("{}: {e}", made.kind));
    if made.kind.starts_with('p') {
        // r || s to a DER ECDSA-Sig-Value.
        let half = sig.len() / 2;
        let body = [
            common::der_uint(&sig[..half]),
            common::der_uint(&sig[half..]),
        ]
        .concat();
        sig = common::der(0x30, &body);
    }
    let msg = dir.join("msg");
    let sig_path = dir.join("sig");
    std::fs::write(&msg, MESSAGE).unwrap();
    std::fs::write(&sig_path, &sig).unwrap();
    let pem = made.public_pem.to_str().unwrap();
    if made.kind == "ed25519" {
        openssl(&[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            pem,
            "-rawin",
            "-in",
            msg.to_str().unwrap(),
            "-sigfile",
            sig_path.to_str().unwrap(),
        ]);
    } else {
        openssl(&[
            "dgst",
            digest,
            "-verify",
            pem,
            "-signature",
            sig_path.to_str().unwrap(),
            msg.to_str().unwrap(),
        ]);
    }
}

fn sha(alg: &'static ring::digest::Algorithm) -> Vec<u8> {
    ring::digest::digest(alg, MESSAGE).as_ref().to_vec()
}

const KINDS: [&str; 5] = ["rsa", "p256", "p384", "p521", "ed25519"];

fn creates_private_keys_that_sign(which: Which) {
    let m = load(which);
    let session = user_session(&m, "import");
    let dir = tempfile::tempdir().unwrap();
    for kind in KINDS {
        let made = make(dir.path(), kind);
        let key = session
            .create_object(&template(&made))
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        signs_for_openssl(&session, key, &made, dir.path());
        // Found again by its id; the secret parts never come back.
        let found = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Id(kind.as_bytes().to_vec()),
            ])
            .unwrap();
        assert_eq!(found, vec![key], "{kind}");
        let secret = if kind == "rsa" {
            AttributeType::PrivateExponent
        } else {
            AttributeType::Value
        };
        let attrs = session
            .get_attributes(
                key,
                &[
                    AttributeType::Local,
                    AttributeType::Sensitive,
                    AttributeType::AlwaysSensitive,
                ],
            )
            .unwrap();
        assert!(
            attrs.contains(&Attribute::Local(false)) && attrs.contains(&Attribute::Sensitive(true)),
            "{kind}: {attrs:?}"
        );
        assert!(
            attrs.contains(&Attribute::AlwaysSensitive(false)),
            "{kind}: {attrs:?}"
        );
        match session.get_attributes(key, &[secret]) {
            // cryptoki reports a sensitive attribute as absent.
            Ok(v) => assert!(v.is_empty(), "{kind}: {v:?}"),
            Err(e) => panic!("{kind}: {e}"),
        }
    }
}

/// Templates the token refuses: a missing part, inconsistent CRT parts,
/// usages the type cannot have, an unknown curve.
fn refuses_bad_private_templates(which: Which) {
    let m = load(which);
    let session = user_session(&m, "import");
    let dir = tempfile::tempdir().unwrap();
    let rsa = make(dir.path(), "rsa");
    let mut t = template(&rsa);
    t.retain(|a| a.attribute_type() != AttributeType::Prime2);
    assert_eq!(rv(session.create_object(&t)), RvError::TemplateIncomplete);
    let mut t = template(&rsa);
    for a in t.iter_mut() {
        if let Attribute::Prime1(p) = a {
            let last = p.len() - 1;
            p[last] ^= 2;
        }
    }
    assert_eq!(rv(session.create_object(&t)), RvError::TemplateInconsistent);
    let p256 = make(dir.path(), "p256");
    let mut t = template(&p256);
    t.push(Attribute::Decrypt(true));
    assert_eq!(rv(session.create_object(&t)), RvError::TemplateInconsistent);
    let mut t = template(&p256);
    t.push(Attribute::AlwaysAuthenticate(true));
    assert_eq!(rv(session.create_object(&t)), RvError::TemplateInconsistent);
    let mut t = template(&p256);
    for a in t.iter_mut() {
        if let Attribute::EcParams(p) = a {
            *p = vec![0x06, 0x03, 0x2b, 0x65, 0x6f];
        }
    }
    assert_eq!(rv(session.create_object(&t)), RvError::CurveNotSupported);
    // A scalar that is not on the curve's range (all ones, 32 bytes).
    let mut t = template(&p256);
    for a in t.iter_mut() {
        if let Attribute::Value(v) = a {
            *v = vec![0xff; 32];
        }
    }
    assert_eq!(rv(session.create_object(&t)), RvError::TemplateInconsistent);
    // A read-only session cannot make a token key.
    let slot = session.get_session_info().unwrap().slot_id();
    let ro = m.p11.open_ro_session(slot).unwrap();
    assert_eq!(
        rv(ro.create_object(&template(&p256))),
        RvError::SessionReadOnly
    );
}

/// An AES-256 key of a known value that may unwrap.
fn known_kek(session: &Session, value: &[u8]) -> ObjectHandle {
    session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Unwrap(true),
            Attribute::Value(value.to_vec()),
        ])
        .unwrap()
}

fn unwrap_template(made: &Made) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(match made.kind {
            "rsa" => KeyType::RSA,
            "ed25519" => KeyType::EC_EDWARDS,
            _ => KeyType::EC,
        }),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sign(true),
    ]
}

fn unwraps_pkcs8_under_aes_kwp(which: Which) {
    let m = load(which);
    let session = user_session(&m, "unwrap");
    let dir = tempfile::tempdir().unwrap();
    let kek_value: Vec<u8> = (0u8..32).collect();
    let kek = known_kek(&session, &kek_value);
    let hex: String = kek_value.iter().map(|b| format!("{b:02x}")).collect();
    for kind in KINDS {
        if which == Which::SoftHsm && kind == "ed25519" {
            // SoftHSM 2.6 does not unwrap Ed25519 PKCS#8 (CKR_FUNCTION_FAILED).
            continue;
        }
        let made = make(dir.path(), kind);
        let plain = dir.path().join(format!("{kind}.der"));
        let wrapped = openssl(&[
            "enc",
            "-id-aes256-wrap-pad",
            "-K",
            &hex,
            "-iv",
            "A65959A6",
            "-in",
            plain.to_str().unwrap(),
        ]);
        let key = session
            .unwrap_key(
                &Mechanism::AesKeyWrapPad,
                kek,
                &wrapped,
                &unwrap_template(&made),
            )
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        signs_for_openssl(&session, key, &made, dir.path());
        // A wrapped key that was tampered with does not unwrap.
        let mut bad = wrapped.clone();
        bad[5] ^= 1;
        let refused = rv(session.unwrap_key(
            &Mechanism::AesKeyWrapPad,
            kek,
            &bad,
            &unwrap_template(&made),
        ));
        // SoftHSM answers CKR_GENERAL_ERROR.
        if which != Which::SoftHsm {
            assert_eq!(refused, RvError::WrappedKeyInvalid, "{kind}");
        }
    }
}

/// An RSA-2048 token pair that wraps and unwraps, and its public key as
/// PEM for OpenSSL.
fn rsa_transport_pair(session: &Session, dir: &Path) -> (ObjectHandle, ObjectHandle, String) {
    let (public, private) = session
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::ModulusBits(2048.into()),
                Attribute::Wrap(true),
                Attribute::Encrypt(true),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Unwrap(true),
                Attribute::Decrypt(true),
            ],
        )
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
    let rsa_public = common::der(0x30, &[common::der_uint(&n), common::der_uint(&e)].concat());
    let algorithm = hex_bytes("300d06092a864886f70d0101010500");
    let mut bits = vec![0u8];
    bits.extend(rsa_public);
    let spki = common::der(0x30, &[algorithm, common::der(0x03, &bits)].concat());
    let der_path = dir.join("transport.pub.der");
    std::fs::write(&der_path, spki).unwrap();
    let pem = dir.join("transport.pub.pem");
    openssl(&[
        "pkey",
        "-pubin",
        "-inform",
        "DER",
        "-in",
        der_path.to_str().unwrap(),
        "-out",
        pem.to_str().unwrap(),
    ]);
    (public, private, pem.to_str().unwrap().to_string())
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn oaep_sha256() -> Mechanism<'static> {
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    ))
}

fn oaep_sha1() -> Mechanism<'static> {
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA1,
        PkcsMgfType::MGF1_SHA1,
        PkcsOaepSource::empty(),
    ))
}

/// OpenSSL encrypts `file` to the PEM public key with `padding`.
fn openssl_encrypt(pem: &str, file: &Path, oaep_sha256: Option<bool>) -> Vec<u8> {
    let mut args = vec![
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        pem,
        "-in",
        file.to_str().unwrap(),
    ];
    match oaep_sha256 {
        Some(true) => args.extend([
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            "rsa_oaep_md:sha256",
            "-pkeyopt",
            "rsa_mgf1_md:sha256",
        ]),
        Some(false) => args.extend(["-pkeyopt", "rsa_padding_mode:oaep"]),
        None => args.extend(["-pkeyopt", "rsa_padding_mode:pkcs1"]),
    }
    openssl(&args)
}

/// PKCS#8 keys encrypted by OpenSSL to a token RSA pair unwrap into keys
/// that sign (SoftHSM 2.6 unwraps only secret keys with RSA).
fn unwraps_pkcs8_under_rsa(which: Which) {
    let m = load(which);
    let session = user_session(&m, "rsa-unwrap");
    let dir = tempfile::tempdir().unwrap();
    let (_, private, pem) = rsa_transport_pair(&session, dir.path());
    for (kind, how) in [
        ("p256", Some(true)),
        ("ed25519", Some(false)),
        ("p384", None),
    ] {
        let made = make(dir.path(), kind);
        let wrapped = openssl_encrypt(&pem, &dir.path().join(format!("{kind}.der")), how);
        let mechanism = match how {
            Some(true) => oaep_sha256(),
            Some(false) => oaep_sha1(),
            None => Mechanism::RsaPkcs,
        };
        let key = session
            .unwrap_key(&mechanism, private, &wrapped, &unwrap_template(&made))
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        signs_for_openssl(&session, key, &made, dir.path());
        // The template's type must be the key's.
        let mut wrong = unwrap_template(&made);
        wrong[1] = Attribute::KeyType(KeyType::RSA);
        assert_eq!(
            rv(session.unwrap_key(&mechanism, private, &wrapped, &wrong)),
            RvError::WrappedKeyInvalid,
            "{kind}"
        );
    }
}

fn aes_value_key(session: &Session, value: &[u8]) -> ObjectHandle {
    session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Encrypt(true),
            Attribute::Extractable(true),
            Attribute::Value(value.to_vec()),
        ])
        .unwrap()
}

fn ecb(session: &Session, key: ObjectHandle) -> Vec<u8> {
    session
        .encrypt(&Mechanism::AesEcb, key, &[0x5a; 16])
        .unwrap()
}

/// C_WrapKey / C_UnwrapKey of an AES key under an RSA pair, both ways with
/// OpenSSL: the token's wrap round-trips, and a key OpenSSL encrypted to
/// the token's public key unwraps to the same key.
fn wraps_secret_keys_under_rsa(which: Which) {
    let m = load(which);
    let session = user_session(&m, "rsa-wrap");
    let dir = tempfile::tempdir().unwrap();
    let (public, private, pem) = rsa_transport_pair(&session, dir.path());
    let value: Vec<u8> = (100u8..116).collect();
    let aes = aes_value_key(&session, &value);
    let expected = ecb(&session, aes);
    let value_path = dir.path().join("aes.key");
    std::fs::write(&value_path, &value).unwrap();
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(false),
        Attribute::Encrypt(true),
    ];
    let mut mechanisms = vec![(oaep_sha1(), Some(false)), (Mechanism::RsaPkcs, None)];
    if which != Which::SoftHsm {
        // SoftHSM 2.6 wraps with OAEP SHA-1 only.
        mechanisms.push((oaep_sha256(), Some(true)));
    }
    for (mechanism, how) in mechanisms {
        let wrapped = session.wrap_key(&mechanism, public, aes).unwrap();
        assert_eq!(wrapped.len(), 256);
        let back = session
            .unwrap_key(&mechanism, private, &wrapped, &template)
            .unwrap();
        assert_eq!(ecb(&session, back), expected, "{how:?}");
        let theirs = openssl_encrypt(&pem, &value_path, how);
        let back = session
            .unwrap_key(&mechanism, private, &theirs, &template)
            .unwrap();
        assert_eq!(ecb(&session, back), expected, "{how:?}");
    }
    // A key that is not extractable is not wrapped.
    let fixed = session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Extractable(false),
            Attribute::Value(value.clone()),
        ])
        .unwrap();
    assert_eq!(
        rv(session.wrap_key(&oaep_sha1(), public, fixed)),
        RvError::KeyUnextractable
    );
    if which == Which::SoftHsm {
        // SoftHSM answers the case below with CKR_GENERAL_ERROR.
        return;
    }
    // A pair that may not unwrap does not.
    let (_, signer) = session
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[Attribute::Token(false), Attribute::ModulusBits(2048.into())],
            &[Attribute::Token(false), Attribute::Sign(true)],
        )
        .unwrap();
    let wrapped = session.wrap_key(&oaep_sha1(), public, aes).unwrap();
    assert_eq!(
        rv(session.unwrap_key(&oaep_sha1(), signer, &wrapped, &template)),
        RvError::KeyFunctionNotPermitted
    );
}

/// C_GetMechanismInfo says RSA PKCS#1 v1.5 and OAEP wrap and unwrap.
fn mechanism_info_says_rsa_wraps(which: Which) {
    let m = load(which);
    let slot = m.token("info");
    for mech in [MechanismType::RSA_PKCS, MechanismType::RSA_PKCS_OAEP] {
        let info = m.p11.get_mechanism_info(slot, mech).unwrap();
        assert!(info.wrap() && info.unwrap(), "{mech}: {info:?}");
    }
}

with_keys!(
    creates_private_keys_that_sign,
    unwraps_pkcs8_under_aes_kwp,
    wraps_secret_keys_under_rsa,
    mechanism_info_says_rsa_wraps,
);
ours_only_embedded!(refuses_bad_private_templates, unwraps_pkcs8_under_rsa);
