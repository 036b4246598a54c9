//! The role editor (security administrators): every role on one screen — the built-in ones as
//! the policy defines them and the firm's custom roles — and the form that composes a custom
//! role from the client permissions.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use zf_app::identity::{CustomRoleInput, CustomRoleView, RoleCatalog};
use zf_app::AppError;
use zf_policy::{Field, Role, ScopeRule, Visibility};

use super::i18n::{Lang, Msg};
use super::{csrf_ok, csrf_refused, layout, refusal_status};
use crate::extract::Authorized;
use crate::routes::AppState;
use crate::ApiError;

const CLIENT_ROLES: [Role; 4] = [
    Role::Supervisor,
    Role::Accountant,
    Role::Auditor,
    Role::Sales,
];

fn roles_page(
    lang: Lang,
    auth: &Authorized,
    catalog: &RoleCatalog,
    editing: Option<&CustomRoleView>,
    error: Option<&str>,
) -> Markup {
    let csrf = auth.csrf_token.clone().unwrap_or_default();
    let fields = |visibility: &std::collections::BTreeMap<String, String>| {
        visibility
            .iter()
            .map(|(f, v)| format!("{f}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    layout::page(
        lang,
        auth,
        lang.t(Msg::Roles),
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            h2 { (lang.t(Msg::BuiltInRoles)) }
            table.audit #built-in-roles {
                thead { tr {
                    th { (lang.t(Msg::Role)) } th { (lang.t(Msg::Scope)) }
                    th { (lang.t(Msg::Permissions)) } th { (lang.t(Msg::FieldVisibility)) }
                } }
                tbody {
                    @for r in &catalog.built_in {
                        tr {
                            td { (r.label) br; code { (r.name) } }
                            td { (r.scope) }
                            td.note { (r.permissions.join(", ")) }
                            td.note { (fields(&r.visibility)) }
                        }
                    }
                }
            }
            h2 { (lang.t(Msg::CustomRoles)) }
            table.audit #custom-roles {
                thead { tr {
                    th { (lang.t(Msg::Role)) } th { (lang.t(Msg::BaseRole)) } th { (lang.t(Msg::Scope)) }
                    th { (lang.t(Msg::Permissions)) } th { (lang.t(Msg::FieldVisibility)) }
                    th { (lang.t(Msg::Holders)) } th {}
                } }
                tbody {
                    @for r in &catalog.custom {
                        tr {
                            td { (r.label) br; code { (r.name) } }
                            td { (r.base) }
                            td { (r.scope) }
                            td.note { (r.permissions.join(", ")) }
                            td.note { (fields(&r.visibility)) }
                            td { (r.holders) }
                            td {
                                a href={ "/roles/" (r.name) } { (lang.t(Msg::EditRole)) }
                                form.inline method="post" action={ "/roles/" (r.name) "/delete" } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    " "
                                    input name="reason" required placeholder=(lang.t(Msg::Reason)) maxlength="200";
                                    " "
                                    button type="submit" { (lang.t(Msg::DeleteRole)) }
                                }
                            }
                        }
                    }
                }
            }
            h2 { @if editing.is_some() { (lang.t(Msg::EditRole)) } @else { (lang.t(Msg::NewRole)) } }
            (editor(lang, &csrf, catalog, editing))
        },
    )
}

fn editor(
    lang: Lang,
    csrf: &str,
    catalog: &RoleCatalog,
    editing: Option<&CustomRoleView>,
) -> Markup {
    let holds = |p: &str| editing.is_some_and(|r| r.permissions.iter().any(|q| q == p));
    let seen = |f: Field| {
        editing
            .and_then(|r| r.visibility.get(f.as_str()))
            .map_or("hidden", String::as_str)
            .to_owned()
    };
    html! {
        form #role-editor method="post" action="/roles" {
            input type="hidden" name="csrf" value=(csrf);
            @if let Some(r) = editing { input type="hidden" name="version" value=(r.version); }
            div {
                label for="name" { (lang.t(Msg::RoleName)) }
                input #name name="name" required pattern="[a-z][a-z0-9_-]{1,31}" maxlength="32"
                    value=(editing.map_or("", |r| r.name.as_str())) readonly[editing.is_some()];
            }
            div {
                label for="label" { (lang.t(Msg::RoleLabel)) }
                input #label name="label" required maxlength="40" value=(editing.map_or("", |r| r.label.as_str()));
            }
            div {
                label for="base" { (lang.t(Msg::BaseRole)) }
                select #base name="base" {
                    @for b in CLIENT_ROLES {
                        option value=(b.as_str()) selected[editing.is_some_and(|r| r.base == b.as_str())] { (b.label_zh()) }
                    }
                }
            }
            div {
                label for="scope" { (lang.t(Msg::Scope)) }
                select #scope name="scope" {
                    @for s in ScopeRule::ALL {
                        option value=(s.as_str()) selected[editing.is_some_and(|r| r.scope == s.as_str())] { (s.as_str()) }
                    }
                }
            }
            fieldset #permissions {
                legend { (lang.t(Msg::Permissions)) }
                @for p in &catalog.composable_permissions {
                    label.check {
                        input type="checkbox" name="permission" value=(p) checked[holds(p)];
                        " " (p)
                    }
                    " "
                }
            }
            fieldset #visibility {
                legend { (lang.t(Msg::FieldVisibility)) }
                @for f in Field::ALL {
                    label for={ "vis-" (f.as_str()) } { (f.as_str()) }
                    " "
                    select id={ "vis-" (f.as_str()) } name={ "visibility." (f.as_str()) } {
                        @for v in Visibility::ALL {
                            option value=(v.as_str()) selected[seen(f) == v.as_str()] { (v.as_str()) }
                        }
                    }
                    br;
                }
            }
            div {
                label for="reason" { (lang.t(Msg::Reason)) }
                input #reason name="reason" required maxlength="200";
            }
            button type="submit" { (lang.t(Msg::SaveRole)) }
        }
    }
}

async fn render(
    state: &AppState,
    lang: Lang,
    auth: &Authorized,
    editing: Option<&CustomRoleView>,
    error: Option<(StatusCode, &str)>,
) -> Response {
    match state.app.role_catalog().await {
        Ok(catalog) => (
            error.map_or(StatusCode::OK, |(s, _)| s),
            roles_page(lang, auth, &catalog, editing, error.map(|(_, e)| e)),
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

pub async fn roles(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
) -> Response {
    render(&state, Lang::from_headers(&headers), &auth, None, None).await
}

pub async fn role(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Path(name): Path<String>,
) -> Response {
    match state.app.custom_role(&name).await {
        Ok(role) => {
            render(
                &state,
                Lang::from_headers(&headers),
                &auth,
                Some(&role),
                None,
            )
            .await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The editor's form as sent: checkboxes repeat the `permission` key, so the form is read as
/// pairs rather than a struct.
struct RoleFormFields {
    csrf: String,
    name: String,
    input: CustomRoleInput,
}

fn role_form(pairs: Vec<(String, String)>) -> Result<RoleFormFields, AppError> {
    let mut csrf = String::new();
    let mut name = String::new();
    let mut input = CustomRoleInput {
        label: String::new(),
        base: String::new(),
        permissions: Vec::new(),
        scope: String::new(),
        visibility: std::collections::BTreeMap::new(),
        version: None,
        reason: String::new(),
    };
    for (key, value) in pairs {
        match key.as_str() {
            "csrf" => csrf = value,
            "name" => name = value,
            "label" => input.label = value,
            "base" => input.base = value,
            "scope" => input.scope = value,
            "reason" => input.reason = value,
            "permission" => input.permissions.push(value),
            "version" => {
                input.version = Some(
                    value
                        .parse()
                        .map_err(|_| AppError::Invalid("version is a number".into()))?,
                );
            }
            other => match other.strip_prefix("visibility.") {
                Some(field) => {
                    input.visibility.insert(field.to_owned(), value);
                }
                None => {
                    return Err(AppError::Invalid(format!(
                        "unexpected form field {other:?}"
                    )))
                }
            },
        }
    }
    Ok(RoleFormFields { csrf, name, input })
}

pub async fn save(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let form = match role_form(pairs) {
        Ok(form) => form,
        Err(e) => {
            let message = e.to_string();
            return render(
                &state,
                lang,
                &auth,
                None,
                Some((StatusCode::UNPROCESSABLE_ENTITY, &message)),
            )
            .await;
        }
    };
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(lang);
    }
    match state
        .app
        .custom_role_save(&auth.grant, &form.name, &form.input, &auth.meta)
        .await
    {
        Ok(_) => Redirect::to("/roles").into_response(),
        Err(e @ (AppError::Invalid(_) | AppError::Conflict(_))) => {
            let message = e.to_string();
            render(
                &state,
                lang,
                &auth,
                None,
                Some((refusal_status(&e), &message)),
            )
            .await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(serde::Deserialize)]
pub struct DeleteForm {
    csrf: String,
    reason: String,
}

pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Path(name): Path<String>,
    Form(form): Form<DeleteForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(lang);
    }
    match state
        .app
        .custom_role_delete(&auth.grant, &name, &form.reason, &auth.meta)
        .await
    {
        Ok(()) => Redirect::to("/roles").into_response(),
        Err(e @ (AppError::Invalid(_) | AppError::Conflict(_))) => {
            let message = e.to_string();
            render(
                &state,
                lang,
                &auth,
                None,
                Some((refusal_status(&e), &message)),
            )
            .await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}
