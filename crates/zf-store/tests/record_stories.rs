//! Stories of the CRM's storage, on both stores: records of a client reached only through the
//! client's scope, blind-index search, versioned updates, idempotent filing generation,
//! document contents with their read audited, leads, and client pages by cursor that stay
//! stable while rows are added.

// Shared with the store stories; not every helper is used here.
#[allow(dead_code)]
mod common;

use common::fixtures::*;
use common::{on_both_backends, TestDb};
use zf_audit::AuditAction;
use zf_crypto::{BlindIndexKey, Dek, KeyVersion};
use zf_domain::{ClientId, RecordId};
use zf_policy::{Role, Scope};
use zf_store::{
    ClientQuery, ClientSort, IndexEntry, RecordKind, RecordOp, RecordQuery, RecordRow, SortKey,
    StoreError,
};

on_both_backends! {
    records_follow_their_clients_scope
        => records_follow_their_clients_scope_sqlite, records_follow_their_clients_scope_postgres;
    records_are_versioned_indexed_and_deleted_with_their_client
        => records_are_versioned_indexed_and_deleted_with_their_client_sqlite,
           records_are_versioned_indexed_and_deleted_with_their_client_postgres;
    filing_generation_is_idempotent_and_due_queries_filter
        => filing_generation_is_idempotent_and_due_queries_filter_sqlite,
           filing_generation_is_idempotent_and_due_queries_filter_postgres;
    document_contents_are_read_with_their_event
        => document_contents_are_read_with_their_event_sqlite,
           document_contents_are_read_with_their_event_postgres;
    client_pages_by_cursor_neither_repeat_nor_skip
        => client_pages_by_cursor_neither_repeat_nor_skip_sqlite,
           client_pages_by_cursor_neither_repeat_nor_skip_postgres;
    client_pages_descend_through_equal_sort_values
        => client_pages_descend_through_equal_sort_values_sqlite,
           client_pages_descend_through_equal_sort_values_postgres;
}

fn record(kind: RecordKind, client: ClientId, label: &str) -> RecordRow {
    RecordRow {
        id: RecordId::new_random(),
        client_id: client,
        kind,
        parent_id: None,
        label: label.to_owned(),
        status: None,
        period: None,
        due_on: None,
        holder: None,
        plain: "{}".to_owned(),
        sealed: Some(Dek::generate().seal(KeyVersion(1), b"secret", &aad(client))),
        created_by: None,
        created_at_ms: T0,
        updated_at_ms: T0,
        version: 1,
    }
}

fn insert(row: RecordRow) -> RecordOp {
    RecordOp::Insert {
        row,
        indexes: Vec::new(),
        blob: None,
    }
}

async fn two_clients(
    db: &TestDb,
) -> (
    Box<dyn zf_store::Store>,
    zf_store::NewUser,
    ClientId,
    ClientId,
) {
    let store = db.store().await;
    let keys = Keys::default();
    let alice = new_user("alice", Role::Accountant);
    store
        .user_create(alice.clone(), event(AuditAction::UserCreated))
        .await
        .unwrap();
    let (mine, k1) = keys.client(1, "A 爱丽丝的客户", &id_number(1), Some(alice.id));
    let (other, k2) = keys.client(2, "B 别人的客户", &id_number(2), None);
    for (row, key) in [(&mine, k1), (&other, k2)] {
        store
            .client_insert(row.clone(), key, event(AuditAction::ClientCreated))
            .await
            .unwrap();
    }
    (store, alice, mine.id, other.id)
}

async fn records_follow_their_clients_scope(db: &TestDb) {
    let (store, alice, mine, other) = two_clients(db).await;
    let alice_scope = Scope::AssignedTo(alice.id);
    for client in [mine, other] {
        store
            .record_write(
                Scope::All,
                client,
                vec![insert(record(RecordKind::Contact, client, "王五"))],
                event(AuditAction::RecordCreated),
            )
            .await
            .unwrap();
    }
    // Alice reaches her client's records and nothing of the other client, not even its
    // existence: the answer is the same as for a client that does not exist.
    let found = store
        .record_query(
            alice_scope,
            RecordQuery::of_client(RecordKind::Contact, mine),
            None,
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].row.client_id, mine);
    for client in [other, ClientId::new_random()] {
        let err = store
            .record_query(
                alice_scope,
                RecordQuery::of_client(RecordKind::Contact, client),
                None,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
        let err = store
            .record_write(
                alice_scope,
                client,
                vec![insert(record(RecordKind::Contact, client, "x"))],
                event(AuditAction::RecordCreated),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
    }
    // A cross-client query in her scope sees only her records.
    let all_hers = store
        .record_query(alice_scope, RecordQuery::new(RecordKind::Contact), None)
        .await
        .unwrap();
    assert_eq!(all_hers.len(), 1);
    let everyone = store
        .record_query(Scope::All, RecordQuery::new(RecordKind::Contact), None)
        .await
        .unwrap();
    assert_eq!(everyone.len(), 2);
    assert!(store
        .record_query(Scope::None, RecordQuery::new(RecordKind::Contact), None)
        .await
        .unwrap()
        .is_empty());
    // A record smuggled under another client id in the same unit of work is refused whole.
    let before = store
        .record_query(Scope::All, RecordQuery::new(RecordKind::Contact), None)
        .await
        .unwrap()
        .len();
    let err = store
        .record_write(
            alice_scope,
            mine,
            vec![
                insert(record(RecordKind::Contact, mine, "ok")),
                insert(record(RecordKind::Contact, other, "smuggled")),
            ],
            event(AuditAction::RecordCreated),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let after = store
        .record_query(Scope::All, RecordQuery::new(RecordKind::Contact), None)
        .await
        .unwrap()
        .len();
    assert_eq!(before, after, "nothing of the refused unit was written");
}

async fn records_are_versioned_indexed_and_deleted_with_their_client(db: &TestDb) {
    let (store, _alice, mine, _other) = two_clients(db).await;
    let index_key = BlindIndexKey::generate();
    let token = |v: &str| IndexEntry {
        field: "contact.mobile",
        token: index_key.index("contact.mobile", v.as_bytes()),
    };
    let contact = record(RecordKind::Contact, mine, "王五");
    let id = contact.id;
    store
        .record_write(
            Scope::All,
            mine,
            vec![RecordOp::Insert {
                row: contact.clone(),
                indexes: vec![token("13812345678")],
                blob: None,
            }],
            event(AuditAction::RecordCreated),
        )
        .await
        .unwrap();
    let by_index = |v: &str| RecordQuery {
        index: Some(token(v).into()),
        ..RecordQuery::new(RecordKind::Contact)
    };
    let found = store
        .record_query(Scope::All, by_index("13812345678"), None)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].row.id, id);

    // An update at the right version replaces the content and the index; a stale one is refused.
    let mut changed = contact.clone();
    changed.label = "王五（财务）".into();
    store
        .record_write(
            Scope::All,
            mine,
            vec![RecordOp::Update {
                row: changed.clone(),
                expected_version: 1,
                indexes: Some(vec![token("13900000000")]),
            }],
            event(AuditAction::RecordUpdated),
        )
        .await
        .unwrap();
    let err = store
        .record_write(
            Scope::All,
            mine,
            vec![RecordOp::Update {
                row: changed,
                expected_version: 1,
                indexes: None,
            }],
            event(AuditAction::RecordUpdated),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::VersionConflict), "{err:?}");
    assert!(store
        .record_query(Scope::All, by_index("13812345678"), None)
        .await
        .unwrap()
        .is_empty());
    let found = store
        .record_query(Scope::All, by_index("13900000000"), None)
        .await
        .unwrap();
    assert_eq!(found[0].row.label, "王五（财务）");
    assert_eq!(found[0].row.version, 2);

    // A record of another kind is not reachable under this kind's id.
    let err = store
        .record_write(
            Scope::All,
            mine,
            vec![RecordOp::Delete {
                id,
                kind: RecordKind::Contract,
            }],
            event(AuditAction::RecordDeleted),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    // Deleting the client takes its records and their indexes with it.
    store
        .client_delete(Scope::All, mine, event(AuditAction::ClientDeleted))
        .await
        .unwrap();
    assert!(store
        .record_query(Scope::All, by_index("13900000000"), None)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        db.query_i64(&format!(
            "SELECT COUNT(*) FROM client_records WHERE client_id = '{mine}'"
        ))
        .await,
        0
    );
}

async fn filing_generation_is_idempotent_and_due_queries_filter(db: &TestDb) {
    let (store, alice, mine, _other) = two_clients(db).await;
    let filing = |tax: &str, period: &str, due: &str| {
        let mut r = record(RecordKind::FilingTask, mine, tax);
        r.period = Some(period.into());
        r.due_on = Some(due.into());
        r.status = Some("todo".into());
        r.sealed = None;
        RecordOp::InsertIfAbsent { row: r }
    };
    let plan = || {
        vec![
            filing("vat", "2026-Q1", "2026-04-20"),
            filing("vat", "2026-Q2", "2026-07-15"),
            filing("iit_withholding", "2026-03", "2026-04-20"),
        ]
    };
    let created = store
        .record_write(
            Scope::All,
            mine,
            plan(),
            event(AuditAction::FilingTasksGenerated),
        )
        .await
        .unwrap();
    assert_eq!(created, 3);
    let again = store
        .record_write(
            Scope::All,
            mine,
            plan(),
            event(AuditAction::FilingTasksGenerated),
        )
        .await
        .unwrap();
    assert_eq!(again, 0, "a second run creates nothing");
    let due = store
        .record_query(
            Scope::AssignedTo(alice.id),
            RecordQuery {
                status_in: vec!["todo".into(), "in_progress".into()],
                due_until: Some("2026-04-30".into()),
                ..RecordQuery::new(RecordKind::FilingTask)
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(due.len(), 2);
    assert!(due
        .iter()
        .all(|h| h.row.due_on.as_deref() == Some("2026-04-20")));
}

async fn document_contents_are_read_with_their_event(db: &TestDb) {
    let (store, alice, mine, other) = two_clients(db).await;
    let doc = record(RecordKind::Document, mine, "business_licence");
    let content = Dek::generate().seal(KeyVersion(1), b"%PDF-1.7 ...", &aad(mine));
    store
        .record_write(
            Scope::All,
            mine,
            vec![RecordOp::Insert {
                row: doc.clone(),
                indexes: Vec::new(),
                blob: Some(content.clone()),
            }],
            event(AuditAction::RecordCreated),
        )
        .await
        .unwrap();
    let events_before = db.query_i64("SELECT COUNT(*) FROM audit_events").await;
    let read = event(AuditAction::DocumentDownloaded).on("document", doc.id);
    let (hit, sealed) = store
        .record_blob(Scope::AssignedTo(alice.id), mine, doc.id, read)
        .await
        .unwrap()
        .expect("the document");
    assert_eq!(hit.row.id, doc.id);
    assert_eq!(sealed.as_bytes(), content.as_bytes());
    assert_eq!(
        db.query_i64("SELECT COUNT(*) FROM audit_events").await,
        events_before + 1
    );
    // Not in scope, or under another client: nothing, and nothing audited as read.
    let bob = new_user("bob", Role::Accountant);
    let nothing = store
        .record_blob(
            Scope::AssignedTo(bob.id),
            mine,
            doc.id,
            event(AuditAction::DocumentDownloaded),
        )
        .await;
    assert!(
        matches!(nothing, Err(StoreError::NotFound) | Ok(None)),
        "{nothing:?}"
    );
    let nothing = store
        .record_blob(
            Scope::All,
            other,
            doc.id,
            event(AuditAction::DocumentDownloaded),
        )
        .await;
    assert!(matches!(nothing, Ok(None)), "{nothing:?}");
    assert_eq!(
        db.query_i64("SELECT COUNT(*) FROM audit_events").await,
        events_before + 1
    );
}

async fn client_pages_by_cursor_neither_repeat_nor_skip(db: &TestDb) {
    let store = db.store().await;
    let keys = Keys::default();
    let names = ["甲", "乙", "丙", "丁", "戊", "己", "庚"];
    for (i, name) in names.iter().enumerate() {
        let (row, key) = keys.client(
            i as u32 + 1,
            &format!("{name}公司"),
            &id_number(i as u32 + 1),
            None,
        );
        store
            .client_insert(row, key, event(AuditAction::ClientCreated))
            .await
            .unwrap();
    }
    let page = |after: Option<(SortKey, ClientId)>| ClientQuery {
        sort: ClientSort::Name,
        after,
        limit: 3,
        ..ClientQuery::default()
    };
    let first = store.client_query(Scope::All, page(None)).await.unwrap();
    assert_eq!(first.len(), 3);
    // Rows added before and after the cursor while the reader pages on.
    for (n, name) in [(20, "一号公司"), (21, "龙公司")] {
        let (row, key) = keys.client(n, name, &id_number(n), None);
        store
            .client_insert(row, key, event(AuditAction::ClientCreated))
            .await
            .unwrap();
    }
    let mut seen: Vec<ClientId> = first.iter().map(|r| r.row.id).collect();
    let mut last = first
        .last()
        .map(|r| (SortKey::Text(r.row.name.as_str().to_owned()), r.row.id));
    loop {
        let next = store
            .client_query(Scope::All, page(last.clone()))
            .await
            .unwrap();
        if next.is_empty() {
            break;
        }
        for r in &next {
            assert!(
                !seen.contains(&r.row.id),
                "{} repeated",
                r.row.name.as_str()
            );
            seen.push(r.row.id);
        }
        last = next
            .last()
            .map(|r| (SortKey::Text(r.row.name.as_str().to_owned()), r.row.id));
    }
    // Every original row was seen exactly once, whatever was added meanwhile.
    let all = store
        .client_query(
            Scope::All,
            ClientQuery {
                limit: 100,
                ..ClientQuery::default()
            },
        )
        .await
        .unwrap();
    // The pages, read one after another, follow the store's own order of the whole list.
    let in_store_order: Vec<ClientId> = all
        .iter()
        .map(|r| r.row.id)
        .filter(|id| seen.contains(id))
        .collect();
    assert_eq!(in_store_order, seen, "pages follow the sort order");
    for r in all.iter().filter(|r| {
        names
            .iter()
            .any(|n| r.row.name.as_str() == format!("{n}公司"))
    }) {
        assert!(seen.contains(&r.row.id));
    }
    let count = store
        .client_query_count(
            Scope::All,
            ClientQuery {
                text: Some("公司".into()),
                ..ClientQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(count, 9);
}

/// Pages in descending order of creation, where several clients share one creation time: the
/// id breaks the tie, so the pages still meet every client once and in the store's order.
async fn client_pages_descend_through_equal_sort_values(db: &TestDb) {
    let store = db.store().await;
    let keys = Keys::default();
    for n in 1..=8u32 {
        let (mut row, key) = keys.client(n, &format!("同时成立公司{n}"), &id_number(n), None);
        row.created_at_ms = 1_790_000_000_000 + i64::from(n / 3);
        store
            .client_insert(row, key, event(AuditAction::ClientCreated))
            .await
            .unwrap();
    }
    let page = |after: Option<(SortKey, ClientId)>, limit| ClientQuery {
        sort: ClientSort::CreatedAt,
        descending: true,
        after,
        limit,
        ..ClientQuery::default()
    };
    let whole: Vec<ClientId> = store
        .client_query(Scope::All, page(None, 100))
        .await
        .unwrap()
        .iter()
        .map(|r| r.row.id)
        .collect();
    assert_eq!(whole.len(), 8);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let next = store
            .client_query(Scope::All, page(after.clone(), 3))
            .await
            .unwrap();
        if next.is_empty() {
            break;
        }
        seen.extend(next.iter().map(|r| r.row.id));
        after = next
            .last()
            .map(|r| (SortKey::Int(r.row.created_at_ms), r.row.id));
    }
    assert_eq!(
        seen, whole,
        "every client once, in the order of the whole list"
    );
}
