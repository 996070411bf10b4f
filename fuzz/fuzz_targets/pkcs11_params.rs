//! PKCS#11 attribute templates and mechanism parameters, with arbitrary
//! types, values and lengths, through the module's safe layer (`Module`,
//! the layer under the C ABI) over an embedded store: object creation,
//! search, attribute updates, key generation, cipher, sign/verify, digest,
//! wrap and unwrap, plus the pure decoders (stored attribute blobs, dates,
//! mechanism lists, data objects, certificates, AES and wrap modes).
#![no_main]

use std::sync::Mutex;

use cryptoki_sys::*;
use libfuzzer_sys::arbitrary::{Result as AResult, Unstructured};
use libfuzzer_sys::fuzz_target;
use tinfoil_fuzz::Store;
use tinfoil_pkcs11::attrs::{self, bbool, ulong, Template};
use tinfoil_pkcs11::backend::embedded::EmbeddedBackend;
use tinfoil_pkcs11::crypto_ops::OpKind;
use tinfoil_pkcs11::mechanisms::{self, GcmParams, Mechanism};
use tinfoil_pkcs11::module::Module;

const SO_PIN: &[u8] = b"fuzz-so-pin";
const USER_PIN: &[u8] = b"fuzz-user-pin";

struct Fixture {
    store: Store,
    module: Module,
    /// AES-256, EC P-256 private/public, generic secret (HMAC).
    keys: Vec<CK_OBJECT_HANDLE>,
}

fn session_template(extra: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> Template {
    let mut t = vec![(CKA_TOKEN, bbool(false))];
    t.extend(extra.iter().cloned());
    t
}

fn mech(mechanism: CK_MECHANISM_TYPE) -> Mechanism {
    Mechanism {
        mechanism,
        param: Vec::new(),
        gcm: None,
        oaep_label: Vec::new(),
        ..Default::default()
    }
}

fn fixture() -> Fixture {
    let store = Store::new();
    let module =
        Module::new(Box::new(EmbeddedBackend::over_hsm(store.hsm.clone()))).expect("module");
    module.init_token(0, SO_PIN, "fuzz").expect("init token");
    module.refresh_slots().expect("slots");
    let flags = CKF_SERIAL_SESSION | CKF_RW_SESSION;
    let h = module.open_session(0, flags).expect("session");
    module.login(h, CKU_SO, SO_PIN).expect("SO login");
    module.init_pin(h, USER_PIN).expect("init pin");
    module.logout(h).expect("logout");
    module.login(h, CKU_USER, USER_PIN).expect("user login");
    let usage = [
        (CKA_ENCRYPT, bbool(true)),
        (CKA_DECRYPT, bbool(true)),
        (CKA_WRAP, bbool(true)),
        (CKA_UNWRAP, bbool(true)),
        (CKA_SIGN, bbool(true)),
        (CKA_VERIFY, bbool(true)),
        (CKA_EXTRACTABLE, bbool(true)),
    ];
    let mut keys = Vec::new();
    let mut aes = usage.to_vec();
    aes.push((CKA_VALUE_LEN, ulong(32)));
    keys.push(
        module
            .generate_key(h, &mech(CKM_AES_KEY_GEN), &session_template(&aes))
            .expect("AES key"),
    );
    // P-256: the DER OID of prime256v1.
    let params = vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let (public, private) = module
        .generate_key_pair(
            h,
            &mech(CKM_EC_KEY_PAIR_GEN),
            &session_template(&[(CKA_EC_PARAMS, params), (CKA_VERIFY, bbool(true))]),
            &session_template(&[(CKA_SIGN, bbool(true))]),
        )
        .expect("EC pair");
    keys.push(private);
    keys.push(public);
    let mut secret = vec![(CKA_SIGN, bbool(true)), (CKA_VERIFY, bbool(true))];
    secret.push((CKA_VALUE_LEN, ulong(32)));
    if let Ok(k) = module.generate_key(
        h,
        &mech(CKM_GENERIC_SECRET_KEY_GEN),
        &session_template(&secret),
    ) {
        keys.push(k);
    }
    Fixture {
        store,
        module,
        keys,
    }
}

const ATTRS: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_CLASS,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_LABEL,
    CKA_APPLICATION,
    CKA_VALUE,
    CKA_OBJECT_ID,
    CKA_CERTIFICATE_TYPE,
    CKA_ISSUER,
    CKA_SERIAL_NUMBER,
    CKA_SUBJECT,
    CKA_ID,
    CKA_KEY_TYPE,
    CKA_SENSITIVE,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_SIGN,
    CKA_VERIFY,
    CKA_DERIVE,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_MODULUS,
    CKA_MODULUS_BITS,
    CKA_PUBLIC_EXPONENT,
    CKA_VALUE_LEN,
    CKA_EXTRACTABLE,
    CKA_LOCAL,
    CKA_NEVER_EXTRACTABLE,
    CKA_ALWAYS_SENSITIVE,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_EC_PARAMS,
    CKA_EC_POINT,
    CKA_ALLOWED_MECHANISMS,
    CKA_WRAP_TEMPLATE,
    CKA_CHECK_VALUE,
    CKA_TRUSTED,
    CKA_CERTIFICATE_CATEGORY,
    CKA_URL,
    CKA_PUBLIC_KEY_INFO,
    CKA_UNIQUE_ID,
    CKA_KEY_GEN_MECHANISM,
];

const MECHS: &[CK_MECHANISM_TYPE] = &[
    CKM_AES_ECB,
    CKM_AES_CBC,
    CKM_AES_CBC_PAD,
    CKM_AES_CTR,
    CKM_AES_GCM,
    CKM_AES_KEY_WRAP,
    CKM_AES_KEY_WRAP_PAD,
    CKM_AES_KEY_WRAP_KWP,
    CKM_AES_KEY_GEN,
    CKM_ECDSA,
    CKM_ECDSA_SHA256,
    CKM_ECDSA_SHA384,
    CKM_ECDSA_SHA512,
    CKM_EDDSA,
    CKM_RSA_PKCS,
    CKM_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_RSA_PKCS_OAEP,
    CKM_SHA_1,
    CKM_SHA256,
    CKM_SHA384,
    CKM_SHA512,
    CKM_SHA256_HMAC,
    CKM_SHA384_HMAC,
    CKM_SHA512_HMAC,
    CKM_GENERIC_SECRET_KEY_GEN,
    CKM_EC_KEY_PAIR_GEN,
    CKM_ECDH1_DERIVE,
];

fn bytes(u: &mut Unstructured<'_>, max: usize) -> AResult<Vec<u8>> {
    let n = u.int_in_range(0..=max)?;
    Ok(u.bytes(n.min(u.len()))?.to_vec())
}

fn attr_type(u: &mut Unstructured<'_>) -> AResult<CK_ATTRIBUTE_TYPE> {
    Ok(if u.ratio(7, 8)? {
        *u.choose(ATTRS)?
    } else {
        u.arbitrary()?
    })
}

fn template(u: &mut Unstructured<'_>) -> AResult<Template> {
    let n = u.int_in_range(0..=12)?;
    let mut t = Vec::with_capacity(n);
    for _ in 0..n {
        let ty = attr_type(u)?;
        let value = match u.int_in_range(0..=3)? {
            0 => ulong(u.arbitrary()?),
            1 => bbool(u.arbitrary()?),
            _ => bytes(u, 300)?,
        };
        t.push((ty, value));
    }
    Ok(t)
}

/// A template for an object this run creates: never a token object.
fn session_only(mut t: Template) -> Template {
    t.retain(|(ty, _)| *ty != CKA_TOKEN);
    t.push((CKA_TOKEN, bbool(false)));
    t
}

fn mechanism(u: &mut Unstructured<'_>) -> AResult<Mechanism> {
    let m = if u.ratio(7, 8)? {
        *u.choose(MECHS)?
    } else {
        u.arbitrary()?
    };
    let gcm = if u.arbitrary()? {
        Some(GcmParams {
            iv: bytes(u, 300)?,
            aad: bytes(u, 64)?,
            tag_bits: if u.arbitrary()? { 128 } else { u.arbitrary()? },
        })
    } else {
        None
    };
    Ok(Mechanism {
        mechanism: m,
        param: bytes(u, 64)?,
        gcm,
        oaep_label: bytes(u, 32)?,
        ..Default::default()
    })
}

fn key(
    u: &mut Unstructured<'_>,
    f: &Fixture,
    created: &[CK_OBJECT_HANDLE],
) -> AResult<CK_OBJECT_HANDLE> {
    Ok(match u.int_in_range(0..=3)? {
        0 | 1 => *u.choose(&f.keys)?,
        2 if !created.is_empty() => *u.choose(created)?,
        _ => u.arbitrary()?,
    })
}

fn run(u: &mut Unstructured<'_>, f: &Fixture) -> AResult<()> {
    let m = &f.module;
    let flags = if u.arbitrary()? {
        CKF_SERIAL_SESSION | CKF_RW_SESSION
    } else {
        CKF_SERIAL_SESSION
    };
    let Ok(h) = m.open_session(0, flags) else {
        return Ok(());
    };
    let mut created = Vec::new();
    let result = (|| -> AResult<()> {
        for _ in 0..u.int_in_range(1..=6)? {
            let cap = if u.arbitrary()? {
                None
            } else {
                Some(u.int_in_range(0..=4096)?)
            };
            match u.int_in_range(0..=10)? {
                0 => {
                    if let Ok(o) = m.create_object(h, &session_only(template(u)?)) {
                        created.push(o);
                    }
                }
                1 => {
                    if m.find_init(h, &template(u)?).is_ok() {
                        let _ = m.find_next(h, u.int_in_range(0..=64)?);
                        let _ = m.find_final(h);
                    }
                }
                2 => {
                    let kind = if u.arbitrary()? {
                        OpKind::Encrypt
                    } else {
                        OpKind::Decrypt
                    };
                    let (mech, k) = (mechanism(u)?, key(u, f, &created)?);
                    if m.cipher_init(h, kind, &mech, k).is_ok() {
                        let data = bytes(u, 512)?;
                        if u.arbitrary()? {
                            let _ = m.cipher(h, kind, &data, cap);
                        } else {
                            let _ = m.cipher_update(h, kind, Ok(&data), cap);
                            let _ = m.cipher_final(h, kind, cap);
                        }
                    }
                }
                3 => {
                    let kind = if u.arbitrary()? {
                        OpKind::Sign
                    } else {
                        OpKind::Verify
                    };
                    let (mech, k) = (mechanism(u)?, key(u, f, &created)?);
                    if m.sign_init(h, kind, &mech, k).is_ok() {
                        let data = bytes(u, 512)?;
                        match kind {
                            OpKind::Sign => {
                                let _ = m.sign(h, &data, cap);
                            }
                            _ => {
                                let sig = bytes(u, 600)?;
                                let _ = m.verify(h, Some(&data), &sig);
                            }
                        }
                    }
                }
                4 => {
                    let mech = mechanism(u)?;
                    if m.digest_init(h, mech.mechanism, mech.param.len()).is_ok() {
                        let _ = m.digest(h, &bytes(u, 512)?, cap);
                    }
                }
                5 => {
                    let mech = mechanism(u)?;
                    let (a, b) = (key(u, f, &created)?, key(u, f, &created)?);
                    let _ = m.wrap_key(h, &mech, a, b, cap);
                }
                6 => {
                    let mech = mechanism(u)?;
                    let k = key(u, f, &created)?;
                    let wrapped = bytes(u, 600)?;
                    if let Ok(o) = m.unwrap_key(h, &mech, k, &wrapped, &session_only(template(u)?))
                    {
                        created.push(o);
                    }
                }
                7 => {
                    let mech = mechanism(u)?;
                    if mech.mechanism == CKM_AES_KEY_GEN
                        || mech.mechanism == CKM_GENERIC_SECRET_KEY_GEN
                    {
                        if let Ok(o) = m.generate_key(h, &mech, &session_only(template(u)?)) {
                            created.push(o);
                        }
                    }
                }
                8 => {
                    let k = key(u, f, &created)?;
                    if created.contains(&k) || u.arbitrary()? {
                        let _ = m.set_attributes(h, k, &template(u)?);
                    }
                    let types: Vec<CK_ATTRIBUTE_TYPE> = (0..u.int_in_range(0..=8)?)
                        .map(|_| attr_type(u))
                        .collect::<AResult<_>>()?;
                    let _ = m.get_attributes(h, k, &types);
                }
                9 => {
                    // The pure decoders.
                    let raw = bytes(u, 600)?;
                    let _ = attrs::decode(&raw);
                    let _ = attrs::check_date(&raw);
                    let _ = attrs::check_mechanism_list(&raw);
                    let t = template(u)?;
                    let _ = attrs::check_template(&t);
                    let _ = attrs::new_data_object(&t);
                    let _ = tinfoil_pkcs11::cert::new_certificate(&t, u.arbitrary()?);
                    let mech = mechanism(u)?;
                    let _ = mechanisms::aes_mode(&mech);
                    let _ = mechanisms::wrap_mode(&mech);
                    // A stored attribute set decodes to what was encoded.
                    if let Ok(a) = attrs::decode(&raw) {
                        assert_eq!(attrs::decode(&attrs::encode(&a)).ok(), Some(a));
                    }
                }
                _ => {
                    if let Some(&o) = created.last() {
                        if m.destroy_object(h, o).is_ok() {
                            created.pop();
                        }
                    }
                }
            }
        }
        Ok(())
    })();
    let _ = m.close_session(h);
    result
}

static FIXTURE: Mutex<Option<Fixture>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut guard = FIXTURE.lock().unwrap_or_else(|p| p.into_inner());
    if guard.as_mut().is_none_or(|f| f.store.worn_out()) {
        *guard = None;
        *guard = Some(fixture());
    }
    let f = guard.as_ref().expect("fixture");
    let _ = run(&mut Unstructured::new(data), f);
});
