//! Limits and request validation: sizes, data keys, random bytes, the
//! encryption context, IncorrectKey, key references, aliases, tags,
//! deletion windows and paging. Every refusal changes nothing.

mod common;

use std::collections::BTreeSet;

use common::*;
use hsm_core::{CreateKeyRequest, DataKeySpec, EncryptionAlgorithm, KeySpec, KeyState, KeyUsage};

#[test]
fn plaintext_must_be_1_to_4096_bytes() {
    let t = TestHsm::new();
    let key = t.symmetric_key("sizes").key_id;
    for n in [1, 4096] {
        let blob = ok(t.hsm.encrypt(&key, &vec![7; n], &no_ctx(), None), "encrypt").ciphertext_blob;
        assert_eq!(decrypt_ok(&t.hsm, &blob, &no_ctx()), vec![7; n]);
    }
    for n in [0, 4097, 65536] {
        expect_err(
            t.hsm.encrypt(&key, &vec![7; n], &no_ctx(), None),
            "ValidationException",
        );
    }
}

#[test]
fn generate_data_key_takes_exactly_one_of_key_spec_and_number_of_bytes() {
    let t = TestHsm::new();
    let key = t.symmetric_key("data keys").key_id;
    let context = ctx(&[("file", "report.pdf")]);
    for (spec, len) in [(DataKeySpec::Aes128, 16), (DataKeySpec::Aes256, 32)] {
        let dk = ok(
            t.hsm.generate_data_key(&key, Some(spec), None, &context),
            "gdk",
        );
        let plain = dk.plaintext.expect("plaintext");
        assert_eq!(plain.len(), len, "{spec}");
        assert_eq!(dk.key_id, key_arn(&key));
        assert_eq!(
            decrypt_ok(&t.hsm, &dk.ciphertext_blob, &context),
            plain.to_vec()
        );
        expect_err(
            t.hsm.decrypt(&dk.ciphertext_blob, &no_ctx(), None, None),
            "InvalidCiphertextException",
        );
    }
    for n in [1, 1024] {
        let dk = ok(
            t.hsm.generate_data_key(&key, None, Some(n), &context),
            "gdk",
        );
        assert_eq!(dk.plaintext.expect("plaintext").len(), n as usize);
    }
    let both = t
        .hsm
        .generate_data_key(&key, Some(DataKeySpec::Aes256), Some(32), &context);
    expect_err(both, "ValidationException");
    expect_err(
        t.hsm.generate_data_key(&key, None, None, &context),
        "ValidationException",
    );
    for n in [0, 1025] {
        expect_err(
            t.hsm.generate_data_key(&key, None, Some(n), &context),
            "ValidationException",
        );
        expect_err(
            t.hsm
                .generate_data_key_without_plaintext(&key, None, Some(n), &context),
            "ValidationException",
        );
    }
    expect_err(
        t.hsm
            .generate_data_key_without_plaintext(&key, None, None, &context),
        "ValidationException",
    );

    // Without plaintext: only the wrapped copy, which decrypts to a key.
    let dk = ok(
        t.hsm
            .generate_data_key_without_plaintext(&key, Some(DataKeySpec::Aes256), None, &context),
        "gdk without plaintext",
    );
    assert!(dk.plaintext.is_none());
    assert_eq!(decrypt_ok(&t.hsm, &dk.ciphertext_blob, &context).len(), 32);
    // Two data keys are different keys.
    let a = ok(t.hsm.generate_data_key(&key, None, Some(32), &context), "a");
    let b = ok(t.hsm.generate_data_key(&key, None, Some(32), &context), "b");
    assert_ne!(a.plaintext.unwrap().to_vec(), b.plaintext.unwrap().to_vec());
}

#[test]
fn encryption_context_must_match_exactly_and_is_unambiguous() {
    let t = TestHsm::new();
    let key = t.symmetric_key("contexts").key_id;
    let encrypt = |c: &hsm_core::EncryptionContext| {
        ok(t.hsm.encrypt(&key, b"bound", c, None), "encrypt").ciphertext_blob
    };

    // Order of construction does not matter.
    let mut forward = no_ctx();
    forward.insert("b".into(), "2".into());
    forward.insert("a".into(), "1".into());
    let backward = ctx(&[("a", "1"), ("b", "2")]);
    assert_eq!(decrypt_ok(&t.hsm, &encrypt(&forward), &backward), b"bound");

    let blob = encrypt(&backward);
    for wrong in [
        no_ctx(),
        ctx(&[("a", "1")]),
        ctx(&[("a", "1"), ("b", "2"), ("c", "3")]),
        ctx(&[("a", "1"), ("b", "3")]),
        ctx(&[("a", "1"), ("B", "2")]),
        ctx(&[("a", "1"), ("b", "2 ")]),
    ] {
        expect_err(
            t.hsm.decrypt(&blob, &wrong, None, None),
            "InvalidCiphertextException",
        );
    }
    // Data made without a context needs none, and refuses one.
    let bare = encrypt(&no_ctx());
    expect_err(
        t.hsm.decrypt(&bare, &ctx(&[("a", "1")]), None, None),
        "InvalidCiphertextException",
    );
    expect_err(
        t.hsm.decrypt(&bare, &ctx(&[("", "")]), None, None),
        "InvalidCiphertextException",
    );

    // Pairs a sort-and-concatenate (or join with separators) encoding
    // confuses. Each must refuse the other's data, both ways.
    let ambiguous = [
        (ctx(&[("a", "bc")]), ctx(&[("ab", "c")])),
        (ctx(&[("a", "b")]), ctx(&[("ab", "")])),
        (ctx(&[("a", "b"), ("c", "")]), ctx(&[("a", "bc")])),
        (ctx(&[("a=b", "c")]), ctx(&[("a", "b=c")])),
        (ctx(&[("a", "b"), ("c", "d")]), ctx(&[("a", "b,c=d")])),
        (ctx(&[("a", "b"), ("c", "d")]), ctx(&[("a", "b&c=d")])),
        (ctx(&[("a", "b\0c")]), ctx(&[("a", "b"), ("c", "")])),
        (ctx(&[("", "ab")]), ctx(&[("ab", "")])),
    ];
    for (one, other) in &ambiguous {
        let blob = encrypt(one);
        assert_eq!(decrypt_ok(&t.hsm, &blob, one), b"bound");
        let r = t.hsm.decrypt(&blob, other, None, None);
        expect_err(r, "InvalidCiphertextException");
        let blob = encrypt(other);
        let r = t.hsm.decrypt(&blob, one, None, None);
        expect_err(r, "InvalidCiphertextException");
    }
}

#[test]
fn decrypt_naming_another_key_is_incorrect_key() {
    let t = TestHsm::new();
    let mine = t.symmetric_key("mine").key_id;
    let theirs = t.symmetric_key("theirs").key_id;
    ok(t.hsm.create_alias("alias/mine", &mine), "alias");
    ok(t.hsm.create_alias("alias/theirs", &theirs), "alias");
    let blob = ok(t.hsm.encrypt(&mine, b"mine", &no_ctx(), None), "encrypt").ciphertext_blob;

    let own_names = [
        mine.clone(),
        key_arn(&mine),
        "alias/mine".to_string(),
        alias_arn("alias/mine"),
    ];
    for name in &own_names {
        let out = ok(t.hsm.decrypt(&blob, &no_ctx(), Some(name), None), name);
        assert_eq!(&out.plaintext[..], b"mine");
    }
    let other_names = [
        theirs.clone(),
        key_arn(&theirs),
        "alias/theirs".to_string(),
        alias_arn("alias/theirs"),
    ];
    for name in &other_names {
        let r = t.hsm.decrypt(&blob, &no_ctx(), Some(name), None);
        expect_err(r, "IncorrectKeyException");
        let r = t
            .hsm
            .re_encrypt(&blob, &no_ctx(), Some(name), &mine, &no_ctx());
        expect_err(r, "IncorrectKeyException");
    }
    // A key id that names nothing is not a match either.
    let nobody = uuid::Uuid::new_v4().to_string();
    let r = t.hsm.decrypt(&blob, &no_ctx(), Some(&nobody), None);
    expect_err_in(r, &["NotFoundException", "IncorrectKeyException"]);
}

#[test]
fn every_key_argument_accepts_id_alias_and_both_arns() {
    let t = TestHsm::new();
    let key = t.symmetric_key("named four ways").key_id;
    ok(t.hsm.create_alias("alias/four/ways", &key), "alias");
    for name in [
        key.clone(),
        key_arn(&key),
        "alias/four/ways".into(),
        alias_arn("alias/four/ways"),
    ] {
        let meta = ok(t.hsm.describe_key(&name), &name);
        assert_eq!(meta.key_id, key);
        assert_eq!(meta.arn, key_arn(&key));
        let blob = ok(t.hsm.encrypt(&name, b"x", &no_ctx(), None), &name).ciphertext_blob;
        assert_eq!(decrypt_ok(&t.hsm, &blob, &no_ctx()), b"x");
        ok(t.hsm.list_resource_tags(&name, None, None), &name);
    }
    let missing_id = uuid::Uuid::new_v4().to_string();
    for name in [
        missing_id.clone(),
        key_arn(&missing_id),
        "alias/four".into(),
        "alias/four/ways/".into(),
        alias_arn("alias/nothing"),
    ] {
        expect_err(t.hsm.describe_key(&name), "NotFoundException");
    }
    // Names from another partition, account or region are not this key.
    for name in [
        format!("arn:aws:kms:us-east-1:999988887777:key/{key}"),
        format!("arn:aws:kms:eu-west-1:111122223333:key/{key}"),
        format!("arn:aws-cn:kms:us-east-1:111122223333:key/{key}"),
        format!("{}x", key_arn(&key)),
        String::new(),
        "four/ways".into(),
    ] {
        let r = t.hsm.describe_key(&name);
        expect_err_in(r, &["NotFoundException", "ValidationException"]);
    }
}

#[test]
fn a_key_or_algorithm_of_the_wrong_kind_is_invalid_key_usage() {
    let t = TestHsm::new();
    let signer = t.key_of(KeySpec::EccNistP256, KeyUsage::SignVerify).key_id;
    let r = t.hsm.encrypt(&signer, b"x", &no_ctx(), None);
    expect_err(r, "InvalidKeyUsageException");
    let r = t
        .hsm
        .generate_data_key(&signer, Some(DataKeySpec::Aes256), None, &no_ctx());
    expect_err(r, "InvalidKeyUsageException");
    // Encrypt API reference, InvalidKeyUsageException: "The encryption
    // algorithm ... is incompatible with the type of key material".
    let symmetric = t.symmetric_key("aes").key_id;
    for algorithm in [
        EncryptionAlgorithm::RsaesOaepSha1,
        EncryptionAlgorithm::RsaesOaepSha256,
    ] {
        let r = t.hsm.encrypt(&symmetric, b"x", &no_ctx(), Some(algorithm));
        expect_err(r, "InvalidKeyUsageException");
    }
}

#[test]
fn create_key_refusals_create_nothing() {
    let t = TestHsm::new();
    let long = |n: usize| "d".repeat(n);
    let ok_key = ok(
        t.hsm.create_key(CreateKeyRequest {
            description: long(8192),
            ..Default::default()
        }),
        "8192-character description",
    );
    assert_eq!(ok_key.description.len(), 8192);
    let too_many: Vec<_> = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
    let refusals = [
        (
            CreateKeyRequest {
                description: long(8193),
                ..Default::default()
            },
            "ValidationException",
        ),
        (
            CreateKeyRequest {
                key_spec: Some(KeySpec::SymmetricDefault),
                key_usage: Some(KeyUsage::SignVerify),
                ..Default::default()
            },
            "ValidationException",
        ),
        (
            CreateKeyRequest {
                tags: too_many,
                ..Default::default()
            },
            "LimitExceededException",
        ),
        (
            CreateKeyRequest {
                tags: vec![tag("fine", "v"), tag("", "empty key")],
                ..Default::default()
            },
            "ValidationException",
        ),
    ];
    for (request, expected) in refusals {
        expect_err(t.hsm.create_key(request), expected);
        assert_eq!(
            t.all_key_ids(),
            [ok_key.key_id.as_str()],
            "a refused CreateKey left a key"
        );
    }
}

#[test]
fn update_key_description_is_bounded() {
    let t = TestHsm::new();
    let key = t.symmetric_key("first").key_id;
    ok(t.hsm.update_key_description(&key, "second"), "update");
    assert_eq!(
        ok(t.hsm.describe_key(&key), "describe").description,
        "second"
    );
    ok(t.hsm.update_key_description(&key, ""), "empty description");
    assert_eq!(ok(t.hsm.describe_key(&key), "describe").description, "");
    let wide = "é".repeat(8192); // 8192 characters, 16384 bytes
    ok(t.hsm.update_key_description(&key, &wide), "8192 characters");
    assert_eq!(ok(t.hsm.describe_key(&key), "describe").description, wide);
    ok(t.hsm.update_key_description(&key, "third"), "update");
    let r = t.hsm.update_key_description(&key, &"d".repeat(8193));
    expect_err(r, "ValidationException");
    assert_eq!(
        ok(t.hsm.describe_key(&key), "describe").description,
        "third"
    );
}

#[test]
fn list_keys_pages_with_limit_and_marker() {
    let t = TestHsm::new();
    let created: BTreeSet<String> = (0..7)
        .map(|i| t.symmetric_key(&i.to_string()).key_id)
        .collect();
    let first = ok(t.hsm.list_keys(Some(3), None), "page 1");
    assert_eq!(first.items.len(), 3);
    assert!(first.truncated());
    let marker = first.next_marker.clone().unwrap();
    let second = ok(t.hsm.list_keys(Some(3), Some(&marker)), "page 2");
    assert_eq!(second.items.len(), 3);
    let third = ok(
        t.hsm.list_keys(Some(3), second.next_marker.as_deref()),
        "page 3",
    );
    assert_eq!(third.items.len(), 1);
    assert!(!third.truncated());
    let paged: Vec<String> = [first, second, third]
        .into_iter()
        .flat_map(|p| p.items)
        .map(|e| {
            assert_eq!(e.arn, key_arn(&e.key_id));
            e.key_id
        })
        .collect();
    assert_eq!(paged.len(), 7, "no key twice");
    assert_eq!(paged.iter().cloned().collect::<BTreeSet<_>>(), created);
    // The default page holds them all; exactly-full pages end cleanly.
    let all = ok(t.hsm.list_keys(None, None), "default page");
    assert_eq!(all.items.len(), 7);
    assert!(!all.truncated());
    let exact = ok(t.hsm.list_keys(Some(7), None), "exact page");
    assert_eq!(exact.items.len(), 7);
    if let Some(m) = exact.next_marker {
        assert!(ok(t.hsm.list_keys(Some(7), Some(&m)), "after the end")
            .items
            .is_empty());
    }
    for bad in [0, 1001] {
        expect_err(t.hsm.list_keys(Some(bad), None), "ValidationException");
    }
}

/// ListKeys API reference: a marker that is not one the service issued is
/// rejected (InvalidMarkerException; hsm-core has no such variant, so
/// ValidationException), not answered with a silently empty last page.
#[test]
fn list_keys_rejects_a_marker_it_did_not_issue() {
    let t = TestHsm::new();
    for i in 0..3 {
        t.symmetric_key(&i.to_string());
    }
    for bogus in ["not a marker", "zzzz", "0"] {
        let r = t.hsm.list_keys(None, Some(bogus));
        expect_err(r, "ValidationException");
    }
    // The same for the other list calls, with markers of a shape they never
    // hand out.
    let key = t.all_key_ids()[0].clone();
    let r = t.hsm.list_aliases(None, None, Some("not an alias"));
    expect_err(r, "ValidationException");
    let r = t.hsm.list_key_rotations(&key, None, Some("not a version"));
    expect_err(r, "ValidationException");
    let r = t.hsm.list_resource_tags(&key, None, Some(&"k".repeat(200)));
    expect_err(r, "ValidationException");
}

#[test]
fn list_aliases_pages_and_filters_by_key() {
    let t = TestHsm::new();
    let a = t.symmetric_key("a").key_id;
    let b = t.symmetric_key("b").key_id;
    for i in 0..5 {
        ok(t.hsm.create_alias(&format!("alias/a{i}"), &a), "alias");
    }
    ok(t.hsm.create_alias("alias/b0", &b), "alias");
    let first = ok(t.hsm.list_aliases(None, Some(4), None), "page 1");
    assert_eq!(first.items.len(), 4);
    assert!(first.truncated());
    let all = t.all_aliases(None);
    let names: BTreeSet<&str> = all.iter().map(|e| e.alias_name.as_str()).collect();
    assert_eq!(names.len(), 6, "no alias twice: {names:?}");
    for entry in &all {
        assert_eq!(entry.alias_arn, alias_arn(&entry.alias_name));
        let want = if entry.alias_name.starts_with("alias/a") {
            &a
        } else {
            &b
        };
        assert_eq!(&entry.target_key_id, want);
    }
    let of_b = ok(t.hsm.list_aliases(Some(&b), None, None), "of b").items;
    assert_eq!(of_b.len(), 1);
    assert_eq!(of_b[0].alias_name, "alias/b0");
    assert_eq!(
        t.all_aliases(Some("alias/a3")).len(),
        5,
        "filter by an alias of the key"
    );
    for bad in [0, 1001] {
        expect_err(
            t.hsm.list_aliases(None, Some(bad), None),
            "ValidationException",
        );
    }
    expect_err(
        t.hsm
            .list_aliases(Some(&uuid::Uuid::new_v4().to_string()), None, None),
        "NotFoundException",
    );
}

#[test]
fn alias_names_follow_the_rules() {
    let t = TestHsm::new();
    let key = t.symmetric_key("aliased").key_id;
    let other = t.symmetric_key("other").key_id;
    let max = format!("alias/{}", "x".repeat(256));
    for good in [
        "alias/a",
        "alias/A-z_0/9",
        "alias/tinfoil-key",
        "alias/tinfoil",
        &max,
    ] {
        ok(t.hsm.create_alias(good, &key), good);
        assert_eq!(ok(t.hsm.describe_key(good), good).key_id, key);
    }
    let bad = [
        "alias/".to_string(),
        format!("alias/{}", "x".repeat(257)),
        "alias/has space".into(),
        "alias/dot.ted".into(),
        "alias/colon:x".into(),
        "alias/ünïcode".into(),
        "alias/new\nline".into(),
        "noprefix".into(),
        "Alias/upper".into(),
        "alias/tinfoil/reserved".into(),
        "alias/tinfoil/".into(),
        String::new(),
    ];
    let aliases_before = t.all_aliases(None);
    for name in &bad {
        expect_err(t.hsm.create_alias(name, &key), "ValidationException");
    }
    assert_eq!(
        t.all_aliases(None),
        aliases_before,
        "a refused alias was created"
    );

    // Duplicates, unknown aliases and unknown targets.
    expect_err(
        t.hsm.create_alias("alias/a", &other),
        "AlreadyExistsException",
    );
    expect_err(
        t.hsm.create_alias("alias/a", &key),
        "AlreadyExistsException",
    );
    let missing = uuid::Uuid::new_v4().to_string();
    expect_err(
        t.hsm.create_alias("alias/fresh", &missing),
        "NotFoundException",
    );
    expect_err(
        t.hsm.update_alias("alias/none", &other),
        "NotFoundException",
    );
    expect_err(t.hsm.update_alias("alias/a", &missing), "NotFoundException");
    expect_err(t.hsm.delete_alias("alias/none"), "NotFoundException");
    expect_err(
        t.hsm.update_alias("alias/tinfoil/x", &other),
        "ValidationException",
    );
    assert_eq!(
        t.all_aliases(None),
        aliases_before,
        "a refused call changed an alias"
    );

    // UpdateAlias moves it; DeleteAlias frees the name.
    let created = aliases_before
        .iter()
        .find(|a| a.alias_name == "alias/a")
        .unwrap()
        .clone();
    t.advance_days(1);
    ok(t.hsm.update_alias("alias/a", &other), "update");
    assert_eq!(ok(t.hsm.describe_key("alias/a"), "describe").key_id, other);
    let moved = t
        .all_aliases(Some(&other))
        .into_iter()
        .find(|a| a.alias_name == "alias/a")
        .expect("listed under its new key");
    assert_eq!(moved.creation_date, created.creation_date);
    assert!(moved.last_updated_date > created.last_updated_date);
    ok(t.hsm.delete_alias("alias/a"), "delete");
    expect_err(t.hsm.describe_key("alias/a"), "NotFoundException");
    assert_eq!(
        t.state(&other),
        KeyState::Enabled,
        "deleting an alias keeps the key"
    );
    ok(t.hsm.create_alias("alias/a", &key), "name free again");
}

#[test]
fn tags_are_bounded_and_at_most_50_per_key() {
    let t = TestHsm::new();
    let key = t.symmetric_key("tagged").key_id;
    let tags: Vec<_> = (0..50).map(|i| tag(&format!("k{i:02}"), "v")).collect();
    ok(t.hsm.tag_resource(&key, &tags), "50 tags");
    assert_eq!(t.all_tags(&key).len(), 50);
    // Replacing a value at the limit is fine; a 51st key is not.
    ok(
        t.hsm.tag_resource(&key, &[tag("k00", "new")]),
        "replace at the limit",
    );
    let r = t
        .hsm
        .tag_resource(&key, &[tag("k01", "changed"), tag("k50", "v")]);
    expect_err(r, "LimitExceededException");
    let now = t.all_tags(&key);
    assert_eq!(now.len(), 50);
    assert!(now.contains(&tag("k00", "new")));
    assert!(
        now.contains(&tag("k01", "v")),
        "a refused batch applied part of itself"
    );
    ok(t.hsm.untag_resource(&key, &["k49".into()]), "untag");
    ok(t.hsm.tag_resource(&key, &[tag("k50", "v")]), "room again");

    let fresh = t.symmetric_key("bounds").key_id;
    let good = [
        tag(&"k".repeat(128), ""),
        tag("v", &"v".repeat(256)),
        tag(&"é".repeat(128), &"ü".repeat(256)),
    ];
    ok(t.hsm.tag_resource(&fresh, &good), "tags at the bounds");
    for bad in [
        tag("", "v"),
        tag(&"k".repeat(129), "v"),
        tag("v", &"v".repeat(257)),
        tag(&"é".repeat(129), "v"),
    ] {
        let r = t.hsm.tag_resource(&fresh, &[tag("side", "effect"), bad]);
        expect_err(r, "ValidationException");
    }
    let listed: BTreeSet<_> = t.all_tags(&fresh).into_iter().map(|t| t.tag_key).collect();
    let expected: BTreeSet<_> = good.iter().map(|t| t.tag_key.clone()).collect();
    assert_eq!(listed, expected, "a refused batch left tags behind");
    expect_err(
        t.hsm
            .tag_resource(&uuid::Uuid::new_v4().to_string(), &[tag("a", "b")]),
        "NotFoundException",
    );
}
