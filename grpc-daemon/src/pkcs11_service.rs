//! `tinfoil.v1.Pkcs11Backend`: the storage and crypto side of the PKCS#11
//! module's `daemon` backend.
//!
//! Each RPC is one method of the module's `Backend` trait, answered by the
//! module's own embedded backend over the daemon's store
//! ([`EmbeddedBackend::over_hsm`]): the same hsm-core calls, object
//! synthesis and `CK_RV` mapping as `backend = "embedded"`, with session
//! keys held here. Calls run through the KeyManagement service's machinery
//! (permits, per-call deadline, crypto pool or blocking pool; AES, HMAC,
//! ECDSA/EdDSA and verification, which take microseconds, on the async
//! worker itself); errors become statuses through [`status::from_pkcs11`].

use std::sync::Arc;

use hsm_core::pkcs11::embedded::EmbeddedBackend;
use hsm_core::pkcs11::Backend;
use hsm_core::pkcs11::Pkcs11Error;
use hsm_core::token::SessionKeyBudget;
use tinfoil_proto::pkcs11_wire as wire;
use tinfoil_proto::v1 as pb;
use tinfoil_proto::v1::pkcs11_backend_server::Pkcs11Backend;
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use crate::service::{KmsService, Lane};
use crate::status;

/// Largest C_GenerateRandom served in one call, in bytes.
const MAX_RANDOM: usize = 1 << 20;
/// Largest input a symmetric call handles on the async worker itself
/// (AES-GCM on 64 KiB takes some tens of microseconds); larger inputs,
/// which a raised `max_message_bytes` allows, go to the crypto pool.
const MAX_INLINE_INPUT: usize = 64 * 1024;

/// The lane of a symmetric call on `len` bytes.
fn symmetric_lane(len: usize) -> Lane {
    if len <= MAX_INLINE_INPUT {
        Lane::Inline
    } else {
        Lane::Fast
    }
}

/// Each client connection's backend: its own session key table over the
/// service's shared budget.
pub type ClientConnections = crate::connection::Connections<EmbeddedBackend>;

/// The PKCS#11 backend service: a cheap handle, clone freely.
///
/// Session keys belong to the connection that made them: a request over a
/// tracked connection ([`crate::connection`]) runs on that connection's
/// own backend, whose table holds only its keys (another connection's
/// handle is CKR_KEY_HANDLE_INVALID there) and is dropped, wiping them,
/// when the connection closes. Untracked requests (TCP, in-process tests)
/// share one backend. All tables share one budget of
/// `hsm_core::token::MAX_SESSION_KEYS`.
#[derive(Clone)]
pub struct Pkcs11Service {
    kms: KmsService,
    backend: Arc<EmbeddedBackend>,
    budget: Arc<SessionKeyBudget>,
    connections: Arc<ClientConnections>,
}

impl std::fmt::Debug for Pkcs11Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Service").finish_non_exhaustive()
    }
}

impl Pkcs11Service {
    /// A service over the store of `kms`, sharing its limits and pool.
    pub fn new(kms: KmsService) -> Self {
        Self::with_connections(kms, Arc::default())
    }

    /// A service whose session keys live per connection of `connections`
    /// (the registry the Unix listener tracks its connections in).
    pub fn with_connections(kms: KmsService, connections: Arc<ClientConnections>) -> Self {
        let budget = Arc::new(SessionKeyBudget::new());
        let backend = Arc::new(EmbeddedBackend::over_hsm_sharing(
            Arc::clone(kms.hsm()),
            Arc::clone(&budget),
        ));
        Pkcs11Service {
            kms,
            backend,
            budget,
            connections,
        }
    }

    /// The backend of the request being handled: its connection's.
    fn backend(&self) -> Result<Arc<EmbeddedBackend>, Status> {
        let Some(id) = crate::connection::current() else {
            return Ok(Arc::clone(&self.backend));
        };
        self.connections
            .state(id, || {
                EmbeddedBackend::over_hsm_sharing(
                    Arc::clone(self.kms.hsm()),
                    Arc::clone(&self.budget),
                )
            })
            .ok_or_else(|| Status::unavailable("the client connection is closed"))
    }

    async fn run<T, F>(&self, lane: Lane, op: &'static str, f: F) -> Result<Response<T>, Status>
    where
        F: FnOnce(&EmbeddedBackend) -> hsm_core::pkcs11::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let backend = self.backend()?;
        self.kms
            .run_job(lane, op, move || f(&backend), status::from_pkcs11)
            .await
    }
}

/// A token's objects as they changed, on the wire.
fn changes_to_wire(
    changes: hsm_core::pkcs11::ObjectChanges,
) -> hsm_core::pkcs11::Result<pb::P11LoadChangesResponse> {
    let scoped = changes.scope.is_some();
    let scope = changes.scope.unwrap_or_default();
    Ok(pb::P11LoadChangesResponse {
        generation: changes.generation,
        scoped,
        scope_keys: scope.keys,
        scope_objects: scope.objects,
        objects: changes
            .objects
            .into_iter()
            .map(|o| wire::object_to_wire(&o))
            .collect(),
    })
}

fn len(value: u32) -> usize {
    value as usize
}

#[tonic::async_trait]
impl Pkcs11Backend for Pkcs11Service {
    async fn tokens(
        &self,
        _request: Request<pb::P11TokensRequest>,
    ) -> Result<Response<pb::P11TokensResponse>, Status> {
        self.run(Lane::Fast, "P11Tokens", |b| {
            let tokens = b
                .tokens()?
                .into_iter()
                .map(|t| pb::P11Token {
                    serial: t.serial,
                    label: t.label,
                    user_pin_initialized: t.user_pin_initialized,
                    // CK_FLAGS is a C unsigned long: u64 here, u32 elsewhere.
                    #[allow(clippy::unnecessary_cast)]
                    pin_flags: t.pin_flags as u64,
                })
                .collect();
            Ok(pb::P11TokensResponse { tokens })
        })
        .await
    }

    async fn init_token(
        &self,
        request: Request<pb::P11InitTokenRequest>,
    ) -> Result<Response<pb::P11InitTokenResponse>, Status> {
        let r = request.into_inner();
        let so_pin = Zeroizing::new(r.so_pin);
        self.run(Lane::Slow, "P11InitToken", move |b| {
            let serial = b.init_token(r.existing.as_deref(), &r.label, &so_pin)?;
            Ok(pb::P11InitTokenResponse { serial })
        })
        .await
    }

    async fn login(
        &self,
        request: Request<pb::P11LoginRequest>,
    ) -> Result<Response<pb::P11Empty>, Status> {
        let r = request.into_inner();
        let pin = Zeroizing::new(r.pin);
        self.run(Lane::Slow, "P11Login", move |b| {
            b.login(&r.token, wire::user_from_wire(r.user)?, &pin)?;
            Ok(pb::P11Empty {})
        })
        .await
    }

    async fn init_pin(
        &self,
        request: Request<pb::P11InitPinRequest>,
    ) -> Result<Response<pb::P11Empty>, Status> {
        let r = request.into_inner();
        let pin = Zeroizing::new(r.pin);
        self.run(Lane::Slow, "P11InitPin", move |b| {
            b.init_pin(&r.token, &pin)?;
            Ok(pb::P11Empty {})
        })
        .await
    }

    async fn set_pin(
        &self,
        request: Request<pb::P11SetPinRequest>,
    ) -> Result<Response<pb::P11Empty>, Status> {
        let r = request.into_inner();
        let old = Zeroizing::new(r.old_pin);
        let new = Zeroizing::new(r.new_pin);
        self.run(Lane::Slow, "P11SetPin", move |b| {
            b.set_pin(&r.token, wire::user_from_wire(r.user)?, &old, &new)?;
            Ok(pb::P11Empty {})
        })
        .await
    }

    async fn load_objects(
        &self,
        request: Request<pb::P11TokenRequest>,
    ) -> Result<Response<pb::P11LoadObjectsResponse>, Status> {
        let r = request.into_inner();
        self.run(Lane::Fast, "P11LoadObjects", move |b| {
            let objects = b
                .load_objects(&r.token)?
                .into_iter()
                .map(|o| wire::object_to_wire(&o))
                .collect();
            Ok(pb::P11LoadObjectsResponse { objects })
        })
        .await
    }

    async fn store_object(
        &self,
        request: Request<pb::P11StoreObjectRequest>,
    ) -> Result<Response<pb::P11ObjectIdResponse>, Status> {
        let r = request.into_inner();
        self.run(Lane::Fast, "P11StoreObject", move |b| {
            let attrs = hsm_core::pkcs11::attrs::decode(&r.attrs)?;
            let key = r.key.map(|k| wire::key_from_wire(Some(k))).transpose()?;
            let id = b.store_object(&r.token, &attrs, key.as_ref())?;
            Ok(pb::P11ObjectIdResponse { id })
        })
        .await
    }

    async fn update_object(
        &self,
        request: Request<pb::P11UpdateObjectRequest>,
    ) -> Result<Response<pb::P11Empty>, Status> {
        let r = request.into_inner();
        self.run(Lane::Fast, "P11UpdateObject", move |b| {
            let attrs = hsm_core::pkcs11::attrs::decode(&r.attrs)?;
            b.update_object(&r.token, &r.id, &attrs)?;
            Ok(pb::P11Empty {})
        })
        .await
    }

    async fn destroy_object(
        &self,
        request: Request<pb::P11ObjectRequest>,
    ) -> Result<Response<pb::P11Empty>, Status> {
        // A token object: a synthesised key object's id names its key.
        let call = self.caller_of(&request).ok().map(|caller| {
            let key = request
                .get_ref()
                .id
                .strip_prefix("kms:")
                .map(|k| k.trim_end_matches(":pub"));
            self.key_call(&caller, &request, "C_DestroyObject", None, key)
        });
        let r = request.into_inner();
        self.run_recorded(Lane::Fast, "P11DestroyObject", call, move |b| {
            b.destroy_object(&r.token, &r.id)?;
            Ok(pb::P11Empty {})
        })
        .await
    }

    async fn generate_random(
        &self,
        request: Request<pb::P11GenerateRandomRequest>,
    ) -> Result<Response<pb::P11BytesResponse>, Status> {
        let n = len(request.into_inner().len);
        self.run(symmetric_lane(n), "P11GenerateRandom", move |b| {
            if n > MAX_RANDOM {
                return Err(Pkcs11Error::ArgumentsBad(
                    "at most 1 MiB of random per call",
                ));
            }
            let mut data = vec![0u8; n];
            b.generate_random(&mut data)?;
            Ok(pb::P11BytesResponse { data })
        })
        .await
    }

    async fn generate_secret_key(
        &self,
        request: Request<pb::P11GenerateSecretKeyRequest>,
    ) -> Result<Response<pb::P11KeyHandle>, Status> {
        let caller = self.caller_of(&request)?;
        let to_token = request.get_ref().token_label.is_some();
        let call = self.creation_call(&caller, &request, to_token, "C_GenerateKey")?;
        let r = request.into_inner();
        self.run_recorded(Lane::Fast, "P11GenerateSecretKey", call, move |b| {
            let key = if r.readable {
                b.make_readable_secret(r.token_label.as_deref(), r.aes, len(r.len), None)?
            } else {
                b.generate_secret_key(r.token_label.as_deref(), r.aes, len(r.len), r.extractable)?
            };
            Ok(wire::key_to_wire(&key))
        })
        .await
        .and_then(|response| {
            self.adopt_created(&caller, &response)?;
            Ok(response)
        })
    }

    async fn import_secret_key(
        &self,
        request: Request<pb::P11ImportSecretKeyRequest>,
    ) -> Result<Response<pb::P11KeyHandle>, Status> {
        let caller = self.caller_of(&request)?;
        let to_token = request.get_ref().token_label.is_some();
        let call = self.creation_call(&caller, &request, to_token, "C_CreateObject")?;
        let r = request.into_inner();
        let value = Zeroizing::new(r.value);
        self.run_recorded(Lane::Fast, "P11ImportSecretKey", call, move |b| {
            let key = if r.readable {
                b.make_readable_secret(r.token_label.as_deref(), r.aes, value.len(), Some(&value))?
            } else {
                b.import_secret_key(r.token_label.as_deref(), r.aes, &value, r.extractable)?
            };
            Ok(wire::key_to_wire(&key))
        })
        .await
        .and_then(|response| {
            self.adopt_created(&caller, &response)?;
            Ok(response)
        })
    }

    async fn hmac(
        &self,
        request: Request<pb::P11HmacRequest>,
    ) -> Result<Response<pb::P11BytesResponse>, Status> {
        let caller = self.caller_of(&request)?;
        let key = request.get_ref().key.as_ref();
        let call = self.use_call(&caller, &request, key, "C_Sign", "kms:GenerateMac");
        let r = request.into_inner();
        let data = Zeroizing::new(r.data);
        self.run_recorded(symmetric_lane(data.len()), "P11Hmac", call, move |b| {
            let key = wire::key_from_wire(r.key)?;
            let data = b.hmac(&key, len(r.hash_len), &data)?;
            Ok(pb::P11BytesResponse { data })
        })
        .await
    }

    async fn hmac_verify(
        &self,
        request: Request<pb::P11HmacVerifyRequest>,
    ) -> Result<Response<pb::P11BoolResponse>, Status> {
        let caller = self.caller_of(&request)?;
        let key = request.get_ref().key.as_ref();
        let call = self.use_call(&caller, &request, key, "C_Verify", "kms:VerifyMac");
        let r = request.into_inner();
        let data = Zeroizing::new(r.data);
        self.run_recorded(
            symmetric_lane(data.len()),
            "P11HmacVerify",
            call,
            move |b| {
                let key = wire::key_from_wire(r.key)?;
                let ok = verified(b.hmac_verify(&key, len(r.hash_len), &data, &r.mac)?)?;
                Ok(pb::P11BoolResponse { ok })
            },
        )
        .await
    }

    async fn destroy_key(
        &self,
        request: Request<pb::P11KeyHandle>,
    ) -> Result<Response<pb::P11Empty>, Status> {
        let call = self.caller_of(&request).ok().and_then(|caller| {
            let key = authz::stored(Some(request.get_ref()))?;
            Some(self.key_call(&caller, &request, "C_DestroyObject", None, Some(key)))
        });
        let r = request.into_inner();
        self.run_recorded(Lane::Fast, "P11DestroyKey", call, move |b| {
            b.destroy_key(&wire::key_from_wire(Some(r))?)?;
            Ok(pb::P11Empty {})
        })
        .await
    }

    async fn secret_len(
        &self,
        request: Request<pb::P11KeyHandle>,
    ) -> Result<Response<pb::P11LenResponse>, Status> {
        let r = request.into_inner();
        self.run(Lane::Inline, "P11SecretLen", move |b| {
            let n = b.secret_len(&wire::key_from_wire(Some(r))?)?;
            Ok(pb::P11LenResponse { len: n as u64 })
        })
        .await
    }

    async fn aes(
        &self,
        request: Request<pb::P11AesRequest>,
    ) -> Result<Response<pb::P11BytesResponse>, Status> {
        let caller = self.caller_of(&request)?;
        let call = self.crypt_call(
            &caller,
            &request,
            request.get_ref().key.as_ref(),
            request.get_ref().encrypt,
        );
        let r = request.into_inner();
        let data = Zeroizing::new(r.data);
        self.run_recorded(symmetric_lane(data.len()), "P11Aes", call, move |b| {
            let key = wire::key_from_wire(r.key)?;
            let mode = wire::aes_from_wire(r.mode)?;
            let mut out = b.aes(&key, &mode, r.encrypt, &data)?;
            // Handed to tonic, which sends and frees it.
            Ok(pb::P11BytesResponse {
                data: std::mem::take(&mut *out),
            })
        })
        .await
    }

    async fn rsa_oaep(
        &self,
        request: Request<pb::P11RsaOaepRequest>,
    ) -> Result<Response<pb::P11BytesResponse>, Status> {
        let caller = self.caller_of(&request)?;
        let call = self.crypt_call(
            &caller,
            &request,
            request.get_ref().key.as_ref(),
            request.get_ref().encrypt,
        );
        let r = request.into_inner();
        let data = Zeroizing::new(r.data);
        self.run_recorded(Lane::Fast, "P11RsaOaep", call, move |b| {
            let key = wire::key_from_wire(r.key)?;
            let mut out = b.rsa_oaep(&key, r.sha256, r.encrypt, &data, &r.label)?;
            Ok(pb::P11BytesResponse {
                data: std::mem::take(&mut *out),
            })
        })
        .await
    }

    async fn wrap(
        &self,
        request: Request<pb::P11WrapRequest>,
    ) -> Result<Response<pb::P11BytesResponse>, Status> {
        let caller = self.caller_of(&request)?;
        let key = request.get_ref().wrapping.as_ref();
        let call = self.use_call(&caller, &request, key, "C_WrapKey", "kms:Encrypt");
        let r = request.into_inner();
        self.run_recorded(Lane::Fast, "P11Wrap", call, move |b| {
            let wrapping = wire::key_from_wire(r.wrapping)?;
            let target = wire::key_from_wire(r.target)?;
            let data = b.wrap(&wrapping, wire::wrap_from_wire(r.mode)?, &target)?;
            Ok(pb::P11BytesResponse { data })
        })
        .await
    }

    async fn unwrap(
        &self,
        request: Request<pb::P11UnwrapRequest>,
    ) -> Result<Response<pb::P11UnwrapResponse>, Status> {
        let caller = self.caller_of(&request)?;
        let unwrapping = request.get_ref().unwrapping.as_ref();
        let to_token = request.get_ref().token_label.is_some();
        let call = self.unwrap_call(&caller, &request, unwrapping, to_token)?;
        let r = request.into_inner();
        self.run_recorded(Lane::Fast, "P11Unwrap", call, move |b| {
            let unwrapping = wire::key_from_wire(r.unwrapping)?;
            let (key, n) = b.unwrap(
                &unwrapping,
                wire::wrap_from_wire(r.mode)?,
                &r.wrapped,
                r.token_label.as_deref(),
                r.extractable,
            )?;
            Ok(pb::P11UnwrapResponse {
                key: Some(wire::key_to_wire(&key)),
                len: n as u64,
            })
        })
        .await
        .and_then(|response| {
            self.adopt_created(&caller, &response)?;
            Ok(response)
        })
    }

    async fn generate_key_pair(
        &self,
        request: Request<pb::P11GenerateKeyPairRequest>,
    ) -> Result<Response<pb::P11GenerateKeyPairResponse>, Status> {
        let caller = self.caller_of(&request)?;
        // An empty label asks for a session key pair.
        let to_token = !request.get_ref().token_label.is_empty();
        let call = self.creation_call(&caller, &request, to_token, "C_GenerateKeyPair")?;
        let r = request.into_inner();
        self.run_recorded(Lane::Slow, "P11GenerateKeyPair", call, move |b| {
            let spec = wire::spec_from_wire(&r.key_spec)?;
            let usage = wire::usage_from_wire(&r.key_usage)?;
            let (key, public_key) = if spec == hsm_core::KeySpec::RsaOtherSize {
                b.generate_rsa_key_pair(&r.token_label, r.modulus_bits, usage)?
            } else {
                b.generate_key_pair(&r.token_label, spec, usage)?
            };
            Ok(pb::P11GenerateKeyPairResponse {
                key: Some(wire::key_to_wire(&key)),
                public_key,
            })
        })
        .await
        .and_then(|response| {
            self.adopt_created(&caller, &response)?;
            Ok(response)
        })
    }

    async fn sign(
        &self,
        request: Request<pb::P11SignRequest>,
    ) -> Result<Response<pb::P11BytesResponse>, Status> {
        let caller = self.caller_of(&request)?;
        let key = request.get_ref().key.as_ref();
        let call = self.use_call(&caller, &request, key, "C_Sign", "kms:Sign");
        let mut r = request.into_inner();
        // The data to sign: wiped once signed.
        let input = Zeroizing::new(std::mem::take(&mut r.input));
        // RSA private operations take about a millisecond: the pool's.
        let lane = match &r.how {
            Some(pb::P11RawSign {
                how: Some(pb::p11_raw_sign::How::EcdsaDigest(_) | pb::p11_raw_sign::How::Eddsa(_)),
            }) => Lane::Inline,
            _ => Lane::Fast,
        };
        self.run_recorded(lane, "P11Sign", call, move |b| {
            let key = wire::key_from_wire(r.key)?;
            let data = b.sign(&key, wire::sign_from_wire(r.how)?, &input)?;
            Ok(pb::P11BytesResponse { data })
        })
        .await
    }

    async fn verify(
        &self,
        request: Request<pb::P11VerifyRequest>,
    ) -> Result<Response<pb::P11BoolResponse>, Status> {
        let caller = self.caller_of(&request)?;
        let key = request.get_ref().key.as_ref();
        let call = self.use_call(&caller, &request, key, "C_Verify", "kms:Verify");
        let mut r = request.into_inner();
        let input = Zeroizing::new(std::mem::take(&mut r.input));
        self.run_recorded(Lane::Inline, "P11Verify", call, move |b| {
            let key = wire::key_from_wire(r.key)?;
            let ok =
                verified(b.verify(&key, wire::sign_from_wire(r.how)?, &input, &r.signature)?)?;
            Ok(pb::P11BoolResponse { ok })
        })
        .await
    }

    async fn generation(
        &self,
        _request: Request<pb::P11Empty>,
    ) -> Result<Response<pb::P11GenerationResponse>, Status> {
        self.run(Lane::Inline, "P11Generation", |b| {
            Ok(pb::P11GenerationResponse {
                generation: b.generation()?,
            })
        })
        .await
    }

    async fn rsa_pkcs1_crypt(
        &self,
        request: Request<pb::P11RsaPkcs1CryptRequest>,
    ) -> Result<Response<pb::P11BytesResponse>, Status> {
        let caller = self.caller_of(&request)?;
        let call = self.crypt_call(
            &caller,
            &request,
            request.get_ref().key.as_ref(),
            request.get_ref().encrypt,
        );
        let r = request.into_inner();
        let data = Zeroizing::new(r.data);
        // Decryption is a private-key operation: the pool's.
        self.run_recorded(Lane::Fast, "P11RsaPkcs1Crypt", call, move |b| {
            let key = wire::key_from_wire(r.key)?;
            let mut out = if r.raw {
                b.rsa_x509_crypt(&key, r.encrypt, &data)?
            } else {
                b.rsa_pkcs1_crypt(&key, r.encrypt, &data)?
            };
            Ok(pb::P11BytesResponse {
                data: std::mem::take(&mut *out),
            })
        })
        .await
    }

    async fn copy_key(
        &self,
        request: Request<pb::P11CopyKeyRequest>,
    ) -> Result<Response<pb::P11KeyHandle>, Status> {
        let call = self.caller_of(&request).ok().and_then(|caller| {
            let source = authz::stored(request.get_ref().key.as_ref());
            (source.is_some() || request.get_ref().token_label.is_some())
                .then(|| self.key_call(&caller, &request, "C_CopyObject", None, source))
        });
        let r = request.into_inner();
        let lane = if r.token_label.is_some() {
            Lane::Slow
        } else {
            Lane::Inline
        };
        self.run_recorded(lane, "P11CopyKey", call, move |b| {
            let key = wire::key_from_wire(r.key)?;
            let copy = if r.readable {
                b.copy_readable_key(&key, r.token_label.as_deref(), r.aes)?
            } else {
                b.copy_key(&key, r.token_label.as_deref(), r.aes, r.extractable)?
            };
            Ok(wire::key_to_wire(&copy))
        })
        .await
    }

    async fn secret_value(
        &self,
        request: Request<pb::P11KeyHandle>,
    ) -> Result<Response<pb::P11BytesResponse>, Status> {
        let call = self.caller_of(&request).ok().and_then(|caller| {
            let key = authz::stored(Some(request.get_ref()))?;
            Some(self.key_call(&caller, &request, "C_GetAttributeValue", None, Some(key)))
        });
        let r = request.into_inner();
        self.run_recorded(Lane::Inline, "P11SecretValue", call, move |b| {
            let value = b.secret_value(&wire::key_from_wire(Some(r))?)?;
            Ok(pb::P11BytesResponse {
                data: value.to_vec(),
            })
        })
        .await
    }

    async fn seal_secret(
        &self,
        request: Request<pb::P11SealSecretRequest>,
    ) -> Result<Response<pb::P11Empty>, Status> {
        let call = self.caller_of(&request).ok().and_then(|caller| {
            let key = authz::stored(request.get_ref().key.as_ref())?;
            Some(self.key_call(&caller, &request, "C_SetAttributeValue", None, Some(key)))
        });
        let r = request.into_inner();
        self.run_recorded(Lane::Slow, "P11SealSecret", call, move |b| {
            b.seal_secret(&wire::key_from_wire(r.key)?, r.unextractable)?;
            Ok(pb::P11Empty {})
        })
        .await
    }

    async fn stats(
        &self,
        _request: Request<pb::P11Empty>,
    ) -> Result<Response<pb::P11StatsResponse>, Status> {
        Ok(Response::new(pb::P11StatsResponse {
            session_keys: self.budget.live() as u64,
            connections: self.connections.count() as u64,
        }))
    }

    async fn find_objects(
        &self,
        request: Request<pb::P11FindObjectsRequest>,
    ) -> Result<Response<pb::P11FindObjectsResponse>, Status> {
        let r = request.into_inner();
        self.run(Lane::Fast, "P11FindObjects", move |b| {
            let template: Vec<_> = hsm_core::pkcs11::attrs::decode(&r.template)?
                .into_iter()
                .collect();
            let (generation, objects) = b.find_objects_now(&r.token, &template)?;
            let objects = objects
                .into_iter()
                .map(|o| wire::object_to_wire(&o))
                .collect();
            Ok(pb::P11FindObjectsResponse {
                generation,
                objects,
            })
        })
        .await
    }

    async fn refresh_objects(
        &self,
        request: Request<pb::P11RefreshObjectsRequest>,
    ) -> Result<Response<pb::P11LoadChangesResponse>, Status> {
        let r = request.into_inner();
        self.run(Lane::Fast, "P11RefreshObjects", move |b| {
            let held = hsm_core::pkcs11::ChangeScope {
                keys: r.held_keys,
                objects: r.held_objects,
            };
            changes_to_wire(b.refresh_objects(&r.token, r.since, &held)?)
        })
        .await
    }

    async fn load_changes(
        &self,
        request: Request<pb::P11LoadChangesRequest>,
    ) -> Result<Response<pb::P11LoadChangesResponse>, Status> {
        let r = request.into_inner();
        self.run(Lane::Fast, "P11LoadChanges", move |b| {
            changes_to_wire(b.load_changes(&r.token, r.since)?)
        })
        .await
    }

    type PipeStream = pipe::PipeReplies;

    async fn derive(
        &self,
        request: Request<pb::P11DeriveRequest>,
    ) -> Result<Response<pb::P11DeriveResponse>, Status> {
        let caller = self.caller_of(&request)?;
        // One record: the base key's use, or the other key's refusal.
        const ACTION: &str = "kms:DeriveSharedSecret";
        let (base, other) = (
            request.get_ref().base.as_ref(),
            request.get_ref().other.as_ref(),
        );
        let to_token = request
            .get_ref()
            .keys
            .iter()
            .any(|k| k.token_label.is_some());
        let other_refused = authz::stored(other).filter(|key| {
            self.kms
                .hsm()
                .gate(&caller)
                .pkcs11_may_use(ACTION, key)
                .is_err()
        });
        let call = match other_refused {
            Some(key) => {
                Some(self.key_call(&caller, &request, "C_DeriveKey", Some(ACTION), Some(key)))
            }
            None => match self.use_call(&caller, &request, base, "C_DeriveKey", ACTION) {
                Some(call) => Some(call),
                None => self.creation_call(&caller, &request, to_token, "C_DeriveKey")?,
            },
        };
        let r = request.into_inner();
        let lane = if to_token { Lane::Slow } else { Lane::Fast };
        let response = self
            .run_recorded(lane, "P11Derive", call, move |b| {
                let base = wire::key_from_wire(r.base)?;
                let other = r.other.map(|o| wire::key_from_wire(Some(o))).transpose()?;
                let op = wire::derive_from_wire(r.op)?;
                if let Some(len) = r.data_len {
                    let mut data = b.derive_data(&base, other.as_ref(), &op, len as usize)?;
                    return Ok(pb::P11DeriveResponse {
                        keys: Vec::new(),
                        data: std::mem::take(&mut *data),
                    });
                }
                let new: Vec<_> = r.keys.into_iter().map(wire::new_secret_from_wire).collect();
                let keys = b.derive(&base, other.as_ref(), &op, &new)?;
                Ok(pb::P11DeriveResponse {
                    keys: keys.iter().map(wire::key_to_wire).collect(),
                    data: Vec::new(),
                })
            })
            .await?;
        for key in &response.get_ref().keys {
            self.adopt_key(&caller, key)?;
        }
        Ok(response)
    }

    async fn import_private_key(
        &self,
        request: Request<pb::P11ImportPrivateKeyRequest>,
    ) -> Result<Response<pb::P11ImportPrivateKeyResponse>, Status> {
        let caller = self.caller_of(&request)?;
        let unwrapping = request.get_ref().unwrapping.as_ref();
        let function = if unwrapping.is_some() {
            "C_UnwrapKey"
        } else {
            "C_CreateObject"
        };
        let call = match self.use_call(&caller, &request, unwrapping, function, "kms:Decrypt") {
            Some(call) => Some(call),
            None => {
                let to_token = request.get_ref().token_label.is_some();
                self.creation_call(&caller, &request, to_token, function)?
            }
        };
        let mut r = request.into_inner();
        let pkcs8 = Zeroizing::new(std::mem::take(&mut r.pkcs8));
        self.run_recorded(Lane::Slow, "P11ImportPrivateKey", call, move |b| {
            let kind = wire::kind_from_wire(&r.kind)?;
            let usages = wire::usage_from_wire(&r.key_usage)?;
            let made = match r.unwrapping {
                None => b.import_private_key(r.token_label.as_deref(), kind, &pkcs8, usages)?,
                Some(k) => b.unwrap_private_key(
                    &wire::key_from_wire(Some(k))?,
                    &wire::transport_from_wire(r.transport)?,
                    &r.wrapped,
                    r.token_label.as_deref(),
                    kind,
                    usages,
                )?,
            };
            Ok(wire::imported_to_wire(&made))
        })
        .await
        .and_then(|response| {
            self.adopt_created(&caller, &response)?;
            Ok(response)
        })
    }

    async fn wrap_rsa(
        &self,
        request: Request<pb::P11WrapRsaRequest>,
    ) -> Result<Response<pb::P11BytesResponse>, Status> {
        let caller = self.caller_of(&request)?;
        let key = request.get_ref().wrapping.as_ref();
        let call = self.use_call(&caller, &request, key, "C_WrapKey", "kms:Encrypt");
        let r = request.into_inner();
        self.run_recorded(Lane::Fast, "P11WrapRsa", call, move |b| {
            let wrapping = wire::key_from_wire(r.wrapping)?;
            let target = wire::key_from_wire(r.target)?;
            let transport = wire::transport_from_wire(r.transport)?;
            let data = b.wrap_rsa(&wrapping, &transport, &target)?;
            Ok(pb::P11BytesResponse { data })
        })
        .await
    }

    async fn unwrap_secret(
        &self,
        request: Request<pb::P11UnwrapSecretRequest>,
    ) -> Result<Response<pb::P11UnwrapResponse>, Status> {
        let caller = self.caller_of(&request)?;
        let unwrapping = request.get_ref().unwrapping.as_ref();
        let to_token = request.get_ref().token_label.is_some();
        let call = self.unwrap_call(&caller, &request, unwrapping, to_token)?;
        let r = request.into_inner();
        self.run_recorded(Lane::Fast, "P11UnwrapSecret", call, move |b| {
            let unwrapping = wire::key_from_wire(r.unwrapping)?;
            let (key, n) = b.unwrap_secret(
                &unwrapping,
                &wire::transport_from_wire(r.transport)?,
                &r.wrapped,
                r.token_label.as_deref(),
                r.aes,
                r.extractable,
            )?;
            Ok(pb::P11UnwrapResponse {
                key: Some(wire::key_to_wire(&key)),
                len: n as u64,
            })
        })
        .await
        .and_then(|response| {
            self.adopt_created(&caller, &response)?;
            Ok(response)
        })
    }

    async fn cmac(
        &self,
        request: Request<pb::P11CmacRequest>,
    ) -> Result<Response<pb::P11BytesResponse>, Status> {
        let caller = self.caller_of(&request)?;
        let key = request.get_ref().key.as_ref();
        let call = self.use_call(&caller, &request, key, "C_Sign", "kms:GenerateMac");
        let r = request.into_inner();
        let data = Zeroizing::new(r.data);
        self.run_recorded(symmetric_lane(data.len()), "P11Cmac", call, move |b| {
            let key = wire::key_from_wire(r.key)?;
            let data = b.cmac(&key, &data, len(r.mac_len))?;
            Ok(pb::P11BytesResponse { data })
        })
        .await
    }

    async fn cmac_verify(
        &self,
        request: Request<pb::P11CmacVerifyRequest>,
    ) -> Result<Response<pb::P11BoolResponse>, Status> {
        let caller = self.caller_of(&request)?;
        let key = request.get_ref().key.as_ref();
        let call = self.use_call(&caller, &request, key, "C_Verify", "kms:VerifyMac");
        let r = request.into_inner();
        let data = Zeroizing::new(r.data);
        self.run_recorded(
            symmetric_lane(data.len()),
            "P11CmacVerify",
            call,
            move |b| {
                let key = wire::key_from_wire(r.key)?;
                let ok = verified(b.cmac_verify(&key, &data, &r.mac)?)?;
                Ok(pb::P11BoolResponse { ok })
            },
        )
        .await
    }

    async fn ecdh_derive(
        &self,
        request: Request<pb::P11EcdhDeriveRequest>,
    ) -> Result<Response<pb::P11KeyHandle>, Status> {
        let caller = self.caller_of(&request)?;
        let key = request.get_ref().key.as_ref();
        let call = match self.use_call(
            &caller,
            &request,
            key,
            "C_DeriveKey",
            "kms:DeriveSharedSecret",
        ) {
            Some(call) => Some(call),
            None => {
                let to_token = request.get_ref().token_label.is_some();
                self.creation_call(&caller, &request, to_token, "C_DeriveKey")?
            }
        };
        let r = request.into_inner();
        let lane = if r.token_label.is_some() {
            Lane::Slow
        } else {
            Lane::Fast
        };
        self.run_recorded(lane, "P11EcdhDerive", call, move |b| {
            let key = wire::key_from_wire(r.key)?;
            let derived = b.ecdh_derive(
                &key,
                &r.peer_point,
                wire::ecdh_kdf_from_wire(r.kdf_hash_len)?,
                &r.shared,
                r.token_label.as_deref(),
                r.aes,
                len(r.len),
                r.extractable,
                r.readable,
            )?;
            Ok(wire::key_to_wire(&derived))
        })
        .await
        .and_then(|response| {
            self.adopt_created(&caller, &response)?;
            Ok(response)
        })
    }

    async fn ml_kem_encapsulate(
        &self,
        request: Request<pb::P11MlKemEncapsulateRequest>,
    ) -> Result<Response<pb::P11MlKemEncapsulateResponse>, Status> {
        let caller = self.caller_of(&request)?;
        let to_token = request
            .get_ref()
            .new_key
            .as_ref()
            .is_some_and(|n| n.token_label.is_some());
        let key = request.get_ref().key.as_ref();
        let call = match self.use_call(
            &caller,
            &request,
            key,
            "C_EncapsulateKey",
            "kms:Encapsulate",
        ) {
            Some(call) => Some(call),
            None => self.creation_call(&caller, &request, to_token, "C_EncapsulateKey")?,
        };
        let r = request.into_inner();
        self.run_recorded(Lane::Fast, "P11MlKemEncapsulate", call, move |b| {
            let key = wire::key_from_wire(r.key)?;
            let new = wire::new_secret_from_wire(r.new_key.unwrap_or_default());
            let (ciphertext, made) = b.ml_kem_encapsulate(&key, &new)?;
            Ok(pb::P11MlKemEncapsulateResponse {
                key: Some(wire::key_to_wire(&made)),
                ciphertext,
            })
        })
        .await
        .and_then(|response| {
            if let Some(made) = &response.get_ref().key {
                self.adopt_key(&caller, made)?;
            }
            Ok(response)
        })
    }

    async fn ml_kem_decapsulate(
        &self,
        request: Request<pb::P11MlKemDecapsulateRequest>,
    ) -> Result<Response<pb::P11KeyHandle>, Status> {
        let caller = self.caller_of(&request)?;
        let to_token = request
            .get_ref()
            .new_key
            .as_ref()
            .is_some_and(|n| n.token_label.is_some());
        let key = request.get_ref().key.as_ref();
        let call = match self.use_call(
            &caller,
            &request,
            key,
            "C_DecapsulateKey",
            "kms:Decapsulate",
        ) {
            Some(call) => Some(call),
            None => self.creation_call(&caller, &request, to_token, "C_DecapsulateKey")?,
        };
        let r = request.into_inner();
        self.run_recorded(Lane::Fast, "P11MlKemDecapsulate", call, move |b| {
            let key = wire::key_from_wire(r.key)?;
            let new = wire::new_secret_from_wire(r.new_key.unwrap_or_default());
            let made = b.ml_kem_decapsulate(&key, &r.ciphertext, &new)?;
            Ok(wire::key_to_wire(&made))
        })
        .await
        .and_then(|response| {
            self.adopt_created(&caller, &response)?;
            Ok(response)
        })
    }

    async fn pipe(
        &self,
        request: Request<tonic::Streaming<pb::P11PipeCall>>,
    ) -> Result<Response<Self::PipeStream>, Status> {
        self.open_pipe(request)
    }

    type ChunkedStream = chunked::ChunkedReplies;

    async fn chunked(
        &self,
        request: Request<tonic::Streaming<pb::P11Chunk>>,
    ) -> Result<Response<Self::ChunkedStream>, Status> {
        self.chunked_call(request).await
    }
}

mod authz;
pub mod chunked;
pub mod pipe;
#[cfg(test)]
mod tests;

/// A check's result as the recorded call ends: a signature or MAC that
/// does not verify fails the call with CKR_SIGNATURE_INVALID (which the
/// module returns as is), so the call's audit record carries that
/// errorCode rather than a success.
fn verified(ok: bool) -> hsm_core::pkcs11::Result<bool> {
    if ok {
        Ok(true)
    } else {
        Err(Pkcs11Error::rv_with(
            cryptoki_sys::CKR_SIGNATURE_INVALID,
            "signature does not verify",
        ))
    }
}
