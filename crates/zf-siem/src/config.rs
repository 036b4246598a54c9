//! What an operator configures: one syslog destination and any number of chat/webhook targets.
//! Unknown keys are refused so a misspelt option cannot silently leave export switched off.

use std::fmt;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use crate::syslog::Facility;

/// An RFC 5425 (syslog over TLS) destination.
///
/// ```toml
/// address = "siem.example.cn:6514"
/// server_name = "siem.example.cn"
/// ca_file = "/etc/zhangfang/siem-ca.pem"
/// facility = "local4"          # optional, default "authpriv"
/// hostname = "crm-1"           # optional, default: this machine's host name
/// queue_capacity = 10000       # optional, lines held while the SIEM is unreachable
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// `host:port` (`[v6]:port` for an IPv6 literal).
    pub address: String,
    /// The name the server's certificate must carry (DNS name or IP address).
    pub server_name: String,
    /// PEM file with the CA certificate(s) that may issue the server's certificate; the system
    /// trust store is deliberately not used, so only the firm's own SIEM CA is trusted.
    pub ca_file: PathBuf,
    #[serde(default)]
    pub facility: Facility,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub queue_capacity: Option<usize>,
}

impl SyslogConfig {
    /// The minimal configuration; optional settings take their defaults.
    pub fn new(
        address: impl Into<String>,
        server_name: impl Into<String>,
        ca_file: impl Into<PathBuf>,
    ) -> Self {
        SyslogConfig {
            address: address.into(),
            server_name: server_name.into(),
            ca_file: ca_file.into(),
            facility: Facility::default(),
            hostname: None,
            queue_capacity: None,
        }
    }
}

/// The message format a webhook target expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookKind {
    /// The alert itself as JSON.
    Generic,
    /// 企业微信 group robot.
    Wecom,
    /// 钉钉 custom robot.
    Dingtalk,
    /// 飞书 custom bot.
    Feishu,
}

impl WebhookKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookKind::Generic => "generic",
            WebhookKind::Wecom => "wecom",
            WebhookKind::Dingtalk => "dingtalk",
            WebhookKind::Feishu => "feishu",
        }
    }
}

impl fmt::Display for WebhookKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A webhook target for alerts.
///
/// ```toml
/// kind = "dingtalk"
/// url = "https://oapi.dingtalk.com/robot/send?access_token=…"
/// secret = "SEC…"              # optional: the robot's 加签 secret (DingTalk, Feishu only)
/// ```
///
/// The robots' URLs carry their access token, so the URL is treated as a secret too: `Debug`
/// shows only its scheme and host.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub kind: WebhookKind,
    pub url: String,
    #[serde(default)]
    pub secret: Option<SecretString>,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("kind", &self.kind)
            .field("url", &redacted_url(&self.url))
            .field("secret", &self.secret.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// `scheme://host/…` of `url`, for logs and `Debug`.
pub(crate) fn redacted_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => format!(
            "{}://{}/…",
            parsed.scheme(),
            parsed.host_str().unwrap_or("?")
        ),
        Err(_) => "[unparsable URL]".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_config_defaults_and_refuses_unknown_keys() {
        let config: SyslogConfig = serde_json::from_str(
            r#"{"address":"siem:6514","server_name":"siem","ca_file":"/etc/ca.pem"}"#,
        )
        .unwrap();
        assert_eq!(config.facility, Facility::Authpriv);
        assert_eq!(config.hostname, None);
        let config: SyslogConfig = serde_json::from_str(
            r#"{"address":"siem:6514","server_name":"siem","ca_file":"/etc/ca.pem","facility":"local5"}"#,
        )
        .unwrap();
        assert_eq!(config.facility, Facility::Local5);
        let err = serde_json::from_str::<SyslogConfig>(
            r#"{"address":"siem:6514","server_name":"siem","ca_file":"/etc/ca.pem","facilty":"local5"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `facilty`"), "{err}");
        assert!(serde_json::from_str::<SyslogConfig>(
            r#"{"address":"siem:6514","server_name":"siem","ca_file":"/etc/ca.pem","facility":"local8"}"#,
        )
        .is_err());
    }

    #[test]
    fn webhook_config_debug_hides_the_token_and_secret() {
        let config: WebhookConfig = serde_json::from_str(
            r#"{"kind":"dingtalk","url":"https://oapi.dingtalk.com/robot/send?access_token=tok123","secret":"SECabc"}"#,
        )
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("tok123"), "{shown}");
        assert!(!shown.contains("SECabc"), "{shown}");
        assert!(shown.contains("https://oapi.dingtalk.com/…"), "{shown}");
        assert!(serde_json::from_str::<WebhookConfig>(
            r#"{"kind":"slack","url":"https://x.example"}"#
        )
        .is_err());
        assert!(serde_json::from_str::<WebhookConfig>(
            r#"{"kind":"wecom","url":"https://x.example","token":"t"}"#
        )
        .is_err());
    }
}
