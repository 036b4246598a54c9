//! Retention and archives: nothing younger than its retention can leave the log; older
//! segments move to signed archive files that verification checks and continues from.

mod common;

use common::{Backend, TestServer};
use zf_audit::{Actor, Archive, AuditAction, AuditEvent, Finding, Outcome};
use zf_policy::Role;

on_both_stores!(old_events_are_archived_and_young_ones_cannot_leave);

const DAY: i64 = 86_400_000;

/// Runs SQL directly against the store and returns whether the database accepted it.
async fn try_sql(s: &TestServer, statement: &str) -> bool {
    match &s.database {
        zf_server::DatabaseChoice::Sqlite(path) => {
            let db = rusqlite::Connection::open(path).unwrap();
            db.execute_batch(statement).is_ok()
        }
        zf_server::DatabaseChoice::Postgres(url) => {
            let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            c.batch_execute(statement).await.is_ok()
        }
    }
}

async fn old_events_are_archived_and_young_ones_cannot_leave(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let now = zf_app::now_ms();
    // Half a year and more ago: fifty sign-ins.
    let old: Vec<AuditEvent> = (0..50)
        .map(|i| {
            AuditEvent::new(
                now - 200 * DAY + i,
                Actor::system(),
                AuditAction::Login,
                Outcome::Success,
            )
        })
        .collect();
    s.app.store().audit_append_batch(old).await.unwrap();
    s.signed_in("guidang", Role::AuditAdmin).await;
    let before = s.audit().await.len();

    // Not even an old event leaves without an archive, and nobody can shorten the retention.
    assert!(!try_sql(&s, "DELETE FROM audit_events WHERE seq = 3").await);
    assert!(!try_sql(&s, "UPDATE audit_settings SET retention_ms = 1000").await);

    let mut file = Vec::new();
    let manifest = s
        .app
        .audit_archive(now, &mut file, Actor::cli("test"))
        .await
        .unwrap()
        .expect("an archive");
    assert_eq!(
        (manifest.first_seq, manifest.last_seq, manifest.count),
        (1, 50, 50)
    );
    assert!(manifest.signed_by(&s.app.audit_public_key()));
    let after = s.audit().await;
    assert_eq!(
        after.len(),
        before - 50 + 1,
        "50 archived, one audit_archived event added"
    );
    assert!(after.iter().any(|e| e.action == "audit_archived"));
    // Nothing else is old enough.
    assert!(s
        .app
        .audit_archive(now, &mut Vec::new(), Actor::cli("test"))
        .await
        .unwrap()
        .is_none());

    // The log verifies on its own (continuing from the recorded archive), and with the file.
    let report = s.app.audit_verify(&[]).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.findings);
    let archive = Archive::read(file.as_slice()).unwrap();
    let report = s
        .app
        .audit_verify_with_archives(&[], &[archive])
        .await
        .unwrap();
    assert!(report.is_intact(), "{:?}", report.findings);
    assert_eq!(report.events as usize, after.len() + 50);

    // An archive signed by another key is named.
    let other_key = zf_crypto::AuditSigningKey::generate();
    let archive = Archive::read(file.as_slice()).unwrap();
    let mut forged = Vec::new();
    Archive::write(&archive.events, 1, &other_key, &mut forged).unwrap();
    let report = s
        .app
        .audit_verify_with_archives(&[], &[Archive::read(forged.as_slice()).unwrap()])
        .await
        .unwrap();
    assert!(
        report.findings.iter().any(
            |f| matches!(f, Finding::Archive { problem, .. } if problem.contains("not signed"))
        ),
        "{:?}",
        report.findings
    );

    // A young event cannot leave even behind a forged archive record.
    let young = after.last().unwrap().seq;
    let forged_record =
        format!(
        "INSERT INTO audit_archives (last_seq, first_seq, last_hash, sha256, created_at, signature)
         VALUES ({young}, {young}, {z}, {z}, 0, {z})",
        z = if s.schema.is_none() { "zeroblob(32)" } else { "decode(repeat('00', 32), 'hex')" }
    );
    assert!(try_sql(&s, &forged_record).await);
    assert!(!try_sql(&s, &format!("DELETE FROM audit_events WHERE seq = {young}")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_retention_is_itself_audited_once() {
    let config = || zf_app::AppConfig {
        audit_retention_days: 365,
        ..zf_app::AppConfig::default()
    };
    let s = TestServer::start_with(Backend::Sqlite, config())
        .await
        .unwrap();
    // A second node starting with the same setting changes nothing and records nothing.
    zf_server::Instance::open(&s.data_dir(), s.database.clone(), config())
        .await
        .unwrap();
    let changes: Vec<_> = s
        .audit()
        .await
        .into_iter()
        .filter(|e| e.action == "audit_retention_changed")
        .collect();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].detail.as_deref(), Some("365 days"));
    // Lower than the law allows: the node refuses to start.
    let short = zf_app::AppConfig {
        audit_retention_days: 30,
        ..zf_app::AppConfig::default()
    };
    assert!(
        zf_server::Instance::open(&s.data_dir(), s.database.clone(), short)
            .await
            .is_err()
    );
}
