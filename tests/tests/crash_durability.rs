//! Crash durability (issue 13): tinfoild under concurrent writers
//! (CreateKey, TagResource, RotateKeyOnDemand, CreateAlias, DisableKey /
//! EnableKey, Encrypt) is killed with SIGKILL at a random moment, restarted,
//! and checked, round after round: the store opens every time, every
//! acknowledged write is there, every acknowledged ciphertext decrypts to
//! its plaintext, and the audit chain (exported, verified offline) holds at
//! least one record per acknowledged write. A negative control feeds the
//! checker writes that never happened and requires it to name each one.
//!
//! `TINFOIL_CRASH_ROUNDS` (default 5) sets the rounds, `TINFOIL_CRASH_SEED`
//! replays a run (the seed is printed).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tinfoil_e2e_tests::audit::{export_and_verify, records_in, verify_offline};
use tinfoil_e2e_tests::daemon::{signal, Daemon, Store};
use tinfoil_proto::v1 as pb;
use tinfoil_proto::v1::key_management_client::KeyManagementClient;
use tonic::transport::Channel;

/// Concurrent writers per round.
const WRITERS: usize = 4;
/// Tags a writer puts on one key before it makes the next key.
const TAGS_PER_KEY: usize = 6;

/// A tiny xorshift generator: the kill moments and operation mix only need
/// to vary, and the seed is printed so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// An acknowledged Encrypt: key id, blob, plaintext, context.
type Acknowledged = (String, Vec<u8>, Vec<u8>, BTreeMap<String, String>);

/// What the writers were told succeeded, and so must have survived.
#[derive(Clone, Default, Debug)]
struct Ledger {
    /// Keys by id.
    keys: BTreeMap<String, KeyExpect>,
    /// Alias name -> key id.
    aliases: BTreeMap<String, String>,
    /// (key id, blob, plaintext, context).
    ciphertexts: Vec<Acknowledged>,
    /// Acknowledged calls per operation name (for the audit log).
    acknowledged: BTreeMap<&'static str, usize>,
}

#[derive(Clone, Default, Debug)]
struct KeyExpect {
    /// `None` when an Enable/Disable was in flight at the kill.
    enabled: Option<bool>,
    tags: BTreeMap<String, String>,
    rotations: usize,
}

impl Ledger {
    fn ack(&mut self, op: &'static str) {
        *self.acknowledged.entry(op).or_default() += 1;
    }
}

/// Checks every acknowledged write against the running daemon; returns one
/// line per problem. May enable disabled keys to decrypt (and records it).
async fn check(client: &mut KeyManagementClient<Channel>, ledger: &mut Ledger) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, want) in ledger.keys.iter_mut() {
        let meta = match client
            .describe_key(pb::DescribeKeyRequest { key_id: id.clone() })
            .await
        {
            Ok(r) => r.into_inner().key_metadata.expect("metadata"),
            Err(e) => {
                problems.push(format!("key {id}: acknowledged CreateKey, but {e}"));
                continue;
            }
        };
        if let Some(enabled) = want.enabled {
            if meta.enabled != enabled {
                problems.push(format!(
                    "key {id}: acknowledged enabled={enabled}, store says {}",
                    meta.enabled
                ));
            }
        }
        match client
            .list_resource_tags(pb::ListResourceTagsRequest {
                key_id: id.clone(),
                limit: Some(100),
                marker: None,
            })
            .await
        {
            Ok(r) => {
                let have: BTreeMap<String, String> = r
                    .into_inner()
                    .tags
                    .into_iter()
                    .map(|t| (t.tag_key, t.tag_value))
                    .collect();
                for (k, v) in &want.tags {
                    if have.get(k) != Some(v) {
                        problems.push(format!(
                            "key {id}: acknowledged tag {k}={v}, store has {:?}",
                            have.get(k)
                        ));
                    }
                }
            }
            Err(e) => problems.push(format!("key {id}: ListResourceTags failed: {e}")),
        }
        match client
            .list_key_rotations(pb::ListKeyRotationsRequest {
                key_id: id.clone(),
                limit: Some(1000),
                marker: None,
            })
            .await
        {
            Ok(r) => {
                let n = r.into_inner().rotations.len();
                if n < want.rotations {
                    problems.push(format!(
                        "key {id}: {} acknowledged rotations, store lists {n}",
                        want.rotations
                    ));
                }
            }
            Err(e) => problems.push(format!("key {id}: ListKeyRotations failed: {e}")),
        }
    }
    for (alias, target) in &ledger.aliases {
        match client
            .describe_key(pb::DescribeKeyRequest {
                key_id: alias.clone(),
            })
            .await
        {
            Ok(r) => {
                let got = r.into_inner().key_metadata.expect("metadata").key_id;
                if &got != target {
                    problems.push(format!(
                        "{alias}: acknowledged for {target}, points at {got}"
                    ));
                }
            }
            Err(e) => problems.push(format!("{alias}: acknowledged CreateAlias, but {e}")),
        }
    }
    for (key_id, blob, plaintext, context) in &ledger.ciphertexts {
        let want = ledger.keys.get_mut(key_id);
        if let Some(want) = want {
            if want.enabled != Some(true)
                && client
                    .enable_key(pb::EnableKeyRequest {
                        key_id: key_id.clone(),
                    })
                    .await
                    .is_ok()
            {
                want.enabled = Some(true);
            }
        }
        match client
            .decrypt(pb::DecryptRequest {
                ciphertext_blob: blob.clone(),
                encryption_context: context.clone(),
                key_id: None,
                encryption_algorithm: None,
            })
            .await
        {
            Ok(r) if r.get_ref().plaintext == *plaintext => {}
            Ok(_) => problems.push(format!("a ciphertext of {key_id} decrypts to other bytes")),
            Err(e) => problems.push(format!(
                "an acknowledged ciphertext of {key_id} does not decrypt: {e}"
            )),
        }
    }
    problems
}

/// One writer: works on keys it made itself (so its own order of calls
/// decides their final state) until the daemon dies under it.
async fn writer(
    channel: Channel,
    round: usize,
    worker: usize,
    seed: u64,
    ledger: Arc<Mutex<Ledger>>,
) {
    let mut client = KeyManagementClient::new(channel);
    let mut rng = Rng(seed | 1);
    let mut key: Option<(String, usize, usize, bool)> = None; // id, tags, rotations, enabled
    for i in 0.. {
        let tag = format!("r{round}-w{worker}-{i}");
        let Some((id, tags, rotations, enabled)) = key.clone().filter(|k| k.1 < TAGS_PER_KEY)
        else {
            let request = pb::CreateKeyRequest {
                description: tag.clone(),
                tags: vec![pb::Tag {
                    tag_key: "writer".into(),
                    tag_value: tag.clone(),
                }],
                ..Default::default()
            };
            match client.create_key(request).await {
                Ok(r) => {
                    let id = r.into_inner().key_metadata.expect("metadata").key_id;
                    let mut l = ledger.lock().unwrap();
                    l.ack("CreateKey");
                    l.keys.insert(
                        id.clone(),
                        KeyExpect {
                            enabled: Some(true),
                            tags: [("writer".to_string(), tag)].into(),
                            rotations: 0,
                        },
                    );
                    key = Some((id, 0, 0, true));
                    continue;
                }
                Err(_) => return,
            }
        };
        match rng.below(6) {
            0 | 1 => {
                let (k, v) = (format!("t{i}"), format!("v-{tag}"));
                let request = pb::TagResourceRequest {
                    key_id: id.clone(),
                    tags: vec![pb::Tag {
                        tag_key: k.clone(),
                        tag_value: v.clone(),
                    }],
                };
                if client.tag_resource(request).await.is_err() {
                    return;
                }
                let mut l = ledger.lock().unwrap();
                l.ack("TagResource");
                l.keys.get_mut(&id).expect("own key").tags.insert(k, v);
                key = Some((id, tags + 1, rotations, enabled));
            }
            2 if rotations < 3 && enabled => {
                let request = pb::RotateKeyOnDemandRequest { key_id: id.clone() };
                if client.rotate_key_on_demand(request).await.is_err() {
                    return;
                }
                let mut l = ledger.lock().unwrap();
                l.ack("RotateKeyOnDemand");
                l.keys.get_mut(&id).expect("own key").rotations += 1;
                key = Some((id, tags, rotations + 1, enabled));
            }
            3 => {
                let alias = format!("alias/crash-{tag}");
                let request = pb::CreateAliasRequest {
                    alias_name: alias.clone(),
                    target_key_id: id.clone(),
                };
                if client.create_alias(request).await.is_err() {
                    return;
                }
                let mut l = ledger.lock().unwrap();
                l.ack("CreateAlias");
                l.aliases.insert(alias, id);
            }
            4 => {
                // Toggle. Until the answer, the state is unknown.
                ledger
                    .lock()
                    .unwrap()
                    .keys
                    .get_mut(&id)
                    .expect("own key")
                    .enabled = None;
                let result = if enabled {
                    client
                        .disable_key(pb::DisableKeyRequest { key_id: id.clone() })
                        .await
                        .map(|_| "DisableKey")
                } else {
                    client
                        .enable_key(pb::EnableKeyRequest { key_id: id.clone() })
                        .await
                        .map(|_| "EnableKey")
                };
                let Ok(op) = result else { return };
                let mut l = ledger.lock().unwrap();
                l.ack(op);
                l.keys.get_mut(&id).expect("own key").enabled = Some(!enabled);
                key = Some((id, tags, rotations, !enabled));
            }
            _ if enabled => {
                let plaintext = format!("plaintext {tag}").into_bytes();
                let context: BTreeMap<String, String> = [("call".to_string(), tag.clone())].into();
                let request = pb::EncryptRequest {
                    key_id: id.clone(),
                    plaintext: plaintext.clone(),
                    encryption_context: context.clone(),
                    encryption_algorithm: None,
                };
                let Ok(r) = client.encrypt(request).await else {
                    return;
                };
                let mut l = ledger.lock().unwrap();
                l.ack("Encrypt");
                l.ciphertexts.push((
                    id.clone(),
                    r.into_inner().ciphertext_blob,
                    plaintext,
                    context,
                ));
            }
            _ => {}
        }
    }
}

fn seed() -> u64 {
    match std::env::var("TINFOIL_CRASH_SEED") {
        Ok(s) => s.parse().expect("TINFOIL_CRASH_SEED is a number"),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_nanos() as u64,
    }
}

/// Successful audit records per event name in an export.
fn audited(dir: &Path) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for record in records_in(dir) {
        if record.get("errorCode").is_none() {
            if let Some(name) = record["eventName"].as_str() {
                *counts.entry(name.to_string()).or_default() += 1;
            }
        }
    }
    counts
}

#[test]
fn sigkill_under_concurrent_writers_loses_no_acknowledged_write() {
    let rounds: usize = std::env::var("TINFOIL_CRASH_ROUNDS")
        .ok()
        .map(|s| s.parse().expect("TINFOIL_CRASH_ROUNDS is a number"))
        .unwrap_or(5);
    let seed = seed();
    eprintln!("crash_durability: {rounds} rounds, TINFOIL_CRASH_SEED={seed}");
    let mut rng = Rng(seed | 1);
    let store = Store::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut killed_with_calls_in_flight = 0;
    for round in 0..rounds {
        // The store opens every time (start panics if tinfoild exits).
        let daemon = Daemon::start(&store, &[]);
        runtime.block_on(async {
            let mut client = daemon.client().await;
            let mut l = ledger.lock().unwrap().clone();
            let problems = check(&mut client, &mut l).await;
            assert!(
                problems.is_empty(),
                "after kill {round}: {} problems:\n{}",
                problems.len(),
                problems.join("\n")
            );
            // Keys the check had to enable to decrypt.
            *ledger.lock().unwrap() = l;
        });
        let before: usize = ledger.lock().unwrap().acknowledged.values().sum();
        // Killed at a random moment once writes are flowing (not at a fixed
        // time: a loaded machine may take long to start the writers).
        let kill_after = Duration::from_millis(rng.below(1500));
        runtime.block_on(async {
            let mut tasks = Vec::new();
            for worker in 0..WRITERS {
                let channel = daemon.channel().await;
                tasks.push(tokio::spawn(writer(
                    channel,
                    round,
                    worker,
                    rng.next(),
                    Arc::clone(&ledger),
                )));
            }
            let acked = || ledger.lock().unwrap().acknowledged.values().sum::<usize>();
            let started = std::time::Instant::now();
            while acked() < before + 5 {
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "round {round}: the writers acknowledged nothing"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tokio::time::sleep(kill_after).await;
            signal(daemon.pid(), "KILL");
            let mut unfinished = 0;
            for t in tasks {
                // Every writer stops at its first failed call.
                if !t.is_finished() {
                    unfinished += 1;
                }
                t.await.expect("writer task");
            }
            if unfinished > 0 {
                killed_with_calls_in_flight += 1;
            }
        });
        drop(daemon);
        let after: usize = ledger.lock().unwrap().acknowledged.values().sum();
        eprintln!(
            "crash_durability: round {round}: killed {kill_after:?} after the 5th write, {} writes acknowledged",
            after - before
        );
        assert!(
            after > before,
            "round {round}: no write was acknowledged before the kill"
        );
    }
    assert!(
        killed_with_calls_in_flight > 0,
        "no kill hit a running writer"
    );

    // The last restart: everything, then the audit chain.
    let daemon = Daemon::start(&store, &[]);
    let mut final_ledger = ledger.lock().unwrap().clone();
    runtime.block_on(async {
        let mut client = daemon.client().await;
        let problems = check(&mut client, &mut final_ledger).await;
        assert!(
            problems.is_empty(),
            "after the last kill:\n{}",
            problems.join("\n")
        );
    });
    let dir = store.dir.path();
    let (export, key, _out) = export_and_verify(&daemon, dir, "export");
    let recorded = audited(&export);
    for (op, n) in &final_ledger.acknowledged {
        let have = recorded.get(*op).copied().unwrap_or(0);
        assert!(
            have >= *n,
            "{n} acknowledged {op} calls, {have} audit records"
        );
    }
    eprintln!(
        "crash_durability: {} keys, {} aliases, {} ciphertexts, acknowledged {:?}",
        final_ledger.keys.len(),
        final_ledger.aliases.len(),
        final_ledger.ciphertexts.len(),
        final_ledger.acknowledged
    );

    // Negative control: writes that never happened must each be named.
    let mut fabricated = final_ledger.clone();
    let some_key = fabricated.keys.keys().next().expect("a key").clone();
    fabricated
        .keys
        .get_mut(&some_key)
        .unwrap()
        .tags
        .insert("never-written".into(), "x".into());
    fabricated.keys.get_mut(&some_key).unwrap().rotations += 100;
    fabricated.keys.insert(
        "11111111-2222-4333-8444-555555555555".into(),
        KeyExpect::default(),
    );
    fabricated
        .aliases
        .insert("alias/never-created".into(), some_key.clone());
    let mut forged = fabricated.ciphertexts[0].clone();
    let last = forged.1.len() - 1;
    forged.1[last] ^= 1;
    fabricated.ciphertexts.push(forged);
    let problems = runtime.block_on(async {
        let mut client = daemon.client().await;
        check(&mut client, &mut fabricated).await
    });
    let named = |needle: &str| problems.iter().any(|p| p.contains(needle));
    assert!(named("never-written"), "{problems:?}");
    assert!(named("rotations"), "{problems:?}");
    assert!(
        named("11111111-2222-4333-8444-555555555555"),
        "{problems:?}"
    );
    assert!(named("alias/never-created"), "{problems:?}");
    assert!(named("does not decrypt"), "{problems:?}");
    assert_eq!(problems.len(), 5, "{problems:?}");

    // And a tampered export fails offline verification.
    let records = std::fs::read_dir(export.join("records"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&records).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    first["eventName"] = "Tampered".into();
    lines[0] = first.to_string();
    std::fs::write(&records, lines.join("\n") + "\n").unwrap();
    let out = verify_offline(&export, &key);
    assert_eq!(out.status.code(), Some(1), "a tampered export verified");
    daemon.stop();
}
