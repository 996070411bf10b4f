//! SigV4: the Authorization header parser, X-Amz-Date parsing, and the
//! whole pre-signature check with arbitrary headers, path and query.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tinfoil_daemon::kms_api::sigv4;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = sigv4::parse_authorization(&text);
    if let Some(t) = sigv4::parse_amz_date(&text) {
        let _ = sigv4::format_amz_date(t);
    }
    // Format then parse is the identity for years 0..=9999.
    if data.len() >= 8 {
        let n = i64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
        let t = n.rem_euclid(253_402_300_800) - 62_167_219_200;
        let formatted = sigv4::format_amz_date(t);
        assert_eq!(sigv4::parse_amz_date(&formatted), Some(t), "{formatted}");
    }
    // Lines: method, path, query, then `name: value` headers.
    let mut lines = text.split('\n');
    let method = lines.next().unwrap_or("POST");
    let path = lines.next().unwrap_or("/");
    let query = lines.next().unwrap_or("");
    let mut headers = HeaderMap::new();
    for line in lines.take(64) {
        if let Some((name, value)) = line.split_once(':') {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.trim().as_bytes()),
                HeaderValue::from_bytes(value.trim_start().as_bytes()),
            ) {
                headers.append(n, v);
            }
        }
    }
    let payload = sigv4::sha256_hex(data);
    let parts = sigv4::RequestParts {
        method,
        path,
        query,
        headers: &headers,
        payload_sha256: &payload,
    };
    let _ = sigv4::prepare(
        &parts,
        &sigv4::Expect {
            region: "us-east-1",
            now: 1_700_000_000,
            max_skew_secs: 900,
        },
    );
    let signed: Vec<String> = headers.keys().map(|k| k.as_str().to_string()).collect();
    let _ = sigv4::canonical_request(&parts, &signed);
});
