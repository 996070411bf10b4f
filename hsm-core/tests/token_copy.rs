//! `Hsm::p11_copy_secret` (C_CopyObject of secret keys): the copy has the
//! source's material, lives on as its own key, and cannot loosen the
//! source's extractability; a token key must be Enabled to be copied.

mod common;

use common::TestHsm;
use hsm_core::mechanisms::{AesMode, SecretKeyRef};
use hsm_core::token::{CopiedKey, SessionKeys};
use hsm_core::Error;

fn gcm() -> AesMode {
    AesMode::Gcm {
        iv: vec![5; 12],
        aad: Vec::new(),
        tag_len: 16,
    }
}

#[test]
fn copies_keep_the_material_and_never_loosen_extractability() {
    let t = TestHsm::new();
    let h = &t.hsm;
    let keys = SessionKeys::new();
    let locked = keys.generate(32, false).unwrap();
    let seal = |key: SecretKeyRef<'_>| h.p11_aes(&keys, key, &gcm(), true, b"data").unwrap();
    let expected = seal(SecretKeyRef::Session(locked));

    let err = h
        .p11_copy_secret(&keys, SecretKeyRef::Session(locked), true, None, true)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidKeyUsage(_)), "{err:?}");

    let CopiedKey::Session(copy) = h
        .p11_copy_secret(&keys, SecretKeyRef::Session(locked), true, None, false)
        .unwrap()
    else {
        panic!("a session copy")
    };
    keys.destroy(locked);
    assert_eq!(seal(SecretKeyRef::Session(copy)), expected);

    let CopiedKey::Stored(meta) = h
        .p11_copy_secret(&keys, SecretKeyRef::Session(copy), true, Some("tok"), false)
        .unwrap()
    else {
        panic!("a token copy")
    };
    assert_eq!(meta.token.as_deref(), Some("tok"));
    assert_eq!(seal(SecretKeyRef::Stored(&meta.key_id)), expected);

    // A disabled token key cannot be copied.
    h.disable_key(&meta.key_id).unwrap();
    let err = h
        .p11_copy_secret(&keys, SecretKeyRef::Stored(&meta.key_id), true, None, false)
        .unwrap_err();
    assert!(matches!(err, Error::Disabled(_)), "{err:?}");
}
