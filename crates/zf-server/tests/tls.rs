//! The TLS surface as a client sees it: 1.2 and 1.3 with forward-secret AEAD suites, nothing
//! older, and no plaintext HTTP.

mod common;

use std::sync::Arc;

use common::{Backend, TestServer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn client_config(
    server: &TestServer,
    version: &'static rustls::SupportedProtocolVersion,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(server.cert_pem()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

async fn handshake(
    server: &TestServer,
    version: &'static rustls::SupportedProtocolVersion,
) -> (rustls::ProtocolVersion, String) {
    let addr = server.base.trim_start_matches("https://").to_owned();
    let tcp = TcpStream::connect(&addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(client_config(server, version));
    let name = ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.expect("handshake");
    let (_, conn) = tls.get_ref();
    (
        conn.protocol_version().unwrap(),
        format!("{:?}", conn.negotiated_cipher_suite().unwrap().suite()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_2_and_1_3_with_aead_suites_only() {
    let s = TestServer::start(Backend::Sqlite).await.unwrap();
    let (v13, suite13) = handshake(&s, &rustls::version::TLS13).await;
    assert_eq!(v13, rustls::ProtocolVersion::TLSv1_3);
    assert!(
        suite13.contains("GCM") || suite13.contains("CHACHA20_POLY1305"),
        "{suite13}"
    );
    let (v12, suite12) = handshake(&s, &rustls::version::TLS12).await;
    assert_eq!(v12, rustls::ProtocolVersion::TLSv1_2);
    assert!(
        suite12.starts_with("TLS_ECDHE_"),
        "forward secrecy: {suite12}"
    );
    assert!(
        suite12.contains("GCM") || suite12.contains("CHACHA20_POLY1305"),
        "{suite12}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_protocols_and_cbc_suites_are_refused() {
    let s = TestServer::start(Backend::Sqlite).await.unwrap();
    let addr = s.base.trim_start_matches("https://").to_owned();
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        eprintln!("skipping: openssl not installed");
        return;
    }
    for args in [
        vec!["-tls1_1"],
        vec!["-tls1"],
        vec![
            "-tls1_2",
            "-cipher",
            "AES256-SHA:AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA",
        ],
    ] {
        let out = tokio::process::Command::new("openssl")
            .args(["s_client", "-connect", &addr, "-servername", "localhost"])
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success()
                || text.contains("Cipher is (NONE)")
                || text.contains("no peer certificate"),
            "{args:?} should be refused: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_http_gets_no_http_answer() {
    let s = TestServer::start(Backend::Sqlite).await.unwrap();
    let addr = s.base.trim_start_matches("https://").to_owned();
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET /api/v1/clients HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read_to_end(&mut buf)).await;
    assert!(!String::from_utf8_lossy(&buf).contains("HTTP/1.1 200"));
    assert!(
        !buf.starts_with(b"HTTP/"),
        "a plaintext HTTP response was sent"
    );
}
