//! Supervisors' screen of clients waiting for a new accountant after a job transfer, and the
//! security administrator's view of one user's permission history.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use zf_app::reassignments::ReassignmentView;
use zf_app::AppError;
use zf_domain::Username;

use super::i18n::{Lang, Msg};
use super::{csrf_ok, csrf_refused, layout, time};
use crate::extract::Authorized;
use crate::routes::AppState;
use crate::ApiError;

fn page(lang: Lang, auth: &Authorized, rows: &[ReassignmentView], error: Option<&str>) -> Markup {
    let csrf = auth.csrf_token.clone().unwrap_or_default();
    layout::page(
        lang,
        auth,
        lang.t(Msg::Reassignments),
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            table.audit #reassignments {
                thead { tr {
                    th { (lang.t(Msg::Username)) } th { (lang.t(Msg::Clients)) }
                    th { (lang.t(Msg::Reason)) } th { (lang.t(Msg::Status)) } th {}
                } }
                tbody {
                    @for r in rows {
                        tr {
                            td { (r.from) }
                            td { (r.clients) }
                            td.note { (r.reason) br; (time(r.requested_at)) " · " (r.requested_by.as_deref().unwrap_or("")) }
                            td {
                                (r.status)
                                @if let Some(by) = &r.approved_by {
                                    br; span.note { (by) " → " (r.to.as_deref().unwrap_or("—")) " (" (r.moved.unwrap_or(0)) ") " (r.decision_reason.as_deref().unwrap_or("")) }
                                }
                            }
                            td {
                                @if r.status == "pending" {
                                    form.inline method="post" action={ "/reassignments/" (r.id) } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input name="to" maxlength="32" placeholder=(lang.t(Msg::AccountantUsername));
                                        " "
                                        input name="reason" required maxlength="200" placeholder=(lang.t(Msg::Reason));
                                        " "
                                        button type="submit" name="decision" value="approve" { (lang.t(Msg::Approve)) }
                                        " "
                                        button type="submit" name="decision" value="reject" { (lang.t(Msg::Reject)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

async fn render(
    state: &AppState,
    lang: Lang,
    auth: &Authorized,
    error: Option<(StatusCode, String)>,
) -> Response {
    match state.app.reassignments(None).await {
        Ok(rows) => match error {
            Some((status, e)) => (status, page(lang, auth, &rows, Some(&e))).into_response(),
            None => page(lang, auth, &rows, None).into_response(),
        },
        Err(e) => ApiError::from(e).into_response(),
    }
}

pub async fn list(State(state): State<AppState>, headers: HeaderMap, auth: Authorized) -> Response {
    render(&state, Lang::from_headers(&headers), &auth, None).await
}

#[derive(Deserialize)]
pub struct DecisionForm {
    csrf: String,
    #[serde(default)]
    to: String,
    reason: String,
    decision: String,
}

pub async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Path(id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(lang);
    }
    let to = match form.decision.as_str() {
        "approve" if form.to.trim().is_empty() => {
            let e = AppError::Invalid("name the accountant who takes the clients over".into());
            return render(
                &state,
                lang,
                &auth,
                Some((StatusCode::UNPROCESSABLE_ENTITY, e.to_string())),
            )
            .await;
        }
        "approve" => Some(form.to.as_str()),
        _ => None,
    };
    match state
        .app
        .reassignment_decide(&auth.grant, &id, to, &form.reason, &auth.meta)
        .await
    {
        Ok(_) => Redirect::to("/reassignments").into_response(),
        Err(e @ (AppError::Invalid(_) | AppError::Conflict(_))) => {
            render(
                &state,
                lang,
                &auth,
                Some((super::refusal_status(&e), e.to_string())),
            )
            .await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// One user's permission history: who changed what, when, why, and who approved it.
pub async fn history(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Path(username): Path<String>,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let username = Username::parse(&username).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let changes = state.app.permission_history(&username).await?;
    Ok(layout::page(
        lang,
        &auth,
        lang.t(Msg::PermissionHistory),
        html! {
            h2 { (username.as_str()) }
            table.audit #permission-history {
                thead { tr {
                    th { (lang.t(Msg::AuditTime)) } th { (lang.t(Msg::AuditAction)) } th { (lang.t(Msg::AuditUser)) }
                    th { (lang.t(Msg::Reason)) } th { (lang.t(Msg::ApprovedBy)) }
                } }
                tbody {
                    @for c in &changes {
                        tr {
                            td { (time(c.at)) } td { (c.action) } td { (c.by) }
                            td.note { (c.detail.as_deref().unwrap_or("")) }
                            td { (c.approved_by.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
            p { a href="/users" { (lang.t(Msg::Users)) } }
        },
    ))
}
