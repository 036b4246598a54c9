//! Bank account numbers (银行账号) of a client's basic and general accounts.

use std::fmt;

use serde::Deserialize;
use thiserror::Error;

use crate::newtype::string_newtype;
use crate::schema::StringSchema;

const MIN_DIGITS: usize = 8;
const MAX_DIGITS: usize = 32;

/// Why a string is not a bank account number. No variant carries digits of
/// the input: with a name, part of an account number is still sensitive.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BankAccountError {
    #[error(
        "bank account number character {position} is '{ch}', but only digits, spaces and \
         dashes may appear"
    )]
    NonDigit { position: usize, ch: char },
    #[error("bank account number must have 8-32 digits but has {len}")]
    WrongLength { len: usize },
}

/// A bank account or card number, stored as its digits only.
///
/// Kept out of logs like [`crate::IdNumber`]: `Debug` masks it, there is no
/// `Display`, and reading the digits takes an explicit
/// [`BankAccount::as_str`]. Corporate account numbers vary by bank (some
/// have no check digit), so only the shape is checked.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct BankAccount(String);

impl BankAccount {
    /// Spaces and dashes are dropped, as numbers are printed in groups.
    pub fn parse(input: &str) -> Result<Self, BankAccountError> {
        let mut digits = String::with_capacity(input.len());
        for (index, ch) in input.trim().chars().enumerate() {
            match ch {
                '0'..='9' => digits.push(ch),
                ' ' | '-' => {}
                _ => {
                    return Err(BankAccountError::NonDigit {
                        position: index + 1,
                        ch,
                    })
                }
            }
        }
        if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits.len()) {
            return Err(BankAccountError::WrongLength { len: digits.len() });
        }
        Ok(Self(digits))
    }

    /// The full number. Every call site is a place where the plaintext leaves
    /// this type, so keep them few and reviewed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last four digits behind a fixed mask, `**** **** 1234`, which
    /// hides the number's length too.
    pub fn masked(&self) -> String {
        format!("**** **** {}", &self.0[self.0.len() - 4..])
    }
}

impl fmt::Debug for BankAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BankAccount({})", self.masked())
    }
}

string_newtype!(BankAccount, BankAccountError);

impl utoipa::PartialSchema for BankAccount {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        StringSchema {
            description: "Bank account number (银行账号): 8-32 digits; spaces and dashes in \
                          input are dropped. Sensitive: responses show it masked \
                          (**** **** 1234) unless the caller may reveal it.",
            example: "6222021234567890123",
            pattern: Some("^[0-9]{8,32}$"),
            min_length: Some(MIN_DIGITS),
            max_length: Some(MAX_DIGITS),
            uuid_format: false,
        }
        .build()
    }
}

impl utoipa::ToSchema for BankAccount {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_grouped_numbers() {
        let account = BankAccount::parse(" 6222 0212 3456 7890 123 ").unwrap();
        assert_eq!(account.as_str(), "6222021234567890123");
        let account = BankAccount::parse("3501-0123-4567-8901").unwrap();
        assert_eq!(account.as_str(), "3501012345678901");
        assert!(BankAccount::parse("12345678").is_ok());
        assert!(BankAccount::parse(&"1".repeat(32)).is_ok());
    }

    #[test]
    fn refusals() {
        assert_eq!(
            BankAccount::parse("1234567"),
            Err(BankAccountError::WrongLength { len: 7 })
        );
        assert_eq!(
            BankAccount::parse(&"1".repeat(33)),
            Err(BankAccountError::WrongLength { len: 33 })
        );
        assert_eq!(
            BankAccount::parse(""),
            Err(BankAccountError::WrongLength { len: 0 })
        );
        assert_eq!(
            BankAccount::parse("6222 0212 X456"),
            Err(BankAccountError::NonDigit {
                position: 11,
                ch: 'X'
            })
        );
        assert!(BankAccount::parse("６２２２０２１２３４").is_err());
    }

    #[test]
    fn masks_all_but_the_last_four() {
        let account = BankAccount::parse("6222021234567890123").unwrap();
        assert_eq!(account.masked(), "**** **** 0123");
        assert_eq!(format!("{account:?}"), "BankAccount(**** **** 0123)");
        assert!(!format!("{account:#?}").contains("6222"));
        let message = BankAccount::parse("6222 0212 X456")
            .unwrap_err()
            .to_string();
        assert!(!message.contains("6222"), "{message}");
    }

    #[test]
    fn serde_is_the_plain_digits() {
        let account: BankAccount = serde_json::from_str("\"6222-0212-3456\"").unwrap();
        assert_eq!(serde_json::to_string(&account).unwrap(), "\"622202123456\"");
        let error = serde_json::from_str::<BankAccount>("\"123\"").unwrap_err();
        assert!(error.to_string().contains("8-32 digits"), "{error}");
    }

    proptest! {
        #[test]
        fn masked_shows_only_the_last_four(digits in "[0-9]{8,32}") {
            let account = BankAccount::parse(&digits).unwrap();
            prop_assert_eq!(account.as_str(), digits.as_str());
            prop_assert_eq!(account.masked(), format!("**** **** {}", &digits[digits.len() - 4..]));
        }

        #[test]
        fn parse_never_panics(input in any::<String>()) {
            if let Ok(account) = BankAccount::parse(&input) {
                prop_assert_eq!(BankAccount::parse(account.as_str()), Ok(account.clone()));
            }
        }
    }
}
