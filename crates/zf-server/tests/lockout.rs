//! Sign-in throttling: an account locks after repeated failures, an address is refused after
//! too many, and neither can be told from a wrong password by the answer.

mod common;

use common::{Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zf_app::AppConfig;
use zf_policy::Role;

on_both_stores!(an_account_locks_after_repeated_failures_and_unlocks);

const PASSWORD: &str = "a fresh pass phrase for tests";

async fn attempt(s: &TestServer, user: &str, password: &str) -> (StatusCode, Value) {
    let r = s
        .client(false)
        .post(s.url("/api/v1/session"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let mut body: Value = r.json().await.unwrap_or(Value::Null);
    body["error"]["request_id"] = Value::Null;
    (status, body)
}

async fn an_account_locks_after_repeated_failures_and_unlocks(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    s.signed_in("suoding", Role::Accountant).await;
    let wrong = attempt(&s, "suoding", "not the password!!").await;
    assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
    for _ in 0..4 {
        attempt(&s, "suoding", "not the password!!").await;
    }
    // Five failures: now even the right password is refused, with the same answer.
    let locked = attempt(&s, "suoding", PASSWORD).await;
    assert_eq!(locked, wrong);
    let unknown = attempt(&s, "nobody-here", PASSWORD).await;
    assert_eq!(unknown, wrong, "an unknown user is answered alike");
    let details: Vec<String> = s
        .audit()
        .await
        .into_iter()
        .filter(|e| e.action == "login" && e.outcome == "failed")
        .filter_map(|e| e.detail)
        .collect();
    assert_eq!(details.iter().filter(|d| *d == "wrong password").count(), 5);
    assert!(details
        .iter()
        .any(|d| d == "account locked after repeated failures"));
    assert!(details.iter().any(|d| d == "unknown username"));

    // The unlock path: an operator (or time) lifts it, and the counter starts again.
    s.app
        .unlock_user(
            &zf_domain::Username::parse("suoding").unwrap(),
            zf_audit::Actor::cli("test"),
        )
        .await
        .unwrap();
    assert_eq!(attempt(&s, "suoding", PASSWORD).await.0, StatusCode::OK);
    attempt(&s, "suoding", "not the password!!").await;
    assert_eq!(
        attempt(&s, "suoding", PASSWORD).await.0,
        StatusCode::OK,
        "one failure does not lock"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_with_too_many_failures_is_refused() {
    let config = AppConfig {
        login: zf_app::identity::LoginPolicy {
            address_limit: 8,
            ..Default::default()
        },
        ..AppConfig::default()
    };
    let s = TestServer::start_with(Backend::Sqlite, config)
        .await
        .unwrap();
    s.signed_in("zhengchang", Role::Accountant).await;
    let wrong = attempt(&s, "spray-0", "guess guess guess").await;
    for n in 1..8 {
        attempt(&s, &format!("spray-{n}"), "guess guess guess").await;
    }
    // A password spray from one address: the next sign-in from it is refused, even a right one.
    assert_eq!(attempt(&s, "zhengchang", PASSWORD).await, wrong);
    let last = s
        .audit()
        .await
        .into_iter()
        .rev()
        .find(|e| e.action == "login")
        .unwrap();
    assert_eq!(
        last.detail.as_deref(),
        Some("too many failures from this address")
    );
}
