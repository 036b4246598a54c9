//! Test helpers: a throw-away CA and server certificate, sample records, and a minimal RFC 5425
//! receiver built on tokio-rustls.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use zf_audit::{Alert, Severity, StoredEvent};

/// A CA and a server certificate for `localhost` and 127.0.0.1, as PEM files in a temporary
/// directory and as a rustls server configuration.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub server: Arc<rustls::ServerConfig>,
}

impl Pki {
    pub fn generate() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Zhangfang test SIEM CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();

        let server_key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let server_cert = params.signed_by(&server_key, &ca_cert, &ca_key).unwrap();

        let ca_file = dir.path().join("ca.pem");
        let cert_file = dir.path().join("server.pem");
        let key_file = dir.path().join("server.key");
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();
        std::fs::write(&cert_file, server_cert.pem()).unwrap();
        std::fs::write(&key_file, server_key.serialize_pem()).unwrap();

        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(server_cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .unwrap();
        Pki {
            dir,
            ca_file,
            cert_file,
            key_file,
            server: Arc::new(server),
        }
    }
}

pub fn event(seq: i64) -> StoredEvent {
    StoredEvent {
        seq,
        id: format!("00000000-0000-4000-8000-{seq:012}"),
        at_ms: 1_714_552_200_123 + seq,
        actor_user_id: Some("u-7".into()),
        actor_name: "张三".into(),
        session_ref: Some("ab12cd34".into()),
        source: Some("203.0.113.9".into()),
        device: None,
        action: "login".into(),
        resource: None,
        record_id: None,
        fields: "[]".into(),
        outcome: "denied".into(),
        request_id: Some(format!("req-{seq}")),
        detail: Some("密码错误 wrong password".into()),
        prev_hash: vec![0; 32],
        hash: vec![7; 32],
    }
}

pub fn alert() -> Alert {
    Alert {
        id: "al-1".into(),
        at_ms: 1_714_552_200_999,
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

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
pub async fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An RFC 5425 receiver on 127.0.0.1 that records every octet-counted frame it gets.
pub struct Receiver {
    pub port: u16,
    pub lines: Arc<Mutex<Vec<String>>>,
    tasks: JoinSet<()>,
}

impl Receiver {
    pub async fn start(port: u16, tls: Arc<rustls::ServerConfig>) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = JoinSet::new();
        let acceptor = TlsAcceptor::from(tls);
        let recorded = Arc::clone(&lines);
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let recorded = Arc::clone(&recorded);
                connections.spawn(async move {
                    let Ok(mut stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        while let Some(line) = take_frame(&mut buf) {
                            recorded.lock().unwrap().push(line);
                        }
                    }
                });
            }
        });
        Receiver { port, lines, tasks }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Closes the listener and every connection, as a receiver that goes down would.
    pub async fn stop(mut self) {
        self.tasks.shutdown().await;
    }
}

/// One `MSG-LEN SP SYSLOG-MSG` frame from the front of `buf`, if it is complete.
fn take_frame(buf: &mut Vec<u8>) -> Option<String> {
    let space = buf.iter().position(|&b| b == b' ')?;
    let len: usize = std::str::from_utf8(&buf[..space]).ok()?.parse().ok()?;
    if buf.len() < space + 1 + len {
        return None;
    }
    let line = String::from_utf8(buf[space + 1..space + 1 + len].to_vec()).unwrap();
    buf.drain(..space + 1 + len);
    Some(line)
}
