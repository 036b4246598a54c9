use zf_audit::{Actor, AuditAction, AuditEvent, Outcome};
use zf_domain::{ShortText, Username};
use zf_policy::{check_role_change, client_scope_words, Field, Grant, HeldRole, Role, RoleName};

use crate::{actor, now_ms, App, AppError, RequestMeta};

/// A reason is part of every permission change's history: who, when, why.
pub(crate) fn reason(text: &str) -> Result<String, AppError> {
    let t = text.trim();
    if t.is_empty() || t.chars().count() > 200 {
        return Err(AppError::Invalid(
            "give a reason for the change, at most 200 characters".into(),
        ));
    }
    Ok(t.chars().filter(|c| !c.is_control()).collect())
}

impl App {
    /// The role a name stands for: a built-in role, or a custom role that exists now.
    pub async fn held_role_named(&self, name: &str) -> Result<HeldRole, AppError> {
        if let Ok(role) = Role::parse(name) {
            return Ok(HeldRole::BuiltIn(role));
        }
        let unknown = || {
            AppError::Invalid(format!(
                "unknown role '{}'; the built-in roles are {} and the custom roles are listed at /api/v1/roles",
                name.trim().chars().take(40).collect::<String>(),
                Role::ALL.map(Role::as_str).join(", ")
            ))
        };
        let wanted = RoleName::parse(name).map_err(|_| unknown())?;
        self.store
            .custom_roles()
            .await?
            .into_iter()
            .find(|r| r.role.name() == &wanted)
            .map(|r| HeldRole::of(r.role.base(), Some(&r.role)))
            .ok_or_else(unknown)
    }

    /// A job transfer made by the security administrator. It takes effect on the user's very
    /// next request: the change ends their sessions, so the new role starts with a new sign-in
    /// and a new session id.
    pub async fn change_role(
        &self,
        grant: &Grant,
        username: &Username,
        to: &str,
        why: &str,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        let why = reason(why)?;
        let principal = grant.principal().ok_or(AppError::NotFound)?;
        let user = self
            .store
            .user_by_username(username)
            .await?
            .ok_or(AppError::NotFound)?;
        let to = self.held_role_named(to).await?;
        let from = user.held_role();
        check_role_change(principal, username.as_str(), &from, &to)
            .map_err(|e| AppError::Invalid(e.to_string()))?;
        self.set_role(username, &from, &to, &why, actor(grant, meta))
            .await
    }

    /// The operator's path on the server itself, for administrator roles too; audited alike.
    /// Returns the role the user held before.
    pub async fn set_role_as_operator(
        &self,
        username: &Username,
        to: &str,
        why: &str,
        operator: Actor,
    ) -> Result<HeldRole, AppError> {
        let why = reason(why)?;
        let user = self
            .store
            .user_by_username(username)
            .await?
            .ok_or(AppError::NotFound)?;
        let to = self.held_role_named(to).await?;
        let from = user.held_role();
        if from == to {
            return Err(AppError::Invalid(format!(
                "{} already holds the role {to}",
                username.as_str(),
            )));
        }
        self.set_role(username, &from, &to, &why, operator).await?;
        Ok(from)
    }

    async fn set_role(
        &self,
        username: &Username,
        from: &HeldRole,
        to: &HeldRole,
        why: &str,
        by: Actor,
    ) -> Result<(), AppError> {
        let now = now_ms();
        let reassignment = zf_store::ReassignmentRequest {
            id: uuid::Uuid::now_v7().to_string(),
            requested_by: Some(by.name.clone()),
            at_ms: now,
            reason: format!("{from} -> {to}: {why}"),
        };
        let event = AuditEvent::new(now, by, AuditAction::RoleChanged, Outcome::Success)
            .on("user", username.as_str())
            .detail(format!("{from} -> {to}: {why}"));
        self.store
            .user_set_role(username, from, to, event, reassignment)
            .await
            .map(|_| ())
            .map_err(|e| match e {
                zf_store::StoreError::NotFound => AppError::Conflict(
                    "the user's role changed meanwhile; reload and try again".into(),
                ),
                other => other.into(),
            })
    }

    /// Moves a user to another team, or out of every team (`None`). Team-scoped roles reach
    /// the new team's clients from the user's next request on; the old team's are gone then.
    pub async fn change_team(
        &self,
        grant: &Grant,
        username: &Username,
        team: Option<&str>,
        why: &str,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        self.set_team(username, team, why, actor(grant, meta)).await
    }

    /// [`App::change_team`] for the operator on the server; audited alike.
    pub async fn set_team(
        &self,
        username: &Username,
        team: Option<&str>,
        why: &str,
        by: Actor,
    ) -> Result<(), AppError> {
        let why = reason(why)?;
        let team = team
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| {
                ShortText::parse(t)
                    .map(|t| t.as_str().to_owned())
                    .map_err(|e| AppError::Invalid(format!("team: {e}")))
            })
            .transpose()?;
        let user = self
            .store
            .user_by_username(username)
            .await?
            .ok_or(AppError::NotFound)?;
        if user.team == team {
            return Err(AppError::Invalid(format!(
                "{} is already in {}",
                username.as_str(),
                team.as_deref().unwrap_or("no team")
            )));
        }
        let shown = |t: &Option<String>| t.clone().unwrap_or_else(|| "(no team)".to_owned());
        let event = AuditEvent::new(now_ms(), by, AuditAction::TeamChanged, Outcome::Success)
            .on("user", username.as_str())
            .detail(format!("{} -> {}: {why}", shown(&user.team), shown(&team)));
        self.store
            .user_set_team(username, team.as_deref(), event)
            .await?;
        Ok(())
    }
}

/// What a user may do and why: their role, its permissions, which clients they reach, how
/// much of each sensitive field they see, and where from.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct EffectivePermissions {
    pub username: String,
    /// The role held: a built-in role's name, or a custom role's.
    pub role: String,
    pub role_label: String,
    /// For a custom role, the built-in client role it builds on, whose network ranges and
    /// second-factor rules apply; for a built-in role, the role itself.
    pub base_role: String,
    pub custom: bool,
    pub team: Option<String>,
    pub disabled: bool,
    /// `resource:action`, e.g. `client:read`.
    pub permissions: Vec<String>,
    /// Which clients: `all`, `assigned` (only those assigned to them), `team <name> and
    /// assigned`, `engagements` or `none`.
    pub client_scope: String,
    /// Per sensitive field: `visible`, `masked` or `hidden`.
    pub fields: std::collections::BTreeMap<String, String>,
    /// Address ranges data access is confined to; empty means anywhere.
    pub network: Vec<String>,
}

impl App {
    pub async fn effective_permissions(
        &self,
        username: &Username,
    ) -> Result<EffectivePermissions, AppError> {
        let user = self
            .store
            .user_by_username(username)
            .await?
            .ok_or(AppError::NotFound)?;
        Ok(self.effective_permissions_of(&user))
    }

    /// Every enabled user's effective access, for the users screen.
    pub async fn users_effective_permissions(&self) -> Result<Vec<EffectivePermissions>, AppError> {
        Ok(self
            .store
            .users_enabled()
            .await?
            .iter()
            .map(|u| self.effective_permissions_of(u))
            .collect())
    }

    pub(crate) fn effective_permissions_of(
        &self,
        user: &zf_store::UserRow,
    ) -> EffectivePermissions {
        let role = user.role;
        let custom = user.custom_role.as_deref();
        let visibility = |field: Field| {
            custom
                .map_or_else(|| role.visibility(field), |c| c.visibility(field))
                .as_str()
        };
        let permissions = custom.map_or_else(|| role.permissions(), |c| c.permissions());
        EffectivePermissions {
            username: user.username.as_str().to_owned(),
            role: user.held_role().to_string(),
            role_label: custom
                .map_or_else(|| role.label_zh(), |c| c.label())
                .to_owned(),
            base_role: role.as_str().to_owned(),
            custom: custom.is_some(),
            team: user.team.clone(),
            disabled: user.disabled,
            permissions: permissions.iter().map(|p| p.name()).collect(),
            client_scope: client_scope_words(role, custom, user.team.as_deref()),
            fields: Field::ALL
                .into_iter()
                .map(|f| (f.as_str().to_owned(), visibility(f).to_owned()))
                .collect(),
            network: self
                .config
                .network
                .allow
                .get(&role)
                .map(|r| r.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
        }
    }
}
