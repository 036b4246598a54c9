//! Security keys and passkeys over HTTPS, driven by a software authenticator: registration,
//! the second factor at sign-in, step-up, passwordless sign-in, managing keys, and the
//! refusals — wrong origin, wrong RP ID, replayed challenge, another key's signature, a counter
//! going backwards, another user's key, a removed key, no user verification, a locked account.

mod common;

use common::authenticator::SoftKey;
use common::{Backend, Session, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zf_policy::Role;

async fn body(r: reqwest::Response) -> Value {
    r.json().await.expect("json body")
}

fn soft_key(server: &TestServer) -> SoftKey {
    SoftKey::new("localhost", &server.origin)
}

/// Registers `key` on `session` as `kind` named `name`; returns the status and body.
async fn register(
    session: &Session,
    key: &mut SoftKey,
    kind: &str,
    name: &str,
) -> (StatusCode, Value) {
    let r = session
        .post(
            "/api/v1/mfa/security-keys/options",
            &json!({"name": name, "kind": kind}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "registration options");
    let options = body(r).await;
    let credential = key.register(&options);
    let r = session
        .post(
            "/api/v1/mfa/security-keys",
            &json!({ "credential": credential }),
        )
        .await;
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A password sign-in that waits for its second factor.
async fn password_only(server: &TestServer, username: &str) -> Session {
    let session = Session {
        client: server.client(true),
        base: server.base.clone(),
        username: username.to_owned(),
        authenticator: None,
    };
    let r = session
        .post(
            "/api/v1/session",
            &json!({"username": username, "password": "A fresh pass phrase for tests"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["second_factor_required"], true);
    session
}

async fn options(session: &Session, path: &str) -> Value {
    let r = session.post(path, &json!({})).await;
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    body(r).await
}

fn anonymous(server: &TestServer) -> Session {
    Session {
        client: server.client(true),
        base: server.base.clone(),
        username: String::new(),
        authenticator: None,
    }
}

/// Signs in with the passkey alone; returns the status.
async fn passkey_sign_in(server: &TestServer, key: &mut SoftKey) -> (Session, StatusCode) {
    let s = anonymous(server);
    let o = options(&s, "/api/v1/session/passkey/options").await;
    let credential = key.assert(&o);
    let r = s
        .post(
            "/api/v1/session/passkey",
            &json!({ "credential": credential }),
        )
        .await;
    let status = r.status();
    (s, status)
}

fn actions(events: &[zf_audit::StoredEvent], action: &str, outcome: &str) -> usize {
    events
        .iter()
        .filter(|e| e.action == action && e.outcome == outcome)
        .count()
}

async fn a_passkey_registers_finishes_sign_in_steps_up_and_signs_in_alone(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    // An auditor needs no second factor by policy, so the first key needs no step-up.
    let session = server.signed_in("li.si", Role::Auditor).await;
    let mut key = soft_key(&server);
    let (status, view) = register(&session, &mut key, "passkey", "YubiKey 5C").await;
    assert_eq!(status, StatusCode::CREATED, "{view}");
    assert_eq!(view["name"], "YubiKey 5C");
    assert_eq!(view["kind"], "passkey");
    assert_eq!(view["transports"], json!(["usb"]));
    // The registration renewed the session with a fresh factor.
    let me = body(session.get("/api/v1/session").await).await;
    assert_eq!(me["second_factor_fresh"], true, "{me}");
    let list = body(session.get("/api/v1/mfa/security-keys").await).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));

    // A key counts as a second factor: the password alone now waits for it.
    let waiting = password_only(&server, "li.si").await;
    let r = waiting.get("/api/v1/clients").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let refusal = body(r).await;
    assert_eq!(refusal["challenge"]["methods"], json!(["security_key"]));
    assert_eq!(
        refusal["challenge"]["security_key"]["endpoint"],
        "/api/v1/session/second-factor/security-key"
    );
    let o = options(
        &waiting,
        "/api/v1/session/second-factor/security-key/options",
    )
    .await;
    let r = waiting
        .post(
            "/api/v1/session/second-factor/security-key",
            &json!({ "credential": key.assert(&o) }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["second_factor_fresh"], true);

    // Past the step-up window a factor change asks for the key again, and says so.
    server.clock.advance(6 * 60_000);
    let r = waiting
        .post(
            "/api/v1/mfa/security-keys/options",
            &json!({"name": "spare", "kind": "security_key"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let refusal = body(r).await;
    assert_eq!(refusal["error"]["code"], "mfa_required");
    assert_eq!(refusal["challenge"]["kind"], "step_up");
    assert_eq!(refusal["challenge"]["methods"], json!(["security_key"]));
    let o = options(&waiting, "/api/v1/session/step-up/security-key/options").await;
    let r = waiting
        .post(
            "/api/v1/session/step-up/security-key",
            &json!({ "credential": key.assert(&o) }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut spare = soft_key(&server);
    let (status, _) = register(&waiting, &mut spare, "security_key", "spare").await;
    assert_eq!(status, StatusCode::CREATED);

    // Rename, then passwordless sign-in with the passkey.
    let id = view["id"].as_str().expect("id").to_owned();
    let r = waiting
        .patch(
            &format!("/api/v1/mfa/security-keys/{id}"),
            &json!({"name": "office key"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (alone, status) = passkey_sign_in(&server, &mut key).await;
    assert_eq!(status, StatusCode::OK);
    let me = body(alone.get("/api/v1/session").await).await;
    assert_eq!(me["username"], "li.si");
    assert_eq!(me["second_factor_fresh"], true);
    let list = body(alone.get("/api/v1/mfa/security-keys").await).await;
    let keys = list.as_array().expect("list");
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["name"], "office key");
    assert_eq!(keys[0]["sign_count"], 3);
    assert!(keys[0]["last_used_at"].is_i64());

    let events = server.audit().await;
    assert_eq!(actions(&events, "security_key_registered", "success"), 2);
    assert_eq!(actions(&events, "security_key_renamed", "success"), 1);
    assert!(events.iter().any(|e| e.action == "login"
        && e.outcome == "success"
        && e.detail.as_deref().is_some_and(|d| d.contains("passkey"))));
    assert!(events.iter().any(|e| e.action == "step_up"
        && e.outcome == "success"
        && e.detail
            .as_deref()
            .is_some_and(|d| d.contains("security key"))));
}

async fn refused_registrations_change_nothing(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let session = server.signed_in("wang.wu", Role::Auditor).await;
    let begin = || async {
        body(
            session
                .post(
                    "/api/v1/mfa/security-keys/options",
                    &json!({"name": "k", "kind": "security_key"}),
                )
                .await,
        )
        .await
    };
    let mut key = soft_key(&server);
    // Another origin, another RP ID: refused, audited, nothing stored.
    for (origin, rp_id) in [
        ("https://evil.example", "localhost"),
        (server.origin.as_str(), "evil.example"),
    ] {
        let o = begin().await;
        let credential = key.register_as(&o, origin, rp_id);
        let r = session
            .post(
                "/api/v1/mfa/security-keys",
                &json!({ "credential": credential }),
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{origin} {rp_id}"
        );
    }
    // A malformed answer and a bad name are the caller's mistakes.
    let r = session
        .post(
            "/api/v1/mfa/security-keys",
            &json!({ "credential": {"id": 1} }),
        )
        .await;
    assert!(r.status().is_client_error(), "{}", r.status());
    let r = session
        .post(
            "/api/v1/mfa/security-keys/options",
            &json!({"name": " ", "kind": "passkey"}),
        )
        .await;
    assert!(r.status().is_client_error());
    let r = session
        .post(
            "/api/v1/mfa/security-keys/options",
            &json!({"name": "x", "kind": "toaster"}),
        )
        .await;
    assert!(r.status().is_client_error());
    let list = body(session.get("/api/v1/mfa/security-keys").await).await;
    assert_eq!(list, json!([]));

    // A registration answered twice: the challenge was taken by the first answer.
    let o = begin().await;
    let credential = key.register(&o);
    let first = session
        .post(
            "/api/v1/mfa/security-keys",
            &json!({ "credential": credential }),
        )
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let again = session
        .post(
            "/api/v1/mfa/security-keys",
            &json!({ "credential": credential }),
        )
        .await;
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // The same credential id for another user: one key, one account.
    let other = server.signed_in("zhao.liu", Role::Auditor).await;
    let mut copy = key.clone();
    let (status, _) = register(&other, &mut copy, "security_key", "copy").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body(other.get("/api/v1/mfa/security-keys").await).await,
        json!([])
    );
    let events = server.audit().await;
    assert_eq!(actions(&events, "security_key_registered", "failed"), 2);
}

async fn refused_assertions_are_audited_and_count_towards_the_lock(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let a = server.signed_in("chen.qi", Role::Auditor).await;
    let mut key = soft_key(&server);
    assert_eq!(
        register(&a, &mut key, "passkey", "a's key").await.0,
        StatusCode::CREATED
    );
    let b = server.signed_in("sun.ba", Role::Auditor).await;
    let mut b_key = soft_key(&server);
    assert_eq!(
        register(&b, &mut b_key, "security_key", "b's key").await.0,
        StatusCode::CREATED
    );

    let waiting = password_only(&server, "chen.qi").await;
    let second = "/api/v1/session/second-factor/security-key";
    let begin = || {
        options(
            &waiting,
            "/api/v1/session/second-factor/security-key/options",
        )
    };
    let refused = |credential: Value| {
        let waiting = &waiting;
        async move {
            let r = waiting
                .post(second, &json!({ "credential": credential }))
                .await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        }
    };
    // Wrong origin; wrong RP ID; signed by another key.
    let o = begin().await;
    key.counter += 1;
    refused(key.assert_as(&o, "https://evil.example", "localhost")).await;
    let o = begin().await;
    key.counter += 1;
    refused(key.assert_as(&o, &server.origin, "evil.example")).await;
    let o = begin().await;
    let mut forged = key.with_other_key();
    refused(forged.assert(&o)).await;
    // Four refusals lock the account at the fifth; stop at four and prove the right key works.
    let o = begin().await;
    let good = key.assert(&o);
    let r = waiting
        .post(second, &json!({ "credential": good.clone() }))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // The same assertion again: its challenge is gone.
    let again = password_only(&server, "chen.qi").await;
    let r = again.post(second, &json!({ "credential": good })).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Another user's key answering this user's ceremony.
    let waiting = password_only(&server, "chen.qi").await;
    let o = options(
        &waiting,
        "/api/v1/session/second-factor/security-key/options",
    )
    .await;
    let r = waiting
        .post(second, &json!({ "credential": b_key.assert(&o) }))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // A counter that went backwards: refused and reported as a possible clone.
    let waiting = password_only(&server, "chen.qi").await;
    let o = options(
        &waiting,
        "/api/v1/session/second-factor/security-key/options",
    )
    .await;
    let mut clone = key.clone();
    clone.counter = 1;
    let r = waiting
        .post(
            second,
            &json!({ "credential": clone.assert_as(&o, &server.origin, "localhost") }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let events = server.audit().await;
    assert_eq!(
        actions(&events, "security_key_clone_suspected", "denied"),
        1
    );
    assert!(
        actions(&events, "login", "failed") >= 5,
        "each refusal is a failed sign-in"
    );

    // A passkey assertion without user verification does not sign in alone.
    let mut no_uv = key.clone();
    no_uv.verify_user = false;
    let (_, status) = passkey_sign_in(&server, &mut no_uv).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A removed key no longer signs in.
    let waiting = password_only(&server, "chen.qi").await;
    let o = options(
        &waiting,
        "/api/v1/session/second-factor/security-key/options",
    )
    .await;
    key.counter = no_uv.counter;
    let r = waiting
        .post(second, &json!({ "credential": key.assert(&o) }))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let list = body(waiting.get("/api/v1/mfa/security-keys").await).await;
    let id = list[0]["id"].as_str().expect("id").to_owned();
    let r = waiting
        .delete(&format!("/api/v1/mfa/security-keys/{id}"))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (_, status) = passkey_sign_in(&server, &mut key).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let events = server.audit().await;
    let details: Vec<&str> = events
        .iter()
        .filter(|e| e.action == "login" && e.outcome == "failed")
        .filter_map(|e| e.detail.as_deref())
        .collect();
    assert!(
        details.iter().any(|d| d.contains("user was not verified")),
        "{details:?}"
    );
    assert!(
        details.iter().any(|d| d.contains("unknown or removed key")),
        "{details:?}"
    );
}

async fn a_locked_account_cannot_sign_in_with_its_passkey(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let a = server.signed_in("zhou.jiu", Role::Auditor).await;
    let mut key = soft_key(&server);
    assert_eq!(
        register(&a, &mut key, "passkey", "phone").await.0,
        StatusCode::CREATED
    );
    assert_eq!(passkey_sign_in(&server, &mut key).await.1, StatusCode::OK);
    let s = anonymous(&server);
    for _ in 0..5 {
        let r = s
            .post(
                "/api/v1/session",
                &json!({"username": "zhou.jiu", "password": "wrong wrong wrong"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        passkey_sign_in(&server, &mut key).await.1,
        StatusCode::UNAUTHORIZED
    );

    // The security administrator sees the user's keys and removes a lost one, with a reason.
    let admin = server.signed_in("admin.sec", Role::SecurityAdmin).await;
    let list = body(admin.get("/api/v1/users/zhou.jiu/security-keys").await).await;
    let id = list[0]["id"].as_str().expect("id").to_owned();
    let r = admin
        .delete(&format!("/api/v1/users/zhou.jiu/security-keys/{id}"))
        .await;
    assert!(r.status().is_client_error(), "a reason is required");
    let r = admin
        .delete(&format!(
            "/api/v1/users/zhou.jiu/security-keys/{id}?reason=reported%20lost"
        ))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        body(admin.get("/api/v1/users/zhou.jiu/security-keys").await).await,
        json!([])
    );
    // The user's sessions ended with the key: one may have been opened with it.
    let r = a.get("/api/v1/session").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Another role may not.
    let other = server.signed_in("qian.ba", Role::Auditor).await;
    let r = other.get("/api/v1/users/zhou.jiu/security-keys").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let events = server.audit().await;
    assert!(events.iter().any(|e| e.action == "security_key_removed"
        && e.detail
            .as_deref()
            .is_some_and(|d| d.contains("reported lost"))));
}

on_both_stores!(
    a_passkey_registers_finishes_sign_in_steps_up_and_signs_in_alone,
    refused_registrations_change_nothing,
    refused_assertions_are_audited_and_count_towards_the_lock,
    a_locked_account_cannot_sign_in_with_its_passkey,
    anonymous_passkey_sign_ins_are_limited_per_address,
);

/// Beginning a passkey sign-in needs no account and writes a ceremony row, so one address may
/// begin only so many a minute; the next minute it may again.
async fn anonymous_passkey_sign_ins_are_limited_per_address(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let visitor = anonymous(&s);
    for _ in 0..30 {
        options(&visitor, "/api/v1/session/passkey/options").await;
    }
    let r = visitor
        .post("/api/v1/session/passkey/options", &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let e = body(r).await;
    assert_eq!(e["error"]["code"], "rate_limited", "{e}");
    s.clock.advance(60_000);
    options(&visitor, "/api/v1/session/passkey/options").await;
}
