//! Blind indexes: keyed, deterministic digests that allow exact-match search on encrypted fields.

use std::fmt;

use hmac::digest::consts::U32;
use hmac::Mac;

use crate::encoding::length_prefix;
use crate::error::CryptoError;
use crate::mac;
use crate::secret::KeyBytes;
use crate::suite::CipherSuite;

/// The system key for blind indexes; persisted only wrapped (see [`crate::Kek::wrap_blind_index_key`]). Keyed, so that
/// someone holding the database but not this key cannot confirm a guessed ID number by hashing it.
pub struct BlindIndexKey {
    key: KeyBytes,
}

/// A 32-byte blind index value, stored beside the sealed field it indexes.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct BlindIndex([u8; 32]);

const PURPOSE: &[u8] = b"zhangfang/blind-index";

impl BlindIndexKey {
    pub fn generate() -> Self {
        Self {
            key: KeyBytes::random(),
        }
    }

    pub fn from_key_bytes(bytes: [u8; 32]) -> Self {
        Self {
            key: KeyBytes::from_array(bytes),
        }
    }

    pub(crate) fn from_secret(key: KeyBytes) -> Self {
        Self { key }
    }

    pub(crate) fn secret(&self) -> &KeyBytes {
        &self.key
    }

    /// HMAC-SHA256 over the length-prefixed purpose, `domain` (e.g. `"clients.legal_rep_id_number"`) and `value`; the
    /// same as [`BlindIndexKey::index_with`] under [`CipherSuite::Aes256Gcm`].
    ///
    /// The domain keeps equal values in different fields from matching, which would otherwise let the index link,
    /// say, a contact's ID number to a legal representative's. Callers normalise `value` first (trim, case) so that
    /// equal values index equally.
    pub fn index(&self, domain: &str, value: &[u8]) -> BlindIndex {
        self.index_with(CipherSuite::Aes256Gcm, domain, value)
    }

    /// The blind index under `suite`'s MAC: HMAC-SHA256 for AES-256-GCM, HMAC-SM3 for SM4-GCM, over the same
    /// length-prefixed purpose, domain and value as [`BlindIndexKey::index`], and 32 bytes either way.
    ///
    /// The two suites give unrelated indexes for the same value, so a deployment indexes with the suite it seals with
    /// and keeps to it: switching suites means recomputing the stored indexes, as rotating this key would.
    pub fn index_with(&self, suite: CipherSuite, domain: &str, value: &[u8]) -> BlindIndex {
        match suite {
            CipherSuite::Aes256Gcm => digest(mac::keyed(self.key.as_array()), domain, value),
            CipherSuite::Sm4Gcm => digest(mac::keyed_sm3(self.key.as_array()), domain, value),
        }
    }
}

fn digest<M: Mac<OutputSize = U32>>(mut mac: M, domain: &str, value: &[u8]) -> BlindIndex {
    for part in [PURPOSE, domain.as_bytes(), value] {
        // Fed part by part rather than concatenated, so no unzeroized copy of the sensitive value is made.
        mac.update(&length_prefix(part.len()));
        mac.update(part);
    }
    let mut out = [0u8; 32];
    mac::finalize_into(mac, &mut out);
    BlindIndex(out)
}

impl fmt::Debug for BlindIndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlindIndexKey(..)")
    }
}

impl BlindIndex {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        <[u8; 32]>::try_from(bytes)
            .map(Self)
            .map_err(|_| CryptoError::Malformed("blind index must be 32 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOMAIN: &str = "clients.legal_rep_id_number";

    #[test]
    fn deterministic_per_key() {
        let key = BlindIndexKey::from_key_bytes([1; 32]);
        assert_eq!(
            key.index(DOMAIN, b"110101199003074578"),
            key.index(DOMAIN, b"110101199003074578")
        );
        assert_eq!(
            key.index(DOMAIN, b"110101199003074578"),
            BlindIndexKey::from_key_bytes([1; 32]).index(DOMAIN, b"110101199003074578")
        );
        assert_ne!(
            key.index(DOMAIN, b"110101199003074578"),
            key.index(DOMAIN, b"110101199003074579")
        );
    }

    #[test]
    fn differs_per_key() {
        let value = b"110101199003074578";
        assert_ne!(
            BlindIndexKey::from_key_bytes([1; 32]).index(DOMAIN, value),
            BlindIndexKey::from_key_bytes([2; 32]).index(DOMAIN, value)
        );
        assert_ne!(
            BlindIndexKey::generate().index(DOMAIN, value),
            BlindIndexKey::generate().index(DOMAIN, value)
        );
    }

    #[test]
    fn differs_per_domain_and_boundary() {
        let key = BlindIndexKey::generate();
        let value = b"110101199003074578";
        assert_ne!(
            key.index(DOMAIN, value),
            key.index("contacts.id_number", value)
        );
        assert_ne!(key.index("ab", b"c"), key.index("a", b"bc"));
    }

    #[test]
    fn is_not_a_plain_hash_of_the_value() {
        let key = BlindIndexKey::from_key_bytes([1; 32]);
        let index = key.index(DOMAIN, b"x");
        let mut unkeyed = mac::keyed(&[]);
        unkeyed.update(b"x");
        let mut out = [0u8; 32];
        mac::finalize_into(unkeyed, &mut out);
        assert_ne!(index.as_bytes(), out);
    }

    #[test]
    fn bytes_round_trip_and_wrong_lengths_are_rejected() {
        let index = BlindIndexKey::generate().index(DOMAIN, b"v");
        assert_eq!(BlindIndex::from_bytes(index.as_bytes()).unwrap(), index);
        assert!(matches!(
            BlindIndex::from_bytes(&[0; 31]),
            Err(CryptoError::Malformed(_))
        ));
        assert!(matches!(
            BlindIndex::from_bytes(&[0; 33]),
            Err(CryptoError::Malformed(_))
        ));
    }

    #[test]
    fn debug_shows_no_key_bytes() {
        let key = BlindIndexKey::generate();
        let shown = format!("{key:?} {key:#?}");
        assert_eq!(format!("{key:?}"), "BlindIndexKey(..)");
        assert!(!shown.contains(&hex::encode(key.key.as_array())));
        assert!(!shown.contains(&format!("{:?}", key.key.as_array())));
    }

    /// Pins both constructions byte for byte, so neither the stored HMAC-SHA256 indexes nor the HMAC-SM3 ones can
    /// change silently. Expected values computed independently with Python's `hmac` over OpenSSL 3.0's SHA-256 and SM3:
    /// `hmac.new(bytes([1]) * 32, lp(b"zhangfang/blind-index") + lp(DOMAIN) + lp(value), alg).hexdigest()`, where
    /// `lp(part)` is the part's length as a big-endian u64 followed by the part.
    #[test]
    fn both_suites_match_independently_computed_indexes() {
        let key = BlindIndexKey::from_key_bytes([1; 32]);
        let value = b"110101199003074578";
        assert_eq!(
            hex::encode(key.index(DOMAIN, value).as_bytes()),
            "7c5a2f8268daa324575aaffccd8a7d91094cee195e1de5a98c8e48e3ee758732"
        );
        assert_eq!(
            key.index_with(CipherSuite::Aes256Gcm, DOMAIN, value),
            key.index(DOMAIN, value)
        );
        assert_eq!(
            hex::encode(
                key.index_with(CipherSuite::Sm4Gcm, DOMAIN, value)
                    .as_bytes()
            ),
            "4854739ae59744fa8ed0fc2291269a56641258a7488ff1cf79c5d107fceb4bc7"
        );
    }

    #[test]
    fn an_sm3_index_is_deterministic_and_separates_keys_domains_and_boundaries() {
        let key = BlindIndexKey::from_key_bytes([1; 32]);
        let sm3 = |key: &BlindIndexKey, domain: &str, value: &[u8]| {
            key.index_with(CipherSuite::Sm4Gcm, domain, value)
        };
        let value = b"110101199003074578";
        assert_eq!(sm3(&key, DOMAIN, value), sm3(&key, DOMAIN, value));
        assert_ne!(
            sm3(&key, DOMAIN, value),
            sm3(&key, DOMAIN, b"110101199003074579")
        );
        assert_ne!(
            sm3(&key, DOMAIN, value),
            sm3(&BlindIndexKey::from_key_bytes([2; 32]), DOMAIN, value)
        );
        assert_ne!(
            sm3(&key, DOMAIN, value),
            sm3(&key, "contacts.id_number", value)
        );
        assert_ne!(sm3(&key, "ab", b"c"), sm3(&key, "a", b"bc"));
    }

    #[test]
    fn the_two_suites_give_unrelated_indexes_for_the_same_input() {
        let key = BlindIndexKey::generate();
        assert_ne!(
            key.index_with(CipherSuite::Sm4Gcm, DOMAIN, b"v"),
            key.index_with(CipherSuite::Aes256Gcm, DOMAIN, b"v")
        );
    }
}
