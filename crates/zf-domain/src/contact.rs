//! How to reach a client's contact person: mobile, email, WeChat, job title.

use std::fmt;

use serde::Deserialize;
use thiserror::Error;

use crate::newtype::{display_as_str, string_newtype};
use crate::schema::StringSchema;
use crate::text::{parse_line, TextError, TextKind};

const MOBILE_LEN: usize = 11;

/// Why a string is not a mainland mobile number. Like ID numbers, mobile
/// numbers are personal information, so no variant carries the digits.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MobileError {
    #[error(
        "mobile number character {position} is '{ch}', but only digits, spaces, dashes \
         and a leading +86 may appear"
    )]
    BadCharacter { position: usize, ch: char },
    #[error("only mainland China mobile numbers (+86) are accepted")]
    ForeignCountryCode,
    #[error("mobile number must have 11 digits (after any +86 prefix) but has {len}")]
    WrongLength { len: usize },
    #[error("not a mainland mobile number: those start with 1 followed by a digit from 3 to 9")]
    NotMobile,
}

/// A mainland China mobile number, stored as its 11 digits.
///
/// Kept out of logs like [`crate::IdNumber`]: `Debug` masks it, there is no
/// `Display`, and reading the digits takes an explicit [`Mobile::as_str`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Mobile(String);

impl Mobile {
    /// Accepts the ways numbers are written on cards and in spreadsheets:
    /// `13812341234`, `138 1234 1234`, `138-1234-1234`, `+86 138…`,
    /// `86138…`, `0086138…`.
    pub fn parse(input: &str) -> Result<Self, MobileError> {
        let trimmed = input.trim();
        let mut digits = String::with_capacity(trimmed.len());
        let mut plus = false;
        for (index, ch) in trimmed.chars().enumerate() {
            match ch {
                '0'..='9' => digits.push(ch),
                ' ' | '-' => {}
                '+' if index == 0 => plus = true,
                _ => {
                    return Err(MobileError::BadCharacter {
                        position: index + 1,
                        ch,
                    })
                }
            }
        }
        let national = if plus {
            digits
                .strip_prefix("86")
                .ok_or(MobileError::ForeignCountryCode)?
        } else if digits.len() == MOBILE_LEN + 4 && digits.starts_with("0086") {
            &digits[4..]
        } else if digits.len() == MOBILE_LEN + 2 && digits.starts_with("86") {
            &digits[2..]
        } else {
            &digits
        };
        if national.len() != MOBILE_LEN {
            return Err(MobileError::WrongLength {
                len: national.len(),
            });
        }
        // Only ASCII digits were kept, so byte indexing is exact.
        let bytes = national.as_bytes();
        if bytes[0] != b'1' || !(b'3'..=b'9').contains(&bytes[1]) {
            return Err(MobileError::NotMobile);
        }
        Ok(Self(national.to_owned()))
    }

    /// The full number. Every call site is a place where the plaintext leaves
    /// this type, so keep them few and reviewed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 脱敏 form: first 3 and last 4 digits, e.g. `138****1234`.
    pub fn masked(&self) -> String {
        format!("{}****{}", &self.0[..3], &self.0[MOBILE_LEN - 4..])
    }
}

impl fmt::Debug for Mobile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mobile({})", self.masked())
    }
}

/// Why a string is not an email address. The address is not echoed: it is
/// personal information and the position or part named is enough to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EmailError {
    #[error("email address must not be empty")]
    Empty,
    #[error("email address must be at most 254 characters long but has {len}")]
    TooLong { len: usize },
    #[error("email address contains a space or control character at position {position}")]
    Whitespace { position: usize },
    #[error("email address must contain exactly one '@' but has {count}")]
    AtCount { count: usize },
    #[error("email address has nothing before the '@'")]
    EmptyLocalPart,
    #[error(
        "the part of an email address before the '@' must be at most 64 characters but has {len}"
    )]
    LocalPartTooLong { len: usize },
    #[error(
        "the part of an email address before the '@' must not contain '{ch}' \
         (was a display name or a list pasted?)"
    )]
    LocalPartCharacter { ch: char },
    #[error(
        "the part of an email address before the '@' must not start or end with '.' \
         or contain '..'"
    )]
    LocalPartDots,
    #[error(
        "email domain must be dot-separated labels of letters, digits and hyphens \
         with a top-level domain, like example.com"
    )]
    BadDomain,
}

/// An email address that passes a pragmatic syntax check; the domain is
/// lower-cased (the local part is kept as typed, since its case may matter).
///
/// `Debug` masks it, because request bodies holding one get logged; `Display`
/// shows it in full for deliberate use.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Email(String);

impl Email {
    const MAX: usize = 254;
    const LOCAL_MAX: usize = 64;
    const LABEL_MAX: usize = 63;

    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let trimmed = input.trim();
        let len = trimmed.chars().count();
        if len == 0 {
            return Err(EmailError::Empty);
        }
        if len > Self::MAX {
            return Err(EmailError::TooLong { len });
        }
        if let Some(index) = trimmed
            .chars()
            .position(|ch| ch.is_whitespace() || ch.is_control() || crate::names::is_invisible(ch))
        {
            return Err(EmailError::Whitespace {
                position: index + 1,
            });
        }
        let count = trimmed.matches('@').count();
        let (local, domain) = match trimmed.split_once('@') {
            Some(parts) if count == 1 => parts,
            _ => return Err(EmailError::AtCount { count }),
        };
        check_local_part(local)?;
        let domain = domain.to_ascii_lowercase();
        check_domain(&domain)?;
        Ok(Self(format!("{local}@{domain}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// First character of the local part and the domain: `z***@example.com`.
    /// The stars do not reveal the local part's length.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.split_once('@').unwrap_or_default();
        let first = local.chars().next().unwrap_or('*');
        format!("{first}***@{domain}")
    }
}

fn check_local_part(local: &str) -> Result<(), EmailError> {
    let len = local.chars().count();
    if len == 0 {
        return Err(EmailError::EmptyLocalPart);
    }
    if len > Email::LOCAL_MAX {
        return Err(EmailError::LocalPartTooLong { len });
    }
    // These are legal only inside a quoted local part, which no real contact
    // uses; seeing one means "张三 <a@b.com>" or "a@b.com; c@d.com" was pasted.
    if let Some(ch) = local.chars().find(|ch| "\"<>(),;:[]\\".contains(*ch)) {
        return Err(EmailError::LocalPartCharacter { ch });
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(EmailError::LocalPartDots);
    }
    Ok(())
}

/// ASCII labels only: internationalised domains are written in their
/// `xn--` form, which keeps look-alike Unicode domains out.
fn check_domain(domain: &str) -> Result<(), EmailError> {
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |label: &&str| {
        (1..=Email::LABEL_MAX).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let top_level_ok = labels
        .last()
        .is_some_and(|top| !top.bytes().all(|b| b.is_ascii_digit()));
    if labels.len() >= 2 && labels.iter().all(label_ok) && top_level_ok {
        Ok(())
    } else {
        Err(EmailError::BadDomain)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.masked())
    }
}

/// Why a string is not a WeChat ID.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WeChatIdError {
    #[error("WeChat ID must not be empty")]
    Empty,
    #[error("WeChat ID must be 6-20 characters long but has {len}")]
    WrongLength { len: usize },
    #[error("WeChat ID must start with a letter a-z or A-Z, not '{ch}'")]
    MustStartWithLetter { ch: char },
    #[error(
        "WeChat ID character {position} is '{ch}', but only letters, digits, '_' and '-' \
         are allowed"
    )]
    BadCharacter { position: usize, ch: char },
    #[error("a WeChat ID made of digits must be a mainland mobile number: {0}")]
    Mobile(#[from] MobileError),
}

/// A WeChat ID (微信号): 6-20 characters starting with a letter, then letters,
/// digits, `_` or `-`; or, as WeChat allows, the account's mobile number, kept
/// as its 11 digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct WeChatId(String);

impl WeChatId {
    const MIN: usize = 6;
    const MAX: usize = 20;

    pub fn parse(input: &str) -> Result<Self, WeChatIdError> {
        let trimmed = input.trim();
        let first = trimmed.chars().next().ok_or(WeChatIdError::Empty)?;
        // Only something shaped like a phone number is judged as one, so that
        // "1abcdef" is told to start with a letter, not to be a mobile number.
        let phone_shaped = trimmed
            .chars()
            .all(|ch| ch.is_ascii_digit() || matches!(ch, ' ' | '-' | '+'));
        if phone_shaped {
            return Ok(Self(Mobile::parse(trimmed)?.0));
        }
        if let Some((index, ch)) = trimmed
            .chars()
            .enumerate()
            .find(|&(_, ch)| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '-'))
        {
            return Err(WeChatIdError::BadCharacter {
                position: index + 1,
                ch,
            });
        }
        if !first.is_ascii_alphabetic() {
            return Err(WeChatIdError::MustStartWithLetter { ch: first });
        }
        // All ASCII now, so bytes are characters.
        let len = trimmed.len();
        if !(Self::MIN..=Self::MAX).contains(&len) {
            return Err(WeChatIdError::WrongLength { len });
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this ID is the account's mobile number, which must then be
    /// treated as one (masked, revealed only with permission).
    pub fn is_mobile(&self) -> bool {
        self.0.starts_with(|ch: char| ch.is_ascii_digit())
    }
}

impl fmt::Debug for WeChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_mobile() {
            write!(f, "WeChatId({})", Mobile(self.0.clone()).masked())
        } else {
            write!(f, "WeChatId({})", self.0)
        }
    }
}

/// A contact's job title (职务), e.g. 财务经理: one line, 1-50 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Position(String);

impl Position {
    const MAX: usize = 50;

    pub fn parse(input: &str) -> Result<Self, TextError> {
        parse_line(input, TextKind::Position, Self::MAX).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype!(Mobile, MobileError);
string_newtype!(Email, EmailError);
string_newtype!(WeChatId, WeChatIdError);
string_newtype!(Position, TextError);
display_as_str!(Email);
display_as_str!(WeChatId);
display_as_str!(Position);

impl utoipa::PartialSchema for Mobile {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        StringSchema {
            description: "Mainland China mobile number, 11 digits starting 13-19. Input may \
                          carry a +86/86/0086 prefix, spaces or dashes. Sensitive: responses \
                          show it masked (138****1234) unless the caller may reveal it.",
            example: "13812341234",
            pattern: Some("^1[3-9][0-9]{9}$"),
            min_length: Some(MOBILE_LEN),
            max_length: Some(MOBILE_LEN),
            uuid_format: false,
        }
        .build()
    }
}

impl utoipa::ToSchema for Mobile {}

impl utoipa::PartialSchema for Email {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        StringSchema {
            description: "Email address, at most 254 characters; the domain is lower-cased.",
            example: "zhang.san@example.com",
            pattern: None,
            min_length: Some(3),
            max_length: Some(Email::MAX),
            uuid_format: false,
        }
        .build()
    }
}

impl utoipa::ToSchema for Email {}

impl utoipa::PartialSchema for WeChatId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        StringSchema {
            description: "WeChat ID (微信号): 6-20 characters, a letter first, then letters, \
                          digits, '_' or '-'; or an 11-digit mainland mobile number.",
            example: "zhangsan_2026",
            pattern: Some("^([A-Za-z][A-Za-z0-9_-]{5,19}|1[3-9][0-9]{9})$"),
            min_length: Some(WeChatId::MIN),
            max_length: Some(WeChatId::MAX),
            uuid_format: false,
        }
        .build()
    }
}

impl utoipa::ToSchema for WeChatId {}

impl utoipa::PartialSchema for Position {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        StringSchema {
            description: "Job title (职务), 1-50 characters after trimming; one line, no \
                          control or invisible characters.",
            example: "财务经理",
            pattern: None,
            min_length: Some(1),
            max_length: Some(Position::MAX),
            uuid_format: false,
        }
        .build()
    }
}

impl utoipa::ToSchema for Position {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mobile_accepts_prefixes_and_separators() {
        for input in [
            "13812341234",
            " 138 1234 1234 ",
            "138-1234-1234",
            "+8613812341234",
            "+86 138 1234 1234",
            "+86-138-1234-1234",
            "8613812341234",
            "008613812341234",
            "0086 138 1234 1234",
        ] {
            assert_eq!(
                Mobile::parse(input).map(|m| m.as_str().to_owned()),
                Ok("13812341234".to_owned()),
                "{input}"
            );
        }
    }

    #[test]
    fn mobile_refusals() {
        assert_eq!(Mobile::parse(""), Err(MobileError::WrongLength { len: 0 }));
        assert_eq!(
            Mobile::parse("1381234123"),
            Err(MobileError::WrongLength { len: 10 })
        );
        assert_eq!(
            Mobile::parse("138123412345"),
            Err(MobileError::WrongLength { len: 12 })
        );
        assert_eq!(Mobile::parse("12812341234"), Err(MobileError::NotMobile));
        assert_eq!(Mobile::parse("23812341234"), Err(MobileError::NotMobile));
        assert_eq!(
            Mobile::parse("+1 415 555 0100"),
            Err(MobileError::ForeignCountryCode)
        );
        assert_eq!(
            Mobile::parse("138.1234.1234"),
            Err(MobileError::BadCharacter {
                position: 4,
                ch: '.'
            })
        );
        assert_eq!(
            Mobile::parse("138+12341234"),
            Err(MobileError::BadCharacter {
                position: 4,
                ch: '+'
            })
        );
        assert!(Mobile::parse("１３８１２３４１２３４").is_err());
        // A landline with an area code is not a mobile number.
        assert!(Mobile::parse("0591-87654321").is_err());
    }

    #[test]
    fn mobile_is_masked_and_kept_out_of_errors() {
        let mobile = Mobile::parse("13812341234").unwrap();
        assert_eq!(mobile.masked(), "138****1234");
        assert_eq!(format!("{mobile:?}"), "Mobile(138****1234)");
        assert!(!format!("{mobile:#?}").contains("13812341234"));
        for input in ["1381234123", "12812341234", "+1 13812341234"] {
            let message = Mobile::parse(input).unwrap_err().to_string();
            assert!(!message.contains("1381"), "{message}");
        }
    }

    #[test]
    fn mobile_serde_is_the_plain_number() {
        let mobile: Mobile = serde_json::from_str("\"+86 138-1234-1234\"").unwrap();
        assert_eq!(serde_json::to_string(&mobile).unwrap(), "\"13812341234\"");
        let error = serde_json::from_str::<Mobile>("\"123\"").unwrap_err();
        assert!(error.to_string().contains("must have 11 digits"), "{error}");
    }

    #[test]
    fn email_accepts_and_normalises() {
        let email = Email::parse("  Zhang.San+crm@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "Zhang.San+crm@example.com");
        assert_eq!(email.to_string(), "Zhang.San+crm@example.com");
        assert_eq!(email.masked(), "Z***@example.com");
        assert_eq!(format!("{email:?}"), "Email(Z***@example.com)");
        assert!(Email::parse("a@b.co").is_ok());
        assert!(Email::parse("x@mail.xn--fiqs8s").is_ok());
        assert!(Email::parse("张三@example.cn").is_ok());
        assert_eq!(
            Email::parse("zhangsan@example.com").unwrap().masked(),
            "z***@example.com"
        );
    }

    #[test]
    fn email_refusals() {
        use EmailError::*;
        for (input, expected) in [
            ("", Empty),
            ("zhangsan", AtCount { count: 0 }),
            ("a@b@example.com", AtCount { count: 2 }),
            ("@example.com", EmptyLocalPart),
            ("a b@example.com", Whitespace { position: 2 }),
            ("a@exa\u{200B}mple.com", Whitespace { position: 6 }),
            ("张三 <a@example.com>", Whitespace { position: 3 }),
            ("<a@example.com>", LocalPartCharacter { ch: '<' }),
            ("a;b@example.com", LocalPartCharacter { ch: ';' }),
            (".a@example.com", LocalPartDots),
            ("a.@example.com", LocalPartDots),
            ("a..b@example.com", LocalPartDots),
            ("a@localhost", BadDomain),
            ("a@example", BadDomain),
            ("a@example.", BadDomain),
            ("a@.example.com", BadDomain),
            ("a@exa_mple.com", BadDomain),
            ("a@-example.com", BadDomain),
            ("a@example-.com", BadDomain),
            ("a@1.2.3.4", BadDomain),
            ("a@例子.中国", BadDomain),
        ] {
            assert_eq!(Email::parse(input), Err(expected), "{input}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert_eq!(Email::parse(&long_local), Err(LocalPartTooLong { len: 65 }));
        let long_label = format!("a@{}.com", "b".repeat(64));
        assert_eq!(Email::parse(&long_label), Err(BadDomain));
        let long = format!("a@{}.com", vec!["b".repeat(60); 5].join("."));
        assert!(matches!(Email::parse(&long), Err(TooLong { .. })));
    }

    #[test]
    fn wechat_ids() {
        for id in [
            "zhangsan",
            "Zhang_San-2026",
            "abcdef",
            "a1234567890123456789",
        ] {
            assert_eq!(WeChatId::parse(id).unwrap().as_str(), id);
        }
        let mobile = WeChatId::parse("138 1234 1234").unwrap();
        assert_eq!(mobile.as_str(), "13812341234");
        assert!(mobile.is_mobile());
        assert_eq!(format!("{mobile:?}"), "WeChatId(138****1234)");
        assert_eq!(
            format!("{:?}", WeChatId::parse("zhangsan").unwrap()),
            "WeChatId(zhangsan)"
        );
        assert_eq!(
            WeChatId::parse("abcde"),
            Err(WeChatIdError::WrongLength { len: 5 })
        );
        assert_eq!(
            WeChatId::parse(&"a".repeat(21)),
            Err(WeChatIdError::WrongLength { len: 21 })
        );
        assert_eq!(
            WeChatId::parse("_abcdef"),
            Err(WeChatIdError::MustStartWithLetter { ch: '_' })
        );
        assert_eq!(
            WeChatId::parse("zhang.san"),
            Err(WeChatIdError::BadCharacter {
                position: 6,
                ch: '.'
            })
        );
        assert_eq!(
            WeChatId::parse("张三abcdef"),
            Err(WeChatIdError::BadCharacter {
                position: 1,
                ch: '张'
            })
        );
        assert_eq!(WeChatId::parse(" "), Err(WeChatIdError::Empty));
        assert_eq!(
            WeChatId::parse("1abcdef"),
            Err(WeChatIdError::MustStartWithLetter { ch: '1' })
        );
        assert_eq!(
            WeChatId::parse("+86 138-1234-1234").unwrap().as_str(),
            "13812341234"
        );
        let error = WeChatId::parse("123456").unwrap_err();
        assert_eq!(
            error,
            WeChatIdError::Mobile(MobileError::WrongLength { len: 6 })
        );
        assert!(error
            .to_string()
            .contains("must be a mainland mobile number"));
    }

    #[test]
    fn positions() {
        assert_eq!(Position::parse(" 财务经理 ").unwrap().as_str(), "财务经理");
        assert!(Position::parse(&"经".repeat(50)).is_ok());
        assert_eq!(
            Position::parse(&"经".repeat(51)).unwrap_err().to_string(),
            "position must be at most 50 characters long but has 51"
        );
        assert!(Position::parse("").is_err());
        assert!(Position::parse("财务\n经理").is_err());
    }

    proptest! {
        #[test]
        fn every_mobile_round_trips_through_its_spellings(
            second in 3u8..=9,
            rest in "[0-9]{9}",
            prefix in prop::sample::select(vec!["", "+86", "+86 ", "86", "0086"]),
        ) {
            let digits = format!("1{second}{rest}");
            let spaced = format!("{prefix}{} {} {}", &digits[..3], &digits[3..7], &digits[7..]);
            let mobile = Mobile::parse(&spaced).unwrap();
            prop_assert_eq!(mobile.as_str(), digits.as_str());
            let masked = mobile.masked();
            prop_assert_eq!(&masked[..3], &digits[..3]);
            prop_assert_eq!(&masked[7..], &digits[7..]);
            let debug = format!("{mobile:?}");
            prop_assert!(!debug.contains(&digits[3..7]));
        }

        #[test]
        fn parsers_never_panic_and_are_idempotent(input in any::<String>()) {
            if let Ok(mobile) = Mobile::parse(&input) {
                prop_assert_eq!(Mobile::parse(mobile.as_str()), Ok(mobile.clone()));
            }
            if let Ok(email) = Email::parse(&input) {
                prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
            }
            if let Ok(id) = WeChatId::parse(&input) {
                prop_assert_eq!(WeChatId::parse(id.as_str()), Ok(id.clone()));
            }
            if let Ok(position) = Position::parse(&input) {
                prop_assert_eq!(Position::parse(position.as_str()), Ok(position.clone()));
            }
        }

        #[test]
        fn plausible_emails_parse(
            local in "[a-z0-9._%+-]{1,20}",
            domain in "[a-z0-9]{1,10}\\.[a-z]{2,6}",
        ) {
            prop_assume!(!local.starts_with('.') && !local.ends_with('.') && !local.contains(".."));
            let email = Email::parse(&format!("{local}@{domain}")).unwrap();
            let suffix = format!("@{domain}");
            prop_assert!(email.masked().ends_with(&suffix));
        }
    }
}
