//! `zhangfang drill`: a disaster-recovery rehearsal. The newest off-site backup is fetched,
//! restored on a fresh data directory, served over HTTPS on a loopback port and read back; the
//! report gives the recovery time against the 4-hour objective (RTO) and the age of the data
//! recovered (RPO), step by step. The drill is kept with this instance's backup runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use zf_app::backup::{
    backup_key_for, read_header, restore_file, BackupTarget, DrillRecord, Quiet, Step,
    RTO_OBJECTIVE_MS,
};
use zf_crypto::KekSource;
use zf_server::{tls, DatabaseChoice, Instance, KeyProvider};
use zf_store::{SqliteStore, Store};

use crate::config::Settings;

#[derive(Args, Debug)]
pub struct DrillArgs {
    /// Use this backup file instead of fetching the newest from the configured targets.
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    /// Restore into this directory (which must not exist yet) and keep it; default: a
    /// temporary directory removed afterwards.
    #[arg(long, value_name = "DIR")]
    into: Option<PathBuf>,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

fn ms(t: Instant) -> i64 {
    i64::try_from(t.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// The steps so far; the first failure ends the drill.
#[derive(Default)]
struct Steps(Vec<Step>);

impl Steps {
    fn record<T>(&mut self, name: &str, t: Instant, r: anyhow::Result<T>) -> anyhow::Result<T> {
        self.0.push(Step {
            step: name.to_owned(),
            ok: r.is_ok(),
            ms: ms(t),
            note: r.as_ref().err().map(|e| format!("{e:#}")),
        });
        r.with_context(|| format!("drill step {name}"))
    }
}

/// What the drill learned about the backup it used.
#[derive(Default)]
struct Used {
    source: String,
    name: Option<String>,
    backup_id: Option<String>,
    created_at_ms: Option<i64>,
    bytes: Option<u64>,
}

pub async fn run(settings: Settings, args: DrillArgs) -> anyhow::Result<()> {
    let started_at_ms = zf_app::now_ms();
    let t0 = Instant::now();
    let source = crate::provider::open_instance(&settings)
        .await
        .context("cannot open this instance (its keys and its record of drills)")?;
    let workspace = tempfile::Builder::new()
        .prefix("zhangfang-drill-")
        .tempdir()
        .context("cannot create a working directory")?;
    let mut steps = Steps::default();
    let mut used = Used::default();
    let result = drill(
        &settings,
        &args,
        &source,
        workspace.path(),
        &mut steps,
        &mut used,
    )
    .await;
    let finished_at_ms = started_at_ms + ms(t0);
    let rto_ms = finished_at_ms - started_at_ms;
    let rpo_ms = used.created_at_ms.map(|c| started_at_ms - c);
    let ok = result.is_ok();
    let report = json!({
        "ok": ok,
        "started_at_ms": started_at_ms,
        "finished_at_ms": finished_at_ms,
        "backup": {
            "source": used.source,
            "name": used.name,
            "id": used.backup_id,
            "created_at_ms": used.created_at_ms,
            "bytes": used.bytes,
        },
        "rto_ms": rto_ms,
        "rto_objective_ms": RTO_OBJECTIVE_MS,
        "rto_met": ok && rto_ms <= RTO_OBJECTIVE_MS,
        "rpo_ms": rpo_ms,
        "steps": steps.0,
        "error": result.as_ref().err().map(|e| format!("{e:#}")),
    });
    print_report(&report);
    if let Some(path) = &args.report {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text)
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    source
        .app
        .backup_record_drill(
            zf_audit::Actor::cli(&crate::user::os_user()),
            DrillRecord {
                started_at_ms,
                finished_at_ms,
                ok,
                backup_id: used.backup_id.clone(),
                backup_created_at_ms: used.created_at_ms,
                bytes: used.bytes,
                source: match &used.name {
                    Some(n) => format!("{}/{n}", used.source),
                    None => used.source.clone(),
                },
                error: result.as_ref().err().map(|e| format!("{e:#}")),
                detail: report.clone(),
            },
        )
        .await
        .context("cannot record the drill")?;
    result
}

async fn drill(
    settings: &Settings,
    args: &DrillArgs,
    source: &Instance,
    workspace: &Path,
    steps: &mut Steps,
    used: &mut Used,
) -> anyhow::Result<()> {
    let t = Instant::now();
    let fetched = fetch(source, args, workspace, used).await;
    let file = steps.record("fetch", t, fetched)?;

    // The recovered copy is opened with this instance's keys: its master key, or the same
    // token, whose KEKs are never copied anywhere.
    let t = Instant::now();
    let keys = Ok(source.app.kek_source().duplicate());
    let keys = steps.record("keys", t, keys)?;

    let (data_dir, _keep) = match &args.into {
        Some(dir) => {
            if dir.exists() {
                bail!(
                    "{} exists already: a drill restores into a new directory",
                    dir.display()
                );
            }
            (dir.clone(), None)
        }
        None => {
            let d = workspace.join("data");
            (d.clone(), Some(d))
        }
    };
    let t = Instant::now();
    let restored = restore(&keys, settings, &file, &data_dir, used).await;
    steps.record("restore", t, restored)?;

    let t = Instant::now();
    let mut config = settings.app.clone();
    // The recovered copy must not start backing up over the real instance's targets.
    config.backup.enabled = false;
    config.backup.directory = None;
    config.backup.s3 = None;
    let database = DatabaseChoice::Sqlite(data_dir.join("zhangfang.db"));
    let opened = Instance::open_with(&data_dir, database, config, keys)
        .await
        .context("the restored data directory does not open");
    let recovered = steps.record("open", t, opened)?;

    // Clients erased since the backup was taken stay erased in the recovered copy too.
    let t = Instant::now();
    let reapplied = async {
        let known = source.app.erasures_known().await?;
        recovered
            .app
            .erasures_reapply(&known, crate::user::os_actor())
            .await
    }
    .await
    .map_err(anyhow::Error::from);
    let again = steps.record("erasure ledger", t, reapplied)?;
    if let Some(s) = steps.0.last_mut() {
        s.note = Some(format!("{again} erased again"));
    }

    let t = Instant::now();
    let served = serve_and_read(&recovered, &data_dir).await;
    steps.record("serve over HTTPS", t, served)?;

    let t = Instant::now();
    let verified = async {
        let report = recovered.app.audit_verify(&[]).await?;
        if !report.is_intact() {
            bail!(
                "the restored audit chain has {} findings",
                report.findings.len()
            );
        }
        Ok(report.events)
    }
    .await;
    let events = steps.record("audit chain", t, verified)?;
    if let Some(s) = steps.0.last_mut() {
        s.note = Some(format!("{events} events"));
    }

    let t = Instant::now();
    let opened = recovered
        .app
        .sealed_check()
        .await
        .map_err(anyhow::Error::from)
        .map(|c| {
            format!(
                "{} clients, {} records, {} documents, {} leads: {} sealed values opened",
                c.clients, c.records, c.documents, c.leads, c.fields_opened
            )
        });
    let note = steps.record("decrypt every sealed field", t, opened)?;
    if let Some(s) = steps.0.last_mut() {
        s.note = Some(note);
    }
    Ok(())
}

/// The backup to recover from: `--from`, else the newest on the off-site target (the object
/// store when one is configured, the directory otherwise).
async fn fetch(
    source: &Instance,
    args: &DrillArgs,
    workspace: &Path,
    used: &mut Used,
) -> anyhow::Result<PathBuf> {
    if let Some(file) = &args.from {
        used.source = format!("file:{}", file.display());
        used.bytes = std::fs::metadata(file).ok().map(|m| m.len());
        return Ok(file.clone());
    }
    let targets = source.app.backup_targets()?;
    let target: &dyn BackupTarget = targets
        .last()
        .map(|t| t.as_ref())
        .context("no backup target is configured; give --from FILE")?;
    used.source = target.describe();
    let newest = target
        .list()
        .await?
        .pop()
        .with_context(|| format!("{} holds no backup", target.describe()))?;
    let path = workspace.join(&newest.name);
    target.get(&newest.name, &path).await?;
    used.name = Some(newest.name);
    used.bytes = Some(newest.bytes);
    Ok(path)
}

/// Restores into a new SQLite database in a new data directory holding a copy of the key file
/// (or of the passphrase file) when the instance keeps one; an instance whose key is in the
/// environment or whose KEKs are in a token has nothing on disk to copy.
async fn restore(
    keys: &KekSource,
    settings: &Settings,
    file: &Path,
    data_dir: &Path,
    used: &mut Used,
) -> anyhow::Result<()> {
    zf_server::instance::prepare_data_dir(data_dir)?;
    let key_file = match settings.key_provider {
        KeyProvider::File => Some(zf_server::key_provider::KEY_FILE),
        KeyProvider::Passphrase => Some(zf_server::key_provider::PASSPHRASE_FILE),
        KeyProvider::Environment | KeyProvider::Pkcs11 { .. } => None,
    };
    if let Some(name) = key_file {
        copy_private(&settings.data_dir.join(name), &data_dir.join(name))
            .with_context(|| format!("cannot place {name} in the new data directory"))?;
    }
    let header = {
        let file = file.to_owned();
        tokio::task::spawn_blocking(move || read_header(&file))
            .await
            .context("header worker")??
    };
    let key = backup_key_for(&header, keys)?;
    let store = SqliteStore::open(&data_dir.join("zhangfang.db")).await?;
    let summary = restore_file(
        &store as &dyn Store,
        file.to_owned(),
        Arc::new(key),
        false,
        "drill",
        Arc::new(Quiet),
    )
    .await?;
    used.backup_id = Some(summary.backup.header.backup_id.clone());
    used.created_at_ms = Some(summary.backup.header.created_at_ms);
    used.bytes = Some(summary.backup.bytes);
    Ok(())
}

/// Copies a key file to a new file that only its owner can read.
fn copy_private(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let bytes = zeroize::Zeroizing::new(std::fs::read(from)?);
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)?;
    out.write_all(&bytes)?;
    out.sync_all()
}

/// Serves the recovered instance on a loopback port over TLS and reads it back through HTTPS.
async fn serve_and_read(recovered: &Instance, data_dir: &Path) -> anyhow::Result<()> {
    let files = tls::ensure_self_signed(data_dir)?;
    let cert = std::fs::read(&files.cert)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(zf_server::serve(
        listener,
        tls::server_config(&files)?,
        zf_server::router(recovered.app.clone()),
        async {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&cert)?)
        .https_only(true)
        .build()?;
    let base = format!("https://{addr}");
    let read = async {
        let health = client.get(format!("{base}/healthz")).send().await?;
        if !health.status().is_success() || health.text().await? != "ok" {
            bail!("the health check did not answer ok");
        }
        let login = client.get(format!("{base}/login")).send().await?;
        if !login.status().is_success() {
            bail!("the sign-in page answered {}", login.status());
        }
        let who = client.get(format!("{base}/api/v1/session")).send().await?;
        if who.status() != reqwest::StatusCode::UNAUTHORIZED {
            bail!("an anonymous request was not refused ({})", who.status());
        }
        Ok(())
    }
    .await;
    let _ = stop.send(());
    let _ = server.await;
    read
}

fn print_report(report: &Value) {
    let ok = report["ok"].as_bool().unwrap_or(false);
    println!();
    println!(
        "  Disaster-recovery drill: {}",
        if ok { "PASSED" } else { "FAILED" }
    );
    println!(
        "  backup:  {} ({})",
        report["backup"]["name"].as_str().unwrap_or("-"),
        report["backup"]["source"].as_str().unwrap_or("-")
    );
    for s in report["steps"].as_array().into_iter().flatten() {
        println!(
            "  [{}] {:<28} {:>8} ms  {}",
            if s["ok"].as_bool().unwrap_or(false) {
                "ok"
            } else {
                "!!"
            },
            s["step"].as_str().unwrap_or(""),
            s["ms"].as_i64().unwrap_or(0),
            s["note"].as_str().unwrap_or("")
        );
    }
    let rto = report["rto_ms"].as_i64().unwrap_or(0);
    println!(
        "  recovery time (RTO): {:.1} s against an objective of {} h — {}",
        rto as f64 / 1000.0,
        RTO_OBJECTIVE_MS / 3_600_000,
        if report["rto_met"].as_bool().unwrap_or(false) {
            "met"
        } else {
            "NOT met"
        }
    );
    match report["rpo_ms"].as_i64() {
        Some(rpo) => println!(
            "  data age (RPO): {:.1} h — what changed since the backup would be lost",
            rpo as f64 / 3_600_000.0
        ),
        None => println!("  data age (RPO): unknown"),
    }
    println!();
}
