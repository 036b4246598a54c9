//! The JSON API under `/api/v1`. Handlers parse, call one [`zf_app::App`] method, and shape
//! the answer; they hold no business rules.

pub mod alerts;
pub mod audit;
pub mod backups;
pub mod clients;
pub mod crm;
pub mod erasures;
pub mod keys;
pub mod mfa;
pub mod openapi;
pub mod posture;
pub mod reassignments;
pub mod reviews;
pub mod roles;
pub mod session;
pub mod sessions;
pub mod tokens;
pub mod users;
pub mod webauthn;

/// Liveness for load balancers and orchestration; says nothing about data.
pub async fn health() -> &'static str {
    "ok"
}

/// A file to download: never rendered inline, never cached, its name percent-encoded
/// (RFC 6266 / 5987) so Chinese names survive and no header can be injected.
pub fn attachment(file_name: &str, content_type: &str, bytes: Vec<u8>) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    let encoded: String = file_name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"download\"; filename*=UTF-8''{encoded}"),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        bytes,
    )
        .into_response()
}
