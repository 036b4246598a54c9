use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zf_app::identity::{CodeSent, SecondFactorMethod};
use zf_app::LoginOutcome;
use zf_policy::{Authentication, Principal};

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

/// A TOTP code (6 digits), a recovery code, or the one-time code sent by e-mail or SMS.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactor {
    #[schema(value_type = String, format = Password)]
    pub code: SecretString,
    /// Which factor `code` is (`totp`, `recovery_code`, `email`, `sms`). Absent: the
    /// authenticator (or a recovery code) if the user has one, otherwise the code last sent.
    #[serde(default)]
    pub method: Option<SecondFactorMethod>,
}

/// Which channel to send a one-time code over.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// `email` or `sms`.
    pub method: SecondFactorMethod,
}

#[derive(Serialize, ToSchema)]
pub struct SessionInfo {
    pub username: String,
    /// One of system_admin, security_admin, audit_admin, supervisor, accountant, auditor, sales.
    pub role: String,
    /// True until the one-time password is replaced; nothing else is allowed meanwhile.
    pub must_change_password: bool,
    /// The password was right; the sign-in is finished by POSTing the second factor to
    /// /api/v1/session/second-factor, and nothing else is allowed meanwhile.
    pub second_factor_required: bool,
    /// The role requires an authenticator the user has not set up (POST /api/v1/mfa/totp);
    /// nothing else is allowed meanwhile.
    pub mfa_enrolment_required: bool,
    /// Whether a second factor verified recently enough for critical operations.
    pub second_factor_fresh: bool,
    /// While `second_factor_required`: the methods this user may finish with (`totp`,
    /// `recovery_code`, `email`, `sms`, `security_key`); a code by e-mail or SMS is first asked
    /// for at POST /api/v1/session/second-factor/code, a security key answers at
    /// /api/v1/session/second-factor/security-key.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub second_factor_methods: Vec<&'static str>,
    /// Unix time in milliseconds after which the session is no longer valid.
    pub expires_at: i64,
}

impl SessionInfo {
    pub(crate) fn new(p: &Principal, expires_at: i64) -> Self {
        SessionInfo {
            username: p.username.as_str().to_owned(),
            role: p.role_name().to_owned(),
            must_change_password: p.must_change_password,
            second_factor_required: p.authentication == Authentication::SecondFactorPending,
            mfa_enrolment_required: p.authentication
                == (Authentication::PasswordOnly {
                    enrolment_required: true,
                }),
            second_factor_fresh: p.authentication == Authentication::MultiFactor { fresh: true },
            second_factor_methods: if p.authentication == Authentication::SecondFactorPending {
                p.factors.methods()
            } else {
                Vec::new()
            },
            expires_at,
        }
    }
}

/// The session cookie for `outcome` with its description, as one response.
pub(crate) fn new_session(outcome: &LoginOutcome) -> Response {
    let info = SessionInfo::new(&outcome.principal, outcome.expires_at_ms);
    let mut headers = HeaderMap::new();
    if let Ok(v) = session_cookie(outcome).parse() {
        headers.insert(header::SET_COOKIE, v);
    }
    (headers, Json(info)).into_response()
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

/// Sign in with a username and password. With an authenticator set up, the answer says
/// `second_factor_required` and the cookie opens only the second step.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = LoginRequest,
    responses((status = 200, body = SessionInfo, description = "Signed in, or waiting for the second factor; the session cookie is set"),
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
    if !outcome.second_factor_pending() {
        return Ok(new_session(&outcome));
    }
    let p = &outcome.principal;
    let info = SessionInfo::new(p, outcome.expires_at_ms);
    let mut headers = HeaderMap::new();
    if let Ok(v) = session_cookie(&outcome).parse() {
        headers.insert(header::SET_COOKIE, v);
    }
    Ok((headers, Json(info)).into_response())
}

/// Finish signing in with the second factor: a TOTP code or a recovery code. The session
/// starts under a new id (a new cookie); wrong codes count towards the account's lock.
#[utoipa::path(post, path = "/api/v1/session/second-factor", tag = "session", request_body = SecondFactor,
    responses((status = 200, body = SessionInfo, description = "Signed in; the new session cookie is set"),
              (status = 401, description = "Wrong or reused code, or no sign-in waiting")))]
pub async fn second_factor(
    State(state): State<AppState>,
    auth: Authorized,
    JsonBody(body): JsonBody<SecondFactor>,
) -> Result<Response, ApiError> {
    let outcome = state
        .app
        .complete_sign_in_with(auth.session()?, body.method, &body.code, &auth.meta)
        .await?;
    Ok(new_session(&outcome))
}

/// Send a one-time code by e-mail or SMS to finish signing in: to the address the user
/// registered and confirmed, valid for a few minutes, at most one a minute.
#[utoipa::path(post, path = "/api/v1/session/second-factor/code", tag = "session", request_body = CodeRequest,
    responses((status = 202, body = CodeSent, description = "Sent; POST it to /api/v1/session/second-factor"),
              (status = 422, description = "No confirmed address for that method, or no sign-in waiting"),
              (status = 429, description = "A code was sent too recently"),
              (status = 503, description = "The code could not be delivered")))]
pub async fn send_sign_in_code(
    State(state): State<AppState>,
    auth: Authorized,
    JsonBody(body): JsonBody<CodeRequest>,
) -> Result<(StatusCode, Json<CodeSent>), ApiError> {
    let session = auth.session()?;
    if session.principal.authentication != Authentication::SecondFactorPending {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "no sign-in is waiting for a second factor on this session",
        ));
    }
    let sent = state
        .app
        .second_factor_code_send(session, body.method, &auth.meta)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(sent)))
}

/// Send a one-time code by e-mail or SMS for a step-up (the `mfa_required` challenge).
#[utoipa::path(post, path = "/api/v1/session/step-up/code", tag = "session", request_body = CodeRequest,
    responses((status = 202, body = CodeSent, description = "Sent; POST it to /api/v1/session/step-up"),
              (status = 422, description = "No confirmed address for that method"),
              (status = 429, description = "A code was sent too recently"),
              (status = 503, description = "The code could not be delivered")))]
pub async fn send_step_up_code(
    State(state): State<AppState>,
    auth: Authorized,
    JsonBody(body): JsonBody<CodeRequest>,
) -> Result<(StatusCode, Json<CodeSent>), ApiError> {
    let sent = state
        .app
        .second_factor_code_send(auth.session()?, body.method, &auth.meta)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(sent)))
}

/// Verify the second factor again, so critical operations (the `mfa_required` challenge) are
/// allowed for the next few minutes. The session continues under a new id (a new cookie).
#[utoipa::path(post, path = "/api/v1/session/step-up", tag = "session", request_body = SecondFactor,
    responses((status = 200, body = SessionInfo, description = "Verified; the renewed session cookie is set"),
              (status = 401, description = "Wrong or reused code"),
              (status = 422, description = "No authenticator set up")))]
pub async fn step_up(
    State(state): State<AppState>,
    auth: Authorized,
    JsonBody(body): JsonBody<SecondFactor>,
) -> Result<Response, ApiError> {
    let outcome = state
        .app
        .step_up_with(
            &auth.grant,
            auth.session()?,
            body.method,
            &body.code,
            &auth.meta,
        )
        .await?;
    Ok(new_session(&outcome))
}

/// Who is signed in on this session.
#[utoipa::path(get, path = "/api/v1/session", tag = "session",
    responses((status = 200, body = SessionInfo), (status = 401, description = "Not signed in")))]
pub async fn who_am_i(auth: Authorized) -> Result<Json<SessionInfo>, ApiError> {
    let s = auth.session()?;
    Ok(Json(SessionInfo::new(&s.principal, s.expires_at_ms)))
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
