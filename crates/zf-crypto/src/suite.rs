//! Cipher-suite identifiers stored in every envelope.

use std::fmt;

/// The algorithm a ciphertext or wrapped key was produced with; its id is the second byte of every envelope.
///
/// Ids are part of the stored format: never renumber a variant, only add new ones.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CipherSuite {
    Aes256Gcm = 1,
}

impl CipherSuite {
    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Self::Aes256Gcm),
            _ => None,
        }
    }

    pub fn id(self) -> u8 {
        self as u8
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "aes-256-gcm",
        }
    }
}

impl fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_unknown_ids_are_rejected() {
        assert_eq!(
            CipherSuite::from_id(CipherSuite::Aes256Gcm.id()),
            Some(CipherSuite::Aes256Gcm)
        );
        assert_eq!(CipherSuite::Aes256Gcm.id(), 1);
        assert_eq!(CipherSuite::from_id(0), None);
        assert_eq!(CipherSuite::from_id(2), None);
    }
}
