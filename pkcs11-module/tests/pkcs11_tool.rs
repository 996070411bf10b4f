//! OpenSC's pkcs11-tool against the module: what a fixture user types.

mod common;

use common::tool::{assert_test_threads_pass, embedded_fixture, ok, tool};
use common::{tinfoil_path, write_embedded_config};

const SO: &str = "12345678";
const PIN: &str = "1234";

/// An embedded-backend fixture directory with an initialised token.
fn fixture() -> tempfile::TempDir {
    embedded_fixture(SO, PIN)
}

#[test]
fn info_list_mechanisms_token_and_pin() {
    let dir = fixture();
    let d = dir.path();
    let info = ok(d, &["-I"]);
    // C_GetFunctionList hands out the module's newest list (PKCS#11 3.2).
    assert!(
        info.contains("Tinfoil") && info.contains("Cryptoki version 3.2"),
        "{info}"
    );
    let slots = ok(d, &["-L"]);
    assert!(
        slots.contains("ci-token") && slots.contains("PIN initialized"),
        "{slots}"
    );
    assert!(
        slots.contains("uninitialized"),
        "a free slot stays listed:\n{slots}"
    );
    let mechs = ok(d, &["-M"]);
    for name in ["AES-GCM", "AES-CBC-PAD", "AES-KEY-WRAP", "SHA256"] {
        assert!(mechs.contains(name), "{name} missing from:\n{mechs}");
    }
    let wrong = tool(d, &["--login", "--pin", "9999", "-O"]);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("CKR_PIN_INCORRECT"));
}

#[test]
fn keygen_objects_and_encrypt_decrypt_across_runs() {
    let dir = fixture();
    let d = dir.path();
    ok(
        d,
        &[
            "--login",
            "--pin",
            PIN,
            "--keygen",
            "--key-type",
            "AES:32",
            "--label",
            "data-kek",
            "--id",
            "0a0b",
        ],
    );
    // Another process (the store persisted) lists it.
    let objects = ok(d, &["--login", "--pin", PIN, "-O"]);
    assert!(
        objects.contains("Secret Key Object; AES length 32"),
        "{objects}"
    );
    assert!(
        objects.contains("data-kek") && objects.contains("0a0b"),
        "{objects}"
    );
    // pkcs11-tool makes secret keys with CKA_PRIVATE false unless told
    // --private; a private key is invisible without login.
    ok(
        d,
        &[
            "--login",
            "--pin",
            PIN,
            "--keygen",
            "--key-type",
            "AES:16",
            "--label",
            "hidden",
            "--private",
        ],
    );
    let public = ok(d, &["-O"]);
    assert!(
        public.contains("data-kek") && !public.contains("hidden"),
        "{public}"
    );
    let all = ok(d, &["--login", "--pin", PIN, "-O"]);
    assert!(
        all.contains("hidden") && all.contains("AES length 16"),
        "{all}"
    );

    let plain: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(d.join("plain.bin"), &plain).unwrap();
    let iv = "00112233445566778899aabbccddeeff";
    let p = |name: &str| d.join(name).display().to_string();
    ok(
        d,
        &[
            "--login",
            "--pin",
            PIN,
            "--encrypt",
            "--mechanism",
            "AES-CBC-PAD",
            "--iv",
            iv,
            "--id",
            "0a0b",
            "--input-file",
            &p("plain.bin"),
            "--output-file",
            &p("enc.bin"),
        ],
    );
    let enc = std::fs::read(d.join("enc.bin")).unwrap();
    assert_eq!(enc.len(), 1008);
    assert_ne!(&enc[..16], &plain[..16]);
    ok(
        d,
        &[
            "--login",
            "--pin",
            PIN,
            "--decrypt",
            "--mechanism",
            "AES-CBC-PAD",
            "--iv",
            iv,
            "--id",
            "0a0b",
            "--input-file",
            &p("enc.bin"),
            "--output-file",
            &p("dec.bin"),
        ],
    );
    assert_eq!(std::fs::read(d.join("dec.bin")).unwrap(), plain);
}

#[test]
fn test_threads_races_initialize() {
    let dir = fixture();
    let d = dir.path();
    assert_test_threads_pass(d);
}

#[test]
fn test_fork_reinitialises_in_the_child() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tinfoil.toml"), "backend = \"memory\"\n").unwrap();
    let out = ok(dir.path(), &["--test-fork"]);
    assert!(out.contains("forked child"), "{out}");

    // The embedded store is held by the parent: the child's C_Initialize
    // succeeds and defers opening the store to its first real call (which
    // would get a clear error while the parent holds it: tests/fork.rs).
    let dir = fixture();
    let out = ok(dir.path(), &["--test-fork"]);
    assert!(out.contains("forked child"), "{out}");
    assert!(!out.contains("in use by another process"), "{out}");
    // Nothing of the child's is left holding the store.
    let listed = ok(dir.path(), &["-L"]);
    assert!(listed.contains("ci-token"), "{listed}");

    // No SoftHSM control: SoftHSM 2.6.1's child gets
    // CKR_CRYPTOKI_ALREADY_INITIALIZED from C_Initialize.
}

#[test]
fn keypairgen_sign_and_verify() {
    let dir = fixture();
    let d = dir.path();
    let p = |name: &str| d.join(name).display().to_string();
    std::fs::write(d.join("msg.txt"), b"data to sign\n").unwrap();
    for (key_type, id, mech) in [
        ("EC:prime256v1", "11", "ECDSA-SHA256"),
        ("EC:secp384r1", "12", "ECDSA-SHA384"),
        ("rsa:2048", "21", "SHA256-RSA-PKCS"),
        ("rsa:2048", "22", "SHA256-RSA-PKCS-PSS"),
    ] {
        let made = ok(
            d,
            &[
                "--login",
                "--pin",
                PIN,
                "--keypairgen",
                "--key-type",
                key_type,
                "--id",
                id,
                "--label",
                id,
            ],
        );
        assert!(made.contains("Public Key Object"), "{made}");
        ok(
            d,
            &[
                "--login",
                "--pin",
                PIN,
                "--sign",
                "--mechanism",
                mech,
                "--id",
                id,
                "--input-file",
                &p("msg.txt"),
                "--output-file",
                &p("msg.sig"),
            ],
        );
        let checked = ok(
            d,
            &[
                "--verify",
                "--mechanism",
                mech,
                "--id",
                id,
                "--input-file",
                &p("msg.txt"),
                "--signature-file",
                &p("msg.sig"),
            ],
        );
        assert!(checked.contains("Signature is valid"), "{mech}: {checked}");
        let mut sig = std::fs::read(d.join("msg.sig")).unwrap();
        sig[4] ^= 0x01;
        std::fs::write(d.join("bad.sig"), &sig).unwrap();
        let refused = tool(
            d,
            &[
                "--verify",
                "--mechanism",
                mech,
                "--id",
                id,
                "--input-file",
                &p("msg.txt"),
                "--signature-file",
                &p("bad.sig"),
            ],
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&refused.stdout),
            String::from_utf8_lossy(&refused.stderr)
        );
        assert!(
            text.contains("Invalid signature") || text.contains("CKR_SIGNATURE_INVALID"),
            "{mech}: {text}"
        );
    }
}

#[test]
fn a_second_process_uses_the_store_beside_the_first() {
    let dir = fixture();
    let d = dir.path();
    let _g = common::exclusive();
    write_embedded_config(d);
    let p11 = cryptoki::context::Pkcs11::new(tinfoil_path()).unwrap();
    p11.initialize(cryptoki::context::CInitializeArgs::new(
        cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
    ))
    .unwrap();
    let listed = ok(d, &["-L"]);
    assert!(listed.contains("ci-token"), "{listed}");
    // An object the tool writes while this process holds the store shows
    // here at the next search.
    let data = d.join("data.bin");
    std::fs::write(&data, b"written by pkcs11-tool").unwrap();
    ok(
        d,
        &[
            "--login",
            "--pin",
            PIN,
            "--write-object",
            data.to_str().unwrap(),
            "--type",
            "data",
            "--label",
            "from-the-tool",
        ],
    );
    let slot = p11.get_slots_with_initialized_token().unwrap()[0];
    let session = p11.open_ro_session(slot).unwrap();
    session
        .login(
            cryptoki::session::UserType::User,
            Some(&cryptoki::types::AuthPin::new(PIN.into())),
        )
        .unwrap();
    let found = session
        .find_objects(&[cryptoki::object::Attribute::Label(
            b"from-the-tool".to_vec(),
        )])
        .unwrap();
    assert_eq!(found.len(), 1);
    drop(session);
    p11.finalize().unwrap();
}

#[test]
fn a_store_held_by_tinfoild_gets_a_clear_error() {
    let dir = fixture();
    let d = dir.path();
    let _g = common::exclusive();
    write_embedded_config(d);
    // tinfoild holds a store alone: serve this one.
    let data = d.join("data");
    let passphrase = d.join("passphrase");
    let socket = data.join("tinfoil.sock");
    let mut daemon = std::process::Command::new(common::daemon::binary("tinfoild"))
        .arg("serve")
        .arg("--data-dir")
        .arg(&data)
        .arg("--passphrase-file")
        .arg(&passphrase)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !socket.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "tinfoild never listened"
        );
        if let Some(status) = daemon.try_wait().unwrap() {
            panic!("tinfoild exited: {status}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let second = tool(d, &["-L"]);
    let text = String::from_utf8_lossy(&second.stderr);
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(!second.status.success());
    assert!(
        text.contains("CKR_GENERAL_ERROR") && text.contains("in use by another process"),
        "{text}"
    );
}

#[test]
fn wrap_and_unwrap_with_the_tool() {
    let dir = fixture();
    let d = dir.path();
    let p = |name: &str| d.join(name).display().to_string();
    ok(
        d,
        &[
            "--login",
            "--pin",
            PIN,
            "--keygen",
            "--key-type",
            "AES:32",
            "--label",
            "kek",
            "--id",
            "41",
        ],
    );
    ok(
        d,
        &[
            "--login",
            "--pin",
            PIN,
            "--keygen",
            "--key-type",
            "AES:32",
            "--label",
            "dek",
            "--id",
            "42",
            "--extractable",
        ],
    );
    // RFC 5649 under the number pkcs11-tool and SoftHSM use (0x210A).
    let wrapped = ok(
        d,
        &[
            "--login",
            "--pin",
            PIN,
            "--wrap",
            "-m",
            "0x210A",
            "--id",
            "41",
            "--application-id",
            "42",
            "--output-file",
            &p("wrapped.bin"),
        ],
    );
    assert!(wrapped.contains("Key wrapped"), "{wrapped}");
    assert_eq!(std::fs::read(d.join("wrapped.bin")).unwrap().len(), 40);
    let unwrapped = ok(
        d,
        &[
            "--login",
            "--pin",
            PIN,
            "--unwrap",
            "-m",
            "0x210A",
            "--id",
            "41",
            "--input-file",
            &p("wrapped.bin"),
            "--key-type",
            "AES:",
            "--application-id",
            "43",
        ],
    );
    assert!(
        unwrapped.contains("Key unwrapped") && unwrapped.contains("AES length 32"),
        "{unwrapped}"
    );
    // The restored key (43) decrypts what the original (42) encrypted.
    std::fs::write(d.join("plain.bin"), [0x33u8; 64]).unwrap();
    let iv = "000102030405060708090a0b0c0d0e0f";
    ok(
        d,
        &[
            "--login",
            "--pin",
            PIN,
            "--encrypt",
            "-m",
            "AES-CBC-PAD",
            "--iv",
            iv,
            "--id",
            "42",
            "--input-file",
            &p("plain.bin"),
            "--output-file",
            &p("enc.bin"),
        ],
    );
    ok(
        d,
        &[
            "--login",
            "--pin",
            PIN,
            "--decrypt",
            "-m",
            "AES-CBC-PAD",
            "--iv",
            iv,
            "--id",
            "43",
            "--input-file",
            &p("enc.bin"),
            "--output-file",
            &p("dec.bin"),
        ],
    );
    assert_eq!(std::fs::read(d.join("dec.bin")).unwrap(), vec![0x33u8; 64]);
    // The wrapping key itself is not extractable.
    let refused = tool(
        d,
        &[
            "--login",
            "--pin",
            PIN,
            "--wrap",
            "-m",
            "0x210A",
            "--id",
            "41",
            "--application-id",
            "41",
            "--output-file",
            &p("nope.bin"),
        ],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("CKR_KEY_UNEXTRACTABLE"));
}
