use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use zf_app::{AppError, ClientFilter, ClientView, IdNumberQuery, SensitiveValue};
use zf_domain::{ClientName, ClientStatus, IdNumber, NewClient, PersonName, TaxpayerType, Uscc};

use super::i18n::{Lang, Msg};
use super::{csrf_ok, csrf_refused, layout, time};
use crate::extract::{Authorized, ClientIdPath, QueryParams};
use crate::routes::AppState;
use crate::ApiError;

const PAGE: u32 = 50;

fn taxpayer_label(lang: Lang, t: TaxpayerType) -> &'static str {
    match lang {
        Lang::Zh => t.label_zh(),
        Lang::En => t.label_en(),
    }
}

fn sensitive(lang: Lang, v: &SensitiveValue) -> Markup {
    match v {
        SensitiveValue::Visible(s) => html! { span.sensitive { (s) } },
        SensitiveValue::Masked(s) => html! { span.masked { (s) } },
        SensitiveValue::Hidden => html! { span.note { (lang.t(Msg::Hidden)) } },
    }
}

fn client_table(lang: Lang, items: &[ClientView]) -> Markup {
    html! {
        @if items.is_empty() {
            p.note { (lang.t(Msg::NoClients)) }
        } @else {
            table {
                thead { tr {
                    th { (lang.t(Msg::ClientName)) }
                    th { (lang.t(Msg::Uscc)) }
                    th { (lang.t(Msg::TaxpayerType)) }
                    th { (lang.t(Msg::LegalRepName)) }
                    th { (lang.t(Msg::LegalRepIdNumber)) }
                } }
                tbody {
                    @for c in items {
                        tr {
                            td { a href={ "/clients/" (c.id) } { (c.name) } }
                            td { (c.uscc) }
                            td { (taxpayer_label(lang, c.taxpayer_type)) }
                            td { (c.legal_rep_name) }
                            td { (sensitive(lang, &c.legal_rep_id_number)) }
                        }
                    }
                }
            }
        }
    }
}

fn search_form(lang: Lang, auth: &Authorized) -> Markup {
    html! {
        form method="post" action="/clients/search" {
            input type="hidden" name="csrf" value=(auth.csrf_token.as_deref().unwrap_or(""));
            div {
                label for="q" { (lang.t(Msg::SearchByIdNumber)) }
                input #q name="legal_rep_id_number" autocomplete="off" maxlength="18" required;
            }
            button type="submit" { (lang.t(Msg::Search)) }
        }
    }
}

/// The link to the page after this one, keeping the filters.
fn next_link(filter: &ClientFilter, cursor: &str) -> String {
    let mut parts = vec![format!("cursor={cursor}")];
    for (key, value) in [
        ("q", filter.q.as_deref()),
        ("status", filter.status.map(|s| s.as_str())),
        ("sort", filter.sort.as_deref()),
        ("order", filter.order.as_deref()),
    ] {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            let encoded: String = v
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            parts.push(format!("{key}={encoded}"));
        }
    }
    format!("/clients?{}", parts.join("&"))
}

fn filter_form(lang: Lang, filter: &ClientFilter) -> Markup {
    html! {
        form.filters method="get" action="/clients" {
            label for="fq" { (lang.t(Msg::Filter)) }
            input #fq name="q" maxlength="100" value=(filter.q.as_deref().unwrap_or(""));
            select name="status" aria-label=(lang.t(Msg::Status)) {
                option value="" { "—" }
                @for st in ClientStatus::ALL {
                    option value=(st.as_str()) selected[filter.status == Some(st)] { (st.label_zh()) }
                }
            }
            select name="sort" aria-label=(lang.t(Msg::Sort)) {
                @for (v, m) in [("name", Msg::ClientName), ("created_at", Msg::Created), ("updated_at", Msg::Updated)] {
                    option value=(v) selected[filter.sort.as_deref() == Some(v)] { (lang.t(m)) }
                }
            }
            button type="submit" { (lang.t(Msg::Search)) }
        }
    }
}

pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    QueryParams(mut filter): QueryParams<ClientFilter>,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    // Empty form fields arrive as empty strings; they mean "no filter".
    filter.sort = filter.sort.filter(|s| !s.is_empty());
    filter.limit = Some(PAGE);
    let page = state.app.client_list(&auth.grant, &filter).await?;
    let may_create = auth.grant.may(zf_policy::Permission::new(
        zf_policy::Resource::Client,
        zf_policy::Action::Create,
    ));
    Ok(layout::page(
        lang,
        &auth,
        lang.t(Msg::Clients),
        html! {
            div.toolbar {
                @if may_create { a.button href="/clients/new" { (lang.t(Msg::NewClient)) } " " a href="/clients/import" { (lang.t(Msg::Import)) } }
                (search_form(lang, &auth))
            }
            (filter_form(lang, &filter))
            (client_table(lang, &page.items))
            div.pager {
                span { (lang.t(Msg::Total)) " " (page.total) }
                @if filter.cursor.is_some() {
                    a href="/clients" { (lang.t(Msg::FirstPage)) }
                }
                @if let Some(cursor) = &page.next_cursor {
                    a href=(next_link(&filter, cursor)) { (lang.t(Msg::Next)) }
                }
            }
        },
    ))
}

/// The create form's fields as typed, kept to re-show them beside an error.
#[derive(Deserialize, Default)]
pub struct ClientForm {
    #[serde(default)]
    csrf: String,
    name: String,
    uscc: String,
    taxpayer_type: String,
    legal_rep_name: String,
    legal_rep_id_number: String,
}

impl ClientForm {
    fn parse(&self) -> Result<NewClient, String> {
        Ok(NewClient {
            name: ClientName::parse(&self.name).map_err(|e| e.to_string())?,
            uscc: Uscc::parse(&self.uscc).map_err(|e| e.to_string())?,
            taxpayer_type: TaxpayerType::parse(&self.taxpayer_type).map_err(|e| e.to_string())?,
            legal_rep_name: PersonName::parse(&self.legal_rep_name).map_err(|e| e.to_string())?,
            legal_rep_id_number: IdNumber::parse(&self.legal_rep_id_number)
                .map_err(|e| e.to_string())?,
            status: None,
            tags: None,
            team: None,
            notes: None,
            registered_capital: None,
            tax_authority: None,
        })
    }
}

fn client_form(lang: Lang, auth: &Authorized, form: &ClientForm, error: Option<&str>) -> Markup {
    layout::page(
        lang,
        auth,
        lang.t(Msg::NewClient),
        html! {
            form.card method="post" action="/clients" {
                @if let Some(e) = error { p.error role="alert" { (e) } }
                input type="hidden" name="csrf" value=(auth.csrf_token.as_deref().unwrap_or(""));
                label for="name" { (lang.t(Msg::ClientName)) }
                input #name name="name" required value=(form.name);
                label for="uscc" { (lang.t(Msg::Uscc)) }
                input #uscc name="uscc" required maxlength="18" value=(form.uscc);
                label for="taxpayer_type" { (lang.t(Msg::TaxpayerType)) }
                select #taxpayer_type name="taxpayer_type" {
                    @for t in TaxpayerType::ALL {
                        option value=(t.as_str()) selected[form.taxpayer_type == t.as_str()] { (taxpayer_label(lang, t)) }
                    }
                }
                label for="legal_rep_name" { (lang.t(Msg::LegalRepName)) }
                input #legal_rep_name name="legal_rep_name" required value=(form.legal_rep_name);
                label for="legal_rep_id_number" { (lang.t(Msg::LegalRepIdNumber)) }
                input #legal_rep_id_number name="legal_rep_id_number" required maxlength="18" autocomplete="off";
                button type="submit" { (lang.t(Msg::Create)) }
            }
        },
    )
}

pub async fn new_form(headers: HeaderMap, auth: Authorized) -> Markup {
    client_form(
        Lang::from_headers(&headers),
        &auth,
        &ClientForm::default(),
        None,
    )
}

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Form(form): Form<ClientForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(lang);
    }
    let new = match form.parse() {
        Ok(n) => n,
        Err(msg) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                client_form(lang, &auth, &form, Some(&msg)),
            )
                .into_response()
        }
    };
    match state.app.client_create(&auth.grant, new, &auth.meta).await {
        Ok(view) => Redirect::to(&format!("/clients/{}", view.id)).into_response(),
        Err(AppError::Conflict(msg)) => (
            StatusCode::CONFLICT,
            client_form(lang, &auth, &form, Some(&msg)),
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct SearchForm {
    csrf: String,
    legal_rep_id_number: String,
}

pub async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Form(form): Form<SearchForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(lang);
    }
    let (status, body) = match IdNumber::parse(&form.legal_rep_id_number) {
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            html! { p.error role="alert" { (e.to_string()) } },
        ),
        Ok(id) => match state
            .app
            .client_search_id_number(
                &auth.grant,
                IdNumberQuery {
                    legal_rep_id_number: id,
                },
                &auth.meta,
            )
            .await
        {
            Ok(found) => (StatusCode::OK, client_table(lang, &found)),
            Err(e) => return ApiError::from(e).into_response(),
        },
    };
    let page = layout::page(
        lang,
        &auth,
        lang.t(Msg::SearchResults),
        html! {
            div.toolbar { (search_form(lang, &auth)) }
            (body)
            p { a href="/clients" { (lang.t(Msg::Back)) } }
        },
    );
    (status, page).into_response()
}

pub async fn detail(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let c = state.app.client_get(&auth.grant, id, &auth.meta).await?;
    Ok(detail_page(lang, &auth, &c, None))
}

fn detail_page(lang: Lang, auth: &Authorized, c: &ClientView, error: Option<&str>) -> Markup {
    let may_reveal = matches!(c.legal_rep_id_number, SensitiveValue::Masked(_))
        && auth.grant.may(zf_policy::Permission::new(
            zf_policy::Resource::Client,
            zf_policy::Action::Reveal,
        ));
    layout::page(
        lang,
        auth,
        &c.name.clone(),
        html! {
            (super::crm::tabs(lang, auth, c.id, ""))
            dl.card {
                dt { (lang.t(Msg::Status)) } dd { (c.status_label) }
                dt { (lang.t(Msg::Uscc)) } dd { (c.uscc) }
                dt { (lang.t(Msg::TaxpayerType)) } dd { (taxpayer_label(lang, c.taxpayer_type)) }
                dt { (lang.t(Msg::LegalRepName)) } dd { (c.legal_rep_name) }
                dt { (lang.t(Msg::LegalRepIdNumber)) } dd { (sensitive(lang, &c.legal_rep_id_number)) }
                @if let Some(t) = &c.tax_authority { dt { (lang.t(Msg::TaxAuthority)) } dd { (t) } }
                @if let Some(r) = c.registered_capital { dt { (lang.t(Msg::RegisteredCapital)) } dd { (r / 100) } }
                @if let Some(t) = &c.team { dt { (lang.t(Msg::Team)) } dd { (t) } }
                @if !c.tags.is_empty() { dt { (lang.t(Msg::Tags)) } dd { (c.tags.join("、")) } }
                @if let Some(n) = &c.notes { dt { (lang.t(Msg::Notes)) } dd { (n) } }
                dt { (lang.t(Msg::Created)) } dd { (time(c.created_at)) }
                dt { (lang.t(Msg::Updated)) } dd { (time(c.updated_at)) }
                dt { (lang.t(Msg::Version)) } dd { (c.version) }
            }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            @if may_reveal {
                form.card method="post" action={ "/clients/" (c.id) "/reveal" } {
                    input type="hidden" name="csrf" value=(auth.csrf_token.as_deref().unwrap_or(""));
                    label for="reason" { (lang.t(Msg::RevealReason)) }
                    input #reason name="reason" required minlength="4" maxlength="200" autocomplete="off";
                    button type="submit" { (lang.t(Msg::Reveal)) }
                }
            }
            @if matches!(c.legal_rep_id_number, SensitiveValue::Visible(_)) {
                p.note { (lang.t(Msg::SensitiveReadAudited)) }
            }
            p { a href="/clients" { (lang.t(Msg::Back)) } }
        },
    )
}

#[derive(Deserialize)]
pub struct RevealForm {
    csrf: String,
    reason: String,
}

/// Shows the page again with the one field in full; the value is never put in a URL.
pub async fn reveal(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    Form(form): Form<RevealForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(lang);
    }
    let mut view = match state.app.client_get(&auth.grant, id, &auth.meta).await {
        Ok(v) => v,
        Err(e) => return ApiError::from(e).into_response(),
    };
    match state
        .app
        .client_reveal(
            &auth.grant,
            id,
            "legal_rep_id_number",
            &form.reason,
            &auth.meta,
        )
        .await
    {
        Ok(value) => {
            view.legal_rep_id_number = value;
            detail_page(lang, &auth, &view, None).into_response()
        }
        Err(e @ AppError::Invalid(_)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            detail_page(lang, &auth, &view, Some(&e.to_string())),
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
