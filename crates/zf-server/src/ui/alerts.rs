use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use zf_audit::AlertStatus;

use super::i18n::{Lang, Msg};
use super::CsrfOnly;
use super::{csrf_ok, csrf_refused, layout, time};
use crate::api::alerts::{alert_id, AlertFilters};
use crate::extract::{Authorized, QueryParams};
use crate::routes::AppState;
use crate::ApiError;

pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    QueryParams(f): QueryParams<AlertFilters>,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let alerts = state
        .app
        .alerts(f.status()?, f.limit.unwrap_or(100))
        .await?;
    let csrf = auth.csrf_token.clone().unwrap_or_default();
    Ok(layout::page(
        lang,
        &auth,
        lang.t(Msg::Alerts),
        html! {
            @if alerts.is_empty() { p.note { (lang.t(Msg::NoAlerts)) } }
            @else {
                table.audit {
                    thead { tr {
                        th { (lang.t(Msg::AuditTime)) }
                        th { (lang.t(Msg::Severity)) }
                        th { (lang.t(Msg::Rule)) }
                        th { (lang.t(Msg::AuditUser)) }
                        th { (lang.t(Msg::Summary)) }
                        th { (lang.t(Msg::Status)) }
                        th {}
                    } }
                    tbody {
                        @for a in &alerts {
                            tr class={ "sev-" (a.alert.severity.as_str()) } {
                                td { (time(a.alert.at_ms)) }
                                td { (a.alert.severity.as_str()) }
                                td { (a.alert.rule) }
                                td { (a.alert.username.as_deref().unwrap_or("")) " " (a.alert.source.as_deref().unwrap_or("")) }
                                td { (a.alert.summary) br; span.note { (a.alert.responses.join(", ")) } }
                                td { (a.status.as_str()) @if let Some(by) = &a.updated_by { br; span.note { (by) } } }
                                td {
                                    @if a.status == AlertStatus::Open {
                                        form.inline method="post" action={ "/alerts/" (a.alert.id) "/acknowledge" } {
                                            input type="hidden" name="csrf" value=(csrf);
                                            button type="submit" { (lang.t(Msg::Acknowledge)) }
                                        }
                                        " "
                                    }
                                    @if a.status != AlertStatus::Resolved {
                                        form.inline method="post" action={ "/alerts/" (a.alert.id) "/resolve" } {
                                            input type="hidden" name="csrf" value=(csrf);
                                            button type="submit" { (lang.t(Msg::Resolve)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

async fn update(
    state: AppState,
    headers: HeaderMap,
    auth: Authorized,
    id: String,
    csrf: String,
    status: AlertStatus,
) -> Response {
    if !csrf_ok(&auth, &csrf) {
        return csrf_refused(Lang::from_headers(&headers));
    }
    let result = match alert_id(&id) {
        Ok(id) => state
            .app
            .alert_update(&auth.grant, &id, status, &auth.meta)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Redirect::to("/alerts").into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn acknowledge(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    update(state, headers, auth, id, f.csrf, AlertStatus::Acknowledged).await
}

pub async fn resolve(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    update(state, headers, auth, id, f.csrf, AlertStatus::Resolved).await
}
