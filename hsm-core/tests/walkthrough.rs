//! Issue 3's user story: the crypto-shredding walkthrough
//! (../shared/seeds/000_af6780e211d63d0f.txt), end to end through the API.

mod common;

use common::*;
use hsm_core::clock::DAY;
use hsm_core::{EncryptionAlgorithm, KeySpec, KeyState, KeyUsage, Origin};

const MESSAGES: [&[u8]; 3] = [
    b"customer 4711: invoice archive",
    b"customer 4711: support transcript",
    b"customer 4711: \x00\x01 binary photo bytes \xff",
];

fn bucket_ctx() -> hsm_core::EncryptionContext {
    ctx(&[
        ("bucket", "tinfoil-bucket"),
        ("purpose", "crypto-shredding"),
    ])
}

#[track_caller]
fn assert_all_decrypt(t: &TestHsm, blobs: &[Vec<u8>], arn: &str) {
    for (blob, message) in blobs.iter().zip(MESSAGES) {
        let out = ok(t.hsm.decrypt(blob, &bucket_ctx(), None, None), "decrypt");
        assert_eq!(&out.plaintext[..], message);
        assert_eq!(out.key_id, arn, "Decrypt names the key by its ARN");
        assert_eq!(
            out.encryption_algorithm,
            EncryptionAlgorithm::SymmetricDefault
        );
    }
}

#[track_caller]
fn assert_none_decrypt(t: &TestHsm, blobs: &[Vec<u8>], expected: &str) {
    for blob in blobs {
        expect_err(t.hsm.decrypt(blob, &bucket_ctx(), None, None), expected);
    }
}

#[test]
fn crypto_shredding_walkthrough() {
    let t = TestHsm::new();

    // Create the key and give it a readable name, as in the post.
    let key = t.symmetric_key("tinfoil-key: S3 objects of customer 4711");
    let id = key.key_id.clone();
    let arn = key_arn(&id);
    assert_eq!(key.arn, arn);
    assert_eq!(key.key_state, KeyState::Enabled);
    assert_eq!(key.key_spec, KeySpec::SymmetricDefault);
    assert_eq!(key.key_usage, KeyUsage::EncryptDecrypt);
    assert_eq!(key.origin, Origin::AwsKms);
    assert_eq!(key.current_key_version, 1);
    assert_eq!(key.deletion_date, None);
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "key id {id} is a UUID");
    ok(t.hsm.create_alias("alias/tinfoil-key", &id), "create_alias");

    // A bystander key that must survive the whole story.
    let other = t.symmetric_key("another customer");
    let other_blob = ok(
        t.hsm
            .encrypt(&other.key_id, b"keep me", &bucket_ctx(), None),
        "encrypt under the other key",
    )
    .ciphertext_blob;

    // Three objects encrypted with a context, naming the key three ways.
    let names = [id.clone(), "alias/tinfoil-key".to_string(), arn.clone()];
    let blobs: Vec<Vec<u8>> = MESSAGES
        .iter()
        .zip(&names)
        .map(|(message, name)| {
            let out = ok(t.hsm.encrypt(name, message, &bucket_ctx(), None), "encrypt");
            assert_eq!(out.key_id, arn, "Encrypt names the key by its ARN");
            assert_ne!(&out.ciphertext_blob[..], *message);
            out.ciphertext_blob
        })
        .collect();
    assert_all_decrypt(&t, &blobs, &arn);

    // Disable: an effective revocation.
    ok(t.hsm.disable_key("alias/tinfoil-key"), "disable_key");
    assert_eq!(t.state(&id), KeyState::Disabled);
    assert_none_decrypt(&t, &blobs, "DisabledException");
    expect_err(
        t.hsm.encrypt(&id, b"more", &bucket_ctx(), None),
        "DisabledException",
    );

    // Enable: access restored.
    ok(t.hsm.enable_key(&arn), "enable_key");
    assert_eq!(t.state(&id), KeyState::Enabled);
    assert_all_decrypt(&t, &blobs, &arn);

    // Schedule deletion for the minimum of 7 days.
    let scheduled = ok(t.hsm.schedule_key_deletion(&id, Some(7)), "schedule");
    assert_eq!(
        scheduled.key_id, arn,
        "ScheduleKeyDeletion returns the key ARN"
    );
    assert_eq!(scheduled.key_state, KeyState::PendingDeletion);
    assert_eq!(scheduled.pending_window_in_days, 7);
    assert_eq!(scheduled.deletion_date, t.now() + 7 * DAY);
    let meta = ok(t.hsm.describe_key(&id), "describe_key");
    assert_eq!(meta.key_state, KeyState::PendingDeletion);
    assert_eq!(meta.deletion_date, Some(scheduled.deletion_date));
    assert_eq!(meta.pending_deletion_window_in_days, Some(7));
    assert_none_decrypt(&t, &blobs, "KMSInvalidStateException");
    expect_err(t.hsm.enable_key(&id), "KMSInvalidStateException");

    // It was a mistake: cancel. The key comes back Disabled.
    let cancelled = ok(t.hsm.cancel_key_deletion("alias/tinfoil-key"), "cancel");
    assert_eq!(cancelled, arn, "CancelKeyDeletion returns the key ARN");
    let meta = ok(t.hsm.describe_key(&id), "describe_key");
    assert_eq!(meta.key_state, KeyState::Disabled);
    assert_eq!(meta.deletion_date, None);
    assert_eq!(meta.pending_deletion_window_in_days, None);
    assert_none_decrypt(&t, &blobs, "DisabledException");
    // The cancelled schedule must not fire later.
    t.advance_days(8);
    assert!(t.tick().destroyed.is_empty());
    assert_eq!(t.state(&id), KeyState::Disabled);

    ok(t.hsm.enable_key(&id), "enable_key");
    assert_all_decrypt(&t, &blobs, &arn);

    // Schedule again; the waiting period runs to the second.
    let scheduled = ok(t.hsm.schedule_key_deletion(&arn, Some(7)), "schedule");
    t.advance_seconds(7 * DAY - 1);
    let report = t.tick();
    assert!(report.destroyed.is_empty(), "destroyed early: {report:?}");
    assert_eq!(t.state(&id), KeyState::PendingDeletion);
    assert_eq!(t.now(), scheduled.deletion_date - 1);
    t.advance_seconds(1);
    let report = t.tick();
    assert!(
        report.destroyed.iter().any(|k| *k == id || *k == arn),
        "tick at the deletion date destroys the key: {report:?}"
    );
    assert_eq!(report.destroyed.len(), 1, "only that key: {report:?}");

    // The key is gone under every name.
    for name in [id.as_str(), arn.as_str(), "alias/tinfoil-key"] {
        expect_err(t.hsm.describe_key(name), "NotFoundException");
        expect_err(t.hsm.enable_key(name), "NotFoundException");
        expect_err(t.hsm.cancel_key_deletion(name), "NotFoundException");
        expect_err(
            t.hsm.encrypt(name, b"x", &bucket_ctx(), None),
            "NotFoundException",
        );
    }
    assert!(!t.all_key_ids().contains(&id));
    assert!(t.all_aliases(None).iter().all(|a| a.target_key_id != id));
    assert!(t
        .all_aliases(None)
        .iter()
        .all(|a| a.alias_name != "alias/tinfoil-key"));

    // The three ciphertexts never decrypt again, with or without a key id.
    let never = |t: &TestHsm| {
        for blob in &blobs {
            let r = t.hsm.decrypt(blob, &bucket_ctx(), None, None);
            expect_err_in(r, &["NotFoundException", "InvalidCiphertextException"]);
            let r = t.hsm.decrypt(blob, &bucket_ctx(), Some(&id), None);
            expect_err_in(r, &["NotFoundException", "InvalidCiphertextException"]);
            let r = t
                .hsm
                .re_encrypt(blob, &bucket_ctx(), None, &other.key_id, &bucket_ctx());
            expect_err_in(r, &["NotFoundException", "InvalidCiphertextException"]);
        }
    };
    never(&t);

    // A later tick has nothing left to do; the bystander is untouched.
    t.advance_days(30);
    assert!(t.tick().destroyed.is_empty());
    assert_eq!(decrypt_ok(&t.hsm, &other_blob, &bucket_ctx()), b"keep me");

    // Not even after a restart, and the alias name is free again.
    let t = t.reopen();
    never(&t);
    expect_err(t.hsm.describe_key(&id), "NotFoundException");
    ok(
        t.hsm.create_alias("alias/tinfoil-key", &other.key_id),
        "alias name reusable after the purge",
    );
    // Reusing the alias does not bring the data back.
    for blob in &blobs {
        let r = t
            .hsm
            .decrypt(blob, &bucket_ctx(), Some("alias/tinfoil-key"), None);
        assert!(r.is_err(), "old ciphertext decrypted under a reused alias");
    }
    assert_eq!(decrypt_ok(&t.hsm, &other_blob, &bucket_ctx()), b"keep me");
}

/// The purge removes every version's wrapped material from the store's
/// files (database and WAL alike), found without knowing the schema: the
/// blobs that appeared in the database when the key was created and rotated.
#[test]
fn purged_key_material_is_gone_from_every_file() {
    let t = TestHsm::new();
    let keeper = t.symmetric_key("keeper");
    let t = t.reopen(); // let the store settle, then look at it closed
    let dir = t.dir.clone();
    let clock = t.clock.clone();
    drop(t.hsm);
    let before = sqlite_blobs(&dir, 32);

    let hsm = ok(
        hsm_core::Hsm::open(&dir, &passphrase(), options(&clock)),
        "open",
    );
    let victim = ok(
        hsm.create_key(hsm_core::CreateKeyRequest {
            description: "victim".into(),
            ..Default::default()
        }),
        "create victim",
    );
    ok(hsm.rotate_key_on_demand(&victim.key_id), "rotate");
    ok(hsm.rotate_key_on_demand(&victim.key_id), "rotate");
    let blob = ok(
        hsm.encrypt(&victim.key_id, b"secret", &no_ctx(), None),
        "enc",
    )
    .ciphertext_blob;
    drop(hsm);
    let after = sqlite_blobs(&dir, 32);
    let victim_blobs: Vec<Vec<u8>> = after.difference(&before).cloned().collect();
    assert!(
        victim_blobs.len() >= 3,
        "expected the wrapped material of 3 versions among the new blobs, found {}",
        victim_blobs.len()
    );
    for b in &victim_blobs {
        assert!(
            bytes_occur_in_dir(&dir, b),
            "scan sanity: blob visible on disk"
        );
    }

    let hsm = ok(
        hsm_core::Hsm::open(&dir, &passphrase(), options(&clock)),
        "open",
    );
    ok(
        hsm.schedule_key_deletion(&victim.key_id, Some(7)),
        "schedule",
    );
    clock.advance(7 * DAY);
    let report = ok(hsm.tick(hsm_core::Clock::now(&*clock)), "tick");
    assert_eq!(report.destroyed.len(), 1, "{report:?}");

    // While the store is still open: nothing in the database, WAL or
    // anything else in the data directory holds the material.
    for b in &victim_blobs {
        assert!(
            !bytes_occur_in_dir(&dir, b),
            "a wrapped blob ({} bytes) of the destroyed key is still on disk",
            b.len()
        );
    }
    expect_err_in(
        hsm.decrypt(&blob, &no_ctx(), None, None),
        &["NotFoundException", "InvalidCiphertextException"],
    );
    // The other key and the store itself are fine.
    ok(hsm.encrypt(&keeper.key_id, b"x", &no_ctx(), None), "keeper");
    drop(hsm);
    for b in &victim_blobs {
        assert!(
            !bytes_occur_in_dir(&dir, b),
            "blob back on disk after close"
        );
    }
    let remaining = sqlite_blobs(&dir, 32);
    assert!(remaining.is_disjoint(&victim_blobs.iter().cloned().collect()));
}

/// Once the deletion date has passed the key is destroyed as far as any
/// caller can tell, even if `tick` has not run yet (a daemon that was down
/// for days, a request that beats the timer): CancelKeyDeletion must not
/// bring it back. (ScheduleKeyDeletion API reference: "Before the waiting
/// period ends, you can use CancelKeyDeletion ... After the waiting period
/// ends, KMS deletes the KMS key, its key material, and all KMS data
/// associated with it".)
#[test]
fn a_key_past_its_deletion_date_cannot_be_rescued_before_the_next_tick() {
    let t = TestHsm::new();
    let key = t.symmetric_key("overdue").key_id;
    let blob = ok(t.hsm.encrypt(&key, b"gone", &no_ctx(), None), "encrypt").ciphertext_blob;
    ok(t.hsm.schedule_key_deletion(&key, Some(7)), "schedule");
    t.advance_days(7);
    t.advance_seconds(3600);
    let gone = ["NotFoundException", "KMSInvalidStateException"];
    expect_err_in(t.hsm.cancel_key_deletion(&key), &gone);
    expect_err_in(t.hsm.enable_key(&key), &gone);
    let r = t.hsm.decrypt(&blob, &no_ctx(), None, None);
    assert!(r.is_err(), "decrypted after the deletion date");
    let report = t.tick();
    assert_eq!(
        report.destroyed.len(),
        1,
        "the purge still happens: {report:?}"
    );
    expect_err(t.hsm.describe_key(&key), "NotFoundException");
}

#[test]
fn schedule_key_deletion_window_is_7_to_30_days_defaulting_to_30() {
    let t = TestHsm::new();
    let key = t.symmetric_key("windows").key_id;
    for bad in [0, 1, 6, 31, 365, u32::MAX] {
        expect_err(
            t.hsm.schedule_key_deletion(&key, Some(bad)),
            "ValidationException",
        );
        let meta = ok(t.hsm.describe_key(&key), "describe");
        assert_eq!(meta.key_state, KeyState::Enabled, "refused window {bad}");
        assert_eq!(meta.deletion_date, None);
    }
    for (window, days) in [(Some(7), 7), (Some(30), 30), (None, 30)] {
        let s = ok(t.hsm.schedule_key_deletion(&key, window), "schedule");
        assert_eq!(s.pending_window_in_days, days);
        assert_eq!(s.deletion_date, t.now() + days as i64 * DAY);
        let meta = ok(t.hsm.describe_key(&key), "describe");
        assert_eq!(meta.pending_deletion_window_in_days, Some(days));
        ok(t.hsm.cancel_key_deletion(&key), "cancel");
        ok(t.hsm.enable_key(&key), "enable");
    }
}
