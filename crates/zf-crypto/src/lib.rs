//! The encryption boundary of Zhangfang.
//!
//! Sensitive fields are sealed under a per-client data-encryption key ([`Dek`]); DEKs are wrapped by a versioned
//! key-encryption key ([`Kek`]), either derived from the [`MasterKey`] or held inside a PKCS#11 token ([`Pkcs11Token`],
//! e.g. a hardware security module), where it is generated sensitive and non-extractable and wraps and unwraps without
//! ever entering this process. Both kinds write the same envelope. Every ciphertext is bound to the table, row and field
//! it lives in ([`Aad`]), so a value copied elsewhere fails to decrypt instead of yielding the wrong plaintext.
//! Exact-match search on encrypted fields goes through keyed blind indexes ([`BlindIndexKey`]). Backup files are sealed
//! in authenticated chunks under a [`BackupKey`] of their own, derived from the master key — or, where a token holds
//! the KEK and no master key exists, generated at random and stored wrapped under the KEK. Every key provider resolves to
//! a [`KekSource`]; a master key may also come from a passphrase (argon2id, [`passphrase`]).
//!
//! Two cipher suites ([`CipherSuite`]) are implemented, chosen by a deployment for new data: AES-256-GCM with
//! HMAC-SHA256 blind indexes (the default), and the Chinese national suite, SM4-GCM with HMAC-SM3 blind indexes. Both
//! use the same 32-byte keys, so generation, wrapping and storage do not depend on the suite.
//!
//! Every stored ciphertext and wrapped key carries a format version, a cipher-suite id and a key version, so values are
//! opened under the suite they were sealed with whatever is configured now, and KEK rotation and hardware key providers
//! can be added without rewriting stored data.
//!
//! Key material lives on the heap, is zeroized on drop, and is never printed by `Debug`; so is a token's PIN
//! ([`TokenPin`]). A software KEK cannot fail; a token KEK can, so code that may hold one wraps with the `try_wrap*`
//! methods, and every token failure is a [`CryptoError::Token`].

mod aead;
pub mod audit;
pub mod backup;
pub mod blind_index;
pub mod dek;
mod encoding;
pub mod envelope;
pub mod error;
pub mod kek;
pub mod kek_source;
mod key_file;
mod mac;
pub mod master_key;
pub mod passphrase;
pub mod pkcs11;
mod secret;
pub mod suite;
pub mod totp;
pub mod util;
pub mod webauthn;

pub use audit::{verify_audit_signature, AuditChainKey, AuditSigningKey};
pub use backup::{BackupKey, BackupKeyId, ChunkOpener, ChunkSealer};
pub use blind_index::{BlindIndex, BlindIndexKey};
pub use dek::{Dek, DekRing};
pub use envelope::{Aad, Sealed, WrappedKey};
pub use error::{BackupStreamError, CryptoError, KeyFileError, TokenError, UnknownCipherSuite};
pub use kek::{Kek, KeyKind};
pub use kek_source::KekSource;
pub use master_key::{KeyVersion, MasterKey};
pub use passphrase::{PassphraseError, PassphraseParams};
pub use pkcs11::{KekProtection, Pkcs11Token, TokenPin};
pub use suite::CipherSuite;
pub use totp::{TotpParams, TotpSecret, TotpSecretError};
pub use util::{constant_time_eq, random_bytes};
