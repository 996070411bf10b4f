//! The gRPC request handlers of `tinfoil.v1.KeyManagement`: the first byte
//! picks the method, the rest is decoded as its request message (as tonic
//! would), and a request that decodes is handled by an in-process service
//! over a real store. RSA key generation is skipped (seconds per call).
#![no_main]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use tinfoil_daemon::pool::CryptoPool;
use tinfoil_daemon::service::{CallLimits, KmsService};
use tinfoil_fuzz::Store;
use tinfoil_proto::v1 as pb;
use tinfoil_proto::v1::key_management_server::KeyManagement;
use tonic::Request;

struct Fixture {
    store: Store,
    service: KmsService,
}

fn pool() -> Arc<CryptoPool> {
    static POOL: OnceLock<Arc<CryptoPool>> = OnceLock::new();
    POOL.get_or_init(|| Arc::new(CryptoPool::new(1).expect("pool")))
        .clone()
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

static FIXTURE: Mutex<Option<Fixture>> = Mutex::new(None);

fn rsa(spec: &str) -> bool {
    spec.trim().to_ascii_uppercase().starts_with("RSA")
}

macro_rules! dispatch {
    ($svc:expr, $sel:expr, $bytes:expr, $( $n:literal => $method:ident ( $req:ty ) $( if $guard:expr )? ),* $(,)?) => {
        match $sel {
            $( $n => {
                if let Ok(req) = <$req>::decode($bytes) {
                    let go = true $( && ($guard)(&req) )?;
                    if go {
                        let _ = runtime().block_on($svc.$method(Request::new(req)));
                    }
                }
            } )*
            _ => {}
        }
    };
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, bytes)) = data.split_first() else {
        return;
    };
    let mut guard = FIXTURE.lock().unwrap_or_else(|p| p.into_inner());
    if guard.as_mut().is_none_or(|f| f.store.worn_out()) {
        let store = Store::with_keys();
        let limits = CallLimits {
            max_in_flight: 16,
            call_timeout: Duration::from_secs(10),
            busy_poll: Duration::ZERO,
        };
        let service = KmsService::new(store.hsm.clone(), limits, pool());
        *guard = Some(Fixture { store, service });
    }
    let svc = &guard.as_ref().expect("fixture").service;
    dispatch!(svc, sel % 52, bytes,
        0 => create_key(pb::CreateKeyRequest) if |r: &pb::CreateKeyRequest| !r.key_spec.as_deref().is_some_and(rsa),
        1 => describe_key(pb::DescribeKeyRequest),
        2 => list_keys(pb::ListKeysRequest),
        3 => update_key_description(pb::UpdateKeyDescriptionRequest),
        4 => enable_key(pb::EnableKeyRequest),
        5 => disable_key(pb::DisableKeyRequest),
        6 => schedule_key_deletion(pb::ScheduleKeyDeletionRequest),
        7 => cancel_key_deletion(pb::CancelKeyDeletionRequest),
        8 => enable_key_rotation(pb::EnableKeyRotationRequest),
        9 => disable_key_rotation(pb::DisableKeyRotationRequest),
        10 => get_key_rotation_status(pb::GetKeyRotationStatusRequest),
        11 => rotate_key_on_demand(pb::RotateKeyOnDemandRequest),
        12 => list_key_rotations(pb::ListKeyRotationsRequest),
        13 => create_alias(pb::CreateAliasRequest),
        14 => update_alias(pb::UpdateAliasRequest),
        15 => delete_alias(pb::DeleteAliasRequest),
        16 => list_aliases(pb::ListAliasesRequest),
        17 => tag_resource(pb::TagResourceRequest),
        18 => untag_resource(pb::UntagResourceRequest),
        19 => list_resource_tags(pb::ListResourceTagsRequest),
        20 => encrypt(pb::EncryptRequest),
        21 => decrypt(pb::DecryptRequest),
        22 => re_encrypt(pb::ReEncryptRequest),
        23 => generate_data_key(pb::GenerateDataKeyRequest),
        24 => generate_data_key_without_plaintext(pb::GenerateDataKeyWithoutPlaintextRequest),
        25 => generate_random(pb::GenerateRandomRequest),
        26 => sign(pb::SignRequest),
        27 => verify(pb::VerifyRequest),
        28 => get_public_key(pb::GetPublicKeyRequest),
        29 => generate_mac(pb::GenerateMacRequest),
        30 => verify_mac(pb::VerifyMacRequest),
        31 => generate_data_key_pair(pb::GenerateDataKeyPairRequest) if |r: &pb::GenerateDataKeyPairRequest| !rsa(&r.key_pair_spec),
        32 => generate_data_key_pair_without_plaintext(pb::GenerateDataKeyPairWithoutPlaintextRequest) if |r: &pb::GenerateDataKeyPairWithoutPlaintextRequest| !rsa(&r.key_pair_spec),
        33 => create_user(pb::CreateUserRequest),
        34 => delete_user(pb::DeleteUserRequest),
        35 => list_users(pb::ListUsersRequest),
        36 => create_access_key(pb::CreateAccessKeyRequest),
        37 => list_access_keys(pb::ListAccessKeysRequest),
        38 => delete_access_key(pb::DeleteAccessKeyRequest),
        39 => get_key_policy(pb::GetKeyPolicyRequest),
        40 => put_key_policy(pb::PutKeyPolicyRequest),
        41 => list_key_policies(pb::ListKeyPoliciesRequest),
        42 => create_grant(pb::CreateGrantRequest),
        43 => list_grants(pb::ListGrantsRequest),
        44 => list_retirable_grants(pb::ListRetirableGrantsRequest),
        45 => retire_grant(pb::RetireGrantRequest),
        46 => revoke_grant(pb::RevokeGrantRequest),
        47 => lookup_events(pb::LookupEventsRequest),
        48 => get_audit_public_key(pb::GetAuditPublicKeyRequest),
        49 => export_audit_log(pb::ExportAuditLogRequest),
        50 => confirm_audit_export(pb::ConfirmAuditExportRequest),
        51 => prune_audit_log(pb::PruneAuditLogRequest),
    );
});
