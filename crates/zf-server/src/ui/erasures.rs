//! The approvers' screen of requests to erase clients: a second person approves (the client
//! and its key are destroyed) or rejects; whoever asked may withdraw their own request.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use zf_app::erasure::ErasureView;
use zf_app::AppError;

use super::i18n::{Lang, Msg};
use super::{csrf_ok, csrf_refused, layout, time};
use crate::extract::Authorized;
use crate::routes::AppState;
use crate::ApiError;

fn page(lang: Lang, auth: &Authorized, rows: &[ErasureView], error: Option<&str>) -> Markup {
    let csrf = auth.csrf_token.clone().unwrap_or_default();
    let me = auth
        .session
        .as_ref()
        .map(|s| s.principal.username.as_str().to_owned());
    layout::page(
        lang,
        auth,
        lang.t(Msg::Erasures),
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            p.note { (lang.t(Msg::ErasureApproveWarning)) }
            table.audit #erasures {
                thead { tr {
                    th { (lang.t(Msg::ClientName)) } th { (lang.t(Msg::RequestedBy)) }
                    th { (lang.t(Msg::Reason)) } th { (lang.t(Msg::Status)) } th {}
                } }
                tbody {
                    @for r in rows {
                        @let own = me.as_deref() == Some(r.requested_by.as_str());
                        tr {
                            td {
                                @if r.status == "approved" { (r.client_name) }
                                @else { a href={ "/clients/" (r.client_id) } { (r.client_name) } }
                            }
                            td { (r.requested_by) br; span.note { (time(r.requested_at)) } }
                            td.note { (r.reason) }
                            td {
                                (r.status)
                                @if let Some(by) = &r.decided_by {
                                    br; span.note { (lang.t(Msg::DecidedBy)) " " (by) " · " (r.decided_at.map(time).unwrap_or_default()) " " (r.decision_reason.as_deref().unwrap_or("")) }
                                }
                            }
                            td {
                                @if r.status == "pending" {
                                    form.inline method="post" action={ "/erasures/" (r.id) } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input name="reason" required minlength="4" maxlength="200" placeholder=(lang.t(Msg::Reason));
                                        " "
                                        @if own {
                                            span.note { (lang.t(Msg::ErasureNeedsSecondPerson)) }
                                            " "
                                            button type="submit" name="decision" value="reject" { (lang.t(Msg::Withdraw)) }
                                        } @else {
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
    match state.app.erasures(&auth.grant, None).await {
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
    let approve = match form.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => {
            let e = AppError::Invalid("the decision is approve or reject".into());
            return render(
                &state,
                lang,
                &auth,
                Some((StatusCode::UNPROCESSABLE_ENTITY, e.to_string())),
            )
            .await;
        }
    };
    match state
        .app
        .erasure_decide(&auth.grant, &id, approve, &form.reason, &auth.meta)
        .await
    {
        Ok(_) => Redirect::to("/erasures").into_response(),
        Err(e @ (AppError::Invalid(_) | AppError::Conflict(_) | AppError::NotFound)) => {
            let status = super::refusal_status(&e);
            let message = match e {
                AppError::NotFound => {
                    "the request is no longer pending (decided already) or not in your scope"
                        .to_owned()
                }
                other => other.to_string(),
            };
            render(&state, lang, &auth, Some((status, message))).await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}
