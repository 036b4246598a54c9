use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use zf_app::backup::{BackupOverview, RunView};

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
/// The run is answered whatever its outcome; 409 when no target is configured or a run is
/// already going.
#[utoipa::path(post, path = "/api/v1/backups", tag = "backups",
    responses((status = 201, body = RunView), (status = 409)))]
pub async fn run(
    State(state): State<AppState>,
    auth: Authorized,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    let run = state.app.backup_now(&auth.grant, &auth.meta).await?;
    Ok((StatusCode::CREATED, Json(run)))
}

/// Restore the newest backup into a scratch database and check it now (system administrator,
/// fresh second factor).
#[utoipa::path(post, path = "/api/v1/backups/restore-tests", tag = "backups",
    responses((status = 201, body = RunView), (status = 409)))]
pub async fn restore_test(
    State(state): State<AppState>,
    auth: Authorized,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    let run = state.app.restore_test_now(&auth.grant, &auth.meta).await?;
    Ok((StatusCode::CREATED, Json(run)))
}
