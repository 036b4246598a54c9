//! Text hygiene shared by the syslog and chat formats, and the Chinese wording of alerts.
//!
//! Event and alert fields hold names, ids and short explanations, but some of them (a username,
//! an alert summary, a denial detail) were typed by people. Before such text reaches a SIEM or a
//! chat group it is reduced to one line of visible characters, so it cannot forge a second log
//! line, reorder what a reader sees, or smuggle markup into a robot message.

use time::OffsetDateTime;
use zf_audit::Severity;

/// Whether `c` would change how the surrounding text is laid out or read rather than being
/// shown: control characters (line breaks included), the Unicode line and paragraph separators,
/// and the bidirectional overrides that can make a log line display in a different order than
/// it is stored.
fn is_layout_control(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}')
        || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
        || c == '\u{200E}'
        || c == '\u{200F}'
}

/// `s` on one line: every layout control becomes a space.
pub(crate) fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if is_layout_control(c) { ' ' } else { c })
        .collect()
}

/// At most `max_chars` characters of `s`, with an ellipsis when something was cut, so a long
/// value is visibly shortened rather than silently.
pub(crate) fn truncate_chars(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        None => s.to_owned(),
        Some((cut, _)) => {
            let mut out = s[..cut].to_owned();
            out.pop();
            out.push('…');
            out
        }
    }
}

/// The longest prefix of `s` that fits in `max_bytes` without splitting a character.
pub(crate) fn truncate_bytes(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut cut = max_bytes;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

/// `s` made inert for chat robots: one line, at most `max_chars`, and the characters that start
/// links, images, HTML tags (WeCom's `<font>`, Feishu's `<at user_id="all">`) or emphasis
/// replaced by their full-width look-alikes, so a crafted username cannot ping the whole group
/// or turn into a phishing link inside a security alert.
pub(crate) fn chat_safe(s: &str, max_chars: usize) -> String {
    let cleaned: String = one_line(s)
        .chars()
        .map(|c| match c {
            '<' => '＜',
            '>' => '＞',
            '[' => '［',
            ']' => '］',
            '*' => '＊',
            '`' => '｀',
            '\\' => '＼',
            other => other,
        })
        .collect();
    truncate_chars(cleaned.trim(), max_chars)
}

pub(crate) fn severity_zh(severity: Severity) -> &'static str {
    match severity {
        Severity::Low => "低",
        Severity::Medium => "中",
        Severity::High => "高",
        Severity::Critical => "严重",
    }
}

/// The Chinese name of a monitoring rule; an unknown rule is shown by its id.
pub(crate) fn rule_zh(rule: &str) -> Option<&'static str> {
    match rule {
        "failed_login_burst" => Some("短时间内大量登录失败"),
        "read_volume" => Some("敏感数据读取量异常"),
        "honeytoken" => Some("诱饵数据被访问"),
        _ => None,
    }
}

/// The Chinese name of an automatic response.
pub(crate) fn response_zh(response: &str) -> Option<&'static str> {
    match response {
        "alert" => Some("仅告警"),
        "lock_account" => Some("锁定账户"),
        "revoke_sessions" => Some("撤销会话"),
        _ => None,
    }
}

fn datetime(at_ms: i64) -> Option<OffsetDateTime> {
    let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000).ok()?;
    // RFC 3339 and RFC 5424 only know four-digit years.
    (0..=9999).contains(&dt.year()).then_some(dt)
}

/// RFC 3339 in UTC with milliseconds (`2024-05-01T08:30:00.123Z`), or `None` when `at_ms` is
/// outside the years RFC 3339 can express.
pub(crate) fn rfc3339_utc_ms(at_ms: i64) -> Option<String> {
    let dt = datetime(at_ms)?;
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.millisecond()
    ))
}

/// Wall-clock time in China (UTC+8, no daylight saving), as the people on call read it.
pub(crate) fn beijing_time(at_ms: i64) -> Option<String> {
    let offset = time::UtcOffset::from_hms(8, 0, 0).ok()?;
    let dt = datetime(at_ms)?.to_offset(offset);
    Some(format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_removes_line_breaks_and_bidi_overrides() {
        assert_eq!(one_line("a\nb\r\tc\u{202E}d\u{2028}e"), "a b  c d e");
        assert_eq!(one_line("张三"), "张三");
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate_chars("账房安全告警", 4), "账房安…");
        assert_eq!(truncate_chars("账房", 4), "账房");
        assert_eq!(truncate_bytes("账房", 4), "账");
        assert_eq!(truncate_bytes("ab", 4), "ab");
    }

    #[test]
    fn chat_safe_neutralises_markup() {
        assert_eq!(
            chat_safe("[点我](http://x) <at user_id=\"all\"> **b**\n`c`", 100),
            "［点我］(http://x) ＜at user_id=\"all\"＞ ＊＊b＊＊ ｀c｀"
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            rfc3339_utc_ms(1_714_552_200_123).as_deref(),
            Some("2024-05-01T08:30:00.123Z")
        );
        assert_eq!(
            rfc3339_utc_ms(-1).as_deref(),
            Some("1969-12-31T23:59:59.999Z")
        );
        assert_eq!(rfc3339_utc_ms(i64::MAX), None);
        assert_eq!(
            beijing_time(1_714_552_200_123).as_deref(),
            Some("2024-05-01 16:30:00")
        );
    }
}
