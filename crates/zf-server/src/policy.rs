//! The one authorization choke point. Every routed request passes here before its handler:
//! the route's operation is looked up in the route table (absent means refused), the session
//! is resolved, cross-site requests that change state are refused, and
//! [`zf_policy::decide`] gives the grant a handler needs. Refusals are audited.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use zf_app::identity::{token_ref, SessionToken, TokenSecret};
use zf_app::RequestMeta;
use zf_policy::{decide, Denied};

use crate::error::REQUEST_ID;
use crate::extract::Authorized;
use crate::routes::AppState;
use crate::{ApiError, SESSION_COOKIE};

pub(crate) fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A browser tells where a request comes from; one that changes state must come from this
/// origin. Together with the SameSite=Strict cookie and the form token this closes CSRF, and
/// it also covers the sign-in form, which has no session yet.
fn cross_site(req: &Request) -> bool {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site != "same-origin" && site != "none" {
            return true;
        }
    }
    if let (Some(origin), Some(host)) = (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        return origin != format!("https://{host}");
    }
    false
}

/// The User-Agent as an audit field: printable characters only, at most 160 of them.
fn device(headers: &axum::http::HeaderMap) -> Option<String> {
    let ua = headers.get(header::USER_AGENT)?.to_str().ok()?;
    let clean: String = ua.chars().filter(|c| !c.is_control()).take(160).collect();
    (!clean.trim().is_empty()).then_some(clean)
}

/// The secret of an `Authorization: Bearer …` header, if the request has one.
fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, secret) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| secret.trim())
}

fn invalid_token() -> Response {
    let mut res = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "the API token is not valid: unknown, revoked or expired",
    )
    .into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    res
}

fn is_api(path: &str) -> bool {
    path.starts_with("/api/")
}

pub async fn enforce(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let scoped_id = request_id.clone();
    let mut res = REQUEST_ID
        .scope(request_id.clone(), async move {
            let request_id = scoped_id;
            let Some(path) = req
                .extensions()
                .get::<MatchedPath>()
                .map(|m| m.as_str().to_owned())
            else {
                return next.run(req).await; // unrouted: the fallback answers 404
            };
            let method = if req.method() == Method::HEAD {
                Method::GET
            } else {
                req.method().clone()
            };
            let Some(operation) = state.operation(&method, &path) else {
                tracing::error!(%method, %path, "route has no policy entry; refused");
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "no policy for this route",
                )
                .into_response();
            };
            if cross_site(&req) {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "cross_site",
                    "requests that change data must come from this site",
                )
                .into_response();
            }
            let network = &state.app.config().network;
            let peer = req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip());
            let address = peer.map(|peer| {
                let forwarded = req
                    .headers()
                    .get("x-forwarded-for")
                    .and_then(|v| v.to_str().ok());
                network.client_address(peer, forwarded)
            });
            let mut meta = RequestMeta {
                request_id: Some(request_id.clone()),
                source: address.map(|a| a.to_string()),
                session_ref: None,
                device: device(req.headers()),
            };
            // An API token stands instead of a session, on the API only; a token that is not
            // (or no longer) valid is refused outright rather than ignored.
            let bearer = is_api(&path).then(|| bearer(req.headers())).flatten();
            let token_principal = match bearer {
                Some(presented) => {
                    let Some(secret) = TokenSecret::from_presented(presented) else {
                        return invalid_token();
                    };
                    let what = format!("{} {}", req.method(), req.uri().path());
                    match state.app.resolve_api_token(&secret, &what, &meta).await {
                        Ok(Some(p)) => Some(p),
                        Ok(None) => return invalid_token(),
                        Err(e) => return ApiError::from(e).into_response(),
                    }
                }
                None => None,
            };
            let token = match &token_principal {
                Some(_) => None,
                None => {
                    cookie(req.headers(), SESSION_COOKIE).and_then(SessionToken::from_presented)
                }
            };
            let session = match &token {
                Some(t) => match state.app.resolve_session(t).await {
                    Ok(s) => s,
                    Err(e) => return ApiError::from(e).into_response(),
                },
                None => None,
            };
            meta.session_ref = match (&session, &token_principal) {
                (Some(s), _) => Some(s.session_ref.clone()),
                (None, Some(p)) => p.token.as_ref().map(|t| token_ref(t.id)),
                (None, None) => None,
            };
            let principal = session
                .as_ref()
                .map(|s| &s.principal)
                .or(token_principal.as_ref());
            let decision = decide(principal, operation).and_then(|grant| {
                match (grant.principal(), address, operation.requirement()) {
                    // Data access is confined; signing out or changing one's password is not.
                    (Some(p), Some(a), zf_policy::Requirement::Permission(_))
                        if !network.allows(p.role, a) =>
                    {
                        Err(Denied::Network {
                            role: p.role_name().to_owned(),
                        })
                    }
                    _ => Ok(grant),
                }
            });
            match decision {
                Ok(grant) => {
                    req.extensions_mut().insert(Authorized {
                        grant,
                        csrf_token: session
                            .as_ref()
                            .and(token.as_ref())
                            .map(SessionToken::csrf_token),
                        session,
                        meta,
                    });
                    next.run(req).await
                }
                Err(denied) => {
                    if principal.is_some() {
                        if let Err(e) = state
                            .app
                            .audit_denied(principal, operation, &denied.to_string(), &meta)
                            .await
                        {
                            return ApiError::from(e).into_response();
                        }
                    }
                    let back = return_path(&state, &req, &path);
                    refuse(&state, &path, &back, &denied)
                }
            }
        })
        .await;
    if let Ok(v) = request_id.parse() {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

/// The page a browser returns to once a refusal is overcome: the page itself for a GET, and
/// for a form the nearest page above it (`/clients/{id}` for `/clients/{id}/reveal`).
fn return_path(state: &AppState, req: &Request, pattern: &str) -> String {
    let path = req.uri().path();
    if req.method() == Method::GET {
        return req
            .uri()
            .path_and_query()
            .map_or(path, |p| p.as_str())
            .to_owned();
    }
    // A form posted to a page's own address (`POST /tokens`) returns to that page.
    if state.operation(&Method::GET, pattern).is_some() {
        return path.to_owned();
    }
    let pattern: Vec<&str> = pattern.split('/').collect();
    let concrete: Vec<&str> = path.split('/').collect();
    if pattern.len() == concrete.len() {
        for n in (2..pattern.len()).rev() {
            if state
                .operation(&Method::GET, &pattern[..n].join("/"))
                .is_some()
            {
                return concrete[..n].join("/");
            }
        }
    }
    "/".to_owned()
}

/// API callers get a JSON error; browsers are sent where they can continue.
fn refuse(state: &AppState, path: &str, back: &str, denied: &Denied) -> Response {
    if is_api(path) {
        let mut error = ApiError::from_denied(denied);
        if let Some(c) = error.challenge.as_mut().filter(|c| c.kind == "step_up") {
            c.max_age_seconds = Some(state.app.config().mfa.step_up_window_ms() / 1000);
        }
        return error.into_response();
    }
    match denied {
        Denied::NotSignedIn => Redirect::to("/login").into_response(),
        Denied::PasswordChangeRequired => Redirect::to("/password").into_response(),
        Denied::SecondFactorPending { .. } => Redirect::to("/login/second-factor").into_response(),
        Denied::MfaEnrolmentRequired
        | Denied::StepUpRequired {
            enrolled: false, ..
        } => Redirect::to("/mfa").into_response(),
        Denied::StepUpRequired { enrolled: true, .. } => {
            let next: String = url_encode(back);
            Redirect::to(&format!("/step-up?next={next}")).into_response()
        }
        Denied::Forbidden { .. } | Denied::Network { .. } | Denied::NotForToken { .. } => {
            crate::ui::forbidden_page(denied).into_response()
        }
    }
}

/// Percent-encodes a query value.
pub(crate) fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
