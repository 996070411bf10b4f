//! The ciphertext blob parser and envelope opening: arbitrary bytes (and
//! arbitrary encryption contexts) given to Decrypt never panic, and only
//! the one genuine blob decrypts.
#![no_main]

use std::sync::OnceLock;

use hsm_core::{EncryptionContext, Hsm, HsmOptions, KdfParams, SecretString};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    hsm: Hsm,
    blob: Vec<u8>,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let options = HsmOptions {
            kdf: KdfParams {
                memory_kib: 8192,
                iterations: 1,
                parallelism: 1,
            },
            ..Default::default()
        };
        let hsm = Hsm::init(&dir.path().join("s"), &SecretString::from("fuzz"), options).unwrap();
        let key = hsm.create_key(Default::default()).unwrap().key_id;
        let blob = hsm
            .encrypt(&key, b"fuzz plaintext", &context(b"k=v"), None)
            .unwrap()
            .ciphertext_blob;
        Fixture {
            hsm,
            blob,
            _dir: dir,
        }
    })
}

/// `k=v;k2=v2` pairs from bytes (lossy UTF-8).
fn context(bytes: &[u8]) -> EncryptionContext {
    let text = String::from_utf8_lossy(bytes);
    text.split(';')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    // First byte: how many bytes of context text follow.
    let (ctx_len, rest) = match data.split_first() {
        Some((n, rest)) => ((*n as usize).min(rest.len()), rest),
        None => (0, data),
    };
    let (ctx, blob) = rest.split_at(ctx_len);
    let ctx = context(ctx);
    if let Ok(out) = f.hsm.decrypt(blob, &ctx, None, None) {
        assert_eq!(blob, f.blob.as_slice(), "a blob that was never made decrypted");
        assert_eq!(&out.plaintext[..], b"fuzz plaintext");
    }
    // The genuine blob with one byte changed never decrypts.
    if let Some((&pos, &xor)) = data.first().zip(data.last()) {
        if xor != 0 {
            let mut bent = f.blob.clone();
            let i = pos as usize % bent.len();
            bent[i] ^= xor;
            assert!(f.hsm.decrypt(&bent, &context(b"k=v"), None, None).is_err());
        }
    }
});
