use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use zf_app::erasure::ErasureView;
use zf_app::{ClientFilter, ClientPage, ClientView, IdNumberQuery, SensitiveValue};
use zf_domain::{ClientPatch, NewClient};

use crate::extract::{Authorized, ClientIdPath, JsonBody, QueryParams};
use crate::routes::AppState;
use crate::ApiError;

/// List the clients in the caller's scope, filtered and sorted, sensitive fields masked. Pages
/// follow one another by `cursor` (the previous page's `next_cursor`).
#[utoipa::path(get, path = "/api/v1/clients", tag = "clients", params(ClientFilter),
    responses((status = 200, body = ClientPage), (status = 401), (status = 403), (status = 422)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized,
    QueryParams(filter): QueryParams<ClientFilter>,
) -> Result<Json<ClientPage>, ApiError> {
    Ok(Json(state.app.client_list(&auth.grant, &filter).await?))
}

/// Create a client. The legal representative's ID number is encrypted under the client's own key.
#[utoipa::path(post, path = "/api/v1/clients", tag = "clients", request_body = NewClient,
    responses((status = 201, body = ClientView), (status = 409, description = "USCC already registered"),
              (status = 422, description = "A field is invalid")))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authorized,
    JsonBody(body): JsonBody<NewClient>,
) -> Result<Response, ApiError> {
    let view = state
        .app
        .client_create(&auth.grant, body, &auth.meta)
        .await?;
    let location = format!("/api/v1/clients/{}", view.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response())
}

/// Exact-match search by the legal representative's ID number (through its blind index).
#[utoipa::path(post, path = "/api/v1/clients/search", tag = "clients", request_body = IdNumberQuery,
    responses((status = 200, body = Vec<ClientView>)))]
pub async fn search(
    State(state): State<AppState>,
    auth: Authorized,
    JsonBody(body): JsonBody<IdNumberQuery>,
) -> Result<Json<Vec<ClientView>>, ApiError> {
    Ok(Json(
        state
            .app
            .client_search_id_number(&auth.grant, body, &auth.meta)
            .await?,
    ))
}

/// One client. A role that may see the ID number in full gets it, and the read is audited.
#[utoipa::path(get, path = "/api/v1/clients/{id}", tag = "clients",
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = ClientView), (status = 404, description = "No such client in your scope")))]
pub async fn read(
    State(state): State<AppState>,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
) -> Result<Json<ClientView>, ApiError> {
    Ok(Json(
        state.app.client_get(&auth.grant, id, &auth.meta).await?,
    ))
}

fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .map(|s| s.trim().trim_matches('"'))
        .and_then(|s| s.parse::<i64>().ok())
        .map(Some)
        .ok_or_else(|| ApiError::bad_request("If-Match must be the record's version, e.g. \"3\""))
}

/// Change some fields of a client. Send `If-Match: "<version>"` to refuse lost updates.
#[utoipa::path(patch, path = "/api/v1/clients/{id}", tag = "clients", request_body = ClientPatch,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = ClientView), (status = 404), (status = 409, description = "Version or USCC conflict")))]
pub async fn update(
    State(state): State<AppState>,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ClientPatch>,
) -> Result<Json<ClientView>, ApiError> {
    let version = if_match(&headers)?;
    Ok(Json(
        state
            .app
            .client_update(&auth.grant, id, body, version, &auth.meta)
            .await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureReason {
    /// Why the client should be erased (4 to 200 characters); kept with the request and in the
    /// audit log.
    pub reason: String,
}

/// Ask for a client to be erased (crypto-shredding: its records and data key destroyed).
/// Nothing is erased yet: the client stays readable until a different person approves the
/// request at `POST /api/v1/erasures/{id}`.
#[utoipa::path(post, path = "/api/v1/clients/{id}/erasure", tag = "clients", request_body = ErasureReason,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 202, body = ErasureView, description = "The request, pending"), (status = 404),
              (status = 409, description = "A request for this client is pending already"),
              (status = 422, description = "No reason, or one too short or too long")))]
pub async fn request_erasure(
    State(state): State<AppState>,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    JsonBody(body): JsonBody<ErasureReason>,
) -> Result<(StatusCode, Json<ErasureView>), ApiError> {
    let request = state
        .app
        .erasure_request(&auth.grant, id, &body.reason, &auth.meta)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(request)))
}

/// The same as `POST /api/v1/clients/{id}/erasure`: asks for the client to be erased, which a
/// second person must approve. Nobody deletes a client alone.
#[utoipa::path(delete, path = "/api/v1/clients/{id}", tag = "clients", request_body = ErasureReason,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 202, body = ErasureView, description = "The request, pending"), (status = 404),
              (status = 409, description = "A request for this client is pending already"),
              (status = 422, description = "No reason, or one too short or too long")))]
pub async fn delete(
    state: State<AppState>,
    auth: Authorized,
    id: ClientIdPath,
    body: JsonBody<ErasureReason>,
) -> Result<(StatusCode, Json<ErasureView>), ApiError> {
    request_erasure(state, auth, id, body).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevealRequest {
    /// The masked field to show, e.g. `legal_rep_id_number`.
    pub field: String,
    /// Why the full value is needed; kept in the audit log.
    pub reason: String,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Revealed {
    pub field: String,
    pub value: SensitiveValue,
}

/// Show one masked field in full, with a stated reason (audited).
#[utoipa::path(post, path = "/api/v1/clients/{id}/reveal", tag = "clients", request_body = RevealRequest,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Revealed), (status = 403), (status = 404), (status = 422)))]
pub async fn reveal(
    State(state): State<AppState>,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    JsonBody(body): JsonBody<RevealRequest>,
) -> Result<Json<Revealed>, ApiError> {
    let value = state
        .app
        .client_reveal(&auth.grant, id, &body.field, &body.reason, &auth.meta)
        .await?;
    Ok(Json(Revealed {
        field: body.field,
        value,
    }))
}
