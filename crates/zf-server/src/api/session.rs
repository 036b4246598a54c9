use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zf_app::LoginOutcome;

use crate::extract::{Authorized, JsonBody};
use crate::routes::AppState;
use crate::{ApiError, SESSION_COOKIE};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[schema(value_type = String, format = Password)]
    pub current_password: SecretString,
    #[schema(value_type = String, format = Password)]
    pub new_password: SecretString,
}

#[derive(Serialize, ToSchema)]
pub struct SessionInfo {
    pub username: String,
    /// One of system_admin, security_admin, audit_admin, supervisor, accountant, auditor, sales.
    pub role: String,
    /// True until the one-time password is replaced; nothing else is allowed meanwhile.
    pub must_change_password: bool,
    /// Unix time in milliseconds after which the session is no longer valid.
    pub expires_at: i64,
}

/// The `Set-Cookie` value for a new session.
pub(crate) fn session_cookie(outcome: &LoginOutcome) -> String {
    let max_age = ((outcome.expires_at_ms - zf_app::now_ms()) / 1000).max(0);
    format!(
        "{SESSION_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}",
        outcome.token.expose()
    )
}

pub(crate) fn clear_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Sign in with a username and password.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = LoginRequest,
    responses((status = 200, body = SessionInfo, description = "Signed in; the session cookie is set"),
              (status = 401, description = "Wrong username or password")))]
pub async fn login(
    State(state): State<AppState>,
    auth: Authorized,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let outcome = state
        .app
        .login(&body.username, body.password, &auth.meta)
        .await?;
    let info = SessionInfo {
        username: outcome.principal.username.as_str().to_owned(),
        role: outcome.principal.role.as_str().to_owned(),
        must_change_password: outcome.principal.must_change_password,
        expires_at: outcome.expires_at_ms,
    };
    let mut headers = HeaderMap::new();
    if let Ok(v) = session_cookie(&outcome).parse() {
        headers.insert(header::SET_COOKIE, v);
    }
    Ok((headers, Json(info)).into_response())
}

/// Who is signed in on this session.
#[utoipa::path(get, path = "/api/v1/session", tag = "session",
    responses((status = 200, body = SessionInfo), (status = 401, description = "Not signed in")))]
pub async fn who_am_i(auth: Authorized) -> Result<Json<SessionInfo>, ApiError> {
    let s = auth.session()?;
    Ok(Json(SessionInfo {
        username: s.principal.username.as_str().to_owned(),
        role: s.principal.role.as_str().to_owned(),
        must_change_password: s.principal.must_change_password,
        expires_at: s.expires_at_ms,
    }))
}

/// Sign out: the session ends on the server, not only in the browser.
#[utoipa::path(delete, path = "/api/v1/session", tag = "session",
    responses((status = 204, description = "Signed out"), (status = 401, description = "Not signed in")))]
pub async fn logout(State(state): State<AppState>, auth: Authorized) -> Result<Response, ApiError> {
    state
        .app
        .logout(&auth.grant, auth.session()?, &auth.meta)
        .await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, clear_cookie())],
    )
        .into_response())
}

/// Replace the caller's own password; other sessions of the user end.
#[utoipa::path(put, path = "/api/v1/session/password", tag = "session", request_body = PasswordChange,
    responses((status = 204, description = "Password changed"),
              (status = 422, description = "Wrong current password or the new one breaks the policy")))]
pub async fn change_password(
    State(state): State<AppState>,
    auth: Authorized,
    JsonBody(body): JsonBody<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    state
        .app
        .change_own_password(
            &auth.grant,
            auth.session()?,
            body.current_password,
            body.new_password,
            &auth.meta,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
