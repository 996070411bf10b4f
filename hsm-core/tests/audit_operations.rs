//! Every operation of the KMS API through the gate leaves exactly one
//! audit record, with its eventName, the caller and the key; a call a key
//! policy denies leaves one with AccessDeniedException (issue 11).

mod common;

use std::collections::BTreeMap;

use common::*;
use hsm_core::audit::LookupEventsRequest;
use hsm_core::grants::{CreateGrantRequest, GrantOperation};
use hsm_core::{
    Caller, CreateKeyRequest, DataKeyPairSpec, DataKeySpec, EncryptionContext, Error, KeySpec,
    KeyUsage, MacAlgorithm, MessageType, Principal, SigningAlgorithm, Tag,
};
use serde_json::Value;

fn records(t: &TestHsm, caller: &Caller) -> Vec<Value> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = t
            .hsm
            .gate(caller)
            .lookup_events(&LookupEventsRequest {
                next_token: token.clone(),
                ..Default::default()
            })
            .unwrap();
        out.extend(
            page.events
                .iter()
                .map(|e| serde_json::from_str::<Value>(&e.cloud_trail_event).unwrap()),
        );
        match page.next_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    out.reverse();
    out.retain(|r| r["eventName"] != "LookupEvents");
    out
}

#[test]
fn every_kms_operation_leaves_exactly_one_record() {
    let t = TestHsm::new();
    let mut caller = Caller::new(Principal::Root, "10.0.0.7");
    caller.access_key_id = Some("AKIAAUDITTEST0000001".into());
    let g = t.hsm.gate(&caller);
    let ctx: EncryptionContext = BTreeMap::from([("k".to_string(), "v".to_string())]);
    // (eventName, the key ARN it names, or None)
    let mut expected: Vec<(&str, Option<String>)> = Vec::new();

    let sym = g.create_key(CreateKeyRequest::default()).unwrap();
    let k = sym.key_id.as_str();
    let arn = || Some(sym.arn.clone());
    expected.push(("CreateKey", arn()));
    g.describe_key(k).unwrap();
    expected.push(("DescribeKey", arn()));
    g.list_keys(None, None).unwrap();
    expected.push(("ListKeys", None));
    g.update_key_description(k, "new").unwrap();
    expected.push(("UpdateKeyDescription", arn()));
    g.disable_key(k).unwrap();
    expected.push(("DisableKey", arn()));
    g.enable_key(k).unwrap();
    expected.push(("EnableKey", arn()));
    g.enable_key_rotation(k, Some(90)).unwrap();
    expected.push(("EnableKeyRotation", arn()));
    g.get_key_rotation_status(k).unwrap();
    expected.push(("GetKeyRotationStatus", arn()));
    g.disable_key_rotation(k).unwrap();
    expected.push(("DisableKeyRotation", arn()));
    g.rotate_key_on_demand(k).unwrap();
    expected.push(("RotateKeyOnDemand", arn()));
    g.list_key_rotations(k, None, None).unwrap();
    expected.push(("ListKeyRotations", arn()));
    g.create_alias("alias/ops", k).unwrap();
    expected.push(("CreateAlias", arn()));
    g.update_alias("alias/ops", k).unwrap();
    expected.push(("UpdateAlias", arn()));
    g.list_aliases(None, None, None).unwrap();
    expected.push(("ListAliases", None));
    g.tag_resource(
        k,
        &[Tag {
            tag_key: "a".into(),
            tag_value: "b".into(),
        }],
    )
    .unwrap();
    expected.push(("TagResource", arn()));
    g.list_resource_tags(k, None, None).unwrap();
    expected.push(("ListResourceTags", arn()));
    g.untag_resource(k, &["a".to_string()]).unwrap();
    expected.push(("UntagResource", arn()));
    let blob = g
        .encrypt("alias/ops", b"x", &ctx, None)
        .unwrap()
        .ciphertext_blob;
    expected.push(("Encrypt", arn()));
    g.decrypt(&blob, &ctx, None, None).unwrap();
    expected.push(("Decrypt", arn()));
    g.re_encrypt(&blob, &ctx, None, k, &ctx).unwrap();
    expected.push(("ReEncrypt", arn()));
    g.generate_data_key(k, Some(DataKeySpec::Aes256), None, &ctx)
        .unwrap();
    expected.push(("GenerateDataKey", arn()));
    g.generate_data_key_without_plaintext(k, None, Some(32), &ctx)
        .unwrap();
    expected.push(("GenerateDataKeyWithoutPlaintext", arn()));
    g.generate_data_key_pair(k, DataKeyPairSpec::EccNistP256, &ctx, true)
        .unwrap();
    expected.push(("GenerateDataKeyPair", arn()));
    g.generate_data_key_pair(k, DataKeyPairSpec::EccNistP256, &ctx, false)
        .unwrap();
    expected.push(("GenerateDataKeyPairWithoutPlaintext", arn()));
    g.generate_random(16).unwrap();
    expected.push(("GenerateRandom", None));
    g.get_key_policy(k, None).unwrap();
    expected.push(("GetKeyPolicy", arn()));
    g.list_key_policies(k, None, None).unwrap();
    expected.push(("ListKeyPolicies", arn()));
    let policy = g.get_key_policy(k, None).unwrap();
    expected.push(("GetKeyPolicy", arn()));
    g.put_key_policy(k, None, &policy, false).unwrap();
    expected.push(("PutKeyPolicy", arn()));
    g.create_user("bob", None, None).unwrap();
    expected.push(("CreateUser", None));
    let grant = g
        .create_grant(CreateGrantRequest {
            key_id: k.to_string(),
            grantee_principal: "arn:aws:iam::111122223333:user/bob".into(),
            retiring_principal: None,
            operations: vec![GrantOperation::Encrypt],
            constraints: None,
            name: None,
            grant_tokens: Vec::new(),
        })
        .unwrap();
    expected.push(("CreateGrant", arn()));
    g.list_grants(k, None, None, None, None).unwrap();
    expected.push(("ListGrants", arn()));
    g.revoke_grant(k, &grant.grant_id).unwrap();
    expected.push(("RevokeGrant", arn()));
    g.delete_alias("alias/ops").unwrap();
    expected.push(("DeleteAlias", arn()));

    let ec = g
        .create_key(CreateKeyRequest {
            key_spec: Some(KeySpec::EccNistP256),
            key_usage: Some(KeyUsage::SignVerify),
            ..Default::default()
        })
        .unwrap();
    let ec_arn = || Some(ec.arn.clone());
    expected.push(("CreateKey", ec_arn()));
    let sig = g
        .sign(
            &ec.key_id,
            b"msg",
            MessageType::Raw,
            SigningAlgorithm::EcdsaSha256,
        )
        .unwrap()
        .signature;
    expected.push(("Sign", ec_arn()));
    g.verify(
        &ec.key_id,
        b"msg",
        MessageType::Raw,
        &sig,
        SigningAlgorithm::EcdsaSha256,
    )
    .unwrap();
    expected.push(("Verify", ec_arn()));
    g.get_public_key(&ec.key_id).unwrap();
    expected.push(("GetPublicKey", ec_arn()));

    let mac = g
        .create_key(CreateKeyRequest {
            key_spec: Some(KeySpec::Hmac256),
            key_usage: Some(KeyUsage::GenerateVerifyMac),
            ..Default::default()
        })
        .unwrap();
    let mac_arn = || Some(mac.arn.clone());
    expected.push(("CreateKey", mac_arn()));
    let tag = g
        .generate_mac(&mac.key_id, b"m", MacAlgorithm::HmacSha256)
        .unwrap()
        .mac;
    expected.push(("GenerateMac", mac_arn()));
    g.verify_mac(&mac.key_id, b"m", &tag, MacAlgorithm::HmacSha256)
        .unwrap();
    expected.push(("VerifyMac", mac_arn()));

    g.schedule_key_deletion(k, Some(7)).unwrap();
    expected.push(("ScheduleKeyDeletion", arn()));
    g.cancel_key_deletion(k).unwrap();
    expected.push(("CancelKeyDeletion", arn()));

    let got = records(&t, &caller);
    let got_pairs: Vec<(String, Option<String>)> = got
        .iter()
        .map(|r| {
            (
                r["eventName"].as_str().unwrap().to_string(),
                r["resources"][0]["ARN"].as_str().map(str::to_string),
            )
        })
        .collect();
    let want: Vec<(String, Option<String>)> = expected
        .into_iter()
        .map(|(n, a)| (n.to_string(), a))
        .collect();
    assert_eq!(got_pairs, want);
    for r in &got {
        assert_eq!(
            r["userIdentity"]["arn"], "arn:aws:iam::111122223333:root",
            "{r}"
        );
        assert_eq!(r["userIdentity"]["accessKeyId"], "AKIAAUDITTEST0000001");
        assert_eq!(r["sourceIPAddress"], "10.0.0.7");
        assert!(r.get("errorCode").is_none(), "{r}");
    }
}

#[test]
fn a_call_the_key_policy_denies_is_recorded_as_access_denied() {
    let t = TestHsm::new();
    let root = Caller::new(Principal::Root, "unix:uid=0,pid=1");
    let key = t
        .hsm
        .gate(&root)
        .create_key(CreateKeyRequest::default())
        .unwrap();
    t.hsm.gate(&root).create_user("carol", None, None).unwrap();
    let carol = Caller::new(Principal::User("carol".into()), "unix:uid=1001,pid=9");
    let err = t
        .hsm
        .gate(&carol)
        .encrypt(&key.key_id, b"x", &EncryptionContext::new(), None)
        .unwrap_err();
    assert!(matches!(err, Error::AccessDenied(_)), "{err:?}");
    let err = t.hsm.gate(&carol).disable_key(&key.key_id).unwrap_err();
    assert!(matches!(err, Error::AccessDenied(_)), "{err:?}");
    let carols: Vec<Value> = records(&t, &root)
        .into_iter()
        .filter(|r| r["userIdentity"]["userName"] == "carol")
        .collect();
    assert_eq!(carols.len(), 2, "{carols:?}");
    for (r, name) in carols.iter().zip(["Encrypt", "DisableKey"]) {
        assert_eq!(r["eventName"], name);
        assert_eq!(r["errorCode"], "AccessDeniedException");
        assert_eq!(r["userIdentity"]["type"], "IAMUser");
        assert_eq!(r["resources"][0]["ARN"], key.arn.as_str());
        assert!(r["errorMessage"].as_str().unwrap().contains("carol"), "{r}");
    }
    // Nothing changed: the key is still enabled.
    assert_eq!(t.state(&key.key_id), hsm_core::KeyState::Enabled);
}
