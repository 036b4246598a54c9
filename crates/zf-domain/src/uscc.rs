//! 统一社会信用代码 (Unified Social Credit Code), GB 32100-2015.

use serde::Deserialize;
use thiserror::Error;

use crate::newtype::{display_as_str, string_newtype};
use crate::schema::StringSchema;

/// The 31 symbols a USCC may contain; a symbol's value is its index. I, O, Z,
/// S and V are left out because they are easily confused with 1, 0, 2, 5 and U.
const CHARSET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Weight of positions 1..=17: 3^(i-1) mod 31. Because 3 is a primitive root
/// of 31 every weight is non-zero, which is what makes any single changed
/// character change the check character.
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

const LEN: usize = 18;

/// Why a string is not a valid USCC. Positions are 1-based, as printed on a
/// business licence, so the message can be checked against the paper.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UsccError {
    #[error("USCC must be 18 characters long but has {len}")]
    WrongLength { len: usize },
    #[error(
        "USCC character {position} is '{ch}', which is not allowed \
         (only digits and the letters A-Y except I, O, S, V, Z may appear)"
    )]
    BadCharacter { position: usize, ch: char },
    #[error("USCC check character is '{found}' but should be '{expected}'")]
    CheckMismatch { expected: char, found: char },
}

/// A USCC whose characters and check character have been verified.
///
/// Stored in canonical form: no surrounding whitespace, letters upper-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Uscc(String);

impl Uscc {
    /// Parses a USCC, tolerating surrounding whitespace and lower-case letters
    /// because codes are often copied from scans or typed by hand.
    pub fn parse(input: &str) -> Result<Self, UsccError> {
        let canonical = canonicalise(input);
        let values = symbol_values(&canonical, LEN)?;
        let expected = check_char(&values[..LEN - 1]);
        let found = char::from(CHARSET[values[LEN - 1]]);
        if expected != found {
            return Err(UsccError::CheckMismatch { expected, found });
        }
        Ok(Self(canonical))
    }

    /// Completes the first 17 characters with their check character. Meant for
    /// generating demo and test data; returns `None` unless `first17` is
    /// exactly 17 characters of the USCC alphabet.
    pub fn with_check_char(first17: &str) -> Option<Self> {
        let mut canonical = canonicalise(first17);
        let values = symbol_values(&canonical, LEN - 1).ok()?;
        canonical.push(check_char(&values));
        Some(Self(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free-standing so that [`Uscc::with_check_char`] and [`Uscc::parse`] agree
/// on what counts as the same code.
fn canonicalise(input: &str) -> String {
    input.trim().to_ascii_uppercase()
}

/// Maps each character to its value, checking the length first so the error
/// reports the most basic problem.
fn symbol_values(canonical: &str, expected_len: usize) -> Result<Vec<usize>, UsccError> {
    let len = canonical.chars().count();
    if len != expected_len {
        return Err(UsccError::WrongLength { len });
    }
    canonical
        .chars()
        .enumerate()
        .map(|(index, ch)| {
            value_of(ch).ok_or(UsccError::BadCharacter {
                position: index + 1,
                ch,
            })
        })
        .collect()
}

fn value_of(ch: char) -> Option<usize> {
    u8::try_from(ch)
        .ok()
        .and_then(|byte| CHARSET.iter().position(|&symbol| symbol == byte))
}

fn check_char(first17: &[usize]) -> char {
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(&value, weight)| value as u32 * weight)
        .sum();
    let index = (31 - sum % 31) % 31;
    char::from(CHARSET[index as usize])
}

string_newtype!(Uscc, UsccError);
display_as_str!(Uscc);

impl utoipa::PartialSchema for Uscc {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        StringSchema {
            description: "统一社会信用代码 (Unified Social Credit Code, GB 32100-2015): 18 \
                          characters with a check character. Surrounding whitespace and \
                          lower-case letters are accepted and normalised.",
            example: "91350100M000100Y43",
            pattern: Some("^[0-9A-HJ-NP-RTUW-Y]{18}$"),
            min_length: Some(LEN),
            max_length: Some(LEN),
            uuid_format: false,
        }
        .build()
    }
}

impl utoipa::ToSchema for Uscc {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_known_valid_codes() {
        for code in ["91350100M000100Y43", "91110000600037341L"] {
            let uscc = Uscc::parse(code).unwrap();
            assert_eq!(uscc.as_str(), code);
            assert_eq!(uscc.to_string(), code);
        }
    }

    #[test]
    fn normalises_whitespace_and_case() {
        let uscc = Uscc::parse("  91350100m000100y43\t\n").unwrap();
        assert_eq!(uscc.as_str(), "91350100M000100Y43");
    }

    #[test]
    fn rejects_wrong_length() {
        assert_eq!(Uscc::parse(""), Err(UsccError::WrongLength { len: 0 }));
        assert_eq!(
            Uscc::parse("91350100M000100Y4"),
            Err(UsccError::WrongLength { len: 17 })
        );
        assert_eq!(
            Uscc::parse("91350100M000100Y433"),
            Err(UsccError::WrongLength { len: 19 })
        );
    }

    #[test]
    fn counts_length_in_characters_not_bytes() {
        // 18 characters but more than 18 bytes: must be a character error.
        assert_eq!(
            Uscc::parse("91350100M000100Y4统"),
            Err(UsccError::BadCharacter {
                position: 18,
                ch: '统'
            })
        );
    }

    #[test]
    fn rejects_each_excluded_letter() {
        for excluded in ['I', 'O', 'Z', 'S', 'V'] {
            let code = format!("9135010{excluded}M000100Y43");
            assert_eq!(
                Uscc::parse(&code),
                Err(UsccError::BadCharacter {
                    position: 8,
                    ch: excluded
                })
            );
        }
    }

    #[test]
    fn rejects_wrong_check_character() {
        assert_eq!(
            Uscc::parse("91350100M000100Y4X"),
            Err(UsccError::CheckMismatch {
                expected: '3',
                found: 'X'
            })
        );
    }

    #[test]
    fn error_messages_say_what_is_wrong() {
        let message = Uscc::parse("91350100M000100Y4X").unwrap_err().to_string();
        assert_eq!(message, "USCC check character is 'X' but should be '3'");
        let message = Uscc::parse("9135010OM000100Y43").unwrap_err().to_string();
        assert!(message.contains("character 8 is 'O'"), "{message}");
        let message = Uscc::parse("123").unwrap_err().to_string();
        assert_eq!(message, "USCC must be 18 characters long but has 3");
    }

    #[test]
    fn with_check_char_completes_known_codes() {
        let uscc = Uscc::with_check_char("91350100M000100Y4").unwrap();
        assert_eq!(uscc.as_str(), "91350100M000100Y43");
        let uscc = Uscc::with_check_char(" 91110000600037341 ").unwrap();
        assert_eq!(uscc.as_str(), "91110000600037341L");
    }

    #[test]
    fn with_check_char_rejects_bad_prefixes() {
        assert_eq!(Uscc::with_check_char("91350100M000100Y"), None);
        assert_eq!(Uscc::with_check_char("91350100M000100Y43"), None);
        assert_eq!(Uscc::with_check_char("91350100M000100YO"), None);
    }

    #[test]
    fn conversions_all_validate() {
        use std::str::FromStr;
        assert!(Uscc::from_str("91350100M000100Y43").is_ok());
        assert!(Uscc::try_from("91350100M000100Y43".to_owned()).is_ok());
        assert!(Uscc::try_from("91350100M000100Y44").is_err());
    }

    #[test]
    fn serde_round_trips_as_plain_string() {
        let uscc = Uscc::parse("91350100m000100y43").unwrap();
        let json = serde_json::to_string(&uscc).unwrap();
        assert_eq!(json, "\"91350100M000100Y43\"");
        let back: Uscc = serde_json::from_str(&json).unwrap();
        assert_eq!(back, uscc);
    }

    #[test]
    fn serde_error_carries_the_reason() {
        let error = serde_json::from_str::<Uscc>("\"91350100M000100Y4X\"").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("check character is 'X' but should be '3'"),
            "{error}"
        );
    }
}
