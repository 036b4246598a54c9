//! The 等保 password profile from outside: three character classes, no reuse of the last five,
//! expiry after 90 days forcing a change at the next sign-in, a 30-minute lock after five
//! failures; and, in every profile, a second factor before an enrolled user's password changes.

mod common;

use common::{Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zf_app::identity::PasswordPolicy;
use zf_app::AppConfig;
use zf_policy::Role;

on_both_stores!(the_dengbao_profile_as_a_user_meets_it);

const MINUTE: i64 = 60 * 1000;

async fn change(s: &common::Session, current: &str, new: &str) -> (StatusCode, Value) {
    let r = s
        .put(
            "/api/v1/session/password",
            &json!({"current_password": current, "new_password": new}),
        )
        .await;
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn the_dengbao_profile_as_a_user_meets_it(b: Backend) {
    let dengbao = PasswordPolicy::dengbao();
    let config = AppConfig {
        login: dengbao.default_login(),
        password: dengbao,
        ..AppConfig::default()
    };
    let Some(s) = TestServer::start_with(b, config).await else {
        return;
    };
    let user = s.signed_in("dengbao", Role::Accountant).await;
    let mut current = "A fresh pass phrase for tests".to_owned();

    let (status, body) = change(&user, &current, "only lower case words here").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "password_policy");

    // Five passwords in a row; then none of the last five may come back, the sixth may.
    let passwords: Vec<String> = (1..=5).map(|n| format!("Quiet river number {n}")).collect();
    let first = current.clone();
    for p in &passwords {
        let (status, body) = change(&user, &current, p).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        current = p.clone();
    }
    // The current one and the four before it are refused; the one before those is not.
    for reused in &passwords[..4] {
        let (status, body) = change(&user, &current, reused).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reused}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("last 5"),
            "{body}"
        );
    }
    let (status, body) = change(&user, &current, &first).await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "five back is allowed again: {body}"
    );
    current = first;

    // With an authenticator, a stale second factor must be renewed before a change.
    s.clock.advance(10 * MINUTE);
    let (status, body) = change(&user, &current, "Another quiet river 6").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "mfa_required");
    assert_eq!(s.step_up(&user).await.status(), StatusCode::OK);
    let (status, _) = change(&user, &current, "Another quiet river 6").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    current = "Another quiet river 6".into();

    // Ninety days on, the next sign-in may do nothing but change the password.
    s.clock.advance(90 * 24 * 60 * MINUTE);
    let again = s
        .sign_in("dengbao", &current, user.authenticator.clone())
        .await;
    let r = again.get("/api/v1/clients").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "password_change_required");
    let (status, _) = change(&again, &current, "Spring river 7 flows").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(again.get("/api/v1/clients").await.status(), StatusCode::OK);
    current = "Spring river 7 flows".into();

    // Five failures lock for thirty minutes, not the default fifteen.
    let wrong = json!({"username": "dengbao", "password": "Not the password 1"});
    for _ in 0..5 {
        s.client(false)
            .post(s.url("/api/v1/session"))
            .json(&wrong)
            .send()
            .await
            .unwrap();
    }
    let right = json!({"username": "dengbao", "password": current});
    let attempt = || async {
        s.client(false)
            .post(s.url("/api/v1/session"))
            .json(&right)
            .send()
            .await
            .unwrap()
            .status()
    };
    s.clock.advance(29 * MINUTE);
    assert_eq!(
        attempt().await,
        StatusCode::UNAUTHORIZED,
        "still locked at 29 minutes"
    );
    s.clock.advance(2 * MINUTE);
    assert_eq!(attempt().await, StatusCode::OK, "open again after 30");
}
