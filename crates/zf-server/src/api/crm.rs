//! The CRM's JSON API: the records of a client (contacts, contracts, financial records,
//! filings, interactions, documents, custody, payments), the dashboards across clients, leads,
//! and client import and export. Each handler is a thin door onto one `zf_app` use-case.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use zf_app::crm::contacts::{ContactInput, ContactQuery, ContactView};
use zf_app::crm::contracts::{ContractInput, ContractView};
use zf_app::crm::custody::{CustodyItemInput, CustodyItemView, CustodyMove};
use zf_app::crm::documents::{DocumentUpload, DocumentView};
use zf_app::crm::fees::{FeesReport, PaymentInput, PaymentView};
use zf_app::crm::filings::{
    FilingUpdate, FilingView, FilingsDue, GenerateFilings, GeneratedFilings,
};
use zf_app::crm::financials::{FinancialInput, FinancialView};
use zf_app::crm::interactions::{InteractionInput, InteractionView};
use zf_app::crm::leads::{LeadConversion, LeadInput, LeadQuery, LeadView};
use zf_app::crm::transfer::ImportReport;
use zf_app::{ClientAssignment, ClientView};
use zf_domain::{DocumentKind, FileName, RecordId};
use zf_tabular::Format;

use crate::extract::{Authorized, ClientIdPath, JsonBody, LeadIdPath, QueryParams, RecordPath};
use crate::routes::AppState;
use crate::ApiError;

fn created<T: serde::Serialize>(body: T) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

/// Every contact of a client.
#[utoipa::path(get, path = "/api/v1/clients/{id}/contacts", tag = "contacts",
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Vec<ContactView>), (status = 404, description = "No such client in your scope")))]
pub async fn contact_list(
    State(state): State<AppState>,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
) -> Result<Json<Vec<ContactView>>, ApiError> {
    Ok(Json(
        state.app.contact_list(&auth.grant, id, &auth.meta).await?,
    ))
}

/// Add a contact to a client.
#[utoipa::path(post, path = "/api/v1/clients/{id}/contacts", tag = "contacts", request_body = ContactInput,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 201, body = ContactView), (status = 404), (status = 422)))]
pub async fn contact_create(
    State(state): State<AppState>,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    JsonBody(body): JsonBody<ContactInput>,
) -> Result<Response, ApiError> {
    Ok(created(
        state
            .app
            .contact_create(&auth.grant, id, body, &auth.meta)
            .await?,
    ))
}

/// Replace a contact; send the `version` you read to refuse lost updates.
#[utoipa::path(put, path = "/api/v1/clients/{id}/contacts/{record_id}", tag = "contacts", request_body = ContactInput,
    params(("id" = String, Path, format = Uuid), ("record_id" = String, Path, format = Uuid)),
    responses((status = 200, body = ContactView), (status = 404), (status = 409), (status = 422)))]
pub async fn contact_update(
    State(state): State<AppState>,
    auth: Authorized,
    path: RecordPath,
    JsonBody(body): JsonBody<ContactInput>,
) -> Result<Json<ContactView>, ApiError> {
    Ok(Json(
        state
            .app
            .contact_update(&auth.grant, path.client, path.record, body, &auth.meta)
            .await?,
    ))
}

/// Delete a contact.
#[utoipa::path(delete, path = "/api/v1/clients/{id}/contacts/{record_id}", tag = "contacts",
    params(("id" = String, Path, format = Uuid), ("record_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 404)))]
pub async fn contact_delete(
    State(state): State<AppState>,
    auth: Authorized,
    path: RecordPath,
) -> Result<StatusCode, ApiError> {
    state
        .app
        .contact_delete(&auth.grant, path.client, path.record, &auth.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every contract of a client.
#[utoipa::path(get, path = "/api/v1/clients/{id}/contracts", tag = "contracts",
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Vec<ContractView>), (status = 404, description = "No such client in your scope")))]
pub async fn contract_list(
    State(state): State<AppState>,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
) -> Result<Json<Vec<ContractView>>, ApiError> {
    Ok(Json(
        state.app.contract_list(&auth.grant, id, &auth.meta).await?,
    ))
}

/// Add a contract to a client.
#[utoipa::path(post, path = "/api/v1/clients/{id}/contracts", tag = "contracts", request_body = ContractInput,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 201, body = ContractView), (status = 404), (status = 422)))]
pub async fn contract_create(
    State(state): State<AppState>,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    JsonBody(body): JsonBody<ContractInput>,
) -> Result<Response, ApiError> {
    Ok(created(
        state
            .app
            .contract_create(&auth.grant, id, body, &auth.meta)
            .await?,
    ))
}

/// Replace a contract; send the `version` you read to refuse lost updates.
#[utoipa::path(put, path = "/api/v1/clients/{id}/contracts/{record_id}", tag = "contracts", request_body = ContractInput,
    params(("id" = String, Path, format = Uuid), ("record_id" = String, Path, format = Uuid)),
    responses((status = 200, body = ContractView), (status = 404), (status = 409), (status = 422)))]
pub async fn contract_update(
    State(state): State<AppState>,
    auth: Authorized,
    path: RecordPath,
    JsonBody(body): JsonBody<ContractInput>,
) -> Result<Json<ContractView>, ApiError> {
    Ok(Json(
        state
            .app
            .contract_update(&auth.grant, path.client, path.record, body, &auth.meta)
            .await?,
    ))
}

/// Delete a contract.
#[utoipa::path(delete, path = "/api/v1/clients/{id}/contracts/{record_id}", tag = "contracts",
    params(("id" = String, Path, format = Uuid), ("record_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 404)))]
pub async fn contract_delete(
    State(state): State<AppState>,
    auth: Authorized,
    path: RecordPath,
) -> Result<StatusCode, ApiError> {
    state
        .app
        .contract_delete(&auth.grant, path.client, path.record, &auth.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every financial of a client.
#[utoipa::path(get, path = "/api/v1/clients/{id}/financials", tag = "financials",
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Vec<FinancialView>), (status = 404, description = "No such client in your scope")))]
pub async fn financial_list(
    State(state): State<AppState>,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
) -> Result<Json<Vec<FinancialView>>, ApiError> {
    Ok(Json(
        state
            .app
            .financial_list(&auth.grant, id, &auth.meta)
            .await?,
    ))
}

/// Add a financial to a client.
#[utoipa::path(post, path = "/api/v1/clients/{id}/financials", tag = "financials", request_body = FinancialInput,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 201, body = FinancialView), (status = 404), (status = 422)))]
pub async fn financial_create(
    State(state): State<AppState>,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    JsonBody(body): JsonBody<FinancialInput>,
) -> Result<Response, ApiError> {
    Ok(created(
        state
            .app
            .financial_create(&auth.grant, id, body, &auth.meta)
            .await?,
    ))
}

/// Replace a financial; send the `version` you read to refuse lost updates.
#[utoipa::path(put, path = "/api/v1/clients/{id}/financials/{record_id}", tag = "financials", request_body = FinancialInput,
    params(("id" = String, Path, format = Uuid), ("record_id" = String, Path, format = Uuid)),
    responses((status = 200, body = FinancialView), (status = 404), (status = 409), (status = 422)))]
pub async fn financial_update(
    State(state): State<AppState>,
    auth: Authorized,
    path: RecordPath,
    JsonBody(body): JsonBody<FinancialInput>,
) -> Result<Json<FinancialView>, ApiError> {
    Ok(Json(
        state
            .app
            .financial_update(&auth.grant, path.client, path.record, body, &auth.meta)
            .await?,
    ))
}

/// Every interaction of a client.
#[utoipa::path(get, path = "/api/v1/clients/{id}/interactions", tag = "interactions",
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Vec<InteractionView>), (status = 404, description = "No such client in your scope")))]
pub async fn interaction_list(
    State(state): State<AppState>,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
) -> Result<Json<Vec<InteractionView>>, ApiError> {
    Ok(Json(state.app.interaction_list(&auth.grant, id).await?))
}

/// Add a interaction to a client.
#[utoipa::path(post, path = "/api/v1/clients/{id}/interactions", tag = "interactions", request_body = InteractionInput,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 201, body = InteractionView), (status = 404), (status = 422)))]
pub async fn interaction_create(
    State(state): State<AppState>,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    JsonBody(body): JsonBody<InteractionInput>,
) -> Result<Response, ApiError> {
    Ok(created(
        state
            .app
            .interaction_create(&auth.grant, id, body, &auth.meta)
            .await?,
    ))
}

/// Replace a interaction; send the `version` you read to refuse lost updates.
#[utoipa::path(put, path = "/api/v1/clients/{id}/interactions/{record_id}", tag = "interactions", request_body = InteractionInput,
    params(("id" = String, Path, format = Uuid), ("record_id" = String, Path, format = Uuid)),
    responses((status = 200, body = InteractionView), (status = 404), (status = 409), (status = 422)))]
pub async fn interaction_update(
    State(state): State<AppState>,
    auth: Authorized,
    path: RecordPath,
    JsonBody(body): JsonBody<InteractionInput>,
) -> Result<Json<InteractionView>, ApiError> {
    Ok(Json(
        state
            .app
            .interaction_update(&auth.grant, path.client, path.record, body, &auth.meta)
            .await?,
    ))
}

/// Exact search of contacts by mobile or ID number (blind index); results masked.
#[utoipa::path(post, path = "/api/v1/contacts/search", tag = "contacts", request_body = ContactQuery,
    responses((status = 200, body = Vec<ContactView>), (status = 422)))]
pub async fn contact_search(
    State(state): State<AppState>,
    auth: Authorized,
    JsonBody(body): JsonBody<ContactQuery>,
) -> Result<Json<Vec<ContactView>>, ApiError> {
    Ok(Json(
        state
            .app
            .contact_search(&auth.grant, body, &auth.meta)
            .await?,
    ))
}

/// A client's filing tasks, in due-date order.
#[utoipa::path(get, path = "/api/v1/clients/{id}/filings", tag = "filings",
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Vec<FilingView>), (status = 404)))]
pub async fn filing_list(
    State(state): State<AppState>,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
) -> Result<Json<Vec<FilingView>>, ApiError> {
    Ok(Json(state.app.filing_list(&auth.grant, id).await?))
}

/// Create a year's filing tasks from the client's taxpayer type and the filing calendar.
#[utoipa::path(post, path = "/api/v1/clients/{id}/filings/generate", tag = "filings", request_body = GenerateFilings,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = GeneratedFilings), (status = 404), (status = 422)))]
pub async fn filing_generate(
    State(state): State<AppState>,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    JsonBody(body): JsonBody<GenerateFilings>,
) -> Result<Json<GeneratedFilings>, ApiError> {
    Ok(Json(
        state
            .app
            .filing_generate(&auth.grant, id, body, &auth.meta)
            .await?,
    ))
}

/// Move a filing task to in progress or filed.
#[utoipa::path(patch, path = "/api/v1/clients/{id}/filings/{record_id}", tag = "filings", request_body = FilingUpdate,
    params(("id" = String, Path, format = Uuid), ("record_id" = String, Path, format = Uuid)),
    responses((status = 200, body = FilingView), (status = 404), (status = 409), (status = 422)))]
pub async fn filing_update(
    State(state): State<AppState>,
    auth: Authorized,
    path: RecordPath,
    JsonBody(body): JsonBody<FilingUpdate>,
) -> Result<Json<FilingView>, ApiError> {
    Ok(Json(
        state
            .app
            .filing_update(&auth.grant, path.client, path.record, body, &auth.meta)
            .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DueParams {
    /// How many days ahead count as due soon (default 7).
    pub days: Option<u32>,
}

/// The deadlines dashboard: overdue filings and those due soon, of the caller's clients.
#[utoipa::path(get, path = "/api/v1/filings/due", tag = "filings", params(DueParams),
    responses((status = 200, body = FilingsDue)))]
pub async fn filings_due(
    State(state): State<AppState>,
    auth: Authorized,
    QueryParams(p): QueryParams<DueParams>,
) -> Result<Json<FilingsDue>, ApiError> {
    Ok(Json(
        state
            .app
            .filings_due(&auth.grant, p.days.unwrap_or(7))
            .await?,
    ))
}

/// The caller's follow-ups that are due.
#[utoipa::path(get, path = "/api/v1/follow-ups", tag = "interactions",
    responses((status = 200, body = Vec<InteractionView>)))]
pub async fn follow_ups(
    State(state): State<AppState>,
    auth: Authorized,
) -> Result<Json<Vec<InteractionView>>, ApiError> {
    Ok(Json(state.app.follow_ups_due(&auth.grant).await?))
}

/// The documents of a client (no content).
#[utoipa::path(get, path = "/api/v1/clients/{id}/documents", tag = "documents",
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Vec<DocumentView>), (status = 404)))]
pub async fn document_list(
    State(state): State<AppState>,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
) -> Result<Json<Vec<DocumentView>>, ApiError> {
    Ok(Json(state.app.document_list(&auth.grant, id).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    /// business_licence, id_copy, contract, financial_statement, tax_return or other.
    pub kind: DocumentKind,
    /// The file's name, for display.
    #[param(value_type = String)]
    pub name: FileName,
    /// The contract a signed PDF belongs to.
    #[param(value_type = Option<String>, format = Uuid)]
    pub contract: Option<RecordId>,
}

/// Upload a document as the raw request body (PDF, PNG or JPEG, decided from the bytes).
#[utoipa::path(post, path = "/api/v1/clients/{id}/documents", tag = "documents",
    params(("id" = String, Path, format = Uuid), UploadParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = DocumentView), (status = 404), (status = 413), (status = 415)))]
pub async fn document_upload(
    State(state): State<AppState>,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    QueryParams(p): QueryParams<UploadParams>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let upload = DocumentUpload {
        kind: p.kind,
        file_name: p.name,
        contract: p.contract,
        content: body.to_vec(),
    };
    Ok(created(
        state
            .app
            .document_upload(&auth.grant, id, upload, &auth.meta)
            .await?,
    ))
}

/// Download a document (an audited sensitive read).
#[utoipa::path(get, path = "/api/v1/clients/{id}/documents/{record_id}", tag = "documents",
    params(("id" = String, Path, format = Uuid), ("record_id" = String, Path, format = Uuid)),
    responses((status = 200, content_type = "application/octet-stream"), (status = 404)))]
pub async fn document_download(
    State(state): State<AppState>,
    auth: Authorized,
    path: RecordPath,
) -> Result<Response, ApiError> {
    let doc = state
        .app
        .document_download(&auth.grant, path.client, path.record, &auth.meta)
        .await?;
    Ok(crate::api::attachment(
        &doc.file_name,
        &doc.content_type,
        doc.bytes,
    ))
}

/// Delete a document.
#[utoipa::path(delete, path = "/api/v1/clients/{id}/documents/{record_id}", tag = "documents",
    params(("id" = String, Path, format = Uuid), ("record_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 404)))]
pub async fn document_delete(
    State(state): State<AppState>,
    auth: Authorized,
    path: RecordPath,
) -> Result<StatusCode, ApiError> {
    state
        .app
        .document_delete(&auth.grant, path.client, path.record, &auth.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The UKeys, certificates and seals of a client held by the firm, with their movements.
#[utoipa::path(get, path = "/api/v1/clients/{id}/custody", tag = "custody",
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Vec<CustodyItemView>), (status = 404)))]
pub async fn custody_list(
    State(state): State<AppState>,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
) -> Result<Json<Vec<CustodyItemView>>, ApiError> {
    Ok(Json(state.app.custody_list(&auth.grant, id).await?))
}

/// Take an item into custody (it starts in the safe).
#[utoipa::path(post, path = "/api/v1/clients/{id}/custody", tag = "custody", request_body = CustodyItemInput,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 201, body = CustodyItemView), (status = 404), (status = 422)))]
pub async fn custody_create(
    State(state): State<AppState>,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    JsonBody(body): JsonBody<CustodyItemInput>,
) -> Result<Response, ApiError> {
    Ok(created(
        state
            .app
            .custody_create(&auth.grant, id, body, &auth.meta)
            .await?,
    ))
}

/// Check an item out of the safe, back in, or return it to the client.
#[utoipa::path(post, path = "/api/v1/clients/{id}/custody/{record_id}/moves", tag = "custody", request_body = CustodyMove,
    params(("id" = String, Path, format = Uuid), ("record_id" = String, Path, format = Uuid)),
    responses((status = 200, body = CustodyItemView), (status = 404), (status = 409), (status = 422)))]
pub async fn custody_move(
    State(state): State<AppState>,
    auth: Authorized,
    path: RecordPath,
    JsonBody(body): JsonBody<CustodyMove>,
) -> Result<Json<CustodyItemView>, ApiError> {
    Ok(Json(
        state
            .app
            .custody_move(&auth.grant, path.client, path.record, body, &auth.meta)
            .await?,
    ))
}

/// Items checked out whose return date has passed.
#[utoipa::path(get, path = "/api/v1/custody/overdue", tag = "custody",
    responses((status = 200, body = Vec<CustodyItemView>)))]
pub async fn custody_overdue(
    State(state): State<AppState>,
    auth: Authorized,
) -> Result<Json<Vec<CustodyItemView>>, ApiError> {
    Ok(Json(state.app.custody_overdue(&auth.grant).await?))
}

/// Payments a client made against its contracts.
#[utoipa::path(get, path = "/api/v1/clients/{id}/payments", tag = "fees",
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Vec<PaymentView>), (status = 404)))]
pub async fn payment_list(
    State(state): State<AppState>,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
) -> Result<Json<Vec<PaymentView>>, ApiError> {
    Ok(Json(state.app.payment_list(&auth.grant, id).await?))
}

/// Record a payment against a contract.
#[utoipa::path(post, path = "/api/v1/clients/{id}/payments", tag = "fees", request_body = PaymentInput,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 201, body = PaymentView), (status = 404), (status = 422)))]
pub async fn payment_create(
    State(state): State<AppState>,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    JsonBody(body): JsonBody<PaymentInput>,
) -> Result<Response, ApiError> {
    Ok(created(
        state
            .app
            .payment_create(&auth.grant, id, body, &auth.meta)
            .await?,
    ))
}

/// Billed, paid and arrears per contract of one client, with renewals due.
#[utoipa::path(get, path = "/api/v1/clients/{id}/fees", tag = "fees",
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = FeesReport), (status = 404)))]
pub async fn client_fees(
    State(state): State<AppState>,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
) -> Result<Json<FeesReport>, ApiError> {
    Ok(Json(
        state
            .app
            .fees_report(&auth.grant, Some(id), &auth.meta)
            .await?,
    ))
}

/// Contracts with arrears or a renewal due, across the caller's clients.
#[utoipa::path(get, path = "/api/v1/fees/arrears", tag = "fees",
    responses((status = 200, body = FeesReport)))]
pub async fn arrears(
    State(state): State<AppState>,
    auth: Authorized,
) -> Result<Json<FeesReport>, ApiError> {
    Ok(Json(
        state.app.fees_report(&auth.grant, None, &auth.meta).await?,
    ))
}

/// Leads in the caller's scope, most recently changed first.
#[utoipa::path(get, path = "/api/v1/leads", tag = "leads",
    responses((status = 200, body = Vec<LeadView>)))]
pub async fn lead_list(
    State(state): State<AppState>,
    auth: Authorized,
) -> Result<Json<Vec<LeadView>>, ApiError> {
    Ok(Json(state.app.lead_list(&auth.grant).await?))
}

/// Exact search of leads by mobile number (blind index), sent in a body so the number never
/// lands in logs; audited whatever it finds.
#[utoipa::path(post, path = "/api/v1/leads/search", tag = "leads", request_body = LeadQuery,
    responses((status = 200, body = Vec<LeadView>), (status = 422)))]
pub async fn lead_search(
    State(state): State<AppState>,
    auth: Authorized,
    JsonBody(body): JsonBody<LeadQuery>,
) -> Result<Json<Vec<LeadView>>, ApiError> {
    Ok(Json(
        state
            .app
            .lead_search_mobile(&auth.grant, &body.mobile, &auth.meta)
            .await?,
    ))
}

/// Add a lead.
#[utoipa::path(post, path = "/api/v1/leads", tag = "leads", request_body = LeadInput,
    responses((status = 201, body = LeadView), (status = 422)))]
pub async fn lead_create(
    State(state): State<AppState>,
    auth: Authorized,
    JsonBody(body): JsonBody<LeadInput>,
) -> Result<Response, ApiError> {
    Ok(created(
        state.app.lead_create(&auth.grant, body, &auth.meta).await?,
    ))
}

/// Replace a lead (stage, contact, notes).
#[utoipa::path(put, path = "/api/v1/leads/{id}", tag = "leads", request_body = LeadInput,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = LeadView), (status = 404), (status = 409), (status = 422)))]
pub async fn lead_update(
    State(state): State<AppState>,
    auth: Authorized,
    LeadIdPath(id): LeadIdPath,
    JsonBody(body): JsonBody<LeadInput>,
) -> Result<Json<LeadView>, ApiError> {
    Ok(Json(
        state
            .app
            .lead_update(&auth.grant, id, body, &auth.meta)
            .await?,
    ))
}

/// Turn a lead into a client, once its company is registered.
#[utoipa::path(post, path = "/api/v1/leads/{id}/convert", tag = "leads", request_body = LeadConversion,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 201, body = ClientView), (status = 404), (status = 409), (status = 422)))]
pub async fn lead_convert(
    State(state): State<AppState>,
    auth: Authorized,
    LeadIdPath(id): LeadIdPath,
    JsonBody(body): JsonBody<LeadConversion>,
) -> Result<Response, ApiError> {
    Ok(created(
        state
            .app
            .lead_convert(&auth.grant, id, body, &auth.meta)
            .await?,
    ))
}

/// Assign a client to an accountant and a team.
#[utoipa::path(put, path = "/api/v1/clients/{id}/assignment", tag = "clients", request_body = ClientAssignment,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = ClientView), (status = 404), (status = 422)))]
pub async fn client_assign(
    State(state): State<AppState>,
    auth: Authorized,
    ClientIdPath(id): ClientIdPath,
    JsonBody(body): JsonBody<ClientAssignment>,
) -> Result<Json<ClientView>, ApiError> {
    Ok(Json(
        state
            .app
            .client_assign(&auth.grant, id, body, &auth.meta)
            .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// `xlsx` (default) or `csv`.
    pub format: Option<String>,
}

/// Export the clients in scope as XLSX or CSV (audited; ID numbers masked unless you may reveal them).
#[utoipa::path(get, path = "/api/v1/clients/export", tag = "clients", params(ExportParams),
    responses((status = 200, content_type = "application/octet-stream"), (status = 403)))]
pub async fn client_export(
    State(state): State<AppState>,
    auth: Authorized,
    QueryParams(p): QueryParams<ExportParams>,
) -> Result<Response, ApiError> {
    let format = match p.format.as_deref() {
        None | Some("xlsx") => Format::Xlsx,
        Some("csv") => Format::Csv,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format: {other:?} is not xlsx or csv"
            )))
        }
    };
    let export = state
        .app
        .client_export(&auth.grant, format, &auth.meta)
        .await?;
    let name = format!("clients.{}", export.format.extension());
    Ok(crate::api::attachment(
        &name,
        export.format.content_type(),
        export.bytes,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    /// Write the valid rows even if some are bad (default: write nothing unless all are valid).
    pub partial: Option<bool>,
}

/// Import clients from a CSV (UTF-8 or GBK) or XLSX file sent as the raw request body.
#[utoipa::path(post, path = "/api/v1/clients/import", tag = "clients", params(ImportParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = ImportReport, description = "Everything imported"),
              (status = 422, body = ImportReport, description = "Bad rows; see errors")))]
pub async fn client_import(
    State(state): State<AppState>,
    auth: Authorized,
    QueryParams(p): QueryParams<ImportParams>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let report = state
        .app
        .client_import(&auth.grant, &body, p.partial.unwrap_or(false), &auth.meta)
        .await?;
    let status = if report.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, Json(report)).into_response())
}

/// Engage an auditor on a client: they may then read its financial records, read-only.
#[utoipa::path(put, path = "/api/v1/clients/{id}/auditors/{username}", tag = "clients",
    params(("id" = String, Path, format = Uuid), ("username" = String, Path)),
    responses((status = 204), (status = 404), (status = 422)))]
pub async fn engage_auditor(
    State(state): State<AppState>,
    auth: Authorized,
    axum::extract::Path((id, username)): axum::extract::Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = zf_domain::ClientId::parse(&id).map_err(|e| ApiError::bad_request(e.to_string()))?;
    state
        .app
        .client_engagement(&auth.grant, id, &username, true, &auth.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End an auditor's engagement on a client.
#[utoipa::path(delete, path = "/api/v1/clients/{id}/auditors/{username}", tag = "clients",
    params(("id" = String, Path, format = Uuid), ("username" = String, Path)),
    responses((status = 204), (status = 404), (status = 422)))]
pub async fn end_engagement(
    State(state): State<AppState>,
    auth: Authorized,
    axum::extract::Path((id, username)): axum::extract::Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = zf_domain::ClientId::parse(&id).map_err(|e| ApiError::bad_request(e.to_string()))?;
    state
        .app
        .client_engagement(&auth.grant, id, &username, false, &auth.meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
