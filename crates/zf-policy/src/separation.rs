//! Separation of duties (三员分立) for role changes made through the product.

use crate::{HeldRole, Principal};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SeparationError {
    #[error("nobody may change their own role")]
    OwnRole,
    #[error("granting or taking away an administrator role ({0}) needs a second person's approval; an operator does it with `zhangfang user set-role` on the server")]
    AdministratorRole(String),
    #[error("the user already holds the role {0}")]
    Unchanged(String),
}

/// Whether `actor` may move `target` (currently `from`) to `to`. Administrator roles never
/// change through the API: granting one is the riskiest change there is (DESIGN.md,
/// invariant 6), and until dual control exists it stays with the operator.
pub fn check_role_change(
    actor: &Principal,
    target: &str,
    from: &HeldRole,
    to: &HeldRole,
) -> Result<(), SeparationError> {
    if actor.username.as_str() == target {
        return Err(SeparationError::OwnRole);
    }
    if from == to {
        return Err(SeparationError::Unchanged(to.to_string()));
    }
    if let Some(admin) = [from, to].into_iter().find(|r| r.is_administrator()) {
        return Err(SeparationError::AdministratorRole(admin.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Role, RoleName};
    use zf_domain::{UserId, Username};

    fn security_admin() -> Principal {
        Principal {
            user_id: UserId::new_random(),
            username: Username::parse("anquan").unwrap(),
            role: Role::SecurityAdmin,
            custom_role: None,
            team: None,
            must_change_password: false,
            authentication: crate::Authentication::MultiFactor { fresh: true },
            factors: crate::Factors::default(),
            token: None,
        }
    }

    fn held(role: Role) -> HeldRole {
        HeldRole::BuiltIn(role)
    }

    #[test]
    fn job_transfers_between_client_roles_are_allowed() {
        let a = security_admin();
        assert_eq!(
            check_role_change(&a, "lisi", &held(Role::Accountant), &held(Role::Sales)),
            Ok(())
        );
        let clerk = HeldRole::Custom {
            name: RoleName::parse("tax-clerk").unwrap(),
            base: Role::Accountant,
        };
        assert_eq!(
            check_role_change(&a, "lisi", &held(Role::Accountant), &clerk),
            Ok(())
        );
        assert_eq!(
            check_role_change(&a, "lisi", &clerk, &clerk),
            Err(SeparationError::Unchanged("tax-clerk".into()))
        );
    }

    #[test]
    fn administrator_roles_and_own_role_are_refused() {
        let a = security_admin();
        assert_eq!(
            check_role_change(
                &a,
                "anquan",
                &held(Role::SecurityAdmin),
                &held(Role::Supervisor)
            ),
            Err(SeparationError::OwnRole)
        );
        for admin in [Role::SystemAdmin, Role::SecurityAdmin, Role::AuditAdmin] {
            assert_eq!(
                check_role_change(&a, "lisi", &held(Role::Accountant), &held(admin)),
                Err(SeparationError::AdministratorRole(admin.to_string()))
            );
            assert_eq!(
                check_role_change(&a, "lisi", &held(admin), &held(Role::Accountant)),
                Err(SeparationError::AdministratorRole(admin.to_string()))
            );
        }
        assert_eq!(
            check_role_change(&a, "lisi", &held(Role::Sales), &held(Role::Sales)),
            Err(SeparationError::Unchanged("sales".into()))
        );
    }
}
