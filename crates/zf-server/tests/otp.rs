//! One-time codes by e-mail as a second factor, end to end over HTTPS, with the codes read
//! from a real SMTP server the test runs on 127.0.0.1: an address registered and confirmed
//! (sealed at rest), sign-in and step-up for an export with a mailed code, and every way a code
//! is refused — wrong, expired, reused, voided by a newer one, out of attempts, throttled,
//! another user's, for another purpose, for a role that must use an authenticator, undelivered.

mod common;

use common::smtp::{Mail, SmtpServer};
use common::{client_body, id_number, Backend, Session, TestServer};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use zf_app::identity::otp::{SenderKind, SmtpConfig, SmtpTls};
use zf_app::identity::OtpConfig;
use zf_app::AppConfig;
use zf_audit::Actor;
use zf_domain::Username;
use zf_policy::Role;

on_both_stores!(
    an_emailed_code_is_registered_then_signs_in_and_steps_up_for_an_export,
    wrong_expired_reused_exhausted_throttled_and_foreign_codes_are_refused,
    administrators_must_use_an_authenticator_bad_input_and_undelivered_codes_are_refused,
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

fn config(smtp: &SmtpServer) -> AppConfig {
    AppConfig {
        otp: OtpConfig {
            email: Some(SenderKind::Smtp),
            smtp: Some(SmtpConfig {
                host: "127.0.0.1".into(),
                port: Some(smtp.port),
                tls: SmtpTls::None,
                username: None,
                password_env: None,
                password_file: None,
                from: "账房 <noreply@firm.example>".into(),
                ca_file: None,
                timeout_seconds: 10,
            }),
            ..OtpConfig::default()
        },
        ..AppConfig::default()
    }
}

/// A user created as the CLI does, signed in, with the one-time password replaced; no second
/// factor yet.
async fn new_user(s: &TestServer, username: &str, role: Role) -> Session {
    let one_time = "one-time pass phrase 4 test";
    s.app
        .add_user(
            Username::parse(username).unwrap(),
            role,
            Some(SecretString::from(one_time)),
            Actor::cli("test"),
        )
        .await
        .unwrap();
    let session = session(s, username);
    let r = session
        .post(
            "/api/v1/session",
            &json!({"username": username, "password": one_time}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = session
        .put(
            "/api/v1/session/password",
            &json!({"current_password": one_time, "new_password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    session
}

fn session(s: &TestServer, username: &str) -> Session {
    Session {
        client: s.client(true),
        base: s.base.clone(),
        username: username.into(),
        authenticator: None,
    }
}

/// Registers `address` as the user's e-mail factor and confirms it with the mailed code.
async fn enrol_email(s: &TestServer, smtp: &SmtpServer, user: &Session, address: &str) {
    let seen = smtp.count();
    let (status, sent) = body(
        user.post(
            "/api/v1/mfa/code",
            &json!({"channel": "email", "address": address}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let mail = smtp.next_after(seen).await;
    assert_eq!(mail.to, vec![address.to_owned()]);
    let (status, info) = body(
        user.post("/api/v1/mfa/code/confirm", &json!({"code": mail.code()}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["second_factor_fresh"], true);
    // The next code may be asked for only after the resend interval.
    s.clock.advance(61_000);
}

/// Signs in with the password; the sign-in waits for the second factor.
async fn password(s: &TestServer, username: &str) -> Session {
    let user = session(s, username);
    let (status, info) = body(
        user.post(
            "/api/v1/session",
            &json!({"username": username, "password": PASSWORD}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["second_factor_required"], true, "{info}");
    user
}

/// Asks for a sign-in code by e-mail and returns the message that brought it.
async fn mailed(smtp: &SmtpServer, user: &Session, endpoint: &str) -> Mail {
    let seen = smtp.count();
    let (status, sent) = body(user.post(endpoint, &json!({"method": "email"})).await).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    smtp.next_after(seen).await
}

async fn an_emailed_code_is_registered_then_signs_in_and_steps_up_for_an_export(b: Backend) {
    let smtp = SmtpServer::start().await;
    let Some(s) = TestServer::start_with(b, config(&smtp)).await else {
        return;
    };
    // A supervisor must have a second factor before anything else; a code by e-mail counts.
    let user = new_user(&s, "zhuguan", Role::Supervisor).await;
    assert_eq!(
        user.get("/api/v1/clients").await.status(),
        StatusCode::FORBIDDEN
    );
    let seen = smtp.count();
    let (status, sent) = body(
        user.post(
            "/api/v1/mfa/code",
            &json!({"channel": "email", "address": "zhuguan@firm.example"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    assert_eq!(sent["to"], "z***@firm.example");
    let mail = smtp.next_after(seen).await;
    assert_eq!(mail.from, "noreply@firm.example");
    assert_eq!(mail.to, vec!["zhuguan@firm.example".to_owned()]);
    let code = mail.code();
    assert!(
        !mail.header("Subject").unwrap().contains(&code),
        "never in the subject"
    );
    assert!(mail.body().contains(&format!("您的验证码是：{code}")));

    // A wrong first code confirms nothing; the right one does and renews the session.
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    let (status, e) = body(
        user.post("/api/v1/mfa/code/confirm", &json!({"code": wrong}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (status, info) = body(
        user.post("/api/v1/mfa/code/confirm", &json!({"code": code}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{info}");
    let (status, created) = body(
        user.post("/api/v1/clients", &client_body(1, &id_number(1)))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let factors: Value = user.get("/api/v1/mfa/codes").await.json().await.unwrap();
    assert_eq!(factors[0]["channel"], "email");
    assert_eq!(factors[0]["address"], "z***@firm.example");
    assert!(factors[0]["confirmed_at"].is_i64());
    let events = s.audit().await;
    assert_eq!(count(&events, "mfa_enrolment_started", "success"), 1);
    assert_eq!(count(&events, "mfa_enabled", "failed"), 1);
    assert_eq!(count(&events, "mfa_enabled", "success"), 1);
    assert_eq!(count(&events, "second_factor_code_sent", "success"), 1);
    assert!(events.iter().all(|e| !e
        .detail
        .as_deref()
        .unwrap_or("")
        .contains("zhuguan@firm.example")));

    // The address is sealed at rest.
    match b {
        Backend::Sqlite => assert!(!common::contains(
            &common::sqlite_bytes(&s),
            b"zhuguan@firm.example"
        )),
        Backend::Postgres => {
            assert!(!common::postgres_text(&s)
                .await
                .contains("zhuguan@firm.example"))
        }
    }

    // Sign-in: the password, then a mailed code, offered as the user's one method.
    s.clock.advance(61_000);
    let next = password(&s, "zhuguan").await;
    let (status, refused) = body(next.get("/api/v1/clients").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused["challenge"]["kind"], "sign_in");
    assert_eq!(refused["challenge"]["methods"], json!(["email"]));
    assert_eq!(
        refused["challenge"]["send_endpoint"],
        "/api/v1/session/second-factor/code"
    );
    // The sign-in page offers the mailed code, and its button sends one.
    let page = next.get("/login/second-factor").await.text().await.unwrap();
    assert!(
        page.contains("action=\"/login/second-factor/code\""),
        "{page}"
    );
    let seen = smtp.count();
    let r = next
        .client
        .post(next.url("/login/second-factor/code"))
        .form(&[
            ("csrf", common::csrf_of(&page).as_str()),
            ("method", "email"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("z***@firm.example"));
    let mail = smtp.next_after(seen).await;
    assert!(mail.body().contains("To sign in"));
    let (status, info) = body(
        next.post(
            "/api/v1/session/second-factor",
            &json!({"code": mail.code(), "method": "email"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(next.get("/api/v1/clients").await.status(), StatusCode::OK);
    let page = next.get("/mfa").await.text().await.unwrap();
    assert!(page.contains("z***@firm.example") && page.contains("action=\"/mfa/code\""));

    // The export is critical: past the step-up window it asks for a fresh factor, listing the
    // e-mail code and where to ask for one; a mailed step-up code opens it.
    s.clock.advance(6 * 60_000);
    let (status, refused) = body(next.get("/api/v1/clients/export?format=csv").await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(refused["error"]["code"], "mfa_required");
    assert_eq!(refused["challenge"]["kind"], "step_up");
    assert_eq!(refused["challenge"]["methods"], json!(["email"]));
    assert_eq!(
        refused["challenge"]["send_endpoint"],
        "/api/v1/session/step-up/code"
    );
    let mail = mailed(&smtp, &next, "/api/v1/session/step-up/code").await;
    assert!(mail.body().contains("To confirm a sensitive operation"));
    // Without a method, a user with no authenticator is asked for the code sent.
    let (status, info) = body(
        next.post("/api/v1/session/step-up", &json!({"code": mail.code()}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{info}");
    let r = next.get("/api/v1/clients/export?format=csv").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("上海测试贸易有限公司1"));

    let events = s.audit().await;
    assert_eq!(count(&events, "second_factor_code_sent", "success"), 3);
    assert!(events.iter().any(|e| e.action == "login"
        && e.outcome == "success"
        && e.detail.as_deref() == Some("second factor: one-time code by e-mail or SMS")));
    assert_eq!(count(&events, "step_up", "success"), 1);
    assert_eq!(count(&events, "clients_exported", "success"), 1);
    // No code ever reached the audit log.
    let code = mail.code();
    assert!(events
        .iter()
        .all(|e| !e.detail.as_deref().unwrap_or("").contains(&code)));
}

async fn wrong_expired_reused_exhausted_throttled_and_foreign_codes_are_refused(b: Backend) {
    let smtp = SmtpServer::start().await;
    let mut config = config(&smtp);
    // Wrong codes also count towards the account's lock; keep it out of the way here.
    config.login.lock_after = 100;
    let Some(s) = TestServer::start_with(b, config).await else {
        return;
    };
    let a = new_user(&s, "xiaoshou", Role::Sales).await;
    enrol_email(&s, &smtp, &a, "xiaoshou@firm.example").await;
    let other = new_user(&s, "kuaiji", Role::Accountant).await;
    enrol_email(&s, &smtp, &other, "kuaiji@firm.example").await;
    let failed = |events: &[zf_audit::StoredEvent]| count(events, "login", "failed");

    // Wrong: refused and audited.
    let user = password(&s, "xiaoshou").await;
    let mail = mailed(&smtp, &user, "/api/v1/session/second-factor/code").await;
    let code = mail.code();
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 7) % 1_000_000);
    let try_code = |user: &Session, code: String| {
        let user_client = user.client.clone();
        let url = user.url("/api/v1/session/second-factor");
        async move {
            user_client
                .post(url)
                .json(&json!({"code": code, "method": "email"}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        try_code(&user, wrong.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(failed(&s.audit().await), 1);

    // Expired: the right code, five minutes and a second later.
    s.clock.advance(5 * 60_000 + 1_000);
    let user = password(&s, "xiaoshou").await;
    assert_eq!(try_code(&user, code).await, StatusCode::UNAUTHORIZED);

    // Reused: a code that signed in once does not sign in again.
    let mail = mailed(&smtp, &user, "/api/v1/session/second-factor/code").await;
    assert_eq!(try_code(&user, mail.code()).await, StatusCode::OK);
    let again = password(&s, "xiaoshou").await;
    assert_eq!(
        try_code(&again, mail.code()).await,
        StatusCode::UNAUTHORIZED
    );

    // Throttled: no second code within the minute, and the refusal is audited.
    s.clock.advance(61_000);
    let first = mailed(&smtp, &again, "/api/v1/session/second-factor/code").await;
    let (status, e) = body(
        again
            .post(
                "/api/v1/session/second-factor/code",
                &json!({"method": "email"}),
            )
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{e}");
    assert_eq!(e["error"]["code"], "rate_limited");
    assert_eq!(
        count(&s.audit().await, "second_factor_code_sent", "denied"),
        1
    );

    // A new code voids the one before.
    s.clock.advance(61_000);
    let second = mailed(&smtp, &again, "/api/v1/session/second-factor/code").await;
    assert_ne!(first.code(), second.code());
    assert_eq!(
        try_code(&again, first.code()).await,
        StatusCode::UNAUTHORIZED
    );

    // Out of attempts: after five comparisons (the voided code above was the first) even the
    // right code is void.
    for _ in 0..4 {
        let wrong = format!(
            "{:06}",
            (second.code().parse::<u32>().unwrap() + 3) % 1_000_000
        );
        assert_eq!(try_code(&again, wrong).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        try_code(&again, second.code()).await,
        StatusCode::UNAUTHORIZED
    );

    // The hourly cap: five codes in this hour already (the enrolment's among them); the sixth
    // waits for the hour to pass.
    s.clock.advance(61_000);
    let (status, e) = body(
        again
            .post(
                "/api/v1/session/second-factor/code",
                &json!({"method": "email"}),
            )
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{e}");
    s.clock.advance(60 * 60_000);

    // A new hour, a new code (the waiting sign-in above has expired meanwhile); another
    // user's code opens nothing, and a step-up code is no sign-in code.
    let again = password(&s, "xiaoshou").await;
    mailed(&smtp, &again, "/api/v1/session/second-factor/code").await;
    let theirs_session = password(&s, "kuaiji").await;
    let theirs = mailed(&smtp, &theirs_session, "/api/v1/session/second-factor/code").await;
    assert_eq!(
        try_code(&again, theirs.code()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        try_code(&theirs_session, theirs.code()).await,
        StatusCode::OK
    );
    s.clock.advance(61_000 + 6 * 60_000);
    let step_up = mailed(&smtp, &theirs_session, "/api/v1/session/step-up/code").await;
    let signed_in = password(&s, "kuaiji").await;
    assert_eq!(
        try_code(&signed_in, step_up.code()).await,
        StatusCode::UNAUTHORIZED,
        "a step-up code is no sign-in code"
    );

    let events = s.audit().await;
    assert!(failed(&events) >= 10, "{}", failed(&events));
    assert!(events.iter().any(|e| e.action == "login"
        && e.outcome == "failed"
        && e.detail.as_deref() == Some("wrong or reused second factor")));
}

async fn administrators_must_use_an_authenticator_bad_input_and_undelivered_codes_are_refused(
    b: Backend,
) {
    let smtp = SmtpServer::start().await;
    let Some(s) = TestServer::start_with(b, config(&smtp)).await else {
        return;
    };
    // The MFA policy does not count codes for administrators.
    let admin = new_user(&s, "anquan", Role::SecurityAdmin).await;
    let (status, e) = body(
        admin
            .post(
                "/api/v1/mfa/code",
                &json!({"channel": "email", "address": "anquan@firm.example"}),
            )
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("authenticator"));
    assert_eq!(smtp.count(), 0);

    // Malformed requests change nothing.
    let user = new_user(&s, "xiaoshou", Role::Sales).await;
    for (bad, status) in [
        (
            json!({"channel": "fax", "address": "x@firm.example"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"channel": "email", "address": "not an address"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"channel": "sms", "address": "13812345678"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"channel": "email", "address": "x@firm.example", "extra": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let r = user.post("/api/v1/mfa/code", &bad).await;
        let got = r.status();
        assert!(
            got == status
                || (status == StatusCode::UNPROCESSABLE_ENTITY && got == StatusCode::BAD_REQUEST),
            "{bad}: {got}"
        );
    }
    let factors: Value = user.get("/api/v1/mfa/codes").await.json().await.unwrap();
    assert_eq!(factors, json!([]));

    // A mail server that refuses the recipient: 503, the code voided, the failure audited.
    smtp.reject_recipients(true);
    let (status, e) = body(
        user.post(
            "/api/v1/mfa/code",
            &json!({"channel": "email", "address": "xiaoshou@firm.example"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{e}");
    assert_eq!(
        count(&s.audit().await, "second_factor_code_sent", "failed"),
        1
    );
    smtp.reject_recipients(false);
    s.clock.advance(61_000);
    enrol_email(&s, &smtp, &user, "xiaoshou@firm.example").await;

    // Changing the address once enrolled needs a fresh factor.
    s.clock.advance(6 * 60_000);
    let (status, e) = body(
        user.post(
            "/api/v1/mfa/code",
            &json!({"channel": "email", "address": "new@firm.example"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(e["error"]["code"], "mfa_required");
    let mail = mailed(&smtp, &user, "/api/v1/session/step-up/code").await;
    let r = user
        .post(
            "/api/v1/session/step-up",
            &json!({"code": mail.code(), "method": "email"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    s.clock.advance(61_000);
    let seen = smtp.count();
    let (status, _) = body(
        user.post(
            "/api/v1/mfa/code",
            &json!({"channel": "email", "address": "new@firm.example"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        smtp.next_after(seen).await.to,
        vec!["new@firm.example".to_owned()]
    );
    let factors: Value = user.get("/api/v1/mfa/codes").await.json().await.unwrap();
    assert_eq!(factors[0]["address"], "x***@firm.example");
    assert_eq!(factors[0]["pending"], "n***@firm.example");

    // An operator's reset removes the code factor with the authenticator.
    s.app
        .reset_mfa(
            &Username::parse("xiaoshou").unwrap(),
            "lost phone and mailbox, ticket 1",
            Actor::cli("test"),
        )
        .await
        .unwrap();
    let fresh = session(&s, "xiaoshou");
    let (_, info) = body(
        fresh
            .post(
                "/api/v1/session",
                &json!({"username": "xiaoshou", "password": PASSWORD}),
            )
            .await,
    )
    .await;
    assert_eq!(info["second_factor_required"], false, "{info}");
    assert_eq!(info["mfa_enrolment_required"], true, "{info}");
}
