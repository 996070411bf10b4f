//! PKCS#11 3.2 post-quantum keys (issue 16) through the cryptoki crate, on
//! the embedded and daemon backends: CKK_ML_DSA / CKK_ML_KEM key pairs with
//! CKA_PARAMETER_SET, CKM_ML_DSA (context strings, hedged and
//! deterministic), HashML-DSA, C_EncapsulateKey / C_DecapsulateKey with
//! CKM_ML_KEM, public key import and export, checked against RustCrypto's
//! ml-dsa and ml-kem; the 3.2 function list; a disabled key refuses.

mod common;

use common::{Which, USER_PIN};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, Rv, RvError};
use cryptoki::mechanism::dsa::{HashSignAdditionalContext, HedgeType, SignAdditionalContext};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{
    Attribute, AttributeInfo, AttributeType, KeyType, MlDsaParameterSetType, MlKemParameterSetType,
    ObjectClass, ObjectHandle, ParameterSetType,
};
use cryptoki::session::{Session, UserType};
use cryptoki::types::{AuthPin, Ulong};
use hsm_core::{Hsm, HsmOptions, KeySpec, SecretString};
use ml_dsa::{KeyExport as _, Keypair as _, MlDsa44, MlDsa65, MlDsa87, MlDsaParams};
use ml_kem::Decapsulate as _;

matrix!([embedded => Embedded, daemon => Daemon];
    ml_dsa_keys_sign_and_verify,
    ml_kem_keys_agree_with_rustcrypto,
    disabled_keys_refuse);

fn user_session(loaded: &common::Loaded) -> Session {
    let slot = loaded.token("pq");
    let session = loaded.p11.open_rw_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    session
}

/// The PKCS#11 error of a failed call.
fn rv(e: Error) -> RvError {
    match e {
        Error::Pkcs11(rv, _) => rv,
        other => panic!("not a PKCS#11 error: {other:?}"),
    }
}

/// The RvError of a CK_RV.
fn ck(code: cryptoki_sys::CK_RV) -> RvError {
    match Rv::from(code) {
        Rv::Error(e) => e,
        Rv::Ok => panic!("CKR_OK is no error"),
    }
}

fn dsa_pair(
    session: &Session,
    set: MlDsaParameterSetType,
    label: &str,
) -> (ObjectHandle, ObjectHandle) {
    session
        .generate_key_pair(
            &Mechanism::MlDsaKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::Verify(true),
                Attribute::ParameterSet(set.into()),
                Attribute::Label(label.into()),
            ],
            &[
                Attribute::Token(true),
                Attribute::Sign(true),
                Attribute::Label(label.into()),
            ],
        )
        .expect("C_GenerateKeyPair ML-DSA")
}

fn kem_pair(
    session: &Session,
    set: MlKemParameterSetType,
    token: bool,
) -> (ObjectHandle, ObjectHandle) {
    session
        .generate_key_pair(
            &Mechanism::MlKemKeyPairGen,
            &[Attribute::Token(token), Attribute::ParameterSet(set.into())],
            &[Attribute::Token(token), Attribute::Label(b"kem".to_vec())],
        )
        .expect("C_GenerateKeyPair ML-KEM")
}

fn value(session: &Session, object: ObjectHandle) -> Vec<u8> {
    match &session
        .get_attributes(object, &[AttributeType::Value])
        .unwrap()[..]
    {
        [Attribute::Value(v)] => v.clone(),
        other => panic!("no CKA_VALUE: {other:?}"),
    }
}

/// RustCrypto's verification of a pure ML-DSA signature under a context.
fn rc_verify(set: MlDsaParameterSetType, pk: &[u8], msg: &[u8], ctx: &[u8], sig: &[u8]) -> bool {
    fn with<P: MlDsaParams>(pk: &[u8], msg: &[u8], ctx: &[u8], sig: &[u8]) -> bool {
        let pk = ml_dsa::EncodedVerifyingKey::<P>::try_from(pk).unwrap();
        let Ok(sig) = ml_dsa::Signature::<P>::try_from(sig) else {
            return false;
        };
        ml_dsa::VerifyingKey::<P>::decode(&pk).verify_with_context(msg, ctx, &sig)
    }
    match set {
        s if s == MlDsaParameterSetType::ML_DSA_44 => with::<MlDsa44>(pk, msg, ctx, sig),
        s if s == MlDsaParameterSetType::ML_DSA_65 => with::<MlDsa65>(pk, msg, ctx, sig),
        _ => with::<MlDsa87>(pk, msg, ctx, sig),
    }
}

fn ml_dsa_keys_sign_and_verify(which: Which) {
    let loaded = common::load(which);
    // The 3.2 list is the default interface; C_GetInfo reports 3.2.
    let info = loaded.p11.get_library_info().unwrap();
    assert_eq!(
        (
            info.cryptoki_version().major(),
            info.cryptoki_version().minor()
        ),
        (3, 2)
    );
    let session = user_session(&loaded);
    let slot = session.get_session_info().unwrap().slot_id();
    let mech_info = loaded
        .p11
        .get_mechanism_info(slot, MechanismType::ML_DSA)
        .unwrap();
    assert_eq!(
        (mech_info.min_key_size(), mech_info.max_key_size()),
        (1312, 2592)
    );
    assert!(mech_info.sign() && mech_info.verify() && !mech_info.encrypt());
    let msg = b"a message to sign with a post-quantum key";
    let ctx = b"tinfoil context";

    let sets = [
        (MlDsaParameterSetType::ML_DSA_44, 1312, 2420),
        (MlDsaParameterSetType::ML_DSA_65, 1952, 3309),
        (MlDsaParameterSetType::ML_DSA_87, 2592, 4627),
    ];
    let mut pairs = Vec::new();
    for (set, pk_len, sig_len) in sets {
        let (public, private) = dsa_pair(&session, set, "dsa");
        pairs.push((public, private));
        let pk = value(&session, public);
        assert_eq!(pk.len(), pk_len);
        // The private key's value and seed are never readable.
        let hidden = session
            .get_attribute_info(private, &[AttributeType::Value, AttributeType::Seed])
            .unwrap();
        assert!(matches!(hidden[0], AttributeInfo::Sensitive), "{hidden:?}");
        assert!(
            !matches!(hidden[1], AttributeInfo::Available(_)),
            "{hidden:?}"
        );
        let hedged = Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::Required, Some(ctx)));
        let sig = session.sign(&hedged, private, msg).unwrap();
        assert_eq!(sig.len(), sig_len);
        assert!(
            rc_verify(set, &pk, msg, ctx, &sig),
            "RustCrypto verifies ours"
        );
        assert!(!rc_verify(set, &pk, msg, b"other context", &sig));
        session.verify(&hedged, public, msg, &sig).unwrap();
        // Without a parameter: hedged, empty context.
        let plain = Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::Preferred, None));
        let sig0 = session.sign(&plain, private, msg).unwrap();
        assert!(rc_verify(set, &pk, msg, b"", &sig0));
        session.verify(&plain, private, msg, &sig0).unwrap();
    }

    // ML-DSA-65 from here on.
    let (public, private) = pairs[1];
    let set = MlDsaParameterSetType::ML_DSA_65;
    let pk = value(&session, public);
    let with_ctx =
        |hedge, c: &'static [u8]| Mechanism::MlDsa(SignAdditionalContext::new(hedge, Some(c)));
    // Deterministic signatures repeat; hedged ones do not.
    let det = with_ctx(HedgeType::DeterministicRequired, ctx);
    let d1 = session.sign(&det, private, msg).unwrap();
    let d2 = session.sign(&det, private, msg).unwrap();
    assert_eq!(d1, d2, "deterministic");
    assert!(rc_verify(set, &pk, msg, ctx, &d1));
    let hedged = with_ctx(HedgeType::Required, ctx);
    let h1 = session.sign(&hedged, private, msg).unwrap();
    let h2 = session.sign(&hedged, private, msg).unwrap();
    assert_ne!(h1, h2, "hedged");
    // Multi-part signing gathers the message.
    session.sign_init(&hedged, private).unwrap();
    session.sign_update(&msg[..10]).unwrap();
    session.sign_update(&msg[10..]).unwrap();
    let parts = session.sign_final().unwrap();
    assert!(rc_verify(set, &pk, msg, ctx, &parts));

    // Refusals: a wrong context, a tampered signature, a wrong message,
    // another parameter set's key, an over-long context.
    let wrong_ctx = with_ctx(HedgeType::Required, b"another context");
    assert_eq!(
        rv(session.verify(&wrong_ctx, public, msg, &h1).unwrap_err()),
        ck(cryptoki_sys::CKR_SIGNATURE_INVALID)
    );
    let mut tampered = h1.clone();
    tampered[100] ^= 1;
    assert_eq!(
        rv(session.verify(&hedged, public, msg, &tampered).unwrap_err()),
        ck(cryptoki_sys::CKR_SIGNATURE_INVALID)
    );
    assert_eq!(
        rv(session
            .verify(&hedged, public, b"another message", &h1)
            .unwrap_err()),
        ck(cryptoki_sys::CKR_SIGNATURE_INVALID)
    );
    assert_eq!(
        rv(session.verify(&hedged, pairs[0].0, msg, &h1).unwrap_err()),
        ck(cryptoki_sys::CKR_SIGNATURE_LEN_RANGE),
        "an ML-DSA-44 key: a 65 signature is the wrong length"
    );
    let long = vec![7u8; 256];
    assert_eq!(
        rv(session
            .sign(
                &Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::Required, Some(&long))),
                private,
                msg
            )
            .unwrap_err()),
        ck(cryptoki_sys::CKR_MECHANISM_PARAM_INVALID)
    );
    // An unknown parameter set, a missing one, and a key type that
    // cannot sign.
    let unknown = ParameterSetType::try_from(Ulong::from(9)).unwrap();
    let refused = session.generate_key_pair(
        &Mechanism::MlDsaKeyPairGen,
        &[Attribute::ParameterSet(unknown), Attribute::Verify(true)],
        &[Attribute::Sign(true)],
    );
    assert_eq!(
        rv(refused.unwrap_err()),
        ck(cryptoki_sys::CKR_PARAMETER_SET_NOT_SUPPORTED)
    );
    let none = session.generate_key_pair(
        &Mechanism::MlDsaKeyPairGen,
        &[Attribute::Verify(true)],
        &[Attribute::Sign(true)],
    );
    assert_eq!(
        rv(none.unwrap_err()),
        ck(cryptoki_sys::CKR_TEMPLATE_INCOMPLETE)
    );
    let (kem_public, kem_private) = kem_pair(&session, MlKemParameterSetType::ML_KEM_768, false);
    assert_eq!(
        rv(session.sign(&hedged, kem_private, msg).unwrap_err()),
        ck(cryptoki_sys::CKR_KEY_FUNCTION_NOT_PERMITTED),
        "an ML-KEM key does not sign"
    );
    let _ = kem_public;

    // HashML-DSA: with hashing on the token, and over a digest the
    // application took (the same M', so each verifies the other).
    let hash_mech =
        Mechanism::HashMlDsaSha256(SignAdditionalContext::new(HedgeType::Required, Some(ctx)));
    let hs = session.sign(&hash_mech, private, msg).unwrap();
    session.verify(&hash_mech, public, msg, &hs).unwrap();
    let digest = session.digest(&Mechanism::Sha256, msg).unwrap();
    let prehashed = Mechanism::HashMlDsa(HashSignAdditionalContext::new(
        HedgeType::DeterministicRequired,
        Some(ctx),
        MechanismType::SHA256,
    ));
    session.verify(&prehashed, public, &digest, &hs).unwrap();
    let hd = session.sign(&prehashed, private, &digest).unwrap();
    session.verify(&hash_mech, public, msg, &hd).unwrap();
    assert_eq!(
        rv(session
            .sign(&prehashed, private, &digest[..31])
            .unwrap_err()),
        ck(cryptoki_sys::CKR_DATA_LEN_RANGE)
    );
    // HashML-DSA is not pure ML-DSA: the pure mechanism refuses it.
    assert_eq!(
        rv(session.verify(&hedged, public, msg, &hs).unwrap_err()),
        ck(cryptoki_sys::CKR_SIGNATURE_INVALID)
    );
    // RustCrypto checks HashML-DSA's M' (FIPS 204 Algorithm 4).
    let mut m_prime = vec![1u8, ctx.len() as u8];
    m_prime.extend_from_slice(ctx);
    m_prime.extend_from_slice(&[
        0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
    ]);
    m_prime.extend_from_slice(&digest);
    let vk = ml_dsa::VerifyingKey::<MlDsa65>::decode(
        &ml_dsa::EncodedVerifyingKey::<MlDsa65>::try_from(&pk[..]).unwrap(),
    );
    let sig = ml_dsa::Signature::<MlDsa65>::try_from(&hs[..]).unwrap();
    assert!(vk.verify_internal(&m_prime, &sig));
    for (mech, len) in [
        (
            Mechanism::HashMlDsaSha384(SignAdditionalContext::new(HedgeType::Preferred, None)),
            3309,
        ),
        (
            Mechanism::HashMlDsaSha3_256(SignAdditionalContext::new(HedgeType::Preferred, None)),
            3309,
        ),
    ] {
        let s = session.sign(&mech, private, msg).unwrap();
        assert_eq!(s.len(), len);
        session.verify(&mech, public, msg, &s).unwrap();
    }

    // RustCrypto signs; its public key imported verifies here.
    let seed = ml_dsa::B32::from([42u8; 32]);
    let theirs = ml_dsa::SigningKey::<MlDsa65>::from_seed(&seed);
    let their_pk = theirs.verifying_key().encode().to_vec();
    let their_sig = theirs
        .expanded_key()
        .sign_deterministic(msg, ctx)
        .unwrap()
        .encode()
        .to_vec();
    let imported = session
        .create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::ML_DSA),
            Attribute::ParameterSet(set.into()),
            Attribute::Value(their_pk.clone()),
            Attribute::Label(b"theirs".to_vec()),
        ])
        .unwrap();
    session.verify(&det, imported, msg, &their_sig).unwrap();
    assert_eq!(
        rv(session
            .verify(&wrong_ctx, imported, msg, &their_sig)
            .unwrap_err()),
        ck(cryptoki_sys::CKR_SIGNATURE_INVALID)
    );
    // The token's deterministic signature with the same seed would match;
    // the imported key exports what was imported.
    assert_eq!(value(&session, imported), their_pk);
    // A public key of the wrong length for its set is refused.
    assert_eq!(
        rv(session
            .create_object(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::ML_DSA),
                Attribute::ParameterSet(MlDsaParameterSetType::ML_DSA_44.into()),
                Attribute::Value(their_pk.clone()),
            ])
            .unwrap_err()),
        ck(cryptoki_sys::CKR_ATTRIBUTE_VALUE_INVALID)
    );

    // Find by CKA_PARAMETER_SET: the ML-DSA-65 pair and the imported key.
    let found = session
        .find_objects(&[
            Attribute::KeyType(KeyType::ML_DSA),
            Attribute::ParameterSet(set.into()),
        ])
        .unwrap();
    assert_eq!(found.len(), 3, "{found:?}");
    for h in [public, private, imported] {
        assert!(found.contains(&h));
    }
    let found87 = session
        .find_objects(&[
            Attribute::KeyType(KeyType::ML_DSA),
            Attribute::ParameterSet(MlDsaParameterSetType::ML_DSA_87.into()),
            Attribute::Class(ObjectClass::PUBLIC_KEY),
        ])
        .unwrap();
    assert_eq!(found87, vec![pairs[2].0]);
}

/// The 32-byte value of a readable secret key.
fn readable_template(token: bool) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(token),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ]
}

#[allow(deprecated)]
fn ml_kem_keys_agree_with_rustcrypto(which: Which) {
    let loaded = common::load(which);
    let session = user_session(&loaded);
    let slot = session.get_session_info().unwrap().slot_id();
    let info = loaded
        .p11
        .get_mechanism_info(slot, MechanismType::ML_KEM)
        .unwrap();
    assert_eq!((info.min_key_size(), info.max_key_size()), (800, 1568));
    assert!(info.encapsulate() && info.decapsulate() && !info.sign());

    for (set, ct_len) in [
        (MlKemParameterSetType::ML_KEM_512, 768),
        (MlKemParameterSetType::ML_KEM_768, 1088),
        (MlKemParameterSetType::ML_KEM_1024, 1568),
    ] {
        let (public, private) = kem_pair(&session, set, true);
        let (ct, key) = session
            .encapsulate_key(&Mechanism::MlKem, public, &readable_template(false))
            .unwrap();
        assert_eq!(ct.len(), ct_len);
        let back = session
            .decapsulate_key(&Mechanism::MlKem, private, &readable_template(false), &ct)
            .unwrap();
        let secret = value(&session, key);
        assert_eq!(secret.len(), 32);
        assert_eq!(value(&session, back), secret, "{set}");
        assert!(matches!(
            session
                .get_attribute_info(private, &[AttributeType::Value])
                .unwrap()[0],
            AttributeInfo::Sensitive
        ));
    }

    // ML-KEM-768 against RustCrypto, both ways.
    let set = MlKemParameterSetType::ML_KEM_768;
    let (public, private) = kem_pair(&session, set, true);
    let ek = value(&session, public);
    assert_eq!(ek.len(), 1184);
    // RustCrypto encapsulates to our exported public key; we decapsulate.
    let their_ek = ml_kem::EncapsulationKey::<ml_kem::MlKem768>::new(
        &ml_kem::Key::<ml_kem::EncapsulationKey<ml_kem::MlKem768>>::try_from(&ek[..]).unwrap(),
    )
    .unwrap();
    let (their_ct, their_secret) =
        their_ek.encapsulate_deterministic(&ml_kem::B32::from([9u8; 32]));
    let ours = session
        .decapsulate_key(
            &Mechanism::MlKem,
            private,
            &readable_template(false),
            &their_ct,
        )
        .unwrap();
    assert_eq!(value(&session, ours), their_secret.to_vec());
    // We encapsulate to RustCrypto's imported public key; it decapsulates.
    let their_dk = ml_kem::DecapsulationKey::<ml_kem::MlKem768>::from_seed(
        ml_kem::Seed::try_from(&[5u8; 64][..]).unwrap(),
    );
    let their_public = session
        .create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::ML_KEM),
            Attribute::ParameterSet(set.into()),
            Attribute::Value(their_dk.encapsulation_key().to_bytes().to_vec()),
        ])
        .unwrap();
    let (ct, key) = session
        .encapsulate_key(&Mechanism::MlKem, their_public, &readable_template(false))
        .unwrap();
    let ct_array = ml_kem::Ciphertext::<ml_kem::MlKem768>::try_from(&ct[..]).unwrap();
    assert_eq!(
        value(&session, key),
        their_dk.decapsulate(&ct_array).to_vec()
    );

    // Token keys that are never readable agree too: both MAC alike.
    let hidden = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(true),
        Attribute::Sign(true),
        Attribute::Verify(true),
    ];
    let (ct, a) = session
        .encapsulate_key(&Mechanism::MlKem, public, &hidden)
        .unwrap();
    let b = session
        .decapsulate_key(&Mechanism::MlKem, private, &hidden, &ct)
        .unwrap();
    assert!(matches!(
        session
            .get_attribute_info(a, &[AttributeType::Value])
            .unwrap()[0],
        AttributeInfo::Sensitive
    ));
    assert_eq!(
        session.sign(&Mechanism::Sha256Hmac, a, b"m").unwrap(),
        session.sign(&Mechanism::Sha256Hmac, b, b"m").unwrap()
    );
    // An AES key of 32 bytes from the secret.
    let aes = session
        .decapsulate_key(
            &Mechanism::MlKem,
            private,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Encrypt(true),
            ],
            &ct,
        )
        .unwrap();
    assert_eq!(
        session
            .get_attributes(aes, &[AttributeType::ValueLen])
            .unwrap(),
        vec![Attribute::ValueLen(32.into())]
    );

    // Implicit rejection: an altered ciphertext gives another secret.
    let (ct, key) = session
        .encapsulate_key(&Mechanism::MlKem, public, &readable_template(false))
        .unwrap();
    let mut altered = ct.clone();
    altered[0] ^= 1;
    let other = session
        .decapsulate_key(
            &Mechanism::MlKem,
            private,
            &readable_template(false),
            &altered,
        )
        .unwrap();
    assert_ne!(value(&session, other), value(&session, key));
    // Refusals: a ciphertext of the wrong length, the wrong key class or
    // type, a longer key than the secret, a parameter.
    assert_eq!(
        rv(session
            .decapsulate_key(
                &Mechanism::MlKem,
                private,
                &readable_template(false),
                &ct[1..]
            )
            .unwrap_err()),
        ck(cryptoki_sys::CKR_ENCRYPTED_DATA_LEN_RANGE)
    );
    assert_eq!(
        rv(session
            .encapsulate_key(&Mechanism::MlKem, private, &readable_template(false))
            .unwrap_err()),
        ck(cryptoki_sys::CKR_KEY_TYPE_INCONSISTENT)
    );
    let (dsa_public, _) = dsa_pair(&session, MlDsaParameterSetType::ML_DSA_44, "dsa");
    assert_eq!(
        rv(session
            .encapsulate_key(&Mechanism::MlKem, dsa_public, &readable_template(false))
            .unwrap_err()),
        ck(cryptoki_sys::CKR_KEY_TYPE_INCONSISTENT)
    );
    let mut too_long = readable_template(false);
    too_long.push(Attribute::ValueLen(48.into()));
    assert_eq!(
        rv(session
            .encapsulate_key(&Mechanism::MlKem, public, &too_long)
            .unwrap_err()),
        ck(cryptoki_sys::CKR_ATTRIBUTE_VALUE_INVALID)
    );
    // ML-KEM keys neither sign nor get usages they cannot have.
    assert_eq!(
        rv(session
            .generate_key_pair(
                &Mechanism::MlKemKeyPairGen,
                &[Attribute::ParameterSet(set.into())],
                &[Attribute::Sign(true)],
            )
            .unwrap_err()),
        ck(cryptoki_sys::CKR_TEMPLATE_INCONSISTENT)
    );
    // Find by parameter set: the three token ML-KEM-768 objects.
    let found = session
        .find_objects(&[
            Attribute::KeyType(KeyType::ML_KEM),
            Attribute::ParameterSet(set.into()),
        ])
        .unwrap();
    assert_eq!(found.len(), 5, "two pairs and the imported key");
}

/// Disabling a post-quantum key (through the engine or the CLI, as for
/// every KMS key) makes C_Sign and C_DecapsulateKey refuse it; the keys
/// PKCS#11 made are KMS keys of the ML specs.
fn disabled_keys_refuse(which: Which) {
    let (loaded, path) = match which {
        Which::Daemon => (Some(common::load(which)), None),
        _ => {
            // The embedded store is locked while the module is loaded:
            // initialise by hand, finalise, disable through the engine.
            let guard = common::exclusive();
            let (dir, path) = common::configure(which);
            (None, Some((guard, dir, path)))
        }
    };
    let init = |path: &std::path::Path| {
        let p11 = Pkcs11::new(path).unwrap();
        p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .unwrap();
        p11
    };
    let p11 = match (&loaded, &path) {
        (Some(l), _) => l.p11.clone(),
        (None, Some((_, _, path))) => init(path),
        _ => unreachable!(),
    };
    let slot = p11.get_all_slots().unwrap()[0];
    p11.init_token(slot, &AuthPin::new(common::SO_PIN.into()), "pq")
        .unwrap();
    let open = |p11: &Pkcs11| {
        let slot = p11.get_slots_with_initialized_token().unwrap()[0];
        let session = p11.open_rw_session(slot).unwrap();
        session
            .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
            .unwrap();
        session
    };
    {
        let session = p11.open_rw_session(slot).unwrap();
        session
            .login(UserType::So, Some(&AuthPin::new(common::SO_PIN.into())))
            .unwrap();
        session.init_pin(&AuthPin::new(USER_PIN.into())).unwrap();
    }
    let session = open(&p11);
    let (_, private) = dsa_pair(&session, MlDsaParameterSetType::ML_DSA_65, "life");
    let (kem_public, _) = kem_pair(&session, MlKemParameterSetType::ML_KEM_768, true);
    let mech = Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::Preferred, None));
    session.sign(&mech, private, b"m").unwrap();
    let (ct, _) = session
        .encapsulate_key(&Mechanism::MlKem, kem_public, &readable_template(false))
        .unwrap();

    let session = match &path {
        None => {
            let listed = cli_json(&["list-keys"]);
            let ids: Vec<String> = listed["Keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["KeyId"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(ids.len(), 2);
            for id in &ids {
                let meta = cli_json(&["describe-key", "--key-id", id]);
                let spec = meta["KeyMetadata"]["KeySpec"].as_str().unwrap().to_string();
                assert!(spec == "ML_DSA_65" || spec == "ML_KEM_768", "{spec}");
                cli_json(&["disable-key", "--key-id", id]);
            }
            session
        }
        Some((_, dir, path)) => {
            drop(session);
            p11.finalize().unwrap();
            let pass = SecretString::from("a passphrase for tests".to_string());
            let hsm = Hsm::open(&dir.path().join("data"), &pass, HsmOptions::default()).unwrap();
            let keys = hsm.list_token_keys("pq").unwrap();
            let mut specs: Vec<KeySpec> = keys.iter().map(|k| k.key_spec).collect();
            specs.sort_by_key(|s| s.as_str());
            assert_eq!(specs, vec![KeySpec::MlDsa65, KeySpec::MlKem768]);
            for key in keys {
                hsm.disable_key(&key.key_id).unwrap();
            }
            drop(hsm);
            open(&init(path))
        }
    };
    let find = |label: &[u8]| {
        session
            .find_objects(&[
                Attribute::Label(label.to_vec()),
                Attribute::Class(ObjectClass::PRIVATE_KEY),
            ])
            .unwrap()[0]
    };
    let refused = session.sign(&mech, find(b"life"), b"m").unwrap_err();
    assert_eq!(
        rv(refused),
        ck(cryptoki_sys::CKR_KEY_FUNCTION_NOT_PERMITTED)
    );
    let refused = session
        .decapsulate_key(
            &Mechanism::MlKem,
            find(b"kem"),
            &readable_template(false),
            &ct,
        )
        .unwrap_err();
    assert_eq!(
        rv(refused),
        ck(cryptoki_sys::CKR_KEY_FUNCTION_NOT_PERMITTED)
    );
    drop(session);
    if loaded.is_none() {
        let _ = Pkcs11::new(common::tinfoil_path()).map(|p| p.finalize());
    }
}

/// Runs the CLI against the test's daemon and parses its JSON answer.
fn cli_json(args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let out = common::daemon::cli(&all);
    assert!(
        out.status.success(),
        "tinfoil {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("tinfoil printed JSON")
}
