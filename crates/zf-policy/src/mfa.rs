//! Who must sign in with a second factor, and how fresh a factor critical operations need.

use serde::Deserialize;

use crate::{Action, Role};

/// The multi-factor policy, from the `[mfa]` section of the configuration.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MfaPolicy {
    /// Roles that must enrol an authenticator before they may do anything else. By default,
    /// every administrator role and every role that may export or reveal data.
    pub required_roles: Vec<Role>,
    /// How long a verified second factor counts as fresh for critical operations (step-up).
    pub step_up_minutes: i64,
}

impl Default for MfaPolicy {
    fn default() -> Self {
        MfaPolicy {
            required_roles: Role::ALL
                .into_iter()
                .filter(|r| {
                    r.is_administrator()
                        || r.permissions()
                            .iter()
                            .any(|p| matches!(p.action, Action::Export | Action::Reveal))
                })
                .collect(),
            step_up_minutes: 5,
        }
    }
}

impl MfaPolicy {
    pub fn requires(&self, role: Role) -> bool {
        self.required_roles.contains(&role)
    }

    pub fn step_up_window_ms(&self) -> i64 {
        self.step_up_minutes.max(1) * 60_000
    }
}

/// Which second factors a user has, so a refusal can say what would answer it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Factors {
    /// A confirmed authenticator app (TOTP), with its recovery codes.
    pub totp: bool,
    /// At least one security key or passkey (WebAuthn).
    pub security_key: bool,
}

impl Factors {
    pub fn any(self) -> bool {
        self.totp || self.security_key
    }
}

/// How far the caller has authenticated on this session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authentication {
    /// The password was right; the second factor is still owed. Nothing but completing the
    /// sign-in (or abandoning it) is allowed.
    SecondFactorPending,
    /// A password only: the user has no authenticator. When the MFA policy requires one for
    /// their role, enrolling is all they may do.
    PasswordOnly { enrolment_required: bool },
    /// The user has an authenticator, so the session began with a password and a second
    /// factor; `fresh` while the last factor verified on this session is within the step-up
    /// window.
    MultiFactor { fresh: bool },
    /// An API token: no second factor stands behind it, so no critical operation either.
    ApiToken,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_default_administrators_and_whoever_may_export_or_reveal_need_a_second_factor() {
        let policy = MfaPolicy::default();
        for role in Role::ALL {
            let expected = !matches!(role, Role::Auditor);
            assert_eq!(policy.requires(role), expected, "{role}");
        }
        assert_eq!(policy.step_up_window_ms(), 5 * 60_000);
    }

    #[test]
    fn the_section_is_read_with_unknown_keys_refused() {
        let p: MfaPolicy =
            serde_json::from_str(r#"{"required_roles": ["auditor"], "step_up_minutes": 2}"#)
                .unwrap();
        assert_eq!(p.required_roles, vec![Role::Auditor]);
        assert!(serde_json::from_str::<MfaPolicy>(r#"{"step_up": 2}"#).is_err());
    }
}
