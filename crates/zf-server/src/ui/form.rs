//! What the client-work pages share: the form token, optional fields, amounts in yuan, and the
//! page that says why a submission was not saved (and that nothing was).

use std::fmt::Display;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use zf_app::{AppError, SensitiveValue};
use zf_domain::Fen;
use zf_policy::{Action, Permission, Resource};

use super::i18n::{Lang, Msg};
use super::layout;
use crate::extract::Authorized;
use crate::ApiError;

/// Whether the caller's role holds a permission. Only ever used to decide what a page shows;
/// whether a request may run is the route's operation, decided by the policy layer.
pub(crate) fn may(auth: &Authorized, resource: Resource, action: Action) -> bool {
    auth.grant.may(Permission::new(resource, action))
}

pub(crate) fn csrf(auth: &Authorized) -> Markup {
    html! { input type="hidden" name="csrf" value=(auth.csrf_token.as_deref().unwrap_or("")); }
}

pub(crate) fn sensitive(lang: Lang, v: Option<&SensitiveValue>) -> Markup {
    match v {
        None => html! {},
        Some(SensitiveValue::Visible(s)) => html! { span.sensitive { (s) } },
        Some(SensitiveValue::Masked(s)) => html! { span.masked { (s) } },
        Some(SensitiveValue::Hidden) => html! { span.note { (lang.t(Msg::Hidden)) } },
    }
}

pub(crate) fn empty(lang: Lang) -> Markup {
    html! { p.note { (lang.t(Msg::Nothing)) } }
}

/// Fen shown as yuan the way an accountant reads a ledger: `-1,234,567.89`. Computed on the
/// integer so that sums past the domain's bound (a long contract's billing) still print.
pub(crate) fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    let whole = (abs / 100).to_string();
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{sign}{grouped}.{:02}", abs % 100)
}

/// A figure the person typed in yuan, named by its field when it does not parse.
pub(crate) fn fen_field(lang: Lang, label: Msg, input: &str) -> Result<Fen, String> {
    field(lang, label, Fen::parse_yuan(input))
}

/// Names the field a parse error belongs to, in the page's language.
pub(crate) fn field<T, E: Display>(lang: Lang, label: Msg, r: Result<T, E>) -> Result<T, String> {
    r.map_err(|e| format!("{}: {e}", lang.t(label)))
}

/// An optional form field: blank means absent, anything else must parse.
pub(crate) fn opt<T, E: Display>(
    lang: Lang,
    label: Msg,
    v: &str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<Option<T>, String> {
    let v = v.trim();
    if v.is_empty() {
        Ok(None)
    } else {
        field(lang, label, parse(v)).map(Some)
    }
}

/// The answer to a form that changed nothing: why, in words, and the way back to it.
pub(crate) fn not_saved(lang: Lang, back: &str, status: StatusCode, message: &str) -> Response {
    let body = layout::bare(
        lang,
        lang.t(Msg::NotSaved),
        html! {
            p.error role="alert" { (message) }
            p { a href=(back) { (lang.t(Msg::Back)) } }
        },
    );
    (status, body).into_response()
}

pub(crate) fn invalid(lang: Lang, back: &str, message: &str) -> Response {
    not_saved(lang, back, StatusCode::UNPROCESSABLE_ENTITY, message)
}

/// A use-case's refusal as a page. What the person can fix gets its own words and the way
/// back; refusals by the policy and faults keep the edge's one error type.
pub(crate) fn app_error(lang: Lang, back: &str, e: AppError) -> Response {
    match e {
        AppError::Invalid(m) => invalid(lang, back, &m),
        AppError::Conflict(m) => not_saved(lang, back, StatusCode::CONFLICT, &m),
        AppError::TooLarge(m) => not_saved(lang, back, StatusCode::PAYLOAD_TOO_LARGE, &m),
        AppError::Unsupported(m) => not_saved(lang, back, StatusCode::UNSUPPORTED_MEDIA_TYPE, &m),
        AppError::NotFound => not_saved(lang, back, StatusCode::NOT_FOUND, lang.t(Msg::NotFound)),
        other => ApiError::from(other).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::yuan;

    #[test]
    fn yuan_has_two_decimals_and_groups_thousands() {
        assert_eq!(yuan(0), "0.00");
        assert_eq!(yuan(5), "0.05");
        assert_eq!(yuan(123_456), "1,234.56");
        assert_eq!(yuan(100_000_000), "1,000,000.00");
        assert_eq!(yuan(-99_999), "-999.99");
        assert_eq!(yuan(i64::MIN), "-92,233,720,368,547,758.08");
    }
}
