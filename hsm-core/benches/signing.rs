//! Sign per second through the core (`Hsm::sign`, RAW 256-byte message)
//! against the raw aws-lc-rs call on an already parsed key, for ECDSA P-256,
//! Ed25519 and RSA-2048 (PKCS#1 v1.5 SHA-256), in the same run. A third
//! figure, the raw call parsing the PKCS#8 key each time, shows how much of
//! the core's cost is key parsing. Prints each core/raw ratio (target 0.8).
//!
//! Run: `cargo bench -p hsm-core --bench signing`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair};
use criterion::{criterion_group, criterion_main, Criterion};
use hsm_core::{
    CreateKeyRequest, Hsm, HsmOptions, KdfParams, KeySpec, KeyUsage, MessageType, SecretString,
    SigningAlgorithm, SystemClock,
};

/// The message every call signs.
const MESSAGE: [u8; 256] = [0x5a; 256];

/// One algorithm under test: the core's key and the raw library's.
struct Case {
    name: &'static str,
    key_id: String,
    algorithm: SigningAlgorithm,
    raw: Box<dyn Fn() -> Vec<u8>>,
    raw_parsing: Box<dyn Fn() -> Vec<u8>>,
}

fn open_store(dir: &std::path::Path) -> Hsm {
    let options = HsmOptions {
        kdf: KdfParams {
            memory_kib: 8192,
            iterations: 1,
            parallelism: 1,
        },
        clock: Arc::new(SystemClock),
        cache_capacity: 1024,
        account: Default::default(),
    };
    Hsm::init(dir, &SecretString::from("bench passphrase"), options).expect("init")
}

fn create(hsm: &Hsm, spec: KeySpec) -> String {
    let request = CreateKeyRequest {
        key_spec: Some(spec),
        key_usage: Some(KeyUsage::SignVerify),
        ..Default::default()
    };
    hsm.create_key(request).expect("create_key").key_id
}

fn cases(hsm: &Hsm) -> Vec<Case> {
    let rng = SystemRandom::new();
    let p256_alg = &signature::ECDSA_P256_SHA256_ASN1_SIGNING;
    let p256_pkcs8 = EcdsaKeyPair::generate_pkcs8(p256_alg, &rng).unwrap();
    let p256 = EcdsaKeyPair::from_pkcs8(p256_alg, p256_pkcs8.as_ref()).unwrap();
    let ed_pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let ed = Ed25519KeyPair::from_pkcs8(ed_pkcs8.as_ref()).unwrap();
    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let rsa_pkcs8 = rsa.as_der().unwrap().as_ref().to_vec();
    let rsa = Arc::new(rsa);
    let rsa_parse = rsa_pkcs8.clone();
    vec![
        Case {
            name: "ECDSA P-256",
            key_id: create(hsm, KeySpec::EccNistP256),
            algorithm: SigningAlgorithm::EcdsaSha256,
            raw: Box::new({
                let rng = rng.clone();
                move || p256.sign(&rng, &MESSAGE).unwrap().as_ref().to_vec()
            }),
            raw_parsing: Box::new({
                let rng = rng.clone();
                move || {
                    let key = EcdsaKeyPair::from_pkcs8(p256_alg, p256_pkcs8.as_ref()).unwrap();
                    key.sign(&rng, &MESSAGE).unwrap().as_ref().to_vec()
                }
            }),
        },
        Case {
            name: "Ed25519",
            key_id: create(hsm, KeySpec::EccEd25519),
            algorithm: SigningAlgorithm::Ed25519Sha512,
            raw: Box::new(move || ed.sign(&MESSAGE).as_ref().to_vec()),
            raw_parsing: Box::new(move || {
                let key = Ed25519KeyPair::from_pkcs8(ed_pkcs8.as_ref()).unwrap();
                key.sign(&MESSAGE).as_ref().to_vec()
            }),
        },
        Case {
            name: "RSA-2048 PKCS#1 v1.5 SHA-256",
            key_id: create(hsm, KeySpec::Rsa2048),
            algorithm: SigningAlgorithm::RsassaPkcs1V15Sha256,
            raw: Box::new({
                let rng = rng.clone();
                move || {
                    let mut out = vec![0; rsa.public_modulus_len()];
                    rsa.sign(&signature::RSA_PKCS1_SHA256, &rng, &MESSAGE, &mut out)
                        .unwrap();
                    out
                }
            }),
            raw_parsing: Box::new(move || {
                let key = RsaKeyPair::from_pkcs8(&rsa_parse).unwrap();
                let mut out = vec![0; key.public_modulus_len()];
                key.sign(&signature::RSA_PKCS1_SHA256, &rng, &MESSAGE, &mut out)
                    .unwrap();
                out
            }),
        },
    ]
}

/// Median nanoseconds per call of `f` over `rounds` batches of `batch`.
fn median_ns(rounds: usize, batch: usize, f: &dyn Fn()) -> f64 {
    let mut samples: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..batch {
                f();
            }
            start.elapsed().as_nanos() as f64 / batch as f64
        })
        .collect();
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    samples[samples.len() / 2]
}

/// Interleaved rounds of core, raw and raw-with-parsing so all three see
/// the same machine load; prints ops/s and the core/raw ratio.
fn ratios(hsm: &Hsm, cases: &[Case]) {
    for case in cases {
        // Aim for ~50 ms per batch whatever the algorithm's speed.
        let probe = median_ns(3, 10, &|| {
            black_box((case.raw)());
        });
        let batch = ((50e6 / probe) as usize).clamp(5, 20_000);
        let core_call = || {
            black_box(
                hsm.sign(
                    &case.key_id,
                    black_box(&MESSAGE),
                    MessageType::Raw,
                    case.algorithm,
                )
                .unwrap(),
            );
        };
        let (mut core, mut raw, mut parsing) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..9 {
            core.push(median_ns(3, batch, &core_call));
            raw.push(median_ns(3, batch, &|| {
                black_box((case.raw)());
            }));
            parsing.push(median_ns(3, batch, &|| {
                black_box((case.raw_parsing)());
            }));
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[v.len() / 2]
        };
        let (core, raw, parsing) = (median(&mut core), median(&mut raw), median(&mut parsing));
        println!(
            "RATIO Sign {}: core {:.0} signs/s, raw {:.0} signs/s, raw parsing PKCS#8 each call \
             {:.0} signs/s; core/raw = {:.2} (target >= 0.80), raw-parsing/raw = {:.2}",
            case.name,
            1e9 / core,
            1e9 / raw,
            1e9 / parsing,
            raw / core,
            raw / parsing
        );
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let hsm = open_store(dir.path());
    let cases = cases(&hsm);
    let mut group = c.benchmark_group("sign");
    for case in &cases {
        group.bench_function(format!("{}/core", case.name), |b| {
            b.iter(|| {
                hsm.sign(
                    &case.key_id,
                    black_box(&MESSAGE),
                    MessageType::Raw,
                    case.algorithm,
                )
                .unwrap()
            })
        });
        group.bench_function(format!("{}/raw", case.name), |b| b.iter(|| (case.raw)()));
        group.bench_function(format!("{}/raw-parsing-pkcs8", case.name), |b| {
            b.iter(|| (case.raw_parsing)())
        });
    }
    group.finish();
    ratios(&hsm, &cases);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    targets = bench
}
criterion_main!(benches);
