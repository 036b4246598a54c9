//! The second factor in the browser: setting up an authenticator with a QR code, the recovery
//! codes shown once, and verifying again before a critical operation (step-up).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use secrecy::SecretString;
use serde::Deserialize;
use zf_app::identity::TotpEnrolment;
use zf_app::AppError;

use super::i18n::{Lang, Msg};
use super::CsrfOnly;
use super::{csrf_ok, csrf_refused, layout, qr, time};
use crate::api::session::session_cookie;
use crate::extract::{Authorized, QueryParams};
use crate::routes::AppState;
use crate::ApiError;

fn code_input(lang: Lang) -> Markup {
    html! {
        label for="code" { (lang.t(Msg::EnterCode)) }
        input #code name="code" required autocomplete="one-time-code" inputmode="text"
            minlength="6" maxlength="16" autofocus;
    }
}

fn enrolment(lang: Lang, auth: &Authorized, e: &TotpEnrolment, error: Option<&str>) -> Markup {
    let csrf = auth.csrf_token.as_deref().unwrap_or("");
    html! {
        div.card {
            p { (lang.t(Msg::MfaIntro)) }
            @if let Some(svg) = qr::svg(&e.uri, lang.t(Msg::QrCode)) { (svg) }
            p { (lang.t(Msg::SecretKey)) ": " code #totp-secret { (e.secret.as_str()) } }
        }
        form.card method="post" action="/mfa/totp/confirm" {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            input type="hidden" name="csrf" value=(csrf);
            label for="code" { (lang.t(Msg::EnterCode)) }
            input #code name="code" required autocomplete="one-time-code" inputmode="numeric"
                pattern="[0-9]{6}" maxlength="6" autofocus;
            button type="submit" { (lang.t(Msg::Confirm)) }
        }
        form.inline method="post" action="/mfa/totp" {
            input type="hidden" name="csrf" value=(csrf);
            button type="submit" { (lang.t(Msg::StartOver)) }
        }
    }
}

async fn mfa_page(
    state: &AppState,
    lang: Lang,
    auth: &Authorized,
    error: Option<&str>,
) -> Result<Markup, ApiError> {
    let session = auth.session()?;
    let status = state.app.mfa_status(session).await?;
    let keys = state.app.security_keys(session).await?;
    let pending = if status.enrolled {
        None
    } else {
        state.app.totp_pending(session).await?
    };
    let csrf = auth.csrf_token.as_deref().unwrap_or("");
    Ok(layout::page_webauthn(
        lang,
        auth,
        lang.t(Msg::Security),
        html! {
            @if status.enrolled {
                dl.card {
                    dt { (lang.t(Msg::SecondFactor)) } dd { (lang.t(Msg::MfaEnrolled)) }
                    dt { (lang.t(Msg::Created)) } dd { (status.confirmed_at.map(time).unwrap_or_default()) }
                    dt { (lang.t(Msg::RecoveryCodesLeft)) } dd { (status.recovery_codes_left) }
                }
                p.note { (lang.t(Msg::MfaResetNote)) }
            } @else {
                // A security key meets the requirement as well as an authenticator app.
                @if status.required && keys.is_empty() { p.note role="alert" { (lang.t(Msg::MfaRequiredForRole)) } }
                @else { p { (lang.t(Msg::MfaOptional)) } }
                @if let Some(e) = &pending {
                    (enrolment(lang, auth, e, error))
                } @else {
                    form.card method="post" action="/mfa/totp" {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" { (lang.t(Msg::SetUpAuthenticator)) }
                    }
                }
            }
            (super::webauthn::keys_section(lang, auth, &keys))
            p { a href="/sessions" { (lang.t(Msg::Sessions)) } }
        },
    ))
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
) -> Result<Markup, ApiError> {
    mfa_page(&state, Lang::from_headers(&headers), &auth, None).await
}

/// Starts an enrolment and shows it on the settings page, where a reload shows it again.
pub async fn begin(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(Lang::from_headers(&headers));
    }
    let Ok(session) = auth.session() else {
        return Redirect::to("/login").into_response();
    };
    match state.app.totp_begin(&auth.grant, session, &auth.meta).await {
        Ok(_) | Err(AppError::Conflict(_)) => Redirect::to("/mfa").into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    csrf: String,
    code: SecretString,
}

/// Confirms the authenticator and shows the recovery codes, once; the new session cookie
/// comes with them.
pub async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Form(form): Form<CodeForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(lang);
    }
    let Ok(session) = auth.session() else {
        return Redirect::to("/login").into_response();
    };
    match state
        .app
        .totp_confirm(&auth.grant, session, &form.code, &auth.meta)
        .await
    {
        Ok(activated) => {
            let body = layout::bare(
                lang,
                lang.t(Msg::RecoveryCodes),
                html! {
                    div.card {
                        p.note role="alert" { (lang.t(Msg::RecoveryCodesOnce)) }
                        ol.recovery-codes {
                            @for c in &activated.recovery_codes { li { code { (c.as_str()) } } }
                        }
                        p { a href="/" { (lang.t(Msg::Continue)) } }
                    }
                },
            );
            (
                [(header::SET_COOKIE, session_cookie(&activated.session))],
                body,
            )
                .into_response()
        }
        Err(e @ AppError::Invalid(_)) => {
            match mfa_page(&state, lang, &auth, Some(&e.to_string())).await {
                Ok(page) => (StatusCode::UNPROCESSABLE_ENTITY, page).into_response(),
                Err(e) => e.into_response(),
            }
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Where to go after a step-up: a path on this site only, so the parameter cannot send the
/// browser elsewhere.
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            n
        }
        _ => "/",
    }
}

fn step_up_form(lang: Lang, auth: &Authorized, next: &str, error: Option<&str>) -> Markup {
    let has_key = auth
        .session
        .as_ref()
        .is_some_and(|s| s.principal.factors.security_key);
    layout::page_webauthn(
        lang,
        auth,
        lang.t(Msg::StepUpTitle),
        html! {
            @if has_key {
                div.card {
                    (super::webauthn::assertion_button(
                        lang,
                        Msg::UseSecurityKey,
                        "/api/v1/session/step-up/security-key/options",
                        "/api/v1/session/step-up/security-key",
                        next,
                    ))
                }
            }
            form.card method="post" action="/step-up" {
                p.note { (lang.t(Msg::StepUpNote)) }
                @if let Some(e) = error { p.error role="alert" { (e) } }
                input type="hidden" name="csrf" value=(auth.csrf_token.as_deref().unwrap_or(""));
                input type="hidden" name="next" value=(next);
                (code_input(lang))
                button type="submit" { (lang.t(Msg::Verify)) }
            }
            p { a href=(next) { (lang.t(Msg::Cancel)) } }
        },
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Next {
    next: Option<String>,
}

pub async fn step_up_page(
    headers: HeaderMap,
    auth: Authorized,
    QueryParams(q): QueryParams<Next>,
) -> Markup {
    step_up_form(
        Lang::from_headers(&headers),
        &auth,
        local_path(q.next.as_deref()),
        None,
    )
}

#[derive(Deserialize)]
pub struct StepUpForm {
    csrf: String,
    code: SecretString,
    next: Option<String>,
}

pub async fn step_up_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Form(form): Form<StepUpForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(lang);
    }
    let next = local_path(form.next.as_deref());
    let Ok(session) = auth.session() else {
        return Redirect::to("/login").into_response();
    };
    match state
        .app
        .step_up(&auth.grant, session, &form.code, &auth.meta)
        .await
    {
        Ok(outcome) => (
            [(header::SET_COOKIE, session_cookie(&outcome))],
            Redirect::to(next),
        )
            .into_response(),
        Err(AppError::SecondFactorFailed) => (
            StatusCode::UNAUTHORIZED,
            step_up_form(lang, &auth, next, Some(lang.t(Msg::SecondFactorFailed))),
        )
            .into_response(),
        Err(e @ AppError::Invalid(_)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            step_up_form(lang, &auth, next, Some(&e.to_string())),
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_paths_on_this_site_are_returned_to() {
        assert_eq!(local_path(Some("/clients/1?x=2")), "/clients/1?x=2");
        for outside in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "javascript:alert(1)",
            "/a b",
            "",
        ] {
            assert_eq!(local_path(Some(outside)), "/", "{outside}");
        }
        assert_eq!(local_path(None), "/");
    }
}
