//! Key pairs and signatures: C_GenerateKeyPair (RSA 1024-8192, EC P-256
//! and P-384, Ed25519) and C_Sign*/C_Verify* with ECDSA (raw and SHA-2),
//! RSA PKCS#1 v1.5 (raw input up to k-11 bytes, and SHA-2), RSA-PSS and EdDSA. The
//! module hashes and frames the input; the engine signs.

use cryptoki_sys::*;

use crate::attrs::{self, as_bool, as_ulong, bbool, get_bool, get_ulong, ulong, Template};
use crate::backend::{Attributes, KeyHandle, KeySpec, PairUsages, RawSign};
use crate::crypto_ops::OpKind;
use crate::error::{ckr, Pkcs11Error, Result};
use crate::mechanisms::{self, Mechanism};
use crate::module::{lock, Module};
use crate::pubkey;
use crate::session::{finish, update, Output};

/// Attributes a key-pair template may carry.
const PAIR_ATTRS: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_CLASS,
    CKA_KEY_TYPE,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_LABEL,
    CKA_ID,
    CKA_SUBJECT,
    CKA_SENSITIVE,
    CKA_EXTRACTABLE,
    CKA_SIGN,
    CKA_VERIFY,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_DERIVE,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_EC_PARAMS,
    CKA_MODULUS_BITS,
    CKA_PUBLIC_EXPONENT,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_SIGN_RECOVER,
    CKA_VERIFY_RECOVER,
    CKA_ALLOWED_MECHANISMS,
    CKA_ALWAYS_AUTHENTICATE,
    CKA_WRAP_WITH_TRUSTED,
    CKA_PARAMETER_SET,
    CKA_ENCAPSULATE,
    CKA_DECAPSULATE,
];

/// DER DigestInfo prefixes for SHA-1, SHA-224 and SHA-256/384/512 (RFC
/// 8017 section 9.2).
const SHA1_INFO: &[u8] = &[
    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
];
const SHA224_INFO: &[u8] = &[
    0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05,
    0x00, 0x04, 0x1c,
];
const SHA256_INFO: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
const SHA384_INFO: &[u8] = &[
    0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0x04, 0x30,
];
const SHA512_INFO: &[u8] = &[
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0x04, 0x40,
];

/// Who signs: the engine's raw asymmetric primitives, HMAC, or (to
/// verify only) an imported public key, checked here.
enum Signer {
    Raw(RawSign),
    /// HMAC-SHA-2 with this digest length.
    Hmac(usize),
    /// HMAC with this digest length, truncated to the second length.
    HmacGeneral(usize, usize),
    /// AES-CMAC of this length.
    Cmac(usize),
    /// An imported public key (no engine key behind it).
    Public(Box<crate::pubkey::PublicVerifier>),
}

/// A signature or verification in progress; input is gathered and the
/// hash (if the mechanism has one) taken at the end.
pub struct SignOp {
    /// The engine's key; `None` for an imported public key.
    key: Option<KeyHandle>,
    how: Signer,
    /// The digest length naming the hash the module takes (SHA-1, SHA-2).
    hash: Option<usize>,
    digest_info: Option<&'static [u8]>,
    buf: Vec<u8>,
    sig_len: usize,
    /// The mechanism, for the audit record.
    mechanism: CK_MECHANISM_TYPE,
    /// Whether C_*Update was called.
    pub multipart: bool,
}

impl SignOp {
    fn engine_key(&self) -> Result<&KeyHandle> {
        self.key
            .as_ref()
            .ok_or(ckr!(CKR_KEY_TYPE_INCONSISTENT, "no engine key"))
    }

    /// The input the engine gets: the hash, DigestInfo-framed if needed.
    fn input(&self) -> Vec<u8> {
        let Some(hash_len) = self.hash else {
            return self.buf.clone();
        };
        let digest = hsm_core::mechanisms::digest(hash_len, &self.buf).unwrap_or_default();
        let mut out = self.digest_info.map(<[u8]>::to_vec).unwrap_or_default();
        out.extend_from_slice(&digest);
        out
    }
}

/// The digest length and DER DigestInfo prefix of a CKM_SHA* hash.
pub(crate) fn sha(mech_hash: CK_MECHANISM_TYPE) -> Result<(usize, &'static [u8])> {
    Ok(match mech_hash {
        CKM_SHA_1 => (20, SHA1_INFO),
        CKM_SHA224 => (28, SHA224_INFO),
        CKM_SHA256 => (32, SHA256_INFO),
        CKM_SHA384 => (48, SHA384_INFO),
        CKM_SHA512 => (64, SHA512_INFO),
        _ => return Err(ckr!(CKR_MECHANISM_PARAM_INVALID, "unsupported hash")),
    })
}

/// Decodes CK_RSA_PKCS_PSS_PARAMS (hashAlg, mgf, sLen) and checks that the
/// MGF uses the same hash and, for SHAxxx_RSA_PKCS_PSS, the mechanism's.
fn pss_params(
    m: &Mechanism,
    implied: Option<CK_MECHANISM_TYPE>,
) -> Result<(CK_MECHANISM_TYPE, usize)> {
    const N: usize = std::mem::size_of::<CK_ULONG>();
    let bad = || {
        ckr!(
            CKR_MECHANISM_PARAM_INVALID,
            "CK_RSA_PKCS_PSS_PARAMS expected"
        )
    };
    if m.param.len() != 3 * N {
        return Err(bad());
    }
    let word = |i: usize| as_ulong(&m.param[i * N..(i + 1) * N]).map_err(|_| bad());
    let (hash, mgf, salt) = (word(0)?, word(1)?, word(2)?);
    let mgf_ok = matches!(
        (hash, mgf),
        (CKM_SHA_1, CKG_MGF1_SHA1)
            | (CKM_SHA224, CKG_MGF1_SHA224)
            | (CKM_SHA256, CKG_MGF1_SHA256)
            | (CKM_SHA384, CKG_MGF1_SHA384)
            | (CKM_SHA512, CKG_MGF1_SHA512)
    );
    // The salt's upper bound depends on the key: checked at C_SignInit.
    if !mgf_ok || implied.is_some_and(|h| h != hash) || salt > 1024 {
        return Err(bad());
    }
    Ok((hash, salt as usize))
}

/// The usage flags of a new key pair, half by half.
#[derive(Debug, Default)]
struct PairFlags {
    sign: bool,
    verify: bool,
    decrypt: bool,
    encrypt: bool,
    unwrap: bool,
    wrap: bool,
    derive: bool,
    derive_public: bool,
}

/// The usages a key-pair template asks for, honoured as given: a usage
/// asked of one half is given to the other half too unless that half's
/// template says false; a template that asks for no usage at all gets a
/// signing pair. A usage the key type cannot have (an EC or EdDSA key that
/// encrypts, an RSA or EdDSA key that derives, signature recovery) is
/// CKR_TEMPLATE_INCONSISTENT: nothing is silently dropped.
fn pair_usage_flags(
    key_type: CK_KEY_TYPE,
    public: &Template,
    private: &Template,
) -> Result<PairFlags> {
    let get = |tpl: &Template, t| -> Result<Option<bool>> {
        tpl.iter()
            .find(|(u, _)| *u == t)
            .map(|(_, v)| as_bool(v))
            .transpose()
    };
    // (private attribute, public attribute) of each usage family.
    let family = |p_t, q_t| -> Result<(bool, bool)> {
        let (p, q) = (get(private, p_t)?, get(public, q_t)?);
        let asked = p == Some(true) || q == Some(true);
        Ok((p.unwrap_or(asked), q.unwrap_or(asked)))
    };
    let (mut sign, mut verify) = family(CKA_SIGN, CKA_VERIFY)?;
    let (decrypt, encrypt) = family(CKA_DECRYPT, CKA_ENCRYPT)?;
    let (unwrap, wrap) = family(CKA_UNWRAP, CKA_WRAP)?;
    let derive = get(private, CKA_DERIVE)?.unwrap_or(false);
    let derive_public = get(public, CKA_DERIVE)?.unwrap_or(false);
    let recover = get(private, CKA_SIGN_RECOVER)?.unwrap_or(false)
        || get(public, CKA_VERIFY_RECOVER)?.unwrap_or(false);
    let inconsistent = |what| Err(ckr!(CKR_TEMPLATE_INCONSISTENT, what));
    if recover {
        return inconsistent("signature recovery is not offered");
    }
    if key_type != CKK_RSA && (decrypt || encrypt || unwrap || wrap) {
        return inconsistent("only RSA key pairs encrypt, decrypt, wrap or unwrap");
    }
    if !matches!(key_type, CKK_EC | CKK_EC_MONTGOMERY) && (derive || derive_public) {
        return inconsistent("only EC (NIST curve) and X25519 key pairs derive");
    }
    if key_type == CKK_EC_MONTGOMERY {
        if sign || verify {
            return inconsistent("X25519 key pairs agree keys only");
        }
        // Nothing asked: a key-agreement pair.
        let derive = get(private, CKA_DERIVE)?.unwrap_or(true);
        return Ok(PairFlags {
            derive,
            derive_public,
            ..PairFlags::default()
        });
    }
    let any = sign || verify || decrypt || encrypt || unwrap || wrap || derive;
    if !any {
        // Nothing asked: a signing pair, unless signing was refused
        // explicitly (the flags then stay false).
        sign = get(private, CKA_SIGN)?.is_none();
        verify = get(public, CKA_VERIFY)?.is_none();
    }
    Ok(PairFlags {
        sign,
        verify,
        decrypt,
        encrypt,
        unwrap,
        wrap,
        derive,
        derive_public,
    })
}

impl Module {
    /// C_GenerateKeyPair: the pair is a KMS key on the session's token.
    pub fn generate_key_pair(
        &self,
        h: CK_SESSION_HANDLE,
        m: &Mechanism,
        public: &Template,
        private: &Template,
    ) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> {
        let entry = mechanisms::lookup_for(self.backend.as_ref(), m.mechanism)?;
        if entry.flags & CKF_GENERATE_KEY_PAIR == 0 || !m.param.is_empty() {
            return Err(ckr!(CKR_MECHANISM_INVALID));
        }
        attrs::check_template(public)?;
        attrs::check_template(private)?;
        for (t, _) in public.iter().chain(private) {
            if !PAIR_ATTRS.contains(t) {
                return Err(ckr!(CKR_ATTRIBUTE_TYPE_INVALID));
            }
        }
        let find = |tpl: &Template, t| tpl.iter().find(|(u, _)| *u == t).map(|(_, v)| v.clone());
        // The size of an RSA pair without a key spec of its own.
        let mut other_bits = None;
        let (spec, key_type) = match m.mechanism {
            CKM_EC_MONTGOMERY_KEY_PAIR_GEN => {
                let params = find(public, CKA_EC_PARAMS).unwrap_or(pubkey::X25519_OID.to_vec());
                (pubkey::montgomery_spec(&params)?, CKK_EC_MONTGOMERY)
            }
            CKM_EC_KEY_PAIR_GEN | CKM_EC_EDWARDS_KEY_PAIR_GEN => {
                let edwards = m.mechanism == CKM_EC_EDWARDS_KEY_PAIR_GEN;
                let params = find(public, CKA_EC_PARAMS)
                    .or_else(|| edwards.then(|| pubkey::ED25519_OID.to_vec()))
                    .ok_or(ckr!(CKR_TEMPLATE_INCOMPLETE, "CKA_EC_PARAMS is required"))?;
                (
                    pubkey::ec_spec(&params, edwards)?,
                    if edwards { CKK_EC_EDWARDS } else { CKK_EC },
                )
            }
            CKM_RSA_PKCS_KEY_PAIR_GEN => {
                let bits = find(public, CKA_MODULUS_BITS)
                    .ok_or(ckr!(
                        CKR_TEMPLATE_INCOMPLETE,
                        "CKA_MODULUS_BITS is required"
                    ))
                    .and_then(|v| as_ulong(&v))?;
                if let Some(e) = find(public, CKA_PUBLIC_EXPONENT) {
                    let e: &[u8] = &e;
                    if e.iter()
                        .skip_while(|b| **b == 0)
                        .copied()
                        .collect::<Vec<_>>()
                        != [1, 0, 1]
                    {
                        return Err(ckr!(
                            CKR_ATTRIBUTE_VALUE_INVALID,
                            "the public exponent is 65537"
                        ));
                    }
                }
                let spec = match bits {
                    // Legacy fixtures only (below NIST's 112-bit minimum;
                    // PKCS#11 only, README "Key sizes").
                    1024 => KeySpec::Rsa1024,
                    2048 => KeySpec::Rsa2048,
                    3072 => KeySpec::Rsa3072,
                    4096 => KeySpec::Rsa4096,
                    8192 => KeySpec::Rsa8192,
                    // Any other size from 1024 to 8192 bits (e.g. 1536, 2560).
                    b if (1024..=8192).contains(&b) => {
                        other_bits = u32::try_from(b).ok();
                        KeySpec::RsaOtherSize
                    }
                    _ => return Err(ckr!(CKR_KEY_SIZE_RANGE, "RSA keys are 1024 to 8192 bits")),
                };
                (spec, CKK_RSA)
            }
            CKM_ML_DSA_KEY_PAIR_GEN | CKM_ML_KEM_KEY_PAIR_GEN => {
                crate::pq_ops::pair_spec(m.mechanism, public, private)?
            }
            _ => return Err(ckr!(CKR_MECHANISM_INVALID)),
        };
        let flag = |tpl: &Template, t, default| find(tpl, t).map_or(Ok(default), |v| as_bool(&v));
        // Both halves on the token (a KMS key), or both session objects
        // (a session key pair, gone with its session).
        let on_token = flag(private, CKA_TOKEN, false)?;
        if on_token != flag(public, CKA_TOKEN, false)? {
            return Err(ckr!(
                CKR_TEMPLATE_INCONSISTENT,
                "both halves of a key pair are token objects or both session objects"
            ));
        }
        // Sensitive and not extractable unless the template says otherwise.
        let extractable = flag(private, CKA_EXTRACTABLE, false)?;
        let sensitive = flag(private, CKA_SENSITIVE, true)?;
        let usage_flags = if matches!(key_type, CKK_ML_DSA | CKK_ML_KEM) {
            crate::pq_ops::check_pair_usages(key_type, public, private)?;
            if key_type == CKK_ML_KEM {
                PairFlags::default()
            } else {
                pair_usage_flags(key_type, public, private)?
            }
        } else {
            pair_usage_flags(key_type, public, private)?
        };
        let montgomery = key_type == CKK_EC_MONTGOMERY;
        let usages = PairUsages {
            // A pair with no usage at all is still made as a signing key
            // (its objects' flags stay false); an X25519 pair agrees keys.
            sign: !montgomery
                && (usage_flags.sign
                    || usage_flags.verify
                    || !(usage_flags.decrypt
                        || usage_flags.encrypt
                        || usage_flags.wrap
                        || usage_flags.unwrap
                        || usage_flags.derive)),
            decrypt: usage_flags.decrypt
                || usage_flags.encrypt
                || usage_flags.wrap
                || usage_flags.unwrap,
            derive: usage_flags.derive || montgomery,
            extractable,
            readable: !sensitive,
        };
        let (serial, rw, who) = self.session_view(h)?;
        self.may_write(rw, who, on_token, true)?;
        // An empty label asks the backend for a session key pair.
        let label = if on_token {
            self.token_record(&serial)?.label
        } else {
            String::new()
        };
        let (key, spki) = match other_bits {
            Some(bits) => self.backend.generate_rsa_key_pair(&label, bits, usages)?,
            None => self.backend.generate_key_pair(&label, spec, usages)?,
        };
        let public_parts = pubkey::public_attrs(spec, &spki)?;

        let mut common = Attributes::new();
        common.insert(CKA_KEY_TYPE, ulong(key_type));
        common.insert(CKA_TOKEN, bbool(on_token));
        common.insert(CKA_LABEL, Vec::new());
        common.insert(CKA_ID, Vec::new());
        common.insert(CKA_LOCAL, bbool(true));
        common.insert(CKA_KEY_GEN_MECHANISM, ulong(m.mechanism));
        for t in [CKA_MODIFIABLE, CKA_DESTROYABLE, CKA_COPYABLE] {
            common.insert(t, bbool(true));
        }
        for t in [CKA_SIGN_RECOVER, CKA_VERIFY_RECOVER] {
            common.insert(t, bbool(false));
        }
        common.insert(CKA_PUBLIC_KEY_INFO, spki.clone());
        let mut pub_a = common.clone();
        pub_a.insert(CKA_CLASS, ulong(CKO_PUBLIC_KEY));
        pub_a.insert(CKA_PRIVATE, bbool(false));
        pub_a.insert(CKA_VERIFY, bbool(usage_flags.verify));
        pub_a.insert(CKA_ENCRYPT, bbool(usage_flags.encrypt));
        pub_a.insert(CKA_WRAP, bbool(usage_flags.wrap));
        pub_a.insert(CKA_DERIVE, bbool(usage_flags.derive_public));
        pub_a.insert(CKA_TRUSTED, bbool(false));
        pub_a.extend(public_parts.clone());
        let mut priv_a = common;
        priv_a.insert(CKA_CLASS, ulong(CKO_PRIVATE_KEY));
        priv_a.insert(CKA_PRIVATE, bbool(true));
        priv_a.insert(CKA_SIGN, bbool(usage_flags.sign));
        priv_a.insert(CKA_DECRYPT, bbool(usage_flags.decrypt));
        priv_a.insert(CKA_UNWRAP, bbool(usage_flags.unwrap));
        priv_a.insert(CKA_DERIVE, bbool(usage_flags.derive));
        priv_a.insert(CKA_SENSITIVE, bbool(sensitive));
        priv_a.insert(CKA_ALWAYS_SENSITIVE, bbool(sensitive));
        priv_a.insert(CKA_EXTRACTABLE, bbool(extractable));
        priv_a.insert(CKA_NEVER_EXTRACTABLE, bbool(!extractable));
        priv_a.insert(CKA_ALWAYS_AUTHENTICATE, bbool(false));
        priv_a.insert(CKA_WRAP_WITH_TRUSTED, bbool(false));
        priv_a.insert(CKA_SUBJECT, Vec::new());
        for (t, v) in public_parts {
            if t != CKA_EC_POINT {
                priv_a.insert(t, v);
            }
        }
        for (target, tpl) in [(&mut pub_a, public), (&mut priv_a, private)] {
            for (t, v) in tpl {
                if matches!(
                    *t,
                    CKA_LABEL
                        | CKA_ID
                        | CKA_SUBJECT
                        | CKA_PRIVATE
                        | CKA_MODIFIABLE
                        | CKA_COPYABLE
                        | CKA_DESTROYABLE
                        | CKA_START_DATE
                        | CKA_END_DATE
                        | CKA_ALLOWED_MECHANISMS
                        | CKA_ALWAYS_AUTHENTICATE
                        | CKA_WRAP_WITH_TRUSTED
                ) {
                    match *t {
                        CKA_START_DATE | CKA_END_DATE => attrs::check_date(v)?,
                        CKA_ALLOWED_MECHANISMS => attrs::check_mechanism_list(v)?,
                        _ => {}
                    }
                    target.insert(*t, v.clone());
                }
            }
        }
        crate::pq_ops::finish_pair_attrs(spec, public, private, &mut pub_a, &mut priv_a)?;
        let private_handle = self
            .add_object(h, &serial, priv_a, Some(key.clone()))
            .inspect_err(|_| {
                if !on_token {
                    let _ = self.backend.destroy_key(&key);
                }
            })?;
        let public_handle = self.add_object(h, &serial, pub_a, Some(key))?;
        Ok((public_handle, private_handle))
    }

    /// C_SignInit / C_VerifyInit.
    pub fn sign_init(
        &self,
        h: CK_SESSION_HANDLE,
        kind: OpKind,
        m: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let signing = kind == OpKind::Sign;
        let entry = mechanisms::lookup_for(self.backend.as_ref(), m.mechanism)?;
        if entry.flags & if signing { CKF_SIGN } else { CKF_VERIFY } == 0 {
            return Err(ckr!(CKR_MECHANISM_INVALID, "mechanism cannot do this"));
        }
        let op = self.with_visible_object(h, key, |object| {
            crate::key_ops::check_allowed(object, m)?;
            if object.key.is_none() && object.class() == CKO_PUBLIC_KEY && !signing {
                if !get_bool(&object.attrs, CKA_VERIFY, false) {
                    return Err(ckr!(CKR_KEY_FUNCTION_NOT_PERMITTED));
                }
                let salt = match m.mechanism {
                    CKM_SHA256_RSA_PKCS_PSS | CKM_SHA384_RSA_PKCS_PSS | CKM_SHA512_RSA_PKCS_PSS => {
                        // An imported public key verifies SHA-2 PSS with a
                        // salt of up to 64 bytes (aws-lc-rs's sets).
                        let (hash, salt) = pss_params(m, None)?;
                        if hash == CKM_SHA_1 || hash == CKM_SHA224 || salt > 64 {
                            return Err(ckr!(CKR_MECHANISM_PARAM_INVALID));
                        }
                        Some(salt)
                    }
                    // Ed25519ctx (phFlag false, a context) verifies with
                    // an imported Ed25519 key too; pure Ed25519 may come
                    // with an empty CK_EDDSA_PARAMS.
                    CKM_EDDSA if matches!(&m.eddsa, Some((false, _))) => None,
                    _ if !m.param.is_empty() => return Err(ckr!(CKR_MECHANISM_PARAM_INVALID)),
                    _ => None,
                };
                let mut verifier = match crate::pq_ops::public_verifier(m, &object.attrs)? {
                    Some(v) => v,
                    None => crate::pubkey::PublicVerifier::new(m.mechanism, &object.attrs, salt)?,
                };
                if let Some((false, context)) = &m.eddsa {
                    verifier = verifier.with_ed25519_context(context)?;
                }
                let op = SignOp {
                    key: None,
                    how: Signer::Public(Box::new(verifier)),
                    hash: None,
                    digest_info: None,
                    // ML-DSA's len(context) || context.
                    buf: crate::pq_ops::ml_dsa_prefix(m).unwrap_or_default(),
                    sig_len: pubkey::signature_len(&object.attrs)?,
                    mechanism: m.mechanism,
                    multipart: false,
                };
                return Ok(op);
            }
            let handle = object
                .key
                .clone()
                .ok_or(ckr!(CKR_KEY_TYPE_INCONSISTENT, "not a key"))?;
            if matches!(m.mechanism, CKM_AES_CMAC | CKM_AES_CMAC_GENERAL) {
                let aes = object.class() == CKO_SECRET_KEY
                    && get_ulong(&object.attrs, CKA_KEY_TYPE) == Some(CKK_AES);
                if !aes {
                    return Err(ckr!(CKR_KEY_TYPE_INCONSISTENT, "CMAC needs an AES key"));
                }
                if !get_bool(
                    &object.attrs,
                    if signing { CKA_SIGN } else { CKA_VERIFY },
                    false,
                ) {
                    return Err(ckr!(CKR_KEY_FUNCTION_NOT_PERMITTED));
                }
                let len = if m.mechanism == CKM_AES_CMAC {
                    if !m.param.is_empty() {
                        return Err(ckr!(CKR_MECHANISM_PARAM_INVALID));
                    }
                    16
                } else {
                    // CK_MAC_GENERAL_PARAMS: the MAC length, 1 to 16.
                    let len =
                        as_ulong(&m.param).map_err(|_| ckr!(CKR_MECHANISM_PARAM_INVALID))? as usize;
                    if !(1..=16).contains(&len) {
                        return Err(ckr!(CKR_MECHANISM_PARAM_INVALID, "MAC length 1 to 16"));
                    }
                    len
                };
                return Ok(SignOp {
                    key: Some(handle),
                    how: Signer::Cmac(len),
                    hash: None,
                    digest_info: None,
                    buf: Vec::new(),
                    sig_len: len,
                    mechanism: m.mechanism,
                    multipart: false,
                });
            }
            let hmac_len = match m.mechanism {
                CKM_SHA_1_HMAC | CKM_SHA_1_HMAC_GENERAL => Some(20),
                CKM_SHA224_HMAC | CKM_SHA224_HMAC_GENERAL => Some(28),
                CKM_SHA256_HMAC | CKM_SHA256_HMAC_GENERAL => Some(32),
                CKM_SHA384_HMAC | CKM_SHA384_HMAC_GENERAL => Some(48),
                CKM_SHA512_HMAC | CKM_SHA512_HMAC_GENERAL => Some(64),
                _ => None,
            };
            let general = matches!(
                m.mechanism,
                CKM_SHA_1_HMAC_GENERAL
                    | CKM_SHA224_HMAC_GENERAL
                    | CKM_SHA256_HMAC_GENERAL
                    | CKM_SHA384_HMAC_GENERAL
                    | CKM_SHA512_HMAC_GENERAL
            );
            if let Some(hash_len) = hmac_len {
                // A generic secret serves every HMAC; an HMAC key type
                // (CKK_SHA256_HMAC ...) its own hash's.
                let key_type = get_ulong(&object.attrs, CKA_KEY_TYPE);
                let generic = object.class() == CKO_SECRET_KEY
                    && (key_type == Some(CKK_GENERIC_SECRET)
                        || key_type.and_then(crate::key_ops::hmac_key_type_len) == Some(hash_len));
                if !generic {
                    return Err(ckr!(
                        CKR_KEY_TYPE_INCONSISTENT,
                        "HMAC needs a generic secret key"
                    ));
                }
                if !get_bool(
                    &object.attrs,
                    if signing { CKA_SIGN } else { CKA_VERIFY },
                    false,
                ) {
                    return Err(ckr!(CKR_KEY_FUNCTION_NOT_PERMITTED));
                }
                // _GENERAL: CK_MAC_GENERAL_PARAMS, the MAC length (1 to
                // the digest's); the others take no parameter.
                let out_len = if general {
                    let len =
                        as_ulong(&m.param).map_err(|_| ckr!(CKR_MECHANISM_PARAM_INVALID))? as usize;
                    if !(1..=hash_len).contains(&len) {
                        return Err(ckr!(CKR_MECHANISM_PARAM_INVALID, "MAC length"));
                    }
                    len
                } else if m.param.is_empty() {
                    hash_len
                } else {
                    return Err(ckr!(CKR_MECHANISM_PARAM_INVALID));
                };
                let op = SignOp {
                    key: Some(handle),
                    how: if out_len == hash_len {
                        Signer::Hmac(hash_len)
                    } else {
                        Signer::HmacGeneral(hash_len, out_len)
                    },
                    hash: None,
                    digest_info: None,
                    buf: Vec::new(),
                    sig_len: out_len,
                    mechanism: m.mechanism,
                    multipart: false,
                };
                return Ok(op);
            }
            let class_ok = if signing {
                object.class() == CKO_PRIVATE_KEY
            } else {
                matches!(object.class(), CKO_PUBLIC_KEY | CKO_PRIVATE_KEY)
            };
            let usage = if signing { CKA_SIGN } else { CKA_VERIFY };
            if !class_ok {
                return Err(ckr!(CKR_KEY_TYPE_INCONSISTENT));
            }
            // A private key object verifies with the pair's public half.
            let may = get_bool(&object.attrs, usage, false)
                || (object.class() == CKO_PRIVATE_KEY
                    && !signing
                    && get_bool(&object.attrs, CKA_SIGN, false));
            if !may {
                return Err(ckr!(CKR_KEY_FUNCTION_NOT_PERMITTED));
            }
            let key_type = get_ulong(&object.attrs, CKA_KEY_TYPE);
            let (how, hash_mech, want) = match m.mechanism {
                CKM_ECDSA => (RawSign::EcdsaDigest, None, CKK_EC),
                CKM_ECDSA_SHA256 => (RawSign::EcdsaDigest, Some(CKM_SHA256), CKK_EC),
                CKM_ECDSA_SHA384 => (RawSign::EcdsaDigest, Some(CKM_SHA384), CKK_EC),
                CKM_ECDSA_SHA512 => (RawSign::EcdsaDigest, Some(CKM_SHA512), CKK_EC),
                CKM_EDDSA => (RawSign::EdDsa, None, CKK_EC_EDWARDS),
                CKM_RSA_PKCS => (RawSign::RsaPkcs1, None, CKK_RSA),
                CKM_RSA_X_509 => (RawSign::RsaX509, None, CKK_RSA),
                // SHA-1 and SHA-224 DigestInfos go through the big-integer
                // PKCS#1 v1.5 path (aws-lc-rs signs SHA-2 256/384/512).
                CKM_SHA1_RSA_PKCS => (RawSign::RsaPkcs1, Some(CKM_SHA_1), CKK_RSA),
                CKM_SHA224_RSA_PKCS => (RawSign::RsaPkcs1, Some(CKM_SHA224), CKK_RSA),
                CKM_SHA256_RSA_PKCS => (RawSign::RsaPkcs1DigestInfo, Some(CKM_SHA256), CKK_RSA),
                CKM_SHA384_RSA_PKCS => (RawSign::RsaPkcs1DigestInfo, Some(CKM_SHA384), CKK_RSA),
                CKM_SHA512_RSA_PKCS => (RawSign::RsaPkcs1DigestInfo, Some(CKM_SHA512), CKK_RSA),
                CKM_RSA_PKCS_PSS
                | CKM_SHA1_RSA_PKCS_PSS
                | CKM_SHA224_RSA_PKCS_PSS
                | CKM_SHA256_RSA_PKCS_PSS
                | CKM_SHA384_RSA_PKCS_PSS
                | CKM_SHA512_RSA_PKCS_PSS => {
                    let implied = match m.mechanism {
                        CKM_SHA1_RSA_PKCS_PSS => Some(CKM_SHA_1),
                        CKM_SHA224_RSA_PKCS_PSS => Some(CKM_SHA224),
                        CKM_SHA256_RSA_PKCS_PSS => Some(CKM_SHA256),
                        CKM_SHA384_RSA_PKCS_PSS => Some(CKM_SHA384),
                        CKM_SHA512_RSA_PKCS_PSS => Some(CKM_SHA512),
                        _ => None,
                    };
                    let (hash, salt_len) = pss_params(m, implied)?;
                    let hash_len = sha(hash)?.0;
                    // emLen - hLen - 2 (the keys here have whole-byte moduli).
                    let k = pubkey::signature_len(&object.attrs)?;
                    if salt_len + hash_len + 2 > k {
                        return Err(ckr!(
                            CKR_MECHANISM_PARAM_INVALID,
                            "the PSS salt does not fit this key"
                        ));
                    }
                    (RawSign::RsaPss { hash_len, salt_len }, implied, CKK_RSA)
                }
                mech if crate::pq_ops::is_ml_dsa_mechanism(mech) => {
                    (crate::pq_ops::ml_dsa_how(m)?, None, CKK_ML_DSA)
                }
                _ => return Err(ckr!(CKR_MECHANISM_INVALID)),
            };
            if key_type != Some(want) {
                return Err(ckr!(CKR_KEY_TYPE_INCONSISTENT));
            }
            // CK_EDDSA_PARAMS: phFlag selects Ed25519ph, a context without
            // it Ed25519ctx; both take len(context) || context || message
            // (the message follows in the buffer). phFlag false with no
            // context is pure Ed25519 (RFC 8032: Ed25519ctx needs one).
            let mut prefix = Vec::new();
            let how = match (&m.eddsa, how) {
                (Some((false, context)), RawSign::EdDsa) if context.is_empty() => how,
                (Some((ph, context)), RawSign::EdDsa) => {
                    prefix.push(context.len() as u8);
                    prefix.extend_from_slice(context);
                    if *ph {
                        RawSign::Ed25519ph
                    } else {
                        RawSign::Ed25519ctx
                    }
                }
                (_, how) => how,
            };
            // ML-DSA: len(context) || context, the data follows.
            if let Some(p) = crate::pq_ops::ml_dsa_prefix(m) {
                prefix = p;
            }
            // Only the PSS and EdDSA mechanisms take a parameter.
            if !matches!(how, RawSign::RsaPss { .. })
                && m.mechanism != CKM_EDDSA
                && !m.param.is_empty()
            {
                return Err(ckr!(CKR_MECHANISM_PARAM_INVALID));
            }
            let (hash, digest_info) = match hash_mech {
                Some(hm) => {
                    let (len, info) = sha(hm)?;
                    (
                        Some(len),
                        matches!(how, RawSign::RsaPkcs1DigestInfo | RawSign::RsaPkcs1)
                            .then_some(info),
                    )
                }
                None => (None, None),
            };
            let op = SignOp {
                key: Some(handle),
                how: Signer::Raw(how),
                hash,
                digest_info,
                buf: prefix,
                sig_len: pubkey::signature_len(&object.attrs)?,
                mechanism: m.mechanism,
                multipart: false,
            };
            Ok(op)
        })?;
        self.install_sign_op(h, signing, op)
    }

    fn install_sign_op(&self, h: CK_SESSION_HANDLE, signing: bool, op: SignOp) -> Result<()> {
        let session = self.session(h)?;
        let mut s = lock(&session)?;
        let slot = if signing { &mut s.sign } else { &mut s.verify };
        if slot.is_some() {
            return Err(ckr!(CKR_OPERATION_ACTIVE));
        }
        *slot = Some(op);
        Ok(())
    }

    fn run_sign(&self, function: &'static str, op: &SignOp) -> Result<Vec<u8>> {
        self.audited(function, Some(op.mechanism), op.key.as_ref(), false, || {
            self.run_sign_unrecorded(op)
        })
    }

    fn run_sign_unrecorded(&self, op: &SignOp) -> Result<Vec<u8>> {
        match &op.how {
            Signer::Raw(how) => self.backend.sign(op.engine_key()?, *how, &op.input()),
            Signer::Hmac(len) => self.backend.hmac(op.engine_key()?, *len, &op.buf),
            Signer::Cmac(len) => self.backend.cmac(op.engine_key()?, &op.buf, *len),
            Signer::HmacGeneral(hash_len, len) => {
                let mut mac = self.backend.hmac(op.engine_key()?, *hash_len, &op.buf)?;
                mac.truncate(*len);
                Ok(mac)
            }
            Signer::Public(_) => Err(ckr!(
                CKR_KEY_TYPE_INCONSISTENT,
                "a public key does not sign"
            )),
        }
    }

    /// C_Sign (single part).
    pub fn sign(&self, h: CK_SESSION_HANDLE, data: &[u8], cap: Option<usize>) -> Result<Output> {
        let session = self.session(h)?;
        let mut s = lock(&session)?;
        if s.sign.as_ref().is_some_and(|op| op.multipart) {
            s.sign = None;
            return Err(ckr!(
                CKR_OPERATION_ACTIVE,
                "single-part call after an update"
            ));
        }
        finish(
            &mut s.sign,
            |op| op.sig_len,
            cap,
            |mut op| {
                // The buffer may hold a prefix (Ed25519ph's/ctx's context).
                op.buf.extend_from_slice(data);
                self.run_sign("C_Sign", &op)
            },
        )
    }

    /// C_SignUpdate / C_VerifyUpdate.
    pub fn sign_update(
        &self,
        h: CK_SESSION_HANDLE,
        kind: OpKind,
        data: Result<&[u8]>,
    ) -> Result<()> {
        let session = self.session(h)?;
        let mut s = lock(&session)?;
        let slot = if kind == OpKind::Sign {
            &mut s.sign
        } else {
            &mut s.verify
        };
        update(slot, |op| {
            let data = data?;
            if op.buf.len() + data.len() > crate::ffi::MAX_INPUT_LEN {
                return Err(ckr!(CKR_DATA_LEN_RANGE));
            }
            op.multipart = true;
            op.buf.extend_from_slice(data);
            Ok(())
        })
    }

    /// C_SignFinal.
    pub fn sign_final(&self, h: CK_SESSION_HANDLE, cap: Option<usize>) -> Result<Output> {
        let session = self.session(h)?;
        let mut s = lock(&session)?;
        finish(
            &mut s.sign,
            |op| op.sig_len,
            cap,
            |op| self.run_sign("C_SignFinal", &op),
        )
    }

    /// C_Verify (`data` given) or C_VerifyFinal (`None`): always ends it.
    pub fn verify(
        &self,
        h: CK_SESSION_HANDLE,
        data: Option<&[u8]>,
        signature: &[u8],
    ) -> Result<()> {
        let session = self.session(h)?;
        let mut s = lock(&session)?;
        let mut op = s.verify.take().ok_or(ckr!(CKR_OPERATION_NOT_INITIALIZED))?;
        drop(s);
        if let Some(data) = data {
            if op.multipart {
                return Err(ckr!(
                    CKR_OPERATION_ACTIVE,
                    "single-part call after an update"
                ));
            }
            // The buffer may hold a prefix (Ed25519ph's/ctx's context).
            op.buf.extend_from_slice(data);
        }
        if signature.len() != op.sig_len {
            return Err(ckr!(CKR_SIGNATURE_LEN_RANGE));
        }
        let function = if data.is_some() {
            "C_Verify"
        } else {
            "C_VerifyFinal"
        };
        // A signature that does not verify fails inside the recorded call,
        // so its record carries CKR_SIGNATURE_INVALID.
        self.audited(function, Some(op.mechanism), op.key.as_ref(), false, || {
            let valid = match &op.how {
                Signer::Raw(how) => {
                    self.backend
                        .verify(op.engine_key()?, *how, &op.input(), signature)?
                }
                Signer::Hmac(len) => {
                    self.backend
                        .hmac_verify(op.engine_key()?, *len, &op.buf, signature)?
                }
                Signer::HmacGeneral(hash_len, len) => {
                    let mac = self.backend.hmac(op.engine_key()?, *hash_len, &op.buf)?;
                    use subtle::ConstantTimeEq;
                    bool::from(mac[..*len].ct_eq(signature))
                }
                Signer::Cmac(_) => {
                    self.backend
                        .cmac_verify(op.engine_key()?, &op.buf, signature)?
                }
                Signer::Public(verifier) => verifier.verify(&op.buf, signature),
            };
            match valid {
                true => Ok(()),
                false => Err(Pkcs11Error::rv_with(
                    CKR_SIGNATURE_INVALID,
                    "signature does not verify",
                )),
            }
        })
    }
}
