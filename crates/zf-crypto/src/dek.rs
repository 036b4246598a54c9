//! Data-encryption keys: one per client, so destroying a client's DEK erases its data (crypto-shredding).

use std::fmt;

use zeroize::Zeroizing;

use crate::aead;
use crate::envelope::{Aad, Header, Sealed};
use crate::error::CryptoError;
use crate::master_key::KeyVersion;
use crate::secret::KeyBytes;
use crate::suite::CipherSuite;

/// 32 bytes of AES-256 key; persisted only wrapped by a KEK (see [`crate::Kek::wrap`]).
pub struct Dek {
    key: KeyBytes,
}

impl Dek {
    pub fn generate() -> Self {
        Self {
            key: KeyBytes::random(),
        }
    }

    pub(crate) fn from_secret(key: KeyBytes) -> Self {
        Self { key }
    }

    pub(crate) fn secret(&self) -> &KeyBytes {
        &self.key
    }

    /// Encrypts one field value under a fresh random nonce, recording `key_version` (this DEK's version) in the header.
    ///
    /// # Panics
    /// Only if `plaintext` exceeds AES-GCM's 64 GiB message limit.
    pub fn seal(&self, key_version: KeyVersion, plaintext: &[u8], aad: &Aad) -> Sealed {
        let header = Header {
            suite: CipherSuite::Aes256Gcm,
            key_version,
        };
        Sealed::from_envelope(aead::seal(&self.key, header, plaintext, &aad.to_bytes()))
    }

    /// Decrypts a value sealed by this DEK for exactly this table, row and field.
    pub fn open(&self, sealed: &Sealed, aad: &Aad) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        aead::open(&self.key, sealed.envelope(), &aad.to_bytes())
    }
}

impl fmt::Debug for Dek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Dek(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: KeyVersion = KeyVersion(1);

    fn aad() -> Aad {
        Aad::new(
            "clients",
            "0b9f6a52-4a31-4a52-9a6b-1f1b8d7c2e10",
            "legal_rep_id_number",
        )
    }

    fn assert_authentication_error(result: Result<Zeroizing<Vec<u8>>, CryptoError>) {
        assert!(
            matches!(result, Err(CryptoError::Authentication)),
            "expected an authentication failure, got {result:?}"
        );
    }

    #[test]
    fn round_trips() {
        let dek = Dek::generate();
        for plaintext in [&b""[..], b"110101199003074578", &[0xFF; 1000]] {
            let sealed = dek.seal(V1, plaintext, &aad());
            assert_eq!(sealed.key_version(), V1);
            assert_eq!(sealed.suite(), CipherSuite::Aes256Gcm);
            assert_eq!(sealed.as_bytes().len(), 34 + plaintext.len());
            assert_eq!(dek.open(&sealed, &aad()).unwrap().as_slice(), plaintext);
            let reparsed = Sealed::from_bytes(sealed.clone().into_bytes()).unwrap();
            assert_eq!(dek.open(&reparsed, &aad()).unwrap().as_slice(), plaintext);
        }
    }

    #[test]
    fn ciphertext_does_not_contain_the_plaintext_and_nonces_differ() {
        let dek = Dek::generate();
        let a = dek.seal(V1, b"110101199003074578", &aad());
        let b = dek.seal(V1, b"110101199003074578", &aad());
        assert_ne!(a, b);
        assert!(!a.as_bytes().windows(18).any(|w| w == b"110101199003074578"));
    }

    #[test]
    fn another_row_field_or_table_fails_authentication() {
        let dek = Dek::generate();
        let sealed = dek.seal(V1, b"13812341234", &Aad::new("contacts", "row-1", "mobile"));
        assert_authentication_error(dek.open(&sealed, &Aad::new("contacts", "row-2", "mobile")));
        assert_authentication_error(dek.open(&sealed, &Aad::new("contacts", "row-1", "wechat")));
        assert_authentication_error(dek.open(&sealed, &Aad::new("clients", "row-1", "mobile")));
        assert_eq!(
            dek.open(&sealed, &Aad::new("contacts", "row-1", "mobile"))
                .unwrap()
                .as_slice(),
            b"13812341234"
        );
    }

    #[test]
    fn flipping_any_byte_fails() {
        let dek = Dek::generate();
        let sealed = dek.seal(V1, b"bank account 6222021234567890", &aad());
        for position in 0..sealed.as_bytes().len() {
            for mask in [0x01, 0x80, 0xFF] {
                let mut bytes = sealed.as_bytes().to_vec();
                bytes[position] ^= mask;
                let result =
                    Sealed::from_bytes(bytes).and_then(|tampered| dek.open(&tampered, &aad()));
                assert!(
                    result.is_err(),
                    "byte {position} ^ {mask:#04x} went undetected"
                );
            }
        }
    }

    #[test]
    fn changing_the_recorded_key_version_fails_authentication() {
        let dek = Dek::generate();
        let sealed = dek.seal(KeyVersion(3), b"revenue 1234500", &aad());
        let mut bytes = sealed.into_bytes();
        bytes[2..6].copy_from_slice(&4u32.to_be_bytes());
        let tampered = Sealed::from_bytes(bytes).unwrap();
        assert_eq!(tampered.key_version(), KeyVersion(4));
        assert_authentication_error(dek.open(&tampered, &aad()));
    }

    #[test]
    fn truncation_fails() {
        let dek = Dek::generate();
        let bytes = dek.seal(V1, b"contract terms", &aad()).into_bytes();
        for len in 0..bytes.len() {
            let result =
                Sealed::from_bytes(bytes[..len].to_vec()).and_then(|s| dek.open(&s, &aad()));
            assert!(result.is_err(), "truncation to {len} bytes went undetected");
        }
    }

    #[test]
    fn wrong_dek_fails_authentication() {
        let sealed = Dek::generate().seal(V1, b"secret", &aad());
        assert_authentication_error(Dek::generate().open(&sealed, &aad()));
    }

    #[test]
    fn debug_shows_no_key_bytes() {
        let dek = Dek::generate();
        let shown = format!("{dek:?} {dek:#?}");
        assert_eq!(format!("{dek:?}"), "Dek(..)");
        assert!(!shown.contains(&hex::encode(dek.key.as_array())));
        assert!(!shown.contains(&format!("{:?}", dek.key.as_array())));
    }
}
