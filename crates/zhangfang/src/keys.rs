//! `zhangfang keys`: the keyring's status, KEK rotation, re-encryption and blind-index rotation,
//! run by an operator on the server.

use std::time::Duration;

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Settings;
use crate::user::os_actor;

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// KEK versions with their state, age and how many keys each wraps, whether the rotation
    /// policy (365 days) is overdue, and the running or latest key job (re-encryption or
    /// re-indexing) with its progress, as JSON.
    Status,
    /// A new KEK version; every data key and system key rewrapped under it while servers keep
    /// serving; the older versions retired once nothing refers to them. Data is untouched.
    /// Running it again finishes a rotation that was stopped.
    ///
    /// With --reencrypt, the data itself: a new data key for every client and lead and every
    /// value sealed again under it, while servers keep serving. The job commits its place after
    /// every batch: after a crash, a restart or an interrupted command, running the command
    /// again (or any server, once the job's lease expires) carries on from there.
    ///
    /// With --blind-index, the key of the search tokens: a new blind-index key computes every
    /// new token at once, and every stored token (clients' ID numbers, contacts' mobiles and ID
    /// numbers, leads' mobiles) is computed again under it while searches keep finding rows
    /// under either key; the previous key is then deleted. Blind-index key v1 is kept: MFA
    /// recovery-code and one-time-code hashes stay under it. Resumable like --reencrypt.
    Rotate {
        /// Seconds to wait after adding the version so that every running server wraps new
        /// keys under it before the last sweep (servers read the keyring every second or so).
        #[arg(long, default_value_t = 5)]
        grace_seconds: u64,
        /// New data keys and all data re-encrypted under them, instead of a new KEK.
        #[arg(long, conflicts_with = "blind_index")]
        reencrypt: bool,
        /// A new blind-index key and every search token computed again under it, instead of a
        /// new KEK.
        #[arg(long)]
        blind_index: bool,
    },
}

pub async fn run(settings: Settings, cmd: KeysCommand) -> anyhow::Result<()> {
    let instance = crate::provider::open_instance(&settings).await?;
    let app = instance.app;
    match cmd {
        KeysCommand::Status => {
            let mut status = serde_json::to_value(app.key_status().await?)?;
            status["key_job"] = serde_json::to_value(app.key_job().await?)?;
            println!("{}", serde_json::to_string_pretty(&status)?);
        }
        KeysCommand::Rotate {
            reencrypt: true, ..
        } => run_key_job(&app, JobKind::Reencrypt).await?,
        KeysCommand::Rotate {
            blind_index: true, ..
        } => run_key_job(&app, JobKind::Reindex).await?,
        KeysCommand::Rotate {
            grace_seconds,
            reencrypt: false,
            blind_index: false,
        } => {
            let total: u64 = app
                .key_status()
                .await?
                .versions
                .iter()
                .flat_map(|v| v.keys.values())
                .sum();
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} keys rewrapped ({per_sec})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let report = app
                .key_rotate(os_actor(), Duration::from_secs(grace_seconds), &|n| {
                    bar.set_position(n)
                })
                .await?;
            bar.finish_and_clear();
            println!(
                "KEK v{} -> v{}: {} keys rewrapped; retired: {}",
                report.from,
                report.to,
                report.rewrapped,
                if report.retired.is_empty() {
                    "none".to_owned()
                } else {
                    report
                        .retired
                        .iter()
                        .map(|v| format!("v{v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
        }
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum JobKind {
    Reencrypt,
    Reindex,
}

impl JobKind {
    fn as_str(self) -> &'static str {
        match self {
            JobKind::Reencrypt => "reencrypt",
            JobKind::Reindex => "reindex",
        }
    }

    fn name(self) -> &'static str {
        match self {
            JobKind::Reencrypt => "re-encryption",
            JobKind::Reindex => "blind-index rotation",
        }
    }
}

/// Starts a key job of `kind` (or finds the one running) and runs it here with a progress bar;
/// if a server is running it, follows its progress until it finishes.
async fn run_key_job(app: &zf_app::App, kind: JobKind) -> anyhow::Result<()> {
    let job = match app.key_job().await? {
        Some(job) if job.state == "running" && job.kind == kind.as_str() => {
            eprintln!("resuming {} {} ({})", kind.name(), job.id, job.phase);
            job
        }
        Some(job) if job.state == "running" => anyhow::bail!(
            "another key job ({}) is running; wait for it to finish (zhangfang keys status)",
            job.kind
        ),
        _ => match kind {
            JobKind::Reencrypt => app.reencrypt_start(os_actor()).await?,
            JobKind::Reindex => app.blind_index_rotate_start(os_actor()).await?,
        },
    };
    let started = job.id.clone();
    let bar = ProgressBar::new(job.total.max(0) as u64);
    let template = match kind {
        JobKind::Reencrypt => "{bar:40} {pos}/{len} holders re-keyed, {msg}",
        JobKind::Reindex => "{bar:40} {pos}/{len} clients and leads re-indexed, {msg}",
    };
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let show = |job: &zf_app::data_keys::KeyJobView| {
        bar.set_position(job.holders_done.max(0) as u64);
        bar.set_message(match kind {
            JobKind::Reencrypt => {
                format!("{} values sealed again ({})", job.values_done, job.phase)
            }
            JobKind::Reindex => {
                format!("{} search tokens written ({})", job.values_done, job.phase)
            }
        });
    };
    show(&job);
    let finished = loop {
        match app.key_job_run(&show).await? {
            Some(job) if job.id == started && job.state == "finished" => break job,
            _ => {}
        }
        // Another runner (a server) holds the job: follow it.
        match app.key_job().await? {
            Some(job) if job.id == started && job.state == "finished" => break job,
            Some(job) if job.id == started => show(&job),
            _ => anyhow::bail!("the {} job {started} disappeared", kind.name()),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    bar.finish_and_clear();
    match kind {
        JobKind::Reencrypt => println!(
            "re-encryption {} finished: {} clients and leads given new data keys, {} values sealed again",
            finished.id, finished.holders_done, finished.values_done
        ),
        JobKind::Reindex => println!(
            "blind-index rotation {} finished: {} clients and leads re-indexed, {} search tokens \
             written under the new key; the previous key is deleted (v1 is kept for MFA code hashes)",
            finished.id, finished.holders_done, finished.values_done
        ),
    }
    Ok(())
}
