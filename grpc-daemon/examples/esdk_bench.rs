//! The limits `tinfoil encrypt-file` / `decrypt-file` are measured against
//! (scripts/bench-file-encryption runs this beside the CLI and the Python
//! AWS Encryption SDK): `esdk_bench FILE [FRAME_LENGTH [CHUNK]]`.
//!
//! - `raw-aes-256-gcm-frames`: ring AES-256-GCM over the file's bytes in
//!   memory, one seal per frame-sized piece with a 12-byte IV and AAD (the
//!   like-for-like ceiling: the same number of seal calls as the message,
//!   no framing, no I/O). The "0.5 of the raw AES-GCM rate" is
//!   measured against this figure.
//! - `raw-aes-256-gcm-one-call`: one seal over the whole buffer (no
//!   per-call cost at all: the big-buffer ceiling).
//! - `raw-aws-lc-aes-256-gcm-frames`: as the first, with aws-lc-rs (what
//!   the frames are sealed with); `raw-aes-256-gcm-frames-in-cache`: ring
//!   again, over one CHUNK-byte buffer sealed again and again.
//! - `read-only`, `read-only-message-SUITE`: `read()` of the file (or of
//!   the message about to be decrypted) in CHUNK-byte pieces into one
//!   buffer, nothing else: the cost of getting the bytes from the kernel,
//!   which varies with the memory a file landed in.
//! - `esdk-encrypt-0x0478-memory`: the message format from the bytes in
//!   memory to nowhere (the format's own cost).
//! - `esdk-encrypt-SUITE` / `esdk-decrypt-SUITE`: the message format
//!   in-process, the input streamed from the file (FILE, then FILE.msg,
//!   which this writes) through an inline [`ReadAhead`] of CHUNK bytes (as
//!   the CLI reads a regular file) to a discarding writer, without KMS (a
//!   fixed data key). `esdk-encrypt-0x0478-thread` and
//!   `esdk-decrypt-SUITE-thread` read on another thread instead, in chunks
//!   of [`esdk::READ_AHEAD_CHUNK`] unless CHUNK is given, at most
//!   `ESDK_BENCH_DEPTH` (default [`esdk::READ_AHEAD_DEPTH`]) ahead: as the
//!   CLI reads a file when it may use two cores.
//!
//! Prints one `name MB/s cpu MB/s` line each (MB = 10^6 bytes): the rate
//! in wall-clock time, then in CPU time (user + system of the process's
//! live threads), which does not depend on how busy the machine is; wall
//! time only where a thread has exited by the end (the reader thread, the
//! hashing thread of 0x0578). CHUNK defaults to the CLI's
//! [`esdk::IO_CHUNK`]; `ESDK_BENCH_ONLY=name,name` runs only those.

use std::io::{BufWriter, Read, Write};
use std::time::Instant;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use tinfoil_daemon::esdk::{self, EncryptRequest, EncryptedDataKey, Limits, ReadAhead, Suite};

/// Wall time and the process's CPU time (all threads, from
/// /proc/self/task/*/schedstat, in nanoseconds) since a start.
struct Clock {
    wall: Instant,
    cpu_ns: u64,
}

fn cpu_ns() -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let stat = task.expect("a task").path().join("schedstat");
        // A thread that has just exited has no schedstat any more.
        if let Ok(text) = std::fs::read_to_string(stat) {
            total += text
                .split_whitespace()
                .next()
                .and_then(|ns| ns.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total
}

impl Clock {
    fn start() -> Clock {
        Clock {
            cpu_ns: cpu_ns(),
            wall: Instant::now(),
        }
    }

    /// Prints `name WALL_MBps cpu CPU_MBps` for `bytes` done since the start.
    fn report(&self, name: &str, bytes: u64) {
        let wall = self.wall.elapsed().as_secs_f64();
        let cpu = (cpu_ns() - self.cpu_ns) as f64 / 1e9;
        println!(
            "{name} {:.0} cpu {:.0}",
            bytes as f64 / wall / 1e6,
            bytes as f64 / cpu / 1e6
        );
    }

    /// [`Clock::report`], or [`Clock::report_wall`] for a signed suite
    /// (hashed on a thread that has exited by now).
    fn report_for(&self, name: &str, bytes: u64, suite: Suite) {
        if suite.is_signed() {
            self.report_wall(name, bytes)
        } else {
            self.report(name, bytes)
        }
    }

    /// Prints `name WALL_MBps` only.
    fn report_wall(&self, name: &str, bytes: u64) {
        let wall = self.wall.elapsed().as_secs_f64();
        println!("{name} {:.0}", bytes as f64 / wall / 1e6);
    }
}

fn request(suite: Suite, frame: usize, key: &[u8]) -> EncryptRequest<'_> {
    let signer = suite.is_signed().then(|| esdk::Signer::generate().unwrap());
    let context = esdk::body::message_context(&Default::default(), signer.as_ref()).unwrap();
    EncryptRequest {
        suite,
        frame_length: frame as u32,
        context,
        encrypted_data_keys: vec![EncryptedDataKey {
            provider_id: "bench".into(),
            provider_info: vec![],
            ciphertext: vec![0; 32],
        }],
        data_key: key,
        signer,
    }
}

/// One seal per `frame`-byte piece of `data`, in place (IV and AAD: the
/// piece's index), with ring or aws-lc-rs.
macro_rules! seal_frames {
    ($lib:ident, $key:expr, $data:expr, $frame:expr, $first:expr) => {{
        let mut i: u32 = $first;
        for piece in $data.chunks_mut($frame) {
            let mut iv = [0u8; 12];
            iv[8..].copy_from_slice(&i.to_be_bytes());
            i = i.wrapping_add(1);
            let tag = $key
                .seal_in_place_separate_tag(
                    $lib::aead::Nonce::assume_unique_for_key(iv),
                    $lib::aead::Aad::from(&iv[..]),
                    piece,
                )
                .unwrap();
            let _ = std::hint::black_box(tag);
        }
        i
    }};
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .expect("usage: esdk_bench FILE [FRAME_LENGTH [CHUNK]]");
    let frame: usize = args
        .get(2)
        .map_or(4096, |f| f.parse().expect("a frame length"));
    let chunk: usize = args
        .get(3)
        .map_or(esdk::IO_CHUNK, |c| c.parse().expect("a chunk size"));
    // The reader thread's chunks: the CLI's unless CHUNK is given.
    let thread_chunk = args.get(3).map_or(esdk::READ_AHEAD_CHUNK, |_| chunk);
    // ESDK_BENCH_ONLY=name,name: only the measurements named.
    let only: Option<Vec<String>> = std::env::var("ESDK_BENCH_ONLY")
        .ok()
        .map(|v| v.split(',').map(str::to_string).collect());
    let want = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|n| n == name));
    let inline = || ReadAhead::inline(std::fs::File::open(path).expect("open"), chunk);
    // ESDK_BENCH_DEPTH=N: chunks the reader thread may be ahead.
    let depth: usize = std::env::var("ESDK_BENCH_DEPTH")
        .ok()
        .map_or(esdk::READ_AHEAD_DEPTH, |d| d.parse().expect("a depth"));
    let key_bytes = [0x42u8; 32];
    let len = std::fs::metadata(path).expect("the file").len();

    if [
        "raw-aes-256-gcm-frames",
        "raw-aes-256-gcm-one-call",
        "raw-aws-lc-aes-256-gcm-frames",
        "raw-aes-256-gcm-frames-in-cache",
        "esdk-encrypt-0x0478-memory",
    ]
    .iter()
    .any(|n| want(n))
    {
        let mut data = std::fs::read(path).expect("read the file");
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key_bytes).unwrap());
        if want("raw-aes-256-gcm-frames") {
            let start = Clock::start();
            seal_frames!(ring, key, data, frame, 0);
            start.report("raw-aes-256-gcm-frames", len);
        }
        if want("raw-aes-256-gcm-one-call") {
            let start = Clock::start();
            let tag = key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key([1; 12]),
                    Aad::empty(),
                    &mut data,
                )
                .unwrap();
            let _ = std::hint::black_box(tag);
            start.report("raw-aes-256-gcm-one-call", len);
        }
        if want("raw-aws-lc-aes-256-gcm-frames") {
            // aws-lc-rs (what the frames are sealed with), same frames.
            let lc = aws_lc_rs::aead::LessSafeKey::new(
                aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, &key_bytes)
                    .unwrap(),
            );
            let start = Clock::start();
            seal_frames!(aws_lc_rs, lc, data, frame, 0);
            start.report("raw-aws-lc-aes-256-gcm-frames", len);
        }
        if want("raw-aes-256-gcm-frames-in-cache") {
            // The same bytes' worth of frames, in one CHUNK-byte buffer
            // sealed again and again (in cache: no memory traffic).
            let mut hot = data[..chunk.min(data.len())].to_vec();
            let rounds = (len as usize).div_ceil(hot.len().max(1));
            let start = Clock::start();
            let mut first = 0;
            for _ in 0..rounds {
                first = seal_frames!(ring, key, hot, frame, first);
            }
            start.report(
                "raw-aes-256-gcm-frames-in-cache",
                (rounds * hot.len()) as u64,
            );
        }
        if want("esdk-encrypt-0x0478-memory") {
            // The format alone: from memory to nowhere.
            let start = Clock::start();
            esdk::encrypt(
                &mut &data[..],
                &mut Discard,
                request(Suite::CommitKey, frame, &key_bytes),
                &mut |_| {},
            )
            .unwrap();
            start.report("esdk-encrypt-0x0478-memory", len);
        }
    }

    if want("read-only") {
        read_only("read-only", path, chunk);
    }

    if want("esdk-encrypt-0x0478-thread") {
        let start = Clock::start();
        let mut threaded = ReadAhead::new(
            std::fs::File::open(path).expect("open"),
            thread_chunk,
            depth,
        );
        esdk::encrypt(
            &mut threaded,
            &mut Discard,
            request(Suite::CommitKey, frame, &key_bytes),
            &mut |_| {},
        )
        .unwrap();
        // (The reader thread has exited: its CPU time is no longer counted.)
        start.report_wall("esdk-encrypt-0x0478-thread", len);
    }

    let message = format!("{path}.msg");
    for suite in [Suite::CommitKey, Suite::CommitKeyEcdsaP384] {
        let encrypt = format!("esdk-encrypt-{suite}");
        if want(&encrypt) {
            let start = Clock::start();
            esdk::encrypt(
                &mut inline(),
                &mut Discard,
                request(suite, frame, &key_bytes),
                &mut |_| {},
            )
            .unwrap();
            start.report_for(&encrypt, len, suite);
        }
        let decrypt = format!("esdk-decrypt-{suite}");
        if !want(&decrypt) {
            continue;
        }
        // The same message to a file, then decrypted from it.
        let mut file = BufWriter::new(std::fs::File::create(&message).unwrap());
        esdk::encrypt(
            &mut inline(),
            &mut file,
            request(suite, frame, &key_bytes),
            &mut |_| {},
        )
        .unwrap();
        drop(file);
        // Reading a file costs about as much as AES-GCM, and what it costs
        // depends on the memory the file landed in: the message's own.
        read_only(&format!("read-only-message-{suite}"), &message, chunk);
        let start = Clock::start();
        let mut reader = ReadAhead::inline(std::fs::File::open(&message).expect("open"), chunk);
        let parsed = esdk::read_header(&mut reader, &Limits::default()).unwrap();
        let n = esdk::decrypt(&parsed, &key_bytes, &mut reader, &mut Discard, &mut |_| {}).unwrap();
        assert_eq!(n, len);
        start.report_for(&decrypt, len, suite);
        let threaded = format!("{decrypt}-thread");
        if want(&threaded) {
            let start = Clock::start();
            let file = std::fs::File::open(&message).expect("open");
            let mut reader = ReadAhead::new(file, thread_chunk, depth);
            let parsed = esdk::read_header(&mut reader, &Limits::default()).unwrap();
            let n =
                esdk::decrypt(&parsed, &key_bytes, &mut reader, &mut Discard, &mut |_| {}).unwrap();
            assert_eq!(n, len);
            start.report_wall(&threaded, len);
        }
    }
    let _ = std::fs::remove_file(&message);
}

/// Reads `path` in `chunk`-byte pieces into one buffer, nothing else, and
/// reports the rate under `name`.
fn read_only(name: &str, path: &str, chunk: usize) {
    let mut file = std::fs::File::open(path).expect("open");
    let mut buf = vec![0u8; chunk];
    let start = Clock::start();
    let mut n = 0u64;
    loop {
        match file.read(&mut buf).expect("read") {
            0 => break,
            k => n += k as u64,
        }
    }
    start.report(name, n);
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
