use axum::http::header;
use axum::response::IntoResponse;

const STYLESHEET: &str = include_str!("app.css");
const WEBAUTHN_SCRIPT: &str = include_str!("webauthn.js");

pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
}

/// The security-key ceremonies, the one script the web UI runs.
pub async fn webauthn_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        WEBAUTHN_SCRIPT,
    )
}

/// Browsers ask for it unprompted; an empty answer keeps their consoles free of 404s.
pub async fn favicon() -> impl IntoResponse {
    (
        axum::http::StatusCode::NO_CONTENT,
        [(header::CACHE_CONTROL, "public, max-age=86400")],
    )
}
