//! [`ErasureStore`] on PostgreSQL.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use zf_audit::AuditEvent;
use zf_policy::Scope;

use super::{client_get, erase_client, insert_event, map_unique, PgStore};
use crate::erasures::{ErasureColumns, ERASURE_COLUMNS};
use crate::rows::decode;
use crate::scope::{self, postgres_filter};
use crate::{
    ErasureDecision, ErasureRow, ErasureStatus, ErasureStore, NewErasure, Result, StoreError,
};

#[async_trait]
impl ErasureStore for PgStore {
    async fn erasure_request(
        &self,
        scope: Scope,
        request: NewErasure,
        event: AuditEvent,
    ) -> Result<ErasureRow> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let Some(client) = client_get(&tx, scope, request.client_id).await? else {
            return Err(StoreError::NotFound);
        };
        tx.execute(
            "INSERT INTO erasure_requests (id, client_id, client_name, requested_by,
                requested_by_id, requested_at, reason, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending')",
            &[
                &request.id,
                &request.client_id.to_string(),
                &client.row.name.as_str(),
                &request.requested_by,
                &request.requested_by_id.to_string(),
                &request.at_ms,
                &request.reason,
            ],
        )
        .await
        .map_err(map_unique)?;
        insert_event(&tx, &self.chain, &event).await?;
        let row = one(&tx, &request.id).await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn erasures(
        &self,
        scope: Scope,
        status: Option<ErasureStatus>,
    ) -> Result<Vec<ErasureRow>> {
        let (kind, user) = scope::params(scope);
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {ERASURE_COLUMNS}
                 FROM erasure_requests r LEFT JOIN clients c ON c.id = r.client_id
                 WHERE ($3::TEXT IS NULL OR r.status = $3) AND (c.id IS NULL OR {})
                 ORDER BY r.requested_at DESC, r.id",
                postgres_filter!()
            ))
            .await?;
        let rows = c
            .query(&stmt, &[&kind, &user, &status.map(ErasureStatus::as_str)])
            .await?;
        rows.iter().map(|r| erasure_from(r)?.into_row()).collect()
    }

    async fn erasure(&self, id: &str) -> Result<Option<ErasureRow>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                &format!("SELECT {ERASURE_COLUMNS} FROM erasure_requests r WHERE r.id = $1"),
                &[&id],
            )
            .await?;
        row.as_ref()
            .map(|r| erasure_from(r)?.into_row())
            .transpose()
    }

    async fn erasure_decide(
        &self,
        scope: Scope,
        id: &str,
        decision: ErasureDecision,
        event: AuditEvent,
    ) -> Result<ErasureRow> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // The row stays locked until the commit: a second decision waits, then finds the
        // request no longer pending.
        let Some(pending) = tx
            .query_opt(
                "SELECT client_id, requested_by_id FROM erasure_requests
                 WHERE id = $1 AND status = 'pending' FOR UPDATE",
                &[&id],
            )
            .await?
        else {
            return Err(StoreError::NotFound);
        };
        let client = decode::client_id(pending.try_get(0)?)?;
        let requester: String = pending.try_get(1)?;
        if decision.approve && requester == decision.decided_by_id.to_string() {
            return Err(StoreError::SamePerson);
        }
        if client_get(&tx, scope, client).await?.is_none()
            && (decision.approve || client_get(&tx, Scope::All, client).await?.is_some())
        {
            return Err(StoreError::NotFound);
        }
        if decision.approve {
            erase_client(&tx, client, event.at_ms).await?;
        }
        let status = if decision.approve {
            ErasureStatus::Approved
        } else {
            ErasureStatus::Rejected
        };
        tx.execute(
            "UPDATE erasure_requests SET status = $2, decided_by = $3, decided_at = $4,
                decision_reason = $5
             WHERE id = $1",
            &[
                &id,
                &status.as_str(),
                &decision.decided_by,
                &decision.at_ms,
                &decision.reason,
            ],
        )
        .await?;
        insert_event(&tx, &self.chain, &event).await?;
        let row = one(&tx, id).await?;
        tx.commit().await?;
        Ok(row)
    }
}

async fn one(c: &impl GenericClient, id: &str) -> Result<ErasureRow> {
    let row = c
        .query_one(
            &format!("SELECT {ERASURE_COLUMNS} FROM erasure_requests r WHERE r.id = $1"),
            &[&id],
        )
        .await?;
    erasure_from(&row)?.into_row()
}

fn erasure_from(r: &tokio_postgres::Row) -> Result<ErasureColumns> {
    Ok(ErasureColumns {
        id: r.try_get(0)?,
        client_id: r.try_get(1)?,
        client_name: r.try_get(2)?,
        requested_by: r.try_get(3)?,
        requested_by_id: r.try_get(4)?,
        requested_at_ms: r.try_get(5)?,
        reason: r.try_get(6)?,
        status: r.try_get(7)?,
        decided_by: r.try_get(8)?,
        decided_at_ms: r.try_get(9)?,
        decision_reason: r.try_get(10)?,
    })
}
