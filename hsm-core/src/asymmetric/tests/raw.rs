//! Tests of the PKCS#11 raw variants: agreement with the KMS functions and
//! with openssl, and their unhappy paths.

use super::openssl::openssl;
use super::*;
use crate::asymmetric::raw::{MAX_EDDSA_MESSAGE_LEN, MAX_PSS_SALT_LEN};

/// The DER DigestInfo prefix of SHA-256 (RFC 8017 §9.2 note 1).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

fn sha(algorithm: &'static digest::Algorithm, data: &[u8]) -> Vec<u8> {
    digest::digest(algorithm, data).as_ref().to_vec()
}

#[test]
fn rsa_pkcs1_over_a_digest_info_equals_the_kms_signature() {
    let spec = KeySpec::Rsa2048;
    let cases = [
        (
            SigningAlgorithm::RsassaPkcs1V15Sha256,
            &digest::SHA256,
            0x01,
            0x31,
            0x20,
        ),
        (
            SigningAlgorithm::RsassaPkcs1V15Sha384,
            &digest::SHA384,
            0x02,
            0x41,
            0x30,
        ),
        (
            SigningAlgorithm::RsassaPkcs1V15Sha512,
            &digest::SHA512,
            0x03,
            0x51,
            0x40,
        ),
    ];
    for (algorithm, hash, oid_last, outer_len, digest_len) in cases {
        let digest = sha(hash, b"to be signed");
        let mut info = SHA256_DIGEST_INFO.to_vec();
        info[1] = outer_len;
        info[14] = oid_last;
        info[18] = digest_len;
        info.extend_from_slice(&digest);
        let raw = rsa_pkcs1v15_sign_digest_info(spec, key(spec), &info).unwrap();
        // PKCS#1 v1.5 is deterministic: the same bytes KMS Sign gives.
        let kms = sign(spec, key(spec), algorithm, &digest, MessageType::Digest).unwrap();
        assert_eq!(raw, kms, "{algorithm}");
        assert!(rsa_pkcs1v15_verify_digest_info(spec, key(spec), &info, &raw).unwrap());
        let mut tampered = raw.clone();
        tampered[7] ^= 0x10;
        assert!(!rsa_pkcs1v15_verify_digest_info(spec, key(spec), &info, &tampered).unwrap());
        assert!(!rsa_pkcs1v15_verify_digest_info(spec, key(spec), &info, &raw[1..]).unwrap());
    }
}

#[test]
fn rsa_pkcs1_refuses_other_digest_infos() {
    let spec = KeySpec::Rsa3072;
    let digest = sha(&digest::SHA256, b"m");
    let mut good = SHA256_DIGEST_INFO.to_vec();
    good.extend_from_slice(&digest);
    // SHA-1 DigestInfo, a digest of the wrong length, no NULL parameters, raw digest, empty.
    let sha1_info = [
        &[
            0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
            0x14,
        ][..],
        &[0u8; 20][..],
    ]
    .concat();
    let no_null = [
        &[
            0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x04, 0x20,
        ][..],
        &digest[..],
    ]
    .concat();
    let cases = [
        sha1_info,
        good[..good.len() - 1].to_vec(),
        no_null,
        digest.clone(),
        vec![],
    ];
    for bad in cases {
        let signed = rsa_pkcs1v15_sign_digest_info(spec, key(spec), &bad);
        assert_eq!(kind(signed), "ValidationException", "{} bytes", bad.len());
        let verified = rsa_pkcs1v15_verify_digest_info(spec, key(spec), &bad, &[0; 384]);
        assert_eq!(kind(verified), "ValidationException");
    }
    let p256 = KeySpec::EccNistP256;
    let signed = rsa_pkcs1v15_sign_digest_info(p256, key(p256), &good);
    assert_eq!(kind(signed), "KMSInternalException");
}

#[test]
fn rsa_pss_with_explicit_salt_lengths() {
    let spec = KeySpec::Rsa2048;
    for (hash, library, name) in [
        (PssHash::Sha256, &digest::SHA256, "sha256"),
        (PssHash::Sha384, &digest::SHA384, "sha384"),
        (PssHash::Sha512, &digest::SHA512, "sha512"),
    ] {
        let digest = sha(library, b"pss message");
        for salt in [0, 20, library.output_len(), MAX_PSS_SALT_LEN] {
            let signature = rsa_pss_sign_digest_raw(spec, key(spec), hash, salt, &digest).unwrap();
            assert!(
                rsa_pss_verify_digest_raw(spec, key(spec), hash, salt, &digest, &signature)
                    .unwrap()
            );
            let other_salt = if salt == 0 { 1 } else { salt - 1 };
            assert!(
                !rsa_pss_verify_digest_raw(spec, key(spec), hash, other_salt, &digest, &signature)
                    .unwrap(),
                "{hash:?} salt {salt} verified with salt {other_salt}"
            );
            // openssl agrees, salt length included.
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path();
            std::fs::write(
                path.join("pub.der"),
                public_key_der(spec, key(spec)).unwrap(),
            )
            .unwrap();
            std::fs::write(path.join("digest.bin"), &digest).unwrap();
            std::fs::write(path.join("sig.bin"), &signature).unwrap();
            let md = format!("digest:{name}");
            let saltlen = format!("rsa_pss_saltlen:{salt}");
            let args = [
                "pkeyutl",
                "-verify",
                "-pubin",
                "-keyform",
                "DER",
                "-inkey",
                "pub.der",
                "-in",
                "digest.bin",
                "-sigfile",
                "sig.bin",
                "-pkeyopt",
                "rsa_padding_mode:pss",
                "-pkeyopt",
                &md,
                "-pkeyopt",
                &saltlen,
            ];
            assert!(
                openssl(path, &args),
                "openssl rejected {hash:?} salt {salt}"
            );
        }
        let result = rsa_pss_sign_digest_raw(spec, key(spec), hash, MAX_PSS_SALT_LEN + 1, &digest);
        assert_eq!(kind(result), "ValidationException");
        let result = rsa_pss_sign_digest_raw(spec, key(spec), hash, 32, &digest[1..]);
        assert_eq!(kind(result), "ValidationException");
        let result = rsa_pss_verify_digest_raw(spec, key(spec), hash, 32, &[], &[0; 256]);
        assert_eq!(kind(result), "ValidationException");
    }
    // Salt = hash length is what KMS uses.
    let digest = sha(&digest::SHA256, b"kms");
    let raw = rsa_pss_sign_digest_raw(spec, key(spec), PssHash::Sha256, 32, &digest).unwrap();
    let algorithm = SigningAlgorithm::RsassaPssSha256;
    assert!(verify(
        spec,
        key(spec),
        algorithm,
        &digest,
        MessageType::Digest,
        &raw
    )
    .unwrap());
}

/// DER `SEQUENCE { INTEGER r, INTEGER s }` of a fixed-size r||s signature.
fn der_of_fixed(signature: &[u8]) -> Vec<u8> {
    fn integer(bytes: &[u8]) -> Vec<u8> {
        let start = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        let mut value = bytes[start..].to_vec();
        if value[0] & 0x80 != 0 {
            value.insert(0, 0);
        }
        let mut out = vec![0x02, value.len() as u8];
        out.extend(value);
        out
    }
    let (r, s) = signature.split_at(signature.len() / 2);
    let body = [integer(r), integer(s)].concat();
    let mut out = vec![0x30];
    if body.len() >= 0x80 {
        out.push(0x81);
    }
    out.push(body.len() as u8);
    out.extend(body);
    out
}

#[test]
fn ecdsa_over_a_raw_digest_gives_r_s_that_openssl_accepts() {
    for (spec, half) in [
        (KeySpec::EccNistP256, 32),
        (KeySpec::EccNistP384, 48),
        (KeySpec::EccNistP521, 66),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        std::fs::write(
            path.join("pub.der"),
            public_key_der(spec, key(spec)).unwrap(),
        )
        .unwrap();
        // SHA-1, SHA-224, SHA-256, SHA-384, SHA-512 lengths, shorter or longer than the curve's.
        for len in [20, 28, 32, 48, 64] {
            let digest: Vec<u8> = (0..len).map(|i| (i * 13 + 200) as u8).collect();
            let signature = ecdsa_sign_digest_raw(spec, key(spec), &digest).unwrap();
            assert_eq!(signature.len(), 2 * half, "{spec}");
            assert!(ecdsa_verify_digest_raw(spec, key(spec), &digest, &signature).unwrap());
            let mut tampered = signature.clone();
            tampered[half] ^= 0x04;
            assert!(!ecdsa_verify_digest_raw(spec, key(spec), &digest, &tampered).unwrap());
            std::fs::write(path.join("digest.bin"), &digest).unwrap();
            std::fs::write(path.join("sig.der"), der_of_fixed(&signature)).unwrap();
            let args = [
                "pkeyutl",
                "-verify",
                "-pubin",
                "-keyform",
                "DER",
                "-inkey",
                "pub.der",
                "-in",
                "digest.bin",
                "-sigfile",
                "sig.der",
            ];
            assert!(
                openssl(path, &args),
                "openssl rejected {spec} over {len} bytes"
            );
        }
        let signature = ecdsa_sign_digest_raw(spec, key(spec), &[1; 32]).unwrap();
        for bad in [&signature[1..], &[][..], &der_of_fixed(&signature)[..]] {
            assert!(!ecdsa_verify_digest_raw(spec, key(spec), &[1; 32], bad).unwrap());
        }
        for bad_digest in [vec![], vec![1; 65]] {
            let result = ecdsa_sign_digest_raw(spec, key(spec), &bad_digest);
            assert_eq!(kind(result), "ValidationException", "{spec}");
            let result = ecdsa_verify_digest_raw(spec, key(spec), &bad_digest, &signature);
            assert_eq!(kind(result), "ValidationException", "{spec}");
        }
    }
    let rsa = KeySpec::Rsa2048;
    assert_eq!(
        kind(ecdsa_sign_digest_raw(rsa, key(rsa), &[1; 32])),
        "ValidationException"
    );
}

#[test]
fn eddsa_raw_equals_kms_signing_and_takes_long_messages() {
    let spec = KeySpec::EccEd25519;
    let algorithm = SigningAlgorithm::Ed25519Sha512;
    let raw = eddsa_sign_raw(spec, key(spec), b"same message").unwrap();
    let kms = sign(
        spec,
        key(spec),
        algorithm,
        b"same message",
        MessageType::Raw,
    )
    .unwrap();
    assert_eq!(raw, kms);
    for message in [
        vec![],
        vec![3; MAX_MESSAGE_LEN + 1],
        vec![4; MAX_EDDSA_MESSAGE_LEN],
    ] {
        let signature = eddsa_sign_raw(spec, key(spec), &message).unwrap();
        assert!(eddsa_verify_raw(spec, key(spec), &message, &signature).unwrap());
        let mut tampered = signature.clone();
        tampered[0] ^= 1;
        assert!(!eddsa_verify_raw(spec, key(spec), &message, &tampered).unwrap());
        assert!(!eddsa_verify_raw(spec, key(spec), &message, &signature[..63]).unwrap());
    }
    let too_long = vec![0; MAX_EDDSA_MESSAGE_LEN + 1];
    assert_eq!(
        kind(eddsa_sign_raw(spec, key(spec), &too_long)),
        "ValidationException"
    );
    let verified = eddsa_verify_raw(spec, key(spec), &too_long, &[0; 64]);
    assert_eq!(kind(verified), "ValidationException");
    let p256 = KeySpec::EccNistP256;
    assert_eq!(
        kind(eddsa_sign_raw(p256, key(p256), b"m")),
        "ValidationException"
    );
}
