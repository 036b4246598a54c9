use axum::Json;
use utoipa::OpenApi;

use super::{alerts, audit, clients, reviews, session, users};

#[derive(OpenApi)]
#[openapi(
    info(title = "Zhangfang API", description = "The JSON API of Zhangfang (账房). Every call needs the session cookie from POST /api/v1/session, except that one and this document."),
    paths(
        session::login, session::who_am_i, session::logout, session::change_password,
        clients::list, clients::create, clients::search, clients::read, clients::update,
        clients::delete, clients::reveal, audit::search, alerts::list, alerts::acknowledge, alerts::resolve, users::change_role, users::permissions, reviews::start, reviews::read, reviews::answer,
    ),
    tags((name = "session"), (name = "clients"), (name = "audit"), (name = "alerts"), (name = "users"), (name = "reviews"))
)]
pub struct ApiDoc;

/// The OpenAPI 3 description of the API.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
