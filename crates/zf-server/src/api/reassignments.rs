//! Reassigning a moved user's clients (supervisors), and users' permission histories.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use zf_app::reassignments::{PermissionChange, ReassignmentView};
use zf_domain::Username;

use crate::extract::{Authorized, JsonBody};
use crate::routes::AppState;
use crate::ApiError;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StatusFilter {
    /// `pending`, `approved` or `rejected`; all if absent.
    pub status: Option<String>,
}

/// Requests to reassign the clients of users who changed role (supervisors), newest first.
#[utoipa::path(get, path = "/api/v1/reassignments", tag = "users", params(StatusFilter),
    responses((status = 200, body = Vec<ReassignmentView>)))]
pub async fn list(
    State(state): State<AppState>,
    _auth: Authorized,
    Query(filter): Query<StatusFilter>,
) -> Result<Json<Vec<ReassignmentView>>, ApiError> {
    Ok(Json(
        state.app.reassignments(filter.status.as_deref()).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// The accountant who takes the clients over; null rejects the request.
    pub to: Option<String>,
    /// Why, for the permission history (at most 200 characters).
    pub reason: String,
}

/// Approve a request (every client still assigned to the moved user goes to `to`) or reject
/// it. The decision records the approving supervisor.
#[utoipa::path(post, path = "/api/v1/reassignments/{id}", tag = "users", request_body = Decision,
    params(("id" = String, Path)),
    responses((status = 200, body = ReassignmentView), (status = 404), (status = 409), (status = 422)))]
pub async fn decide(
    State(state): State<AppState>,
    auth: Authorized,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Decision>,
) -> Result<Json<ReassignmentView>, ApiError> {
    Ok(Json(
        state
            .app
            .reassignment_decide(
                &auth.grant,
                &id,
                body.to.as_deref(),
                &body.reason,
                &auth.meta,
            )
            .await?,
    ))
}

/// Every permission change of a user: who, when, why, and who approved it (security
/// administrators).
#[utoipa::path(get, path = "/api/v1/users/{username}/history", tag = "users",
    params(("username" = String, Path)),
    responses((status = 200, body = Vec<PermissionChange>), (status = 404)))]
pub async fn history(
    State(state): State<AppState>,
    _auth: Authorized,
    Path(username): Path<String>,
) -> Result<Json<Vec<PermissionChange>>, ApiError> {
    let username = Username::parse(&username).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Json(state.app.permission_history(&username).await?))
}
