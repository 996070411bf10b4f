//! CKM_RSA_PKCS_OAEP with a label (CKZ_DATA_SPECIFIED pSourceData) on the
//! embedded and daemon backends. SoftHSM 2.6 cannot be the control (it
//! does not take OAEP labels), so OpenSSL is: it encrypts with the exported
//! public key and a label, and the module must decrypt that with the same
//! label only.

mod common;

use common::{der, der_uint, rv, user_session};

use std::path::Path;
use std::process::Command;

use common::{load, Which};
use cryptoki::error::RvError;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::Session;

/// The DER SubjectPublicKeyInfo of an RSA public key object.
fn spki(session: &Session, public: ObjectHandle) -> Vec<u8> {
    let (mut n, mut e) = (Vec::new(), Vec::new());
    for a in session
        .get_attributes(
            public,
            &[AttributeType::Modulus, AttributeType::PublicExponent],
        )
        .unwrap()
    {
        match a {
            Attribute::Modulus(v) => n = v,
            Attribute::PublicExponent(v) => e = v,
            _ => {}
        }
    }
    let rsa_public = der(0x30, &[der_uint(&n), der_uint(&e)].concat());
    let rsa_oid = der(
        0x06,
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
    );
    let algorithm = der(0x30, &[rsa_oid, vec![0x05, 0x00]].concat());
    let bits = der(0x03, &[&[0u8][..], &rsa_public].concat());
    der(0x30, &[algorithm, bits].concat())
}

/// OpenSSL's RSA-OAEP (SHA-256, MGF1-SHA-256) encryption with `label`.
fn openssl_encrypt(d: &Path, public_der: &[u8], label: &[u8], plain: &[u8]) -> Vec<u8> {
    let p = |name: &str| d.join(name).display().to_string();
    std::fs::write(d.join("pub.der"), public_der).unwrap();
    std::fs::write(d.join("plain.bin"), plain).unwrap();
    let label_hex: String = label.iter().map(|b| format!("{b:02x}")).collect();
    let out = Command::new("openssl")
        .args(["pkeyutl", "-encrypt", "-pubin", "-keyform", "DER", "-inkey"])
        .arg(p("pub.der"))
        .args([
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            "rsa_oaep_md:sha256",
            "-pkeyopt",
            "rsa_mgf1_md:sha256",
            "-pkeyopt",
        ])
        .arg(format!("rsa_oaep_label:{label_hex}"))
        .arg("-in")
        .arg(p("plain.bin"))
        .output()
        .expect("openssl must be installed");
    assert!(
        out.status.success(),
        "openssl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn oaep(hash: MechanismType, mgf: PkcsMgfType, label: &[u8]) -> Mechanism<'_> {
    let source = if label.is_empty() {
        PkcsOaepSource::empty()
    } else {
        PkcsOaepSource::data_specified(label)
    };
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(hash, mgf, source))
}

fn oaep_labels_bind_the_ciphertext_and_match_openssl(which: Which) {
    let m = load(which);
    let session = user_session(&m, "oaep-label");
    let (public, private) = session
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::Encrypt(true),
                Attribute::ModulusBits(2048.into()),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Decrypt(true),
            ],
        )
        .unwrap();
    let secret = b"a data key wrapped for one context".to_vec();
    for (hash, mgf) in [
        (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
        (MechanismType::SHA1, PkcsMgfType::MGF1_SHA1),
    ] {
        let label = b"context: payments".to_vec();
        let sealed = session
            .encrypt(&oaep(hash, mgf, &label), public, &secret)
            .unwrap();
        assert_eq!(
            session
                .decrypt(&oaep(hash, mgf, &label), private, &sealed)
                .unwrap(),
            secret
        );
        for wrong in [&b""[..], b"context: billing", b"context: payments\0"] {
            assert_eq!(
                rv(session.decrypt(&oaep(hash, mgf, wrong), private, &sealed)),
                RvError::EncryptedDataInvalid,
                "label {wrong:?}"
            );
        }
        // Without a label it works as before.
        let plain = session
            .encrypt(&oaep(hash, mgf, b""), public, &secret)
            .unwrap();
        assert_eq!(
            session
                .decrypt(&oaep(hash, mgf, b""), private, &plain)
                .unwrap(),
            secret
        );
    }

    // OpenSSL as the control: its labelled ciphertext opens with the label
    // only.
    let dir = tempfile::tempdir().unwrap();
    let label = b"\x00binary\xfflabel";
    let sealed = openssl_encrypt(dir.path(), &spki(&session, public), label, b"from openssl");
    let sha256 = |l| oaep(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, l);
    assert_eq!(
        session.decrypt(&sha256(label), private, &sealed).unwrap(),
        b"from openssl"
    );
    assert_eq!(
        rv(session.decrypt(&sha256(b""), private, &sealed)),
        RvError::EncryptedDataInvalid
    );
}

ours_only_embedded!(oaep_labels_bind_the_ciphertext_and_match_openssl);
