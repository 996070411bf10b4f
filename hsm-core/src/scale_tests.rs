//! Tests of the store at scale, which need the core's internals: keys are
//! read when used (a cache far smaller than the store serves every key),
//! lists and the background tick seek through indexes (their query plans
//! search an index and never scan a table or sort), pages cover every item
//! once in order, and migration 7 upgrades a store made before it.

use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;
use secrecy::SecretString;

use crate::clock::{Clock, ManualClock, DAY};
use crate::outputs::CreateKeyRequest;
use crate::types::{KeyState, Tag};
use crate::{EncryptionContext, Hsm, HsmOptions, KdfParams};

fn options(clock: Arc<ManualClock>, cache_capacity: usize) -> HsmOptions {
    HsmOptions {
        kdf: KdfParams {
            memory_kib: 8192,
            iterations: 1,
            parallelism: 1,
        },
        clock,
        cache_capacity,
        account: Default::default(),
    }
}

fn pass() -> SecretString {
    SecretString::from("pass")
}

/// The query plan SQLite chooses for `sql`, one line per step.
fn plan(conn: &Connection, sql: &str, params: usize) -> String {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let args: Vec<rusqlite::types::Value> = (0..params)
        .map(|_| rusqlite::types::Value::Text("x".into()))
        .collect();
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
        .unwrap();
    rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("; ")
}

fn db(dir: &Path) -> Connection {
    Connection::open(dir.join(crate::store::DB_FILE)).unwrap()
}

#[test]
fn keys_are_read_when_used_through_a_cache_smaller_than_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    let mut ids = Vec::new();
    {
        let hsm = Hsm::init(dir.path(), &pass(), options(clock.clone(), 3)).unwrap();
        for i in 0..12 {
            let key = hsm.create_key(CreateKeyRequest::default()).unwrap();
            hsm.create_alias(&format!("alias/k{i:02}"), &key.key_id)
                .unwrap();
            ids.push(key.key_id);
        }
        hsm.disable_key(&ids[5]).unwrap();
    }
    let hsm = Hsm::open(dir.path(), &pass(), options(clock, 3)).unwrap();
    assert_eq!(hsm.read_state().cached_keys(), 0, "opening reads no key");
    let context = EncryptionContext::new();
    let mut blobs = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let by_alias = format!("alias/k{i:02}");
        let encrypted = hsm.encrypt(&by_alias, b"secret", &context, None);
        if i == 5 {
            assert!(matches!(encrypted, Err(crate::Error::Disabled(_))));
            continue;
        }
        let blob = encrypted.unwrap().ciphertext_blob;
        blobs.push((id.clone(), blob));
        assert!(hsm.read_state().cached_keys() <= 3, "the cache is bounded");
    }
    // Every key again, long evicted from the cache: read back from the store.
    for (id, blob) in &blobs {
        let out = hsm.decrypt(blob, &context, Some(id), None).unwrap();
        assert_eq!(&out.plaintext[..], b"secret");
    }
    assert_eq!(
        hsm.describe_key(&ids[5]).unwrap().key_state,
        KeyState::Disabled
    );
    // A change made while a key is cached is what the next use sees.
    hsm.disable_key(&ids[0]).unwrap();
    assert!(hsm.encrypt(&ids[0], b"x", &context, None).is_err());
    hsm.enable_key(&ids[0]).unwrap();
    hsm.encrypt(&ids[0], b"x", &context, None).unwrap();
    // Aliases move and vanish in the cache as in the store.
    hsm.update_alias("alias/k01", &ids[2]).unwrap();
    assert_eq!(hsm.describe_key("alias/k01").unwrap().key_id, ids[2]);
    hsm.delete_alias("alias/k01").unwrap();
    assert!(matches!(
        hsm.describe_key("alias/k01"),
        Err(crate::Error::NotFound(_))
    ));
}

#[test]
fn lists_and_due_keys_seek_through_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    let _hsm = Hsm::init(dir.path(), &pass(), options(clock, 16)).unwrap();
    let conn = db(dir.path());
    use crate::store::*;
    for (sql, params) in [
        (KEY_PAGE_SQL, 2),
        (ALIAS_PAGE_SQL, 2),
        (KEY_ALIAS_PAGE_SQL, 3),
        (TOKEN_KEYS_SQL, 1),
        (DUE_DELETIONS_SQL, 1),
        (DUE_ROTATIONS_SQL, 1),
        (RETIRABLE_GRANTS_SQL, 3),
    ] {
        let plan = plan(&conn, sql, params);
        assert!(plan.contains("SEARCH"), "{sql}: {plan}");
        assert!(!plan.contains("SCAN"), "{sql} scans: {plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{sql} sorts: {plan}");
    }
}

#[test]
fn pages_cover_every_item_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    let hsm = Hsm::init(dir.path(), &pass(), options(clock, 4)).unwrap();
    let mut keys = Vec::new();
    for _ in 0..23 {
        keys.push(hsm.create_key(CreateKeyRequest::default()).unwrap().key_id);
    }
    keys.sort();
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = hsm.list_keys(Some(5), marker.as_deref()).unwrap();
        assert!(page.items.len() <= 5);
        seen.extend(page.items.into_iter().map(|k| k.key_id));
        match page.next_marker {
            Some(m) => marker = Some(m),
            None => break,
        }
    }
    assert_eq!(seen, keys);

    // Aliases: all of them, and those of one key.
    let (a, b) = (&keys[0], &keys[1]);
    for i in 0..9 {
        hsm.create_alias(&format!("alias/a{i}"), a).unwrap();
        hsm.create_alias(&format!("alias/b{i}"), b).unwrap();
    }
    let collect = |key: Option<&str>| {
        let mut names = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = hsm.list_aliases(key, Some(4), marker.as_deref()).unwrap();
            names.extend(page.items.into_iter().map(|a| a.alias_name));
            match page.next_marker {
                Some(m) => marker = Some(m),
                None => return names,
            }
        }
    };
    let all = collect(None);
    assert_eq!(all.len(), 18);
    assert!(all.windows(2).all(|w| w[0] < w[1]));
    let of_b = collect(Some(b));
    assert_eq!(
        of_b,
        (0..9).map(|i| format!("alias/b{i}")).collect::<Vec<_>>()
    );

    // Tags and rotations of one key.
    let tags: Vec<Tag> = (0..11)
        .map(|i| Tag {
            tag_key: format!("t{i:02}"),
            tag_value: "v".into(),
        })
        .collect();
    hsm.tag_resource(a, &tags).unwrap();
    let mut got = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = hsm
            .list_resource_tags(a, Some(3), marker.as_deref())
            .unwrap();
        got.extend(page.items.into_iter().map(|t| t.tag_key));
        match page.next_marker {
            Some(m) => marker = Some(m),
            None => break,
        }
    }
    assert_eq!(
        got,
        tags.iter().map(|t| t.tag_key.clone()).collect::<Vec<_>>()
    );
    for _ in 0..7 {
        hsm.rotate_key_on_demand(a).unwrap();
    }
    let mut versions = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = hsm
            .list_key_rotations(a, Some(2), marker.as_deref())
            .unwrap();
        versions.extend(page.items.into_iter().map(|r| r.key_version));
        match page.next_marker {
            Some(m) => marker = Some(m),
            None => break,
        }
    }
    assert_eq!(versions, (2..=8).collect::<Vec<u32>>());
    // A marker this list never hands out is refused, not a wrong page.
    assert!(hsm.list_keys(None, Some("not-a-key-id")).is_err());
    assert!(hsm.list_key_rotations(a, None, Some("2")).is_err());
}

#[test]
fn the_tick_finds_due_keys_without_loading_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    let (doomed, rotating, other) = {
        let hsm = Hsm::init(dir.path(), &pass(), options(clock.clone(), 2)).unwrap();
        let mk = || hsm.create_key(CreateKeyRequest::default()).unwrap().key_id;
        let (doomed, rotating, other) = (mk(), mk(), mk());
        for _ in 0..5 {
            mk();
        }
        hsm.schedule_key_deletion(&doomed, Some(7)).unwrap();
        hsm.enable_key_rotation(&rotating, Some(90)).unwrap();
        hsm.enable_key_rotation(&other, Some(365)).unwrap();
        (doomed, rotating, other)
    };
    let hsm = Hsm::open(dir.path(), &pass(), options(clock.clone(), 2)).unwrap();
    assert!(hsm.tick(clock.now()).unwrap().destroyed.is_empty());
    clock.advance(8 * DAY);
    let report = hsm.tick(clock.now()).unwrap();
    assert_eq!(report.destroyed.len(), 1);
    assert!(report.destroyed[0].ends_with(&doomed));
    assert!(report.rotated.is_empty());
    clock.advance(90 * DAY);
    let report = hsm.tick(clock.now()).unwrap();
    assert_eq!(report.rotated.len(), 1);
    assert!(report.rotated[0].ends_with(&rotating));
    assert_eq!(hsm.describe_key(&rotating).unwrap().current_key_version, 2);
    assert_eq!(hsm.describe_key(&other).unwrap().current_key_version, 1);
    // Nothing due any more: the next tick does nothing.
    let report = hsm.tick(clock.now()).unwrap();
    assert!(report.rotated.is_empty() && report.destroyed.is_empty());
}

#[test]
fn migration_7_upgrades_a_store_made_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    let key = {
        let hsm = Hsm::init(dir.path(), &pass(), options(clock.clone(), 4)).unwrap();
        let key = hsm.create_key(CreateKeyRequest::default()).unwrap().key_id;
        hsm.create_alias("alias/old", &key).unwrap();
        hsm.schedule_key_deletion(&key, Some(7)).unwrap();
        key
    };
    // Back to schema 6: the indexes migration 7 made are gone.
    {
        let conn = db(dir.path());
        conn.execute_batch(crate::pkcs11::embedded::find_tests::UNDO_MIGRATION_9)
            .unwrap();
        conn.execute_batch(
            "DROP INDEX keys_by_deletion_date; DROP INDEX keys_by_rotation_date;
             DROP INDEX keys_by_token; DROP INDEX aliases_by_key_name;
             DROP INDEX grants_by_retiring;
             CREATE INDEX aliases_by_key ON aliases(key_id);
             PRAGMA user_version = 6;",
        )
        .unwrap();
    }
    let hsm = Hsm::open(dir.path(), &pass(), options(clock.clone(), 4)).unwrap();
    let conn = db(dir.path());
    let version: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, crate::store::SCHEMA_VERSION);
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    for name in [
        "keys_by_deletion_date",
        "keys_by_rotation_date",
        "keys_by_token",
        "aliases_by_key_name",
        "grants_by_retiring",
    ] {
        assert!(indexes.iter().any(|i| i == name), "{name} in {indexes:?}");
    }
    assert!(!indexes.iter().any(|i| i == "aliases_by_key"));
    assert_eq!(hsm.describe_key("alias/old").unwrap().key_id, key);
    clock.advance(8 * DAY);
    assert_eq!(hsm.tick(clock.now()).unwrap().destroyed.len(), 1);
}

#[test]
fn key_policies_are_read_when_used_and_hold_after_eviction_and_reopen() {
    use crate::identity::{Caller, Principal};
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    let root = Caller::new(Principal::Root, "test");
    let account = crate::identity::Account::default().account_id;
    // The root may do everything but Encrypt.
    let policy = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
            {{"Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{account}:root"}}, "Action": "kms:*", "Resource": "*"}},
            {{"Effect": "Deny", "Principal": {{"AWS": "arn:aws:iam::{account}:root"}}, "Action": "kms:Encrypt", "Resource": "*"}}]}}"#
    );
    let context = EncryptionContext::new();
    let mut keys = Vec::new();
    {
        let hsm = Hsm::init(dir.path(), &pass(), options(clock.clone(), 2)).unwrap();
        let g = hsm.gate(&root);
        for i in 0..6 {
            let key = g.create_key(CreateKeyRequest::default()).unwrap().key_id;
            if i % 2 == 0 {
                g.put_key_policy(&key, None, &policy, true).unwrap();
            }
            keys.push(key);
        }
        // Every key used once more: the 2-entry cache evicted most policies.
        for (i, key) in keys.iter().enumerate() {
            let denied = g.encrypt(key, b"x", &context, None).is_err();
            assert_eq!(denied, i % 2 == 0, "key {i}");
        }
    }
    let hsm = Hsm::open(dir.path(), &pass(), options(clock, 2)).unwrap();
    let g = hsm.gate(&root);
    for _ in 0..2 {
        for (i, key) in keys.iter().enumerate() {
            let result = g.encrypt(key, b"x", &context, None);
            assert_eq!(
                matches!(result, Err(crate::Error::AccessDenied(_))),
                i % 2 == 0,
                "key {i}"
            );
            let text = g.get_key_policy(key, None).unwrap();
            assert_eq!(text.contains("Deny"), i % 2 == 0);
        }
    }
}

#[test]
fn grants_are_read_per_key_when_used_and_retirable_ones_page_through_an_index() {
    use crate::grants::{CreateGrantRequest, GrantOperation};
    use crate::identity::{Caller, Principal};
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    let root = Caller::new(Principal::Root, "test");
    let account = crate::identity::Account::default().account_id;
    let root_arn = format!("arn:aws:iam::{account}:root");
    let mut keys = Vec::new();
    let mut retirable = Vec::new();
    {
        let hsm = Hsm::init(dir.path(), &pass(), options(clock.clone(), 2)).unwrap();
        let g = hsm.gate(&root);
        for i in 0..5 {
            let key = g.create_key(CreateKeyRequest::default()).unwrap().key_id;
            for j in 0..3 {
                let out = g
                    .create_grant(CreateGrantRequest {
                        key_id: key.clone(),
                        grantee_principal: root_arn.clone(),
                        retiring_principal: (j != 1).then(|| root_arn.clone()),
                        operations: vec![GrantOperation::Decrypt],
                        name: Some(format!("g{i}{j}")),
                        ..Default::default()
                    })
                    .unwrap();
                if j != 1 {
                    retirable.push(out.grant_id);
                }
            }
            keys.push(key);
        }
    }
    retirable.sort();
    let hsm = Hsm::open(dir.path(), &pass(), options(clock, 2)).unwrap();
    let g = hsm.gate(&root);
    // Each key's grants, read back though the cache holds two keys.
    for key in keys.iter().chain(keys.iter()) {
        let page = g.list_grants(key, None, None, Some(2), None).unwrap();
        assert_eq!(page.items.len(), 2);
        let marker = page.next_marker.unwrap();
        let rest = g
            .list_grants(key, None, None, Some(2), Some(&marker))
            .unwrap();
        assert_eq!(rest.items.len(), 1);
        assert!(rest.next_marker.is_none());
    }
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = g
            .list_retirable_grants(&root_arn, Some(3), marker.as_deref())
            .unwrap();
        seen.extend(page.items.into_iter().map(|e| e.grant_id));
        match page.next_marker {
            Some(m) => marker = Some(m),
            None => break,
        }
    }
    assert_eq!(seen, retirable);
    // A revoked grant is gone at once, whether its key's set is cached.
    g.revoke_grant(&keys[0], &retirable_of(&g, &keys[0])[0])
        .unwrap();
    assert_eq!(
        g.list_grants(&keys[0], None, None, None, None)
            .unwrap()
            .items
            .len(),
        2
    );
    // The same name again on an evicted key finds the existing grant.
    let again = g
        .create_grant(CreateGrantRequest {
            key_id: keys[4].clone(),
            grantee_principal: root_arn.clone(),
            retiring_principal: None,
            operations: vec![GrantOperation::Decrypt],
            name: Some("g41".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        g.list_grants(&keys[4], None, None, None, None)
            .unwrap()
            .items
            .len(),
        3
    );
    assert!(g
        .list_grants(&keys[4], Some(&again.grant_id), None, None, None)
        .unwrap()
        .items
        .iter()
        .any(|e| e.name.as_deref() == Some("g41")));
}

fn retirable_of(g: &crate::Gate<'_>, key: &str) -> Vec<String> {
    g.list_grants(key, None, None, None, None)
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.grant_id)
        .collect()
}
