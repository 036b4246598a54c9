//! The keyring (security administrators): its status, KEK rotation, re-encryption of the data
//! under new data keys, and blind-index key rotation.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use zf_app::data_keys::KeyJobView;
use zf_app::keyring::{KeyStatus, RotationReport};

use crate::extract::Authorized;
use crate::routes::AppState;
use crate::ApiError;

/// How long a rotation started over the API waits for other nodes to read the new version.
const GRACE: Duration = Duration::from_secs(3);

/// KEK versions with their state, age and how many keys each wraps, and the rotation policy.
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys",
    responses((status = 200, body = KeyStatus)))]
pub async fn status(
    State(state): State<AppState>,
    _auth: Authorized,
) -> Result<Json<KeyStatus>, ApiError> {
    Ok(Json(state.app.key_status().await?))
}

/// Rotate the KEK: a new version, every wrapped key rewrapped under it (data untouched), the
/// older versions retired once nothing refers to them. A critical operation.
#[utoipa::path(post, path = "/api/v1/keys/rotate", tag = "keys",
    responses((status = 200, body = RotationReport)))]
pub async fn rotate(
    State(state): State<AppState>,
    auth: Authorized,
) -> Result<Json<RotationReport>, ApiError> {
    Ok(Json(
        state
            .app
            .key_rotate_by(&auth.grant, &auth.meta, GRACE)
            .await?,
    ))
}

/// Start re-encrypting all data: a new data key for every client and lead, every value sealed
/// again under it, in the background while the server keeps serving. The job survives a crash
/// or restart and carries on from its last batch. A critical operation; 409 while one runs.
#[utoipa::path(post, path = "/api/v1/keys/reencrypt", tag = "keys",
    responses((status = 202, body = KeyJobView), (status = 409, description = "a re-encryption is running")))]
pub async fn reencrypt(
    State(state): State<AppState>,
    auth: Authorized,
) -> Result<(StatusCode, Json<KeyJobView>), ApiError> {
    let job = state
        .app
        .reencrypt_start_by(&auth.grant, &auth.meta)
        .await?;
    state.app.key_job_spawn();
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// Rotate the blind-index key: a new key computes every new search token at once, and every
/// stored token (clients' ID numbers, contacts' mobiles and ID numbers, leads' mobiles) is
/// computed again under it in the background while searches keep finding rows under either key.
/// The previous key is then deleted (blind-index key v1 is kept: MFA recovery-code and
/// one-time-code hashes stay under it). Progress through `GET /api/v1/keys/job`. A critical
/// operation; 409 while a key job runs.
#[utoipa::path(post, path = "/api/v1/keys/blind-index", tag = "keys",
    responses((status = 202, body = KeyJobView), (status = 409, description = "a key job is running")))]
pub async fn blind_index(
    State(state): State<AppState>,
    auth: Authorized,
) -> Result<(StatusCode, Json<KeyJobView>), ApiError> {
    let job = state
        .app
        .blind_index_rotate_start_by(&auth.grant, &auth.meta)
        .await?;
    state.app.key_job_spawn();
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// The running key job, else the latest one: its phase, holders given new keys and values
/// sealed again so far. 404 if no job ever ran.
#[utoipa::path(get, path = "/api/v1/keys/job", tag = "keys",
    responses((status = 200, body = KeyJobView), (status = 404)))]
pub async fn job(
    State(state): State<AppState>,
    _auth: Authorized,
) -> Result<Json<KeyJobView>, ApiError> {
    Ok(Json(
        state
            .app
            .key_job()
            .await?
            .ok_or(zf_app::AppError::NotFound)?,
    ))
}
