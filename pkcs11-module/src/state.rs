//! The process-wide state: the module instance between C_Initialize and
//! C_Finalize, and the process id that made it, so that a fork()ed child
//! is seen as not initialised and may call C_Initialize again.
//!
//! A forked child never uses, drops or closes what it inherited (the
//! parent's threads and locks do not exist there, and closing the
//! parent's SQLite connection could checkpoint or remove files the parent
//! still uses): the inherited instance is leaked. The child's C_Initialize
//! reads the configuration and defers opening the backend to its first
//! real call, which opens the store beside the parent (an embedded store
//! may be held by several processes; a failure is retried on each call).
//! The child's copy of the store lock is closed at fork (`crate::ffi::fork`).

use std::sync::{Arc, RwLock};

use crate::config::Config;
use crate::error::{Pkcs11Error, Result};
use crate::module::Module;

enum Instance {
    /// The backend is open.
    Ready(Arc<Module>),
    /// A forked child's instance: opened on first use.
    Deferred(Config),
}

struct Global {
    pid: u32,
    instance: Instance,
}

static STATE: RwLock<Option<Global>> = RwLock::new(None);

fn report(what: &str) -> impl Fn(&Pkcs11Error) + '_ {
    move |e| eprintln!("libtinfoil_pkcs11: {what}: {e}")
}

/// Opens the backend a configuration names and builds an instance on it.
fn open(config: &Config) -> Result<Arc<Module>> {
    if matches!(config, Config::Embedded { .. }) {
        // The store's keys will live in this process: no core dumps (unless
        // TINFOIL_ALLOW_CORE_DUMPS=1), secrets on locked pages. The daemon
        // backend holds no keys, so the application is left as it was.
        let protection = hsm_core::secmem::protect_process();
        if !protection.memory_lockable {
            eprintln!(
                "libtinfoil_pkcs11: warning: cannot lock memory (RLIMIT_MEMLOCK exhausted): \
                 key material may be written to swap"
            );
        }
    }
    let opened = crate::backend::open(config)?;
    let lock = opened.lock_fd;
    let module = Module::new(opened.backend)?;
    crate::ffi::fork::hold_lock(lock);
    Ok(Arc::new(module))
}

/// C_Initialize after the arguments were checked: reads the configuration
/// and opens the backend (in a forked child: on first use). Failures are
/// reported on standard error, since the application only sees
/// CKR_GENERAL_ERROR. `on_success` runs under the state lock once the
/// module counts as initialised.
pub fn initialize(on_success: impl FnOnce()) -> Result<()> {
    let mut state = STATE.write().unwrap_or_else(|p| p.into_inner());
    let pid = crate::ffi::fork::current_pid();
    let mut forked = false;
    if let Some(global) = state.as_ref() {
        if global.pid == pid {
            return Err(Pkcs11Error::AlreadyInitialized);
        }
        std::mem::forget(state.take());
        forked = true;
    }
    let report = report("C_Initialize failed");
    // Known-answer and pairwise self-tests, once per process: a module
    // whose cryptography is broken refuses to start. They run on a thread
    // of their own while the backend opens (the embedded store's KDF
    // waits for them before unsealing anything) and are waited for here
    // before C_Initialize returns.
    hsm_core::selftest::start();
    let config = Config::from_env().inspect_err(&report)?;
    let instance = if forked {
        Instance::Deferred(config)
    } else {
        Instance::Ready(open(&config).inspect_err(&report)?)
    };
    hsm_core::selftest::run()
        .map_err(Pkcs11Error::from)
        .inspect_err(&report)?;
    *state = Some(Global { pid, instance });
    on_success();
    Ok(())
}

/// C_Finalize: drops the instance (sessions, objects, backend).
pub fn finalize() -> Result<()> {
    let mut state = STATE.write().unwrap_or_else(|p| p.into_inner());
    match state.as_ref() {
        Some(global) if global.pid == crate::ffi::fork::current_pid() => {
            crate::ffi::fork::release_lock();
            state.take();
            Ok(())
        }
        _ => Err(Pkcs11Error::NotInitialized),
    }
}

/// Ok when C_Initialize was called in this process (the backend may not be
/// open yet), else CKR_CRYPTOKI_NOT_INITIALIZED.
pub fn check_initialized() -> Result<()> {
    let state = STATE.read().unwrap_or_else(|p| p.into_inner());
    match state.as_ref() {
        Some(global) if global.pid == crate::ffi::fork::current_pid() => Ok(()),
        _ => Err(Pkcs11Error::NotInitialized),
    }
}

/// The current instance, or CKR_CRYPTOKI_NOT_INITIALIZED. Opens a forked
/// child's deferred backend.
pub fn module() -> Result<Arc<Module>> {
    let pid = crate::ffi::fork::current_pid();
    {
        let state = STATE.read().unwrap_or_else(|p| p.into_inner());
        match state.as_ref() {
            Some(Global {
                pid: p,
                instance: Instance::Ready(module),
            }) if *p == pid => return Ok(module.clone()),
            Some(global) if global.pid == pid => {}
            _ => return Err(Pkcs11Error::NotInitialized),
        }
    }
    let mut state = STATE.write().unwrap_or_else(|p| p.into_inner());
    match state.as_mut() {
        Some(global) if global.pid == pid => {
            let module = match &global.instance {
                Instance::Ready(module) => module.clone(),
                Instance::Deferred(config) => open(config)
                    .inspect_err(report("cannot open the backend in this fork()ed child"))?,
            };
            global.instance = Instance::Ready(module.clone());
            Ok(module)
        }
        _ => Err(Pkcs11Error::NotInitialized),
    }
}
