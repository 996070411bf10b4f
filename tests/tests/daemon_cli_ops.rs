//! The remaining subcommands through the real CLI: paging, descriptions,
//! alias updates and deletion, untagging, re-encryption, random bytes,
//! data keys without plaintext and rotation settings.

use tinfoil_e2e_tests::daemon::{assert_kms_error, json, stderr, Daemon, Store};

fn new_key(daemon: &Daemon) -> String {
    json(&daemon.cli(&["create-key", "--output", "json"]))["keyMetadata"]["keyId"]
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
    assert_eq!(first["keys"].as_array().unwrap().len(), 2);
    assert_eq!(first["truncated"], true);
    let marker = first["nextMarker"]
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
    assert_eq!(second["keys"].as_array().unwrap().len(), 1);
    assert!(second.get("truncated").is_none() || second["truncated"] == false);
    let mut listed: Vec<String> = first["keys"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["keys"].as_array().unwrap())
        .map(|k| k["keyId"].as_str().unwrap().to_string())
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
    assert_eq!(d["keyMetadata"]["description"], "renamed");

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
    assert_eq!(d["keyMetadata"]["keyId"], keys[1].as_str());
    let by_key = json(&daemon.cli(&["list-aliases", "--key-id", &keys[1], "--output", "json"]));
    assert_eq!(by_key["aliases"][0]["aliasName"], "alias/app");
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
    let tags = tags["tags"].as_array().unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0]["tagKey"], "b");

    // Rotation settings.
    ok(daemon.cli(&["enable-key-rotation", "--key-id", &keys[2]]));
    let s = json(&daemon.cli(&[
        "get-key-rotation-status",
        "--key-id",
        &keys[2],
        "--output",
        "json",
    ]));
    assert_eq!(s["keyRotationEnabled"], true);
    assert_eq!(s["rotationPeriodInDays"], 365);
    ok(daemon.cli(&["disable-key-rotation", "--key-id", &keys[2]]));
    let s = json(&daemon.cli(&[
        "get-key-rotation-status",
        "--key-id",
        &keys[2],
        "--output",
        "json",
    ]));
    assert!(s.get("keyRotationEnabled").is_none() || s["keyRotationEnabled"] == false);
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
