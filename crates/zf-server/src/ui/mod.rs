//! The server-rendered web UI: zh-CN first, English second, no script at all, so it runs under
//! a Content-Security-Policy that forbids every script. Forms carry a token derived from the
//! session (see `zf_app::identity::SessionToken::csrf_token`).

pub mod admin;
pub mod alerts;
pub mod assets;
pub mod audit;
pub mod backups;
pub mod clients;
pub mod crm;
pub mod dashboard;
pub mod erasures;
mod form;
mod i18n;
mod layout;
pub mod leads;
pub mod mfa;
pub mod pages;
pub mod posture;
mod qr;
pub mod reassignments;
pub mod roles;
pub mod session;
pub mod sessions;
pub mod tokens;
pub mod webauthn;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;
use zf_policy::Denied;

pub use i18n::Lang;

use crate::extract::Authorized;

/// The body of a form that carries nothing but its form token (revoke, end, dismiss).
#[derive(serde::Deserialize)]
pub struct CsrfOnly {
    pub(crate) csrf: String,
}

/// A time as the firm reads it: Beijing time, to the minute.
pub(crate) fn time(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.to_offset(time::macros::offset!(+8))
                .format(time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute]"
                ))
                .ok()
        })
        .unwrap_or_default()
}

/// The form token must match the session's; compared in constant time.
/// The status a refusal shown on a page answers with, as the API would: 409 for a conflict,
/// 404 for something gone, 422 for the rest.
pub(crate) fn refusal_status(e: &zf_app::AppError) -> axum::http::StatusCode {
    use axum::http::StatusCode;
    match e {
        zf_app::AppError::Conflict(_) => StatusCode::CONFLICT,
        zf_app::AppError::NotFound => StatusCode::NOT_FOUND,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

pub(crate) fn csrf_ok(auth: &Authorized, presented: &str) -> bool {
    auth.csrf_token
        .as_deref()
        .is_some_and(|t| zf_crypto::constant_time_eq(t.as_bytes(), presented.as_bytes()))
}

pub(crate) fn csrf_refused(lang: Lang) -> Response {
    let body = layout::bare(
        lang,
        lang.t(i18n::Msg::Forbidden),
        html! {
            p.error { (lang.t(i18n::Msg::CsrfFailed)) }
            p { a href="/clients" { (lang.t(i18n::Msg::Clients)) } }
        },
    );
    (StatusCode::FORBIDDEN, body).into_response()
}

pub fn forbidden_page(denied: &Denied) -> Response {
    let lang = Lang::Zh;
    let body = layout::bare(
        lang,
        lang.t(i18n::Msg::Forbidden),
        html! {
            p.error { (lang.t(i18n::Msg::Forbidden)) " — " (denied.to_string()) }
            form method="post" action="/logout" { button type="submit" { (lang.t(i18n::Msg::SignOut)) } }
        },
    );
    (StatusCode::FORBIDDEN, body).into_response()
}

pub async fn not_found(headers: HeaderMap) -> Response {
    let lang = Lang::from_headers(&headers);
    if headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"))
    {
        return crate::ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
            .into_response();
    }
    let body = layout::bare(
        lang,
        lang.t(i18n::Msg::NotFound),
        html! {
            p { (lang.t(i18n::Msg::NotFound)) }
            p { a href="/" { (lang.t(i18n::Msg::Home)) } }
        },
    );
    (StatusCode::NOT_FOUND, body).into_response()
}
