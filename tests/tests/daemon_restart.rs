//! Restarting tinfoild: keys, aliases, versions and states survive; a wrong
//! passphrase or an unsafe passphrase file is refused clearly; SIGTERM and
//! SIGINT stop the daemon cleanly (exit 0, socket removed).

use std::process::Stdio;

use tinfoil_e2e_tests::daemon::{json, stderr, write_file, Daemon, Store};

fn key_id_of(created: &serde_json::Value) -> String {
    created["KeyMetadata"]["KeyId"]
        .as_str()
        .expect("keyId")
        .to_string()
}

#[test]
fn state_survives_a_restart() {
    let store = Store::init();
    let daemon = Daemon::start(&store, &[]);
    let dir = store.dir.path();

    let rotated = key_id_of(&json(&daemon.cli(&["create-key", "--output", "json"])));
    let disabled = key_id_of(&json(&daemon.cli(&["create-key", "--output", "json"])));
    let pending = key_id_of(&json(&daemon.cli(&["create-key", "--output", "json"])));
    let hmac = key_id_of(&json(&daemon.cli(&[
        "create-key",
        "--key-spec",
        "HMAC_256",
        "--key-usage",
        "GENERATE_VERIFY_MAC",
        "--token",
        "ci-token",
        "--output",
        "json",
    ])));
    for (alias, key) in [("alias/rotated", &rotated), ("alias/disabled", &disabled)] {
        let out = daemon.cli(&[
            "create-alias",
            "--alias-name",
            alias,
            "--target-key-id",
            key,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = daemon.cli(&["tag-resource", "--key-id", &rotated, "--tag", "team=shred"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = daemon.cli(&[
        "enable-key-rotation",
        "--key-id",
        &rotated,
        "--rotation-period-in-days",
        "90",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A ciphertext under version 1, then two on-demand rotations.
    let plain = dir.join("p");
    let blob = dir.join("c");
    std::fs::write(&plain, b"made before the restart").unwrap();
    let out = daemon.cli(&[
        "encrypt",
        "--key-id",
        "alias/rotated",
        "--plaintext-file",
        plain.to_str().unwrap(),
        "--output-file",
        blob.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    for _ in 0..2 {
        let out = daemon.cli(&["rotate-key-on-demand", "--key-id", &rotated]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert!(daemon
        .cli(&["disable-key", "--key-id", &disabled])
        .status
        .success());
    assert!(daemon
        .cli(&[
            "schedule-key-deletion",
            "--key-id",
            &pending,
            "--pending-window-in-days",
            "30"
        ])
        .status
        .success());

    let status = daemon.stop();
    assert!(status.success(), "SIGTERM exit: {status}");
    assert!(!store.socket().exists(), "the socket outlived the daemon");

    let daemon = Daemon::start(&store, &[]);
    let describe = |key: &str| {
        json(&daemon.cli(&["describe-key", "--key-id", key, "--output", "json"]))["KeyMetadata"]
            .clone()
    };
    assert_eq!(describe(&rotated)["KeyState"], "Enabled");
    assert_eq!(describe(&rotated)["CurrentKeyVersion"], 3);
    assert_eq!(describe(&disabled)["KeyState"], "Disabled");
    assert_eq!(describe(&pending)["KeyState"], "PendingDeletion");
    assert_eq!(describe(&hmac)["KeySpec"], "HMAC_256");
    assert_eq!(describe(&hmac)["Token"], "ci-token");
    assert_eq!(describe("alias/disabled")["KeyId"], disabled.as_str());

    let rotations = json(&daemon.cli(&[
        "list-key-rotations",
        "--key-id",
        &rotated,
        "--output",
        "json",
    ]));
    assert_eq!(
        rotations["Rotations"].as_array().map(Vec::len),
        Some(2),
        "{rotations}"
    );
    let status = json(&daemon.cli(&[
        "get-key-rotation-status",
        "--key-id",
        &rotated,
        "--output",
        "json",
    ]));
    assert_eq!(status["KeyRotationEnabled"], true);
    assert_eq!(status["RotationPeriodInDays"], 90);
    let tags = json(&daemon.cli(&[
        "list-resource-tags",
        "--key-id",
        &rotated,
        "--output",
        "json",
    ]));
    assert_eq!(tags["Tags"][0]["TagKey"], "team");
    assert_eq!(tags["Tags"][0]["TagValue"], "shred");
    let aliases = json(&daemon.cli(&["list-aliases", "--output", "json"])).to_string();
    assert!(
        aliases.contains("alias/rotated") && aliases.contains("alias/disabled"),
        "{aliases}"
    );

    // The old ciphertext (version 1) still decrypts.
    let out = daemon.cli(&[
        "decrypt",
        "--ciphertext-file",
        blob.to_str().unwrap(),
        "--output-file",
        "-",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"made before the restart");

    // SIGINT stops it cleanly too.
    tinfoil_e2e_tests::daemon::signal(daemon.pid(), "INT");
    let status = daemon.stop_after_signal();
    assert!(status.success(), "SIGINT exit: {status}");
}

#[test]
fn wrong_passphrase_and_unsafe_passphrase_file_are_refused() {
    let store = Store::init();
    let wrong = store.dir.path().join("wrong");
    write_file(&wrong, b"not the passphrase\n", 0o600);
    let out = store
        .serve_command_with_passphrase(&wrong)
        .stdout(Stdio::null())
        .output()
        .expect("run tinfoild");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("IncorrectPassphraseException"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("does not unseal"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("not the passphrase"));
    assert!(!store.socket().exists());

    let readable = store.dir.path().join("readable");
    write_file(&readable, b"correct horse battery staple\n", 0o644);
    let out = store
        .serve_command_with_passphrase(&readable)
        .output()
        .expect("run tinfoild");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));

    // The environment variable works instead of a file; a wrong one is refused.
    let mut cmd = std::process::Command::new(tinfoil_e2e_tests::daemon::binary("tinfoild"));
    let out = cmd
        .arg("serve")
        .arg("--data-dir")
        .arg(&store.data_dir)
        .env("TINFOIL_PASSPHRASE", "wrong again")
        .stdin(Stdio::null())
        .output()
        .expect("run tinfoild");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));

    // No passphrase source at all (no terminal): a clear refusal.
    let out = std::process::Command::new(tinfoil_e2e_tests::daemon::binary("tinfoild"))
        .arg("serve")
        .arg("--data-dir")
        .arg(&store.data_dir)
        .env_remove("TINFOIL_PASSPHRASE")
        .stdin(Stdio::null())
        .output()
        .expect("run tinfoild");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no passphrase"), "{}", stderr(&out));

    // The right passphrase still works afterwards.
    let daemon = Daemon::start(&store, &[]);
    assert!(daemon.cli(&["list-keys"]).status.success());
}

#[test]
fn serve_refuses_missing_store_and_a_second_daemon() {
    let store = Store::init();
    let empty = store.dir.path().join("empty");
    let out = std::process::Command::new(tinfoil_e2e_tests::daemon::binary("tinfoild"))
        .args(["serve", "--data-dir"])
        .arg(&empty)
        .arg("--passphrase-file")
        .arg(&store.passphrase_file)
        .output()
        .expect("run tinfoild");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("tinfoild init"), "{}", stderr(&out));

    let _first = Daemon::start(&store, &[]);
    let out = store.serve_command().output().expect("run tinfoild");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("StoreUnavailableException")
            || stderr(&out).contains("another daemon"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_calls_finish() {
    use tinfoil_proto::v1 as pb;
    let store = Store::init();
    // RSA-4096 generation in a debug build on a loaded machine can take
    // seconds: a generous deadline keeps the calls from timing out.
    let daemon = Daemon::start(&store, &["--call-timeout-ms", "300000"]);
    let mut calls = Vec::new();
    for _ in 0..3 {
        let mut client = daemon.client().await;
        calls.push(tokio::spawn(async move {
            client
                .create_key(pb::CreateKeyRequest {
                    key_spec: Some("RSA_4096".into()),
                    key_usage: Some("SIGN_VERIFY".into()),
                    ..Default::default()
                })
                .await
        }));
    }
    // Let the calls reach the daemon, then ask it to stop.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let status = tokio::task::spawn_blocking(move || daemon.stop())
        .await
        .unwrap();
    assert!(status.success(), "exit after SIGTERM: {status}");
    for call in calls {
        let created = call.await.unwrap().expect("an in-flight call was cut off");
        assert_eq!(
            created.into_inner().key_metadata.unwrap().key_spec,
            "RSA_4096"
        );
    }
    // After the stop, new connections are refused.
    assert!(!store.socket().exists());
}
