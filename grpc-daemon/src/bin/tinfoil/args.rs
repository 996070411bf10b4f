//! The command line: one subcommand per KMS operation, KMS flag names in
//! kebab-case. File flags take `-` for standard input or output.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `tinfoil`: the Tinfoil key-management CLI, shaped like `aws kms`.
#[derive(Debug, Parser)]
#[command(name = "tinfoil", version, about)]
pub struct Cli {
    /// `unix:PATH` or `https://HOST:PORT` (default: $TINFOIL_ENDPOINT, then the `tinfoild --dev` socket).
    #[arg(long, global = true)]
    pub endpoint: Option<String>,
    /// How to print responses.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// PEM CA bundle for https endpoints.
    #[arg(long, global = true)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for https endpoints that require one.
    #[arg(long, global = true, requires = "key_file")]
    pub cert_file: Option<PathBuf>,
    /// PEM key of --cert-file.
    #[arg(long, global = true, requires = "cert_file")]
    pub key_file: Option<PathBuf>,
    /// The operation.
    #[command(subcommand)]
    pub command: Command,
}

/// Response formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A readable table.
    Text,
    /// Proto3 JSON.
    Json,
}

/// A `KEY=VALUE` pair (encryption context entries, tags).
pub fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

/// `--key-id`.
#[derive(Debug, Args)]
pub struct KeyId {
    /// Key id, key ARN, alias name (alias/NAME) or alias ARN.
    #[arg(long)]
    pub key_id: String,
}

/// `--limit` and `--marker`.
#[derive(Debug, Args)]
pub struct Paging {
    /// Most items to return (1 to 1000).
    #[arg(long)]
    pub limit: Option<u32>,
    /// The NextMarker of the previous page.
    #[arg(long)]
    pub marker: Option<String>,
}

/// The entries of one `--encryption-context` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntries(pub Vec<(String, String)>);

/// An encryption context as `aws kms` reads it: JSON (`{"k1":"v1"}`) or
/// the shorthand `k1=v1,k2=v2` (two entries; a value may hold `=` but not
/// `,`).
pub fn parse_context(text: &str) -> Result<ContextEntries, String> {
    if text.trim_start().starts_with('{') {
        let map: BTreeMap<String, String> =
            serde_json::from_str(text).map_err(|e| format!("not a JSON object of strings: {e}"))?;
        return Ok(ContextEntries(map.into_iter().collect()));
    }
    text.split(',')
        .map(parse_pair)
        .collect::<Result<_, _>>()
        .map(ContextEntries)
}

/// Joins the values of a repeatable context flag into one map; a key
/// given twice is an error (which value was meant is unclear).
pub fn merge_context(values: Vec<ContextEntries>) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for (k, v) in values.into_iter().flat_map(|e| e.0) {
        if map.contains_key(&k) {
            return Err(format!("encryption context key {k:?} given twice"));
        }
        map.insert(k, v);
    }
    Ok(map)
}

/// `--encryption-context`: `k1=v1,k2=v2` or JSON, repeatable.
#[derive(Debug, Args)]
pub struct Context {
    /// Encryption context entries: `k1=v1,k2=v2` or JSON `{"k1":"v1"}` (repeatable).
    #[arg(long = "encryption-context", value_parser = parse_context)]
    pub encryption_context: Vec<ContextEntries>,
}

/// `--output-file` for the response's main binary field.
#[derive(Debug, Args)]
pub struct OutFile {
    /// Write the raw bytes here (`-`: standard output) instead of base64.
    #[arg(long)]
    pub output_file: Option<PathBuf>,
}

/// Every operation.
#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Audit(crate::audit::AuditCommand),
    #[command(flatten)]
    Policy(crate::policies::PolicyCommand),
    /// Create a user (administrators only), optionally bound to a Unix uid
    /// or a client certificate.
    CreateUser {
        /// 1 to 64 of A-Z a-z 0-9 +=,.@_-.
        #[arg(long)]
        user_name: String,
        /// Callers on the socket with this uid act as this user.
        #[arg(long)]
        unix_uid: Option<u32>,
        /// SHA-256 of the client certificate (hex): TLS callers presenting it act as this user.
        #[arg(long)]
        cert_fingerprint: Option<String>,
    },
    /// Delete a user and its access keys (administrators only).
    DeleteUser {
        /// The user.
        #[arg(long)]
        user_name: String,
    },
    /// List users (administrators only).
    ListUsers,
    /// Create an access key for the KMS endpoint; prints the secret once.
    CreateAccessKey {
        /// The user, or `root` for an administrators' key.
        #[arg(long)]
        user_name: String,
    },
    /// List a user's access keys (never their secrets).
    ListAccessKeys {
        /// The user, or `root`.
        #[arg(long)]
        user_name: String,
    },
    /// Delete an access key.
    DeleteAccessKey {
        /// The user, or `root`.
        #[arg(long)]
        user_name: String,
        /// The access key id.
        #[arg(long)]
        access_key_id: String,
    },
    /// Create a key.
    CreateKey {
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
        /// SYMMETRIC_DEFAULT (default), RSA_2048/3072/4096, ECC_NIST_P256/P384/P521, ECC_NIST_EDWARDS25519, HMAC_224/256/384/512, ML_DSA_44/65/87, ML_KEM_512/768/1024.
        #[arg(long)]
        key_spec: Option<String>,
        /// ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC or ENCAPSULATE_DECAPSULATE (default: the spec's first).
        #[arg(long)]
        key_usage: Option<String>,
        /// A tag KEY=VALUE (repeat for more).
        #[arg(long = "tag", value_parser = parse_pair)]
        tags: Vec<(String, String)>,
        /// The PKCS#11 token (key namespace).
        #[arg(long)]
        token: Option<String>,
        /// The key policy: JSON text or file://PATH (default: AWS's default
        /// key policy, plus kms:* for a user who creates the key).
        #[arg(long)]
        policy: Option<String>,
        /// Skip the check that the caller could change the policy again.
        #[arg(long)]
        bypass_policy_lockout_safety_check: bool,
    },
    /// Show a key's metadata.
    DescribeKey(KeyId),
    /// List keys.
    ListKeys(Paging),
    /// Replace a key's description.
    UpdateKeyDescription {
        #[command(flatten)]
        key: KeyId,
        /// The new description.
        #[arg(long)]
        description: String,
    },
    /// Enable a key.
    EnableKey(KeyId),
    /// Disable a key.
    DisableKey(KeyId),
    /// Schedule a key's deletion.
    ScheduleKeyDeletion {
        #[command(flatten)]
        key: KeyId,
        /// 7 to 30 (default 30).
        #[arg(long)]
        pending_window_in_days: Option<u32>,
    },
    /// Cancel a scheduled deletion (the key becomes Disabled).
    CancelKeyDeletion(KeyId),
    /// Turn on scheduled rotation.
    EnableKeyRotation {
        #[command(flatten)]
        key: KeyId,
        /// 90 to 2560 (default 365).
        #[arg(long)]
        rotation_period_in_days: Option<u32>,
    },
    /// Turn off scheduled rotation.
    DisableKeyRotation(KeyId),
    /// Show the rotation schedule.
    GetKeyRotationStatus(KeyId),
    /// Rotate now.
    RotateKeyOnDemand(KeyId),
    /// List rotations.
    ListKeyRotations {
        #[command(flatten)]
        key: KeyId,
        #[command(flatten)]
        paging: Paging,
    },
    /// Create an alias.
    CreateAlias {
        /// alias/NAME
        #[arg(long)]
        alias_name: String,
        /// The key it points at.
        #[arg(long)]
        target_key_id: String,
    },
    /// Point an alias at another key.
    UpdateAlias {
        /// alias/NAME
        #[arg(long)]
        alias_name: String,
        /// The new key.
        #[arg(long)]
        target_key_id: String,
    },
    /// Delete an alias.
    DeleteAlias {
        /// alias/NAME
        #[arg(long)]
        alias_name: String,
    },
    /// List aliases.
    ListAliases {
        /// Only the aliases of this key.
        #[arg(long)]
        key_id: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Add or replace tags.
    TagResource {
        #[command(flatten)]
        key: KeyId,
        /// A tag KEY=VALUE (repeat for more).
        #[arg(long = "tag", value_parser = parse_pair, required = true)]
        tags: Vec<(String, String)>,
    },
    /// Remove tags.
    UntagResource {
        #[command(flatten)]
        key: KeyId,
        /// A tag key to remove (repeat for more).
        #[arg(long = "tag-key", required = true)]
        tag_keys: Vec<String>,
    },
    /// List a key's tags.
    ListResourceTags {
        #[command(flatten)]
        key: KeyId,
        #[command(flatten)]
        paging: Paging,
    },
    /// Encrypt up to 4096 bytes.
    Encrypt {
        #[command(flatten)]
        key: KeyId,
        /// The plaintext (`-`: standard input).
        #[arg(long)]
        plaintext_file: PathBuf,
        #[command(flatten)]
        context: Context,
        /// SYMMETRIC_DEFAULT (default), RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256.
        #[arg(long)]
        encryption_algorithm: Option<String>,
        /// Where the raw ciphertext blob goes.
        #[command(flatten)]
        out: OutFile,
    },
    /// Decrypt a ciphertext blob.
    Decrypt {
        /// The ciphertext blob (`-`: standard input).
        #[arg(long)]
        ciphertext_file: PathBuf,
        #[command(flatten)]
        context: Context,
        /// The key the blob must have been made under.
        #[arg(long)]
        key_id: Option<String>,
        /// The algorithm the blob must use.
        #[arg(long)]
        encryption_algorithm: Option<String>,
        /// Where the raw plaintext goes.
        #[command(flatten)]
        out: OutFile,
    },
    /// Re-encrypt under another key; the plaintext never leaves the daemon.
    ReEncrypt {
        /// The ciphertext blob (`-`: standard input).
        #[arg(long)]
        ciphertext_file: PathBuf,
        /// The source context: `k1=v1,k2=v2` or JSON (repeatable).
        #[arg(long, value_parser = parse_context)]
        source_encryption_context: Vec<ContextEntries>,
        /// The key the blob must have been made under.
        #[arg(long)]
        source_key_id: Option<String>,
        /// The key to encrypt under.
        #[arg(long)]
        destination_key_id: String,
        /// The destination context: `k1=v1,k2=v2` or JSON (repeatable).
        #[arg(long, value_parser = parse_context)]
        destination_encryption_context: Vec<ContextEntries>,
        /// Where the raw new ciphertext blob goes.
        #[command(flatten)]
        out: OutFile,
    },
    /// Make a data key: plaintext and encrypted.
    GenerateDataKey {
        #[command(flatten)]
        key: KeyId,
        /// AES_128 or AES_256.
        #[arg(long)]
        key_spec: Option<String>,
        /// 1 to 1024 (instead of --key-spec).
        #[arg(long)]
        number_of_bytes: Option<u32>,
        #[command(flatten)]
        context: Context,
        /// Where the raw plaintext data key goes (written 0600).
        #[arg(long)]
        plaintext_output_file: Option<PathBuf>,
        /// Where the raw encrypted data key goes.
        #[arg(long)]
        ciphertext_output_file: Option<PathBuf>,
    },
    /// Make a data key, encrypted only.
    GenerateDataKeyWithoutPlaintext {
        #[command(flatten)]
        key: KeyId,
        /// AES_128 or AES_256.
        #[arg(long)]
        key_spec: Option<String>,
        /// 1 to 1024 (instead of --key-spec).
        #[arg(long)]
        number_of_bytes: Option<u32>,
        #[command(flatten)]
        context: Context,
        /// Where the raw encrypted data key goes.
        #[command(flatten)]
        out: OutFile,
    },
    /// Random bytes.
    GenerateRandom {
        /// 1 to 1024.
        #[arg(long)]
        number_of_bytes: u32,
        /// Where the raw bytes go.
        #[command(flatten)]
        out: OutFile,
    },
    /// Sign a message or digest.
    Sign {
        #[command(flatten)]
        key: KeyId,
        /// The message or digest (`-`: standard input).
        #[arg(long)]
        message_file: PathBuf,
        /// RAW (default), DIGEST, or EXTERNAL_MU (64-byte ML-DSA mu).
        #[arg(long)]
        message_type: Option<String>,
        /// e.g. RSASSA_PSS_SHA_256, ECDSA_SHA_256, ML_DSA_SHAKE_256.
        #[arg(long)]
        signing_algorithm: String,
        /// Where the raw signature goes.
        #[command(flatten)]
        out: OutFile,
    },
    /// Verify a signature; exit 0 only when it is valid.
    Verify {
        #[command(flatten)]
        key: KeyId,
        /// The message or digest (`-`: standard input).
        #[arg(long)]
        message_file: PathBuf,
        /// RAW (default), DIGEST, or EXTERNAL_MU (64-byte ML-DSA mu).
        #[arg(long)]
        message_type: Option<String>,
        /// The raw signature.
        #[arg(long)]
        signature_file: PathBuf,
        /// The algorithm it was made with.
        #[arg(long)]
        signing_algorithm: String,
    },
    /// An asymmetric key's public key (DER SubjectPublicKeyInfo).
    GetPublicKey {
        #[command(flatten)]
        key: KeyId,
        /// Where the DER goes.
        #[command(flatten)]
        out: OutFile,
    },
    /// A fresh shared secret and its ciphertext under an ML-KEM key.
    Encapsulate {
        #[command(flatten)]
        key: KeyId,
        /// ML_KEM (the only value).
        #[arg(long, default_value = "ML_KEM")]
        encapsulation_algorithm: String,
        /// Where the raw 32-byte shared secret goes (written 0600).
        #[arg(long)]
        shared_secret_output_file: Option<PathBuf>,
        /// Where the raw ciphertext goes.
        #[arg(long)]
        ciphertext_output_file: Option<PathBuf>,
    },
    /// The shared secret of an ML-KEM ciphertext.
    Decapsulate {
        #[command(flatten)]
        key: KeyId,
        /// The raw ciphertext (`-`: standard input).
        #[arg(long)]
        ciphertext_file: PathBuf,
        /// ML_KEM (the only value).
        #[arg(long, default_value = "ML_KEM")]
        encapsulation_algorithm: String,
        /// Where the raw 32-byte shared secret goes (written 0600).
        #[command(flatten)]
        out: OutFile,
    },
    /// Compute an HMAC.
    GenerateMac {
        #[command(flatten)]
        key: KeyId,
        /// The message (`-`: standard input).
        #[arg(long)]
        message_file: PathBuf,
        /// HMAC_SHA_224/256/384/512.
        #[arg(long)]
        mac_algorithm: String,
        /// Where the raw MAC goes.
        #[command(flatten)]
        out: OutFile,
    },
    /// Verify an HMAC; exit 0 only when it is valid.
    VerifyMac {
        #[command(flatten)]
        key: KeyId,
        /// The message (`-`: standard input).
        #[arg(long)]
        message_file: PathBuf,
        /// The raw MAC.
        #[arg(long)]
        mac_file: PathBuf,
        /// HMAC_SHA_224/256/384/512.
        #[arg(long)]
        mac_algorithm: String,
    },
    /// Make an asymmetric data key pair (private key also in plaintext).
    GenerateDataKeyPair {
        #[command(flatten)]
        key: KeyId,
        /// RSA_2048/3072/4096, ECC_NIST_P256/P384/P521.
        #[arg(long)]
        key_pair_spec: String,
        #[command(flatten)]
        context: Context,
        /// Where the raw PKCS#8 private key goes (written 0600).
        #[arg(long)]
        private_key_plaintext_output_file: Option<PathBuf>,
        /// Where the raw encrypted private key goes.
        #[arg(long)]
        private_key_ciphertext_output_file: Option<PathBuf>,
        /// Where the DER public key goes.
        #[arg(long)]
        public_key_output_file: Option<PathBuf>,
    },
    /// Make an asymmetric data key pair, private key encrypted only.
    GenerateDataKeyPairWithoutPlaintext {
        #[command(flatten)]
        key: KeyId,
        /// RSA_2048/3072/4096, ECC_NIST_P256/P384/P521.
        #[arg(long)]
        key_pair_spec: String,
        #[command(flatten)]
        context: Context,
        /// Where the raw encrypted private key goes.
        #[arg(long)]
        private_key_ciphertext_output_file: Option<PathBuf>,
        /// Where the DER public key goes.
        #[arg(long)]
        public_key_output_file: Option<PathBuf>,
    },
    /// Encrypt a file of any size, streaming, into an AWS Encryption SDK
    /// message under a data key from GenerateDataKey.
    EncryptFile(crate::file_crypt::EncryptFileArgs),
    /// Decrypt an AWS Encryption SDK message (from encrypt-file or any AWS
    /// Encryption SDK), checking everything before keeping the output.
    #[command(after_help = crate::file_crypt::DECRYPT_HELP)]
    DecryptFile(crate::file_crypt::DecryptFileArgs),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn shorthand_is_two_entries_not_one() {
        let e = parse_context("k1=v1,k2=v2").unwrap();
        assert_eq!(e.0, pairs(&[("k1", "v1"), ("k2", "v2")]));
        assert_eq!(parse_context("k=a=b").unwrap().0, pairs(&[("k", "a=b")]));
    }

    #[test]
    fn json_form() {
        let e = parse_context(r#"{"k1":"v1","k2":"v,2"}"#).unwrap();
        assert_eq!(e.0, pairs(&[("k1", "v1"), ("k2", "v,2")]));
        assert!(parse_context(r#"{"k1":1}"#).is_err());
        assert!(parse_context(r#"{"k1":"v1""#).is_err());
    }

    #[test]
    fn malformed_shorthand_is_refused() {
        assert!(parse_context("k1").is_err());
        assert!(parse_context("k1=v1,").is_err());
        assert!(parse_context("=v").is_err());
    }

    #[test]
    fn repeated_flags_merge_and_duplicates_are_refused() {
        let merged = merge_context(vec![
            parse_context("a=1,b=2").unwrap(),
            parse_context(r#"{"c":"3"}"#).unwrap(),
        ])
        .unwrap();
        assert_eq!(merged.len(), 3);
        assert_eq!(merged["c"], "3");
        assert!(merge_context(vec![
            parse_context("a=1").unwrap(),
            parse_context("a=2").unwrap()
        ])
        .is_err());
    }

    #[test]
    fn the_command_line_takes_both_forms() {
        let cli = Cli::try_parse_from([
            "tinfoil",
            "encrypt",
            "--key-id",
            "k",
            "--plaintext-file",
            "-",
            "--encryption-context",
            "k1=v1,k2=v2",
            "--encryption-context",
            r#"{"k3":"v3"}"#,
        ])
        .unwrap();
        let Command::Encrypt { context, .. } = cli.command else {
            panic!("parsed as another command");
        };
        let merged = merge_context(context.encryption_context).unwrap();
        assert_eq!(merged.len(), 3, "{merged:?}");
        assert_eq!(merged["k2"], "v2");
    }
}
