//! The stored forms of ciphertext: [`Sealed`] field values and [`WrappedKey`]s.
//!
//! Both share one layout: `[format = 1][suite id][key version u32 BE][nonce 12][ciphertext][tag 16]`. The first six bytes
//! (the header) are also authenticated as associated data, so changing the recorded key version or suite makes the
//! value fail to open rather than be read under the wrong assumption.

mod aad;

use std::fmt;

pub use aad::Aad;

use crate::error::CryptoError;
use crate::master_key::KeyVersion;
use crate::suite::CipherSuite;

pub(crate) const FORMAT_V1: u8 = 1;
pub(crate) const HEADER_LEN: usize = 6;
pub(crate) const NONCE_LEN: usize = 12;
pub(crate) const TAG_LEN: usize = 16;
pub(crate) const MIN_LEN: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) suite: CipherSuite,
    pub(crate) key_version: KeyVersion,
}

impl Header {
    pub(crate) fn to_bytes(self) -> [u8; HEADER_LEN] {
        let [v0, v1, v2, v3] = self.key_version.0.to_be_bytes();
        [FORMAT_V1, self.suite.id(), v0, v1, v2, v3]
    }

    fn parse(bytes: &[u8]) -> Result<Self, CryptoError> {
        let Some(([format, suite, v0, v1, v2, v3], _)) = bytes.split_first_chunk::<HEADER_LEN>()
        else {
            return Err(CryptoError::Malformed("shorter than the envelope header"));
        };
        if *format != FORMAT_V1 {
            return Err(CryptoError::Malformed("unknown envelope format version"));
        }
        let suite = CipherSuite::from_id(*suite).ok_or(CryptoError::UnsupportedSuite(*suite))?;
        Ok(Self {
            suite,
            key_version: KeyVersion(u32::from_be_bytes([*v0, *v1, *v2, *v3])),
        })
    }
}

/// A validated envelope; the parsed header is kept beside the bytes so accessors need no re-parsing and cannot fail.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Envelope {
    header: Header,
    bytes: Vec<u8>,
}

impl Envelope {
    /// For the AEAD layer, which lays the bytes out itself.
    pub(crate) fn from_parts(header: Header, bytes: Vec<u8>) -> Self {
        Self { header, bytes }
    }

    fn parse(bytes: Vec<u8>) -> Result<Self, CryptoError> {
        let header = Header::parse(&bytes)?;
        if bytes.len() < MIN_LEN {
            return Err(CryptoError::Malformed(
                "shorter than header, nonce and authentication tag",
            ));
        }
        Ok(Self { header, bytes })
    }

    pub(crate) fn header(&self) -> Header {
        self.header
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn describe(
        &self,
        f: &mut fmt::Formatter<'_>,
        type_name: &str,
        key_label: &str,
    ) -> fmt::Result {
        write!(
            f,
            "{type_name}(v{FORMAT_V1}, {}, {key_label} {}, {} bytes)",
            self.header.suite,
            self.header.key_version.0,
            self.bytes.len()
        )
    }
}

/// A sealed field value as stored. Holding this type, rather than bytes, is how the rest of the code knows a value is
/// ciphertext; `Debug` shows only the header and length.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(Envelope);

impl Sealed {
    pub(crate) fn from_envelope(envelope: Envelope) -> Self {
        Self(envelope)
    }

    pub(crate) fn envelope(&self) -> &Envelope {
        &self.0
    }

    /// Accepts bytes read back from storage after checking the header and minimum length; authenticity is only known
    /// once [`crate::Dek::open`] succeeds.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, CryptoError> {
        Envelope::parse(bytes).map(Self)
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0.bytes
    }

    /// The version of the DEK that sealed this value.
    pub fn key_version(&self) -> KeyVersion {
        self.0.header.key_version
    }

    pub fn suite(&self) -> CipherSuite {
        self.0.header.suite
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.describe(f, "Sealed", "key")
    }
}

/// A DEK or other system key encrypted under a KEK, in the same envelope layout as [`Sealed`].
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey(Envelope);

impl WrappedKey {
    pub(crate) fn from_envelope(envelope: Envelope) -> Self {
        Self(envelope)
    }

    pub(crate) fn envelope(&self) -> &Envelope {
        &self.0
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, CryptoError> {
        Envelope::parse(bytes).map(Self)
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0.bytes
    }

    /// The version of the KEK that wrapped this key, i.e. which KEK to derive to unwrap it.
    pub fn kek_version(&self) -> KeyVersion {
        self.0.header.key_version
    }

    pub fn suite(&self) -> CipherSuite {
        self.0.header.suite
    }
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.describe(f, "WrappedKey", "kek")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope_bytes(format: u8, suite: u8, version: u32, len: usize) -> Vec<u8> {
        let mut bytes = vec![format, suite];
        bytes.extend_from_slice(&version.to_be_bytes());
        bytes.resize(len, 0xAB);
        bytes
    }

    #[test]
    fn parses_header_fields() {
        let sealed = Sealed::from_bytes(envelope_bytes(1, 1, 3, 45)).unwrap();
        assert_eq!(sealed.key_version(), KeyVersion(3));
        assert_eq!(sealed.suite(), CipherSuite::Aes256Gcm);
        assert_eq!(sealed.as_bytes().len(), 45);
        assert_eq!(
            format!("{sealed:?}"),
            "Sealed(v1, aes-256-gcm, key 3, 45 bytes)"
        );
        let wrapped = WrappedKey::from_bytes(envelope_bytes(1, 1, 0x0102_0304, 66)).unwrap();
        assert_eq!(wrapped.kek_version(), KeyVersion(0x0102_0304));
        assert_eq!(
            format!("{wrapped:?}"),
            "WrappedKey(v1, aes-256-gcm, kek 16909060, 66 bytes)"
        );
    }

    #[test]
    fn round_trips_bytes() {
        let bytes = envelope_bytes(1, 1, 9, MIN_LEN);
        assert_eq!(
            Sealed::from_bytes(bytes.clone()).unwrap().into_bytes(),
            bytes
        );
        assert_eq!(
            WrappedKey::from_bytes(bytes.clone()).unwrap().into_bytes(),
            bytes
        );
    }

    #[test]
    fn rejects_bad_headers_and_short_input() {
        assert!(matches!(
            Sealed::from_bytes(Vec::new()),
            Err(CryptoError::Malformed(_))
        ));
        assert!(matches!(
            Sealed::from_bytes(vec![1, 1, 0]),
            Err(CryptoError::Malformed(_))
        ));
        assert!(matches!(
            Sealed::from_bytes(envelope_bytes(1, 1, 1, MIN_LEN - 1)),
            Err(CryptoError::Malformed(_))
        ));
        assert!(matches!(
            Sealed::from_bytes(envelope_bytes(2, 1, 1, MIN_LEN)),
            Err(CryptoError::Malformed(_))
        ));
        assert!(matches!(
            WrappedKey::from_bytes(envelope_bytes(1, 7, 1, MIN_LEN)),
            Err(CryptoError::UnsupportedSuite(7))
        ));
    }
}
