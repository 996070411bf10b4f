//! The daemon backend and the KMS side of the same tinfoild: keys made
//! through PKCS#11 are KMS keys that `tinfoil list-keys` shows, the CLI's
//! lifecycle changes reach the module's next call, and a daemon that goes
//! away gives clear errors instead of a crash.

mod common;

use common::{rv, user_session};

use common::{daemon, load, Which, USER_PIN};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::{AuthPin, Ulong};

fn token_aes_key(session: &Session, label: &str) -> ObjectHandle {
    session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::ValueLen(32.into()),
                Attribute::Token(true),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Label(label.as_bytes().to_vec()),
            ],
        )
        .unwrap()
}

fn encrypt(session: &Session, key: ObjectHandle) -> Result<Vec<u8>, Error> {
    let mut iv = [7u8; 12];
    let mech = Mechanism::AesGcm(GcmParams::new(&mut iv, b"aad", Ulong::from(128)).unwrap());
    session.encrypt(&mech, key, b"some plaintext")
}

/// Runs the CLI against the test's daemon and parses its JSON answer.
fn cli_json(args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let out = daemon::cli(&all);
    assert!(
        out.status.success(),
        "tinfoil {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("tinfoil printed JSON")
}

fn key_ids() -> Vec<String> {
    cli_json(&["list-keys"])["Keys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k["KeyId"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn key_state(key_id: &str) -> String {
    cli_json(&["describe-key", "--key-id", key_id])["KeyMetadata"]["KeyState"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn pkcs11_keys_are_kms_keys_and_the_cli_lifecycle_reaches_the_module() {
    let m = load(Which::Daemon);
    let session = user_session(&m, "shared");
    assert!(key_ids().is_empty(), "a fresh store holds no keys");

    let key = token_aes_key(&session, "made-by-pkcs11");
    let ids = key_ids();
    assert_eq!(ids.len(), 1, "the PKCS#11 key is listed: {ids:?}");
    let key_id = &ids[0];
    let meta = &cli_json(&["describe-key", "--key-id", key_id])["KeyMetadata"];
    assert_eq!(meta["Token"], "shared", "{meta}");
    assert_eq!(meta["KeyState"], "Enabled", "{meta}");
    encrypt(&session, key).expect("an enabled key encrypts");

    // Disabled with the CLI: the module's next use fails.
    cli_json(&["disable-key", "--key-id", key_id]);
    assert_eq!(rv(encrypt(&session, key)), RvError::KeyFunctionNotPermitted);
    cli_json(&["enable-key", "--key-id", key_id]);
    encrypt(&session, key).expect("enabled again, the key encrypts");

    // C_DestroyObject schedules the deletion; the CLI can still see it.
    session.destroy_object(key).unwrap();
    assert_eq!(key_state(key_id), "PendingDeletion");
    let left = session
        .find_objects(&[Attribute::Label(b"made-by-pkcs11".to_vec())])
        .unwrap();
    assert!(left.is_empty(), "a destroyed key is no longer an object");
    drop(session);

    // A key made with the CLI in the token's namespace is an object at
    // once, without initialising again.
    let made = cli_json(&[
        "create-key",
        "--token",
        "shared",
        "--description",
        "made-by-cli",
    ]);
    let cli_key = made["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    let slot = m.p11.get_slots_with_initialized_token().unwrap()[0];
    let session = m.p11.open_rw_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    let found = session
        .find_objects(&[Attribute::Id(cli_key.as_bytes().to_vec())])
        .unwrap();
    assert_eq!(found.len(), 1, "the CLI's key shows up as one object");
    let label = session
        .get_attributes(found[0], &[AttributeType::Label])
        .unwrap();
    assert_eq!(label, vec![Attribute::Label(b"made-by-cli".to_vec())]);
    encrypt(&session, found[0]).expect("the CLI's key encrypts through PKCS#11");
}

fn find_id(session: &Session, key_id: &str) -> Vec<ObjectHandle> {
    session
        .find_objects(&[Attribute::Id(key_id.as_bytes().to_vec())])
        .unwrap()
}

fn cli_key(args: &[&str]) -> String {
    let mut all = vec!["create-key", "--token", "fresh"];
    all.extend(args);
    cli_json(&all)["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn the_clis_changes_show_in_c_find_objects_of_an_open_session_in_both_directions() {
    let m = load(Which::Daemon);
    let session = user_session(&m, "fresh");
    let untouched = token_aes_key(&session, "untouched");
    let all_before = session.find_objects(&[]).unwrap();
    assert_eq!(all_before, vec![untouched]);

    // Made after the session opened: found by the next search.
    let aes = cli_key(&["--description", "cli-aes"]);
    let ec = cli_key(&[
        "--key-spec",
        "ECC_NIST_P256",
        "--key-usage",
        "SIGN_VERIFY",
        "--description",
        "cli-ec",
    ]);
    let aes_objects = find_id(&session, &aes);
    assert_eq!(aes_objects.len(), 1, "the CLI's AES key is an object");
    encrypt(&session, aes_objects[0]).expect("the CLI's key encrypts");
    let ec_objects = find_id(&session, &ec);
    assert_eq!(ec_objects.len(), 2, "a private and a public key object");
    let signer = session
        .find_objects(&[
            Attribute::Id(ec.as_bytes().to_vec()),
            Attribute::Class(ObjectClass::PRIVATE_KEY),
        ])
        .unwrap();
    let signature = session
        .sign(&Mechanism::Ecdsa, signer[0], &[0x11; 32])
        .expect("the CLI's EC key signs");
    assert_eq!(signature.len(), 64);

    // Disabled: still an object (same handle), its use refused.
    cli_json(&["disable-key", "--key-id", &aes]);
    assert_eq!(find_id(&session, &aes), aes_objects);
    assert_eq!(
        rv(encrypt(&session, aes_objects[0])),
        RvError::KeyFunctionNotPermitted
    );
    cli_json(&["enable-key", "--key-id", &aes]);
    assert_eq!(find_id(&session, &aes), aes_objects);
    encrypt(&session, aes_objects[0]).expect("enabled again");

    // Deletion scheduled with the CLI: gone from the next search, also
    // for a key made through PKCS#11.
    cli_json(&[
        "schedule-key-deletion",
        "--key-id",
        &aes,
        "--pending-window-in-days",
        "7",
    ]);
    assert!(
        find_id(&session, &aes).is_empty(),
        "a key pending deletion is no object"
    );
    assert_eq!(
        rv(encrypt(&session, aes_objects[0])),
        RvError::ObjectHandleInvalid
    );
    let before = key_ids();
    let pkcs11_made = token_aes_key(&session, "doomed");
    let doomed_id = key_ids()
        .into_iter()
        .find(|id| !before.contains(id))
        .expect("the new PKCS#11 key's KMS id");
    assert!(session
        .find_objects(&[Attribute::Label(b"doomed".to_vec())])
        .unwrap()
        .contains(&pkcs11_made));
    cli_json(&[
        "schedule-key-deletion",
        "--key-id",
        &doomed_id,
        "--pending-window-in-days",
        "7",
    ]);
    assert!(session
        .find_objects(&[Attribute::Label(b"doomed".to_vec())])
        .unwrap()
        .is_empty());
    // Cancelled: the key is back (Disabled, as KMS leaves it), as a new
    // object.
    cli_json(&["cancel-key-deletion", "--key-id", &aes]);
    let back = find_id(&session, &aes);
    assert_eq!(back.len(), 1);
    assert_ne!(back, aes_objects, "a vanished handle is not reused");

    // Objects no one touched keep their handles throughout.
    assert_eq!(
        session
            .find_objects(&[Attribute::Label(b"untouched".to_vec())])
            .unwrap(),
        vec![untouched]
    );
    assert_eq!(find_id(&session, &ec), ec_objects);
    encrypt(&session, untouched).expect("the untouched key still encrypts");
}

#[test]
fn a_daemon_that_goes_away_gives_device_errors_not_a_crash() {
    let m = load(Which::Daemon);
    let session = user_session(&m, "gone");
    let key = token_aes_key(&session, "k");
    encrypt(&session, key).expect("the daemon answers");
    daemon::stop();
    assert_eq!(rv(encrypt(&session, key)), RvError::DeviceError);
    let mut buf = [0u8; 16];
    assert_eq!(
        rv(session.generate_random_slice(&mut buf)),
        RvError::DeviceError
    );
}

#[test]
fn no_daemon_at_the_endpoint_fails_c_initialize_cleanly() {
    let _guard = common::exclusive();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("tinfoil.toml");
    for endpoint in [
        format!("unix:{}", dir.path().join("absent.sock").display()),
        "tcp:127.0.0.1:1".to_string(),
        "unix:".to_string(),
    ] {
        std::fs::write(
            &conf,
            format!("backend = \"daemon\"\nendpoint = \"{endpoint}\"\n"),
        )
        .unwrap();
        std::env::set_var("TINFOIL_PKCS11_CONFIG", &conf);
        let p11 = Pkcs11::new(common::tinfoil_path()).expect("load module");
        let result = p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
        assert_eq!(rv(result), RvError::GeneralError, "{endpoint}");
        // Not initialised: calls say so, and a later C_Initialize may retry.
        assert_eq!(
            rv(p11.get_slots_with_token()),
            RvError::CryptokiNotInitialized
        );
    }
}

#[test]
fn data_over_the_daemons_message_limit_travels_in_parts() {
    let m = load(Which::Daemon);
    let session = user_session(&m, "limit");
    let key = token_aes_key(&session, "k");
    // tinfoild accepts requests of up to 64 KiB by default (--max-message-bytes):
    // a larger call goes over the Chunked RPC.
    let mut iv = [1u8; 12];
    let big = vec![0x5a; 128 * 1024];
    let sealed = {
        let mech = Mechanism::AesGcm(GcmParams::new(&mut iv, b"", Ulong::from(128)).unwrap());
        session.encrypt(&mech, key, &big).unwrap()
    };
    let mech = Mechanism::AesGcm(GcmParams::new(&mut iv, b"", Ulong::from(128)).unwrap());
    assert_eq!(session.decrypt(&mech, key, &sealed).unwrap(), big);
    encrypt(&session, key).expect("smaller data still encrypts");
}

#[test]
fn a_daemon_limit_under_the_part_size_is_device_memory_and_the_session_goes_on() {
    // Parts are 16 KiB: a daemon that takes less refuses what exceeds it.
    let m = common::load_daemon_with(&["--max-message-bytes", "8192"]);
    let session = user_session(&m, "small-limit");
    let key = token_aes_key(&session, "k");
    let mut iv = [1u8; 12];
    for len in [10 * 1024, 128 * 1024] {
        let mech = Mechanism::AesGcm(GcmParams::new(&mut iv, b"", Ulong::from(128)).unwrap());
        assert_eq!(
            rv(session.encrypt(&mech, key, &vec![0x5a; len])),
            RvError::DeviceMemory,
            "{len}"
        );
    }
    encrypt(&session, key).expect("smaller data still encrypts");
}

/// tinfoild pings idle connections every 30 s and drops those that do not
/// answer within 10 s; the module's keep-alive thread answers for an idle
/// application. It idles 45 s, in parallel with the rest of this file.
#[test]
fn an_idle_application_keeps_its_connection() {
    let m = load(Which::Daemon);
    let session = user_session(&m, "idle");
    let key = token_aes_key(&session, "k");
    encrypt(&session, key).expect("the daemon answers");
    std::thread::sleep(std::time::Duration::from_secs(45));
    encrypt(&session, key).expect("still connected after idling");
}
