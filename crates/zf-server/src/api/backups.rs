use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use zf_app::backup::{BackupOverview, ManualRun, RunningView};

use crate::extract::Authorized;
use crate::routes::AppState;
use crate::ApiError;

/// Backups, restore tests and drills, newest first, with what is overdue (system and security
/// administrators).
#[utoipa::path(get, path = "/api/v1/backups", tag = "backups",
    responses((status = 200, body = BackupOverview)))]
pub async fn overview(
    State(state): State<AppState>,
    _auth: Authorized,
) -> Result<Json<BackupOverview>, ApiError> {
    Ok(Json(state.app.backup_overview().await?))
}

/// Take a backup now and copy it to every target (system administrator, fresh second factor).
/// The run goes on in the background and joins `GET /api/v1/backups` when it ends, whatever
/// its outcome (`running` shows it meanwhile); 409 when no target is configured or a backup or
/// restore test is already running.
#[utoipa::path(post, path = "/api/v1/backups", tag = "backups",
    responses((status = 202, body = RunningView), (status = 409)))]
pub async fn run(
    State(state): State<AppState>,
    auth: Authorized,
) -> Result<(StatusCode, Json<RunningView>), ApiError> {
    let run = state
        .app
        .backup_start(&auth.grant, &auth.meta, ManualRun::Backup)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(run)))
}

/// Restore the newest backup into a scratch database and check it now (system administrator,
/// fresh second factor), in the background like a backup.
#[utoipa::path(post, path = "/api/v1/backups/restore-tests", tag = "backups",
    responses((status = 202, body = RunningView), (status = 409)))]
pub async fn restore_test(
    State(state): State<AppState>,
    auth: Authorized,
) -> Result<(StatusCode, Json<RunningView>), ApiError> {
    let run = state
        .app
        .backup_start(&auth.grant, &auth.meta, ManualRun::RestoreTest)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(run)))
}
