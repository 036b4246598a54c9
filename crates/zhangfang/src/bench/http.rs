//! `zhangfang bench` itself: a scratch demo firm, the real server over TLS on loopback with every
//! security layer on, driven by the load generator in `load.rs`. Each HTTP row stands beside a
//! trivial endpoint of the same server measured in the same run; each other row beside the raw
//! primitive it is built on.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use hyper::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use zf_app::backup::Quiet;
use zf_app::AppConfig;
use zf_audit::{Actor, StoredEvent, GENESIS};
use zf_crypto::{AuditChainKey, TotpParams, TotpSecret};
use zf_domain::{IdNumber, Uscc, Username};
use zf_policy::Role;
use zf_server::{tls, DatabaseChoice, Instance};

use super::load::{drive, MakeRequest, Outcome, Shape, Target};
use super::ms;

#[derive(Args, Debug)]
pub struct HttpArgs {
    /// Demo clients in the scratch instance (each with its contact, contract, books, filings
    /// and interaction).
    #[arg(long, default_value_t = 100_000)]
    clients: u32,
    /// Concurrent keep-alive connections of the load generator.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds each row is measured, after a warm-up of a fifth of that (at most 2 s).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Keep the scratch instance in DIR and reuse it on the next run (a demo firm of 100,000
    /// clients takes minutes to build); clients are added until it has --clients.
    #[arg(long, value_name = "DIR")]
    scratch: Option<PathBuf>,
    /// Also give the figures as JSON: to FILE, or to standard output without one.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    json: Option<PathBuf>,
    /// Measure only these rows (the /healthz baseline always runs): detail, list, search,
    /// create, update, login, audit, export, import, backup, restore, records, rotate,
    /// reencrypt.
    #[arg(long, value_name = "ROW", value_delimiter = ',', value_parser = ROWS)]
    only: Vec<String>,
}

const ROWS: [&str; 14] = [
    "detail",
    "list",
    "search",
    "create",
    "update",
    "login",
    "audit",
    "export",
    "import",
    "backup",
    "restore",
    "records",
    "rotate",
    "reencrypt",
];

impl HttpArgs {
    fn wants(&self, row: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|r| r == row)
    }
}

/// One line of the table: what was measured, beside what.
struct Row {
    name: &'static str,
    figure: Figure,
    baseline: Option<(String, f64)>,
}

enum Figure {
    Http(Outcome),
    Rate { per_second: f64, unit: &'static str },
}

impl Row {
    fn per_second(&self) -> f64 {
        match &self.figure {
            Figure::Http(o) => o.per_second(),
            Figure::Rate { per_second, .. } => *per_second,
        }
    }

    fn ratio(&self) -> Option<f64> {
        self.baseline
            .as_ref()
            .map(|(_, b)| self.per_second() / b.max(1e-9))
    }

    fn markdown(&self) -> String {
        let (rate, p50, p99, errors) = match &self.figure {
            Figure::Http(o) => (
                format!("{:.0} req/s", o.per_second()),
                format!("{:.2} ms", ms(o.percentile(0.5))),
                format!("{:.2} ms", ms(o.percentile(0.99))),
                o.errors.to_string(),
            ),
            Figure::Rate { per_second, unit } => (
                // Small rates (a backup of a tiny firm) keep their decimals.
                if *per_second >= 100.0 {
                    format!("{per_second:.0} {unit}/s")
                } else {
                    format!("{per_second:.2} {unit}/s")
                },
                "—".into(),
                "—".into(),
                "0".into(),
            ),
        };
        let (baseline, ratio) = match (&self.baseline, self.ratio()) {
            (Some((label, _)), Some(r)) => (label.clone(), format!("{r:.3}")),
            _ => ("—".into(), "—".into()),
        };
        format!(
            "| {} | {rate} | {p50} | {p99} | {errors} | {baseline} | {ratio} |",
            self.name
        )
    }

    fn json(&self) -> Value {
        let mut v = json!({
            "name": self.name,
            "per_second": self.per_second(),
            "baseline": self.baseline.as_ref().map(|(l, _)| l),
            "baseline_per_second": self.baseline.as_ref().map(|(_, b)| b),
            "ratio": self.ratio(),
        });
        if let Figure::Http(o) = &self.figure {
            v["requests"] = json!(o.completed);
            v["errors"] = json!(o.errors);
            v["p50_ms"] = json!(ms(o.percentile(0.5)));
            v["p99_ms"] = json!(ms(o.percentile(0.99)));
        }
        v
    }
}

/// A minimal API client for setting the run up: it carries the session cookie by hand, so the
/// load generator can use the same session.
struct Setup {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Setup {
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let method = reqwest::Method::from_bytes(method.as_str().as_bytes())?;
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(c) = self.cookie.clone() {
            req = req.header(reqwest::header::COOKIE, c);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.with_context(|| path.to_owned())?;
        for set in r.headers().get_all(reqwest::header::SET_COOKIE) {
            if let Some(pair) = set.to_str().ok().and_then(|s| s.split(';').next()) {
                if pair.starts_with(zf_server::SESSION_COOKIE) {
                    self.cookie = Some(pair.to_owned());
                }
            }
        }
        let status = StatusCode::from_u16(r.status().as_u16())?;
        let text = r.text().await?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    async fn require(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
        want: StatusCode,
    ) -> anyhow::Result<Value> {
        let (status, value) = self.call(method, path, body).await?;
        anyhow::ensure!(status == want, "{path}: {status} {value}");
        Ok(value)
    }
}

const ONE_TIME: &str = "bench one-time pass phrase";
const PASSWORD: &str = "bench pass phrase, long enough";

pub async fn run(args: HttpArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.clients > 0, "--clients must be at least 1");
    anyhow::ensure!(args.connections > 0, "--connections must be at least 1");
    anyhow::ensure!(
        args.duration.is_finite() && args.duration > 0.0,
        "--duration must be a positive number of seconds"
    );
    let duration = Duration::from_secs_f64(args.duration);
    let shape = Shape {
        connections: args.connections,
        warmup: (duration / 5).min(Duration::from_secs(2)),
        duration,
    };
    let temporary;
    let dir: PathBuf = match &args.scratch {
        Some(d) => d.clone(),
        None => {
            temporary = tempfile::tempdir().context("scratch directory")?;
            temporary.path().to_path_buf()
        }
    };
    let data = dir.join("data");
    let listener = TcpListener::bind("127.0.0.1:0").await.context("bind")?;
    let addr = listener.local_addr()?;
    let config = AppConfig {
        webauthn: zf_app::identity::WebauthnConfig::for_port(addr.port()),
        // The re-encryption row measures the work, not the wait for requests in flight.
        data_keys: zf_app::data_keys::DataKeyPolicy {
            grace_ms: 0,
            batch: 500,
            ..zf_app::data_keys::DataKeyPolicy::default()
        },
        ..AppConfig::default()
    };
    let instance = Instance::open(&data, DatabaseChoice::parse(&data, None)?, config).await?;
    let app = instance.app.clone();
    let have = app.store().client_count(zf_policy::Scope::All).await?;
    if have < u64::from(args.clients) {
        let add = args.clients - u32::try_from(have).unwrap_or(0);
        eprintln!("Creating {add} demo clients in {}…", data.display());
        let t = Instant::now();
        crate::crm::demo_firm(&app, add, 2026 + have, false).await?;
        eprintln!("  {:.1} s", t.elapsed().as_secs_f64());
    }
    let files = tls::ensure_self_signed(&data)?;
    let cert_pem = std::fs::read(&files.cert).context("read the certificate")?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(zf_server::serve(
        listener,
        tls::server_config(&files)?,
        zf_server::router(app.clone()),
        async {
            let _ = stopped.await;
        },
    ));

    let (mut setup, username) = sign_in(&app, addr, &cert_pem).await?;
    let (ids, cursors) = walk_clients(&mut setup).await?;
    anyhow::ensure!(!ids.is_empty(), "the scratch instance has no clients");
    let id_numbers = sample_id_numbers(&mut setup, &ids).await?;
    let target = Target::new(addr, &cert_pem)?;
    let signed_in = target.with_cookie(setup.cookie.as_deref().context("no session cookie")?)?;
    let total = ids.len();
    println!(
        "zhangfang bench: {total} clients, {} connections, {:.1} s a row after {:.1} s warm-up, server and load generator on this machine's {} cores",
        shape.connections,
        shape.duration.as_secs_f64(),
        shape.warmup.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );

    let mut rows = Vec::new();
    let t = target.clone();
    let healthz = drive(
        &target,
        shape,
        StatusCode::OK,
        Arc::new(move |_| t.request(Method::GET, "/healthz", None)),
    )
    .await?;
    let trivial = healthz.per_second();
    rows.push(Row {
        name: "trivial TLS endpoint (GET /healthz)",
        figure: Figure::Http(healthz),
        baseline: None,
    });
    let beside = || Some(("/healthz".to_owned(), trivial));

    let ids = Arc::new(ids);
    let pick = |n: u64, len: usize| (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as usize % len;
    // Each HTTP row: its key for --only, its name, the session it runs in, the answer expected
    // and how to make its n-th request.
    let mut plans: Vec<(&str, &'static str, &Target, StatusCode, MakeRequest)> = Vec::new();

    let (t, i) = (signed_in.clone(), ids.clone());
    plans.push((
        "detail",
        "get client detail (decrypt, audited sensitive read)",
        &signed_in,
        StatusCode::OK,
        Arc::new(move |n| {
            let path = format!("/api/v1/clients/{}", i[pick(n, i.len())]);
            t.request(Method::GET, &path, None)
        }),
    ));

    let (t, c) = (signed_in.clone(), Arc::new(cursors));
    plans.push((
        "list",
        "list page of 50 (masked)",
        &signed_in,
        StatusCode::OK,
        Arc::new(move |n| {
            let path = match c.get(pick(n, c.len() + 1)) {
                Some(cursor) => format!("/api/v1/clients?limit=50&cursor={cursor}"),
                None => "/api/v1/clients?limit=50".to_owned(),
            };
            t.request(Method::GET, &path, None)
        }),
    ));

    let (t, q) = (signed_in.clone(), Arc::new(id_numbers));
    plans.push((
        "search",
        "exact search on an encrypted field (ID number)",
        &signed_in,
        StatusCode::OK,
        Arc::new(move |n| {
            let body = json!({ "legal_rep_id_number": q[pick(n, q.len())] }).to_string();
            t.request(Method::POST, "/api/v1/clients/search", Some(&body))
        }),
    ));

    // New clients are numbered after every client already there, under a region the demo
    // does not use, so their USCCs never collide, also on a reused scratch instance.
    let first = app.store().client_count(zf_policy::Scope::All).await? + 1;
    let t = signed_in.clone();
    plans.push((
        "create",
        "create client",
        &signed_in,
        StatusCode::CREATED,
        Arc::new(move |n| {
            let k = first + n;
            let uscc = Uscc::with_check_char(&format!("91530102{:09}", 300_000_000 + k));
            // No two bench clients share an ID number, so a later search row finds one
            // client, not hundreds.
            let id = bench_id_number("530102", k);
            let body = json!({
                "name": format!("昆明压测商贸有限公司{k}"),
                "uscc": uscc.map(|u| u.as_str().to_owned()).unwrap_or_default(),
                "taxpayer_type": "small_scale",
                "legal_rep_name": "赵六",
                "legal_rep_id_number": id.map(|i| i.as_str().to_owned()).unwrap_or_default(),
            })
            .to_string();
            t.request(Method::POST, "/api/v1/clients", Some(&body))
        }),
    ));

    let (t, i) = (signed_in.clone(), ids.clone());
    plans.push((
        "update",
        "update client",
        &signed_in,
        StatusCode::OK,
        Arc::new(move |n| {
            let body = json!({ "notes": format!("bench note {n}") }).to_string();
            let path = format!("/api/v1/clients/{}", i[pick(n, i.len())]);
            t.request(Method::PATCH, &path, Some(&body))
        }),
    ));

    let t = target.clone();
    let body = json!({ "username": username.as_str(), "password": PASSWORD }).to_string();
    plans.push((
        "login",
        "login (password step, argon2id)",
        &target,
        StatusCode::OK,
        Arc::new(move |_| t.request(Method::POST, "/api/v1/session", Some(&body))),
    ));

    for (key, name, session, expect, make) in plans {
        if args.wants(key) {
            rows.push(Row {
                name,
                figure: Figure::Http(drive(session, shape, expect, make).await?),
                baseline: beside(),
            });
        }
    }

    let _ = stop.send(());
    let _ = server.await;
    rows.extend(offline_rows(&app, &dir, &data, &username, &args).await?);

    println!();
    println!("| measure | throughput | p50 | p99 | errors | baseline | ratio |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for row in &rows {
        println!("{}", row.markdown());
    }
    let errors: u64 = rows
        .iter()
        .filter_map(|r| match &r.figure {
            Figure::Http(o) => Some(o.errors),
            Figure::Rate { .. } => None,
        })
        .sum();
    for row in &rows {
        if let Figure::Http(Outcome {
            first_error: Some(e),
            ..
        }) = &row.figure
        {
            println!("{}: first error: {e}", row.name);
        }
    }
    if let Some(path) = &args.json {
        let figures = json!({
            "clients": total,
            "connections": shape.connections,
            "duration_s": shape.duration.as_secs_f64(),
            "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "rows": rows.iter().map(Row::json).collect::<Vec<_>>(),
        });
        let text = serde_json::to_string_pretty(&figures)?;
        if path == Path::new("-") {
            println!("{text}");
        } else {
            std::fs::write(path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    anyhow::ensure!(errors == 0, "{errors} requests failed");
    Ok(())
}

/// A supervisor (every client in scope, ID numbers visible, so a detail read decrypts and is
/// audited) created for this run, signed in over the API as a new user would be: the one-time
/// password replaced, an authenticator enrolled.
async fn sign_in(
    app: &zf_app::App,
    addr: SocketAddr,
    cert_pem: &[u8],
) -> anyhow::Result<(Setup, Username)> {
    let username = Username::parse(&format!("bench-{}", zf_app::now_ms()))?;
    app.add_user(
        username.clone(),
        Role::Supervisor,
        Some(SecretString::from(ONE_TIME)),
        Actor::cli("bench"),
    )
    .await?;
    let mut setup = Setup {
        http: reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(cert_pem)?)
            .https_only(true)
            .build()?,
        base: format!("https://{addr}"),
        cookie: None,
    };
    let login = json!({ "username": username.as_str(), "password": ONE_TIME });
    setup
        .require(Method::POST, "/api/v1/session", Some(login), StatusCode::OK)
        .await?;
    let change = json!({ "current_password": ONE_TIME, "new_password": PASSWORD });
    setup
        .require(
            Method::PUT,
            "/api/v1/session/password",
            Some(change),
            StatusCode::NO_CONTENT,
        )
        .await?;
    let begun = setup
        .require(
            Method::POST,
            "/api/v1/mfa/totp",
            Some(json!({})),
            StatusCode::CREATED,
        )
        .await?;
    let secret = TotpSecret::from_base32(begun["secret"].as_str().context("TOTP secret")?)?;
    let p = TotpParams::STANDARD;
    let code = secret.code(p.step_at(zf_app::now_ms()), p).to_string();
    setup
        .require(
            Method::POST,
            "/api/v1/mfa/totp/confirm",
            Some(json!({ "code": code })),
            StatusCode::OK,
        )
        .await?;
    setup
        .require(Method::GET, "/api/v1/session", None, StatusCode::OK)
        .await?;
    Ok((setup, username))
}

/// Every client's id, page by page as a user would page, and the cursors met on the way (the
/// list row starts its pages there, spread over the whole firm).
async fn walk_clients(setup: &mut Setup) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let (mut ids, mut cursors) = (Vec::new(), Vec::new());
    let mut path = "/api/v1/clients?limit=200".to_owned();
    loop {
        let page = setup
            .require(Method::GET, &path, None, StatusCode::OK)
            .await?;
        for item in page["items"].as_array().context("items")? {
            ids.push(item["id"].as_str().context("id")?.to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => {
                cursors.push(c.to_owned());
                path = format!("/api/v1/clients?limit=200&cursor={c}");
            }
            None => return Ok((ids, cursors)),
        }
    }
}

/// The ID numbers of up to 1,000 clients, read in full by the supervisor, to search for.
async fn sample_id_numbers(setup: &mut Setup, ids: &[String]) -> anyhow::Result<Vec<String>> {
    let step = (ids.len() / 1000).max(1);
    let mut numbers = Vec::new();
    for id in ids.iter().step_by(step) {
        let client = setup
            .require(
                Method::GET,
                &format!("/api/v1/clients/{id}"),
                None,
                StatusCode::OK,
            )
            .await?;
        let value = &client["legal_rep_id_number"];
        anyhow::ensure!(
            value["visibility"] == "visible",
            "ID number not visible: {value}"
        );
        numbers.push(value["value"].as_str().context("ID number")?.to_owned());
    }
    Ok(numbers)
}

/// The rows measured inside the process, after the server stopped: audit verification and
/// backup, each beside its raw primitive on this machine.
async fn offline_rows(
    app: &zf_app::App,
    dir: &Path,
    data: &Path,
    username: &Username,
    args: &HttpArgs,
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    if args.wants("audit") {
        rows.push(audit_row(app).await?);
    }
    if args.wants("export") {
        rows.push(export_row(app, username).await?);
    }
    if args.wants("import") {
        rows.push(import_row(app, username).await?);
    }
    if args.wants("backup") || args.wants("restore") {
        // The restore row restores the backup row's file, so a restore alone still backs up.
        let file = dir.join("bench.zfbackup");
        let backup = backup_row(app, dir, data, &file).await;
        let restore = match (&backup, args.wants("restore")) {
            (Ok(_), true) => Some(restore_row(dir, data, &file).await),
            _ => None,
        };
        let _ = std::fs::remove_file(&file);
        let backup = backup?;
        if args.wants("backup") {
            rows.push(backup);
        }
        if let Some(restore) = restore {
            rows.push(restore?);
        }
    }
    if args.wants("records") {
        rows.extend(record_rows(app).await?);
    }
    // Last: they rewrap or replace every key the rows before them read.
    if args.wants("rotate") {
        rows.push(rotate_row(app).await?);
    }
    if args.wants("reencrypt") {
        rows.push(reencrypt_row(app).await?);
    }
    Ok(rows)
}

/// Sealing and opening whole client records of the demo firm — every sealed value of a client
/// (ID number, notes, record payloads, documents) at its stored size — under AES-256-GCM and
/// under SM4-GCM, each client with its own data key, as the server does per client.
async fn record_rows(app: &zf_app::App) -> anyhow::Result<Vec<Row>> {
    use zf_store::KeyHolder;
    let holders = app
        .store()
        .key_holders(
            KeyHolder::Client,
            zf_store::HolderFilter::After(None),
            2_000,
        )
        .await?;
    let ids: Vec<String> = holders.iter().map(|h| h.id.clone()).collect();
    let mut sizes: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
    for value in app.store().sealed_values(KeyHolder::Client, ids).await? {
        // Header, nonce and tag around the plaintext.
        let plain = value.sealed.as_bytes().len().saturating_sub(6 + 12 + 16);
        sizes.entry(value.holder_id).or_default().push(plain);
    }
    anyhow::ensure!(!sizes.is_empty(), "the demo firm has no sealed values");
    let records: Vec<Vec<Vec<u8>>> = sizes
        .values()
        .map(|lens| lens.iter().map(|n| vec![0x5a; *n]).collect())
        .collect();
    let values: usize = records.iter().map(Vec::len).sum();
    let aad = zf_crypto::Aad::new("client_records", "bench", "sealed");
    let rate = |suite: zf_crypto::CipherSuite| -> anyhow::Result<f64> {
        let rings: Vec<zf_crypto::DekRing> = records
            .iter()
            .map(|_| {
                zf_crypto::DekRing::new(suite, zf_crypto::KeyVersion(1), zf_crypto::Dek::generate())
            })
            .collect();
        let t = Instant::now();
        for (ring, record) in rings.iter().zip(&records) {
            for value in record {
                let sealed = ring.seal(value, &aad);
                std::hint::black_box(ring.open(&sealed, &aad)?);
            }
        }
        Ok(records.len() as f64 / t.elapsed().as_secs_f64().max(1e-9))
    };
    // Warm both once, then measure.
    rate(zf_crypto::CipherSuite::Aes256Gcm)?;
    rate(zf_crypto::CipherSuite::Sm4Gcm)?;
    let aes = rate(zf_crypto::CipherSuite::Aes256Gcm)?;
    let sm4 = rate(zf_crypto::CipherSuite::Sm4Gcm)?;
    let per = values as f64 / records.len() as f64;
    // The bare cipher over the same bytes: one key schedule per record, a counter nonce, no
    // envelope, no associated data.
    let raw = {
        use aes_gcm::aead::{Aead, KeyInit};
        let t = Instant::now();
        for record in &records {
            let cipher = aes_gcm::Aes256Gcm::new(&[7u8; 32].into());
            for (n, value) in record.iter().enumerate() {
                let mut nonce = [0u8; 12];
                nonce[..8].copy_from_slice(&(n as u64).to_be_bytes());
                let sealed = cipher
                    .encrypt(&nonce.into(), value.as_slice())
                    .map_err(|_| anyhow::anyhow!("AES-256-GCM refused to seal"))?;
                std::hint::black_box(
                    cipher
                        .decrypt(&nonce.into(), sealed.as_slice())
                        .map_err(|_| anyhow::anyhow!("AES-256-GCM refused to open"))?,
                );
            }
        }
        records.len() as f64 / t.elapsed().as_secs_f64().max(1e-9)
    };
    Ok(vec![
        Row {
            name: "client record sealed and opened, AES-256-GCM (demo sizes)",
            figure: Figure::Rate {
                per_second: aes,
                unit: "records",
            },
            baseline: Some(("bare AES-256-GCM over the same bytes".into(), raw)),
        },
        Row {
            name: "client record sealed and opened, SM4-GCM (demo sizes)",
            figure: Figure::Rate {
                per_second: sm4,
                unit: "records",
            },
            baseline: Some((
                format!(
                    "AES-256-GCM, same {} records of {per:.1} values",
                    records.len()
                ),
                aes,
            )),
        },
    ])
}

/// Re-encryption of the whole firm, as `zhangfang keys rotate --reencrypt` does it — a new data
/// key for every client and lead, every value opened and sealed again, swapped in pages, the old
/// keys dropped — beside the cryptography alone: one value opened and sealed again in memory.
async fn reencrypt_row(app: &zf_app::App) -> anyhow::Result<Row> {
    let t = Instant::now();
    app.reencrypt_start(zf_audit::Actor::system()).await?;
    let job = app
        .key_job_run(&|_| {})
        .await?
        .context("the re-encryption job did not run here")?;
    let took = t.elapsed();
    anyhow::ensure!(
        job.state == "finished" && job.values_done > 0,
        "the re-encryption did not finish: {job:?}"
    );
    let aad = zf_crypto::Aad::new("clients", "bench", "legal_rep_id_number");
    let old = zf_crypto::Dek::generate();
    let sealed = old.seal(zf_crypto::KeyVersion(1), b"110101199003074578", &aad);
    let ring = zf_crypto::DekRing::new(
        zf_crypto::CipherSuite::Aes256Gcm,
        zf_crypto::KeyVersion(2),
        zf_crypto::Dek::generate(),
    )
    .with_previous(zf_crypto::KeyVersion(1), old);
    let raw = per_second(20_000, || {
        let plain = ring.open(&sealed, &aad)?;
        std::hint::black_box(ring.seal(&plain, &aad));
        Ok(())
    })?;
    Ok(Row {
        name: "re-encryption (new data keys, every value sealed again)",
        figure: Figure::Rate {
            per_second: job.values_done as f64 / took.as_secs_f64().max(1e-9),
            unit: "values",
        },
        baseline: Some(("open and seal one value in memory".into(), raw)),
    })
}

/// A KEK rotation of the whole firm, as `zhangfang keys rotate` does it — every data and
/// system key rewrapped under a new version in pages, each swapped with its event, the old
/// version retired — beside the cryptography alone: one key unwrapped and wrapped again.
async fn rotate_row(app: &zf_app::App) -> anyhow::Result<Row> {
    let t = Instant::now();
    let report = app
        .key_rotate(
            zf_audit::Actor::system(),
            std::time::Duration::ZERO,
            &|_| {},
        )
        .await?;
    let took = t.elapsed();
    anyhow::ensure!(
        report.rewrapped > 0 && !report.retired.is_empty(),
        "the rotation rewrapped nothing: {report:?}"
    );
    let master = zf_crypto::MasterKey::generate();
    let (old, new) = (
        master.kek(zf_crypto::KeyVersion(1)),
        master.kek(zf_crypto::KeyVersion(2)),
    );
    let wrapped = old.wrap(&zf_crypto::Dek::generate(), b"client:bench");
    let raw = per_second(20_000, || {
        old.rewrap(zf_crypto::KeyKind::Dek, &wrapped, b"client:bench", &new)?;
        Ok(())
    })?;
    Ok(Row {
        name: "KEK rotation (every key rewrapped, old version retired)",
        figure: Figure::Rate {
            per_second: report.rewrapped as f64 / took.as_secs_f64().max(1e-9),
            unit: "keys",
        },
        baseline: Some(("rewrap one key in memory".into(), raw)),
    })
}

/// Every client in scope read, opened and written as CSV, as `zhangfang export` does, beside
/// the cryptography alone that it needs per client: unwrapping its data key and opening its ID
/// number.
async fn export_row(app: &zf_app::App, username: &Username) -> anyhow::Result<Row> {
    let grant = app
        .operator_grant(username, zf_policy::Operation::ClientExport)
        .await?;
    let t = Instant::now();
    let export = app
        .client_export(
            &grant,
            zf_tabular::Format::Csv,
            &zf_app::RequestMeta::default(),
        )
        .await?;
    let took = t.elapsed();
    anyhow::ensure!(export.rows > 0, "the export holds no client");
    let kek = zf_crypto::MasterKey::generate().kek(zf_crypto::KeyVersion(1));
    let dek = zf_crypto::Dek::generate();
    let wrapped = kek.wrap(&dek, b"client");
    let aad = zf_crypto::Aad::new("clients", "bench", "legal_rep_id_number");
    let sealed = dek.seal(zf_crypto::KeyVersion(1), b"110101199003074578", &aad);
    let raw = per_second(20_000, || {
        let dek = kek.unwrap_key(&wrapped, b"client")?;
        dek.open(&sealed, &aad)?;
        Ok(())
    })?;
    Ok(Row {
        name: "export of every client (CSV, ID numbers in full)",
        figure: Figure::Rate {
            per_second: export.rows as f64 / took.as_secs_f64().max(1e-9),
            unit: "clients",
        },
        baseline: Some(("unwrap a data key and open a field".into(), raw)),
    })
}

/// A CSV of new clients imported in one go, as `zhangfang import` does (every row checked,
/// then every client sealed under a new data key and written with its event), beside the
/// cryptography alone: a new data key wrapped, a field sealed and its blind index.
async fn import_row(app: &zf_app::App, username: &Username) -> anyhow::Result<Row> {
    let grant = app
        .operator_grant(username, zf_policy::Operation::ClientImport)
        .await?;
    let start = app.store().client_count(zf_policy::Scope::All).await? + 1;
    let count = 5_000u64;
    let mut csv =
        String::from("客户名称,统一社会信用代码,纳税人类型,法定代表人,法定代表人身份证号\n");
    for k in start..start + count {
        let uscc = Uscc::with_check_char(&format!("91530103{:09}", 300_000_000 + k))
            .context("a generated USCC")?;
        let id = bench_id_number("530103", k)?;
        csv.push_str(&format!(
            "大理导入测试有限公司{k},{},small_scale,钱七,{}\n",
            uscc.as_str(),
            id.as_str()
        ));
    }
    let t = Instant::now();
    let report = app
        .client_import(
            &grant,
            csv.as_bytes(),
            false,
            &zf_app::RequestMeta::default(),
        )
        .await?;
    let took = t.elapsed();
    anyhow::ensure!(
        report.written && report.imported as u64 == count,
        "the import was refused: {:?}",
        report.errors.first()
    );
    let kek = zf_crypto::MasterKey::generate().kek(zf_crypto::KeyVersion(1));
    let index = zf_crypto::BlindIndexKey::generate();
    let aad = zf_crypto::Aad::new("clients", "bench", "legal_rep_id_number");
    let raw = per_second(20_000, || {
        let dek = zf_crypto::Dek::generate();
        std::hint::black_box(kek.wrap(&dek, b"client"));
        std::hint::black_box(dek.seal(zf_crypto::KeyVersion(1), b"110101199003074578", &aad));
        std::hint::black_box(index.index("clients.legal_rep_id_number", b"110101199003074578"));
        Ok(())
    })?;
    Ok(Row {
        name: "import of 5,000 new clients (CSV)",
        figure: Figure::Rate {
            per_second: count as f64 / took.as_secs_f64().max(1e-9),
            unit: "clients",
        },
        baseline: Some(("new data key wrapped, field sealed and indexed".into(), raw)),
    })
}

/// The backup just taken, verified and restored into an empty SQLite database, beside a raw
/// copy of the same file.
async fn restore_row(dir: &Path, data: &Path, file: &Path) -> anyhow::Result<Row> {
    let master = zf_crypto::MasterKey::load(&data.join("master.key"))?;
    let key = Arc::new(master.backup_key());
    let target = dir.join("bench-restored.db");
    let _ = std::fs::remove_file(&target);
    let store = zf_store::SqliteStore::open(&target).await?;
    let bytes = std::fs::metadata(file)?.len();
    let t = Instant::now();
    zf_app::backup::restore_file(
        &store,
        file.to_owned(),
        key,
        false,
        "bench",
        Arc::new(Quiet),
    )
    .await?;
    let took = t.elapsed();
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", target.display()));
    }
    beside_raw_copy(
        "restore into an empty SQLite database, backup MB",
        bytes,
        took,
        file,
        dir,
        "raw copy of the backup file",
    )
}

/// A row of `bytes` handled in `took` as MB/s, beside a synced raw copy of `source`.
fn beside_raw_copy(
    name: &'static str,
    bytes: u64,
    took: Duration,
    source: &Path,
    dir: &Path,
    label: &str,
) -> anyhow::Result<Row> {
    let copy = dir.join("bench.copy");
    let copied = super::raw_copy(source, &copy);
    let _ = std::fs::remove_file(&copy);
    let (copied, raw) = copied?;
    Ok(Row {
        name,
        figure: Figure::Rate {
            per_second: super::mb_per_s(bytes, took),
            unit: "MB",
        },
        baseline: Some((label.to_owned(), super::mb_per_s(copied, raw))),
    })
}

/// How often `one` runs a second, over `n` runs.
fn per_second(n: u32, mut one: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let t = Instant::now();
    for _ in 0..n {
        one()?;
    }
    Ok(f64::from(n) / t.elapsed().as_secs_f64().max(1e-9))
}

/// A valid ID number of `region` that no other bench client shares: a birth date and sequence
/// of its own per `k`.
fn bench_id_number(region: &str, k: u64) -> anyhow::Result<IdNumber> {
    let born = time::Date::from_calendar_date(1960, time::Month::January, 1)?
        + time::Duration::days((k / 1000 % 14_000) as i64);
    IdNumber::with_check_char(&format!(
        "{region}{:04}{:02}{:02}{:03}",
        born.year(),
        u8::from(born.month()),
        born.day(),
        k % 1000
    ))
    .context("a generated ID number")
}

async fn audit_row(app: &zf_app::App) -> anyhow::Result<Row> {
    let t = Instant::now();
    let report = app.audit_verify(&[]).await?;
    let verify = t.elapsed();
    anyhow::ensure!(
        report.is_intact(),
        "the audit chain does not verify: {:?}",
        report.findings.first()
    );
    Ok(Row {
        name: "audit chain verification",
        figure: Figure::Rate {
            per_second: report.events as f64 / verify.as_secs_f64().max(1e-9),
            unit: "events",
        },
        baseline: Some((
            "SHA-256 of the rows".into(),
            sha256_rows_per_second(
                &app.store()
                    .audit_search(&zf_store::AuditQuery {
                        limit: 20_000,
                        ..Default::default()
                    })
                    .await?,
            ),
        )),
    })
}

/// The backup's rate over the database file's size, beside a raw copy of the same file.
/// The file stays for the restore row; the caller removes it.
async fn backup_row(
    app: &zf_app::App,
    dir: &Path,
    data: &Path,
    file: &Path,
) -> anyhow::Result<Row> {
    let _ = std::fs::remove_file(file);
    let out = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(file)?
    };
    let t = Instant::now();
    let (out, _) = app.backup_write(out, Arc::new(Quiet)).await?;
    out.sync_all()?;
    let backup = t.elapsed();
    drop(out);
    let database = data.join("zhangfang.db");
    let db_bytes = std::fs::metadata(&database).map(|m| m.len()).unwrap_or(0);
    beside_raw_copy(
        "backup (snapshot, zstd, AES-256-GCM), database MB",
        db_bytes,
        backup,
        &database,
        dir,
        "raw copy of the database file",
    )
}

/// SHA-256 over the canonical form of stored audit rows, the raw cost under `audit verify`.
fn sha256_rows_per_second(events: &[StoredEvent]) -> f64 {
    let sample: Vec<Vec<u8>> = if events.is_empty() {
        let key = AuditChainKey::generate();
        (0..20_000)
            .map(|k| {
                let e = zf_audit::AuditEvent::new(
                    k,
                    Actor::cli("bench"),
                    zf_audit::AuditAction::Login,
                    zf_audit::Outcome::Success,
                );
                StoredEvent::chained(k + 1, &e, &GENESIS, &key).canonical()
            })
            .collect()
    } else {
        events.iter().map(StoredEvent::canonical).collect()
    };
    let t = Instant::now();
    let mut sink = 0u8;
    for _ in 0..5 {
        for row in &sample {
            sink ^= Sha256::digest(row)[0];
        }
    }
    std::hint::black_box(sink);
    (5 * sample.len()) as f64 / t.elapsed().as_secs_f64().max(1e-9)
}
