use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use zf_app::AppError;
use zf_policy::Denied;

tokio::task_local! {
    /// The id of the request being served, so every error body can name it.
    pub(crate) static REQUEST_ID: String;
}

pub(crate) fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The one error type of the edge: a status, a stable code and a message for the caller.
/// Internal causes are logged with the request id and never shown.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    request_id: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such record")
    }

    pub fn from_denied(denied: &Denied) -> Self {
        match denied {
            Denied::NotSignedIn => Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                denied.to_string(),
            ),
            Denied::PasswordChangeRequired => Self::new(
                StatusCode::FORBIDDEN,
                "password_change_required",
                denied.to_string(),
            ),
            Denied::Forbidden { .. } => {
                Self::new(StatusCode::FORBIDDEN, "forbidden", denied.to_string())
            }
            Denied::Network { .. } => {
                Self::new(StatusCode::FORBIDDEN, "network", denied.to_string())
            }
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Denied(d) => Self::from_denied(&d),
            AppError::Invalid(m) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", m),
            AppError::Password(p) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "password_policy",
                p.to_string(),
            ),
            AppError::NotFound => Self::not_found(),
            AppError::TooLarge(m) => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", m)
            }
            AppError::Unsupported(m) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                m,
            ),
            AppError::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", m),
            AppError::LoginFailed => Self::new(
                StatusCode::UNAUTHORIZED,
                "login_failed",
                AppError::LoginFailed.to_string(),
            ),
            AppError::Internal(cause) => {
                tracing::error!(request_id = ?current_request_id(), %cause, "internal error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the server could not complete the request; quote the request id to the administrator",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                request_id: current_request_id(),
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}
