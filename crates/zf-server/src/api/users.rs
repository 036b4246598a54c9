use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use zf_domain::Username;

use crate::extract::{Authorized, JsonBody};
use crate::routes::AppState;
use crate::ApiError;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    /// supervisor, accountant, auditor, sales, or the name of a custom role (administrator
    /// roles change only on the server).
    pub role: String,
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
        .change_role(&auth.grant, &username, &body.role, &body.reason, &auth.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamChange {
    /// The team's name, as clients are assigned to it; null or empty for no team.
    pub team: Option<String>,
    /// Why, for the permission history (at most 200 characters).
    pub reason: String,
}

/// Move a user to another team (job transfer; security administrators). Team-scoped roles
/// reach the new team's clients, and no longer the old team's, from the user's next request.
#[utoipa::path(put, path = "/api/v1/users/{username}/team", tag = "users", request_body = TeamChange,
    params(("username" = String, Path)),
    responses((status = 204), (status = 404), (status = 422)))]
pub async fn change_team(
    State(state): State<AppState>,
    auth: Authorized,
    Path(username): Path<String>,
    JsonBody(body): JsonBody<TeamChange>,
) -> Result<StatusCode, ApiError> {
    let username = Username::parse(&username).map_err(|e| ApiError::bad_request(e.to_string()))?;
    state
        .app
        .change_team(
            &auth.grant,
            &username,
            body.team.as_deref(),
            &body.reason,
            &auth.meta,
        )
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
