//! The process-wide state: the module instance between C_Initialize and
//! C_Finalize, and the process id that made it, so that a fork()ed child
//! is seen as not initialised and may call C_Initialize again.

use std::sync::{Arc, RwLock};

use crate::config::Config;
use crate::error::{Pkcs11Error, Result};
use crate::module::Module;

struct Global {
    pid: u32,
    module: Arc<Module>,
}

static STATE: RwLock<Option<Global>> = RwLock::new(None);

/// C_Initialize after the arguments were checked: reads the configuration
/// and opens the backend. Failures are reported on standard error, since
/// the application only sees CKR_GENERAL_ERROR.
pub fn initialize() -> Result<()> {
    let mut state = STATE.write().unwrap_or_else(|p| p.into_inner());
    let pid = std::process::id();
    if let Some(global) = state.as_ref() {
        if global.pid == pid {
            return Err(Pkcs11Error::AlreadyInitialized);
        }
        // A forked child: the parent's threads and locks do not exist
        // here, so the inherited instance is leaked, never used or dropped.
        std::mem::forget(state.take());
    }
    let module = Config::from_env()
        .and_then(|config| crate::backend::open(&config))
        .and_then(Module::new)
        .inspect_err(|e| eprintln!("libtinfoil_pkcs11: C_Initialize failed: {e}"))?;
    *state = Some(Global {
        pid,
        module: Arc::new(module),
    });
    Ok(())
}

/// C_Finalize: drops the instance (sessions, objects, backend).
pub fn finalize() -> Result<()> {
    let mut state = STATE.write().unwrap_or_else(|p| p.into_inner());
    match state.as_ref() {
        Some(global) if global.pid == std::process::id() => {
            state.take();
            Ok(())
        }
        _ => Err(Pkcs11Error::NotInitialized),
    }
}

/// The current instance, or CKR_CRYPTOKI_NOT_INITIALIZED.
pub fn module() -> Result<Arc<Module>> {
    let state = STATE.read().unwrap_or_else(|p| p.into_inner());
    match state.as_ref() {
        Some(global) if global.pid == std::process::id() => Ok(global.module.clone()),
        _ => Err(Pkcs11Error::NotInitialized),
    }
}
