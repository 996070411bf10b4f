//! EC P-521 keys: CKM_EC_KEY_PAIR_GEN with the secp521r1 parameters and
//! ECDSA (raw digest and SHA-512) against our module and SoftHSM2, checked
//! by OpenSSL with the exported public key; and a P-521 key made with the
//! `tinfoil` CLI shows as a private and a public key object that sign.

mod common;

use common::{der, der_uint, rv, user_session};

use std::path::Path;
use std::process::Command;

use common::{daemon, load, Which};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

/// DER of the secp521r1 OID (CKA_EC_PARAMS).
const P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];

/// The public key object's uncompressed point (CKA_EC_POINT unwrapped
/// from its OCTET STRING), after checking CKA_EC_PARAMS.
fn point(session: &Session, public: ObjectHandle) -> Vec<u8> {
    let attrs = session
        .get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])
        .unwrap();
    let [Attribute::EcParams(params), Attribute::EcPoint(octets)] = attrs.as_slice() else {
        panic!("unexpected {attrs:?}")
    };
    assert_eq!(params, P521);
    assert_eq!(
        &octets[..3],
        &[0x04, 0x81, 0x85],
        "an OCTET STRING of 133 bytes"
    );
    assert_eq!(octets[3], 0x04, "uncompressed");
    octets[3..].to_vec()
}

/// OpenSSL checks an r || s signature of `digest` with the point.
fn openssl_verifies(d: &Path, point: &[u8], digest: &[u8], rs: &[u8]) -> bool {
    let ec_oid = der(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]);
    let algorithm = der(0x30, &[ec_oid, P521.to_vec()].concat());
    let bits = der(0x03, &[&[0u8][..], point].concat());
    let spki = der(0x30, &[algorithm, bits].concat());
    let (r, s) = rs.split_at(rs.len() / 2);
    let sig = der(0x30, &[der_uint(r), der_uint(s)].concat());
    let p = |name: &str| d.join(name).display().to_string();
    std::fs::write(d.join("pub.der"), spki).unwrap();
    std::fs::write(d.join("digest.bin"), digest).unwrap();
    std::fs::write(d.join("sig.der"), sig).unwrap();
    let out = Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey"])
        .arg(p("pub.der"))
        .arg("-in")
        .arg(p("digest.bin"))
        .arg("-sigfile")
        .arg(p("sig.der"))
        .output()
        .expect("openssl must be installed");
    out.status.success()
}

/// Signs with CKM_ECDSA (and CKM_ECDSA_SHA512 unless `raw_only`: SoftHSM
/// 2.6 has no hashed ECDSA) and checks with C_Verify and OpenSSL.
fn check_signs(session: &Session, private: ObjectHandle, public: ObjectHandle, raw_only: bool) {
    let point = point(session, public);
    let dir = tempfile::tempdir().unwrap();
    let digest = [0x5au8; 64];
    let rs = session.sign(&Mechanism::Ecdsa, private, &digest).unwrap();
    assert_eq!(rs.len(), 132);
    session
        .verify(&Mechanism::Ecdsa, public, &digest, &rs)
        .unwrap();
    assert!(openssl_verifies(dir.path(), &point, &digest, &rs));
    let mut bad = rs.clone();
    bad[10] ^= 1;
    assert_eq!(
        rv(session.verify(&Mechanism::Ecdsa, public, &digest, &bad)),
        RvError::SignatureInvalid
    );
    assert!(!openssl_verifies(dir.path(), &point, &digest, &bad));
    if raw_only {
        return;
    }

    let message = b"signed with SHA-512 on P-521";
    let rs = session
        .sign(&Mechanism::EcdsaSha512, private, message)
        .unwrap();
    assert_eq!(rs.len(), 132);
    session
        .verify(&Mechanism::EcdsaSha512, public, message, &rs)
        .unwrap();
    let hashed = ring::digest::digest(&ring::digest::SHA512, message);
    assert!(openssl_verifies(dir.path(), &point, hashed.as_ref(), &rs));
}

fn p521_key_pairs_generate_and_sign(which: Which) {
    let m = load(which);
    let session = user_session(&m, "p521");
    let (public, private) = session
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::EcParams(P521.to_vec()),
                Attribute::Verify(true),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sign(true),
            ],
        )
        .expect("a P-521 key pair");
    check_signs(&session, private, public, which == Which::SoftHsm);
}

with_keys!(p521_key_pairs_generate_and_sign);

#[test]
fn a_p521_key_made_with_the_cli_is_a_key_pair_object_that_signs() {
    let m = load(Which::Daemon);
    let session = user_session(&m, "p521-cli");
    let out = daemon::cli(&[
        "create-key",
        "--token",
        "p521-cli",
        "--key-spec",
        "ECC_NIST_P521",
        "--key-usage",
        "SIGN_VERIFY",
        "--description",
        "cli-p521",
        "--output",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = made["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .as_bytes()
        .to_vec();
    let find = |class| {
        session
            .find_objects(&[Attribute::Id(id.clone()), Attribute::Class(class)])
            .unwrap()
    };
    let (private, public) = (
        find(ObjectClass::PRIVATE_KEY),
        find(ObjectClass::PUBLIC_KEY),
    );
    assert_eq!(
        (private.len(), public.len()),
        (1, 1),
        "a private and a public object"
    );
    let params = session
        .get_attributes(private[0], &[AttributeType::EcParams])
        .unwrap();
    assert_eq!(params, vec![Attribute::EcParams(P521.to_vec())]);
    check_signs(&session, private[0], public[0], false);
}
