//! CKM_RSA_PKCS on arbitrary input (type-1 signatures of any bytes up to
//! k-11) and CKM_RSA_PKCS encryption and decryption (type 2), against
//! SoftHSM2 (the control), the embedded and the daemon backend; OpenSSL
//! recovers the signed bytes and encrypts for the module with the public
//! key the module exports.

mod common;

use common::{der, der_uint, rv, user_session};

use std::path::Path;
use std::process::Command;

use common::{load, Which};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::Session;

/// An RSA key pair of `bits`: a signing pair, or (`decrypt`) a pair made
/// to encrypt and decrypt only.
fn rsa_pair(session: &Session, bits: u64, decrypt: bool) -> (ObjectHandle, ObjectHandle) {
    session
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::ModulusBits(bits.into()),
                Attribute::Verify(!decrypt),
                Attribute::Encrypt(decrypt),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Sign(!decrypt),
                Attribute::Decrypt(decrypt),
            ],
        )
        .unwrap_or_else(|e| panic!("C_GenerateKeyPair RSA-{bits}: {e}"))
}

/// The DER SubjectPublicKeyInfo of an RSA public key object, built from
/// its CKA_MODULUS and CKA_PUBLIC_EXPONENT.
fn spki(session: &Session, public: ObjectHandle) -> (Vec<u8>, usize) {
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
    let rsa_public = der(0x30, &[der_uint(&n), der_uint(&e)].concat());
    let algorithm = der(
        0x30,
        &[
            der(
                0x06,
                &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
            ),
            vec![0x05, 0x00],
        ]
        .concat(),
    );
    let bits = der(0x03, &[&[0u8][..], &rsa_public].concat());
    (der(0x30, &[algorithm, bits].concat()), n.len())
}

/// Runs openssl and returns its stdout; panics with its stderr on failure.
#[track_caller]
fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be installed");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn path(d: &Path, name: &str) -> String {
    d.join(name).display().to_string()
}

/// What OpenSSL recovers from a PKCS#1 v1.5 signature with the public key
/// (RSA_public_decrypt with type-1 padding).
fn openssl_recover(d: &Path, public_der: &[u8], signature: &[u8]) -> Vec<u8> {
    std::fs::write(d.join("pub.der"), public_der).unwrap();
    std::fs::write(d.join("sig.bin"), signature).unwrap();
    openssl(&[
        "pkeyutl",
        "-verifyrecover",
        "-pubin",
        "-keyform",
        "DER",
        "-inkey",
        &path(d, "pub.der"),
        "-pkeyopt",
        "rsa_padding_mode:pkcs1",
        "-in",
        &path(d, "sig.bin"),
    ])
}

/// DER DigestInfo prefixes: SHA-1 (not among the module's hashed
/// mechanisms, so signed on the big-integer path) and SHA-256 (the fast
/// path through aws-lc-rs).
const SHA1_INFO: &[u8] = &[
    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
];
const SHA256_INFO: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

fn raw_signatures_of_any_input(which: Which) {
    let m = load(which);
    let session = user_session(&m, "rsa-raw");
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let msg = b"the message behind the SHA-256 DigestInfo".to_vec();
    for bits in [2048u64, 3072, 4096] {
        let (public, private) = rsa_pair(&session, bits, false);
        let (public_der, k) = spki(&session, public);
        assert_eq!(k as u64 * 8, bits);
        let sha256_info = [
            SHA256_INFO,
            ring::digest::digest(&ring::digest::SHA256, &msg).as_ref(),
        ]
        .concat();
        let inputs: Vec<Vec<u8>> = vec![
            b"arbitrary bytes, no DigestInfo".to_vec(),
            // A TLS 1.0-style MD5 || SHA-1 concatenation: 36 bytes.
            vec![0x5a; 36],
            [SHA1_INFO, &[0x11; 20][..]].concat(),
            sha256_info.clone(),
            vec![0xa5; k - 11],
            vec![0x00; 1],
        ];
        for input in &inputs {
            let sig = session.sign(&Mechanism::RsaPkcs, private, input).unwrap();
            assert_eq!(sig.len(), k, "{bits}: a signature is k bytes");
            assert_eq!(
                &openssl_recover(d, &public_der, &sig),
                input,
                "{bits}: OpenSSL recovers the signed bytes"
            );
            session
                .verify(&Mechanism::RsaPkcs, public, input, &sig)
                .unwrap();
            let mut tampered = sig.clone();
            tampered[k / 2] ^= 0x01;
            assert_eq!(
                rv(session.verify(&Mechanism::RsaPkcs, public, input, &tampered)),
                RvError::SignatureInvalid
            );
            let mut other = input.clone();
            *other.last_mut().unwrap() ^= 0x01;
            assert_eq!(
                rv(session.verify(&Mechanism::RsaPkcs, public, &other, &sig)),
                RvError::SignatureInvalid
            );
        }
        // PKCS#1 v1.5 is deterministic: CKM_RSA_PKCS over the DigestInfo
        // is CKM_SHA256_RSA_PKCS over the message.
        assert_eq!(
            session
                .sign(&Mechanism::RsaPkcs, private, &sha256_info)
                .unwrap(),
            session
                .sign(&Mechanism::Sha256RsaPkcs, private, &msg)
                .unwrap()
        );
        let some_sig = session.sign(&Mechanism::RsaPkcs, private, b"x").unwrap();
        let verify_too_long =
            rv(session.verify(&Mechanism::RsaPkcs, public, &vec![1; k - 10], &some_sig));
        // SoftHSM 2.6 answers CKR_SIGNATURE_INVALID; ours, as when signing,
        // CKR_DATA_LEN_RANGE.
        let expected = if which == Which::SoftHsm {
            RvError::SignatureInvalid
        } else {
            RvError::DataLenRange
        };
        assert_eq!(verify_too_long, expected);
        assert_eq!(
            rv(session.verify(&Mechanism::RsaPkcs, public, b"x", &some_sig[1..])),
            RvError::SignatureLenRange
        );
        let too_long = rv(session.sign(&Mechanism::RsaPkcs, private, &vec![1; k - 10]));
        // SoftHSM 2.6 answers CKR_GENERAL_ERROR; the spec's code is ours.
        if which != Which::SoftHsm {
            assert_eq!(
                too_long,
                RvError::DataLenRange,
                "{bits}: more than k-11 bytes"
            );
        }
    }
}

fn pkcs1_encryption(which: Which) {
    let m = load(which);
    let session = user_session(&m, "rsa-crypt");
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (public, private) = rsa_pair(&session, 2048, true);
    let (public_der, k) = spki(&session, public);
    for len in [1usize, 32, k - 11] {
        let plain: Vec<u8> = (0..len).map(|i| (i * 7 + 1) as u8).collect();
        let sealed = session
            .encrypt(&Mechanism::RsaPkcs, public, &plain)
            .unwrap();
        assert_eq!(sealed.len(), k);
        assert_ne!(
            session
                .encrypt(&Mechanism::RsaPkcs, public, &plain)
                .unwrap(),
            sealed,
            "random padding"
        );
        assert_eq!(
            session
                .decrypt(&Mechanism::RsaPkcs, private, &sealed)
                .unwrap(),
            plain
        );
    }
    let too_long = rv(session.encrypt(&Mechanism::RsaPkcs, public, &vec![1; k - 10]));
    // SoftHSM 2.6 answers CKR_GENERAL_ERROR; the spec's code is ours.
    if which != Which::SoftHsm {
        assert_eq!(too_long, RvError::DataLenRange);
    }

    // OpenSSL encrypts with the exported public key; the module decrypts.
    std::fs::write(d.join("pub.der"), &public_der).unwrap();
    std::fs::write(d.join("plain.bin"), b"from openssl").unwrap();
    let sealed = openssl(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-keyform",
        "DER",
        "-inkey",
        &path(d, "pub.der"),
        "-pkeyopt",
        "rsa_padding_mode:pkcs1",
        "-in",
        &path(d, "plain.bin"),
    ]);
    assert_eq!(
        session
            .decrypt(&Mechanism::RsaPkcs, private, &sealed)
            .unwrap(),
        b"from openssl"
    );

    // Every failure to decrypt is one code: tampered, truncated, another
    // key's ciphertext, or an all-zero block.
    let sealed = session
        .encrypt(&Mechanism::RsaPkcs, public, b"secret")
        .unwrap();
    let mut tampered = sealed.clone();
    tampered[3] ^= 0x10;
    let (other_public, _) = rsa_pair(&session, 2048, true);
    let foreign = session
        .encrypt(&Mechanism::RsaPkcs, other_public, b"secret")
        .unwrap();
    // SoftHSM 2.6 answers CKR_GENERAL_ERROR to each; ours is the spec's
    // CKR_ENCRYPTED_DATA_INVALID (the wrong length too, on the same path).
    let expected = if which == Which::SoftHsm {
        RvError::GeneralError
    } else {
        RvError::EncryptedDataInvalid
    };
    for bad in [&tampered[..], &foreign, &vec![0u8; k], &sealed[1..]] {
        assert_eq!(
            rv(session.decrypt(&Mechanism::RsaPkcs, private, bad)),
            expected
        );
    }
    // A failed decryption changed nothing: the good ciphertext still opens.
    assert_eq!(
        session
            .decrypt(&Mechanism::RsaPkcs, private, &sealed)
            .unwrap(),
        b"secret"
    );

    // A signing key does not decrypt, a decryption key does not sign.
    let (sign_public, sign_private) = rsa_pair(&session, 2048, false);
    let for_signer = session.encrypt(&Mechanism::RsaPkcs, public, b"x").unwrap();
    assert_eq!(
        rv(session.decrypt(&Mechanism::RsaPkcs, sign_private, &for_signer)),
        RvError::KeyFunctionNotPermitted
    );
    assert_eq!(
        rv(session.encrypt(&Mechanism::RsaPkcs, sign_public, b"x")),
        RvError::KeyFunctionNotPermitted
    );
    assert_eq!(
        rv(session.sign(&Mechanism::RsaPkcs, private, b"x")),
        RvError::KeyFunctionNotPermitted
    );
}

/// A public key imported with C_CreateObject (modulus and exponent of a
/// pair) verifies CKM_RSA_PKCS signatures of raw input.
fn imported_public_key_verifies_raw(which: Which) {
    let m = load(which);
    let session = user_session(&m, "rsa-import");
    let (public, private) = rsa_pair(&session, 2048, false);
    let imported = common::import_rsa_public(&session, public);
    for input in [&b"raw bytes to sign"[..], &[0x5a; 36], &[0xa5; 245]] {
        let sig = session.sign(&Mechanism::RsaPkcs, private, input).unwrap();
        session
            .verify(&Mechanism::RsaPkcs, imported, input, &sig)
            .unwrap();
        let mut tampered = sig.clone();
        tampered[77] ^= 0x20;
        assert_eq!(
            rv(session.verify(&Mechanism::RsaPkcs, imported, input, &tampered)),
            RvError::SignatureInvalid
        );
        assert_eq!(
            rv(session.verify(&Mechanism::RsaPkcs, imported, b"other", &sig)),
            RvError::SignatureInvalid
        );
    }
}

/// The mechanism's info says what it does, with the true key sizes.
fn mechanism_info(which: Which) {
    let m = load(which);
    let slot = m.token("rsa-info");
    let info = m
        .p11
        .get_mechanism_info(slot, cryptoki::mechanism::MechanismType::RSA_PKCS)
        .unwrap();
    assert!(info.encrypt() && info.decrypt() && info.sign() && info.verify());
    if which != Which::SoftHsm {
        assert_eq!((info.min_key_size(), info.max_key_size()), (1024, 8192));
    }
}

with_keys!(
    raw_signatures_of_any_input,
    pkcs1_encryption,
    imported_public_key_verifies_raw,
    mechanism_info
);
