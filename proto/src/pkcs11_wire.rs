//! The PKCS#11 backend's wire format (`tinfoil.v1.Pkcs11Backend`): the
//! conversions between the backend trait's types ([`hsm_core::pkcs11`])
//! and the proto messages, used by both ends (libtinfoil_pkcs11's daemon
//! backend and tinfoild), and the one way a [`Pkcs11Error`] travels in a
//! gRPC status. Feature `pkcs11`.

use hsm_core::pkcs11::sys::*;
use hsm_core::pkcs11::{ckr, Pkcs11Error, Result};
use hsm_core::pkcs11::{AesMode, KeyHandle, KeySpec, PairUsages, RawSign, UserKind, WrapMode};
use hsm_core::pkcs11::{DeriveOp, HkdfSalt, KbkdfField, NewSecret, Prf};
use tonic_types::StatusExt;

use crate::v1 as pb;

/// Longest error text kept from a status, in characters.
const MAX_MESSAGE: usize = 200;

/// A key handle on the wire.
pub fn key_to_wire(key: &KeyHandle) -> pb::P11KeyHandle {
    let kind = match key {
        KeyHandle::Stored(id) => pb::p11_key_handle::Kind::Stored(id.clone()),
        KeyHandle::Session(id) => pb::p11_key_handle::Kind::Session(*id),
    };
    pb::P11KeyHandle { kind: Some(kind) }
}

/// A key handle from the wire; a missing one is CKR_ARGUMENTS_BAD.
pub fn key_from_wire(key: Option<pb::P11KeyHandle>) -> Result<KeyHandle> {
    match key.and_then(|k| k.kind) {
        Some(pb::p11_key_handle::Kind::Stored(id)) => Ok(KeyHandle::Stored(id)),
        Some(pb::p11_key_handle::Kind::Session(id)) => Ok(KeyHandle::Session(id)),
        None => Err(Pkcs11Error::ArgumentsBad("key handle missing")),
    }
}

/// A stored object on the wire (its attributes encoded as the store
/// keeps them).
pub fn object_to_wire(object: &hsm_core::pkcs11::StoredObject) -> pb::P11Object {
    pb::P11Object {
        id: object.id.clone(),
        attrs: hsm_core::pkcs11::attrs::encode(&object.attrs),
        key: object.key.as_ref().map(key_to_wire),
    }
}

/// A stored object from the wire; undecodable attributes are an error.
pub fn object_from_wire(object: pb::P11Object) -> Result<hsm_core::pkcs11::StoredObject> {
    Ok(hsm_core::pkcs11::StoredObject {
        id: object.id,
        attrs: hsm_core::pkcs11::attrs::decode(&object.attrs)?,
        key: object.key.map(|k| key_from_wire(Some(k))).transpose()?,
    })
}

/// Who logs in, on the wire.
pub fn user_to_wire(user: UserKind) -> i32 {
    match user {
        UserKind::User => pb::P11UserKind::User as i32,
        UserKind::So => pb::P11UserKind::So as i32,
    }
}

/// Who logs in, from the wire.
pub fn user_from_wire(user: i32) -> Result<UserKind> {
    match pb::P11UserKind::try_from(user) {
        Ok(pb::P11UserKind::User) => Ok(UserKind::User),
        Ok(pb::P11UserKind::So) => Ok(UserKind::So),
        Err(_) => Err(ckr!(CKR_USER_TYPE_INVALID)),
    }
}

/// A wrap mode on the wire.
pub fn wrap_to_wire(mode: WrapMode) -> i32 {
    match mode {
        WrapMode::Kw => pb::P11WrapMode::Kw as i32,
        WrapMode::Kwp => pb::P11WrapMode::Kwp as i32,
    }
}

/// A wrap mode from the wire.
pub fn wrap_from_wire(mode: i32) -> Result<WrapMode> {
    match pb::P11WrapMode::try_from(mode) {
        Ok(pb::P11WrapMode::Kw) => Ok(WrapMode::Kw),
        Ok(pb::P11WrapMode::Kwp) => Ok(WrapMode::Kwp),
        Err(_) => Err(ckr!(CKR_MECHANISM_INVALID)),
    }
}

/// An AES mode on the wire.
pub fn aes_to_wire(mode: &AesMode) -> pb::P11AesMode {
    use pb::p11_aes_mode::Mode;
    let mode = match mode {
        AesMode::Ecb => Mode::Ecb(pb::P11Empty {}),
        AesMode::Cbc(iv) => Mode::Cbc(iv.to_vec()),
        AesMode::CbcPad(iv) => Mode::CbcPad(iv.to_vec()),
        AesMode::Ctr {
            block,
            counter_bits,
        } => Mode::Ctr(pb::P11AesCtr {
            block: block.to_vec(),
            counter_bits: *counter_bits,
        }),
        AesMode::Gcm { iv, aad, tag_len } => Mode::Gcm(pb::P11AesGcm {
            iv: iv.clone(),
            aad: aad.clone(),
            tag_len: *tag_len as u32,
        }),
        AesMode::Des3Ecb => Mode::Des3Ecb(pb::P11Empty {}),
        AesMode::Des3Cbc(iv) => Mode::Des3Cbc(iv.to_vec()),
        AesMode::Des3CbcPad(iv) => Mode::Des3CbcPad(iv.to_vec()),
    };
    pb::P11AesMode { mode: Some(mode) }
}

fn des3_iv(bytes: &[u8]) -> Result<[u8; 8]> {
    bytes
        .try_into()
        .map_err(|_| ckr!(CKR_MECHANISM_PARAM_INVALID, "the DES3 IV must be 8 bytes"))
}

fn block(bytes: &[u8]) -> Result<[u8; 16]> {
    bytes
        .try_into()
        .map_err(|_| ckr!(CKR_MECHANISM_PARAM_INVALID, "an AES block is 16 bytes"))
}

/// An AES mode from the wire.
pub fn aes_from_wire(mode: Option<pb::P11AesMode>) -> Result<AesMode> {
    use pb::p11_aes_mode::Mode;
    match mode.and_then(|m| m.mode) {
        Some(Mode::Ecb(_)) => Ok(AesMode::Ecb),
        Some(Mode::Cbc(iv)) => Ok(AesMode::Cbc(block(&iv)?)),
        Some(Mode::CbcPad(iv)) => Ok(AesMode::CbcPad(block(&iv)?)),
        Some(Mode::Ctr(c)) => Ok(AesMode::Ctr {
            block: block(&c.block)?,
            counter_bits: c.counter_bits,
        }),
        Some(Mode::Gcm(g)) => Ok(AesMode::Gcm {
            iv: g.iv,
            aad: g.aad,
            // 0: a sender that predates the field meant the full tag.
            tag_len: match g.tag_len {
                0 => 16,
                n => n as usize,
            },
        }),
        Some(Mode::Des3Ecb(_)) => Ok(AesMode::Des3Ecb),
        Some(Mode::Des3Cbc(iv)) => Ok(AesMode::Des3Cbc(des3_iv(&iv)?)),
        Some(Mode::Des3CbcPad(iv)) => Ok(AesMode::Des3CbcPad(des3_iv(&iv)?)),
        None => Err(ckr!(CKR_MECHANISM_INVALID, "AES mode missing")),
    }
}

/// A raw signature mechanism on the wire.
pub fn sign_to_wire(how: RawSign) -> pb::P11RawSign {
    use pb::p11_raw_sign::How;
    let how = match how {
        RawSign::EcdsaDigest => How::EcdsaDigest(pb::P11Empty {}),
        RawSign::RsaPkcs1DigestInfo => How::RsaPkcs1DigestInfo(pb::P11Empty {}),
        RawSign::RsaPkcs1 => How::RsaPkcs1(pb::P11Empty {}),
        RawSign::RsaPss { hash_len, salt_len } => How::RsaPss(pb::P11RsaPss {
            hash_len: u32::try_from(hash_len).unwrap_or(u32::MAX),
            salt_len: u32::try_from(salt_len).unwrap_or(u32::MAX),
        }),
        RawSign::EdDsa => How::Eddsa(pb::P11Empty {}),
        RawSign::Ed25519ph => How::Ed25519ph(pb::P11Empty {}),
        RawSign::Ed25519ctx => How::Ed25519ctx(pb::P11Empty {}),
        RawSign::RsaX509 => How::RsaX509(pb::P11Empty {}),
        RawSign::MlDsa { deterministic } => How::MlDsa(pb::P11MlDsa { deterministic }),
        RawSign::HashMlDsa {
            deterministic,
            hash,
            prehashed,
        } => How::HashMlDsa(pb::P11HashMlDsa {
            deterministic,
            hash: hash.wire(),
            prehashed,
        }),
    };
    pb::P11RawSign { how: Some(how) }
}

/// A raw signature mechanism from the wire.
pub fn sign_from_wire(how: Option<pb::P11RawSign>) -> Result<RawSign> {
    use pb::p11_raw_sign::How;
    match how.and_then(|h| h.how) {
        Some(How::EcdsaDigest(_)) => Ok(RawSign::EcdsaDigest),
        Some(How::RsaPkcs1DigestInfo(_)) => Ok(RawSign::RsaPkcs1DigestInfo),
        Some(How::RsaPkcs1(_)) => Ok(RawSign::RsaPkcs1),
        Some(How::RsaPss(p)) => Ok(RawSign::RsaPss {
            hash_len: p.hash_len as usize,
            salt_len: p.salt_len as usize,
        }),
        Some(How::Eddsa(_)) => Ok(RawSign::EdDsa),
        Some(How::Ed25519ph(_)) => Ok(RawSign::Ed25519ph),
        Some(How::Ed25519ctx(_)) => Ok(RawSign::Ed25519ctx),
        Some(How::RsaX509(_)) => Ok(RawSign::RsaX509),
        Some(How::MlDsa(p)) => Ok(RawSign::MlDsa {
            deterministic: p.deterministic,
        }),
        Some(How::HashMlDsa(p)) => Ok(RawSign::HashMlDsa {
            deterministic: p.deterministic,
            hash: hsm_core::mechanisms::PreHash::from_wire(p.hash)
                .ok_or(ckr!(CKR_MECHANISM_PARAM_INVALID, "unknown pre-hash"))?,
            prehashed: p.prehashed,
        }),
        None => Err(ckr!(CKR_MECHANISM_INVALID, "signature mechanism missing")),
    }
}

/// A key spec from its KMS name.
pub fn spec_from_wire(spec: &str) -> Result<KeySpec> {
    KeySpec::parse(spec).map_err(|_| ckr!(CKR_TEMPLATE_INCONSISTENT, "unknown key spec"))
}

/// A key pair's usages from their comma-separated KMS names.
pub fn usage_from_wire(usage: &str) -> Result<PairUsages> {
    // An ML-KEM pair has no usage of these (it encapsulates).
    if usage.is_empty() {
        return Ok(PairUsages::default());
    }
    PairUsages::parse(usage).map_err(|_| ckr!(CKR_TEMPLATE_INCONSISTENT, "unknown key usage"))
}

/// A length from the wire, refused when it does not fit this platform.
pub fn len_from_wire(len: u64) -> Result<usize> {
    usize::try_from(len).map_err(|_| Pkcs11Error::ArgumentsBad("length out of range"))
}

/// The `CK_RV` and text a [`Pkcs11Error`] travels as: tinfoild puts them
/// in the status (ErrorInfo reason [`crate::PKCS11_ERROR_REASON`],
/// metadata [`crate::CKR_METADATA_KEY`]).
pub fn error_to_wire(err: &Pkcs11Error) -> (String, String) {
    (err.rv().to_string(), err.to_string())
}

/// The status a `Pipe` reply carries, as the unary call would have
/// returned it (code, message, and the details holding the CK_RV).
pub fn status_of_pipe_error(error: pb::P11PipeError) -> tonic::Status {
    tonic::Status::with_details(
        tonic::Code::from_i32(error.code),
        error.message,
        error.details.into(),
    )
}

/// The error a status from tinfoild stands for. A status carrying a
/// `CK_RV` gives that code; the daemon's own limits and transport
/// failures (no `CK_RV`) give CKR_DEVICE_MEMORY or CKR_DEVICE_ERROR.
pub fn error_from_status(status: &tonic::Status) -> Pkcs11Error {
    let details = status.get_error_details();
    let rv = details
        .error_info()
        .filter(|info| info.reason == crate::PKCS11_ERROR_REASON)
        .and_then(|info| info.metadata.get(crate::CKR_METADATA_KEY))
        .and_then(|rv| rv.parse::<CK_RV>().ok());
    let message = || {
        status
            .message()
            .chars()
            .take(MAX_MESSAGE)
            .collect::<String>()
    };
    match rv {
        Some(CKR_GENERAL_ERROR) => Pkcs11Error::General(format!("tinfoild: {}", message())),
        Some(rv) => Pkcs11Error::rv_with(rv, "reported by tinfoild"),
        None => match status.code() {
            tonic::Code::ResourceExhausted => {
                ckr!(
                    CKR_DEVICE_MEMORY,
                    "tinfoild is busy or the request too large"
                )
            }
            tonic::Code::Unimplemented => ckr!(
                CKR_DEVICE_ERROR,
                "tinfoild does not serve the PKCS#11 backend (too old?)"
            ),
            _ => ckr!(CKR_DEVICE_ERROR, "tinfoild call failed"),
        },
    }
}

/// A derivation on the wire.
pub fn derive_to_wire(op: &DeriveOp) -> pb::P11DeriveOp {
    use pb::p11_derive_op::Op;
    use pb::p11_kbkdf_field::Field;
    let op = match op {
        DeriveOp::Hkdf {
            hash_len,
            extract,
            expand,
            salt,
            info,
        } => Op::Hkdf(pb::P11Hkdf {
            hash_len: *hash_len as u32,
            extract: *extract,
            expand: *expand,
            salt: match salt {
                HkdfSalt::Data(d) => Some(d.clone()),
                _ => None,
            },
            salt_key: *salt == HkdfSalt::Key,
            info: info.clone(),
        }),
        DeriveOp::Kbkdf {
            prf,
            feedback_iv,
            fields,
        } => Op::Kbkdf(pb::P11Kbkdf {
            hmac_len: match prf {
                Prf::Hmac(n) => *n as u32,
                Prf::AesCmac => 0,
            },
            feedback_iv: feedback_iv.clone(),
            fields: fields
                .iter()
                .map(|f| pb::P11KbkdfField {
                    field: Some(match f {
                        KbkdfField::Counter {
                            little_endian,
                            bits,
                        } => Field::Counter(pb::P11KbkdfNumber {
                            little_endian: *little_endian,
                            bits: *bits,
                            segments: false,
                        }),
                        KbkdfField::Chain => Field::Chain(pb::P11Empty {}),
                        KbkdfField::DkmLength {
                            segments,
                            little_endian,
                            bits,
                        } => Field::DkmLength(pb::P11KbkdfNumber {
                            little_endian: *little_endian,
                            bits: *bits,
                            segments: *segments,
                        }),
                        KbkdfField::Bytes(b) => Field::Bytes(b.clone()),
                    }),
                })
                .collect(),
        }),
        DeriveOp::AesEncryptData { iv, data } => Op::EncryptData(pb::P11EncryptData {
            iv: iv.map(|iv| iv.to_vec()),
            data: data.clone(),
        }),
        DeriveOp::ConcatBaseAndKey => Op::ConcatBaseAndKey(pb::P11Empty {}),
        DeriveOp::ConcatBaseAndData(d) => Op::ConcatBaseAndData(d.clone()),
        DeriveOp::ConcatDataAndBase(d) => Op::ConcatDataAndBase(d.clone()),
        DeriveOp::XorBaseAndData(d) => Op::XorBaseAndData(d.clone()),
        DeriveOp::ExtractKeyFromKey(bit) => Op::ExtractKeyFromKey(*bit),
    };
    pb::P11DeriveOp { op: Some(op) }
}

/// A derivation from the wire; anything malformed is
/// CKR_MECHANISM_PARAM_INVALID.
pub fn derive_from_wire(op: Option<pb::P11DeriveOp>) -> Result<DeriveOp> {
    use pb::p11_derive_op::Op;
    use pb::p11_kbkdf_field::Field;
    let bad = || ckr!(CKR_MECHANISM_PARAM_INVALID, "malformed derivation");
    Ok(match op.and_then(|o| o.op).ok_or_else(bad)? {
        Op::Hkdf(h) => DeriveOp::Hkdf {
            hash_len: h.hash_len as usize,
            extract: h.extract,
            expand: h.expand,
            salt: match (h.salt, h.salt_key) {
                (Some(d), false) => HkdfSalt::Data(d),
                (None, true) => HkdfSalt::Key,
                (None, false) => HkdfSalt::Null,
                (Some(_), true) => return Err(bad()),
            },
            info: h.info,
        },
        Op::Kbkdf(k) => DeriveOp::Kbkdf {
            prf: match k.hmac_len {
                0 => Prf::AesCmac,
                n => Prf::Hmac(n as usize),
            },
            feedback_iv: k.feedback_iv,
            fields: k
                .fields
                .into_iter()
                .map(|f| {
                    Ok(match f.field.ok_or_else(bad)? {
                        Field::Counter(n) => KbkdfField::Counter {
                            little_endian: n.little_endian,
                            bits: n.bits,
                        },
                        Field::Chain(_) => KbkdfField::Chain,
                        Field::DkmLength(n) => KbkdfField::DkmLength {
                            segments: n.segments,
                            little_endian: n.little_endian,
                            bits: n.bits,
                        },
                        Field::Bytes(b) => KbkdfField::Bytes(b),
                    })
                })
                .collect::<Result<_>>()?,
        },
        Op::EncryptData(e) => DeriveOp::AesEncryptData {
            iv: e
                .iv
                .map(|iv| <[u8; 16]>::try_from(iv.as_slice()).map_err(|_| bad()))
                .transpose()?,
            data: e.data,
        },
        Op::ConcatBaseAndKey(_) => DeriveOp::ConcatBaseAndKey,
        Op::ConcatBaseAndData(d) => DeriveOp::ConcatBaseAndData(d),
        Op::ConcatDataAndBase(d) => DeriveOp::ConcatDataAndBase(d),
        Op::XorBaseAndData(d) => DeriveOp::XorBaseAndData(d),
        Op::ExtractKeyFromKey(bit) => DeriveOp::ExtractKeyFromKey(bit),
    })
}

/// A key a derivation makes, on the wire.
pub fn new_secret_to_wire(n: &NewSecret) -> pb::P11NewSecret {
    pb::P11NewSecret {
        token_label: n.token_label.clone(),
        aes: n.aes,
        len: n.len.min(u32::MAX as usize) as u32,
        extractable: n.extractable,
        readable: n.readable,
    }
}

/// A key a derivation makes, from the wire.
pub fn new_secret_from_wire(n: pb::P11NewSecret) -> NewSecret {
    NewSecret {
        token_label: n.token_label,
        aes: n.aes,
        len: n.len as usize,
        extractable: n.extractable,
        readable: n.readable,
    }
}

/// A key transport on the wire.
pub fn transport_to_wire(t: &hsm_core::pkcs11::KeyTransport) -> pb::P11KeyTransport {
    use hsm_core::pkcs11::KeyTransport;
    use pb::p11_key_transport::How;
    let how = match t {
        KeyTransport::Aes(mode) => How::Aes(wrap_to_wire(*mode)),
        KeyTransport::RsaPkcs1 => How::RsaPkcs1(pb::P11Empty {}),
        KeyTransport::RsaOaep { sha256, label } => How::RsaOaep(pb::P11RsaOaepTransport {
            sha256: *sha256,
            label: label.clone(),
        }),
    };
    pb::P11KeyTransport { how: Some(how) }
}

/// A key transport from the wire; a missing one is CKR_MECHANISM_INVALID.
pub fn transport_from_wire(
    t: Option<pb::P11KeyTransport>,
) -> Result<hsm_core::pkcs11::KeyTransport> {
    use hsm_core::pkcs11::KeyTransport;
    use pb::p11_key_transport::How;
    match t.and_then(|t| t.how) {
        Some(How::Aes(mode)) => Ok(KeyTransport::Aes(wrap_from_wire(mode)?)),
        Some(How::RsaPkcs1(_)) => Ok(KeyTransport::RsaPkcs1),
        Some(How::RsaOaep(o)) => Ok(KeyTransport::RsaOaep {
            sha256: o.sha256,
            label: o.label,
        }),
        None => Err(ckr!(CKR_MECHANISM_INVALID)),
    }
}

/// A private key kind from the wire.
pub fn kind_from_wire(kind: &str) -> Result<hsm_core::pkcs11::PrivateKind> {
    hsm_core::pkcs11::PrivateKind::parse(kind)
        .map_err(|_| ckr!(CKR_ATTRIBUTE_VALUE_INVALID, "unknown private key kind"))
}

/// An imported private key from the wire.
pub fn imported_from_wire(
    r: pb::P11ImportPrivateKeyResponse,
) -> Result<hsm_core::pkcs11::ImportedKey> {
    Ok(hsm_core::pkcs11::ImportedKey {
        key: key_from_wire(r.key)?,
        spec: spec_from_wire(&r.key_spec)?,
        spki: r.public_key,
    })
}

/// An imported private key on the wire.
pub fn imported_to_wire(made: &hsm_core::pkcs11::ImportedKey) -> pb::P11ImportPrivateKeyResponse {
    pb::P11ImportPrivateKeyResponse {
        key: Some(key_to_wire(&made.key)),
        key_spec: made.spec.as_str().to_string(),
        public_key: made.spki.clone(),
    }
}

/// An ECDH KDF on the wire: 0 for CKD_NULL, else the X9.63 hash's digest
/// length.
pub fn ecdh_kdf_to_wire(kdf: hsm_core::pkcs11::EcdhKdf) -> u32 {
    match kdf {
        hsm_core::pkcs11::EcdhKdf::Null => 0,
        hsm_core::pkcs11::EcdhKdf::X963(len) => u32::try_from(len).unwrap_or(u32::MAX),
    }
}

/// An ECDH KDF from the wire.
pub fn ecdh_kdf_from_wire(kdf: u32) -> Result<hsm_core::pkcs11::EcdhKdf> {
    Ok(match kdf {
        0 => hsm_core::pkcs11::EcdhKdf::Null,
        20 | 28 | 32 | 48 | 64 => hsm_core::pkcs11::EcdhKdf::X963(kdf as usize),
        _ => return Err(ckr!(CKR_MECHANISM_PARAM_INVALID, "unsupported KDF")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanisms_and_handles_round_trip() {
        for key in [KeyHandle::Stored("k-1".into()), KeyHandle::Session(9)] {
            assert_eq!(key_from_wire(Some(key_to_wire(&key))).unwrap(), key);
        }
        let modes = [
            AesMode::Ecb,
            AesMode::Cbc([1; 16]),
            AesMode::CbcPad([2; 16]),
            AesMode::Ctr {
                block: [3; 16],
                counter_bits: 32,
            },
            AesMode::Gcm {
                iv: vec![4; 12],
                aad: b"aad".to_vec(),
                tag_len: 16,
            },
            AesMode::Gcm {
                iv: vec![4; 1],
                aad: Vec::new(),
                tag_len: 12,
            },
            AesMode::Des3Ecb,
            AesMode::Des3Cbc([5; 8]),
            AesMode::Des3CbcPad([6; 8]),
        ];
        for mode in modes {
            assert_eq!(aes_from_wire(Some(aes_to_wire(&mode))).unwrap(), mode);
        }
        let signs = [
            RawSign::EcdsaDigest,
            RawSign::RsaPkcs1DigestInfo,
            RawSign::RsaPkcs1,
            RawSign::RsaPss {
                hash_len: 32,
                salt_len: 32,
            },
            RawSign::EdDsa,
            RawSign::Ed25519ph,
            RawSign::Ed25519ctx,
            RawSign::MlDsa {
                deterministic: true,
            },
            RawSign::HashMlDsa {
                deterministic: false,
                hash: hsm_core::mechanisms::PreHash::Sha3_384,
                prehashed: true,
            },
        ];
        for how in signs {
            assert_eq!(sign_from_wire(Some(sign_to_wire(how))).unwrap(), how);
        }
        for mode in [WrapMode::Kw, WrapMode::Kwp] {
            assert_eq!(wrap_from_wire(wrap_to_wire(mode)).unwrap(), mode);
        }
        for user in [UserKind::User, UserKind::So] {
            assert_eq!(user_from_wire(user_to_wire(user)).unwrap(), user);
        }
    }

    #[test]
    fn malformed_requests_get_their_ckr_codes() {
        assert_eq!(key_from_wire(None).unwrap_err().rv(), CKR_ARGUMENTS_BAD);
        let short_iv = pb::P11AesMode {
            mode: Some(pb::p11_aes_mode::Mode::Cbc(vec![0; 15])),
        };
        assert_eq!(
            aes_from_wire(Some(short_iv)).unwrap_err().rv(),
            CKR_MECHANISM_PARAM_INVALID
        );
        assert_eq!(aes_from_wire(None).unwrap_err().rv(), CKR_MECHANISM_INVALID);
        assert_eq!(
            sign_from_wire(None).unwrap_err().rv(),
            CKR_MECHANISM_INVALID
        );
        assert_eq!(wrap_from_wire(7).unwrap_err().rv(), CKR_MECHANISM_INVALID);
        assert_eq!(user_from_wire(7).unwrap_err().rv(), CKR_USER_TYPE_INVALID);
        assert_eq!(
            spec_from_wire("RSA_1").unwrap_err().rv(),
            CKR_TEMPLATE_INCONSISTENT
        );
        assert_eq!(
            usage_from_wire("NOPE").unwrap_err().rv(),
            CKR_TEMPLATE_INCONSISTENT
        );
    }

    #[test]
    fn statuses_without_a_ckr_code_are_device_errors() {
        let plain = tonic::Status::unavailable("connection refused");
        assert_eq!(error_from_status(&plain).rv(), CKR_DEVICE_ERROR);
        let old = tonic::Status::unimplemented("no such service");
        assert_eq!(error_from_status(&old).rv(), CKR_DEVICE_ERROR);
        let busy = tonic::Status::resource_exhausted("too big");
        assert_eq!(error_from_status(&busy).rv(), CKR_DEVICE_MEMORY);
    }

    #[test]
    fn derivations_round_trip() {
        let ops = [
            DeriveOp::Hkdf {
                hash_len: 32,
                extract: true,
                expand: false,
                salt: HkdfSalt::Data(vec![1, 2]),
                info: vec![3],
            },
            DeriveOp::Hkdf {
                hash_len: 64,
                extract: true,
                expand: true,
                salt: HkdfSalt::Key,
                info: Vec::new(),
            },
            DeriveOp::Kbkdf {
                prf: Prf::AesCmac,
                feedback_iv: Some(vec![7; 16]),
                fields: vec![
                    KbkdfField::Chain,
                    KbkdfField::Counter {
                        little_endian: true,
                        bits: 16,
                    },
                    KbkdfField::DkmLength {
                        segments: true,
                        little_endian: false,
                        bits: 32,
                    },
                    KbkdfField::Bytes(vec![9]),
                ],
            },
            DeriveOp::AesEncryptData {
                iv: Some([1; 16]),
                data: vec![2; 16],
            },
            DeriveOp::ConcatBaseAndKey,
            DeriveOp::ConcatBaseAndData(vec![1]),
            DeriveOp::ConcatDataAndBase(vec![2]),
            DeriveOp::XorBaseAndData(vec![3]),
            DeriveOp::ExtractKeyFromKey(21),
        ];
        for op in ops {
            assert_eq!(derive_from_wire(Some(derive_to_wire(&op))).unwrap(), op);
        }
        assert!(derive_from_wire(None).is_err());
    }
}
