//! Loading PKCS#11 modules and logging in to their tokens, once per process.
//!
//! PKCS#11 state belongs to the process, not to a handle: `C_Initialize` and `C_Finalize` act on the whole module, and a
//! login is shared by every session the process has with that token. Two independent openers would finalise the module
//! under each other, and a second login would be answered "already logged in" without the PIN ever being checked. So a
//! module is loaded once per path and finalised when its last open token closes, and a token is open at most once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use super::pkcs11_error;
use crate::error::TokenError;

static MODULES: Mutex<BTreeMap<PathBuf, Loaded>> = Mutex::new(BTreeMap::new());

struct Loaded {
    pkcs11: Pkcs11,
    /// False when another part of the process had already initialised the module: finalising it is then not ours to do.
    initialised_here: bool,
    open_slots: BTreeSet<u64>,
}

impl Loaded {
    fn load(path: &Path) -> Result<Self, TokenError> {
        let module_error = |error: Error| TokenError::Module {
            path: path.to_owned(),
            detail: super::describe(&error),
        };
        let pkcs11 = Pkcs11::new(path).map_err(module_error)?;
        // Sessions are used from several threads, so the module must lock with the OS's primitives.
        let initialised_here =
            match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
                Ok(()) => true,
                Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => false,
                Err(error) => return Err(module_error(error)),
            };
        Ok(Self {
            pkcs11,
            initialised_here,
            open_slots: BTreeSet::new(),
        })
    }

    fn release(self) {
        if self.initialised_here {
            // Called on drop, where there is no one to report to; the library is unloaded either way once the last
            // handle to it goes.
            let _ = self.pkcs11.finalize();
        }
    }
}

fn modules() -> MutexGuard<'static, BTreeMap<PathBuf, Loaded>> {
    // The map is only changed by single inserts and removes, so it is consistent even if a holder panicked.
    MODULES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A token opened and logged in. Keep `login` open as long as the token is used: the login ends with the last session.
pub(super) struct Opened {
    pub(super) pkcs11: Pkcs11,
    pub(super) slot: Slot,
    pub(super) login: Session,
    pub(super) lease: SlotLease,
}

/// Marks a slot open in its module; dropping it, after every session to the slot is closed, finalises the module if
/// no other slot of it is open.
pub(super) struct SlotLease {
    path: PathBuf,
    slot: u64,
}

impl Drop for SlotLease {
    fn drop(&mut self) {
        let mut modules = modules();
        let Some(loaded) = modules.get_mut(&self.path) else {
            return;
        };
        loaded.open_slots.remove(&self.slot);
        if loaded.open_slots.is_empty() {
            if let Some(loaded) = modules.remove(&self.path) {
                loaded.release();
            }
        }
    }
}

/// Loads the module at `path` if this process has not, finds the token labelled `label`, and logs in as its user.
pub(super) fn open(path: &Path, label: &str, pin: &AuthPin) -> Result<Opened, TokenError> {
    let path = std::fs::canonicalize(path).map_err(|error| TokenError::Module {
        path: path.to_owned(),
        detail: error.to_string(),
    })?;
    // Held throughout, so that no other thread finalises the module or opens the same token meanwhile.
    let mut modules = modules();
    if !modules.contains_key(&path) {
        let loaded = Loaded::load(&path)?;
        modules.insert(path.clone(), loaded);
    }
    let Some(loaded) = modules.get_mut(&path) else {
        return Err(TokenError::Module {
            path,
            detail: "the module vanished while it was being opened".to_owned(),
        });
    };
    match log_in(&loaded.pkcs11, &path, label, pin, &loaded.open_slots) {
        Ok((slot, login)) => {
            loaded.open_slots.insert(slot.id());
            Ok(Opened {
                pkcs11: loaded.pkcs11.clone(),
                slot,
                login,
                lease: SlotLease {
                    path,
                    slot: slot.id(),
                },
            })
        }
        Err(error) => {
            if loaded.open_slots.is_empty() {
                if let Some(loaded) = modules.remove(&path) {
                    loaded.release();
                }
            }
            Err(error)
        }
    }
}

fn log_in(
    pkcs11: &Pkcs11,
    path: &Path,
    label: &str,
    pin: &AuthPin,
    open_slots: &BTreeSet<u64>,
) -> Result<(Slot, Session), TokenError> {
    let slot = find_slot(pkcs11, path, label)?;
    if open_slots.contains(&slot.id()) {
        return Err(TokenError::AlreadyOpen {
            label: label.to_owned(),
        });
    }
    let session = pkcs11
        .open_rw_session(slot)
        .map_err(|error| pkcs11_error("C_OpenSession", &error))?;
    session
        .login(UserType::User, Some(pin))
        .map_err(|error| match error {
            Error::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _) => {
                TokenError::WrongPin {
                    label: label.to_owned(),
                }
            }
            Error::Pkcs11(RvError::PinLocked, _) => TokenError::PinLocked {
                label: label.to_owned(),
            },
            other => pkcs11_error("C_Login", &other),
        })?;
    Ok((slot, session))
}

fn find_slot(pkcs11: &Pkcs11, path: &Path, label: &str) -> Result<Slot, TokenError> {
    let slots = pkcs11
        .get_slots_with_initialized_token()
        .map_err(|error| pkcs11_error("C_GetSlotList", &error))?;
    let mut matching = Vec::new();
    for slot in slots {
        let info = pkcs11
            .get_token_info(slot)
            .map_err(|error| pkcs11_error("C_GetTokenInfo", &error))?;
        if info.label() == label {
            matching.push(slot);
        }
    }
    match matching.as_slice() {
        [] => Err(TokenError::TokenNotFound {
            path: path.to_owned(),
            label: label.to_owned(),
        }),
        [slot] => Ok(*slot),
        more => Err(TokenError::Ambiguous {
            what: "tokens",
            label: label.to_owned(),
            count: more.len(),
        }),
    }
}
