use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use secrecy::SecretString;
use serde::Deserialize;

use super::i18n::{Lang, Msg};
use super::CsrfOnly;
use super::{csrf_ok, csrf_refused, layout};
use crate::api::session::{clear_cookie, session_cookie};
use crate::extract::Authorized;
use crate::routes::AppState;
use crate::ApiError;
use zf_app::identity::{CodeSent, SecondFactorMethod};

fn login_form(lang: Lang, error: Option<&str>, username: &str) -> Markup {
    layout::bare_webauthn(
        lang,
        lang.t(Msg::SignIn),
        html! {
            form.card method="post" action="/login" {
                @if let Some(e) = error { p.error role="alert" { (e) } }
                label for="username" { (lang.t(Msg::Username)) }
                input #username name="username" autocomplete="username" required value=(username);
                label for="password" { (lang.t(Msg::Password)) }
                input #password name="password" type="password" autocomplete="current-password" required;
                button type="submit" { (lang.t(Msg::SignIn)) }
            }
            div.card {
                (super::webauthn::assertion_button(
                    lang,
                    Msg::SignInWithPasskey,
                    "/api/v1/session/passkey/options",
                    "/api/v1/session/passkey",
                    "/clients",
                ))
            }
        },
    )
}

pub async fn login_page(headers: HeaderMap, auth: Authorized) -> Response {
    if auth.session.is_some() {
        return Redirect::to("/clients").into_response();
    }
    login_form(Lang::from_headers(&headers), None, "").into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: SecretString,
}

pub async fn login_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    match state
        .app
        .login(&form.username, form.password, &auth.meta)
        .await
    {
        Ok(outcome) => {
            let next = if outcome.second_factor_pending() {
                "/login/second-factor"
            } else if outcome.principal.must_change_password {
                "/password"
            } else {
                "/clients"
            };
            (
                [(header::SET_COOKIE, session_cookie(&outcome))],
                Redirect::to(next),
            )
                .into_response()
        }
        Err(zf_app::AppError::LoginFailed) => (
            StatusCode::UNAUTHORIZED,
            login_form(lang, Some(lang.t(Msg::LoginFailed)), &form.username),
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(Lang::from_headers(&headers));
    }
    if let Some(session) = &auth.session {
        if let Err(e) = state.app.logout(&auth.grant, session, &auth.meta).await {
            return ApiError::from(e).into_response();
        }
    }
    (
        [(header::SET_COOKIE, clear_cookie())],
        Redirect::to("/login"),
    )
        .into_response()
}

fn password_form(lang: Lang, auth: &Authorized, error: Option<&str>) -> Markup {
    let must = auth
        .session
        .as_ref()
        .is_some_and(|s| s.principal.must_change_password);
    layout::page(
        lang,
        auth,
        lang.t(Msg::ChangePassword),
        html! {
            form.card method="post" action="/password" {
                @if must { p.note { (lang.t(Msg::MustChangePassword)) } }
                @if let Some(e) = error { p.error role="alert" { (e) } }
                input type="hidden" name="csrf" value=(auth.csrf_token.as_deref().unwrap_or(""));
                // Lets password managers file the new password under the right account.
                input type="text" name="username" autocomplete="username" hidden readonly
                    value=(auth.session.as_ref().map_or("", |s| s.principal.username.as_str()));
                label for="current_password" { (lang.t(Msg::CurrentPassword)) }
                input #current_password name="current_password" type="password" autocomplete="current-password" required;
                label for="new_password" { (lang.t(Msg::NewPassword)) }
                input #new_password name="new_password" type="password" autocomplete="new-password" minlength="12" required;
                button type="submit" { (lang.t(Msg::ChangePassword)) }
            }
        },
    )
}

pub async fn password_page(headers: HeaderMap, auth: Authorized) -> Markup {
    password_form(Lang::from_headers(&headers), &auth, None)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    current_password: SecretString,
    new_password: SecretString,
}

pub async fn password_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Form(form): Form<PasswordForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(lang);
    }
    let Some(session) = &auth.session else {
        return Redirect::to("/login").into_response();
    };
    match state
        .app
        .change_own_password(
            &auth.grant,
            session,
            form.current_password,
            form.new_password,
            &auth.meta,
        )
        .await
    {
        Ok(()) => Redirect::to("/clients").into_response(),
        // A second factor first, then back to this form.
        Err(zf_app::AppError::Denied(zf_policy::Denied::StepUpRequired { .. })) => {
            Redirect::to("/step-up?next=/password").into_response()
        }
        Err(e @ (zf_app::AppError::Invalid(_) | zf_app::AppError::Password(_))) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            password_form(lang, &auth, Some(&e.to_string())),
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

struct Waiting<'a> {
    error: Option<&'a str>,
    methods: Vec<SecondFactorMethod>,
    chosen: Option<SecondFactorMethod>,
    sent: Option<CodeSent>,
}

/// The methods a waiting sign-in may finish with, nothing chosen or sent yet.
fn waiting(auth: &Authorized) -> Waiting<'static> {
    let methods = auth
        .session
        .as_ref()
        .map(|s| SecondFactorMethod::offered(s.principal.factors))
        .unwrap_or_default();
    Waiting {
        error: None,
        methods,
        chosen: None,
        sent: None,
    }
}

fn second_factor_form(lang: Lang, auth: &Authorized, w: &Waiting<'_>) -> Markup {
    let csrf = auth.csrf_token.as_deref().unwrap_or("");
    let factors = auth
        .session
        .as_ref()
        .map(|s| s.principal.factors)
        .unwrap_or_default();
    layout::bare_webauthn(
        lang,
        lang.t(Msg::SecondFactor),
        html! {
            @if factors.security_key {
                div.card {
                    (super::webauthn::assertion_button(
                        lang,
                        Msg::UseSecurityKey,
                        "/api/v1/session/second-factor/security-key/options",
                        "/api/v1/session/second-factor/security-key",
                        "/",
                    ))
                }
            }
            form.card method="post" action="/login/second-factor" {
                @if let Some(e) = w.error { p.error role="alert" { (e) } }
                input type="hidden" name="csrf" value=(csrf);
                (super::mfa::code_input(lang, &w.methods, w.chosen))
                button type="submit" { (lang.t(Msg::Verify)) }
            }
            (super::mfa::send_code_forms(lang, csrf, "/login/second-factor/code", None, &w.methods, w.sent.as_ref()))
            form.inline method="post" action="/logout" {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { (lang.t(Msg::Cancel)) }
            }
        },
    )
}

/// The second step of a sign-in. A session that is not waiting for one goes home.
pub async fn second_factor_page(headers: HeaderMap, auth: Authorized) -> Response {
    if !is_waiting(&auth) {
        return Redirect::to("/").into_response();
    }
    let w = waiting(&auth);
    second_factor_form(Lang::from_headers(&headers), &auth, &w).into_response()
}

fn is_waiting(auth: &Authorized) -> bool {
    auth.session.as_ref().is_some_and(|s| {
        s.principal.authentication == zf_policy::Authentication::SecondFactorPending
    })
}

#[derive(Deserialize)]
pub struct SecondFactorForm {
    csrf: String,
    code: SecretString,
    method: Option<SecondFactorMethod>,
}

/// Sends a sign-in code by e-mail or SMS and shows the form again with that method chosen.
pub async fn second_factor_send_code(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Form(form): Form<super::mfa::SendCodeForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(lang);
    }
    let (true, Some(session)) = (is_waiting(&auth), &auth.session) else {
        return Redirect::to("/").into_response();
    };
    let outcome = state
        .app
        .second_factor_code_send(session, form.method, &auth.meta)
        .await;
    let mut w = waiting(&auth);
    w.chosen = Some(form.method);
    match outcome {
        Ok(sent) => {
            w.sent = Some(sent);
            second_factor_form(lang, &auth, &w).into_response()
        }
        Err(
            e @ (zf_app::AppError::Invalid(_)
            | zf_app::AppError::RateLimited(_)
            | zf_app::AppError::Unavailable(_)),
        ) => {
            let message = e.to_string();
            let status = ApiError::from(e).status;
            let w = Waiting {
                error: Some(&message),
                ..w
            };
            (status, second_factor_form(lang, &auth, &w)).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

pub async fn second_factor_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Form(form): Form<SecondFactorForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(lang);
    }
    let Some(session) = &auth.session else {
        return Redirect::to("/login").into_response();
    };
    match state
        .app
        .complete_sign_in_with(session, form.method, &form.code, &auth.meta)
        .await
    {
        Ok(outcome) => {
            let next = if outcome.principal.must_change_password {
                "/password"
            } else {
                "/"
            };
            (
                [(header::SET_COOKIE, session_cookie(&outcome))],
                Redirect::to(next),
            )
                .into_response()
        }
        Err(zf_app::AppError::SecondFactorFailed) => {
            let w = Waiting {
                error: Some(lang.t(Msg::SecondFactorFailed)),
                chosen: form.method,
                ..waiting(&auth)
            };
            (
                StatusCode::UNAUTHORIZED,
                second_factor_form(lang, &auth, &w),
            )
                .into_response()
        }
        // Nothing waits for a second factor on this session: it is signed in already.
        Err(zf_app::AppError::Invalid(_)) => Redirect::to("/").into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
