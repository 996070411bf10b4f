//! Cross-checks with the openssl binary: our signatures verify against the
//! SPKI from `public_key_der`, and openssl's OAEP ciphertexts under that
//! public key decrypt in the core. Only public keys, messages, signatures
//! and ciphertexts are written to the temporary directory.

use std::path::Path;
use std::process::Command;

use super::*;
use crate::types::EncryptionAlgorithm;

/// Runs `/usr/bin/openssl` in `dir`; whether it exited with success.
pub(super) fn openssl(dir: &Path, args: &[&str]) -> bool {
    let output = Command::new("/usr/bin/openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl binary runs");
    output.status.success()
}

/// Writes the public key, message and signature; whether openssl verifies.
fn openssl_verifies(
    spec: KeySpec,
    algorithm: SigningAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> bool {
    use SigningAlgorithm as S;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    std::fs::write(
        path.join("pub.der"),
        public_key_der(spec, key(spec)).unwrap(),
    )
    .unwrap();
    std::fs::write(path.join("msg.bin"), message).unwrap();
    std::fs::write(path.join("sig.bin"), signature).unwrap();
    if algorithm == S::Ed25519Sha512 {
        let args = [
            "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", "pub.der", "-rawin",
            "-in", "msg.bin", "-sigfile", "sig.bin",
        ];
        return openssl(path, &args);
    }
    let hash = match hash_of(algorithm).output_len() {
        32 => "sha256",
        48 => "sha384",
        _ => "sha512",
    };
    let salt = format!("rsa_pss_saltlen:{}", hash_of(algorithm).output_len());
    let mgf1 = format!("rsa_mgf1_md:{hash}");
    let mut args = vec![
        "dgst".to_string(),
        format!("-{hash}"),
        "-keyform".into(),
        "DER".into(),
        "-verify".into(),
        "pub.der".into(),
        "-signature".into(),
        "sig.bin".into(),
    ];
    if matches!(
        algorithm,
        S::RsassaPssSha256 | S::RsassaPssSha384 | S::RsassaPssSha512
    ) {
        for option in ["rsa_padding_mode:pss", &salt, &mgf1] {
            args.extend(["-sigopt".to_string(), option.to_string()]);
        }
    }
    args.push("msg.bin".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    openssl(path, &args)
}

#[test]
fn openssl_verifies_every_signature_and_rejects_tampered_ones() {
    let text = b"signed by tinfoil, checked by openssl";
    for spec in SIGNING_SPECS {
        for &algorithm in signing_algorithms(spec) {
            for &message_type in message_types(algorithm) {
                // A DIGEST signature is a signature of the message the digest is of.
                let message = input(algorithm, message_type, text);
                let signature = sign(spec, key(spec), algorithm, &message, message_type).unwrap();
                assert!(
                    openssl_verifies(spec, algorithm, text, &signature),
                    "openssl rejected {spec} {algorithm} {message_type}"
                );
            }
            let mut tampered = sign(spec, key(spec), algorithm, text, MessageType::Raw).unwrap();
            let last = tampered.len() - 1;
            tampered[last] ^= 0x01;
            assert!(
                !openssl_verifies(spec, algorithm, text, &tampered),
                "openssl accepted a tampered {spec} {algorithm} signature"
            );
            assert!(!openssl_verifies(
                spec,
                algorithm,
                b"another text",
                &tampered
            ));
        }
    }
}

/// openssl's OAEP encryption of `plaintext` under the spec's public key.
fn openssl_oaep_encrypt(spec: KeySpec, hash: &str, plaintext: &[u8]) -> Option<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    std::fs::write(
        path.join("pub.der"),
        public_key_der(spec, key(spec)).unwrap(),
    )
    .unwrap();
    std::fs::write(path.join("pt.bin"), plaintext).unwrap();
    let oaep_md = format!("rsa_oaep_md:{hash}");
    let mgf1_md = format!("rsa_mgf1_md:{hash}");
    let args = [
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-keyform",
        "DER",
        "-inkey",
        "pub.der",
        "-in",
        "pt.bin",
        "-out",
        "ct.bin",
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        &oaep_md,
        "-pkeyopt",
        &mgf1_md,
    ];
    openssl(path, &args).then(|| std::fs::read(path.join("ct.bin")).unwrap())
}

#[test]
fn openssl_oaep_ciphertexts_decrypt_in_the_core() {
    use EncryptionAlgorithm as E;
    for (spec, k) in [
        (KeySpec::Rsa2048, 256),
        (KeySpec::Rsa3072, 384),
        (KeySpec::Rsa4096, 512),
    ] {
        for (algorithm, hash, other, overhead) in [
            (E::RsaesOaepSha1, "sha1", E::RsaesOaepSha256, 42),
            (E::RsaesOaepSha256, "sha256", E::RsaesOaepSha1, 66),
        ] {
            for len in [1, 48, k - overhead] {
                let plaintext: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                let ciphertext = openssl_oaep_encrypt(spec, hash, &plaintext).unwrap();
                let decrypted = rsa_decrypt(spec, key(spec), algorithm, &ciphertext).unwrap();
                assert_eq!(*decrypted, plaintext, "{spec} {algorithm} {len} bytes");
                let misread = rsa_decrypt(spec, key(spec), other, &ciphertext);
                assert_eq!(
                    kind(misread),
                    "InvalidCiphertextException",
                    "{spec} {algorithm}"
                );
            }
            // openssl enforces the same limit the core does.
            assert!(openssl_oaep_encrypt(spec, hash, &vec![1; k - overhead + 1]).is_none());
        }
    }
}
