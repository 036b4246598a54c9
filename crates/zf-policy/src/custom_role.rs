//! Roles a firm composes itself from the permissions the built-in roles are made of.
//!
//! A custom role is client work only: its permissions are drawn from the client-data resources,
//! and it builds on one of the four client roles (its *base*), whose per-role rules in the
//! configuration — network ranges, whether a second factor is required — it follows. The three
//! administrators (三员) stay built in and cannot be composed, so no custom role can ever join
//! administration with client data.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Field, Permission, Role, Visibility};

/// How far a role reaches among the firm's clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeRule {
    /// The clients assigned to the user.
    Assigned,
    /// The clients of the user's team, and those assigned to the user. A user with no team
    /// reaches only their assigned clients — except the built-in supervisor, who without a team
    /// supervises the whole firm (a small firm has one supervisor and no teams).
    Team,
    /// Every client of the firm.
    All,
    /// The clients of the user's audit engagements.
    Engagements,
}

impl ScopeRule {
    pub const ALL: [ScopeRule; 4] = [
        ScopeRule::Assigned,
        ScopeRule::Team,
        ScopeRule::All,
        ScopeRule::Engagements,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ScopeRule::Assigned => "assigned",
            ScopeRule::Team => "team",
            ScopeRule::All => "all",
            ScopeRule::Engagements => "engagements",
        }
    }

    pub fn parse(s: &str) -> Option<ScopeRule> {
        ScopeRule::ALL.into_iter().find(|r| r.as_str() == s.trim())
    }
}

/// The name of a custom role: 2–32 lowercase ASCII letters, digits, `_` or `-`, starting with a
/// letter, and never the name of a built-in role.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleName(String);

impl RoleName {
    pub fn parse(s: &str) -> Result<RoleName, CustomRoleError> {
        let s = s.trim();
        let well_formed = (2..=32).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !well_formed {
            return Err(CustomRoleError::Name(s.chars().take(40).collect()));
        }
        if Role::parse(s).is_ok() {
            return Err(CustomRoleError::BuiltInName(s.to_owned()));
        }
        Ok(RoleName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a custom role was refused. Each message says what to change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CustomRoleError {
    #[error("'{0}' is not a role name: use 2–32 lowercase letters, digits, '_' or '-', starting with a letter")]
    Name(String),
    #[error("'{0}' is a built-in role; choose another name")]
    BuiltInName(String),
    #[error("a role's label is 1–40 characters")]
    Label,
    #[error("a custom role builds on a client role (supervisor, accountant, auditor or sales); the three administrators (三员) are built in and cannot be composed")]
    AdministratorBase,
    #[error("custom roles are for client work: '{0}' belongs to the administrators (三员分立) and cannot be combined with client data")]
    AdministrativePermission(String),
    #[error("unknown permission '{0}'; the permissions are those of the built-in roles, as resource:action")]
    UnknownPermission(String),
    #[error("a role needs at least one permission")]
    NoPermissions,
    #[error("unknown field '{0}'; the fields are legal_rep_id_number, contact_mobile, contact_id_number, bank_account")]
    UnknownField(String),
}

/// The definition of a custom role as it is stored and as the API and the role editor send it.
/// Fields the definition does not name are hidden: deny by default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomRoleSpec {
    pub label: String,
    pub base: Role,
    pub permissions: Vec<String>,
    pub scope: ScopeRule,
    #[serde(default)]
    pub visibility: BTreeMap<String, Visibility>,
}

/// A custom role that has passed every check: it can only hold client permissions, builds on a
/// client role, and names each field's visibility.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomRole {
    name: RoleName,
    label: String,
    base: Role,
    permissions: Vec<Permission>,
    scope: ScopeRule,
    visibility: [Visibility; Field::ALL.len()],
}

impl CustomRole {
    pub fn new(name: RoleName, spec: &CustomRoleSpec) -> Result<CustomRole, CustomRoleError> {
        let label = spec.label.trim();
        if label.is_empty() || label.chars().count() > 40 {
            return Err(CustomRoleError::Label);
        }
        if spec.base.is_administrator() {
            return Err(CustomRoleError::AdministratorBase);
        }
        let mut permissions = Vec::with_capacity(spec.permissions.len());
        for name in &spec.permissions {
            let permission = Permission::parse(name.trim())
                .ok_or_else(|| CustomRoleError::UnknownPermission(truncated(name)))?;
            if !permission.resource.is_client_data() {
                return Err(CustomRoleError::AdministrativePermission(permission.name()));
            }
            if !permissions.contains(&permission) {
                permissions.push(permission);
            }
        }
        if permissions.is_empty() {
            return Err(CustomRoleError::NoPermissions);
        }
        permissions.sort_by_key(|p| p.name());
        let mut visibility = [Visibility::Hidden; Field::ALL.len()];
        for (field, seen) in &spec.visibility {
            let index = Field::ALL
                .iter()
                .position(|f| f.as_str() == field.trim())
                .ok_or_else(|| CustomRoleError::UnknownField(truncated(field)))?;
            visibility[index] = *seen;
        }
        Ok(CustomRole {
            name,
            label: label.to_owned(),
            base: spec.base,
            permissions,
            scope: spec.scope,
            visibility,
        })
    }

    pub fn name(&self) -> &RoleName {
        &self.name
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// The client role whose configured network ranges and second-factor rules apply.
    pub fn base(&self) -> Role {
        self.base
    }

    pub fn permissions(&self) -> &[Permission] {
        &self.permissions
    }

    pub fn scope(&self) -> ScopeRule {
        self.scope
    }

    pub fn may(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }

    pub fn visibility(&self, field: Field) -> Visibility {
        Field::ALL
            .iter()
            .position(|f| *f == field)
            .map_or(Visibility::Hidden, |i| self.visibility[i])
    }

    /// The definition back as the editor and the store hold it.
    pub fn spec(&self) -> CustomRoleSpec {
        CustomRoleSpec {
            label: self.label.clone(),
            base: self.base,
            permissions: self.permissions.iter().map(|p| p.name()).collect(),
            scope: self.scope,
            visibility: Field::ALL
                .iter()
                .zip(self.visibility)
                .map(|(f, v)| (f.as_str().to_owned(), v))
                .collect(),
        }
    }
}

/// The role a user holds, as a permission change names it: a built-in role, or a custom role
/// with the base it builds on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeldRole {
    BuiltIn(Role),
    Custom { name: RoleName, base: Role },
}

impl HeldRole {
    pub fn of(role: Role, custom_role: Option<&CustomRole>) -> HeldRole {
        match custom_role {
            Some(c) => HeldRole::Custom {
                name: c.name().clone(),
                base: c.base(),
            },
            None => HeldRole::BuiltIn(role),
        }
    }

    /// The built-in role whose configured rules apply.
    pub fn base(&self) -> Role {
        match self {
            HeldRole::BuiltIn(role) | HeldRole::Custom { base: role, .. } => *role,
        }
    }

    pub fn custom_name(&self) -> Option<&RoleName> {
        match self {
            HeldRole::BuiltIn(_) => None,
            HeldRole::Custom { name, .. } => Some(name),
        }
    }

    pub fn is_administrator(&self) -> bool {
        matches!(self, HeldRole::BuiltIn(role) if role.is_administrator())
    }
}

impl fmt::Display for HeldRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeldRole::BuiltIn(role) => write!(f, "{role}"),
            HeldRole::Custom { name, .. } => write!(f, "{name}"),
        }
    }
}

fn truncated(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Action, Resource};

    fn spec(permissions: &[&str]) -> CustomRoleSpec {
        CustomRoleSpec {
            label: "外勤会计".into(),
            base: Role::Accountant,
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            scope: ScopeRule::Team,
            visibility: BTreeMap::from([
                ("legal_rep_id_number".to_owned(), Visibility::Masked),
                ("contact_mobile".to_owned(), Visibility::Visible),
            ]),
        }
    }

    fn name(s: &str) -> RoleName {
        RoleName::parse(s).unwrap()
    }

    #[test]
    fn a_role_composed_of_client_permissions_is_accepted_and_round_trips() {
        let role = CustomRole::new(
            name("field-accountant"),
            &spec(&["client:read", "financial_record:read", "client:read"]),
        )
        .unwrap();
        assert!(role.may(Permission::new(Resource::FinancialRecord, Action::Read)));
        assert!(!role.may(Permission::new(Resource::FinancialRecord, Action::Update)));
        assert_eq!(role.permissions().len(), 2, "duplicates are dropped");
        assert_eq!(role.visibility(Field::LegalRepIdNumber), Visibility::Masked);
        assert_eq!(role.visibility(Field::ContactMobile), Visibility::Visible);
        // Fields the definition does not name stay hidden.
        assert_eq!(role.visibility(Field::BankAccount), Visibility::Hidden);
        assert_eq!(
            CustomRole::new(name("field-accountant"), &role.spec()),
            Ok(role)
        );
    }

    #[test]
    fn administrator_permissions_and_bases_are_refused_with_a_reason() {
        for admin in [
            "role_assignment:update",
            "audit_log:read",
            "user:create",
            "backup:create",
        ] {
            let err = CustomRole::new(name("mixed"), &spec(&["client:read", admin])).unwrap_err();
            assert_eq!(err, CustomRoleError::AdministrativePermission(admin.into()));
            assert!(err.to_string().contains("三员分立"), "{err}");
        }
        let mut admin_base = spec(&["client:read"]);
        admin_base.base = Role::SecurityAdmin;
        assert_eq!(
            CustomRole::new(name("mixed"), &admin_base),
            Err(CustomRoleError::AdministratorBase)
        );
    }

    #[test]
    fn names_labels_permissions_and_fields_are_checked() {
        assert!(matches!(
            RoleName::parse("accountant"),
            Err(CustomRoleError::BuiltInName(_))
        ));
        for bad in ["", "a", "Tax", "1tax", "tax clerk", "税务", &"x".repeat(33)] {
            assert!(
                matches!(RoleName::parse(bad), Err(CustomRoleError::Name(_))),
                "{bad}"
            );
        }
        assert_eq!(
            CustomRole::new(name("r1"), &spec(&["client:fly"])),
            Err(CustomRoleError::UnknownPermission("client:fly".into()))
        );
        assert_eq!(
            CustomRole::new(name("r1"), &spec(&[])),
            Err(CustomRoleError::NoPermissions)
        );
        let mut no_label = spec(&["client:read"]);
        no_label.label = "  ".into();
        assert_eq!(
            CustomRole::new(name("r1"), &no_label),
            Err(CustomRoleError::Label)
        );
        let mut bad_field = spec(&["client:read"]);
        bad_field
            .visibility
            .insert("salary".into(), Visibility::Visible);
        assert_eq!(
            CustomRole::new(name("r1"), &bad_field),
            Err(CustomRoleError::UnknownField("salary".into()))
        );
    }

    #[test]
    fn the_stored_form_is_plain_json_that_refuses_unknown_keys() {
        let role = CustomRole::new(name("clerk"), &spec(&["client:read"])).unwrap();
        let json = serde_json::to_string(&role.spec()).unwrap();
        assert!(json.contains("\"scope\":\"team\""), "{json}");
        assert!(json.contains("\"base\":\"accountant\""), "{json}");
        let back: CustomRoleSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(CustomRole::new(name("clerk"), &back).unwrap(), role);
        assert!(serde_json::from_str::<CustomRoleSpec>(
            r#"{"label":"x","base":"sales","permissions":[],"scope":"all","admin":true}"#
        )
        .is_err());
    }
}
