use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};
use zf_audit::{Actor, AuditAction, AuditEvent, Outcome};
use zf_domain::Username;
use zf_policy::{Authentication, Grant, Principal};
use zf_store::{LoginGuard, SessionLimit, SessionRow, UserRow};

use crate::identity::check_password;
use crate::{App, AppError, RequestMeta};

/// How a refusal by the lock is recorded, wherever the attempt came from.
pub(crate) const LOCKED: &str = "account locked after repeated failures";

/// Sign-in throttling: an account locks after consecutive failures, for a time that doubles
/// with each further failure; an address is refused after too many failures in a window.
/// Locked accounts and throttled addresses get the very same answer, after the very same work,
/// as a wrong password.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginPolicy {
    /// Consecutive failures that lock an account (0 turns account lockout off).
    pub lock_after: i64,
    /// The first lock's length; each further failure doubles it, up to a day.
    pub lock_minutes: i64,
    /// Failures from one address within the window after which it is refused (0: off).
    pub address_limit: u64,
    pub address_window_minutes: i64,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        LoginPolicy {
            lock_after: 5,
            lock_minutes: 15,
            address_limit: 100,
            address_window_minutes: 10,
        }
    }
}

impl LoginPolicy {
    pub(crate) fn lock_until(&self, failures: i64, now: i64) -> Option<i64> {
        if self.lock_after <= 0 || failures < self.lock_after {
            return None;
        }
        let doublings = u32::try_from((failures - self.lock_after).min(16)).unwrap_or(16);
        let minutes = (self.lock_minutes.max(1) << doublings).min(24 * 60);
        Some(now + minutes * 60_000)
    }
}

/// The secret a browser or API client presents: 128 random bits. Only its SHA-256 is stored.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SessionToken(String);

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(..)")
    }
}

impl SessionToken {
    pub(crate) fn generate() -> Self {
        SessionToken(URL_SAFE_NO_PAD.encode(zf_crypto::random_bytes::<16>()))
    }

    /// Accepts what a client sent; anything not shaped like a token is no session at all.
    pub fn from_presented(value: &str) -> Option<Self> {
        let ok = value.len() == 22
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| SessionToken(value.to_owned()))
    }

    /// The value to put in the cookie. Callers must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub(crate) fn hash(&self) -> Vec<u8> {
        Sha256::digest(self.0.as_bytes()).to_vec()
    }

    /// The anti-CSRF token for forms: derived from the session secret, so it needs no storage
    /// and cannot be computed by a page that does not hold the cookie.
    pub fn csrf_token(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"zhangfang/csrf/v1\0");
        h.update(self.0.as_bytes());
        URL_SAFE_NO_PAD.encode(&h.finalize()[..24])
    }
}

/// How long a correct password waits for its second factor.
pub(crate) const SECOND_FACTOR_WAIT_MS: i64 = 5 * 60_000;

/// A short, non-secret name for a session in audit events and logs.
pub(crate) fn session_ref(hash: &[u8]) -> String {
    hex::encode(&hash[..6])
}

/// An authenticated request's identity.
#[derive(Clone, Debug)]
pub struct SessionContext {
    pub principal: Principal,
    pub session_ref: String,
    pub expires_at_ms: i64,
    pub(crate) row: SessionRow,
}

impl SessionContext {
    /// When a second factor was last verified on this session.
    pub fn factor_at_ms(&self) -> Option<i64> {
        self.row.factor_at_ms
    }
}

/// A new session: after a sign-in, or after a second factor replaced the session's id.
pub struct LoginOutcome {
    pub token: SessionToken,
    pub principal: Principal,
    pub expires_at_ms: i64,
}

impl LoginOutcome {
    /// The password was right and the sign-in waits for the second factor.
    pub fn second_factor_pending(&self) -> bool {
        self.principal.authentication == Authentication::SecondFactorPending
    }
}

impl App {
    /// Signs in. Unknown users, wrong passwords and disabled accounts get the same answer after
    /// the same work; each attempt is audited.
    pub async fn login(
        &self,
        username: &str,
        password: SecretString,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, AppError> {
        let parsed = Username::parse(username).ok();
        let user = match &parsed {
            Some(u) => self.store.user_by_username(u).await?,
            None => None,
        };
        let policy = &self.config.login;
        // The hash is always computed, so a locked account or a throttled address answers
        // after the same work as a wrong password.
        let verified = self
            .hasher
            .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
            .await;
        // Everything that decides is read after the hash: the session's clock starts when it
        // is created, and attempts hashed side by side see each other's failures.
        let now = self.now_ms();
        // Asked for unknown names too, so both paths make the same queries.
        let guard = match &parsed {
            Some(u) => self.store.login_guard(u).await?,
            None => LoginGuard::default(),
        };
        let locked = guard.locked_at(now);
        let throttled = match (&meta.source, policy.address_limit) {
            (Some(source), limit) if limit > 0 => {
                let recent = zf_store::AuditQuery {
                    source: Some(source.clone()),
                    action: Some("login".into()),
                    outcome: Some("failed".into()),
                    from_ms: Some(now - policy.address_window_minutes.max(1) * 60_000),
                    ..zf_store::AuditQuery::default()
                };
                self.store.audit_count(&recent).await? >= limit
            }
            _ => false,
        };
        let attempted = parsed.as_ref().map_or_else(
            || "(malformed username)".to_owned(),
            |u| u.as_str().to_owned(),
        );
        let user = match user {
            Some(u) if verified && !u.disabled && !locked && !throttled => u,
            other => {
                let why = match &other {
                    _ if throttled => "too many failures from this address",
                    None => "unknown username",
                    Some(_) if locked => LOCKED,
                    Some(u) if u.disabled => "account disabled",
                    Some(_) => "wrong password",
                };
                let actor = Actor {
                    user_id: other.as_ref().map(|u| u.id),
                    name: attempted,
                    session_ref: None,
                    source: meta.source.clone(),
                    device: meta.device.clone(),
                };
                let event = AuditEvent::new(now, actor, AuditAction::Login, Outcome::Failed)
                    .request(meta.request_id.clone());
                match (&parsed, &other) {
                    // Only a password tried against an open account counts towards its lock.
                    (Some(name), Some(u)) if !locked && !throttled && !u.disabled => {
                        self.count_failure(name, guard, now, event, "wrong password")
                            .await?;
                    }
                    _ => self.store.audit_append(event.detail(why)).await?,
                }
                return Err(AppError::LoginFailed);
            }
        };
        // With an authenticator the password alone opens only a short wait for the second
        // factor; the session proper starts when the factor is verified, under a new id.
        let pending = self.second_factor_enrolled(&user);
        let token = SessionToken::generate();
        let id_hash = token.hash();
        let expires = now
            + if pending {
                SECOND_FACTOR_WAIT_MS
            } else {
                self.config.session_absolute_timeout_ms
            };
        let actor = Actor {
            user_id: Some(user.id),
            name: user.username.as_str().to_owned(),
            session_ref: Some(session_ref(&id_hash)),
            source: meta.source.clone(),
            device: meta.device.clone(),
        };
        let row = SessionRow {
            id_hash,
            user_id: user.id,
            created_at_ms: now,
            last_seen_ms: now,
            absolute_expiry_ms: expires,
            source: meta.source.clone(),
            second_factor_pending: pending,
            factor_at_ms: None,
            device: meta.device.clone(),
        };
        let (event, limit) = if pending {
            let event = AuditEvent::new(
                now,
                actor,
                AuditAction::LoginSecondFactorPending,
                Outcome::Success,
            );
            (event, None)
        } else {
            let limit = self.session_limit(&actor, now);
            (
                AuditEvent::new(now, actor, AuditAction::Login, Outcome::Success),
                limit,
            )
        };
        self.store
            .session_create(row.clone(), limit, event.request(meta.request_id.clone()))
            .await?;
        Ok(LoginOutcome {
            token,
            principal: self.principal_of(&user, &row, now),
            expires_at_ms: expires,
        })
    }

    /// Counts one failed attempt (a wrong password or second factor) against an open account,
    /// with its audit event detailed `why`. Concurrent attempts race for the counter by
    /// compare-and-set, so every failure is counted and the lock takes hold after exactly the
    /// policy's number of tries however many arrive at once; an attempt that finds the account
    /// locked by the others is recorded as refused by the lock. Returns whether the account
    /// is locked now.
    pub(crate) async fn count_failure(
        &self,
        username: &Username,
        mut seen: LoginGuard,
        now: i64,
        event: AuditEvent,
        why: &str,
    ) -> Result<bool, AppError> {
        loop {
            if seen.locked_at(now) {
                self.store.audit_append(event.detail(LOCKED)).await?;
                return Ok(true);
            }
            let failures = seen.failures + 1;
            let next = LoginGuard {
                failures,
                locked_until_ms: self.config.login.lock_until(failures, now),
            };
            if self
                .store
                .login_failed(username, seen, next, event.clone().detail(why))
                .await?
            {
                return Ok(next.locked_at(now));
            }
            seen = self.store.login_guard(username).await?;
        }
    }

    /// The caller as the policy sees them on this session: their role read afresh, and how far
    /// they have authenticated.
    pub(crate) fn principal_of(&self, user: &UserRow, session: &SessionRow, now: i64) -> Principal {
        let mfa = &self.config.mfa;
        let factors = self.factors(user);
        let authentication = if session.second_factor_pending {
            Authentication::SecondFactorPending
        } else if factors.any() {
            Authentication::MultiFactor {
                fresh: session
                    .factor_at_ms
                    .is_some_and(|at| now - at < mfa.step_up_window_ms()),
            }
        } else {
            Authentication::PasswordOnly {
                enrolment_required: mfa.requires(user.role),
            }
        };
        Principal {
            user_id: user.id,
            username: user.username.clone(),
            role: user.role,
            custom_role: user.custom_role.clone(),
            team: user.team.clone(),
            must_change_password: user.must_change_password
                || self
                    .config
                    .password
                    .expired(user.password_changed_at_ms, now),
            authentication,
            factors,
            token: None,
        }
    }

    /// The concurrent-session limit as the store applies it, with the event that records an
    /// ended session.
    pub(crate) fn session_limit(&self, actor: &Actor, now: i64) -> Option<SessionLimit> {
        let keep = self.config.max_sessions_per_user;
        (keep > 0).then(|| SessionLimit {
            keep,
            event: AuditEvent::new(
                now,
                actor.clone(),
                AuditAction::SessionRevoked,
                Outcome::Success,
            )
            .on("user", actor.name.as_str())
            .detail(format!(
                "at most {keep} sessions per user: the oldest ended"
            )),
        })
    }

    /// Turns a presented token into the caller's identity, reading the user's role afresh on
    /// every request so that a role change applies at once. Expired sessions are removed.
    pub async fn resolve_session(
        &self,
        token: &SessionToken,
    ) -> Result<Option<SessionContext>, AppError> {
        let id_hash = token.hash();
        let Some((session, user)) = self.store.session_get(&id_hash).await? else {
            return Ok(None);
        };
        let now = self.now_ms();
        let idle_expiry = session.last_seen_ms + self.config.session_idle_timeout_ms;
        if user.disabled || now >= session.absolute_expiry_ms || now >= idle_expiry {
            self.store.session_delete(&id_hash, None).await?;
            return Ok(None);
        }
        // Sliding the idle window costs a write; once a minute is precise enough.
        if now - session.last_seen_ms > 60_000 {
            self.store.session_touch(&id_hash, now).await?;
        }
        Ok(Some(SessionContext {
            principal: self.principal_of(&user, &session, now),
            session_ref: session_ref(&id_hash),
            expires_at_ms: session
                .absolute_expiry_ms
                .min(now + self.config.session_idle_timeout_ms),
            row: session,
        }))
    }

    /// Ends the caller's session on the server.
    pub async fn logout(
        &self,
        grant: &Grant,
        session: &SessionContext,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        let event = AuditEvent::new(
            self.now_ms(),
            crate::actor(grant, meta),
            AuditAction::Logout,
            Outcome::Success,
        )
        .request(meta.request_id.clone());
        self.store
            .session_delete(&session.row.id_hash, Some(event))
            .await?;
        Ok(())
    }

    /// Replaces the caller's own password after checking the current one; every other session
    /// of the user ends.
    pub async fn change_own_password(
        &self,
        grant: &Grant,
        session: &SessionContext,
        current: SecretString,
        new: SecretString,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        use secrecy::ExposeSecret;
        let principal = &session.principal;
        let user = self
            .store
            .user_by_username(&principal.username)
            .await?
            .ok_or(AppError::NotFound)?;
        if !self
            .hasher
            .verify(current.clone(), Some(user.password_hash))
            .await
        {
            return Err(AppError::Invalid("the current password is wrong".into()));
        }
        // With an authenticator, the current password alone does not change it: a stolen
        // session or password must not be enough to take the account over.
        if principal.authentication == (Authentication::MultiFactor { fresh: false }) {
            return Err(zf_policy::Denied::StepUpRequired {
                operation: "change_own_password",
                enrolled: true,
                factors: principal.factors,
            }
            .into());
        }
        if current.expose_secret() == new.expose_secret() {
            return Err(crate::PasswordPolicyError::Unchanged.into());
        }
        let policy = &self.config.password;
        check_password(
            new.expose_secret(),
            &principal.username,
            self.config.firm_name.as_deref(),
            policy,
        )?;
        let earlier = policy.history().saturating_sub(1);
        if earlier > 0 {
            for old in self
                .store
                .password_history(principal.user_id, earlier)
                .await?
            {
                if self.hasher.verify(new.clone(), Some(old)).await {
                    return Err(crate::PasswordPolicyError::Reused {
                        last: policy.history(),
                    }
                    .into());
                }
            }
        }
        let hash = self.hasher.hash(new).await?;
        let now = self.now_ms();
        let event = AuditEvent::new(
            now,
            crate::actor(grant, meta),
            AuditAction::PasswordChanged,
            Outcome::Success,
        )
        .on("user", principal.user_id)
        .request(meta.request_id.clone());
        self.store
            .user_set_password(principal.user_id, hash, false, now, event)
            .await?;
        self.store
            .session_delete_for_user(principal.user_id, Some(&session.row.id_hash))
            .await?;
        Ok(())
    }
}
