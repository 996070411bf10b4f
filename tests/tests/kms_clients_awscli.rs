//! The crypto-shredding walkthroughs (tests/seeds 000 and 003) with the real
//! `aws kms` CLI (awscli v1, unmodified) against tinfoild's KMS endpoint,
//! and the four `tinfoild --dev` lines pasted into a shell as a user would.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use tinfoil_e2e_tests::daemon::{binary, eventually, stderr, stdout, KillOnDrop, Store};
use tinfoil_e2e_tests::kms::{assert_aws_error, create_access_key, venv, KmsDaemon};

fn b64(value: &serde_json::Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(value.as_str().expect("a base64 string"))
        .expect("valid base64")
}

fn fileb(path: &Path) -> String {
    format!("fileb://{}", path.display())
}

/// Seeds 000 and 003: key and alias, encryption bound to a context,
/// revocation by DisableKey, the deletion window and its cancellation, data
/// keys; each refusal is the KMS exception the walkthrough expects.
#[test]
fn crypto_shredding_walkthrough_with_aws_kms() {
    let store = Store::init();
    let kms = KmsDaemon::start(&store, &[]);
    let dir = store.dir.path();

    // (The walkthrough's `--policy file://kmspolicy.json` step is the next
    // test; this key gets the default key policy.)
    let created = kms.aws_json(&["create-key", "--description", "tinfoil-key"]);
    let meta = &created["KeyMetadata"];
    assert_eq!(meta["KeyState"], "Enabled", "{meta}");
    assert_eq!(meta["Enabled"], true);
    assert_eq!(meta["KeyUsage"], "ENCRYPT_DECRYPT");
    assert_eq!(meta["KeySpec"], "SYMMETRIC_DEFAULT");
    assert!(meta["CreationDate"].is_number(), "{meta}");
    let key = meta["KeyId"].as_str().unwrap().to_string();
    let arn = meta["Arn"].as_str().unwrap().to_string();
    assert_eq!(arn, format!("arn:aws:kms:us-east-1:111122223333:key/{key}"));

    let out = kms.aws_ok(&[
        "create-alias",
        "--alias-name",
        "alias/tinfoil-key",
        "--target-key-id",
        &key,
    ]);
    assert!(stdout(&out).trim().is_empty(), "{}", stdout(&out));
    // The same alias twice: AlreadyExistsException.
    assert_aws_error(
        &kms.aws(&[
            "create-alias",
            "--alias-name",
            "alias/tinfoil-key",
            "--target-key-id",
            &key,
        ]),
        "AlreadyExistsException",
    );

    // Encrypt a file under the alias with a context (the shorthand form).
    let report = dir.join("report.pdf");
    std::fs::write(&report, b"%PDF-1.4 quarterly figures").unwrap();
    let encrypted = kms.aws_json(&[
        "encrypt",
        "--key-id",
        "alias/tinfoil-key",
        "--plaintext",
        &fileb(&report),
        "--encryption-context",
        "bucket=tinfoil-bucket-example,object=report.pdf",
    ]);
    assert_eq!(encrypted["KeyId"], arn.as_str());
    assert_eq!(encrypted["EncryptionAlgorithm"], "SYMMETRIC_DEFAULT");
    let blob = dir.join("report.pdf.enc");
    std::fs::write(&blob, b64(&encrypted["CiphertextBlob"])).unwrap();

    let decrypt = |context: Option<&str>| {
        let mut args = vec!["decrypt", "--ciphertext-blob"];
        let blob_arg = fileb(&blob);
        args.push(&blob_arg);
        if let Some(c) = context {
            args.extend(["--encryption-context", c]);
        }
        args.extend(["--output", "json"]);
        kms.aws(&args)
    };
    let context = "bucket=tinfoil-bucket-example,object=report.pdf";
    let out = decrypt(Some(context));
    assert!(out.status.success(), "{}", stderr(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(b64(&answer["Plaintext"]), std::fs::read(&report).unwrap());
    assert_eq!(answer["KeyId"], arn.as_str());
    // The context in JSON form is the same context.
    let out = decrypt(Some(
        r#"{"object":"report.pdf","bucket":"tinfoil-bucket-example"}"#,
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    // No context, or another one: the blob does not open.
    assert_aws_error(&decrypt(None), "InvalidCiphertextException");
    assert_aws_error(
        &decrypt(Some("bucket=other-bucket,object=report.pdf")),
        "InvalidCiphertextException",
    );

    // Revocation: DisableKey makes every blob unreadable until EnableKey.
    kms.aws_ok(&["disable-key", "--key-id", &key]);
    assert_aws_error(&decrypt(Some(context)), "DisabledException");
    assert_aws_error(
        &kms.aws(&[
            "encrypt",
            "--key-id",
            "alias/tinfoil-key",
            "--plaintext",
            &fileb(&report),
        ]),
        "DisabledException",
    );
    let described = kms.aws_json(&["describe-key", "--key-id", "alias/tinfoil-key"]);
    assert_eq!(described["KeyMetadata"]["KeyState"], "Disabled");
    assert_eq!(described["KeyMetadata"]["Enabled"], false);
    kms.aws_ok(&["enable-key", "--key-id", &key]);
    assert!(decrypt(Some(context)).status.success());

    // Crypto-shredding: the window is 7 to 30 days.
    assert_aws_error(
        &kms.aws(&[
            "schedule-key-deletion",
            "--key-id",
            &key,
            "--pending-window-in-days",
            "6",
        ]),
        "ValidationException",
    );
    kms.aws_ok(&["disable-key", "--key-id", &key]);
    let scheduled = kms.aws_json(&[
        "schedule-key-deletion",
        "--key-id",
        &key,
        "--pending-window-in-days",
        "7",
    ]);
    assert_eq!(scheduled["KeyId"], arn.as_str());
    assert_eq!(scheduled["KeyState"], "PendingDeletion");
    assert_eq!(scheduled["PendingWindowInDays"], 7);
    assert!(scheduled["DeletionDate"].is_number(), "{scheduled}");
    assert_aws_error(&decrypt(Some(context)), "KMSInvalidStateException");
    assert_aws_error(
        &kms.aws(&["enable-key", "--key-id", &key]),
        "KMSInvalidStateException",
    );
    let described = kms.aws_json(&["describe-key", "--key-id", &key]);
    assert_eq!(described["KeyMetadata"]["KeyState"], "PendingDeletion");
    assert!(described["KeyMetadata"]["DeletionDate"].is_number());

    // Backing out: cancelled, the key is Disabled (not Enabled).
    let cancelled = kms.aws_json(&["cancel-key-deletion", "--key-id", &key]);
    assert_eq!(cancelled["KeyId"], arn.as_str());
    let described = kms.aws_json(&["describe-key", "--key-id", &key]);
    assert_eq!(described["KeyMetadata"]["KeyState"], "Disabled");
    assert!(described["KeyMetadata"].get("DeletionDate").is_none());
    assert_aws_error(&decrypt(Some(context)), "DisabledException");
    kms.aws_ok(&["enable-key", "--key-id", &key]);

    // Envelope encryption: a data key, and its blob opens to the same key.
    let data_key = kms.aws_json(&[
        "generate-data-key",
        "--key-id",
        "alias/tinfoil-key",
        "--key-spec",
        "AES_256",
        "--encryption-context",
        "purpose=envelope",
    ]);
    let plaintext_key = b64(&data_key["Plaintext"]);
    assert_eq!(plaintext_key.len(), 32);
    assert_eq!(data_key["KeyId"], arn.as_str());
    let dk_blob = dir.join("dk.enc");
    std::fs::write(&dk_blob, b64(&data_key["CiphertextBlob"])).unwrap();
    let opened = kms.aws_json(&[
        "decrypt",
        "--ciphertext-blob",
        &fileb(&dk_blob),
        "--encryption-context",
        "purpose=envelope",
    ]);
    assert_eq!(b64(&opened["Plaintext"]), plaintext_key);

    // Unknown key, unknown alias: NotFoundException.
    assert_aws_error(
        &kms.aws(&["describe-key", "--key-id", "alias/nope"]),
        "NotFoundException",
    );
    assert_aws_error(
        &kms.aws(&[
            "describe-key",
            "--key-id",
            "1234abcd-12ab-34cd-56ef-1234567890ab",
        ]),
        "NotFoundException",
    );

    // The deletion window passes (test clock): the key is shredded and the
    // blob is unreadable for good. The clock goes back afterwards so that
    // the requests' signatures are not judged by the future clock.
    kms.aws_ok(&["disable-key", "--key-id", &key]);
    kms.aws_ok(&[
        "schedule-key-deletion",
        "--key-id",
        &key,
        "--pending-window-in-days",
        "7",
    ]);
    store.set_clock(tinfoil_e2e_tests::daemon::unix_now() + 8 * 86_400);
    let gone = eventually(Duration::from_secs(30), || {
        let out = kms.daemon.cli(&["describe-key", "--key-id", &key]);
        stderr(&out).contains("NotFoundException")
    });
    assert!(gone, "the key was not destroyed:\n{}", kms.daemon.log());
    store.set_clock(tinfoil_e2e_tests::daemon::unix_now());
    let out = decrypt(Some(context));
    assert!(!out.status.success(), "a shredded key decrypted");
    let exception = tinfoil_e2e_tests::kms::aws_error(&out);
    assert!(
        matches!(
            exception.as_deref(),
            Some("NotFoundException") | Some("InvalidCiphertextException")
        ),
        "{}",
        stderr(&out)
    );
}

/// `tinfoild --dev` prints the `export` lines (the four of every AWS SDK,
/// and AWS_DEFAULT_REGION for botocore); a shell that runs them (and
/// nothing else) can use `aws kms create-key` with no other flag.
#[test]
fn dev_mode_exports_are_enough_for_aws_kms() {
    let venv = venv();
    let runtime = tempfile::tempdir().unwrap();
    let mut child = KillOnDrop(
        Command::new(binary("tinfoild"))
            .arg("--dev")
            .env("XDG_RUNTIME_DIR", runtime.path())
            .env_remove("TINFOIL_PASSPHRASE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tinfoild --dev"),
    );
    let mut exports = Vec::new();
    for line in BufReader::new(child.0.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.starts_with("export ") {
            exports.push(line);
        }
        if exports.len() == 5 {
            break;
        }
    }
    let names: Vec<&str> = exports
        .iter()
        .map(|l| l["export ".len()..].split('=').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "AWS_ENDPOINT_URL_KMS",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
            "AWS_DEFAULT_REGION"
        ],
        "{exports:?}"
    );
    assert!(
        exports[0].starts_with("export AWS_ENDPOINT_URL_KMS=http://127.0.0.1:"),
        "{}",
        exports[0]
    );
    // A clean shell: no AWS settings but the pasted lines, an empty home.
    let home = runtime.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let script = format!(
        "{}\nexport PATH={}:$PATH\naws kms create-key --description pasted --output json",
        exports.join("\n"),
        venv.join("bin").display()
    );
    let run = || {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(&script);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(&name);
            }
        }
        cmd.env("HOME", &home)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap()
    };
    // The endpoint is bound before the lines are printed: one try.
    let out = run();
    assert!(
        out.status.success(),
        "aws kms create-key after the pasted lines failed: {}",
        stderr(&out)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["KeyMetadata"]["Description"], "pasted");
}

/// Seed 000's key policy: `aws kms create-key --policy file://kmspolicy.json`
/// with its two statements, for this store's account. Tinfoil has users, not
/// roles, so the seed's `role/tinfoil-s3-role` is the user `tinfoil-s3`
/// (a role the account does not have is a MalformedPolicyDocumentException,
/// as in AWS). The user may encrypt and decrypt but not disable the key.
#[test]
fn walkthrough_key_policy_from_a_file() {
    let store = Store::init();
    let kms = KmsDaemon::start(&store, &[]);
    let made = kms
        .daemon
        .cli(&["create-user", "--user-name", "tinfoil-s3"]);
    assert!(made.status.success(), "{}", stderr(&made));
    let app = create_access_key(&kms.daemon, "tinfoil-s3");
    let write_policy = |principal: &str| {
        let path = store.dir.path().join("kmspolicy.json");
        std::fs::write(
            &path,
            format!(
                r#"{{"Version": "2012-10-17", "Statement": [
                {{"Sid": "RootEmergencyAccess", "Effect": "Allow",
                 "Principal": {{"AWS": "arn:aws:iam::111122223333:root"}},
                 "Action": "kms:*", "Resource": "*"}},
                {{"Sid": "GrantRootAccess", "Effect": "Allow",
                 "Principal": {{"AWS": "{principal}"}},
                 "Action": ["kms:Get*", "kms:ReEncrypt*", "kms:List*", "kms:GenerateDataKey*",
                            "kms:Encrypt", "kms:DescribeKey", "kms:Decrypt", "kms:Create*"],
                 "Resource": "*"}}]}}"#
            ),
        )
        .unwrap();
        format!("file://{}", path.display())
    };
    assert_aws_error(
        &kms.aws(&[
            "create-key",
            "--policy",
            &write_policy("arn:aws:iam::111122223333:role/tinfoil-s3-role"),
        ]),
        "MalformedPolicyDocumentException",
    );
    let created = kms.aws_json(&[
        "create-key",
        "--policy",
        &write_policy("arn:aws:iam::111122223333:user/tinfoil-s3"),
    ]);
    let key = created["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let stored = kms.aws_json(&[
        "get-key-policy",
        "--key-id",
        &key,
        "--policy-name",
        "default",
    ]);
    let document: serde_json::Value =
        serde_json::from_str(stored["Policy"].as_str().expect("a Policy string")).unwrap();
    let sids: Vec<&str> = document["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .filter_map(|s| s["Sid"].as_str())
        .collect();
    assert_eq!(
        sids,
        ["RootEmergencyAccess", "GrantRootAccess"],
        "{document}"
    );

    // The application's user: encrypt and decrypt, but not disable.
    let plain = store.dir.path().join("object");
    std::fs::write(&plain, b"s3 object").unwrap();
    let out = kms.aws_as(
        &app,
        &[
            "encrypt",
            "--key-id",
            &key,
            "--plaintext",
            &fileb(&plain),
            "--output",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let encrypted: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let blob = store.dir.path().join("object.enc");
    std::fs::write(&blob, b64(&encrypted["CiphertextBlob"])).unwrap();
    let out = kms.aws_as(
        &app,
        &[
            "decrypt",
            "--ciphertext-blob",
            &fileb(&blob),
            "--output",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_aws_error(
        &kms.aws_as(&app, &["disable-key", "--key-id", &key]),
        "AccessDeniedException",
    );
    // The administrators (the first statement) still can.
    kms.aws_ok(&["disable-key", "--key-id", &key]);
}
