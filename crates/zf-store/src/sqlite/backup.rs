//! Backup and restore on SQLite. A snapshot is one deferred read transaction on a pooled
//! connection: in WAL mode its first read fixes what it sees, and writers keep committing
//! meanwhile. A restore is one IMMEDIATE write transaction.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, TransactionBehavior};

use super::{migrate_in, SqliteStore};
use crate::backup::{
    check_catalog, clean_label, snapshot_channel, table_spec, Batcher, FeedCheck, FeedItem,
    RestoreFeed, RestoreMode, RestoreOutcome, SafetyCopy, Snapshot, SnapshotInfo, SnapshotItem,
    SnapshotMsg, SnapshotSender, TableSpec, Value, TABLES,
};
use crate::{Result, StoreError};

type Pool = r2d2::Pool<SqliteConnectionManager>;

/// The declared type of a column; a value must match it to be carried, so a SQLite backup
/// always fits the stricter PostgreSQL schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Declared {
    Integer,
    Text,
    Blob,
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            Value::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn tables_in(c: &Connection) -> Result<Vec<String>> {
    let mut stmt = c.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(names)
}

fn columns(c: &Connection, table: &str) -> Result<Vec<(String, Declared)>> {
    let mut stmt = c.prepare(&format!("PRAGMA table_info({})", quoted(table)))?;
    let found = stmt
        .query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    found
        .into_iter()
        .map(|(name, declared)| {
            let declared = match declared.to_ascii_uppercase().as_str() {
                "INTEGER" => Declared::Integer,
                "TEXT" => Declared::Text,
                "BLOB" => Declared::Blob,
                other => {
                    return Err(StoreError::Backup(format!(
                        "{table}.{name} is declared {other}, which a backup cannot carry"
                    )))
                }
            };
            Ok((name, declared))
        })
        .collect()
}

fn select_sql(spec: &TableSpec, columns: &[(String, Declared)]) -> String {
    let list: Vec<String> = columns.iter().map(|(c, _)| quoted(c)).collect();
    let mut order: Vec<String> = spec
        .parents_first
        .map(|p| format!("({} IS NOT NULL)", quoted(p)))
        .into_iter()
        .collect();
    order.extend(spec.order_by.iter().map(|c| quoted(c)));
    format!(
        "SELECT {} FROM {}{} ORDER BY {}",
        list.join(", "),
        quoted(spec.name),
        if spec.transient { " WHERE 1 = 0" } else { "" },
        order.join(", ")
    )
}

fn mismatch(table: &str, column: &str, found: &str, declared: Declared) -> StoreError {
    StoreError::Backup(format!(
        "{table}.{column} holds {found} where its type is {declared:?}"
    ))
}

fn value(v: ValueRef<'_>, table: &str, column: &str, declared: Declared) -> Result<Value> {
    match (v, declared) {
        (ValueRef::Null, _) => Ok(Value::Null),
        (ValueRef::Integer(i), Declared::Integer) => Ok(Value::Int(i)),
        (ValueRef::Text(t), Declared::Text) => String::from_utf8(t.to_vec())
            .map(Value::Text)
            .map_err(|_| mismatch(table, column, "text that is not UTF-8", declared)),
        (ValueRef::Blob(b), Declared::Blob) => Ok(Value::Bytes(b.to_vec())),
        (ValueRef::Integer(_), _) => Err(mismatch(table, column, "an integer", declared)),
        (ValueRef::Text(_), _) => Err(mismatch(table, column, "text", declared)),
        (ValueRef::Blob(_), _) => Err(mismatch(table, column, "bytes", declared)),
        (ValueRef::Real(_), _) => Err(mismatch(table, column, "a real number", declared)),
    }
}

fn fits(v: &Value, declared: Declared) -> bool {
    matches!(
        (v, declared),
        (Value::Null, _)
            | (Value::Int(_), Declared::Integer)
            | (Value::Text(_), Declared::Text)
            | (Value::Bytes(_), Declared::Blob)
    )
}

pub(super) async fn snapshot(store: &SqliteStore) -> Result<Snapshot> {
    let pool = store.pool.clone();
    let (sender, rx) = snapshot_channel();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = read_snapshot(&pool, &sender) {
            let _ = sender.blocking_send(SnapshotMsg::Failed(e));
        }
    });
    Snapshot::open(rx).await
}

fn read_snapshot(pool: &Pool, sender: &SnapshotSender) -> Result<()> {
    let mut conn = pool.get()?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
    let schema_version: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    check_catalog(tables_in(&tx)?)?;
    let (audit_head_seq, audit_head_hash): (i64, Vec<u8>) =
        tx.query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let mut tables = Vec::with_capacity(TABLES.len());
    for spec in TABLES {
        let n: i64 = if spec.transient {
            0
        } else {
            tx.query_row(
                &format!("SELECT COUNT(*) FROM {}", quoted(spec.name)),
                [],
                |r| r.get(0),
            )?
        };
        tables.push((spec.name, n.max(0) as u64));
    }
    let info = SnapshotInfo {
        backend: "sqlite",
        schema_version,
        tables,
        audit_head_seq,
        audit_head_hash,
    };
    if sender.blocking_send(SnapshotMsg::Start(info)).is_err() {
        return Ok(());
    }
    for spec in TABLES {
        let cols = columns(&tx, spec.name)?;
        let table = SnapshotItem::Table {
            name: spec.name,
            columns: cols.iter().map(|(c, _)| c.clone()).collect(),
        };
        if sender.blocking_send(SnapshotMsg::Item(table)).is_err() {
            return Ok(());
        }
        let mut stmt = tx.prepare(&select_sql(spec, &cols))?;
        let mut rows = stmt.query([])?;
        let mut batcher = Batcher::new();
        while let Some(r) = rows.next()? {
            let mut row = Vec::with_capacity(cols.len());
            for (i, (name, declared)) in cols.iter().enumerate() {
                row.push(value(r.get_ref(i)?, spec.name, name, *declared)?);
            }
            if let Some(batch) = batcher.push(row) {
                if sender
                    .blocking_send(SnapshotMsg::Item(SnapshotItem::Rows(batch)))
                    .is_err()
                {
                    return Ok(());
                }
            }
        }
        if let Some(batch) = batcher.take() {
            if sender
                .blocking_send(SnapshotMsg::Item(SnapshotItem::Rows(batch)))
                .is_err()
            {
                return Ok(());
            }
        }
    }
    // Ended before the end is reported, so the WAL can be checkpointed past this reader as soon
    // as the consumer has everything.
    tx.commit()?;
    let _ = sender.blocking_send(SnapshotMsg::Item(SnapshotItem::End));
    Ok(())
}

/// The tables, other than the seeded ones, that hold at least one row.
pub(super) fn occupied(c: &Connection) -> Result<Vec<&'static str>> {
    let mut out = Vec::new();
    for spec in TABLES.iter().filter(|t| !t.seeded) {
        let any: bool = c.query_row(
            &format!("SELECT EXISTS (SELECT 1 FROM {})", quoted(spec.name)),
            [],
            |r| r.get(0),
        )?;
        if any {
            out.push(spec.name);
        }
    }
    Ok(out)
}

/// The statement that loads the current table, and its columns' types to check values by.
struct Insert {
    sql: String,
    target: Vec<(String, Declared)>,
    table: &'static str,
}

pub(super) async fn restore(
    store: &SqliteStore,
    mode: RestoreMode,
    mut feed: RestoreFeed,
) -> Result<RestoreOutcome> {
    let pool = store.pool.clone();
    let path = store.path.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Checked at commit: the rows of a table may reference each other in any order, and an
        // emptied schema drops its tables children first without tripping over either.
        tx.execute_batch("PRAGMA defer_foreign_keys = ON")?;
        let safety_copy = match mode {
            RestoreMode::IntoEmpty => {
                let occupied = occupied(&tx)?;
                if !occupied.is_empty() {
                    return Err(StoreError::TargetNotEmpty(occupied));
                }
                None
            }
            RestoreMode::Replace { label } => {
                // Copied while this transaction holds the write lock, so the copy is exactly
                // what the restore replaces.
                let copy = copy_aside(&pool, &path, &label)?;
                empty_schema(&tx)?;
                Some(SafetyCopy::File(copy))
            }
        };
        for spec in TABLES.iter().filter(|t| t.seeded) {
            tx.execute(&format!("DELETE FROM {}", quoted(spec.name)), [])?;
        }
        let indexes = set_aside_indexes(&tx)?;
        let mut check = FeedCheck::new();
        let mut current: Option<Insert> = None;
        loop {
            match feed.blocking_next()? {
                FeedItem::Table {
                    name,
                    columns: cols,
                } => {
                    let spec = table_spec(&name).ok_or_else(|| {
                        StoreError::Backup(format!("the backup has an unknown table {name}"))
                    })?;
                    let target = columns(&tx, spec.name)?;
                    let names: Vec<String> = target.iter().map(|(c, _)| c.clone()).collect();
                    check.table(&name, &cols, &names)?;
                    let params: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
                    let sql = format!(
                        "INSERT INTO {} ({}) VALUES ({})",
                        quoted(spec.name),
                        names
                            .iter()
                            .map(|c| quoted(c))
                            .collect::<Vec<_>>()
                            .join(", "),
                        params.join(", ")
                    );
                    current = Some(Insert {
                        sql,
                        target,
                        table: spec.name,
                    });
                }
                FeedItem::Rows(rows) => {
                    let insert = current
                        .as_ref()
                        .ok_or_else(|| StoreError::Backup("rows before any table".into()))?;
                    let mut stmt = tx.prepare_cached(&insert.sql)?;
                    for row in rows {
                        check.row(&row)?;
                        for (v, (column, declared)) in row.iter().zip(&insert.target) {
                            if !fits(v, *declared) {
                                return Err(mismatch(
                                    insert.table,
                                    column,
                                    "another type",
                                    *declared,
                                ));
                            }
                        }
                        stmt.execute(rusqlite::params_from_iter(row.iter()))?;
                    }
                }
                FeedItem::Commit => {
                    check.finish()?;
                    for sql in &indexes {
                        tx.execute_batch(sql)?;
                    }
                    tx.commit()?;
                    return Ok(RestoreOutcome {
                        rows: check.rows,
                        safety_copy,
                    });
                }
            }
        }
    })
    .await
    .map_err(|e| StoreError::Worker(e.to_string()))?
}

/// Drops the secondary indexes inside the restore's transaction and returns the statements that
/// build them again at its end. Building an index once over loaded rows (a sort) is far cheaper
/// than maintaining it row by row once the tables outgrow the page cache: at 100,000 clients
/// the row-by-row restore fell to a fifth of its 20,000-client rate. The indexes SQLite makes
/// itself for PRIMARY KEY and UNIQUE constraints have no SQL and stay. A restore that fails or
/// is killed rolls back the drops with everything else.
fn set_aside_indexes(tx: &Connection) -> Result<Vec<String>> {
    let mut stmt = tx.prepare(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name",
    )?;
    let indexes = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (name, _) in &indexes {
        tx.execute(&format!("DROP INDEX {}", quoted(name)), [])?;
    }
    Ok(indexes.into_iter().map(|(_, sql)| sql).collect())
}

/// Copies the database to `<file>.before-restore-<label>` (owner-only, synced) with VACUUM INTO,
/// which writes a consistent, compacted copy through SQLite itself.
fn copy_aside(pool: &Pool, path: &Path, label: &str) -> Result<PathBuf> {
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| StoreError::Config(format!("{} has no usable file name", path.display())))?;
    let copy = path.with_file_name(format!("{file_name}.before-restore-{}", clean_label(label)));
    let io = |e: std::io::Error| {
        StoreError::Config(format!(
            "cannot write the safety copy {}: {e}",
            copy.display()
        ))
    };
    // Created empty first so that it is owner-only from its first byte; VACUUM INTO accepts
    // an empty file.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&copy)
        .map_err(io)?;
    let target = copy
        .to_str()
        .ok_or_else(|| StoreError::Config(format!("{} is not valid UTF-8", copy.display())))?
        .to_owned();
    let other = pool.get()?;
    other.execute("VACUUM INTO ?1", [&target])?;
    std::fs::File::open(&copy)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    if let Some(dir) = copy.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(copy)
}

/// Drops every table (children first) and runs the migrations again, inside the caller's
/// transaction. A table's implicit DELETE on DROP fires no trigger, so the audit log's
/// append-only triggers go with their table rather than refuse; secure_delete overwrites the
/// freed pages.
fn empty_schema(tx: &Connection) -> Result<()> {
    let present = tables_in(tx)?;
    for spec in TABLES.iter().rev() {
        if present.iter().any(|t| t == spec.name) {
            tx.execute(&format!("DROP TABLE {}", quoted(spec.name)), [])?;
        }
    }
    for other in present.iter().filter(|t| table_spec(t).is_none()) {
        tx.execute(&format!("DROP TABLE {}", quoted(other)), [])?;
    }
    migrate_in(tx)
}
