use axum::extract::State;
use axum::http::HeaderMap;
use maud::{html, Markup};

use super::i18n::{Lang, Msg};
use super::{layout, time};
use crate::api::audit::AuditFilters;
use crate::extract::{Authorized, QueryParams};
use crate::routes::AppState;
use crate::ApiError;

fn field(label: &str, name: &str, value: &Option<String>, hint: &str) -> Markup {
    html! {
        div {
            label for=(name) { (label) }
            input id=(name) name=(name) value=(value.as_deref().unwrap_or("")) placeholder=(hint);
        }
    }
}

/// The audit administrator's investigation screen: the same filters as the API.
pub async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    QueryParams(filters): QueryParams<AuditFilters>,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let query = filters.to_query()?;
    let limit = query.limit as usize;
    let events = state
        .app
        .audit_search(&auth.grant, query, &auth.meta)
        .await?;
    let next = (events.len() == limit)
        .then(|| events.last().map(|e| format!("{}:{}", e.at_ms, e.seq)))
        .flatten();
    Ok(layout::page(
        lang,
        &auth,
        lang.t(Msg::AuditLog),
        html! {
            form.filters method="get" action="/audit" {
                (field(lang.t(Msg::AuditUser), "user", &filters.user, "zhangsan"))
                (field(lang.t(Msg::AuditClient), "client", &filters.client, "client id"))
                (field(lang.t(Msg::AuditAction), "action", &filters.action, "client_sensitive_read"))
                (field(lang.t(Msg::AuditSource), "source", &filters.source, "10.0.0.8"))
                (field(lang.t(Msg::AuditFrom), "from", &filters.from, "2026-11-01T00:00:00+08:00"))
                (field(lang.t(Msg::AuditTo), "to", &filters.to, "2026-12-01T00:00:00+08:00"))
                button type="submit" { (lang.t(Msg::Search)) }
            }
            table.audit {
                thead { tr {
                    th { "#" }
                    th { (lang.t(Msg::AuditTime)) }
                    th { (lang.t(Msg::AuditUser)) }
                    th { (lang.t(Msg::AuditAction)) }
                    th { (lang.t(Msg::AuditRecord)) }
                    th { (lang.t(Msg::AuditFields)) }
                    th { (lang.t(Msg::AuditOutcome)) }
                    th { (lang.t(Msg::AuditSource)) }
                } }
                tbody {
                    @for e in &events {
                        tr {
                            td { (e.seq) }
                            td { (time(e.at_ms)) }
                            td { (e.actor_name) }
                            td { (e.action) @if let Some(d) = &e.detail { br; span.note { (d) } } }
                            td { (e.resource.as_deref().unwrap_or("")) " " (e.record_id.as_deref().unwrap_or("")) }
                            td { (e.fields) }
                            td { (e.outcome) }
                            td { (e.source.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
            @if let Some(cursor) = next {
                p.pager {
                    a href={ "/audit?before=" (cursor)
                        @if let Some(u) = &filters.user { "&user=" (u) }
                        @if let Some(a) = &filters.action { "&action=" (a) } } { (lang.t(Msg::Next)) }
                }
            }
        },
    ))
}
