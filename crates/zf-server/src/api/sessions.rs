//! One's own sessions, and the security administrator's "end every session of this user".

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use zf_app::identity::SessionView;
use zf_domain::Username;

use super::session::clear_cookie;
use crate::extract::{Authorized, JsonBody};
use crate::routes::AppState;
use crate::ApiError;

/// One's own live sessions, newest first.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "session",
    responses((status = 200, body = [SessionView])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    Ok(Json(state.app.own_sessions(auth.session()?).await?))
}

/// End one of one's own sessions (its `id` from the list). Ending the current one signs out.
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "session",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404)))]
pub async fn revoke(
    State(state): State<AppState>,
    auth: Authorized,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let session = auth.session()?;
    let current = id == session.session_ref;
    state
        .app
        .revoke_own_session(&auth.grant, session, &id, &auth.meta)
        .await?;
    Ok(if current {
        (
            StatusCode::NO_CONTENT,
            [(header::SET_COOKIE, clear_cookie())],
        )
            .into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeAll {
    /// Why, for the audit log (at most 200 characters).
    pub reason: String,
}

/// End every session of a user at once (security administrators); they must sign in again.
#[utoipa::path(post, path = "/api/v1/users/{username}/sessions/revoke", tag = "users",
    request_body = RevokeAll, params(("username" = String, Path)),
    responses((status = 204), (status = 404), (status = 422, description = "No reason given")))]
pub async fn revoke_all(
    State(state): State<AppState>,
    auth: Authorized,
    Path(username): Path<String>,
    JsonBody(body): JsonBody<RevokeAll>,
) -> Result<StatusCode, ApiError> {
    let username = Username::parse(&username).map_err(|e| ApiError::bad_request(e.to_string()))?;
    state
        .app
        .revoke_user_sessions(&auth.grant, &username, &body.reason, &auth.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
