use axum::Json;
use utoipa::OpenApi;

use super::{alerts, audit, clients, mfa, reviews, session, sessions, users};

#[derive(OpenApi)]
#[openapi(
    info(title = "Zhangfang API", description = "The JSON API of Zhangfang (账房). Every call needs the session cookie from POST /api/v1/session, except that one and this document. With an authenticator set up, that cookie first opens only POST /api/v1/session/second-factor. Critical operations answer 403 with error code mfa_required and a `challenge` beside the error until a second factor is verified again at POST /api/v1/session/step-up."),
    paths(
        session::login, session::who_am_i, session::logout, session::change_password,
        session::second_factor, session::step_up, sessions::list, sessions::revoke,
        sessions::revoke_all, mfa::status, mfa::begin, mfa::confirm,
        clients::list, clients::create, clients::search, clients::read, clients::update,
        clients::delete, clients::reveal, audit::search, alerts::list, alerts::acknowledge, alerts::resolve, users::change_role, users::permissions, reviews::start, reviews::read, reviews::answer,
    ),
    components(schemas(crate::error::Challenge)),
    tags((name = "session"), (name = "mfa"), (name = "clients"), (name = "audit"), (name = "alerts"), (name = "users"), (name = "reviews"))
)]
pub struct ApiDoc;

/// The OpenAPI 3 description of the API.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
