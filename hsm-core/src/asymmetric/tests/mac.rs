//! HMAC: known answers, the one-algorithm-per-spec rule, tampered MACs.

use super::*;

/// HMAC of "Hi There" under a key of 0x0b bytes of the spec's length,
/// computed with `openssl dgst -<hash> -mac HMAC`.
const KNOWN_ANSWERS: [(KeySpec, MacAlgorithm, &str); 4] = [
    (KeySpec::Hmac224, MacAlgorithm::HmacSha224,
        "1abbc7c42cf4ca9f9d7b624564cb72d7b0945ea0a615095904a0fd34"),
    (KeySpec::Hmac256, MacAlgorithm::HmacSha256,
        "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7"),
    (KeySpec::Hmac384, MacAlgorithm::HmacSha384,
        "b6a8d5636f5c6a7224f9977dcf7ee6c7fb6d0c48cbdee9737a959796489bddbc4c5df61d5b3297b4fb68dab9f1b582c2"),
    (KeySpec::Hmac512, MacAlgorithm::HmacSha512,
        "637edc6e01dce7e6742a99451aae82df23da3e92439e590e43e761b33e910fb8ac2878ebd5803f6f0b61dbce5e251ff8789a4722c1be65aea45fd464e89f8f5b"),
];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn macs_match_known_answers_and_verify() {
    for (spec, algorithm, expected) in KNOWN_ANSWERS {
        let secret = vec![0x0b; expected.len() / 2];
        let mac = generate_mac(spec, &secret, algorithm, b"Hi There").unwrap();
        assert_eq!(hex(&mac), expected, "{spec}");
        assert!(verify_mac(spec, &secret, algorithm, b"Hi There", &mac).unwrap());
        assert!(!verify_mac(spec, &secret, algorithm, b"Hi there", &mac).unwrap());
    }
}

#[test]
fn generated_secrets_have_the_spec_length_and_round_trip() {
    for (spec, algorithm, expected) in KNOWN_ANSWERS {
        let secret = generate(spec).unwrap();
        assert_eq!(secret.len() * 2, expected.len(), "{spec}");
        assert_eq!(mac_algorithms(spec), &[algorithm]);
        let message = vec![9u8; MAX_MESSAGE_LEN];
        let mac = generate_mac(spec, &secret, algorithm, &message).unwrap();
        assert!(verify_mac(spec, &secret, algorithm, &message, &mac).unwrap());
    }
    assert!(mac_algorithms(KeySpec::Rsa2048).is_empty());
}

#[test]
fn each_hmac_spec_allows_only_its_own_algorithm() {
    for (spec, own, _) in KNOWN_ANSWERS {
        let secret = generate(spec).unwrap();
        for &algorithm in MacAlgorithm::ALL.iter().filter(|a| **a != own) {
            let result = generate_mac(spec, &secret, algorithm, b"m");
            assert_eq!(
                kind(result),
                "InvalidKeyUsageException",
                "{spec} {algorithm}"
            );
            let result = verify_mac(spec, &secret, algorithm, b"m", &[0; 32]);
            assert_eq!(
                kind(result),
                "InvalidKeyUsageException",
                "{spec} {algorithm}"
            );
        }
    }
    let result = generate_mac(KeySpec::Rsa2048, &[0; 32], MacAlgorithm::HmacSha256, b"m");
    assert_eq!(kind(result), "InvalidKeyUsageException");
}

#[test]
fn tampered_truncated_and_empty_macs_do_not_verify() {
    let (spec, algorithm) = (KeySpec::Hmac256, MacAlgorithm::HmacSha256);
    let secret = generate(spec).unwrap();
    let mac = generate_mac(spec, &secret, algorithm, b"message").unwrap();
    let mut extended = mac.clone();
    extended.push(0);
    let mut bad: Vec<Vec<u8>> = vec![vec![], mac[..31].to_vec(), extended, vec![0; 32]];
    for position in [0, 15, 31] {
        let mut tampered = mac.clone();
        tampered[position] ^= 0x01;
        bad.push(tampered);
    }
    for candidate in bad {
        let valid = verify_mac(spec, &secret, algorithm, b"message", &candidate).unwrap();
        assert!(!valid, "{} bytes", candidate.len());
    }
    let other = generate(spec).unwrap();
    assert!(!verify_mac(spec, &other, algorithm, b"message", &mac).unwrap());
}

#[test]
fn mac_messages_are_one_to_4096_bytes_and_secrets_the_spec_length() {
    let (spec, algorithm) = (KeySpec::Hmac384, MacAlgorithm::HmacSha384);
    let secret = generate(spec).unwrap();
    for bad in [vec![], vec![0; MAX_MESSAGE_LEN + 1]] {
        assert_eq!(
            kind(generate_mac(spec, &secret, algorithm, &bad)),
            "ValidationException"
        );
        let result = verify_mac(spec, &secret, algorithm, &bad, &[0; 48]);
        assert_eq!(kind(result), "ValidationException");
    }
    // A secret of another length is a PKCS#11 generic secret (tag
    // pkcs11:value_len): refused here, named as such.
    let result = generate_mac(spec, &secret[..47], algorithm, b"m");
    assert_eq!(kind(result), "InvalidKeyUsageException");
    let result = generate_mac(spec, &[], algorithm, b"m");
    assert_eq!(kind(result), "KMSInternalException");
}
