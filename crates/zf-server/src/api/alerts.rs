use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use zf_audit::{AlertRecord, AlertStatus};

use crate::extract::{Authorized, QueryParams};
use crate::routes::AppState;
use crate::ApiError;

#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
pub struct AlertFilters {
    /// open, acknowledged or resolved; all when absent.
    pub status: Option<String>,
    /// 1 to 500 (default 100).
    pub limit: Option<u32>,
}

impl AlertFilters {
    pub fn status(&self) -> Result<Option<AlertStatus>, ApiError> {
        match self.status.as_deref().filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => AlertStatus::parse(s).map(Some).ok_or_else(|| {
                ApiError::bad_request("status must be open, acknowledged or resolved")
            }),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AlertList {
    /// Newest first.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<AlertRecord>,
}

/// The alert console (security administrators).
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", params(AlertFilters),
    responses((status = 200, body = AlertList), (status = 403)))]
pub async fn list(
    State(state): State<AppState>,
    _auth: Authorized,
    QueryParams(f): QueryParams<AlertFilters>,
) -> Result<Json<AlertList>, ApiError> {
    let items = state
        .app
        .alerts(f.status()?, f.limit.unwrap_or(100))
        .await?;
    Ok(Json(AlertList { items }))
}

pub(crate) fn alert_id(raw: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(raw)
        .map(|u| u.to_string())
        .map_err(|_| ApiError::bad_request("the alert id is not a UUID"))
}

/// Acknowledge an alert: someone is on it.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/acknowledge", tag = "alerts",
    params(("id" = String, Path, format = Uuid)), responses((status = 204), (status = 404)))]
pub async fn acknowledge(
    State(state): State<AppState>,
    auth: Authorized,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .app
        .alert_update(
            &auth.grant,
            &alert_id(&id)?,
            AlertStatus::Acknowledged,
            &auth.meta,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Resolve an alert: handled, with the outcome recorded in the audit log.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/resolve", tag = "alerts",
    params(("id" = String, Path, format = Uuid)), responses((status = 204), (status = 404)))]
pub async fn resolve(
    State(state): State<AppState>,
    auth: Authorized,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .app
        .alert_update(
            &auth.grant,
            &alert_id(&id)?,
            AlertStatus::Resolved,
            &auth.meta,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
