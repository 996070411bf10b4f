//! Asymmetric private material at rest (issue 2): the data directory never
//! holds a private key or data key pair in plaintext, and errors never
//! carry key bytes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hsm_core::{
    CreateKeyRequest, DataKeyPairSpec, EncryptionContext, Error, Hsm, HsmOptions, KdfParams,
    KeySpec, KeyUsage, ManualClock, MessageType, SecretString, SigningAlgorithm,
};
use tempfile::TempDir;
use zeroize::Zeroizing;

/// A fresh store with cheap Argon2 parameters.
struct Store {
    hsm: Hsm,
    dir: PathBuf,
    _tmp: TempDir,
}

fn store() -> Store {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let options = HsmOptions {
        kdf: KdfParams {
            memory_kib: 8192,
            iterations: 1,
            parallelism: 1,
        },
        clock: Arc::new(ManualClock::new(1_700_000_000)),
        ..Default::default()
    };
    let hsm = Hsm::init(&dir, &SecretString::from("asymmetric tests"), options).unwrap();
    Store {
        hsm,
        dir,
        _tmp: tmp,
    }
}

fn create(hsm: &Hsm, spec: KeySpec, usage: KeyUsage) -> String {
    let request = CreateKeyRequest {
        key_spec: Some(spec),
        key_usage: Some(usage),
        ..Default::default()
    };
    hsm.create_key(request).unwrap().key_id
}

const SPECS: [KeySpec; 11] = [
    KeySpec::Rsa2048,
    KeySpec::Rsa3072,
    KeySpec::Rsa4096,
    KeySpec::EccNistP256,
    KeySpec::EccNistP384,
    KeySpec::EccNistP521,
    KeySpec::EccEd25519,
    KeySpec::Hmac224,
    KeySpec::Hmac256,
    KeySpec::Hmac384,
    KeySpec::Hmac512,
];

/// Signs or MACs once with a new key of `spec`, so its material is used.
fn create_and_use(hsm: &Hsm, spec: KeySpec) {
    if spec.is_hmac() {
        let key = create(hsm, spec, KeyUsage::GenerateVerifyMac);
        let algorithm = hsm.describe_key(&key).unwrap().mac_algorithms[0];
        hsm.generate_mac(&key, b"m", algorithm).unwrap();
    } else {
        let key = create(hsm, spec, KeyUsage::SignVerify);
        let algorithm = hsm.describe_key(&key).unwrap().signing_algorithms[0];
        hsm.sign(&key, b"m", MessageType::Raw, algorithm).unwrap();
    }
}

/// A run of secret bytes inside a PKCS#8 key: the EC private scalar
/// (after `02 01 01 04 <len>` of ECPrivateKey), else the middle of an RSA key.
fn secret_run(private: &[u8]) -> &[u8] {
    match private
        .windows(4)
        .position(|w| w == [0x02, 0x01, 0x01, 0x04])
    {
        Some(at) => &private[at + 5..at + 5 + 24],
        None => &private[private.len() / 2 - 12..private.len() / 2 + 12],
    }
}

/// Every file under `dir`, read whole.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The start of a PKCS#8 PrivateKeyInfo after its outer length: version 0
/// and the AlgorithmIdentifier (public keys carry no version), per family.
const PKCS8_HEADERS: [(DataKeyPairSpec, &[u8]); 2] = [
    (
        DataKeyPairSpec::Rsa2048,
        &[
            0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
        ],
    ),
    (
        DataKeyPairSpec::EccNistP256,
        &[
            0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
        ],
    ),
];

/// A data key pair: its spec, plaintext private key and public key.
type Pair = (DataKeyPairSpec, Zeroizing<Vec<u8>>, Vec<u8>);

/// What of a private key `bytes` holds: a PKCS#8 private-key header, or a
/// 16-byte run of a data key pair's private key that its public key lacks.
fn leaks(bytes: &[u8], pairs: &[Pair]) -> Vec<String> {
    let mut found = Vec::new();
    for (spec, header) in PKCS8_HEADERS {
        if contains(bytes, header) {
            found.push(format!("a {spec} PKCS#8 header"));
        }
    }
    let runs: HashSet<&[u8]> = bytes.windows(16).collect();
    for (spec, private, public) in pairs {
        if private
            .windows(16)
            .any(|w| runs.contains(w) && !contains(public, w))
        {
            found.push(format!("{spec} private key bytes"));
        }
    }
    found
}

#[test]
fn private_material_never_appears_in_plaintext_in_the_data_directory() {
    let s = store();
    let ctx = EncryptionContext::new();
    let wrapping = s
        .hsm
        .create_key(CreateKeyRequest::default())
        .unwrap()
        .key_id;
    for spec in SPECS {
        create_and_use(&s.hsm, spec);
    }
    let mut pairs = Vec::new();
    for &spec in DataKeyPairSpec::ALL {
        let pair = s
            .hsm
            .generate_data_key_pair(&wrapping, spec, &ctx, true)
            .unwrap();
        let private = pair.private_key_plaintext.clone().unwrap();
        let back = s
            .hsm
            .decrypt(&pair.private_key_ciphertext_blob, &ctx, None, None)
            .unwrap();
        assert_eq!(*back.plaintext, *private, "{spec}");
        let without = s
            .hsm
            .generate_data_key_pair(&wrapping, spec, &ctx, false)
            .unwrap();
        assert!(without.private_key_plaintext.is_none());
        pairs.push((spec, private, pair.public_key));
    }
    let check = |dir: &Path| {
        let files = files(dir);
        assert!(!files.is_empty());
        for (path, bytes) in &files {
            let found = leaks(bytes, &pairs);
            assert!(found.is_empty(), "{found:?} in {}", path.display());
        }
    };
    // Positive controls, in memory: the scan finds a whole PKCS#8 key, and
    // a bare run of one without its header.
    for (spec, private, _) in &pairs {
        let mut planted = vec![0u8; 100];
        planted.extend_from_slice(private);
        assert!(!leaks(&planted, &pairs).is_empty(), "{spec}");
        assert!(!leaks(secret_run(private), &pairs).is_empty(), "{spec}");
    }
    check(&s.dir);
    let dir = s.dir.clone();
    drop(s.hsm);
    check(&dir);
}

#[test]
fn errors_never_carry_key_bytes() {
    let s = store();
    let key = create(&s.hsm, KeySpec::EccNistP256, KeyUsage::SignVerify);
    let errors: Vec<Error> = vec![
        s.hsm
            .sign(
                &key,
                &[0; 5000],
                MessageType::Raw,
                SigningAlgorithm::EcdsaSha256,
            )
            .unwrap_err(),
        s.hsm
            .sign(
                &key,
                b"m",
                MessageType::Raw,
                SigningAlgorithm::RsassaPssSha256,
            )
            .unwrap_err(),
        s.hsm
            .verify(
                &key,
                b"m",
                MessageType::Raw,
                &[9; 70],
                SigningAlgorithm::EcdsaSha256,
            )
            .unwrap_err(),
    ];
    let public = s.hsm.get_public_key(&key).unwrap().public_key;
    for error in errors {
        let text = format!("{error} {error:?}");
        assert!(text.len() < 400, "{text}");
        // Not even the public point, in any common rendering.
        let hex: String = public[27..43].iter().map(|b| format!("{b:02x}")).collect();
        assert!(!text.contains(&hex) && !text.contains(&format!("{:?}", &public[27..31])));
    }
}
