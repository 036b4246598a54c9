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
}
