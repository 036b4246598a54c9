//! The test harness: a real server over real TLS on a random port, on a fresh SQLite file or a
//! fresh PostgreSQL schema, driven through typed helpers.
#![allow(dead_code)]

pub mod authenticator;
pub mod smtp;

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

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

/// The server's clock, which a test moves forward instead of waiting (past a step-up window,
/// to a later TOTP step).
#[derive(Default)]
pub struct TestClock {
    offset_ms: AtomicI64,
}

impl zf_app::Clock for TestClock {
    fn now_ms(&self) -> i64 {
        zf_app::now_ms() + self.offset_ms.load(Ordering::SeqCst)
    }
}

impl TestClock {
    pub fn advance(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

/// A user's authenticator app, as a test holds it: the secret, the last step it has shown the
/// server (each code works once), and the recovery codes from the enrolment.
pub struct Authenticator {
    pub secret: zf_crypto::TotpSecret,
    last_step: Mutex<i64>,
    pub recovery_codes: Mutex<Vec<String>>,
}

impl Authenticator {
    pub fn new(secret: zf_crypto::TotpSecret) -> Self {
        Authenticator {
            secret,
            last_step: Mutex::new(i64::MIN),
            recovery_codes: Mutex::new(Vec::new()),
        }
    }
}

pub struct TestServer {
    pub base: String,
    /// The web UI's origin as a browser sees it, which security keys are bound to.
    pub origin: String,
    pub app: App,
    pub clock: Arc<TestClock>,
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
    pub async fn start_with(backend: Backend, mut config: AppConfig) -> Option<TestServer> {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let (database, schema) = match backend {
            Backend::Sqlite => (DatabaseChoice::parse(&data, None).expect("db"), None),
            Backend::Postgres => {
                let (url, schema) = fresh_postgres_schema().await?;
                (DatabaseChoice::Postgres(url), Some(schema))
            }
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        // Security keys are bound to a domain, so pages are addressed as localhost.
        if config.webauthn == zf_app::identity::WebauthnConfig::default() {
            config.webauthn = zf_app::identity::WebauthnConfig::for_port(addr.port());
        }
        let mut instance = Instance::open(&data, database.clone(), config)
            .await
            .expect("open instance");
        let clock = Arc::new(TestClock::default());
        instance.app = instance.app.with_clock(clock.clone());
        let files = tls::ensure_self_signed(&data).expect("certificate");
        instance.app = instance.app.with_deployment(zf_app::posture::Deployment {
            key_provider: "file".into(),
            forwarding: Vec::new(),
            certificate: Some(tls::certificate_facts(&files.cert).expect("certificate facts")),
        });
        let cert_pem = std::fs::read(&files.cert).expect("read cert");
        let tls_config = tls::server_config(&files).expect("tls config");
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
            origin: format!("https://localhost:{}", addr.port()),
            app,
            clock,
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

    /// A code the server will accept now from `authenticator`: the current step, or the next
    /// unused one, moving the server's clock forward when the current step was used already.
    pub fn totp_code(&self, authenticator: &Authenticator) -> String {
        let p = zf_crypto::TotpParams::STANDARD;
        let mut last = authenticator.last_step.lock().unwrap();
        let now = || p.step_at(zf_app::Clock::now_ms(self.clock.as_ref()));
        let step = now().max(last.saturating_add(1));
        while now() < step - 1 {
            self.clock.advance(p.step_seconds * 1000);
        }
        *last = step;
        authenticator.secret.code(step, p).to_string()
    }

    /// Sets up an authenticator on a signed-in session through the API, as a user would.
    pub async fn enrol(&self, session: &mut Session) {
        let r = session.post("/api/v1/mfa/totp", &json!({})).await;
        assert_eq!(r.status(), StatusCode::CREATED, "start enrolment");
        let body: Value = r.json().await.expect("json");
        let secret = zf_crypto::TotpSecret::from_base32(body["secret"].as_str().expect("secret"))
            .expect("base32 secret");
        let authenticator = Arc::new(Authenticator::new(secret));
        let code = self.totp_code(&authenticator);
        let r = session
            .post("/api/v1/mfa/totp/confirm", &json!({ "code": code }))
            .await;
        assert_eq!(r.status(), StatusCode::OK, "confirm enrolment");
        let body: Value = r.json().await.expect("json");
        *authenticator.recovery_codes.lock().unwrap() = body["recovery_codes"]
            .as_array()
            .expect("recovery codes")
            .iter()
            .map(|c| c.as_str().expect("code").to_owned())
            .collect();
        session.authenticator = Some(authenticator);
    }

    /// Signs in with a password and, when the user has an authenticator, its next code.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
        authenticator: Option<Arc<Authenticator>>,
    ) -> Session {
        let session = Session {
            client: self.client(true),
            base: self.base.clone(),
            username: username.to_owned(),
            authenticator,
        };
        let r = session
            .post(
                "/api/v1/session",
                &json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "login {username}");
        let body: Value = r.json().await.expect("json");
        if body["second_factor_required"] == true {
            let a = session.authenticator.as_ref().expect("an authenticator");
            let code = self.totp_code(a);
            let r = session
                .post("/api/v1/session/second-factor", &json!({ "code": code }))
                .await;
            assert_eq!(r.status(), StatusCode::OK, "second factor {username}");
        }
        session
    }

    /// Verifies the second factor again on `session`, for critical operations.
    pub async fn step_up(&self, session: &Session) -> reqwest::Response {
        let a = session.authenticator.as_ref().expect("an authenticator");
        let code = self.totp_code(a);
        session
            .post("/api/v1/session/step-up", &json!({ "code": code }))
            .await
    }

    /// Creates a user through the application (as the CLI does), signs in with the one-time
    /// password, replaces it, and sets up an authenticator if the role requires one, so the
    /// session is ready for work (with a fresh second factor).
    pub async fn signed_in(&self, username: &str, role: Role) -> Session {
        let one_time = "one-time pass phrase 4 test";
        let fresh = "A fresh pass phrase for tests";
        self.app
            .add_user(
                Username::parse(username).expect("username"),
                role,
                Some(SecretString::from(one_time)),
                Actor::cli("test"),
            )
            .await
            .expect("add user");
        let mut session = Session {
            client: self.client(true),
            base: self.base.clone(),
            username: username.to_owned(),
            authenticator: None,
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
        if self.app.config().mfa.requires(role) {
            self.enrol(&mut session).await;
        }
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
    /// The user's authenticator, once set up.
    pub authenticator: Option<Arc<Authenticator>>,
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

    /// DELETEs with a JSON body (a reason).
    pub async fn delete_with(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .json(body)
            .send()
            .await
            .expect("send")
    }

    /// Erases a client as the firm must: this session asks (the old DELETE, now a request),
    /// and `approver`, a second person, approves. Returns the decided request.
    pub async fn erase_client(&self, approver: &Session, id: &str) -> Value {
        let r = self
            .delete_with(
                &format!("/api/v1/clients/{id}"),
                &json!({"reason": "客户解约，申请删除资料"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED, "request erasure");
        let request: Value = r.json().await.expect("json");
        let r = approver
            .post(
                &format!("/api/v1/erasures/{}", request["id"].as_str().expect("id")),
                &json!({"approve": true, "reason": "已核实，同意删除"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "approve erasure");
        r.json().await.expect("json")
    }

    /// Starts a backup (`/api/v1/backups`) or a restore test (`…/restore-tests`) by hand and
    /// waits for it to end: the run goes on in the background and joins the list when it
    /// ends. Returns the run as the list shows it.
    pub async fn backup_by_hand(&self, path: &str) -> Value {
        let before = self.backups().await["runs"].as_array().expect("runs").len();
        let r = self.post(path, &json!({})).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED, "{path}");
        let started: Value = r.json().await.expect("json");
        for _ in 0..600 {
            let o = self.backups().await;
            let runs = o["runs"].as_array().expect("runs");
            if o["running"].is_null() && runs.len() > before {
                assert_eq!(runs[0]["kind"], started["kind"], "{o}");
                return runs[0].clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the run started at {path} did not end within a minute");
    }

    /// The backups overview.
    async fn backups(&self) -> Value {
        self.get("/api/v1/backups")
            .await
            .json()
            .await
            .expect("json")
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

/// Rows of one column from the raw database, NULLs left out.
async fn raw_column<T>(s: &TestServer, query: &str) -> Vec<T>
where
    T: rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a>,
{
    match &s.database {
        DatabaseChoice::Sqlite(path) => {
            let c = rusqlite::Connection::open(path).unwrap();
            let mut stmt = c.prepare(query).unwrap();
            stmt.query_map([], |r| r.get::<_, Option<T>>(0))
                .unwrap()
                .filter_map(Result::unwrap)
                .collect()
        }
        DatabaseChoice::Postgres(url) => {
            let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            c.query(query, &[])
                .await
                .unwrap()
                .iter()
                .filter_map(|r| r.get::<_, Option<T>>(0))
                .collect()
        }
    }
}

/// Runs SQL straight against the server's database — as an intruder with database access
/// would, or to age rows as time would — one batch per statement.
pub async fn sql(s: &TestServer, statements: &[&str]) {
    match &s.database {
        DatabaseChoice::Sqlite(path) => {
            let db = rusqlite::Connection::open(path).unwrap();
            for st in statements {
                db.execute_batch(st).unwrap_or_else(|e| panic!("{st}: {e}"));
            }
        }
        DatabaseChoice::Postgres(url) => {
            let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            for st in statements {
                c.batch_execute(st)
                    .await
                    .unwrap_or_else(|e| panic!("{st}: {e:?}"));
            }
        }
    }
}

/// The intruder's first step: the audit log's append-only triggers out of the way.
pub async fn disable_audit_triggers(s: &TestServer) {
    match &s.database {
        DatabaseChoice::Sqlite(_) => {
            sql(
                s,
                &[
                    "DROP TRIGGER audit_events_no_update",
                    "DROP TRIGGER audit_events_no_delete",
                ],
            )
            .await
        }
        DatabaseChoice::Postgres(_) => {
            sql(s, &["ALTER TABLE audit_events DISABLE TRIGGER USER"]).await
        }
    }
}

/// Rows of two non-null columns from the raw database.
pub async fn raw_pairs<A, B>(s: &TestServer, query: &str) -> Vec<(A, B)>
where
    A: rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a>,
    B: rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a>,
{
    match &s.database {
        DatabaseChoice::Sqlite(path) => {
            let c = rusqlite::Connection::open(path).unwrap();
            let mut stmt = c.prepare(query).unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        }
        DatabaseChoice::Postgres(url) => {
            let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            c.query(query, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect()
        }
    }
}

/// Rows of a byte column from the raw database, NULLs left out.
pub async fn raw_bytes(s: &TestServer, query: &str) -> Vec<Vec<u8>> {
    raw_column(s, query).await
}

/// Rows of a text column from the raw database, NULLs left out.
pub async fn raw_text(s: &TestServer, query: &str) -> Vec<String> {
    raw_column(s, query).await
}

/// Every byte the SQLite store has written: the database file, its WAL and shared memory.
pub fn sqlite_bytes(server: &TestServer) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(server.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("zhangfang.db") {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    all
}

/// Every row of every table of the test schema, as PostgreSQL renders it to text (bytea as hex).
pub async fn postgres_text(server: &TestServer) -> String {
    let url = postgres_url().unwrap();
    let schema = server.schema.clone().unwrap();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let tables = client
        .query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .await
        .unwrap();
    assert!(
        tables.len() >= 6,
        "expected the schema's tables, found {}",
        tables.len()
    );
    let mut all = String::new();
    for t in tables {
        let name: String = t.get(0);
        let rows = client
            .query(&format!("SELECT t::text FROM {schema}.{name} t"), &[])
            .await
            .unwrap();
        for r in rows {
            all.push_str(r.get::<_, &str>(0));
            all.push('\n');
        }
    }
    all
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The form token a page carries in its forms.
pub fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a form token on the page")
        .to_owned()
}
