//! boto3 (unmodified, from the venv scripts/test builds) against tinfoild's
//! KMS endpoint: every operation, every error path of issue 9
//! (tests/python/boto3_operations.py), and paging over thousands of keys
//! and aliases (tests/python/boto3_paging.py).

use tinfoil_e2e_tests::daemon::Store;
use tinfoil_e2e_tests::kms::KmsDaemon;

#[test]
fn every_operation_and_error_path() {
    let store = Store::init();
    let kms = KmsDaemon::start(&store, &[]);
    let out = kms.python("boto3_operations.py", &[]);
    assert!(out.contains(", 0 failed"), "{out}");
}

#[test]
fn paging_over_2500_keys_and_1200_aliases() {
    let store = Store::init();
    let kms = KmsDaemon::start(&store, &[]);
    let out = kms.python("boto3_paging.py", &["2500", "1200"]);
    assert!(out.contains("paged 2500 keys and 1200 aliases"), "{out}");
}
