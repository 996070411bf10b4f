//! Versioned rotation: on demand, on schedule through `tick`, and the KMS
//! rules for disabled and pending-deletion keys (EnableKeyRotation,
//! GetKeyRotationStatus and RotateKeyOnDemand API references).

mod common;

use common::*;
use hsm_core::{KeySpec, KeyUsage, RotationType};

#[test]
fn old_ciphertexts_decrypt_after_two_rotations_and_reencrypt_moves_them_to_v3() {
    let t = TestHsm::new();
    let key = t.symmetric_key("rotating");
    let id = key.key_id.clone();
    let arn = key_arn(&id);
    assert_eq!(key.current_key_version, 1);
    let context = ctx(&[("app", "rotation")]);
    let encrypt = |text: &[u8]| ok(t.hsm.encrypt(&id, text, &context, None), "encrypt");
    let v1 = encrypt(b"made under v1").ciphertext_blob;

    t.advance_days(1);
    let answer = ok(t.hsm.rotate_key_on_demand(&id), "rotate");
    assert_eq!(answer, arn, "RotateKeyOnDemand returns the key ARN");
    assert_eq!(
        ok(t.hsm.describe_key(&id), "describe").current_key_version,
        2
    );
    let v2 = encrypt(b"made under v2").ciphertext_blob;
    t.advance_days(1);
    ok(t.hsm.rotate_key_on_demand(&arn), "rotate by ARN");
    let meta = ok(t.hsm.describe_key(&id), "describe");
    assert_eq!(meta.current_key_version, 3);
    let v3 = encrypt(b"made under v3").ciphertext_blob;

    // Every version keeps decrypting; the blob says which one to use.
    assert_eq!(decrypt_ok(&t.hsm, &v1, &context), b"made under v1");
    assert_eq!(decrypt_ok(&t.hsm, &v2, &context), b"made under v2");
    assert_eq!(decrypt_ok(&t.hsm, &v3, &context), b"made under v3");
    assert_eq!(blob_key_version(&v1), 1, "v1 blob");
    assert_eq!(blob_key_version(&v2), 2, "v2 blob");
    assert_eq!(blob_key_version(&v3), 3, "new blobs name v3");
    assert_eq!(blob_key_id(&v3), id, "the blob names its key");

    // ListKeyRotations: the two on-demand versions, oldest first.
    let rotations = t.all_rotations(&id);
    let versions: Vec<u32> = rotations.iter().map(|r| r.key_version).collect();
    assert_eq!(versions, [2, 3]);
    assert!(rotations
        .iter()
        .all(|r| r.rotation_type == RotationType::OnDemand));
    assert!(rotations.iter().all(|r| r.key_id == id || r.key_id == arn));
    assert!(rotations[0].rotation_date < rotations[1].rotation_date);
    let status = ok(t.hsm.get_key_rotation_status(&id), "status");
    assert!(
        !status.key_rotation_enabled,
        "on demand does not enable the schedule"
    );
    assert!(status.on_demand_rotation_start_date.is_some());

    // ReEncrypt onto the same key moves the old ciphertext to v3.
    let moved = ok(
        t.hsm.re_encrypt(&v1, &context, Some(&id), &id, &context),
        "re_encrypt",
    );
    assert_eq!(moved.source_key_id, arn);
    assert_eq!(moved.key_id, arn);
    assert_ne!(moved.ciphertext_blob, v1);
    assert_eq!(
        blob_key_version(&moved.ciphertext_blob),
        3,
        "re-encrypted blob"
    );
    assert_eq!(
        decrypt_ok(&t.hsm, &moved.ciphertext_blob, &context),
        b"made under v1"
    );
    // A wrong source context is refused and nothing is produced.
    expect_err(
        t.hsm
            .re_encrypt(&v1, &ctx(&[("app", "other")]), None, &id, &context),
        "InvalidCiphertextException",
    );
    assert_eq!(
        ok(t.hsm.describe_key(&id), "describe").current_key_version,
        3
    );
}

#[test]
fn reencrypt_to_another_key_binds_the_new_key_and_context() {
    let t = TestHsm::new();
    let source = t.symmetric_key("source").key_id;
    let dest = t.symmetric_key("destination").key_id;
    let old_ctx = ctx(&[("stage", "old")]);
    let new_ctx = ctx(&[("stage", "new")]);
    let blob = ok(t.hsm.encrypt(&source, b"moving", &old_ctx, None), "encrypt").ciphertext_blob;
    ok(t.hsm.rotate_key_on_demand(&source), "rotate source");
    let out = ok(
        t.hsm
            .re_encrypt(&blob, &old_ctx, Some(&source), &dest, &new_ctx),
        "re_encrypt",
    );
    assert_eq!(out.source_key_id, key_arn(&source));
    assert_eq!(out.key_id, key_arn(&dest));
    assert_eq!(
        decrypt_ok(&t.hsm, &out.ciphertext_blob, &new_ctx),
        b"moving"
    );
    expect_err(
        t.hsm.decrypt(&out.ciphertext_blob, &old_ctx, None, None),
        "InvalidCiphertextException",
    );
    expect_err(
        t.hsm
            .decrypt(&out.ciphertext_blob, &new_ctx, Some(&source), None),
        "IncorrectKeyException",
    );
    // Naming the wrong source key is IncorrectKey, not a silent success.
    expect_err(
        t.hsm
            .re_encrypt(&blob, &old_ctx, Some(&dest), &dest, &new_ctx),
        "IncorrectKeyException",
    );
}

#[test]
fn scheduled_rotation_happens_through_tick_once_the_period_has_passed() {
    let t = TestHsm::new();
    let id = t.symmetric_key("scheduled").key_id;
    let context = no_ctx();
    let v1 = ok(t.hsm.encrypt(&id, b"v1", &context, None), "encrypt").ciphertext_blob;
    ok(t.hsm.enable_key_rotation(&id, Some(90)), "enable rotation");
    let status = ok(t.hsm.get_key_rotation_status(&id), "status");
    assert!(status.key_rotation_enabled);
    assert_eq!(status.rotation_period_in_days, Some(90));
    let due = status.next_rotation_date.expect("next rotation date");
    assert!(due > t.now());

    t.advance_seconds(due - t.now() - 1);
    assert!(t.tick().rotated.is_empty(), "rotated before it was due");
    assert_eq!(
        ok(t.hsm.describe_key(&id), "describe").current_key_version,
        1
    );

    t.advance_seconds(1);
    let report = t.tick();
    assert_eq!(report.rotated.len(), 1, "{report:?}");
    assert!(report.rotated[0] == id || report.rotated[0] == key_arn(&id));
    assert_eq!(
        ok(t.hsm.describe_key(&id), "describe").current_key_version,
        2
    );
    let rotations = t.all_rotations(&id);
    assert_eq!(rotations.len(), 1);
    assert_eq!(rotations[0].key_version, 2);
    assert_eq!(rotations[0].rotation_type, RotationType::Automatic);
    let next = ok(t.hsm.get_key_rotation_status(&id), "status")
        .next_rotation_date
        .expect("still scheduled");
    assert!(next > due, "the schedule moves on");

    // Ticking again at the same time does nothing more.
    assert!(t.tick().rotated.is_empty());
    assert_eq!(
        ok(t.hsm.describe_key(&id), "describe").current_key_version,
        2
    );
    let v2 = ok(t.hsm.encrypt(&id, b"v2", &context, None), "encrypt").ciphertext_blob;
    assert_eq!(blob_key_version(&v2), 2);

    // The next period rotates again.
    t.advance_seconds(next - t.now());
    assert_eq!(t.tick().rotated.len(), 1);
    assert_eq!(
        ok(t.hsm.describe_key(&id), "describe").current_key_version,
        3
    );
    assert_eq!(decrypt_ok(&t.hsm, &v1, &context), b"v1");
    assert_eq!(decrypt_ok(&t.hsm, &v2, &context), b"v2");
}

#[test]
fn rotation_period_must_be_90_to_2560_days_and_defaults_to_365() {
    let t = TestHsm::new();
    let id = t.symmetric_key("periods").key_id;
    for bad in [0, 1, 89, 2561, u32::MAX] {
        expect_err(
            t.hsm.enable_key_rotation(&id, Some(bad)),
            "ValidationException",
        );
        let status = ok(t.hsm.get_key_rotation_status(&id), "status");
        assert!(
            !status.key_rotation_enabled,
            "a refused period enabled rotation"
        );
    }
    for good in [90, 2560] {
        ok(t.hsm.enable_key_rotation(&id, Some(good)), "enable");
        let status = ok(t.hsm.get_key_rotation_status(&id), "status");
        assert_eq!(status.rotation_period_in_days, Some(good));
    }
    ok(
        t.hsm.enable_key_rotation(&id, None),
        "enable with the default",
    );
    let status = ok(t.hsm.get_key_rotation_status(&id), "status");
    assert!(status.key_rotation_enabled);
    assert_eq!(status.rotation_period_in_days, Some(365));
    // A refused change keeps the current period.
    expect_err(
        t.hsm.enable_key_rotation(&id, Some(89)),
        "ValidationException",
    );
    let status = ok(t.hsm.get_key_rotation_status(&id), "status");
    assert_eq!(status.rotation_period_in_days, Some(365));
}

#[test]
fn disable_key_rotation_stops_the_schedule() {
    let t = TestHsm::new();
    let id = t.symmetric_key("stopped").key_id;
    ok(t.hsm.enable_key_rotation(&id, Some(90)), "enable");
    ok(t.hsm.disable_key_rotation(&id), "disable");
    let status = ok(t.hsm.get_key_rotation_status(&id), "status");
    assert!(!status.key_rotation_enabled);
    assert_eq!(status.next_rotation_date, None);
    t.advance_days(400);
    assert!(t.tick().rotated.is_empty());
    assert_eq!(
        ok(t.hsm.describe_key(&id), "describe").current_key_version,
        1
    );
    assert!(t.all_rotations(&id).is_empty());
    // Disabling twice is fine, as in KMS.
    ok(t.hsm.disable_key_rotation(&id), "disable again");
}

#[test]
fn a_disabled_key_is_not_rotated_and_rotates_at_once_when_enabled_overdue() {
    let t = TestHsm::new();
    let id = t.symmetric_key("disabled while due").key_id;
    let early = t.symmetric_key("enabled before due").key_id;
    for key in [&id, &early] {
        ok(t.hsm.enable_key_rotation(key, Some(90)), "enable rotation");
        ok(t.hsm.disable_key(key), "disable key");
    }
    t.advance_days(10);
    ok(
        t.hsm.enable_key(&early),
        "enable before the rotation is due",
    );
    assert_eq!(
        ok(t.hsm.describe_key(&early), "describe").current_key_version,
        1
    );

    t.advance_days(90);
    let report = t.tick();
    assert!(
        !report.rotated.iter().any(|k| k.contains(id.as_str())),
        "a disabled key was rotated: {report:?}"
    );
    assert_eq!(
        ok(t.hsm.describe_key(&id), "describe").current_key_version,
        1
    );
    // Disabling the key does not change its rotation status (KMS).
    assert!(ok(t.hsm.get_key_rotation_status(&id), "status").key_rotation_enabled);
    // The enabled key did rotate meanwhile.
    assert_eq!(
        ok(t.hsm.describe_key(&early), "describe").current_key_version,
        2
    );

    // Enabling an overdue key rotates it at once, without waiting for a tick.
    ok(t.hsm.enable_key(&id), "enable key");
    assert_eq!(
        ok(t.hsm.describe_key(&id), "describe").current_key_version,
        2
    );
    let rotations = t.all_rotations(&id);
    assert_eq!(rotations.len(), 1);
    assert_eq!(rotations[0].rotation_type, RotationType::Automatic);
    assert!(t.tick().rotated.is_empty(), "no second rotation");
    assert_eq!(
        ok(t.hsm.describe_key(&id), "describe").current_key_version,
        2
    );
}

#[test]
fn a_key_pending_deletion_is_not_rotated_and_rotates_when_enabled_after_cancel() {
    let t = TestHsm::new();
    let id = t.symmetric_key("pending").key_id;
    ok(t.hsm.enable_key_rotation(&id, Some(90)), "enable rotation");
    t.advance_days(80);
    ok(t.hsm.schedule_key_deletion(&id, Some(30)), "schedule");
    t.advance_days(20); // overdue by ten days, still within the window
    let report = t.tick();
    assert!(report.rotated.is_empty(), "{report:?}");
    assert!(report.destroyed.is_empty(), "{report:?}");
    assert_eq!(
        ok(t.hsm.describe_key(&id), "describe").current_key_version,
        1
    );
    expect_err(t.hsm.rotate_key_on_demand(&id), "KMSInvalidStateException");

    // Cancelling restores the original rotation settings; the key is
    // Disabled, so still no rotation; enabling rotates the overdue key at once.
    ok(t.hsm.cancel_key_deletion(&id), "cancel");
    let status = ok(t.hsm.get_key_rotation_status(&id), "status");
    assert!(
        status.key_rotation_enabled,
        "cancel restores the rotation status"
    );
    assert_eq!(status.rotation_period_in_days, Some(90));
    assert!(t.tick().rotated.is_empty());
    assert_eq!(
        ok(t.hsm.describe_key(&id), "describe").current_key_version,
        1
    );
    ok(t.hsm.enable_key(&id), "enable");
    assert_eq!(
        ok(t.hsm.describe_key(&id), "describe").current_key_version,
        2
    );
}

/// GetKeyRotationStatus API reference: "Pending deletion: While a KMS key is
/// pending deletion, its key rotation status is false and KMS does not
/// rotate the key material. If you cancel the deletion, the original key
/// rotation status returns to true."
#[test]
fn rotation_status_reads_false_while_pending_deletion_and_returns_on_cancel() {
    let t = TestHsm::new();
    let id = t.symmetric_key("pending").key_id;
    ok(t.hsm.enable_key_rotation(&id, Some(90)), "enable rotation");
    ok(t.hsm.schedule_key_deletion(&id, Some(30)), "schedule");
    let status = ok(t.hsm.get_key_rotation_status(&id), "status");
    assert!(!status.key_rotation_enabled, "pending deletion reads false");
    ok(t.hsm.cancel_key_deletion(&id), "cancel");
    let status = ok(t.hsm.get_key_rotation_status(&id), "status");
    assert!(status.key_rotation_enabled, "cancel restores true");
    assert_eq!(status.rotation_period_in_days, Some(90));
}

#[test]
fn on_demand_rotation_does_not_move_the_schedule() {
    let t = TestHsm::new();
    let id = t.symmetric_key("both").key_id;
    ok(t.hsm.enable_key_rotation(&id, Some(90)), "enable");
    let due = ok(t.hsm.get_key_rotation_status(&id), "status")
        .next_rotation_date
        .expect("scheduled");
    t.advance_days(10);
    ok(t.hsm.rotate_key_on_demand(&id), "on demand");
    let status = ok(t.hsm.get_key_rotation_status(&id), "status");
    assert_eq!(status.next_rotation_date, Some(due), "schedule unchanged");
    assert!(status.key_rotation_enabled);
    t.advance_seconds(due - t.now());
    assert_eq!(t.tick().rotated.len(), 1);
    let types: Vec<RotationType> = t
        .all_rotations(&id)
        .iter()
        .map(|r| r.rotation_type)
        .collect();
    assert_eq!(types, [RotationType::OnDemand, RotationType::Automatic]);
    assert_eq!(
        ok(t.hsm.describe_key(&id), "describe").current_key_version,
        3
    );
}

#[test]
fn rotation_is_refused_for_asymmetric_and_hmac_keys() {
    let t = TestHsm::new();
    for (spec, usage) in [
        (KeySpec::EccNistP256, KeyUsage::SignVerify),
        (KeySpec::Hmac256, KeyUsage::GenerateVerifyMac),
    ] {
        let id = t.key_of(spec, usage).key_id;
        let unsupported = "UnsupportedOperationException";
        expect_err(t.hsm.enable_key_rotation(&id, None), unsupported);
        expect_err(t.hsm.rotate_key_on_demand(&id), unsupported);
        expect_err(t.hsm.disable_key_rotation(&id), unsupported);
        let meta = ok(t.hsm.describe_key(&id), "describe");
        assert_eq!(meta.current_key_version, 1, "{spec}");
        assert!(t.tick().rotated.is_empty());
    }
}

/// EnableKeyRotation / DisableKeyRotation API references: rotation of
/// asymmetric and HMAC keys cannot be enabled; "The key rotation status of
/// these KMS keys is always false." GetKeyRotationStatus answers for them.
#[test]
fn rotation_status_of_asymmetric_and_hmac_keys_reads_false() {
    let t = TestHsm::new();
    for (spec, usage) in [
        (KeySpec::EccNistP256, KeyUsage::SignVerify),
        (KeySpec::Hmac256, KeyUsage::GenerateVerifyMac),
    ] {
        let id = t.key_of(spec, usage).key_id;
        let status = ok(t.hsm.get_key_rotation_status(&id), "status");
        assert!(!status.key_rotation_enabled, "{spec}");
        assert_eq!(status.next_rotation_date, None, "{spec}");
    }
}

#[test]
fn list_key_rotations_pages_in_version_order() {
    let t = TestHsm::new();
    let id = t.symmetric_key("many versions").key_id;
    for _ in 0..5 {
        t.advance_days(1);
        ok(t.hsm.rotate_key_on_demand(&id), "rotate");
    }
    let first = ok(t.hsm.list_key_rotations(&id, Some(2), None), "page 1");
    assert_eq!(first.items.len(), 2);
    assert!(first.truncated());
    let versions: Vec<u32> = t.all_rotations(&id).iter().map(|r| r.key_version).collect();
    assert_eq!(versions, [2, 3, 4, 5, 6]);
    expect_err(
        t.hsm.list_key_rotations(&id, Some(0), None),
        "ValidationException",
    );
    expect_err(
        t.hsm.list_key_rotations(&id, Some(1001), None),
        "ValidationException",
    );
    expect_err(
        t.hsm.list_key_rotations("alias/none", None, None),
        "NotFoundException",
    );
}

/// Hsm is shared across threads: encryptions racing rotations all decrypt,
/// each thread sees versions only move forward, and no rotation is lost.
#[test]
fn concurrent_encryption_and_rotation_lose_nothing() {
    let t = TestHsm::new();
    let id = t.symmetric_key("busy").key_id;
    let context = ctx(&[("load", "concurrent")]);
    let made: Vec<(String, Vec<u8>)> = std::thread::scope(|s| {
        let rotator = s.spawn(|| {
            for _ in 0..5 {
                ok(t.hsm.rotate_key_on_demand(&id), "rotate");
            }
        });
        let workers: Vec<_> = (0..3)
            .map(|w| {
                let (t, id, context) = (&t, &id, &context);
                s.spawn(move || {
                    let mut out = Vec::new();
                    let mut last_version = 0;
                    for i in 0..40 {
                        let text = format!("worker {w} message {i}");
                        let r = t.hsm.encrypt(id, text.as_bytes(), context, None);
                        let blob = ok(r, "encrypt").ciphertext_blob;
                        let version = blob_key_version(&blob);
                        assert!(version >= last_version, "version went backwards");
                        last_version = version;
                        out.push((text, blob));
                    }
                    out
                })
            })
            .collect();
        rotator.join().unwrap();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert_eq!(made.len(), 120);
    for (text, blob) in &made {
        assert_eq!(decrypt_ok(&t.hsm, blob, &context), text.as_bytes());
    }
    assert_eq!(
        ok(t.hsm.describe_key(&id), "describe").current_key_version,
        6
    );
    let versions: Vec<u32> = t.all_rotations(&id).iter().map(|r| r.key_version).collect();
    assert_eq!(versions, [2, 3, 4, 5, 6]);
}

/// The material cache is only a cache: with room for one version (or
/// none), interleaved use of many keys and versions stays correct.
#[test]
fn a_tiny_material_cache_still_serves_every_key_and_version() {
    for capacity in [0, 1, 2] {
        let t = TestHsm::with_options(|o| o.cache_capacity = capacity);
        let keys: Vec<String> = (0..3)
            .map(|i| t.symmetric_key(&i.to_string()).key_id)
            .collect();
        let mut made = Vec::new();
        for round in 0..3 {
            for key in &keys {
                let text = format!("{key} round {round}");
                let r = t.hsm.encrypt(key, text.as_bytes(), &no_ctx(), None);
                made.push((text, ok(r, "encrypt").ciphertext_blob));
                ok(t.hsm.rotate_key_on_demand(key), "rotate");
            }
        }
        for (text, blob) in made.iter().rev().chain(made.iter()) {
            assert_eq!(
                decrypt_ok(&t.hsm, blob, &no_ctx()),
                text.as_bytes(),
                "capacity {capacity}"
            );
        }
    }
}
