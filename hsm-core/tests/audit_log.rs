//! The audit log (issue 11): one record per gated call and background
//! event, the chain, export and the offline verifier with its tampering
//! cases, secrets kept out, fail closed.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use common::*;
use hsm_core::audit::export::ExportWriter;
use hsm_core::audit::{verify_dir, LookupAttribute, LookupEventsRequest, Pkcs11Call};
use hsm_core::{Caller, CreateKeyRequest, EncryptionContext, Error, Principal};
use serde_json::Value;

fn root() -> Caller {
    let mut caller = Caller::new(Principal::Root, "unix:uid=0,pid=42");
    caller.user_agent = Some("audit-test/1".into());
    caller
}

/// Every record, oldest first, through LookupEvents (following NextToken).
fn all_records(t: &TestHsm) -> Vec<Value> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = t
            .hsm
            .gate(&root())
            .lookup_events(&LookupEventsRequest {
                max_results: Some(50),
                next_token: token.clone(),
                ..Default::default()
            })
            .expect("lookup");
        for e in &page.events {
            out.push(serde_json::from_str::<Value>(&e.cloud_trail_event).unwrap());
        }
        match page.next_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    out.reverse();
    // The lookups themselves are recorded too: leave them out.
    out.retain(|r| r["eventName"] != "LookupEvents");
    out
}

fn names(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["eventName"].as_str().unwrap().to_string())
        .collect()
}

fn context() -> EncryptionContext {
    BTreeMap::from([("purpose".to_string(), "audit-test".to_string())])
}

/// Exports the whole log into `dir` with the library's writer.
fn export(t: &TestHsm, dir: &Path) -> String {
    let gate_caller = root();
    let gate = t.hsm.gate(&gate_caller);
    let mut writer = ExportWriter::create(dir).unwrap();
    let mut from = 1;
    let mut to = 0;
    let mut key;
    loop {
        let page = gate.export_audit_log(from, to).unwrap();
        to = page.to_sequence;
        key = page.public_key.clone();
        for (size, note) in &page.checkpoints {
            writer.checkpoint(*size, note).unwrap();
        }
        for (seq, record) in &page.records {
            writer.record(*seq, record).unwrap();
        }
        match page.next_sequence {
            Some(next) => from = next,
            None => break,
        }
    }
    let origin = key.split('+').next().unwrap().to_string();
    writer.finish(&key, &origin).unwrap();
    gate.confirm_audit_export(to).unwrap();
    key
}

#[test]
fn every_operation_leaves_one_record_with_name_principal_and_key() {
    let t = TestHsm::new();
    let caller = root();
    let gate = t.hsm.gate(&caller);
    let key = gate
        .create_key(CreateKeyRequest {
            description: "audited".into(),
            ..Default::default()
        })
        .unwrap();
    let blob = gate
        .encrypt(&key.key_id, b"hello", &context(), None)
        .unwrap()
        .ciphertext_blob;
    gate.decrypt(&blob, &context(), None, None).unwrap();
    gate.generate_data_key(
        &key.key_id,
        Some(hsm_core::DataKeySpec::Aes256),
        None,
        &context(),
    )
    .unwrap();
    gate.describe_key(&key.key_id).unwrap();
    gate.create_alias("alias/audited", &key.key_id).unwrap();
    gate.disable_key("alias/audited").unwrap();
    assert!(gate.encrypt(&key.key_id, b"x", &context(), None).is_err());
    gate.enable_key(&key.key_id).unwrap();
    gate.schedule_key_deletion(&key.key_id, Some(7)).unwrap();

    let records = all_records(&t);
    assert_eq!(
        names(&records),
        [
            "CreateKey",
            "Encrypt",
            "Decrypt",
            "GenerateDataKey",
            "DescribeKey",
            "CreateAlias",
            "DisableKey",
            "Encrypt",
            "EnableKey",
            "ScheduleKeyDeletion"
        ]
    );
    for r in &records {
        assert_eq!(r["userIdentity"]["type"], "Root");
        assert_eq!(r["userIdentity"]["arn"], "arn:aws:iam::111122223333:root");
        assert_eq!(r["sourceIPAddress"], "unix:uid=0,pid=42");
        assert_eq!(r["userAgent"], "audit-test/1");
        assert_eq!(r["eventType"], "AwsApiCall");
        assert_eq!(r["eventSource"], "kms.amazonaws.com");
        assert_eq!(r["resources"][0]["ARN"], key.arn.as_str(), "{r}");
        assert_eq!(r["resources"][0]["type"], "AWS::KMS::Key");
        assert_eq!(r["recipientAccountId"], "111122223333");
    }
    assert_eq!(
        records[0]["responseElements"]["keyMetadata"]["keyId"],
        key.key_id.as_str()
    );
    assert_eq!(records[0]["readOnly"], false);
    assert_eq!(records[1]["readOnly"], true);
    assert_eq!(
        records[1]["requestParameters"]["encryptionContext"]["purpose"],
        "audit-test"
    );
    assert_eq!(
        records[1]["requestParameters"]["encryptionAlgorithm"],
        "SYMMETRIC_DEFAULT"
    );
    assert_eq!(records[7]["errorCode"], "DisabledException");
    assert!(records[6].get("errorCode").is_none());
    assert_eq!(
        records[9]["responseElements"]["keyState"],
        "PendingDeletion"
    );
    assert_eq!(records[9]["requestParameters"]["pendingWindowInDays"], 7);
    // The chain: sequence numbers 1.. in order.
    let sequences: Vec<u64> = records
        .iter()
        .map(|r| r["tinfoil"]["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, (1..=10).collect::<Vec<_>>());
}

#[test]
fn a_denied_call_is_recorded_as_access_denied() {
    let t = TestHsm::new();
    let admin = root();
    t.hsm.gate(&admin).create_user("bob", None, None).unwrap();
    let bob = Caller::new(Principal::User("bob".into()), "127.0.0.1");
    let err = t.hsm.gate(&bob).create_user("eve", None, None).unwrap_err();
    assert!(matches!(err, Error::AccessDenied(_)), "{err:?}");
    let err = t
        .hsm
        .gate(&bob)
        .lookup_events(&LookupEventsRequest::default())
        .unwrap_err();
    assert!(matches!(err, Error::AccessDenied(_)), "{err:?}");
    let page = t
        .hsm
        .gate(&admin)
        .lookup_events(&LookupEventsRequest {
            attribute: Some(LookupAttribute::Username("bob".into())),
            ..Default::default()
        })
        .unwrap();
    let events: Vec<Value> = page
        .events
        .iter()
        .map(|e| serde_json::from_str(&e.cloud_trail_event).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["eventName"], "LookupEvents");
    assert_eq!(events[1]["eventName"], "CreateUser");
    assert_eq!(events[1]["eventSource"], "iam.amazonaws.com");
    for e in &events {
        assert_eq!(e["errorCode"], "AccessDeniedException");
        assert_eq!(
            e["userIdentity"]["arn"],
            "arn:aws:iam::111122223333:user/bob"
        );
        assert_eq!(e["sourceIPAddress"], "127.0.0.1");
    }
    assert_eq!(page.events[0].username, "bob");
}

#[test]
fn background_rotation_and_purge_are_service_events() {
    let t = TestHsm::new();
    let caller = root();
    let gate = t.hsm.gate(&caller);
    let rotating = gate.create_key(CreateKeyRequest::default()).unwrap();
    gate.enable_key_rotation(&rotating.key_id, Some(90))
        .unwrap();
    let doomed = gate.create_key(CreateKeyRequest::default()).unwrap();
    gate.schedule_key_deletion(&doomed.key_id, Some(7)).unwrap();
    t.advance_days(91);
    let report = t.tick();
    assert_eq!(report.rotated.len(), 1);
    assert_eq!(report.destroyed.len(), 1);
    let records = all_records(&t);
    let service: Vec<&Value> = records
        .iter()
        .filter(|r| r["eventType"] == "AwsServiceEvent")
        .collect();
    assert_eq!(service.len(), 2, "{service:?}");
    let by_name = |name: &str| *service.iter().find(|r| r["eventName"] == name).unwrap();
    assert_eq!(
        by_name("RotateKey")["resources"][0]["ARN"],
        rotating.arn.as_str()
    );
    assert_eq!(
        by_name("DeleteKey")["resources"][0]["ARN"],
        doomed.arn.as_str()
    );
    for r in service {
        assert_eq!(r["userIdentity"]["invokedBy"], "kms.amazonaws.com");
        assert_eq!(r["readOnly"], false);
        assert!(r.get("errorCode").is_none());
    }
}

#[test]
fn an_untouched_export_verifies_and_each_tampering_is_named() {
    let t = TestHsm::new();
    let caller = root();
    let gate = t.hsm.gate(&caller);
    let key = gate.create_key(CreateKeyRequest::default()).unwrap();
    for i in 0..30 {
        gate.encrypt(&key.key_id, format!("m{i}").as_bytes(), &context(), None)
            .unwrap();
        if i % 10 == 9 {
            // A minute passes: the next record brings a checkpoint.
            t.advance_seconds(61);
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    let public_key = export(&t, &good);
    assert_eq!(public_key, t.hsm.audit_public_key());
    let report = verify_dir(&good, &public_key).expect("an untouched export verifies");
    assert_eq!(report.records, 31);
    assert!(report.checkpoints >= 3, "{report:?}");
    assert_eq!(report.unsigned, 0);
    assert!(report.to_string().starts_with("31 records, "), "{report}");
    assert!(
        report.to_string().ends_with("checkpoints, chain intact"),
        "{report}"
    );

    let records_file = |dir: &Path| {
        let entries: Vec<_> = std::fs::read_dir(dir.join("records"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(entries.len(), 1);
        entries[0].clone()
    };
    let tamper = |name: &str, change: &dyn Fn(&Path)| -> String {
        let dir = tmp.path().join(name);
        copy_dir(&good, &dir);
        change(&dir);
        let e = verify_dir(&dir, &public_key).expect_err(name);
        eprintln!("{name}: {e}");
        e
    };
    let edit_lines = |dir: &Path, edit: &dyn Fn(&mut Vec<String>)| {
        let file = records_file(dir);
        let mut lines: Vec<String> = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        edit(&mut lines);
        std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    };

    let err = tamper("byte", &|dir| {
        edit_lines(dir, &|lines| {
            lines[11] = lines[11].replacen("Encrypt", "Encrypu", 1)
        })
    });
    assert!(
        err.contains("record 12") && err.contains("hash does not match"),
        "{err}"
    );

    let err = tamper("deleted", &|dir| {
        edit_lines(dir, &|lines| drop(lines.remove(4)))
    });
    assert!(err.contains("record 5 is missing"), "{err}");

    let err = tamper("swapped", &|dir| edit_lines(dir, &|lines| lines.swap(6, 7)));
    assert!(
        err.contains("record 7 is missing") || err.contains("record 8"),
        "{err}"
    );

    let err = tamper("inserted", &|dir| {
        edit_lines(dir, &|lines| {
            let copy = lines[2].clone();
            lines.insert(3, copy);
        })
    });
    assert!(
        err.contains("record 3") && err.contains("out of place"),
        "{err}"
    );

    let err = tamper("tail-cut", &|dir| {
        edit_lines(dir, &|lines| lines.truncate(25))
    });
    assert!(
        err.contains("missing") || err.contains("records cut"),
        "{err}"
    );

    let err = tamper("resigned", &|dir| {
        let other = hsm_core::audit::checkpoint::Signer::from_pkcs8(
            &hsm_core::audit::checkpoint::generate_pkcs8().unwrap(),
            public_key.split('+').next().unwrap(),
        )
        .unwrap();
        let cp_dir = dir.join("checkpoints");
        let first = std::fs::read_dir(&cp_dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let note = std::fs::read_to_string(&first).unwrap();
        let mut lines = note.lines();
        let _origin = lines.next();
        let size: u64 = lines.next().unwrap().parse().unwrap();
        let root = base64::engine::general_purpose::STANDARD
            .decode(lines.next().unwrap())
            .unwrap();
        std::fs::write(&first, other.sign(size, &root.try_into().unwrap())).unwrap();
    });
    assert!(
        err.contains("checkpoint") && err.contains("no signature by the public key"),
        "{err}"
    );

    let err = tamper("missing-file", &|dir| {
        std::fs::remove_file(records_file(dir)).unwrap();
    });
    assert!(err.contains("missing"), "{err}");

    let err = tamper("missing-checkpoint", &|dir| {
        let cp_dir = dir.join("checkpoints");
        let last = std::fs::read_dir(&cp_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .max()
            .unwrap();
        std::fs::remove_file(last).unwrap();
    });
    assert!(err.contains("missing"), "{err}");

    // The tail cut cleanly after a checkpoint (records and manifest both
    // edited): the last checkpoint still names the cut records.
    let err = tamper("tail-cut-clean", &|dir| {
        edit_lines(dir, &|lines| lines.truncate(20));
        let manifest_path = dir.join("manifest.json");
        let mut manifest: Value =
            serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
        manifest["lastSequence"] = 20.into();
        std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    });
    assert!(err.contains("records cut"), "{err}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn secrets_never_reach_records_export_or_database() {
    let t = TestHsm::new();
    let caller = root();
    let gate = t.hsm.gate(&caller);
    let key = gate.create_key(CreateKeyRequest::default()).unwrap();
    let plaintext = b"the-plaintext-nobody-may-log-42";
    let blob = gate
        .encrypt(&key.key_id, plaintext, &context(), None)
        .unwrap()
        .ciphertext_blob;
    let decrypted = gate.decrypt(&blob, &context(), None, None).unwrap();
    let data_key = gate
        .generate_data_key(
            &key.key_id,
            Some(hsm_core::DataKeySpec::Aes256),
            None,
            &context(),
        )
        .unwrap();
    let access = gate.create_access_key("root").unwrap();
    use hsm_core::SecretString;
    let _ = SecretString::from("unused");
    let secret_text = secrecy::ExposeSecret::expose_secret(&access.secret_access_key).to_string();
    let mut secrets: Vec<Vec<u8>> = vec![
        plaintext.to_vec(),
        decrypted.plaintext.to_vec(),
        data_key.plaintext.as_ref().unwrap().to_vec(),
        secret_text.as_bytes().to_vec(),
        PASSPHRASE.as_bytes().to_vec(),
    ];
    let mut forms = Vec::new();
    for s in &secrets {
        forms.push(s.clone());
        forms.push(hex(s).into_bytes());
        forms.push(
            base64::engine::general_purpose::STANDARD
                .encode(s)
                .into_bytes(),
        );
    }
    secrets = forms;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("export");
    export(&t, &out);
    let mut haystacks: Vec<(String, Vec<u8>)> = Vec::new();
    for r in all_records(&t) {
        haystacks.push(("record".into(), r.to_string().into_bytes()));
    }
    for entry in walk(&out) {
        haystacks.push((entry.display().to_string(), std::fs::read(&entry).unwrap()));
    }
    drop(t.hsm);
    let conn = rusqlite::Connection::open(t.dir.join("tinfoil.db")).unwrap();
    let mut stmt = conn.prepare("SELECT record FROM audit_records").unwrap();
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert!(rows.len() >= 5);
    for row in rows {
        haystacks.push(("audit row".into(), row.into_bytes()));
    }
    for (place, hay) in &haystacks {
        for secret in &secrets {
            assert!(
                !hay.windows(secret.len()).any(|w| w == secret.as_slice()),
                "a secret appears in {place}"
            );
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn calls_fail_closed_when_records_cannot_be_written() {
    let t = TestHsm::new();
    let caller = root();
    let key = t
        .hsm
        .gate(&caller)
        .create_key(CreateKeyRequest::default())
        .unwrap();
    let t = {
        let dir = t.dir.clone();
        let closed = t.close();
        // A failing hook: the audit table refuses every insert (as a full
        // disk would), installed while the store is closed.
        let conn = rusqlite::Connection::open(dir.join("tinfoil.db")).unwrap();
        conn.execute_batch(
            "CREATE TRIGGER audit_full BEFORE INSERT ON audit_records
             BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
        )
        .unwrap();
        drop(conn);
        closed.open(&passphrase())
    };
    let gate = t.hsm.gate(&caller);
    let err = gate.create_key(CreateKeyRequest::default()).unwrap_err();
    assert!(
        err.to_string().contains("audit log cannot be written"),
        "{err}"
    );
    let err = gate.disable_key(&key.key_id).unwrap_err();
    assert!(
        err.to_string().contains("audit log cannot be written"),
        "{err}"
    );
    let err = gate
        .encrypt(&key.key_id, b"x", &context(), None)
        .unwrap_err();
    assert!(
        err.to_string().contains("audit log cannot be written"),
        "{err}"
    );
    // Nothing changed: one key, still enabled.
    assert_eq!(t.all_key_ids(), vec![key.key_id.clone()]);
    assert_eq!(t.state(&key.key_id), hsm_core::KeyState::Enabled);
    let t = t.reopen();
    assert_eq!(t.all_key_ids(), vec![key.key_id.clone()]);
    assert_eq!(t.state(&key.key_id), hsm_core::KeyState::Enabled);
}

#[test]
fn pkcs11_calls_are_recorded_by_function_and_mechanism() {
    let t = TestHsm::new();
    let caller = root();
    let key = t
        .hsm
        .gate(&caller)
        .create_key(CreateKeyRequest::default())
        .unwrap();
    let p11 = Caller::new(Principal::Root, "unix:uid=0,pid=77");
    let call = |function, mechanism| Pkcs11Call {
        function,
        mechanism: Some(mechanism),
        key_id: Some(key.key_id.as_str()),
    };
    let failure = |e: &&str| (e.to_string(), format!("failed with {e}"));
    // The embedded backend's path: recorded, not authorized.
    let out = t
        .hsm
        .pkcs11_call(&p11, &call("C_Encrypt", "CKM_AES_GCM"), || Ok(7), failure)
        .unwrap();
    assert_eq!(out, Ok(7));
    let out = t
        .hsm
        .pkcs11_call(
            &p11,
            &call("C_Sign", "CKM_ECDSA"),
            || Err::<(), _>("CKR_KEY_TYPE_INCONSISTENT"),
            failure,
        )
        .unwrap();
    assert_eq!(out, Err("CKR_KEY_TYPE_INCONSISTENT"));
    let records = all_records(&t);
    let p11_records: Vec<&Value> = records
        .iter()
        .filter(|r| r["eventSource"] == "pkcs11.tinfoil.local")
        .collect();
    assert_eq!(p11_records.len(), 2);
    assert_eq!(p11_records[0]["eventName"], "C_Encrypt");
    assert_eq!(
        p11_records[0]["requestParameters"]["mechanism"],
        "CKM_AES_GCM"
    );
    assert_eq!(p11_records[0]["resources"][0]["ARN"], key.arn.as_str());
    assert_eq!(p11_records[0]["readOnly"], true);
    assert!(p11_records[0].get("errorCode").is_none());
    assert_eq!(p11_records[1]["eventName"], "C_Sign");
    assert_eq!(p11_records[1]["errorCode"], "CKR_KEY_TYPE_INCONSISTENT");
    assert_eq!(p11_records[1]["sourceIPAddress"], "unix:uid=0,pid=77");

    // The daemon backend's path: decided at the gate as the KMS action and
    // recorded once with the decision and the outcome.
    let out = t
        .hsm
        .gate(&p11)
        .pkcs11_call(
            &call("C_Decrypt", "CKM_AES_GCM"),
            "kms:Decrypt",
            || Err::<(), _>("CKR_ENCRYPTED_DATA_INVALID"),
            failure,
        )
        .unwrap();
    assert_eq!(out, Err("CKR_ENCRYPTED_DATA_INVALID"));
    let records = all_records(&t);
    let last = records.last().unwrap();
    assert_eq!(last["eventName"], "C_Decrypt");
    assert_eq!(last["eventSource"], "pkcs11.tinfoil.local");
    assert_eq!(last["requestParameters"]["kmsAction"], "kms:Decrypt");
    assert_eq!(last["requestParameters"]["mechanism"], "CKM_AES_GCM");
    assert_eq!(last["errorCode"], "CKR_ENCRYPTED_DATA_INVALID");
    assert_eq!(last["resources"][0]["ARN"], key.arn.as_str());
    let p11_count = records
        .iter()
        .filter(|r| r["eventSource"] == "pkcs11.tinfoil.local")
        .count();
    assert_eq!(p11_count, 3, "one record per call");
}

#[test]
fn a_partial_export_starts_on_a_checkpoint_and_a_pruned_log_still_verifies() {
    let t = TestHsm::new();
    let caller = root();
    let gate = t.hsm.gate(&caller);
    let key = gate.create_key(CreateKeyRequest::default()).unwrap();
    for i in 0..20 {
        gate.encrypt(&key.key_id, b"x", &context(), None).unwrap();
        if i % 5 == 4 {
            t.advance_seconds(61);
        }
    }
    // From the middle: moved back to the record after a checkpoint.
    let page = gate.export_audit_log(14, 0).unwrap();
    let first = page.records[0].0;
    assert!(first <= 14 && first > 1, "starts at {first}");
    assert!(page.checkpoints.iter().any(|(size, _)| *size == first - 1));
    // Prune is refused before an export confirmed the records.
    let err = gate.prune_audit_log(10).unwrap_err();
    assert!(matches!(err, Error::Validation(_)), "{err:?}");
    let tmp = tempfile::tempdir().unwrap();
    let key_text = export(&t, &tmp.path().join("all"));
    let outcome = gate.prune_audit_log(12).unwrap();
    assert!(
        outcome.pruned > 0 && outcome.first_kept <= 12,
        "{outcome:?}"
    );
    let after = tmp.path().join("after-prune");
    export(&t, &after);
    let report = verify_dir(&after, &key_text).expect("a pruned log verifies from its anchor");
    assert_eq!(report.first, outcome.first_kept);
    // Without its anchoring checkpoint the first record is refused.
    let anchor = after
        .join("checkpoints")
        .join(format!("checkpoint-{:020}.txt", outcome.first_kept - 1));
    std::fs::remove_file(&anchor).unwrap();
    let manifest_path = after.join("manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let files: Vec<Value> = manifest["checkpointFiles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            !f.as_str()
                .unwrap()
                .ends_with(&format!("{:020}.txt", outcome.first_kept - 1))
        })
        .cloned()
        .collect();
    manifest["checkpointFiles"] = Value::Array(files);
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let err = verify_dir(&after, &key_text).unwrap_err();
    assert!(err.contains("not anchored"), "{err}");
}
