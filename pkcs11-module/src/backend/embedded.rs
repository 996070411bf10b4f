//! `backend = "embedded"`: hsm-core in this process. The backend itself
//! is hsm-core's ([`hsm_core::pkcs11::embedded`], shared with tinfoild);
//! this module opens it as the configuration file says.

use std::path::Path;

use hsm_core::{HsmOptions, KdfParams, SecretString};
use zeroize::Zeroizing;

pub use hsm_core::pkcs11::embedded::EmbeddedBackend;

use crate::config::Config;
use crate::error::{Pkcs11Error, Result};

/// Largest passphrase file read, in bytes.
const MAX_PASSPHRASE_FILE: u64 = 4096;

fn read_passphrase(path: &Path) -> Result<SecretString> {
    let meta = std::fs::metadata(path).map_err(|e| {
        Pkcs11Error::General(format!(
            "cannot read passphrase file {}: {e}",
            path.display()
        ))
    })?;
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Pkcs11Error::General(format!(
                "passphrase file {} is readable or writable by group or others (mode {mode:o}); \
                 restrict it with chmod 600",
                path.display()
            )));
        }
    }
    if meta.len() > MAX_PASSPHRASE_FILE {
        return Err(Pkcs11Error::General(format!(
            "passphrase file {} is too large",
            path.display()
        )));
    }
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        Pkcs11Error::General(format!(
            "cannot read passphrase file {}: {e}",
            path.display()
        ))
    })?);
    let trimmed = text.trim_end_matches(['\n', '\r']);
    if trimmed.is_empty() {
        return Err(Pkcs11Error::General(format!(
            "passphrase file {} is empty",
            path.display()
        )));
    }
    Ok(SecretString::from(trimmed.to_string()))
}

/// Opens the store named by the configuration, initialising a missing or
/// empty data directory with the passphrase.
pub fn open(config: &Config) -> Result<EmbeddedBackend> {
    let Config::Embedded {
        data_dir,
        passphrase_file,
        kdf_memory_kib,
        kdf_iterations,
    } = config
    else {
        return Err(Pkcs11Error::General("not an embedded configuration".into()));
    };
    let passphrase = read_passphrase(passphrase_file)?;
    let mut options = HsmOptions::default();
    let defaults = KdfParams::default();
    options.kdf = KdfParams {
        memory_kib: kdf_memory_kib.unwrap_or(defaults.memory_kib),
        iterations: kdf_iterations.unwrap_or(defaults.iterations),
        parallelism: defaults.parallelism,
    };
    EmbeddedBackend::open(data_dir, &passphrase, options)
}
