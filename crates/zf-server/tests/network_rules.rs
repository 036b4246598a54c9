//! Network rules: a role confined to an address range is refused elsewhere, the client address
//! comes from `X-Forwarded-For` only through a trusted proxy, and the refusal is audited.

mod common;

use common::{Backend, TestServer};
use reqwest::StatusCode;
use serde_json::Value;
use zf_app::AppConfig;
use zf_policy::{NetworkPolicy, Role};

fn config(trust_loopback_proxy: bool) -> AppConfig {
    let trusted = if trust_loopback_proxy {
        vec!["127.0.0.1/32".parse().unwrap()]
    } else {
        vec![]
    };
    AppConfig {
        network: NetworkPolicy {
            trusted_proxies: trusted,
            allow: [(Role::Accountant, vec!["192.0.2.0/24".parse().unwrap()])]
                .into_iter()
                .collect(),
        },
        ..AppConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confined_role_works_only_from_its_network() {
    let s = TestServer::start_with(Backend::Sqlite, config(true))
        .await
        .unwrap();
    let acc = s.signed_in("bangong", Role::Accountant).await;
    let sup = s.signed_in("zhuguan", Role::Supervisor).await;

    // From the loopback address itself (the proxy, with nobody behind it): refused.
    let r = acc.get("/api/v1/clients").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "network");
    // Through the trusted proxy from the office range: allowed, and audited with that address.
    let office = |path: &str| {
        acc.client
            .get(acc.url(path))
            .header("x-forwarded-for", "198.51.100.9, 192.0.2.10")
            .send()
    };
    assert_eq!(
        office("/api/v1/clients").await.unwrap().status(),
        StatusCode::OK
    );
    // Other roles are not confined.
    assert_eq!(sup.get("/api/v1/clients").await.status(), StatusCode::OK);
    let denied = s
        .audit()
        .await
        .into_iter()
        .find(|e| e.action == "access_denied" && e.actor_name == "bangong")
        .expect("the refusal is audited");
    assert_eq!(denied.source.as_deref(), Some("127.0.0.1"));
    assert!(denied.detail.unwrap().contains("network"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_address_from_an_untrusted_peer_is_ignored() {
    let s = TestServer::start_with(Backend::Sqlite, config(false))
        .await
        .unwrap();
    let acc = s.signed_in("weizao", Role::Accountant).await;
    let r = acc
        .client
        .get(acc.url("/api/v1/clients"))
        .header("x-forwarded-for", "192.0.2.10")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "a forged header must not open the door"
    );
}
