use axum::Json;
use utoipa::OpenApi;

use super::{
    alerts, audit, backups, clients, crm, erasures, keys, mfa, posture, reassignments, reviews,
    roles, session, sessions, tokens, users, webauthn,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Zhangfang API", description = "The JSON API of Zhangfang (账房). Every call needs the session cookie from POST /api/v1/session, except that one and this document. With a second factor set up, that cookie first opens only POST /api/v1/session/second-factor (and its /code and /security-key companions). Critical operations answer 403 with error code mfa_required and a `challenge` beside the error until a second factor is verified again at POST /api/v1/session/step-up (a TOTP code, a recovery code, or a code first sent by e-mail or SMS via POST /api/v1/session/step-up/code) or /api/v1/session/step-up/security-key (a security key); the challenge lists the factors the user has. Passkeys sign in without a password at POST /api/v1/session/passkey."),
    paths(
        session::login, session::who_am_i, session::logout, session::change_password,
        session::second_factor, session::step_up, sessions::list, sessions::revoke,
        sessions::revoke_all, mfa::status, mfa::begin, mfa::confirm, mfa::regenerate_recovery,
        session::send_sign_in_code, session::send_step_up_code,
        mfa::code_factors, mfa::code_begin, mfa::code_confirm,
        webauthn::list, webauthn::register_options, webauthn::register, webauthn::rename,
        webauthn::remove, webauthn::list_of_user, webauthn::remove_of_user,
        webauthn::second_factor_options, webauthn::second_factor, webauthn::step_up_options,
        webauthn::step_up, webauthn::passkey_options, webauthn::passkey,
        tokens::create, tokens::list, tokens::revoke, tokens::list_of_user, tokens::revoke_of_user,
        clients::list, clients::create, clients::search, clients::read, clients::update,
        clients::delete, clients::reveal, clients::request_erasure, erasures::list, erasures::decide,
        crm::client_export, crm::client_import, crm::client_assign, crm::engage_auditor, crm::end_engagement,
        crm::contact_list, crm::contact_create, crm::contact_update, crm::contact_delete, crm::contact_search,
        crm::contract_list, crm::contract_create, crm::contract_update, crm::contract_delete,
        crm::financial_list, crm::financial_create, crm::financial_update,
        crm::filing_list, crm::filing_generate, crm::filing_update, crm::filings_due,
        crm::interaction_list, crm::interaction_create, crm::interaction_update, crm::follow_ups,
        crm::document_list, crm::document_upload, crm::document_download, crm::document_delete,
        crm::custody_list, crm::custody_create, crm::custody_move, crm::custody_overdue,
        crm::payment_list, crm::payment_create, crm::client_fees, crm::arrears,
        crm::lead_list, crm::lead_search, crm::lead_create, crm::lead_update, crm::lead_convert,
        audit::search, alerts::list, alerts::acknowledge, alerts::resolve, users::change_role, users::change_team, users::permissions,
        roles::list, roles::read, roles::save, roles::delete,
        reassignments::list, reassignments::decide, reassignments::history,
        keys::status, keys::rotate, keys::reencrypt, keys::blind_index, keys::job, posture::posture, reviews::start, reviews::read, reviews::answer,
        reviews::team, reviews::team_answer,
        backups::overview, backups::run, backups::restore_test,
    ),
    components(schemas(crate::error::Challenge, crate::error::SecurityKeyEndpoints)),
    tags((name = "session"), (name = "mfa"), (name = "clients"), (name = "contacts"), (name = "contracts"),
        (name = "financials"), (name = "filings"), (name = "interactions"), (name = "documents"),
        (name = "custody"), (name = "fees"), (name = "leads"), (name = "audit"), (name = "alerts"), (name = "users"), (name = "roles"), (name = "keys"), (name = "security"), (name = "reviews"), (name = "backups"))
)]
pub struct ApiDoc;

/// The OpenAPI 3 description of the API.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
