//! The role editor's API (security administrators): the whole policy, and custom roles.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use zf_app::identity::{CustomRoleInput, CustomRoleView, RoleCatalog};

use crate::extract::{Authorized, JsonBody};
use crate::routes::AppState;
use crate::ApiError;

/// Every role — built in and custom — with its permissions, client scope and field visibility,
/// and the permissions custom roles are composed from.
#[utoipa::path(get, path = "/api/v1/roles", tag = "roles",
    responses((status = 200, body = RoleCatalog)))]
pub async fn list(
    State(state): State<AppState>,
    _auth: Authorized,
) -> Result<Json<RoleCatalog>, ApiError> {
    Ok(Json(state.app.role_catalog().await?))
}

/// One custom role.
#[utoipa::path(get, path = "/api/v1/roles/{name}", tag = "roles",
    params(("name" = String, Path)),
    responses((status = 200, body = CustomRoleView), (status = 404)))]
pub async fn read(
    State(state): State<AppState>,
    _auth: Authorized,
    Path(name): Path<String>,
) -> Result<Json<CustomRoleView>, ApiError> {
    Ok(Json(state.app.custom_role(&name).await?))
}

/// Create a custom role, or change what one grants (send the `version` you edit). Its holders
/// get the new definition on their next request. A custom role holds client permissions only
/// and builds on a client role; anything else is refused with the reason (三员分立).
#[utoipa::path(put, path = "/api/v1/roles/{name}", tag = "roles", request_body = CustomRoleInput,
    params(("name" = String, Path)),
    responses((status = 200, body = CustomRoleView), (status = 409, description = "Edited meanwhile, or the name is taken"),
        (status = 422, description = "Not a role a custom role may be")))]
pub async fn save(
    State(state): State<AppState>,
    auth: Authorized,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<CustomRoleInput>,
) -> Result<Json<CustomRoleView>, ApiError> {
    Ok(Json(
        state
            .app
            .custom_role_save(&auth.grant, &name, &body, &auth.meta)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Why, for the permission history (at most 200 characters).
    pub reason: String,
}

/// Delete a custom role nobody holds (move its holders first).
#[utoipa::path(delete, path = "/api/v1/roles/{name}", tag = "roles", request_body = Reason,
    params(("name" = String, Path)),
    responses((status = 204), (status = 404), (status = 409, description = "Someone holds the role")))]
pub async fn delete(
    State(state): State<AppState>,
    auth: Authorized,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Reason>,
) -> Result<StatusCode, ApiError> {
    state
        .app
        .custom_role_delete(&auth.grant, &name, &body.reason, &auth.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
