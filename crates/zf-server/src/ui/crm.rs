//! A client's tabs: contacts, contracts, financial records, filings, interactions, documents,
//! custody and fees; and client import. Each tab is its own route with its own operation, so
//! the policy decides every tab as it decides the API. The forms on a tab post to routes of
//! their own and are shown only to roles whose permissions would let them through.

use std::collections::HashMap;

use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use zf_app::crm::contacts::ContactInput;
use zf_app::crm::contracts::ContractInput;
use zf_app::crm::custody::{CustodyItemInput, CustodyMove};
use zf_app::crm::documents::DocumentUpload;
use zf_app::crm::fees::PaymentInput;
use zf_app::crm::filings::{FilingUpdate, FilingView, GenerateFilings};
use zf_app::crm::financials::{BankAccountInput, FinancialInput};
use zf_app::crm::interactions::{InteractionInput, InteractionView};
use zf_domain::{
    BankAccount, BillingCycle, ClientId, ContractStatus, ContractType, CustodyKind, Date,
    DocumentKind, Email, FileName, FilingStatus, IdNumber, InteractionKind, Mobile, Notes, Period,
    PersonName, Position, RecordId, ShortText, WeChatId,
};
use zf_policy::{Action, Resource};

use super::form::{
    app_error, csrf, empty, fen_field, field, invalid, may, not_saved, opt, sensitive, yuan,
};
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

pub(crate) fn tabs(lang: Lang, auth: &Authorized, id: ClientId, active: &str) -> Markup {
    html! {
        nav.tabs {
            @for (seg, label, resource) in TABS {
                @if may(auth, *resource, Action::Read) {
                    @let href = if seg.is_empty() { format!("/clients/{id}") } else { format!("/clients/{id}/{seg}") };
                    @if *seg == active { strong aria-current="page" { (lang.t(*label)) } } @else { a href=(href) { (lang.t(*label)) } }
                    " "
                }
            }
        }
    }
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

fn tab_path(id: ClientId, tab: &str) -> String {
    format!("/clients/{id}/{tab}")
}

/// Where a form that went wrong leads back to, and where a saved one goes.
fn done(id: ClientId, tab: &str) -> Response {
    Redirect::to(&tab_path(id, tab)).into_response()
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
            form.card.grid method="post" action={ "/clients/" (id) "/contacts" } {
                (csrf(&auth))
                div { label for="name" { (lang.t(Msg::Name)) } input #name name="name" required maxlength="50"; }
                div { label for="position" { (lang.t(Msg::Position)) } input #position name="position" maxlength="50"; }
                div { label for="mobile" { (lang.t(Msg::Mobile)) } input #mobile name="mobile" maxlength="20" inputmode="tel" autocomplete="off"; }
                div { label for="email" { (lang.t(Msg::Email)) } input #email name="email" type="email" maxlength="254" autocomplete="off"; }
                div { label for="wechat" { (lang.t(Msg::WeChat)) } input #wechat name="wechat" maxlength="20" autocomplete="off"; }
                div { label for="id_number" { (lang.t(Msg::IdNumber)) } input #id_number name="id_number" maxlength="18" autocomplete="off"; }
                div.actions { button type="submit" { (lang.t(Msg::Add)) } }
            }
        }
    };
    client_page(&state, lang, &auth, id, "contacts", body).await
}

#[derive(Deserialize)]
pub struct ContactForm {
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    position: String,
    #[serde(default)]
    mobile: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    wechat: String,
    #[serde(default)]
    id_number: String,
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
            name: field(lang, Msg::Name, PersonName::parse(&f.name))?,
            position: opt(lang, Msg::Position, &f.position, Position::parse)?,
            mobile: opt(lang, Msg::Mobile, &f.mobile, Mobile::parse)?,
            email: opt(lang, Msg::Email, &f.email, Email::parse)?,
            wechat: opt(lang, Msg::WeChat, &f.wechat, WeChatId::parse)?,
            id_number: opt(lang, Msg::IdNumber, &f.id_number, IdNumber::parse)?,
            primary: false,
            version: None,
        })
    })();
    let back = tab_path(id, "contacts");
    let input = match input {
        Ok(i) => i,
        Err(m) => return invalid(lang, &back, &m),
    };
    match state
        .app
        .contact_create(&auth.grant, id, input, &auth.meta)
        .await
    {
        Ok(_) => done(id, "contacts"),
        Err(e) => app_error(lang, &back, e),
    }
}

// --- contracts ---------------------------------------------------------------------------------

pub async fn contracts(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let list = state.app.contract_list(&auth.grant, id, &auth.meta).await?;
    let may_attach = may(&auth, Resource::Document, Action::Create);
    let today = zf_app::crm::filings::today();
    let body = html! {
        @if list.is_empty() { (empty(lang)) } @else {
            table.contracts { thead { tr {
                th { (lang.t(Msg::ContractType)) } th.num { (lang.t(Msg::Fee)) } th { (lang.t(Msg::BillingCycle)) }
                th { (lang.t(Msg::Term)) } th { (lang.t(Msg::Status)) } th { (lang.t(Msg::SignedPdf)) }
            } } tbody { @for c in &list { tr {
                td { (lang.pick(c.contract_type.label_zh(), c.contract_type.label_en())) }
                td.num { (yuan(c.fee.as_fen())) }
                td { (lang.pick(c.billing_cycle.label_zh(), c.billing_cycle.label_en())) }
                td { (c.starts_on.as_string()) " – " (c.ends_on.as_string()) }
                td { (lang.pick(c.status.label_zh(), c.status.label_en())) }
                td {
                    @for (n, d) in c.documents.iter().enumerate() {
                        a.download href={ "/clients/" (id) "/documents/" (d) } download { "PDF " (n + 1) } " "
                    }
                    @if may_attach {
                        form.attach method="post" enctype="multipart/form-data" action={ "/clients/" (id) "/contracts/" (c.meta.id) "/documents" } {
                            (csrf(&auth))
                            input type="file" name="file" required accept="application/pdf" aria-label=(lang.t(Msg::SignedPdf));
                            button type="submit" { (lang.t(Msg::Upload)) }
                        }
                    }
                }
            } } } }
            p.note { (lang.t(Msg::SensitiveReadAudited)) }
        }
        @if may(&auth, Resource::Contract, Action::Create) {
            h2 { (lang.t(Msg::AddContract)) }
            form.card.grid #new-contract method="post" action={ "/clients/" (id) "/contracts" } {
                (csrf(&auth))
                div { label for="contract_type" { (lang.t(Msg::ContractType)) }
                    select #contract_type name="contract_type" { @for t in ContractType::ALL { option value=(t.as_str()) { (lang.pick(t.label_zh(), t.label_en())) } } } }
                div { label for="fee" { (lang.t(Msg::Fee)) } input #fee name="fee" required inputmode="decimal" maxlength="24" placeholder="0.00" autocomplete="off"; }
                div { label for="billing_cycle" { (lang.t(Msg::BillingCycle)) }
                    select #billing_cycle name="billing_cycle" { @for b in BillingCycle::ALL { option value=(b.as_str()) { (lang.pick(b.label_zh(), b.label_en())) } } } }
                div { label for="contract_status" { (lang.t(Msg::Status)) }
                    select #contract_status name="status" { @for s in ContractStatus::ALL { option value=(s.as_str()) selected[s == ContractStatus::Active] { (lang.pick(s.label_zh(), s.label_en())) } } } }
                div { label for="starts_on" { (lang.t(Msg::StartsOn)) } input #starts_on name="starts_on" type="date" required value=(today.as_string()); }
                div { label for="ends_on" { (lang.t(Msg::EndsOn)) } input #ends_on name="ends_on" type="date" required; }
                div.wide { label for="contract_notes" { (lang.t(Msg::Notes)) } textarea #contract_notes name="notes" maxlength="2000" rows="2" {} }
                div.actions { button type="submit" { (lang.t(Msg::AddContract)) } }
            }
        }
    };
    client_page(&state, lang, &auth, id, "contracts", body).await
}

#[derive(Deserialize)]
pub struct ContractForm {
    csrf: String,
    #[serde(default)]
    contract_type: String,
    #[serde(default)]
    fee: String,
    #[serde(default)]
    billing_cycle: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    starts_on: String,
    #[serde(default)]
    ends_on: String,
    #[serde(default)]
    notes: String,
}

pub async fn contract_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    Form(f): Form<ContractForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &f.csrf) {
        return csrf_refused(lang);
    }
    let input = (|| -> Result<ContractInput, String> {
        Ok(ContractInput {
            contract_type: field(
                lang,
                Msg::ContractType,
                ContractType::parse(&f.contract_type),
            )?,
            fee: fen_field(lang, Msg::Fee, &f.fee)?,
            billing_cycle: field(
                lang,
                Msg::BillingCycle,
                BillingCycle::parse(&f.billing_cycle),
            )?,
            starts_on: field(lang, Msg::StartsOn, Date::parse(&f.starts_on))?,
            ends_on: field(lang, Msg::EndsOn, Date::parse(&f.ends_on))?,
            status: field(lang, Msg::Status, ContractStatus::parse(&f.status))?,
            notes: opt(lang, Msg::Notes, &f.notes, Notes::parse)?,
            version: None,
        })
    })();
    let back = tab_path(id, "contracts");
    let input = match input {
        Ok(i) => i,
        Err(m) => return invalid(lang, &back, &m),
    };
    match state
        .app
        .contract_create(&auth.grant, id, input, &auth.meta)
        .await
    {
        Ok(_) => done(id, "contracts"),
        Err(e) => app_error(lang, &back, e),
    }
}

/// The signed copy of a contract, kept as one of the client's documents and linked to it.
pub async fn contract_attach(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    path: RecordPath,
    form: Multipart,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let back = tab_path(path.client, "contracts");
    let upload = match read_upload(lang, &auth, &back, form).await {
        Ok((_, file_name, content)) => (file_name, content),
        Err(refused) => return refused,
    };
    let upload = match field(lang, Msg::FileName, FileName::parse(&upload.0)) {
        Ok(file_name) => DocumentUpload {
            kind: DocumentKind::Contract,
            file_name,
            contract: Some(path.record),
            content: upload.1,
        },
        Err(m) => return invalid(lang, &back, &m),
    };
    match state
        .app
        .document_upload(&auth.grant, path.client, upload, &auth.meta)
        .await
    {
        Ok(_) => done(path.client, "contracts"),
        Err(e) => app_error(lang, &back, e),
    }
}

// --- financial records -----------------------------------------------------------------------

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
            table.financials { thead { tr {
                th { (lang.t(Msg::Period)) } th.num { (lang.t(Msg::Revenue)) } th.num { (lang.t(Msg::Cost)) }
                th.num { (lang.t(Msg::Profit)) } th.num { (lang.t(Msg::Vat)) } th.num { (lang.t(Msg::Cit)) }
                th.num { (lang.t(Msg::Iit)) } th { (lang.t(Msg::BankAccounts)) }
            } } tbody { @for f in &list { tr {
                td { (f.period) } td.num { (yuan(f.revenue)) } td.num { (yuan(f.cost)) }
                td.num { @if f.profit < 0 { span.error { (yuan(f.profit)) } } @else { (yuan(f.profit)) } }
                td.num { (yuan(f.vat)) } td.num { (yuan(f.cit)) } td.num { (yuan(f.iit_withheld)) }
                td { @for b in &f.bank_accounts { (b.bank) " " (sensitive(lang, Some(&b.number))) br; } }
            } } } }
            p.note { (lang.t(Msg::AmountsInYuan)) " " (lang.t(Msg::SensitiveReadAudited)) }
        }
        @if may(&auth, Resource::FinancialRecord, Action::Create) {
            h2 { (lang.t(Msg::AddFinancial)) }
            form.card.grid #new-financial method="post" action={ "/clients/" (id) "/financials" } {
                (csrf(&auth))
                div.wide { label for="period" { (lang.t(Msg::PeriodHint)) } input #period name="period" required maxlength="7" autocomplete="off"; }
                @for (name, label) in [("revenue", Msg::Revenue), ("cost", Msg::Cost), ("vat", Msg::Vat), ("cit", Msg::Cit), ("iit_withheld", Msg::Iit)] {
                    div { label for=(name) { (lang.t(label)) } input id=(name) name=(name) required inputmode="decimal" maxlength="24" placeholder="0.00" autocomplete="off"; }
                }
                div { label for="bank" { (lang.t(Msg::Bank)) } input #bank name="bank" maxlength="100"; }
                div { label for="account" { (lang.t(Msg::AccountNumber)) } input #account name="account" maxlength="40" inputmode="numeric" autocomplete="off"; }
                div.wide { label for="fin_notes" { (lang.t(Msg::Notes)) } textarea #fin_notes name="notes" maxlength="2000" rows="2" {} }
                p.note.wide { (lang.t(Msg::AmountsInYuan)) }
                div.actions { button type="submit" { (lang.t(Msg::Add)) } }
            }
        }
    };
    client_page(&state, lang, &auth, id, "financials", body).await
}

#[derive(Deserialize)]
pub struct FinancialForm {
    csrf: String,
    #[serde(default)]
    period: String,
    #[serde(default)]
    revenue: String,
    #[serde(default)]
    cost: String,
    #[serde(default)]
    vat: String,
    #[serde(default)]
    cit: String,
    #[serde(default)]
    iit_withheld: String,
    #[serde(default)]
    bank: String,
    #[serde(default)]
    account: String,
    #[serde(default)]
    notes: String,
}

impl FinancialForm {
    fn parse(&self, lang: Lang) -> Result<FinancialInput, String> {
        let bank = opt(lang, Msg::Bank, &self.bank, ShortText::parse)?;
        let number = opt(lang, Msg::AccountNumber, &self.account, BankAccount::parse)?;
        let bank_accounts = match (bank, number) {
            (Some(bank), Some(number)) => vec![BankAccountInput { bank, number }],
            (None, None) => Vec::new(),
            _ => return Err(lang.t(Msg::BankBoth).to_owned()),
        };
        Ok(FinancialInput {
            period: field(lang, Msg::Period, Period::parse(&self.period))?,
            revenue: fen_field(lang, Msg::Revenue, &self.revenue)?,
            cost: fen_field(lang, Msg::Cost, &self.cost)?,
            vat: fen_field(lang, Msg::Vat, &self.vat)?,
            cit: fen_field(lang, Msg::Cit, &self.cit)?,
            iit_withheld: fen_field(lang, Msg::Iit, &self.iit_withheld)?,
            bank_accounts,
            notes: opt(lang, Msg::Notes, &self.notes, Notes::parse)?,
            version: None,
        })
    }
}

pub async fn financial_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    Form(f): Form<FinancialForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &f.csrf) {
        return csrf_refused(lang);
    }
    let back = tab_path(id, "financials");
    let input = match f.parse(lang) {
        Ok(i) => i,
        Err(m) => return invalid(lang, &back, &m),
    };
    match state
        .app
        .financial_create(&auth.grant, id, input, &auth.meta)
        .await
    {
        Ok(_) => done(id, "financials"),
        Err(e) => app_error(lang, &back, e),
    }
}

// --- fees --------------------------------------------------------------------------------------

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
    let contract_label = |contract: RecordId| {
        report
            .contracts
            .iter()
            .find(|c| c.contract == contract)
            .map(|c| {
                format!(
                    "{} {} – {}",
                    lang.pick(c.contract_type.label_zh(), c.contract_type.label_en()),
                    c.starts_on.as_string(),
                    c.ends_on.as_string()
                )
            })
            .unwrap_or_default()
    };
    let body = html! {
        (super::dashboard::balances(lang, &report.contracts, false))
        h2 { (lang.t(Msg::Paid)) }
        @if payments.is_empty() { (empty(lang)) } @else {
            table.payments { thead { tr {
                th { (lang.t(Msg::PaidOn)) } th { (lang.t(Msg::Contract)) } th.num { (lang.t(Msg::Amount)) }
                th { (lang.t(Msg::PaymentMethod)) } th { (lang.t(Msg::Notes)) }
            } }
            tbody { @for p in &payments { tr {
                td { (p.paid_on.as_string()) } td { (contract_label(p.contract)) } td.num { (yuan(p.amount)) }
                td { (p.method.as_deref().unwrap_or("")) } td { (p.note.as_deref().unwrap_or("")) }
            } } } }
        }
        @if may(&auth, Resource::Payment, Action::Create) && !report.contracts.is_empty() {
            h2 { (lang.t(Msg::RecordPayment)) }
            form.card.grid #new-payment method="post" action={ "/clients/" (id) "/payments" } {
                (csrf(&auth))
                div.wide { label for="contract" { (lang.t(Msg::Contract)) }
                    select #contract name="contract" { @for c in &report.contracts { option value=(c.contract) { (contract_label(c.contract)) } } } }
                div { label for="amount" { (lang.t(Msg::Amount)) } input #amount name="amount" required inputmode="decimal" maxlength="24" placeholder="0.00" autocomplete="off"; }
                div { label for="paid_on" { (lang.t(Msg::PaidOn)) } input #paid_on name="paid_on" type="date" required value=(report.today.as_string()); }
                div { label for="method" { (lang.t(Msg::PaymentMethod)) } input #method name="method" maxlength="100"; }
                div { label for="pay_note" { (lang.t(Msg::Notes)) } input #pay_note name="note" maxlength="2000"; }
                div.actions { button type="submit" { (lang.t(Msg::RecordPayment)) } }
            }
        }
    };
    client_page(&state, lang, &auth, id, "fees", body).await
}

#[derive(Deserialize)]
pub struct PaymentForm {
    csrf: String,
    #[serde(default)]
    contract: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    paid_on: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    note: String,
}

pub async fn payment_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    Form(f): Form<PaymentForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &f.csrf) {
        return csrf_refused(lang);
    }
    let input = (|| -> Result<PaymentInput, String> {
        Ok(PaymentInput {
            contract: field(lang, Msg::Contract, RecordId::parse(&f.contract))?,
            amount: fen_field(lang, Msg::Amount, &f.amount)?,
            paid_on: field(lang, Msg::PaidOn, Date::parse(&f.paid_on))?,
            method: opt(lang, Msg::PaymentMethod, &f.method, ShortText::parse)?,
            note: opt(lang, Msg::Notes, &f.note, Notes::parse)?,
        })
    })();
    let back = tab_path(id, "fees");
    let input = match input {
        Ok(i) => i,
        Err(m) => return invalid(lang, &back, &m),
    };
    match state
        .app
        .payment_create(&auth.grant, id, input, &auth.meta)
        .await
    {
        Ok(_) => done(id, "fees"),
        Err(e) => app_error(lang, &back, e),
    }
}

// --- filings -----------------------------------------------------------------------------------

pub(crate) fn filing_rows(
    lang: Lang,
    auth: &Authorized,
    list: &[FilingView],
    with_client: bool,
) -> Markup {
    let may_update = may(auth, Resource::FilingTask, Action::Update);
    html! {
        @if list.is_empty() { (empty(lang)) } @else {
            table.filings { thead { tr {
                @if with_client { th { (lang.t(Msg::ClientName)) } }
                th { (lang.t(Msg::TaxKind)) } th { (lang.t(Msg::Period)) } th { (lang.t(Msg::DueDate)) }
                th { (lang.t(Msg::Status)) } th {}
            } } tbody { @for f in list { tr class={ "filing-" (f.status.as_str()) } {
                @if with_client { td { a href={ "/clients/" (f.meta.client_id) "/filings" } { (f.meta.client_name) } } }
                td { (lang.pick(f.tax.label_zh(), f.tax.label_en())) } td { (f.period) } td { (f.due.as_string()) }
                td.status { @if f.status == FilingStatus::Overdue { strong.error { (lang.pick(f.status.label_zh(), f.status.label_en())) } } @else { (lang.pick(f.status.label_zh(), f.status.label_en())) } }
                td { @if may_update && f.status != FilingStatus::Filed {
                    form.inline method="post" action={ "/clients/" (f.meta.client_id) "/filings/" (f.meta.id) } {
                        (csrf(auth))
                        input type="hidden" name="version" value=(f.meta.version);
                        @if with_client { input type="hidden" name="from" value="deadlines"; }
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
            form.inline.generate method="post" action={ "/clients/" (id) "/filings/generate" } {
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
        Ok(_) => done(id, "filings"),
        Err(e) => app_error(lang, &tab_path(id, "filings"), e),
    }
}

#[derive(Deserialize)]
pub struct FiledForm {
    csrf: String,
    #[serde(default)]
    version: String,
    /// The dashboard posts here too and wants to stay on the dashboard.
    #[serde(default)]
    from: String,
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
    let back = if f.from == "deadlines" {
        "/deadlines".to_owned()
    } else {
        tab_path(path.client, "filings")
    };
    let version = match field(lang, Msg::Version, f.version.trim().parse::<i64>()) {
        Ok(v) => v,
        Err(m) => return invalid(lang, &back, &m),
    };
    let update = FilingUpdate {
        status: FilingStatus::Filed,
        note: None,
        version: Some(version),
    };
    match state
        .app
        .filing_update(&auth.grant, path.client, path.record, update, &auth.meta)
        .await
    {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(e) => app_error(lang, &back, e),
    }
}

// --- interactions ------------------------------------------------------------------------------

/// A follow-up that is still open, with the button that closes it for roles that may.
pub(crate) fn follow_up_cell(
    lang: Lang,
    auth: &Authorized,
    i: &InteractionView,
    from: &str,
) -> Markup {
    html! {
        @if let Some(d) = i.follow_up_on {
            @if i.follow_up_due { strong.error { (d.as_string()) } } @else { (d.as_string()) }
            @if i.follow_up_done { " ✓" }
            @else if may(auth, Resource::Interaction, Action::Update) {
                " "
                form.inline method="post" action={ "/clients/" (i.meta.client_id) "/interactions/" (i.meta.id) "/done" } {
                    (csrf(auth))
                    input type="hidden" name="version" value=(i.meta.version);
                    input type="hidden" name="from" value=(from);
                    button type="submit" { (lang.t(Msg::MarkDone)) }
                }
            }
        }
    }
}

pub async fn interactions(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let list = state.app.interaction_list(&auth.grant, id).await?;
    let today = zf_app::crm::filings::today();
    let body = html! {
        @if may(&auth, Resource::Interaction, Action::Create) {
            form.card.grid method="post" action={ "/clients/" (id) "/interactions" } {
                (csrf(&auth))
                div { label for="kind" { (lang.t(Msg::Kind)) }
                    select #kind name="kind" { @for k in InteractionKind::ALL { option value=(k.as_str()) { (lang.pick(k.label_zh(), k.label_en())) } } } }
                div { label for="occurred_on" { (lang.t(Msg::Date)) } input #occurred_on type="date" name="occurred_on" required value=(today.as_string()); }
                div.wide { label for="summary" { (lang.t(Msg::Summary)) } textarea #summary name="summary" required maxlength="2000" rows="3" {} }
                div { label for="follow_up_on" { (lang.t(Msg::FollowUp)) } input #follow_up_on type="date" name="follow_up_on"; }
                div.actions { button type="submit" { (lang.t(Msg::Add)) } }
            }
        }
        @if list.is_empty() { (empty(lang)) } @else {
            table.interactions { thead { tr {
                th { (lang.t(Msg::Date)) } th { (lang.t(Msg::Kind)) } th { (lang.t(Msg::Summary)) } th { (lang.t(Msg::FollowUp)) }
            } } tbody { @for i in &list { tr {
                td { (i.occurred_on.as_string()) } td { (lang.pick(i.kind.label_zh(), i.kind.label_en())) } td.text { (i.summary) }
                td { (follow_up_cell(lang, &auth, i, "interactions")) }
            } } } }
        }
    };
    client_page(&state, lang, &auth, id, "interactions", body).await
}

#[derive(Deserialize)]
pub struct InteractionForm {
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    occurred_on: String,
    #[serde(default)]
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
            kind: field(lang, Msg::Kind, InteractionKind::parse(&f.kind))?,
            occurred_on: field(lang, Msg::Date, Date::parse(&f.occurred_on))?,
            summary: field(lang, Msg::Summary, Notes::parse(&f.summary))?,
            follow_up_on: opt(lang, Msg::FollowUp, &f.follow_up_on, Date::parse)?,
            follow_up_done: false,
            version: None,
        })
    })();
    let back = tab_path(id, "interactions");
    let input = match input {
        Ok(i) => i,
        Err(m) => return invalid(lang, &back, &m),
    };
    match state
        .app
        .interaction_create(&auth.grant, id, input, &auth.meta)
        .await
    {
        Ok(_) => done(id, "interactions"),
        Err(e) => app_error(lang, &back, e),
    }
}

#[derive(Deserialize)]
pub struct FollowUpDoneForm {
    csrf: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    from: String,
}

/// Closes a follow-up. The update replaces the whole interaction, so it is rebuilt from the
/// stored one with only the flag changed; the version keeps a concurrent edit from being lost.
pub async fn follow_up_done(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    path: RecordPath,
    Form(f): Form<FollowUpDoneForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &f.csrf) {
        return csrf_refused(lang);
    }
    let back = if f.from == "follow-ups" {
        "/follow-ups".to_owned()
    } else {
        tab_path(path.client, "interactions")
    };
    let version = match field(lang, Msg::Version, f.version.trim().parse::<i64>()) {
        Ok(v) => v,
        Err(m) => return invalid(lang, &back, &m),
    };
    let current = match state.app.interaction_list(&auth.grant, path.client).await {
        Ok(list) => list.into_iter().find(|i| i.meta.id == path.record),
        Err(e) => return app_error(lang, &back, e),
    };
    let Some(current) = current else {
        return app_error(lang, &back, zf_app::AppError::NotFound);
    };
    let summary = match field(lang, Msg::Summary, Notes::parse(&current.summary)) {
        Ok(s) => s,
        Err(m) => return invalid(lang, &back, &m),
    };
    let input = InteractionInput {
        kind: current.kind,
        occurred_on: current.occurred_on,
        summary,
        follow_up_on: current.follow_up_on,
        follow_up_done: true,
        version: Some(version),
    };
    match state
        .app
        .interaction_update(&auth.grant, path.client, path.record, input, &auth.meta)
        .await
    {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(e) => app_error(lang, &back, e),
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
            form.card.grid method="post" enctype="multipart/form-data" action={ "/clients/" (id) "/documents" } {
                (csrf(&auth))
                div { label for="kind" { (lang.t(Msg::Kind)) }
                    select #kind name="kind" { @for k in DocumentKind::ALL { option value=(k.as_str()) { (lang.pick(k.label_zh(), k.label_en())) } } } }
                div { label for="file" { (lang.t(Msg::FileName)) } input #file type="file" name="file" required accept="application/pdf,image/png,image/jpeg"; }
                div.actions { button type="submit" { (lang.t(Msg::Upload)) } }
            }
        }
        @if list.is_empty() { (empty(lang)) } @else {
            table.documents { thead { tr {
                th { (lang.t(Msg::Kind)) } th { (lang.t(Msg::FileName)) } th.num { (lang.t(Msg::Size)) } th { (lang.t(Msg::Created)) }
            } } tbody { @for d in &list { tr {
                td { (lang.pick(d.kind.label_zh(), d.kind.label_en())) }
                td { a.download href={ "/clients/" (id) "/documents/" (d.meta.id) } download { (d.file_name) } }
                td.num { (d.size.div_ceil(1024)) " KiB" } td { (time(d.meta.created_at)) }
            } } } }
        }
    };
    client_page(&state, lang, &auth, id, "documents", body).await
}

/// Reads an upload form: the form token first, then the one file. What the browser could not
/// send whole (too large, cut off) is refused with the status that says so.
async fn read_upload(
    lang: Lang,
    auth: &Authorized,
    back: &str,
    mut form: Multipart,
) -> Result<(HashMap<String, String>, String, Vec<u8>), Response> {
    let mut fields = HashMap::new();
    let mut file = None;
    let refused = |e: axum::extract::multipart::MultipartError| {
        not_saved(lang, back, e.status(), &e.body_text())
    };
    while let Some(part) = form.next_field().await.map_err(refused)? {
        let name = part.name().unwrap_or_default().to_owned();
        if name == "file" {
            let file_name = part.file_name().unwrap_or("upload").to_owned();
            let bytes = part.bytes().await.map_err(refused)?;
            file = Some((file_name, bytes.to_vec()));
        } else {
            let text = part.text().await.map_err(refused)?;
            fields.insert(name, text);
        }
    }
    if !csrf_ok(auth, fields.get("csrf").map_or("", String::as_str)) {
        return Err(csrf_refused(lang));
    }
    match file {
        Some((file_name, content)) if !content.is_empty() || !file_name.is_empty() => {
            Ok((fields, file_name, content))
        }
        _ => Err(invalid(lang, back, lang.t(Msg::ChooseFile))),
    }
}

pub async fn document_upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    form: Multipart,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let back = tab_path(id, "documents");
    let (fields, file_name, content) = match read_upload(lang, &auth, &back, form).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let upload = (|| -> Result<DocumentUpload, String> {
        Ok(DocumentUpload {
            kind: field(
                lang,
                Msg::Kind,
                DocumentKind::parse(fields.get("kind").map_or("", String::as_str)),
            )?,
            file_name: field(lang, Msg::FileName, FileName::parse(&file_name))?,
            contract: None,
            content,
        })
    })();
    let upload = match upload {
        Ok(u) => u,
        Err(m) => return invalid(lang, &back, &m),
    };
    match state
        .app
        .document_upload(&auth.grant, id, upload, &auth.meta)
        .await
    {
        Ok(_) => done(id, "documents"),
        Err(e) => app_error(lang, &back, e),
    }
}

// --- custody -----------------------------------------------------------------------------------

pub(crate) fn custody_status(lang: Lang, status: &str) -> &'static str {
    match status {
        "in_safe" => lang.t(Msg::InSafe),
        "checked_out" => lang.t(Msg::CheckedOut),
        "returned_to_client" => lang.t(Msg::ReturnedToClient),
        _ => "",
    }
}

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
            form.inline.add-custody method="post" action={ "/clients/" (id) "/custody" } {
                (csrf(&auth))
                select name="kind" aria-label=(lang.t(Msg::Kind)) { @for k in CustodyKind::ALL { option value=(k.as_str()) { (lang.pick(k.label_zh(), k.label_en())) } } }
                " "
                input name="description" maxlength="100" aria-label=(lang.t(Msg::Notes)) placeholder=(lang.t(Msg::Notes));
                " "
                button type="submit" { (lang.t(Msg::Add)) }
            }
        }
        @if list.is_empty() { (empty(lang)) } @else {
            table.custody { thead { tr {
                th { (lang.t(Msg::Kind)) } th { (lang.t(Msg::Status)) } th { (lang.t(Msg::DueBack)) } th {}
            } } tbody { @for item in &list { tr {
                td { (lang.pick(item.kind.label_zh(), item.kind.label_en())) " " (item.description.as_deref().unwrap_or("")) }
                td.status { (custody_status(lang, &item.status)) }
                td { @if let Some(d) = item.due_back { @if item.overdue { strong.error { (d.as_string()) } } @else { (d.as_string()) } } }
                td { @if may_move {
                    form.inline.move method="post" action={ "/clients/" (id) "/custody/" (item.meta.id) "/moves" } {
                        (csrf(&auth))
                        @if item.status == "in_safe" {
                            input type="hidden" name="action" value="check_out";
                            input name="reason" required maxlength="200" aria-label=(lang.t(Msg::Reason)) placeholder=(lang.t(Msg::Reason));
                            " "
                            input type="date" name="due_back" required aria-label=(lang.t(Msg::DueBack));
                            " "
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
    #[serde(default)]
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
            kind: field(lang, Msg::Kind, CustodyKind::parse(&f.kind))?,
            description: opt(lang, Msg::Notes, &f.description, ShortText::parse)?,
        })
    })();
    let back = tab_path(id, "custody");
    let input = match input {
        Ok(i) => i,
        Err(m) => return invalid(lang, &back, &m),
    };
    match state
        .app
        .custody_create(&auth.grant, id, input, &auth.meta)
        .await
    {
        Ok(_) => done(id, "custody"),
        Err(e) => app_error(lang, &back, e),
    }
}

#[derive(Deserialize)]
pub struct MoveForm {
    csrf: String,
    #[serde(default)]
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
    let back = tab_path(path.client, "custody");
    let movement = (|| -> Result<CustodyMove, String> {
        match f.action.as_str() {
            "check_out" => Ok(CustodyMove::CheckOut {
                reason: field(lang, Msg::Reason, Notes::parse(&f.reason))?,
                due_back: field(lang, Msg::DueBack, Date::parse(&f.due_back))?,
                holder: None,
            }),
            "check_in" => Ok(CustodyMove::CheckIn { note: None }),
            other => Err(format!("unknown action {other:?}")),
        }
    })();
    let movement = match movement {
        Ok(m) => m,
        Err(m) => return invalid(lang, &back, &m),
    };
    match state
        .app
        .custody_move(&auth.grant, path.client, path.record, movement, &auth.meta)
        .await
    {
        Ok(_) => done(path.client, "custody"),
        Err(e) => app_error(lang, &back, e),
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
    let back = "/clients/import";
    let content = match read_upload(lang, &auth, back, form).await {
        Ok((_, _, content)) => content,
        Err(refused) => return refused,
    };
    let report = match state
        .app
        .client_import(&auth.grant, &content, false, &auth.meta)
        .await
    {
        Ok(r) => r,
        Err(e) => return app_error(lang, back, e),
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
