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
    /// Roles for which a one-time code sent by e-mail or SMS counts as a second factor. Such
    /// codes are the weakest factor (NIST SP 800-63B restricts SMS and does not accept e-mail
    /// as an out-of-band authenticator), so by default administrators must use an
    /// authenticator app instead.
    pub code_roles: Vec<Role>,
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
            code_roles: Role::ALL
                .into_iter()
                .filter(|r| !r.is_administrator())
                .collect(),
        }
    }
}

impl MfaPolicy {
    pub fn requires(&self, role: Role) -> bool {
        self.required_roles.contains(&role)
    }

    /// Whether a one-time code by e-mail or SMS satisfies the second factor for `role`.
    pub fn accepts_codes(&self, role: Role) -> bool {
        self.code_roles.contains(&role)
    }

    pub fn step_up_window_ms(&self) -> i64 {
        self.step_up_minutes.max(1) * 60_000
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
    fn by_default_codes_count_for_every_role_but_the_administrators() {
        let policy = MfaPolicy::default();
        for role in Role::ALL {
            assert_eq!(
                policy.accepts_codes(role),
                !role.is_administrator(),
                "{role}"
            );
        }
        let p: MfaPolicy = serde_json::from_str(r#"{"code_roles": []}"#).unwrap();
        assert!(Role::ALL.into_iter().all(|r| !p.accepts_codes(r)));
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
