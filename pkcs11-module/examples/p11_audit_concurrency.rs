//! What the audit log's durability costs the embedded backend, and what
//! group commit gives back: ECDSA P-256 C_Sign on a token key from 1, 4,
//! 16 and 64 threads (one session each), our module (embedded backend:
//! each call's record fsynced before it returns, concurrent calls sharing
//! commits) beside SoftHSM2 in the same run. Prints signatures per second
//! and the ratio.
//!
//! `cargo build --release -p pkcs11-module && cargo run --release -p
//! pkcs11-module --example p11_audit_concurrency -- [--seconds S]
//! [--threads 1,4,16,64]` (SoftHSM2 from the Debian package softhsm2).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Signatures per second with each thread count.
fn measure(path: &Path, budget: Duration, threads: &[usize]) -> Vec<f64> {
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
    let (_, key) = s
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::Token(true), Attribute::EcParams(P256.to_vec())],
            &[
                Attribute::Token(true),
                Attribute::Sign(true),
                Attribute::Private(true),
            ],
        )
        .unwrap();
    let figures = threads
        .iter()
        .map(|&n| signatures_per_second(&p11, slot, key, n, budget))
        .collect();
    drop(s);
    p11.finalize().unwrap();
    figures
}

fn signatures_per_second(
    p11: &Pkcs11,
    slot: cryptoki::slot::Slot,
    key: ObjectHandle,
    threads: usize,
    budget: Duration,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (done, stop) = (Arc::clone(&done), Arc::clone(&stop));
            scope.spawn(move || {
                let session = p11.open_ro_session(slot).unwrap();
                let digest = [7u8; 32];
                while !stop.load(Ordering::Relaxed) {
                    session.sign(&Mechanism::Ecdsa, key, &digest).unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(budget);
        stop.store(true, Ordering::Relaxed);
    });
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let budget = Duration::from_secs_f64(flag("--seconds").map_or(2.0, |v| v.parse().unwrap()));
    let threads: Vec<usize> = flag("--threads")
        .unwrap_or_else(|| "1,4,16,64".into())
        .split(',')
        .map(|t| t.parse().unwrap())
        .collect();
    let ours: PathBuf = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(Path::parent)
        .expect("target/release/examples")
        .join("libtinfoil_pkcs11.so");
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

    let embedded = measure(&ours, budget, &threads);
    let softhsm = measure(Path::new(SOFTHSM), budget, &threads);
    println!("ECDSA P-256 C_Sign on a token key, signatures/s");
    println!(
        "{:>8} {:>14} {:>14} {:>8}",
        "threads", "embedded", "softhsm2", "ratio"
    );
    for ((n, a), b) in threads.iter().zip(&embedded).zip(&softhsm) {
        println!("{n:>8} {a:>14.0} {b:>14.0} {:>7.2}x", a / b);
    }
}
