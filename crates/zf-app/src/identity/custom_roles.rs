//! Custom roles: the security administrator composes a role from the permissions the built-in
//! roles are made of. Saving or deleting one is a permission change, audited with its reason;
//! holders get an edited role on their next request, because the role is read with the user.

use zf_audit::{AuditAction, AuditEvent, Outcome};
use zf_policy::{CustomRole, CustomRoleSpec, Grant, Role, RoleName, ScopeRule, Visibility};
use zf_store::CustomRoleRow;

use super::roles::reason;
use crate::{actor, now_ms, App, AppError, RequestMeta};

/// A custom role as the API and the role editor show it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CustomRoleView {
    pub name: String,
    pub label: String,
    /// The built-in client role whose network ranges and second-factor rules apply.
    pub base: String,
    /// `resource:action`, e.g. `financial_record:read`.
    pub permissions: Vec<String>,
    /// `assigned`, `team`, `all` or `engagements`.
    pub scope: String,
    /// Per sensitive field: `visible`, `masked` or `hidden`.
    pub visibility: std::collections::BTreeMap<String, String>,
    /// Users holding the role now.
    pub holders: i64,
    /// Send it back with a change, so a concurrent edit is refused instead of overwritten.
    pub version: i64,
    pub updated_at: i64,
}

/// What the editor sends: the definition, the version it edits (absent for a new role) and why.
/// Fields it does not name are hidden.
#[derive(Clone, Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomRoleInput {
    pub label: String,
    /// `supervisor`, `accountant`, `auditor` or `sales`.
    pub base: String,
    pub permissions: Vec<String>,
    /// `assigned`, `team`, `all` or `engagements`.
    pub scope: String,
    #[serde(default)]
    pub visibility: std::collections::BTreeMap<String, String>,
    pub version: Option<i64>,
    pub reason: String,
}

impl CustomRoleInput {
    fn spec(&self) -> Result<CustomRoleSpec, AppError> {
        let base = Role::parse(&self.base).map_err(|e| AppError::Invalid(e.to_string()))?;
        let scope = ScopeRule::parse(&self.scope).ok_or_else(|| {
            AppError::Invalid("scope is one of assigned, team, all, engagements".into())
        })?;
        let visibility = self
            .visibility
            .iter()
            .map(|(field, seen)| {
                Visibility::parse(seen)
                    .map(|v| (field.clone(), v))
                    .ok_or_else(|| {
                        AppError::Invalid(format!(
                            "{field}: visibility is one of hidden, masked, visible"
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(CustomRoleSpec {
            label: self.label.clone(),
            base,
            permissions: self.permissions.clone(),
            scope,
            visibility,
        })
    }
}

impl From<&CustomRoleRow> for CustomRoleView {
    fn from(row: &CustomRoleRow) -> Self {
        let spec = row.role.spec();
        CustomRoleView {
            name: row.role.name().to_string(),
            label: spec.label,
            base: spec.base.as_str().to_owned(),
            permissions: spec.permissions,
            scope: spec.scope.as_str().to_owned(),
            visibility: spec
                .visibility
                .into_iter()
                .map(|(field, seen)| (field, seen.as_str().to_owned()))
                .collect(),
            holders: row.holders,
            version: row.version,
            updated_at: row.updated_at_ms,
        }
    }
}

impl App {
    pub async fn custom_roles(&self) -> Result<Vec<CustomRoleView>, AppError> {
        Ok(self
            .store
            .custom_roles()
            .await?
            .iter()
            .map(CustomRoleView::from)
            .collect())
    }

    pub async fn custom_role(&self, name: &str) -> Result<CustomRoleView, AppError> {
        let name = RoleName::parse(name).map_err(|_| AppError::NotFound)?;
        self.store
            .custom_roles()
            .await?
            .iter()
            .find(|r| r.role.name() == &name)
            .map(CustomRoleView::from)
            .ok_or(AppError::NotFound)
    }

    /// Creates the role, or changes what it grants if `input.version` names the version being
    /// edited. Anything a custom role may not hold is refused with the reason, and nothing is
    /// stored.
    pub async fn custom_role_save(
        &self,
        grant: &Grant,
        name: &str,
        input: &CustomRoleInput,
        meta: &RequestMeta,
    ) -> Result<CustomRoleView, AppError> {
        let why = reason(&input.reason)?;
        let name = RoleName::parse(name).map_err(|e| AppError::Invalid(e.to_string()))?;
        let role = CustomRole::new(name.clone(), &input.spec()?)
            .map_err(|e| AppError::Invalid(e.to_string()))?;
        let spec = role.spec();
        let grants = format!(
            "{} ({}): base {}, scope {}, permissions {}, fields {}",
            role.name(),
            spec.label,
            spec.base,
            spec.scope.as_str(),
            spec.permissions.join(","),
            spec.visibility
                .iter()
                .map(|(f, v)| format!("{f}={}", v.as_str()))
                .collect::<Vec<_>>()
                .join(",")
        );
        let event = AuditEvent::new(
            now_ms(),
            actor(grant, meta),
            AuditAction::RoleDefined,
            Outcome::Success,
        )
        .on("role", name.as_str())
        .detail(format!("{grants}: {why}"));
        self.store
            .custom_role_put(&role, input.version, now_ms(), event)
            .await?;
        self.custom_role(name.as_str()).await
    }

    /// Deletes a role nobody holds; while someone does, the answer says how many to move first.
    pub async fn custom_role_delete(
        &self,
        grant: &Grant,
        name: &str,
        why: &str,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        let why = reason(why)?;
        let name = RoleName::parse(name).map_err(|_| AppError::NotFound)?;
        let event = AuditEvent::new(
            now_ms(),
            actor(grant, meta),
            AuditAction::RoleDeleted,
            Outcome::Success,
        )
        .on("role", name.as_str())
        .detail(why);
        self.store.custom_role_delete(&name, event).await?;
        Ok(())
    }
}

/// A built-in role as the policy defines it, beside the custom roles: the whole policy on one
/// screen.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct BuiltInRoleView {
    pub name: String,
    pub label: String,
    /// One of the three administrators (三员), who never touch client data.
    pub administrator: bool,
    pub permissions: Vec<String>,
    /// `assigned`, `team`, `all` or `engagements`.
    pub scope: String,
    pub visibility: std::collections::BTreeMap<String, String>,
}

/// Every role: the built-in ones and the firm's own.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RoleCatalog {
    pub built_in: Vec<BuiltInRoleView>,
    pub custom: Vec<CustomRoleView>,
    /// The permissions custom roles are composed from, as `resource:action`.
    pub composable_permissions: Vec<String>,
}

impl App {
    pub async fn role_catalog(&self) -> Result<RoleCatalog, AppError> {
        let built_in = Role::ALL
            .into_iter()
            .map(|role| BuiltInRoleView {
                name: role.as_str().to_owned(),
                label: role.label_zh().to_owned(),
                administrator: role.is_administrator(),
                permissions: role.permissions().iter().map(|p| p.name()).collect(),
                scope: role.scope_rule().as_str().to_owned(),
                visibility: zf_policy::Field::ALL
                    .into_iter()
                    .map(|f| {
                        (
                            f.as_str().to_owned(),
                            role.visibility(f).as_str().to_owned(),
                        )
                    })
                    .collect(),
            })
            .collect();
        Ok(RoleCatalog {
            built_in,
            custom: self.custom_roles().await?,
            composable_permissions: zf_policy::Permission::composable()
                .into_iter()
                .map(|p| p.name())
                .collect(),
        })
    }
}
