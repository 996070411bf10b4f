//! Tags under reserved prefixes carry attributes the service enforces
//! (`pkcs11:extractable` is CKA_EXTRACTABLE): a caller must not be able to
//! set or forge them through CreateKey or TagResource, or a key made
//! non-extractable could be wrapped out of the store.

use std::sync::Arc;

use hsm_core::mechanisms::{SecretKeyRef, WrapMode};
use hsm_core::token::{SessionKeys, EXTRACTABLE_TAG};
use hsm_core::{
    CreateKeyRequest, Error, Hsm, HsmOptions, KdfParams, ManualClock, SecretString, Tag,
};

fn store(dir: &std::path::Path) -> Hsm {
    let options = HsmOptions {
        kdf: KdfParams {
            memory_kib: 8192,
            iterations: 1,
            parallelism: 1,
        },
        clock: Arc::new(ManualClock::new(1_700_000_000)),
        cache_capacity: 16,
        account: Default::default(),
    };
    Hsm::init(dir, &SecretString::from("pass"), options).unwrap()
}

fn forged() -> Vec<Tag> {
    vec![Tag {
        tag_key: EXTRACTABLE_TAG.to_string(),
        tag_value: "true".to_string(),
    }]
}

#[test]
fn a_caller_cannot_make_a_non_extractable_key_wrappable() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = store(dir.path());
    let keys = SessionKeys::new();
    let kek = hsm
        .p11_create_aes_key("app", 32, "kek", false)
        .unwrap()
        .key_id;
    let target = hsm
        .p11_create_aes_key("app", 32, "secret", false)
        .unwrap()
        .key_id;

    let err = hsm.tag_resource(&target, &forged()).unwrap_err();
    assert!(matches!(err, Error::Validation(_)), "{err:?}");
    let tags = hsm.list_resource_tags(&target, None, None).unwrap().items;
    assert!(
        tags.iter().all(|t| t.tag_key != EXTRACTABLE_TAG),
        "{tags:?}"
    );

    let err = hsm
        .p11_wrap(
            &keys,
            SecretKeyRef::Stored(&kek),
            WrapMode::Kwp,
            SecretKeyRef::Stored(&target),
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidKeyUsage(_)), "{err:?}");
}

#[test]
fn reserved_tags_are_refused_at_create_and_untag_and_set_only_by_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = store(dir.path());
    let before = hsm.list_keys(None, None).unwrap().items.len();
    for prefix in ["pkcs11:", "aws:", "tinfoil:"] {
        let request = CreateKeyRequest {
            tags: vec![Tag {
                tag_key: format!("{prefix}x"),
                tag_value: "v".into(),
            }],
            ..Default::default()
        };
        let err = hsm.create_key(request).unwrap_err();
        assert!(matches!(err, Error::Validation(_)), "{prefix}: {err:?}");
    }
    assert_eq!(
        hsm.list_keys(None, None).unwrap().items.len(),
        before,
        "nothing created"
    );

    // The PKCS#11 layer itself marks extractable keys, and those do wrap.
    let keys = SessionKeys::new();
    let kek = hsm
        .p11_create_aes_key("app", 32, "kek", false)
        .unwrap()
        .key_id;
    let open = hsm
        .p11_create_aes_key("app", 32, "open", true)
        .unwrap()
        .key_id;
    let tags = hsm.list_resource_tags(&open, None, None).unwrap().items;
    assert!(tags.iter().any(|t| t.tag_key == EXTRACTABLE_TAG));
    let wrapped = hsm
        .p11_wrap(
            &keys,
            SecretKeyRef::Stored(&kek),
            WrapMode::Kwp,
            SecretKeyRef::Stored(&open),
        )
        .unwrap();
    assert_eq!(wrapped.len(), 40);
    let err = hsm
        .untag_resource(&open, &[EXTRACTABLE_TAG.to_string()])
        .unwrap_err();
    assert!(matches!(err, Error::Validation(_)), "{err:?}");
}
