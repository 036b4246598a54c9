//! Export to security tooling: audit events and alerts to the firm's SIEM over syslog (RFC 5424
//! lines, RFC 5425 TLS transport), and alerts to chat robots and webhooks (企业微信, 钉钉, 飞书,
//! generic JSON).
//!
//! What leaves the product is exactly the fields of [`zf_audit::StoredEvent`] and
//! [`zf_audit::Alert`], which name people, records and fields but never hold a sensitive value;
//! there is no free-form extra field to put one in. Text typed by users is reduced to one line
//! of visible characters before it is sent, so it cannot forge log lines or chat markup.
//!
//! Export is a copy: the hash-chained audit log in the database stays the record of truth, so
//! the syslog sender never makes a caller wait and drops its oldest lines (counting them) rather
//! than grow without bound while the SIEM is unreachable.

mod config;
mod sender;
mod sinks;
pub mod syslog;
mod text;
pub mod webhook;

pub use config::{SyslogConfig, WebhookConfig, WebhookKind};
pub use sender::{FlushError, SenderStats, SyslogError, SyslogTlsSender, DEFAULT_QUEUE_CAPACITY};
pub use sinks::WebhookSink;
pub use syslog::Facility;
pub use webhook::{Webhook, WebhookConfigError, WebhookError, Webhooks};
