//! Extractors that turn raw request parts into domain values, or into one clear 4xx.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use zf_app::{RequestMeta, SessionContext};
use zf_domain::{ClientId, LeadId, RecordId};
use zf_policy::Grant;

use crate::ApiError;

/// A JSON body parsed straight into a domain command; malformed input never reaches a handler.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    match r {
        JsonRejection::JsonDataError(e) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!(
                "the request body is not valid: {}",
                e.body_text().trim_start_matches(
                    "Failed to deserialize the JSON body into the target type: "
                )
            ),
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(format!(
            "the request body is not well-formed JSON: {}",
            e.body_text()
                .trim_start_matches("Failed to parse the request body as JSON: ")
        )),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than this endpoint accepts",
            )
        }
        other => ApiError::bad_request(format!(
            "the request body could not be read: {}",
            other.body_text()
        )),
    }
}

/// A client id from the path, parsed before the handler runs.
pub struct ClientIdPath(pub ClientId);

impl<S: Send + Sync> FromRequestParts<S> for ClientIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e: PathRejection| ApiError::bad_request(e.body_text()))?;
        ClientId::parse(&raw)
            .map(ClientIdPath)
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }
}

/// A client id and the id of one of its records, from `/clients/{id}/…/{record_id}`.
pub struct RecordPath {
    pub client: ClientId,
    pub record: RecordId,
}

impl<S: Send + Sync> FromRequestParts<S> for RecordPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path((client, record)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|e: PathRejection| ApiError::bad_request(e.body_text()))?;
        Ok(RecordPath {
            client: ClientId::parse(&client).map_err(|e| ApiError::bad_request(e.to_string()))?,
            record: RecordId::parse(&record).map_err(|e| ApiError::bad_request(e.to_string()))?,
        })
    }
}

/// A lead id from the path.
pub struct LeadIdPath(pub LeadId);

impl<S: Send + Sync> FromRequestParts<S> for LeadIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e: PathRejection| ApiError::bad_request(e.body_text()))?;
        LeadId::parse(&raw)
            .map(LeadIdPath)
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }
}

/// Query parameters with unknown keys refused.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| QueryParams(q.0))
            .map_err(|e: QueryRejection| {
                ApiError::bad_request(format!(
                    "invalid query string: {}",
                    e.body_text()
                        .trim_start_matches("Failed to deserialize query string: ")
                ))
            })
    }
}

/// What the policy layer established about the request: the grant, the session if any, and
/// the facts for audit events. A handler cannot run without it.
#[derive(Clone)]
pub struct Authorized {
    pub grant: Grant,
    pub session: Option<SessionContext>,
    pub meta: RequestMeta,
    pub csrf_token: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Authorized>().cloned().ok_or_else(|| {
            // Only reachable if a route escaped the policy layer: refuse rather than serve.
            tracing::error!(path = %parts.uri.path(), "handler reached without a policy decision");
            ApiError::new(StatusCode::FORBIDDEN, "forbidden", "no policy decision for this request")
        })
    }
}

impl Authorized {
    pub fn session(&self) -> Result<&SessionContext, ApiError> {
        self.session.as_ref().ok_or_else(|| {
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "sign in first")
        })
    }
}
