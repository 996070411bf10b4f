//! Post-quantum operations per second through the core (`Hsm::sign`,
//! `verify`, `encapsulate`, `decapsulate` on stored keys) beside the raw
//! aws-lc-rs calls on already parsed keys, in the same run: ML-DSA-65 sign
//! and verify (RAW 256-byte message) and ML-KEM-768 encapsulate and
//! decapsulate. Rounds of core and raw are interleaved so both see the same
//! machine load; prints each core/raw ratio (target >= 0.90).
//!
//! Run: `cargo bench -p hsm-core --bench pq`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use aws_lc_rs::kem::{Ciphertext, DecapsulationKey, ML_KEM_768};
use aws_lc_rs::signature::{
    KeyPair as _, ParsedPublicKey, PqdsaKeyPair, ML_DSA_65, ML_DSA_65_SIGNING,
};
use hsm_core::{
    CreateKeyRequest, EncapsulationAlgorithm, Hsm, HsmOptions, KdfParams, KeySpec, MessageType,
    SecretString, SigningAlgorithm, SystemClock,
};

const MESSAGE: [u8; 256] = [0x5a; 256];
const DSA: SigningAlgorithm = SigningAlgorithm::MlDsaShake256;
const KEM: EncapsulationAlgorithm = EncapsulationAlgorithm::MlKem;

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
        ..Default::default()
    };
    hsm.create_key(request).expect("create_key").key_id
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

fn compare(name: &str, core: &dyn Fn(), raw: &dyn Fn()) {
    core();
    let probe = median_ns(3, 10, raw);
    let batch = ((40e6 / probe) as usize).clamp(5, 20_000);
    let (mut c, mut r) = (Vec::new(), Vec::new());
    for _ in 0..9 {
        c.push(median_ns(3, batch, core));
        r.push(median_ns(3, batch, raw));
    }
    c.sort_by(|a, b| a.partial_cmp(b).unwrap());
    r.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (core_ns, raw_ns) = (c[c.len() / 2], r[r.len() / 2]);
    println!(
        "RATIO {name}: core {:.0} ops/s, raw aws-lc-rs {:.0} ops/s; core/raw = {:.2} (target >= 0.90)",
        1e9 / core_ns,
        1e9 / raw_ns,
        raw_ns / core_ns
    );
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = open_store(dir.path());

    // ML-DSA-65.
    let dsa_key = create(&hsm, KeySpec::MlDsa65);
    let pair = PqdsaKeyPair::generate(&ML_DSA_65_SIGNING).unwrap();
    let public = ParsedPublicKey::new(&ML_DSA_65, pair.public_key().as_ref()).unwrap();
    let core_sig = hsm
        .sign(&dsa_key, &MESSAGE, MessageType::Raw, DSA)
        .unwrap()
        .signature;
    let mut raw_sig = vec![0u8; ML_DSA_65_SIGNING.signature_len()];
    pair.sign(&MESSAGE, &mut raw_sig).unwrap();
    compare(
        "ML-DSA-65 Sign",
        &|| {
            black_box(
                hsm.sign(&dsa_key, black_box(&MESSAGE), MessageType::Raw, DSA)
                    .unwrap(),
            );
        },
        &|| {
            let mut sig = vec![0u8; ML_DSA_65_SIGNING.signature_len()];
            black_box(pair.sign(black_box(&MESSAGE), &mut sig).unwrap());
            black_box(sig);
        },
    );
    compare(
        "ML-DSA-65 Verify",
        &|| {
            black_box(
                hsm.verify(
                    &dsa_key,
                    black_box(&MESSAGE),
                    MessageType::Raw,
                    &core_sig,
                    DSA,
                )
                .unwrap(),
            );
        },
        &|| {
            public.verify_sig(black_box(&MESSAGE), &raw_sig).unwrap();
        },
    );

    // ML-KEM-768.
    let kem_key = create(&hsm, KeySpec::MlKem768);
    let dk = DecapsulationKey::generate(&ML_KEM_768).unwrap();
    let ek = dk.encapsulation_key().unwrap();
    let core_ct = hsm
        .encapsulate(&kem_key, KEM)
        .unwrap()
        .shared_secret_ciphertext_blob;
    let (raw_ct, _) = ek.encapsulate().unwrap();
    let raw_ct = raw_ct.as_ref().to_vec();
    compare(
        "ML-KEM-768 Encapsulate",
        &|| {
            black_box(hsm.encapsulate(&kem_key, KEM).unwrap());
        },
        &|| {
            let (c, k) = ek.encapsulate().unwrap();
            black_box((c.as_ref().to_vec(), k.as_ref().to_vec()));
        },
    );
    compare(
        "ML-KEM-768 Decapsulate",
        &|| {
            black_box(hsm.decapsulate(&kem_key, black_box(&core_ct), KEM).unwrap());
        },
        &|| {
            let k = dk
                .decapsulate(Ciphertext::from(black_box(&raw_ct[..])))
                .unwrap();
            black_box(k.as_ref().to_vec());
        },
    );
}
