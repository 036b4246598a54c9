//! Job transfers and clients: when a user with assigned clients changes role, the change records
//! a request to reassign those clients, and a supervisor decides it — approving names the
//! accountant who takes them over, and every client still assigned to the moved user moves in
//! one transaction with its event. The request keeps who asked, who approved and why.

use zf_audit::{AuditAction, AuditEvent, Outcome};
use zf_policy::Grant;
use zf_store::{ReassignmentDecision, ReassignmentRow, ReassignmentStatus};

use crate::identity::reason;
use crate::{actor, now_ms, App, AppError, RequestMeta};

/// A request as the supervisors' screen and the API show it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ReassignmentView {
    pub id: String,
    /// The moved user whose clients wait for a new accountant.
    pub from: String,
    /// Clients assigned to them when they were moved.
    pub clients: i64,
    pub requested_by: Option<String>,
    pub requested_at: i64,
    /// The change that moved them, and why.
    pub reason: String,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    /// The accountant who took the clients over.
    pub to: Option<String>,
    /// Clients moved by the approval.
    pub moved: Option<i64>,
    /// The supervisor who approved or rejected the request.
    pub approved_by: Option<String>,
    pub decided_at: Option<i64>,
    pub decision_reason: Option<String>,
}

impl From<ReassignmentRow> for ReassignmentView {
    fn from(r: ReassignmentRow) -> Self {
        ReassignmentView {
            id: r.id,
            from: r.from_username,
            clients: r.clients,
            requested_by: r.requested_by,
            requested_at: r.requested_at_ms,
            reason: r.reason,
            status: r.status.as_str().to_owned(),
            to: r.to_username,
            moved: r.moved,
            approved_by: r.decided_by,
            decided_at: r.decided_at_ms,
            decision_reason: r.decision_reason,
        }
    }
}

impl App {
    /// Requests of one status (`pending`, `approved`, `rejected`), or all, newest first.
    pub async fn reassignments(
        &self,
        status: Option<&str>,
    ) -> Result<Vec<ReassignmentView>, AppError> {
        let status = status
            .map(|s| {
                ReassignmentStatus::parse(s.trim()).ok_or_else(|| {
                    AppError::Invalid("status is one of pending, approved, rejected".into())
                })
            })
            .transpose()?;
        Ok(self
            .store
            .reassignments(status)
            .await?
            .into_iter()
            .map(ReassignmentView::from)
            .collect())
    }

    /// Approves a pending request to `to` (an active accountant or supervisor other than the
    /// moved user), or rejects it when `to` is `None`. Audited with the approver and reason.
    pub async fn reassignment_decide(
        &self,
        grant: &Grant,
        id: &str,
        to: Option<&str>,
        why: &str,
        meta: &RequestMeta,
    ) -> Result<ReassignmentView, AppError> {
        let why = reason(why)?;
        let principal = grant.principal().ok_or(AppError::NotFound)?;
        let pending = self
            .store
            .reassignments(Some(ReassignmentStatus::Pending))
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or(AppError::NotFound)?;
        let to = match to.map(str::trim).filter(|t| !t.is_empty()) {
            Some(name) if name == pending.from_username => {
                return Err(AppError::Invalid(format!(
                    "{name} is the user who was moved; name the accountant who takes the clients over"
                )));
            }
            Some(name) => Some(self.assignee(name).await?),
            None => None,
        };
        let (action, detail) = match &to {
            Some(user) => (
                AuditAction::ClientsReassigned,
                format!(
                    "clients of {} to {}, approved by {}: {why}",
                    pending.from_username,
                    user.username.as_str(),
                    principal.username.as_str()
                ),
            ),
            None => (
                AuditAction::ReassignmentRejected,
                format!(
                    "clients of {} stay, rejected by {}: {why}",
                    pending.from_username,
                    principal.username.as_str()
                ),
            ),
        };
        let now = now_ms();
        let event = AuditEvent::new(now, actor(grant, meta), action, Outcome::Success)
            .on("user", &pending.from_username)
            .detail(detail);
        let decided = self
            .store
            .reassignment_decide(
                id,
                ReassignmentDecision {
                    to_user: to.map(|u| u.id),
                    decided_by: principal.username.as_str().to_owned(),
                    at_ms: now,
                    reason: why,
                },
                event,
            )
            .await
            .map_err(|e| match e {
                zf_store::StoreError::NotFound => {
                    AppError::Conflict("the request was decided meanwhile; reload it".into())
                }
                other => other.into(),
            })?;
        Ok(decided.into())
    }
}

/// One permission change of a user: who made it, when, why, and who approved it where a
/// second person decides (a supervisor for client reassignments, the reviewer for access
/// review answers).
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PermissionChange {
    pub at: i64,
    /// `user_created`, `role_changed`, `team_changed`, `clients_reassigned`,
    /// `reassignment_rejected`, `review_decided` or `sessions_revoked`.
    pub action: String,
    pub by: String,
    /// What changed and why.
    pub detail: Option<String>,
    pub approved_by: Option<String>,
}

const HISTORY_ACTIONS: [AuditAction; 7] = [
    AuditAction::UserCreated,
    AuditAction::RoleChanged,
    AuditAction::TeamChanged,
    AuditAction::ClientsReassigned,
    AuditAction::ReassignmentRejected,
    AuditAction::ReviewDecided,
    AuditAction::SessionsRevoked,
];

impl App {
    /// The permission history of one user, oldest first, read from the audit trail.
    pub async fn permission_history(
        &self,
        username: &zf_domain::Username,
    ) -> Result<Vec<PermissionChange>, AppError> {
        let user = self
            .store
            .user_by_username(username)
            .await?
            .ok_or(AppError::NotFound)?;
        let mut out = Vec::new();
        for record in [username.as_str().to_owned(), user.id.to_string()] {
            let query = zf_store::AuditQuery {
                resource: Some("user".into()),
                record_id: Some(record),
                limit: 1000,
                ..zf_store::AuditQuery::default()
            };
            for e in self.store.audit_search(&query).await? {
                let Some(action) = HISTORY_ACTIONS.iter().find(|a| a.as_str() == e.action) else {
                    continue;
                };
                let approved = matches!(
                    action,
                    AuditAction::ClientsReassigned
                        | AuditAction::ReassignmentRejected
                        | AuditAction::ReviewDecided
                );
                out.push(PermissionChange {
                    at: e.at_ms,
                    action: e.action.clone(),
                    approved_by: approved.then(|| e.actor_name.clone()),
                    by: e.actor_name,
                    detail: e.detail,
                });
            }
        }
        out.sort_by_key(|c| c.at);
        Ok(out)
    }
}
