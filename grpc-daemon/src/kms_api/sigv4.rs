//! AWS Signature Version 4 (AWS4-HMAC-SHA256), the server's half: parse
//! the `Authorization` header, rebuild the canonical request from the
//! client's own `SignedHeaders`, check the body hash, the credential scope
//! and the request time, and produce the string to sign. The signature
//! itself is checked by hsm-core, which holds the access keys' secrets
//! (`Hsm::verify_sigv4`): no secret ever reaches this module.
//!
//! The rules are AWS's: header names lower-cased, values trimmed with
//! sequential spaces folded to one, repeated headers joined with `,`, the
//! canonical URI encoded once more per segment, query parameters sorted.

use http::HeaderMap;
use percent_encoding::{
    percent_decode_str, percent_encode, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC,
};

/// The only algorithm SigV4 defines.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The service name in the credential scope.
pub const SERVICE: &str = "kms";

/// Why a request's signature was refused before or instead of the
/// signature check. Each maps to one AWS exception.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header (`MissingAuthenticationTokenException`).
    #[error("{0}")]
    Missing(String),
    /// The header or the request is malformed (`IncompleteSignatureException`).
    #[error("{0}")]
    Incomplete(String),
    /// The signature cannot be right: wrong scope, expired, body changed
    /// (`InvalidSignatureException`).
    #[error("{0}")]
    Invalid(String),
}

impl AuthError {
    /// The AWS exception name.
    pub fn kms_name(&self) -> &'static str {
        match self {
            AuthError::Missing(_) => "MissingAuthenticationTokenException",
            AuthError::Incomplete(_) => "IncompleteSignatureException",
            AuthError::Invalid(_) => "InvalidSignatureException",
        }
    }
}

/// The parts of an `AWS4-HMAC-SHA256` Authorization header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The access key id of `Credential=`.
    pub access_key_id: String,
    /// The scope's date, `YYYYMMDD`.
    pub date: String,
    /// The scope's region.
    pub region: String,
    /// The scope's service.
    pub service: String,
    /// `SignedHeaders=`, lower-case names in the client's order.
    pub signed_headers: Vec<String>,
    /// `Signature=`, 64 lower-case hex digits.
    pub signature: String,
}

fn incomplete(msg: impl Into<String>) -> AuthError {
    AuthError::Incomplete(msg.into())
}

/// Parses `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
/// SignedHeaders=a;b, Signature=hex`.
pub fn parse_authorization(value: &str) -> Result<Authorization, AuthError> {
    let value = value.trim();
    let (algorithm, rest) = value.split_once(' ').unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "Authorization header must use the {ALGORITHM} algorithm"
        )));
    }
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((name, v)) = part.split_once('=') else {
            return Err(incomplete(format!(
                "Authorization header element {:?} is not name=value",
                cut(part)
            )));
        };
        let slot = match name.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.replace(v.trim()).is_some() {
            return Err(incomplete(format!(
                "Authorization header names {name} twice"
            )));
        }
    }
    let mut missing = Vec::new();
    for (name, slot) in [
        ("Credential", &credential),
        ("Signature", &signature),
        ("SignedHeaders", &signed),
    ] {
        if slot.is_none_or(str::is_empty) {
            missing.push(format!("Authorization header requires '{name}' parameter."));
        }
    }
    if !missing.is_empty() {
        return Err(incomplete(missing.join(" ")));
    }
    let (credential, signed, signature) = (
        credential.unwrap_or_default(),
        signed.unwrap_or_default(),
        signature.unwrap_or_default(),
    );
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = scope[..] else {
        return Err(incomplete(format!(
            "Credential {:?} must be ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request",
            cut(credential)
        )));
    };
    if access_key_id.is_empty() || access_key_id.len() > 128 {
        return Err(incomplete("Credential names no valid access key id"));
    }
    if terminator != "aws4_request" {
        return Err(AuthError::Invalid(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not {:?}.",
            cut(terminator)
        )));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(incomplete(format!(
            "Credential date {:?} must be YYYYMMDD",
            cut(date)
        )));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(incomplete("Signature must be 64 hexadecimal digits"));
    }
    let signed_headers: Vec<String> = signed.split(';').map(str::to_ascii_lowercase).collect();
    if signed_headers.iter().any(String::is_empty) || signed_headers.len() > 64 {
        return Err(incomplete(format!(
            "SignedHeaders {:?} is malformed",
            cut(signed)
        )));
    }
    Ok(Authorization {
        access_key_id: access_key_id.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers,
        signature: signature.to_ascii_lowercase(),
    })
}

/// At most 64 characters of client text, for messages.
fn cut(text: &str) -> String {
    text.chars().take(64).collect()
}

/// Parses an ISO 8601 basic timestamp `YYYYMMDDTHHMMSSZ` into Unix seconds.
pub fn parse_amz_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let (y, mo, d) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (h, mi, s) = (digits(9..11)?, digits(11..13)?, digits(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats Unix seconds as `YYYYMMDDTHHMMSSZ` (for messages).
pub fn format_amz_date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// AWS's URI encoding leaves `A-Za-z0-9-._~` as they are and writes every
/// other byte as `%XX` (upper case).
const AWS_URI_ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// The same with `/` kept (the canonical URI's path separators).
const AWS_PATH_ESCAPED: &AsciiSet = &AWS_URI_ESCAPED.remove(b'/');

/// The canonical URI of a non-S3 service: each segment of the path as
/// sent, encoded once more.
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    utf8_percent_encode(path, AWS_PATH_ESCAPED).to_string()
}

/// The canonical query string: parameters decoded, re-encoded, sorted.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            // Decoded first (`+` stays itself, as AWS does), then encoded.
            let reencode = |text: &str| {
                let decoded: Vec<u8> = percent_decode_str(text).collect();
                percent_encode(&decoded, AWS_URI_ESCAPED).to_string()
            };
            (reencode(k), reencode(v))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A header value as AWS canonicalizes it: trimmed, runs of spaces folded.
fn fold_value(value: &[u8], out: &mut String) {
    let text = String::from_utf8_lossy(value);
    let mut first = true;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if !first {
            out.push(' ');
        }
        out.push_str(word.trim_matches(|c: char| c == '\t'));
        first = false;
    }
}

/// The request parts a signature covers.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// `POST`.
    pub method: &'a str,
    /// The path as sent, e.g. `/`.
    pub path: &'a str,
    /// The query string without `?` (empty for KMS).
    pub query: &'a str,
    /// Every header of the request.
    pub headers: &'a HeaderMap,
    /// SHA-256 of the body, lower-case hex.
    pub payload_sha256: &'a str,
}

/// The canonical request over the headers the client says it signed.
/// A signed header the request lacks is an IncompleteSignature.
pub fn canonical_request(parts: &RequestParts<'_>, signed: &[String]) -> Result<String, AuthError> {
    let mut out = String::with_capacity(256);
    out.push_str(parts.method);
    out.push('\n');
    out.push_str(&canonical_uri(parts.path));
    out.push('\n');
    out.push_str(&canonical_query(parts.query));
    out.push('\n');
    for name in signed {
        let mut values = parts.headers.get_all(name.as_str()).iter().peekable();
        if values.peek().is_none() {
            return Err(incomplete(format!(
                "the signed header {:?} is not in the request",
                cut(name)
            )));
        }
        out.push_str(name);
        out.push(':');
        for (i, value) in values.enumerate() {
            if i > 0 {
                out.push(',');
            }
            fold_value(value.as_bytes(), &mut out);
        }
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed.join(";"));
    out.push('\n');
    out.push_str(parts.payload_sha256);
    Ok(out)
}

/// The string to sign: algorithm, timestamp, scope, hash of the canonical request.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// What the signature check in hsm-core needs, from a request that passed
/// every check this module makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The parsed header.
    pub authorization: Authorization,
    /// The string the client signed.
    pub string_to_sign: String,
}

/// What a request is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The configured region; the scope must name it.
    pub region: &'a str,
    /// Now, in Unix seconds.
    pub now: i64,
    /// How far X-Amz-Date may be from now, in seconds.
    pub max_skew_secs: i64,
}

/// Runs every check but the signature's and builds the string to sign.
pub fn prepare(parts: &RequestParts<'_>, expect: &Expect<'_>) -> Result<Prepared, AuthError> {
    let Some(header) = parts.headers.get(http::header::AUTHORIZATION) else {
        return Err(AuthError::Missing("Missing Authentication Token".into()));
    };
    let header = header
        .to_str()
        .map_err(|_| incomplete("the Authorization header is not ASCII"))?;
    let auth = parse_authorization(header)?;
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(incomplete(
            "'Host' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    let amz_date = parts
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            incomplete("Authorization header requires existence of a 'X-Amz-Date' header.")
        })?;
    let when = parse_amz_date(amz_date).ok_or_else(|| {
        incomplete(format!(
            "X-Amz-Date {:?} must be YYYYMMDDTHHMMSSZ",
            cut(amz_date)
        ))
    })?;
    if parts.headers.contains_key("x-amz-security-token")
        && !auth
            .signed_headers
            .iter()
            .any(|h| h == "x-amz-security-token")
    {
        return Err(incomplete(
            "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    if let Some(claimed) = parts.headers.get("x-amz-content-sha256") {
        if !claimed
            .as_bytes()
            .eq_ignore_ascii_case(parts.payload_sha256.as_bytes())
        {
            return Err(AuthError::Invalid(
                "The request body does not match its x-amz-content-sha256 header.".into(),
            ));
        }
    }
    if auth.service != SERVICE {
        return Err(AuthError::Invalid(format!(
            "Credential should be scoped to correct service: '{SERVICE}'."
        )));
    }
    if auth.region != expect.region {
        return Err(AuthError::Invalid(format!(
            "Credential should be scoped to a valid region, not '{}'.",
            cut(&auth.region)
        )));
    }
    if amz_date.get(..8) != Some(auth.date.as_str()) {
        return Err(AuthError::Invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '{}' != '{}', from '{amz_date}'.",
            auth.date,
            &amz_date[..8]
        )));
    }
    let skew = expect.max_skew_secs;
    if when < expect.now - skew {
        return Err(AuthError::Invalid(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - {} min.)",
            format_amz_date(expect.now - skew),
            format_amz_date(expect.now),
            skew / 60
        )));
    }
    if when > expect.now + skew {
        return Err(AuthError::Invalid(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + {} min.)",
            format_amz_date(expect.now + skew),
            format_amz_date(expect.now),
            skew / 60
        )));
    }
    let creq = canonical_request(parts, &auth.signed_headers)?;
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    Ok(Prepared {
        string_to_sign: string_to_sign(amz_date, &scope, &creq),
        authorization: auth,
    })
}

/// The SigV4 signature of `string_to_sign` with `secret` (lower-case
/// hex): the client's half, for the tests. The daemon never holds a secret;
/// hsm-core verifies.
#[cfg(test)]
pub(crate) fn sign(
    secret: &[u8],
    date: &str,
    region: &str,
    service: &str,
    string_to_sign: &str,
) -> String {
    use ring::hmac;
    let step = |key: &[u8], data: &[u8]| {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
            .as_ref()
            .to_vec()
    };
    let mut k_secret = zeroize::Zeroizing::new(b"AWS4".to_vec());
    k_secret.extend_from_slice(secret);
    let k_date = zeroize::Zeroizing::new(step(&k_secret, date.as_bytes()));
    let k_region = zeroize::Zeroizing::new(step(&k_date, region.as_bytes()));
    let k_service = zeroize::Zeroizing::new(step(&k_region, service.as_bytes()));
    let k_signing = zeroize::Zeroizing::new(step(&k_service, b"aws4_request"));
    hex(&step(&k_signing, string_to_sign.as_bytes()))
}

#[cfg(test)]
mod tests;
