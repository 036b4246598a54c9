//! The second factor in the browser: setting up an authenticator with a QR code, the recovery
//! codes shown once, and verifying again before a critical operation (step-up).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use secrecy::SecretString;
use serde::Deserialize;
use zeroize::Zeroizing;
use zf_app::identity::{CodeSent, SecondFactorMethod, TotpEnrolment};
use zf_app::AppError;
use zf_store::OtpChannel;

use super::i18n::{Lang, Msg};
use super::CsrfOnly;
use super::{csrf_ok, csrf_refused, layout, qr, time};
use crate::api::session::session_cookie;
use crate::extract::{Authorized, QueryParams};
use crate::routes::AppState;
use crate::ApiError;

/// The code field, with a choice of method when the user has several.
pub(crate) fn code_input(
    lang: Lang,
    methods: &[SecondFactorMethod],
    chosen: Option<SecondFactorMethod>,
) -> Markup {
    html! {
        @if methods.len() > 1 {
            label for="method" { (lang.t(Msg::Method)) }
            select #method name="method" {
                @for m in methods {
                    option value=(m.as_str()) selected[Some(*m) == chosen] { (method_name(lang, *m)) }
                }
            }
        } @else if let Some(m) = methods.first() {
            input type="hidden" name="method" value=(m.as_str());
        }
        label for="code" { (lang.t(Msg::EnterCode)) }
        input #code name="code" required autocomplete="one-time-code" inputmode="text"
            minlength="6" maxlength="16" autofocus;
    }
}

fn method_name(lang: Lang, m: SecondFactorMethod) -> &'static str {
    match (m, lang) {
        (SecondFactorMethod::Totp, Lang::Zh) => "身份验证器",
        (SecondFactorMethod::Totp, Lang::En) => "Authenticator app",
        (SecondFactorMethod::RecoveryCode, Lang::Zh) => "恢复码",
        (SecondFactorMethod::RecoveryCode, Lang::En) => "Recovery code",
        (SecondFactorMethod::Email, Lang::Zh) => "邮件验证码",
        (SecondFactorMethod::Email, Lang::En) => "Code by e-mail",
        (SecondFactorMethod::Sms, Lang::Zh) => "短信验证码",
        (SecondFactorMethod::Sms, Lang::En) => "Code by SMS",
    }
}

/// A button per code channel the user may ask a code from, posting to `action`.
pub(crate) fn send_code_forms(
    lang: Lang,
    csrf: &str,
    action: &str,
    next: Option<&str>,
    methods: &[SecondFactorMethod],
    sent: Option<&CodeSent>,
) -> Markup {
    html! {
        @if let Some(s) = sent {
            p.note role="status" { (lang.t(Msg::CodeSentTo)) " " (s.to) }
        }
        @for m in methods.iter().filter(|m| m.channel().is_some()) {
            form.inline method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="method" value=(m.as_str());
                @if let Some(n) = next { input type="hidden" name="next" value=(n); }
                button type="submit" {
                    (lang.t(if *m == SecondFactorMethod::Sms { Msg::SendCodeBySms } else { Msg::SendCodeByEmail }))
                }
            }
        }
    }
}

/// The registered addresses, and the forms to add or confirm one.
async fn code_section(state: &AppState, lang: Lang, auth: &Authorized) -> Result<Markup, ApiError> {
    let session = auth.session()?;
    let channels = state.app.code_channels();
    if channels.is_empty() {
        return Ok(html! {});
    }
    let accepted = state.app.config().mfa.accepts_codes(session.principal.role);
    let factors = state.app.code_factors(session).await?;
    let pending = factors.iter().any(|f| f.pending.is_some());
    let csrf = auth.csrf_token.as_deref().unwrap_or("");
    Ok(html! {
        h2 { (lang.t(Msg::CodeFactors)) }
        p.note { (lang.t(Msg::CodeFactorNote)) }
        @if !accepted {
            p { (lang.t(Msg::CodesNotForRole)) }
        } @else {
            @if !factors.is_empty() {
                dl.card {
                    @for f in &factors {
                        dt { (if f.channel == "sms" { lang.t(Msg::MobileNumber) } else { lang.t(Msg::EmailAddress) }) }
                        dd {
                            @if let Some(a) = &f.address { (a) }
                            @if let Some(p) = &f.pending { " " (p) " (" (lang.t(Msg::PendingAddress)) ")" }
                        }
                    }
                }
            }
            @if pending {
                form.card method="post" action="/mfa/code/confirm" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="confirm-code" { (lang.t(Msg::EnterCode)) }
                    input #confirm-code name="code" required autocomplete="one-time-code"
                        inputmode="numeric" pattern="[0-9]{6}" maxlength="6";
                    button type="submit" { (lang.t(Msg::Confirm)) }
                }
            }
            @for c in &channels {
                form.card method="post" action="/mfa/code" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="channel" value=(c.as_str());
                    @let (label, kind) = match c {
                        OtpChannel::Email => (lang.t(Msg::EmailAddress), "email"),
                        OtpChannel::Sms => (lang.t(Msg::MobileNumber), "tel"),
                    };
                    label for=(format!("address-{}", c.as_str())) { (label) }
                    input id=(format!("address-{}", c.as_str())) name="address" type=(kind) required maxlength="254";
                    button type="submit" { (lang.t(Msg::RegisterAddress)) }
                }
            }
        }
    })
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

/// A refusal the user can correct (a wrong code, a send throttled or not delivered) shown on
/// the security page with its reason and status; any other error as the error it is.
async fn on_mfa_page(state: &AppState, lang: Lang, auth: &Authorized, e: AppError) -> Response {
    match e {
        AppError::Invalid(_) | AppError::RateLimited(_) | AppError::Unavailable(_) => {
            let message = e.to_string();
            let status = ApiError::from(e).status;
            match mfa_page(state, lang, auth, Some(&message)).await {
                Ok(page) => (status, page).into_response(),
                Err(e) => e.into_response(),
            }
        }
        e => ApiError::from(e).into_response(),
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
    let codes = code_section(state, lang, auth).await?;
    Ok(layout::page_webauthn(
        lang,
        auth,
        lang.t(Msg::Security),
        html! {
            @if let (Some(e), None) = (error, &pending) { p.error role="alert" { (e) } }
            @if status.enrolled {
                dl.card {
                    dt { (lang.t(Msg::SecondFactor)) } dd { (lang.t(Msg::MfaEnrolled)) }
                    dt { (lang.t(Msg::Created)) } dd { (status.confirmed_at.map(time).unwrap_or_default()) }
                    dt { (lang.t(Msg::RecoveryCodesLeft)) } dd { (status.recovery_codes_left) }
                }
                form.card method="post" action="/mfa/recovery-codes" {
                    input type="hidden" name="csrf" value=(csrf);
                    p { (lang.t(Msg::NewRecoveryCodesNote)) }
                    button type="submit" { (lang.t(Msg::NewRecoveryCodes)) }
                }
                p.note { (lang.t(Msg::MfaResetNote)) }
            } @else {
                // Any second factor the policy accepts for the role (a security key, a confirmed
                // code by e-mail or SMS) meets the requirement as well as an authenticator app.
                @if status.required && !session.principal.factors.any() { p.note role="alert" { (lang.t(Msg::MfaRequiredForRole)) } }
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
            (codes)
            p { a href="/sessions" { (lang.t(Msg::Sessions)) } }
        },
    ))
}

#[derive(Deserialize)]
pub struct AddressForm {
    csrf: String,
    channel: String,
    address: String,
}

/// Registers an address and sends it a confirmation code; the page then asks for the code.
/// Replacing a second factor asks for a fresh one first (step-up, then back here).
pub async fn code_begin(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Form(form): Form<AddressForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(lang);
    }
    let Ok(session) = auth.session() else {
        return Redirect::to("/login").into_response();
    };
    let Some(channel) = OtpChannel::parse(&form.channel) else {
        return ApiError::bad_request("channel must be email or sms").into_response();
    };
    let outcome = state
        .app
        .code_factor_begin(&auth.grant, session, channel, &form.address, &auth.meta)
        .await;
    match outcome {
        Ok(_) => Redirect::to("/mfa").into_response(),
        Err(AppError::Denied(zf_policy::Denied::StepUpRequired { .. })) => {
            Redirect::to("/step-up?next=/mfa").into_response()
        }
        Err(e) => on_mfa_page(&state, lang, &auth, e).await,
    }
}

/// Confirms the registered address with its code; the session continues under a new id.
pub async fn code_confirm(
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
        .code_factor_confirm(&auth.grant, session, &form.code, &auth.meta)
        .await
    {
        Ok(outcome) => (
            [(header::SET_COOKIE, session_cookie(&outcome))],
            Redirect::to("/mfa"),
        )
            .into_response(),
        Err(e) => on_mfa_page(&state, lang, &auth, e).await,
    }
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
        Ok(activated) => (
            [(header::SET_COOKIE, session_cookie(&activated.session))],
            recovery_codes_page(lang, &activated.recovery_codes),
        )
            .into_response(),
        Err(e) => on_mfa_page(&state, lang, &auth, e).await,
    }
}

/// Recovery codes, shown this once.
fn recovery_codes_page(lang: Lang, codes: &[Zeroizing<String>]) -> Markup {
    layout::bare(
        lang,
        lang.t(Msg::RecoveryCodes),
        html! {
            div.card {
                p.note role="alert" { (lang.t(Msg::RecoveryCodesOnce)) }
                ol.recovery-codes {
                    @for c in codes { li { code { (c.as_str()) } } }
                }
                p { a href="/" { (lang.t(Msg::Continue)) } }
            }
        },
    )
}

/// Replaces the recovery codes and shows the new set once. The policy has already sent a
/// session without a fresh second factor through step-up.
pub async fn regenerate_recovery(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Form(form): Form<CsrfOnly>,
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
        .recovery_codes_regenerate(&auth.grant, session, &auth.meta)
        .await
    {
        Ok(codes) => recovery_codes_page(lang, &codes).into_response(),
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

struct StepUpView<'a> {
    next: &'a str,
    error: Option<&'a str>,
    methods: Vec<SecondFactorMethod>,
    chosen: Option<SecondFactorMethod>,
    sent: Option<CodeSent>,
}

/// The methods the step-up form accepts, from the user's factors (a security key has its own
/// button).
fn methods_of(auth: &Authorized) -> Vec<SecondFactorMethod> {
    auth.session
        .as_ref()
        .map(|s| SecondFactorMethod::offered(s.principal.factors))
        .unwrap_or_default()
}

fn step_up_form(lang: Lang, auth: &Authorized, v: &StepUpView<'_>) -> Markup {
    let csrf = auth.csrf_token.as_deref().unwrap_or("");
    let has_key = auth
        .session
        .as_ref()
        .is_some_and(|s| s.principal.factors.security_key);
    let next = v.next;
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
                @if let Some(e) = v.error { p.error role="alert" { (e) } }
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="next" value=(v.next);
                (code_input(lang, &v.methods, v.chosen))
                button type="submit" { (lang.t(Msg::Verify)) }
            }
            (send_code_forms(lang, csrf, "/step-up/code", Some(v.next), &v.methods, v.sent.as_ref()))
            p { a href=(v.next) { (lang.t(Msg::Cancel)) } }
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
    let view = StepUpView {
        next: local_path(q.next.as_deref()),
        error: None,
        methods: methods_of(&auth),
        chosen: None,
        sent: None,
    };
    step_up_form(Lang::from_headers(&headers), &auth, &view)
}

#[derive(Deserialize)]
pub struct StepUpForm {
    csrf: String,
    code: SecretString,
    next: Option<String>,
    method: Option<SecondFactorMethod>,
}

#[derive(Deserialize)]
pub struct SendCodeForm {
    pub(crate) csrf: String,
    pub(crate) method: SecondFactorMethod,
    pub(crate) next: Option<String>,
}

/// Sends a step-up code and shows the form again with that method chosen.
pub async fn step_up_send_code(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Form(form): Form<SendCodeForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(lang);
    }
    let Ok(session) = auth.session() else {
        return Redirect::to("/login").into_response();
    };
    let outcome = state
        .app
        .second_factor_code_send(session, form.method, &auth.meta)
        .await;
    let mut view = StepUpView {
        next: local_path(form.next.as_deref()),
        error: None,
        methods: methods_of(&auth),
        chosen: Some(form.method),
        sent: None,
    };
    match outcome {
        Ok(sent) => {
            view.sent = Some(sent);
            step_up_form(lang, &auth, &view).into_response()
        }
        Err(e @ (AppError::Invalid(_) | AppError::RateLimited(_) | AppError::Unavailable(_))) => {
            let message = e.to_string();
            let status = ApiError::from(e).status;
            view.error = Some(&message);
            (status, step_up_form(lang, &auth, &view)).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
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
    let view = |error| StepUpView {
        next,
        error,
        methods: Vec::new(),
        chosen: form.method,
        sent: None,
    };
    let methods = methods_of(&auth);
    match state
        .app
        .step_up_with(&auth.grant, session, form.method, &form.code, &auth.meta)
        .await
    {
        Ok(outcome) => (
            [(header::SET_COOKIE, session_cookie(&outcome))],
            Redirect::to(next),
        )
            .into_response(),
        Err(AppError::SecondFactorFailed) => (
            StatusCode::UNAUTHORIZED,
            step_up_form(
                lang,
                &auth,
                &StepUpView {
                    methods,
                    ..view(Some(lang.t(Msg::SecondFactorFailed)))
                },
            ),
        )
            .into_response(),
        Err(e @ AppError::Invalid(_)) => {
            let message = e.to_string();
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                step_up_form(
                    lang,
                    &auth,
                    &StepUpView {
                        methods,
                        ..view(Some(&message))
                    },
                ),
            )
                .into_response()
        }
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
