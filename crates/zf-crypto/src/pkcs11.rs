//! Key-encryption keys held inside a PKCS#11 token: a hardware security module, or SoftHSM2 in tests.
//!
//! Each KEK version is an AES-256 secret-key object on the token labelled `zhangfang-kek-v{version}`, generated there as
//! sensitive and non-extractable. A [`Kek`] from [`Pkcs11Token::kek`] wraps and unwraps by asking the token to run
//! CKM_AES_GCM with that object, so the KEK never enters this process's memory or disk; only the DEK or system key
//! being wrapped passes through, as it does with a software KEK. The envelope is byte-for-byte the one a software KEK
//! writes, so a stored wrapped key does not record, and need not know, where its KEK lives.

mod key;
mod module;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use cryptoki::context::Pkcs11;
use cryptoki::error::Error;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{
    Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use cryptoki::types::{AuthPin, Ulong};
use zeroize::Zeroizing;

pub(crate) use key::TokenKey;

use crate::error::TokenError;
use crate::kek::Kek;
use crate::master_key::KeyVersion;
use crate::secret::KEY_LEN;

/// Idle sessions kept for reuse; more are opened while more threads need one at the same moment, then closed.
const MAX_IDLE_SESSIONS: usize = 8;

/// A token's user PIN. Wiped from memory when dropped; `Debug` shows nothing of it.
pub struct TokenPin(Zeroizing<String>);

impl TokenPin {
    pub fn new(pin: String) -> Self {
        Self(Zeroizing::new(pin))
    }
}

impl From<String> for TokenPin {
    fn from(pin: String) -> Self {
        Self::new(pin)
    }
}

impl fmt::Debug for TokenPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenPin(..)")
    }
}

/// How a KEK object is protected, as the token reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KekProtection {
    /// CKA_SENSITIVE: the token will not reveal the key's value.
    pub sensitive: bool,
    /// CKA_ALWAYS_SENSITIVE: it never could; false for a key that was imported rather than generated on the token.
    pub always_sensitive: bool,
    /// CKA_EXTRACTABLE: the token would export the key wrapped under another key.
    pub extractable: bool,
    /// CKA_NEVER_EXTRACTABLE: it never could.
    pub never_extractable: bool,
    /// Whether the token answered a request for CKA_VALUE with a length rather than a refusal. Only the length is asked
    /// for, so even a token that would reveal the value sends none of it here.
    pub value_readable: bool,
}

/// An open, logged-in PKCS#11 token that holds Zhangfang's KEKs. Cheap to clone; every clone, and every [`Kek`] taken
/// from it, shares one login and one pool of sessions, and the token stays open until the last of them is dropped.
///
/// A token can be open only once per process at a time (PKCS#11 logins are per process, so a second login could not
/// check its PIN): share this handle instead of opening the token again.
#[derive(Clone)]
pub struct Pkcs11Token {
    inner: Arc<TokenInner>,
}

struct TokenInner {
    // Fields drop in order: every session must be closed before the lease may finalise the module.
    idle: Mutex<Vec<Session>>,
    /// Never used for operations, so it is never closed after an error: the login lasts as long as it does.
    _login: Mutex<Session>,
    /// Shared while the token's objects are searched, exclusive while one is added or removed. SoftHSM2 2.6 lists a new
    /// token object to every session as soon as its file exists, before C_GenerateKey has written its attributes; a
    /// C_FindObjects on another thread then re-reads the half-written object from disk under it (its file locks do not
    /// exclude threads of one process), and the generation fails with CKR_GENERAL_ERROR. Being exclusive also keeps a
    /// check for an existing label together with the generation or destruction that follows.
    objects: RwLock<()>,
    pkcs11: Pkcs11,
    slot: Slot,
    module_path: PathBuf,
    token_label: String,
    _lease: module::SlotLease,
}

impl TokenInner {
    /// Runs `operation` on a session of its own: a PKCS#11 session carries one operation at a time and is not `Sync`.
    /// A session whose operation failed is closed rather than reused, so no half-finished state is carried over.
    fn with_session<T>(
        &self,
        operation: impl FnOnce(&Session) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let pooled = lock(&self.idle).pop();
        let session = match pooled {
            Some(session) => session,
            None => self.pkcs11.open_rw_session(self.slot)?,
        };
        let result = operation(&session);
        if result.is_ok() {
            let mut idle = lock(&self.idle);
            if idle.len() < MAX_IDLE_SESSIONS {
                idle.push(session);
            }
        }
        result
    }
}

impl Pkcs11Token {
    /// Loads the PKCS#11 module at `module` (e.g. `/usr/lib/softhsm/libsofthsm2.so`), finds the token labelled
    /// `token_label` and logs in to it as the user.
    pub fn open(
        module: impl AsRef<Path>,
        token_label: &str,
        pin: &TokenPin,
    ) -> Result<Self, TokenError> {
        let pin = AuthPin::from(pin.0.as_str());
        let opened = module::open(module.as_ref(), token_label, &pin)?;
        Ok(Self {
            inner: Arc::new(TokenInner {
                idle: Mutex::new(Vec::new()),
                _login: Mutex::new(opened.login),
                objects: RwLock::new(()),
                pkcs11: opened.pkcs11,
                slot: opened.slot,
                module_path: module.as_ref().to_owned(),
                token_label: token_label.to_owned(),
                _lease: opened.lease,
            }),
        })
    }

    /// The label of the token object that holds KEK `version`.
    pub fn kek_label(version: KeyVersion) -> String {
        format!("zhangfang-kek-v{}", version.0)
    }

    pub fn token_label(&self) -> &str {
        &self.inner.token_label
    }

    /// The KEK of `version`, found by its label. It must be an AES-256 key that the token will neither reveal nor
    /// export, and that may encrypt and decrypt.
    pub fn kek(&self, version: KeyVersion) -> Result<Kek, TokenError> {
        let label = Self::kek_label(version);
        let _search = read(&self.inner.objects);
        let handle = self.find_kek(&label)?;
        self.check_suitable(handle, &label)?;
        Ok(self.token_kek(version, handle, label))
    }

    /// Generates KEK `version` inside the token, for initialisation and rotation. Refused if any object already carries
    /// its label: a version names one key for good, and wrapped keys already written under it must stay readable.
    pub fn generate_kek(&self, version: KeyVersion) -> Result<Kek, TokenError> {
        let label = Self::kek_label(version);
        let _change = write(&self.inner.objects);
        if !self.objects_labelled(&label)?.is_empty() {
            return Err(TokenError::KeyExists { label });
        }
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(ulong(KEY_LEN)?),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
        ];
        let handle = self
            .inner
            .with_session(|session| session.generate_key(&Mechanism::AesKeyGen, &template))
            .map_err(|error| pkcs11_error("C_GenerateKey", &error))?;
        // Another process may have generated the same label since the check. The token does not keep labels unique, so
        // the later key is removed again rather than left to make every lookup of this version ambiguous.
        if self.objects_labelled(&label)?.len() > 1 {
            self.destroy(handle)?;
            return Err(TokenError::KeyExists { label });
        }
        self.check_suitable(handle, &label)?;
        Ok(self.token_kek(version, handle, label))
    }

    /// Destroys KEK `version` on the token: its retirement once every key it wrapped has been rewrapped under a newer
    /// version. Whatever is still wrapped under it can never be unwrapped again.
    pub fn destroy_kek(&self, version: KeyVersion) -> Result<(), TokenError> {
        let label = Self::kek_label(version);
        let _change = write(&self.inner.objects);
        let handle = self.find_kek(&label)?;
        self.destroy(handle)
    }

    /// Reports how KEK `version` is protected, as the token itself states it, for operators and tests to check.
    pub fn kek_protection(&self, version: KeyVersion) -> Result<KekProtection, TokenError> {
        let label = Self::kek_label(version);
        let _search = read(&self.inner.objects);
        let handle = self.find_kek(&label)?;
        let attributes = self.attributes(
            handle,
            &[
                AttributeType::Sensitive,
                AttributeType::AlwaysSensitive,
                AttributeType::Extractable,
                AttributeType::NeverExtractable,
            ],
        )?;
        let mut protection = KekProtection {
            sensitive: false,
            always_sensitive: false,
            extractable: true,
            never_extractable: false,
            value_readable: true,
        };
        for attribute in attributes {
            match attribute {
                Attribute::Sensitive(value) => protection.sensitive = value,
                Attribute::AlwaysSensitive(value) => protection.always_sensitive = value,
                Attribute::Extractable(value) => protection.extractable = value,
                Attribute::NeverExtractable(value) => protection.never_extractable = value,
                _ => {}
            }
        }
        let value = self
            .inner
            .with_session(|session| session.get_attribute_info(handle, &[AttributeType::Value]))
            .map_err(|error| pkcs11_error("C_GetAttributeValue", &error))?;
        protection.value_readable = matches!(value.as_slice(), [AttributeInfo::Available(_)]);
        Ok(protection)
    }

    /// **For tests only.** Creates KEK `version` from known bytes, so a test can show that the token and a software KEK
    /// of the same bytes write and read the same envelopes. A KEK whose bytes were ever in process memory defeats the
    /// purpose of the token: real KEKs come from [`Self::generate_kek`]. Only built with the `test-kek-import` feature.
    #[cfg(feature = "test-kek-import")]
    pub fn import_kek_for_tests(
        &self,
        version: KeyVersion,
        key: &[u8; KEY_LEN],
    ) -> Result<Kek, TokenError> {
        use zeroize::Zeroize;

        let label = Self::kek_label(version);
        let _change = write(&self.inner.objects);
        if !self.objects_labelled(&label)?.is_empty() {
            return Err(TokenError::KeyExists { label });
        }
        let mut template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Value(key.to_vec()),
        ];
        let created = self
            .inner
            .with_session(|session| session.create_object(&template));
        for attribute in &mut template {
            if let Attribute::Value(value) = attribute {
                value.zeroize();
            }
        }
        let handle = created.map_err(|error| pkcs11_error("C_CreateObject", &error))?;
        self.check_suitable(handle, &label)?;
        Ok(self.token_kek(version, handle, label))
    }

    fn token_kek(&self, version: KeyVersion, handle: ObjectHandle, label: String) -> Kek {
        Kek::from_token(
            version,
            Arc::new(TokenKey::new(Arc::clone(&self.inner), handle, label)),
        )
    }

    // This and `find_kek` search the token, so their callers hold `objects`; they do not take it themselves because
    // generation and destruction search while already holding it exclusively.
    fn objects_labelled(&self, label: &str) -> Result<Vec<ObjectHandle>, TokenError> {
        let template = [Attribute::Label(label.as_bytes().to_vec())];
        self.inner
            .with_session(|session| session.find_objects(&template))
            .map_err(|error| pkcs11_error("C_FindObjects", &error))
    }

    fn find_kek(&self, label: &str) -> Result<ObjectHandle, TokenError> {
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let found = self
            .inner
            .with_session(|session| session.find_objects(&template))
            .map_err(|error| pkcs11_error("C_FindObjects", &error))?;
        match found.as_slice() {
            [] => Err(TokenError::KeyNotFound {
                label: label.to_owned(),
            }),
            [handle] => Ok(*handle),
            more => Err(TokenError::Ambiguous {
                what: "keys",
                label: label.to_owned(),
                count: more.len(),
            }),
        }
    }

    /// Refuses a key that could leak (readable or exportable) or that would not work as an AES-256-GCM KEK, so that a
    /// mistakenly created object is reported when it is looked up rather than trusted.
    fn check_suitable(&self, handle: ObjectHandle, label: &str) -> Result<(), TokenError> {
        let attributes = self.attributes(
            handle,
            &[
                AttributeType::KeyType,
                AttributeType::ValueLen,
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::Encrypt,
                AttributeType::Decrypt,
            ],
        )?;
        let (mut aes, mut len, mut sensitive, mut extractable, mut encrypt, mut decrypt) =
            (false, None, false, true, false, false);
        for attribute in attributes {
            match attribute {
                Attribute::KeyType(key_type) => aes = key_type == KeyType::AES,
                Attribute::ValueLen(value_len) => len = usize::try_from(*value_len).ok(),
                Attribute::Sensitive(value) => sensitive = value,
                Attribute::Extractable(value) => extractable = value,
                Attribute::Encrypt(value) => encrypt = value,
                Attribute::Decrypt(value) => decrypt = value,
                _ => {}
            }
        }
        let problem = if !aes {
            "it is not an AES key"
        } else if len != Some(KEY_LEN) {
            "it is not 256 bits long"
        } else if !sensitive {
            "it is not sensitive, so the token would reveal its value"
        } else if extractable {
            "it is extractable, so the token would export it"
        } else if !(encrypt && decrypt) {
            "it may not both encrypt and decrypt"
        } else {
            return Ok(());
        };
        Err(TokenError::Unsuitable {
            label: label.to_owned(),
            problem,
        })
    }

    fn attributes(
        &self,
        handle: ObjectHandle,
        types: &[AttributeType],
    ) -> Result<Vec<Attribute>, TokenError> {
        self.inner
            .with_session(|session| session.get_attributes(handle, types))
            .map_err(|error| pkcs11_error("C_GetAttributeValue", &error))
    }

    fn destroy(&self, handle: ObjectHandle) -> Result<(), TokenError> {
        self.inner
            .with_session(|session| session.destroy_object(handle))
            .map_err(|error| pkcs11_error("C_DestroyObject", &error))
    }
}

impl fmt::Debug for Pkcs11Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Token")
            .field("module", &self.inner.module_path)
            .field("token", &self.inner.token_label)
            .field("slot", &self.inner.slot.id())
            .finish()
    }
}

// Poisoning is ignored: the pool behind the mutexes changes in single steps (a push, a pop) and the RwLock guards no
// data, so a panic elsewhere cannot leave either inconsistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read(lock: &RwLock<()>) -> RwLockReadGuard<'_, ()> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write(lock: &RwLock<()>) -> RwLockWriteGuard<'_, ()> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

fn ulong(value: usize) -> Result<Ulong, TokenError> {
    Ulong::try_from(value).map_err(|error| pkcs11_error("attribute encoding", &error))
}

/// Names the failing function and return value (e.g. `C_Decrypt: KeyHandleInvalid`) rather than the library's prose.
fn describe(error: &Error) -> String {
    match error {
        Error::Pkcs11(rv, function) => format!("C_{function:?}: {rv:?}"),
        other => other.to_string(),
    }
}

fn pkcs11_error(operation: &'static str, error: &Error) -> TokenError {
    TokenError::Pkcs11 {
        operation,
        detail: describe(error),
    }
}
