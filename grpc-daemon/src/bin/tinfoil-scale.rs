//! `tinfoil-scale`: what tinfoild costs as its store grows.
//!
//! For each N (default 10,000 and 1,000,000) it builds a store of N
//! SYMMETRIC_DEFAULT keys through hsm-core's bulk path for benchmarks
//! (`Hsm::bulk_create_keys_for_benchmark`: the rows CreateKey writes,
//! 10,000 to a transaction, no audit records; real CreateKey calls fsync
//! one key at a time and would take hours for a million). Then, every
//! measurement taken in turns across the stores so that load from other
//! processes hits them alike:
//! - in-process (hsm-core alone, no gRPC, no audit record): Encrypt of
//!   4 KiB over keys drawn at random, and one ListKeys page of 100 at the
//!   start and at the end of the key space;
//! - the real `tinfoild serve` on each store: start-up (from spawning the
//!   daemon until it answers a ListKeys), RSS after start and after
//!   10,000 Encrypts over random keys (16 concurrent clients), Encrypt
//!   p50/p99, and the first and last ListKeys pages.
//!
//! The smallest N is the reference for the others (same run, same
//! machine): the targets at the largest N are start-up under 1 s, RSS
//! under 100 MB, the last page within 2x of the first, Encrypt p99 within
//! 1.5x of the smallest store's (unchanged, allowing for noise).
//!
//! Build with `--release` for meaningful figures.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use hsm_core::{Hsm, HsmOptions, KdfParams, SecretString};
use tinfoil_daemon::client::{connect, ClientTls};
use tinfoil_proto::v1 as pb;
use tinfoil_proto::v1::key_management_client::KeyManagementClient;

#[derive(Debug, Parser)]
#[command(
    name = "tinfoil-scale",
    about = "tinfoild's start-up, memory, Encrypt latency and ListKeys paging by store size"
)]
struct Args {
    /// Store sizes (keys), smallest first: the first is the reference.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000, 1_000_000])]
    keys: Vec<usize>,
    /// Encrypts over random keys per store.
    #[arg(long, default_value_t = 10_000)]
    encrypts: usize,
    /// Concurrent clients for the Encrypts.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Where to build the stores (default: a temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Path of tinfoild (default: next to this binary).
    #[arg(long)]
    tinfoild: Option<PathBuf>,
}

/// What one store size measured.
#[derive(Default)]
struct Row {
    keys: usize,
    build: Duration,
    db_bytes: u64,
    start: Duration,
    rss_start_kib: u64,
    rss_after_kib: u64,
    /// Encrypt over gRPC (gate, audit record, store).
    grpc: Vec<Duration>,
    /// ListKeys page over gRPC at the start and the end.
    grpc_pages: (Vec<Duration>, Vec<Duration>),
    /// Encrypt in-process (the store and the cache alone).
    local: Vec<Duration>,
    /// ListKeys page in-process at the start and the end.
    local_pages: (Vec<Duration>, Vec<Duration>),
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// The `q` quantile in milliseconds (sorts `samples`).
fn ms(samples: &mut [Duration], q: f64) -> f64 {
    samples.sort_unstable();
    samples
        .get(((samples.len() as f64 * q) as usize).min(samples.len().saturating_sub(1)))
        .map(|d| d.as_secs_f64() * 1e3)
        .unwrap_or(f64::NAN)
}

/// A small xorshift generator: which keys are used need not be secret.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Stops the daemon (SIGTERM, then wait) even if the bench panics.
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

fn write_pass(path: &Path) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("pass file");
    f.write_all(b"scale-passphrase\n").expect("write pass");
}

fn options() -> HsmOptions {
    HsmOptions {
        kdf: KdfParams {
            memory_kib: 8192,
            iterations: 1,
            parallelism: 1,
        },
        ..Default::default()
    }
}

fn secret() -> SecretString {
    SecretString::from("scale-passphrase".to_string())
}

/// Makes a store of `n` keys in `data`; its sorted key ids.
fn build(tinfoild: &Path, data: &Path, pass: &Path, n: usize, row: &mut Row) -> Vec<String> {
    let status = Command::new(tinfoild)
        .args(["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"])
        .arg("--data-dir")
        .arg(data)
        .arg("--passphrase-file")
        .arg(pass)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run tinfoild init");
    assert!(status.success(), "tinfoild init failed");
    let built = Instant::now();
    let mut ids = {
        let hsm = Hsm::open(data, &secret(), options()).expect("open the store");
        hsm.bulk_create_keys_for_benchmark(n).expect("bulk create")
    };
    row.build = built.elapsed();
    ids.sort();
    row.keys = n;
    row.db_bytes = ["tinfoil.db", "tinfoil.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(data.join(f)).ok())
        .map(|m| m.len())
        .sum();
    eprintln!(
        "  {n} keys built in {:.1} s ({:.0} MB on disk)",
        row.build.as_secs_f64(),
        row.db_bytes as f64 / 1e6
    );
    ids
}

/// The marker of the last page of 100.
fn last_marker(ids: &[String]) -> String {
    ids[ids.len().saturating_sub(PAGE + 1)].clone()
}

const PAGE: usize = 100;
/// Calls per page figure.
const PAGE_CALLS: usize = 60;
/// Encrypts per store per interleaved slice.
const SLICE: usize = 500;

/// In-process: every store open at once, Encrypts over random keys and
/// the first and last pages measured in turns across the stores.
fn in_process(stores: &[(PathBuf, Vec<String>)], rows: &mut [Row], encrypts: usize) {
    let hsms: Vec<Hsm> = stores
        .iter()
        .map(|(data, _)| Hsm::open(data, &secret(), options()).expect("open the store"))
        .collect();
    let context = hsm_core::EncryptionContext::new();
    let plaintext = vec![0x5a; 4096];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut done = 0;
    while done < encrypts {
        for ((hsm, (_, ids)), row) in hsms.iter().zip(stores).zip(rows.iter_mut()) {
            for _ in 0..SLICE.min(encrypts - done) {
                let key_id = &ids[(rng.next() % ids.len() as u64) as usize];
                let t = Instant::now();
                hsm.encrypt(key_id, &plaintext, &context, None)
                    .expect("Encrypt");
                row.local.push(t.elapsed());
            }
        }
        done += SLICE;
    }
    for _ in 0..PAGE_CALLS {
        for ((hsm, (_, ids)), row) in hsms.iter().zip(stores).zip(rows.iter_mut()) {
            let last = last_marker(ids);
            let t = Instant::now();
            let page = hsm.list_keys(Some(PAGE as u32), None).expect("ListKeys");
            row.local_pages.0.push(t.elapsed());
            assert_eq!(page.items.len(), PAGE.min(ids.len()));
            let t = Instant::now();
            let page = hsm
                .list_keys(Some(PAGE as u32), Some(&last))
                .expect("ListKeys");
            row.local_pages.1.push(t.elapsed());
            assert!(page.next_marker.is_none());
        }
    }
}

/// Starts tinfoild on `data`: the process and when it first answered.
async fn start(tinfoild: &Path, data: &Path, pass: &Path, row: &mut Row) -> (StopOnDrop, String) {
    let spawned = Instant::now();
    let daemon = Command::new(tinfoild)
        .args(["serve", "--log-level", "warn", "--data-dir"])
        .arg(data)
        .arg("--passphrase-file")
        .arg(pass)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn tinfoild");
    let pid = daemon.id();
    let daemon = StopOnDrop(daemon);
    let endpoint = format!("unix:{}", data.join("tinfoil.sock").display());
    // Answering: a ListKeys of one key succeeds.
    loop {
        if let Ok(c) = connect(&endpoint, &ClientTls::default()).await {
            let listed = KeyManagementClient::new(c)
                .list_keys(pb::ListKeysRequest {
                    limit: Some(1),
                    marker: None,
                })
                .await;
            if listed.is_ok() {
                break;
            }
        }
        assert!(
            spawned.elapsed() < Duration::from_secs(300),
            "tinfoild did not start"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    row.start = spawned.elapsed();
    row.rss_start_kib = rss_kib(pid);
    (daemon, endpoint)
}

/// `count` Encrypts over random keys of `ids` on `concurrency` clients.
async fn encrypts(
    endpoint: &str,
    ids: &Arc<Vec<String>>,
    count: usize,
    concurrency: usize,
    seed: u64,
) -> Vec<Duration> {
    let per_worker = count.div_ceil(concurrency.max(1));
    let mut tasks = Vec::new();
    for w in 0..concurrency.max(1) {
        let channel = connect(endpoint, &ClientTls::default())
            .await
            .expect("connect");
        let ids = Arc::clone(ids);
        tasks.push(tokio::spawn(async move {
            let mut client = KeyManagementClient::new(channel);
            let mut rng = Rng(seed ^ (w as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
            let plaintext = vec![0x5a; 4096];
            let mut latencies = Vec::with_capacity(per_worker);
            for _ in 0..per_worker {
                let key_id = ids[(rng.next() % ids.len() as u64) as usize].clone();
                let t = Instant::now();
                client
                    .encrypt(pb::EncryptRequest {
                        key_id,
                        plaintext: plaintext.clone(),
                        ..Default::default()
                    })
                    .await
                    .expect("Encrypt");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("encrypt task"));
    }
    latencies
}

/// Over gRPC: every store's daemon started one after the other, then
/// Encrypts and pages measured in turns across the daemons.
async fn over_grpc(
    tinfoild: &Path,
    pass: &Path,
    stores: &[(PathBuf, Vec<String>)],
    rows: &mut [Row],
    args: &Args,
) {
    let mut daemons = Vec::new();
    for ((data, _), row) in stores.iter().zip(rows.iter_mut()) {
        daemons.push(start(tinfoild, data, pass, row).await);
    }
    let ids: Vec<Arc<Vec<String>>> = stores
        .iter()
        .map(|(_, ids)| Arc::new(ids.clone()))
        .collect();
    let mut done = 0;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    while done < args.encrypts {
        let n = SLICE.min(args.encrypts - done);
        for (((_, endpoint), ids), row) in daemons.iter().zip(&ids).zip(rows.iter_mut()) {
            seed = seed.wrapping_add(0x6a09_e667_f3bc_c909);
            row.grpc
                .extend(encrypts(endpoint, ids, n, args.concurrency, seed).await);
        }
        done += n;
    }
    let mut clients = Vec::new();
    for ((daemon, endpoint), row) in daemons.iter().zip(rows.iter_mut()) {
        row.rss_after_kib = rss_kib(daemon.0.id());
        clients.push(KeyManagementClient::new(
            connect(endpoint, &ClientTls::default())
                .await
                .expect("connect"),
        ));
    }
    for _ in 0..PAGE_CALLS {
        for ((client, ids), row) in clients.iter_mut().zip(&ids).zip(rows.iter_mut()) {
            for (marker, times) in [
                (None, &mut row.grpc_pages.0),
                (Some(last_marker(ids)), &mut row.grpc_pages.1),
            ] {
                let t = Instant::now();
                let listed = client
                    .list_keys(pb::ListKeysRequest {
                        limit: Some(PAGE as u32),
                        marker,
                    })
                    .await
                    .expect("ListKeys")
                    .into_inner();
                times.push(t.elapsed());
                assert!(!listed.keys.is_empty());
            }
        }
    }
}

fn main() {
    tinfoil_daemon::install_crypto_provider();
    let args = Args::parse();
    let tinfoild = args.tinfoild.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .expect("current_exe")
            .with_file_name("tinfoild")
    });
    let temp;
    let root = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).expect("the --dir directory");
            dir.clone()
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("tinfoil-scale-")
                .tempdir()
                .expect("tempdir");
            temp.path().to_path_buf()
        }
    };
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "tinfoil-scale: stores built by the bulk path (not CreateKey); {} Encrypts of 4 KiB over \
         random keys at concurrency {}; ListKeys pages of 100; {cores} cores",
        args.encrypts, args.concurrency
    );
    let pass = root.join("pass");
    write_pass(&pass);
    let mut rows: Vec<Row> = args.keys.iter().map(|_| Row::default()).collect();
    let mut stores = Vec::new();
    for (&n, row) in args.keys.iter().zip(rows.iter_mut()) {
        let data = root.join(format!("store-{n}"));
        let ids = build(&tinfoild, &data, &pass, n, row);
        stores.push((data, ids));
    }
    // What the build left dirty is flushed before anything is timed.
    let _ = Command::new("sync").status();
    in_process(&stores, &mut rows, args.encrypts);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(over_grpc(&tinfoild, &pass, &stores, &mut rows, &args));
    for (data, _) in &stores {
        let _ = std::fs::remove_dir_all(data);
    }
    println!(
        "{:>9} {:>7} {:>6} {:>8} {:>7} {:>7} | {:>7} {:>7} {:>7} {:>7} | {:>7} {:>7} {:>7} {:>7}",
        "keys",
        "build s",
        "db MB",
        "start ms",
        "RSS0 MB",
        "RSS1 MB",
        "p50 ms",
        "p99 ms",
        "page0",
        "pageN",
        "in-p50",
        "in-p99",
        "in-pg0",
        "in-pgN"
    );
    let mut summary = Vec::new();
    for r in &mut rows {
        let s = (
            ms(&mut r.grpc, 0.5),
            ms(&mut r.grpc, 0.99),
            ms(&mut r.grpc_pages.0, 0.5),
            ms(&mut r.grpc_pages.1, 0.5),
            ms(&mut r.local, 0.5),
            ms(&mut r.local, 0.99),
            ms(&mut r.local_pages.0, 0.5),
            ms(&mut r.local_pages.1, 0.5),
        );
        println!(
            "{:>9} {:>7.1} {:>6.0} {:>8.0} {:>7.1} {:>7.1} | {:>7.3} {:>7.3} {:>7.3} {:>7.3} | {:>7.3} {:>7.3} {:>7.3} {:>7.3}",
            r.keys,
            r.build.as_secs_f64(),
            r.db_bytes as f64 / 1e6,
            r.start.as_secs_f64() * 1e3,
            r.rss_start_kib as f64 / 1024.0,
            r.rss_after_kib as f64 / 1024.0,
            s.0, s.1, s.2, s.3, s.4, s.5, s.6, s.7
        );
        summary.push(s);
    }
    println!(
        "(p50/p99: Encrypt 4 KiB over random keys; page0/pageN: median ListKeys of {PAGE} at the \
         first and the last page, ms; in-: the same in-process, without gRPC and audit records)"
    );
    if let (Some(reference), Some(big), Some(rs), Some(bs)) =
        (rows.first(), rows.last(), summary.first(), summary.last())
    {
        let verdict = |ok: bool| if ok { "met" } else { "missed" };
        let page_ratio = bs.3 / bs.2;
        let local_page_ratio = bs.7 / bs.6;
        let p99_ratio = bs.1 / rs.1;
        let start_ms = big.start.as_secs_f64() * 1e3;
        let rss_mb = big.rss_after_kib.max(big.rss_start_kib) as f64 / 1024.0;
        println!(
            "at {} keys (reference: {} keys, same run): start {start_ms:.0} ms < 1000 ({}); \
             RSS {rss_mb:.1} MB < 100 ({}); last page / first page = {page_ratio:.2} <= 2 ({}) \
             (in-process {local_page_ratio:.2}); Encrypt p99 / reference = {p99_ratio:.2} <= 1.5 \
             ({}) (p50 {:.2}, in-process p99 {:.2}); start / reference = {:.2}; RSS / reference = {:.2}",
            big.keys,
            reference.keys,
            verdict(start_ms < 1000.0),
            verdict(rss_mb < 100.0),
            verdict(page_ratio <= 2.0),
            verdict(p99_ratio <= 1.5),
            bs.0 / rs.0,
            bs.5 / rs.5,
            big.start.as_secs_f64() / reference.start.as_secs_f64(),
            big.rss_after_kib as f64 / reference.rss_after_kib.max(1) as f64,
        );
    }
}
