use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use zf_app::AppError;
use zf_policy::{Denied, Factors};

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
    /// What would satisfy the refusal, for refusals a second factor answers.
    /// Boxed: most errors carry none, and the `Result`s of the edge stay small.
    pub challenge: Option<Box<Challenge>>,
}

/// A machine-readable way forward after a refusal for want of a second factor, listing the
/// user's own factors (`zf_policy::Factors`): the client POSTs `{"method": …, "code": "…"}` (a
/// TOTP code, a recovery code, or a code it asked for at `send_endpoint`) to `endpoint`, or
/// answers a security key's ceremony at `security_key` (POST its `options`, pass them to
/// `navigator.credentials.get`, POST the credential to its `endpoint`), and retries; for `enrol`,
/// it sets up an authenticator or a security key first.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Challenge {
    /// `sign_in` (finish signing in), `step_up` (verify again for a critical operation) or
    /// `enrol` (set up a second factor first).
    pub kind: &'static str,
    pub endpoint: &'static str,
    /// The methods the user has that answer it: `totp`, `recovery_code` (POST `{"method",
    /// "code"}` to `endpoint`), `email`, `sms` (ask for the code at `send_endpoint` first), and
    /// `security_key` (its ceremony at `security_key`); for `enrol`, what may be set up.
    pub methods: Vec<&'static str>,
    /// Where to ask for a one-time code by `email` or `sms` (`{"method": "email"}`) before
    /// POSTing it to `endpoint`; present when one of those methods is offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_endpoint: Option<&'static str>,
    /// Where a security key answers, when the user has one (or, for `enrol`, registers one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_key: Option<SecurityKeyEndpoints>,
    /// How long a verified factor then counts for critical operations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<i64>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SecurityKeyEndpoints {
    pub options: &'static str,
    pub endpoint: &'static str,
}

impl Challenge {
    fn sign_in(factors: Factors) -> Self {
        Challenge {
            kind: "sign_in",
            endpoint: "/api/v1/session/second-factor",
            methods: factors.methods(),
            send_endpoint: factors
                .sent_code()
                .then_some("/api/v1/session/second-factor/code"),
            security_key: factors.security_key.then_some(SecurityKeyEndpoints {
                options: "/api/v1/session/second-factor/security-key/options",
                endpoint: "/api/v1/session/second-factor/security-key",
            }),
            max_age_seconds: None,
        }
    }

    fn step_up(factors: Factors) -> Self {
        Challenge {
            kind: "step_up",
            endpoint: "/api/v1/session/step-up",
            methods: factors.methods(),
            send_endpoint: factors
                .sent_code()
                .then_some("/api/v1/session/step-up/code"),
            security_key: factors.security_key.then_some(SecurityKeyEndpoints {
                options: "/api/v1/session/step-up/security-key/options",
                endpoint: "/api/v1/session/step-up/security-key",
            }),
            max_age_seconds: None,
        }
    }

    fn enrol() -> Self {
        Challenge {
            kind: "enrol",
            endpoint: "/api/v1/mfa/totp",
            methods: vec!["totp", "security_key"],
            send_endpoint: None,
            security_key: Some(SecurityKeyEndpoints {
                options: "/api/v1/mfa/security-keys/options",
                endpoint: "/api/v1/mfa/security-keys",
            }),
            max_age_seconds: None,
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    challenge: Option<&'a Challenge>,
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
            challenge: None,
        }
    }

    fn with_challenge(mut self, challenge: Challenge) -> Self {
        self.challenge = Some(Box::new(challenge));
        self
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
            Denied::NotForToken { .. } => {
                Self::new(StatusCode::FORBIDDEN, "token_forbidden", denied.to_string())
            }
            Denied::SecondFactorPending { factors } => Self::new(
                StatusCode::UNAUTHORIZED,
                "second_factor_required",
                denied.to_string(),
            )
            .with_challenge(Challenge::sign_in(*factors)),
            Denied::MfaEnrolmentRequired => Self::new(
                StatusCode::FORBIDDEN,
                "mfa_enrolment_required",
                denied.to_string(),
            )
            .with_challenge(Challenge::enrol()),
            Denied::StepUpRequired {
                enrolled, factors, ..
            } => Self::new(StatusCode::FORBIDDEN, "mfa_required", denied.to_string())
                .with_challenge(if *enrolled {
                    Challenge::step_up(*factors)
                } else {
                    Challenge::enrol()
                }),
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
            AppError::RateLimited(m) => Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", m),
            AppError::Unavailable(m) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)
            }
            AppError::SecondFactorFailed => Self::new(
                StatusCode::UNAUTHORIZED,
                "second_factor_failed",
                AppError::SecondFactorFailed.to_string(),
            ),
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
            challenge: self.challenge.as_deref(),
        };
        (self.status, axum::Json(body)).into_response()
    }
}
