//! Turns a subcommand into its RPC and the response into an [`Outcome`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use prost_reflect::DynamicMessage;
use tinfoil_daemon::render;
use tinfoil_proto::v1 as pb;
use tinfoil_proto::v1::key_management_client::KeyManagementClient;
use tonic::transport::Channel;
use tonic::Status;

use crate::args::{merge_context, Command, Context};
use crate::io::read_input;

/// What a command produced: the response, and which of its bytes fields
/// go raw to which files.
pub struct Outcome {
    /// The response.
    pub message: DynamicMessage,
    /// `(field name, file)` pairs for raw output.
    pub files: Vec<(&'static str, PathBuf)>,
}

/// A failed command.
pub enum Failure {
    /// The daemon refused the call.
    Rpc(Status),
    /// A local problem (an unreadable input file).
    Local(String),
}

fn context(c: Context) -> Result<BTreeMap<String, String>, Failure> {
    merge_context(c.encryption_context).map_err(Failure::Local)
}

fn tags(p: Vec<(String, String)>) -> Vec<pb::Tag> {
    p.into_iter()
        .map(|(tag_key, tag_value)| pb::Tag { tag_key, tag_value })
        .collect()
}

fn input(path: &std::path::Path) -> Result<Vec<u8>, Failure> {
    // The request owns a plain Vec (prost); the CLI's own copy is wiped.
    read_input(path).map(|b| b.to_vec()).map_err(Failure::Local)
}

fn files(pairs: &[(&'static str, Option<PathBuf>)]) -> Vec<(&'static str, PathBuf)> {
    pairs
        .iter()
        .filter_map(|(field, path)| path.clone().map(|p| (*field, p)))
        .collect()
}

/// The KMS operation name of a command, for error messages.
pub fn operation_name(command: &Command) -> String {
    let debug = format!("{command:?}");
    // Grouped subcommands print as `Group(Operation { .. })`.
    let debug = debug.strip_prefix("Policy(").unwrap_or(&debug);
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Calls `$method` and renders the response reflectively.
macro_rules! call {
    ($client:expr, $method:ident, $request:expr) => {
        $client
            .$method($request)
            .await
            .map(|r| render::dynamic(&r.into_inner()))
            .map_err(Failure::Rpc)?
    };
}

/// Runs `command` against `client`.
pub async fn run(
    client: &mut KeyManagementClient<Channel>,
    command: Command,
) -> Result<Outcome, Failure> {
    let mut out: Vec<(&'static str, Option<PathBuf>)> = Vec::new();
    let message = match command {
        Command::CreateUser {
            user_name,
            unix_uid,
            cert_fingerprint,
        } => call!(
            client,
            create_user,
            pb::CreateUserRequest {
                user_name,
                unix_uid,
                cert_fingerprint,
            }
        ),
        Command::DeleteUser { user_name } => {
            call!(client, delete_user, pb::DeleteUserRequest { user_name })
        }
        Command::ListUsers => call!(client, list_users, pb::ListUsersRequest {}),
        Command::CreateAccessKey { user_name } => call!(
            client,
            create_access_key,
            pb::CreateAccessKeyRequest { user_name }
        ),
        Command::ListAccessKeys { user_name } => call!(
            client,
            list_access_keys,
            pb::ListAccessKeysRequest { user_name }
        ),
        Command::DeleteAccessKey {
            user_name,
            access_key_id,
        } => call!(
            client,
            delete_access_key,
            pb::DeleteAccessKeyRequest {
                user_name,
                access_key_id,
            }
        ),
        Command::Policy(command) => crate::policies::run(client, command).await?,
        Command::CreateKey {
            description,
            key_spec,
            key_usage,
            tags: t,
            token,
            policy,
            bypass_policy_lockout_safety_check,
        } => call!(
            client,
            create_key,
            pb::CreateKeyRequest {
                description,
                key_spec,
                key_usage,
                tags: tags(t),
                token,
                policy: policy
                    .as_deref()
                    .map(crate::policies::policy_text)
                    .transpose()?,
                bypass_policy_lockout_safety_check,
            }
        ),
        Command::DescribeKey(k) => call!(
            client,
            describe_key,
            pb::DescribeKeyRequest { key_id: k.key_id }
        ),
        Command::ListKeys(p) => call!(
            client,
            list_keys,
            pb::ListKeysRequest {
                limit: p.limit,
                marker: p.marker,
            }
        ),
        Command::UpdateKeyDescription { key, description } => call!(
            client,
            update_key_description,
            pb::UpdateKeyDescriptionRequest {
                key_id: key.key_id,
                description,
            }
        ),
        Command::EnableKey(k) => call!(
            client,
            enable_key,
            pb::EnableKeyRequest { key_id: k.key_id }
        ),
        Command::DisableKey(k) => call!(
            client,
            disable_key,
            pb::DisableKeyRequest { key_id: k.key_id }
        ),
        Command::ScheduleKeyDeletion {
            key,
            pending_window_in_days,
        } => call!(
            client,
            schedule_key_deletion,
            pb::ScheduleKeyDeletionRequest {
                key_id: key.key_id,
                pending_window_in_days,
            }
        ),
        Command::CancelKeyDeletion(k) => call!(
            client,
            cancel_key_deletion,
            pb::CancelKeyDeletionRequest { key_id: k.key_id }
        ),
        Command::EnableKeyRotation {
            key,
            rotation_period_in_days,
        } => call!(
            client,
            enable_key_rotation,
            pb::EnableKeyRotationRequest {
                key_id: key.key_id,
                rotation_period_in_days,
            }
        ),
        Command::DisableKeyRotation(k) => call!(
            client,
            disable_key_rotation,
            pb::DisableKeyRotationRequest { key_id: k.key_id }
        ),
        Command::GetKeyRotationStatus(k) => call!(
            client,
            get_key_rotation_status,
            pb::GetKeyRotationStatusRequest { key_id: k.key_id }
        ),
        Command::RotateKeyOnDemand(k) => call!(
            client,
            rotate_key_on_demand,
            pb::RotateKeyOnDemandRequest { key_id: k.key_id }
        ),
        Command::ListKeyRotations { key, paging } => call!(
            client,
            list_key_rotations,
            pb::ListKeyRotationsRequest {
                key_id: key.key_id,
                limit: paging.limit,
                marker: paging.marker,
            }
        ),
        Command::CreateAlias {
            alias_name,
            target_key_id,
        } => call!(
            client,
            create_alias,
            pb::CreateAliasRequest {
                alias_name,
                target_key_id,
            }
        ),
        Command::UpdateAlias {
            alias_name,
            target_key_id,
        } => call!(
            client,
            update_alias,
            pb::UpdateAliasRequest {
                alias_name,
                target_key_id,
            }
        ),
        Command::DeleteAlias { alias_name } => {
            call!(client, delete_alias, pb::DeleteAliasRequest { alias_name })
        }
        Command::ListAliases { key_id, paging } => call!(
            client,
            list_aliases,
            pb::ListAliasesRequest {
                key_id,
                limit: paging.limit,
                marker: paging.marker,
            }
        ),
        Command::TagResource { key, tags: t } => call!(
            client,
            tag_resource,
            pb::TagResourceRequest {
                key_id: key.key_id,
                tags: tags(t),
            }
        ),
        Command::UntagResource { key, tag_keys } => call!(
            client,
            untag_resource,
            pb::UntagResourceRequest {
                key_id: key.key_id,
                tag_keys,
            }
        ),
        Command::ListResourceTags { key, paging } => call!(
            client,
            list_resource_tags,
            pb::ListResourceTagsRequest {
                key_id: key.key_id,
                limit: paging.limit,
                marker: paging.marker,
            }
        ),
        Command::Encrypt {
            key,
            plaintext_file,
            context: c,
            encryption_algorithm,
            out: o,
        } => {
            out.push(("ciphertext_blob", o.output_file));
            call!(
                client,
                encrypt,
                pb::EncryptRequest {
                    key_id: key.key_id,
                    plaintext: input(&plaintext_file)?,
                    encryption_context: context(c)?,
                    encryption_algorithm,
                }
            )
        }
        Command::Decrypt {
            ciphertext_file,
            context: c,
            key_id,
            encryption_algorithm,
            out: o,
        } => {
            out.push(("plaintext", o.output_file));
            call!(
                client,
                decrypt,
                pb::DecryptRequest {
                    ciphertext_blob: input(&ciphertext_file)?,
                    encryption_context: context(c)?,
                    key_id,
                    encryption_algorithm,
                }
            )
        }
        Command::ReEncrypt {
            ciphertext_file,
            source_encryption_context,
            source_key_id,
            destination_key_id,
            destination_encryption_context,
            out: o,
        } => {
            out.push(("ciphertext_blob", o.output_file));
            call!(
                client,
                re_encrypt,
                pb::ReEncryptRequest {
                    ciphertext_blob: input(&ciphertext_file)?,
                    source_encryption_context: merge_context(source_encryption_context)
                        .map_err(Failure::Local)?,
                    source_key_id,
                    destination_key_id,
                    destination_encryption_context: merge_context(destination_encryption_context,)
                        .map_err(Failure::Local)?,
                }
            )
        }
        Command::GenerateDataKey {
            key,
            key_spec,
            number_of_bytes,
            context: c,
            plaintext_output_file,
            ciphertext_output_file,
        } => {
            out.push(("plaintext", plaintext_output_file));
            out.push(("ciphertext_blob", ciphertext_output_file));
            call!(
                client,
                generate_data_key,
                pb::GenerateDataKeyRequest {
                    key_id: key.key_id,
                    key_spec,
                    number_of_bytes,
                    encryption_context: context(c)?,
                }
            )
        }
        Command::GenerateDataKeyWithoutPlaintext {
            key,
            key_spec,
            number_of_bytes,
            context: c,
            out: o,
        } => {
            out.push(("ciphertext_blob", o.output_file));
            call!(
                client,
                generate_data_key_without_plaintext,
                pb::GenerateDataKeyWithoutPlaintextRequest {
                    key_id: key.key_id,
                    key_spec,
                    number_of_bytes,
                    encryption_context: context(c)?,
                }
            )
        }
        Command::GenerateRandom {
            number_of_bytes,
            out: o,
        } => {
            out.push(("plaintext", o.output_file));
            call!(
                client,
                generate_random,
                pb::GenerateRandomRequest { number_of_bytes }
            )
        }
        Command::Sign {
            key,
            message_file,
            message_type,
            signing_algorithm,
            out: o,
        } => {
            out.push(("signature", o.output_file));
            call!(
                client,
                sign,
                pb::SignRequest {
                    key_id: key.key_id,
                    message: input(&message_file)?,
                    message_type,
                    signing_algorithm,
                }
            )
        }
        Command::Verify {
            key,
            message_file,
            message_type,
            signature_file,
            signing_algorithm,
        } => call!(
            client,
            verify,
            pb::VerifyRequest {
                key_id: key.key_id,
                message: input(&message_file)?,
                message_type,
                signature: input(&signature_file)?,
                signing_algorithm,
            }
        ),
        Command::GetPublicKey { key, out: o } => {
            out.push(("public_key", o.output_file));
            call!(
                client,
                get_public_key,
                pb::GetPublicKeyRequest { key_id: key.key_id }
            )
        }
        Command::Encapsulate {
            key,
            encapsulation_algorithm,
            shared_secret_output_file,
            ciphertext_output_file,
        } => {
            out.push(("shared_secret", shared_secret_output_file));
            out.push(("shared_secret_ciphertext_blob", ciphertext_output_file));
            call!(
                client,
                encapsulate,
                pb::EncapsulateRequest {
                    key_id: key.key_id,
                    encapsulation_algorithm,
                }
            )
        }
        Command::Decapsulate {
            key,
            ciphertext_file,
            encapsulation_algorithm,
            out: o,
        } => {
            out.push(("shared_secret", o.output_file));
            call!(
                client,
                decapsulate,
                pb::DecapsulateRequest {
                    key_id: key.key_id,
                    shared_secret_ciphertext_blob: input(&ciphertext_file)?,
                    encapsulation_algorithm,
                }
            )
        }
        Command::GenerateMac {
            key,
            message_file,
            mac_algorithm,
            out: o,
        } => {
            out.push(("mac", o.output_file));
            call!(
                client,
                generate_mac,
                pb::GenerateMacRequest {
                    key_id: key.key_id,
                    message: input(&message_file)?,
                    mac_algorithm,
                }
            )
        }
        Command::VerifyMac {
            key,
            message_file,
            mac_file,
            mac_algorithm,
        } => call!(
            client,
            verify_mac,
            pb::VerifyMacRequest {
                key_id: key.key_id,
                message: input(&message_file)?,
                mac: input(&mac_file)?,
                mac_algorithm,
            }
        ),
        Command::GenerateDataKeyPair {
            key,
            key_pair_spec,
            context: c,
            private_key_plaintext_output_file,
            private_key_ciphertext_output_file,
            public_key_output_file,
        } => {
            out.push(("private_key_plaintext", private_key_plaintext_output_file));
            out.push((
                "private_key_ciphertext_blob",
                private_key_ciphertext_output_file,
            ));
            out.push(("public_key", public_key_output_file));
            call!(
                client,
                generate_data_key_pair,
                pb::GenerateDataKeyPairRequest {
                    key_id: key.key_id,
                    key_pair_spec,
                    encryption_context: context(c)?,
                }
            )
        }
        Command::GenerateDataKeyPairWithoutPlaintext {
            key,
            key_pair_spec,
            context: c,
            private_key_ciphertext_output_file,
            public_key_output_file,
        } => {
            out.push((
                "private_key_ciphertext_blob",
                private_key_ciphertext_output_file,
            ));
            out.push(("public_key", public_key_output_file));
            call!(
                client,
                generate_data_key_pair_without_plaintext,
                pb::GenerateDataKeyPairWithoutPlaintextRequest {
                    key_id: key.key_id,
                    key_pair_spec,
                    encryption_context: context(c)?,
                }
            )
        }
        Command::Audit(_) => return Err(Failure::Local("audit commands run in audit".into())),
        Command::EncryptFile(_) | Command::DecryptFile(_) => {
            return Err(Failure::Local("file commands run in file_crypt".into()))
        }
    };
    Ok(Outcome {
        message,
        files: files(&out),
    })
}
