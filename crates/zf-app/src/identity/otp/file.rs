//! The development sender: each message appended to a file in the data directory (mode 0600),
//! or printed to standard error. It exists so that codes can be tried without a mail server; a
//! deployment that uses it has its codes on its own disk, which the server warns about at start.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::sender::{CodeMessage, CodeSender, SendError};

/// Where the development sender writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outbox {
    File(PathBuf),
    /// Standard error, not the tracing log: log shippers never see the codes.
    Stderr,
}

pub struct FileSender {
    outbox: Outbox,
    /// One writer at a time, so messages never interleave.
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl FileSender {
    pub fn new(outbox: Outbox) -> Self {
        FileSender {
            outbox,
            lock: Arc::default(),
        }
    }

    fn entry(message: &CodeMessage) -> Zeroizing<String> {
        let at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let text = match message.channel {
            zf_store::OtpChannel::Email => message.body_text(),
            zf_store::OtpChannel::Sms => message.sms_text(),
        };
        Zeroizing::new(format!(
            "--- {at} {channel} to {to} ({purpose})\n{text}\n",
            channel = message.channel.as_str(),
            to = message.to.as_str(),
            purpose = message.purpose.as_str(),
            text = text.trim_end(),
        ))
    }
}

fn append(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_data()
}

#[async_trait]
impl CodeSender for FileSender {
    fn describe(&self) -> String {
        match &self.outbox {
            Outbox::File(p) => format!("development outbox {}", p.display()),
            Outbox::Stderr => "development outbox on standard error".into(),
        }
    }

    async fn send(&self, message: &CodeMessage) -> Result<(), SendError> {
        let entry = Self::entry(message);
        let _turn = self.lock.lock().await;
        match &self.outbox {
            Outbox::Stderr => {
                let mut err = std::io::stderr().lock();
                err.write_all(entry.as_bytes())?;
                Ok(())
            }
            Outbox::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || append(&path, &entry))
                    .await
                    .map_err(|e| SendError::Io(std::io::Error::other(e.to_string())))??;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use zf_store::{OtpChannel, OtpPurpose};

    fn message(channel: OtpChannel, to: &str, code: &str) -> CodeMessage {
        CodeMessage {
            channel,
            to: Zeroizing::new(to.into()),
            code: Zeroizing::new(code.into()),
            purpose: OtpPurpose::SignIn,
            valid_minutes: 5,
            firm_name: None,
        }
    }

    #[tokio::test]
    async fn messages_are_appended_whole_to_an_owner_only_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("otp-outbox.log");
        let sender = FileSender::new(Outbox::File(path.clone()));
        sender
            .send(&message(OtpChannel::Email, "li@example.com", "123456"))
            .await
            .unwrap();
        sender
            .send(&message(OtpChannel::Sms, "13812345678", "654321"))
            .await
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let entries: Vec<&str> = text.split("--- ").filter(|e| !e.is_empty()).collect();
        assert_eq!(entries.len(), 2, "{text}");
        assert!(entries[0].contains("email to li@example.com (sign_in)"));
        assert!(entries[0].contains("您的验证码是：123456"));
        assert!(entries[1].contains("sms to 13812345678 (sign_in)"));
        assert!(entries[1].contains("验证码 654321"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(sender.describe().contains("otp-outbox.log"));
    }

    #[tokio::test]
    async fn an_outbox_that_cannot_be_written_is_a_delivery_error() {
        let dir = tempfile::tempdir().unwrap();
        let sender = FileSender::new(Outbox::File(dir.path().join("missing/outbox.log")));
        let e = sender
            .send(&message(OtpChannel::Email, "li@example.com", "123456"))
            .await
            .unwrap_err();
        assert!(matches!(e, SendError::Io(_)), "{e}");
        assert!(!e.to_string().contains("123456"));
    }
}
