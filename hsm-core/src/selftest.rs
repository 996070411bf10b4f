//! Start-up self-tests, in the manner of FIPS 140-3: known-answer tests of
//! every symmetric primitive the store depends on, and a pairwise
//! consistency test (sign, then verify; a damaged signature must fail) of
//! each asymmetric family. tinfoild runs them before it opens a store, the
//! PKCS#11 module at C_Initialize; any failure refuses to start.
//!
//! | Test | Implementation | Vector |
//! |---|---|---|
//! | AES-256-GCM seal and open | ring (envelopes, sealing) and aws-lc-rs (PKCS#11) | GCM spec test case 16 (McGrew, Viega) |
//! | AES key wrap, 256-bit KEK | aws-lc-rs | RFC 3394 section 4.6 |
//! | HMAC-SHA-256 | aws-lc-rs (KMS MAC keys, PKCS#11) and ring | RFC 4231 test case 2 |
//! | SHA-256 | ring and aws-lc-rs | FIPS 180-2 "abc" |
//! | HKDF-SHA-256 | ring (per-message keys) | RFC 5869 test case 1 |
//! | Argon2id | argon2 (passphrase KEK) | RFC 9106 section 5.3 |
//! | RSA-2048 PKCS#1 v1.5 and PSS, ECDSA P-256/384/521, Ed25519 | aws-lc-rs | pairwise, fresh EC/Ed25519 keys, a fixed RSA key |
//!
//! The vectors were checked against OpenSSL (Python `cryptography`) when
//! they were written. It runs once per process.
//!
//! Cost (release build, shared 2-core machine): the tests themselves take
//! about 3 ms. Before them, the run draws AWS-LC's first random bytes
//! ([`SelfTestReport::rng_seeding`]): AWS-LC seeds its tree DRBG from a
//! process-wide CPU-jitter entropy source whose start-up health tests take
//! 20 to 65 ms, once per process, whoever draws first (the first ECDSA or
//! RSA signature, the first key generation). So that start-up does not
//! wait for it, [`start`] runs the whole self-test on a thread of its own
//! while the caller derives the passphrase KEK (Argon2id, 100 ms or more
//! with the default parameters), and [`run`] waits for the outcome: the
//! store's KEK derivation calls it before the KEK is used, so no key is
//! unsealed before every test passed.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::asymmetric::{self, PrivateKey};
use crate::error::{Error, Result};
use crate::types::{KeySpec, MessageType, SigningAlgorithm};

/// TEST ONLY: naming a test here (e.g. `AES-GCM`) makes that test fail, so
/// tests can prove that a failure refuses to start. Never set it otherwise.
pub const BREAK_VAR: &str = "TINFOIL_TEST_ONLY_BREAK_SELFTEST";

/// What a successful run measured.
#[derive(Debug, Clone, Copy)]
pub struct SelfTestReport {
    /// How many tests ran.
    pub tests: usize,
    /// How long the tests took (without `rng_seeding`).
    pub elapsed: Duration,
    /// How long AWS-LC's first random draw took: seeding its DRBG from
    /// CPU-jitter entropy, a once-per-process cost AWS-LC pays at its
    /// first use whatever that use is.
    pub rng_seeding: Duration,
}

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| {
            let nibble = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            nibble(pair[0]) << 4 | nibble(pair[1])
        })
        .collect()
}

/// A fixed RSA-2048 private key (PKCS#8 DER) for the RSA pairwise test:
/// generating one would cost 50 to 200 ms. It protects nothing.
const RSA_TEST_KEY: &[&str] = &[
    "308204bc020100300d06092a864886f70d0101010500048204a6308204a20201000282010100b3f41f3ac00467f72bb9",
    "b2d817c3ea2760a831fef3e33571efb65d7470628c55480a828c37d75946133b2e0d4c0c010ed543c9e2a188e97b9cb6",
    "327f87a38e47b2ef01c2143ab02995933b087be98d0c1d8eaba4399ff53ef5a4576be6c1d759670f248833b6f508f93f",
    "2d0dcf841ea3bf729643b6da59e8cf77d2c57848e8b1dc20027b678759f8e1767169a7b3a9879d54398997fd78eb81bd",
    "8f7ba83df048d98047a929672202c7df3217aacdbebe40949b2b891d3b3aa2edd4bc837ed98963ed731b356dd808ef2f",
    "c5b9e1e2fd7ceb1ba3cf44b2485c26c7511c5d9e803d46d5192aacbbb036d064ccdb84f35d533740d3b5a4467e50ad85",
    "35782659faf902030100010282010029d55c4630d9c55e7f2e77fe46c60f62d094412d22fec48fa459896fb6699e747b",
    "df1f9a9fa7a3140887f72c75ab8bba6a470c41706a6ed6c2e7532574ff8765b119e1578012e59d812d5d299b7ebf809b",
    "c56d2eec0b7cbc8267ce3fe200d98269d42a1ab4a4f96138ea201be80c2f8043130d0e184db9dd868f7532dd43dbbe0a",
    "ee7ffe93d2ca0509beea0b19614e3d318dfd5b2dceba8923a54700de1b3a6e3534bb9eb90a02a29560368e1c3a0f5e70",
    "5a4eb46652a7c94ccad8c001ede3994b635d2a6887def27aad31092afc6d223e97f59d24273c234601f20f84919c4ece",
    "a9970788cef830b6396ccccf3c9b56383fc3480ffc10b9ef7a621ad966c74502818100ec14bdf4d956292c30fc0cd3d8",
    "7825f0025d1b85808f2078623ce9d825513d97f0d9bc181c2413bffe91a9b0b5ab6ad1444def2b549a9b5936ee01c17c",
    "bc216bbf332fa25294921c6d6b639012e4964289795164303dc546bbd26786427bf9511315eaccfa8464b93b66b1a6e0",
    "70e6d379bbcb66b88c1ef8261a7d81422276ed02818100c3230caffebaad31202b5ac03d1c1b622426c4abbdf901f41d",
    "0e0c1062b0bc42f25f4710ae7adc360eca9cc208c2f176abbc0739cb0fad3802e5bda27777178df5c65d787229856675",
    "320cbd0fffd34607d1602a6f09e98954f0dec1e15475aacf1c3f0b93e72f9a4aa6265be5f8cb25d00ba004b266e74ccc",
    "04cb28792526bd02818071eaf05e9e213d6cdd96427a571262fc15a7e807dba934f9e22d9289823859885fe831235130",
    "f776c5d874119918464b04b2b69e2a0d10b954103538b07ff7808e9a9c79af6f91b1b5fb03e819b5c3ec077a4b141553",
    "3946908b4ef9324bb05ab6e2f49244b06e0a13e7d201bc7bbe667d6f690f002e5d2350ffa760201191610281801ce58e",
    "d66d2965c6559635fd2bcf82ba98d1e8e3e9e0fb0a1457652ff3fd6a139be2c21a554c3a5a02fcbc13fbca2a89c14ab9",
    "e3340fe13ddf27f85a1bc8d6031eb73e563cc9ab488de8587c92e6f6797364ed11bb99c32ca4187b5448b3022dc637cf",
    "9a3e4fc8fbd73c1d88145930742c07dcad7561c9b4d4ad8d0c344c6d1d0281801cb2033ffb90bb1f67662b94c99f5d40",
    "25a00cc9b644abea1e930f2ee0b126e24da5619187db6012c7c7ad8e19f15448004b38356f4fe896be8927d4a109f555",
    "e53d1ecf79ee3363a227684883333f65e6f1da49af7b1de266cdda6382a4c6cdd843a3b028726b5bbb21a881a4d2b7c9",
    "f1c030dc1ab66c1a4f2ea0cdd1d94101",];

struct Check {
    name: &'static str,
    run: fn() -> bool,
}

const CHECKS: &[Check] = &[
    Check {
        name: "AES-GCM",
        run: aes_gcm,
    },
    Check {
        name: "AES-KW",
        run: aes_kw,
    },
    Check {
        name: "HMAC-SHA-256",
        run: hmac_sha256,
    },
    Check {
        name: "SHA-256",
        run: sha256,
    },
    Check {
        name: "HKDF",
        run: hkdf,
    },
    Check {
        name: "Argon2id",
        run: argon2id,
    },
    Check {
        name: "RSA",
        run: rsa_pairwise,
    },
    Check {
        name: "ECDSA",
        run: ecdsa_pairwise,
    },
    Check {
        name: "Ed25519",
        run: ed25519_pairwise,
    },
];

static OUTCOME: OnceLock<std::result::Result<SelfTestReport, String>> = OnceLock::new();

/// Starts the self-test on a background thread (once per process) and
/// returns at once; [`run`] waits for its outcome. Call it as early as
/// possible, before slow start-up work (the passphrase KDF), so the two
/// overlap. Must not be called before a `fork` that is followed by more
/// work in the child (the test would not finish there).
pub fn start() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        if OUTCOME.get().is_none() {
            // If no thread can be started, `run` tests inline later.
            let _ = std::thread::Builder::new()
                .name("tinfoil-selftest".into())
                .spawn(|| {
                    let _ = OUTCOME.get_or_init(run_now);
                });
        }
    });
}

/// Runs every self-test once per process (later calls return the first
/// outcome; after [`start`], waits for the background run). A failure is
/// `Error::Internal` naming the test.
pub fn run() -> Result<SelfTestReport> {
    OUTCOME.get_or_init(run_now).clone().map_err(|name| {
        Error::Internal(format!(
            "the start-up self-test {name} failed: this build's cryptography is broken \
                 (or the CPU is faulty); refusing to start"
        ))
    })
}

fn run_now() -> std::result::Result<SelfTestReport, String> {
    run_checks(std::env::var(BREAK_VAR).ok().as_deref())
}

/// Seeds AWS-LC's random generator (its first draw in the process) and
/// says how long that took.
fn seed_rng() -> Option<Duration> {
    let started = Instant::now();
    let mut probe = [0u8; 16];
    aws_lc_rs::rand::fill(&mut probe).ok()?;
    Some(started.elapsed())
}

/// Runs the checks; `broken` names one to count as failed (the test hook).
fn run_checks(broken: Option<&str>) -> std::result::Result<SelfTestReport, String> {
    let rng_seeding = std::panic::catch_unwind(seed_rng)
        .ok()
        .flatten()
        .ok_or_else(|| "DRBG".to_string())?;
    let started = Instant::now();
    for check in CHECKS {
        let passed = std::panic::catch_unwind(check.run).unwrap_or(false);
        if !passed || broken == Some(check.name) {
            return Err(check.name.to_string());
        }
    }
    Ok(SelfTestReport {
        tests: CHECKS.len(),
        elapsed: started.elapsed(),
        rng_seeding,
    })
}

// GCM spec test case 16: AES-256, 96-bit IV, associated data.
const GCM_KEY: &str = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
const GCM_IV: &str = "cafebabefacedbaddecaf888";
const GCM_PLAIN: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
                         1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
const GCM_AAD: &str = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
const GCM_SEALED: &str = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa\
                          8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662\
                          76fc6ece0f4e1768cddf8853bb2d551b";

fn aes_gcm() -> bool {
    let (key, plain, aad, sealed) = (hex(GCM_KEY), hex(GCM_PLAIN), hex(GCM_AAD), hex(GCM_SEALED));
    let iv: [u8; 12] = hex(GCM_IV).try_into().unwrap_or_default();
    // ring.
    let ring_ok = {
        use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
        let Ok(unbound) = UnboundKey::new(&AES_256_GCM, &key) else {
            return false;
        };
        let key = LessSafeKey::new(unbound);
        let mut buf = plain.clone();
        let sealed_ok = key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(iv), Aad::from(&aad), &mut buf)
            .is_ok()
            && buf == sealed;
        let mut opened = sealed.clone();
        let open_ok = key
            .open_in_place(
                Nonce::assume_unique_for_key(iv),
                Aad::from(&aad),
                &mut opened,
            )
            .is_ok_and(|p| *p == *plain);
        let mut forged = sealed.clone();
        forged[0] ^= 1;
        let forged_refused = key
            .open_in_place(
                Nonce::assume_unique_for_key(iv),
                Aad::from(&aad),
                &mut forged,
            )
            .is_err();
        sealed_ok && open_ok && forged_refused
    };
    // aws-lc-rs.
    let lc_ok = {
        use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
        let Ok(unbound) = UnboundKey::new(&AES_256_GCM, &key) else {
            return false;
        };
        let key = LessSafeKey::new(unbound);
        let mut buf = plain.clone();
        let sealed_ok = key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(iv), Aad::from(&aad), &mut buf)
            .is_ok()
            && buf == sealed;
        let mut opened = sealed.clone();
        let open_ok = key
            .open_in_place(
                Nonce::assume_unique_for_key(iv),
                Aad::from(&aad),
                &mut opened,
            )
            .is_ok_and(|p| *p == *plain);
        sealed_ok && open_ok
    };
    ring_ok && lc_ok
}

fn aes_kw() -> bool {
    use aws_lc_rs::key_wrap::{KeyEncryptionKey, KeyWrap, AES_256};
    let kek = hex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
    let data = hex("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F");
    let wrapped =
        hex("28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21");
    let make = || KeyEncryptionKey::new(&AES_256, &kek);
    let mut out = [0u8; 40];
    let wrap_ok = make()
        .and_then(|k| k.wrap(&data, &mut out).map(|w| w.to_vec()))
        .is_ok_and(|w| w == wrapped);
    let mut back = [0u8; 40];
    let unwrap_ok = make()
        .and_then(|k| k.unwrap(&wrapped, &mut back).map(|u| u.to_vec()))
        .is_ok_and(|u| u == data);
    let mut forged = wrapped.clone();
    forged[9] ^= 1;
    let forged_refused = make()
        .and_then(|k| k.unwrap(&forged, &mut back).map(|_| ()))
        .is_err();
    wrap_ok && unwrap_ok && forged_refused
}

fn hmac_sha256() -> bool {
    let expected = hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    let message = b"what do ya want for nothing?";
    let lc = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"Jefe"),
        message,
    );
    let ring_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"Jefe");
    let ring_tag = ring::hmac::sign(&ring_key, message);
    let mut wrong = expected.clone();
    wrong[0] ^= 1;
    lc.as_ref() == expected.as_slice()
        && ring_tag.as_ref() == expected.as_slice()
        && ring::hmac::verify(&ring_key, message, &wrong).is_err()
}

fn sha256() -> bool {
    let expected = hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ring::digest::digest(&ring::digest::SHA256, b"abc").as_ref() == expected.as_slice()
        && aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"abc").as_ref()
            == expected.as_slice()
}

fn hkdf() -> bool {
    struct Len(usize);
    impl ring::hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let expected =
        hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
    let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, &hex("000102030405060708090a0b0c"));
    let prk = salt.extract(&[0x0b; 22]);
    let info = hex("f0f1f2f3f4f5f6f7f8f9");
    let info = [info.as_slice()];
    let mut out = vec![0u8; expected.len()];
    prk.expand(&info, Len(expected.len()))
        .and_then(|okm| okm.fill(&mut out))
        .is_ok()
        && out == expected
}

fn argon2id() -> bool {
    use argon2::{Algorithm, Argon2, AssociatedData, ParamsBuilder, Version};
    let expected = hex("0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659");
    let Ok(data) = AssociatedData::new(&[0x04; 12]) else {
        return false;
    };
    let Ok(params) = ParamsBuilder::new()
        .m_cost(32)
        .t_cost(3)
        .p_cost(4)
        .output_len(32)
        .data(data)
        .build()
    else {
        return false;
    };
    let secret = [0x03; 8];
    let Ok(argon) = Argon2::new_with_secret(&secret, Algorithm::Argon2id, Version::V0x13, params)
    else {
        return false;
    };
    let mut out = [0u8; 32];
    argon
        .hash_password_into(&[0x01; 32], &[0x02; 16], &mut out)
        .is_ok()
        && out.as_slice() == expected.as_slice()
}

/// Signs a message, verifies the signature, and checks that a damaged
/// signature and another message do not verify.
fn pairwise(key: &PrivateKey, algorithm: SigningAlgorithm) -> bool {
    let message = b"tinfoil start-up pairwise consistency test";
    let Ok(signature) = key.sign(algorithm, message, MessageType::Raw) else {
        return false;
    };
    let mut damaged = signature.clone();
    let last = damaged.len() - 1;
    damaged[last / 2] ^= 0x10;
    let verifies = |message: &[u8], signature: &[u8]| {
        matches!(
            key.verify(algorithm, message, MessageType::Raw, signature),
            Ok(true)
        )
    };
    verifies(message, &signature)
        && !verifies(message, &damaged)
        && !verifies(b"another message", &signature)
}

fn rsa_pairwise() -> bool {
    let der = hex(&RSA_TEST_KEY.concat());
    let Ok(key) = PrivateKey::from_pkcs8(KeySpec::Rsa2048, &der) else {
        return false;
    };
    pairwise(&key, SigningAlgorithm::RsassaPkcs1V15Sha256)
        && pairwise(&key, SigningAlgorithm::RsassaPssSha256)
}

fn fresh(spec: KeySpec) -> Option<PrivateKey> {
    let der = asymmetric::generate(spec).ok()?;
    PrivateKey::from_pkcs8(spec, &der).ok()
}

fn ecdsa_pairwise() -> bool {
    [
        (KeySpec::EccNistP256, SigningAlgorithm::EcdsaSha256),
        (KeySpec::EccNistP384, SigningAlgorithm::EcdsaSha384),
        (KeySpec::EccNistP521, SigningAlgorithm::EcdsaSha512),
    ]
    .into_iter()
    .all(|(spec, algorithm)| fresh(spec).is_some_and(|key| pairwise(&key, algorithm)))
}

fn ed25519_pairwise() -> bool {
    fresh(KeySpec::EccEd25519).is_some_and(|key| pairwise(&key, SigningAlgorithm::Ed25519Sha512))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_passes() {
        // The cost, cold (first run in this process) and warm: printed for
        // the README (`cargo test --release -p hsm-core --lib selftest --
        // --nocapture`), never asserted.
        for run in ["cold", "warm"] {
            let report = run_checks(None).unwrap();
            eprintln!(
                "self-tests ({run}): {} in {:?} (+ {:?} seeding AWS-LC's DRBG)",
                report.tests, report.elapsed, report.rng_seeding
            );
        }
        for check in CHECKS {
            assert!((check.run)(), "{} failed", check.name);
        }
        let report = run().unwrap();
        assert_eq!(report.tests, CHECKS.len());
    }

    #[test]
    fn a_failing_check_stops_the_run_naming_it() {
        for check in CHECKS {
            assert_eq!(run_checks(Some(check.name)).unwrap_err(), check.name);
        }
        assert!(run_checks(Some("no such test")).is_ok());
    }

    #[test]
    fn hex_decodes() {
        assert_eq!(hex("00ff10 Ab"), vec![0x00, 0xff, 0x10, 0xab]);
    }
}
