//! Post-quantum keys (issue 16) through the KMS endpoint: boto3
//! (unmodified) creates ML-DSA and ML-KEM keys, signs RAW and EXTERNAL_MU,
//! encapsulates and decapsulates, with pyca/cryptography (OpenSSL) as the
//! second implementation (tests/python/boto3_pq.py).

use tinfoil_e2e_tests::daemon::Store;
use tinfoil_e2e_tests::kms::KmsDaemon;

#[test]
fn ml_dsa_and_ml_kem_through_boto3_checked_by_openssl() {
    let store = Store::init();
    let kms = KmsDaemon::start(&store, &[]);
    let out = kms.python("boto3_pq.py", &[]);
    assert!(out.contains(", 0 failed"), "{out}");
}
