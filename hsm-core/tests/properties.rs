//! Property tests of the envelope: round trips for any plaintext and
//! context, and a ciphertext blob that rejects every flipped bit,
//! truncation and extension with InvalidCiphertextException.

mod common;

use common::*;
use hsm_core::{EncryptionContext, Hsm};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const CASES: u32 = 64;

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Any string: any chars (control characters, NUL, non-ASCII), 0 to 24 of them.
fn any_string() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..24).prop_map(|cs| cs.into_iter().collect())
}

/// Any context key: as [`any_string`] but without NUL, which a context key
/// may not hold (ValidationException; values may hold it).
fn any_context_key() -> impl Strategy<Value = String> {
    any_string().prop_map(|s| s.replace('\0', ""))
}

fn any_context() -> impl Strategy<Value = EncryptionContext> {
    proptest::collection::btree_map(any_context_key(), any_string(), 0..8)
}

fn any_plaintext() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 1..=4096)
}

fn fail(what: &str, e: hsm_core::Error) -> TestCaseError {
    TestCaseError::fail(format!("{what}: {} {e}", e.kms_name()))
}

/// The result of decrypting a damaged blob must be InvalidCiphertext.
fn must_be_invalid_ciphertext(
    hsm: &Hsm,
    blob: &[u8],
    context: &EncryptionContext,
    what: &str,
) -> Result<(), TestCaseError> {
    match hsm.decrypt(blob, context, None, None) {
        Ok(_) => Err(TestCaseError::fail(format!("{what}: decrypted"))),
        Err(e) if e.kms_name() == "InvalidCiphertextException" => Ok(()),
        Err(e) => Err(TestCaseError::fail(format!(
            "{what}: want InvalidCiphertextException, got {} {e}",
            e.kms_name()
        ))),
    }
}

#[test]
fn any_plaintext_and_context_round_trip() {
    let t = TestHsm::new();
    let key = t.symmetric_key("round trip").key_id;
    runner()
        .run(&(any_plaintext(), any_context()), |(plaintext, context)| {
            let out = t
                .hsm
                .encrypt(&key, &plaintext, &context, None)
                .map_err(|e| fail("encrypt", e))?;
            prop_assert!(
                out.ciphertext_blob.len() > plaintext.len(),
                "the blob carries a header and a tag"
            );
            let back = t
                .hsm
                .decrypt(&out.ciphertext_blob, &context, None, None)
                .map_err(|e| fail("decrypt", e))?;
            prop_assert_eq!(&back.plaintext[..], &plaintext[..]);
            let named = t
                .hsm
                .decrypt(&out.ciphertext_blob, &context, Some(&key), None)
                .map_err(|e| fail("decrypt naming the key", e))?;
            prop_assert_eq!(&named.plaintext[..], &plaintext[..]);
            // Two encryptions of the same input never give the same blob.
            let again = t
                .hsm
                .encrypt(&key, &plaintext, &context, None)
                .map_err(|e| fail("encrypt", e))?;
            prop_assert_ne!(again.ciphertext_blob, out.ciphertext_blob);
            Ok(())
        })
        .unwrap();
}

/// Changing the context in any way (a value, a key, an entry more or less,
/// or moving characters between a key and its value) stops decryption.
#[test]
fn any_other_context_is_rejected() {
    let t = TestHsm::new();
    let key = t.symmetric_key("contexts").key_id;
    let mutation = (0u8..5, any_string(), any::<Index>());
    runner()
        .run(
            &(any_context(), mutation),
            |(context, (kind, extra, index))| {
                let mut other = context.clone();
                let pick = |m: &EncryptionContext| {
                    m.iter()
                        .nth(index.index(m.len().max(1)))
                        .map(|(k, v)| (k.clone(), v.clone()))
                };
                match (kind, pick(&context)) {
                    (0, _) | (_, None) => {
                        let k = format!("{extra}\u{1}added");
                        other.insert(k, extra.clone());
                    }
                    (1, Some((k, _))) => {
                        other.remove(&k);
                    }
                    (2, Some((k, v))) => {
                        other.insert(k, format!("{v}x"));
                    }
                    (3, Some((k, v))) => {
                        other.remove(&k);
                        other.insert(format!("{k}x"), v);
                    }
                    (_, Some((k, v))) => {
                        // Move the key's last character into the value, or the
                        // value's first into the key: {"ab":"c"} <-> {"a":"bc"}.
                        other.remove(&k);
                        if let Some(last) = k.chars().last() {
                            let shorter: String = k.chars().take(k.chars().count() - 1).collect();
                            other.insert(shorter, format!("{last}{v}"));
                        } else if let Some(first) = v.chars().next() {
                            other.insert(format!("{k}{first}"), v.chars().skip(1).collect());
                        } else {
                            other.insert("moved".into(), String::new());
                        }
                    }
                }
                prop_assume!(other != context);
                // A NUL in a context key seals nothing new (see
                // a_nul_in_a_context_key_is_refused).
                prop_assume!(other.keys().all(|k| !k.contains('\0')));
                let blob = t
                    .hsm
                    .encrypt(&key, b"bound to its context", &context, None)
                    .map_err(|e| fail("encrypt", e))?
                    .ciphertext_blob;
                must_be_invalid_ciphertext(&t.hsm, &blob, &other, "other context")?;
                // And the other way round.
                let blob = t
                    .hsm
                    .encrypt(&key, b"bound to its context", &other, None)
                    .map_err(|e| fail("encrypt", e))?
                    .ciphertext_blob;
                must_be_invalid_ciphertext(&t.hsm, &blob, &context, "other context")
            },
        )
        .unwrap();
}

#[test]
fn a_nul_in_a_context_key_is_refused() {
    let t = TestHsm::new();
    let key = t.symmetric_key("nul").key_id;
    let good = EncryptionContext::from([("dept".to_string(), "a\0value".to_string())]);
    let blob = t
        .hsm
        .encrypt(&key, b"x", &good, None)
        .expect("a NUL in a value is fine")
        .ciphertext_blob;
    let bad = EncryptionContext::from([("de\0pt".to_string(), "hr".to_string())]);
    let err = t.hsm.encrypt(&key, b"x", &bad, None).unwrap_err();
    assert_eq!(err.kms_name(), "ValidationException");
    // Decrypt accepts one, so that ciphertexts made with such a key before
    // the rule still open; here the context is simply not the blob's.
    let err = t.hsm.decrypt(&blob, &bad, None, None).unwrap_err();
    assert_eq!(err.kms_name(), "InvalidCiphertextException");
    let blob = t
        .hsm
        .encrypt(&key, b"x", &EncryptionContext::new(), None)
        .unwrap()
        .ciphertext_blob;
    let err = t
        .hsm
        .re_encrypt(&blob, &EncryptionContext::new(), None, &key, &bad)
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kms_name(), "ValidationException");
}

#[test]
fn any_single_bit_flip_is_rejected() {
    let t = TestHsm::new();
    let key = t.symmetric_key("bit flips").key_id;
    let input = (
        proptest::collection::vec(any::<u8>(), 1..300),
        any_context(),
    );
    runner()
        .run(
            &(input, any::<Index>(), 0u8..8),
            |((plaintext, context), at, bit)| {
                let mut blob = t
                    .hsm
                    .encrypt(&key, &plaintext, &context, None)
                    .map_err(|e| fail("encrypt", e))?
                    .ciphertext_blob;
                let i = at.index(blob.len());
                blob[i] ^= 1 << bit;
                must_be_invalid_ciphertext(
                    &t.hsm,
                    &blob,
                    &context,
                    &format!("bit {bit} of byte {i}"),
                )
            },
        )
        .unwrap();
}

#[test]
fn any_truncation_or_extension_is_rejected() {
    let t = TestHsm::new();
    let key = t.symmetric_key("lengths").key_id;
    let input = (
        proptest::collection::vec(any::<u8>(), 1..300),
        any_context(),
    );
    let extension = proptest::collection::vec(any::<u8>(), 1..64);
    runner()
        .run(
            &(input, any::<Index>(), extension),
            |((plaintext, context), at, tail)| {
                let blob = t
                    .hsm
                    .encrypt(&key, &plaintext, &context, None)
                    .map_err(|e| fail("encrypt", e))?
                    .ciphertext_blob;
                let cut = at.index(blob.len());
                must_be_invalid_ciphertext(
                    &t.hsm,
                    &blob[..cut],
                    &context,
                    &format!("cut to {cut}"),
                )?;
                let mut longer = blob.clone();
                longer.extend_from_slice(&tail);
                must_be_invalid_ciphertext(&t.hsm, &longer, &context, "extended")
            },
        )
        .unwrap();
}

/// Not sampled: every bit of one blob, every prefix, and a few extensions,
/// through Decrypt and ReEncrypt alike; and the blob still decrypts after.
#[test]
fn every_bit_flip_and_every_prefix_of_one_blob_is_rejected() {
    let t = TestHsm::new();
    let key = t.symmetric_key("exhaustive").key_id;
    let other = t.symmetric_key("destination").key_id;
    let context = ctx(&[("tenant", "4711")]);
    // Versions 1 to 3 exist, so flips of the version field can land on a
    // real version (3 -> 1) and must still fail.
    ok(t.hsm.rotate_key_on_demand(&key), "rotate");
    ok(t.hsm.rotate_key_on_demand(&key), "rotate");
    let blob = ok(
        t.hsm.encrypt(&key, b"every bit counts", &context, None),
        "encrypt",
    )
    .ciphertext_blob;
    assert_eq!(blob_key_version(&blob), 3);
    let check = |damaged: &[u8], what: &str| {
        let r = t.hsm.decrypt(damaged, &context, None, None);
        expect_err(r, "InvalidCiphertextException");
        let r = t.hsm.re_encrypt(damaged, &context, None, &other, &context);
        if let Err(e) = &r {
            assert_eq!(
                e.kms_name(),
                "InvalidCiphertextException",
                "{what}: ReEncrypt"
            );
        } else {
            panic!("{what}: ReEncrypt accepted a damaged blob");
        }
    };
    for i in 0..blob.len() {
        for bit in 0..8 {
            let mut damaged = blob.clone();
            damaged[i] ^= 1 << bit;
            check(&damaged, &format!("bit {bit} of byte {i}"));
        }
    }
    for cut in 0..blob.len() {
        check(&blob[..cut], &format!("prefix of {cut} bytes"));
    }
    for tail in [&[0u8][..], &[0xff], &blob[..]] {
        let mut longer = blob.clone();
        longer.extend_from_slice(tail);
        check(&longer, "extension");
    }
    assert_eq!(decrypt_ok(&t.hsm, &blob, &context), b"every bit counts");
}

#[test]
fn any_data_key_length_round_trips_through_its_blob() {
    let t = TestHsm::new();
    let key = t.symmetric_key("data keys").key_id;
    runner()
        .run(&(1u32..=1024, any_context()), |(n, context)| {
            let dk = t
                .hsm
                .generate_data_key(&key, None, Some(n), &context)
                .map_err(|e| fail("generate_data_key", e))?;
            let plaintext = dk.plaintext.expect("GenerateDataKey returns the plaintext");
            prop_assert_eq!(plaintext.len(), n as usize);
            let back = t
                .hsm
                .decrypt(&dk.ciphertext_blob, &context, None, None)
                .map_err(|e| fail("decrypt data key", e))?;
            prop_assert_eq!(&back.plaintext[..], &plaintext[..]);
            Ok(())
        })
        .unwrap();
}

/// A blob from another store (another root key, unknown key id) is not
/// readable here, and the answer is InvalidCiphertext, not a panic.
#[test]
fn a_blob_from_another_store_is_invalid_ciphertext() {
    let here = TestHsm::new();
    let there = TestHsm::new();
    here.symmetric_key("here");
    let key = there.symmetric_key("there").key_id;
    let blob = ok(
        there.hsm.encrypt(&key, b"elsewhere", &no_ctx(), None),
        "encrypt",
    )
    .ciphertext_blob;
    let r = here.hsm.decrypt(&blob, &no_ctx(), None, None);
    expect_err(r, "InvalidCiphertextException");
}

#[test]
fn generate_random_is_1_to_1024_bytes() {
    let t = TestHsm::new();
    for n in [1u32, 32, 1024] {
        assert_eq!(ok(t.hsm.generate_random(n), "random").len(), n as usize);
    }
    assert_ne!(
        ok(t.hsm.generate_random(32), "random").to_vec(),
        ok(t.hsm.generate_random(32), "random").to_vec()
    );
    for n in [0, 1025] {
        expect_err(t.hsm.generate_random(n), "ValidationException");
    }
}
