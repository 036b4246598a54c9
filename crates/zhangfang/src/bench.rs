//! `zhangfang bench …`: figures measured on this machine, each beside the raw limit it is built
//! on, so the overhead of the security layer reads as a ratio.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use sha2::{Digest, Sha256};
use zf_app::backup::{restore_file, verify_file, Manifest, Quiet, SealedCheck};
use zf_app::{App, AppConfig};
use zf_audit::{Actor, AuditAction, AuditEvent, Outcome, StoredEvent, GENESIS};
use zf_crypto::{AuditChainKey, BackupKey, MasterKey};
use zf_server::{DatabaseChoice, Instance};
use zf_store::{AuditQuery, PgStore, SqliteStore, Store};

mod http;
mod load;

/// `zhangfang bench`: without a subcommand, the HTTP table (the server over TLS under load);
/// with one, a focused measurement.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: Option<BenchCommand>,
    #[command(flatten)]
    http: http::HttpArgs,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// The audit log: bulk load, the two incident queries, and `audit verify` against raw
    /// SHA-256 and HMAC-SHA256.
    Audit {
        /// Events to load into a scratch SQLite store.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Distinct users the events are spread over.
        #[arg(long, default_value_t = 1_000)]
        users: u64,
        /// Queries of each kind to time.
        #[arg(long, default_value_t = 200)]
        queries: u64,
        /// Also write the figures as JSON here.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Backup and restore of a demo firm, into SQLite and PostgreSQL, beside the raw copy
    /// speed of the same bytes on this machine, with the restore time projected to 1,000,000
    /// clients.
    Backup {
        /// Demo clients in the scratch instance (each with its contact, contract, books,
        /// filings and interaction).
        #[arg(long, default_value_t = 10_000)]
        clients: u32,
        /// Also restore into this PostgreSQL database, in a scratch schema dropped afterwards
        /// (default: ZF_TEST_POSTGRES_URL when set).
        #[arg(long, value_name = "URL")]
        postgres: Option<String>,
        /// Also give the figures as JSON: to FILE, or to standard output without one.
        #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
        json: Option<PathBuf>,
    },
    /// Password hashing: argon2id with a fresh allocation per hash (the library's own path)
    /// against the server's hasher, which reuses one wiped working area per permit.
    Hash {
        /// Hashes of each kind at each concurrency.
        #[arg(long, default_value_t = 200)]
        hashes: u32,
    },
    /// Sign-in answers: how long an unknown username, a wrong password, a locked account and a
    /// right password take, to show the first three cannot be told apart by timing.
    Login {
        /// Attempts of each kind.
        #[arg(long, default_value_t = 40)]
        attempts: u32,
    },
}

const BATCH: u64 = 20_000;
const START_MS: i64 = 1_790_000_000_000;
const STEP_MS: i64 = 10;
const CLIENTS: u64 = 100_000;

fn client_id(n: u64) -> String {
    format!("00000000-0000-4000-8000-{:012x}", n % CLIENTS)
}

/// A deterministic mix resembling a working day: mostly sensitive reads, some changes, sign-ins.
fn event(i: u64, users: u64) -> AuditEvent {
    let mix = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    let user = mix % users;
    let action = match mix % 10 {
        0 => AuditAction::Login,
        1 | 2 => AuditAction::ClientUpdated,
        _ => AuditAction::ClientSensitiveRead,
    };
    let actor = Actor {
        user_id: None,
        name: format!("user{user:05}"),
        session_ref: Some(format!("{:012x}", mix & 0xffff_ffff)),
        source: Some(format!(
            "10.{}.{}.{}",
            user % 8,
            (user / 8) % 256,
            user % 251
        )),
        device: None,
    };
    let e = AuditEvent::new(
        START_MS + i as i64 * STEP_MS,
        actor,
        action,
        Outcome::Success,
    );
    if action == AuditAction::Login {
        e
    } else {
        e.on("clients", client_id(mix / 7))
            .fields(&["legal_rep_id_number"])
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let Some(cmd) = args.command else {
        return http::run(args.http).await;
    };
    match cmd {
        BenchCommand::Audit {
            events,
            users,
            queries,
            json,
        } => audit(events, users, queries, json).await,
        BenchCommand::Login { attempts } => login(attempts).await,
        BenchCommand::Hash { hashes } => hash(hashes).await,
        BenchCommand::Backup {
            clients,
            postgres,
            json,
        } => backup(clients, postgres, json).await,
    }
}

/// This process's CPU time so far, user and system, from `/proc/self/stat` (in USER_HZ ticks,
/// 100 per second on Linux). CPU time rather than wall time is what a loaded machine leaves
/// comparable; the system share is where fresh allocations' page faults show.
fn cpu_time() -> (Duration, Duration) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let field = |n: usize| {
        rest.split_whitespace()
            .nth(n)
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(Duration::ZERO, |ticks| Duration::from_millis(ticks * 10))
    };
    // utime and stime are the 14th and 15th fields; `rest` starts at the 3rd.
    (field(11), field(12))
}

/// `hashes` argon2id hashes, `parallel` at a time, each on a blocking thread; the time of each
/// and the wall time of the whole run.
async fn time_hashes<F, Fut>(hashes: u32, parallel: usize, one: F) -> Timed
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let gate = Arc::new(tokio::sync::Semaphore::new(parallel));
    let (user0, system0) = cpu_time();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..hashes {
        let permit = gate.clone().acquire_owned().await;
        let work = one();
        tasks.spawn(async move {
            let _permit = permit;
            let t = Instant::now();
            work.await;
            t.elapsed()
        });
    }
    let mut times = Vec::with_capacity(hashes as usize);
    while let Some(t) = tasks.join_next().await {
        times.extend(t.ok());
    }
    let wall = start.elapsed();
    let (user1, system1) = cpu_time();
    Timed {
        times,
        wall,
        user: user1.saturating_sub(user0),
        system: system1.saturating_sub(system0),
    }
}

#[derive(Default)]
struct Timed {
    times: Vec<Duration>,
    wall: Duration,
    user: Duration,
    system: Duration,
}

impl Timed {
    fn add(&mut self, other: Timed) {
        self.times.extend(other.times);
        self.wall += other.wall;
        self.user += other.user;
        self.system += other.system;
    }
}

async fn hash(hashes: u32) -> anyhow::Result<()> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use secrecy::SecretString;
    anyhow::ensure!(hashes > 0, "--hashes must be at least 1");
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let hasher = zf_app::identity::Hasher::new();
    println!("| argon2id m=19 MiB, t=2, p=1 | at a time | median | p90 | CPU per hash, user + system | hashes/s |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for parallel in [1, cores] {
        let fresh = || async {
            let _ = tokio::task::spawn_blocking(|| {
                let salt = SaltString::generate(&mut rand::rngs::OsRng);
                let params = argon2::Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
                argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                    .hash_password(b"a long enough pass phrase", &salt)
                    .map(|h| h.to_string())
            })
            .await;
        };
        let pooled = || {
            let hasher = hasher.clone();
            async move {
                let _ = hasher
                    .hash(SecretString::from("a long enough pass phrase"))
                    .await;
            }
        };
        // Alternate the two, so drift in the machine's load touches both alike.
        let (mut base, mut reused) = (Timed::default(), Timed::default());
        for _ in 0..2 {
            base.add(time_hashes(hashes / 2, parallel, fresh).await);
            reused.add(time_hashes(hashes / 2, parallel, pooled).await);
        }
        let cpu = |t: &Timed| ms(t.user + t.system) / t.times.len().max(1) as f64;
        for (label, t) in [
            ("fresh allocation per hash", &mut base),
            ("reused, wiped working area", &mut reused),
        ] {
            t.times.sort();
            let n = t.times.len().max(1) as f64;
            println!(
                "| {label} | {parallel} | {:.2} ms | {:.2} ms | {:.2} + {:.2} ms | {:.1} |",
                ms(percentile(&t.times, 0.5)),
                ms(percentile(&t.times, 0.9)),
                ms(t.user) / n,
                ms(t.system) / n,
                t.times.len() as f64 / t.wall.as_secs_f64().max(1e-9),
            );
        }
        println!(
            "| reused / fresh, CPU per hash | {parallel} | | | {:.2}× | |",
            cpu(&reused) / cpu(&base).max(1e-9)
        );
    }
    Ok(())
}

async fn login(attempts: u32) -> anyhow::Result<()> {
    use secrecy::SecretString;
    let scratch = tempfile::tempdir().context("scratch directory")?;
    let data = scratch.path().join("data");
    let config = AppConfig {
        // Throttling by address would end the run; lockout is what is measured.
        login: zf_app::identity::LoginPolicy {
            address_limit: 0,
            ..Default::default()
        },
        ..AppConfig::default()
    };
    let instance = Instance::open(&data, DatabaseChoice::parse(&data, None)?, config).await?;
    let app = &instance.app;
    let password = "a long enough pass phrase";
    // One account per wrong-password attempt, so none of them locks during the run.
    let mut names: Vec<String> = (0..attempts).map(|i| format!("known{i}")).collect();
    names.extend(["locked".to_owned(), "right".to_owned()]);
    for name in &names {
        app.add_user(
            zf_domain::Username::parse(name)?,
            zf_policy::Role::Accountant,
            Some(SecretString::from(password)),
            Actor::cli("bench"),
        )
        .await?;
    }
    let meta = zf_app::RequestMeta {
        source: Some("192.0.2.1".into()),
        ..Default::default()
    };
    for _ in 0..5 {
        let _ = app
            .login("locked", SecretString::from("wrong wrong wrong"), &meta)
            .await;
    }
    let labels = [
        "unknown username",
        "wrong password",
        "locked account",
        "right password",
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); labels.len()];
    // Round-robin, so drift in the machine's load touches every kind alike.
    for i in 0..attempts as usize {
        let known = format!("known{i}");
        let tries: [(&str, &str); 4] = [
            ("nobody", "wrong wrong wrong"),
            (&known, "wrong wrong wrong"),
            ("locked", password),
            ("right", password),
        ];
        for (k, (user, pw)) in tries.iter().enumerate() {
            let t = Instant::now();
            let _ = app.login(user, SecretString::from(*pw), &meta).await;
            times[k].push(t.elapsed());
        }
    }
    let mut rows = Vec::new();
    for (label, mut t) in labels.into_iter().zip(times) {
        t.sort();
        rows.push((label, percentile(&t, 0.5), percentile(&t, 0.9)));
    }
    println!("| sign-in attempt | median | p90 |");
    println!("| --- | --- | --- |");
    for (label, p50, p90) in &rows {
        println!("| {label} | {:.2} ms | {:.2} ms |", ms(*p50), ms(*p90));
    }
    let refusals: Vec<f64> = rows[..3].iter().map(|r| ms(r.1)).collect();
    let (lo, hi) = refusals
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    println!(
        "Largest difference between the medians of the three refusals: {:.2} ms ({:.1}% of the smallest).",
        hi - lo,
        100.0 * (hi - lo) / lo.max(1e-9)
    );
    Ok(())
}

async fn audit(events: u64, users: u64, queries: u64, json: Option<PathBuf>) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir().context("scratch directory")?;
    let data = scratch.path().join("data");
    let instance = Instance::open(
        &data,
        DatabaseChoice::parse(&data, None)?,
        AppConfig::default(),
    )
    .await?;
    let app = &instance.app;
    let store = app.store();
    println!("Loading {events} chained audit events into a scratch SQLite store…");

    let started = Instant::now();
    let mut i = 0;
    while i < events {
        let n = BATCH.min(events - i);
        store
            .audit_append_batch((i..i + n).map(|k| event(k, users)).collect())
            .await?;
        i += n;
        if i % 1_000_000 < BATCH {
            println!(
                "  {i} events, {:.0}/s",
                i as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    let load = started.elapsed();

    let span_ms = events as i64 * STEP_MS;
    let mut by_user = Vec::new();
    let mut by_client = Vec::new();
    let mut found = 0usize;
    for q in 0..queries {
        let user = format!("user{:05}", (q * 7919) % users);
        let from = START_MS + ((q as i64 * 104_729) % span_ms.max(1));
        let query = AuditQuery {
            actor: Some(user),
            from_ms: Some(from),
            to_ms: Some(from + 3_600_000),
            limit: 100,
            ..AuditQuery::default()
        };
        let t = Instant::now();
        found += store.audit_search(&query).await?.len();
        by_user.push(t.elapsed());
        let query = AuditQuery {
            resource: Some("clients".into()),
            record_id: Some(client_id(q * 31)),
            limit: 100,
            ..AuditQuery::default()
        };
        let t = Instant::now();
        found += store.audit_search(&query).await?.len();
        by_client.push(t.elapsed());
    }
    by_user.sort();
    by_client.sort();

    let t = Instant::now();
    let report = app.audit_verify(&[]).await?;
    let verify = t.elapsed();
    anyhow::ensure!(
        report.is_intact(),
        "the freshly loaded log does not verify: {:?}",
        report.findings.first()
    );

    // The raw limits, on the same kind of rows.
    let sample: Vec<StoredEvent> = {
        let key = AuditChainKey::generate();
        (0..200_000)
            .map(|k| StoredEvent::chained(k as i64 + 1, &event(k, users), &GENESIS, &key))
            .collect()
    };
    let key = AuditChainKey::generate();
    let t = Instant::now();
    let mut sink = 0u8;
    for row in &sample {
        sink ^= key.link(&row.canonical())[0];
    }
    let hmac_rate = sample.len() as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for row in &sample {
        sink ^= Sha256::digest(row.canonical())[0];
    }
    let sha_rate = sample.len() as f64 / t.elapsed().as_secs_f64();
    std::hint::black_box(sink);

    let verify_rate = report.events as f64 / verify.as_secs_f64();
    println!();
    println!("| measure | figure | baseline | ratio |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| bulk load (chained, indexed, SQLite) | {:.0} events/s | — | — |",
        events as f64 / load.as_secs_f64()
    );
    println!(
        "| \"what did user Y access\" (1 h window) | p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms | {events} events | — |",
        ms(percentile(&by_user, 0.5)), ms(percentile(&by_user, 0.99)), ms(*by_user.last().unwrap_or(&Duration::ZERO))
    );
    println!(
        "| \"who touched client X\" | p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms | {events} events | — |",
        ms(percentile(&by_client, 0.5)), ms(percentile(&by_client, 0.99)), ms(*by_client.last().unwrap_or(&Duration::ZERO))
    );
    println!("| audit verify | {verify_rate:.0} events/s | SHA-256 of the same rows {sha_rate:.0}/s | {:.2} |", verify_rate / sha_rate);
    println!("| chain link alone (HMAC-SHA256) | {hmac_rate:.0} events/s | SHA-256 {sha_rate:.0}/s | {:.2} |", hmac_rate / sha_rate);
    println!("({found} events returned by {} queries)", 2 * queries);
    if let Some(path) = json {
        let figures = serde_json::json!({
            "events": events,
            "load_events_per_s": events as f64 / load.as_secs_f64(),
            "user_query_ms": {"p50": ms(percentile(&by_user, 0.5)), "p99": ms(percentile(&by_user, 0.99))},
            "client_query_ms": {"p50": ms(percentile(&by_client, 0.5)), "p99": ms(percentile(&by_client, 0.99))},
            "verify_events_per_s": verify_rate,
            "sha256_rows_per_s": sha_rate,
            "hmac_rows_per_s": hmac_rate,
        });
        std::fs::write(&path, serde_json::to_string_pretty(&figures)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// What one restore took, and whether it gave back the same data.
struct Restored {
    target: &'static str,
    time: Duration,
    /// Sealed values opened in the restored store with the instance's keys.
    opened: SealedCheck,
    /// Audit events whose links, head and checkpoints verified in the restored store.
    events: u64,
    checks: Duration,
}

/// Restores `file` into `store` and proves the result: a second backup of it has every
/// table's count and digest equal to the original's, every sealed value opens, and the audit
/// chain verifies end to end.
async fn restore_and_compare(
    target: &'static str,
    store: Arc<dyn Store>,
    file: &Path,
    master: &MasterKey,
    key: &Arc<BackupKey>,
    expected: &Manifest,
) -> anyhow::Result<Restored> {
    let t = Instant::now();
    restore_file(
        store.as_ref(),
        file.to_owned(),
        key.clone(),
        false,
        "bench",
        Arc::new(Quiet),
    )
    .await
    .with_context(|| format!("restore into {target}"))?;
    let time = t.elapsed();
    let app = App::new(store, master, AppConfig::default()).await?;
    let (_, again) = app.backup_write(std::io::sink(), Arc::new(Quiet)).await?;
    anyhow::ensure!(
        &again.manifest == expected,
        "the data restored into {target} differs from the original"
    );
    let t = Instant::now();
    let opened = app
        .sealed_check()
        .await
        .with_context(|| format!("a sealed value restored into {target} does not open"))?;
    let report = app.audit_verify(&[]).await?;
    anyhow::ensure!(
        report.is_intact(),
        "the audit chain restored into {target} does not verify: {} findings",
        report.findings.len()
    );
    Ok(Restored {
        target,
        time,
        opened,
        events: report.events,
        checks: t.elapsed(),
    })
}

/// Copies a file and syncs the copy: what moving the same bytes costs without any format,
/// compression or encryption.
fn raw_copy(from: &Path, to: &Path) -> anyhow::Result<(u64, Duration)> {
    let t = Instant::now();
    let bytes = std::fs::copy(from, to).with_context(|| format!("copy {}", from.display()))?;
    std::fs::File::open(to)?.sync_all()?;
    Ok((bytes, t.elapsed()))
}

fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9)
}

fn hms(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

async fn backup(
    clients: u32,
    postgres: Option<String>,
    json: Option<PathBuf>,
) -> anyhow::Result<()> {
    anyhow::ensure!(clients > 0, "--clients must be at least 1");
    let postgres = postgres.or_else(|| {
        std::env::var("ZF_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
    });
    let scratch = tempfile::tempdir().context("scratch directory")?;
    let data = scratch.path().join("data");
    let instance = Instance::open(
        &data,
        DatabaseChoice::parse(&data, None)?,
        AppConfig::default(),
    )
    .await?;
    let app = &instance.app;
    let master = MasterKey::load(&data.join("master.key"))?;
    let key = Arc::new(master.backup_key());
    eprintln!("Creating {clients} demo clients in a scratch SQLite instance…");
    let t = Instant::now();
    crate::crm::demo_firm(app, clients, 2026, false).await?;
    let populate = t.elapsed();

    eprintln!("Backing up, verifying, restoring…");
    let file = scratch.path().join("firm.zfbackup");
    let t = Instant::now();
    let out = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)?
    };
    let (out, written) = app.backup_write(out, Arc::new(Quiet)).await?;
    out.sync_all()?;
    let backup_time = t.elapsed();
    let (bytes, rows) = (written.bytes, written.manifest.rows);

    let t = Instant::now();
    verify_file(file.clone(), key.clone(), Arc::new(Quiet)).await?;
    let verify_time = t.elapsed();

    let mut restores = Vec::new();
    let lite: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&scratch.path().join("restored.db")).await?);
    restores
        .push(restore_and_compare("SQLite", lite, &file, &master, &key, &written.manifest).await?);
    if let Some(url) = &postgres {
        let schema = format!("zf_bench_{}", uuid::Uuid::new_v4().simple());
        let (pg, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .context("connect to PostgreSQL")?;
        let conn = tokio::spawn(conn);
        pg.batch_execute(&format!("CREATE SCHEMA {schema}")).await?;
        let sep = if url.contains('?') { '&' } else { '?' };
        let scoped = format!("{url}{sep}options=-csearch_path%3D{schema}");
        let restored = async {
            let store: Arc<dyn Store> = Arc::new(PgStore::connect(&scoped).await?);
            restore_and_compare("PostgreSQL", store, &file, &master, &key, &written.manifest).await
        }
        .await;
        let dropped = pg
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await;
        drop(pg);
        let _ = conn.await;
        restores.push(restored?);
        dropped.context("drop the scratch schema")?;
    }

    // The raw limits: the same bytes copied and synced, with no format, compression or
    // encryption. The database file is what a cold copy of a stopped SQLite instance moves.
    let db = data.join("zhangfang.db");
    let (db_bytes, db_copy) = raw_copy(&db, &scratch.path().join("raw-db-copy"))?;
    let (_, file_copy) = raw_copy(&file, &scratch.path().join("raw-backup-copy"))?;
    let raw_db = mb_per_s(db_bytes, db_copy);
    let raw_file = mb_per_s(bytes, file_copy);

    let per = |d: Duration| rows as f64 / d.as_secs_f64().max(1e-9);
    let project = |d: Duration| d.mul_f64(1_000_000.0 / f64::from(clients));
    let objective = Duration::from_secs(4 * 3600);
    let target = Duration::from_secs(60);

    println!();
    println!(
        "{clients} demo clients: {rows} rows in {} tables, database file {:.1} MB, backup {:.1} MB (created in {:.1} s)",
        written.manifest.tables.len(),
        db_bytes as f64 / 1e6,
        bytes as f64 / 1e6,
        populate.as_secs_f64()
    );
    println!();
    println!("| measure | time | rate | baseline | ratio |");
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| backup (snapshot, zstd, AES-256-GCM, fsync) | {:.2} s | {:.0} rows/s, {:.1} MB/s | raw copy of the database file {raw_db:.1} MB/s | {:.1}× |",
        backup_time.as_secs_f64(),
        per(backup_time),
        mb_per_s(bytes, backup_time),
        backup_time.as_secs_f64() / db_copy.as_secs_f64().max(1e-9)
    );
    println!(
        "| verify (every chunk and digest) | {:.2} s | {:.1} MB/s | raw copy of the backup file {raw_file:.1} MB/s | {:.1}× |",
        verify_time.as_secs_f64(),
        mb_per_s(bytes, verify_time),
        verify_time.as_secs_f64() / file_copy.as_secs_f64().max(1e-9)
    );
    for r in &restores {
        println!(
            "| restore into {} (verify, then one transaction) | {:.2} s | {:.0} rows/s, {:.1} MB/s | raw copy of the backup file {raw_file:.1} MB/s | {:.1}× |",
            r.target,
            r.time.as_secs_f64(),
            per(r.time),
            mb_per_s(bytes, r.time),
            r.time.as_secs_f64() / file_copy.as_secs_f64().max(1e-9)
        );
    }
    for r in &restores {
        let p = project(r.time);
        println!(
            "| restore of 1,000,000 clients into {}, projected | {} | — | objective 4 h, target 1 min | {:.1}% of 4 h, {:.0}× 1 min |",
            r.target,
            hms(p),
            100.0 * p.as_secs_f64() / objective.as_secs_f64(),
            p.as_secs_f64() / target.as_secs_f64()
        );
    }
    println!("(ratio: measured time / raw copy time; every restored database's manifest equals the original's)");
    for r in &restores {
        println!(
            "{}: {} clients, {} records, {} documents, {} leads; {} sealed values opened; audit chain of {} events verified ({:.1} s)",
            r.target,
            r.opened.clients,
            r.opened.records,
            r.opened.documents,
            r.opened.leads,
            r.opened.fields_opened,
            r.events,
            r.checks.as_secs_f64()
        );
    }
    if let Some(path) = json {
        let figures = serde_json::json!({
            "clients": clients,
            "rows": rows,
            "backup_bytes": bytes,
            "database_bytes": db_bytes,
            "backup_s": backup_time.as_secs_f64(),
            "backup_rows_per_s": per(backup_time),
            "backup_mb_per_s": mb_per_s(bytes, backup_time),
            "verify_s": verify_time.as_secs_f64(),
            "verify_mb_per_s": mb_per_s(bytes, verify_time),
            "raw_copy_database_mb_per_s": raw_db,
            "raw_copy_backup_mb_per_s": raw_file,
            "restores": restores.iter().map(|r| serde_json::json!({
                "target": r.target,
                "s": r.time.as_secs_f64(),
                "rows_per_s": per(r.time),
                "mb_per_s": mb_per_s(bytes, r.time),
                "projected_1m_clients_s": project(r.time).as_secs_f64(),
                "identical": true,
                "sealed_values_opened": r.opened.fields_opened,
                "audit_events_verified": r.events,
                "checks_s": r.checks.as_secs_f64(),
            })).collect::<Vec<_>>(),
            "objective_s": objective.as_secs(),
            "target_s": target.as_secs(),
        });
        let text = serde_json::to_string_pretty(&figures)?;
        if path.as_os_str() == "-" {
            println!("{text}");
        } else {
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(())
}
