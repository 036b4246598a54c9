//! Error types. Messages name what is wrong and where, and never include key material or file contents.

use std::path::PathBuf;

/// Failure to decrypt, unwrap or parse a ciphertext.
#[derive(thiserror::Error, Debug)]
pub enum CryptoError {
    #[error("ciphertext failed authentication (wrong key, or moved to another row or field)")]
    Authentication,
    #[error("malformed ciphertext envelope: {0}")]
    Malformed(&'static str),
    #[error("unsupported cipher suite {0}")]
    UnsupportedSuite(u8),
    #[error("no data key of version {0} is held for this value")]
    UnknownKeyVersion(u32),
    #[error("key-encryption key token: {0}")]
    Token(#[from] TokenError),
}

/// Failure of a PKCS#11 token holding key-encryption keys (see [`crate::Pkcs11Token`]). Messages name the module,
/// token or key label involved and never a PIN or key bytes.
#[derive(thiserror::Error, Debug)]
pub enum TokenError {
    #[error("cannot load PKCS#11 module {}: {detail}", path.display())]
    Module { path: PathBuf, detail: String },
    #[error("PKCS#11 module {} has no token labelled {label:?}", path.display())]
    TokenNotFound { path: PathBuf, label: String },
    #[error("token {label:?} is already open in this process; share the open Pkcs11Token (it is Clone) instead")]
    AlreadyOpen { label: String },
    #[error("token {label:?} refused the user PIN")]
    WrongPin { label: String },
    #[error("the user PIN of token {label:?} is locked")]
    PinLocked { label: String },
    #[error("the token holds no key labelled {label:?}")]
    KeyNotFound { label: String },
    #[error(
        "the token already holds an object labelled {label:?}; a KEK version is generated once"
    )]
    KeyExists { label: String },
    #[error("{count} {what} are labelled {label:?}; refusing to guess which one is meant")]
    Ambiguous {
        what: &'static str,
        label: String,
        count: usize,
    },
    #[error("key {label:?} is not usable as a KEK: {problem}")]
    Unsuitable {
        label: String,
        problem: &'static str,
    },
    #[error("PKCS#11 {operation} failed: {detail}")]
    Pkcs11 {
        operation: &'static str,
        detail: String,
    },
}

/// A cipher-suite name in configuration that names no suite this build knows; the message lists the accepted names.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("unknown cipher suite {0:?}; expected one of {accepted}", accepted = crate::suite::accepted_names())]
pub struct UnknownCipherSuite(pub(crate) String);

impl UnknownCipherSuite {
    /// The name as it was given.
    pub fn name(&self) -> &str {
        &self.0
    }
}

/// Failure to load or create the master key file.
#[derive(thiserror::Error, Debug)]
pub enum KeyFileError {
    #[error("cannot access master key file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "master key file {} has mode {mode:04o}; it must be readable by its owner only (chmod 600)",
        path.display()
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error(
        "master key file {} is malformed: expected a regular file holding one line \
         \"zhangfang-master-key v1 <64 hex digits>\"",
        path.display()
    )]
    Malformed { path: PathBuf },
    #[error("master key file {} does not exist", path.display())]
    NotFound { path: PathBuf },
    #[error("{variable} must hold the master key as 64 hex digits (or the key file's line \"zhangfang-master-key v1 <64 hex digits>\")")]
    Environment { variable: &'static str },
}

/// Why a sealed backup stream cannot be read. Each variant names a different thing done to the file, so an operator
/// knows whether it was cut short, edited, or made under another key.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum BackupStreamError {
    #[error("the file ends before its final chunk: it is truncated or was never finished")]
    Truncated,
    #[error("chunk {chunk} fails authentication: the file was altered or reordered, or it was sealed under another key")]
    Tampered { chunk: u64 },
    #[error("there are bytes after the final chunk")]
    TrailingData,
    #[error("malformed chunk: {0}")]
    Malformed(&'static str),
    #[error("cannot read the file: {0}")]
    Io(String),
}

impl BackupStreamError {
    /// The stream error inside an `io::Error` returned by [`crate::backup::ChunkOpener`]'s `Read`, if that is what it
    /// carries.
    pub fn in_io(error: &std::io::Error) -> Option<&BackupStreamError> {
        error.get_ref()?.downcast_ref::<BackupStreamError>()
    }
}
