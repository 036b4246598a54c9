use serde::Deserialize;
use zf_domain::Username;

/// Which password rules apply, from `[password] profile = "asvs" | "dengbao"`.
///
/// `asvs` (the default) follows OWASP ASVS 5.0 and NIST SP 800-63B: length, no username or firm
/// name, not a common or breached password, and nothing else — composition rules and forced
/// rotation push people to predictable variations. `dengbao` adds what 等保 2.0 assessors
/// check for: three of the four character classes, expiry after 90 days, no reuse of the last 5
/// passwords, and a 30-minute lock after 5 failures. Both keep the ASVS checks.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PasswordProfile {
    #[default]
    Asvs,
    Dengbao,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordPolicy {
    pub profile: PasswordProfile,
}

impl PasswordPolicy {
    pub fn dengbao() -> Self {
        PasswordPolicy {
            profile: PasswordProfile::Dengbao,
        }
    }

    /// Character classes (lower, upper, digit, other) a password must mix.
    pub fn classes_required(&self) -> usize {
        match self.profile {
            PasswordProfile::Asvs => 0,
            PasswordProfile::Dengbao => 3,
        }
    }

    /// Days after which a password must be replaced at the next request.
    pub fn expiry_days(&self) -> Option<i64> {
        match self.profile {
            PasswordProfile::Asvs => None,
            PasswordProfile::Dengbao => Some(90),
        }
    }

    /// How many earlier passwords a new one must differ from (the current one included).
    pub fn history(&self) -> usize {
        match self.profile {
            PasswordProfile::Asvs => 1,
            PasswordProfile::Dengbao => 5,
        }
    }

    /// The sign-in lock this profile expects when `[login]` does not say otherwise.
    pub fn default_login(&self) -> super::LoginPolicy {
        match self.profile {
            PasswordProfile::Asvs => super::LoginPolicy::default(),
            PasswordProfile::Dengbao => super::LoginPolicy {
                lock_after: 5,
                lock_minutes: 30,
                ..super::LoginPolicy::default()
            },
        }
    }

    /// Whether a password set at `changed_at_ms` has expired by `now_ms`.
    pub fn expired(&self, changed_at_ms: i64, now_ms: i64) -> bool {
        self.expiry_days()
            .is_some_and(|days| now_ms - changed_at_ms >= days * 86_400_000)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordPolicyError {
    #[error("the password must be at least {min} characters long")]
    TooShort { min: usize },
    #[error("the password must be at most {max} characters long")]
    TooLong { max: usize },
    #[error("the password must not contain the username or the firm's name")]
    ContainsName,
    #[error(
        "the password is, or is built around, one of the most common passwords found in breaches"
    )]
    Common,
    #[error("the password must mix at least {required} of: lower-case letters, upper-case letters, digits, other characters")]
    TooFewClasses { required: usize },
    #[error("the new password must differ from the current one")]
    Unchanged,
    #[error("the new password must differ from the last {last} passwords")]
    Reused { last: usize },
}

const MIN: usize = 12;
const MAX: usize = 128;

fn classes(password: &str) -> usize {
    let has = |f: fn(char) -> bool| password.chars().any(f);
    [
        has(|c| c.is_lowercase()),
        has(|c| c.is_uppercase()),
        has(|c| c.is_ascii_digit()),
        has(|c| !c.is_alphanumeric()),
    ]
    .into_iter()
    .filter(|&b| b)
    .count()
}

/// Whether zxcvbn finds the password guessable and built around an entry of its list of the
/// 30,000 most common passwords from breach corpora (as it is, reversed, in l33t, or with a
/// little added). The list ships inside the binary, so no password leaves the server.
fn breached(password: &str, inputs: &[&str]) -> bool {
    use zxcvbn::feedback::Warning;
    zxcvbn::zxcvbn(password, inputs)
        .feedback()
        .and_then(|f| f.warning())
        .is_some_and(|w| {
            matches!(
                w,
                Warning::ThisIsATop10Password
                    | Warning::ThisIsATop100Password
                    | Warning::ThisIsACommonPassword
                    | Warning::ThisIsSimilarToACommonlyUsedPassword
            )
        })
}

pub fn check_password(
    password: &str,
    username: &Username,
    firm: Option<&str>,
    policy: &PasswordPolicy,
) -> Result<(), PasswordPolicyError> {
    let len = password.chars().count();
    if len < MIN {
        return Err(PasswordPolicyError::TooShort { min: MIN });
    }
    if len > MAX {
        return Err(PasswordPolicyError::TooLong { max: MAX });
    }
    let lower = password.to_lowercase();
    let firm = firm.map(str::trim).filter(|f| !f.is_empty());
    if lower.contains(username.as_str()) || firm.is_some_and(|f| lower.contains(&f.to_lowercase()))
    {
        return Err(PasswordPolicyError::ContainsName);
    }
    let required = policy.classes_required();
    if classes(password) < required {
        return Err(PasswordPolicyError::TooFewClasses { required });
    }
    let mut inputs = vec![username.as_str()];
    inputs.extend(firm);
    if breached(password, &inputs) {
        return Err(PasswordPolicyError::Common);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Username {
        Username::parse("zhangsan").unwrap()
    }

    #[test]
    fn asvs_rules() {
        let u = user();
        let asvs = PasswordPolicy::default();
        let check = |p: &str, firm| check_password(p, &u, firm, &asvs);
        assert_eq!(
            check("short", None),
            Err(PasswordPolicyError::TooShort { min: 12 })
        );
        assert_eq!(
            check(&"x".repeat(129), None),
            Err(PasswordPolicyError::TooLong { max: 128 })
        );
        assert_eq!(
            check("my-ZhangSan-password", None),
            Err(PasswordPolicyError::ContainsName)
        );
        assert_eq!(
            check("acme tax bureau!", Some("ACME")),
            Err(PasswordPolicyError::ContainsName)
        );
        assert_eq!(
            check("长城在北方的山上很美丽", None),
            Err(PasswordPolicyError::TooShort { min: 12 })
        );
        assert!(check("violet tractor enjoys rain", None).is_ok());
        // No composition rules: one class is enough when the password is long and uncommon.
        assert!(check("violettractorenjoysrain", None).is_ok());
    }

    #[test]
    fn common_and_breached_passwords_are_refused_however_dressed() {
        let u = user();
        let asvs = PasswordPolicy::default();
        for common in [
            "password1234",
            "Password1234",
            "qwertyuiop123",
            "1qaz2wsx3edc",
            "iloveyou1234",
            "drowssap1234",
            "P@ssw0rd1234",
            "baseball2024!",
            "superman123456",
        ] {
            assert_eq!(
                check_password(common, &u, None, &asvs),
                Err(PasswordPolicyError::Common),
                "{common}"
            );
        }
    }

    #[test]
    fn the_dengbao_profile_asks_for_three_classes_expiry_and_history() {
        let u = user();
        let dengbao = PasswordPolicy::dengbao();
        assert_eq!(
            check_password("violet tractor enjoys rain", &u, None, &dengbao),
            Err(PasswordPolicyError::TooFewClasses { required: 3 })
        );
        assert!(check_password("Violet tractor enjoys rain", &u, None, &dengbao).is_ok());
        assert!(check_password("violet tractor enjoys 7 rains", &u, None, &dengbao).is_ok());
        assert_eq!(dengbao.history(), 5);
        let day = 86_400_000;
        assert!(!dengbao.expired(0, 89 * day));
        assert!(dengbao.expired(0, 90 * day));
        assert!(!PasswordPolicy::default().expired(0, 3650 * day));
        assert_eq!(dengbao.default_login().lock_minutes, 30);
        assert_eq!(dengbao.default_login().lock_after, 5);
    }
}
