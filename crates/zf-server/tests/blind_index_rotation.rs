//! Blind-index key rotation, on both stores: every search token in the database is computed
//! again under a new key while searches by a client's ID number, a contact's mobile or ID number
//! and a lead's mobile find the same rows before, during (between batches of the job) and after;
//! the previous key is then gone from `system_keys`, except v1, which still checks recovery
//! codes; only the security administrator starts a rotation.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{client_body, id_number, raw_bytes, raw_text, Backend, Session, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zf_audit::Actor;
use zf_policy::Role;

on_both_stores!(a_blind_index_rotation_changes_every_token_while_search_keeps_finding);

/// Every search token, wherever it is stored.
const TOKENS: [&str; 3] = [
    "SELECT legal_rep_id_index FROM clients",
    "SELECT token FROM record_index",
    "SELECT mobile_index FROM leads",
];

async fn tokens(s: &TestServer) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for query in TOKENS {
        out.extend(raw_bytes(s, query).await);
    }
    out
}

async fn blind_index_keys(s: &TestServer) -> Vec<String> {
    let mut names = raw_text(
        s,
        "SELECT name FROM system_keys WHERE name LIKE 'blind-index/%'",
    )
    .await;
    names.sort();
    names
}

/// One exact search: the endpoint and its body.
type Search = (&'static str, Value);

/// The ids each search finds, in order.
async fn found(session: &Session, searches: &[Search]) -> Vec<BTreeSet<String>> {
    let mut out = Vec::new();
    for (path, body) in searches {
        let r = session.post(path, body).await;
        assert_eq!(r.status(), StatusCode::OK, "{path} {body}");
        let hits: Vec<Value> = r.json().await.unwrap();
        out.push(
            hits.iter()
                .map(|h| h["id"].as_str().unwrap().to_owned())
                .collect(),
        );
    }
    out
}

async fn add_client_with_contact(boss: &Session, n: u32) -> Vec<Search> {
    let client = boss
        .create_client(&client_body(700 + n, &id_number(700 + n)))
        .await;
    let id = client["id"].as_str().unwrap();
    let mobile = format!("1370000{n:04}");
    let r = boss
        .post(
            &format!("/api/v1/clients/{id}/contacts"),
            &json!({"name": "王五", "mobile": mobile, "id_number": id_number(800 + n)}),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    vec![
        (
            "/api/v1/clients/search",
            json!({"legal_rep_id_number": id_number(700 + n)}),
        ),
        ("/api/v1/contacts/search", json!({ "mobile": mobile })),
        (
            "/api/v1/contacts/search",
            json!({"id_number": id_number(800 + n)}),
        ),
    ]
}

async fn add_lead(boss: &Session, n: u32) -> Search {
    let mobile = format!("1360000{n:04}");
    let r = boss
        .post(
            "/api/v1/leads",
            &json!({"company_name": format!("潜在客户{n}有限公司"), "mobile": mobile}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    ("/api/v1/leads/search", json!({ "mobile": mobile }))
}

async fn a_blind_index_rotation_changes_every_token_while_search_keeps_finding(b: Backend) {
    let config = zf_app::AppConfig {
        data_keys: zf_app::data_keys::DataKeyPolicy {
            batch: 2,
            grace_ms: 300,
            ..zf_app::data_keys::DataKeyPolicy::default()
        },
        ..zf_app::AppConfig::default()
    };
    let Some(s) = TestServer::start_with(b, config).await else {
        return;
    };
    let security = s.signed_in("anquan", Role::SecurityAdmin).await;
    let boss = s.signed_in("zhuguan", Role::Supervisor).await;
    let mut searches = Vec::new();
    for n in 0..5 {
        searches.extend(add_client_with_contact(&boss, n).await);
    }
    for n in 0..3 {
        searches.push(add_lead(&boss, n).await);
    }
    let mut expected = found(&boss, &searches).await;
    assert!(expected.iter().all(|ids| ids.len() == 1), "{expected:?}");
    let before = tokens(&s).await;
    assert_eq!(before.len(), 5 + 5 * 2 + 3);
    assert_eq!(blind_index_keys(&s).await, ["blind-index/v1"]);

    // Only the security administrator rotates the blind-index key.
    assert_eq!(
        boss.post("/api/v1/keys/blind-index", &json!({}))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    // The first rotation is started here and run a batch at a time, searching between batches.
    let job = s
        .app
        .blind_index_rotate_start(Actor::cli("test"))
        .await
        .unwrap();
    assert_eq!(job.kind, "reindex");
    assert_eq!(job.total, 5 + 3);
    assert_eq!(
        blind_index_keys(&s).await,
        ["blind-index/v1", "blind-index/v2"]
    );
    // A second start, or a re-encryption, while it runs is refused.
    for path in ["/api/v1/keys/blind-index", "/api/v1/keys/reencrypt"] {
        assert_eq!(
            security.post(path, &json!({})).await.status(),
            StatusCode::CONFLICT,
            "{path}"
        );
    }
    // What is written meanwhile is indexed under the new key and found as well.
    let written = add_client_with_contact(&boss, 9).await;
    expected.extend(found(&boss, &written).await);
    searches.extend(written);
    assert!(expected.iter().all(|ids| ids.len() == 1), "{expected:?}");
    assert_eq!(found(&boss, &searches).await, expected);

    let mut mixed = false;
    let mut batches = 0;
    let job = loop {
        let job = s.app.key_job_run_batches(1).await.unwrap().unwrap();
        batches += 1;
        assert!(batches < 200, "the re-index does not finish: {job:?}");
        assert_eq!(
            found(&boss, &searches).await,
            expected,
            "after a batch, at {}",
            job.phase
        );
        if job.phase.starts_with("reindex:client") || job.phase.starts_with("reindex:lead") {
            let now = tokens(&s).await;
            mixed |=
                now.iter().any(|t| before.contains(t)) && now.iter().any(|t| !before.contains(t));
        }
        if job.state == "finished" {
            break job;
        }
    };
    assert!(
        mixed,
        "searches ran while old and new tokens were both stored"
    );
    assert_eq!(job.holders_done, 6 + 3, "{job:?}");

    // Every token has changed; the old key is no longer needed for search but v1 stays.
    let first = tokens(&s).await;
    assert_eq!(first.len(), before.len() + 3);
    assert!(first.iter().all(|t| !before.contains(t)));
    assert_eq!(
        blind_index_keys(&s).await,
        ["blind-index/v1", "blind-index/v2"]
    );
    assert_eq!(found(&boss, &searches).await, expected);

    // The second rotation is started over the API and run by the server in the background;
    // the key it replaces, v2, is deleted.
    let r = security.post("/api/v1/keys/blind-index", &json!({})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let started: Value = r.json().await.unwrap();
    let job = wait_for(&security, started["id"].as_str().unwrap()).await;
    assert_eq!(job["kind"], "reindex", "{job}");
    let second = tokens(&s).await;
    assert_eq!(second.len(), first.len());
    assert!(second
        .iter()
        .all(|t| !first.contains(t) && !before.contains(t)));
    assert_eq!(
        blind_index_keys(&s).await,
        ["blind-index/v1", "blind-index/v3"]
    );
    assert_eq!(found(&boss, &searches).await, expected);

    // Recovery-code hashes stay under v1: a recovery code still signs in.
    let code = security
        .authenticator
        .as_ref()
        .unwrap()
        .recovery_codes
        .lock()
        .unwrap()[0]
        .clone();
    let c = s.client(true);
    let r = c
        .post(s.url("/api/v1/session"))
        .json(&json!({"username": "anquan", "password": "A fresh pass phrase for tests"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["second_factor_required"], true, "{body}");
    let r = c
        .post(s.url("/api/v1/session/second-factor"))
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());

    let actions: Vec<String> = s
        .audit()
        .await
        .iter()
        .map(|e| e.action.as_str().to_owned())
        .collect();
    let count = |a: &str| actions.iter().filter(|x| *x == a).count();
    assert_eq!(count("blind_index_rotation_started"), 2);
    assert_eq!(count("blind_index_rotation_finished"), 2);
}

async fn wait_for(security: &Session, id: &str) -> Value {
    for _ in 0..600 {
        let job: Value = security.get("/api/v1/keys/job").await.json().await.unwrap();
        if job["id"] == id && job["state"] == "finished" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the blind-index rotation did not finish in a minute");
}
