//! The request bodies and signatures of the four webhook formats.
//!
//! * **generic**: the [`Alert`] serialized as JSON, for the firm's own tooling.
//! * **企业微信 group robot** (`https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`):
//!   `{"msgtype":"markdown","markdown":{"content":"…"}}`. The content is at most 4096 bytes of
//!   UTF-8; lines are separated by `\n`. The robot has no signing; its key is the URL.
//! * **钉钉 custom robot** (`https://oapi.dingtalk.com/robot/send?access_token=…`):
//!   `{"msgtype":"markdown","markdown":{"title":"…","text":"…"}}`; the title is what the
//!   notification preview shows. With 加签, the string `timestamp + "\n" + secret` (timestamp in
//!   milliseconds) is signed with HMAC-SHA256 keyed by the secret, Base64-encoded, URL-encoded,
//!   and appended as `&timestamp=…&sign=…`; DingTalk refuses a timestamp more than an hour
//!   off. Its markdown needs a blank line for a line break. A robot secured by keyword instead
//!   accepts these messages when the keyword is e.g. `账房` or `告警`, which every message holds.
//! * **飞书 custom bot** (`https://open.feishu.cn/open-apis/bot/v2/hook/…`):
//!   `{"msg_type":"text","content":{"text":"…"}}`. With 签名校验, the body also carries
//!   `"timestamp"` (seconds, as a string) and `"sign"`: Base64 of HMAC-SHA256 whose *key* is
//!   `timestamp + "\n" + secret` and whose message is empty.
//!
//! The chat text is Chinese first, then English, and holds only the alert's own fields, each
//! passed through [`chat_safe`] so that nothing typed by a user becomes markup in the group.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use zeroize::Zeroizing;
use zf_audit::Alert;

use crate::text::{
    beijing_time, chat_safe, response_zh, rfc3339_utc_ms, rule_zh, severity_zh, truncate_bytes,
};

/// WeCom refuses markdown content longer than this many bytes.
const WECOM_MAX_BYTES: usize = 4096;
const SUMMARY_MAX_CHARS: usize = 500;
const VALUE_MAX_CHARS: usize = 128;

#[derive(Debug)]
pub(crate) struct InvalidKey;

fn hmac_sha256_base64(key: &[u8], message: &[u8]) -> Result<String, InvalidKey> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| InvalidKey)?;
    mac.update(message);
    Ok(base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// DingTalk's `sign` before URL encoding.
pub(crate) fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> Result<String, InvalidKey> {
    let string_to_sign = Zeroizing::new(format!("{timestamp_ms}\n{secret}"));
    hmac_sha256_base64(secret.as_bytes(), string_to_sign.as_bytes())
}

/// Feishu's `sign`.
pub(crate) fn feishu_sign(secret: &str, timestamp_s: i64) -> Result<String, InvalidKey> {
    let key = Zeroizing::new(format!("{timestamp_s}\n{secret}"));
    hmac_sha256_base64(key.as_bytes(), b"")
}

/// The alert in words, before any format's markup.
struct AlertText {
    /// `【账房安全告警】高 · 短时间内大量登录失败`
    headline: String,
    summary: String,
    /// `Zhangfang security alert · HIGH · failed_login_burst`
    english: String,
    details: Vec<String>,
}

impl AlertText {
    fn new(alert: &Alert) -> Self {
        let rule = chat_safe(&alert.rule, VALUE_MAX_CHARS);
        let rule_name = rule_zh(&alert.rule).map_or_else(|| rule.clone(), str::to_owned);
        let headline = format!(
            "【账房安全告警】{} · {}",
            severity_zh(alert.severity),
            rule_name
        );
        let english = format!(
            "Zhangfang security alert · {} · {}",
            alert.severity.as_str().to_uppercase(),
            rule
        );
        let value = |s: &str| chat_safe(s, VALUE_MAX_CHARS);

        let mut details = Vec::new();
        let user = match (&alert.username, &alert.user_id) {
            (Some(name), Some(id)) => Some(format!("{}（{}）", value(name), value(id))),
            (Some(name), None) => Some(value(name)),
            (None, Some(id)) => Some(value(id)),
            (None, None) => None,
        };
        if let Some(user) = user {
            details.push(format!("用户 User：{user}"));
        }
        if let Some(source) = &alert.source {
            details.push(format!("来源 Source：{}", value(source)));
        }
        if let Some(seq) = alert.event_seq {
            details.push(format!("触发事件 Event：#{seq}"));
        }
        if !alert.responses.is_empty() {
            let responses: Vec<String> = alert
                .responses
                .iter()
                .map(|r| match response_zh(r) {
                    Some(zh) => format!("{zh} {}", value(r)),
                    None => value(r),
                })
                .collect();
            details.push(format!("处置 Response：{}", responses.join("、")));
        }
        if let (Some(local), Some(utc)) = (beijing_time(alert.at_ms), rfc3339_utc_ms(alert.at_ms)) {
            details.push(format!("时间 Time：{local} 北京时间（{utc}）"));
        }
        details.push(format!("告警编号 Alert ID：{}", value(&alert.id)));

        AlertText {
            headline,
            summary: chat_safe(&alert.summary, SUMMARY_MAX_CHARS),
            english,
            details,
        }
    }

    fn plain(&self) -> String {
        let mut lines = vec![
            self.headline.clone(),
            self.summary.clone(),
            self.english.clone(),
        ];
        lines.extend(self.details.iter().cloned());
        lines.join("\n")
    }

    /// Markdown common to WeCom and DingTalk, lines joined by `separator`.
    fn markdown(&self, separator: &str) -> String {
        let mut lines = vec![
            format!("### {}", self.headline),
            format!("**{}**", self.summary),
            self.english.clone(),
        ];
        lines.extend(self.details.iter().map(|d| format!("> {d}")));
        lines.join(separator)
    }
}

pub(crate) fn generic(alert: &Alert) -> Result<Value, serde_json::Error> {
    serde_json::to_value(alert)
}

pub(crate) fn wecom(alert: &Alert) -> Value {
    let content = AlertText::new(alert).markdown("\n");
    json!({
        "msgtype": "markdown",
        "markdown": { "content": truncate_bytes(&content, WECOM_MAX_BYTES) },
    })
}

pub(crate) fn dingtalk(alert: &Alert) -> Value {
    let text = AlertText::new(alert);
    json!({
        "msgtype": "markdown",
        "markdown": { "title": text.headline, "text": text.markdown("\n\n") },
    })
}

/// `signature` is `(timestamp in seconds, sign)` when the bot has a secret.
pub(crate) fn feishu(alert: &Alert, signature: Option<(i64, String)>) -> Value {
    let mut body = json!({
        "msg_type": "text",
        "content": { "text": AlertText::new(alert).plain() },
    });
    if let (Some((timestamp, sign)), Some(object)) = (signature, body.as_object_mut()) {
        object.insert("timestamp".into(), Value::String(timestamp.to_string()));
        object.insert("sign".into(), Value::String(sign));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use zf_audit::Severity;

    fn alert() -> Alert {
        Alert {
            id: "al-1".into(),
            at_ms: 1_714_552_200_123,
            rule: "failed_login_burst".into(),
            severity: Severity::High,
            user_id: Some("u-7".into()),
            username: Some("张三".into()),
            source: Some("203.0.113.9".into()),
            summary: "10 分钟内 12 次登录失败 / 12 failed sign-ins in 10 minutes".into(),
            event_seq: Some(42),
            responses: vec!["alert".into(), "lock_account".into()],
        }
    }

    #[test]
    fn feishu_text_is_chinese_first_then_english() {
        let body = feishu(&alert(), None);
        assert_eq!(
            body["content"]["text"],
            "【账房安全告警】高 · 短时间内大量登录失败\n\
             10 分钟内 12 次登录失败 / 12 failed sign-ins in 10 minutes\n\
             Zhangfang security alert · HIGH · failed_login_burst\n\
             用户 User：张三（u-7）\n\
             来源 Source：203.0.113.9\n\
             触发事件 Event：#42\n\
             处置 Response：仅告警 alert、锁定账户 lock_account\n\
             时间 Time：2024-05-01 16:30:00 北京时间（2024-05-01T08:30:00.123Z）\n\
             告警编号 Alert ID：al-1"
        );
        assert!(body.get("sign").is_none());
    }

    #[test]
    fn unknown_rules_and_missing_fields() {
        let mut a = alert();
        a.rule = "new_rule".into();
        a.severity = Severity::Critical;
        a.username = None;
        a.source = None;
        a.event_seq = None;
        a.responses = vec!["quarantine".into()];
        let text = AlertText::new(&a).plain();
        assert!(
            text.starts_with("【账房安全告警】严重 · new_rule\n"),
            "{text}"
        );
        assert!(text.contains("\n用户 User：u-7\n"), "{text}");
        assert!(text.contains("\n处置 Response：quarantine\n"), "{text}");
        assert!(
            !text.contains("来源") && !text.contains("触发事件"),
            "{text}"
        );
    }

    #[test]
    fn user_text_cannot_become_markup() {
        let mut a = alert();
        a.username = Some("<@all>[点此解锁](http://evil.example)\n### 伪造".into());
        let content = wecom(&a)["markdown"]["content"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(!content.contains("<@all>"), "{content}");
        assert!(!content.contains("](http"), "{content}");
        assert_eq!(content.lines().filter(|l| l.starts_with("###")).count(), 1);
    }

    #[test]
    fn wecom_content_fits_its_limit() {
        let mut a = alert();
        a.summary = "告".repeat(2000);
        a.username = Some("张".repeat(2000));
        a.source = Some("源".repeat(2000));
        let body = wecom(&a);
        assert!(body["markdown"]["content"].as_str().unwrap().len() <= WECOM_MAX_BYTES);
    }

    #[test]
    fn signatures_match_the_vendors_examples() {
        // Computed independently with Python's hmac/hashlib/base64 following each vendor's
        // documented algorithm.
        assert_eq!(
            dingtalk_sign("SECtest", 1_700_000_000_000).unwrap(),
            "aZLLrriXgn05YbwaGR7knYsLeJADjr9NwLaNNKpxh4g="
        );
        assert_eq!(
            feishu_sign("test-secret", 1_700_000_000).unwrap(),
            "mbm4Y4oluIPQ00qlBIhX8vAZ0EKv3nw0LuTb91jPL84="
        );
    }
}
