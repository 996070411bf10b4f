//! `--audit`: what durable audit records cost. gRPC Encrypt against the
//! benchmarked daemon (every call's record fsynced before it returns,
//! group-committed) beside a second daemon started with
//! `TINFOIL_AUDIT_NO_FSYNC=1` (records committed, not fsynced per call),
//! interleaved in the same run; and in-process records appended per second
//! through the gate.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hsm_core::{Caller, EncryptionContext, Hsm, Principal};
use tinfoil_daemon::client::{connect, ClientTls};
use tinfoil_proto::v1 as pb;
use tinfoil_proto::v1::key_management_client::KeyManagementClient;

use crate::{figures, kms, over_rpc, print_row, Rpc, StopOnDrop};

/// Starts a second daemon whose audit records are not fsynced per call;
/// returns it with its endpoint and a key of its own.
async fn start_unsynced(tinfoild: &Path, dir: &Path, pass: &Path) -> (StopOnDrop, String, String) {
    let data = dir.join("daemon-nofsync");
    let status = Command::new(tinfoild)
        .args([
            "init",
            "--kdf-memory-kib",
            "8192",
            "--kdf-iterations",
            "1",
            "--data-dir",
        ])
        .arg(&data)
        .arg("--passphrase-file")
        .arg(pass)
        .stdout(Stdio::null())
        .status()
        .expect("run tinfoild init");
    assert!(status.success(), "tinfoild init failed");
    let daemon = Command::new(tinfoild)
        .args(["serve", "--log-level", "error", "--data-dir"])
        .arg(&data)
        .arg("--passphrase-file")
        .arg(pass)
        .env("TINFOIL_AUDIT_NO_FSYNC", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tinfoild");
    let daemon = StopOnDrop(daemon);
    let endpoint = format!("unix:{}", data.join("tinfoil.sock").display());
    let started = Instant::now();
    let channel = loop {
        if let Ok(c) = connect(&endpoint, &ClientTls::default()).await {
            break c;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "tinfoild did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let key_id = KeyManagementClient::new(channel)
        .create_key(pb::CreateKeyRequest::default())
        .await
        .expect("create key")
        .into_inner()
        .key_metadata
        .expect("metadata")
        .key_id;
    (daemon, endpoint, key_id)
}

/// The `--audit` section.
#[allow(clippy::too_many_arguments)]
pub async fn section(
    tinfoild: &Path,
    dir: &Path,
    pass: &Path,
    endpoint: &str,
    target: &kms::Target,
    key_id: &str,
    plaintext: &[u8],
    concurrency: &[usize],
    run: Duration,
    slices: u32,
) {
    let (_daemon, unsynced, unsynced_key) = start_unsynced(tinfoild, dir, pass).await;
    println!(
        "audit: gRPC Encrypt with each record fsynced (group commit) vs. not fsynced per call"
    );
    let mut last = None;
    for &c in concurrency {
        over_rpc(
            endpoint,
            target,
            key_id,
            plaintext,
            Rpc::Encrypt,
            c,
            Duration::from_millis(300),
        )
        .await;
        over_rpc(
            &unsynced,
            target,
            &unsynced_key,
            plaintext,
            Rpc::Encrypt,
            c,
            Duration::from_millis(300),
        )
        .await;
        let mut synced = (Vec::new(), Duration::ZERO);
        let mut plain = (Vec::new(), Duration::ZERO);
        for _ in 0..slices.max(1) {
            let slice = run / slices.max(1);
            let s = over_rpc(endpoint, target, key_id, plaintext, Rpc::Encrypt, c, slice).await;
            synced.0.extend(s.latencies);
            synced.1 += s.elapsed;
            let s = over_rpc(
                &unsynced,
                target,
                &unsynced_key,
                plaintext,
                Rpc::Encrypt,
                c,
                slice,
            )
            .await;
            plain.0.extend(s.latencies);
            plain.1 += s.elapsed;
        }
        let (synced, plain) = (figures(synced.0, synced.1), figures(plain.0, plain.1));
        print_row("Encrypt audit fsync", c, &synced);
        print_row("Encrypt audit no-fsync", c, &plain);
        let ratio = synced.ops_per_sec / plain.ops_per_sec;
        println!("  at {c}: fsynced/not fsynced = {ratio:.2}");
        last = Some((c, ratio));
    }
    if let Some((c, ratio)) = last {
        println!(
            "target at {c}: audit fsynced/not fsynced >= 0.8 ({}: {ratio:.2})",
            if ratio >= 0.8 { "met" } else { "missed" }
        );
    }
}

/// In-process: records appended per second through the gate (Encrypt of
/// `plaintext`, each call's record durable before it returns) on
/// `threads` threads, and records per commit.
pub fn in_process_records(
    hsm: &Arc<Hsm>,
    key_id: &str,
    plaintext: &[u8],
    threads: usize,
    run: Duration,
) {
    let (records_before, commits_before) = hsm.audit_counters();
    let start = Instant::now();
    let until = start + run;
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let hsm = Arc::clone(hsm);
            let key_id = key_id.to_string();
            let plaintext = plaintext.to_vec();
            std::thread::spawn(move || {
                let caller = Caller::new(Principal::Root, "tinfoil-bench");
                let context = EncryptionContext::new();
                let mut latencies = Vec::new();
                while Instant::now() < until {
                    let t = Instant::now();
                    hsm.gate(&caller)
                        .encrypt(&key_id, &plaintext, &context, None)
                        .expect("in-process gated encrypt");
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let latencies: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("bench thread"))
        .collect();
    let elapsed = start.elapsed();
    let (records, commits) = hsm.audit_counters();
    let (records, commits) = (records - records_before, commits - commits_before);
    let f = figures(latencies, elapsed);
    print_row("in-process gated Enc", threads, &f);
    println!(
        "  {threads} threads: {:.0} audit records appended/s, {:.1} records per commit",
        records as f64 / elapsed.as_secs_f64(),
        records as f64 / commits.max(1) as f64
    );
}
