//! Scheduled backups, retention, restore tests and the backups page, on a real server over
//! TLS, on both stores. The schedule runs on the test's clock, never by sleeping.

mod common;

use common::{client_body, id_number, sql, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zf_app::backup::{BackupConfig, DrillRecord};
use zf_app::AppConfig;
use zf_audit::Actor;
use zf_policy::Role;

const DAY_MS: i64 = 86_400_000;

fn backups_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| zf_app::backup::parse_backup_name(n).is_some())
        .collect();
    names.sort();
    names
}

async fn server_backing_up_to(backend: Backend, dir: &std::path::Path) -> Option<TestServer> {
    let config = AppConfig {
        backup: BackupConfig {
            directory: Some(dir.to_owned()),
            ..BackupConfig::default()
        },
        ..AppConfig::default()
    };
    TestServer::start_with(backend, config).await
}

/// A client with a contact and a document, so a restore test has sealed values of every kind
/// to open.
async fn some_data(s: &TestServer) {
    let boss = s.signed_in("boss", Role::Supervisor).await;
    let client = boss.create_client(&client_body(1, &id_number(1))).await;
    let id = client["id"].as_str().unwrap();
    let r = boss
        .post(
            &format!("/api/v1/clients/{id}/contacts"),
            &json!({"name": "王五", "mobile": "13812345678"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = boss
        .post_bytes(
            &format!("/api/v1/clients/{id}/documents?kind=other&name=a.pdf"),
            b"%PDF-1.4\n%%EOF\n".to_vec(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

/// The restore test's last proof opens every sealed value; one moved to another client's row
/// (its associated data no longer matches) is named, never passed.
async fn the_sealed_field_check_names_a_value_that_does_not_open(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    some_data(&s).await;
    let boss = s.signed_in("boss2", Role::Supervisor).await;
    let other = boss.create_client(&client_body(2, &id_number(2))).await;
    let check = s.app.sealed_check().await.unwrap();
    assert_eq!(
        (check.clients, check.documents, check.fields_opened),
        (2, 1, 5),
        "{check:?}"
    );
    let other = other["id"].as_str().unwrap();
    sql(
        &s,
        &[&format!(
            "UPDATE clients SET legal_rep_id_number = \
             (SELECT legal_rep_id_number FROM clients WHERE id <> '{other}') WHERE id = '{other}'"
        )],
    )
    .await;
    let e = s.app.sealed_check().await.unwrap_err().to_string();
    assert!(
        e.contains(&format!("the ID number of {other} does not open")),
        "{e}"
    );
}

/// Several nodes run the schedule against one database; each task's lease makes one of them
/// back up and test the restore, the other finding it done.
async fn two_nodes_on_one_database_back_up_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = server_backing_up_to(backend, dir.path()).await else {
        return;
    };
    some_data(&s).await;
    let other =
        zf_server::Instance::open(&s.data_dir(), s.database.clone(), s.app.config().clone())
            .await
            .expect("a second node on the same database")
            .app;
    let (a, b) = tokio::join!(s.app.backup_tick(), other.backup_tick());
    let mut kinds: Vec<String> = a
        .unwrap()
        .into_iter()
        .chain(b.unwrap())
        .map(|r| {
            assert_eq!(r.outcome, "success", "{r:?}");
            r.kind
        })
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["backup", "restore_test"]);
    assert_eq!(backups_in(dir.path()).len(), 1);
    let runs = s.app.store().backup_runs(None, 10).await.unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    // Both leases were given back: the next day's backup is taken by whichever node asks.
    s.clock.advance(DAY_MS);
    let later = other
        .with_clock(s.clock.clone())
        .backup_tick()
        .await
        .unwrap();
    assert_eq!(later.len(), 1, "{later:?}");
}

async fn scheduled_backups_and_restore_tests_follow_the_clock(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = server_backing_up_to(backend, dir.path()).await else {
        return;
    };
    some_data(&s).await;

    // Nothing has ever run: a backup is due, and so is a restore test.
    let runs = s.app.backup_tick().await.unwrap();
    let kinds: Vec<&str> = runs.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["backup", "restore_test"]);
    for r in &runs {
        assert_eq!(r.outcome, "success", "{r:?}");
        assert_eq!(r.trigger, "schedule");
    }
    assert_eq!(backups_in(dir.path()).len(), 1);
    let test = &runs[1];
    assert_eq!(test.backup_id, runs[0].backup_id);
    let detail: Value = serde_json::from_str(test.detail.as_deref().unwrap()).unwrap();
    let steps: Vec<&str> = detail["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "fetch",
            "verify",
            "restore",
            "compare",
            "decrypt",
            "audit chain"
        ]
    );
    assert_eq!(detail["opened"]["clients"], 1);
    assert_eq!(detail["opened"]["documents"], 1);
    assert!(detail["opened"]["fields_opened"].as_u64().unwrap() >= 3);

    // Until the next 02:30 nothing more is due.
    assert!(s.app.backup_tick().await.unwrap().is_empty());
    s.clock.advance(DAY_MS);
    let runs = s.app.backup_tick().await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].kind, "backup");
    // Retention keeps the newest of each day; both backups were taken today (by the wall
    // clock their names carry), so the older one is gone.
    let names = backups_in(dir.path());
    assert_eq!(names.len(), 1);
    let detail: Value = serde_json::from_str(runs[0].detail.as_deref().unwrap()).unwrap();
    assert_eq!(detail["pruned"].as_array().unwrap().len(), 1);
    assert_eq!(detail["name"], names[0]);
    // A month later the restore test is due again.
    s.clock.advance(30 * DAY_MS);
    let kinds: Vec<String> = s
        .app
        .backup_tick()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert_eq!(kinds, ["backup", "restore_test"]);

    let events = s.audit().await;
    let count = |action: &str, outcome: &str| {
        events
            .iter()
            .filter(|e| e.action == action && e.outcome == outcome)
            .count()
    };
    assert_eq!(count("backup_run", "success"), 3);
    assert_eq!(count("restore_tested", "success"), 2);
    let stored = s.app.store().backup_runs(None, 100).await.unwrap();
    assert_eq!(stored.len(), 5);
    assert_eq!(stored[0].kind, "restore_test", "newest first");
}

async fn a_damaged_backup_fails_its_restore_test(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = server_backing_up_to(backend, dir.path()).await else {
        return;
    };
    some_data(&s).await;
    let run = s.app.backup_run(Actor::system(), "manual").await.unwrap();
    assert_eq!(run.outcome, "success");
    let path = dir.path().join(&backups_in(dir.path())[0]);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let test = s.app.restore_test(Actor::system(), "manual").await.unwrap();
    assert_eq!(test.outcome, "failed");
    let error = test.error.unwrap();
    assert!(error.starts_with("verify:"), "{error}");
    let events = s.audit().await;
    assert!(events
        .iter()
        .any(|e| e.action == "restore_tested" && e.outcome == "failed"));
    let overview = s.app.backup_overview().await.unwrap();
    assert!(
        overview.restore_test_overdue,
        "a failed test is no evidence"
    );
}

async fn a_target_gone_missing_is_a_recorded_failure(backend: Backend) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("nas");
    std::fs::create_dir(&dir).unwrap();
    let Some(s) = server_backing_up_to(backend, &dir).await else {
        return;
    };
    // The NAS is unmounted: the scheduled backup fails, visibly, rather than not happening.
    std::fs::remove_dir(&dir).unwrap();
    let runs = s.app.backup_tick().await.unwrap();
    assert_eq!(runs[0].kind, "backup");
    assert_eq!(runs[0].outcome, "failed");
    assert!(
        runs[0].error.as_deref().unwrap().contains("nas"),
        "{runs:?}"
    );
    assert!(!dir.exists(), "a missing directory is never created");
    assert_eq!(runs[1].kind, "restore_test");
    assert_eq!(runs[1].outcome, "failed");
    let events = s.audit().await;
    assert!(events
        .iter()
        .any(|e| e.action == "backup_run" && e.outcome == "failed"));
    let overview = s.app.backup_overview().await.unwrap();
    assert_eq!(overview.last_backup_at_ms, None);
    assert_eq!(overview.runs.len(), 2);
    // Each failed run is an alert at once, for the security administrator's console and sinks.
    let alerts = s
        .app
        .alerts(Some(zf_audit::AlertStatus::Open), 10)
        .await
        .unwrap();
    let failed: Vec<&str> = alerts
        .iter()
        .filter(|a| a.alert.rule == "backup_failed")
        .map(|a| a.alert.summary.as_str())
        .collect();
    assert_eq!(failed.len(), 2, "{alerts:?}");
    assert!(
        failed
            .iter()
            .any(|s| s.contains("scheduled backup failed") && s.contains("nas")),
        "{failed:?}"
    );
}

async fn the_backups_page_and_api_are_for_the_system_and_security_admins(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = server_backing_up_to(backend, dir.path()).await else {
        return;
    };
    let admin = s.signed_in("sysadmin", Role::SystemAdmin).await;
    let security = s.signed_in("secadmin", Role::SecurityAdmin).await;
    let accountant = s.signed_in("accountant", Role::Accountant).await;

    let run = admin.backup_by_hand("/api/v1/backups").await;
    assert_eq!(run["kind"], "backup");
    assert_eq!(run["trigger"], "manual");
    assert_eq!(run["outcome"], "success", "{run}");
    assert!(run["bytes"].as_i64().unwrap() > 0);
    let test = admin.backup_by_hand("/api/v1/backups/restore-tests").await;
    assert_eq!(test["outcome"], "success", "{test}");
    assert!(test["rpo_ms"].as_i64().unwrap() >= 0);

    // While one runs, another is refused — by hand or on the schedule of any node — and the
    // page says what is running.
    let lease = zf_app::now_ms();
    assert!(s
        .app
        .store()
        .schedule_lease_take("backups", "another-node", lease, lease + 60_000)
        .await
        .unwrap());
    let r = admin.post("/api/v1/backups", &json!({})).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    s.app
        .store()
        .schedule_lease_release("backups", "another-node")
        .await
        .unwrap();

    // Critical: once the second factor is no longer fresh, both ask for it again.
    s.clock.advance(6 * 60 * 1000);
    for path in ["/api/v1/backups", "/api/v1/backups/restore-tests"] {
        let r = admin.post(path, &json!({})).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "mfa_required", "{e}");
        assert_eq!(e["challenge"]["kind"], "step_up");
    }
    let r = s.step_up(&admin).await;
    assert_eq!(r.status(), StatusCode::OK);
    admin.backup_by_hand("/api/v1/backups").await;

    // The security administrator sees the evidence but runs nothing.
    let r = security.get("/api/v1/backups").await;
    assert_eq!(r.status(), StatusCode::OK);
    let o: Value = r.json().await.unwrap();
    assert_eq!(o["runs"].as_array().unwrap().len(), 3);
    assert_eq!(o["restore_test_overdue"], false);
    assert_eq!(o["drill_overdue"], true);
    let r = security.post("/api/v1/backups", &json!({})).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let page = security.get("/backups").await.text().await.unwrap();
    assert!(page.contains("灾备演练已逾期"), "the drill reminder");
    assert!(
        !page.contains("action=\"/backups/run\""),
        "no button to run"
    );

    // Client-data roles do not reach it at all.
    for path in ["/api/v1/backups", "/backups"] {
        let r = accountant.get(path).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }

    // A drill, as the CLI reports it, clears the drill reminder.
    let now = zf_app::Clock::now_ms(s.clock.as_ref());
    s.app
        .backup_record_drill(
            Actor::cli("operator"),
            DrillRecord {
                started_at_ms: now - 60_000,
                finished_at_ms: now,
                ok: true,
                backup_id: Some(run["backup_id"].as_str().unwrap().to_owned()),
                backup_created_at_ms: run["backup_created_at_ms"].as_i64(),
                bytes: None,
                source: "test".into(),
                error: None,
                detail: json!({}),
            },
        )
        .await
        .unwrap();
    let page = admin.get("/backups").await.text().await.unwrap();
    assert!(!page.contains("灾备演练已逾期"));
    assert!(page.contains("action=\"/backups/run\""));
    assert!(page.contains("drill"));
    let events = s.audit().await;
    assert!(events.iter().any(|e| e.action == "drill_run"));
}

async fn without_a_target_nothing_runs_and_the_answer_says_why(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    assert!(s.app.backup_tick().await.unwrap().is_empty());
    let admin = s.signed_in("sysadmin", Role::SystemAdmin).await;
    let r = admin.post("/api/v1/backups", &json!({})).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no backup target"),
        "{e}"
    );
    assert!(s
        .app
        .store()
        .backup_runs(None, 10)
        .await
        .unwrap()
        .is_empty());
}

on_both_stores!(
    scheduled_backups_and_restore_tests_follow_the_clock,
    the_sealed_field_check_names_a_value_that_does_not_open,
    two_nodes_on_one_database_back_up_once,
    a_damaged_backup_fails_its_restore_test,
    a_target_gone_missing_is_a_recorded_failure,
    the_backups_page_and_api_are_for_the_system_and_security_admins,
    without_a_target_nothing_runs_and_the_answer_says_why,
);
