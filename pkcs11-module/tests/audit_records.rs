//! Issue 11 through the module: every entry point that touches a token key
//! leaves exactly one record in the store's audit chain (the embedded
//! store's own, or tinfoild's), named by the function, with the mechanism,
//! the caller's Unix identity and the key; the chain exports and verifies
//! offline; no PIN or data reaches it. Calls on session keys leave none.

mod common;

use std::path::Path;

use common::{daemon, load, user_session, Which, USER_PIN};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use serde_json::Value;

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const PLAINTEXT: &[u8] = b"audited plaintext 8b1f0c";
const SIGNED: &[u8] = b"audited signature input 77a2";

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

    let export = tempfile::tempdir().unwrap();
    let out_dir = export.path().join("export");
    let me = format!("pid={}", std::process::id());
    match which {
        Which::Embedded => {
            // The embedded store is this process's: close it, then open it
            // as an administrator would to export its log.
            let _ = m.p11.clone().finalize();
            let data = m.dir.path().join("data");
            let hsm = hsm_core::Hsm::open(
                &data,
                &hsm_core::SecretString::from("a passphrase for tests".to_string()),
                hsm_core::HsmOptions::default(),
            )
            .unwrap();
            let admin = hsm_core::Caller::new(hsm_core::Principal::Root, "test");
            hsm.export_audit_log_to_dir(&admin, &out_dir, 1).unwrap();
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
    let (records, text) = verified_records(&out_dir);
    let p11: Vec<&Value> = records
        .iter()
        .filter(|r| r["eventSource"] == "pkcs11.tinfoil.local")
        .collect();
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
    for secret in [USER_PIN.as_bytes(), PLAINTEXT, SIGNED] {
        for form in [
            String::from_utf8_lossy(secret).to_string(),
            hex(secret),
            base64(secret),
        ] {
            assert!(!text.contains(&form), "{form} is in the log");
        }
    }
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

ours_only_embedded!(session_and_token_calls);
