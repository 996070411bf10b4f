//! A PKCS#11 key pair with several usages, as the KMS API sees it: its
//! KeyUsage is one value (the first of SIGN_VERIFY, ENCRYPT_DECRYPT), and
//! the system tag `pkcs11:usages` lists every usage, which the PKCS#11
//! mechanisms honour (a sign-only pair still never decrypts).

mod common;

use common::TestHsm;
use hsm_core::mechanisms::SecretKeyRef;
use hsm_core::token::{PairUsages, SessionKeys, USAGES_TAG};
use hsm_core::{KeySpec, KeyUsage};

fn both() -> PairUsages {
    PairUsages {
        sign: true,
        decrypt: true,
        derive: false,
        ..Default::default()
    }
}

#[test]
fn a_sign_and_decrypt_pair_shows_both_usages_and_decrypts() {
    let t = TestHsm::new();
    let h = &t.hsm;
    let keys = SessionKeys::new();
    h.token_init(None, "u", b"12345678").unwrap();
    let (meta, _) = h
        .p11_create_key_pair("u", KeySpec::Rsa2048, both(), "pair")
        .unwrap();
    assert_eq!(meta.key_usage, KeyUsage::SignVerify);
    let tags = h
        .list_resource_tags(&meta.key_id, None, None)
        .unwrap()
        .items;
    let listed = tags
        .iter()
        .find(|t| t.tag_key == USAGES_TAG)
        .map(|t| t.tag_value.clone());
    assert_eq!(listed.as_deref(), Some("SIGN_VERIFY,ENCRYPT_DECRYPT"));
    let ct = h
        .p11_rsa_pkcs1_crypt(&keys, SecretKeyRef::Stored(&meta.key_id), true, b"secret")
        .unwrap();
    let pt = h
        .p11_rsa_pkcs1_crypt(&keys, SecretKeyRef::Stored(&meta.key_id), false, &ct)
        .unwrap();
    assert_eq!(pt.as_slice(), b"secret");

    // One usage: no tag, and a signing pair does not decrypt.
    let (sign_only, _) = h
        .p11_create_key_pair(
            "u",
            KeySpec::Rsa2048,
            PairUsages::single(KeyUsage::SignVerify),
            "s",
        )
        .unwrap();
    let tags = h
        .list_resource_tags(&sign_only.key_id, None, None)
        .unwrap()
        .items;
    assert!(tags.iter().all(|t| t.tag_key != USAGES_TAG));
    assert!(h
        .p11_rsa_pkcs1_crypt(&keys, SecretKeyRef::Stored(&sign_only.key_id), false, &ct)
        .is_err());
}

#[test]
fn usages_the_key_type_cannot_have_are_refused_and_nothing_is_made() {
    let t = TestHsm::new();
    let h = &t.hsm;
    h.token_init(None, "u", b"12345678").unwrap();
    let ec_decrypt = PairUsages {
        sign: true,
        decrypt: true,
        derive: false,
        ..Default::default()
    };
    assert!(h
        .p11_create_key_pair("u", KeySpec::EccNistP256, ec_decrypt, "x")
        .is_err());
    let ed_derive = PairUsages {
        sign: true,
        decrypt: false,
        derive: true,
        ..Default::default()
    };
    assert!(h
        .p11_create_key_pair("u", KeySpec::EccEd25519, ed_derive, "x")
        .is_err());
    assert!(h
        .p11_create_key_pair("u", KeySpec::Rsa2048, PairUsages::default(), "x")
        .is_err());
    assert!(h.list_token_keys("u").unwrap().is_empty());
    assert!(PairUsages::parse("SIGN_VERIFY,NOPE").is_err());
    assert_eq!(PairUsages::parse(&both().as_str()).unwrap(), both());
}
