//! Session key pairs (CKA_TOKEN false) for RSA, EC and EdDSA: they sign,
//! verify and (RSA) decrypt, die with their session, and copy to the token
//! with C_CopyObject as keystore libraries store a pair they generated.
//! Against SoftHSM2 (the control), our embedded and daemon backends.

mod common;

use common::{load, rv, user_session, Which, USER_PIN};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

fn pair(session: &Session, kind: &str, label: &str) -> (ObjectHandle, ObjectHandle) {
    let (mech, mut public) = match kind {
        "rsa" => (
            Mechanism::RsaPkcsKeyPairGen,
            vec![
                Attribute::ModulusBits(2048.into()),
                Attribute::Encrypt(true),
            ],
        ),
        "ec" => (
            Mechanism::EccKeyPairGen,
            vec![Attribute::EcParams(P256.to_vec())],
        ),
        _ => (
            Mechanism::EccEdwardsKeyPairGen,
            vec![Attribute::EcParams(ED25519.to_vec())],
        ),
    };
    public.extend([
        Attribute::Token(false),
        Attribute::Verify(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ]);
    let mut private = vec![
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sign(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    if kind == "rsa" {
        private.push(Attribute::Decrypt(true));
    }
    session
        .generate_key_pair(&mech, &public, &private)
        .unwrap_or_else(|e| panic!("{kind}: {e}"))
}

fn sign_mech(kind: &str) -> Mechanism<'static> {
    match kind {
        "rsa" => Mechanism::Sha256RsaPkcs,
        "ec" => Mechanism::Ecdsa,
        _ => Mechanism::Eddsa(cryptoki::mechanism::eddsa::EddsaParams::new(
            cryptoki::mechanism::eddsa::EddsaSignatureScheme::Pure,
        )),
    }
}

fn signs(session: &Session, kind: &str, public: ObjectHandle, private: ObjectHandle) {
    let msg = [3u8; 32];
    let sig = session.sign(&sign_mech(kind), private, &msg).unwrap();
    session
        .verify(&sign_mech(kind), public, &msg, &sig)
        .unwrap();
    let mut bad = sig.clone();
    bad[0] ^= 1;
    assert_eq!(
        rv(session.verify(&sign_mech(kind), public, &msg, &bad)),
        RvError::SignatureInvalid
    );
}

fn session_pairs_work_and_die_with_their_session(which: Which) {
    let m = load(which);
    let session = user_session(&m, "pairs");
    let slot = session.get_session_info().unwrap().slot_id();
    let keeper = m.p11.open_ro_session(slot).unwrap();
    let work = m.p11.open_rw_session(slot).unwrap();
    for kind in ["rsa", "ec", "ed"] {
        let (public, private) = pair(&work, kind, kind);
        signs(&work, kind, public, private);
        if kind == "rsa" {
            let ct = work.encrypt(&Mechanism::RsaPkcs, public, b"hi").unwrap();
            assert_eq!(
                work.decrypt(&Mechanism::RsaPkcs, private, &ct).unwrap(),
                b"hi"
            );
        }
        assert_eq!(
            keeper
                .find_objects(&[Attribute::Label(kind.as_bytes().to_vec())])
                .unwrap()
                .len(),
            2,
            "{which:?} {kind}: seen by the application's other sessions"
        );
    }
    // Destroying one half leaves the other working.
    let (public, private) = pair(&work, "ec", "half");
    work.destroy_object(private).unwrap();
    let (p2, k2) = pair(&work, "ec", "half2");
    let sig = work.sign(&Mechanism::Ecdsa, k2, &[1u8; 32]).unwrap();
    assert_eq!(
        rv(work.verify(&Mechanism::Ecdsa, public, &[1u8; 32], &sig)),
        RvError::SignatureInvalid,
        "the surviving public half still verifies (another key's signature: invalid)"
    );
    work.verify(&Mechanism::Ecdsa, p2, &[1u8; 32], &sig)
        .unwrap();
    drop(work);
    for kind in ["rsa", "ec", "ed", "half2"] {
        assert!(
            keeper
                .find_objects(&[Attribute::Label(kind.as_bytes().to_vec())])
                .unwrap()
                .is_empty(),
            "{which:?} {kind}: gone with the session"
        );
    }
}

fn a_session_pair_copies_to_the_token(which: Which) {
    let m = load(which);
    let session = user_session(&m, "pairs");
    for kind in ["rsa", "ec", "ed"] {
        let (public, private) = pair(&session, kind, "gen");
        let label = format!("stored-{kind}").into_bytes();
        let to_token = [Attribute::Token(true), Attribute::Label(label.clone())];
        let stored_private = session.copy_object(private, &to_token).unwrap();
        let stored_public = session.copy_object(public, &to_token).unwrap();
        signs(&session, kind, stored_public, stored_private);
        // The copies sign alike: the token key is the session pair's key.
        signs(&session, kind, public, stored_private);
        // A copy cannot gain a usage.
        if which != Which::SoftHsm {
            assert_eq!(
                rv(session.copy_object(public, &[Attribute::Wrap(true)])),
                RvError::AttributeReadOnly
            );
        }
        for h in [public, private] {
            session.destroy_object(h).unwrap();
        }
    }
    // The token copies outlive the session.
    let slot = session.get_session_info().unwrap().slot_id();
    drop(session);
    let again = m.p11.open_rw_session(slot).unwrap();
    again
        .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    for kind in ["rsa", "ec", "ed"] {
        let found = again
            .find_objects(&[Attribute::Label(format!("stored-{kind}").into_bytes())])
            .unwrap();
        assert_eq!(found.len(), 2, "{which:?} {kind}");
    }
}

/// Both halves on the token or both in the session (SoftHSM mixes them).
fn mixed_token_flags_are_refused(which: Which) {
    let m = load(which);
    let session = user_session(&m, "pairs");
    assert_eq!(
        rv(session.generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::Token(true), Attribute::EcParams(P256.to_vec())],
            &[Attribute::Token(false), Attribute::Sign(true)],
        )),
        RvError::TemplateInconsistent
    );
    assert!(session.find_objects(&[]).unwrap().is_empty());
}

with_keys!(
    session_pairs_work_and_die_with_their_session,
    a_session_pair_copies_to_the_token,
);
ours_only_embedded!(mixed_token_flags_are_refused);
