//! Issue 11 through the module: every entry point that touches a token key
//! leaves exactly one record in the store's audit chain (the embedded
//! store's own, or tinfoild's), named by the function, with the mechanism,
//! the caller's Unix identity and the key; the chain exports and verifies
//! offline; no PIN or data reaches it. Calls on session keys leave none.

mod common;

use std::path::Path;

use common::{daemon, load, rv, user_session, Which, USER_PIN};
use cryptoki::error::RvError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::hkdf::{HkdfParams, HkdfSalt};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use serde_json::Value;

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const PLAINTEXT: &[u8] = b"audited plaintext 8b1f0c";
const SIGNED: &[u8] = b"audited signature input 77a2";
const KEY_VALUE: &[u8] = b"an imported AES key, 32 bytes.!!";

/// The records of an export directory, verified first.
fn verified_records(export: &Path) -> (Vec<Value>, String) {
    let key = std::fs::read_to_string(export.join("audit-public-key.txt")).unwrap();
    let report = hsm_core::audit::verify_dir(export, key.trim()).expect("the chain verifies");
    assert!(report.records > 0);
    let mut text = String::new();
    let mut files: Vec<_> = std::fs::read_dir(export.join("records"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in files {
        text.push_str(&std::fs::read_to_string(file).unwrap());
    }
    let records = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (records, text)
}

fn gcm(iv: &mut [u8; 12]) -> Mechanism<'_> {
    Mechanism::AesGcm(GcmParams::new(iv, &[], 128.into()).unwrap())
}

/// The store's records after the calls: exported (the embedded store by
/// this process once the module let it go, the daemon's with the CLI) and
/// verified offline; with the export's text.
fn exported_records(m: &common::Loaded, which: Which) -> (Vec<Value>, String) {
    let export = tempfile::tempdir().unwrap();
    let out_dir = export.path().join("export");
    match which {
        Which::Embedded => {
            // The embedded store is this process's: let it go, then export
            // its log and read its public key with the CLI, as an
            // administrator holding the passphrase would.
            let _ = m.p11.clone().finalize();
            let data = m.dir.path().join("data");
            let pass = m.dir.path().join("passphrase");
            let local = |args: &[&str]| {
                let out = std::process::Command::new(daemon::binary("tinfoil"))
                    .args(args)
                    .arg("--data-dir")
                    .arg(&data)
                    .arg("--passphrase-file")
                    .arg(&pass)
                    .env_remove("TINFOIL_ENDPOINT")
                    .output()
                    .expect("run tinfoil");
                assert!(out.status.success(), "tinfoil {args:?}: {out:?}");
            };
            let key_file = export.path().join("audit.pub");
            local(&[
                "get-audit-public-key",
                "--output-file",
                key_file.to_str().unwrap(),
            ]);
            local(&[
                "export-audit-log",
                "--output-dir",
                out_dir.to_str().unwrap(),
            ]);
            // The operator's own copy of the key verifies the export, with
            // the CLI as with the library.
            let out = std::process::Command::new(daemon::binary("tinfoil"))
                .args(["verify-audit-log", "--input-dir"])
                .arg(&out_dir)
                .arg("--public-key-file")
                .arg(&key_file)
                .output()
                .expect("run tinfoil");
            assert!(out.status.success(), "{out:?}");
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("chain intact"),
                "{out:?}"
            );
            assert_eq!(
                std::fs::read_to_string(&key_file).unwrap(),
                std::fs::read_to_string(out_dir.join("audit-public-key.txt")).unwrap()
            );
        }
        _ => {
            let out = daemon::cli(&[
                "export-audit-log",
                "--output-dir",
                out_dir.to_str().unwrap(),
            ]);
            assert!(out.status.success(), "{out:?}");
        }
    }
    verified_records(&out_dir)
}

/// The PKCS#11 records, in order.
fn pkcs11_records(records: &[Value]) -> Vec<&Value> {
    records
        .iter()
        .filter(|r| r["eventSource"] == "pkcs11.tinfoil.local")
        .collect()
}

/// The raw, hex and base64 forms of a secret are nowhere in `text`.
fn assert_absent(text: &str, secrets: &[&[u8]]) {
    for secret in secrets {
        for form in [
            String::from_utf8_lossy(secret).to_string(),
            hex(secret),
            base64(secret),
        ] {
            assert!(!text.contains(&form), "{form} is in the log");
        }
    }
}

fn session_and_token_calls(which: Which) {
    let m = load(which);
    let session = user_session(&m, "audited");

    // Session keys: no record.
    let session_key = session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(false),
                Attribute::ValueLen(32.into()),
                Attribute::Encrypt(true),
            ],
        )
        .unwrap();
    let mut iv = [1u8; 12];
    session
        .encrypt(&gcm(&mut iv), session_key, PLAINTEXT)
        .unwrap();

    // Token keys: one record per call.
    let aes = session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(true),
                Attribute::ValueLen(32.into()),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
            ],
        )
        .unwrap();
    let mut iv = [2u8; 12];
    let ciphertext = session.encrypt(&gcm(&mut iv), aes, PLAINTEXT).unwrap();
    let mut iv = [2u8; 12];
    let plain = session.decrypt(&gcm(&mut iv), aes, &ciphertext).unwrap();
    assert_eq!(plain, PLAINTEXT);
    // A failure after the key was allowed is recorded with its CKR name.
    let mut tampered = ciphertext.clone();
    tampered[0] ^= 1;
    let mut iv = [2u8; 12];
    assert!(session.decrypt(&gcm(&mut iv), aes, &tampered).is_err());
    let (_public, private) = session
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::Verify(true),
                Attribute::EcParams(P256.to_vec()),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Sign(true),
            ],
        )
        .unwrap();
    session
        .sign(&Mechanism::EcdsaSha256, private, SIGNED)
        .unwrap();
    session.destroy_object(aes).unwrap();
    drop(session);

    let (records, text) = exported_records(&m, which);
    let p11 = pkcs11_records(&records);
    let names: Vec<&str> = p11
        .iter()
        .map(|r| r["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "C_GenerateKey",
            "C_Encrypt",
            "C_Decrypt",
            "C_Decrypt",
            "C_GenerateKeyPair",
            "C_Sign",
            "C_DestroyObject"
        ],
        "{p11:#?}"
    );
    let me = format!("pid={}", std::process::id());
    for r in &p11 {
        let source = r["sourceIPAddress"].as_str().unwrap();
        assert!(
            source.starts_with("unix:uid=") && source.ends_with(&me),
            "{r}"
        );
        assert!(r["userIdentity"]["arn"].as_str().is_some(), "{r}");
    }
    let mechanism = |i: usize| p11[i]["requestParameters"]["mechanism"].as_str();
    assert_eq!(mechanism(0), Some("CKM_AES_KEY_GEN"));
    assert_eq!(mechanism(1), Some("CKM_AES_GCM"));
    assert_eq!(mechanism(4), Some("CKM_EC_KEY_PAIR_GEN"));
    assert_eq!(mechanism(5), Some("CKM_ECDSA_SHA256"));
    // The key: made by C_GenerateKey, used, destroyed.
    let aes_arn = p11[0]["resources"][0]["ARN"].as_str().unwrap();
    for i in [1, 2, 3, 6] {
        assert_eq!(p11[i]["resources"][0]["ARN"], aes_arn, "{}", p11[i]);
    }
    let pair_arn = p11[4]["resources"][0]["ARN"].as_str().unwrap();
    assert_eq!(p11[5]["resources"][0]["ARN"], pair_arn);
    assert_ne!(aes_arn, pair_arn);
    // Success and failure.
    assert!(p11[2].get("errorCode").is_none(), "{}", p11[2]);
    assert_eq!(p11[3]["errorCode"], "CKR_ENCRYPTED_DATA_INVALID");
    // No secret, in any encoding.
    assert_absent(&text, &[USER_PIN.as_bytes(), PLAINTEXT, SIGNED]);
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn token_key(session: &Session, template: &[Attribute]) -> ObjectHandle {
    let mut all = vec![Attribute::Token(true)];
    all.extend_from_slice(template);
    session.generate_key(&Mechanism::AesKeyGen, &all).unwrap()
}

fn the_other_entry_points(which: Which) {
    let m = load(which);
    let session = user_session(&m, "audited-more");
    // C_CreateObject: a token key from a value (which no record holds).
    let kek = session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Value(KEY_VALUE.to_vec()),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
        ])
        .unwrap();
    // Multi-part: recorded once, by the call that finishes it.
    let mut iv = [3u8; 12];
    session.encrypt_init(&gcm(&mut iv), kek).unwrap();
    session.encrypt_update(PLAINTEXT).unwrap();
    session.encrypt_update(PLAINTEXT).unwrap();
    let sealed = session.encrypt_final().unwrap();
    assert!(!sealed.is_empty());
    // A session data key wrapped under it and unwrapped again.
    let dek = session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(false),
                Attribute::ValueLen(32.into()),
                Attribute::Extractable(true),
            ],
        )
        .unwrap();
    let wrapped = session
        .wrap_key(&Mechanism::AesKeyWrapPad, kek, dek)
        .unwrap();
    session
        .unwrap_key(
            &Mechanism::AesKeyWrapPad,
            kek,
            &wrapped,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Token(false),
                Attribute::Encrypt(true),
            ],
        )
        .unwrap();
    // A session copy of the token key.
    session
        .copy_object(kek, &[Attribute::Token(false)])
        .unwrap();
    // HMAC with a token key.
    let mac_key = session
        .generate_key(
            &Mechanism::GenericSecretKeyGen,
            &[
                Attribute::Token(true),
                Attribute::ValueLen(32.into()),
                Attribute::Sign(true),
                Attribute::Verify(true),
            ],
        )
        .unwrap();
    let mac = session
        .sign(&Mechanism::Sha256Hmac, mac_key, PLAINTEXT)
        .unwrap();
    session
        .verify(&Mechanism::Sha256Hmac, mac_key, PLAINTEXT, &mac)
        .unwrap();
    // A readable token key: its value read (one record, not one for the
    // length query too), then sealed.
    let readable = token_key(
        &session,
        &[
            Attribute::ValueLen(16.into()),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
            Attribute::Encrypt(true),
        ],
    );
    let value = match session
        .get_attributes(readable, &[AttributeType::Value])
        .unwrap()
        .pop()
    {
        Some(Attribute::Value(v)) => v,
        other => panic!("{other:?}"),
    };
    // Its value digested (C_DigestKey reads it too): one record, and the
    // digest is SHA-256 of the value read above.
    session.digest_init(&Mechanism::Sha256).unwrap();
    session.digest_key(readable).unwrap();
    let digest = session.digest_final().unwrap();
    assert_eq!(
        digest,
        ring::digest::digest(&ring::digest::SHA256, &value).as_ref()
    );
    session
        .update_attributes(readable, &[Attribute::Sensitive(true)])
        .unwrap();
    // ECDH from a token key pair (the embedded backend offers it).
    let mut expected = vec![
        "C_CreateObject",
        "C_EncryptFinal",
        "C_WrapKey",
        "C_UnwrapKey",
        "C_CopyObject",
        "C_GenerateKey",
        "C_Sign",
        "C_Verify",
        "C_GenerateKey",
        "C_GetAttributeValue",
        "C_DigestKey",
        "C_SetAttributeValue",
    ];
    if which == Which::Embedded {
        let (public, private) = session
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[Attribute::Token(true), Attribute::EcParams(P256.to_vec())],
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Derive(true),
                ],
            )
            .unwrap();
        let point = match session
            .get_attributes(public, &[AttributeType::EcPoint])
            .unwrap()
            .pop()
        {
            Some(Attribute::EcPoint(der)) => der[2..].to_vec(),
            other => panic!("{other:?}"),
        };
        session
            .derive_key(
                &Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &point)),
                private,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::GENERIC_SECRET),
                    Attribute::ValueLen(32.into()),
                    Attribute::Token(false),
                ],
            )
            .unwrap();
        expected.extend(["C_GenerateKeyPair", "C_DeriveKey"]);
    }
    drop(session);

    let (records, text) = exported_records(&m, which);
    let p11 = pkcs11_records(&records);
    let names: Vec<&str> = p11
        .iter()
        .map(|r| r["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(names, expected, "{p11:#?}");
    let arn = |i: usize| p11[i]["resources"][0]["ARN"].as_str().unwrap();
    let mechanism = |i: usize| p11[i]["requestParameters"]["mechanism"].as_str();
    // The imported key is the one every later call on it names.
    for r in &p11[1..5] {
        assert_eq!(r["resources"][0]["ARN"].as_str(), Some(arn(0)), "{r}");
    }
    assert_eq!(mechanism(1), Some("CKM_AES_GCM"));
    assert_eq!(mechanism(2), Some("CKM_AES_KEY_WRAP_PAD"));
    assert_eq!(mechanism(3), Some("CKM_AES_KEY_WRAP_PAD"));
    assert_eq!(mechanism(5), Some("CKM_GENERIC_SECRET_KEY_GEN"));
    assert_eq!(mechanism(6), Some("CKM_SHA256_HMAC"));
    assert_eq!(mechanism(7), Some("CKM_SHA256_HMAC"));
    assert_eq!(arn(6), arn(5));
    assert_eq!(arn(7), arn(5));
    assert_eq!(arn(9), arn(8));
    assert_eq!(arn(10), arn(8));
    assert_eq!(arn(11), arn(8));
    for (i, r) in p11.iter().enumerate() {
        assert!(r.get("errorCode").is_none(), "{i}: {r}");
    }
    if which == Which::Embedded {
        assert_eq!(arn(13), arn(12));
        assert_eq!(mechanism(13), Some("CKM_ECDH1_DERIVE"));
    }
    // No key value (imported or read), MAC, PIN or data.
    assert_absent(
        &text,
        &[
            KEY_VALUE,
            &value,
            &mac,
            &wrapped,
            USER_PIN.as_bytes(),
            PLAINTEXT,
        ],
    );
}

/// A PKCS#8 P-256 private key OpenSSL made, wrapped under `kek` with
/// AES key wrap with padding (RFC 5649).
fn openssl_wrapped_p256(kek: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("p256.raw.der");
    let der = dir.path().join("p256.der");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
        out.stdout
    };
    run(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-outform",
        "DER",
        "-out",
        raw.to_str().unwrap(),
    ]);
    // genpkey writes an EC key in its traditional form: PKCS#8 it.
    run(&[
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
    run(&[
        "enc",
        "-id-aes256-wrap-pad",
        "-K",
        &hex(kek),
        "-iv",
        "A65959A6",
        "-in",
        der.to_str().unwrap(),
    ])
}

/// The finishing calls of multi-part operations, RSA decryption, ECDSA
/// verification, private-key import (C_CreateObject and C_UnwrapKey of
/// PKCS#8) and C_DeriveKey (ECDH and HKDF): one record each, failures
/// with their CKR name.
fn finals_private_keys_and_derivation(which: Which) {
    let m = load(which);
    let session = user_session(&m, "audited-finals");
    let mut expected: Vec<&str> = Vec::new();

    // ECDSA: multi-part sign, single-part verify (good and bad).
    let (ec_public, ec_private) = session
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::Verify(true),
                Attribute::EcParams(P256.to_vec()),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sign(true),
            ],
        )
        .unwrap();
    expected.push("C_GenerateKeyPair");
    session
        .sign_init(&Mechanism::EcdsaSha256, ec_private)
        .unwrap();
    session.sign_update(SIGNED).unwrap();
    session.sign_update(SIGNED).unwrap();
    let signature = session.sign_final().unwrap();
    expected.push("C_SignFinal");
    let both = [SIGNED, SIGNED].concat();
    session
        .verify(&Mechanism::EcdsaSha256, ec_public, &both, &signature)
        .unwrap();
    expected.push("C_Verify");
    let mut bad_signature = signature.clone();
    bad_signature[10] ^= 1;
    assert_eq!(
        rv(session.verify(&Mechanism::EcdsaSha256, ec_public, &both, &bad_signature)),
        RvError::SignatureInvalid
    );
    expected.push("C_Verify");

    // HMAC: multi-part verify (good and bad); the key derives with HKDF.
    let mac_key = session
        .generate_key(
            &Mechanism::GenericSecretKeyGen,
            &[
                Attribute::Token(true),
                Attribute::ValueLen(32.into()),
                Attribute::Sign(true),
                Attribute::Verify(true),
                Attribute::Derive(true),
            ],
        )
        .unwrap();
    expected.push("C_GenerateKey");
    let mac = session
        .sign(&Mechanism::Sha256Hmac, mac_key, &both)
        .unwrap();
    expected.push("C_Sign");
    session
        .verify_init(&Mechanism::Sha256Hmac, mac_key)
        .unwrap();
    session.verify_update(SIGNED).unwrap();
    session.verify_update(SIGNED).unwrap();
    session.verify_final(&mac).unwrap();
    expected.push("C_VerifyFinal");
    let mut bad_mac = mac.clone();
    bad_mac[0] ^= 1;
    session
        .verify_init(&Mechanism::Sha256Hmac, mac_key)
        .unwrap();
    session.verify_update(&both).unwrap();
    assert_eq!(
        rv(session.verify_final(&bad_mac)),
        RvError::SignatureInvalid
    );
    expected.push("C_VerifyFinal");

    // AES-CBC-PAD: multi-part decrypt.
    let aes = token_key(
        &session,
        &[
            Attribute::ValueLen(32.into()),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
        ],
    );
    expected.push("C_GenerateKey");
    let iv = [4u8; 16];
    let ciphertext = session
        .encrypt(&Mechanism::AesCbcPad(iv), aes, PLAINTEXT)
        .unwrap();
    expected.push("C_Encrypt");
    session
        .decrypt_init(&Mechanism::AesCbcPad(iv), aes)
        .unwrap();
    // CBC-PAD streams: the update deciphers every block but the last
    // with the key (one record of its own), the final the last block.
    let mut plain = session.decrypt_update(&ciphertext).unwrap();
    assert_eq!(plain.len(), 16);
    expected.push("C_DecryptUpdate");
    plain.extend(session.decrypt_final().unwrap());
    assert_eq!(plain, PLAINTEXT);
    expected.push("C_DecryptFinal");

    // RSA: decrypt, and decrypt garbage.
    let (rsa_public, rsa_private) = session
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
    expected.push("C_GenerateKeyPair");
    let rsa_ciphertext = session
        .encrypt(&Mechanism::RsaPkcs, rsa_public, PLAINTEXT)
        .unwrap();
    expected.push("C_Encrypt");
    assert_eq!(
        session
            .decrypt(&Mechanism::RsaPkcs, rsa_private, &rsa_ciphertext)
            .unwrap(),
        PLAINTEXT
    );
    expected.push("C_Decrypt");
    let garbage = rv(session.decrypt(&Mechanism::RsaPkcs, rsa_private, &[0x5a; 256]));
    expected.push("C_Decrypt");

    // Private-key import: a P-256 scalar, and a PKCS#8 key unwrapped.
    const SCALAR: &[u8] = &[0x42; 32];
    let imported = session
        .create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::EC),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sign(true),
            Attribute::EcParams(P256.to_vec()),
            Attribute::Value(SCALAR.to_vec()),
        ])
        .unwrap();
    expected.push("C_CreateObject");
    session
        .sign(&Mechanism::EcdsaSha256, imported, SIGNED)
        .unwrap();
    expected.push("C_Sign");
    let kek = session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Value(KEY_VALUE.to_vec()),
            Attribute::Unwrap(true),
        ])
        .unwrap();
    expected.push("C_CreateObject");
    let wrapped = openssl_wrapped_p256(KEY_VALUE);
    let unwrapped = session
        .unwrap_key(
            &Mechanism::AesKeyWrapPad,
            kek,
            &wrapped,
            &[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sign(true),
            ],
        )
        .unwrap();
    expected.push("C_UnwrapKey");
    session
        .sign(&Mechanism::EcdsaSha256, unwrapped, SIGNED)
        .unwrap();
    expected.push("C_Sign");

    // C_DeriveKey: ECDH from a token pair, HKDF from the token HMAC key.
    let (dh_public, dh_private) = session
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::Token(true), Attribute::EcParams(P256.to_vec())],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Derive(true),
            ],
        )
        .unwrap();
    expected.push("C_GenerateKeyPair");
    let point = match session
        .get_attributes(dh_public, &[AttributeType::EcPoint])
        .unwrap()
        .pop()
    {
        Some(Attribute::EcPoint(der)) => der[2..].to_vec(),
        other => panic!("{other:?}"),
    };
    let session_secret = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::ValueLen(32.into()),
        Attribute::Token(false),
    ];
    session
        .derive_key(
            &Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &point)),
            dh_private,
            &session_secret,
        )
        .unwrap();
    expected.push("C_DeriveKey");
    let info = b"audited hkdf info";
    session
        .derive_key(
            &Mechanism::HkdfDerive(HkdfParams::new(
                MechanismType::SHA256,
                Some(HkdfSalt::Null),
                Some(info),
            )),
            mac_key,
            &session_secret,
        )
        .unwrap();
    expected.push("C_DeriveKey");
    drop(session);

    let (records, text) = exported_records(&m, which);
    let p11 = pkcs11_records(&records);
    let names: Vec<&str> = p11
        .iter()
        .map(|r| r["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(names, expected, "{p11:#?}");
    let arn = |i: usize| p11[i]["resources"][0]["ARN"].as_str().unwrap();
    let mechanism = |i: usize| p11[i]["requestParameters"]["mechanism"].as_str();
    let error = |i: usize| p11[i].get("errorCode").and_then(Value::as_str);
    let me = format!("pid={}", std::process::id());
    for r in &p11 {
        let source = r["sourceIPAddress"].as_str().unwrap();
        assert!(
            source.starts_with("unix:uid=") && source.ends_with(&me),
            "{r}"
        );
        assert!(r["userIdentity"]["arn"].as_str().is_some(), "{r}");
    }
    // Records `range` use the key record `owner` made, with `mech`.
    let uses = |range: std::ops::RangeInclusive<usize>, owner: usize, mech: &str| {
        for r in &p11[range] {
            assert_eq!(r["resources"][0]["ARN"].as_str(), Some(arn(owner)), "{r}");
            assert_eq!(
                r["requestParameters"]["mechanism"].as_str(),
                Some(mech),
                "{r}"
            );
        }
    };
    // ECDSA pair: C_SignFinal, C_Verify, C_Verify (bad).
    uses(1..=3, 0, "CKM_ECDSA_SHA256");
    assert_eq!(error(1), None);
    assert_eq!(error(2), None);
    assert_eq!(error(3), Some("CKR_SIGNATURE_INVALID"));
    // HMAC key: C_Sign, C_VerifyFinal, C_VerifyFinal (bad).
    uses(5..=7, 4, "CKM_SHA256_HMAC");
    assert_eq!(error(6), None);
    assert_eq!(error(7), Some("CKR_SIGNATURE_INVALID"));
    // AES key: C_Encrypt, C_DecryptUpdate, C_DecryptFinal.
    uses(9..=11, 8, "CKM_AES_CBC_PAD");
    for r in &p11[9..=11] {
        assert!(r.get("errorCode").is_none(), "{r}");
    }
    // RSA pair: C_Encrypt, C_Decrypt, C_Decrypt (garbage).
    uses(13..=15, 12, "CKM_RSA_PKCS");
    assert_eq!(error(13), None);
    assert_eq!(error(14), None);
    let garbage_code = match garbage {
        RvError::EncryptedDataInvalid => "CKR_ENCRYPTED_DATA_INVALID",
        RvError::EncryptedDataLenRange => "CKR_ENCRYPTED_DATA_LEN_RANGE",
        other => panic!("RSA decryption of garbage: {other:?}"),
    };
    assert_eq!(error(15), Some(garbage_code), "{}", p11[15]);
    // Imported private keys: the key made is the one that signs.
    assert_eq!(arn(17), arn(16));
    assert_eq!(mechanism(17), Some("CKM_ECDSA_SHA256"));
    assert_eq!(mechanism(19), Some("CKM_AES_KEY_WRAP_PAD"));
    assert_eq!(arn(19), arn(18), "{}", p11[19]);
    assert_ne!(arn(20), arn(18), "{}", p11[20]);
    assert_ne!(arn(20), arn(16), "{}", p11[20]);
    assert_eq!(mechanism(20), Some("CKM_ECDSA_SHA256"));
    // Derivation: ECDH from the token pair, HKDF from the HMAC key.
    assert_eq!(arn(22), arn(21));
    assert_eq!(mechanism(22), Some("CKM_ECDH1_DERIVE"));
    assert_eq!(arn(23), arn(4));
    assert_eq!(mechanism(23), Some("CKM_HKDF_DERIVE"));
    for r in &p11[16..] {
        assert!(r.get("errorCode").is_none(), "{r}");
    }
    // No key value, signature input, data or PIN.
    assert_absent(
        &text,
        &[
            SCALAR,
            KEY_VALUE,
            &wrapped,
            &mac,
            USER_PIN.as_bytes(),
            PLAINTEXT,
            SIGNED,
        ],
    );
}

/// Issue 16: the PKCS#11 3.2 calls on token ML-DSA / ML-KEM keys are
/// recorded like every other token-key call: the pairs' generation,
/// C_Sign / C_Verify with CKM_ML_DSA, C_EncapsulateKey and C_DecapsulateKey
/// with CKM_ML_KEM (the length query is not), each naming its key; the
/// same calls on session pairs leave nothing.
fn post_quantum_calls(which: Which) {
    use cryptoki::mechanism::dsa::{HedgeType, SignAdditionalContext};
    use cryptoki::object::{MlDsaParameterSetType, MlKemParameterSetType};
    let m = load(which);
    let session = user_session(&m, "audited-pq");
    let mech = Mechanism::MlDsa(SignAdditionalContext::new(
        HedgeType::Required,
        Some(b"ctx"),
    ));
    let secret = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(false),
    ];
    for on_token in [false, true] {
        let (dsa_public, dsa_private) = session
            .generate_key_pair(
                &Mechanism::MlDsaKeyPairGen,
                &[
                    Attribute::Token(on_token),
                    Attribute::Verify(true),
                    Attribute::ParameterSet(MlDsaParameterSetType::ML_DSA_44.into()),
                ],
                &[Attribute::Token(on_token), Attribute::Sign(true)],
            )
            .unwrap();
        let signature = session.sign(&mech, dsa_private, SIGNED).unwrap();
        session
            .verify(&mech, dsa_public, SIGNED, &signature)
            .unwrap();
        let (kem_public, kem_private) = session
            .generate_key_pair(
                &Mechanism::MlKemKeyPairGen,
                &[
                    Attribute::Token(on_token),
                    Attribute::ParameterSet(MlKemParameterSetType::ML_KEM_512.into()),
                ],
                &[Attribute::Token(on_token)],
            )
            .unwrap();
        let (ct, _) = session
            .encapsulate_key(&Mechanism::MlKem, kem_public, &secret)
            .unwrap();
        session
            .decapsulate_key(&Mechanism::MlKem, kem_private, &secret, &ct)
            .unwrap();
    }
    drop(session);

    let (records, text) = exported_records(&m, which);
    let p11 = pkcs11_records(&records);
    let names: Vec<&str> = p11
        .iter()
        .map(|r| r["eventName"].as_str().unwrap())
        .collect();
    // Only the token pairs' calls (the encapsulation's length query is not
    // recorded).
    assert_eq!(
        names,
        [
            "C_GenerateKeyPair",
            "C_Sign",
            "C_Verify",
            "C_GenerateKeyPair",
            "C_EncapsulateKey",
            "C_DecapsulateKey",
        ],
        "{p11:?}"
    );
    let mechanism = |i: usize| p11[i]["requestParameters"]["mechanism"].as_str();
    assert_eq!(mechanism(0), Some("CKM_ML_DSA_KEY_PAIR_GEN"));
    assert_eq!(mechanism(1), Some("CKM_ML_DSA"));
    assert_eq!(mechanism(3), Some("CKM_ML_KEM_KEY_PAIR_GEN"));
    assert_eq!(mechanism(4), Some("CKM_ML_KEM"));
    assert_eq!(mechanism(5), Some("CKM_ML_KEM"));
    let arn = |i: usize| p11[i]["resources"][0]["ARN"].as_str().unwrap().to_string();
    assert_eq!(arn(1), arn(2));
    assert_eq!(arn(4), arn(5));
    assert_ne!(arn(1), arn(4));
    for r in &p11 {
        assert!(r.get("errorCode").is_none(), "{r}");
    }
    assert_absent(&text, &[USER_PIN.as_bytes(), SIGNED]);
}

ours_only_embedded!(
    session_and_token_calls,
    the_other_entry_points,
    finals_private_keys_and_derivation,
    post_quantum_calls
);
