//! RFC 5424 lines for audit events and alerts, and the RFC 5425 octet-counting frame.
//!
//! A line is `<PRI>1 TIMESTAMP HOSTNAME zhangfang PROCID MSGID [zf@32473 …] BOM MSG`:
//!
//! * **PRI** = facility × 8 + severity. The facility defaults to `authpriv` (10): it is the
//!   facility syslog deployments already route to a restricted file and SIEMs classify as
//!   security, which suits records that name people; `local0`–`local7`, `auth`, `log_audit` and
//!   `log_alert` can be configured instead. Events are `notice` (5) when they succeeded and
//!   `warning` (4) when they were denied or failed; alerts map Low → `notice`, Medium →
//!   `warning`, High → `err` (3), Critical → `crit` (2).
//! * **TIMESTAMP** is RFC 3339 in UTC with milliseconds, from `at_ms`.
//! * **MSGID** is the audit action (`login`, `client_sensitive_read`, …) or `alert`.
//! * **STRUCTURED-DATA** is one `zf@32473` element. 32473 is the private enterprise number
//!   RFC 5612 reserves for documentation; the SD-ID is private to this product, so collectors
//!   should match on it literally. Absent values are omitted rather than sent empty.
//! * **MSG** is one human-readable line preceded by the UTF-8 byte order mark: RFC 5424 §6.4
//!   only lets a receiver treat MSG as UTF-8 when it starts with the BOM (`MSG-UTF8`), and
//!   names and summaries here are routinely Chinese.
//!
//! Only fields of [`StoredEvent`] and [`Alert`] are written, and there is deliberately no way to
//! add free-form ones: those types hold names, ids and short explanations, never a sensitive
//! value, and this module keeps it that way.

use serde::Deserialize;
use zf_audit::{Alert, Severity, StoredEvent};

use crate::text::{one_line, rfc3339_utc_ms, truncate_bytes};

/// APP-NAME of every line.
pub const APP_NAME: &str = "zhangfang";
/// SD-ID of the structured-data element of every line.
pub const SD_ID: &str = "zf@32473";
/// RFC 5425 §4.3.1: receivers SHOULD accept messages of this size, so longer lines are cut
/// (in MSG only; the structured data stays whole).
pub const MAX_LINE_BYTES: usize = 8192;

const NILVALUE: &str = "-";
const BOM: &str = "\u{FEFF}";

/// Syslog facility (RFC 5424 §6.2.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Facility {
    /// 4: security/authorization messages.
    Auth,
    /// 10: security/authorization messages kept private; the default.
    #[default]
    Authpriv,
    /// 13: log audit.
    LogAudit,
    /// 14: log alert.
    LogAlert,
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

impl Facility {
    pub fn code(self) -> u8 {
        match self {
            Facility::Auth => 4,
            Facility::Authpriv => 10,
            Facility::LogAudit => 13,
            Facility::LogAlert => 14,
            Facility::Local0 => 16,
            Facility::Local1 => 17,
            Facility::Local2 => 18,
            Facility::Local3 => 19,
            Facility::Local4 => 20,
            Facility::Local5 => 21,
            Facility::Local6 => 22,
            Facility::Local7 => 23,
        }
    }
}

/// The syslog severities this crate emits (RFC 5424 §6.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyslogSeverity {
    Critical,
    Error,
    Warning,
    Notice,
}

impl SyslogSeverity {
    pub fn code(self) -> u8 {
        match self {
            SyslogSeverity::Critical => 2,
            SyslogSeverity::Error => 3,
            SyslogSeverity::Warning => 4,
            SyslogSeverity::Notice => 5,
        }
    }

    /// Anything but a success is worth a look, including an outcome this version does not
    /// know yet.
    pub fn of_event(event: &StoredEvent) -> Self {
        if event.outcome == "success" {
            SyslogSeverity::Notice
        } else {
            SyslogSeverity::Warning
        }
    }

    pub fn of_alert(severity: Severity) -> Self {
        match severity {
            Severity::Low => SyslogSeverity::Notice,
            Severity::Medium => SyslogSeverity::Warning,
            Severity::High => SyslogSeverity::Error,
            Severity::Critical => SyslogSeverity::Critical,
        }
    }
}

/// The PRI value: facility × 8 + severity.
pub fn pri(facility: Facility, severity: SyslogSeverity) -> u8 {
    facility.code() * 8 + severity.code()
}

/// Whether `name` is a valid SD-NAME (SD-ID or PARAM-NAME): 1–32 printable US-ASCII
/// characters other than `=`, space, `]` and `"`.
pub fn is_sd_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| (33..=126).contains(&b) && !matches!(b, b'=' | b']' | b'"'))
}

/// Escapes a PARAM-VALUE: `"`, `\` and `]` get a backslash (RFC 5424 §6.3.3); layout controls
/// become spaces so that line-oriented collectors downstream keep one record per line.
pub fn escape_param_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in one_line(value).chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A header field (HOSTNAME, APP-NAME, PROCID, MSGID): printable US-ASCII only, at most `max`
/// characters, NILVALUE when nothing is left.
fn header_field(value: &str, max: usize) -> String {
    let kept: String = value
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if kept.is_empty() {
        NILVALUE.to_owned()
    } else {
        kept
    }
}

/// Whether `hostname` can be used verbatim as HOSTNAME.
pub fn is_valid_hostname(hostname: &str) -> bool {
    (1..=255).contains(&hostname.len()) && hostname.chars().all(|c| c.is_ascii_graphic())
}

/// One SD-ELEMENT being built; parameter names are compile-time constants of this module.
struct SdElement(String);

impl SdElement {
    fn new() -> Self {
        SdElement(format!("[{SD_ID}"))
    }

    fn param(&mut self, name: &'static str, value: &str) {
        debug_assert!(is_sd_name(name), "invalid PARAM-NAME {name}");
        self.0.push(' ');
        self.0.push_str(name);
        self.0.push_str("=\"");
        self.0.push_str(&escape_param_value(value));
        self.0.push('"');
    }

    fn opt(&mut self, name: &'static str, value: Option<&str>) {
        if let Some(value) = value {
            self.param(name, value);
        }
    }

    fn finish(mut self) -> String {
        self.0.push(']');
        self.0
    }
}

/// The field names of an event, comma-separated; the store keeps them as a JSON array.
fn field_names(fields_json: &str) -> Option<String> {
    match serde_json::from_str::<Vec<String>>(fields_json) {
        Ok(names) if names.is_empty() => None,
        Ok(names) => Some(names.join(",")),
        Err(_) if fields_json.trim().is_empty() => None,
        Err(_) => Some(fields_json.to_owned()),
    }
}

/// Formats events and alerts for one sender: facility, HOSTNAME and PROCID are fixed per
/// process, the rest comes from each record.
#[derive(Clone, Debug)]
pub struct Formatter {
    facility: Facility,
    hostname: String,
    procid: String,
}

impl Formatter {
    /// `hostname` is cut to what RFC 5424 allows; `None` or nothing usable gives NILVALUE.
    pub fn new(facility: Facility, hostname: Option<&str>, procid: u32) -> Self {
        Formatter {
            facility,
            hostname: header_field(hostname.unwrap_or(""), 255),
            procid: procid.to_string(),
        }
    }

    /// The RFC 5424 line for an audit event.
    pub fn event(&self, event: &StoredEvent) -> String {
        let mut sd = SdElement::new();
        sd.param("seq", &event.seq.to_string());
        sd.param("action", &event.action);
        sd.param("actor", &event.actor_name);
        sd.param("outcome", &event.outcome);
        sd.opt("resource", event.resource.as_deref());
        sd.opt("record", event.record_id.as_deref());
        sd.opt("source", event.source.as_deref());
        sd.opt("device", event.device.as_deref());
        sd.opt("request", event.request_id.as_deref());
        sd.param("id", &event.id);
        sd.opt("user", event.actor_user_id.as_deref());
        sd.opt("session", event.session_ref.as_deref());
        sd.opt("fields", field_names(&event.fields).as_deref());
        // The chain link lets an auditor match the SIEM's copy against `audit verify`.
        if !event.hash.is_empty() {
            sd.param("hash", &hex(&event.hash));
        }

        let mut msg = format!("{} {} {}", event.actor_name, event.action, event.outcome);
        match (&event.resource, &event.record_id) {
            (Some(resource), Some(record)) => msg.push_str(&format!(" {resource}/{record}")),
            (Some(resource), None) => msg.push_str(&format!(" {resource}")),
            (None, Some(record)) => msg.push_str(&format!(" {record}")),
            (None, None) => {}
        }
        if let Some(detail) = &event.detail {
            msg.push_str(": ");
            msg.push_str(detail);
        }

        self.line(
            SyslogSeverity::of_event(event),
            event.at_ms,
            &event.action,
            sd.finish(),
            &msg,
        )
    }

    /// The RFC 5424 line for an alert.
    pub fn alert(&self, alert: &Alert) -> String {
        let mut sd = SdElement::new();
        sd.opt("seq", alert.event_seq.map(|s| s.to_string()).as_deref());
        sd.param("alert", &alert.id);
        sd.param("rule", &alert.rule);
        sd.param("severity", alert.severity.as_str());
        sd.opt("user", alert.user_id.as_deref());
        sd.opt("actor", alert.username.as_deref());
        sd.opt("source", alert.source.as_deref());
        if !alert.responses.is_empty() {
            sd.param("responses", &alert.responses.join(","));
        }
        let msg = format!(
            "{} {}: {}",
            alert.severity.as_str(),
            alert.rule,
            alert.summary
        );
        self.line(
            SyslogSeverity::of_alert(alert.severity),
            alert.at_ms,
            "alert",
            sd.finish(),
            &msg,
        )
    }

    fn line(
        &self,
        severity: SyslogSeverity,
        at_ms: i64,
        msgid: &str,
        sd: String,
        msg: &str,
    ) -> String {
        let head = format!(
            "<{}>1 {} {} {} {} {} {} {}",
            pri(self.facility, severity),
            rfc3339_utc_ms(at_ms).as_deref().unwrap_or(NILVALUE),
            self.hostname,
            APP_NAME,
            self.procid,
            header_field(msgid, 32),
            sd,
            BOM
        );
        let msg = one_line(msg);
        let room = MAX_LINE_BYTES.saturating_sub(head.len());
        if msg.len() <= room {
            return head + &msg;
        }
        let ellipsis = "…";
        let kept = truncate_bytes(&msg, room.saturating_sub(ellipsis.len()));
        head + kept + ellipsis
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 5425 octet-counting framing: `MSG-LEN SP SYSLOG-MSG`, where MSG-LEN counts bytes.
pub fn frame(line: &str) -> Vec<u8> {
    let mut out = format!("{} ", line.len()).into_bytes();
    out.extend_from_slice(line.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> StoredEvent {
        StoredEvent {
            seq: 42,
            id: "0b7e2a6e-3f55-4c2b-9d0e-1a2b3c4d5e6f".into(),
            at_ms: 1_714_552_200_123,
            actor_user_id: Some("u-7".into()),
            actor_name: "张三".into(),
            session_ref: Some("ab12cd34".into()),
            source: Some("203.0.113.9".into()),
            device: None,
            action: "client_sensitive_read".into(),
            resource: Some("clients".into()),
            record_id: Some("c-19".into()),
            fields: r#"["legal_rep_id_number"]"#.into(),
            outcome: "success".into(),
            request_id: Some("req-1".into()),
            detail: None,
            prev_hash: vec![0; 32],
            hash: vec![0xab; 32],
        }
    }

    fn alert() -> Alert {
        Alert {
            id: "al-1".into(),
            at_ms: 1_714_552_200_123,
            rule: "failed_login_burst".into(),
            severity: Severity::High,
            user_id: Some("u-7".into()),
            username: Some("张三".into()),
            source: Some("203.0.113.9".into()),
            summary: "10 分钟内 12 次登录失败".into(),
            event_seq: Some(42),
            responses: vec!["alert".into(), "lock_account".into()],
        }
    }

    fn formatter() -> Formatter {
        Formatter::new(Facility::Authpriv, Some("crm-1.example.cn"), 4242)
    }

    #[test]
    fn event_line_is_exact() {
        let expected = format!(
            "<85>1 2024-05-01T08:30:00.123Z crm-1.example.cn zhangfang 4242 client_sensitive_read \
             [zf@32473 seq=\"42\" action=\"client_sensitive_read\" actor=\"张三\" outcome=\"success\" \
             resource=\"clients\" record=\"c-19\" source=\"203.0.113.9\" request=\"req-1\" \
             id=\"0b7e2a6e-3f55-4c2b-9d0e-1a2b3c4d5e6f\" user=\"u-7\" session=\"ab12cd34\" \
             fields=\"legal_rep_id_number\" hash=\"{}\"] \u{FEFF}张三 client_sensitive_read success clients/c-19",
            "ab".repeat(32)
        );
        assert_eq!(formatter().event(&event()), expected);
    }

    #[test]
    fn alert_line_is_exact() {
        let expected = "<83>1 2024-05-01T08:30:00.123Z crm-1.example.cn zhangfang 4242 alert \
             [zf@32473 seq=\"42\" alert=\"al-1\" rule=\"failed_login_burst\" severity=\"high\" \
             user=\"u-7\" actor=\"张三\" source=\"203.0.113.9\" responses=\"alert,lock_account\"] \
             \u{FEFF}high failed_login_burst: 10 分钟内 12 次登录失败";
        assert_eq!(formatter().alert(&alert()), expected);
    }

    #[test]
    fn absent_params_are_omitted() {
        let mut e = event();
        e.actor_user_id = None;
        e.session_ref = None;
        e.source = None;
        e.resource = None;
        e.record_id = None;
        e.request_id = None;
        e.fields = "[]".into();
        e.hash = Vec::new();
        e.outcome = "denied".into();
        e.action = "access_denied".into();
        e.detail = Some("role accountant may not clients.delete".into());
        let line = Formatter::new(Facility::Local3, None, 1).event(&e);
        assert_eq!(
            line,
            "<156>1 2024-05-01T08:30:00.123Z - zhangfang 1 access_denied \
             [zf@32473 seq=\"42\" action=\"access_denied\" actor=\"张三\" outcome=\"denied\" \
             id=\"0b7e2a6e-3f55-4c2b-9d0e-1a2b3c4d5e6f\"] \
             \u{FEFF}张三 access_denied denied: role accountant may not clients.delete"
        );
        for absent in [
            "user=",
            "session=",
            "source=",
            "resource=",
            "record=",
            "request=",
            "fields=",
            "hash=",
        ] {
            assert!(!line.contains(absent), "{absent} in {line}");
        }

        let mut a = alert();
        a.user_id = None;
        a.username = None;
        a.source = None;
        a.event_seq = None;
        a.responses.clear();
        let line = formatter().alert(&a);
        assert!(line
            .contains("[zf@32473 alert=\"al-1\" rule=\"failed_login_burst\" severity=\"high\"] "));
    }

    #[test]
    fn param_values_are_escaped() {
        assert_eq!(escape_param_value(r#"a"b\c]d"#), r#"a\"b\\c\]d"#);
        assert_eq!(escape_param_value("x\ny"), "x y");
        let mut e = event();
        e.actor_name = r#"ev"il\na]me"#.into();
        e.record_id = Some("] [zf@32473 outcome=\"success\"".into());
        let line = formatter().event(&e);
        assert!(line.contains(r#" actor="ev\"il\\na\]me" "#), "{line}");
        assert!(
            line.contains(r#" record="\] [zf@32473 outcome=\"success\"" "#),
            "{line}"
        );
    }

    #[test]
    fn a_newline_cannot_forge_a_second_line() {
        let mut e = event();
        e.detail = Some("ok\n<85>1 2024-01-01T00:00:00Z forged".into());
        let line = formatter().event(&e);
        assert!(!line.contains('\n'));
        assert!(line.ends_with(": ok <85>1 2024-01-01T00:00:00Z forged"));
    }

    #[test]
    fn pri_values() {
        let sev = |outcome: &str| {
            let mut e = event();
            e.outcome = outcome.into();
            SyslogSeverity::of_event(&e)
        };
        assert_eq!(pri(Facility::Authpriv, sev("success")), 85);
        assert_eq!(pri(Facility::Authpriv, sev("denied")), 84);
        assert_eq!(pri(Facility::Authpriv, sev("failed")), 84);
        assert_eq!(pri(Facility::Local0, sev("success")), 133);
        assert_eq!(pri(Facility::Local7, sev("failed")), 188);
        assert_eq!(pri(Facility::LogAudit, sev("success")), 109);
        let alert_pri = |s| pri(Facility::Authpriv, SyslogSeverity::of_alert(s));
        assert_eq!(alert_pri(Severity::Low), 85);
        assert_eq!(alert_pri(Severity::Medium), 84);
        assert_eq!(alert_pri(Severity::High), 83);
        assert_eq!(alert_pri(Severity::Critical), 82);
        let mut a = alert();
        a.severity = Severity::Critical;
        assert!(formatter().alert(&a).starts_with("<82>1 "));
    }

    #[test]
    fn names_used_are_valid_sd_names() {
        assert!(is_sd_name(SD_ID));
        let all = formatter().event(&event()) + &formatter().alert(&alert());
        let mut seen = 0;
        for piece in all.split(' ') {
            if let Some((name, _)) = piece.split_once("=\"") {
                let name = name.trim_start_matches(&format!("[{SD_ID}")[..]);
                assert!(is_sd_name(name), "{name}");
                seen += 1;
            }
        }
        assert!(seen >= 20, "{seen}");
        for bad in ["", "a=b", "a b", "a]", "a\"", "é", &"x".repeat(33)] {
            assert!(!is_sd_name(bad), "{bad}");
        }
    }

    #[test]
    fn header_fields_are_printable_ascii() {
        let mut e = event();
        e.action = "登录 login\n".into();
        let line = Formatter::new(Facility::Authpriv, Some("主机 host"), 1).event(&e);
        assert!(
            line.starts_with("<85>1 2024-05-01T08:30:00.123Z host zhangfang 1 login [zf@32473 "),
            "{line}"
        );
        let mut e = event();
        e.action = "x".repeat(40);
        let line = formatter().event(&e);
        assert!(line.contains(&format!(" 4242 {} [", "x".repeat(32))));
    }

    #[test]
    fn out_of_range_time_is_nilvalue() {
        let mut e = event();
        e.at_ms = i64::MAX;
        assert!(formatter()
            .event(&e)
            .starts_with("<85>1 - crm-1.example.cn "));
    }

    #[test]
    fn frame_length_counts_bytes_not_characters() {
        let line = formatter().alert(&alert());
        let framed = frame(&line);
        let (len, rest) = std::str::from_utf8(&framed)
            .unwrap()
            .split_once(' ')
            .unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), rest.len());
        assert_eq!(rest, line);
        assert!(
            line.len() > line.chars().count(),
            "the test needs multi-byte text"
        );
        assert_eq!(
            frame("<85>1 - - - - - - \u{FEFF}账"),
            "24 <85>1 - - - - - - \u{FEFF}账".as_bytes()
        );
    }

    #[test]
    fn long_messages_are_cut_to_the_transport_limit() {
        let mut a = alert();
        a.summary = "告警".repeat(5000);
        let line = formatter().alert(&a);
        assert!(line.len() <= MAX_LINE_BYTES);
        assert!(line.len() > MAX_LINE_BYTES - 8);
        assert!(line.ends_with('…'));
        assert!(line.contains("responses=\"alert,lock_account\"]"));
    }
}
