//! Backup and restore on PostgreSQL. A snapshot is one REPEATABLE READ, READ ONLY transaction
//! read through portals, so other nodes keep writing and no table is held in memory whole; a
//! restore is one transaction that loads each table with binary COPY.

use std::pin::Pin;

use deadpool_postgres::GenericClient;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{IsolationLevel, Row};

use super::{migrate_in, PgStore, MIGRATION_LOCK};
use crate::backup::{
    check_catalog, clean_label, snapshot_channel, table_spec, Batcher, FeedCheck, FeedItem,
    RestoreFeed, RestoreMode, RestoreOutcome, SafetyCopy, Snapshot, SnapshotInfo, SnapshotItem,
    SnapshotMsg, SnapshotSender, TableSpec, Value, BATCH_BYTES, BATCH_ROWS, TABLES,
};
use crate::{Result, StoreError};

/// The column types the schema uses; anything else cannot be carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PgType {
    Bool,
    Int4,
    Int8,
    Text,
    Bytea,
}

impl PgType {
    fn sql_type(self) -> Type {
        match self {
            PgType::Bool => Type::BOOL,
            PgType::Int4 => Type::INT4,
            PgType::Int8 => Type::INT8,
            PgType::Text => Type::TEXT,
            PgType::Bytea => Type::BYTEA,
        }
    }
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn tables_in(c: &impl GenericClient) -> Result<Vec<String>> {
    let rows = c
        .query(
            "SELECT table_name::TEXT FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<_, String>(0)?))
        .collect()
}

async fn columns(c: &impl GenericClient, table: &str) -> Result<Vec<(String, PgType)>> {
    let rows = c
        .query(
            "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1
             ORDER BY ordinal_position",
            &[&table],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let name: String = r.try_get(0)?;
            let declared: String = r.try_get(1)?;
            let ty = match declared.as_str() {
                "boolean" => PgType::Bool,
                "integer" => PgType::Int4,
                "bigint" => PgType::Int8,
                "text" => PgType::Text,
                "bytea" => PgType::Bytea,
                other => {
                    return Err(StoreError::Backup(format!(
                        "{table}.{name} is declared {other}, which a backup cannot carry"
                    )))
                }
            };
            Ok((name, ty))
        })
        .collect()
}

/// Text keys are ordered bytewise (`COLLATE "C"`), as SQLite orders them, so a table's rows
/// come in the same order, and hash alike, from either store.
fn select_sql(spec: &TableSpec, columns: &[(String, PgType)]) -> String {
    let list: Vec<String> = columns.iter().map(|(c, _)| quoted(c)).collect();
    let mut order: Vec<String> = spec
        .parents_first
        .map(|p| format!("({} IS NOT NULL)", quoted(p)))
        .into_iter()
        .collect();
    for key in spec.order_by {
        let text = columns.iter().any(|(c, t)| c == key && *t == PgType::Text);
        order.push(if text {
            format!("{} COLLATE \"C\"", quoted(key))
        } else {
            quoted(key)
        });
    }
    format!(
        "SELECT {} FROM {}{} ORDER BY {}",
        list.join(", "),
        quoted(spec.name),
        if spec.transient { " WHERE 1 = 0" } else { "" },
        order.join(", ")
    )
}

fn value(row: &Row, i: usize, ty: PgType) -> Result<Value> {
    Ok(match ty {
        PgType::Bool => row
            .try_get::<_, Option<bool>>(i)?
            .map_or(Value::Null, |b| Value::Int(i64::from(b))),
        PgType::Int4 => row
            .try_get::<_, Option<i32>>(i)?
            .map_or(Value::Null, |n| Value::Int(i64::from(n))),
        PgType::Int8 => row
            .try_get::<_, Option<i64>>(i)?
            .map_or(Value::Null, Value::Int),
        PgType::Text => row
            .try_get::<_, Option<String>>(i)?
            .map_or(Value::Null, Value::Text),
        PgType::Bytea => row
            .try_get::<_, Option<Vec<u8>>>(i)?
            .map_or(Value::Null, Value::Bytes),
    })
}

type Param = Box<dyn ToSql + Sync + Send>;

fn param(v: Value, ty: PgType, table: &str, column: &str) -> Result<Param> {
    let wrong = |what: &str| {
        StoreError::Backup(format!(
            "{table}.{column} is {ty:?} here; the backup holds {what}"
        ))
    };
    Ok(match (v, ty) {
        (Value::Null, PgType::Bool) => Box::new(None::<bool>),
        (Value::Null, PgType::Int4) => Box::new(None::<i32>),
        (Value::Null, PgType::Int8) => Box::new(None::<i64>),
        (Value::Null, PgType::Text) => Box::new(None::<String>),
        (Value::Null, PgType::Bytea) => Box::new(None::<Vec<u8>>),
        (Value::Int(n @ (0 | 1)), PgType::Bool) => Box::new(Some(n == 1)),
        (Value::Int(n), PgType::Int4) => Box::new(Some(
            i32::try_from(n).map_err(|_| wrong("an integer beyond 32 bits"))?,
        )),
        (Value::Int(n), PgType::Int8) => Box::new(Some(n)),
        (Value::Text(t), PgType::Text) => Box::new(Some(t)),
        (Value::Bytes(b), PgType::Bytea) => Box::new(Some(b)),
        (Value::Int(_), _) => return Err(wrong("an integer")),
        (Value::Text(_), _) => return Err(wrong("text")),
        (Value::Bytes(_), _) => return Err(wrong("bytes")),
    })
}

pub(super) async fn snapshot(store: &PgStore) -> Result<Snapshot> {
    let client = store.client().await?;
    let (sender, rx) = snapshot_channel();
    tokio::spawn(async move {
        let mut client = client;
        if let Err(e) = read_snapshot(&mut client, &sender).await {
            let _ = sender.send(SnapshotMsg::Failed(e)).await;
        }
    });
    Snapshot::open(rx).await
}

async fn read_snapshot(
    client: &mut deadpool_postgres::Object,
    sender: &SnapshotSender,
) -> Result<()> {
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let schema_version: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
            &[],
        )
        .await?
        .try_get(0)?;
    check_catalog(tables_in(&tx).await?)?;
    let head = tx
        .query_one("SELECT seq, hash FROM audit_head WHERE id = 1", &[])
        .await?;
    let mut tables = Vec::with_capacity(TABLES.len());
    for spec in TABLES {
        let n: i64 = if spec.transient {
            0
        } else {
            tx.query_one(&format!("SELECT COUNT(*) FROM {}", quoted(spec.name)), &[])
                .await?
                .try_get(0)?
        };
        tables.push((spec.name, n.max(0) as u64));
    }
    let info = SnapshotInfo {
        backend: "postgres",
        schema_version,
        tables,
        audit_head_seq: head.try_get(0)?,
        audit_head_hash: head.try_get(1)?,
    };
    if sender.send(SnapshotMsg::Start(info)).await.is_err() {
        return Ok(());
    }
    for spec in TABLES {
        let cols = columns(&tx, spec.name).await?;
        let table = SnapshotItem::Table {
            name: spec.name,
            columns: cols.iter().map(|(c, _)| c.clone()).collect(),
        };
        if sender.send(SnapshotMsg::Item(table)).await.is_err() {
            return Ok(());
        }
        let stmt = tx.prepare(&select_sql(spec, &cols)).await?;
        let portal = tx.bind(&stmt, &[]).await?;
        // Fetched a few rows at first, then as many as fill a batch at the rows' average size,
        // so a table of 20 MiB documents is never fetched 512 at a time.
        let mut fetch: usize = 16;
        loop {
            let rows = tx.query_portal(&portal, fetch as i32).await?;
            if rows.is_empty() {
                break;
            }
            let mut batcher = Batcher::new();
            let mut bytes = 0usize;
            let fetched = rows.len();
            for r in &rows {
                let mut row = Vec::with_capacity(cols.len());
                for (i, (_, ty)) in cols.iter().enumerate() {
                    row.push(value(r, i, *ty)?);
                }
                bytes += row.iter().map(Value::weight).sum::<usize>();
                if let Some(batch) = batcher.push(row) {
                    if sender
                        .send(SnapshotMsg::Item(SnapshotItem::Rows(batch)))
                        .await
                        .is_err()
                    {
                        return Ok(());
                    }
                }
            }
            if let Some(batch) = batcher.take() {
                if sender
                    .send(SnapshotMsg::Item(SnapshotItem::Rows(batch)))
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            }
            let average = (bytes / fetched).max(1);
            fetch = (BATCH_BYTES / average).clamp(1, BATCH_ROWS);
        }
    }
    tx.commit().await?;
    let _ = sender.send(SnapshotMsg::Item(SnapshotItem::End)).await;
    Ok(())
}

/// The tables, other than the seeded ones, that hold at least one row.
pub(super) async fn occupied(c: &impl GenericClient) -> Result<Vec<&'static str>> {
    let mut out = Vec::new();
    for spec in TABLES.iter().filter(|t| !t.seeded) {
        let any: bool = c
            .query_one(
                &format!("SELECT EXISTS (SELECT 1 FROM {})", quoted(spec.name)),
                &[],
            )
            .await?
            .try_get(0)?;
        if any {
            out.push(spec.name);
        }
    }
    Ok(out)
}

/// `<schema>_before_restore_<label>`, shortened to PostgreSQL's 63-byte identifiers by
/// trimming the schema's part, never the label that makes it unique.
fn aside_name(schema: &str, label: &str) -> String {
    let suffix = format!("_before_restore_{}", clean_label(label).to_lowercase());
    let room = 63usize.saturating_sub(suffix.len());
    let mut base: String = String::new();
    for ch in schema.chars() {
        if base.len() + ch.len_utf8() > room {
            break;
        }
        base.push(ch);
    }
    format!("{base}{suffix}")
}

struct CopyIn {
    writer: Pin<Box<BinaryCopyInWriter>>,
    target: Vec<(String, PgType)>,
    table: &'static str,
}

pub(super) async fn restore(
    store: &PgStore,
    mode: RestoreMode,
    mut feed: RestoreFeed,
) -> Result<RestoreOutcome> {
    let mut client = store.client().await?;
    let tx = client.transaction().await?;
    // The migration lock: no node starts, and no other restore begins, on this schema meanwhile.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let safety_copy = match mode {
        RestoreMode::IntoEmpty => {
            let occupied = occupied(&tx).await?;
            if !occupied.is_empty() {
                return Err(StoreError::TargetNotEmpty(occupied));
            }
            None
        }
        RestoreMode::Replace { label } => {
            let schema: Option<String> = tx
                .query_one("SELECT current_schema()::TEXT", &[])
                .await?
                .try_get(0)?;
            let schema = schema.ok_or_else(|| {
                StoreError::Config("the connection's search_path names no existing schema".into())
            })?;
            let aside = aside_name(&schema, &label);
            // In the restore's own transaction: a restore that fails or is killed leaves the
            // schema where it was.
            tx.batch_execute(&format!(
                "ALTER SCHEMA {} RENAME TO {}; CREATE SCHEMA {}",
                quoted(&schema),
                quoted(&aside),
                quoted(&schema)
            ))
            .await?;
            migrate_in(&tx).await?;
            Some(SafetyCopy::Schema(aside))
        }
    };
    for spec in TABLES.iter().filter(|t| t.seeded) {
        tx.execute(&format!("DELETE FROM {}", quoted(spec.name)), &[])
            .await?;
    }
    let mut check = FeedCheck::new();
    let mut copy: Option<CopyIn> = None;
    loop {
        match feed.next().await? {
            FeedItem::Table {
                name,
                columns: cols,
            } => {
                if let Some(mut done) = copy.take() {
                    done.writer.as_mut().finish().await?;
                }
                let spec = table_spec(&name).ok_or_else(|| {
                    StoreError::Backup(format!("the backup has an unknown table {name}"))
                })?;
                let target = columns(&tx, spec.name).await?;
                let names: Vec<String> = target.iter().map(|(c, _)| c.clone()).collect();
                check.table(&name, &cols, &names)?;
                let sql = format!(
                    "COPY {} ({}) FROM STDIN BINARY",
                    quoted(spec.name),
                    names
                        .iter()
                        .map(|c| quoted(c))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let sink = tx.copy_in(&sql).await?;
                let types: Vec<Type> = target.iter().map(|(_, t)| t.sql_type()).collect();
                copy = Some(CopyIn {
                    writer: Box::pin(BinaryCopyInWriter::new(sink, &types)),
                    target,
                    table: spec.name,
                });
            }
            FeedItem::Rows(rows) => {
                let current = copy
                    .as_mut()
                    .ok_or_else(|| StoreError::Backup("rows before any table".into()))?;
                for row in rows {
                    check.row(&row)?;
                    let params = row
                        .into_iter()
                        .zip(&current.target)
                        .map(|(v, (column, ty))| param(v, *ty, current.table, column))
                        .collect::<Result<Vec<Param>>>()?;
                    let refs: Vec<&(dyn ToSql + Sync)> = params
                        .iter()
                        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                        .collect();
                    current.writer.as_mut().write(&refs).await?;
                }
            }
            FeedItem::Commit => {
                if let Some(mut done) = copy.take() {
                    done.writer.as_mut().finish().await?;
                }
                check.finish()?;
                tx.commit().await?;
                return Ok(RestoreOutcome {
                    rows: check.rows,
                    safety_copy,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aside_name_fits_an_identifier_and_keeps_the_label() {
        assert_eq!(
            aside_name("public", "20261129T041700Z"),
            "public_before_restore_20261129t041700z"
        );
        let long = aside_name(&"s".repeat(80), "20261129T041700Z");
        assert!(long.len() <= 63, "{long}");
        assert!(long.ends_with("_before_restore_20261129t041700z"));
    }
}
