//! The JSON API under `/api/v1`. Handlers parse, call one [`zf_app::App`] method, and shape
//! the answer; they hold no business rules.

pub mod alerts;
pub mod audit;
pub mod clients;
pub mod mfa;
pub mod openapi;
pub mod reviews;
pub mod session;
pub mod sessions;
pub mod users;

/// Liveness for load balancers and orchestration; says nothing about data.
pub async fn health() -> &'static str {
    "ok"
}
