use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use zf_domain::Username;
use zf_policy::Role;

use crate::extract::{Authorized, JsonBody};
use crate::routes::AppState;
use crate::ApiError;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    /// supervisor, accountant, auditor or sales (administrator roles change only on the server).
    #[schema(value_type = String)]
    pub role: Role,
    /// Why, for the permission history (at most 200 characters).
    pub reason: String,
}

/// Move a user to another role (job transfer; security administrators). Every session the
/// user has open ends; the new role starts with their next sign-in.
#[utoipa::path(put, path = "/api/v1/users/{username}/role", tag = "users", request_body = RoleChange,
    params(("username" = String, Path)),
    responses((status = 204), (status = 404), (status = 422, description = "Refused by separation of duties")))]
pub async fn change_role(
    State(state): State<AppState>,
    auth: Authorized,
    Path(username): Path<String>,
    JsonBody(body): JsonBody<RoleChange>,
) -> Result<StatusCode, ApiError> {
    let username = Username::parse(&username).map_err(|e| ApiError::bad_request(e.to_string()))?;
    state
        .app
        .change_role(&auth.grant, &username, body.role, &body.reason, &auth.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a user may do, and why (security administrators).
#[utoipa::path(get, path = "/api/v1/users/{username}/permissions", tag = "users",
    params(("username" = String, Path)),
    responses((status = 200, body = zf_app::identity::EffectivePermissions), (status = 404)))]
pub async fn permissions(
    State(state): State<AppState>,
    _auth: Authorized,
    Path(username): Path<String>,
) -> Result<axum::Json<zf_app::identity::EffectivePermissions>, ApiError> {
    let username = Username::parse(&username).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(axum::Json(
        state.app.effective_permissions(&username).await?,
    ))
}
