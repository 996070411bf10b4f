//! The PKCS#11 daemon backend under key policies: pkcs11-tool run as a
//! Unix user bound to a Tinfoil user may not sign with a token key that no
//! policy or grant lets it use (CKR_KEY_FUNCTION_NOT_PERMITTED at C_Sign),
//! and may once a grant allows Sign. Needs root (setpriv), as scripts/test.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use tinfoil_e2e_tests::daemon::{bin_dir, json, stderr, stdout, Daemon, Store};
use tinfoil_e2e_tests::unix_users::{command_as, is_root};

const GID: u32 = 65534;
const ALICE: u32 = 61102;
const SO_PIN: &str = "so-pin-1";
const PIN: &str = "user-pin-1";

/// Runs pkcs11-tool with our module, as `uid` (None: as the test, root).
fn pkcs11_tool(config: &Path, uid: Option<u32>, args: &[&str]) -> Output {
    let module = bin_dir().join("libtinfoil_pkcs11.so");
    let mut cmd = match uid {
        Some(uid) => command_as(uid, GID, "pkcs11-tool"),
        None => Command::new("pkcs11-tool"),
    };
    cmd.arg("--module")
        .arg(&module)
        .args(args)
        .env("TINFOIL_PKCS11_CONFIG", config)
        .stdin(Stdio::null())
        .output()
        .expect("run pkcs11-tool (opensc; scripts/test installs it)")
}

#[test]
fn a_socket_user_signs_only_with_keys_a_policy_or_grant_lets_it_use() {
    if !is_root() {
        eprintln!(
            "skipped: needs root to run pkcs11-tool as another uid (scripts/test runs as root)"
        );
        return;
    }
    let store = Store::init();
    // A socket others may reach (group GID, 0660) in a directory they may traverse.
    let shared = tempfile::Builder::new()
        .prefix("tinfoil-p11-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = shared.path().join("tinfoil.sock");
    let listen = format!("unix:{}", socket.display());
    let group = GID.to_string();
    let daemon = Daemon::start_at(
        &store,
        &["--listen", &listen, "--socket-group", &group],
        &socket,
    );
    let config = shared.path().join("tinfoil-pkcs11.toml");
    std::fs::write(
        &config,
        format!("backend = \"daemon\"\nendpoint = \"{listen}\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let data = shared.path().join("data.bin");
    std::fs::write(&data, b"sign me").unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Each signer writes its signature into a directory of its own.
    let out_dir = |name: &str, uid: u32| {
        let dir = shared.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(uid), Some(GID)).unwrap();
        dir.join("sig.bin").display().to_string()
    };
    let (root_sig, alice_sig) = (out_dir("root", 0), out_dir("alice", ALICE));

    let ok = |uid: Option<u32>, args: &[&str]| {
        let out = pkcs11_tool(&config, uid, args);
        assert!(
            out.status.success(),
            "pkcs11-tool {args:?} as {uid:?} failed: {}{}\n{}",
            stdout(&out),
            stderr(&out),
            daemon.log()
        );
        out
    };
    // The administrator (root) sets up a token and a key pair.
    ok(
        None,
        &[
            "--init-token",
            "--label",
            "policy-token",
            "--so-pin",
            SO_PIN,
        ],
    );
    ok(
        None,
        &[
            "--login",
            "--login-type",
            "so",
            "--so-pin",
            SO_PIN,
            "--init-pin",
            "--pin",
            PIN,
        ],
    );
    ok(
        None,
        &[
            "--login",
            "--pin",
            PIN,
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--id",
            "01",
            "--label",
            "signer",
        ],
    );
    let out = daemon.cli(&[
        "create-user",
        "--user-name",
        "alice",
        "--unix-uid",
        &ALICE.to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let sign = |uid: Option<u32>| {
        let sig = if uid.is_some() { &alice_sig } else { &root_sig };
        pkcs11_tool(
            &config,
            uid,
            &[
                "--login",
                "--pin",
                PIN,
                "--sign",
                "--mechanism",
                "ECDSA-SHA256",
                "--id",
                "01",
                "--input-file",
                &data.display().to_string(),
                "--output-file",
                sig,
            ],
        )
    };
    // Root may (the default key policy allows the account's administrators).
    assert!(sign(None).status.success(), "{}", stderr(&sign(None)));
    // Alice may not: no policy statement or grant names her.
    let out = sign(Some(ALICE));
    assert!(!out.status.success(), "alice signed without a grant");
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("CKR_KEY_FUNCTION_NOT_PERMITTED"), "{text}");

    // A grant for Sign on the key lets her.
    let keys = json(&daemon.cli(&["list-keys", "--output", "json"]));
    let key_id = keys["Keys"][0]["KeyId"]
        .as_str()
        .expect("one key")
        .to_string();
    let out = daemon.cli(&[
        "create-grant",
        "--key-id",
        &key_id,
        "--grantee-principal",
        "arn:aws:iam::111122223333:user/alice",
        "--operations",
        "Sign",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = sign(Some(ALICE));
    assert!(
        out.status.success(),
        "alice with a grant: {}{}",
        stdout(&out),
        stderr(&out)
    );

    // Issue 11: each C_Sign left exactly one record, named by the function
    // with its mechanism, principal, key and outcome (the refusal as
    // AccessDeniedException); the PIN is in none.
    let events = json(&daemon.cli(&[
        "lookup-events",
        "--lookup-attributes",
        "AttributeKey=EventName,AttributeValue=C_Sign",
        "--output",
        "json",
    ]));
    let mut records: Vec<serde_json::Value> = events["Events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| serde_json::from_str(e["CloudTrailEvent"].as_str().unwrap()).unwrap())
        .collect();
    records.reverse(); // oldest first
    assert_eq!(records.len(), 3, "{records:#?}");
    let arn = |r: &serde_json::Value| r["userIdentity"]["arn"].as_str().unwrap().to_string();
    for r in &records {
        assert_eq!(r["eventSource"], "pkcs11.tinfoil.local");
        assert_eq!(
            r["requestParameters"]["mechanism"], "CKM_ECDSA_SHA256",
            "{r}"
        );
        assert_eq!(r["requestParameters"]["kmsAction"], "kms:Sign", "{r}");
        assert_eq!(r["requestParameters"]["keyId"], key_id.as_str(), "{r}");
        assert!(r["resources"][0]["ARN"]
            .as_str()
            .unwrap()
            .ends_with(&key_id));
        assert!(!r.to_string().contains(PIN), "the PIN is in {r}");
    }
    assert!(arn(&records[0]).ends_with(":root"), "{}", records[0]);
    assert!(records[0].get("errorCode").is_none());
    assert!(
        records[0]["sourceIPAddress"]
            .as_str()
            .unwrap()
            .starts_with("unix:uid=0,"),
        "{}",
        records[0]
    );
    assert!(arn(&records[1]).ends_with(":user/alice"), "{}", records[1]);
    assert_eq!(records[1]["errorCode"], "AccessDeniedException");
    assert!(
        records[1]["sourceIPAddress"]
            .as_str()
            .unwrap()
            .starts_with(&format!("unix:uid={ALICE},")),
        "{}",
        records[1]
    );
    assert!(arn(&records[2]).ends_with(":user/alice"));
    assert!(records[2].get("errorCode").is_none(), "{}", records[2]);
    // The key pair: one C_GenerateKeyPair record naming it.
    let made = json(&daemon.cli(&[
        "lookup-events",
        "--lookup-attributes",
        "AttributeKey=EventName,AttributeValue=C_GenerateKeyPair",
        "--output",
        "json",
    ]));
    let made = made["Events"].as_array().expect("events");
    assert_eq!(made.len(), 1, "{made:#?}");
    let made: serde_json::Value =
        serde_json::from_str(made[0]["CloudTrailEvent"].as_str().unwrap()).unwrap();
    assert!(
        made["resources"][0]["ARN"]
            .as_str()
            .unwrap()
            .ends_with(&key_id),
        "{made}"
    );
    assert_eq!(
        made["requestParameters"]["mechanism"],
        "CKM_EC_KEY_PAIR_GEN"
    );
    daemon.stop();
}
