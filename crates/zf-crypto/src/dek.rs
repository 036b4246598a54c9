//! Data-encryption keys: one per client, so destroying a client's DEK erases its data (crypto-shredding).

use std::fmt;

use zeroize::Zeroizing;

use crate::aead;
use crate::envelope::{Aad, Header, Sealed};
use crate::error::CryptoError;
use crate::master_key::KeyVersion;
use crate::secret::KeyBytes;
use crate::suite::CipherSuite;

/// 32 random bytes of key, used whole by AES-256-GCM and in part by SM4-GCM (see [`Dek::seal_with`]); persisted only
/// wrapped by a KEK (see [`crate::Kek::wrap`]).
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

    /// Encrypts one field value with AES-256-GCM under a fresh random nonce, recording `key_version` (this DEK's
    /// version) in the header.
    ///
    /// # Panics
    /// Only if `plaintext` exceeds GCM's 64 GiB message limit.
    pub fn seal(&self, key_version: KeyVersion, plaintext: &[u8], aad: &Aad) -> Sealed {
        self.seal_with(CipherSuite::Aes256Gcm, key_version, plaintext, aad)
    }

    /// As [`Dek::seal`], with the deployment's configured `suite`, which the header records so that [`Dek::open`] needs
    /// no configuration. SM4-GCM keys SM4 with the first 16 of the DEK's 32 bytes, so one DEK serves either suite.
    ///
    /// # Panics
    /// Only if `plaintext` exceeds GCM's 64 GiB message limit.
    pub fn seal_with(
        &self,
        suite: CipherSuite,
        key_version: KeyVersion,
        plaintext: &[u8],
        aad: &Aad,
    ) -> Sealed {
        let header = Header { suite, key_version };
        Sealed::from_envelope(aead::seal(&self.key, header, plaintext, &aad.to_bytes()))
    }

    /// Decrypts a value sealed by this DEK for exactly this table, row and field, under whichever suite its header
    /// names.
    pub fn open(&self, sealed: &Sealed, aad: &Aad) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        aead::open(&self.key, sealed.envelope(), &aad.to_bytes())
    }
}

/// The data keys of one owner, by version: new values are sealed under the current key with the
/// deployment's suite; a value opens under the key its header's version names. The previous key
/// is held only while the owner's values are re-encrypted under the current one.
pub struct DekRing {
    suite: CipherSuite,
    current: (KeyVersion, Dek),
    previous: Option<(KeyVersion, Dek)>,
}

impl DekRing {
    pub fn new(suite: CipherSuite, version: KeyVersion, current: Dek) -> Self {
        DekRing {
            suite,
            current: (version, current),
            previous: None,
        }
    }

    /// Adds the key the current one replaced.
    pub fn with_previous(mut self, version: KeyVersion, previous: Dek) -> Self {
        self.previous = Some((version, previous));
        self
    }

    pub fn current_version(&self) -> KeyVersion {
        self.current.0
    }

    /// The version of the previous key, while the ring holds one.
    pub fn previous_version(&self) -> Option<KeyVersion> {
        self.previous.as_ref().map(|(v, _)| *v)
    }

    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// Seals under the current key and the ring's suite.
    ///
    /// # Panics
    /// Only if `plaintext` exceeds GCM's 64 GiB message limit.
    pub fn seal(&self, plaintext: &[u8], aad: &Aad) -> Sealed {
        let (version, dek) = &self.current;
        dek.seal_with(self.suite, *version, plaintext, aad)
    }

    /// Opens under the key of the version the value's header names;
    /// [`CryptoError::UnknownKeyVersion`] if the ring holds no such key.
    pub fn open(&self, sealed: &Sealed, aad: &Aad) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let version = sealed.key_version();
        let dek = if version == self.current.0 {
            &self.current.1
        } else {
            match &self.previous {
                Some((v, dek)) if *v == version => dek,
                _ => return Err(CryptoError::UnknownKeyVersion(version.0)),
            }
        };
        dek.open(sealed, aad)
    }
}

impl fmt::Debug for DekRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DekRing({}, current v{}, previous {:?})",
            self.suite,
            self.current.0 .0,
            self.previous.as_ref().map(|(v, _)| v.0)
        )
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

    #[test]
    fn a_ring_seals_under_its_current_key_and_opens_either_version() {
        let aad = aad();
        let old = Dek::generate();
        let before = old.seal(V1, b"110101199003074578", &aad);
        let ring = DekRing::new(CipherSuite::Sm4Gcm, KeyVersion(2), Dek::generate())
            .with_previous(V1, old);
        let after = ring.seal(b"110101199003074578", &aad);
        assert_eq!(after.key_version(), KeyVersion(2));
        assert_eq!(after.suite(), CipherSuite::Sm4Gcm);
        assert_eq!(
            &ring.open(&before, &aad).unwrap()[..],
            b"110101199003074578"
        );
        assert_eq!(&ring.open(&after, &aad).unwrap()[..], b"110101199003074578");

        // Without the previous key, the old value names a version the ring does not hold.
        let current_only = DekRing::new(CipherSuite::Aes256Gcm, KeyVersion(2), Dek::generate());
        assert!(matches!(
            current_only.open(&before, &aad),
            Err(CryptoError::UnknownKeyVersion(1))
        ));
        // A value relabelled with another version fails authentication, never opens.
        let mut bytes = before.as_bytes().to_vec();
        bytes[5] = 2;
        let relabelled = Sealed::from_bytes(bytes).unwrap();
        assert!(matches!(
            ring.open(&relabelled, &aad),
            Err(CryptoError::Authentication)
        ));
        assert!(!format!("{ring:?}").contains("key"));
    }

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

    fn other(suite: CipherSuite) -> CipherSuite {
        match suite {
            CipherSuite::Aes256Gcm => CipherSuite::Sm4Gcm,
            CipherSuite::Sm4Gcm => CipherSuite::Aes256Gcm,
        }
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
    fn sm4_gcm_round_trips_and_the_header_records_the_suite() {
        let dek = Dek::generate();
        for plaintext in [&b""[..], b"110101199003074578", &[0xFF; 1000]] {
            let sealed = dek.seal_with(CipherSuite::Sm4Gcm, V1, plaintext, &aad());
            assert_eq!(sealed.key_version(), V1);
            assert_eq!(sealed.suite(), CipherSuite::Sm4Gcm);
            assert_eq!(sealed.as_bytes()[1], 2);
            assert_eq!(sealed.as_bytes().len(), 34 + plaintext.len());
            assert_eq!(dek.open(&sealed, &aad()).unwrap().as_slice(), plaintext);
            let reparsed = Sealed::from_bytes(sealed.clone().into_bytes()).unwrap();
            assert_eq!(dek.open(&reparsed, &aad()).unwrap().as_slice(), plaintext);
        }
    }

    #[test]
    fn seal_is_seal_with_aes_256_gcm() {
        let dek = Dek::generate();
        let sealed = dek.seal_with(CipherSuite::Aes256Gcm, V1, b"x", &aad());
        assert_eq!(sealed.suite(), dek.seal(V1, b"x", &aad()).suite());
        assert_eq!(dek.open(&sealed, &aad()).unwrap().as_slice(), b"x");
    }

    #[test]
    fn ciphertext_does_not_contain_the_plaintext_and_nonces_differ() {
        let dek = Dek::generate();
        for suite in CipherSuite::ALL {
            let a = dek.seal_with(suite, V1, b"110101199003074578", &aad());
            let b = dek.seal_with(suite, V1, b"110101199003074578", &aad());
            assert_ne!(a, b);
            assert_ne!(a.as_bytes()[6..18], b.as_bytes()[6..18]);
            assert!(!a.as_bytes().windows(18).any(|w| w == b"110101199003074578"));
        }
    }

    #[test]
    fn another_row_field_or_table_fails_authentication() {
        let dek = Dek::generate();
        for suite in CipherSuite::ALL {
            let sealed = dek.seal_with(
                suite,
                V1,
                b"13812341234",
                &Aad::new("contacts", "row-1", "mobile"),
            );
            assert_authentication_error(
                dek.open(&sealed, &Aad::new("contacts", "row-2", "mobile")),
            );
            assert_authentication_error(
                dek.open(&sealed, &Aad::new("contacts", "row-1", "wechat")),
            );
            assert_authentication_error(dek.open(&sealed, &Aad::new("clients", "row-1", "mobile")));
            assert_eq!(
                dek.open(&sealed, &Aad::new("contacts", "row-1", "mobile"))
                    .unwrap()
                    .as_slice(),
                b"13812341234"
            );
        }
    }

    /// Every byte of header, nonce, ciphertext and tag, under each suite: the format byte is refused as malformed, the
    /// suite byte as an unknown suite (no single-bit or all-bit flip of 1 or 2 reaches the other id; relabelling is
    /// tested on its own below), and anything else fails authentication. None of them yields plaintext.
    #[test]
    fn flipping_any_byte_fails() {
        let dek = Dek::generate();
        for suite in CipherSuite::ALL {
            let sealed = dek.seal_with(suite, V1, b"bank account 6222021234567890", &aad());
            for position in 0..sealed.as_bytes().len() {
                for mask in [0x01, 0x80, 0xFF] {
                    let mut bytes = sealed.as_bytes().to_vec();
                    bytes[position] ^= mask;
                    let result =
                        Sealed::from_bytes(bytes).and_then(|tampered| dek.open(&tampered, &aad()));
                    let expected = matches!(
                        (position, &result),
                        (0, Err(CryptoError::Malformed(_)))
                            | (1, Err(CryptoError::UnsupportedSuite(_)))
                            | (2.., Err(CryptoError::Authentication))
                    );
                    assert!(
                        expected,
                        "{suite}: byte {position} ^ {mask:#04x} gave {result:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_value_relabelled_as_the_other_suite_fails_authentication() {
        let dek = Dek::generate();
        for suite in CipherSuite::ALL {
            let mut bytes = dek
                .seal_with(suite, V1, b"revenue 1234500", &aad())
                .into_bytes();
            bytes[1] = other(suite).id();
            let relabelled = Sealed::from_bytes(bytes).unwrap();
            assert_eq!(relabelled.suite(), other(suite));
            assert_authentication_error(dek.open(&relabelled, &aad()));
        }
    }

    #[test]
    fn changing_the_recorded_key_version_fails_authentication() {
        let dek = Dek::generate();
        for suite in CipherSuite::ALL {
            let sealed = dek.seal_with(suite, KeyVersion(3), b"revenue 1234500", &aad());
            let mut bytes = sealed.into_bytes();
            bytes[2..6].copy_from_slice(&4u32.to_be_bytes());
            let tampered = Sealed::from_bytes(bytes).unwrap();
            assert_eq!(tampered.key_version(), KeyVersion(4));
            assert_authentication_error(dek.open(&tampered, &aad()));
        }
    }

    #[test]
    fn truncation_fails() {
        let dek = Dek::generate();
        for suite in CipherSuite::ALL {
            let bytes = dek
                .seal_with(suite, V1, b"contract terms", &aad())
                .into_bytes();
            for len in 0..bytes.len() {
                let result =
                    Sealed::from_bytes(bytes[..len].to_vec()).and_then(|s| dek.open(&s, &aad()));
                assert!(
                    result.is_err(),
                    "{suite}: truncation to {len} bytes went undetected"
                );
            }
        }
    }

    #[test]
    fn wrong_dek_fails_authentication() {
        for suite in CipherSuite::ALL {
            let sealed = Dek::generate().seal_with(suite, V1, b"secret", &aad());
            assert_authentication_error(Dek::generate().open(&sealed, &aad()));
        }
    }

    /// SM4 reads only the first 16 bytes, so a DEK differing from the sealing one only in its second half opens SM4
    /// values (and must not open AES ones). Pins which half is used: stored SM4 values depend on it.
    #[test]
    fn sm4_gcm_is_keyed_by_the_first_half_of_the_dek() {
        let mut bytes = [7u8; 32];
        let dek = Dek::from_secret(KeyBytes::from_array(bytes));
        bytes[16..].fill(8);
        let same_first_half = Dek::from_secret(KeyBytes::from_array(bytes));
        let sm4 = dek.seal_with(CipherSuite::Sm4Gcm, V1, b"v", &aad());
        assert_eq!(same_first_half.open(&sm4, &aad()).unwrap().as_slice(), b"v");
        let aes = dek.seal(V1, b"v", &aad());
        assert_authentication_error(same_first_half.open(&aes, &aad()));
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
