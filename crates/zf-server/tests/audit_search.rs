//! Investigation: the audit administrator answers "who touched client X" and "what did user Y
//! access between T1 and T2" from indexes; nobody else can ask.

mod common;

use common::{client_body, id_number, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::Value;
use zf_policy::Role;

on_both_stores!(the_two_incident_questions_are_answered_for_the_audit_admin_only);

async fn the_two_incident_questions_are_answered_for_the_audit_admin_only(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let a = s.signed_in("kuaiji-a", Role::Accountant).await;
    let other = s.signed_in("kuaiji-b", Role::Accountant).await;
    let sup = s.signed_in("zhuguan", Role::Supervisor).await;
    let auditor = s.signed_in("shenji-admin", Role::AuditAdmin).await;
    let x = a.create_client(&client_body(601, &id_number(601))).await;
    let x = x["id"].as_str().unwrap().to_owned();
    let y = other
        .create_client(&client_body(602, &id_number(602)))
        .await;
    let y = y["id"].as_str().unwrap().to_owned();
    a.get(&format!("/api/v1/clients/{x}")).await;
    sup.get(&format!("/api/v1/clients/{x}")).await;
    other.get(&format!("/api/v1/clients/{y}")).await;

    // Who touched client X?
    let page: Value = auditor
        .get(&format!("/api/v1/audit/events?client={x}"))
        .await
        .json()
        .await
        .unwrap();
    let who: Vec<(String, String)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor_name"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        who,
        vec![
            ("zhuguan".to_owned(), "client_sensitive_read".to_owned()),
            ("kuaiji-a".to_owned(), "client_sensitive_read".to_owned()),
            ("kuaiji-a".to_owned(), "client_created".to_owned()),
        ],
        "newest first, only client X"
    );

    // What did user A do in a window that covers everything, and in one that covers nothing?
    let r = auditor.get("/api/v1/audit/events?user=kuaiji-a&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00%2B08:00").await;
    assert_eq!(r.status(), StatusCode::OK);
    let page: Value = r.json().await.unwrap();
    let items = page["items"].as_array().unwrap();
    assert!(items.iter().all(|e| e["actor_name"] == "kuaiji-a"));
    assert!(
        items.len() >= 4,
        "login, password change, create, read: {items:?}"
    );
    let page: Value = auditor
        .get("/api/v1/audit/events?user=kuaiji-a&to=2000-01-01T00:00:00Z")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 0);

    // Paging with the cursor walks everything once.
    let mut seen = Vec::new();
    let mut url = "/api/v1/audit/events?user=kuaiji-a&limit=2".to_owned();
    loop {
        let page: Value = auditor.get(&url).await.json().await.unwrap();
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_i64().unwrap()),
        );
        match page["next"].as_str() {
            Some(next) => url = format!("/api/v1/audit/events?user=kuaiji-a&limit=2&before={next}"),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(seen, sorted, "newest first, no repeats");
    assert!(seen.len() >= 4);

    // Searching is itself audited, with its filters.
    let searches: Vec<_> = s
        .audit()
        .await
        .into_iter()
        .filter(|e| e.action == "audit_searched")
        .collect();
    assert!(searches
        .iter()
        .any(|e| e.detail.as_deref() == Some(&*format!("resource=clients record={x}"))));
    assert!(searches.iter().all(|e| e.actor_name == "shenji-admin"));

    // Nobody else may search; the audit admin may not read clients.
    for who in [&a, &sup] {
        assert_eq!(
            who.get("/api/v1/audit/events").await.status(),
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(
        auditor.get(&format!("/api/v1/clients/{x}")).await.status(),
        StatusCode::FORBIDDEN
    );
    // The web screen answers the same question.
    let html = auditor
        .get(&format!("/audit?client={x}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("client_created") && html.contains("kuaiji-a"));

    // Malformed filters are refused with a reason.
    for (q, needle) in [
        ("from=yesterday", "RFC 3339"),
        ("before=abc", "cursor"),
        ("client=not-a-uuid", "UUID"),
        ("colour=red", "unknown field"),
    ] {
        let r = auditor.get(&format!("/api/v1/audit/events?{q}")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{q}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"]["message"].as_str().unwrap().contains(needle),
            "{q}: {body}"
        );
    }

    // No sensitive value in any event.
    for secret in [id_number(601), id_number(602)] {
        assert!(s
            .audit()
            .await
            .iter()
            .all(|e| !format!("{e:?}").contains(&secret)));
    }
}

/// The two incident questions are served by indexes, not by reading the table.
#[test]
fn the_incident_queries_use_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(zf_store::SqliteStore::open(&path)).unwrap();
    let db = rusqlite::Connection::open(&path).unwrap();
    for (what, sql) in [
        (
            "who touched client X",
            "SELECT seq FROM audit_events WHERE resource = 'clients' AND record_id = 'x' ORDER BY at DESC, seq DESC LIMIT 100",
        ),
        (
            "what did user Y access between T1 and T2",
            "SELECT seq FROM audit_events WHERE actor_name = 'y' AND at >= 1 AND at < 2 ORDER BY at DESC, seq DESC LIMIT 100",
        ),
    ] {
        let plan: Vec<String> = db
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let plan = plan.join(" | ");
        assert!(plan.contains("USING INDEX") || plan.contains("USING COVERING INDEX"), "{what}: {plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{what} sorts instead of reading the index in order: {plan}");
    }
}
