//! CKM_RSA_X_509 (raw RSA: sign, verify, encrypt, decrypt), the SHA-1 and
//! SHA-224 forms of PKCS#1 v1.5 and PSS, and PSS with any salt length up to
//! the largest the key allows, on a token RSA-2048 pair; OpenSSL checks
//! every signature with the pair's public key. SoftHSM2 is the control.

mod common;

use std::path::Path;

use common::openssl::{openssl, openssl_ok, rsa_public_pem};
use common::{load, rv, user_session, Which};
use cryptoki::error::RvError;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::Session;

const MESSAGE: &[u8] = b"signed with a token key, checked by OpenSSL";

fn pair(session: &Session) -> (ObjectHandle, ObjectHandle) {
    session
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::ModulusBits(2048.into()),
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
        .unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

/// OpenSSL's `dgst -verify` with `digest` and extra signature options.
fn openssl_verifies(pem: &Path, digest: &str, opts: &[String], sig: &[u8], dir: &Path) -> bool {
    let msg = write(dir, "msg", MESSAGE);
    let sig = write(dir, "sig", sig);
    let mut args = vec![
        "dgst".to_string(),
        digest.to_string(),
        "-verify".to_string(),
        pem.to_str().unwrap().to_string(),
        "-signature".to_string(),
        sig,
    ];
    for o in opts {
        args.push("-sigopt".to_string());
        args.push(o.clone());
    }
    args.push(msg);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    openssl_ok(&args)
}

fn raw_rsa(which: Which) {
    let m = load(which);
    let session = user_session(&m, "rsa-raw");
    let dir = tempfile::tempdir().unwrap();
    let (public, private) = pair(&session);
    let pem = rsa_public_pem(&session, public, dir.path(), "pub");
    let input = b"twenty bytes of data";
    let sig = session.sign(&Mechanism::RsaX509, private, input).unwrap();
    assert_eq!(sig.len(), 256);
    session
        .verify(&Mechanism::RsaX509, public, input, &sig)
        .unwrap();
    let mut bad = sig.clone();
    bad[9] ^= 1;
    assert_eq!(
        rv(session.verify(&Mechanism::RsaX509, public, input, &bad)),
        RvError::SignatureInvalid
    );
    // OpenSSL recovers the input, left-padded with zeros to 256 bytes.
    let sig_path = write(dir.path(), "raw.sig", &sig);
    let recovered = openssl(&[
        "pkeyutl",
        "-verifyrecover",
        "-pubin",
        "-inkey",
        pem.to_str().unwrap(),
        "-pkeyopt",
        "rsa_padding_mode:none",
        "-in",
        &sig_path,
    ]);
    assert_eq!(recovered.len(), 256);
    assert!(recovered[..236].iter().all(|b| *b == 0));
    assert_eq!(&recovered[236..], input);
    // Raw encryption and decryption: k bytes back, the input at the end.
    let ct = session.encrypt(&Mechanism::RsaX509, public, input).unwrap();
    assert_eq!(ct.len(), 256);
    let pt = session.decrypt(&Mechanism::RsaX509, private, &ct).unwrap();
    assert_eq!(&pt[pt.len() - input.len()..], input);
    assert!(pt[..pt.len() - input.len()].iter().all(|b| *b == 0));
    // OpenSSL's raw encryption decrypts the same way.
    let block: Vec<u8> = std::iter::repeat_n(0u8, 236).chain(*input).collect();
    let block_path = write(dir.path(), "block", &block);
    let theirs = openssl(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        pem.to_str().unwrap(),
        "-pkeyopt",
        "rsa_padding_mode:none",
        "-in",
        &block_path,
    ]);
    let pt = session
        .decrypt(&Mechanism::RsaX509, private, &theirs)
        .unwrap();
    assert_eq!(pt, block);
    if which != Which::SoftHsm {
        // More than k bytes, or a value not below n, is refused.
        assert_eq!(
            rv(session.sign(&Mechanism::RsaX509, private, &[1u8; 257])),
            RvError::DataLenRange
        );
        assert_eq!(
            rv(session.encrypt(&Mechanism::RsaX509, public, &[0xffu8; 256])),
            RvError::DataLenRange
        );
    }
}

fn sha1_and_sha224_pkcs1(which: Which) {
    let m = load(which);
    let session = user_session(&m, "rsa-sha1");
    let dir = tempfile::tempdir().unwrap();
    let (public, private) = pair(&session);
    let pem = rsa_public_pem(&session, public, dir.path(), "pub");
    for (mechanism, digest) in [
        (Mechanism::Sha1RsaPkcs, "-sha1"),
        (Mechanism::Sha224RsaPkcs, "-sha224"),
    ] {
        let sig = session.sign(&mechanism, private, MESSAGE).unwrap();
        assert!(
            openssl_verifies(&pem, digest, &[], &sig, dir.path()),
            "{digest}"
        );
        session.verify(&mechanism, public, MESSAGE, &sig).unwrap();
        let mut bad = sig.clone();
        bad[0] ^= 1;
        assert!(!openssl_verifies(&pem, digest, &[], &bad, dir.path()));
        assert_eq!(
            rv(session.verify(&mechanism, public, MESSAGE, &bad)),
            RvError::SignatureInvalid
        );
    }
}

fn pss(hash: MechanismType, salt: u64) -> PkcsPssParams {
    let mgf = match hash {
        MechanismType::SHA1 => PkcsMgfType::MGF1_SHA1,
        MechanismType::SHA224 => PkcsMgfType::MGF1_SHA224,
        MechanismType::SHA256 => PkcsMgfType::MGF1_SHA256,
        MechanismType::SHA384 => PkcsMgfType::MGF1_SHA384,
        _ => PkcsMgfType::MGF1_SHA512,
    };
    PkcsPssParams {
        hash_alg: hash,
        mgf,
        s_len: salt.into(),
    }
}

/// PSS with SHA-1, SHA-224 and SHA-2, salts from 0 to the largest the key
/// allows (emLen - hLen - 2), through the hashing mechanisms and through
/// CKM_RSA_PKCS_PSS over a digest.
fn pss_any_hash_any_salt(which: Which) {
    let m = load(which);
    let session = user_session(&m, "rsa-pss");
    let dir = tempfile::tempdir().unwrap();
    let (public, private) = pair(&session);
    let pem = rsa_public_pem(&session, public, dir.path(), "pub");
    let cases: [(MechanismType, &str, u64); 7] = [
        (MechanismType::SHA1, "-sha1", 20),
        (MechanismType::SHA1, "-sha1", 234),
        (MechanismType::SHA224, "-sha224", 28),
        (MechanismType::SHA256, "-sha256", 0),
        (MechanismType::SHA256, "-sha256", 222),
        (MechanismType::SHA384, "-sha384", 100),
        (MechanismType::SHA512, "-sha512", 190),
    ];
    let msg = write(dir.path(), "message", MESSAGE);
    for (hash, digest, salt) in cases {
        let params = pss(hash, salt);
        // cryptoki 0.12 has no CKM_SHA224_RSA_PKCS_PSS: SHA-224 goes
        // through CKM_RSA_PKCS_PSS only.
        let hashing = match hash {
            MechanismType::SHA1 => Mechanism::Sha1RsaPkcsPss(params),
            MechanismType::SHA224 => Mechanism::RsaPkcsPss(params),
            MechanismType::SHA256 => Mechanism::Sha256RsaPkcsPss(params),
            MechanismType::SHA384 => Mechanism::Sha384RsaPkcsPss(params),
            _ => Mechanism::Sha512RsaPkcsPss(params),
        };
        let d = openssl(&["dgst", digest, "-binary", &msg]);
        let hashing_input: &[u8] = if hash == MechanismType::SHA224 {
            &d
        } else {
            MESSAGE
        };
        let opts = vec![
            "rsa_padding_mode:pss".to_string(),
            format!("rsa_pss_saltlen:{salt}"),
        ];
        let sig = session
            .sign(&hashing, private, hashing_input)
            .unwrap_or_else(|e| panic!("{digest} salt {salt}: {e}"));
        assert!(
            openssl_verifies(&pem, digest, &opts, &sig, dir.path()),
            "{digest} salt {salt}"
        );
        session
            .verify(&hashing, public, hashing_input, &sig)
            .unwrap();
        // CKM_RSA_PKCS_PSS over the digest OpenSSL made.
        let sig = session
            .sign(&Mechanism::RsaPkcsPss(params), private, &d)
            .unwrap();
        assert!(
            openssl_verifies(&pem, digest, &opts, &sig, dir.path()),
            "raw {digest} salt {salt}"
        );
        let mut bad = sig.clone();
        bad[100] ^= 4;
        assert_eq!(
            rv(session.verify(&Mechanism::RsaPkcsPss(params), public, &d, &bad)),
            RvError::SignatureInvalid
        );
    }
    if which != Which::SoftHsm {
        // One byte more than the largest salt is refused at C_SignInit.
        let too_long = Mechanism::Sha256RsaPkcsPss(pss(MechanismType::SHA256, 223));
        assert_eq!(
            rv(session.sign(&too_long, private, MESSAGE)),
            RvError::MechanismParamInvalid
        );
    }
}

/// C_GetMechanismInfo of the new mechanisms (cryptoki 0.12 cannot name
/// CKM_SHA224_RSA_PKCS_PSS; the registry's unit test covers it).
fn mechanism_info(which: Which) {
    let m = load(which);
    let slot = m.token("info");
    let info = m
        .p11
        .get_mechanism_info(slot, MechanismType::RSA_X_509)
        .unwrap();
    assert!(info.sign() && info.verify() && info.encrypt() && info.decrypt());
    for mech in [
        MechanismType::SHA1_RSA_PKCS,
        MechanismType::SHA224_RSA_PKCS,
        MechanismType::SHA1_RSA_PKCS_PSS,
    ] {
        let info = m.p11.get_mechanism_info(slot, mech).unwrap();
        assert!(info.sign() && info.verify(), "{mech}");
        if which != Which::SoftHsm {
            assert_eq!(
                (info.min_key_size(), info.max_key_size()),
                (1024, 8192),
                "{mech}"
            );
        }
    }
}

/// RSA-8192 through PKCS#11 (aws-lc-rs generates and uses it; the KMS API
/// has no such spec): a token pair signs for OpenSSL and decrypts OAEP.
fn rsa_8192(which: Which) {
    let m = load(which);
    let session = user_session(&m, "rsa-8192");
    let dir = tempfile::tempdir().unwrap();
    let (public, private) = session
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::ModulusBits(8192.into()),
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
        .unwrap();
    let bits = session
        .get_attributes(public, &[cryptoki::object::AttributeType::ModulusBits])
        .unwrap();
    assert_eq!(bits, vec![Attribute::ModulusBits(8192.into())]);
    let pem = rsa_public_pem(&session, public, dir.path(), "pub8192");
    let sig = session
        .sign(&Mechanism::Sha256RsaPkcs, private, MESSAGE)
        .unwrap();
    assert_eq!(sig.len(), 1024);
    assert!(openssl_verifies(&pem, "-sha256", &[], &sig, dir.path()));
    let oaep = Mechanism::RsaPkcsOaep(cryptoki::mechanism::rsa::PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        cryptoki::mechanism::rsa::PkcsOaepSource::empty(),
    ));
    let ct = session.encrypt(&oaep, public, b"a secret").unwrap();
    assert_eq!(session.decrypt(&oaep, private, &ct).unwrap(), b"a secret");
}

ours_only_embedded!(rsa_8192);

with_keys!(
    raw_rsa,
    sha1_and_sha224_pkcs1,
    pss_any_hash_any_salt,
    mechanism_info
);
