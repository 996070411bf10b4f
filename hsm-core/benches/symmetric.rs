//! Encrypt and Decrypt of 4 KiB through the core against raw AES-256-GCM
//! (ring) of the same bytes, and CreateKey per second on disk with
//! synchronous=FULL. Prints each figure and the core/raw ratio.
//!
//! Run: `cargo bench -p hsm-core --bench symmetric`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hsm_core::{
    CreateKeyRequest, EncryptionContext, Hsm, HsmOptions, KdfParams, SecretString, SystemClock,
};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

const SIZE: usize = 4096;

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

fn context() -> EncryptionContext {
    [("purpose".to_string(), "bench".to_string())]
        .into_iter()
        .collect()
}

/// A store with one key, and a 4 KiB plaintext and its blob under it.
struct Fixture {
    _dir: tempfile::TempDir,
    hsm: Hsm,
    key: String,
    ctx: EncryptionContext,
    plaintext: Vec<u8>,
    blob: Vec<u8>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let hsm = open_store(dir.path());
        let key = hsm.create_key(CreateKeyRequest::default()).unwrap().key_id;
        let ctx = context();
        let plaintext = vec![0x5au8; SIZE];
        let blob = hsm
            .encrypt(&key, &plaintext, &ctx, None)
            .unwrap()
            .ciphertext_blob;
        Fixture {
            _dir: dir,
            hsm,
            key,
            ctx,
            plaintext,
            blob,
        }
    }
}

/// Raw ring AES-256-GCM seal of `SIZE` bytes with a fresh nonce per call.
struct RawAead {
    key: LessSafeKey,
    counter: u64,
}

impl RawAead {
    fn new() -> Self {
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
        RawAead { key, counter: 0 }
    }
    fn seal(&mut self, data: &mut [u8]) {
        self.counter += 1;
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&self.counter.to_be_bytes());
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(b"aad"),
                data,
            )
            .unwrap();
        let _ = black_box(tag);
    }
}

/// Median nanoseconds per call of `f`, over `rounds` batches of `batch` calls.
fn median_ns(rounds: usize, batch: usize, mut f: impl FnMut()) -> f64 {
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

fn report(name: &str, core_ns: f64, raw_ns: f64) {
    println!(
        "RATIO {name}: core {:.0} ns/op ({:.0} MB/s), raw ring {:.0} ns/op ({:.0} MB/s), core/raw speed = {:.2} (target >= 0.50)",
        core_ns,
        SIZE as f64 / core_ns * 1e3,
        raw_ns,
        SIZE as f64 / raw_ns * 1e3,
        raw_ns / core_ns
    );
}

/// Interleaved rounds of core and raw so both see the same machine load.
fn ratios() {
    let fixture = Fixture::new();
    let (hsm, key, ctx) = (&fixture.hsm, &fixture.key, &fixture.ctx);
    let (plaintext, blob) = (&fixture.plaintext, &fixture.blob);
    let mut raw = RawAead::new();
    let mut buffer = plaintext.clone();
    let (mut enc_core, mut enc_raw, mut dec_core) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..15 {
        enc_core.push(median_ns(5, 2000, || {
            black_box(hsm.encrypt(key, black_box(plaintext), ctx, None).unwrap());
        }));
        enc_raw.push(median_ns(5, 2000, || {
            buffer.copy_from_slice(plaintext);
            raw.seal(&mut buffer);
        }));
        dec_core.push(median_ns(5, 2000, || {
            black_box(hsm.decrypt(black_box(blob), ctx, None, None).unwrap());
        }));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let raw_ns = median(&mut enc_raw);
    report("Encrypt 4 KiB", median(&mut enc_core), raw_ns);
    report("Decrypt 4 KiB", median(&mut dec_core), raw_ns);

    let durable_dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let durable = open_store(durable_dir.path());
    let start = Instant::now();
    let mut created = 0u32;
    while start.elapsed() < Duration::from_secs(3) {
        durable.create_key(CreateKeyRequest::default()).unwrap();
        created += 1;
    }
    println!(
        "FIGURE CreateKey on disk (synchronous=FULL): {:.0} keys/s ({created} in {:.1} s)",
        f64::from(created) / start.elapsed().as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
}

fn bench(c: &mut Criterion) {
    let fixture = Fixture::new();
    let (hsm, key, ctx) = (&fixture.hsm, &fixture.key, &fixture.ctx);
    let (plaintext, blob) = (&fixture.plaintext, &fixture.blob);

    let mut group = c.benchmark_group("aes256gcm-4KiB");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.bench_function("core-encrypt", |b| {
        b.iter(|| hsm.encrypt(key, black_box(plaintext), ctx, None).unwrap())
    });
    group.bench_function("core-decrypt", |b| {
        b.iter(|| hsm.decrypt(black_box(blob), ctx, None, None).unwrap())
    });
    let mut raw = RawAead::new();
    let mut buffer = plaintext.clone();
    group.bench_function("raw-ring-seal", |b| {
        b.iter(|| {
            buffer.copy_from_slice(plaintext);
            raw.seal(&mut buffer)
        })
    });
    group.finish();
    ratios();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = bench
}
criterion_main!(benches);
