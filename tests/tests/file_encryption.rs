//! `tinfoil encrypt-file` / `decrypt-file` end to end: every kind of
//! tampering fails and leaves no output, key states are enforced, standard
//! input and output work. (Interop with the Python AWS Encryption SDK:
//! file_encryption_interop.rs; the format's property tests:
//! grpc-daemon/src/esdk/tests.rs.)

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use tinfoil_daemon::esdk::{read_header, Limits};
use tinfoil_e2e_tests::daemon::{assert_kms_error, binary, json, stderr, stdout, Daemon, Store};

fn create_key(d: &Daemon) -> String {
    json(&d.cli(&["create-key", "--output", "json"]))["KeyMetadata"]["Arn"]
        .as_str()
        .expect("an ARN")
        .to_string()
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Files other than `keep` left in `dir` (temporary files included).
fn leftovers(dir: &Path, keep: &[&Path]) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| !keep.contains(&p.as_path()))
        .collect()
}

fn encrypt(d: &Daemon, key: &str, input: &Path, output: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "encrypt-file",
        "--key-id",
        key,
        "--input-file",
        s(input),
        "--output-file",
        s(output),
    ];
    args.extend_from_slice(extra);
    d.cli(&args)
}

fn decrypt(d: &Daemon, input: &Path, output: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "decrypt-file",
        "--input-file",
        s(input),
        "--output-file",
        s(output),
    ];
    args.extend_from_slice(extra);
    d.cli(&args)
}

#[track_caller]
fn assert_ok(out: &Output) {
    assert!(out.status.success(), "tinfoil failed: {}", stderr(out));
}

/// A three-frame-plus-final 0x0578 message; every damage of the issue's
/// list fails with exit status 1 and leaves nothing in the directory.
#[test]
fn every_tampered_message_fails_and_leaves_no_output() {
    let store = Store::init();
    let d = Daemon::start(&store, &[]);
    let key = create_key(&d);
    let work = store.dir.path().join("tamper");
    std::fs::create_dir(&work).unwrap();
    let plain_path = store.dir.path().join("plain.bin");
    let plain = data(200, 1);
    std::fs::write(&plain_path, &plain).unwrap();
    let sealed_path = store.dir.path().join("sealed.msg");
    assert_ok(&encrypt(
        &d,
        &key,
        &plain_path,
        &sealed_path,
        &[
            "--frame-length",
            "64",
            "--encryption-context",
            "purpose=tamper",
            "--quiet",
        ],
    ));
    let msg = std::fs::read(&sealed_path).unwrap();
    assert_eq!(
        std::fs::metadata(&sealed_path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // Layout: header, 3 regular frames (4+12+64+16), a final frame of 8
    // bytes (4+4+12+4+8+16), the footer.
    let mut rest = &msg[..];
    let parsed = read_header(&mut rest, &Limits::default()).expect("a header");
    let h = msg.len() - rest.len();
    let edk = &parsed.header.encrypted_data_keys[0];
    assert_eq!(edk.provider_id, "aws-kms");
    assert_eq!(edk.provider_info, key.as_bytes());
    let edk_at = msg
        .windows(edk.ciphertext.len())
        .position(|w| w == edk.ciphertext)
        .unwrap();
    let r = 4 + 12 + 64 + 16;
    let fin = h + 3 * r;
    let footer = fin + 4 + 4 + 12 + 4 + 8 + 16;
    assert!(msg.len() > footer + 2 && msg.len() <= footer + 2 + 104);

    let flip = |at: usize| {
        let mut m = msg.clone();
        m[at] ^= 0x04;
        m
    };
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("header: suite id".into(), flip(2)),
        ("header: message id".into(), flip(10)),
        ("header: encryption context".into(), flip(40)),
        (
            "header: encrypted data key".into(),
            flip(edk_at + edk.ciphertext.len() / 2),
        ),
        ("header: frame length".into(), flip(h - 16 - 32 - 1)),
        ("header: commit key".into(), flip(h - 16 - 5)),
        ("header: tag".into(), flip(h - 3)),
        ("final frame: length".into(), flip(fin + 4 + 4 + 12 + 3)),
        ("final frame: content".into(), flip(fin + 25)),
        ("final frame: tag".into(), flip(footer - 1)),
        ("final frame: marker".into(), flip(fin)),
        ("footer: length".into(), flip(footer + 1)),
        ("footer: signature".into(), flip(msg.len() - 5)),
    ];
    for i in 0..3 {
        cases.push((
            format!("frame {}: sequence number", i + 1),
            flip(h + i * r + 3),
        ));
        cases.push((format!("frame {}: IV", i + 1), flip(h + i * r + 10)));
        cases.push((format!("frame {}: content", i + 1), flip(h + i * r + 40)));
        cases.push((format!("frame {}: tag", i + 1), flip(h + i * r + r - 2)));
    }
    for cut in [
        0,
        1,
        h - 1,
        h,
        h + r,
        h + 2 * r,
        fin,
        footer,
        footer + 2,
        msg.len() - 1,
    ] {
        cases.push((format!("truncated at {cut}"), msg[..cut].to_vec()));
    }
    let mut swapped = msg.clone();
    swapped[h..h + r].copy_from_slice(&msg[h + r..h + 2 * r]);
    swapped[h + r..h + 2 * r].copy_from_slice(&msg[h..h + r]);
    cases.push(("frames 1 and 2 swapped".into(), swapped));
    let mut appended = msg.clone();
    appended.extend_from_slice(&msg[h + 2 * r..h + 3 * r]);
    cases.push(("a frame appended after the footer".into(), appended));
    let mut inserted = msg[..fin].to_vec();
    inserted.extend_from_slice(&msg[h + 2 * r..h + 3 * r]);
    inserted.extend_from_slice(&msg[fin..]);
    cases.push(("frame 3 repeated before the final frame".into(), inserted));
    let mut unsigned_tail = msg[..footer].to_vec();
    unsigned_tail.extend_from_slice(&[0, 0]);
    cases.push(("an empty signature".into(), unsigned_tail));

    let bad_path = store.dir.path().join("bad.msg");
    let out_path = work.join("out.bin");
    for (name, bad) in &cases {
        std::fs::write(&bad_path, bad).unwrap();
        let out = decrypt(&d, &bad_path, &out_path, &["--quiet"]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{name}: decrypt-file did not fail: {}",
            stderr(&out)
        );
        assert!(
            leftovers(&work, &[]).is_empty(),
            "{name}: left {:?}",
            leftovers(&work, &[])
        );
    }

    // The wrong required context: refused before any output.
    let out = decrypt(
        &d,
        &sealed_path,
        &out_path,
        &["--encryption-context", "purpose=other"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("purpose=other"), "{}", stderr(&out));
    assert!(leftovers(&work, &[]).is_empty());
    // A key that is not allowed: no data key to try.
    let other = create_key(&d);
    let out = decrypt(&d, &sealed_path, &out_path, &["--key-id", &other]);
    assert_eq!(out.status.code(), Some(1));
    assert!(leftovers(&work, &[]).is_empty());

    // An existing output survives a failed decryption unchanged.
    std::fs::write(&out_path, b"keep me").unwrap();
    std::fs::write(&bad_path, flip(msg.len() - 5)).unwrap();
    assert_eq!(
        decrypt(&d, &bad_path, &out_path, &[]).status.code(),
        Some(1)
    );
    assert_eq!(std::fs::read(&out_path).unwrap(), b"keep me");
    assert!(leftovers(&work, &[&out_path]).is_empty());

    // The untouched message decrypts (required pair, allowed key by id),
    // replacing the file; the plaintext is 0600.
    let key_id = key.rsplit('/').next().unwrap();
    assert_ok(&decrypt(
        &d,
        &sealed_path,
        &out_path,
        &["--encryption-context", "purpose=tamper", "--key-id", key_id],
    ));
    assert_eq!(std::fs::read(&out_path).unwrap(), plain);
    assert_eq!(
        std::fs::metadata(&out_path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // To standard output, frames are released before the signature is
    // checked (as --help says) and a bad footer fails at the end.
    std::fs::write(&bad_path, flip(msg.len() - 5)).unwrap();
    let out = decrypt(&d, &bad_path, Path::new("-"), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(out.stdout, plain);
    assert!(stderr(&out).contains("signature"), "{}", stderr(&out));
    let help = d.cli(&["decrypt-file", "--help"]);
    assert!(
        stdout(&help).contains("before the footer signature"),
        "{}",
        stdout(&help)
    );
}

/// DisableKey and ScheduleKeyDeletion stop both directions with the KMS
/// exception; nothing is written.
#[test]
fn disabled_and_pending_deletion_keys_refuse() {
    let store = Store::init();
    let d = Daemon::start(&store, &[]);
    let key = create_key(&d);
    let dir = store.dir.path();
    let work = dir.join("out");
    std::fs::create_dir(&work).unwrap();
    let plain_path = dir.join("plain.bin");
    std::fs::write(&plain_path, data(10_000, 2)).unwrap();
    let sealed = dir.join("sealed.msg");
    assert_ok(&encrypt(
        &d,
        &key,
        &plain_path,
        &sealed,
        &["--algorithm-suite", "0x0478"],
    ));

    assert_ok(&d.cli(&["disable-key", "--key-id", &key]));
    let out = decrypt(&d, &sealed, &work.join("p"), &[]);
    assert_kms_error(&out, "DisabledException");
    let out = encrypt(&d, &key, &plain_path, &work.join("m"), &[]);
    assert_kms_error(&out, "DisabledException");
    assert!(
        leftovers(&work, &[]).is_empty(),
        "{:?}",
        leftovers(&work, &[])
    );

    assert_ok(&d.cli(&["enable-key", "--key-id", &key]));
    assert_ok(&decrypt(&d, &sealed, &work.join("p"), &[]));
    std::fs::remove_file(work.join("p")).unwrap();

    assert_ok(&d.cli(&[
        "schedule-key-deletion",
        "--key-id",
        &key,
        "--pending-window-in-days",
        "7",
    ]));
    let out = decrypt(&d, &sealed, &work.join("p"), &[]);
    assert_kms_error(&out, "KMSInvalidStateException");
    let out = encrypt(&d, &key, &plain_path, &work.join("m"), &[]);
    assert_kms_error(&out, "KMSInvalidStateException");
    assert!(
        leftovers(&work, &[]).is_empty(),
        "{:?}",
        leftovers(&work, &[])
    );
}

/// Standard input to standard output both ways; several keys, each able to
/// decrypt alone; non-committing suites and bad frame lengths refused at
/// encryption.
#[test]
fn pipes_several_keys_and_bad_arguments() {
    let store = Store::init();
    let d = Daemon::start(&store, &[]);
    let (k1, k2) = (create_key(&d), create_key(&d));
    let plain = data(9_000, 3);
    let out = d.cli_with_stdin(
        &[
            "encrypt-file",
            "--key-id",
            &k1,
            "--key-id",
            &k2,
            "--input-file",
            "-",
            "--output-file",
            "-",
            "--frame-length",
            "1000",
        ],
        &plain,
    );
    assert_ok(&out);
    let sealed = out.stdout;
    let mut rest = &sealed[..];
    let parsed = read_header(&mut rest, &Limits::default()).unwrap();
    let infos: Vec<&[u8]> = parsed
        .header
        .encrypted_data_keys
        .iter()
        .map(|e| &e.provider_info[..])
        .collect();
    assert_eq!(infos, [k1.as_bytes(), k2.as_bytes()]);
    assert_eq!(parsed.header.frame_length, 1000);
    for allowed in [&k1, &k2] {
        let out = d.cli_with_stdin(
            &[
                "decrypt-file",
                "--input-file",
                "-",
                "--output-file",
                "-",
                "--key-id",
                allowed,
            ],
            &sealed,
        );
        assert_ok(&out);
        assert_eq!(out.stdout, plain);
    }
    // With k1 disabled, k2's copy still opens the message.
    assert_ok(&d.cli(&["disable-key", "--key-id", &k1]));
    let out = d.cli_with_stdin(
        &["decrypt-file", "--input-file", "-", "--output-file", "-"],
        &sealed,
    );
    assert_ok(&out);
    assert_eq!(out.stdout, plain);

    // (From a file: a refusal before reading would break a stdin pipe.)
    let one = store.dir.path().join("one-byte");
    std::fs::write(&one, b"x").unwrap();
    for bad in [
        vec!["--algorithm-suite", "0x0378"],
        vec!["--algorithm-suite", "0x9999"],
        vec!["--frame-length", "0"],
        vec!["--frame-length", "16777217"],
        vec!["--encryption-context", "aws-crypto-public-key=x"],
    ] {
        let mut args = vec![
            "encrypt-file",
            "--key-id",
            &k2,
            "--input-file",
            s(&one),
            "--output-file",
            "-",
        ];
        args.extend(bad.iter().copied());
        let out = d.cli(&args);
        assert_ne!(out.status.code(), Some(0), "{bad:?} accepted");
        assert!(out.stdout.is_empty(), "{bad:?} wrote output");
    }
}

/// The kernel's peak resident set (VmHWM) of a running process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// 128 MiB through `encrypt-file | decrypt-file` over pipes: both stay far
/// below 64 MiB resident (the kernel's own peak, read while they run) and
/// the bytes come back.
#[test]
fn streams_in_bounded_memory() {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};

    const MIB: usize = 1 << 20;
    const TOTAL_MIB: usize = 128;
    let store = Store::init();
    let d = Daemon::start(&store, &[]);
    let key = create_key(&d);
    let tinfoil = |args: &[&str]| {
        let mut c = Command::new(binary("tinfoil"));
        c.arg("--endpoint")
            .arg(&d.endpoint)
            .args(args)
            .args(["--input-file", "-", "--output-file", "-", "--quiet"])
            .env_remove("TINFOIL_ENDPOINT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    let mut enc = tinfoil(&["encrypt-file", "--key-id", &key])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn encrypt-file");
    let mut dec = tinfoil(&["decrypt-file"])
        .stdin(enc.stdout.take().unwrap())
        .spawn()
        .expect("spawn decrypt-file");
    let mut input = enc.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let chunk = vec![0x5au8; MIB];
        for _ in 0..TOTAL_MIB {
            input.write_all(&chunk)?;
        }
        Ok::<_, std::io::Error>(())
    });
    let mut output = dec.stdout.take().unwrap();
    let drain = std::thread::spawn(move || {
        let (mut n, mut same) = (0usize, true);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let k = output.read(&mut buf).expect("read decrypt-file output");
            if k == 0 {
                return (n, same);
            }
            same &= buf[..k].iter().all(|&b| b == 0x5a);
            n += k;
        }
    });
    let mut peak = [0u64; 2];
    loop {
        for (i, pid) in [enc.id(), dec.id()].into_iter().enumerate() {
            if let Some(kib) = peak_rss_kib(pid) {
                peak[i] = peak[i].max(kib);
            }
        }
        let done = enc.try_wait().unwrap().is_some() && dec.try_wait().unwrap().is_some();
        if done {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    feeder.join().unwrap().expect("feed encrypt-file");
    let (n, same) = drain.join().unwrap();
    let enc = enc.wait_with_output().unwrap();
    let dec = dec.wait_with_output().unwrap();
    assert!(enc.status.success(), "encrypt-file: {}", stderr(&enc));
    assert!(dec.status.success(), "decrypt-file: {}", stderr(&dec));
    assert_eq!(n, TOTAL_MIB * MIB);
    assert!(same, "decrypt-file returned other bytes");
    for (name, kib) in ["encrypt-file", "decrypt-file"].iter().zip(peak) {
        assert!(kib > 0, "{name}: no VmHWM read while it ran");
        assert!(
            kib < 64 * 1024,
            "{name}: peak RSS {kib} KiB for a {TOTAL_MIB} MiB stream"
        );
    }
}
