use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use zf_app::reviews::{ReviewDecision, ReviewView};
use zf_domain::Username;

use crate::extract::{Authorized, JsonBody};
use crate::routes::AppState;
use crate::ApiError;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReview {
    /// Days reviewers have to answer (1 to 90).
    pub due_days: u32,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub decision: ReviewDecision,
    pub reason: String,
}

/// Start an access review of every enabled account (security administrators).
#[utoipa::path(post, path = "/api/v1/reviews", tag = "reviews", request_body = NewReview,
    responses((status = 201, body = ReviewView), (status = 422)))]
pub async fn start(
    State(state): State<AppState>,
    auth: Authorized,
    JsonBody(body): JsonBody<NewReview>,
) -> Result<(StatusCode, Json<ReviewView>), ApiError> {
    let view = state
        .app
        .review_start_by(&auth.grant, body.due_days, &auth.meta)
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// A review with its lines; overdue lines are listed.
#[utoipa::path(get, path = "/api/v1/reviews/{id}", tag = "reviews",
    params(("id" = String, Path)), responses((status = 200, body = ReviewView), (status = 404)))]
pub async fn read(
    State(state): State<AppState>,
    _auth: Authorized,
    Path(id): Path<String>,
) -> Result<Json<ReviewView>, ApiError> {
    Ok(Json(state.app.review_view(&id).await?))
}

/// Certify or revoke one user's access; revoking disables the account at once.
#[utoipa::path(post, path = "/api/v1/reviews/{id}/lines/{username}", tag = "reviews", request_body = Answer,
    params(("id" = String, Path), ("username" = String, Path)),
    responses((status = 204), (status = 409, description = "Answered already"), (status = 422)))]
pub async fn answer(
    State(state): State<AppState>,
    auth: Authorized,
    Path((id, username)): Path<(String, String)>,
    JsonBody(body): JsonBody<Answer>,
) -> Result<StatusCode, ApiError> {
    let username = Username::parse(&username).map_err(|e| ApiError::bad_request(e.to_string()))?;
    state
        .app
        .review_decide(
            &auth.grant,
            &id,
            &username,
            body.decision,
            &body.reason,
            &auth.meta,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A supervisor's part of a review: the lines of their team's members (supervisors with a
/// team).
#[utoipa::path(get, path = "/api/v1/reviews/{id}/team", tag = "reviews",
    params(("id" = String, Path)), responses((status = 200, body = ReviewView), (status = 404), (status = 422)))]
pub async fn team(
    State(state): State<AppState>,
    auth: Authorized,
    Path(id): Path<String>,
) -> Result<Json<ReviewView>, ApiError> {
    Ok(Json(state.app.review_team_view(&auth.grant, &id).await?))
}

/// A supervisor certifies or revokes the access of a member of their team; revoking disables
/// the account at once. Anyone outside their team answers 404. (The same handler as
/// [`answer`]; the route's operation says whose lines may be answered.)
#[utoipa::path(post, path = "/api/v1/reviews/{id}/team/{username}", tag = "reviews", request_body = Answer,
    params(("id" = String, Path), ("username" = String, Path)),
    responses((status = 204), (status = 404), (status = 409, description = "Answered already"), (status = 422)))]
pub async fn team_answer(
    state: State<AppState>,
    auth: Authorized,
    path: Path<(String, String)>,
    body: JsonBody<Answer>,
) -> Result<StatusCode, ApiError> {
    answer(state, auth, path, body).await
}
