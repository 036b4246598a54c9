use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use zf_store::AuditQuery;

use crate::extract::{Authorized, QueryParams};
use crate::routes::AppState;
use crate::ApiError;

#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
pub struct AuditFilters {
    /// Username of the actor ("what did user Y access").
    pub user: Option<String>,
    /// A client id ("who touched client X"); shorthand for resource=clients&record=<id>.
    pub client: Option<String>,
    pub resource: Option<String>,
    pub record: Option<String>,
    /// e.g. client_sensitive_read, login, access_denied.
    pub action: Option<String>,
    /// Source address.
    pub source: Option<String>,
    /// RFC 3339 time, inclusive.
    pub from: Option<String>,
    /// RFC 3339 time, exclusive.
    pub to: Option<String>,
    /// The `next` cursor of the previous page.
    pub before: Option<String>,
    /// 1 to 1000 (default 100).
    pub limit: Option<u32>,
}

fn parse_time(name: &str, value: &str) -> Result<i64, ApiError> {
    let t = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            ApiError::bad_request(format!(
                "{name} must be an RFC 3339 time such as 2026-11-29T08:00:00+08:00"
            ))
        })?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| ApiError::bad_request(format!("{name} is out of range")))
}

fn parse_cursor(value: &str) -> Result<(i64, i64), ApiError> {
    value
        .split_once(':')
        .and_then(|(a, s)| Some((a.parse().ok()?, s.parse().ok()?)))
        .ok_or_else(|| ApiError::bad_request("before must be the `next` cursor of a previous page"))
}

impl AuditFilters {
    /// Turns the query string into a store query, refusing anything malformed.
    pub fn to_query(&self) -> Result<AuditQuery, ApiError> {
        let (mut resource, mut record) = (self.resource.clone(), self.record.clone());
        if let Some(client) = &self.client {
            let id = zf_domain::ClientId::parse(client)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            resource = Some("clients".into());
            record = Some(id.to_string());
        }
        let nonempty = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Ok(AuditQuery {
            actor: nonempty(&self.user),
            resource: nonempty(&resource),
            record_id: nonempty(&record),
            action: nonempty(&self.action),
            source: nonempty(&self.source),
            device: None,
            outcome: None,
            from_ms: self
                .from
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|v| parse_time("from", v))
                .transpose()?,
            to_ms: self
                .to
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|v| parse_time("to", v))
                .transpose()?,
            before: self
                .before
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(parse_cursor)
                .transpose()?,
            limit: self.limit.unwrap_or(100).clamp(1, 1000),
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<zf_audit::StoredEvent>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next: Option<String>,
}

/// Search the audit log (audit administrators). Served from indexes: by user and time, by
/// client, by action, by source address.
#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit", params(AuditFilters),
    responses((status = 200, body = AuditPage), (status = 400), (status = 403)))]
pub async fn search(
    State(state): State<AppState>,
    auth: Authorized,
    QueryParams(filters): QueryParams<AuditFilters>,
) -> Result<Json<AuditPage>, ApiError> {
    let query = filters.to_query()?;
    let limit = query.limit as usize;
    let items = state
        .app
        .audit_search(&auth.grant, query, &auth.meta)
        .await?;
    let next = (items.len() == limit)
        .then(|| items.last().map(|e| format!("{}:{}", e.at_ms, e.seq)))
        .flatten();
    Ok(Json(AuditPage { items, next }))
}
