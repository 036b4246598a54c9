//! Key-encryption keys: wrap DEKs and system keys for storage.
//!
//! A KEK is either derived in software from the master key ([`crate::MasterKey::kek`]) or held inside a PKCS#11 token
//! ([`crate::Pkcs11Token::kek`]). Both write the same envelope, so a wrapped key opens with either kind of the same key.

use std::fmt;
use std::sync::Arc;

use crate::aead;
use crate::audit::{AuditChainKey, AuditSigningKey};
use crate::backup::BackupKey;
use crate::blind_index::BlindIndexKey;
use crate::dek::Dek;
use crate::encoding::length_prefixed;
use crate::envelope::{Header, WrappedKey};
use crate::error::CryptoError;
use crate::master_key::KeyVersion;
use crate::pkcs11::TokenKey;
use crate::secret::KeyBytes;
use crate::suite::CipherSuite;

/// A versioned KEK, derived by [`crate::MasterKey::kek`] or [`crate::MasterKey::kek_with_suite`], or found on a token by
/// [`crate::Pkcs11Token::kek`]. It wraps under its suite and unwraps under whichever suite a wrapped key's header names.
/// `Debug` shows only the version and suite.
///
/// A software KEK cannot fail to wrap. A token KEK can (the token may be gone, or the key retired), so code that may hold
/// one wraps with the `try_wrap*` methods; the infallible `wrap*` methods panic on a token failure.
pub struct Kek {
    version: KeyVersion,
    suite: CipherSuite,
    key: KekMaterial,
}

/// Where the key is: its bytes in this process, or a handle to an object that never leaves the token.
enum KekMaterial {
    Software(KeyBytes),
    Token(Arc<TokenKey>),
}

/// What kind of key a wrapped key is, authenticated with it so a wrapped blind-index key cannot be unwrapped as a DEK
/// (or the reverse) even if a caller reuses a context string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Dek,
    BlindIndex,
    AuditChain,
    AuditSigning,
    /// The key backup files are sealed under, when no master key exists to derive it from (a token deployment).
    Backup,
}

impl KeyKind {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Dek => b"dek",
            Self::BlindIndex => b"blind-index-key",
            Self::AuditChain => b"audit-chain-key",
            Self::AuditSigning => b"audit-signing-key",
            Self::Backup => b"backup-key",
        }
    }
}

impl Kek {
    pub(crate) fn from_parts(version: KeyVersion, suite: CipherSuite, key: KeyBytes) -> Self {
        Self {
            version,
            suite,
            key: KekMaterial::Software(key),
        }
    }

    /// Tokens wrap with AES-256-GCM (CKM_AES_GCM), the mechanism PKCS#11 tokens offer.
    pub(crate) fn from_token(version: KeyVersion, key: Arc<TokenKey>) -> Self {
        Self {
            version,
            suite: CipherSuite::Aes256Gcm,
            key: KekMaterial::Token(key),
        }
    }

    #[cfg(test)]
    pub(crate) fn key_array(&self) -> &[u8; 32] {
        match &self.key {
            KekMaterial::Software(key) => key.as_array(),
            KekMaterial::Token(_) => panic!("a token KEK has no bytes in this process"),
        }
    }

    pub fn version(&self) -> KeyVersion {
        self.version
    }

    /// The suite new wraps are made with; unwrapping follows the wrapped key's header instead.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// Wraps a DEK with this KEK's suite (AES-256-GCM unless made by [`crate::MasterKey::kek_with_suite`]). `context`
    /// names the key's owner (e.g. `b"client:<uuid>"`) and is authenticated, so a wrapped key moved to another owner
    /// fails to unwrap.
    ///
    /// # Panics
    /// If this is a token KEK and the token fails; use [`Self::try_wrap`] where that can happen.
    pub fn wrap(&self, dek: &Dek, context: &[u8]) -> WrappedKey {
        infallible(self.try_wrap(dek, context))
    }

    /// [`Self::wrap`], reporting a token failure as [`CryptoError::Token`] instead of panicking.
    pub fn try_wrap(&self, dek: &Dek, context: &[u8]) -> Result<WrappedKey, CryptoError> {
        self.wrap_bytes(KeyKind::Dek, dek.secret(), context)
    }

    pub fn unwrap_key(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<Dek, CryptoError> {
        self.unwrap_bytes(KeyKind::Dek, wrapped, context)
            .map(Dek::from_secret)
    }

    /// Wraps a blind-index key, typically with context `b"system:blind-index"`.
    ///
    /// # Panics
    /// If this is a token KEK and the token fails; use [`Self::try_wrap_blind_index_key`] where that can happen.
    pub fn wrap_blind_index_key(&self, key: &BlindIndexKey, context: &[u8]) -> WrappedKey {
        infallible(self.try_wrap_blind_index_key(key, context))
    }

    pub fn try_wrap_blind_index_key(
        &self,
        key: &BlindIndexKey,
        context: &[u8],
    ) -> Result<WrappedKey, CryptoError> {
        self.wrap_bytes(KeyKind::BlindIndex, key.secret(), context)
    }

    pub fn unwrap_blind_index_key(
        &self,
        wrapped: &WrappedKey,
        context: &[u8],
    ) -> Result<BlindIndexKey, CryptoError> {
        self.unwrap_bytes(KeyKind::BlindIndex, wrapped, context)
            .map(BlindIndexKey::from_secret)
    }

    /// # Panics
    /// If this is a token KEK and the token fails; use [`Self::try_wrap_audit_chain_key`] where that can happen.
    pub fn wrap_audit_chain_key(&self, key: &AuditChainKey, context: &[u8]) -> WrappedKey {
        infallible(self.try_wrap_audit_chain_key(key, context))
    }

    pub fn try_wrap_audit_chain_key(
        &self,
        key: &AuditChainKey,
        context: &[u8],
    ) -> Result<WrappedKey, CryptoError> {
        self.wrap_bytes(KeyKind::AuditChain, key.secret(), context)
    }

    pub fn unwrap_audit_chain_key(
        &self,
        wrapped: &WrappedKey,
        context: &[u8],
    ) -> Result<AuditChainKey, CryptoError> {
        self.unwrap_bytes(KeyKind::AuditChain, wrapped, context)
            .map(AuditChainKey::from_secret)
    }

    /// # Panics
    /// If this is a token KEK and the token fails; use [`Self::try_wrap_audit_signing_key`] where that can happen.
    pub fn wrap_audit_signing_key(&self, key: &AuditSigningKey, context: &[u8]) -> WrappedKey {
        infallible(self.try_wrap_audit_signing_key(key, context))
    }

    pub fn try_wrap_audit_signing_key(
        &self,
        key: &AuditSigningKey,
        context: &[u8],
    ) -> Result<WrappedKey, CryptoError> {
        self.wrap_bytes(KeyKind::AuditSigning, key.secret(), context)
    }

    pub fn unwrap_audit_signing_key(
        &self,
        wrapped: &WrappedKey,
        context: &[u8],
    ) -> Result<AuditSigningKey, CryptoError> {
        self.unwrap_bytes(KeyKind::AuditSigning, wrapped, context)
            .map(AuditSigningKey::from_secret)
    }

    /// Wraps a backup key, for a deployment whose backup key is stored rather than derived (see
    /// [`crate::BackupKey::generate`]).
    pub fn try_wrap_backup_key(
        &self,
        key: &BackupKey,
        context: &[u8],
    ) -> Result<WrappedKey, CryptoError> {
        self.wrap_bytes(KeyKind::Backup, key.secret(), context)
    }

    pub fn unwrap_backup_key(
        &self,
        wrapped: &WrappedKey,
        context: &[u8],
    ) -> Result<BackupKey, CryptoError> {
        self.unwrap_bytes(KeyKind::Backup, wrapped, context)
            .map(BackupKey::from_secret)
    }

    fn wrap_bytes(
        &self,
        kind: KeyKind,
        key: &KeyBytes,
        context: &[u8],
    ) -> Result<WrappedKey, CryptoError> {
        let header = Header {
            suite: self.suite,
            key_version: self.version,
        };
        let aad = wrap_aad(kind, context);
        let envelope = match &self.key {
            KekMaterial::Software(kek) => aead::seal(kek, header, key.as_array(), &aad),
            KekMaterial::Token(kek) => kek.seal(header, key.as_array(), &aad)?,
        };
        Ok(WrappedKey::from_envelope(envelope))
    }

    /// The suite is read from the wrapped key's header, so a KEK unwraps what any KEK of its version wrapped, whichever
    /// suite was configured then: switching a deployment's suite does not strand the keys wrapped before.
    /// Unwraps `wrapped` (a key of `kind` for `context`) with this KEK and wraps it again under `to`, for a KEK
    /// rotation: the key itself never leaves this crate, and a key that does not open here is an error, not rewrapped.
    pub fn rewrap(
        &self,
        kind: KeyKind,
        wrapped: &WrappedKey,
        context: &[u8],
        to: &Kek,
    ) -> Result<WrappedKey, CryptoError> {
        let key = self.unwrap_bytes(kind, wrapped, context)?;
        to.wrap_bytes(kind, &key, context)
    }

    fn unwrap_bytes(
        &self,
        kind: KeyKind,
        wrapped: &WrappedKey,
        context: &[u8],
    ) -> Result<KeyBytes, CryptoError> {
        let aad = wrap_aad(kind, context);
        let plaintext = match &self.key {
            KekMaterial::Software(kek) => aead::open(kek, wrapped.envelope(), &aad)?,
            KekMaterial::Token(kek) => kek.open(wrapped.envelope(), &aad)?,
        };
        KeyBytes::from_slice(&plaintext)
            .ok_or(CryptoError::Malformed("wrapped key is not 32 bytes long"))
    }
}

/// Keeps the signatures other crates call; only a token KEK can reach the panic, and code holding one uses `try_wrap*`.
fn infallible(wrapped: Result<WrappedKey, CryptoError>) -> WrappedKey {
    match wrapped {
        Ok(wrapped) => wrapped,
        Err(error) => panic!("wrapping a key failed: {error}"),
    }
}

fn wrap_aad(kind: KeyKind, context: &[u8]) -> Vec<u8> {
    length_prefixed(&[b"zhangfang/wrap", kind.label(), context])
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek")
            .field("version", &self.version.0)
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Aad;
    use crate::master_key::MasterKey;

    const CLIENT_A: &[u8] = b"client:7d0c2a4e-0000-4000-8000-00000000000a";
    const CLIENT_B: &[u8] = b"client:7d0c2a4e-0000-4000-8000-00000000000b";

    fn kek(version: u32) -> Kek {
        MasterKey::from_bytes([42; 32]).kek(KeyVersion(version))
    }

    fn sm4_kek(version: u32) -> Kek {
        MasterKey::from_bytes([42; 32]).kek_with_suite(KeyVersion(version), CipherSuite::Sm4Gcm)
    }

    #[test]
    fn wrapped_dek_unwraps_to_the_same_key() {
        let kek = kek(1);
        let dek = Dek::generate();
        let wrapped = kek.wrap(&dek, CLIENT_A);
        assert_eq!(wrapped.kek_version(), KeyVersion(1));
        assert!(!wrapped
            .as_bytes()
            .windows(32)
            .any(|w| w == dek.secret().as_array()));
        let unwrapped = kek.unwrap_key(&wrapped, CLIENT_A).unwrap();
        assert_eq!(unwrapped.secret().as_array(), dek.secret().as_array());

        let aad = Aad::new("clients", "a", "name");
        let sealed = dek.seal(KeyVersion(1), b"value", &aad);
        assert_eq!(unwrapped.open(&sealed, &aad).unwrap().as_slice(), b"value");
    }

    #[test]
    fn a_wrapped_backup_key_unwraps_only_as_a_backup_key() {
        let kek = kek(1);
        let key = BackupKey::generate();
        let wrapped = kek.try_wrap_backup_key(&key, b"system:backup/v1").unwrap();
        assert_eq!(
            kek.unwrap_backup_key(&wrapped, b"system:backup/v1")
                .unwrap()
                .id(),
            key.id()
        );
        assert!(kek.unwrap_key(&wrapped, b"system:backup/v1").is_err());
        assert!(kek.unwrap_backup_key(&wrapped, b"system:other").is_err());
        assert_ne!(BackupKey::generate().id(), key.id());
    }

    #[test]
    fn flipping_any_byte_of_a_wrapped_key_fails_to_unwrap() {
        for kek in [kek(1), sm4_kek(1)] {
            let wrapped = kek.wrap(&Dek::generate(), CLIENT_A);
            let bytes = wrapped.as_bytes().to_vec();
            for at in 0..bytes.len() {
                let mut tampered = bytes.clone();
                tampered[at] ^= 0x01;
                // A damaged header may already be refused when the bytes are read back.
                if let Ok(tampered) = WrappedKey::from_bytes(tampered) {
                    assert!(
                        kek.unwrap_key(&tampered, CLIENT_A).is_err(),
                        "byte {at} of {} flipped still unwrapped",
                        bytes.len()
                    );
                }
            }
        }
    }

    #[test]
    fn another_context_fails_to_unwrap() {
        let kek = kek(1);
        let wrapped = kek.wrap(&Dek::generate(), CLIENT_A);
        assert!(matches!(
            kek.unwrap_key(&wrapped, CLIENT_B),
            Err(CryptoError::Authentication)
        ));
        assert!(matches!(
            kek.unwrap_key(&wrapped, b""),
            Err(CryptoError::Authentication)
        ));
    }

    #[test]
    fn another_kek_version_or_master_fails_to_unwrap() {
        let wrapped = kek(1).wrap(&Dek::generate(), CLIENT_A);
        assert!(matches!(
            kek(2).unwrap_key(&wrapped, CLIENT_A),
            Err(CryptoError::Authentication)
        ));
        let other_master = MasterKey::from_bytes([43; 32]).kek(KeyVersion(1));
        assert!(matches!(
            other_master.unwrap_key(&wrapped, CLIENT_A),
            Err(CryptoError::Authentication)
        ));
    }

    #[test]
    fn key_kinds_do_not_cross() {
        let kek = kek(1);
        let context = b"system:shared-context";
        let wrapped_index_key = kek.wrap_blind_index_key(&BlindIndexKey::generate(), context);
        assert!(matches!(
            kek.unwrap_key(&wrapped_index_key, context),
            Err(CryptoError::Authentication)
        ));
        let wrapped_dek = kek.wrap(&Dek::generate(), context);
        assert!(matches!(
            kek.unwrap_blind_index_key(&wrapped_dek, context),
            Err(CryptoError::Authentication)
        ));
    }

    #[test]
    fn blind_index_key_survives_wrapping() {
        let kek = kek(5);
        let key = BlindIndexKey::generate();
        let wrapped = kek.wrap_blind_index_key(&key, b"system:blind-index");
        let reparsed = WrappedKey::from_bytes(wrapped.into_bytes()).unwrap();
        let unwrapped = kek
            .unwrap_blind_index_key(&reparsed, b"system:blind-index")
            .unwrap();
        assert_eq!(unwrapped.index("d", b"v"), key.index("d", b"v"));
    }

    #[test]
    fn kek_wraps_with_aes_unless_given_a_suite() {
        assert_eq!(kek(1).suite(), CipherSuite::Aes256Gcm);
        assert_eq!(
            kek(1).wrap(&Dek::generate(), CLIENT_A).suite(),
            CipherSuite::Aes256Gcm
        );
        assert_eq!(sm4_kek(1).suite(), CipherSuite::Sm4Gcm);
    }

    #[test]
    fn a_kek_of_either_suite_wraps_and_unwraps_a_dek_and_the_header_records_the_suite() {
        for suite in CipherSuite::ALL {
            let kek = MasterKey::from_bytes([42; 32]).kek_with_suite(KeyVersion(4), suite);
            let dek = Dek::generate();
            let wrapped = kek.wrap(&dek, CLIENT_A);
            assert_eq!(wrapped.suite(), suite);
            assert_eq!(wrapped.as_bytes()[1], suite.id());
            assert_eq!(wrapped.kek_version(), KeyVersion(4));
            assert!(!wrapped
                .as_bytes()
                .windows(32)
                .any(|w| w == dek.secret().as_array()));

            let reparsed = WrappedKey::from_bytes(wrapped.into_bytes()).unwrap();
            let unwrapped = kek.unwrap_key(&reparsed, CLIENT_A).unwrap();
            assert_eq!(unwrapped.secret().as_array(), dek.secret().as_array());
            assert!(matches!(
                kek.unwrap_key(&reparsed, CLIENT_B),
                Err(CryptoError::Authentication)
            ));
        }
    }

    /// A deployment that changes its configured suite derives its KEK with the new suite and must still unwrap every
    /// key wrapped before: unwrapping follows the wrapped key's header, not the KEK's suite.
    #[test]
    fn a_kek_unwraps_keys_its_version_wrapped_under_the_other_suite() {
        let dek = Dek::generate();
        let wrapped_sm4 = sm4_kek(1).wrap(&dek, CLIENT_A);
        let wrapped_aes = kek(1).wrap(&dek, CLIENT_A);
        assert_eq!(
            kek(1)
                .unwrap_key(&wrapped_sm4, CLIENT_A)
                .unwrap()
                .secret()
                .as_array(),
            dek.secret().as_array()
        );
        assert_eq!(
            sm4_kek(1)
                .unwrap_key(&wrapped_aes, CLIENT_A)
                .unwrap()
                .secret()
                .as_array(),
            dek.secret().as_array()
        );
        assert!(matches!(
            sm4_kek(2).unwrap_key(&wrapped_sm4, CLIENT_A),
            Err(CryptoError::Authentication)
        ));
    }

    #[test]
    fn a_wrapped_key_relabelled_as_the_other_suite_fails_to_unwrap() {
        for (kek, other) in [
            (kek(1), CipherSuite::Sm4Gcm),
            (sm4_kek(1), CipherSuite::Aes256Gcm),
        ] {
            let mut bytes = kek.wrap(&Dek::generate(), CLIENT_A).into_bytes();
            bytes[1] = other.id();
            let relabelled = WrappedKey::from_bytes(bytes).unwrap();
            assert_eq!(relabelled.suite(), other);
            assert!(matches!(
                kek.unwrap_key(&relabelled, CLIENT_A),
                Err(CryptoError::Authentication)
            ));
        }
    }

    #[test]
    fn every_key_kind_survives_wrapping_under_sm4_and_kinds_do_not_cross() {
        let kek = sm4_kek(1);
        let context = b"system:shared-context";
        let index_key = BlindIndexKey::generate();
        let wrapped_index_key = kek.wrap_blind_index_key(&index_key, context);
        assert_eq!(wrapped_index_key.suite(), CipherSuite::Sm4Gcm);
        let restored = kek
            .unwrap_blind_index_key(&wrapped_index_key, context)
            .unwrap();
        assert_eq!(
            restored.index_with(CipherSuite::Sm4Gcm, "d", b"v"),
            index_key.index_with(CipherSuite::Sm4Gcm, "d", b"v")
        );
        assert!(matches!(
            kek.unwrap_key(&wrapped_index_key, context),
            Err(CryptoError::Authentication)
        ));

        let chain_key = AuditChainKey::generate();
        let wrapped_chain_key = kek.wrap_audit_chain_key(&chain_key, context);
        assert_eq!(wrapped_chain_key.suite(), CipherSuite::Sm4Gcm);
        assert!(kek
            .unwrap_audit_chain_key(&wrapped_chain_key, context)
            .is_ok());
        assert!(matches!(
            kek.unwrap_audit_signing_key(&wrapped_chain_key, context),
            Err(CryptoError::Authentication)
        ));

        let signing_key = AuditSigningKey::generate();
        let wrapped_signing_key = kek.wrap_audit_signing_key(&signing_key, context);
        assert_eq!(wrapped_signing_key.suite(), CipherSuite::Sm4Gcm);
        assert!(kek
            .unwrap_audit_signing_key(&wrapped_signing_key, context)
            .is_ok());
    }

    #[test]
    fn debug_shows_only_the_version_and_suite() {
        let kek = kek(3);
        let shown = format!("{kek:?} {kek:#?}");
        assert_eq!(
            format!("{kek:?}"),
            "Kek { version: 3, suite: Aes256Gcm, .. }"
        );
        assert_eq!(
            format!("{:?}", sm4_kek(3)),
            "Kek { version: 3, suite: Sm4Gcm, .. }"
        );
        assert!(!shown.contains(&hex::encode(kek.key_array())));
        assert!(!shown.contains(&format!("{:?}", kek.key_array())));
    }
}
