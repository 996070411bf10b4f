//! X.509 certificate objects (CKO_CERTIFICATE, CKC_X_509) through the
//! cryptoki crate and through pkcs11-tool and p11tool, against our module
//! and SoftHSM2 as the control: created as token and session objects,
//! found by attribute and by p11-kit URI, read back, copied and destroyed;
//! subject, issuer and serial filled from the DER when left out (ours: the
//! control requires them) and checked against it when given.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{load, rv, user_session, Which, SOFTHSM};
use cryptoki::error::RvError;
use cryptoki::object::{Attribute, AttributeType, CertificateType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

/// A fresh self-signed EC P-256 certificate (DER) made by OpenSSL.
fn make_cert(dir: &Path, cn: &str) -> Vec<u8> {
    let out = dir.join(format!("{cn}.der"));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .arg("ec_paramgen_curve:P-256")
        .args(["-nodes", "-days", "2", "-outform", "DER", "-subj"])
        .arg(format!("/CN={cn}/O=Tinfoil tests"))
        .arg("-keyout")
        .arg(dir.join(format!("{cn}.key")))
        .arg("-out")
        .arg(&out)
        .output()
        .expect("openssl");
    assert!(status.status.success(), "{status:?}");
    std::fs::read(out).unwrap()
}

/// Splits one DER TLV off `input`: (whole element, contents, rest).
fn tlv(input: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let first = input[1];
    let (len, head) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        let len = input[2..2 + n]
            .iter()
            .fold(0usize, |a, b| (a << 8) | *b as usize);
        (len, 2 + n)
    };
    (
        &input[..head + len],
        &input[head..head + len],
        &input[head + len..],
    )
}

/// (subject, issuer, serial) DER elements of a certificate, read here
/// independently of the module.
fn names(cert: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (_, body, _) = tlv(cert);
    let (_, tbs, _) = tlv(body);
    let mut rest = tbs;
    if rest[0] == 0xa0 {
        rest = tlv(rest).2; // version
    }
    let (serial, _, rest) = tlv(rest);
    let rest = tlv(rest).2; // signature algorithm
    let (issuer, _, rest) = tlv(rest);
    let rest = tlv(rest).2; // validity
    let (subject, _, _) = tlv(rest);
    (subject.to_vec(), issuer.to_vec(), serial.to_vec())
}

fn cert_template(der: &[u8], token: bool, label: &str, full: bool) -> Vec<Attribute> {
    let mut t = vec![
        Attribute::Class(ObjectClass::CERTIFICATE),
        Attribute::CertificateType(CertificateType::X_509),
        Attribute::Token(token),
        Attribute::Value(der.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(vec![0x01]),
    ];
    if full {
        let (subject, issuer, serial) = names(der);
        t.push(Attribute::Subject(subject));
        t.push(Attribute::Issuer(issuer));
        t.push(Attribute::SerialNumber(serial));
    }
    t
}

fn find(session: &Session, template: &[Attribute]) -> Vec<ObjectHandle> {
    session.find_objects(template).unwrap()
}

fn bytes(session: &Session, h: ObjectHandle, t: AttributeType) -> Vec<u8> {
    match session.get_attributes(h, &[t]).unwrap().pop() {
        Some(Attribute::Value(v))
        | Some(Attribute::Subject(v))
        | Some(Attribute::Issuer(v))
        | Some(Attribute::SerialNumber(v))
        | Some(Attribute::Label(v))
        | Some(Attribute::Id(v)) => v,
        other => panic!("unexpected {other:?}"),
    }
}

fn certificates_are_created_found_copied_and_destroyed(which: Which) {
    let m = load(which);
    let der = make_cert(m.dir.path(), "round-trip");
    let session = user_session(&m, "certs");
    let token_cert = session
        .create_object(&cert_template(&der, true, "tok", true))
        .unwrap();
    let session_cert = session
        .create_object(&cert_template(&der, false, "ses", true))
        .unwrap();
    let by_class = [
        Attribute::Class(ObjectClass::CERTIFICATE),
        Attribute::CertificateType(CertificateType::X_509),
    ];
    let mut all = find(&session, &by_class);
    all.sort_by_key(|h| h.handle());
    let mut want = vec![token_cert, session_cert];
    want.sort_by_key(|h| h.handle());
    assert_eq!(all, want);
    let (subject, issuer, serial) = names(&der);
    let by_subject = find(
        &session,
        &[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Subject(subject.clone()),
            Attribute::Token(true),
        ],
    );
    assert_eq!(by_subject, vec![token_cert]);
    assert_eq!(bytes(&session, token_cert, AttributeType::Value), der);
    assert_eq!(bytes(&session, token_cert, AttributeType::Issuer), issuer);
    assert_eq!(
        bytes(&session, token_cert, AttributeType::SerialNumber),
        serial
    );
    // A certificate is public by default: seen without login.
    match session
        .get_attributes(token_cert, &[AttributeType::Private])
        .unwrap()
        .as_slice()
    {
        [Attribute::Private(p)] => assert!(!p, "{which:?}"),
        other => panic!("{other:?}"),
    }
    // Its value is fixed.
    assert_eq!(
        rv(session.update_attributes(token_cert, &[Attribute::Value(vec![0x30, 0x00])])),
        RvError::AttributeReadOnly
    );
    // The label may change.
    session
        .update_attributes(token_cert, &[Attribute::Label(b"tok2".to_vec())])
        .unwrap();
    assert_eq!(bytes(&session, token_cert, AttributeType::Label), b"tok2");

    // Copy the session certificate to the token.
    let copy = session
        .copy_object(
            session_cert,
            &[Attribute::Token(true), Attribute::Label(b"copied".to_vec())],
        )
        .unwrap();
    assert_eq!(bytes(&session, copy, AttributeType::Value), der);
    assert_eq!(
        find(&session, &[Attribute::Label(b"copied".to_vec())]),
        vec![copy]
    );
    session.destroy_object(copy).unwrap();
    assert!(find(&session, &[Attribute::Label(b"copied".to_vec())]).is_empty());
    session.destroy_object(session_cert).unwrap();
    assert_eq!(find(&session, &by_class), vec![token_cert]);

    // The token certificate outlives the session and is seen by a new one.
    session.logout().unwrap();
    drop(session);
    let slot = m
        .p11
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| m.p11.get_token_info(*s).unwrap().label() == "certs")
        .unwrap();
    let public = m.p11.open_ro_session(slot).unwrap();
    let found = find(&public, &[Attribute::Label(b"tok2".to_vec())]);
    assert_eq!(found.len(), 1);
    assert_eq!(bytes(&public, found[0], AttributeType::Value), der);
}

/// Ours only: SoftHSM 2.6 neither fills in nor checks these.
fn subject_issuer_and_serial_come_from_the_der(which: Which) {
    let m = load(which);
    let der = make_cert(m.dir.path(), "filled");
    let session = user_session(&m, "certs");
    let cert = session
        .create_object(&cert_template(&der, true, "filled", false))
        .unwrap();
    let (subject, issuer, serial) = names(&der);
    assert_eq!(bytes(&session, cert, AttributeType::Subject), subject);
    assert_eq!(bytes(&session, cert, AttributeType::Issuer), issuer);
    assert_eq!(bytes(&session, cert, AttributeType::SerialNumber), serial);
    // A given subject must agree with the DER.
    let other = names(&make_cert(m.dir.path(), "other")).0;
    let mut wrong = cert_template(&der, false, "wrong", false);
    wrong.push(Attribute::Subject(other));
    assert_eq!(
        rv(session.create_object(&wrong)),
        RvError::AttributeValueInvalid
    );
    let mut garbage = cert_template(b"\x30\x03\x02\x01\x01", false, "garbage", false);
    garbage.truncate(6);
    assert_eq!(
        rv(session.create_object(&garbage)),
        RvError::AttributeValueInvalid
    );
    // No CKA_VALUE: incomplete.
    let no_value: Vec<Attribute> = cert_template(&der, false, "x", false)
        .into_iter()
        .filter(|a| a.attribute_type() != AttributeType::Value)
        .collect();
    assert_eq!(
        rv(session.create_object(&no_value)),
        RvError::TemplateIncomplete
    );
    // Only the SO marks a certificate trusted.
    let mut trusted = cert_template(&der, false, "t", false);
    trusted.push(Attribute::Trusted(true));
    assert_eq!(
        rv(session.create_object(&trusted)),
        RvError::AttributeReadOnly
    );
    // An attribute a certificate does not have cannot be set.
    assert_eq!(
        rv(session.update_attributes(cert, &[Attribute::Modulus(vec![1, 2, 3])])),
        RvError::AttributeTypeInvalid
    );
    // The public key info comes from the certificate too.
    match session
        .get_attributes(cert, &[AttributeType::PublicKeyInfo])
        .unwrap()
        .as_slice()
    {
        [Attribute::PublicKeyInfo(spki)] => {
            assert_eq!(spki[0], 0x30);
            assert!(der.windows(spki.len()).any(|w| w == spki.as_slice()));
        }
        other => panic!("{other:?}"),
    }
}

with_keys!(certificates_are_created_found_copied_and_destroyed);
ours_only!(subject_issuer_and_serial_come_from_the_der);

/// A tool run on our module (embedded, configuration in `dir`) or on
/// SoftHSM2 (its configuration in `dir`).
struct Fixture {
    dir: tempfile::TempDir,
    module: PathBuf,
    env: (&'static str, PathBuf),
}

const SO: &str = "12345678";
const PIN: &str = "1234";

impl Fixture {
    fn new(softhsm: bool) -> Fixture {
        let _g = common::exclusive();
        let dir = tempfile::tempdir().unwrap();
        let (module, env) = if softhsm {
            let tokens = dir.path().join("tokens");
            std::fs::create_dir(&tokens).unwrap();
            let conf = dir.path().join("softhsm2.conf");
            std::fs::write(
                &conf,
                format!(
                    "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                    tokens.display()
                ),
            )
            .unwrap();
            (PathBuf::from(SOFTHSM), ("SOFTHSM2_CONF", conf))
        } else {
            common::write_embedded_config(dir.path());
            (
                common::tinfoil_path(),
                ("TINFOIL_PKCS11_CONFIG", dir.path().join("tinfoil.toml")),
            )
        };
        let f = Fixture { dir, module, env };
        f.tool(&["--init-token", "--label", "certs", "--so-pin", SO]);
        f.tool(&[
            "--login",
            "--login-type",
            "so",
            "--so-pin",
            SO,
            "--init-pin",
            "--pin",
            PIN,
        ]);
        f
    }

    fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        Command::new(program)
            .args(args)
            .env(self.env.0, &self.env.1)
            .env("GNUTLS_PIN", PIN)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"))
    }

    #[track_caller]
    fn tool(&self, args: &[&str]) -> Vec<u8> {
        let mut all = vec!["--module", self.module.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = self.run("pkcs11-tool", &all);
        assert!(
            out.status.success(),
            "pkcs11-tool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    #[track_caller]
    fn p11tool(&self, args: &[&str]) -> Vec<u8> {
        let provider = format!("--provider={}", self.module.display());
        let mut all = vec![provider.as_str()];
        all.extend_from_slice(args);
        let out = self.run("p11tool", &all);
        assert!(
            out.status.success(),
            "p11tool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

fn pem_body(pem: &[u8]) -> String {
    String::from_utf8_lossy(pem)
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

fn tools_write_list_read_and_export_certificates(softhsm: bool) {
    let f = Fixture::new(softhsm);
    let d = f.dir.path();
    let der = make_cert(d, "tool-cert");
    let der_path = d.join("tool-cert.der");
    f.tool(&[
        "--login",
        "--pin",
        PIN,
        "--write-object",
        der_path.to_str().unwrap(),
        "--type",
        "cert",
        "--id",
        "01",
        "--label",
        "c",
    ]);
    let listed =
        String::from_utf8_lossy(&f.tool(&["--list-objects", "--type", "cert"])).into_owned();
    assert!(
        listed.contains("Certificate Object") && listed.contains("label:      c"),
        "{listed}"
    );
    assert!(listed.contains("tool-cert"), "subject shown:\n{listed}");
    let read = f.tool(&["-r", "--type", "cert", "--id", "01"]);
    assert_eq!(read, der, "pkcs11-tool -r gives back the DER");

    // p11tool: write a second one from PEM, find both by URI, export one.
    let pem_path = d.join("second.pem");
    let second = make_cert(d, "second");
    let converted = Command::new("openssl")
        .args(["x509", "-inform", "DER", "-in"])
        .arg(d.join("second.der"))
        .arg("-out")
        .arg(&pem_path)
        .status()
        .unwrap();
    assert!(converted.success());
    f.p11tool(&[
        "--login",
        "--write",
        "--no-mark-private",
        "--load-certificate",
        pem_path.to_str().unwrap(),
        "--label",
        "second",
        "pkcs11:token=certs",
    ]);
    let list = String::from_utf8_lossy(&f.p11tool(&["--list-all-certs", "pkcs11:token=certs"]))
        .into_owned();
    assert!(
        list.contains("object=c;type=cert") && list.contains("object=second;type=cert"),
        "{list}"
    );
    let exported = f.p11tool(&["--export", "pkcs11:token=certs;object=second;type=cert"]);
    let want = Command::new("openssl")
        .args(["x509", "-inform", "DER", "-in"])
        .arg(d.join("second.der"))
        .output()
        .unwrap()
        .stdout;
    assert_eq!(pem_body(&exported), pem_body(&want));
    assert!(!second.is_empty());
    // Destroyed by URI-style selection with pkcs11-tool.
    f.tool(&[
        "--login",
        "--pin",
        PIN,
        "--delete-object",
        "--type",
        "cert",
        "--label",
        "second",
    ]);
    let list = String::from_utf8_lossy(&f.p11tool(&["--list-all-certs", "pkcs11:token=certs"]))
        .into_owned();
    assert!(!list.contains("object=second"), "{list}");
}

#[test]
fn tools_on_certificates_tinfoil_embedded() {
    tools_write_list_read_and_export_certificates(false);
}

#[test]
fn tools_on_certificates_softhsm_control() {
    tools_write_list_read_and_export_certificates(true);
}
