//! tinfoild's `Pipe` (the daemon backend's fast calls as messages on one
//! stream) answers exactly as the unary RPCs: same bytes, same errors with
//! the same CK_RV, the connection's own session keys only, and it keeps
//! going after an error. The module itself uses the pipe for AES,
//! signatures, HMAC and random, so every daemon case of the other suites
//! runs over it too.

mod common;

use std::path::PathBuf;

use cryptoki_sys::*;
use tinfoil_proto::pkcs11_wire::{error_from_status, status_of_pipe_error};
use tinfoil_proto::v1 as pb;
use tinfoil_proto::v1::pkcs11_backend_client::Pkcs11BackendClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use common::{load, Which};

use pb::p11_pipe_call::Call;
use pb::p11_pipe_reply::Reply;

async fn client() -> Pkcs11BackendClient<Channel> {
    let endpoint = common::daemon::endpoint();
    let path = PathBuf::from(endpoint.strip_prefix("unix:").expect("a unix: endpoint"));
    Pkcs11BackendClient::new(tinfoil_proto::unix::connect(path).await.unwrap())
}

/// An open pipe of one client.
struct Pipe {
    calls: mpsc::Sender<pb::P11PipeCall>,
    replies: tonic::Streaming<pb::P11PipeReply>,
}

impl Pipe {
    async fn open(client: &mut Pkcs11BackendClient<Channel>) -> Pipe {
        let (calls, outbound) = mpsc::channel(4);
        let replies = client
            .pipe(ReceiverStream::new(outbound))
            .await
            .expect("tinfoild opens a pipe")
            .into_inner();
        Pipe { calls, replies }
    }

    async fn call(&mut self, call: Option<Call>) -> Reply {
        self.calls
            .send(pb::P11PipeCall { call, audit: None })
            .await
            .unwrap();
        self.replies
            .message()
            .await
            .expect("the pipe stays open")
            .expect("one reply per call")
            .reply
            .expect("a reply")
    }
}

fn session(id: u64) -> pb::P11KeyHandle {
    pb::P11KeyHandle {
        kind: Some(pb::p11_key_handle::Kind::Session(id)),
    }
}

fn ecb(key: pb::P11KeyHandle, data: &[u8]) -> pb::P11AesRequest {
    pb::P11AesRequest {
        key: Some(key),
        mode: Some(pb::P11AesMode {
            mode: Some(pb::p11_aes_mode::Mode::Ecb(pb::P11Empty {})),
        }),
        encrypt: true,
        data: data.to_vec(),
    }
}

fn bytes(reply: Reply) -> Vec<u8> {
    match reply {
        Reply::Bytes(answer) => answer.data,
        other => panic!("expected bytes, got {other:?}"),
    }
}

fn ckr(reply: Reply) -> CK_RV {
    match reply {
        Reply::Error(error) => error_from_status(&status_of_pipe_error(error)).rv(),
        other => panic!("expected an error, got {other:?}"),
    }
}

async fn session_key(client: &mut Pkcs11BackendClient<Channel>, aes: bool) -> pb::P11KeyHandle {
    client
        .generate_secret_key(pb::P11GenerateSecretKeyRequest {
            token_label: None,
            aes,
            len: 32,
            extractable: false,
            readable: false,
        })
        .await
        .unwrap()
        .into_inner()
}

#[test]
fn the_pipe_answers_as_the_unary_calls_do() {
    let _loaded = load(Which::Daemon);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut a = client().await;
        let aes_key = session_key(&mut a, true).await;
        let hmac_key = session_key(&mut a, false).await;
        let mut pipe = Pipe::open(&mut a).await;
        let block = [0x5au8; 32];

        // Same bytes as the unary call.
        let piped = bytes(
            pipe.call(Some(Call::Aes(ecb(aes_key.clone(), &block))))
                .await,
        );
        let unary = a
            .aes(ecb(aes_key.clone(), &block))
            .await
            .unwrap()
            .into_inner()
            .data;
        assert_eq!(piped, unary);
        assert_ne!(piped, block);
        let hmac = pb::P11HmacRequest {
            key: Some(hmac_key.clone()),
            hash_len: 32,
            data: b"message".to_vec(),
        };
        let piped = bytes(pipe.call(Some(Call::Hmac(hmac.clone()))).await);
        assert_eq!(piped, a.hmac(hmac).await.unwrap().into_inner().data);
        assert_eq!(piped.len(), 32);
        let verify = pb::P11HmacVerifyRequest {
            key: Some(hmac_key.clone()),
            hash_len: 32,
            data: b"message".to_vec(),
            mac: piped.clone(),
        };
        match pipe.call(Some(Call::HmacVerify(verify.clone()))).await {
            Reply::Ok(answer) => assert!(answer.ok),
            other => panic!("expected a verdict, got {other:?}"),
        }
        // A MAC that does not verify fails inside its recorded call (so its
        // audit record carries the failure): CKR_SIGNATURE_INVALID, as on
        // the unary call.
        let mut wrong = verify;
        wrong.mac[0] ^= 1;
        let piped = ckr(pipe.call(Some(Call::HmacVerify(wrong.clone()))).await);
        assert_eq!(piped, CKR_SIGNATURE_INVALID);
        let status = a.hmac_verify(wrong).await.unwrap_err();
        assert_eq!(error_from_status(&status).rv(), CKR_SIGNATURE_INVALID);
        let random = bytes(
            pipe.call(Some(Call::GenerateRandom(pb::P11GenerateRandomRequest {
                len: 48,
            })))
            .await,
        );
        assert_eq!(random.len(), 48);

        // Errors carry the unary call's CK_RV, and the pipe goes on.
        let unknown = session(u64::from(u32::MAX) + 7);
        let piped = ckr(pipe
            .call(Some(Call::Aes(ecb(unknown.clone(), &block))))
            .await);
        let status = a.aes(ecb(unknown, &block)).await.unwrap_err();
        assert_eq!(piped, error_from_status(&status).rv());
        assert!(
            [CKR_KEY_HANDLE_INVALID, CKR_OBJECT_HANDLE_INVALID].contains(&piped),
            "{piped:#x}"
        );
        assert_eq!(
            ckr(pipe
                .call(Some(Call::Aes(ecb(aes_key.clone(), &block[..31]))))
                .await),
            CKR_DATA_LEN_RANGE,
            "ECB takes whole blocks"
        );
        match pipe.call(None).await {
            Reply::Error(error) => {
                assert_eq!(error.code, tonic::Code::InvalidArgument as i32, "{error:?}")
            }
            other => panic!("an empty call must be refused, got {other:?}"),
        }
        let again = bytes(
            pipe.call(Some(Call::Aes(ecb(aes_key.clone(), &block))))
                .await,
        );
        assert_eq!(again, unary, "the pipe still answers after errors");

        // Another connection's pipe cannot use this connection's session key.
        let mut b = client().await;
        let mut other = Pipe::open(&mut b).await;
        let refused = ckr(other
            .call(Some(Call::Aes(ecb(aes_key.clone(), &block))))
            .await);
        let status = b.aes(ecb(aes_key, &block)).await.unwrap_err();
        assert_eq!(refused, error_from_status(&status).rv());
        assert!(
            [CKR_KEY_HANDLE_INVALID, CKR_OBJECT_HANDLE_INVALID].contains(&refused),
            "{refused:#x}"
        );
    });
}

/// A request over the daemon's message limit breaks the module's pipe
/// (tinfoild ends the stream): the call fails with a clear code, and the
/// calls after it work, over a pipe opened again. (A call larger than the
/// module's 16 KiB parts goes over the Chunked RPC instead, so the daemon
/// here takes 8 KiB messages.)
#[test]
fn a_broken_pipe_is_replaced() {
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::Attribute;
    use cryptoki::session::UserType;
    use cryptoki::types::AuthPin;

    let loaded = common::load_daemon_with(&["--max-message-bytes", "8192"]);
    let slot = loaded.token("pipe");
    let s = loaded.p11.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&AuthPin::new(common::USER_PIN.into())))
        .unwrap();
    let key = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(32.into()),
                Attribute::Token(false),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
            ],
        )
        .unwrap();
    let iv = [7u8; 16];
    let round_trip = |len: usize| {
        let data = vec![0x3cu8; len];
        let sealed = s.encrypt(&Mechanism::AesCbcPad(iv), key, &data)?;
        let opened = s.decrypt(&Mechanism::AesCbcPad(iv), key, &sealed)?;
        assert_eq!(opened, data);
        Ok::<_, cryptoki::error::Error>(())
    };
    round_trip(4096).unwrap();
    // Over this tinfoild's 8 KiB message limit, under the 16 KiB parts.
    let err = round_trip(10 * 1024).expect_err("the daemon refuses 10 KiB");
    assert!(
        matches!(
            err,
            cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::DeviceMemory, _)
        ),
        "{err:?}"
    );
    for _ in 0..3 {
        round_trip(4096).unwrap();
    }
}
