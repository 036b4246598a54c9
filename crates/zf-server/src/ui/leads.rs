//! Leads (线索): prospective clients, moved through the pipeline and, once signed, converted
//! into clients with the details a client needs that a lead does not have.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use zf_app::crm::leads::{LeadConversion, LeadInput, LeadView};
use zf_app::SensitiveValue;
use zf_domain::{
    ClientName, IdNumber, LeadStage, Mobile, Notes, PersonName, ShortText, TaxpayerType, Uscc,
};
use zf_policy::{Action, Resource};

use super::form::{app_error, csrf, empty, field, invalid, may, opt, sensitive};
use super::i18n::{Lang, Msg};
use super::{csrf_ok, csrf_refused, layout, time};
use crate::extract::{Authorized, LeadIdPath};
use crate::routes::AppState;
use crate::ApiError;

const BACK: &str = "/leads";

fn lead_actions(lang: Lang, auth: &Authorized, l: &LeadView) -> Markup {
    let id = l.id;
    html! {
        form.inline.stage method="post" action={ "/leads/" (id) } {
            (csrf(auth))
            input type="hidden" name="version" value=(l.version);
            select name="stage" aria-label=(lang.t(Msg::Stage)) {
                // Won is what converting a lead records; it is not chosen by hand.
                @for s in LeadStage::ALL.into_iter().filter(|s| *s != LeadStage::Won || *s == l.stage) {
                    option value=(s.as_str()) selected[s == l.stage] { (lang.pick(s.label_zh(), s.label_en())) }
                }
            }
            " "
            button type="submit" { (lang.t(Msg::ChangeStage)) }
        }
        details.convert {
            summary { (lang.t(Msg::ConvertToClient)) }
            form.card method="post" action={ "/leads/" (id) "/convert" } {
                (csrf(auth))
                input type="hidden" name="version" value=(l.version);
                label for={ "uscc-" (id) } { (lang.t(Msg::Uscc)) }
                input id={ "uscc-" (id) } name="uscc" required maxlength="18" autocomplete="off";
                label for={ "taxpayer-" (id) } { (lang.t(Msg::TaxpayerType)) }
                select id={ "taxpayer-" (id) } name="taxpayer_type" {
                    @for t in TaxpayerType::ALL { option value=(t.as_str()) { (lang.pick(t.label_zh(), t.label_en())) } }
                }
                label for={ "rep-" (id) } { (lang.t(Msg::LegalRepName)) }
                input id={ "rep-" (id) } name="legal_rep_name" required maxlength="50";
                label for={ "rep-id-" (id) } { (lang.t(Msg::LegalRepIdNumber)) }
                input id={ "rep-id-" (id) } name="legal_rep_id_number" required maxlength="18" autocomplete="off";
                p.note { (lang.t(Msg::ConvertNote)) }
                button type="submit" { (lang.t(Msg::ConvertToClient)) }
            }
        }
    }
}

pub async fn leads(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
) -> Result<Markup, ApiError> {
    let lang = Lang::from_headers(&headers);
    let list = state.app.lead_list(&auth.grant).await?;
    let may_update = may(&auth, Resource::Lead, Action::Update);
    Ok(layout::page(
        lang,
        &auth,
        lang.t(Msg::Leads),
        html! {
            @if may(&auth, Resource::Lead, Action::Create) {
                form.card.grid method="post" action="/leads" {
                    (csrf(&auth))
                    div.wide { label for="company_name" { (lang.t(Msg::ClientName)) } input #company_name name="company_name" required maxlength="100"; }
                    div { label for="contact_name" { (lang.t(Msg::Name)) } input #contact_name name="contact_name" maxlength="50"; }
                    div { label for="mobile" { (lang.t(Msg::Mobile)) } input #mobile name="mobile" maxlength="20" inputmode="tel" autocomplete="off"; }
                    div.wide { label for="source" { (lang.t(Msg::Source)) } input #source name="source" maxlength="100"; }
                    div.actions { button type="submit" { (lang.t(Msg::Add)) } }
                }
            }
            @if list.is_empty() { (empty(lang)) } @else {
                table.leads { thead { tr {
                    th { (lang.t(Msg::ClientName)) } th { (lang.t(Msg::Stage)) } th { (lang.t(Msg::Name)) }
                    th { (lang.t(Msg::Mobile)) } th { (lang.t(Msg::Source)) } th { (lang.t(Msg::Updated)) }
                    @if may_update { th {} }
                } } tbody { @for l in &list { tr {
                    td { @if let Some(c) = l.client_id { a href={ "/clients/" (c) } { (l.company_name) } } @else { (l.company_name) } }
                    td.stage { (lang.pick(l.stage.label_zh(), l.stage.label_en())) }
                    td { (l.contact_name.as_deref().unwrap_or("")) }
                    td { (sensitive(lang, l.mobile.as_ref())) } td { (l.source.as_deref().unwrap_or("")) } td { (time(l.updated_at)) }
                    @if may_update { td { @if l.client_id.is_none() { (lead_actions(lang, &auth, l)) } } }
                } } } }
            }
        },
    ))
}

#[derive(Deserialize)]
pub struct LeadForm {
    csrf: String,
    #[serde(default)]
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
            company_name: field(lang, Msg::ClientName, ClientName::parse(&f.company_name))?,
            contact_name: opt(lang, Msg::Name, &f.contact_name, PersonName::parse)?,
            mobile: opt(lang, Msg::Mobile, &f.mobile, Mobile::parse)?,
            source: opt(lang, Msg::Source, &f.source, ShortText::parse)?,
            notes: None,
            stage: None,
            version: None,
        })
    })();
    let input = match input {
        Ok(i) => i,
        Err(m) => return invalid(lang, BACK, &m),
    };
    match state.app.lead_create(&auth.grant, input, &auth.meta).await {
        Ok(_) => Redirect::to(BACK).into_response(),
        Err(e) => app_error(lang, BACK, e),
    }
}

fn version(lang: Lang, raw: &str) -> Result<i64, String> {
    field(lang, Msg::Version, raw.trim().parse::<i64>())
}

#[derive(Deserialize)]
pub struct StageForm {
    csrf: String,
    #[serde(default)]
    stage: String,
    #[serde(default)]
    version: String,
}

/// The lead as it is stored, with only its stage changed. Updating a lead replaces all of it,
/// so a field the caller sees masked could not be written back and is refused rather than lost.
fn with_stage(
    lang: Lang,
    lead: &LeadView,
    stage: LeadStage,
    version: i64,
) -> Result<LeadInput, String> {
    let mobile = match &lead.mobile {
        None => None,
        Some(SensitiveValue::Visible(m)) => Some(field(lang, Msg::Mobile, Mobile::parse(m))?),
        Some(_) => return Err(lang.t(Msg::LeadMobileNotVisible).to_owned()),
    };
    Ok(LeadInput {
        company_name: field(lang, Msg::ClientName, ClientName::parse(&lead.company_name))?,
        contact_name: lead
            .contact_name
            .as_deref()
            .map(|n| field(lang, Msg::Name, PersonName::parse(n)))
            .transpose()?,
        mobile,
        source: lead
            .source
            .as_deref()
            .map(|s| field(lang, Msg::Source, ShortText::parse(s)))
            .transpose()?,
        notes: lead
            .notes
            .as_deref()
            .map(|n| field(lang, Msg::Notes, Notes::parse(n)))
            .transpose()?,
        stage: Some(stage),
        version: Some(version),
    })
}

pub async fn lead_stage(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    LeadIdPath(id): LeadIdPath,
    Form(f): Form<StageForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &f.csrf) {
        return csrf_refused(lang);
    }
    let parsed = field(lang, Msg::Stage, LeadStage::parse(&f.stage))
        .and_then(|stage| Ok((stage, version(lang, &f.version)?)));
    let (stage, version) = match parsed {
        Ok(v) => v,
        Err(m) => return invalid(lang, BACK, &m),
    };
    let current = match state.app.lead_list(&auth.grant).await {
        Ok(list) => list.into_iter().find(|l| l.id == id),
        Err(e) => return app_error(lang, BACK, e),
    };
    let Some(current) = current else {
        return app_error(lang, BACK, zf_app::AppError::NotFound);
    };
    let input = match with_stage(lang, &current, stage, version) {
        Ok(i) => i,
        Err(m) => return invalid(lang, BACK, &m),
    };
    match state
        .app
        .lead_update(&auth.grant, id, input, &auth.meta)
        .await
    {
        Ok(_) => Redirect::to(BACK).into_response(),
        Err(e) => app_error(lang, BACK, e),
    }
}

#[derive(Deserialize)]
pub struct ConvertForm {
    csrf: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    uscc: String,
    #[serde(default)]
    taxpayer_type: String,
    #[serde(default)]
    legal_rep_name: String,
    #[serde(default)]
    legal_rep_id_number: String,
}

pub async fn lead_convert(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authorized,
    LeadIdPath(id): LeadIdPath,
    Form(f): Form<ConvertForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    if !csrf_ok(&auth, &f.csrf) {
        return csrf_refused(lang);
    }
    let conversion = (|| -> Result<LeadConversion, String> {
        Ok(LeadConversion {
            uscc: field(lang, Msg::Uscc, Uscc::parse(&f.uscc))?,
            taxpayer_type: field(
                lang,
                Msg::TaxpayerType,
                TaxpayerType::parse(&f.taxpayer_type),
            )?,
            legal_rep_name: field(
                lang,
                Msg::LegalRepName,
                PersonName::parse(&f.legal_rep_name),
            )?,
            legal_rep_id_number: field(
                lang,
                Msg::LegalRepIdNumber,
                IdNumber::parse(&f.legal_rep_id_number),
            )?,
            version: Some(version(lang, &f.version)?),
        })
    })();
    let conversion = match conversion {
        Ok(c) => c,
        Err(m) => return invalid(lang, BACK, &m),
    };
    match state
        .app
        .lead_convert(&auth.grant, id, conversion, &auth.meta)
        .await
    {
        Ok(client) => Redirect::to(&format!("/clients/{}", client.id)).into_response(),
        Err(e) => app_error(lang, BACK, e),
    }
}
