//! API tokens from outside: issued only with a fresh second factor, narrower than their owner
//! (permissions and named clients), stopped the moment they are revoked or expire,
//! rate-limited, audited on every use, and kept in the store only as hashes.

mod common;

use common::{client_body, contains, id_number, postgres_text, sqlite_bytes, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zf_app::AppConfig;
use zf_policy::Role;

on_both_stores!(a_read_token_for_named_clients_reaches_nothing_else);

/// A client that sends only the bearer token: no cookies.
async fn with_token(
    s: &TestServer,
    secret: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = s
        .client(false)
        .request(method, s.url(path))
        .bearer_auth(secret);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn a_read_token_for_named_clients_reaches_nothing_else(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let boss = s.signed_in("zhuguan", Role::Supervisor).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let c = boss.create_client(&client_body(n, &id_number(n))).await;
        ids.push(c["id"].as_str().unwrap().to_owned());
    }
    let request = json!({
        "name": "bank statement import",
        "permissions": ["client:read"],
        "clients": [ids[0], ids[1]],
        "expires_in_days": 30,
    });

    // Issuing a token is critical: a stale second factor gets the challenge first.
    s.clock.advance(10 * 60 * 1000);
    let r = boss.post("/api/v1/tokens", &request).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "mfa_required");
    assert_eq!(s.step_up(&boss).await.status(), StatusCode::OK);
    let r = boss.post("/api/v1/tokens", &request).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let issued: Value = r.json().await.unwrap();
    let secret = issued["secret"].as_str().unwrap().to_owned();
    let token_id = issued["token"]["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("zft_"));

    // A permission the owner does not hold cannot be put on a token.
    let r = boss
        .post(
            "/api/v1/tokens",
            &json!({"name": "x", "permissions": ["role_assignment:update"], "expires_in_days": 1}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // It reads the listed clients, and only those.
    let get = reqwest::Method::GET;
    let (status, list) = with_token(&s, &secret, get.clone(), "/api/v1/clients", None).await;
    assert_eq!(status, StatusCode::OK);
    let mut listed: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    listed.sort_unstable();
    let mut expected = vec![ids[0].as_str(), ids[1].as_str()];
    expected.sort_unstable();
    assert_eq!(listed, expected);
    let (status, one) = with_token(
        &s,
        &secret,
        get.clone(),
        &format!("/api/v1/clients/{}", ids[0]),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(one["legal_rep_id_number"], json!(id_number(0)), "masked");
    let (status, _) = with_token(
        &s,
        &secret,
        get.clone(),
        &format!("/api/v1/clients/{}", ids[2]),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "an unlisted client is not there"
    );

    // It cannot write, reveal, or issue further tokens.
    let (status, body) = with_token(
        &s,
        &secret,
        reqwest::Method::POST,
        "/api/v1/clients",
        Some(client_body(9, &id_number(9))),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "token_forbidden");
    let (status, _) = with_token(
        &s,
        &secret,
        reqwest::Method::PATCH,
        &format!("/api/v1/clients/{}", ids[0]),
        Some(json!({"name": "改名有限公司", "version": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = with_token(
        &s,
        &secret,
        reqwest::Method::POST,
        &format!("/api/v1/clients/{}/reveal", ids[0]),
        Some(json!({"field": "legal_rep_id_number", "reason": "check"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = with_token(
        &s,
        &secret,
        reqwest::Method::POST,
        "/api/v1/tokens",
        Some(request.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(s.client_count().await, 3, "nothing was written");

    // Every use is audited under the token's name.
    let uses: Vec<_> = s
        .audit()
        .await
        .into_iter()
        .filter(|e| e.action == "token_used")
        .collect();
    assert_eq!(uses.len(), 7, "one event per request made with the token");
    assert!(uses.iter().all(|e| e.actor_name == "zhuguan"));
    assert!(uses
        .iter()
        .all(|e| e.session_ref.as_deref() == Some(&format!("token:{}", &token_id[..8])[..])));

    // The secret is nowhere in the store; its owner sees the token without it.
    let at_rest = match b {
        Backend::Sqlite => sqlite_bytes(&s),
        Backend::Postgres => postgres_text(&s).await.into_bytes(),
    };
    assert!(
        contains(&at_rest, token_id.as_bytes()),
        "the token is stored"
    );
    assert!(!contains(&at_rest, secret.as_bytes()), "its secret is not");
    let r = boss.get("/api/v1/tokens").await;
    let mine: Value = r.json().await.unwrap();
    assert_eq!(mine[0]["id"], json!(token_id));
    assert!(mine[0]["last_used_at"].is_i64());
    assert!(!mine.to_string().contains(&secret));

    // Revoked: refused on the very next request.
    let r = boss.delete(&format!("/api/v1/tokens/{token_id}")).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (status, body) = with_token(&s, &secret, get.clone(), "/api/v1/clients", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "invalid_token");

    // Expired: a one-day token stops a day later.
    assert_eq!(s.step_up(&boss).await.status(), StatusCode::OK);
    let r = boss
        .post(
            "/api/v1/tokens",
            &json!({"name": "short", "permissions": ["client:read"], "expires_in_days": 1}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let short: Value = r.json().await.unwrap();
    let short = short["secret"].as_str().unwrap().to_owned();
    let (status, list) = with_token(&s, &short, get.clone(), "/api/v1/clients", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        3,
        "no list: all the owner reaches"
    );
    s.clock.advance(24 * 60 * 60 * 1000);
    let (status, _) = with_token(&s, &short, get.clone(), "/api/v1/clients", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A made-up secret of the right shape is refused the same way.
    let forged = format!("zft_{}", "A".repeat(43));
    let (status, _) = with_token(&s, &forged, get, "/api/v1/clients", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_within_an_accountants_reach_and_over_its_rate() {
    let config = AppConfig {
        api_tokens: zf_app::identity::TokenPolicy {
            max_days: 90,
            requests_per_minute: 5,
        },
        ..AppConfig::default()
    };
    let s = TestServer::start_with(Backend::Sqlite, config)
        .await
        .unwrap();
    let boss = s.signed_in("zhuguan2", Role::Supervisor).await;
    let clerk = s.signed_in("kuaiji2", Role::Accountant).await;
    let mine = boss.create_client(&client_body(1, &id_number(1))).await;
    let theirs = boss.create_client(&client_body(2, &id_number(2))).await;
    let r = boss
        .put(
            &format!(
                "/api/v1/clients/{}/assignment",
                mine["id"].as_str().unwrap()
            ),
            &json!({"accountant": "kuaiji2"}),
        )
        .await;
    assert!(r.status().is_success(), "assign: {}", r.status());

    // An accountant cannot name a client outside their own reach.
    assert_eq!(s.step_up(&clerk).await.status(), StatusCode::OK);
    let r = clerk
        .post(
            "/api/v1/tokens",
            &json!({"name": "sync", "permissions": ["client:read"],
                    "clients": [theirs["id"]], "expires_in_days": 7}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = clerk
        .post(
            "/api/v1/tokens",
            &json!({"name": "sync", "permissions": ["client:read"], "expires_in_days": 7}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let secret = r.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();

    // Without a list it reaches what its owner reaches: their one client, not the other.
    let (status, list) =
        with_token(&s, &secret, reqwest::Method::GET, "/api/v1/clients", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["id"], mine["id"]);

    // Five requests a minute: the sixth waits.
    for _ in 0..4 {
        let (status, _) =
            with_token(&s, &secret, reqwest::Method::GET, "/api/v1/clients", None).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, body) =
        with_token(&s, &secret, reqwest::Method::GET, "/api/v1/clients", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["code"], "rate_limited");
    s.clock.advance(60 * 1000);
    let (status, _) = with_token(&s, &secret, reqwest::Method::GET, "/api/v1/clients", None).await;
    assert_eq!(status, StatusCode::OK, "a new minute, a new allowance");

    // The security administrator sees and revokes it.
    let security = s.signed_in("anquan2", Role::SecurityAdmin).await;
    let r = security.get("/api/v1/users/kuaiji2/tokens").await;
    let tokens: Value = r.json().await.unwrap();
    let id = tokens[0]["id"].as_str().unwrap().to_owned();
    let r = security
        .delete(&format!("/api/v1/users/kuaiji2/tokens/{id}"))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (status, _) = with_token(&s, &secret, reqwest::Method::GET, "/api/v1/clients", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tokens_page_issues_after_step_up_shows_the_secret_once_and_revokes() {
    let s = TestServer::start(Backend::Sqlite).await.unwrap();
    let boss = s.signed_in("zhuguan3", Role::Supervisor).await;
    let page = |path: &'static str| {
        let boss = &boss;
        async move {
            let r = boss.get(path).await;
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            r.text().await.unwrap()
        }
    };
    let html = page("/tokens").await;
    assert!(
        html.contains("value=\"client:read\""),
        "the owner's permissions are offered"
    );
    assert!(
        !html.contains("value=\"role_assignment:update\""),
        "nothing a token may not carry"
    );
    let post = |csrf: String| {
        let form = [
            ("csrf", csrf),
            ("name", "reporting".into()),
            ("permission", "client:read".into()),
            ("permission", "contact:read".into()),
            ("clients", String::new()),
            ("days", "14".into()),
        ];
        boss.client
            .post(boss.url("/tokens"))
            .header("origin", s.url(""))
            .form(&form)
            .send()
    };

    // A stale second factor: sent to step up, and back to this page after.
    s.clock.advance(10 * 60 * 1000);
    let r = post(common::csrf_of(&html)).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/step-up?next=/tokens");
    assert_eq!(s.step_up(&boss).await.status(), StatusCode::OK);
    // Stepping up renews the session id, and with it the form token.
    let r = post(common::csrf_of(&page("/tokens").await)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    let secret = html
        .split("id=\"token-secret\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the secret is shown")
        .to_owned();
    assert!(secret.starts_with("zft_"));
    let (status, _) = with_token(&s, &secret, reqwest::Method::GET, "/api/v1/clients", None).await;
    assert_eq!(status, StatusCode::OK, "the token shown works");

    // Shown once: the list afterwards names the token but never its secret.
    let html = page("/tokens").await;
    assert!(html.contains("reporting"));
    assert!(html.contains("client:read, contact:read"));
    assert!(!html.contains(&secret));

    let tokens: Value = boss.get("/api/v1/tokens").await.json().await.unwrap();
    let id = tokens[0]["id"].as_str().unwrap();
    let r = boss
        .client
        .post(boss.url(&format!("/tokens/{id}/revoke")))
        .header("origin", s.url(""))
        .form(&[("csrf", common::csrf_of(&html).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (status, _) = with_token(&s, &secret, reqwest::Method::GET, "/api/v1/clients", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
