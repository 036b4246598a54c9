//! Codes by e-mail over SMTP (lettre, rustls): implicit TLS (port 465), STARTTLS (587), or
//! plain text to a relay on this machine only. The password comes from an environment variable
//! or a file, never from the configuration file itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Mailbox, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::sender::{CodeMessage, CodeSender, SendError};
use super::OtpConfigError;

/// How the connection to the mail server is protected.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// TLS from the first byte (SMTPS, port 465).
    Implicit,
    /// Plain text upgraded by STARTTLS before anything is sent; refused if the server does not
    /// offer it (port 587).
    #[default]
    Starttls,
    /// No TLS: only to a relay on the loopback interface.
    None,
}

/// `[otp.smtp]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// Default: 465 for `implicit`, 587 for `starttls`, 25 for `none`.
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    /// Sign in to the server as this user; absent: no authentication.
    pub username: Option<String>,
    /// The environment variable holding the password (default `ZHANGFANG_SMTP_PASSWORD`).
    pub password_env: Option<String>,
    /// A file holding the password; wins over the environment variable.
    pub password_file: Option<PathBuf>,
    /// The sender, e.g. `"账房 <noreply@firm.example>"`.
    pub from: String,
    /// A PEM file of the CA that signed the server's certificate, besides the public roots.
    pub ca_file: Option<PathBuf>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

fn default_timeout() -> u64 {
    10
}

const DEFAULT_PASSWORD_ENV: &str = "ZHANGFANG_SMTP_PASSWORD";

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn password(config: &SmtpConfig) -> Result<Zeroizing<String>, OtpConfigError> {
    if let Some(path) = &config.password_file {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| OtpConfigError::Secret(format!("{}: {e}", path.display())))?,
        );
        return Ok(Zeroizing::new(
            text.trim_end_matches(['\r', '\n']).to_owned(),
        ));
    }
    let var = config
        .password_env
        .as_deref()
        .unwrap_or(DEFAULT_PASSWORD_ENV);
    std::env::var(var)
        .map(Zeroizing::new)
        .map_err(|_| OtpConfigError::Secret(format!("environment variable {var} is not set")))
}

fn read_ca(path: &Path) -> Result<Certificate, OtpConfigError> {
    let pem = std::fs::read(path)
        .map_err(|e| OtpConfigError::Invalid(format!("ca_file {}: {e}", path.display())))?;
    Certificate::from_pem(&pem)
        .map_err(|e| OtpConfigError::Invalid(format!("ca_file {}: {e}", path.display())))
}

pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    described: String,
}

impl SmtpSender {
    /// Checks the settings and prepares the transport; connects only when a code is sent.
    pub fn new(config: &SmtpConfig) -> Result<Self, OtpConfigError> {
        let host = config.host.trim();
        if host.is_empty() {
            return Err(OtpConfigError::Invalid("[otp.smtp] host is empty".into()));
        }
        if config.tls == SmtpTls::None && !is_loopback(host) {
            return Err(OtpConfigError::Invalid(format!(
                "[otp.smtp] tls = \"none\" is allowed only to a relay on this machine, not {host}: \
                 use \"implicit\" or \"starttls\""
            )));
        }
        let from: Mailbox = config.from.parse().map_err(|e| {
            OtpConfigError::Invalid(format!("[otp.smtp] from {:?}: {e}", config.from))
        })?;
        let port = config.port.unwrap_or(match config.tls {
            SmtpTls::Implicit => 465,
            SmtpTls::Starttls => 587,
            SmtpTls::None => 25,
        });
        let tls = || -> Result<TlsParameters, OtpConfigError> {
            let mut params = TlsParameters::builder(host.to_owned());
            if let Some(ca) = &config.ca_file {
                params = params.add_root_certificate(read_ca(ca)?);
            }
            params
                .build_rustls()
                .map_err(|e| OtpConfigError::Invalid(format!("[otp.smtp] TLS: {e}")))
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .timeout(Some(Duration::from_secs(
                config.timeout_seconds.clamp(1, 120),
            )));
        builder = match config.tls {
            SmtpTls::Implicit => builder.tls(Tls::Wrapper(tls()?)),
            SmtpTls::Starttls => builder.tls(Tls::Required(tls()?)),
            SmtpTls::None => builder.tls(Tls::None),
        };
        if let Some(user) = &config.username {
            let password = password(config)?;
            builder = builder.credentials(Credentials::new(user.clone(), password.to_string()));
        }
        let described = format!(
            "SMTP {host}:{port} ({})",
            match config.tls {
                SmtpTls::Implicit => "implicit TLS",
                SmtpTls::Starttls => "STARTTLS",
                SmtpTls::None => "plain, loopback",
            }
        );
        Ok(SmtpSender {
            transport: builder.build(),
            from,
            described,
        })
    }
}

#[async_trait]
impl CodeSender for SmtpSender {
    fn describe(&self) -> String {
        self.described.clone()
    }

    async fn send(&self, message: &CodeMessage) -> Result<(), SendError> {
        let to: Mailbox = message
            .to
            .parse()
            .map_err(|e| SendError::Message(format!("recipient: {e}")))?;
        // Base64 keeps the code on one line whatever the transport does to long lines.
        let body = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .header(ContentTransferEncoding::Base64)
            .body(message.body_text().to_string());
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject())
            .singlepart(body)
            .map_err(|e| SendError::Message(e.to_string()))?;
        self.transport.send(email).await.map(|_| ()).map_err(|e| {
            if e.is_permanent() {
                match e.status() {
                    Some(code) if code.to_string().starts_with("535") => SendError::Credentials,
                    _ => SendError::Rejected(e.to_string()),
                }
            } else {
                SendError::Unreachable(e.to_string())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(host: &str, tls: SmtpTls) -> SmtpConfig {
        SmtpConfig {
            host: host.into(),
            port: None,
            tls,
            username: None,
            password_env: None,
            password_file: None,
            from: "账房 <noreply@firm.example>".into(),
            ca_file: None,
            timeout_seconds: 10,
        }
    }

    #[test]
    fn plain_text_is_refused_beyond_this_machine_and_a_missing_password_is_named() {
        assert!(SmtpSender::new(&config("127.0.0.1", SmtpTls::None)).is_ok());
        assert!(SmtpSender::new(&config("localhost", SmtpTls::None)).is_ok());
        let e = SmtpSender::new(&config("smtp.example.com", SmtpTls::None))
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("only to a relay on this machine"),
            "{e}"
        );
        let ok = SmtpSender::new(&config("smtp.example.com", SmtpTls::Implicit)).unwrap();
        assert_eq!(ok.describe(), "SMTP smtp.example.com:465 (implicit TLS)");
        let mut c = config("smtp.example.com", SmtpTls::Starttls);
        c.username = Some("noreply".into());
        c.password_env = Some("ZF_TEST_SURELY_UNSET_SMTP_PASSWORD".into());
        let e = SmtpSender::new(&c).err().unwrap();
        assert!(
            e.to_string().contains("ZF_TEST_SURELY_UNSET_SMTP_PASSWORD"),
            "{e}"
        );
        let mut c = config("smtp.example.com", SmtpTls::Starttls);
        c.from = "not an address".into();
        assert!(SmtpSender::new(&c).is_err());
    }
}
