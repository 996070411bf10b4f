//! The remaining subcommands through the real CLI: paging, descriptions,
//! alias updates and deletion, untagging, re-encryption, random bytes,
//! data keys without plaintext and rotation settings.

use tinfoil_e2e_tests::daemon::{assert_kms_error, json, stderr, Daemon, Store};

fn new_key(daemon: &Daemon) -> String {
    json(&daemon.cli(&["create-key", "--output", "json"]))["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string()
}

fn ok(out: std::process::Output) -> std::process::Output {
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

#[test]
fn paging_aliases_tags_and_descriptions() {
    let store = Store::init();
    let daemon = Daemon::start(&store, &[]);
    let keys: Vec<String> = (0..3).map(|_| new_key(&daemon)).collect();

    // ListKeys pages with --limit and --marker.
    let first = json(&daemon.cli(&["list-keys", "--limit", "2", "--output", "json"]));
    assert_eq!(first["Keys"].as_array().unwrap().len(), 2);
    assert_eq!(first["Truncated"], true);
    let marker = first["NextMarker"]
        .as_str()
        .expect("nextMarker")
        .to_string();
    let second = json(&daemon.cli(&[
        "list-keys",
        "--limit",
        "2",
        "--marker",
        &marker,
        "--output",
        "json",
    ]));
    assert_eq!(second["Keys"].as_array().unwrap().len(), 1);
    assert_eq!(
        second["Truncated"], false,
        "explicit false, as KMS prints it"
    );
    let mut listed: Vec<String> = first["Keys"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["Keys"].as_array().unwrap())
        .map(|k| k["KeyId"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(listed, expected);
    let out = daemon.cli(&["list-keys", "--limit", "0"]);
    assert_kms_error(&out, "ValidationException");

    // Descriptions.
    ok(daemon.cli(&[
        "update-key-description",
        "--key-id",
        &keys[0],
        "--description",
        "renamed",
    ]));
    let d = json(&daemon.cli(&["describe-key", "--key-id", &keys[0], "--output", "json"]));
    assert_eq!(d["KeyMetadata"]["Description"], "renamed");

    // Aliases: create, duplicate, update, list by key, delete.
    ok(daemon.cli(&[
        "create-alias",
        "--alias-name",
        "alias/app",
        "--target-key-id",
        &keys[0],
    ]));
    let out = daemon.cli(&[
        "create-alias",
        "--alias-name",
        "alias/app",
        "--target-key-id",
        &keys[1],
    ]);
    assert_kms_error(&out, "AlreadyExistsException");
    ok(daemon.cli(&[
        "update-alias",
        "--alias-name",
        "alias/app",
        "--target-key-id",
        &keys[1],
    ]));
    let d = json(&daemon.cli(&["describe-key", "--key-id", "alias/app", "--output", "json"]));
    assert_eq!(d["KeyMetadata"]["KeyId"], keys[1].as_str());
    let by_key = json(&daemon.cli(&["list-aliases", "--key-id", &keys[1], "--output", "json"]));
    assert_eq!(by_key["Aliases"][0]["AliasName"], "alias/app");
    ok(daemon.cli(&["delete-alias", "--alias-name", "alias/app"]));
    assert_kms_error(
        &daemon.cli(&["describe-key", "--key-id", "alias/app"]),
        "NotFoundException",
    );

    // Tags: add two, remove one.
    ok(daemon.cli(&[
        "tag-resource",
        "--key-id",
        &keys[2],
        "--tag",
        "a=1",
        "--tag",
        "b=2",
    ]));
    ok(daemon.cli(&["untag-resource", "--key-id", &keys[2], "--tag-key", "a"]));
    let tags = json(&daemon.cli(&[
        "list-resource-tags",
        "--key-id",
        &keys[2],
        "--output",
        "json",
    ]));
    let tags = tags["Tags"].as_array().unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0]["TagKey"], "b");

    // Rotation settings.
    ok(daemon.cli(&["enable-key-rotation", "--key-id", &keys[2]]));
    let s = json(&daemon.cli(&[
        "get-key-rotation-status",
        "--key-id",
        &keys[2],
        "--output",
        "json",
    ]));
    assert_eq!(s["KeyRotationEnabled"], true);
    assert_eq!(s["RotationPeriodInDays"], 365);
    ok(daemon.cli(&["disable-key-rotation", "--key-id", &keys[2]]));
    let s = json(&daemon.cli(&[
        "get-key-rotation-status",
        "--key-id",
        &keys[2],
        "--output",
        "json",
    ]));
    assert_eq!(
        s["KeyRotationEnabled"], false,
        "explicit false, as KMS prints it"
    );
    let out = daemon.cli(&[
        "enable-key-rotation",
        "--key-id",
        &keys[2],
        "--rotation-period-in-days",
        "10",
    ]);
    assert_kms_error(&out, "ValidationException");
}

#[test]
fn re_encrypt_random_and_data_keys_without_plaintext() {
    let store = Store::init();
    let daemon = Daemon::start(&store, &[]);
    let dir = store.dir.path();
    let (a, b) = (new_key(&daemon), new_key(&daemon));
    let path = |n: &str| dir.join(n).to_str().unwrap().to_string();
    std::fs::write(dir.join("plain"), b"moving between keys").unwrap();

    ok(daemon.cli(&[
        "encrypt",
        "--key-id",
        &a,
        "--plaintext-file",
        &path("plain"),
        "--encryption-context",
        "stage=one",
        "--output-file",
        &path("under-a"),
    ]));
    ok(daemon.cli(&[
        "re-encrypt",
        "--ciphertext-file",
        &path("under-a"),
        "--source-encryption-context",
        "stage=one",
        "--destination-key-id",
        &b,
        "--destination-encryption-context",
        "stage=two",
        "--output-file",
        &path("under-b"),
    ]));
    let out = ok(daemon.cli(&[
        "decrypt",
        "--ciphertext-file",
        &path("under-b"),
        "--encryption-context",
        "stage=two",
        "--key-id",
        &b,
        "--output-file",
        "-",
    ]));
    assert_eq!(out.stdout, b"moving between keys");
    // Naming the wrong key is IncorrectKeyException.
    let out = daemon.cli(&[
        "decrypt",
        "--ciphertext-file",
        &path("under-b"),
        "--encryption-context",
        "stage=two",
        "--key-id",
        &a,
    ]);
    assert_kms_error(&out, "IncorrectKeyException");

    // Random bytes, raw.
    let out = ok(daemon.cli(&[
        "generate-random",
        "--number-of-bytes",
        "48",
        "--output-file",
        "-",
    ]));
    assert_eq!(out.stdout.len(), 48);
    let out = daemon.cli(&["generate-random", "--number-of-bytes", "1025"]);
    assert_kms_error(&out, "ValidationException");

    // A data key without plaintext decrypts to 16 bytes.
    ok(daemon.cli(&[
        "generate-data-key-without-plaintext",
        "--key-id",
        &a,
        "--key-spec",
        "AES_128",
        "--output-file",
        &path("dk.enc"),
    ]));
    let out = ok(daemon.cli(&[
        "decrypt",
        "--ciphertext-file",
        &path("dk.enc"),
        "--output-file",
        "-",
    ]));
    assert_eq!(out.stdout.len(), 16);
    // Both or neither of key spec and length: ValidationException.
    let out = daemon.cli(&["generate-data-key", "--key-id", &a]);
    assert_kms_error(&out, "ValidationException");
    let out = ok(daemon.cli(&[
        "generate-data-key",
        "--key-id",
        &a,
        "--number-of-bytes",
        "24",
        "--plaintext-output-file",
        &path("dk.plain"),
        "--ciphertext-output-file",
        &path("dk2.enc"),
    ]));
    assert!(
        out.stdout.starts_with(b"KeyId"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = ok(daemon.cli(&[
        "decrypt",
        "--ciphertext-file",
        &path("dk2.enc"),
        "--output-file",
        "-",
    ]));
    assert_eq!(out.stdout, std::fs::read(dir.join("dk.plain")).unwrap());
    assert_eq!(out.stdout.len(), 24);
}

/// `--encryption-context` in the forms `aws kms` takes: `k1=v1,k2=v2` is
/// two entries (never one entry `k1` = `v1,k2=v2`), JSON works, repeated
/// flags add up, and a key given twice is refused before any call.
#[test]
fn encryption_context_in_aws_forms() {
    let store = Store::init();
    let daemon = Daemon::start(&store, &[]);
    let key = new_key(&daemon);
    let dir = store.dir.path();
    let blob = dir.join("blob").display().to_string();
    ok(daemon.cli_with_stdin(
        &[
            "encrypt",
            "--key-id",
            &key,
            "--plaintext-file",
            "-",
            "--encryption-context",
            "tenant=a,purpose=test",
            "--output-file",
            &blob,
        ],
        b"shorthand",
    ));
    let decrypt = |extra: &[&str]| {
        let mut args = vec!["decrypt", "--ciphertext-file", &blob, "--output-file", "-"];
        args.extend_from_slice(extra);
        daemon.cli(&args)
    };
    // The same two entries as JSON, as two flags, in either order.
    for extra in [
        &["--encryption-context", r#"{"purpose":"test","tenant":"a"}"#][..],
        &[
            "--encryption-context",
            "purpose=test",
            "--encryption-context",
            "tenant=a",
        ][..],
    ] {
        let out = ok(decrypt(extra));
        assert_eq!(out.stdout, b"shorthand");
    }
    // One entry only, or the entries read as one value: the context differs.
    for extra in [
        &["--encryption-context", "tenant=a"][..],
        &["--encryption-context", r#"{"tenant":"a,purpose=test"}"#][..],
    ] {
        assert_kms_error(&decrypt(extra), "InvalidCiphertextException");
    }
    // Usage errors are local: malformed shorthand (exit 2), a key twice (exit 1).
    let out = decrypt(&["--encryption-context", "tenant"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = decrypt(&[
        "--encryption-context",
        "tenant=a",
        "--encryption-context",
        "tenant=b",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("given twice"), "{}", stderr(&out));
}

/// `--output json` prints the KMS shapes: PascalCase, epoch-second numbers,
/// explicit false, base64 blobs, the key's ARN in KeyId.
#[test]
fn json_output_has_the_kms_shapes() {
    let store = Store::init();
    let daemon = Daemon::start(&store, &[]);
    let created = json(&daemon.cli(&["create-key", "--output", "json"]));
    let meta = &created["KeyMetadata"];
    assert!(meta["CreationDate"].is_i64(), "{meta}");
    assert_eq!(meta["Enabled"], true);
    assert_eq!(meta["MultiRegion"], false);
    assert_eq!(meta["KeyManager"], "CUSTOMER");
    assert!(meta.get("DeletionDate").is_none(), "{meta}");
    let arn = meta["Arn"].as_str().unwrap().to_string();
    let key = meta["KeyId"].as_str().unwrap().to_string();
    assert!(arn.ends_with(&format!(":key/{key}")), "{arn}");
    assert_eq!(
        meta["AWSAccountId"].as_str(),
        arn.split(':').nth(4),
        "{meta}"
    );
    ok(daemon.cli(&["disable-key", "--key-id", &key]));
    let described = json(&daemon.cli(&["describe-key", "--key-id", &key, "--output", "json"]));
    assert_eq!(described["KeyMetadata"]["Enabled"], false);
    ok(daemon.cli(&["enable-key", "--key-id", &key]));
    let encrypted = json(&daemon.cli_with_stdin(
        &[
            "encrypt",
            "--key-id",
            &key,
            "--plaintext-file",
            "-",
            "--output",
            "json",
        ],
        b"x",
    ));
    assert_eq!(encrypted["KeyId"], arn.as_str(), "{encrypted}");
    assert_eq!(encrypted["EncryptionAlgorithm"], "SYMMETRIC_DEFAULT");
    let blob = encrypted["CiphertextBlob"].as_str().unwrap();
    assert!(
        blob.len() > 4 && blob.len().is_multiple_of(4),
        "base64: {blob}"
    );
}
