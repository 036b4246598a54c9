//! One's own authenticator: its state, setting one up, confirming it with a first code.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use zf_app::identity::{CodeFactorView, CodeSent, MfaStatus};
use zf_store::OtpChannel;

use super::session::{new_session, session_cookie, SecondFactor, SessionInfo};
use crate::extract::{Authorized, JsonBody};
use crate::routes::AppState;
use crate::ApiError;
use serde::Deserialize;

/// A new authenticator's secret: scan `otpauth_uri` as a QR code or type `secret` into the
/// app, then confirm with the code it shows.
#[derive(Serialize, ToSchema)]
pub struct TotpSetup {
    /// Base32 (RFC 4648), for typing by hand.
    pub secret: String,
    pub otpauth_uri: String,
}

/// The recovery codes of a confirmed authenticator, shown this once: each signs in (or steps
/// up) once in place of a TOTP code.
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

/// One's own second factor: set up or not, required or not, recovery codes left.
#[utoipa::path(get, path = "/api/v1/mfa", tag = "mfa",
    responses((status = 200, body = MfaStatus)))]
pub async fn status(
    State(state): State<AppState>,
    auth: Authorized,
) -> Result<Json<MfaStatus>, ApiError> {
    Ok(Json(state.app.mfa_status(auth.session()?).await?))
}

/// Start setting up an authenticator (TOTP: SHA-1, 6 digits, 30 s), replacing one started and
/// not confirmed.
#[utoipa::path(post, path = "/api/v1/mfa/totp", tag = "mfa",
    responses((status = 201, body = TotpSetup),
              (status = 409, description = "An authenticator is already set up")))]
pub async fn begin(
    State(state): State<AppState>,
    auth: Authorized,
) -> Result<(StatusCode, Json<TotpSetup>), ApiError> {
    let e = state
        .app
        .totp_begin(&auth.grant, auth.session()?, &auth.meta)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TotpSetup {
            secret: e.secret.to_string(),
            otpauth_uri: e.uri.to_string(),
        }),
    ))
}

/// Confirm the authenticator with the code it shows now. It is then asked for at every
/// sign-in; the session continues under a new id (a new cookie).
#[utoipa::path(post, path = "/api/v1/mfa/totp/confirm", tag = "mfa", request_body = SecondFactor,
    responses((status = 200, body = RecoveryCodes, description = "Active; the renewed session cookie is set"),
              (status = 422, description = "The code does not match, or nothing to confirm")))]
pub async fn confirm(
    State(state): State<AppState>,
    auth: Authorized,
    JsonBody(body): JsonBody<SecondFactor>,
) -> Result<Response, ApiError> {
    let activated = state
        .app
        .totp_confirm(&auth.grant, auth.session()?, &body.code, &auth.meta)
        .await?;
    let mut headers = HeaderMap::new();
    if let Ok(v) = session_cookie(&activated.session).parse() {
        headers.insert(header::SET_COOKIE, v);
    }
    let codes = RecoveryCodes {
        recovery_codes: activated
            .recovery_codes
            .iter()
            .map(|c| c.to_string())
            .collect(),
    };
    Ok((headers, Json(codes)).into_response())
}

/// Replace one's recovery codes with a new set, shown this once; every code of the old set,
/// used or not, stops working. Critical: needs a second factor verified within the step-up
/// window.
#[utoipa::path(post, path = "/api/v1/mfa/recovery-codes", tag = "mfa",
    responses((status = 200, body = RecoveryCodes),
              (status = 403, description = "`mfa_required`: verify a second factor first"),
              (status = 409, description = "No authenticator is set up")))]
pub async fn regenerate_recovery(
    State(state): State<AppState>,
    auth: Authorized,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let codes = state
        .app
        .recovery_codes_regenerate(&auth.grant, auth.session()?, &auth.meta)
        .await?;
    Ok(Json(RecoveryCodes {
        recovery_codes: codes.iter().map(|c| c.to_string()).collect(),
    }))
}

/// An address to receive one-time codes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeFactorRequest {
    /// `email` or `sms`.
    pub channel: String,
    /// An e-mail address, or a mainland mobile number (`13812345678`, `+86 138 1234 5678`).
    pub address: String,
}

/// One's registered addresses for one-time codes, masked.
#[utoipa::path(get, path = "/api/v1/mfa/codes", tag = "mfa",
    responses((status = 200, body = Vec<CodeFactorView>)))]
pub async fn code_factors(
    State(state): State<AppState>,
    auth: Authorized,
) -> Result<Json<Vec<CodeFactorView>>, ApiError> {
    Ok(Json(state.app.code_factors(auth.session()?).await?))
}

/// Register (or replace) the address one-time codes go to, and send it a first code. Replacing
/// it, or adding it beside another second factor, needs a fresh second factor (step-up).
#[utoipa::path(post, path = "/api/v1/mfa/code", tag = "mfa", request_body = CodeFactorRequest,
    responses((status = 202, body = CodeSent, description = "A confirmation code was sent"),
              (status = 400, description = "Unknown channel"),
              (status = 403, description = "A fresh second factor is needed first (mfa_required)"),
              (status = 422, description = "Not a valid address, codes not accepted for the role, or no sender"),
              (status = 429, description = "A code was sent too recently"),
              (status = 503, description = "The code could not be delivered")))]
pub async fn code_begin(
    State(state): State<AppState>,
    auth: Authorized,
    JsonBody(body): JsonBody<CodeFactorRequest>,
) -> Result<(StatusCode, Json<CodeSent>), ApiError> {
    let channel = OtpChannel::parse(&body.channel)
        .ok_or_else(|| ApiError::bad_request("channel must be \"email\" or \"sms\""))?;
    let sent = state
        .app
        .code_factor_begin(
            &auth.grant,
            auth.session()?,
            channel,
            &body.address,
            &auth.meta,
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(sent)))
}

/// Confirm the address with the code sent to it. From then on a code sent there completes a
/// sign-in or a step-up; the session continues under a new id (a new cookie).
#[utoipa::path(post, path = "/api/v1/mfa/code/confirm", tag = "mfa", request_body = SecondFactor,
    responses((status = 200, body = SessionInfo, description = "Confirmed; the renewed session cookie is set"),
              (status = 422, description = "Wrong, expired or used code")))]
pub async fn code_confirm(
    State(state): State<AppState>,
    auth: Authorized,
    JsonBody(body): JsonBody<SecondFactor>,
) -> Result<Response, ApiError> {
    let outcome = state
        .app
        .code_factor_confirm(&auth.grant, auth.session()?, &body.code, &auth.meta)
        .await?;
    Ok(new_session(&outcome))
}
