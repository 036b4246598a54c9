//! One's own API tokens in the browser: the list, a form to issue one (a critical operation, so
//! the policy sends a stale session through step-up first), the secret shown once, and revoke.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use zf_app::identity::{NewToken, TokenView};
use zf_domain::{ClientId, TokenId};
use zf_policy::{Operation, Permission};

use super::i18n::{Lang, Msg};
use super::CsrfOnly;
use super::{csrf_ok, csrf_refused, layout, time};
use crate::extract::Authorized;
use crate::routes::AppState;
use crate::ApiError;

/// The permissions a token of this caller could carry: theirs, less what no token may do.
fn offerable(auth: &Authorized) -> Vec<Permission> {
    let Some(p) = auth.grant.principal() else {
        return Vec::new();
    };
    p.permissions()
        .iter()
        .copied()
        .filter(|perm| {
            Operation::ALL.into_iter().any(|op| {
                op.open_to_api_tokens()
                    && op.requirement() == zf_policy::Requirement::Permission(*perm)
            })
        })
        .collect()
}

fn status(lang: Lang, t: &TokenView) -> &'static str {
    match (t.revoked_at, t.active) {
        (Some(_), _) => lang.t(Msg::TokenRevoked),
        (None, true) => lang.t(Msg::TokenActive),
        (None, false) => lang.t(Msg::TokenExpired),
    }
}

fn page(lang: Lang, auth: &Authorized, tokens: &[TokenView], notice: Markup) -> Markup {
    let csrf = auth.csrf_token.as_deref().unwrap_or("");
    layout::page(
        lang,
        auth,
        lang.t(Msg::ApiTokens),
        html! {
            (notice)
            table.audit {
                thead { tr {
                    th { (lang.t(Msg::TokenName)) }
                    th { (lang.t(Msg::TokenPermissions)) }
                    th { (lang.t(Msg::Clients)) }
                    th { (lang.t(Msg::Created)) }
                    th { (lang.t(Msg::TokenExpires)) }
                    th { (lang.t(Msg::LastSeen)) }
                    th { (lang.t(Msg::Status)) }
                    th {}
                } }
                tbody {
                    @for t in tokens {
                        tr {
                            td { (t.name) }
                            td { (t.permissions.join(", ")) }
                            td { @if t.clients.is_empty() { "—" } @else { (t.clients.len()) } }
                            td { (time(t.created_at)) }
                            td { (time(t.expires_at)) }
                            td {
                                (t.last_used_at.map(time).unwrap_or_else(|| "—".into()))
                                @if let Some(from) = &t.last_used_from { " (" (from) ")" }
                            }
                            td { (status(lang, t)) }
                            td {
                                @if t.active {
                                    form.inline method="post" action={ "/tokens/" (t.id) "/revoke" } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button type="submit" { (lang.t(Msg::TokenRevoke)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { (lang.t(Msg::TokenIssue)) }
            form method="post" action="/tokens" {
                input type="hidden" name="csrf" value=(csrf);
                label { (lang.t(Msg::TokenName)) input name="name" required maxlength="80"; }
                fieldset {
                    legend { (lang.t(Msg::TokenPermissions)) }
                    @for perm in offerable(auth) {
                        label.check {
                            input type="checkbox" name="permission" value=(perm.name());
                            " " (perm.name())
                        }
                    }
                }
                label {
                    (lang.t(Msg::TokenClients))
                    textarea name="clients" rows="3" placeholder="5f0c6f8e-3b7a-4c1d-9e2f-8a6b4d3c2e1f" {}
                }
                label {
                    (lang.t(Msg::TokenDays))
                    input type="number" name="days" min="1" max="3650" value="30" required;
                }
                button type="submit" { (lang.t(Msg::TokenIssue)) }
            }
        },
    )
}

pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let tokens = state.app.tokens_own(&auth.grant).await?;
    Ok(page(lang, &auth, &tokens, html! {}))
}

/// The issue form's fields, read as pairs because the permissions repeat.
fn new_token(fields: &[(String, String)]) -> Result<NewToken, String> {
    let one = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let mut clients = Vec::new();
    for line in one("clients").split_whitespace() {
        clients.push(ClientId::parse(line).map_err(|e| e.to_string())?);
    }
    Ok(NewToken {
        name: one("name"),
        permissions: fields
            .iter()
            .filter(|(k, _)| k == "permission")
            .map(|(_, v)| v.clone())
            .collect(),
        clients,
        expires_in_days: one("days")
            .parse()
            .map_err(|_| "give the days as a whole number".to_owned())?,
    })
}

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let csrf = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .map_or("", |(_, v)| v.as_str());
    if !csrf_ok(&auth, csrf) {
        return csrf_refused(lang);
    }
    let outcome = match new_token(&fields) {
        Ok(request) => state
            .app
            .token_create(&auth.grant, request, &auth.meta)
            .await
            .map_err(|e| e.to_string()),
        Err(reason) => Err(reason),
    };
    let tokens = match state.app.tokens_own(&auth.grant).await {
        Ok(t) => t,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let notice = match &outcome {
        Ok(issued) => html! {
            div.notice {
                p { strong { (lang.t(Msg::TokenShownOnce)) } }
                p { code #token-secret { (issued.secret) } }
            }
        },
        Err(reason) => html! { p.error { (reason) } },
    };
    page(lang, &auth, &tokens, notice).into_response()
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
    let Ok(id) = TokenId::parse(&id) else {
        return ApiError::not_found().into_response();
    };
    match state
        .app
        .token_revoke_own(&auth.grant, id, &auth.meta)
        .await
    {
        Ok(()) => Redirect::to("/tokens").into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
