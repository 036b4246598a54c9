//! `zhangfang audit …`: the audit administrator's tools for tamper evidence.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Subcommand;
use zf_audit::{AuditAction, Checkpoint, Outcome};

use crate::config::Settings;
use crate::user::os_actor;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Walk the whole log and check every link, the chain head and the signed checkpoints.
    /// Exits non-zero and names the first events found edited, deleted, inserted, reordered or
    /// truncated.
    Verify {
        /// Checkpoints kept outside the database (written by `audit checkpoint --append` or
        /// the server's `audit_checkpoint_file`); they reveal a truncated tail or a rewritten log.
        #[arg(long, value_name = "FILE")]
        checkpoints: Vec<PathBuf>,
        /// Archive files written by `audit archive`, oldest first; they are checked too.
        #[arg(long, value_name = "FILE")]
        archive: Vec<PathBuf>,
    },
    /// Move events older than the retention (and than --before) to a signed, compressed archive
    /// file, after verifying the whole log. Keep the file: `audit verify --archive` checks it.
    Archive {
        /// Archive events before this RFC 3339 time (never younger than the retention).
        #[arg(long, value_name = "TIME")]
        before: String,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Seal the chain head with a signed checkpoint now and print it.
    Checkpoint {
        /// Also append it to this file (kept outside the database, ideally write-once).
        #[arg(long, value_name = "FILE")]
        append: Option<PathBuf>,
    },
    /// Write every signed checkpoint in the database to a file, one JSON line each.
    ExportCheckpoints {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Search the log, newest first: "who touched client X", "what did user Y do between T1
    /// and T2". Prints one JSON line per event.
    Search {
        /// Username of the actor.
        #[arg(long)]
        user: Option<String>,
        /// A client id.
        #[arg(long)]
        client: Option<String>,
        #[arg(long)]
        action: Option<String>,
        /// Source address.
        #[arg(long)]
        source: Option<String>,
        /// RFC 3339 time, inclusive.
        #[arg(long)]
        from: Option<String>,
        /// RFC 3339 time, exclusive.
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Mark a client as a decoy (honeytoken): any access to it raises a critical alert.
    Honeytoken {
        #[arg(long, value_name = "CLIENT_ID")]
        client: String,
    },
    /// Write the audit log as JSON lines for security tooling.
    Export {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// Appends one checkpoint line, creating the file if needed; shared with the server's
/// periodic checkpoints.
pub fn append_checkpoint(path: &Path, checkpoint: &Checkpoint) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    writeln!(file, "{}", checkpoint.to_json_line())
        .and_then(|()| file.sync_data())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn read_archives(paths: &[PathBuf]) -> anyhow::Result<Vec<zf_audit::Archive>> {
    paths
        .iter()
        .map(|p| {
            let file = std::fs::File::open(p)
                .with_context(|| format!("cannot read archive {}", p.display()))?;
            zf_audit::Archive::read(file).with_context(|| format!("archive {}", p.display()))
        })
        .collect()
}

fn read_checkpoints(paths: &[PathBuf]) -> anyhow::Result<Vec<Checkpoint>> {
    let mut all = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read checkpoint file {}", path.display()))?;
        all.extend(
            Checkpoint::parse_lines(&text)
                .with_context(|| format!("checkpoint file {}", path.display()))?,
        );
    }
    Ok(all)
}

pub async fn run(settings: Settings, cmd: AuditCommand) -> anyhow::Result<()> {
    // Read the files before opening anything, so a bad path fails fast and changes nothing.
    let (external, archives) = match &cmd {
        AuditCommand::Verify {
            checkpoints,
            archive,
        } => (read_checkpoints(checkpoints)?, read_archives(archive)?),
        _ => (Vec::new(), Vec::new()),
    };
    let instance = crate::provider::open_instance(&settings).await?;
    let app = &instance.app;
    match cmd {
        AuditCommand::Verify { .. } => {
            let started = Instant::now();
            let report = app.audit_verify_with_archives(&external, &archives).await?;
            let secs = started.elapsed().as_secs_f64();
            let rate = report.events as f64 / secs.max(1e-9);
            println!(
                "Verified {} events up to #{} in {secs:.2} s ({rate:.0} events/s) against {} exported checkpoints and {} archives.",
                report.events,
                report.last_seq,
                external.len(),
                archives.len()
            );
            let (outcome, detail) = if report.is_intact() {
                println!("The audit log is intact.");
                (Outcome::Success, format!("{} events intact", report.events))
            } else {
                println!("The audit log has been tampered with:");
                for f in &report.findings {
                    println!("  - {f}");
                }
                (
                    Outcome::Failed,
                    format!(
                        "{} findings; first: {}",
                        report.findings.len(),
                        report.findings[0]
                    ),
                )
            };
            app.audit_record_operation(os_actor(), AuditAction::AuditVerified, outcome, detail)
                .await?;
            if !report.is_intact() {
                anyhow::bail!("audit verification failed");
            }
            Ok(())
        }
        AuditCommand::Checkpoint { append } => {
            match app.audit_checkpoint().await? {
                Some(cp) => {
                    if let Some(path) = &append {
                        append_checkpoint(path, &cp)?;
                    }
                    println!("{}", cp.to_json_line());
                }
                None => {
                    let last = app.audit_checkpoints().await?.pop();
                    match (last, &append) {
                        (Some(cp), Some(path)) => {
                            append_checkpoint(path, &cp)?;
                            println!("{}", cp.to_json_line());
                        }
                        (Some(cp), None) => println!("{}", cp.to_json_line()),
                        (None, _) => println!("The audit log is empty; nothing to seal."),
                    }
                }
            }
            Ok(())
        }
        AuditCommand::Archive { before, out } => {
            let before = time::OffsetDateTime::parse(
                &before,
                &time::format_description::well_known::Rfc3339,
            )
            .context("--before must be an RFC 3339 time such as 2026-05-01T00:00:00+08:00")?;
            let before_ms = i64::try_from(before.unix_timestamp_nanos() / 1_000_000)
                .context("--before is out of range")?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&out)
                .with_context(|| {
                    format!("cannot create {} (it must not exist yet)", out.display())
                })?;
            match app.audit_archive(before_ms, &mut file, os_actor()).await {
                Ok(Some(m)) => {
                    file.sync_all()
                        .with_context(|| format!("cannot write {}", out.display()))?;
                    println!(
                        "Archived events #{} to #{} ({}) to {}.",
                        m.first_seq,
                        m.last_seq,
                        m.count,
                        out.display()
                    );
                    Ok(())
                }
                Ok(None) => {
                    drop(file);
                    let _ = std::fs::remove_file(&out);
                    println!("No event is old enough to archive.");
                    Ok(())
                }
                Err(e) => {
                    drop(file);
                    let _ = std::fs::remove_file(&out);
                    Err(e.into())
                }
            }
        }
        AuditCommand::Search {
            user,
            client,
            action,
            source,
            from,
            to,
            limit,
        } => {
            let time = |name: &str, v: Option<String>| -> anyhow::Result<Option<i64>> {
                v.map(|v| {
                    let t = time::OffsetDateTime::parse(
                        &v,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .with_context(|| {
                        format!(
                            "--{name} must be an RFC 3339 time such as 2026-11-01T00:00:00+08:00"
                        )
                    })?;
                    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
                        .with_context(|| format!("--{name} is out of range"))
                })
                .transpose()
            };
            let record = client
                .map(|c| zf_domain::ClientId::parse(&c).map(|id| id.to_string()))
                .transpose()
                .context("invalid --client")?;
            let query = zf_store::AuditQuery {
                actor: user,
                resource: record.as_ref().map(|_| "clients".to_owned()),
                record_id: record,
                action,
                source,
                from_ms: time("from", from)?,
                to_ms: time("to", to)?,
                limit: limit.clamp(1, 10_000),
                ..zf_store::AuditQuery::default()
            };
            let found = app.store().audit_search(&query).await?;
            for e in &found {
                println!("{}", serde_json::to_string(e).context("encode event")?);
            }
            app.audit_record_operation(
                os_actor(),
                AuditAction::AuditSearched,
                Outcome::Success,
                format!("{} events from the command line", found.len()),
            )
            .await?;
            Ok(())
        }
        AuditCommand::Honeytoken { client } => {
            let id = zf_domain::ClientId::parse(&client).context("invalid --client")?;
            app.plant_honeytoken(id, os_actor()).await?;
            println!("Client {id} is now a honeytoken: any access raises a critical alert.");
            Ok(())
        }
        AuditCommand::Export { out } => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&out)
                .with_context(|| {
                    format!("cannot create {} (it must not exist yet)", out.display())
                })?;
            let count = app.audit_export(&mut file).await?;
            file.sync_all()
                .with_context(|| format!("cannot write {}", out.display()))?;
            app.audit_record_operation(
                os_actor(),
                AuditAction::AuditExported,
                Outcome::Success,
                format!("{count} events to {}", out.display()),
            )
            .await?;
            println!("Wrote {count} events to {}.", out.display());
            Ok(())
        }
        AuditCommand::ExportCheckpoints { out } => {
            let all = app.audit_checkpoints().await?;
            let text: String = all.iter().map(|c| c.to_json_line() + "\n").collect();
            std::fs::write(&out, text)
                .with_context(|| format!("cannot write {}", out.display()))?;
            app.audit_record_operation(
                os_actor(),
                AuditAction::AuditCheckpointsExported,
                Outcome::Success,
                format!("{} checkpoints to {}", all.len(), out.display()),
            )
            .await?;
            println!("Wrote {} checkpoints to {}.", all.len(), out.display());
            Ok(())
        }
    }
}
