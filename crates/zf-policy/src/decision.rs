use zf_domain::{UserId, Username};

use crate::{Field, Operation, Permission, Requirement, Role};

/// The authenticated caller of a request, resolved from its session before any policy decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub username: Username,
    pub role: Role,
    /// A one-time password is still in force: only [`Operation::allowed_before_password_change`].
    pub must_change_password: bool,
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
}

/// How much of a sensitive field the caller sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visibility {
    Hidden,
    Masked,
    Visible,
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
            .map_or(Visibility::Hidden, |p| p.role.visibility(field))
    }
    pub fn may(&self, permission: Permission) -> bool {
        self.principal
            .as_ref()
            .is_some_and(|p| p.role.may(permission))
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
    Forbidden { role: Role, operation: &'static str },
    #[error("your role ({role}) may not be used from this network address")]
    Network { role: Role },
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
    if principal.must_change_password && !operation.allowed_before_password_change() {
        return Err(Denied::PasswordChangeRequired);
    }
    let scope = match requirement {
        Requirement::Public | Requirement::SignedIn => Scope::None,
        Requirement::Permission(permission) => {
            if !principal.role.may(permission) {
                return Err(Denied::Forbidden {
                    role: principal.role,
                    operation: operation.as_str(),
                });
            }
            if principal.role.client_scope_is_all() {
                Scope::All
            } else {
                Scope::AssignedTo(principal.user_id)
            }
        }
    };
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
            must_change_password: false,
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
                    Requirement::Public | Requirement::SignedIn => true,
                    Requirement::Permission(perm) => role.may(perm),
                };
                assert_eq!(decide(Some(&p), op).is_ok(), expected, "{role} {op:?}");
            }
        }
    }
}
