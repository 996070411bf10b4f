//! OpenSSL through libengine-pkcs11-openssl (libp11) and GnuTLS's p11tool
//! against the module: self-signed certificates from token keys that
//! plain `openssl verify` accepts, `openssl pkeyutl -sign`, and objects
//! listed by pkcs11: URI. The token holds no Ed25519 key (libp11 0.4.12
//! stops enumerating private keys on one).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{tinfoil_path, write_embedded_config};

const ENGINE: &str = "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so";
const PIN: &str = "1234";

fn run(cmd: &mut Command) -> (bool, String) {
    let out: Output = cmd
        .output()
        .expect("the tool is installed (see scripts/test)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[track_caller]
fn ok(cmd: &mut Command) -> String {
    let (success, text) = run(cmd);
    assert!(success, "{cmd:?} failed:\n{text}");
    text
}

fn tool(d: &Path) -> Command {
    let mut c = Command::new("pkcs11-tool");
    c.arg("--module").arg(tinfoil_path());
    c.env("TINFOIL_PKCS11_CONFIG", d.join("tinfoil.toml"));
    c
}

fn openssl(d: &Path) -> Command {
    let mut c = Command::new("openssl");
    c.env("TINFOIL_PKCS11_CONFIG", d.join("tinfoil.toml"));
    c.env("OPENSSL_CONF", d.join("openssl.cnf"));
    c
}

/// A token "ossl" with an RSA-2048 and a P-256 key pair, and an OpenSSL
/// configuration loading the pkcs11 engine on our module.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    {
        let _g = common::exclusive();
        write_embedded_config(d);
    }
    ok(tool(d).args(["--init-token", "--label", "ossl", "--so-pin", "12345678"]));
    ok(tool(d).args([
        "--login",
        "--login-type",
        "so",
        "--so-pin",
        "12345678",
        "--init-pin",
        "--pin",
        PIN,
    ]));
    ok(tool(d).args([
        "--login",
        "--pin",
        PIN,
        "--keypairgen",
        "--key-type",
        "rsa:2048",
        "--label",
        "rsakey",
        "--id",
        "01",
    ]));
    ok(tool(d).args([
        "--login",
        "--pin",
        PIN,
        "--keypairgen",
        "--key-type",
        "EC:prime256v1",
        "--label",
        "eckey",
        "--id",
        "02",
    ]));
    let conf = format!(
        "openssl_conf = openssl_init\n[openssl_init]\nengines = engine_section\n[engine_section]\npkcs11 = pkcs11_section\n\
         [pkcs11_section]\nengine_id = pkcs11\ndynamic_path = {ENGINE}\nMODULE_PATH = {}\nPIN = {PIN}\ninit = 0\n\
         [req]\ndistinguished_name = dn\n[dn]\n",
        tinfoil_path().display()
    );
    std::fs::write(d.join("openssl.cnf"), conf).unwrap();
    dir
}

#[test]
fn self_signed_certificates_verify_and_pkeyutl_signs() {
    let dir = fixture();
    let d = dir.path();
    let p = |name: &str| d.join(name).display().to_string();
    for key in ["rsakey", "eckey"] {
        let uri = format!("pkcs11:token=ossl;object={key};type=private");
        let cert = p(&format!("{key}.pem"));
        ok(openssl(d)
            .args([
                "req",
                "-new",
                "-x509",
                "-days",
                "1",
                "-subj",
                &format!("/CN={key}"),
            ])
            .args([
                "-engine", "pkcs11", "-keyform", "engine", "-key", &uri, "-out", &cert,
            ]));
        let verified = ok(Command::new("openssl").args(["verify", "-CAfile", &cert, &cert]));
        assert!(verified.contains(": OK"), "{verified}");

        // The input is a SHA-256 digest. For RSA with a digest option,
        // libp11 frames it in a DigestInfo; without one, CKM_RSA_PKCS
        // signs the 32 bytes as they are (the big-integer path) and
        // `openssl pkeyutl -verify` compares what it recovers.
        std::fs::write(d.join("hash.bin"), [7u8; 32]).unwrap();
        let digest_opts: &[&[&str]] = if key == "rsakey" {
            &[&["-pkeyopt", "digest:sha256"], &[]]
        } else {
            &[&[]]
        };
        let pubkey = ok(Command::new("openssl").args(["x509", "-in", &cert, "-pubkey", "-noout"]));
        std::fs::write(d.join("pub.pem"), pubkey).unwrap();
        for digest_opt in digest_opts {
            ok(openssl(d)
                .args([
                    "pkeyutl", "-sign", "-engine", "pkcs11", "-keyform", "engine", "-inkey", &uri,
                ])
                .args(*digest_opt)
                .args(["-in", &p("hash.bin"), "-out", &p("sig.bin")]));
            let checked = ok(Command::new("openssl")
                .args(["pkeyutl", "-verify", "-pubin", "-inkey", &p("pub.pem")])
                .args(*digest_opt)
                .args(["-in", &p("hash.bin"), "-sigfile", &p("sig.bin")]));
            assert!(checked.contains("Verified Successfully"), "{checked}");
            // A different input does not verify with that signature.
            std::fs::write(d.join("other.bin"), [8u8; 32]).unwrap();
            let (success, _) = run(Command::new("openssl")
                .args(["pkeyutl", "-verify", "-pubin", "-inkey", &p("pub.pem")])
                .args(*digest_opt)
                .args(["-in", &p("other.bin"), "-sigfile", &p("sig.bin")]));
            assert!(!success, "{key} {digest_opt:?}: a wrong input verified");
        }
    }
}

#[test]
fn p11tool_lists_token_and_objects_by_uri() {
    let dir = fixture();
    let d = dir.path();
    let provider = format!("--provider={}", tinfoil_path().display());
    let tokens = ok(Command::new("p11tool")
        .arg(&provider)
        .arg("--list-tokens")
        .env("TINFOIL_PKCS11_CONFIG", d.join("tinfoil.toml")));
    assert!(
        tokens.contains("token=ossl") && tokens.contains("manufacturer=Tinfoil"),
        "{tokens}"
    );
    let public = ok(Command::new("p11tool")
        .arg(&provider)
        .args(["--list-all", "pkcs11:token=ossl"])
        .env("TINFOIL_PKCS11_CONFIG", d.join("tinfoil.toml")));
    assert!(
        public.contains("object=rsakey;type=public") && public.contains("object=eckey;type=public"),
        "{public}"
    );
    assert!(
        !public.contains("type=private"),
        "private keys need a login:\n{public}"
    );
    let all = ok(Command::new("p11tool")
        .arg(&provider)
        .args(["--login", "--list-all", "pkcs11:token=ossl"])
        .env("TINFOIL_PKCS11_CONFIG", d.join("tinfoil.toml"))
        .env("GNUTLS_PIN", PIN));
    assert!(
        all.contains("object=rsakey;type=private") && all.contains("object=eckey;type=private"),
        "{all}"
    );
}
