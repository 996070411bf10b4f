//! The crypto-shredding walkthrough (../shared/seeds/000_*.txt) with the
//! real `tinfoild` and `tinfoil` binaries: create a key and an alias,
//! encrypt files, revoke by disabling, restore, schedule deletion, cancel,
//! and finally let the deletion window pass (test-only clock) so the data
//! is shredded for good.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use tinfoil_e2e_tests::daemon::{
    assert_kms_error, eventually, json, stderr, stdout, unix_now, Daemon, Store,
};

const DAY: i64 = 86_400;

/// A file of every byte value (binary-safety) plus some text.
fn object_bytes() -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..=255u8).collect();
    bytes.extend_from_slice(b"\nquarterly-report.pdf contents\n\0\r\n");
    bytes
}

#[test]
fn crypto_shredding_walkthrough() {
    let store = Store::init();
    let daemon = Daemon::start(&store, &[]);
    let dir = store.dir.path();
    // The socket is 0600 inside the 0700 data directory.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&store.socket()), 0o600);
    assert_eq!(mode(&store.data_dir), 0o700);

    // aws kms create-key; aws kms create-alias.
    let created = json(&daemon.cli(&[
        "create-key",
        "--description",
        "tinfoil-key",
        "--output",
        "json",
    ]));
    let key_id = created["KeyMetadata"]["KeyId"]
        .as_str()
        .expect("keyId")
        .to_string();
    assert_eq!(created["KeyMetadata"]["KeyState"], "Enabled");
    assert_eq!(created["KeyMetadata"]["KeyUsage"], "ENCRYPT_DECRYPT");
    let out = daemon.cli(&[
        "create-alias",
        "--alias-name",
        "alias/tinfoil-key",
        "--target-key-id",
        &key_id,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Encrypt an object through the alias, with an encryption context.
    let object = dir.join("object.bin");
    let blob = dir.join("object.enc");
    let restored = dir.join("object.out");
    std::fs::write(&object, object_bytes()).unwrap();
    let out = daemon.cli(&[
        "encrypt",
        "--key-id",
        "alias/tinfoil-key",
        "--plaintext-file",
        object.to_str().unwrap(),
        "--encryption-context",
        "bucket=tinfoil-bucket-example",
        "--encryption-context",
        "object=report",
        "--output-file",
        blob.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ciphertext = std::fs::read(&blob).unwrap();
    assert!(!ciphertext.is_empty());
    assert!(
        !ciphertext
            .windows(20)
            .any(|w| w == &object_bytes()[100..120]),
        "the ciphertext contains the plaintext"
    );

    let decrypt = |extra: &[&str]| {
        let mut args = vec![
            "decrypt",
            "--ciphertext-file",
            blob.to_str().unwrap(),
            "--encryption-context",
            "object=report",
            "--encryption-context",
            "bucket=tinfoil-bucket-example",
            "--output-file",
            restored.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        daemon.cli(&args)
    };
    let out = decrypt(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&restored).unwrap(), object_bytes());

    // Standard input and output work as files too.
    let out = daemon.cli_with_stdin(
        &[
            "encrypt",
            "--key-id",
            &key_id,
            "--plaintext-file",
            "-",
            "--output-file",
            "-",
        ],
        &object_bytes(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let piped_blob = out.stdout.clone();
    let out = daemon.cli_with_stdin(
        &["decrypt", "--ciphertext-file", "-", "--output-file", "-"],
        &piped_blob,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, object_bytes());

    // The wrong context does not decrypt.
    let out = daemon.cli(&[
        "decrypt",
        "--ciphertext-file",
        blob.to_str().unwrap(),
        "--encryption-context",
        "bucket=other-bucket",
    ]);
    assert_kms_error(&out, "InvalidCiphertextException");

    // Temporarily disabling file access: decrypt fails, naming the reason.
    let out = daemon.cli(&["disable-key", "--key-id", "alias/tinfoil-key"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_kms_error(&decrypt(&[]), "DisabledException");
    let out = daemon.cli(&["enable-key", "--key-id", &key_id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(decrypt(&[]).status.success());

    // Scheduling deletion (7 days): unusable, KMSInvalidStateException.
    let scheduled = json(&daemon.cli(&[
        "schedule-key-deletion",
        "--key-id",
        &key_id,
        "--pending-window-in-days",
        "7",
        "--output",
        "json",
    ]));
    assert_eq!(scheduled["KeyState"], "PendingDeletion");
    assert_eq!(scheduled["PendingWindowInDays"], 7);
    assert_kms_error(&decrypt(&[]), "KMSInvalidStateException");
    // Windows outside 7..=30 days are refused.
    let out = daemon.cli(&[
        "schedule-key-deletion",
        "--key-id",
        &key_id,
        "--pending-window-in-days",
        "6",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    // Backing out: cancel leaves the key Disabled; enable restores access.
    let out = daemon.cli(&["cancel-key-deletion", "--key-id", &key_id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let described = json(&daemon.cli(&["describe-key", "--key-id", &key_id, "--output", "json"]));
    assert_eq!(described["KeyMetadata"]["KeyState"], "Disabled");
    assert_kms_error(&decrypt(&[]), "DisabledException");
    let out = daemon.cli(&["enable-key", "--key-id", &key_id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = decrypt(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&restored).unwrap(), object_bytes());

    // Crypto-shredding: schedule again and let the window pass.
    let out = daemon.cli(&[
        "schedule-key-deletion",
        "--key-id",
        &key_id,
        "--pending-window-in-days",
        "7",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Six days later the key still exists, pending deletion.
    store.set_clock(unix_now() + 6 * DAY);
    std::thread::sleep(Duration::from_millis(1500));
    let described = json(&daemon.cli(&["describe-key", "--key-id", &key_id, "--output", "json"]));
    assert_eq!(described["KeyMetadata"]["KeyState"], "PendingDeletion");
    // Past the deletion date the daemon's tick destroys it.
    store.set_clock(unix_now() + 8 * DAY);
    let gone = eventually(Duration::from_secs(30), || {
        let out = daemon.cli(&["describe-key", "--key-id", &key_id]);
        out.status.code() == Some(1) && stderr(&out).contains("(NotFoundException)")
    });
    assert!(gone, "the key was not destroyed:\n{}", daemon.log());
    let out = decrypt(&[]);
    assert_eq!(out.status.code(), Some(1), "shredded data decrypted");
    assert!(stdout(&out).is_empty());
    // The alias went with the key.
    let aliases = json(&daemon.cli(&["list-aliases", "--output", "json"]));
    assert!(
        !aliases.to_string().contains("alias/tinfoil-key"),
        "{aliases}"
    );
    assert!(daemon.log().contains("key destroyed"), "{}", daemon.log());
}

#[test]
fn cli_usage_errors_exit_2_and_text_output_is_a_table() {
    let store = Store::init();
    let daemon = Daemon::start(&store, &[]);
    // A missing required flag and a malformed context are usage errors.
    let out = daemon.cli(&["encrypt", "--key-id", "k"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = daemon.cli(&[
        "encrypt",
        "--key-id",
        "k",
        "--plaintext-file",
        "-",
        "--encryption-context",
        "novalue",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = daemon.cli(&["no-such-operation"]);
    assert_eq!(out.status.code(), Some(2));

    // Text output: Field  value lines, KMS spelling.
    let out = daemon.cli(&["create-key", "--description", "table me"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("KeyMetadata.KeyState"), "{text}");
    assert!(text.contains("Enabled"), "{text}");
    assert!(text.contains("table me"), "{text}");

    // An unknown key: exit 1, exception name and operation on stderr.
    let out = daemon.cli(&["describe-key", "--key-id", "alias/nope"]);
    assert_kms_error(&out, "NotFoundException");
    assert!(stderr(&out).contains("DescribeKey"), "{}", stderr(&out));

    // No daemon at the endpoint: exit 1 with a clear message.
    let out = tinfoil_e2e_tests::daemon::cli(
        &format!("unix:{}", store.dir.path().join("absent.sock").display()),
        &["list-keys"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
}
