//! The master key: the one long-lived secret from which every key-encryption key is derived.

use std::fmt;

use hmac::Mac;

use crate::kek::Kek;
use crate::mac;
use crate::secret::KeyBytes;
use crate::suite::CipherSuite;

/// Version of a KEK or DEK, stored in every envelope so rotation knows which key opens what.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyVersion(pub u32);

/// 32 bytes of master secret: from the key file ([`MasterKey::load_or_create`]), an environment variable
/// ([`MasterKey::from_env_value`]) or a passphrase ([`MasterKey::from_passphrase_file`]).
pub struct MasterKey {
    key: KeyBytes,
}

impl MasterKey {
    pub fn generate() -> Self {
        Self {
            key: KeyBytes::random(),
        }
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self {
            key: KeyBytes::from_array(bytes),
        }
    }

    /// A second handle on the same secret, for a keyring that derives later KEK versions while
    /// the node runs. Zeroized on drop like the original.
    pub fn duplicate(&self) -> Self {
        Self {
            key: KeyBytes::from_array(*self.key.as_array()),
        }
    }

    pub(crate) fn from_secret(key: KeyBytes) -> Self {
        Self { key }
    }

    pub(crate) fn as_array(&self) -> &[u8; 32] {
        self.key.as_array()
    }

    /// The KEK of `version`, wrapping with AES-256-GCM: HMAC-SHA256(master key, "zhangfang/kek/v{version}").
    ///
    /// Until a keyring exists there is one master secret and KEKs are derived from it rather than stored: rotating the
    /// KEK means re-wrapping DEKs under the next version, with nothing new to back up. HMAC-SHA256 is a PRF, so each
    /// version's KEK is independent of the others and reveals nothing about the master key; a full HKDF adds nothing
    /// when the input is already a uniformly random 32-byte key and only one output block is needed.
    pub fn kek(&self, version: KeyVersion) -> Kek {
        self.kek_with_suite(version, CipherSuite::Aes256Gcm)
    }

    /// The KEK of `version`, wrapping with `suite`, the deployment's configured suite.
    ///
    /// The key is derived exactly as in [`MasterKey::kek`], independent of `suite`: the suite only chooses how new keys
    /// are wrapped, and a version's KEK must open keys wrapped under either suite (the wrapped key's header says
    /// which), so that changing the configured suite never strands keys wrapped before the change.
    pub fn kek_with_suite(&self, version: KeyVersion, suite: CipherSuite) -> Kek {
        let mut derivation = mac::keyed(self.key.as_array());
        derivation.update(format!("zhangfang/kek/v{}", version.0).as_bytes());
        let mut key = KeyBytes::zeroed();
        mac::finalize_into(derivation, key.as_mut_array());
        Kek::from_parts(version, suite, key)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_key_bytes() {
        let master = MasterKey::generate();
        let shown = format!("{master:?} {master:#?}");
        assert_eq!(format!("{master:?}"), "MasterKey(..)");
        assert!(!shown.contains(&hex::encode(master.as_array())));
        assert!(!shown.contains(&format!("{:?}", master.as_array())));
    }

    #[test]
    fn kek_derivation_is_deterministic_and_separates_versions_and_masters() {
        let master = MasterKey::from_bytes([7; 32]);
        let v1 = master.kek(KeyVersion(1));
        assert_eq!(v1.version(), KeyVersion(1));
        assert_eq!(v1.key_array(), master.kek(KeyVersion(1)).key_array());
        assert_ne!(v1.key_array(), master.kek(KeyVersion(2)).key_array());
        assert_ne!(
            v1.key_array(),
            MasterKey::from_bytes([8; 32])
                .kek(KeyVersion(1))
                .key_array()
        );
        assert_ne!(v1.key_array(), master.as_array());
    }

    #[test]
    fn kek_is_hmac_of_the_versioned_label() {
        let master = MasterKey::from_bytes([7; 32]);
        let mut expected = mac::keyed(&[7; 32]);
        expected.update(b"zhangfang/kek/v12");
        let mut out = [0u8; 32];
        mac::finalize_into(expected, &mut out);
        assert_eq!(master.kek(KeyVersion(12)).key_array(), &out);
    }

    #[test]
    fn the_suite_chooses_how_a_kek_wraps_not_which_key_it_is() {
        let master = MasterKey::from_bytes([7; 32]);
        let aes = master.kek(KeyVersion(5));
        let sm4 = master.kek_with_suite(KeyVersion(5), CipherSuite::Sm4Gcm);
        assert_eq!(aes.suite(), CipherSuite::Aes256Gcm);
        assert_eq!(sm4.suite(), CipherSuite::Sm4Gcm);
        assert_eq!(sm4.version(), KeyVersion(5));
        assert_eq!(aes.key_array(), sm4.key_array());
        assert_eq!(
            master
                .kek_with_suite(KeyVersion(5), CipherSuite::Aes256Gcm)
                .key_array(),
            aes.key_array()
        );
    }
}
