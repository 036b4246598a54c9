use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::i18n::LANG_COOKIE;
use crate::extract::{Authorized, QueryParams};

pub async fn home(auth: Authorized) -> Redirect {
    if auth.session.is_some() {
        Redirect::to("/clients")
    } else {
        Redirect::to("/login")
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
