//! Loads PKCS#11 modules by path and measures, in one run, our module
//! (embedded backend, and daemon backend when a release tinfoild is
//! built) and SoftHSM2: C_Sign with ECDSA P-256 and RSA-2048 and C_Encrypt
//! with AES-GCM on 4 KiB, each with a session key (no audit record: like
//! for like with SoftHSM2, which records nothing) and with a token key
//! (here one audit record fsynced per call, issue 11) from one thread and
//! from 16 threads at once; AES-CMAC on 4 KiB, ECDH P-256 C_DeriveKey (each
//! derived session key destroyed), finding one token key by label among
//! 10,000 token keys, and the same search by two processes at once on one
//! store (this binary run again as the second; the figure is both
//! processes' searches per second together). Prints operations per second
//! and our/SoftHSM ratios.
//!
//! `cargo build --release -p grpc-daemon && cargo bench -p pkcs11-module
//! --bench p11bench` (SoftHSM2 from the Debian package softhsm2). Options
//! after `--`: `--module PATH` measures another module instead of ours;
//! `--only embedded,daemon,softhsm` picks the columns; `--seconds S` per
//! figure (default 2); `--no-find` skips making the 10,000 keys.
//! `--pq` measures only the post-quantum rows instead ([`pq`]: ML-DSA-65
//! and ML-KEM-768 through PKCS#11 beside raw aws-lc-rs).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use cryptoki::session::{Session, UserType};
use cryptoki::types::{AuthPin, Ulong};

#[path = "pq/rows.rs"]
mod pq;

const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
const KEYS: usize = 10_000;
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Runs `op` repeatedly for about `budget`; returns operations per second.
fn rate(budget: Duration, mut op: impl FnMut()) -> f64 {
    op();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        op();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Threads of the token-key rows that run concurrently.
const THREADS: usize = 16;
/// Row label: a session key (nothing recorded, as in SoftHSM2).
const SESSION: &str = "session key";
/// Row label: a token key (one fsynced audit record per call here).
const TOKEN: &str = "token key, audited";
/// Row label: a token key from THREADS threads at once.
const TOKEN_THREADS: &str = "token key, audited, 16 threads";

/// A row's name: the operation and the kind of key.
fn row(op: &str, kind: &str) -> String {
    format!("{op} [{kind}]")
}

/// Runs `op` on THREADS threads at once, each with its own session (the
/// application is logged in, so every session is), for about `budget`;
/// returns the operations per second of all threads together.
fn rate_threads(
    p11: &Pkcs11,
    slot: cryptoki::slot::Slot,
    budget: Duration,
    op: &(dyn Fn(&Session) + Sync),
) -> f64 {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let ready = std::sync::Barrier::new(THREADS + 1);
    let elapsed = std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                let s = p11.open_rw_session(slot).unwrap();
                op(&s);
                ready.wait();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    op(&s);
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
            });
        }
        ready.wait();
        let start = Instant::now();
        std::thread::sleep(budget);
        stop.store(true, Ordering::Relaxed);
        start.elapsed()
    });
    // Calls finishing after the stop are counted over a slightly longer
    // time than measured: at most one per thread.
    done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()
}

fn session(path: &Path) -> (Pkcs11, Session) {
    let p11 = Pkcs11::new(path).expect("load module");
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    let slot = p11.get_all_slots().unwrap()[0];
    p11.init_token(slot, &AuthPin::new("12345678".into()), "bench")
        .unwrap();
    let slot = p11.get_slots_with_initialized_token().unwrap()[0];
    let s = p11.open_rw_session(slot).unwrap();
    s.login(UserType::So, Some(&AuthPin::new("12345678".into())))
        .unwrap();
    s.init_pin(&AuthPin::new("1234".into())).unwrap();
    s.logout().unwrap();
    s.login(UserType::User, Some(&AuthPin::new("1234".into())))
        .unwrap();
    (p11, s)
}

fn measure(path: &Path, budget: Duration, find: bool) -> Vec<(String, f64)> {
    let (p11, s) = session(path);
    let mut out = Vec::new();

    // Signing and AES-GCM, each with a session key and with a token key.
    // A session key's calls record nothing (SoftHSM2 records nothing for
    // any key): the like-for-like rows. Every call on a token key appends
    // one audit record, fsynced before the call returns (issue 11): the
    // token rows pay one durable write per call, single-threaded and with
    // THREADS threads (one session each; concurrent calls share commits).
    for (on_token, kind) in [(false, SESSION), (true, TOKEN)] {
        let pair = |mechanism: &Mechanism, public: &[Attribute]| {
            let mut public = public.to_vec();
            public.push(Attribute::Token(on_token));
            s.generate_key_pair(
                mechanism,
                &public,
                &[
                    Attribute::Token(on_token),
                    Attribute::Sign(true),
                    Attribute::Private(true),
                ],
            )
            .unwrap()
            .1
        };
        let ec = pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::EcParams(P256.to_vec())],
        );
        let rsa = pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[Attribute::ModulusBits(2048.into())],
        );
        let aes = s
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::ValueLen(32.into()),
                    Attribute::Token(on_token),
                    Attribute::Encrypt(true),
                ],
            )
            .unwrap();
        let ecdsa = |s: &Session| {
            s.sign(&Mechanism::Ecdsa, ec, &[7u8; 32]).unwrap();
        };
        let rsa_sign = |s: &Session| {
            s.sign(&Mechanism::Sha256RsaPkcs, rsa, b"message").unwrap();
        };
        let block = vec![0x42u8; 4096];
        let gcm = |s: &Session| {
            let mut iv = [1u8; 12];
            let mech = Mechanism::AesGcm(GcmParams::new(&mut iv, &[], Ulong::from(128)).unwrap());
            s.encrypt(&mech, aes, &block).unwrap();
        };
        out.push((row("ECDSA P-256 sign/s", kind), rate(budget, || ecdsa(&s))));
        out.push((row("RSA-2048 sign/s", kind), rate(budget, || rsa_sign(&s))));
        let gcm_rate = rate(budget, || gcm(&s));
        out.push((row("AES-GCM 4 KiB MB/s", kind), gcm_rate * 4096.0 / 1e6));
        if on_token {
            let slot = p11.get_slots_with_initialized_token().unwrap()[0];
            let threads = |op: &(dyn Fn(&Session) + Sync)| rate_threads(&p11, slot, budget, op);
            out.push((row("ECDSA P-256 sign/s", TOKEN_THREADS), threads(&ecdsa)));
            out.push((row("RSA-2048 sign/s", TOKEN_THREADS), threads(&rsa_sign)));
            let gcm_rate = threads(&gcm);
            out.push((
                row("AES-GCM 4 KiB MB/s", TOKEN_THREADS),
                gcm_rate * 4096.0 / 1e6,
            ));
        }
    }
    let block = vec![0x42u8; 4096];
    // AES-CMAC over 4 KiB (a backend that lacks it shows no figure).
    let cmac_key = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(32.into()),
                Attribute::Token(false),
                Attribute::Sign(true),
            ],
        )
        .unwrap();
    if s.sign(&Mechanism::AesCMac, cmac_key, &block).is_ok() {
        let cmac_rate = rate(budget, || {
            s.sign(&Mechanism::AesCMac, cmac_key, &block).unwrap();
        });
        out.push((
            row("AES-CMAC 4 KiB MB/s", SESSION),
            cmac_rate * 4096.0 / 1e6,
        ));
    }
    // ECDH P-256 into a 32-byte session secret (destroyed each time).
    let (peer_pub, _) = s
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::Token(true), Attribute::EcParams(P256.to_vec())],
            &[Attribute::Token(true), Attribute::Derive(true)],
        )
        .unwrap();
    let (_, mine) = s
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::Token(true), Attribute::EcParams(P256.to_vec())],
            &[Attribute::Token(true), Attribute::Derive(true)],
        )
        .unwrap();
    let point = match s
        .get_attributes(peer_pub, &[cryptoki::object::AttributeType::EcPoint])
        .unwrap()
        .pop()
    {
        Some(Attribute::EcPoint(p)) => p[2..].to_vec(),
        other => panic!("{other:?}"),
    };
    let derive = || {
        use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
        s.derive_key(
            &Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &point)),
            mine,
            &[
                Attribute::Class(cryptoki::object::ObjectClass::SECRET_KEY),
                Attribute::KeyType(cryptoki::object::KeyType::GENERIC_SECRET),
                Attribute::ValueLen(32.into()),
                Attribute::Token(false),
            ],
        )
    };
    if let Ok(first) = derive() {
        s.destroy_object(first).unwrap();
        out.push((
            row("ECDH P-256 derive/s", TOKEN),
            rate(budget, || {
                let k = derive().unwrap();
                s.destroy_object(k).unwrap();
            }),
        ));
    }
    // The floor of a call: with the daemon backend, one round trip.
    let mut random = [0u8; 16];
    out.push((
        "GenerateRandom 16 B/s".into(),
        rate(budget, || s.generate_random_slice(&mut random).unwrap()),
    ));

    if !find {
        drop(s);
        p11.finalize().expect("C_Finalize");
        return out;
    }
    // Token keys, as an application's persistent keys are: each one is a
    // KMS key in our store (a durable transaction) and a file in SoftHSM's.
    let made = Instant::now();
    for i in 0..KEYS {
        s.generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(16.into()),
                Attribute::Token(true),
                Attribute::Encrypt(true),
                Attribute::Label(format!("key-{i}").into_bytes()),
            ],
        )
        .unwrap();
    }
    eprintln!(
        "{}: made {KEYS} token keys in {:.1} s",
        path.display(),
        made.elapsed().as_secs_f64()
    );
    let wanted = [Attribute::Label(format!("key-{}", KEYS / 2).into_bytes())];
    out.push((
        "find 1 of 10,000/s".into(),
        rate(budget, || {
            assert_eq!(s.find_objects(&wanted).unwrap().len(), 1);
        }),
    ));
    // A second process opens the same store (this one keeps it open) and
    // searches at the same time.
    let mut second = Command::new(std::env::current_exe().unwrap())
        .arg("--find-worker")
        .arg(path)
        .arg(budget.as_secs_f64().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the second process");
    let mut lines = BufReader::new(second.stdout.take().unwrap()).lines();
    let mut line = || lines.next().and_then(|l| l.ok()).unwrap_or_default();
    assert_eq!(line(), "ready", "the second process did not open the store");
    writeln!(second.stdin.as_mut().unwrap(), "go").unwrap();
    let here = rate(budget, || {
        assert_eq!(s.find_objects(&wanted).unwrap().len(), 1);
    });
    let there: f64 = line().parse().expect("the second process's rate");
    assert!(second.wait().unwrap().success());
    out.push(("find, 2 processes/s".into(), here + there));
    // Finalised, so the same module can be measured again on another backend.
    drop(s);
    p11.finalize().expect("C_Finalize");
    out
}

/// The second process of the two-process search: opens the module at
/// `path` (configured by the environment it inherited), logs in, says
/// "ready", waits for "go", searches for `seconds` and prints its rate.
fn find_worker(path: &str, seconds: &str) {
    let budget = Duration::from_secs_f64(seconds.parse().expect("seconds"));
    let p11 = Pkcs11::new(path).expect("load module");
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    let slot = p11.get_slots_with_initialized_token().unwrap()[0];
    let initialised = rss_kib();
    let s = p11.open_ro_session(slot).unwrap();
    s.login(UserType::User, Some(&AuthPin::new("1234".into())))
        .unwrap();
    let opened = rss_kib();
    let wanted = [Attribute::Label(format!("key-{}", KEYS / 2).into_bytes())];
    assert_eq!(s.find_objects(&wanted).unwrap().len(), 1);
    // What a process holds for a token of KEYS keys: nothing per key
    // when a session opens, and a search holds only its match.
    eprintln!(
        "{path}: second process RSS {initialised} KiB initialised, {opened} KiB with a \
         session open on {KEYS} keys (+{} KiB), {} KiB after a search (+{} KiB)",
        opened.saturating_sub(initialised),
        rss_kib(),
        rss_kib().saturating_sub(opened)
    );
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    let rate = rate(budget, || {
        assert_eq!(s.find_objects(&wanted).unwrap().len(), 1);
    });
    println!("{rate}");
    drop(s);
    p11.finalize().expect("C_Finalize");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--find-worker") {
        return find_worker(&args[i + 1], &args[i + 2]);
    }
    let ours = match args.iter().position(|a| a == "--module") {
        Some(i) => PathBuf::from(&args[i + 1]),
        None => std::env::current_exe()
            .unwrap()
            .with_file_name("libtinfoil_pkcs11.so"),
    };
    let dir = tempfile::tempdir().unwrap();
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "benchmark passphrase\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let conf = dir.path().join("tinfoil.toml");
    std::fs::write(
        &conf,
        format!(
            "backend = \"embedded\"\ndata_dir = \"{}\"\npassphrase_file = \"{}\"\n",
            dir.path().join("data").display(),
            pass.display()
        ),
    )
    .unwrap();
    std::env::set_var("TINFOIL_PKCS11_CONFIG", &conf);
    std::fs::create_dir(dir.path().join("tokens")).unwrap();
    let soft_conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &soft_conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\n",
            dir.path().join("tokens").display()
        ),
    )
    .unwrap();
    std::env::set_var("SOFTHSM2_CONF", &soft_conf);

    let budget = Duration::from_secs_f64(
        flag(&args, "--seconds")
            .map(|v| v.parse().expect("--seconds N"))
            .unwrap_or(2.0),
    );
    let only = flag(&args, "--only").unwrap_or("embedded,daemon,softhsm");
    let find = !args.iter().any(|a| a == "--no-find");
    if args.iter().any(|a| a == "--pq") {
        return pq::run(&ours, budget, || {
            let d = daemon::Daemon::start(dir.path())?;
            std::fs::write(
                &conf,
                format!("backend = \"daemon\"\nendpoint = \"{}\"\n", d.endpoint),
            )
            .unwrap();
            Some(d)
        });
    }
    let wants = |name: &str| only.split(',').any(|o| o == name);
    let mut columns: Vec<(&str, Vec<(String, f64)>)> = Vec::new();
    if wants("embedded") {
        columns.push(("tinfoil", measure(&ours, budget, find)));
    }
    if wants("daemon") {
        if let Some(d) = daemon::Daemon::start(dir.path()) {
            std::fs::write(
                &conf,
                format!("backend = \"daemon\"\nendpoint = \"{}\"\n", d.endpoint),
            )
            .unwrap();
            columns.push(("tinfoil-daemon", measure(&ours, budget, find)));
        }
    }
    let softhsm = wants("softhsm").then(|| measure(Path::new(SOFTHSM), budget, find));
    println!(
        "[{SESSION}]: CKA_TOKEN false; no call is recorded, as SoftHSM2 records none (like for like).\n\
         [{TOKEN}]: CKA_TOKEN true; every call appends one audit record fsynced before it\n\
         returns (ours; SoftHSM2 records nothing). [{TOKEN_THREADS}]: the same from {THREADS}\n\
         threads, one session each, all threads' calls per second together."
    );
    for (label, figures) in &columns {
        println!("{:<52} {:>14} {:>14} {:>8}", "", label, "softhsm2", "ratio");
        for (name, a) in figures {
            // By name: a backend that lacks a mechanism has no such row.
            match softhsm
                .as_ref()
                .and_then(|soft| soft.iter().find(|(n, _)| n == name))
            {
                Some((_, b)) => println!("{name:<52} {a:>14.1} {b:>14.1} {:>7.2}x", a / b),
                None => println!("{name:<52} {a:>14.1}"),
            }
        }
    }
    if columns.is_empty() {
        if let Some(soft) = &softhsm {
            for (name, b) in soft {
                println!("{name:<52} {:>14} {b:>14.1}", "-");
            }
        }
    }
}

/// This process's resident set size in KiB (0 if unknown).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The value after `name` in the arguments.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).map(String::as_str)
}

/// The release tinfoild for the daemon backend's figures.
mod daemon {
    use std::path::Path;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// A running tinfoild, killed (by its PID) on drop.
    pub struct Daemon {
        child: Child,
        /// `unix:PATH` of its socket.
        pub endpoint: String,
    }

    impl Drop for Daemon {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl Daemon {
        /// Starts target/release/tinfoild on a new store in `dir`; None
        /// (with a note) when it is not built or does not start.
        pub fn start(dir: &Path) -> Option<Daemon> {
            let bin = std::env::current_exe()
                .ok()?
                .parent()?
                .parent()?
                .join("tinfoild");
            if !bin.exists() {
                eprintln!(
                    "{} not built: no daemon backend figures (cargo build --release -p grpc-daemon)",
                    bin.display()
                );
                return None;
            }
            let data = dir.join("daemon-data");
            let pass = dir.join("pass");
            let init = Command::new(&bin)
                .arg("init")
                .arg("--data-dir")
                .arg(&data)
                .arg("--passphrase-file")
                .arg(&pass)
                .env_remove("TINFOIL_PASSPHRASE")
                .stdin(Stdio::null())
                .output()
                .ok()?;
            if !init.status.success() {
                eprintln!(
                    "tinfoild init failed: {}",
                    String::from_utf8_lossy(&init.stderr)
                );
                return None;
            }
            let socket = data.join("tinfoil.sock");
            let child = Command::new(&bin)
                .arg("serve")
                .arg("--data-dir")
                .arg(&data)
                .arg("--passphrase-file")
                .arg(&pass)
                .env_remove("TINFOIL_PASSPHRASE")
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .ok()?;
            let daemon = Daemon {
                child,
                endpoint: format!("unix:{}", socket.display()),
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            while std::os::unix::net::UnixStream::connect(&socket).is_err() {
                if Instant::now() > deadline {
                    eprintln!("tinfoild did not start: no daemon backend figures");
                    return None;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Some(daemon)
        }
    }
}
