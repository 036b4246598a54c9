//! Deciding requests to erase clients: a second person approves (erasing the client) or
//! rejects.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use zf_app::erasure::ErasureView;

use crate::extract::{Authorized, JsonBody, QueryParams};
use crate::routes::AppState;
use crate::ApiError;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StatusFilter {
    /// `pending`, `approved` or `rejected`; all if absent.
    pub status: Option<String>,
}

/// Requests to erase clients in the caller's scope (and those whose client is erased), newest
/// first.
#[utoipa::path(get, path = "/api/v1/erasures", tag = "clients", params(StatusFilter),
    responses((status = 200, body = Vec<ErasureView>), (status = 422)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized,
    QueryParams(filter): QueryParams<StatusFilter>,
) -> Result<Json<Vec<ErasureView>>, ApiError> {
    Ok(Json(
        state
            .app
            .erasures(&auth.grant, filter.status.as_deref())
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// `true` erases the client now; `false` rejects the request and the client stays.
    pub approve: bool,
    /// Why (4 to 200 characters); kept with the request and in the audit log.
    pub reason: String,
}

/// Approve a pending request — the client, its records, documents and data key are destroyed
/// at once and for good — or reject it. Whoever made the request cannot approve it (422).
#[utoipa::path(post, path = "/api/v1/erasures/{id}", tag = "clients", request_body = Decision,
    params(("id" = String, Path)),
    responses((status = 200, body = ErasureView),
              (status = 404, description = "No pending request of that id in your scope"),
              (status = 422, description = "Your own request, or no reason")))]
pub async fn decide(
    State(state): State<AppState>,
    auth: Authorized,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Decision>,
) -> Result<Json<ErasureView>, ApiError> {
    Ok(Json(
        state
            .app
            .erasure_decide(&auth.grant, &id, body.approve, &body.reason, &auth.meta)
            .await?,
    ))
}
