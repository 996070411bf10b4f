//! Crash durability (issue 13): tinfoild under concurrent writers (create
//! key, tag, alias, encrypt, rotate, disable) is killed with SIGKILL at a
//! random moment, restarted, and checked: the store opens every time, every
//! acknowledged write is there, every acknowledged ciphertext decrypts.
//! Rounds: 5 (TINFOIL_CRASH_ROUNDS for more). A negative control proves the
//! checker fails on a write that was never made.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tinfoil_e2e_tests::daemon::{Daemon, Store};
use tinfoil_proto::v1 as pb;
use tinfoil_proto::v1::key_management_client::KeyManagementClient;
use tonic::transport::Channel;

/// What one writer had acknowledged for one key.
#[derive(Debug, Clone, Default)]
struct KeyAcks {
    tag: Option<(String, String)>,
    alias: Option<String>,
    ciphertext: Option<(Vec<u8>, Vec<u8>)>,
    rotated: bool,
    disabled: bool,
}

type Acks = Arc<Mutex<BTreeMap<String, KeyAcks>>>;

/// One writer: key after key, each step recorded only once acknowledged.
/// Returns when a call fails (the daemon was killed).
async fn writer(mut client: KeyManagementClient<Channel>, round: u64, who: usize, acks: Acks) {
    let mut n = 0u64;
    loop {
        n += 1;
        let Ok(created) = client.create_key(pb::CreateKeyRequest::default()).await else {
            return;
        };
        let id = created.into_inner().key_metadata.expect("metadata").key_id;
        acks.lock().unwrap().insert(id.clone(), KeyAcks::default());
        let record = |f: &dyn Fn(&mut KeyAcks)| f(acks.lock().unwrap().get_mut(&id).unwrap());

        let (k, v) = (format!("w{who}"), format!("n{n}"));
        let tag = pb::TagResourceRequest {
            key_id: id.clone(),
            tags: vec![pb::Tag {
                tag_key: k.clone(),
                tag_value: v.clone(),
            }],
        };
        if client.tag_resource(tag).await.is_err() {
            return;
        }
        record(&|a| a.tag = Some((k.clone(), v.clone())));

        let alias = format!("alias/crash-{round}-{who}-{n}");
        let request = pb::CreateAliasRequest {
            alias_name: alias.clone(),
            target_key_id: id.clone(),
        };
        if client.create_alias(request).await.is_err() {
            return;
        }
        record(&|a| a.alias = Some(alias.clone()));

        let plaintext = format!("acknowledged {who}/{n}").into_bytes();
        let request = pb::EncryptRequest {
            key_id: id.clone(),
            plaintext: plaintext.clone(),
            ..Default::default()
        };
        let Ok(blob) = client.encrypt(request).await else {
            return;
        };
        let blob = blob.into_inner().ciphertext_blob;
        record(&|a| a.ciphertext = Some((blob.clone(), plaintext.clone())));

        let request = pb::RotateKeyOnDemandRequest { key_id: id.clone() };
        if client.rotate_key_on_demand(request).await.is_err() {
            return;
        }
        record(&|a| a.rotated = true);

        let request = pb::DisableKeyRequest { key_id: id.clone() };
        if client.disable_key(request).await.is_err() {
            return;
        }
        record(&|a| a.disabled = true);
    }
}

/// Checks every acknowledged write; returns the failures (empty: all held).
async fn check(
    client: &mut KeyManagementClient<Channel>,
    acks: &BTreeMap<String, KeyAcks>,
) -> Vec<String> {
    let mut failures = Vec::new();
    for (id, ack) in acks {
        let described = client
            .describe_key(pb::DescribeKeyRequest { key_id: id.clone() })
            .await;
        let Ok(described) = described else {
            failures.push(format!("key {id} is gone"));
            continue;
        };
        let state = described
            .into_inner()
            .key_metadata
            .expect("metadata")
            .key_state;
        if ack.disabled && state != "Disabled" {
            failures.push(format!("key {id} is {state}, its disable was acknowledged"));
        }
        if let Some((k, v)) = &ack.tag {
            let tags = client
                .list_resource_tags(pb::ListResourceTagsRequest {
                    key_id: id.clone(),
                    ..Default::default()
                })
                .await
                .map(|r| r.into_inner().tags)
                .unwrap_or_default();
            if !tags.iter().any(|t| &t.tag_key == k && &t.tag_value == v) {
                failures.push(format!("key {id} lost tag {k}={v}"));
            }
        }
        if let Some(alias) = &ack.alias {
            let by_alias = client
                .describe_key(pb::DescribeKeyRequest {
                    key_id: alias.clone(),
                })
                .await
                .map(|r| r.into_inner().key_metadata.expect("metadata").key_id);
            if by_alias.as_ref().ok() != Some(id) {
                failures.push(format!("alias {alias} does not name {id}"));
            }
        }
        if ack.rotated {
            let rotations = client
                .list_key_rotations(pb::ListKeyRotationsRequest {
                    key_id: id.clone(),
                    ..Default::default()
                })
                .await
                .map(|r| r.into_inner().rotations.len())
                .unwrap_or(0);
            if rotations == 0 {
                failures.push(format!("key {id} lost its acknowledged rotation"));
            }
        }
        if let Some((blob, plaintext)) = &ack.ciphertext {
            if state == "Disabled" {
                let _ = client
                    .enable_key(pb::EnableKeyRequest { key_id: id.clone() })
                    .await;
            }
            let decrypted = client
                .decrypt(pb::DecryptRequest {
                    ciphertext_blob: blob.clone(),
                    ..Default::default()
                })
                .await
                .map(|r| r.into_inner().plaintext);
            if decrypted.as_ref().ok() != Some(plaintext) {
                failures.push(format!("a ciphertext under {id} no longer decrypts"));
            }
            if state == "Disabled" {
                let _ = client
                    .disable_key(pb::DisableKeyRequest { key_id: id.clone() })
                    .await;
            }
        }
    }
    failures
}

/// A pseudo-random kill delay, 150 to 900 ms, different every round.
fn delay(round: u64) -> Duration {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        ^ round.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    Duration::from_millis(150 + seed % 750)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_under_concurrent_writers() {
    let rounds: u64 = std::env::var("TINFOIL_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let store = Store::init();
    let acks: Acks = Arc::default();
    let mut total_keys = 0;
    for round in 0..rounds {
        // The store opens every time (Daemon::start panics otherwise).
        let mut daemon = Daemon::start(&store, &[]);
        let mut writers = Vec::new();
        for who in 0..3 {
            let client = daemon.client().await;
            writers.push(tokio::spawn(writer(client, round, who, Arc::clone(&acks))));
        }
        tokio::time::sleep(delay(round)).await;
        // SIGKILL, mid-write.
        tinfoil_e2e_tests::daemon::signal(daemon.pid(), "KILL");
        for w in writers {
            let _ = tokio::time::timeout(Duration::from_secs(60), w).await;
        }
        assert!(
            !daemon.is_running() || {
                tokio::time::sleep(Duration::from_millis(200)).await;
                !daemon.is_running()
            }
        );
        drop(daemon);
        let _ = std::fs::remove_file(store.socket());

        let daemon = Daemon::start(&store, &[]);
        let mut client = daemon.client().await;
        let snapshot = acks.lock().unwrap().clone();
        let failures = check(&mut client, &snapshot).await;
        assert!(failures.is_empty(), "round {round}: {failures:#?}");
        total_keys = snapshot.len();
        eprintln!("round {round}: {total_keys} keys acknowledged so far, all present");
        drop(daemon);
        let _ = std::fs::remove_file(store.socket());
    }
    assert!(total_keys > 0, "no write was ever acknowledged");

    // Negative control: a write that was never made is reported.
    let daemon = Daemon::start(&store, &[]);
    let mut client = daemon.client().await;
    let mut forged = acks.lock().unwrap().clone();
    forged.insert(
        "00000000-0000-4000-8000-000000000000".into(),
        KeyAcks::default(),
    );
    if let Some(ack) = forged.values_mut().find(|a| a.tag.is_some()) {
        ack.tag = Some(("never".into(), "written".into()));
    }
    let failures = check(&mut client, &forged).await;
    assert!(
        failures.iter().any(|f| f.contains("is gone"))
            && failures.iter().any(|f| f.contains("never=written")),
        "the checker missed forged writes: {failures:?}"
    );
}
