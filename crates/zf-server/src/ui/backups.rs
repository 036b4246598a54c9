//! The backups page of the system and security administrators: where backups go, each backup,
//! restore test and drill with its outcome and figures, and a reminder when a restore test or
//! a drill is overdue. The system administrator can back up or test a restore from here.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use zf_app::backup::{BackupOverview, ManualRun};
use zf_policy::{Action, Permission, Resource};

use super::i18n::{Lang, Msg};
use super::{csrf_ok, csrf_refused, layout, time};
use crate::extract::Authorized;
use crate::routes::AppState;
use crate::ApiError;

fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0 => format!("{} ms", ms.max(0)),
        1..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{:.1} h", s as f64 / 3600.0),
    }
}

fn size(bytes: Option<i64>) -> String {
    match bytes {
        None => "—".into(),
        Some(b) if b < 1 << 20 => format!("{:.1} KiB", b as f64 / 1024.0),
        Some(b) => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
    }
}

fn body(lang: Lang, auth: &Authorized, o: &BackupOverview, error: Option<&str>) -> Markup {
    let csrf = auth.csrf_token.clone().unwrap_or_default();
    let may_run = auth
        .grant
        .may(Permission::new(Resource::Backup, Action::Create));
    html! {
        @if let Some(e) = error { p.error role="alert" { (e) } }
        @if o.restore_test_overdue {
            p.error role="alert" { (lang.t(Msg::RestoreTestOverdue)) " " (o.restore_test_every_days) " " (lang.t(Msg::Days)) }
        }
        @if o.drill_overdue {
            p.error role="alert" { (lang.t(Msg::DrillOverdue)) " " (o.drill_every_days) " " (lang.t(Msg::Days)) }
        }
        @if let Some(r) = &o.running {
            p.note role="status" {
                (lang.t(Msg::RunInProgress)) ": " (r.kind) " · " (r.by) " · " (time(r.started_at))
            }
        }
        section.card {
            @if o.targets.is_empty() {
                p { (lang.t(Msg::NoBackupTarget)) }
            } @else {
                p { (lang.t(Msg::BackupTargets)) ": " (o.targets.join(", ")) }
            }
            p {
                @if o.scheduled { (lang.t(Msg::BackupSchedule)) " " (o.schedule) } @else { (lang.t(Msg::BackupNotScheduled)) }
            }
            p { (lang.t(Msg::LastBackup)) ": " (o.last_backup_at_ms.map_or_else(|| lang.t(Msg::Never).to_owned(), time)) }
            @if may_run {
                form.inline method="post" action="/backups/run" {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { (lang.t(Msg::BackupNow)) }
                }
                " "
                form.inline method="post" action="/backups/restore-tests" {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { (lang.t(Msg::RunRestoreTest)) }
                }
            }
        }
        @if o.runs.is_empty() {
            p { (lang.t(Msg::NoRuns)) }
        } @else {
            table.audit {
                thead { tr {
                    th { (lang.t(Msg::AuditTime)) } th { (lang.t(Msg::RunKind)) } th { (lang.t(Msg::Trigger)) }
                    th { (lang.t(Msg::AuditOutcome)) } th { (lang.t(Msg::Duration)) } th { (lang.t(Msg::Size)) }
                    th { (lang.t(Msg::Rpo)) } th { (lang.t(Msg::Rto)) } th { (lang.t(Msg::BackupId)) }
                    th { (lang.t(Msg::Target)) } th { (lang.t(Msg::Error)) }
                } }
                tbody {
                    @for r in &o.runs {
                        tr.(r.run.outcome) {
                            td { (time(r.run.started_at_ms)) }
                            td { (r.run.kind) }
                            td { (r.run.trigger) }
                            td { @if r.run.outcome == "success" { (r.run.outcome) } @else { strong.error { (r.run.outcome) } } }
                            td { (duration(r.duration_ms)) }
                            td { (size(r.run.bytes)) }
                            td { (r.rpo_ms.map_or_else(|| "—".to_owned(), duration)) }
                            td {
                                @if let Some(rto) = r.rto_ms {
                                    (duration(rto))
                                    @if rto > o.rto_objective_ms { " " strong.error { "> 4 h" } }
                                } @else { "—" }
                            }
                            td { (r.run.backup_id.as_deref().unwrap_or("—")) }
                            td { (r.run.target.as_deref().unwrap_or("—")) }
                            td { (r.run.error.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

async fn render(
    state: &AppState,
    lang: Lang,
    auth: &Authorized,
    error: Option<&str>,
) -> Result<Markup, ApiError> {
    let overview = state.app.backup_overview().await?;
    Ok(layout::page(
        lang,
        auth,
        lang.t(Msg::Backups),
        body(lang, auth, &overview, error),
    ))
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
) -> Result<Markup, ApiError> {
    render(&state, Lang::from_headers(&headers), &auth, None).await
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// After a run the page shows it at the top of the list; a run that could not start (no
/// target, one already going) is explained on the page.
async fn after(
    state: &AppState,
    lang: Lang,
    auth: &Authorized,
    result: Result<zf_app::backup::RunningView, zf_app::AppError>,
) -> Response {
    match result {
        Ok(_) => Redirect::to("/backups").into_response(),
        Err(e @ zf_app::AppError::Conflict(_)) => {
            match render(state, lang, auth, Some(&e.to_string())).await {
                Ok(page) => (StatusCode::CONFLICT, page).into_response(),
                Err(e) => e.into_response(),
            }
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

pub async fn run(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Form(form): Form<CsrfForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(lang);
    }
    let result = state
        .app
        .backup_start(&auth.grant, &auth.meta, ManualRun::Backup)
        .await;
    after(&state, lang, &auth, result).await
}

pub async fn restore_test(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Form(form): Form<CsrfForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(lang);
    }
    let result = state
        .app
        .backup_start(&auth.grant, &auth.meta, ManualRun::RestoreTest)
        .await;
    after(&state, lang, &auth, result).await
}
