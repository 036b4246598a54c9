//! The route table: every route with the one [`Operation`] the policy decides it by. Routes are
//! only added through [`Table::add`], which records the operation; the policy layer refuses any
//! routed request whose (method, path) is not in the table, so a route without a policy entry
//! cannot serve anything.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter};
use axum::Router;
use zf_app::App;
use zf_policy::Operation;

use crate::{api, headers, policy, ui};

/// Largest request body accepted anywhere but the two upload routes below.
pub const BODY_LIMIT: usize = 64 * 1024;
/// A document upload: the largest document and nothing more.
pub const DOCUMENT_LIMIT: usize = zf_domain::MAX_DOCUMENT_BYTES;
/// A document upload from a web form: the document and the form's other fields.
pub const UPLOAD_FORM_LIMIT: usize = DOCUMENT_LIMIT + 64 * 1024;
/// A client list to import (a 100,000-row spreadsheet is well under this).
pub const IMPORT_LIMIT: usize = 32 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Verb {
    pub fn method(self) -> Method {
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Put => Method::PUT,
            Verb::Patch => Method::PATCH,
            Verb::Delete => Method::DELETE,
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Put => MethodFilter::PUT,
            Verb::Patch => MethodFilter::PATCH,
            Verb::Delete => MethodFilter::DELETE,
        }
    }
}

/// One row of the table, for tests and documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    pub verb: Verb,
    pub path: &'static str,
    pub operation: Operation,
}

#[derive(Clone)]
pub struct AppState {
    pub app: App,
    /// Matched path → the operation of each method on it.
    operations: Arc<HashMap<&'static str, Vec<(Method, Operation)>>>,
}

impl AppState {
    pub(crate) fn operation(&self, method: &Method, path: &str) -> Option<Operation> {
        self.operations
            .get(path)?
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, op)| *op)
    }
}

struct Table {
    router: Router<AppState>,
    specs: Vec<RouteSpec>,
}

impl Table {
    fn add<H, T>(mut self, verb: Verb, path: &'static str, operation: Operation, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.router = self.router.route(path, on(verb.filter(), handler));
        self.specs.push(RouteSpec {
            verb,
            path,
            operation,
        });
        self
    }
}

#[rustfmt::skip] // one route per line: the table is read as a table
fn table() -> Table {
    use Operation::*;
    use Verb::*;
    Table { router: Router::new(), specs: Vec::new() }
    // JSON API
    .add(Get,    "/api/v1/openapi.json",      PublicDocument,    api::openapi::document)
    .add(Get,    "/healthz",                  PublicDocument,    api::health)
    .add(Post,   "/api/v1/session",           Login,             api::session::login)
    .add(Get,    "/api/v1/session",           WhoAmI,            api::session::who_am_i)
    .add(Delete, "/api/v1/session",           Logout,            api::session::logout)
    .add(Put,    "/api/v1/session/password",  ChangeOwnPassword, api::session::change_password)
    .add(Post,   "/api/v1/session/second-factor", LoginSecondFactor, api::session::second_factor)
    .add(Post,   "/api/v1/session/step-up",   StepUp,            api::session::step_up)
    .add(Post,   "/api/v1/session/second-factor/code", LoginSecondFactor, api::session::send_sign_in_code)
    .add(Post,   "/api/v1/session/step-up/code", StepUp,         api::session::send_step_up_code)
    .add(Get,    "/api/v1/sessions",          OwnSessionList,    api::sessions::list)
    .add(Delete, "/api/v1/sessions/{id}",     OwnSessionRevoke,  api::sessions::revoke)
    .add(Get,    "/api/v1/mfa",               MfaStatus,         api::mfa::status)
    .add(Post,   "/api/v1/mfa/totp",          MfaEnrol,          api::mfa::begin)
    .add(Post,   "/api/v1/mfa/totp/confirm",  MfaEnrol,          api::mfa::confirm)
    .add(Post,   "/api/v1/mfa/recovery-codes", RecoveryCodesRegenerate, api::mfa::regenerate_recovery)
    .add(Get,    "/api/v1/mfa/codes",         MfaStatus,         api::mfa::code_factors)
    .add(Post,   "/api/v1/mfa/code",          MfaEnrol,          api::mfa::code_begin)
    .add(Post,   "/api/v1/mfa/code/confirm",  MfaEnrol,          api::mfa::code_confirm)
    .add(Get,    "/api/v1/mfa/security-keys", SecurityKeyList,   api::webauthn::list)
    .add(Post,   "/api/v1/mfa/security-keys/options", SecurityKeyRegister, api::webauthn::register_options)
    .add(Post,   "/api/v1/mfa/security-keys", SecurityKeyRegister, api::webauthn::register)
    .add(Patch,  "/api/v1/mfa/security-keys/{id}", SecurityKeyRename, api::webauthn::rename)
    .add(Delete, "/api/v1/mfa/security-keys/{id}", SecurityKeyRemove, api::webauthn::remove)
    .add(Get,    "/api/v1/users/{username}/security-keys", UserSecurityKeyList, api::webauthn::list_of_user)
    .add(Delete, "/api/v1/users/{username}/security-keys/{id}", UserSecurityKeyRemove, api::webauthn::remove_of_user)
    .add(Post,   "/api/v1/session/second-factor/security-key/options", LoginSecondFactor, api::webauthn::second_factor_options)
    .add(Post,   "/api/v1/session/second-factor/security-key", LoginSecondFactor, api::webauthn::second_factor)
    .add(Post,   "/api/v1/session/step-up/security-key/options", StepUp, api::webauthn::step_up_options)
    .add(Post,   "/api/v1/session/step-up/security-key", StepUp, api::webauthn::step_up)
    .add(Post,   "/api/v1/session/passkey/options", PasskeyLogin, api::webauthn::passkey_options)
    .add(Post,   "/api/v1/session/passkey", PasskeyLogin,  api::webauthn::passkey)
    .add(Get,    "/api/v1/clients",           ClientList,        api::clients::list)
    .add(Post,   "/api/v1/clients",           ClientCreate,      api::clients::create)
    .add(Post,   "/api/v1/clients/search",    ClientSearch,      api::clients::search)
    .add(Get,    "/api/v1/clients/{id}",      ClientRead,        api::clients::read)
    .add(Patch,  "/api/v1/clients/{id}",      ClientUpdate,      api::clients::update)
    .add(Delete, "/api/v1/clients/{id}",      ErasureRequest,    api::clients::delete)
    .add(Post,   "/api/v1/clients/{id}/reveal", ClientReveal,    api::clients::reveal)
    .add(Post,   "/api/v1/clients/{id}/erasure", ErasureRequest, api::clients::request_erasure)
    .add(Get,    "/api/v1/erasures",          ErasureList,       api::erasures::list)
    .add(Post,   "/api/v1/erasures/{id}",     ErasureDecide,     api::erasures::decide)
    .add(Get,    "/api/v1/audit/events",      AuditSearch,       api::audit::search)
    .add(Get,    "/api/v1/alerts",            AlertList,         api::alerts::list)
    .add(Post,   "/api/v1/alerts/{id}/acknowledge", AlertUpdate, api::alerts::acknowledge)
    .add(Post,   "/api/v1/alerts/{id}/resolve",     AlertUpdate, api::alerts::resolve)
    .add(Put,    "/api/v1/users/{username}/role", RoleChange,  api::users::change_role)
    .add(Put,    "/api/v1/users/{username}/team", TeamChange,  api::users::change_team)
    .add(Get,    "/api/v1/users/{username}/history", EffectivePermissions, api::reassignments::history)
    .add(Get,    "/api/v1/reassignments",     ReassignmentList,  api::reassignments::list)
    .add(Post,   "/api/v1/reassignments/{id}", ReassignmentDecide, api::reassignments::decide)
    .add(Get,    "/api/v1/keys",              KeyStatus,         api::keys::status)
    .add(Post,   "/api/v1/keys/rotate",       KeyRotate,         api::keys::rotate)
    .add(Post,   "/api/v1/keys/reencrypt",    KeyReencrypt,      api::keys::reencrypt)
    .add(Post,   "/api/v1/keys/blind-index",  KeyReindex,        api::keys::blind_index)
    .add(Get,    "/api/v1/keys/job",          KeyJobStatus,      api::keys::job)
    .add(Get,    "/api/v1/security/posture",  SecurityPosture,   api::posture::posture)
    .add(Get,    "/api/v1/roles",             CustomRoleList,    api::roles::list)
    .add(Get,    "/api/v1/roles/{name}",      CustomRoleList,    api::roles::read)
    .add(Put,    "/api/v1/roles/{name}",      CustomRoleSave,    api::roles::save)
    .add(Delete, "/api/v1/roles/{name}",      CustomRoleDelete,  api::roles::delete)
    .add(Get,    "/api/v1/users/{username}/permissions", EffectivePermissions, api::users::permissions)
    .add(Post,   "/api/v1/users/{username}/sessions/revoke", UserSessionsRevoke, api::sessions::revoke_all)
    .add(Get,    "/api/v1/tokens",            OwnTokenList,      api::tokens::list)
    .add(Post,   "/api/v1/tokens",            TokenCreate,       api::tokens::create)
    .add(Delete, "/api/v1/tokens/{id}",       OwnTokenRevoke,    api::tokens::revoke)
    .add(Get,    "/api/v1/users/{username}/tokens", UserTokenList, api::tokens::list_of_user)
    .add(Delete, "/api/v1/users/{username}/tokens/{id}", UserTokenRevoke, api::tokens::revoke_of_user)
    .add(Post,   "/api/v1/reviews",           ReviewManage,      api::reviews::start)
    .add(Get,    "/api/v1/reviews/{id}",      ReviewRead,        api::reviews::read)
    .add(Post,   "/api/v1/reviews/{id}/lines/{username}", ReviewManage, api::reviews::answer)
    .add(Get,    "/api/v1/reviews/{id}/team", TeamReviewRead,    api::reviews::team)
    .add(Post,   "/api/v1/reviews/{id}/team/{username}", TeamReviewAnswer, api::reviews::team_answer)
    .add(Get,    "/api/v1/backups",           BackupList,        api::backups::overview)
    .add(Post,   "/api/v1/backups",           BackupNow,         api::backups::run)
    .add(Post,   "/api/v1/backups/restore-tests", RestoreTestRun, api::backups::restore_test)
    .add(Get,    "/api/v1/clients/export",    ClientExport,      api::crm::client_export)
    .add(Post,   "/api/v1/clients/import",    ClientImport,      api::crm::client_import.layer(DefaultBodyLimit::max(IMPORT_LIMIT)))
    .add(Put,    "/api/v1/clients/{id}/assignment", ClientAssign, api::crm::client_assign)
    .add(Put,    "/api/v1/clients/{id}/auditors/{username}", ClientAssign, api::crm::engage_auditor)
    .add(Delete, "/api/v1/clients/{id}/auditors/{username}", ClientAssign, api::crm::end_engagement)
    .add(Get,    "/api/v1/clients/{id}/contacts", ContactList,   api::crm::contact_list)
    .add(Post,   "/api/v1/clients/{id}/contacts", ContactCreate, api::crm::contact_create)
    .add(Put,    "/api/v1/clients/{id}/contacts/{record_id}", ContactUpdate, api::crm::contact_update)
    .add(Delete, "/api/v1/clients/{id}/contacts/{record_id}", ContactDelete, api::crm::contact_delete)
    .add(Post,   "/api/v1/contacts/search",   ContactSearch,     api::crm::contact_search)
    .add(Get,    "/api/v1/clients/{id}/contracts", ContractList, api::crm::contract_list)
    .add(Post,   "/api/v1/clients/{id}/contracts", ContractCreate, api::crm::contract_create)
    .add(Put,    "/api/v1/clients/{id}/contracts/{record_id}", ContractUpdate, api::crm::contract_update)
    .add(Delete, "/api/v1/clients/{id}/contracts/{record_id}", ContractDelete, api::crm::contract_delete)
    .add(Get,    "/api/v1/clients/{id}/financials", FinancialList, api::crm::financial_list)
    .add(Post,   "/api/v1/clients/{id}/financials", FinancialCreate, api::crm::financial_create)
    .add(Put,    "/api/v1/clients/{id}/financials/{record_id}", FinancialUpdate, api::crm::financial_update)
    .add(Get,    "/api/v1/clients/{id}/filings", FilingList,     api::crm::filing_list)
    .add(Post,   "/api/v1/clients/{id}/filings/generate", FilingGenerate, api::crm::filing_generate)
    .add(Patch,  "/api/v1/clients/{id}/filings/{record_id}", FilingUpdate, api::crm::filing_update)
    .add(Get,    "/api/v1/filings/due",       FilingDue,         api::crm::filings_due)
    .add(Get,    "/api/v1/clients/{id}/interactions", InteractionList, api::crm::interaction_list)
    .add(Post,   "/api/v1/clients/{id}/interactions", InteractionCreate, api::crm::interaction_create)
    .add(Put,    "/api/v1/clients/{id}/interactions/{record_id}", InteractionUpdate, api::crm::interaction_update)
    .add(Get,    "/api/v1/follow-ups",        InteractionList,   api::crm::follow_ups)
    .add(Get,    "/api/v1/clients/{id}/documents", DocumentList, api::crm::document_list)
    .add(Post,   "/api/v1/clients/{id}/documents", DocumentUpload, api::crm::document_upload.layer(DefaultBodyLimit::max(DOCUMENT_LIMIT)))
    .add(Get,    "/api/v1/clients/{id}/documents/{record_id}", DocumentDownload, api::crm::document_download)
    .add(Delete, "/api/v1/clients/{id}/documents/{record_id}", DocumentDelete, api::crm::document_delete)
    .add(Get,    "/api/v1/clients/{id}/custody", CustodyList,    api::crm::custody_list)
    .add(Post,   "/api/v1/clients/{id}/custody", CustodyCreate,  api::crm::custody_create)
    .add(Post,   "/api/v1/clients/{id}/custody/{record_id}/moves", CustodyMove, api::crm::custody_move)
    .add(Get,    "/api/v1/custody/overdue",   CustodyList,       api::crm::custody_overdue)
    .add(Get,    "/api/v1/clients/{id}/payments", PaymentList,   api::crm::payment_list)
    .add(Post,   "/api/v1/clients/{id}/payments", PaymentCreate, api::crm::payment_create)
    .add(Get,    "/api/v1/clients/{id}/fees", PaymentList,       api::crm::client_fees)
    .add(Get,    "/api/v1/fees/arrears",      PaymentList,       api::crm::arrears)
    .add(Get,    "/api/v1/leads",             LeadList,          api::crm::lead_list)
    .add(Post,   "/api/v1/leads/search",      LeadList,          api::crm::lead_search)
    .add(Post,   "/api/v1/leads",             LeadCreate,        api::crm::lead_create)
    .add(Put,    "/api/v1/leads/{id}",        LeadUpdate,        api::crm::lead_update)
    .add(Post,   "/api/v1/leads/{id}/convert", LeadConvert,      api::crm::lead_convert)
    // Web UI
    .add(Get,    "/assets/app.css",           PublicDocument,    ui::assets::stylesheet)
    .add(Get,    "/assets/webauthn.js",       PublicDocument,    ui::assets::webauthn_script)
    .add(Get,    "/favicon.ico",              PublicDocument,    ui::assets::favicon)
    .add(Get,    "/",                         PublicDocument,    ui::pages::home)
    .add(Get,    "/language",                 PublicDocument,    ui::pages::language)
    .add(Get,    "/login",                    PublicDocument,    ui::session::login_page)
    .add(Post,   "/login",                    Login,             ui::session::login_submit)
    .add(Post,   "/logout",                   Logout,            ui::session::logout)
    .add(Get,    "/password",                 ChangeOwnPassword, ui::session::password_page)
    .add(Post,   "/password",                 ChangeOwnPassword, ui::session::password_submit)
    .add(Get,    "/login/second-factor",      LoginSecondFactor, ui::session::second_factor_page)
    .add(Post,   "/login/second-factor",      LoginSecondFactor, ui::session::second_factor_submit)
    .add(Get,    "/step-up",                  StepUp,            ui::mfa::step_up_page)
    .add(Post,   "/step-up",                  StepUp,            ui::mfa::step_up_submit)
    .add(Post,   "/step-up/code",             StepUp,            ui::mfa::step_up_send_code)
    .add(Post,   "/login/second-factor/code", LoginSecondFactor, ui::session::second_factor_send_code)
    .add(Post,   "/mfa/code",                 MfaEnrol,          ui::mfa::code_begin)
    .add(Post,   "/mfa/code/confirm",         MfaEnrol,          ui::mfa::code_confirm)
    .add(Get,    "/mfa",                      MfaStatus,         ui::mfa::page)
    .add(Post,   "/mfa/totp",                 MfaEnrol,          ui::mfa::begin)
    .add(Post,   "/mfa/totp/confirm",         MfaEnrol,          ui::mfa::confirm)
    .add(Post,   "/mfa/recovery-codes",       RecoveryCodesRegenerate, ui::mfa::regenerate_recovery)
    .add(Post,   "/mfa/security-keys/{id}/rename", SecurityKeyRename, ui::webauthn::key_rename)
    .add(Post,   "/mfa/security-keys/{id}/remove", SecurityKeyRemove, ui::webauthn::key_remove)
    .add(Get,    "/sessions",                 OwnSessionList,    ui::sessions::list)
    .add(Post,   "/sessions/{id}/revoke",     OwnSessionRevoke,  ui::sessions::revoke)
    .add(Get,    "/tokens",                   OwnTokenList,      ui::tokens::list)
    .add(Post,   "/tokens",                   TokenCreate,       ui::tokens::create)
    .add(Post,   "/tokens/{id}/revoke",       OwnTokenRevoke,    ui::tokens::revoke)
    .add(Get,    "/clients",                  ClientList,        ui::clients::list)
    .add(Post,   "/clients",                  ClientCreate,      ui::clients::create)
    .add(Get,    "/clients/new",              ClientCreate,      ui::clients::new_form)
    .add(Post,   "/clients/search",           ClientSearch,      ui::clients::search)
    .add(Get,    "/clients/{id}",             ClientRead,        ui::clients::detail)
    .add(Post,   "/clients/{id}",             ClientUpdate,      ui::clients::update)
    .add(Post,   "/clients/{id}/assignment",  ClientAssign,      ui::clients::assign)
    .add(Post,   "/clients/{id}/reveal",      ClientReveal,      ui::clients::reveal)
    .add(Post,   "/clients/{id}/erasure",     ErasureRequest,    ui::clients::request_erasure)
    .add(Get,    "/clients/export",           ClientExport,      api::crm::client_export)
    .add(Get,    "/clients/import",           ClientImport,      ui::crm::import_page)
    .add(Post,   "/clients/import",           ClientImport,      ui::crm::import_submit.layer(DefaultBodyLimit::max(IMPORT_LIMIT)))
    .add(Get,    "/clients/{id}/contacts",    ContactList,       ui::crm::contacts)
    .add(Post,   "/clients/{id}/contacts",    ContactCreate,     ui::crm::contact_create)
    .add(Get,    "/clients/{id}/contracts",   ContractList,      ui::crm::contracts)
    .add(Post,   "/clients/{id}/contracts",   ContractCreate,    ui::crm::contract_create)
    .add(Post,   "/clients/{id}/contracts/{record_id}/documents", DocumentUpload, ui::crm::contract_attach.layer(DefaultBodyLimit::max(UPLOAD_FORM_LIMIT)))
    .add(Get,    "/clients/{id}/financials",  FinancialList,     ui::crm::financials)
    .add(Post,   "/clients/{id}/financials",  FinancialCreate,   ui::crm::financial_create)
    .add(Get,    "/clients/{id}/filings",     FilingList,        ui::crm::filings)
    .add(Post,   "/clients/{id}/filings/generate", FilingGenerate, ui::crm::filing_generate)
    .add(Post,   "/clients/{id}/filings/{record_id}", FilingUpdate, ui::crm::filing_filed)
    .add(Get,    "/clients/{id}/interactions", InteractionList,  ui::crm::interactions)
    .add(Post,   "/clients/{id}/interactions", InteractionCreate, ui::crm::interaction_create)
    .add(Post,   "/clients/{id}/interactions/{record_id}/done", InteractionUpdate, ui::crm::follow_up_done)
    .add(Get,    "/clients/{id}/documents",   DocumentList,      ui::crm::documents)
    .add(Post,   "/clients/{id}/documents",   DocumentUpload,    ui::crm::document_upload.layer(DefaultBodyLimit::max(UPLOAD_FORM_LIMIT)))
    .add(Get,    "/clients/{id}/documents/{record_id}", DocumentDownload, api::crm::document_download)
    .add(Get,    "/clients/{id}/custody",     CustodyList,       ui::crm::custody)
    .add(Post,   "/clients/{id}/custody",     CustodyCreate,     ui::crm::custody_create)
    .add(Post,   "/clients/{id}/custody/{record_id}/moves", CustodyMove, ui::crm::custody_move)
    .add(Get,    "/clients/{id}/fees",        PaymentList,       ui::crm::fees)
    .add(Post,   "/clients/{id}/payments",    PaymentCreate,     ui::crm::payment_create)
    .add(Get,    "/deadlines",                FilingDue,         ui::dashboard::deadlines)
    .add(Get,    "/follow-ups",               InteractionList,   ui::dashboard::follow_ups)
    .add(Get,    "/custody/overdue",          CustodyList,       ui::dashboard::custody_overdue)
    .add(Get,    "/arrears",                  PaymentList,       ui::dashboard::arrears)
    .add(Get,    "/leads",                    LeadList,          ui::leads::leads)
    .add(Post,   "/leads",                    LeadCreate,        ui::leads::lead_create)
    .add(Post,   "/leads/{id}",               LeadUpdate,        ui::leads::lead_stage)
    .add(Post,   "/leads/{id}/convert",       LeadConvert,       ui::leads::lead_convert)
    .add(Get,    "/audit",                    AuditSearch,       ui::audit::search)
    .add(Get,    "/alerts",                   AlertList,         ui::alerts::list)
    .add(Post,   "/alerts/{id}/acknowledge",  AlertUpdate,       ui::alerts::acknowledge)
    .add(Post,   "/alerts/{id}/resolve",      AlertUpdate,       ui::alerts::resolve)
    .add(Get,    "/users",                    EffectivePermissions, ui::admin::users)
    .add(Post,   "/users/{username}/role",    RoleChange,        ui::admin::change_role)
    .add(Post,   "/users/{username}/team",    TeamChange,        ui::admin::change_team)
    .add(Get,    "/users/{username}/history", EffectivePermissions, ui::reassignments::history)
    .add(Get,    "/reassignments",            ReassignmentList,  ui::reassignments::list)
    .add(Post,   "/reassignments/{id}",       ReassignmentDecide, ui::reassignments::decide)
    .add(Get,    "/erasures",                 ErasureList,       ui::erasures::list)
    .add(Post,   "/erasures/{id}",            ErasureDecide,     ui::erasures::decide)
    .add(Get,    "/roles",                    CustomRoleList,    ui::roles::roles)
    .add(Post,   "/roles",                    CustomRoleSave,    ui::roles::save)
    .add(Get,    "/roles/{name}",             CustomRoleList,    ui::roles::role)
    .add(Post,   "/roles/{name}/delete",      CustomRoleDelete,  ui::roles::delete)
    .add(Post,   "/users/{username}/sessions/revoke", UserSessionsRevoke, ui::admin::revoke_sessions)
    .add(Get,    "/reviews",                  ReviewRead,        ui::admin::reviews)
    .add(Post,   "/reviews",                  ReviewManage,      ui::admin::start_review)
    .add(Get,    "/reviews/{id}",             ReviewRead,        ui::admin::review)
    .add(Post,   "/reviews/{id}/lines/{username}", ReviewManage, ui::admin::answer)
    .add(Get,    "/team-review",              TeamReviewRead,    ui::admin::team_review)
    .add(Post,   "/team-review/{id}/{username}", TeamReviewAnswer, ui::admin::answer)
    .add(Get,    "/backups",                  BackupList,        ui::backups::page)
    .add(Get,    "/posture",                  SecurityPosture,   ui::posture::page)
    .add(Post,   "/backups/run",              BackupNow,         ui::backups::run)
    .add(Post,   "/backups/restore-tests",    RestoreTestRun,    ui::backups::restore_test)
}

/// Every route of the server with its operation.
pub fn route_table() -> Vec<RouteSpec> {
    table().specs
}

/// The complete application router, with the policy layer and security headers on every route.
pub fn router(app: App) -> Router {
    assemble(table(), app)
}

fn assemble(table: Table, app: App) -> Router {
    let Table { router, specs } = table;
    let mut operations: HashMap<&'static str, Vec<(Method, Operation)>> = HashMap::new();
    for s in &specs {
        operations
            .entry(s.path)
            .or_default()
            .push((s.verb.method(), s.operation));
    }
    let state = AppState {
        app,
        operations: Arc::new(operations),
    };
    router
        .fallback(ui::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            policy::enforce,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(headers::security_headers))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt;
    use zf_app::AppConfig;
    use zf_crypto::MasterKey;
    use zf_store::SqliteStore;

    use super::*;

    #[tokio::test]
    async fn a_route_added_around_the_table_is_refused_before_its_handler_runs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("t.db")).await.unwrap());
        let app = App::new(store, &MasterKey::generate(), AppConfig::default())
            .await
            .unwrap();
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        let mut t = table();
        t.router = t.router.route(
            "/sneaky",
            get(move || async move {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                "client data"
            }),
        );
        let res = assemble(t, app)
            .oneshot(Request::get("/sneaky").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }
}
