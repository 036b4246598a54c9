//! [`RecordStore`] on SQLite: every call is one closure on one connection, one transaction.

use crate::scope::sqlite_filter;
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use zf_audit::AuditEvent;
use zf_crypto::{BlindIndex, Sealed, WrappedKey};
use zf_domain::{ClientId, LeadId, RecordId, UserId};
use zf_policy::Scope;

use super::{boxed, collect, insert_client, insert_event, map_unique, SqliteStore};
use crate::records::{self, LeadColumns, RecordColumns};
use crate::ChainCell;
use crate::{
    scope, ClientRow, IndexEntry, LeadRow, QueryValue, RecordHit, RecordOp, RecordQuery, RecordRow,
    RecordStore, RecordWrite, Result, StoreError,
};

fn hit_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<RecordHit>> {
    Ok(records::decode(RecordColumns {
        id: r.get(0)?,
        client_id: r.get(1)?,
        kind: r.get(2)?,
        parent_id: r.get(3)?,
        label: r.get(4)?,
        status: r.get(5)?,
        period: r.get(6)?,
        due_on: r.get(7)?,
        holder: r.get(8)?,
        plain: r.get(9)?,
        sealed: r.get(10)?,
        created_by: r.get(11)?,
        created_at_ms: r.get(12)?,
        updated_at_ms: r.get(13)?,
        version: r.get(14)?,
        client_name: r.get(15)?,
        wrapped_dek: r.get(16)?,
        dek_version: r.get(17)?,
        previous_dek: r.get(18)?,
        previous_version: r.get(19)?,
    }))
}

fn lead_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<LeadRow>> {
    Ok(records::decode_lead(LeadColumns {
        id: r.get(0)?,
        company_name: r.get(1)?,
        stage: r.get(2)?,
        source: r.get(3)?,
        owner: r.get(4)?,
        sealed: r.get(5)?,
        mobile_index: r.get(6)?,
        wrapped_dek: r.get(7)?,
        client_id: r.get(8)?,
        created_at_ms: r.get(9)?,
        updated_at_ms: r.get(10)?,
        version: r.get(11)?,
        dek_version: r.get(12)?,
        previous_dek: r.get(13)?,
        previous_version: r.get(14)?,
    }))
}

fn client_in_scope(c: &Connection, scope: Scope, client: ClientId) -> Result<()> {
    let (kind, user) = scope::params(scope);
    c.prepare_cached(concat!(
        "SELECT 1 FROM clients c
         WHERE ",
        sqlite_filter!(),
        " AND c.id = ?3"
    ))?
    .query_row(params![kind, user, client.to_string()], |_| Ok(()))
    .optional()?
    .ok_or(StoreError::NotFound)
}

fn query(c: &Connection, scope: Scope, q: &RecordQuery) -> Result<Vec<RecordHit>> {
    if let Some(client) = q.client {
        client_in_scope(c, scope, client)?;
    }
    let (kind, user) = scope::params(scope);
    let (clause, values) = q.clause(|n| format!("?{n}"));
    let mut all = boxed(vec![
        QueryValue::Int(kind),
        user.map_or(QueryValue::Null, QueryValue::Text),
    ]);
    all.extend(boxed(values));
    let sql = format!(
        "{}{clause}{} LIMIT {}",
        records::SELECT,
        records::ORDER,
        q.limit
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(all.iter()), hit_from)?;
    collect(rows)
}

fn insert_row(tx: &Connection, row: &RecordRow, if_absent: bool) -> Result<usize> {
    let sql = format!(
        "{} VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15){}",
        records::INSERT,
        if if_absent {
            " ON CONFLICT DO NOTHING"
        } else {
            ""
        }
    );
    Ok(tx.prepare_cached(&sql)?.execute(params![
        row.id.to_string(),
        row.client_id.to_string(),
        row.kind.as_str(),
        row.parent_id.map(|p| p.to_string()),
        row.label,
        row.status,
        row.period,
        row.due_on,
        row.holder.map(|h| h.to_string()),
        row.plain,
        row.sealed.as_ref().map(Sealed::as_bytes),
        row.created_by.map(|u| u.to_string()),
        row.created_at_ms,
        row.updated_at_ms,
        row.version,
    ])?)
}

fn insert_indexes(tx: &Connection, id: RecordId, indexes: &[IndexEntry]) -> Result<()> {
    for i in indexes {
        tx.prepare_cached(
            "INSERT INTO record_index (field, token, record_id) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![i.field, i.token.as_bytes(), id.to_string()])?;
    }
    Ok(())
}

/// The version of a record of this client and kind, or `NotFound`.
fn version_of(tx: &Connection, client: ClientId, id: RecordId, kind: &str) -> Result<i64> {
    tx.prepare_cached(
        "SELECT version FROM client_records WHERE id = ?1 AND client_id = ?2 AND kind = ?3",
    )?
    .query_row(params![id.to_string(), client.to_string(), kind], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or(StoreError::NotFound)
}

fn delete_records(tx: &Connection, where_clause: &str, id: &str) -> Result<()> {
    for sql in [
        "DELETE FROM record_index WHERE record_id IN (SELECT id FROM client_records WHERE {w})",
        "DELETE FROM record_blobs WHERE record_id IN (SELECT id FROM client_records WHERE {w})",
        "DELETE FROM client_records WHERE {w}",
    ] {
        tx.execute(&sql.replace("{w}", where_clause), [id])?;
    }
    Ok(())
}

fn apply(tx: &Connection, client: ClientId, op: &RecordOp) -> Result<u64> {
    match op {
        RecordOp::Insert { row, indexes, blob } => {
            if row.client_id != client {
                return Err(StoreError::NotFound);
            }
            insert_row(tx, row, false).map_err(|e| match e {
                StoreError::Sqlite(e) => map_unique(e),
                other => other,
            })?;
            insert_indexes(tx, row.id, indexes)?;
            if let Some(blob) = blob {
                tx.execute(
                    "INSERT INTO record_blobs (record_id, content) VALUES (?1, ?2)",
                    params![row.id.to_string(), blob.as_bytes()],
                )?;
            }
            Ok(1)
        }
        RecordOp::InsertIfAbsent { row } => {
            if row.client_id != client {
                return Err(StoreError::NotFound);
            }
            Ok(insert_row(tx, row, true)? as u64)
        }
        RecordOp::Update {
            row,
            expected_version,
            indexes,
        } => {
            let current = version_of(tx, client, row.id, row.kind.as_str())?;
            if current != *expected_version {
                return Err(StoreError::VersionConflict);
            }
            tx.prepare_cached(
                "UPDATE client_records SET label = ?1, status = ?2, period = ?3, due_on = ?4,
                     holder = ?5, plain = ?6, sealed = ?7, updated_at = ?8, version = ?9
                 WHERE id = ?10 AND version = ?11",
            )?
            .execute(params![
                row.label,
                row.status,
                row.period,
                row.due_on,
                row.holder.map(|h| h.to_string()),
                row.plain,
                row.sealed.as_ref().map(Sealed::as_bytes),
                row.updated_at_ms,
                expected_version + 1,
                row.id.to_string(),
                expected_version,
            ])
            .map_err(map_unique)?;
            if let Some(indexes) = indexes {
                tx.execute(
                    "DELETE FROM record_index WHERE record_id = ?1",
                    [row.id.to_string()],
                )?;
                insert_indexes(tx, row.id, indexes)?;
            }
            Ok(1)
        }
        RecordOp::Delete { id, kind } => {
            version_of(tx, client, *id, kind.as_str())?;
            let id = id.to_string();
            delete_records(tx, "parent_id = ?1", &id)?;
            delete_records(tx, "id = ?1", &id)?;
            Ok(1)
        }
    }
}

fn write_one(tx: &Connection, chain: &ChainCell, w: &RecordWrite) -> Result<u64> {
    client_in_scope(tx, w.scope, w.client)?;
    let (mut changed, mut sealed) = (0, 0);
    for op in &w.ops {
        let n = apply(tx, w.client, op)?;
        changed += n;
        if n > 0 {
            sealed += op.sealed_values();
        }
    }
    super::data_keys::count_encryptions(
        tx,
        crate::KeyHolder::Client,
        &w.client.to_string(),
        sealed,
    )?;
    insert_event(tx, chain, &w.event)?;
    Ok(changed)
}

fn lead_get(c: &Connection, id: LeadId) -> Result<Option<LeadRow>> {
    c.prepare_cached(&format!(
        "SELECT {} FROM leads WHERE id = ?1",
        records::LEAD_SELECT
    ))?
    .query_row([id.to_string()], lead_from)
    .optional()?
    .transpose()
}

fn lead_update(tx: &Connection, row: &LeadRow, expected_version: i64) -> Result<()> {
    let changed = tx.execute(
        "UPDATE leads SET company_name = ?1, stage = ?2, source = ?3, owner = ?4, sealed = ?5,
             mobile_index = ?6, client_id = ?7, updated_at = ?8, version = ?9,
             encryptions = encryptions + 1
         WHERE id = ?10 AND version = ?11",
        params![
            row.company_name,
            row.stage,
            row.source,
            row.owner.map(|u| u.to_string()),
            row.sealed.as_bytes(),
            row.mobile_index.as_ref().map(|i| i.as_bytes().to_vec()),
            row.client_id.map(|c| c.to_string()),
            row.updated_at_ms,
            expected_version + 1,
            row.id.to_string(),
            expected_version,
        ],
    )?;
    if changed == 0 {
        return Err(match lead_get(tx, row.id)? {
            Some(_) => StoreError::VersionConflict,
            None => StoreError::NotFound,
        });
    }
    Ok(())
}

#[async_trait]
impl RecordStore for SqliteStore {
    async fn record_write(
        &self,
        scope: Scope,
        client: ClientId,
        ops: Vec<RecordOp>,
        event: AuditEvent,
    ) -> Result<u64> {
        let write = RecordWrite {
            scope,
            client,
            ops,
            event,
        };
        self.write(move |tx, chain| write_one(tx, chain, &write))
            .await
    }

    async fn record_write_many(&self, writes: Vec<RecordWrite>) -> Result<Vec<u64>> {
        self.write(move |tx, chain| writes.iter().map(|w| write_one(tx, chain, w)).collect())
            .await
    }

    async fn record_query(
        &self,
        scope: Scope,
        q: RecordQuery,
        event: Option<AuditEvent>,
    ) -> Result<Vec<RecordHit>> {
        match event {
            None => self.run(move |c| query(c, scope, &q)).await,
            Some(event) => {
                self.write(move |tx, chain| {
                    let found = query(tx, scope, &q)?;
                    if !found.is_empty() {
                        insert_event(tx, chain, &event)?;
                    }
                    Ok(found)
                })
                .await
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
        self.write(move |tx, chain| {
            let q = RecordQuery {
                id: Some(id),
                ..RecordQuery::of_client(crate::RecordKind::Document, client)
            };
            let Some(hit) = query(tx, scope, &q)?.into_iter().next() else {
                return Ok(None);
            };
            let content: Vec<u8> = tx
                .prepare_cached("SELECT content FROM record_blobs WHERE record_id = ?1")?
                .query_row([id.to_string()], |r| r.get(0))
                .optional()?
                .ok_or(StoreError::NotFound)?;
            let sealed = Sealed::from_bytes(content)
                .map_err(|e| StoreError::corrupt("record_blobs.content", e))?;
            insert_event(tx, chain, &event)?;
            Ok(Some((hit, sealed)))
        })
        .await
    }

    async fn lead_insert(&self, row: LeadRow, event: AuditEvent) -> Result<()> {
        self.write(move |tx, chain| {
            tx.execute(
                &format!(
                    "INSERT INTO leads ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    records::LEAD_COLUMNS
                ),
                params![
                    row.id.to_string(),
                    row.company_name,
                    row.stage,
                    row.source,
                    row.owner.map(|u| u.to_string()),
                    row.sealed.as_bytes(),
                    row.mobile_index.as_ref().map(|i| i.as_bytes().to_vec()),
                    row.key.current.wrapped.as_bytes(),
                    row.client_id.map(|c| c.to_string()),
                    row.created_at_ms,
                    row.updated_at_ms,
                    row.version,
                ],
            )?;
            super::data_keys::count_encryptions(
                tx,
                crate::KeyHolder::Lead,
                &row.id.to_string(),
                1,
            )?;
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn lead_list(&self, owner: Option<UserId>, limit: u32) -> Result<Vec<LeadRow>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {} FROM leads WHERE (?1 IS NULL OR owner = ?1)
                 ORDER BY updated_at DESC, id DESC LIMIT ?2",
                records::LEAD_SELECT
            ))?;
            let rows = stmt.query_map(params![owner.map(|u| u.to_string()), limit], lead_from)?;
            collect(rows)
        })
        .await
    }

    async fn lead_find_by_mobile(
        &self,
        owner: Option<UserId>,
        tokens: Vec<BlindIndex>,
        limit: u32,
    ) -> Result<Vec<LeadRow>> {
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        self.run(move |c| {
            let marks = (0..tokens.len())
                .map(|i| format!("?{}", i + 3))
                .collect::<Vec<_>>()
                .join(", ");
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {} FROM leads WHERE (?1 IS NULL OR owner = ?1)
                 AND mobile_index IN ({marks})
                 ORDER BY updated_at DESC, id DESC LIMIT ?2",
                records::LEAD_SELECT
            ))?;
            let mut values: Vec<rusqlite::types::Value> =
                vec![owner.map(|u| u.to_string()).into(), i64::from(limit).into()];
            values.extend(
                tokens
                    .iter()
                    .map(|t| rusqlite::types::Value::Blob(t.as_bytes().to_vec())),
            );
            let rows = stmt.query_map(rusqlite::params_from_iter(values), lead_from)?;
            collect(rows)
        })
        .await
    }

    async fn leads_after(&self, after: Option<LeadId>, limit: u32) -> Result<Vec<LeadRow>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {} FROM leads WHERE (?1 IS NULL OR id > ?1) ORDER BY id LIMIT ?2",
                records::LEAD_SELECT
            ))?;
            let rows = stmt.query_map(params![after.map(|u| u.to_string()), limit], lead_from)?;
            collect(rows)
        })
        .await
    }

    async fn lead_get(&self, id: LeadId) -> Result<Option<LeadRow>> {
        self.run(move |c| lead_get(c, id)).await
    }

    async fn lead_update(
        &self,
        row: LeadRow,
        expected_version: i64,
        event: AuditEvent,
    ) -> Result<()> {
        self.write(move |tx, chain| {
            lead_update(tx, &row, expected_version)?;
            insert_event(tx, chain, &event)
        })
        .await
    }

    async fn lead_convert(
        &self,
        lead: LeadRow,
        expected_version: i64,
        client: ClientRow,
        key: WrappedKey,
        event: AuditEvent,
    ) -> Result<()> {
        self.write(move |tx, chain| {
            lead_update(tx, &lead, expected_version)?;
            insert_client(tx, &client, &key)?;
            insert_event(tx, chain, &event)
        })
        .await
    }
}
