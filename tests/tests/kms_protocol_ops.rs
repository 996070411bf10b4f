//! Every KMS operation tinfoild serves, called once through the real
//! `aws-sdk-kms`, whose strict response parsing checks the shapes (member
//! names, types, epoch-second dates, explicit booleans).

mod kms_protocol_support;

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    DataKeyPairSpec, DataKeySpec, KeySpec, KeyState, KeyUsageType, MacAlgorithmSpec, MessageType,
    SigningAlgorithmSpec, Tag,
};
use kms_protocol_support::DevDaemon;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_through_aws_sdk_kms() {
    let daemon = DevDaemon::start();
    let kms = daemon.sdk();

    // Symmetric key: description, tags, rotation, re-encryption.
    let key = kms
        .create_key()
        .description("first")
        .tags(
            Tag::builder()
                .tag_key("team")
                .tag_value("a")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let key = key.key_metadata().unwrap().key_id().to_string();
    kms.update_key_description()
        .key_id(&key)
        .description("second")
        .send()
        .await
        .unwrap();
    let meta = kms.describe_key().key_id(&key).send().await.unwrap();
    assert_eq!(meta.key_metadata().unwrap().description(), Some("second"));

    kms.tag_resource()
        .key_id(&key)
        .tags(
            Tag::builder()
                .tag_key("env")
                .tag_value("test")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    kms.untag_resource()
        .key_id(&key)
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    let tags = kms.list_resource_tags().key_id(&key).send().await.unwrap();
    let tags: Vec<(&str, &str)> = tags
        .tags()
        .iter()
        .map(|t| (t.tag_key(), t.tag_value()))
        .collect();
    assert_eq!(tags, [("env", "test")]);

    let status = kms
        .get_key_rotation_status()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert!(!status.key_rotation_enabled());
    kms.enable_key_rotation()
        .key_id(&key)
        .rotation_period_in_days(90)
        .send()
        .await
        .unwrap();
    let status = kms
        .get_key_rotation_status()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert!(status.key_rotation_enabled());
    assert_eq!(status.rotation_period_in_days(), Some(90));
    assert!(status.next_rotation_date().is_some());
    kms.rotate_key_on_demand()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    let rotations = kms.list_key_rotations().key_id(&key).send().await.unwrap();
    assert_eq!(rotations.rotations().len(), 1);
    assert!(!rotations.truncated());
    kms.disable_key_rotation()
        .key_id(&key)
        .send()
        .await
        .unwrap();

    let first = kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"moved".to_vec()))
        .send()
        .await
        .unwrap();
    let other = kms.create_key().send().await.unwrap();
    let other = other.key_metadata().unwrap().arn().unwrap().to_string();
    let moved = kms
        .re_encrypt()
        .ciphertext_blob(first.ciphertext_blob().unwrap().clone())
        .destination_key_id(&other)
        .destination_encryption_context("k", "v")
        .send()
        .await
        .unwrap();
    assert_eq!(moved.key_id(), Some(other.as_str()));
    assert!(moved.source_key_id().unwrap().ends_with(&key));
    let back = kms
        .decrypt()
        .ciphertext_blob(moved.ciphertext_blob().unwrap().clone())
        .encryption_context("k", "v")
        .send()
        .await
        .unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), b"moved");

    let no_plain = kms
        .generate_data_key_without_plaintext()
        .key_id(&key)
        .number_of_bytes(24)
        .send()
        .await
        .unwrap();
    let data_key = kms
        .decrypt()
        .ciphertext_blob(no_plain.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(data_key.plaintext().unwrap().as_ref().len(), 24);
    let pair = kms
        .generate_data_key_pair()
        .key_id(&key)
        .key_pair_spec(DataKeyPairSpec::EccNistP256)
        .send()
        .await
        .unwrap();
    assert!(pair.private_key_plaintext().is_some());
    assert!(!pair.public_key().unwrap().as_ref().is_empty());
    assert_eq!(pair.key_pair_spec(), Some(&DataKeyPairSpec::EccNistP256));
    let pair = kms
        .generate_data_key_pair_without_plaintext()
        .key_id(&key)
        .key_pair_spec(DataKeyPairSpec::EccNistP256)
        .send()
        .await
        .unwrap();
    assert!(!pair
        .private_key_ciphertext_blob()
        .unwrap()
        .as_ref()
        .is_empty());
    let random = kms
        .generate_random()
        .number_of_bytes(48)
        .send()
        .await
        .unwrap();
    assert_eq!(random.plaintext().unwrap().as_ref().len(), 48);
    let _ = DataKeySpec::Aes128;

    // Aliases.
    kms.create_alias()
        .alias_name("alias/ops")
        .target_key_id(&key)
        .send()
        .await
        .unwrap();
    kms.update_alias()
        .alias_name("alias/ops")
        .target_key_id(&other)
        .send()
        .await
        .unwrap();
    let aliases = kms.list_aliases().key_id(&other).send().await.unwrap();
    let names: Vec<_> = aliases
        .aliases()
        .iter()
        .filter_map(|a| a.alias_name())
        .collect();
    assert_eq!(names, ["alias/ops"]);
    assert!(aliases.aliases()[0].creation_date().is_some());
    kms.delete_alias()
        .alias_name("alias/ops")
        .send()
        .await
        .unwrap();
    let aliases = kms.list_aliases().send().await.unwrap();
    assert!(aliases.aliases().is_empty());

    // Key policy: the default one, valid JSON granting the account root kms:*.
    let policy = kms.get_key_policy().key_id(&key).send().await.unwrap();
    let doc: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    assert_eq!(
        doc["Statement"][0]["Principal"]["AWS"],
        "arn:aws:iam::111122223333:root"
    );
    let names = kms.list_key_policies().key_id(&key).send().await.unwrap();
    assert_eq!(names.policy_names(), ["default"]);
    // PutKeyPolicy replaces it; GetKeyPolicy returns the new document.
    let out = daemon.cli(&["create-user", "--user-name", "mallory"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "admins", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "nobody-else", "Effect": "Deny",
             "Principal": {"AWS": "arn:aws:iam::111122223333:user/mallory"},
             "Action": "kms:Decrypt", "Resource": "*"}
        ]
    })
    .to_string();
    kms.put_key_policy()
        .key_id(&key)
        .policy_name("default")
        .policy(&policy)
        .send()
        .await
        .unwrap();
    let got = kms.get_key_policy().key_id(&key).send().await.unwrap();
    let got: serde_json::Value = serde_json::from_str(got.policy().unwrap()).unwrap();
    assert_eq!(got["Statement"][1]["Sid"], "nobody-else");
    let err = kms
        .put_key_policy()
        .key_id(&key)
        .policy("{not a policy")
        .send()
        .await
        .expect_err("malformed policy");
    assert!(err
        .into_service_error()
        .is_malformed_policy_document_exception());
    // CreateKey with a policy.
    let with_policy = kms.create_key().policy(&policy).send().await.unwrap();
    let with_policy = with_policy.key_metadata().unwrap().key_id().to_string();
    let got = kms
        .get_key_policy()
        .key_id(&with_policy)
        .send()
        .await
        .unwrap();
    assert!(got.policy().unwrap().contains("nobody-else"));

    // Grants: create, list, retire by token; create, revoke.
    let root = "arn:aws:iam::111122223333:root";
    let grant = kms
        .create_grant()
        .key_id(&key)
        .grantee_principal(root)
        .retiring_principal(root)
        .operations(aws_sdk_kms::types::GrantOperation::Decrypt)
        .operations(aws_sdk_kms::types::GrantOperation::Encrypt)
        .constraints(
            aws_sdk_kms::types::GrantConstraints::builder()
                .encryption_context_subset("tenant", "a")
                .build(),
        )
        .name("g1")
        .send()
        .await
        .unwrap();
    let token = grant.grant_token().unwrap().to_string();
    let grant_id = grant.grant_id().unwrap().to_string();
    let listed = kms.list_grants().key_id(&key).send().await.unwrap();
    assert_eq!(listed.grants().len(), 1);
    let entry = &listed.grants()[0];
    assert_eq!(entry.grant_id(), Some(grant_id.as_str()));
    assert_eq!(entry.name(), Some("g1"));
    assert_eq!(entry.operations().len(), 2);
    assert_eq!(
        entry
            .constraints()
            .and_then(|c| c.encryption_context_subset())
            .and_then(|m| m.get("tenant"))
            .map(String::as_str),
        Some("a")
    );
    let retirable = kms
        .list_retirable_grants()
        .retiring_principal(root)
        .send()
        .await
        .unwrap();
    assert_eq!(retirable.grants().len(), 1);
    // A live grant token is accepted on a crypto call.
    kms.encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"t".to_vec()))
        .grant_tokens(&token)
        .send()
        .await
        .unwrap();
    kms.retire_grant().grant_token(&token).send().await.unwrap();
    let listed = kms.list_grants().key_id(&key).send().await.unwrap();
    assert!(listed.grants().is_empty());
    let grant = kms
        .create_grant()
        .key_id(&key)
        .grantee_principal(root)
        .operations(aws_sdk_kms::types::GrantOperation::Decrypt)
        .send()
        .await
        .unwrap();
    kms.revoke_grant()
        .key_id(&key)
        .grant_id(grant.grant_id().unwrap())
        .send()
        .await
        .unwrap();
    let err = kms
        .revoke_grant()
        .key_id(&key)
        .grant_id(grant.grant_id().unwrap())
        .send()
        .await
        .expect_err("revoked twice");
    assert!(err.code().is_some(), "{err:?}");

    // Signing keys.
    for (spec, algorithm) in [
        (KeySpec::Rsa2048, SigningAlgorithmSpec::RsassaPssSha256),
        (KeySpec::EccNistP256, SigningAlgorithmSpec::EcdsaSha256),
    ] {
        let signer = kms
            .create_key()
            .key_spec(spec.clone())
            .key_usage(KeyUsageType::SignVerify)
            .send()
            .await
            .unwrap();
        let signer = signer.key_metadata().unwrap().key_id().to_string();
        let signed = kms
            .sign()
            .key_id(&signer)
            .message(Blob::new(b"message".to_vec()))
            .message_type(MessageType::Raw)
            .signing_algorithm(algorithm.clone())
            .send()
            .await
            .unwrap();
        let verified = kms
            .verify()
            .key_id(&signer)
            .message(Blob::new(b"message".to_vec()))
            .signature(signed.signature().unwrap().clone())
            .signing_algorithm(algorithm.clone())
            .send()
            .await
            .unwrap();
        assert!(verified.signature_valid());
        let err = kms
            .verify()
            .key_id(&signer)
            .message(Blob::new(b"other message".to_vec()))
            .signature(signed.signature().unwrap().clone())
            .signing_algorithm(algorithm)
            .send()
            .await
            .expect_err("a wrong message");
        assert!(err
            .into_service_error()
            .is_kms_invalid_signature_exception());
        let public = kms.get_public_key().key_id(&signer).send().await.unwrap();
        assert_eq!(public.key_spec(), Some(&spec));
        assert!(!public.signing_algorithms().is_empty());
    }

    // MAC keys.
    let mac_key = kms
        .create_key()
        .key_spec(KeySpec::Hmac256)
        .key_usage(KeyUsageType::GenerateVerifyMac)
        .send()
        .await
        .unwrap();
    let mac_key = mac_key.key_metadata().unwrap().key_id().to_string();
    let mac = kms
        .generate_mac()
        .key_id(&mac_key)
        .message(Blob::new(b"m".to_vec()))
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap();
    let ok = kms
        .verify_mac()
        .key_id(&mac_key)
        .message(Blob::new(b"m".to_vec()))
        .mac(mac.mac().unwrap().clone())
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap();
    assert!(ok.mac_valid());

    // DryRun: the typed DryRunOperationException, and nothing done.
    let err = kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"x".to_vec()))
        .dry_run(true)
        .send()
        .await
        .expect_err("dry run");
    assert!(err.into_service_error().is_dry_run_operation_exception());

    // Deletion is scheduled and cancelled (the key comes back Disabled).
    let scheduled = kms
        .schedule_key_deletion()
        .key_id(&other)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    assert_eq!(scheduled.key_state(), Some(&KeyState::PendingDeletion));
    assert_eq!(scheduled.pending_window_in_days(), Some(7));
    let err = kms
        .encrypt()
        .key_id(&other)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .expect_err("pending deletion");
    assert!(err.into_service_error().is_kms_invalid_state_exception());
    kms.cancel_key_deletion()
        .key_id(&other)
        .send()
        .await
        .unwrap();
    let meta = kms.describe_key().key_id(&other).send().await.unwrap();
    assert_eq!(
        meta.key_metadata().unwrap().key_state(),
        Some(&KeyState::Disabled)
    );
    assert!(!meta.key_metadata().unwrap().enabled());

    // Multi-Region and custom key stores are not offered.
    let err = kms
        .replicate_key()
        .key_id(&key)
        .replica_region("eu-west-1")
        .send()
        .await
        .expect_err("ReplicateKey");
    assert_eq!(err.code(), Some("UnsupportedOperationException"));
    let err = kms
        .create_custom_key_store()
        .custom_key_store_name("x")
        .send()
        .await
        .expect_err("CreateCustomKeyStore");
    assert_eq!(err.code(), Some("UnsupportedOperationException"));
}
