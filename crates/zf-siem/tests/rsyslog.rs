//! Events and an alert through a real rsyslogd listening with TLS (the `gtls` network stream
//! driver) and writing RFC 5424 lines to a file. Needs the Debian packages `rsyslog` and
//! `rsyslog-gnutls`; skipped without them unless `ZF_REQUIRE_RSYSLOG=1`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{alert, event, free_port, Pki};
use zf_siem::{SyslogConfig, SyslogTlsSender};

fn rsyslogd() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join("rsyslogd"))
        .find(|p| p.is_file())
}

/// Kills rsyslogd however the test ends.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn config_file(pki: &Pki, work: &Path, out: &Path, port: u16) -> String {
    format!(
        r#"global(
  workDirectory="{work}"
  defaultNetstreamDriver="gtls"
  defaultNetstreamDriverCAFile="{ca}"
  defaultNetstreamDriverCertFile="{cert}"
  defaultNetstreamDriverKeyFile="{key}"
)
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" address="127.0.0.1" port="{port}")
if $app-name == "zhangfang" then {{
  action(type="omfile" file="{out}" template="RSYSLOG_SyslogProtocol23Format")
}}
"#,
        work = work.display(),
        ca = pki.ca_file.display(),
        cert = pki.cert_file.display(),
        key = pki.key_file.display(),
        out = out.display(),
    )
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_alerts_reach_rsyslog_over_tls() {
    let Some(rsyslogd) = rsyslogd() else {
        if std::env::var("ZF_REQUIRE_RSYSLOG").as_deref() == Ok("1") {
            panic!("rsyslogd not found but ZF_REQUIRE_RSYSLOG=1: apt-get install -y rsyslog rsyslog-gnutls");
        }
        eprintln!("skipping: rsyslogd not installed (apt-get install -y rsyslog rsyslog-gnutls)");
        return;
    };

    let pki = Pki::generate();
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let out = dir.path().join("received.log");
    let conf = dir.path().join("rsyslog.conf");
    let stderr = dir.path().join("rsyslogd.stderr");
    let port = free_port();
    std::fs::write(&conf, config_file(&pki, &work, &out, port)).unwrap();

    let mut daemon = Daemon(
        Command::new(&rsyslogd)
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.path().join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap(),
    );
    let diagnostics = || std::fs::read_to_string(&stderr).unwrap_or_default();

    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = daemon.0.try_wait().unwrap() {
            panic!("rsyslogd exited with {status}:\n{}", diagnostics());
        }
        assert!(
            Instant::now() < deadline,
            "rsyslogd did not listen on {port}:\n{}",
            diagnostics()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut config = SyslogConfig::new(format!("127.0.0.1:{port}"), "localhost", &pki.ca_file);
    config.hostname = Some("crm-test".into());
    let sender = SyslogTlsSender::start(&config).unwrap();
    let mut second = event(42);
    second.outcome = "success".into();
    second.action = "client_sensitive_read".into();
    second.resource = Some("clients".into());
    second.record_id = Some(r#"c-19 "甲]\乙"#.into());
    second.fields = r#"["legal_rep_id_number"]"#.into();
    second.detail = Some(r#"字段 "法定代表人身份证号" \ 已解密 ]"#.into());
    sender.send_event(&event(41));
    sender.send_event(&second);
    sender.send_event(&event(43));
    sender.send_alert(&alert());
    sender.flush(Duration::from_secs(10)).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(15);
    let lines = loop {
        let lines = read_lines(&out);
        if lines.len() >= 4 {
            break lines;
        }
        assert!(
            Instant::now() < deadline,
            "rsyslog wrote {} of 4 lines: {lines:#?}\n{}",
            lines.len(),
            diagnostics()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(lines.len(), 4, "{lines:#?}");

    // rsyslog parsed each line as RFC 5424 and wrote it back in the same format, so every
    // header field and the structured data must have come through intact.
    assert!(
        lines[0].starts_with("<84>1 2024-05-01T08:30:00.164Z crm-test zhangfang "),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains(" login [zf@32473 seq=\"41\" action=\"login\" actor=\"张三\" outcome=\"denied\" source=\"203.0.113.9\" request=\"req-41\" "), "{}", lines[0]);
    assert!(
        lines[0].ends_with("张三 login denied: 密码错误 wrong password"),
        "{}",
        lines[0]
    );

    assert!(
        lines[1].starts_with("<85>1 2024-05-01T08:30:00.165Z crm-test zhangfang "),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains(r#" client_sensitive_read [zf@32473 seq="42" action="client_sensitive_read" actor="张三" outcome="success" resource="clients" record="c-19 \"甲\]\\乙" "#), "{}", lines[1]);
    assert!(
        lines[1].contains(" fields=\"legal_rep_id_number\" "),
        "{}",
        lines[1]
    );
    assert!(lines[1].ends_with(r#"张三 client_sensitive_read success clients/c-19 "甲]\乙: 字段 "法定代表人身份证号" \ 已解密 ]"#), "{}", lines[1]);

    assert!(lines[2].contains(" seq=\"43\" "), "{}", lines[2]);

    assert!(
        lines[3].starts_with("<83>1 2024-05-01T08:30:00.999Z crm-test zhangfang "),
        "{}",
        lines[3]
    );
    assert!(lines[3].contains(" alert [zf@32473 seq=\"42\" alert=\"al-1\" rule=\"failed_login_burst\" severity=\"high\" user=\"u-7\" actor=\"张三\" source=\"203.0.113.9\" responses=\"alert,lock_account\"] "), "{}", lines[3]);
    assert!(
        lines[3].ends_with("high failed_login_burst: 10 分钟内 12 次登录失败"),
        "{}",
        lines[3]
    );

    let stats = sender.stats();
    assert_eq!((stats.sent, stats.dropped), (4, 0));
    drop(daemon);
}
