//! Separation of duties (三员分立) for role changes made through the product.

use crate::{Principal, Role};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SeparationError {
    #[error("nobody may change their own role")]
    OwnRole,
    #[error("granting or taking away an administrator role ({0}) needs a second person's approval; an operator does it with `zhangfang user set-role` on the server")]
    AdministratorRole(Role),
    #[error("the user already holds the role {0}")]
    Unchanged(Role),
}

/// Whether `actor` may move `target` (currently `from`) to `to`. Administrator roles never
/// change through the API: granting one is the riskiest change there is (DESIGN.md,
/// invariant 6), and until dual control exists it stays with the operator.
pub fn check_role_change(
    actor: &Principal,
    target: &str,
    from: Role,
    to: Role,
) -> Result<(), SeparationError> {
    if actor.username.as_str() == target {
        return Err(SeparationError::OwnRole);
    }
    if from == to {
        return Err(SeparationError::Unchanged(to));
    }
    if let Some(admin) = [from, to].into_iter().find(|r| r.is_administrator()) {
        return Err(SeparationError::AdministratorRole(admin));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use zf_domain::{UserId, Username};

    fn security_admin() -> Principal {
        Principal {
            user_id: UserId::new_random(),
            username: Username::parse("anquan").unwrap(),
            role: Role::SecurityAdmin,
            must_change_password: false,
            authentication: crate::Authentication::MultiFactor { fresh: true },
            factors: crate::Factors::default(),
            token: None,
        }
    }

    #[test]
    fn job_transfers_between_client_roles_are_allowed() {
        assert_eq!(
            check_role_change(&security_admin(), "lisi", Role::Accountant, Role::Sales),
            Ok(())
        );
    }

    #[test]
    fn administrator_roles_and_own_role_are_refused() {
        let a = security_admin();
        assert_eq!(
            check_role_change(&a, "anquan", Role::SecurityAdmin, Role::Supervisor),
            Err(SeparationError::OwnRole)
        );
        for admin in [Role::SystemAdmin, Role::SecurityAdmin, Role::AuditAdmin] {
            assert_eq!(
                check_role_change(&a, "lisi", Role::Accountant, admin),
                Err(SeparationError::AdministratorRole(admin))
            );
            assert_eq!(
                check_role_change(&a, "lisi", admin, Role::Accountant),
                Err(SeparationError::AdministratorRole(admin))
            );
        }
        assert_eq!(
            check_role_change(&a, "lisi", Role::Sales, Role::Sales),
            Err(SeparationError::Unchanged(Role::Sales))
        );
    }
}
