//! What the start-up self-test adds to start-up (issue 13: under 50 ms).
//! `cargo run --release -p hsm-core --example selftest_cost [ROUNDS]`
//!
//! Each figure comes from a fresh process (AWS-LC seeds its DRBG once per
//! process, so only a cold process shows that cost). Per round, three
//! children: the passphrase KDF alone (Argon2id with the default 64 MiB,
//! 3 passes: what `tinfoild serve` does before serving), the self-test
//! alone, and the two as tinfoild runs them (self-test started on its own
//! thread, KDF here, then wait for the self-test). Medians are printed.

use std::process::Command;
use std::time::{Duration, Instant};

fn kdf() {
    let params = argon2::Params::new(64 * 1024, 3, 1, Some(32)).unwrap();
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; 32];
    argon
        .hash_password_into(b"correct horse battery staple", &[7u8; 32], &mut out)
        .unwrap();
}

fn child(mode: &str) {
    let started = Instant::now();
    let line = match mode {
        "kdf" => {
            kdf();
            format!("{}", started.elapsed().as_secs_f64())
        }
        "selftest" => {
            let report = hsm_core::selftest::run().unwrap();
            format!(
                "{} {} {}",
                started.elapsed().as_secs_f64(),
                report.elapsed.as_secs_f64(),
                report.rng_seeding.as_secs_f64()
            )
        }
        _ => {
            hsm_core::selftest::start();
            kdf();
            let kdf_done = started.elapsed();
            hsm_core::selftest::run().unwrap();
            format!(
                "{} {}",
                started.elapsed().as_secs_f64(),
                (started.elapsed() - kdf_done).as_secs_f64()
            )
        }
    };
    println!("{line}");
}

fn median(mut values: Vec<f64>) -> Duration {
    values.sort_by(f64::total_cmp);
    Duration::from_secs_f64(values[values.len() / 2])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(mode) = args.get(1).filter(|a| a.starts_with("--child=")) {
        return child(&mode["--child=".len()..]);
    }
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(9);
    let exe = std::env::current_exe().unwrap();
    let run = |mode: &str| -> Vec<f64> {
        let out = Command::new(&exe)
            .arg(format!("--child={mode}"))
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect()
    };
    let (mut kdf_alone, mut st_total, mut st_tests, mut st_seed, mut both, mut waited) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        kdf_alone.push(run("kdf")[0]);
        let st = run("selftest");
        st_total.push(st[0]);
        st_tests.push(st[1]);
        st_seed.push(st[2]);
        let b = run("both");
        both.push(b[0]);
        waited.push(b[1]);
    }
    let (kdf_alone, both) = (median(kdf_alone), median(both));
    println!("{rounds} cold processes each, medians:");
    println!(
        "  self-test alone: {:?} = tests {:?} + AWS-LC DRBG seeding {:?}",
        median(st_total),
        median(st_tests),
        median(st_seed)
    );
    println!("  KDF alone (Argon2id 64 MiB, t=3): {kdf_alone:?}");
    println!(
        "  KDF with the self-test beside it: {both:?} (waited {:?} for the self-test after the KDF)",
        median(waited)
    );
    println!(
        "  start-up added by the self-test: {:?} (ratio {:.3} of the KDF-only start-up)",
        both.saturating_sub(kdf_alone),
        both.as_secs_f64() / kdf_alone.as_secs_f64()
    );
}
