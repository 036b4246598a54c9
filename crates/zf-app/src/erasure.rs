//! Erasing a client (crypto-shredding) under dual control, and the erasure ledger.
//!
//! Erasure destroys the client's data key, so nothing of its ciphertext can be opened again,
//! anywhere: one person with the delete permission asks for it with a reason, and a different
//! person with the approve permission decides. Approval erases the client in the transaction
//! that marks the request approved.
//!
//! An erased client must stay erased, including after a restore of a backup taken before the
//! erasure. The ledger is kept twice — in the database (`client_erasures`, written in the
//! erasing transaction, so it travels with every later backup) and in a file in the data
//! directory (`erasures.ledger`, appended and synced after the commit), which survives losing
//! the database itself. A restore re-applies both.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use zf_audit::{Actor, AuditAction, AuditEvent, Outcome};
use zf_domain::ClientId;
use zf_policy::{Grant, Scope};
use zf_store::{ErasureDecision, ErasureRow, ErasureStatus, NewErasure};

use crate::{actor, now_ms, App, AppError, RequestMeta};

/// The audit events' resource, as for every other change of a client.
const RESOURCE: &str = "clients";

/// Why someone asks for or decides an erasure: 4 to 200 characters, control characters
/// removed.
struct Reason(String);

impl Reason {
    fn parse(text: &str) -> Result<Self, AppError> {
        let text: String = text.trim().chars().filter(|c| !c.is_control()).collect();
        match text.chars().count() {
            4..=200 => Ok(Reason(text)),
            _ => Err(AppError::Invalid(
                "state the reason for the erasure (4 to 200 characters)".into(),
            )),
        }
    }
}

/// A request to erase a client, as the approvers' screen and the API show it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErasureView {
    pub id: String,
    pub client_id: String,
    /// The client's name when the request was made (the row is gone once approved).
    pub client_name: String,
    pub requested_by: String,
    pub requested_at: i64,
    pub reason: String,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    /// The second person, who approved or rejected it.
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub decision_reason: Option<String>,
}

impl From<ErasureRow> for ErasureView {
    fn from(r: ErasureRow) -> Self {
        ErasureView {
            id: r.id,
            client_id: r.client_id.to_string(),
            client_name: r.client_name,
            requested_by: r.requested_by,
            requested_at: r.requested_at_ms,
            reason: r.reason,
            status: r.status.as_str().to_owned(),
            decided_by: r.decided_by,
            decided_at: r.decided_at_ms,
            decision_reason: r.decision_reason,
        }
    }
}

impl App {
    /// Asks for a client in the caller's scope to be erased. Nothing is destroyed: the client
    /// stays as it is until a second person approves. One request per client may be pending.
    pub async fn erasure_request(
        &self,
        grant: &Grant,
        id: ClientId,
        reason: &str,
        meta: &RequestMeta,
    ) -> Result<ErasureView, AppError> {
        let reason = Reason::parse(reason)?;
        let principal = grant.principal().ok_or(AppError::NotFound)?;
        let now = now_ms();
        let event = AuditEvent::new(
            now,
            actor(grant, meta),
            AuditAction::ErasureRequested,
            Outcome::Success,
        )
        .request(meta.request_id.clone())
        .on(RESOURCE, id)
        .detail(reason.0.clone());
        let request = NewErasure {
            id: uuid::Uuid::now_v7().to_string(),
            client_id: id,
            requested_by: principal.username.as_str().to_owned(),
            requested_by_id: principal.user_id,
            at_ms: now,
            reason: reason.0,
        };
        let row = self
            .store
            .erasure_request(grant.scope(), request, event)
            .await?;
        Ok(row.into())
    }

    /// Requests of one status (`pending`, `approved`, `rejected`), or all, newest first;
    /// those of clients outside the caller's scope are left out.
    pub async fn erasures(
        &self,
        grant: &Grant,
        status: Option<&str>,
    ) -> Result<Vec<ErasureView>, AppError> {
        let status = status
            .map(|s| {
                ErasureStatus::parse(s.trim()).ok_or_else(|| {
                    AppError::Invalid("status is one of pending, approved, rejected".into())
                })
            })
            .transpose()?;
        Ok(self
            .store
            .erasures(grant.scope(), status)
            .await?
            .into_iter()
            .map(ErasureView::from)
            .collect())
    }

    /// Approves or rejects a pending request. Approval needs a second person: whoever made
    /// the request may withdraw it by rejecting, never approve it. Approval erases the client
    /// — row, records, documents, indexes and data key — with a `client_deleted` event naming
    /// both people, in the transaction that marks the request approved, then adds the client
    /// to the ledger file.
    pub async fn erasure_decide(
        &self,
        grant: &Grant,
        id: &str,
        approve: bool,
        reason: &str,
        meta: &RequestMeta,
    ) -> Result<ErasureView, AppError> {
        let reason = Reason::parse(reason)?;
        let principal = grant.principal().ok_or(AppError::NotFound)?;
        let request = self
            .store
            .erasure(id)
            .await?
            .filter(|r| r.status == ErasureStatus::Pending)
            .ok_or(AppError::NotFound)?;
        let me = principal.username.as_str();
        let (action, detail) = if approve {
            (
                AuditAction::ClientDeleted,
                format!(
                    "requested by {}, approved by {me}: {} (request: {})",
                    request.requested_by, reason.0, request.reason
                ),
            )
        } else {
            (
                AuditAction::ErasureRejected,
                format!(
                    "requested by {}, rejected by {me}: {}",
                    request.requested_by, reason.0
                ),
            )
        };
        let now = now_ms();
        let event = AuditEvent::new(now, actor(grant, meta), action, Outcome::Success)
            .request(meta.request_id.clone())
            .on(RESOURCE, request.client_id)
            .detail(detail);
        let decided = self
            .store
            .erasure_decide(
                grant.scope(),
                id,
                ErasureDecision {
                    approve,
                    decided_by: me.to_owned(),
                    decided_by_id: principal.user_id,
                    at_ms: now,
                    reason: reason.0,
                },
                event,
            )
            .await?;
        if approve {
            self.ledger_erasure(request.client_id, now);
        }
        Ok(decided.into())
    }
}

/// The ledger file's name in the data directory.
pub const LEDGER_FILE: &str = "erasures.ledger";

/// Appends one erased client to the ledger file and syncs it.
pub(crate) fn append(path: &Path, id: ClientId, at_ms: i64) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(file, "{id} {at_ms}")?;
    file.sync_all()
}

/// The clients the ledger file names; no file, no erasures. A line that does not parse is an
/// error, not skipped: a damaged ledger must not quietly let a client come back.
pub fn read_ledger(path: &Path) -> Result<Vec<ClientId>, AppError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(AppError::Internal(format!(
                "cannot read the erasure ledger {}: {e}",
                path.display()
            )))
        }
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, line)| {
            line.split_whitespace()
                .next()
                .and_then(|id| ClientId::parse(id).ok())
                .ok_or_else(|| {
                    AppError::Internal(format!(
                        "the erasure ledger {} is damaged at line {}",
                        path.display(),
                        n + 1
                    ))
                })
        })
        .collect()
}

impl App {
    /// Keeps a copy of the erasure ledger in `path` besides the database's.
    pub fn with_erasure_ledger(mut self, path: PathBuf) -> Self {
        self.erasure_ledger = Some(std::sync::Arc::new(path));
        self
    }

    /// Records an erasure just committed in the ledger file. The database's ledger already
    /// has it; a failure here is logged loudly rather than undoing the erasure.
    pub(crate) fn ledger_erasure(&self, id: ClientId, at_ms: i64) {
        if let Some(path) = &self.erasure_ledger {
            if let Err(e) = append(path, id, at_ms) {
                tracing::error!(client = %id, path = %path.display(), error = %e,
                    "the erasure is committed but could not be added to the ledger file");
            }
        }
    }

    /// The erased clients this instance knows of: the database's ledger and the file's.
    pub async fn erasures_known(&self) -> Result<BTreeSet<ClientId>, AppError> {
        let mut known: BTreeSet<ClientId> = self
            .store
            .client_erasures()
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        if let Some(path) = &self.erasure_ledger {
            known.extend(read_ledger(path)?);
        }
        Ok(known)
    }

    /// Erases again every client of `ledger` that a restore brought back, each with its audit
    /// event; returns how many there were.
    pub async fn erasures_reapply(
        &self,
        ledger: &BTreeSet<ClientId>,
        operator: Actor,
    ) -> Result<usize, AppError> {
        let mut again = 0;
        for id in ledger {
            if self.store.client_get(Scope::All, *id).await?.is_none() {
                continue;
            }
            let event = AuditEvent::new(
                self.now_ms(),
                operator.clone(),
                AuditAction::ErasureReapplied,
                Outcome::Success,
            )
            .on("client", *id)
            .detail("erased before the backup was restored; erased again");
            self.store.client_delete(Scope::All, *id, event).await?;
            again += 1;
        }
        Ok(again)
    }
}
