//! The test harness: a real server over real TLS on a random port, on a fresh SQLite file or a
//! fresh PostgreSQL schema, driven through typed helpers.
#![allow(dead_code)]

use std::path::PathBuf;

use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use zf_app::{App, AppConfig};
use zf_audit::{Actor, StoredEvent};
use zf_domain::Username;
use zf_policy::Role;
use zf_server::{tls, DatabaseChoice, Instance};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `<name>_sqlite` and `<name>_postgres` tests from one async story `fn(Backend)`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::Backend::Sqlite).await }
            )*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::Backend::Postgres).await }
            )*
        }
    };
}

/// The PostgreSQL URL for tests, or `None` to skip. With `ZF_REQUIRE_POSTGRES=1` (as CI sets
/// it) a missing URL fails the test instead of skipping it.
pub fn postgres_url() -> Option<String> {
    match std::env::var("ZF_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("ZF_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "ZF_REQUIRE_POSTGRES=1 but ZF_TEST_POSTGRES_URL is not set"
            );
            eprintln!("skipping PostgreSQL: ZF_TEST_POSTGRES_URL not set");
            None
        }
    }
}

/// A fresh schema on the test database; returns the URL that selects it.
pub async fn fresh_postgres_schema() -> Option<(String, String)> {
    let url = postgres_url()?;
    let schema = format!("zf_t_{}", hex::encode(zf_crypto::random_bytes::<6>()));
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("create schema");
    let sep = if url.contains('?') { '&' } else { '?' };
    Some((
        format!("{url}{sep}options=-csearch_path%3D{schema}"),
        schema,
    ))
}

pub struct TestServer {
    pub base: String,
    pub app: App,
    pub dir: TempDir,
    pub database: DatabaseChoice,
    pub schema: Option<String>,
    cert_pem: Vec<u8>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestServer {
    /// Starts a server; `None` when the backend is unavailable and not required.
    pub async fn start(backend: Backend) -> Option<TestServer> {
        Self::start_with(backend, AppConfig::default()).await
    }

    /// Starts a server with the given application settings (timeouts, monitoring rules).
    pub async fn start_with(backend: Backend, config: AppConfig) -> Option<TestServer> {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let (database, schema) = match backend {
            Backend::Sqlite => (DatabaseChoice::parse(&data, None).expect("db"), None),
            Backend::Postgres => {
                let (url, schema) = fresh_postgres_schema().await?;
                (DatabaseChoice::Postgres(url), Some(schema))
            }
        };
        let instance = Instance::open(&data, database.clone(), config)
            .await
            .expect("open instance");
        let files = tls::ensure_self_signed(&data).expect("certificate");
        let cert_pem = std::fs::read(&files.cert).expect("read cert");
        let tls_config = tls::server_config(&files).expect("tls config");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let app = instance.app.clone();
        tokio::spawn(zf_server::serve(
            listener,
            tls_config,
            zf_server::router(instance.app),
            async {
                let _ = rx.await;
            },
        ));
        Some(TestServer {
            base: format!("https://{addr}"),
            app,
            dir,
            database,
            schema,
            cert_pem,
            shutdown: Some(tx),
        })
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn cert_pem(&self) -> &[u8] {
        &self.cert_pem
    }

    /// An HTTPS client that trusts only this server's certificate.
    pub fn client(&self, cookies: bool) -> reqwest::Client {
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&self.cert_pem).expect("cert"))
            .https_only(true)
            .cookie_store(cookies)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    /// Creates a user through the application (as the CLI does), signs in with the one-time
    /// password, and replaces it, so the session is ready for work.
    pub async fn signed_in(&self, username: &str, role: Role) -> Session {
        let one_time = "one-time pass phrase 4 test";
        let fresh = "a fresh pass phrase for tests";
        self.app
            .add_user(
                Username::parse(username).expect("username"),
                role,
                Some(SecretString::from(one_time)),
                Actor::cli("test"),
            )
            .await
            .expect("add user");
        let session = Session {
            client: self.client(true),
            base: self.base.clone(),
            username: username.to_owned(),
        };
        let r = session
            .post(
                "/api/v1/session",
                &json!({"username": username, "password": one_time}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "login {username}");
        let r = session
            .client
            .put(session.url("/api/v1/session/password"))
            .json(&json!({"current_password": one_time, "new_password": fresh}))
            .send()
            .await
            .expect("send");
        assert_eq!(
            r.status(),
            StatusCode::NO_CONTENT,
            "password change {username}"
        );
        session
    }

    pub async fn audit(&self) -> Vec<StoredEvent> {
        self.app
            .store()
            .audit_events(0, 100_000)
            .await
            .expect("audit events")
    }

    pub async fn client_count(&self) -> u64 {
        self.app
            .store()
            .client_count(zf_policy::Scope::All)
            .await
            .expect("count")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A signed-in HTTPS client.
pub struct Session {
    pub client: reqwest::Client,
    pub base: String,
    pub username: String,
}

impl Session {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("send")
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("send")
    }

    pub async fn patch(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .json(body)
            .send()
            .await
            .expect("send")
    }

    pub async fn put(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(self.url(path))
            .json(body)
            .send()
            .await
            .expect("send")
    }

    /// POSTs raw bytes (an upload or an import file).
    pub async fn post_bytes(&self, path: &str, body: Vec<u8>) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .expect("send")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .send()
            .await
            .expect("send")
    }

    pub async fn create_client(&self, body: &Value) -> Value {
        let r = self.post("/api/v1/clients", body).await;
        assert_eq!(r.status(), StatusCode::CREATED, "create client");
        r.json().await.expect("json")
    }
}

/// A valid client body; `n` varies the USCC and ID number.
pub fn client_body(n: u32, id_number: &str) -> Value {
    let uscc = zf_domain::Uscc::with_check_char(&format!("91310000{:09}", n)).expect("uscc");
    json!({
        "name": format!("上海测试贸易有限公司{n}"),
        "uscc": uscc.as_str(),
        "taxpayer_type": "general",
        "legal_rep_name": "张三",
        "legal_rep_id_number": id_number,
    })
}

/// A valid ID number; `n` varies the sequence digits.
pub fn id_number(n: u32) -> String {
    zf_domain::IdNumber::with_check_char(&format!("11010519800101{:03}", n % 1000))
        .expect("id")
        .as_str()
        .to_owned()
}
