//! One-time codes by e-mail or SMS as a second factor (OWASP ASVS V2.7, out-of-band verifiers).
//!
//! A user registers an address, which a first code confirms; from then on a code sent there
//! completes a sign-in or a step-up, where the MFA policy accepts codes for the user's role
//! (`[mfa] code_roles`; NIST SP 800-63B restricts SMS and does not count e-mail, so by default
//! administrators must use an authenticator app). Codes are six digits from the operating
//! system's CSPRNG, stored only as a keyed hash bound to user, purpose and channel, valid for a
//! few minutes, used once, compared at most `max_attempts` times, throttled per user, and a new
//! code voids the one before. Addresses are sealed under the MFA system key. Codes never reach
//! the log; every code sent, accepted or refused is an audit event.

mod file;
mod sender;
mod smtp;

use std::path::PathBuf;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;
use zf_audit::{Actor, AuditAction, AuditEvent, Outcome};
use zf_domain::{Email, Mobile, UserId};
use zf_policy::{Authentication, Denied, Factors, Grant, Principal};
use zf_store::{
    FactorUse, OtpChannel, OtpConfirm, OtpIssue, OtpIssued, OtpPurpose, StoreError, UserRow,
};

pub use file::{FileSender, Outbox};
pub use sender::{CodeMessage, CodeSender, SendError};
pub use smtp::{SmtpConfig, SmtpSender, SmtpTls};

use crate::{actor, App, AppError, LoginOutcome, RequestMeta, SessionContext};

/// Digits in a code.
pub const CODE_DIGITS: usize = 6;

/// Which implementation delivers a channel's codes.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SenderKind {
    /// `[otp.smtp]` (e-mail only).
    Smtp,
    /// The development outbox, `[otp.file]`.
    File,
}

/// `[otp.file]`: the development outbox.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileSenderConfig {
    /// Relative to the data directory; `"-"` for standard error.
    pub path: PathBuf,
}

impl Default for FileSenderConfig {
    fn default() -> Self {
        FileSenderConfig {
            path: PathBuf::from("otp-outbox.log"),
        }
    }
}

/// `[otp]`: which channels can carry codes, and the rules for codes. Without a sender for a
/// channel, nobody can register an address on it; without the section, codes are off.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtpConfig {
    pub email: Option<SenderKind>,
    pub sms: Option<SenderKind>,
    pub valid_minutes: i64,
    pub max_attempts: i64,
    pub resend_seconds: i64,
    pub max_per_hour: i64,
    pub smtp: Option<SmtpConfig>,
    pub file: FileSenderConfig,
}

impl Default for OtpConfig {
    fn default() -> Self {
        OtpConfig {
            email: None,
            sms: None,
            valid_minutes: 5,
            max_attempts: 5,
            resend_seconds: 60,
            max_per_hour: 5,
            smtp: None,
            file: FileSenderConfig::default(),
        }
    }
}

impl OtpConfig {
    /// Places the development outbox in the data directory unless it is absolute or stderr.
    pub fn within(mut self, data_dir: &std::path::Path) -> Self {
        if self.file.path != std::path::Path::new("-") {
            self.file.path = data_dir.join(&self.file.path);
        }
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OtpConfigError {
    #[error("[otp] {0}")]
    Invalid(String),
    #[error("[otp.smtp] password: {0}")]
    Secret(String),
}

/// The senders of a deployment, one per channel that has one.
#[derive(Clone, Default)]
pub struct Senders {
    email: Option<Arc<dyn CodeSender>>,
    sms: Option<Arc<dyn CodeSender>>,
}

impl Senders {
    /// Builds the configured senders, refusing settings that cannot work (an unset password,
    /// plain text beyond loopback, limits out of range).
    pub fn from_config(config: &OtpConfig) -> Result<Self, OtpConfigError> {
        let range = |name: &str, v: i64, lo: i64, hi: i64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(OtpConfigError::Invalid(format!(
                    "{name} must be between {lo} and {hi}, not {v}"
                )))
            }
        };
        range("valid_minutes", config.valid_minutes, 1, 15)?;
        range("max_attempts", config.max_attempts, 1, 10)?;
        range("resend_seconds", config.resend_seconds, 10, 3600)?;
        range("max_per_hour", config.max_per_hour, 1, 60)?;
        let file = || -> Arc<dyn CodeSender> {
            let outbox = if config.file.path == std::path::Path::new("-") {
                Outbox::Stderr
            } else {
                Outbox::File(config.file.path.clone())
            };
            Arc::new(FileSender::new(outbox))
        };
        let email: Option<Arc<dyn CodeSender>> = match config.email {
            None => None,
            Some(SenderKind::File) => Some(file()),
            Some(SenderKind::Smtp) => {
                let smtp = config.smtp.as_ref().ok_or_else(|| {
                    OtpConfigError::Invalid("email = \"smtp\" needs an [otp.smtp] section".into())
                })?;
                Some(Arc::new(SmtpSender::new(smtp)?))
            }
        };
        let sms: Option<Arc<dyn CodeSender>> = match config.sms {
            None => None,
            Some(SenderKind::File) => Some(file()),
            Some(SenderKind::Smtp) => {
                return Err(OtpConfigError::Invalid(
                    "sms cannot be sent by SMTP; no SMS gateway is built in yet, use \"file\" for development".into(),
                ))
            }
        };
        Ok(Senders { email, sms })
    }

    /// Senders given directly (a gateway built outside the configuration).
    pub fn new(email: Option<Arc<dyn CodeSender>>, sms: Option<Arc<dyn CodeSender>>) -> Self {
        Senders { email, sms }
    }

    pub fn get(&self, channel: OtpChannel) -> Option<&Arc<dyn CodeSender>> {
        match channel {
            OtpChannel::Email => self.email.as_ref(),
            OtpChannel::Sms => self.sms.as_ref(),
        }
    }

    /// One line per configured channel, for the start-up log.
    pub fn describe(&self) -> Vec<String> {
        OtpChannel::ALL
            .into_iter()
            .filter_map(|c| {
                self.get(c)
                    .map(|s| format!("{}: {}", c.as_str(), s.describe()))
            })
            .collect()
    }
}

/// A way to present the second factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactorMethod {
    Totp,
    RecoveryCode,
    Email,
    Sms,
}

impl SecondFactorMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            SecondFactorMethod::Totp => "totp",
            SecondFactorMethod::RecoveryCode => "recovery_code",
            SecondFactorMethod::Email => "email",
            SecondFactorMethod::Sms => "sms",
        }
    }

    pub fn channel(self) -> Option<OtpChannel> {
        match self {
            SecondFactorMethod::Email => Some(OtpChannel::Email),
            SecondFactorMethod::Sms => Some(OtpChannel::Sms),
            SecondFactorMethod::Totp | SecondFactorMethod::RecoveryCode => None,
        }
    }

    /// The methods the second-factor endpoints accept from a user with `factors`, in the
    /// order offered (a security key answers at its own endpoints).
    pub fn offered(factors: Factors) -> Vec<SecondFactorMethod> {
        [
            (factors.totp, SecondFactorMethod::Totp),
            (factors.recovery_code, SecondFactorMethod::RecoveryCode),
            (factors.email, SecondFactorMethod::Email),
            (factors.sms, SecondFactorMethod::Sms),
        ]
        .into_iter()
        .filter_map(|(has, m)| has.then_some(m))
        .collect()
    }
}

/// A code on its way: where (masked) and until when.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CodeSent {
    #[schema(value_type = String)]
    pub channel: &'static str,
    /// The address, masked (`l***@example.com`, `138****5678`).
    pub to: String,
    /// Unix time in milliseconds after which the code no longer works.
    pub expires_at: i64,
    /// Unix time in milliseconds before which no new code is sent.
    pub resend_after: i64,
}

/// A registered address as its user sees it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CodeFactorView {
    #[schema(value_type = String)]
    pub channel: &'static str,
    /// The confirmed address, masked; absent until one is confirmed.
    pub address: Option<String>,
    /// A new address waiting for its first code, masked.
    pub pending: Option<String>,
    pub confirmed_at: Option<i64>,
    /// Whether the MFA policy counts it as a second factor for the user's role.
    pub accepted: bool,
}

/// Six decimal digits, uniformly: a 32-bit draw is rejected above the largest multiple of a
/// million, so no code is likelier than another.
fn new_code() -> Zeroizing<String> {
    const SPAN: u32 = 1_000_000;
    const LIMIT: u32 = u32::MAX - (u32::MAX % SPAN);
    loop {
        let n = u32::from_be_bytes(zf_crypto::random_bytes::<4>());
        if n < LIMIT {
            return Zeroizing::new(format!("{:06}", n % SPAN));
        }
    }
}

/// A code as typed: digits, with spaces or a dash allowed between them.
fn normalize_code(text: &str) -> Option<Zeroizing<String>> {
    let mut out = Zeroizing::new(String::with_capacity(CODE_DIGITS));
    for c in text.trim().chars().filter(|c| !matches!(c, ' ' | '-')) {
        if !c.is_ascii_digit() {
            return None;
        }
        out.push(c);
    }
    (out.len() == CODE_DIGITS).then_some(out)
}

fn masked(channel: OtpChannel, address: &str) -> String {
    match channel {
        OtpChannel::Email => Email::parse(address).map_or_else(|_| "***".into(), |e| e.masked()),
        OtpChannel::Sms => Mobile::parse(address).map_or_else(|_| "***".into(), |m| m.masked()),
    }
}

/// The address as the channel's domain type has it, or why it is not one.
fn parse_address(channel: OtpChannel, text: &str) -> Result<Zeroizing<String>, AppError> {
    match channel {
        OtpChannel::Email => Email::parse(text)
            .map(|e| Zeroizing::new(e.as_str().to_owned()))
            .map_err(|e| AppError::Invalid(format!("e-mail address: {e}"))),
        OtpChannel::Sms => Mobile::parse(text)
            .map(|m| Zeroizing::new(m.as_str().to_owned()))
            .map_err(|e| AppError::Invalid(format!("mobile number: {e}"))),
    }
}

fn channel_name(channel: OtpChannel) -> &'static str {
    match channel {
        OtpChannel::Email => "e-mail",
        OtpChannel::Sms => "SMS",
    }
}

impl App {
    /// The user's second factors that the policy accepts for their role: an authenticator app
    /// (with its recovery codes), a confirmed address for codes by e-mail or SMS (only for
    /// `[mfa] code_roles`), security keys and passkeys. The one place that decides whether a
    /// user counts as enrolled (sign-in asks for a second factor, a role that requires one is
    /// satisfied) and what a challenge offers.
    pub fn factors(&self, user: &UserRow) -> Factors {
        let codes = self.config.mfa.accepts_codes(user.role);
        Factors {
            totp: user.totp_enrolled,
            recovery_code: user.totp_enrolled,
            email: codes && user.code_email,
            sms: codes && user.code_sms,
            security_key: user.security_keys > 0,
        }
    }

    /// Whether the user has a second factor the policy accepts for their role.
    pub(crate) fn second_factor_enrolled(&self, user: &UserRow) -> bool {
        self.factors(user).any()
    }

    /// One's own registered addresses, masked.
    pub async fn code_factors(
        &self,
        session: &SessionContext,
    ) -> Result<Vec<CodeFactorView>, AppError> {
        let p = &session.principal;
        let accepted = self.config.mfa.accepts_codes(p.role);
        let mut out = Vec::new();
        for f in self.store.otp_factors(p.user_id).await? {
            let open = |s: &Option<zf_crypto::Sealed>| -> Result<Option<String>, AppError> {
                s.as_ref()
                    .map(|s| {
                        let a = self.keys.open_otp_address(p.user_id, f.channel, s)?;
                        Ok(masked(f.channel, &a))
                    })
                    .transpose()
            };
            out.push(CodeFactorView {
                channel: f.channel.as_str(),
                address: open(&f.address)?,
                pending: open(&f.pending_address)?,
                confirmed_at: f.confirmed_at_ms,
                accepted,
            });
        }
        Ok(out)
    }

    /// What delivers each channel's codes, for the start-up log.
    pub fn code_senders_described(&self) -> Vec<String> {
        self.senders.describe()
    }

    /// The channels this deployment can send codes over.
    pub fn code_channels(&self) -> Vec<OtpChannel> {
        OtpChannel::ALL
            .into_iter()
            .filter(|c| self.senders.get(*c).is_some())
            .collect()
    }

    /// Registers (or replaces) the address codes go to over `channel` and sends a first code
    /// there to confirm it. Replacing a second factor the user already has takes a fresh one.
    pub async fn code_factor_begin(
        &self,
        grant: &Grant,
        session: &SessionContext,
        channel: OtpChannel,
        address: &str,
        meta: &RequestMeta,
    ) -> Result<CodeSent, AppError> {
        let p = &session.principal;
        if !self.config.mfa.accepts_codes(p.role) {
            return Err(AppError::Invalid(format!(
                "codes by e-mail or SMS do not count as a second factor for your role ({}): set up an authenticator app",
                p.role
            )));
        }
        if self.senders.get(channel).is_none() {
            return Err(AppError::Invalid(format!(
                "this server sends no {} codes: the administrator has not configured [otp] {}",
                channel_name(channel),
                channel.as_str()
            )));
        }
        let address = parse_address(channel, address)?;
        if p.authentication == (Authentication::MultiFactor { fresh: false }) {
            return Err(Denied::StepUpRequired {
                operation: "mfa_code_enrol",
                enrolled: true,
                factors: p.factors,
            }
            .into());
        }
        let now = self.now_ms();
        let sealed = self
            .keys
            .seal_otp_address(p.user_id, channel, address.as_str());
        let event = AuditEvent::new(
            now,
            actor(grant, meta),
            AuditAction::MfaEnrolmentStarted,
            Outcome::Success,
        )
        .on("user", p.username.as_str())
        .detail(format!(
            "{} code to {}",
            channel.as_str(),
            masked(channel, &address)
        ))
        .request(meta.request_id.clone());
        self.store
            .otp_factor_begin(p.user_id, channel, sealed, now, event)
            .await?;
        self.send_code(
            p,
            channel,
            address,
            OtpPurpose::Enrol,
            actor(grant, meta),
            meta,
        )
        .await
    }

    /// Confirms the address being registered with the code sent to it. The session continues
    /// under a new id with a verified factor.
    pub async fn code_factor_confirm(
        &self,
        grant: &Grant,
        session: &SessionContext,
        code: &SecretString,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, AppError> {
        let p = &session.principal;
        let now = self.now_ms();
        let matched = match normalize_code(code.expose_secret()) {
            Some(code) => {
                self.claim_code(p.user_id, OtpPurpose::Enrol, None, &code)
                    .await?
            }
            None => None,
        };
        let refuse = |why: &'static str| {
            AuditEvent::new(
                now,
                actor(grant, meta),
                AuditAction::MfaEnabled,
                Outcome::Failed,
            )
            .on("user", p.username.as_str())
            .detail(why)
            .request(meta.request_id.clone())
        };
        let Some((channel, hash)) = matched else {
            self.store
                .audit_append(refuse("wrong, expired or used confirmation code"))
                .await?;
            return Err(AppError::Invalid(
                "the code does not match, has expired or was used: ask for a new one".into(),
            ));
        };
        let (token, new) = self.renewed(&session.row, now);
        let event = AuditEvent::new(
            now,
            actor(grant, meta),
            AuditAction::MfaEnabled,
            Outcome::Success,
        )
        .on("user", p.username.as_str())
        .detail(format!(
            "{} code factor confirmed; session renewed as {}",
            channel.as_str(),
            super::session::session_ref(&new.id_hash)
        ))
        .request(meta.request_id.clone());
        let expires = new.absolute_expiry_ms;
        let confirm = OtpConfirm {
            user_id: p.user_id,
            channel,
            code_hash: hash,
            now_ms: now,
            old_id_hash: session.row.id_hash.clone(),
            new,
        };
        match self.store.otp_factor_confirm(confirm, event).await {
            Ok(true) => Ok(LoginOutcome {
                token,
                principal: Principal {
                    authentication: Authentication::MultiFactor { fresh: true },
                    ..p.clone()
                },
                expires_at_ms: expires,
            }),
            Ok(false) => {
                self.store
                    .audit_append(refuse("confirmation code used or expired meanwhile"))
                    .await?;
                Err(AppError::Invalid(
                    "the code has expired or was used: ask for a new one".into(),
                ))
            }
            Err(StoreError::NotFound) => Err(AppError::Conflict(
                "no address is waiting for confirmation, or the session ended meanwhile".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends a code for the second factor this session needs now: completing a sign-in while
    /// one waits, otherwise a step-up.
    pub async fn second_factor_code_send(
        &self,
        session: &SessionContext,
        method: SecondFactorMethod,
        meta: &RequestMeta,
    ) -> Result<CodeSent, AppError> {
        let p = &session.principal;
        let purpose = if session.row.second_factor_pending {
            OtpPurpose::SignIn
        } else {
            OtpPurpose::StepUp
        };
        let who = Actor {
            user_id: Some(p.user_id),
            name: p.username.as_str().to_owned(),
            session_ref: Some(session.session_ref.clone()),
            source: meta.source.clone(),
            device: meta.device.clone(),
        };
        let Some(channel) = method.channel() else {
            return Err(AppError::Invalid(
                "only e-mail and SMS codes are sent; an authenticator shows its own".into(),
            ));
        };
        let unavailable = || {
            AppError::Invalid(format!(
                "no confirmed {} address that counts for your role: choose another method",
                channel_name(channel)
            ))
        };
        if !self.config.mfa.accepts_codes(p.role) || self.senders.get(channel).is_none() {
            return Err(unavailable());
        }
        let factor = self
            .store
            .otp_factors(p.user_id)
            .await?
            .into_iter()
            .find(|f| f.channel == channel);
        let Some(sealed) = factor.and_then(|f| f.address) else {
            return Err(unavailable());
        };
        let address = self.keys.open_otp_address(p.user_id, channel, &sealed)?;
        self.send_code(p, channel, address, purpose, who, meta)
            .await
    }

    /// Issues a new code (voiding the previous one) if the throttle allows, and delivers it.
    async fn send_code(
        &self,
        p: &Principal,
        channel: OtpChannel,
        address: Zeroizing<String>,
        purpose: OtpPurpose,
        who: Actor,
        meta: &RequestMeta,
    ) -> Result<CodeSent, AppError> {
        let Some(sender) = self.senders.get(channel).cloned() else {
            return Err(AppError::Invalid(format!(
                "this server sends no {} codes",
                channel_name(channel)
            )));
        };
        let cfg = &self.config.otp;
        let now = self.now_ms();
        let code = new_code();
        let to = masked(channel, &address);
        let expires = now + cfg.valid_minutes * 60_000;
        let issue = OtpIssue {
            user_id: p.user_id,
            channel,
            purpose,
            code_hash: self.keys.otp_code_hash(p.user_id, purpose, channel, &code),
            now_ms: now,
            expires_at_ms: expires,
            attempts: cfg.max_attempts,
            min_interval_ms: cfg.resend_seconds * 1000,
            max_per_hour: cfg.max_per_hour,
        };
        let event = |outcome, detail: String| {
            AuditEvent::new(now, who.clone(), AuditAction::SecondFactorCodeSent, outcome)
                .on("user", p.username.as_str())
                .detail(detail)
                .request(meta.request_id.clone())
        };
        let what = format!("{} code to {to} for {}", channel.as_str(), purpose.as_str());
        let sent = event(
            Outcome::Success,
            format!("{what}, valid {} min", cfg.valid_minutes),
        );
        let retry_at = match self.store.otp_issue(issue, sent).await? {
            OtpIssued::Issued => None,
            OtpIssued::TooSoon { retry_at_ms } | OtpIssued::HourlyLimit { retry_at_ms } => {
                Some(retry_at_ms)
            }
        };
        if let Some(retry_at) = retry_at {
            let wait = ((retry_at - now) / 1000).max(1);
            self.store
                .audit_append(event(
                    Outcome::Denied,
                    format!("{what}: throttled, next in {wait} s"),
                ))
                .await?;
            return Err(AppError::RateLimited(format!(
                "a code was sent recently: ask for a new one in {wait} seconds"
            )));
        }
        let message = CodeMessage {
            channel,
            to: address,
            code,
            purpose,
            valid_minutes: cfg.valid_minutes,
            firm_name: self.config.firm_name.clone(),
        };
        if let Err(e) = sender.send(&message).await {
            tracing::warn!(channel = channel.as_str(), error = %e, "a one-time code was not delivered");
            self.store
                .otp_void(
                    p.user_id,
                    event(Outcome::Failed, format!("{what}: not delivered: {e}")),
                )
                .await?;
            return Err(AppError::Unavailable(format!(
                "the {} code could not be sent; try again later or use another method",
                channel_name(channel)
            )));
        }
        Ok(CodeSent {
            channel: channel.as_str(),
            to,
            expires_at: expires,
            resend_after: now + cfg.resend_seconds * 1000,
        })
    }

    /// Spends one attempt on the user's live code and compares it in constant time with
    /// `code` for `purpose` (and `channel`, when the caller chose one). The code's channel and
    /// hash if it matches; the store uses it once, in the transaction it completes.
    async fn claim_code(
        &self,
        user: UserId,
        purpose: OtpPurpose,
        channel: Option<OtpChannel>,
        code: &str,
    ) -> Result<Option<(OtpChannel, zf_crypto::BlindIndex)>, AppError> {
        let Some(row) = self.store.otp_attempt(user, self.now_ms()).await? else {
            return Ok(None);
        };
        let expected = self.keys.otp_code_hash(user, purpose, row.channel, code);
        let same: bool = row.code_hash.as_bytes().ct_eq(expected.as_bytes()).into();
        let right_channel = channel.is_none_or(|c| c == row.channel);
        Ok((same && right_channel).then_some((row.channel, row.code_hash)))
    }

    /// The factor a presented code stands for when it is a one-time code by e-mail or SMS,
    /// accepted for the user's role.
    pub(crate) async fn presented_code(
        &self,
        principal: &Principal,
        method: Option<SecondFactorMethod>,
        code: &SecretString,
        purpose: OtpPurpose,
    ) -> Result<Option<FactorUse>, AppError> {
        if !self.config.mfa.accepts_codes(principal.role) {
            return Ok(None);
        }
        let Some(code) = normalize_code(code.expose_secret()) else {
            return Ok(None);
        };
        let channel = method.and_then(SecondFactorMethod::channel);
        Ok(self
            .claim_code(principal.user_id, purpose, channel, &code)
            .await?
            .map(|(_, hash)| FactorUse::Code { hash }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: Vec<_> = (0..200).map(|_| new_code()).collect();
        assert!(codes
            .iter()
            .all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit())));
        let distinct: std::collections::HashSet<_> = codes.iter().map(|c| c.as_str()).collect();
        assert!(distinct.len() > 190, "{}", distinct.len());
    }

    #[test]
    fn a_code_is_read_as_typed_and_nothing_else_is() {
        assert_eq!(normalize_code(" 123 456 ").unwrap().as_str(), "123456");
        assert_eq!(normalize_code("123-456").unwrap().as_str(), "123456");
        for bad in ["", "12345", "1234567", "12345a", "１２３４５６"] {
            assert!(normalize_code(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn the_section_is_checked_before_the_server_starts() {
        let c: OtpConfig = toml_like(r#"{"email": "file", "max_attempts": 50}"#);
        assert!(Senders::from_config(&c)
            .err()
            .unwrap()
            .to_string()
            .contains("max_attempts"));
        let c: OtpConfig = toml_like(r#"{"email": "smtp"}"#);
        assert!(Senders::from_config(&c).is_err());
        let c: OtpConfig = toml_like(r#"{"sms": "smtp"}"#);
        assert!(Senders::from_config(&c).is_err());
        let c: OtpConfig = toml_like(r#"{"email": "file", "sms": "file"}"#);
        let s = Senders::from_config(&c).unwrap();
        assert_eq!(s.describe().len(), 2);
        assert!(serde_json::from_str::<OtpConfig>(r#"{"emial": "file"}"#).is_err());
    }

    fn toml_like(json: &str) -> OtpConfig {
        serde_json::from_str(json).unwrap()
    }
}
