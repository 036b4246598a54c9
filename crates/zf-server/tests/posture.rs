//! The security posture check against the real stores: each check answers from the live state,
//! a failing one turns into one alert a day, and the verdicts move when the state does — a KEK
//! past its age, a tampered audit log, a backup and restore test made.

mod common;

use common::{disable_audit_triggers, sql, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::Value;
use zf_app::backup::BackupConfig;
use zf_app::AppConfig;
use zf_audit::Actor;
use zf_domain::Username;
use zf_policy::Role;

on_both_stores!(
    the_posture_answers_from_the_live_state_and_failures_raise_alerts,
    backups_and_restore_tests_made_pass_their_checks,
);

const DAY_MS: i64 = 86_400_000;

async fn posture(session: &common::Session) -> Value {
    let r = session.get("/api/v1/security/posture").await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// The posture from the application itself, for when the test clock has outrun every session.
async fn posture_now(s: &TestServer) -> Value {
    serde_json::to_value(s.app.posture().await.unwrap()).unwrap()
}

fn check<'a>(posture: &'a Value, id: &str) -> &'a Value {
    posture["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {posture:#}"))
}

fn status(posture: &Value, id: &str) -> String {
    check(posture, id)["status"].as_str().unwrap().to_owned()
}

fn summary(posture: &Value, id: &str) -> String {
    check(posture, id)["summary"].as_str().unwrap().to_owned()
}

async fn the_posture_answers_from_the_live_state_and_failures_raise_alerts(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let security = s.signed_in("anquan", Role::SecurityAdmin).await;
    let accountant = s.signed_in("kuaiji", Role::Accountant).await;
    // A supervisor created but not yet signed in has no second factor.
    s.app
        .add_user(
            Username::parse("zhouzhu").unwrap(),
            Role::Supervisor,
            None,
            Actor::cli("test"),
        )
        .await
        .unwrap();

    let p = posture(&security).await;
    let ids: Vec<&str> = p["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let mut expected = vec![
        "kek_age",
        "key_custody",
        "data_keys",
        "mfa_policy",
        "mfa_enrolment",
        "sign_in_lockout",
        "session_timeouts",
        "admin_networks",
        "api_tokens",
        "erasure_requests",
        "backups",
        "restore_tests",
        "drills",
        "access_reviews",
        "audit_chain",
        "alerts",
        "log_forwarding",
        "tls_certificate",
        "dormant_accounts",
    ];
    if b == Backend::Postgres {
        expected.insert(2, "database_link");
    }
    assert_eq!(ids, expected);
    assert_eq!(status(&p, "kek_age"), "pass", "{p:#}");
    assert!(summary(&p, "kek_age").contains("KEK v1 is 0 days old; the policy allows 365"));
    assert_eq!(status(&p, "key_custody"), "warn");
    if b == Backend::Postgres {
        assert_eq!(status(&p, "database_link"), "pass");
        assert!(summary(&p, "database_link").contains("on this machine"));
    }
    assert_eq!(status(&p, "data_keys"), "pass");
    assert_eq!(status(&p, "mfa_policy"), "pass");
    assert_eq!(status(&p, "mfa_enrolment"), "warn");
    assert!(
        summary(&p, "mfa_enrolment").starts_with("1 of 3 users")
            && summary(&p, "mfa_enrolment").contains("zhouzhu"),
        "{}",
        summary(&p, "mfa_enrolment")
    );
    assert_eq!(status(&p, "sign_in_lockout"), "pass");
    assert_eq!(status(&p, "session_timeouts"), "pass");
    assert_eq!(status(&p, "admin_networks"), "warn");
    assert_eq!(status(&p, "api_tokens"), "pass");
    assert_eq!(status(&p, "erasure_requests"), "pass");
    assert_eq!(status(&p, "backups"), "fail");
    assert_eq!(status(&p, "restore_tests"), "fail");
    assert_eq!(status(&p, "audit_chain"), "pass");
    assert_eq!(status(&p, "alerts"), "pass");
    assert_eq!(status(&p, "log_forwarding"), "warn");
    assert_eq!(
        status(&p, "tls_certificate"),
        "warn",
        "the test server's certificate is self-signed"
    );
    assert_eq!(status(&p, "dormant_accounts"), "pass");
    assert_eq!(p["status"], "fail");
    let count = |verdict: &str| {
        p["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == verdict)
            .count()
    };
    assert_eq!(p["failed"], count("fail"));
    assert_eq!(p["warnings"], count("warn"));

    // Only the security administrator asks; each asking is audited with what it found.
    let r = accountant.get("/api/v1/security/posture").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let asked: Vec<_> = s
        .audit()
        .await
        .into_iter()
        .filter(|e| e.action == "security_posture_checked")
        .collect();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].actor_name, "anquan");
    let detail = asked[0].detail.clone().unwrap_or_default();
    assert!(
        detail.starts_with(&format!("fail: {} checks, 2 failed", expected.len()))
            && detail.contains("backups fail"),
        "{detail}"
    );

    // The page shows the same checks, the failing first.
    let page = security.get("/posture").await.text().await.unwrap();
    let first = page.find("data-check=\"backups\"").expect("backups row");
    assert!(first < page.find("data-check=\"kek_age\"").expect("kek row"));

    // Failing checks become alerts, once a day each.
    let raised = s.app.posture_alerts().await.unwrap();
    let mut named: Vec<&str> = raised
        .iter()
        .map(|a| {
            assert_eq!(a.rule, "security_posture");
            a.summary.split_whitespace().nth(4).unwrap()
        })
        .collect();
    named.sort_unstable();
    assert_eq!(named, ["backups", "restore_tests"], "{raised:?}");
    assert!(s.app.posture_alerts().await.unwrap().is_empty());
    let p = posture(&security).await;
    assert_eq!(
        status(&p, "alerts"),
        "pass",
        "the posture's own alerts restate other checks"
    );

    // A decoy client read: a critical alert, open, fails the alerts check.
    let decoy = accountant
        .create_client(&common::client_body(801, &common::id_number(801)))
        .await;
    let id = decoy["id"].as_str().unwrap();
    s.app
        .plant_honeytoken(zf_domain::ClientId::parse(id).unwrap(), Actor::cli("test"))
        .await
        .unwrap();
    accountant.get(&format!("/api/v1/clients/{id}")).await;
    s.app.monitor_tick().await.unwrap();
    let open = s
        .app
        .alerts(Some(zf_audit::AlertStatus::Open), 100)
        .await
        .unwrap();
    assert_eq!(
        open.iter()
            .filter(|a| a.alert.rule != "security_posture")
            .count(),
        1,
        "{open:?}"
    );
    let p = posture(&security).await;
    assert_eq!(status(&p, "alerts"), "fail");
    assert!(
        summary(&p, "alerts").starts_with("1 high or critical alerts are open"),
        "{}",
        summary(&p, "alerts")
    );

    // A supervisor asks for the decoy client's erasure; nobody decides.
    let boss = s.signed_in("shenqing", Role::Supervisor).await;
    let r = boss
        .delete_with(
            &format!("/api/v1/clients/{id}"),
            &serde_json::json!({"reason": "客户解约，申请删除资料"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let p = posture(&security).await;
    assert_eq!(status(&p, "erasure_requests"), "pass");
    assert!(summary(&p, "erasure_requests").starts_with("1 erasure requests wait"));

    // A year on (sessions long expired: the application is asked directly), the KEK is past
    // the rotation policy, the open alerts count against it, and the erasure still waits.
    s.clock.advance(366 * DAY_MS);
    let p = posture_now(&s).await;
    assert_eq!(status(&p, "erasure_requests"), "warn", "{p:#}");
    assert_eq!(status(&p, "kek_age"), "fail");
    assert!(summary(&p, "kek_age").contains("366 days old"), "{p:#}");
    let raised = s.app.posture_alerts().await.unwrap();
    assert!(
        raised.iter().any(|a| a.summary.contains("kek_age failed")),
        "{raised:?}"
    );
    assert!(s.app.key_status().await.unwrap().rotation_overdue);

    // Somebody with database access edits an event: the chain check fails and names it.
    disable_audit_triggers(&s).await;
    sql(
        &s,
        &["UPDATE audit_events SET actor_name = 'nobody' WHERE seq = 3"],
    )
    .await;
    let p = posture_now(&s).await;
    assert_eq!(status(&p, "audit_chain"), "fail");
    assert!(
        summary(&p, "audit_chain").contains("event #3 was edited"),
        "{}",
        summary(&p, "audit_chain")
    );
}

async fn backups_and_restore_tests_made_pass_their_checks(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let config = AppConfig {
        backup: BackupConfig {
            directory: Some(dir.path().to_owned()),
            ..BackupConfig::default()
        },
        kek_max_age_days: 30,
        ..AppConfig::default()
    };
    let Some(s) = TestServer::start_with(b, config).await else {
        return;
    };
    let security = s.signed_in("anquan", Role::SecurityAdmin).await;
    let p = posture(&security).await;
    assert_eq!(status(&p, "backups"), "fail");
    assert!(summary(&p, "backups").contains("no backup has succeeded yet"));

    let run = s.app.backup_run(Actor::system(), "manual").await.unwrap();
    assert_eq!(run.outcome, "success", "{run:?}");
    let run = s.app.restore_test(Actor::system(), "manual").await.unwrap();
    assert_eq!(run.outcome, "success", "{run:?}");
    let p = posture(&security).await;
    assert_eq!(status(&p, "backups"), "pass", "{p:#}");
    assert_eq!(status(&p, "restore_tests"), "pass", "{p:#}");
    assert_eq!(status(&p, "drills"), "warn", "no drill yet");

    // Three days without a backup: scheduled runs are not happening. The shorter rotation
    // policy from the configuration warns before its end.
    s.clock.advance(3 * DAY_MS + 1);
    let p = posture_now(&s).await;
    assert_eq!(status(&p, "backups"), "fail");
    assert!(summary(&p, "backups").contains("72 hours old"), "{p:#}");
    s.clock.advance(13 * DAY_MS);
    let p = posture_now(&s).await;
    assert_eq!(status(&p, "kek_age"), "warn", "{p:#}");
    assert!(summary(&p, "kek_age").contains("the policy allows 30"));
}
