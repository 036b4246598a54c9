//! 居民身份证号码 (resident identity card number), GB 11643-1999.
//!
//! An ID number identifies a person for life, so this type is built to keep it
//! out of logs: `Debug` masks it, there is no `Display`, and error messages
//! never echo its digits. Reading the full value takes an explicit, greppable
//! [`IdNumber::as_str`].

use std::fmt;

use serde::Deserialize;
use thiserror::Error;

use crate::newtype::string_newtype;
use crate::schema::StringSchema;

const LEN: usize = 18;

/// Weight of positions 1..=17: 2^(18-i) mod 11. None is zero mod 11, so any
/// single changed digit changes the check character.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// Check character indexed by the weighted sum mod 11; 'X' stands for 10.
const CHECK_CHARS: &[u8; 11] = b"10X98765432";

/// Why a string is not a valid ID number. Variants deliberately carry no
/// digits of the input: errors get logged, and a partial ID number plus a
/// name is still personal information.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdNumberError {
    #[error("ID number must be 18 characters long but has {len}")]
    WrongLength { len: usize },
    #[error(
        "ID number character {position} is '{ch}', but only digits may appear \
         (and 'X' as the last character)"
    )]
    NonDigit { position: usize, ch: char },
    #[error("ID number cannot start with 0: the first 6 digits are an address code starting 1-9")]
    BadAddressCode,
    #[error(
        "ID number birth date (characters 7-14, YYYYMMDD) is not a real calendar date \
         between 1900-01-01 and 2099-12-31"
    )]
    BadBirthDate,
    #[error("ID number check character is '{found}' but should be '{expected}'")]
    CheckMismatch { expected: char, found: char },
}

/// A verified 18-character ID number, stored with an upper-case 'X'.
#[derive(Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct IdNumber(String);

impl IdNumber {
    /// Parses an ID number, tolerating surrounding whitespace and a lower-case
    /// 'x', both common when numbers are typed by hand.
    pub fn parse(input: &str) -> Result<Self, IdNumberError> {
        let canonical = canonicalise(input);
        let digits = leading_digits(&canonical, LEN)?;
        let found = canonical.chars().last().unwrap_or_default();
        if !(found.is_ascii_digit() || found == 'X') {
            return Err(IdNumberError::NonDigit {
                position: LEN,
                ch: found,
            });
        }
        check_address_and_date(&digits)?;
        let expected = check_char(&digits);
        if expected != found {
            return Err(IdNumberError::CheckMismatch { expected, found });
        }
        Ok(Self(canonical))
    }

    /// Completes the first 17 digits with their check character. Meant for
    /// generating demo and test data; returns `None` unless `first17` would
    /// make a valid number (digits only, address code and birth date valid).
    pub fn with_check_char(first17: &str) -> Option<Self> {
        let mut canonical = canonicalise(first17);
        let digits = leading_digits(&canonical, LEN - 1).ok()?;
        check_address_and_date(&digits).ok()?;
        canonical.push(check_char(&digits));
        Some(Self(canonical))
    }

    /// The full number. Every call site is a place where the plaintext leaves
    /// this type, so keep them few and reviewed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 脱敏 (de-identified) form shown to roles that may not see the
    /// number: first 3 and last 4 characters, e.g. `110***********002X`.
    pub fn masked(&self) -> String {
        // Canonical values are 18 ASCII characters, so byte slicing is exact.
        let (head, rest) = self.0.split_at(3);
        let tail = &rest[rest.len() - 4..];
        format!("{head}{}{tail}", "*".repeat(LEN - 7))
    }
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({})", self.masked())
    }
}

fn canonicalise(input: &str) -> String {
    input.trim().to_ascii_uppercase()
}

/// Checks the length, then returns the values of the first 17 characters,
/// which must all be digits.
fn leading_digits(canonical: &str, expected_len: usize) -> Result<Vec<u32>, IdNumberError> {
    let len = canonical.chars().count();
    if len != expected_len {
        return Err(IdNumberError::WrongLength { len });
    }
    canonical
        .chars()
        .take(LEN - 1)
        .enumerate()
        .map(|(index, ch)| {
            ch.to_digit(10).ok_or(IdNumberError::NonDigit {
                position: index + 1,
                ch,
            })
        })
        .collect()
}

fn check_address_and_date(digits: &[u32]) -> Result<(), IdNumberError> {
    if digits.first() == Some(&0) {
        return Err(IdNumberError::BadAddressCode);
    }
    let number = |range: std::ops::Range<usize>| {
        digits[range]
            .iter()
            .fold(0_u32, |acc, &digit| acc * 10 + digit)
    };
    if is_real_date(number(6..10), number(10..12), number(12..14)) {
        Ok(())
    } else {
        Err(IdNumberError::BadBirthDate)
    }
}

fn is_real_date(year: u32, month: u32, day: u32) -> bool {
    if !(1900..=2099).contains(&year) {
        return false;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days_in_month).contains(&day)
}

fn check_char(first17: &[u32]) -> char {
    let sum: u32 = first17.iter().zip(WEIGHTS).map(|(&d, w)| d * w).sum();
    char::from(CHECK_CHARS[(sum % 11) as usize])
}

string_newtype!(IdNumber, IdNumberError);

impl utoipa::PartialSchema for IdNumber {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        StringSchema {
            description: "居民身份证号码 (PRC resident ID number, GB 11643-1999): 17 digits \
                          and a check character (digit or X). Sensitive: responses show it \
                          masked (e.g. 110***********002X) unless the caller may reveal it.",
            example: "11010519491231002X",
            pattern: Some("^[1-9][0-9]{16}[0-9X]$"),
            min_length: Some(LEN),
            max_length: Some(LEN),
            uuid_format: false,
        }
        .build()
    }
}

impl utoipa::ToSchema for IdNumber {}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "11010519491231002X";

    #[test]
    fn accepts_the_standard_example() {
        assert_eq!(IdNumber::parse(VALID).unwrap().as_str(), VALID);
    }

    #[test]
    fn normalises_whitespace_and_lower_case_x() {
        let id = IdNumber::parse(" 11010519491231002x\n").unwrap();
        assert_eq!(id.as_str(), VALID);
    }

    #[test]
    fn masks_all_but_first_three_and_last_four() {
        let id = IdNumber::parse(VALID).unwrap();
        assert_eq!(id.masked(), "110***********002X");
        let id = IdNumber::with_check_char("11010119900307123").unwrap();
        assert_eq!(
            id.masked(),
            format!("110***********123{}", &id.as_str()[17..])
        );
    }

    #[test]
    fn debug_does_not_leak_the_number() {
        let id = IdNumber::parse(VALID).unwrap();
        let debug = format!("{id:?}");
        assert_eq!(debug, "IdNumber(110***********002X)");
        assert!(!debug.contains("19491231"));
        let pretty = format!("{id:#?}");
        assert!(!pretty.contains("19491231"), "{pretty}");
    }

    #[test]
    fn rejects_wrong_length() {
        assert_eq!(
            IdNumber::parse(""),
            Err(IdNumberError::WrongLength { len: 0 })
        );
        assert_eq!(
            IdNumber::parse("11010519491231002"),
            Err(IdNumberError::WrongLength { len: 17 })
        );
        // The old 15-digit numbers were abolished; they must be converted first.
        assert_eq!(
            IdNumber::parse("110105491231002"),
            Err(IdNumberError::WrongLength { len: 15 })
        );
    }

    #[test]
    fn rejects_non_digits() {
        assert_eq!(
            IdNumber::parse("1101051949123100XX"),
            Err(IdNumberError::NonDigit {
                position: 17,
                ch: 'X'
            })
        );
        assert_eq!(
            IdNumber::parse("11010519491231002Y"),
            Err(IdNumberError::NonDigit {
                position: 18,
                ch: 'Y'
            })
        );
        assert_eq!(
            IdNumber::parse("1101051949123１002X"),
            Err(IdNumberError::NonDigit {
                position: 14,
                ch: '１'
            })
        );
    }

    #[test]
    fn rejects_address_code_starting_with_zero() {
        assert_eq!(
            IdNumber::parse("01010519491231002X"),
            Err(IdNumberError::BadAddressCode)
        );
    }

    #[test]
    fn rejects_impossible_birth_dates() {
        for date in [
            "18991231", "21000101", "19490001", "19491301", "19490100", "19490431", "19000229",
            "19990229", "19491232",
        ] {
            let input = format!("110105{date}0021");
            assert_eq!(
                IdNumber::parse(&input),
                Err(IdNumberError::BadBirthDate),
                "{date}"
            );
        }
    }

    #[test]
    fn accepts_leap_days_and_range_edges() {
        for date in ["20000229", "20240229", "19000101", "20991231"] {
            let first17 = format!("110105{date}002");
            assert!(IdNumber::with_check_char(&first17).is_some(), "{date}");
        }
    }

    #[test]
    fn rejects_wrong_check_character() {
        assert_eq!(
            IdNumber::parse("110105194912310021"),
            Err(IdNumberError::CheckMismatch {
                expected: 'X',
                found: '1'
            })
        );
    }

    #[test]
    fn error_messages_do_not_echo_the_digits() {
        let inputs = [
            "110105194912310021",
            "110105194913310021",
            "01010519491231002X",
        ];
        for input in inputs {
            let message = IdNumber::parse(input).unwrap_err().to_string();
            assert!(!message.contains("1101"), "{message}");
            assert!(!message.contains("1949"), "{message}");
        }
    }

    #[test]
    fn with_check_char_completes_and_validates() {
        assert_eq!(
            IdNumber::with_check_char("11010519491231002")
                .unwrap()
                .as_str(),
            VALID
        );
        assert_eq!(IdNumber::with_check_char("1101051949123100"), None);
        assert_eq!(IdNumber::with_check_char("01010519491231002"), None);
        assert_eq!(IdNumber::with_check_char("11010519490231002"), None);
        assert_eq!(IdNumber::with_check_char("1101051949123100A"), None);
    }

    #[test]
    fn serde_round_trips_and_reports_reason() {
        let id = IdNumber::parse(VALID).unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{VALID}\""));
        assert_eq!(serde_json::from_str::<IdNumber>(&json).unwrap(), id);
        let error = serde_json::from_str::<IdNumber>("\"110105194912310021\"").unwrap_err();
        assert!(error
            .to_string()
            .contains("check character is '1' but should be 'X'"));
    }
}
