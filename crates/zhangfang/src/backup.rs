//! `zhangfang backup`, `backup verify` and `restore`: the operator's side of backups, run on
//! the server with the master key at hand, like `user` and `audit`.
//!
//! A backup is written under `FILE.partial` (created exclusively, mode 0600), synced, and only
//! then given its name, so a file called FILE is always a complete backup; an interrupted run
//! leaves at most the `.partial`, which `backup verify` refuses. A restore touches nothing
//! before the whole file has verified, and writes in one transaction.
//!
//! `ZHANGFANG_TEST_THROTTLE_MS` (test-only, undocumented in `--help`): sleep this long at every
//! progress step, so the tests can kill a backup or a restore half-way through.

use std::io::IsTerminal;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use zf_app::backup::{BackupError, Header, Progress, Unit, VerifiedBackup};
use zf_app::App;
use zf_audit::{AuditAction, Outcome};
use zf_crypto::{BackupKey, KekSource};
use zf_server::{DatabaseChoice, Init, KeyProvider};
use zf_store::{PgStore, SqliteStore, Store, StoreError};

use crate::config::Settings;
use crate::user::os_actor;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub command: Option<BackupCommand>,
    /// Where to write the backup; it must not exist yet (see --overwrite). The server may keep
    /// serving meanwhile: the backup is one consistent snapshot.
    #[arg(long, value_name = "FILE", required = true)]
    pub out: Option<PathBuf>,
    /// Replace FILE if it exists (only once the new backup is complete).
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Read a backup file whole: every chunk authenticated under this instance's backup key,
    /// every table's count and digest against the manifest. Writes nothing but its audit event.
    Verify {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The backup file. It is verified whole before anything is written.
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// Restore even though the database holds data; that data is kept first as a safety copy
    /// (a file beside the SQLite database, or a renamed PostgreSQL schema).
    #[arg(long)]
    pub force: bool,
}

/// Progress bars on a terminal; on anything else one line per phase, so a log of a scheduled
/// run still says how far it got.
struct Bars {
    bar: ProgressBar,
    terminal: bool,
    throttle: Option<Duration>,
}

impl Bars {
    fn new() -> Arc<Self> {
        let terminal = std::io::stderr().is_terminal();
        let throttle = std::env::var("ZHANGFANG_TEST_THROTTLE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis);
        Arc::new(Bars {
            bar: if terminal {
                ProgressBar::new(0)
            } else {
                ProgressBar::hidden()
            },
            terminal,
            throttle,
        })
    }

    fn done(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bars {
    fn phase(&self, label: &str, total: u64, unit: Unit) {
        let template = match unit {
            Unit::Rows => "{msg:12} {bar:40} {human_pos}/{human_len} rows {elapsed} (eta {eta})",
            Unit::Bytes => "{msg:12} {bar:40} {bytes}/{total_bytes} {bytes_per_sec} (eta {eta})",
        };
        self.bar.set_style(
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        self.bar.set_message(label.to_owned());
        self.bar.set_length(total);
        self.bar.set_position(0);
        self.bar.reset_elapsed();
        if !self.terminal {
            let what = match unit {
                Unit::Rows => "rows",
                Unit::Bytes => "bytes",
            };
            eprintln!("{label}: {total} {what}");
        }
    }

    fn advance(&self, done: u64) {
        self.bar.inc(done);
        if let Some(pause) = self.throttle {
            std::thread::sleep(pause);
        }
    }
}

pub async fn backup(settings: Settings, args: BackupArgs) -> anyhow::Result<()> {
    match (args.command, args.out) {
        (Some(BackupCommand::Verify { file }), _) => verify(settings, file).await,
        (None, Some(out)) => create(settings, out, args.overwrite).await,
        (None, None) => bail!("--out FILE is required"),
    }
}

/// The instance's keys, never created here: a new key would open no existing backup.
fn kek_source(settings: &Settings) -> anyhow::Result<KekSource> {
    crate::provider::kek_source(settings, Init::Refused).with_context(|| {
        match &settings.key_provider {
            KeyProvider::File => format!(
                "cannot load the master key {}: a backup opens only under the master key of the \
             instance that made it; copy that key file here (mode 0600) first",
                settings.data_dir.join("master.key").display()
            ),
            KeyProvider::Passphrase => format!(
                "cannot derive the master key: a backup opens only under the master key of the \
             instance that made it; copy its {} here (mode 0600) and give its passphrase",
                zf_server::key_provider::PASSPHRASE_FILE
            ),
            KeyProvider::Environment => {
                "cannot read the master key from ZHANGFANG_MASTER_KEY".into()
            }
            KeyProvider::Pkcs11 { .. } => "cannot open the token holding the KEKs: a backup of a \
             token deployment opens only with that token"
                .into(),
        }
    })
}

/// The key that opens the backup at `path`: derived from the master key, or recovered by the
/// token from the wrapped key in the file's header.
fn backup_key(path: &Path, source: &KekSource) -> Result<BackupKey, BackupError> {
    match source.derived_backup_key() {
        Some(key) => Ok(key),
        None => zf_app::backup::backup_key_for(&zf_app::backup::read_header(path)?, source),
    }
}

/// Opens the configured database without the application, so nothing — not even the system
/// keys an instance creates on first start — is written before a restore decides.
async fn open_store(database: &DatabaseChoice) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match database {
        DatabaseChoice::Sqlite(path) => Arc::new(
            SqliteStore::open(path)
                .await
                .context("cannot open the database")?,
        ),
        DatabaseChoice::Postgres(url) => Arc::new(
            PgStore::connect(url)
                .await
                .context("cannot open the database")?,
        ),
    })
}

/// `FILE.partial`, beside FILE so the final rename stays within one file system.
fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

/// Removes the partial file unless the backup completed, whatever way the command ends.
struct PartialGuard {
    path: PathBuf,
    armed: bool,
}

impl Drop for PartialGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

fn megabytes(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

async fn create(settings: Settings, out: PathBuf, overwrite: bool) -> anyhow::Result<()> {
    if !overwrite && out.exists() {
        bail!(
            "{} exists; choose another name or pass --overwrite",
            out.display()
        );
    }
    if let DatabaseChoice::Sqlite(db) = &settings.database {
        if !db.exists() {
            bail!("there is no database at {} to back up", db.display());
        }
    }
    // Loaded first so a data directory without a key is refused rather than given a new one.
    let source = kek_source(&settings)?;
    let partial = partial_path(&out);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                anyhow::anyhow!(
                    "{} exists: another backup to {} is running, or one was interrupted; \
                     remove it once no backup is running",
                    partial.display(),
                    out.display()
                )
            } else {
                anyhow::Error::new(e).context(format!("cannot create {}", partial.display()))
            }
        })?;
    let mut guard = PartialGuard {
        path: partial.clone(),
        armed: true,
    };
    let instance = crate::provider::open_with(&settings, source).await?;
    let app = &instance.app;
    let bars = Bars::new();
    let started = Instant::now();
    let written = async {
        let (file, summary) = app.backup_write(file, bars.clone()).await?;
        let file = tokio::task::spawn_blocking(move || file.sync_all().map(|()| file))
            .await
            .context("sync worker")?
            .with_context(|| format!("cannot sync {}", partial.display()))?;
        drop(file);
        if overwrite {
            std::fs::rename(&partial, &out)
        } else {
            // A link fails if FILE appeared meanwhile, where a rename would replace it.
            std::fs::hard_link(&partial, &out).and_then(|()| std::fs::remove_file(&partial))
        }
        .with_context(|| format!("cannot name the backup {}", out.display()))?;
        guard.armed = false;
        sync_dir(&out)
            .with_context(|| format!("cannot sync the directory of {}", out.display()))?;
        anyhow::Ok(summary)
    };
    let interrupted = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let (result, stopped) = tokio::select! {
        r = written => (r, false),
        () = interrupted => (Err(anyhow::anyhow!("interrupted; no backup was written")), true),
    };
    bars.done();
    let elapsed = started.elapsed();
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            drop(guard);
            let _ = app
                .audit_record_operation(
                    os_actor(),
                    AuditAction::BackupCreated,
                    Outcome::Failed,
                    format!("to {}: {e:#}", out.display()),
                )
                .await;
            if stopped {
                // The writer is a blocking task the runtime would wait for on the way out;
                // its file is already gone, so there is nothing left for it to finish.
                eprintln!("error: {e}");
                std::process::exit(130);
            }
            return Err(e);
        }
    };
    let m = &summary.manifest;
    app.audit_record_operation(
        os_actor(),
        AuditAction::BackupCreated,
        Outcome::Success,
        format!(
            "backup {} to {}: {} bytes, {} rows, chain head #{}",
            summary.header.backup_id,
            out.display(),
            summary.bytes,
            m.rows,
            m.audit_head.seq
        ),
    )
    .await?;
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!("Backup written to {}.", out.display());
    println!("  backup id    {}", summary.header.backup_id);
    println!(
        "  contents     {} tables, {} rows (from {}, schema version {})",
        m.tables.len(),
        m.rows,
        summary.header.source_backend,
        summary.header.schema_version
    );
    println!(
        "  size         {:.2} MB ({} bytes)",
        megabytes(summary.bytes),
        summary.bytes
    );
    println!("  chain head   #{} {}", m.audit_head.seq, m.audit_head.hash);
    println!(
        "  elapsed      {secs:.2} s ({:.1} MB/s, {:.0} rows/s)",
        megabytes(summary.bytes) / secs,
        m.rows as f64 / secs
    );
    println!("It opens only with this instance's master key; keep that key elsewhere.");
    Ok(())
}

fn print_verified(v: &VerifiedBackup) {
    let h = &v.header;
    println!(
        "Backup {} made at {} by {} from {} (schema version {}):",
        h.backup_id,
        rfc3339(h.created_at_ms),
        h.producer,
        h.source_backend,
        h.schema_version
    );
    for t in &v.manifest.tables {
        println!("  {:<22} {:>10} rows", t.name, t.rows);
    }
    println!(
        "  {:<22} {:>10} rows in {} chunks, {} bytes; audit chain head #{}",
        "total", v.manifest.rows, v.chunks, v.bytes, v.manifest.audit_head.seq
    );
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// Reads only the header, to refuse a file that is not a backup or was sealed under another
/// master key (or token) before a database is opened or created; returns the key that opens it.
fn check_header(path: &Path, source: &KekSource) -> Result<(Header, BackupKey), BackupError> {
    let header = zf_app::backup::read_header(path)?;
    let key = zf_app::backup::backup_key_for(&header, source)?;
    Ok((header, key))
}

async fn verify(settings: Settings, file: PathBuf) -> anyhow::Result<()> {
    let source = kek_source(&settings)?;
    let bars = Bars::new();
    let result = match backup_key(&file, &source) {
        Ok(key) => zf_app::backup::verify_file(file.clone(), Arc::new(key), bars.clone()).await,
        Err(e) => Err(e),
    };
    bars.done();
    // The event goes into this instance's database, but never into one that is still empty:
    // that is where a backup is restored, and an event would make it refuse the restore.
    let app = match &settings.database {
        DatabaseChoice::Sqlite(db) if !db.exists() => None,
        database => {
            let store = open_store(database).await?;
            if store.restore_target_occupied().await?.is_empty() {
                None
            } else {
                Some(App::with_kek_source(store, source, settings.app.clone()).await?)
            }
        }
    };
    let (outcome, detail) = match &result {
        Ok(v) => (
            Outcome::Success,
            format!(
                "backup {} ({}): {} rows, {} bytes intact",
                v.header.backup_id,
                file.display(),
                v.manifest.rows,
                v.bytes
            ),
        ),
        Err(e) => (Outcome::Failed, format!("{}: {e}", file.display())),
    };
    match &app {
        Some(app) => {
            app.audit_record_operation(os_actor(), AuditAction::BackupVerified, outcome, detail)
                .await?
        }
        None => eprintln!("(not audited: this instance's database is empty, awaiting a restore)"),
    }
    let verified = result.with_context(|| format!("{} is not a usable backup", file.display()))?;
    print_verified(&verified);
    println!("The backup is intact and opens with this instance's master key.");
    Ok(())
}

/// The UTC time as letters and digits only, for the name of a safety copy.
fn label_now() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

pub async fn restore(settings: Settings, args: RestoreArgs) -> anyhow::Result<()> {
    zf_server::instance::prepare_data_dir(&settings.data_dir)?;
    let source = kek_source(&settings)?;
    let path = args.from.clone();
    let (header, key) = {
        let source = source.duplicate();
        tokio::task::spawn_blocking(move || check_header(&path, &source))
            .await
            .context("header worker")?
    }
    .with_context(|| {
        format!(
            "cannot restore {}; nothing was written",
            args.from.display()
        )
    })?;
    let store = open_store(&settings.database).await?;
    // Clients erased here stay erased whatever the backup holds: the ledger of the database
    // about to be replaced and the data directory's copy are read before anything changes.
    let ledger_file = settings.data_dir.join(zf_app::erasure::LEDGER_FILE);
    let mut erased: std::collections::BTreeSet<_> = store
        .client_erasures()
        .await
        .context("reading the erasure ledger")?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    erased.extend(zf_app::erasure::read_ledger(&ledger_file)?);
    println!(
        "Restoring backup {} (made at {} from {}) into {}.",
        header.backup_id,
        rfc3339(header.created_at_ms),
        header.source_backend,
        settings.database.describe()
    );
    let bars = Bars::new();
    let started = Instant::now();
    let result = zf_app::backup::restore_file(
        store.as_ref(),
        args.from.clone(),
        Arc::new(key),
        args.force,
        &label_now(),
        bars.clone(),
    )
    .await;
    bars.done();
    // A failed restore is not audited: it left the target exactly as it was, and an event
    // would change that (and make an empty target refuse the next attempt).
    let summary = result.map_err(|e| match e {
        BackupError::Store(StoreError::TargetNotEmpty(tables)) => anyhow::anyhow!(
            "the database already holds data (in {}); nothing was written. Restore into an \
             empty database, or pass --force to keep the current data as a safety copy and \
             replace it",
            tables.join(", ")
        ),
        other => anyhow::Error::new(other).context(format!(
            "cannot restore {}; nothing was written",
            args.from.display()
        )),
    })?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let backup = &summary.backup;
    println!(
        "Restored {} rows in {secs:.2} s ({:.0} rows/s, {:.1} MB/s of backup).",
        summary.outcome.rows,
        summary.outcome.rows as f64 / secs,
        megabytes(backup.bytes) / secs
    );
    let kept = summary.outcome.safety_copy.as_ref().map(|c| c.to_string());
    if let Some(copy) = &kept {
        println!("The data that was there before is kept in {copy}.");
    }
    let app = App::with_kek_source(store, source, settings.app.clone())
        .await?
        .with_erasure_ledger(ledger_file);
    app.audit_record_operation(
        os_actor(),
        AuditAction::BackupRestored,
        Outcome::Success,
        format!(
            "backup {} made at {} from {}: {} rows{}",
            backup.header.backup_id,
            rfc3339(backup.header.created_at_ms),
            backup.header.source_backend,
            summary.outcome.rows,
            kept.map(|c| format!("; previous data kept in {c}"))
                .unwrap_or_default()
        ),
    )
    .await?;
    erased.extend(app.erasures_known().await?);
    let again = app.erasures_reapply(&erased, os_actor()).await?;
    if again > 0 {
        println!("Erased again {again} clients that were erased after this backup was taken.");
    }
    let report = app.audit_verify(&[]).await?;
    let (outcome, detail) = if report.is_intact() {
        println!(
            "Audit chain verified after the restore: {} events up to #{}, intact.",
            report.events, report.last_seq
        );
        (
            Outcome::Success,
            format!("{} events intact after a restore", report.events),
        )
    } else {
        println!("The restored audit chain does not verify:");
        for f in &report.findings {
            println!("  - {f}");
        }
        (
            Outcome::Failed,
            format!("{} findings after a restore", report.findings.len()),
        )
    };
    app.audit_record_operation(os_actor(), AuditAction::AuditVerified, outcome, detail)
        .await?;
    if !report.is_intact() {
        bail!("the restore committed, but its audit chain does not verify");
    }
    Ok(())
}
