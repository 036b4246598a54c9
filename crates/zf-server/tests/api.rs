//! The API against the real server over TLS, on both stores.

mod common;

use common::{client_body, id_number, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zf_policy::Role;

on_both_stores!(
    login_sets_a_host_cookie_and_logout_ends_the_session_on_the_server,
    administrator_is_refused_client_data_accountant_reads_it_and_both_are_audited,
    a_one_time_password_allows_nothing_but_changing_it,
    every_write_commits_with_its_audit_event,
    bad_input_gets_a_clear_4xx_and_changes_nothing,
    accountants_see_only_their_own_clients_and_others_answer_404,
    exact_search_on_the_encrypted_id_number,
    update_with_versions_and_delete_by_supervisor,
    updates_without_a_version_at_once_all_apply,
    a_listing_counts_on_its_first_page_and_carries_the_total,
    cross_site_writes_are_refused,
    security_headers_on_every_response,
);

async fn start(backend: Backend) -> Option<TestServer> {
    TestServer::start(backend).await
}

async fn error_code(r: reqwest::Response) -> (StatusCode, String, String) {
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

async fn login_sets_a_host_cookie_and_logout_ends_the_session_on_the_server(b: Backend) {
    let Some(s) = start(b).await else { return };
    let acc = s.signed_in("wangwu", Role::Accountant).await;
    // Sign in again without a cookie jar to see the raw cookie.
    let raw = s.client(false);
    let r = raw
        .post(s.url("/api/v1/session"))
        .json(&json!({"username": "wangwu", "password": "A fresh pass phrase for tests"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-zf_session="), "{cookie}");
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} missing in {cookie}");
    }
    assert!(!cookie.contains("Domain"));
    let token = cookie.split(';').next().unwrap().to_owned();
    let who = |c: String| {
        let raw = raw.clone();
        let url = s.url("/api/v1/session");
        async move {
            raw.get(url)
                .header("cookie", c)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(who(token.clone()).await, StatusCode::OK);
    let r = raw
        .delete(s.url("/api/v1/session"))
        .header("cookie", token.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // The same cookie, replayed after logout, is worthless.
    assert_eq!(who(token).await, StatusCode::UNAUTHORIZED);
    // The first session is unaffected.
    assert_eq!(acc.get("/api/v1/session").await.status(), StatusCode::OK);
    // A wrong password and an unknown user get the same answer.
    for (user, pw) in [
        ("wangwu", "wrong password here"),
        ("nobody", "wrong password here"),
    ] {
        let r = raw
            .post(s.url("/api/v1/session"))
            .json(&json!({"username": user, "password": pw}))
            .send()
            .await
            .unwrap();
        let (status, code, message) = error_code(r).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "login_failed")
        );
        assert!(message.contains("username or password"));
    }
    let failed = s
        .audit()
        .await
        .into_iter()
        .filter(|e| e.action == "login" && e.outcome == "failed")
        .count();
    assert_eq!(failed, 2);
}

async fn administrator_is_refused_client_data_accountant_reads_it_and_both_are_audited(b: Backend) {
    let Some(s) = start(b).await else { return };
    let admin = s.signed_in("sysadmin", Role::SystemAdmin).await;
    let acc = s.signed_in("kuaiji", Role::Accountant).await;
    let known = id_number(7);
    let created = acc.create_client(&client_body(1, &known)).await;
    let id = created["id"].as_str().unwrap().to_owned();

    let r = admin.get(&format!("/api/v1/clients/{id}")).await;
    let (status, code, _) = error_code(r).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    assert_eq!(
        admin.get("/api/v1/clients").await.status(),
        StatusCode::FORBIDDEN
    );

    let r = acc.get(&format!("/api/v1/clients/{id}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["legal_rep_id_number"]["visibility"], "visible");
    assert_eq!(body["legal_rep_id_number"]["value"], known.as_str());

    let events = s.audit().await;
    let denied = events
        .iter()
        .find(|e| e.action == "access_denied" && e.actor_name == "sysadmin")
        .expect("the administrator's refusal is audited");
    assert_eq!(denied.outcome, "denied");
    assert!(denied
        .detail
        .as_deref()
        .unwrap_or("")
        .contains("client_read"));
    let read = events
        .iter()
        .find(|e| e.action == "client_sensitive_read" && e.actor_name == "kuaiji")
        .expect("the accountant's sensitive read is audited");
    assert_eq!(read.record_id.as_deref(), Some(id.as_str()));
    assert_eq!(read.fields, r#"["legal_rep_id_number","notes"]"#);
    // Field names only: the value never enters the audit log.
    assert!(events.iter().all(|e| !format!("{e:?}").contains(&known)));
}

async fn a_one_time_password_allows_nothing_but_changing_it(b: Backend) {
    let Some(s) = start(b).await else { return };
    s.app
        .add_user(
            zf_domain::Username::parse("newbie").unwrap(),
            Role::Supervisor,
            Some(secrecy::SecretString::from("temporary password 1")),
            zf_audit::Actor::cli("test"),
        )
        .await
        .unwrap();
    let c = s.client(true);
    let r = c
        .post(s.url("/api/v1/session"))
        .json(&json!({"username": "newbie", "password": "temporary password 1"}))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["must_change_password"], true);
    let r = c.get(s.url("/api/v1/clients")).send().await.unwrap();
    let (status, code, _) = error_code(r).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "password_change_required")
    );
    // A password that breaks the policy is refused with the rule it broke.
    let r = c
        .put(s.url("/api/v1/session/password"))
        .json(&json!({"current_password": "temporary password 1", "new_password": "short"}))
        .send()
        .await
        .unwrap();
    let (status, code, message) = error_code(r).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "password_policy")
    );
    assert!(message.contains("at least 12"));
    let r = c
        .put(s.url("/api/v1/session/password"))
        .json(&json!({"current_password": "temporary password 1", "new_password": "my own long passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // A supervisor may reveal data, so the next step is an authenticator, and nothing else.
    let r = c.get(s.url("/api/v1/clients")).send().await.unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "mfa_enrolment_required", "{body}");
    assert_eq!(body["challenge"]["kind"], "enrol");
    assert_eq!(body["challenge"]["endpoint"], "/api/v1/mfa/totp");
    let mut session = common::Session {
        client: c,
        base: s.base.clone(),
        username: "newbie".into(),
        authenticator: None,
    };
    s.enrol(&mut session).await;
    assert_eq!(
        session.get("/api/v1/clients").await.status(),
        StatusCode::OK
    );
}

async fn every_write_commits_with_its_audit_event(b: Backend) {
    let Some(s) = start(b).await else { return };
    let sup = s.signed_in("zhuguan", Role::Supervisor).await;
    let second = s.signed_in("fuzeren", Role::Supervisor).await;
    let before = s.audit().await.len();
    let c = sup.create_client(&client_body(2, &id_number(2))).await;
    let id = c["id"].as_str().unwrap();
    let r = sup
        .patch(
            &format!("/api/v1/clients/{id}"),
            &json!({"name": "北京新名字有限公司"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    sup.erase_client(&second, id).await;
    let events = s.audit().await;
    let actions: Vec<&str> = events[before..].iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "client_created",
            "client_updated",
            "erasure_requested",
            "client_deleted"
        ]
    );
    let updated = &events[before + 1];
    assert_eq!(updated.fields, r#"["name"]"#);
    assert_eq!(updated.record_id.as_deref(), Some(id));
    assert!(updated.request_id.is_some());
    // The deleted client is gone with its key: no read path can reach it.
    assert_eq!(
        sup.get(&format!("/api/v1/clients/{id}")).await.status(),
        StatusCode::NOT_FOUND
    );
}

async fn bad_input_gets_a_clear_4xx_and_changes_nothing(b: Backend) {
    let Some(s) = start(b).await else { return };
    let acc = s.signed_in("zhaoliu", Role::Accountant).await;
    let existing = acc.create_client(&client_body(3, &id_number(3))).await;
    let id = existing["id"].as_str().unwrap().to_owned();
    let good = client_body(4, &id_number(4));
    let with = |key: &str, value: Value| {
        let mut v = good.clone();
        v[key] = value;
        v
    };
    let mut bad_uscc = good["uscc"].as_str().unwrap().to_owned();
    let last = if bad_uscc.ends_with('0') { "1" } else { "0" };
    bad_uscc.replace_range(17.., last);
    let mut bad_id = id_number(4);
    let last = if bad_id.ends_with('0') { "1" } else { "0" };
    bad_id.replace_range(17.., last);

    let clients_before = s.client_count().await;
    let audit_before = s.audit().await.len();
    let raw = |body: &'static str, ct: &'static str| {
        acc.client
            .post(acc.url("/api/v1/clients"))
            .header("content-type", ct)
            .body(body)
            .send()
    };
    // The oversized body is only just over the 64 KiB limit, so the client has finished sending
    // it when the server answers 413 and closes; far larger bodies race the close.
    let cases: Vec<(&str, reqwest::Response, StatusCode, &str)> = vec![
        (
            "malformed JSON",
            raw("{\"name\": ", "application/json").await.unwrap(),
            StatusCode::BAD_REQUEST,
            "well-formed",
        ),
        (
            "not JSON content type",
            raw("name=x", "application/x-www-form-urlencoded")
                .await
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "application/json",
        ),
        (
            "wrong type",
            acc.post("/api/v1/clients", &with("name", json!(42))).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        (
            "invalid USCC",
            acc.post("/api/v1/clients", &with("uscc", json!(bad_uscc)))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "check character",
        ),
        (
            "invalid ID number",
            acc.post(
                "/api/v1/clients",
                &with("legal_rep_id_number", json!(bad_id)),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "check",
        ),
        (
            "unknown taxpayer type",
            acc.post("/api/v1/clients", &with("taxpayer_type", json!("huge")))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "taxpayer type",
        ),
        (
            "unknown field",
            acc.post("/api/v1/clients", &with("is_admin", json!(true)))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field",
        ),
        (
            "missing field",
            acc.post("/api/v1/clients", &json!({"name": "只有名字有限公司"}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing field",
        ),
        (
            "oversized body",
            acc.post("/api/v1/clients", &with("name", json!("很".repeat(22_000))))
                .await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger",
        ),
        (
            "duplicate USCC",
            acc.post("/api/v1/clients", &with("uscc", existing["uscc"].clone()))
                .await,
            StatusCode::CONFLICT,
            "already exists",
        ),
        (
            "malformed id in path",
            acc.get("/api/v1/clients/not-a-uuid").await,
            StatusCode::BAD_REQUEST,
            "UUID",
        ),
        (
            "unknown query parameter",
            acc.get("/api/v1/clients?limit=5&drop=1").await,
            StatusCode::BAD_REQUEST,
            "unknown field",
        ),
        (
            "empty update",
            acc.patch(&format!("/api/v1/clients/{id}"), &json!({}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "no field",
        ),
        (
            "invalid update",
            acc.patch(&format!("/api/v1/clients/{id}"), &json!({"uscc": "123"}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "18",
        ),
        (
            "bad If-Match",
            acc.client
                .patch(acc.url(&format!("/api/v1/clients/{id}")))
                .header("if-match", "abc")
                .json(&json!({"name": "某某有限公司"}))
                .send()
                .await
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "If-Match",
        ),
        (
            "missing session",
            s.client(false)
                .get(s.url("/api/v1/clients"))
                .send()
                .await
                .unwrap(),
            StatusCode::UNAUTHORIZED,
            "sign in",
        ),
        (
            "forged session",
            s.client(false)
                .get(s.url("/api/v1/clients"))
                .header("cookie", "__Host-zf_session=AAAAAAAAAAAAAAAAAAAAAA")
                .send()
                .await
                .unwrap(),
            StatusCode::UNAUTHORIZED,
            "sign in",
        ),
        (
            "wrong role",
            acc.delete(&format!("/api/v1/clients/{id}")).await,
            StatusCode::FORBIDDEN,
            "may not",
        ),
        (
            "bad login body",
            s.client(false)
                .post(s.url("/api/v1/session"))
                .json(&json!({"user": "x"}))
                .send()
                .await
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field",
        ),
    ];
    for (what, r, expected, needle) in cases {
        let (status, code, message) = error_code(r).await;
        assert_eq!(status, expected, "{what}: {code} {message}");
        assert!(!code.is_empty(), "{what}: error code present");
        assert!(
            message.to_lowercase().contains(&needle.to_lowercase()),
            "{what}: message {message:?} should mention {needle:?}"
        );
    }
    assert_eq!(
        s.client_count().await,
        clients_before,
        "no client was written"
    );
    let after: Vec<_> = s.audit().await.into_iter().skip(audit_before).collect();
    assert!(
        after
            .iter()
            .all(|e| e.outcome != "success" || e.action == "login"),
        "only refusals were audited: {after:?}"
    );
    let unchanged = acc
        .get(&format!("/api/v1/clients/{id}"))
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(unchanged["version"], 1);
    assert_eq!(unchanged["uscc"], existing["uscc"]);
}

async fn accountants_see_only_their_own_clients_and_others_answer_404(b: Backend) {
    let Some(s) = start(b).await else { return };
    let a = s.signed_in("kuaiji-a", Role::Accountant).await;
    let other = s.signed_in("kuaiji-b", Role::Accountant).await;
    let sup = s.signed_in("zhuguan-c", Role::Supervisor).await;
    let mine = a.create_client(&client_body(5, &id_number(5))).await;
    let id = mine["id"].as_str().unwrap();
    assert_eq!(
        other.get(&format!("/api/v1/clients/{id}")).await.status(),
        StatusCode::NOT_FOUND
    );
    let r = other
        .patch(
            &format!("/api/v1/clients/{id}"),
            &json!({"name": "改名有限公司"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let page: Value = other.get("/api/v1/clients").await.json().await.unwrap();
    assert_eq!(page["total"], 0);
    let page: Value = a.get("/api/v1/clients").await.json().await.unwrap();
    assert_eq!(page["total"], 1);
    // Lists mask the ID number even for a role that may see it in full.
    let masked = page["items"][0]["legal_rep_id_number"].clone();
    assert_eq!(masked["visibility"], "masked");
    let value = masked["value"].as_str().unwrap();
    assert_eq!(value.len(), 18);
    assert_eq!(&value[3..14], "***********");
    let page: Value = sup.get("/api/v1/clients").await.json().await.unwrap();
    assert_eq!(page["total"], 1, "supervisors reach every client");
}

async fn exact_search_on_the_encrypted_id_number(b: Backend) {
    let Some(s) = start(b).await else { return };
    let acc = s.signed_in("chazhao", Role::Accountant).await;
    let shared = id_number(11);
    acc.create_client(&client_body(11, &shared)).await;
    acc.create_client(&client_body(12, &shared)).await;
    acc.create_client(&client_body(13, &id_number(13))).await;
    let r = acc
        .post(
            "/api/v1/clients/search",
            &json!({"legal_rep_id_number": shared}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let found: Vec<Value> = r.json().await.unwrap();
    assert_eq!(found.len(), 2);
    let r = acc
        .post(
            "/api/v1/clients/search",
            &json!({"legal_rep_id_number": id_number(99)}),
        )
        .await;
    assert_eq!(r.json::<Vec<Value>>().await.unwrap().len(), 0);
    assert!(s
        .audit()
        .await
        .iter()
        .any(|e| e.action == "client_searched"));
}

async fn update_with_versions_and_delete_by_supervisor(b: Backend) {
    let Some(s) = start(b).await else { return };
    let sup = s.signed_in("zhuguan-d", Role::Supervisor).await;
    let c = sup.create_client(&client_body(21, &id_number(21))).await;
    let id = c["id"].as_str().unwrap();
    let path = format!("/api/v1/clients/{id}");
    let new_id = id_number(22);
    let r = sup
        .client
        .patch(sup.url(&path))
        .header("if-match", "\"1\"")
        .json(&json!({"legal_rep_id_number": new_id, "taxpayer_type": "small_scale"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = sup
        .client
        .patch(sup.url(&path))
        .header("if-match", "\"1\"")
        .json(&json!({"name": "过期版本有限公司"}))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_code(r).await;
    assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "conflict"));
    let now: Value = sup.get(&path).await.json().await.unwrap();
    assert_eq!(now["version"], 2);
    assert_eq!(now["taxpayer_type"], "small_scale");
    assert_eq!(now["legal_rep_id_number"]["value"], new_id.as_str());
    let second = s.signed_in("fuzeren-d", Role::Supervisor).await;
    sup.erase_client(&second, id).await;
    assert_eq!(
        sup.delete_with(&path, &json!({"reason": "再次申请删除"}))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

async fn cross_site_writes_are_refused(b: Backend) {
    let Some(s) = start(b).await else { return };
    let acc = s.signed_in("kuazhan", Role::Accountant).await;
    let r = acc
        .client
        .post(acc.url("/api/v1/clients"))
        .header("origin", "https://evil.example")
        .json(&client_body(31, &id_number(31)))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_code(r).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "cross_site")
    );
    let r = acc
        .client
        .post(acc.url("/api/v1/clients"))
        .header("sec-fetch-site", "cross-site")
        .json(&client_body(32, &id_number(32)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A form post without the session's token is refused too.
    let r = acc
        .client
        .post(acc.url("/clients"))
        .form(&[
            ("csrf", "forged"),
            ("name", "伪造有限公司"),
            ("uscc", "x"),
            ("taxpayer_type", "general"),
            ("legal_rep_name", "x"),
            ("legal_rep_id_number", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(s.client_count().await, 0);
}

async fn security_headers_on_every_response(b: Backend) {
    let Some(s) = start(b).await else { return };
    let c = s.client(false);
    for path in [
        "/login",
        "/api/v1/clients",
        "/api/v1/openapi.json",
        "/no/such/page",
    ] {
        let r = c.get(s.url(path)).send().await.unwrap();
        let h = r.headers();
        assert!(
            h["strict-transport-security"]
                .to_str()
                .unwrap()
                .contains("max-age="),
            "{path}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        for directive in [
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "default-src 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {directive}");
        }
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert!(h.contains_key("x-request-id"));
    }
}

/// Without If-Match a caller asks for no version check, so two people saving different fields
/// of one client at the same moment both succeed: the server applies each change to the record
/// as it then is. With a stale If-Match the conflict is still the caller's to resolve (above).
async fn updates_without_a_version_at_once_all_apply(b: Backend) {
    let Some(s) = start(b).await else { return };
    let sup = std::sync::Arc::new(s.signed_in("zhuguan-v", Role::Supervisor).await);
    let c = sup.create_client(&client_body(31, &id_number(31))).await;
    let path = format!("/api/v1/clients/{}", c["id"].as_str().unwrap());
    let mut saves = tokio::task::JoinSet::new();
    for n in 0..8 {
        let (sup, path) = (sup.clone(), path.clone());
        saves.spawn(async move {
            let body = if n % 2 == 0 {
                json!({ "notes": format!("第{n}次备注") })
            } else {
                json!({ "tags": [format!("标签{n}")] })
            };
            sup.patch(&path, &body).await.status()
        });
    }
    while let Some(status) = saves.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }
    let now: Value = sup.get(&path).await.json().await.unwrap();
    assert_eq!(now["version"], 9, "every save applied once: {now}");
    let updates = s
        .audit()
        .await
        .into_iter()
        .filter(|e| e.action == "client_updated")
        .count();
    assert_eq!(updates, 8, "one event per save");
}

/// A listing's total is counted on its first page and carried by the cursor, so paging on does
/// not count the whole firm again; a new first page counts afresh, and a cursor that was not
/// handed out is refused without a page.
async fn a_listing_counts_on_its_first_page_and_carries_the_total(b: Backend) {
    let Some(s) = start(b).await else { return };
    let sup = s.signed_in("zhuguan-p", Role::Supervisor).await;
    for n in 41..46 {
        sup.create_client(&client_body(n, &id_number(n))).await;
    }
    let first: Value = sup
        .get("/api/v1/clients?limit=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["total"], 5);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    sup.create_client(&client_body(46, &id_number(46))).await;
    let second: Value = sup
        .get(&format!("/api/v1/clients?limit=2&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["total"], 5, "the total as the listing began");
    assert_eq!(second["items"].as_array().unwrap().len(), 2);
    let again: Value = sup
        .get("/api/v1/clients?limit=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["total"], 6, "a new listing counts again");
    let r = sup
        .get("/api/v1/clients?limit=2&cursor=bm90LWEtY3Vyc29y")
        .await;
    let (status, code, _) = error_code(r).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
    );
}
