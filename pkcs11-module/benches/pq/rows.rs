//! p11bench's post-quantum rows (`-- --pq`, issue 16): ML-DSA-65 C_Sign
//! and C_Verify, ML-KEM-768 C_EncapsulateKey and C_DecapsulateKey through
//! our module (embedded backend, and daemon backend when a release tinfoild
//! is built), each with a session key pair (nothing recorded) and a token
//! key pair (one fsynced audit record per call), beside the raw aws-lc-rs
//! calls measured in the same run; prints operations per second and the
//! module/raw ratio. A C_EncapsulateKey / C_DecapsulateKey row includes
//! the C_DestroyObject of the session secret key each call makes.

use std::path::Path;
use std::time::Duration;

use cryptoki::mechanism::dsa::{HedgeType, SignAdditionalContext};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{
    Attribute, KeyType, MlDsaParameterSetType, MlKemParameterSetType, ObjectClass,
};

use super::{rate, row, session, SESSION, TOKEN};

const MESSAGE: &[u8] = &[0x5a; 64];

/// The row names, in order; each has a raw counterpart.
const ROWS: [(&str, &str); 4] = [
    ("ML-DSA-65 C_Sign", "aws-lc-rs ML-DSA-65 sign"),
    ("ML-DSA-65 C_Verify", "aws-lc-rs ML-DSA-65 verify"),
    (
        "ML-KEM-768 C_EncapsulateKey",
        "aws-lc-rs ML-KEM-768 encapsulate",
    ),
    (
        "ML-KEM-768 C_DecapsulateKey",
        "aws-lc-rs ML-KEM-768 decapsulate",
    ),
];

/// The raw aws-lc-rs calls (what hsm-core runs for these mechanisms).
fn raw(budget: Duration) -> Vec<f64> {
    use aws_lc_rs::kem::{DecapsulationKey, ML_KEM_768};
    use aws_lc_rs::signature::{
        KeyPair as _, PqdsaKeyPair, UnparsedPublicKey, ML_DSA_65, ML_DSA_65_SIGNING,
    };
    let pair = PqdsaKeyPair::generate(&ML_DSA_65_SIGNING).unwrap();
    let mut sig = vec![0u8; ML_DSA_65_SIGNING.signature_len()];
    let sign = rate(budget, || {
        std::hint::black_box(pair.sign(MESSAGE, &mut sig).unwrap());
    });
    let public = pair.public_key().as_ref().to_vec();
    let verify = rate(budget, || {
        UnparsedPublicKey::new(&ML_DSA_65, &public)
            .verify(MESSAGE, &sig)
            .unwrap();
    });
    let dk = DecapsulationKey::generate(&ML_KEM_768).unwrap();
    let ek = dk.encapsulation_key().unwrap();
    let encaps = rate(budget, || {
        std::hint::black_box(ek.encapsulate().unwrap());
    });
    let (ct, _) = ek.encapsulate().unwrap();
    let ct = ct.as_ref().to_vec();
    let decaps = rate(budget, || {
        std::hint::black_box(dk.decapsulate(ct.as_slice().into()).unwrap());
    });
    vec![sign, verify, encaps, decaps]
}

/// The rows through one module (as configured now), session and token
/// keys.
fn through_module(path: &Path, budget: Duration) -> Vec<(String, f64)> {
    let (p11, s) = session(path);
    let mut out = Vec::new();
    let secret = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(false),
    ];
    for (on_token, kind) in [(false, SESSION), (true, TOKEN)] {
        let (dsa_public, dsa_private) = s
            .generate_key_pair(
                &Mechanism::MlDsaKeyPairGen,
                &[
                    Attribute::Token(on_token),
                    Attribute::Verify(true),
                    Attribute::ParameterSet(MlDsaParameterSetType::ML_DSA_65.into()),
                ],
                &[Attribute::Token(on_token), Attribute::Sign(true)],
            )
            .expect("ML-DSA-65 pair");
        let mech = Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::Preferred, None));
        let sign = rate(budget, || {
            s.sign(&mech, dsa_private, MESSAGE).unwrap();
        });
        let sig = s.sign(&mech, dsa_private, MESSAGE).unwrap();
        let verify = rate(budget, || {
            s.verify(&mech, dsa_public, MESSAGE, &sig).unwrap();
        });
        let (kem_public, kem_private) = s
            .generate_key_pair(
                &Mechanism::MlKemKeyPairGen,
                &[
                    Attribute::Token(on_token),
                    Attribute::ParameterSet(MlKemParameterSetType::ML_KEM_768.into()),
                ],
                &[Attribute::Token(on_token)],
            )
            .expect("ML-KEM-768 pair");
        let encaps = rate(budget, || {
            let (_, key) = s
                .encapsulate_key(&Mechanism::MlKem, kem_public, &secret)
                .unwrap();
            s.destroy_object(key).unwrap();
        });
        let (ct, _) = s
            .encapsulate_key(&Mechanism::MlKem, kem_public, &secret)
            .unwrap();
        let decaps = rate(budget, || {
            let key = s
                .decapsulate_key(&Mechanism::MlKem, kem_private, &secret, &ct)
                .unwrap();
            s.destroy_object(key).unwrap();
        });
        for ((name, _), figure) in ROWS.iter().zip([sign, verify, encaps, decaps]) {
            out.push((row(name, kind), figure));
        }
    }
    drop(s);
    p11.finalize().expect("C_Finalize");
    out
}

/// Measures and prints the post-quantum rows: the embedded backend, the
/// daemon backend (`start_daemon` points the configuration at a started
/// tinfoild and returns its guard), and the raw calls.
pub fn run<G>(ours: &Path, budget: Duration, start_daemon: impl FnOnce() -> Option<G>) {
    let mut columns = vec![("tinfoil", through_module(ours, budget))];
    let guard = start_daemon();
    if guard.is_some() {
        columns.push(("tinfoil-daemon", through_module(ours, budget)));
    }
    drop(guard);
    let raw = raw(budget);
    println!(
        "Post-quantum rows: operations per second through PKCS#11 and of the raw aws-lc-rs call\n\
         (same run); ratio = PKCS#11 / raw. [{SESSION}]: nothing recorded; [{TOKEN}]: one fsynced\n\
         audit record per call. Encapsulate/decapsulate rows include destroying the session key made."
    );
    for (label, figures) in &columns {
        println!(
            "{:<52} {:>14} {:>14} {:>8}",
            "", label, "raw aws-lc-rs", "ratio"
        );
        for (name, a) in figures {
            let i = ROWS
                .iter()
                .position(|(r, _)| name.starts_with(r))
                .unwrap_or(0);
            println!("{name:<52} {a:>14.1} {:>14.1} {:>7.2}x", raw[i], a / raw[i]);
        }
    }
    for ((_, raw_name), figure) in ROWS.iter().zip(&raw) {
        println!("{raw_name:<52} {figure:>14.1}");
    }
}
