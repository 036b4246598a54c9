//! Alerts (not every event) to webhooks: a generic JSON receiver and the WeCom, DingTalk and
//! Feishu group robots. The formats are described in `payload.rs`.
//!
//! Outgoing requests are a way into the firm's network if the URL can point anywhere, so a
//! URL is checked once, when the configuration is loaded: `https://` only (plain `http://` is
//! allowed for loopback hosts, which is what tests use), no user name or password in it, and
//! redirects are never followed. A robot's URL holds its access token, so neither the URL nor
//! the secret appears in logs or errors; only the host does.
//!
//! Delivery makes up to three attempts with back-off when the network fails or the receiver
//! answers 5xx; a 4xx, or a robot's explicit refusal in a 200 answer (`errcode`/`code` not 0,
//! e.g. a bad signature or missing keyword), is final because repeating it cannot help.

mod payload;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use zf_audit::Alert;

use crate::config::{WebhookConfig, WebhookKind};
use crate::text::{chat_safe, one_line};

const ATTEMPTS: u32 = 3;
const RETRY_DELAYS: [Duration; 2] = [Duration::from_millis(500), Duration::from_secs(2)];
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Robots answer with a few dozen bytes; anything past this is not read.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WebhookConfigError {
    #[error("the {0} webhook URL is not a valid absolute URL")]
    InvalidUrl(WebhookKind),
    #[error("the {kind} webhook URL must use https:// (http:// only for loopback hosts), not {scheme}://")]
    Scheme { kind: WebhookKind, scheme: String },
    #[error("the {0} webhook URL must not contain a user name or password")]
    Credentials(WebhookKind),
    #[error("{0} webhooks are not signed; remove the secret")]
    SecretNotUsed(WebhookKind),
    #[error("the {0} webhook secret is empty")]
    EmptySecret(WebhookKind),
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{kind} webhook at {host} answered HTTP {status}")]
    Status {
        kind: WebhookKind,
        host: String,
        status: u16,
    },
    #[error("{kind} webhook at {host} refused the message: code {code}: {message}")]
    Rejected {
        kind: WebhookKind,
        host: String,
        code: i64,
        message: String,
    },
    #[error("{kind} webhook at {host} could not be reached: {reason}")]
    Network {
        kind: WebhookKind,
        host: String,
        reason: String,
    },
    #[error("cannot build the {0} webhook message")]
    Build(WebhookKind),
}

/// One configured webhook target.
pub struct Webhook {
    kind: WebhookKind,
    url: reqwest::Url,
    host: String,
    secret: Option<SecretString>,
    client: reqwest::Client,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("kind", &self.kind)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

impl Webhook {
    /// Checks the configuration (see the module documentation) and prepares the client.
    pub fn new(config: WebhookConfig) -> Result<Self, WebhookConfigError> {
        let kind = config.kind;
        let url =
            reqwest::Url::parse(&config.url).map_err(|_| WebhookConfigError::InvalidUrl(kind))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(WebhookConfigError::Credentials(kind));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or(WebhookConfigError::InvalidUrl(kind))?
            .to_owned();
        match url.scheme() {
            "https" => {}
            "http" if is_loopback_host(&host) => {}
            other => {
                return Err(WebhookConfigError::Scheme {
                    kind,
                    scheme: chat_safe(other, 16),
                })
            }
        }
        match (kind, &config.secret) {
            (WebhookKind::Generic | WebhookKind::Wecom, Some(_)) => {
                return Err(WebhookConfigError::SecretNotUsed(kind))
            }
            (_, Some(secret)) if secret.expose_secret().is_empty() => {
                return Err(WebhookConfigError::EmptySecret(kind))
            }
            _ => {}
        }
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("zhangfang/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| WebhookConfigError::Client(error_chain(&e.without_url())))?;
        Ok(Webhook {
            kind,
            url,
            host,
            secret: config.secret,
            client,
        })
    }

    pub fn kind(&self) -> WebhookKind {
        self.kind
    }

    /// The host the alerts go to (the only part of the URL that is not secret).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Delivers `alert`, retrying as described in the module documentation.
    #[tracing::instrument(skip_all, fields(kind = %self.kind, host = %self.host, alert = %alert.id))]
    pub async fn send_alert(&self, alert: &Alert) -> Result<(), WebhookError> {
        let mut attempt = 1;
        loop {
            match self.attempt(alert).await {
                Ok(()) => return Ok(()),
                Err(Failure::Retry(e)) if attempt < ATTEMPTS => {
                    tracing::warn!(attempt, error = %e, "webhook delivery failed; retrying");
                    let delay = RETRY_DELAYS
                        .get(attempt as usize - 1)
                        .copied()
                        .unwrap_or(Duration::from_secs(2));
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(Failure::Retry(e) | Failure::Final(e)) => {
                    tracing::warn!(attempt, error = %e, "webhook delivery failed");
                    return Err(e);
                }
            }
        }
    }

    async fn attempt(&self, alert: &Alert) -> Result<(), Failure> {
        let (url, body) = self.request(alert).map_err(Failure::Final)?;
        let network = |e: reqwest::Error| {
            Failure::Retry(WebhookError::Network {
                kind: self.kind,
                host: self.host.clone(),
                reason: error_chain(&e.without_url()),
            })
        };
        let mut response = self
            .client
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(network)?;
        let status = response.status();
        if !status.is_success() {
            let error = WebhookError::Status {
                kind: self.kind,
                host: self.host.clone(),
                status: status.as_u16(),
            };
            return Err(if status.is_server_error() {
                Failure::Retry(error)
            } else {
                Failure::Final(error)
            });
        }
        let mut answer = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(network)? {
            answer.extend_from_slice(&chunk);
            if answer.len() > MAX_RESPONSE_BYTES {
                break;
            }
        }
        match self.refusal(&answer) {
            Some((code, message)) => Err(Failure::Final(WebhookError::Rejected {
                kind: self.kind,
                host: self.host.clone(),
                code,
                message,
            })),
            None => Ok(()),
        }
    }

    /// The URL and body of one attempt; signatures are made afresh because the robots refuse
    /// old timestamps.
    fn request(&self, alert: &Alert) -> Result<(reqwest::Url, Value), WebhookError> {
        let build_error = |_| WebhookError::Build(self.kind);
        let mut url = self.url.clone();
        let body = match self.kind {
            WebhookKind::Generic => {
                payload::generic(alert).map_err(|_| WebhookError::Build(self.kind))?
            }
            WebhookKind::Wecom => payload::wecom(alert),
            WebhookKind::Dingtalk => {
                if let Some(secret) = &self.secret {
                    let timestamp = now_ms();
                    let sign = payload::dingtalk_sign(secret.expose_secret(), timestamp)
                        .map_err(build_error)?;
                    url.query_pairs_mut()
                        .append_pair("timestamp", &timestamp.to_string())
                        .append_pair("sign", &sign);
                }
                payload::dingtalk(alert)
            }
            WebhookKind::Feishu => {
                let signature = match &self.secret {
                    Some(secret) => {
                        let timestamp = now_ms() / 1000;
                        let sign = payload::feishu_sign(secret.expose_secret(), timestamp)
                            .map_err(build_error)?;
                        Some((timestamp, sign))
                    }
                    None => None,
                };
                payload::feishu(alert, signature)
            }
        };
        Ok((url, body))
    }

    /// A robot's refusal inside a 200 answer: WeCom and DingTalk say `errcode`, Feishu `code`.
    fn refusal(&self, answer: &[u8]) -> Option<(i64, String)> {
        let field = match self.kind {
            WebhookKind::Generic => return None,
            WebhookKind::Wecom | WebhookKind::Dingtalk => ("errcode", "errmsg"),
            WebhookKind::Feishu => ("code", "msg"),
        };
        let answer: Value = serde_json::from_slice(answer).ok()?;
        let code = answer.get(field.0)?.as_i64()?;
        if code == 0 {
            return None;
        }
        let message = answer
            .get(field.1)
            .and_then(Value::as_str)
            .map(|m| chat_safe(m, 200))
            .unwrap_or_default();
        Some((code, message))
    }
}

enum Failure {
    Retry(WebhookError),
    Final(WebhookError),
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// An error and its causes on one line. The caller strips the URL first: reqwest puts it in
/// its message, and a robot's URL is its access token.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    one_line(&text)
}

/// All configured webhook targets.
#[derive(Debug, Default)]
pub struct Webhooks {
    hooks: Vec<Webhook>,
}

impl Webhooks {
    /// Checks every configuration; one bad target refuses the whole set, so a typo is found
    /// at start-up rather than when the first alert goes missing.
    pub fn new(
        configs: impl IntoIterator<Item = WebhookConfig>,
    ) -> Result<Self, WebhookConfigError> {
        let hooks = configs
            .into_iter()
            .map(Webhook::new)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Webhooks { hooks })
    }

    pub fn len(&self) -> usize {
        self.hooks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// Sends `alert` to every target at once; one result per target, in configuration order.
    pub async fn send_alert(&self, alert: &Alert) -> Vec<Result<(), WebhookError>> {
        futures::future::join_all(self.hooks.iter().map(|hook| hook.send_alert(alert))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in ["localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "[::1]"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "example.cn",
            "10.0.0.1",
            "[::2]",
            "localhost.example.cn",
            "0.0.0.0",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn error_chain_has_no_url() {
        let err = std::io::Error::other("connection refused");
        assert_eq!(error_chain(&err), "connection refused");
    }
}
