//! Where the store's passphrase comes from: `--passphrase-file` (refused
//! when group or others have any access), the `TINFOIL_PASSPHRASE`
//! environment variable (removed from the environment once read), or a
//! prompt on a terminal. The passphrase is held in a `SecretString` only.

use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::DaemonError;

/// The environment variable holding the passphrase.
pub const ENV_VAR: &str = "TINFOIL_PASSPHRASE";

/// The longest passphrase accepted, in bytes.
pub const MAX_LEN: usize = 4096;

/// Reads the passphrase from a file that only its owner can access. One
/// trailing newline is removed.
pub fn from_file(path: &Path) -> Result<SecretString, DaemonError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| DaemonError::io(format!("passphrase file {}", path.display()), e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(DaemonError::UnsafePassphraseFile {
            path: path.to_path_buf(),
            mode,
        });
    }
    if meta.len() > MAX_LEN as u64 + 2 {
        return Err(DaemonError::Passphrase(format!(
            "passphrase file {} is longer than {MAX_LEN} bytes",
            path.display()
        )));
    }
    let bytes = Zeroizing::new(
        std::fs::read(path)
            .map_err(|e| DaemonError::io(format!("passphrase file {}", path.display()), e))?,
    );
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| DaemonError::Passphrase("the passphrase file is not UTF-8".into()))?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    checked(text)
}

fn checked(text: &str) -> Result<SecretString, DaemonError> {
    if text.is_empty() {
        return Err(DaemonError::Passphrase("the passphrase is empty".into()));
    }
    if text.len() > MAX_LEN {
        return Err(DaemonError::Passphrase(format!(
            "the passphrase is longer than {MAX_LEN} bytes"
        )));
    }
    Ok(SecretString::from(text.to_owned()))
}

/// Takes the passphrase out of `TINFOIL_PASSPHRASE`, if set, and removes the
/// variable so child processes never inherit it. Call before starting threads.
pub fn take_from_env() -> Result<Option<SecretString>, DaemonError> {
    let Some(value) = std::env::var_os(ENV_VAR) else {
        return Ok(None);
    };
    std::env::remove_var(ENV_VAR);
    let value = Zeroizing::new(
        value
            .into_string()
            .map_err(|_| DaemonError::Passphrase(format!("{ENV_VAR} is not UTF-8")))?,
    );
    checked(&value).map(Some)
}

/// Resolves the passphrase: the file when given, else the value taken from
/// the environment, else a prompt when standard input is a terminal
/// (asked twice when `confirm`).
pub fn resolve(
    file: Option<&Path>,
    from_env: Option<SecretString>,
    confirm: bool,
) -> Result<SecretString, DaemonError> {
    if let Some(path) = file {
        return from_file(path);
    }
    if let Some(secret) = from_env {
        return Ok(secret);
    }
    if !std::io::stdin().is_terminal() {
        return Err(DaemonError::Passphrase(format!(
            "no passphrase: use --passphrase-file, set {ENV_VAR}, or run on a terminal"
        )));
    }
    let first = Zeroizing::new(
        rpassword::prompt_password("tinfoild passphrase: ")
            .map_err(|e| DaemonError::io("reading the passphrase", e))?,
    );
    if confirm {
        let second = Zeroizing::new(
            rpassword::prompt_password("repeat the passphrase: ")
                .map_err(|e| DaemonError::io("reading the passphrase", e))?,
        );
        if *first != *second {
            return Err(DaemonError::Passphrase("the passphrases differ".into()));
        }
    }
    checked(&first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn file_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        std::fs::write(&path, "hunter2\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = from_file(&path).unwrap_err();
        assert!(matches!(
            err,
            DaemonError::UnsafePassphraseFile { mode: 0o644, .. }
        ));
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn private_file_is_read_without_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        std::fs::write(&path, "hunter2\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(from_file(&path).unwrap().expose_secret(), "hunter2");
    }

    #[test]
    fn empty_passphrase_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        std::fs::write(&path, "\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(from_file(&path), Err(DaemonError::Passphrase(_))));
    }
}
