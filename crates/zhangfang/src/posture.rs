//! `zhangfang posture`: the security posture check from the server's command line, for the
//! security officer, a cron job or a monitoring probe: one line per check, or JSON; the exit
//! status is non-zero when a check fails.

use clap::Args;
use zf_app::posture::{Posture, Status};

use crate::config::Settings;

#[derive(Args, Debug)]
pub struct PostureArgs {
    /// Print the checks as JSON instead of one line each.
    #[arg(long)]
    json: bool,
}

fn mark(s: Status) -> &'static str {
    match s {
        Status::Pass => "pass",
        Status::Warn => "WARN",
        Status::Fail => "FAIL",
    }
}

fn print(p: &Posture) {
    for c in &p.checks {
        println!("{:<5} {:<17} {}", mark(c.status), c.id, c.summary);
    }
    println!();
    println!("{}", zf_app::posture::summary(p));
}

pub async fn run(settings: Settings, args: PostureArgs) -> anyhow::Result<()> {
    let deployment = crate::serve::deployment(&settings, None)?;
    let instance = crate::provider::open_instance(&settings).await?;
    let app = instance.app.with_deployment(deployment);
    let posture = app.posture().await?;
    app.audit_record_operation(
        crate::user::os_actor(),
        zf_audit::AuditAction::SecurityPostureChecked,
        zf_audit::Outcome::Success,
        zf_app::posture::summary(&posture),
    )
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&posture)?);
    } else {
        print(&posture);
    }
    if posture.failed > 0 {
        anyhow::bail!(
            "{} of {} posture checks failed",
            posture.failed,
            posture.checks.len()
        );
    }
    Ok(())
}
