//! `tinfoil encrypt-file` and `tinfoil decrypt-file`: envelope encryption of
//! files of any size in the AWS Encryption SDK message format (see
//! `tinfoil_daemon::esdk`), streaming, with one KMS call per message
//! (GenerateDataKey or Decrypt; Encrypt once more per extra --key-id).
//!
//! A file output is written to a 0600 temporary file in the same
//! directory and renamed over the output path only once the whole message
//! was written (encrypt) or verified (decrypt); it is deleted on failure.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tinfoil_daemon::client::{self, ClientTls};
use tinfoil_daemon::esdk::{self, EncryptedDataKey, EsdkError, Limits, ReadAhead, Suite};
use tinfoil_daemon::status;
use tinfoil_proto::v1 as pb;
use tinfoil_proto::v1::key_management_client::KeyManagementClient;
use tonic::transport::Channel;
use zeroize::{Zeroize, Zeroizing};

use crate::args::{merge_context, parse_context, Command, Context, ContextEntries};

/// Chunk size of the input.
const IO_BUFFER: usize = esdk::IO_CHUNK;
/// Input chunks read ahead of the cryptography.
const READ_AHEAD: usize = esdk::READ_AHEAD_DEPTH;

/// What `--help` says about decrypting to standard output.
pub const DECRYPT_HELP: &str = "\
Output to a file: the plaintext goes to a temporary file (mode 0600) in the \
same directory, renamed to --output-file only after the whole message verified \
(key commitment, header, every frame, final frame, signature); nothing is left \
on failure.

Output to standard output (--output-file -): frames are released as each one \
verifies, before the footer signature of a signed suite (0x0578, 0x0378) is \
checked, as the AWS Encryption SDK's streaming mode does. A bad signature or a \
truncated message is reported at the end with exit status 1: discard the output \
unless the exit status is 0.";

fn parse_suite(text: &str) -> Result<Suite, String> {
    let suite: Suite = text.parse().map_err(|e: EsdkError| e.to_string())?;
    if !suite.is_committing() {
        return Err(format!(
            "{suite} does not commit to its data key; encrypt with 0x0578 or 0x0478"
        ));
    }
    Ok(suite)
}

/// `tinfoil encrypt-file`.
#[derive(Debug, Args)]
pub struct EncryptFileArgs {
    /// The KMS key protecting the data key (key id, ARN, alias); repeat to
    /// let any of several keys decrypt (the first generates the data key).
    #[arg(long = "key-id", required = true)]
    pub key_ids: Vec<String>,
    #[command(flatten)]
    pub context: Context,
    /// The file to encrypt (`-`: standard input).
    #[arg(long)]
    pub input_file: PathBuf,
    /// Where the message goes (`-`: standard output).
    #[arg(long)]
    pub output_file: PathBuf,
    /// Plaintext bytes per frame (1 to 16777216).
    #[arg(long, default_value_t = esdk::DEFAULT_FRAME_LENGTH)]
    pub frame_length: u32,
    /// 0x0578 (committing, ECDSA P-384 signature; the default) or 0x0478
    /// (committing, unsigned: anyone who can decrypt can also forge).
    #[arg(long, default_value = "0x0578", value_parser = parse_suite)]
    pub algorithm_suite: Suite,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// `tinfoil decrypt-file`.
#[derive(Debug, Args)]
pub struct DecryptFileArgs {
    /// The message (`-`: standard input).
    #[arg(long)]
    pub input_file: PathBuf,
    /// Where the plaintext goes (`-`: standard output; see below).
    #[arg(long)]
    pub output_file: PathBuf,
    /// Pairs the message's encryption context must contain (checked
    /// before KMS is called): `k1=v1,k2=v2` or JSON `{"k1":"v1"}` (repeatable).
    #[arg(long = "encryption-context", value_parser = parse_context)]
    pub encryption_context: Vec<ContextEntries>,
    /// Only these keys may decrypt the data key (key id, ARN or alias;
    /// repeatable). Without it any `aws-kms` data key is tried.
    #[arg(long = "key-id")]
    pub key_ids: Vec<String>,
    /// Also read legacy messages without key commitment (suites 0x0378,
    /// 0x0178, 0x0078): with those, a message may decrypt to different
    /// plaintexts under different data keys.
    #[arg(long)]
    pub allow_non_committing: bool,
    /// The most encrypted data keys a message may carry.
    #[arg(long, default_value_t = 16)]
    pub max_encrypted_data_keys: usize,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Why a file command failed.
enum Failure {
    /// A local problem: files, the message, the context.
    Local(String),
    /// tinfoild refused a call (the operation's KMS name).
    Rpc(tonic::Status, &'static str),
}

impl From<EsdkError> for Failure {
    fn from(e: EsdkError) -> Failure {
        Failure::Local(e.to_string())
    }
}

fn local(path: &Path) -> impl Fn(std::io::Error) -> Failure + '_ {
    move |e| Failure::Local(format!("{}: {e}", path.display()))
}

/// The input (a file or standard input), and its size when known.
/// Standard input is read ahead on another thread; a file too when the
/// process may use two cores (the kernel's copy from the page cache then
/// overlaps the cryptography, which stays on one core), else inline.
fn open_input(path: &Path) -> Result<(ReadAhead, Option<u64>), Failure> {
    if path.as_os_str() == "-" {
        return Ok((
            ReadAhead::new(std::io::stdin(), IO_BUFFER, READ_AHEAD),
            None,
        ));
    }
    let file = File::open(path).map_err(local(path))?;
    let meta = file.metadata().map_err(local(path))?;
    if meta.is_dir() {
        return Err(Failure::Local(format!(
            "{}: is a directory",
            path.display()
        )));
    }
    let size = meta.is_file().then_some(meta.len());
    Ok((ReadAhead::for_cores(file), size))
}

/// The output: a temporary file beside a regular output path, or the
/// stream itself (standard output, a device such as /dev/null, a pipe).
enum Output {
    Temp {
        file: tempfile::NamedTempFile,
        path: PathBuf,
    },
    Stream(Box<dyn Write>),
}

impl Output {
    fn open(path: &Path) -> Result<Output, Failure> {
        if path.as_os_str() == "-" {
            return Ok(Output::Stream(Box::new(std::io::stdout().lock())));
        }
        match std::fs::metadata(path) {
            Ok(m) if !m.is_file() && !m.is_dir() => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(local(path))?;
                return Ok(Output::Stream(Box::new(f)));
            }
            Ok(m) if m.is_dir() => {
                return Err(Failure::Local(format!(
                    "{}: is a directory",
                    path.display()
                )))
            }
            _ => {}
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // tempfile creates the file 0600, exclusively.
        let file = tempfile::Builder::new()
            .prefix(".tinfoil-partial-")
            .tempfile_in(dir)
            .map_err(local(dir))?;
        Ok(Output::Temp {
            file,
            path: path.to_path_buf(),
        })
    }

    fn writer(&mut self) -> Result<Box<dyn Write + '_>, Failure> {
        Ok(match self {
            Output::Temp { file, .. } => Box::new(file.as_file_mut()),
            Output::Stream(w) => Box::new(w),
        })
    }

    /// Makes a temporary file durable and renames it over the output path.
    fn commit(self) -> Result<(), Failure> {
        match self {
            Output::Temp { file, path } => {
                file.as_file().sync_all().map_err(local(&path))?;
                file.persist(&path)
                    .map_err(|e| Failure::Local(format!("{}: {}", path.display(), e.error)))?;
                Ok(())
            }
            Output::Stream(mut w) => w.flush().map_err(|e| Failure::Local(e.to_string())),
        }
    }
}

/// A progress bar on standard error when it is a terminal (and not --quiet).
struct Progress {
    bar: Option<ProgressBar>,
    pending: u64,
}

impl Progress {
    fn new(quiet: bool, total: Option<u64>) -> Progress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = match total {
                Some(n) => ProgressBar::new(n),
                None => ProgressBar::no_length(),
            };
            if let Ok(style) = ProgressStyle::with_template(
                "{bytes}/{total_bytes} {wide_bar} {binary_bytes_per_sec} {eta}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Progress { bar, pending: 0 }
    }

    fn add(&mut self, n: u64) {
        self.pending += n;
        if self.pending >= 1 << 20 {
            if let Some(b) = &self.bar {
                b.inc(self.pending);
            }
            self.pending = 0;
        }
    }

    fn finish(self) {
        if let Some(b) = self.bar {
            b.inc(self.pending);
            b.finish_and_clear();
        }
    }
}

fn rpc(op: &'static str) -> impl Fn(tonic::Status) -> Failure {
    move |s| Failure::Rpc(s, op)
}

/// Copies a data key out of a response and wipes the response's copy.
fn take_data_key(
    plaintext: &mut Vec<u8>,
) -> Result<Zeroizing<[u8; esdk::suite::KEY_LEN]>, Failure> {
    let mut key = Zeroizing::new([0u8; esdk::suite::KEY_LEN]);
    let ok = plaintext.len() == key.len();
    if ok {
        key.copy_from_slice(plaintext);
    }
    plaintext.zeroize();
    if !ok {
        return Err(Failure::Local(
            "KMS returned a data key of the wrong length".into(),
        ));
    }
    Ok(key)
}

async fn connect(endpoint: &str, tls: &ClientTls) -> Result<KeyManagementClient<Channel>, Failure> {
    let channel = client::connect(endpoint, tls)
        .await
        .map_err(|e| Failure::Local(e.to_string()))?;
    Ok(KeyManagementClient::new(channel))
}

/// An Encrypt request carrying the data key, wiped when dropped: tonic
/// drops the request message it was given once it has encoded it, and the
/// generated message type does not wipe itself. (The bytes tonic encoded
/// it into are tonic's, freed unwiped; README, "what the transport holds".)
#[derive(Debug, Default)]
struct WipedEncryptRequest(pb::EncryptRequest);

impl Drop for WipedEncryptRequest {
    fn drop(&mut self) {
        self.0.plaintext.zeroize();
    }
}

impl prost::Message for WipedEncryptRequest {
    fn encode_raw(&self, buf: &mut impl bytes::BufMut) {
        self.0.encode_raw(buf)
    }
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        self.0.merge_field(tag, wire_type, buf, ctx)
    }
    fn encoded_len(&self) -> usize {
        self.0.encoded_len()
    }
    fn clear(&mut self) {
        self.0.clear()
    }
}

/// The codec of [`encrypt_wiped`]: a [`WipedEncryptRequest`] out, an
/// EncryptResponse back.
#[derive(Debug, Clone, Copy, Default)]
struct WipedEncryptCodec;

impl tonic::codec::Codec for WipedEncryptCodec {
    type Encode = WipedEncryptRequest;
    type Decode = pb::EncryptResponse;
    type Encoder = WipedEncryptCodec;
    type Decoder = WipedEncryptCodec;
    fn encoder(&mut self) -> Self::Encoder {
        WipedEncryptCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        WipedEncryptCodec
    }
}

impl tonic::codec::Encoder for WipedEncryptCodec {
    type Item = WipedEncryptRequest;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: WipedEncryptRequest,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        prost::Message::encode(&item, dst)
            .map_err(|e| tonic::Status::internal(format!("encoding Encrypt: {e}")))
    }
}

impl tonic::codec::Decoder for WipedEncryptCodec {
    type Item = pb::EncryptResponse;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<pb::EncryptResponse>, tonic::Status> {
        prost::Message::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("decoding EncryptResponse: {e}")))
    }
}

/// KeyManagement/Encrypt of `request`, whose plaintext (a data key) is
/// wiped once tonic has encoded it.
async fn encrypt_wiped(
    channel: Channel,
    request: pb::EncryptRequest,
) -> Result<pb::EncryptResponse, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path =
        tonic::codegen::http::uri::PathAndQuery::from_static("/tinfoil.v1.KeyManagement/Encrypt");
    grpc.unary(
        tonic::Request::new(WipedEncryptRequest(request)),
        path,
        WipedEncryptCodec,
    )
    .await
    .map(tonic::Response::into_inner)
}

/// GenerateDataKey under the first key, Encrypt of the same data key under
/// each other key, all with the message's context.
async fn make_data_key(
    endpoint: &str,
    tls: &ClientTls,
    key_ids: &[String],
    context: &BTreeMap<String, String>,
) -> Result<(Zeroizing<[u8; 32]>, Vec<EncryptedDataKey>), Failure> {
    let channel = client::connect(endpoint, tls)
        .await
        .map_err(|e| Failure::Local(e.to_string()))?;
    let mut kms = KeyManagementClient::new(channel.clone());
    let ctx = context.clone();
    let mut resp = kms
        .generate_data_key(pb::GenerateDataKeyRequest {
            key_id: key_ids[0].clone(),
            key_spec: None,
            number_of_bytes: Some(32),
            encryption_context: ctx.clone(),
        })
        .await
        .map_err(rpc("GenerateDataKey"))?
        .into_inner();
    let data_key = take_data_key(&mut resp.plaintext)?;
    let mut edks = vec![EncryptedDataKey {
        provider_id: esdk::KMS_PROVIDER_ID.into(),
        provider_info: resp.key_id.into_bytes(),
        ciphertext: resp.ciphertext_blob,
    }];
    for key_id in &key_ids[1..] {
        // The request's copy of the data key is wiped once encoded.
        let resp = encrypt_wiped(
            channel.clone(),
            pb::EncryptRequest {
                key_id: key_id.clone(),
                plaintext: data_key.to_vec(),
                encryption_context: ctx.clone(),
                encryption_algorithm: None,
            },
        )
        .await
        .map_err(rpc("Encrypt"))?;
        edks.push(EncryptedDataKey {
            provider_id: esdk::KMS_PROVIDER_ID.into(),
            provider_info: resp.key_id.into_bytes(),
            ciphertext: resp.ciphertext_blob,
        });
    }
    Ok((data_key, edks))
}

fn encrypt_file(
    rt: &tokio::runtime::Runtime,
    endpoint: &str,
    tls: &ClientTls,
    a: EncryptFileArgs,
) -> Result<(), Failure> {
    let user = merge_context(a.context.encryption_context).map_err(Failure::Local)?;
    if a.frame_length == 0 || a.frame_length > esdk::MAX_FRAME_LENGTH {
        return Err(Failure::Local(format!(
            "--frame-length {}: 1 to {}",
            a.frame_length,
            esdk::MAX_FRAME_LENGTH
        )));
    }
    let signer = if a.algorithm_suite.is_signed() {
        Some(esdk::Signer::generate()?)
    } else {
        None
    };
    let context = esdk::body::message_context(&user, signer.as_ref())?;
    let (mut reader, size) = open_input(&a.input_file)?;
    let mut output = Output::open(&a.output_file)?;
    let (data_key, edks) = rt.block_on(make_data_key(endpoint, tls, &a.key_ids, &context))?;
    let mut progress = Progress::new(a.quiet, size);
    {
        // The format writes in batches of frames: no further buffering.
        let mut writer = output.writer()?;
        esdk::encrypt(
            &mut reader,
            &mut writer,
            esdk::EncryptRequest {
                suite: a.algorithm_suite,
                frame_length: a.frame_length,
                context,
                encrypted_data_keys: edks,
                data_key: &data_key[..],
                signer,
            },
            &mut |n| progress.add(n),
        )?;
        writer.flush().map_err(local(&a.output_file))?;
    }
    drop(data_key);
    progress.finish();
    output.commit()
}

/// Whether the key ARN of an encrypted data key is one `allowed` names
/// (its ARN or key id; aliases are checked by tinfoild, see [`decrypt_key_id`]).
fn key_matches(arn: &str, allowed: &str) -> bool {
    arn == allowed
        || arn
            .rsplit_once(":key/")
            .is_some_and(|(_, id)| id == allowed)
}

fn is_alias(key: &str) -> bool {
    key.starts_with("alias/") || key.contains(":alias/")
}

/// The data keys to try, in order, with the KeyId each Decrypt must name.
fn candidates<'a>(
    edks: &'a [EncryptedDataKey],
    allowed: &'a [String],
) -> Vec<(&'a EncryptedDataKey, String)> {
    let mut out = Vec::new();
    for edk in edks
        .iter()
        .filter(|e| e.provider_id == esdk::KMS_PROVIDER_ID)
    {
        let Ok(arn) = std::str::from_utf8(&edk.provider_info) else {
            continue;
        };
        if allowed.is_empty() || allowed.iter().any(|k| key_matches(arn, k)) {
            out.push((edk, arn.to_string()));
        } else {
            // An alias resolves inside tinfoild, which refuses a blob made
            // under another key (IncorrectKeyException).
            out.extend(
                allowed
                    .iter()
                    .filter(|k| is_alias(k))
                    .map(|k| (edk, k.clone())),
            );
        }
    }
    out
}

async fn open_data_key(
    endpoint: &str,
    tls: &ClientTls,
    header: &esdk::Header,
    allowed: &[String],
) -> Result<Zeroizing<[u8; 32]>, Failure> {
    let tries = candidates(&header.encrypted_data_keys, allowed);
    if tries.is_empty() {
        return Err(Failure::Local(
            "no encrypted data key in the message is for an allowed KMS key".into(),
        ));
    }
    let mut kms = connect(endpoint, tls).await?;
    let ctx = header.context.clone();
    let mut last = None;
    for (edk, key_id) in tries {
        match kms
            .decrypt(pb::DecryptRequest {
                ciphertext_blob: edk.ciphertext.clone(),
                encryption_context: ctx.clone(),
                key_id: Some(key_id),
                encryption_algorithm: None,
            })
            .await
        {
            Ok(r) => {
                let mut r = r.into_inner();
                let key = take_data_key(&mut r.plaintext)?;
                if r.key_id.as_bytes() != edk.provider_info {
                    return Err(Failure::Local(format!(
                        "KMS decrypted the data key with {} instead of {}",
                        r.key_id,
                        String::from_utf8_lossy(&edk.provider_info)
                    )));
                }
                return Ok(key);
            }
            Err(s) => last = Some(s),
        }
    }
    Err(last.map_or_else(|| Failure::Local("no data key".into()), rpc("Decrypt")))
}

fn decrypt_file(
    rt: &tokio::runtime::Runtime,
    endpoint: &str,
    tls: &ClientTls,
    a: DecryptFileArgs,
) -> Result<(), Failure> {
    let required = merge_context(a.encryption_context).map_err(Failure::Local)?;
    let limits = Limits {
        max_encrypted_data_keys: a.max_encrypted_data_keys,
        allow_non_committing: a.allow_non_committing,
        ..Limits::default()
    };
    let (mut reader, size) = open_input(&a.input_file)?;
    let parsed = esdk::read_header(&mut reader, &limits)?;
    for (k, v) in &required {
        if parsed.header.context.get(k) != Some(v) {
            return Err(Failure::Local(format!(
                "the message's encryption context does not contain {k}={v}"
            )));
        }
    }
    let mut output = Output::open(&a.output_file)?;
    let data_key = rt.block_on(open_data_key(endpoint, tls, &parsed.header, &a.key_ids))?;
    let mut progress = Progress::new(a.quiet, size);
    {
        // The format writes in batches of frames: no further buffering.
        let mut writer = output.writer()?;
        esdk::decrypt(&parsed, &data_key[..], &mut reader, &mut writer, &mut |n| {
            progress.add(n)
        })?;
        writer.flush().map_err(local(&a.output_file))?;
    }
    drop(data_key);
    progress.finish();
    output.commit()
}

/// The file commands.
pub enum FileCommand {
    /// `encrypt-file`.
    Encrypt(EncryptFileArgs),
    /// `decrypt-file`.
    Decrypt(DecryptFileArgs),
}

impl FileCommand {
    /// The file command, or the command given back when it is another one.
    pub fn split(command: Command) -> Result<FileCommand, Box<Command>> {
        match command {
            Command::EncryptFile(a) => Ok(FileCommand::Encrypt(a)),
            Command::DecryptFile(a) => Ok(FileCommand::Decrypt(a)),
            other => Err(Box::new(other)),
        }
    }
}

/// Runs a file command; prints errors like the other commands.
pub fn run(
    rt: &tokio::runtime::Runtime,
    endpoint: &str,
    tls: &ClientTls,
    command: FileCommand,
) -> ExitCode {
    let result = match command {
        FileCommand::Encrypt(a) => encrypt_file(rt, endpoint, tls, a),
        FileCommand::Decrypt(a) => decrypt_file(rt, endpoint, tls, a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Local(e)) => {
            eprintln!("tinfoil: {e}");
            ExitCode::FAILURE
        }
        Err(Failure::Rpc(s, op)) => {
            let reason = status::reason_of(&s).unwrap_or_else(|| format!("{:?}", s.code()));
            eprintln!(
                "An error occurred ({reason}) when calling the {op} operation: {}",
                s.message()
            );
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn edk(provider_id: &str, info: &str) -> EncryptedDataKey {
        EncryptedDataKey {
            provider_id: provider_id.into(),
            provider_info: info.as_bytes().to_vec(),
            ciphertext: vec![1, 2, 3],
        }
    }

    #[test]
    fn allowed_keys_match_by_arn_or_key_id_only() {
        assert!(key_matches(ARN, ARN));
        assert!(key_matches(ARN, "1234abcd-12ab-34cd-56ef-1234567890ab"));
        assert!(!key_matches(ARN, "1234abcd"));
        assert!(!key_matches(
            ARN,
            "arn:aws:kms:us-east-1:111122223333:key/other"
        ));
        assert!(!key_matches(ARN, ""));
    }

    #[test]
    fn candidates_skip_other_providers_and_defer_aliases_to_kms() {
        let edks = [edk("raw-aes", ARN), edk("aws-kms", ARN)];
        // Discovery: every aws-kms data key, under its own ARN.
        let all = candidates(&edks, &[]);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].1, ARN);
        // A key that is not the one: nothing to try.
        assert!(candidates(&edks, &["other-key".into()]).is_empty());
        // An alias is sent to KMS, which checks it names the blob's key.
        let allowed = ["alias/backups".to_string()];
        let alias = candidates(&edks, &allowed);
        assert_eq!(alias.len(), 1);
        assert_eq!(alias[0].1, "alias/backups");
    }
}
