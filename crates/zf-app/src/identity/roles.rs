use zf_audit::{Actor, AuditAction, AuditEvent, Outcome};
use zf_domain::Username;
use zf_policy::{check_role_change, Grant, Role};

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
    /// A job transfer made by the security administrator. It takes effect on the user's very
    /// next request: the change ends their sessions, so the new role starts with a new sign-in
    /// and a new session id.
    pub async fn change_role(
        &self,
        grant: &Grant,
        username: &Username,
        to: Role,
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
        check_role_change(principal, username.as_str(), user.role, to)
            .map_err(|e| AppError::Invalid(e.to_string()))?;
        self.set_role(username, user.role, to, &why, actor(grant, meta))
            .await
    }

    /// The operator's path on the server itself, for administrator roles too; audited alike.
    pub async fn set_role_as_operator(
        &self,
        username: &Username,
        to: Role,
        why: &str,
        operator: Actor,
    ) -> Result<Role, AppError> {
        let why = reason(why)?;
        let user = self
            .store
            .user_by_username(username)
            .await?
            .ok_or(AppError::NotFound)?;
        if user.role == to {
            return Err(AppError::Invalid(format!(
                "{} already holds the role {}",
                username.as_str(),
                to
            )));
        }
        self.set_role(username, user.role, to, &why, operator)
            .await?;
        Ok(user.role)
    }

    async fn set_role(
        &self,
        username: &Username,
        from: Role,
        to: Role,
        why: &str,
        by: Actor,
    ) -> Result<(), AppError> {
        let event = AuditEvent::new(now_ms(), by, AuditAction::RoleChanged, Outcome::Success)
            .on("user", username.as_str())
            .detail(format!("{from} -> {to}: {why}"));
        self.store
            .user_set_role(username, from, to, event)
            .await
            .map_err(|e| match e {
                zf_store::StoreError::NotFound => AppError::Conflict(
                    "the user's role changed meanwhile; reload and try again".into(),
                ),
                other => other.into(),
            })
    }
}

/// What a user may do and why: their role, its permissions, which clients they reach, how
/// much of each sensitive field they see, and where from.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct EffectivePermissions {
    pub username: String,
    pub role: String,
    pub role_label: String,
    pub disabled: bool,
    /// `resource:action`, e.g. `client:read`.
    pub permissions: Vec<String>,
    /// Which clients: `all`, `assigned` (only those assigned to them) or `none`.
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
        let role = user.role;
        let visibility = |v: zf_policy::Visibility| match v {
            zf_policy::Visibility::Visible => "visible",
            zf_policy::Visibility::Masked => "masked",
            zf_policy::Visibility::Hidden => "hidden",
        };
        Ok(EffectivePermissions {
            username: user.username.as_str().to_owned(),
            role: role.as_str().to_owned(),
            role_label: role.label_zh().to_owned(),
            disabled: user.disabled,
            permissions: role.permissions().iter().map(|p| p.name()).collect(),
            client_scope: role.client_scope().to_owned(),
            fields: [(
                "legal_rep_id_number".to_owned(),
                visibility(role.visibility(zf_policy::Field::LegalRepIdNumber)).to_owned(),
            )]
            .into_iter()
            .collect(),
            network: self
                .config
                .network
                .allow
                .get(&role)
                .map(|r| r.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
        })
    }
}
