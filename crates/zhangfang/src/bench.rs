//! `zhangfang bench …`: figures measured on this machine, each beside the raw limit it is built
//! on, so the overhead of the security layer reads as a ratio.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use sha2::{Digest, Sha256};
use zf_app::AppConfig;
use zf_audit::{Actor, AuditAction, AuditEvent, Outcome, StoredEvent, GENESIS};
use zf_crypto::AuditChainKey;
use zf_server::{DatabaseChoice, Instance};
use zf_store::AuditQuery;

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

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Audit {
            events,
            users,
            queries,
            json,
        } => audit(events, users, queries, json).await,
        BenchCommand::Login { attempts } => login(attempts).await,
    }
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
