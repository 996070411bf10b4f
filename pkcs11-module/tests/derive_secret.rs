//! C_DeriveKey from secret keys through the cryptoki crate, on the
//! embedded and the daemon backend: HKDF (RFC 5869 vectors, both steps,
//! each step alone, CKM_HKDF_DATA), SP 800-108 counter and feedback KDFs
//! (NIST CAVP vectors, several keys from one call, and OpenSSL's KBKDF as
//! a second reference), AES-ECB/CBC encryption of data (FIPS-197; SoftHSM2
//! is the control there), concatenation, XOR and extraction (the
//! specification's examples), the sensitivity and extractability rules,
//! and C_GetMechanismInfo.

mod common;

use std::num::NonZeroUsize;
use std::process::Command;

use common::{load, rv, user_session, Which};
use cryptoki::error::RvError;
use cryptoki::mechanism::ekdf::AesCbcDeriveParams;
use cryptoki::mechanism::hkdf::{HkdfParams, HkdfSalt};
use cryptoki::mechanism::kbkdf::{
    DerivedKey, Endianness, KbkdfCounterFormat, KbkdfDkmLengthFormat, KbkdfDkmLengthMethod,
    KbkdfFeedbackParams, KbkdfParams, PrfDataParam, PrfDataParamType,
};
use cryptoki::mechanism::misc::{ExtractParams, KeyDerivationStringData};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A session secret key that may derive; readable unless `sensitive`.
fn secret(session: &Session, kind: KeyType, value: Vec<u8>, sensitive: bool) -> ObjectHandle {
    session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(kind),
            Attribute::Token(false),
            Attribute::Value(value),
            Attribute::Derive(true),
            Attribute::Sensitive(sensitive),
            Attribute::Extractable(!sensitive),
        ])
        .unwrap()
}

/// The template of a readable generic secret of `len` bytes.
fn readable(len: u64) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::ValueLen(len.into()),
        Attribute::Token(false),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ]
}

fn value(session: &Session, key: ObjectHandle) -> Vec<u8> {
    match session
        .get_attributes(key, &[AttributeType::Value])
        .unwrap()
        .pop()
    {
        Some(Attribute::Value(v)) => v,
        other => panic!("{other:?}"),
    }
}

fn flag(session: &Session, key: ObjectHandle, t: AttributeType) -> bool {
    match session.get_attributes(key, &[t]).unwrap().pop() {
        Some(Attribute::Sensitive(b))
        | Some(Attribute::Extractable(b))
        | Some(Attribute::AlwaysSensitive(b))
        | Some(Attribute::NeverExtractable(b)) => b,
        other => panic!("{other:?}"),
    }
}

/// RFC 5869 test case 1 (SHA-256): the 22-byte IKM is extracted from a
/// 32-byte key first (CKM_EXTRACT_KEY_FROM_KEY, bit 0).
fn hkdf_rfc5869(which: Which) {
    let m = load(which);
    let session = user_session(&m, "hkdf");
    let wide = secret(&session, KeyType::GENERIC_SECRET, vec![0x0b; 32], false);
    let mut ikm_template = readable(22);
    ikm_template.push(Attribute::Derive(true));
    let ikm = session
        .derive_key(
            &Mechanism::ExtractKeyFromKey(ExtractParams::new(0)),
            wide,
            &ikm_template,
        )
        .unwrap();
    assert_eq!(value(&session, ikm), vec![0x0b; 22]);
    let salt = hex("000102030405060708090a0b0c");
    let info = hex("f0f1f2f3f4f5f6f7f8f9");
    let prk = hex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
    let okm =
        hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
    let both = HkdfParams::new(
        MechanismType::SHA256,
        Some(HkdfSalt::Data(&salt)),
        Some(&info),
    );
    let k = session
        .derive_key(&Mechanism::HkdfDerive(both), ikm, &readable(42))
        .unwrap();
    assert_eq!(value(&session, k), okm);
    // Extract alone gives the PRK; expand alone on the PRK gives the OKM.
    let extract = HkdfParams::new(MechanismType::SHA256, Some(HkdfSalt::Data(&salt)), None);
    let mut prk_template = readable(32);
    prk_template.push(Attribute::Derive(true));
    let p = session
        .derive_key(&Mechanism::HkdfDerive(extract), ikm, &prk_template)
        .unwrap();
    assert_eq!(value(&session, p), prk);
    let expand = HkdfParams::new(MechanismType::SHA256, None, Some(&info));
    let k2 = session
        .derive_key(&Mechanism::HkdfDerive(expand), p, &readable(42))
        .unwrap();
    assert_eq!(value(&session, k2), okm);
    // CKM_HKDF_DATA: a data object holding the OKM.
    let data = session
        .derive_key(
            &Mechanism::HkdfData(both),
            ikm,
            &[
                Attribute::Class(ObjectClass::DATA),
                Attribute::ValueLen(42.into()),
                Attribute::Token(false),
            ],
        )
        .unwrap();
    assert_eq!(value(&session, data), okm);
    // Test case 3: no salt, no info.
    let none = HkdfParams::new(MechanismType::SHA256, Some(HkdfSalt::Null), Some(&[]));
    let k3 = session
        .derive_key(&Mechanism::HkdfDerive(none), ikm, &readable(42))
        .unwrap();
    assert_eq!(
        value(&session, k3),
        hex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")
    );
    // Refusals: more than 255 hash lengths; no CKA_VALUE_LEN; a key
    // without CKA_DERIVE.
    assert_eq!(
        rv(session.derive_key(&Mechanism::HkdfDerive(both), ikm, &readable(255 * 32 + 1))),
        RvError::AttributeValueInvalid
    );
    assert_eq!(
        rv(session.derive_key(
            &Mechanism::HkdfDerive(both),
            ikm,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Token(false)
            ]
        )),
        RvError::TemplateIncomplete
    );
    let no_derive = session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Token(false),
            Attribute::Value(vec![1; 32]),
        ])
        .unwrap();
    assert_eq!(
        rv(session.derive_key(&Mechanism::HkdfDerive(both), no_derive, &readable(16))),
        RvError::KeyFunctionNotPermitted
    );
}

fn counter(bits: usize) -> KbkdfCounterFormat {
    KbkdfCounterFormat::new(Endianness::Big, NonZeroUsize::new(bits).unwrap())
}

/// NIST CAVP KBKDF vectors (counter mode, counter before the fixed data;
/// feedback mode, counter after the iteration variable), the feedback
/// vector also as two keys from one call.
fn kbkdf_cavp(which: Which) {
    let m = load(which);
    let session = user_session(&m, "kbkdf");
    // [PRF=HMAC_SHA256] [CTRLOCATION=BEFORE_FIXED] [RLEN=32_BITS] COUNT=0.
    let ki = secret(
        &session,
        KeyType::GENERIC_SECRET,
        hex("dd1d91b7d90b2bd3138533ce92b272fbf8a369316aefe242e659cc0ae238afe0"),
        false,
    );
    let fixed = hex(
        "01322b96b30acd197979444e468e1c5c6859bf1b1cf951b7e725303e237e46b8
         64a145fab25e517b08f8683d0315bb2911d80a0e8aba17f3b413faac",
    );
    let c32 = counter(32);
    let fields = [
        PrfDataParam::new(PrfDataParamType::IterationVariable(Some(&c32))),
        PrfDataParam::new(PrfDataParamType::ByteArray(&fixed)),
    ];
    let params = KbkdfParams::new(MechanismType::SHA256_HMAC, &fields, None);
    let k = session
        .derive_key(&Mechanism::KbkdfCounter(params), ki, &readable(16))
        .unwrap();
    assert_eq!(value(&session, k), hex("10621342bfb0fd40046c0e29f2cfdbf0"));

    // [PRF=CMAC_AES128] [CTRLOCATION=BEFORE_FIXED] [RLEN=32_BITS] COUNT=10.
    let aes = secret(
        &session,
        KeyType::AES,
        hex("695f1b1a16c949cea51cdf2554ec9d42"),
        false,
    );
    let fixed = hex(
        "4fce5942832a390aa1cbe8a0bf9d202cb799e986c9d6b51f45e4d597a6b57f06
         a4ebfec6467335d116b7f5f9c5b954062f661820f5db2a5bbb3e0625",
    );
    let fields = [
        PrfDataParam::new(PrfDataParamType::IterationVariable(Some(&c32))),
        PrfDataParam::new(PrfDataParamType::ByteArray(&fixed)),
    ];
    let params = KbkdfParams::new(MechanismType::AES_CMAC, &fields, None);
    let k = session
        .derive_key(&Mechanism::KbkdfCounter(params), aes, &readable(32))
        .unwrap();
    assert_eq!(
        value(&session, k),
        hex("d34b601ec18c34dfa0f9e0b7523e218bdddb9befe8d08b6c0202d75ace0dba89")
    );
    // An AES-CMAC PRF needs an AES key.
    let params = KbkdfParams::new(MechanismType::AES_CMAC, &fields, None);
    assert_eq!(
        rv(session.derive_key(&Mechanism::KbkdfCounter(params), ki, &readable(16))),
        RvError::KeyTypeInconsistent
    );

    // FeedbackModeNOzeroiv [PRF=HMAC_SHA256] [CTRLOCATION=AFTER_ITER]
    // [RLEN=32_BITS], L = 512: one key of 64 bytes, then two of 32.
    let ki = secret(
        &session,
        KeyType::GENERIC_SECRET,
        hex("93f698e842eed75394d629d957e2e89c6e741f810b623c8b901e38376d068e7b"),
        false,
    );
    let iv = hex("9f575d9059d3e0c0803f08112f8a806de3c3471912cdf42b095388b14b33508e");
    let fixed = hex(
        "53b89c18690e2057a1d167822e636de50be0018532c431f7f5e37f77139220d5
         e042599ebe266af5767ee18cd2c5c19a1f0f80",
    );
    let ko = hex(
        "bd1476f43a4e315747cf5918e0ea5bc0d98769457477c3ab18b742def0e079a9
         33b756365afb5541f253fee43c6fd788a44041038509e9eeb68f7d65ffbb5f95",
    );
    let fields = [
        PrfDataParam::new(PrfDataParamType::IterationVariable(None)),
        PrfDataParam::new(PrfDataParamType::Counter(&c32)),
        PrfDataParam::new(PrfDataParamType::ByteArray(&fixed)),
    ];
    let params = KbkdfFeedbackParams::new(MechanismType::SHA256_HMAC, &fields, Some(&iv), None);
    let k = session
        .derive_key(&Mechanism::KbkdfFeedback(params), ki, &readable(64))
        .unwrap();
    assert_eq!(value(&session, k), ko);
    let mut extra = [DerivedKey::new(&readable(32))];
    let params = KbkdfFeedbackParams::new(
        MechanismType::SHA256_HMAC,
        &fields,
        Some(&iv),
        Some(&mut extra),
    );
    let first = session
        .derive_key(&Mechanism::KbkdfFeedback(params), ki, &readable(32))
        .unwrap();
    let second = extra[0].handle().expect("the additional key's handle");
    assert_eq!(value(&session, first), ko[..32]);
    assert_eq!(value(&session, second), ko[32..]);
}

/// OpenSSL's KBKDF (label || 00 || context || [L]32 after a 32-bit
/// counter, or after K(i-1) and the counter in feedback mode) as a second
/// reference, with a DKM length field, and two keys in counter mode.
fn kbkdf_against_openssl(which: Which) {
    let m = load(which);
    let session = user_session(&m, "kbkdf-openssl");
    let key: Vec<u8> = (0u8..32).collect();
    let base = secret(&session, KeyType::GENERIC_SECRET, key.clone(), false);
    let (label, context) = (b"label".to_vec(), b"context".to_vec());
    let seed = hex("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
    let openssl = |len: usize, feedback: bool| -> Vec<u8> {
        let h = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let mut cmd = Command::new("openssl");
        cmd.args(["kdf", "-binary", "-keylen", &len.to_string()]);
        for opt in [
            "mac:HMAC".to_string(),
            "digest:SHA256".to_string(),
            format!("hexkey:{}", h(&key)),
            format!("hexsalt:{}", h(&label)),
            format!("hexinfo:{}", h(&context)),
        ] {
            cmd.args(["-kdfopt", &opt]);
        }
        if feedback {
            cmd.args(["-kdfopt", "mode:FEEDBACK", "-kdfopt"]);
            cmd.arg(format!("hexseed:{}", h(&seed)));
        }
        cmd.arg("KBKDF");
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        out.stdout
    };
    let c32 = counter(32);
    let dkm = KbkdfDkmLengthFormat::new(
        KbkdfDkmLengthMethod::SumOfKeys,
        Endianness::Big,
        NonZeroUsize::new(32).unwrap(),
    );
    let zero = [0u8];
    let fields = [
        PrfDataParam::new(PrfDataParamType::IterationVariable(Some(&c32))),
        PrfDataParam::new(PrfDataParamType::ByteArray(&label)),
        PrfDataParam::new(PrfDataParamType::ByteArray(&zero)),
        PrfDataParam::new(PrfDataParamType::ByteArray(&context)),
        PrfDataParam::new(PrfDataParamType::DkmLength(&dkm)),
    ];
    let params = KbkdfParams::new(MechanismType::SHA256_HMAC, &fields, None);
    let k = session
        .derive_key(&Mechanism::KbkdfCounter(params), base, &readable(48))
        .unwrap();
    assert_eq!(value(&session, k), openssl(48, false));
    // Two keys of 32 bytes: L is 512 bits for both, each its own segment.
    let mut extra = [DerivedKey::new(&readable(32))];
    let params = KbkdfParams::new(MechanismType::SHA256_HMAC, &fields, Some(&mut extra));
    let first = session
        .derive_key(&Mechanism::KbkdfCounter(params), base, &readable(32))
        .unwrap();
    let whole = openssl(64, false);
    assert_eq!(value(&session, first), whole[..32]);
    assert_eq!(value(&session, extra[0].handle().unwrap()), whole[32..]);

    let fields = [
        PrfDataParam::new(PrfDataParamType::IterationVariable(None)),
        PrfDataParam::new(PrfDataParamType::Counter(&c32)),
        PrfDataParam::new(PrfDataParamType::ByteArray(&label)),
        PrfDataParam::new(PrfDataParamType::ByteArray(&zero)),
        PrfDataParam::new(PrfDataParamType::ByteArray(&context)),
        PrfDataParam::new(PrfDataParamType::DkmLength(&dkm)),
    ];
    let params = KbkdfFeedbackParams::new(MechanismType::SHA256_HMAC, &fields, Some(&seed), None);
    let k = session
        .derive_key(&Mechanism::KbkdfFeedback(params), base, &readable(40))
        .unwrap();
    assert_eq!(value(&session, k), openssl(40, true));
}

/// CKM_AES_ECB_ENCRYPT_DATA through the function list of the same
/// (already loaded) library: the cryptoki crate has no variant for it.
fn ecb_encrypt_data(
    which: Which,
    session: &Session,
    base: ObjectHandle,
    data: &[u8],
    template: &[Attribute],
) -> Result<ObjectHandle, RvError> {
    use cryptoki_sys::*;
    let path = if which == Which::SoftHsm {
        std::path::PathBuf::from(common::SOFTHSM)
    } else {
        common::tinfoil_path()
    };
    // SAFETY: the library is already loaded and initialised by `load`;
    // dlopen of the same path returns the same instance.
    let lib = unsafe { cryptoki_sys::Pkcs11::new(&path) }.expect("load");
    let mut list: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
    assert_eq!(unsafe { lib.C_GetFunctionList(&mut list) }, CKR_OK);
    let derive = unsafe { (*list).C_DeriveKey }.unwrap();
    let mut param = CK_KEY_DERIVATION_STRING_DATA {
        pData: data.as_ptr() as *mut _,
        ulLen: data.len() as _,
    };
    let mut mech = CK_MECHANISM {
        mechanism: CKM_AES_ECB_ENCRYPT_DATA,
        pParameter: &mut param as *mut _ as *mut _,
        ulParameterLen: std::mem::size_of::<CK_KEY_DERIVATION_STRING_DATA>() as _,
    };
    let mut raw: Vec<CK_ATTRIBUTE> = template.iter().map(CK_ATTRIBUTE::from).collect();
    let mut out = 0;
    let rv = unsafe {
        derive(
            session.handle(),
            &mut mech,
            base.handle(),
            raw.as_mut_ptr(),
            raw.len() as _,
            &mut out,
        )
    };
    std::mem::forget(lib);
    match cryptoki::error::Rv::from(rv) {
        // SAFETY: the module just returned this handle.
        cryptoki::error::Rv::Ok => Ok(unsafe { ObjectHandle::new_from_raw(out) }),
        cryptoki::error::Rv::Error(e) => Err(e),
    }
}

/// FIPS-197 C.1 through CKM_AES_ECB_ENCRYPT_DATA and (one block, zero IV)
/// CKM_AES_CBC_ENCRYPT_DATA; SoftHSM2 answers the same.
fn aes_encrypt_data(which: Which) {
    let m = load(which);
    let session = user_session(&m, "encrypt-data");
    let base = secret(&session, KeyType::AES, (0u8..16).collect(), false);
    let pt: Vec<u8> = (0u8..16).map(|i| i * 0x11).collect();
    let ct = hex("69c4e0d86a7b0430d8cdb78070b4c55a");
    let k = ecb_encrypt_data(which, &session, base, &pt, &readable(16)).unwrap();
    assert_eq!(value(&session, k), ct);
    let k = session
        .derive_key(
            &Mechanism::AesCbcEncryptData(AesCbcDeriveParams::new([0; 16], &pt)),
            base,
            &readable(16),
        )
        .unwrap();
    assert_eq!(value(&session, k), ct);
    // An AES key needs its length (AES has no one length); a generic
    // secret without one has the encryption's.
    let aes = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(false),
    ];
    assert!(ecb_encrypt_data(which, &session, base, &pt, &aes).is_err());
    let mut sized = aes.to_vec();
    sized.push(Attribute::ValueLen(16.into()));
    sized.extend([Attribute::Sensitive(false), Attribute::Extractable(true)]);
    let k = ecb_encrypt_data(which, &session, base, &pt, &sized).unwrap();
    assert_eq!(value(&session, k), ct);
}

/// The examples of PKCS#11 3.0 section 2.43 on 32-byte keys, and the
/// attribute rules.
fn concatenate_xor_extract(which: Which) {
    let m = load(which);
    let session = user_session(&m, "simple");
    let a: Vec<u8> = (0u8..32).collect();
    let b: Vec<u8> = (100u8..132).collect();
    let base = secret(&session, KeyType::GENERIC_SECRET, a.clone(), false);
    let other = secret(&session, KeyType::GENERIC_SECRET, b.clone(), false);
    let data = vec![0xa5u8; 40];
    let derive = |mech: &Mechanism, key, len| {
        let k = session.derive_key(mech, key, &readable(len)).unwrap();
        value(&session, k)
    };
    assert_eq!(
        derive(&Mechanism::ConcatenateBaseAndKey(other), base, 64),
        [a.clone(), b.clone()].concat()
    );
    let d = KeyDerivationStringData::new(&data);
    assert_eq!(
        derive(&Mechanism::ConcatenateBaseAndData(d), base, 72),
        [a.clone(), data.clone()].concat()
    );
    assert_eq!(
        derive(&Mechanism::ConcatenateDataAndBase(d), base, 40),
        [data.clone(), a.clone()].concat()[..40]
    );
    let xored: Vec<u8> = a.iter().map(|x| x ^ 0xa5).collect();
    assert_eq!(derive(&Mechanism::XorBaseAndData(d), base, 32), xored);
    // No CKA_VALUE_LEN: the natural length (the sum; the shorter).
    let natural = session
        .derive_key(
            &Mechanism::XorBaseAndData(d),
            base,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Token(false),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ],
        )
        .unwrap();
    assert_eq!(value(&session, natural), xored);
    // The specification's extraction example: 0x329F84A9 from bit 21.
    let four = [0x32u8, 0x9f, 0x84, 0xa9].repeat(8);
    let four = secret(&session, KeyType::GENERIC_SECRET, four, false);
    assert_eq!(
        derive(
            &Mechanism::ExtractKeyFromKey(ExtractParams::new(21)),
            four,
            2
        ),
        vec![0x95, 0x26]
    );
    assert_eq!(
        rv(session.derive_key(
            &Mechanism::ExtractKeyFromKey(ExtractParams::new(0)),
            base,
            &readable(33)
        )),
        RvError::MechanismParamInvalid
    );

    // A sensitive base: the result is sensitive and cannot be asked not to
    // be; its ALWAYS_SENSITIVE follows the base's.
    let sealed = secret(&session, KeyType::GENERIC_SECRET, a.clone(), true);
    assert_eq!(
        rv(session.derive_key(&Mechanism::XorBaseAndData(d), sealed, &readable(32))),
        RvError::TemplateInconsistent
    );
    let k = session
        .derive_key(
            &Mechanism::XorBaseAndData(d),
            sealed,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::ValueLen(32.into()),
                Attribute::Token(false),
            ],
        )
        .unwrap();
    assert!(flag(&session, k, AttributeType::Sensitive));
    assert!(!flag(&session, k, AttributeType::Extractable));
    assert!(
        !flag(&session, k, AttributeType::AlwaysSensitive),
        "imported base"
    );
    // cryptoki leaves a sensitive attribute out of its answer.
    assert!(session
        .get_attributes(k, &[AttributeType::Value])
        .unwrap()
        .is_empty());
    // Concatenating a readable base with a sealed key: sealed too.
    assert_eq!(
        rv(session.derive_key(
            &Mechanism::ConcatenateBaseAndKey(sealed),
            base,
            &readable(64)
        )),
        RvError::TemplateInconsistent
    );
    // A one-way derivation may give a readable key from a sealed base,
    // and one left unsaid inherits the base's sensitivity.
    let info = b"info".to_vec();
    let hkdf = HkdfParams::new(MechanismType::SHA256, Some(HkdfSalt::Null), Some(&info));
    let open = session
        .derive_key(&Mechanism::HkdfDerive(hkdf), sealed, &readable(32))
        .unwrap();
    assert!(!flag(&session, open, AttributeType::Sensitive));
    let inherited = session
        .derive_key(
            &Mechanism::HkdfDerive(hkdf),
            sealed,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::ValueLen(32.into()),
                Attribute::Token(false),
            ],
        )
        .unwrap();
    assert!(flag(&session, inherited, AttributeType::Sensitive));
    // A token key derived from a generated (always sensitive) key keeps
    // ALWAYS_SENSITIVE and NEVER_EXTRACTABLE.
    let generated = session
        .generate_key(
            &Mechanism::GenericSecretKeyGen,
            &[
                Attribute::Token(true),
                Attribute::ValueLen(32.into()),
                Attribute::Derive(true),
            ],
        )
        .unwrap();
    let on_token = session
        .derive_key(
            &Mechanism::HkdfDerive(hkdf),
            generated,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32.into()),
                Attribute::Token(true),
                Attribute::Encrypt(true),
            ],
        )
        .unwrap();
    assert!(flag(&session, on_token, AttributeType::AlwaysSensitive));
    assert!(flag(&session, on_token, AttributeType::NeverExtractable));
}

/// Every derivation is listed with CKF_DERIVE and nothing else.
fn mechanism_info(which: Which) {
    let m = load(which);
    let slot = m.token("info");
    let listed = m.p11.get_mechanism_list(slot).unwrap();
    for t in [
        MechanismType::HKDF_DERIVE,
        MechanismType::HKDF_DATA,
        MechanismType::SP800_108_COUNTER_KDF,
        MechanismType::SP800_108_FEEDBACK_KDF,
        MechanismType::AES_CBC_ENCRYPT_DATA,
        MechanismType::CONCATENATE_BASE_AND_KEY,
        MechanismType::CONCATENATE_BASE_AND_DATA,
        MechanismType::CONCATENATE_DATA_AND_BASE,
        MechanismType::XOR_BASE_AND_DATA,
        MechanismType::EXTRACT_KEY_FROM_KEY,
    ] {
        assert!(listed.contains(&t), "{t}");
        let info = m.p11.get_mechanism_info(slot, t).unwrap();
        assert!(info.derive(), "{t}");
        assert!(!info.encrypt() && !info.sign() && !info.generate(), "{t}");
    }
}

matrix!([tinfoil_embedded => Embedded, tinfoil_daemon => Daemon];
    hkdf_rfc5869, kbkdf_cavp, kbkdf_against_openssl, concatenate_xor_extract, mechanism_info);
with_keys!(aes_encrypt_data);
