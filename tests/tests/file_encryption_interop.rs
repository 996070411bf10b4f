//! `tinfoil encrypt-file` / `decrypt-file` against the AWS Encryption SDK
//! for Python (unmodified, pinned in tests/python/requirements.txt) through
//! tinfoild's KMS endpoint, both ways: 0 bytes, 1 byte, exactly one frame,
//! one frame + 1, 5 MB; with and without a context; suites 0x0478 and
//! 0x0578; a message under two keys; a legacy 0x0378 message.

use std::path::{Path, PathBuf};

use tinfoil_e2e_tests::daemon::Store;
use tinfoil_e2e_tests::daemon::{json, stderr, Daemon};
use tinfoil_e2e_tests::kms::KmsDaemon;

fn create_key(d: &Daemon) -> String {
    json(&d.cli(&["create-key", "--output", "json"]))["KeyMetadata"]["Arn"]
        .as_str()
        .expect("an ARN")
        .to_string()
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

struct Case {
    plain: PathBuf,
    suite: &'static str,
    context: Option<(&'static str, serde_json::Value)>,
    /// tinfoil's message, which the SDK decrypts.
    tinfoil_msg: PathBuf,
    sdk_plain: PathBuf,
    /// The SDK's message, which tinfoil decrypts.
    sdk_msg: PathBuf,
    tinfoil_plain: PathBuf,
}

#[test]
fn interop_with_the_python_encryption_sdk_both_ways() {
    let store = Store::init();
    let kms = KmsDaemon::start(&store, &[]);
    let d = &kms.daemon;
    let key = create_key(d);
    let work = store.dir.path().join("interop");
    std::fs::create_dir(&work).unwrap();

    let mut cases = Vec::new();
    for (i, len) in [0usize, 1, 4096, 4097, 5_000_000].into_iter().enumerate() {
        let plain = work.join(format!("plain-{len}"));
        std::fs::write(&plain, data(len, i as u64 + 10)).unwrap();
        for suite in ["0x0478", "0x0578"] {
            for context in [
                None,
                Some((
                    "purpose=interop,tenant=a",
                    serde_json::json!({"purpose": "interop", "tenant": "a"}),
                )),
            ] {
                let tag = format!("{len}-{suite}-{}", context.is_some());
                cases.push(Case {
                    plain: plain.clone(),
                    suite,
                    context,
                    tinfoil_msg: work.join(format!("tinfoil-{tag}.msg")),
                    sdk_plain: work.join(format!("sdk-{tag}.out")),
                    sdk_msg: work.join(format!("sdk-{tag}.msg")),
                    tinfoil_plain: work.join(format!("tinfoil-{tag}.out")),
                });
            }
        }
    }

    // tinfoil encrypts; the jobs for the SDK: decrypt those, encrypt the same.
    let mut jobs = Vec::new();
    for c in &cases {
        let mut args = vec![
            "encrypt-file",
            "--key-id",
            &key,
            "--algorithm-suite",
            c.suite,
            "--input-file",
            s(&c.plain),
            "--output-file",
            s(&c.tinfoil_msg),
        ];
        if let Some((pairs, _)) = &c.context {
            args.extend(["--encryption-context", pairs]);
        }
        let out = d.cli(&args);
        assert!(
            out.status.success(),
            "encrypt-file {args:?}: {}",
            stderr(&out)
        );
        jobs.push(serde_json::json!({"mode": "decrypt", "key": key,
            "input": c.tinfoil_msg, "output": c.sdk_plain}));
        jobs.push(
            serde_json::json!({"mode": "encrypt", "key": key, "suite": c.suite,
            "input": c.plain, "output": c.sdk_msg,
            "context": c.context.as_ref().map_or(serde_json::json!({}), |(_, j)| j.clone())}),
        );
    }
    // Two keys: the SDK opens the message with the second key alone.
    let key2 = create_key(d);
    let two = work.join("two-keys.msg");
    let plain = &work.join("plain-4096");
    let out = d.cli(&[
        "encrypt-file",
        "--key-id",
        &key,
        "--key-id",
        &key2,
        "--input-file",
        s(plain),
        "--output-file",
        s(&two),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    jobs.push(
        serde_json::json!({"mode": "decrypt", "key": key2, "input": two,
        "output": work.join("two-keys.out")}),
    );
    // A legacy (non-committing, version 1) message from the SDK.
    let legacy = work.join("legacy.msg");
    jobs.push(
        serde_json::json!({"mode": "encrypt", "key": key, "suite": "0x0378",
        "input": plain, "output": legacy, "context": {"era": "legacy"}}),
    );

    let manifest = work.join("jobs.json");
    std::fs::write(&manifest, serde_json::to_vec(&jobs).unwrap()).unwrap();
    let results: Vec<serde_json::Value> =
        serde_json::from_str(&kms.python("esdk_interop.py", &[s(&manifest)])).unwrap();
    assert_eq!(results.len(), jobs.len());

    for (i, c) in cases.iter().enumerate() {
        let what = format!(
            "{:?} {} context={}",
            c.plain.file_name().unwrap(),
            c.suite,
            c.context.is_some()
        );
        // The SDK read tinfoil's message as tinfoil wrote it.
        let r = &results[2 * i];
        assert_eq!(
            r["suite"],
            u64::from_str_radix(&c.suite[2..], 16).unwrap(),
            "{what}: {r}"
        );
        assert_eq!(r["frame_length"], 4096, "{what}");
        assert_eq!(r["keys"], serde_json::json!([key]), "{what}");
        let ctx = r["context"].as_object().unwrap();
        assert_eq!(
            ctx.contains_key("aws-crypto-public-key"),
            c.suite == "0x0578",
            "{what}: {r}"
        );
        if let Some((_, want)) = &c.context {
            for (k, v) in want.as_object().unwrap() {
                assert_eq!(ctx.get(k), Some(v), "{what}: {r}");
            }
        }
        assert_eq!(
            ctx.len(),
            c.context
                .as_ref()
                .map_or(0, |(_, j)| j.as_object().unwrap().len())
                + usize::from(c.suite == "0x0578")
        );
        assert!(
            std::fs::read(&c.sdk_plain).unwrap() == std::fs::read(&c.plain).unwrap(),
            "{what}: the SDK decrypted something else"
        );
        // tinfoil reads the SDK's message, requiring its context and key.
        let mut args = vec![
            "decrypt-file",
            "--key-id",
            &key,
            "--input-file",
            s(&c.sdk_msg),
            "--output-file",
            s(&c.tinfoil_plain),
            "--quiet",
        ];
        if let Some((pairs, _)) = &c.context {
            args.extend(["--encryption-context", pairs]);
        }
        let out = d.cli(&args);
        assert!(
            out.status.success(),
            "{what}: decrypt-file of the SDK's message: {}",
            stderr(&out)
        );
        assert!(
            std::fs::read(&c.tinfoil_plain).unwrap() == std::fs::read(&c.plain).unwrap(),
            "{what}: tinfoil decrypted something else"
        );
    }
    assert_eq!(
        std::fs::read(work.join("two-keys.out")).unwrap(),
        std::fs::read(plain).unwrap()
    );

    // The legacy message: refused by default, read with the flag.
    let legacy_out = work.join("legacy.out");
    let out = d.cli(&[
        "decrypt-file",
        "--input-file",
        s(&legacy),
        "--output-file",
        s(&legacy_out),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--allow-non-committing"),
        "{}",
        stderr(&out)
    );
    assert!(!legacy_out.exists());
    let out = d.cli(&[
        "decrypt-file",
        "--input-file",
        s(&legacy),
        "--output-file",
        s(&legacy_out),
        "--allow-non-committing",
        "--encryption-context",
        "era=legacy",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&legacy_out).unwrap(),
        std::fs::read(plain).unwrap()
    );
}
