//! Every operation that takes a key, in every key state, against the AWS
//! KMS key state table (developer guide, "Key states of AWS KMS keys"):
//! crypto operations give DisabledException on a Disabled key and
//! KMSInvalidStateException on a PendingDeletion key; management
//! operations follow their own rows. A failed operation changes nothing.

mod common;

use common::*;
use hsm_core::{
    DataKeyPairSpec, DataKeySpec, Hsm, KeySpec, KeyState, KeyUsage, MacAlgorithm, MessageType,
    Result, SigningAlgorithm,
};

/// What a cell of the table expects.
#[derive(Clone, Copy, Debug)]
enum Outcome {
    Ok,
    /// Fails with one of these KMS exception names.
    Err(&'static [&'static str]),
}

const OK: Outcome = Outcome::Ok;
const DISABLED: Outcome = Outcome::Err(&["DisabledException"]);
const INVALID_STATE: Outcome = Outcome::Err(&["KMSInvalidStateException"]);
const UNSUPPORTED: Outcome = Outcome::Err(&["UnsupportedOperationException"]);

/// The states, in the column order of every row.
const STATES: [KeyState; 3] = [
    KeyState::Enabled,
    KeyState::Disabled,
    KeyState::PendingDeletion,
];

const MESSAGE: &[u8] = b"state table message";

/// The encryption context of every fixture ciphertext.
fn c() -> hsm_core::EncryptionContext {
    ctx(&[("n", "1")])
}

/// One key put into one state, with what the operations need.
struct Fixture {
    /// The key under test.
    key: String,
    /// A ciphertext (symmetric), signature (SIGN_VERIFY) or MAC (HMAC) made
    /// while the key was Enabled.
    made: Vec<u8>,
    /// An Enabled symmetric key that stays Enabled.
    helper: String,
    /// A ciphertext under `helper`.
    helper_blob: Vec<u8>,
    /// An alias of the key under test.
    own_alias: String,
    /// An alias of the helper key.
    helper_alias: String,
    /// A fresh alias name nobody uses yet.
    new_alias: String,
}

struct Row {
    op: &'static str,
    spec: KeySpec,
    usage: KeyUsage,
    run: fn(&Hsm, &Fixture) -> Result<()>,
    /// Expected outcome in Enabled, Disabled, PendingDeletion.
    expect: [Outcome; 3],
    /// The key's state after a success, when the operation changes it.
    state_after: Option<KeyState>,
}

fn row(
    op: &'static str,
    run: fn(&Hsm, &Fixture) -> Result<()>,
    expect: [Outcome; 3],
    state_after: Option<KeyState>,
) -> Row {
    Row {
        op,
        spec: KeySpec::SymmetricDefault,
        usage: KeyUsage::EncryptDecrypt,
        run,
        expect,
        state_after,
    }
}

fn row_for(
    spec: KeySpec,
    usage: KeyUsage,
    op: &'static str,
    run: fn(&Hsm, &Fixture) -> Result<()>,
    expect: [Outcome; 3],
) -> Row {
    Row {
        op,
        spec,
        usage,
        run,
        expect,
        state_after: None,
    }
}

fn fixture(t: &TestHsm, n: usize, spec: KeySpec, usage: KeyUsage, state: KeyState) -> Fixture {
    let key = t.key_of(spec, usage).key_id;
    let made = match usage {
        _ if spec.is_symmetric() => {
            ok(t.hsm.encrypt(&key, MESSAGE, &c(), None), "fixture encrypt").ciphertext_blob
        }
        KeyUsage::SignVerify => {
            ok(
                t.hsm.sign(
                    &key,
                    MESSAGE,
                    MessageType::Raw,
                    SigningAlgorithm::EcdsaSha256,
                ),
                "fixture sign",
            )
            .signature
        }
        KeyUsage::GenerateVerifyMac => {
            ok(
                t.hsm.generate_mac(&key, MESSAGE, MacAlgorithm::HmacSha256),
                "fixture mac",
            )
            .mac
        }
        KeyUsage::EncryptDecrypt | KeyUsage::EncapsulateDecapsulate => Vec::new(),
    };
    let helper = t.symmetric_key("helper").key_id;
    let helper_blob = ok(
        t.hsm.encrypt(&helper, MESSAGE, &c(), None),
        "helper encrypt",
    )
    .ciphertext_blob;
    let own_alias = format!("alias/own-{n}");
    let helper_alias = format!("alias/helper-{n}");
    ok(t.hsm.create_alias(&own_alias, &key), "fixture alias");
    ok(t.hsm.create_alias(&helper_alias, &helper), "helper alias");
    ok(t.hsm.tag_resource(&key, &[tag("team", "a")]), "fixture tag");
    if spec.is_symmetric() {
        ok(
            t.hsm.enable_key_rotation(&key, Some(180)),
            "fixture rotation",
        );
    }
    match state {
        KeyState::Enabled => {}
        KeyState::Disabled => ok(t.hsm.disable_key(&key), "fixture disable"),
        KeyState::PendingDeletion => {
            ok(
                t.hsm.schedule_key_deletion(&key, Some(7)),
                "fixture schedule",
            );
        }
    }
    assert_eq!(t.state(&key), state, "fixture state");
    Fixture {
        key,
        made,
        helper,
        helper_blob,
        own_alias,
        helper_alias,
        new_alias: format!("alias/new-{n}"),
    }
}

/// Runs every row in every state; collects every disagreement, then fails
/// once with the whole list.
fn run_table(rows: &[Row]) {
    let t = TestHsm::new();
    let mut failures = Vec::new();
    let mut n = 0;
    for row in rows {
        for (column, &state) in STATES.iter().enumerate() {
            n += 1;
            let fx = fixture(&t, n, row.spec, row.usage, state);
            let before = t.snapshot(&fx.key);
            let helper_before = t.snapshot(&fx.helper);
            let result = (row.run)(&t.hsm, &fx);
            let cell = format!("{} on a {} {} key", row.op, state, row.spec);
            match (row.expect[column], result) {
                (Outcome::Ok, Ok(())) => {
                    let after = t.state(&fx.key);
                    let want = row.state_after.unwrap_or(state);
                    if after != want {
                        failures.push(format!("{cell}: key state {after} afterwards, want {want}"));
                    }
                }
                (Outcome::Ok, Err(e)) => {
                    failures.push(format!("{cell}: want success, got {}: {e}", e.kms_name()));
                }
                (Outcome::Err(names), Ok(())) => {
                    failures.push(format!("{cell}: want {names:?}, got Ok"));
                }
                (Outcome::Err(names), Err(e)) => {
                    if !names.contains(&e.kms_name()) {
                        failures.push(format!("{cell}: want {names:?}, got {}: {e}", e.kms_name()));
                    }
                    if t.snapshot(&fx.key) != before {
                        failures.push(format!("{cell}: failed but changed the key"));
                    }
                    if t.snapshot(&fx.helper) != helper_before {
                        failures.push(format!("{cell}: failed but changed another key"));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cell(s) disagree with the key state table:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

fn symmetric_rows() -> Vec<Row> {
    use KeyState::*;
    let crypto = [OK, DISABLED, INVALID_STATE];
    let manage = [OK, OK, INVALID_STATE];
    let any = [OK, OK, OK];
    vec![
        row(
            "Encrypt",
            |h, f| h.encrypt(&f.key, b"x", &c(), None).map(drop),
            crypto,
            None,
        ),
        row(
            "Decrypt",
            |h, f| h.decrypt(&f.made, &c(), None, None).map(drop),
            crypto,
            None,
        ),
        row(
            "Decrypt naming the key by alias",
            |h, f| h.decrypt(&f.made, &c(), Some(&f.own_alias), None).map(drop),
            crypto,
            None,
        ),
        row(
            "ReEncrypt from this key to another",
            |h, f| h.re_encrypt(&f.made, &c(), None, &f.helper, &c()).map(drop),
            crypto,
            None,
        ),
        row(
            "ReEncrypt from another key to this key",
            |h, f| {
                h.re_encrypt(&f.helper_blob, &c(), None, &f.key, &c())
                    .map(drop)
            },
            crypto,
            None,
        ),
        row(
            "ReEncrypt onto the same key",
            |h, f| {
                h.re_encrypt(&f.made, &c(), Some(&f.key), &f.key, &c())
                    .map(drop)
            },
            crypto,
            None,
        ),
        row(
            "GenerateDataKey",
            |h, f| {
                h.generate_data_key(&f.key, Some(DataKeySpec::Aes256), None, &c())
                    .map(drop)
            },
            crypto,
            None,
        ),
        row(
            "GenerateDataKeyWithoutPlaintext",
            |h, f| {
                h.generate_data_key_without_plaintext(&f.key, None, Some(64), &c())
                    .map(drop)
            },
            crypto,
            None,
        ),
        row(
            "DescribeKey",
            |h, f| h.describe_key(&f.key).map(drop),
            any,
            None,
        ),
        row(
            "EnableKey",
            |h, f| h.enable_key(&f.key),
            manage,
            Some(Enabled),
        ),
        row(
            "DisableKey",
            |h, f| h.disable_key(&f.key),
            manage,
            Some(Disabled),
        ),
        row(
            "ScheduleKeyDeletion",
            |h, f| h.schedule_key_deletion(&f.key, Some(30)).map(drop),
            manage,
            Some(PendingDeletion),
        ),
        row(
            "CancelKeyDeletion",
            |h, f| h.cancel_key_deletion(&f.key).map(drop),
            [INVALID_STATE, INVALID_STATE, OK],
            Some(Disabled),
        ),
        row(
            "EnableKeyRotation",
            |h, f| h.enable_key_rotation(&f.key, Some(90)),
            crypto,
            None,
        ),
        row(
            "DisableKeyRotation",
            |h, f| h.disable_key_rotation(&f.key),
            crypto,
            None,
        ),
        row(
            "RotateKeyOnDemand",
            |h, f| h.rotate_key_on_demand(&f.key).map(drop),
            crypto,
            None,
        ),
        row(
            "GetKeyRotationStatus",
            |h, f| h.get_key_rotation_status(&f.key).map(drop),
            any,
            None,
        ),
        row(
            "ListKeyRotations",
            |h, f| h.list_key_rotations(&f.key, None, None).map(drop),
            any,
            None,
        ),
        row(
            "UpdateKeyDescription",
            |h, f| h.update_key_description(&f.key, "changed"),
            manage,
            None,
        ),
        row(
            "TagResource",
            |h, f| h.tag_resource(&f.key, &[tag("new", "b")]),
            manage,
            None,
        ),
        row(
            "TagResource replacing a value",
            |h, f| h.tag_resource(&f.key, &[tag("team", "b")]),
            manage,
            None,
        ),
        row(
            "UntagResource",
            |h, f| h.untag_resource(&f.key, &["team".into()]),
            manage,
            None,
        ),
        row(
            "ListResourceTags",
            |h, f| h.list_resource_tags(&f.key, None, None).map(drop),
            any,
            None,
        ),
        row(
            "CreateAlias",
            |h, f| h.create_alias(&f.new_alias, &f.key),
            manage,
            None,
        ),
        row(
            "UpdateAlias pointing another key's alias at this key",
            |h, f| h.update_alias(&f.helper_alias, &f.key),
            manage,
            None,
        ),
        // Key state table, note: UpdateAlias succeeds when the key the
        // alias currently names is pending deletion; only the new target
        // must not be.
        row(
            "UpdateAlias moving this key's alias to another key",
            |h, f| h.update_alias(&f.own_alias, &f.helper),
            any,
            None,
        ),
        row(
            "DeleteAlias",
            |h, f| h.delete_alias(&f.own_alias),
            any,
            None,
        ),
        row(
            "ListAliases of this key",
            |h, f| h.list_aliases(Some(&f.key), None, None).map(drop),
            any,
            None,
        ),
    ]
}

#[test]
fn symmetric_key_operations_follow_the_key_state_table() {
    run_table(&symmetric_rows());
}

#[test]
fn sign_mac_and_data_key_pair_operations_follow_the_key_state_table() {
    use KeySpec::*;
    use KeyUsage::*;
    let crypto = [OK, DISABLED, INVALID_STATE];
    let rows = vec![
        row_for(
            EccNistP256,
            SignVerify,
            "Sign",
            |h, f| {
                h.sign(
                    &f.key,
                    MESSAGE,
                    MessageType::Raw,
                    SigningAlgorithm::EcdsaSha256,
                )
                .map(drop)
            },
            crypto,
        ),
        row_for(
            EccNistP256,
            SignVerify,
            "Verify",
            |h, f| {
                h.verify(
                    &f.key,
                    MESSAGE,
                    MessageType::Raw,
                    &f.made,
                    SigningAlgorithm::EcdsaSha256,
                )
                .map(drop)
            },
            crypto,
        ),
        row_for(
            EccNistP256,
            SignVerify,
            "GetPublicKey",
            |h, f| h.get_public_key(&f.key).map(drop),
            crypto,
        ),
        row_for(
            Hmac256,
            GenerateVerifyMac,
            "GenerateMac",
            |h, f| {
                h.generate_mac(&f.key, MESSAGE, MacAlgorithm::HmacSha256)
                    .map(drop)
            },
            crypto,
        ),
        row_for(
            Hmac256,
            GenerateVerifyMac,
            "VerifyMac",
            |h, f| {
                h.verify_mac(&f.key, MESSAGE, &f.made, MacAlgorithm::HmacSha256)
                    .map(drop)
            },
            crypto,
        ),
        row_for(
            SymmetricDefault,
            EncryptDecrypt,
            "GenerateDataKeyPair",
            |h, f| {
                h.generate_data_key_pair(&f.key, DataKeyPairSpec::EccNistP256, &c(), true)
                    .map(drop)
            },
            crypto,
        ),
        row_for(
            SymmetricDefault,
            EncryptDecrypt,
            "GenerateDataKeyPairWithoutPlaintext",
            |h, f| {
                h.generate_data_key_pair(&f.key, DataKeyPairSpec::EccNistP256, &c(), false)
                    .map(drop)
            },
            crypto,
        ),
        // Rotation exists only for symmetric encryption keys. On an Enabled
        // key the answer is UnsupportedOperationException; in other states
        // either refusal is a refusal.
        row_for(
            EccNistP256,
            SignVerify,
            "EnableKeyRotation (ECC)",
            |h, f| h.enable_key_rotation(&f.key, None),
            [
                UNSUPPORTED,
                Outcome::Err(&["UnsupportedOperationException", "DisabledException"]),
                Outcome::Err(&["UnsupportedOperationException", "KMSInvalidStateException"]),
            ],
        ),
        row_for(
            Hmac256,
            GenerateVerifyMac,
            "RotateKeyOnDemand (HMAC)",
            |h, f| h.rotate_key_on_demand(&f.key).map(drop),
            [
                UNSUPPORTED,
                Outcome::Err(&["UnsupportedOperationException", "DisabledException"]),
                Outcome::Err(&["UnsupportedOperationException", "KMSInvalidStateException"]),
            ],
        ),
        // Management rows behave the same for every kind of key.
        row_for(
            EccNistP256,
            SignVerify,
            "DisableKey (ECC)",
            |h, f| h.disable_key(&f.key),
            [OK, OK, INVALID_STATE],
        ),
        row_for(
            Hmac256,
            GenerateVerifyMac,
            "TagResource (HMAC)",
            |h, f| h.tag_resource(&f.key, &[tag("k", "v")]),
            [OK, OK, INVALID_STATE],
        ),
    ];
    // DisableKey on an Enabled key leaves it Disabled.
    let mut rows = rows;
    for r in rows.iter_mut() {
        if r.op.starts_with("DisableKey") {
            r.state_after = Some(KeyState::Disabled);
        }
    }
    run_table(&rows);
}

/// Once destroyed, every operation on the key answers NotFoundException.
#[test]
fn a_destroyed_key_is_not_found_by_every_operation() {
    let t = TestHsm::new();
    let fx = fixture(
        &t,
        0,
        KeySpec::SymmetricDefault,
        KeyUsage::EncryptDecrypt,
        KeyState::PendingDeletion,
    );
    t.advance_days(7);
    assert_eq!(t.tick().destroyed.len(), 1);
    let rows = symmetric_rows();
    let mut failures = Vec::new();
    for row in &rows {
        // A ciphertext only names its key, so it may also be rejected as
        // unreadable; anything else that names the key is NotFound.
        let allowed: &[&str] = if row.op.starts_with("Decrypt") || row.op.starts_with("ReEncrypt") {
            &["NotFoundException", "InvalidCiphertextException"]
        } else {
            &["NotFoundException"]
        };
        match (row.run)(&t.hsm, &fx) {
            Ok(()) => failures.push(format!("{}: Ok on a destroyed key", row.op)),
            Err(e) if allowed.contains(&e.kms_name()) => {}
            Err(e) => failures.push(format!(
                "{}: want {allowed:?}, got {}",
                row.op,
                e.kms_name()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
