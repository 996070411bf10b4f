//! Who a caller on the Unix socket is: the kernel's peer uid (SO_PEERCRED),
//! mapped to the administrators, a bound user, or nobody. Runs the CLI as
//! other Unix users with `setpriv`, so it needs root (as scripts/test runs).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Output;

use tinfoil_e2e_tests::daemon::{assert_kms_error, json, stderr, Daemon, Store};
use tinfoil_e2e_tests::unix_users::{is_root, tinfoil_as};

/// nobody / nogroup on Debian.
const OTHER_UID: u32 = 65534;
const OTHER_GID: u32 = 65534;

/// Runs `tinfoil --endpoint ENDPOINT ARGS` as uid/gid `OTHER_*`.
fn cli_as_other(endpoint: &str, args: &[&str]) -> Output {
    tinfoil_as(OTHER_UID, OTHER_GID, endpoint, args)
}

/// A daemon whose socket, in a directory others may traverse, belongs to
/// group `OTHER_GID` with mode 0660.
fn daemon_with_group_socket(store: &Store, extra: &[&str]) -> (Daemon, tempfile::TempDir) {
    let socket_dir = tempfile::Builder::new()
        .prefix("tinfoil-sock-")
        .tempdir()
        .expect("tempdir");
    std::fs::set_permissions(socket_dir.path(), std::fs::Permissions::from_mode(0o711))
        .expect("chmod socket dir");
    let socket = socket_dir.path().join("tinfoil.sock");
    let listen = format!("unix:{}", socket.display());
    let group = OTHER_GID.to_string();
    let mut args = vec!["--listen", &listen, "--socket-group", &group];
    args.extend_from_slice(extra);
    let daemon = Daemon::start_at(store, &args, &socket);
    let meta = std::fs::metadata(&socket).expect("socket");
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), OTHER_GID);
    (daemon, socket_dir)
}

#[test]
fn socket_callers_are_who_the_kernel_says_they_are() {
    if !is_root() {
        eprintln!("skipped: needs root to run the CLI as another uid (scripts/test runs as root)");
        return;
    }
    let store = Store::init();
    let (daemon, _socket_dir) = daemon_with_group_socket(&store, &[]);

    // An unbound uid is refused, and told how to get bound.
    let out = cli_as_other(&daemon.endpoint, &["list-keys"]);
    assert_kms_error(&out, "AccessDeniedException");
    assert!(
        stderr(&out).contains(&format!("--unix-uid {OTHER_UID}")),
        "{}",
        stderr(&out)
    );

    // Root (the test) is an administrator and binds the uid to a user.
    let created = json(&daemon.cli(&[
        "create-user",
        "--user-name",
        "snape",
        "--unix-uid",
        &OTHER_UID.to_string(),
        "--output",
        "json",
    ]));
    assert_eq!(
        created["User"]["Arn"],
        "arn:aws:iam::111122223333:user/snape"
    );

    // Now the uid acts as that user: account-level reads allowed to users
    // by default work...
    let out = cli_as_other(&daemon.endpoint, &["list-keys"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // ...and administrators' operations stay refused, naming the user.
    let out = cli_as_other(&daemon.endpoint, &["create-user", "--user-name", "mallory"]);
    assert_kms_error(&out, "AccessDeniedException");
    assert!(stderr(&out).contains("user/snape"), "{}", stderr(&out));
    let out = cli_as_other(
        &daemon.endpoint,
        &["create-access-key", "--user-name", "root"],
    );
    assert_kms_error(&out, "AccessDeniedException");
    let users = json(&daemon.cli(&["list-users", "--output", "json"]));
    assert_eq!(users["Users"].as_array().map(Vec::len), Some(1));

    // Unbinding (deleting the user) refuses the uid again at once.
    let out = daemon.cli(&["delete-user", "--user-name", "snape"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cli_as_other(&daemon.endpoint, &["list-keys"]);
    assert_kms_error(&out, "AccessDeniedException");
    daemon.stop();
}

#[test]
fn anonymous_uids_act_as_uid_users_only_when_configured() {
    if !is_root() {
        eprintln!("skipped: needs root to run the CLI as another uid (scripts/test runs as root)");
        return;
    }
    let store = Store::init();
    let (daemon, _socket_dir) = daemon_with_group_socket(&store, &["--socket-anonymous-uids"]);
    let out = cli_as_other(&daemon.endpoint, &["create-user", "--user-name", "mallory"]);
    assert_kms_error(&out, "AccessDeniedException");
    assert!(
        stderr(&out).contains(&format!("user/uid-{OTHER_UID}")),
        "{}",
        stderr(&out)
    );
    daemon.stop();
}

#[test]
fn the_default_socket_is_for_the_daemons_owner_only() {
    let store = Store::init();
    let daemon = Daemon::start(&store, &[]);
    let meta = std::fs::metadata(store.socket()).expect("socket");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    if is_root() {
        // The kernel refuses another uid before the daemon sees it.
        let out = cli_as_other(&daemon.endpoint, &["list-keys"]);
        assert!(!out.status.success());
    }
    daemon.stop();
}

#[test]
fn user_account_actions_limit_what_users_may_call_on_the_account() {
    if !is_root() {
        eprintln!("skipped: needs root to run the CLI as another uid (scripts/test runs as root)");
        return;
    }
    let store = Store::init();
    let (daemon, _socket_dir) =
        daemon_with_group_socket(&store, &["--user-account-actions", "CreateKey"]);
    let out = daemon.cli(&[
        "create-user",
        "--user-name",
        "snape",
        "--unix-uid",
        &OTHER_UID.to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // CreateKey is allowed (and the key is the creator's to use)...
    let created = cli_as_other(&daemon.endpoint, &["create-key", "--output", "json"]);
    assert!(created.status.success(), "{}", stderr(&created));
    let key: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let key_id = key["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    let out = cli_as_other(&daemon.endpoint, &["describe-key", "--key-id", &key_id]);
    assert!(out.status.success(), "{}", stderr(&out));
    // ...ListKeys is no longer.
    let out = cli_as_other(&daemon.endpoint, &["list-keys"]);
    assert_kms_error(&out, "AccessDeniedException");
    daemon.stop();
}
