//! Security monitoring end to end: a mass read by one accountant raises an alert, their account
//! is locked at once, and a syslog receiver over TLS gets the alert; a decoy client catches its
//! reader; a burst of failed sign-ins is noticed; the console is the security admin's alone.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{client_body, id_number, sql, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use zf_app::AppConfig;
use zf_policy::Role;

on_both_stores!(
    a_mass_read_raises_an_alert_locks_the_account_and_reaches_syslog,
    a_honeytoken_catches_its_reader,
    a_burst_of_failed_sign_ins_is_noticed,
    a_sign_in_with_a_new_device_is_noticed_and_the_device_is_audited,
    access_outside_working_hours_is_noticed_when_enabled,
    accounts_unused_for_ninety_days_are_disabled,
);

fn config() -> AppConfig {
    let mut c = AppConfig::default();
    c.monitor.read_volume.min_records = 30;
    c.monitor.read_volume.factor = 5;
    c
}

/// A syslog receiver over TLS (RFC 5425 framing) on loopback, using the test server's own
/// certificate; it collects every message it is sent.
async fn syslog_receiver(s: &TestServer) -> (String, Arc<Mutex<Vec<String>>>) {
    let files = zf_server::tls::ensure_self_signed(&s.data_dir()).unwrap();
    let tls = zf_server::tls::server_config(&files).unwrap();
    let mut plain = (*tls).clone();
    plain.alpn_protocols.clear();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(plain));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let sink = sink.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n) = tls.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    // Octet counting: "<len> <message>".
                    while let Some(space) = buf.iter().position(|b| *b == b' ') {
                        let Ok(len) = std::str::from_utf8(&buf[..space])
                            .unwrap_or("x")
                            .parse::<usize>()
                        else {
                            return;
                        };
                        if buf.len() < space + 1 + len {
                            break;
                        }
                        let msg =
                            String::from_utf8_lossy(&buf[space + 1..space + 1 + len]).into_owned();
                        sink.lock().unwrap().push(msg);
                        buf.drain(..space + 1 + len);
                    }
                }
            });
        }
    });
    (addr, lines)
}

async fn a_mass_read_raises_an_alert_locks_the_account_and_reaches_syslog(b: Backend) {
    let Some(s) = TestServer::start_with(b, config()).await else {
        return;
    };
    let (addr, received) = syslog_receiver(&s).await;
    let ca = s.data_dir().join("tls/cert.pem");
    let sender =
        zf_siem::SyslogTlsSender::start(&zf_siem::SyslogConfig::new(addr, "localhost", ca))
            .unwrap();
    s.app.sinks().add(Arc::new(sender.clone()));

    let acc = s.signed_in("piliang", Role::Accountant).await;
    let security = s.signed_in("anquan", Role::SecurityAdmin).await;
    let mut ids = Vec::new();
    for n in 0..35 {
        let c = acc
            .create_client(&client_body(700 + n, &id_number(700 + n)))
            .await;
        ids.push(c["id"].as_str().unwrap().to_owned());
    }
    // An ordinary amount of work raises nothing.
    for id in &ids[..5] {
        assert_eq!(
            acc.get(&format!("/api/v1/clients/{id}")).await.status(),
            StatusCode::OK
        );
    }
    assert!(s.app.monitor_tick().await.unwrap().is_empty());
    // Then the accountant reads every client, far above their own baseline.
    for id in &ids {
        acc.get(&format!("/api/v1/clients/{id}")).await;
    }
    let raised = s.app.monitor_tick().await.unwrap();
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0].rule, "read_volume");
    assert_eq!(raised[0].username.as_deref(), Some("piliang"));
    assert_eq!(raised[0].responses, vec!["alert", "lock_account"]);
    // Locked at once: the very next request is refused, and signing in again fails.
    assert_eq!(
        acc.get("/api/v1/clients").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let r = s
        .client(false)
        .post(s.url("/api/v1/session"))
        .json(&json!({"username": "piliang", "password": "A fresh pass phrase for tests"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The same events seen again raise nothing new.
    assert!(s.app.monitor_tick().await.unwrap().is_empty());

    // The syslog receiver got the alert, and the events.
    sender.flush(Duration::from_secs(10)).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = received.lock().unwrap().clone();
        if got.iter().any(|l| l.contains("read_volume")) {
            assert!(
                got.iter().any(|l| l.contains("client_sensitive_read")),
                "events forwarded too"
            );
            for secret in (700..735).map(id_number) {
                assert!(
                    got.iter().all(|l| !l.contains(&secret)),
                    "a sensitive value reached syslog"
                );
            }
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no alert at the syslog receiver: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The console: the security admin sees, acknowledges and resolves; others may not look.
    let list: Value = security
        .get("/api/v1/alerts?status=open")
        .await
        .json()
        .await
        .unwrap();
    let items = list["items"].as_array().unwrap_or_else(|| panic!("{list}"));
    assert_eq!(items.len(), 1);
    let id = items[0]["id"].as_str().unwrap();
    assert_eq!(
        security
            .post(&format!("/api/v1/alerts/{id}/acknowledge"), &json!({}))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        security
            .post(&format!("/api/v1/alerts/{id}/resolve"), &json!({}))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let list: Value = security
        .get("/api/v1/alerts?status=resolved")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"][0]["updated_by"], "anquan");
    let other = s.signed_in("shenji-2", Role::AuditAdmin).await;
    assert_eq!(
        other.get("/api/v1/alerts").await.status(),
        StatusCode::FORBIDDEN
    );
    let actions: Vec<String> = s.audit().await.into_iter().map(|e| e.action).collect();
    for a in [
        "alert_raised",
        "account_locked",
        "alert_acknowledged",
        "alert_resolved",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} not audited");
    }
    // After investigation the account is unlocked from the command line's path.
    s.app
        .unlock_user(
            &zf_domain::Username::parse("piliang").unwrap(),
            zf_audit::Actor::cli("test"),
        )
        .await
        .unwrap();
    let r = s
        .client(false)
        .post(s.url("/api/v1/session"))
        .json(&json!({"username": "piliang", "password": "A fresh pass phrase for tests"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(s.app.audit_verify(&[]).await.unwrap().is_intact());

    // The JSON-lines export for security tooling holds no seeded sensitive value either.
    let mut export = Vec::new();
    let n = s.app.audit_export(&mut export).await.unwrap();
    assert_eq!(n, s.audit().await.len() as u64);
    let export = String::from_utf8(export).unwrap();
    assert!(export.contains("client_sensitive_read"));
    for secret in (700..735).map(id_number) {
        assert!(
            !export.contains(&secret),
            "a sensitive value reached the export"
        );
    }
}

async fn a_honeytoken_catches_its_reader(b: Backend) {
    let Some(s) = TestServer::start_with(b, config()).await else {
        return;
    };
    let sup = s.signed_in("zhuguan-h", Role::Supervisor).await;
    let curious = s.signed_in("haoqi", Role::Supervisor).await;
    let decoy = sup.create_client(&client_body(801, &id_number(801))).await;
    let id = decoy["id"].as_str().unwrap();
    s.app
        .plant_honeytoken(
            zf_domain::ClientId::parse(id).unwrap(),
            zf_audit::Actor::cli("test"),
        )
        .await
        .unwrap();
    s.app.monitor_tick().await.unwrap();
    assert_eq!(
        curious.get(&format!("/api/v1/clients/{id}")).await.status(),
        StatusCode::OK
    );
    let raised = s.app.monitor_tick().await.unwrap();
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0].rule, "honeytoken");
    assert_eq!(raised[0].severity, zf_audit::Severity::Critical);
    assert_eq!(raised[0].username.as_deref(), Some("haoqi"));
    // Sessions revoked: the next request needs a new sign-in.
    assert_eq!(
        curious.get("/api/v1/clients").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn a_burst_of_failed_sign_ins_is_noticed(b: Backend) {
    let Some(s) = TestServer::start_with(b, config()).await else {
        return;
    };
    s.signed_in("mubiao", Role::Accountant).await;
    let c = s.client(false);
    for _ in 0..10 {
        c.post(s.url("/api/v1/session"))
            .json(&json!({"username": "mubiao", "password": "not the password at all"}))
            .send()
            .await
            .unwrap();
    }
    let raised = s.app.monitor_tick().await.unwrap();
    let rules: Vec<(&str, Option<&str>)> = raised
        .iter()
        .map(|a| (a.rule.as_str(), a.username.as_deref()))
        .collect();
    assert!(
        rules.contains(&("failed_login_burst", Some("mubiao"))),
        "{rules:?}"
    );
    assert!(
        raised
            .iter()
            .any(|a| a.source.as_deref() == Some("127.0.0.1") && a.username.is_none()),
        "by address too: {raised:?}"
    );
}

async fn a_sign_in_with_a_new_device_is_noticed_and_the_device_is_audited(b: Backend) {
    let Some(s) = TestServer::start_with(b, config()).await else {
        return;
    };
    let user = s.signed_in("shebei", Role::Accountant).await;
    let authenticator = user.authenticator.clone().unwrap();
    // A sign-in is complete, and so noticed, with its second factor.
    let sign_in = |ua: &'static str| {
        let c = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(s.cert_pem()).unwrap())
            .cookie_store(true)
            .user_agent(ua)
            .build()
            .unwrap();
        let (login, second) = (
            s.url("/api/v1/session"),
            s.url("/api/v1/session/second-factor"),
        );
        let code = s.totp_code(&authenticator);
        async move {
            let r = c
                .post(login)
                .json(&json!({"username": "shebei", "password": "A fresh pass phrase for tests"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            c.post(second)
                .json(&json!({ "code": code }))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        sign_in("Mozilla/5.0 (Windows NT 10.0) Firefox/130.0").await,
        StatusCode::OK
    );
    s.app.monitor_tick().await.unwrap();
    assert_eq!(
        sign_in("Mozilla/5.0 (Windows NT 10.0) Firefox/130.0").await,
        StatusCode::OK
    );
    let raised = s.app.monitor_tick().await.unwrap();
    assert!(
        raised.iter().all(|a| a.rule != "new_device"),
        "a known device: {raised:?}"
    );
    assert_eq!(sign_in("python-requests/2.32").await, StatusCode::OK);
    let raised = s.app.monitor_tick().await.unwrap();
    assert!(
        raised
            .iter()
            .any(|a| a.rule == "new_device" && a.summary.contains("python-requests")),
        "{raised:?}"
    );
    let events = s.audit().await;
    assert!(events
        .iter()
        .any(|e| e.device.as_deref() == Some("python-requests/2.32")));
    assert!(s.app.audit_verify(&[]).await.unwrap().is_intact());
}

async fn access_outside_working_hours_is_noticed_when_enabled(b: Backend) {
    let mut c = config();
    c.monitor.off_hours.enabled = true;
    let Some(s) = TestServer::start_with(b, c).await else {
        return;
    };
    // 03:00 and 10:00 in Beijing on 2025-11-20.
    let night = 1_763_578_800_000; // 2025-11-19T19:00:00Z
    let day = night + 7 * 3_600_000;
    let actor = |at| {
        zf_audit::AuditEvent::new(
            at,
            zf_audit::Actor {
                user_id: Some(zf_domain::UserId::new_random()),
                name: "yemao".into(),
                session_ref: None,
                source: Some("10.1.2.3".into()),
                device: None,
            },
            zf_audit::AuditAction::ClientSensitiveRead,
            zf_audit::Outcome::Success,
        )
        .on("clients", "c-1")
    };
    s.app
        .store()
        .audit_append_batch(vec![actor(day)])
        .await
        .unwrap();
    assert!(s
        .app
        .monitor_tick()
        .await
        .unwrap()
        .iter()
        .all(|a| a.rule != "off_hours"));
    s.app
        .store()
        .audit_append_batch(vec![actor(night)])
        .await
        .unwrap();
    let raised = s.app.monitor_tick().await.unwrap();
    assert!(
        raised
            .iter()
            .any(|a| a.rule == "off_hours" && a.username.as_deref() == Some("yemao")),
        "{raised:?}"
    );
}

async fn accounts_unused_for_ninety_days_are_disabled(b: Backend) {
    let Some(s) = TestServer::start_with(b, config()).await else {
        return;
    };
    let active = s.signed_in("huoyue", Role::Accountant).await;
    let idle = s.signed_in("jiu", Role::Accountant).await;
    s.app
        .add_user(
            zf_domain::Username::parse("chenshui").unwrap(),
            Role::Sales,
            None,
            zf_audit::Actor::cli("test"),
        )
        .await
        .unwrap();
    let long_ago = zf_app::now_ms() - 100 * 86_400_000;
    sql(&s, &[&format!("UPDATE users SET created_at = {long_ago} WHERE username IN ('chenshui', 'jiu', 'huoyue')")]).await;
    sql(
        &s,
        &[&format!(
            "UPDATE users SET last_login_at = {} WHERE username = 'jiu'",
            long_ago + 9 * 86_400_000
        )],
    )
    .await;

    let disabled: Vec<String> = s
        .app
        .disable_dormant_accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.as_str().to_owned())
        .collect();
    assert_eq!(
        disabled,
        vec!["chenshui", "jiu"],
        "never signed in, or not for 91 days"
    );
    assert_eq!(
        idle.get("/api/v1/session").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(active.get("/api/v1/session").await.status(), StatusCode::OK);
    let locks: Vec<_> = s
        .audit()
        .await
        .into_iter()
        .filter(|e| e.action == "account_locked")
        .collect();
    assert_eq!(locks.len(), 2);
    assert!(locks
        .iter()
        .all(|e| e.detail.as_deref() == Some("unused for 90 days")));
    assert!(
        s.app.disable_dormant_accounts().await.unwrap().is_empty(),
        "already disabled"
    );
}
