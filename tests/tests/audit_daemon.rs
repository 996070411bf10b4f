//! The audit log through the real binaries (issue 11): `tinfoild init`
//! prints the public key, `tinfoil lookup-events` in CloudTrail's shape,
//! get-audit-public-key, export-audit-log, verify-audit-log offline (exit 0
//! and the summary; exit 1 naming the record), prune-audit-log; and kill -9
//! under load: every acknowledged call has its record and the chain verifies.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tinfoil_e2e_tests::audit::{export_and_verify, records_in, verify_offline};
use tinfoil_e2e_tests::daemon::{binary, json, signal, stderr, stdout, write_file, Daemon, Store};
use tinfoil_proto::v1 as pb;

#[test]
fn init_prints_the_public_key_that_get_audit_public_key_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let pass = tmp.path().join("pass");
    write_file(&pass, b"correct horse battery staple\n", 0o600);
    let data = tmp.path().join("data");
    let out = Command::new(binary("tinfoild"))
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
        .env_remove("TINFOIL_PASSPHRASE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out)
        .lines()
        .find_map(|l| {
            l.strip_prefix("tinfoild: audit log public key: ")
                .map(str::to_string)
        })
        .expect("init prints the audit public key");
    let clock_file = tmp.path().join("clock");
    let store = Store {
        dir: tmp,
        data_dir: data,
        passphrase_file: pass,
        clock_file,
    };
    store.set_clock(tinfoil_e2e_tests::daemon::unix_now());
    let daemon = Daemon::start(&store, &[]);
    let file = store.dir.path().join("audit.pub");
    let out = daemon.cli(&[
        "get-audit-public-key",
        "--output-file",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), printed);
}

#[test]
fn lookup_export_verify_and_prune_through_the_cli() {
    let store = Store::init();
    let daemon = Daemon::start(&store, &[]);
    let dir = store.dir.path();
    let created =
        json(&daemon.cli(&["create-key", "--description", "audited", "--output", "json"]));
    let key_id = created["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let plain = dir.join("p");
    std::fs::write(&plain, b"secret plaintext 1234").unwrap();
    for _ in 0..3 {
        let out = daemon.cli(&[
            "encrypt",
            "--key-id",
            &key_id,
            "--plaintext-file",
            plain.to_str().unwrap(),
            "--encryption-context",
            "dept=audit",
            "--output",
            "json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = daemon.cli(&["describe-key", "--key-id", "alias/none"]);
    assert!(!out.status.success());

    let page = json(&daemon.cli(&[
        "lookup-events",
        "--lookup-attributes",
        "AttributeKey=EventName,AttributeValue=Encrypt",
        "--max-results",
        "2",
        "--output",
        "json",
    ]));
    let events = page["Events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert!(page["NextToken"].is_string(), "{page}");
    for e in events {
        assert_eq!(e["EventName"], "Encrypt");
        assert_eq!(e["Username"], "root");
        assert!(
            e["EventId"].is_string() && e["EventTime"].is_number(),
            "{e}"
        );
        assert_eq!(e["Resources"][0]["ResourceType"], "AWS::KMS::Key");
        let record: serde_json::Value =
            serde_json::from_str(e["CloudTrailEvent"].as_str().unwrap()).unwrap();
        assert_eq!(
            record["requestParameters"]["encryptionContext"]["dept"],
            "audit"
        );
        assert_eq!(record["requestParameters"]["keyId"], key_id.as_str());
        assert!(record["sourceIPAddress"]
            .as_str()
            .unwrap()
            .starts_with("unix:uid="));
    }
    let next = json(&daemon.cli(&[
        "lookup-events",
        "--lookup-attributes",
        "AttributeKey=EventName,AttributeValue=Encrypt",
        "--next-token",
        page["NextToken"].as_str().unwrap(),
        "--output",
        "json",
    ]));
    assert_eq!(next["Events"].as_array().unwrap().len(), 1);
    let failed = json(&daemon.cli(&[
        "lookup-events",
        "--lookup-attributes",
        "AttributeKey=EventName,AttributeValue=DescribeKey",
        "--output",
        "json",
    ]));
    let record: serde_json::Value =
        serde_json::from_str(failed["Events"][0]["CloudTrailEvent"].as_str().unwrap()).unwrap();
    assert_eq!(record["errorCode"], "NotFoundException");
    let out = daemon.cli(&[
        "lookup-events",
        "--lookup-attributes",
        "AttributeKey=Nope,AttributeValue=x",
    ]);
    assert!(!out.status.success());

    let (export, key, out) = export_and_verify(&daemon, dir, "export");
    assert!(stdout(&out).contains("chain intact"), "{}", stdout(&out));
    let plaintext_b64 = "c2VjcmV0IHBsYWludGV4dCAxMjM0";
    let manifest = std::fs::read_to_string(export.join("manifest.json")).unwrap();
    assert!(!manifest.contains("secret plaintext") && !manifest.contains(plaintext_b64));
    for r in records_in(&export) {
        let text = r.to_string();
        assert!(!text.contains("secret plaintext") && !text.contains(plaintext_b64));
    }

    // One changed byte: exit 1 naming the record.
    let tampered = dir.join("tampered");
    std::fs::create_dir_all(tampered.join("records")).unwrap();
    std::fs::create_dir_all(tampered.join("checkpoints")).unwrap();
    for sub in ["", "records", "checkpoints"] {
        for entry in std::fs::read_dir(export.join(sub)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), tampered.join(sub).join(entry.file_name())).unwrap();
            }
        }
    }
    let file = std::fs::read_dir(tampered.join("records"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replacen("dept", "dapt", 1)).unwrap();
    let out = verify_offline(&tampered, &key);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("record ") && stderr(&out).contains("hash does not match"),
        "{}",
        stderr(&out)
    );

    // Prune what was exported; the rest still verifies from its anchor.
    let last = records_in(&export).last().unwrap()["tinfoil"]["sequence"]
        .as_u64()
        .unwrap();
    let pruned = json(&daemon.cli(&[
        "prune-audit-log",
        "--before-sequence",
        &last.to_string(),
        "--output",
        "json",
    ]));
    assert!(pruned["Pruned"].as_u64().unwrap() > 0, "{pruned}");
    let out = daemon.cli(&[
        "prune-audit-log",
        "--before-sequence",
        &(last + 100).to_string(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("never exported"), "{}", stderr(&out));
    let again = dir.join("again");
    let out = daemon.cli(&["export-audit-log", "--output-dir", again.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = verify_offline(&again, &key);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let first = records_in(&again)[0]["tinfoil"]["sequence"]
        .as_u64()
        .unwrap();
    assert!(first > 1, "the export starts after the pruned records");
}

#[test]
fn kill_9_under_load_keeps_every_acknowledged_record() {
    let store = Store::init();
    let daemon = Daemon::start(&store, &[]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let key_id = runtime.block_on(async {
        daemon
            .client()
            .await
            .create_key(pb::CreateKeyRequest::default())
            .await
            .unwrap()
            .into_inner()
            .key_metadata
            .unwrap()
            .key_id
    });
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = runtime.block_on(async {
        let mut tasks = Vec::new();
        for worker in 0..16 {
            let channel = daemon.channel().await;
            let key_id = key_id.clone();
            let stop = Arc::clone(&stop);
            tasks.push(tokio::spawn(async move {
                let mut client =
                    tinfoil_proto::v1::key_management_client::KeyManagementClient::new(channel);
                let mut done = Vec::new();
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let tag = format!("{worker}-{i}");
                    let request = pb::EncryptRequest {
                        key_id: key_id.clone(),
                        plaintext: b"load".to_vec(),
                        encryption_context: [("call".to_string(), tag.clone())].into(),
                        ..Default::default()
                    };
                    match client.encrypt(request).await {
                        Ok(_) => done.push(tag),
                        Err(_) => break,
                    }
                }
                done
            }));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // kill -9 while calls are in flight.
        signal(daemon.pid(), "KILL");
        stop.store(true, Ordering::Relaxed);
        let mut acknowledged = HashSet::new();
        for t in tasks {
            acknowledged.extend(t.await.unwrap());
        }
        acknowledged
    });
    drop(daemon);
    assert!(acknowledged.len() > 50, "only {} calls", acknowledged.len());

    let daemon = Daemon::start(&store, &[]);
    let dir = store.dir.path();
    let (export, _key, _out) = export_and_verify(&daemon, dir, "export");
    let recorded: HashSet<String> = records_in(&export)
        .iter()
        .filter(|r| r["eventName"] == "Encrypt" && r.get("errorCode").is_none())
        .filter_map(|r| {
            r["requestParameters"]["encryptionContext"]["call"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    let missing: Vec<_> = acknowledged.difference(&recorded).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged calls without a record, e.g. {:?}",
        missing.len(),
        missing.first()
    );
}
