//! The second factor end to end: an authenticator set up and confirmed, its secret never in the
//! database in the clear, sign-in completed by a code that works once and within its window,
//! recovery codes that work once, wrong codes that lock the account, critical operations that
//! ask for the factor again after a few minutes (an export among them), and sessions listed,
//! ended and limited; recovery codes replaced by a new set.

mod common;

use common::{client_body, id_number, Authenticator, Backend, Session, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zf_app::AppConfig;
use zf_crypto::TotpParams;
use zf_policy::Role;

on_both_stores!(
    an_authenticator_is_confirmed_and_then_completes_each_sign_in_once,
    a_critical_operation_asks_for_a_fresh_factor_again_after_the_window,
    sessions_are_listed_ended_by_their_user_or_the_security_admin_and_limited,
    an_operator_reset_removes_the_authenticator_and_ends_the_sessions,
    an_export_without_a_fresh_factor_is_refused_then_succeeds_after_step_up_both_audited,
    a_new_set_of_recovery_codes_needs_a_fresh_factor_and_voids_the_old_set,
);

const PASSWORD: &str = "A fresh pass phrase for tests";

async fn body(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn count(events: &[zf_audit::StoredEvent], action: &str, outcome: &str) -> usize {
    events
        .iter()
        .filter(|e| e.action == action && e.outcome == outcome)
        .count()
}

/// The step the server's clock is in now.
fn step_now(s: &TestServer) -> i64 {
    TotpParams::STANDARD.step_at(zf_app::Clock::now_ms(s.clock.as_ref()))
}

async fn password_only(s: &TestServer, username: &str) -> Session {
    let session = Session {
        client: s.client(true),
        base: s.base.clone(),
        username: username.into(),
        authenticator: None,
    };
    let (status, info) = body(
        session
            .post(
                "/api/v1/session",
                &json!({"username": username, "password": PASSWORD}),
            )
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["second_factor_required"], true, "{info}");
    session
}

async fn an_authenticator_is_confirmed_and_then_completes_each_sign_in_once(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    // An auditor needs no authenticator by default, and may set one up.
    let mut user = s.signed_in("shenji", Role::Auditor).await;
    let status: Value = user.get("/api/v1/mfa").await.json().await.unwrap();
    assert_eq!(
        (status["enrolled"].clone(), status["required"].clone()),
        (json!(false), json!(false))
    );
    let r = user.post("/api/v1/mfa/totp", &json!({})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let setup: Value = r.json().await.unwrap();
    let uri = setup["otpauth_uri"].as_str().unwrap();
    let base32 = setup["secret"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Zhangfang:shenji?secret="),
        "{uri}"
    );
    assert!(uri.contains(base32) && uri.contains("digits=6&period=30"));
    let secret = zf_crypto::TotpSecret::from_base32(base32).unwrap();
    let raw = secret.expose().to_vec();

    // A wrong first code does not activate it, and is recorded.
    let wrong = format!(
        "{:06}",
        (secret
            .code(step_now(&s), TotpParams::STANDARD)
            .parse::<u32>()
            .unwrap()
            + 1)
            % 1_000_000
    );
    let (status, e) = body(
        user.post("/api/v1/mfa/totp/confirm", &json!({"code": wrong}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(count(&s.audit().await, "mfa_enabled", "failed"), 1);

    // The right one does, hands out ten recovery codes once, and renews the session id.
    let before = user
        .get("/api/v1/sessions")
        .await
        .json::<Value>()
        .await
        .unwrap()[0]["id"]
        .clone();
    let authenticator = std::sync::Arc::new(Authenticator::new(secret));
    let code = s.totp_code(&authenticator);
    let (status, confirmed) = body(
        user.post("/api/v1/mfa/totp/confirm", &json!({ "code": code }))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    let recovery: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);
    user.authenticator = Some(authenticator.clone());
    let sessions: Value = user.get("/api/v1/sessions").await.json().await.unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    assert_ne!(
        sessions[0]["id"], before,
        "a new session id after the factor"
    );
    let status: Value = user.get("/api/v1/mfa").await.json().await.unwrap();
    assert_eq!(status["enrolled"], true);
    assert_eq!(status["recovery_codes_left"], 10);
    assert_eq!(
        user.post("/api/v1/mfa/totp", &json!({})).await.status(),
        StatusCode::CONFLICT,
        "a confirmed authenticator is not replaced by starting again"
    );

    // The secret and the recovery codes are nowhere in the database in the clear.
    let id = s
        .app
        .store()
        .user_by_username(&zf_domain::Username::parse("shenji").unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    let m = s.app.store().mfa_get(id).await.unwrap().unwrap();
    let sealed = m.totp_secret.as_bytes();
    assert!(!sealed.windows(raw.len()).any(|w| w == raw.as_slice()));
    if b == Backend::Sqlite {
        let dir = s.data_dir();
        for file in ["zhangfang.db", "zhangfang.db-wal"] {
            let bytes = std::fs::read(dir.join(file)).unwrap_or_default();
            assert!(
                !bytes.windows(raw.len()).any(|w| w == raw.as_slice()),
                "raw secret in {file}"
            );
            assert!(
                !bytes.windows(base32.len()).any(|w| w == base32.as_bytes()),
                "base32 secret in {file}"
            );
            for c in &recovery {
                let plain = c.replace('-', "");
                assert!(
                    !bytes.windows(plain.len()).any(|w| w == plain.as_bytes()),
                    "recovery code in {file}"
                );
            }
        }
    }

    // Signing in now takes the password, then the second factor; meanwhile nothing else.
    let waiting = password_only(&s, "shenji").await;
    let (status, e) = body(waiting.get("/api/v1/clients").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(e["error"]["code"], "second_factor_required");
    assert_eq!(e["challenge"]["endpoint"], "/api/v1/session/second-factor");
    let who: Value = waiting.get("/api/v1/session").await.json().await.unwrap();
    assert_eq!(who["second_factor_required"], true);
    assert_eq!(
        waiting
            .client
            .put(waiting.url("/api/v1/session/password"))
            .json(&json!({"current_password": PASSWORD, "new_password": "a different pass phrase"}))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED,
        "no password change on the password alone"
    );

    // A code already used is refused (replay), and so is one outside the window.
    let used = authenticator
        .secret
        .code(step_now(&s), TotpParams::STANDARD)
        .to_string();
    let code = s.totp_code(&authenticator);
    let (status, e) = body(
        waiting
            .post("/api/v1/session/second-factor", &json!({"code": code}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{e}");
    // In the next step, the code just used is still in the window, and still refused.
    s.clock.advance(30_000);
    let second = password_only(&s, "shenji").await;
    for (what, code) in [
        ("the same code again", code.clone()),
        ("an earlier step's code", used),
        (
            "two steps ahead",
            authenticator
                .secret
                .code(step_now(&s) + 2, TotpParams::STANDARD)
                .to_string(),
        ),
        (
            "two steps behind",
            authenticator
                .secret
                .code(step_now(&s) - 2, TotpParams::STANDARD)
                .to_string(),
        ),
    ] {
        let (status, e) = body(
            second
                .post("/api/v1/session/second-factor", &json!({ "code": code }))
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {e}");
        assert_eq!(e["error"]["code"], "second_factor_failed", "{what}");
    }
    // One step either side is accepted (clock drift); the next step's code works.
    let ahead = authenticator
        .secret
        .code(step_now(&s) + 1, TotpParams::STANDARD)
        .to_string();
    let (status, info) = body(
        second
            .post("/api/v1/session/second-factor", &json!({ "code": ahead }))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["second_factor_fresh"], true);
    // The next sign-in's code must be later than that step: move the clock on.
    s.clock.advance(60_000);

    // A recovery code works once, typed any way.
    let third = password_only(&s, "shenji").await;
    let typed = recovery[0].to_uppercase().replace('-', " ");
    let (status, _) = body(
        third
            .post("/api/v1/session/second-factor", &json!({ "code": typed }))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let fourth = password_only(&s, "shenji").await;
    let (status, _) = body(
        fourth
            .post(
                "/api/v1/session/second-factor",
                &json!({ "code": recovery[0] }),
            )
            .await,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a recovery code works once"
    );
    let status: Value = third.get("/api/v1/mfa").await.json().await.unwrap();
    assert_eq!(status["recovery_codes_left"], 9);

    // Wrong codes count towards the account's lock like wrong passwords: after five, even the
    // right code is refused, and the waiting sign-in ends.
    for _ in 0..4 {
        fourth
            .post("/api/v1/session/second-factor", &json!({"code": "000000"}))
            .await;
    }
    let code = s.totp_code(&authenticator);
    let (status, _) = body(
        fourth
            .post("/api/v1/session/second-factor", &json!({ "code": code }))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let events = s.audit().await;
    let failures: Vec<_> = events
        .iter()
        .filter(|e| e.action == "login" && e.outcome == "failed")
        .filter_map(|e| e.detail.clone())
        .collect();
    assert!(
        failures
            .iter()
            .filter(|d| d.as_str() == "wrong or reused second factor")
            .count()
            >= 5,
        "{failures:?}"
    );
    assert_eq!(count(&events, "login_second_factor_pending", "success"), 4);
    let r = s
        .client(false)
        .post(s.url("/api/v1/session"))
        .json(&json!({"username": "shenji", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "locked");
    assert!(s.app.audit_verify(&[]).await.unwrap().is_intact());
}

async fn a_critical_operation_asks_for_a_fresh_factor_again_after_the_window(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let sup = s.signed_in("zhuguan", Role::Supervisor).await;
    let sales = s.signed_in("xiaoshou", Role::Sales).await;
    let c = sup.create_client(&client_body(960, &id_number(960))).await;
    let id = c["id"].as_str().unwrap();
    let reveal = |who: &Session| {
        let r = who
            .client
            .post(who.url(&format!("/api/v1/clients/{id}/reveal")))
            .json(&json!({"field": "legal_rep_id_number", "reason": "核对工商登记信息"}));
        async move { r.send().await.unwrap() }
    };
    // Just signed in with the second factor: the critical operation goes through.
    assert_eq!(reveal(&sales).await.status(), StatusCode::OK);

    // Five minutes later it asks again, with a challenge the client can satisfy; the refusal
    // is audited. Reading (not critical) still works.
    s.clock.advance(5 * 60_000 + 1_000);
    let (status, e) = body(reveal(&sales).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(e["error"]["code"], "mfa_required", "{e}");
    assert_eq!(
        e["challenge"],
        json!({"kind": "step_up", "endpoint": "/api/v1/session/step-up",
               "methods": ["totp", "recovery_code"], "max_age_seconds": 300})
    );
    assert_eq!(
        sales.get(&format!("/api/v1/clients/{id}")).await.status(),
        StatusCode::OK
    );
    let denied = s
        .audit()
        .await
        .into_iter()
        .rfind(|e| e.action == "access_denied" && e.actor_name == "xiaoshou")
        .expect("the refusal is audited");
    assert!(denied.detail.unwrap().contains("critical"));

    // A wrong code is refused and audited; the right one renews the session, audited too.
    let (status, _) = body(
        sales
            .post("/api/v1/session/step-up", &json!({"code": "000000"}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let old_cookie = sales
        .get("/api/v1/sessions")
        .await
        .json::<Value>()
        .await
        .unwrap()[0]["id"]
        .clone();
    let (status, info) = body(s.step_up(&sales).await).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["second_factor_fresh"], true);
    let events = s.audit().await;
    assert_eq!(count(&events, "step_up", "failed"), 1);
    assert_eq!(count(&events, "step_up", "success"), 1);
    let now_id = sales
        .get("/api/v1/sessions")
        .await
        .json::<Value>()
        .await
        .unwrap()[0]["id"]
        .clone();
    assert_ne!(now_id, old_cookie, "the session id changes with the factor");

    // The retry succeeds; after another window it is asked again.
    assert_eq!(reveal(&sales).await.status(), StatusCode::OK);
    s.clock.advance(5 * 60_000 + 1_000);
    assert_eq!(reveal(&sales).await.status(), StatusCode::FORBIDDEN);

    // The web form: the browser is sent to the step-up page and back to the client's page.
    let page = sales
        .get(&format!("/clients/{id}"))
        .await
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let r = sales
        .client
        .post(sales.url(&format!("/clients/{id}/reveal")))
        .form(&[("csrf", csrf.as_str()), ("reason", "核对合同主体信息")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, format!("/step-up?next=/clients/{id}"));
    let page = sales.get(&location).await.text().await.unwrap();
    assert!(page.contains("name=\"next\" value=\"/clients/"), "{page}");
    let code = s.totp_code(sales.authenticator.as_ref().unwrap());
    let r = sales
        .client
        .post(sales.url("/step-up"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("code", code.as_str()),
            ("next", &format!("/clients/{id}")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], format!("/clients/{id}").as_str());
    // The session id changed, so the page's form token changed with it.
    let page = sales
        .get(&format!("/clients/{id}"))
        .await
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let r = sales
        .client
        .post(sales.url(&format!("/clients/{id}/reveal")))
        .form(&[("csrf", csrf.as_str()), ("reason", "核对合同主体信息")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains(&id_number(960)));
    // A step-up page never sends the browser off the site.
    let page = sales
        .get("/step-up?next=https://evil.example/")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("name=\"next\" value=\"/\""), "{page}");

    // Role changes are critical too: the security admin is asked again after the window.
    let security = s.signed_in("anquan", Role::SecurityAdmin).await;
    s.clock.advance(5 * 60_000 + 1_000);
    let change = json!({"role": "auditor", "reason": "moved to audit"});
    let r = security
        .client
        .put(security.url("/api/v1/users/xiaoshou/role"))
        .json(&change)
        .send()
        .await
        .unwrap();
    assert_eq!(body(r).await.1["error"]["code"], "mfa_required");
    assert_eq!(s.step_up(&security).await.status(), StatusCode::OK);
    let r = security
        .client
        .put(security.url("/api/v1/users/xiaoshou/role"))
        .json(&change)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Alerts are not critical: no factor asked for.
    assert_eq!(
        security.get("/api/v1/alerts").await.status(),
        StatusCode::OK
    );
}

async fn sessions_are_listed_ended_by_their_user_or_the_security_admin_and_limited(b: Backend) {
    let config = AppConfig {
        max_sessions_per_user: 2,
        ..AppConfig::default()
    };
    let Some(s) = TestServer::start_with(b, config).await else {
        return;
    };
    let first = s.signed_in("lisi", Role::Accountant).await;
    let a = first.authenticator.clone();
    let second = s.sign_in("lisi", PASSWORD, a.clone()).await;
    let list: Value = second.get("/api/v1/sessions").await.json().await.unwrap();
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(list
        .iter()
        .all(|s| s["source"] == "127.0.0.1" && s["second_factor_at"].is_i64()));

    // One session ends the other.
    let other = list.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        second
            .delete(&format!("/api/v1/sessions/{other}"))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        first.get("/api/v1/session").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        second
            .delete(&format!("/api/v1/sessions/{other}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    // Nobody ends another user's session by its id.
    let stranger = s.signed_in("wangwu", Role::Auditor).await;
    let mine = second
        .get("/api/v1/sessions")
        .await
        .json::<Value>()
        .await
        .unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        stranger
            .delete(&format!("/api/v1/sessions/{mine}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(second.get("/api/v1/session").await.status(), StatusCode::OK);

    // With a limit of two, a third sign-in ends the oldest.
    let third = s.sign_in("lisi", PASSWORD, a.clone()).await;
    let fourth = s.sign_in("lisi", PASSWORD, a.clone()).await;
    assert_eq!(
        second.get("/api/v1/session").await.status(),
        StatusCode::UNAUTHORIZED,
        "the oldest ended"
    );
    assert_eq!(third.get("/api/v1/session").await.status(), StatusCode::OK);
    let events = s.audit().await;
    assert!(events.iter().any(|e| e.action == "session_revoked"
        && e.detail.as_deref().is_some_and(|d| d.contains("at most 2"))));

    // The security admin ends all of a user's sessions, with a reason, on the API or the page.
    let security = s.signed_in("anquan", Role::SecurityAdmin).await;
    let r = security
        .post(
            "/api/v1/users/lisi/sessions/revoke",
            &json!({"reason": " "}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = security
        .post(
            "/api/v1/users/lisi/sessions/revoke",
            &json!({"reason": "laptop stolen"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for s in [&third, &fourth] {
        assert_eq!(
            s.get("/api/v1/session").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        security
            .post(
                "/api/v1/users/nobody/sessions/revoke",
                &json!({"reason": "x y z"})
            )
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        stranger
            .post(
                "/api/v1/users/lisi/sessions/revoke",
                &json!({"reason": "x y z"})
            )
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let again = s.sign_in("lisi", PASSWORD, a.clone()).await;
    let page = security.get("/users").await.text().await.unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let r = security
        .client
        .post(security.url("/users/lisi/sessions/revoke"))
        .form(&[("csrf", csrf.as_str()), ("reason", "left the firm today")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        again.get("/api/v1/session").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let revoked: Vec<_> = s
        .audit()
        .await
        .into_iter()
        .filter(|e| e.action == "sessions_revoked")
        .collect();
    assert_eq!(revoked.len(), 2);
    assert_eq!(revoked[0].actor_name, "anquan");
    assert_eq!(revoked[0].detail.as_deref(), Some("laptop stolen"));

    // The web page lists one's sessions with their device and ends one.
    let web = s.sign_in("lisi", PASSWORD, a.clone()).await;
    let page = web.get("/sessions").await.text().await.unwrap();
    assert!(
        page.contains("127.0.0.1") && page.contains("/revoke"),
        "{page}"
    );
}

async fn an_operator_reset_removes_the_authenticator_and_ends_the_sessions(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let user = s.signed_in("diushouji", Role::Supervisor).await;
    let name = zf_domain::Username::parse("diushouji").unwrap();
    let reason = "lost phone, ticket 4711";
    assert!(s
        .app
        .reset_mfa(&name, " ", zf_audit::Actor::cli("test"))
        .await
        .is_err());
    s.app
        .reset_mfa(&name, reason, zf_audit::Actor::cli("test"))
        .await
        .unwrap();
    assert_eq!(
        user.get("/api/v1/session").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The password alone now signs in, to set up a new authenticator and nothing else.
    let session = Session {
        client: s.client(true),
        base: s.base.clone(),
        username: "diushouji".into(),
        authenticator: None,
    };
    let (status, info) = body(
        session
            .post(
                "/api/v1/session",
                &json!({"username": "diushouji", "password": PASSWORD}),
            )
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["second_factor_required"], false);
    assert_eq!(info["mfa_enrolment_required"], true);
    let (status, e) = body(session.get("/api/v1/clients").await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(e["error"]["code"], "mfa_enrolment_required");
    // The web UI sends such a user to the set-up page.
    let r = session.get("/clients").await;
    assert_eq!(r.headers()["location"], "/mfa");
    let page = session.get("/mfa").await.text().await.unwrap();
    assert!(page.contains("action=\"/mfa/totp\""), "{page}");
    let reset = s
        .audit()
        .await
        .into_iter()
        .find(|e| e.action == "mfa_reset")
        .unwrap();
    assert_eq!(reset.detail.as_deref(), Some(reason));
    assert_eq!(reset.record_id.as_deref(), Some("diushouji"));
    assert!(reset.actor_name.starts_with("cli:"));
}

async fn an_export_without_a_fresh_factor_is_refused_then_succeeds_after_step_up_both_audited(
    b: Backend,
) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let sup = s.signed_in("zhuguan", Role::Supervisor).await;
    let c = sup.create_client(&client_body(970, &id_number(970))).await;
    let name = c["name"].as_str().unwrap().to_owned();
    let export = "/api/v1/clients/export?format=csv";

    // Past the step-up window the export is refused with a challenge, and nothing leaves.
    s.clock.advance(5 * 60_000 + 1_000);
    let (status, e) = body(sup.get(export).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(e["error"]["code"], "mfa_required", "{e}");
    assert_eq!(e["challenge"]["kind"], "step_up");
    assert_eq!(e["challenge"]["endpoint"], "/api/v1/session/step-up");
    assert_eq!(e["challenge"]["max_age_seconds"], 300);
    let events = s.audit().await;
    let refusal = events
        .iter()
        .find(|e| e.action == "access_denied" && e.actor_name == "zhuguan")
        .expect("the refusal is audited");
    assert_eq!(refusal.outcome, "denied");
    let detail = refusal.detail.as_deref().unwrap();
    assert!(
        detail.starts_with("client_export:") && detail.contains("critical"),
        "{detail}"
    );
    assert_eq!(count(&events, "clients_exported", "success"), 0);

    // The second factor again, then the same request gets the file.
    let (status, info) = body(s.step_up(&sup).await).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    let r = sup.get(export).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let file = String::from_utf8(r.bytes().await.unwrap().to_vec()).unwrap();
    assert!(
        file.contains(&name) && file.contains(&id_number(970)),
        "{file}"
    );

    // The log tells the story in order: refused, factor verified, exported.
    let events = s.audit().await;
    let seq_of = |action: &str, outcome: &str| {
        let found: Vec<_> = events
            .iter()
            .filter(|e| e.action == action && e.outcome == outcome && e.actor_name == "zhuguan")
            .collect();
        assert_eq!(found.len(), 1, "one {action} {outcome}");
        found[0].seq
    };
    let denied = seq_of("access_denied", "denied");
    let stepped = seq_of("step_up", "success");
    let exported = seq_of("clients_exported", "success");
    assert!(denied < stepped && stepped < exported);
    let e = events.iter().find(|e| e.seq == exported).unwrap();
    assert!(e.detail.as_deref().unwrap().contains("1 rows"), "{e:?}");
    assert!(s.app.audit_verify(&[]).await.unwrap().is_intact());
}

/// The codes in a recovery-codes answer.
fn codes_of(v: &Value) -> Vec<String> {
    v["recovery_codes"]
        .as_array()
        .expect("recovery codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect()
}

/// Signs in with the password and `code` as the second factor; the status of the second step.
async fn sign_in_with_code(s: &TestServer, username: &str, code: &str) -> StatusCode {
    let session = password_only(s, username).await;
    session
        .post("/api/v1/session/second-factor", &json!({ "code": code }))
        .await
        .status()
}

async fn a_new_set_of_recovery_codes_needs_a_fresh_factor_and_voids_the_old_set(b: Backend) {
    let Some(s) = TestServer::start(b).await else {
        return;
    };
    let sup = s.signed_in("zhuguan", Role::Supervisor).await;
    let first: Vec<String> = sup
        .authenticator
        .as_ref()
        .unwrap()
        .recovery_codes
        .lock()
        .unwrap()
        .clone();
    assert_eq!(first.len(), 10);

    // Just signed in with the second factor: a new set, ten codes none of which was seen.
    let (status, v) = body(sup.post("/api/v1/mfa/recovery-codes", &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let second = codes_of(&v);
    assert_eq!(second.len(), 10);
    assert!(second.iter().all(|c| !first.contains(c)));
    let distinct: std::collections::HashSet<_> = second.iter().collect();
    assert_eq!(distinct.len(), 10);

    // The old set is void, unused codes included; the new one signs in, once.
    assert_eq!(
        sign_in_with_code(&s, "zhuguan", &first[3]).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        sign_in_with_code(&s, "zhuguan", &second[0]).await,
        StatusCode::OK
    );
    assert_eq!(
        sign_in_with_code(&s, "zhuguan", &second[0]).await,
        StatusCode::UNAUTHORIZED
    );
    let status: Value = sup.get("/api/v1/mfa").await.json().await.unwrap();
    assert_eq!(status["recovery_codes_left"], 9);

    // Past the step-up window it is refused with the challenge, and nothing changes; after a
    // fresh factor it goes through and the second set is void in turn.
    s.clock.advance(5 * 60_000 + 1_000);
    let (status, e) = body(sup.post("/api/v1/mfa/recovery-codes", &json!({})).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(e["error"]["code"], "mfa_required", "{e}");
    assert_eq!(
        sign_in_with_code(&s, "zhuguan", &second[1]).await,
        StatusCode::OK,
        "a refused request changed nothing"
    );
    assert_eq!(s.step_up(&sup).await.status(), StatusCode::OK);
    let (status, v) = body(sup.post("/api/v1/mfa/recovery-codes", &json!({})).await).await;
    assert_eq!(status, StatusCode::OK);
    let third = codes_of(&v);
    assert_eq!(
        sign_in_with_code(&s, "zhuguan", &second[2]).await,
        StatusCode::UNAUTHORIZED
    );
    let status: Value = sup.get("/api/v1/mfa").await.json().await.unwrap();
    assert_eq!(status["recovery_codes_left"], 10);

    // A user without an authenticator has nothing to replace: refused, nothing written.
    let auditor = s.signed_in("shenji", Role::Auditor).await;
    assert!(auditor.authenticator.is_none());
    let r = auditor.post("/api/v1/mfa/recovery-codes", &json!({})).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The web page offers it and shows the new set once.
    let page = sup.get("/mfa").await.text().await.unwrap();
    assert!(page.contains("action=\"/mfa/recovery-codes\""));
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let shown = sup
        .client
        .post(sup.url("/mfa/recovery-codes"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status(), StatusCode::OK);
    let shown = shown.text().await.unwrap();
    assert_eq!(shown.matches("<li><code>").count(), 10, "{shown}");
    assert!(third.iter().all(|c| !shown.contains(c.as_str())));
    assert_eq!(
        sign_in_with_code(&s, "zhuguan", &third[0]).await,
        StatusCode::UNAUTHORIZED
    );

    // Three new sets, each audited against the user; the chain holds.
    let events = s.audit().await;
    let made: Vec<_> = events
        .iter()
        .filter(|e| e.action == "recovery_codes_regenerated")
        .collect();
    assert_eq!(made.len(), 3);
    assert!(made
        .iter()
        .all(|e| e.outcome == "success" && e.record_id.as_deref() == Some("zhuguan")));
    assert!(s.app.audit_verify(&[]).await.unwrap().is_intact());
}
