use zf_domain::Username;

/// The ASVS default profile: length, not the username or firm name, not a known common
/// password; no composition rules. The 等保 profile arrives with the identity issue.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordPolicyError {
    #[error("the password must be at least {min} characters long")]
    TooShort { min: usize },
    #[error("the password must be at most {max} characters long")]
    TooLong { max: usize },
    #[error("the password must not contain the username or the firm's name")]
    ContainsName,
    #[error("the password is on the list of commonly used passwords")]
    Common,
    #[error("the new password must differ from the current one")]
    Unchanged,
}

const MIN: usize = 12;
const MAX: usize = 128;

/// A few of the most common passwords at or above the minimum length; the bundled breach list
/// of the identity issue replaces this.
const COMMON: &[&str] = &[
    "123456789012",
    "password1234",
    "qwertyuiopas",
    "1qaz2wsx3edc",
    "abc123456789",
    "passwordpassword",
    "administrator",
    "qwerty123456",
    "iloveyou1234",
    "woaini1314520",
];

pub fn check_password(
    password: &str,
    username: &Username,
    firm: Option<&str>,
) -> Result<(), PasswordPolicyError> {
    let len = password.chars().count();
    if len < MIN {
        return Err(PasswordPolicyError::TooShort { min: MIN });
    }
    if len > MAX {
        return Err(PasswordPolicyError::TooLong { max: MAX });
    }
    let lower = password.to_lowercase();
    if lower.contains(username.as_str())
        || firm.is_some_and(|f| !f.trim().is_empty() && lower.contains(&f.trim().to_lowercase()))
    {
        return Err(PasswordPolicyError::ContainsName);
    }
    if COMMON.contains(&lower.as_str()) {
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
    fn rules() {
        let u = user();
        assert_eq!(
            check_password("short", &u, None),
            Err(PasswordPolicyError::TooShort { min: 12 })
        );
        assert_eq!(
            check_password(&"x".repeat(129), &u, None),
            Err(PasswordPolicyError::TooLong { max: 128 })
        );
        assert_eq!(
            check_password("my-ZhangSan-password", &u, None),
            Err(PasswordPolicyError::ContainsName)
        );
        assert_eq!(
            check_password("acme tax bureau!", &u, Some("ACME")),
            Err(PasswordPolicyError::ContainsName)
        );
        assert_eq!(
            check_password("Password1234", &u, None),
            Err(PasswordPolicyError::Common)
        );
        assert_eq!(
            check_password("长城在北方的山上很美丽", &u, None),
            Err(PasswordPolicyError::TooShort { min: 12 })
        );
        assert!(check_password("violet tractor enjoys rain", &u, None).is_ok());
    }
}
