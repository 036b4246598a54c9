use std::sync::Arc;

use zf_domain::{TokenId, UserId, Username};

use crate::{
    Authentication, CustomRole, Factors, Field, Operation, Permission, Requirement, Role, ScopeRule,
};

/// The authenticated caller of a request, resolved from its session before any policy decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub username: Username,
    /// The built-in role; for a holder of a custom role, the custom role's base, whose
    /// configured network ranges and second-factor rules apply.
    pub role: Role,
    /// A custom role the user holds instead of the built-in one: its permissions, scope and
    /// field visibility replace the base role's. Read afresh with the user on every request.
    pub custom_role: Option<Arc<CustomRole>>,
    /// The team the user works in, which team-scoped roles reach.
    pub team: Option<String>,
    /// A one-time password is still in force: only [`Operation::allowed_before_password_change`].
    pub must_change_password: bool,
    /// What this session proved: password only, a second factor (and how recently), or a
    /// password still waiting for its second factor.
    pub authentication: Authentication,
    /// The second factors the user has, to answer a refusal for want of one.
    pub factors: Factors,
    /// Set when the request came with an API token: it narrows what the owner may do.
    pub token: Option<TokenGrant>,
}

/// What an API token allows: a subset of its owner's permissions and, optionally, only the
/// clients it names. It never widens the owner's role or record scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenGrant {
    pub id: TokenId,
    pub permissions: Vec<Permission>,
    /// The token names its clients (kept by the store); otherwise it reaches what its owner does.
    pub listed_clients: bool,
}

impl Principal {
    pub fn may(&self, permission: Permission) -> bool {
        match &self.custom_role {
            Some(custom) => custom.may(permission),
            None => self.role.may(permission),
        }
    }

    pub fn visibility(&self, field: Field) -> Visibility {
        match &self.custom_role {
            Some(custom) => custom.visibility(field),
            None => self.role.visibility(field),
        }
    }

    /// Every permission of the role held.
    pub fn permissions(&self) -> &[Permission] {
        match &self.custom_role {
            Some(custom) => custom.permissions(),
            None => self.role.permissions(),
        }
    }

    pub fn scope_rule(&self) -> ScopeRule {
        match &self.custom_role {
            Some(custom) => custom.scope(),
            None => self.role.scope_rule(),
        }
    }

    /// The name of the role the user holds: the custom role's, or the built-in one's.
    pub fn role_name(&self) -> &str {
        match &self.custom_role {
            Some(custom) => custom.name().as_str(),
            None => self.role.as_str(),
        }
    }

    fn reach(&self) -> Within {
        reach(self.role, self.custom_role.as_deref(), self.team.as_deref())
    }
}

/// The clients a role reaches for its holder, before any API token narrows it.
pub fn reach(role: Role, custom_role: Option<&CustomRole>, team: Option<&str>) -> Within {
    let rule = custom_role.map_or(role.scope_rule(), CustomRole::scope);
    match rule {
        ScopeRule::All => Within::All,
        ScopeRule::Engagements => Within::EngagedOfOwner,
        ScopeRule::Assigned => Within::AssignedToOwner,
        ScopeRule::Team => match team {
            Some(_) => Within::TeamOfOwner,
            // The built-in supervisor of a firm without teams supervises all of it.
            None if custom_role.is_none() && role == Role::Supervisor => Within::All,
            None => Within::AssignedToOwner,
        },
    }
}

/// Which clients a user reaches, in words for the effective-permission view and access reviews.
pub fn client_scope_words(
    role: Role,
    custom_role: Option<&CustomRole>,
    team: Option<&str>,
) -> String {
    let reads = custom_role.map_or_else(
        || role.may(crate::role::CLIENT_READ),
        |c| c.may(crate::role::CLIENT_READ),
    );
    if !reads {
        return "none".to_owned();
    }
    match (reach(role, custom_role, team), team) {
        (Within::All, _) => "all".to_owned(),
        (Within::EngagedOfOwner, _) => "engagements".to_owned(),
        (Within::TeamOfOwner, Some(team)) => format!("team {team} and assigned"),
        (Within::AssignedToOwner | Within::TeamOfOwner, _) => "assigned".to_owned(),
    }
}

/// Which records a grant reaches. The store turns this into a row filter on every query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every record of the firm.
    All,
    /// Only records assigned to this user.
    AssignedTo(UserId),
    /// No records: operations that touch none (sign-in, documents).
    None,
    /// Only the clients of this user's audit engagements (审计员).
    Engaged(UserId),
    /// The clients of this user's team, and those assigned to the user. The store reads the
    /// team from the user's row in the same query, so a team change applies at once.
    Team(UserId),
    /// Only the clients an API token names, within what its owner's role reaches.
    Listed { token: TokenId, within: Within },
}

/// The owner's reach that a client-listing API token stays inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Within {
    All,
    AssignedToOwner,
    EngagedOfOwner,
    TeamOfOwner,
}

/// How much of a sensitive field the caller sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Hidden,
    Masked,
    Visible,
}

impl Visibility {
    pub const ALL: [Visibility; 3] = [Visibility::Hidden, Visibility::Masked, Visibility::Visible];

    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Hidden => "hidden",
            Visibility::Masked => "masked",
            Visibility::Visible => "visible",
        }
    }

    pub fn parse(s: &str) -> Option<Visibility> {
        Visibility::ALL.into_iter().find(|v| v.as_str() == s.trim())
    }
}

/// Proof that the policy allowed an operation. Its fields are private and [`decide`] is the only
/// constructor, so holding a `Grant` means the one policy decision has been made.
#[derive(Clone, Debug)]
pub struct Grant {
    operation: Operation,
    principal: Option<Principal>,
    scope: Scope,
}

impl Grant {
    pub fn operation(&self) -> Operation {
        self.operation
    }
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref()
    }
    pub fn scope(&self) -> Scope {
        self.scope
    }
    pub fn visibility(&self, field: Field) -> Visibility {
        self.principal
            .as_ref()
            .map_or(Visibility::Hidden, |p| p.visibility(field))
    }
    pub fn may(&self, permission: Permission) -> bool {
        self.principal.as_ref().is_some_and(|p| p.may(permission))
    }
}

/// Why the policy refused. The edge turns these into 401 and 403.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("sign in first")]
    NotSignedIn,
    #[error("your one-time password must be changed before anything else")]
    PasswordChangeRequired,
    #[error("your role ({role}) may not {operation}")]
    Forbidden {
        role: String,
        operation: &'static str,
    },
    #[error("your role ({role}) may not be used from this network address")]
    Network { role: String },
    #[error("complete the sign-in with your second factor first")]
    SecondFactorPending { factors: Factors },
    #[error("this API token does not allow {operation}")]
    NotForToken { operation: &'static str },
    #[error("your role requires a second factor: set up an authenticator before anything else")]
    MfaEnrolmentRequired,
    /// A critical operation without a recently verified second factor. `enrolled` says whether
    /// the user has an authenticator to verify with, or must set one up first.
    #[error("{operation} is a critical operation: verify your second factor again first")]
    StepUpRequired {
        operation: &'static str,
        enrolled: bool,
        factors: Factors,
    },
}

/// The one policy decision every request passes before it touches data.
pub fn decide(principal: Option<&Principal>, operation: Operation) -> Result<Grant, Denied> {
    let requirement = operation.requirement();
    if requirement == Requirement::Public {
        return Ok(Grant {
            operation,
            principal: principal.cloned(),
            scope: Scope::None,
        });
    }
    let principal = principal.ok_or(Denied::NotSignedIn)?;
    if principal.authentication == Authentication::SecondFactorPending
        && !operation.allowed_before_second_factor()
    {
        return Err(Denied::SecondFactorPending {
            factors: principal.factors,
        });
    }
    if principal.must_change_password && !operation.allowed_before_password_change() {
        return Err(Denied::PasswordChangeRequired);
    }
    let enrolment_required = principal.authentication
        == (Authentication::PasswordOnly {
            enrolment_required: true,
        });
    if enrolment_required && !operation.allowed_before_password_change() {
        return Err(Denied::MfaEnrolmentRequired);
    }
    if let Some(token) = &principal.token {
        let permitted = match requirement {
            Requirement::Permission(p) => token.permissions.contains(&p),
            _ => false,
        };
        if !permitted || !operation.open_to_api_tokens() {
            return Err(Denied::NotForToken {
                operation: operation.as_str(),
            });
        }
    }
    let scope = match requirement {
        Requirement::Public | Requirement::PasswordVerified | Requirement::SignedIn => Scope::None,
        Requirement::Permission(permission) => {
            if !principal.may(permission) {
                return Err(Denied::Forbidden {
                    role: principal.role_name().to_owned(),
                    operation: operation.as_str(),
                });
            }
            let listed = principal
                .token
                .as_ref()
                .filter(|t| t.listed_clients)
                .map(|t| t.id);
            let within = principal.reach();
            match listed {
                Some(token) => Scope::Listed { token, within },
                None => match within {
                    Within::All => Scope::All,
                    Within::AssignedToOwner => Scope::AssignedTo(principal.user_id),
                    Within::EngagedOfOwner => Scope::Engaged(principal.user_id),
                    Within::TeamOfOwner => Scope::Team(principal.user_id),
                },
            }
        }
    };
    if operation.needs_fresh_second_factor() {
        match principal.authentication {
            Authentication::MultiFactor { fresh: true } => {}
            Authentication::MultiFactor { fresh: false } => {
                return Err(Denied::StepUpRequired {
                    operation: operation.as_str(),
                    enrolled: true,
                    factors: principal.factors,
                })
            }
            Authentication::PasswordOnly { .. }
            | Authentication::SecondFactorPending
            | Authentication::ApiToken => {
                return Err(Denied::StepUpRequired {
                    operation: operation.as_str(),
                    enrolled: false,
                    factors: principal.factors,
                })
            }
        }
    }
    Ok(Grant {
        operation,
        principal: Some(principal.clone()),
        scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role) -> Principal {
        Principal {
            user_id: UserId::new_random(),
            username: Username::parse("zhangsan").unwrap(),
            role,
            custom_role: None,
            team: None,
            must_change_password: false,
            authentication: Authentication::MultiFactor { fresh: true },
            factors: Factors {
                totp: true,
                recovery_code: true,
                ..Factors::default()
            },
            token: None,
        }
    }

    #[test]
    fn anonymous_callers_reach_only_public_operations() {
        for op in Operation::ALL {
            let public = op.requirement() == Requirement::Public;
            assert_eq!(decide(None, op).is_ok(), public, "{op:?}");
        }
    }

    #[test]
    fn administrator_is_refused_client_data_and_accountant_is_not() {
        let admin = principal(Role::SystemAdmin);
        let accountant = principal(Role::Accountant);
        for op in [
            Operation::ClientList,
            Operation::ClientRead,
            Operation::ClientCreate,
        ] {
            assert!(matches!(
                decide(Some(&admin), op),
                Err(Denied::Forbidden { .. })
            ));
            let grant = decide(Some(&accountant), op).unwrap();
            assert_eq!(grant.scope(), Scope::AssignedTo(accountant.user_id));
        }
    }

    #[test]
    fn supervisors_reach_every_client() {
        let supervisor = principal(Role::Supervisor);
        let grant = decide(Some(&supervisor), Operation::ClientRead).unwrap();
        assert_eq!(grant.scope(), Scope::All);
    }

    #[test]
    fn a_one_time_password_allows_only_changing_it() {
        let mut p = principal(Role::Supervisor);
        p.must_change_password = true;
        assert!(decide(Some(&p), Operation::ChangeOwnPassword).is_ok());
        assert_eq!(
            decide(Some(&p), Operation::ClientRead).unwrap_err(),
            Denied::PasswordChangeRequired
        );
    }

    #[test]
    fn every_role_meets_every_operation_with_a_definite_answer() {
        // The full matrix: each cell must agree with the role's permission table.
        for role in Role::ALL {
            let p = principal(role);
            for op in Operation::ALL {
                let expected = match op.requirement() {
                    Requirement::Public | Requirement::PasswordVerified | Requirement::SignedIn => {
                        true
                    }
                    Requirement::Permission(perm) => role.may(perm),
                };
                assert_eq!(decide(Some(&p), op).is_ok(), expected, "{role} {op:?}");
            }
        }
    }

    #[test]
    fn a_password_waiting_for_its_second_factor_reaches_only_the_sign_in() {
        let mut p = principal(Role::Supervisor);
        p.authentication = Authentication::SecondFactorPending;
        for op in Operation::ALL {
            let open = matches!(
                op,
                Operation::PublicDocument
                    | Operation::Login
                    | Operation::PasskeyLogin
                    | Operation::LoginSecondFactor
                    | Operation::WhoAmI
                    | Operation::Logout
            );
            match decide(Some(&p), op) {
                Ok(_) => assert!(open, "{op:?} must wait for the second factor"),
                Err(e) => {
                    assert!(!open, "{op:?}: {e}");
                    assert_eq!(
                        e,
                        Denied::SecondFactorPending { factors: p.factors },
                        "{op:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_user_who_must_enrol_may_only_enrol_and_what_a_one_time_password_allows() {
        let mut p = principal(Role::SecurityAdmin);
        p.authentication = Authentication::PasswordOnly {
            enrolment_required: true,
        };
        assert!(decide(Some(&p), Operation::MfaEnrol).is_ok());
        assert!(decide(Some(&p), Operation::Logout).is_ok());
        assert!(decide(Some(&p), Operation::WhoAmI).is_ok());
        assert_eq!(
            decide(Some(&p), Operation::AlertList).unwrap_err(),
            Denied::MfaEnrolmentRequired
        );
        // Without the requirement, password-only users work as before, short of critical
        // operations, which need a factor they do not have.
        p.authentication = Authentication::PasswordOnly {
            enrolment_required: false,
        };
        assert!(decide(Some(&p), Operation::AlertList).is_ok());
        assert_eq!(
            decide(Some(&p), Operation::RoleChange).unwrap_err(),
            Denied::StepUpRequired {
                operation: "role_change",
                enrolled: false,
                factors: p.factors,
            }
        );
    }

    #[test]
    fn critical_operations_need_a_fresh_factor_and_others_do_not() {
        let mut p = principal(Role::Supervisor);
        p.authentication = Authentication::MultiFactor { fresh: false };
        assert!(decide(Some(&p), Operation::ClientRead).is_ok());
        assert_eq!(
            decide(Some(&p), Operation::ClientReveal).unwrap_err(),
            Denied::StepUpRequired {
                operation: "client_reveal",
                enrolled: true,
                factors: p.factors,
            }
        );
        // The permission is checked first: a role that may not do it is told so, not asked
        // for a factor.
        let mut auditor = principal(Role::Auditor);
        auditor.authentication = Authentication::MultiFactor { fresh: false };
        assert!(matches!(
            decide(Some(&auditor), Operation::ClientReveal),
            Err(Denied::Forbidden { .. })
        ));
        let critical: Vec<_> = Operation::ALL
            .into_iter()
            .filter(|op| op.needs_fresh_second_factor())
            .collect();
        assert_eq!(
            critical,
            [
                Operation::ErasureRequest,
                Operation::ErasureDecide,
                Operation::RoleChange,
                Operation::TeamChange,
                Operation::CustomRoleSave,
                Operation::CustomRoleDelete,
                Operation::TeamReviewAnswer,
                Operation::KeyRotate,
                Operation::KeyReencrypt,
                Operation::KeyReindex,
                Operation::ReassignmentDecide,
                Operation::ReviewManage,
                Operation::ClientReveal,
                Operation::RecoveryCodesRegenerate,
                Operation::UserSecurityKeyRemove,
                Operation::TokenCreate,
                Operation::ClientExport,
                Operation::BackupNow,
                Operation::RestoreTestRun
            ]
        );
    }

    #[test]
    fn a_token_narrows_its_owner_and_never_widens_them() {
        let token = zf_domain::TokenId::new_random();
        let mut p = principal(Role::Accountant);
        p.authentication = Authentication::ApiToken;
        p.token = Some(TokenGrant {
            id: token,
            permissions: vec![Permission::parse("client:read").unwrap()],
            listed_clients: true,
        });
        assert_eq!(
            decide(Some(&p), Operation::ClientRead).unwrap().scope(),
            Scope::Listed {
                token,
                within: Within::AssignedToOwner
            }
        );
        // The role may update clients, the token may not.
        assert!(p.role.may(Permission::new(
            crate::Resource::Client,
            crate::Action::Update
        )));
        assert_eq!(
            decide(Some(&p), Operation::ClientUpdate).unwrap_err(),
            Denied::NotForToken {
                operation: "client_update"
            }
        );
        // Nothing critical and nothing about identities, whatever the token lists.
        for op in [
            Operation::TokenCreate,
            Operation::OwnSessionList,
            Operation::ChangeOwnPassword,
            Operation::ClientExport,
        ] {
            assert!(decide(Some(&p), op).is_err(), "{op:?}");
        }
        // A permission the owner's role has lost is gone from the token too.
        p.role = Role::Sales;
        p.token.as_mut().unwrap().permissions =
            vec![Permission::parse("financial_record:read").unwrap()];
        assert!(matches!(
            decide(Some(&p), Operation::FinancialList),
            Err(Denied::Forbidden { .. })
        ));
    }
}
