//! Names typed by people: company names, personal names and login names.

use std::fmt;

use serde::Deserialize;
use thiserror::Error;

use crate::newtype::{display_as_str, string_newtype};
use crate::schema::StringSchema;

/// Which kind of name failed, so one error type can still say which field is
/// wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameKind {
    ClientName,
    PersonName,
    Username,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::ClientName => "client name",
            NameKind::PersonName => "person name",
            NameKind::Username => "username",
        })
    }
}

/// Why a string is not a valid name. Lengths and positions count Unicode
/// scalar values (what a person sees as characters in CJK text), 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("{kind} must not be empty")]
    Empty { kind: NameKind },
    #[error("{kind} must be at least {min} characters long but has {len}")]
    TooShort {
        kind: NameKind,
        min: usize,
        len: usize,
    },
    #[error("{kind} must be at most {max} characters long but has {len}")]
    TooLong {
        kind: NameKind,
        max: usize,
        len: usize,
    },
    #[error(
        "{kind} contains an invisible control or formatting character \
         (U+{code_point:04X}) at position {position}"
    )]
    InvisibleCharacter {
        kind: NameKind,
        position: usize,
        code_point: u32,
    },
    #[error("{kind} must not contain digits, but has '{ch}' at position {position}")]
    Digit {
        kind: NameKind,
        position: usize,
        ch: char,
    },
    #[error(
        "{kind} character {position} is '{ch}', but only a-z, 0-9, '.', '_' and '-' are allowed"
    )]
    BadCharacter {
        kind: NameKind,
        position: usize,
        ch: char,
    },
    #[error("{kind} must start with a letter a-z, not '{ch}'")]
    MustStartWithLetter { kind: NameKind, ch: char },
}

/// Control characters break layouts and logs; bidirectional overrides and
/// zero-width characters let two different names look identical on screen,
/// which would make a spoofed client or user indistinguishable from the real
/// one.
pub(crate) fn is_invisible(ch: char) -> bool {
    ch.is_control()
        || matches!(
            ch,
            '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
        )
}

/// Shared rules for free-text names: trimmed, bounded length, nothing
/// invisible.
fn parse_text(input: &str, kind: NameKind, min: usize, max: usize) -> Result<String, NameError> {
    let trimmed = input.trim();
    let len = trimmed.chars().count();
    if len == 0 {
        return Err(NameError::Empty { kind });
    }
    if len < min {
        return Err(NameError::TooShort { kind, min, len });
    }
    if len > max {
        return Err(NameError::TooLong { kind, max, len });
    }
    if let Some((index, ch)) = trimmed
        .chars()
        .enumerate()
        .find(|&(_, ch)| is_invisible(ch))
    {
        return Err(NameError::InvisibleCharacter {
            kind,
            position: index + 1,
            code_point: u32::from(ch),
        });
    }
    Ok(trimmed.to_owned())
}

/// A company's registered name (企业名称), e.g. 福州某某财税咨询有限公司.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct ClientName(String);

impl ClientName {
    const MIN: usize = 2;
    const MAX: usize = 100;

    pub fn parse(input: &str) -> Result<Self, NameError> {
        parse_text(input, NameKind::ClientName, Self::MIN, Self::MAX).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A natural person's name, e.g. a legal representative's. Non-ASCII letters,
/// spaces, '·' and apostrophes are all fine; digits are not, since they only
/// appear in names by mistake or by pasting the wrong column.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct PersonName(String);

impl PersonName {
    const MIN: usize = 1;
    const MAX: usize = 50;

    pub fn parse(input: &str) -> Result<Self, NameError> {
        let kind = NameKind::PersonName;
        let name = parse_text(input, kind, Self::MIN, Self::MAX)?;
        // '〇' is a numeral to Unicode but also a character used in Chinese
        // given names, so it is let through.
        if let Some((index, ch)) = name
            .chars()
            .enumerate()
            .find(|&(_, ch)| ch.is_numeric() && ch != '〇')
        {
            return Err(NameError::Digit {
                kind,
                position: index + 1,
                ch,
            });
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A staff member's login name. Restricted to a small ASCII alphabet so that
/// look-alike characters cannot produce two accounts that read the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Username(String);

impl Username {
    const MIN: usize = 3;
    const MAX: usize = 32;

    /// Lower-cases before checking, so "Alice" and "alice" are one account.
    pub fn parse(input: &str) -> Result<Self, NameError> {
        let kind = NameKind::Username;
        // ASCII-only lowering keeps positions in errors matching the input.
        let name = input.trim().to_ascii_lowercase();
        let first = name.chars().next().ok_or(NameError::Empty { kind })?;
        if let Some((index, ch)) = name
            .chars()
            .enumerate()
            .find(|&(_, ch)| !is_username_char(ch))
        {
            return Err(NameError::BadCharacter {
                kind,
                position: index + 1,
                ch,
            });
        }
        if !first.is_ascii_lowercase() {
            return Err(NameError::MustStartWithLetter { kind, ch: first });
        }
        // Every character is ASCII now, so bytes are characters.
        let len = name.len();
        if len < Self::MIN {
            return Err(NameError::TooShort {
                kind,
                min: Self::MIN,
                len,
            });
        }
        if len > Self::MAX {
            return Err(NameError::TooLong {
                kind,
                max: Self::MAX,
                len,
            });
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_username_char(ch: char) -> bool {
    ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-')
}

string_newtype!(ClientName, NameError);
string_newtype!(PersonName, NameError);
string_newtype!(Username, NameError);
display_as_str!(ClientName);
display_as_str!(PersonName);
display_as_str!(Username);

impl utoipa::PartialSchema for ClientName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        StringSchema {
            description: "Registered company name (企业名称), 2-100 characters after trimming; \
                          no control or invisible formatting characters.",
            example: "福州账房财税咨询有限公司",
            pattern: None,
            min_length: Some(ClientName::MIN),
            max_length: Some(ClientName::MAX),
            uuid_format: false,
        }
        .build()
    }
}

impl utoipa::ToSchema for ClientName {}

impl utoipa::PartialSchema for PersonName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        StringSchema {
            description: "A person's name, 1-50 characters after trimming; no digits, control \
                          or invisible formatting characters.",
            example: "张三",
            pattern: None,
            min_length: Some(PersonName::MIN),
            max_length: Some(PersonName::MAX),
            uuid_format: false,
        }
        .build()
    }
}

impl utoipa::ToSchema for PersonName {}

impl utoipa::PartialSchema for Username {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        StringSchema {
            description: "Login name: 3-32 characters of a-z, 0-9, '.', '_', '-', starting with \
                          a letter. Input is trimmed and lower-cased.",
            example: "zhang.san",
            pattern: Some("^[a-z][a-z0-9._-]{2,31}$"),
            min_length: Some(Username::MIN),
            max_length: Some(Username::MAX),
            uuid_format: false,
        }
        .build()
    }
}

impl utoipa::ToSchema for Username {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_name_trims_and_accepts_cjk() {
        let name = ClientName::parse("  福州账房财税咨询有限公司 ").unwrap();
        assert_eq!(name.as_str(), "福州账房财税咨询有限公司");
        assert_eq!(name.to_string(), "福州账房财税咨询有限公司");
    }

    #[test]
    fn client_name_length_counts_characters() {
        assert!(ClientName::parse("账房").is_ok());
        assert_eq!(
            ClientName::parse("账"),
            Err(NameError::TooShort {
                kind: NameKind::ClientName,
                min: 2,
                len: 1
            })
        );
        assert!(ClientName::parse(&"账".repeat(100)).is_ok());
        assert_eq!(
            ClientName::parse(&"账".repeat(101)),
            Err(NameError::TooLong {
                kind: NameKind::ClientName,
                max: 100,
                len: 101
            })
        );
    }

    #[test]
    fn empty_and_blank_names_are_empty() {
        assert_eq!(
            ClientName::parse(" \t "),
            Err(NameError::Empty {
                kind: NameKind::ClientName
            })
        );
        assert_eq!(
            PersonName::parse(""),
            Err(NameError::Empty {
                kind: NameKind::PersonName
            })
        );
        assert_eq!(
            Username::parse("  "),
            Err(NameError::Empty {
                kind: NameKind::Username
            })
        );
    }

    #[test]
    fn rejects_control_and_invisible_characters() {
        assert_eq!(
            ClientName::parse("账房\u{7}公司"),
            Err(NameError::InvisibleCharacter {
                kind: NameKind::ClientName,
                position: 3,
                code_point: 7
            })
        );
        for sneaky in ['\n', '\u{202E}', '\u{200B}', '\u{FEFF}', '\u{2066}'] {
            assert!(
                ClientName::parse(&format!("账{sneaky}房")).is_err(),
                "{sneaky:?}"
            );
            assert!(
                PersonName::parse(&format!("张{sneaky}三")).is_err(),
                "{sneaky:?}"
            );
        }
        let message = PersonName::parse("张\u{202E}三").unwrap_err().to_string();
        assert_eq!(
            message,
            "person name contains an invisible control or formatting character (U+202E) \
             at position 2"
        );
    }

    #[test]
    fn person_name_accepts_real_names() {
        for name in ["张三", "买买提·艾力", "Mary-Jane O'Neil", "李〇", "X"] {
            assert_eq!(PersonName::parse(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn person_name_rejects_digits_and_length() {
        assert_eq!(
            PersonName::parse("张3"),
            Err(NameError::Digit {
                kind: NameKind::PersonName,
                position: 2,
                ch: '3'
            })
        );
        assert!(PersonName::parse("张３").is_err());
        assert_eq!(
            PersonName::parse(&"张".repeat(51)),
            Err(NameError::TooLong {
                kind: NameKind::PersonName,
                max: 50,
                len: 51
            })
        );
        assert_eq!(
            PersonName::parse("张3").unwrap_err().to_string(),
            "person name must not contain digits, but has '3' at position 2"
        );
    }

    #[test]
    fn username_is_lowercased_and_trimmed() {
        assert_eq!(
            Username::parse(" Zhang.San_01 ").unwrap().as_str(),
            "zhang.san_01"
        );
    }

    #[test]
    fn username_rules() {
        let kind = NameKind::Username;
        assert_eq!(
            Username::parse("ab"),
            Err(NameError::TooShort {
                kind,
                min: 3,
                len: 2
            })
        );
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
        assert_eq!(
            Username::parse(&"a".repeat(33)),
            Err(NameError::TooLong {
                kind,
                max: 32,
                len: 33
            })
        );
        assert_eq!(
            Username::parse("1abc"),
            Err(NameError::MustStartWithLetter { kind, ch: '1' })
        );
        assert_eq!(
            Username::parse("_abc"),
            Err(NameError::MustStartWithLetter { kind, ch: '_' })
        );
        assert_eq!(
            Username::parse("ab c"),
            Err(NameError::BadCharacter {
                kind,
                position: 3,
                ch: ' '
            })
        );
        assert_eq!(
            Username::parse("zhāng"),
            Err(NameError::BadCharacter {
                kind,
                position: 3,
                ch: 'ā'
            })
        );
    }

    #[test]
    fn username_messages_name_the_field() {
        assert_eq!(
            Username::parse("1abc").unwrap_err().to_string(),
            "username must start with a letter a-z, not '1'"
        );
        assert_eq!(
            Username::parse("a@bc").unwrap_err().to_string(),
            "username character 2 is '@', but only a-z, 0-9, '.', '_' and '-' are allowed"
        );
    }

    #[test]
    fn serde_validates_and_reports_reason() {
        let name: Username = serde_json::from_str("\"Alice\"").unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"alice\"");
        let error = serde_json::from_str::<ClientName>("\"a\"").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("client name must be at least 2 characters"),
            "{error}"
        );
    }
}
