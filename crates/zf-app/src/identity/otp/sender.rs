//! The seam between issuing a one-time code and delivering it. A sender gets the finished
//! message (address, code, purpose, validity) and reports delivery; it never decides anything.
//!
//! Adding an SMS gateway (Aliyun SMS, Tencent Cloud SMS, …) is one more implementation of
//! [`CodeSender`]: take the gateway's credentials the way [`super::smtp`] takes its password
//! (environment variable or file, zeroized), send [`CodeMessage::sms_text`] — or the gateway's
//! approved template with the code as its one parameter — to [`CodeMessage::to`] (an E.164-less
//! mainland mobile number, as `zf_domain::Mobile` keeps it), map the gateway's refusals onto
//! [`SendError`], and add a variant to [`super::SenderKind`] that builds it. Nothing else
//! changes: issuing, hashing, throttling, attempts and audit stay where they are.

use async_trait::async_trait;
use zeroize::Zeroizing;
use zf_store::{OtpChannel, OtpPurpose};

/// Why a code was not delivered. The message may name the server or the gateway's reason,
/// never the code or a credential.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The server or gateway could not be reached, or broke off.
    #[error("the sender could not be reached: {0}")]
    Unreachable(String),
    /// The sender refused our credentials.
    #[error("the sender refused the credentials")]
    Credentials,
    /// The recipient was refused (unknown mailbox, number blocked).
    #[error("the recipient was refused: {0}")]
    Rejected(String),
    /// The message could not be made (an address the transport cannot carry).
    #[error("the message could not be built: {0}")]
    Message(String),
    /// Writing the development outbox failed.
    #[error("the outbox could not be written: {0}")]
    Io(#[from] std::io::Error),
}

/// One code on its way to one address.
pub struct CodeMessage {
    pub channel: OtpChannel,
    /// The e-mail address or mobile number, as registered.
    pub to: Zeroizing<String>,
    pub code: Zeroizing<String>,
    pub purpose: OtpPurpose,
    pub valid_minutes: i64,
    /// Shown in the message so the recipient knows who is asking.
    pub firm_name: Option<String>,
}

impl std::fmt::Debug for CodeMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeMessage")
            .field("channel", &self.channel)
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

impl CodeMessage {
    fn what(&self) -> (&'static str, &'static str) {
        match self.purpose {
            OtpPurpose::Enrol => (
                "确认接收验证码的地址",
                "confirm this address for sign-in codes",
            ),
            OtpPurpose::SignIn => ("登录", "sign in"),
            OtpPurpose::StepUp => ("确认一项敏感操作", "confirm a sensitive operation"),
        }
    }

    fn sender_name(&self) -> String {
        match &self.firm_name {
            Some(firm) => format!("{firm} · 账房 Zhangfang"),
            None => "账房 Zhangfang".to_owned(),
        }
    }

    /// The e-mail subject; it carries no code, since subjects show on lock screens.
    pub fn subject(&self) -> String {
        format!("{} 验证码 / verification code", self.sender_name())
    }

    /// The e-mail body: Chinese first, then English.
    pub fn body_text(&self) -> Zeroizing<String> {
        let (zh, en) = self.what();
        let minutes = self.valid_minutes;
        Zeroizing::new(format!(
            "您的验证码是：{code}\n\
             用途：{zh}。{minutes} 分钟内有效，只能使用一次。\n\
             如果这不是您本人的操作，请不要把验证码告诉任何人，并立即联系贵所的安全管理员。\n\
             工作人员不会向您索要验证码。\n\
             \n\
             Your verification code is: {code}\n\
             To {en}. It is valid for {minutes} minutes and works once.\n\
             If you did not ask for it, tell no one the code and contact your firm's security \
             administrator at once. Nobody will ever ask you for this code.\n\
             \n\
             — {name}\n",
            code = self.code.as_str(),
            name = self.sender_name(),
        ))
    }

    /// A short text for SMS (one message: 70 characters when it holds Chinese).
    pub fn sms_text(&self) -> Zeroizing<String> {
        let (zh, _) = self.what();
        Zeroizing::new(format!(
            "【账房】验证码 {code}，用于{zh}，{minutes}分钟内有效。请勿告诉他人。",
            code = self.code.as_str(),
            minutes = self.valid_minutes,
        ))
    }
}

/// Delivers one-time codes over one channel.
#[async_trait]
pub trait CodeSender: Send + Sync {
    /// What and where this sender is, for logs and the start-up banner; no credentials.
    fn describe(&self) -> String;
    /// Delivers the message, or says why not. Must not log the code.
    async fn send(&self, message: &CodeMessage) -> Result<(), SendError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_says_what_the_code_is_for_in_both_languages_and_debug_hides_it() {
        let m = CodeMessage {
            channel: OtpChannel::Email,
            to: Zeroizing::new("li@example.com".into()),
            code: Zeroizing::new("042917".into()),
            purpose: OtpPurpose::StepUp,
            valid_minutes: 5,
            firm_name: Some("某某财税".into()),
        };
        let body = m.body_text();
        assert!(body.contains("您的验证码是：042917"));
        assert!(body.contains("Your verification code is: 042917"));
        assert!(body.contains("5 分钟内有效") && body.contains("valid for 5 minutes"));
        assert!(!m.subject().contains("042917"));
        assert!(m.sms_text().contains("042917") && m.sms_text().chars().count() <= 70);
        let debug = format!("{m:?}");
        assert!(!debug.contains("042917") && !debug.contains("li@example.com"));
    }
}
