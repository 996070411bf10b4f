//! Key references (key id, alias, resource name), alias names and tags:
//! parsing and validation.

use std::str::FromStr;

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::model::arn_prefix;
use crate::types::printable;

/// The longest key reference accepted (as in KMS).
const MAX_KEY_REF: usize = 2048;
/// Alias prefixes reserved for the service itself.
const RESERVED_ALIAS_PREFIXES: &[&str] = &["alias/tinfoil/", "alias/aws/"];

/// What a key argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyRef {
    /// A key id (from a bare UUID or a key resource name).
    Id(Uuid),
    /// An alias, `alias/<name>` (from a bare alias or an alias resource name).
    Alias(String),
}

/// Refuses a NUL character in `text`, which names `what` in the message
/// (`ValidationException`): in key ids, aliases, tag keys and values and
/// encryption context keys a NUL makes no sense, and C callers would see
/// the text cut short.
pub(crate) fn refuse_nul(what: &str, text: &str) -> Result<()> {
    if text.contains('\0') {
        return Err(Error::validation(format!(
            "{what} must not contain a NUL character"
        )));
    }
    Ok(())
}

/// Parses a key id, alias, key resource name or alias resource name.
pub(crate) fn parse_key_ref(text: &str) -> Result<KeyRef> {
    if text.is_empty() || text.len() > MAX_KEY_REF {
        return Err(Error::validation(format!(
            "a key id must be 1 to {MAX_KEY_REF} characters"
        )));
    }
    refuse_nul("a key id", text)?;
    let installed = arn_prefix();
    let bare = match text.strip_prefix(installed.kms_prefix.as_str()) {
        Some(rest) if rest.starts_with("alias/") => rest,
        Some(rest) => rest.strip_prefix("key/").ok_or_else(|| not_found(text))?,
        None if text.starts_with("arn:") => return Err(not_found(text)),
        None => text,
    };
    if bare.starts_with("alias/") {
        return Ok(KeyRef::Alias(bare.to_string()));
    }
    Uuid::from_str(bare)
        .map(KeyRef::Id)
        .map_err(|_| not_found(text))
}

fn not_found(text: &str) -> Error {
    Error::NotFound(format!("invalid key id {}", printable(text)))
}

/// Checks an alias name: `alias/` then 1 to 256 of `[A-Za-z0-9/_-]`, not reserved.
pub(crate) fn validate_alias_name(name: &str) -> Result<()> {
    refuse_nul("an alias name", name)?;
    let rest = name.strip_prefix("alias/").ok_or_else(|| {
        Error::validation(format!("alias {} must begin with alias/", printable(name)))
    })?;
    let valid_chars = rest
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-'));
    if rest.is_empty() || rest.len() > 256 || !valid_chars {
        return Err(Error::validation(format!(
            "alias {} must be alias/ followed by 1 to 256 letters, digits, /, _ or -",
            printable(name)
        )));
    }
    if RESERVED_ALIAS_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return Err(Error::validation(format!(
            "alias {} uses a reserved prefix (alias/tinfoil/ or alias/aws/)",
            printable(name)
        )));
    }
    Ok(())
}

/// Tag prefixes only the service itself may set: `pkcs11:` tags carry
/// PKCS#11 attributes such as CKA_EXTRACTABLE, which a caller must never be
/// able to forge through TagResource.
pub(crate) const RESERVED_TAG_PREFIXES: &[&str] = &["aws:", "tinfoil:", "pkcs11:"];

/// Checks a caller's tag key (1 to 128 characters, no reserved prefix) and
/// value (0 to 256).
pub(crate) fn validate_tag(tag_key: &str, tag_value: Option<&str>) -> Result<()> {
    refuse_nul("a tag key", tag_key)?;
    refuse_nul("a tag value", tag_value.unwrap_or_default())?;
    let key_chars = tag_key.chars().count();
    if key_chars == 0 || key_chars > 128 {
        return Err(Error::validation("a tag key must be 1 to 128 characters"));
    }
    if RESERVED_TAG_PREFIXES.iter().any(|p| tag_key.starts_with(p)) {
        return Err(Error::validation(format!(
            "tag key {} uses a reserved prefix",
            printable(tag_key)
        )));
    }
    if tag_value.is_some_and(|v| v.chars().count() > 256) {
        return Err(Error::validation(
            "a tag value must be at most 256 characters",
        ));
    }
    Ok(())
}

/// Checks a PKCS#11 token name (1 to 32 bytes of printable ASCII, as a token label).
pub(crate) fn validate_token(token: &str) -> Result<()> {
    if token.is_empty()
        || token.len() > 32
        || !token.chars().all(|c| c.is_ascii_graphic() || c == ' ')
    {
        return Err(Error::validation(
            "a token name must be 1 to 32 printable ASCII characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN_PREFIX: &str = "arn:aws:kms:us-east-1:111122223333:";

    #[test]
    fn nul_characters_are_validation_errors() {
        let id = Uuid::new_v4();
        for text in [
            format!("{id}\0"),
            "alias/a\0b".to_string(),
            "\0".to_string(),
        ] {
            let err = parse_key_ref(&text).unwrap_err();
            assert_eq!(err.kms_name(), "ValidationException", "{text:?}");
            assert!(err.to_string().contains("NUL"));
        }
        assert_eq!(
            validate_alias_name("alias/a\0").unwrap_err().kms_name(),
            "ValidationException"
        );
        for (key, value) in [("k\0", None), ("k", Some("v\0")), ("\0", Some(""))] {
            let err = validate_tag(key, value).unwrap_err();
            assert!(err.to_string().contains("NUL"), "{err}");
        }
        validate_tag("k", Some("v")).unwrap();
    }

    #[test]
    fn parses_every_form_of_key_reference() {
        let id = Uuid::new_v4();
        let text = id.hyphenated().to_string();
        assert_eq!(parse_key_ref(&text).unwrap(), KeyRef::Id(id));
        assert_eq!(
            parse_key_ref(&format!("{ARN_PREFIX}key/{text}")).unwrap(),
            KeyRef::Id(id)
        );
        assert_eq!(
            parse_key_ref("alias/app").unwrap(),
            KeyRef::Alias("alias/app".into())
        );
        assert_eq!(
            parse_key_ref(&format!("{ARN_PREFIX}alias/app")).unwrap(),
            KeyRef::Alias("alias/app".into())
        );
        assert!(matches!(parse_key_ref("nonsense"), Err(Error::NotFound(_))));
        assert!(matches!(
            parse_key_ref("arn:aws:kms:x"),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(parse_key_ref(""), Err(Error::Validation(_))));
        assert!(matches!(
            parse_key_ref(&"a".repeat(2049)),
            Err(Error::Validation(_))
        ));
    }

    #[test]
    fn alias_rules() {
        assert!(validate_alias_name("alias/my-app_key/1").is_ok());
        assert!(validate_alias_name(&format!("alias/{}", "a".repeat(256))).is_ok());
        for bad in [
            "alias/",
            "my-app",
            "alias/sp ace",
            "alias/tinfoil/x",
            "alias/aws/x",
        ] {
            assert!(
                matches!(validate_alias_name(bad), Err(Error::Validation(_))),
                "{bad}"
            );
        }
        assert!(validate_alias_name(&format!("alias/{}", "a".repeat(257))).is_err());
    }
}
