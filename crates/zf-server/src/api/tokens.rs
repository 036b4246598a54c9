//! API tokens: one's own (issue, list, revoke) and, for the security administrator, anyone's
//! (list, revoke). A token is sent as `Authorization: Bearer zft_…`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use zf_app::identity::{IssuedToken, NewToken, TokenView};
use zf_domain::{TokenId, Username};

use crate::extract::{Authorized, JsonBody};
use crate::routes::AppState;
use crate::ApiError;

fn token_id(raw: &str) -> Result<TokenId, ApiError> {
    TokenId::parse(raw).map_err(|e| ApiError::bad_request(e.to_string()))
}

fn username(raw: &str) -> Result<Username, ApiError> {
    Username::parse(raw).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Issue a token carrying some of one's own permissions, optionally for named clients only.
/// A critical operation: it needs a fresh second factor. The secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens",
    request_body = NewToken,
    responses((status = 201, body = IssuedToken), (status = 403), (status = 422)))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authorized,
    JsonBody(body): JsonBody<NewToken>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    let issued = state
        .app
        .token_create(&auth.grant, body, &auth.meta)
        .await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// One's own tokens, newest first, without their secrets.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = [TokenView])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    Ok(Json(state.app.tokens_own(&auth.grant).await?))
}

/// Revoke one of one's own tokens; it stops working with the next request.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404)))]
pub async fn revoke(
    State(state): State<AppState>,
    auth: Authorized,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .app
        .token_revoke_own(&auth.grant, token_id(&id)?, &auth.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's tokens (security administrators).
#[utoipa::path(get, path = "/api/v1/users/{username}/tokens", tag = "tokens",
    params(("username" = String, Path)),
    responses((status = 200, body = [TokenView]), (status = 404)))]
pub async fn list_of_user(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    Ok(Json(state.app.tokens_of_user(&username(&name)?).await?))
}

/// Revoke a user's token (security administrators).
#[utoipa::path(delete, path = "/api/v1/users/{username}/tokens/{id}", tag = "tokens",
    params(("username" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 404)))]
pub async fn revoke_of_user(
    State(state): State<AppState>,
    auth: Authorized,
    Path((name, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .app
        .token_revoke_user(&auth.grant, &username(&name)?, token_id(&id)?, &auth.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
