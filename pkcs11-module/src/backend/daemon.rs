//! `backend = "daemon"`, `endpoint = "unix:PATH"`: every operation is one
//! gRPC call to tinfoild's `tinfoil.v1.Pkcs11Backend`, so key material
//! never enters the application's process.
//!
//! The module carries its own small tokio runtime, driven by the calling
//! threads (see `rpc`), and works inside host applications that run their
//! own tokio. The client is dropped before the runtime.
//!
//! tinfoild runs the embedded backend's code over its store, so tokens,
//! objects and error codes are those of `backend = "embedded"`. Session
//! keys live in the daemon. Anyone who can open the socket (mode 0600)
//! can use the keys: the PIN is checked by this module, as with the
//! KMS API on the same socket.

use std::path::PathBuf;
use std::time::Duration;

use cryptoki_sys::*;
use tinfoil_proto::v1 as pb;
use tinfoil_proto::v1::pkcs11_backend_client::Pkcs11BackendClient;
use tonic::transport::Channel;
use zeroize::Zeroizing;

use super::{
    AesMode, Attributes, Backend, KeyHandle, KeySpec, PairUsages, RawSign, StoredObject,
    TokenRecord, UserKind, WrapMode,
};
use crate::attrs::encode;
use crate::error::{ckr, Pkcs11Error, Result};

mod calls;
mod chunked;
mod pipe;
mod rpc;

use calls::lock_pipe;
use tinfoil_proto::pkcs11_wire as wire;
use wire::{key_from_wire, key_to_wire};

/// How long one call may take (RSA-4096 key generation included).
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// How long connecting to the socket may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest message sent or received: the largest AES input plus framing.
const MAX_MESSAGE: usize = hsm_core::mechanisms::MAX_AES_INPUT + (1 << 20);
/// Largest C_GenerateRandom answered in one call.
const MAX_RANDOM: usize = 1 << 20;

/// The daemon backend: a tonic client and the runtime that drives it.
pub struct DaemonBackend {
    /// Dropped first (see `Drop`), while the runtime still runs.
    client: Option<Pkcs11BackendClient<Channel>>,
    /// The fast calls' stream, while free and whole (see `pipe`).
    pipe: std::sync::Mutex<pipe::Slot>,
    rpc: rpc::Rpc,
    endpoint: String,
}

impl std::fmt::Debug for DaemonBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonBackend")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl DaemonBackend {
    /// Starts the runtime and connects to `endpoint` (`unix:PATH`). A bad
    /// endpoint or a daemon that does not answer is CKR_GENERAL_ERROR with
    /// a message naming the endpoint (C_Initialize prints it).
    pub fn connect(endpoint: &str) -> Result<DaemonBackend> {
        let path = match endpoint.strip_prefix("unix:") {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => {
                return Err(Pkcs11Error::General(format!(
                    "bad endpoint {endpoint:?}: the daemon backend needs unix:PATH"
                )))
            }
        };
        let mut backend = DaemonBackend {
            client: None,
            pipe: std::sync::Mutex::new(pipe::Slot::Absent),
            rpc: rpc::Rpc::start()?,
            endpoint: endpoint.to_string(),
        };
        let channel = backend
            .on_runtime(async move {
                tokio::time::timeout(CONNECT_TIMEOUT, tinfoil_proto::unix::connect(path)).await
            })?
            .map_err(|_| Pkcs11Error::General(format!("cannot connect to {endpoint}: timed out")))?
            .map_err(|e| {
                Pkcs11Error::General(format!(
                    "cannot connect to {endpoint}: {} (is tinfoild running?)",
                    chain(&e)
                ))
            })?;
        let client = Pkcs11BackendClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        // A daemon without the pipe (an older one) leaves it absent: every
        // call is then unary.
        let pipe = backend.on_runtime(pipe::Pipe::open(client.clone(), CALL_TIMEOUT))?;
        backend.client = Some(client);
        *lock_pipe(&backend.pipe) = match pipe {
            Some(pipe) => pipe::Slot::Free(Box::new(pipe)),
            None => pipe::Slot::Absent,
        };
        Ok(backend)
    }
}

impl Drop for DaemonBackend {
    fn drop(&mut self) {
        // The client's connection task lives on the runtime: drop it
        // first; the runtime stops when `rpc` drops after this.
        self.client.take();
    }
}

/// An error and its sources, `: `-separated, each said once.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = inner.source();
    }
    text
}

fn u32_len(len: usize) -> Result<u32> {
    u32::try_from(len).map_err(|_| Pkcs11Error::ArgumentsBad("length out of range"))
}

impl Backend for DaemonBackend {
    fn name(&self) -> &'static str {
        "daemon"
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let r = self.call("Tokens", pb::P11TokensRequest {}, |mut c, r| async move {
            c.tokens(r).await
        })?;
        Ok(r.tokens
            .into_iter()
            .map(|t| TokenRecord {
                serial: t.serial,
                label: t.label,
                user_pin_initialized: t.user_pin_initialized,
                // CK_FLAGS is a C unsigned long: u64 here, u32 elsewhere.
                #[allow(clippy::unnecessary_cast)]
                pin_flags: t.pin_flags as CK_FLAGS,
            })
            .collect())
    }

    fn init_token(&self, existing: Option<&str>, label: &str, so_pin: &[u8]) -> Result<String> {
        let req = pb::P11InitTokenRequest {
            existing: existing.map(str::to_string),
            label: label.to_string(),
            so_pin: so_pin.to_vec(),
        };
        let r = self.call(
            "InitToken",
            req,
            |mut c, r| async move { c.init_token(r).await },
        )?;
        Ok(r.serial)
    }

    fn login(&self, token: &str, user: UserKind, pin: &[u8]) -> Result<()> {
        let req = pb::P11LoginRequest {
            token: token.to_string(),
            user: wire::user_to_wire(user),
            pin: pin.to_vec(),
        };
        self.call("Login", req, |mut c, r| async move { c.login(r).await })?;
        Ok(())
    }

    fn init_pin(&self, token: &str, pin: &[u8]) -> Result<()> {
        let req = pb::P11InitPinRequest {
            token: token.to_string(),
            pin: pin.to_vec(),
        };
        self.call(
            "InitPin",
            req,
            |mut c, r| async move { c.init_pin(r).await },
        )?;
        Ok(())
    }

    fn set_pin(&self, token: &str, user: UserKind, old: &[u8], new: &[u8]) -> Result<()> {
        let req = pb::P11SetPinRequest {
            token: token.to_string(),
            user: wire::user_to_wire(user),
            old_pin: old.to_vec(),
            new_pin: new.to_vec(),
        };
        self.call("SetPin", req, |mut c, r| async move { c.set_pin(r).await })?;
        Ok(())
    }

    fn load_objects(&self, token: &str) -> Result<Vec<StoredObject>> {
        let req = pb::P11TokenRequest {
            token: token.to_string(),
        };
        let r = self.call("LoadObjects", req, |mut c, r| async move {
            c.load_objects(r).await
        })?;
        r.objects.into_iter().map(wire::object_from_wire).collect()
    }

    fn store_object(
        &self,
        token: &str,
        attrs: &Attributes,
        key: Option<&KeyHandle>,
    ) -> Result<String> {
        let req = pb::P11StoreObjectRequest {
            token: token.to_string(),
            attrs: encode(attrs),
            key: key.map(key_to_wire),
        };
        let r = self.call("StoreObject", req, |mut c, r| async move {
            c.store_object(r).await
        })?;
        Ok(r.id)
    }

    fn update_object(&self, token: &str, id: &str, attrs: &Attributes) -> Result<()> {
        let req = pb::P11UpdateObjectRequest {
            token: token.to_string(),
            id: id.to_string(),
            attrs: encode(attrs),
        };
        self.call("UpdateObject", req, |mut c, r| async move {
            c.update_object(r).await
        })?;
        Ok(())
    }

    fn destroy_object(&self, token: &str, id: &str) -> Result<()> {
        let req = pb::P11ObjectRequest {
            token: token.to_string(),
            id: id.to_string(),
        };
        self.call("DestroyObject", req, |mut c, r| async move {
            c.destroy_object(r).await
        })?;
        Ok(())
    }

    fn generate_random(&self, out: &mut [u8]) -> Result<()> {
        for chunk in out.chunks_mut(MAX_RANDOM) {
            let req = pb::P11GenerateRandomRequest {
                len: u32_len(chunk.len())?,
            };
            let r = self.bytes_call("GenerateRandom", pipe::Call::GenerateRandom(req), || {
                self.call("GenerateRandom", req, |mut c, r| async move {
                    c.generate_random(r).await
                })
            })?;
            let data = Zeroizing::new(r.data);
            if data.len() != chunk.len() {
                return Err(ckr!(CKR_DEVICE_ERROR, "tinfoild sent a wrong length"));
            }
            chunk.copy_from_slice(&data);
        }
        Ok(())
    }

    fn supports_key_mechanisms(&self) -> bool {
        true
    }

    fn generate_secret_key(
        &self,
        token_label: Option<&str>,
        aes: bool,
        len: usize,
        extractable: bool,
    ) -> Result<KeyHandle> {
        let req = pb::P11GenerateSecretKeyRequest {
            token_label: token_label.map(str::to_string),
            aes,
            len: u32_len(len)?,
            extractable,
            readable: false,
        };
        let r = self.call("GenerateSecretKey", req, |mut c, r| async move {
            c.generate_secret_key(r).await
        })?;
        key_from_wire(Some(r))
    }

    fn import_secret_key(
        &self,
        token_label: Option<&str>,
        aes: bool,
        value: &[u8],
        extractable: bool,
    ) -> Result<KeyHandle> {
        let req = pb::P11ImportSecretKeyRequest {
            token_label: token_label.map(str::to_string),
            aes,
            value: value.to_vec(),
            extractable,
            readable: false,
        };
        let r = self.call("ImportSecretKey", req, |mut c, r| async move {
            c.import_secret_key(r).await
        })?;
        key_from_wire(Some(r))
    }

    fn hmac(&self, key: &KeyHandle, hash_len: usize, data: &[u8]) -> Result<Vec<u8>> {
        let req = pb::P11HmacRequest {
            key: Some(key_to_wire(key)),
            hash_len: u32_len(hash_len)?,
            data: data.to_vec(),
        };
        let r = self.bytes_call("Hmac", pipe::Call::Hmac(req.clone()), || {
            self.call("Hmac", req, |mut c, r| async move { c.hmac(r).await })
        })?;
        Ok(r.data)
    }

    fn hmac_verify(
        &self,
        key: &KeyHandle,
        hash_len: usize,
        data: &[u8],
        mac: &[u8],
    ) -> Result<bool> {
        let req = pb::P11HmacVerifyRequest {
            key: Some(key_to_wire(key)),
            hash_len: u32_len(hash_len)?,
            data: data.to_vec(),
            mac: mac.to_vec(),
        };
        let r = self.bool_call("HmacVerify", pipe::Call::HmacVerify(req.clone()), || {
            self.call("HmacVerify", req, |mut c, r| async move {
                c.hmac_verify(r).await
            })
        })?;
        Ok(r.ok)
    }

    fn destroy_key(&self, key: &KeyHandle) -> Result<()> {
        self.call("DestroyKey", key_to_wire(key), |mut c, r| async move {
            c.destroy_key(r).await
        })?;
        Ok(())
    }

    fn secret_len(&self, key: &KeyHandle) -> Result<usize> {
        let r = self.call("SecretLen", key_to_wire(key), |mut c, r| async move {
            c.secret_len(r).await
        })?;
        wire::len_from_wire(r.len)
    }

    fn aes(
        &self,
        key: &KeyHandle,
        mode: &AesMode,
        encrypt: bool,
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let req = pb::P11AesRequest {
            key: Some(key_to_wire(key)),
            mode: Some(wire::aes_to_wire(mode)),
            encrypt,
            data: data.to_vec(),
        };
        let r = self.bytes_call("Aes", pipe::Call::Aes(req.clone()), || {
            self.call("Aes", req, |mut c, r| async move { c.aes(r).await })
        })?;
        Ok(Zeroizing::new(r.data))
    }

    fn rsa_oaep(
        &self,
        key: &KeyHandle,
        sha256: bool,
        encrypt: bool,
        data: &[u8],
        label: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let req = pb::P11RsaOaepRequest {
            key: Some(key_to_wire(key)),
            sha256,
            encrypt,
            data: data.to_vec(),
            label: label.to_vec(),
        };
        let r = self.call(
            "RsaOaep",
            req,
            |mut c, r| async move { c.rsa_oaep(r).await },
        )?;
        Ok(Zeroizing::new(r.data))
    }

    fn wrap(&self, wrapping: &KeyHandle, mode: WrapMode, target: &KeyHandle) -> Result<Vec<u8>> {
        let req = pb::P11WrapRequest {
            wrapping: Some(key_to_wire(wrapping)),
            mode: wire::wrap_to_wire(mode),
            target: Some(key_to_wire(target)),
        };
        let r = self.call("Wrap", req, |mut c, r| async move { c.wrap(r).await })?;
        Ok(r.data)
    }

    fn generate_key_pair(
        &self,
        token_label: &str,
        spec: KeySpec,
        usages: PairUsages,
    ) -> Result<(KeyHandle, Vec<u8>)> {
        let req = pb::P11GenerateKeyPairRequest {
            token_label: token_label.to_string(),
            key_spec: spec.as_str().to_string(),
            key_usage: usages.as_str(),
            modulus_bits: 0,
        };
        let r = self.call("GenerateKeyPair", req, |mut c, r| async move {
            c.generate_key_pair(r).await
        })?;
        Ok((key_from_wire(r.key)?, r.public_key))
    }

    fn generate_rsa_key_pair(
        &self,
        token_label: &str,
        bits: u32,
        usages: PairUsages,
    ) -> Result<(KeyHandle, Vec<u8>)> {
        let req = pb::P11GenerateKeyPairRequest {
            token_label: token_label.to_string(),
            key_spec: KeySpec::RsaOtherSize.as_str().to_string(),
            key_usage: usages.as_str(),
            modulus_bits: bits,
        };
        let r = self.call("GenerateKeyPair", req, |mut c, r| async move {
            c.generate_key_pair(r).await
        })?;
        Ok((key_from_wire(r.key)?, r.public_key))
    }

    fn sign(&self, key: &KeyHandle, how: RawSign, input: &[u8]) -> Result<Vec<u8>> {
        let req = pb::P11SignRequest {
            key: Some(key_to_wire(key)),
            how: Some(wire::sign_to_wire(how)),
            input: input.to_vec(),
        };
        let r = self.bytes_call("Sign", pipe::Call::Sign(req.clone()), || {
            self.call("Sign", req, |mut c, r| async move { c.sign(r).await })
        })?;
        Ok(r.data)
    }

    fn verify(
        &self,
        key: &KeyHandle,
        how: RawSign,
        input: &[u8],
        signature: &[u8],
    ) -> Result<bool> {
        let req = pb::P11VerifyRequest {
            key: Some(key_to_wire(key)),
            how: Some(wire::sign_to_wire(how)),
            input: input.to_vec(),
            signature: signature.to_vec(),
        };
        let r = self.bool_call("Verify", pipe::Call::Verify(req.clone()), || {
            self.call("Verify", req, |mut c, r| async move { c.verify(r).await })
        })?;
        Ok(r.ok)
    }

    fn unwrap(
        &self,
        unwrapping: &KeyHandle,
        mode: WrapMode,
        wrapped: &[u8],
        token_label: Option<&str>,
        extractable: bool,
    ) -> Result<(KeyHandle, usize)> {
        let req = pb::P11UnwrapRequest {
            unwrapping: Some(key_to_wire(unwrapping)),
            mode: wire::wrap_to_wire(mode),
            wrapped: wrapped.to_vec(),
            token_label: token_label.map(str::to_string),
            extractable,
        };
        let r = self.call("Unwrap", req, |mut c, r| async move { c.unwrap(r).await })?;
        Ok((key_from_wire(r.key)?, wire::len_from_wire(r.len)?))
    }

    fn generation(&self) -> Result<u64> {
        let r = self.call("Generation", pb::P11Empty {}, |mut c, r| async move {
            c.generation(r).await
        })?;
        Ok(r.generation)
    }

    fn rsa_pkcs1_crypt(
        &self,
        key: &KeyHandle,
        encrypt: bool,
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let req = pb::P11RsaPkcs1CryptRequest {
            key: Some(key_to_wire(key)),
            encrypt,
            data: data.to_vec(),
            raw: false,
        };
        let r = self.call("RsaPkcs1Crypt", req, |mut c, r| async move {
            c.rsa_pkcs1_crypt(r).await
        })?;
        Ok(Zeroizing::new(r.data))
    }

    fn rsa_x509_crypt(
        &self,
        key: &KeyHandle,
        encrypt: bool,
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let req = pb::P11RsaPkcs1CryptRequest {
            key: Some(key_to_wire(key)),
            encrypt,
            data: data.to_vec(),
            raw: true,
        };
        let r = self.call("RsaPkcs1Crypt", req, |mut c, r| async move {
            c.rsa_pkcs1_crypt(r).await
        })?;
        Ok(Zeroizing::new(r.data))
    }

    fn copy_key(
        &self,
        key: &KeyHandle,
        token_label: Option<&str>,
        aes: bool,
        extractable: bool,
    ) -> Result<KeyHandle> {
        let req = pb::P11CopyKeyRequest {
            key: Some(key_to_wire(key)),
            token_label: token_label.map(str::to_string),
            aes,
            extractable,
            readable: false,
        };
        let r = self.call(
            "CopyKey",
            req,
            |mut c, r| async move { c.copy_key(r).await },
        )?;
        key_from_wire(Some(r))
    }

    fn make_readable_secret(
        &self,
        token_label: Option<&str>,
        aes: bool,
        len: usize,
        value: Option<&[u8]>,
    ) -> Result<KeyHandle> {
        let r = match value {
            None => {
                let req = pb::P11GenerateSecretKeyRequest {
                    token_label: token_label.map(str::to_string),
                    aes,
                    len: u32_len(len)?,
                    extractable: true,
                    readable: true,
                };
                self.call("GenerateSecretKey", req, |mut c, r| async move {
                    c.generate_secret_key(r).await
                })?
            }
            Some(value) => {
                let req = pb::P11ImportSecretKeyRequest {
                    token_label: token_label.map(str::to_string),
                    aes,
                    value: value.to_vec(),
                    extractable: true,
                    readable: true,
                };
                self.call("ImportSecretKey", req, |mut c, r| async move {
                    c.import_secret_key(r).await
                })?
            }
        };
        key_from_wire(Some(r))
    }

    fn secret_value(&self, key: &KeyHandle) -> Result<Zeroizing<Vec<u8>>> {
        let r = self.call("SecretValue", key_to_wire(key), |mut c, r| async move {
            c.secret_value(r).await
        })?;
        Ok(Zeroizing::new(r.data))
    }

    fn seal_secret(&self, key: &KeyHandle, unextractable: bool) -> Result<()> {
        let req = pb::P11SealSecretRequest {
            key: Some(key_to_wire(key)),
            unextractable,
        };
        self.call("SealSecret", req, |mut c, r| async move {
            c.seal_secret(r).await
        })?;
        Ok(())
    }

    fn copy_readable_key(
        &self,
        key: &KeyHandle,
        token_label: Option<&str>,
        aes: bool,
    ) -> Result<KeyHandle> {
        let req = pb::P11CopyKeyRequest {
            key: Some(key_to_wire(key)),
            token_label: token_label.map(str::to_string),
            aes,
            extractable: true,
            readable: true,
        };
        let r = self.call(
            "CopyKey",
            req,
            |mut c, r| async move { c.copy_key(r).await },
        )?;
        key_from_wire(Some(r))
    }

    fn derive(
        &self,
        base: &KeyHandle,
        other: Option<&KeyHandle>,
        op: &super::DeriveOp,
        new: &[super::NewSecret],
    ) -> Result<Vec<KeyHandle>> {
        let req = pb::P11DeriveRequest {
            base: Some(key_to_wire(base)),
            other: other.map(key_to_wire),
            op: Some(wire::derive_to_wire(op)),
            keys: new.iter().map(wire::new_secret_to_wire).collect(),
            data_len: None,
        };
        let r = self.call("Derive", req, |mut c, r| async move { c.derive(r).await })?;
        if r.keys.len() != new.len() {
            return Err(Pkcs11Error::General("the daemon made other keys".into()));
        }
        r.keys.into_iter().map(|k| key_from_wire(Some(k))).collect()
    }

    fn derive_data(
        &self,
        base: &KeyHandle,
        other: Option<&KeyHandle>,
        op: &super::DeriveOp,
        len: usize,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let req = pb::P11DeriveRequest {
            base: Some(key_to_wire(base)),
            other: other.map(key_to_wire),
            op: Some(wire::derive_to_wire(op)),
            keys: Vec::new(),
            data_len: Some(u32_len(len)?),
        };
        let r = self.call("Derive", req, |mut c, r| async move { c.derive(r).await })?;
        Ok(Zeroizing::new(r.data))
    }

    fn import_private_key(
        &self,
        token_label: Option<&str>,
        kind: super::PrivateKind,
        pkcs8: &[u8],
        usages: PairUsages,
    ) -> Result<super::ImportedKey> {
        let req = pb::P11ImportPrivateKeyRequest {
            token_label: token_label.map(str::to_string),
            kind: kind.as_str().to_string(),
            key_usage: usages.as_str(),
            pkcs8: pkcs8.to_vec(),
            ..Default::default()
        };
        let r = self.call("ImportPrivateKey", req, |mut c, r| async move {
            c.import_private_key(r).await
        })?;
        wire::imported_from_wire(r)
    }

    fn unwrap_private_key(
        &self,
        unwrapping: &KeyHandle,
        transport: &super::KeyTransport,
        wrapped: &[u8],
        token_label: Option<&str>,
        kind: super::PrivateKind,
        usages: PairUsages,
    ) -> Result<super::ImportedKey> {
        let req = pb::P11ImportPrivateKeyRequest {
            token_label: token_label.map(str::to_string),
            kind: kind.as_str().to_string(),
            key_usage: usages.as_str(),
            pkcs8: Vec::new(),
            unwrapping: Some(key_to_wire(unwrapping)),
            transport: Some(wire::transport_to_wire(transport)),
            wrapped: wrapped.to_vec(),
        };
        let r = self.call("ImportPrivateKey", req, |mut c, r| async move {
            c.import_private_key(r).await
        })?;
        wire::imported_from_wire(r)
    }

    fn wrap_rsa(
        &self,
        wrapping: &KeyHandle,
        transport: &super::KeyTransport,
        target: &KeyHandle,
    ) -> Result<Vec<u8>> {
        let req = pb::P11WrapRsaRequest {
            wrapping: Some(key_to_wire(wrapping)),
            transport: Some(wire::transport_to_wire(transport)),
            target: Some(key_to_wire(target)),
        };
        let r = self.call(
            "WrapRsa",
            req,
            |mut c, r| async move { c.wrap_rsa(r).await },
        )?;
        Ok(r.data)
    }

    fn unwrap_secret(
        &self,
        unwrapping: &KeyHandle,
        transport: &super::KeyTransport,
        wrapped: &[u8],
        token_label: Option<&str>,
        aes: bool,
        extractable: bool,
    ) -> Result<(KeyHandle, usize)> {
        let req = pb::P11UnwrapSecretRequest {
            unwrapping: Some(key_to_wire(unwrapping)),
            transport: Some(wire::transport_to_wire(transport)),
            wrapped: wrapped.to_vec(),
            token_label: token_label.map(str::to_string),
            aes,
            extractable,
        };
        let r = self.call("UnwrapSecret", req, |mut c, r| async move {
            c.unwrap_secret(r).await
        })?;
        Ok((key_from_wire(r.key)?, wire::len_from_wire(r.len)?))
    }

    fn cmac(&self, key: &KeyHandle, data: &[u8], mac_len: usize) -> Result<Vec<u8>> {
        let req = pb::P11CmacRequest {
            key: Some(key_to_wire(key)),
            data: data.to_vec(),
            mac_len: u32_len(mac_len)?,
        };
        let r = self.call("Cmac", req, |mut c, r| async move { c.cmac(r).await })?;
        Ok(r.data)
    }

    fn cmac_verify(&self, key: &KeyHandle, data: &[u8], mac: &[u8]) -> Result<bool> {
        let req = pb::P11CmacVerifyRequest {
            key: Some(key_to_wire(key)),
            data: data.to_vec(),
            mac: mac.to_vec(),
        };
        let r = self.call("CmacVerify", req, |mut c, r| async move {
            c.cmac_verify(r).await
        })?;
        Ok(r.ok)
    }

    fn ecdh_derive(
        &self,
        key: &KeyHandle,
        peer_point: &[u8],
        kdf: super::EcdhKdf,
        shared: &[u8],
        token_label: Option<&str>,
        aes: bool,
        len: usize,
        extractable: bool,
        readable: bool,
    ) -> Result<KeyHandle> {
        let req = pb::P11EcdhDeriveRequest {
            key: Some(key_to_wire(key)),
            peer_point: peer_point.to_vec(),
            kdf_hash_len: wire::ecdh_kdf_to_wire(kdf),
            shared: shared.to_vec(),
            token_label: token_label.map(str::to_string),
            aes,
            len: u32_len(len)?,
            extractable,
            readable,
        };
        let r = self.call("EcdhDerive", req, |mut c, r| async move {
            c.ecdh_derive(r).await
        })?;
        key_from_wire(Some(r))
    }

    fn ml_kem_encapsulate(
        &self,
        key: &KeyHandle,
        new: &super::NewSecret,
    ) -> Result<(Vec<u8>, KeyHandle)> {
        let req = pb::P11MlKemEncapsulateRequest {
            key: Some(key_to_wire(key)),
            new_key: Some(wire::new_secret_to_wire(new)),
        };
        let r = self.call("MlKemEncapsulate", req, |mut c, r| async move {
            c.ml_kem_encapsulate(r).await
        })?;
        Ok((r.ciphertext, key_from_wire(r.key)?))
    }

    fn ml_kem_decapsulate(
        &self,
        key: &KeyHandle,
        ciphertext: &[u8],
        new: &super::NewSecret,
    ) -> Result<KeyHandle> {
        let req = pb::P11MlKemDecapsulateRequest {
            key: Some(key_to_wire(key)),
            ciphertext: ciphertext.to_vec(),
            new_key: Some(wire::new_secret_to_wire(new)),
        };
        let r = self.call("MlKemDecapsulate", req, |mut c, r| async move {
            c.ml_kem_decapsulate(r).await
        })?;
        key_from_wire(Some(r))
    }

    fn find_objects(
        &self,
        token: &str,
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Result<Vec<StoredObject>> {
        Ok(self.find_objects_now(token, template)?.1)
    }

    fn find_objects_now(
        &self,
        token: &str,
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Result<(u64, Vec<StoredObject>)> {
        // A type named twice keeps its last value on the wire; the module
        // matches the whole template again.
        let template: Attributes = template.iter().cloned().collect();
        let req = pb::P11FindObjectsRequest {
            token: token.to_string(),
            template: encode(&template),
        };
        let r = self.call("FindObjects", req, |mut c, r| async move {
            c.find_objects(r).await
        })?;
        let objects = r
            .objects
            .into_iter()
            .map(wire::object_from_wire)
            .collect::<Result<Vec<_>>>()?;
        Ok((r.generation, objects))
    }

    fn refresh_objects(
        &self,
        token: &str,
        since: Option<u64>,
        held: &super::ChangeScope,
    ) -> Result<super::ObjectChanges> {
        // First without the held ids: when the journal can say what
        // changed since `since`, that is the whole answer. Else the held
        // ids go in parts that stay well under the daemon's request limit
        // (64 KiB by default), each bringing its held objects; the
        // generation is the first answer's, read before any was loaded.
        let mut answer = self.refresh_part(token, since, super::ChangeScope::default())?;
        if answer.scope.is_some() {
            return Ok(answer);
        }
        for part in held_parts(held) {
            answer
                .objects
                .extend(self.refresh_part(token, None, part)?.objects);
        }
        Ok(answer)
    }

    fn load_changes(&self, token: &str, since: Option<u64>) -> Result<super::ObjectChanges> {
        let req = pb::P11LoadChangesRequest {
            token: token.to_string(),
            since,
        };
        let r = self.call("LoadChanges", req, |mut c, r| async move {
            c.load_changes(r).await
        })?;
        changes_from_wire(r)
    }
}

/// Bytes of held ids one RefreshObjects request carries at most.
const HELD_PART_BYTES: usize = 16 * 1024;

/// `held` cut into parts of at most [`HELD_PART_BYTES`] of ids each.
fn held_parts(held: &super::ChangeScope) -> Vec<super::ChangeScope> {
    let mut parts: Vec<super::ChangeScope> = Vec::new();
    let mut bytes = 0;
    let ids = held
        .keys
        .iter()
        .map(|k| (true, k))
        .chain(held.objects.iter().map(|o| (false, o)));
    for (is_key, id) in ids {
        if parts.is_empty() || bytes + id.len() > HELD_PART_BYTES {
            parts.push(super::ChangeScope::default());
            bytes = 0;
        }
        bytes += id.len() + 4;
        let Some(part) = parts.last_mut() else {
            continue;
        };
        if is_key {
            part.keys.push(id.clone());
        } else {
            part.objects.push(id.clone());
        }
    }
    parts
}

impl DaemonBackend {
    /// One RefreshObjects request.
    fn refresh_part(
        &self,
        token: &str,
        since: Option<u64>,
        part: super::ChangeScope,
    ) -> Result<super::ObjectChanges> {
        let req = pb::P11RefreshObjectsRequest {
            token: token.to_string(),
            since,
            held_keys: part.keys,
            held_objects: part.objects,
        };
        let r = self.call("RefreshObjects", req, |mut c, r| async move {
            c.refresh_objects(r).await
        })?;
        changes_from_wire(r)
    }
}

/// A token's objects as they changed, from the wire.
fn changes_from_wire(r: pb::P11LoadChangesResponse) -> Result<super::ObjectChanges> {
    let objects = r
        .objects
        .into_iter()
        .map(wire::object_from_wire)
        .collect::<Result<Vec<_>>>()?;
    Ok(super::ObjectChanges {
        generation: r.generation,
        scope: r.scoped.then_some(super::ChangeScope {
            keys: r.scope_keys,
            objects: r.scope_objects,
        }),
        objects,
    })
}

#[cfg(test)]
mod held_parts_tests {
    use super::*;

    #[test]
    fn held_ids_go_in_parts_under_the_budget_and_none_is_lost() {
        let held = super::super::ChangeScope {
            keys: (0..3_000).map(|i| format!("{i:036}")).collect(),
            objects: (0..3_000).map(|i| format!("{i:024}")).collect(),
        };
        let parts = held_parts(&held);
        assert!(parts.len() > 1);
        for part in &parts {
            let bytes: usize = part
                .keys
                .iter()
                .chain(&part.objects)
                .map(|i| i.len() + 4)
                .sum();
            assert!(bytes <= HELD_PART_BYTES + 64, "{bytes}");
        }
        let keys: Vec<String> = parts.iter().flat_map(|p| p.keys.clone()).collect();
        let objects: Vec<String> = parts.iter().flat_map(|p| p.objects.clone()).collect();
        assert_eq!((keys, objects), (held.keys, held.objects));
        assert!(held_parts(&Default::default()).is_empty());
    }
}
