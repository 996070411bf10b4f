//! `--policies`: what key policies and grants cost over gRPC. Encrypt of
//! the same plaintext on a key with the default policy, beside a key with a
//! 10-statement policy (conditions included, the statement that allows the
//! caller last) and 100 grants, interleaved in the same run.

use std::time::Duration;

use tinfoil_daemon::client::{connect, ClientTls};
use tinfoil_proto::v1 as pb;
use tinfoil_proto::v1::key_management_client::KeyManagementClient;

use super::{interleaved, kms, print_row, Rpc};

/// Users the policy and grants name.
const USERS: usize = 10;
/// Grants on the policy key.
const GRANTS: usize = 100;

/// A 10-statement policy: nine for users (some with conditions), then the
/// account root's.
fn ten_statements(account: &str) -> String {
    let mut statements = Vec::new();
    for i in 0..9 {
        let user = format!("arn:aws:iam::{account}:user/bench-user-{i}");
        let mut statement = serde_json::json!({
            "Sid": format!("user{i}"),
            "Effect": "Allow",
            "Principal": {"AWS": user},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:Describe*"],
            "Resource": "*"
        });
        if i % 2 == 0 {
            statement["Condition"] = serde_json::json!({
                "StringEquals": {"kms:EncryptionContext:dept": format!("dept-{i}")},
                "Bool": {"kms:GrantIsForAWSResource": "false"}
            });
        }
        statements.push(statement);
    }
    statements.push(serde_json::json!({
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
        "Action": "kms:*",
        "Resource": "*"
    }));
    serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// Makes the policy key (with its users and grants) and measures.
#[allow(clippy::too_many_arguments)]
pub async fn section(
    endpoint: &str,
    target: &kms::Target,
    default_key: &str,
    plaintext: &[u8],
    concurrency: &[usize],
    run: Duration,
    slices: u32,
) {
    let channel = connect(endpoint, &ClientTls::default())
        .await
        .expect("connect");
    let mut admin = KeyManagementClient::new(channel);
    let account = target
        .key_arn
        .split(':')
        .nth(4)
        .expect("a key ARN")
        .to_string();
    for i in 0..USERS {
        admin
            .create_user(pb::CreateUserRequest {
                user_name: format!("bench-user-{i}"),
                ..Default::default()
            })
            .await
            .expect("create a user");
    }
    let policy_key = admin
        .create_key(pb::CreateKeyRequest {
            policy: Some(ten_statements(&account)),
            ..Default::default()
        })
        .await
        .expect("create the policy key")
        .into_inner()
        .key_metadata
        .expect("metadata")
        .key_id;
    for g in 0..GRANTS {
        admin
            .create_grant(pb::CreateGrantRequest {
                key_id: policy_key.clone(),
                grantee_principal: format!("arn:aws:iam::{account}:user/bench-user-{}", g % USERS),
                operations: vec!["Encrypt".into(), "Decrypt".into()],
                name: Some(format!("grant-{g}")),
                ..Default::default()
            })
            .await
            .expect("create a grant");
    }
    println!(
        "key policies and grants: default policy vs 10 statements + {GRANTS} grants (gRPC Encrypt)"
    );
    for &c in concurrency {
        let default = interleaved(
            endpoint,
            target,
            default_key,
            plaintext,
            &[Rpc::Encrypt],
            c,
            run / 2,
            slices,
        )
        .await;
        let policied = interleaved(
            endpoint,
            target,
            &policy_key,
            plaintext,
            &[Rpc::Encrypt],
            c,
            run / 2,
            slices,
        )
        .await;
        print_row("Encrypt default policy", c, &default[0]);
        print_row("Encrypt 10 stmts+grants", c, &policied[0]);
        println!(
            "  at {c}: policy key / default key = {:.2} (target at 64: >= 0.9)",
            policied[0].ops_per_sec / default[0].ops_per_sec
        );
    }
}
