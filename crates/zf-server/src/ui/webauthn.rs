//! The security-key parts of the sign-in, step-up and security pages. Each control is marked
//! `data-webauthn` and hidden until `/assets/webauthn.js` shows it, so a browser without script
//! sees only what works without it (codes, removing a key).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use zf_app::identity::{KeyId, KeyName, SecurityKeyView};

use super::i18n::{Lang, Msg};
use super::{csrf_ok, csrf_refused, time, CsrfOnly};
use crate::extract::Authorized;
use crate::routes::AppState;
use crate::ApiError;

fn status_line() -> Markup {
    html! { p #webauthn-status role="status" {} }
}

/// A button that answers a ceremony with a key (`get`): second factor, step-up or passkey.
pub fn assertion_button(lang: Lang, label: Msg, options: &str, finish: &str, next: &str) -> Markup {
    html! {
        button #webauthn-get type="button" hidden data-webauthn="get" data-options=(options)
            data-finish=(finish) data-next=(next)
            data-working=(lang.t(Msg::WebauthnWorking)) data-failed=(lang.t(Msg::WebauthnFailed))
            data-unsupported=(lang.t(Msg::WebauthnUnsupported)) { (lang.t(label)) }
        (status_line())
    }
}

/// The security page's list of keys with rename and remove, and the form that adds one.
pub fn keys_section(lang: Lang, auth: &Authorized, keys: &[SecurityKeyView]) -> Markup {
    let csrf = auth.csrf_token.as_deref().unwrap_or("");
    html! {
        section.card #security-keys {
            h2 { (lang.t(Msg::SecurityKeys)) }
            p { (lang.t(Msg::SecurityKeysIntro)) }
            @if keys.is_empty() {
                p.note { (lang.t(Msg::NoSecurityKeys)) }
            } @else {
                table {
                    thead { tr {
                        th { (lang.t(Msg::KeyName)) } th { (lang.t(Msg::KeyKindLabel)) }
                        th { (lang.t(Msg::Created)) } th { (lang.t(Msg::LastUsed)) } th {}
                    } }
                    tbody {
                        @for k in keys {
                            tr.security-key {
                                td.key-name { (k.name) }
                                td { (if k.kind == "passkey" { lang.t(Msg::KindPasskey) } else { lang.t(Msg::KindSecurityKey) }) }
                                td { (time(k.created_at)) }
                                td { (k.last_used_at.map(time).unwrap_or_else(|| lang.t(Msg::Never).to_owned())) }
                                td {
                                    form.inline method="post" action=(format!("/mfa/security-keys/{}/rename", k.id)) {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input name="name" required maxlength="64" value=(k.name) aria-label=(lang.t(Msg::KeyName));
                                        button type="submit" { (lang.t(Msg::Rename)) }
                                    }
                                    form.inline method="post" action=(format!("/mfa/security-keys/{}/remove", k.id)) {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button type="submit" { (lang.t(Msg::Remove)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form #webauthn-register hidden data-webauthn="create"
                data-options="/api/v1/mfa/security-keys/options" data-finish="/api/v1/mfa/security-keys"
                data-next="/mfa" data-working=(lang.t(Msg::WebauthnWorking))
                data-failed=(lang.t(Msg::WebauthnFailed)) data-unsupported=(lang.t(Msg::WebauthnUnsupported)) {
                label for="key-name" { (lang.t(Msg::KeyName)) }
                input #key-name name="name" required maxlength="64";
                label for="key-kind" { (lang.t(Msg::KeyKindLabel)) }
                select #key-kind name="kind" {
                    option value="passkey" { (lang.t(Msg::KindPasskey)) }
                    option value="security_key" { (lang.t(Msg::KindSecurityKey)) }
                }
                button type="submit" { (lang.t(Msg::AddSecurityKey)) }
            }
            (status_line())
        }
    }
}

#[derive(Deserialize)]
pub struct RenameForm {
    csrf: String,
    name: String,
}

/// Renames one of one's own keys from the security page.
pub async fn key_rename(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Path(id): Path<String>,
    Form(form): Form<RenameForm>,
) -> Response {
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(Lang::from_headers(&headers));
    }
    let result = async {
        let id = KeyId::parse(&id)?;
        let name = KeyName::parse(&form.name)?;
        state
            .app
            .security_key_rename(&auth.grant, auth.session()?, &id, &name, &auth.meta)
            .await?;
        Ok::<_, ApiError>(())
    }
    .await;
    match result {
        Ok(()) => Redirect::to("/mfa").into_response(),
        Err(e) => e.into_response(),
    }
}

/// Removes one of one's own keys; past the step-up window the policy edge sends the browser to
/// step up first.
pub async fn key_remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(Lang::from_headers(&headers));
    }
    let result = async {
        let id = KeyId::parse(&id)?;
        state
            .app
            .security_key_remove(&auth.grant, auth.session()?, &id, &auth.meta)
            .await?;
        Ok::<_, ApiError>(())
    }
    .await;
    match result {
        Ok(()) => Redirect::to("/mfa").into_response(),
        Err(e) if e.code == "mfa_required" => Redirect::to("/step-up?next=/mfa").into_response(),
        Err(e) => e.into_response(),
    }
}
