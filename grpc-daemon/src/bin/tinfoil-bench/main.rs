//! `tinfoil-bench`: throughput and latency of tinfoild over its Unix socket
//! and its AWS KMS JSON endpoint.
//!
//! Starts the real `tinfoild` (found next to this binary) on a throwaway
//! store, then for concurrency 1, 16 and 64 drives Encrypt of 4 KiB over
//! gRPC, an empty RPC (the gRPC health check, the transport's own limit)
//! and Encrypt of 4 KiB through the KMS endpoint (HTTP/1.1 on loopback,
//! every request SigV4-signed by the client with the `aws-sigv4` crate),
//! and prints operations per second, p50 and p99. It also measures
//! hsm-core's Encrypt in-process in the same run and prints the ratios.
//!
//! Build with `--release` for meaningful figures.

#![forbid(unsafe_code)]

mod audit;
mod kms;
mod policy;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use hsm_core::{EncryptionContext, Hsm, HsmOptions, KdfParams};
use tinfoil_daemon::client::{connect, ClientTls};
use tinfoil_proto::v1 as pb;
use tinfoil_proto::v1::key_management_client::KeyManagementClient;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

#[derive(Debug, Parser)]
#[command(
    name = "tinfoil-bench",
    about = "Benchmark tinfoild over its Unix socket and its KMS endpoint"
)]
struct Args {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Concurrency levels (each worker has its own connection).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 64])]
    concurrency: Vec<usize>,
    /// Slices each measurement is cut into, interleaving the operations.
    #[arg(long, default_value_t = 6)]
    slices: u32,
    /// Plaintext size for Encrypt.
    #[arg(long, default_value_t = 4096)]
    plaintext_bytes: usize,
    /// Also measure GenerateRandom of 32 bytes (a call through the
    /// blocking pool with no payload), to separate pool and payload costs.
    #[arg(long)]
    diagnose: bool,
    /// Also measure what durable audit records cost: gRPC Encrypt beside a
    /// daemon whose records are not fsynced per call, and in-process
    /// records appended per second.
    #[arg(long)]
    audit: bool,
    /// Also measure gRPC Encrypt on a key with a 10-statement policy and
    /// 100 grants beside the default policy's key.
    #[arg(long)]
    policies: bool,
    /// Path of tinfoild (default: next to this binary).
    #[arg(long)]
    tinfoild: Option<PathBuf>,
}

/// One measurement's results.
struct Figures {
    ops_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn figures(mut latencies: Vec<Duration>, elapsed: Duration) -> Figures {
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1e3)
            .unwrap_or(f64::NAN)
    };
    Figures {
        ops_per_sec: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
    }
}

fn print_row(name: &str, concurrency: usize, f: &Figures) {
    println!(
        "{name:<22} {concurrency:>4} {:>12.0} {:>10.3} {:>10.3}",
        f.ops_per_sec, f.p50_ms, f.p99_ms
    );
}

/// hsm-core Encrypt in-process on `threads` threads.
fn in_process(
    hsm: &Arc<Hsm>,
    key_id: &str,
    plaintext: &[u8],
    threads: usize,
    run: Duration,
) -> Figures {
    let start = Instant::now();
    let until = start + run;
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let hsm = Arc::clone(hsm);
            let key_id = key_id.to_string();
            let plaintext = plaintext.to_vec();
            std::thread::spawn(move || {
                let context = EncryptionContext::new();
                let mut latencies = Vec::new();
                while Instant::now() < until {
                    let t = Instant::now();
                    hsm.encrypt(&key_id, &plaintext, &context, None)
                        .expect("in-process encrypt");
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let latencies = handles
        .into_iter()
        .flat_map(|h| h.join().expect("bench thread"))
        .collect();
    figures(latencies, start.elapsed())
}

#[derive(Clone, Copy)]
enum Rpc {
    Encrypt,
    Health,
    Random,
    /// Encrypt through the KMS JSON endpoint, SigV4-signed.
    KmsEncrypt,
}

/// A worker's connection: gRPC, or HTTP/1.1 to the KMS endpoint.
enum Conn {
    Grpc(tonic::transport::Channel),
    Kms(Box<kms::Client>),
}

/// Latencies and wall time of one measured slice.
struct Sample {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

/// Measures each of `rpcs` for `run` in total, interleaved in `slices`
/// short slices so load from other processes hits all of them alike.
#[allow(clippy::too_many_arguments)]
async fn interleaved(
    endpoint: &str,
    target: &kms::Target,
    key_id: &str,
    plaintext: &[u8],
    rpcs: &[Rpc],
    workers: usize,
    run: Duration,
    slices: u32,
) -> Vec<Figures> {
    let mut samples: Vec<Sample> = rpcs
        .iter()
        .map(|_| Sample {
            latencies: Vec::new(),
            elapsed: Duration::ZERO,
        })
        .collect();
    for _ in 0..slices.max(1) {
        for (rpc, total) in rpcs.iter().zip(samples.iter_mut()) {
            let s = over_rpc(
                endpoint,
                target,
                key_id,
                plaintext,
                *rpc,
                workers,
                run / slices.max(1),
            )
            .await;
            total.latencies.extend(s.latencies);
            total.elapsed += s.elapsed;
        }
    }
    samples
        .into_iter()
        .map(|s| figures(s.latencies, s.elapsed))
        .collect()
}

async fn over_rpc(
    endpoint: &str,
    target: &kms::Target,
    key_id: &str,
    plaintext: &[u8],
    rpc: Rpc,
    workers: usize,
    run: Duration,
) -> Sample {
    let mut clients = Vec::new();
    for _ in 0..workers {
        clients.push(match rpc {
            Rpc::KmsEncrypt => Conn::Kms(Box::new(kms::Client::connect(target, plaintext).await)),
            _ => Conn::Grpc(
                connect(endpoint, &ClientTls::default())
                    .await
                    .expect("connect"),
            ),
        });
    }
    let start = Instant::now();
    let until = start + run;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|conn| {
            let key_id = key_id.to_string();
            let plaintext = plaintext.to_vec();
            tokio::spawn(async move {
                let (channel, mut http) = match conn {
                    Conn::Grpc(channel) => (Some(channel), None),
                    Conn::Kms(client) => (None, Some(client)),
                };
                let mut grpc =
                    channel.map(|c| (KeyManagementClient::new(c.clone()), HealthClient::new(c)));
                let mut latencies = Vec::new();
                while Instant::now() < until {
                    let t = Instant::now();
                    match (rpc, grpc.as_mut(), http.as_mut()) {
                        (Rpc::KmsEncrypt, _, Some(client)) => client.encrypt().await,
                        (Rpc::Encrypt, Some((kms, _)), _) => {
                            kms.encrypt(pb::EncryptRequest {
                                key_id: key_id.clone(),
                                plaintext: plaintext.clone(),
                                ..Default::default()
                            })
                            .await
                            .expect("Encrypt");
                        }
                        (Rpc::Random, Some((kms, _)), _) => {
                            kms.generate_random(pb::GenerateRandomRequest {
                                number_of_bytes: 32,
                            })
                            .await
                            .expect("GenerateRandom");
                        }
                        (Rpc::Health, Some((_, health)), _) => {
                            health
                                .check(HealthCheckRequest {
                                    service: String::new(),
                                })
                                .await
                                .expect("health check");
                        }
                        _ => unreachable!("each operation gets its own kind of connection"),
                    }
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("bench task"));
    }
    Sample {
        latencies,
        elapsed: start.elapsed(),
    }
}

fn main() {
    tinfoil_daemon::install_crypto_provider();
    let args = Args::parse();
    let run = Duration::from_secs(args.seconds.max(1));
    let dir = tempfile::Builder::new()
        .prefix("tinfoil-bench-")
        .tempdir()
        .expect("tempdir");
    let plaintext = vec![0x5a; args.plaintext_bytes];

    // In-process baseline on its own store.
    let options = HsmOptions {
        kdf: KdfParams {
            memory_kib: 8192,
            iterations: 1,
            parallelism: 1,
        },
        ..Default::default()
    };
    let secret = hsm_core::SecretString::from("bench-passphrase".to_string());
    let hsm = Arc::new(Hsm::init(&dir.path().join("inproc"), &secret, options).expect("init"));
    let local_key = hsm
        .create_key(Default::default())
        .expect("create key")
        .key_id;

    // The daemon on its own store, as a separate process.
    let tinfoild = args.tinfoild.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .expect("current_exe")
            .with_file_name("tinfoild")
    });
    let data = dir.path().join("daemon");
    let pass = dir.path().join("pass");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&pass)
            .expect("pass file");
        f.write_all(b"bench-passphrase\n").expect("write pass");
    }
    let status = Command::new(&tinfoild)
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
        .arg(&pass)
        .stdout(Stdio::null())
        .status()
        .expect("run tinfoild init");
    assert!(status.success(), "tinfoild init failed");
    let kms_addr: SocketAddr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port");
    let daemon = Command::new(&tinfoild)
        .args([
            "serve",
            "--log-level",
            "warn",
            "--insecure-loopback",
            "--kms-listen",
        ])
        .arg(format!("tcp:{kms_addr}"))
        .arg("--data-dir")
        .arg(&data)
        .arg("--passphrase-file")
        .arg(&pass)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn tinfoild");
    let _daemon = StopOnDrop(daemon);
    let socket = data.join("tinfoil.sock");
    let endpoint = format!("unix:{}", socket.display());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    runtime.block_on(async {
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
        let mut admin = KeyManagementClient::new(channel);
        let metadata = admin
            .create_key(pb::CreateKeyRequest::default())
            .await
            .expect("create key")
            .into_inner()
            .key_metadata
            .expect("metadata");
        let key_id = metadata.key_id;
        let access_key = admin
            .create_access_key(pb::CreateAccessKeyRequest {
                user_name: "root".into(),
            })
            .await
            .expect("create an access key")
            .into_inner()
            .access_key
            .expect("the access key");
        let target = kms::Target {
            addr: kms_addr,
            // arn:aws:kms:REGION:ACCOUNT:key/ID
            region: metadata
                .arn
                .split(':')
                .nth(3)
                .expect("a key ARN")
                .to_string(),
            key_arn: metadata.arn,
            access_key_id: access_key.access_key_id,
            secret: access_key.secret_access_key,
        };
        let kms_started = Instant::now();
        while tokio::net::TcpStream::connect(kms_addr).await.is_err() {
            assert!(
                kms_started.elapsed() < Duration::from_secs(60),
                "the KMS endpoint did not listen"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        println!(
            "tinfoil-bench: {} s per row (interleaved in {} slices), {} B plaintext, {cores} cores",
            run.as_secs(),
            args.slices,
            plaintext.len()
        );
        println!(
            "{:<22} {:>4} {:>12} {:>10} {:>10}",
            "operation", "conc", "ops/s", "p50 ms", "p99 ms"
        );
        let local_1 = in_process(&hsm, &local_key, &plaintext, 1, run);
        print_row("in-process Encrypt", 1, &local_1);
        let local_n = in_process(&hsm, &local_key, &plaintext, cores, run);
        print_row("in-process Encrypt", cores, &local_n);
        let mut last = None;
        for &c in &args.concurrency {
            // Warm-up, unmeasured.
            for rpc in [Rpc::Encrypt, Rpc::KmsEncrypt] {
                over_rpc(
                    &endpoint,
                    &target,
                    &key_id,
                    &plaintext,
                    rpc,
                    c,
                    Duration::from_millis(300),
                )
                .await;
            }
            let mut rpcs = vec![Rpc::Encrypt, Rpc::Health, Rpc::KmsEncrypt];
            if args.diagnose {
                rpcs.push(Rpc::Random);
            }
            let figs = interleaved(
                &endpoint,
                &target,
                &key_id,
                &plaintext,
                &rpcs,
                c,
                run,
                args.slices,
            )
            .await;
            let (enc, empty, json) = (&figs[0], &figs[1], &figs[2]);
            print_row("Encrypt (gRPC)", c, enc);
            print_row("health check (gRPC)", c, empty);
            print_row("Encrypt (KMS+SigV4)", c, json);
            if let Some(random) = figs.get(3) {
                print_row("GenerateRandom 32 B", c, random);
            }
            println!(
                "  at {c}: Encrypt/empty RPC = {:.2}; Encrypt/in-process({cores} thr) = {:.3}; \
                 KMS endpoint/gRPC Encrypt = {:.2}",
                enc.ops_per_sec / empty.ops_per_sec,
                enc.ops_per_sec / local_n.ops_per_sec,
                json.ops_per_sec / enc.ops_per_sec
            );
            last = Some((
                c,
                enc.ops_per_sec,
                empty.ops_per_sec,
                enc.p99_ms,
                json.ops_per_sec,
            ));
        }
        if args.policies {
            policy::section(
                &endpoint,
                &target,
                &key_id,
                &plaintext,
                &args.concurrency,
                run,
                args.slices,
            )
            .await;
        }
        if args.audit {
            for threads in [1, cores, 64] {
                audit::in_process_records(&hsm, &local_key, &plaintext, threads, run);
            }
            audit::section(
                &tinfoild,
                dir.path(),
                &pass,
                &endpoint,
                &target,
                &key_id,
                &plaintext,
                &args.concurrency,
                run,
                args.slices,
            )
            .await;
        }
        if let Some((c, enc, empty, p99, json)) = last {
            let ratio = enc / empty;
            let kms_ratio = json / enc;
            println!(
                "target at {c}: Encrypt/empty >= 0.7 ({}: {ratio:.2}), p99 < 10 ms ({}: {:.3}), \
                 KMS endpoint/gRPC Encrypt >= 0.7 ({}: {kms_ratio:.2})",
                if ratio >= 0.7 { "met" } else { "missed" },
                if p99 < 10.0 { "met" } else { "missed" },
                p99,
                if kms_ratio >= 0.7 { "met" } else { "missed" },
            );
        }
    });
}

/// Stops the benchmarked daemon (SIGTERM, then wait) even if the bench panics.
struct StopOnDrop(std::process::Child);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let stopped = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}
