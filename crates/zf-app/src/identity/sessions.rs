//! One's own sessions, and ending them: a user ends one of theirs (a browser left signed in
//! somewhere), the security administrator ends all of someone's.

use zf_audit::{AuditAction, AuditEvent, Outcome};
use zf_domain::Username;
use zf_policy::Grant;

use super::session::session_ref;
use crate::{actor, App, AppError, RequestMeta, SessionContext};

/// A session as its user sees it in their list.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// A short, non-secret name for the session; the key to end it by.
    pub id: String,
    /// The session this request came with.
    pub current: bool,
    /// The browser or program, as it named itself (User-Agent).
    pub device: Option<String>,
    /// The address it signed in from.
    pub source: Option<String>,
    /// Unix time in milliseconds of the sign-in.
    pub created_at: i64,
    pub last_seen: i64,
    /// When a second factor was last verified on it.
    pub second_factor_at: Option<i64>,
    /// The password was right but the second factor has not come (yet).
    pub waiting_for_second_factor: bool,
}

impl App {
    /// The caller's live sessions, newest first.
    pub async fn own_sessions(
        &self,
        session: &SessionContext,
    ) -> Result<Vec<SessionView>, AppError> {
        let now = self.now_ms();
        let idle = self.config.session_idle_timeout_ms;
        Ok(self
            .store
            .user_sessions(session.principal.user_id)
            .await?
            .into_iter()
            .filter(|s| now < s.absolute_expiry_ms && now < s.last_seen_ms + idle)
            .map(|s| SessionView {
                id: session_ref(&s.id_hash),
                current: s.id_hash == session.row.id_hash,
                device: s.device,
                source: s.source,
                created_at: s.created_at_ms,
                last_seen: s.last_seen_ms,
                second_factor_at: s.factor_at_ms,
                waiting_for_second_factor: s.second_factor_pending,
            })
            .collect())
    }

    /// Ends one of the caller's own sessions, named by its short id.
    pub async fn revoke_own_session(
        &self,
        grant: &Grant,
        session: &SessionContext,
        id: &str,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        let user = session.principal.user_id;
        let target = self
            .store
            .user_sessions(user)
            .await?
            .into_iter()
            .find(|s| session_ref(&s.id_hash) == id)
            .ok_or(AppError::NotFound)?;
        let event = AuditEvent::new(
            self.now_ms(),
            actor(grant, meta),
            AuditAction::SessionRevoked,
            Outcome::Success,
        )
        .on("session", id)
        .detail("ended by its user")
        .request(meta.request_id.clone());
        Ok(self
            .store
            .session_revoke(user, &target.id_hash, event)
            .await?)
    }

    /// Ends every session of a user at once (security administrators), with a reason.
    pub async fn revoke_user_sessions(
        &self,
        grant: &Grant,
        username: &Username,
        why: &str,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        let why = super::roles::reason(why)?;
        if self.store.user_by_username(username).await?.is_none() {
            return Err(AppError::NotFound);
        }
        let event = AuditEvent::new(
            self.now_ms(),
            actor(grant, meta),
            AuditAction::SessionsRevoked,
            Outcome::Success,
        )
        .on("user", username.as_str())
        .detail(why)
        .request(meta.request_id.clone());
        Ok(self.store.user_revoke_sessions(username, event).await?)
    }
}
