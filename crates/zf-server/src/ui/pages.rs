use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::i18n::LANG_COOKIE;
use crate::extract::{Authorized, QueryParams};

pub async fn home(auth: Authorized) -> Redirect {
    let reads = |resource| {
        auth.grant.may(zf_policy::Permission::new(
            resource,
            zf_policy::Action::Read,
        ))
    };
    if auth.session.is_none() {
        Redirect::to("/login")
    } else if reads(zf_policy::Resource::AuditLog) && !reads(zf_policy::Resource::Client) {
        Redirect::to("/audit")
    } else if reads(zf_policy::Resource::Alert) {
        Redirect::to("/alerts")
    } else {
        Redirect::to("/clients")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanguageChoice {
    set: String,
}

/// Remembers the chosen language and returns to the start page. The target is fixed, so the
/// link cannot be turned into an open redirect.
pub async fn language(QueryParams(choice): QueryParams<LanguageChoice>) -> Response {
    let code = if choice.set == "en" { "en" } else { "zh" };
    let cookie = format!("{LANG_COOKIE}={code}; Path=/; Secure; SameSite=Strict; Max-Age=31536000");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}
