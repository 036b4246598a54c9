//! Custom roles, and what role and team each user holds: the part of the store a permission
//! change goes through. Every change commits with its audit event.

use async_trait::async_trait;
use zf_audit::AuditEvent;
use zf_domain::Username;
use zf_policy::{CustomRole, HeldRole, RoleName};

use crate::Result;

/// A stored custom role with its optimistic-concurrency version and how many users hold it.
#[derive(Clone, Debug)]
pub struct CustomRoleRow {
    pub role: CustomRole,
    pub version: i64,
    pub holders: i64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

#[async_trait]
pub trait RoleStore: Send + Sync {
    /// Every custom role, by name.
    async fn custom_roles(&self) -> Result<Vec<CustomRoleRow>>;
    /// Creates the role (`version` None; `Conflict(Unique::CustomRole)` if the name is taken) or
    /// replaces its definition if it is still at `version` (`VersionConflict` otherwise,
    /// `NotFound` if it is gone). Holders get the new definition on their next request.
    /// Returns the new version.
    async fn custom_role_put(
        &self,
        role: &CustomRole,
        version: Option<i64>,
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<i64>;
    /// Deletes a role nobody holds; `RoleHeld` while someone does.
    async fn custom_role_delete(&self, name: &RoleName, event: AuditEvent) -> Result<()>;
    /// Moves a user from `from` to `to` and ends every session of theirs, so the new role
    /// starts with a new sign-in; `NotFound` if the user no longer holds `from`.
    async fn user_set_role(
        &self,
        username: &Username,
        from: &HeldRole,
        to: &HeldRole,
        event: AuditEvent,
    ) -> Result<()>;
    /// Moves a user to another team (or none). Team-scoped roles reach the new team's clients
    /// from the next query on; `NotFound` if there is no such user.
    async fn user_set_team(
        &self,
        username: &Username,
        team: Option<&str>,
        event: AuditEvent,
    ) -> Result<()>;
}
