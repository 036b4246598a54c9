//! The master key: the one long-lived secret from which every key-encryption key is derived.

use std::fmt;

use hmac::Mac;

use crate::kek::Kek;
use crate::mac;
use crate::secret::KeyBytes;

/// Version of a KEK or DEK, stored in every envelope so rotation knows which key opens what.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyVersion(pub u32);

/// 32 bytes of master secret. Loaded from the key file (see [`MasterKey::load_or_create`]) or a future key provider.
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

    pub(crate) fn from_secret(key: KeyBytes) -> Self {
        Self { key }
    }

    pub(crate) fn as_array(&self) -> &[u8; 32] {
        self.key.as_array()
    }

    /// The KEK of `version`: HMAC-SHA256(master key, "zhangfang/kek/v{version}").
    ///
    /// Until a keyring exists there is one master secret and KEKs are derived from it rather than stored: rotating the
    /// KEK means re-wrapping DEKs under the next version, with nothing new to back up. HMAC-SHA256 is a PRF, so each
    /// version's KEK is independent of the others and reveals nothing about the master key; a full HKDF adds nothing
    /// when the input is already a uniformly random 32-byte key and only one output block is needed.
    pub fn kek(&self, version: KeyVersion) -> Kek {
        let mut derivation = mac::keyed(self.key.as_array());
        derivation.update(format!("zhangfang/kek/v{}", version.0).as_bytes());
        let mut key = KeyBytes::zeroed();
        mac::finalize_into(derivation, key.as_mut_array());
        Kek::from_parts(version, key)
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
}
