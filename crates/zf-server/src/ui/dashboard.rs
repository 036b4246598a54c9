//! The pages an accountant keeps open across all their clients: filing deadlines, their own
//! follow-ups, custody items not returned, and arrears. Each is its own route with its own
//! operation, because each reads a different resource; a strip of links joins them into one
//! dashboard and shows only the pages the caller's role may open.

use axum::extract::State;
use axum::http::HeaderMap;
use maud::{html, Markup};
use zf_app::crm::fees::ContractBalance;
use zf_policy::{Action, Resource};

use super::crm::{custody_status, filing_rows, follow_up_cell};
use super::form::{empty, may, yuan};
use super::i18n::{Lang, Msg};
use super::layout;
use crate::extract::Authorized;
use crate::routes::AppState;
use crate::ApiError;

const PAGES: &[(&str, Msg, Resource)] = &[
    ("/deadlines", Msg::Deadlines, Resource::FilingTask),
    ("/follow-ups", Msg::FollowUps, Resource::Interaction),
    ("/custody/overdue", Msg::CustodyOverdue, Resource::Custody),
    ("/arrears", Msg::ArrearsReport, Resource::Payment),
];

/// The dashboard's own pages the caller may open, the current one marked.
fn subnav(lang: Lang, auth: &Authorized, active: &str) -> Markup {
    html! {
        nav.tabs.dashboard {
            @for (href, label, resource) in PAGES {
                @if may(auth, *resource, Action::Read) {
                    @if *href == active { strong aria-current="page" { (lang.t(*label)) } } @else { a href=(*href) { (lang.t(*label)) } }
                    " "
                }
            }
        }
    }
}

fn dashboard_page(lang: Lang, auth: &Authorized, active: &str, title: Msg, body: Markup) -> Markup {
    layout::page(
        lang,
        auth,
        lang.t(title),
        html! { (subnav(lang, auth, active)) (body) },
    )
}

pub async fn deadlines(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let due = state.app.filings_due(&auth.grant, 7).await?;
    Ok(dashboard_page(
        lang,
        &auth,
        "/deadlines",
        Msg::Deadlines,
        html! {
            p.note { (lang.t(Msg::Today)) " " (due.today.as_string()) }
            section #overdue {
                h2 { (lang.t(Msg::Overdue)) " (" (due.overdue.len()) ")" }
                (filing_rows(lang, &auth, &due.overdue, true))
            }
            section #due-soon {
                h2 { (lang.t(Msg::DueSoon)) " (" (due.due_soon.len()) ")" }
                (filing_rows(lang, &auth, &due.due_soon, true))
            }
        },
    ))
}

/// The caller's own follow-ups that are due today or earlier and not yet done.
pub async fn follow_ups(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let list = state.app.follow_ups_due(&auth.grant).await?;
    Ok(dashboard_page(
        lang,
        &auth,
        "/follow-ups",
        Msg::FollowUps,
        html! {
            @if list.is_empty() { (empty(lang)) } @else {
                table.follow-ups { thead { tr {
                    th { (lang.t(Msg::ClientName)) } th { (lang.t(Msg::Date)) } th { (lang.t(Msg::Kind)) }
                    th { (lang.t(Msg::Summary)) } th { (lang.t(Msg::FollowUp)) }
                } } tbody { @for i in &list { tr {
                    td { a href={ "/clients/" (i.meta.client_id) "/interactions" } { (i.meta.client_name) } }
                    td { (i.occurred_on.as_string()) } td { (lang.pick(i.kind.label_zh(), i.kind.label_en())) }
                    td.text { (i.summary) }
                    td { (follow_up_cell(lang, &auth, i, "follow-ups")) }
                } } } }
            }
        },
    ))
}

/// UKeys, certificates and seals checked out and past the day they were due back.
pub async fn custody_overdue(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let list = state.app.custody_overdue(&auth.grant).await?;
    Ok(dashboard_page(
        lang,
        &auth,
        "/custody/overdue",
        Msg::CustodyOverdue,
        html! {
            @if list.is_empty() { (empty(lang)) } @else {
                table.custody-overdue { thead { tr {
                    th { (lang.t(Msg::ClientName)) } th { (lang.t(Msg::Kind)) } th { (lang.t(Msg::Status)) } th { (lang.t(Msg::DueBack)) }
                } } tbody { @for item in &list { tr {
                    td { a href={ "/clients/" (item.meta.client_id) "/custody" } { (item.meta.client_name) } }
                    td { (lang.pick(item.kind.label_zh(), item.kind.label_en())) " " (item.description.as_deref().unwrap_or("")) }
                    td { (custody_status(lang, &item.status)) }
                    td { @if let Some(d) = item.due_back { strong.error { (d.as_string()) } } }
                } } } }
            }
        },
    ))
}

pub(crate) fn balances(lang: Lang, contracts: &[ContractBalance], with_client: bool) -> Markup {
    html! {
        @if contracts.is_empty() { (empty(lang)) } @else {
            table.balances { thead { tr {
                @if with_client { th { (lang.t(Msg::ClientName)) } }
                th { (lang.t(Msg::ContractType)) } th { (lang.t(Msg::Term)) } th.num { (lang.t(Msg::Fee)) }
                th.num { (lang.t(Msg::Billed)) } th.num { (lang.t(Msg::Paid)) } th.num { (lang.t(Msg::Arrears)) }
                th { (lang.t(Msg::RenewalDue)) }
            } } tbody { @for c in contracts { tr {
                @if with_client { td { a href={ "/clients/" (c.client_id) "/fees" } { (c.client_name) } } }
                td { (lang.pick(c.contract_type.label_zh(), c.contract_type.label_en())) " · " (lang.pick(c.billing_cycle.label_zh(), c.billing_cycle.label_en())) }
                td { (c.starts_on.as_string()) " – " (c.ends_on.as_string()) }
                td.num { (yuan(c.fee)) }
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
    Ok(dashboard_page(
        lang,
        &auth,
        "/arrears",
        Msg::ArrearsReport,
        html! {
            p { (lang.t(Msg::Arrears)) ": " strong.total { (yuan(report.total_arrears)) } }
            (balances(lang, &report.contracts, true))
            p.note { (lang.t(Msg::AmountsInYuan)) }
        },
    ))
}
