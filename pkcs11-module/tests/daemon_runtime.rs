//! The daemon backend inside host applications that run their own tokio:
//! the module drives its gRPC client on its own runtime and never calls
//! `block_on` on a host thread, so C_Initialize, operations and C_Finalize
//! work from a runtime worker thread, from `spawn_blocking`, and from a
//! current-thread runtime.

mod common;

use common::{load, Loaded, Which, USER_PIN};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

/// C_Initialize (in `load`), a token, a key pair, a signature that
/// verifies, random bytes; C_Finalize when `m` drops.
fn initialise_and_sign() -> Loaded {
    let m = load(Which::Daemon);
    let slot = m.token("host-rt");
    let session = m.p11.open_rw_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    let (public, private) = session
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::Verify(true),
                // P-256's OID, DER-encoded.
                Attribute::EcParams(vec![
                    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
                ]),
            ],
            &[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Token(true),
                Attribute::Sign(true),
            ],
        )
        .unwrap();
    let signature = session
        .sign(
            &Mechanism::EcdsaSha256,
            private,
            b"signed on a host runtime",
        )
        .unwrap();
    session
        .verify(
            &Mechanism::EcdsaSha256,
            public,
            b"signed on a host runtime",
            &signature,
        )
        .unwrap();
    let mut random = [0u8; 32];
    session.generate_random_slice(&mut random).unwrap();
    assert_ne!(random, [0u8; 32]);
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_on_a_worker_thread_of_a_host_runtime() {
    // Called straight from async code: C_Finalize (the drop) also runs on
    // the host's worker thread.
    drop(initialise_and_sign());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_from_spawn_blocking_of_a_host_runtime() {
    tokio::task::spawn_blocking(|| drop(initialise_and_sign()))
        .await
        .expect("the blocking task finished");
}

#[tokio::test]
async fn works_on_a_current_thread_host_runtime() {
    let m = initialise_and_sign();
    // The host runtime still runs its own tasks afterwards.
    let answer = tokio::spawn(async { 6 * 7 }).await.unwrap();
    assert_eq!(answer, 42);
    drop(m);
}

#[test]
fn initialise_in_one_thread_finalise_in_another() {
    let m = initialise_and_sign();
    let p11 = m.p11.clone();
    std::thread::spawn(move || p11.finalize().expect("C_Finalize"))
        .join()
        .unwrap();
}

#[test]
fn many_application_threads_share_the_connection() {
    let m = load(Which::Daemon);
    let slot = m.token("threads");
    let session = m.p11.open_rw_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    let key = session
        .generate_key(
            &Mechanism::GenericSecretKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(cryptoki::object::KeyType::GENERIC_SECRET),
                Attribute::ValueLen(32.into()),
                Attribute::Token(true),
                Attribute::Sign(true),
                Attribute::Verify(true),
            ],
        )
        .unwrap();
    let expected = session.sign(&Mechanism::Sha256Hmac, key, b"same").unwrap();
    // Each thread its own session; all calls share one connection, which
    // the callers take turns driving.
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                let s = m.p11.open_ro_session(slot).unwrap();
                for _ in 0..100 {
                    assert_eq!(
                        s.sign(&Mechanism::Sha256Hmac, key, b"same").unwrap(),
                        expected
                    );
                }
            });
        }
    });
}
