//! Where a deployment's KEKs come from: derived from a master key in this process, or held inside a PKCS#11 token.
//!
//! Every key provider (key file, environment variable, passphrase, token) resolves to one [`KekSource`]; the rest of
//! the system asks it for the KEK of a version and never needs to know which provider it was.

use std::fmt;

use crate::backup::BackupKey;
use crate::error::TokenError;
use crate::kek::Kek;
use crate::master_key::{KeyVersion, MasterKey};
use crate::pkcs11::Pkcs11Token;
use crate::suite::CipherSuite;

/// The source of a deployment's KEKs. `Debug` shows which kind it is, never key material or a PIN.
pub enum KekSource {
    /// KEKs are derived from this master key (key file, environment variable or passphrase).
    Master(MasterKey),
    /// KEKs are objects inside this token and never enter the process.
    Token(Pkcs11Token),
}

impl KekSource {
    /// The KEK of `version`. A master key derives every version; a token must hold it (generated at initialisation or
    /// at a rotation by [`Self::provision`]). A token KEK always wraps with AES-256-GCM, the mechanism tokens offer;
    /// `suite` chooses the suite of a derived KEK.
    pub fn kek(&self, version: KeyVersion, suite: CipherSuite) -> Result<Kek, TokenError> {
        match self {
            KekSource::Master(master) => Ok(master.kek_with_suite(version, suite)),
            KekSource::Token(token) => token.kek(version),
        }
    }

    /// Makes KEK `version` exist before anything is wrapped under it: a token generates it (or, if it already holds
    /// a usable key of that label, e.g. from a rotation stopped before it recorded the version, keeps that one); a
    /// master key has nothing to do, since it derives every version. Returns whether a key was generated.
    pub fn provision(&self, version: KeyVersion) -> Result<bool, TokenError> {
        match self {
            KekSource::Master(_) => Ok(false),
            KekSource::Token(token) => match token.generate_kek(version) {
                Ok(_) => Ok(true),
                Err(TokenError::KeyExists { .. }) => token.kek(version).map(|_| false),
                Err(other) => Err(other),
            },
        }
    }

    /// The backup key derived from the master key, byte-for-byte the one backups have always been sealed under; `None`
    /// for a token, whose backup key is generated and stored wrapped instead.
    pub fn derived_backup_key(&self) -> Option<BackupKey> {
        match self {
            KekSource::Master(master) => Some(master.backup_key()),
            KekSource::Token(_) => None,
        }
    }

    /// The token, if the KEKs live in one.
    pub fn token(&self) -> Option<&Pkcs11Token> {
        match self {
            KekSource::Master(_) => None,
            KekSource::Token(token) => Some(token),
        }
    }

    /// A second handle on the same source: the master key duplicated (zeroized on drop like the original), or the
    /// token shared (one login per process).
    pub fn duplicate(&self) -> Self {
        match self {
            KekSource::Master(master) => KekSource::Master(master.duplicate()),
            KekSource::Token(token) => KekSource::Token(token.clone()),
        }
    }
}

impl From<MasterKey> for KekSource {
    fn from(master: MasterKey) -> Self {
        KekSource::Master(master)
    }
}

impl From<Pkcs11Token> for KekSource {
    fn from(token: Pkcs11Token) -> Self {
        KekSource::Token(token)
    }
}

impl fmt::Debug for KekSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KekSource::Master(_) => f.write_str("KekSource::Master(..)"),
            KekSource::Token(token) => f.debug_tuple("KekSource::Token").field(token).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_master_source_derives_what_the_master_key_derives() {
        let master = MasterKey::from_bytes([3; 32]);
        let source = KekSource::from(master.duplicate());
        let kek = source.kek(KeyVersion(4), CipherSuite::Sm4Gcm).unwrap();
        assert_eq!(kek.version(), KeyVersion(4));
        assert_eq!(kek.suite(), CipherSuite::Sm4Gcm);
        assert_eq!(kek.key_array(), master.kek(KeyVersion(4)).key_array());
        assert!(!source.provision(KeyVersion(9)).unwrap());
        assert_eq!(
            source.derived_backup_key().unwrap().id(),
            master.backup_key().id()
        );
        assert!(source.token().is_none());
        assert_eq!(format!("{source:?}"), "KekSource::Master(..)");
    }
}
