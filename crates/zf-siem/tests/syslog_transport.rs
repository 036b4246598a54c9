//! The syslog-over-TLS sender against a tokio-rustls receiver on loopback: delivery, reconnection
//! after the receiver goes away, the bounded queue, and certificate verification.

mod support;

use std::time::Duration;

use support::{alert, event, eventually, free_port, Pki, Receiver};
use zf_siem::{FlushError, SyslogConfig, SyslogTlsSender};

fn config(pki: &Pki, port: u16) -> SyslogConfig {
    let mut config = SyslogConfig::new(format!("127.0.0.1:{port}"), "localhost", &pki.ca_file);
    config.hostname = Some("crm-test".into());
    config
}

fn seqs(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            let start = l.find("seq=\"").expect("seq param") + 5;
            l[start..start + l[start..].find('"').unwrap()].to_owned()
        })
        .collect()
}

#[tokio::test]
async fn lines_arrive_octet_counted_and_whole() {
    let pki = Pki::generate();
    let receiver = Receiver::start(0, pki.server.clone()).await;
    let sender = SyslogTlsSender::start(&config(&pki, receiver.port)).unwrap();
    sender.send_event(&event(1));
    sender.send_alert(&alert());
    sender.flush(Duration::from_secs(10)).await.unwrap();
    assert!(eventually(Duration::from_secs(5), || receiver.lines().len() == 2).await);
    let lines = receiver.lines();
    assert!(
        lines[0].starts_with("<84>1 2024-05-01T08:30:00.124Z crm-test zhangfang "),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with(" login [zf@32473 seq=\"1\" action=\"login\" actor=\"张三\" outcome=\"denied\" source=\"203.0.113.9\" request=\"req-1\" id=\"00000000-0000-4000-8000-000000000001\" user=\"u-7\" session=\"ab12cd34\" hash=\"0707070707070707070707070707070707070707070707070707070707070707\"] \u{FEFF}张三 login denied: 密码错误 wrong password"), "{}", lines[0]);
    assert!(lines[1].starts_with("<83>1 "), "{}", lines[1]);
    assert!(
        lines[1].ends_with(": 10 分钟内 12 次登录失败"),
        "{}",
        lines[1]
    );
    let stats = sender.stats();
    assert_eq!((stats.sent, stats.dropped, stats.queued), (2, 0, 0));
    assert!(stats.connected);
}

#[tokio::test]
async fn queued_lines_are_delivered_after_the_receiver_comes_back() {
    let pki = Pki::generate();
    let first = Receiver::start(0, pki.server.clone()).await;
    let port = first.port;
    let sender = SyslogTlsSender::start(&config(&pki, port)).unwrap();
    sender.send_event(&event(1));
    sender.flush(Duration::from_secs(10)).await.unwrap();
    assert!(eventually(Duration::from_secs(5), || first.lines().len() == 1).await);

    first.stop().await;
    assert!(
        eventually(Duration::from_secs(5), || !sender.stats().connected).await,
        "the sender did not notice the receiver went away"
    );
    for seq in 2..=4 {
        sender.send_event(&event(seq));
    }
    assert_eq!(
        sender.flush(Duration::from_millis(300)).await,
        Err(FlushError::TimedOut { pending: 3 })
    );
    assert_eq!(sender.stats().queued, 3);

    let second = Receiver::start(port, pki.server.clone()).await;
    sender.flush(Duration::from_secs(15)).await.unwrap();
    assert!(eventually(Duration::from_secs(5), || second.lines().len() == 3).await);
    assert_eq!(seqs(&second.lines()), ["2", "3", "4"]);
    let stats = sender.stats();
    assert_eq!((stats.sent, stats.dropped, stats.queued), (4, 0, 0));
    assert!(stats.reconnects >= 1, "{stats:?}");
}

#[tokio::test]
async fn a_full_queue_keeps_the_newest_lines_and_counts_the_rest() {
    let pki = Pki::generate();
    let port = free_port();
    let mut config = config(&pki, port);
    config.queue_capacity = Some(3);
    let sender = SyslogTlsSender::start(&config).unwrap();
    for seq in 1..=5 {
        sender.send_event(&event(seq));
    }
    let stats = sender.stats();
    assert_eq!((stats.dropped, stats.queued, stats.sent), (2, 3, 0));

    let receiver = Receiver::start(port, pki.server.clone()).await;
    sender.flush(Duration::from_secs(15)).await.unwrap();
    assert!(eventually(Duration::from_secs(5), || receiver.lines().len() == 3).await);
    assert_eq!(seqs(&receiver.lines()), ["3", "4", "5"]);
    assert_eq!(sender.stats().sent, 3);
}

#[tokio::test]
async fn a_receiver_with_a_certificate_from_another_ca_gets_nothing() {
    let trusted = Pki::generate();
    let impostor = Pki::generate();
    let receiver = Receiver::start(0, impostor.server.clone()).await;
    let sender = SyslogTlsSender::start(&config(&trusted, receiver.port)).unwrap();
    sender.send_event(&event(1));
    assert!(sender.flush(Duration::from_millis(800)).await.is_err());
    assert!(receiver.lines().is_empty());
    assert!(!sender.stats().connected);
    assert_eq!(sender.stats().sent, 0);
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let pki = Pki::generate();
    let receiver = Receiver::start(0, pki.server.clone()).await;
    let mut config = config(&pki, receiver.port);
    config.server_name = "siem.example.cn".into();
    let sender = SyslogTlsSender::start(&config).unwrap();
    sender.send_event(&event(1));
    assert!(sender.flush(Duration::from_millis(800)).await.is_err());
    assert!(receiver.lines().is_empty());
}
