//! The seed story (../shared/seeds/001): Mary administers a key but cannot
//! use it, Alice uses it but cannot administer it, Snape decrypts through a
//! grant until it is revoked, and an explicit Deny beats an Allow. Played
//! twice: with awscli v1 signing as three access keys, and with the
//! `tinfoil` CLI run as three Unix users (setpriv; needs root, as
//! scripts/test runs).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use tinfoil_e2e_tests::daemon::{assert_kms_error, json, stderr, Daemon, Store};
use tinfoil_e2e_tests::kms::{assert_aws_error, create_access_key, AccessKey, KmsDaemon};
use tinfoil_e2e_tests::unix_users::{is_root, tinfoil_as};

const ACCOUNT: &str = "111122223333";

fn user_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:user/{name}")
}

/// The console's key-administrator and key-user statements, for Mary and
/// Alice, beside the account root's.
fn story_policy() -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Id": "key-consolepolicy-3",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},
                "Action": "kms:*",
                "Resource": "*"
            },
            {
                "Sid": "Allow access for Key Administrators",
                "Effect": "Allow",
                "Principal": {"AWS": user_arn("mary")},
                "Action": [
                    "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*",
                    "kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*",
                    "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion",
                    "kms:CancelKeyDeletion"
                ],
                "Resource": "*"
            },
            {
                "Sid": "Allow use of the key",
                "Effect": "Allow",
                "Principal": {"AWS": user_arn("alice")},
                "Action": [
                    "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*",
                    "kms:GenerateDataKey*", "kms:DescribeKey"
                ],
                "Resource": "*"
            }
        ]
    })
    .to_string()
}

/// `story_policy` plus statements on Snape.
fn policy_with_snape(statements: serde_json::Value) -> String {
    let mut policy: serde_json::Value = serde_json::from_str(&story_policy()).unwrap();
    let list = policy["Statement"].as_array_mut().unwrap();
    list.extend(statements.as_array().unwrap().iter().cloned());
    policy.to_string()
}

fn b64_field(value: &serde_json::Value) -> String {
    value.as_str().expect("a base64 string").to_string()
}

fn parse(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "failed: {}", stderr(out));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn mary_alice_and_snape_with_awscli() {
    let store = Store::init();
    let kms = KmsDaemon::start(&store, &[]);
    for name in ["mary", "alice", "snape"] {
        let out = kms.daemon.cli(&["create-user", "--user-name", name]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let key_of = |name: &str| -> AccessKey { create_access_key(&kms.daemon, name) };
    let (mary, alice, snape) = (key_of("mary"), key_of("alice"), key_of("snape"));
    let dir = store.dir.path();
    let policy_file = dir.join("policy.json");
    std::fs::write(&policy_file, story_policy()).unwrap();
    let file_arg = |p: &Path| format!("file://{}", p.display());
    let fileb = |p: &Path| format!("fileb://{}", p.display());

    // The administrator makes the key with the story's policy.
    let created = kms.aws_json(&["create-key", "--policy", &file_arg(&policy_file)]);
    let key = created["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let got = kms.aws_json(&[
        "get-key-policy",
        "--key-id",
        &key,
        "--policy-name",
        "default",
    ]);
    assert!(got["Policy"].as_str().unwrap().contains("user/mary"));

    let secret = dir.join("secret.txt");
    std::fs::write(&secret, b"the potions inventory").unwrap();
    let json_of = |key: &AccessKey, args: &[&str]| -> serde_json::Value {
        parse(&kms.aws_as(key, &[args, &["--output", "json"]].concat()))
    };

    // Mary administers: disable, enable, describe, tag; never encrypts or decrypts.
    for args in [
        vec!["disable-key", "--key-id", &key],
        vec!["enable-key", "--key-id", &key],
        vec![
            "tag-resource",
            "--key-id",
            &key,
            "--tags",
            "TagKey=owner,TagValue=mary",
        ],
    ] {
        let out = kms.aws_as(&mary, &args);
        assert!(out.status.success(), "mary {args:?}: {}", stderr(&out));
    }
    json_of(&mary, &["describe-key", "--key-id", &key]);
    let out = kms.aws_as(
        &mary,
        &["encrypt", "--key-id", &key, "--plaintext", &fileb(&secret)],
    );
    assert_aws_error(&out, "AccessDeniedException");
    assert!(
        stderr(&out).contains(&user_arn("mary")) && stderr(&out).contains("kms:Encrypt"),
        "the message names the principal and action: {}",
        stderr(&out)
    );

    // Alice uses: encrypt (with contexts) and decrypt; never administers.
    let hr = json_of(
        &alice,
        &[
            "encrypt",
            "--key-id",
            &key,
            "--plaintext",
            &fileb(&secret),
            "--encryption-context",
            "dept=hr",
        ],
    );
    let it = json_of(
        &alice,
        &[
            "encrypt",
            "--key-id",
            &key,
            "--plaintext",
            &fileb(&secret),
            "--encryption-context",
            "dept=it",
        ],
    );
    let hr_blob = dir.join("hr.bin");
    let it_blob = dir.join("it.bin");
    for (value, path) in [(&hr, &hr_blob), (&it, &it_blob)] {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64_field(&value["CiphertextBlob"]))
            .unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let decrypt = |who: &AccessKey, blob: &Path, context: &str| -> Output {
        kms.aws_as(
            who,
            &[
                "decrypt",
                "--ciphertext-blob",
                &fileb(blob),
                "--encryption-context",
                context,
                "--output",
                "json",
            ],
        )
    };
    assert!(decrypt(&alice, &hr_blob, "dept=hr").status.success());
    let out = decrypt(&mary, &hr_blob, "dept=hr");
    assert_aws_error(&out, "AccessDeniedException");
    for args in [
        vec!["disable-key", "--key-id", &key],
        vec![
            "schedule-key-deletion",
            "--key-id",
            &key,
            "--pending-window-in-days",
            "7",
        ],
    ] {
        assert_aws_error(&kms.aws_as(&alice, &args), "AccessDeniedException");
    }
    assert_eq!(
        kms.aws_json(&["describe-key", "--key-id", &key])["KeyMetadata"]["KeyState"],
        "Enabled",
        "a denied call changed nothing"
    );

    // Snape: nothing by default; then a grant to decrypt dept=hr only.
    assert_aws_error(
        &decrypt(&snape, &hr_blob, "dept=hr"),
        "AccessDeniedException",
    );
    let grant = json_of(
        &mary,
        &[
            "create-grant",
            "--key-id",
            &key,
            "--grantee-principal",
            &user_arn("snape"),
            "--operations",
            "Decrypt",
            "--constraints",
            "EncryptionContextSubset={dept=hr}",
        ],
    );
    let grant_id = grant["GrantId"].as_str().unwrap().to_string();
    assert!(decrypt(&snape, &hr_blob, "dept=hr").status.success());
    assert_aws_error(
        &decrypt(&snape, &it_blob, "dept=it"),
        "AccessDeniedException",
    );
    let listed = json_of(&mary, &["list-grants", "--key-id", &key]);
    assert_eq!(
        listed["Grants"][0]["GranteePrincipal"],
        user_arn("snape").as_str()
    );
    let out = kms.aws_as(
        &mary,
        &["revoke-grant", "--key-id", &key, "--grant-id", &grant_id],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // The very next call is refused.
    assert_aws_error(
        &decrypt(&snape, &hr_blob, "dept=hr"),
        "AccessDeniedException",
    );

    // An explicit Deny beats an Allow: first the Allow alone works...
    let allow = serde_json::json!([{
        "Sid": "Snape may decrypt", "Effect": "Allow",
        "Principal": {"AWS": user_arn("snape")}, "Action": "kms:Decrypt", "Resource": "*"
    }]);
    std::fs::write(&policy_file, policy_with_snape(allow.clone())).unwrap();
    kms.aws_ok(&[
        "put-key-policy",
        "--key-id",
        &key,
        "--policy-name",
        "default",
        "--policy",
        &file_arg(&policy_file),
    ]);
    assert!(decrypt(&snape, &it_blob, "dept=it").status.success());
    // ...then the same Allow beside a Deny is refused.
    let mut both = allow.as_array().unwrap().clone();
    both.push(serde_json::json!({
        "Sid": "Snape should no longer have access", "Effect": "Deny",
        "Principal": {"AWS": user_arn("snape")}, "Action": "kms:*", "Resource": "*"
    }));
    std::fs::write(
        &policy_file,
        policy_with_snape(serde_json::Value::Array(both)),
    )
    .unwrap();
    kms.aws_ok(&[
        "put-key-policy",
        "--key-id",
        &key,
        "--policy-name",
        "default",
        "--policy",
        &file_arg(&policy_file),
    ]);
    assert_aws_error(
        &decrypt(&snape, &it_blob, "dept=it"),
        "AccessDeniedException",
    );

    // Mary may schedule the key's deletion (and cancel it).
    let out = kms.aws_as(
        &mary,
        &[
            "schedule-key-deletion",
            "--key-id",
            &key,
            "--pending-window-in-days",
            "7",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = kms.aws_as(&mary, &["cancel-key-deletion", "--key-id", &key]);
    assert!(out.status.success(), "{}", stderr(&out));
}

// ----- the same story over the Unix socket, as three Unix users -----

const GID: u32 = 65534;
const MARY: u32 = 61001;
const ALICE: u32 = 61002;
const SNAPE: u32 = 61003;

#[test]
fn mary_alice_and_snape_as_unix_users() {
    if !is_root() {
        eprintln!("skipped: needs root to run the CLI as other uids (scripts/test runs as root)");
        return;
    }
    let store = Store::init();
    let socket_dir = tempfile::Builder::new()
        .prefix("tinfoil-story-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(socket_dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let socket = socket_dir.path().join("tinfoil.sock");
    let listen = format!("unix:{}", socket.display());
    let group = GID.to_string();
    let daemon = Daemon::start_at(
        &store,
        &["--listen", &listen, "--socket-group", &group],
        &socket,
    );
    let endpoint = daemon.endpoint.clone();
    for (name, uid) in [("mary", MARY), ("alice", ALICE), ("snape", SNAPE)] {
        let out = daemon.cli(&[
            "create-user",
            "--user-name",
            name,
            "--unix-uid",
            &uid.to_string(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // Files the other users read: world-readable, in a traversable directory.
    let files = tempfile::Builder::new()
        .prefix("tinfoil-story-files-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(files.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = files.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path.display().to_string()
    };
    let policy = write("policy.json", story_policy().as_bytes());
    let created = json(&daemon.cli(&[
        "create-key",
        "--policy",
        &format!("file://{policy}"),
        "--output",
        "json",
    ]));
    let key = created["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = write("secret.txt", b"the potions inventory");

    // Mary: administers, cannot encrypt.
    let out = tinfoil_as(MARY, GID, &endpoint, &["disable-key", "--key-id", &key]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = tinfoil_as(MARY, GID, &endpoint, &["enable-key", "--key-id", &key]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = tinfoil_as(
        MARY,
        GID,
        &endpoint,
        &["encrypt", "--key-id", &key, "--plaintext-file", &secret],
    );
    assert_kms_error(&out, "AccessDeniedException");

    // Alice: encrypts and decrypts, cannot disable.
    let out = tinfoil_as(
        ALICE,
        GID,
        &endpoint,
        &[
            "encrypt",
            "--key-id",
            &key,
            "--plaintext-file",
            &secret,
            "--encryption-context",
            "dept=hr",
            "--output",
            "json",
        ],
    );
    let blob = parse(&out)["CiphertextBlob"].as_str().unwrap().to_string();
    let blob_file = {
        use base64::Engine as _;
        write(
            "blob.bin",
            &base64::engine::general_purpose::STANDARD
                .decode(blob)
                .unwrap(),
        )
    };
    let decrypt = |uid: u32| {
        tinfoil_as(
            uid,
            GID,
            &endpoint,
            &[
                "decrypt",
                "--ciphertext-file",
                &blob_file,
                "--encryption-context",
                "dept=hr",
            ],
        )
    };
    assert!(
        decrypt(ALICE).status.success(),
        "{}",
        stderr(&decrypt(ALICE))
    );
    assert_kms_error(
        &tinfoil_as(ALICE, GID, &endpoint, &["disable-key", "--key-id", &key]),
        "AccessDeniedException",
    );

    // Snape: a grant, then its revocation refuses the very next call.
    assert_kms_error(&decrypt(SNAPE), "AccessDeniedException");
    let grant = parse(&tinfoil_as(
        MARY,
        GID,
        &endpoint,
        &[
            "create-grant",
            "--key-id",
            &key,
            "--grantee-principal",
            &user_arn("snape"),
            "--operations",
            "Decrypt",
            "--constraints",
            r#"{"EncryptionContextSubset":{"dept":"hr"}}"#,
            "--output",
            "json",
        ],
    ));
    assert!(
        decrypt(SNAPE).status.success(),
        "{}",
        stderr(&decrypt(SNAPE))
    );
    let grant_id = grant["GrantId"].as_str().unwrap();
    let out = tinfoil_as(
        MARY,
        GID,
        &endpoint,
        &["revoke-grant", "--key-id", &key, "--grant-id", grant_id],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_kms_error(&decrypt(SNAPE), "AccessDeniedException");
    daemon.stop();
}
