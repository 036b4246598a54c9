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
                .filter(|r| MfaPolicy::should_require(*r))
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
    /// Whether `role` belongs among the required roles: it administers, or it may export or
    /// reveal data. The default requires exactly these; the posture check fails a policy that
    /// leaves one out.
    pub fn should_require(role: Role) -> bool {
        role.is_administrator()
            || role
                .permissions()
                .iter()
                .any(|p| matches!(p.action, Action::Export | Action::Reveal))
    }

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

/// Which second factors a user has and the MFA policy accepts for their role: the one list
/// that decides whether sign-in asks for a second factor (and whether a role that requires
/// one is satisfied), and that a refusal offers as the ways to answer it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Factors {
    /// A confirmed authenticator app (TOTP).
    pub totp: bool,
    /// Unused recovery codes, which come with the authenticator app.
    pub recovery_code: bool,
    /// A confirmed address that receives one-time codes by e-mail, for a role whose policy
    /// accepts such codes (`[mfa] code_roles`).
    pub email: bool,
    /// A confirmed number that receives one-time codes by SMS, likewise.
    pub sms: bool,
    /// At least one security key or passkey (WebAuthn).
    pub security_key: bool,
}

impl Factors {
    /// Whether the user has any second factor at all: then sign-in asks for it, and a role
    /// that requires one is satisfied.
    pub fn any(self) -> bool {
        self.totp || self.email || self.sms || self.security_key
    }

    /// Whether one of them is a code sent by e-mail or SMS, which must be asked for first.
    pub fn sent_code(self) -> bool {
        self.email || self.sms
    }

    /// The names of the methods, in the order offered: `totp`, `recovery_code`, `email`,
    /// `sms`, `security_key`.
    pub fn methods(self) -> Vec<&'static str> {
        [
            (self.totp, "totp"),
            (self.recovery_code, "recovery_code"),
            (self.email, "email"),
            (self.sms, "sms"),
            (self.security_key, "security_key"),
        ]
        .into_iter()
        .filter_map(|(has, name)| has.then_some(name))
        .collect()
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
    fn factors_list_every_method_in_one_order_and_any_counts_a_real_factor() {
        assert!(!Factors::default().any());
        assert!(Factors::default().methods().is_empty());
        let all = Factors {
            totp: true,
            recovery_code: true,
            email: true,
            sms: true,
            security_key: true,
        };
        assert_eq!(
            all.methods(),
            ["totp", "recovery_code", "email", "sms", "security_key"]
        );
        for one in [
            Factors {
                totp: true,
                ..Factors::default()
            },
            Factors {
                email: true,
                ..Factors::default()
            },
            Factors {
                sms: true,
                ..Factors::default()
            },
            Factors {
                security_key: true,
                ..Factors::default()
            },
        ] {
            assert!(one.any(), "{one:?}");
        }
        // Recovery codes alone are no factor: they come with, and go with, the authenticator.
        assert!(!Factors {
            recovery_code: true,
            ..Factors::default()
        }
        .any());
        assert!(Factors {
            sms: true,
            ..Factors::default()
        }
        .sent_code());
        assert!(!Factors {
            totp: true,
            security_key: true,
            ..Factors::default()
        }
        .sent_code());
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
