//! One's own sessions in the browser, each with a button to end it.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};

use super::i18n::{Lang, Msg};
use super::CsrfOnly;
use super::{csrf_ok, csrf_refused, layout, time};
use crate::api::session::clear_cookie;
use crate::extract::Authorized;
use crate::routes::AppState;
use crate::ApiError;

pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let sessions = state.app.own_sessions(auth.session()?).await?;
    let csrf = auth.csrf_token.as_deref().unwrap_or("");
    Ok(layout::page(
        lang,
        &auth,
        lang.t(Msg::Sessions),
        html! {
            table.audit {
                thead { tr {
                    th { (lang.t(Msg::Device)) }
                    th { (lang.t(Msg::AuditSource)) }
                    th { (lang.t(Msg::Created)) }
                    th { (lang.t(Msg::LastSeen)) }
                    th { (lang.t(Msg::SecondFactor)) }
                    th {}
                } }
                tbody {
                    @for s in &sessions {
                        tr {
                            td {
                                (s.device.as_deref().unwrap_or("—"))
                                @if s.current { " " strong { "(" (lang.t(Msg::ThisSession)) ")" } }
                            }
                            td { (s.source.as_deref().unwrap_or("—")) }
                            td { (time(s.created_at)) }
                            td { (time(s.last_seen)) }
                            td {
                                @if s.waiting_for_second_factor { (lang.t(Msg::WaitingSecondFactor)) }
                                @else { (s.second_factor_at.map(time).unwrap_or_else(|| "—".into())) }
                            }
                            td {
                                form.inline method="post" action={ "/sessions/" (s.id) "/revoke" } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button type="submit" { (lang.t(Msg::EndSession)) }
                                }
                            }
                        }
                    }
                }
            }
            p { a href="/mfa" { (lang.t(Msg::Security)) } }
        },
    ))
}

pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(Lang::from_headers(&headers));
    }
    let Ok(session) = auth.session() else {
        return Redirect::to("/login").into_response();
    };
    let current = id == session.session_ref;
    if let Err(e) = state
        .app
        .revoke_own_session(&auth.grant, session, &id, &auth.meta)
        .await
    {
        return ApiError::from(e).into_response();
    }
    if current {
        (
            [(axum::http::header::SET_COOKIE, clear_cookie())],
            Redirect::to("/login"),
        )
            .into_response()
    } else {
        Redirect::to("/sessions").into_response()
    }
}
