//! Cipher-suite identifiers stored in every envelope.

use std::fmt;
use std::str::FromStr;

use crate::error::UnknownCipherSuite;

/// The algorithm a ciphertext or wrapped key was produced with; its id is the second byte of every envelope.
///
/// Ids are part of the stored format: never renumber a variant, only add new ones. Opening always follows the id in the
/// envelope, so a deployment that changes its configured suite still reads everything written under the other one.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CipherSuite {
    /// AES-256-GCM; HMAC-SHA256 for blind indexes.
    Aes256Gcm = 1,
    /// SM4-GCM (GB/T 32907 in the GCM mode of RFC 8998); HMAC-SM3 (GB/T 32905) for blind indexes.
    Sm4Gcm = 2,
}

impl CipherSuite {
    /// Every suite this build can open, in id order.
    pub const ALL: [Self; 2] = [Self::Aes256Gcm, Self::Sm4Gcm];

    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Self::Aes256Gcm),
            2 => Some(Self::Sm4Gcm),
            _ => None,
        }
    }

    pub fn id(self) -> u8 {
        self as u8
    }

    /// The name used in configuration and in `Debug` output of envelopes; [`FromStr`] accepts exactly these.
    pub fn name(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "aes-256-gcm",
            Self::Sm4Gcm => "sm4-gcm",
        }
    }
}

impl fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The accepted names, quoted, for error messages.
pub(crate) fn accepted_names() -> String {
    CipherSuite::ALL
        .iter()
        .map(|suite| format!("{:?}", suite.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses a suite name from configuration. Matching is exact (no case folding or trimming), so the value written in a
/// configuration file is the one [`CipherSuite::name`] prints back.
impl FromStr for CipherSuite {
    type Err = UnknownCipherSuite;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|suite| suite.name() == name)
            .ok_or_else(|| UnknownCipherSuite(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_unknown_ids_are_rejected() {
        for suite in CipherSuite::ALL {
            assert_eq!(CipherSuite::from_id(suite.id()), Some(suite));
        }
        assert_eq!(CipherSuite::Aes256Gcm.id(), 1);
        assert_eq!(CipherSuite::Sm4Gcm.id(), 2);
        assert_eq!(CipherSuite::from_id(0), None);
        assert_eq!(CipherSuite::from_id(3), None);
    }

    #[test]
    fn names_parse_back_to_their_suite() {
        for suite in CipherSuite::ALL {
            assert_eq!(suite.name().parse::<CipherSuite>().unwrap(), suite);
            assert_eq!(suite.to_string(), suite.name());
        }
        assert_eq!(
            "sm4-gcm".parse::<CipherSuite>().unwrap(),
            CipherSuite::Sm4Gcm
        );
        assert_eq!(
            "aes-256-gcm".parse::<CipherSuite>().unwrap(),
            CipherSuite::Aes256Gcm
        );
    }

    #[test]
    fn unknown_or_misspelt_names_are_rejected_with_the_accepted_names() {
        for name in ["", "sm4", "SM4-GCM", " sm4-gcm", "aes-128-gcm", "aes256gcm"] {
            let error = name.parse::<CipherSuite>().unwrap_err();
            assert_eq!(error, UnknownCipherSuite(name.to_owned()));
            assert_eq!(error.name(), name);
            assert_eq!(
                error.to_string(),
                format!(
                    "unknown cipher suite {name:?}; expected one of \"aes-256-gcm\", \"sm4-gcm\""
                )
            );
        }
    }
}
