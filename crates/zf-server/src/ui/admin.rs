//! The security administrator's screens: users with their effective access and job transfers,
//! and access review campaigns.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use zf_app::reviews::ReviewDecision;
use zf_domain::Username;
use zf_policy::Role;

use super::i18n::{Lang, Msg};
use super::{csrf_ok, csrf_refused, layout, time};
use crate::extract::Authorized;
use crate::routes::AppState;
use crate::ApiError;

const CLIENT_ROLES: [Role; 4] = [
    Role::Supervisor,
    Role::Accountant,
    Role::Auditor,
    Role::Sales,
];

fn users_page(
    lang: Lang,
    auth: &Authorized,
    (rows, custom): &UsersAndRoles,
    error: Option<&str>,
) -> Markup {
    let csrf = auth.csrf_token.clone().unwrap_or_default();
    layout::page(
        lang,
        auth,
        lang.t(Msg::Users),
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            table.audit {
                thead { tr {
                    th { (lang.t(Msg::Username)) }
                    th { (lang.t(Msg::Role)) }
                    th { (lang.t(Msg::Team)) }
                    th { (lang.t(Msg::ClientScope)) }
                    th { (lang.t(Msg::LegalRepIdNumber)) }
                    th { (lang.t(Msg::Network)) }
                    th { (lang.t(Msg::ChangeRole)) }
                    th { (lang.t(Msg::Sessions)) }
                } }
                tbody {
                    @for u in rows {
                        tr {
                            td { (u.username) br; a.note href={ "/users/" (u.username) "/history" } { (lang.t(Msg::PermissionHistory)) } }
                            td { (u.role_label) br; span.note { (u.permissions.join(", ")) } }
                            td {
                                @if Role::parse(&u.base_role).is_ok_and(|r| !r.is_administrator()) {
                                    form.inline method="post" action={ "/users/" (u.username) "/team" } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input name="team" maxlength="100" value=(u.team.as_deref().unwrap_or(""));
                                        " "
                                        input name="reason" required placeholder=(lang.t(Msg::Reason)) maxlength="200";
                                        " "
                                        button type="submit" { (lang.t(Msg::ChangeTeam)) }
                                    }
                                }
                            }
                            td { (u.client_scope) }
                            td { (u.fields.get("legal_rep_id_number").map_or("", String::as_str)) }
                            td { @if u.network.is_empty() { "*" } @else { (u.network.join(", ")) } }
                            td {
                                @if Role::parse(&u.base_role).is_ok_and(|r| !r.is_administrator()) {
                                    form.inline method="post" action={ "/users/" (u.username) "/role" } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        select name="role" {
                                            @for r in CLIENT_ROLES {
                                                option value=(r.as_str()) selected[r.as_str() == u.role] { (r.label_zh()) }
                                            }
                                            @for c in custom {
                                                option value=(c.name) selected[c.name == u.role] { (c.label) }
                                            }
                                        }
                                        " "
                                        input name="reason" required placeholder=(lang.t(Msg::Reason)) maxlength="200";
                                        " "
                                        button type="submit" { (lang.t(Msg::ChangeRole)) }
                                    }
                                }
                            }
                            td {
                                form.inline method="post" action={ "/users/" (u.username) "/sessions/revoke" } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input name="reason" required placeholder=(lang.t(Msg::Reason)) maxlength="200";
                                    " "
                                    button type="submit" { (lang.t(Msg::EndAllSessions)) }
                                }
                            }
                        }
                    }
                }
            }
            p { a href="/reviews" { (lang.t(Msg::Reviews)) } }
        },
    )
}

/// Every enabled user's effective access, and the custom roles they may be moved to.
type UsersAndRoles = (
    Vec<zf_app::identity::EffectivePermissions>,
    Vec<zf_app::identity::CustomRoleView>,
);

async fn all_users(state: &AppState) -> Result<UsersAndRoles, ApiError> {
    Ok((
        state.app.users_effective_permissions().await?,
        state.app.custom_roles().await?,
    ))
}

pub async fn users(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    Ok(users_page(lang, &auth, &all_users(&state).await?, None))
}

#[derive(Deserialize)]
pub struct RoleForm {
    csrf: String,
    role: String,
    reason: String,
}

pub async fn change_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Path(username): Path<String>,
    Form(form): Form<RoleForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(lang);
    }
    let result = match Username::parse(&username) {
        Ok(u) => {
            state
                .app
                .change_role(&auth.grant, &u, &form.role, &form.reason, &auth.meta)
                .await
        }
        Err(e) => Err(zf_app::AppError::Invalid(e.to_string())),
    };
    users_after(state, lang, &auth, result).await
}

#[derive(Deserialize)]
pub struct TeamForm {
    csrf: String,
    team: String,
    reason: String,
}

/// Moves a user to another team; an empty team takes them out of every team.
pub async fn change_team(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Path(username): Path<String>,
    Form(form): Form<TeamForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(lang);
    }
    let result = match Username::parse(&username) {
        Ok(u) => {
            state
                .app
                .change_team(&auth.grant, &u, Some(&form.team), &form.reason, &auth.meta)
                .await
        }
        Err(e) => Err(zf_app::AppError::Invalid(e.to_string())),
    };
    users_after(state, lang, &auth, result).await
}

/// Back to the users page after a change, or the page again with the refusal.
async fn users_after(
    state: AppState,
    lang: Lang,
    auth: &Authorized,
    result: Result<(), zf_app::AppError>,
) -> Response {
    match result {
        Ok(()) => Redirect::to("/users").into_response(),
        Err(e @ (zf_app::AppError::Invalid(_) | zf_app::AppError::Conflict(_))) => {
            match all_users(&state).await {
                Ok(rows) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    users_page(lang, auth, &rows, Some(&e.to_string())),
                )
                    .into_response(),
                Err(e) => e.into_response(),
            }
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct ReasonForm {
    csrf: String,
    reason: String,
}

/// Ends every session of a user; they must sign in again.
pub async fn revoke_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Path(username): Path<String>,
    Form(form): Form<ReasonForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(lang);
    }
    let result = match Username::parse(&username) {
        Ok(u) => {
            state
                .app
                .revoke_user_sessions(&auth.grant, &u, &form.reason, &auth.meta)
                .await
        }
        Err(e) => Err(zf_app::AppError::Invalid(e.to_string())),
    };
    let (status, message) = match result {
        Ok(()) => (StatusCode::OK, lang.t(Msg::SessionsEnded).to_owned()),
        Err(e @ zf_app::AppError::Invalid(_)) => (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        Err(e) => return ApiError::from(e).into_response(),
    };
    match all_users(&state).await {
        Ok(rows) => (status, users_page(lang, &auth, &rows, Some(&message))).into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn reviews(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let mut campaigns = state
        .app
        .store()
        .review_campaigns()
        .await
        .map_err(zf_app::AppError::from)?;
    campaigns.reverse();
    let csrf = auth.csrf_token.clone().unwrap_or_default();
    Ok(layout::page(
        lang,
        &auth,
        lang.t(Msg::Reviews),
        html! {
            form.card method="post" action="/reviews" {
                input type="hidden" name="csrf" value=(csrf);
                label for="due_days" { (lang.t(Msg::DueDays)) }
                input #due_days name="due_days" type="number" min="1" max="90" value="14";
                button type="submit" { (lang.t(Msg::StartReview)) }
            }
            ul {
                @for c in &campaigns {
                    li { a href={ "/reviews/" (c.id) } { (time(c.created_at_ms)) } " → " (time(c.due_at_ms)) " · " (c.created_by) }
                }
            }
        },
    ))
}

#[derive(Deserialize)]
pub struct StartForm {
    csrf: String,
    due_days: u32,
}

pub async fn start_review(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Form(form): Form<StartForm>,
) -> Response {
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(Lang::from_headers(&headers));
    }
    match state
        .app
        .review_start_by(&auth.grant, form.due_days, &auth.meta)
        .await
    {
        Ok(v) => Redirect::to(&format!("/reviews/{}", v.campaign.id)).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

pub async fn review(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Path(id): Path<String>,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let view = state.app.review_view(&id).await?;
    let answer_at = format!("/reviews/{}/lines/", view.campaign.id);
    Ok(layout::page(
        lang,
        &auth,
        lang.t(Msg::Reviews),
        review_table(lang, &auth, &view, &answer_at),
    ))
}

/// A campaign's lines with a certify/revoke form on each open one, posted to
/// `answer_at` followed by the username.
fn review_table(
    lang: Lang,
    auth: &Authorized,
    view: &zf_app::reviews::ReviewView,
    answer_at: &str,
) -> Markup {
    let csrf = auth.csrf_token.clone().unwrap_or_default();
    html! {
        p.note { (time(view.campaign.created_at_ms)) " → " (time(view.campaign.due_at_ms)) }
        table.audit {
            thead { tr {
                th { (lang.t(Msg::Username)) } th { (lang.t(Msg::Role)) } th { (lang.t(Msg::ClientScope)) }
                th { (lang.t(Msg::Status)) } th {}
            } }
            tbody {
                @for l in &view.lines {
                    tr {
                        td { (l.username) @if view.overdue.contains(&l.username) { " " strong.error { (lang.t(Msg::Overdue)) } } }
                        td { (l.role) br; span.note { (l.permissions) } }
                        td { (l.client_scope) }
                        td { (l.decision.as_deref().unwrap_or("—")) @if let Some(by) = &l.decided_by { br; span.note { (by) ": " (l.reason.as_deref().unwrap_or("")) } } }
                        td {
                            @if l.decision.is_none() {
                                form.inline method="post" action={ (answer_at) (l.username) } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input name="reason" required placeholder=(lang.t(Msg::Reason)) maxlength="200";
                                    " "
                                    button type="submit" name="decision" value="certify" { (lang.t(Msg::Certify)) }
                                    " "
                                    button type="submit" name="decision" value="revoke" { (lang.t(Msg::Revoke)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A supervisor's part of the newest review: their team's members.
pub async fn team_review(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let body = match state.app.review_latest().await? {
        None => html! { p { "—" } },
        Some(id) => match state.app.review_team_view(&auth.grant, &id).await {
            Ok(view) => review_table(lang, &auth, &view, &format!("/team-review/{id}/")),
            Err(zf_app::AppError::Invalid(e)) => html! { p.note { (e) } },
            Err(e) => return Err(e.into()),
        },
    };
    Ok(layout::page(lang, &auth, lang.t(Msg::Reviews), body))
}

#[derive(Deserialize)]
pub struct AnswerForm {
    csrf: String,
    decision: ReviewDecision,
    reason: String,
}

pub async fn answer(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Path((id, username)): Path<(String, String)>,
    Form(form): Form<AnswerForm>,
) -> Response {
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(Lang::from_headers(&headers));
    }
    let result = match Username::parse(&username) {
        Ok(u) => {
            state
                .app
                .review_decide(
                    &auth.grant,
                    &id,
                    &u,
                    form.decision,
                    &form.reason,
                    &auth.meta,
                )
                .await
        }
        Err(e) => Err(zf_app::AppError::Invalid(e.to_string())),
    };
    let back = if auth.grant.operation() == zf_policy::Operation::TeamReviewAnswer {
        "/team-review".to_owned()
    } else {
        format!("/reviews/{id}")
    };
    match result {
        Ok(()) => Redirect::to(&back).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
