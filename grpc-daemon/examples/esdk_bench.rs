//! The limits `tinfoil encrypt-file` / `decrypt-file` are measured against
//! (scripts/bench-file-encryption runs this beside the CLI and the Python
//! AWS Encryption SDK): `esdk_bench FILE [FRAME_LENGTH]`.
//!
//! - `raw-aes-256-gcm`: ring AES-256-GCM over the file's bytes in memory,
//!   one seal per frame-sized chunk (the ceiling: no framing, no I/O).
//! - `esdk-encrypt-SUITE` / `esdk-decrypt-SUITE`: the message format
//!   in-process, the input streamed from the file (FILE, then FILE.msg,
//!   which this writes) through [`ReadAhead`] to a discarding writer, as
//!   the CLI does, without KMS (a fixed data key); `esdk-encrypt-0x0478-memory`
//!   from the bytes in memory (the format's own cost).
//!
//! Prints one `name MB/s` line each (MB = 10^6 bytes).

use std::io::{BufWriter, Write};
use std::time::Instant;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use tinfoil_daemon::esdk::{self, EncryptRequest, EncryptedDataKey, Limits, ReadAhead, Suite};

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

fn input(path: &str) -> ReadAhead {
    ReadAhead::new(std::fs::File::open(path).expect("open"), 256 * 1024, 4)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).expect("usage: esdk_bench FILE [FRAME_LENGTH]");
    let frame: usize = args
        .get(2)
        .map_or(4096, |f| f.parse().expect("a frame length"));
    let key_bytes = [0x42u8; 32];

    let mut data = std::fs::read(path).expect("read the file");
    let len = data.len() as u64;
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key_bytes).unwrap());
    let start = Instant::now();
    for (i, chunk) in data.chunks_mut(frame).enumerate() {
        let mut iv = [0u8; 12];
        iv[8..].copy_from_slice(&(i as u32).to_be_bytes());
        let tag = key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(iv), Aad::from(&iv[..]), chunk)
            .unwrap();
        let _ = std::hint::black_box(tag);
    }
    println!(
        "raw-aes-256-gcm {:.0}",
        mbps(len, start.elapsed().as_secs_f64())
    );

    // The format alone: from memory to nowhere.
    let start = Instant::now();
    esdk::encrypt(
        &mut &data[..],
        &mut Discard,
        EncryptRequest {
            suite: Suite::CommitKey,
            frame_length: frame as u32,
            context: Default::default(),
            encrypted_data_keys: vec![EncryptedDataKey {
                provider_id: "bench".into(),
                provider_info: vec![],
                ciphertext: vec![0; 32],
            }],
            data_key: &key_bytes,
            signer: None,
        },
        &mut |_| {},
    )
    .unwrap();
    println!(
        "esdk-encrypt-0x0478-memory {:.0}",
        mbps(len, start.elapsed().as_secs_f64())
    );
    drop(data);

    let message = format!("{path}.msg");
    for suite in [Suite::CommitKey, Suite::CommitKeyEcdsaP384] {
        let signer = suite.is_signed().then(|| esdk::Signer::generate().unwrap());
        let context = esdk::body::message_context(&Default::default(), signer.as_ref()).unwrap();
        let request = EncryptRequest {
            suite,
            frame_length: frame as u32,
            context,
            encrypted_data_keys: vec![EncryptedDataKey {
                provider_id: "bench".into(),
                provider_info: vec![],
                ciphertext: vec![0; 32],
            }],
            data_key: &key_bytes,
            signer,
        };
        let start = Instant::now();
        esdk::encrypt(&mut input(path), &mut Discard, request, &mut |_| {}).unwrap();
        println!(
            "esdk-encrypt-{suite} {:.0}",
            mbps(len, start.elapsed().as_secs_f64())
        );

        // The same message to a file, then decrypted from it.
        let signer = suite.is_signed().then(|| esdk::Signer::generate().unwrap());
        let context = esdk::body::message_context(&Default::default(), signer.as_ref()).unwrap();
        let mut file = BufWriter::new(std::fs::File::create(&message).unwrap());
        esdk::encrypt(
            &mut input(path),
            &mut file,
            EncryptRequest {
                suite,
                frame_length: frame as u32,
                context,
                encrypted_data_keys: vec![EncryptedDataKey {
                    provider_id: "bench".into(),
                    provider_info: vec![],
                    ciphertext: vec![0; 32],
                }],
                data_key: &key_bytes,
                signer,
            },
            &mut |_| {},
        )
        .unwrap();
        drop(file);
        let start = Instant::now();
        let mut reader = input(&message);
        let parsed = esdk::read_header(&mut reader, &Limits::default()).unwrap();
        let n = esdk::decrypt(&parsed, &key_bytes, &mut reader, &mut Discard, &mut |_| {}).unwrap();
        assert_eq!(n, len);
        println!(
            "esdk-decrypt-{suite} {:.0}",
            mbps(len, start.elapsed().as_secs_f64())
        );
    }
    let _ = std::fs::remove_file(&message);
}

/// A writer that drops everything (as /dev/null, without the system calls).
struct Discard;

impl Write for Discard {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
