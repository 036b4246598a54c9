//! Custom roles, and what role and team each user holds: the part of the store a permission
//! change goes through. Every change commits with its audit event.

use async_trait::async_trait;
use zf_audit::AuditEvent;
use zf_domain::{UserId, Username};
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

/// A request to move a moved user's clients to another accountant, created with the change
/// that moved them and decided by a supervisor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReassignmentRow {
    pub id: String,
    pub from_user: UserId,
    pub from_username: String,
    /// Clients assigned to the user when the request was made.
    pub clients: i64,
    pub requested_by: Option<String>,
    pub requested_at_ms: i64,
    pub reason: String,
    pub status: ReassignmentStatus,
    pub to_username: Option<String>,
    /// Clients actually moved by the approval.
    pub moved: Option<i64>,
    pub decided_by: Option<String>,
    pub decided_at_ms: Option<i64>,
    pub decision_reason: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReassignmentStatus {
    Pending,
    Approved,
    Rejected,
}

impl ReassignmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReassignmentStatus::Pending => "pending",
            ReassignmentStatus::Approved => "approved",
            ReassignmentStatus::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Rejected]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// What a role change records beside itself when the user has clients assigned.
#[derive(Clone, Debug)]
pub struct ReassignmentRequest {
    pub id: String,
    pub requested_by: Option<String>,
    pub at_ms: i64,
    pub reason: String,
}

/// A supervisor's decision on a request.
#[derive(Clone, Debug)]
pub struct ReassignmentDecision {
    /// The accountant who takes the clients over; `None` rejects the request.
    pub to_user: Option<UserId>,
    pub decided_by: String,
    pub at_ms: i64,
    pub reason: String,
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
    /// starts with a new sign-in; `NotFound` if the user no longer holds `from`. If clients are
    /// assigned to the user, `reassignment` is recorded as a pending request in the same
    /// transaction; returns how many clients wait for it.
    async fn user_set_role(
        &self,
        username: &Username,
        from: &HeldRole,
        to: &HeldRole,
        event: AuditEvent,
        reassignment: ReassignmentRequest,
    ) -> Result<Option<i64>>;
    /// Requests of one status (all if `None`), newest first.
    async fn reassignments(
        &self,
        status: Option<ReassignmentStatus>,
    ) -> Result<Vec<ReassignmentRow>>;
    /// Decides a pending request: on approval, every client still assigned to the moved user
    /// goes to `to_user`, in one transaction with the event. `NotFound` if there is no pending
    /// request of that id. Returns the request as decided.
    async fn reassignment_decide(
        &self,
        id: &str,
        decision: ReassignmentDecision,
        event: AuditEvent,
    ) -> Result<ReassignmentRow>;
    /// Moves a user to another team (or none). Team-scoped roles reach the new team's clients
    /// from the next query on; `NotFound` if there is no such user.
    async fn user_set_team(
        &self,
        username: &Username,
        team: Option<&str>,
        event: AuditEvent,
    ) -> Result<()>;
}

/// The columns both stores select for a request, in order.
pub(crate) const REASSIGNMENT_COLUMNS: &str = "r.id, r.from_user, fu.username, r.clients,
    r.requested_by, r.requested_at, r.reason, r.status, tu.username, r.moved, r.decided_by,
    r.decided_at, r.decision_reason";
pub(crate) const REASSIGNMENT_FROM: &str = "client_reassignments r
    JOIN users fu ON fu.id = r.from_user LEFT JOIN users tu ON tu.id = r.to_user";

/// A request's columns as read, before they are checked.
pub(crate) struct ReassignmentColumns {
    pub id: String,
    pub from_user: String,
    pub from_username: String,
    pub clients: i64,
    pub requested_by: Option<String>,
    pub requested_at_ms: i64,
    pub reason: String,
    pub status: String,
    pub to_username: Option<String>,
    pub moved: Option<i64>,
    pub decided_by: Option<String>,
    pub decided_at_ms: Option<i64>,
    pub decision_reason: Option<String>,
}

impl ReassignmentColumns {
    pub(crate) fn into_row(self) -> Result<ReassignmentRow> {
        Ok(ReassignmentRow {
            id: self.id,
            from_user: crate::rows::decode::user_id(&self.from_user)?,
            from_username: self.from_username,
            clients: self.clients,
            requested_by: self.requested_by,
            requested_at_ms: self.requested_at_ms,
            reason: self.reason,
            status: ReassignmentStatus::parse(&self.status).ok_or_else(|| {
                crate::StoreError::corrupt("client_reassignments.status", &self.status)
            })?,
            to_username: self.to_username,
            moved: self.moved,
            decided_by: self.decided_by,
            decided_at_ms: self.decided_at_ms,
            decision_reason: self.decision_reason,
        })
    }
}
