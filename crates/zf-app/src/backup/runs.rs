//! The server's side of backups: taking one and copying it to every target, applying
//! retention, restoring the newest into a scratch database to prove it works, and keeping each
//! run — with a drill's, reported by the CLI — as evidence in `backup_runs`, audited.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use zf_audit::{Actor, AuditAction, AuditEvent, Outcome};
use zf_policy::Grant;
use zf_store::{BackupRun, SqliteStore, Store};

use super::check::SealedCheck;
use super::s3::S3Target;
use super::schedule::{overdue, RTO_OBJECTIVE_MS};
use super::target::{backup_name, BackupTarget, DirectoryTarget, StoredBackup};
use super::{restore_file, verify_file, Quiet, VerifiedBackup};
use crate::{actor, App, AppError, RequestMeta};

const RUNS_SHOWN: u32 = 100;
/// The lease of the scheduled backup and restore test (see `App::backup_tick`).
const BACKUP_LEASE: &str = "backups";

/// One step of a restore test or a drill, timed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Step {
    pub step: String,
    pub ok: bool,
    pub ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Runs steps in order, timing each, until one fails.
#[derive(Default)]
struct Steps(Vec<Step>);

impl Steps {
    async fn run<T, F>(&mut self, name: &str, f: F) -> Result<T, String>
    where
        F: std::future::Future<Output = Result<T, String>>,
    {
        let t = Instant::now();
        let result = f.await;
        self.0.push(Step {
            step: name.to_owned(),
            ok: result.is_ok(),
            ms: elapsed_ms(t),
            note: result.as_ref().err().cloned(),
        });
        result.map_err(|e| format!("{name}: {e}"))
    }
}

fn elapsed_ms(t: Instant) -> i64 {
    i64::try_from(t.elapsed().as_millis()).unwrap_or(i64::MAX)
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// What a system administrator may start by hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManualRun {
    Backup,
    RestoreTest,
}

impl ManualRun {
    pub fn as_str(self) -> &'static str {
        match self {
            ManualRun::Backup => "backup",
            ManualRun::RestoreTest => "restore_test",
        }
    }
}

/// A run started by hand that has not ended yet.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RunningView {
    /// `backup` or `restore_test`.
    pub kind: String,
    pub started_at: i64,
    pub by: String,
}

/// A run as the page and the API show it, with the figures an auditor asks for.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RunView {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub run: BackupRun,
    pub duration_ms: i64,
    /// For a restore test or a drill: how old the data it brought back was (recovery point).
    pub rpo_ms: Option<i64>,
    /// For a drill: how long the recovery took (recovery time), against a 4-hour objective.
    pub rto_ms: Option<i64>,
}

impl RunView {
    fn of(run: BackupRun) -> Self {
        let duration_ms = run.finished_at_ms - run.started_at_ms;
        let recovery = run.kind != "backup";
        RunView {
            rpo_ms: run
                .backup_created_at_ms
                .filter(|_| recovery)
                .map(|b| run.started_at_ms - b),
            rto_ms: (run.kind == "drill").then_some(duration_ms),
            duration_ms,
            run,
        }
    }
}

/// The backups page: where backups go, what happened lately, what is overdue.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BackupOverview {
    /// A run started by hand on this server that has not ended yet; it joins `runs` when it
    /// does.
    pub running: Option<RunningView>,
    pub targets: Vec<String>,
    /// Whether the server backs up on its own.
    pub scheduled: bool,
    /// The local time of the daily backup, e.g. `02:30 (UTC+8)`.
    pub schedule: String,
    pub last_backup_at_ms: Option<i64>,
    pub last_restore_test_at_ms: Option<i64>,
    pub last_drill_at_ms: Option<i64>,
    /// No successful restore test within `restore_test_every_days`.
    pub restore_test_overdue: bool,
    /// No successful drill within `drill_every_days`.
    pub drill_overdue: bool,
    pub restore_test_every_days: u32,
    pub drill_every_days: u32,
    pub rto_objective_ms: i64,
    /// Newest first.
    pub runs: Vec<RunView>,
}

/// A drill as the CLI reports it, to be kept with the instance's other runs.
#[derive(Clone, Debug)]
pub struct DrillRecord {
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
    pub ok: bool,
    pub backup_id: Option<String>,
    pub backup_created_at_ms: Option<i64>,
    pub bytes: Option<u64>,
    pub source: String,
    pub error: Option<String>,
    pub detail: serde_json::Value,
}

fn outcome(ok: bool) -> (&'static str, Outcome) {
    if ok {
        ("success", Outcome::Success)
    } else {
        ("failed", Outcome::Failed)
    }
}

impl App {
    /// The configured targets, the directory first. Building the object store's target reads
    /// its credentials, so a missing secret shows here.
    pub fn backup_targets(&self) -> Result<Vec<Box<dyn BackupTarget>>, AppError> {
        let each = self.each_target();
        if each.is_empty() {
            return Err(AppError::Conflict(
                "no backup target is configured: set [backup] directory or [backup.s3]".into(),
            ));
        }
        each.into_iter()
            .map(|t| t.map_err(AppError::Conflict))
            .collect()
    }

    /// Each configured target, or why it cannot be used, so one that is broken does not keep
    /// a backup from the others.
    fn each_target(&self) -> Vec<Result<Box<dyn BackupTarget>, String>> {
        let c = &self.config.backup;
        let mut out: Vec<Result<Box<dyn BackupTarget>, String>> = Vec::new();
        if let Some(dir) = &c.directory {
            out.push(
                DirectoryTarget::new(dir)
                    .map(|t| Box::new(t) as Box<dyn BackupTarget>)
                    .map_err(text),
            );
        }
        if let Some(s3) = &c.s3 {
            out.push(
                S3Target::new(s3)
                    .map(|t| Box::new(t) as Box<dyn BackupTarget>)
                    .map_err(text),
            );
        }
        out
    }

    fn target_names(&self) -> Vec<String> {
        let c = &self.config.backup;
        let mut out = Vec::new();
        if let Some(d) = &c.directory {
            out.push(format!("dir:{}", d.display()));
        }
        if let Some(s) = &c.s3 {
            out.push(format!(
                "s3:{}/{}/{}",
                s.endpoint.trim_end_matches('/'),
                s.bucket,
                s.prefix
            ));
        }
        out
    }

    /// "Back up now" or "run a restore test now", for the signed-in system administrator: the
    /// run starts in the background and is recorded when it ends (a restore test of a large
    /// firm takes many minutes, longer than any request should stay open). `Conflict` when
    /// nothing can start: no target, or a backup or restore test already running on any node.
    pub async fn backup_start(
        &self,
        grant: &Grant,
        meta: &RequestMeta,
        kind: ManualRun,
    ) -> Result<RunningView, AppError> {
        if !self.config.backup.has_target() {
            self.backup_targets()?;
        }
        let Some(lease) = self.schedule_lease(BACKUP_LEASE).await? else {
            return Err(AppError::Conflict(
                "a backup or restore test is already running (on this server or another one)"
                    .into(),
            ));
        };
        let by = actor(grant, meta);
        let view = RunningView {
            kind: kind.as_str().to_owned(),
            started_at: self.now_ms(),
            by: by.name.clone(),
        };
        *self
            .backup_running
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(view.clone());
        let app = self.clone();
        tokio::spawn(async move {
            let result = match kind {
                ManualRun::Backup => app.backup_run(by, "manual").await,
                ManualRun::RestoreTest => app.restore_test(by, "manual").await,
            };
            if let Err(e) = result {
                tracing::error!(error = %e, kind = kind.as_str(), "the backup run could not start");
            }
            *app.backup_running.lock().unwrap_or_else(|p| p.into_inner()) = None;
            if let Err(e) = lease.release().await {
                tracing::error!(error = %e, "cannot give the backups' lease back; it lapses in minutes");
            }
        });
        Ok(view)
    }

    fn busy() -> AppError {
        AppError::Conflict("a backup or restore test is already running on this server".into())
    }

    /// Takes a backup, verifies it, copies it to every target and applies retention on each
    /// target that received it. The run is recorded whatever happens — a target that cannot
    /// be used (a mount gone, a secret unset) included; a failure is in its outcome and
    /// error. `Conflict` only when nothing could start (no target configured, already busy).
    pub async fn backup_run(&self, by: Actor, trigger: &str) -> Result<BackupRun, AppError> {
        let _guard = self.backup_lock.try_lock().map_err(|_| Self::busy())?;
        if !self.config.backup.has_target() {
            self.backup_targets()?;
        }
        let started = self.now_ms();
        let t0 = Instant::now();
        let mut run = BackupRun {
            id: uuid::Uuid::now_v7().to_string(),
            kind: "backup".into(),
            trigger: trigger.to_owned(),
            started_at_ms: started,
            finished_at_ms: started,
            outcome: String::new(),
            backup_id: None,
            backup_created_at_ms: None,
            bytes: None,
            target: Some(self.target_names().join(", ")),
            error: None,
            detail: None,
        };
        let mut detail = serde_json::Map::new();
        let (targets, broken): (Vec<_>, Vec<_>) =
            self.each_target().into_iter().partition(Result::is_ok);
        let targets: Vec<Box<dyn BackupTarget>> = targets.into_iter().flatten().collect();
        let mut errors: Vec<String> = broken.into_iter().filter_map(Result::err).collect();
        if targets.is_empty() {
            errors.push("no target could take the backup".into());
        } else if let Err(e) = self.backup_and_copy(&targets, &mut run, &mut detail).await {
            errors.push(e);
        }
        let result = if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        };
        run.finished_at_ms = started + elapsed_ms(t0);
        let (word, out) = outcome(result.is_ok());
        run.outcome = word.into();
        run.error = result.err();
        run.detail = Some(serde_json::Value::Object(detail).to_string());
        let mut event = AuditEvent::new(self.now_ms(), by, AuditAction::BackupRun, out)
            .on("backup", run.backup_id.as_deref().unwrap_or(&run.id))
            .detail(format!(
                "{trigger}: {} bytes to {}{}",
                run.bytes.unwrap_or(0),
                run.target.as_deref().unwrap_or(""),
                run.error
                    .as_deref()
                    .map(|e| format!("; {e}"))
                    .unwrap_or_default()
            ));
        event.detail = event.detail.map(|d| d.chars().take(1000).collect());
        if out == Outcome::Failed {
            tracing::error!(run = %run.id, error = ?run.error, "backup run failed");
        }
        self.store.backup_run_record(run.clone(), event).await?;
        Ok(run)
    }

    async fn backup_and_copy(
        &self,
        targets: &[Box<dyn BackupTarget>],
        run: &mut BackupRun,
        detail: &mut serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), String> {
        // Staged beside the directory target when it is usable (same disk, so no second
        // filesystem fills up), under a name no listing takes for a backup.
        let staging_dir = self
            .config
            .backup
            .directory
            .clone()
            .filter(|d| d.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let staging = tempfile::Builder::new()
            .prefix(".zhangfang-staging-")
            .tempfile_in(&staging_dir)
            .map_err(|e| format!("cannot stage in {}: {e}", staging_dir.display()))?;
        let file = staging.reopen().map_err(text)?;
        let t = Instant::now();
        let (file, summary) = self
            .backup_write(file, Arc::new(Quiet))
            .await
            .map_err(text)?;
        file.sync_all().map_err(text)?;
        drop(file);
        detail.insert("write_ms".into(), elapsed_ms(t).into());
        run.backup_id = Some(summary.header.backup_id.clone());
        run.backup_created_at_ms = Some(summary.header.created_at_ms);
        run.bytes = i64::try_from(summary.bytes).ok();
        detail.insert("rows".into(), summary.manifest.rows.into());
        let t = Instant::now();
        self.backup_verify(staging.path().to_owned(), Arc::new(Quiet))
            .await
            .map_err(|e| format!("the new backup does not verify: {e}"))?;
        detail.insert("verify_ms".into(), elapsed_ms(t).into());
        let name = backup_name(summary.header.created_at_ms, &summary.header.backup_id);
        detail.insert("name".into(), name.clone().into());
        let mut failures = Vec::new();
        let mut pruned = Vec::new();
        for target in targets {
            let t = Instant::now();
            match target.put(&name, staging.path()).await {
                Ok(_) => {
                    detail.insert(
                        format!("copy_ms {}", target.describe()),
                        elapsed_ms(t).into(),
                    );
                    // Retention runs only where the new backup arrived, so a target that
                    // stops accepting copies keeps the ones it has.
                    let newest = (name.as_str(), summary.header.created_at_ms);
                    match self.prune(target.as_ref(), newest).await {
                        Ok(names) => pruned.extend(names),
                        Err(e) => failures.push(format!("retention on {}: {e}", target.describe())),
                    }
                }
                Err(e) => failures.push(format!("copy to {}: {e}", target.describe())),
            }
        }
        detail.insert("pruned".into(), pruned.into());
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }

    /// Deletes what retention does not keep; returns the names deleted. `newest` (the backup
    /// just copied, with its exact time) is placed last: names carry whole seconds, and a
    /// backup taken in the same second as an older one must count as the newer.
    async fn prune(
        &self,
        target: &dyn BackupTarget,
        newest: (&str, i64),
    ) -> Result<Vec<String>, String> {
        let mut held = target.list().await.map_err(text)?;
        if let Some(i) = held.iter().position(|b| b.name == newest.0) {
            let mut b = held.remove(i);
            b.created_at_ms = newest.1;
            held.push(b);
        }
        let times: Vec<i64> = held.iter().map(|b| b.created_at_ms).collect();
        let keep = self.config.backup.keep(&times);
        let mut deleted = Vec::new();
        for (b, k) in held.iter().zip(keep) {
            if !k {
                target.delete(&b.name).await.map_err(text)?;
                deleted.push(b.name.clone());
            }
        }
        Ok(deleted)
    }

    /// The newest backup on any target (the later target — the off-site one — on a tie),
    /// copied into `dir`. Returns it, where it came from and the local file.
    pub async fn backup_fetch_newest(
        &self,
        dir: &Path,
    ) -> Result<(StoredBackup, String, PathBuf), AppError> {
        let targets = self.backup_targets()?;
        let mut newest: Option<(StoredBackup, usize)> = None;
        let mut errors = Vec::new();
        for (i, target) in targets.iter().enumerate() {
            match target.list().await {
                Ok(list) => {
                    if let Some(b) = list.into_iter().last() {
                        if newest
                            .as_ref()
                            .is_none_or(|(n, _)| b.created_at_ms >= n.created_at_ms)
                        {
                            newest = Some((b, i));
                        }
                    }
                }
                Err(e) => errors.push(format!("{}: {e}", target.describe())),
            }
        }
        let Some((backup, i)) = newest else {
            return Err(AppError::Conflict(if errors.is_empty() {
                "there is no backup on any target yet".into()
            } else {
                format!("no backup could be listed: {}", errors.join("; "))
            }));
        };
        let path = dir.join(&backup.name);
        targets[i]
            .get(&backup.name, &path)
            .await
            .map_err(|e| AppError::Conflict(e.to_string()))?;
        Ok((backup, targets[i].describe(), path))
    }

    /// Restores the newest backup into a scratch SQLite database and proves it: verified, the
    /// same rows and digests as its manifest, every sealed field opened with this instance's
    /// keys, the audit chain intact. Recorded (kind `restore_test`) with each step's time.
    pub async fn restore_test(&self, by: Actor, trigger: &str) -> Result<BackupRun, AppError> {
        let _guard = self.backup_lock.try_lock().map_err(|_| Self::busy())?;
        if !self.config.backup.has_target() {
            self.backup_targets()?;
        }
        let started = self.now_ms();
        let t0 = Instant::now();
        let mut run = BackupRun {
            id: uuid::Uuid::now_v7().to_string(),
            kind: "restore_test".into(),
            trigger: trigger.to_owned(),
            started_at_ms: started,
            finished_at_ms: started,
            outcome: String::new(),
            backup_id: None,
            backup_created_at_ms: None,
            bytes: None,
            target: None,
            error: None,
            detail: None,
        };
        let mut steps = Steps::default();
        let mut check = None;
        let result = self
            .restore_test_steps(&mut run, &mut steps, &mut check)
            .await;
        run.finished_at_ms = started + elapsed_ms(t0);
        let (word, out) = outcome(result.is_ok());
        run.outcome = word.into();
        run.error = result.err();
        run.detail = Some(
            serde_json::json!({
                "steps": steps.0,
                "opened": check,
                "duration_ms": run.finished_at_ms - started,
            })
            .to_string(),
        );
        let event = AuditEvent::new(self.now_ms(), by, AuditAction::RestoreTested, out)
            .on("backup", run.backup_id.as_deref().unwrap_or(&run.id))
            .detail(format!(
                "{trigger}: {} in {} ms{}",
                run.target.as_deref().unwrap_or("no backup"),
                run.finished_at_ms - started,
                run.error
                    .as_deref()
                    .map(|e| format!("; {}", e.chars().take(500).collect::<String>()))
                    .unwrap_or_default()
            ));
        if out == Outcome::Failed {
            tracing::error!(run = %run.id, error = ?run.error, "restore test failed");
        }
        self.store.backup_run_record(run.clone(), event).await?;
        Ok(run)
    }

    async fn restore_test_steps(
        &self,
        run: &mut BackupRun,
        steps: &mut Steps,
        check: &mut Option<SealedCheck>,
    ) -> Result<(), String> {
        let scratch = tempfile::Builder::new()
            .prefix("zhangfang-restore-test-")
            .tempdir()
            .map_err(text)?;
        let (backup, source, path) = steps
            .run("fetch", async {
                self.backup_fetch_newest(scratch.path()).await.map_err(text)
            })
            .await?;
        run.target = Some(format!("{source}/{}", backup.name));
        run.bytes = i64::try_from(backup.bytes).ok();
        let verified = steps
            .run("verify", async {
                verify_file(path.clone(), self.keys.backup(), Arc::new(Quiet))
                    .await
                    .map_err(text)
            })
            .await?;
        run.backup_id = Some(verified.header.backup_id.clone());
        run.backup_created_at_ms = Some(verified.header.created_at_ms);
        let restored = steps
            .run("restore", async {
                let store = SqliteStore::open(&scratch.path().join("restore-test.db"))
                    .await
                    .map_err(text)?;
                let store: Arc<dyn Store> = Arc::new(store);
                restore_file(
                    store.as_ref(),
                    path.clone(),
                    self.keys.backup(),
                    false,
                    "restore_test",
                    Arc::new(Quiet),
                )
                .await
                .map_err(text)?;
                Ok(self.over(store))
            })
            .await?;
        steps
            .run("compare", async { compare(&restored, &verified).await })
            .await?;
        *check = Some(
            steps
                .run("decrypt", async {
                    restored.sealed_check().await.map_err(text)
                })
                .await?,
        );
        steps
            .run("audit chain", async {
                let report = restored.audit_verify(&[]).await.map_err(text)?;
                if report.is_intact() {
                    Ok(())
                } else {
                    Err(format!("{} findings", report.findings.len()))
                }
            })
            .await?;
        Ok(())
    }

    /// This application with the same keys over another store (a restored scratch copy).
    pub(crate) fn over(&self, store: Arc<dyn Store>) -> App {
        store.install_audit_chain_key(self.keys.audit_chain_shared());
        App {
            store,
            keys: Arc::new(self.keys.reading_every_version()),
            config: self.config.clone(),
            hasher: self.hasher.clone(),
            sinks: crate::monitor::Sinks::default(),
            clock: self.clock.clone(),
            backup_lock: Arc::default(),
            backup_running: Arc::default(),
            key_job_runner: Arc::new((
                format!("restored-{}", uuid::Uuid::new_v4()),
                tokio::sync::Mutex::new(()),
            )),
            token_rates: crate::identity::TokenRates::default(),
            passkey_rates: crate::identity::MinuteRates::default(),
            erasure_ledger: None,
            rp: self.rp.clone(),
            senders: crate::identity::otp::Senders::default(),
            deployment: self.deployment.clone(),
        }
    }

    /// Keeps a drill's result with this instance's runs, audited.
    pub async fn backup_record_drill(
        &self,
        by: Actor,
        drill: DrillRecord,
    ) -> Result<BackupRun, AppError> {
        let (word, out) = outcome(drill.ok);
        let run = BackupRun {
            id: uuid::Uuid::now_v7().to_string(),
            kind: "drill".into(),
            trigger: "cli".into(),
            started_at_ms: drill.started_at_ms,
            finished_at_ms: drill.finished_at_ms,
            outcome: word.into(),
            backup_id: drill.backup_id,
            backup_created_at_ms: drill.backup_created_at_ms,
            bytes: drill.bytes.and_then(|b| i64::try_from(b).ok()),
            target: Some(drill.source),
            error: drill.error,
            detail: Some(drill.detail.to_string()),
        };
        let rto = run.finished_at_ms - run.started_at_ms;
        let event = AuditEvent::new(self.now_ms(), by, AuditAction::DrillRun, out)
            .on("backup", run.backup_id.as_deref().unwrap_or(&run.id))
            .detail(format!(
                "recovered in {rto} ms (objective {RTO_OBJECTIVE_MS} ms), data {} ms old",
                run.backup_created_at_ms
                    .map_or(-1, |b| run.started_at_ms - b)
            ));
        self.store.backup_run_record(run.clone(), event).await?;
        Ok(run)
    }

    /// Runs the schedule: a backup when one is due, then a restore test when one is due. Of
    /// several nodes on one database, the one holding the backups' lease does both.
    /// Called every minute by the server; reads time from the application's clock.
    pub async fn backup_tick(&self) -> Result<Vec<BackupRun>, AppError> {
        let c = &self.config.backup;
        let mut done = Vec::new();
        if !c.enabled || !c.has_target() {
            return Ok(done);
        }
        let last = |kind: &'static str| async move {
            Ok::<_, AppError>(
                self.store
                    .backup_runs(Some(kind), 1)
                    .await?
                    .first()
                    .map(|r| r.started_at_ms),
            )
        };
        let due = |last_backup, last_test| {
            let now = self.now_ms();
            (
                c.backup_due(now, last_backup),
                c.restore_test_due(now, last_test),
            )
        };
        if due(last("backup").await?, last("restore_test").await?) == (false, false) {
            return Ok(done);
        }
        let Some(lease) = self.schedule_lease(BACKUP_LEASE).await? else {
            return Ok(done);
        };
        // Asked again under the lease, which covers both in order (a restore test needs the
        // backup before it): another node may have just done them.
        let run = async {
            let (backup, test) = due(last("backup").await?, last("restore_test").await?);
            if backup {
                done.push(self.backup_run(Actor::system(), "schedule").await?);
            }
            if test {
                done.push(self.restore_test(Actor::system(), "schedule").await?);
            }
            Ok::<_, AppError>(())
        }
        .await;
        lease.release().await?;
        run?;
        // Nobody watches a backup at 02:30: a failed one is an alert at once (the posture
        // check repeats it daily until a backup succeeds).
        for r in done.iter().filter(|r| r.outcome != "success") {
            let finding = crate::monitor::Finding {
                rule: "backup_failed",
                severity: zf_audit::Severity::High,
                dedup_key: format!("backup_failed:{}", r.id),
                username: None,
                user_id: None,
                source: None,
                summary: format!(
                    "定时备份失败 / the scheduled {} failed: {}",
                    r.kind.replace('_', " "),
                    r.error.as_deref().unwrap_or("no reason recorded")
                ),
                event_seq: 0,
                respond: vec![crate::monitor::Response::Alert],
            };
            self.raise(finding).await?;
        }
        Ok(done)
    }

    /// Everything the backups page shows.
    pub async fn backup_overview(&self) -> Result<BackupOverview, AppError> {
        let c = &self.config.backup;
        let runs = self.store.backup_runs(None, RUNS_SHOWN).await?;
        let last_ok = |kind: &str| {
            runs.iter()
                .find(|r| r.kind == kind && r.outcome == "success")
                .map(|r| r.started_at_ms)
        };
        let (last_backup, last_test, last_drill) =
            (last_ok("backup"), last_ok("restore_test"), last_ok("drill"));
        let now = self.now_ms();
        Ok(BackupOverview {
            running: self
                .backup_running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            targets: self.target_names(),
            scheduled: c.enabled && c.has_target(),
            schedule: format!(
                "{:02}:{:02} (UTC{:+})",
                c.schedule.hour, c.schedule.minute, c.utc_offset_hours
            ),
            last_backup_at_ms: last_backup,
            last_restore_test_at_ms: last_test,
            last_drill_at_ms: last_drill,
            restore_test_overdue: overdue(now, last_test, c.restore_test_every_days.max(1)),
            drill_overdue: overdue(now, last_drill, c.drill_every_days.max(1)),
            restore_test_every_days: c.restore_test_every_days,
            drill_every_days: c.drill_every_days,
            rto_objective_ms: RTO_OBJECTIVE_MS,
            runs: runs.into_iter().map(RunView::of).collect(),
        })
    }
}

/// The restored database must hold what the backup's manifest says, to the digest: a second
/// backup of it, made through the same code path, must produce the same table records.
async fn compare(restored: &App, verified: &VerifiedBackup) -> Result<(), String> {
    let (_, again) = restored
        .backup_write(std::io::sink(), Arc::new(Quiet))
        .await
        .map_err(text)?;
    let expected = &verified.manifest;
    for (a, b) in expected.tables.iter().zip(&again.manifest.tables) {
        if a != b {
            return Err(format!(
                "table {}: the backup holds {} rows ({}), the restored copy {} rows ({})",
                a.name, a.rows, a.sha256, b.rows, b.sha256
            ));
        }
    }
    if expected.tables.len() != again.manifest.tables.len() {
        return Err("the restored copy has a different set of tables".into());
    }
    if expected.audit_head != again.manifest.audit_head {
        return Err("the restored audit chain ends elsewhere".into());
    }
    Ok(())
}
