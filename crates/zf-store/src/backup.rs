//! Backup and restore as the store sees them: every table of the schema as rows of neutral typed
//! values, read from one consistent snapshot and written back in one transaction.
//!
//! The store neither encodes nor encrypts anything here. A snapshot streams [`SnapshotItem`]s
//! through a bounded channel while it holds its read transaction, so a table of any size passes
//! through a few batches of memory; a restore consumes a [`RestoreFeed`] the same way and commits
//! only when the feed says [`FeedItem::Commit`]. Values stay exactly as stored: a sealed field
//! is bytes of ciphertext in, bytes of ciphertext out.

use std::path::PathBuf;

use tokio::sync::mpsc;

use crate::{Result, StoreError};

/// A column value as both stores can hold it. PostgreSQL's BOOLEAN travels as `Int` 0 or 1,
/// which is how SQLite stores it, so the two backends produce the same rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

impl Value {
    /// Roughly how much memory the value holds, to size batches.
    pub fn weight(&self) -> usize {
        match self {
            Value::Null | Value::Int(_) => 8,
            Value::Text(t) => t.len() + 8,
            Value::Bytes(b) => b.len() + 8,
        }
    }
}

/// A table a backup carries, in an order that satisfies every foreign key when restored top to
/// bottom. `order_by` makes the rows' order, and so a table's digest, the same on both stores.
#[derive(Clone, Copy, Debug)]
pub struct TableSpec {
    pub name: &'static str,
    pub order_by: &'static [&'static str],
    /// Rows that reference another row of the same table through this column come after the
    /// rows they reference.
    pub parents_first: Option<&'static str>,
    /// The migrations seed this table with its one row; a restore replaces that row and an
    /// empty instance may have it.
    pub seeded: bool,
    /// Its rows belong to the running deployment, not to its data (the leases on scheduled
    /// tasks, one of them held by the very backup being written): a backup carries the table
    /// empty, so a restored copy is not blocked by a lease of the node that made the backup.
    pub transient: bool,
}

const fn table(name: &'static str, order_by: &'static [&'static str]) -> TableSpec {
    TableSpec {
        name,
        order_by,
        parents_first: None,
        seeded: false,
        transient: false,
    }
}

const fn seeded(name: &'static str) -> TableSpec {
    TableSpec {
        name,
        order_by: &["id"],
        parents_first: None,
        seeded: true,
        transient: false,
    }
}

const fn transient(name: &'static str, order_by: &'static [&'static str]) -> TableSpec {
    TableSpec {
        transient: true,
        ..table(name, order_by)
    }
}

/// Every table of the schema but `schema_migrations` (whose place the header's schema version
/// takes). A snapshot refuses a database with a table missing here, so a table added by a
/// migration cannot silently stay out of backups.
pub const TABLES: &[TableSpec] = &[
    table("system_keys", &["name"]),
    table("kek_versions", &["version"]),
    table("crypto_settings", &["name"]),
    table("custom_roles", &["name"]),
    table("users", &["id"]),
    table("sessions", &["id_hash"]),
    table("password_history", &["user_id", "seq"]),
    table("user_mfa", &["user_id"]),
    table("mfa_recovery_codes", &["user_id", "code_hash"]),
    table("otp_factors", &["user_id", "channel"]),
    table("otp_codes", &["user_id"]),
    table("webauthn_credentials", &["credential_id"]),
    table("webauthn_ceremonies", &["challenge"]),
    table("client_keys", &["client_id"]),
    table("clients", &["id"]),
    table("client_engagements", &["client_id", "user_id"]),
    table("client_erasures", &["client_id"]),
    table("client_reassignments", &["id"]),
    table("erasure_requests", &["id"]),
    table("api_tokens", &["id"]),
    table("api_token_clients", &["token_id", "client_id"]),
    TableSpec {
        name: "client_records",
        order_by: &["id"],
        parents_first: Some("parent_id"),
        seeded: false,
        transient: false,
    },
    table("record_index", &["field", "token", "record_id"]),
    table("record_blobs", &["record_id"]),
    table("leads", &["id"]),
    table("honeytokens", &["client_id"]),
    table("review_campaigns", &["id"]),
    table("review_lines", &["campaign_id", "username"]),
    table("alerts", &["id"]),
    table("backup_runs", &["id"]),
    table("key_jobs", &["id"]),
    transient("schedule_leases", &["name"]),
    seeded("monitor_state"),
    seeded("audit_settings"),
    table("audit_archives", &["last_seq"]),
    table("audit_events", &["seq"]),
    seeded("audit_head"),
    table("audit_checkpoints", &["seq"]),
];

/// The schema's own bookkeeping, recreated by the migrations rather than restored.
pub(crate) const MIGRATIONS_TABLE: &str = "schema_migrations";

pub fn table_spec(name: &str) -> Option<&'static TableSpec> {
    TABLES.iter().find(|t| t.name == name)
}

/// Refuses a database whose tables are not exactly [`TABLES`] and the migrations' own.
pub(crate) fn check_catalog(mut found: Vec<String>) -> Result<()> {
    found.retain(|t| t != MIGRATIONS_TABLE);
    found.sort();
    let mut known: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
    known.sort_unstable();
    if found != known {
        let extra: Vec<&String> = found
            .iter()
            .filter(|f| !known.contains(&f.as_str()))
            .collect();
        let missing: Vec<&&str> = known
            .iter()
            .filter(|k| !found.iter().any(|f| f == *k))
            .collect();
        return Err(StoreError::Backup(format!(
            "the database's tables differ from those a backup covers (not covered: {extra:?}; \
             absent: {missing:?})"
        )));
    }
    Ok(())
}

/// What a snapshot saw when it began, all read in its one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub backend: &'static str,
    pub schema_version: i64,
    /// Rows per table, in [`TABLES`] order.
    pub tables: Vec<(&'static str, u64)>,
    /// The audit chain head: position and link of the last event.
    pub audit_head_seq: i64,
    pub audit_head_hash: Vec<u8>,
}

impl SnapshotInfo {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

/// One step of a snapshot or a restore feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotItem {
    /// The rows that follow belong to this table; `columns` in the schema's order.
    Table {
        name: &'static str,
        columns: Vec<String>,
    },
    Rows(Vec<Vec<Value>>),
    /// Every table has been read and the snapshot's transaction is over.
    End,
}

pub(crate) enum SnapshotMsg {
    Start(SnapshotInfo),
    Item(SnapshotItem),
    Failed(StoreError),
}

/// Batches are cut at this many rows or this many bytes, whichever comes first, so a table of
/// large documents and a table of small rows both move in bounded memory.
pub(crate) const BATCH_ROWS: usize = 512;
pub(crate) const BATCH_BYTES: usize = 1 << 20;
const CHANNEL_DEPTH: usize = 4;

/// The sending half a store's snapshot worker writes to.
pub(crate) struct SnapshotSender {
    tx: mpsc::Sender<SnapshotMsg>,
}

/// A snapshot being read: what it saw at its start, then its tables' rows in order.
pub struct Snapshot {
    pub info: SnapshotInfo,
    rx: mpsc::Receiver<SnapshotMsg>,
}

pub(crate) fn snapshot_channel() -> (SnapshotSender, mpsc::Receiver<SnapshotMsg>) {
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    (SnapshotSender { tx }, rx)
}

/// The reader stopped listening; the worker ends its transaction and stops quietly.
pub(crate) struct ReaderGone;

impl SnapshotSender {
    pub(crate) fn blocking_send(&self, msg: SnapshotMsg) -> std::result::Result<(), ReaderGone> {
        self.tx.blocking_send(msg).map_err(|_| ReaderGone)
    }

    pub(crate) async fn send(&self, msg: SnapshotMsg) -> std::result::Result<(), ReaderGone> {
        self.tx.send(msg).await.map_err(|_| ReaderGone)
    }
}

impl Snapshot {
    /// Waits for the worker's first message: the snapshot's info, or why it could not start.
    pub(crate) async fn open(mut rx: mpsc::Receiver<SnapshotMsg>) -> Result<Snapshot> {
        match rx.recv().await {
            Some(SnapshotMsg::Start(info)) => Ok(Snapshot { info, rx }),
            Some(SnapshotMsg::Failed(e)) => Err(e),
            Some(SnapshotMsg::Item(_)) | None => Err(StoreError::Worker(
                "the snapshot ended before it began".into(),
            )),
        }
    }

    fn item(msg: Option<SnapshotMsg>) -> Result<SnapshotItem> {
        match msg {
            Some(SnapshotMsg::Item(item)) => Ok(item),
            Some(SnapshotMsg::Failed(e)) => Err(e),
            Some(SnapshotMsg::Start(_)) | None => Err(StoreError::Worker(
                "the snapshot stopped before its end".into(),
            )),
        }
    }

    /// The next item, from a thread outside the async runtime.
    pub fn blocking_next(&mut self) -> Result<SnapshotItem> {
        Self::item(self.rx.blocking_recv())
    }

    pub async fn next(&mut self) -> Result<SnapshotItem> {
        Self::item(self.rx.recv().await)
    }
}

/// One step of what a restore writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedItem {
    Table {
        name: String,
        columns: Vec<String>,
    },
    Rows(Vec<Vec<Value>>),
    /// Every table has been sent and checked: commit. A feed that ends without this rolls
    /// the restore back.
    Commit,
}

/// What a restore reads from; the producer holds the [`mpsc::Sender`] of [`restore_feed`].
pub struct RestoreFeed {
    rx: mpsc::Receiver<FeedItem>,
}

pub fn restore_feed() -> (mpsc::Sender<FeedItem>, RestoreFeed) {
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    (tx, RestoreFeed { rx })
}

impl RestoreFeed {
    pub(crate) fn blocking_next(&mut self) -> Result<FeedItem> {
        self.rx.blocking_recv().ok_or(StoreError::RestoreAborted)
    }

    pub(crate) async fn next(&mut self) -> Result<FeedItem> {
        self.rx.recv().await.ok_or(StoreError::RestoreAborted)
    }
}

/// Where a restore may write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreMode {
    /// Only into a database without data; checked again inside the restore's transaction.
    IntoEmpty,
    /// Keep what is there as a safety copy, then restore into an emptied schema: SQLite copies
    /// the database file aside (`VACUUM INTO <file>.before-restore-<label>`), PostgreSQL
    /// renames the schema (`<schema>_before_restore_<label>`). `label` is made of ASCII
    /// letters, digits and underscores (others are dropped).
    Replace { label: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SafetyCopy {
    File(PathBuf),
    Schema(String),
}

impl std::fmt::Display for SafetyCopy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SafetyCopy::File(p) => write!(f, "the file {}", p.display()),
            SafetyCopy::Schema(s) => write!(f, "the PostgreSQL schema {s}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreOutcome {
    pub rows: u64,
    pub safety_copy: Option<SafetyCopy>,
}

pub(crate) fn clean_label(label: &str) -> String {
    label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// Follows a restore feed table by table: every table of [`TABLES`] exactly once and in order,
/// with the target's columns, and rows of the right width.
pub(crate) struct FeedCheck {
    next: usize,
    current: Option<(&'static TableSpec, usize)>,
    pub(crate) rows: u64,
}

impl FeedCheck {
    pub(crate) fn new() -> Self {
        FeedCheck {
            next: 0,
            current: None,
            rows: 0,
        }
    }

    /// Accepts the start of a table whose columns in the target are `target_columns`.
    pub(crate) fn table(
        &mut self,
        name: &str,
        columns: &[String],
        target_columns: &[String],
    ) -> Result<&'static TableSpec> {
        let spec = TABLES
            .get(self.next)
            .filter(|t| t.name == name)
            .ok_or_else(|| {
                StoreError::Backup(format!(
                    "table {name} arrives out of order (expected {})",
                    TABLES.get(self.next).map_or("the end", |t| t.name)
                ))
            })?;
        if columns != target_columns {
            return Err(StoreError::Backup(format!(
                "table {name} has columns {columns:?} in the backup but {target_columns:?} here"
            )));
        }
        self.next += 1;
        self.current = Some((spec, columns.len()));
        Ok(spec)
    }

    pub(crate) fn row(&mut self, row: &[Value]) -> Result<()> {
        match self.current {
            Some((_, width)) if width == row.len() => {
                self.rows += 1;
                Ok(())
            }
            Some((spec, width)) => Err(StoreError::Backup(format!(
                "a row of {} has {} values for {width} columns",
                spec.name,
                row.len()
            ))),
            None => Err(StoreError::Backup("rows before any table".into())),
        }
    }

    pub(crate) fn finish(&self) -> Result<()> {
        match TABLES.get(self.next) {
            None => Ok(()),
            Some(t) => Err(StoreError::Backup(format!(
                "the feed ended before table {}",
                t.name
            ))),
        }
    }
}

/// Collects rows into batches for a snapshot.
pub(crate) struct Batcher {
    rows: Vec<Vec<Value>>,
    bytes: usize,
}

impl Batcher {
    pub(crate) fn new() -> Self {
        Batcher {
            rows: Vec::with_capacity(BATCH_ROWS),
            bytes: 0,
        }
    }

    /// Adds a row; returns a full batch when one is ready.
    pub(crate) fn push(&mut self, row: Vec<Value>) -> Option<Vec<Vec<Value>>> {
        self.bytes += row.iter().map(Value::weight).sum::<usize>();
        self.rows.push(row);
        if self.rows.len() >= BATCH_ROWS || self.bytes >= BATCH_BYTES {
            return self.take();
        }
        None
    }

    pub(crate) fn take(&mut self) -> Option<Vec<Vec<Value>>> {
        self.bytes = 0;
        if self.rows.is_empty() {
            None
        } else {
            Some(std::mem::replace(
                &mut self.rows,
                Vec::with_capacity(BATCH_ROWS),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::MIGRATIONS;

    /// Every table a migration creates is covered, and nothing else: a new table must be
    /// placed in [`TABLES`] (after the tables it references) in the same change.
    #[test]
    fn every_created_table_is_covered_once() {
        let mut created = Vec::new();
        for m in MIGRATIONS {
            for sql in [m.sqlite, m.postgres] {
                for part in sql.split("CREATE TABLE ").skip(1) {
                    let name = part
                        .split(|c: char| c.is_whitespace() || c == '(')
                        .next()
                        .unwrap_or_default();
                    created.push(name.to_owned());
                }
            }
        }
        created.sort();
        created.dedup();
        check_catalog(created).unwrap();
        let mut names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
        names.dedup();
        assert_eq!(names.len(), TABLES.len());
    }

    #[test]
    fn the_feed_must_follow_the_tables_in_order_with_matching_columns() {
        let cols = vec!["name".to_owned()];
        let mut check = FeedCheck::new();
        assert!(check.table("users", &cols, &cols).is_err());
        check.table("system_keys", &cols, &cols).unwrap();
        assert!(check.row(&[Value::Null, Value::Null]).is_err());
        check.row(&[Value::Null]).unwrap();
        assert!(check.table("users", &cols, &["id".to_owned()]).is_err());
        assert!(check.finish().is_err());
        assert_eq!(
            clean_label("2026-11-29T04:17:00Z;drop"),
            "20261129T041700Zdrop"
        );
    }
}
