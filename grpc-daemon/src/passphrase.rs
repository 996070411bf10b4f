//! Where the store's passphrase comes from: `--passphrase-file` (a regular
//! file that group and others cannot access), the `TINFOIL_PASSPHRASE`
//! environment variable, or a prompt on a terminal. The passphrase is held
//! in a `SecretString` only.
//!
//! The environment variable is really gone once read: removing it with
//! `remove_var` only drops it from the C library's `environ` array, while
//! the original block at the top of the stack (what /proc/PID/environ
//! shows) keeps the bytes. Overwriting that block needs `unsafe` (the
//! crate forbids it), so tinfoild re-executes itself instead: it writes the
//! passphrase into one end of a socket pair, and `exec`s its own binary
//! with the same arguments, without the variable, with the other end as
//! standard input and `TINFOIL_PASSPHRASE_HANDOVER=1` set. The new image
//! (same process id) reads the passphrase from standard input; the old
//! image, environment block included, no longer exists, and no child can
//! inherit the variable.

use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::DaemonError;

/// The environment variable holding the passphrase.
pub const ENV_VAR: &str = "TINFOIL_PASSPHRASE";

/// The longest passphrase accepted, in bytes.
pub const MAX_LEN: usize = 4096;

/// The environment variable holding the PostgreSQL store's password
/// (libpq's).
pub const PASSWORD_ENV_VAR: &str = "PGPASSWORD";

/// Set by tinfoild for its re-executed self: the secrets taken from the
/// environment are on standard input (see [`take_from_env`]). Not for
/// operators.
pub const HANDOVER_VAR: &str = "TINFOIL_PASSPHRASE_HANDOVER";

/// The secrets taken out of the environment by [`take_from_env`].
#[derive(Default)]
pub struct EnvSecrets {
    /// From `TINFOIL_PASSPHRASE`.
    pub passphrase: Option<SecretString>,
    /// From `PGPASSWORD`.
    pub store_password: Option<SecretString>,
}

/// Which secret a file holds, for checks and messages.
#[derive(Clone, Copy)]
enum Holds {
    Passphrase,
    StorePassword,
}

impl Holds {
    fn file(self) -> &'static str {
        match self {
            Holds::Passphrase => "passphrase file",
            Holds::StorePassword => "store password file",
        }
    }

    fn refuse(self, why: String) -> DaemonError {
        match self {
            Holds::Passphrase => DaemonError::Passphrase(why),
            Holds::StorePassword => DaemonError::Config(format!("store password: {why}")),
        }
    }
}

/// What a file that is not a regular file is, for the refusal message.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Reads the passphrase from a regular file that only its owner can
/// access. One trailing newline is removed. A FIFO, device, socket or
/// directory is refused from its metadata, before it is opened (opening a
/// FIFO would block until a writer came), and so is a kernel pseudo-file
/// (/proc, /sys) or an empty file; the opened file is checked again to be
/// the same regular file.
pub fn from_file(path: &Path) -> Result<SecretString, DaemonError> {
    secret_file(path, Holds::Passphrase)
}

/// Reads the PostgreSQL store's password from a file, with the checks of
/// [`from_file`] (a regular file on disk that group and others cannot
/// access, not empty, at most [`MAX_LEN`] bytes).
pub fn store_password_from_file(path: &Path) -> Result<SecretString, DaemonError> {
    secret_file(path, Holds::StorePassword)
}

fn secret_file(path: &Path, holds: Holds) -> Result<SecretString, DaemonError> {
    let context = || format!("{} {}", holds.file(), path.display());
    let meta = std::fs::metadata(path).map_err(|e| DaemonError::io(context(), e))?;
    if !meta.is_file() {
        return Err(holds.refuse(format!(
            "{} is {}; it must be a regular file",
            path.display(),
            kind_of(&meta)
        )));
    }
    if let Some(why) = pseudo_file(path, &meta) {
        return Err(holds.refuse(format!(
            "{} is {why}; it must be a regular file on disk holding the secret",
            path.display()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(match holds {
            Holds::Passphrase => DaemonError::UnsafePassphraseFile {
                path: path.to_path_buf(),
                mode,
            },
            Holds::StorePassword => DaemonError::Config(format!(
                "store password file {} has mode {mode:04o}: group and others must have no \
                 access (chmod 600 it)",
                path.display()
            )),
        });
    }
    let file = std::fs::File::open(path).map_err(|e| DaemonError::io(context(), e))?;
    let opened = file.metadata().map_err(|e| DaemonError::io(context(), e))?;
    if !opened.is_file() || opened.ino() != meta.ino() || opened.dev() != meta.dev() {
        return Err(holds.refuse(format!(
            "{} changed while it was being opened",
            path.display()
        )));
    }
    read_bounded(file, &context(), holds)
}

/// Why `path` is a kernel pseudo-file rather than a file on disk, if it is
/// one: anything under /proc or /sys (their files are "regular", report no
/// size or a made-up one, and some block on read or change on every
/// read: /proc/self/environ would hand over the daemon's environment), or
/// any regular file reporting size 0 (an empty file holds no passphrase).
fn pseudo_file(path: &Path, meta: &std::fs::Metadata) -> Option<&'static str> {
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if ["/proc", "/sys"].iter().any(|top| real.starts_with(top)) {
        return Some("a kernel pseudo-file (under /proc or /sys)");
    }
    (meta.len() == 0).then_some("empty (or a pseudo-file reporting no size)")
}

/// Reads at most [`MAX_LEN`] + 2 bytes (a secret and a CRLF) from
/// `source` and checks them; longer input is refused.
fn read_bounded(source: impl Read, what: &str, holds: Holds) -> Result<SecretString, DaemonError> {
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_LEN + 3));
    source
        .take(MAX_LEN as u64 + 3)
        .read_to_end(&mut bytes)
        .map_err(|e| DaemonError::io(what.to_owned(), e))?;
    if bytes.len() > MAX_LEN + 2 {
        return Err(holds.refuse(format!("{what} is longer than {MAX_LEN} bytes")));
    }
    let text =
        std::str::from_utf8(&bytes).map_err(|_| holds.refuse(format!("{what} is not UTF-8")))?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    checked(text, holds)
}

fn checked(text: &str, holds: Holds) -> Result<SecretString, DaemonError> {
    let what = match holds {
        Holds::Passphrase => "the passphrase",
        Holds::StorePassword => "the store password",
    };
    if text.is_empty() {
        return Err(holds.refuse(format!("{what} is empty")));
    }
    if text.len() > MAX_LEN {
        return Err(holds.refuse(format!("{what} is longer than {MAX_LEN} bytes")));
    }
    Ok(SecretString::from(text.to_owned()))
}

/// Takes the passphrase out of `TINFOIL_PASSPHRASE` and the store password
/// out of `PGPASSWORD`, where set. Call first thing in `main`, before any
/// thread starts.
///
/// When either variable is set, this re-executes the running binary (same
/// arguments, same process id) without them and hands them over on
/// standard input (see the module documentation); it returns only on
/// failure. In the re-executed image ([`HANDOVER_VAR`] set) it reads them
/// from standard input and returns them.
pub fn take_from_env() -> Result<EnvSecrets, DaemonError> {
    if let Some(which) = std::env::var_os(HANDOVER_VAR) {
        std::env::remove_var(HANDOVER_VAR);
        std::env::remove_var(ENV_VAR);
        std::env::remove_var(PASSWORD_ENV_VAR);
        return read_handover(std::io::stdin().lock(), &which.to_string_lossy());
    }
    let passphrase = take_var(ENV_VAR)?;
    // libpq ignores an empty PGPASSWORD; so does tinfoild.
    let password = take_var(PASSWORD_ENV_VAR)?.filter(|v| !v.is_empty());
    if passphrase.is_none() && password.is_none() {
        return Ok(EnvSecrets::default());
    }
    if let Some(value) = &passphrase {
        checked(value, Holds::Passphrase)?;
    }
    if let Some(value) = &password {
        checked(value, Holds::StorePassword)?;
    }
    // The handover: each secret as a 2-byte big-endian length and its
    // bytes, in the order HANDOVER_VAR names them.
    let mut which = Vec::new();
    let mut payload = Zeroizing::new(Vec::new());
    for (name, value) in [("passphrase", &passphrase), ("password", &password)] {
        if let Some(value) = value {
            which.push(name);
            payload.extend_from_slice(&(value.len() as u16).to_be_bytes());
            payload.extend_from_slice(value.as_bytes());
        }
    }
    Err(reexec_without_env(&payload, &which.join(",")))
}

/// Removes `name` from the environment and returns its value, if it was
/// set.
fn take_var(name: &str) -> Result<Option<Zeroizing<String>>, DaemonError> {
    let Some(value) = std::env::var_os(name) else {
        return Ok(None);
    };
    std::env::remove_var(name);
    let value = Zeroizing::new(
        value
            .into_string()
            .map_err(|_| DaemonError::Config(format!("{name} is not UTF-8")))?,
    );
    Ok(Some(value))
}

/// Reads the handed-over secrets (see [`take_from_env`]).
fn read_handover(source: impl Read, which: &str) -> Result<EnvSecrets, DaemonError> {
    let bad = || DaemonError::Passphrase("the handed-over secrets are malformed".into());
    let mut bytes = Zeroizing::new(Vec::with_capacity(2 * (MAX_LEN + 2)));
    source
        .take(2 * (MAX_LEN as u64 + 2) + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| DaemonError::io("reading the handed-over secrets", e))?;
    let mut rest: &[u8] = &bytes;
    let mut secrets = EnvSecrets::default();
    for name in which.split(',') {
        let (len, tail) = rest.split_first_chunk::<2>().ok_or_else(bad)?;
        let len = usize::from(u16::from_be_bytes(*len));
        if tail.len() < len {
            return Err(bad());
        }
        let (value, tail) = tail.split_at(len);
        rest = tail;
        let text = std::str::from_utf8(value).map_err(|_| bad())?;
        match name {
            "passphrase" => secrets.passphrase = Some(checked(text, Holds::Passphrase)?),
            "password" => secrets.store_password = Some(checked(text, Holds::StorePassword)?),
            _ => return Err(bad()),
        }
    }
    if !rest.is_empty() {
        return Err(bad());
    }
    Ok(secrets)
}

/// Re-executes this binary with `payload` (the secrets `which` names) on
/// standard input and without [`ENV_VAR`] and [`PASSWORD_ENV_VAR`];
/// returns the error when `exec` fails.
fn reexec_without_env(payload: &[u8], which: &str) -> DaemonError {
    use std::os::unix::process::CommandExt;
    let fail = |what: &str, e: std::io::Error| {
        DaemonError::io(
            format!("{what} (tinfoild re-executes itself to drop {ENV_VAR} from its memory; use --passphrase-file instead)"),
            e,
        )
    };
    let (mut ours, theirs) = match std::os::unix::net::UnixStream::pair() {
        Ok(pair) => pair,
        Err(e) => return fail("creating a socket pair", e),
    };
    // At most 8 KiB: the socket buffer takes it without a reader.
    if let Err(e) = ours.write_all(payload).and_then(|()| ours.flush()) {
        return fail("handing the passphrase over", e);
    }
    drop(ours);
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return fail("finding tinfoild's own binary", e),
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    let err = std::process::Command::new(&exe)
        .arg0(arg0)
        .args(args)
        .env_remove(ENV_VAR)
        .env_remove(PASSWORD_ENV_VAR)
        .env(HANDOVER_VAR, which)
        .stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(
            theirs,
        )))
        .exec();
    fail(&format!("re-executing {}", exe.display()), err)
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
    checked(&first, Holds::Passphrase)
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
    fn a_fifo_directory_or_device_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o600)).unwrap();
        for (path, kind) in [
            (fifo.as_path(), "a FIFO"),
            (dir.path(), "a directory"),
            (Path::new("/dev/zero"), "a device"),
        ] {
            let err = from_file(path).unwrap_err().to_string();
            assert!(
                err.contains(kind) && err.contains("must be a regular file"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_proc_or_sys_file_or_an_empty_file_is_refused() {
        // /proc/self/environ is a "regular" file of mode 0400: before the
        // check, the daemon took its own environment for the passphrase.
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/proc/self/environ", &link).unwrap();
        for path in [
            Path::new("/proc/self/environ"),
            link.as_path(),
            Path::new("/sys/kernel/mm/transparent_hugepage/enabled"),
        ] {
            if !path.exists() {
                continue;
            }
            let err = from_file(path).unwrap_err().to_string();
            assert!(
                err.contains("kernel pseudo-file"),
                "{}: {err}",
                path.display()
            );
        }
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "").unwrap();
        std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(from_file(&empty).unwrap_err().to_string().contains("empty"));
    }

    #[test]
    fn an_overlong_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        std::fs::write(&path, vec![b'a'; MAX_LEN + 3]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(from_file(&path).unwrap_err().to_string().contains("longer"));
        std::fs::write(&path, vec![b'a'; MAX_LEN]).unwrap();
        assert_eq!(from_file(&path).unwrap().expose_secret().len(), MAX_LEN);
    }

    #[test]
    fn the_handover_carries_either_secret_or_both() {
        let both = [&[0u8, 3][..], b"abc", &[0, 2], b"pw"].concat();
        let secrets = read_handover(&both[..], "passphrase,password").unwrap();
        assert_eq!(secrets.passphrase.unwrap().expose_secret(), "abc");
        assert_eq!(secrets.store_password.unwrap().expose_secret(), "pw");
        let secrets = read_handover(&both[..5], "password").unwrap();
        assert!(secrets.passphrase.is_none());
        assert_eq!(secrets.store_password.unwrap().expose_secret(), "abc");
        for (bytes, which) in [
            (&both[..], "passphrase"),
            (&both[..6], "passphrase,password"),
            (&both[..], "passphrase,other"),
            (&[0u8, 0][..], "password"),
        ] {
            assert!(read_handover(bytes, which).is_err(), "{which}");
        }
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
