//! [`ErasureStore`] on SQLite.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use zf_audit::AuditEvent;
use zf_policy::Scope;

use super::{client_get, erase_client, insert_event, map_unique, SqliteStore};
use crate::erasures::{ErasureColumns, ERASURE_COLUMNS};
use crate::rows::decode;
use crate::scope::{self, sqlite_filter};
use crate::{
    ErasureDecision, ErasureRow, ErasureStatus, ErasureStore, NewErasure, Result, StoreError,
};

#[async_trait]
impl ErasureStore for SqliteStore {
    async fn erasure_request(
        &self,
        scope: Scope,
        request: NewErasure,
        event: AuditEvent,
    ) -> Result<ErasureRow> {
        self.write(move |tx, chain| {
            let Some(client) = client_get(tx, scope, request.client_id)? else {
                return Err(StoreError::NotFound);
            };
            tx.execute(
                "INSERT INTO erasure_requests (id, client_id, client_name, requested_by,
                    requested_by_id, requested_at, reason, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending')",
                params![
                    request.id,
                    request.client_id.to_string(),
                    client.row.name.as_str(),
                    request.requested_by,
                    request.requested_by_id.to_string(),
                    request.at_ms,
                    request.reason
                ],
            )
            .map_err(map_unique)?;
            insert_event(tx, chain, &event)?;
            one(tx, &request.id)
        })
        .await
    }

    async fn erasures(
        &self,
        scope: Scope,
        status: Option<ErasureStatus>,
    ) -> Result<Vec<ErasureRow>> {
        let (kind, user) = scope::params(scope);
        self.run(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {ERASURE_COLUMNS}
                 FROM erasure_requests r LEFT JOIN clients c ON c.id = r.client_id
                 WHERE (?3 IS NULL OR r.status = ?3) AND (c.id IS NULL OR {})
                 ORDER BY r.requested_at DESC, r.id",
                sqlite_filter!()
            ))?;
            let rows = stmt.query_map(
                params![kind, user, status.map(ErasureStatus::as_str)],
                erasure_from,
            )?;
            rows.map(|r| r?.into_row()).collect()
        })
        .await
    }

    async fn erasure(&self, id: &str) -> Result<Option<ErasureRow>> {
        let id = id.to_owned();
        self.run(move |c| {
            c.prepare_cached(&format!(
                "SELECT {ERASURE_COLUMNS} FROM erasure_requests r WHERE r.id = ?1"
            ))?
            .query_row([&id], erasure_from)
            .optional()?
            .map(ErasureColumns::into_row)
            .transpose()
        })
        .await
    }

    async fn erasure_decide(
        &self,
        scope: Scope,
        id: &str,
        decision: ErasureDecision,
        event: AuditEvent,
    ) -> Result<ErasureRow> {
        let id = id.to_owned();
        self.write(move |tx, chain| {
            // Read again inside the write transaction, which holds the database's write lock:
            // a request decided meanwhile is no longer pending here.
            let pending: Option<(String, String)> = tx
                .query_row(
                    "SELECT client_id, requested_by_id FROM erasure_requests
                     WHERE id = ?1 AND status = 'pending'",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((client, requester)) = pending else {
                return Err(StoreError::NotFound);
            };
            let client = decode::client_id(&client)?;
            if decision.approve && requester == decision.decided_by_id.to_string() {
                return Err(StoreError::SamePerson);
            }
            if client_get(tx, scope, client)?.is_none()
                && (decision.approve || client_get(tx, Scope::All, client)?.is_some())
            {
                return Err(StoreError::NotFound);
            }
            if decision.approve {
                erase_client(tx, client, event.at_ms)?;
            }
            tx.execute(
                "UPDATE erasure_requests SET status = ?2, decided_by = ?3, decided_at = ?4,
                    decision_reason = ?5
                 WHERE id = ?1",
                params![
                    id,
                    if decision.approve {
                        ErasureStatus::Approved
                    } else {
                        ErasureStatus::Rejected
                    }
                    .as_str(),
                    decision.decided_by,
                    decision.at_ms,
                    decision.reason
                ],
            )?;
            insert_event(tx, chain, &event)?;
            one(tx, &id)
        })
        .await
    }
}

fn one(c: &Connection, id: &str) -> Result<ErasureRow> {
    c.prepare_cached(&format!(
        "SELECT {ERASURE_COLUMNS} FROM erasure_requests r WHERE r.id = ?1"
    ))?
    .query_row([id], erasure_from)?
    .into_row()
}

fn erasure_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<ErasureColumns> {
    Ok(ErasureColumns {
        id: r.get(0)?,
        client_id: r.get(1)?,
        client_name: r.get(2)?,
        requested_by: r.get(3)?,
        requested_by_id: r.get(4)?,
        requested_at_ms: r.get(5)?,
        reason: r.get(6)?,
        status: r.get(7)?,
        decided_by: r.get(8)?,
        decided_at_ms: r.get(9)?,
        decision_reason: r.get(10)?,
    })
}
