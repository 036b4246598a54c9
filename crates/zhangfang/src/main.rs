//! `zhangfang`: the one binary. Subcommands are thin: they read configuration, open the
//! instance, and call the application or the server.

mod audit;
mod backup;
mod bench;
mod config;
mod crm;
mod drill;
mod keys;
mod posture;
mod provider;
mod serve;
mod user;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::CommonArgs;

/// SQLite's page caches, request bodies and JSON make many short-lived allocations of mixed
/// sizes from many threads; under load glibc's allocator spent a fifth of the server's time
/// consolidating and unlinking chunks (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "zhangfang",
    version,
    about = "账房 Zhangfang — a security-first CRM for tax-agency firms"
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web UI and the JSON API over HTTPS.
    Serve(serve::ServeArgs),
    /// Manage user accounts.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Verify the audit log and manage its signed checkpoints.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Import clients from a CSV or XLSX file, checking every row first.
    Import(crm::ImportArgs),
    /// Export the clients a user may see to a CSV or XLSX file (audited).
    Export(crm::ExportArgs),
    /// Create a demo firm: staff, and clients with contacts, contracts, books and filings.
    Demo(crm::DemoArgs),
    /// Write an encrypted backup of the whole database while it keeps serving, or verify one.
    Backup(backup::BackupArgs),
    /// Restore a backup into the configured database (empty, or kept aside with --force).
    /// Stop every server using that database first.
    Restore(backup::RestoreArgs),
    /// The keyring: status, and KEK rotation.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Rehearse a disaster recovery: restore the newest off-site backup on a fresh data
    /// directory, serve it, read it back, and report recovery time and data age.
    Drill(drill::DrillArgs),
    /// Check the deployment's security posture: key ages, master-key custody, second factors,
    /// backups and restore tests, access reviews, the audit chain, open alerts, log
    /// forwarding, the TLS certificate. Exits non-zero when a check fails.
    Posture(posture::PostureArgs),
    /// Measure this machine: figures beside their raw baselines.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let settings = config::Settings::load(&cli.common)?;
        config::init_logging(&settings);
        match cli.command {
            Command::Serve(args) => serve::run(settings, args).await,
            Command::User(cmd) => user::run(settings, cmd).await,
            Command::Audit(cmd) => audit::run(settings, cmd).await,
            Command::Import(args) => crm::import(settings, args).await,
            Command::Export(args) => crm::export(settings, args).await,
            Command::Demo(args) => crm::demo(settings, args).await,
            Command::Backup(args) => backup::backup(settings, args).await,
            Command::Restore(args) => backup::restore(settings, args).await,
            Command::Drill(args) => drill::run(settings, args).await,
            Command::Keys(cmd) => keys::run(settings, cmd).await,
            Command::Posture(args) => posture::run(settings, args).await,
            Command::Bench(cmd) => bench::run(cmd).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
