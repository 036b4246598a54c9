//! The accountant's pages: a client's tabs (contacts, contracts, financial records, filings,
//! interactions, documents, custody, fees), the deadlines dashboard, leads, arrears, and
//! client import and export. Each tab is its own route with its own operation, so the policy
//! decides every tab as it decides the API.

use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use zf_app::crm::contacts::ContactInput;
use zf_app::crm::custody::{CustodyItemInput, CustodyMove};
use zf_app::crm::documents::DocumentUpload;
use zf_app::crm::filings::{FilingUpdate, FilingView, GenerateFilings};
use zf_app::crm::interactions::InteractionInput;
use zf_app::crm::leads::LeadInput;
use zf_app::{AppError, SensitiveValue};
use zf_domain::{
    ClientId, ClientName, CustodyKind, Date, DocumentKind, Email, FileName, FilingStatus, IdNumber,
    InteractionKind, Mobile, Notes, PersonName, Position, ShortText,
};
use zf_policy::{Action, Permission, Resource};

use super::i18n::{Lang, Msg};
use super::{csrf_ok, csrf_refused, layout, time};
use crate::extract::{Authorized, ClientIdPath, RecordPath};
use crate::routes::AppState;
use crate::ApiError;

/// The tabs of a client page: path segment, label, and the resource whose read shows it.
const TABS: &[(&str, Msg, Resource)] = &[
    ("", Msg::Overview, Resource::Client),
    ("contacts", Msg::Contacts, Resource::Contact),
    ("contracts", Msg::Contracts, Resource::Contract),
    ("financials", Msg::Financials, Resource::FinancialRecord),
    ("filings", Msg::Filings, Resource::FilingTask),
    ("interactions", Msg::Interactions, Resource::Interaction),
    ("documents", Msg::Documents, Resource::Document),
    ("custody", Msg::Custody, Resource::Custody),
    ("fees", Msg::Fees, Resource::Payment),
];

fn may(auth: &Authorized, resource: Resource, action: Action) -> bool {
    auth.grant.may(Permission::new(resource, action))
}

pub(crate) fn tabs(lang: Lang, auth: &Authorized, id: ClientId, active: &str) -> Markup {
    html! {
        nav.tabs {
            @for (seg, label, resource) in TABS {
                @if may(auth, *resource, Action::Read) {
                    @let href = if seg.is_empty() { format!("/clients/{id}") } else { format!("/clients/{id}/{seg}") };
                    @if *seg == active { strong { (lang.t(*label)) } } @else { a href=(href) { (lang.t(*label)) } }
                    " "
                }
            }
        }
    }
}

fn csrf(auth: &Authorized) -> Markup {
    html! { input type="hidden" name="csrf" value=(auth.csrf_token.as_deref().unwrap_or("")); }
}

fn sensitive(lang: Lang, v: Option<&SensitiveValue>) -> Markup {
    match v {
        None => html! {},
        Some(SensitiveValue::Visible(s)) => html! { span.sensitive { (s) } },
        Some(SensitiveValue::Masked(s)) => html! { span.masked { (s) } },
        Some(SensitiveValue::Hidden) => html! { span.note { (lang.t(Msg::Hidden)) } },
    }
}

fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// A client tab page: the client's name as title, the tabs, then the tab's content.
async fn client_page(
    state: &AppState,
    lang: Lang,
    auth: &Authorized,
    id: ClientId,
    tab: &str,
    body: Markup,
) -> Result<Markup, ApiError> {
    let name = state.app.client_name(&auth.grant, id).await?;
    Ok(layout::page(
        lang,
        auth,
        &name,
        html! { (tabs(lang, auth, id, tab)) (body) p { a href="/clients" { (lang.t(Msg::Back)) } } },
    ))
}

/// A form's error shown on the page it came from, with 422.
fn invalid(lang: Lang, message: &str) -> Response {
    let body = layout::bare(
        lang,
        lang.t(Msg::Forbidden),
        html! { p.error role="alert" { (message) } p { a href="/clients" { (lang.t(Msg::Back)) } } },
    );
    (StatusCode::UNPROCESSABLE_ENTITY, body).into_response()
}

fn app_error(lang: Lang, e: AppError) -> Response {
    match e {
        AppError::Invalid(m) | AppError::Conflict(m) => invalid(lang, &m),
        other => ApiError::from(other).into_response(),
    }
}

fn empty(lang: Lang) -> Markup {
    html! { p.note { (lang.t(Msg::Nothing)) } }
}

// --- contacts --------------------------------------------------------------------------------

pub async fn contacts(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let list = state.app.contact_list(&auth.grant, id, &auth.meta).await?;
    let body = html! {
        @if list.is_empty() { (empty(lang)) } @else {
            table { thead { tr {
                th { (lang.t(Msg::Name)) } th { (lang.t(Msg::Position)) } th { (lang.t(Msg::Mobile)) }
                th { (lang.t(Msg::Email)) } th { (lang.t(Msg::WeChat)) } th { (lang.t(Msg::IdNumber)) }
            } } tbody { @for c in &list { tr {
                td { (c.name) @if c.primary { " ★" } } td { (c.position.as_deref().unwrap_or("")) }
                td { (sensitive(lang, c.mobile.as_ref())) } td { (sensitive(lang, c.email.as_ref())) }
                td { (sensitive(lang, c.wechat.as_ref())) } td { (sensitive(lang, c.id_number.as_ref())) }
            } } } }
        }
        @if may(&auth, Resource::Contact, Action::Create) {
            form.card method="post" action={ "/clients/" (id) "/contacts" } {
                (csrf(&auth))
                label for="name" { (lang.t(Msg::Name)) } input #name name="name" required maxlength="50";
                label for="position" { (lang.t(Msg::Position)) } input #position name="position" maxlength="50";
                label for="mobile" { (lang.t(Msg::Mobile)) } input #mobile name="mobile" maxlength="20" autocomplete="off";
                label for="email" { (lang.t(Msg::Email)) } input #email name="email" maxlength="254" autocomplete="off";
                label for="id_number" { (lang.t(Msg::IdNumber)) } input #id_number name="id_number" maxlength="18" autocomplete="off";
                button type="submit" { (lang.t(Msg::Add)) }
            }
        }
    };
    client_page(&state, lang, &auth, id, "contacts", body).await
}

#[derive(Deserialize)]
pub struct ContactForm {
    csrf: String,
    name: String,
    #[serde(default)]
    position: String,
    #[serde(default)]
    mobile: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    id_number: String,
}

/// An optional form field: blank means absent, anything else must parse.
fn opt<T, E: ToString>(v: &str, parse: impl Fn(&str) -> Result<T, E>) -> Result<Option<T>, String> {
    let v = v.trim();
    if v.is_empty() {
        Ok(None)
    } else {
        parse(v).map(Some).map_err(|e| e.to_string())
    }
}

pub async fn contact_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    Form(f): Form<ContactForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &f.csrf) {
        return csrf_refused(lang);
    }
    let input = (|| -> Result<ContactInput, String> {
        Ok(ContactInput {
            name: PersonName::parse(&f.name).map_err(|e| e.to_string())?,
            position: opt(&f.position, Position::parse)?,
            mobile: opt(&f.mobile, Mobile::parse)?,
            email: opt(&f.email, Email::parse)?,
            wechat: None,
            id_number: opt(&f.id_number, IdNumber::parse)?,
            primary: false,
            version: None,
        })
    })();
    let input = match input {
        Ok(i) => i,
        Err(m) => return invalid(lang, &m),
    };
    match state
        .app
        .contact_create(&auth.grant, id, input, &auth.meta)
        .await
    {
        Ok(_) => Redirect::to(&format!("/clients/{id}/contacts")).into_response(),
        Err(e) => app_error(lang, e),
    }
}

// --- contracts, financial records, fees --------------------------------------------------------

pub async fn contracts(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let list = state.app.contract_list(&auth.grant, id, &auth.meta).await?;
    let body = html! {
        @if list.is_empty() { (empty(lang)) } @else {
            table { thead { tr {
                th { (lang.t(Msg::ContractType)) } th { (lang.t(Msg::Fee)) } th { (lang.t(Msg::BillingCycle)) }
                th { (lang.t(Msg::Term)) } th { (lang.t(Msg::Status)) } th { (lang.t(Msg::Documents)) }
            } } tbody { @for c in &list { tr {
                td { (c.contract_type_label) } td { (yuan(c.fee.as_fen())) } td { (c.billing_cycle.label_zh()) }
                td { (c.starts_on.as_string()) " – " (c.ends_on.as_string()) } td { (c.status.label_zh()) }
                td { @for d in &c.documents { a href={ "/clients/" (id) "/documents/" (d) } { "PDF" } " " } }
            } } } }
        }
    };
    client_page(&state, lang, &auth, id, "contracts", body).await
}

pub async fn financials(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let list = state
        .app
        .financial_list(&auth.grant, id, &auth.meta)
        .await?;
    let body = html! {
        @if list.is_empty() { (empty(lang)) } @else {
            table { thead { tr {
                th { (lang.t(Msg::Period)) } th { (lang.t(Msg::Revenue)) } th { (lang.t(Msg::Cost)) }
                th { (lang.t(Msg::Profit)) } th { (lang.t(Msg::Vat)) } th { (lang.t(Msg::Cit)) }
                th { (lang.t(Msg::Iit)) } th { (lang.t(Msg::BankAccounts)) }
            } } tbody { @for f in &list { tr {
                td { (f.period) } td.num { (yuan(f.revenue)) } td.num { (yuan(f.cost)) } td.num { (yuan(f.profit)) }
                td.num { (yuan(f.vat)) } td.num { (yuan(f.cit)) } td.num { (yuan(f.iit_withheld)) }
                td { @for b in &f.bank_accounts { (b.bank) " " (sensitive(lang, Some(&b.number))) br; } }
            } } } }
            p.note { (lang.t(Msg::SensitiveReadAudited)) }
        }
    };
    client_page(&state, lang, &auth, id, "financials", body).await
}

pub async fn fees(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let report = state
        .app
        .fees_report(&auth.grant, Some(id), &auth.meta)
        .await?;
    let payments = state.app.payment_list(&auth.grant, id).await?;
    let body = html! {
        (balances(lang, &report.contracts, false))
        h2 { (lang.t(Msg::Paid)) }
        @if payments.is_empty() { (empty(lang)) } @else {
            table { thead { tr { th { (lang.t(Msg::Date)) } th { (lang.t(Msg::Paid)) } th { (lang.t(Msg::Notes)) } } }
            tbody { @for p in &payments { tr {
                td { (p.paid_on.as_string()) } td.num { (yuan(p.amount)) } td { (p.note.as_deref().unwrap_or("")) }
            } } } }
        }
    };
    client_page(&state, lang, &auth, id, "fees", body).await
}

fn balances(
    lang: Lang,
    contracts: &[zf_app::crm::fees::ContractBalance],
    with_client: bool,
) -> Markup {
    html! {
        @if contracts.is_empty() { (empty(lang)) } @else {
            table { thead { tr {
                @if with_client { th { (lang.t(Msg::ClientName)) } }
                th { (lang.t(Msg::ContractType)) } th { (lang.t(Msg::Term)) } th { (lang.t(Msg::Billed)) }
                th { (lang.t(Msg::Paid)) } th { (lang.t(Msg::Arrears)) } th { (lang.t(Msg::RenewalDue)) }
            } } tbody { @for c in contracts { tr {
                @if with_client { td { a href={ "/clients/" (c.client_id) "/fees" } { (c.client_name) } } }
                td { (c.contract_type_label) } td { (c.starts_on.as_string()) " – " (c.ends_on.as_string()) }
                td.num { (yuan(c.billed)) } td.num { (yuan(c.paid)) }
                td.num { @if c.arrears > 0 { strong.error { (yuan(c.arrears)) } } @else { (yuan(c.arrears)) } }
                td { @if c.renewal_due { "⚠ " (c.days_to_end) } }
            } } } }
        }
    }
}

pub async fn arrears(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let report = state.app.fees_report(&auth.grant, None, &auth.meta).await?;
    Ok(layout::page(
        lang,
        &auth,
        lang.t(Msg::ArrearsReport),
        html! {
            p { (lang.t(Msg::Arrears)) ": " strong { (yuan(report.total_arrears)) } }
            (balances(lang, &report.contracts, true))
        },
    ))
}

// --- filings and the deadlines dashboard -------------------------------------------------------

fn filing_rows(lang: Lang, auth: &Authorized, list: &[FilingView], with_client: bool) -> Markup {
    let may_update = may(auth, Resource::FilingTask, Action::Update);
    html! {
        @if list.is_empty() { (empty(lang)) } @else {
            table { thead { tr {
                @if with_client { th { (lang.t(Msg::ClientName)) } }
                th { (lang.t(Msg::TaxKind)) } th { (lang.t(Msg::Period)) } th { (lang.t(Msg::DueDate)) }
                th { (lang.t(Msg::Status)) } th {}
            } } tbody { @for f in list { tr {
                @if with_client { td { a href={ "/clients/" (f.meta.client_id) "/filings" } { (f.meta.client_name) } } }
                td { (f.tax_label) } td { (f.period) } td { (f.due.as_string()) }
                td { @if f.status == FilingStatus::Overdue { strong.error { (f.status.label_zh()) } } @else { (f.status.label_zh()) } }
                td { @if may_update && f.status != FilingStatus::Filed {
                    form.inline method="post" action={ "/clients/" (f.meta.client_id) "/filings/" (f.meta.id) } {
                        (csrf(auth))
                        input type="hidden" name="version" value=(f.meta.version);
                        button type="submit" { (lang.t(Msg::MarkFiled)) }
                    }
                } }
            } } } }
        }
    }
}

pub async fn filings(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let list = state.app.filing_list(&auth.grant, id).await?;
    let body = html! {
        @if may(&auth, Resource::FilingTask, Action::Create) {
            form.inline method="post" action={ "/clients/" (id) "/filings/generate" } {
                (csrf(&auth))
                button type="submit" { (lang.t(Msg::GenerateFilings)) }
            }
        }
        (filing_rows(lang, &auth, &list, false))
    };
    client_page(&state, lang, &auth, id, "filings", body).await
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn filing_generate(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    Form(f): Form<CsrfForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &f.csrf) {
        return csrf_refused(lang);
    }
    let year = zf_app::crm::filings::today().year();
    match state
        .app
        .filing_generate(&auth.grant, id, GenerateFilings { year }, &auth.meta)
        .await
    {
        Ok(_) => Redirect::to(&format!("/clients/{id}/filings")).into_response(),
        Err(e) => app_error(lang, e),
    }
}

#[derive(Deserialize)]
pub struct FiledForm {
    csrf: String,
    version: i64,
}

pub async fn filing_filed(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    path: RecordPath,
    Form(f): Form<FiledForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &f.csrf) {
        return csrf_refused(lang);
    }
    let update = FilingUpdate {
        status: FilingStatus::Filed,
        note: None,
        version: Some(f.version),
    };
    match state
        .app
        .filing_update(&auth.grant, path.client, path.record, update, &auth.meta)
        .await
    {
        Ok(_) => Redirect::to(&format!("/clients/{}/filings", path.client)).into_response(),
        Err(e) => app_error(lang, e),
    }
}

pub async fn deadlines(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let due = state.app.filings_due(&auth.grant, 7).await?;
    Ok(layout::page(
        lang,
        &auth,
        lang.t(Msg::Deadlines),
        html! {
            p.note { (due.today.as_string()) }
            h2 { (lang.t(Msg::Overdue)) " (" (due.overdue.len()) ")" }
            (filing_rows(lang, &auth, &due.overdue, true))
            h2 { (lang.t(Msg::DueSoon)) " (" (due.due_soon.len()) ")" }
            (filing_rows(lang, &auth, &due.due_soon, true))
        },
    ))
}

// --- interactions ------------------------------------------------------------------------------

pub async fn interactions(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let list = state.app.interaction_list(&auth.grant, id).await?;
    let body = html! {
        @if may(&auth, Resource::Interaction, Action::Create) {
            form.card method="post" action={ "/clients/" (id) "/interactions" } {
                (csrf(&auth))
                label for="kind" { (lang.t(Msg::Kind)) }
                select #kind name="kind" { @for k in InteractionKind::ALL { option value=(k.as_str()) { (k.label_zh()) } } }
                label for="occurred_on" { (lang.t(Msg::Date)) } input #occurred_on type="date" name="occurred_on" required;
                label for="summary" { (lang.t(Msg::Summary)) } textarea #summary name="summary" required maxlength="2000" {}
                label for="follow_up_on" { (lang.t(Msg::FollowUp)) } input #follow_up_on type="date" name="follow_up_on";
                button type="submit" { (lang.t(Msg::Add)) }
            }
        }
        @if list.is_empty() { (empty(lang)) } @else {
            table { thead { tr {
                th { (lang.t(Msg::Date)) } th { (lang.t(Msg::Kind)) } th { (lang.t(Msg::Summary)) } th { (lang.t(Msg::FollowUp)) }
            } } tbody { @for i in &list { tr {
                td { (i.occurred_on.as_string()) } td { (i.kind_label) } td { (i.summary) }
                td { @if let Some(d) = i.follow_up_on { @if i.follow_up_due { strong.error { (d.as_string()) } } @else { (d.as_string()) } } }
            } } } }
        }
    };
    client_page(&state, lang, &auth, id, "interactions", body).await
}

#[derive(Deserialize)]
pub struct InteractionForm {
    csrf: String,
    kind: String,
    occurred_on: String,
    summary: String,
    #[serde(default)]
    follow_up_on: String,
}

pub async fn interaction_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    Form(f): Form<InteractionForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &f.csrf) {
        return csrf_refused(lang);
    }
    let input = (|| -> Result<InteractionInput, String> {
        Ok(InteractionInput {
            kind: InteractionKind::parse(&f.kind).map_err(|e| e.to_string())?,
            occurred_on: Date::parse(&f.occurred_on).map_err(|e| e.to_string())?,
            summary: Notes::parse(&f.summary).map_err(|e| e.to_string())?,
            follow_up_on: opt(&f.follow_up_on, Date::parse)?,
            follow_up_done: false,
            version: None,
        })
    })();
    let input = match input {
        Ok(i) => i,
        Err(m) => return invalid(lang, &m),
    };
    match state
        .app
        .interaction_create(&auth.grant, id, input, &auth.meta)
        .await
    {
        Ok(_) => Redirect::to(&format!("/clients/{id}/interactions")).into_response(),
        Err(e) => app_error(lang, e),
    }
}

// --- documents ---------------------------------------------------------------------------------

pub async fn documents(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let list = state.app.document_list(&auth.grant, id).await?;
    let body = html! {
        @if may(&auth, Resource::Document, Action::Create) {
            form.card method="post" enctype="multipart/form-data" action={ "/clients/" (id) "/documents" } {
                (csrf(&auth))
                label for="kind" { (lang.t(Msg::Kind)) }
                select #kind name="kind" { @for k in DocumentKind::ALL { option value=(k.as_str()) { (k.label_zh()) } } }
                label for="file" { (lang.t(Msg::FileName)) } input #file type="file" name="file" required accept="application/pdf,image/png,image/jpeg";
                button type="submit" { (lang.t(Msg::Add)) }
            }
        }
        @if list.is_empty() { (empty(lang)) } @else {
            table { thead { tr {
                th { (lang.t(Msg::Kind)) } th { (lang.t(Msg::FileName)) } th { (lang.t(Msg::Size)) } th { (lang.t(Msg::Created)) }
            } } tbody { @for d in &list { tr {
                td { (d.kind_label) }
                td { a href={ "/clients/" (id) "/documents/" (d.meta.id) } { (d.file_name) } }
                td.num { (d.size / 1024) " KiB" } td { (time(d.meta.created_at)) }
            } } } }
        }
    };
    client_page(&state, lang, &auth, id, "documents", body).await
}

/// Reads a multipart form: the CSRF token, small text fields, and one file.
async fn read_multipart(
    mut form: Multipart,
) -> Result<
    (
        std::collections::HashMap<String, String>,
        Option<(String, Vec<u8>)>,
    ),
    String,
> {
    let mut fields = std::collections::HashMap::new();
    let mut file = None;
    while let Some(field) = form.next_field().await.map_err(|e| e.body_text())? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let file_name = field.file_name().unwrap_or("upload").to_owned();
            let bytes = field.bytes().await.map_err(|e| e.body_text())?;
            file = Some((file_name, bytes.to_vec()));
        } else {
            let text = field.text().await.map_err(|e| e.body_text())?;
            fields.insert(name, text);
        }
    }
    Ok((fields, file))
}

pub async fn document_upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    form: Multipart,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let (fields, file) = match read_multipart(form).await {
        Ok(v) => v,
        Err(m) => return invalid(lang, &m),
    };
    if !csrf_ok(&auth, fields.get("csrf").map_or("", String::as_str)) {
        return csrf_refused(lang);
    }
    let Some((file_name, content)) = file else {
        return invalid(lang, "choose a file to upload");
    };
    let upload = (|| -> Result<DocumentUpload, String> {
        Ok(DocumentUpload {
            kind: DocumentKind::parse(fields.get("kind").map_or("", String::as_str))
                .map_err(|e| e.to_string())?,
            file_name: FileName::parse(&file_name).map_err(|e| e.to_string())?,
            contract: None,
            content,
        })
    })();
    let upload = match upload {
        Ok(u) => u,
        Err(m) => return invalid(lang, &m),
    };
    match state
        .app
        .document_upload(&auth.grant, id, upload, &auth.meta)
        .await
    {
        Ok(_) => Redirect::to(&format!("/clients/{id}/documents")).into_response(),
        Err(e @ (AppError::TooLarge(_) | AppError::Unsupported(_))) => {
            ApiError::from(e).into_response()
        }
        Err(e) => app_error(lang, e),
    }
}

// --- custody -----------------------------------------------------------------------------------

pub async fn custody(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let list = state.app.custody_list(&auth.grant, id).await?;
    let may_move = may(&auth, Resource::Custody, Action::Update);
    let body = html! {
        @if may(&auth, Resource::Custody, Action::Create) {
            form.inline method="post" action={ "/clients/" (id) "/custody" } {
                (csrf(&auth))
                select name="kind" aria-label=(lang.t(Msg::Kind)) { @for k in CustodyKind::ALL { option value=(k.as_str()) { (k.label_zh()) } } }
                input name="description" maxlength="100" aria-label=(lang.t(Msg::Notes));
                button type="submit" { (lang.t(Msg::Add)) }
            }
        }
        @if list.is_empty() { (empty(lang)) } @else {
            table { thead { tr {
                th { (lang.t(Msg::Kind)) } th { (lang.t(Msg::Status)) } th { (lang.t(Msg::DueBack)) } th {}
            } } tbody { @for item in &list { tr {
                td { (item.kind_label) " " (item.description.as_deref().unwrap_or("")) }
                td { (item.status) }
                td { @if let Some(d) = item.due_back { @if item.overdue { strong.error { (d.as_string()) } } @else { (d.as_string()) } } }
                td { @if may_move {
                    form.inline method="post" action={ "/clients/" (id) "/custody/" (item.meta.id) "/moves" } {
                        (csrf(&auth))
                        @if item.status == "in_safe" {
                            input type="hidden" name="action" value="check_out";
                            input name="reason" required maxlength="200" aria-label=(lang.t(Msg::Reason)) placeholder=(lang.t(Msg::Reason));
                            input type="date" name="due_back" required aria-label=(lang.t(Msg::DueBack));
                            button type="submit" { (lang.t(Msg::CheckOut)) }
                        } @else if item.status == "checked_out" {
                            input type="hidden" name="action" value="check_in";
                            button type="submit" { (lang.t(Msg::CheckIn)) }
                        }
                    }
                } }
            } } } }
        }
    };
    client_page(&state, lang, &auth, id, "custody", body).await
}

#[derive(Deserialize)]
pub struct CustodyForm {
    csrf: String,
    kind: String,
    #[serde(default)]
    description: String,
}

pub async fn custody_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    Form(f): Form<CustodyForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &f.csrf) {
        return csrf_refused(lang);
    }
    let input = (|| -> Result<CustodyItemInput, String> {
        Ok(CustodyItemInput {
            kind: CustodyKind::parse(&f.kind).map_err(|e| e.to_string())?,
            description: opt(&f.description, ShortText::parse)?,
        })
    })();
    let input = match input {
        Ok(i) => i,
        Err(m) => return invalid(lang, &m),
    };
    match state
        .app
        .custody_create(&auth.grant, id, input, &auth.meta)
        .await
    {
        Ok(_) => Redirect::to(&format!("/clients/{id}/custody")).into_response(),
        Err(e) => app_error(lang, e),
    }
}

#[derive(Deserialize)]
pub struct MoveForm {
    csrf: String,
    action: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    due_back: String,
}

pub async fn custody_move(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    path: RecordPath,
    Form(f): Form<MoveForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &f.csrf) {
        return csrf_refused(lang);
    }
    let movement = (|| -> Result<CustodyMove, String> {
        match f.action.as_str() {
            "check_out" => Ok(CustodyMove::CheckOut {
                reason: Notes::parse(&f.reason).map_err(|e| e.to_string())?,
                due_back: Date::parse(&f.due_back).map_err(|e| e.to_string())?,
                holder: None,
            }),
            "check_in" => Ok(CustodyMove::CheckIn { note: None }),
            other => Err(format!("unknown action {other:?}")),
        }
    })();
    let movement = match movement {
        Ok(m) => m,
        Err(m) => return invalid(lang, &m),
    };
    match state
        .app
        .custody_move(&auth.grant, path.client, path.record, movement, &auth.meta)
        .await
    {
        Ok(_) => Redirect::to(&format!("/clients/{}/custody", path.client)).into_response(),
        Err(e) => app_error(lang, e),
    }
}

// --- leads -------------------------------------------------------------------------------------

pub async fn leads(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let list = state.app.lead_list(&auth.grant).await?;
    Ok(layout::page(
        lang,
        &auth,
        lang.t(Msg::Leads),
        html! {
            @if may(&auth, Resource::Lead, Action::Create) {
                form.card method="post" action="/leads" {
                    (csrf(&auth))
                    label for="company_name" { (lang.t(Msg::ClientName)) } input #company_name name="company_name" required maxlength="100";
                    label for="contact_name" { (lang.t(Msg::Name)) } input #contact_name name="contact_name" maxlength="50";
                    label for="mobile" { (lang.t(Msg::Mobile)) } input #mobile name="mobile" maxlength="20" autocomplete="off";
                    label for="source" { (lang.t(Msg::Source)) } input #source name="source" maxlength="100";
                    button type="submit" { (lang.t(Msg::Add)) }
                }
            }
            @if list.is_empty() { (empty(lang)) } @else {
                table { thead { tr {
                    th { (lang.t(Msg::ClientName)) } th { (lang.t(Msg::Stage)) } th { (lang.t(Msg::Name)) }
                    th { (lang.t(Msg::Mobile)) } th { (lang.t(Msg::Source)) } th { (lang.t(Msg::Updated)) }
                } } tbody { @for l in &list { tr {
                    td { @if let Some(c) = l.client_id { a href={ "/clients/" (c) } { (l.company_name) } } @else { (l.company_name) } }
                    td { (l.stage_label) } td { (l.contact_name.as_deref().unwrap_or("")) }
                    td { (sensitive(lang, l.mobile.as_ref())) } td { (l.source.as_deref().unwrap_or("")) } td { (time(l.updated_at)) }
                } } } }
            }
        },
    ))
}

#[derive(Deserialize)]
pub struct LeadForm {
    csrf: String,
    company_name: String,
    #[serde(default)]
    contact_name: String,
    #[serde(default)]
    mobile: String,
    #[serde(default)]
    source: String,
}

pub async fn lead_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    Form(f): Form<LeadForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &f.csrf) {
        return csrf_refused(lang);
    }
    let input = (|| -> Result<LeadInput, String> {
        Ok(LeadInput {
            company_name: ClientName::parse(&f.company_name).map_err(|e| e.to_string())?,
            contact_name: opt(&f.contact_name, PersonName::parse)?,
            mobile: opt(&f.mobile, Mobile::parse)?,
            source: opt(&f.source, ShortText::parse)?,
            notes: None,
            stage: None,
            version: None,
        })
    })();
    let input = match input {
        Ok(i) => i,
        Err(m) => return invalid(lang, &m),
    };
    match state.app.lead_create(&auth.grant, input, &auth.meta).await {
        Ok(_) => Redirect::to("/leads").into_response(),
        Err(e) => app_error(lang, e),
    }
}

// --- import ------------------------------------------------------------------------------------

pub async fn import_page(headers: HeaderMap, auth: Authorized) -> Markup {
    let lang = Lang::from_headers(&headers);
    layout::page(
        lang,
        &auth,
        lang.t(Msg::Import),
        html! {
            form.card method="post" enctype="multipart/form-data" action="/clients/import" {
                (csrf(&auth))
                label for="file" { "CSV / XLSX" } input #file type="file" name="file" required accept=".csv,.xlsx";
                button type="submit" { (lang.t(Msg::Import)) }
            }
            p { a href="/clients/export?format=xlsx" { (lang.t(Msg::Export)) " XLSX" } " · " a href="/clients/export?format=csv" { (lang.t(Msg::Export)) " CSV" } }
        },
    )
}

pub async fn import_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    form: Multipart,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let (fields, file) = match read_multipart(form).await {
        Ok(v) => v,
        Err(m) => return invalid(lang, &m),
    };
    if !csrf_ok(&auth, fields.get("csrf").map_or("", String::as_str)) {
        return csrf_refused(lang);
    }
    let Some((_, content)) = file else {
        return invalid(lang, "choose a file to import");
    };
    let report = match state
        .app
        .client_import(&auth.grant, &content, false, &auth.meta)
        .await
    {
        Ok(r) => r,
        Err(e) => return app_error(lang, e),
    };
    let status = if report.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let body = layout::page(
        lang,
        &auth,
        lang.t(Msg::Import),
        html! {
            p { (report.imported) " / " (report.rows) }
            @if !report.errors.is_empty() {
                table { thead { tr { th { "#" } th { "列" } th { (lang.t(Msg::Reason)) } } }
                tbody { @for e in &report.errors { tr { td { (e.row) } td { (e.column) } td { (e.reason) } } } } }
            }
            p { a href="/clients" { (lang.t(Msg::Back)) } }
        },
    );
    (status, body).into_response()
}
