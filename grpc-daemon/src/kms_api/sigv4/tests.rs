//! The AWS SigV4 test-suite vectors (docs.aws.amazon.com/general/latest/gr/
//! signature-v4-test-suite.html: credentials AKIDEXAMPLE, region
//! us-east-1, service `service`, 2015-08-30T12:36:00Z) and the checks
//! around them.

use super::*;
use http::{HeaderName, HeaderValue};

const SECRET: &[u8] = b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const NOW: &str = "20150830T123600Z";

/// A request of the suite's `.req` format: request line, headers, blank
/// line, body.
fn request(text: &str) -> (String, String, HeaderMap, Vec<u8>) {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let line = lines.next().unwrap();
    let mut words = line.split(' ');
    let method = words.next().unwrap().to_string();
    let path = words.next().unwrap().to_string();
    let mut headers = HeaderMap::new();
    for l in lines {
        let (name, value) = l.split_once(':').unwrap();
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    (method, path, headers, body.as_bytes().to_vec())
}

/// Checks one vector: our canonicalization and string to sign, signed
/// with the suite's secret, give the suite's signature.
fn check(req: &str, authz: &str) {
    let (method, path, mut headers, body) = request(req);
    headers.insert("authorization", HeaderValue::from_str(authz).unwrap());
    let payload = sha256_hex(&body);
    let parts = RequestParts {
        method: &method,
        path: &path,
        query: "",
        headers: &headers,
        payload_sha256: &payload,
    };
    let auth = parse_authorization(authz).unwrap();
    let creq = canonical_request(&parts, &auth.signed_headers).unwrap();
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let sts = string_to_sign(NOW, &scope, &creq);
    let sig = sign(SECRET, &auth.date, &auth.region, &auth.service, &sts);
    assert_eq!(sig, auth.signature, "canonical request was:\n{creq}");
}

fn authz(signed: &str, signature: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders={signed}, Signature={signature}"
    )
}

#[test]
fn suite_vectors() {
    let host_date = "Host:example.amazonaws.com\nX-Amz-Date:20150830T123600Z";
    check(
        &format!("GET / HTTP/1.1\n{host_date}"),
        &authz(
            "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
    );
    check(
        &format!("POST / HTTP/1.1\n{host_date}"),
        &authz(
            "host;x-amz-date",
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        ),
    );
    check(
        "POST / HTTP/1.1\nContent-Type:application/x-www-form-urlencoded\n\
         Host:example.amazonaws.com\nX-Amz-Date:20150830T123600Z\n\nParam1=value1",
        &authz(
            "content-type;host;x-amz-date",
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        ),
    );
    // header-value-trim: leading spaces trimmed, inner runs folded.
    check(
        "GET / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1: value1\n\
         My-Header2: \"a   b   c\"\nX-Amz-Date:20150830T123600Z",
        &authz(
            "host;my-header1;my-header2;x-amz-date",
            "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
        ),
    );
    // header-key-duplicate: values joined with commas in order.
    check(
        "GET / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1:value2\n\
         My-Header1:value2\nMy-Header1:value1\nX-Amz-Date:20150830T123600Z",
        &authz(
            "host;my-header1;x-amz-date",
            "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
        ),
    );
    // header-key-sort and header-value-case (values keep their case).
    check(
        "POST / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1:value1\nX-Amz-Date:20150830T123600Z",
        &authz(
            "host;my-header1;x-amz-date",
            "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
        ),
    );
    check(
        "POST / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1:VALUE1\nX-Amz-Date:20150830T123600Z",
        &authz(
            "host;my-header1;x-amz-date",
            "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
        ),
    );
    // post-sts-header-before: the security token is a signed header.
    check(
        "POST / HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z\n\
         X-Amz-Security-Token:AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==",
        &authz(
            "host;x-amz-date;x-amz-security-token",
            "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
        ),
    );
}

#[test]
fn suite_string_to_sign() {
    // post-x-www-form-urlencoded.sts
    let (method, path, headers, body) = request(
        "POST / HTTP/1.1\nContent-Type:application/x-www-form-urlencoded\n\
         Host:example.amazonaws.com\nX-Amz-Date:20150830T123600Z\n\nParam1=value1",
    );
    let payload = sha256_hex(&body);
    let parts = RequestParts {
        method: &method,
        path: &path,
        query: "",
        headers: &headers,
        payload_sha256: &payload,
    };
    let signed: Vec<String> = ["content-type", "host", "x-amz-date"]
        .map(String::from)
        .into();
    let creq = canonical_request(&parts, &signed).unwrap();
    assert_eq!(
        creq,
        "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n\
         x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n\
         9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"
    );
    assert_eq!(
        string_to_sign(NOW, "20150830/us-east-1/service/aws4_request", &creq),
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
         42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281"
    );
}

#[test]
fn canonical_query_sorts_and_encodes() {
    assert_eq!(canonical_query(""), "");
    assert_eq!(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
    assert_eq!(canonical_query("k=a%20b&x"), "k=a%20b&x=");
    assert_eq!(canonical_uri("/a b"), "/a%20b");
    // Unreserved bytes stay, every other byte is %XX in upper case, `+` is
    // a literal plus (not a space), escapes are decoded before re-encoding,
    // a broken escape is taken literally.
    assert_eq!(canonical_uri(""), "/");
    assert_eq!(canonical_uri("/x/\u{fc}~-._*"), "/x/%C3%BC~-._%2A");
    assert_eq!(
        canonical_query("a+b=%7e&c=%2f&d=%zz&e=%4"),
        "a%2Bb=~&c=%2F&d=%25zz&e=%254"
    );
    assert_eq!(canonical_query("k=%00%FF"), "k=%00%FF");
}

#[test]
fn dates_round_trip() {
    let t = parse_amz_date(NOW).unwrap();
    assert_eq!(t, 1_440_938_160);
    assert_eq!(format_amz_date(t), NOW);
    for bad in [
        "",
        "20150830T123600",
        "2015083XT123600Z",
        "20151330T123600Z",
        "20150830 123600Z",
    ] {
        assert_eq!(parse_amz_date(bad), None, "{bad}");
    }
}

fn kms_headers(authorization: Option<&str>, date: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("host", HeaderValue::from_static("localhost:1"));
    h.insert("x-amz-date", HeaderValue::from_str(date).unwrap());
    if let Some(a) = authorization {
        h.insert("authorization", HeaderValue::from_str(a).unwrap());
    }
    h
}

fn kms_authz(scope: &str, signed: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKID/{scope}, SignedHeaders={signed}, Signature={}",
        "0".repeat(64)
    )
}

fn prepared(headers: &HeaderMap, now: i64) -> Result<Prepared, AuthError> {
    let payload = sha256_hex(b"{}");
    let parts = RequestParts {
        method: "POST",
        path: "/",
        query: "",
        headers,
        payload_sha256: &payload,
    };
    prepare(
        &parts,
        &Expect {
            region: "us-east-1",
            now,
            max_skew_secs: 900,
        },
    )
}

#[test]
fn request_checks_name_the_aws_errors() {
    let now = parse_amz_date(NOW).unwrap();
    let good = kms_authz("20150830/us-east-1/kms/aws4_request", "host;x-amz-date");
    let ok = prepared(&kms_headers(Some(&good), NOW), now).unwrap();
    assert_eq!(ok.authorization.access_key_id, "AKID");
    assert!(ok
        .string_to_sign
        .starts_with("AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/kms/aws4_request\n"));

    let kind = |r: Result<Prepared, AuthError>| r.unwrap_err().kms_name();
    assert_eq!(
        kind(prepared(&kms_headers(None, NOW), now)),
        "MissingAuthenticationTokenException"
    );
    for bad in [
        "AWS4-HMAC-SHA1 Credential=x".to_string(),
        "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/kms/aws4_request".to_string(),
        "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1, SignedHeaders=host, Signature=00"
            .to_string(),
        kms_authz("20150830/us-east-1/kms/aws4_request", "x-amz-date"),
        kms_authz(
            "20150830/us-east-1/kms/aws4_request",
            "host;x-amz-date;x-missing",
        ),
    ] {
        assert_eq!(
            kind(prepared(&kms_headers(Some(&bad), NOW), now)),
            "IncompleteSignatureException",
            "{bad}"
        );
    }
    let mut h = kms_headers(Some(&good), NOW);
    h.remove("x-amz-date");
    assert_eq!(kind(prepared(&h, now)), "IncompleteSignatureException");
    let mut h = kms_headers(Some(&good), NOW);
    h.insert("x-amz-security-token", HeaderValue::from_static("t"));
    assert_eq!(kind(prepared(&h, now)), "IncompleteSignatureException");

    for scope in [
        "20150830/us-east-1/s3/aws4_request",
        "20150830/eu-west-1/kms/aws4_request",
        "20150831/us-east-1/kms/aws4_request",
        "20150830/us-east-1/kms/aws4_xxx",
    ] {
        let a = kms_authz(scope, "host;x-amz-date");
        assert_eq!(
            kind(prepared(&kms_headers(Some(&a), NOW), now)),
            "InvalidSignatureException",
            "{scope}"
        );
    }
    // 15 minutes either way, not one second more.
    assert!(prepared(&kms_headers(Some(&good), NOW), now + 900).is_ok());
    assert!(prepared(&kms_headers(Some(&good), NOW), now - 900).is_ok());
    let late = prepared(&kms_headers(Some(&good), NOW), now + 901).unwrap_err();
    assert!(late.to_string().starts_with("Signature expired"), "{late}");
    let early = prepared(&kms_headers(Some(&good), NOW), now - 901).unwrap_err();
    assert!(
        early.to_string().starts_with("Signature not yet current"),
        "{early}"
    );
    // A body that does not match the client's own hash header.
    let mut h = kms_headers(Some(&good), NOW);
    h.insert("x-amz-content-sha256", HeaderValue::from_static("00"));
    assert_eq!(kind(prepared(&h, now)), "InvalidSignatureException");
}

#[test]
fn changed_headers_change_the_string_to_sign() {
    let now = parse_amz_date(NOW).unwrap();
    let a = kms_authz(
        "20150830/us-east-1/kms/aws4_request",
        "host;x-amz-date;x-amz-target",
    );
    let mut h = kms_headers(Some(&a), NOW);
    h.insert(
        "x-amz-target",
        HeaderValue::from_static("TrentService.Encrypt"),
    );
    let one = prepared(&h, now).unwrap().string_to_sign;
    h.insert(
        "x-amz-target",
        HeaderValue::from_static("TrentService.Decrypt"),
    );
    let two = prepared(&h, now).unwrap().string_to_sign;
    assert_ne!(one, two);
    // Unsigned headers do not count.
    h.insert("user-agent", HeaderValue::from_static("x"));
    assert_eq!(prepared(&h, now).unwrap().string_to_sign, two);
}

mod against_aws_sigv4 {
    //! Requests signed by the `aws-sigv4` crate (the AWS SDK for Rust's
    //! signer): our canonical request and string to sign, signed with the
    //! same secret, give its signature, for header values with stray and
    //! repeated spaces, extra headers and any body.

    use super::*;
    use proptest::prelude::*;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    fn aws_signed(
        headers: &[(String, String)],
        body: &[u8],
        when: SystemTime,
        token: Option<&str>,
    ) -> HeaderMap {
        use aws_sigv4::http_request::{
            sign as aws_sign, SignableBody, SignableRequest, SigningSettings,
        };
        use aws_sigv4::sign::v4;
        let identity = aws_credential_types::Credentials::new(
            "AKIDEXAMPLE",
            std::str::from_utf8(SECRET).unwrap(),
            token.map(str::to_string),
            None,
            "test",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("kms")
            .time(when)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let signable = SignableRequest::new(
            "POST",
            "https://kms.example:443/",
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = aws_sign(signable, &params).unwrap().into_parts();
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        for (k, v) in instructions.headers() {
            map.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn check(headers: &[(String, String)], body: &[u8], token: Option<&str>) {
        let when = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let map = aws_signed(headers, body, when, token);
        let payload = sha256_hex(body);
        let parts = RequestParts {
            method: "POST",
            path: "/",
            query: "",
            headers: &map,
            payload_sha256: &payload,
        };
        let prepared = prepare(
            &parts,
            &Expect {
                region: "us-east-1",
                now: 1_700_000_000,
                max_skew_secs: 900,
            },
        )
        .unwrap();
        let a = &prepared.authorization;
        assert_eq!(
            sign(
                SECRET,
                &a.date,
                &a.region,
                &a.service,
                &prepared.string_to_sign
            ),
            a.signature
        );
    }

    #[test]
    fn kms_shaped_request_with_a_session_token() {
        let headers = vec![
            ("host".to_string(), "kms.example".to_string()),
            (
                "content-type".to_string(),
                "application/x-amz-json-1.1".to_string(),
            ),
            (
                "x-amz-target".to_string(),
                "TrentService.Encrypt".to_string(),
            ),
        ];
        check(
            &headers,
            br#"{"KeyId":"k","Plaintext":"aGk="}"#,
            Some("session-token"),
        );
        check(&headers, b"", None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_header_values_and_body(
            values in proptest::collection::vec("[ ]{0,3}[a-zA-Z0-9=/+,;:]{1,8}([ ]{1,4}[a-zA-Z0-9]{1,6}){0,3}[ ]{0,3}", 1..5),
            body in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let mut headers = vec![
                ("host".to_string(), "kms.example".to_string()),
                ("x-amz-target".to_string(), "TrentService.Decrypt".to_string()),
            ];
            for (i, v) in values.iter().enumerate() {
                headers.push((format!("x-test-{i}"), v.clone()));
            }
            check(&headers, &body, None);
        }
    }
}
