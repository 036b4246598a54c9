//! [`RecordStore`] on PostgreSQL: every call is one transaction on one pooled connection.

use crate::scope::{postgres_filter, sqlite_filter};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use zf_audit::AuditEvent;
use zf_crypto::{BlindIndex, Sealed, WrappedKey};
use zf_domain::{ClientId, LeadId, RecordId, UserId};
use zf_policy::Scope;

use super::{boxed, insert_client, insert_event, map_unique, refs, PgStore};
use crate::records::{self, LeadColumns, RecordColumns};
use crate::{
    scope, ClientRow, IndexEntry, LeadRow, QueryValue, RecordHit, RecordOp, RecordQuery, RecordRow,
    RecordStore, RecordWrite, Result, StoreError,
};

fn hit_from(r: &Row) -> Result<RecordHit> {
    records::decode(RecordColumns {
        id: r.try_get(0)?,
        client_id: r.try_get(1)?,
        kind: r.try_get(2)?,
        parent_id: r.try_get(3)?,
        label: r.try_get(4)?,
        status: r.try_get(5)?,
        period: r.try_get(6)?,
        due_on: r.try_get(7)?,
        holder: r.try_get(8)?,
        plain: r.try_get(9)?,
        sealed: r.try_get(10)?,
        created_by: r.try_get(11)?,
        created_at_ms: r.try_get(12)?,
        updated_at_ms: r.try_get(13)?,
        version: r.try_get(14)?,
        client_name: r.try_get(15)?,
        wrapped_dek: r.try_get(16)?,
        dek_version: r.try_get(17)?,
        previous_dek: r.try_get(18)?,
        previous_version: r.try_get(19)?,
    })
}

fn lead_from(r: &Row) -> Result<LeadRow> {
    records::decode_lead(LeadColumns {
        id: r.try_get(0)?,
        company_name: r.try_get(1)?,
        stage: r.try_get(2)?,
        source: r.try_get(3)?,
        owner: r.try_get(4)?,
        sealed: r.try_get(5)?,
        mobile_index: r.try_get(6)?,
        wrapped_dek: r.try_get(7)?,
        client_id: r.try_get(8)?,
        created_at_ms: r.try_get(9)?,
        updated_at_ms: r.try_get(10)?,
        version: r.try_get(11)?,
        dek_version: r.try_get(12)?,
        previous_dek: r.try_get(13)?,
        previous_version: r.try_get(14)?,
    })
}

/// The record SELECT with PostgreSQL's typed scope parameters.
fn select() -> String {
    records::SELECT.replace(sqlite_filter!(), postgres_filter!())
}

async fn client_in_scope(c: &impl GenericClient, scope: Scope, client: ClientId) -> Result<()> {
    let (kind, user) = scope::params(scope);
    let stmt = c
        .prepare_cached(concat!(
            "SELECT 1 FROM clients c
             WHERE ",
            postgres_filter!(),
            "
               AND c.id = $3"
        ))
        .await?;
    c.query_opt(&stmt, &[&kind, &user, &client.to_string()])
        .await?
        .map(|_| ())
        .ok_or(StoreError::NotFound)
}

async fn query(c: &impl GenericClient, scope: Scope, q: &RecordQuery) -> Result<Vec<RecordHit>> {
    if let Some(client) = q.client {
        client_in_scope(c, scope, client).await?;
    }
    let (kind, user) = scope::params(scope);
    let (clause, values) = q.clause(|n| format!("${n}"));
    let mut params = boxed(vec![
        QueryValue::Int(kind),
        user.map_or(QueryValue::Null, QueryValue::Text),
    ]);
    params.extend(boxed(values));
    let sql = format!("{}{clause}{} LIMIT {}", select(), records::ORDER, q.limit);
    let stmt = c.prepare_cached(&sql).await?;
    let rows = c.query(&stmt, &refs(&params)).await?;
    rows.iter().map(hit_from).collect()
}

async fn insert_row(tx: &impl GenericClient, row: &RecordRow, if_absent: bool) -> Result<u64> {
    let sql = format!(
        "{} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15){}",
        records::INSERT,
        if if_absent {
            " ON CONFLICT DO NOTHING"
        } else {
            ""
        }
    );
    let stmt = tx.prepare_cached(&sql).await?;
    tx.execute(
        &stmt,
        &[
            &row.id.to_string(),
            &row.client_id.to_string(),
            &row.kind.as_str(),
            &row.parent_id.map(|p| p.to_string()),
            &row.label,
            &row.status,
            &row.period,
            &row.due_on,
            &row.holder.map(|h| h.to_string()),
            &row.plain,
            &row.sealed.as_ref().map(Sealed::as_bytes),
            &row.created_by.map(|u| u.to_string()),
            &row.created_at_ms,
            &row.updated_at_ms,
            &row.version,
        ],
    )
    .await
    .map_err(map_unique)
}

async fn insert_indexes(
    tx: &impl GenericClient,
    id: RecordId,
    indexes: &[IndexEntry],
) -> Result<()> {
    let stmt = tx
        .prepare_cached("INSERT INTO record_index (field, token, record_id) VALUES ($1, $2, $3)")
        .await?;
    for i in indexes {
        tx.execute(&stmt, &[&i.field, &i.token.as_bytes(), &id.to_string()])
            .await?;
    }
    Ok(())
}

async fn version_of(
    tx: &impl GenericClient,
    client: ClientId,
    id: RecordId,
    kind: &str,
) -> Result<i64> {
    let stmt = tx
        .prepare_cached(
            "SELECT version FROM client_records
             WHERE id = $1 AND client_id = $2 AND kind = $3 FOR UPDATE",
        )
        .await?;
    tx.query_opt(&stmt, &[&id.to_string(), &client.to_string(), &kind])
        .await?
        .map(|r| r.try_get(0))
        .transpose()?
        .ok_or(StoreError::NotFound)
}

async fn delete_records(tx: &impl GenericClient, where_clause: &str, id: &str) -> Result<()> {
    for sql in [
        "DELETE FROM record_index WHERE record_id IN (SELECT id FROM client_records WHERE {w})",
        "DELETE FROM record_blobs WHERE record_id IN (SELECT id FROM client_records WHERE {w})",
        "DELETE FROM client_records WHERE {w}",
    ] {
        tx.execute(&sql.replace("{w}", where_clause), &[&id])
            .await?;
    }
    Ok(())
}

async fn apply(tx: &impl GenericClient, client: ClientId, op: &RecordOp) -> Result<u64> {
    match op {
        RecordOp::Insert { row, indexes, blob } => {
            if row.client_id != client {
                return Err(StoreError::NotFound);
            }
            insert_row(tx, row, false).await?;
            insert_indexes(tx, row.id, indexes).await?;
            if let Some(blob) = blob {
                tx.execute(
                    "INSERT INTO record_blobs (record_id, content) VALUES ($1, $2)",
                    &[&row.id.to_string(), &blob.as_bytes()],
                )
                .await?;
            }
            Ok(1)
        }
        RecordOp::InsertIfAbsent { row } => {
            if row.client_id != client {
                return Err(StoreError::NotFound);
            }
            insert_row(tx, row, true).await
        }
        RecordOp::Update {
            row,
            expected_version,
            indexes,
        } => {
            let current = version_of(tx, client, row.id, row.kind.as_str()).await?;
            if current != *expected_version {
                return Err(StoreError::VersionConflict);
            }
            tx.execute(
                "UPDATE client_records SET label = $1, status = $2, period = $3, due_on = $4,
                     holder = $5, plain = $6, sealed = $7, updated_at = $8, version = $9
                 WHERE id = $10 AND version = $11",
                &[
                    &row.label,
                    &row.status,
                    &row.period,
                    &row.due_on,
                    &row.holder.map(|h| h.to_string()),
                    &row.plain,
                    &row.sealed.as_ref().map(Sealed::as_bytes),
                    &row.updated_at_ms,
                    &(expected_version + 1),
                    &row.id.to_string(),
                    expected_version,
                ],
            )
            .await
            .map_err(map_unique)?;
            if let Some(indexes) = indexes {
                tx.execute(
                    "DELETE FROM record_index WHERE record_id = $1",
                    &[&row.id.to_string()],
                )
                .await?;
                insert_indexes(tx, row.id, indexes).await?;
            }
            Ok(1)
        }
        RecordOp::Delete { id, kind } => {
            version_of(tx, client, *id, kind.as_str()).await?;
            let id = id.to_string();
            delete_records(tx, "parent_id = $1", &id).await?;
            delete_records(tx, "id = $1", &id).await?;
            Ok(1)
        }
    }
}

async fn lead_get(c: &impl GenericClient, id: LeadId) -> Result<Option<LeadRow>> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {} FROM leads WHERE id = $1",
            records::LEAD_SELECT
        ))
        .await?;
    c.query_opt(&stmt, &[&id.to_string()])
        .await?
        .as_ref()
        .map(lead_from)
        .transpose()
}

async fn lead_update(tx: &impl GenericClient, row: &LeadRow, expected_version: i64) -> Result<()> {
    let changed = tx
        .execute(
            "UPDATE leads SET company_name = $1, stage = $2, source = $3, owner = $4, sealed = $5,
                 mobile_index = $6, client_id = $7, updated_at = $8, version = $9,
                 encryptions = encryptions + 1
             WHERE id = $10 AND version = $11",
            &[
                &row.company_name,
                &row.stage,
                &row.source,
                &row.owner.map(|u| u.to_string()),
                &row.sealed.as_bytes(),
                &row.mobile_index.as_ref().map(|i| i.as_bytes().to_vec()),
                &row.client_id.map(|c| c.to_string()),
                &row.updated_at_ms,
                &(expected_version + 1),
                &row.id.to_string(),
                &expected_version,
            ],
        )
        .await?;
    if changed == 0 {
        return Err(match lead_get(tx, row.id).await? {
            Some(_) => StoreError::VersionConflict,
            None => StoreError::NotFound,
        });
    }
    Ok(())
}

#[async_trait]
impl RecordStore for PgStore {
    async fn record_write(
        &self,
        scope: Scope,
        client: ClientId,
        ops: Vec<RecordOp>,
        event: AuditEvent,
    ) -> Result<u64> {
        let changed = self
            .record_write_many(vec![RecordWrite {
                scope,
                client,
                ops,
                event,
            }])
            .await?;
        Ok(changed.into_iter().sum())
    }

    async fn record_write_many(&self, writes: Vec<RecordWrite>) -> Result<Vec<u64>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let mut counts = Vec::with_capacity(writes.len());
        for w in &writes {
            client_in_scope(&tx, w.scope, w.client).await?;
            let (mut changed, mut sealed) = (0, 0);
            for op in &w.ops {
                let n = apply(&tx, w.client, op).await?;
                changed += n;
                if n > 0 {
                    sealed += op.sealed_values();
                }
            }
            super::data_keys::count_encryptions(
                &tx,
                crate::KeyHolder::Client,
                &w.client.to_string(),
                sealed,
            )
            .await?;
            insert_event(&tx, &self.chain, &w.event).await?;
            counts.push(changed);
        }
        tx.commit().await?;
        Ok(counts)
    }

    async fn record_query(
        &self,
        scope: Scope,
        q: RecordQuery,
        event: Option<AuditEvent>,
    ) -> Result<Vec<RecordHit>> {
        let mut c = self.client().await?;
        match event {
            None => query(&c, scope, &q).await,
            Some(event) => {
                let tx = c.transaction().await?;
                let found = query(&tx, scope, &q).await?;
                if !found.is_empty() {
                    insert_event(&tx, &self.chain, &event).await?;
                }
                tx.commit().await?;
                Ok(found)
            }
        }
    }

    async fn record_blob(
        &self,
        scope: Scope,
        client: ClientId,
        id: RecordId,
        event: AuditEvent,
    ) -> Result<Option<(RecordHit, Sealed)>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let q = RecordQuery {
            id: Some(id),
            ..RecordQuery::of_client(crate::RecordKind::Document, client)
        };
        let Some(hit) = query(&tx, scope, &q).await?.into_iter().next() else {
            return Ok(None);
        };
        let content: Vec<u8> = tx
            .query_opt(
                "SELECT content FROM record_blobs WHERE record_id = $1",
                &[&id.to_string()],
            )
            .await?
            .ok_or(StoreError::NotFound)?
            .try_get(0)?;
        let sealed = Sealed::from_bytes(content)
            .map_err(|e| StoreError::corrupt("record_blobs.content", e))?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(Some((hit, sealed)))
    }

    async fn lead_insert(&self, row: LeadRow, event: AuditEvent) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            &format!(
                "INSERT INTO leads ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                records::LEAD_COLUMNS
            ),
            &[
                &row.id.to_string(),
                &row.company_name,
                &row.stage,
                &row.source,
                &row.owner.map(|u| u.to_string()),
                &row.sealed.as_bytes(),
                &row.mobile_index.as_ref().map(|i| i.as_bytes().to_vec()),
                &row.key.current.wrapped.as_bytes(),
                &row.client_id.map(|c| c.to_string()),
                &row.created_at_ms,
                &row.updated_at_ms,
                &row.version,
            ],
        )
        .await?;
        super::data_keys::count_encryptions(&tx, crate::KeyHolder::Lead, &row.id.to_string(), 1)
            .await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn lead_list(&self, owner: Option<UserId>, limit: u32) -> Result<Vec<LeadRow>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {} FROM leads WHERE ($1::TEXT IS NULL OR owner = $1)
                 ORDER BY updated_at DESC, id DESC LIMIT $2",
                records::LEAD_SELECT
            ))
            .await?;
        let rows = c
            .query(&stmt, &[&owner.map(|u| u.to_string()), &i64::from(limit)])
            .await?;
        rows.iter().map(lead_from).collect()
    }

    async fn lead_find_by_mobile(
        &self,
        owner: Option<UserId>,
        tokens: Vec<BlindIndex>,
        limit: u32,
    ) -> Result<Vec<LeadRow>> {
        let tokens: Vec<&[u8]> = tokens.iter().map(|t| t.as_bytes()).collect();
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {} FROM leads WHERE ($1::TEXT IS NULL OR owner = $1)
                 AND mobile_index = ANY($3)
                 ORDER BY updated_at DESC, id DESC LIMIT $2",
                records::LEAD_SELECT
            ))
            .await?;
        let rows = c
            .query(
                &stmt,
                &[&owner.map(|u| u.to_string()), &i64::from(limit), &tokens],
            )
            .await?;
        rows.iter().map(lead_from).collect()
    }

    async fn leads_after(&self, after: Option<LeadId>, limit: u32) -> Result<Vec<LeadRow>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(&format!(
                "SELECT {} FROM leads WHERE ($1::TEXT IS NULL OR id > $1) ORDER BY id LIMIT $2",
                records::LEAD_SELECT
            ))
            .await?;
        let rows = c
            .query(&stmt, &[&after.map(|u| u.to_string()), &i64::from(limit)])
            .await?;
        rows.iter().map(lead_from).collect()
    }

    async fn lead_get(&self, id: LeadId) -> Result<Option<LeadRow>> {
        lead_get(&self.client().await?, id).await
    }

    async fn lead_update(
        &self,
        row: LeadRow,
        expected_version: i64,
        event: AuditEvent,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        lead_update(&tx, &row, expected_version).await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn lead_convert(
        &self,
        lead: LeadRow,
        expected_version: i64,
        client: ClientRow,
        key: WrappedKey,
        event: AuditEvent,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        lead_update(&tx, &lead, expected_version).await?;
        insert_client(&tx, &client, &key).await?;
        insert_event(&tx, &self.chain, &event).await?;
        tx.commit().await?;
        Ok(())
    }
}
