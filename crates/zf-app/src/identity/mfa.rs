//! The second factor: setting up an authenticator (TOTP), completing a sign-in with it or with
//! a recovery code, and verifying it again for critical operations (step-up). Every accepted
//! factor replaces the session by a new one, so an id seen before the factor is worth nothing
//! after it.

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;
use zf_audit::{Actor, AuditAction, AuditEvent, Outcome};
use zf_crypto::{TotpParams, TotpSecret};
use zf_domain::Username;
use zf_policy::{Authentication, Grant, Principal};
use zf_store::{
    FactorUse, LoginGuard, MfaConfirm, OtpPurpose, SessionRow, SessionUpgrade, StoreError,
};

use super::otp::SecondFactorMethod;
use super::recovery::{normalize_recovery_code, RECOVERY_CODES};
use super::session::{session_ref, SessionToken};
use crate::identity::session::LOCKED;
use crate::{actor, App, AppError, LoginOutcome, RequestMeta, SessionContext};

/// What the authenticator app is told the account belongs to.
const ISSUER: &str = "Zhangfang";

/// One's own second-factor settings.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct MfaStatus {
    /// A confirmed authenticator is asked for at every sign-in.
    pub enrolled: bool,
    /// An authenticator was set up but not yet confirmed with a first code.
    pub enrolment_pending: bool,
    /// The MFA policy requires an authenticator for the user's role.
    pub required: bool,
    /// Unix time in milliseconds of the confirmation.
    pub confirmed_at: Option<i64>,
    pub recovery_codes_left: i64,
}

/// A new authenticator's secret, shown to its user to scan or type, and nowhere else.
pub struct TotpEnrolment {
    /// RFC 4648 base32, for typing into an authenticator app by hand.
    pub secret: Zeroizing<String>,
    /// The `otpauth://` URI a QR code carries.
    pub uri: Zeroizing<String>,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment(..)")
    }
}

/// A confirmed authenticator: the session's new id, and the recovery codes, shown this once.
pub struct MfaActivated {
    pub session: LoginOutcome,
    pub recovery_codes: Vec<Zeroizing<String>>,
}

impl std::fmt::Debug for MfaActivated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MfaActivated(..)")
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn uri_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn otpauth_uri(username: &Username, secret: &TotpSecret) -> Zeroizing<String> {
    let p = TotpParams::STANDARD;
    Zeroizing::new(format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={digits}&period={period}",
        issuer = uri_component(ISSUER),
        account = uri_component(username.as_str()),
        secret = secret.to_base32().as_str(),
        digits = p.digits,
        period = p.step_seconds,
    ))
}

pub(super) fn factor_name(factor: &FactorUse) -> &'static str {
    match factor {
        FactorUse::Totp { .. } => "totp",
        FactorUse::RecoveryCode { .. } => "recovery code",
        FactorUse::SecurityKey(_) => "security key",
        FactorUse::Code { .. } => "one-time code by e-mail or SMS",
    }
}

pub(super) fn session_actor(principal: &Principal, session_ref: &str, meta: &RequestMeta) -> Actor {
    Actor {
        user_id: Some(principal.user_id),
        name: principal.username.as_str().to_owned(),
        session_ref: Some(session_ref.to_owned()),
        source: meta.source.clone(),
        device: meta.device.clone(),
    }
}

impl App {
    pub async fn mfa_status(&self, session: &SessionContext) -> Result<MfaStatus, AppError> {
        let row = self.store.mfa_get(session.principal.user_id).await?;
        Ok(MfaStatus {
            enrolled: row.as_ref().is_some_and(|m| m.confirmed_at_ms.is_some()),
            enrolment_pending: row.as_ref().is_some_and(|m| m.confirmed_at_ms.is_none()),
            required: self.config.mfa.requires(session.principal.role),
            confirmed_at: row.as_ref().and_then(|m| m.confirmed_at_ms),
            recovery_codes_left: row.map_or(0, |m| {
                if m.confirmed_at_ms.is_some() {
                    m.recovery_codes_left
                } else {
                    0
                }
            }),
        })
    }

    /// Starts setting up an authenticator, replacing one started before and not confirmed.
    /// Refused once an authenticator is confirmed: replacing it takes an operator's reset.
    pub async fn totp_begin(
        &self,
        grant: &Grant,
        session: &SessionContext,
        meta: &RequestMeta,
    ) -> Result<TotpEnrolment, AppError> {
        let principal = &session.principal;
        let secret = TotpSecret::generate();
        let sealed = self.keys.seal_totp_secret(principal.user_id, &secret);
        let now = self.now_ms();
        let event = AuditEvent::new(
            now,
            actor(grant, meta),
            AuditAction::MfaEnrolmentStarted,
            Outcome::Success,
        )
        .on("user", principal.username.as_str())
        .detail("totp")
        .request(meta.request_id.clone());
        self.store
            .mfa_begin(principal.user_id, sealed, now, event)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => AppError::Conflict(
                    "an authenticator is already set up; an administrator can reset it with `zhangfang user reset-mfa`".into(),
                ),
                other => other.into(),
            })?;
        Ok(TotpEnrolment {
            uri: otpauth_uri(&principal.username, &secret),
            secret: secret.to_base32(),
        })
    }

    /// The enrolment started and not yet confirmed, to show again (a reloaded page).
    pub async fn totp_pending(
        &self,
        session: &SessionContext,
    ) -> Result<Option<TotpEnrolment>, AppError> {
        let principal = &session.principal;
        let Some(row) = self.store.mfa_get(principal.user_id).await? else {
            return Ok(None);
        };
        if row.confirmed_at_ms.is_some() {
            return Ok(None);
        }
        let secret = self
            .keys
            .open_totp_secret(principal.user_id, &row.totp_secret)?;
        Ok(Some(TotpEnrolment {
            uri: otpauth_uri(&principal.username, &secret),
            secret: secret.to_base32(),
        }))
    }

    /// Activates the authenticator being set up with its first code, and hands out the
    /// recovery codes. The session continues under a new id with a verified factor.
    pub async fn totp_confirm(
        &self,
        grant: &Grant,
        session: &SessionContext,
        code: &SecretString,
        meta: &RequestMeta,
    ) -> Result<MfaActivated, AppError> {
        let principal = &session.principal;
        let user = principal.user_id;
        let row = match self.store.mfa_get(user).await? {
            Some(r) if r.confirmed_at_ms.is_none() => r,
            Some(_) => {
                return Err(AppError::Conflict(
                    "an authenticator is already set up".into(),
                ))
            }
            None => {
                return Err(AppError::Invalid(
                    "start setting up an authenticator first".into(),
                ))
            }
        };
        let secret = self.keys.open_totp_secret(user, &row.totp_secret)?;
        let p = TotpParams::STANDARD;
        let now = self.now_ms();
        let Some(step) = secret.verify(code.expose_secret(), p.step_at(now), None, p) else {
            let event = AuditEvent::new(
                now,
                actor(grant, meta),
                AuditAction::MfaEnabled,
                Outcome::Failed,
            )
            .on("user", principal.username.as_str())
            .detail("the first code did not match")
            .request(meta.request_id.clone());
            self.store.audit_append(event).await?;
            return Err(AppError::Invalid(
                "the code does not match: check that the authenticator's clock is right, and enter the code it shows now".into(),
            ));
        };
        let (recovery_codes, hashes) = self.new_recovery_codes(user);
        let (token, new) = self.renewed(&session.row, now);
        let event = AuditEvent::new(
            now,
            actor(grant, meta),
            AuditAction::MfaEnabled,
            Outcome::Success,
        )
        .on("user", principal.username.as_str())
        .detail(format!(
            "totp, {RECOVERY_CODES} recovery codes; session renewed as {}",
            session_ref(&new.id_hash)
        ))
        .request(meta.request_id.clone());
        let expires = new.absolute_expiry_ms;
        self.store
            .mfa_confirm(
                MfaConfirm {
                    user_id: user,
                    step,
                    recovery_codes: hashes,
                    confirmed_at_ms: now,
                    old_id_hash: session.row.id_hash.clone(),
                    new,
                },
                event,
            )
            .await
            .map_err(|e| match e {
                StoreError::NotFound => AppError::Conflict(
                    "the authenticator was confirmed or the session ended meanwhile".into(),
                ),
                other => other.into(),
            })?;
        Ok(MfaActivated {
            session: LoginOutcome {
                token,
                principal: Principal {
                    authentication: Authentication::MultiFactor { fresh: true },
                    ..principal.clone()
                },
                expires_at_ms: expires,
            },
            recovery_codes,
        })
    }

    /// A copy of `old` under a new id, with a second factor verified now.
    pub(crate) fn renewed(&self, old: &SessionRow, now: i64) -> (SessionToken, SessionRow) {
        let token = SessionToken::generate();
        let row = SessionRow {
            id_hash: token.hash(),
            last_seen_ms: now,
            factor_at_ms: Some(now),
            second_factor_pending: false,
            ..old.clone()
        };
        (token, row)
    }

    /// The factor a presented code stands for, if it is one of the user's: a TOTP code of a
    /// step in the window and later than the last accepted one, a well-formed recovery code
    /// (whether it is an unused one of the user's, the store decides as it uses it), or the
    /// one-time code last sent by e-mail or SMS. Without a `method`, a user with an
    /// authenticator is asked for it, and a user without one for the code sent.
    async fn presented_factor(
        &self,
        principal: &Principal,
        method: Option<SecondFactorMethod>,
        code: &SecretString,
        purpose: OtpPurpose,
    ) -> Result<Option<FactorUse>, AppError> {
        if method.and_then(SecondFactorMethod::channel).is_some() {
            return self.presented_code(principal, method, code, purpose).await;
        }
        let user = principal.user_id;
        let Some(row) = self
            .store
            .mfa_get(user)
            .await?
            .filter(|m| m.confirmed_at_ms.is_some())
        else {
            return match method {
                None => self.presented_code(principal, None, code, purpose).await,
                Some(_) => Ok(None),
            };
        };
        let presented = code.expose_secret().trim();
        let p = TotpParams::STANDARD;
        if presented.len() == p.digits as usize && presented.bytes().all(|b| b.is_ascii_digit()) {
            let secret = self.keys.open_totp_secret(user, &row.totp_secret)?;
            let step = secret.verify(presented, p.step_at(self.now_ms()), row.last_step, p);
            return Ok(step.map(|step| FactorUse::Totp { step }));
        }
        Ok(
            normalize_recovery_code(presented).map(|c| FactorUse::RecoveryCode {
                hash: self.keys.recovery_code_index(user, &c),
            }),
        )
    }

    /// Completes a sign-in that waits for its second factor. A wrong or reused code counts
    /// towards the account's lock like a wrong password; the right one starts the session
    /// proper under a new id, and the waiting one ends.
    pub async fn complete_sign_in(
        &self,
        session: &SessionContext,
        code: &SecretString,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, AppError> {
        self.complete_sign_in_with(session, None, code, meta).await
    }

    /// [`App::complete_sign_in`] with the method the user chose, when several are enrolled.
    pub async fn complete_sign_in_with(
        &self,
        session: &SessionContext,
        method: Option<SecondFactorMethod>,
        code: &SecretString,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, AppError> {
        if !session.row.second_factor_pending {
            return Err(AppError::Invalid(
                "no sign-in is waiting for a second factor on this session".into(),
            ));
        }
        let principal = &session.principal;
        let now = self.now_ms();
        let guard = self.store.login_guard(&principal.username).await?;
        let locked = guard.locked_at(now);
        let factor = if locked {
            None
        } else {
            self.presented_factor(principal, method, code, OtpPurpose::SignIn)
                .await?
        };
        if let Some(factor) = factor {
            let what = factor_name(&factor).to_owned();
            if let Some(outcome) = self
                .sign_in_accept(session, factor, &what, now, meta)
                .await?
            {
                return Ok(outcome);
            }
        }
        let why = if locked {
            LOCKED
        } else {
            "wrong or reused second factor"
        };
        self.sign_in_refuse(session, guard, locked, now, why, meta)
            .await?;
        Err(AppError::SecondFactorFailed)
    }

    /// Verifies the second factor again on a signed-in session, so critical operations are
    /// allowed for the next few minutes. The session continues under a new id. Failures are
    /// audited and count towards the account's lock, so a stolen session cannot guess codes.
    pub async fn step_up(
        &self,
        grant: &Grant,
        session: &SessionContext,
        code: &SecretString,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, AppError> {
        self.step_up_with(grant, session, None, code, meta).await
    }

    /// [`App::step_up`] with the method the user chose, when several are enrolled.
    pub async fn step_up_with(
        &self,
        grant: &Grant,
        session: &SessionContext,
        method: Option<SecondFactorMethod>,
        code: &SecretString,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, AppError> {
        let principal = &session.principal;
        if session.row.second_factor_pending {
            return Err(AppError::Invalid(
                "complete the sign-in with the second factor first".into(),
            ));
        }
        let now = self.now_ms();
        let guard = self.store.login_guard(&principal.username).await?;
        let locked = guard.locked_at(now);
        if !matches!(principal.authentication, Authentication::MultiFactor { .. }) {
            return Err(AppError::Invalid(
                "set up an authenticator first: there is no second factor to verify".into(),
            ));
        }
        let factor = if locked {
            None
        } else {
            self.presented_factor(principal, method, code, OtpPurpose::StepUp)
                .await?
        };
        if let Some(factor) = factor {
            let what = factor_name(&factor).to_owned();
            if let Some(outcome) = self
                .step_up_accept(grant, session, factor, &what, now, meta)
                .await?
            {
                return Ok(outcome);
            }
        }
        let why = if locked {
            LOCKED
        } else {
            "wrong or reused second factor"
        };
        self.step_up_refuse(grant, session, guard, locked, now, why, meta)
            .await?;
        Err(AppError::SecondFactorFailed)
    }

    /// Accepts a verified second factor for a waiting sign-in: the factor is consumed, the
    /// session is replaced by a signed-in one under a new id (the concurrent-session limit
    /// applied), and the success is audited, all in one transaction. `None` when the store
    /// found the factor used meanwhile, on this node or another.
    pub(super) async fn sign_in_accept(
        &self,
        session: &SessionContext,
        factor: FactorUse,
        what: &str,
        now: i64,
        meta: &RequestMeta,
    ) -> Result<Option<LoginOutcome>, AppError> {
        let principal = &session.principal;
        let token = SessionToken::generate();
        let new = SessionRow {
            id_hash: token.hash(),
            user_id: principal.user_id,
            created_at_ms: now,
            last_seen_ms: now,
            absolute_expiry_ms: now + self.config.session_absolute_timeout_ms,
            source: meta.source.clone(),
            second_factor_pending: false,
            factor_at_ms: Some(now),
            device: meta.device.clone(),
        };
        let actor = session_actor(principal, &session_ref(&new.id_hash), meta);
        let event = AuditEvent::new(now, actor.clone(), AuditAction::Login, Outcome::Success)
            .detail(format!("second factor: {what}"))
            .request(meta.request_id.clone());
        let expires = new.absolute_expiry_ms;
        let upgrade = SessionUpgrade {
            old_id_hash: session.row.id_hash.clone(),
            new,
            factor,
            completes_sign_in: true,
            limit: self.session_limit(&actor, now),
        };
        match self.store.session_upgrade(upgrade, event).await {
            Ok(true) => Ok(Some(LoginOutcome {
                token,
                principal: Principal {
                    authentication: Authentication::MultiFactor { fresh: true },
                    ..principal.clone()
                },
                expires_at_ms: expires,
            })),
            Ok(false) => Ok(None),
            Err(StoreError::NotFound) => Err(AppError::SecondFactorFailed),
            Err(e) => Err(e.into()),
        }
    }

    /// Records a refused second factor for a waiting sign-in, audited. A locked account's
    /// waiting sign-in ends; otherwise the failure counts towards the lock, and ends the
    /// waiting sign-in when it locks the account.
    pub(super) async fn sign_in_refuse(
        &self,
        session: &SessionContext,
        guard: LoginGuard,
        locked: bool,
        now: i64,
        why: &str,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        let principal = &session.principal;
        let event = AuditEvent::new(
            now,
            session_actor(principal, &session.session_ref, meta),
            AuditAction::Login,
            Outcome::Failed,
        )
        .request(meta.request_id.clone());
        if locked {
            self.store
                .session_delete(&session.row.id_hash, Some(event.detail(LOCKED)))
                .await?;
        } else if self
            .count_failure(&principal.username, guard, now, event, why)
            .await?
        {
            self.store
                .session_delete(&session.row.id_hash, None)
                .await?;
        }
        Ok(())
    }

    /// Accepts a verified factor for a step-up: the factor is consumed, the session continues
    /// under a new id, and the success is audited, all in one transaction. `None` when the
    /// store found the factor used meanwhile (a concurrent request took it first).
    pub(super) async fn step_up_accept(
        &self,
        grant: &Grant,
        session: &SessionContext,
        factor: FactorUse,
        what: &str,
        now: i64,
        meta: &RequestMeta,
    ) -> Result<Option<LoginOutcome>, AppError> {
        let (token, new) = self.renewed(&session.row, now);
        let event = AuditEvent::new(
            now,
            actor(grant, meta),
            AuditAction::StepUp,
            Outcome::Success,
        )
        .detail(format!(
            "{what}; session renewed as {}",
            session_ref(&new.id_hash)
        ))
        .request(meta.request_id.clone());
        let expires = new
            .absolute_expiry_ms
            .min(now + self.config.session_idle_timeout_ms);
        let upgrade = SessionUpgrade {
            old_id_hash: session.row.id_hash.clone(),
            new,
            factor,
            completes_sign_in: false,
            limit: None,
        };
        match self.store.session_upgrade(upgrade, event).await {
            Ok(true) => Ok(Some(LoginOutcome {
                token,
                principal: Principal {
                    authentication: Authentication::MultiFactor { fresh: true },
                    ..session.principal.clone()
                },
                expires_at_ms: expires,
            })),
            Ok(false) => Ok(None),
            Err(StoreError::NotFound) => Err(AppError::SecondFactorFailed),
            Err(e) => Err(e.into()),
        }
    }

    /// Records a refused step-up, audited; unless the account is locked already, it counts
    /// towards the lock like a wrong password.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn step_up_refuse(
        &self,
        grant: &Grant,
        session: &SessionContext,
        guard: LoginGuard,
        locked: bool,
        now: i64,
        why: &str,
        meta: &RequestMeta,
    ) -> Result<(), AppError> {
        let event = AuditEvent::new(
            now,
            actor(grant, meta),
            AuditAction::StepUp,
            Outcome::Failed,
        )
        .request(meta.request_id.clone());
        if locked {
            self.store.audit_append(event.detail(LOCKED)).await?;
        } else {
            self.count_failure(&session.principal.username, guard, now, event, why)
                .await?;
        }
        Ok(())
    }

    /// The operator's way back in for a user who lost their authenticator: removes it and its
    /// recovery codes and ends every session of the user, audited with the reason. The user
    /// sets up a new one at the next sign-in.
    pub async fn reset_mfa(
        &self,
        username: &Username,
        why: &str,
        operator: Actor,
    ) -> Result<(), AppError> {
        let why = super::roles::reason(why)?;
        let event = AuditEvent::new(
            self.now_ms(),
            operator,
            AuditAction::MfaReset,
            Outcome::Success,
        )
        .on("user", username.as_str())
        .detail(why);
        Ok(self.store.mfa_reset(username, event).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uri_carries_the_secret_and_the_standard_parameters() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
        let uri = otpauth_uri(&Username::parse("li.si").unwrap(), &secret);
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/Zhangfang:li.si?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Zhangfang&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(uri_component("a b:c/é"), "a%20b%3Ac%2F%C3%A9");
    }
}
