//! The module's configuration: the TOML file named by the environment
//! variable `TINFOIL_PKCS11_CONFIG`.
//!
//! ```toml
//! backend = "embedded"            # or "daemon", or "memory" (tests only)
//! data_dir = "/var/lib/tinfoil"   # created and initialised on first use
//! passphrase_file = "/etc/tinfoil/passphrase"
//! ```
//!
//! or, to reach tinfoild over its Unix socket:
//!
//! ```toml
//! backend = "daemon"
//! endpoint = "unix:/run/tinfoil/tinfoil.sock"
//! ```

use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{Pkcs11Error, Result};

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "TINFOIL_PKCS11_CONFIG";
/// Largest configuration file read, in bytes.
const MAX_CONFIG_LEN: u64 = 64 * 1024;

/// Which backend the module uses, with its settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase", deny_unknown_fields)]
pub enum Config {
    /// hsm-core in this process.
    Embedded {
        /// The store's directory.
        data_dir: PathBuf,
        /// A file holding the store's passphrase (trailing newline ignored).
        passphrase_file: PathBuf,
        /// Argon2id memory (KiB) for a store created on first use
        /// (default: hsm-core's, 64 MiB). Ignored for an existing store.
        #[serde(default)]
        kdf_memory_kib: Option<u32>,
        /// Argon2id passes for a store created on first use.
        #[serde(default)]
        kdf_iterations: Option<u32>,
    },
    /// A non-persistent store for tests, without key mechanisms.
    Memory {},
    /// tinfoild over gRPC: key material stays in the daemon.
    Daemon {
        /// Where tinfoild listens: `unix:PATH`.
        endpoint: String,
    },
}

impl Config {
    /// Parses a configuration text.
    pub fn parse(text: &str) -> Result<Config> {
        toml::from_str(text)
            .map_err(|e| Pkcs11Error::General(format!("bad configuration: {}", e.message())))
    }

    /// Reads the file named by `TINFOIL_PKCS11_CONFIG`.
    pub fn from_env() -> Result<Config> {
        let path = std::env::var_os(CONFIG_ENV).ok_or_else(|| {
            Pkcs11Error::General(format!(
                "{CONFIG_ENV} is not set; it must name the module's TOML configuration file"
            ))
        })?;
        let path = PathBuf::from(path);
        let meta = std::fs::metadata(&path)
            .map_err(|e| Pkcs11Error::General(format!("cannot read {}: {e}", path.display())))?;
        if meta.len() > MAX_CONFIG_LEN {
            return Err(Pkcs11Error::General(format!(
                "{} is larger than {MAX_CONFIG_LEN} bytes",
                path.display()
            )));
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Pkcs11Error::General(format!("cannot read {}: {e}", path.display())))?;
        Config::parse(&text).map_err(|e| Pkcs11Error::General(format!("{}: {e}", path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_backends_and_rejects_the_rest() {
        assert_eq!(
            Config::parse("backend = \"memory\"").unwrap(),
            Config::Memory {}
        );
        let c =
            Config::parse("backend = \"embedded\"\ndata_dir = \"/d\"\npassphrase_file = \"/p\"")
                .unwrap();
        assert_eq!(
            c,
            Config::Embedded {
                data_dir: "/d".into(),
                passphrase_file: "/p".into(),
                kdf_memory_kib: None,
                kdf_iterations: None,
            }
        );
        for bad in [
            "",
            "backend = \"nope\"",
            "backend = \"embedded\"\ndata_dir = \"/d\"",
            "backend = \"memory\"\nextra = 1",
            "not toml at all [",
        ] {
            let err = Config::parse(bad).unwrap_err();
            assert_eq!(err.rv(), cryptoki_sys::CKR_GENERAL_ERROR, "{bad}");
        }
    }

    #[test]
    fn the_daemon_configuration_parses_and_bad_endpoints_are_refused() {
        use cryptoki_sys::CKR_GENERAL_ERROR;
        let c = Config::parse("backend = \"daemon\"\nendpoint = \"unix:/run/t.sock\"").unwrap();
        assert_eq!(
            c,
            Config::Daemon {
                endpoint: "unix:/run/t.sock".into()
            }
        );
        for bad in [
            "backend = \"daemon\"",
            "backend = \"daemon\"\nendpoint = \"unix:/x\"\ndata_dir = \"/d\"",
        ] {
            assert_eq!(
                Config::parse(bad).unwrap_err().rv(),
                CKR_GENERAL_ERROR,
                "{bad}"
            );
        }
        for endpoint in ["tcp:127.0.0.1:1", "unix:", "/plain/path"] {
            let err = crate::backend::daemon::DaemonBackend::connect(endpoint).unwrap_err();
            assert_eq!(err.rv(), CKR_GENERAL_ERROR, "{endpoint}");
            assert!(err.to_string().contains("unix:PATH"), "{err}");
        }
    }
}
