//! The keyring (security administrators): its status, and KEK rotation.

use std::time::Duration;

use axum::extract::State;
use axum::Json;
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
