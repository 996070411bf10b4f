//! The KMS JSON 1.1 endpoint's request decoding, every operation's shape:
//! the first byte picks the X-Amz-Target (or a fuzzed one), the rest is the
//! body. Decoded requests (but key generation) run against a real store.
#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use tinfoil_daemon::kms_api::fuzzing::route_and_run;
use tinfoil_fuzz::Store;

const OPERATIONS: &[&str] = &[
    "CancelKeyDeletion",
    "CreateAlias",
    "CreateGrant",
    "CreateKey",
    "Decrypt",
    "DeleteAlias",
    "DescribeKey",
    "DisableKey",
    "DisableKeyRotation",
    "EnableKey",
    "EnableKeyRotation",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "GenerateRandom",
    "GetKeyPolicy",
    "GetKeyRotationStatus",
    "GetPublicKey",
    "ListAliases",
    "ListGrants",
    "ListKeyPolicies",
    "ListKeyRotations",
    "ListKeys",
    "ListResourceTags",
    "ListRetirableGrants",
    "PutKeyPolicy",
    "ReEncrypt",
    "RetireGrant",
    "RevokeGrant",
    "RotateKeyOnDemand",
    "ScheduleKeyDeletion",
    "Sign",
    "TagResource",
    "UntagResource",
    "UpdateAlias",
    "UpdateKeyDescription",
    "Verify",
    "VerifyMac",
    "ConnectCustomKeyStore",
    "ImportKeyMaterial",
    "DeriveSharedSecret",
    "Encapsulate",
    "Decapsulate",
];

static STORE: Mutex<Option<Store>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let Some((&op, body)) = data.split_first() else {
        return;
    };
    let owned;
    let (target, body) = if (op as usize) < OPERATIONS.len() {
        owned = format!("TrentService.{}", OPERATIONS[op as usize]);
        (Some(owned.as_str()), body)
    } else if op == 0xff {
        // A fuzzed target: up to the first newline.
        let i = body.iter().position(|&b| b == b'\n').unwrap_or(body.len());
        match std::str::from_utf8(&body[..i]) {
            Ok(t) => (Some(t), body.get(i + 1..).unwrap_or_default()),
            Err(_) => return,
        }
    } else {
        (None, body)
    };
    let mut guard = STORE.lock().unwrap_or_else(|p| p.into_inner());
    if guard.as_mut().is_none_or(|s| s.worn_out()) {
        *guard = Some(Store::with_keys());
    }
    let store = guard.as_ref().expect("store");
    let _ = route_and_run(Some(&store.hsm), target, body);
});
