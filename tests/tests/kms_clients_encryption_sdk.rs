//! The AWS Encryption SDK for Python (unmodified, from the venv scripts/test
//! builds) with a Tinfoil key through the KMS endpoint
//! (tests/python/encryption_sdk.py): a 5 MB file encrypted and decrypted
//! with StrictAwsKmsMasterKeyProvider, a changed encryption context
//! refused, DisableKey stopping decryption until EnableKey.

use tinfoil_e2e_tests::daemon::Store;
use tinfoil_e2e_tests::kms::KmsDaemon;

#[test]
fn five_megabytes_disable_key_and_encryption_context() {
    let store = Store::init();
    let kms = KmsDaemon::start(&store, &[]);
    let work = store.dir.path().join("sdk");
    std::fs::create_dir(&work).unwrap();
    let out = kms.python("encryption_sdk.py", &[work.to_str().unwrap()]);
    for step in [
        "5 MB file encrypted and decrypted",
        "a changed encryption context is refused",
        "DisableKey stops decryption",
        "EnableKey restores it",
    ] {
        assert!(out.contains(step), "missing {step:?} in:\n{out}");
    }
}
