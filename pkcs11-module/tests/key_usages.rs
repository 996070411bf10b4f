//! Key-pair templates are honoured or refused, never silently changed:
//! an RSA pair may sign, decrypt, wrap and unwrap at once (pkcs11-tool's
//! default), an EC pair may sign and derive, and a usage the key type
//! cannot have is CKR_TEMPLATE_INCONSISTENT. Against SoftHSM2 (the
//! control) where it agrees, our embedded and daemon backends.

mod common;

use std::process::Command;

use common::{load, rv, user_session, Which};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::Session;

fn flag(session: &Session, h: ObjectHandle, t: AttributeType) -> bool {
    match session.get_attributes(h, &[t]).unwrap().as_slice() {
        [Attribute::Sign(b)]
        | [Attribute::Verify(b)]
        | [Attribute::Encrypt(b)]
        | [Attribute::Decrypt(b)]
        | [Attribute::Wrap(b)]
        | [Attribute::Unwrap(b)]
        | [Attribute::Derive(b)] => *b,
        other => panic!("unexpected {other:?}"),
    }
}

fn an_rsa_pair_signs_and_decrypts(which: Which) {
    let m = load(which);
    let session = user_session(&m, "usages");
    let (public, private) = session
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::ModulusBits(2048.into()),
                Attribute::Verify(true),
                Attribute::Encrypt(true),
                Attribute::Wrap(true),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sign(true),
                Attribute::Decrypt(true),
                Attribute::Unwrap(true),
            ],
        )
        .unwrap();
    for t in [
        AttributeType::Sign,
        AttributeType::Decrypt,
        AttributeType::Unwrap,
    ] {
        assert!(flag(&session, private, t), "{which:?} private {t:?}");
    }
    for t in [
        AttributeType::Verify,
        AttributeType::Encrypt,
        AttributeType::Wrap,
    ] {
        assert!(flag(&session, public, t), "{which:?} public {t:?}");
    }
    let msg = b"both usages kept";
    let sig = session
        .sign(&Mechanism::Sha256RsaPkcs, private, msg)
        .unwrap();
    session
        .verify(&Mechanism::Sha256RsaPkcs, public, msg, &sig)
        .unwrap();
    let ct = session.encrypt(&Mechanism::RsaPkcs, public, msg).unwrap();
    assert_eq!(
        session.decrypt(&Mechanism::RsaPkcs, private, &ct).unwrap(),
        msg
    );
}

fn an_ec_pair_signs_and_derives(which: Which) {
    let m = load(which);
    let session = user_session(&m, "usages");
    let p256 = vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let (public, private) = session
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::EcParams(p256),
                Attribute::Verify(true),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sign(true),
                Attribute::Derive(true),
            ],
        )
        .unwrap();
    assert!(flag(&session, private, AttributeType::Sign));
    assert!(flag(&session, private, AttributeType::Derive));
    assert!(flag(&session, public, AttributeType::Verify));
    let sig = session
        .sign(&Mechanism::Ecdsa, private, &[7u8; 32])
        .unwrap();
    session
        .verify(&Mechanism::Ecdsa, public, &[7u8; 32], &sig)
        .unwrap();
}

/// SoftHSM 2.6 takes these templates (and ignores the usage).
fn a_usage_the_type_cannot_have_is_refused(which: Which) {
    let m = load(which);
    let session = user_session(&m, "usages");
    let p256 = vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let ec = |private: Vec<Attribute>| {
        session.generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::Token(true), Attribute::EcParams(p256.clone())],
            &[vec![Attribute::Token(true)], private].concat(),
        )
    };
    assert_eq!(
        rv(ec(vec![Attribute::Sign(true), Attribute::Decrypt(true)])),
        RvError::TemplateInconsistent
    );
    assert_eq!(
        rv(ec(vec![Attribute::Unwrap(true)])),
        RvError::TemplateInconsistent
    );
    assert_eq!(
        rv(session.generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[Attribute::Token(true), Attribute::ModulusBits(2048.into())],
            &[Attribute::Token(true), Attribute::Derive(true)],
        )),
        RvError::TemplateInconsistent
    );
    assert_eq!(
        rv(session.generate_key_pair(
            &Mechanism::EccEdwardsKeyPairGen,
            &[Attribute::Token(true)],
            &[Attribute::Token(true), Attribute::Derive(true)],
        )),
        RvError::TemplateInconsistent
    );
    // Nothing was made by the refused calls.
    assert!(session
        .find_objects(&[Attribute::Token(true)])
        .unwrap()
        .is_empty());
    // A pair asked to sign only does not decrypt.
    let (public, private) = session
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::ModulusBits(2048.into()),
                Attribute::Verify(true),
            ],
            &[Attribute::Token(true), Attribute::Sign(true)],
        )
        .unwrap();
    assert!(!flag(&session, private, AttributeType::Decrypt));
    assert!(!flag(&session, public, AttributeType::Encrypt));
    assert_eq!(
        rv(session.decrypt_init_check(private)),
        RvError::KeyFunctionNotPermitted
    );
}

trait DecryptInit {
    fn decrypt_init_check(&self, key: ObjectHandle) -> cryptoki::error::Result<Vec<u8>>;
}

impl DecryptInit for Session {
    fn decrypt_init_check(&self, key: ObjectHandle) -> cryptoki::error::Result<Vec<u8>> {
        self.decrypt(&Mechanism::RsaPkcs, key, &[0u8; 256])
    }
}

with_keys!(an_rsa_pair_signs_and_decrypts, an_ec_pair_signs_and_derives);
ours_only_embedded!(a_usage_the_type_cannot_have_is_refused);

const SO: &str = "12345678";
const PIN: &str = "1234";

/// `pkcs11-tool --keypairgen` with its default flags (sign and decrypt)
/// makes a pair that decrypts what `openssl pkeyutl -encrypt` made with
/// its exported public key, and still signs.
fn pkcs11_tool_default_pair_decrypts_openssl_output(softhsm: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let _g = common::exclusive();
    let (module, env) = if softhsm {
        let tokens = d.join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = d.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        (
            std::path::PathBuf::from(common::SOFTHSM),
            ("SOFTHSM2_CONF", conf),
        )
    } else {
        common::write_embedded_config(d);
        (
            common::tinfoil_path(),
            ("TINFOIL_PKCS11_CONFIG", d.join("tinfoil.toml")),
        )
    };
    let tool = |args: &[&str]| {
        let out = Command::new("pkcs11-tool")
            .arg("--module")
            .arg(&module)
            .args(args)
            .env(env.0, &env.1)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pkcs11-tool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    tool(&["--init-token", "--label", "usages", "--so-pin", SO]);
    tool(&[
        "--login",
        "--login-type",
        "so",
        "--so-pin",
        SO,
        "--init-pin",
        "--pin",
        PIN,
    ]);
    tool(&[
        "--login",
        "--pin",
        PIN,
        "--keypairgen",
        "--key-type",
        "rsa:2048",
        "--id",
        "05",
        "--label",
        "both",
    ]);
    let public = d.join("pub.der");
    std::fs::write(
        &public,
        tool(&["--read-object", "--type", "pubkey", "--id", "05"]),
    )
    .unwrap();
    let plain = d.join("plain.bin");
    std::fs::write(&plain, b"a premaster secret, say").unwrap();
    let cipher = d.join("cipher.bin");
    let enc = Command::new("openssl")
        .args(["pkeyutl", "-encrypt", "-pubin", "-keyform", "DER", "-inkey"])
        .arg(&public)
        .arg("-in")
        .arg(&plain)
        .arg("-out")
        .arg(&cipher)
        .output()
        .unwrap();
    assert!(enc.status.success(), "{enc:?}");
    let out = d.join("out.bin");
    tool(&[
        "--login",
        "--pin",
        PIN,
        "--decrypt",
        "-m",
        "RSA-PKCS",
        "--id",
        "05",
        "--input-file",
        cipher.to_str().unwrap(),
        "--output-file",
        out.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&out).unwrap(), b"a premaster secret, say");
    let sig = d.join("sig.bin");
    tool(&[
        "--login",
        "--pin",
        PIN,
        "--sign",
        "-m",
        "SHA256-RSA-PKCS",
        "--id",
        "05",
        "--input-file",
        plain.to_str().unwrap(),
        "--output-file",
        sig.to_str().unwrap(),
    ]);
    let verified = Command::new("openssl")
        .args(["dgst", "-sha256", "-keyform", "DER", "-verify"])
        .arg(&public)
        .arg("-signature")
        .arg(&sig)
        .arg(&plain)
        .output()
        .unwrap();
    assert!(verified.status.success(), "{verified:?}");
}

#[test]
fn pkcs11_tool_default_pair_tinfoil_embedded() {
    pkcs11_tool_default_pair_decrypts_openssl_output(false);
}

#[test]
fn pkcs11_tool_default_pair_softhsm_control() {
    pkcs11_tool_default_pair_decrypts_openssl_output(true);
}
