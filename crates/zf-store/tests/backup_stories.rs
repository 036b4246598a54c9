//! Stories of backup and restore at the storage layer, on both stores and across them: a
//! snapshot stays consistent while writers go on, it restores row for row into an empty
//! database of either kind, a database holding data is refused or kept as a safety copy, and a
//! feed that stops early leaves the target exactly as it was.

// Shared with the store stories; not every helper is used here.
#[allow(dead_code)]
mod common;

use common::fixtures::*;
use common::{on_both_backends, Kind, TestDb};
use zf_audit::AuditAction;
use zf_crypto::{BlindIndexKey, Dek, KeyVersion};
use zf_domain::{ClientId, RecordId};
use zf_policy::{Role, Scope};
use zf_store::{
    restore_feed, FeedItem, IndexEntry, LoginGuard, RecordKind, RecordOp, RecordRow, RestoreMode,
    RestoreOutcome, SafetyCopy, SnapshotItem, Store, StoreError, Value,
};

on_both_backends! {
    a_snapshot_restores_row_for_row_into_an_empty_database
        => a_snapshot_restores_row_for_row_into_an_empty_database_sqlite,
           a_snapshot_restores_row_for_row_into_an_empty_database_postgres;
    a_snapshot_does_not_see_writes_made_after_it_began
        => a_snapshot_does_not_see_writes_made_after_it_began_sqlite,
           a_snapshot_does_not_see_writes_made_after_it_began_postgres;
    a_database_holding_data_is_refused_or_kept_as_a_safety_copy
        => a_database_holding_data_is_refused_or_kept_as_a_safety_copy_sqlite,
           a_database_holding_data_is_refused_or_kept_as_a_safety_copy_postgres;
    a_feed_that_stops_early_writes_nothing
        => a_feed_that_stops_early_writes_nothing_sqlite,
           a_feed_that_stops_early_writes_nothing_postgres;
    a_task_lease_is_held_while_renewed_and_lapses_when_not
        => a_task_lease_is_held_while_renewed_and_lapses_when_not_sqlite,
           a_task_lease_is_held_while_renewed_and_lapses_when_not_postgres;
}

/// The lease on a scheduled task: one holder at a time, extended only by its holder, free to
/// another node once it lapses or is given back.
async fn a_task_lease_is_held_while_renewed_and_lapses_when_not(db: &TestDb) {
    let store = db.store().await;
    assert!(store
        .schedule_lease_take("backups", "a", 0, 10)
        .await
        .unwrap());
    assert!(!store
        .schedule_lease_take("backups", "b", 5, 15)
        .await
        .unwrap());
    assert!(
        !store
            .schedule_lease_take("backups", "a", 5, 15)
            .await
            .unwrap(),
        "not twice"
    );
    assert!(
        store
            .schedule_lease_take("reviews", "b", 5, 15)
            .await
            .unwrap(),
        "per task"
    );
    // Renewed by its holder only: at 12 it still holds.
    assert!(!store
        .schedule_lease_renew("backups", "b", 20)
        .await
        .unwrap());
    assert!(store
        .schedule_lease_renew("backups", "a", 20)
        .await
        .unwrap());
    assert!(!store
        .schedule_lease_take("backups", "b", 12, 30)
        .await
        .unwrap());
    // Not renewed past 20 (its holder died): another node takes it, and the old holder's
    // renewal now fails.
    assert!(store
        .schedule_lease_take("backups", "b", 21, 30)
        .await
        .unwrap());
    assert!(!store
        .schedule_lease_renew("backups", "a", 40)
        .await
        .unwrap());
    // Given back by someone else: nothing happens; by its holder: free at once.
    store.schedule_lease_release("backups", "a").await.unwrap();
    assert!(!store
        .schedule_lease_take("backups", "c", 22, 30)
        .await
        .unwrap());
    store.schedule_lease_release("backups", "b").await.unwrap();
    assert!(store
        .schedule_lease_take("backups", "c", 22, 30)
        .await
        .unwrap());
}

type Dump = Vec<(String, Vec<String>, Vec<Vec<Value>>)>;

/// Every table's rows, read through a snapshot.
async fn dump(store: &dyn Store) -> Dump {
    let mut snapshot = store.backup_snapshot().await.unwrap();
    let mut out: Dump = Vec::new();
    loop {
        match snapshot.next().await.unwrap() {
            SnapshotItem::Table { name, columns } => out.push((name.into(), columns, Vec::new())),
            SnapshotItem::Rows(rows) => out.last_mut().unwrap().2.extend(rows),
            SnapshotItem::End => break,
        }
    }
    let counted: Vec<(String, u64)> = out
        .iter()
        .map(|(t, _, rows)| (t.clone(), rows.len() as u64))
        .collect();
    let listed: Vec<(String, u64)> = snapshot
        .info
        .tables
        .iter()
        .map(|(t, n)| ((*t).to_owned(), *n))
        .collect();
    assert_eq!(counted, listed, "the snapshot's counts and rows agree");
    out
}

fn table<'a>(dump: &'a Dump, name: &str) -> &'a [Vec<Value>] {
    &dump.iter().find(|(t, _, _)| t == name).unwrap().2
}

/// Streams a snapshot of `from` into a restore of `to`.
async fn copy(
    from: &dyn Store,
    to: &dyn Store,
    mode: RestoreMode,
) -> Result<RestoreOutcome, StoreError> {
    let mut snapshot = from.backup_snapshot().await?;
    let (tx, feed) = restore_feed();
    let forward = async move {
        loop {
            let item = match snapshot.next().await? {
                SnapshotItem::Table { name, columns } => FeedItem::Table {
                    name: name.into(),
                    columns,
                },
                SnapshotItem::Rows(rows) => FeedItem::Rows(rows),
                SnapshotItem::End => FeedItem::Commit,
            };
            let last = item == FeedItem::Commit;
            if tx.send(item).await.is_err() || last {
                return Ok::<(), StoreError>(());
            }
        }
    };
    let (forwarded, restored) = tokio::join!(forward, to.restore(mode, feed));
    forwarded?;
    restored
}

/// A firm in miniature that touches every kind of column: a session pending its second factor
/// (BOOLEAN on PostgreSQL), a failure counter (INTEGER), clients with sealed fields, records
/// with blind indexes, a document's contents, and a payment that sorts before the contract it
/// hangs from.
async fn populate(store: &dyn Store, clients: u32) -> Vec<ClientId> {
    let keys = Keys::default();
    let alice = new_user("alice", Role::Accountant);
    store
        .user_create(alice.clone(), event(AuditAction::UserCreated))
        .await
        .unwrap();
    let mut pending = session(alice.id, 7);
    pending.second_factor_pending = true;
    store
        .session_create(pending, None, event(AuditAction::LoginSecondFactorPending))
        .await
        .unwrap();
    store
        .login_failed(
            &alice.username,
            LoginGuard::default(),
            LoginGuard {
                failures: 3,
                locked_until_ms: Some(T0 + 60_000),
            },
            event(AuditAction::Login),
        )
        .await
        .unwrap();
    let index_key = BlindIndexKey::generate();
    let mut ids = Vec::new();
    for n in 0..clients {
        let (row, key) = keys.client(
            n,
            &format!("客户{n}有限公司"),
            &id_number(n),
            Some(alice.id),
        );
        let id = row.id;
        store
            .client_insert(
                row,
                key,
                event(AuditAction::ClientCreated).on("clients", id),
            )
            .await
            .unwrap();
        let dek = Dek::generate();
        let sealed = |what: &[u8]| Some(dek.seal(KeyVersion(1), what, &aad(id)));
        let contract = RecordId::parse(&format!("ffffffff-ffff-4fff-bfff-{n:012x}")).unwrap();
        let payment = RecordId::parse(&format!("00000000-0000-4000-8000-{n:012x}")).unwrap();
        let record = |rid: RecordId, kind: RecordKind, parent: Option<RecordId>| RecordRow {
            id: rid,
            client_id: id,
            kind,
            parent_id: parent,
            label: format!("{} {n}", kind.as_str()),
            status: Some("active".into()),
            period: Some("2026-03".into()),
            due_on: None,
            holder: None,
            plain: "{\"note\":\"纯文本\"}".into(),
            sealed: sealed(b"{\"fee\":120000}"),
            created_by: Some(alice.id),
            created_at_ms: T0,
            updated_at_ms: T0,
            version: 1,
        };
        store
            .record_write(
                Scope::All,
                id,
                vec![
                    RecordOp::Insert {
                        row: record(contract, RecordKind::Contract, None),
                        indexes: vec![IndexEntry {
                            field: "mobile",
                            token: index_key.index("mobile", format!("1380000{n:04}").as_bytes()),
                        }],
                        blob: None,
                    },
                    RecordOp::Insert {
                        row: record(payment, RecordKind::Payment, Some(contract)),
                        indexes: Vec::new(),
                        blob: None,
                    },
                    RecordOp::Insert {
                        row: record(RecordId::new_random(), RecordKind::Document, None),
                        indexes: Vec::new(),
                        blob: sealed(&vec![0x25; 3000]),
                    },
                ],
                event(AuditAction::RecordCreated),
            )
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

async fn a_snapshot_restores_row_for_row_into_an_empty_database(db: &TestDb) {
    let source = db.store().await;
    populate(source.as_ref(), 30).await;
    // A node holds the scheduled backups' lease, as it does while it backs up.
    assert!(source
        .schedule_lease_take("backups", "node-a", 0, i64::MAX)
        .await
        .unwrap());
    let before = dump(source.as_ref()).await;
    let target_db = match db.kind() {
        Kind::Sqlite => TestDb::sqlite().await,
        Kind::Postgres => TestDb::postgres().await.unwrap(),
    };
    let target = target_db.store().await;
    assert!(target.restore_target_occupied().await.unwrap().is_empty());
    let outcome = copy(source.as_ref(), target.as_ref(), RestoreMode::IntoEmpty)
        .await
        .unwrap();
    assert_eq!(outcome.safety_copy, None);
    let after = dump(target.as_ref()).await;
    assert_eq!(after, before);
    // The lease stayed with the source: the restored copy's own nodes may take it at once.
    assert!(target
        .schedule_lease_take("backups", "node-b", 1, 2)
        .await
        .unwrap());
    assert_eq!(
        outcome.rows,
        before.iter().map(|(_, _, r)| r.len() as u64).sum::<u64>()
    );
    // The copy is a working database: its chain continues where the source's stopped.
    target
        .audit_append(event(AuditAction::BackupRestored))
        .await
        .unwrap();
    let head = target.audit_head().await.unwrap();
    assert_eq!(head.seq, table(&before, "audit_events").len() as i64 + 1);
    assert_eq!(head.max_event_seq, head.seq);
}

async fn a_snapshot_does_not_see_writes_made_after_it_began(db: &TestDb) {
    let store = db.store().await;
    populate(store.as_ref(), 3).await;
    let mut snapshot = store.backup_snapshot().await.unwrap();
    // The first table arrives; meanwhile a writer commits a client with its event.
    assert!(matches!(
        snapshot.next().await.unwrap(),
        SnapshotItem::Table { .. }
    ));
    let keys = Keys::default();
    let (row, key) = keys.client(900, "快照之后有限公司", &id_number(900), None);
    let late = row.id;
    store
        .client_insert(
            row,
            key,
            event(AuditAction::ClientCreated).on("clients", late),
        )
        .await
        .unwrap();
    let info = snapshot.info.clone();
    let mut rows: Vec<(String, Vec<Vec<Value>>)> = Vec::new();
    let mut current = "system_keys".to_owned();
    loop {
        match snapshot.next().await.unwrap() {
            SnapshotItem::Table { name, .. } => current = name.into(),
            SnapshotItem::Rows(batch) => rows.push((current.clone(), batch)),
            SnapshotItem::End => break,
        }
    }
    let count = |t: &str| -> usize {
        rows.iter()
            .filter(|(n, _)| n == t)
            .map(|(_, r)| r.len())
            .sum()
    };
    assert_eq!(count("clients"), 3);
    assert_eq!(count("client_keys"), 3);
    let events = count("audit_events") as i64;
    assert_eq!(events, info.audit_head_seq);
    let late_text = Value::Text(late.to_string());
    assert!(!rows
        .iter()
        .any(|(_, batch)| batch.iter().any(|r| r.contains(&late_text))));
    // A snapshot begun now sees it.
    let now = dump(store.as_ref()).await;
    assert_eq!(table(&now, "clients").len(), 4);
}

async fn a_database_holding_data_is_refused_or_kept_as_a_safety_copy(db: &TestDb) {
    let source_db = match db.kind() {
        Kind::Sqlite => TestDb::sqlite().await,
        Kind::Postgres => TestDb::postgres().await.unwrap(),
    };
    let source = source_db.store().await;
    populate(source.as_ref(), 4).await;
    let wanted = dump(source.as_ref()).await;

    let target = db.store().await;
    populate(target.as_ref(), 2).await;
    let old = dump(target.as_ref()).await;
    let occupied = target.restore_target_occupied().await.unwrap();
    assert!(occupied.contains(&"clients") && occupied.contains(&"audit_events"));
    let err = copy(source.as_ref(), target.as_ref(), RestoreMode::IntoEmpty)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TargetNotEmpty(_)), "{err:?}");
    assert!(err.to_string().contains("clients"), "{err}");
    assert_eq!(
        dump(target.as_ref()).await,
        old,
        "a refusal changes nothing"
    );

    let outcome = copy(
        source.as_ref(),
        target.as_ref(),
        RestoreMode::Replace {
            label: "20261129T041700Z".into(),
        },
    )
    .await
    .unwrap();
    drop(target);
    // A fresh node sees the restored data, and the old data waits in the safety copy.
    let target = db.store().await;
    assert_eq!(dump(target.as_ref()).await, wanted);
    match outcome.safety_copy {
        Some(SafetyCopy::File(path)) => {
            assert_eq!(db.kind(), Kind::Sqlite);
            assert!(path
                .to_string_lossy()
                .ends_with("zhangfang.db.before-restore-20261129T041700Z"));
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let aside = zf_store::SqliteStore::open(&path).await.unwrap();
            assert_eq!(dump(&aside).await, old);
        }
        Some(SafetyCopy::Schema(schema)) => {
            assert_eq!(db.kind(), Kind::Postgres);
            assert!(
                schema.ends_with("_before_restore_20261129t041700z"),
                "{schema}"
            );
            let n = db
                .query_i64(&format!("SELECT COUNT(*) FROM {schema}.clients"))
                .await;
            assert_eq!(n, 2);
            db.exec(&format!("DROP SCHEMA {schema} CASCADE"))
                .await
                .unwrap();
        }
        None => panic!("a replaced database leaves a safety copy"),
    }
}

async fn a_feed_that_stops_early_writes_nothing(db: &TestDb) {
    let source_db = match db.kind() {
        Kind::Sqlite => TestDb::sqlite().await,
        Kind::Postgres => TestDb::postgres().await.unwrap(),
    };
    let source = source_db.store().await;
    populate(source.as_ref(), 3).await;
    let target = db.store().await;
    let empty = dump(target.as_ref()).await;

    // Every table and row, but the producer gives up instead of committing.
    let mut snapshot = source.backup_snapshot().await.unwrap();
    let (tx, feed) = restore_feed();
    let forward = async move {
        loop {
            match snapshot.next().await.unwrap() {
                SnapshotItem::Table { name, columns } => tx
                    .send(FeedItem::Table {
                        name: name.into(),
                        columns,
                    })
                    .await
                    .unwrap(),
                SnapshotItem::Rows(rows) => tx.send(FeedItem::Rows(rows)).await.unwrap(),
                SnapshotItem::End => return,
            }
        }
    };
    let (_, restored) = tokio::join!(forward, target.restore(RestoreMode::IntoEmpty, feed));
    assert!(
        matches!(restored, Err(StoreError::RestoreAborted)),
        "{restored:?}"
    );
    assert_eq!(dump(target.as_ref()).await, empty);
    assert!(target.restore_target_occupied().await.unwrap().is_empty());

    // Tables out of order, or a row that does not fit its column, roll back too.
    let (tx, feed) = restore_feed();
    tx.send(FeedItem::Table {
        name: "users".into(),
        columns: vec![],
    })
    .await
    .unwrap();
    let err = target
        .restore(RestoreMode::IntoEmpty, feed)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("out of order"), "{err}");
    let (tx, feed) = restore_feed();
    let columns = vec!["name".into(), "wrapped".into(), "created_at".into()];
    tx.send(FeedItem::Table {
        name: "system_keys".into(),
        columns,
    })
    .await
    .unwrap();
    tx.send(FeedItem::Rows(vec![vec![
        Value::Text("k".into()),
        Value::Text("not bytes".into()),
        Value::Int(1),
    ]]))
    .await
    .unwrap();
    drop(tx);
    let err = target
        .restore(RestoreMode::IntoEmpty, feed)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("system_keys.wrapped"), "{err}");
    assert_eq!(dump(target.as_ref()).await, empty);
}

/// The migration path from one machine to several: SQLite into PostgreSQL and back, every row
/// identical, booleans and 32-bit integers included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_moves_between_sqlite_and_postgres_both_ways() {
    let Some(pg_db) = TestDb::postgres().await else {
        return;
    };
    let lite_db = TestDb::sqlite().await;
    let lite = lite_db.store().await;
    populate(lite.as_ref(), 20).await;
    let original = dump(lite.as_ref()).await;
    let pg = pg_db.store().await;
    copy(lite.as_ref(), pg.as_ref(), RestoreMode::IntoEmpty)
        .await
        .unwrap();
    assert_eq!(dump(pg.as_ref()).await, original);
    let pending = pg_db
        .query_i64("SELECT COUNT(*) FROM sessions WHERE second_factor_pending")
        .await;
    assert_eq!(pending, 1, "the flag arrives as a PostgreSQL boolean");

    let back_db = TestDb::sqlite().await;
    let back = back_db.store().await;
    copy(pg.as_ref(), back.as_ref(), RestoreMode::IntoEmpty)
        .await
        .unwrap();
    assert_eq!(dump(back.as_ref()).await, original);
    let failed = back_db
        .query_i64("SELECT failed_logins FROM users WHERE username = 'alice'")
        .await;
    assert_eq!(failed, 3);
}

/// Every index of a SQLite database, by name, with the statement that made it.
fn sqlite_indexes(path: &std::path::Path) -> Vec<(String, Option<String>)> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut stmt = c
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    rows
}

/// The SQLite restore sets the secondary indexes aside while it loads rows and builds them
/// again before it commits: a restored database, and one whose restore failed, has exactly the
/// indexes of a freshly migrated one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_restore_leaves_every_index_as_the_migrations_made_it() {
    let fresh = TestDb::sqlite().await;
    drop(fresh.store().await);
    let expected = sqlite_indexes(fresh.sqlite_path().unwrap());
    assert!(
        expected.iter().filter(|(_, sql)| sql.is_some()).count() >= 20,
        "{expected:?}"
    );

    let source_db = TestDb::sqlite().await;
    let source = source_db.store().await;
    populate(source.as_ref(), 5).await;
    let target_db = TestDb::sqlite().await;
    let target = target_db.store().await;
    copy(source.as_ref(), target.as_ref(), RestoreMode::IntoEmpty)
        .await
        .unwrap();
    assert_eq!(sqlite_indexes(target_db.sqlite_path().unwrap()), expected);
    // A replacing restore (the safety copy kept) ends with the same indexes.
    let again = copy(
        source.as_ref(),
        target.as_ref(),
        RestoreMode::Replace {
            label: "index-check".into(),
        },
    )
    .await
    .unwrap();
    assert!(again.safety_copy.is_some());
    assert_eq!(sqlite_indexes(target_db.sqlite_path().unwrap()), expected);

    // A restore that stops early rolls the dropped indexes back with everything else.
    let empty_db = TestDb::sqlite().await;
    let empty = empty_db.store().await;
    let (tx, feed) = restore_feed();
    tx.send(FeedItem::Table {
        name: "users".into(),
        columns: vec![],
    })
    .await
    .unwrap();
    drop(tx);
    assert!(empty.restore(RestoreMode::IntoEmpty, feed).await.is_err());
    assert_eq!(sqlite_indexes(empty_db.sqlite_path().unwrap()), expected);
}
