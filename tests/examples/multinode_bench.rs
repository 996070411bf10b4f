//! `multinode_bench`: tinfoild on SQLite against tinfoild on PostgreSQL,
//! one node and two nodes, in the same run on the same machine (issue 15).
//!
//! ```sh
//! cargo build --release -p grpc-daemon --bins -p tinfoil-e2e-tests --example multinode_bench
//! target/release/examples/multinode_bench     # [--seconds 6] [--slices 3] [--tries 100] [--profile] [--encrypt-only] [--database-cpu N]
//! ```
//!
//! Starts the real `tinfoild` (next to this binary's directory) three
//! ways: on a SQLite store (`--data-dir`), and on a PostgreSQL store in a
//! throwaway cluster (hsm-core's test cluster with `fsync=on`, so commits
//! are as durable as SQLite's) served by one node, then by two nodes with
//! the clients split between them. At concurrency 64 (one connection per
//! client) it measures CreateKey (each one a durable commit with its audit
//! record) and Encrypt of 4 KiB (one key, cached by every node; its audit
//! record is group-committed), interleaving the configurations in short
//! slices so background load hits them alike, and prints operations per
//! second, p50/p99 and the ratios to SQLite (targets: Encrypt >= 0.9,
//! CreateKey >= 0.5), and where the machine's CPU went per call: the
//! nodes, the database, the clients, everything else (mostly the kernel's
//! disk and network work) and idle. Then the disable lag: DisableKey on node A, Decrypt
//! polled back to back on node B until DisabledException, over `--tries`
//! tries (EnableKey and B serving again between tries): median and maximum
//! (target under 1 s).
//!
//! `--database-cpu N` runs PostgreSQL on CPU N alone and everything else
//! (the SQLite node too) on the other CPUs, as with the database on a host
//! of its own.
//!
//! `--profile` loads `pg_stat_statements` (and `track_wal_io_timing`) in
//! the cluster and, after the figures, runs each PostgreSQL configuration
//! and operation once more for 2 s, printing what the database did per
//! call: each statement's calls and server time, the WAL flushes and
//! their time, and the latency of one round trip (`SELECT 1`) under that
//! load. BEGIN, LOCK and the chain's ends count as three statements but
//! are one round trip; a COMMIT's `pg_notify`s ride with it.
//!
//! Needs PostgreSQL's binaries (Debian's `postgresql` package). Build with
//! `--release` for meaningful figures.

use std::time::{Duration, Instant};

use tinfoil_daemon::client::{connect, ClientTls};
use tinfoil_e2e_tests::daemon::{Daemon, Store};
use tinfoil_e2e_tests::pg_nodes::{Cluster, PgStore};
use tinfoil_proto::v1 as pb;
use tinfoil_proto::v1::key_management_client::KeyManagementClient;
use tonic::transport::Channel;

type Client = KeyManagementClient<Channel>;

const CONCURRENCY: usize = 64;
const PLAINTEXT: usize = 4096;

struct Args {
    seconds: u64,
    slices: u32,
    tries: usize,
    profile: bool,
    /// Only Encrypt (`--encrypt-only`: CreateKey's columns stay empty), to
    /// profile one operation at a time.
    encrypt_only: bool,
    /// `--database-cpu N`: PostgreSQL on CPU N alone, the nodes and the
    /// clients of every configuration (SQLite's too) on the other CPUs, as
    /// with the database on a host of its own.
    database_cpu: Option<usize>,
}

fn args() -> Args {
    let mut args = Args {
        seconds: 6,
        slices: 3,
        tries: 100,
        profile: false,
        encrypt_only: false,
        database_cpu: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--profile" {
            args.profile = true;
            continue;
        }
        if flag == "--encrypt-only" {
            args.encrypt_only = true;
            continue;
        }
        let value = it.next().unwrap_or_default();
        let n: u64 = value
            .parse()
            .unwrap_or_else(|_| panic!("{flag} needs a number, got {value:?}"));
        match flag.as_str() {
            "--seconds" => args.seconds = n.max(1),
            "--slices" => args.slices = (n as u32).max(1),
            "--tries" => args.tries = (n as usize).max(1),
            "--database-cpu" => args.database_cpu = Some(n as usize),
            _ => panic!(
                "unknown flag {flag} (--seconds N, --slices N, --tries N, --profile, \
                 --encrypt-only, --database-cpu N)"
            ),
        }
    }
    args
}

/// Binds process `pid` (every thread with `all_threads`) to `cpus` (a
/// list as taskset takes it, e.g. `0,2-3`), with util-linux's taskset.
fn pin(pid: u32, cpus: &str, all_threads: bool) {
    let mut taskset = std::process::Command::new("taskset");
    if all_threads {
        taskset.arg("-a");
    }
    let status = taskset
        .args(["-p", "-c", cpus, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("taskset (util-linux) runs");
    assert!(status.success(), "taskset -p -c {cpus} {pid} failed");
}

/// One process as /proc/PID/stat shows it: its id, its command name, and
/// the fields after the name (`state` is index 0, `ppid` 1, `utime` 11,
/// `stime` 12).
struct ProcStat {
    pid: u32,
    comm: String,
    fields: Vec<String>,
}

impl ProcStat {
    /// Field `i` (after the name) as a number, 0 if missing.
    fn number(&self, i: usize) -> f64 {
        self.fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .unwrap_or(0.0)
    }
}

/// Every process now running, from /proc (those that end meanwhile are
/// skipped).
fn processes() -> Vec<ProcStat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // pid (comm) state ppid ...: the name may hold spaces and parens.
            let (open, close) = (stat.find('(')?, stat.rfind(')')?);
            Some(ProcStat {
                pid,
                comm: stat[open + 1..close].to_string(),
                fields: stat[close + 1..]
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// The children of process `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|p| p.number(1) == f64::from(parent))
        .map(|p| p.pid)
        .collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    CreateKey,
    Encrypt,
}

/// A configuration under test: its clients (one connection each) and the
/// key Encrypt uses.
struct Setup {
    name: &'static str,
    clients: Vec<Client>,
    key_id: String,
}

/// Latencies, wall time and CPU time, summed over slices.
#[derive(Default)]
struct Sample {
    latencies: Vec<Duration>,
    elapsed: Duration,
    /// CPU seconds of every tinfoild, every PostgreSQL process, this
    /// benchmark's clients, the rest of the machine, and idle (see
    /// [`cpu_seconds`]).
    cpu: [f64; 5],
}

/// CPU time (user + system, seconds) used so far by every `tinfoild`
/// process, every `postgres` process and this process, from /proc; then
/// the machine's other busy time (kernel threads doing the disks' and the
/// network's work, anything else running) and its idle time (with I/O
/// wait), from /proc/stat. A process that exits takes its figure with
/// it: the nodes and the pooled database sessions live through the whole
/// run.
fn cpu_seconds() -> [f64; 5] {
    // Linux reports these in USER_HZ, 100 per second.
    const TICKS_PER_SECOND: f64 = 100.0;
    let mut out = [0.0; 5];
    // cpu  user nice system idle iowait irq softirq steal ...
    if let Some(line) = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| s.lines().next().map(str::to_owned))
    {
        let ticks: Vec<f64> = line
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(|f| f.parse().unwrap_or(0.0))
            .collect();
        if ticks.len() == 8 {
            out[3] = (ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7])
                / TICKS_PER_SECOND;
            out[4] = (ticks[3] + ticks[4]) / TICKS_PER_SECOND;
        }
    }
    let me = std::process::id();
    for process in processes() {
        let group = match process.comm.as_str() {
            "tinfoild" => 0,
            "postgres" => 1,
            _ if process.pid == me => 2,
            _ => continue,
        };
        // utime and stime.
        let seconds = (process.number(11) + process.number(12)) / TICKS_PER_SECOND;
        out[group] += seconds;
        out[3] -= seconds;
    }
    out
}

impl Sample {
    fn ops_per_sec(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn quantile_ms(&mut self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() as f64 * q) as usize).min(self.latencies.len() - 1);
        self.latencies[i].as_secs_f64() * 1e3
    }
}

async fn client(endpoint: &str) -> Client {
    KeyManagementClient::new(
        connect(endpoint, &ClientTls::default())
            .await
            .expect("connect to tinfoild"),
    )
}

/// `CONCURRENCY` clients spread over `endpoints`, and a key made on the
/// first that every node has used once (so it is cached everywhere).
async fn setup(name: &'static str, endpoints: &[String]) -> Setup {
    let mut clients = Vec::new();
    for c in 0..CONCURRENCY {
        clients.push(client(&endpoints[c % endpoints.len()]).await);
    }
    let key_id = clients[0]
        .create_key(pb::CreateKeyRequest::default())
        .await
        .expect("CreateKey")
        .into_inner()
        .key_metadata
        .expect("metadata")
        .key_id;
    for c in clients.iter_mut().take(endpoints.len()) {
        encrypt(c, &key_id).await;
    }
    Setup {
        name,
        clients,
        key_id,
    }
}

async fn encrypt(client: &mut Client, key_id: &str) -> Vec<u8> {
    client
        .encrypt(pb::EncryptRequest {
            key_id: key_id.into(),
            plaintext: vec![0x5a; PLAINTEXT],
            ..Default::default()
        })
        .await
        .expect("Encrypt")
        .into_inner()
        .ciphertext_blob
}

/// Every client of `setup` runs `op` back to back for `run`.
async fn slice(setup: &Setup, op: Op, run: Duration) -> Sample {
    let start = Instant::now();
    let until = start + run;
    let tasks: Vec<_> = setup
        .clients
        .iter()
        .map(|c| {
            let mut c = c.clone();
            let key_id = setup.key_id.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < until {
                    let t = Instant::now();
                    match op {
                        Op::CreateKey => {
                            c.create_key(pb::CreateKeyRequest::default())
                                .await
                                .expect("CreateKey");
                        }
                        Op::Encrypt => {
                            encrypt(&mut c, &key_id).await;
                        }
                    }
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut sample = Sample::default();
    for t in tasks {
        sample.latencies.extend(t.await.expect("bench task"));
    }
    sample.elapsed = start.elapsed();
    sample
}

/// Disable on `a`, poll Decrypt on `b` until DisabledException: the lag
/// after DisableKey was acknowledged. Then enable and wait until `b`
/// decrypts again.
async fn disable_lag(a: &mut Client, b: &mut Client, key_id: &str, blob: &[u8]) -> Duration {
    let decrypt = |c: &mut Client| {
        let mut c = c.clone();
        let blob = blob.to_vec();
        async move {
            c.decrypt(pb::DecryptRequest {
                ciphertext_blob: blob,
                ..Default::default()
            })
            .await
        }
    };
    decrypt(b).await.expect("B decrypts before the try");
    a.disable_key(pb::DisableKeyRequest {
        key_id: key_id.into(),
    })
    .await
    .expect("DisableKey");
    let acknowledged = Instant::now();
    let lag = loop {
        match decrypt(b).await {
            Ok(_) => {}
            Err(s)
                if tinfoil_daemon::status::reason_of(&s).as_deref()
                    == Some("DisabledException") =>
            {
                break acknowledged.elapsed()
            }
            Err(s) => panic!("Decrypt on B: {s:?}"),
        }
        assert!(
            acknowledged.elapsed() < Duration::from_secs(30),
            "B still decrypts 30 s after DisableKey on A"
        );
    };
    a.enable_key(pb::EnableKeyRequest {
        key_id: key_id.into(),
    })
    .await
    .expect("EnableKey");
    let enabled = Instant::now();
    while decrypt(b).await.is_err() {
        assert!(
            enabled.elapsed() < Duration::from_secs(30),
            "B never serves again"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    lag
}

/// `--profile`: resets PostgreSQL's statement statistics (`reset`), or
/// reads them: (statement, calls, total server time in ms), most called
/// first. On a thread of its own (the sync client runs its own runtime).
fn pg_stats(url: &str, reset: bool) -> Vec<(String, i64, f64)> {
    let url = url.to_string();
    std::thread::spawn(move || {
        let mut db = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        if reset {
            db.batch_execute(
                "SELECT pg_stat_statements_reset(); SELECT pg_stat_reset_shared('wal')",
            )
            .expect("reset pg_stat_statements");
            return Vec::new();
        }
        // The WAL flushes (fsyncs) as one more line.
        let wal = db
            .query_one(
                "SELECT 'WAL flushes (fsync)', wal_sync, wal_sync_time FROM pg_stat_wal",
                &[],
            )
            .expect("read pg_stat_wal");
        let wal = (wal.get(0), wal.get(1), wal.get(2));
        db.query(
            "SELECT query, calls, total_exec_time FROM pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
             ORDER BY calls DESC",
            &[],
        )
        .expect("read pg_stat_statements")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .chain(std::iter::once(wal))
        .collect()
    })
    .join()
    .expect("pg_stat_statements thread")
}

/// `--profile`: what PostgreSQL ran per call of `op` on `setup`: each
/// statement's calls per operation and server time, and the wall time.
async fn profile(setup: &Setup, op: Op, url: &str) {
    pg_stats(url, true);
    // A round trip's latency under this load: `SELECT 1` back to back on
    // a connection of its own (at most one at a time: little added load).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prober = {
        let (url, stop) = (url.to_string(), stop.clone());
        std::thread::spawn(move || {
            let mut db = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
            let select = db.prepare("SELECT 1").expect("prepare");
            let mut times = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                db.query_one(&select, &[]).expect("SELECT 1");
                times.push(t.elapsed());
                std::thread::sleep(Duration::from_millis(2));
            }
            times.sort_unstable();
            times
        })
    };
    let sample = slice(setup, op, Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let round_trips = prober.join().expect("prober");
    let rt = |q: f64| {
        round_trips[((round_trips.len() as f64 * q) as usize).min(round_trips.len() - 1)]
            .as_secs_f64()
            * 1e6
    };
    let ops = sample.latencies.len() as f64;
    let stats = pg_stats(url, false);
    let name = if op == Op::CreateKey {
        "CreateKey"
    } else {
        "Encrypt"
    };
    let (wal, stats) = stats.split_last().expect("the WAL line");
    let server_ms: f64 = stats.iter().map(|s| s.2).sum();
    let statements: i64 = stats.iter().map(|s| s.1).sum();
    println!(
        "profile {} {name}: {:.0}/s, {:.2} statements per call, server time {:.1} us per call \
         ({:.0}% of the wall time)",
        setup.name,
        sample.ops_per_sec(),
        statements as f64 / ops,
        server_ms * 1e3 / ops,
        server_ms / 1e3 / sample.elapsed.as_secs_f64() * 100.0
    );
    println!(
        "  {:.3} WAL flushes per call, {:.0} us each (track_wal_io_timing)",
        wal.1 as f64 / ops,
        wal.2 * 1e3 / (wal.1.max(1) as f64)
    );
    println!(
        "  one round trip (SELECT 1) meanwhile: p50 {:.0} us, p90 {:.0} us ({} probes)",
        rt(0.5),
        rt(0.9),
        round_trips.len()
    );
    for (query, calls, total_ms) in stats.iter().filter(|s| s.1 as f64 >= ops / 100.0) {
        let query: String = query.split_whitespace().collect::<Vec<_>>().join(" ");
        let query: String = query.chars().take(90).collect();
        println!(
            "  {:>8.3}/call {:>8.1} us each  {query}",
            *calls as f64 / ops,
            total_ms * 1e3 / *calls as f64
        );
    }
}

fn main() {
    tinfoil_daemon::install_crypto_provider();
    let args = args();
    let quiet: &[&str] = &["--log-level", "warn"];
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Some(cpu) = args.database_cpu {
        assert!(
            cpu < cpus && cpus > 1,
            "--database-cpu {cpu}: this machine has CPUs 0 to {}",
            cpus - 1
        );
        // Before any thread or child exists: they all inherit it.
        let others: Vec<String> = (0..cpus)
            .filter(|c| *c != cpu)
            .map(|c| c.to_string())
            .collect();
        pin(std::process::id(), &others.join(","), false);
    }

    let sqlite = Store::init();
    let sqlite_node = Daemon::start(&sqlite, quiet);
    let Some(cluster) = Cluster::start_durable() else {
        std::process::exit(2);
    };
    let pg = PgStore::init_on(cluster);
    if args.profile {
        // pg_stat_statements needs a restart to load.
        let mut admin = pg.db();
        for setting in [
            "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'",
            "ALTER SYSTEM SET track_wal_io_timing = on",
        ] {
            admin.batch_execute(setting).expect("ALTER SYSTEM");
        }
        drop(admin);
        pg.cluster.stop_server();
        pg.cluster.start_server();
        pg.db()
            .batch_execute("CREATE EXTENSION pg_stat_statements")
            .expect("CREATE EXTENSION pg_stat_statements");
    }
    if let Ok(sql) = std::env::var("MULTINODE_BENCH_PG_SQL") {
        // Experiments: schema or setting changes tried on the cluster,
        // statements apart separated by `;;`.
        // Statements apart (ALTER SYSTEM refuses a transaction block).
        let mut db = pg.db();
        for statement in sql.split(";;") {
            db.batch_execute(statement).expect("MULTINODE_BENCH_PG_SQL");
        }
    }
    if let Some(cpu) = args.database_cpu {
        // The server and the processes it runs; backends it forks later
        // inherit the server's CPU.
        let server = pg.cluster.server_pid().expect("the server's pid file");
        pin(server, &cpu.to_string(), true);
        for child in children_of(server) {
            pin(child, &cpu.to_string(), true);
        }
        println!("PostgreSQL on CPU {cpu} alone; the nodes and the clients on the other CPUs");
    }
    let pg_a = pg.start_node(0, quiet);
    let pg_b = pg.start_node(1, quiet);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let setups = [
            setup("SQLite, 1 node", std::slice::from_ref(&sqlite_node.endpoint)).await,
            setup("PostgreSQL, 1 node", std::slice::from_ref(&pg_a.endpoint)).await,
            setup(
                "PostgreSQL, 2 nodes",
                &[pg_a.endpoint.clone(), pg_b.endpoint.clone()],
            )
            .await,
        ];
        let per_slice = Duration::from_secs(args.seconds) / args.slices;
        println!(
            "multinode_bench: concurrency {CONCURRENCY} (one connection each), Encrypt of {PLAINTEXT} bytes, \
             {} s per figure in {} interleaved slices",
            args.seconds, args.slices
        );
        // Warm-up: every connection made, every node has the key.
        for s in &setups {
            slice(s, Op::Encrypt, Duration::from_millis(300)).await;
        }
        let mut samples: Vec<[Sample; 2]> = setups.iter().map(|_| Default::default()).collect();
        for _ in 0..args.slices {
            for (s, sample) in setups.iter().zip(samples.iter_mut()) {
                for (i, op) in [Op::CreateKey, Op::Encrypt].into_iter().enumerate() {
                    if args.encrypt_only && op == Op::CreateKey {
                        continue;
                    }
                    let before = cpu_seconds();
                    let part = slice(s, op, per_slice).await;
                    let after = cpu_seconds();
                    sample[i].latencies.extend(part.latencies);
                    sample[i].elapsed += part.elapsed;
                    for (c, (a, b)) in sample[i].cpu.iter_mut().zip(after.iter().zip(before)) {
                        *c += a - b;
                    }
                }
            }
        }
        println!(
            "{:<22} {:>12} {:>9} {:>9} {:>7} {:>12} {:>9} {:>9} {:>7}",
            "", "CreateKey/s", "p50 ms", "p99 ms", "ratio", "Encrypt/s", "p50 ms", "p99 ms", "ratio"
        );
        let reference: Vec<f64> = samples[0].iter().map(Sample::ops_per_sec).collect();
        let mut ratios = Vec::new();
        for (s, sample) in setups.iter().zip(samples.iter_mut()) {
            let mut row = format!("{:<22}", s.name);
            let mut r = [0.0; 2];
            for (i, part) in sample.iter_mut().enumerate() {
                r[i] = part.ops_per_sec() / reference[i];
                row.push_str(&format!(
                    " {:>12.0} {:>9.2} {:>9.2} {:>7.2}",
                    part.ops_per_sec(),
                    part.quantile_ms(0.5),
                    part.quantile_ms(0.99),
                    r[i]
                ));
            }
            ratios.push(r);
            println!("{row}");
        }
        // Where the two cores went: CPU time per call, by process.
        println!(
            "CPU per call (us): {:<22} {:>9} {:>9} {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} {:>9} {:>9}",
            "",
            "tinfoild",
            "postgres",
            "clients",
            "other",
            "idle",
            "tinfoild",
            "postgres",
            "clients",
            "other",
            "idle"
        );
        for (s, sample) in setups.iter().zip(samples.iter()) {
            let mut row = format!("CPU per call (us): {:<22}", s.name);
            for (i, part) in sample.iter().enumerate() {
                let calls = part.latencies.len().max(1) as f64;
                if i == 1 {
                    row.push_str(" |");
                }
                for c in part.cpu {
                    row.push_str(&format!(" {:>9.1}", c * 1e6 / calls));
                }
            }
            println!("{row}");
        }
        // A ratio and its verdict; "not measured" for an operation left out.
        let verdict = |ratio: f64, target: f64| {
            if ratio.is_nan() {
                "not measured".to_string()
            } else if ratio >= target {
                format!("{ratio:.2} of SQLite (target >= {target}: met)")
            } else {
                format!("{ratio:.2} of SQLite (target >= {target}: NOT met)")
            }
        };
        for (name, r) in [("1 node", ratios[1]), ("2 nodes", ratios[2])] {
            println!(
                "PostgreSQL {name}: CreateKey {}, Encrypt {}",
                verdict(r[0], 0.5),
                verdict(r[1], 0.9)
            );
        }

        if args.profile {
            for s in &setups[1..] {
                for op in [Op::CreateKey, Op::Encrypt] {
                    profile(s, op, &pg.url).await;
                }
            }
        }

        // The disable lag, node A to node B.
        let mut a = client(&pg_a.endpoint).await;
        let mut b = client(&pg_b.endpoint).await;
        let key_id = setups[2].key_id.clone();
        let blob = encrypt(&mut a, &key_id).await;
        let mut lags = Vec::new();
        for _ in 0..args.tries {
            lags.push(disable_lag(&mut a, &mut b, &key_id, &blob).await);
        }
        lags.sort_unstable();
        let median = lags[lags.len() / 2];
        let max = *lags.last().expect("at least one try");
        println!(
            "disable lag (DisableKey acknowledged by A until B refuses Decrypt, {} tries): \
             median {:.2} ms, max {:.2} ms, min {:.2} ms (target < 1 s: {})",
            lags.len(),
            median.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3,
            lags[0].as_secs_f64() * 1e3,
            if max < Duration::from_secs(1) {
                "met"
            } else {
                "NOT met"
            }
        );
    });
    drop((pg_a, pg_b, sqlite_node));
}
