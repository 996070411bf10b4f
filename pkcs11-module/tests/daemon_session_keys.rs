//! Session keys made through tinfoild belong to the client connection that
//! made them: another connection cannot use their handles, and they are
//! wiped when the connection goes away (a killed application included).
//! The daemon's count comes from its Stats RPC. Polls wait for the daemon
//! to notice a closed socket; no time is asserted.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use cryptoki_sys::*;
use tinfoil_proto::pkcs11_wire::error_from_status;
use tinfoil_proto::v1 as pb;
use tinfoil_proto::v1::pkcs11_backend_client::Pkcs11BackendClient;
use tonic::transport::Channel;

use common::{load, Which, USER_PIN};

/// How long the daemon may take to see a closed connection (a loaded CI
/// machine); the test fails only past this.
const PATIENCE: Duration = Duration::from_secs(60);
const CHILD_ENV: &str = "TINFOIL_TEST_SESSION_KEY_CHILD";
const CHILD_KEYS: usize = 3;

fn socket() -> PathBuf {
    let endpoint = common::daemon::endpoint();
    PathBuf::from(endpoint.strip_prefix("unix:").expect("a unix: endpoint"))
}

async fn client() -> Pkcs11BackendClient<Channel> {
    Pkcs11BackendClient::new(tinfoil_proto::unix::connect(socket()).await.unwrap())
}

async fn stats(c: &mut Pkcs11BackendClient<Channel>) -> pb::P11StatsResponse {
    c.stats(pb::P11Empty {}).await.unwrap().into_inner()
}

/// Polls until the daemon holds `want` session keys.
async fn wait_for_keys(c: &mut Pkcs11BackendClient<Channel>, want: u64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let now = stats(c).await;
        if now.session_keys == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon still holds {} session keys, expected {want}",
            now.session_keys
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn session(id: u64) -> pb::P11KeyHandle {
    pb::P11KeyHandle {
        kind: Some(pb::p11_key_handle::Kind::Session(id)),
    }
}

#[test]
fn session_keys_belong_to_their_connection_and_go_with_it() {
    let _loaded = load(Which::Daemon);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut a = client().await;
        let mut b = client().await;
        let baseline = stats(&mut b).await.session_keys;
        let key = a
            .generate_secret_key(pb::P11GenerateSecretKeyRequest {
                token_label: None,
                aes: true,
                len: 32,
                extractable: false,
                readable: false,
            })
            .await
            .unwrap()
            .into_inner();
        let Some(pb::p11_key_handle::Kind::Session(id)) = key.kind else {
            panic!("not a session key: {key:?}");
        };
        assert_eq!(
            a.secret_len(session(id)).await.unwrap().into_inner().len,
            32
        );
        let now = stats(&mut b).await;
        assert_eq!(now.session_keys, baseline + 1);
        assert!(now.connections >= 2, "{now:?}");

        // The other connection cannot use, or destroy, that handle.
        let err = b.secret_len(session(id)).await.unwrap_err();
        let rv = error_from_status(&err).rv();
        assert!(
            rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID,
            "CKR 0x{rv:x}: {err:?}"
        );
        let aes = pb::P11AesRequest {
            key: Some(session(id)),
            mode: Some(tinfoil_proto::pkcs11_wire::aes_to_wire(
                &tinfoil_pkcs11::backend::AesMode::Ecb,
            )),
            encrypt: true,
            data: vec![0u8; 16],
        };
        assert!(b.aes(aes.clone()).await.is_err());
        b.destroy_key(session(id)).await.unwrap();
        assert_eq!(
            a.secret_len(session(id)).await.unwrap().into_inner().len,
            32
        );
        assert_eq!(a.aes(aes).await.unwrap().into_inner().data.len(), 16);
        assert_eq!(stats(&mut b).await.session_keys, baseline + 1);

        // The connection closes: its key is gone.
        drop(a);
        wait_for_keys(&mut b, baseline).await;
    });
}

#[test]
fn a_killed_application_leaves_no_session_keys_behind() {
    if std::env::var_os(CHILD_ENV).is_some() {
        // This process is the application the test kills.
        return child_makes_session_keys_and_waits();
    }
    let loaded = load(Which::Daemon);
    loaded.token("crashing-app");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut c = rt.block_on(client());
    let baseline = rt.block_on(stats(&mut c)).session_keys;

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "a_killed_application_leaves_no_session_keys_behind",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // libtest prints "test NAME ... " before the child's own output.
    let ready = lines
        .by_ref()
        .map_while(|l| l.ok())
        .any(|l| l.ends_with("READY"));
    assert!(ready, "the child did not make its keys");
    rt.block_on(wait_for_keys(&mut c, baseline + CHILD_KEYS as u64));

    child.kill().unwrap();
    child.wait().unwrap();
    rt.block_on(wait_for_keys(&mut c, baseline));
}

#[test]
fn c_finalize_with_sessions_open_frees_their_session_keys() {
    let loaded = load(Which::Daemon);
    let slot = loaded.token("finalizing-app");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut c = rt.block_on(client());
    let baseline = rt.block_on(stats(&mut c)).session_keys;
    let s = loaded.p11.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    for _ in 0..2 {
        s.generate_key(
            &Mechanism::AesKeyGen,
            &[Attribute::Token(false), Attribute::ValueLen(16.into())],
        )
        .unwrap();
    }
    rt.block_on(wait_for_keys(&mut c, baseline + 2));
    // The session stays open (never closed): C_Finalize alone ends it.
    std::mem::forget(s);
    loaded.p11.clone().finalize().unwrap();
    rt.block_on(wait_for_keys(&mut c, baseline));
}

/// The application of a_killed_application_leaves_no_session_keys_behind:
/// the test runs itself again as a child process (with `CHILD_ENV` set),
/// which makes session keys through the module, then waits to be killed.
fn child_makes_session_keys_and_waits() {
    let p11 = Pkcs11::new(common::tinfoil_path()).unwrap();
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = p11
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| p11.get_token_info(*s).unwrap().label() == "crashing-app")
        .expect("the token");
    let s = p11.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    for _ in 0..CHILD_KEYS {
        s.generate_key(
            &Mechanism::AesKeyGen,
            &[Attribute::Token(false), Attribute::ValueLen(32.into())],
        )
        .unwrap();
    }
    println!("READY");
    // Until killed (stdin stays open).
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}
