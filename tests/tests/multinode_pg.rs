//! Several `tinfoild` nodes on one PostgreSQL database (issue 15), end to
//! end: real daemons (`tinfoild serve --store-url`) on a throwaway cluster
//! (tinfoil_e2e_tests::pg_nodes).
//!
//! - Three nodes, 64 gRPC clients spread across them for 20 s mixing
//!   CreateKey, Encrypt, Decrypt, GenerateDataKey, RotateKeyOnDemand and
//!   DisableKey/EnableKey; one node is killed (SIGKILL) halfway: the
//!   others keep serving, and afterwards nothing acknowledged is lost on any
//!   node (the killed one restarted); a pg_dump of the database holds none
//!   of the plaintexts, data keys or private keys the test handled.
//! - DisableKey on one node is refused by the others within a bound (the
//!   lag is printed); the deletion purge and the automatic rotation run
//!   exactly once across three ticking nodes.
//! - PostgreSQL stopped under load: calls fail with
//!   StoreUnavailableException (gRPC UNAVAILABLE with its ErrorInfo), not
//!   a hang or a crash; started again, the same nodes serve again.
//!
//! Without PostgreSQL's binaries each test prints SKIPPED and passes,
//! unless TINFOIL_REQUIRE_POSTGRES is set (scripts/test sets it).

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tinfoil_daemon::status::reason_of;
use tinfoil_e2e_tests::daemon::{signal, unix_now, Daemon};
use tinfoil_e2e_tests::pg_nodes::PgStore;
use tinfoil_proto::v1 as pb;
use tinfoil_proto::v1::key_management_client::KeyManagementClient;
use tonic::transport::Channel;
use tonic::{Code, Status};

type Client = KeyManagementClient<Channel>;

const NODES: usize = 3;
const CLIENTS: usize = 64;
const LOAD: Duration = Duration::from_secs(20);
/// The node killed halfway through the load.
const VICTIM: usize = 2;
/// Errors a client on a living node may get from a correct cluster under
/// this load: a key another client disabled, a change that raced another
/// node's change to the same key (refused, the caller retries), a quota.
const BUSINESS: &[&str] = &[
    "DisabledException",
    "KMSInvalidStateException",
    "LimitExceededException",
];
/// Generous bound for a change on one node to reach another.
const PROPAGATION: Duration = Duration::from_secs(10);
const DAY: i64 = 86_400;
/// How long PostgreSQL stays down under load.
const OUTAGE: Duration = Duration::from_secs(12);
/// How long a call may take while PostgreSQL is down: the store fails the
/// first call after 3-3.5 s (the pool's wait) and later ones at once;
/// room for a loaded CI machine, and below the daemon's own 10 s limit
/// (DependencyTimeoutException).
const CALL_BOUND: Duration = Duration::from_secs(8);

/// The KMS exception a status names (its ErrorInfo reason), else its code.
fn reason(s: &Status) -> String {
    reason_of(s).unwrap_or_else(|| format!("{:?} (no ErrorInfo): {}", s.code(), s.message()))
}

/// Random bytes (std's per-process random hash keys; test data only).
fn random_bytes(n: usize) -> Vec<u8> {
    let state = RandomState::new();
    (0..n.div_ceil(8) as u64)
        .flat_map(|i| state.hash_one(i).to_le_bytes())
        .take(n)
        .collect()
}

/// A random index below `n` (n > 0).
fn below(n: usize) -> usize {
    (RandomState::new().hash_one(0u8) % n as u64) as usize
}

async fn create_key(client: &mut Client) -> String {
    client
        .create_key(pb::CreateKeyRequest::default())
        .await
        .expect("CreateKey")
        .into_inner()
        .key_metadata
        .expect("metadata")
        .key_id
}

async fn encrypt(client: &mut Client, key_id: &str, plaintext: &[u8]) -> Result<Vec<u8>, Status> {
    client
        .encrypt(pb::EncryptRequest {
            key_id: key_id.into(),
            plaintext: plaintext.to_vec(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().ciphertext_blob)
}

async fn decrypt(client: &mut Client, blob: &[u8]) -> Result<Vec<u8>, Status> {
    client
        .decrypt(pb::DecryptRequest {
            ciphertext_blob: blob.to_vec(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().plaintext)
}

async fn describe(client: &mut Client, key_id: &str) -> Result<pb::KeyMetadata, Status> {
    client
        .describe_key(pb::DescribeKeyRequest {
            key_id: key_id.into(),
        })
        .await
        .map(|r| r.into_inner().key_metadata.expect("metadata"))
}

/// Every rotation of a key (all pages).
async fn rotations(client: &mut Client, key_id: &str) -> Vec<pb::RotationsListEntry> {
    let mut all = Vec::new();
    let mut marker = None;
    loop {
        let page = client
            .list_key_rotations(pb::ListKeyRotationsRequest {
                key_id: key_id.into(),
                limit: Some(1000),
                marker: marker.take(),
            })
            .await
            .expect("ListKeyRotations")
            .into_inner();
        all.extend(page.rotations);
        match page.next_marker {
            Some(m) if page.truncated => marker = Some(m),
            _ => return all,
        }
    }
}

/// Polls `decrypt` of `blob` on `client` until it fails with
/// DisabledException; the time since `start` (when DisableKey was
/// acknowledged). Panics on another error or after [`PROPAGATION`].
async fn until_disabled(client: &mut Client, blob: &[u8], start: Instant, what: &str) -> Duration {
    loop {
        match decrypt(client, blob).await {
            Err(s) if reason(&s) == "DisabledException" => return start.elapsed(),
            Err(s) => panic!("{what}: Decrypt failed with {} instead", reason(&s)),
            Ok(_) => {}
        }
        assert!(
            start.elapsed() < PROPAGATION,
            "{what}: still decrypting {PROPAGATION:?} after DisableKey on another node"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Decrypts `blob` to `plaintext`, waiting out DisabledException for a
/// bounded time (a key just enabled on another node).
async fn assert_decrypts(client: &mut Client, node: usize, blob: &[u8], plaintext: &[u8]) {
    let start = Instant::now();
    loop {
        match decrypt(client, blob).await {
            Ok(p) => {
                assert!(
                    p == plaintext,
                    "node {node}: Decrypt gave another plaintext"
                );
                return;
            }
            Err(s) if reason(&s) == "DisabledException" && start.elapsed() < PROPAGATION => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(s) => panic!(
                "node {node}: an acknowledged ciphertext does not decrypt: {}",
                reason(&s)
            ),
        }
    }
}

// ---------------------------------------------------------------------------
// Three nodes under load, one killed.

/// What the clients were told succeeded (and so must hold afterwards).
#[derive(Default)]
struct Ledger {
    /// Acknowledged CreateKey (and the keys made before the load).
    keys: Mutex<Vec<String>>,
    /// Acknowledged Encrypt: (ciphertext blob, plaintext).
    ciphertexts: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
    /// Acknowledged GenerateDataKey: (ciphertext blob, plaintext data key).
    data_keys: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
    /// Per key: rotations acknowledged, and rotations whose outcome is
    /// unknown (the node died during the call).
    rotations: Mutex<HashMap<String, (u32, u32)>>,
    /// Outcome counts: "Op ok", "Op DisabledException", "Op victim: ...".
    outcomes: Mutex<BTreeMap<String, u64>>,
    /// Failures a client of a living node should never see.
    unexpected: Mutex<Vec<String>>,
    /// Acknowledged calls on the living nodes after the kill.
    served_after_kill: AtomicU64,
    /// Set just before the victim is killed.
    killed: AtomicBool,
}

impl Ledger {
    fn random_key(&self) -> String {
        let keys = self.keys.lock().unwrap();
        keys[below(keys.len())].clone()
    }

    fn count(&self, what: String) {
        *self.outcomes.lock().unwrap().entry(what).or_default() += 1;
    }

    fn ok(&self, op: &str, node: usize) {
        if node != VICTIM && self.killed.load(Ordering::SeqCst) {
            self.served_after_kill.fetch_add(1, Ordering::Relaxed);
        }
        self.count(format!("{op} ok"));
    }

    /// Records a failed call; true when its outcome is unknown (the victim
    /// died under it), so it may or may not have committed.
    fn failed(&self, op: &str, node: usize, status: &Status) -> bool {
        let why = reason(status);
        if node == VICTIM && self.killed.load(Ordering::SeqCst) {
            self.count(format!("{op} on the killed node: {:?}", status.code()));
            return true;
        }
        if BUSINESS.contains(&why.as_str()) {
            self.count(format!("{op} {why}"));
        } else {
            self.unexpected
                .lock()
                .unwrap()
                .push(format!("{op} on node {node}: {why}: {}", status.message()));
        }
        false
    }
}

/// One client: mixed calls on `node` until `until`.
async fn load_client(node: usize, mut client: Client, ledger: Arc<Ledger>, until: Instant) {
    while Instant::now() < until {
        let key_id = ledger.random_key();
        let roll = below(100);
        let failed = match roll {
            0..=9 => {
                let plaintext = random_bytes(48);
                match encrypt(&mut client, &key_id, &plaintext).await {
                    Ok(blob) => {
                        ledger.ok("Encrypt", node);
                        ledger.ciphertexts.lock().unwrap().push((blob, plaintext));
                        None
                    }
                    Err(s) => Some(("Encrypt", s)),
                }
            }
            10..=66 => {
                let made = {
                    let all = ledger.ciphertexts.lock().unwrap();
                    (!all.is_empty()).then(|| all[below(all.len())].clone())
                };
                match made {
                    None => None,
                    Some((blob, plaintext)) => match decrypt(&mut client, &blob).await {
                        Ok(p) => {
                            if p != plaintext {
                                ledger
                                    .unexpected
                                    .lock()
                                    .unwrap()
                                    .push(format!("Decrypt on node {node}: wrong plaintext"));
                            }
                            ledger.ok("Decrypt", node);
                            None
                        }
                        Err(s) => Some(("Decrypt", s)),
                    },
                }
            }
            67..=71 => {
                let answer = client
                    .generate_data_key(pb::GenerateDataKeyRequest {
                        key_id: key_id.clone(),
                        key_spec: Some("AES_256".into()),
                        ..Default::default()
                    })
                    .await;
                match answer {
                    Ok(r) => {
                        let r = r.into_inner();
                        assert_eq!(r.plaintext.len(), 32);
                        ledger.ok("GenerateDataKey", node);
                        ledger
                            .data_keys
                            .lock()
                            .unwrap()
                            .push((r.ciphertext_blob, r.plaintext));
                        None
                    }
                    Err(s) => Some(("GenerateDataKey", s)),
                }
            }
            72..=73 => match client.create_key(pb::CreateKeyRequest::default()).await {
                Ok(r) => {
                    ledger.ok("CreateKey", node);
                    let id = r.into_inner().key_metadata.expect("metadata").key_id;
                    ledger.keys.lock().unwrap().push(id);
                    None
                }
                Err(s) => Some(("CreateKey", s)),
            },
            74..=83 => {
                let answer = client
                    .rotate_key_on_demand(pb::RotateKeyOnDemandRequest {
                        key_id: key_id.clone(),
                    })
                    .await;
                let rotations = |acked: u32, unknown: u32| {
                    let mut all = ledger.rotations.lock().unwrap();
                    let entry = all.entry(key_id.clone()).or_default();
                    entry.0 += acked;
                    entry.1 += unknown;
                };
                match answer {
                    Ok(_) => {
                        rotations(1, 0);
                        ledger.ok("RotateKeyOnDemand", node);
                        None
                    }
                    Err(s) => {
                        if ledger.failed("RotateKeyOnDemand", node, &s) {
                            rotations(0, 1);
                        }
                        Some(("", s))
                    }
                }
            }
            _ => {
                let answer = client
                    .disable_key(pb::DisableKeyRequest {
                        key_id: key_id.clone(),
                    })
                    .await;
                match answer {
                    Ok(_) => {
                        ledger.ok("DisableKey", node);
                        match client
                            .enable_key(pb::EnableKeyRequest {
                                key_id: key_id.clone(),
                            })
                            .await
                        {
                            Ok(_) => {
                                ledger.ok("EnableKey", node);
                                None
                            }
                            Err(s) => Some(("EnableKey", s)),
                        }
                    }
                    Err(s) => Some(("DisableKey", s)),
                }
            }
        };
        if let Some((op, status)) = failed {
            if !op.is_empty() {
                ledger.failed(op, node, &status);
            }
            if node == VICTIM && ledger.killed.load(Ordering::SeqCst) {
                // Nothing serves here any more: do not spin.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn connect(endpoint: &str) -> Client {
    KeyManagementClient::new(
        tinfoil_daemon::client::connect(endpoint, &Default::default())
            .await
            .expect("connect"),
    )
}

/// An acknowledged key exists on every node (`clients`), enabled, with the
/// same current version; its rotations are the acknowledged ones plus at
/// most the calls the kill cut off; the database holds its versions
/// 1..=current once each (`versions`: count, min, max). True if it was
/// rotated.
async fn check_key(
    clients: &mut [Client],
    key: &str,
    acked: &HashMap<String, (u32, u32)>,
    versions: &HashMap<String, (i64, i64, i64)>,
) -> bool {
    let mut current = None;
    for (node, client) in clients.iter_mut().enumerate() {
        let meta = describe(client, key)
            .await
            .unwrap_or_else(|s| panic!("node {node}: acknowledged key {key}: {}", reason(&s)));
        assert_eq!(meta.key_state, "Enabled", "node {node}: {key}");
        assert!(
            current.is_none_or(|c| c == meta.current_key_version),
            "nodes disagree on {key}'s current version"
        );
        current = Some(meta.current_key_version);
    }
    let current = i64::from(current.expect("three nodes"));
    let listed = rotations(&mut clients[1], key).await;
    assert!(listed.iter().all(|r| r.rotation_type == "ON_DEMAND"));
    let (ok, unknown) = acked.get(key).copied().unwrap_or_default();
    let n = listed.len() as u32;
    assert!(
        ok <= n && n <= ok + unknown,
        "{key}: {n} rotations listed, {ok} acknowledged, {unknown} cut off by the kill"
    );
    assert_eq!(current, 1 + i64::from(n), "{key}: current version");
    assert_eq!(
        versions.get(key).copied(),
        Some((current, 1, current)),
        "{key}: versions in the database are 1..=current, once each"
    );
    n > 0
}

/// 64 clients on three nodes for [`LOAD`], node [`VICTIM`] killed with
/// SIGKILL halfway: clients of the living nodes see only business errors
/// ([`BUSINESS`]) and keep being served; afterwards (the victim restarted)
/// every acknowledged ciphertext and data key decrypts on every node,
/// every acknowledged key exists everywhere with one current version and
/// its acknowledged rotations, and a pg_dump holds none of the secrets.
///
/// Seen intermittently before 806834f (2 of 7 runs; not in 4 runs since;
/// reported to the lead, hsm-core): a call on a living node failed with
/// StoreUnavailableException; once a DisableKey with "storage conflict (retryable): SQLSTATE 40001:
/// could not serialize access due to read/write dependencies among
/// transactions" after the engine's retries (writers are meant to
/// serialize on `store_write_lock`), once a GenerateDataKey (message not
/// captured).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_under_load_lose_nothing_when_one_is_killed() {
    let started = Instant::now();
    let Some(store) = tokio::task::block_in_place(PgStore::init) else {
        return;
    };
    let mut nodes: Vec<Option<Daemon>> = store.start_nodes(NODES).into_iter().map(Some).collect();
    let endpoints: Vec<String> = nodes
        .iter()
        .map(|n| n.as_ref().unwrap().endpoint.clone())
        .collect();
    let ledger = Arc::new(Ledger::default());
    let mut setup = nodes[0].as_ref().unwrap().client().await;
    for _ in 0..16 {
        let key = create_key(&mut setup).await;
        ledger.keys.lock().unwrap().push(key);
    }
    println!(
        "set-up (cluster, init, 3 nodes, 16 keys): {:?}",
        started.elapsed()
    );

    let load_start = Instant::now();
    let until = load_start + LOAD;
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let node = c % NODES;
        let client = nodes[node].as_ref().unwrap().client().await;
        tasks.push(tokio::spawn(load_client(
            node,
            client,
            Arc::clone(&ledger),
            until,
        )));
    }
    tokio::time::sleep(LOAD / 2).await;
    let victim = nodes[VICTIM].take().unwrap();
    ledger.killed.store(true, Ordering::SeqCst);
    signal(victim.pid(), "KILL");
    let status = victim.stop_after_signal();
    println!(
        "node {VICTIM} killed at {:?}: {status}",
        load_start.elapsed()
    );
    for t in tasks {
        t.await.expect("client task");
    }
    let load_time = load_start.elapsed();
    let total: u64 = ledger.outcomes.lock().unwrap().values().sum();
    println!(
        "load: {CLIENTS} clients, {load_time:?}, {total} calls ({:.0}/s)",
        total as f64 / load_time.as_secs_f64()
    );
    for (what, n) in ledger.outcomes.lock().unwrap().iter() {
        println!("  {what}: {n}");
    }
    let unexpected = ledger.unexpected.lock().unwrap().clone();
    assert!(
        unexpected.is_empty(),
        "clients of living nodes failed ({}), e.g. {:?}",
        unexpected.len(),
        &unexpected[..unexpected.len().min(10)]
    );
    let served = ledger.served_after_kill.load(Ordering::Relaxed);
    assert!(served > 0, "the living nodes served nothing after the kill");
    println!("living nodes acknowledged {served} calls after the kill");
    for (n, node) in nodes.iter_mut().enumerate() {
        if let Some(node) = node {
            assert!(node.is_running(), "node {n} died:\n{}", node.log());
        }
    }

    // The killed node comes back on the same database.
    let verify_start = Instant::now();
    nodes[VICTIM] = Some(store.start_node(VICTIM, &[]));
    let mut clients = Vec::new();
    for node in nodes.iter() {
        clients.push(node.as_ref().unwrap().client().await);
    }
    let keys = ledger.keys.lock().unwrap().clone();
    for key in &keys {
        let state = describe(&mut clients[0], key)
            .await
            .unwrap_or_else(|s| panic!("DescribeKey {key}: {}", reason(&s)))
            .key_state;
        if state != "Enabled" {
            clients[0]
                .enable_key(pb::EnableKeyRequest {
                    key_id: key.clone(),
                })
                .await
                .unwrap_or_else(|s| panic!("EnableKey {key}: {}", reason(&s)));
        }
    }

    // Every acknowledged ciphertext and data key decrypts on every node.
    let made: Arc<Vec<(Vec<u8>, Vec<u8>)>> = Arc::new(
        ledger
            .ciphertexts
            .lock()
            .unwrap()
            .iter()
            .chain(ledger.data_keys.lock().unwrap().iter())
            .cloned()
            .collect(),
    );
    let mut checks = Vec::new();
    for (node, endpoint) in endpoints.iter().enumerate() {
        for part in 0..8 {
            let made = Arc::clone(&made);
            let endpoint = endpoint.clone();
            checks.push(tokio::spawn(async move {
                let mut client = connect(&endpoint).await;
                for (blob, plaintext) in made.iter().skip(part).step_by(8) {
                    assert_decrypts(&mut client, node, blob, plaintext).await;
                }
            }));
        }
    }
    for c in checks {
        c.await.expect("decrypt check");
    }
    println!(
        "{} ciphertexts and data keys decrypt on all {NODES} nodes ({:?})",
        made.len(),
        verify_start.elapsed()
    );

    // Every acknowledged key exists everywhere with one current version;
    // rotations as acknowledged (plus at most the calls the kill cut off).
    let versions: HashMap<String, (i64, i64, i64)> = tokio::task::block_in_place(|| {
        store
            .db()
            .query(
                "SELECT key_id, count(*), min(version), max(version) FROM key_versions \
                 GROUP BY key_id",
                &[],
            )
            .expect("read key_versions")
            .into_iter()
            .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
            .collect()
    });
    let acked = Arc::new(ledger.rotations.lock().unwrap().clone());
    let versions = Arc::new(versions);
    let keys = Arc::new(keys);
    let mut checks = Vec::new();
    for part in 0..8 {
        let (keys, acked, versions) =
            (Arc::clone(&keys), Arc::clone(&acked), Arc::clone(&versions));
        let endpoints = endpoints.clone();
        checks.push(tokio::spawn(async move {
            let mut clients = Vec::new();
            for endpoint in &endpoints {
                clients.push(connect(endpoint).await);
            }
            let mut rotated = 0;
            for key in keys.iter().skip(part).step_by(8) {
                rotated += usize::from(check_key(&mut clients, key, &acked, &versions).await);
            }
            rotated
        }));
    }
    let mut rotated_keys = 0;
    for c in checks {
        rotated_keys += c.await.expect("key check");
    }
    println!(
        "{} keys exist on all nodes, each with one current version ({} rotated); verified in {:?}",
        keys.len(),
        rotated_keys,
        verify_start.elapsed()
    );

    // Private keys of data key pairs, for the dump scan below.
    let mut private_keys = Vec::new();
    for (node, client) in clients.iter_mut().enumerate() {
        let pair = client
            .generate_data_key_pair(pb::GenerateDataKeyPairRequest {
                key_id: keys[node].clone(),
                key_pair_spec: "ECC_NIST_P256".into(),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("GenerateDataKeyPair: {}", reason(&s)))
            .into_inner();
        private_keys.push(pair.private_key_plaintext);
    }

    // No plaintext the test handled is in a dump of the database: raw,
    // hex (bytea's text form) or base64 (JSON).
    let dump = tokio::task::block_in_place(|| store.dump());
    let mut secrets: Vec<(&str, Vec<u8>)> = Vec::new();
    for (_, plaintext) in ledger.ciphertexts.lock().unwrap().iter() {
        secrets.push(("a plaintext", plaintext.clone()));
    }
    for (_, data_key) in ledger.data_keys.lock().unwrap().iter() {
        secrets.push(("a data key", data_key.clone()));
    }
    for private_key in private_keys {
        secrets.push(("a private key", private_key));
    }
    let scanning = Instant::now();
    let found = scan(&dump, &secrets);
    println!("scanned in {:?}", scanning.elapsed());
    assert!(found.is_empty(), "the pg_dump holds {found:?}");
    let probe = scan(&dump, &[("a key id", keys[0].as_bytes().to_vec())]);
    assert!(
        !probe.is_empty(),
        "the scan finds what the dump does hold (a key id)"
    );
    println!(
        "pg_dump ({} bytes) holds none of {} secrets; test wall time {:?}",
        dump.len(),
        secrets.len(),
        started.elapsed()
    );
}

/// The names of the `secrets` found in `dump` (raw, lowercase hex,
/// base64), in one pass over the dump: needles are indexed by their first
/// 8 bytes (every secret is longer), and a bitmap of their first 4 bytes
/// skips most positions cheaply (this runs unoptimised).
fn scan(dump: &[u8], secrets: &[(&str, Vec<u8>)]) -> Vec<String> {
    use base64::Engine as _;
    const BITS: u32 = 24;
    let slot = |four: &[u8]| -> usize {
        let v = u32::from_le_bytes([four[0], four[1], four[2], four[3]]);
        (v.wrapping_mul(0x9e37_79b1) >> (32 - BITS)) as usize
    };
    let mut bitmap = vec![0u64; 1 << (BITS - 6)];
    let mut needles: HashMap<&[u8], Vec<(String, Vec<u8>)>> = HashMap::new();
    let mut all = Vec::new();
    for (what, secret) in secrets {
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
        for (form, needle) in [
            ("raw", secret.clone()),
            ("hex", hex.into_bytes()),
            ("base64", b64.into_bytes()),
        ] {
            assert!(needle.len() >= 8, "secrets are at least 8 bytes");
            all.push((format!("{what} ({form})"), needle));
        }
    }
    for (name, needle) in &all {
        let i = slot(&needle[..4]);
        bitmap[i >> 6] |= 1 << (i & 63);
        needles
            .entry(&needle[..8])
            .or_default()
            .push((name.clone(), needle.clone()));
    }
    let mut found = Vec::new();
    let mut at = 0;
    while at + 8 <= dump.len() {
        let i = slot(&dump[at..at + 4]);
        if bitmap[i >> 6] & (1 << (i & 63)) != 0 {
            if let Some(candidates) = needles.get(&dump[at..at + 8]) {
                for (name, needle) in candidates {
                    if dump[at..].starts_with(needle) {
                        found.push(name.clone());
                    }
                }
            }
        }
        at += 1;
    }
    found
}

// ---------------------------------------------------------------------------
// Propagation and background work.

/// DisableKey on node 0 is refused at once by node 0 and within
/// [`PROPAGATION`] by the others (lags printed); EnableKey likewise; a due
/// deletion and a due automatic rotation happen exactly once while all
/// three nodes tick every second (one audit record each).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_reaches_every_node_and_ticks_run_once() {
    let started = Instant::now();
    let Some(store) = tokio::task::block_in_place(PgStore::init) else {
        return;
    };
    let nodes = store.start_nodes(NODES);
    let mut clients = Vec::new();
    for node in &nodes {
        clients.push(node.client().await);
    }
    let key = create_key(&mut clients[0]).await;
    let blob = encrypt(&mut clients[0], &key, b"propagation")
        .await
        .expect("Encrypt");
    // Every node has the key in its cache.
    for client in clients.iter_mut() {
        assert_eq!(
            decrypt(client, &blob).await.expect("Decrypt"),
            b"propagation"
        );
    }

    clients[0]
        .disable_key(pb::DisableKeyRequest {
            key_id: key.clone(),
        })
        .await
        .expect("DisableKey");
    let acknowledged = Instant::now();
    // Node A refuses at once.
    let refused = decrypt(&mut clients[0], &blob)
        .await
        .expect_err("disabled on A");
    assert_eq!(reason(&refused), "DisabledException");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    for (n, client) in clients.iter_mut().enumerate().skip(1) {
        let lag = until_disabled(client, &blob, acknowledged, &format!("node {n}")).await;
        println!("DisableKey on node 0 refused by node {n} after {lag:?}");
    }
    // And back: EnableKey on B serves on A again.
    clients[1]
        .enable_key(pb::EnableKeyRequest {
            key_id: key.clone(),
        })
        .await
        .expect("EnableKey");
    let enabled = Instant::now();
    assert_decrypts(&mut clients[0], 0, &blob, b"propagation").await;
    println!(
        "EnableKey on node 1 served by node 0 after {:?}",
        enabled.elapsed()
    );

    // Background work: a deletion and an automatic rotation fall due while
    // all three nodes tick every second: each happens exactly once.
    let doomed = create_key(&mut clients[0]).await;
    let rotating = create_key(&mut clients[0]).await;
    for client in clients.iter_mut() {
        describe(client, &doomed).await.expect("DescribeKey");
        describe(client, &rotating).await.expect("DescribeKey");
    }
    clients[0]
        .schedule_key_deletion(pb::ScheduleKeyDeletionRequest {
            key_id: doomed.clone(),
            pending_window_in_days: Some(7),
        })
        .await
        .expect("ScheduleKeyDeletion");
    clients[1]
        .enable_key_rotation(pb::EnableKeyRotationRequest {
            key_id: rotating.clone(),
            rotation_period_in_days: Some(90),
        })
        .await
        .expect("EnableKeyRotation");
    store.set_clock(unix_now() + 91 * DAY);
    let due = Instant::now();
    for (n, client) in clients.iter_mut().enumerate() {
        loop {
            match describe(client, &doomed).await {
                Err(s) if reason(&s) == "NotFoundException" => break,
                Ok(meta) => assert_eq!(meta.key_state, "PendingDeletion", "node {n}"),
                Err(s) => panic!("node {n}: DescribeKey: {}", reason(&s)),
            }
            assert!(
                due.elapsed() < Duration::from_secs(30),
                "node {n} still has the key 30 s after it fell due"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    println!("purged and gone on every node after {:?}", due.elapsed());
    for (n, client) in clients.iter_mut().enumerate() {
        loop {
            let meta = describe(client, &rotating).await.expect("DescribeKey");
            if meta.current_key_version == 2 {
                break;
            }
            assert_eq!(meta.current_key_version, 1, "node {n}");
            assert!(
                due.elapsed() < Duration::from_secs(30),
                "node {n}: no rotation"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Let every node tick a few more times: still once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for client in clients.iter_mut() {
        assert_eq!(
            describe(client, &rotating)
                .await
                .unwrap()
                .current_key_version,
            2
        );
    }
    let (deletes, rotates, rows, versions) = tokio::task::block_in_place(|| {
        let mut db = store.db();
        let mut count = |sql: &str, a: &str, b: &str| -> i64 {
            let args: Vec<&(dyn postgres::types::ToSql + Sync)> =
                if b.is_empty() { vec![&a] } else { vec![&a, &b] };
            db.query_one(sql, &args).expect("count rows").get(0)
        };
        let audit = "SELECT count(*) FROM audit_records WHERE event_name = $1 AND resource_id = $2";
        (
            count(audit, "DeleteKey", &doomed),
            count(audit, "RotateKey", &rotating),
            count("SELECT count(*) FROM keys WHERE key_id = $1", &doomed, ""),
            count(
                "SELECT count(*) FROM key_versions WHERE key_id = $1",
                &rotating,
                "",
            ),
        )
    });
    assert_eq!(deletes, 1, "one purge record");
    assert_eq!(rotates, 1, "one rotation record");
    assert_eq!(rows, 0, "the purged key's row");
    assert_eq!(versions, 2);
    for (n, node) in nodes.into_iter().enumerate() {
        let mut node = node;
        assert!(node.is_running(), "node {n} died:\n{}", node.log());
    }
    println!("test wall time {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------
// The database stops under load.

/// One call's outcome under the outage test.
struct Call {
    node: usize,
    create: bool,
    started: Instant,
    took: Duration,
    result: Result<(), Status>,
}

/// PostgreSQL stopped for [`OUTAGE`] under load (8 clients on 2 nodes,
/// Encrypt and CreateKey): every call that overlaps the outage either
/// fails with StoreUnavailableException (UNAVAILABLE) or succeeds after
/// the restart, within [`CALL_BOUND`]; no call succeeds with the database
/// down; started again, both nodes (same processes) serve again within
/// [`CALL_BOUND`], and every call they are given from then on succeeds
/// (none is failed by a connection the restart left dead).
///
/// (Session 7's CI run failed here: a node took 1.1 s to reconnect (r2d2's
/// back-off up to 1.5 s) and the test wanted every call started after
/// pg_ctl returned to succeed; the back-off is now at most 0.5 s, and
/// stale pooled connections are checked before use.)
///
/// (Before fd96170 calls queued 6-10 s behind the pool's 3 s wait, and
/// some ended in DependencyTimeoutException: this test found it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_fails_fast_and_nodes_recover_without_restart() {
    let started = Instant::now();
    let Some(store) = tokio::task::block_in_place(PgStore::init) else {
        return;
    };
    let mut nodes = store.start_nodes(2);
    let pids: Vec<u32> = nodes.iter().map(Daemon::pid).collect();
    let mut setup = nodes[0].client().await;
    let key = create_key(&mut setup).await;

    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(Mutex::new(Vec::<Call>::new()));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let node = w % 2;
        let mut client = nodes[node].client().await;
        let (stop, calls, key) = (Arc::clone(&stop), Arc::clone(&calls), key.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let t = Instant::now();
                let call = async {
                    if i.is_multiple_of(10) {
                        client
                            .create_key(pb::CreateKeyRequest::default())
                            .await
                            .map(drop)
                    } else {
                        encrypt(&mut client, &key, b"under load").await.map(drop)
                    }
                };
                let result = match tokio::time::timeout(Duration::from_secs(60), call).await {
                    Ok(r) => r,
                    Err(_) => panic!("a call hung for 60 s"),
                };
                let failed = result.is_err();
                calls.lock().unwrap().push(Call {
                    node,
                    create: i.is_multiple_of(10),
                    started: t,
                    took: t.elapsed(),
                    result,
                });
                if failed {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stopping = Instant::now();
    tokio::task::block_in_place(|| store.cluster.stop_server());
    let stopped = Instant::now();
    println!(
        "PostgreSQL stopped under load (pg_ctl took {:?})",
        stopped - stopping
    );
    tokio::time::sleep(OUTAGE).await;
    // The server accepts connections before pg_ctl, polling, sees it:
    // a call may succeed from `starting` on.
    let starting = Instant::now();
    tokio::task::block_in_place(|| store.cluster.start_server());
    let restarted = Instant::now();
    // Until every node has served an Encrypt and a CreateKey again.
    let mut recovered = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        let mut client = node.client().await;
        loop {
            let e = encrypt(&mut client, &key, b"after").await;
            let c = client.create_key(pb::CreateKeyRequest::default()).await;
            if e.is_ok() && c.is_ok() {
                break;
            }
            assert!(
                restarted.elapsed() < Duration::from_secs(30),
                "node {n} does not serve 30 s after PostgreSQL came back: {:?} {:?}",
                e.err().map(|s| reason(&s)),
                c.err().map(|s| reason(&s))
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        recovered.push(restarted.elapsed());
    }
    println!("nodes serve again {recovered:?} after PostgreSQL started");
    for (n, back) in recovered.iter().enumerate() {
        assert!(
            *back < CALL_BOUND,
            "node {n} served again only {back:?} after PostgreSQL started"
        );
    }
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("load task");
    }

    let calls = calls.lock().unwrap();
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_refusal = [None::<Duration>; 2];
    let mut longest = Duration::ZERO;
    let mut wrong = Vec::new();
    for call in calls.iter() {
        let ended = call.started + call.took;
        // A node serves again once its pool has reconnected (r2d2 retries
        // at most every RECONNECT_PAUSE): a call it was given before that
        // belongs to the outage.
        let serving_again = restarted + recovered[call.node];
        if ended < stopping || call.started >= serving_again {
            assert!(
                call.result.is_ok(),
                "node {}: a call failed with PostgreSQL up ({}): {:?}",
                call.node,
                if ended < stopping {
                    "it ended before the stop"
                } else {
                    "it started after the node served again"
                },
                call.result
                    .as_ref()
                    .err()
                    .map(|s| (s.code(), reason(s), s.message().to_string()))
            );
            continue;
        }
        // The call overlapped the outage.
        let op = if call.create { "CreateKey" } else { "Encrypt" };
        longest = longest.max(call.took);
        let what = match &call.result {
            Ok(()) if call.started >= stopped && ended < starting => {
                wrong.push(format!(
                    "node {}: {op} succeeded with PostgreSQL down",
                    call.node
                ));
                "ok while down".to_string()
            }
            Ok(()) => "ok".to_string(),
            Err(s) => {
                let why = reason(s);
                if (s.code(), why.as_str()) == (Code::Unavailable, "StoreUnavailableException") {
                    let at = ended.saturating_duration_since(stopping);
                    let first = &mut first_refusal[call.node];
                    *first = Some(first.map_or(at, |f| f.min(at)));
                } else {
                    wrong.push(format!(
                        "node {}: {op} failed with {:?} {why}",
                        call.node,
                        s.code()
                    ));
                }
                why
            }
        };
        if call.took >= CALL_BOUND {
            wrong.push(format!(
                "node {}: {op} took {:?} ({what})",
                call.node, call.took
            ));
        }
        *outcomes.entry(format!("{op} {what}")).or_default() += 1;
    }
    println!(
        "{} calls; around the {OUTAGE:?} outage: {outcomes:?}; first StoreUnavailableException \
         per node after the stop began: {first_refusal:?}; longest call {longest:?}",
        calls.len()
    );
    for (n, first) in first_refusal.iter().enumerate() {
        assert!(
            first.is_some_and(|f| f < CALL_BOUND),
            "node {n}: first StoreUnavailableException {first:?} after the stop began"
        );
    }
    assert!(
        wrong.is_empty(),
        "with PostgreSQL down every call must fail with StoreUnavailableException within \
         {CALL_BOUND:?}; {} did not, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(8)]
    );
    for (n, node) in nodes.iter_mut().enumerate() {
        assert!(node.is_running(), "node {n} died:\n{}", node.log());
        assert_eq!(node.pid(), pids[n]);
    }
    println!("test wall time {:?}", started.elapsed());
}
