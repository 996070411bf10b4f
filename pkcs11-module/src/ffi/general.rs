//! General, slot, token, session and login functions.

use std::ffi::c_void;

use cryptoki_sys::*;

use super::{deliver_list, guard, in_bytes, locking, out_ref, padded, unlocked, with_module};
use crate::error::{ckr, Pkcs11Error};
use crate::mechanisms;
use crate::module::lock;
use crate::pin::{MAX_PIN_LEN, MIN_PIN_LEN};

const MANUFACTURER: &str = "Tinfoil";

pub(super) unsafe extern "C" fn C_Initialize(args: *mut c_void) -> CK_RV {
    unlocked(|| {
        // SAFETY: NULL or a CK_C_INITIALIZE_ARGS, as the caller promises.
        let mut app = match unsafe { (args as *const CK_C_INITIALIZE_ARGS).as_ref() } {
            Some(args) => {
                if !args.pReserved.is_null() {
                    return Err(Pkcs11Error::ArgumentsBad("pReserved must be NULL"));
                }
                // Checked before a mutex is created, so a second call
                // creates nothing.
                if crate::state::check_initialized().is_ok() {
                    return Err(Pkcs11Error::AlreadyInitialized);
                }
                locking::from_args(args)?
            }
            None => None,
        };
        let result = crate::state::initialize(|| locking::install(app.take()));
        if let Some(unused) = app {
            unused.discard();
        }
        result
    })
}

pub(super) unsafe extern "C" fn C_Finalize(reserved: *mut c_void) -> CK_RV {
    let rv = guard(|| {
        crate::state::check_initialized()?;
        if !reserved.is_null() {
            return Err(Pkcs11Error::ArgumentsBad("pReserved must be NULL"));
        }
        crate::state::finalize()
    });
    if rv == CKR_OK {
        locking::uninstall();
    }
    rv
}

/// C_GetInfo of the v3.0 list (cryptokiVersion 3.0).
pub(super) unsafe extern "C" fn C_GetInfo(info: *mut CK_INFO) -> CK_RV {
    unsafe { get_info(info, CK_VERSION { major: 3, minor: 0 }) }
}

/// C_GetInfo reporting `version` as cryptokiVersion: each function list's
/// own (2.40, 3.0, 3.2).
pub(super) unsafe fn get_info(info: *mut CK_INFO, version: CK_VERSION) -> CK_RV {
    guard(|| {
        crate::state::check_initialized()?;
        let info = unsafe { out_ref(info) }?;
        *info = CK_INFO {
            cryptokiVersion: version,
            manufacturerID: padded(MANUFACTURER),
            flags: 0,
            libraryDescription: padded("Tinfoil PKCS#11 module"),
            libraryVersion: CK_VERSION { major: 0, minor: 1 },
        };
        Ok(())
    })
}

pub(super) unsafe extern "C" fn C_GetSlotList(
    _token_present: CK_BBOOL,
    list: *mut CK_SLOT_ID,
    count: *mut CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        unsafe { out_ref(count) }?;
        let ids: Vec<CK_SLOT_ID> = (0..m.refresh_slots()?.len() as CK_SLOT_ID).collect();
        unsafe { deliver_list(&ids, list, count) }
    })
}

pub(super) unsafe extern "C" fn C_GetSlotInfo(slot: CK_SLOT_ID, info: *mut CK_SLOT_INFO) -> CK_RV {
    with_module(|m| {
        let info = unsafe { out_ref(info) }?;
        m.slot(slot)?;
        *info = CK_SLOT_INFO {
            slotDescription: padded(&format!("Tinfoil slot {slot} ({})", m.backend.name())),
            manufacturerID: padded(MANUFACTURER),
            flags: CKF_TOKEN_PRESENT,
            hardwareVersion: CK_VERSION { major: 0, minor: 1 },
            firmwareVersion: CK_VERSION { major: 0, minor: 1 },
        };
        Ok(())
    })
}

pub(super) unsafe extern "C" fn C_GetTokenInfo(
    slot: CK_SLOT_ID,
    info: *mut CK_TOKEN_INFO,
) -> CK_RV {
    with_module(|m| {
        let info = unsafe { out_ref(info) }?;
        let slot = m.slot(slot)?;
        let (label, serial, flags, counts) = match &slot.token {
            Some(serial) => {
                let record = m.token_record(serial)?;
                let mut flags =
                    CKF_RNG | CKF_LOGIN_REQUIRED | CKF_TOKEN_INITIALIZED | record.pin_flags;
                if record.user_pin_initialized {
                    flags |= CKF_USER_PIN_INITIALIZED;
                }
                (
                    record.label,
                    serial.clone(),
                    flags,
                    m.session_counts(serial)?,
                )
            }
            None => (
                String::new(),
                String::new(),
                CKF_RNG | CKF_LOGIN_REQUIRED,
                (0, 0),
            ),
        };
        *info = CK_TOKEN_INFO {
            label: padded(&label),
            manufacturerID: padded(MANUFACTURER),
            model: padded(m.backend.name()),
            serialNumber: padded(&serial),
            flags,
            ulMaxSessionCount: crate::module::MAX_SESSIONS as CK_ULONG,
            ulSessionCount: counts.0 as CK_ULONG,
            ulMaxRwSessionCount: crate::module::MAX_SESSIONS as CK_ULONG,
            ulRwSessionCount: counts.1 as CK_ULONG,
            ulMaxPinLen: MAX_PIN_LEN as CK_ULONG,
            ulMinPinLen: MIN_PIN_LEN as CK_ULONG,
            ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
            hardwareVersion: CK_VERSION { major: 0, minor: 1 },
            firmwareVersion: CK_VERSION { major: 0, minor: 1 },
            utcTime: padded(""),
        };
        Ok(())
    })
}

pub(super) unsafe extern "C" fn C_GetMechanismList(
    slot: CK_SLOT_ID,
    list: *mut CK_MECHANISM_TYPE,
    count: *mut CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        unsafe { out_ref(count) }?;
        m.slot(slot)?;
        let mechs: Vec<CK_MECHANISM_TYPE> = mechanisms::offered(m.backend.as_ref())
            .map(|e| e.mechanism)
            .collect();
        unsafe { deliver_list(&mechs, list, count) }
    })
}

pub(super) unsafe extern "C" fn C_GetMechanismInfo(
    slot: CK_SLOT_ID,
    mechanism: CK_MECHANISM_TYPE,
    info: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    with_module(|m| {
        let info = unsafe { out_ref(info) }?;
        m.slot(slot)?;
        let entry = mechanisms::lookup_for(m.backend.as_ref(), mechanism)?;
        *info = CK_MECHANISM_INFO {
            ulMinKeySize: entry.min_key,
            ulMaxKeySize: entry.max_key,
            flags: entry.flags,
        };
        Ok(())
    })
}

pub(super) unsafe extern "C" fn C_InitToken(
    slot: CK_SLOT_ID,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
    label: *mut CK_UTF8CHAR,
) -> CK_RV {
    with_module(|m| {
        if pin.is_null() || label.is_null() {
            return Err(Pkcs11Error::ArgumentsBad("NULL PIN or label"));
        }
        let pin = unsafe { in_bytes(pin, pin_len) }?;
        let label = unsafe { in_bytes(label, 32) }?;
        let label = std::str::from_utf8(label)
            .map_err(|_| Pkcs11Error::ArgumentsBad("label is not UTF-8"))?
            .trim_end_matches([' ', '\0']);
        m.init_token(slot, pin, label)
    })
}

pub(super) unsafe extern "C" fn C_InitPIN(
    h: CK_SESSION_HANDLE,
    pin: *mut CK_UTF8CHAR,
    len: CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        if pin.is_null() {
            return Err(Pkcs11Error::ArgumentsBad("NULL PIN"));
        }
        m.init_pin(h, unsafe { in_bytes(pin, len) }?)
    })
}

pub(super) unsafe extern "C" fn C_SetPIN(
    h: CK_SESSION_HANDLE,
    old: *mut CK_UTF8CHAR,
    old_len: CK_ULONG,
    new: *mut CK_UTF8CHAR,
    new_len: CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        if old.is_null() || new.is_null() {
            return Err(Pkcs11Error::ArgumentsBad("NULL PIN"));
        }
        m.set_pin(h, unsafe { in_bytes(old, old_len) }?, unsafe {
            in_bytes(new, new_len)
        }?)
    })
}

pub(super) unsafe extern "C" fn C_OpenSession(
    slot: CK_SLOT_ID,
    flags: CK_FLAGS,
    _app: *mut c_void,
    _notify: CK_NOTIFY,
    handle: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    with_module(|m| {
        let handle = unsafe { out_ref(handle) }?;
        *handle = m.open_session(slot, flags)?;
        Ok(())
    })
}

pub(super) unsafe extern "C" fn C_CloseSession(h: CK_SESSION_HANDLE) -> CK_RV {
    with_module(|m| m.close_session(h))
}

pub(super) unsafe extern "C" fn C_CloseAllSessions(slot: CK_SLOT_ID) -> CK_RV {
    with_module(|m| m.close_all_sessions(slot))
}

pub(super) unsafe extern "C" fn C_GetSessionInfo(
    h: CK_SESSION_HANDLE,
    info: *mut CK_SESSION_INFO,
) -> CK_RV {
    with_module(|m| {
        let info = unsafe { out_ref(info) }?;
        let session = m.session(h)?;
        let s = lock(&session)?;
        *info = CK_SESSION_INFO {
            slotID: s.slot,
            state: m.session_state(&s)?,
            flags: CKF_SERIAL_SESSION | if s.read_write { CKF_RW_SESSION } else { 0 },
            ulDeviceError: 0,
        };
        Ok(())
    })
}

pub(super) unsafe extern "C" fn C_Login(
    h: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    len: CK_ULONG,
) -> CK_RV {
    with_module(|m| {
        if pin.is_null() {
            return Err(Pkcs11Error::ArgumentsBad("NULL PIN (no protected path)"));
        }
        m.login(h, user, unsafe { in_bytes(pin, len) }?)
    })
}

pub(super) unsafe extern "C" fn C_Logout(h: CK_SESSION_HANDLE) -> CK_RV {
    with_module(|m| m.logout(h))
}

pub(super) unsafe extern "C" fn C_GetFunctionStatus(h: CK_SESSION_HANDLE) -> CK_RV {
    with_module(|m| {
        m.session(h)?;
        Err(ckr!(CKR_FUNCTION_NOT_PARALLEL))
    })
}

pub(super) unsafe extern "C" fn C_CancelFunction(h: CK_SESSION_HANDLE) -> CK_RV {
    with_module(|m| {
        m.session(h)?;
        Err(ckr!(CKR_FUNCTION_NOT_PARALLEL))
    })
}
