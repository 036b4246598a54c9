use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use zf_app::erasure::ErasureView;
use zf_app::{AppError, ClientAssignment, ClientFilter, ClientView, IdNumberQuery, SensitiveValue};
use zf_domain::{
    ClientId, ClientName, ClientPatch, ClientStatus, Fen, IdNumber, NewClient, Notes, PersonName,
    ShortText, Tags, TaxpayerType, Uscc,
};
use zf_policy::{Action, Resource};

use super::form::{app_error, csrf, field, invalid, may, yuan};
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
    let pending = pending_erasure(&state, &auth, id).await?;
    Ok(detail_page(lang, &auth, &c, pending.as_ref(), None))
}

/// The pending request to erase the client, shown to whoever may request one instead of the
/// form.
async fn pending_erasure(
    state: &AppState,
    auth: &Authorized,
    id: ClientId,
) -> Result<Option<ErasureView>, AppError> {
    if !may(auth, Resource::Client, Action::Delete) {
        return Ok(None);
    }
    let client = id.to_string();
    Ok(state
        .app
        .erasures(&auth.grant, Some("pending"))
        .await?
        .into_iter()
        .find(|r| r.client_id == client))
}

fn detail_page(
    lang: Lang,
    auth: &Authorized,
    c: &ClientView,
    pending: Option<&ErasureView>,
    error: Option<&str>,
) -> Markup {
    let may_reveal = matches!(c.legal_rep_id_number, SensitiveValue::Masked(_))
        && may(auth, Resource::Client, Action::Reveal);
    layout::page(
        lang,
        auth,
        &c.name.clone(),
        html! {
            (super::crm::tabs(lang, auth, c.id, ""))
            dl.card {
                dt { (lang.t(Msg::Status)) } dd #client-status { (lang.pick(c.status.label_zh(), c.status.label_en())) }
                dt { (lang.t(Msg::Uscc)) } dd { (c.uscc) }
                dt { (lang.t(Msg::TaxpayerType)) } dd { (taxpayer_label(lang, c.taxpayer_type)) }
                dt { (lang.t(Msg::LegalRepName)) } dd { (c.legal_rep_name) }
                dt { (lang.t(Msg::LegalRepIdNumber)) } dd { (sensitive(lang, &c.legal_rep_id_number)) }
                dt { (lang.t(Msg::AssignedAccountant)) }
                dd #client-assigned { @if c.assigned_accountant.is_some() { (lang.t(Msg::Assigned)) } @else { span.error { (lang.t(Msg::Unassigned)) } } }
                @if let Some(t) = &c.team { dt { (lang.t(Msg::Team)) } dd #client-team { (t) } }
                @if let Some(t) = &c.tax_authority { dt { (lang.t(Msg::TaxAuthority)) } dd { (t) } }
                @if let Some(r) = c.registered_capital { dt { (lang.t(Msg::RegisteredCapital)) } dd.num { (yuan(r)) } }
                @if !c.tags.is_empty() { dt { (lang.t(Msg::Tags)) } dd #client-tags { (c.tags.join("、")) } }
                @if let Some(n) = &c.notes { dt { (lang.t(Msg::Notes)) } dd.text { (n) } }
                dt { (lang.t(Msg::Created)) } dd { (time(c.created_at)) }
                dt { (lang.t(Msg::Updated)) } dd { (time(c.updated_at)) }
                dt { (lang.t(Msg::Version)) } dd { (c.version) }
            }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            @if may_reveal {
                form.card method="post" action={ "/clients/" (c.id) "/reveal" } {
                    (csrf(auth))
                    label for="reason" { (lang.t(Msg::RevealReason)) }
                    input #reason name="reason" required minlength="4" maxlength="200" autocomplete="off";
                    button type="submit" { (lang.t(Msg::Reveal)) }
                }
            }
            @if matches!(c.legal_rep_id_number, SensitiveValue::Visible(_)) {
                p.note { (lang.t(Msg::SensitiveReadAudited)) }
            }
            @if may(auth, Resource::Client, Action::Update) { (edit_form(lang, auth, c)) }
            @if may(auth, Resource::ClientAssignment, Action::Update) { (assign_form(lang, auth, c)) }
            @if may(auth, Resource::Client, Action::Delete) { (erasure_form(lang, auth, c, pending)) }
            p { a href="/clients" { (lang.t(Msg::Back)) } }
        },
    )
}

/// Registered capital as typed into a form: plain yuan, no separators.
fn capital_input(fen: Option<i64>) -> String {
    fen.and_then(|f| Fen::new(f).ok())
        .map(Fen::to_yuan_string)
        .unwrap_or_default()
}

/// The fields a firm keeps up to date on a client. The values the page showed travel with the
/// form, so that only what the person changed is written (and named in the audit event); the
/// version refuses the save if someone else changed the client in between.
fn edit_form(lang: Lang, auth: &Authorized, c: &ClientView) -> Markup {
    let tags = c.tags.join("，");
    let notes = c.notes.as_deref().unwrap_or("");
    let authority = c.tax_authority.as_deref().unwrap_or("");
    let capital = capital_input(c.registered_capital);
    html! {
        h2 { (lang.t(Msg::EditClient)) }
        form.card.grid #edit-client method="post" action={ "/clients/" (c.id) } {
            (csrf(auth))
            input type="hidden" name="version" value=(c.version);
            input type="hidden" name="orig_status" value=(c.status.as_str());
            input type="hidden" name="orig_tags" value=(tags);
            input type="hidden" name="orig_notes" value=(notes);
            input type="hidden" name="orig_tax_authority" value=(authority);
            input type="hidden" name="orig_registered_capital" value=(capital);
            div { label for="status" { (lang.t(Msg::Status)) }
                select #status name="status" {
                    @for s in ClientStatus::ALL.into_iter().filter(|s| *s == c.status || c.status.can_move_to(*s)) {
                        option value=(s.as_str()) selected[s == c.status] { (lang.pick(s.label_zh(), s.label_en())) }
                    }
                }
            }
            div { label for="registered_capital" { (lang.t(Msg::RegisteredCapital)) }
                input #registered_capital name="registered_capital" inputmode="decimal" maxlength="24" value=(capital) autocomplete="off"; }
            div.wide { label for="tax_authority" { (lang.t(Msg::TaxAuthority)) }
                input #tax_authority name="tax_authority" maxlength="100" value=(authority); }
            div.wide { label for="tags" { (lang.t(Msg::TagsHint)) } input #tags name="tags" maxlength="500" value=(tags); }
            div.wide { label for="notes" { (lang.t(Msg::Notes)) } textarea #notes name="notes" maxlength="2000" rows="3" { (notes) } }
            div.actions { button type="submit" { (lang.t(Msg::Save)) } }
        }
    }
}

fn assign_form(lang: Lang, auth: &Authorized, c: &ClientView) -> Markup {
    html! {
        h2 { (lang.t(Msg::AssignClient)) }
        form.card.grid #assign-client method="post" action={ "/clients/" (c.id) "/assignment" } {
            (csrf(auth))
            div { label for="accountant" { (lang.t(Msg::AccountantUsername)) }
                input #accountant name="accountant" maxlength="32" autocomplete="off"; }
            div { label for="team" { (lang.t(Msg::Team)) } input #team name="team" maxlength="100" value=(c.team.as_deref().unwrap_or("")); }
            p.note.wide { (lang.t(Msg::AssignNote)) }
            div.actions { button type="submit" { (lang.t(Msg::AssignClient)) } }
        }
    }
}

/// Erasing a client needs two people: this asks, and the request waits on `/erasures` for a
/// second person with the approve permission.
fn erasure_form(
    lang: Lang,
    auth: &Authorized,
    c: &ClientView,
    pending: Option<&ErasureView>,
) -> Markup {
    html! {
        h2 { (lang.t(Msg::RequestErasure)) }
        @if let Some(p) = pending {
            p.note #erasure-pending {
                (lang.t(Msg::ErasurePending)) " " (p.requested_by) " · " (time(p.requested_at)) " · " (p.reason)
            }
        } @else {
            form.card #request-erasure method="post" action={ "/clients/" (c.id) "/erasure" } {
                (csrf(auth))
                label for="erasure_reason" { (lang.t(Msg::ErasureReason)) }
                input #erasure_reason name="reason" required minlength="4" maxlength="200" autocomplete="off";
                button type="submit" { (lang.t(Msg::RequestErasure)) }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct EditForm {
    csrf: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    orig_status: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    orig_tags: String,
    #[serde(default)]
    notes: String,
    #[serde(default)]
    orig_notes: String,
    #[serde(default)]
    tax_authority: String,
    #[serde(default)]
    orig_tax_authority: String,
    #[serde(default)]
    registered_capital: String,
    #[serde(default)]
    orig_registered_capital: String,
}

/// Text as a browser submits it from a text area, compared the way the domain stores it.
fn same_text(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.replace("\r\n", "\n").trim().to_owned();
    norm(a) == norm(b)
}

/// A changed text field: `None` when unchanged. A client update can set these fields but not
/// remove them, so emptying one is refused rather than silently ignored.
fn changed<T, E: std::fmt::Display>(
    lang: Lang,
    label: Msg,
    new: &str,
    orig: &str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<Option<T>, String> {
    if same_text(new, orig) {
        Ok(None)
    } else if new.trim().is_empty() {
        Err(format!("{}: {}", lang.t(label), lang.t(Msg::CannotEmpty)))
    } else {
        field(lang, label, parse(new)).map(Some)
    }
}

impl EditForm {
    fn patch(&self, lang: Lang) -> Result<ClientPatch, String> {
        let mut patch = ClientPatch::default();
        if self.status.trim() != self.orig_status.trim() {
            patch.status = Some(field(lang, Msg::Status, ClientStatus::parse(&self.status))?);
        }
        let tags = field(lang, Msg::Tags, Tags::parse(&self.tags))?;
        if Tags::parse(&self.orig_tags).ok().as_ref() != Some(&tags) {
            patch.tags = Some(tags);
        }
        patch.notes = changed(
            lang,
            Msg::Notes,
            &self.notes,
            &self.orig_notes,
            Notes::parse,
        )?;
        patch.tax_authority = changed(
            lang,
            Msg::TaxAuthority,
            &self.tax_authority,
            &self.orig_tax_authority,
            ShortText::parse,
        )?;
        let capital = changed(
            lang,
            Msg::RegisteredCapital,
            &self.registered_capital,
            &self.orig_registered_capital,
            Fen::parse_yuan,
        )?;
        // "100000" and "100,000.00" are the same capital.
        patch.registered_capital =
            capital.filter(|c| Fen::parse_yuan(&self.orig_registered_capital).ok() != Some(*c));
        Ok(patch)
    }
}

pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    Form(f): Form<EditForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &f.csrf) {
        return csrf_refused(lang);
    }
    let back = format!("/clients/{id}");
    let parsed = f.patch(lang).and_then(|patch| {
        let version = field(lang, Msg::Version, f.version.trim().parse::<i64>())?;
        Ok((patch, version))
    });
    let (patch, version) = match parsed {
        Ok(v) => v,
        Err(m) => return invalid(lang, &back, &m),
    };
    if patch.is_empty() {
        return Redirect::to(&back).into_response();
    }
    match state
        .app
        .client_update(&auth.grant, id, patch, Some(version), &auth.meta)
        .await
    {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(e) => app_error(lang, &back, e),
    }
}

#[derive(Deserialize)]
pub struct AssignForm {
    csrf: String,
    #[serde(default)]
    accountant: String,
    #[serde(default)]
    team: String,
}

pub async fn assign(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    Form(f): Form<AssignForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &f.csrf) {
        return csrf_refused(lang);
    }
    let blank_is_none = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let assignment = ClientAssignment {
        accountant: blank_is_none(&f.accountant),
        team: blank_is_none(&f.team),
    };
    let back = format!("/clients/{id}");
    match state
        .app
        .client_assign(&auth.grant, id, assignment, &auth.meta)
        .await
    {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(e) => app_error(lang, &back, e),
    }
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
    let pending = match pending_erasure(&state, &auth, id).await {
        Ok(p) => p,
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
            detail_page(lang, &auth, &view, pending.as_ref(), None).into_response()
        }
        Err(e @ AppError::Invalid(_)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            detail_page(lang, &auth, &view, pending.as_ref(), Some(&e.to_string())),
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct ErasureForm {
    csrf: String,
    reason: String,
}

/// Asks for the client to be erased; the client page then shows the request as pending.
pub async fn request_erasure(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    Form(form): Form<ErasureForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &form.csrf) {
        return csrf_refused(lang);
    }
    let back = format!("/clients/{id}");
    match state
        .app
        .erasure_request(&auth.grant, id, &form.reason, &auth.meta)
        .await
    {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(e) => app_error(lang, &back, e),
    }
}
