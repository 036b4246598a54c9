//! Webhook delivery against a loopback HTTP server that records every request: the body of each
//! format, the DingTalk and Feishu signatures (recomputed here from the documented algorithms),
//! retries, and the URL checks made when the configuration is loaded.

mod support;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use serde_json::{json, Value};
use sha2::Sha256;
use support::alert;
use zf_siem::{Webhook, WebhookConfig, WebhookConfigError, WebhookError, WebhookKind, Webhooks};

#[derive(Clone, Debug)]
struct Recorded {
    path: String,
    query: Option<String>,
    content_type: Option<String>,
    body: Value,
}

#[derive(Clone, Default)]
struct Hook {
    requests: Arc<Mutex<Vec<Recorded>>>,
    /// Answers to give, in order; then 200 with `{"errcode":0}`.
    answers: Arc<Mutex<VecDeque<Response>>>,
}

async fn record(State(hook): State<Hook>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    hook.requests.lock().unwrap().push(Recorded {
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let next = hook.answers.lock().unwrap().pop_front();
    next.unwrap_or_else(|| axum::Json(json!({"errcode": 0, "errmsg": "ok"})).into_response())
}

struct Server {
    base: String,
    hook: Hook,
}

impl Server {
    async fn start() -> Self {
        let hook = Hook::default();
        let app = axum::Router::new()
            .fallback(record)
            .with_state(hook.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server { base, hook }
    }

    fn answer(&self, response: impl IntoResponse) {
        self.hook
            .answers
            .lock()
            .unwrap()
            .push_back(response.into_response());
    }

    fn requests(&self) -> Vec<Recorded> {
        self.hook.requests.lock().unwrap().clone()
    }

    fn webhook(&self, kind: WebhookKind, path: &str, secret: Option<&str>) -> Webhook {
        Webhook::new(config(kind, &format!("{}{path}", self.base), secret)).unwrap()
    }
}

fn config(kind: WebhookKind, url: &str, secret: Option<&str>) -> WebhookConfig {
    WebhookConfig {
        kind,
        url: url.to_owned(),
        secret: secret.map(|s| SecretString::from(s.to_owned())),
    }
}

fn hmac_base64(key: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

const HEADLINE: &str = "【账房安全告警】高 · 短时间内大量登录失败";

#[tokio::test]
async fn generic_posts_the_alert_as_json() {
    let server = Server::start().await;
    server
        .webhook(WebhookKind::Generic, "/siem/alerts", None)
        .send_alert(&alert())
        .await
        .unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/siem/alerts");
    assert_eq!(
        requests[0].content_type.as_deref(),
        Some("application/json")
    );
    assert_eq!(requests[0].body, serde_json::to_value(alert()).unwrap());
    assert_eq!(requests[0].body["severity"], "high");
}

#[tokio::test]
async fn wecom_gets_markdown_content() {
    let server = Server::start().await;
    server
        .webhook(WebhookKind::Wecom, "/cgi-bin/webhook/send?key=k-1", None)
        .send_alert(&alert())
        .await
        .unwrap();
    let request = &server.requests()[0];
    assert_eq!(request.query.as_deref(), Some("key=k-1"));
    assert_eq!(keys(&request.body), ["markdown", "msgtype"]);
    assert_eq!(request.body["msgtype"], "markdown");
    assert_eq!(keys(&request.body["markdown"]), ["content"]);
    let content = request.body["markdown"]["content"].as_str().unwrap();
    assert!(content.starts_with(&format!("### {HEADLINE}\n**10 分钟内 12 次登录失败**\nZhangfang security alert · HIGH · failed_login_burst\n")), "{content}");
    assert!(
        content.contains("\n> 用户 User：张三（u-7）\n"),
        "{content}"
    );
    assert!(
        content.contains("\n> 处置 Response：仅告警 alert、锁定账户 lock_account\n"),
        "{content}"
    );
}

#[tokio::test]
async fn dingtalk_gets_markdown_and_a_valid_signature_in_the_url() {
    let server = Server::start().await;
    let secret = "SEC0123456789abcdef";
    let before = now_ms();
    server
        .webhook(
            WebhookKind::Dingtalk,
            "/robot/send?access_token=tok-1",
            Some(secret),
        )
        .send_alert(&alert())
        .await
        .unwrap();
    let request = &server.requests()[0];
    assert_eq!(request.path, "/robot/send");
    assert_eq!(keys(&request.body), ["markdown", "msgtype"]);
    assert_eq!(request.body["msgtype"], "markdown");
    assert_eq!(keys(&request.body["markdown"]), ["text", "title"]);
    assert_eq!(request.body["markdown"]["title"], HEADLINE);
    let text = request.body["markdown"]["text"].as_str().unwrap();
    assert!(
        text.starts_with(&format!(
            "### {HEADLINE}\n\n**10 分钟内 12 次登录失败**\n\n"
        )),
        "{text}"
    );

    let query = request.query.as_deref().unwrap();
    let pairs: Vec<(&str, &str)> = query
        .split('&')
        .map(|p| p.split_once('=').unwrap())
        .collect();
    assert_eq!(pairs[0], ("access_token", "tok-1"));
    assert_eq!(pairs[1].0, "timestamp");
    assert_eq!(pairs[2].0, "sign");
    let timestamp: i64 = pairs[1].1.parse().unwrap();
    assert!(
        (before..=now_ms()).contains(&timestamp),
        "timestamp in milliseconds: {timestamp}"
    );
    let expected = hmac_base64(
        secret.as_bytes(),
        format!("{timestamp}\n{secret}").as_bytes(),
    );
    let url_encoded: String = expected
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    assert_eq!(pairs[2].1, url_encoded);
}

#[tokio::test]
async fn dingtalk_without_a_secret_is_not_signed() {
    let server = Server::start().await;
    server
        .webhook(
            WebhookKind::Dingtalk,
            "/robot/send?access_token=tok-1",
            None,
        )
        .send_alert(&alert())
        .await
        .unwrap();
    assert_eq!(
        server.requests()[0].query.as_deref(),
        Some("access_token=tok-1")
    );
}

#[tokio::test]
async fn feishu_gets_text_and_a_valid_signature_in_the_body() {
    let server = Server::start().await;
    server.answer(axum::Json(json!({"code": 0, "msg": "success", "data": {}})));
    let secret = "feishu-secret";
    let before = now_ms() / 1000;
    server
        .webhook(
            WebhookKind::Feishu,
            "/open-apis/bot/v2/hook/h-1",
            Some(secret),
        )
        .send_alert(&alert())
        .await
        .unwrap();
    let request = &server.requests()[0];
    assert_eq!(request.path, "/open-apis/bot/v2/hook/h-1");
    assert_eq!(
        keys(&request.body),
        ["content", "msg_type", "sign", "timestamp"]
    );
    assert_eq!(request.body["msg_type"], "text");
    let text = request.body["content"]["text"].as_str().unwrap();
    assert!(text.starts_with(&format!("{HEADLINE}\n10 分钟内 12 次登录失败\nZhangfang security alert · HIGH · failed_login_burst\n")), "{text}");

    let timestamp: i64 = request.body["timestamp"].as_str().unwrap().parse().unwrap();
    assert!(
        (before..=now_ms() / 1000).contains(&timestamp),
        "timestamp in seconds: {timestamp}"
    );
    let expected = hmac_base64(format!("{timestamp}\n{secret}").as_bytes(), b"");
    assert_eq!(request.body["sign"], expected.as_str());
}

#[tokio::test]
async fn feishu_without_a_secret_has_no_signature_fields() {
    let server = Server::start().await;
    server
        .webhook(WebhookKind::Feishu, "/hook", None)
        .send_alert(&alert())
        .await
        .unwrap();
    assert_eq!(keys(&server.requests()[0].body), ["content", "msg_type"]);
}

#[tokio::test]
async fn a_500_is_retried_until_it_succeeds() {
    let server = Server::start().await;
    server.answer(StatusCode::INTERNAL_SERVER_ERROR);
    server
        .webhook(WebhookKind::Wecom, "/send?key=k", None)
        .send_alert(&alert())
        .await
        .unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body);
}

#[tokio::test]
async fn a_lasting_5xx_gives_up_after_three_attempts() {
    let server = Server::start().await;
    for _ in 0..5 {
        server.answer(StatusCode::SERVICE_UNAVAILABLE);
    }
    let err = server
        .webhook(WebhookKind::Generic, "/hook", None)
        .send_alert(&alert())
        .await
        .unwrap_err();
    assert!(
        matches!(err, WebhookError::Status { status: 503, .. }),
        "{err}"
    );
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn a_400_is_not_retried() {
    let server = Server::start().await;
    server.answer(StatusCode::BAD_REQUEST);
    let err = server
        .webhook(
            WebhookKind::Dingtalk,
            "/robot/send?access_token=tok-1",
            None,
        )
        .send_alert(&alert())
        .await
        .unwrap_err();
    assert!(
        matches!(err, WebhookError::Status { status: 400, .. }),
        "{err}"
    );
    assert_eq!(server.requests().len(), 1);
    assert!(!err.to_string().contains("tok-1"), "{err}");
}

#[tokio::test]
async fn a_robot_refusal_in_a_200_is_an_error_and_not_retried() {
    let server = Server::start().await;
    server.answer(axum::Json(json!({"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"})));
    let err = server
        .webhook(WebhookKind::Feishu, "/hook", Some("s"))
        .send_alert(&alert())
        .await
        .unwrap_err();
    assert!(
        matches!(err, WebhookError::Rejected { code: 19021, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("sign match fail"), "{err}");
    assert_eq!(server.requests().len(), 1);

    server.answer(axum::Json(
        json!({"errcode": 310000, "errmsg": "keywords not in content"}),
    ));
    let err = server
        .webhook(WebhookKind::Dingtalk, "/robot/send?access_token=t", None)
        .send_alert(&alert())
        .await
        .unwrap_err();
    assert!(
        matches!(err, WebhookError::Rejected { code: 310000, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = Server::start().await;
    server.answer((StatusCode::FOUND, [("location", "/elsewhere")]));
    let err = server
        .webhook(WebhookKind::Generic, "/hook", None)
        .send_alert(&alert())
        .await
        .unwrap_err();
    assert!(
        matches!(err, WebhookError::Status { status: 302, .. }),
        "{err}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn an_unreachable_receiver_is_retried_and_the_error_hides_the_url() {
    let port = support::free_port();
    let hook = Webhook::new(config(
        WebhookKind::Dingtalk,
        &format!("http://127.0.0.1:{port}/robot/send?access_token=very-secret-token"),
        Some("SECsecret"),
    ))
    .unwrap();
    let started = std::time::Instant::now();
    let err = hook.send_alert(&alert()).await.unwrap_err();
    assert!(matches!(err, WebhookError::Network { .. }), "{err}");
    assert!(
        started.elapsed() >= Duration::from_millis(2400),
        "three attempts with back-off"
    );
    let shown = format!("{err} {err:?} {hook:?}");
    assert!(!shown.contains("very-secret-token"), "{shown}");
    assert!(!shown.contains("SECsecret"), "{shown}");
    assert!(shown.contains("127.0.0.1"), "{shown}");
}

#[tokio::test]
async fn every_configured_target_gets_the_alert() {
    let server = Server::start().await;
    let hooks = Webhooks::new([
        config(
            WebhookKind::Generic,
            &format!("{}/generic", server.base),
            None,
        ),
        config(
            WebhookKind::Wecom,
            &format!("{}/wecom?key=k", server.base),
            None,
        ),
        config(
            WebhookKind::Dingtalk,
            &format!("{}/dingtalk?access_token=t", server.base),
            Some("SECx"),
        ),
        config(
            WebhookKind::Feishu,
            &format!("{}/feishu", server.base),
            Some("f"),
        ),
    ])
    .unwrap();
    assert_eq!(hooks.len(), 4);
    let results = hooks.send_alert(&alert()).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let mut paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    paths.sort();
    assert_eq!(paths, ["/dingtalk", "/feishu", "/generic", "/wecom"]);
}

#[test]
fn unsafe_urls_and_misplaced_secrets_are_refused_at_configuration() {
    let refused = |kind, url: &str, secret: Option<&str>| {
        Webhook::new(config(kind, url, secret)).unwrap_err()
    };

    let err = refused(WebhookKind::Generic, "http://siem.example.cn/hook", None);
    assert!(matches!(err, WebhookConfigError::Scheme { .. }), "{err}");
    let err = refused(WebhookKind::Generic, "http://10.0.0.8/hook", None);
    assert!(matches!(err, WebhookConfigError::Scheme { .. }), "{err}");
    let err = refused(WebhookKind::Generic, "ftp://127.0.0.1/hook", None);
    assert!(matches!(err, WebhookConfigError::Scheme { .. }), "{err}");
    let err = refused(
        WebhookKind::Wecom,
        "https://user:hunter2@qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
        None,
    );
    assert!(matches!(err, WebhookConfigError::Credentials(_)), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let err = refused(
        WebhookKind::Generic,
        "http://user@127.0.0.1:8080/hook",
        None,
    );
    assert!(matches!(err, WebhookConfigError::Credentials(_)), "{err}");
    let err = refused(WebhookKind::Generic, "not a url", None);
    assert!(matches!(err, WebhookConfigError::InvalidUrl(_)), "{err}");
    let err = refused(
        WebhookKind::Wecom,
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
        Some("s"),
    );
    assert!(matches!(err, WebhookConfigError::SecretNotUsed(_)), "{err}");
    let err = refused(
        WebhookKind::Dingtalk,
        "https://oapi.dingtalk.com/robot/send?access_token=t",
        Some(""),
    );
    assert!(matches!(err, WebhookConfigError::EmptySecret(_)), "{err}");

    for ok in [
        "https://oapi.dingtalk.com/robot/send?access_token=t",
        "https://10.0.0.8/hook",
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://[::1]:9/hook",
    ] {
        Webhook::new(config(WebhookKind::Dingtalk, ok, None)).unwrap();
    }

    let one_bad = Webhooks::new([
        config(WebhookKind::Generic, "https://siem.example.cn/hook", None),
        config(WebhookKind::Generic, "http://siem.example.cn/hook", None),
    ]);
    assert!(one_bad.is_err());
}
