//! `zhangfang keys`: the keyring's status and KEK rotation, run by an operator on the server.

use std::time::Duration;

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Settings;
use crate::user::os_actor;

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// KEK versions with their state, age and how many keys each wraps, and whether the
    /// rotation policy (365 days) is overdue, as JSON.
    Status,
    /// A new KEK version; every data key and system key rewrapped under it while servers keep
    /// serving; the older versions retired once nothing refers to them. Data is untouched.
    /// Running it again finishes a rotation that was stopped.
    Rotate {
        /// Seconds to wait after adding the version so that every running server wraps new
        /// keys under it before the last sweep (servers read the keyring every second or so).
        #[arg(long, default_value_t = 5)]
        grace_seconds: u64,
    },
}

pub async fn run(settings: Settings, cmd: KeysCommand) -> anyhow::Result<()> {
    let instance = crate::provider::open_instance(&settings).await?;
    let app = instance.app;
    match cmd {
        KeysCommand::Status => {
            println!(
                "{}",
                serde_json::to_string_pretty(&app.key_status().await?)?
            );
        }
        KeysCommand::Rotate { grace_seconds } => {
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
