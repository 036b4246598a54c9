//! Security keys and passkeys (WebAuthn): registering and managing one's own, a security
//! administrator's view of a user's, and using one to sign in, finish a sign-in or step up.
//!
//! Each ceremony is two calls: `…/options` answers the `publicKey` options to pass to
//! `navigator.credentials.create` or `.get` (binary members as base64url), and the second call
//! takes the credential the browser returned, as `PublicKeyCredential.toJSON()` gives it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use zf_app::identity::{KeyId, KeyKind, KeyName, SecurityKeyView};

use super::session::new_session;
use crate::extract::{Authorized, JsonBody, QueryParams};
use crate::routes::AppState;
use crate::ApiError;

/// What to register: a name to tell it apart, and whether it is a passkey (signs in alone,
/// verifying its user) or a security key (a second factor after the password).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterOptionsRequest {
    pub name: String,
    pub kind: KeyKind,
}

/// The browser's answer: the `PublicKeyCredential` as JSON (`toJSON()`), binary members as
/// base64url.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialAnswer {
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

impl CredentialAnswer {
    fn bytes(&self) -> Result<Vec<u8>, ApiError> {
        if !self.credential.is_object() {
            return Err(ApiError::bad_request(
                "credential must be the PublicKeyCredential as a JSON object",
            ));
        }
        serde_json::to_vec(&self.credential)
            .map_err(|_| ApiError::bad_request("credential is not JSON"))
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRename {
    pub name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemovalReason {
    pub reason: String,
}

/// `{"publicKey": {...}}` for `navigator.credentials.create/get`.
#[derive(serde::Serialize, ToSchema)]
#[schema(value_type = Object)]
pub struct CeremonyOptions(serde_json::Value);

/// One's own security keys and passkeys.
#[utoipa::path(get, path = "/api/v1/mfa/security-keys", tag = "mfa",
    responses((status = 200, body = [SecurityKeyView])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized,
) -> Result<Json<Vec<SecurityKeyView>>, ApiError> {
    Ok(Json(state.app.security_keys(auth.session()?).await?))
}

/// Start registering a security key or passkey. With a second factor already set up, it must
/// have been verified within the step-up window (403 `mfa_required` otherwise).
#[utoipa::path(post, path = "/api/v1/mfa/security-keys/options", tag = "mfa",
    request_body = RegisterOptionsRequest,
    responses((status = 200, body = CeremonyOptions), (status = 403, description = "Step-up required")))]
pub async fn register_options(
    State(state): State<AppState>,
    auth: Authorized,
    JsonBody(body): JsonBody<RegisterOptionsRequest>,
) -> Result<Json<CeremonyOptions>, ApiError> {
    let name = KeyName::parse(&body.name)?;
    let options = state
        .app
        .security_key_register_begin(auth.session()?, body.kind, &name)
        .await?;
    Ok(Json(CeremonyOptions(options)))
}

/// Finish registering with the credential the browser made. The key is then accepted as a
/// second factor (and a passkey for passwordless sign-in); the session continues under a new
/// id (a new cookie).
#[utoipa::path(post, path = "/api/v1/mfa/security-keys", tag = "mfa",
    request_body = CredentialAnswer,
    responses((status = 201, body = SecurityKeyView, description = "Registered; the renewed session cookie is set"),
              (status = 409, description = "The key is registered already"),
              (status = 422, description = "Refused: origin, RP ID, challenge or signature wrong, or no registration waiting")))]
pub async fn register(
    State(state): State<AppState>,
    auth: Authorized,
    JsonBody(body): JsonBody<CredentialAnswer>,
) -> Result<Response, ApiError> {
    use axum::response::IntoResponse;
    let (outcome, view) = state
        .app
        .security_key_register_finish(&auth.grant, auth.session()?, &body.bytes()?, &auth.meta)
        .await?;
    let mut response = (StatusCode::CREATED, Json(view)).into_response();
    if let Ok(v) = super::session::session_cookie(&outcome).parse() {
        response
            .headers_mut()
            .insert(axum::http::header::SET_COOKIE, v);
    }
    Ok(response)
}

/// Rename one of one's own keys.
#[utoipa::path(patch, path = "/api/v1/mfa/security-keys/{id}", tag = "mfa",
    params(("id" = String, Path, description = "The credential id, base64url")),
    request_body = KeyRename, responses((status = 204), (status = 404)))]
pub async fn rename(
    State(state): State<AppState>,
    auth: Authorized,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<KeyRename>,
) -> Result<StatusCode, ApiError> {
    let id = KeyId::parse(&id)?;
    let name = KeyName::parse(&body.name)?;
    state
        .app
        .security_key_rename(&auth.grant, auth.session()?, &id, &name, &auth.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove one of one's own keys (with a fresh second factor).
#[utoipa::path(delete, path = "/api/v1/mfa/security-keys/{id}", tag = "mfa",
    params(("id" = String, Path, description = "The credential id, base64url")),
    responses((status = 204), (status = 403, description = "Step-up required"), (status = 404)))]
pub async fn remove(
    State(state): State<AppState>,
    auth: Authorized,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = KeyId::parse(&id)?;
    state
        .app
        .security_key_remove(&auth.grant, auth.session()?, &id, &auth.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's security keys (security administrators).
#[utoipa::path(get, path = "/api/v1/users/{username}/security-keys", tag = "users",
    params(("username" = String, Path)),
    responses((status = 200, body = [SecurityKeyView]), (status = 404)))]
pub async fn list_of_user(
    State(state): State<AppState>,
    auth: Authorized,
    Path(name): Path<String>,
) -> Result<Json<Vec<SecurityKeyView>>, ApiError> {
    Ok(Json(
        state.app.user_security_keys(&auth.grant, &name).await?,
    ))
}

/// Remove a user's key, lost or stolen (security administrators, with a fresh second factor
/// and a reason).
#[utoipa::path(delete, path = "/api/v1/users/{username}/security-keys/{id}", tag = "users",
    params(("username" = String, Path), ("id" = String, Path), ("reason" = String, Query)),
    responses((status = 204), (status = 404)))]
pub async fn remove_of_user(
    State(state): State<AppState>,
    auth: Authorized,
    Path((name, id)): Path<(String, String)>,
    QueryParams(q): QueryParams<RemovalReason>,
) -> Result<StatusCode, ApiError> {
    let id = KeyId::parse(&id)?;
    state
        .app
        .user_security_key_remove(&auth.grant, &name, &id, &q.reason, &auth.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Options to finish a waiting sign-in with a security key.
#[utoipa::path(post, path = "/api/v1/session/second-factor/security-key/options", tag = "session",
    responses((status = 200, body = CeremonyOptions), (status = 422, description = "No key registered")))]
pub async fn second_factor_options(
    State(state): State<AppState>,
    auth: Authorized,
) -> Result<Json<CeremonyOptions>, ApiError> {
    let session = auth.session()?;
    if !session
        .principal
        .authentication
        .eq(&zf_policy::Authentication::SecondFactorPending)
    {
        return Err(ApiError::from(zf_app::AppError::Invalid(
            "no sign-in is waiting for a second factor on this session".into(),
        )));
    }
    Ok(Json(CeremonyOptions(
        state.app.security_key_assertion_begin(session).await?,
    )))
}

/// Finish a waiting sign-in with a security key's assertion. The session starts under a new
/// id; a refused assertion counts towards the account's lock.
#[utoipa::path(post, path = "/api/v1/session/second-factor/security-key", tag = "session",
    request_body = CredentialAnswer,
    responses((status = 200, body = super::session::SessionInfo), (status = 401, description = "Refused")))]
pub async fn second_factor(
    State(state): State<AppState>,
    auth: Authorized,
    JsonBody(body): JsonBody<CredentialAnswer>,
) -> Result<Response, ApiError> {
    let outcome = state
        .app
        .complete_sign_in_with_key(auth.session()?, &body.bytes()?, &auth.meta)
        .await?;
    Ok(new_session(&outcome))
}

/// Options to step up with a security key.
#[utoipa::path(post, path = "/api/v1/session/step-up/security-key/options", tag = "session",
    responses((status = 200, body = CeremonyOptions), (status = 422, description = "No key registered")))]
pub async fn step_up_options(
    State(state): State<AppState>,
    auth: Authorized,
) -> Result<Json<CeremonyOptions>, ApiError> {
    Ok(Json(CeremonyOptions(
        state
            .app
            .security_key_assertion_begin(auth.session()?)
            .await?,
    )))
}

/// Step up with a security key's assertion: critical operations are allowed for the next few
/// minutes; the session continues under a new id.
#[utoipa::path(post, path = "/api/v1/session/step-up/security-key", tag = "session",
    request_body = CredentialAnswer,
    responses((status = 200, body = super::session::SessionInfo), (status = 401, description = "Refused")))]
pub async fn step_up(
    State(state): State<AppState>,
    auth: Authorized,
    JsonBody(body): JsonBody<CredentialAnswer>,
) -> Result<Response, ApiError> {
    let outcome = state
        .app
        .step_up_with_key(&auth.grant, auth.session()?, &body.bytes()?, &auth.meta)
        .await?;
    Ok(new_session(&outcome))
}

/// Options for a passwordless sign-in with a passkey.
#[utoipa::path(post, path = "/api/v1/session/passkey/options", tag = "session",
    responses((status = 200, body = CeremonyOptions),
              (status = 429, description = "Too many passkey sign-ins begun from this address this minute")))]
pub async fn passkey_options(
    State(state): State<AppState>,
    auth: Authorized,
) -> Result<Json<CeremonyOptions>, ApiError> {
    Ok(Json(CeremonyOptions(
        state.app.passkey_begin(&auth.meta).await?,
    )))
}

/// Sign in with a passkey alone: its user verification (PIN, fingerprint) stands in for the
/// password, so the session has a fresh second factor. Locked or disabled accounts are refused
/// like a wrong password.
#[utoipa::path(post, path = "/api/v1/session/passkey", tag = "session",
    request_body = CredentialAnswer,
    responses((status = 200, body = super::session::SessionInfo, description = "Signed in; the session cookie is set"),
              (status = 401, description = "Refused")))]
pub async fn passkey(
    State(state): State<AppState>,
    auth: Authorized,
    JsonBody(body): JsonBody<CredentialAnswer>,
) -> Result<Response, ApiError> {
    let outcome = state
        .app
        .passkey_sign_in(&body.bytes()?, &auth.meta)
        .await?;
    Ok(new_session(&outcome))
}
