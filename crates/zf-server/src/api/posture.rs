//! The security posture check over the API (security administrators).

use axum::extract::State;
use axum::Json;
use zf_app::posture::Posture;

use crate::extract::Authorized;
use crate::routes::AppState;
use crate::ApiError;

/// Every posture check — KEK age against the rotation policy, master-key custody, data keys,
/// the second-factor policy and who lacks a factor, backups, restore tests, drills, access
/// reviews, the audit chain, open alerts, log forwarding, the TLS certificate, dormant
/// accounts — each `pass`, `warn` or `fail` with what was found. Audited.
#[utoipa::path(get, path = "/api/v1/security/posture", tag = "security",
    responses((status = 200, body = Posture)))]
pub async fn posture(
    State(state): State<AppState>,
    auth: Authorized,
) -> Result<Json<Posture>, ApiError> {
    Ok(Json(state.app.posture_by(&auth.grant, &auth.meta).await?))
}
