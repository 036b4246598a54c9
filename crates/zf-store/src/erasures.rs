//! Requests to erase a client. Erasing destroys the client's data key, which cannot be undone,
//! so one person asks and another decides: the request is a row, and approving it erases the
//! client in the transaction that marks the request approved.

use async_trait::async_trait;
use zf_audit::AuditEvent;
use zf_domain::{ClientId, UserId};
use zf_policy::Scope;

use crate::Result;

/// A request as stored. The client's name is kept because approving removes the client row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasureRow {
    pub id: String,
    pub client_id: ClientId,
    pub client_name: String,
    pub requested_by: String,
    pub requested_by_id: UserId,
    pub requested_at_ms: i64,
    pub reason: String,
    pub status: ErasureStatus,
    pub decided_by: Option<String>,
    pub decided_at_ms: Option<i64>,
    pub decision_reason: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErasureStatus {
    Pending,
    Approved,
    Rejected,
}

impl ErasureStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ErasureStatus::Pending => "pending",
            ErasureStatus::Approved => "approved",
            ErasureStatus::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Rejected]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A new request; the store adds the client's name from its row.
#[derive(Clone, Debug)]
pub struct NewErasure {
    pub id: String,
    pub client_id: ClientId,
    pub requested_by: String,
    pub requested_by_id: UserId,
    pub at_ms: i64,
    pub reason: String,
}

/// The second person's decision.
#[derive(Clone, Debug)]
pub struct ErasureDecision {
    pub approve: bool,
    pub decided_by: String,
    pub decided_by_id: UserId,
    pub at_ms: i64,
    pub reason: String,
}

#[async_trait]
pub trait ErasureStore: Send + Sync {
    /// Records a pending request for a client in `scope`, with its event. `NotFound` if the
    /// client is not in scope; `Conflict(ErasurePending)` if one is pending already.
    async fn erasure_request(
        &self,
        scope: Scope,
        request: NewErasure,
        event: AuditEvent,
    ) -> Result<ErasureRow>;
    /// Requests of one status (all if `None`), newest first: those whose client is in `scope`,
    /// and those whose client no longer exists.
    async fn erasures(
        &self,
        scope: Scope,
        status: Option<ErasureStatus>,
    ) -> Result<Vec<ErasureRow>>;
    /// One request, whatever its status.
    async fn erasure(&self, id: &str) -> Result<Option<ErasureRow>>;
    /// Decides a pending request in one transaction with `event`. Approval erases the client as
    /// [`crate::Store::client_delete`] does (row, records, documents, indexes, key, ledger)
    /// and is refused with `SamePerson` to whoever requested it. `NotFound` if no request of
    /// that id is pending, or its client is outside `scope` (a request whose client is gone may
    /// still be rejected). Returns the request as decided.
    async fn erasure_decide(
        &self,
        scope: Scope,
        id: &str,
        decision: ErasureDecision,
        event: AuditEvent,
    ) -> Result<ErasureRow>;
}

/// The columns both stores select for a request, in order.
pub(crate) const ERASURE_COLUMNS: &str = "r.id, r.client_id, r.client_name, r.requested_by,
    r.requested_by_id, r.requested_at, r.reason, r.status, r.decided_by, r.decided_at,
    r.decision_reason";

/// A request's columns as read, before they are checked.
pub(crate) struct ErasureColumns {
    pub id: String,
    pub client_id: String,
    pub client_name: String,
    pub requested_by: String,
    pub requested_by_id: String,
    pub requested_at_ms: i64,
    pub reason: String,
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at_ms: Option<i64>,
    pub decision_reason: Option<String>,
}

impl ErasureColumns {
    pub(crate) fn into_row(self) -> Result<ErasureRow> {
        Ok(ErasureRow {
            id: self.id,
            client_id: crate::rows::decode::client_id(&self.client_id)?,
            client_name: self.client_name,
            requested_by: self.requested_by,
            requested_by_id: crate::rows::decode::user_id(&self.requested_by_id)?,
            requested_at_ms: self.requested_at_ms,
            reason: self.reason,
            status: ErasureStatus::parse(&self.status).ok_or_else(|| {
                crate::StoreError::corrupt("erasure_requests.status", &self.status)
            })?,
            decided_by: self.decided_by,
            decided_at_ms: self.decided_at_ms,
            decision_reason: self.decision_reason,
        })
    }
}
