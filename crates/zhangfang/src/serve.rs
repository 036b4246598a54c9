use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use zf_server::tls::{self, TlsFiles};

use crate::config::Settings;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ZHANGFANG_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// TLS certificate chain (PEM). Default: a self-signed certificate for localhost.
    #[arg(
        long,
        env = "ZHANGFANG_TLS_CERT",
        requires = "tls_key",
        value_name = "FILE"
    )]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for --tls-cert.
    #[arg(
        long,
        env = "ZHANGFANG_TLS_KEY",
        requires = "tls_cert",
        value_name = "FILE"
    )]
    tls_key: Option<PathBuf>,
}

const DEFAULT_LISTEN: &str = "127.0.0.1:8443";

pub async fn run(mut settings: Settings, args: ServeArgs) -> anyhow::Result<()> {
    let listen = match args.listen.or(settings.file.listen) {
        Some(a) => a,
        None => DEFAULT_LISTEN.parse().context("default listen address")?,
    };
    // The default origin carries the port actually listened on, which `--listen` may change.
    settings.app.webauthn = crate::config::webauthn_config(
        settings.file.webauthn.as_ref(),
        settings.file.firm_name.as_deref(),
        listen.port(),
    )?;
    let mut instance = crate::provider::open_instance(&settings).await?;
    let files = match (
        args.tls_cert.or(settings.file.tls_cert.clone()),
        args.tls_key.or(settings.file.tls_key.clone()),
    ) {
        (Some(cert), Some(key)) => TlsFiles { cert, key },
        (None, None) => tls::ensure_self_signed(&settings.data_dir)?,
        _ => anyhow::bail!("tls_cert and tls_key must be given together"),
    };
    let tls_config = tls::server_config(&files)?;
    instance.app = instance
        .app
        .with_deployment(deployment(&settings, Some(&files.cert))?);
    if let Some(secret) = instance.app.create_first_admin().await? {
        // Printed once, to the operator's terminal only; never logged.
        println!();
        println!("  First administrator created.");
        println!("    username:           {}", secret.username.as_str());
        println!(
            "    one-time password:  {}",
            secret.password.expose_secret()
        );
        println!("  Sign in at https://{listen}/login and choose a new password.");
        println!("  This password is shown only this once.");
        println!();
    }
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let bound = listener.local_addr().unwrap_or(listen);
    tracing::info!(
        address = %bound,
        database = %instance.database.describe(),
        data = %instance.data_dir.display(),
        "serving HTTPS"
    );
    let shutdown = shutdown_signal()?;
    println!("Zhangfang is serving on https://{bound}/");
    let sealer = tokio::spawn(seal_periodically(
        instance.app.clone(),
        std::time::Duration::from_secs(settings.file.audit_checkpoint_seconds.unwrap_or(300)),
        settings.file.audit_checkpoint_file.clone(),
    ));
    connect_sinks(&instance.app, settings.file.siem.as_ref())?;
    let monitor = tokio::spawn(monitor_continuously(
        instance.app.clone(),
        std::time::Duration::from_millis(settings.file.monitor_interval_ms.unwrap_or(1000)),
    ));
    for sender in instance.app.code_senders_described() {
        if sender.contains("development outbox") {
            tracing::warn!(%sender, "one-time codes go to a development outbox, not to their users");
        } else {
            tracing::info!(%sender, "one-time codes by e-mail or SMS");
        }
    }
    let backups =
        if instance.app.config().backup.enabled && instance.app.config().backup.has_target() {
            // Refuse to start with a target that cannot work (a mount missing, a secret unset)
            // rather than discover it at the first scheduled backup.
            let targets = instance
                .app
                .backup_targets()
                .map_err(|e| anyhow::anyhow!("backup: {e}"))?;
            let names: Vec<String> = targets.iter().map(|t| t.describe()).collect();
            tracing::info!(targets = ?names, "scheduled backups on");
            Some(tokio::spawn(back_up_on_schedule(instance.app.clone())))
        } else {
            None
        };
    let router = zf_server::router(instance.app.clone());
    zf_server::serve(listener, tls_config, router, shutdown).await?;
    sealer.abort();
    monitor.abort();
    if let Some(b) = backups {
        b.abort();
    }
    // The last events of this run are sealed before the process ends.
    seal_once(
        &instance.app,
        settings.file.audit_checkpoint_file.as_deref(),
    )
    .await;
    tracing::info!("stopped");
    Ok(())
}

/// Installs the handlers for SIGTERM and Ctrl-C (SIGINT) now, before the server announces
/// itself, so a signal that arrives at once still means "shut down gracefully".
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    })
}

async fn seal_once(app: &zf_app::App, file: Option<&std::path::Path>) {
    match app.audit_checkpoint().await {
        Ok(Some(cp)) => {
            tracing::info!(seq = cp.seq, "audit checkpoint signed");
            if let Some(path) = file {
                if let Err(e) = crate::audit::append_checkpoint(path, &cp) {
                    tracing::error!(error = %e, "cannot write the audit checkpoint file");
                }
            }
        }
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "cannot sign an audit checkpoint"),
    }
}

async fn seal_periodically(
    app: zf_app::App,
    every: std::time::Duration,
    file: Option<std::path::PathBuf>,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        seal_once(&app, file.as_deref()).await;
    }
}

/// What the posture check cannot see of this deployment: the key provider, where events and
/// alerts are forwarded, and the certificate served — `cert`, else the configured one, else
/// the self-signed one if it was made.
pub fn deployment(
    settings: &Settings,
    cert: Option<&std::path::Path>,
) -> anyhow::Result<zf_app::posture::Deployment> {
    let cert = cert
        .map(std::path::Path::to_owned)
        .or_else(|| settings.file.tls_cert.clone())
        .or_else(|| Some(settings.data_dir.join("tls").join("cert.pem")).filter(|p| p.exists()));
    let mut forwarding = Vec::new();
    if let Some(siem) = &settings.file.siem {
        if let Some(syslog) = &siem.syslog {
            forwarding.push(format!("syslog over TLS to {}", syslog.address));
        }
        for hook in &siem.webhooks {
            forwarding.push(format!("a {:?} webhook", hook.kind));
        }
    }
    Ok(zf_app::posture::Deployment {
        key_provider: settings.key_provider.name().to_owned(),
        forwarding,
        certificate: cert.map(|c| tls::certificate_facts(&c)).transpose()?,
    })
}

/// Starts the configured senders and hands them to the monitoring loop.
fn connect_sinks(
    app: &zf_app::App,
    siem: Option<&crate::config::SiemConfig>,
) -> anyhow::Result<()> {
    let Some(siem) = siem else { return Ok(()) };
    if let Some(syslog) = &siem.syslog {
        let sender = zf_siem::SyslogTlsSender::start(syslog).context("syslog")?;
        app.sinks().add(std::sync::Arc::new(sender));
        tracing::info!(address = %syslog.address, "forwarding audit events and alerts to syslog");
    }
    if !siem.webhooks.is_empty() {
        let hooks = zf_siem::Webhooks::new(siem.webhooks.iter().cloned()).context("webhooks")?;
        tracing::info!(count = hooks.len(), "forwarding alerts to webhooks");
        app.sinks().add(std::sync::Arc::new(zf_siem::WebhookSink(
            std::sync::Arc::new(hooks),
        )));
    }
    Ok(())
}

async fn monitor_continuously(app: zf_app::App, every: std::time::Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dormant_checked: Option<tokio::time::Instant> = None;
    let mut keys_checked: Option<tokio::time::Instant> = None;
    let mut posture_checked: Option<tokio::time::Instant> = None;
    let started = tokio::time::Instant::now();
    loop {
        ticks.tick().await;
        if let Err(e) = app.monitor_tick().await {
            tracing::error!(error = %e, "security monitoring failed this round");
        }
        // A rotation run elsewhere (the command line, another node) is picked up within a
        // tick, so new keys are wrapped under the new KEK before its rotation's last sweep.
        if let Err(e) = app.keyring_refresh().await {
            tracing::error!(error = %e, "cannot read the keyring");
        }
        // A re-encryption started elsewhere, or left by a node that died, runs here once its
        // lease is free.
        app.key_job_spawn();
        // A key wears by 2^30 values, so looking for worn ones once a minute is plenty.
        if keys_checked.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(60)) {
            keys_checked = Some(tokio::time::Instant::now());
            match app.data_keys_maintain().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(count = n, "replaced data keys that reached their limit"),
                Err(e) => tracing::error!(error = %e, "cannot maintain data keys"),
            }
        }
        // The posture is first judged ten minutes after start, once a backup or a review
        // that was due at start-up has had its chance to run; then every hour.
        if started.elapsed() >= std::time::Duration::from_secs(600)
            && posture_checked.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(3600))
        {
            posture_checked = Some(tokio::time::Instant::now());
            match app.posture_alerts().await {
                Ok(raised) if !raised.is_empty() => {
                    tracing::warn!(count = raised.len(), "security posture checks failed")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "cannot check the security posture"),
            }
        }
        if dormant_checked.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(3600)) {
            dormant_checked = Some(tokio::time::Instant::now());
            let rules = &app.config().monitor;
            if rules.access_review_every_days > 0 {
                match app
                    .review_schedule(rules.access_review_every_days, rules.access_review_due_days)
                    .await
                {
                    Ok(Some(v)) => tracing::info!(id = %v.campaign.id, "access review started"),
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "cannot start the access review"),
                }
            }
            if let Err(e) = app.review_escalations().await {
                tracing::error!(error = %e, "cannot check access reviews");
            }

            match app.disable_dormant_accounts().await {
                Ok(users) if !users.is_empty() => {
                    tracing::warn!(count = users.len(), "disabled dormant accounts")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "dormant-account check failed"),
            }
        }
    }
}

/// Asks every minute whether a backup or a restore test is due; the schedule itself is in
/// `App::backup_tick`, against the application's clock.
async fn back_up_on_schedule(app: zf_app::App) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(60));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match app.backup_tick().await {
            Ok(runs) => {
                for r in runs {
                    tracing::info!(kind = %r.kind, outcome = %r.outcome, id = %r.id, "backup run finished");
                }
            }
            Err(e) => tracing::error!(error = %e, "scheduled backup could not run"),
        }
    }
}
