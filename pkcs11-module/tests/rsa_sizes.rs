//! RSA key sizes through PKCS#11 (issue 12, "Key sizes"): every modulus
//! from 1024 to 8192 bits. 1024-bit keys for legacy fixtures and sizes
//! between the usual ones (1536, 2560, 2049) are generated, imported from
//! OpenSSL (C_CreateObject with CRT parts, C_UnwrapKey under AES-KWP), sign
//! PKCS#1 v1.5 and PSS and decrypt PKCS#1 v1.5 and OAEP, OpenSSL checking
//! every signature and making every ciphertext; sizes outside what the
//! mechanism information advertises are CKR_KEY_SIZE_RANGE; pkcs11-tool
//! makes an rsa:1024 pair; over the daemon, the KMS API shows an RSA_1024
//! key without algorithms and CreateKey refuses the spec. SoftHSM2 is the
//! control where it has the case.

mod common;

use std::path::Path;

use common::openssl::{openssl, openssl_ok, rsa_public_pem};
use common::{load, rv, user_session, Which};
use cryptoki::error::RvError;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

const MESSAGE: &[u8] = b"a legacy fixture signs with RSA-1024";

/// A token pair of `bits` that signs, verifies, encrypts and decrypts.
fn pair(session: &Session, bits: u64) -> cryptoki::error::Result<(ObjectHandle, ObjectHandle)> {
    session.generate_key_pair(
        &Mechanism::RsaPkcsKeyPairGen,
        &[
            Attribute::Token(true),
            Attribute::ModulusBits(bits.into()),
            Attribute::Verify(true),
            Attribute::Encrypt(true),
        ],
        &[
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sign(true),
            Attribute::Decrypt(true),
        ],
    )
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

/// Whether OpenSSL verifies `sig` over MESSAGE with `pem` (SHA-256, and
/// PSS with a 32-byte salt when `pss`).
fn openssl_verifies(dir: &Path, pem: &Path, pss: bool, sig: &[u8]) -> bool {
    let msg = write(dir, "msg", MESSAGE);
    let sig = write(dir, "sig", sig);
    let mut args = vec!["dgst", "-sha256", "-verify", pem.to_str().unwrap()];
    if pss {
        args.extend([
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:32",
        ]);
    }
    args.extend(["-signature", &sig, &msg]);
    openssl_ok(&args)
}

/// `plain` encrypted by OpenSSL with `pem` and the padding options.
fn openssl_encrypts(dir: &Path, pem: &Path, opts: &[&str], plain: &[u8]) -> Vec<u8> {
    let input = write(dir, "plain", plain);
    let mut args = vec![
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        pem.to_str().unwrap(),
    ];
    for o in opts {
        args.extend(["-pkeyopt", o]);
    }
    args.extend(["-in", &input]);
    openssl(&args)
}

fn oaep(hash: MechanismType, mgf: PkcsMgfType) -> Mechanism<'static> {
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(hash, mgf, PkcsOaepSource::empty()))
}

fn pss() -> Mechanism<'static> {
    Mechanism::Sha256RsaPkcsPss(PkcsPssParams {
        hash_alg: MechanismType::SHA256,
        mgf: PkcsMgfType::MGF1_SHA256,
        s_len: 32u64.into(),
    })
}

/// Signs (PKCS#1 v1.5 SHA-256, PSS SHA-256) and decrypts (PKCS#1 v1.5,
/// OAEP SHA-1 and SHA-256) with a 1024-bit pair, OpenSSL on the other side
/// of each operation.
fn works_with_openssl(
    session: &Session,
    which: Which,
    public: ObjectHandle,
    private: ObjectHandle,
    bits: usize,
) {
    let k = bits.div_ceil(8);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pem = rsa_public_pem(session, public, d, "pub");
    for (mechanism, is_pss) in [(Mechanism::Sha256RsaPkcs, false), (pss(), true)] {
        let sig = session.sign(&mechanism, private, MESSAGE).unwrap();
        assert_eq!(sig.len(), k);
        assert!(openssl_verifies(d, &pem, is_pss, &sig), "pss {is_pss}");
        session.verify(&mechanism, public, MESSAGE, &sig).unwrap();
        let mut bad = sig.clone();
        bad[17] ^= 0x10;
        assert!(!openssl_verifies(d, &pem, is_pss, &bad));
        assert_eq!(
            rv(session.verify(&mechanism, public, MESSAGE, &bad)),
            RvError::SignatureInvalid
        );
        assert_eq!(
            rv(session.verify(&mechanism, public, b"another message", &sig)),
            RvError::SignatureInvalid
        );
    }
    let secret = b"sixteen byte key";
    let mut cases = vec![
        (Mechanism::RsaPkcs, vec!["rsa_padding_mode:pkcs1"]),
        (
            oaep(MechanismType::SHA1, PkcsMgfType::MGF1_SHA1),
            vec!["rsa_padding_mode:oaep"],
        ),
    ];
    // SoftHSM 2.6 does OAEP with SHA-1 only.
    if which != Which::SoftHsm {
        cases.push((
            oaep(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
            vec![
                "rsa_padding_mode:oaep",
                "rsa_oaep_md:sha256",
                "rsa_mgf1_md:sha256",
            ],
        ));
    }
    for (mechanism, opts) in &cases {
        let ct = openssl_encrypts(d, &pem, opts, secret);
        assert_eq!(ct.len(), k);
        let pt = session.decrypt(mechanism, private, &ct).unwrap();
        assert_eq!(pt, secret, "{opts:?}");
        // The token's own encryption round-trips too.
        let ours = session.encrypt(mechanism, public, secret).unwrap();
        assert_eq!(session.decrypt(mechanism, private, &ours).unwrap(), secret);
        let mut bad = ct.clone();
        bad[3] ^= 0x01;
        // Any error on SoftHSM (CKR_GENERAL_ERROR for PKCS#1 v1.5); ours
        // is the one the specification names.
        let refused = rv(session.decrypt(mechanism, private, &bad));
        if which != Which::SoftHsm {
            assert_eq!(refused, RvError::EncryptedDataInvalid, "{opts:?}");
        }
    }
}

fn generated_1024_pair(which: Which) {
    let m = load(which);
    let session = user_session(&m, "rsa-1024");
    let (public, private) = pair(&session, 1024).unwrap();
    let bits = session
        .get_attributes(public, &[AttributeType::ModulusBits])
        .unwrap();
    assert_eq!(bits, vec![Attribute::ModulusBits(1024.into())]);
    works_with_openssl(&session, which, public, private, 1024);
    if which == Which::Daemon {
        kms_view_of_a_1024_pair();
    }
}

/// Runs the CLI against the test's daemon; its JSON answer.
fn cli_json(args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let out = common::daemon::cli(&all);
    assert!(
        out.status.success(),
        "tinfoil {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Through the KMS side of the daemon: the pair is a key of spec RSA_1024
/// with no algorithms, whose public key is readable and which does not
/// sign; CreateKey does not make RSA_1024 keys.
fn kms_view_of_a_1024_pair() {
    let keys = cli_json(&["list-keys"]);
    let ids: Vec<String> = keys["Keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["KeyId"].as_str().unwrap().to_string())
        .collect();
    let legacy: Vec<&String> = ids
        .iter()
        .filter(|id| {
            cli_json(&["describe-key", "--key-id", id])["KeyMetadata"]["KeySpec"] == "RSA_1024"
        })
        .collect();
    assert_eq!(legacy.len(), 1, "{keys}");
    let meta = &cli_json(&["describe-key", "--key-id", legacy[0]])["KeyMetadata"];
    assert!(meta.get("SigningAlgorithms").is_none(), "{meta}");
    assert!(meta.get("EncryptionAlgorithms").is_none(), "{meta}");
    let public = cli_json(&["get-public-key", "--key-id", legacy[0]]);
    assert_eq!(public["KeySpec"], "RSA_1024", "{public}");
    let refused = common::daemon::cli(&["create-key", "--key-spec", "RSA_1024"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("PKCS#11 only"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// Sizes between the usual ones (1536, 2560, and 2049 whose modulus is
/// not a whole number of bytes) as token and as session pairs: the same
/// operations, OpenSSL on the other side.
fn generated_pairs_of_other_sizes(which: Which) {
    let m = load(which);
    let session = user_session(&m, "rsa-other");
    for (bits, on_token) in [(1536u64, true), (2560, false), (2049, true)] {
        // SoftHSM (Botan) makes a 2048-bit key when asked for 2049.
        if which == Which::SoftHsm && !bits.is_multiple_of(8) {
            continue;
        }
        let (public, private) = session
            .generate_key_pair(
                &Mechanism::RsaPkcsKeyPairGen,
                &[
                    Attribute::Token(on_token),
                    Attribute::ModulusBits(bits.into()),
                    Attribute::Verify(true),
                    Attribute::Encrypt(true),
                ],
                &[
                    Attribute::Token(on_token),
                    Attribute::Private(true),
                    Attribute::Sign(true),
                    Attribute::Decrypt(true),
                ],
            )
            .unwrap_or_else(|e| panic!("{bits}: {e}"));
        let got = session
            .get_attributes(public, &[AttributeType::ModulusBits])
            .unwrap();
        assert_eq!(got, vec![Attribute::ModulusBits(bits.into())]);
        works_with_openssl(&session, which, public, private, bits as usize);
    }
}

/// The integers of the RSAPrivateKey in an OpenSSL-made PKCS#8 file.
fn rsa_integers(pkcs8: &[u8]) -> Vec<Vec<u8>> {
    fn element(input: &[u8]) -> (&[u8], &[u8]) {
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
        (&rest[..len], &rest[len..])
    }
    let (info, _) = element(pkcs8);
    let (_version, rest) = element(info);
    let (_algorithm, rest) = element(rest);
    let (key, _) = element(rest);
    let (mut seq, _) = element(key);
    let mut ints = Vec::new();
    while !seq.is_empty() {
        let (v, r) = element(seq);
        ints.push(v.to_vec());
        seq = r;
    }
    ints
}

fn imported_openssl_keys(which: Which) {
    let m = load(which);
    let session = user_session(&m, "rsa-import");
    for bits in [1024, 2560] {
        imported_openssl_key(&session, which, bits);
    }
}

/// C_CreateObject of an OpenSSL-made RSA key of `bits` (CRT parts
/// included) and of its public key; the key signs for OpenSSL and decrypts
/// what OpenSSL encrypted; RSA-1024 also comes in by C_UnwrapKey of its
/// PKCS#8 under AES-KWP (wrapped by `openssl enc -id-aes256-wrap-pad`).
fn imported_openssl_key(session: &Session, which: Which, bits: u32) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let raw = write(d, "raw.der", b"");
    let size = format!("rsa_keygen_bits:{bits}");
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        &size,
        "-outform",
        "DER",
        "-out",
        &raw,
    ]);
    let der = write(d, "key.der", b"");
    openssl(&[
        "pkcs8", "-topk8", "-nocrypt", "-inform", "DER", "-outform", "DER", "-in", &raw, "-out",
        &der,
    ]);
    let ints = rsa_integers(&std::fs::read(&der).unwrap());
    let private = session
        .create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Sign(true),
            Attribute::Decrypt(true),
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
    let public = session
        .create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::Encrypt(true),
            Attribute::Modulus(ints[1].clone()),
            Attribute::PublicExponent(ints[2].clone()),
        ])
        .unwrap();
    // OpenSSL's own public key verifies what the imported key signs.
    let pem = d.join("openssl.pub.pem");
    openssl(&[
        "pkey",
        "-inform",
        "DER",
        "-in",
        &der,
        "-pubout",
        "-out",
        pem.to_str().unwrap(),
    ]);
    let sig = session
        .sign(&Mechanism::Sha256RsaPkcs, private, MESSAGE)
        .unwrap();
    assert!(openssl_verifies(d, &pem, false, &sig));
    session
        .verify(&Mechanism::Sha256RsaPkcs, public, MESSAGE, &sig)
        .unwrap();
    let ct = openssl_encrypts(d, &pem, &["rsa_padding_mode:pkcs1"], b"imported");
    assert_eq!(
        session.decrypt(&Mechanism::RsaPkcs, private, &ct).unwrap(),
        b"imported"
    );
    if bits == 1024 {
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
        let hex: String = kek_value.iter().map(|b| format!("{b:02x}")).collect();
        let wrapped = openssl(&[
            "enc",
            "-id-aes256-wrap-pad",
            "-K",
            &hex,
            "-iv",
            "A65959A6",
            "-in",
            &der,
        ]);
        let unwrapped = session
            .unwrap_key(
                &Mechanism::AesKeyWrapPad,
                kek,
                &wrapped,
                &[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::KeyType(KeyType::RSA),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sign(true),
                ],
            )
            .unwrap();
        let sig = session
            .sign(&Mechanism::Sha256RsaPkcs, unwrapped, MESSAGE)
            .unwrap();
        assert!(openssl_verifies(d, &pem, false, &sig));
    }
    // A private key whose primes do not make its modulus is refused.
    if which != Which::SoftHsm {
        let mut wrong_p = ints[4].clone();
        *wrong_p.last_mut().unwrap() ^= 2;
        let refused = session.create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Token(true),
            Attribute::Sign(true),
            Attribute::Modulus(ints[1].clone()),
            Attribute::PublicExponent(ints[2].clone()),
            Attribute::PrivateExponent(ints[3].clone()),
            Attribute::Prime1(wrong_p),
            Attribute::Prime2(ints[5].clone()),
            Attribute::Exponent1(ints[6].clone()),
            Attribute::Exponent2(ints[7].clone()),
            Attribute::Coefficient(ints[8].clone()),
        ]);
        assert!(refused.is_err(), "{refused:?}");
    }
}

/// Sizes outside 1024..=8192 are CKR_KEY_SIZE_RANGE, and the mechanism
/// information says so (SoftHSM takes 512 to 16384 bits).
fn sizes_outside_the_advertised_range(which: Which) {
    let m = load(which);
    let slot = m.token("rsa-sizes");
    for mechanism in [
        MechanismType::RSA_PKCS_KEY_PAIR_GEN,
        MechanismType::RSA_PKCS,
        MechanismType::SHA256_RSA_PKCS_PSS,
        MechanismType::RSA_PKCS_OAEP,
    ] {
        let info = m.p11.get_mechanism_info(slot, mechanism).unwrap();
        assert_eq!(
            (info.min_key_size(), info.max_key_size()),
            (1024, 8192),
            "{mechanism}"
        );
    }
    let session = m.p11.open_rw_session(slot).unwrap();
    session
        .login(
            cryptoki::session::UserType::User,
            Some(&cryptoki::types::AuthPin::new(common::USER_PIN.into())),
        )
        .unwrap();
    for bits in [0, 512, 1023, 8193, 16384] {
        assert_eq!(rv(pair(&session, bits)), RvError::KeySizeRange, "{bits}");
    }
}

fn pkcs11_tool_makes_an_rsa_1024_pair() {
    let pin = "tool-pin-1";
    let dir = common::tool::embedded_fixture("tool-so-pin", pin);
    let d = dir.path();
    let _g = common::exclusive();
    let out = common::tool::ok(
        d,
        &[
            "--login",
            "--pin",
            pin,
            "--keypairgen",
            "--key-type",
            "rsa:1024",
            "--id",
            "10",
            "--label",
            "legacy",
        ],
    );
    assert!(out.contains("RSA 1024 bits"), "{out}");
    let msg = write(d, "msg", MESSAGE);
    let sig = d.join("sig");
    common::tool::ok(
        d,
        &[
            "--login",
            "--pin",
            pin,
            "--sign",
            "--id",
            "10",
            "-m",
            "SHA256-RSA-PKCS",
            "--input-file",
            &msg,
            "--output-file",
            sig.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read(&sig).unwrap().len(), 128);
}

#[test]
fn pkcs11_tool_rsa_1024() {
    pkcs11_tool_makes_an_rsa_1024_pair();
}

with_keys!(
    generated_1024_pair,
    generated_pairs_of_other_sizes,
    imported_openssl_keys
);
ours_only_embedded!(sizes_outside_the_advertised_range);
